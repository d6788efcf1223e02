//! Realized mode's join: predictions (already read, see [`super::predictions`]) matched by lead
//! id with a CSV of outcomes. Each outcome row claims its lead's predictions; the one used is
//! the latest made before the outcome became known. Every lead and every prediction not used is
//! counted in [`Coverage`] under its reason: still open, predicted but absent from the outcomes,
//! in the outcomes but never predicted, scored only after its outcome, superseded by a later
//! prediction, made after the outcome.
//!
//! With a horizon model the chosen prediction is judged in time (`window`): the
//! window starts on the day it was made; the closed-date column is the default
//! `--outcome-date`; a lead still open is joined too (with its latest prediction), and is
//! evaluated as not won once that prediction's window has passed.

use super::backtest::known;
use super::grouping::Grouping;
use super::grouping::month_label;
use super::outcomes::{Outcomes, outcome_parser, target_column};
use super::predictions::Prediction;
use super::time::{day_of_time, parse_instant};
use super::window::{Verdict, Window};
use super::{Coverage, InputOptions, Mode};
use crate::data::Table;
use crate::evaluate::{EvaluateError, Labels, Leads};
use crate::model::Model;
use crate::schema::MissingTokens;
use std::collections::HashMap;

/// Marks the end of a lead's chain of predictions in [`PredictionIndex::earlier`].
const NO_PREDICTION: u32 = u32::MAX;

/// Realized: joins `predictions` with the outcomes in `outcomes` by lead id (see the module
/// documentation of [`super`] for which prediction of a lead is used).
pub fn realized(
    predictions: &[Prediction],
    outcomes: &Table,
    model: Option<&Model>,
    options: &InputOptions,
) -> Result<(Leads, Coverage), EvaluateError> {
    let mut join = Join::new(predictions, outcomes, model, options)?;
    for row in 0..outcomes.rows() {
        join.outcome_row(row)?;
    }
    Ok(join.finish())
}

/// Each lead's predictions, most recently listed first, and which outcome row claimed the lead.
struct PredictionIndex<'p> {
    predictions: &'p [Prediction],
    /// Lead id → (its last-listed prediction, line of the outcome row that claimed the lead;
    /// 0 while none has). Lines start at 2 (after the header), so 0 is never a real line.
    by_lead: HashMap<&'p str, (u32, u64)>,
    /// `earlier[i]`: the same lead's prediction listed before prediction `i`, or
    /// [`NO_PREDICTION`]. Chaining through a vector costs one `u32` per prediction where a
    /// `Vec` per lead would cost an allocation per lead.
    earlier: Vec<u32>,
}

/// What an outcome row finds when it looks up its lead.
enum Claim {
    /// The lead was never predicted.
    Unpredicted,
    /// Another outcome row, at this line, already claimed the lead.
    ClaimedAt(u64),
    /// The lead's last-listed prediction; the lead is now claimed.
    Latest(u32),
}

/// Which of a lead's predictions is used, and what became of the others.
struct Choice {
    /// The latest prediction before the cutoff (among equal times the one listed last).
    chosen: Option<u32>,
    /// Predictions before the cutoff (or unchecked): the chosen one and those it supersedes.
    candidates: u64,
    /// All the lead's predictions.
    all: u64,
    /// Some prediction could not be checked against the cutoff (no cutoff, or no time).
    unchecked: bool,
}

