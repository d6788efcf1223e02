//! The regularisation search: each candidate L2 strength is fitted on 80% of (a sample of) the
//! training part and judged by log loss on the other 20%, so the choice never sees the
//! holdout the model is measured on.

use super::TrainError;
use super::progress::{self, Progress};
use super::solver::{Fit, Solver};
use crate::metrics::log_loss;
use ndarray::{ArrayView2, s};

/// Training rows the search uses at most: enough to rank the candidates, and each candidate
/// costs a fit.
const MAX_ROWS: usize = 50_000;

/// The chosen L2 strength, every candidate's validation log loss, and the chosen fit (a warm
/// start for the fits that follow).
pub(super) struct AlphaChoice {
    pub alpha: f64,
    pub candidates: Vec<(f64, f64)>,
    pub fit: Fit,
}

/// Tries each of `alphas` in order on the training rows `x` (shuffled, so the first rows are a
/// random sample) with outcomes `y`, each fit warm-started from the one before.
pub(super) fn choose_alpha(
    solver: &Solver,
    x: ArrayView2<'_, f64>,
    y: &[bool],
    alphas: &[f64],
    progress: Progress<'_>,
) -> Result<AlphaChoice, TrainError> {
    if alphas.is_empty() {
        return Err(TrainError::BadAlphas("none given"));
    }
    if !alphas.iter().all(|a| a.is_finite() && *a >= 0.0) {
        return Err(TrainError::BadAlphas("each must be a finite number ≥ 0"));
    }
    let sample = x.nrows().min(MAX_ROWS);
    let n_fit = sample * 4 / 5;
    let (fit_x, val_x) = (x.slice(s![..n_fit, ..]), x.slice(s![n_fit..sample, ..]));
    let (fit_y, val_y) = (&y[..n_fit], &y[n_fit..sample]);
    let mut candidates = Vec::new();
    let mut warm: Option<Fit> = None;
    let mut best: Option<(f64, f64, Fit)> = None;
    for &alpha in alphas {
        let fit = solver.fit(fit_x, fit_y, alpha, warm.as_ref())?;
        let loss = log_loss(&fit.probabilities(val_x).to_vec(), val_y);
        progress::alpha_tried(progress, alpha, loss);
        candidates.push((alpha, loss));
        if best.as_ref().is_none_or(|b| loss < b.1) {
            best = Some((alpha, loss, fit.clone()));
        }
        warm = Some(fit);
    }
    let (alpha, _, fit) = best.ok_or(TrainError::BadAlphas("none given"))?;
    Ok(AlphaChoice {
        alpha,
        candidates,
        fit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// A library caller's empty or unusable list is an error, not a panic.
    #[test]
    fn no_usable_alpha_is_refused() {
        let x = Array2::from_shape_fn((50, 2), |(i, j)| ((i * 7 + j * 3) % 11) as f64);
        let y: Vec<bool> = (0..50).map(|i| i % 3 == 0).collect();
        let solver = Solver {
            max_iterations: 100,
        };
        for (alphas, why) in [
            (&[][..], "none given"),
            (&[1.0, f64::NAN][..], "each must be a finite number ≥ 0"),
            (&[-1.0][..], "each must be a finite number ≥ 0"),
        ] {
            let mut progress = |_: &str| {};
            match choose_alpha(&solver, x.view(), &y, alphas, &mut progress) {
                Err(TrainError::BadAlphas(message)) => assert_eq!(message, why),
                other => panic!("{alphas:?}: {:?}", other.map(|c| c.alpha)),
            }
        }
        let mut progress = |_: &str| {};
        let chosen = choose_alpha(&solver, x.view(), &y, &[10.0], &mut progress)
            .map(|c| c.alpha)
            .ok();
        assert_eq!(chosen, Some(10.0));
    }
}
