use super::charts::{nice_max, tick, ticks};
use super::*;

#[test]
fn labels_are_escaped() {
    assert_eq!(
        esc("<b>\"R&D\"</b>"),
        "&lt;b&gt;&quot;R&amp;D&quot;&lt;/b&gt;"
    );
}

#[test]
fn ticks_are_round() {
    let labels: Vec<String> = ticks(0.0, 0.8).into_iter().map(tick).collect();
    assert_eq!(labels, ["0%", "20%", "40%", "60%", "80%"]);
    assert_eq!(ticks(0.0, 0.05).len(), 6);
    assert_eq!(ticks(0.0, 1.0).len(), 6);
}

#[test]
fn axis_ranges_round_up() {
    assert_eq!(nice_max(0.03), 0.05);
    assert_eq!(nice_max(0.1), 0.1);
    assert_eq!(nice_max(0.41), 0.5);
    assert_eq!(nice_max(3.0), 1.0);
}

fn band(lower: f64, leads: u64, wins: u64, mean_predicted: f64) -> BandRow {
    let realized_rate = wins as f64 / leads as f64;
    BandRow {
        lower,
        upper: lower + 0.1,
        leads,
        wins,
        mean_predicted,
        realized_rate,
        ci_low: (realized_rate - 0.1).max(0.0),
        ci_high: (realized_rate + 0.1).min(1.0),
        prediction_outside: false,
    }
}

/// A few leads scored 80–90% once fell off a diagram scaled to the well-populated bands.
#[test]
fn the_reliability_diagram_draws_every_band_up_to_the_highest() {
    let rows = [
        band(0.0, 892, 52, 0.052),
        band(0.3, 261, 102, 0.344),
        band(0.6, 17, 12, 0.646),
        band(0.7, 4, 3, 0.741),
        band(0.8, 6, 6, 0.839),
    ];
    let mut out = String::new();
    reliability(&mut out, &rows).unwrap();
    assert_eq!(out.matches("<circle").count(), rows.len(), "{out}");
    assert!(out.contains("<title>0.800–0.900: 6 leads"), "{out}");
    assert!(out.contains(">100%</text>"), "the axes reach 100%: {out}");
    // A model whose scores stay low keeps a close-up scale.
    let low = [band(0.0, 500, 20, 0.04), band(0.1, 40, 5, 0.13)];
    let mut out = String::new();
    reliability(&mut out, &low).unwrap();
    assert!(
        out.contains(">20%</text>") && !out.contains(">40%</text>"),
        "{out}"
    );
}

fn metrics() -> Metrics {
    Metrics {
        leads: 2644,
        wins: 512,
        realized_rate: 0.1936,
        mean_predicted: 0.1757,
        calibration_gap: -0.0179,
        roc_auc: Some(0.7367),
        log_loss: 0.4358,
        brier: 0.1384,
        brier_reference: 0.1561,
        brier_skill: Some(0.114),
        expected_calibration_error: 0.0225,
        max_calibration_error: 0.1677,
        calibration_slope: Some(0.922),
        calibration_intercept: Some(0.03),
    }
}

#[test]
fn every_headline_metric_says_in_plain_words_what_it_means() {
    let drift = Drift {
        psi: 0.172,
        level: "moderate".into(),
        bands: vec![],
        histogram: vec![],
        training_median: 0.096,
        evaluated_median: 0.146,
    };
    let cards = headline_cards(&metrics(), Some(&drift));
    let names: Vec<&str> = cards.iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "Leads evaluated",
            "Realized closure rate",
            "Mean predicted",
            "ROC AUC",
            "Brier score",
            "Log loss",
            "ECE",
            "Calibration slope",
            "Score drift (PSI)"
        ]
    );
    let meaning = |name: &str| &cards.iter().find(|c| c.name == name).unwrap().meaning;
    assert_eq!(
        meaning("ECE"),
        "On average, predictions were off from what actually happened by 2.2 points (the \
         worst probability band by 16.8)."
    );
    assert!(meaning("ROC AUC").contains("73.7% of the time the won one"));
    assert!(
        meaning("Brier score")
            .contains("base rate, the overall closure rate of 19.4%, would score 0.1561")
    );
    assert!(meaning("Mean predicted").contains("a 17.6% chance; 19.4% of them closed"));
    for card in &cards {
        assert!(
            card.meaning.ends_with('.'),
            "{}: {}",
            card.name,
            card.meaning
        );
    }
    // Undefined metrics say why instead of explaining a number that is not there.
    let one_class = Metrics {
        roc_auc: None,
        calibration_slope: None,
        ..metrics()
    };
    let cards = headline_cards(&one_class, None);
    assert_eq!(cards.len(), 8, "no drift card without a model");
    assert_eq!(cards[3].meaning, NOT_MEASURABLE);
    assert_eq!(cards[7].meaning, SLOPE_NOT_MEASURABLE);
}
