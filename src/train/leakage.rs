//! The leakage check: a column that predicts the outcome suspiciously well on its own is
//! usually filled in after the outcome is known (a status, a closing note), and a model
//! trained on it looks excellent on history and fails in service. Training still succeeds; the
//! summary names the column and how to drop it.

use crate::encoder::{Attribute, Encoding, FeatureEncoder};
use crate::metrics::roc_auc;
use ndarray::{ArrayView2, s};
use serde::Serialize;

/// A column that predicts the outcome suspiciously well on its own.
#[derive(Debug, Clone, Serialize)]
pub struct LeakageWarning {
    pub column: String,
    /// Single-column ROC AUC over all training rows.
    pub auc: f64,
    /// Single-column ROC AUC over the rows where the column is filled in.
    pub auc_where_present: Option<f64>,
}

impl std::fmt::Display for LeakageWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "probable leakage: column {:?} alone predicts the outcome with ROC AUC {:.3}",
            self.column, self.auc
        )?;
        if let Some(present) = self.auc_where_present {
            write!(f, " ({present:.3} where it is filled in)")?;
        }
        write!(
            f,
            "; if it is filled in after the outcome is known, drop it with --drop {:?}",
            self.column
        )
    }
}

/// Training rows the check reads at most: the training rows come first and are shuffled, so
/// the first rows are a random sample, and 200,000 leads pin a single-column AUC down to about
/// ±0.002.
const MAX_ROWS: usize = 200_000;

/// Single-column ROC AUC of each attribute over (a sample of) the training rows `x` with
/// outcomes `y`; warns about each at or above `threshold`.
pub(super) fn check(
    encoder: &FeatureEncoder,
    x: ArrayView2<'_, f64>,
    y: &[bool],
    threshold: f64,
) -> Vec<LeakageWarning> {
    let rows = x.nrows().min(MAX_ROWS);
    let (x, y) = (x.slice(s![..rows, ..]), &y[..rows]);
    let mut warnings = Vec::new();
    for attribute in &encoder.attributes {
        let cols = x.slice(s![
            ..,
            attribute.offset..attribute.offset + attribute.width()
        ]);
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
        if auc.max(auc_where_present.unwrap_or(0.0)) >= threshold {
            warnings.push(LeakageWarning {
                column: attribute.name.clone(),
                auc,
                auc_where_present,
            });
        }
    }
    warnings
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
