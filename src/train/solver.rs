//! The linfa-logistic wrapper: the one place that calls linfa's fitting API (an architecture
//! invariant). linfa-logistic needs care to be trusted, and every fit of a run goes through
//! here so none can skip it: its "positive" class is the more frequent one, so fits are
//! oriented to P(won) explicitly; its stopping rule is on the summed gradient, so the tolerance
//! scales with the row count; it stops silently at its iteration limit, so convergence is
//! checked here; and later fits start from an earlier one (warm starts).

use super::TrainError;
use crate::model::sigmoid;
use linfa::DatasetBase;
use linfa::traits::Fit as _;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, ArrayView1, ArrayView2, s};

/// linfa-logistic with the settings and checks it needs to be trusted.
pub(super) struct Solver {
    /// Iterations before linfa-logistic gives up (silently; see [`Fit::converged`]).
    pub max_iterations: u64,
}

/// A fitted logistic regression oriented so that positive weights raise P(won).
#[derive(Debug, Clone)]
pub(super) struct Fit {
    pub weights: Array1<f64>,
    pub intercept: f64,
    /// Norm of the objective's gradient at the fit, computed here rather than trusted.
    pub gradient_norm: f64,
    /// The tolerance the fit was asked for (scaled by the row count).
    pub tolerance: f64,
    pub converged: bool,
}

impl Fit {
    pub fn probabilities(&self, x: ArrayView2<'_, f64>) -> Array1<f64> {
        linear(x, self.weights.view(), self.intercept).mapv(sigmoid)
    }

    /// A warning for the summary when the fit stopped short of the tolerance.
    pub fn convergence_warning(&self, what: &str, max_iterations: u64) -> Option<String> {
        (!self.converged).then(|| {
            format!(
                "{what}: the solver stopped (iteration limit {max_iterations} or no further \
                 progress) with gradient norm {:.3e}, above the tolerance {:.3e}; raise \
                 --max-iterations, or look for extreme values or columns that duplicate each \
                 other",
                self.gradient_norm, self.tolerance
            )
        })
    }
}

impl Solver {
    /// Fits `P(won | x)`, optionally warm-started. The gradient tolerance scales with the row
    /// count, because linfa-logistic's loss is a sum over rows, not a mean: `1e-4 × rows` on the
    /// gradient's Euclidean norm is at least as strict as scikit-learn's default stopping rule
    /// (`tol = 1e-4` on the largest component of the mean gradient).
    pub fn fit(
        &self,
        x: ArrayView2<'_, f64>,
        won: &[bool],
        alpha: f64,
        warm: Option<&Fit>,
    ) -> Result<Fit, TrainError> {
        let n = x.nrows() as f64;
        let tolerance = 1e-4 * n;
        // linfa-logistic labels the more frequent class positive (ties: the first row's).
        let won_is_positive = {
            let wins = won.iter().filter(|&&w| w).count();
            let losses = won.len() - wins;
            wins > losses || (wins == losses && won.first() == Some(&true))
        };
        let sign = if won_is_positive { 1.0 } else { -1.0 };
        let mut params = LogisticRegression::default()
            .alpha(alpha)
            .max_iterations(self.max_iterations)
            .gradient_tolerance(tolerance);
        if let Some(w) = warm {
            let mut init = Array1::zeros(x.ncols() + 1);
            init.slice_mut(s![..x.ncols()]).assign(&(&w.weights * sign));
            init[x.ncols()] = w.intercept * sign;
            params = params.initial_params(init);
        }
        let targets = Array1::from_iter(won.iter().copied());
        let dataset = DatasetBase::new(x, targets);
        let fitted = params
            .fit(&dataset)
            .map_err(|e| TrainError::Solver(e.to_string()))?;
        if fitted.labels().pos.class != won_is_positive {
            return Err(TrainError::Solver(
                "linfa-logistic chose an unexpected positive class".into(),
            ));
        }
        let weights = fitted.params() * sign;
        let intercept = fitted.intercept() * sign;
        let gradient_norm = gradient_norm(x, won, alpha, weights.view(), intercept);
        Ok(Fit {
            weights,
            intercept,
            gradient_norm,
            tolerance,
            // linfa-logistic stops silently at its iteration limit: check the gradient here.
            converged: gradient_norm <= tolerance * 1.000_001,
        })
    }
}

/// `x·w + b`, added up column by column: the training matrix is column-major, and ndarray's
/// `x.dot(&w)` takes one dot product per row, which is strided there.
fn linear(x: ArrayView2<'_, f64>, weights: ArrayView1<'_, f64>, intercept: f64) -> Array1<f64> {
    let mut z = Array1::from_elem(x.nrows(), intercept);
    for (column, &w) in x.columns().into_iter().zip(weights) {
        z.scaled_add(w, &column);
    }
    z
}

