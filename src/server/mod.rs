//! The gRPC scoring server (`leadscore serve`).
//!
//! # Layout
//! - [`service`] is `leadscore.v1.LeadScoring`: routing, auth, scoring, metrics per call.
//! - [`wire`] reads score requests straight from their protobuf bytes, without a `HashMap`.
//! - [`convert`] builds the protobuf responses and turns bad input into `Status`.
//! - [`pb`] holds the types generated from the proto, and its descriptor set.
//! - [`codec`] hands tonic's message bytes over undecoded.
//! - [`holder`] keeps the model in service and swaps in new versions (the reload watcher).
//! - [`incoming`] accepts connections: a handshake deadline, and a pause when out of descriptors.
//! - [`metrics`] defines the Prometheus metrics and serves them over HTTP.
//! - [`auth`] checks bearer tokens in constant time.
//! - [`predlog`] appends every served score to SQLite from a background thread.
//! - [`http`] is the JSON API beside gRPC on the same address, and the dispatch between them.
//! - [`tls`] does the TLS handshake for both protocols (ALPN `h2` and `http/1.1`).
//!
//! [`run`] takes a bound listener and a shutdown future (as in mini-redis), so tests bind
//! `127.0.0.1:0` and need no fixed port.
//!
//! The load generator and the no-op ceiling it measures against are not part of the library:
//! they are the separate `leadscore-bench` tool (`src/bin/leadscore-bench/`), which uses this
//! module's public API ([`pb`], [`codec`], [`transport`], [`serve`], [`grpc_routes`], [`tls`],
//! [`incoming`]).
//!
//! Architecture invariant: within the library, only this module touches generated protobuf
//! types ([`pb`]).

pub mod auth;
pub mod codec;
pub mod convert;
pub mod holder;
pub mod http;
pub mod incoming;
pub mod metrics;
pub mod pb;
pub mod predlog;
pub mod service;
pub mod tls;
pub mod wire;

use crate::registry::Registry;
use holder::{Lifecycle, ModelHolder, Watcher};
use metrics::Metrics;
use predlog::{PredictionLog, PredictionLogConfig};
use service::{LeadScoringService, SERVICE_NAME, Shared};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio_rustls::TlsAcceptor;
use tonic::codegen::http::{Request, Response};
use tonic::codegen::{Body, Service, StdError};
use tonic::service::Routes;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::server::HealthReporter;

/// Default for `--max-batch`.
pub const DEFAULT_MAX_BATCH: usize = 1000;

/// Largest request accepted whatever `--max-batch` is: a handler holds its whole request in
/// memory, so this (times the calls in progress) bounds what clients can make the server hold.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// HTTP/2 streams (calls) one connection may have open at once (`SETTINGS_MAX_CONCURRENT_STREAMS`).
pub const MAX_CONCURRENT_STREAMS: u32 = 128;

/// Calls one connection may have in progress at once; further calls wait for a slot.
pub const CONCURRENCY_PER_CONNECTION: usize = 64;

/// Longest a call may take from its arrival to its response, reading the request included
/// (a client's shorter `grpc-timeout` wins); then it fails with `CANCELLED`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a new connection may take to send its first bytes (the HTTP/2 preface or the start
/// of a TLS handshake), and a TLS handshake to complete; then it is closed, so idle sockets
/// cannot pile up until the server runs out of file descriptors.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest request accepted with this `--max-batch`: room for a full batch of wide leads (16 KiB
/// each), never below tonic's 4 MiB default nor above [`MAX_MESSAGE_BYTES`].
pub fn max_message_bytes(max_batch: usize) -> usize {
    max_batch
        .saturating_mul(16 * 1024)
        .clamp(4 << 20, MAX_MESSAGE_BYTES)
}

