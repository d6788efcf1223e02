//! Quality gates for nightly jobs: thresholds on the evaluation that fail the job (exit code 3,
//! distinct from the exit code of bad input).

use super::{Drift, Metrics};
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
    }

    pub fn check(&self, metrics: &Metrics, drift: Option<&Drift>) -> Vec<GateResult> {
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
        results
    }
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
