//! The load generator behind `leadscore-bench load`, in the spirit of `redis-benchmark`.
//!
//! Closed loop: `concurrency` workers each send a call, wait for its answer, and send the next.
//! Every request is encoded from the CSV before the clock starts and sent as bytes, and answers
//! are not decoded, so the client spends its time on the transport, not on protobuf. Calls that
//! start during the warm-up are not counted.
//!
//! The same workload can be run against a second server, the ceiling (`leadscore-bench
//! ceiling`): the real server's throughput as a share of it says how much scoring costs on top
//! of gRPC and prost.

use leadscore::data::{DataError, Table, read_csv};
use leadscore::schema::parse_number;
use leadscore::server::codec::RawCodec;
use leadscore::server::pb;
use prost::Message;
use prost::bytes::Bytes;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The server under test, e.g. `http://127.0.0.1:50051`.
    pub target: String,
    /// The no-op ceiling server, measured after the target with the same workload.
    pub ceiling: Option<String>,
    /// CSV whose rows are the leads sent.
    pub data: PathBuf,
    /// Column sent as `lead_id` (not as a field).
    pub id_column: Option<String>,
    /// Columns not sent (e.g. the outcome).
    pub exclude: Vec<String>,
    /// Calls in flight at once.
    pub concurrency: usize,
    /// HTTP/2 connections the calls are spread over.
    pub connections: usize,
    /// `None`: one `ScoreLead` per call; `Some(n)`: `ScoreLeads` with `n` leads per call.
    pub batch: Option<usize>,
    /// Factors asked for per lead.
    pub explain: u32,
    pub warmup: Duration,
    pub duration: Duration,
    pub auth_token: Option<String>,
}

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("{0}")]
    Config(String),
    #[error("cannot connect to {target}: {source}")]
    Connect {
        target: String,
        source: tonic::transport::Error,
    },
}

/// The figures of one run against one server.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub target: String,
    pub calls: u64,
    pub leads: u64,
    /// Calls that did not end with `OK` (not counted in `calls`).
    pub errors: u64,
    pub first_error: Option<String>,
    pub seconds: f64,
    pub p50: Duration,
    pub p99: Duration,
    /// CPU time the server process used while measured, when its pid was given (Linux).
    pub server_cpu: Option<Duration>,
}

impl Measurement {
    pub fn calls_per_second(&self) -> f64 {
        self.calls as f64 / self.seconds
    }

    pub fn leads_per_second(&self) -> f64 {
        self.leads as f64 / self.seconds
    }

    /// Calls per second of server CPU: the throughput the server would reach on a core of its
    /// own, whatever else ran on the machine meanwhile.
    pub fn calls_per_cpu_second(&self) -> Option<f64> {
        self.server_cpu
            .map(|cpu| self.calls as f64 / cpu.as_secs_f64().max(1e-9))
    }
}

/// User + system CPU time of a process so far, from `/proc/PID/stat` (Linux).
pub fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux platform Rust targets.
    Some(Duration::from_millis(ticks * 10))
}

/// Requests encoded ahead of time.
pub struct Workload {
    pub requests: Vec<Bytes>,
    pub leads_per_call: u64,
    pub path: PathAndQuery,
    /// Average encoded size of a request, in bytes.
    pub request_bytes: usize,
    /// Fields per lead.
    pub fields: usize,
    /// The same requests as JSON bodies, for the JSON API (`--json`).
    pub json: Vec<Bytes>,
    /// Where the JSON bodies go: `/v1/leads:score` or `/v1/leads:scoreBatch`.
    pub json_path: &'static str,
}

