//! The feature encoder: one lead's attribute values → the numeric vector the model multiplies.
//!
//! Architecture invariant: this is the only code that turns attribute values into features.
//! Training (column by column over a CSV), batch scoring (row by row over a CSV) and the gRPC
//! server (from protobuf values) all call [`Attribute::encode`], so they cannot disagree.
//!
//! Encodings (the fitted parameters are stored in the model artifact):
//! - numeric: `(x - mean) / scale`, the value first winsorised to its limits (the training
//!   range widened to Tukey's far-out fences, see `fit::winsor_limits` for why); a
//!   missing value becomes the mean (0) plus a missing indicator column (when training saw
//!   missing values); optionally followed by a shape: the restricted cubic spline columns of
//!   [`Shape`] (the `shape` field), which let the model bend the attribute's effect;
//! - boolean: 1/0; missing becomes the training share of yes plus a missing indicator;
//! - categorical: one column per level (labels compared case- and space-insensitively), one for
//!   the pooled rare levels (also used for labels never seen in training) and one for missing.
//!
//! This file holds the types, which are also the artifact's `encoder` section (their serde
//! names and order are the model.json format); `fit` learns them from training columns once
//! per training, and `encode` applies them to every value scored, the hot path.

mod encode;
mod fit;
#[cfg(test)]
mod tests;

pub use encode::{ECHO_CHARS, Quoted, echo, echo_prefix, encode_table, format_number};
pub use fit::EncoderOptions;

use crate::schema::{Kind, MissingTokens};
use serde::{Deserialize, Serialize};

/// A value as it arrives: a CSV cell is text, a gRPC field may be any of these.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RawValue<'a> {
    Missing,
    Text(&'a str),
    Number(f64),
    Flag(bool),
}

/// A value that cannot be used, naming the field (attribute) it belongs to.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("field {field:?}: {message}")]
pub struct ValueError {
    pub field: String,
    pub message: String,
}

/// How the encoder read one value, for explanations and warnings.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// Missing, imputed.
    Missing,
    Number(f64),
    Flag(bool),
    /// A known category level (index into `levels`).
    Level(usize),
    /// Pooled with the rare levels; `unseen` when training never saw this label at all.
    Other {
        label: String,
        unseen: bool,
    },
}

/// Closure rate of the training leads that shared a value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateStat {
    pub leads: u64,
    pub wins: u64,
}

impl RateStat {
    pub fn rate(&self) -> Option<f64> {
        (self.leads > 0).then(|| self.wins as f64 / self.leads as f64)
    }
}

/// How one attribute (CSV column) is encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Encoding {
    Numeric {
        mean: f64,
        scale: f64,
        min: f64,
        max: f64,
        /// Values are winsorised to `[lower_limit, upper_limit]` before scaling. Absent in
        /// artifacts written before the limits existed: those clamp to `[min, max]`, as they
        /// always did, so they score exactly as before.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lower_limit: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        upper_limit: Option<f64>,
        missing_indicator: bool,
        /// Upper edges of the training quintiles (4 edges), for "leads like this closed at".
        quintile_edges: Vec<f64>,
        /// Closure rate per quintile (5 entries).
        quintile_rates: Vec<RateStat>,
        missing_rate: RateStat,
        /// A curved effect: spline columns after the linear (and missing indicator) columns.
        /// Absent, the attribute is linear, and the artifact is written exactly as before.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shape: Option<Shape>,
    },
    Boolean {
        /// Share of yes among training values: the imputation for a missing value.
        share_true: f64,
        missing_indicator: bool,
        /// Closure rate of no, yes.
        rates: [RateStat; 2],
        missing_rate: RateStat,
    },
    Categorical {
        /// Kept levels, normalised, most frequent first.
        levels: Vec<String>,
        /// Closure rate per kept level.
        level_rates: Vec<RateStat>,
        /// Labels seen in training but pooled as rare (at most [`MAX_POOLED_LABELS`]), so that
        /// only labels never seen are reported as unseen.
        #[serde(default)]
        pooled: Vec<String>,
        other_rate: RateStat,
        missing_rate: RateStat,
    },
}

/// A numeric attribute's shape: a restricted (natural) cubic spline in Harrell's
/// parameterisation, linear beyond the outer knots, one column per inner knot. The formula is a
/// shared specification (SQL scoring computes the same columns), so it must not change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shape {
    /// At least 3 ascending knots, at training quantiles of the (winsorised) values.
    pub knots: Vec<f64>,
    /// Training mean of each spline term (`knots.len() - 2`), so an average lead's columns are
    /// near 0 and a missing value (all 0) is the average lead.
    pub centers: Vec<f64>,
    /// Training standard deviation of each spline term (1 when it is 0), so the L2 penalty
    /// treats the spline columns like the standardised linear one.
    pub scales: Vec<f64>,
}

