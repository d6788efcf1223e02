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
    let bad_value = |(row, e): (usize, ValueError)| TrainError::BadValue {
        path: table.path.clone(),
        line: table.lines[row],
        message: e.to_string(),
    };
    let encoder = FeatureEncoder::fit(
        columns
            .features
            .iter()
            .map(|&(c, kind)| (table.headers[c].as_str(), kind, table.column(c))),
        &outcomes.rows,
        &outcomes.won,
        missing,
        &config.encoder,
    )
    .map_err(bad_value)?;
    let feature_columns: Vec<usize> = columns.features.iter().map(|&(c, _)| c).collect();
    let x = encode_table(&encoder, table, &feature_columns, matrix_rows).map_err(bad_value)?;
    Ok((encoder, x))
}
