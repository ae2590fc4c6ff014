//! The ingest as a plan (`ingest_plan::ingest_in`, what a cluster's
//! executors run) against the one-process ingest (`store::ingest`): the
//! same report and the same rows, in the same order, on the real public
//! datasets of `examples/real` and on a dataset built to hold duplicate ids
//! across its files; errors of the same kind; nothing left behind.

use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use datafusion::prelude::{SessionConfig, SessionContext};
use safetyscope_core::store::{IngestOptions, Manifest};
use safetyscope_core::{Dataset, OnTableError, Reason};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A session whose plans run in up to `partitions` partitions at once.
fn session(partitions: usize) -> SessionContext {
    SessionContext::new_with_config(SessionConfig::new().with_target_partitions(partitions))
}

fn plan_ingest(
    data: &Path,
    tz: Option<&str>,
    out: &Path,
    options: &IngestOptions,
) -> safetyscope_core::Result<Manifest> {
    let ctx = session(2);
    rt().block_on(safetyscope_core::ingest_plan::ingest_in(
        data,
        tz,
        out,
        options,
        &ctx,
        &|_| {},
    ))
}

/// Every row of a store's table, its files read in the manifest's order.
fn rows(store: &Path, m: &Manifest, table: &str) -> Option<RecordBatch> {
    let mut batches = Vec::new();
    let mut schema = None;
    for f in &m.tables[table].files {
        let file = std::fs::File::open(store.join(&f.path)).unwrap();
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        schema.get_or_insert(reader.schema().clone());
        for b in reader.build().unwrap() {
            batches.push(b.unwrap());
        }
    }
    Some(arrow::compute::concat_batches(&schema?, &batches).unwrap())
}

/// The names in a directory, recursively, relative to it.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// The two ingests of `data` agree: reports, rows per table in order,
/// and each store holds exactly the files its manifest lists.
fn agree(data: &Path, tz: Option<&str>, options: &IngestOptions) -> Manifest {
    let dir = tempfile::tempdir().unwrap();
    let (one, planned) = (dir.path().join("one"), dir.path().join("planned"));
    let a = safetyscope_core::store::ingest(data, tz, &one, options, &|_| {}).unwrap();
    let b = plan_ingest(data, tz, &planned, options).unwrap();
    assert_eq!(a.report, b.report, "{}", data.display());
    assert_eq!(a.timezone, b.timezone);
    assert_eq!(a.roster, b.roster);
    for (table, t) in &a.tables {
        assert_eq!(t.rows, b.tables[table].rows, "{table}");
        assert_eq!(
            rows(&one, &a, table),
            rows(&planned, &b, table),
            "{table} of {}",
            data.display()
        );
    }
    let mut listed: Vec<String> = b
        .tables
        .values()
        .flat_map(|t| t.files.iter().map(|f| f.path.clone()))
        .chain(["_safetyscope.json".to_string()])
        .collect();
    listed.sort();
    assert_eq!(listing(&planned), listed, "{}", data.display());
    // Nothing beside the store but the lock file.
    let beside: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    assert_eq!(beside.len(), 2, "{beside:?}");
    Dataset::open(&planned, None, OnTableError::Fail).unwrap();
    b
}

#[test]
fn the_plan_ingests_the_real_datasets_as_one_process_does() {
    let real = repo().join("examples/real");
    let small = IngestOptions {
        rows_per_file: 5_000,
        row_group_rows: 1_024,
        ..Default::default()
    };
    for mapping in [
        "mine-accidents.toml",
        "police-stops-grid.toml",
        "police-stops-events.toml",
        "nyc311-hazards.toml",
        "air-quality-no2.toml",
    ] {
        let m = agree(&real.join(mapping), None, &small);
        assert!(
            m.tables.values().map(|t| t.rows).sum::<u64>() > 900,
            "{mapping}"
        );
    }
}

