//! What `leadscore train` is told: one struct the CLI fills from its flags and tests build
//! directly, so every step reads its settings from the same place.

pub use super::sampling::MaxRows;
use crate::encoder::EncoderOptions;
use crate::schema::Kind;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Everything `leadscore train` is told.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    /// A CSV file, or a Postgres URL whose `query` gives the rows.
    pub data: PathBuf,
    /// `--query`: the rows to read when `data` is a Postgres URL.
    pub query: Option<String>,
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
    /// `--horizon`: label leads by whether they were won within this many days of creation.
    pub horizon: Option<HorizonConfig>,
    /// `--max-rows`: above this many rows, train on a sample (`sampling`).
    pub max_rows: MaxRows,
}

/// The settings of a horizon training (`--horizon DAYS --closed-at COL [--as-of DATE]`); the
/// created date is `TrainConfig::date`, which also orders the holdout.
#[derive(Debug, Clone)]
pub struct HorizonConfig {
    pub days: u32,
    /// The closed-date column (`--closed-at`): when a won or lost lead was decided.
    pub closed_at: Option<String>,
    /// The date outcomes are judged at; `None`: the latest created or closed date in the file.
    pub as_of: Option<NaiveDate>,
    pub won_without_date: WonWithoutDate,
    /// `--period DAYS`: landmark ages 0, P, 2P, … at which every lead still open is a training
    /// row, so the probability ages; `None`: leads at creation only (an age-0 model).
    pub period_days: Option<u32>,
    /// Whether age may interact with the attributes (chosen by validation); `false` keeps the
    /// age additive, for comparison.
    pub age_interactions: bool,
}

/// What to do with a won lead whose closed date is empty: without it, nobody can tell whether
/// it was won within the horizon.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum WonWithoutDate {
    /// Refuse the file, naming the first such line (the default: a guess would bias the rate).
    #[default]
    Fail,
    /// Leave such leads out of training, counted in the summary.
    Drop,
}

/// `train --shapes`: whether numeric attributes may get a curved effect. The command line
/// defaults to `auto`; the library's [`TrainConfig::new`] leaves `encoder.shapes` off, so code
/// that builds its own settings gets the linear model it always got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Shapes {
    /// A shape where it lowers the validation log loss on the training part beyond noise.
    #[default]
    Auto,
    /// Every number linear (the model as before shapes existed).
    Off,
}

impl HorizonConfig {
    pub fn new(days: u32, closed_at: impl Into<String>) -> HorizonConfig {
        HorizonConfig {
            days,
            closed_at: Some(closed_at.into()),
            as_of: None,
            won_without_date: WonWithoutDate::Fail,
            period_days: None,
            age_interactions: true,
        }
    }
}

impl TrainConfig {
    pub fn new(data: impl Into<PathBuf>, target: impl Into<String>) -> TrainConfig {
        TrainConfig {
            data: data.into(),
            query: None,
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
            horizon: None,
            max_rows: MaxRows::Auto,
        }
    }
}
