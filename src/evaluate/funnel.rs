//! Funnel stages (`evaluate --funnel COL1,COL2,...`): of the leads that reached one stage, how
//! many reached the next, with a Wilson 95% interval, and how many days it took (median and
//! 90th percentile), overall, per `--by` segment and per month of entering the stage.
//!
//! A lead reached a stage when its date cell holds a date (the last stage may be the outcome
//! column: reached when won, on no known date). A step counts the leads that reached its first
//! stage; a lead that reached the second without the first is not in that step. Percentiles are
//! by nearest rank: the smallest number of days that at least that share of the converted leads
//! (with both dates) took, so each is a day some lead actually took.

use super::Labels;
use super::inputs::grouping::month_label;
use crate::metrics::{Z_95, wilson_interval};
use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Whether one lead reached one stage, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reached {
    No,
    /// Reached on a date unknown (the outcome stage: won).
    Undated,
    On(NaiveDate),
}

/// One step between two consecutive stages, for one group of leads.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRow {
    /// The stage the leads entered.
    pub from: String,
    /// The next stage.
    pub to: String,
    /// The segment value or `YYYY-MM` of entering `from`; `all` in the overall table.
    pub group: String,
    /// Leads that reached `from`.
    pub entered: u64,
    /// Of those, leads that reached `to`.
    pub converted: u64,
    /// converted / entered.
    pub rate: f64,
    /// Wilson 95% interval of the rate.
    pub ci_low: f64,
    pub ci_high: f64,
    /// Converted leads with both dates: the ones the days are over.
    pub timed: u64,
    /// Median and 90th percentile (nearest rank) of the days from `from` to `to`; absent when
    /// no converted lead has both dates.
    pub median_days: Option<i64>,
    pub p90_days: Option<i64>,
}

/// The steps of one `--by` column, per value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunnelSegments {
    pub column: String,
    /// Per value (in order of first appearance), every step.
    pub rows: Vec<StepRow>,
}

/// The whole funnel. Field names are part of the JSON contract (docs/evaluation.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Funnel {
    /// The stage columns, in order.
    pub stages: Vec<String>,
    /// Leads (rows) read.
    pub leads: u64,
    /// Leads that reached each stage, in stage order.
    pub reached: Vec<u64>,
    /// One row per step, over all leads.
    pub steps: Vec<StepRow>,
    pub segments: Vec<FunnelSegments>,
    /// One row per step and month of entering its first stage, step by step, months in order.
    pub months: Vec<StepRow>,
}

/// The funnel of `stages[s][lead]` (what each lead reached at each stage), cut by `segments`
/// (one label per lead and `--by` column).
pub fn funnel(names: &[String], stages: &[Vec<Reached>], segments: &[Labels]) -> Funnel {
    let leads = stages.first().map_or(0, Vec::len);
    let everyone = vec![0u32; leads];
    let mut steps = Vec::new();
    let mut months = Vec::new();
    let mut by: Vec<FunnelSegments> = segments
        .iter()
        .map(|labels| FunnelSegments {
            column: labels.name.clone(),
            rows: Vec::new(),
        })
        .collect();
    for step in 0..stages.len().saturating_sub(1) {
        let (from, to) = (&stages[step], &stages[step + 1]);
        let row = |group: &str, tally: &Tally| tally.row(&names[step], &names[step + 1], group);
        steps.push(row("all", &tally(from, to, &everyone, 1)[0]));
        for (table, labels) in by.iter_mut().zip(segments) {
            let tallies = tally(from, to, &labels.codes, labels.labels.len());
            for (label, t) in labels.labels.iter().zip(&tallies) {
                if t.entered > 0 {
                    table.rows.push(row(label, t));
                }
            }
        }
        let (codes, month_labels) = entry_months(from);
        let tallies = tally(from, to, &codes, month_labels.len());
        for (label, t) in month_labels.iter().zip(&tallies) {
            months.push(row(label, t));
        }
    }
    Funnel {
        stages: names.to_vec(),
        leads: leads as u64,
        reached: stages
            .iter()
            .map(|s| s.iter().filter(|r| **r != Reached::No).count() as u64)
            .collect(),
        steps,
        segments: by,
        months,
    }
}

/// The leads of one group in one step.
#[derive(Debug, Clone, Default)]
struct Tally {
    entered: u64,
    converted: u64,
    days: Vec<i64>,
}

impl Tally {
    fn row(&self, from: &str, to: &str, group: &str) -> StepRow {
        let (ci_low, ci_high) = wilson_interval(self.converted, self.entered, Z_95);
        let mut days = self.days.clone();
        days.sort_unstable();
        StepRow {
            from: from.to_string(),
            to: to.to_string(),
            group: group.to_string(),
            entered: self.entered,
            converted: self.converted,
            rate: self.converted as f64 / self.entered.max(1) as f64,
            ci_low,
            ci_high,
            timed: days.len() as u64,
            median_days: nearest_rank(&days, 0.5),
            p90_days: nearest_rank(&days, 0.9),
        }
    }
}