/// Ids repeated across a table's two files, rows rejected for another
/// reason whose ids come back later (not duplicates), rows of unknown time:
/// the plan keeps the first occurrence in source order, as one process
/// and an in-memory load do, with the same examples.
#[test]
fn the_plan_finds_duplicate_ids_across_sources() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write(
        &data,
        "cells.csv",
        "cell,zone,site,row,col,x_min,y_min,x_max,y_max,owner\n\
         A1,wh,S1,0,0,0,0,10,10,Li\n\
         A2,wh,S1,0,1,10,0,20,10,Wang\n",
    );
    let header = "id,occurred_at,time_known,site,cell,x,y,category,severity\n";
    let mut files = vec![
        String::from(header),
        String::from(header),
        String::from(header),
    ];
    let mut n = 0u32;
    for file in &mut files {
        for i in 0..2500u32 {
            n += 1;
            let id = if n.is_multiple_of(97) && n > 1800 {
                format!("I{}", n - 1800)
            } else if n % 89 == 1 && n > 1 {
                format!("I{}", n - 1)
            } else if n.is_multiple_of(1013) {
                // Three occurrences of one id, in three files.
                "I7".to_string()
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
    write(&data, "incidents/part-c.csv", &files[2]);
    let options = IngestOptions {
        rows_per_file: 700,
        row_group_rows: 128,
        ..Default::default()
    };
    let m = agree(&data, Some("Asia/Shanghai"), &options);
    let mem = Dataset::open(&data, Some("Asia/Shanghai"), OnTableError::Fail).unwrap();
    let expected = &mem.report().tables["incidents"];
    assert_eq!(&m.report.tables["incidents"], expected);
    assert!(expected.count(Reason::DuplicateId) > 50);
    assert!(expected.count(Reason::UnknownEnum) > 50);
    // Files of every source, each cut at 700 rows.
    assert!(m.tables["incidents"].files.len() >= 9);
}

/// A source a task cannot read fails the ingest with the kind of error one
/// process gives, and no store (nor any temporary directory) is left.
#[test]
fn a_failing_task_fails_the_ingest_as_one_process_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write(
        &data,
        "incidents/a.csv",
        "id,occurred_at,site,cell,category,severity\n1,2025-03-01 08:00,S1,A1,fire,minor\n",
    );
    // The second file lacks a required column.
    write(
        &data,
        "incidents/b.csv",
        "id,site,cell,category,severity\n2,S1,A1,fire,minor\n",
    );
    let one = safetyscope_core::store::ingest(
        &data,
        None,
        &dir.path().join("one"),
        &IngestOptions::default(),
        &|_| {},
    )
    .unwrap_err();
    let out = dir.path().join("planned");
    let e = plan_ingest(&data, None, &out, &IngestOptions::default()).unwrap_err();
    assert_eq!(e.exit_code(), one.exit_code(), "{e}");
    assert_eq!(e.to_string(), one.to_string());
    assert!(e.to_string().contains("b.csv"), "{e}");
    let left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n != "data" && !n.ends_with(".lock"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // A store already there is left as it was.
    let good = dir.path().join("good");
    write(
        &good,
        "incidents.csv",
        "id,occurred_at,site,cell,category,severity\n1,2025-03-01 08:00,S1,A1,fire,minor\n",
    );
    let before = plan_ingest(&good, None, &out, &IngestOptions::default()).unwrap();
    plan_ingest(&data, None, &out, &IngestOptions::default()).unwrap_err();
    let after = safetyscope_core::store::manifest(&out).unwrap();
    assert_eq!(before, after);
}

/// A Parquet source of many row groups is split into tasks at its row
/// groups: the rows, their source rows in the report and the duplicate ids
/// across the tasks are those of one process reading the file whole.
#[test]
fn a_parquet_source_is_split_at_its_row_groups() {
    use arrow::array::StringArray;
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write(
        &data,
        "cells.csv",
        "cell,zone,site,row,col,x_min,y_min,x_max,y_max,owner\n\
         A1,wh,S1,0,0,0,0,10,10,Li\n",
    );
    let n = 3000usize;
    let col = |f: &dyn Fn(usize) -> String| -> arrow::array::ArrayRef {
        Arc::new(StringArray::from_iter_values((0..n).map(f)))
    };
    let batch = RecordBatch::try_from_iter([
        // Every 50th row repeats the id of the row 701 rows before (in
        // another row group), which repeats none.
        (
            "id",
            col(&|i| {
                if i % 50 == 49 && i > 701 {
                    format!("I{}", i - 701)
                } else {
                    format!("I{i}")
                }
            }),
        ),
        (
            "occurred_at",
            col(&|i| format!("2025-04-{:02} {:02}:30", 1 + i % 28, i % 24)),
        ),
        ("site", col(&|_| "S1".into())),
        ("cell", col(&|_| "A1".into())),
        ("category", col(&|_| "fire".into())),
        (
            "severity",
            col(&|i| if i % 61 == 0 { "bad" } else { "minor" }.into()),
        ),
    ])
    .unwrap();
    std::fs::create_dir_all(&data).unwrap();
    let file = std::fs::File::create(data.join("incidents.parquet")).unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(300))
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let options = IngestOptions {
        rows_per_file: 400,
        row_group_rows: 100,
        task_rows: 500,
        ..Default::default()
    };
    let m = agree(&data, Some("UTC"), &options);
    let r = &m.report.tables["incidents"];
    assert_eq!(r.sources.len(), 1);
    // From the definition above: a row of an unknown severity is rejected
    // as such; a repeater is a duplicate when neither it nor the row it
    // repeats was rejected for its severity.
    let bad = |i: usize| i.is_multiple_of(61);
    let dups = (0..n)
        .filter(|&i| i % 50 == 49 && i > 701 && !bad(i) && !bad(i - 701))
        .count() as u64;
    assert_eq!(
        r.count(Reason::UnknownEnum),
        (0..n).filter(|&i| bad(i)).count() as u64
    );
    assert_eq!(r.count(Reason::DuplicateId), dups);
    assert_eq!(
        r.rows_accepted,
        n as u64 - dups - r.count(Reason::UnknownEnum)
    );
    // The first duplicate is row 750 of the file (index 749), in the
    // second task's row groups.
    assert_eq!(r.rejected[&Reason::DuplicateId].examples[0].row, 750);
    // The examples name rows of the whole file, past the first task's.
    assert!(
        r.rejected[&Reason::DuplicateId]
            .examples
            .iter()
            .any(|e| e.row > 600)
    );
    // Five tasks (six row groups each of 300 rows → 600 rows per task).
    let tasks: std::collections::BTreeSet<String> = m.tables["incidents"]
        .files
        .iter()
        .map(|f| f.path[..f.path.len() - "-00000.parquet".len()].to_string())
        .collect();
    assert_eq!(tasks.len(), 5, "{tasks:?}");
}
