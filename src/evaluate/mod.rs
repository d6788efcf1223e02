//! The evaluator: did the leads we scored at 30% close at 30%, and what is our closure rate per
//! rep, source, region and month?
//!
//! Data flow: [`inputs`] turns a labelled CSV (backtest) or a prediction log joined with outcomes
//! (realized) into [`Leads`], one probability and one outcome per lead plus the labels it is
//! grouped by, and a [`Coverage`] count of everything that could not be evaluated;
//! [`evaluate`] computes the headline [`Metrics`] and the [`tables`] and [`drift`] from them
//! (a backtest also counts each attribute's values for [`feature_drift`]);
//! [`gates`] compares the result with the thresholds of a nightly job; the three reports
//! ([`report_terminal`], [`report_json`], [`report_html`]) only format an [`Evaluation`].
//!
//! Invariant: no lead is dropped silently. Every input row is either evaluated or counted in
//! [`Coverage`] under the reason it was not.

pub mod drift;
pub mod feature_drift;
pub mod funnel;
pub mod gates;
pub mod inputs;
pub mod report_html;
pub mod report_json;
pub mod report_terminal;
pub mod tables;

use crate::metrics::{
    CalibrationFit, brier, brier_skill, calibration_fit, log_loss, max_calibration_error,
    roc_auc_sorted, sorted_pairs,
};
use serde::Serialize;
use std::collections::HashMap;

pub use drift::Drift;
pub use feature_drift::{AttributeDrift, DriftCounter, FeatureDrift};
pub use gates::{GateResult, Gates};
pub use inputs::{Coverage, InputOptions, Mode};
pub use tables::{BandRow, CohortRow, DecileRow, RateRow, SegmentTable};

/// Version of the JSON layout (`format_version`); raised only when a field changes meaning or
/// disappears, never when one is added.
pub const JSON_FORMAT_VERSION: u32 = 1;

/// Why an evaluation could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    #[error("{path}: {message}")]
    Input { path: String, message: String },
    #[error("{path}, line {line}: {message}")]
    Line {
        path: String,
        line: u64,
        message: String,
    },
    #[error(
        "no lead has both a prediction and a known outcome ({0}); check --id and --target, \
         and that the outcomes file covers the predicted leads"
    )]
    NothingToEvaluate(String),
}

/// A column of labels stored as small codes, so a million leads cost one `u32` each.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    /// The column (or concept, e.g. `grade`) the labels come from.
    pub name: String,
    /// Distinct labels, in order of first appearance.
    pub labels: Vec<String>,
    /// `codes[i]` indexes `labels` for lead `i`; [`Labels::NONE`] when the lead has no label.
    pub codes: Vec<u32>,
    /// Label → code, while the column is being filled.
    index: HashMap<String, u32>,
}

impl Labels {
    /// The code of a lead without a label (e.g. no valid date).
    pub const NONE: u32 = u32::MAX;

    pub fn new(name: impl Into<String>) -> Labels {
        Labels {
            name: name.into(),
            ..Labels::default()
        }
    }

    pub fn push(&mut self, label: &str) {
        self.push_keyed(label, label);
    }

    /// Files the lead under `key`; a new key is shown as `label` (so `google` and `Google`
    /// can share one row, shown as first spelled).
    pub fn push_keyed(&mut self, key: &str, label: &str) {
        let code = match self.index.get(key) {
            Some(&code) => code,
            None => {
                let code = self.labels.len() as u32;
                self.labels.push(label.to_string());
                self.index.insert(key.to_string(), code);
                code
            }
        };
        self.codes.push(code);
    }

    pub fn push_none(&mut self) {
        self.codes.push(Labels::NONE);
    }
}

/// The evaluated leads: each has a probability and a known outcome (won or lost).
#[derive(Debug, Clone, Default)]
pub struct Leads {
    pub probability: Vec<f64>,
    pub won: Vec<bool>,
    /// The grade each lead was given.
    pub grade: Labels,
    /// One per `--by` column.
    pub segments: Vec<Labels>,
    /// `YYYY-MM` of the date column (backtest) or of the prediction (realized).
    pub month: Option<Labels>,
    /// Each attribute's drift against training (backtest: the leads' attribute values are in
    /// the file; a prediction log has none).
    pub feature_drift: Option<FeatureDrift>,
    /// A horizon model's maturing leads per `YYYY-MM` of their prediction (backtest: of their
    /// created date), for the cohort table; they are not among the evaluated leads.
    pub maturing_per_month: std::collections::BTreeMap<String, u64>,
}

impl Leads {
    pub fn len(&self) -> usize {
        self.probability.len()
    }

    pub fn is_empty(&self) -> bool {
        self.probability.is_empty()
    }
}

