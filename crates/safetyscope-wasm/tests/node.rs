//! The dashboard's computations, run in WebAssembly under node.

use safetyscope_core::deps::arrow::array::StringArray;
use safetyscope_core::deps::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use safetyscope_wasm::{Session, generate_sample};
use wasm_bindgen_test::wasm_bindgen_test;

#[wasm_bindgen_test]
fn heatmap_in_wasm_counts_every_incident_of_the_site() {
    let sample = generate_sample(r#"{"scale":0.05,"sites":2,"seed":7}"#)
        .map_err(|_| "generate")
        .unwrap();
    let tables = sample.table_names();
    let names: Vec<String> = tables.iter().map(|t| format!("{t}.parquet")).collect();
    let files: Vec<js_sys::Uint8Array> = tables
        .iter()
        .map(|t| js_sys::Uint8Array::from(sample.bytes(t).map_err(|_| "bytes").unwrap().as_slice()))
        .collect();
    let session = Session::load(tables.clone(), names, files, None, None)
        .map_err(|_| "load")
        .unwrap();
    let out = session
        .heatmap(r#"{"site":"U01"}"#)
        .map_err(|_| "heatmap")
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 36);
    let total: i64 = rows.iter().map(|r| r["events"].as_i64().unwrap()).sum();
    let report: serde_json::Value = serde_json::from_str(&session.validation()).unwrap();
    assert_eq!(
        report["tables"]["incidents"]["rejected"],
        serde_json::json!({})
    );
    // Every incident of U01, counted straight from the Parquet bytes, lands in
    // one of its 36 cells.
    let raw = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(
        sample.bytes("incidents").map_err(|_| "bytes").unwrap(),
    ))
    .unwrap()
    .build()
    .unwrap();
    let mut u01 = 0i64;
    for b in raw {
        let b = b.unwrap();
        let site = b
            .column_by_name("site")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        u01 += (0..b.num_rows())
            .filter(|&i| site.value(i) == "U01")
            .count() as i64;
    }
    assert_eq!(total, u01);
    assert!(total > 0);
    assert!(v["svg"].as_str().unwrap().starts_with("<svg"));

    // Hot spots of the same site: one row per cell, a z-score for each.
    let hs: serde_json::Value = serde_json::from_str(
        &session
            .hotspots(r#"{"site":"U01","weights":"rook"}"#)
            .map_err(|_| "hotspots")
            .unwrap(),
    )
    .unwrap();
    let rows = hs["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 36);
    assert!(
        rows.iter()
            .all(|r| r["z"].as_f64().is_some_and(f64::is_finite))
    );
    let corners = rows
        .iter()
        .filter(|r| r["neighbors"].as_u64() == Some(2))
        .count();
    assert_eq!(corners, 4);
}

#[wasm_bindgen_test]
fn bad_file_gives_a_readable_error() {
    let err = Session::load(
        vec!["incidents".into()],
        vec!["incidents.csv".into()],
        vec![js_sys::Uint8Array::from(&b"a,b\n1,2\n"[..])],
        None,
        None,
    );
    assert!(err.is_err());
}
