//! Evaluation in time and funnel stages: a horizon model's realized evaluation counted exactly
//! on a hand-made prediction log (matured, maturing, won within, won after), its cohort table
//! by hand, the note on open leads without a horizon, the funnel's rates, medians and 90th
//! percentiles by hand, and, on `leadscore sample --closed-dates` data, a time-ordered backtest
//! whose matured and maturing counts are computed independently here.

use crate::common::{leadscore, stderr, write};
use crate::horizon::{day, hand_model, split_at_creation};
use crate::server::{fixture, registry};
use chrono::Days;
use leadscore::metrics::{Z_95, wilson_interval};
use leadscore::sample::SampleOptions;
use leadscore::train::{HorizonConfig, PromotePolicy, TrainConfig, save_and_promote, train};
use serde_json::Value;
use std::path::Path;

/// Runs `leadscore evaluate ARGS --json -` and returns the report.
fn evaluate_json(args: &[&str]) -> Value {
    let mut all = vec!["evaluate"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--json", "-"]);
    let out = leadscore(&all);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Predictions of a 30-day model and the outcomes known on 2025-03-31. Each lead's fate, by
/// hand (window = (day scored, day scored + 30]):
/// - P1 scored 01-10, won 01-25: matured (ends 02-09), won within.
/// - P2 scored 01-10, won 02-20: matured, won after its window.
/// - P3 scored 02-01, lost 02-05: matured, lost.
/// - P4 scored 02-15, still open: matured (ends 03-17), open past its window.
/// - P5 scored 03-05, still open: maturing (ends 04-04).
/// - P6 scored 03-10, won 03-20: maturing (ends 04-09), although already won.
/// - P7 scored 03-01, won 03-31: ends 03-31, the as-of date: matured, won within.
/// - P8 scored 01-05 and 02-10, won 02-12: the later is used (01-05 superseded); ends 03-12,
///   won within.
/// - P9 scored 02-20 and 03-25, still open: the later (maturing; 02-20 superseded).
/// - P10 scored 02-01 and on 02-15, the day it was won: that one may know the outcome (not
///   used); 02-01 ends 03-03: won within.
/// - P11 won without a closed date: its window cannot be judged.
/// - P12 predicted, absent from the outcomes.
const LOG: &str = "lead_id,scored_at,model_version,probability,grade\n\
    P1,2025-01-10T09:00:00Z,test-horizon,0.40,B\n\
    P2,2025-01-10T15:30:00Z,test-horizon,0.20,C\n\
    P3,2025-02-01T08:00:00Z,test-horizon,0.10,C\n\
    P4,2025-02-15T12:00:00Z,test-horizon,0.30,B\n\
    P5,2025-03-05T12:00:00Z,test-horizon,0.50,A\n\
    P6,2025-03-10T12:00:00Z,test-horizon,0.60,A\n\
    P7,2025-03-01T10:00:00Z,test-horizon,0.70,A\n\
    P8,2025-01-05T10:00:00Z,test-horizon,0.15,C\n\
    P8,2025-02-10T10:00:00Z,test-horizon,0.45,B\n\
    P9,2025-02-20T10:00:00Z,test-horizon,0.25,B\n\
    P9,2025-03-25T10:00:00Z,test-horizon,0.35,B\n\
    P10,2025-02-01T10:00:00Z,test-horizon,0.55,A\n\
    P10,2025-02-15T10:00:00Z,test-horizon,0.95,A\n\
    P11,2025-01-20T10:00:00Z,test-horizon,0.50,A\n\
    P12,2025-01-20T10:00:00Z,test-horizon,0.50,A\n";

const OUTCOMES: &str = "lead_id,outcome,closed\n\
    P1,won,2025-01-25\n\
    P2,won,2025-02-20\n\
    P3,lost,2025-02-05\n\
    P4,,\n\
    P5,open,\n\
    P6,won,2025-03-20\n\
    P7,won,2025-03-31\n\
    P8,won,2025-02-12\n\
    P9,,\n\
    P10,won,2025-02-15\n\
    P11,won,\n";

/// The 30-day model of the horizon tests in service, with the prediction log and outcomes.
struct Realized {
    models: tempfile::TempDir,
    log: String,
    outcomes: String,
}

impl Realized {
    fn new(dir: &Path) -> Realized {
        let model = hand_model(dir, "test-horizon");
        let path = |name: &str, text: &str| write(dir, name, text).to_str().unwrap().to_string();
        Realized {
            models: registry(&[&model], Some("test-horizon")),
            log: path("predictions.csv", LOG),
            outcomes: path("outcomes.csv", OUTCOMES),
        }
    }

    /// `evaluate` in realized mode with `outcomes` (default: the hand-made ones) and `extra`.
    fn args<'a>(&'a self, outcomes: Option<&'a str>, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "evaluate",
            "--predictions",
            &self.log,
            "--outcomes",
            outcomes.unwrap_or(&self.outcomes),
            "--models",
            self.models.path().to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        args
    }

    fn json(&self, outcomes: Option<&str>, extra: &[&str]) -> Value {
        evaluate_json(&self.args(outcomes, extra)[1..])
    }

    fn terminal(&self) -> String {
        let out = leadscore(&self.args(None, &[]));
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// `[maturing, won_within, won_after, lost, open_past, won_without_closed_date]`.
fn window_counts(report: &Value) -> Vec<u64> {
    let w = &report["coverage"]["window"];
    [
        "maturing",
        "won_within",
        "won_after",
        "lost",
        "open_past",
        "won_without_closed_date",
    ]
    .iter()
    .map(|k| w[k].as_u64().unwrap())
    .collect()
}

#[test]
fn realized_evaluation_counts_maturing_predictions_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let realized = Realized::new(dir.path());
    // The as-of date defaults to the latest date in the outcomes file: 2025-03-31 (P7).
    let report = realized.json(None, &[]);
    let c = &report["coverage"];
    assert_eq!(c["window"]["as_of"], "2025-03-31");
    assert_eq!(c["window"]["closed_column"], "closed", "the model's");
    // Evaluated: P1, P2, P3, P4, P7, P8, P10; maturing: P5, P6, P9.
    assert_eq!(c["evaluated"], 7);
    assert_eq!(window_counts(&report), [3, 4, 1, 1, 1, 1]);
    assert_eq!(c["open"], 0, "open leads are judged, not left out");
    assert_eq!(c["superseded_predictions"], 2, "P8's and P9's first");
    assert_eq!(
        c["predictions_after_outcome"], 1,
        "P10's on its closing day"
    );
    assert_eq!(c["predictions_without_outcome"], 1, "P12");
    assert_eq!(c["evaluated_without_cutoff"], 0);
    let metrics = &report["metrics"];
    assert_eq!(metrics["wins"], 4, "P1, P7, P8, P10");
    let used = [0.40, 0.20, 0.10, 0.30, 0.70, 0.45, 0.55];
    let mean = metrics["mean_predicted"].as_f64().unwrap();
    assert!(
        (mean - used.iter().sum::<f64>() / 7.0).abs() < 1e-12,
        "{mean}"
    );

    // An earlier as-of date: windows ending after 2025-03-15 are maturing too (P4, P7).
    let report = realized.json(None, &["--as-of", "2025-03-15"]);
    assert_eq!(report["coverage"]["evaluated"], 5);
    assert_eq!(window_counts(&report), [5, 3, 1, 1, 0, 1]);

    // The terminal report says it in words; the old caveat is gone.
    let terminal = realized.terminal();
    assert!(
        terminal.contains(
            "judged within 30 days as of 2025-03-31 (closed dates: \"closed\"): 7 matured and \
             evaluated (4 won within the window, 1 won after it, 1 still open after it, 1 lost), \
             3 maturing"
        ),
        "{terminal}"
    );
    assert!(
        terminal.contains("1 won without a closed date"),
        "{terminal}"
    );
    assert!(!terminal.contains("outcomes as given"), "{terminal}");

    // Outcomes without the closed dates cannot be judged within the horizon.
    let undated = write(
        dir.path(),
        "undated.csv",
        &OUTCOMES.replace("lead_id,outcome,closed", "lead_id,outcome,decided"),
    );
    let undated = undated.to_str().unwrap();
    let out = leadscore(&realized.args(Some(undated), &[]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("there is no column \"closed\"; name it with --closed-at COL"),
        "{}",
        stderr(&out)
    );
    let report = realized.json(Some(undated), &["--closed-at", "decided"]);
    assert_eq!(report["coverage"]["evaluated"], 7);
}

#[test]
fn the_cohort_table_counts_each_month_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let realized = Realized::new(dir.path());
    let html = dir.path().join("report.html");
    let report = realized.json(None, &["--html", html.to_str().unwrap()]);
    // Per month of the prediction used (see LOG):
    // January: P1 (0.40, won within), P2 (0.20, won after).
    // February: P3 (0.10), P4 (0.30), P8 (0.45, won), P10 (0.55, won).
    // March: P7 (0.70, won) matured; P5, P6, P9 maturing.
    let expected = [
        ("2025-01", 2, 0, 1, (0.40 + 0.20) / 2.0),
        ("2025-02", 4, 0, 2, (0.10 + 0.30 + 0.45 + 0.55) / 4.0),
        ("2025-03", 1, 3, 1, 0.70),
    ];
    let rows = report["cohorts"].as_array().unwrap();
    assert_eq!(rows.len(), expected.len());
    for (row, (month, matured, maturing, won, predicted)) in rows.iter().zip(expected) {
        assert_eq!(row["month"], month);
        assert_eq!(row["leads"], matured + maturing, "{month}");
        assert_eq!(row["matured"], matured, "{month}");
        assert_eq!(row["maturing"], maturing, "{month}");
        assert_eq!(row["won_within"], won, "{month}");
        let mean = row["mean_predicted"].as_f64().unwrap();
        assert!((mean - predicted).abs() < 1e-12, "{month}: {mean}");
        let realized = row["realized_rate"].as_f64().unwrap();
        assert_eq!(realized, won as f64 / matured as f64, "{month}");
        let (low, high) = wilson_interval(won, matured, Z_95);
        assert_eq!(
            (
                row["ci_low"].as_f64().unwrap(),
                row["ci_high"].as_f64().unwrap()
            ),
            (low, high),
            "{month}"
        );
    }
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(
        html.contains("Cohorts: closure within 30 days"),
        "{html:.400}"
    );
    assert!(html.contains("<td>2025-03</td><td>4</td><td>1</td><td>3</td><td>1</td>"));

    // The terminal table has the same figures.
    let terminal = realized.terminal();
    let line = terminal
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("2025-03 "))
        .unwrap_or_else(|| panic!("{terminal}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(
        &cells[..6],
        ["2025-03", "4", "1", "3", "1", "70.0%"],
        "{line}"
    );
}

#[test]
fn without_a_horizon_the_reports_say_how_many_open_leads_were_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let log = write(
        dir.path(),
        "p.csv",
        "lead_id,probability,grade\nA,0.2,C\nB,0.6,A\nC,0.4,B\nD,0.5,B\n",
    );
    let outcomes = write(
        dir.path(),
        "o.csv",
        "lead_id,status\nA,won\nB,lost\nC,\nD,open\n",
    );
    let (l, o) = (log.to_str().unwrap(), outcomes.to_str().unwrap());
    let models = dir.path().join("none");
    let m = models.to_str().unwrap();
    let args = [
        "--predictions",
        l,
        "--outcomes",
        o,
        "--target",
        "status",
        "--models",
        m,
    ];
    let report = evaluate_json(&args);
    assert_eq!(report["open_leads_left_out"], 2);
    assert_eq!(report.get("cohorts"), None);
    let mut all = vec!["evaluate"];
    all.extend_from_slice(&args);
    let out = leadscore(&all);
    let terminal = String::from_utf8_lossy(&out.stdout);
    assert!(
        terminal.contains("2 open leads (empty or still-open outcome) were left out"),
        "{terminal}"
    );
}

/// Stage dates of eight leads, by hand (days between stages in brackets):
/// ```text
/// lead source  mql        sql          demo         converted
/// F1   Web     01-01      01-03 [2]    01-10 [7]    1
/// F2   Web     01-05      01-06 [1]    01-20 [14]   0
/// F3   Web     01-20      02-09 [20]   –            0
/// F4   Ads     01-25      –            –            0
/// F5   Ads     02-02      02-06 [4]    02-07 [1]    1
/// F6   Ads     02-10      02-20 [10]   03-01 [9]    1
/// F7   Ads     02-15      –            –            (open)
/// F8   Web     –          03-01        03-02        1
/// ```
const FUNNEL: &str = "lead_id,source,mql_at,sql_at,demo_at,converted\n\
    F1,Web,2025-01-01,2025-01-03,2025-01-10,1\n\
    F2,Web,2025-01-05,2025-01-06,2025-01-20,0\n\
    F3,Web,2025-01-20,2025-02-09,,0\n\
    F4,Ads,2025-01-25,,,0\n\
    F5,Ads,2025-02-02,2025-02-06,2025-02-07,1\n\
    F6,Ads,2025-02-10,2025-02-20,2025-03-01,1\n\
    F7,Ads,2025-02-15,,,\n\
    F8,Web,,2025-03-01,2025-03-02,1\n";

/// (from, to, group, entered, converted, median days, 90th percentile days)
type Step<'a> = (
    &'a str,
    &'a str,
    &'a str,
    u64,
    u64,
    Option<i64>,
    Option<i64>,
);

