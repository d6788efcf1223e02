//! The leakage check: a column that predicts the outcome suspiciously well is usually filled
//! in after the outcome is known (a status, a closing note, a call's duration), and a model
//! trained on it looks excellent on history and fails in service. Training still succeeds; the
//! summary names the column, the rule that caught it, its figures and how to drop it.
//!
//! Three rules, because a leak need not pass an absolute threshold: a call's duration reaches
//! ROC AUC about 0.81 on a telemarketing export, yet is known only after the call.
//! - absolute: the column alone reaches ROC AUC ≥ `--leakage-auc` (0.85);
//! - beats the rest: the column alone ranks better than all the other columns together, and is
//!   strong (alone ≥ [`STRONG_ALONE_AUC`]): honest columns add to each other, a leak does the
//!   work of all of them;
//! - settling value: a value shared by many leads (≥ [`SETTLING_SHARE`] of them and at least
//!   [`SETTLING_LEADS`]) that never or always closed, where the base rate makes that all but
//!   impossible by chance (a duration of 0, a close value of 0, a field filled in only for won
//!   leads).

use crate::encoder::{
    Attribute, Encoding, FeatureEncoder, MISSING_LEVEL, OTHER_LEVEL, RateStat, format_number,
};
use crate::metrics::roc_auc;
use ndarray::{ArrayView1, ArrayView2, s};
use serde::Serialize;
use std::collections::HashMap;

/// Which rule caught a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeakageRule {
    /// Alone, at or above the absolute AUC threshold.
    AbsoluteAuc,
    /// Alone, better than all the other columns together.
    BeatsTheRest,
    /// One of its values settles the outcome.
    SettlingValue,
}

/// A value of a column whose leads never or always closed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SettlingValue {
    pub value: String,
    pub leads: u64,
    pub wins: u64,
}

/// A column that predicts the outcome suspiciously well.
#[derive(Debug, Clone, Serialize)]
pub struct LeakageWarning {
    pub column: String,
    /// The first rule that caught it, in the order absolute, beats the rest, settling value.
    pub rule: LeakageRule,
    /// Single-column ROC AUC over all training rows.
    pub auc: f64,
    /// Single-column ROC AUC over the rows where the column is filled in.
    pub auc_where_present: Option<f64>,
    /// ROC AUC of all the other columns together (an approximation, see [`others_auc`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub others_auc: Option<f64>,
    /// The value that settles the outcome, the most common one when several do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settling: Option<SettlingValue>,
}

impl std::fmt::Display for LeakageWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "probable leakage: column {:?} ", self.column)?;
        match (self.rule, self.others_auc, &self.settling) {
            (LeakageRule::BeatsTheRest, Some(others), _) => write!(
                f,
                "alone ranks the leads better (ROC AUC {:.3}) than all the other columns together \
                 ({others:.3})",
                self.auc
            )?,
            (LeakageRule::SettlingValue, _, Some(v)) => {
                let (never, share) = if v.wins == 0 {
                    ("never", 0.0)
                } else {
                    ("always", 100.0 * v.wins as f64 / v.leads as f64)
                };
                write!(
                    f,
                    "has a value that settles the outcome: the {} leads with {:?} {never} closed \
                     ({} won, {share:.1}%)",
                    v.leads, v.value, v.wins
                )?
            }
            _ => {
                write!(f, "alone predicts the outcome with ROC AUC {:.3}", self.auc)?;
                if let Some(present) = self.auc_where_present {
                    write!(f, " ({present:.3} where it is filled in)")?;
                }
            }
        }
        write!(
            f,
            "; if it is filled in after the outcome is known, drop it with --drop {:?}",
            self.column
        )
    }
}

/// "Beats the rest" only applies to a column this strong alone: below it, one column that
/// outranks a few weak others is ordinary (two columns of marketing data, say).
pub const STRONG_ALONE_AUC: f64 = 0.75;
/// A settling value is shared by at least this share of the leads...
pub const SETTLING_SHARE: f64 = 0.01;
/// ... and at least this many.
pub const SETTLING_LEADS: u64 = 50;
/// ... and never (always) closing would happen by chance, at the base rate, with at most this
/// probability: rules out a value that never closed only because few leads close at all.
const SETTLING_CHANCE: f64 = 1e-6;

/// Training rows the check reads at most: the training rows come first and are shuffled, so
/// the first rows are a random sample, and 200,000 leads pin a single-column AUC down to about
/// ±0.002.
const MAX_ROWS: usize = 200_000;

