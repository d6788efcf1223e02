//! Batch scoring of a file of leads: the call list a rep works from, highest probability first.

use crate::data::{DataError, Table};
use crate::encoder::RawValue;
use crate::model::{Factor, Model, Scored};

pub mod parquet;
use std::io::Write;

/// One scored row of the input.
#[derive(Debug, Clone)]
pub struct ScoredRow {
    pub lead_id: String,
    /// Line of the input file, so a rep can find the row.
    pub line: u64,
    pub scored: Scored,
}

/// The result of scoring a file.
#[derive(Debug, Clone)]
pub struct ScoredTable {
    /// Sorted by probability, highest first (ties keep file order).
    pub rows: Vec<ScoredRow>,
    /// Model attributes absent from the file: imputed as missing for every lead.
    pub absent_columns: Vec<String>,
}

/// Scores every row of `table` as of today (UTC): see [`score_table_at`].
pub fn score_table(
    model: &Model,
    table: &Table,
    id_column: Option<&str>,
    explain: usize,
) -> Result<ScoredTable, DataError> {
    score_table_at(
        model,
        table,
        id_column,
        explain,
        chrono::Utc::now().date_naive(),
    )
}

/// Scores every row of `table`, each lead as old as it is on `today` when the model ages its
/// scores: its age is the `age_days` column if the file has one and the row fills it, else the
/// days from the model's created-date column to `today`. The lead id comes from `id_column`
/// (else the model's id column when the file has it, else the line number).
pub fn score_table_at(
    model: &Model,
    table: &Table,
    id_column: Option<&str>,
    explain: usize,
    today: chrono::NaiveDate,
) -> Result<ScoredTable, DataError> {
    let id = match id_column.or(model.artifact.target.id_column.as_deref()) {
        Some(name) if id_column.is_some() => Some(table.column_index(name)?),
        Some(name) => table.column_index(name).ok(),
        None => None,
    };
    let columns = table.attribute_columns(model.fields())?;
    let absent_columns = model
        .encoder()
        .attributes
        .iter()
        .zip(&columns)
        .filter(|(_, c)| c.is_none())
        .map(|(a, _)| a.name.clone())
        .collect();
    let header = |name: &str| {
        table
            .headers
            .iter()
            .position(|h| crate::names::same(h, name))
    };
    let (age_column, created_column) = match model.created_column() {
        Some(created) => (header(crate::aging::AGE_FIELD), header(created)),
        None => (None, None),
    };
    let mut rows = Vec::with_capacity(table.rows());
    for row in 0..table.rows() {
        let line = table.lines[row];
        let malformed = |message: String| DataError::Malformed {
            path: table.path.clone(),
            line,
            message,
        };
        let age = match model.created_column() {
            Some(created) => model
                .lead_age(
                    age_column.map(|c| table.column(c).get(row)),
                    created_column.map(|c| table.column(c).get(row)),
                    today,
                )
                .map_err(|e| malformed(format!("column {created:?} or age_days: {e}")))?,
            None => Some(0.0),
        };
        let scored = model
            .score_at(
                |a| match columns[a] {
                    Some(c) => RawValue::Text(table.column(c).get(row)),
                    None => RawValue::Missing,
                },
                age,
                explain,
            )
            .map_err(|e| malformed(format!("column {:?}: {}", e.field, e.message)))?;
        let lead_id = match id {
            Some(c) => table.column(c).get(row).to_string(),
            None => format!("line {line}"),
        };
        rows.push(ScoredRow {
            lead_id,
            line,
            scored,
        });
    }
    rows.sort_by(|a, b| b.scored.probability.total_cmp(&a.scored.probability));
    Ok(ScoredTable {
        rows,
        absent_columns,
    })
}

/// The output columns: id, line, probability, score, percentile, grade, the model version that
/// scored them (on every row, so a file that outlives a promotion still says which model it came
/// from), then four columns per factor (field, value, log-odds against an average lead, training
/// closure rate of the value): `explain` slots for factors that raise the probability, then
/// `explain` for those that lower it, so each column means the same thing on every row.
pub fn output_columns(explain: usize) -> Vec<String> {
    let mut header = vec![
        "lead_id".to_string(),
        "line".into(),
        "probability".into(),
        "score".into(),
        "percentile".into(),
        "grade".into(),
        "model_version".into(),
    ];
    for sign in ["up", "down"] {
        for k in 1..=explain {
            for part in FACTOR_PARTS {
                header.push(format!("{sign}_{k}_{part}"));
            }
        }
    }
    header
}

/// The four columns of a factor slot, in order.
pub const FACTOR_PARTS: [&str; 4] = ["field", "value", "log_odds", "closure_rate"];

/// A lead's factor slots in column order: `explain` up, then `explain` down (`None`: empty).
pub fn factor_slots(s: &Scored, explain: usize) -> impl Iterator<Item = Option<&Factor>> {
    let up = s.factors.iter().filter(|f| f.log_odds > 0.0);
    let down = s.factors.iter().filter(|f| f.log_odds < 0.0);
    let up = up.map(Some).chain(std::iter::repeat(None)).take(explain);
    let down = down.map(Some).chain(std::iter::repeat(None)).take(explain);
    up.chain(down)
}

/// The percentile as written: one decimal.
pub fn percentile_text(s: &Scored) -> String {
    format!("{:.1}", s.percentile)
}

/// A factor's log-odds as written: signed, four decimals.
pub fn log_odds_text(f: &Factor) -> String {
    format!("{:+.4}", f.log_odds)
}

/// A factor's closure rate as written: four decimals.
pub fn closure_rate_text(rate: f64) -> String {
    format!("{rate:.4}")
}

/// Writes scored rows as CSV, in the columns of [`output_columns`].
pub fn write_csv(
    rows: &[ScoredRow],
    model_version: &str,
    explain: usize,
    out: impl Write,
) -> Result<(), csv::Error> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(output_columns(explain))?;
    for row in rows {
        let s = &row.scored;
        let mut record = vec![
            row.lead_id.clone(),
            row.line.to_string(),
            // Shortest text that reads back as the same f64.
            s.probability.to_string(),
            s.score.to_string(),
            percentile_text(s),
            s.grade.clone(),
            model_version.to_string(),
        ];
        for factor in factor_slots(s, explain) {
            match factor {
                Some(f) => record.extend([
                    f.field.clone(),
                    f.value.clone(),
                    log_odds_text(f),
                    f.closure_rate.map_or(String::new(), closure_rate_text),
                ]),
                None => record.extend(std::iter::repeat_n(String::new(), 4)),
            }
        }
        writer.write_record(&record)?;
    }
    writer.flush()?;
    Ok(())
}