/// Encodes the CSV's rows as requests.
pub fn workload(config: &BenchConfig) -> Result<Workload, BenchError> {
    let table = read_csv(&config.data)?;
    if table.rows() == 0 {
        return Err(BenchError::Config(format!(
            "{} has no rows",
            config.data.display()
        )));
    }
    let id = match &config.id_column {
        Some(name) => Some(table.column_index(name)?),
        None => None,
    };
    for name in &config.exclude {
        table.column_index(name)?;
    }
    let columns: Vec<usize> = (0..table.headers.len())
        .filter(|&c| Some(c) != id && !config.exclude.contains(&table.headers[c]))
        .collect();
    let leads: Vec<pb::Lead> = (0..table.rows())
        .map(|row| lead(&table, row, id, &columns))
        .collect();
    let (json, json_path) = crate::json::bodies(&leads, config.batch, config.explain);
    let (requests, leads_per_call, path): (Vec<Bytes>, usize, &str) = match config.batch {
        None => (
            leads
                .into_iter()
                .map(|lead| {
                    pb::ScoreLeadRequest {
                        lead: Some(lead),
                        explain: config.explain,
                    }
                    .encode_to_vec()
                    .into()
                })
                .collect(),
            1,
            "/leadscore.v1.LeadScoring/ScoreLead",
        ),
        Some(n) if n > 0 => {
            // Enough distinct batches to cover every row at least once, cycling through rows.
            let calls = leads.len().div_ceil(n).max(4);
            let requests = (0..calls)
                .map(|call| {
                    pb::ScoreLeadsRequest {
                        leads: (0..n)
                            .map(|k| leads[(call * n + k) % leads.len()].clone())
                            .collect(),
                        explain: config.explain,
                    }
                    .encode_to_vec()
                    .into()
                })
                .collect();
            (requests, n, "/leadscore.v1.LeadScoring/ScoreLeads")
        }
        Some(_) => return Err(BenchError::Config("--batch must be at least 1".into())),
    };
    let request_bytes = requests.iter().map(Bytes::len).sum::<usize>() / requests.len().max(1);
    Ok(Workload {
        requests,
        leads_per_call: leads_per_call as u64,
        path: PathAndQuery::from_static(path),
        request_bytes,
        fields: columns.len(),
        json,
        json_path,
    })
}

/// One CSV row as a lead: cells that read as numbers are sent as numbers, the rest as text.
fn lead(table: &Table, row: usize, id: Option<usize>, columns: &[usize]) -> pb::Lead {
    use pb::field_value::Kind;
    pb::Lead {
        lead_id: match id {
            Some(c) => table.column(c).get(row).to_string(),
            None => format!("row-{row}"),
        },
        fields: columns
            .iter()
            .map(|&c| {
                let cell = table.column(c).get(row);
                let kind = match parse_number(cell) {
                    Some(x) => Kind::Number(x),
                    None => Kind::Text(cell.to_string()),
                };
                (
                    table.headers[c].clone(),
                    pb::FieldValue { kind: Some(kind) },
                )
            })
            .collect(),
    }
}

/// The refusal of a token that cannot be sent in an `authorization` header.
pub const TOKEN_NOT_A_HEADER: &str =
    "the auth token has characters an HTTP header cannot carry (control characters)";

/// Runs the closed loop against `target`.
pub async fn measure(
    target: &str,
    workload: Arc<Workload>,
    config: &BenchConfig,
    server_pid: Option<u32>,
) -> Result<Measurement, BenchError> {
    let channels = connect(target, config.connections.max(1)).await?;
    let token = match &config.auth_token {
        Some(t) => Some(
            MetadataValue::try_from(format!("Bearer {t}"))
                .map_err(|_| BenchError::Config(TOKEN_NOT_A_HEADER.into()))?,
        ),
        None => None,
    };
    let start = Instant::now();
    let warmup_end = start + config.warmup;
    let end = warmup_end + config.duration;
    let workers: Vec<_> = (0..config.concurrency.max(1))
        .map(|w| {
            let channel = channels[w % channels.len()].clone();
            let workload = workload.clone();
            let token = token.clone();
            // Spread the workers over the requests so they do not all send the same lead.
            let first = w * workload.requests.len() / config.concurrency.max(1);
            tokio::spawn(worker(channel, workload, first, token, warmup_end, end))
        })
        .collect();
    Ok(collect(
        target,
        workers,
        warmup_end,
        server_pid,
        workload.leads_per_call,
    )
    .await)
}

