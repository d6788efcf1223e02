use super::{EXIT_GATE_FAILED, print, split_list};
use crate::data::{Table, read_leads, read_table};
use crate::evaluate::{
    Gates, InSample, InputOptions, TableOptions, evaluate, inputs, report_html, report_json,
    report_terminal,
};
use crate::fsutil::write_atomic;
use crate::model::Model;
use crate::registry::{Registry, RegistryError};
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;

/// Compare predicted with realized closure rates: calibration, ranking, closure rate per grade,
/// segment and month, drift of the scores and (backtest) of each attribute; fail a nightly job
/// when a quality gate is missed (exit code 3).
#[derive(Debug, clap::Args)]
#[command(after_help = "Modes:\n  \
    backtest  --data FILE: a labelled CSV scored with the serving model (or --version)\n  \
    realized  --predictions LOG --outcomes FILE: the server's prediction log (SQLite) or a CSV\n            \
    from `leadscore score`, joined by lead id with the outcomes known since\n\n\
    With a horizon model (train --horizon) a prediction made at time s (backtest: the lead's\n\
    created date; realized: its scoring time) is evaluated only once (s, s + H] has passed by\n\
    the outcomes' as-of date; before that it is maturing: counted, never evaluated. A lead won\n\
    after its window counts as not won. A cohort table per month shows leads, matured,\n\
    maturing, predicted and realized closure within H. Without a horizon, open leads are left\n\
    out, and the report says how many.\n\n\
    --funnel: of the leads that reached each stage (a date in its column), how many reached the\n\
    next, with a 95% interval and the median and 90th-percentile days between the two.\n\n\
    Examples:\n  \
    leadscore evaluate --data holdout.csv --by source,region --html report.html\n  \
    leadscore evaluate --data newer.csv --closed-at closed_at --as-of 2025-12-31\n  \
    leadscore evaluate --data leads.csv --funnel mql_at,sql_at,converted --by source\n  \
    leadscore evaluate --data new-leads.csv --max-feature-psi 0.25 --max-psi 0.1\n  \
    leadscore evaluate --predictions predictions.sqlite --outcomes crm_export.csv \\\n      \
    --outcome-date closed_at --max-calibration-gap 0.03 --min-auc 0.7 --json report.json\n\n\
    Exit codes: 0 all gates passed, 1 bad input or I/O error, 2 usage error, 3 a gate failed.")]
