//! CSV bytes → `data::parse_csv` → per column `schema::infer_kind`, and every cell through the
//! outcome, number, flag and date readers.
//!
//! Any input may be refused (`DataError`); none may panic. A table that parses must be
//! rectangular, and what the readers return must keep their documented promises.

#![no_main]

use chrono::Datelike;
use leadscore::data::parse_csv;
use leadscore::schema::{
    MissingTokens, OutcomeParser, infer_kind, normalise_category, parse_date, parse_flag,
    parse_number,
};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|bytes: &[u8]| {
    let Ok(table) = parse_csv(Path::new("fuzz.csv"), bytes) else {
        return;
    };
    let rows = table.rows();
    assert!(rows > 0, "a table that parses has a lead");
    assert_eq!(table.headers.len(), table.columns.len());
    assert!(matches!(table.delimiter, b',' | b';'));

    let missing = MissingTokens::default();
    // The first cell, taken as a user's own `--na`, `--positive` and `--open` value, so those
    // paths see the file's own spellings.
    let first = table.column(0).get(0).to_string();
    let extra_missing = MissingTokens::with_extra(std::slice::from_ref(&first));
    let outcomes = OutcomeParser::default();
    let user_outcomes = OutcomeParser::new(
        Some(&first),
        std::slice::from_ref(&first),
        extra_missing.clone(),
    );

    for (index, (name, column)) in table.headers.iter().zip(&table.columns).enumerate() {
        assert_eq!(column.len(), rows, "column {name:?} is ragged");
        // Headers are unique, so the exact match is the column itself.
        assert_eq!(table.column_index(name).ok(), Some(index));

        for tokens in [&missing, &extra_missing] {
            let profile = infer_kind(name, column, tokens);
            assert!(profile.missing <= rows, "{profile:?}");
            assert!(profile.distinct <= rows, "{profile:?}");
        }

        for cell in column.iter() {
            assert_eq!(cell, cell.trim(), "cells are stored trimmed");
            let _ = outcomes.parse(cell);
            // `--positive` makes every known value won or lost: never "unknown".
            assert!(user_outcomes.parse(cell).is_some(), "{cell:?}");
            if let Some(v) = parse_number(cell) {
                assert!(v.is_finite(), "{cell:?} read as {v}");
            }
            let _ = parse_flag(cell);
            if let Some(date) = parse_date(cell) {
                // Two-digit years are refused rather than read as the first century.
                assert!(date.year() >= 1000, "{cell:?} read as {date}");
            }
            let normalised = normalise_category(cell);
            assert_eq!(normalise_category(&normalised), normalised, "idempotent");
        }
    }
});
