//! Ingest and validation against independently computed expectations.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::array::{Array, BooleanArray, Int32Array, Int64Array, StringArray};
use safetyscope_core::{Dataset, ErrorKind, OnTableError, Reason, TableKind};

fn repo() -> PathBuf {
    // Read at run time: a test binary reused from a clone at another path
    // must still find this checkout's files.
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo or nextest");
    Path::new(&dir).join("../..")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn query(ds: &Dataset, sql: &str) -> Vec<arrow::array::RecordBatch> {
    ds.sql(sql).await.unwrap().collect().await.unwrap()
}

#[test]
fn mine_accidents_mapping_matches_the_pandas_computation() {
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("tests/fixtures/mine_accidents_expected.json"))
            .unwrap(),
    )
    .unwrap();
    let ds = Dataset::open(
        &repo().join("examples/real/mine-accidents.toml"),
        None,
        OnTableError::Fail,
    )
    .unwrap();
    let r = &ds.report().tables["incidents"];
    assert_eq!(r.rows_read, expected["rows_read"].as_u64().unwrap());
    assert_eq!(r.rows_accepted, expected["rows_accepted"].as_u64().unwrap());
    let got: BTreeMap<String, u64> = r
        .rejected
        .iter()
        .map(|(k, v)| {
            (
                serde_json::to_value(k)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string(),
                v.count,
            )
        })
        .collect();
    let want: BTreeMap<String, u64> = expected["rejected"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(r.time_unknown, expected["time_unknown"].as_u64().unwrap());
    // Examples name the file, the record and the source column.
    let ex = &r.rejected[&Reason::UnknownEnum].examples[0];
    assert!(ex.column.contains("DEGREE_INJURY"), "{ex:?}");
    assert!(ex.value.starts_with("INJURIES"), "{ex:?}");
    assert!(ex.source.ends_with("msha_accidents_2000-2015_sample.csv"));

    rt().block_on(async {
        let by_sev = counts(&query(&ds, "select severity, count(*) as n from incidents group by severity").await);
        assert_eq!(by_sev, json_counts(&expected["by_severity"]));

        // Hours of day in the dataset's local time, unknown times excluded.
        let by_hour = counts(&query(&ds, "select cast(cast(date_part('hour', occurred_at) as int) as varchar) as h, count(*) as n from incidents where time_known group by 1").await);
        assert_eq!(by_hour, json_counts(&expected["by_hour"]));

        let b = query(&ds, "select sum(lost_days) as d, sum(case when contractor then 1 else 0 end) as c from incidents").await;
        assert_eq!(b[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0), expected["lost_days_total"].as_i64().unwrap());
        assert_eq!(b[0].column(1).as_any().downcast_ref::<Int64Array>().unwrap().value(0), expected["contractor"].as_i64().unwrap());
    });
}

/// Two-column results (key, count) as a map.
fn counts(batches: &[arrow::array::RecordBatch]) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for b in batches {
        let k = text(b.column(0));
        let n = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
        for i in 0..b.num_rows() {
            out.insert(k.value(i).to_string(), n.value(i));
        }
    }
    out
}

fn json_counts(v: &serde_json::Value) -> BTreeMap<String, i64> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_i64().unwrap()))
        .collect()
}

