//! The model artifact (`models/<version>/model.json`) and scoring with it.
//!
//! The artifact is our own versioned JSON: everything needed to score a lead and explain the
//! score, and a record of how it was trained. Scoring is plain arithmetic over it (architecture
//! invariant: only `train` touches linfa), so the server needs nothing but this file.

use crate::aging::{AgeTerms, Aging};
use crate::encoder::{
    Encoding, FeatureEncoder, Quoted, RateStat, RawValue, Reading, ValueError, format_number,
};
use crate::metrics::{CalibrationBin, Summary};
use crate::names::FieldIndex;
use crate::schema::Kind;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Version of the artifact layout this leadscore writes for a model with a shaped numeric
/// attribute (`shape` in its encoding); a reader refuses versions it does not know.
pub const FORMAT_VERSION: u32 = 2;

/// The version written for a model without shapes: the layout before shapes existed, so such a
/// model is byte for byte what an older leadscore wrote, and an older leadscore loads it.
pub const LINEAR_FORMAT_VERSION: u32 = 1;

/// The format version a model with this encoder is written as.
pub fn format_version(encoder: &FeatureEncoder) -> u32 {
    if encoder.has_shapes() {
        FORMAT_VERSION
    } else {
        LINEAR_FORMAT_VERSION
    }
}

/// Contributions smaller than this (in log-odds) are not reported as factors.
const FACTOR_EPSILON: f64 = 1e-9;

/// Log-odds are clamped to ±this before the logistic function, which keeps every probability
/// strictly inside (0, 1) in f64 (σ(30) = 1 − 9.4e-14).
const MAX_LOGIT: f64 = 30.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelArtifact {
    pub format_version: u32,
    pub model_version: String,
    /// RFC 3339, UTC.
    pub trained_at: String,
    /// The leadscore release that trained it.
    pub trained_by: String,
    pub data: DataSummary,
    pub target: TargetSpec,
    pub encoder: FeatureEncoder,
    /// One per encoded column, in encoder order; positive means more likely to close.
    pub coefficients: Vec<Coefficient>,
    pub intercept: f64,
    pub regularisation: Regularisation,
    pub solver: SolverReport,
    pub holdout: HoldoutReport,
    /// Training probabilities at percentiles 0, 1, …, 100.
    pub score_quantiles: Vec<f64>,
    /// Best grade first; a lead gets the first grade whose `min_probability` it reaches.
    pub grades: Vec<GradeCutoff>,
    /// The period the probability is about, when trained with `--horizon`; absent, the
    /// probability is that a lead ever closes. Absent in older models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizon: Option<Horizon>,
    /// With landmark training (`--horizon` with a period): how the lead's age enters the
    /// probability. Absent, the probability is for a new lead (age 0) whatever its age.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aging: Option<Aging>,
    /// With `train --shapes auto`: which numeric attributes kept a shape and why. Absent in
    /// models trained with `--shapes off` or before shapes existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shapes: Option<ShapeChoice>,
    /// When the file had more rows than training keeps: what was sampled and how the intercept
    /// was corrected. Absent, every row was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<Sampling>,
}

/// A fit on a sample of a large file (`train --max-rows`, or the memory budget): every won lead
/// (or a uniform half of the cap of them) and a uniform sample of the rest, with the intercept
/// corrected for the sample's won share (prior correction, King and Zeng 2001).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// Rows kept at most.
    pub max_rows: u64,
    /// What set the cap: `--max-rows`, or the memory budget.
    pub rule: String,
    /// The seed the random keys were drawn from (`--seed`): same file and seed, same sample.
    pub seed: u64,
    pub rows_read: u64,
    pub won_read: u64,
    pub lost_read: u64,
    pub open_read: u64,
    pub won_kept: u64,
    pub lost_kept: u64,
    pub open_kept: u64,
    /// τ: won / (won + lost) in the file.
    pub population_won_share: f64,
    /// ȳ: won / (won + lost) in the sample.
    pub sample_won_share: f64,
    /// ln[((1−τ)/τ)·(ȳ/(1−ȳ))], subtracted from the sample fit's intercept.
    pub intercept_correction: f64,
    /// Which rows the stored measurements were taken on.
    pub measured_on: String,
}

impl Sampling {
    /// What was read, what was kept and the correction, in one line (the training summary and
    /// its progress line).
    pub fn describe(&self) -> String {
        format!(
            "{} rows read, more than the cap of {} ({}): kept {} of {} won, {} of {} lost, {} of \
             {} open (seed {}); intercept corrected by {:+.4} for the sample's won share {:.1}% \
             against the file's {:.1}%",
            self.rows_read,
            self.max_rows,
            self.rule,
            self.won_kept,
            self.won_read,
            self.lost_kept,
            self.lost_read,
            self.open_kept,
            self.open_read,
            self.seed,
            -self.intercept_correction,
            self.sample_won_share * 100.0,
            self.population_won_share * 100.0,
        )
    }
}

/// How the shapes of the numeric attributes were chosen: forward selection by validation log
/// loss on a split of the training part (never the holdout).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShapeChoice {
    /// The attributes that kept their shape (the others are linear).
    pub shaped: Vec<String>,
    /// Each step tried and its validation log loss: `"none"` (every attribute linear) first,
    /// then each shape alone, then the shapes added best first (`"a + b"`).
    pub selection: Vec<(String, f64)>,
    /// The share of the linear model's validation log loss a shape had to save to be kept.
    pub margin: f64,
}

