//! Horizon labels (`--horizon DAYS`): a lead counts as won only when it was won within DAYS of
//! its created date, so the model answers "will this lead close within the next DAYS days?".
//!
//! Only leads whose whole window has passed by the as-of date (*matured*) are training rows:
//! won within the window is a win; lost, won later, or still open past the window is not. A
//! younger lead (*maturing*) is left out whatever its outcome so far: keeping the young leads
//! already decided would over-represent the fast outcomes, and calling the open ones lost would
//! understate the rate. Maturity depends on the created date only, so leaving them out does not
//! bias the labels. For a matured lead the label needs no date after the as-of date (a win
//! within the window happened before it), so an earlier `--as-of` trains as of that date.

use super::columns::Roles;
use super::config::WonWithoutDate;
use super::outcomes::Outcomes;
use super::{TrainConfig, TrainError};
use crate::data::Table;
use crate::model::{Horizon, HorizonCounts};
use crate::schema::{MissingTokens, parse_date};
use chrono::{Days, NaiveDate};

/// What a horizon labelling produced: the matured leads at creation, the horizon record, and
/// with a period the landmark rows.
pub(super) struct Labelled {
    pub outcomes: Outcomes,
    pub horizon: Horizon,
    pub landmarks: Option<Landmarks>,
}

/// The landmark rows (`--period P`): each lead at every age a = 0, P, 2P, … at which it was
/// still open and its window (a, a + H] had passed by the as-of date, labelled won when it
/// was won within that window. At age 0 they are exactly the matured leads at creation.
pub(super) struct Landmarks {
    /// Table row of each landmark row (a lead appears once per landmark).
    pub rows: Vec<usize>,
    /// The landmark age of each row, in days.
    pub ages: Vec<u32>,
    pub won: Vec<bool>,
    /// The date of each row's landmark (created + age), which orders the holdout.
    pub dates: Vec<NaiveDate>,
    /// The oldest landmark age with rows.
    pub max_age_days: u32,
}

/// The matured leads labelled won within the horizon or not, and how every lead was counted.
pub(super) fn label(
    table: &Table,
    config: &TrainConfig,
    roles: &Roles,
    outcomes: &Outcomes,
    missing: &MissingTokens,
) -> Result<Option<Labelled>, TrainError> {
    let Some(h) = &config.horizon else {
        return Ok(None);
    };
    let (created, closed) = match (roles.date, roles.closed) {
        (Some(created), Some(closed)) => (created, closed),
        (created, closed) => {
            let absent: Vec<&str> = [
                (created.is_none(), "--date CREATED_COLUMN"),
                (closed.is_none(), "--closed-at CLOSED_COLUMN"),
            ]
            .into_iter()
            .filter_map(|(absent, flag)| absent.then_some(flag))
            .collect();
            return Err(TrainError::HorizonWithoutDates {
                days: h.days,
                absent: absent.join(" and "),
            });
        }
    };
    let leads = read_dates(table, created, closed, outcomes, missing)?;
    let as_of = match h.as_of {
        Some(d) => d,
        None => match leads.iter().flat_map(|l| [Some(l.created), l.closed]).max() {
            Some(Some(d)) => d,
            // No rows at all.
            _ => {
                return Err(TrainError::TooFewOutcomes {
                    path: table.path.clone(),
                    wins: 0,
                    losses: 0,
                    need: config.min_class_rows,
                });
            }
        },
    };
    let undated_wins: Vec<usize> = leads
        .iter()
        .filter(|l| l.outcome == Outcome::Won && l.closed.is_none())
        .map(|l| l.row)
        .collect();
    if let (Some(&first), WonWithoutDate::Fail) = (undated_wins.first(), h.won_without_date) {
        return Err(TrainError::WonWithoutClosedDate {
            path: table.path.clone(),
            line: table.lines[first],
            column: table.headers[closed].clone(),
            rows: undated_wins.len(),
            days: h.days,
        });
    }
    let (labelled, counts) = assign(h.days, as_of, &leads);
    let horizon = Horizon {
        days: h.days,
        as_of: as_of.to_string(),
        created_column: table.headers[created].clone(),
        closed_column: table.headers[closed].clone(),
        period_days: h.period_days,
        counts,
    };
    if labelled.wins < config.min_class_rows {
        return Err(TrainError::HorizonTooLong {
            path: table.path.clone(),
            days: h.days,
            won_within: labelled.wins,
            matured: labelled.rows.len(),
            matured_by: horizon
                .matured_by()
                .map_or_else(|| "no date".into(), |d| d.to_string()),
            as_of: horizon.as_of.clone(),
            need: config.min_class_rows,
        });
    }
    let landmarks = h
        .period_days
        .map(|period| landmarks(h.days, period, as_of, &leads));
    Ok(Some(Labelled {
        outcomes: labelled,
        horizon,
        landmarks,
    }))
}

