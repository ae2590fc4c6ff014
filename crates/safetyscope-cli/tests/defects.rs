//! Regression tests of reported defects, by their ids: each reproduces the
//! report and checks the documented outcome (exit code, message, files).
//!
//! | id | defect | expected now |
//! |----|--------|--------------|
//! | R1 | KPIs of 1,050 sites × 16 years took 22 GB whatever the memory limit | finish within the limit plus a constant; refused with the option to narrow below it |
//! | D4 | an output path could be an input (table file, store part) | exit 2, input untouched |
//! | D5 | typed Parquet instants outside the plausible range were accepted | rejected as `out_of_range` |
//! | A1 | a failing job left a mix of new and old outputs | old outputs and summary untouched |
//! | E1 | an output that cannot be written gave exit 1 | exit 3 |
//! | E2 | a damaged store part gave exit 4; concurrent writers were not kept apart | exit 3; a writer waits for readers, then fails with exit 3 |
//! | E3 | a missing input gave 1 from `validate` and 3 elsewhere | exit 3 from every command |
//! | E4 | an invalid date pattern rejected every row (exit 1) | exit 2 |
//! | S1 | `sql` accepted `COPY … TO` | exit 2 unless `--allow-write` |
//! | S3 | a mapping's path could be absolute, use `..` or a link out | exit 2 unless `--allow-outside` |
//! | M7 | an unknown key in a column's options gave "untagged enum Either" | exit 2 naming the key and the allowed ones |
//! | T1 | a hazards-only dataset reported 0 incidents and 0 fatalities | those KPIs null, naming the absent table |
//! | T2 | hot spots without a site plan gave one `not_on_plan` row and exit 0 | exit 1 saying a site plan is needed |
//! | T3 | JSON output dropped null fields; `peaks` wrote `p`/`q` where `hotspots` wrote `p_value`/`q_value` | every field in every row; `p_value`/`q_value` everywhere |
//!
//! The other ids are tested where their code lives:
//! P1 `overlong_text_is_out_of_range`, P2 `absurd_grid_positions_are_out_of_range`,
//! P3, P4 and R2 `implausible_instants_are_out_of_range` (core `tests/ingest.rs`);
//! D1 and D2 `a_store_whose_files_do_not_match_its_manifest_is_refused` (same file);
//! D3 `job_output_names_cannot_collide` and S1 `sql_is_read_only_unless_allowed`
//! (`tests/cli.rs`); S2 and A2 `temporary_names_are_fresh_and_stale_ones_are_removed`
//! (core `io/output.rs`); a store manifest whose report does not add up
//! (found by the fuzzer) in core `tests/fuzz.rs`.

use std::path::Path;

mod common;
use common::*;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .parent()
        .unwrap()
}

fn code(args: &[&str]) -> (Option<i32>, String) {
    let o = run(args);
    (o.status.code(), text(&o))
}

/// A mapping of the real mine-accident file, copied beside it into `dir`.
fn mine_mapping(dir: &Path, path: &str) -> String {
    let src = repo().join("examples/real");
    std::fs::create_dir_all(dir.join("mine-accidents")).unwrap();
    std::fs::copy(
        src.join("mine-accidents/msha_accidents_2000-2015_sample.csv"),
        dir.join("mine-accidents/msha_accidents_2000-2015_sample.csv"),
    )
    .unwrap();
    let text = std::fs::read_to_string(src.join("mine-accidents.toml")).unwrap();
    let text = text.replace(
        "path = \"mine-accidents/msha_accidents_2000-2015_sample.csv\"",
        &format!("path = {path:?}"),
    );
    let m = dir.join("mapping.toml");
    std::fs::write(&m, text).unwrap();
    m.to_string_lossy().to_string()
}

#[test]
fn e3_a_missing_input_is_exit_3_from_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let m = mine_mapping(dir.path(), "mine-accidents/gone.csv");
    let out = dir.path().join("o.csv");
    let out = out.to_str().unwrap();
    let store = dir.path().join("store");
    let cases: Vec<Vec<&str>> = vec![
        vec!["validate", &m],
        vec!["heatmap", &m, "--out", out],
        vec!["kpis", &m, "--out", out],
        vec!["patterns", &m, "--out", out],
        vec!["sql", &m, "select count(*) from incidents"],
        vec!["ingest", &m, "--out", store.to_str().unwrap()],
    ];
    for args in cases {
        let (c, t) = code(&args);
        assert_eq!(c, Some(3), "{args:?}: {t}");
        assert!(t.contains("gone.csv"), "{args:?}: {t}");
    }
    // A missing dataset folder, and a job whose data is missing.
    let (c, t) = code(&["validate", dir.path().join("nope").to_str().unwrap()]);
    assert_eq!(c, Some(3), "{t}");
    let job = dir.path().join("job.toml");
    std::fs::write(
        &job,
        "data = \"nope\"\nout = \"out\"\n[[analysis]]\nname = \"h\"\nkind = \"heatmap\"\n",
    )
    .unwrap();
    let (c, t) = code(&["run", job.to_str().unwrap()]);
    assert_eq!(c, Some(3), "{t}");
}

