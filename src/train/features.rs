//! The training matrix: the feature encoder fitted on the training data and the outcome rows
//! encoded with it, in the holdout's row order. The encoder is the same one batch scoring and
//! the server use, so training cannot see features differently from them.

use super::{TrainConfig, TrainError, columns::Columns, outcomes::Outcomes};
use crate::data::Table;
use crate::encoder::{FeatureEncoder, ValueError, encode_table};
use crate::schema::MissingTokens;
use ndarray::Array2;

/// Fits the encoder on every row with an outcome (it is unsupervised apart from the closure
/// rates kept for explanations) and encodes `matrix_rows` (table rows, in matrix order) into a
/// column-major matrix.
pub(super) fn encode(
    table: &Table,
    config: &TrainConfig,
    columns: &Columns,
    outcomes: &Outcomes,
    matrix_rows: &[usize],
    missing: &MissingTokens,
) -> Result<(FeatureEncoder, Array2<f64>), TrainError> {
    let encoder = fit_encoder(
        table,
        config,
        columns,
        &outcomes.rows,
        &outcomes.won,
        missing,
    )?;
    let feature_columns: Vec<usize> = columns.features.iter().map(|&(c, _)| c).collect();
    let x = encode_table(&encoder, table, &feature_columns, matrix_rows)
        .map_err(|e| bad_value(table, e))?;
    Ok((encoder, x))
}

/// The encoder of the feature columns fitted on the table rows `rows` (`won[i]` the outcome of
/// `rows[i]`).
pub(super) fn fit_encoder(
    table: &Table,
    config: &TrainConfig,
    columns: &Columns,
    rows: &[usize],
    won: &[bool],
    missing: &MissingTokens,
) -> Result<FeatureEncoder, TrainError> {
    FeatureEncoder::fit(
        columns
            .features
            .iter()
            .map(|&(c, kind)| (table.headers[c].as_str(), kind, table.column(c))),
        rows,
        won,
        missing,
        &config.encoder,
    )
    .map_err(|e| bad_value(table, e))
}

/// A cell the encoder cannot read, named by file and line.
pub(super) fn bad_value(table: &Table, (row, e): (usize, ValueError)) -> TrainError {
    TrainError::BadValue {
        path: table.path.clone(),
        line: table.lines[row],
        message: e.to_string(),
    }
}