/// Everything the server is told, validated by the caller (the CLI).
pub struct Config {
    /// The model registry served from and watched for new versions.
    pub models: PathBuf,
    /// How often `CURRENT` is checked for a new version.
    pub reload_interval: Duration,
    /// Most leads accepted in one `ScoreLeads` call.
    pub max_batch: usize,
    /// Bearer token every scoring and reflection call must carry; `None`: no auth.
    pub auth_token: Option<String>,
    /// Certificate chain and private key (PEM): serve TLS instead of plain HTTP/2.
    pub tls: Option<TlsIdentity>,
    /// Log every served score to SQLite.
    pub prediction_log: Option<PredictionLogConfig>,
    /// Where to serve `/metrics`, bound by the caller.
    pub metrics_listener: Option<TcpListener>,
    /// After the shutdown signal, how long calls in flight may take before the server stops
    /// anyway (a client holding a health `Watch` stream open would otherwise delay it forever).
    pub shutdown_grace: Duration,
    /// How long a new connection may take to start its handshake ([`HANDSHAKE_TIMEOUT`]).
    pub handshake_timeout: Duration,
}

impl Config {
    /// Defaults: reload every 2 s, batches up to 1000, no auth, TLS, log or metrics.
    pub fn new(models: impl Into<PathBuf>) -> Config {
        Config {
            models: models.into(),
            reload_interval: Duration::from_secs(2),
            max_batch: DEFAULT_MAX_BATCH,
            auth_token: None,
            tls: None,
            prediction_log: None,
            metrics_listener: None,
            shutdown_grace: Duration::from_secs(30),
            handshake_timeout: HANDSHAKE_TIMEOUT,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("models", &self.models)
            .field("reload_interval", &self.reload_interval)
            .field("max_batch", &self.max_batch)
            .field("auth", &self.auth_token.is_some())
            .field("tls", &self.tls.is_some())
            .field("prediction_log", &self.prediction_log)
            .field("metrics", &self.metrics_listener)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}

/// A certificate chain and its private key, PEM-encoded.
#[derive(Clone)]
pub struct TlsIdentity {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("TLS configuration (--tls-cert/--tls-key): {0}")]
    Tls(#[source] tls::TlsError),
    #[error("cannot open the prediction log {path}: {source}")]
    PredictionLog {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "cannot load the model in service: {0} (fix it, promote a version that loads, or \
         `leadscore models rollback`)"
    )]
    ModelInService(String),
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Whether serving on `addr` is acceptable: anything beyond loopback needs auth, or an explicit
/// `insecure`. `Ok(Some(warning))` when it is allowed but worth a warning.
pub fn check_exposure(
    addr: SocketAddr,
    auth: bool,
    tls: bool,
    insecure: bool,
) -> Result<Option<String>, String> {
    if addr.ip().is_loopback() {
        return Ok(None);
    }
    match (auth, tls, insecure) {
        (false, _, false) => Err(format!(
            "{addr} is reachable from other machines and no auth token is set; set \
             --auth-token-file or LEADSCORE_AUTH_TOKEN (and --tls-cert/--tls-key), or pass \
             --insecure to serve without auth anyway"
        )),
        (false, _, true) => Ok(Some(format!(
            "serving on {addr} WITHOUT authentication (--insecure): anyone who can reach it can \
             score leads"
        ))),
        (true, false, _) => Ok(Some(format!(
            "serving on {addr} without TLS: bearer tokens and lead data cross the network in \
             clear text (set --tls-cert/--tls-key)"
        ))),
        (true, true, _) => Ok(None),
    }
}

/// Serves until `shutdown` completes, then finishes the calls in flight (up to
/// `shutdown_grace`), flushes the prediction log and returns.
///
/// Health is `NOT_SERVING` until a model is loaded and from the moment `shutdown` completes.
/// When `models/CURRENT` exists, the version it names is loaded before anything is served; if it
/// cannot be (or `CURRENT` cannot be read), `run` returns [`ServerError::ModelInService`]. Without
/// `CURRENT` the server waits, `NOT_SERVING`, for the first promotion.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let Config {
        models,
        reload_interval,
        max_batch,
        auth_token,
        tls,
        prediction_log,
        metrics_listener,
        shutdown_grace,
        handshake_timeout,
    } = config;
    let metrics = Arc::new(Metrics::new());
    let (stop, stopped) = watch::channel(false);
    let (health, health_service) = tonic_health::server::health_reporter();
    set_health(&health, ServingStatus::NotServing).await;
    let lifecycle = Arc::new(Lifecycle::new(health, SERVICE_NAME));

