//! Times analyses over a dataset held in memory: the Rust side of
//! `bench/bench_python.py`, which times the same analyses called from
//! Python on the same tables.
//!
//! ```sh
//! cargo run --profile bench -p safetyscope-core --example in_memory -- DATA_DIR ANALYSES.json REPEAT
//! ```
//!
//! `DATA_DIR` holds `<table>.parquet` files and their `dataset.toml`
//! mapping (timezone, roster); `ANALYSES.json` is a list of `[name, kind, options]` with
//! `kind` and `options` as in a job file. Prints one JSON object: the
//! seconds to load the tables into a dataset and the median seconds of
//! every analysis.

use std::collections::BTreeMap;
use std::time::Instant;

use safetyscope_core::{Dataset, Mapping, TableKind};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, data, analyses, repeat] = args.as_slice() else {
        return Err("usage: in_memory DATA_DIR ANALYSES.json REPEAT".into());
    };
    let dir = std::path::Path::new(data);
    let repeat: usize = repeat.parse()?;
    let analyses: Vec<(String, String, serde_json::Value)> =
        serde_json::from_slice(&std::fs::read(analyses)?)?;
    let mapping = Mapping::from_file(&dir.join("dataset.toml"))?;
    let mut tables = BTreeMap::new();
    for kind in TableKind::ALL {
        let path = dir.join(format!("{}.parquet", kind.name()));
        if !path.is_file() {
            continue;
        }
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(&path)?,
        )?
        .with_batch_size(65_536)
        .build()?;
        tables.insert(kind, reader.collect::<Result<Vec<_>, _>>()?);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let t = Instant::now();
    let ds = Dataset::from_batches(None, tables, Some(&mapping))?;
    let load = t.elapsed().as_secs_f64();
    let mut out = serde_json::Map::new();
    for (name, kind, options) in &analyses {
        let options: toml::Table = toml::Table::try_from(options)?;
        let mut times = Vec::new();
        for _ in 0..repeat {
            let t = Instant::now();
            let (batch, _chart) = rt.block_on(safetyscope_core::job::compute_analysis(
                &ds, kind, &options, None,
            ))?;
            times.push(t.elapsed().as_secs_f64());
            std::hint::black_box(batch);
        }
        times.sort_by(f64::total_cmp);
        out.insert(name.clone(), times[times.len() / 2].into());
    }
    println!("{}", serde_json::json!({"load_s": load, "analyses": out}));
    Ok(())
}
