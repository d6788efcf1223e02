//! Parquet in and out: a Parquet copy of a CSV trains the same model, scores written as Parquet
//! read back as the CSV's, and broken or incomplete Parquet files are refused clearly.

use crate::common::{leadscore, leadscore_at, stderr};
use arrow_array::builder::{Date32Builder, Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Writes a Parquet copy of a CSV, each column typed as a warehouse would hold it (integers,
/// floats, dates, else text; an empty cell is null), in row groups of `group_rows`, leaving out
/// the columns named in `skip`.
pub(crate) fn parquet_copy(csv: &Path, out: &Path, group_rows: usize, skip: &[&str]) {
    let mut reader = csv::Reader::from_path(csv).unwrap();
    let headers: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let cells = |c: usize| records.iter().map(move |r| &r[c]);
    let date = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (c, name) in headers.iter().enumerate() {
        if skip.contains(&name.as_str()) {
            continue;
        }
        let filled = || cells(c).filter(|s| !s.is_empty());
        let (data_type, array): (DataType, ArrayRef) = if filled().all(|s| s.parse::<i64>().is_ok())
        {
            let mut b = Int64Builder::new();
            cells(c).for_each(|s| b.append_option(s.parse().ok()));
            (DataType::Int64, Arc::new(b.finish()))
        } else if filled().all(|s| s.parse::<f64>().is_ok()) {
            let mut b = Float64Builder::new();
            cells(c).for_each(|s| b.append_option(s.parse().ok()));
            (DataType::Float64, Arc::new(b.finish()))
        } else if filled().all(|s| date(s).is_some()) {
            let mut b = Date32Builder::new();
            cells(c).for_each(|s| {
                b.append_option(date(s).map(|d| (d - epoch).num_days() as i32));
            });
            (DataType::Date32, Arc::new(b.finish()))
        } else {
            let mut b = StringBuilder::new();
            cells(c).for_each(|s| b.append_option((!s.is_empty()).then_some(s)));
            (DataType::Utf8, Arc::new(b.finish()))
        };
        fields.push(Field::new(name, data_type, true));
        columns.push(array);
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
    let properties = WriterProperties::builder()
        .set_max_row_group_size(group_rows)
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let file = std::fs::File::create(out).unwrap();
    let mut writer = ArrowWriter::try_new(file, schema, Some(properties)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

fn sample(dir: &Path, rows: usize) -> PathBuf {
    let data = dir.join("leads.csv");
    let out = leadscore(&[
        "sample",
        "--rows",
        &rows.to_string(),
        "--out",
        data.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    data
}

/// Trains on `data` into `models`; returns the stored model.json as JSON.
fn train(data: &Path, models: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "train",
        "--data",
        data.to_str().unwrap(),
        "--target",
        "converted",
        "--id",
        "lead_id",
        "--models",
        models.to_str().unwrap(),
        "--promote",
        "always",
        "--json",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let out = leadscore_at("2030-01-01T00:00:00Z", &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let path = summary["path"].as_str().unwrap();
    let path = Path::new(path);
    let file = if path.is_dir() {
        path.join("model.json")
    } else {
        path.to_path_buf()
    };
    serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap()
}

#[test]
fn a_parquet_copy_trains_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let csv = sample(dir.path(), 3000);
    // Named .csv on purpose: Parquet is recognised by its bytes, not its name.
    let parquet = dir.path().join("leads-copy.csv");
    parquet_copy(&csv, &parquet, 700, &[]);
    assert_eq!(&std::fs::read(&parquet).unwrap()[..4], b"PAR1");
    let from_csv = train(&csv, &dir.path().join("a"), &["--date", "created_at"]);
    let from_parquet = train(&parquet, &dir.path().join("b"), &["--date", "created_at"]);
    // What must differ: the file's name and hash, and the version named after the hash.
    let strip = |mut m: serde_json::Value| {
        assert_eq!(m["data"]["rows_read"], 3000);
        for (part, key) in [("data", "file"), ("data", "sha256")] {
            m[part][key] = serde_json::Value::Null;
        }
        m["model_version"] = serde_json::Value::Null;
        m
    };
    let (a, b) = (strip(from_csv), strip(from_parquet));
    assert_eq!(
        serde_json::to_string_pretty(&a).unwrap(),
        serde_json::to_string_pretty(&b).unwrap()
    );
}

#[test]
fn scores_written_as_parquet_read_back_as_the_csv() {
    let dir = tempfile::tempdir().unwrap();
    let csv = sample(dir.path(), 1500);
    let models = dir.path().join("models");
    train(&csv, &models, &[]);
    let parquet = dir.path().join("leads.parquet");
    parquet_copy(&csv, &parquet, 400, &[]);
    let score = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "score",
            "--data",
            parquet.to_str().unwrap(),
            "--models",
            models.to_str().unwrap(),
            "--explain",
            "2",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let run = leadscore(&args);
        assert!(run.status.success(), "{}", stderr(&run));
    };
    let as_csv = dir.path().join("scored.csv");
    let as_parquet = dir.path().join("scored.parquet");
    let forced = dir.path().join("scored.out");
    score(&as_csv, &[]);
    score(&as_parquet, &[]);
    score(&forced, &["--format", "parquet"]);
    assert_eq!(&std::fs::read(&as_parquet).unwrap()[..4], b"PAR1");
    assert_eq!(&std::fs::read(&forced).unwrap()[..4], b"PAR1");
    assert_ne!(&std::fs::read(&as_csv).unwrap()[..4], b"PAR1");
    let csv_table = leadscore::data::read_table(&as_csv).unwrap();
    let parquet_table = leadscore::data::read_table(&as_parquet).unwrap();
    assert_eq!(csv_table.headers, parquet_table.headers);
    assert_eq!(csv_table.rows(), 1500);
    assert_eq!(parquet_table.rows(), 1500);
    let mut compared = 0;
    for (c, header) in csv_table.headers.iter().enumerate() {
        for row in 0..csv_table.rows() {
            let (a, b) = (
                csv_table.column(c).get(row),
                parquet_table.column(c).get(row),
            );
            // Numbers compare as numbers: the CSV writes `12.0` and `+0.1234`, Parquet holds
            // the same f64.
            let same =
                a == b || matches!((a.parse::<f64>(), b.parse::<f64>()), (Ok(x), Ok(y)) if x == y);
            assert!(same, "{header}, row {row}: CSV {a:?}, Parquet {b:?}");
            compared += 1;
        }
    }
    assert!(compared > 1500 * 20, "{compared}");

    // evaluate reads Parquet too: the backtest of the Parquet copy is the CSV's.
    let report = |data: &Path| {
        let run = leadscore(&[
            "evaluate",
            "--data",
            data.to_str().unwrap(),
            "--models",
            models.to_str().unwrap(),
            "--json",
            "-",
        ]);
        assert!(run.status.success(), "{}", stderr(&run));
        let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
        report["metrics"].clone()
    };
    let (from_csv, from_parquet) = (report(&csv), report(&parquet));
    assert_eq!(from_csv["leads"], 1500);
    assert_eq!(from_csv, from_parquet);
}

#[test]
fn broken_and_incomplete_parquet_files_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let csv = sample(dir.path(), 600);
    let good = dir.path().join("leads.parquet");
    parquet_copy(&csv, &good, 200, &[]);
    let bytes = std::fs::read(&good).unwrap();
    let models = dir.path().join("models");
    let train_on = |data: &Path| {
        leadscore(&[
            "train",
            "--data",
            data.to_str().unwrap(),
            "--target",
            "converted",
            "--models",
            models.to_str().unwrap(),
            "--quiet",
        ])
    };
    // Truncated (the footer is gone) and corrupt (garbage after the magic).
    let truncated = dir.path().join("truncated.parquet");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let garbage = dir.path().join("garbage.parquet");
    std::fs::write(&garbage, b"PAR1 this is not a parquet file at all PAR1").unwrap();
    for path in [&truncated, &garbage] {
        let out = train_on(path);
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("{}: not a readable Parquet file", path.display())),
            "{err}"
        );
    }
    // A file whose middle row group is damaged names the row group.
    let damaged = dir.path().join("damaged.parquet");
    let mut broken = bytes.clone();
    let middle = broken.len() / 2;
    for b in &mut broken[middle - 400..middle + 400] {
        *b = 0xAB;
    }
    std::fs::write(&damaged, &broken).unwrap();
    let out = train_on(&damaged);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("damaged.parquet: row group "), "{err}");

    // No target column.
    let no_target = dir.path().join("no-target.parquet");
    parquet_copy(&csv, &no_target, 200, &["converted"]);
    let out = train_on(&no_target);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(
            "no-target.parquet: no column named \"converted\"; the columns are: \"lead_id\""
        ),
        "{err}"
    );
}
