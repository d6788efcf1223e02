//! Why training refused to produce a model: one enum for every step, each message naming the
//! file, line or flag to fix, so the CLI can print it as it is.

use crate::data::DataError;
use crate::registry::RegistryError;
use std::path::PathBuf;

/// Why training refused to produce a model. Nothing is written when any of these occurs.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(
        "--max-rows cannot be combined with --horizon: a lead's label (won within the horizon) \
         depends on the as-of date, known only once the whole file is read, so no sample can be \
         chosen while reading; train on a shorter export, or without --max-rows"
    )]
    SampleWithHorizon,
    #[error(
        "{path}: column {column:?} has values that are neither won, lost nor open: {values} \
         (first at line {line}); name the winning value with --positive VALUE, or the values \
         that mean \"still open\" with --open VALUES"
    )]
    UnknownOutcome {
        path: PathBuf,
        column: String,
        values: String,
        line: u64,
    },
    #[error(
        "{path}: {wins} won and {losses} lost leads; a sound model needs at least {need} of each \
         (export a longer period, or check the --target column and --positive value)"
    )]
    TooFewOutcomes {
        path: PathBuf,
        wins: usize,
        losses: usize,
        need: usize,
    },
    #[error(
        "{path}: the {part} ({method}) has {wins} won and {losses} lost leads; it needs at least \
         {need} of each (check the --date column, or train without --date for a stratified \
         holdout)"
    )]
    UnbalancedSplit {
        path: PathBuf,
        part: &'static str,
        method: String,
        wins: usize,
        losses: usize,
        need: usize,
    },
    #[error("{path}, line {line}: column {column:?}: {value:?} is not a date (use YYYY-MM-DD)")]
    BadDate {
        path: PathBuf,
        line: u64,
        column: String,
        value: String,
    },
    #[error("{path}, line {line}: {message}")]
    BadValue {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error(
        "{path}: the columns {first:?} and {second:?} are one field under the name rule (names \
         match ignoring case and spacing), so a lead could not say which it means; rename one, \
         or leave one out with --drop"
    )]
    SameFeatureName {
        path: PathBuf,
        first: String,
        second: String,
    },
    #[error("{path}: no usable feature columns remain (columns: {columns})")]
    NoFeatures { path: PathBuf, columns: String },
    #[error("--{flag} {column:?}: {reason}")]
    BadColumnChoice {
        flag: &'static str,
        column: String,
        reason: String,
    },
    #[error(
        "--horizon {days} needs {absent}: a lead is won within the horizon when its closed date \
         is at most {days} days after its created date"
    )]
    HorizonWithoutDates { days: u32, absent: String },
    #[error(
        "{path}, line {line}: column {column:?} is empty: with --horizon every lead needs a \
         created date to know whether its window has passed (fill it in, or remove the row)"
    )]
    NoCreatedDate {
        path: PathBuf,
        line: u64,
        column: String,
    },
    #[error(
        "{path}, line {line}: {dates}; {rows} row(s) like this: fix the dates in the export, or \
         remove those rows"
    )]
    ClosedBeforeCreated {
        path: PathBuf,
        line: u64,
        /// Which dates, in which columns: the closed one before the created one.
        dates: String,
        rows: usize,
    },
    #[error(
        "{path}, line {line}: the lead is won but column {column:?} is empty, so nobody can tell \
         whether it was won within {days} days; {rows} won row(s) like this: fill in the closed \
         dates, or pass --won-without-date drop to leave such leads out"
    )]
    WonWithoutClosedDate {
        path: PathBuf,
        line: u64,
        column: String,
        rows: usize,
        days: u32,
    },
    #[error(
        "{path}: only {won_within} leads were won within {days} days among the {matured} leads \
         whose window has passed (created by {matured_by}, {days} days before the as-of date \
         {as_of}); a sound model needs at least {need}: use a shorter --horizon, a later \
         --as-of, or export a longer period"
    )]
    HorizonTooLong {
        path: PathBuf,
        days: u32,
        won_within: usize,
        matured: usize,
        matured_by: String,
        as_of: String,
        need: usize,
    },
    #[error("the solver failed: {0}")]
    Solver(String),
    /// Only a library caller can pass these: the command line always has its four.
    #[error("L2 strengths to try (alphas): {0}")]
    BadAlphas(&'static str),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}
