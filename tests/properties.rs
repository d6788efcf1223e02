//! Property tests: the metrics and the encoder hold their promises on any input.

use leadscore::encoder::{Encoding, RawValue};
use leadscore::metrics::{calibration_bins, expected_calibration_error, roc_auc};
use leadscore::model::Model;
use proptest::prelude::*;
use std::sync::OnceLock;

/// Scored leads: probabilities on a coarse grid (so ties happen) and outcomes.
fn scored_leads() -> impl Strategy<Value = (Vec<f64>, Vec<bool>)> {
    prop::collection::vec((0u32..=20, any::<bool>()), 2..300).prop_map(|leads| {
        leads
            .into_iter()
            .map(|(grid, won)| (grid as f64 / 20.0, won))
            .unzip()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn auc_is_invariant_to_monotone_transforms((p, won) in scored_leads()) {
        let auc = roc_auc(&p, &won);
        let cubed: Vec<f64> = p.iter().map(|x| x.powi(3) * 7.0 - 2.0).collect();
        let logit: Vec<f64> = p.iter().map(|x| ((x + 0.01) / (1.01 - x)).ln()).collect();
        prop_assert_eq!(auc.map(|a| (a * 1e12).round()), roc_auc(&cubed, &won).map(|a| (a * 1e12).round()));
        prop_assert_eq!(auc.map(|a| (a * 1e12).round()), roc_auc(&logit, &won).map(|a| (a * 1e12).round()));
        // Reversing the order mirrors the AUC.
        let reversed: Vec<f64> = p.iter().map(|x| 1.0 - x).collect();
        if let (Some(a), Some(b)) = (auc, roc_auc(&reversed, &won)) {
            prop_assert!((a + b - 1.0).abs() < 1e-12);
            prop_assert!((0.0..=1.0).contains(&a));
        }
    }

    #[test]
    fn calibration_bins_partition_the_leads((p, won) in scored_leads(), bins in 1usize..20) {
        let table = calibration_bins(&p, &won, bins);
        prop_assert_eq!(table.iter().map(|b| b.leads).sum::<u64>(), p.len() as u64);
        prop_assert_eq!(
            table.iter().map(|b| b.wins).sum::<u64>(),
            won.iter().filter(|&&w| w).count() as u64
        );
        for bin in &table {
            prop_assert!(bin.leads > 0 && bin.wins <= bin.leads);
            prop_assert!(bin.mean_predicted >= bin.lower - 1e-12 && bin.mean_predicted <= bin.upper + 1e-12);
        }
        let ece = expected_calibration_error(&table);
        prop_assert!((0.0..=1.0).contains(&ece));
    }
}

/// The shipped model, loaded once.
fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        leadscore::registry::Registry::new(concat!(env!("CARGO_MANIFEST_DIR"), "/models"))
            .load_current()
            .expect("the shipped model loads")
    })
}

#[derive(Debug, Clone)]
enum AnyValue {
    Missing,
    Text(String),
    Number(f64),
    Flag(bool),
}

fn any_value() -> impl Strategy<Value = AnyValue> {
    prop_oneof![
        Just(AnyValue::Missing),
        ".{0,12}".prop_map(AnyValue::Text),
        "(-?[0-9]{1,6}(\\.[0-9]{1,3})?|NA|yes|no|web|Referral|EMEA|NaN|inf|1e400)"
            .prop_map(AnyValue::Text),
        any::<f64>().prop_map(AnyValue::Number),
        (-1e6f64..1e6).prop_map(AnyValue::Number),
        any::<bool>().prop_map(AnyValue::Flag),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Any values: either a score strictly inside (0, 1) with sane fields, or an error naming
    /// one of the model's fields. Never a panic.
    #[test]
    fn scoring_any_values_never_panics(values in prop::collection::vec(any_value(), 16)) {
        let model = model();
        let raw = |i: usize| match &values[i % values.len()] {
            AnyValue::Missing => RawValue::Missing,
            AnyValue::Text(t) => RawValue::Text(t),
            AnyValue::Number(v) => RawValue::Number(*v),
            AnyValue::Flag(b) => RawValue::Flag(*b),
        };
        match model.score(raw, 3) {
            Ok(s) => {
                prop_assert!(s.probability > 0.0 && s.probability < 1.0);
                prop_assert!((1..=99).contains(&s.score));
                prop_assert!((0.0..=100.0).contains(&s.percentile));
                prop_assert!(["A", "B", "C", "D"].contains(&s.grade.as_str()));
                prop_assert!(s.factors.len() <= 6);
                prop_assert!(s.factors.iter().all(|f| f.log_odds.is_finite()));
            }
            Err(e) => {
                // The error names an attribute, spelled as the model spells it.
                prop_assert!(model.fields().names().contains(&e.field), "{}", e);
            }
        }
    }

    /// Each attribute writes only its own columns, finite values, and a category at most one
    /// hot column.
    #[test]
    fn encoding_is_finite_and_one_hot(value in any_value()) {
        let encoder = model().encoder();
        for attribute in &encoder.attributes {
            let raw = match &value {
                AnyValue::Missing => RawValue::Missing,
                AnyValue::Text(t) => RawValue::Text(t),
                AnyValue::Number(v) => RawValue::Number(*v),
                AnyValue::Flag(b) => RawValue::Flag(*b),
            };
            let mut out = vec![f64::NAN; attribute.width()];
            if attribute.encode(raw, &encoder.missing_tokens, &mut out).is_ok() {
                prop_assert!(out.iter().all(|v| v.is_finite()), "{}: {:?}", attribute.name, out);
                if let Encoding::Categorical { .. } = attribute.encoding {
                    prop_assert!(out.iter().filter(|&&v| v == 1.0).count() <= 1);
                    prop_assert!(out.iter().all(|&v| v == 0.0 || v == 1.0));
                }
            }
        }
    }
}
