use crate::server::predlog::PredictionLogConfig;
use crate::server::{self, Config, TlsIdentity};
use anyhow::Context;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Environment variable holding the bearer token (alternative to --auth-token-file).
const TOKEN_ENV: &str = "LEADSCORE_AUTH_TOKEN";

/// Serve the model in service over gRPC (leadscore.v1.LeadScoring, health, reflection) and as
/// JSON over HTTP (POST /v1/leads:score, /openapi.json), on one address.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    leadscore serve\n  \
    leadscore serve --models /srv/models --metrics-addr 127.0.0.1:9464 --prediction-log predictions.sqlite\n  \
    LEADSCORE_AUTH_TOKEN=... leadscore serve --addr 0.0.0.0:50051 --tls-cert cert.pem --tls-key key.pem\n\n\
    The server reloads the model when models/CURRENT changes. SIGTERM or Ctrl-C: health turns \
    NOT_SERVING, calls in flight finish, the prediction log is flushed. See docs/serving.md.")]
pub struct ServeArgs {
    /// Model registry directory (watched for new versions).
    #[arg(long, default_value = "models")]
    models: PathBuf,
    /// Address to serve gRPC and the JSON API on. Anything but loopback needs an auth token or
    /// --insecure.
    #[arg(long, default_value = "127.0.0.1:50051")]
    addr: SocketAddr,
    /// Address to serve Prometheus metrics on (GET /metrics); off when not given.
    #[arg(long)]
    metrics_addr: Option<SocketAddr>,
    /// Seconds between checks of models/CURRENT for a new version.
    #[arg(long, default_value_t = 2.0)]
    reload_interval: f64,
    /// Most leads accepted in one ScoreLeads call (more: INVALID_ARGUMENT). Requests may be
    /// max(4 MiB, 16 KiB × N) large, never more than 64 MiB.
    #[arg(long, default_value_t = server::DEFAULT_MAX_BATCH as u32, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    max_batch: u32,
    /// TLS certificate chain (PEM); requires --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); requires --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// File whose first line is the bearer token clients must send (`authorization: Bearer
    /// TOKEN`). Alternatively set LEADSCORE_AUTH_TOKEN.
    #[arg(long)]
    auth_token_file: Option<PathBuf>,
    /// Allow a non-loopback --addr without an auth token (logs a warning).
    #[arg(long)]
    insecure: bool,
    /// SQLite file to append every served score to (table `predictions`).
    #[arg(long)]
    prediction_log: Option<PathBuf>,
    /// Predictions that may queue for the log writer before new ones are dropped (counted in
    /// leadscore_prediction_log_dropped_total).
    #[arg(long, default_value_t = 65_536)]
    prediction_log_queue: usize,
    /// Seconds calls in flight may take after SIGTERM/Ctrl-C before the server stops anyway.
    #[arg(long, default_value_t = 30.0)]
    shutdown_grace: f64,
}

/// Flags checked and files read: everything `run` needs, before any work starts.
struct Validated {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    config: Config,
    warning: Option<String>,
}

fn seconds(flag: &str, value: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("--{flag} must be a positive number of seconds, not {value}"))
}

/// The certificate chain and key of `--tls-cert` and `--tls-key`, when both are given.
pub fn read_tls_identity(
    cert: Option<&Path>,
    key: Option<&Path>,
) -> anyhow::Result<Option<TlsIdentity>> {
    let (Some(cert), Some(key)) = (cert, key) else {
        return Ok(None);
    };
    Ok(Some(TlsIdentity {
        cert_pem: std::fs::read(cert)
            .with_context(|| format!("reading --tls-cert {}", cert.display()))?,
        key_pem: std::fs::read(key)
            .with_context(|| format!("reading --tls-key {}", key.display()))?,
    }))
}

fn validate(args: ServeArgs) -> anyhow::Result<Validated> {
    let auth_token = match &args.auth_token_file {
        Some(path) => Some(
            server::auth::read_token_file(path)
                .with_context(|| format!("reading --auth-token-file {}", path.display()))?,
        ),
        None => match std::env::var(TOKEN_ENV) {
            Ok(token) if !token.trim().is_empty() => Some(token.trim().to_string()),
            Ok(_) => anyhow::bail!("{TOKEN_ENV} is set but empty"),
            Err(_) => None,
        },
    };
    let tls = read_tls_identity(args.tls_cert.as_deref(), args.tls_key.as_deref())?;
    let warning = server::check_exposure(
        args.addr,
        auth_token.is_some(),
        tls.is_some(),
        args.insecure,
    )
    .map_err(anyhow::Error::msg)?;
    if !args.models.is_dir() {
        anyhow::bail!(
            "--models {}: no such directory (train a model with `leadscore train`, or point \
             --models at a registry)",
            args.models.display()
        );
    }
    let mut config = Config::new(&args.models);
    config.reload_interval = seconds("reload-interval", args.reload_interval)?;
    config.shutdown_grace = seconds("shutdown-grace", args.shutdown_grace)?;
    config.max_batch = args.max_batch as usize;
    config.auth_token = auth_token;
    config.tls = tls;
    config.prediction_log = args.prediction_log.map(|path| {
        let mut log = PredictionLogConfig::new(path);
        log.capacity = args.prediction_log_queue.max(1);
        log
    });
    Ok(Validated {
        addr: args.addr,
        metrics_addr: args.metrics_addr,
        config,
        warning,
    })
}

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let Validated {
        addr,
        metrics_addr,
        mut config,
        warning,
    } = validate(args)?;
    if let Some(warning) = warning {
        tracing::warn!("{warning}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding --addr {addr}"))?;
        // The addresses logged are the ones bound, so with port 0 (the system picks a free
        // port) the log says which port to call.
        let bound = listener.local_addr().unwrap_or(addr);
        if let Some(metrics_addr) = metrics_addr {
            let metrics_listener = tokio::net::TcpListener::bind(metrics_addr)
                .await
                .with_context(|| format!("binding --metrics-addr {metrics_addr}"))?;
            let bound = metrics_listener.local_addr().unwrap_or(metrics_addr);
            tracing::info!("metrics on http://{bound}/metrics");
            config.metrics_listener = Some(metrics_listener);
        }
        tracing::info!(
            tls = config.tls.is_some(),
            auth = config.auth_token.is_some(),
            models = %config.models.display(),
            "leadscore.v1.LeadScoring (gRPC) and the JSON API (http://{bound}/openapi.json) \
             listening on {bound}"
        );
        server::run(listener, config, shutdown_signal()).await?;
        tracing::info!("stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
