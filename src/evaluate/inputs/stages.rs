//! Reading the funnel's stages from a table: each stage column's date per lead, or (for the
//! outcome column, allowed as the last stage) whether the lead was won.

use super::InputOptions;
use super::grouping::Grouping;
use super::outcomes::{Outcomes, outcome_parser, target_column};
use crate::data::Table;
use crate::evaluate::funnel::{Funnel, Reached, funnel};
use crate::evaluate::{EvaluateError, Leads};
use crate::model::Model;
use crate::schema::parse_date;

/// The funnel of `stages` (column names, in order) over every row of `table`, cut by the
/// `--by` columns of `options`.
pub fn stages_funnel(
    table: &Table,
    stages: &[String],
    model: Option<&Model>,
    options: &InputOptions,
) -> Result<Funnel, EvaluateError> {
    if stages.len() < 2 {
        return Err(EvaluateError::Input {
            path: "--funnel".into(),
            message: format!(
                "{} stage given; name at least two columns in stage order, e.g. \
                 --funnel mql_at,sql_at,won_at",
                stages.len()
            ),
        });
    }
    let parser = outcome_parser(model, options);
    let missing = parser.missing.clone();
    let target = target_column(model, options).ok();
    let mut outcomes = None;
    let mut reached = Vec::with_capacity(stages.len());
    for (i, name) in stages.iter().enumerate() {
        let column = table.column_index(name)?;
        let is_outcome = target
            .as_deref()
            .is_some_and(|t| table.column_index(t).ok() == Some(column));
        if is_outcome && i + 1 < stages.len() {
            return Err(EvaluateError::Input {
                path: "--funnel".into(),
                message: format!("{name:?} is the outcome column: it can only be the last stage"),
            });
        }
        let mut stage = Vec::with_capacity(table.rows());
        if is_outcome {
            let outcomes =
                outcomes.get_or_insert_with(|| Outcomes::new(table, column, parser.clone()));
            for row in 0..table.rows() {
                stage.push(match outcomes.won(row)? {
                    Some(true) => Reached::Undated,
                    _ => Reached::No,
                });
            }
        } else {
            for (row, cell) in table.column(column).iter().enumerate() {
                if missing.is_missing(cell) {
                    stage.push(Reached::No);
                    continue;
                }
                let date = parse_date(cell).ok_or_else(|| EvaluateError::Line {
                    path: table.path.display().to_string(),
                    line: table.lines[row],
                    message: format!(
                        "column {name:?}: {cell:?} is not a date (a funnel stage's column \
                         holds the date the lead reached it, or nothing)"
                    ),
                })?;
                stage.push(Reached::On(date));
            }
        }
        reached.push(stage);
    }
    let mut grouping = Grouping::new(table, &options.by, None, missing)?;
    let (segments, _) = grouping.labels();
    let mut labelled = Leads {
        segments,
        ..Leads::default()
    };
    for row in 0..table.rows() {
        grouping.push_segments(row, &mut labelled);
    }
    Ok(funnel(stages, &reached, &labelled.segments))
}
