//! Reading Parquet: row group by row group, each value written as the text a CSV export of the
//! same data would hold, so inference, encoding and every refusal are the CSV path's.
//!
//! Types: booleans (`true`/`false`), integers, floats (the shortest text that reads back as the
//! same number; NaN is missing), decimals, strings (also dictionary-encoded), dates and
//! timestamps (ISO 8601, which the date rule reads); a null is an empty (missing) cell. Any other
//! type (binary, lists, structs, maps, intervals, times of day) is refused naming the column:
//! no text of it would mean what the column means.
//!
//! Rows are numbered from 1 across the whole file; where messages say "line" of a Parquet file
//! they mean that row. Only one batch of rows (`BATCH_ROWS`) is held as text at once.

use super::{DataError, RowSink, Source, TextColumn};
use arrow_array::{Array, Float32Array, Float64Array};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::fs::File;
use std::io::Read;
use std::path::Path;

/// The first (and last) four bytes of every Parquet file.
pub const MAGIC: &[u8; 4] = b"PAR1";

/// Rows decoded at once: a batch's text is what is held beside the sink's rows.
const BATCH_ROWS: usize = 8192;

/// Streams a Parquet file's rows into `sink`.
pub fn read_into<S: RowSink>(path: &Path, sink: &mut S) -> Result<Source, S::Error> {
    let io_err = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let sha256 = file_sha256(path)?;
    let file = File::open(path).map_err(io_err)?;
    let corrupt = |e: &dyn std::fmt::Display| DataError::Parquet {
        path: path.to_path_buf(),
        message: format!("not a readable Parquet file ({e})"),
    };
    let metadata =
        ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).map_err(|e| corrupt(&e))?;
    let schema = metadata.schema().clone();
    let headers: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| f.name().trim().to_string())
        .collect();
    for field in schema.fields() {
        if !supported(field.data_type()) {
            return Err(DataError::UnsupportedType {
                path: path.to_path_buf(),
                column: field.name().clone(),
                kind: field.data_type().to_string(),
            }
            .into());
        }
    }
    super::refuse_duplicate_headers(path, &headers)?;
    let options = FormatOptions::default().with_null("");
    let mut texts = vec![TextColumn::default(); headers.len()];
    let mut row_number = 0u64;
    let row_groups = metadata.metadata().num_row_groups();
    for group in 0..row_groups {
        let first_row = row_number + 1;
        let at_group = |e: &dyn std::fmt::Display| DataError::Parquet {
            path: path.to_path_buf(),
            message: format!(
                "row group {} of {row_groups} (from row {first_row}): {e}",
                group + 1
            ),
        };
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(
            file.try_clone().map_err(io_err)?,
            metadata.clone(),
        )
        .with_row_groups(vec![group])
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| at_group(&e))?;
        for batch in reader {
            let batch = batch.map_err(|e| at_group(&e))?;
            for (text, array) in texts.iter_mut().zip(batch.columns()) {
                *text = TextColumn::default();
                write_column(array.as_ref(), &options, text).map_err(|e| at_group(&e))?;
            }
            for row in 0..batch.num_rows() {
                if row_number == 0 {
                    sink.start(path, &headers)?;
                }
                row_number += 1;
                sink.row(texts.iter().map(|t| t.get(row)), row_number)?;
            }
        }
    }
    if row_number == 0 {
        return Err(DataError::NoRows {
            path: path.to_path_buf(),
        }
        .into());
    }
    Ok(Source {
        sha256,
        delimiter: b',',
    })
}

/// Whether a column of this type has a text a CSV export would hold (see the module doc).
fn supported(data_type: &DataType) -> bool {
    use DataType::*;
    match data_type {
        Null
        | Boolean
        | Int8
        | Int16
        | Int32
        | Int64
        | UInt8
        | UInt16
        | UInt32
        | UInt64
        | Float16
        | Float32
        | Float64
        | Utf8
        | LargeUtf8
        | Utf8View
        | Date32
        | Date64
        | Timestamp(_, _)
        | Decimal32(_, _)
        | Decimal64(_, _)
        | Decimal128(_, _)
        | Decimal256(_, _) => true,
        Dictionary(_, values) => matches!(**values, Utf8 | LargeUtf8 | Utf8View),
        _ => false,
    }
}

/// Writes one batch's column as text, one cell per row.
fn write_column(
    array: &dyn Array,
    options: &FormatOptions<'_>,
    text: &mut TextColumn,
) -> Result<(), arrow_schema::ArrowError> {
    // Floats as Rust writes them: the shortest text that reads back as the same number, never
    // in exponent form, so a Parquet copy of a CSV encodes exactly as the CSV does.
    if let Some(floats) = array.as_any().downcast_ref::<Float64Array>() {
        push_floats(floats.iter(), f64::is_nan, text);
        return Ok(());
    }
    if let Some(floats) = array.as_any().downcast_ref::<Float32Array>() {
        push_floats(floats.iter(), f32::is_nan, text);
        return Ok(());
    }
    let mut cell = String::new();
    let formatter = ArrayFormatter::try_new(array, options)?;
    for i in 0..array.len() {
        cell.clear();
        write!(cell, "{}", formatter.value(i))
            .map_err(|_| arrow_schema::ArrowError::ComputeError("unwritable value".into()))?;
        text.push(&cell);
    }
    Ok(())
}

