use super::print;
use crate::evaluate::report_html;
use crate::fsutil::write_atomic;
use crate::registry::Registry;
use crate::warehouse::{AgeSource, Dialect, SqlOptions, export_sql};
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;

/// The model registry: list, inspect, promote and roll back versions.
#[derive(Debug, clap::Subcommand)]
#[command(after_help = "Examples:\n  \
    leadscore models list\n  \
    leadscore models show\n  \
    leadscore models show --html model.html\n  \
    leadscore models promote 20261123-101530-ab12cd\n  \
    leadscore models rollback\n  \
    leadscore models export --sql --dialect bigquery --table crm.leads --out score_leads.sql")]
pub enum ModelsCommand {
    /// List versions; `*` marks the one in service; `question` is what each probability
    /// answers (ever closes, or closes within a horizon).
    List(Dir),
    /// Print a version's artifact (default: the one in service) as JSON; what its probability
    /// means (`horizon`) goes to standard error in words.
    Show {
        version: Option<String>,
        /// Also write a picture of the model to FILE: a self-contained HTML page with, per
        /// attribute, its effect on the log-odds (numbers: across the training range, beside
        /// the training closure rate per bin; categories and yes/no: per value).
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        #[command(flatten)]
        dir: Dir,
    },
    /// Put a version in service.
    Promote {
        version: String,
        #[command(flatten)]
        dir: Dir,
    },
    /// Put the previously promoted version back in service.
    Rollback(Dir),
    /// Write a version (default: the one in service) as SQL: a SELECT over a table of leads
    /// returning the lead id, probability, score and grade, exactly as `leadscore score`
    /// computes them (docs/warehouse.md).
    Export(ExportArgs),
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    leadscore models export --sql --table crm.leads > score_leads.sql\n  \
    leadscore models export --sql --dialect bigquery --table my-project.crm.leads --out score.sql\n  \
    leadscore models export --sql --dialect duckdb --as-of 2026-01-31 --id \"Lead Number\"\n\n\
The query returns the id column, probability, score and grade of every row, as leadscore score \
computes them; see docs/warehouse.md for the columns it reads and how exact it is.")]
pub struct ExportArgs {
    /// Write SQL (the one export format).
    #[arg(long, required = true)]
    sql: bool,
    /// The SQL engine the query is written for.
    #[arg(long, value_enum, default_value = "postgres")]
    dialect: Dialect,
    /// The table (or view) of leads, optionally qualified (`analytics.leads`); its columns are
    /// named as in training, NULL meaning missing.
    #[arg(long, default_value = "leads")]
    table: String,
    /// Model version (default: the one in service).
    #[arg(long)]
    version: Option<String>,
    /// The lead id column (default: the model's id column).
    #[arg(long)]
    id: Option<String>,
    /// For a model that ages its scores: where a lead's age comes from, the days from the
    /// model's created-date column to the scoring date, or an `age_days` column.
    #[arg(long, value_enum, default_value = "created")]
    age: AgeSource,
    /// For a model that ages its scores: the day ages are counted to (YYYY-MM-DD); default:
    /// the engine's CURRENT_DATE when the query runs.
    #[arg(long, value_name = "DATE", value_parser = super::train::as_of_date)]
    as_of: Option<chrono::NaiveDate>,
    /// Write to FILE (atomically) instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    dir: Dir,
}

#[derive(Debug, clap::Args)]
pub struct Dir {
    /// Model registry directory.
    #[arg(long, default_value = "models")]
    models: PathBuf,
}

pub fn run(command: ModelsCommand) -> anyhow::Result<ExitCode> {
    let mut out = String::new();
    match command {
        ModelsCommand::List(dir) => {
            let registry = Registry::new(&dir.models);
            let current = registry.current_version()?;
            let versions = registry.versions()?;
            if versions.is_empty() {
                outln!(out, "no models in {}", dir.models.display());
            }
            outln!(
                out,
                "  {:<24} {:>9} {:>9} {:>8} {:>9}  {:<16} data",
                "version",
                "rows",
                "base rate",
                "AUC",
                "log loss",
                "question"
            );
            for v in versions {
                let mark = if Some(&v) == current.as_ref() {
                    "*"
                } else {
                    " "
                };
                match registry.load(&v) {
                    Ok(m) => {
                        let a = &m.artifact;
                        outln!(
                            out,
                            "{mark} {:<24} {:>9} {:>8.1}% {:>8} {:>9.4}  {:<16} {}",
                            v,
                            a.data.training_rows,
                            a.data.base_rate * 100.0,
                            a.holdout
                                .metrics
                                .roc_auc
                                .map_or("n/a".into(), |x| format!("{x:.4}")),
                            a.holdout.metrics.log_loss,
                            // The question the probability answers: versions that differ here
                            // are not interchangeable (see `--promote auto`).
                            a.horizon.as_ref().map_or_else(
                                || "ever closes".to_string(),
                                |h| format!("closes in {} d", h.days)
                            ),
                            a.data.file
                        );
                    }
                    Err(e) => outln!(out, "{mark} {v:<24} unreadable: {e}"),
                }
            }
        }
        ModelsCommand::Show { version, html, dir } => {
            let model = Registry::new(&dir.models).load_or_current(version.as_deref())?;
            if let Some(path) = &html {
                let page = report_html::render_model(&model.artifact);
                write_atomic(path, page.as_bytes())
                    .with_context(|| format!("writing the model picture {}", path.display()))?;
                errln!("model picture → {}", path.display());
            }
            outln!(out, "{}", serde_json::to_string_pretty(&model.artifact)?);
            // Standard output stays the artifact as it is stored; the reading is for people.
            errln!(
                "{}: the probability is {}",
                model.version(),
                model.artifact.probability_meaning()
            );
            if let Some(aging) = model.artifact.aging_description() {
                errln!("{}: {aging}", model.version());
            }
            if let Some(shapes) = model.artifact.shapes_description() {
                errln!("{}: shapes: {shapes}", model.version());
            }
        }
        ModelsCommand::Promote { version, dir } => {
            Registry::new(&dir.models)
                .promote(&version)
                .with_context(|| format!("promoting {version}"))?;
            errln!("{version} is now in service");
        }
        ModelsCommand::Rollback(dir) => {
            let version = Registry::new(&dir.models).rollback()?;
            errln!("rolled back: {version} is now in service");
        }
        ModelsCommand::Export(args) => {
            let model = Registry::new(&args.dir.models).load_or_current(args.version.as_deref())?;
            let options = SqlOptions {
                dialect: args.dialect,
                table: args.table,
                id_column: args.id,
                as_of: args.as_of,
                age: args.age,
            };
            let sql = export_sql(&model.artifact, &options)?;
            match &args.out {
                Some(path) => {
                    write_atomic(path, sql.as_bytes())
                        .with_context(|| format!("writing {}", path.display()))?;
                    errln!(
                        "model {} as {} SQL → {}",
                        model.version(),
                        args.dialect.name(),
                        path.display()
                    );
                }
                None => out.push_str(&sql),
            }
        }
    }
    print(&out)?;
    Ok(ExitCode::SUCCESS)
}
