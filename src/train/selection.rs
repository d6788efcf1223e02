//! Forward selection by validation log loss on the training part (never the holdout): the
//! machinery the age interactions (`aging`) and the numeric shapes (`shapes`) are chosen by.
//!
//! The validation split is by lead, like the holdout, so a lead's other rows (its other ages)
//! cannot vouch for it, and both sides are a sample of at most [`MAX_ROWS`] rows, since each
//! candidate costs a fit. Each candidate is tried alone; those that help are added best first
//! while each still lowers the loss.

use super::TrainError;
use super::progress::Progress;
use super::solver::Solver;
use crate::metrics::row_log_loss;
use ndarray::{Array2, ArrayView2, Axis};

/// Rows the selection fits on at most (each candidate costs a fit).
const MAX_ROWS: usize = 60_000;

/// The L2 strength of the selection fits: the middle of the default candidates (the final
/// strength is chosen afterwards with the chosen terms).
const SELECTION_ALPHA: f64 = 1.0;

/// One side of the validation split, copied once for every candidate: its rows of the
/// training matrix, their outcomes and, with landmark rows, their ages (else empty).
pub(super) struct Side {
    pub x: Array2<f64>,
    pub won: Vec<bool>,
    pub ages: Vec<u32>,
}

/// The fit and validation sides of the training part: `x` its matrix, `won`, `ages` (with
/// landmark rows) and `leads` (table rows, which group a lead's rows) of each row.
pub(super) fn sides(
    x: ArrayView2<'_, f64>,
    won: &[bool],
    ages: Option<&[u32]>,
    leads: &[usize],
) -> (Side, Side) {
    let (fit_rows, val_rows) = split_by_lead(leads);
    let side = |rows: &[usize]| Side {
        x: x.select(Axis(0), rows),
        won: rows.iter().map(|&i| won[i]).collect(),
        ages: ages.map_or_else(Vec::new, |a| rows.iter().map(|&i| a[i]).collect()),
    };
    (side(&fit_rows), side(&val_rows))
}

/// The validation log loss, row by row, of a model fitted on `fit_x` (the fit side with a
/// candidate's columns) and scored on `val_x` (the validation side likewise).
pub(super) fn validation_losses(
    solver: &Solver,
    (fit, fit_x): (&Side, ArrayView2<'_, f64>),
    (val, val_x): (&Side, ArrayView2<'_, f64>),
) -> Result<Vec<f64>, TrainError> {
    let model = solver.fit(fit_x, &fit.won, SELECTION_ALPHA, None)?;
    let p = model.probabilities(val_x);
    Ok(p.iter()
        .zip(&val.won)
        .map(|(&p, &w)| row_log_loss(p, w))
        .collect())
}

/// The sampled rows of the training part (indices into it) on each side of the split, fit
/// first: `leads[i]` is the table row (the lead) of row `i`.
fn split_by_lead(leads: &[usize]) -> (Vec<usize>, Vec<usize>) {
    // A lead's side and whether it is in the sample follow from a hash of its row, so all its
    // rows go together.
    let stride = leads.len().div_ceil(MAX_ROWS).max(1) as u64;
    let (mut fit_rows, mut val_rows) = (Vec::new(), Vec::new());
    for (i, &lead) in leads.iter().enumerate() {
        let h = mix(lead as u64);
        if !h.is_multiple_of(stride) {
            continue;
        }
        if (h / stride).is_multiple_of(5) {
            val_rows.push(i);
        } else {
            fit_rows.push(i);
        }
    }
    (fit_rows, val_rows)
}

/// The chosen candidates and the validation log loss of every step tried (`"none"` first: the
/// model without any).
pub(super) struct Selection {
    pub chosen: Vec<String>,
    pub tried: Vec<(String, f64)>,
}

/// How a forward selection reports and when it keeps a candidate.
pub(super) struct Rules<'a> {
    /// At most this many candidates are kept.
    pub max_chosen: usize,
    /// A candidate is kept only when it lowers the validation log loss by more than this share
    /// of the loss without any (0: any decrease).
    pub margin: f64,
    /// ... and by more than this many standard errors of the row-by-row difference in loss (0:
    /// no such test). On a small validation side a useless candidate often lowers the loss by
    /// more than any fixed share of it, by chance; the standard error shrinks as that side grows.
    pub standard_errors: f64,
    /// The progress line of the model without any candidate, given its loss.
    pub none_line: &'a dyn Fn(f64) -> String,
    /// The progress line of a candidate tried alone, given its name and loss.
    pub alone_line: &'a dyn Fn(&str, f64) -> String,
}

/// The validation log loss of a model: the mean of its per-row losses, summed in the order
/// [`crate::metrics::log_loss`] sums them, so the number is the same.
fn mean(losses: &[f64]) -> f64 {
    losses.iter().sum::<f64>() / losses.len().max(1) as f64
}

/// The standard error of the mean row-by-row difference between two models' losses (infinite
/// with fewer than 2 rows: nothing can be told apart).
fn standard_error(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len();
    if n < 2 {
        return f64::INFINITY;
    }
    let d = a.iter().zip(b).map(|(x, y)| x - y);
    let m = d.clone().sum::<f64>() / n as f64;
    let variance = d.map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1) as f64;
    (variance / n as f64).sqrt()
}