#[test]
fn e4_an_invalid_date_pattern_is_a_mapping_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("x.csv"),
        "id,t,site,cat,sev\n1,2025-01-01,S1,fire,minor\n",
    )
    .unwrap();
    let m = dir.path().join("m.toml");
    std::fs::write(
        &m,
        "[tables.incidents]\npath = \"x.csv\"\n[tables.incidents.columns]\nid = \"id\"\n\
         occurred_at = { column = \"t\", formats = [\"%Q-%m\"] }\nsite = \"site\"\n\
         category = \"cat\"\nseverity = \"sev\"\n",
    )
    .unwrap();
    let (c, t) = code(&["validate", m.to_str().unwrap()]);
    assert_eq!(c, Some(2), "{t}");
    assert!(t.contains("%Q-%m"), "{t}");
}

#[test]
fn s3_mapping_paths_stay_beside_the_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let inner = dir.path().join("team");
    let outside = dir.path().join("outside.csv");
    std::fs::write(&outside, "secret\n").unwrap();
    for (path, why) in [
        (outside.to_str().unwrap().to_string(), "absolute"),
        ("../outside.csv".to_string(), "`..`"),
    ] {
        let m = mine_mapping(&inner, &path);
        for args in [
            vec!["validate", m.as_str()],
            vec!["sql", m.as_str(), "select * from incidents"],
        ] {
            let (c, t) = code(&args);
            assert_eq!(c, Some(2), "{args:?}: {t}");
            assert!(t.contains(why) && t.contains("--allow-outside"), "{t}");
            assert!(!t.contains("secret"), "{t}");
        }
    }
    // A link inside the directory that leads out of it.
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&outside, inner.join("link.csv")).unwrap();
        let m = mine_mapping(&inner, "link.csv");
        let (c, t) = code(&["validate", &m]);
        assert_eq!(c, Some(2), "{t}");
        assert!(t.contains("symbolic link"), "{t}");
    }
    // Allowed explicitly, the real file outside is read.
    let copy = dir.path().join("mine.csv");
    std::fs::copy(
        inner.join("mine-accidents/msha_accidents_2000-2015_sample.csv"),
        &copy,
    )
    .unwrap();
    let m = mine_mapping(&inner, copy.to_str().unwrap());
    let (c, t) = code(&["--allow-outside", "validate", &m]);
    assert_eq!(c, Some(0), "{t}");
    // Job files are confined the same way.
    let job = inner.join("job.toml");
    std::fs::write(
        &job,
        "data = \"mapping.toml\"\nout = \"/tmp/elsewhere\"\n[[analysis]]\nname = \"h\"\nkind = \"heatmap\"\n",
    )
    .unwrap();
    let (c, t) = code(&["run", job.to_str().unwrap()]);
    assert_eq!(c, Some(2), "{t}");
    assert!(t.contains("job `out`"), "{t}");
}

#[test]
fn s1_sql_cannot_write_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(dir.path());
    let target = dir.path().join("written.csv");
    let q = format!("COPY (SELECT 'x' AS a) TO '{}'", target.display());
    let (c, t) = code(&["sql", &data, &q]);
    assert_eq!(c, Some(2), "{t}");
    assert!(!target.exists());
}

