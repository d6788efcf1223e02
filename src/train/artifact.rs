//! The artifact assembly: what a run learned, written down as a [`ModelArtifact`] with its
//! version name. The artifact is everything scoring needs and everything a reader needs to
//! judge the model (data, holdout, solver), so this is where each part of a run ends up.

use super::TrainConfig;
use super::columns::{Columns, Roles};
use super::holdout::{Holdout, Measured};
use super::outcomes::Outcomes;
use super::regularisation::AlphaChoice;
use super::solver::Fit;
use crate::aging::{AgeTerms, Aging};
use crate::data::Table;
use crate::encoder::FeatureEncoder;
use crate::id_sketch::IdSketch;
use crate::metrics::calibration_bins;
use crate::model::{
    Coefficient, DataSummary, HoldoutReport, Horizon, ModelArtifact, Regularisation, Sampling,
    SolverReport, TargetSpec, grade_cutoffs, score_quantiles,
};
use chrono::{DateTime, Utc};
use ndarray::{ArrayView2, Axis};

/// What a run learned, to be written down.
pub(super) struct Learned<'a> {
    pub config: &'a TrainConfig,
    pub table: &'a Table,
    pub outcomes: &'a Outcomes,
    pub roles: &'a Roles,
    pub columns: &'a Columns,
    pub holdout: &'a Holdout,
    pub encoder: FeatureEncoder,
    /// The encoded outcome rows (every row, for the coefficient means and score quantiles).
    pub x: ArrayView2<'a, f64>,
    pub choice: &'a AlphaChoice,
    pub measured: &'a Measured,
    /// The fit on every row: the served model.
    pub final_fit: &'a Fit,
    /// How the rows were labelled with `--horizon`.
    pub horizon: Option<Horizon>,
    /// With landmark rows: the age record and its terms (whose columns end `x`).
    pub aging: Option<(Aging, AgeTerms)>,
    /// With `--shapes auto`: how the shapes were chosen.
    pub shapes: Option<crate::model::ShapeChoice>,
    /// With a sampled table: what was sampled, and the matrix rows that are a uniform sample
    /// of the file (the percentiles and coefficient means are taken on them).
    pub sampling: Option<(Sampling, Vec<usize>)>,
}

/// Assembles the artifact, stamped with `config.trained_at` (else the clock).
pub(super) fn assemble(learned: Learned<'_>) -> ModelArtifact {
    let Learned {
        config,
        table,
        final_fit,
        x,
        ..
    } = learned;
    let trained_at = config.trained_at.unwrap_or_else(Utc::now);
    let population = learned
        .sampling
        .as_ref()
        .map(|(_, rows)| x.select(Axis(0), rows));
    let x = match &population {
        Some(p) => p.view(),
        None => x.reborrow(),
    };
    let train_p = final_fit.probabilities(x).to_vec();
    let quantiles = score_quantiles(&train_p);
    ModelArtifact {
        format_version: crate::model::format_version(&learned.encoder),
        model_version: version_name(trained_at, table),
        trained_at: trained_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        trained_by: format!("leadscore {}", env!("CARGO_PKG_VERSION")),
        data: data_summary(&learned),
        target: TargetSpec {
            column: table.headers[learned.roles.target].clone(),
            id_column: learned.roles.id.map(|c| table.headers[c].clone()),
            positive: config.positive.clone(),
            open_values: config.open.clone(),
        },
        coefficients: coefficients(
            &learned.encoder,
            learned.aging.as_ref().map(|a| &a.1),
            final_fit,
            x,
        ),
        encoder: learned.encoder,
        intercept: final_fit.intercept,
        regularisation: Regularisation {
            alpha: learned.choice.alpha,
            candidates: learned.choice.candidates.clone(),
        },
        solver: SolverReport {
            solver: "linfa-logistic L-BFGS".into(),
            gradient_tolerance: final_fit.tolerance,
            max_iterations: config.max_iterations,
            final_gradient_norm: final_fit.gradient_norm,
            converged: final_fit.converged,
        },
        holdout: holdout_report(learned.holdout, learned.measured),
        grades: grade_cutoffs(&quantiles),
        score_quantiles: quantiles,
        horizon: learned.horizon,
        aging: learned.aging.map(|a| a.0),
        shapes: learned.shapes,
        sampling: learned.sampling.map(|s| s.0),
    }
}

/// `YYYYMMDD-HHMMSS-<first 6 hex of the data's SHA-256>`: names sort by training time, and two
/// files trained in the same second still differ.
fn version_name(trained_at: DateTime<Utc>, table: &Table) -> String {
    format!(
        "{}-{}",
        trained_at.format("%Y%m%d-%H%M%S"),
        &table.sha256[..6]
    )
}

fn data_summary(learned: &Learned<'_>) -> DataSummary {
    let (table, outcomes) = (learned.table, learned.outcomes);
    DataSummary {
        file: table.path.display().to_string(),
        sha256: table.sha256.clone(),
        rows_read: table.rows() as u64,
        training_rows: outcomes.rows.len() as u64,
        wins: outcomes.wins as u64,
        losses: outcomes.losses as u64,
        open_rows: (table.rows() - outcomes.rows.len()) as u64,
        base_rate: outcomes.wins as f64 / outcomes.rows.len() as f64,
        date_column: learned.roles.date.map(|d| table.headers[d].clone()),
        date_range: learned.holdout.date_range.clone(),
        columns: learned.columns.summaries.clone(),
        id_sketch: learned.roles.id.map(|c| {
            let column = table.column(c);
            IdSketch::new(outcomes.rows.iter().map(|&row| column.get(row)))
        }),
    }
}

/// Each encoded column's weight and its mean over the training rows (the "average lead"
/// explanations are measured against).
fn coefficients(
    encoder: &FeatureEncoder,
    terms: Option<&AgeTerms>,
    fit: &Fit,
    x: ArrayView2<'_, f64>,
) -> Vec<Coefficient> {
    let means = x.mean_axis(Axis(0)).expect("rows exist");
    let mut names = encoder.column_names();
    if let Some(terms) = terms {
        let age_names = terms.column_names(&names);
        names.extend(age_names);
    }
    names
        .into_iter()
        .zip(fit.weights.iter().zip(means.iter()))
        .map(|(feature, (&weight, &mean))| Coefficient {
            feature,
            weight,
            mean,
        })
        .collect()
}

fn holdout_report(holdout: &Holdout, measured: &Measured) -> HoldoutReport {
    HoldoutReport {
        method: holdout.method.clone(),
        calibration: calibration_bins(&measured.probabilities, &measured.won, 10),
        metrics: measured.metrics.clone(),
        note: "metrics of the fit without the holdout; the served model is refit on all rows"
            .into(),
    }
}

/// The top `k` coefficients by absolute weight, for summaries.
pub fn top_coefficients(artifact: &ModelArtifact, k: usize) -> Vec<(String, f64)> {
    let mut all: Vec<(String, f64)> = artifact
        .coefficients
        .iter()
        .map(|c| (c.feature.clone(), c.weight))
        .collect();
    all.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    all.truncate(k);
    all
}
