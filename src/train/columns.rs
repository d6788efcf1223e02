//! Column roles: which column is the target, the id, the date, dropped, or a feature (and of
//! what kind). Every column gets a role and a reason, so the summary and the artifact can say
//! why a column was not used.

use super::{TrainConfig, TrainError};
use crate::data::Table;
use crate::model::ColumnSummary;
use crate::schema::{Kind, MissingTokens, infer_kind};

/// The columns named on the command line, as table columns.
pub(super) struct Roles {
    pub target: usize,
    pub id: Option<usize>,
    /// Orders the holdout when given.
    pub date: Option<usize>,
    /// The closed-date column of a horizon training (`--closed-at`).
    pub closed: Option<usize>,
    pub dropped: Vec<usize>,
}

impl Roles {
    /// Finds the named columns; a name that matches no column, or an id or date that is the
    /// target, is an error.
    pub fn resolve(
        table: &Table,
        config: &TrainConfig,
        target: usize,
    ) -> Result<Roles, TrainError> {
        let id = config
            .id
            .as_deref()
            .map(|c| table.column_index(c))
            .transpose()?;
        let date = config
            .date
            .as_deref()
            .map(|c| table.column_index(c))
            .transpose()?;
        let closed = config
            .horizon
            .as_ref()
            .and_then(|h| h.closed_at.as_deref())
            .map(|c| table.column_index(c))
            .transpose()?;
        if closed.is_some() && closed == date {
            return Err(TrainError::BadColumnChoice {
                flag: "closed-at",
                column: table.headers[date.unwrap_or_default()].clone(),
                reason: "is also the --date column (the created date)".into(),
            });
        }
        for (flag, column) in [("id", id), ("date", date), ("closed-at", closed)] {
            if column == Some(target) {
                return Err(TrainError::BadColumnChoice {
                    flag,
                    column: table.headers[target].clone(),
                    reason: "is the --target column".into(),
                });
            }
        }
        let mut dropped = Vec::new();
        for name in &config.drop {
            dropped.push(table.column_index(name)?);
        }
        for name in config.kinds.keys() {
            table.column_index(name)?;
        }
        Ok(Roles {
            target,
            id,
            date,
            closed,
            dropped,
        })
    }
}

/// Every column's role, and the feature columns among them.
pub(super) struct Columns {
    /// Table column and kind of each feature, in table order (the encoder's attribute order).
    pub features: Vec<(usize, Kind)>,
    /// Every column with its kind and role, for the artifact.
    pub summaries: Vec<ColumnSummary>,
}

/// Infers each column's kind (or takes it from `--kind`) and gives it a role. Refuses data
/// that leaves no feature.
pub(super) fn assign_roles(
    table: &Table,
    config: &TrainConfig,
    roles: &Roles,
    missing: &MissingTokens,
) -> Result<Columns, TrainError> {
    let mut features: Vec<(usize, Kind)> = Vec::new();
    let mut summaries = Vec::new();
    for (c, name) in table.headers.iter().enumerate() {
        let mut profile = infer_kind(name, table.column(c), missing);
        if let Some((_, &kind)) = config
            .kinds
            .iter()
            .find(|(n, _)| table.column_index(n).ok() == Some(c))
        {
            profile.kind = kind;
            profile.reason = "set with --kind".into();
        }
        // The kind is stored beside the role, so a role names only what the kind does not.
        let role = if c == roles.target {
            "target".to_string()
        } else if Some(c) == roles.id {
            "id (--id)".to_string()
        } else if Some(c) == roles.date {
            if roles.closed.is_some() {
                "created date: orders the holdout, dates the horizon (--date)".to_string()
            } else {
                "orders the holdout (--date)".to_string()
            }
        } else if Some(c) == roles.closed {
            "closed date: dates the horizon (--closed-at)".to_string()
        } else if roles.dropped.contains(&c) {
            "dropped (--drop)".to_string()
        } else if profile.kind.is_feature() {
            features.push((c, profile.kind));
            "feature".to_string()
        } else {
            format!("not a feature: {}", profile.reason)
        };
        summaries.push(ColumnSummary {
            name: name.clone(),
            kind: profile.kind,
            role,
            missing: profile.missing as u64,
            distinct: profile.distinct as u64,
        });
    }
    // Every scoring path matches a lead's names to features by the name rule: two features one
    // name could denote would make the model's own fields ambiguous.
    for (i, &(second, _)) in features.iter().enumerate() {
        if let Some(&(first, _)) = features[..i]
            .iter()
            .find(|&&(first, _)| crate::names::same(&table.headers[first], &table.headers[second]))
        {
            return Err(TrainError::SameFeatureName {
                path: table.path.clone(),
                first: table.headers[first].clone(),
                second: table.headers[second].clone(),
            });
        }
    }
    if features.is_empty() {
        return Err(TrainError::NoFeatures {
            path: table.path.clone(),
            columns: summaries
                .iter()
                .map(|c| format!("{} ({}, {})", c.name, c.kind, c.role))
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
    Ok(Columns {
        features,
        summaries,
    })
}