/// Knots of a fitted shape at most: Harrell's default, enough for one bend either way.
pub const SHAPE_KNOTS: usize = 5;

impl Shape {
    /// Spline columns: one per inner knot.
    pub fn width(&self) -> usize {
        self.knots.len().saturating_sub(2)
    }

    /// The unscaled spline term `r_j(v)` (`j` from 0) of a winsorised value `v`.
    pub fn term(&self, j: usize, v: f64) -> f64 {
        let t = &self.knots;
        let k = t.len();
        let (tj, tk1, tk, t1) = (t[j], t[k - 2], t[k - 1], t[0]);
        let p = |u: f64| u.max(0.0).powi(3);
        (p(v - tj) - p(v - tk1) * (tk - tj) / (tk - tk1) + p(v - tk) * (tk1 - tj) / (tk - tk1))
            / (tk - t1).powi(2)
    }

    /// Writes the spline columns of a winsorised value `v` into `out` (`width()` long).
    pub fn encode(&self, v: f64, out: &mut [f64]) {
        for (j, slot) in out.iter_mut().enumerate() {
            *slot = (self.term(j, v) - self.centers[j]) / self.scales[j];
        }
    }

    /// Why a stored shape cannot be evaluated, if it cannot: `term` indexes the first and the
    /// last two knots and divides by their gaps, and `encode` reads one center and scale per
    /// spline column, so a loaded artifact is refused here rather than panicking or dividing
    /// by zero when it scores.
    pub fn problem(&self) -> Option<String> {
        let (k, w) = (self.knots.len(), self.width());
        if k < 3 {
            return Some(format!("{k} knots, at least 3 needed"));
        }
        if !self.knots.iter().all(|t| t.is_finite()) || self.knots.windows(2).any(|p| p[0] >= p[1])
        {
            return Some("knots not finite and strictly ascending".into());
        }
        let span = (self.knots[k - 1] - self.knots[0]).powi(2);
        if !(span.is_finite() && span > 0.0) {
            return Some("outer knots too close or too far apart to divide by".into());
        }
        if self.centers.len() != w || self.scales.len() != w {
            return Some(format!(
                "{k} knots need {w} centers and {w} scales, found {} and {}",
                self.centers.len(),
                self.scales.len()
            ));
        }
        if !self.centers.iter().all(|c| c.is_finite()) {
            return Some("a center is not finite".into());
        }
        if !self.scales.iter().all(|s| s.is_finite() && *s > 0.0) {
            return Some("a scale is not a positive number".into());
        }
        None
    }
}

/// One attribute of a lead and the encoded columns it owns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribute {
    /// The CSV column name, as the CRM spells it (also the gRPC field name).
    pub name: String,
    /// First encoded column this attribute owns.
    pub offset: usize,
    pub encoding: Encoding,
    /// How the training leads' values were distributed, for drift (PSI) against later leads.
    /// Absent in models trained before it existed: they score as ever, but `evaluate` cannot
    /// measure their per-attribute drift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<Distribution>,
}

/// An attribute's training distribution in bins: each share is of all training leads, so the
/// bins and `missing_share` add up to 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// Numeric attributes: upper edges of the bins, the training deciles (equal ones merged, so
    /// a value many leads share is one bin); a value goes to the first bin whose edge it does
    /// not exceed, the last bin has no upper edge. Empty for other kinds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edges: Vec<f64>,
    /// Share of training leads per bin: numeric, `edges.len() + 1` bins; boolean, no and yes;
    /// categorical, one per kept level (in `levels` order) then the pooled rare labels.
    pub shares: Vec<f64>,
    /// Share of training leads whose value was missing.
    pub missing_share: f64,
    /// Numeric attributes: the training leads and wins in each bin (same bins as `shares`),
    /// for the model picture's closure rate per bin. Empty for other kinds (their encodings
    /// hold the rates per level) and in models trained before it existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rates: Vec<RateStat>,
}

/// Bins of a numeric attribute's training distribution (deciles).
pub const DISTRIBUTION_BINS: usize = 10;

