//! The evaluator against independent reference computations, both modes, the gates and the
//! reports. Models are trained in-process on `leadscore sample` data in a temporary directory.

use crate::common::{leadscore, stderr, write};
use leadscore::data::read_csv;
use leadscore::evaluate::{
    Evaluation, Gates, InputOptions, TableOptions, evaluate, inputs, report_html,
};
use leadscore::model::Model;
use leadscore::registry::Registry;
use leadscore::sample::write_sample;
use leadscore::train::{PromotePolicy, TrainConfig, save_and_promote, train};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const Z: f64 = 1.959_963_984_540_054;

/// Trains on a sample of `rows` leads and promotes it in `dir/models`; returns the model.
fn trained_model(dir: &Path, rows: usize, seed: u64) -> Model {
    let data = dir.join("train.csv");
    write_sample(&data, rows, seed).unwrap();
    let mut config = TrainConfig::new(&data, "converted");
    config.id = Some("lead_id".into());
    config.date = Some("created_at".into());
    let mut trained = train(&config, &mut |_: &str| {}).unwrap();
    let registry = Registry::new(dir.join("models"));
    save_and_promote(&registry, &mut trained, PromotePolicy::Always).unwrap();
    registry.load_current().unwrap()
}

fn backtest(model: &Model, data: &Path, by: &[&str], gates: &Gates) -> Evaluation {
    let table = read_csv(data).unwrap();
    let options = InputOptions {
        by: by.iter().map(|s| s.to_string()).collect(),
        ..InputOptions::default()
    };
    let (leads, coverage) = inputs::backtest(model, &table, &options).unwrap();
    evaluate(
        &leads,
        coverage,
        Some(model.version().to_string()),
        Some(&model.artifact.score_quantiles),
        &TableOptions::default(),
        gates,
    )
    .unwrap()
}

/// Each lead of a sample file with its model probability and outcome, computed row by row
/// from the CSV (not through the evaluator's inputs).
struct Reference {
    p: Vec<f64>,
    won: Vec<bool>,
    source: Vec<String>,
    month: Vec<String>,
}

fn reference(model: &Model, data: &Path) -> Reference {
    let mut reader = csv::Reader::from_path(data).unwrap();
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (converted, source, created) = (col("converted"), col("source"), col("created_at"));
    let mut r = Reference {
        p: vec![],
        won: vec![],
        source: vec![],
        month: vec![],
    };
    for record in reader.records() {
        let record = record.unwrap();
        let fields: BTreeMap<&str, &str> = headers.iter().zip(record.iter()).collect();
        let scored = model
            .score(
                |a| {
                    let name = &model.encoder().attributes[a].name;
                    leadscore::encoder::RawValue::Text(fields[name.as_str()])
                },
                0,
            )
            .unwrap();
        r.p.push(scored.probability);
        r.won.push(&record[converted] == "1");
        r.source.push(record[source].to_string());
        r.month.push(record[created][..7].to_string());
    }
    r
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

/// AUC by definition: every (won, lost) pair, ties one half.
fn brute_force_auc(p: &[f64], won: &[bool]) -> f64 {
    let (mut num, mut pairs) = (0.0, 0.0);
    for i in (0..p.len()).filter(|&i| won[i]) {
        for j in (0..p.len()).filter(|&j| !won[j]) {
            pairs += 1.0;
            num += if p[i] > p[j] {
                1.0
            } else if p[i] == p[j] {
                0.5
            } else {
                0.0
            };
        }
    }
    num / pairs
}

/// Wilson interval as the two roots of (p̂ − p)² = z² p (1 − p) / n.
fn wilson_by_roots(k: u64, n: u64) -> (f64, f64) {
    let (n, ph, z2) = (n as f64, k as f64 / n as f64, Z * Z);
    let a = 1.0 + z2 / n;
    let b = -(2.0 * ph + z2 / n);
    let c = ph * ph;
    let disc = (b * b - 4.0 * a * c).sqrt();
    ((-b - disc) / (2.0 * a), (-b + disc) / (2.0 * a))
}

/// Calibration slope and intercept by plain Newton–Raphson on the log-likelihood, written
/// independently of the library (no step control; started at the identity map).
fn newton_calibration(p: &[f64], won: &[bool]) -> (f64, f64) {
    let x: Vec<f64> = p.iter().map(|&q| (q / (1.0 - q)).ln()).collect();
    let (mut a, mut b) = (0.0f64, 1.0f64);
    for _ in 0..50 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (xi, &w) in x.iter().zip(won) {
            let mu = 1.0 / (1.0 + (-(a + b * xi)).exp());
            let y = if w { 1.0 } else { 0.0 };
            ga += y - mu;
            gb += (y - mu) * xi;
            let v = mu * (1.0 - mu);
            haa += v;
            hab += v * xi;
            hbb += v * xi * xi;
        }
        let det = haa * hbb - hab * hab;
        a += (hbb * ga - hab * gb) / det;
        b += (haa * gb - hab * ga) / det;
    }
    (b, a)
}

