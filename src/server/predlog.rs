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
//!   batch, counts it with `reason="write_failed"`, logs the error (naming the file; while
//!   writes keep failing, at most every 10 s), and the writer carries on
//!   with the next batch;
//! - on graceful shutdown everything queued is written before the server returns, within a time
//!   bound ([`CLOSE_TIMEOUT`]): what is still queued then is dropped and counted with
//!   `reason="closed"`, as is anything sent after the log closed.
//!
//! So the log never has a silent gap: `written + dropped` equals the predictions served. Closing
//! takes the write side of [`PredictionSender::closed`], which every send holds the read side
//! of while queueing, so after the cut-over every accepted prediction is already in the queue,
//! and the writer drains it before it stops.
//!
//! The queue is bounded by count; each prediction is small and bounded in size (the server
//! refuses lead ids over 256 bytes), so the default 65 536 hold at most ~25 MB.

use super::metrics::Metrics;
use chrono::{DateTime, SecondsFormat, Utc};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Most predictions written in one transaction.
const MAX_BATCH: usize = 4096;

/// Least time between two logged write failures: a failing disk fails every batch, and a line
/// per batch would flood the log (often kept on the same disk).
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// How long [`PredictionLog::close`] may spend writing what is queued at shutdown (one write
/// already under way, up to the busy timeout, may add to it).
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// Wakes the writer to see that the log is closing.
    Stop,
}

/// `None` while the log is open; once it closes, the instant after which the writer stops
/// writing and counts what is left as dropped.
type Closed = RwLock<Option<Instant>>;

fn closing(closed: &Closed) -> Option<Instant> {
    *closed
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The handle handlers use to log predictions; cheap to clone.
#[derive(Clone)]
pub struct PredictionSender {
    queue: SyncSender<Message>,
    /// Read-locked while a prediction is queued, write-locked by `close`: a prediction is either
    /// queued before the log closes (and then written or counted by the writer) or refused
    /// after (and counted here), never lost in between.
    closed: Arc<Closed>,
    metrics: Arc<Metrics>,
}

impl PredictionSender {
    /// Queues a prediction without waiting; a full or closed queue drops it, counted and logged.
    pub fn send(&self, prediction: Prediction) {
        let reason = {
            let closed = self
                .closed
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if closed.is_some() {
                "closed"
            } else {
                match self.queue.try_send(Message::Record(prediction)) {
                    Ok(()) => return,
                    Err(TrySendError::Full(_)) => "queue_full",
                    Err(TrySendError::Disconnected(_)) => "closed",
                }
            }
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
                "prediction log: predictions dropped (see leadscore_prediction_log_dropped_total)"
            );
        }
        dropped.inc();
    }
}