fn text(a: &arrow::array::ArrayRef) -> StringArray {
    let a = arrow::compute::cast(a, &arrow::datatypes::DataType::Utf8).unwrap();
    a.as_any().downcast_ref::<StringArray>().unwrap().clone()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

const CELLS: &str = "cell,zone,site,row,col,x_min,y_min,x_max,y_max,owner\n\
A1,wh,S1,0,0,0,0,10,10,Li\nA2,wh,S1,0,1,10,0,20,10,Wang\n";

#[test]
fn every_rejection_reason_is_counted_with_its_row() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "cells.csv", CELLS);
    write(
        dir.path(),
        "incidents.csv",
        "id,occurred_at,occurred_until,site,cell,x,y,category,severity,lost_days\n\
         1,2025-03-01 08:00,,S1,A1,1,1,高处坠落,minor,3\n\
         2,2025-03-01 09:00,,S1,A1,1,1,fall from height,Near Miss,\n\
         3,not a date,,S1,A1,1,1,fire,minor,1\n\
         4,2025-03-01 10:00,,,A1,1,1,fire,minor,1\n\
         5,2025-03-01 10:00,,S1,A1,1,1,volcano,minor,1\n\
         1,2025-03-01 11:00,,S1,A1,1,1,fire,minor,1\n\
         7,2025-03-01 11:00,2025-03-01 10:00,S1,A1,1,1,fire,minor,1\n\
         8,2025-03-01 11:00,,S1,A2,55,1,fire,minor,1\n\
         9,2025-03-01 11:00,,S1,A2,15,1,fire,minor,-4\n\
         10,2025-03-01 12:00,,S1,A2,15,1,09,fatal,6000\n",
    );
    let ds = Dataset::open(dir.path(), Some("Asia/Shanghai"), OnTableError::Fail).unwrap();
    let r = &ds.report().tables["incidents"];
    assert_eq!(r.rows_read, 10);
    assert_eq!(r.rows_accepted, 3);
    assert_eq!(r.count(Reason::Unparseable), 1);
    assert_eq!(r.count(Reason::MissingRequired), 1);
    assert_eq!(r.count(Reason::UnknownEnum), 1);
    assert_eq!(r.count(Reason::DuplicateId), 1);
    assert_eq!(r.count(Reason::EndBeforeStart), 1);
    assert_eq!(r.count(Reason::OutsideSite), 1);
    assert_eq!(r.count(Reason::OutOfRange), 1);
    let ex = &r.rejected[&Reason::Unparseable].examples[0];
    assert_eq!(
        (ex.row, ex.column.as_str(), ex.value.as_str()),
        (3, "occurred_at", "not a date")
    );
    assert_eq!(r.rejected[&Reason::DuplicateId].examples[0].row, 6);
    assert_eq!(
        r.rejected[&Reason::MissingRequired].examples[0].column,
        "site"
    );
    // Accepted rows are canonical: codes, defaults, local time.
    rt().block_on(async {
        let b = query(&ds, "select id, category, severity, recordable, cast(date_part('hour', occurred_at) as int) as h from incidents order by cast(id as int)").await;
        let b = &b[0];
        let cat = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        let sev = b.column(2).as_any().downcast_ref::<StringArray>().unwrap();
        let rec = b.column(3).as_any().downcast_ref::<BooleanArray>().unwrap();
        let h = b.column(4).as_any().downcast_ref::<Int32Array>().unwrap();
        assert_eq!(cat.value(0), "fall_from_height");
        assert_eq!(cat.value(1), "fall_from_height");
        assert_eq!(sev.value(1), "near_miss");
        assert!(rec.value(0) && !rec.value(1) && rec.value(2));
        assert_eq!((h.value(0), h.value(1), h.value(2)), (8, 9, 12));
    });
}

#[test]
fn missing_required_column_names_table_and_column() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "incidents.csv",
        "id,when,site,category,severity\n1,2025-01-01,S1,fire,minor\n",
    );
    let e = Dataset::open(dir.path(), None, OnTableError::Fail).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Schema);
    let msg = e.to_string();
    assert!(
        msg.contains("incidents") && msg.contains("occurred_at") && msg.contains("when"),
        "{msg}"
    );
    // Lenient mode records it in the report instead.
    let ds = Dataset::open(dir.path(), None, OnTableError::Report).unwrap();
    assert!(ds.unusable_tables()[0].1.contains("occurred_at"));
}

#[test]
fn hive_partitions_globs_and_formats() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "raw/site=S1/dt=2025-01-01/part-0.csv",
        "no,when,kind,sev\n1,2025-01-01 03:00,fire,minor\n2,2025-01-01 04:00,fire,fatal\n",
    );
    write(
        dir.path(),
        "raw/site=S2/dt=2025-01-02/part-0.csv",
        "no,when,kind,sev\n3,2025-01-02 05:00,fire,minor\n",
    );
    write(dir.path(), "raw/site=S2/dt=2025-01-02/_SUCCESS", "");
    write(
        dir.path(),
        "other.ndjson",
        "{\"cell\":\"A1\",\"zone\":\"z\",\"site\":\"S1\",\"row\":0,\"col\":0}\n",
    );
    let mapping = write(
        dir.path(),
        "m.toml",
        r#"
timezone = "Europe/Berlin"
[tables.incidents]
path = "raw"
[tables.incidents.columns]
id = "no"
occurred_at = "when"
category = "kind"
severity = "sev"
[tables.cells]
path = "*.ndjson"
"#,
    );
    let ds = Dataset::open(&mapping, None, OnTableError::Fail).unwrap();
    assert_eq!(ds.report().tables["incidents"].rows_accepted, 3);
    assert_eq!(ds.report().tables["incidents"].sources.len(), 2);
    assert_eq!(ds.report().tables["cells"].rows_accepted, 1);
    rt().block_on(async {
        let b = query(
            &ds,
            "select site, count(*) as n from incidents group by site order by site",
        )
        .await;
        let s = b[0]
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let n = b[0]
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(
            (s.value(0), n.value(0), s.value(1), n.value(1)),
            ("S1", 2, "S2", 1)
        );
    });
}