/// What a horizon model's probability means and how its labels were made: a lead counts as won
/// only when it closed won within `days` of its created date, judged at `as_of`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Horizon {
    /// H: the probability is P(closes within H days).
    pub days: u32,
    /// ISO date the outcomes were judged at (`--as-of`, default the latest created or closed
    /// date in the file). Leads created less than `days` before it were still maturing.
    pub as_of: String,
    pub created_column: String,
    pub closed_column: String,
    /// Spacing in days of the lead ages a model that ages its scores learned at; absent, the
    /// model learned from leads at creation only, so its probability is for a new lead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_days: Option<u32>,
    pub counts: HorizonCounts,
}

/// How the leads of a horizon training were labelled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HorizonCounts {
    /// Leads created at least H days before the as-of date: the training rows.
    pub matured: u64,
    /// Leads created less than H days before the as-of date (or after it): their window has
    /// not passed, so they are left out, never counted as lost.
    pub maturing: u64,
    /// Matured leads won within H days of creation: the wins.
    pub won_within: u64,
    /// Matured leads won more than H days after creation: not won within H.
    pub won_after: u64,
    /// Matured leads still open: not won within H.
    pub open_past: u64,
    /// Matured leads lost.
    pub lost: u64,
    /// Won leads without a closed date left out (`--won-without-date drop`).
    pub won_without_date_dropped: u64,
}

impl Horizon {
    /// The last created date of a matured lead: `as_of` − H, when representable.
    pub fn matured_by(&self) -> Option<chrono::NaiveDate> {
        crate::schema::parse_date(&self.as_of)?
            .checked_sub_days(chrono::Days::new(self.days.into()))
    }
}

impl ModelArtifact {
    /// One sentence saying what this model's probability means, for every report and API that
    /// shows a probability: the same words everywhere.
    pub fn probability_meaning(&self) -> String {
        match &self.horizon {
            Some(h) if self.aging.is_some() => format!(
                "P(closes within the next {} days), for a lead still open at its age: learned from every \
                 lead at each age (0, {}, {}, … days) it was still open and its next {} days had \
                 passed by {}",
                h.days,
                h.period_days.unwrap_or(0),
                2 * h.period_days.unwrap_or(0),
                h.days,
                h.as_of
            ),
            Some(h) => format!(
                "P(closes within the next {} days) for a new lead: learned from leads created by \
                 {}, {} days before {} (leads created later were still maturing), counted as won \
                 only when won within {} days of creation",
                h.days,
                h.matured_by().map_or_else(|| "?".into(), |d| d.to_string()),
                h.days,
                h.as_of,
                h.days
            ),
            None if self.data.open_rows == 0 => {
                "P(ever closes), judged on leads whose outcome was known".into()
            }
            None => format!(
                "P(ever closes), judged on leads whose outcome was known ({} open or unlabelled \
                 leads left out, so slow closers are under-represented)",
                self.data.open_rows
            ),
        }
    }
}

impl ModelArtifact {
    /// For a model that ages its scores, one line on how: the landmark ages, the rows, the
    /// age interactions chosen and the validation log loss they bought; the reference of its
    /// percentiles and grades.
    pub fn aging_description(&self) -> Option<String> {
        let (aging, h) = (self.aging.as_ref()?, self.horizon.as_ref()?);
        let base = aging.selection.first().map(|s| s.1);
        let chosen = aging
            .selection
            .iter()
            .find(|s| s.0 == aging.interactions.join(" + "))
            .map(|s| s.1);
        let interactions = if aging.interactions.is_empty() {
            "age enters alone (no age × attribute interaction lowered the validation log loss)"
                .to_string()
        } else {
            format!(
                "age × {} (validation log loss {} → {})",
                aging.interactions.join(", age × "),
                base.map_or_else(|| "?".into(), |l| format!("{l:.4}")),
                chosen.map_or_else(|| "?".into(), |l| format!("{l:.4}"))
            )
        };
        Some(format!(
            "landmark ages every {} days up to {} days ({} rows: each lead at every age it was \
             still open); {interactions}; percentiles and grades against all landmark rows",
            h.period_days.unwrap_or(0),
            aging.max_age_days,
            aging.landmark_rows
        ))
    }