/// Waits for the workers (started so that they measure from `warmup_end`) and sums up their
/// figures, with the server's CPU time over the measured span when its pid is known.
pub async fn collect(
    target: &str,
    workers: Vec<tokio::task::JoinHandle<WorkerStats>>,
    warmup_end: Instant,
    server_pid: Option<u32>,
    leads_per_call: u64,
) -> Measurement {
    tokio::time::sleep_until(warmup_end.into()).await;
    let cpu_start = server_pid.and_then(process_cpu);
    let mut latencies = Vec::new();
    let (mut errors, mut first_error, mut last_finish) = (0, None, warmup_end);
    for worker in workers {
        let stats = worker.await.expect("bench workers do not panic");
        latencies.extend(stats.latencies);
        errors += stats.errors;
        first_error = first_error.or(stats.first_error);
        last_finish = last_finish.max(stats.last_finish);
    }
    let server_cpu = match (cpu_start, server_pid.and_then(process_cpu)) {
        (Some(start), Some(end)) => Some(end.saturating_sub(start)),
        _ => None,
    };
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(Duration::ZERO, |&nanos| Duration::from_nanos(nanos))
    };
    let calls = latencies.len() as u64;
    Measurement {
        target: target.to_string(),
        calls,
        leads: calls * leads_per_call,
        errors,
        first_error,
        seconds: (last_finish - warmup_end).as_secs_f64().max(1e-9),
        p50: at(0.50),
        p99: at(0.99),
        server_cpu,
    }
}

/// `connections` HTTP/2 connections to `target`.
async fn connect(target: &str, connections: usize) -> Result<Vec<Channel>, BenchError> {
    let error = |source| BenchError::Connect {
        target: target.to_string(),
        source,
    };
    let mut channels = Vec::new();
    for _ in 0..connections {
        let endpoint = Endpoint::from_shared(target.to_string())
            .map_err(error)?
            .tcp_nodelay(true);
        channels.push(endpoint.connect().await.map_err(error)?);
    }
    Ok(channels)
}

/// One worker's figures.
pub struct WorkerStats {
    /// Nanoseconds per successful measured call.
    latencies: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
    last_finish: Instant,
    /// Calls that start before this are warm-up, not counted.
    warmup_end: Instant,
}

impl WorkerStats {
    pub fn new(warmup_end: Instant) -> WorkerStats {
        WorkerStats {
            latencies: Vec::with_capacity(1 << 16),
            errors: 0,
            first_error: None,
            last_finish: warmup_end,
            warmup_end,
        }
    }

    /// Counts a call that ran from `started` to `finished` (unless it started in the warm-up).
    pub fn record(&mut self, started: Instant, finished: Instant, result: Result<(), String>) {
        if started < self.warmup_end {
            return;
        }
        self.last_finish = finished;
        match result {
            Ok(()) => self.latencies.push((finished - started).as_nanos() as u64),
            Err(error) => {
                self.errors += 1;
                if self.first_error.is_none() {
                    self.first_error = Some(error);
                }
            }
        }
    }
}

async fn worker(
    channel: Channel,
    workload: Arc<Workload>,
    first: usize,
    token: Option<MetadataValue<tonic::metadata::Ascii>>,
    warmup_end: Instant,
    end: Instant,
) -> WorkerStats {
    let mut grpc = tonic::client::Grpc::new(channel);
    let mut stats = WorkerStats::new(warmup_end);
    let mut next = first;
    loop {
        let started = Instant::now();
        if started >= end {
            return stats;
        }
        let mut request = tonic::Request::new(workload.requests[next].clone());
        next = (next + 1) % workload.requests.len();
        if let Some(token) = &token {
            request
                .metadata_mut()
                .insert("authorization", token.clone());
        }
        let result = match grpc.ready().await {
            Ok(()) => grpc
                .unary(request, workload.path.clone(), RawCodec)
                .await
                .map(drop),
            Err(e) => Err(tonic::Status::unavailable(e.to_string())),
        };
        let result = result.map_err(|status| format!("{:?}: {}", status.code(), status.message()));
        stats.record(started, Instant::now(), result);
    }
}
