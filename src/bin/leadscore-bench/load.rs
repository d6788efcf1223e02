//! `leadscore-bench load`: flags, rounds alternating target and ceiling, and the report.

use crate::generator::{BenchConfig, Measurement, Workload, measure, workload};
use anyhow::Context;
use leadscore::cli::{print, split_list};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Load-test a running server (closed loop), and the no-op ceiling in the same run.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example (2 cores: server on core 0, client on core 1):\n  \
    taskset -c 0 leadscore serve --models models &\n  \
    taskset -c 0 leadscore-bench ceiling --addr 127.0.0.1:50052 &\n  \
    taskset -c 1 leadscore-bench load --data leads.csv --id lead_id --exclude converted \\\n    \
      --concurrency 64 --ceiling http://127.0.0.1:50052\n\n\
    Requests are encoded before the clock starts; answers are not decoded. See BENCHMARKS.md."
)]
pub struct LoadArgs {
    /// Server under test.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    target: String,
    /// No-op ceiling server (`leadscore-bench ceiling`), measured after the target.
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
    /// Seconds of warm-up before measuring, per server and round.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Rounds, alternating target and ceiling so both see the same background load; the
    /// summary gives the median of each.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    rounds: u32,
    /// Process ids of the target and the ceiling server on this machine (`PID[,PID]`): the
    /// report then adds each server's CPU time per call, which background load on a shared
    /// machine does not distort (Linux).
    #[arg(long, value_delimiter = ',', num_args = 1..=2)]
    server_pids: Vec<u32>,
    /// Also measure the JSON API on the target's address with the same leads (HTTP/1.1, one
    /// connection per call in flight), after gRPC in each round; the report gives its
    /// throughput as a share of gRPC's.
    #[arg(long)]
    json: bool,
}

/// One round: the target's gRPC figures, its JSON figures (with `--json`), then the ceiling's
/// (when there is one).
struct Round {
    grpc: Measurement,
    json: Option<Measurement>,
    ceiling: Option<Measurement>,
}

pub fn run(args: LoadArgs) -> anyhow::Result<ExitCode> {
    let config = config(&args)?;
    let work = Arc::new(workload(&config)?);
    errln!("{}", describe(&config, &work));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let rounds = runtime.block_on(measure_rounds(&config, work, &args))?;
    print(&report(&rounds))?;
    for m in rounds
        .iter()
        .flat_map(|r| std::iter::once(&r.grpc).chain(&r.json).chain(&r.ceiling))
    {
        if let Some(error) = &m.first_error {
            anyhow::bail!("{} calls to {} failed; first: {error}", m.errors, m.target);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn config(args: &LoadArgs) -> anyhow::Result<BenchConfig> {
    let seconds = |flag: &str, v: f64| {
        Duration::try_from_secs_f64(v)
            .ok()
            .with_context(|| format!("--{flag} must be a number of seconds, not {v}"))
    };
    Ok(BenchConfig {
        target: args.target.clone(),
        ceiling: args.ceiling.clone(),
        data: args.data.clone(),
        id_column: args.id.clone(),
        exclude: split_list(&args.exclude),
        concurrency: args.concurrency as usize,
        connections: args.connections as usize,
        batch: args.batch.map(|b| b as usize),
        explain: args.explain,
        warmup: seconds("warmup", args.warmup)?,
        duration: seconds("duration", args.duration)?,
        auth_token: std::env::var("LEADSCORE_AUTH_TOKEN").ok(),
    })
}

/// The line saying what is about to be measured.
fn describe(config: &BenchConfig, work: &Workload) -> String {
    let method = match config.batch {
        None => "ScoreLead".to_string(),
        Some(n) => format!("ScoreLeads × {n}"),
    };
    format!(
        "{method}, concurrency {}, {} connection(s), explain {}, {} distinct requests of ~{} \
         bytes, {} fields per lead; {:.0} s warm-up + {:.0} s per server and round; target {}{}",
        config.concurrency,
        config.connections,
        config.explain,
        work.requests.len(),
        work.request_bytes,
        work.fields,
        config.warmup.as_secs_f64(),
        config.duration.as_secs_f64(),
        config.target,
        config
            .ceiling
            .as_ref()
            .map_or(String::new(), |c| format!(", ceiling {c}"))
    )
}

async fn measure_rounds(
    config: &BenchConfig,
    work: Arc<Workload>,
    args: &LoadArgs,
) -> anyhow::Result<Vec<Round>> {
    let pid = |i: usize| args.server_pids.get(i).copied();
    let mut rounds = Vec::new();
    for _ in 0..args.rounds {
        let grpc = measure(&config.target, work.clone(), config, pid(0)).await?;
        let json = if args.json {
            Some(crate::json::measure(&config.target, work.clone(), config, pid(0)).await?)
        } else {
            None
        };
        let ceiling = match &config.ceiling {
            Some(address) => Some(measure(address, work.clone(), config, pid(1)).await?),
            None => None,
        };
        rounds.push(Round {
            grpc,
            json,
            ceiling,
        });
    }
    Ok(rounds)
}

/// The round with the median throughput (its latencies are reported with it).
fn median<'a>(measurements: &[&'a Measurement]) -> &'a Measurement {
    let mut sorted = measurements.to_vec();
    sorted.sort_by(|a, b| a.calls_per_second().total_cmp(&b.calls_per_second()));
    sorted[sorted.len() / 2]
}