impl<'p> PredictionIndex<'p> {
    fn new(predictions: &'p [Prediction]) -> PredictionIndex<'p> {
        let mut by_lead: HashMap<&str, (u32, u64)> = HashMap::with_capacity(predictions.len());
        let mut earlier = vec![NO_PREDICTION; predictions.len()];
        for (i, p) in predictions.iter().enumerate() {
            if let Some(previous) = by_lead.insert(&p.lead_id, (i as u32, 0)) {
                earlier[i] = previous.0;
            }
        }
        PredictionIndex {
            predictions,
            by_lead,
            earlier,
        }
    }

    fn leads(&self) -> u64 {
        self.by_lead.len() as u64
    }

    /// Claims `lead` for the outcome row at `line`.
    fn claim(&mut self, lead: &str, line: u64) -> Claim {
        let Some(entry) = self.by_lead.get_mut(lead) else {
            return Claim::Unpredicted;
        };
        if entry.1 != 0 {
            return Claim::ClaimedAt(entry.1);
        }
        entry.1 = line;
        Claim::Latest(entry.0)
    }

    /// Walks a lead's predictions from `latest` back, choosing the latest made before `cutoff`.
    fn choose(&self, latest: u32, cutoff: Option<i64>) -> Choice {
        let mut choice = Choice {
            chosen: None,
            candidates: 0,
            all: 0,
            unchecked: false,
        };
        let mut i = latest;
        while i != NO_PREDICTION {
            let p = &self.predictions[i as usize];
            choice.all += 1;
            let in_time = match (cutoff, p.scored_at) {
                (Some(cut), Some(at)) => at < cut,
                _ => {
                    choice.unchecked = true;
                    true
                }
            };
            if in_time {
                choice.candidates += 1;
                // Walking backwards, a tie keeps the one listed last.
                let better = match choice.chosen {
                    None => true,
                    Some(c) => p.scored_at > self.predictions[c as usize].scored_at,
                };
                if better {
                    choice.chosen = Some(i);
                }
            }
            i = self.earlier[i as usize];
        }
        choice
    }

    /// Predicted leads that no outcome row claimed.
    fn unclaimed(&self) -> u64 {
        self.by_lead.values().filter(|v| v.1 == 0).count() as u64
    }
}

/// The join in progress: one outcome row at a time.
struct Join<'a> {
    predictions: &'a [Prediction],
    outcomes: &'a Table,
    /// Lead id column of the outcomes.
    id: usize,
    /// `--outcome-date` column of the outcomes.
    outcome_date: Option<usize>,
    /// An outcome date cell holding one of these has no date (no cutoff).
    missing: MissingTokens,
    index: PredictionIndex<'a>,
    outcome_of: Outcomes<'a>,
    /// A horizon model's window; absent, open leads are counted and left out.
    window: Option<Window>,
    grouping: Grouping<'a>,
    leads: Leads,
    coverage: Coverage,
}

