//! The evaluator's inputs: which leads are evaluated, with which probability and outcome, and a
//! count of every lead that is not.
//!
//! - **Backtest**: a labelled CSV is scored with a model; rows whose outcome is open or empty are
//!   counted as open.
//! - **Realized**: the predictions the server made (its SQLite log, or a CSV written by
//!   `leadscore score`) are joined by lead id with a CSV of outcomes. A lead scored several times
//!   is evaluated with its **latest prediction made before its outcome became known**
//!   (`--outcome-date`): before that instant when the cell has a time, before that day when it
//!   is a date only. Without a cutoff (no `--outcome-date`, an empty cell, a prediction without
//!   a time) the latest prediction is used and the lead is counted in
//!   `evaluated_without_cutoff`. Earlier predictions of the lead are counted as superseded,
//!   later ones as `predictions_after_outcome`, never used: a prediction made after the outcome
//!   was known would flatter the model.

use super::{EvaluateError, Labels, Leads};
use crate::data::{Table, read_csv};
use crate::encoder::RawValue;
use crate::model::Model;
use crate::schema::{MissingTokens, Outcome, OutcomeParser, normalise_category, parse_date};
use chrono::{DateTime, Datelike, NaiveDate};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Label given to a `--by` cell that is empty or a missing-value token. `--by` values that
/// differ only in case or spacing (`google`, `Google`) form one segment, shown as first spelled.
pub const MISSING_LABEL: &str = "(missing)";

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
}

impl Coverage {
    fn new(mode: Mode) -> Coverage {
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
        }
    }

    /// One line: what was read and where it went.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("{} outcome rows", self.outcome_rows)];
        if let Some(n) = self.prediction_records {
            parts.push(format!("{n} predictions"));
        }
        parts.push(format!("{} evaluated", self.evaluated));
        parts.push(format!("{} still open", self.open));
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
    /// Realized mode: the date each outcome became known.
    pub outcome_date: Option<String>,
}

/// How outcomes are read: the model's rules, amended by the options.
fn outcome_parser(model: Option<&Model>, options: &InputOptions) -> OutcomeParser {
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

fn target_column(model: Option<&Model>, options: &InputOptions) -> Result<String, EvaluateError> {
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

/// The `--by` and date columns of a table, as label columns to fill row by row. Cells repeat
/// (a few reps, a few hundred days), so each distinct cell is normalised or parsed once.
struct Grouping<'t> {
    table: &'t Table,
    columns: Vec<usize>,
    date: Option<usize>,
    missing: MissingTokens,
    /// Per `--by` column: cell text → label code.
    segment_codes: Vec<HashMap<&'t str, u32>>,
    /// Date cell text → its date.
    dates: HashMap<&'t str, Option<NaiveDate>>,
    /// year · 12 + month index → label code of the month.
    month_codes: HashMap<i32, u32>,
}

impl<'t> Grouping<'t> {
    fn new(
        table: &'t Table,
        by: &[String],
        date: Option<&str>,
        missing: MissingTokens,
    ) -> Result<Grouping<'t>, EvaluateError> {
        let columns: Vec<usize> = by
            .iter()
            .map(|c| table.column_index(c))
            .collect::<Result<_, _>>()?;
        let date = date.map(|c| table.column_index(c)).transpose()?;
        Ok(Grouping {
            table,
            segment_codes: vec![HashMap::new(); columns.len()],
            columns,
            date,
            missing,
            dates: HashMap::new(),
            month_codes: HashMap::new(),
        })
    }

    fn labels(&self) -> (Vec<Labels>, Option<Labels>) {
        let segments = self
            .columns
            .iter()
            .map(|&c| Labels::new(self.table.headers[c].clone()))
            .collect();
        let month = self
            .date
            .map(|c| Labels::new(self.table.headers[c].clone()));
        (segments, month)
    }

    fn push_segments(&mut self, row: usize, leads: &mut Leads) {
        for ((labels, &c), cache) in leads
            .segments
            .iter_mut()
            .zip(&self.columns)
            .zip(&mut self.segment_codes)
        {
            let cell = self.table.column(c).get(row);
            if let Some(&code) = cache.get(cell) {
                labels.codes.push(code);
                continue;
            }
            if self.missing.is_missing(cell) {
                labels.push(MISSING_LABEL);
            } else {
                // Spellings that differ only in case or spacing are one segment, as in training.
                labels.push_keyed(&normalise_category(cell), cell);
            }
            cache.insert(cell, *labels.codes.last().expect("just pushed"));
        }
    }

    /// The date of the row's date cell, if the date column is this table's.
    fn date_of_row(&mut self, row: usize) -> Option<Option<NaiveDate>> {
        let cell = self.table.column(self.date?).get(row);
        Some(*self.dates.entry(cell).or_insert_with(|| parse_date(cell)))
    }

    fn push_month(&mut self, leads: &mut Leads, coverage: &mut Coverage, date: Option<NaiveDate>) {
        let Some(labels) = leads.month.as_mut() else {
            return;
        };
        match date {
            Some(d) => {
                let key = d.year() * 12 + d.month0() as i32;
                match self.month_codes.get(&key) {
                    Some(&code) => labels.codes.push(code),
                    None => {
                        labels.push(&format!("{:04}-{:02}", d.year(), d.month()));
                        self.month_codes
                            .insert(key, *labels.codes.last().expect("just pushed"));
                    }
                }
            }
            None => {
                labels.push_none();
                coverage.without_month += 1;
            }
        }
    }
}