/// Forward selection among `candidates`: `losses_with(chosen)` is the validation log loss,
/// row by row, of the model with the candidates `chosen`.
pub(super) fn forward(
    candidates: &[String],
    rules: &Rules<'_>,
    mut losses_with: impl FnMut(&[String]) -> Result<Vec<f64>, TrainError>,
    progress: Progress<'_>,
) -> Result<Selection, TrainError> {
    let base = losses_with(&[])?;
    let needed = rules.margin * mean(&base);
    // Whether `with` beats `than` by the margin and beyond the noise of the difference.
    let beats = |with: &[f64], than: &[f64]| {
        let noise = if rules.standard_errors > 0.0 {
            rules.standard_errors * standard_error(than, with)
        } else {
            0.0
        };
        mean(with) < mean(than) - needed.max(noise)
    };
    let mut tried = vec![("none".to_string(), mean(&base))];
    progress(&(rules.none_line)(mean(&base)));
    let mut alone: Vec<(f64, String, Vec<f64>)> = Vec::new();
    for name in candidates {
        let losses = losses_with(std::slice::from_ref(name))?;
        let loss = mean(&losses);
        progress(&(rules.alone_line)(name, loss));
        tried.push((name.clone(), loss));
        if beats(&losses, &base) {
            alone.push((loss, name.clone(), losses));
        }
    }
    alone.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut chosen, mut best) = (Vec::new(), base);
    for (_, name, losses) in alone {
        if chosen.len() == rules.max_chosen {
            break;
        }
        let mut with = chosen.clone();
        with.push(name.clone());
        // The first is already measured alone.
        let losses = if chosen.is_empty() {
            losses
        } else {
            let l = losses_with(&with)?;
            tried.push((with.join(" + "), mean(&l)));
            l
        };
        if beats(&losses, &best) {
            best = losses;
            chosen = with;
        }
    }
    Ok(Selection { chosen, tried })
}

/// A 64-bit mix (splitmix64's finaliser): spreads consecutive rows over the sample and sides.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a selection over `a` and `b` whose per-row validation losses are given: the model
    /// without any loses 1.0 on every row.
    fn choose(a: Vec<f64>, b: Vec<f64>, standard_errors: f64) -> Vec<String> {
        let rules = Rules {
            max_chosen: usize::MAX,
            margin: 0.001,
            standard_errors,
            none_line: &|_| String::new(),
            alone_line: &|_, _| String::new(),
        };
        let n = a.len();
        let candidates = ["a".to_string(), "b".to_string()];
        let losses = |chosen: &[String]| {
            Ok(match chosen {
                [] => vec![1.0; n],
                [x] if x == "a" => a.clone(),
                [x] if x == "b" => b.clone(),
                _ => a.iter().zip(&b).map(|(x, y)| x.min(*y)).collect(),
            })
        };
        forward(&candidates, &rules, losses, &mut |_| {})
            .unwrap()
            .chosen
    }

    #[test]
    fn a_candidate_must_save_the_margin_and_beyond_the_noise_of_the_rows() {
        // `a` saves 0.01 on every row; `b` saves 0.01 on average, by chance: +1 and -1 around
        // it, row after row (a standard error of about 0.14 on 50 rows).
        let a = vec![0.99; 50];
        let b: Vec<f64> = (0..50)
            .map(|i| if i % 2 == 0 { 0.99 - 1.0 } else { 0.99 + 1.0 })
            .collect();
        assert_eq!(choose(a.clone(), b.clone(), 2.0), ["a"]);
        // Without the noise test, the margin alone keeps both.
        let mut both = choose(a.clone(), b, 0.0);
        both.sort();
        assert_eq!(both, ["a", "b"]);
        // A saving below the margin is never enough, however steady.
        assert!(choose(vec![0.9995; 50], vec![1.0; 50], 0.0).is_empty());
        // One row cannot tell a saving from chance.
        assert!(choose(vec![0.5], vec![0.5], 2.0).is_empty());
    }
}
