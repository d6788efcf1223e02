//! Where every input row went: the count that keeps the invariant "no lead is dropped
//! silently".

use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Backtest,
    Realized,
}

/// Where every input row went. Field names are part of the JSON contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Coverage {
    pub mode: Mode,
    /// Rows of the labelled CSV (backtest) or of the outcomes CSV (realized).
    pub outcome_rows: u64,
    /// Prediction records read (realized only).
    pub prediction_records: Option<u64>,
    /// Distinct leads in the predictions (realized only).
    pub predicted_leads: Option<u64>,
    /// Leads with a prediction and a known outcome: the ones every metric is over.
    pub evaluated: u64,
    /// Leads whose outcome is empty or still open (e.g. `Engaging`), so not evaluated yet.
    pub open: u64,
    /// Predicted leads absent from the outcomes file.
    pub predictions_without_outcome: u64,
    /// Outcome rows whose lead was never predicted.
    pub outcomes_without_prediction: u64,
    /// Leads with an outcome whose every prediction was made after the outcome date.
    pub scored_only_after_outcome: u64,
    /// Predictions not used because the same lead has a later one (still before its outcome).
    pub superseded_predictions: u64,
    /// Predictions of evaluated leads made after their outcome was known: never used.
    pub predictions_after_outcome: u64,
    /// Evaluated leads whose prediction could not be checked against the outcome time (no
    /// `--outcome-date`, an empty cell, or predictions without times): the latest prediction
    /// was used, which may postdate the outcome.
    pub evaluated_without_cutoff: u64,
    /// Evaluated leads without a valid date, left out of the monthly table.
    pub without_month: u64,
    /// Model attributes absent from the backtest file (imputed as missing for every lead).
    pub absent_columns: Vec<String>,
    /// Model versions of the predictions used, with their counts (realized only).
    pub model_versions: BTreeMap<String, u64>,
    /// A horizon model's window (absent without a horizon): how the leads were judged in time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowCounts>,
}

/// How a horizon model's leads were judged in time (see `inputs::window`). Every lead that
/// reached the window is in exactly one of `maturing`, `evaluated` (of [`Coverage`]),
/// `won_without_closed_date` and `without_prediction_time`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WindowCounts {
    /// H, in days.
    pub days: u32,
    /// The day the outcomes are known up to (`--as-of`, else the latest date in the file).
    pub as_of: String,
    /// The outcomes' closed-date column.
    pub closed_column: String,
    /// Predictions whose window (s, s + H] had not passed by `as_of`: counted, never evaluated.
    pub maturing: u64,
    /// Evaluated leads won within their window (the wins).
    pub won_within: u64,
    /// Evaluated leads won after their window: not won within H.
    pub won_after: u64,
    /// Evaluated leads still open when their window ended: not won within H.
    pub open_past: u64,
    /// Evaluated leads lost.
    pub lost: u64,
    /// Won leads without a closed date: their window cannot be judged, so left out.
    pub won_without_closed_date: u64,
    /// Realized: leads whose prediction has no time (a CSV from `leadscore score`), so its
    /// window is unknown: left out.
    pub without_prediction_time: u64,
}

impl Coverage {
    pub(super) fn new(mode: Mode) -> Coverage {
        Coverage {
            mode,
            outcome_rows: 0,
            prediction_records: None,
            predicted_leads: None,
            evaluated: 0,
            open: 0,
            predictions_without_outcome: 0,
            outcomes_without_prediction: 0,
            scored_only_after_outcome: 0,
            superseded_predictions: 0,
            predictions_after_outcome: 0,
            evaluated_without_cutoff: 0,
            without_month: 0,
            absent_columns: Vec::new(),
            model_versions: BTreeMap::new(),
            window: None,
        }
    }

    /// One line: what was read and where it went.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("{} outcome rows", self.outcome_rows)];
        if let Some(n) = self.prediction_records {
            parts.push(format!("{n} predictions"));
        }
        parts.push(format!("{} evaluated", self.evaluated));
        match &self.window {
            Some(w) => parts.push(format!(
                "{} maturing (window of {} days not passed by {})",
                w.maturing, w.days, w.as_of
            )),
            None => parts.push(format!("{} still open", self.open)),
        }
        if self.mode == Mode::Realized {
            parts.push(format!(
                "{} predicted leads without outcome",
                self.predictions_without_outcome
            ));
            parts.push(format!(
                "{} outcomes without prediction",
                self.outcomes_without_prediction
            ));
            parts.push(format!(
                "{} scored only after their outcome",
                self.scored_only_after_outcome
            ));
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_line_names_the_realized_counts_only_in_realized_mode() {
        let mut coverage = Coverage::new(Mode::Backtest);
        coverage.outcome_rows = 12;
        coverage.evaluated = 9;
        coverage.open = 3;
        assert_eq!(
            coverage.describe(),
            "12 outcome rows, 9 evaluated, 3 still open"
        );
        coverage.mode = Mode::Realized;
        coverage.prediction_records = Some(15);
        coverage.predictions_without_outcome = 2;
        coverage.outcomes_without_prediction = 1;
        coverage.scored_only_after_outcome = 4;
        assert_eq!(
            coverage.describe(),
            "12 outcome rows, 15 predictions, 9 evaluated, 3 still open, 2 predicted leads \
             without outcome, 1 outcomes without prediction, 4 scored only after their outcome"
        );
    }
}
