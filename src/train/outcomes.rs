//! Outcomes: which rows are training rows (won or lost; open ones are set aside) and whether
//! there are enough of each to learn from. An unreadable outcome stops training here, before
//! any work, rather than being guessed.

use super::{TrainConfig, TrainError};
use crate::data::Table;
use crate::schema::{MissingTokens, Outcome, OutcomeParser};
use std::collections::BTreeMap;

/// The rows with a known outcome.
pub(super) struct Outcomes {
    /// Table rows that were won or lost, in file order (open rows are not training rows).
    pub rows: Vec<usize>,
    /// Whether each of `rows` was won.
    pub won: Vec<bool>,
    pub wins: usize,
    pub losses: usize,
}

impl Outcomes {
    /// Reads the `target` column; any value that is neither won, lost nor open is an error
    /// naming the most frequent such values and the first line.
    pub fn parse(
        table: &Table,
        target: usize,
        config: &TrainConfig,
        missing: &MissingTokens,
    ) -> Result<Outcomes, TrainError> {
        let parser = OutcomeParser::new(config.positive.as_deref(), &config.open, missing.clone());
        let mut rows = Vec::with_capacity(table.rows());
        let mut won = Vec::with_capacity(table.rows());
        let mut unknown: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
        let column = table.column(target);
        for row in 0..table.rows() {
            match parser.parse(column.get(row)) {
                Some(Outcome::Won) => {
                    rows.push(row);
                    won.push(true);
                }
                Some(Outcome::Lost) => {
                    rows.push(row);
                    won.push(false);
                }
                Some(Outcome::Open) => {}
                None => {
                    unknown
                        .entry(column.get(row))
                        .or_insert((0, table.lines[row]))
                        .0 += 1;
                }
            }
        }
        if let Some(line) = unknown.values().map(|v| v.1).min() {
            let mut values: Vec<_> = unknown.iter().collect();
            values.sort_by_key(|v| std::cmp::Reverse(v.1.0));
            return Err(TrainError::UnknownOutcome {
                path: table.path.clone(),
                column: config.target.clone(),
                values: values
                    .iter()
                    .take(5)
                    .map(|(v, (n, _))| format!("{v:?} ({n} rows)"))
                    .collect::<Vec<_>>()
                    .join(", "),
                line,
            });
        }
        let wins = won.iter().filter(|&&w| w).count();
        let losses = won.len() - wins;
        Ok(Outcomes {
            rows,
            won,
            wins,
            losses,
        })
    }

    /// Refuses data with fewer than `need` won or lost leads: no sound model comes of it.
    pub fn require(&self, table: &Table, need: usize) -> Result<(), TrainError> {
        if self.wins < need || self.losses < need {
            return Err(TrainError::TooFewOutcomes {
                path: table.path.clone(),
                wins: self.wins,
                losses: self.losses,
                need,
            });
        }
        Ok(())
    }
}
