//! Backtest: every row of a labelled CSV is scored with the model and paired with its outcome;
//! rows whose outcome is empty or still open are counted as open. A horizon model's leads are
//! judged in time instead (`window`): the prediction is made on the created date, and
//! an open lead whose window has passed is evaluated as not won. The attribute values of the
//! evaluated rows are counted for per-attribute drift.

use super::grouping::{Grouping, month_label};
use super::outcomes::{Outcomes, outcome_parser, target_column};
use super::window::{Known, Verdict, Window};
use super::{Coverage, InputOptions, Mode};
use crate::data::Table;
use crate::encoder::RawValue;
use crate::evaluate::{DriftCounter, EvaluateError, Labels, Leads};
use crate::model::Model;
use crate::schema::parse_date;
use chrono::NaiveDate;

/// Backtest: scores every row of `table` with `model` and pairs it with the row's outcome.
pub fn backtest(
    model: &Model,
    table: &Table,
    options: &InputOptions,
) -> Result<(Leads, Coverage), EvaluateError> {
    let mut coverage = Coverage::new(Mode::Backtest);
    coverage.outcome_rows = table.rows() as u64;
    let parser = outcome_parser(Some(model), options);
    let target = table.column_index(&target_column(Some(model), options)?)?;
    let attributes = table.attribute_columns(model.fields())?;
    coverage.absent_columns = model
        .encoder()
        .attributes
        .iter()
        .zip(&attributes)
        .filter(|(_, c)| c.is_none())
        .map(|(a, _)| a.name.clone())
        .collect();
    let date = date_column(model, table, options);
    let created = created_column(model, table)?;
    let window = Window::new(Some(model), table, created, options, &parser.missing)?;
    let missing = parser.missing.clone();
    coverage.window = window.as_ref().map(|w| w.counts(table));
    let mut grouping = Grouping::new(table, &options.by, date.as_deref(), parser.missing.clone())?;
    let (segments, month) = grouping.labels();
    let mut leads = Leads {
        grade: Labels::new("grade"),
        segments,
        month,
        ..Leads::default()
    };
    let mut outcomes = Outcomes::new(table, target, parser);
    // Each lead is encoded once: its features score it and its readings count its drift.
    let mut drift = DriftCounter::new(model.encoder());
    let mut features = vec![0.0; model.encoder().width()];
    let mut readings = Vec::with_capacity(attributes.len());
    for row in 0..table.rows() {
        let outcome = outcomes.won(row)?;
        let won = match (&window, created, outcome) {
            (Some(window), Some(created), _) => {
                let made = created_on(table, created, row)?;
                let closed = window.closed_on(table, row, &missing)?;
                let counts = coverage.window.as_mut().expect("set with the window");
                match window.settle(made, known(outcome), closed, counts) {
                    Verdict::Matured { won_within } => won_within,
                    Verdict::Maturing => {
                        // Filed like the evaluated leads: by `--date` when given.
                        let month = grouping.date_of_row(row).flatten().unwrap_or(made);
                        *leads
                            .maturing_per_month
                            .entry(month_label(month))
                            .or_insert(0) += 1;
                        continue;
                    }
                    Verdict::WonUndated => continue,
                }
            }
            (_, _, Some(won)) => won,
            (_, _, None) => {
                coverage.open += 1;
                continue;
            }
        };
        model
            .encoder()
            .encode_row(
                |a| match attributes[a] {
                    Some(c) => RawValue::Text(table.column(c).get(row)),
                    None => RawValue::Missing,
                },
                &mut features,
                &mut readings,
            )
            .map_err(|e| EvaluateError::Line {
                path: table.path.display().to_string(),
                line: table.lines[row],
                message: e.to_string(),
            })?;
        let scored = model.score_encoded(&features, &readings, 0);
        drift.add(&readings);
        leads.probability.push(scored.probability);
        leads.won.push(won);
        leads.grade.push(&scored.grade);
        grouping.push_segments(row, &mut leads);
        let date = grouping.date_of_row(row).flatten();
        grouping.push_month(&mut leads, &mut coverage, date);
    }
    leads.feature_drift = Some(drift.finish());
    coverage.evaluated = leads.len() as u64;
    Ok((leads, coverage))
}

/// The monthly table's date column: `--date`, else the model's created-date column (a horizon
/// model's, else the one it was trained with `--date` on) when the file has it (one named by
/// `--date` must exist; Grouping refuses it otherwise).
fn date_column(model: &Model, table: &Table, options: &InputOptions) -> Option<String> {
    let artifact = &model.artifact;
    match &options.date {
        Some(d) => Some(d.clone()),
        None => artifact
            .horizon
            .as_ref()
            .map(|h| h.created_column.clone())
            .or_else(|| artifact.data.date_column.clone())
            .filter(|d| table.column_index(d).is_ok()),
    }
}

