//! Seeded mutation fuzzing of every parser the input passes through: the
//! timestamp and time-of-day parsers, mapping files, job files, CSV, NDJSON
//! and Parquet ingest (followed by an analysis of what was accepted), and a
//! store's manifest.
//!
//! Each target starts from real seeds (the bundled real files and their
//! mappings, the sample, the example job) and mutates them with a fixed
//! seed: bit flips, bytes of syntax, dictionary tokens (absurd dates,
//! huge numbers, separators), deletions, duplications, splices. Nothing may
//! panic, and every validation report must add up (read = accepted +
//! rejected). A crashing input is written to `target/fuzz-crashes/` and
//! named in the failure, to become a regression test.
//!
//! `make test` runs a few hundred inputs per target; `make fuzz` runs
//! `SAFETYSCOPE_FUZZ_SECONDS` per target (default one hour). Set
//! `SAFETYSCOPE_FUZZ_ITERS` to choose the count instead.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use safetyscope_core::model::schema::TableKind;
use safetyscope_core::timeparse::{TimeOfDayFormat, TsFormat, parse_date, parse_timestamp};
use safetyscope_core::{Dataset, Mapping, OnTableError};

mod common;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// SplitMix64: a small, seeded generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Tokens that break parsers: absurd dates and numbers, separators, quotes,
/// encodings, TOML and JSON syntax.
const DICT: &[&str] = &[
    "0",
    "-1",
    "9999999999999999999",
    "2147483647",
    "-2147483648",
    "NaN",
    "inf",
    "1e308",
    "+262142-12-31 23:00:00",
    "1970-01-01",
    "9999-12-31",
    "0000-00-00",
    "2025-02-30",
    "24:00",
    "23:59:60",
    "8210266876799",
    "%Y",
    "%Q",
    "%",
    "\"",
    ",",
    ";",
    "\t",
    "\n",
    "\r\n",
    "\\",
    "{",
    "}",
    "[",
    "]",
    "=",
    "'",
    "null",
    "true",
    "\u{feff}",
    "\u{0}",
    "é",
    "\u{ffff}",
    "../",
    "/etc/passwd",
    "s3://x/y",
    "[[analysis]]",
    "[tables.incidents]",
    "formats = [\"unix\"]",
    "row_number = true",
    "severity",
    "occurred_at",
    "fatal",
    "near_miss",
    "cell",
    "row",
    "col",
    "U01",
    LONG,
];

/// A text longer than the text limit.
const LONG: &str = concat!(
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
);

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(4) {
        let n = v.len();
        match rng.below(8) {
            0 if n > 0 => {
                let i = rng.below(n);
                v[i] ^= 1 << rng.below(8);
            }
            1 if n > 0 => {
                let i = rng.below(n);
                let syntax = b"\"\n,;:-+09 .eE\\{}[]=#\0\xff";
                v[i] = syntax[rng.below(syntax.len())];
            }
            2 => {
                let i = rng.below(n + 1);
                let t = DICT[rng.below(DICT.len())].as_bytes();
                v.splice(i..i, t.iter().copied());
            }
            3 if n > 0 => {
                let a = rng.below(n);
                let b = (a + 1 + rng.below(64)).min(n);
                v.drain(a..b);
            }
            4 if n > 0 => {
                let a = rng.below(n);
                let b = (a + 1 + rng.below(256)).min(n);
                let part = v[a..b].to_vec();
                let i = rng.below(n + 1);
                v.splice(i..i, part);
            }
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let a = rng.below(other.len());
                    let b = (a + 1 + rng.below(512)).min(other.len());
                    let i = rng.below(n + 1);
                    v.splice(i..i, other[a..b].iter().copied());
                }
            }
            6 if n > 0 => v.truncate(rng.below(n)),
            _ => {
                // A number replaced by an extreme one.
                if let Some(i) = (0..n)
                    .map(|k| (k + rng.below(n)) % n)
                    .find(|&k| v[k].is_ascii_digit())
                {
                    let t = ["0", "99999999999", "-1", "2147483647", "1e400"][rng.below(5)];
                    v.splice(i..i + 1, t.bytes());
                }
            }
        }
    }
    v
}

/// Inputs per target: `SAFETYSCOPE_FUZZ_ITERS`, or as many as fit in
/// `SAFETYSCOPE_FUZZ_SECONDS`, or `default`.
fn budget(default: usize) -> (usize, Option<Duration>) {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    match (
        env("SAFETYSCOPE_FUZZ_ITERS"),
        env("SAFETYSCOPE_FUZZ_SECONDS"),
    ) {
        (Some(n), _) => (n as usize, None),
        (None, Some(s)) => (usize::MAX, Some(Duration::from_secs(s))),
        _ => (default, None),
    }
}