pub struct EvaluateArgs {
    /// Backtest: a labelled CSV or Parquet file (same columns as training) scored with the
    /// model, or a Postgres URL with --query.
    #[arg(long, conflicts_with_all = ["predictions", "outcomes"], required_unless_present = "predictions")]
    data: Option<PathBuf>,
    /// With --data postgres://[user@]host[:port]/db: the rows to read (one SELECT; read-only).
    /// The password comes from PGPASSWORD or ~/.pgpass, never the URL.
    #[arg(long, value_name = "SQL", requires = "data")]
    query: Option<String>,
    /// Realized: the server's SQLite prediction log, or a CSV or Parquet file written by
    /// `leadscore score`.
    #[arg(long, requires = "outcomes")]
    predictions: Option<PathBuf>,
    /// Realized: a CSV or Parquet file of lead id and outcome (read like training outcomes).
    #[arg(long, requires = "predictions")]
    outcomes: Option<PathBuf>,
    /// Model registry directory.
    #[arg(long, default_value = "models")]
    models: PathBuf,
    /// Model version (default: the one in service).
    #[arg(long)]
    version: Option<String>,
    /// Lead id column of the outcomes (default: the model's id column, else `lead_id`).
    #[arg(long)]
    id: Option<String>,
    /// Outcome column (default: the model's target column).
    #[arg(long)]
    target: Option<String>,
    /// The outcome value that means won (default: the model's).
    #[arg(long, value_name = "VALUE")]
    positive: Option<String>,
    /// Extra outcome values that mean "still open" (comma-separated or repeated).
    #[arg(long, value_name = "VALUES")]
    open: Vec<String>,
    /// Extra cell values that mean "missing", added to the model's (e.g. Select).
    #[arg(long, value_name = "TOKENS")]
    na: Vec<String>,
    /// Columns to report closure rates by (comma-separated or repeated), e.g. rep,source.
    #[arg(long, value_name = "COLS")]
    by: Vec<String>,
    /// Date column for the monthly table (default: the model's date column in a backtest,
    /// the prediction time in realized mode).
    #[arg(long, value_name = "COL")]
    date: Option<String>,
    /// Realized: the column of the outcomes with the date each outcome became known;
    /// predictions made after it are not used (with a horizon model, default the closed-date
    /// column).
    #[arg(long, value_name = "COL")]
    outcome_date: Option<String>,
    /// A horizon model's closed-date column of the outcomes (default: the column the model was
    /// trained with): a lead won after its window counts as not won.
    #[arg(long, value_name = "COL")]
    closed_at: Option<String>,
    /// The date a horizon model's outcomes are known up to (default: the latest date in the
    /// outcomes file): predictions whose window has not passed by then are maturing.
    #[arg(long, value_name = "DATE", value_parser = super::train::as_of_date)]
    as_of: Option<chrono::NaiveDate>,
    /// Funnel: date columns in stage order (comma-separated), e.g. mql_at,sql_at,won_at; the
    /// last may be the outcome column (reached = won).
    #[arg(long, value_name = "COLS")]
    funnel: Vec<String>,
    /// Bands of the calibration tables and of the ECE.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(2..=100))]
    bins: u32,
    /// Write the full report as JSON to FILE (`-` for standard output, replacing the terminal
    /// report).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a self-contained HTML report (charts and tables, and the picture of the model as
    /// `models show --html` draws it) to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Gate: fail (exit 3) when the expected calibration error exceeds X.
    #[arg(long, value_name = "X", value_parser = fraction)]
    max_ece: Option<f64>,
    /// Gate: fail (exit 3) when the ROC AUC is below X.
    #[arg(long, value_name = "X", value_parser = fraction)]
    min_auc: Option<f64>,
    /// Gate: fail (exit 3) when |mean predicted − realized closure rate| exceeds X (0.03 = 3
    /// points).
    #[arg(long, value_name = "X", value_parser = fraction)]
    max_calibration_gap: Option<f64>,
    /// Gate: fail (exit 3) when the score distribution's PSI against training exceeds X.
    #[arg(long, value_name = "X", value_parser = non_negative)]
    max_psi: Option<f64>,
    /// Gate: fail (exit 3) when any attribute's PSI against training exceeds X (0.25: a major
    /// shift); backtest only, with a model that stores its training distributions.
    #[arg(long, value_name = "X", value_parser = non_negative)]
    max_feature_psi: Option<f64>,
}

fn non_negative(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(format!("{text:?} is not a non-negative number")),
    }
}

fn fraction(text: &str) -> Result<f64, String> {
    match non_negative(text)? {
        x if x <= 1.0 => Ok(x),
        _ => Err(format!(
            "{text:?} is not between 0 and 1 (write 3% as 0.03)"
        )),
    }
}

