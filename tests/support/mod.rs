//! Real engines the tests run against: a PostgreSQL server ([`postgres`]) and DuckDB
//! ([`duckdb`]), each found on this machine or installed by the tests themselves.

pub mod duckdb;
pub mod postgres;
