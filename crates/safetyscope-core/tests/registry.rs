//! The registry of analyses: every option documented, kinds and defaults
//! read from the options types, and docs/cli.md's option tables current.

use safetyscope_core::api::{ANALYSES, OptionKind, analysis};
use serde_json::{Value, json};

#[test]
fn every_option_of_every_analysis_has_a_doc() {
    for a in ANALYSES {
        let options = a.options();
        assert!(!options.is_empty(), "{} has no options", a.name);
        for o in options {
            assert!(
                !o.doc.is_empty(),
                "{}: option `{}` has no doc",
                a.name,
                o.name
            );
        }
    }
}

#[test]
fn kinds_and_defaults_come_from_the_options_types() {
    let risk = analysis("risk").unwrap().options();
    let get = |name: &str| risk.iter().find(|o| o.name == name).unwrap().clone();
    assert_eq!(get("per_exposure").kind, OptionKind::Bool);
    assert_eq!(get("per_exposure").default, json!(true));
    assert_eq!(get("half_life_days").kind, OptionKind::Number);
    assert_eq!(get("half_life_days").default, Value::Null);
    assert_eq!(
        get("by").kind,
        OptionKind::Choice(vec!["cell".into(), "zone".into(), "site".into()])
    );
    assert_eq!(get("by").default, json!("cell"));
    assert_eq!(get("weights").kind, OptionKind::Json);
    let hot = analysis("hotspots").unwrap().options();
    let alpha = hot.iter().find(|o| o.name == "alpha").unwrap();
    assert_eq!(
        (alpha.kind.clone(), alpha.default.clone()),
        (OptionKind::Number, json!(0.05))
    );
    let perms = hot.iter().find(|o| o.name == "permutations").unwrap();
    assert_eq!(perms.kind, OptionKind::Integer);
    let alerts = analysis("alerts").unwrap().options();
    let thresholds = alerts.iter().find(|o| o.name == "thresholds").unwrap();
    assert_eq!(thresholds.kind, OptionKind::Map);
    let patterns = analysis("patterns").unwrap().options();
    let kinds = patterns.iter().find(|o| o.name == "kinds").unwrap();
    assert!(
        matches!(&kinds.kind, OptionKind::List(k) if matches!(k.as_ref(), OptionKind::Choice(_)))
    );
    assert_eq!(kinds.default, json!(["incidents"]));
}

#[test]
fn knox_takes_the_selection_and_its_own_options_flat() {
    let names: Vec<String> = analysis("knox")
        .unwrap()
        .options()
        .into_iter()
        .map(|o| o.name)
        .collect();
    for n in [
        "distance",
        "days",
        "permutations",
        "seed",
        "kinds",
        "site",
        "from",
    ] {
        assert!(names.contains(&n.to_string()), "{n} in {names:?}");
    }
    assert!(!names.contains(&"events".to_string()));
}

#[test]
fn unknown_analyses_list_the_known_ones() {
    let e = analysis("heat").unwrap_err().to_string();
    assert!(
        e.contains("unknown analysis `heat`") && e.contains("heatmap, hotspots, risk"),
        "{e}"
    );
}

#[test]
fn cli_doc_option_tables_are_current() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/cli.md")).unwrap();
    let begin = "<!-- registry:begin (safetyscope options --markdown) -->\n";
    let end = "<!-- registry:end -->";
    let a = doc.find(begin).expect("begin marker") + begin.len();
    let b = doc.find(end).expect("end marker");
    assert_eq!(
        &doc[a..b],
        safetyscope_core::api::markdown(),
        "docs/cli.md is stale: run `safetyscope options --markdown` and paste it between the markers"
    );
}
