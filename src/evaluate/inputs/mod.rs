//! The evaluator's inputs: which leads are evaluated, with which probability and outcome, and a
//! count of every lead that is not.
//!
//! - **Backtest** ([`backtest`]): a labelled CSV is scored with a model; rows whose outcome is
//!   open or empty are counted as open.
//! - **Realized**: the predictions the server made are read ([`predictions`]: its SQLite log, or
//!   a CSV written by `leadscore score`), then joined by lead id with a CSV of outcomes
//!   ([`join`]). A lead scored several times is evaluated with its **latest prediction made
//!   before its outcome became known** (`--outcome-date`): before that instant when the cell has
//!   a time, before that day when it is a date only. Without a cutoff (no `--outcome-date`, an
//!   empty cell, a prediction without a time) the latest prediction is used and the lead is
//!   counted in `evaluated_without_cutoff`. Earlier predictions of the lead are counted as
//!   superseded, later ones as `predictions_after_outcome`, never used: a prediction made after
//!   the outcome was known would flatter the model.
//!
//! With a horizon model both modes judge each prediction in time (`window`): evaluated once
//! its window (s, s + H] has passed by the outcomes' as-of date, else counted as maturing.
//! `--funnel` reads stage dates from the same file ([`stages`]).
//!
//! Both modes read outcome cells the same way ([`outcomes`]), file each lead under its `--by`
//! segments and month the same way ([`grouping`]), and count where every row went in a
//! [`Coverage`] ([`coverage`]). Times of predictions and outcomes are compared as instants
//! (`time`).

pub mod backtest;
pub mod coverage;
pub mod grouping;
pub mod join;
pub mod outcomes;
pub mod predictions;
pub mod stages;
mod time;
mod window;

pub use backtest::backtest;
pub use coverage::{Coverage, Mode, WindowCounts};
pub use grouping::MISSING_LABEL;
pub use join::realized;
pub use predictions::{Prediction, read_predictions};
pub use stages::stages_funnel;

/// Column choices shared by both modes.
#[derive(Debug, Clone, Default)]
pub struct InputOptions {
    /// Lead id column of the labelled or outcomes CSV (default: the model's id column, else
    /// `lead_id`).
    pub id: Option<String>,
    /// Outcome column (default: the model's target column).
    pub target: Option<String>,
    /// The outcome value that means won (default: the model's).
    pub positive: Option<String>,
    /// Extra outcome values that mean "still open".
    pub open: Vec<String>,
    /// Extra missing-value tokens (added to the model's).
    pub na: Vec<String>,
    /// Columns to report closure rates by.
    pub by: Vec<String>,
    /// Date column whose month groups the monthly table (default: the model's date column in a
    /// backtest, the prediction time in realized mode).
    pub date: Option<String>,
    /// Realized mode: the date each outcome became known (with a horizon model, default the
    /// closed-date column).
    pub outcome_date: Option<String>,
    /// A horizon model's closed-date column of the outcomes (default: the model's).
    pub closed_at: Option<String>,
    /// The day a horizon model's outcomes are judged at (default: the latest date in the
    /// outcomes file).
    pub as_of: Option<chrono::NaiveDate>,
}
