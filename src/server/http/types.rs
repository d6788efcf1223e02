//! The JSON API's request and response types: what the handlers read and write, and what the
//! OpenAPI document's schemas are derived from (schemars), so the two cannot drift apart.
//!
//! Responses are built from the same protobuf messages the gRPC path answers with
//! ([`super::super::convert`]), field by field with exhaustive destructuring, so the numbers are
//! the same bits and a field added to the proto fails to compile here until it is handled.
//!
//! The schemas keep to what Salesforce External Services import: no `oneOf`/`anyOf`, integers
//! without a 64-bit format (see [`super::openapi`]).

use crate::encoder::MISSING_LEVEL;
use crate::server::pb;
use schemars::JsonSchema;
use serde::Serialize;

/// One lead to score (`POST /v1/leads:score`).
#[derive(Debug, JsonSchema)]
#[allow(dead_code)] // read by the parser field by field, described by the OpenAPI document
pub struct ScoreLeadRequest {
    /// The CRM's id of the lead, echoed in the answer and the prediction log (at most 256
    /// bytes).
    #[schemars(length(max = 256))]
    pub lead_id: Option<String>,
    /// The lead's attributes, by column name as in the training CSV. Each value is a string, a
    /// number, true/false or null (missing); numbers and yes/no may also be sent as text.
    /// Fields the model does not use are ignored with a warning.
    pub fields: Option<Fields>,
    /// How many top positive and top negative factors to explain (0: none).
    pub explain: Option<u32>,
}

/// A batch of leads (`POST /v1/leads:scoreBatch`).
#[derive(Debug, JsonSchema)]
#[allow(dead_code)] // read by the parser field by field, described by the OpenAPI document
pub struct ScoreLeadsRequest {
    /// The leads, at most the server's `--max-batch` (default 1000).
    pub leads: Vec<BatchLead>,
    /// How many top positive and top negative factors to explain for each lead (0: none).
    pub explain: Option<u32>,
}

/// One lead of a batch.
#[derive(Debug, JsonSchema)]
#[allow(dead_code)] // read by the parser field by field, described by the OpenAPI document
pub struct BatchLead {
    /// The CRM's id of the lead (at most 256 bytes).
    #[schemars(length(max = 256))]
    pub lead_id: Option<String>,
    /// The lead's attributes, as in a single-lead request.
    pub fields: Option<Fields>,
}

/// Attribute name → value (a string, number, boolean or null). Its schema is an open object
/// whose values are described in words: OpenAPI 3.0 could only say "one of these types" with
/// `oneOf`, which Salesforce does not import.
#[derive(Debug, Default)]
pub struct Fields;

impl JsonSchema for Fields {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Fields".into()
    }

    // Inline, so that an optional `fields` is this object marked nullable rather than a
    // reference wrapped in `anyOf`.
    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "description": "Attribute name (as in the training CSV) -> value: a string, a number, \
                            true/false, or null for missing.",
            "additionalProperties": {
                "description": "A string, a number, true/false, or null (missing)."
            },
            "example": {"source": "Referral", "web_visits": 9, "demo_requested": true}
        })
    }
}

/// A scored lead: the gRPC `ScoreLeadResponse` fields, plus `reasons`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ScoreLeadResponse {
    pub lead_id: String,
    /// Calibrated probability that the lead closes, strictly inside (0, 1): within the model's
    /// horizon when it has one (see `GET /v1/model`, `probability_meaning`).
    pub probability: f64,
    /// 1..99, for sorting: round(100 × probability) clamped to 1..99.
    pub score: u32,
    /// Share of training leads (0..100) scored lower than this one.
    pub percentile: f64,
    /// A (best) .. D.
    pub grade: String,
    /// The attributes that moved this lead's score most: the top positive ones, strongest
    /// first, then the top negative ones.
    pub factors: Vec<Factor>,
    /// One plain sentence per factor, in the same order, for a CRM to show as it is.
    pub reasons: Vec<String>,
    pub model_version: String,
    /// Things the caller should know: fields ignored, unseen categories, imputed values.
    pub warnings: Vec<String>,
}

