//! The one integration-test binary (one link step: this machine has two cores).

mod bench;
mod cli;
mod common;
mod drift;
mod evaltime;
mod evaluate;
mod feature_drift;
mod hardening;
mod horizon;
mod json_api;
mod landmark;
mod leakage;
mod names;
mod parquet;
mod picture;
mod postgres;
mod properties;
mod refusals;
mod registry;
mod sampling;
mod server;
mod shapes;
mod support;
mod train;
mod warehouse;