#[test]
fn generated_sample_loads_without_rejections_and_is_deterministic() {
    let o = safetyscope_core::generate::GenerateOptions {
        scale: 0.05,
        sites: 2,
        ..Default::default()
    };
    let (a, truth) = safetyscope_core::generate::generate_parquet_bytes(&o).unwrap();
    let (b, _) = safetyscope_core::generate::generate_parquet_bytes(&o).unwrap();
    assert_eq!(a, b, "same seed, same bytes");
    let files = a
        .into_iter()
        .map(|(k, v)| (k, format!("{k}.parquet"), bytes::Bytes::from(v)))
        .collect();
    let ds = Dataset::from_bytes(Some("Asia/Shanghai"), files, None).unwrap();
    assert_eq!(ds.report().rows_rejected(), 0, "{}", ds.report().to_text());
    for k in TableKind::ALL {
        assert_eq!(ds.row_count(k) as u64, truth.rows[k.name()], "{k}");
    }
    assert_eq!(ds.row_count(TableKind::Cells), 72);
    assert_eq!(truth.hot_cells.len(), 8);
}

#[test]
fn data_model_doc_is_current() {
    let doc = std::fs::read_to_string(repo().join("docs/data-model.md")).unwrap();
    assert_eq!(
        doc,
        safetyscope_core::schema::data_model_markdown(),
        "regenerate with `safetyscope schema --markdown > docs/data-model.md`"
    );
}

#[test]
fn latin1_and_excel_and_hhmm() {
    let dir = tempfile::tempdir().unwrap();
    // "Zürich" in Latin-1; 45352 = 2024-03-01; time unknown sentinel.
    std::fs::write(dir.path().join("inc.csv"), b"ID;DAY;HHMM;WHERE;T;S\n1;45352;0930;Z\xfcrich;fire;minor\n2;45352;9999;Z\xfcrich;fire;minor\n3;45352;0975;Z\xfcrich;fire;minor\n").unwrap();
    let mapping = write(
        dir.path(),
        "m.toml",
        r#"
timezone = "Asia/Shanghai"
[tables.incidents]
path = "inc.csv"
delimiter = ";"
encoding = "latin-1"
[tables.incidents.columns]
id = "ID"
occurred_at = { column = "DAY", formats = ["excel"], time_column = "HHMM", time_unknown = ["9999"] }
site = { constant = "S1" }
zone = "WHERE"
category = "T"
severity = "S"
"#,
    );
    let ds = Dataset::open(&mapping, None, OnTableError::Fail).unwrap();
    let r = &ds.report().tables["incidents"];
    assert_eq!(
        (
            r.rows_accepted,
            r.time_unknown,
            r.count(Reason::Unparseable)
        ),
        (2, 1, 1)
    );
    assert_eq!(
        r.rejected[&Reason::Unparseable].examples[0].column,
        "occurred_at (from HHMM)"
    );
    rt().block_on(async {
        let b = query(
            &ds,
            "select zone, cast(occurred_at as varchar) as t, time_known from incidents order by id",
        )
        .await;
        let z = text(b[0].column(0));
        let t = text(b[0].column(1));
        assert_eq!(z.value(0), "Zürich");
        assert_eq!(t.value(0), "2024-03-01T09:30:00+08:00");
        assert_eq!(t.value(1), "2024-03-01T00:00:00+08:00");
        assert!(
            !b[0]
                .column(2)
                .as_any()
                .downcast_ref::<BooleanArray>()
                .unwrap()
                .value(1)
        );
        assert!(!b[0].column(2).is_null(1));
    });
}