#[test]
fn backtest_metrics_match_independent_references() {
    let dir = tempfile::tempdir().unwrap();
    let model = trained_model(dir.path(), 4000, 1);
    let data = dir.path().join("eval.csv");
    write_sample(&data, 2500, 2).unwrap();
    let e = backtest(&model, &data, &["source"], &Gates::default());
    let r = reference(&model, &data);
    let n = r.p.len() as f64;
    let wins = r.won.iter().filter(|&&w| w).count();
    let m = &e.metrics;

    assert_eq!((m.leads, m.wins), (r.p.len() as u64, wins as u64));
    assert_eq!(e.coverage.evaluated, 2500);
    assert!(close(m.realized_rate, wins as f64 / n, 1e-15));
    assert!(close(m.mean_predicted, r.p.iter().sum::<f64>() / n, 1e-12));
    assert!(close(
        m.roc_auc.unwrap(),
        brute_force_auc(&r.p, &r.won),
        1e-12
    ));
    let ll =
        r.p.iter()
            .zip(&r.won)
            .map(|(&p, &w)| if w { -p.ln() } else { -(1.0 - p).ln() })
            .sum::<f64>()
            / n;
    assert!(close(m.log_loss, ll, 1e-12));
    let brier =
        r.p.iter()
            .zip(&r.won)
            .map(|(&p, &w)| (p - if w { 1.0 } else { 0.0 }).powi(2))
            .sum::<f64>()
            / n;
    assert!(close(m.brier, brier, 1e-12));
    let base = wins as f64 / n;
    assert!(close(
        m.brier_skill.unwrap(),
        1.0 - brier / (base * (1.0 - base)),
        1e-12
    ));

    // Calibration bands by hand: ten bands of width 0.1.
    let mut hand = vec![(0u64, 0u64, 0.0f64); 10];
    for (&p, &w) in r.p.iter().zip(&r.won) {
        let b = ((p * 10.0).floor() as usize).min(9);
        hand[b].0 += 1;
        hand[b].1 += w as u64;
        hand[b].2 += p;
    }
    let hand: Vec<_> = hand
        .into_iter()
        .enumerate()
        .filter(|(_, h)| h.0 > 0)
        .collect();
    assert_eq!(e.calibration.equal_width.len(), hand.len());
    let (mut ece, mut mce) = (0.0, 0.0f64);
    for (row, (b, (leads, wins, sum))) in e.calibration.equal_width.iter().zip(&hand) {
        assert!(close(row.lower, *b as f64 / 10.0, 1e-12));
        assert_eq!((row.leads, row.wins), (*leads, *wins));
        let rate = *wins as f64 / *leads as f64;
        let mean = sum / *leads as f64;
        assert!(close(row.mean_predicted, mean, 1e-12));
        let (lo, hi) = wilson_by_roots(*wins, *leads);
        assert!(close(row.ci_low, lo, 1e-9) && close(row.ci_high, hi, 1e-9));
        assert_eq!(row.prediction_outside, mean < lo || mean > hi);
        ece += *leads as f64 / n * (mean - rate).abs();
        mce = mce.max((mean - rate).abs());
    }
    assert!(close(m.expected_calibration_error, ece, 1e-12));
    assert!(close(m.max_calibration_error, mce, 1e-12));

    let (slope, intercept) = newton_calibration(&r.p, &r.won);
    assert!(
        close(m.calibration_slope.unwrap(), slope, 1e-6),
        "{m:?} vs {slope}"
    );
    assert!(close(m.calibration_intercept.unwrap(), intercept, 1e-6));
    // A model evaluated on fresh data from its own distribution is roughly calibrated.
    assert!(m.calibration_gap.abs() < 0.03, "{m:?}");
    assert!(m.calibration_slope.unwrap() > 0.7 && m.calibration_slope.unwrap() < 1.3);

    // Per source, by hand, against the company average.
    let table = &e.segments[0];
    assert_eq!(table.column, "source");
    for row in &table.rows {
        let idx: Vec<usize> = (0..r.p.len())
            .filter(|&i| r.source[i] == row.label)
            .collect();
        let w = idx.iter().filter(|&&i| r.won[i]).count() as u64;
        assert_eq!(
            (row.leads, row.wins),
            (idx.len() as u64, w),
            "{}",
            row.label
        );
        let (lo, hi) = wilson_by_roots(w, idx.len() as u64);
        assert!(close(row.ci_low, lo, 1e-9) && close(row.ci_high, hi, 1e-9));
        let rate = w as f64 / idx.len() as f64;
        assert!(close(row.difference, rate - base, 1e-12));
        // Newcombe's hybrid score interval for (this rate − the other leads' rate), times the
        // other leads' share: the interval of (this rate − the average, which includes it).
        let n_all = r.p.len() as u64;
        let w_all = r.won.iter().filter(|&&x| x).count() as u64;
        let (rest_n, rest_w) = (n_all - idx.len() as u64, w_all - w);
        let (lo2, hi2) = wilson_by_roots(rest_w, rest_n);
        let p2 = rest_w as f64 / rest_n as f64;
        let share = rest_n as f64 / n_all as f64;
        let low = share * (rate - p2 - ((rate - lo).powi(2) + (hi2 - p2).powi(2)).sqrt());
        let high = share * (rate - p2 + ((hi - rate).powi(2) + (p2 - lo2).powi(2)).sqrt());
        assert!(
            close(row.difference_low, low, 1e-9),
            "{} {low}",
            row.difference_low
        );
        assert!(
            close(row.difference_high, high, 1e-9),
            "{} {high}",
            row.difference_high
        );
        assert_eq!(row.significant, low > 0.0 || high < 0.0);
        let predicted = idx.iter().map(|&i| r.p[i]).sum::<f64>() / idx.len() as f64;
        assert!(close(row.mean_predicted, predicted, 1e-12));
    }
    assert_eq!(
        table.rows.iter().map(|r| r.leads).sum::<u64>(),
        2500,
        "every lead in one segment"
    );
    // Referral closes far above and Cold Call far below the average in the sample's truth.
    let flagged = |label: &str| table.rows.iter().find(|r| r.label == label).unwrap();
    assert!(flagged("Referral").significant && flagged("Referral").difference > 0.0);
    assert!(flagged("Cold Call").significant && flagged("Cold Call").difference < 0.0);

    // Per month (the model's date column), by hand.
    let months = e.months.as_ref().expect("the model has a date column");
    assert_eq!(months.rows.len(), 12);
    for row in &months.rows {
        let idx: Vec<usize> = (0..r.p.len())
            .filter(|&i| r.month[i] == row.label)
            .collect();
        let w = idx.iter().filter(|&&i| r.won[i]).count() as u64;
        assert_eq!(
            (row.leads, row.wins),
            (idx.len() as u64, w),
            "{}",
            row.label
        );
    }
    assert!(months.rows.windows(2).all(|w| w[0].label < w[1].label));

    // Deciles by hand: sort descending; cuts at every 250 leads (probabilities are distinct).
    let mut order: Vec<usize> = (0..r.p.len()).collect();
    order.sort_by(|&a, &b| r.p[b].total_cmp(&r.p[a]));
    assert_eq!(e.deciles.len(), 10);
    let mut cumulative = 0;
    for (k, d) in e.deciles.iter().enumerate() {
        let part = &order[k * 250..(k + 1) * 250];
        let w = part.iter().filter(|&&i| r.won[i]).count();
        cumulative += w;
        assert_eq!((d.leads, d.wins), (250, w as u64));
        assert!(close(d.lift, (w as f64 / 250.0) / base, 1e-12));
        assert!(close(
            d.cumulative_wins_share,
            cumulative as f64 / wins as f64,
            1e-12
        ));
    }
    assert!(
        e.deciles[0].lift > 2.0,
        "the top decile closes well above average"
    );

    // Equal-count bands: ten runs of 250 in ascending order.
    assert_eq!(e.calibration.equal_count.len(), 10);
    for (k, band) in e.calibration.equal_count.iter().enumerate() {
        let part = &order[(9 - k) * 250..(10 - k) * 250];
        let w = part.iter().filter(|&&i| r.won[i]).count() as u64;
        assert_eq!((band.leads, band.wins), (250, w));
    }

    // Grades: the stored cut-offs applied by hand.
    for row in &e.grades {
        let idx: Vec<usize> = (0..r.p.len())
            .filter(|&i| model.grade(r.p[i]) == row.label)
            .collect();
        assert_eq!(row.leads, idx.len() as u64, "grade {}", row.label);
    }

    // PSI by hand over the training deciles (fresh data from the same distribution: stable).
    let q = &model.artifact.score_quantiles;
    let drift = e.drift.as_ref().unwrap();
    let mut psi = 0.0;
    for d in 0..10 {
        let lo = if d == 0 { f64::NEG_INFINITY } else { q[d * 10] };
        let hi = if d == 9 {
            f64::INFINITY
        } else {
            q[(d + 1) * 10]
        };
        let actual = r.p.iter().filter(|&&p| p >= lo && p < hi).count() as f64 / n;
        let actual = actual.max(1e-4);
        psi += (actual - 0.1) * (actual / 0.1).ln();
    }
    assert!(close(drift.psi, psi, 1e-9), "{} vs {psi}", drift.psi);
    assert_eq!(drift.level, "stable");
}

