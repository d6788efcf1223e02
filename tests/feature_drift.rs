//! Per-attribute drift (issue 11, point 2): `train --date` names the attribute whose newest
//! leads moved, `evaluate` reports each attribute's PSI, values outside the training range and
//! unseen labels, and `--max-feature-psi` fails a job on it. Synthetic, time-ordered leads with
//! a known truth: `trend` rises with time, `visits` and `channel` do not.

use crate::common::{leadscore, leadscore_at, stderr};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::path::Path;

/// One synthetic lead.
struct Lead {
    day: usize,
    trend: f64,
    visits: f64,
    channel: &'static str,
    won: bool,
}

/// `rows` leads, one per day from day `first`: `trend` is the day (with noise), so the newest
/// leads lie above the older ones' range; `visits` and `channel` keep one distribution; every
/// `unseen_every`-th lead (0: none) comes through a channel training never saw.
fn leads(first: usize, rows: usize, unseen_every: usize, seed: u64) -> Vec<Lead> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..rows)
        .map(|i| {
            let day = first + i;
            let trend = day as f64 / 100.0 + rng.random::<f64>();
            let visits = (rng.random::<f64>() * 20.0).floor();
            let channel = if unseen_every > 0 && i % unseen_every == 0 {
                "podcast"
            } else {
                ["web", "referral", "event"][rng.random_range(0..3)]
            };
            // The truth: visits and a referral raise the odds; the trend has no effect.
            let logit = -1.5 + 0.15 * visits + if channel == "referral" { 0.8 } else { 0.0 };
            let won = rng.random::<f64>() < 1.0 / (1.0 + (-logit).exp());
            Lead {
                day,
                trend,
                visits,
                channel,
                won,
            }
        })
        .collect()
}

fn write(path: &Path, leads: &[Lead]) {
    let mut text = String::from("lead_id,created_at,trend,visits,channel,converted\n");
    for (i, l) in leads.iter().enumerate() {
        let date = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap()
            + chrono::Duration::days(l.day as i64);
        text += &format!(
            "L{}-{i},{date},{},{},{},{}\n",
            l.day, l.trend, l.visits, l.channel, l.won as u8
        );
    }
    std::fs::write(path, text).unwrap();
}

fn json(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
}

fn attribute<'a>(drift: &'a Value, name: &str) -> &'a Value {
    drift["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["attribute"] == name)
        .unwrap_or_else(|| panic!("no {name} in {drift}"))
}

/// `train --date created_at` into `models` (`--json` summary when `json`).
fn train(models: &Path, data: &Path, json: bool) -> std::process::Output {
    let mut args = vec![
        "train",
        "--data",
        data.to_str().unwrap(),
        "--target",
        "converted",
        "--id",
        "lead_id",
        "--date",
        "created_at",
        "--models",
        models.to_str().unwrap(),
        "-q",
    ];
    if json {
        args.push("--json");
    }
    let out = leadscore_at("2030-01-01T00:00:00Z", &args);
    assert!(out.status.success(), "{}", stderr(&out));
    out
}

#[test]
fn train_by_date_names_the_attribute_that_moved_in_time_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("history.csv");
    write(&data, &leads(0, 3000, 0, 1));
    let summary = json(&train(&dir.path().join("models"), &data, true));
    let drift = &summary["holdout_drift"];
    // The holdout is the newest 600 days: trend from 24 up, where training reached 25.
    let trend = attribute(drift, "trend");
    assert_eq!(trend["flagged"], true, "{trend}");
    assert!(trend["psi"].as_f64().unwrap() > 1.0, "{trend}");
    assert!(
        trend["above_range_share"].as_f64().unwrap() > 0.8,
        "{trend}"
    );
    assert!(
        trend["reason"]
            .as_str()
            .unwrap()
            .contains("of values above the training range"),
        "{trend}"
    );
    for steady in ["visits", "channel"] {
        let a = attribute(drift, steady);
        assert_eq!(a["flagged"], false, "{a}");
        assert!(a["psi"].as_f64().unwrap() < 0.1, "{a}");
    }
    assert_eq!(drift["attributes"][0]["attribute"], "trend", "worst first");

    // The terminal summary says the same, and warns.
    let out = train(&dir.path().join("models2"), &data, false);
    let text = String::from_utf8_lossy(&out.stdout);
    let drift_lines: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("drift"))
        .take_while(|l| !l.starts_with("features"))
        .collect();
    assert!(
        drift_lines[0].contains("1 of 3 attributes moved (PSI ≥ 0.1), 1 flagged"),
        "{}",
        drift_lines.join("\n")
    );
    assert!(drift_lines.iter().any(|l| l.contains("trend")), "{text}");
    assert!(
        !drift_lines
            .iter()
            .any(|l| l.contains("visits") || l.contains("channel")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("WARNING") && l.contains("trend (PSI")),
        "{text}"
    );
}