/// A store finds duplicate ids after writing (fingerprints spilled to disk)
/// and must end up with the rows and the report an in-memory load gives:
/// the first occurrence kept, later ones rejected with their source and row,
/// ids of rows rejected for another reason not counted as seen.
#[test]
fn store_ingest_rejects_duplicate_ids_like_an_in_memory_load() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write(&data, "cells.csv", CELLS);
    let header = "id,occurred_at,time_known,site,cell,x,y,category,severity\n";
    let mut files = vec![String::from(header), String::from(header)];
    let mut n = 0u32;
    for file in &mut files {
        for i in 0..2500u32 {
            n += 1;
            // Every 97th row repeats an id from about 1,800 rows earlier
            // (across the two files too); every 89th is a bad severity; the
            // id after a bad row repeats the bad row's id (not a duplicate).
            let id = if n.is_multiple_of(97) && n > 1800 {
                format!("I{}", n - 1800)
            } else if n % 89 == 1 && n > 1 {
                format!("I{}", n - 1)
            } else {
                format!("I{n}")
            };
            let severity = if n.is_multiple_of(89) {
                "volcano"
            } else {
                "minor"
            };
            let known = if i.is_multiple_of(7) { "false" } else { "true" };
            file.push_str(&format!(
                "{id},2025-03-{:02} {:02}:00,{known},S1,A1,1,1,fire,{severity}\n",
                1 + i % 28,
                i % 24
            ));
        }
    }
    write(&data, "incidents/part-a.csv", &files[0]);
    write(&data, "incidents/part-b.csv", &files[1]);

    let mem = Dataset::open(&data, Some("Asia/Shanghai"), OnTableError::Fail).unwrap();
    let expected = &mem.report().tables["incidents"];
    assert!(expected.count(Reason::DuplicateId) > 20);
    assert!(expected.count(Reason::UnknownEnum) > 20);

    let out = dir.path().join("store");
    let options = safetyscope_core::store::IngestOptions {
        rows_per_file: 700,
        row_group_rows: 128,
        ..Default::default()
    };
    let m = safetyscope_core::store::ingest(&data, Some("Asia/Shanghai"), &out, &options, &|_| {})
        .unwrap();
    assert_eq!(&m.report.tables["incidents"], expected);
    assert_eq!(
        m.tables["incidents"]
            .files
            .iter()
            .map(|f| f.rows)
            .sum::<u64>(),
        expected.rows_accepted
    );
    // No spill files left behind.
    assert!(
        std::fs::read_dir(&out)
            .unwrap()
            .all(|e| { !e.unwrap().file_name().to_string_lossy().starts_with(".ids") })
    );
    let stored = Dataset::open(&out, None, OnTableError::Fail).unwrap();
    let q = "SELECT id, occurred_at, time_known, severity FROM incidents ORDER BY id";
    let rt = rt();
    let (a, b) = rt.block_on(async { (query(&mem, q).await, query(&stored, q).await) });
    let text = |bs: &[arrow::array::RecordBatch]| {
        arrow::util::pretty::pretty_format_batches(bs)
            .unwrap()
            .to_string()
    };
    assert_eq!(text(&a), text(&b));
}