/// Outcome cells, each distinct text parsed once.
struct Outcomes<'t> {
    table: &'t Table,
    column: usize,
    parser: OutcomeParser,
    parsed: HashMap<&'t str, Outcome>,
}

impl<'t> Outcomes<'t> {
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
    // The model's date column is used only when the file has it; one named by --date must exist.
    let date = match &options.date {
        Some(d) => Some(d.clone()),
        None => model
            .artifact
            .data
            .date_column
            .clone()
            .filter(|d| table.column_index(d).is_ok()),
    };
    let mut grouping = Grouping::new(table, &options.by, date.as_deref(), parser.missing.clone())?;
    let (segments, month) = grouping.labels();
    let mut leads = Leads {
        grade: Labels::new("grade"),
        segments,
        month,
        ..Leads::default()
    };
    let mut outcomes = Outcomes {
        table,
        column: target,
        parser: parser.clone(),
        parsed: HashMap::new(),
    };
    for row in 0..table.rows() {
        let won = match outcomes.get(row)? {
            Outcome::Won => true,
            Outcome::Lost => false,
            Outcome::Open => {
                coverage.open += 1;
                continue;
            }
        };
        let scored = model
            .score(
                |a| match attributes[a] {
                    Some(c) => RawValue::Text(table.column(c).get(row)),
                    None => RawValue::Missing,
                },
                0,
            )
            .map_err(|e| EvaluateError::Line {
                path: table.path.display().to_string(),
                line: table.lines[row],
                message: e.to_string(),
            })?;
        leads.probability.push(scored.probability);
        leads.won.push(won);
        leads.grade.push(&scored.grade);
        grouping.push_segments(row, &mut leads);
        let date = grouping.date_of_row(row).flatten();
        grouping.push_month(&mut leads, &mut coverage, date);
    }
    coverage.evaluated = leads.len() as u64;
    Ok((leads, coverage))
}

/// One prediction the server (or `leadscore score`) made.
#[derive(Debug, Clone)]
pub struct Prediction {
    pub lead_id: String,
    /// Seconds since the Unix epoch (UTC); `None` in a `leadscore score` CSV.
    pub scored_at: Option<i64>,
    pub model_version: Option<String>,
    pub probability: f64,
    pub grade: String,
}

/// The first bytes of every SQLite 3 database file.
const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";

/// Reads predictions from the server's SQLite log or from a CSV (`lead_id`, `probability`,
/// `grade`, and optionally `scored_at` and `model_version`).
pub fn read_predictions(path: &Path) -> Result<Vec<Prediction>, EvaluateError> {
    let mut head = [0u8; 16];
    let is_sqlite = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok()
        && head == SQLITE_MAGIC;
    if is_sqlite {
        read_sqlite(path)
    } else {
        read_predictions_csv(&read_csv(path)?)
    }
}

