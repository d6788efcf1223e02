//! Real engines and tools the tests run: a PostgreSQL server ([`postgres`]), DuckDB
//! ([`duckdb`]) and other Python packages ([`python`]), each found on this machine or installed
//! by the tests themselves.

pub mod duckdb;
pub mod postgres;
pub mod python;