/// Run `f` on mutated seeds; a panic fails with the input saved.
fn fuzz(name: &str, seed: u64, default: usize, seeds: Vec<Vec<u8>>, f: impl Fn(&[u8])) {
    assert!(
        !seeds.is_empty() && seeds.iter().all(|s| !s.is_empty()),
        "{name}: seeds"
    );
    let (iters, time) = budget(default);
    let mut rng = Rng(seed);
    let start = Instant::now();
    let mut done = 0usize;
    // The seeds themselves first.
    let inputs = seeds
        .clone()
        .into_iter()
        .map(Some)
        .chain(std::iter::repeat(None));
    for given in inputs {
        if done >= iters || time.is_some_and(|t| start.elapsed() > t) {
            break;
        }
        let input = given.unwrap_or_else(|| mutate(&mut rng, &seeds));
        if catch_unwind(AssertUnwindSafe(|| f(&input))).is_err() {
            let dir = repo().join("target/fuzz-crashes");
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(format!("{name}-{seed}-{done}.bin"));
            std::fs::write(&path, &input).unwrap();
            panic!(
                "{name}: input {done} panicked; saved as {} (starts {:?})",
                path.display(),
                String::from_utf8_lossy(&input[..input.len().min(200)])
            );
        }
        done += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "{name}: {done} inputs in {secs:.1} s ({:.0}/s), no panic",
        done as f64 / secs.max(1e-9)
    );
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(repo().join(rel)).unwrap()
}

/// The first `n` lines of a file.
fn head(rel: &str, n: usize) -> Vec<u8> {
    let text = read(rel);
    let end = text
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(n)
        .map_or(text.len(), |(i, _)| i + 1);
    text[..end].to_vec()
}

/// Every table of a report adds up.
fn check_report(ds: &Dataset) {
    for (name, t) in &ds.report().tables {
        if t.error.is_none() {
            assert_eq!(
                t.rows_read,
                t.rows_accepted + t.rows_rejected(),
                "{name}: read ≠ accepted + rejected"
            );
        }
    }
}

