//! `leadscore-bench`: the serving benchmark's tools, kept out of the product.
//!
//! # Layout
//! - [`load`] is `leadscore-bench load`: flags, rounds and the report.
//! - [`generator`] is the closed-loop load generator behind it.
//! - [`json`] puts the JSON API under the same load (`--json`).
//! - [`ceiling`] is `leadscore-bench ceiling`: the no-op `LeadScoring` server the real one is
//!   measured against.
//!
//! It is a separate binary of the `leadscore` package, not part of the library: the production
//! `leadscore serve` has no no-op mode and the library no load generator. It uses the library's
//! public API (the generated types in `leadscore::server::pb`, the server's transport) like any
//! other client would.

// The library's `outln!` and `errln!` (the writers that cannot panic), for every module here.
#[macro_use]
extern crate leadscore;

mod ceiling;
mod generator;
mod json;
mod load;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "leadscore-bench",
    version,
    about = "Serving benchmark for leadscore: a closed-loop gRPC load generator, and the no-op \
             server it measures the real one against.",
    after_help = "Examples (2 cores: servers on core 0, client on core 1):\n  \
        taskset -c 0 leadscore serve --models models &\n  \
        taskset -c 0 leadscore-bench ceiling --addr 127.0.0.1:50052 &\n  \
        taskset -c 1 leadscore-bench load --data leads.csv --id lead_id --exclude converted \\\n    \
          --concurrency 64 --ceiling http://127.0.0.1:50052\n\n\
        Exit codes: 0 success, 1 error (bad input, a server unreachable, calls failed), 2 usage \
        error. Set RUST_LOG (e.g. RUST_LOG=debug) for more detailed logs. See BENCHMARKS.md."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Load(load::LoadArgs),
    Ceiling(ceiling::CeilingArgs),
}

fn main() -> ExitCode {
    leadscore::cli::init_logging();
    leadscore::cli::exit_code(match Cli::parse().command {
        Command::Load(args) => load::run(args),
        Command::Ceiling(args) => ceiling::run(args),
    })
}