#[test]
fn d4_outputs_never_replace_or_join_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(dir.path());
    let table = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_stem().is_some_and(|s| s == "incidents"))
        .unwrap();
    let before = std::fs::read(&table).unwrap();
    let (c, t) = code(&["risk", &data, "--out", table.to_str().unwrap()]);
    assert_eq!(c, Some(2), "{t}");
    assert!(t.contains("the input"), "{t}");
    assert_eq!(std::fs::read(&table).unwrap(), before);
    let (c, t) = code(&[
        "heatmap",
        &data,
        "--out",
        Path::new(&data).join("risk.csv").to_str().unwrap(),
    ]);
    assert_eq!(c, Some(2), "{t}");
    // A store's part files, and the store given as its own input.
    let store = dir.path().join("store");
    let (c, t) = code(&["ingest", &data, "--out", store.to_str().unwrap()]);
    assert_eq!(c, Some(0), "{t}");
    let part = store.join("incidents/part-00000.parquet");
    assert!(part.exists());
    let (c, t) = code(&[
        "heatmap",
        store.to_str().unwrap(),
        "--out",
        part.to_str().unwrap(),
    ]);
    assert_eq!(c, Some(2), "{t}");
    let (c, t) = code(&["ingest", &data, "--out", &data]);
    assert_eq!(c, Some(2), "{t}");
    let (c, t) = code(&["validate", store.to_str().unwrap()]);
    assert_eq!(c, Some(0), "{t}");
}

#[test]
fn d5_typed_parquet_instants_outside_the_plausible_range_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(dir.path());
    let typed = dir.path().join("typed");
    std::fs::create_dir(&typed).unwrap();
    let q = format!(
        "COPY (SELECT id, arrow_cast(us, 'Timestamp(Microsecond, None)') AS occurred_at, \
         site, category, severity FROM (VALUES ('a', 32503680000000000), \
         ('b', 1735718400000000)) AS t(id, us) CROSS JOIN (SELECT 'U01' AS site, 'fire' AS category, 'minor' AS severity)) TO '{}'",
        typed.join("incidents.parquet").display()
    );
    let (c, t) = code(&["sql", &data, "--allow-write", &q]);
    assert_eq!(c, Some(0), "{t}");
    let (c, t) = code(&["validate", typed.to_str().unwrap()]);
    assert_eq!(c, Some(0), "{t}");
    assert!(
        t.contains("2 read, 1 accepted, 1 rejected") && t.contains("outside 1900–2100"),
        "{t}"
    );
}

#[test]
fn e1_an_output_that_cannot_be_written_is_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(dir.path());
    // A file where the output's directory should be.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let out = blocker.join("risk.csv");
    let (c, t) = code(&["risk", &data, "--out", out.to_str().unwrap()]);
    assert_eq!(c, Some(3), "{t}");
}

#[test]
fn e2_a_damaged_store_part_is_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(dir.path());
    let store = dir.path().join("store");
    let (c, t) = code(&["ingest", &data, "--out", store.to_str().unwrap()]);
    assert_eq!(c, Some(0), "{t}");
    let part = store.join("incidents/part-00000.parquet");
    let bytes = std::fs::read(&part).unwrap();
    // Truncated, then with its footer garbled, then gone.
    std::fs::write(&part, &bytes[..bytes.len() / 2]).unwrap();
    let (c, t) = code(&["kpis", store.to_str().unwrap()]);
    assert_eq!(c, Some(3), "{t}");
    let mut garbled = bytes.clone();
    let n = garbled.len();
    garbled[n - 12..n - 8].copy_from_slice(&[0xff; 4]);
    std::fs::write(&part, &garbled).unwrap();
    let (c, t) = code(&["heatmap", store.to_str().unwrap()]);
    assert_eq!(c, Some(3), "{t}");
    std::fs::remove_file(&part).unwrap();
    let (c, t) = code(&[
        "sql",
        store.to_str().unwrap(),
        "select count(*) from incidents",
    ]);
    assert_eq!(c, Some(3), "{t}");
}

#[test]
fn e2_a_store_being_read_keeps_its_writer_out() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(dir.path());
    let store = dir.path().join("store");
    let (c, t) = code(&["ingest", &data, "--out", store.to_str().unwrap()]);
    assert_eq!(c, Some(0), "{t}");
    // A reader (another process would take the same shared lock).
    let lock = std::fs::File::open(dir.path().join(".store.lock")).unwrap();
    lock.lock_shared().unwrap();
    let (c, t) = code(&[
        "ingest",
        &data,
        "--out",
        store.to_str().unwrap(),
        "--lock-wait",
        "0",
    ]);
    assert_eq!(c, Some(3), "{t}");
    assert!(
        t.contains("being read or written by another process"),
        "{t}"
    );
    // Readers share the store.
    let (c, t) = code(&["validate", store.to_str().unwrap()]);
    assert_eq!(c, Some(0), "{t}");
    lock.unlock().unwrap();
    let (c, t) = code(&["ingest", &data, "--out", store.to_str().unwrap()]);
    assert_eq!(c, Some(0), "{t}");
}

