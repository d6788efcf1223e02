use crate::sample::{EXPORT_DATE, SampleOptions, write};
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;

/// Write realistic synthetic leads drawn from known true coefficients.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    leadscore sample --rows 20000 --seed 7 --out leads.csv\n  \
    leadscore sample --rows 20000 --seed 7 --out leads.csv --closed-dates --truth truth.csv\n  \
    leadscore sample --rows 50000 --out curved.csv --curved\n\n\
With --closed-dates, leads close in time (larger companies later, as B2B cycles do): a closed_at \
column is added, and leads not yet decided on 2025-12-31 (the export date) are open, with an \
empty outcome. The leads and whether each is ever won are the same as without it.")]
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
    /// Add a closed_at column with realistic delays; leads undecided at the export date stay
    /// open (empty outcome), for `train --horizon`.
    #[arg(long)]
    closed_dates: bool,
    /// Also write each lead's true P(ever won) to this CSV (lead_id,company_size,p_won): with
    /// the closed dates' delays it gives the true P(won within H days) at any age.
    #[arg(long, value_name = "FILE")]
    truth: Option<PathBuf>,
    /// Give days_since_last_touch a curved effect (best near 12 days, fresher and older
    /// leads less) instead of a straight line: same leads, other outcomes; for trying `train --shapes`.
    #[arg(long)]
    curved: bool,
}

pub fn run(args: SampleArgs) -> anyhow::Result<ExitCode> {
    let options = SampleOptions {
        rows: args.rows as usize,
        seed: args.seed,
        closed_dates: args.closed_dates,
        truth: args.truth.clone(),
        curved: args.curved,
    };
    let summary =
        write(&args.out, &options).with_context(|| format!("writing {}", args.out.display()))?;
    errln!(
        "wrote {} leads to {} ({} won, closure rate {:.1}%)",
        summary.rows,
        args.out.display(),
        summary.wins,
        summary.closure_rate * 100.0
    );
    if let Some(open) = summary.open {
        let (y, m, d) = EXPORT_DATE;
        errln!("{open} of them still open on {y}-{m:02}-{d:02}, the export date");
    }
    if let Some(truth) = &args.truth {
        errln!("true P(ever won) of each lead in {}", truth.display());
    }
    Ok(ExitCode::SUCCESS)
}
