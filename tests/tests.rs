//! The one integration-test binary (one link step: this machine has two cores).

mod common;
mod registry;
mod train;
