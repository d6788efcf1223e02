//! What `leadscore train` is told: one struct the CLI fills from its flags and tests build
//! directly, so every step reads its settings from the same place.

use crate::encoder::EncoderOptions;
use crate::schema::Kind;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Everything `leadscore train` is told.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub data: PathBuf,
    pub target: String,
    pub id: Option<String>,
    pub date: Option<String>,
    pub drop: Vec<String>,
    pub na: Vec<String>,
    pub positive: Option<String>,
    pub open: Vec<String>,
    pub kinds: BTreeMap<String, Kind>,
    /// Share of rows held out to measure the model.
    pub holdout_share: f64,
    pub seed: u64,
    /// Fewest won and fewest lost leads a sound model needs.
    pub min_class_rows: usize,
    pub max_iterations: u64,
    pub encoder: EncoderOptions,
    /// L2 strengths to try; the best on the validation split is used.
    pub alphas: Vec<f64>,
    /// Single-column ROC AUC at or above which a column is reported as probable leakage.
    pub leakage_auc: f64,
    /// The training time the artifact records and its version is named by; `None` reads the
    /// clock when the artifact is assembled. Versions are named by the second, so tests set
    /// distinct times here instead of waiting for the clock to move on.
    pub trained_at: Option<DateTime<Utc>>,
}

impl TrainConfig {
    pub fn new(data: impl Into<PathBuf>, target: impl Into<String>) -> TrainConfig {
        TrainConfig {
            data: data.into(),
            target: target.into(),
            id: None,
            date: None,
            drop: Vec::new(),
            na: Vec::new(),
            positive: None,
            open: Vec::new(),
            kinds: BTreeMap::new(),
            holdout_share: 0.2,
            seed: 42,
            min_class_rows: 40,
            max_iterations: 1000,
            encoder: EncoderOptions::default(),
            alphas: vec![100.0, 10.0, 1.0, 0.1],
            leakage_auc: 0.85,
            trained_at: None,
        }
    }
}