/// Grid rows and columns beyond any plan (here `i32::MAX`) are rejected as
/// out of range at validation, and the analyses that walk the grid run on
/// what remains instead of overflowing.
#[test]
fn absurd_grid_positions_are_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "cells.csv",
        "cell,zone,site,row,col,x_min,y_min,x_max,y_max,owner\n\
         A1,wh,S1,0,0,0,0,10,10,Li\n\
         A2,wh,S1,0,1,10,0,20,10,Wang\n\
         A3,wh,S1,2147483647,2147483647,20,0,30,10,Zhao\n\
         A4,wh,S1,0,10000,30,0,40,10,Sun\n",
    );
    write(
        dir.path(),
        "incidents.csv",
        "id,occurred_at,site,cell,category,severity\n\
         1,2025-03-01 08:00,S1,A1,fire,minor\n\
         2,2025-03-02 08:00,S1,A2,fire,near_miss\n",
    );
    let ds = Dataset::open(dir.path(), Some("Asia/Shanghai"), OnTableError::Fail).unwrap();
    let r = &ds.report().tables["cells"];
    assert_eq!((r.rows_read, r.rows_accepted), (4, 2));
    assert_eq!(r.count(Reason::OutOfRange), 2);
    let ex = &r.rejected[&Reason::OutOfRange].examples[0];
    assert_eq!(
        (ex.row, ex.column.as_str(), ex.value.as_str()),
        (3, "row", "2147483647")
    );
    rt().block_on(async {
        let risk = safetyscope_core::api::run(&ds, "risk", Default::default())
            .await
            .unwrap();
        assert_eq!(risk.batches.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
        let hot = safetyscope_core::api::run(&ds, "hotspots", Default::default())
            .await
            .unwrap();
        assert_eq!(hot.batches.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
    });
}

/// Instants outside 1900–2100 are out of range at validation: a typo'd year
/// (2205), a date read with a two-digit-year pattern as the year 9, the
/// last instants a timestamp holds. They stretched every time grid (and
/// panicked where local time was taken) when accepted.
#[test]
fn implausible_instants_are_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "cells.csv", CELLS);
    write(
        dir.path(),
        "incidents.csv",
        "id,occurred_at,site,cell,category,severity\n\
         1,2025-03-01 08:00,S1,A1,fire,minor\n\
         2,2205-03-01 08:00,S1,A1,fire,minor\n\
         3,0009-09-20 08:00,S1,A1,fire,minor\n\
         4,1899-12-31 08:00,S1,A1,fire,minor\n\
         5,2100-12-31 23:00,S1,A2,fire,near_miss\n",
    );
    let ds = Dataset::open(dir.path(), Some("Asia/Shanghai"), OnTableError::Fail).unwrap();
    let r = &ds.report().tables["incidents"];
    assert_eq!((r.rows_read, r.rows_accepted), (5, 2));
    assert_eq!(r.count(Reason::OutOfRange), 3);
    let ex = &r.rejected[&Reason::OutOfRange].examples[0];
    assert_eq!((ex.row, ex.column.as_str()), (2, "occurred_at"));
    assert!(
        ex.value.contains("2205-03-01") && ex.value.contains("outside 1900–2100"),
        "{}",
        ex.value
    );
    // Seconds since 1970 at the edge of what a timestamp holds (year 2230).
    std::fs::write(
        dir.path().join("dataset.toml"),
        "[tables.incidents]\npath = \"incidents2.csv\"\n\
         [tables.incidents.columns]\noccurred_at = { column = \"t\", formats = [\"unix\"] }\n\
         [tables.cells]\npath = \"cells.csv\"\n",
    )
    .unwrap();
    write(
        dir.path(),
        "incidents2.csv",
        "id,t,site,cell,category,severity\n1,1740816000,S1,A1,fire,minor\n2,8210266876799,S1,A1,fire,minor\n",
    );
    let ds = Dataset::open(dir.path(), Some("UTC"), OnTableError::Fail).unwrap();
    let r = &ds.report().tables["incidents"];
    assert_eq!((r.rows_accepted, r.count(Reason::OutOfRange)), (1, 1));
    rt().block_on(async {
        for name in ["patterns", "trends", "kpis", "risk"] {
            let out = safetyscope_core::api::run(&ds, name, Default::default()).await;
            assert!(out.is_ok(), "{name}: {:?}", out.err());
        }
    });
}

/// A text value longer than any id or name (here 100 KB in `site`) is out
/// of range, and the report shows its start and length, not the whole.
#[test]
fn overlong_text_is_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "cells.csv", CELLS);
    let long = "S".repeat(100_000);
    write(
        dir.path(),
        "incidents.csv",
        &format!(
            "id,occurred_at,site,cell,category,severity\n\
             1,2025-03-01 08:00,S1,A1,fire,minor\n\
             2,2025-03-01 09:00,{long},A1,fire,minor\n"
        ),
    );
    let ds = Dataset::open(dir.path(), Some("UTC"), OnTableError::Fail).unwrap();
    let r = &ds.report().tables["incidents"];
    assert_eq!((r.rows_accepted, r.count(Reason::OutOfRange)), (1, 1));
    let ex = &r.rejected[&Reason::OutOfRange].examples[0];
    assert_eq!((ex.row, ex.column.as_str()), (2, "site"));
    assert!(
        ex.value.ends_with("… (100000 bytes)") && ex.value.len() < 300,
        "{}",
        &ex.value[..50]
    );
    rt().block_on(async {
        let out = safetyscope_core::api::run(&ds, "kpis", Default::default()).await;
        assert!(out.is_ok(), "{:?}", out.err());
    });
}

