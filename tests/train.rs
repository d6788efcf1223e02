//! Training on synthetic data with known coefficients, and every refusal.

use crate::common::{leadscore, leadscore_at, snapshot, stderr, write};
use leadscore::encoder::{Encoding, RawValue};
use leadscore::registry::Registry;
use leadscore::sample::{TRUTH, write_sample};
use leadscore::train::{PromotePolicy, TrainConfig, Trained, save_and_promote, train};
use std::collections::HashMap;

fn quiet() -> impl FnMut(&str) {
    |_: &str| {}
}

fn train_sample(rows: usize, seed: u64, date: bool) -> (tempfile::TempDir, Trained) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("leads.csv");
    write_sample(&data, rows, seed).unwrap();
    let mut config = TrainConfig::new(&data, "converted");
    config.id = Some("lead_id".into());
    if date {
        config.date = Some("created_at".into());
    }
    let trained = train(&config, &mut quiet()).unwrap();
    (dir, trained)
}

/// Spearman rank correlation (no ties expected in these effects).
fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let rank = |v: &[f64]| {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        let mut r = vec![0.0; v.len()];
        for (k, &i) in idx.iter().enumerate() {
            r[i] = k as f64;
        }
        r
    };
    let (ra, rb) = (rank(a), rank(b));
    let n = a.len() as f64;
    let d2: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - y).powi(2)).sum();
    1.0 - 6.0 * d2 / (n * (n * n - 1.0))
}

#[test]
fn recovers_true_coefficients_signs_and_ranking() {
    let (_dir, trained) = train_sample(40_000, 11, false);
    let a = &trained.artifact;
    let weight: HashMap<&str, f64> = a
        .coefficients
        .iter()
        .map(|c| (c.feature.as_str(), c.weight))
        .collect();
    let (mut truth, mut fitted) = (Vec::new(), Vec::new());
    // Category levels: effects centred within their column (the model's one-hot weights are
    // identified only up to a constant per column).
    for category in TRUTH.categories {
        let levels: Vec<(f64, f64)> = category
            .levels
            .iter()
            .map(|(label, effect, _)| {
                let key = format!("{}={}", category.column, label.to_lowercase());
                (*effect, weight[key.as_str()])
            })
            .collect();
        let mean_t = levels.iter().map(|l| l.0).sum::<f64>() / levels.len() as f64;
        let mean_f = levels.iter().map(|l| l.1).sum::<f64>() / levels.len() as f64;
        for (t, f) in levels {
            if (t - mean_t).abs() >= 0.15 {
                assert_eq!(
                    (t - mean_t).signum(),
                    (f - mean_f).signum(),
                    "{}: true {t} fitted {f}",
                    category.column
                );
            }
            truth.push(t - mean_t);
            fitted.push(f - mean_f);
        }
    }
    // Numbers: the model's weight is per standard deviation; convert back to per unit.
    for &(name, effect) in TRUTH.numeric {
        let attribute = a
            .encoder
            .attributes
            .iter()
            .find(|x| x.name == name)
            .unwrap();
        let Encoding::Numeric { scale, .. } = attribute.encoding else {
            panic!("{name} should be numeric")
        };
        let per_unit = weight[name] / scale;
        assert!(
            (per_unit - effect).abs() < 0.25 * effect.abs(),
            "{name}: true {effect} per unit, fitted {per_unit}"
        );
        truth.push(effect * scale);
        fitted.push(weight[name]);
    }
    let demo = weight["demo_requested"];
    assert!(
        (demo - TRUTH.demo_requested).abs() < 0.15,
        "demo_requested fitted {demo}"
    );
    truth.push(TRUTH.demo_requested);
    fitted.push(demo);
    let rho = spearman(&truth, &fitted);
    assert!(
        rho > 0.95,
        "rank correlation of true and fitted effects {rho}"
    );
    assert!(a.solver.converged);
}

#[test]
fn holdout_is_calibrated() {
    let (_dir, trained) = train_sample(30_000, 5, false);
    let m = &trained.artifact.holdout.metrics;
    assert_eq!(m.leads, 6000);
    assert!(
        (m.mean_predicted - m.realized_rate).abs() < 0.01,
        "mean predicted {} vs realized {}",
        m.mean_predicted,
        m.realized_rate
    );
    // Each well-populated band: realized within 3 standard errors of predicted.
    for bin in &trained.artifact.holdout.calibration {
        if bin.leads >= 200 {
            let se = (bin.mean_predicted * (1.0 - bin.mean_predicted) / bin.leads as f64).sqrt();
            assert!(
                (bin.mean_predicted - bin.realized_rate).abs() < 3.0 * se + 0.005,
                "{bin:?}"
            );
        }
    }
    assert!(m.roc_auc.unwrap() > 0.7);
}