/// One line of the table.
fn line(out: &mut String, round: &str, name: &str, m: &Measurement) {
    outln!(
        out,
        "{:<6} {:<10} {:>11.0} {:>11.0} {:>9.3} {:>9.3} {:>7} {:>12}",
        round,
        name,
        m.calls_per_second(),
        m.leads_per_second(),
        m.p50.as_secs_f64() * 1e3,
        m.p99.as_secs_f64() * 1e3,
        m.errors,
        m.calls_per_cpu_second()
            .map_or("-".to_string(), |c| format!("{:.1}", 1e6 / c))
    );
}

/// The table of rounds and medians, then the target's share of the ceiling.
fn report(rounds: &[Round]) -> String {
    let mut out = String::new();
    outln!(
        out,
        "{:<6} {:<10} {:>11} {:>11} {:>9} {:>9} {:>7} {:>12}",
        "round",
        "server",
        "calls/s",
        "leads/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "cpu µs/call"
    );
    for (i, round) in rounds.iter().enumerate() {
        line(&mut out, &(i + 1).to_string(), "leadscore", &round.grpc);
        if let Some(json) = &round.json {
            line(&mut out, &(i + 1).to_string(), "json", json);
        }
        if let Some(ceiling) = &round.ceiling {
            line(&mut out, &(i + 1).to_string(), "ceiling", ceiling);
        }
    }
    let targets: Vec<&Measurement> = rounds.iter().map(|r| &r.grpc).collect();
    let jsons: Vec<&Measurement> = rounds.iter().filter_map(|r| r.json.as_ref()).collect();
    let ceilings: Vec<&Measurement> = rounds.iter().filter_map(|r| r.ceiling.as_ref()).collect();
    let target = median(&targets);
    line(&mut out, "median", "leadscore", target);
    if !jsons.is_empty() {
        let json = median(&jsons);
        line(&mut out, "median", "json", json);
        outln!(
            out,
            "JSON throughput: {:.1}% of gRPC's (medians; per round: {})",
            100.0 * json.calls_per_second() / target.calls_per_second(),
            rounds
                .iter()
                .filter_map(|r| r.json.as_ref().map(|j| format!(
                    "{:.1}%",
                    100.0 * j.calls_per_second() / r.grpc.calls_per_second()
                )))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !ceilings.is_empty() {
        let ceiling = median(&ceilings);
        line(&mut out, "median", "ceiling", ceiling);
        outln!(
            out,
            "throughput: {:.1}% of the no-op ceiling (medians; per round: {})",
            100.0 * target.calls_per_second() / ceiling.calls_per_second(),
            rounds
                .iter()
                .filter_map(|r| r.ceiling.as_ref().map(|c| format!(
                    "{:.1}%",
                    100.0 * r.grpc.calls_per_second() / c.calls_per_second()
                )))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let cpu = |ms: &[&Measurement]| -> Option<f64> {
        if ms.is_empty() {
            return None;
        }
        let (calls, seconds) = ms.iter().try_fold((0u64, 0f64), |(c, s), m| {
            Some((c + m.calls, s + m.server_cpu?.as_secs_f64()))
        })?;
        Some(calls as f64 / seconds.max(1e-9))
    };
    if let (Some(t), Some(j)) = (cpu(&targets), cpu(&jsons)) {
        outln!(
            out,
            "server CPU per call over all rounds: gRPC {:.1} µs, JSON {:.1} µs: on a core of its \
             own the JSON API would reach {:.1}% of gRPC's throughput",
            1e6 / t,
            1e6 / j,
            100.0 * j / t
        );
    }
    if let (Some(t), Some(c)) = (cpu(&targets), cpu(&ceilings)) {
        outln!(
            out,
            "server CPU per call over all rounds: leadscore {:.1} µs, ceiling {:.1} µs: on a core \
             of its own leadscore would reach {:.1}% of the ceiling's throughput",
            1e6 / t,
            1e6 / c,
            100.0 * t / c
        );
    }
    out
}