pub fn run(args: EvaluateArgs) -> anyhow::Result<ExitCode> {
    let options = InputOptions {
        id: args.id.clone(),
        target: args.target.clone(),
        positive: args.positive.clone(),
        open: split_list(&args.open),
        na: split_list(&args.na),
        by: split_list(&args.by),
        date: args.date.clone(),
        outcome_date: args.outcome_date.clone(),
        closed_at: args.closed_at.clone(),
        as_of: args.as_of,
    };
    let gates = Gates {
        max_ece: args.max_ece,
        min_auc: args.min_auc,
        max_calibration_gap: args.max_calibration_gap,
        max_psi: args.max_psi,
        max_feature_psi: args.max_feature_psi,
    };
    let registry = Registry::new(&args.models);
    let mut in_sample = None;
    let (model, leads, coverage, table) = match (&args.data, &args.predictions, &args.outcomes) {
        (Some(data), _, _) => {
            let model = registry.load_or_current(args.version.as_deref())?;
            crate::postgres::refuse_password(data)?;
            let table = read_leads(data, args.query.as_deref())?;
            in_sample = training_leads_in(&model, &table, &options);
            let (leads, coverage) = inputs::backtest(&model, &table, &options)
                .with_context(|| format!("evaluating {}", data.display()))?;
            (Some(model), leads, coverage, table)
        }
        (None, Some(predictions), Some(outcomes)) => {
            let model = optional_model(&registry, args.version.as_deref())?;
            let records = inputs::read_predictions(predictions)?;
            let table = read_table(outcomes)?;
            let (leads, coverage) = inputs::realized(&records, &table, model.as_ref(), &options)
                .with_context(|| {
                    format!(
                        "joining {} with {}",
                        predictions.display(),
                        outcomes.display()
                    )
                })?;
            (model, leads, coverage, table)
        }
        _ => anyhow::bail!("give --data FILE (backtest) or --predictions LOG --outcomes FILE"),
    };
    let table_options = TableOptions {
        bins: args.bins as usize,
    };
    let mut evaluation = evaluate(
        &leads,
        coverage,
        model.as_ref().map(|m| m.version().to_string()),
        model
            .as_ref()
            .map(|m| m.artifact.score_quantiles.as_slice()),
        &table_options,
        &gates,
    )?;
    if let Some(model) = &model {
        evaluation.describe_model(&model.artifact);
    }
    let stages = split_list(&args.funnel);
    if !stages.is_empty() {
        let funnel = inputs::stages_funnel(&table, &stages, model.as_ref(), &options)
            .with_context(|| format!("the funnel of {}", table.path.display()))?;
        evaluation.funnel = Some(funnel);
    }
    evaluation.in_sample = in_sample.map(|mut found: InSample| {
        // Open rows are not evaluated but may carry a training id.
        found.leads = found.leads.min(evaluation.metrics.leads);
        found
    });
    if let Some(path) = &args.html {
        let html = report_html::render_with_model(&evaluation, model.as_ref().map(|m| &m.artifact));
        write_atomic(path, html.as_bytes())?;
        errln!("HTML report → {}", path.display());
    }
    let printed = match &args.json {
        Some(path) if path.as_os_str() == "-" => print(&report_json::render(&evaluation)),
        other => {
            if let Some(path) = other {
                write_atomic(path, report_json::render(&evaluation).as_bytes())?;
                errln!("JSON report → {}", path.display());
            }
            print(&report_terminal::render(&evaluation))
        }
    };
    if evaluation.gates_passed {
        printed?;
        return Ok(ExitCode::SUCCESS);
    }
    // The verdict a pipeline acts on: a failed gate exits 3 even when the report could not be
    // printed (standard output full or closed), which is said on standard error if it can be.
    if let Err(error) = printed {
        errln!("error: printing the report: {error:#}");
    }
    for g in evaluation.gates.iter().filter(|g| !g.passed) {
        errln!("gate failed: {} {}", g.gate, g.message);
    }
    Ok(ExitCode::from(EXIT_GATE_FAILED))
}

/// Whether the backtest's leads were training leads of the model: all of them when the file
/// is the training file itself (same SHA-256; the served model is refit on every row with an
/// outcome), else those whose ids the model's fingerprint of its training ids recognises.
/// Models trained without `--id` (or before the fingerprint) recognise the same file only.
fn training_leads_in(model: &Model, table: &Table, options: &InputOptions) -> Option<InSample> {
    let data = &model.artifact.data;
    if table.sha256 == data.sha256 {
        return Some(InSample {
            leads: u64::MAX,
            estimated: false,
            reason: "the file's SHA-256 is that of its training data".into(),
        });
    }
    let sketch = data.id_sketch.as_ref()?;
    let id_name = options
        .id
        .clone()
        .or_else(|| model.artifact.target.id_column.clone())?;
    let column = table.column(table.column_index(&id_name).ok()?);
    let (leads, exact) = sketch.overlap(column.iter());
    (leads > 0).then(|| InSample {
        leads,
        estimated: !exact,
        reason: if exact {
            format!("matched by {id_name:?}")
        } else {
            format!(
                "matched by {id_name:?} against a fingerprint of its {} training ids",
                sketch.ids
            )
        },
    })
}

/// The model for realized mode: the named version, else the one in service; without a
/// registry, realized mode still runs (without drift).
fn optional_model(registry: &Registry, version: Option<&str>) -> anyhow::Result<Option<Model>> {
    match registry.load_or_current(version) {
        Ok(model) => Ok(Some(model)),
        Err(RegistryError::NoCurrent { .. }) if version.is_none() => {
            errln!(
                "note: no model in service in {}: drift against training is not measured",
                registry.dir.display()
            );
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}