/// A store whose files do not match its manifest is refused with an I/O
/// error (exit 3) naming the file: a missing part, a truncated one, one
/// replaced by another table's file, a manifest path outside the store.
/// Before, a missing part read as zero rows.
#[test]
fn a_store_whose_files_do_not_match_its_manifest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write(&data, "cells.csv", CELLS);
    write(
        &data,
        "incidents.csv",
        "id,occurred_at,site,cell,category,severity\n\
         1,2025-03-01 08:00,S1,A1,fire,minor\n\
         2,2025-03-02 08:00,S1,A2,fire,near_miss\n",
    );
    write(
        &data,
        "hazards.csv",
        "id,reported_at,site,cell,category,level,due_at\n\
         H1,2025-03-01 08:00,S1,A1,fire,general,2025-03-04 08:00\n",
    );
    let fresh = |name: &str| {
        let store = dir.path().join(name);
        let options = safetyscope_core::store::IngestOptions::default();
        safetyscope_core::store::ingest(&data, Some("UTC"), &store, &options, &|_| {}).unwrap();
        assert!(Dataset::open(&store, None, OnTableError::Fail).is_ok());
        store
    };
    let part = |store: &Path, table: &str| store.join(table).join("part-00000.parquet");
    let refused = |store: &Path, needle: &str| {
        let e = Dataset::open(store, None, OnTableError::Fail).unwrap_err();
        assert_eq!(e.exit_code(), 3, "{e}");
        assert!(e.to_string().contains(needle), "{e}");
    };
    let s = fresh("missing");
    std::fs::remove_file(part(&s, "incidents")).unwrap();
    refused(&s, "listed in the manifest of `incidents` but missing");

    let s = fresh("truncated");
    let bytes = std::fs::read(part(&s, "incidents")).unwrap();
    std::fs::write(part(&s, "incidents"), &bytes[..bytes.len() / 2]).unwrap();
    refused(&s, "where the manifest says");

    let s = fresh("foreign");
    let other = std::fs::read(part(&s, "hazards")).unwrap();
    std::fs::write(part(&s, "incidents"), other).unwrap();
    refused(&s, "incidents/part-00000.parquet");

    let s = fresh("escape");
    let m = s.join("_safetyscope.json");
    let text = std::fs::read_to_string(&m).unwrap();
    std::fs::write(
        &m,
        text.replace("incidents/part-00000.parquet", "../data/cells.csv"),
    )
    .unwrap();
    refused(&s, "a path outside the store");
}

/// Count the incidents whose time of day is unknown, through the engine.
fn time_unknown_rows(ds: &Dataset) -> i64 {
    rt().block_on(async {
        let b = query(
            ds,
            "SELECT count(*) AS n FROM incidents WHERE NOT time_known",
        )
        .await;
        b[0].column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0)
    })
}

