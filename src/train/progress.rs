//! What a run says while it works: the progress lines of each stage and their timings. Training
//! on a large export takes minutes, so each stage says when it is done and how long it took;
//! the wording lives here, apart from the steps.

use crate::data::Table;
use crate::metrics::Summary;
use ndarray::Array2;
use serde::Serialize;
use std::time::Instant;

/// Progress lines for long runs (the CLI prints them on stderr).
pub type Progress<'a> = &'a mut dyn FnMut(&str);

/// Wall-clock time of each stage, in seconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub read: f64,
    pub encode: f64,
    pub select_alpha: f64,
    /// Choosing the age interactions and adding the age terms (landmark rows only).
    pub age_terms: f64,
    /// Choosing the numeric shapes (`--shapes auto` only; absent from the JSON otherwise).
    #[serde(skip_serializing_if = "not_run")]
    pub shapes: f64,
    pub holdout_fit: f64,
    pub final_fit: f64,
    pub total: f64,
}

fn not_run(seconds: &f64) -> bool {
    *seconds == 0.0
}

/// Runs one stage, recording its wall-clock seconds in `seconds`.
pub(super) fn timed<T>(seconds: &mut f64, stage: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = stage();
    *seconds = started.elapsed().as_secs_f64();
    out
}

pub(super) fn read(progress: Progress<'_>, table: &Table, seconds: f64) {
    progress(&format!(
        "read {} rows × {} columns in {seconds:.2} s",
        table.rows(),
        table.headers.len(),
    ));
}

pub(super) fn sampled(progress: Progress<'_>, s: &crate::model::Sampling) {
    progress(&format!("sampled: {}", s.describe()));
}

pub(super) fn encoded(progress: Progress<'_>, x: &Array2<f64>, seconds: f64) {
    progress(&format!(
        "encoded {} leads into {} features in {seconds:.2} s",
        x.nrows(),
        x.ncols(),
    ));
}

pub(super) fn alpha_tried(progress: Progress<'_>, alpha: f64, loss: f64) {
    progress(&format!(
        "  alpha {alpha:>7}: validation log loss {loss:.5}"
    ));
}

pub(super) fn holdout_measured(progress: Progress<'_>, metrics: &Summary, seconds: f64) {
    progress(&format!(
        "holdout ({} leads): ROC AUC {}, log loss {:.4}, Brier {:.4} ({seconds:.2} s)",
        metrics.leads,
        metrics.roc_auc.map_or("n/a".into(), |a| format!("{a:.4}")),
        metrics.log_loss,
        metrics.brier,
    ));
}

pub(super) fn refitted(progress: Progress<'_>, rows: usize, seconds: f64) {
    progress(&format!("refit on all {rows} leads in {seconds:.2} s"));
}