/// The headline numbers. Field names are part of the JSON contract (docs/evaluation.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    pub leads: u64,
    pub wins: u64,
    /// wins / leads.
    pub realized_rate: f64,
    /// Mean predicted probability (calibration-in-the-large compares it with `realized_rate`).
    pub mean_predicted: f64,
    /// mean_predicted − realized_rate; positive when the model is too optimistic.
    pub calibration_gap: f64,
    /// `None` when every lead has the same outcome.
    pub roc_auc: Option<f64>,
    pub log_loss: f64,
    pub brier: f64,
    /// Brier score of always predicting the realized rate: realized · (1 − realized).
    pub brier_reference: f64,
    /// 1 − brier / brier_reference.
    pub brier_skill: Option<f64>,
    /// Lead-weighted mean |mean predicted − realized| over the equal-width bands.
    pub expected_calibration_error: f64,
    /// Largest |mean predicted − realized| over the equal-width bands.
    pub max_calibration_error: f64,
    /// Slope and intercept of `logit P(won) = a + b · logit(p)`; ideal 1 and 0.
    pub calibration_slope: Option<f64>,
    pub calibration_intercept: Option<f64>,
}

/// Calibration tables over probability bands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Calibration {
    /// Equal-width bands of probability (empty bands left out); the ECE is over these.
    pub equal_width: Vec<BandRow>,
    /// Bands of (about) equally many leads; ties are never split.
    pub equal_count: Vec<BandRow>,
}

/// A complete evaluation: what every report prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub format_version: u32,
    pub mode: Mode,
    /// The model whose training distribution drift is measured against (and, in a backtest,
    /// the model that scored the leads).
    pub model_version: Option<String>,
    pub coverage: Coverage,
    pub metrics: Metrics,
    pub calibration: Calibration,
    pub grades: Vec<RateRow>,
    pub deciles: Vec<DecileRow>,
    pub segments: Vec<SegmentTable>,
    pub months: Option<SegmentTable>,
    pub drift: Option<Drift>,
    /// Per-attribute drift against training (backtest only), worst first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature_drift: Option<FeatureDrift>,
    pub gates: Vec<GateResult>,
    /// True when every gate passed (or none was set).
    pub gates_passed: bool,
    /// Set when the evaluated leads were training leads of the model: its figures are then
    /// optimistic. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_sample: Option<InSample>,
    /// What the model's probability means ([`crate::model::ModelArtifact::probability_meaning`]),
    /// when a model is known. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability_meaning: Option<String>,
    /// The model's horizon in days, when it was trained with one. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub horizon_days: Option<u32>,
    /// A horizon model's cohort table: per month, leads, matured, maturing, predicted and
    /// realized closure within H. Absent without a horizon.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cohorts: Option<Vec<CohortRow>>,
    /// Without a horizon: how many open leads (empty or open outcome) were left out, so the
    /// realized rates are over decided leads only. Absent with a horizon or when none was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_leads_left_out: Option<u64>,
    /// `--funnel`: conversion between consecutive stages. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub funnel: Option<funnel::Funnel>,
}

impl Evaluation {
    /// Records what the probabilities of `model` mean, for every report to say.
    pub fn describe_model(&mut self, model: &crate::model::ModelArtifact) {
        self.probability_meaning = Some(model.probability_meaning());
        self.horizon_days = model.horizon.as_ref().map(|h| h.days);
    }

    /// How a horizon model's leads were judged in time, one sentence for every report.
    pub fn window_summary(&self) -> Option<String> {
        let w = self.coverage.window.as_ref()?;
        let mut text = format!(
            "judged within {} days as of {} (closed dates: {:?}): {} matured and evaluated \
             ({} won within the window, {} won after it, {} still open after it, {} lost), \
             {} maturing (window not passed: counted, never evaluated)",
            w.days,
            w.as_of,
            w.closed_column,
            self.coverage.evaluated,
            w.won_within,
            w.won_after,
            w.open_past,
            w.lost,
            w.maturing
        );
        if w.won_without_closed_date > 0 {
            text += &format!(
                ", {} won without a closed date (left out)",
                w.won_without_closed_date
            );
        }
        if w.without_prediction_time > 0 {
            text += &format!(
                ", {} predictions without a time (window unknown, left out)",
                w.without_prediction_time
            );
        }
        Some(text)
    }

    /// The note every report prints without a horizon when open leads were left out.
    pub fn open_leads_note(&self) -> Option<String> {
        self.open_leads_left_out.map(|open| {
            format!(
                "{open} open leads (empty or still-open outcome) were left out: the realized \
                 rates are over decided leads only, so slow closers are under-represented"
            )
        })
    }
}

/// Evaluated leads the model was trained on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InSample {
    /// Evaluated leads that were training leads.
    pub leads: u64,
    /// `leads` is an estimate (from the model's fingerprint of its training ids).
    pub estimated: bool,
    /// How that is known, e.g. the file's SHA-256 is the training data's.
    pub reason: String,
}

impl InSample {
    /// The warning every report prints.
    pub fn message(&self, evaluated: u64) -> String {
        format!(
            "in-sample: {}{} of the {evaluated} evaluated leads were training leads of this \
             model ({}), so these figures are optimistic; evaluate on leads it has not seen",
            if self.estimated { "about " } else { "" },
            self.leads,
            self.reason
        )
    }
}

