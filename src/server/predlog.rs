//! The prediction log (`--prediction-log FILE`): every score served, appended to SQLite so the
//! evaluator can later join predictions with the outcomes that became known.
//!
//! Schema (the evaluator relies on exactly this):
//! ```sql
//! CREATE TABLE predictions(lead_id TEXT NOT NULL, scored_at TEXT NOT NULL, -- RFC 3339 UTC
//!     model_version TEXT NOT NULL, probability REAL NOT NULL, score INTEGER NOT NULL,
//!     grade TEXT NOT NULL);
//! ```
//!
//! Scoring never waits for the disk: handlers put predictions on a bounded queue
//! ([`PredictionSender::send`] does not block) and one background thread writes them in batched
//! transactions. What happens when it cannot keep up is a choice, made here for availability: a
//! CRM's call must not stall or fail because the log's disk is slow. So
//! - a full queue drops the prediction, counts it in
//!   `leadscore_prediction_log_dropped_total{reason="queue_full"}` and logs a warning;
//! - a failed write (disk full, I/O error, database locked past the busy timeout) drops that
//!   batch, counts it with `reason="write_failed"`, logs the error, and the writer carries on
//!   with the next batch;
//! - on graceful shutdown everything queued is written before the server returns.
//!
//! So the log never has a silent gap: `written + dropped` equals the predictions served.

use super::metrics::Metrics;
use chrono::{DateTime, SecondsFormat, Utc};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Duration;

/// Most predictions written in one transaction.
const MAX_BATCH: usize = 4096;

/// Where and how to log predictions.
#[derive(Debug, Clone)]
pub struct PredictionLogConfig {
    pub path: PathBuf,
    /// Predictions that may wait for the writer before new ones are dropped.
    pub capacity: usize,
    /// How long a write waits for a lock held by another connection before it fails.
    pub busy_timeout: Duration,
}

impl PredictionLogConfig {
    pub fn new(path: impl Into<PathBuf>) -> PredictionLogConfig {
        PredictionLogConfig {
            path: path.into(),
            capacity: 65_536,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// One served score.
#[derive(Debug, Clone)]
pub struct Prediction {
    pub lead_id: String,
    pub scored_at: DateTime<Utc>,
    pub model_version: Arc<str>,
    pub probability: f64,
    pub score: u32,
    pub grade: String,
}

enum Message {
    Record(Prediction),
    /// Write everything queued before this, then stop.
    Stop,
}

/// The handle handlers use to log predictions; cheap to clone.
#[derive(Clone)]
pub struct PredictionSender {
    queue: SyncSender<Message>,
    metrics: Arc<Metrics>,
}

impl PredictionSender {
    /// Queues a prediction without waiting; a full or closed queue drops it, counted and logged.
    pub fn send(&self, prediction: Prediction) {
        let reason = match self.queue.try_send(Message::Record(prediction)) {
            Ok(()) => return,
            Err(TrySendError::Full(_)) => "queue_full",
            Err(TrySendError::Disconnected(_)) => "closed",
        };
        let dropped = self
            .metrics
            .prediction_log_dropped
            .with_label_values(&[reason]);
        // One warning per 1000 drops: a flood of log lines would make a slow disk slower.
        if dropped.get().is_multiple_of(1000) {
            tracing::warn!(
                reason,
                dropped_so_far = dropped.get() + 1,
                "prediction log cannot keep up: predictions dropped (see \
                 leadscore_prediction_log_dropped_total)"
            );
        }
        dropped.inc();
    }
}

/// The open log: its queue and its writer thread.
pub struct PredictionLog {
    sender: PredictionSender,
    writer: std::thread::JoinHandle<()>,
}

impl PredictionLog {
    /// Opens (creating if needed) the database and starts the writer. Errors here, at startup,
    /// stop the server: a log that cannot even be opened should not be discovered later.
    pub fn open(
        config: &PredictionLogConfig,
        metrics: Arc<Metrics>,
    ) -> Result<PredictionLog, rusqlite::Error> {
        let connection = open_database(&config.path, config.busy_timeout)?;
        let (queue, receiver) = sync_channel(config.capacity.max(1));
        let writer_metrics = metrics.clone();
        let path = config.path.clone();
        let writer = std::thread::Builder::new()
            .name("prediction-log".into())
            .spawn(move || write_loop(connection, receiver, &writer_metrics, &path))
            .expect("spawning a thread");
        Ok(PredictionLog {
            sender: PredictionSender { queue, metrics },
            writer,
        })
    }

    pub fn sender(&self) -> PredictionSender {
        self.sender.clone()
    }

    /// Writes everything queued so far and stops the writer (blocking: call it from
    /// `spawn_blocking`). Predictions sent afterwards are counted as dropped (`closed`).
    pub fn close(self) {
        // A blocking send: waits for room in the queue, so the stop comes after every record.
        let _ = self.sender.queue.send(Message::Stop);
        if self.writer.join().is_err() {
            tracing::error!("the prediction-log writer panicked");
        }
    }
}

fn open_database(
    path: &Path,
    busy_timeout: Duration,
) -> Result<rusqlite::Connection, rusqlite::Error> {
    let connection = rusqlite::Connection::open(path)?;
    connection.busy_timeout(busy_timeout)?;
    // WAL lets the evaluator read while the server writes; NORMAL sync is durable across a
    // process crash (a power cut may lose the last transactions).
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS predictions(
             lead_id TEXT NOT NULL,
             scored_at TEXT NOT NULL,
             model_version TEXT NOT NULL,
             probability REAL NOT NULL,
             score INTEGER NOT NULL,
             grade TEXT NOT NULL);
         CREATE INDEX IF NOT EXISTS predictions_lead_id ON predictions(lead_id);",
    )?;
    Ok(connection)
}

fn write_loop(
    mut connection: rusqlite::Connection,
    receiver: Receiver<Message>,
    metrics: &Metrics,
    path: &Path,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        // Wait for one message, then take whatever else is already queued.
        let mut stop = match receiver.recv() {
            Ok(Message::Record(p)) => {
                batch.push(p);
                false
            }
            Ok(Message::Stop) | Err(_) => true,
        };
        while !stop && batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(Message::Record(p)) => batch.push(p),
                Ok(Message::Stop) => stop = true,
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            match write_batch(&mut connection, &batch) {
                Ok(()) => metrics.prediction_log_written.inc_by(batch.len() as u64),
                Err(error) => {
                    tracing::error!(
                        path = %path.display(),
                        %error,
                        dropped = batch.len(),
                        "prediction log: write failed, predictions dropped (see \
                         leadscore_prediction_log_dropped_total)"
                    );
                    metrics
                        .prediction_log_dropped
                        .with_label_values(&["write_failed"])
                        .inc_by(batch.len() as u64);
                }
            }
            batch.clear();
        }
        if stop {
            return;
        }
    }
}

fn write_batch(
    connection: &mut rusqlite::Connection,
    batch: &[Prediction],
) -> Result<(), rusqlite::Error> {
    let transaction = connection.transaction()?;
    {
        let mut insert = transaction.prepare_cached(
            "INSERT INTO predictions(lead_id, scored_at, model_version, probability, score, grade)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for p in batch {
            insert.execute(rusqlite::params![
                p.lead_id,
                p.scored_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                &*p.model_version,
                p.probability,
                p.score,
                p.grade,
            ])?;
        }
    }
    transaction.commit()
}