/// A date without a time of day is an event whose time is unknown, not an
/// event at midnight, unless the mapping says so; the report counts them.
#[test]
fn date_only_timestamps_are_time_unknown_unless_mapped_to_midnight() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "cells.csv", CELLS);
    write(
        dir.path(),
        "incidents.csv",
        "id,occurred_at,site,cell,category,severity\n\
         1,2025-03-01 08:00,S1,A1,fire,minor\n\
         2,2025-03-02,S1,A1,fire,minor\n\
         3,2025/03/03,S1,A2,fire,near_miss\n\
         4,not a date,S1,A2,fire,near_miss\n",
    );
    let ds = Dataset::open(dir.path(), Some("UTC"), OnTableError::Fail).unwrap();
    let r = &ds.report().tables["incidents"];
    assert_eq!((r.rows_accepted, r.time_unknown, r.date_only), (3, 2, 2));
    assert_eq!(time_unknown_rows(&ds), 2);
    assert!(
        ds.report()
            .to_text()
            .contains("2 with time of day unknown (2 dated without a time of day)"),
        "{}",
        ds.report().to_text()
    );
    // The hour × weekday profile leaves them out, on its "time unknown" row.
    rt().block_on(async {
        let out = safetyscope_core::api::run(&ds, "patterns", Default::default())
            .await
            .unwrap();
        let b = arrow::compute::concat_batches(&out.schema, &out.batches).unwrap();
        let hour = b.column_by_name("hour").unwrap();
        let n = arrow::compute::cast(
            b.column_by_name("events").unwrap(),
            &arrow::datatypes::DataType::Float64,
        )
        .unwrap();
        let n = n
            .as_any()
            .downcast_ref::<arrow::array::Float64Array>()
            .unwrap();
        let (known, unknown) = (0..b.num_rows()).fold((0.0, 0.0), |(k, u), i| {
            if hour.is_null(i) {
                (k, u + n.value(i))
            } else {
                (k + n.value(i), u)
            }
        });
        assert_eq!((known, unknown), (1.0, 2.0));
    });
    // A mapping that reads them as midnight.
    std::fs::write(
        dir.path().join("dataset.toml"),
        "[tables.incidents]\npath = \"incidents.csv\"\n\
         [tables.incidents.columns]\noccurred_at = { column = \"occurred_at\", date_only = \"midnight\" }\n\
         [tables.cells]\npath = \"cells.csv\"\n",
    )
    .unwrap();
    let ds = Dataset::open(dir.path(), Some("UTC"), OnTableError::Fail).unwrap();
    let r = &ds.report().tables["incidents"];
    assert_eq!((r.rows_accepted, r.time_unknown, r.date_only), (3, 0, 2));
    assert_eq!(time_unknown_rows(&ds), 0);
    // An unknown choice names the allowed ones.
    std::fs::write(
        dir.path().join("dataset.toml"),
        "[tables.incidents]\npath = \"incidents.csv\"\n\
         [tables.incidents.columns]\noccurred_at = { column = \"occurred_at\", date_only = \"noon\" }\n",
    )
    .unwrap();
    let e = Dataset::open(dir.path(), Some("UTC"), OnTableError::Fail).unwrap_err();
    let msg = e.to_string();
    assert_eq!(e.exit_code(), 2);
    assert!(
        msg.contains("noon") && msg.contains("time_unknown") && msg.contains("midnight"),
        "{msg}"
    );
}

/// `09/20/09` under `%m/%d/%Y` then `%m/%d/%y` is the year 9 or 2009: the
/// row is rejected as ambiguous with both readings, never the year 9.
#[test]
fn a_date_two_listed_formats_read_differently_is_ambiguous() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "cells.csv", CELLS);
    write(
        dir.path(),
        "incidents.csv",
        "id,d,site,cell,category,severity\n\
         1,09/20/2009,S1,A1,fire,minor\n\
         2,09/20/09,S1,A1,fire,minor\n\
         3,12/30/1999,S1,A2,fire,near_miss\n",
    );
    std::fs::write(
        dir.path().join("dataset.toml"),
        "[tables.incidents]\npath = \"incidents.csv\"\nyears = [2000, 2030]\n\
         [tables.incidents.columns]\noccurred_at = { column = \"d\", formats = [\"%m/%d/%Y\", \"%m/%d/%y\"] }\n\
         [tables.cells]\npath = \"cells.csv\"\n",
    )
    .unwrap();
    let ds = Dataset::open(dir.path(), Some("UTC"), OnTableError::Fail).unwrap();
    let r = &ds.report().tables["incidents"];
    assert_eq!(r.rows_accepted, 1);
    let ex = &r.rejected[&Reason::Ambiguous].examples[0];
    assert_eq!((ex.row, ex.column.as_str()), (2, "occurred_at (from d)"));
    assert_eq!(
        ex.value,
        "09/20/09 (`%m/%d/%Y` reads 0009-09-20 00:00:00, `%m/%d/%y` reads 2009-09-20 00:00:00)"
    );
    // The mapping's plausible years: 1999 is before 2000.
    let ex = &r.rejected[&Reason::OutOfRange].examples[0];
    assert_eq!(ex.row, 3);
    assert!(ex.value.contains("outside 2000–2030"), "{}", ex.value);
    // The same with a separate time-of-day column.
    write(
        dir.path(),
        "incidents.csv",
        "id,d,t,site,cell,category,severity\n1,09/20/2009,0800,S1,A1,fire,minor\n2,09/20/09,0800,S1,A1,fire,minor\n",
    );
    std::fs::write(
        dir.path().join("dataset.toml"),
        "[tables.incidents]\npath = \"incidents.csv\"\n\
         [tables.incidents.columns]\noccurred_at = { column = \"d\", formats = [\"%m/%d/%Y\", \"%m/%d/%y\"], time_column = \"t\" }\n\
         [tables.cells]\npath = \"cells.csv\"\n",
    )
    .unwrap();
    let ds = Dataset::open(dir.path(), Some("UTC"), OnTableError::Fail).unwrap();
    let r = &ds.report().tables["incidents"];
    assert_eq!((r.rows_accepted, r.count(Reason::Ambiguous)), (1, 1));
    assert_eq!(
        r.rejected[&Reason::Ambiguous].examples[0].value,
        "09/20/09 (`%m/%d/%Y` reads 0009-09-20, `%m/%d/%y` reads 2009-09-20)"
    );
    // Years that cannot be.
    std::fs::write(
        dir.path().join("dataset.toml"),
        "[tables.incidents]\npath = \"incidents.csv\"\nyears = [2030, 2000]\n",
    )
    .unwrap();
    let e = Dataset::open(dir.path(), Some("UTC"), OnTableError::Fail).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("`years = [2030, 2000]`"), "{e}");
}