/// Floats as cells; null and NaN are missing.
fn push_floats<T: std::fmt::Display + Copy>(
    values: impl Iterator<Item = Option<T>>,
    is_nan: fn(T) -> bool,
    text: &mut TextColumn,
) {
    let mut cell = String::new();
    for value in values {
        cell.clear();
        if let Some(v) = value.filter(|v| !is_nan(*v)) {
            let _ = write!(cell, "{v}");
        }
        text.push(&cell);
    }
}

/// The file's SHA-256, read in chunks (the model records it, as for a CSV).
fn file_sha256(path: &Path) -> Result<String, DataError> {
    let io_err = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io_err)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(e)),
        }
    }
    Ok(format!("{:x}", hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Table, read_table};
    use arrow_array::builder::StringDictionaryBuilder;
    use arrow_array::types::Int32Type;
    use arrow_array::{
        ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Int64Array, RecordBatch,
        TimestampSecondArray,
    };
    use arrow_schema::{Field, Schema};
    use parquet::arrow::ArrowWriter;
    use std::sync::Arc;

    fn write(path: &Path, columns: Vec<(&str, ArrayRef)>) {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(name, a)| Field::new(*name, a.data_type().clone(), true))
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let batch =
            RecordBatch::try_new(schema.clone(), columns.into_iter().map(|c| c.1).collect())
                .unwrap();
        let mut writer = ArrowWriter::try_new(File::create(path).unwrap(), schema, None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }

    fn cells(table: &Table, column: usize) -> Vec<&str> {
        table.column(column).iter().collect()
    }

    #[test]
    fn each_type_reads_as_the_text_a_csv_would_hold() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("typed.bin");
        let mut dictionary = StringDictionaryBuilder::<Int32Type>::new();
        dictionary.append_value("Web");
        dictionary.append_null();
        dictionary.append_value("Web");
        write(
            &path,
            vec![
                (
                    "n",
                    Arc::new(Int64Array::from(vec![Some(3), None, Some(-7)])),
                ),
                (
                    "x",
                    Arc::new(Float64Array::from(vec![
                        Some(0.1),
                        Some(f64::NAN),
                        Some(1e20),
                    ])),
                ),
                (
                    "f32",
                    Arc::new(Float32Array::from(vec![Some(0.1f32), None, Some(2.5)])),
                ),
                (
                    "flag",
                    Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
                ),
                (
                    "price",
                    Arc::new(
                        Decimal128Array::from(vec![Some(1250), None, Some(-5)])
                            .with_precision_and_scale(10, 2)
                            .unwrap(),
                    ),
                ),
                (
                    "created",
                    Arc::new(Date32Array::from(vec![Some(19_783), None, Some(0)])),
                ),
                (
                    "at",
                    Arc::new(TimestampSecondArray::from(vec![
                        Some(1_709_288_400),
                        None,
                        Some(0),
                    ])),
                ),
                ("source", Arc::new(dictionary.finish())),
            ],
        );
        let table = read_table(&path).unwrap();
        assert_eq!(
            table.headers,
            ["n", "x", "f32", "flag", "price", "created", "at", "source"]
        );
        assert_eq!(table.lines, [1, 2, 3]);
        assert_eq!(cells(&table, 0), ["3", "", "-7"]);
        assert_eq!(cells(&table, 1), ["0.1", "", "100000000000000000000"]);
        assert_eq!(cells(&table, 2), ["0.1", "", "2.5"]);
        assert_eq!(cells(&table, 3), ["true", "false", ""]);
        assert_eq!(cells(&table, 4), ["12.50", "", "-0.05"]);
        assert_eq!(cells(&table, 5), ["2024-03-01", "", "1970-01-01"]);
        assert_eq!(
            crate::schema::parse_date(cells(&table, 6)[0]).map(|d| d.to_string()),
            Some("2024-03-01".into())
        );
        assert_eq!(cells(&table, 7), ["Web", "", "Web"]);
        assert_eq!(table.sha256.len(), 64);
    }

    #[test]
    fn an_unsupported_type_is_refused_naming_the_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob.parquet");
        let blob: ArrayRef = Arc::new(BinaryArray::from(vec![Some(b"ab".as_ref())]));
        let id: ArrayRef = Arc::new(Int64Array::from(vec![Some(1)]));
        write(&path, vec![("id", id), ("photo", blob)]);
        let err = read_table(&path).unwrap_err().to_string();
        assert!(
            err.contains("blob.parquet: column \"photo\" is of Parquet type Binary"),
            "{err}"
        );
    }
}