#[test]
fn timestamp_parsers() {
    let seeds: Vec<Vec<u8>> = [
        "%Y-%m-%d %H:%M:%S\n2025-03-01 08:15:00",
        "%m/%d/%Y\n09/20/2009",
        "%d.%m.%Y %H.%M.%S\n10/03/2004 18.00.00",
        "unix\n1735718400",
        "unix_ms\n1735718400000",
        "excel\n45000.75",
        "rfc3339\n2024-03-01T08:00:00+08:00",
        "%H%M\n0930",
        "%Y-%m-%dT%H:%M:%S%.f%:z\n2025-01-01T00:00:00.123+05:30",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let tz = safetyscope_core::timeparse::parse_tz("Asia/Shanghai").unwrap();
    fuzz("timestamps", 1, 200_000, seeds, |input| {
        let text = String::from_utf8_lossy(input);
        let (fmt, value) = text.split_once('\n').unwrap_or((&text, ""));
        let f = TsFormat::parse(fmt);
        let _ = parse_timestamp(value, std::slice::from_ref(&f), &tz);
        let _ = parse_date(value, std::slice::from_ref(&f));
        if let Ok(t) = TimeOfDayFormat::parse(fmt) {
            let _ = t.parse_value(value);
            let _ = t.parse_with_day(value);
        }
    });
}

#[test]
fn mapping_files() {
    let seeds = vec![
        read("examples/real/mine-accidents.toml"),
        read("examples/real/nyc311-hazards.toml"),
        read("examples/real/air-quality-no2.toml"),
        safetyscope_core::generate::dataset_toml(&Default::default()).into_bytes(),
    ];
    fuzz("mapping", 2, 30_000, seeds, |input| {
        let _ = Mapping::from_toml(&String::from_utf8_lossy(input), "/base", "fuzz.toml");
    });
}

#[test]
fn job_files() {
    let seeds = vec![read("examples/jobs/nightly.toml"), read("bench/job.toml")];
    fuzz("job", 3, 30_000, seeds, |input| {
        let _ = safetyscope_core::job::Job::parse(&String::from_utf8_lossy(input), "fuzz.toml");
    });
}

/// Load `bytes` as the table `kind` (optionally through a mapping), check
/// the report, and run an analysis over what was accepted.
fn load_and_analyse(kind: TableKind, name: &str, bytes: &[u8], mapping: Option<&Mapping>) {
    let files = vec![(kind, name.to_string(), bytes::Bytes::copy_from_slice(bytes))];
    let Ok(ds) = Dataset::from_bytes(Some("Asia/Shanghai"), files, mapping) else {
        return;
    };
    check_report(&ds);
    for (analysis, options) in [
        ("patterns", serde_json::json!({})),
        ("heatmap", serde_json::json!({})),
        ("kpis", serde_json::json!({"periods": ["year"]})),
    ] {
        let serde_json::Value::Object(o) = options else {
            unreachable!()
        };
        let _ = common::block_on(safetyscope_core::api::run(&ds, analysis, o));
    }
}

#[test]
fn csv_and_ndjson_ingest() {
    let csv: Vec<Vec<u8>> = vec![
        b"id,occurred_at,site,category,severity,zone,cell,lost_days\n\
          1,2025-03-01 08:15:00,U01,fall,minor,workshop,A1,2\n\
          2,2025-03-02 23:59:59,U02,fire,near_miss,warehouse,B7,\n\
          3,2025-12-31 00:00:00,U01,struck_by_object,fatal,,C3,6000\n"
            .to_vec(),
    ];
    fuzz("csv", 4, 400, csv, |input| {
        load_and_analyse(TableKind::Incidents, "incidents.csv", input, None);
    });
    let ndjson = vec![
        b"{\"id\":\"1\",\"occurred_at\":\"2025-03-01T08:15:00+08:00\",\"site\":\"U01\",\"category\":\"fall\",\"severity\":\"minor\"}\n\
          {\"id\":\"2\",\"occurred_at\":\"2025-07-01 10:00:00\",\"site\":\"U02\",\"category\":\"fire\",\"severity\":\"serious\",\"lost_days\":30}\n"
            .to_vec(),
    ];
    fuzz("ndjson", 5, 400, ndjson, |input| {
        load_and_analyse(TableKind::Incidents, "incidents.ndjson", input, None);
    });
}

#[test]
fn real_files_through_their_mappings() {
    for (i, (mapping, data, kind)) in [
        (
            "examples/real/mine-accidents.toml",
            "examples/real/mine-accidents/msha_accidents_2000-2015_sample.csv",
            TableKind::Incidents,
        ),
        (
            "examples/real/nyc311-hazards.toml",
            "examples/real/city-service-requests/nyc311_2014-2019_sample.csv",
            TableKind::Hazards,
        ),
        (
            "examples/real/air-quality-no2.toml",
            "examples/real/gas-sensors/air_quality_uci.csv",
            TableKind::Readings,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let m =
            Mapping::from_toml(&String::from_utf8_lossy(&read(mapping)), "/base", mapping).unwrap();
        let seeds = vec![head(data, 60)];
        fuzz(&format!("real-{i}"), 10 + i as u64, 200, seeds, |input| {
            load_and_analyse(kind, "data.csv", input, Some(&m));
        });
    }
}

#[test]
fn parquet_ingest() {
    let o = safetyscope_core::generate::GenerateOptions {
        scale: 0.002,
        sites: 1,
        only: Some(vec![TableKind::Incidents]),
        ..Default::default()
    };
    let (files, _) = safetyscope_core::generate::generate_parquet_bytes(&o).unwrap();
    let seeds: Vec<Vec<u8>> = files
        .into_iter()
        .filter(|(k, _)| *k == TableKind::Incidents)
        .map(|(_, v)| v)
        .collect();
    fuzz("parquet", 6, 300, seeds, |input| {
        load_and_analyse(TableKind::Incidents, "incidents.parquet", input, None);
    });
}

/// A store of a tiny one-site sample, ingested under `dir`.
fn tiny_store(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    let o = safetyscope_core::generate::GenerateOptions {
        scale: 0.002,
        sites: 1,
        ..Default::default()
    };
    safetyscope_core::generate::generate_to_dir(&data, &o).unwrap();
    let store = dir.join("store");
    safetyscope_core::store::ingest(&data, None, &store, &Default::default(), &|_| {}).unwrap();
    store
}

#[test]
fn store_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let store = tiny_store(dir.path());
    let file = store.join("_safetyscope.json");
    let original = std::fs::read(&file).unwrap();
    fuzz("manifest", 7, 400, vec![original.clone()], |input| {
        std::fs::write(&file, input).unwrap();
        if let Ok(ds) = Dataset::open(&store, None, OnTableError::Fail) {
            check_report(&ds);
            let _ = common::block_on(safetyscope_core::api::run(
                &ds,
                "heatmap",
                Default::default(),
            ));
        }
    });
    std::fs::write(&file, original).unwrap();
}

// ---------------------------------------------------------------- regressions
// Inputs the fuzzer found, kept as tests.

/// `manifest-7-86`: a manifest whose report claims 89,999,999,999,960 rows
/// read for 8,760 stored was opened, and its report believed.
#[test]
fn a_manifest_whose_report_does_not_add_up_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = tiny_store(dir.path());
    let file = store.join("_safetyscope.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    m["report"]["tables"]["readings"]["rows_read"] = serde_json::json!(89_999_999_999_960u64);
    std::fs::write(&file, serde_json::to_vec(&m).unwrap()).unwrap();
    let e = Dataset::open(&store, None, OnTableError::Fail).unwrap_err();
    assert_eq!(e.exit_code(), 3, "{e}");
    assert!(
        e.to_string().contains("readings") && e.to_string().contains("89999999999960"),
        "{e}"
    );
}