/// The landmark rows of `leads` (see [`Landmarks`]). Age 0 takes every matured lead as
/// [`assign`] does (a lead decided on its created date included); a later age takes the leads
/// not decided by that day. A lost lead without a closed date is known to be lost but not
/// since when, so it is a row at age 0 only.
fn landmarks(days: u32, period: u32, as_of: NaiveDate, leads: &[Dated]) -> Landmarks {
    let mut out = Landmarks {
        rows: Vec::new(),
        ages: Vec::new(),
        won: Vec::new(),
        dates: Vec::new(),
        max_age_days: 0,
    };
    let period = period.max(1);
    for lead in leads {
        if lead.outcome == Outcome::Won && lead.closed.is_none() {
            continue;
        }
        let mut age = 0u32;
        while let Some(landmark) = lead.created.checked_add_days(Days::new(age.into())) {
            let Some(end) = landmark.checked_add_days(Days::new(days.into())) else {
                break;
            };
            if end > as_of {
                break;
            }
            let open = match (lead.outcome, lead.closed) {
                (Outcome::Open, _) => true,
                (_, Some(closed)) => age == 0 || closed > landmark,
                (_, None) => age == 0,
            };
            if !open {
                break;
            }
            let won = lead.outcome == Outcome::Won && lead.closed.is_some_and(|c| c <= end);
            out.rows.push(lead.row);
            out.ages.push(age);
            out.won.push(won);
            out.dates.push(landmark);
            out.max_age_days = out.max_age_days.max(age);
            match age.checked_add(period) {
                Some(next) => age = next,
                None => break,
            }
        }
    }
    out
}

/// One lead's outcome and dates.
struct Dated {
    row: usize,
    outcome: Outcome,
    created: NaiveDate,
    closed: Option<NaiveDate>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Won,
    Lost,
    Open,
}

/// Every lead's dates, in file order; refuses an empty or unreadable created date, an unreadable
/// closed date, and a closed date before the created date.
fn read_dates(
    table: &Table,
    created: usize,
    closed: usize,
    outcomes: &Outcomes,
    missing: &MissingTokens,
) -> Result<Vec<Dated>, TrainError> {
    // Unreadable outcomes were refused before, so every row that is neither won nor lost is open.
    let mut outcome = vec![Outcome::Open; table.rows()];
    for (&row, &won) in outcomes.rows.iter().zip(&outcomes.won) {
        outcome[row] = if won { Outcome::Won } else { Outcome::Lost };
    }
    let date = |row: usize, column: usize| -> Result<Option<NaiveDate>, TrainError> {
        let cell = table.column(column).get(row);
        if missing.is_missing(cell) {
            return Ok(None);
        }
        parse_date(cell)
            .map(Some)
            .ok_or_else(|| TrainError::BadDate {
                path: table.path.clone(),
                line: table.lines[row],
                column: table.headers[column].clone(),
                value: cell.to_string(),
            })
    };
    let mut leads = Vec::with_capacity(table.rows());
    let mut backwards: Option<(usize, NaiveDate, NaiveDate)> = None;
    let mut backwards_count = 0;
    for (row, &outcome) in outcome.iter().enumerate() {
        let created_on = date(row, created)?.ok_or_else(|| TrainError::NoCreatedDate {
            path: table.path.clone(),
            line: table.lines[row],
            column: table.headers[created].clone(),
        })?;
        let closed_on = date(row, closed)?;
        if let Some(c) = closed_on.filter(|&c| c < created_on) {
            backwards_count += 1;
            backwards.get_or_insert((row, created_on, c));
        }
        leads.push(Dated {
            row,
            outcome,
            created: created_on,
            closed: closed_on,
        });
    }
    if let Some((row, created_on, closed_on)) = backwards {
        return Err(TrainError::ClosedBeforeCreated {
            path: table.path.clone(),
            line: table.lines[row],
            dates: format!(
                "closed on {closed_on} (column {:?}), before it was created on {created_on} \
                 (column {:?})",
                table.headers[closed], table.headers[created]
            ),
            rows: backwards_count,
        });
    }
    Ok(leads)
}