#[test]
fn a1_a_failing_job_leaves_the_previous_outputs() {
    let dir = tempfile::tempdir().unwrap();
    sample(dir.path());
    let job = dir.path().join("job.toml");
    let good = "data = \"sample\"\nout = \"out\"\nas_of = \"2025-12-01\"\n\
                [[analysis]]\nname = \"risk\"\nkind = \"risk\"\nformats = [\"csv\"]\n\
                [[analysis]]\nname = \"trends\"\nkind = \"trends\"\nformats = [\"csv\"]\n";
    std::fs::write(&job, good).unwrap();
    let (c, t) = code(&["run", job.to_str().unwrap()]);
    assert_eq!(c, Some(0), "{t}");
    let out = dir.path().join("out");
    let read = |n: &str| std::fs::read(out.join(n)).unwrap();
    let (risk, trends, summary) = (
        read("risk.csv"),
        read("trends.csv"),
        read("run-summary.json"),
    );
    // Same names, other options; the last analysis asks a chart of a
    // roll-up, which has none: found only after the others were computed.
    let bad = "data = \"sample\"\nout = \"out\"\nas_of = \"2025-12-01\"\n\
               [[analysis]]\nname = \"risk\"\nkind = \"risk\"\nformats = [\"csv\"]\n\
               options = { half_life_days = 7 }\n\
               [[analysis]]\nname = \"trends\"\nkind = \"trends\"\nformats = [\"csv\"]\n\
               options = { rolling = [6] }\n\
               [[analysis]]\nname = \"zones\"\nkind = \"heatmap\"\noptions = { by = \"zone\" }\n\
               charts = [\"svg\"]\n";
    std::fs::write(&job, bad).unwrap();
    let (c, t) = code(&["run", job.to_str().unwrap()]);
    assert_eq!(c, Some(2), "{t}");
    assert_eq!(read("risk.csv"), risk);
    assert_eq!(read("trends.csv"), trends);
    assert_eq!(read("run-summary.json"), summary);
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
}

#[cfg(target_os = "linux")]
#[test]
fn r1_kpis_of_many_sites_and_years_stay_within_the_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let m = mine_mapping(
        dir.path(),
        "mine-accidents/msha_accidents_2000-2015_sample.csv",
    );
    let out = dir.path().join("kpis.parquet");
    let log = dir.path().join("log");
    let mut child = bin()
        .args(["kpis", &m, "--memory-limit", "512M", "--out"])
        .arg(&out)
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // The child's peak resident memory (VmHWM only grows), read until it
    // exits.
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let status = loop {
        if let Ok(s) = std::fs::read_to_string(&status_file)
            && let Some(l) = s.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kib = l.split_whitespace().nth(1).and_then(|v| v.parse().ok());
            peak_kib = peak_kib.max(kib.unwrap_or(0));
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let t = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(0), "{t}");
    // 1,050 sites and the group, 16 years of months, quarters and years,
    // 41 KPIs per site window and the group's.
    assert!(t.contains("11332933 rows"), "{t}");
    // The limit plus the process's own constant (binary, runtime, buffers).
    let peak_mib = peak_kib / 1024;
    assert!(peak_mib > 0 && peak_mib < 512 + 256, "peak {peak_mib} MiB");
    // Below what the windows' sums need: refused, naming what narrows it.
    let (c, t) = code(&["kpis", &m, "--memory-limit", "20M"]);
    assert_eq!(c, Some(2), "{t}");
    assert!(t.contains("`scopes`") && t.contains("periods"), "{t}");
}

#[test]
fn an_unknown_column_option_is_named_with_the_allowed_ones() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.csv"), "id,t\n1,2025-01-01\n").unwrap();
    let m = dir.path().join("m.toml");
    std::fs::write(
        &m,
        "[tables.incidents]\npath = \"x.csv\"\n[tables.incidents.columns]\n\
         occurred_at = { column = \"t\", format = [\"%Y-%m-%d\"] }\n",
    )
    .unwrap();
    let (c, t) = code(&["validate", m.to_str().unwrap()]);
    assert_eq!(c, Some(2), "{t}");
    assert!(
        t.contains("occurred_at")
            && t.contains("unknown field `format`")
            && t.contains("`formats`"),
        "{t}"
    );
}

