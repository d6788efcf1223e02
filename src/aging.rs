//! Scores that age: how a horizon model trained on landmark rows (`train --horizon --period`)
//! turns a lead's age into features, and how a caller finds that age.
//!
//! The age terms follow the encoder's columns in the model: the age in horizons `t`, `t²`, and
//! for each attribute that sets the pace (chosen in training), its encoded columns times `t`.
//! Training builds its matrix and scoring its row with [`AgeTerms::extend`], so the two cannot
//! read an age differently (the one-encoder invariant, for age).

use crate::encoder::FeatureEncoder;
use crate::schema::parse_date;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The field or column that gives a lead's age in days explicitly (it wins over the created
/// date).
pub const AGE_FIELD: &str = "age_days";

/// What a model that ages its scores stores about the age (the model's optional `aging`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aging {
    /// The oldest landmark age training had rows for: an older lead is scored at this age
    /// (with a warning), because nothing was learned about older leads.
    pub max_age_days: u32,
    /// Attributes whose encoded columns are multiplied by the age (the age interactions),
    /// chosen by validation log loss on the training part.
    pub interactions: Vec<String>,
    /// Landmark rows the model was fitted on (every lead at every landmark age it was open).
    pub landmark_rows: u64,
    /// Each interaction tried and the validation log loss with it, for the report; the first
    /// entry (`"none"`) is the model with age alone.
    pub selection: Vec<(String, f64)>,
}

/// The age terms resolved against an encoder: ready to extend an encoded row.
#[derive(Debug, Clone)]
pub struct AgeTerms {
    horizon_days: f64,
    max_age_days: f64,
    /// `(offset, width)` of each interacting attribute's encoded columns.
    spans: Vec<(usize, usize)>,
}

impl AgeTerms {
    /// Resolves `interactions` (attribute names) in `encoder`; `Err` names one it lacks.
    pub fn new(
        encoder: &FeatureEncoder,
        horizon_days: u32,
        max_age_days: u32,
        interactions: &[String],
    ) -> Result<AgeTerms, String> {
        let spans = interactions
            .iter()
            .map(|name| {
                encoder
                    .attributes
                    .iter()
                    .find(|a| &a.name == name)
                    .map(|a| (a.offset, a.width()))
                    .ok_or_else(|| format!("age interaction with unknown attribute {name:?}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(AgeTerms {
            horizon_days: f64::from(horizon_days.max(1)),
            max_age_days: f64::from(max_age_days),
            spans,
        })
    }

    /// How many columns the age adds.
    pub fn width(&self) -> usize {
        2 + self.spans.iter().map(|s| s.1).sum::<usize>()
    }

    /// The names of the added columns, given the encoder's column names.
    pub fn column_names(&self, encoder_names: &[String]) -> Vec<String> {
        let mut names = vec!["age".to_string(), "age²".to_string()];
        for &(offset, width) in &self.spans {
            names.extend(
                encoder_names[offset..offset + width]
                    .iter()
                    .map(|n| format!("age × {n}")),
            );
        }
        names
    }

    /// The age the model reads: clamped to `[0, max_age_days]`.
    pub fn clamp(&self, age_days: f64) -> f64 {
        age_days.clamp(0.0, self.max_age_days)
    }

    pub fn max_age_days(&self) -> f64 {
        self.max_age_days
    }

    /// Writes the age columns of a row encoded as `encoded` (the encoder's columns) into `out`
    /// (`width()` long), for a lead `age_days` old (clamped).
    pub fn extend(&self, encoded: &[f64], age_days: f64, out: &mut [f64]) {
        // In horizons, so the terms stay near 1 whatever the unit of H: the L2 penalty then
        // treats them like the standardised attributes.
        let t = self.clamp(age_days) / self.horizon_days;
        out[0] = t;
        out[1] = t * t;
        let mut k = 2;
        for &(offset, width) in &self.spans {
            for &x in &encoded[offset..offset + width] {
                out[k] = x * t;
                k += 1;
            }
        }
    }
}

/// A lead's age in days at `today`: from an explicit `age_days` value if given (a number of
/// days ≥ 0), else from its created date; `Ok(None)` when neither is given. `Err` says what is
/// wrong with a value that is given.
pub fn lead_age(
    age_days: Option<&str>,
    created: Option<&str>,
    today: NaiveDate,
) -> Result<Option<f64>, String> {
    fn given(v: Option<&str>) -> Option<&str> {
        v.map(str::trim).filter(|v| !v.is_empty())
    }
    if let Some(text) = given(age_days) {
        return match text.parse::<f64>() {
            Ok(days) if days.is_finite() && days >= 0.0 => Ok(Some(days)),
            _ => Err(format!(
                "{AGE_FIELD}: expected a number of days ≥ 0, got {text:?}"
            )),
        };
    }
    match given(created) {
        Some(text) => match parse_date(text) {
            Some(created) => Ok(Some((today - created).num_days() as f64)),
            None => Err(format!("expected a date (YYYY-MM-DD), got {text:?}")),
        },
        None => Ok(None),
    }
}