pub const OTHER_LEVEL: &str = "(other)";
/// Pooled labels remembered per attribute; past this, a pooled label reads as unseen.
pub const MAX_POOLED_LABELS: usize = 1000;
pub const MISSING_LEVEL: &str = "(missing)";

impl Attribute {
    pub fn kind(&self) -> Kind {
        match self.encoding {
            Encoding::Numeric { .. } => Kind::Numeric,
            Encoding::Boolean { .. } => Kind::Boolean,
            Encoding::Categorical { .. } => Kind::Categorical,
        }
    }

    /// Number of encoded columns.
    pub fn width(&self) -> usize {
        match &self.encoding {
            Encoding::Numeric {
                missing_indicator,
                shape,
                ..
            } => 1 + *missing_indicator as usize + shape.as_ref().map_or(0, Shape::width),
            Encoding::Boolean {
                missing_indicator, ..
            } => 1 + *missing_indicator as usize,
            Encoding::Categorical { levels, .. } => {
                levels.len()
                    + self.other_slot().is_some() as usize
                    + self.missing_slot().is_some() as usize
            }
        }
    }

    /// Names of the encoded columns, e.g. `Lead Source=google`, `TotalVisits (missing)`.
    pub fn column_names(&self) -> Vec<String> {
        match &self.encoding {
            Encoding::Numeric {
                missing_indicator, ..
            }
            | Encoding::Boolean {
                missing_indicator, ..
            } => {
                let mut names = vec![self.name.clone()];
                if *missing_indicator {
                    names.push(format!("{} {MISSING_LEVEL}", self.name));
                }
                let splines = self.shape().map_or(0, Shape::width);
                names.extend((1..=splines).map(|j| format!("{} (spline {j})", self.name)));
                names
            }
            Encoding::Categorical { levels, .. } => levels
                .iter()
                .map(String::as_str)
                .chain(self.other_slot().map(|_| OTHER_LEVEL))
                .chain(self.missing_slot().map(|_| MISSING_LEVEL))
                .map(|level| format!("{}={level}", self.name))
                .collect(),
        }
    }

    /// The shape of a numeric attribute that has one.
    pub fn shape(&self) -> Option<&Shape> {
        match &self.encoding {
            Encoding::Numeric { shape, .. } => shape.as_ref(),
            _ => None,
        }
    }

    /// Column of the pooled rare levels: only when training saw such leads. Without it, a
    /// label never seen in training sets no column, which is what a zero weight would do.
    pub fn other_slot(&self) -> Option<usize> {
        match &self.encoding {
            Encoding::Categorical {
                levels, other_rate, ..
            } if other_rate.leads > 0 => Some(levels.len()),
            _ => None,
        }
    }

    /// Column of missing values: only when training saw missing values.
    pub fn missing_slot(&self) -> Option<usize> {
        match &self.encoding {
            Encoding::Categorical {
                levels,
                other_rate,
                missing_rate,
                ..
            } if missing_rate.leads > 0 => Some(levels.len() + (other_rate.leads > 0) as usize),
            _ => None,
        }
    }
}

/// All attributes of a model, in encoded-column order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureEncoder {
    /// Cell values read as missing (defaults plus `--na`).
    pub missing_tokens: MissingTokens,
    pub attributes: Vec<Attribute>,
}

impl FeatureEncoder {
    /// Total encoded columns.
    pub fn width(&self) -> usize {
        self.attributes.iter().map(Attribute::width).sum()
    }

    pub fn column_names(&self) -> Vec<String> {
        self.attributes
            .iter()
            .flat_map(Attribute::column_names)
            .collect()
    }

    /// Whether any attribute has a shape (such a model is written as format version 2).
    pub fn has_shapes(&self) -> bool {
        self.attributes.iter().any(|a| a.shape().is_some())
    }

    /// Keeps the shapes of the attributes named in `keep` and drops the others, moving the
    /// offsets up. Returns, per encoded column of the result, its column before (to select the
    /// same columns from a matrix encoded with all shapes).
    pub fn keep_shapes(&mut self, keep: &[String]) -> Vec<usize> {
        let mut kept = Vec::new();
        let mut offset = 0;
        for a in &mut self.attributes {
            let before = a.offset;
            let old_width = a.width();
            if let Encoding::Numeric { shape, .. } = &mut a.encoding
                && !keep.contains(&a.name)
            {
                *shape = None;
            }
            let width = a.width();
            debug_assert!(width <= old_width);
            kept.extend(before..before + width);
            a.offset = offset;
            offset += width;
        }
        kept
    }
}
