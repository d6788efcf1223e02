use super::{print, split_list};
use crate::evaluate::FeatureDrift;
use crate::model::ModelArtifact;
use crate::registry::Registry;
use crate::schema::parse_kind_overrides;
use crate::train::{
    HorizonConfig, MaxRows, PromotePolicy, Promotion, Shapes, TrainConfig, Trained, WonWithoutDate,
    save_and_promote, top_coefficients, train,
};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Fit a model on historic leads, write it as a new version, and promote it if it is at least
/// as good as the one in service.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    leadscore train --data leads.csv --target converted --id lead_id --date created_at\n  \
    leadscore train --data Leads.csv --target Converted --id \"Prospect ID\" --na Select \\\n      \
    --drop \"Tags,Lead Quality\" --promote always --json\n  \
    leadscore train --data leads.csv --target converted --id lead_id \\\n      \
    --horizon 90 --date created_at --closed-at closed_at --as-of 2025-12-31\n  \
    leadscore train --data leads.csv --target converted --id lead_id \\\n      \
    --horizon 90 --period 30 --date created_at --closed-at closed_at\n  \
    leadscore train --data leads.csv --target converted --id lead_id --shapes off\n\n\
With --horizon the probability is P(closes within the next DAYS days): a lead counts as won \
only when won within DAYS of its created date; leads created less than DAYS before the as-of \
date are maturing (left out, never counted as lost); lost leads, leads won later and leads \
still open past DAYS are not won. Without it, the probability is P(ever closes), learned from \
the leads whose outcome was known (open leads left out). With --horizon, scores age: each lead \
is a training row at every age 0, P, 2P, … days (P = --period) at which it was still open and \
its next DAYS days had passed, with its age as a feature (and age × the attributes that set the \
pace, chosen by validation), so the probability is P(closes within the next DAYS days | still \
open at its age).")]
pub struct TrainArgs {
    /// CSV export of historic leads (header row; `,` or `;`), a Parquet file (recognised by
    /// its content), or a Postgres URL with --query.
    #[arg(long)]
    data: PathBuf,
    /// With --data postgres://[user@]host[:port]/db: the rows to read (one SELECT; read-only).
    /// The password comes from PGPASSWORD or ~/.pgpass, never the URL.
    #[arg(long, value_name = "SQL")]
    query: Option<String>,
    /// Outcome column (1/0, true/false, yes/no, won/lost, closed won/closed lost,
    /// converted/not converted; empty or open stages are not training rows).
    #[arg(long)]
    target: String,
    /// Lead id column (never a feature).
    #[arg(long)]
    id: Option<String>,
    /// Created-at column: the most recent 20% of leads (with --horizon: of the matured leads)
    /// become the holdout, and each attribute of it is compared with the older leads (drift per
    /// attribute, in the summary).
    #[arg(long)]
    date: Option<String>,
    /// Learn P(closes within DAYS days of creation) instead of P(ever closes); needs --date
    /// and --closed-at.
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..))]
    horizon: Option<u32>,
    /// Closed-at column (with --horizon): the date a won or lost lead was decided.
    #[arg(long, value_name = "COL", requires = "horizon")]
    closed_at: Option<String>,
    /// The date outcomes are judged at (with --horizon); default: the latest created or closed
    /// date in the file.
    #[arg(long, value_name = "DATE", requires = "horizon", value_parser = as_of_date)]
    as_of: Option<chrono::NaiveDate>,
    /// Spacing of the landmark ages in days (with --horizon): a lead is a training row at ages
    /// 0, P, 2P, … while still open, so its score ages; 0 learns from new leads only (age 0).
    #[arg(long, value_name = "DAYS", requires = "horizon", default_value_t = 30)]
    period: u32,
    /// Keep the age additive (with --horizon): no age × attribute interactions are tried.
    #[arg(long, requires = "horizon")]
    no_age_interactions: bool,
    /// A won lead without a closed date (with --horizon): fail (default) names its line; drop
    /// leaves such leads out, counted.
    #[arg(long, value_enum, value_name = "WHAT", requires = "horizon")]
    won_without_date: Option<WonWithoutDate>,
    /// Curved effects for numbers: auto gives a numeric attribute a shape (a restricted cubic
    /// spline, 5 knots at training quantiles) when that lowers the validation log loss on a
    /// split of the training part by more than 0.1% and by more than 2 standard errors of the
    /// row-by-row difference; off keeps every number linear (the model
    /// of earlier releases).
    #[arg(long, value_enum, value_name = "MODE", default_value_t = Shapes::Auto)]
    shapes: Shapes,
    /// Columns to leave out (comma-separated or repeated).
    #[arg(long, value_name = "COLS")]
    drop: Vec<String>,
    /// Extra cell values that mean "missing" (comma-separated or repeated), e.g. Select.
    #[arg(long, value_name = "TOKENS")]
    na: Vec<String>,
    /// The outcome value that means won; every other value (except empty and open ones) is lost.
    #[arg(long, value_name = "VALUE")]
    positive: Option<String>,
    /// Extra outcome values that mean "still open" (comma-separated or repeated).
    #[arg(long, value_name = "VALUES")]
    open: Vec<String>,
    /// Override an inferred column kind: COLUMN=numeric|categorical|boolean|date|id|text|ignore.
    #[arg(long, value_name = "COLUMN=KIND")]
    kind: Vec<String>,
    /// Model registry directory.
    #[arg(long, default_value = "models")]
    models: PathBuf,
    /// auto: promote only when the holdout log loss is no worse than the serving model's on
    /// the same holdout.
    #[arg(long, value_enum, default_value_t = PromotePolicy::Auto)]
    promote: PromotePolicy,
    /// Solver iteration limit (reaching it is reported).
    #[arg(long, default_value_t = 1000)]
    max_iterations: u64,
    /// Seed of the stratified holdout split (when there is no --date) and of the sample.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Above N rows, train on every won lead and a random sample of the others, N rows in all,
    /// chosen while reading, with the intercept corrected for the sample. 0: never sample.
    /// Default: sample only when the table would not fit half the available memory.
    #[arg(long, value_name = "N")]
    max_rows: Option<usize>,
    /// Print the summary as JSON on standard output (progress stays on standard error).
    #[arg(long)]
    json: bool,
    /// No progress lines.
    #[arg(long, short)]
    quiet: bool,
}

