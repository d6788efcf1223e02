//! Domain results → protobuf messages, and bad input → `Status`.
//!
//! Requests are read by [`super::wire`]; everything the server sends is built here, with struct
//! literals and exhaustive destructuring, so a field added to the proto or to the domain types
//! fails to compile until it is handled.

use super::pb;
use super::wire::WireError;
use crate::encoder::{Quoted, ValueError, echo};
use crate::model::{Factor, Model, Scored};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// `INVALID_ARGUMENT` naming the field, with a `google.rpc.BadRequest` field violation.
pub fn invalid_field(field: impl Into<String>, description: impl Into<String>) -> Status {
    let (field, description) = (field.into(), description.into());
    Status::with_error_details(
        Code::InvalidArgument,
        format!("{field}: {description}"),
        ErrorDetails::with_bad_request_violation(field, description),
    )
}

/// A value the model cannot use; `lead_path` locates the lead in the request (`lead`,
/// `leads[3]`).
pub fn invalid_value(lead_path: &str, error: ValueError) -> Status {
    let ValueError { field, message } = error;
    invalid_field(format!("{lead_path}.fields[{field}]"), message)
}

/// Two keys of one lead that denote the same model field (see [`crate::names`]): one
/// `google.rpc.BadRequest` violation for each key.
pub fn same_field(lead_path: &str, first: &str, second: &str, field: &str) -> Status {
    let description = format!(
        "{} and {} both name the model's field {field:?} (field names match ignoring case and \
         spacing); send it once",
        Quoted(first),
        Quoted(second)
    );
    let violations = [first, second].map(|key| {
        FieldViolation::new(
            format!("{lead_path}.fields[{}]", echo(key)),
            description.clone(),
        )
    });
    Status::with_error_details(
        Code::InvalidArgument,
        format!("{lead_path}.fields: {description}"),
        ErrorDetails::with_bad_request(violations),
    )
}

/// A lead none of whose keys denotes a field of `model`: the message lists the expected names.
pub fn no_known_field(lead_path: &str, empty: bool, model: &Model) -> Status {
    let what = if empty {
        "the lead has no fields"
    } else {
        "none of the lead's fields is a field of the model"
    };
    invalid_field(
        format!("{lead_path}.fields"),
        format!(
            "{what}; model {} scores leads on {} (field names match ignoring case and spacing): \
             send at least one",
            model.version(),
            model.fields().expected()
        ),
    )
}

impl From<WireError> for Status {
    fn from(error: WireError) -> Status {
        Status::invalid_argument(error.to_string())
    }
}

impl From<Factor> for pb::Factor {
    fn from(factor: Factor) -> pb::Factor {
        let Factor {
            field,
            value,
            log_odds,
            closure_rate,
            support,
        } = factor;
        pb::Factor {
            field,
            value,
            log_odds,
            closure_rate,
            support,
        }
    }
}

/// The response for one scored lead. `warnings` come first (the server's own, e.g. unknown
/// fields), then the model's.
pub fn score_response(
    lead_id: &str,
    scored: Scored,
    model_version: &str,
    mut warnings: Vec<String>,
) -> pb::ScoreLeadResponse {
    let Scored {
        probability,
        score,
        percentile,
        grade,
        factors,
        warnings: model_warnings,
        out_of_range: _,
    } = scored;
    warnings.extend(model_warnings);
    pb::ScoreLeadResponse {
        lead_id: lead_id.to_string(),
        probability,
        score,
        percentile,
        grade,
        factors: factors.into_iter().map(pb::Factor::from).collect(),
        model_version: model_version.to_string(),
        warnings,
    }
}

impl From<&Model> for pb::ModelInfo {
    fn from(model: &Model) -> pb::ModelInfo {
        let artifact = &model.artifact;
        let fields = artifact
            .encoder
            .attributes
            .iter()
            .map(|attribute| pb::FieldInfo {
                name: attribute.name.clone(),
                kind: attribute.kind().to_string(),
                categories: match &attribute.encoding {
                    crate::encoder::Encoding::Categorical { levels, .. } => levels.clone(),
                    _ => Vec::new(),
                },
            })
            .collect();
        let crate::metrics::Summary {
            leads,
            wins: _,
            realized_rate,
            mean_predicted,
            roc_auc,
            log_loss,
            brier,
            expected_calibration_error,
        } = artifact.holdout.metrics;
        pb::ModelInfo {
            model_version: artifact.model_version.clone(),
            trained_at: artifact.trained_at.clone(),
            fields,
            holdout: Some(pb::HoldoutMetrics {
                rows: leads,
                // Undefined when the holdout has one class only; NaN says so in a double.
                roc_auc: roc_auc.unwrap_or(f64::NAN),
                log_loss,
                brier,
                expected_calibration_error,
                mean_predicted,
                realized_rate,
            }),
            base_rate: artifact.data.base_rate,
            training_rows: artifact.data.training_rows,
            grade_cutoffs: artifact
                .grades
                .iter()
                .map(|g| pb::GradeCutoff {
                    grade: g.grade.clone(),
                    min_probability: g.min_probability,
                })
                .collect(),
            probability_meaning: artifact.probability_meaning(),
            horizon_days: artifact.horizon.as_ref().map_or(0, |h| h.days),
            as_of: artifact
                .horizon
                .as_ref()
                .map_or_else(String::new, |h| h.as_of.clone()),
            period_days: artifact
                .horizon
                .as_ref()
                .and_then(|h| h.period_days)
                .unwrap_or(0),
        }
    }
}