/// Checks each attribute over (a sample of) the training rows `x` with outcomes `y`; at most one
/// warning per attribute, the first rule that catches it.
pub(super) fn check(
    encoder: &FeatureEncoder,
    x: ArrayView2<'_, f64>,
    y: &[bool],
    threshold: f64,
) -> Vec<LeakageWarning> {
    let rows = x.nrows().min(MAX_ROWS);
    let (x, y) = (x.slice(s![..rows, ..]), &y[..rows]);
    let columns = |a: &Attribute| x.slice(s![.., a.offset..a.offset + a.width()]);
    let evidence: Vec<Vec<f64>> = encoder
        .attributes
        .iter()
        .map(|a| evidence(a, columns(a)))
        .collect();
    let mut warnings = Vec::new();
    for (i, attribute) in encoder.attributes.iter().enumerate() {
        let cols = columns(attribute);
        let (scores, present) = scores(attribute, cols);
        let oriented = |a: Option<f64>| a.map(|a| a.max(1.0 - a));
        let auc = oriented(roc_auc(&scores, y)).unwrap_or(0.5);
        let n_present = present.iter().filter(|&&p| p).count();
        let auc_where_present = if n_present < y.len() && n_present * 10 >= y.len() {
            let (s, w): (Vec<f64>, Vec<bool>) = scores
                .iter()
                .zip(y)
                .zip(&present)
                .filter(|(_, p)| **p)
                .map(|((s, w), _)| (*s, *w))
                .unzip();
            oriented(roc_auc(&s, &w))
        } else {
            None
        };
        let mut warning = LeakageWarning {
            column: attribute.name.clone(),
            rule: LeakageRule::AbsoluteAuc,
            auc,
            auc_where_present,
            others_auc: None,
            settling: None,
        };
        if auc.max(auc_where_present.unwrap_or(0.0)) >= threshold {
            warnings.push(warning);
            continue;
        }
        if auc >= STRONG_ALONE_AUC && encoder.attributes.len() > 1 {
            let others = others_auc(&evidence, i, y);
            if auc > others {
                warning.rule = LeakageRule::BeatsTheRest;
                warning.others_auc = Some(others);
                warnings.push(warning);
                continue;
            }
        }
        if let Some(value) = settling_value(attribute, cols, y) {
            warning.rule = LeakageRule::SettlingValue;
            warning.settling = Some(value);
            warnings.push(warning);
        }
    }
    warnings
}

/// ROC AUC of all the attributes but `except` together, approximated by naive Bayes: each lead's
/// score is the sum over the other attributes of the log-odds of its value's training closure
/// rate. Linear in rows and attributes (a logistic fit per attribute would cost a full
/// training each on a million rows). Collinear columns are counted twice, which can only make
/// the others look stronger: the rule errs towards not warning.
fn others_auc(evidence: &[Vec<f64>], except: usize, y: &[bool]) -> f64 {
    let combined: Vec<f64> = (0..y.len())
        .map(|row| {
            evidence
                .iter()
                .enumerate()
                .filter(|(a, _)| *a != except)
                .map(|(_, e)| e[row])
                .sum()
        })
        .collect();
    roc_auc(&combined, y).unwrap_or(0.5)
}

/// Log-odds of a closure rate, smoothed so that a value that never closed is finite.
fn log_odds(rate: &RateStat) -> f64 {
    let p = (rate.wins as f64 + 0.5) / (rate.leads as f64 + 1.0);
    (p / (1.0 - p)).ln()
}

/// Each lead's log-odds of closing given only this attribute's value: the training closure rate
/// of its category level or yes/no, of its quintile for a number, or of missing.
fn evidence(attribute: &Attribute, cols: ArrayView2<'_, f64>) -> Vec<f64> {
    let value = |r: ArrayView1<'_, f64>| match &attribute.encoding {
        Encoding::Numeric {
            mean,
            scale,
            missing_indicator,
            quintile_edges,
            quintile_rates,
            missing_rate,
            ..
        } => {
            if *missing_indicator && r[1] == 1.0 {
                return log_odds(missing_rate);
            }
            let x = r[0] * scale + mean;
            let bin = quintile_edges.iter().filter(|&&edge| x > edge).count();
            log_odds(&quintile_rates[bin])
        }
        Encoding::Boolean {
            missing_indicator,
            rates,
            missing_rate,
            ..
        } => {
            if *missing_indicator && r[1] == 1.0 {
                return log_odds(missing_rate);
            }
            log_odds(&rates[(r[0] == 1.0) as usize])
        }
        Encoding::Categorical {
            level_rates,
            other_rate,
            missing_rate,
            ..
        } => {
            let hot = r.iter().position(|&v| v == 1.0);
            match hot {
                Some(h) if h < level_rates.len() => log_odds(&level_rates[h]),
                Some(h) if Some(h) == attribute.missing_slot() => log_odds(missing_rate),
                _ => log_odds(other_rate),
            }
        }
    };
    cols.rows().into_iter().map(value).collect()
}