/// The open log: its queue and its writer thread.
pub struct PredictionLog {
    sender: PredictionSender,
    writer: std::thread::JoinHandle<()>,
    /// Disconnects when the writer thread ends (normally or by panic): `close` waits on it with
    /// a timeout, which joining the thread cannot do.
    writer_done: Receiver<()>,
    /// How long one write may wait for a lock: part of the time `close` may take.
    busy_timeout: Duration,
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
        let closed = Arc::new(Closed::default());
        let (done, writer_done) = sync_channel(0);
        let writer_metrics = metrics.clone();
        let writer_closed = closed.clone();
        let path = config.path.clone();
        let writer = std::thread::Builder::new()
            .name("prediction-log".into())
            .spawn(move || {
                let _done = done; // dropped when this thread ends, however it ends
                write_loop(connection, receiver, &writer_closed, &writer_metrics, &path)
            })
            .expect("spawning a thread");
        Ok(PredictionLog {
            sender: PredictionSender {
                queue,
                closed,
                metrics,
            },
            writer,
            writer_done,
            busy_timeout: config.busy_timeout,
        })
    }

    pub fn sender(&self) -> PredictionSender {
        self.sender.clone()
    }

    /// Refuses new predictions (counted as dropped, `closed`), writes everything queued for up
    /// to `within` (what is left then is counted as dropped, `closed`) and stops the writer.
    /// Blocking (call it from `spawn_blocking`), for at most `within` plus one write.
    pub fn close(self, within: Duration) {
        *self
            .sender
            .closed
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Instant::now() + within);
        // Wakes a writer waiting on an empty queue; a full queue wakes it anyway.
        let _ = self.sender.queue.try_send(Message::Stop);
        let patience = within + self.busy_timeout + Duration::from_secs(1);
        match self.writer_done.recv_timeout(patience) {
            Err(RecvTimeoutError::Disconnected) | Ok(()) => {
                if self.writer.join().is_err() {
                    tracing::error!("the prediction-log writer panicked");
                }
            }
            Err(RecvTimeoutError::Timeout) => tracing::error!(
                waited = ?patience,
                "the prediction-log writer did not finish (a write is stuck); giving up on it"
            ),
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
    closed: &Closed,
    metrics: &Metrics,
    path: &Path,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // While writes fail: when a failure was last logged.
    let mut failure_logged: Option<Instant> = None;
    loop {
        // Read before draining: once the log is closed, nothing more enters the queue, so an
        // empty queue then means everything was taken.
        let deadline = closing(closed);
        if deadline.is_none() {
            // Wait for one message (a record, or the wake-up of `close`).
            match receiver.recv() {
                Ok(Message::Record(p)) => batch.push(p),
                Ok(Message::Stop) => {}
                Err(_) => return, // every sender is gone: nothing more can come
            }
        }
        // Then take whatever else is already queued.
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(Message::Record(p)) => batch.push(p),
                Ok(Message::Stop) => {}
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            if deadline.is_some() {
                return;
            }
            continue;
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            // Out of time at shutdown: counted, not written.
            tracing::error!(
                dropped = batch.len(),
                "prediction log: no time left at shutdown, predictions dropped (see \
                 leadscore_prediction_log_dropped_total)"
            );
            metrics
                .prediction_log_dropped
                .with_label_values(&["closed"])
                .inc_by(batch.len() as u64);
            batch.clear();
            continue;
        }
        match write_batch(&mut connection, &batch) {
            Ok(()) => {
                metrics.prediction_log_written.inc_by(batch.len() as u64);
                if failure_logged.take().is_some() {
                    tracing::info!(path = %path.display(), "prediction log: writing again");
                }
            }
            Err(error) => {
                let dropped = metrics
                    .prediction_log_dropped
                    .with_label_values(&["write_failed"]);
                dropped.inc_by(batch.len() as u64);
                if failure_logged.is_none_or(|at| at.elapsed() >= FAILURE_LOG_INTERVAL) {
                    tracing::error!(
                        path = %path.display(),
                        %error,
                        dropped = batch.len(),
                        dropped_so_far = dropped.get(),
                        "prediction log: write failed, predictions dropped (see \
                         leadscore_prediction_log_dropped_total; while writes keep failing, \
                         this is logged at most every {FAILURE_LOG_INTERVAL:?})"
                    );
                    failure_logged = Some(Instant::now());
                }
            }
        }
        batch.clear();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn prediction(i: usize) -> Prediction {
        Prediction {
            lead_id: format!("L{i}"),
            scored_at: Utc::now(),
            model_version: Arc::from("v1"),
            probability: 0.5,
            score: 50,
            grade: "B".into(),
        }
    }

    fn dropped(metrics: &Metrics, reason: &str) -> u64 {
        metrics
            .prediction_log_dropped
            .with_label_values(&[reason])
            .get()
    }

    fn rows(path: &Path) -> u64 {
        rusqlite::Connection::open(path)
            .unwrap()
            .query_row("SELECT count(*) FROM predictions", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn close_writes_everything_queued_and_counts_what_comes_after() {
        let dir = tempfile::tempdir().unwrap();
        let config = PredictionLogConfig::new(dir.path().join("log.sqlite"));
        let metrics = Arc::new(Metrics::new());
        let log = PredictionLog::open(&config, metrics.clone()).unwrap();
        let sender = log.sender();
        for i in 0..10_000 {
            sender.send(prediction(i));
        }
        log.close(Duration::from_secs(60));
        assert_eq!(metrics.prediction_log_written.get(), 10_000);
        assert_eq!(rows(&config.path), 10_000);
        sender.send(prediction(0));
        assert_eq!(dropped(&metrics, "closed"), 1);
    }

    /// Handlers still sending while the log closes: every prediction is written or counted.
    #[test]
    fn closing_under_load_loses_nothing_uncounted() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = PredictionLogConfig::new(dir.path().join("log.sqlite"));
        config.capacity = 1000;
        let metrics = Arc::new(Metrics::new());
        let log = PredictionLog::open(&config, metrics.clone()).unwrap();
        let senders: Vec<_> = (0..4)
            .map(|_| {
                let sender = log.sender();
                std::thread::spawn(move || (0..20_000).for_each(|i| sender.send(prediction(i))))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20));
        log.close(Duration::from_secs(60));
        for sender in senders {
            sender.join().unwrap();
        }
        let written = metrics.prediction_log_written.get();
        let total = written + dropped(&metrics, "closed") + dropped(&metrics, "queue_full");
        assert_eq!(total, 80_000);
        assert_eq!(rows(&config.path), written);
    }

    /// A database locked by another process: `close` gives up in bounded time, and counts
    /// every prediction it could not write.
    #[test]
    fn close_is_bounded_in_time_when_writes_block() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = PredictionLogConfig::new(dir.path().join("log.sqlite"));
        config.busy_timeout = Duration::from_millis(100);
        config.capacity = 100_000;
        let metrics = Arc::new(Metrics::new());
        let log = PredictionLog::open(&config, metrics.clone()).unwrap();
        let locker = rusqlite::Connection::open(&config.path).unwrap();
        locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let sender = log.sender();
        for i in 0..40_000 {
            sender.send(prediction(i));
        }
        let started = Instant::now();
        log.close(Duration::from_millis(300));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(metrics.prediction_log_written.get(), 0);
        let (failed, closed) = (
            dropped(&metrics, "write_failed"),
            dropped(&metrics, "closed"),
        );
        assert_eq!(failed + closed, 40_000);
        assert!(closed > 0, "the deadline dropped the rest");
    }
}
