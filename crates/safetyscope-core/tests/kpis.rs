//! KPIs and targets on a dataset small enough to compute by hand, and the
//! generated KPI catalogue document.

mod common;

use arrow::array::{Array, Float64Array, RecordBatch, StringArray};
use safetyscope_core::kpis::{KpiOptions, Target, TargetOptions, kpis, track_targets};
use safetyscope_core::{Dataset, TableKind};

use common::block_on;

fn csv(kind: TableKind, text: &str) -> (TableKind, String, bytes::Bytes) {
    (
        kind,
        format!("{}.csv", kind.name()),
        bytes::Bytes::from(text.to_string()),
    )
}

/// Two sites, Q1 2025, Asia/Shanghai.
fn tiny() -> Dataset {
    let files = vec![
        csv(
            TableKind::Incidents,
            "id,occurred_at,site,zone,category,severity,lost_days\n\
             i1,2025-01-10 09:00,A,w1,machinery,minor,3\n\
             i2,2025-02-10 09:00,A,w2,machinery,first_aid,0\n\
             i3,2025-02-11 09:00,A,w1,vehicle,serious,120\n\
             i4,2025-03-05 22:00,B,w1,other,near_miss,\n\
             i5,2025-03-06 10:00,B,w1,other,fatal,\n",
        ),
        csv(
            TableKind::Exposure,
            "site,zone,period_start,period_end,hours_worked,headcount\n\
             A,w1,2025-01-01,2025-04-01,60000,30\n\
             A,w2,2025-01-01,2025-04-01,40000,20\n\
             B,w1,2025-01-01,2025-04-01,100000,50\n",
        ),
        csv(
            TableKind::Hazards,
            "id,reported_at,site,zone,level,due_at,closed_at\n\
             h1,2025-01-02 08:00,A,w1,general,2025-01-05 08:00,2025-01-03 08:00\n\
             h2,2025-01-03 08:00,A,w1,general,2025-01-06 08:00,2025-01-07 08:00\n\
             h3,2025-03-30 08:00,A,w2,major,2025-03-31 08:00,\n\
             h4,2025-02-01 08:00,B,w1,general,2025-02-04 08:00,2025-02-01 20:00\n",
        ),
        csv(
            TableKind::Activities,
            "kind,at,site,person_id,value\n\
             training,2025-01-15 14:00,A,p1,2\n\
             training,2025-02-15 14:00,A,p1,2\n\
             training,2025-02-16 14:00,A,p2,2\n\
             inspection,2025-01-20 10:00,A,L1,\n\
             inspection,2025-02-20 10:00,A,L1,\n\
             inspection,2025-03-20 10:00,A,L2,\n\
             drill,2025-03-15 15:00,A,,12\n\
             drill,2025-03-16 15:00,B,,18\n\
             equipment_check,2025-03-01 09:00,A,,1\n\
             equipment_check,2025-03-02 09:00,A,,0\n",
        ),
    ];
    Dataset::from_bytes(Some("Asia/Shanghai"), files, None).unwrap()
}

fn value(b: &RecordBatch, scope: &str, period: &str, kpi: &str) -> Option<f64> {
    let col = |n: &str| {
        b.column_by_name(n)
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .clone()
    };
    let (s, p, k) = (col("scope"), col("period"), col("kpi"));
    let v = b
        .column_by_name("value")
        .unwrap()
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    let i = (0..b.num_rows())
        .find(|&i| s.value(i) == scope && p.value(i) == period && k.value(i) == kpi)
        .unwrap_or_else(|| panic!("{scope} {period} {kpi}"));
    (!v.is_null(i)).then(|| v.value(i))
}

fn close(a: Option<f64>, b: f64) {
    let a = a.expect("a value");
    assert!((a - b).abs() < 1e-9 * b.abs().max(1.0), "{a} vs {b}");
}