/// The most common value of an attribute whose leads never or always closed, if one is shared
/// by enough leads and the base rate makes that all but impossible by chance.
fn settling_value(
    attribute: &Attribute,
    cols: ArrayView2<'_, f64>,
    y: &[bool],
) -> Option<SettlingValue> {
    // Identical inputs encode to identical columns: group the leads by the one number that
    // tells their encoded columns apart (the hot column of a category, else the value, and
    // missing apart), without allocating per lead.
    let missing_column = match &attribute.encoding {
        Encoding::Numeric {
            missing_indicator: true,
            ..
        }
        | Encoding::Boolean {
            missing_indicator: true,
            ..
        } => Some(1),
        _ => None,
    };
    let key = |r: ArrayView1<'_, f64>| -> (bool, u64) {
        match &attribute.encoding {
            Encoding::Categorical { .. } => {
                let hot = r.iter().position(|&v| v == 1.0);
                (false, hot.map_or(u64::MAX, |h| h as u64))
            }
            _ if missing_column.is_some_and(|m| r[m] == 1.0) => (true, 0),
            _ => (false, r[0].to_bits()),
        }
    };
    let mut groups: HashMap<(bool, u64), (u64, u64, usize)> = HashMap::new();
    for (row, (r, &won)) in cols.rows().into_iter().zip(y).enumerate() {
        let group = groups.entry(key(r)).or_insert((0, 0, row));
        group.0 += 1;
        group.1 += won as u64;
    }
    let n = y.len() as f64;
    let base = y.iter().filter(|&&w| w).count() as f64 / n.max(1.0);
    let enough = SETTLING_LEADS.max((SETTLING_SHARE * n).ceil() as u64);
    let (_, &(leads, wins, row)) = groups
        .iter()
        .filter(|(_, (leads, wins, _))| {
            let chance = if *wins == 0 {
                (1.0 - base).powf(*leads as f64)
            } else if wins == leads {
                base.powf(*leads as f64)
            } else {
                1.0
            };
            *leads >= enough && chance <= SETTLING_CHANCE
        })
        .max_by_key(|(_, (leads, _, row))| (*leads, std::cmp::Reverse(*row)))?;
    Some(SettlingValue {
        value: label(attribute, cols.row(row)),
        leads,
        wins,
    })
}

/// An encoded value as a rep would read it.
fn label(attribute: &Attribute, r: ArrayView1<'_, f64>) -> String {
    match &attribute.encoding {
        Encoding::Numeric {
            mean,
            scale,
            missing_indicator,
            ..
        } => {
            if *missing_indicator && r[1] == 1.0 {
                MISSING_LEVEL.to_string()
            } else {
                // Rounded to the 12th significant digit: undoes the scaling's round-off.
                let x = r[0] * scale + mean;
                format_number(format!("{x:.11e}").parse().unwrap_or(x))
            }
        }
        Encoding::Boolean {
            missing_indicator, ..
        } => {
            if *missing_indicator && r[1] == 1.0 {
                MISSING_LEVEL.to_string()
            } else if r[0] == 1.0 {
                "yes".to_string()
            } else {
                "no".to_string()
            }
        }
        Encoding::Categorical { levels, .. } => match r.iter().position(|&v| v == 1.0) {
            Some(h) if h < levels.len() => levels[h].clone(),
            Some(h) if Some(h) == attribute.missing_slot() => MISSING_LEVEL.to_string(),
            _ => OTHER_LEVEL.to_string(),
        },
    }
}

/// Each lead's single-column score (the training closure rate of its value for categories and
/// flags, the value itself for numbers, either direction), and whether the value was filled in.
fn scores(attribute: &Attribute, cols: ArrayView2<'_, f64>) -> (Vec<f64>, Vec<bool>) {
    match &attribute.encoding {
        Encoding::Numeric {
            missing_indicator, ..
        }
        | Encoding::Boolean {
            missing_indicator, ..
        } => cols
            .rows()
            .into_iter()
            .map(|r| (r[0], !(*missing_indicator && r[1] == 1.0)))
            .unzip(),
        Encoding::Categorical {
            level_rates,
            other_rate,
            missing_rate,
            ..
        } => {
            // Training rows always set one column: rare and missing rows have theirs.
            let mut rates: Vec<f64> = level_rates
                .iter()
                .map(|r| r.rate().unwrap_or(0.0))
                .collect();
            if attribute.other_slot().is_some() {
                rates.push(other_rate.rate().unwrap_or(0.0));
            }
            if attribute.missing_slot().is_some() {
                rates.push(missing_rate.rate().unwrap_or(0.0));
            }
            let missing_slot = attribute.missing_slot();
            cols.rows()
                .into_iter()
                .map(|r| {
                    let hot = r.iter().position(|&v| v == 1.0);
                    (
                        hot.map_or(0.0, |h| rates[h]),
                        hot.is_some() && hot != missing_slot,
                    )
                })
                .unzip()
        }
    }
}