/// Norm of the gradient of Σ log-loss + α/2 ‖w‖² (the objective linfa-logistic minimises).
fn gradient_norm(
    x: ArrayView2<'_, f64>,
    won: &[bool],
    alpha: f64,
    weights: ArrayView1<'_, f64>,
    intercept: f64,
) -> f64 {
    let mut residual = linear(x, weights, intercept);
    for (r, &w) in residual.iter_mut().zip(won) {
        *r = sigmoid(*r) - w as u8 as f64;
    }
    let grad_w = x.t().dot(&residual) + &weights * alpha;
    let grad_b = residual.sum();
    (grad_w.dot(&grad_w) + grad_b * grad_b).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn gradient_is_zero_only_at_the_optimum() {
        // One feature, symmetric data: the optimum has intercept 0.
        let x = Array2::from_shape_vec((4, 1), vec![-1.0, -1.0, 1.0, 1.0]).unwrap();
        let won = [false, true, true, false];
        let g = gradient_norm(x.view(), &won, 1.0, Array1::zeros(1).view(), 0.0);
        assert!(g < 1e-12);
        let g = gradient_norm(x.view(), &won, 1.0, Array1::zeros(1).view(), 1.0);
        assert!(g > 0.1);
    }

    /// A column-major matrix with dense columns and a mostly-zero one, like the encoder's.
    fn column_major_sample(n: usize) -> (Array2<f64>, Vec<bool>) {
        use ndarray::ShapeBuilder;
        let x = Array2::from_shape_fn((n, 3).f(), |(i, j)| match j {
            0 => ((i * 37) % 101) as f64 / 50.0 - 1.0,
            1 => ((i * 53) % 89) as f64 / 30.0 - 1.5,
            _ => f64::from(i % 7 == 0),
        });
        let won = (0..n)
            .map(|i| (i * 7919) % 13 < 4 + (i % 7 == 0) as usize * 5)
            .collect();
        (x, won)
    }

    #[test]
    fn linear_adds_up_columns_like_a_matrix_product() {
        let (x, _) = column_major_sample(50);
        let w = ndarray::array![0.5, -1.25, 2.0];
        let expected = x.dot(&w) + 0.75;
        let got = linear(x.view(), w.view(), 0.75);
        for (a, b) in got.iter().zip(&expected) {
            assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} vs {b}");
        }
    }

    /// The vendored linfa-logistic (vendor/linfa-logistic/PATCH.md) reaches the optimum found
    /// independently here by Newton's method with plain loops (to 1e-7: L-BFGS stops when the
    /// summed loss no longer changes in double precision).
    #[test]
    fn the_patched_fit_reaches_the_newton_optimum() {
        let (x, won) = column_major_sample(3000);
        let alpha = 2.0;
        let fitted = LogisticRegression::default()
            .alpha(alpha)
            .max_iterations(1000)
            .gradient_tolerance(1e-10)
            .fit(&DatasetBase::new(
                x.view(),
                Array1::from_iter(won.iter().copied()),
            ))
            .unwrap();
        // Newton's method on Σ log(1 + exp(-s z)) + α/2 ‖w‖², s = ±1, for linfa's positive class.
        let positive = fitted.labels().pos.class;
        let (n, d) = x.dim();
        let mut beta = vec![0.0; d + 1]; // weights, then the intercept (not penalised)
        for _ in 0..30 {
            let mut grad = vec![0.0; d + 1];
            let mut hess = vec![vec![0.0; d + 1]; d + 1];
            for i in 0..n {
                let row: Vec<f64> = (0..d).map(|j| x[(i, j)]).chain([1.0]).collect();
                let z: f64 = row.iter().zip(&beta).map(|(a, b)| a * b).sum();
                let p = sigmoid(z);
                let t = f64::from(u8::from(won[i] == positive));
                for ((g, h), &ra) in grad.iter_mut().zip(&mut hess).zip(&row) {
                    *g += (p - t) * ra;
                    for (h, &rb) in h.iter_mut().zip(&row) {
                        *h += p * (1.0 - p) * ra * rb;
                    }
                }
            }
            for a in 0..d {
                grad[a] += alpha * beta[a];
                hess[a][a] += alpha;
            }
            // Solve hess · step = grad by Gaussian elimination (small, well-conditioned).
            for c in 0..=d {
                let pivot = hess[c].clone();
                for r in c + 1..=d {
                    let f = hess[r][c] / pivot[c];
                    for (h, p) in hess[r].iter_mut().zip(&pivot).skip(c) {
                        *h -= f * p;
                    }
                    grad[r] -= f * grad[c];
                }
            }
            for c in (0..=d).rev() {
                let s =
                    (grad[c] - (c + 1..=d).map(|k| hess[c][k] * grad[k]).sum::<f64>()) / hess[c][c];
                grad[c] = s;
            }
            for (b, s) in beta.iter_mut().zip(&grad) {
                *b -= s;
            }
        }
        let got: Vec<f64> = fitted
            .params()
            .iter()
            .copied()
            .chain([fitted.intercept()])
            .collect();
        for (g, b) in got.iter().zip(&beta) {
            assert!((g - b).abs() <= 1e-7, "{got:?} vs {beta:?}");
        }
    }
}
