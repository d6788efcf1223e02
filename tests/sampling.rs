//! Training on a sample of a large table (`--max-rows`): every won lead and a seeded uniform
//! sample of the others, the intercept corrected (prior correction) so probabilities stay
//! calibrated to the file. Checked against a known truth and against the fit on every row.

use leadscore::data::read_table;
use leadscore::model::{Model, ModelArtifact};
use leadscore::score::score_table;
use leadscore::train::{HorizonConfig, MaxRows, TrainConfig, TrainError, train};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::fmt::Write as _;
use std::path::Path;

/// Leads whose true P(won) is logistic in two numbers and a category: 9–10% won.
fn write_truth(path: &Path, rows: usize, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut text = String::from("id,visits,distance,channel,won\n");
    for i in 0..rows {
        let x1: f64 = StandardNormal.sample(&mut rng);
        let x2: f64 = StandardNormal.sample(&mut rng);
        let channel = ["web", "partner", "event"][rng.random_range(0..3)];
        let bump = match channel {
            "partner" => 0.6,
            "event" => -0.4,
            _ => 0.0,
        };
        let logit = -2.7 + 0.9 * x1 - 0.6 * x2 + bump;
        let won = rng.random_bool(1.0 / (1.0 + (-logit).exp()));
        let _ = writeln!(
            text,
            "L{i},{:.3},{:.3},{channel},{}",
            x1 * 3.0 + 10.0,
            x2,
            if won { "won" } else { "lost" }
        );
    }
    std::fs::write(path, text).unwrap();
}

fn fit(data: &Path, max_rows: MaxRows, seed: u64) -> ModelArtifact {
    let mut config = TrainConfig::new(data, "won");
    config.id = Some("id".into());
    config.max_rows = max_rows;
    config.seed = seed;
    config.trained_at = Some("2030-01-01T00:00:00Z".parse().unwrap());
    train(&config, &mut |_: &str| {}).unwrap().artifact
}

fn weight(a: &ModelArtifact, feature: &str) -> f64 {
    a.coefficients
        .iter()
        .find(|c| c.feature.contains(feature))
        .unwrap_or_else(|| panic!("no coefficient {feature}"))
        .weight
}

#[test]
fn a_sampled_fit_stays_calibrated_and_close_to_the_full_fit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("leads.csv");
    let fresh = dir.path().join("fresh.csv");
    write_truth(&data, 60_000, 1);
    write_truth(&fresh, 40_000, 2);
    let full = fit(&data, MaxRows::Off, 42);
    let sampled = fit(&data, MaxRows::Rows(15_000), 42);
    assert!(full.sampling.is_none());
    let s = sampled.sampling.as_ref().expect("sampled");
    assert_eq!(s.rows_read, 60_000);
    assert_eq!(s.won_kept, s.won_read, "every won lead is kept");
    assert_eq!(s.won_kept + s.lost_kept + s.open_kept, 15_000);
    assert_eq!(s.lost_read, 60_000 - s.won_read);
    assert_eq!(sampled.data.rows_read, 15_000);
    assert!(s.sample_won_share > 2.0 * s.population_won_share, "{s:?}");
    assert!(s.intercept_correction > 0.5, "{s:?}");

    // On fresh leads from the same truth: the mean predicted probability of each fit against
    // the realized rate.
    let table = read_table(&fresh).unwrap();
    let realized = (0..table.rows())
        .filter(|&r| table.column(4).get(r) == "won")
        .count() as f64
        / table.rows() as f64;
    let mean = |a: &ModelArtifact| {
        let model = Model::new(a.clone()).unwrap();
        let scored = score_table(&model, &table, None, 0).unwrap();
        scored
            .rows
            .iter()
            .map(|r| r.scored.probability)
            .sum::<f64>()
            / scored.rows.len() as f64
    };
    let (full_mean, sampled_mean) = (mean(&full), mean(&sampled));
    assert!(
        (sampled_mean - realized).abs() < 0.006,
        "sampled {sampled_mean:.4}, realized {realized:.4}"
    );
    assert!(
        (sampled_mean - full_mean).abs() < 0.004,
        "sampled {sampled_mean:.4}, full {full_mean:.4}"
    );
    // Without the correction the sample's mean would be far off: the correction did the work.
    assert!(s.sample_won_share - realized > 0.15);

    // The slopes: near the full fit's (standardised features, so one scale for all).
    for feature in ["visits", "distance", "partner", "event"] {
        let (a, b) = (weight(&full, feature), weight(&sampled, feature));
        assert!(
            (a - b).abs() < 0.12,
            "{feature}: full {a:.3}, sampled {b:.3}"
        );
    }
    // The stored measurements are on the population-rate part: the holdout's realized rate is
    // the file's, not the sample's.
    let holdout = &sampled.holdout.metrics;
    assert!(
        (holdout.realized_rate - s.population_won_share).abs() < 0.02,
        "holdout rate {:.4} against the file's {:.4}",
        holdout.realized_rate,
        s.population_won_share
    );
    assert!((holdout.mean_predicted - holdout.realized_rate).abs() < 0.02);
    let auc = |a: &ModelArtifact| a.holdout.metrics.roc_auc.unwrap();
    assert!((auc(&full) - auc(&sampled)).abs() < 0.02);
    // Percentiles: the median of the sampled model's training scores is near the full one's.
    let median = |a: &ModelArtifact| a.score_quantiles[50];
    assert!(
        (median(&full) - median(&sampled)).abs() < 0.01,
        "{} {}",
        median(&full),
        median(&sampled)
    );

    // Reproducible: same file and seed, same sample, same model; another seed, another sample.
    let again = fit(&data, MaxRows::Rows(15_000), 42);
    assert_eq!(
        serde_json::to_string(&again).unwrap(),
        serde_json::to_string(&sampled).unwrap()
    );
    let other = fit(&data, MaxRows::Rows(15_000), 7);
    assert_ne!(other.intercept, sampled.intercept);
}

#[test]
fn won_leads_past_half_the_cap_are_sampled_too_and_small_files_are_not_sampled() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("leads.csv");
    write_truth(&data, 20_000, 3);
    // ~1,900 won: a cap of 3,000 keeps 1,500 of them and 1,500 others.
    let a = fit(&data, MaxRows::Rows(3_000), 42);
    let s = a.sampling.as_ref().unwrap();
    assert_eq!(s.won_kept, 1_500);
    assert!(s.won_read > 1_500);
    assert_eq!(s.lost_kept, 1_500);
    assert!((s.sample_won_share - 0.5).abs() < 1e-12);
    // A cap above the file's rows samples nothing: the same model as no cap.
    let uncapped = fit(&data, MaxRows::Rows(20_000), 42);
    let off = fit(&data, MaxRows::Off, 42);
    assert!(uncapped.sampling.is_none());
    assert_eq!(
        serde_json::to_string(&uncapped).unwrap(),
        serde_json::to_string(&off).unwrap()
    );
}

#[test]
fn max_rows_with_a_horizon_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("leads.csv");
    write_truth(&data, 500, 4);
    let mut config = TrainConfig::new(&data, "won");
    config.max_rows = MaxRows::Rows(100);
    config.horizon = Some(HorizonConfig::new(90, "closed_at"));
    let err = train(&config, &mut |_: &str| {}).unwrap_err();
    assert!(matches!(err, TrainError::SampleWithHorizon), "{err}");
    assert!(
        err.to_string()
            .contains("--max-rows cannot be combined with --horizon")
    );
}