/// One attribute's contribution against an average training lead.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Factor {
    /// The attribute (CSV column name).
    pub field: String,
    /// The value as the model read it (normalised category, number, or "(missing)").
    pub value: String,
    /// Contribution in log-odds; positive raises the chance of closing.
    pub log_odds: f64,
    /// Closure rate of training leads with this value (numbers: the same quintile); null when
    /// unknown.
    pub closure_rate: Option<f64>,
    /// Training leads behind `closure_rate`.
    pub support: u64,
}

/// The results of a batch, in the order of its leads.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ScoreLeadsResponse {
    pub results: Vec<ScoreLeadResponse>,
}

/// The model in service (`GET /v1/model`).
#[derive(Debug, Serialize, JsonSchema)]
pub struct ModelInfo {
    pub model_version: String,
    /// RFC 3339.
    pub trained_at: String,
    pub fields: Vec<FieldInfo>,
    pub holdout: HoldoutMetrics,
    /// Closure rate of the training data.
    pub base_rate: f64,
    pub training_rows: u64,
    /// Lowest probability of each grade, best grade first (A, B, C; D is the rest).
    pub grade_cutoffs: Vec<GradeCutoff>,
    /// What the probability means, in one sentence.
    pub probability_meaning: String,
    /// Trained with a horizon: the probability is P(closes within this many days); null: the
    /// probability is P(ever closes).
    pub horizon_days: Option<u32>,
    /// With a horizon: the date (YYYY-MM-DD) outcomes were judged at.
    pub as_of: Option<String>,
    /// Spacing in days of the lead ages an aging model learned at; null: the scores do not age.
    pub period_days: Option<u32>,
}

/// An attribute the model reads.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FieldInfo {
    pub name: String,
    /// "numeric", "categorical" or "boolean".
    pub kind: String,
    /// Known levels of a categorical field (lower case, single spaces).
    pub categories: Vec<String>,
}

/// How the model did on leads held out of its training.
#[derive(Debug, Serialize, JsonSchema)]
pub struct HoldoutMetrics {
    pub rows: u64,
    /// null when the holdout has one class only.
    pub roc_auc: Option<f64>,
    pub log_loss: f64,
    pub brier: f64,
    pub expected_calibration_error: f64,
    pub mean_predicted: f64,
    pub realized_rate: f64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct GradeCutoff {
    pub grade: String,
    pub min_probability: f64,
}

/// Every error answer: `{"error": {"code", "message", "field"}}`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorBody {
    /// The gRPC status name a gRPC caller would get: INVALID_ARGUMENT (400), UNAUTHENTICATED
    /// (401), NOT_FOUND (404), UNIMPLEMENTED (405), DEADLINE_EXCEEDED (408), OUT_OF_RANGE (413),
    /// UNAVAILABLE (503).
    pub code: String,
    /// What is wrong, for people; the same text gRPC callers get.
    pub message: String,
    /// The request field at fault, e.g. `fields[web_visits]` or `leads[3].lead_id`; null when
    /// the request as a whole is.
    pub field: Option<String>,
}

/// `GET /healthz` and `GET /readyz`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Health {
    /// "ok" (alive), "ready" (a model is loaded), or "not ready" (no model yet, or shutting
    /// down).
    pub status: String,
}

/// The JSON answer for a scored lead; `numeric(field)` says whether an attribute is a number
/// (its reason then speaks of similar values rather than this value).
pub fn score_lead_response(
    response: pb::ScoreLeadResponse,
    numeric: impl Fn(&str) -> bool,
) -> ScoreLeadResponse {
    let pb::ScoreLeadResponse {
        lead_id,
        probability,
        score,
        percentile,
        grade,
        factors,
        model_version,
        warnings,
    } = response;
    let reasons = factors
        .iter()
        .map(|f| reason(f, numeric(&f.field)))
        .collect();
    ScoreLeadResponse {
        lead_id,
        probability,
        score,
        percentile,
        grade,
        factors: factors.into_iter().map(Factor::from).collect(),
        reasons,
        model_version,
        warnings,
    }
}

impl From<pb::Factor> for Factor {
    fn from(factor: pb::Factor) -> Factor {
        let pb::Factor {
            field,
            value,
            log_odds,
            closure_rate,
            support,
        } = factor;
        Factor {
            field,
            value,
            log_odds,
            closure_rate,
            support,
        }
    }
}