#[test]
fn a_shifted_population_shows_drift_and_fails_the_gates() {
    let dir = tempfile::tempdir().unwrap();
    let model = trained_model(dir.path(), 4000, 3);
    // Only leads that requested a demo: scores shift up and they close far more often.
    let all = dir.path().join("all.csv");
    write_sample(&all, 4000, 4).unwrap();
    let text = std::fs::read_to_string(&all).unwrap();
    let mut lines = text.lines();
    let mut shifted = format!("{}\n", lines.next().unwrap());
    for line in lines.filter(|l| l.contains(",yes,")) {
        shifted.push_str(line);
        shifted.push('\n');
    }
    let data = write(dir.path(), "demo.csv", &shifted);
    let gates = Gates {
        max_psi: Some(0.25),
        max_calibration_gap: Some(0.5),
        ..Gates::default()
    };
    let e = backtest(&model, &data, &[], &gates);
    let drift = e.drift.as_ref().unwrap();
    assert!(drift.psi > 0.25, "{}", drift.psi);
    assert_eq!(drift.level, "major");
    assert!(!e.gates_passed);
    let psi_gate = e.gates.iter().find(|g| g.gate == "--max-psi").unwrap();
    assert!(!psi_gate.passed && close(psi_gate.excess, drift.psi - 0.25, 1e-12));
    assert!(
        e.gates
            .iter()
            .find(|g| g.gate == "--max-calibration-gap")
            .unwrap()
            .passed
    );
}

