//! leadscore: lead scoring that learns closure probabilities from a CRM's history, serves them
//! over gRPC, and checks them against realized closure rates.
//!
//! # Layout
//! - [`data`] reads a CSV export into memory, column by column, with file/line errors.
//! - [`postgres`] reads a Postgres query's rows as leads and writes scored leads into a table.
//! - [`names`] decides which model field a CSV header or request key denotes: one rule for all.
//! - [`schema`] infers column kinds, missing-value tokens and outcome values.
//! - [`encoder`] turns attribute values into features; the one encoder every path shares
//!   (fitted once per training, applied on every scoring path).
//! - [`train`] splits, fits (linfa-logistic) and measures a model, one step per file; the only
//!   user of linfa.
//! - [`aging`] turns a lead's age into the age terms of a model that ages its scores.
//! - [`model`] is the versioned artifact and the scoring arithmetic over it.
//! - [`registry`] stores versions under `models/` and promotes them atomically.
//! - [`score`] batch-scores a CSV into a call list.
//! - [`warehouse`] writes a model as one SQL `SELECT` that scores a table inside a warehouse.
//! - [`metrics`] computes AUC, log loss, Brier score and calibration.
//! - [`evaluate`] compares predicted with realized closure rates and writes the reports.
//! - [`sample`] writes synthetic leads from known true coefficients (and, with closed dates, known
//!   closing delays).
//! - [`fsutil`] writes files atomically.
//! - [`server`] is the gRPC scoring server; the only user of the generated protobuf types
//!   ([`server::pb`]).
//! - [`cli`] parses the command line and prints results.

pub mod aging;
pub mod cli;
pub mod data;
pub mod encoder;
pub mod evaluate;
pub mod fsutil;
pub mod id_sketch;
pub mod metrics;
pub mod model;
pub mod names;
pub mod postgres;
pub mod registry;
pub mod sample;
pub mod schema;
pub mod score;
pub mod server;
pub mod train;
pub mod warehouse;