/// Severity derived from two count columns by a SQL expression; a value the
/// expression leaves unknown is rejected naming the source columns.
#[test]
fn a_column_derived_by_an_expression_over_several_source_columns() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "cells.csv", CELLS);
    write(
        dir.path(),
        "crashes.csv",
        "id,when,Persons Killed,Persons Injured,site,cell\n\
         1,2025-03-01 08:00,0,0,S1,A1\n\
         2,2025-03-01 09:00,0,2,S1,A1\n\
         3,2025-03-01 10:00,1,3,S1,A2\n\
         4,2025-03-01 11:00,,,S1,A2\n\
         5,2025-03-01 12:00,10,0,S1,A2\n",
    );
    std::fs::write(
        dir.path().join("dataset.toml"),
        r#"[tables.incidents]
path = "crashes.csv"
[tables.incidents.columns]
occurred_at = "when"
category = { constant = "vehicle" }
severity = { expr = """CASE WHEN CAST("Persons Killed" AS INT) > 0 THEN 'fatal'
    WHEN CAST("Persons Injured" AS INT) > 0 THEN 'minor'
    WHEN CAST("Persons Killed" AS INT) = 0 THEN 'near_miss' END""" }
[tables.cells]
path = "cells.csv"
"#,
    )
    .unwrap();
    let ds = Dataset::open(dir.path(), Some("UTC"), OnTableError::Fail).unwrap();
    let r = &ds.report().tables["incidents"];
    assert_eq!(r.rows_accepted, 4);
    let ex = &r.rejected[&Reason::MissingRequired].examples[0];
    assert_eq!(
        (ex.row, ex.column.as_str()),
        (4, "severity (from Persons Injured, Persons Killed)")
    );
    let b = rt().block_on(query(&ds, "SELECT id, severity FROM incidents ORDER BY id"));
    let sev = text(b[0].column(1));
    let got: Vec<&str> = (0..sev.len()).map(|i| sev.value(i)).collect();
    assert_eq!(got, ["near_miss", "minor", "fatal", "fatal"]);
    // A column the file does not have: a mapping error naming its columns.
    std::fs::write(
        dir.path().join("dataset.toml"),
        "[tables.incidents]\npath = \"crashes.csv\"\n[tables.incidents.columns]\n\
         occurred_at = \"when\"\ncategory = { constant = \"vehicle\" }\n\
         severity = { expr = \"CASE WHEN killed > 0 THEN 'fatal' END\" }\n",
    )
    .unwrap();
    let e = Dataset::open(dir.path(), Some("UTC"), OnTableError::Fail).unwrap_err();
    let msg = e.to_string();
    assert_eq!(e.exit_code(), 2, "{msg}");
    assert!(
        msg.contains("severity") && msg.contains("killed") && msg.contains("Persons Killed"),
        "{msg}"
    );
}
