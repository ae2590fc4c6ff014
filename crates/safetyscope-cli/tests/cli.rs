//! The `safetyscope` binary end to end: exit codes, outputs, messages.

use std::path::Path;
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_safetyscope"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn sample(dir: &Path) -> String {
    let out = dir.join("sample");
    let o = run(&[
        "generate",
        "--out",
        out.to_str().unwrap(),
        "--scale",
        "0.05",
        "--sites",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    out.to_string_lossy().to_string()
}

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
