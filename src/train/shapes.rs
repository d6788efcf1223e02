//! The choice of the numeric attributes that keep a shape (`train --shapes auto`): the encoder
//! was fitted with a shape on every numeric attribute that can bend; each shape is tried alone
//! against the all-linear model, then the helpful ones are added best first (forward
//! selection by validation log loss on the training part, see `selection`). A shape is kept
//! only when it lowers the validation log loss by more than [`MARGIN`] of the linear model's
//! and by more than [`STANDARD_ERRORS`] standard errors of the row-by-row difference, so a
//! model is never worse than the linear one beyond noise, however few the training leads.

use super::TrainError;
use super::progress::Progress;
use super::selection::{Rules, Selection, Side, forward, sides, validation_losses};
use super::solver::Solver;
use crate::aging::AgeTerms;
use crate::encoder::FeatureEncoder;
use ndarray::{Array2, ArrayView2, Axis, ShapeBuilder};

/// The share of the linear model's validation log loss a shape must save to be kept (0.1%):
/// above the noise of spline columns that fit nothing, well below what a real bend saves.
pub const MARGIN: f64 = 0.001;

/// How many standard errors of the row-by-row difference in validation loss a shape must save
/// too: on pure-noise numbers the margin alone kept a shape on about half of 100-lead files and
/// a third of 1,000-lead ones (a 20% validation side is small, and four spline columns fit
/// noise), while a real bend saves many standard errors.
pub const STANDARD_ERRORS: f64 = 2.0;

/// With landmark rows, the selection fits include the age alone (`t`, `t²`), as the age
/// interaction search's baseline does.
pub(super) struct Ages<'a> {
    pub ages: &'a [u32],
    pub terms: &'a AgeTerms,
}

/// Chooses the shapes on the training part: `x` its matrix encoded with every shape, `won`
/// and `leads` (table rows) of each row. The chosen are attribute names; the tried steps start
/// with `"none"`: every attribute linear.
pub(super) fn select(
    solver: &Solver,
    encoder: &FeatureEncoder,
    x: ArrayView2<'_, f64>,
    ages: Option<Ages<'_>>,
    won: &[bool],
    leads: &[usize],
    progress: Progress<'_>,
) -> Result<Selection, TrainError> {
    let candidates: Vec<String> = encoder
        .attributes
        .iter()
        .filter(|a| a.shape().is_some())
        .map(|a| a.name.clone())
        .collect();
    if candidates.is_empty() {
        return Ok(Selection {
            chosen: Vec::new(),
            tried: Vec::new(),
        });
    }
    let (fit, val) = sides(x, won, ages.as_ref().map(|a| a.ages), leads);
    let loss_with = |chosen: &[String]| -> Result<Vec<f64>, TrainError> {
        let columns = encoder.clone().keep_shapes(chosen);
        let with_ages = |side: &Side| {
            let m = side.x.select(Axis(1), &columns);
            match &ages {
                Some(a) => super::aging::widen(m.view(), &side.ages, a.terms),
                None => m,
            }
        };
        validation_losses(
            solver,
            (&fit, with_ages(&fit).view()),
            (&val, with_ages(&val).view()),
        )
    };
    let rules = Rules {
        max_chosen: usize::MAX,
        margin: MARGIN,
        standard_errors: STANDARD_ERRORS,
        none_line: &|loss| format!("shapes: all numbers linear, validation log loss {loss:.5}"),
        alone_line: &|name, loss| format!("shapes: {name} shaped, validation log loss {loss:.5}"),
    };
    forward(&candidates, &rules, loss_with, progress)
}

/// Keeps the shapes `chosen` in `encoder` and the matching columns of `x` (encoded with every
/// shape, column-major), in place: the matrix is the largest allocation of a run.
pub(super) fn keep(encoder: &mut FeatureEncoder, chosen: &[String], x: Array2<f64>) -> Array2<f64> {
    let columns = encoder.keep_shapes(chosen);
    if columns.len() == x.ncols() {
        return x;
    }
    let n = x.nrows();
    if !x.t().is_standard_layout() {
        return x.select(Axis(1), &columns);
    }
    let (mut data, offset) = x.into_raw_vec_and_offset();
    // An owned matrix starts its data at element [0, 0] unless it was sliced in place.
    data.drain(..offset.unwrap_or(0));
    // Columns are contiguous and kept in order, so each moves left (or stays).
    for (new, &old) in columns.iter().enumerate() {
        if new != old {
            data.copy_within(old * n..(old + 1) * n, new * n);
        }
    }
    data.truncate(columns.len() * n);
    Array2::from_shape_vec((n, columns.len()).f(), data).expect("n rows × kept columns")
}

/// The record of a selection for the artifact: which attributes kept a shape, and every step
/// tried with its validation log loss.
pub(super) fn record(selection: Selection) -> crate::model::ShapeChoice {
    crate::model::ShapeChoice {
        shaped: selection.chosen,
        selection: selection.tried,
        margin: MARGIN,
    }
}
