//! The integration tests: one binary (one link step).

mod server;