/// A time in milliseconds since the epoch (UTC), and whether the text had a time of day:
/// RFC 3339, `YYYY-MM-DD HH:MM[:SS[.fff]]` (read as UTC), or a date alone (midnight).
fn parse_instant(text: &str) -> Option<(i64, bool)> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some((t.timestamp_millis(), true));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S%.f",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Some((t.and_utc().timestamp_millis(), true));
        }
    }
    parse_date(text).map(|d| (start_of_day(d), false))
}

fn parse_time(text: &str) -> Option<i64> {
    parse_instant(text).map(|(t, _)| t)
}

fn check_probability(p: f64) -> Result<f64, String> {
    if p.is_finite() && (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("probability {p} is not between 0 and 1"))
    }
}

fn read_sqlite(path: &Path) -> Result<Vec<Prediction>, EvaluateError> {
    let fail = |message: String| EvaluateError::Input {
        path: path.display().to_string(),
        message,
    };
    let sql = |e: rusqlite::Error| fail(format!("reading the prediction log: {e}"));
    let connection =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(sql)?;
    let mut statement = connection
        .prepare(
            "SELECT rowid, lead_id, scored_at, model_version, probability, grade \
             FROM predictions ORDER BY rowid",
        )
        .map_err(sql)?;
    let mut rows = statement.query([]).map_err(sql)?;
    let mut predictions = Vec::new();
    while let Some(row) = rows.next().map_err(sql)? {
        let rowid: i64 = row.get(0).map_err(sql)?;
        let scored_at: String = row.get(2).map_err(sql)?;
        let at_row = |message: String| fail(format!("predictions row {rowid}: {message}"));
        let probability: f64 = row.get(4).map_err(sql)?;
        predictions.push(Prediction {
            lead_id: row.get(1).map_err(sql)?,
            scored_at: Some(parse_time(&scored_at).ok_or_else(|| {
                at_row(format!("scored_at {scored_at:?} is not an RFC 3339 time"))
            })?),
            model_version: Some(row.get(3).map_err(sql)?),
            probability: check_probability(probability).map_err(at_row)?,
            grade: row.get(5).map_err(sql)?,
        });
    }
    Ok(predictions)
}

fn read_predictions_csv(table: &Table) -> Result<Vec<Prediction>, EvaluateError> {
    let id = table.column_index("lead_id")?;
    let probability = table.column_index("probability")?;
    let grade = table.column_index("grade")?;
    let scored_at = table.column_index("scored_at").ok();
    let version = table.column_index("model_version").ok();
    let at_line = |row: usize, message: String| EvaluateError::Line {
        path: table.path.display().to_string(),
        line: table.lines[row],
        message,
    };
    let mut predictions = Vec::with_capacity(table.rows());
    for row in 0..table.rows() {
        let cell = table.column(probability).get(row);
        let p = crate::schema::parse_number(cell)
            .ok_or_else(|| at_line(row, format!("probability {cell:?} is not a number")))
            .and_then(|p| check_probability(p).map_err(|m| at_line(row, m)))?;
        let scored_at = match scored_at {
            Some(c) => {
                let cell = table.column(c).get(row);
                Some(parse_time(cell).ok_or_else(|| {
                    at_line(row, format!("scored_at {cell:?} is not an RFC 3339 time"))
                })?)
            }
            None => None,
        };
        predictions.push(Prediction {
            lead_id: table.column(id).get(row).to_string(),
            scored_at,
            model_version: version.map(|c| table.column(c).get(row).to_string()),
            probability: p,
            grade: table.column(grade).get(row).to_string(),
        });
    }
    Ok(predictions)
}

/// Midnight (UTC) at the start of `date`, in milliseconds.
fn start_of_day(date: NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp_millis()
}

fn month_of_time(millis: i64) -> Option<NaiveDate> {
    DateTime::from_timestamp_millis(millis).map(|t| t.date_naive())
}

