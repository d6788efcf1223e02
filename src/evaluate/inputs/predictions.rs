//! Reading the predictions to evaluate: the server's SQLite prediction log, or a CSV written by
//! `leadscore score`. The file kind is recognised by its first bytes.

use super::time::parse_time;
use crate::data::{Table, read_table};
use crate::evaluate::EvaluateError;
use std::path::Path;

/// One prediction the server (or `leadscore score`) made.
#[derive(Debug, Clone)]
pub struct Prediction {
    pub lead_id: String,
    /// Milliseconds since the Unix epoch (UTC); `None` in a `leadscore score` CSV without a
    /// `scored_at` column.
    pub scored_at: Option<i64>,
    pub model_version: Option<String>,
    pub probability: f64,
    pub grade: String,
}

/// The first bytes of every SQLite 3 database file.
const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";

/// Reads predictions from the server's SQLite log or from a CSV (`lead_id`, `probability`,
/// `grade`, and optionally `scored_at` and `model_version`), in the order they are listed.
pub fn read_predictions(path: &Path) -> Result<Vec<Prediction>, EvaluateError> {
    let mut head = [0u8; 16];
    let is_sqlite = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok()
        && head == SQLITE_MAGIC;
    if is_sqlite {
        read_sqlite(path)
    } else {
        read_predictions_csv(&read_table(path)?)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use std::sync::Arc;
    use std::time::Duration;

    /// A prediction log written by the server's own writer, so that the reader is checked
    /// against what the server really writes.
    fn write_log(path: &Path, rows: &[(&str, &str, &str, f64, &str)]) {
        use crate::server::{metrics::Metrics, predlog};
        let config = predlog::PredictionLogConfig::new(path);
        let log = predlog::PredictionLog::open(&config, Arc::new(Metrics::new())).unwrap();
        let sender = log.sender();
        for (lead, at, version, p, grade) in rows {
            sender.send(predlog::Prediction {
                lead_id: lead.to_string(),
                scored_at: DateTime::parse_from_rfc3339(at)
                    .unwrap()
                    .with_timezone(&Utc),
                model_version: Arc::from(*version),
                probability: *p,
                score: (p * 100.0).round() as u32,
                grade: grade.to_string(),
            });
        }
        log.close(Duration::from_secs(60));
    }

    /// Appends a row the server would never write (a corrupt or hand-edited log).
    fn append_raw(path: &Path, scored_at: &str, probability: f64) {
        rusqlite::Connection::open(path)
            .unwrap()
            .execute(
                "INSERT INTO predictions VALUES ('L9', ?1, 'v1', ?2, 50, 'B')",
                rusqlite::params![scored_at, probability],
            )
            .unwrap();
    }

    fn summary(predictions: &[Prediction]) -> Vec<(String, Option<i64>, Option<String>, f64)> {
        predictions
            .iter()
            .map(|p| {
                (
                    format!("{}/{}", p.lead_id, p.grade),
                    p.scored_at,
                    p.model_version.clone(),
                    p.probability,
                )
            })
            .collect()
    }

    const JAN_5: i64 = 1_736_071_200_000; // 2025-01-05T10:00:00Z

    #[test]
    fn a_server_log_is_read_in_the_order_it_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("predictions.sqlite");
        write_log(
            &log,
            &[
                ("L2", "2025-01-05T10:00:00Z", "v1", 0.25, "C"),
                ("L1", "2025-01-05T10:00:00.500Z", "v2", 0.75, "A"),
                ("L2", "2025-01-05T12:00:00+02:00", "v2", 0.5, "B"),
            ],
        );
        let read = read_predictions(&log).unwrap();
        assert_eq!(
            summary(&read),
            [
                ("L2/C".into(), Some(JAN_5), Some("v1".into()), 0.25),
                ("L1/A".into(), Some(JAN_5 + 500), Some("v2".into()), 0.75),
                ("L2/B".into(), Some(JAN_5), Some("v2".into()), 0.5),
            ]
        );
    }

    #[test]
    fn a_bad_sqlite_row_is_named_by_its_rowid() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("bad_time.sqlite");
        write_log(&log, &[("L1", "2025-01-05T10:00:00Z", "v1", 0.2, "C")]);
        append_raw(&log, "yesterday", 0.2);
        let err = read_predictions(&log).unwrap_err().to_string();
        assert!(
            err.ends_with("predictions row 2: scored_at \"yesterday\" is not an RFC 3339 time"),
            "{err}"
        );
        let log = dir.path().join("bad_probability.sqlite");
        write_log(&log, &[]);
        append_raw(&log, "2025-01-05T10:00:00Z", 1.5);
        let err = read_predictions(&log).unwrap_err().to_string();
        assert!(
            err.ends_with("predictions row 1: probability 1.5 is not between 0 and 1"),
            "{err}"
        );
        // A SQLite file that is not a prediction log says so.
        let other = dir.path().join("other.sqlite");
        rusqlite::Connection::open(&other)
            .unwrap()
            .execute_batch("CREATE TABLE leads(id TEXT)")
            .unwrap();
        let err = read_predictions(&other).unwrap_err().to_string();
        assert!(err.contains("reading the prediction log"), "{err}");
    }

    #[test]
    fn a_score_csv_is_read_with_or_without_times_and_versions() {
        let dir = tempfile::tempdir().unwrap();
        // `leadscore score` writes more columns than these; the extra ones are ignored.
        let plain = dir.path().join("scored.csv");
        std::fs::write(
            &plain,
            "lead_id,line,probability,score,percentile,grade\nL1,2,0.125,13,40.0,C\nL2,3,1,99,99.9,A\n",
        )
        .unwrap();
        assert_eq!(
            summary(&read_predictions(&plain).unwrap()),
            [
                ("L1/C".into(), None, None, 0.125),
                ("L2/A".into(), None, None, 1.0)
            ]
        );
        let timed = dir.path().join("timed.csv");
        std::fs::write(
            &timed,
            "lead_id,probability,grade,scored_at,model_version\nL1,0.3,B,2025-01-05 10:00:00,v7\n",
        )
        .unwrap();
        assert_eq!(
            summary(&read_predictions(&timed).unwrap()),
            [("L1/B".into(), Some(JAN_5), Some("v7".into()), 0.3)]
        );
    }

    #[test]
    fn a_bad_score_csv_cell_is_named_by_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "lead_id,probability,grade\nL1,0.2,C\nL2,high,A\n",
                "line 3: probability \"high\" is not a number",
            ),
            (
                "lead_id,probability,grade\nL1,-0.2,C\n",
                "line 2: probability -0.2 is not between 0 and 1",
            ),
            (
                "lead_id,probability,grade,scored_at\nL1,0.2,C,soon\n",
                "line 2: scored_at \"soon\" is not an RFC 3339 time",
            ),
        ];
        for (i, (csv, expected)) in cases.iter().enumerate() {
            let path = dir.path().join(format!("bad{i}.csv"));
            std::fs::write(&path, csv).unwrap();
            let err = read_predictions(&path).unwrap_err().to_string();
            assert!(err.contains(&format!("bad{i}.csv, {expected}")), "{err}");
        }
        let path = dir.path().join("no_grade.csv");
        std::fs::write(&path, "lead_id,probability\nL1,0.2\n").unwrap();
        let err = read_predictions(&path).unwrap_err().to_string();
        assert!(err.contains("grade"), "a missing column is named: {err}");
    }
}
