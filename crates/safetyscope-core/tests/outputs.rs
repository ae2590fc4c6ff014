//! Results written as they are computed: the points ledger in batches
//! equals the ledger built whole, and a file sink writes the same file as
//! the whole result, leaving nothing behind when dropped unfinished.

mod common;

use arrow::array::RecordBatch;
use safetyscope_core::alerts::{
    AlertOptions, points_ledger, points_ledger_batches, write_points_ledger,
};
use safetyscope_core::generate::GenerateOptions;
use safetyscope_core::output::{FileSink, write_batches};

use common::{block_on, load};

#[test]
fn ledger_in_batches_equals_the_whole_ledger() {
    let (ds, _) = load(&GenerateOptions::default());
    let o = AlertOptions {
        as_of: Some("2025-12-01".into()),
        ..Default::default()
    };
    let whole = block_on(points_ledger(&ds, &o)).unwrap();
    assert!(whole.num_rows() > 2_000, "{} rows", whole.num_rows());
    let mut parts: Vec<RecordBatch> = vec![];
    block_on(points_ledger_batches(&ds, &o, 1_000, &mut |b| {
        parts.push(b);
        Ok(())
    }))
    .unwrap();
    // Batches end after the person that reaches the size: 11 months each.
    assert!(parts.len() > 2);
    assert!(parts.iter().all(|b| b.num_rows() < 1_000 + 11));
    let joined = arrow::compute::concat_batches(&whole.schema(), &parts).unwrap();
    assert_eq!(joined, whole);

    let dir = tempfile::tempdir().unwrap();
    for ext in ["parquet", "csv", "json", "ndjson"] {
        let (a, b) = (
            dir.path().join(format!("whole.{ext}")),
            dir.path().join(format!("parts.{ext}")),
        );
        write_batches(&a, std::slice::from_ref(&whole), &whole.schema()).unwrap();
        let mut sink = FileSink::create(&b, &whole.schema()).unwrap();
        for p in &parts {
            sink.write(p).unwrap();
        }
        assert_eq!(sink.rows(), whole.num_rows());
        sink.finish().unwrap();
        if ext == "parquet" {
            // Row groups differ; the rows are the same.
            let read = |p: &std::path::Path| {
                let f = std::fs::File::open(p).unwrap();
                let r = parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(f, 1 << 20)
                    .unwrap();
                let batches: Vec<RecordBatch> = r.map(Result::unwrap).collect();
                arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
            };
            assert_eq!(read(&a), read(&b));
        } else {
            assert_eq!(
                std::fs::read(&a).unwrap(),
                std::fs::read(&b).unwrap(),
                "{ext}"
            );
        }
    }
    // The ledger written as computed, to two files at once.
    let (csv, json) = (dir.path().join("led.csv"), dir.path().join("led.json"));
    let (rows, sizes) =
        block_on(write_points_ledger(&ds, &o, &[csv.clone(), json.clone()])).unwrap();
    assert_eq!(rows, whole.num_rows());
    assert_eq!(
        std::fs::read(&csv).unwrap(),
        std::fs::read(dir.path().join("whole.csv")).unwrap()
    );
    assert_eq!(
        std::fs::read(&json).unwrap(),
        std::fs::read(dir.path().join("whole.json")).unwrap()
    );
    assert_eq!(sizes[0], std::fs::metadata(&csv).unwrap().len());
    // Nothing to write: a CSV header alone, an empty JSON array.
    let empty = RecordBatch::new_empty(whole.schema());
    for (ext, want) in [
        (
            "csv",
            "site,person_id,month,rewards,penalties,change,total,below_floor\n",
        ),
        ("json", "[]"),
    ] {
        let p = dir.path().join(format!("empty.{ext}"));
        write_batches(&p, &[], &whole.schema()).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), want, "{ext}");
        write_batches(&p, std::slice::from_ref(&empty), &whole.schema()).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), want, "{ext}");
    }
    // Dropped unfinished: no target, no temporary file.
    let c = dir.path().join("dropped.csv");
    let mut sink = FileSink::create(&c, &whole.schema()).unwrap();
    sink.write(&parts[0]).unwrap();
    drop(sink);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains("dropped"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
