use crate::data::read_leads;
use crate::fsutil::AtomicFile;
use crate::registry::Registry;
use crate::score::parquet::write_parquet;
use crate::score::{score_table_at, write_csv};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Batch-score a CSV or Parquet file of leads: the reps' call list, highest probability first.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    leadscore score --data new_leads.csv --top 20 --explain 3\n  \
    leadscore score --data new_leads.csv --out scored.csv --version 20261123-101530-ab12cd\n  \
    leadscore score --data new_leads.parquet --out scored.parquet\n  \
    leadscore score --data open_leads.csv --as-of 2026-01-31 --top 50\n  \
    PGPASSWORD=… leadscore score --data postgres://analyst@db/crm --query \"SELECT * FROM open_leads\" \\\n      \
    --out postgres://analyst@db/crm --table lead_scores\n\n\
A model trained with --horizon and a period ages its scores: each lead's age is its age_days \
column if filled, else the days from its created date (the model's created-date column) to \
--as-of (default: today, UTC); a lead with neither is scored as new (age 0), with a warning.")]
pub struct ScoreArgs {
    /// CSV or Parquet file of leads (same columns as training; the outcome column, if present,
    /// is ignored; Parquet is recognised by its content, whatever the name), or a Postgres URL
    /// with --query.
    #[arg(long)]
    data: PathBuf,
    /// With --data postgres://[user@]host[:port]/db: the rows to read (one SELECT; read-only).
    /// The password comes from PGPASSWORD or ~/.pgpass, never the URL.
    #[arg(long, value_name = "SQL")]
    query: Option<String>,
    /// Model registry directory.
    #[arg(long, default_value = "models")]
    models: PathBuf,
    /// Model version to use (default: the one in service).
    #[arg(long)]
    version: Option<String>,
    /// Lead id column (default: the model's id column, else the line number).
    #[arg(long)]
    id: Option<String>,
    /// Output file (default: standard output), written atomically: CSV, or Parquet when the
    /// name ends in .parquet or .pq (or with --format parquet); or a Postgres URL with --table:
    /// lead_id, probability, score, grade, model_version and scored_at rows, all written in one
    /// transaction or none.
    #[arg(long)]
    out: Option<PathBuf>,
    /// With --out postgres://…: the table to add the scores to (created if absent).
    #[arg(long, value_name = "NAME")]
    table: Option<String>,
    /// Output format; default: from the --out name (.parquet or .pq: Parquet), else CSV.
    #[arg(long, value_enum)]
    format: Option<OutputFormat>,
    /// Only the N highest-scored leads.
    #[arg(long)]
    top: Option<usize>,
    /// Top K positive and K negative factors per lead.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=50))]
    explain: u32,
    /// The day leads' ages are counted to (YYYY-MM-DD), for a model that ages its scores;
    /// default: today (UTC). Fix it for reproducible scores.
    #[arg(long, value_name = "DATE", value_parser = super::train::as_of_date)]
    as_of: Option<chrono::NaiveDate>,
}

/// What `score` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Csv,
    Parquet,
}

impl OutputFormat {
    /// `--format`, else Parquet for an `--out` named `*.parquet` or `*.pq`, else CSV.
    fn choose(format: Option<OutputFormat>, out: Option<&Path>) -> OutputFormat {
        let parquet_name = out
            .and_then(Path::extension)
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("parquet") || e.eq_ignore_ascii_case("pq"));
        format.unwrap_or(if parquet_name {
            OutputFormat::Parquet
        } else {
            OutputFormat::Csv
        })
    }

    fn write(
        self,
        rows: &[crate::score::ScoredRow],
        version: &str,
        explain: usize,
        out: impl std::io::Write + Send,
    ) -> anyhow::Result<()> {
        match self {
            OutputFormat::Csv => write_csv(rows, version, explain, out)?,
            OutputFormat::Parquet => write_parquet(rows, version, explain, out)?,
        }
        Ok(())
    }
}

pub fn run(args: ScoreArgs) -> anyhow::Result<ExitCode> {
    let registry = Registry::new(&args.models);
    let model = registry.load_or_current(args.version.as_deref())?;
    crate::postgres::refuse_password(&args.data)?;
    if let Some(out) = &args.out {
        crate::postgres::refuse_password(out)?;
    }
    let out_url = args.out.as_deref().and_then(crate::postgres::url_of);
    match (out_url, &args.table) {
        (Some(url), None) => anyhow::bail!("--out {url}: name the table to write with --table"),
        (None, Some(_)) => anyhow::bail!("--table names a table of --out postgres://host/db"),
        _ => {}
    }
    let table = read_leads(&args.data, args.query.as_deref())?;
    let explain = args.explain as usize;
    let today = args
        .as_of
        .unwrap_or_else(|| chrono::Utc::now().date_naive());
    let mut scored = score_table_at(&model, &table, args.id.as_deref(), explain, today)?;
    if let Some(created) = model.created_column() {
        let has = |name: &str| table.headers.iter().any(|h| crate::names::same(h, name));
        if !has(created) && !has(crate::aging::AGE_FIELD) {
            errln!(
                "warning: the model's probability depends on a lead's age, but {} has neither \
                 column {created:?} nor {:?}: every lead is scored as new (age 0)",
                args.data.display(),
                crate::aging::AGE_FIELD
            );
        }
    }
    for column in &scored.absent_columns {
        errln!(
            "warning: column {column:?} is not in {}: imputed as missing for every lead",
            args.data.display()
        );
    }
    if let Some(top) = args.top {
        scored.rows.truncate(top);
    }
    if let (Some(url), Some(name)) = (out_url, &args.table) {
        let written = crate::postgres::write_scores(url, name, &scored.rows, model.version())?;
        errln!(
            "scored {} leads with model {} → {url}, table {name} ({written} rows)",
            table.rows(),
            model.version(),
        );
        return Ok(ExitCode::SUCCESS);
    }
    let format = OutputFormat::choose(args.format, args.out.as_deref());
    match &args.out {
        Some(path) => {
            // Every step names the file asked for (creating the temporary file beside it
            // would otherwise name only its directory).
            let written: anyhow::Result<()> = (|| {
                let mut file = AtomicFile::create(path)?;
                format.write(&scored.rows, model.version(), explain, &mut file)?;
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
            format
                .write(&scored.rows, model.version(), explain, std::io::stdout())
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