fn assert_steps(rows: &Value, expected: &[Step]) {
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), expected.len(), "{rows:?}");
    for (row, &(from, to, group, entered, converted, median, p90)) in rows.iter().zip(expected) {
        let what = format!("{from} → {to} {group}");
        assert_eq!(
            (&row["from"], &row["to"], &row["group"]),
            (&Value::from(from), &Value::from(to), &Value::from(group)),
            "{what}"
        );
        assert_eq!(row["entered"], entered, "{what}");
        assert_eq!(row["converted"], converted, "{what}");
        assert_eq!(
            row["rate"].as_f64().unwrap(),
            converted as f64 / entered as f64
        );
        let (low, high) = wilson_interval(converted, entered, Z_95);
        assert_eq!(row["ci_low"].as_f64().unwrap(), low, "{what}");
        assert_eq!(row["ci_high"].as_f64().unwrap(), high, "{what}");
        assert_eq!(row["median_days"].as_i64(), median, "{what}");
        assert_eq!(row["p90_days"].as_i64(), p90, "{what}");
    }
}

#[test]
fn funnel_rates_medians_and_90th_percentiles_equal_a_hand_count() {
    let dir = tempfile::tempdir().unwrap();
    let data = write(dir.path(), "funnel.csv", FUNNEL);
    let models = registry(&[&fixture().a], Some("test-a"));
    let m = models.path().to_str().unwrap();
    let funnel_of = |data: &Path, stages: &str| {
        leadscore(&[
            "evaluate",
            "--data",
            data.to_str().unwrap(),
            "--models",
            m,
            "--funnel",
            stages,
        ])
    };
    let html = dir.path().join("funnel.html");
    let report = evaluate_json(&[
        "--data",
        data.to_str().unwrap(),
        "--models",
        m,
        "--funnel",
        "mql_at,sql_at,demo_at,converted",
        "--by",
        "source",
        "--html",
        html.to_str().unwrap(),
    ]);
    let f = &report["funnel"];
    assert_eq!(f["leads"], 8);
    assert_eq!(f["reached"], serde_json::json!([7, 6, 5, 4]));
    // mql → sql: F1–F7 entered, F1, F2, F3, F5, F6 converted in 2, 1, 20, 4, 10 days: sorted
    // 1 2 4 10 20, median the 3rd (4), 90th percentile the 5th (20).
    // sql → demo: F1, F2, F3, F5, F6, F8 entered; all but F3 converted in 7, 14, 1, 9, 1:
    // sorted 1 1 7 9 14, median 7, 90th 14.
    // demo → converted (won, no date): F1, F2, F5, F6, F8 entered; F1, F5, F6, F8 won.
    assert_steps(
        &f["steps"],
        &[
            ("mql_at", "sql_at", "all", 7, 5, Some(4), Some(20)),
            ("sql_at", "demo_at", "all", 6, 5, Some(7), Some(14)),
            ("demo_at", "converted", "all", 5, 4, None, None),
        ],
    );
    // Per source (Web first: first seen). Web mql → sql: F1 (2), F2 (1), F3 (20): sorted
    // 1 2 20, median 2, 90th 20. Ads: F4 no, F5 (4), F6 (10), F7 no: median 4, 90th 10.
    // Web sql → demo: F1 (7), F2 (14), F3 no, F8 (1): 1 7 14 → 7, 14; Ads: F5 (1), F6 (9).
    // Web demo → won: F1, F2, F8 entered, F1, F8 won; Ads: F5, F6, both won.
    let segments = &f["segments"][0];
    assert_eq!(segments["column"], "source");
    assert_steps(
        &segments["rows"],
        &[
            ("mql_at", "sql_at", "Web", 3, 3, Some(2), Some(20)),
            ("mql_at", "sql_at", "Ads", 4, 2, Some(4), Some(10)),
            ("sql_at", "demo_at", "Web", 4, 3, Some(7), Some(14)),
            ("sql_at", "demo_at", "Ads", 2, 2, Some(1), Some(9)),
            ("demo_at", "converted", "Web", 3, 2, None, None),
            ("demo_at", "converted", "Ads", 2, 2, None, None),
        ],
    );
    // Per month of entering: mql in January F1–F4 (F1, F2, F3 converted: 2, 1, 20), February
    // F5–F7 (F5, F6: 4, 10). sql in January F1, F2 (7, 14), February F3, F5, F6 (F5 1, F6 9),
    // March F8 (1). demo in January F1, F2 (F1 won), February F5 (won), March F6, F8 (won).
    assert_steps(
        &f["months"],
        &[
            ("mql_at", "sql_at", "2025-01", 4, 3, Some(2), Some(20)),
            ("mql_at", "sql_at", "2025-02", 3, 2, Some(4), Some(10)),
            ("sql_at", "demo_at", "2025-01", 2, 2, Some(7), Some(14)),
            ("sql_at", "demo_at", "2025-02", 3, 2, Some(1), Some(9)),
            ("sql_at", "demo_at", "2025-03", 1, 1, Some(1), Some(1)),
            ("demo_at", "converted", "2025-01", 2, 1, None, None),
            ("demo_at", "converted", "2025-02", 1, 1, None, None),
            ("demo_at", "converted", "2025-03", 2, 2, None, None),
        ],
    );
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(html.contains("aria-label=\"Funnel\""), "the funnel chart");
    assert!(html.contains("<h2>Funnel</h2>"));

    // The terminal report: the overall table's first step.
    let out = funnel_of(&data, "mql_at,sql_at,demo_at,converted");
    assert!(out.status.success(), "{}", stderr(&out));
    let terminal = String::from_utf8_lossy(&out.stdout);
    let line = terminal
        .lines()
        .find(|l| l.trim_start().starts_with("mql_at → sql_at"))
        .unwrap_or_else(|| panic!("{terminal}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cells[3..6], ["7", "5", "71.4%"], "{line}");
    assert_eq!(cells[cells.len() - 2..], ["4", "20"], "{line}");

    // The outcome column can only be the last stage; a stage cell must be a date.
    let out = funnel_of(&data, "converted,mql_at");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("can only be the last stage"),
        "{}",
        stderr(&out)
    );
    let bad = write(
        dir.path(),
        "bad.csv",
        &FUNNEL.replace("F4,Ads,2025-01-25", "F4,Ads,soon"),
    );
    let out = funnel_of(&bad, "mql_at,sql_at");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("bad.csv, line 5: column \"mql_at\": \"soon\" is not a date"),
        "{}",
        stderr(&out)
    );
}