/// One plain sentence for a factor, e.g. "demo_requested = yes raises the chance; leads with
/// this value closed at 25%".
pub fn reason(factor: &pb::Factor, numeric: bool) -> String {
    let direction = if factor.log_odds >= 0.0 {
        "raises"
    } else {
        "lowers"
    };
    let (head, peers) = if factor.value == MISSING_LEVEL {
        (
            format!("{} is missing, which {direction} the chance", factor.field),
            "leads without it",
        )
    } else if numeric {
        (
            format!("{} = {} {direction} the chance", factor.field, factor.value),
            "leads with similar values",
        )
    } else {
        (
            format!("{} = {} {direction} the chance", factor.field, factor.value),
            "leads with this value",
        )
    };
    match factor.closure_rate {
        Some(rate) if rate.is_finite() => format!("{head}; {peers} closed at {}", percent(rate)),
        _ => head,
    }
}

/// A rate as a percentage a person reads: whole percents, one decimal below 10%.
fn percent(rate: f64) -> String {
    let pct = rate * 100.0;
    if pct.round() >= 10.0 || pct == 0.0 {
        format!("{pct:.0}%")
    } else {
        format!("{pct:.1}%")
    }
}

impl From<pb::ModelInfo> for ModelInfo {
    fn from(info: pb::ModelInfo) -> ModelInfo {
        let pb::ModelInfo {
            model_version,
            trained_at,
            fields,
            holdout,
            base_rate,
            training_rows,
            grade_cutoffs,
            probability_meaning,
            horizon_days,
            as_of,
            period_days,
        } = info;
        let pb::HoldoutMetrics {
            rows,
            roc_auc,
            log_loss,
            brier,
            expected_calibration_error,
            mean_predicted,
            realized_rate,
        } = holdout.unwrap_or_default();
        ModelInfo {
            model_version,
            trained_at,
            fields: fields
                .into_iter()
                .map(
                    |pb::FieldInfo {
                         name,
                         kind,
                         categories,
                     }| FieldInfo {
                        name,
                        kind,
                        categories,
                    },
                )
                .collect(),
            holdout: HoldoutMetrics {
                rows,
                // gRPC says "undefined" with NaN; JSON has no NaN, so null.
                roc_auc: roc_auc.is_finite().then_some(roc_auc),
                log_loss,
                brier,
                expected_calibration_error,
                mean_predicted,
                realized_rate,
            },
            base_rate,
            training_rows,
            grade_cutoffs: grade_cutoffs
                .into_iter()
                .map(
                    |pb::GradeCutoff {
                         grade,
                         min_probability,
                     }| GradeCutoff {
                        grade,
                        min_probability,
                    },
                )
                .collect(),
            probability_meaning,
            // gRPC says "none" with 0 and empty; JSON with null.
            horizon_days: (horizon_days > 0).then_some(horizon_days),
            as_of: (!as_of.is_empty()).then_some(as_of),
            period_days: (period_days > 0).then_some(period_days),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn factor(value: &str, log_odds: f64, closure_rate: Option<f64>) -> pb::Factor {
        pb::Factor {
            field: "demo_requested".into(),
            value: value.into(),
            log_odds,
            closure_rate,
            support: 10,
        }
    }

    #[test]
    fn a_reason_is_one_plain_sentence() {
        assert_eq!(
            reason(&factor("yes", 0.8, Some(0.25)), false),
            "demo_requested = yes raises the chance; leads with this value closed at 25%"
        );
        assert_eq!(
            reason(&factor("3", -0.2, Some(0.043)), true),
            "demo_requested = 3 lowers the chance; leads with similar values closed at 4.3%"
        );
        assert_eq!(
            reason(&factor(MISSING_LEVEL, -0.1, None), false),
            "demo_requested is missing, which lowers the chance"
        );
        assert_eq!(
            reason(&factor(MISSING_LEVEL, 0.1, Some(0.0)), false),
            "demo_requested is missing, which raises the chance; leads without it closed at 0%"
        );
    }
}
