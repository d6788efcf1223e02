//! Drift in time, when the holdout is the most recent leads (`--date`): each attribute of the
//! holdout against the training part, as `evaluate` measures new leads against a model
//! ([`crate::evaluate::feature_drift`]). An attribute that moved between the two parts is one
//! the holdout metrics already suffer from, and one the next leads will likely move further.
//!
//! The training part's distribution comes from an encoder fitted on the training part alone
//! (the served encoder has seen the holdout too), and the holdout is read through it.

use super::features::{bad_value, fit_encoder};
use super::{TrainConfig, TrainError, columns::Columns, holdout::Holdout};
use crate::data::Table;
use crate::encoder::RawValue;
use crate::evaluate::{DriftCounter, FeatureDrift};
use crate::schema::MissingTokens;

/// Each attribute's drift of the holdout against the training part.
pub(super) fn holdout_drift(
    table: &Table,
    config: &TrainConfig,
    columns: &Columns,
    holdout: &Holdout,
    missing: &MissingTokens,
) -> Result<FeatureDrift, TrainError> {
    let n_train = holdout.n_train;
    let encoder = fit_encoder(
        table,
        config,
        columns,
        &holdout.rows[..n_train],
        &holdout.won[..n_train],
        missing,
    )?;
    let mut counter = DriftCounter::new(&encoder);
    let mut features = vec![0.0; encoder.width()];
    let mut readings = Vec::with_capacity(columns.features.len());
    for &row in &holdout.rows[n_train..] {
        encoder
            .encode_row(
                |a| RawValue::Text(table.column(columns.features[a].0).get(row)),
                &mut features,
                &mut readings,
            )
            .map_err(|e| bad_value(table, (row, e)))?;
        counter.add(&readings);
    }
    Ok(counter.finish())
}