/// Labels the matured leads and counts every lead (won leads without a closed date are
/// dropped: refusing them is decided before).
fn assign(days: u32, as_of: NaiveDate, leads: &[Dated]) -> (Outcomes, HorizonCounts) {
    let window = Days::new(days.into());
    let mut counts = HorizonCounts::default();
    let (mut rows, mut won) = (Vec::new(), Vec::new());
    for lead in leads {
        if lead.outcome == Outcome::Won && lead.closed.is_none() {
            counts.won_without_date_dropped += 1;
            continue;
        }
        let window_ends = lead.created.checked_add_days(window);
        if window_ends.is_none_or(|end| end > as_of) {
            counts.maturing += 1;
            continue;
        }
        counts.matured += 1;
        let within = match (lead.outcome, lead.closed) {
            (Outcome::Won, Some(closed)) if Some(closed) <= window_ends => {
                counts.won_within += 1;
                true
            }
            (Outcome::Won, _) => {
                counts.won_after += 1;
                false
            }
            (Outcome::Lost, _) => {
                counts.lost += 1;
                false
            }
            (Outcome::Open, _) => {
                counts.open_past += 1;
                false
            }
        };
        rows.push(lead.row);
        won.push(within);
    }
    let wins = counts.won_within as usize;
    (
        Outcomes {
            losses: rows.len() - wins,
            wins,
            rows,
            won,
        },
        counts,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead(outcome: Outcome, created: &str, closed: Option<&str>) -> Dated {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        Dated {
            row: 0,
            outcome,
            created: d(created),
            closed: closed.map(d),
        }
    }

    #[test]
    fn the_window_edge_belongs_to_the_window() {
        let as_of = NaiveDate::from_ymd_opt(2025, 1, 11).unwrap();
        let leads = [
            // Closed on day 10 exactly: within. Created exactly 10 days before as-of: matured.
            lead(Outcome::Won, "2025-01-01", Some("2025-01-11")),
            // Day 11: after.
            lead(Outcome::Won, "2024-12-31", Some("2025-01-11")),
            // Created 9 days before as-of: maturing, even though it is already won.
            lead(Outcome::Won, "2025-01-02", Some("2025-01-03")),
        ];
        let (labelled, counts) = assign(10, as_of, &leads);
        assert_eq!(labelled.won, vec![true, false]);
        assert_eq!(
            (
                counts.matured,
                counts.maturing,
                counts.won_within,
                counts.won_after
            ),
            (2, 1, 1, 1)
        );
    }

    /// Landmark rows at ages 0, 30, 60 with a 30-day horizon, as of 2025-12-31: a lead is a row
    /// while still open at the landmark and its window has passed; won only within its window.
    #[test]
    fn landmark_rows_follow_each_lead_while_open() {
        let as_of = NaiveDate::from_ymd_opt(2025, 12, 31).unwrap();
        let leads = [
            // Won on day 45: open at 0 (not won within 30) and 30 (won within (30, 60]); decided
            // by 60.
            lead(Outcome::Won, "2025-01-01", Some("2025-02-15")),
            // Open throughout, created 70 days before as-of: ages 0 and 30 have passed windows
            // (30 + 30 = 60 ≤ 70), 60 not (90 > 70).
            lead(Outcome::Open, "2025-10-22", None),
            // Lost on day 10: age 0 only.
            lead(Outcome::Lost, "2025-01-01", Some("2025-01-11")),
            // Lost without a date: age 0 only.
            lead(Outcome::Lost, "2025-01-01", None),
        ];
        let mut leads = leads;
        for (i, l) in leads.iter_mut().enumerate() {
            l.row = i;
        }
        let l = landmarks(30, 30, as_of, &leads);
        assert_eq!(l.rows, vec![0, 0, 1, 1, 2, 3]);
        assert_eq!(l.ages, vec![0, 30, 0, 30, 0, 0]);
        assert_eq!(l.won, vec![false, true, false, false, false, false]);
        assert_eq!(l.max_age_days, 30);
    }
}