impl<'a> Join<'a> {
    fn new(
        predictions: &'a [Prediction],
        outcomes: &'a Table,
        model: Option<&Model>,
        options: &InputOptions,
    ) -> Result<Join<'a>, EvaluateError> {
        let mut coverage = Coverage::new(Mode::Realized);
        coverage.outcome_rows = outcomes.rows() as u64;
        coverage.prediction_records = Some(predictions.len() as u64);
        let parser = outcome_parser(model, options);
        let target = outcomes.column_index(&target_column(model, options)?)?;
        let id_name = options
            .id
            .clone()
            .or_else(|| model.and_then(|m| m.artifact.target.id_column.clone()))
            .unwrap_or_else(|| "lead_id".to_string());
        let id = outcomes.column_index(&id_name)?;
        let missing = parser.missing.clone();
        let created = model
            .and_then(|m| m.artifact.horizon.as_ref())
            .and_then(|h| outcomes.column_index(&h.created_column).ok());
        let window = Window::new(model, outcomes, created, options, &missing)?;
        coverage.window = window.as_ref().map(|w| w.counts(outcomes));
        let outcome_date = match options.outcome_date.as_deref() {
            Some(c) => Some(outcomes.column_index(c)?),
            None => window.as_ref().map(|w| w.closed),
        };
        let grouping = Grouping::new(
            outcomes,
            &options.by,
            options.date.as_deref(),
            missing.clone(),
        )?;
        let leads = empty_leads(&grouping, predictions);
        let index = PredictionIndex::new(predictions);
        coverage.predicted_leads = Some(index.leads());
        Ok(Join {
            predictions,
            outcomes,
            id,
            outcome_date,
            missing,
            index,
            outcome_of: Outcomes::new(outcomes, target, parser),
            window,
            grouping,
            leads,
            coverage,
        })
    }

    /// Joins one outcome row with its lead's predictions, or counts why it cannot be.
    fn outcome_row(&mut self, row: usize) -> Result<(), EvaluateError> {
        let line = self.outcomes.lines[row];
        let lead = self.outcomes.column(self.id).get(row);
        let latest = match self.index.claim(lead, line) {
            Claim::Unpredicted => {
                self.coverage.outcomes_without_prediction += 1;
                return Ok(());
            }
            Claim::ClaimedAt(first) => {
                return Err(EvaluateError::Line {
                    path: self.outcomes.path.display().to_string(),
                    line,
                    message: format!(
                        "lead {lead:?} already has an outcome at line {first}; keep one row per \
                         lead"
                    ),
                });
            }
            Claim::Latest(latest) => latest,
        };
        let outcome = self.outcome_of.won(row)?;
        if outcome.is_none() && self.window.is_none() {
            self.coverage.open += 1;
            return Ok(());
        }
        // An open lead has no outcome a prediction could have known.
        let cutoff = match outcome {
            Some(_) => self.cutoff(row)?,
            None => None,
        };
        let choice = self.index.choose(latest, cutoff);
        let Some(chosen) = choice.chosen else {
            self.coverage.scored_only_after_outcome += 1;
            return Ok(());
        };
        self.coverage.superseded_predictions += choice.candidates - 1;
        self.coverage.predictions_after_outcome += choice.all - choice.candidates;
        let predictions = self.predictions;
        let prediction = &predictions[chosen as usize];
        let won = match self.judge(row, prediction, outcome)? {
            Some(won) => won,
            None => return Ok(()),
        };
        self.coverage.evaluated_without_cutoff += (choice.unchecked && outcome.is_some()) as u64;
        self.push(row, prediction, won);
        Ok(())
    }

    /// The outcome the chosen prediction is evaluated against: as given without a window,
    /// else won within the prediction's window; `None` when it is not evaluated (maturing, or
    /// its window cannot be placed), counted.
    fn judge(
        &mut self,
        row: usize,
        prediction: &Prediction,
        outcome: Option<bool>,
    ) -> Result<Option<bool>, EvaluateError> {
        let Some(window) = &self.window else {
            return Ok(outcome);
        };
        let counts = self.coverage.window.as_mut().expect("set with the window");
        let Some(made) = prediction.scored_at.and_then(day_of_time) else {
            counts.without_prediction_time += 1;
            return Ok(None);
        };
        let closed = window.closed_on(self.outcomes, row, &self.missing)?;
        match window.settle(made, known(outcome), closed, counts) {
            Verdict::Matured { won_within } => Ok(Some(won_within)),
            Verdict::Maturing => {
                let month = self.grouping.date_of_row(row).flatten().unwrap_or(made);
                *self
                    .leads
                    .maturing_per_month
                    .entry(month_label(month))
                    .or_insert(0) += 1;
                Ok(None)
            }
            Verdict::WonUndated => Ok(None),
        }
    }

    /// The instant the row's outcome became known, if `--outcome-date` gives one. A date alone
    /// is its midnight: predictions of that day may already know the outcome, so only those
    /// before the day count.
    fn cutoff(&self, row: usize) -> Result<Option<i64>, EvaluateError> {
        let Some(c) = self.outcome_date else {
            return Ok(None);
        };
        let cell = self.outcomes.column(c).get(row);
        if self.missing.is_missing(cell) {
            return Ok(None);
        }
        let (at, _) = parse_instant(cell).ok_or_else(|| EvaluateError::Line {
            path: self.outcomes.path.display().to_string(),
            line: self.outcomes.lines[row],
            message: format!(
                "column {:?}: {cell:?} is not a date or time (use YYYY-MM-DD or RFC 3339)",
                self.outcomes.headers[c]
            ),
        })?;
        Ok(Some(at))
    }

    /// Adds the evaluated lead: the chosen prediction, the outcome, the row's segments, and
    /// the month of the `--date` cell or else of the prediction.
    fn push(&mut self, row: usize, p: &Prediction, won: bool) {
        self.leads.probability.push(p.probability);
        self.leads.won.push(won);
        self.leads.grade.push(&p.grade);
        if let Some(v) = &p.model_version {
            *self.coverage.model_versions.entry(v.clone()).or_insert(0) += 1;
        }
        self.grouping.push_segments(row, &mut self.leads);
        let date = match self.grouping.date_of_row(row) {
            Some(date) => date,
            None => p.scored_at.and_then(day_of_time),
        };
        self.grouping
            .push_month(&mut self.leads, &mut self.coverage, date);
    }

    fn finish(mut self) -> (Leads, Coverage) {
        self.coverage.predictions_without_outcome = self.index.unclaimed();
        self.coverage.evaluated = self.leads.len() as u64;
        (self.leads, self.coverage)
    }
}