/// Time-ordered: a 90-day model trained on the sample leads created before July (with the
/// outcomes known on 2025-06-30), evaluated on the leads created from July on as exported on
/// 2025-12-31. Which of them have matured is computed here from the file alone.
#[test]
fn a_time_ordered_backtest_on_sample_data_counts_matured_and_maturing_leads() {
    let dir = tempfile::tempdir().unwrap();
    let all = dir.path().join("all.csv");
    leadscore::sample::write(
        &all,
        &SampleOptions {
            rows: 8000,
            seed: 5,
            closed_dates: true,
            truth: None,
            curved: false,
        },
    )
    .unwrap();
    let (older_path, newer_path) = split_at_creation(&all, day("2025-07-01"), dir.path());
    // Each newer lead's (created, closed, outcome), as the file has them.
    let mut reader = csv::Reader::from_path(&newer_path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (created, closed, outcome) = (
        column("created_at"),
        column("closed_at"),
        column("converted"),
    );
    let newer_leads: Vec<_> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let closed_on = (!r[closed].is_empty()).then(|| day(&r[closed]));
            (day(&r[created]), closed_on, r[outcome].to_string())
        })
        .collect();
    let mut config = TrainConfig::new(&older_path, "converted");
    config.id = Some("lead_id".into());
    config.date = Some("created_at".into());
    config.horizon = Some(HorizonConfig::new(90, "closed_at"));
    let mut trained = train(&config, &mut |_| {}).unwrap();
    let registry = leadscore::registry::Registry::new(dir.path().join("models"));
    save_and_promote(&registry, &mut trained, PromotePolicy::Always).unwrap();

    // By hand: the as-of date is the latest created or closed date of the newer file; a lead
    // has matured when created at least 90 days before it, and is won within when won no more
    // than 90 days after its creation.
    let as_of = newer_leads
        .iter()
        .flat_map(|(c, d, _)| [Some(*c), *d])
        .flatten()
        .max()
        .unwrap();
    let (mut matured, mut maturing, mut won_within, mut open_past) = (0u64, 0u64, 0u64, 0u64);
    for (created_on, closed_on, outcome) in &newer_leads {
        let end = *created_on + Days::new(90);
        if end > as_of {
            maturing += 1;
            continue;
        }
        matured += 1;
        if outcome == "1" && closed_on.is_some_and(|c| c <= end) {
            won_within += 1;
        }
        if outcome.is_empty() {
            open_past += 1;
        }
    }
    assert!(matured > 100 && maturing > 100, "{matured} {maturing}");
    let report = evaluate_json(&[
        "--data",
        newer_path.to_str().unwrap(),
        "--models",
        dir.path().join("models").to_str().unwrap(),
    ]);
    let c = &report["coverage"];
    assert_eq!(c["window"]["as_of"], as_of.to_string());
    assert_eq!(c["evaluated"], matured);
    assert_eq!(c["window"]["maturing"], maturing);
    assert_eq!(c["window"]["won_within"], won_within);
    assert_eq!(c["window"]["open_past"], open_past);
    assert_eq!(report["metrics"]["wins"], won_within);
    // The cohort table adds up to the same leads.
    let cohorts = report["cohorts"].as_array().unwrap();
    let sum = |key: &str| {
        cohorts
            .iter()
            .map(|r| r[key].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!((sum("matured"), sum("maturing")), (matured, maturing));
    assert_eq!(sum("leads") as usize, newer_leads.len());
}
