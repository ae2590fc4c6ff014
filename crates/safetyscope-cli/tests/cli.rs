//! The `safetyscope` binary end to end: exit codes, outputs, messages.

use std::path::Path;

mod common;
use common::*;

#[test]
fn generate_validate_heatmap_sql() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(dir.path());
    let o = run(&["validate", &data]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("incidents:"), "{}", text(&o));

    let csv = dir.path().join("hm.csv");
    let svg = dir.path().join("hm.svg");
    let png = dir.path().join("hm.png");
    let o = run(&[
        "heatmap",
        &data,
        "--out",
        csv.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
        "--png",
        png.to_str().unwrap(),
        "--site",
        "U02",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    // The PNG is the SVG rasterised at twice its size.
    let image = std::fs::read(&png).unwrap();
    assert_eq!(&image[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(image[16..20].try_into().unwrap());
    let drawn = std::fs::read_to_string(&svg).unwrap();
    let svg_width: f64 = drawn
        .split("width=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(f64::from(width), (2.0 * svg_width).ceil());
    let body = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 37, "header + 36 cells");
    assert!(lines[0].starts_with("site,zone,cell,row,col,owner,in_plan,incidents"));
    let events_col = lines[0].split(',').position(|c| c == "events").unwrap();
    let total: i64 = lines[1..]
        .iter()
        .map(|l| {
            l.split(',')
                .nth(events_col)
                .unwrap()
                .parse::<i64>()
                .unwrap()
        })
        .sum();
    // The same number through SQL.
    let o = run(&[
        "sql",
        &data,
        "select count(*) as n from incidents where site = 'U02'",
        "--format",
        "csv",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let n: i64 = String::from_utf8_lossy(&o.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(total, n);
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert_eq!(chart.matches("class=\"cell\"").count(), 36);
    // Nothing half-written is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());

    let json = dir.path().join("out.json");
    let o = run(&[
        "sql",
        &data,
        "select cell, owner from cells where site = 'U01' order by cell",
        "--out",
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 36);
}

#[test]
fn exit_codes_and_messages() {
    let dir = tempfile::tempdir().unwrap();
    // A bad mapping: exit 2, the message names the file and the key.
    let m = dir.path().join("m.toml");
    std::fs::write(
        &m,
        "[tables.incidents]\npath = \"x.csv\"\n[tables.incidents.columns]\nwhen = \"T\"\n",
    )
    .unwrap();
    let o = run(&["validate", m.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("`when` is not a column of `incidents`"),
        "{}",
        text(&o)
    );

    // A required table that is unusable: the report is printed, exit 1.
    std::fs::write(dir.path().join("x.csv"), "id,site\n1,S1\n").unwrap();
    std::fs::write(&m, "[tables.incidents]\npath = \"x.csv\"\n").unwrap();
    let o = run(&["validate", m.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("UNUSABLE") && text(&o).contains("occurred_at"),
        "{}",
        text(&o)
    );

    // A missing path: exit 3.
    let o = run(&["heatmap", dir.path().join("nope").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));

    // A bad query: exit 4.
    let data = sample(dir.path());
    let o = run(&["sql", &data, "select nope from incidents"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));

    // A chart of a roll-up: exit 2, and no result file is written either.
    let zones = dir.path().join("zones.csv");
    let o = run(&[
        "heatmap",
        &data,
        "--by",
        "zone",
        "--out",
        zones.to_str().unwrap(),
        "--svg",
        dir.path().join("z.svg").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!zones.exists());

    // A year the sample cannot be generated for: exit 2, nothing written.
    let far = dir.path().join("far");
    let o = run(&[
        "generate",
        "--out",
        far.to_str().unwrap(),
        "--year",
        "99999",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("year") && !far.exists(), "{}", text(&o));

    // A bad option: exit 2.
    let o = run(&["heatmap", &data, "--from", "yesterday"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("yesterday"));
}

#[test]
fn job_runs_are_byte_identical_and_bad_jobs_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        r#"
data = "sample"
out = "out"
as_of = "2025-12-01"

[[analysis]]
name = "risk"
kind = "risk"
options = { half_life_days = 30, from = "2025-06-01", to = "2025-12-01" }
formats = ["parquet", "csv"]
charts = ["svg"]

[[analysis]]
name = "profile"
kind = "patterns"
options = { view = "profile", time = "aoristic", by = ["site", "zone"] }

[[analysis]]
name = "kpis"
kind = "kpis"
formats = ["csv"]

[[analysis]]
name = "alerts"
kind = "alerts"
options = { list = "overdue" }
formats = ["json"]
charts = ["png"]
"#,
    )
    .unwrap();
    let read_all = |d: &Path| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap() != "run-summary.json")
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().to_string(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let o = run(&["run", job.to_str().unwrap(), "--log-format", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    let first = read_all(&dir.path().join("out"));
    let names: Vec<&str> = first.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "alerts.json",
            "alerts.png",
            "kpis.csv",
            "profile.parquet",
            "risk.csv",
            "risk.parquet",
            "risk.svg"
        ]
    );
    // JSON log lines, one per event.
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(
        log.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "{log}"
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/run-summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["outputs"].as_array().unwrap().len(), 7);
    assert!(
        summary["tables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t[0] == "incidents")
    );
    for _ in 0..2 {
        let o = run(&["run", job.to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            read_all(&dir.path().join("out")) == first,
            "a re-run changed an output"
        );
    }
    // A bad job: exit 2 with the analysis named; nothing half-written.
    std::fs::write(
        &job,
        "data = \"sample\"\nout = \"out2\"\n[[analysis]]\nname = \"x\"\nkind = \"heat\"\n",
    )
    .unwrap();
    let o = run(&["run", job.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("unknown kind `heat`"), "{}", text(&o));
    assert!(!dir.path().join("out2").exists());
    std::fs::write(&job, "data = \"sample\"\nout = \"o\"\n[[analysis]]\nname = \"x\"\nkind = \"risk\"\nformat = [\"csv\"]\n").unwrap();
    let o = run(&["run", job.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("line"), "{}", text(&o));
}

#[test]
fn a_store_gives_the_same_results_as_the_files_it_was_ingested_from() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(dir.path());
    let analyses = r#"
as_of = "2025-12-01"

[[analysis]]
name = "risk"
kind = "risk"
options = { half_life_days = 30, from = "2025-06-01", to = "2025-12-01" }
formats = ["parquet", "csv"]

[[analysis]]
name = "hotspots"
kind = "hotspots"
options = { site = "U01" }
formats = ["csv"]

[[analysis]]
name = "peaks"
kind = "peaks"
options = { by = ["site"] }
formats = ["csv"]

[[analysis]]
name = "profile"
kind = "patterns"
options = { view = "profile", by = ["site", "zone"] }

[[analysis]]
name = "kpis"
kind = "kpis"
formats = ["csv"]

[[analysis]]
name = "targets"
kind = "targets"
formats = ["csv"]

[[analysis]]
name = "alerts"
kind = "alerts"
formats = ["csv"]
"#;
    let files = dir.path().join("files.toml");
    std::fs::write(
        &files,
        format!("data = \"sample\"\nout = \"out-files\"\n{analyses}"),
    )
    .unwrap();
    let staged = dir.path().join("staged.toml");
    std::fs::write(
        &staged,
        format!("data = \"sample\"\nstore = \"store\"\nout = \"out-store\"\n{analyses}"),
    )
    .unwrap();
    for job in [&files, &staged] {
        let o = run(&["run", job.to_str().unwrap(), "--memory-limit", "256M"]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let store = dir.path().join("store");
    assert!(store.join("_safetyscope.json").is_file());
    for f in [
        "risk.parquet",
        "risk.csv",
        "hotspots.csv",
        "peaks.csv",
        "profile.parquet",
        "kpis.csv",
        "targets.csv",
        "alerts.csv",
    ] {
        let a = std::fs::read(dir.path().join("out-files").join(f)).unwrap();
        let b = std::fs::read(dir.path().join("out-store").join(f)).unwrap();
        assert!(a == b, "{f} differs between the files and the store");
    }
    // The store's report is the validation report of the files.
    let o = run(&["validate", &data, "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.join("_safetyscope.json")).unwrap()).unwrap();
    assert_eq!(manifest["report"], report);
    // `validate` and `sql` read a store too.
    let o = run(&[
        "sql",
        store.to_str().unwrap(),
        "select count(*) as n from incidents",
        "--format",
        "csv",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let n = report["tables"]["incidents"]["rows_accepted"]
        .as_u64()
        .unwrap();
    assert!(text(&o).contains(&format!("\n{n}")), "{}", text(&o));

    // `ingest` from the command line, cut into several files per table.
    let cli_store = dir.path().join("cli-store");
    let o = run(&[
        "ingest",
        &data,
        "--out",
        cli_store.to_str().unwrap(),
        "--rows-per-file",
        "5000",
        "--log-format",
        "json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(
        log.lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()),
        "{log}"
    );
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cli_store.join("_safetyscope.json")).unwrap())
            .unwrap();
    let inc = &m["tables"]["incidents"];
    let files = inc["files"].as_array().unwrap();
    assert_eq!(files.len() as u64, n.div_ceil(5000));
    assert_eq!(
        files
            .iter()
            .map(|f| f["rows"].as_u64().unwrap())
            .sum::<u64>(),
        n
    );
    let o = run(&[
        "risk",
        cli_store.to_str().unwrap(),
        "--from",
        "2025-06-01",
        "--to",
        "2025-12-01",
        "--half-life-days",
        "30",
        "--out",
        dir.path().join("risk-cli.csv").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        std::fs::read(dir.path().join("risk-cli.csv")).unwrap()
            == std::fs::read(dir.path().join("out-files/risk.csv")).unwrap()
    );

    // Errors: a directory that is not a store is not replaced; a store read
    // in another timezone; a size that is not a size.
    let other = dir.path().join("notes");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("keep.txt"), "x").unwrap();
    let o = run(&["ingest", &data, "--out", other.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("is not a store"), "{}", text(&o));
    assert!(other.join("keep.txt").is_file());
    let o = run(&[
        "heatmap",
        store.to_str().unwrap(),
        "--timezone",
        "Europe/Berlin",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("Asia/Shanghai"), "{}", text(&o));
    let o = run(&[
        "ingest",
        &data,
        "--out",
        dir.path().join("zero").to_str().unwrap(),
        "--rows-per-file",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!dir.path().join("zero").exists());
    let o = run(&["heatmap", &data, "--memory-limit", "lots"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("lots"), "{}", text(&o));
    // A failed ingest leaves no store and no temporary directory behind.
    let broken = dir.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(broken.join("incidents.csv"), "id,when\n1,2025-01-01\n").unwrap();
    let bad_out = dir.path().join("bad-store");
    let o = run(&[
        "ingest",
        broken.to_str().unwrap(),
        "--out",
        bad_out.to_str().unwrap(),
    ]);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!bad_out.exists());
    // Only the store's lock file stays beside it.
    assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        !name.starts_with(".bad-store") || name == ".bad-store.lock"
    }));
}

#[test]
fn partitioned_results_and_period_reruns() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let job = dir.path().join("job.toml");
    let write_job = |as_of: &str| {
        std::fs::write(
            &job,
            format!(
                r#"
data = "sample"
out = "out"
as_of = "{as_of}"

[[analysis]]
name = "kpis"
kind = "kpis"
options = {{ periods = ["month", "quarter", "year"], scopes = ["group", "site"], kpis = ["hazards_found", "incidents"] }}
partition_by = ["scope", "period"]
"#
            ),
        )
        .unwrap();
    };
    let files_under = |d: &Path| -> Vec<(String, Vec<u8>)> {
        let mut out = vec![];
        let mut stack = vec![d.to_path_buf()];
        while let Some(p) = stack.pop() {
            for e in std::fs::read_dir(&p).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push((
                        p.strip_prefix(d).unwrap().to_string_lossy().to_string(),
                        std::fs::read(&p).unwrap(),
                    ));
                }
            }
        }
        out.sort();
        out
    };
    write_job("2025-10-15");
    let o = run(&["run", job.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let kpis = dir.path().join("out/kpis");
    let first = files_under(&kpis);
    assert!(
        first
            .iter()
            .any(|(p, _)| p == "scope=U01/period=2025-10/part-0.parquet")
    );
    assert!(
        first
            .iter()
            .any(|(p, _)| p == "scope=group/period=2025-Q4/part-0.parquet")
    );
    assert!(!first.iter().any(|(p, _)| p.contains("period=2025-11")));
    // Every partition holds exactly its rows.
    for (p, _) in &first {
        let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(kpis.join(p)).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
        for b in r {
            let b = b.unwrap();
            let period = b.column_by_name("period").unwrap();
            let period = period
                .as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .unwrap();
            assert!(
                period
                    .iter()
                    .all(|v| p.contains(&format!("period={}/", v.unwrap())))
            );
        }
    }
    // A scope that no longer has rows (a site closed, renamed): its
    // partitions of the rerun periods go, the others stay.
    let gone = |period: &str| kpis.join(format!("scope=GONE/period={period}/part-0.parquet"));
    for period in ["2025-10", "2025-09"] {
        std::fs::create_dir_all(gone(period).parent().unwrap()).unwrap();
        std::fs::copy(
            kpis.join("scope=U01/period=2025-10/part-0.parquet"),
            gone(period),
        )
        .unwrap();
    }
    // A month later, October (complete now) and November are rewritten
    // with the quarter and the year they belong to; every other partition
    // is left byte for byte.
    write_job("2025-11-20");
    let o = run(&["run", job.to_str().unwrap(), "--period", "2025-10,2025-11"]);
    assert!(o.status.success(), "{}", text(&o));
    let second = files_under(&kpis);
    let touched = |p: &str| {
        ["2025-10", "2025-11", "2025-Q4", "2025"]
            .iter()
            .any(|q| p.contains(&format!("period={q}/")))
    };
    for (p, bytes) in &first {
        if !touched(p) {
            let now = second.iter().find(|(q, _)| q == p).expect("kept");
            assert!(&now.1 == bytes, "{p} was rewritten");
        }
    }
    assert!(
        second
            .iter()
            .any(|(p, _)| p == "scope=U01/period=2025-11/part-0.parquet")
    );
    assert!(!second.iter().any(|(p, _)| p.contains("period=2025-12")));
    assert!(!gone("2025-10").exists() && !gone("2025-10").parent().unwrap().exists());
    assert!(gone("2025-09").exists());
    std::fs::remove_dir_all(kpis.join("scope=GONE")).unwrap();
    let second = files_under(&kpis);
    // The same as a full run as of the same date.
    let o = run(&["run", job.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(files_under(&kpis) == second);
    // Bad period, and a partition column the result does not have.
    let o = run(&["run", job.to_str().unwrap(), "--period", "November"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("November"), "{}", text(&o));
    std::fs::write(
        &job,
        "data = \"sample\"\nout = \"out\"\n[[analysis]]\nname = \"risk\"\nkind = \"risk\"\npartition_by = [\"period\"]\n",
    )
    .unwrap();
    let o = run(&["run", job.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no column `period`"), "{}", text(&o));
}

/// `--config` plus flags: the flags that were given override the file, the
/// flags that were not given change nothing.
#[test]
fn config_file_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(dir.path());
    let cfg = dir.path().join("risk.toml");
    std::fs::write(
        &cfg,
        "by = \"zone\"\nrule = \"static\"\nhalf_life_days = 30.0\n",
    )
    .unwrap();
    let csv = |args: &[&str]| {
        let o = run(&[&["risk", data.as_str(), "--format", "csv"], args].concat());
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8(o.stdout).unwrap()
    };
    let from_file = csv(&["--config", cfg.to_str().unwrap()]);
    let from_flags = csv(&["--by", "zone", "--rule", "static", "--half-life-days", "30"]);
    assert_eq!(from_file, from_flags);
    assert!(from_file.starts_with("site,zone,"), "{from_file}");
    // A flag given overrides the file; the others keep the file's values.
    let overridden = csv(&["--config", cfg.to_str().unwrap(), "--by", "site"]);
    let expected = csv(&["--by", "site", "--rule", "static", "--half-life-days", "30"]);
    assert_eq!(overridden, expected);
    assert_ne!(overridden, csv(&["--by", "site"]));
    // An unknown key of the file is named.
    std::fs::write(&cfg, "colour = \"red\"\n").unwrap();
    let o = run(&["risk", &data, "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("colour"), "{}", text(&o));
}

/// Every analysis of the registry is a subcommand whose help lists its
/// options; `options` prints the registry.
#[test]
fn subcommands_come_from_the_registry() {
    let o = run(&["options"]);
    assert!(o.status.success(), "{}", text(&o));
    let registry: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for a in registry.as_array().unwrap() {
        let name = a["name"].as_str().unwrap();
        let h = run(&[name, "--help"]);
        assert!(h.status.success(), "{name}: {}", text(&h));
        for opt in a["options"].as_array().unwrap() {
            let flag = format!("--{}", opt["name"].as_str().unwrap().replace('_', "-"));
            assert!(text(&h).contains(&flag), "{name} --help lacks {flag}");
        }
    }
    // Options every surface had not before: targets' tolerance, density's bbox.
    let dir = tempfile::tempdir().unwrap();
    let data = sample(dir.path());
    let o = run(&["targets", &data, "--tolerance", "0.2", "--format", "csv"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&[
        "density",
        &data,
        "--bbox",
        "0,0,30,30",
        "--resolution",
        "3",
        "--format",
        "csv",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let rows = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .count();
    assert_eq!(rows, 1 + 100, "a 30 m × 30 m box at 3 m: 10 × 10 cells");
}

/// `sql` runs queries only unless writes are allowed: `COPY … TO` and
/// `CREATE EXTERNAL TABLE` are refused with exit 2 and write nothing.
#[test]
fn sql_is_read_only_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(dir.path());
    let target = dir.path().join("leak.csv");
    let copy = format!("COPY (SELECT 'x' AS a) TO '{}'", target.display());
    let o = run(&["sql", &data, &copy]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("only queries run here"), "{}", text(&o));
    assert!(text(&o).contains("--allow-write"), "{}", text(&o));
    assert!(!target.exists());
    let create = format!(
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '{}'",
        dir.path().display()
    );
    let o = run(&["sql", &data, &create]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = run(&["sql", &data, "SET datafusion.execution.batch_size = 1"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // Queries run as before; writes run when allowed.
    let o = run(&[
        "sql",
        &data,
        "SELECT count(*) AS n FROM cells",
        "--format",
        "csv",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&["sql", &data, &copy, "--allow-write"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(target.exists());
}

/// A job's outputs cannot collide: no analysis named `run-summary`, no
/// format or chart listed twice.
#[test]
fn job_output_names_cannot_collide() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(dir.path());
    let job = dir.path().join("job.toml");
    let write = |analysis: &str| {
        std::fs::write(
            &job,
            format!("data = \"{data}\"\nout = \"out\"\n\n[[analysis]]\n{analysis}\n"),
        )
        .unwrap()
    };
    write("name = \"run-summary\"\nkind = \"heatmap\"\nformats = [\"json\"]");
    let o = run(&["run", job.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("`run-summary` is the name of the run summary"),
        "{}",
        text(&o)
    );
    write("name = \"hm\"\nkind = \"heatmap\"\nformats = [\"csv\", \"csv\"]");
    let o = run(&["run", job.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("`csv` is listed twice in `formats`"),
        "{}",
        text(&o)
    );
    assert!(!dir.path().join("out").exists());
}

#[test]
fn validate_requires_what_the_dataset_declares() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // Readings only, hazards only: each declared table loads, exit 0.
    for m in ["air-quality-no2.toml", "nyc311-hazards.toml"] {
        let m = repo.join("examples/real").join(m);
        let o = run(&["validate", m.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        // What the present tables enable, and what is missing for the rest.
        let t = text(&o);
        if m.ends_with("nyc311-hazards.toml") {
            assert!(
                t.contains(
                    "  hazards: heatmap, risk, density, patterns, peaks, trends, kpis, alerts, overview, report\n"
                ) && t.contains("  not available: hotspots (needs cells)")
                    && t.contains("  not available: knox (needs one of incidents)"),
                "{t}"
            );
        } else {
            assert!(
                t.contains("  readings: risk, alerts, overview\n")
                    && t.contains(
                        "  not available: heatmap (needs one of incidents, hazards, violations)"
                    ),
                "{t}"
            );
        }
        // Asked for a table it does not have: exit 1, named.
        let o = run(&["validate", m.to_str().unwrap(), "--require", "incidents"]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(
            text(&o).contains("required table `incidents`"),
            "{}",
            text(&o)
        );
    }
    // A declared table without a single accepted row fails.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("incidents.csv"),
        "id,occurred_at,site,category,severity\n1,not a date,S1,fall,minor\n",
    )
    .unwrap();
    let o = run(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("`incidents` has no accepted rows"),
        "{}",
        text(&o)
    );
}

/// `map-init` on every real file in the repository writes a draft that
/// loads it: the table, the time columns and formats, coordinates and the
/// coded columns guessed from the header and a sample.
#[test]
fn map_init_drafts_a_mapping_that_loads_each_real_file() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/real");
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "police-stops/minneapolis_stops_2017.parquet",
            "violations",
            51_920,
            &["[[grid]]", "coordinates = \"lonlat\"", "kind = \"problem\""][..],
        ),
        (
            "city-service-requests/nyc311_2014-2019_sample.csv",
            "hazards",
            933,
            &["formats = [\"%m/%d/%Y %I:%M:%S %p\"]", "closed_at"][..],
        ),
        (
            "mine-accidents/msha_accidents_2000-2015_sample.csv",
            "incidents",
            1_989,
            &[
                "formats = [\"excel\"]",
                "time_column = \"ACCIDENT_TIME\"",
                "time_unknown = [\"9996\", \"9997\", \"9998\", \"9999\"]",
                "repeats in the sample (2.20E+11)",
                "\"NO VALUE FOUND\"",
            ][..],
        ),
        (
            "gas-sensors/air_quality_uci.csv",
            "readings",
            9_357,
            &[
                "time_column = \"Time\"",
                "time_format = \"hh:mm\"",
                "formats = [\"%d/%m/%Y\"]",
            ][..],
        ),
    ];
    for (file, table, accepted, expect) in cases {
        let folder = file.split('/').next().unwrap();
        std::fs::create_dir_all(dir.path().join(folder)).unwrap();
        std::fs::copy(src.join(file), dir.path().join(file)).unwrap();
        let draft = dir.path().join(format!("{folder}.toml"));
        let o = run(&[
            "map-init",
            dir.path().join(file).to_str().unwrap(),
            "--out",
            draft.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{file}: {}", text(&o));
        let toml = std::fs::read_to_string(&draft).unwrap();
        assert!(
            toml.contains(&format!("[tables.{table}]")),
            "{file}:\n{toml}"
        );
        assert!(
            toml.contains(&format!("path = \"{file}\"")),
            "{file}:\n{toml}"
        );
        for e in expect {
            assert!(toml.contains(e), "{file}: no {e:?} in\n{toml}");
        }
        let o = run(&["validate", draft.to_str().unwrap(), "--json"]);
        assert!(o.status.success(), "{file}: {}", text(&o));
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            report["tables"][table]["rows_accepted"], accepted,
            "{file}: {report}"
        );
        // A second draft never replaces the first.
        let o = run(&[
            "map-init",
            dir.path().join(file).to_str().unwrap(),
            "--out",
            draft.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    }
    let o = run(&[
        "map-init",
        src.join("gas-sensors/air_quality_uci.csv")
            .to_str()
            .unwrap(),
        "--table",
        "accidents",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("unknown table `accidents`; canonical tables are cells, incidents"),
        "{}",
        text(&o)
    );
}
