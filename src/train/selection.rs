//! Forward selection by validation log loss on the training part (never the holdout): the
//! machinery the age interactions (`aging`) and the numeric shapes (`shapes`) are chosen by.
//!
//! The validation split is by lead, like the holdout, so a lead's other rows (its other ages)
//! cannot vouch for it, and both sides are a sample of at most [`MAX_ROWS`] rows, since each
//! candidate costs a fit. Each candidate is tried alone; those that help are added best first
//! while each still lowers the loss.

use super::TrainError;
use super::progress::Progress;

/// Rows the selection fits on at most (each candidate costs a fit).
pub(super) const MAX_ROWS: usize = 60_000;

/// The L2 strength of the selection fits: the middle of the default candidates (the final
/// strength is chosen afterwards with the chosen terms).
pub(super) const SELECTION_ALPHA: f64 = 1.0;

/// The sampled rows of the training part (indices into it) on each side of the split, fit
/// first: `leads[i]` is the table row (the lead) of row `i`.
pub(super) fn split_by_lead(leads: &[usize]) -> (Vec<usize>, Vec<usize>) {
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
    /// The progress line of the model without any candidate, given its loss.
    pub none_line: &'a dyn Fn(f64) -> String,
    /// The progress line of a candidate tried alone, given its name and loss.
    pub alone_line: &'a dyn Fn(&str, f64) -> String,
}

/// Forward selection among `candidates`: `loss_with(chosen)` is the validation log loss of the
/// model with the candidates `chosen`.
pub(super) fn forward(
    candidates: &[String],
    rules: &Rules<'_>,
    mut loss_with: impl FnMut(&[String]) -> Result<f64, TrainError>,
    progress: Progress<'_>,
) -> Result<Selection, TrainError> {
    let base = loss_with(&[])?;
    let needed = rules.margin * base;
    let mut tried = vec![("none".to_string(), base)];
    progress(&(rules.none_line)(base));
    let mut alone: Vec<(f64, String)> = Vec::new();
    for name in candidates {
        let loss = loss_with(std::slice::from_ref(name))?;
        progress(&(rules.alone_line)(name, loss));
        tried.push((name.clone(), loss));
        if loss < base - needed {
            alone.push((loss, name.clone()));
        }
    }
    alone.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut chosen, mut best) = (Vec::new(), base);
    for (loss, name) in alone {
        if chosen.len() == rules.max_chosen {
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
        if loss < best - needed {
            best = loss;
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
