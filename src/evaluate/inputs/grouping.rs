//! Filing each evaluated lead under its `--by` segments and its month, in both modes.

use super::Coverage;
use crate::data::Table;
use crate::evaluate::{EvaluateError, Labels, Leads};
use crate::schema::{MissingTokens, normalise_category, parse_date};
use chrono::{Datelike, NaiveDate};
use std::collections::HashMap;

/// Label given to a `--by` cell that is empty or a missing-value token. `--by` values that
/// differ only in case or spacing (`google`, `Google`) form one segment, shown as first spelled.
pub const MISSING_LABEL: &str = "(missing)";

/// The month a date is filed under: `YYYY-MM`.
pub(crate) fn month_label(date: NaiveDate) -> String {
    format!("{:04}-{:02}", date.year(), date.month())
}

/// The `--by` and date columns of a table, as label columns to fill row by row. Cells repeat
/// (a few reps, a few hundred days), so each distinct cell is normalised or parsed once.
pub(super) struct Grouping<'t> {
    table: &'t Table,
    columns: Vec<usize>,
    date: Option<usize>,
    missing: MissingTokens,
    /// Per `--by` column: cell text → label code.
    segment_codes: Vec<HashMap<&'t str, u32>>,
    /// Date cell text → its date.
    dates: HashMap<&'t str, Option<NaiveDate>>,
    /// year · 12 + month index → label code of the month.
    month_codes: HashMap<i32, u32>,
}

impl<'t> Grouping<'t> {
    pub(super) fn new(
        table: &'t Table,
        by: &[String],
        date: Option<&str>,
        missing: MissingTokens,
    ) -> Result<Grouping<'t>, EvaluateError> {
        let columns: Vec<usize> = by
            .iter()
            .map(|c| table.column_index(c))
            .collect::<Result<_, _>>()?;
        let date = date.map(|c| table.column_index(c)).transpose()?;
        Ok(Grouping {
            table,
            segment_codes: vec![HashMap::new(); columns.len()],
            columns,
            date,
            missing,
            dates: HashMap::new(),
            month_codes: HashMap::new(),
        })
    }

    /// Empty label columns, one per `--by` column, and one for the month when this table has
    /// the date column.
    pub(super) fn labels(&self) -> (Vec<Labels>, Option<Labels>) {
        let segments = self
            .columns
            .iter()
            .map(|&c| Labels::new(self.table.headers[c].clone()))
            .collect();
        let month = self
            .date
            .map(|c| Labels::new(self.table.headers[c].clone()));
        (segments, month)
    }

    pub(super) fn push_segments(&mut self, row: usize, leads: &mut Leads) {
        for ((labels, &c), cache) in leads
            .segments
            .iter_mut()
            .zip(&self.columns)
            .zip(&mut self.segment_codes)
        {
            let cell = self.table.column(c).get(row);
            if let Some(&code) = cache.get(cell) {
                labels.codes.push(code);
                continue;
            }
            if self.missing.is_missing(cell) {
                labels.push(MISSING_LABEL);
            } else {
                // Spellings that differ only in case or spacing are one segment, as in training.
                labels.push_keyed(&normalise_category(cell), cell);
            }
            cache.insert(cell, *labels.codes.last().expect("just pushed"));
        }
    }

    /// The date of the row's date cell, if the date column is this table's.
    pub(super) fn date_of_row(&mut self, row: usize) -> Option<Option<NaiveDate>> {
        let cell = self.table.column(self.date?).get(row);
        Some(*self.dates.entry(cell).or_insert_with(|| parse_date(cell)))
    }

    /// Files the lead under the month of `date`, or counts it in `without_month`.
    pub(super) fn push_month(
        &mut self,
        leads: &mut Leads,
        coverage: &mut Coverage,
        date: Option<NaiveDate>,
    ) {
        let Some(labels) = leads.month.as_mut() else {
            return;
        };
        match date {
            Some(d) => {
                let key = d.year() * 12 + d.month0() as i32;
                match self.month_codes.get(&key) {
                    Some(&code) => labels.codes.push(code),
                    None => {
                        labels.push(&month_label(d));
                        self.month_codes
                            .insert(key, *labels.codes.last().expect("just pushed"));
                    }
                }
            }
            None => {
                labels.push_none();
                coverage.without_month += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::parse_csv;
    use crate::evaluate::inputs::Mode;
    use std::path::Path;

    fn shown(labels: &Labels) -> Vec<&str> {
        labels
            .codes
            .iter()
            .map(|&c| {
                if c == Labels::NONE {
                    "-"
                } else {
                    labels.labels[c as usize].as_str()
                }
            })
            .collect()
    }

    #[test]
    fn segments_ignore_case_and_spacing_and_months_group_dates() {
        let table = parse_csv(
            Path::new("leads.csv"),
            b"source,created\nGoogle,2025-01-31\ngoogle ,2025-01-02\nNA,2025-02-01\n\
              Web,not a date\n  GOOGLE,2024-01-15\n",
        )
        .unwrap();
        let mut grouping = Grouping::new(
            &table,
            &["source".to_string()],
            Some("created"),
            MissingTokens::default(),
        )
        .unwrap();
        let (segments, month) = grouping.labels();
        assert_eq!(segments[0].name, "source");
        assert_eq!(month.as_ref().unwrap().name, "created");
        let mut leads = Leads {
            segments,
            month,
            ..Leads::default()
        };
        let mut coverage = Coverage::new(Mode::Backtest);
        for row in 0..table.rows() {
            grouping.push_segments(row, &mut leads);
            let date = grouping.date_of_row(row).flatten();
            grouping.push_month(&mut leads, &mut coverage, date);
        }
        assert_eq!(
            shown(&leads.segments[0]),
            ["Google", "Google", MISSING_LABEL, "Web", "Google"]
        );
        assert_eq!(leads.segments[0].labels.len(), 3);
        assert_eq!(
            shown(leads.month.as_ref().unwrap()),
            ["2025-01", "2025-01", "2025-02", "-", "2024-01"]
        );
        assert_eq!(coverage.without_month, 1, "the row with no valid date");
    }

    #[test]
    fn without_a_date_column_no_month_is_filed() {
        let table = parse_csv(Path::new("leads.csv"), b"source\nWeb\n").unwrap();
        let mut grouping = Grouping::new(&table, &[], None, MissingTokens::default()).unwrap();
        let (segments, month) = grouping.labels();
        assert!(segments.is_empty() && month.is_none());
        assert_eq!(grouping.date_of_row(0), None);
        let missing = Grouping::new(&table, &["rep".to_string()], None, MissingTokens::default());
        assert!(missing.is_err(), "a --by column the file lacks is refused");
    }
}