#[test]
fn t1_kpis_of_absent_tables_are_null_not_zero() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("k.json");
    let m = repo().join("examples/real/nyc311-hazards.toml");
    let (c, t) = code(&[
        "kpis",
        m.to_str().unwrap(),
        "--periods",
        "year",
        "--scopes",
        "group",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(c, Some(0), "{t}");
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let kpi = |k: &str| {
        rows.iter()
            .find(|r| r["kpi"] == k && r["period"] == "2018")
            .unwrap_or_else(|| panic!("{k}"))
    };
    for (k, missing) in [
        ("fatalities", "incidents"),
        ("incidents", "incidents"),
        ("trir", "incidents, exposure"),
        ("hours_worked", "exposure"),
        ("violations", "violations"),
    ] {
        let r = kpi(k);
        assert!(r["value"].is_null(), "{k}: {r}");
        assert_eq!(r["missing_tables"], missing, "{k}");
    }
    // The hazards the dataset does have are counted, with no absent table.
    let r = kpi("hazards_found");
    assert!(r["value"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["missing_tables"].is_null(), "{r}");
}

#[test]
fn t2_hot_spots_without_a_site_plan_say_so() {
    let m = repo().join("examples/real/nyc311-hazards.toml");
    for cmd in ["hotspots", "emerging"] {
        let (c, t) = code(&[cmd, m.to_str().unwrap(), "--kinds", "hazards"]);
        assert_eq!(c, Some(1), "{cmd}: {t}");
        assert!(
            t.contains("needs a site plan") && t.contains("`cells` table") && t.contains("none"),
            "{cmd}: {t}"
        );
    }
}

#[test]
fn t3_json_keeps_nulls_and_p_values_have_one_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("sample");
    let (c, t) = code(&[
        "generate",
        "--out",
        data.to_str().unwrap(),
        "--scale",
        "0.1",
    ]);
    assert_eq!(c, Some(0), "{t}");
    for (cmd, extra) in [("peaks", vec![]), ("hotspots", vec!["--site", "U01"])] {
        let out = dir.path().join(format!("{cmd}.ndjson"));
        let mut args = vec![cmd, data.to_str().unwrap(), "--out", out.to_str().unwrap()];
        args.extend(extra);
        let (c, t) = code(&args);
        assert_eq!(c, Some(0), "{cmd}: {t}");
        let text = std::fs::read_to_string(&out).unwrap();
        let rows: Vec<serde_json::Map<String, serde_json::Value>> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let keys: Vec<&String> = rows[0].keys().collect();
        assert!(
            rows.iter().all(|r| r.keys().collect::<Vec<_>>() == keys),
            "{cmd}"
        );
        assert!(
            rows[0].contains_key("p_value") && rows[0].contains_key("q_value"),
            "{cmd}: {keys:?}"
        );
        assert!(
            !rows[0].contains_key("p") && !rows[0].contains_key("q"),
            "{cmd}"
        );
        if cmd == "hotspots" {
            // `p_sim` is null without permutations: written, not dropped.
            assert!(rows.iter().all(|r| r["p_sim"].is_null()), "{cmd}");
        }
    }
}

#[test]
fn episode_lists_under_a_tight_memory_limit_equal_the_unlimited_ones() {
    // The fence-intrusion and alarm-episode aggregates hold their groups'
    // points in the memory pool. The full-size sample has 480,384 position
    // fixes (7.7 MB of points); a 16 MB pool holds them. Below about
    // 12 MB the aggregate spills, but a spilled batch of whole groups does
    // not always fit back: docs/cluster.md, "Memory of the episode
    // aggregates".
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("sample").to_string_lossy().to_string();
    let g = run(&["generate", "--out", &data]);
    assert!(g.status.success(), "{}", text(&g));
    for list in [
        &["--list", "intrusions"][..],
        &["--list", "intrusions", "--max-gap-minutes", "2"],
        &["--list", "episodes", "--from", "2024-01-01"],
    ] {
        let mut args = vec!["alerts", &data, "--format", "csv"];
        args.extend_from_slice(list);
        let free = run(&args);
        assert!(free.status.success(), "{}", text(&free));
        assert!(free.stdout.len() > 1000, "{list:?}");
        let mut limited = vec!["--memory-limit", "16M"];
        limited.extend_from_slice(&args);
        let tight = run(&limited);
        assert!(tight.status.success(), "{}", text(&tight));
        assert_eq!(free.stdout, tight.stdout, "{list:?}");
    }
}