/// Tests set this to an RFC 3339 time to stamp a training with it instead of the clock's
/// reading: versions are named by the second, so trainings in one second would otherwise need
/// a wait to get distinct, ordered names.
const TRAINED_AT_ENV: &str = "LEADSCORE_TRAINED_AT";

pub fn run(args: TrainArgs) -> anyhow::Result<ExitCode> {
    crate::postgres::refuse_password(&args.data)?;
    let config = train_config(&args)?;
    let quiet = args.quiet;
    let mut progress = |line: &str| {
        if !quiet {
            errln!("{line}");
        }
    };
    let mut trained = train(&config, &mut progress)
        .with_context(|| format!("training on {}", args.data.display()))?;
    let registry = Registry::new(&args.models);
    let (path, promotion) = save_and_promote(&registry, &mut trained, args.promote)
        .with_context(|| format!("saving the model in {}", args.models.display()))?;
    let mut out = String::new();
    if args.json {
        outln!(out, "{}", json_summary(&trained, &path, &promotion)?);
    } else {
        summarise_data(&mut out, &trained, &path, &promotion);
        summarise_fit(&mut out, &trained.artifact);
        summarise_notes(&mut out, &trained);
    }
    print(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// The flags as the library's training settings.
fn train_config(args: &TrainArgs) -> anyhow::Result<TrainConfig> {
    let mut config = TrainConfig::new(&args.data, &args.target);
    config.query = args.query.clone();
    config.id = args.id.clone();
    config.date = args.date.clone();
    config.drop = split_list(&args.drop);
    config.na = split_list(&args.na);
    config.positive = args.positive.clone();
    config.open = split_list(&args.open);
    config.kinds = parse_kind_overrides(&args.kind).map_err(anyhow::Error::msg)?;
    config.max_iterations = args.max_iterations;
    config.seed = args.seed;
    config.encoder.shapes = args.shapes == Shapes::Auto;
    config.max_rows = match args.max_rows {
        None => MaxRows::Auto,
        Some(0) => MaxRows::Off,
        Some(n) => MaxRows::Rows(n),
    };
    config.horizon = args.horizon.map(|days| HorizonConfig {
        days,
        closed_at: args.closed_at.clone(),
        as_of: args.as_of,
        won_without_date: args.won_without_date.unwrap_or_default(),
        period_days: (args.period > 0).then_some(args.period),
        age_interactions: !args.no_age_interactions,
    });
    if let Ok(at) = std::env::var(TRAINED_AT_ENV) {
        let at = chrono::DateTime::parse_from_rfc3339(&at).map_err(|e| {
            anyhow::anyhow!(
                "{TRAINED_AT_ENV}: {at:?} is not an RFC 3339 time ({e}); \
                 write e.g. 2030-01-01T00:00:00Z, or unset it"
            )
        })?;
        config.trained_at = Some(at.with_timezone(&chrono::Utc));
    }
    Ok(config)
}

/// `--as-of`: a date in any format the data's dates may have.
pub(super) fn as_of_date(text: &str) -> Result<chrono::NaiveDate, String> {
    crate::schema::parse_date(text)
        .ok_or_else(|| format!("{text:?} is not a date (use YYYY-MM-DD)"))
}

/// The `--json` summary.
fn json_summary(trained: &Trained, path: &Path, promotion: &Promotion) -> anyhow::Result<String> {
    let a = &trained.artifact;
    let summary = serde_json::json!({
        "model_version": a.model_version,
        "path": path,
        "promotion": promotion,
        "data": a.data,
        "horizon": a.horizon,
        "aging": a.aging,
        "shapes": a.shapes,
        "sampling": a.sampling,
        "probability_meaning": a.probability_meaning(),
        "holdout": a.holdout,
        "regularisation": a.regularisation,
        "solver": a.solver,
        "features": a.coefficients.len(),
        "holdout_drift": trained.holdout_drift,
        "leakage": trained.leakage,
        "warnings": trained.warnings,
        "timings_seconds": trained.timings,
    });
    Ok(serde_json::to_string_pretty(&summary)?)
}

/// Where the model went, whether it serves, the data and the holdout metrics.
fn summarise_data(out: &mut String, trained: &Trained, path: &Path, promotion: &Promotion) {
    let a = &trained.artifact;
    let d = &a.data;
    let m = &a.holdout.metrics;
    let pct = |x: f64| format!("{:.1}%", x * 100.0);
    outln!(out, "model      {} → {}", a.model_version, path.display());
    outln!(
        out,
        "promoted   {}: {}",
        if promotion.promoted { "yes" } else { "no" },
        promotion.reason
    );
    if let (false, Some(previous)) = (promotion.promoted, &promotion.previous) {
        outln!(
            out,
            "           {previous} stays in service: `leadscore score` and `serve` keep using it."
        );
        if !promotion.serving_only_fields.is_empty() {
            outln!(
                out,
                "           It scores with columns this model does not use ({}): if you left them \
                 out on purpose (e.g. as leakage), its lower log loss comes from them.",
                promotion.serving_only_fields.join(", ")
            );
        }
        outln!(
            out,
            "           To serve this version instead: leadscore models promote {} --models {}",
            a.model_version,
            path.parent()
                .and_then(Path::parent)
                .map_or_else(|| ".".into(), |p| p.display().to_string())
        );
    }
    match &a.horizon {
        None => outln!(
            out,
            "data       {} rows: {} won, {} lost (closure rate {}), {} open or unlabelled",
            d.rows_read,
            d.wins,
            d.losses,
            pct(d.base_rate),
            d.open_rows
        ),
        Some(h) => summarise_horizon(out, d, h),
    }
    if let Some(s) = &a.sampling {
        outln!(
            out,
            "sampled    {}; holdout metrics, percentiles and grades on the sample thinned to the \
             file's won share",
            s.describe()
        );
    }
    outln!(out, "meaning    {}", a.probability_meaning());
    if let Some(aging) = a.aging_description() {
        outln!(out, "ages       {aging}");
    }
    if let Some(shapes) = a.shapes_description() {
        outln!(out, "shapes     {shapes}");
    }
    outln!(
        out,
        "holdout    {} {}, {}",
        m.leads,
        if a.aging.is_some() {
            "landmark rows"
        } else {
            "leads"
        },
        a.holdout.method
    );
    outln!(
        out,
        "           ROC AUC {}  log loss {:.4}  Brier {:.4}  ECE {:.4}",
        m.roc_auc.map_or("n/a".into(), |x| format!("{x:.4}")),
        m.log_loss,
        m.brier,
        m.expected_calibration_error
    );
    outln!(
        out,
        "           mean predicted {} vs realized {}",
        pct(m.mean_predicted),
        pct(m.realized_rate)
    );
    if let Some(drift) = &trained.holdout_drift {
        summarise_drift(out, drift);
    }
}

/// With `--date`: the attributes whose holdout (the newest leads) differs from the training
/// part.
fn summarise_drift(out: &mut String, drift: &FeatureDrift) {
    if let Some(why) = &drift.unavailable {
        outln!(out, "drift      not measured: {why}");
        return;
    }
    let notable = drift
        .attributes
        .iter()
        .filter(|a| a.reason.is_some())
        .count();
    if notable == 0 {
        outln!(
            out,
            "drift      holdout against the training part: every attribute stable (PSI < 0.1)"
        );
        return;
    }
    outln!(
        out,
        "drift      holdout against the training part: {notable} of {} attributes moved \
         (PSI ≥ {}), {} flagged (!: {})",
        drift.attributes.len(),
        crate::evaluate::drift::PSI_MODERATE,
        drift.flagged().count(),
        crate::evaluate::feature_drift::flag_rule(),
    );
    // Writing into a String cannot fail.
    let _ = crate::evaluate::report_terminal::feature_drift_table(out, drift, true);
}

/// How a horizon training labelled the leads: every lead in exactly one count.
fn summarise_horizon(out: &mut String, d: &crate::model::DataSummary, h: &crate::model::Horizon) {
    let c = &h.counts;
    let days = h.days;
    outln!(
        out,
        "data       {} rows, as of {}: {} matured (created by {}), {} maturing (left out){}",
        d.rows_read,
        h.as_of,
        c.matured,
        h.matured_by()
            .map_or_else(|| "no date".into(), |d| d.to_string()),
        c.maturing,
        if c.won_without_date_dropped > 0 {
            format!(
                ", {} won without a closed date (left out)",
                c.won_without_date_dropped
            )
        } else {
            String::new()
        }
    );
    outln!(
        out,
        "horizon    {days} days: {} won within {days} days (closure rate {:.1}%); not won within \
         it: {} won after {days} days, {} lost, {} open past {days} days",
        c.won_within,
        d.base_rate * 100.0,
        c.won_after,
        c.lost,
        c.open_past
    );
}

/// The features, the chosen regularisation, the solver and the strongest coefficients.
fn summarise_fit(out: &mut String, a: &ModelArtifact) {
    let used = a
        .data
        .columns
        .iter()
        .filter(|c| c.role == "feature")
        .count();
    outln!(
        out,
        "features   {used} columns → {} encoded; L2 alpha {} (validation log loss per alpha: {})",
        a.coefficients.len(),
        a.regularisation.alpha,
        a.regularisation
            .candidates
            .iter()
            .map(|(al, l)| format!("{al}: {l:.4}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    outln!(
        out,
        "solver     {} (gradient norm {:.2e}, tolerance {:.2e})",
        if a.solver.converged {
            "converged"
        } else {
            "NOT converged"
        },
        a.solver.final_gradient_norm,
        a.solver.gradient_tolerance
    );
    outln!(
        out,
        "strongest  (log-odds per standard deviation or per level, + raises P(close))"
    );
    for (feature, weight) in top_coefficients(a, 8) {
        outln!(out, "           {weight:+.3}  {feature}");
    }
}

/// Every column with its kind and role, warnings, and where the time went.
fn summarise_notes(out: &mut String, trained: &Trained) {
    let columns = &trained.artifact.data.columns;
    let width = columns
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0);
    let used = columns.iter().filter(|c| c.role == "feature").count();
    outln!(
        out,
        "columns    {} read: {used} features, {} not (kind as inferred, or set with --kind)",
        columns.len(),
        columns.len() - used
    );
    for c in columns {
        let kind = c.kind.to_string();
        outln!(out, "           {:width$}  {kind:11}  {}", c.name, c.role);
    }
    for w in &trained.table.warnings {
        outln!(out, "WARNING    {w}");
    }
    for w in &trained.leakage {
        outln!(out, "WARNING    {w}");
    }
    for w in &trained.warnings {
        outln!(out, "WARNING    {w}");
    }
    if let Some(drift) = &trained.holdout_drift {
        let flagged: Vec<String> = drift
            .flagged()
            .map(|a| format!("{} (PSI {:.2})", a.attribute, a.psi))
            .collect();
        if !flagged.is_empty() {
            outln!(
                out,
                "WARNING    the newest leads (the holdout) differ from the older ones in {}: the \
                 next leads may differ more; see drift above",
                flagged.join(", ")
            );
        }
    }
    let t = &trained.timings;
    let mut age_terms = if trained.artifact.aging.is_some() {
        format!(", age terms {:.2}", t.age_terms)
    } else {
        String::new()
    };
    if trained.artifact.shapes.is_some() {
        age_terms = format!(", shapes {:.2}{age_terms}", t.shapes);
    }
    outln!(
        out,
        "time       {:.2} s (read {:.2}, encode {:.2}{age_terms}, choose alpha {:.2}, holdout fit {:.2}, final fit {:.2})",
        t.total,
        t.read,
        t.encode,
        t.select_alpha,
        t.holdout_fit,
        t.final_fit
    );
}
