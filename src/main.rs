use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    leadscore::cli::init_logging();
    leadscore::cli::run(leadscore::cli::Cli::parse())
}
