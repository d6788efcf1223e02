//! `leadscore-bench ceiling`: the no-op `LeadScoring`, the throughput ceiling `leadscore-bench
//! load` compares the real server with.
//!
//! It is the generated tonic server, so prost decodes each request in full (every lead's
//! `fields` map) before the handler returns a constant. The transport is the real server's
//! ([`leadscore::server::transport`] and [`leadscore::server::serve`]: HTTP/1.1 and HTTP/2, the
//! same stream, concurrency and time limits, the same TLS and handshake deadline on new
//! connections), with health (always `SERVING`) and reflection beside it. There is no auth: the
//! answers carry nothing.

use anyhow::Context;
use leadscore::server::auth::BearerAuth;
use leadscore::server::incoming::Incoming;
use leadscore::server::pb;
use leadscore::server::pb::lead_scoring_server::{LeadScoring, LeadScoringServer};
use leadscore::server::{self, HANDSHAKE_TIMEOUT, TlsIdentity};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use tonic::{Request, Response, Status};

/// Serve the no-op ceiling: decode each request with prost, return a constant (needs no model).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    leadscore-bench ceiling\n  \
    taskset -c 0 leadscore-bench ceiling --addr 127.0.0.1:50052 &\n\n\
    Stops on SIGTERM or Ctrl-C. See BENCHMARKS.md.")]
pub struct CeilingArgs {
    /// Address to serve gRPC on. Anything but loopback needs --insecure.
    #[arg(long, default_value = "127.0.0.1:50052")]
    addr: SocketAddr,
    /// TLS certificate chain (PEM), to measure the ceiling over TLS; requires --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM); requires --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Allow a non-loopback --addr (the ceiling has no auth; logs a warning).
    #[arg(long)]
    insecure: bool,
}

pub fn run(args: CeilingArgs) -> anyhow::Result<ExitCode> {
    let tls = leadscore::cli::read_tls_identity(args.tls_cert.as_deref(), args.tls_key.as_deref())?;
    if !args.addr.ip().is_loopback() {
        anyhow::ensure!(
            args.insecure,
            "{} is reachable from other machines and the ceiling has no auth; pass --insecure to \
             serve it anyway",
            args.addr
        );
        tracing::warn!(
            "serving the no-op ceiling on {} WITHOUT authentication (--insecure)",
            args.addr
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args.addr, tls))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(addr: SocketAddr, tls: Option<TlsIdentity>) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding --addr {addr}"))?;
    // The address logged is the one bound: with port 0 the log says which port to call.
    let bound = listener.local_addr().unwrap_or(addr);
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<LeadScoringServer<Noop>>().await;
    let tls = tls
        .as_ref()
        .map(server::tls::acceptor)
        .transpose()
        .context("TLS configuration (--tls-cert/--tls-key)")?;
    // Health and reflection as the real server has them (no token: the ceiling has no auth).
    let routes = server::grpc_routes(health_service, &BearerAuth::default())
        .add_service(LeadScoringServer::new(Noop))
        .prepare();
    tracing::info!(
        tls = tls.is_some(),
        "no-op ceiling (leadscore.v1.LeadScoring) listening on {bound}"
    );
    let incoming = Incoming::new(listener, HANDSHAKE_TIMEOUT);
    server::serve(
        server::transport(),
        routes,
        incoming,
        tls,
        HANDSHAKE_TIMEOUT,
        leadscore::cli::shutdown_signal(),
    )
    .await?;
    tracing::info!("stopped");
    Ok(())
}

/// Returns empty answers, after prost decoded the request.
#[derive(Debug, Default)]
struct Noop;

#[tonic::async_trait]
impl LeadScoring for Noop {
    async fn score_lead(
        &self,
        request: Request<pb::ScoreLeadRequest>,
    ) -> Result<Response<pb::ScoreLeadResponse>, Status> {
        drop(request);
        Ok(Response::new(pb::ScoreLeadResponse::default()))
    }

    async fn score_leads(
        &self,
        request: Request<pb::ScoreLeadsRequest>,
    ) -> Result<Response<pb::ScoreLeadsResponse>, Status> {
        drop(request);
        Ok(Response::new(pb::ScoreLeadsResponse::default()))
    }

    async fn get_model_info(
        &self,
        _request: Request<pb::GetModelInfoRequest>,
    ) -> Result<Response<pb::ModelInfo>, Status> {
        Ok(Response::new(pb::ModelInfo::default()))
    }
}