/// One tally per group code (`Labels::NONE` leads are left out).
fn tally(from: &[Reached], to: &[Reached], codes: &[u32], groups: usize) -> Vec<Tally> {
    let mut tallies = vec![Tally::default(); groups];
    for ((a, b), &code) in from.iter().zip(to).zip(codes) {
        if *a == Reached::No || code == Labels::NONE {
            continue;
        }
        let t = &mut tallies[code as usize];
        t.entered += 1;
        if *b == Reached::No {
            continue;
        }
        t.converted += 1;
        if let (Reached::On(start), Reached::On(end)) = (a, b) {
            t.days.push((*end - *start).num_days());
        }
    }
    tallies
}

/// Each lead's month of entering a stage, as codes into the months in order (leads that did
/// not enter on a known date get `Labels::NONE`).
fn entry_months(stage: &[Reached]) -> (Vec<u32>, Vec<String>) {
    // A date's month as its first day: ordered like the months, labelled by `month_label`.
    let month = |d: &NaiveDate| d.with_day(1).unwrap_or(*d);
    let months: BTreeSet<NaiveDate> = stage
        .iter()
        .filter_map(|r| match r {
            Reached::On(d) => Some(month(d)),
            _ => None,
        })
        .collect();
    let index: BTreeMap<NaiveDate, u32> = months
        .iter()
        .enumerate()
        .map(|(i, &m)| (m, i as u32))
        .collect();
    let codes = stage
        .iter()
        .map(|r| match r {
            Reached::On(d) => index[&month(d)],
            _ => Labels::NONE,
        })
        .collect();
    let labels = months.into_iter().map(month_label).collect();
    (codes, labels)
}

/// The smallest value at least `share` of the sorted `values` are at or below.
fn nearest_rank(sorted: &[i64], share: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (share * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(text: &str) -> Reached {
        Reached::On(NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap())
    }

    #[test]
    fn nearest_rank_is_a_value_some_lead_took() {
        assert_eq!(nearest_rank(&[], 0.5), None);
        assert_eq!(nearest_rank(&[7], 0.9), Some(7));
        // Four values: the median is the 2nd, the 90th percentile the 4th.
        assert_eq!(nearest_rank(&[1, 2, 3, 10], 0.5), Some(2));
        assert_eq!(nearest_rank(&[1, 2, 3, 10], 0.9), Some(10));
        // Ten values: the 9th is the 90th percentile.
        let ten: Vec<i64> = (1..=10).collect();
        assert_eq!(nearest_rank(&ten, 0.9), Some(9));
        assert_eq!(nearest_rank(&ten, 0.5), Some(5));
    }

    #[test]
    fn steps_months_and_segments_are_counted_lead_by_lead() {
        let names = vec!["mql".to_string(), "sql".to_string(), "won".to_string()];
        // Five leads: A and B reach every stage, C stops at sql, D at mql, E skips mql.
        let mql = vec![
            on("2025-01-01"),
            on("2025-01-10"),
            on("2025-02-01"),
            on("2025-02-03"),
            Reached::No,
        ];
        let sql = vec![
            on("2025-01-04"),
            on("2025-01-30"),
            on("2025-02-02"),
            Reached::No,
            on("2025-02-05"),
        ];
        let won = vec![
            Reached::Undated,
            Reached::Undated,
            Reached::No,
            Reached::No,
            Reached::Undated,
        ];
        let mut rep = Labels::new("rep");
        for r in ["Ann", "Bo", "Ann", "Bo", "Bo"] {
            rep.push(r);
        }
        let f = funnel(&names, &[mql, sql, won], &[rep]);
        assert_eq!(f.leads, 5);
        assert_eq!(f.reached, [4, 4, 3]);
        let first = &f.steps[0];
        assert_eq!((first.entered, first.converted, first.timed), (4, 3, 3));
        assert_eq!(first.rate, 0.75);
        assert_eq!(wilson_interval(3, 4, Z_95), (first.ci_low, first.ci_high));
        // Days 3, 20, 1 → sorted 1, 3, 20: median the 2nd, 90th percentile the 3rd.
        assert_eq!((first.median_days, first.p90_days), (Some(3), Some(20)));
        let second = &f.steps[1];
        assert_eq!((second.entered, second.converted, second.timed), (4, 3, 0));
        assert_eq!(second.median_days, None);
        // Months of entering mql: January (A, B: both convert), February (C converts, D not).
        let jan = &f.months[0];
        assert_eq!(
            (jan.group.as_str(), jan.entered, jan.converted),
            ("2025-01", 2, 2)
        );
        assert_eq!((jan.median_days, jan.p90_days), (Some(3), Some(20)));
        let feb = &f.months[1];
        assert_eq!(
            (feb.group.as_str(), feb.entered, feb.converted),
            ("2025-02", 2, 1)
        );
        // Second step by month of entering sql: Jan A, B (won); Feb C (not), E (won).
        let feb_sql = &f.months[3];
        assert_eq!(
            (feb_sql.from.as_str(), feb_sql.group.as_str()),
            ("sql", "2025-02")
        );
        assert_eq!((feb_sql.entered, feb_sql.converted), (2, 1));
        // Per rep, first step: Ann has A (3 days) and C (1 day), Bo has B (20) and D.
        let reps = &f.segments[0].rows;
        let ann = &reps[0];
        assert_eq!(
            (ann.group.as_str(), ann.entered, ann.converted),
            ("Ann", 2, 2)
        );
        assert_eq!((ann.median_days, ann.p90_days), (Some(1), Some(3)));
        let bo = &reps[1];
        assert_eq!((bo.group.as_str(), bo.entered, bo.converted), ("Bo", 2, 1));
    }
}