    // The version in service is loaded before anything else starts: one that cannot be loaded
    // stops the server here, where its operator sees it.
    let holder = Arc::new(ModelHolder::default());
    let watching = Watcher {
        registry: Registry::new(models),
        holder: holder.clone(),
        metrics: metrics.clone(),
        lifecycle: lifecycle.clone(),
        interval: reload_interval,
    }
    .start()
    .await
    .map_err(ServerError::ModelInService)?;
    let prediction_log = open_prediction_log(prediction_log.as_ref(), &metrics)?;

    let auth = auth::BearerAuth::new(auth_token.as_deref());
    let tls = tls
        .as_ref()
        .map(tls::acceptor)
        .transpose()
        .map_err(ServerError::Tls)?;
    // One state for both protocols: the same model, auth, limits, metrics and log.
    let shared = Arc::new(Shared {
        holder,
        metrics: metrics.clone(),
        auth: auth.clone(),
        predictions: prediction_log.as_ref().map(PredictionLog::sender),
        max_batch,
        max_message_bytes: max_message_bytes(max_batch),
    });
    let grpc = grpc_routes(health_service, &auth)
        .add_service(LeadScoringService::new(shared.clone()))
        .prepare();
    let app = http::Dispatch::new(grpc, http::JsonApi::new(shared, stopped.clone()));

    // The metrics endpoint stops last, after the prediction log is closed, so the final
    // written/dropped counts can still be scraped during the shutdown.
    let (stop_metrics, metrics_stopped) = watch::channel(false);
    let metrics_task = metrics_listener
        .map(|listener| tokio::spawn(metrics::serve(listener, metrics.clone(), metrics_stopped)));
    let watcher_task = tokio::spawn(watching.run(stopped));

    let (signal, drain_started) = stop_serving_on(shutdown, lifecycle, stop.clone());
    let incoming = incoming::Incoming::new(listener, handshake_timeout);
    let serving = serve(transport(), app, incoming, tls, handshake_timeout, signal);
    let result = serve_with_grace(serving, drain_started, shutdown_grace).await;
    let _ = stop.send(true);
    let _ = watcher_task.await;
    close_prediction_log(prediction_log).await;
    let _ = stop_metrics.send(true);
    if let Some(task) = metrics_task {
        let _ = task.await;
    }
    result
}

/// Sets the health of the whole server (`""`) and of `leadscore.v1.LeadScoring`.
async fn set_health(health: &HealthReporter, status: ServingStatus) {
    health.set_service_status("", status).await;
    health.set_service_status(SERVICE_NAME, status).await;
}

fn open_prediction_log(
    config: Option<&PredictionLogConfig>,
    metrics: &Arc<Metrics>,
) -> Result<Option<PredictionLog>, ServerError> {
    config
        .map(|config| {
            PredictionLog::open(config, metrics.clone()).map_err(|source| {
                ServerError::PredictionLog {
                    path: config.path.clone(),
                    source,
                }
            })
        })
        .transpose()
}

/// Writes out the predictions still queued (on a blocking thread: SQLite waits on the disk).
async fn close_prediction_log(log: Option<PredictionLog>) {
    if let Some(log) = log {
        let _ = tokio::task::spawn_blocking(move || log.close(predlog::CLOSE_TIMEOUT)).await;
        tracing::info!("prediction log closed");
    }
}

