//! The JSON API under the same load as gRPC (`leadscore-bench load --json`): the workload's
//! leads as JSON bodies (`POST /v1/leads:score`, or `:scoreBatch` with `--batch`), sent over
//! HTTP/1.1 as a CRM's callouts are, to the target's own address.
//!
//! HTTP/1.1 carries one call at a time per connection, so each worker has its own connection
//! (concurrency 64 is 64 connections), opened before the clock starts. Bodies are encoded ahead
//! of time and answers are read whole but not parsed, as on the gRPC side.

use crate::generator::{
    BenchConfig, BenchError, Measurement, TOKEN_NOT_A_HEADER, WorkerStats, Workload, collect,
};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use leadscore::server::pb;
use prost::bytes::Bytes;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpStream;

/// The JSON bodies for `leads`: one per lead, or batches of `batch` cycling through them as the
/// gRPC requests do; and the path they go to.
pub fn bodies(
    leads: &[pb::Lead],
    batch: Option<usize>,
    explain: u32,
) -> (Vec<Bytes>, &'static str) {
    let encode = |value: Value| Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
    match batch {
        Some(n) if n > 0 && !leads.is_empty() => {
            let calls = leads.len().div_ceil(n).max(4);
            let bodies = (0..calls)
                .map(|call| {
                    let batch: Vec<Value> = (0..n)
                        .map(|k| lead(&leads[(call * n + k) % leads.len()]))
                        .collect();
                    encode(json!({"leads": batch, "explain": explain}))
                })
                .collect();
            (bodies, "/v1/leads:scoreBatch")
        }
        _ => {
            let bodies = leads
                .iter()
                .map(|l| {
                    let mut body = lead(l);
                    body["explain"] = json!(explain);
                    encode(body)
                })
                .collect();
            (bodies, "/v1/leads:score")
        }
    }
}

/// A lead as the JSON API takes it: numbers as JSON numbers, text as strings.
fn lead(lead: &pb::Lead) -> Value {
    use pb::field_value::Kind;
    let fields: Map<String, Value> = lead
        .fields
        .iter()
        .map(|(name, value)| {
            let value = match &value.kind {
                Some(Kind::Number(x)) => json!(x),
                Some(Kind::Text(t)) => json!(t),
                Some(Kind::Flag(b)) => json!(b),
                None => Value::Null,
            };
            (name.clone(), value)
        })
        .collect();
    json!({"lead_id": lead.lead_id, "fields": fields})
}

/// Runs the closed loop against the JSON API at `target` (an `http://HOST:PORT` address).
pub async fn measure(
    target: &str,
    workload: Arc<Workload>,
    config: &BenchConfig,
    server_pid: Option<u32>,
) -> Result<Measurement, BenchError> {
    let authority = target.strip_prefix("http://").ok_or_else(|| {
        BenchError::Config(format!(
            "--json measures the JSON API over plain HTTP: the target must be http://HOST:PORT, \
             not {target}"
        ))
    })?;
    let authority = authority.trim_end_matches('/').to_string();
    let auth = match &config.auth_token {
        Some(t) => Some(
            hyper::header::HeaderValue::try_from(format!("Bearer {t}"))
                .map_err(|_| BenchError::Config(TOKEN_NOT_A_HEADER.into()))?,
        ),
        None => None,
    };
    let concurrency = config.concurrency.max(1);
    let mut senders = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        senders.push(connect(&authority).await?);
    }
    let warmup_end = Instant::now() + config.warmup;
    let end = warmup_end + config.duration;
    let workers = senders
        .into_iter()
        .enumerate()
        .map(|(w, sender)| {
            let first = w * workload.json.len() / concurrency;
            let call = Call {
                authority: authority.clone(),
                auth: auth.clone(),
                workload: workload.clone(),
            };
            tokio::spawn(worker(sender, call, first, warmup_end, end))
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

/// One HTTP/1.1 connection, its driver running in the background.
async fn connect(authority: &str) -> Result<SendRequest<Full<Bytes>>, BenchError> {
    let failed = |e: &dyn std::fmt::Display| {
        BenchError::Config(format!("cannot connect to http://{authority}: {e}"))
    };
    let stream = TcpStream::connect(authority)
        .await
        .map_err(|e| failed(&e))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| failed(&e))?;
    tokio::spawn(connection);
    Ok(sender)
}

/// What every call of a worker carries.
struct Call {
    authority: String,
    auth: Option<hyper::header::HeaderValue>,
    workload: Arc<Workload>,
}

async fn worker(
    mut sender: SendRequest<Full<Bytes>>,
    call: Call,
    first: usize,
    warmup_end: Instant,
    end: Instant,
) -> WorkerStats {
    let mut stats = WorkerStats::new(warmup_end);
    let bodies = &call.workload.json;
    let mut next = first;
    loop {
        let started = Instant::now();
        if started >= end {
            return stats;
        }
        let mut request = hyper::Request::post(call.workload.json_path)
            .header(hyper::header::HOST, call.authority.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json");
        if let Some(auth) = &call.auth {
            request = request.header(hyper::header::AUTHORIZATION, auth.clone());
        }
        let body = Full::new(bodies[next].clone());
        next = (next + 1) % bodies.len();
        let result = match request.body(body) {
            Ok(request) => send(&mut sender, request).await,
            Err(e) => Err(e.to_string()),
        };
        let failed = result.is_err();
        stats.record(started, Instant::now(), result);
        if failed {
            // The connection may be gone; a closed loop without it would spin.
            return stats;
        }
    }
}

/// Sends one request and reads its answer whole; anything but 200 is an error.
async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    request: hyper::Request<Full<Bytes>>,
) -> Result<(), String> {
    sender.ready().await.map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if status == hyper::StatusCode::OK {
        Ok(())
    } else {
        Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&body)))
    }
}
