use crate::sample::write_sample;
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;

/// Write realistic synthetic leads drawn from known true coefficients.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  leadscore sample --rows 20000 --seed 7 --out leads.csv")]
pub struct SampleArgs {
    /// Number of leads (at most 10 million: they are generated in memory, ~100 bytes each).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    rows: u64,
    /// Random seed: the same seed writes the same file.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output CSV file (written atomically).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: SampleArgs) -> anyhow::Result<ExitCode> {
    let summary = write_sample(&args.out, args.rows as usize, args.seed)
        .with_context(|| format!("writing {}", args.out.display()))?;
    errln!(
        "wrote {} leads to {} ({} won, closure rate {:.1}%)",
        summary.rows,
        args.out.display(),
        summary.wins,
        summary.closure_rate * 100.0
    );
    Ok(ExitCode::SUCCESS)
}
