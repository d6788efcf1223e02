use crate::data::read_csv;
use crate::fsutil::AtomicFile;
use crate::registry::Registry;
use crate::score::{score_table, write_csv};
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;

/// Batch-score a CSV of leads: the reps' call list, highest probability first.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    leadscore score --data new_leads.csv --top 20 --explain 3\n  \
    leadscore score --data new_leads.csv --out scored.csv --version 20261123-101530-ab12cd")]
pub struct ScoreArgs {
    /// CSV of leads (same columns as training; the outcome column, if present, is ignored).
    #[arg(long)]
    data: PathBuf,
    /// Model registry directory.
    #[arg(long, default_value = "models")]
    models: PathBuf,
    /// Model version to use (default: the one in service).
    #[arg(long)]
    version: Option<String>,
    /// Lead id column (default: the model's id column, else the line number).
    #[arg(long)]
    id: Option<String>,
    /// Output CSV (default: standard output). Written atomically.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only the N highest-scored leads.
    #[arg(long)]
    top: Option<usize>,
    /// Top K positive and K negative factors per lead.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=50))]
    explain: u32,
}

pub fn run(args: ScoreArgs) -> anyhow::Result<ExitCode> {
    let registry = Registry::new(&args.models);
    let model = registry.load_or_current(args.version.as_deref())?;
    let table = read_csv(&args.data)?;
    let explain = args.explain as usize;
    let mut scored = score_table(&model, &table, args.id.as_deref(), explain)?;
    for column in &scored.absent_columns {
        errln!(
            "warning: column {column:?} is not in {}: imputed as missing for every lead",
            args.data.display()
        );
    }
    if let Some(top) = args.top {
        scored.rows.truncate(top);
    }
    match &args.out {
        Some(path) => {
            // Every step names the file asked for (creating the temporary file beside it
            // would otherwise name only its directory).
            let written: anyhow::Result<()> = (|| {
                let mut file = AtomicFile::create(path)?;
                write_csv(&scored.rows, model.version(), explain, &mut file)?;
                file.commit()?;
                Ok(())
            })();
            written.with_context(|| format!("writing {}", path.display()))?;
            errln!(
                "scored {} leads with model {} → {}",
                table.rows(),
                model.version(),
                path.display()
            );
        }
        None => {
            write_csv(
                &scored.rows,
                model.version(),
                explain,
                std::io::stdout().lock(),
            )
            .context("writing to standard output")?;
            errln!(
                "scored {} leads with model {}",
                table.rows(),
                model.version()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