/// A prediction log as the server writes it (schema agreed with the server).
fn write_log(path: &Path, rows: &[(&str, &str, &str, f64, &str)]) {
    let db = rusqlite::Connection::open(path).unwrap();
    db.execute_batch(
        "CREATE TABLE predictions(lead_id TEXT NOT NULL, scored_at TEXT NOT NULL, \
         model_version TEXT NOT NULL, probability REAL NOT NULL, score INTEGER NOT NULL, \
         grade TEXT NOT NULL)",
    )
    .unwrap();
    for (lead, at, version, p, grade) in rows {
        db.execute(
            "INSERT INTO predictions VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            rusqlite::params![lead, at, version, p, (p * 100.0).round() as i64, grade],
        )
        .unwrap();
    }
}

#[test]
fn realized_mode_joins_the_log_and_counts_every_lead() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("predictions.sqlite");
    write_log(
        &log,
        &[
            // A: scored twice before closing → the later one (0.6) is used.
            ("A", "2025-01-05T10:00:00Z", "v1", 0.2, "C"),
            ("A", "2025-01-20T09:00:00Z", "v1", 0.6, "B"),
            // B: once before, once after its outcome → the one before (0.3).
            ("B", "2025-02-01T00:00:00+00:00", "v1", 0.3, "C"),
            ("B", "2025-03-15T12:00:00Z", "v2", 0.9, "A"),
            // C: scored only after its outcome → not evaluated.
            ("C", "2025-04-02T08:00:00Z", "v2", 0.5, "B"),
            // D: no outcome yet in the export.
            ("D", "2025-04-03T08:00:00Z", "v2", 0.4, "B"),
            // E: open.
            ("E", "2025-04-04T08:00:00Z", "v2", 0.1, "D"),
            // F: scored on the day it closed, which is all its outcome date says: that
            // prediction may know the outcome, so F is scored only after it.
            ("F", "2025-02-10T23:59:00Z", "v2", 0.8, "A"),
            // H: its outcome has a time: one minute before counts, one minute after does not.
            ("H", "2025-02-10T11:59:00Z", "v2", 0.7, "A"),
            ("H", "2025-02-10T12:01:00Z", "v2", 0.95, "A"),
        ],
    );
    let outcomes = write(
        dir.path(),
        "outcomes.csv",
        "lead_id,status,closed_at,rep\n\
         A,Won,2025-01-31,Ana\n\
         B,Lost,2025-03-01,Ben\n\
         C,Won,2025-04-01,Ana\n\
         E,Engaging,,Ben\n\
         F,Closed Won,2025-02-10,\n\
         G,Lost,2025-02-11,Ana\n\
         H,Won,2025-02-10 12:00:00,Ana\n",
    );
    let options = InputOptions {
        target: Some("status".into()),
        outcome_date: Some("closed_at".into()),
        by: vec!["rep".into()],
        ..InputOptions::default()
    };
    let predictions = inputs::read_predictions(&log).unwrap();
    let table = read_csv(&outcomes).unwrap();
    let (leads, coverage) = inputs::realized(&predictions, &table, None, &options).unwrap();
    assert_eq!(leads.probability, vec![0.6, 0.3, 0.7]);
    assert_eq!(leads.won, vec![true, false, true]);
    assert_eq!(coverage.evaluated, 3);
    assert_eq!(coverage.open, 1);
    assert_eq!(coverage.scored_only_after_outcome, 2, "C and F");
    assert_eq!(coverage.predictions_without_outcome, 1, "D");
    assert_eq!(coverage.outcomes_without_prediction, 1, "G");
    assert_eq!(coverage.superseded_predictions, 1, "A's first");
    assert_eq!(coverage.predictions_after_outcome, 2, "B's and H's second");
    assert_eq!(coverage.evaluated_without_cutoff, 0);
    assert_eq!(coverage.prediction_records, Some(10));
    assert_eq!(coverage.predicted_leads, Some(7));
    assert_eq!(coverage.model_versions.get("v1"), Some(&2));
    assert_eq!(coverage.model_versions.get("v2"), Some(&1));
    // Months default to the prediction's time; segments come from the outcomes file.
    let month = leads.month.as_ref().unwrap();
    let labels: Vec<&str> = month
        .codes
        .iter()
        .map(|&c| month.labels[c as usize].as_str())
        .collect();
    assert_eq!(labels, ["2025-01", "2025-02", "2025-02"]);
    assert_eq!(leads.segments[0].labels, ["Ana", "Ben"]);

    // Without --outcome-date, the latest prediction of each lead is used.
    let options = InputOptions {
        outcome_date: None,
        ..options
    };
    let (leads, coverage) = inputs::realized(&predictions, &table, None, &options).unwrap();
    assert_eq!(leads.probability, vec![0.6, 0.9, 0.5, 0.8, 0.95]);
    assert_eq!(coverage.superseded_predictions, 3);
    assert_eq!(
        coverage.evaluated_without_cutoff, 5,
        "every evaluated lead, unchecked"
    );

    // A duplicated outcome row is refused with both lines named.
    let twice = write(dir.path(), "twice.csv", "lead_id,status\nA,Won\nA,Lost\n");
    let options = InputOptions {
        by: vec![],
        ..options
    };
    let err = inputs::realized(&predictions, &read_csv(&twice).unwrap(), None, &options)
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 3") && err.contains("line 2"), "{err}");
}

