//! Quality gates for nightly jobs: thresholds on the evaluation that fail the job (exit code 3,
//! distinct from the exit code of bad input).

use super::{Drift, FeatureDrift, Metrics};
use serde::Serialize;

/// The thresholds a job sets; `None` means not checked.
#[derive(Debug, Clone, Default)]
pub struct Gates {
    /// `--max-ece`: the expected calibration error may not exceed this.
    pub max_ece: Option<f64>,
    /// `--min-auc`: the ROC AUC may not fall below this.
    pub min_auc: Option<f64>,
    /// `--max-calibration-gap`: |mean predicted − realized rate| may not exceed this.
    pub max_calibration_gap: Option<f64>,
    /// `--max-psi`: the score distribution's PSI against training may not exceed this.
    pub max_psi: Option<f64>,
    /// `--max-feature-psi`: no attribute's PSI against training may exceed this.
    pub max_feature_psi: Option<f64>,
}

/// One checked gate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateResult {
    /// The flag that set it, e.g. `--max-ece`.
    pub gate: String,
    pub threshold: f64,
    /// The measured value; `None` when it cannot be measured (then the gate fails).
    pub actual: Option<f64>,
    pub passed: bool,
    /// How far beyond the threshold the value is (positive when failed, 0 when passed).
    pub excess: f64,
    pub message: String,
}

impl Gates {
    pub fn is_empty(&self) -> bool {
        self.max_ece.is_none()
            && self.min_auc.is_none()
            && self.max_calibration_gap.is_none()
            && self.max_psi.is_none()
            && self.max_feature_psi.is_none()
    }

    pub fn check(
        &self,
        metrics: &Metrics,
        drift: Option<&Drift>,
        feature_drift: Option<&FeatureDrift>,
    ) -> Vec<GateResult> {
        let mut results = Vec::new();
        if let Some(limit) = self.max_ece {
            results.push(at_most(
                "--max-ece",
                "expected calibration error",
                limit,
                Some(metrics.expected_calibration_error),
            ));
        }
        if let Some(limit) = self.min_auc {
            let actual = metrics.roc_auc;
            let passed = actual.is_some_and(|a| a >= limit);
            results.push(GateResult {
                gate: "--min-auc".into(),
                threshold: limit,
                actual,
                passed,
                excess: actual.map_or(0.0, |a| (limit - a).max(0.0)),
                message: match actual {
                    None => format!(
                        "ROC AUC cannot be measured (every lead has the same outcome); \
                         --min-auc {limit} fails"
                    ),
                    Some(a) if passed => format!("ROC AUC {a:.4} ≥ {limit}"),
                    Some(a) => format!(
                        "ROC AUC {a:.4} is below the minimum {limit} by {:.4}",
                        limit - a
                    ),
                },
            });
        }
        if let Some(limit) = self.max_calibration_gap {
            let mut r = at_most(
                "--max-calibration-gap",
                "calibration gap |mean predicted − realized rate|",
                limit,
                Some(metrics.calibration_gap.abs()),
            );
            r.message.push_str(&format!(
                " (mean predicted {:.2}%, realized {:.2}%)",
                metrics.mean_predicted * 100.0,
                metrics.realized_rate * 100.0
            ));
            results.push(r);
        }
        if let Some(limit) = self.max_psi {
            results.push(at_most(
                "--max-psi",
                "score-distribution PSI",
                limit,
                drift.map(|d| d.psi),
            ));
        }
        if let Some(limit) = self.max_feature_psi {
            results.push(max_feature_psi(limit, feature_drift));
        }
        results
    }
}

/// `--max-feature-psi`: the worst attribute against the limit, naming every attribute over it.
fn max_feature_psi(limit: f64, drift: Option<&FeatureDrift>) -> GateResult {
    const GATE: &str = "--max-feature-psi";
    let worst = drift.and_then(FeatureDrift::worst);
    let Some(worst) = worst else {
        let why = match drift {
            Some(FeatureDrift {
                unavailable: Some(why),
                ..
            }) => why.clone(),
            Some(_) => "the model has no attributes".to_string(),
            None => "a prediction log holds no attribute values; measure it in a backtest \
                     (--data) on a labelled export"
                .to_string(),
        };
        return GateResult {
            gate: GATE.into(),
            threshold: limit,
            actual: None,
            passed: false,
            excess: 0.0,
            message: format!("per-attribute PSI cannot be measured ({why}); {GATE} fails"),
        };
    };
    let mut result = at_most(
        GATE,
        &format!("attribute {:?} PSI", worst.attribute),
        limit,
        Some(worst.psi),
    );
    if !result.passed {
        let over: Vec<String> = drift
            .into_iter()
            .flat_map(|d| &d.attributes)
            .filter(|a| a.psi > limit)
            .map(|a| format!("{} {:.4}", a.attribute, a.psi))
            .collect();
        if over.len() > 1 {
            result.message.push_str(&format!(
                " ({} attributes over it: {})",
                over.len(),
                over.join(", ")
            ));
        }
    } else {
        result.message = format!(
            "every attribute's PSI ≤ {limit} (the largest: {:?} {:.4})",
            worst.attribute, worst.psi
        );
    }
    result
}

fn at_most(gate: &str, what: &str, limit: f64, actual: Option<f64>) -> GateResult {
    let passed = actual.is_some_and(|a| a <= limit);
    GateResult {
        gate: gate.into(),
        threshold: limit,
        actual,
        passed,
        excess: actual.map_or(0.0, |a| (a - limit).max(0.0)),
        message: match actual {
            None => format!("{what} cannot be measured (no model to compare with); {gate} fails"),
            Some(a) if passed => format!("{what} {a:.4} ≤ {limit}"),
            Some(a) => format!(
                "{what} {a:.4} exceeds the maximum {limit} by {:.4}",
                a - limit
            ),
        },
    }
}
