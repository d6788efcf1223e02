use super::{print, split_list};
use crate::server::bench::{BenchConfig, Measurement, measure, workload};
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Load-test a running server (closed loop), and the no-op ceiling in the same run.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example (2 cores: server on core 0, client on core 1):\n  \
    taskset -c 0 leadscore serve --models models &\n  \
    taskset -c 0 leadscore serve --noop --addr 127.0.0.1:50052 &\n  \
    taskset -c 1 leadscore bench --data leads.csv --id lead_id --exclude converted \\\n    \
      --concurrency 64 --ceiling http://127.0.0.1:50052\n\n\
    Requests are encoded before the clock starts; answers are not decoded. See BENCHMARKS.md."
)]
pub struct BenchArgs {
    /// Server under test.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    target: String,
    /// No-op ceiling server (`leadscore serve --noop`), measured after the target.
    #[arg(long)]
    ceiling: Option<String>,
    /// CSV of leads to send (every column except --id and --exclude becomes a field).
    #[arg(long)]
    data: PathBuf,
    /// Column sent as lead_id.
    #[arg(long)]
    id: Option<String>,
    /// Columns not sent (comma-separated or repeated), e.g. the outcome.
    #[arg(long)]
    exclude: Vec<String>,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    concurrency: u32,
    /// HTTP/2 connections to spread the calls over.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    connections: u32,
    /// Leads per call with ScoreLeads; without it, one ScoreLead per call.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    batch: Option<u32>,
    /// Top factors asked for per lead.
    #[arg(long, default_value_t = 3)]
    explain: u32,
    /// Seconds measured, per server.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of warm-up before measuring, per server.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
}

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let seconds = |flag: &str, v: f64| {
        Duration::try_from_secs_f64(v)
            .ok()
            .with_context(|| format!("--{flag} must be a number of seconds, not {v}"))
    };
    let config = BenchConfig {
        target: args.target,
        ceiling: args.ceiling,
        data: args.data,
        id_column: args.id,
        exclude: split_list(&args.exclude),
        concurrency: args.concurrency as usize,
        connections: args.connections as usize,
        batch: args.batch.map(|b| b as usize),
        explain: args.explain,
        warmup: seconds("warmup", args.warmup)?,
        duration: seconds("duration", args.duration)?,
        auth_token: std::env::var("LEADSCORE_AUTH_TOKEN").ok(),
    };
    let work = Arc::new(workload(&config)?);
    let method = match config.batch {
        None => "ScoreLead".to_string(),
        Some(n) => format!("ScoreLeads × {n}"),
    };
    eprintln!(
        "{method}, concurrency {}, {} connection(s), explain {}, {} distinct requests of ~{} \
         bytes, {} fields per lead; {:.0} s warm-up + {:.0} s per server",
        config.concurrency,
        config.connections,
        config.explain,
        work.requests.len(),
        work.request_bytes,
        work.fields,
        config.warmup.as_secs_f64(),
        config.duration.as_secs_f64()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (target, ceiling) = runtime.block_on(async {
        let target = measure(&config.target, work.clone(), &config).await?;
        let ceiling = match &config.ceiling {
            Some(address) => Some(measure(address, work.clone(), &config).await?),
            None => None,
        };
        anyhow::Ok((target, ceiling))
    })?;
    let mut out = String::new();
    outln!(
        out,
        "{:<8} {:>30} {:>11} {:>11} {:>9} {:>9} {:>7}",
        "server",
        "address",
        "calls/s",
        "leads/s",
        "p50 ms",
        "p99 ms",
        "errors"
    );
    let line = |out: &mut String, name: &str, m: &Measurement| {
        outln!(
            out,
            "{:<8} {:>30} {:>11.0} {:>11.0} {:>9.3} {:>9.3} {:>7}",
            name,
            m.target,
            m.calls_per_second(),
            m.leads_per_second(),
            m.p50.as_secs_f64() * 1e3,
            m.p99.as_secs_f64() * 1e3,
            m.errors
        );
    };
    line(&mut out, "leadscore", &target);
    if let Some(ceiling) = &ceiling {
        line(&mut out, "ceiling", ceiling);
        outln!(
            out,
            "throughput: {:.1}% of the no-op ceiling",
            100.0 * target.calls_per_second() / ceiling.calls_per_second()
        );
    }
    print(&out)?;
    for m in std::iter::once(&target).chain(&ceiling) {
        if let Some(error) = &m.first_error {
            anyhow::bail!("{} calls to {} failed; first: {error}", m.errors, m.target);
        }
    }
    Ok(ExitCode::SUCCESS)
}
