//! Prometheus metrics of the server, and the plain-HTTP endpoint that exposes them
//! (`--metrics-addr`, path `/metrics`).
//!
//! Each server owns its own registry (not prometheus' global one), so several servers in one
//! process, as in the tests, do not mix their counts.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Every metric the server exports. Names are documented in `docs/serving.md`.
pub struct Metrics {
    /// What `/metrics` renders.
    pub registry: Registry,
    /// Calls by method, gRPC status code (including refusals such as `UNAUTHENTICATED`) and
    /// protocol (`grpc`, `json`); the name predates the JSON API and is kept for dashboards.
    pub requests: IntCounterVec,
    /// The subset of `requests` whose code is not `OK`, for simple error-rate alerts.
    pub errors: IntCounterVec,
    /// Time from a call's arrival to its response being ready, by method and protocol.
    pub latency: HistogramVec,
    /// Leads scored successfully (a batch counts each lead).
    pub leads_scored: IntCounter,
    /// Distribution of the probabilities served: drift shows here before outcomes are known.
    pub probability: Histogram,
    /// 1 for the model version in service (label `version`); absent before the first load.
    pub model_version: IntGaugeVec,
    /// Reload attempts by result (`ok`, `failed`); a failed one leaves the old model serving.
    pub reloads: IntCounterVec,
    /// Predictions written to the prediction log.
    pub prediction_log_written: IntCounter,
    /// Predictions not written, by reason (`queue_full`, `write_failed`, `closed`).
    pub prediction_log_dropped: IntCounterVec,
    /// Numbers outside their attribute's training range in scored leads, by attribute: drift
    /// shows here before outcomes are known. A model's counters are made when it loads
    /// ([`Metrics::out_of_range_counters`]), so scoring neither hashes labels nor allocates.
    pub out_of_range: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "leadscore_grpc_requests_total",
                "Calls by method, status code and protocol (grpc, json)",
            ),
            &["method", "code", "protocol"],
        )
        .expect("valid metric");
        let errors = IntCounterVec::new(
            Opts::new(
                "leadscore_grpc_errors_total",
                "Calls that ended with a status other than OK, by method, code and protocol",
            ),
            &["method", "code", "protocol"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "leadscore_grpc_request_duration_seconds",
                "Time from a call's arrival to its response being ready",
            )
            .buckets(vec![
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                0.1, 0.25, 0.5, 1.0,
            ]),
            &["method", "protocol"],
        )
        .expect("valid metric");
        let leads_scored =
            IntCounter::new("leadscore_leads_scored_total", "Leads scored").expect("valid metric");
        let probability = Histogram::with_opts(
            HistogramOpts::new(
                "leadscore_served_probability",
                "Closure probabilities served",
            )
            .buckets((1..10).map(|i| i as f64 / 10.0).collect()),
        )
        .expect("valid metric");
        let model_version = IntGaugeVec::new(
            Opts::new(
                "leadscore_model_version_info",
                "1 for the model version in service",
            ),
            &["version"],
        )
        .expect("valid metric");
        let reloads = IntCounterVec::new(
            Opts::new(
                "leadscore_model_reloads_total",
                "Model load attempts by result (ok, failed)",
            ),
            &["result"],
        )
        .expect("valid metric");
        let prediction_log_written = IntCounter::new(
            "leadscore_prediction_log_written_total",
            "Predictions written to the prediction log",
        )
        .expect("valid metric");
        let prediction_log_dropped = IntCounterVec::new(
            Opts::new(
                "leadscore_prediction_log_dropped_total",
                "Predictions not written to the prediction log, by reason",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let out_of_range = IntCounterVec::new(
            Opts::new(
                "leadscore_out_of_range_values_total",
                "Numbers outside their attribute's training range in scored leads, by attribute",
            ),
            &["attribute"],
        )
        .expect("valid metric");
        for metric in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(errors.clone()),
            Box::new(latency.clone()),
            Box::new(leads_scored.clone()),
            Box::new(probability.clone()),
            Box::new(model_version.clone()),
            Box::new(reloads.clone()),
            Box::new(prediction_log_written.clone()),
            Box::new(prediction_log_dropped.clone()),
            Box::new(out_of_range.clone()),
        ] {
            registry.register(metric).expect("metric names are unique");
        }
        Metrics {
            registry,
            requests,
            errors,
            latency,
            leads_scored,
            probability,
            model_version,
            reloads,
            prediction_log_written,
            prediction_log_dropped,
            out_of_range,
        }
    }

    /// The out-of-range counter of each numeric attribute of `model` (`None` for the others),
    /// in encoder order; made (and exported at 0) when the model loads.
    pub fn out_of_range_counters(&self, model: &crate::model::Model) -> Vec<Option<IntCounter>> {
        model
            .encoder()
            .attributes
            .iter()
            .map(|a| {
                (a.kind() == crate::schema::Kind::Numeric)
                    .then(|| self.out_of_range.with_label_values(&[a.name.as_str()]))
            })
            .collect()
    }

    /// Records one finished call. A JSON call is labelled with the gRPC method it stands for
    /// (`ScoreLead` for `POST /v1/leads:score`) and the gRPC name of its error's code.
    pub fn record_call(
        &self,
        method: &str,
        protocol: Protocol,
        code: tonic::Code,
        elapsed: Duration,
    ) {
        let code = code_name(code);
        let protocol = protocol.label();
        self.requests
            .with_label_values(&[method, code, protocol])
            .inc();
        if code != "OK" {
            self.errors
                .with_label_values(&[method, code, protocol])
                .inc();
        }
        self.latency
            .with_label_values(&[method, protocol])
            .observe(elapsed.as_secs_f64());
    }

    /// Marks `version` as the one in service.
    pub fn set_model_version(&self, version: &str) {
        self.model_version.reset();
        self.model_version.with_label_values(&[version]).set(1);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("the text encoder writes to memory");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// How a call arrived: the `protocol` label of the call metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    Json,
}

impl Protocol {
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::Json => "json",
        }
    }
}

/// gRPC's upper-case names (`INVALID_ARGUMENT`), as other gRPC tooling labels codes.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Serves `GET /metrics` over HTTP/1.1 until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    metrics: std::sync::Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::{Response, StatusCode};
    // Whether the last `accept` failed for want of descriptors (logged once per run of them).
    let mut failing = false;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|&stopped| stopped) => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                failing = false;
                stream
            }
            Err(error) if super::incoming::per_connection(&error) => continue,
            Err(error) => {
                // Out of descriptors, `accept` fails at once every time: log once and pause
                // rather than spin in a loop.
                if !failing {
                    tracing::warn!(%error, "metrics endpoint: accept failed; retrying");
                    failing = true;
                }
                tokio::time::sleep(super::incoming::ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
                let response = if request.uri().path() == "/metrics" {
                    Response::builder()
                        .header("content-type", "text/plain; version=0.0.4")
                        .body(Full::new(Bytes::from(metrics.render())))
                } else {
                    Response::builder()
                        .status(StatusCode::NOT_FOUND)
                        .body(Full::new(Bytes::from_static(b"see /metrics\n")))
                };
                std::future::ready(response)
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!(%error, "metrics endpoint: connection ended with an error");
            }
        });
    }
}