/// The transport with the server's limits (streams and calls per connection, the per-call
/// timeout), taking HTTP/1.1 as well as HTTP/2: the JSON API's callers (CRM callouts) speak it.
pub fn transport() -> Server {
    Server::builder()
        .accept_http1(true)
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .concurrency_limit_per_connection(CONCURRENCY_PER_CONNECTION)
        .timeout(REQUEST_TIMEOUT)
}

/// Serves `service` on the connections of `incoming` until `signal` completes and the calls in
/// flight finish: with an acceptor, over TLS (offering HTTP/2 and HTTP/1.1; each handshake
/// within `handshake_timeout`), otherwise in the clear.
pub async fn serve<S, B>(
    server: Server,
    service: S,
    incoming: incoming::Incoming,
    tls: Option<TlsAcceptor>,
    handshake_timeout: Duration,
    signal: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error>
where
    S: Service<Request<tonic::body::Body>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<StdError> + Send,
    B: Body<Data = prost::bytes::Bytes> + Send + 'static,
    B::Error: Into<StdError>,
{
    match tls {
        Some(acceptor) => {
            let incoming = tls::TlsIncoming::new(incoming, acceptor, handshake_timeout);
            server
                .serve_with_incoming_shutdown(service, incoming, signal)
                .await
        }
        None => {
            server
                .serve_with_incoming_shutdown(service, incoming, signal)
                .await
        }
    }
}

/// Health and server reflection, with the token on reflection. Reflection in both versions:
/// grpcurl speaks v1, many tools (Python's grpcio-reflection, Postman) only v1alpha; each lists
/// both.
pub fn grpc_routes(health: HealthServer<impl Health>, auth: &auth::BearerAuth) -> Routes {
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let v1 = reflection()
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the descriptor sets compiled by build.rs and tonic are valid");
    let v1alpha = reflection()
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .expect("the descriptor sets compiled by build.rs and tonic are valid");
    Routes::new(health)
        .add_service(InterceptedService::new(v1, auth.clone()))
        .add_service(InterceptedService::new(v1alpha, auth.clone()))
}

/// The shutdown as the transport sees it: `shutdown`, then health `NOT_SERVING`, the reload
/// watcher stopped, and `drain_started` told that the grace period begins.
fn stop_serving_on(
    shutdown: impl Future<Output = ()>,
    lifecycle: Arc<Lifecycle>,
    stop: watch::Sender<bool>,
) -> (impl Future<Output = ()>, oneshot::Receiver<()>) {
    let (draining, drain_started) = oneshot::channel();
    let signal = async move {
        shutdown.await;
        // From here on no reload swaps the model or turns health SERVING again.
        lifecycle.shut_down().await;
        let _ = stop.send(true);
        tracing::info!("shutting down: finishing the calls in flight");
        let _ = draining.send(());
    };
    (signal, drain_started)
}

/// Runs `serving` until it ends, or until `grace` after the drain started, whichever comes
/// first.
async fn serve_with_grace(
    serving: impl Future<Output = Result<(), tonic::transport::Error>>,
    drain_started: oneshot::Receiver<()>,
    grace: Duration,
) -> Result<(), ServerError> {
    tokio::select! {
        result = serving => result.map_err(ServerError::from),
        () = async {
            match drain_started.await {
                Ok(()) => tokio::time::sleep(grace).await,
                Err(_) => std::future::pending().await,
            }
        } => {
            tracing::warn!(grace = ?grace, "calls still in flight after the shutdown grace period; stopping anyway");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_size_limit_follows_the_batch_size_within_bounds() {
        assert_eq!(max_message_bytes(1), 4 << 20);
        assert_eq!(max_message_bytes(DEFAULT_MAX_BATCH), 1000 * 16 * 1024);
        assert_eq!(max_message_bytes(100_000), MAX_MESSAGE_BYTES);
        assert_eq!(max_message_bytes(usize::MAX), MAX_MESSAGE_BYTES);
    }
}