/// A CSV where `signal` strongly raises P(close) and the base rate is `base`.
fn one_signal_csv(dir: &std::path::Path, name: &str, intercept: f64) -> std::path::PathBuf {
    let mut text = String::from("id,signal,noise,outcome\n");
    let mut state = 99u64;
    let mut uniform = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for i in 0..3000 {
        let signal = uniform() * 4.0 - 2.0;
        let noise = uniform();
        let p = 1.0 / (1.0 + (-(intercept + 1.5 * signal)).exp());
        let won = uniform() < p;
        text.push_str(&format!(
            "{i},{signal:.4},{noise:.4},{}\n",
            if won { "won" } else { "lost" }
        ));
    }
    write(dir, name, &text)
}

#[test]
fn probability_rises_with_a_positive_attribute_whatever_the_majority() {
    let dir = tempfile::tempdir().unwrap();
    for (name, intercept) in [("mostly_won.csv", 2.0), ("mostly_lost.csv", -2.0)] {
        let data = one_signal_csv(dir.path(), name, intercept);
        let trained = train(&TrainConfig::new(&data, "outcome"), &mut quiet()).unwrap();
        let a = &trained.artifact;
        let majority_won = a.data.wins > a.data.losses;
        assert_eq!(majority_won, intercept > 0.0, "{name}");
        let signal = a
            .coefficients
            .iter()
            .find(|c| c.feature == "signal")
            .unwrap();
        assert!(
            signal.weight > 0.5,
            "{name}: signal weight {}",
            signal.weight
        );
        let model = leadscore::model::Model::new(a.clone()).unwrap();
        let p = |v: f64| {
            model
                .score(
                    |i| match model.encoder().attributes[i].name.as_str() {
                        "signal" => RawValue::Number(v),
                        _ => RawValue::Number(0.5),
                    },
                    0,
                )
                .unwrap()
                .probability
        };
        assert!(p(1.5) > p(0.0) && p(0.0) > p(-1.5), "{name}");
        let m = &a.holdout.metrics;
        assert!(
            (m.mean_predicted - m.realized_rate).abs() < 0.03,
            "{name}: {m:?}"
        );
    }
}