#[test]
fn kpis_equal_hand_computed_values() {
    let ds = tiny();
    let o = KpiOptions {
        scopes: vec!["group".into(), "site".into(), "zone".into()],
        as_of: Some("2025-04-01".into()),
        ..Default::default()
    };
    let b = block_on(kpis(&ds, &o)).unwrap();
    // Site A, Q1: recordables i1 (minor) and i3 (serious); 100,000 h.
    close(
        value(&b, "A", "2025-Q1", "trir"),
        2.0 * 200_000.0 / 100_000.0,
    );
    close(value(&b, "A", "2025-Q1", "ltifr"), 2.0 * 1e6 / 100_000.0);
    close(
        value(&b, "A", "2025-Q1", "injury_severity_rate"),
        123.0 * 1e6 / 100_000.0,
    );
    close(
        value(&b, "A", "2025-Q1", "severity_rate"),
        123.0 * 200_000.0 / 100_000.0,
    );
    // Group: + B's fatality (6000 days by GB 6441); 200,000 h; 100 workers.
    close(value(&b, "group", "2025-Q1", "trir"), 3.0);
    close(value(&b, "group", "2025-Q1", "lost_days"), 6123.0);
    close(
        value(&b, "group", "2025-Q1", "fatality_rate_per_1000"),
        1.0 * 1000.0 / 100.0,
    );
    close(
        value(&b, "group", "2025-Q1", "injury_frequency_rate"),
        3.0 * 1e6 / 200_000.0,
    );
    // Zone A/w1: i1 and i3 over 60,000 h.
    close(
        value(&b, "A/w1", "2025-Q1", "trir"),
        2.0 * 200_000.0 / 60_000.0,
    );
    // Hazards of A in Q1: h1 (26 h), h2 (96 h, late), h3 open and overdue (major).
    close(value(&b, "A", "2025-Q1", "hazards_found"), 3.0);
    close(value(&b, "A", "2025-Q1", "rectification_rate"), 2.0 / 3.0);
    close(
        value(&b, "A", "2025-Q1", "rectification_cycle_hours"),
        (24.0 + 96.0) / 2.0,
    );
    close(
        value(&b, "A", "2025-Q1", "rectification_cycle_p90_hours"),
        24.0 + 0.9 * 72.0,
    );
    close(value(&b, "A", "2025-Q1", "on_time_rate"), 1.0 / 3.0);
    close(value(&b, "A", "2025-Q1", "open_hazards"), 1.0);
    close(value(&b, "A", "2025-Q1", "major_overdue_hazards"), 1.0);
    close(value(&b, "A", "2025-01", "rectification_rate"), 1.0);
    // Activities of A: 2 people trained of 50 on average; 3 inspections by
    // 2 leaders over 3 months; readiness 1 of 2; one drill of 12 min.
    close(value(&b, "A", "2025-Q1", "training_coverage"), 2.0 / 50.0);
    close(
        value(&b, "A", "2025-Q1", "leader_inspections_per_month"),
        3.0 / 2.0 / 3.0,
    );
    close(value(&b, "A", "2025-Q1", "equipment_readiness"), 0.5);
    close(
        value(&b, "group", "2025-Q1", "drill_response_minutes"),
        15.0,
    );
    // Days since the last lost-time injury of A at the end of March: i3.
    close(
        value(&b, "A", "2025-03", "days_since_lti"),
        (31.0 - 11.0) + 28.0 - 28.0 + 15.0 / 24.0 + 28.0,
    );
    // Zone scopes have no activity KPIs.
    let kinds = b
        .column_by_name("kpi")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let scopes = b
        .column_by_name("scope")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert!(
        !(0..b.num_rows())
            .any(|i| scopes.value(i) == "A/w1" && kinds.value(i) == "training_coverage")
    );
}

#[test]
fn targets_follow_the_documented_rules() {
    let ds = tiny();
    let t = |kpi: &str, period: &str, target: f64, direction: &str| Target {
        kpi: kpi.into(),
        scope: "group".into(),
        period: period.into(),
        target,
        direction: direction.into(),
        baseline: None,
    };
    let o = TargetOptions {
        as_of: Some("2025-03-01".into()),
        targets: Some(vec![
            t("fatalities", "2025", 0.0, "at_most"),
            t("trir", "2025-01", 1.0, "at_most"),
            t("rectification_rate", "2025", 1.0, "at_least"),
            t("drills", "2025", 1.0, "at_least"),
        ]),
        ..Default::default()
    };
    let b = block_on(track_targets(&ds, &o)).unwrap();
    let status = b
        .column_by_name("status")
        .unwrap()
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let s: Vec<&str> = (0..b.num_rows()).map(|i| status.value(i)).collect();
    // No fatality before March: probability of none in the rest of the year
    // with no history is 1 → on track. January is over: TRIR of January =
    // 1 recordable × 200,000 / (200,000 h × 31/90) = 2.9 > 1 → missed.
    // Rectification: the 3 hazards found before March are closed → 1.0.
    // No drill yet: a count at least 1 with no history → off track.
    assert_eq!(s, ["on_track", "missed", "on_track", "off_track"]);
}

#[test]
fn kpi_catalogue_doc_is_current() {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo or nextest");
    let doc =
        std::fs::read_to_string(std::path::Path::new(&dir).join("../../docs/kpis.md")).unwrap();
    assert_eq!(
        doc,
        safetyscope_core::kpis::catalogue_markdown(),
        "docs/kpis.md is stale: run `safetyscope kpis --catalogue > docs/kpis.md`"
    );
}