    /// Which numeric attributes kept a shape and the validation log loss before and after, for
    /// the train summary and `models show`; `None` when shapes were not tried.
    pub fn shapes_description(&self) -> Option<String> {
        let choice = self.shapes.as_ref()?;
        let Some(&(_, linear)) = choice.selection.first() else {
            return Some(
                "nothing to shape (no numeric attribute with 3 distinct knots; or the choice \
                 failed, as the progress lines say): all linear"
                    .into(),
            );
        };
        if choice.shaped.is_empty() {
            return Some(format!(
                "none kept: no shape lowered the validation log loss ({linear:.4}, all linear) by \
                 more than {}% and beyond its noise",
                choice.margin * 100.0
            ));
        }
        let with = choice
            .selection
            .iter()
            .find(|s| s.0 == choice.shaped.join(" + "))
            .map_or_else(|| "?".into(), |s| format!("{:.4}", s.1));
        Some(format!(
            "{} shaped (validation log loss {linear:.4} all linear → {with}; a shape is kept \
             when it saves more than {}% and beyond the noise)",
            choice.shaped.join(", "),
            choice.margin * 100.0
        ))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSummary {
    pub file: String,
    pub sha256: String,
    /// Data rows in the file.
    pub rows_read: u64,
    /// Rows with a known outcome (won or lost).
    pub training_rows: u64,
    pub wins: u64,
    pub losses: u64,
    /// Rows left out because their outcome is empty or still open.
    pub open_rows: u64,
    pub base_rate: f64,
    pub date_column: Option<String>,
    /// First and last date (ISO) of the rows with an outcome, when `--date` was given.
    pub date_range: Option<(String, String)>,
    /// Every column of the file, what it was taken for, and whether it is a feature.
    pub columns: Vec<ColumnSummary>,
    /// A fingerprint of the training lead ids (when `--id` was given), to recognise them in
    /// `evaluate`. Absent in older models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_sketch: Option<crate::id_sketch::IdSketch>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnSummary {
    pub name: String,
    pub kind: Kind,
    pub role: String,
    pub missing: u64,
    pub distinct: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetSpec {
    pub column: String,
    pub id_column: Option<String>,
    pub positive: Option<String>,
    pub open_values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coefficient {
    pub feature: String,
    pub weight: f64,
    /// Mean of the encoded column over training leads: the "average lead" explanations compare
    /// against.
    pub mean: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Regularisation {
    /// L2 strength on the summed log-loss (linfa-logistic's `alpha`; scikit-learn's `1 / C`).
    pub alpha: f64,
    /// Each candidate tried and its holdout log loss.
    pub candidates: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SolverReport {
    pub solver: String,
    pub gradient_tolerance: f64,
    pub max_iterations: u64,
    /// Norm of the gradient at the served coefficients.
    pub final_gradient_norm: f64,
    pub converged: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldoutReport {
    /// How the holdout was chosen.
    pub method: String,
    pub metrics: Summary,
    pub calibration: Vec<CalibrationBin>,
    /// The served model is refit on all rows; these metrics come from the fit without the
    /// holdout.
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradeCutoff {
    pub grade: String,
    pub min_probability: f64,
}

/// Why a model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read model {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("model {path} is not a valid leadscore model: {message}")]
    Corrupt { path: String, message: String },
}

/// One attribute's part in a score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Factor {
    pub field: String,
    pub value: String,
    /// Contribution in log-odds against an average training lead.
    pub log_odds: f64,
    /// Closure rate of training leads that shared the value (for numbers: the same quintile).
    pub closure_rate: Option<f64>,
    pub support: u64,
}

/// A scored lead.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scored {
    pub probability: f64,
    /// 1..=99.
    pub score: u32,
    /// Share of training leads scored lower (0..100).
    pub percentile: f64,
    pub grade: String,
    /// Top positive factors (strongest first), then top negative ones.
    pub factors: Vec<Factor>,
    pub warnings: Vec<String>,
    /// Attributes (encoder indices) whose number lies outside the training range, each also
    /// a warning; the server counts them per attribute. Empty, and not allocated, for most
    /// leads.
    #[serde(skip)]
    pub out_of_range: Vec<usize>,
}

/// A loaded, validated model, ready to score.
#[derive(Debug, Clone)]
pub struct Model {
    pub artifact: ModelArtifact,
    /// Attribute index by field name under the one name rule ([`crate::names`]), built once
    /// here for every caller that matches names (CSV headers, gRPC keys).
    fields: FieldIndex,
    /// Log-odds of the average training lead: intercept + Σ weight · mean.
    average_logit: f64,
    /// The warning for each attribute's imputed missing value, written once (most leads have
    /// some: formatting them per lead cost more than copying).
    imputed: Vec<String>,
    /// Each attribute's training range `[min, max]` (unbounded for non-numeric ones), so that
    /// checking a number against it is two comparisons on the scoring path.
    ranges: Vec<(f64, f64)>,
    /// The age terms of a model that ages its scores, resolved against the encoder.
    age_terms: Option<AgeTerms>,
}

impl Model {
    pub fn load(path: &Path) -> Result<Model, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Model::from_json(&text).map_err(|message| ModelError::Corrupt {
            path: path.display().to_string(),
            message,
        })
    }

    pub fn from_json(text: &str) -> Result<Model, String> {
        let artifact: ModelArtifact = serde_json::from_str(text).map_err(|e| e.to_string())?;
        Model::new(artifact)
    }

    /// Validates an artifact: a model that loads can score any lead without panicking.
    pub fn new(artifact: ModelArtifact) -> Result<Model, String> {
        if !(LINEAR_FORMAT_VERSION..=FORMAT_VERSION).contains(&artifact.format_version) {
            return Err(format!(
                "format version {} (this leadscore reads versions {LINEAR_FORMAT_VERSION} to \
                 {FORMAT_VERSION})",
                artifact.format_version
            ));
        }
        // Version 1 predates shapes: a shape in it is a file edited or damaged, not a model.
        if artifact.format_version < FORMAT_VERSION && artifact.encoder.has_shapes() {
            return Err(format!(
                "format version {} has no shapes, but an attribute has one",
                artifact.format_version
            ));
        }
        let age_terms = match (&artifact.aging, &artifact.horizon) {
            (Some(aging), Some(h)) => Some(AgeTerms::new(
                &artifact.encoder,
                h.days,
                aging.max_age_days,
                &aging.interactions,
            )?),
            (Some(_), None) => return Err("aging without a horizon".into()),
            (None, _) => None,
        };
        let width = artifact.encoder.width() + age_terms.as_ref().map_or(0, AgeTerms::width);
        if artifact.coefficients.len() != width {
            return Err(format!(
                "{} coefficients for {width} encoded features",
                artifact.coefficients.len()
            ));
        }
        let mut offset = 0;
        for a in &artifact.encoder.attributes {
            if a.offset != offset {
                return Err(format!(
                    "attribute {:?} has offset {}, expected {offset}",
                    a.name, a.offset
                ));
            }
            offset += a.width();
            if let crate::encoder::Encoding::Numeric {
                scale,
                mean,
                min,
                max,
                lower_limit,
                upper_limit,
                quintile_edges,
                quintile_rates,
                shape,
                ..
            } = &a.encoding
            {
                if !(scale.is_finite() && *scale > 0.0 && mean.is_finite() && min <= max) {
                    return Err(format!("attribute {:?} has an invalid scaling", a.name));
                }
                // `clamp` panics on limits out of order or NaN: refuse them at load instead.
                let low = lower_limit.unwrap_or(*min);
                let high = upper_limit.unwrap_or(*max);
                if low.is_nan() || high.is_nan() || low > high {
                    return Err(format!("attribute {:?} has invalid limits", a.name));
                }
                if let Some(shape) = shape {
                    shape_fits(shape, (low, high))
                        .map_err(|e| format!("attribute {:?} has an invalid shape: {e}", a.name))?;
                }
                if quintile_rates.len() != quintile_edges.len() + 1 {
                    return Err(format!("attribute {:?} has inconsistent quintiles", a.name));
                }
            }
            if let crate::encoder::Encoding::Categorical {
                levels,
                level_rates,
                ..
            } = &a.encoding
                && levels.len() != level_rates.len()
            {
                return Err(format!("attribute {:?} has inconsistent levels", a.name));
            }
            if let Some(d) = &a.distribution
                && !distribution_fits(&a.encoding, d)
            {
                return Err(format!(
                    "attribute {:?} has an inconsistent training distribution",
                    a.name
                ));
            }
        }
        let finite = artifact
            .coefficients
            .iter()
            .all(|c| c.weight.is_finite() && c.mean.is_finite())
            && artifact.intercept.is_finite();
        if !finite {
            return Err("non-finite coefficient".into());
        }
        let q = &artifact.score_quantiles;
        if q.len() != 101
            || q.windows(2).any(|w| {
                w[0].partial_cmp(&w[1]) == Some(std::cmp::Ordering::Greater) || w[0].is_nan()
            })
        {
            return Err("score_quantiles must be 101 ascending probabilities".into());
        }
        if artifact.grades.is_empty() {
            return Err("no grades".into());
        }
        let fields = FieldIndex::new(artifact.encoder.attributes.iter().map(|a| a.name.as_str()));
        let average_logit = artifact.intercept
            + artifact
                .coefficients
                .iter()
                .map(|c| c.weight * c.mean)
                .sum::<f64>();
        let imputed = artifact
            .encoder
            .attributes
            .iter()
            .map(|a| format!("{}: missing value imputed", a.name))
            .collect();
        let ranges = artifact
            .encoder
            .attributes
            .iter()
            .map(|a| match a.encoding {
                Encoding::Numeric { min, max, .. } => (min, max),
                _ => (f64::NEG_INFINITY, f64::INFINITY),
            })
            .collect();
        Ok(Model {
            artifact,
            fields,
            average_logit,
            imputed,
            ranges,
            age_terms,
        })
    }

    pub fn version(&self) -> &str {
        &self.artifact.model_version
    }

    pub fn encoder(&self) -> &FeatureEncoder {
        &self.artifact.encoder
    }

    /// Which attribute a field name denotes (see [`crate::names`]).
    pub fn fields(&self) -> &FieldIndex {
        &self.fields
    }

    /// Linear predictor of an encoded row.
    pub fn logit(&self, features: &[f64]) -> f64 {
        self.artifact.intercept
            + self
                .artifact
                .coefficients
                .iter()
                .zip(features)
                .map(|(c, x)| c.weight * x)
                .sum::<f64>()
    }

    /// Scores one lead as a new lead (age 0); `value(i)` is the value of attribute `i` of the
    /// encoder.
    pub fn score<'v>(
        &self,
        value: impl FnMut(usize) -> RawValue<'v>,
        explain: usize,
    ) -> Result<Scored, ValueError> {
        self.score_at(value, Some(0.0), explain)
    }

    /// Scores one lead `age_days` old (see [`Model::lead_age`]); the age matters only to a
    /// model that ages its scores, which scores a lead of unknown age (`None`) as new, saying
    /// so.
    pub fn score_at<'v>(
        &self,
        value: impl FnMut(usize) -> RawValue<'v>,
        age_days: Option<f64>,
        explain: usize,
    ) -> Result<Scored, ValueError> {
        let mut features = vec![0.0; self.artifact.encoder.width()];
        let mut readings = Vec::with_capacity(self.artifact.encoder.attributes.len());
        self.artifact
            .encoder
            .encode_row(value, &mut features, &mut readings)?;
        Ok(self.score_encoded_at(&features, &readings, age_days, explain))
    }

    /// Scores an encoded row (see [`FeatureEncoder::encode_row`]) as a new lead.
    pub fn score_encoded(&self, features: &[f64], readings: &[Reading], explain: usize) -> Scored {
        self.score_encoded_at(features, readings, Some(0.0), explain)
    }

    /// Whether the model's probability depends on the lead's age.
    pub fn ages(&self) -> bool {
        self.age_terms.is_some()
    }

    /// The created-date column a model that ages its scores reads a lead's age from.
    pub fn created_column(&self) -> Option<&str> {
        self.age_terms.as_ref()?;
        self.artifact
            .horizon
            .as_ref()
            .map(|h| h.created_column.as_str())
    }

    /// A lead's age in days at `today`: the explicit `age_days` value if given, else from its
    /// created date (a missing-value token counts as not given); `Ok(None)`: neither given.
    pub fn lead_age(
        &self,
        age_days: Option<&str>,
        created: Option<&str>,
        today: chrono::NaiveDate,
    ) -> Result<Option<f64>, String> {
        let tokens = &self.artifact.encoder.missing_tokens;
        crate::aging::lead_age(
            age_days.filter(|v| !tokens.is_missing(v)),
            created.filter(|v| !tokens.is_missing(v)),
            today,
        )
    }

    /// Scores an encoded row (the encoder's columns) of a lead `age_days` old.
    pub fn score_encoded_at(
        &self,
        encoded: &[f64],
        readings: &[Reading],
        age_days: Option<f64>,
        explain: usize,
    ) -> Scored {
        let mut warnings = Vec::new();
        let aged;
        let mut used_age = None;
        let features = match &self.age_terms {
            Some(terms) => {
                let age = match age_days {
                    Some(a) if a < 0.0 => {
                        warnings.push(format!(
                            "age: created {} days after the time of scoring; scored as a new \
                             lead (age 0)",
                            format_number(-a)
                        ));
                        0.0
                    }
                    Some(a) if a > terms.max_age_days() => {
                        warnings.push(format!(
                            "age: {} days is older than the oldest age learned ({} days); \
                             scored at {} days",
                            format_number(a),
                            format_number(terms.max_age_days()),
                            format_number(terms.max_age_days())
                        ));
                        a
                    }
                    Some(a) => a,
                    None => {
                        warnings.push(format!(
                            "age: neither {} nor the created date {:?} given; scored as a new \
                             lead (age 0)",
                            crate::aging::AGE_FIELD,
                            self.created_column().unwrap_or_default()
                        ));
                        0.0
                    }
                };
                let mut row = encoded.to_vec();
                row.resize(encoded.len() + terms.width(), 0.0);
                let (head, tail) = row.split_at_mut(encoded.len());
                terms.extend(head, age, tail);
                aged = row;
                used_age = Some(age);
                &aged[..]
            }
            None => encoded,
        };
        let probability = sigmoid(self.logit(features));
        let mut out_of_range = Vec::new();
        for (i, (((attribute, reading), imputed), &(min, max))) in self
            .artifact
            .encoder
            .attributes
            .iter()
            .zip(readings)
            .zip(&self.imputed)
            .zip(&self.ranges)
            .enumerate()
        {
            match reading {
                Reading::Missing => warnings.push(imputed.clone()),
                &Reading::Number(x) if x < min || x > max => {
                    warnings.push(out_of_range_warning(attribute, x));
                    out_of_range.push(i);
                }
                Reading::Other {
                    label,
                    unseen: true,
                } => warnings.push(format!(
                    "{}: category {} not seen in training, treated as a rare level",
                    attribute.name,
                    Quoted(label)
                )),
                _ => {}
            }
        }
        Scored {
            probability,
            score: (probability * 100.0).round().clamp(1.0, 99.0) as u32,
            percentile: self.percentile(probability),
            grade: self.grade(probability).to_string(),
            factors: if explain > 0 {
                self.factors(features, readings, used_age, explain)
            } else {
                Vec::new()
            },
            warnings,
            out_of_range,
        }
    }

    /// Top `k` positive and top `k` negative attribute contributions.
    /// With an age (a model that ages its scores), the age is one more factor: its terms,
    /// interactions included, against the average training row.
    fn factors(
        &self,
        features: &[f64],
        readings: &[Reading],
        age_days: Option<f64>,
        k: usize,
    ) -> Vec<Factor> {
        let coefficients = &self.artifact.coefficients;
        let attributes = &self.artifact.encoder.attributes;
        let width = self.artifact.encoder.width();
        // Contributions first; only the chosen attributes are described (which allocates).
        let mut contributions: Vec<f64> = attributes
            .iter()
            .map(|attribute| {
                let range = attribute.offset..attribute.offset + attribute.width();
                coefficients[range.clone()]
                    .iter()
                    .zip(&features[range])
                    .map(|(c, x)| c.weight * (x - c.mean))
                    .sum()
            })
            .collect();
        if age_days.is_some() {
            contributions.push(
                coefficients[width..]
                    .iter()
                    .zip(&features[width..])
                    .map(|(c, x)| c.weight * (x - c.mean))
                    .sum(),
            );
        }
        let (positive, negative) = chosen_factors(&contributions, k);
        positive
            .into_iter()
            .chain(negative)
            .map(|i| {
                if i == attributes.len() {
                    return Factor {
                        field: crate::aging::AGE_FIELD.into(),
                        value: format_number(age_days.unwrap_or(0.0)),
                        log_odds: contributions[i],
                        closure_rate: None,
                        support: 0,
                    };
                }
                let (value, RateStat { leads, wins }) = attributes[i].describe(&readings[i]);
                Factor {
                    field: attributes[i].name.clone(),
                    value,
                    log_odds: contributions[i],
                    closure_rate: (leads > 0).then(|| wins as f64 / leads as f64),
                    support: leads,
                }
            })
            .collect()
    }

    /// Log-odds of the average training lead.
    pub fn average_logit(&self) -> f64 {
        self.average_logit
    }

    /// Share of training leads (0..100) with a lower probability, interpolated between the
    /// stored percentiles.
    pub fn percentile(&self, probability: f64) -> f64 {
        let q = &self.artifact.score_quantiles;
        // Not a number only from an artifact whose finite weights still overflow the log-odds
        // (inf − inf): the bottom, rather than an index before the first quantile.
        if probability.is_nan() || probability <= q[0] {
            return 0.0;
        }
        if probability >= q[100] {
            return 100.0;
        }
        // Stored percentiles equal to the probability (many leads can share one score): the
        // middle of their run, as for tied ranks.
        let below = q.partition_point(|&v| v < probability);
        let up_to = q.partition_point(|&v| v <= probability);
        if up_to > below {
            return (below + up_to - 1) as f64 / 2.0;
        }
        let (lo, hi) = (q[below - 1], q[below]);
        (below - 1) as f64 + (probability - lo) / (hi - lo)
    }

    pub fn grade(&self, probability: f64) -> &str {
        self.artifact
            .grades
            .iter()
            .find(|g| probability >= g.min_probability)
            .unwrap_or_else(|| {
                self.artifact
                    .grades
                    .last()
                    .expect("validated: grades exist")
            })
            .grade
            .as_str()
    }
}

/// Whether a shape's columns can be computed for every value the encoder lets through (those
/// between the winsorising limits `low` and `high`): a well-formed shape whose knots or scales
/// are extreme can still make infinite or NaN columns, and a NaN probability breaks the
/// percentile lookup. The columns are largest in size at the limits and the knots.
fn shape_fits(shape: &crate::encoder::Shape, (low, high): (f64, f64)) -> Result<(), String> {
    if let Some(problem) = shape.problem() {
        return Err(problem);
    }
    let mut columns = vec![0.0; shape.width()];
    for v in [low, high].into_iter().chain(shape.knots.iter().copied()) {
        shape.encode(v.clamp(low, high), &mut columns);
        if !columns.iter().all(|c| c.is_finite()) {
            return Err(format!("its columns are not finite at {v}"));
        }
    }
    Ok(())
}

/// The warning for a number outside its attribute's training range: where it lies, and when it
/// lies beyond the winsorising limit too, the value it was scored as.
fn out_of_range_warning(attribute: &crate::encoder::Attribute, x: f64) -> String {
    let Encoding::Numeric {
        min,
        max,
        lower_limit,
        upper_limit,
        ..
    } = attribute.encoding
    else {
        unreachable!("only numeric attributes have a training range")
    };
    let limit = x.clamp(lower_limit.unwrap_or(min), upper_limit.unwrap_or(max));
    let mut warning = format!(
        "{}: {} is outside the training range [{}, {}]",
        attribute.name,
        format_number(x),
        format_number(min),
        format_number(max)
    );
    if limit != x {
        warning.push_str(&format!(
            "; scored as {} (the winsorising limit)",
            format_number(limit)
        ));
    }
    warning
}

/// Whether a training distribution has the bins its encoding implies, with shares that are
/// shares: a model that loads can measure drift without indexing out of bounds.
fn distribution_fits(encoding: &Encoding, d: &crate::encoder::Distribution) -> bool {
    let bins = match encoding {
        Encoding::Numeric { .. } => d.edges.len() + 1,
        Encoding::Boolean { .. } => 2,
        Encoding::Categorical { levels, .. } => levels.len() + 1,
    };
    let share = |s: &f64| (0.0..=1.0).contains(s);
    let ascending = d.edges.windows(2).all(|w| w[0] < w[1]);
    let numeric = matches!(encoding, Encoding::Numeric { .. });
    // The rates per bin are optional (older models) but, when present, one per bin.
    d.shares.len() == bins
        && (d.rates.is_empty() || (numeric && d.rates.len() == bins))
        && d.shares.iter().all(share)
        && share(&d.missing_share)
        && ascending
        && d.edges.iter().all(|e| e.is_finite())
        && (numeric || d.edges.is_empty())
}

/// The logistic function on a clamped logit: strictly inside (0, 1).
pub fn sigmoid(logit: f64) -> f64 {
    let z = logit.clamp(-MAX_LOGIT, MAX_LOGIT);
    1.0 / (1.0 + (-z).exp())
}

/// Grades by training percentile: A the top 10%, B the next 20%, C the next 30%, D the rest.
pub fn grade_cutoffs(quantiles: &[f64]) -> Vec<GradeCutoff> {
    [("A", 90), ("B", 70), ("C", 40), ("D", 0)]
        .iter()
        .map(|&(grade, pct)| GradeCutoff {
            grade: grade.to_string(),
            min_probability: if pct == 0 { 0.0 } else { quantiles[pct] },
        })
        .collect()
}

/// The 101 percentiles (0..=100) of training probabilities.
pub fn score_quantiles(probabilities: &[f64]) -> Vec<f64> {
    let mut sorted = probabilities.to_vec();
    sorted.sort_by(f64::total_cmp);
    (0..=100)
        .map(|k| {
            let pos = (sorted.len() - 1) as f64 * k as f64 / 100.0;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
        })
        .collect()
}

/// The attributes explaining a score: the `k` largest contributions above [`FACTOR_EPSILON`],
/// largest first, and the `k` smallest below `-FACTOR_EPSILON`, smallest first. An attribute
/// at the training average contributes zero up to rounding (±1e-17): it is no reason either way.
/// Ties are ordered as reading a stable largest-first sort from either end orders them: earlier
/// attributes first among the positive, later ones first among the negative. Found in one pass
/// per side (k is a handful; sorting every attribute cost more than the rest of the choice).
fn chosen_factors(contributions: &[f64], k: usize) -> (Vec<usize>, Vec<usize>) {
    let positive = best(
        contributions,
        k,
        |c| c > FACTOR_EPSILON,
        |a, b| a.0 > b.0 || (a.0 == b.0 && a.1 < b.1),
    );
    let negative = best(
        contributions,
        k,
        |c| c < -FACTOR_EPSILON,
        |a, b| a.0 < b.0 || (a.0 == b.0 && a.1 > b.1),
    );
    (positive, negative)
}

/// Indices of the first `k` of `values` that pass `keep`, in the order `before` (value, index)
/// defines, by insertion into a list of at most `k`.
fn best(
    values: &[f64],
    k: usize,
    keep: impl Fn(f64) -> bool,
    before: impl Fn((f64, usize), (f64, usize)) -> bool,
) -> Vec<usize> {
    let mut chosen: Vec<usize> = Vec::with_capacity(k.min(values.len()));
    if k == 0 {
        return chosen;
    }
    for (i, &v) in values.iter().enumerate() {
        if !keep(v) {
            continue;
        }
        let at = chosen
            .iter()
            .position(|&j| before((v, i), (values[j], j)))
            .unwrap_or(chosen.len());
        if at < k {
            if chosen.len() == k {
                chosen.pop();
            }
            chosen.insert(at, i);
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid artifact with one numeric attribute, from the shipped model's layout.
    fn artifact() -> ModelArtifact {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/models/CURRENT"))
            .unwrap();
        let path = format!(
            "{}/models/{}/model.json",
            env!("CARGO_MANIFEST_DIR"),
            text.trim()
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// Models written before horizons (the shipped one is) load as "ever closes" models; a
    /// horizon survives the JSON round trip, and its period is optional.
    #[test]
    fn horizon_is_optional_and_round_trips() {
        let shipped =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/models/CURRENT"))
                .unwrap();
        let text = std::fs::read_to_string(format!(
            "{}/models/{}/model.json",
            env!("CARGO_MANIFEST_DIR"),
            shipped.trim()
        ))
        .unwrap();
        assert!(
            !text.contains("\"horizon\""),
            "the shipped model predates horizons"
        );
        let old = Model::from_json(&text).unwrap();
        assert_eq!(old.artifact.horizon, None);
        assert!(
            old.artifact
                .probability_meaning()
                .starts_with("P(ever closes)")
        );

        let mut artifact = old.artifact.clone();
        artifact.horizon = Some(Horizon {
            days: 90,
            as_of: "2025-12-31".into(),
            created_column: "created_at".into(),
            closed_column: "closed_at".into(),
            period_days: None,
            counts: HorizonCounts {
                matured: 10,
                maturing: 3,
                won_within: 4,
                ..HorizonCounts::default()
            },
        });
        let json = serde_json::to_string(&artifact).unwrap();
        assert!(!json.contains("period_days"), "absent, not null");
        let back = Model::from_json(&json).unwrap();
        assert_eq!(back.artifact, artifact);
        let meaning = back.artifact.probability_meaning();
        assert!(
            meaning.starts_with("P(closes within the next 90 days)")
                && meaning.contains("2025-10-02"),
            "{meaning}"
        );
    }

    /// The factor choice equals the straightforward one: a stable sort, largest first, read
    /// from both ends.
    #[test]
    fn chosen_factors_match_a_stable_sort() {
        let reference = |c: &[f64], k: usize| {
            let mut order: Vec<(f64, usize)> = c.iter().copied().zip(0..).collect();
            order.sort_by(|a, b| b.0.total_cmp(&a.0));
            let positive = order.iter().filter(|f| f.0 > FACTOR_EPSILON).take(k);
            let negative = order.iter().rev().filter(|f| f.0 < -FACTOR_EPSILON).take(k);
            (
                positive.map(|f| f.1).collect::<Vec<_>>(),
                negative.map(|f| f.1).collect::<Vec<_>>(),
            )
        };
        // A coarse grid of values so that ties (and near-zero contributions) are common.
        let mut state = 7u64;
        for case in 0..2000 {
            let n = case % 23;
            let c: Vec<f64> = (0..n)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    match state >> 61 {
                        0 => 1e-12,
                        1 => -0.0,
                        _ => ((state >> 33) % 9) as f64 / 4.0 - 1.0,
                    }
                })
                .collect();
            for k in [0, 1, 2, 3, 5, 30] {
                assert_eq!(chosen_factors(&c, k), reference(&c, k), "{c:?} k={k}");
            }
        }
    }

    #[test]
    fn validation_refuses_inconsistent_artifacts() {
        assert!(Model::new(artifact()).is_ok());
        let mut a = artifact();
        a.coefficients[0].weight = f64::NAN;
        assert_eq!(Model::new(a).unwrap_err(), "non-finite coefficient");
        let mut a = artifact();
        a.coefficients.pop();
        assert!(Model::new(a).unwrap_err().contains("coefficients for"));
        let mut a = artifact();
        a.score_quantiles.swap(10, 90);
        assert!(Model::new(a).unwrap_err().contains("ascending"));
        let mut a = artifact();
        a.format_version = 3;
        assert!(Model::new(a).unwrap_err().contains("format version 3"));
        // A training distribution whose bins do not fit its attribute, or whose shares are not
        // shares, would index out of bounds when drift is measured.
        let numeric = |a: &ModelArtifact| {
            a.encoder
                .attributes
                .iter()
                .position(|x| matches!(x.encoding, Encoding::Numeric { .. }))
                .unwrap()
        };
        let mut a = artifact();
        let i = numeric(&a);
        let mut with = |edges: Vec<f64>, shares: Vec<f64>| {
            a.encoder.attributes[i].distribution = Some(crate::encoder::Distribution {
                edges,
                shares,
                missing_share: 0.0,
                rates: Vec::new(),
            });
            Model::new(a.clone()).map(|_| ())
        };
        let refused = "inconsistent training distribution";
        assert!(
            with(vec![1.0, 2.0], vec![0.5, 0.5])
                .unwrap_err()
                .contains(refused)
        );
        let not_a_share = vec![0.5, 0.5, f64::NAN];
        assert!(
            with(vec![1.0, 2.0], not_a_share)
                .unwrap_err()
                .contains(refused)
        );
        assert!(
            with(vec![2.0, 1.0], vec![0.5, 0.25, 0.25])
                .unwrap_err()
                .contains(refused)
        );
        assert_eq!(with(vec![1.0, 2.0], vec![0.5, 0.25, 0.25]), Ok(()));
    }

    #[test]
    fn a_number_outside_the_training_range_is_a_warning_naming_it() {
        let mut a = artifact();
        let i = a
            .encoder
            .attributes
            .iter()
            .position(|x| matches!(x.encoding, Encoding::Numeric { .. }))
            .unwrap();
        let Encoding::Numeric {
            min,
            max,
            ref mut upper_limit,
            ..
        } = a.encoder.attributes[i].encoding
        else {
            unreachable!()
        };
        *upper_limit = Some(max + 10.0);
        let name = a.encoder.attributes[i].name.clone();
        let m = Model::new(a).unwrap();
        let score = |x: f64| {
            m.score(
                |j| {
                    if j == i {
                        RawValue::Number(x)
                    } else {
                        RawValue::Missing
                    }
                },
                0,
            )
            .unwrap()
        };
        let inside = score(min);
        assert!(inside.out_of_range.is_empty());
        assert!(!inside.warnings.iter().any(|w| w.contains("training range")));
        // Past the range, within the winsorising limit: extrapolated, said so.
        let past = score(max + 1.0);
        assert_eq!(past.out_of_range, [i]);
        let range = format!("[{}, {}]", format_number(min), format_number(max));
        assert!(past.warnings.contains(&format!(
            "{name}: {} is outside the training range {range}",
            format_number(max + 1.0)
        )));
        // Beyond the limit: winsorised, and the value it was scored as is named.
        let far = score(max + 1e6);
        assert!(far.warnings.contains(&format!(
            "{name}: {} is outside the training range {range}; scored as {} (the winsorising \
             limit)",
            format_number(max + 1e6),
            format_number(max + 10.0)
        )));
        assert_eq!(score(min - 1.0).out_of_range, [i]);
    }

    #[test]
    fn percentile_interpolates_and_splits_ties() {
        let mut a = artifact();
        // Percentiles 0..=100 at probabilities 0.00..=1.00, with 30..=60 tied at 0.45.
        a.score_quantiles = (0..=100)
            .map(|k| {
                if (30..=60).contains(&k) {
                    0.45
                } else {
                    k as f64 / 100.0
                }
            })
            .collect();
        a.score_quantiles[61..]
            .iter_mut()
            .for_each(|q| *q = q.max(0.45));
        let m = Model::new(a).unwrap();
        assert!((m.percentile(0.205) - 20.5).abs() < 1e-9);
        assert_eq!(m.percentile(0.45), 45.0, "middle of the tied run 30..=60");
        assert_eq!(m.percentile(-1.0), 0.0);
        assert_eq!(m.percentile(2.0), 100.0);
        assert_eq!(m.percentile(f64::NAN), 0.0, "no panic on a NaN probability");
    }

    #[test]
    fn probabilities_stay_inside_zero_and_one() {
        assert!(sigmoid(1e9) < 1.0 && sigmoid(-1e9) > 0.0);
        assert_eq!(sigmoid(0.0), 0.5);
    }
}
