//! Scores that age (landmark training): the age terms added to the training matrix, and the
//! choice of the attributes whose effect changes with age (large companies close later, so
//! their chance does not fall with age as a small company's does).
//!
//! The choice is forward selection by validation log loss on the training part (never the
//! holdout, see `selection`): each attribute's interaction with age is tried alone; those that
//! help are added best first while each still lowers the loss, up to [`MAX_INTERACTIONS`]. An
//! attribute with a shape interacts with all its columns (linear, missing, spline).

use super::TrainError;
use super::progress::Progress;
use super::selection::{Rules, Selection, forward, sides, validation_losses};
use super::solver::Solver;
use crate::aging::AgeTerms;
use crate::encoder::FeatureEncoder;
use ndarray::{Array2, ArrayView2, ShapeBuilder};

/// Age interactions kept at most: each multiplies an attribute's columns, and a few pace
/// setters carry the effect.
pub(super) const MAX_INTERACTIONS: usize = 3;

/// The encoder's matrix `x` widened with the age terms of each row (`ages[i]` days old), in
/// column-major order like the encoder's.
pub(super) fn widen(x: ArrayView2<'_, f64>, ages: &[u32], terms: &AgeTerms) -> Array2<f64> {
    let (n, w) = x.dim();
    let extra = terms.width();
    let mut out = Array2::<f64>::zeros((n, w + extra).f());
    out.slice_mut(ndarray::s![.., ..w]).assign(&x);
    let mut row = vec![0.0; w];
    let mut tail = vec![0.0; extra];
    for (i, &age) in ages.iter().enumerate() {
        for (r, v) in row.iter_mut().zip(x.row(i)) {
            *r = *v;
        }
        terms.extend(&row, f64::from(age), &mut tail);
        for (k, &v) in tail.iter().enumerate() {
            out[[i, w + k]] = v;
        }
    }
    out
}

/// Chooses the age interactions on the training part: `x` its encoder matrix, `ages`, `won`
/// and `leads` (table rows, which group a lead's rows) of each row. The chosen are attribute
/// names; the tried steps start with `"none"`: age alone.
#[allow(clippy::too_many_arguments)]
pub(super) fn select(
    solver: &Solver,
    encoder: &FeatureEncoder,
    horizon_days: u32,
    max_age_days: u32,
    x: ArrayView2<'_, f64>,
    ages: &[u32],
    won: &[bool],
    leads: &[usize],
    interactions: bool,
    progress: Progress<'_>,
) -> Result<Selection, TrainError> {
    let (fit, val) = sides(x, won, Some(ages), leads);
    let loss_with = |chosen: &[String]| -> Result<Vec<f64>, TrainError> {
        let terms = AgeTerms::new(encoder, horizon_days, max_age_days, chosen)
            .map_err(TrainError::Solver)?;
        let fx = widen(fit.x.view(), &fit.ages, &terms);
        let vx = widen(val.x.view(), &val.ages, &terms);
        validation_losses(solver, (&fit, fx.view()), (&val, vx.view()))
    };
    let candidates: Vec<String> = if interactions {
        encoder.attributes.iter().map(|a| a.name.clone()).collect()
    } else {
        Vec::new()
    };
    let rules = Rules {
        max_chosen: MAX_INTERACTIONS,
        margin: 0.0,
        standard_errors: 0.0,
        none_line: &|loss| format!("age interactions: age alone, validation log loss {loss:.5}"),
        alone_line: &|name, loss| {
            format!("age interactions: age × {name}, validation log loss {loss:.5}")
        },
    };
    forward(&candidates, &rules, loss_with, progress)
}