#[test]
fn evaluate_reports_each_attribute_and_the_gate_fails_on_the_drifted_one() {
    let dir = tempfile::tempdir().unwrap();
    let history = leads(0, 2100, 0, 2);
    let data = dir.path().join("history.csv");
    write(&data, &history);
    train(&dir.path().join("models"), &data, true);
    let models = dir.path().join("models");
    let models = models.to_str().unwrap();

    // The next 900 days: trend moves on; every 10th lead has a channel never seen.
    let newer = leads(2100, 900, 10, 3);
    let newer_path = dir.path().join("newer.csv");
    write(&newer_path, &newer);
    // The same period as training, drawn again: nothing moved.
    let same_path = dir.path().join("same.csv");
    write(&same_path, &leads(0, 2100, 0, 4));

    let evaluate = |path: &Path, gate: &str| {
        leadscore(&[
            "evaluate",
            "--data",
            path.to_str().unwrap(),
            "--models",
            models,
            "--max-feature-psi",
            gate,
            "--json",
            "-",
        ])
    };
    let out = evaluate(&newer_path, "0.25");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let report = json(&out);
    let drift = &report["feature_drift"];
    assert_eq!(drift["leads"], 900);
    let trend = attribute(drift, "trend");
    // Hand count: the newer trend values above the training maximum.
    let max = history.iter().map(|l| l.trend).fold(f64::MIN, f64::max);
    let above = newer.iter().filter(|l| l.trend > max).count();
    assert_eq!(
        trend["above_range_share"].as_f64().unwrap(),
        above as f64 / 900.0
    );
    assert_eq!(trend["below_range_share"].as_f64().unwrap(), 0.0);
    assert_eq!(trend["flagged"], true);
    // Hand count: 90 of the 900 labels (every 10th) were never seen in training.
    let channel = attribute(drift, "channel");
    assert_eq!(channel["unseen_share"].as_f64().unwrap(), 0.1);
    assert_eq!(channel["flagged"], true, "10% unseen: {channel}");
    assert!(
        channel["reason"]
            .as_str()
            .unwrap()
            .contains("10% of labels never seen in training"),
        "{channel}"
    );
    let visits = attribute(drift, "visits");
    assert_eq!(visits["flagged"], false, "{visits}");
    assert_eq!(visits["level"], "stable", "{visits}");
    // Worst first: flagged, then by PSI.
    let psis: Vec<(bool, f64)> = drift["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["flagged"].as_bool().unwrap(), a["psi"].as_f64().unwrap()))
        .collect();
    assert!(
        psis.windows(2)
            .all(|w| (w[0].0 && !w[1].0) || (w[0].0 == w[1].0 && w[0].1 >= w[1].1)),
        "{psis:?}"
    );
    let gate = report["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gate"] == "--max-feature-psi")
        .unwrap();
    assert_eq!(gate["passed"], false);
    assert_eq!(gate["actual"], trend["psi"]);
    assert!(
        stderr(&out).contains("gate failed: --max-feature-psi attribute \"trend\" PSI"),
        "{}",
        stderr(&out)
    );

    // The same period again: nothing flagged, the gate passes.
    let out = evaluate(&same_path, "0.25");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = json(&out);
    let attributes = report["feature_drift"]["attributes"].as_array().unwrap();
    assert_eq!(attributes.len(), 3);
    for a in attributes {
        assert_eq!(a["flagged"], false, "{a}");
        assert!(a["psi"].as_f64().unwrap() < 0.1, "{a}");
    }

    // The terminal and HTML reports carry the table, worst first.
    let html = dir.path().join("report.html");
    let out = leadscore(&[
        "evaluate",
        "--data",
        newer_path.to_str().unwrap(),
        "--models",
        models,
        "--html",
        html.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let table: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("drift per attribute"))
        .skip(2)
        .take(3)
        .collect();
    assert!(table[0].trim_start().starts_with("trend"), "{text}");
    assert!(table[0].contains(" ! PSI"), "{text}");
    assert!(table[2].trim_start().starts_with("visits"), "{text}");
    let html = std::fs::read_to_string(html).unwrap();
    assert!(html.contains("<h2>Drift per attribute against training</h2>"));
    let trend_row = html.find("<tr class=\"flag\"><td>trend</td>").unwrap();
    let visits_row = html.find("<tr><td>visits</td>").unwrap();
    assert!(trend_row < visits_row, "worst first");
}

#[test]
fn an_older_model_says_per_attribute_drift_is_unavailable_and_the_gate_fails() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("history.csv");
    write(&data, &leads(0, 2100, 0, 5));
    train(&dir.path().join("models"), &data, true);
    // The model as an older leadscore wrote it: no training distributions.
    let models = dir.path().join("models");
    let version = std::fs::read_to_string(models.join("CURRENT")).unwrap();
    let path = models.join(version.trim()).join("model.json");
    let mut artifact: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for a in artifact["encoder"]["attributes"].as_array_mut().unwrap() {
        a.as_object_mut().unwrap().remove("distribution").unwrap();
    }
    std::fs::write(&path, artifact.to_string()).unwrap();

    let out = leadscore(&[
        "evaluate",
        "--data",
        data.to_str().unwrap(),
        "--models",
        models.to_str().unwrap(),
        "--max-feature-psi",
        "0.25",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("drift per attribute: not measured: this model was trained before"),
        "{text}"
    );
    assert!(
        stderr(&out).contains("--max-feature-psi per-attribute PSI cannot be measured"),
        "{}",
        stderr(&out)
    );
}