fn run_ok(args: &[&str]) -> std::process::Output {
    let out = leadscore(args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    out
}

#[test]
fn cli_realized_from_a_score_csv_equals_the_backtest() {
    let dir = tempfile::tempdir().unwrap();
    trained_model(dir.path(), 3000, 5);
    let models = dir.path().join("models");
    let models = models.to_str().unwrap();
    let data = dir.path().join("eval.csv");
    write_sample(&data, 1500, 6).unwrap();
    let data = data.to_str().unwrap();
    let scored: PathBuf = dir.path().join("scored.csv");
    run_ok(&[
        "score",
        "--data",
        data,
        "--models",
        models,
        "--explain",
        "0",
        "--out",
        scored.to_str().unwrap(),
    ]);
    let back = dir.path().join("back.json");
    let real = dir.path().join("real.json");
    run_ok(&[
        "evaluate",
        "--data",
        data,
        "--models",
        models,
        "--by",
        "region",
        "--date",
        "created_at",
        "--json",
        back.to_str().unwrap(),
    ]);
    run_ok(&[
        "evaluate",
        "--predictions",
        scored.to_str().unwrap(),
        "--outcomes",
        data,
        "--models",
        models,
        "--by",
        "region",
        "--date",
        "created_at",
        "--json",
        real.to_str().unwrap(),
    ]);
    let read = |p: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let (back, real) = (read(&back), read(&real));
    assert_eq!(back["mode"], "backtest");
    assert_eq!(real["mode"], "realized");
    // Full-precision probabilities in the score CSV: the same metrics and tables.
    for key in [
        "metrics",
        "calibration",
        "grades",
        "deciles",
        "segments",
        "months",
        "drift",
    ] {
        assert_eq!(back[key], real[key], "{key}");
    }
}

#[test]
fn cli_gates_exit_codes_and_json_field_names() {
    let dir = tempfile::tempdir().unwrap();
    trained_model(dir.path(), 3000, 7);
    let models = dir.path().join("models");
    let models = models.to_str().unwrap();
    let data = dir.path().join("eval.csv");
    write_sample(&data, 1000, 8).unwrap();
    let data = data.to_str().unwrap();

    // Passing gates: exit 0, the terminal report names them.
    let out = run_ok(&[
        "evaluate",
        "--data",
        data,
        "--models",
        models,
        "--max-ece",
        "0.5",
        "--min-auc",
        "0.5",
        "--max-calibration-gap",
        "0.2",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("gate PASSED  --min-auc"), "{text}");
    assert!(text.contains("ROC AUC"), "{text}");

    // A failed gate: exit 3, which gate and by how much.
    let out = leadscore(&[
        "evaluate",
        "--data",
        data,
        "--models",
        models,
        "--min-auc",
        "0.99",
        "--max-ece",
        "0.5",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("gate failed: --min-auc") && err.contains("by 0."),
        "{err}"
    );
    assert!(
        !err.contains("--max-ece"),
        "passing gates are not failures: {err}"
    );

    // Bad input: exit 1, distinct from a failed gate.
    let out = leadscore(&[
        "evaluate",
        "--data",
        data,
        "--models",
        models,
        "--by",
        "no_such_column",
        "--min-auc",
        "0.99",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no_such_column"), "{}", stderr(&out));
    let out = leadscore(&[
        "evaluate",
        "--data",
        data,
        "--models",
        models,
        "--max-ece",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(2), "usage error");

    // JSON to standard output: the documented top-level and metric field names.
    let out = run_ok(&[
        "evaluate", "--data", data, "--models", models, "--json", "-",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "format_version",
        "mode",
        "model_version",
        "coverage",
        "metrics",
        "calibration",
        "grades",
        "deciles",
        "segments",
        "months",
        "drift",
        "gates",
        "gates_passed",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    for key in [
        "leads",
        "wins",
        "realized_rate",
        "mean_predicted",
        "calibration_gap",
        "roc_auc",
        "log_loss",
        "brier",
        "brier_reference",
        "brier_skill",
        "expected_calibration_error",
        "max_calibration_error",
        "calibration_slope",
        "calibration_intercept",
    ] {
        assert!(v["metrics"].get(key).is_some(), "missing metrics.{key}");
    }
    assert_eq!(v["format_version"], 1);
}

#[test]
fn html_report_is_self_contained() {
    let dir = tempfile::tempdir().unwrap();
    let model = trained_model(dir.path(), 3000, 9);
    let data = dir.path().join("eval.csv");
    write_sample(&data, 1000, 10).unwrap();
    // A label that needs escaping must not break the page.
    let text =
        std::fs::read_to_string(&data)
            .unwrap()
            .replacen("Referral", "<Referral & \"friends\">", 3);
    std::fs::write(&data, text).unwrap();
    let e = backtest(&model, &data, &["source"], &Gates::default());
    let html = report_html::render(&e);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.ends_with("</html>\n"));
    for forbidden in ["<script", "http://", "https://", "<link", "@import", "url("] {
        assert!(!html.contains(forbidden), "{forbidden}");
    }
    assert_eq!(html.matches("<svg").count(), 4, "four charts");
    assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
    assert!(html.contains("&lt;Referral &amp; &quot;friends&quot;&gt;"));
    assert!(!html.contains("<Referral"));
    assert!(html.contains("Reliability diagram") && html.contains("Cumulative gains"));
}

/// A failed gate exits 3 even when the report and the messages cannot be written (standard
/// output and standard error on a full disk): a pipeline acts on the exit code alone.
#[test]
fn a_failed_gate_exits_3_when_nothing_can_be_written() {
    let f = crate::server::fixture();
    let models = crate::server::registry(&[&f.a], Some("test-a"));
    let (models, data) = (models.path().to_str().unwrap(), f.data.to_str().unwrap());
    // Redirections done by bash, so that the one harness (with its timeout) runs the command.
    let run = |redirect: &str, extra: &[&str]| {
        let mut command = std::process::Command::new("bash");
        command
            .arg("-c")
            .arg(format!("exec \"$0\" \"$@\" {redirect}"))
            .arg(env!("CARGO_BIN_EXE_leadscore"))
            .args(["evaluate", "--data", data, "--models", models])
            .args(extra);
        let name = format!("evaluate {extra:?} {redirect}");
        (crate::common::run_to_exit(&name, command), name)
    };
    let failing = ["--min-auc", "0.99"];
    let json_failing = ["--min-auc", "0.99", "--json", "-"];
    for (redirect, extra, code) in [
        (">/dev/full 2>/dev/full", &failing[..], 3),
        (">/dev/full 2>/dev/full", &json_failing[..], 3),
        ("2>/dev/full", &failing[..], 3),
        (">/dev/full", &failing[..], 3),
        // The same disk with every gate passed: the report was not printed, an error (1).
        (">/dev/full 2>/dev/full", &[][..], 1),
    ] {
        let (out, name) = run(redirect, extra);
        assert_eq!(out.status.code(), Some(code), "{name}: {}", stderr(&out));
    }
    // Standard error still works in the last but one: it says why the report is missing.
    let (out, _) = run(">/dev/full", &failing);
    let err = stderr(&out);
    assert!(err.contains("error: printing the report"), "{err}");
    assert!(err.contains("gate failed: --min-auc"), "{err}");
}

#[test]
fn cli_evaluating_the_training_file_says_the_figures_are_in_sample_in_every_report() {
    let dir = tempfile::tempdir().unwrap();
    let model = trained_model(dir.path(), 3000, 7);
    let models = dir.path().join("models");
    let models = models.to_str().unwrap();
    let train_csv = dir.path().join("train.csv");
    let html = dir.path().join("report.html");
    let (train_csv, html_path) = (train_csv.to_str().unwrap(), html.to_str().unwrap());
    let training_leads = model.artifact.data.training_rows;
    let expected = format!("in-sample: {training_leads} of the {training_leads} evaluated leads");

    let out = run_ok(&[
        "evaluate", "--data", train_csv, "--models", models, "--html", html_path,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&expected) && text.contains("optimistic"),
        "{text}"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains(&expected) && page.contains("optimistic"));
    let out = run_ok(&[
        "evaluate", "--data", train_csv, "--models", models, "--json", "-",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["in_sample"]["leads"], training_leads);

    // Leads the model never saw (the sample numbers its ids from L0000001: renamed to N…): no
    // such warning anywhere.
    let other = dir.path().join("other.csv");
    write_sample(&other, 1000, 8).unwrap();
    let fresh = std::fs::read_to_string(&other)
        .unwrap()
        .replace("\nL", "\nN");
    std::fs::write(&other, &fresh).unwrap();
    let other = other.to_str().unwrap();
    let out = run_ok(&[
        "evaluate", "--data", other, "--models", models, "--html", html_path,
    ]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("in-sample"));
    assert!(
        !std::fs::read_to_string(&html)
            .unwrap()
            .contains("in-sample")
    );
    let out = run_ok(&[
        "evaluate", "--data", other, "--models", models, "--json", "-",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v.get("in_sample").is_none());

    // Another file that repeats 200 training leads among 1000 new ones: recognised by id, the
    // overlap estimated from the model's fingerprint of its training ids (512 of about 3000, so
    // about 34 of the 200 are sampled: ±50% is 3 standard errors).
    let training = std::fs::read_to_string(dir.path().join("train.csv")).unwrap();
    let repeated: Vec<&str> = training.lines().skip(1).take(200).collect();
    let mixed = dir.path().join("mixed.csv");
    std::fs::write(&mixed, format!("{fresh}{}\n", repeated.join("\n"))).unwrap();
    let mixed = mixed.to_str().unwrap();
    let out = run_ok(&[
        "evaluate", "--data", mixed, "--models", models, "--json", "-",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let overlap = v["in_sample"]["leads"].as_u64().unwrap();
    assert!((100..=300).contains(&overlap), "{}", v["in_sample"]);
    assert_eq!(v["in_sample"]["estimated"], true);
    let out = run_ok(&["evaluate", "--data", mixed, "--models", models]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "in-sample: about {overlap} of the 1200 evaluated leads"
        )),
        "{text}"
    );
}