/// A horizon model's created-date column: in a backtest each lead is predicted on its created
/// date, so the file must have it.
fn created_column(model: &Model, table: &Table) -> Result<Option<usize>, EvaluateError> {
    let Some(horizon) = &model.artifact.horizon else {
        return Ok(None);
    };
    table
        .column_index(&horizon.created_column)
        .map(Some)
        .map_err(|_| EvaluateError::Input {
            path: table.path.display().to_string(),
            message: format!(
                "the model predicts closure within {} days of a lead's creation, but there is no \
                 created-date column {:?} to start each lead's window from",
                horizon.days, horizon.created_column
            ),
        })
}

/// The created date of `row`, which a horizon backtest cannot do without.
fn created_on(table: &Table, column: usize, row: usize) -> Result<NaiveDate, EvaluateError> {
    let cell = table.column(column).get(row);
    parse_date(cell).ok_or_else(|| EvaluateError::Line {
        path: table.path.display().to_string(),
        line: table.lines[row],
        message: format!(
            "column {:?}: {cell:?} is not a date; each lead's window starts on its created date",
            table.headers[column]
        ),
    })
}

/// An outcome as the window judges it.
pub(super) fn known(outcome: Option<bool>) -> Known {
    match outcome {
        Some(true) => Known::Won,
        Some(false) => Known::Lost,
        None => Known::Open,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::parse_csv;
    use crate::registry::Registry;
    use std::path::Path;

    /// The model shipped in the repository's `models/` (target `converted`, date `created_at`).
    fn shipped_model() -> Model {
        Registry::new(concat!(env!("CARGO_MANIFEST_DIR"), "/models"))
            .load_or_current(None)
            .unwrap()
    }

    const HEADER: &str = "lead_id,created_at,source,industry,region,company_size,rep,web_visits,\
                          emails_opened,days_since_last_touch,demo_requested,converted\n";

    #[test]
    fn rows_are_scored_open_rows_counted_and_absent_columns_named() {
        let model = shipped_model();
        let csv = format!(
            "{HEADER}L1,2025-01-03,Web,Healthcare,EMEA,Small,Fatima Khan,4,7,0,no,1\n\
             L2,2025-02-10,Referral,Retail,APAC,Large,Ben Ode,9,2,3,yes,0\n\
             L3,2025-02-11,Web,Retail,APAC,Large,Ben Ode,9,2,3,yes,Engaging\n\
             L4,2025-03-01,Web,Retail,APAC,Large,Ben Ode,9,2,3,yes,\n"
        );
        let table = parse_csv(Path::new("holdout.csv"), csv.as_bytes()).unwrap();
        let options = InputOptions {
            by: vec!["rep".into()],
            ..InputOptions::default()
        };
        let (leads, coverage) = backtest(&model, &table, &options).unwrap();
        assert_eq!(coverage.outcome_rows, 4);
        assert_eq!(coverage.evaluated, 2);
        assert_eq!(coverage.open, 2, "Engaging and an empty cell");
        assert_eq!(coverage.absent_columns, ["employees"]);
        assert_eq!(leads.won, [true, false]);
        assert_eq!(leads.segments[0].labels, ["Fatima Khan", "Ben Ode"]);
        let month = leads.month.as_ref().unwrap();
        assert_eq!(month.name, "created_at", "the model's date column");
        assert_eq!(month.labels, ["2025-01", "2025-02"]);
        // Each lead's probability is the model's score of its own row, employees missing.
        let first = [
            "Web",
            "Healthcare",
            "EMEA",
            "Small",
            "Fatima Khan",
            "",
            "4",
            "7",
            "0",
            "no",
        ];
        let expected = model
            .score(
                |a| match first[a] {
                    "" => RawValue::Missing,
                    text => RawValue::Text(text),
                },
                0,
            )
            .unwrap();
        assert_eq!(leads.probability[0], expected.probability);
        assert_eq!(
            leads.grade.labels[leads.grade.codes[0] as usize],
            expected.grade
        );
        assert_ne!(leads.probability[0], leads.probability[1]);
    }

    #[test]
    fn a_bad_cell_is_named_by_file_and_line() {
        let model = shipped_model();
        let csv =
            format!("{HEADER}L1,2025-01-03,Web,Healthcare,EMEA,Small,Fatima Khan,many,7,0,no,1\n");
        let table = parse_csv(Path::new("holdout.csv"), csv.as_bytes()).unwrap();
        let err = backtest(&model, &table, &InputOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("holdout.csv, line 2: "), "{err}");
        assert!(err.contains("web_visits"), "{err}");
        let csv =
            format!("{HEADER}L1,2025-01-03,Web,Healthcare,EMEA,Small,Fatima Khan,4,7,0,no,2\n");
        let table = parse_csv(Path::new("holdout.csv"), csv.as_bytes()).unwrap();
        let err = backtest(&model, &table, &InputOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("holdout.csv, line 2: column \"converted\""),
            "{err}"
        );
    }
}