/// Realized: joins `predictions` with the outcomes in `outcomes` by lead id (see the module
/// documentation for which prediction of a lead is used).
pub fn realized(
    predictions: &[Prediction],
    outcomes: &Table,
    model: Option<&Model>,
    options: &InputOptions,
) -> Result<(Leads, Coverage), EvaluateError> {
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
    let outcome_date = options
        .outcome_date
        .as_deref()
        .map(|c| outcomes.column_index(c))
        .transpose()?;
    let mut grouping = Grouping::new(
        outcomes,
        &options.by,
        options.date.as_deref(),
        parser.missing.clone(),
    )?;
    let (segments, month) = grouping.labels();
    let mut outcome_of = Outcomes {
        table: outcomes,
        column: target,
        parser: parser.clone(),
        parsed: HashMap::new(),
    };
    let month = month.or_else(|| {
        predictions
            .iter()
            .any(|p| p.scored_at.is_some())
            .then(|| Labels::new("scored_at"))
    });
    let mut leads = Leads {
        grade: Labels::new("grade"),
        segments,
        month,
        ..Leads::default()
    };

    // Lead id → (most recently listed prediction, line of the outcome that claimed it); the
    // other predictions of a lead are chained through `earlier`.
    let mut by_lead: HashMap<&str, (u32, u64)> = HashMap::with_capacity(predictions.len());
    let mut earlier = vec![u32::MAX; predictions.len()];
    for (i, p) in predictions.iter().enumerate() {
        if let Some(previous) = by_lead.insert(&p.lead_id, (i as u32, 0)) {
            earlier[i] = previous.0;
        }
    }
    coverage.predicted_leads = Some(by_lead.len() as u64);

    for row in 0..outcomes.rows() {
        let line = outcomes.lines[row];
        let lead = outcomes.column(id).get(row);
        let Some(entry) = by_lead.get_mut(lead) else {
            coverage.outcomes_without_prediction += 1;
            continue;
        };
        if entry.1 != 0 {
            return Err(EvaluateError::Line {
                path: outcomes.path.display().to_string(),
                line,
                message: format!(
                    "lead {lead:?} already has an outcome at line {}; keep one row per lead",
                    entry.1
                ),
            });
        }
        entry.1 = line;
        let head = entry.0;
        let won = match outcome_of.get(row)? {
            Outcome::Won => true,
            Outcome::Lost => false,
            Outcome::Open => {
                coverage.open += 1;
                continue;
            }
        };
        let cutoff = match outcome_date {
            Some(c) => {
                let cell = outcomes.column(c).get(row);
                if parser.missing.is_missing(cell) {
                    None
                } else {
                    // A date alone: predictions of that day may already know the outcome, so
                    // only those before the day count.
                    let (at, _) = parse_instant(cell).ok_or_else(|| EvaluateError::Line {
                        path: outcomes.path.display().to_string(),
                        line,
                        message: format!(
                            "column {:?}: {cell:?} is not a date or time (use YYYY-MM-DD or \
                             RFC 3339)",
                            outcomes.headers[c]
                        ),
                    })?;
                    Some(at)
                }
            }
            None => None,
        };
        // The latest prediction made before the cutoff; among equal times the one listed last.
        let (mut chosen, mut candidates, mut all, mut unchecked) = (None::<u32>, 0u64, 0u64, false);
        let mut i = head;
        while i != u32::MAX {
            let p = &predictions[i as usize];
            all += 1;
            let in_time = match (cutoff, p.scored_at) {
                (Some(cut), Some(at)) => at < cut,
                _ => {
                    unchecked = true;
                    true
                }
            };
            if in_time {
                candidates += 1;
                let better = match chosen {
                    None => true,
                    Some(c) => p.scored_at > predictions[c as usize].scored_at,
                };
                if better {
                    chosen = Some(i);
                }
            }
            i = earlier[i as usize];
        }
        let Some(chosen) = chosen else {
            coverage.scored_only_after_outcome += 1;
            continue;
        };
        coverage.superseded_predictions += candidates - 1;
        coverage.predictions_after_outcome += all - candidates;
        coverage.evaluated_without_cutoff += unchecked as u64;
        let p = &predictions[chosen as usize];
        leads.probability.push(p.probability);
        leads.won.push(won);
        leads.grade.push(&p.grade);
        if let Some(v) = &p.model_version {
            *coverage.model_versions.entry(v.clone()).or_insert(0) += 1;
        }
        grouping.push_segments(row, &mut leads);
        let date = match grouping.date_of_row(row) {
            Some(date) => date,
            None => p.scored_at.and_then(month_of_time),
        };
        grouping.push_month(&mut leads, &mut coverage, date);
    }
    coverage.predictions_without_outcome = by_lead.values().filter(|v| v.1 == 0).count() as u64;
    coverage.evaluated = leads.len() as u64;
    Ok((leads, coverage))
}
