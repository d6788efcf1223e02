//! Scores that age (landmark training): the age terms added to the training matrix, and the
//! choice of the attributes whose effect changes with age (large companies close later, so
//! their chance does not fall with age as a small company's does).
//!
//! The choice is forward selection by validation log loss on the training part (never the
//! holdout): each attribute's interaction with age is tried alone; those that help are added
//! best first while each still lowers the loss, up to [`MAX_INTERACTIONS`]. The validation
//! split is by lead, like the holdout, so a lead's other ages cannot vouch for it.

use super::TrainError;
use super::progress::Progress;
use super::solver::Solver;
use crate::aging::AgeTerms;
use crate::encoder::FeatureEncoder;
use crate::metrics::log_loss;
use ndarray::{Array2, ArrayView2, Axis, ShapeBuilder};

/// Age interactions kept at most: each multiplies an attribute's columns, and a few pace
/// setters carry the effect.
pub(super) const MAX_INTERACTIONS: usize = 3;

/// Landmark rows the selection fits on at most (each candidate costs a fit).
const MAX_ROWS: usize = 60_000;

/// The L2 strength of the selection fits: the middle of the default candidates (the final
/// strength is chosen afterwards with the chosen terms).
const SELECTION_ALPHA: f64 = 1.0;

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

/// The chosen interactions (attribute names) and the validation log loss of every step
/// tried (`"none"`: age alone).
pub(super) struct Selection {
    pub interactions: Vec<String>,
    pub tried: Vec<(String, f64)>,
}

/// Chooses the age interactions on the training part: `x` its encoder matrix, `ages`, `won`
/// and `leads` (table rows, which group a lead's rows) of each row.
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
    // A lead's side and whether it is in the sample follow from a hash of its row, so all its
    // rows go together.
    let stride = x.nrows().div_ceil(MAX_ROWS).max(1) as u64;
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
    // The selection rows, copied once for every candidate below.
    let part = |rows: &[usize]| {
        let sub = x.select(Axis(0), rows);
        let sub_ages: Vec<u32> = rows.iter().map(|&i| ages[i]).collect();
        let sub_won: Vec<bool> = rows.iter().map(|&i| won[i]).collect();
        (sub, sub_ages, sub_won)
    };
    let (fit_x, fit_ages, fy) = part(&fit_rows);
    let (val_x, val_ages, vy) = part(&val_rows);
    let loss_with = |chosen: &[String]| -> Result<f64, TrainError> {
        let terms = AgeTerms::new(encoder, horizon_days, max_age_days, chosen)
            .map_err(TrainError::Solver)?;
        let fx = widen(fit_x.view(), &fit_ages, &terms);
        let vx = widen(val_x.view(), &val_ages, &terms);
        let fit = solver.fit(fx.view(), &fy, SELECTION_ALPHA, None)?;
        Ok(log_loss(&fit.probabilities(vx.view()).to_vec(), &vy))
    };
    let base = loss_with(&[])?;
    let mut tried = vec![("none".to_string(), base)];
    progress(&format!(
        "age interactions: age alone, validation log loss {base:.5}"
    ));
    let mut alone: Vec<(f64, String)> = Vec::new();
    let candidates = if interactions {
        &encoder.attributes[..]
    } else {
        &[]
    };
    for attribute in candidates {
        let loss = loss_with(std::slice::from_ref(&attribute.name))?;
        progress(&format!(
            "age interactions: age × {}, validation log loss {loss:.5}",
            attribute.name
        ));
        tried.push((attribute.name.clone(), loss));
        if loss < base {
            alone.push((loss, attribute.name.clone()));
        }
    }
    alone.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut chosen, mut best) = (Vec::new(), base);
    for (loss, name) in alone {
        if chosen.len() == MAX_INTERACTIONS {
            break;
        }
        let mut with = chosen.clone();
        with.push(name.clone());
        // The first is already measured alone.
        let loss = if chosen.is_empty() {
            loss
        } else {
            let l = loss_with(&with)?;
            tried.push((with.join(" + "), l));
            l
        };
        if loss < best {
            best = loss;
            chosen = with;
        }
    }
    Ok(Selection {
        interactions: chosen,
        tried,
    })
}

/// A 64-bit mix (splitmix64's finaliser): spreads consecutive rows over the sample and sides.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
