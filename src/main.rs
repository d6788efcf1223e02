use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
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
    leadscore::cli::run(leadscore::cli::Cli::parse())
}