/// How the tables are cut.
#[derive(Debug, Clone)]
pub struct TableOptions {
    /// Bands of the calibration tables (and of the ECE).
    pub bins: usize,
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions { bins: 10 }
    }
}

/// Computes everything from the evaluated leads. `training_quantiles` (the model's 101
/// percentiles of training probabilities) enables the drift section.
pub fn evaluate(
    leads: &Leads,
    coverage: Coverage,
    model_version: Option<String>,
    training_quantiles: Option<&[f64]>,
    options: &TableOptions,
    gates: &Gates,
) -> Result<Evaluation, EvaluateError> {
    if leads.is_empty() {
        return Err(EvaluateError::NothingToEvaluate(coverage.describe()));
    }
    let p = &leads.probability;
    let won = &leads.won;
    // The two costly steps, the sort (AUC, equal-count bands, deciles) and the calibration
    // fit's Newton iterations, run on two threads.
    let (sorted, fit) = std::thread::scope(|scope| {
        let fit = scope.spawn(|| calibration_fit(p, won));
        let sorted = sorted_pairs(p, won);
        (
            sorted,
            fit.join().expect("the calibration fit does not panic"),
        )
    });
    let equal_width = tables::equal_width_bands(p, won, options.bins);
    let equal_count = tables::equal_count_bands(&sorted, options.bins);
    let metrics = headline_metrics(leads, &sorted, fit, &equal_width);
    let realized_rate = metrics.realized_rate;
    let mut grades = tables::rate_rows(&leads.grade, p, won, realized_rate);
    grades.sort_by(|a, b| a.label.cmp(&b.label));
    let deciles = tables::deciles(&sorted);
    let segments = leads
        .segments
        .iter()
        .map(|labels| {
            let mut rows = tables::rate_rows(labels, p, won, realized_rate);
            rows.sort_by(|a, b| b.leads.cmp(&a.leads).then(a.label.cmp(&b.label)));
            SegmentTable {
                column: labels.name.clone(),
                rows,
            }
        })
        .collect();
    let months = leads.month.as_ref().map(|labels| {
        let mut rows = tables::rate_rows(labels, p, won, realized_rate);
        rows.sort_by(|a, b| a.label.cmp(&b.label));
        SegmentTable {
            column: labels.name.clone(),
            rows,
        }
    });
    let cohorts = coverage.window.as_ref().map(|_| {
        let rows = months.as_ref().map_or(&[][..], |m| &m.rows[..]);
        tables::cohort_rows(rows, &leads.maturing_per_month)
    });
    let open_leads_left_out =
        (coverage.window.is_none() && coverage.open > 0).then_some(coverage.open);
    let drift = training_quantiles.map(|q| drift::drift(q, p));
    let feature_drift = leads.feature_drift.clone();
    let gate_results = gates.check(&metrics, drift.as_ref(), feature_drift.as_ref());
    Ok(Evaluation {
        format_version: JSON_FORMAT_VERSION,
        mode: coverage.mode,
        model_version,
        gates_passed: gate_results.iter().all(|g| g.passed),
        coverage,
        metrics,
        calibration: Calibration {
            equal_width,
            equal_count,
        },
        grades,
        deciles,
        segments,
        months,
        drift,
        feature_drift,
        gates: gate_results,
        in_sample: None,
        probability_meaning: None,
        horizon_days: None,
        cohorts,
        open_leads_left_out,
        funnel: None,
    })
}

/// The headline numbers, from the leads, their (probability, won) pairs sorted by probability,
/// the calibration fit and the equal-width bands (the ECE is over these).
fn headline_metrics(
    leads: &Leads,
    sorted: &[(f64, bool)],
    fit: Option<CalibrationFit>,
    equal_width: &[BandRow],
) -> Metrics {
    let p = &leads.probability;
    let won = &leads.won;
    let n = leads.len() as f64;
    let wins = won.iter().filter(|&&w| w).count() as u64;
    let realized_rate = wins as f64 / n;
    let mean_predicted = p.iter().sum::<f64>() / n;
    let brier_score = brier(p, won);
    let bins_as_metrics: Vec<_> = equal_width.iter().map(BandRow::as_bin).collect();
    Metrics {
        leads: leads.len() as u64,
        wins,
        realized_rate,
        mean_predicted,
        calibration_gap: mean_predicted - realized_rate,
        roc_auc: roc_auc_sorted(sorted),
        log_loss: log_loss(p, won),
        brier: brier_score,
        brier_reference: realized_rate * (1.0 - realized_rate),
        brier_skill: brier_skill(brier_score, realized_rate),
        expected_calibration_error: crate::metrics::expected_calibration_error(&bins_as_metrics),
        max_calibration_error: max_calibration_error(&bins_as_metrics),
        calibration_slope: fit.map(|f| f.slope),
        calibration_intercept: fit.map(|f| f.intercept),
    }
}