/// The label columns to fill: the `--by` segments, and months of the `--date` column, else of
/// the prediction's time when predictions have times.
fn empty_leads(grouping: &Grouping, predictions: &[Prediction]) -> Leads {
    let (segments, month) = grouping.labels();
    let month = month.or_else(|| {
        predictions
            .iter()
            .any(|p| p.scored_at.is_some())
            .then(|| Labels::new("scored_at"))
    });
    Leads {
        grade: Labels::new("grade"),
        segments,
        month,
        ..Leads::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::parse_csv;
    use crate::evaluate::inputs::time::parse_time;
    use std::path::Path;

    fn prediction(lead: &str, at: &str, version: &str, probability: f64) -> Prediction {
        Prediction {
            lead_id: lead.into(),
            scored_at: (!at.is_empty()).then(|| parse_time(at).unwrap()),
            model_version: (!version.is_empty()).then(|| version.into()),
            probability,
            grade: "B".into(),
        }
    }

    fn outcomes(csv: &str) -> Table {
        parse_csv(Path::new("outcomes.csv"), csv.as_bytes()).unwrap()
    }

    fn options(outcome_date: Option<&str>, by: &[&str]) -> InputOptions {
        InputOptions {
            target: Some("status".into()),
            outcome_date: outcome_date.map(Into::into),
            by: by.iter().map(|b| b.to_string()).collect(),
            ..InputOptions::default()
        }
    }

    fn labels(labels: &Labels) -> Vec<&str> {
        labels
            .codes
            .iter()
            .map(|&c| labels.labels[c as usize].as_str())
            .collect()
    }

    #[test]
    fn every_outcome_row_and_every_predicted_lead_is_counted() {
        // Predictions without times, as in a `leadscore score` CSV.
        let predictions = [
            prediction("A", "", "", 0.2),
            prediction("B", "", "", 0.5),
            prediction("A", "", "", 0.4), // A re-scored: 0.2 is superseded
            prediction("C", "", "", 0.3), // C is still open
            prediction("D", "", "", 0.6), // D has no outcome row
            prediction("E", "", "", 0.7), // E's outcome cell is empty: open
        ];
        let table = outcomes(
            "lead_id,status,rep\nA,won,Ana\nB,lost,\nC,Engaging,Ben\nF,won,Ana\nE,,Ben\n\
             G,lost,Ben\n",
        );
        let (leads, c) = realized(&predictions, &table, None, &options(None, &["rep"])).unwrap();
        assert_eq!(leads.probability, [0.4, 0.5]);
        assert_eq!(leads.won, [true, false]);
        assert_eq!(labels(&leads.segments[0]), ["Ana", "(missing)"]);
        assert!(leads.month.is_none(), "no --date and no prediction times");
        assert_eq!(c.outcome_rows, 6);
        assert_eq!(c.prediction_records, Some(6));
        assert_eq!(c.predicted_leads, Some(5), "A B C D E");
        assert_eq!(c.evaluated, 2, "A B");
        assert_eq!(c.open, 2, "C E");
        assert_eq!(c.predictions_without_outcome, 1, "D");
        assert_eq!(c.outcomes_without_prediction, 2, "F G");
        assert_eq!(c.scored_only_after_outcome, 0);
        assert_eq!(c.superseded_predictions, 1, "A's first");
        assert_eq!(c.predictions_after_outcome, 0);
        assert_eq!(
            c.evaluated_without_cutoff, 2,
            "no --outcome-date: A B unchecked"
        );
        assert!(c.model_versions.is_empty());
        // Every outcome row and every predicted lead is somewhere.
        assert_eq!(
            c.evaluated + c.open + c.outcomes_without_prediction + c.scored_only_after_outcome,
            c.outcome_rows
        );
        assert_eq!(
            c.evaluated + c.open + c.scored_only_after_outcome + c.predictions_without_outcome,
            c.predicted_leads.unwrap()
        );
    }

    #[test]
    fn the_latest_prediction_before_the_outcome_date_is_used() {
        let predictions = [
            prediction("A", "2025-03-01T09:00:00Z", "v1", 0.1),
            prediction("A", "2025-03-02T09:00:00Z", "v1", 0.2),
            // Same time as the one before, listed later: it wins the tie.
            prediction("A", "2025-03-02T09:00:00Z", "v1", 0.3),
            // After A closed on 2025-03-04: never used.
            prediction("A", "2025-03-05T00:00:00Z", "v2", 0.9),
            // On the day B closed: may know the outcome, so B is scored only after it.
            prediction("B", "2025-03-04T10:00:00Z", "v2", 0.5),
            // One second before C's outcome time: used.
            prediction("C", "2025-03-04T10:00:00Z", "v2", 0.6),
            // D's outcome date is empty: its latest prediction is used, unchecked.
            prediction("D", "2025-02-27T08:00:00Z", "v2", 0.7),
        ];
        let table = outcomes(
            "lead_id,status,closed_at\nA,won,2025-03-04\nB,won,2025-03-04\n\
             C,lost,2025-03-04T10:00:01Z\nD,lost,\n",
        );
        let (leads, c) =
            realized(&predictions, &table, None, &options(Some("closed_at"), &[])).unwrap();
        assert_eq!(leads.probability, [0.3, 0.6, 0.7]);
        assert_eq!(leads.won, [true, false, false]);
        // Months come from the prediction's time when there is no --date column.
        let month = leads.month.as_ref().unwrap();
        assert_eq!(month.name, "scored_at");
        assert_eq!(labels(month), ["2025-03", "2025-03", "2025-02"]);
        assert_eq!(c.evaluated, 3, "A C D");
        assert_eq!(c.scored_only_after_outcome, 1, "B");
        assert_eq!(c.superseded_predictions, 2, "A's 0.1 and 0.2");
        assert_eq!(c.predictions_after_outcome, 1, "A's 0.9");
        assert_eq!(c.evaluated_without_cutoff, 1, "D");
        assert_eq!(c.predictions_without_outcome, 0);
        assert_eq!(c.outcomes_without_prediction, 0);
        assert_eq!(
            c.model_versions.into_iter().collect::<Vec<_>>(),
            [("v1".to_string(), 1), ("v2".to_string(), 2)]
        );
    }

    #[test]
    fn months_come_from_the_date_column_when_one_is_named() {
        let predictions = [
            prediction("A", "2025-03-01T09:00:00Z", "v1", 0.1),
            prediction("B", "2025-03-01T09:00:00Z", "v1", 0.2),
        ];
        let table = outcomes("lead_id,status,created\nA,won,2024-11-30\nB,lost,unknown\n");
        let options = InputOptions {
            date: Some("created".into()),
            ..options(None, &[])
        };
        let (leads, c) = realized(&predictions, &table, None, &options).unwrap();
        let month = leads.month.as_ref().unwrap();
        assert_eq!(month.name, "created");
        assert_eq!(month.codes, [0, Labels::NONE]);
        assert_eq!(month.labels, ["2024-11"]);
        assert_eq!(c.without_month, 1, "B's date is not a date");
    }

    #[test]
    fn a_lead_with_two_outcome_rows_is_refused_naming_both_lines() {
        let predictions = [prediction("A", "", "", 0.2)];
        let table = outcomes("lead_id,status\nA,won\nB,lost\nA,lost\n");
        let err = realized(&predictions, &table, None, &options(None, &[]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "outcomes.csv, line 4: lead \"A\" already has an outcome at line 2; keep one row \
             per lead"
        );
    }

    #[test]
    fn bad_outcome_dates_and_missing_columns_are_named() {
        let predictions = [prediction("A", "2025-03-01T09:00:00Z", "v1", 0.2)];
        let table = outcomes("lead_id,status,closed_at\nA,won,last week\n");
        let err = realized(&predictions, &table, None, &options(Some("closed_at"), &[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("outcomes.csv, line 2: column \"closed_at\": \"last week\""),
            "{err}"
        );
        // The id column defaults to lead_id; another is named with --id.
        let table = outcomes("Prospect ID,status\nA,won\n");
        assert!(realized(&predictions, &table, None, &options(None, &[])).is_err());
        let options = InputOptions {
            id: Some("Prospect ID".into()),
            ..options(None, &[])
        };
        let (leads, _) = realized(&predictions, &table, None, &options).unwrap();
        assert_eq!(leads.probability, [0.2]);
    }
}
