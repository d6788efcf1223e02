//! Judging a horizon model in time: a prediction made on day s is about the window
//! (s, s + H]. It is evaluated only when that window has passed by the outcomes' as-of date;
//! until then it is *maturing*, counted and never evaluated (a young lead already lost would
//! otherwise weigh in while its young won neighbours still look open). A lead won after its
//! window counts as not won, and so does a lead still open when its window ended.
//!
//! Days, not instants: a prediction at 15:00 on 1 March is judged on the outcomes dated up to
//! 1 March + H, as training labels a lead created on 1 March. The as-of date is `--as-of`, else
//! the latest date in the outcomes file's closed-date column (and its created-date column when
//! it has one), as `train --horizon` chooses it.

use super::{InputOptions, WindowCounts};
use crate::data::Table;
use crate::evaluate::EvaluateError;
use crate::model::Model;
use crate::schema::{MissingTokens, parse_date};
use chrono::{Days, NaiveDate};

/// The model's horizon applied to one outcomes file.
#[derive(Debug, Clone)]
pub(super) struct Window {
    /// H, in days.
    pub(super) days: u32,
    /// The day the outcomes are known up to.
    pub(super) as_of: NaiveDate,
    /// The closed-date column of the outcomes.
    pub(super) closed: usize,
}

/// What became of one lead's prediction under the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// The window has not passed by the as-of date.
    Maturing,
    /// The window has passed: won within it, or not.
    Matured { won_within: bool },
    /// A won lead without a closed date: whether it was won within the window is unknown.
    WonUndated,
}

/// Why a matured lead was judged not won, for the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Known {
    Won,
    Lost,
    Open,
}

impl Window {
    /// The window of `model`'s horizon over `table`, or `None` for a model without one.
    /// `created` is the created-date column when the table has it (it may set the as-of date).
    pub(super) fn new(
        model: Option<&Model>,
        table: &Table,
        created: Option<usize>,
        options: &InputOptions,
        missing: &MissingTokens,
    ) -> Result<Option<Window>, EvaluateError> {
        let Some(horizon) = model.and_then(|m| m.artifact.horizon.as_ref()) else {
            return Ok(None);
        };
        let name = options
            .closed_at
            .clone()
            .unwrap_or_else(|| horizon.closed_column.clone());
        let closed = table
            .column_index(&name)
            .map_err(|_| EvaluateError::Input {
                path: table.path.display().to_string(),
                message: format!(
                    "the model predicts closure within {} days, so each outcome needs its closed \
                     date, but there is no column {name:?}; name it with --closed-at COL",
                    horizon.days
                ),
            })?;
        let as_of = match options.as_of {
            Some(d) => d,
            None => latest_date(table, [Some(closed), created], missing).ok_or_else(|| {
                EvaluateError::Input {
                    path: table.path.display().to_string(),
                    message: format!(
                        "column {name:?} has no date to judge the outcomes at; give --as-of DATE"
                    ),
                }
            })?,
        };
        Ok(Some(Window {
            days: horizon.days,
            as_of,
            closed,
        }))
    }

    /// The closed date of `row`, refusing a cell that is neither empty nor a date.
    pub(super) fn closed_on(
        &self,
        table: &Table,
        row: usize,
        missing: &MissingTokens,
    ) -> Result<Option<NaiveDate>, EvaluateError> {
        let cell = table.column(self.closed).get(row);
        if missing.is_missing(cell) {
            return Ok(None);
        }
        parse_date(cell)
            .map(Some)
            .ok_or_else(|| EvaluateError::Line {
                path: table.path.display().to_string(),
                line: table.lines[row],
                message: format!(
                    "column {:?}: {cell:?} is not a date (use YYYY-MM-DD)",
                    table.headers[self.closed]
                ),
            })
    }

    /// Empty counts, naming the window.
    pub(super) fn counts(&self, table: &Table) -> WindowCounts {
        WindowCounts {
            days: self.days,
            as_of: self.as_of.to_string(),
            closed_column: table.headers[self.closed].clone(),
            ..WindowCounts::default()
        }
    }

    /// [`Window::judge`], counted in `counts`.
    pub(super) fn settle(
        &self,
        made: NaiveDate,
        known: Known,
        closed: Option<NaiveDate>,
        counts: &mut WindowCounts,
    ) -> Verdict {
        let verdict = self.judge(made, known, closed);
        let counter = match (verdict, known) {
            (Verdict::Maturing, _) => &mut counts.maturing,
            (Verdict::WonUndated, _) => &mut counts.won_without_closed_date,
            (Verdict::Matured { won_within: true }, _) => &mut counts.won_within,
            (Verdict::Matured { .. }, Known::Won) => &mut counts.won_after,
            (Verdict::Matured { .. }, Known::Lost) => &mut counts.lost,
            (Verdict::Matured { .. }, Known::Open) => &mut counts.open_past,
        };
        *counter += 1;
        verdict
    }

    /// The verdict on a prediction made on day `made` for a lead whose outcome is `known`,
    /// closed on `closed`.
    pub(super) fn judge(
        &self,
        made: NaiveDate,
        known: Known,
        closed: Option<NaiveDate>,
    ) -> Verdict {
        if known == Known::Won && closed.is_none() {
            return Verdict::WonUndated;
        }
        let Some(end) = made.checked_add_days(Days::new(self.days.into())) else {
            return Verdict::Maturing;
        };
        if end > self.as_of {
            return Verdict::Maturing;
        }
        let won_within = known == Known::Won && closed.is_some_and(|c| c <= end);
        Verdict::Matured { won_within }
    }
}

/// The latest date in the given columns (empty and unreadable cells skipped).
fn latest_date(
    table: &Table,
    columns: [Option<usize>; 2],
    missing: &MissingTokens,
) -> Option<NaiveDate> {
    columns
        .into_iter()
        .flatten()
        .flat_map(|c| table.column(c).iter())
        .filter(|cell| !missing.is_missing(cell))
        .filter_map(parse_date)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_window_is_judged_only_once_it_has_passed() {
        let window = Window {
            days: 10,
            as_of: day("2025-01-20"),
            closed: 0,
        };
        let judge =
            |made, known, closed: Option<&str>| window.judge(day(made), known, closed.map(day));
        // Ends on the as-of date: matured; a day later: maturing, whatever the outcome.
        assert_eq!(
            judge("2025-01-10", Known::Won, Some("2025-01-20")),
            Verdict::Matured { won_within: true }
        );
        assert_eq!(
            judge("2025-01-11", Known::Won, Some("2025-01-12")),
            Verdict::Maturing
        );
        assert_eq!(judge("2025-01-11", Known::Lost, None), Verdict::Maturing);
        // Won a day after the window: not won within.
        assert_eq!(
            judge("2025-01-01", Known::Won, Some("2025-01-12")),
            Verdict::Matured { won_within: false }
        );
        assert_eq!(
            judge("2025-01-01", Known::Open, None),
            Verdict::Matured { won_within: false }
        );
        assert_eq!(
            judge("2025-01-01", Known::Lost, Some("2025-01-03")),
            Verdict::Matured { won_within: false }
        );
        assert_eq!(judge("2025-01-01", Known::Won, None), Verdict::WonUndated);
    }
}