#[test]
fn cli_score_matches_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("leads.csv");
    let models = dir.path().join("models");
    write_sample(&data, 3000, 3).unwrap();
    let out = leadscore(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--target",
        "converted",
        "--id",
        "lead_id",
        "--models",
        models.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let scored = dir.path().join("scored.csv");
    let out = leadscore(&[
        "score",
        "--data",
        data.to_str().unwrap(),
        "--models",
        models.to_str().unwrap(),
        "--out",
        scored.to_str().unwrap(),
        "--explain",
        "2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    let model = Registry::new(&models).load_current().unwrap();
    let table = leadscore::data::read_csv(&data).unwrap();
    let id = table.column_index("lead_id").unwrap();
    let mut reader = csv::Reader::from_path(&scored).unwrap();
    let header = reader.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let mut previous = f64::INFINITY;
    let mut rows = 0;
    for record in reader.records() {
        let record = record.unwrap();
        let line: u64 = record[col("line")].parse().unwrap();
        let row = table.lines.iter().position(|&l| l == line).unwrap();
        assert_eq!(&record[col("lead_id")], table.column(id).get(row));
        let expected = model
            .score(
                |a| {
                    let c = table
                        .column_index(&model.encoder().attributes[a].name)
                        .unwrap();
                    RawValue::Text(table.column(c).get(row))
                },
                2,
            )
            .unwrap();
        let probability: f64 = record[col("probability")].parse().unwrap();
        assert_eq!(probability, expected.probability, "line {line}");
        assert_eq!(record[col("score")].parse::<u32>().unwrap(), expected.score);
        assert_eq!(record[col("grade")], expected.grade);
        assert_eq!(record[col("model_version")], *model.version());
        let up: Vec<_> = expected
            .factors
            .iter()
            .filter(|f| f.log_odds > 0.0)
            .collect();
        if let Some(first) = up.first() {
            assert_eq!(&record[col("up_1_field")], first.field);
            assert_eq!(&record[col("up_1_value")], first.value);
        }
        assert!(
            probability <= previous,
            "sorted by probability, highest first"
        );
        previous = probability;
        rows += 1;
    }
    assert_eq!(rows, 3000);
}

/// Runs `train` on `csv` expecting a refusal: exit code 1, the message, nothing written.
fn assert_refused(csv: &std::path::Path, extra: &[&str], message: &str) {
    let models = csv.parent().unwrap().join("models");
    let before = snapshot(&models);
    let mut args = vec![
        "train",
        "--data",
        csv.to_str().unwrap(),
        "--models",
        models.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = leadscore(&args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(message), "expected {message:?} in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(snapshot(&models), before, "nothing written");
}

#[test]
fn refusals_name_the_problem_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let target = ["--target", "outcome"];

    let few: String = "x,outcome\n".to_string()
        + &(0..200)
            .map(|i| format!("{i},{}\n", if i < 39 { 1 } else { 0 }))
            .collect::<String>();
    assert_refused(
        &write(d, "few.csv", &few),
        &target,
        "39 won and 161 lost leads; a sound model needs at least 40 of each",
    );

    let odd: String = "x,outcome\n".to_string()
        + &(0..200)
            .map(|i| format!("{i},{}\n", ["won", "lost", "maybe"][i % 3]))
            .collect::<String>();
    assert_refused(
        &write(d, "odd.csv", &odd),
        &target,
        "\"maybe\" (66 rows) (first at line 4); name the winning value with --positive",
    );

    assert_refused(&write(d, "empty.csv", ""), &target, "empty.csv is empty");
    assert_refused(
        &write(d, "header.csv", "x,outcome\n"),
        &target,
        "header.csv has a header row but no leads",
    );
    assert_refused(
        &write(d, "nocol.csv", "x,y\n1,2\n"),
        &target,
        "no column named \"outcome\"; the columns are: \"x\", \"y\"",
    );
    assert_refused(
        &write(d, "ragged.csv", "x,outcome\n1,1\n2\n3,0\n"),
        &target,
        "ragged.csv, line 3: 1 fields where the header has 2",
    );
    let dates: String = "x,created,outcome,src\n".to_string()
        + &(0..100)
            .map(|i| {
                format!(
                    "{i},{},{},{}\n",
                    if i == 7 { "yesterday" } else { "2025-01-02" },
                    i % 2,
                    ["a", "b"][i % 3 / 2]
                )
            })
            .collect::<String>();
    assert_refused(
        &write(d, "dates.csv", &dates),
        &["--target", "outcome", "--date", "created"],
        "line 9: column \"created\": \"yesterday\" is not a date",
    );
    let stray: String = "id,employees,outcome\n".to_string()
        + &(0..200)
            .map(|i| {
                format!(
                    "{i},{},{}\n",
                    if i == 120 {
                        "12O".to_string()
                    } else {
                        (i % 13).to_string()
                    },
                    i % 2
                )
            })
            .collect::<String>();
    assert_refused(
        &write(d, "stray.csv", &stray),
        &target,
        "stray.csv, line 122: field \"employees\": \"12O\" is not a number, but the rest of the column is",
    );
    assert_refused(
        &write(d, "ok.csv", "x,outcome\n1,1\n"),
        &["--target", "outcome", "--drop", "nope"],
        "no column named \"nope\"",
    );
}

#[test]
fn open_rows_are_counted_not_trained_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("id,stage,signal\n");
    for i in 0..400 {
        let stage = match i % 4 {
            0 => "Won",
            1 | 2 => "Lost",
            _ => "Engaging",
        };
        text.push_str(&format!("{i},{stage},{}\n", i % 7));
    }
    let data = write(dir.path(), "pipeline.csv", &text);
    let trained = train(&TrainConfig::new(&data, "stage"), &mut quiet()).unwrap();
    let d = &trained.artifact.data;
    assert_eq!((d.wins, d.losses, d.open_rows), (100, 200, 100));
}

#[test]
fn leakage_is_reported_by_column() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("id,source,status_after_call,outcome\n");
    for i in 0..1000 {
        let won = (i * 7919) % 10 < 3;
        // A post-hoc status: filled in for half the leads, and then almost always right.
        let status = if i % 2 == 0 {
            ""
        } else if won ^ (i % 97 == 1) {
            "hot"
        } else {
            "cold"
        };
        text.push_str(&format!(
            "{i},{},{status},{}\n",
            ["web", "event", "referral"][i % 3],
            won as u8
        ));
    }
    let data = write(dir.path(), "leaky.csv", &text);
    let trained = train(&TrainConfig::new(&data, "outcome"), &mut quiet()).unwrap();
    let names: Vec<&str> = trained.leakage.iter().map(|l| l.column.as_str()).collect();
    assert_eq!(names, ["status_after_call"]);
    assert!(trained.leakage[0].auc_where_present.unwrap() > 0.95);
    let message = trained.leakage[0].to_string();
    assert!(
        message.contains("--drop \"status_after_call\""),
        "{message}"
    );
}

#[test]
fn promote_auto_keeps_the_better_serving_model() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::new(dir.path().join("models"));
    let good = dir.path().join("good.csv");
    write_sample(&good, 4000, 21).unwrap();
    let config = TrainConfig::new(&good, "converted");
    let mut first = train(&config, &mut quiet()).unwrap();
    let (_, promotion) = save_and_promote(&registry, &mut first, PromotePolicy::Auto).unwrap();
    assert!(promotion.promoted);

    // A model trained without its informative columns is worse on the same holdout.
    let mut weak = config.clone();
    weak.drop = vec![
        "demo_requested".into(),
        "source".into(),
        "days_since_last_touch".into(),
    ];
    let mut second = train(&weak, &mut quiet()).unwrap();
    let (_, promotion) = save_and_promote(&registry, &mut second, PromotePolicy::Auto).unwrap();
    assert!(!promotion.promoted, "{}", promotion.reason);
    assert!(promotion.serving_log_loss.unwrap() < promotion.new_log_loss.unwrap());
    assert!(
        promotion.reason.contains("may have trained on some"),
        "{}",
        promotion.reason
    );
    assert_eq!(
        registry.current_version().unwrap().unwrap(),
        first.artifact.model_version
    );
    assert_eq!(
        registry.versions().unwrap().len(),
        2,
        "the new version is kept, not served"
    );

    registry.promote(&second.artifact.model_version).unwrap();
    assert_eq!(registry.rollback().unwrap(), first.artifact.model_version);
    assert_eq!(
        registry.current_version().unwrap().unwrap(),
        first.artifact.model_version
    );
}

