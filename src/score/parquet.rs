//! Scored rows as Parquet: the CSV output's columns, typed (text, unsigned integers, floats;
//! an empty factor slot is null), holding the same values the CSV writes (the percentile to one
//! decimal, factor log-odds and closure rates to four), so either file reads back the same.

use super::{
    FACTOR_PARTS, ScoredRow, closure_rate_text, factor_slots, log_odds_text, output_columns,
    percentile_text,
};
use arrow_array::builder::{Float64Builder, StringBuilder, UInt32Builder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use std::io::Write;
use std::sync::Arc;

/// Rows per record batch written (each becomes part of a row group).
const BATCH_ROWS: usize = 65_536;

/// Writes scored rows as Parquet (snappy-compressed, readable by every Parquet reader).
pub fn write_parquet(
    rows: &[ScoredRow],
    model_version: &str,
    explain: usize,
    out: impl Write + Send,
) -> Result<(), parquet::errors::ParquetError> {
    let schema = Arc::new(schema(explain));
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(out, schema.clone(), Some(properties))?;
    for chunk in rows.chunks(BATCH_ROWS) {
        writer.write(&batch(&schema, chunk, model_version, explain)?)?;
    }
    writer.close()?;
    Ok(())
}

/// The columns of [`output_columns`], typed.
fn schema(explain: usize) -> Schema {
    let fields: Vec<Field> = output_columns(explain)
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            let (data_type, nullable) = match i {
                0 | 5 | 6 => (DataType::Utf8, false),
                1 => (DataType::UInt64, false),
                2 | 4 => (DataType::Float64, false),
                3 => (DataType::UInt32, false),
                _ => match (i - 7) % FACTOR_PARTS.len() {
                    0 | 1 => (DataType::Utf8, true),
                    _ => (DataType::Float64, true),
                },
            };
            Field::new(name, data_type, nullable)
        })
        .collect();
    Schema::new(fields)
}

/// One batch of rows as columns.
fn batch(
    schema: &Arc<Schema>,
    rows: &[ScoredRow],
    model_version: &str,
    explain: usize,
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let mut lead_id = StringBuilder::new();
    let mut line = UInt64Builder::new();
    let mut probability = Float64Builder::new();
    let mut score = UInt32Builder::new();
    let mut percentile = Float64Builder::new();
    let mut grade = StringBuilder::new();
    let mut version = StringBuilder::new();
    let slots = 2 * explain;
    let mut field: Vec<StringBuilder> = (0..slots).map(|_| StringBuilder::new()).collect();
    let mut value: Vec<StringBuilder> = (0..slots).map(|_| StringBuilder::new()).collect();
    let mut log_odds: Vec<Float64Builder> = (0..slots).map(|_| Float64Builder::new()).collect();
    let mut rate: Vec<Float64Builder> = (0..slots).map(|_| Float64Builder::new()).collect();
    // The CSV's rounded texts, read back: the two outputs hold the same numbers.
    let rounded = |text: String| text.parse::<f64>().unwrap_or(f64::NAN);
    for row in rows {
        let s = &row.scored;
        lead_id.append_value(&row.lead_id);
        line.append_value(row.line);
        probability.append_value(s.probability);
        score.append_value(s.score);
        percentile.append_value(rounded(percentile_text(s)));
        grade.append_value(&s.grade);
        version.append_value(model_version);
        for (k, factor) in factor_slots(s, explain).enumerate() {
            match factor {
                Some(f) => {
                    field[k].append_value(&f.field);
                    value[k].append_value(&f.value);
                    log_odds[k].append_value(rounded(log_odds_text(f)));
                    rate[k].append_option(f.closure_rate.map(|r| rounded(closure_rate_text(r))));
                }
                None => {
                    field[k].append_null();
                    value[k].append_null();
                    log_odds[k].append_null();
                    rate[k].append_null();
                }
            }
        }
    }
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(lead_id.finish()),
        Arc::new(line.finish()),
        Arc::new(probability.finish()),
        Arc::new(score.finish()),
        Arc::new(percentile.finish()),
        Arc::new(grade.finish()),
        Arc::new(version.finish()),
    ];
    for k in 0..slots {
        columns.push(Arc::new(field[k].finish()));
        columns.push(Arc::new(value[k].finish()));
        columns.push(Arc::new(log_odds[k].finish()));
        columns.push(Arc::new(rate[k].finish()));
    }
    RecordBatch::try_new(schema.clone(), columns)
}
