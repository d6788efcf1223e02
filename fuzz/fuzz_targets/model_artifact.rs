//! `model.json` bytes → the loader and the checks the server's reload runs before a version
//! serves → scoring leads with whatever passed.
//!
//! The registry reads the file as UTF-8 text and parses it with [`Model::from_json`] (serde,
//! then [`Model::new`]'s validation); the reload watcher then requires
//! [`check_scores`]. Any artifact may be refused; one that is accepted must score every lead
//! without panicking, with a probability strictly inside (0, 1), a score in 1..=99 and a
//! percentile in 0..=100 (the proto's promises), directly and through the server's
//! request path.

#![no_main]

use leadscore::encoder::{Encoding, RawValue};
use leadscore::model::Model;
use leadscore::server::pb;
use leadscore::server::holder::{Served, check_scores};
use leadscore::server::service::score_lead_with;
use leadscore::server::wire::Embedded;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let Ok(model) = Model::from_json(text) else {
        return;
    };
    if check_scores(&model).is_err() {
        return;
    }
    let served = Served::new(model);
    let attributes = served.encoder().attributes.len();
    for lead in leads(&served) {
        let scored = served
            .score(|i| lead[i], attributes)
            .expect("values of each attribute's own kind are usable");
        check(scored.probability, scored.score, scored.percentile);

        let lead_bytes = pb::Lead {
            lead_id: "fuzz".into(),
            // Missing values as unset values, not left out: a lead with no field at all is
            // refused, and the all-missing lead must reach the scoring.
            fields: (served.encoder().attributes.iter().zip(&lead))
                .map(|(a, v)| (a.name.clone(), field_value(*v)))
                .collect(),
        }
        .encode_to_vec();
        // Attribute names that denote one field (refused) or a model's own missing tokens can
        // make the server's reading differ from the direct one; it must not panic, and what it
        // answers must keep the promises.
        if let Ok(response) = score_lead_with(&served, Embedded::Once(&lead_bytes), u32::MAX) {
            check(response.probability, response.score, response.percentile);
        }
    }
});

fn check(probability: f64, score: u32, percentile: f64) {
    assert!(
        probability > 0.0 && probability < 1.0,
        "probability {probability}"
    );
    assert!((1..=99).contains(&score), "score {score}");
    assert!(
        (0.0..=100.0).contains(&percentile),
        "percentile {percentile}"
    );
}

fn field_value(value: RawValue<'_>) -> pb::FieldValue {
    use pb::field_value::Kind;
    let kind = match value {
        RawValue::Missing => None,
        RawValue::Text(t) => Some(Kind::Text(t.to_string())),
        RawValue::Number(x) => Some(Kind::Number(x)),
        RawValue::Flag(b) => Some(Kind::Flag(b)),
    };
    pb::FieldValue { kind }
}

/// A few leads that reach each attribute's extremes: every value missing; the largest numbers,
/// yes and the first level; the smallest numbers, no and a label never seen in training; the
/// training means and the last level.
fn leads(served: &Served) -> Vec<Vec<RawValue<'_>>> {
    let attributes = &served.encoder().attributes;
    let lead = |pick: usize| -> Vec<RawValue<'_>> {
        attributes
            .iter()
            .map(|a| match (&a.encoding, pick) {
                (_, 0) => RawValue::Missing,
                (Encoding::Numeric { .. }, 1) => RawValue::Number(f64::MAX),
                (Encoding::Numeric { .. }, 2) => RawValue::Number(f64::MIN),
                (Encoding::Numeric { mean, .. }, _) => RawValue::Number(*mean),
                (Encoding::Boolean { .. }, 1) => RawValue::Flag(true),
                (Encoding::Boolean { .. }, 2) => RawValue::Flag(false),
                (Encoding::Boolean { .. }, _) => RawValue::Text("yes"),
                (Encoding::Categorical { levels, .. }, 1) => {
                    RawValue::Text(levels.first().map_or("web", String::as_str))
                }
                (Encoding::Categorical { .. }, 2) => RawValue::Text("never seen in training"),
                (Encoding::Categorical { levels, .. }, _) => {
                    RawValue::Text(levels.last().map_or("", String::as_str))
                }
            })
            .collect()
    };
    (0..4).map(lead).collect()
}
