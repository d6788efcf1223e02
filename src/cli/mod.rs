//! The `leadscore` command line: flags are parsed here (clap) and handed to the library.
//!
//! Exit codes: 0 success, 1 error (bad input, I/O), 2 usage error (clap), 3 a quality gate
//! failed (`evaluate`).

/// `writeln!` into a `String` report (which cannot fail); the report is printed with [`print`].
#[macro_export]
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out, $($arg)*);
    }};
}

/// `eprintln!` that cannot panic. `eprintln!` panics when standard error cannot be written (a
/// file on a full disk, a closed pipe), which would turn the command's exit code (1, or 3 for a
/// failed gate) into a panic's 101; a message that cannot be written is dropped instead.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod evaluate;
mod models;
mod sample;
mod score;
mod serve;
mod train;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Exit code when a quality gate fails (distinct from errors).
pub const EXIT_GATE_FAILED: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "leadscore",
    version,
    about = "Lead scoring: learn closure probabilities from CRM history, serve them over gRPC, \
             and check them against realized closure rates.",
    after_help = "Examples:\n  \
        leadscore sample --rows 20000 --seed 7 --out leads.csv\n  \
        leadscore train --data leads.csv --target converted --id lead_id --date created_at\n  \
        leadscore score --data leads.csv --top 20 --explain 3\n  \
        leadscore models list\n  \
        leadscore serve\n\n\
        Set RUST_LOG (e.g. RUST_LOG=debug) for more detailed logs."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Sample(sample::SampleArgs),
    Train(train::TrainArgs),
    Score(score::ScoreArgs),
    Evaluate(evaluate::EvaluateArgs),
    #[command(subcommand)]
    Models(models::ModelsCommand),
    Serve(serve::ServeArgs),
}

pub use serve::{read_tls_identity, shutdown_signal};

/// Installs the `tracing` subscriber: standard error, level from `RUST_LOG` (default `info`).
/// Called once, from `main` (of `leadscore` and of `leadscore-bench`).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // A log line that cannot be written (standard error is a file on a full disk) is lost;
        // reporting it with `eprintln!`, the default, would panic the thread that logged, e.g.
        // a request handler or the prediction-log writer.
        .log_internal_errors(false)
        .init();
}

/// Runs a parsed command line; errors are printed with their whole cause chain.
pub fn run(cli: Cli) -> ExitCode {
    exit_code(match cli.command {
        Command::Sample(args) => sample::run(args),
        Command::Train(args) => train::run(args),
        Command::Score(args) => score::run(args),
        Command::Evaluate(args) => evaluate::run(args),
        Command::Models(cmd) => models::run(cmd),
        Command::Serve(args) => serve::run(args),
    })
}

/// A command's exit code; an error is printed first, with its whole cause chain (1).
pub fn exit_code(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        // The reader went away (`leadscore score ... | head`): not an error.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            errln!("error: {error}");
            for cause in error.chain().skip(1) {
                errln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Splits comma-separated list flags (`--drop "a,b" --drop c`).
pub fn split_list(items: &[String]) -> Vec<String> {
    items
        .iter()
        .flat_map(|s| s.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Writes to standard output; a closed pipe ends the command quietly (see [`exit_code`]).
pub fn print(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || cause.downcast_ref::<csv::Error>().is_some_and(|e| {
                matches!(e.kind(), csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe)
            })
    })
}
