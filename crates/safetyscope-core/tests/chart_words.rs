//! Charts in Chinese: every analysis that draws a chart, asked for `lang =
//! "zh"`, writes no English word in its texts and hover titles (method
//! names and abbreviations aside); an unknown language is an option error.

mod common;

use safetyscope_core::api::{ANALYSES, run};
use safetyscope_core::generate::GenerateOptions;
use serde_json::{Map, Value, json};

/// Words a Chinese chart keeps: names of methods and of measures.
const KEPT: &[&str] = &[
    "FDR", "Getis", "Ord", "Gi", "TRIR", "LTIFR", "LEC", "LS", "PAI",
];

/// The texts of an SVG: the contents of its `<text>` and `<title>`
/// elements and its `aria-label`.
fn texts(svg: &str) -> Vec<String> {
    let mut out = vec![];
    for (open, close) in [("<text", "</text>"), ("<title", "</title>")] {
        let mut rest = svg;
        while let Some(i) = rest.find(open) {
            let after = &rest[i..];
            let Some(start) = after.find('>') else { break };
            let Some(end) = after.find(close) else { break };
            out.push(after[start + 1..end].to_string());
            rest = &after[end..];
        }
    }
    let mut rest = svg;
    while let Some(i) = rest.find("aria-label=\"") {
        let after = &rest[i + 12..];
        let end = after.find('"').unwrap_or(after.len());
        out.push(after[..end].to_string());
        rest = &after[end..];
    }
    out
}

/// English words (two or more ASCII letters) of a text, apart from the
/// kept ones and the hot/cold histories of emerging hot spots (`H`, `C`).
fn english(text: &str) -> Vec<String> {
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    text.split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| w.len() >= 2)
        .filter(|w| !KEPT.contains(w))
        .filter(|w| !w.chars().all(|c| c == 'H' || c == 'C'))
        .map(str::to_string)
        .collect()
}

fn options(pairs: Value) -> Map<String, Value> {
    pairs.as_object().cloned().unwrap_or_default()
}

#[test]
fn chinese_charts_have_no_english_words() {
    let (ds, _) = common::load(&GenerateOptions::default());
    let mut drawn = 0;
    for a in ANALYSES.iter().filter(|a| a.chart.is_some()) {
        let cases: Vec<Value> = match a.name {
            "heatmap" | "hotspots" | "risk" | "density" | "emerging" => {
                vec![json!({"site": "U01"})]
            }
            "patterns" => vec![
                json!({"view": "profile"}),
                json!({"view": "profile", "by": ["zone"]}),
                json!({"view": "profile", "by": ["category"]}),
                json!({"view": "pareto"}),
            ],
            "peaks" => vec![json!({}), json!({"grid": "hour"})],
            "alerts" => vec![json!({"list": "overdue"})],
            "backtest" => vec![json!({}), json!({"view": "calibration"})],
            _ => vec![json!({})],
        };
        for case in cases {
            let mut o = options(case.clone());
            o.insert("lang".into(), "zh".into());
            let out = common::block_on(run(&ds, a.name, o))
                .unwrap_or_else(|e| panic!("{} {case}: {e}", a.name));
            let svg = out
                .chart
                .unwrap_or_else(|| panic!("{} {case}: no chart", a.name));
            let words: Vec<String> = texts(&svg).iter().flat_map(|t| english(t)).collect();
            assert!(words.is_empty(), "{} {case}: {words:?}", a.name);
            drawn += 1;
        }
    }
    assert!(drawn >= 14, "{drawn} charts");
}

#[test]
fn the_chart_language_is_an_option_of_every_charted_analysis() {
    let (ds, _) = common::load(&GenerateOptions::default());
    for a in ANALYSES {
        let has = a.options().iter().any(|o| o.name == "lang");
        assert_eq!(has, a.chart.is_some() || a.name == "report", "{}", a.name);
    }
    let mut o = options(json!({"lang": "fr"}));
    o.insert("site".into(), "U01".into());
    let e = common::block_on(run(&ds, "risk", o))
        .unwrap_err()
        .to_string();
    assert!(e.contains("lang") && e.contains("fr"), "{e}");
    // English stays the default.
    let out = common::block_on(run(&ds, "trends", Map::new())).unwrap();
    assert!(out.chart.unwrap().contains("Monthly trend"));
}