/// The lines of a sample CSV (header kept) whose created_at satisfies `keep`.
fn filter_by_date(text: &str, keep: impl Fn(&str) -> bool) -> String {
    let mut lines = text.lines();
    let mut out = format!("{}\n", lines.next().unwrap());
    for line in lines.filter(|l| keep(l.split(',').nth(1).unwrap())) {
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[test]
fn promote_auto_judges_on_leads_newer_than_the_serving_model() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::new(dir.path().join("models"));
    let all = dir.path().join("all.csv");
    write_sample(&all, 8000, 31).unwrap();
    let text = std::fs::read_to_string(&all).unwrap();
    let first_half = write(
        dir.path(),
        "h1.csv",
        &filter_by_date(&text, |d| d < "2025-07-01"),
    );

    // In service: a weak model (its best columns dropped) trained on the first half-year.
    let mut weak = TrainConfig::new(&first_half, "converted");
    weak.date = Some("created_at".into());
    weak.drop = vec!["demo_requested".into(), "source".into()];
    let mut serving = train(&weak, &mut quiet()).unwrap();
    save_and_promote(&registry, &mut serving, PromotePolicy::Auto).unwrap();

    // Tonight: the whole year, all columns. Its holdout is the newest 20%, after June.
    let mut strong = TrainConfig::new(&all, "converted");
    strong.date = Some("created_at".into());
    let mut candidate = train(&strong, &mut quiet()).unwrap();
    let (_, promotion) = save_and_promote(&registry, &mut candidate, PromotePolicy::Auto).unwrap();
    assert!(promotion.promoted, "{}", promotion.reason);
    let scope = promotion.compared_on.unwrap();
    assert!(
        scope.contains("holdout leads dated after 2025-06-30"),
        "{scope}"
    );
    assert!(promotion.new_log_loss.unwrap() <= promotion.serving_log_loss.unwrap());
    assert_eq!(
        registry.current_version().unwrap().unwrap(),
        candidate.artifact.model_version
    );
}

#[test]
fn a_holdout_without_both_outcomes_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // Every lead of the last months is lost: the date holdout has no wins.
    let mut text = String::from("id,created,signal,outcome\n");
    for i in 0..500 {
        let month = 1 + i * 12 / 500;
        let won = month <= 9 && i % 3 == 0;
        text.push_str(&format!("{i},2025-{month:02}-01,{},{}\n", i % 5, won as u8));
    }
    let data = write(dir.path(), "late.csv", &text);
    let mut config = TrainConfig::new(&data, "outcome");
    config.date = Some("created".into());
    let err = train(&config, &mut quiet()).unwrap_err().to_string();
    assert!(
        err.contains("the holdout (the most recent 20% of leads by \"created\") has 0 won"),
        "{err}"
    );
}

