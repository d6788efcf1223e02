//! Reading outcome cells: which column holds them, which values mean won, lost or still open
//! (the model's rules amended by the options), and the cell-by-cell parse shared by both modes.

use super::InputOptions;
use crate::data::Table;
use crate::evaluate::EvaluateError;
use crate::model::Model;
use crate::schema::{MissingTokens, Outcome, OutcomeParser};
use std::collections::HashMap;

/// How outcomes are read: the model's rules, amended by the options.
pub(super) fn outcome_parser(model: Option<&Model>, options: &InputOptions) -> OutcomeParser {
    let mut missing = model
        .map(|m| m.encoder().missing_tokens.clone())
        .unwrap_or_default();
    missing.0.extend(MissingTokens::with_extra(&options.na).0);
    missing.0.sort();
    missing.0.dedup();
    let target = model.map(|m| &m.artifact.target);
    let positive = options
        .positive
        .clone()
        .or_else(|| target.and_then(|t| t.positive.clone()));
    let mut open: Vec<String> = target.map(|t| t.open_values.clone()).unwrap_or_default();
    open.extend(options.open.iter().cloned());
    OutcomeParser::new(positive.as_deref(), &open, missing)
}

/// The outcome column's name: `--target`, else the model's.
pub(super) fn target_column(
    model: Option<&Model>,
    options: &InputOptions,
) -> Result<String, EvaluateError> {
    options
        .target
        .clone()
        .or_else(|| model.map(|m| m.artifact.target.column.clone()))
        .ok_or_else(|| EvaluateError::Input {
            path: "--target".into(),
            message: "no model to take the outcome column from; name it with --target COL".into(),
        })
}

/// Reads an outcome cell, or says which values are not outcomes.
fn parse_outcome(
    parser: &OutcomeParser,
    table: &Table,
    column: usize,
    row: usize,
) -> Result<Outcome, EvaluateError> {
    let cell = table.column(column).get(row);
    parser.parse(cell).ok_or_else(|| EvaluateError::Line {
        path: table.path.display().to_string(),
        line: table.lines[row],
        message: format!(
            "column {:?}: {cell:?} is neither won, lost nor open; name the winning value with \
             --positive VALUE, or the values that mean \"still open\" with --open VALUES",
            table.headers[column]
        ),
    })
}

/// Outcome cells, each distinct text parsed once.
pub(super) struct Outcomes<'t> {
    table: &'t Table,
    column: usize,
    parser: OutcomeParser,
    parsed: HashMap<&'t str, Outcome>,
}

impl<'t> Outcomes<'t> {
    pub(super) fn new(table: &'t Table, column: usize, parser: OutcomeParser) -> Outcomes<'t> {
        Outcomes {
            table,
            column,
            parser,
            parsed: HashMap::new(),
        }
    }

    /// `Some(won)` for a known outcome, `None` for a lead still open (or an empty cell).
    pub(super) fn won(&mut self, row: usize) -> Result<Option<bool>, EvaluateError> {
        Ok(match self.get(row)? {
            Outcome::Won => Some(true),
            Outcome::Lost => Some(false),
            Outcome::Open => None,
        })
    }

    fn get(&mut self, row: usize) -> Result<Outcome, EvaluateError> {
        let cell = self.table.column(self.column).get(row);
        if let Some(&outcome) = self.parsed.get(cell) {
            return Ok(outcome);
        }
        let outcome = parse_outcome(&self.parser, self.table, self.column, row)?;
        self.parsed.insert(cell, outcome);
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::parse_csv;
    use std::path::Path;

    fn table(csv: &str) -> Table {
        parse_csv(Path::new("outcomes.csv"), csv.as_bytes()).unwrap()
    }

    #[test]
    fn without_a_model_the_options_say_how_outcomes_are_read() {
        let options = InputOptions {
            positive: Some("Signed".into()),
            open: vec!["On hold".into()],
            na: vec!["Select".into()],
            ..InputOptions::default()
        };
        let t = table(
            "lead_id,status\nA,Signed\nB,signed \nC,Dropped\nD,on hold\nE,Select\nF,\nG,Engaging\n",
        );
        let mut outcomes = Outcomes::new(&t, 1, outcome_parser(None, &options));
        let read: Vec<Option<bool>> = (0..t.rows()).map(|r| outcomes.won(r).unwrap()).collect();
        // With --positive every other known value is a loss; open values, the built-in open
        // stages, --na tokens and empty cells are all still open.
        assert_eq!(
            read,
            [Some(true), Some(true), Some(false), None, None, None, None]
        );
    }

    #[test]
    fn an_unknown_outcome_names_the_file_line_and_column() {
        let t = table("lead_id,status\nA,won\nB,maybe\n");
        let mut outcomes = Outcomes::new(&t, 1, outcome_parser(None, &InputOptions::default()));
        assert_eq!(outcomes.won(0).unwrap(), Some(true));
        let err = outcomes.won(1).unwrap_err().to_string();
        assert!(
            err.starts_with("outcomes.csv, line 3: column \"status\": \"maybe\""),
            "{err}"
        );
        assert!(err.contains("--positive VALUE"), "{err}");
    }

    #[test]
    fn the_outcome_column_comes_from_target_or_is_asked_for() {
        let named = InputOptions {
            target: Some("status".into()),
            ..InputOptions::default()
        };
        assert_eq!(target_column(None, &named).unwrap(), "status");
        let err = target_column(None, &InputOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("--target COL"), "{err}");
    }
}