/// Two trainings of the same data within one second: the second version gets a suffix instead
/// of failing after training, and its file names the version it is stored as.
#[test]
fn a_version_name_already_taken_gets_a_suffix() {
    let (dir, mut trained) = train_sample(2000, 3, false);
    let registry = Registry::new(dir.path().join("models"));
    let (first, _) = save_and_promote(&registry, &mut trained, PromotePolicy::Always).unwrap();
    let name = trained.artifact.model_version.clone();
    let (second, _) = save_and_promote(&registry, &mut trained, PromotePolicy::Always).unwrap();
    // A third training of the same data in the same second starts from the same name.
    trained.artifact.model_version = name.clone();
    let (third, _) = save_and_promote(&registry, &mut trained, PromotePolicy::Never).unwrap();
    let (name2, name3) = (format!("{name}-2"), format!("{name}-3"));
    assert_eq!(trained.artifact.model_version, name3);
    assert_eq!(first, registry.model_path(&name));
    assert_eq!(second, registry.model_path(&name2));
    assert_eq!(third, registry.model_path(&name3));
    assert_eq!(
        registry.versions().unwrap(),
        [name.clone(), name2.clone(), name3.clone()]
    );
    assert_eq!(registry.current_version().unwrap(), Some(name2.clone()));
    for version in [&name, &name2, &name3] {
        assert_eq!(registry.load(version).unwrap().version(), version.as_str());
    }
}

/// `LEADSCORE_TRAINED_AT` stamps a training instead of the clock: the artifact records the time
/// and the version is named by it (in UTC); a value that is not a time is refused before any
/// work.
#[test]
fn a_given_training_time_stamps_the_artifact_and_names_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("leads.csv");
    let models = dir.path().join("models");
    write_sample(&data, 2000, 5).unwrap();
    let (data_s, models_s) = (data.to_str().unwrap(), models.to_str().unwrap());
    let args = [
        "train",
        "--data",
        data_s,
        "--target",
        "converted",
        "--models",
        models_s,
        "--json",
        "--quiet",
    ];
    let out = leadscore_at("2030-02-03T04:05:06+01:00", &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let version = summary["model_version"].as_str().unwrap();
    assert!(version.starts_with("20300203-030506-"), "{version}");
    let model = Registry::new(&models).load(version).unwrap();
    assert_eq!(model.artifact.trained_at, "2030-02-03T03:05:06Z");

    let out = leadscore_at("yesterday", &args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("LEADSCORE_TRAINED_AT: \"yesterday\" is not an RFC 3339 time"),
        "{err}"
    );
    assert_eq!(Registry::new(&models).versions().unwrap(), [version]);
}

#[test]
fn labels_differing_only_by_spacing_or_punctuation_are_reported_not_merged() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("id,gender,channel,outcome\n");
    for i in 0..600 {
        let gender = match i % 10 {
            0..=4 => "Female",
            5 => "Fe Male",
            6 => "FEMALE",
            _ => "Male",
        };
        let channel = match i % 6 {
            0 | 1 => "email",
            2 => "e-mail",
            3 => "E-Mail",
            4 => "e.mail",
            _ => "phone",
        };
        text.push_str(&format!("{i},{gender},{channel},{}\n", (i * 7919) % 3 == 0));
    }
    let data = write(dir.path(), "messy.csv", &text);
    let trained = train(&TrainConfig::new(&data, "outcome"), &mut quiet()).unwrap();
    let found: Vec<&String> = trained
        .warnings
        .iter()
        .filter(|w| w.contains("spacing or punctuation"))
        .collect();
    assert_eq!(found.len(), 2, "{:#?}", trained.warnings);
    // Case is already one label (Female + FEMALE = 360); spacing is not.
    assert!(
        found[0].contains("column \"gender\"")
            && found[0].contains("\"Female\" (360), \"Fe Male\" (60)"),
        "{}",
        found[0]
    );
    assert!(
        found[1].contains("column \"channel\"")
            && found[1].contains("\"E-Mail\" (200), \"email\" (200), \"e.mail\" (100)"),
        "{}",
        found[1]
    );
    assert!(
        !found
            .iter()
            .any(|w| w.contains("\"Male\"") || w.contains("phone"))
    );
    // Reported, not merged: each spelling keeps its own level.
    let Encoding::Categorical { levels, .. } = &trained.artifact.encoder.attributes[0].encoding
    else {
        panic!("gender is not categorical")
    };
    assert!(levels.contains(&"female".into()) && levels.contains(&"fe male".into()));
}
