//! The evaluator's tables: calibration by probability band, closure rate per label (grade,
//! segment, month) against the company average, and lift and gains by decile.

use super::Labels;
use crate::metrics::{CalibrationBin, Z_95, calibration_bins, wilson_interval};
use serde::Serialize;

/// One probability band of a calibration table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BandRow {
    /// Band [lower, upper); the last equal-width band includes 1. For equal-count bands, the
    /// lowest and highest probability in the band.
    pub lower: f64,
    pub upper: f64,
    pub leads: u64,
    pub wins: u64,
    pub mean_predicted: f64,
    pub realized_rate: f64,
    /// Wilson 95% interval of the realized rate.
    pub ci_low: f64,
    pub ci_high: f64,
    /// The mean prediction lies outside the interval: the band is miscalibrated beyond chance.
    pub prediction_outside: bool,
}

impl BandRow {
    fn new(lower: f64, upper: f64, leads: u64, wins: u64, predicted_sum: f64) -> BandRow {
        let (ci_low, ci_high) = wilson_interval(wins, leads, Z_95);
        let mean_predicted = predicted_sum / leads.max(1) as f64;
        BandRow {
            lower,
            upper,
            leads,
            wins,
            mean_predicted,
            realized_rate: wins as f64 / leads.max(1) as f64,
            ci_low,
            ci_high,
            prediction_outside: mean_predicted < ci_low || mean_predicted > ci_high,
        }
    }

    pub fn as_bin(&self) -> CalibrationBin {
        CalibrationBin {
            lower: self.lower,
            upper: self.upper,
            leads: self.leads,
            wins: self.wins,
            mean_predicted: self.mean_predicted,
            realized_rate: self.realized_rate,
        }
    }
}

/// Equal-width bands over [0, 1]; empty bands are left out (the bands of
/// [`calibration_bins`], with their intervals).
pub fn equal_width_bands(probabilities: &[f64], won: &[bool], bins: usize) -> Vec<BandRow> {
    calibration_bins(probabilities, won, bins.max(1))
        .into_iter()
        .map(|b| {
            let total = b.mean_predicted * b.leads as f64;
            BandRow::new(b.lower, b.upper, b.leads, b.wins, total)
        })
        .collect()
}

/// Splits `sorted` (ascending probability) into about `parts` runs of equal length, moving each
/// cut forward past leads tied with the one before it, so equal probabilities share a run.
pub fn equal_count_runs(sorted: &[(f64, bool)], parts: usize) -> Vec<std::ops::Range<usize>> {
    let n = sorted.len();
    let parts = parts.max(1);
    let mut runs = Vec::with_capacity(parts);
    let mut start = 0;
    for k in 1..=parts {
        let mut end = (k * n / parts).max(start);
        while end > 0 && end < n && sorted[end].0 == sorted[end - 1].0 {
            end += 1;
        }
        if end > start {
            runs.push(start..end);
            start = end;
        }
    }
    runs
}

/// Bands of about equally many leads (`sorted` ascending by probability).
pub fn equal_count_bands(sorted: &[(f64, bool)], bins: usize) -> Vec<BandRow> {
    equal_count_runs(sorted, bins)
        .into_iter()
        .map(|run| {
            let part = &sorted[run];
            let wins = part.iter().filter(|x| x.1).count() as u64;
            let total: f64 = part.iter().map(|x| x.0).sum();
            BandRow::new(
                part[0].0,
                part[part.len() - 1].0,
                part.len() as u64,
                wins,
                total,
            )
        })
        .collect()
}

/// Closure rate of the leads sharing one label (a grade, a segment value, a month).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RateRow {
    pub label: String,
    pub leads: u64,
    pub wins: u64,
    pub realized_rate: f64,
    /// Wilson 95% interval of the realized rate.
    pub ci_low: f64,
    pub ci_high: f64,
    pub mean_predicted: f64,
    /// realized_rate − the company average (the realized rate of all evaluated leads).
    pub difference: f64,
    /// 95% interval of the difference. The average contains this group, so the difference is
    /// (1 − share) × (rate here − rate of all other leads), where share is this group's share
    /// of the leads; the interval is Newcombe's hybrid score interval for the difference of the
    /// two rates (from their Wilson intervals), scaled by (1 − share).
    pub difference_low: f64,
    pub difference_high: f64,
    /// The difference interval excludes 0: not chance, at 95% for this row alone (with k rows,
    /// about 0.05·k rows are flagged by chance when nothing differs).
    pub significant: bool,
    /// The mean prediction lies outside the interval: the model misjudges this group.
    pub prediction_outside: bool,
}

/// One row per label, in label order; leads without a label are left out (the caller counts
/// them).
pub fn rate_rows(
    labels: &Labels,
    probabilities: &[f64],
    won: &[bool],
    average: f64,
) -> Vec<RateRow> {
    let all_leads = won.len() as u64;
    let all_wins = won.iter().filter(|&&w| w).count() as u64;
    let mut sums = vec![(0u64, 0u64, 0.0f64); labels.labels.len()];
    for ((&code, &p), &w) in labels.codes.iter().zip(probabilities).zip(won) {
        if code == Labels::NONE {
            continue;
        }
        let s = &mut sums[code as usize];
        s.0 += 1;
        s.1 += w as u64;
        s.2 += p;
    }
    labels
        .labels
        .iter()
        .zip(sums)
        .filter(|(_, s)| s.0 > 0)
        .map(|(label, (leads, wins, total))| {
            let (ci_low, ci_high) = wilson_interval(wins, leads, Z_95);
            let realized_rate = wins as f64 / leads as f64;
            let mean_predicted = total / leads as f64;
            let (difference_low, difference_high) =
                difference_interval(wins, leads, all_wins - wins, all_leads - leads);
            RateRow {
                label: label.clone(),
                leads,
                wins,
                realized_rate,
                ci_low,
                ci_high,
                mean_predicted,
                difference: realized_rate - average,
                difference_low,
                difference_high,
                significant: difference_low > 0.0 || difference_high < 0.0,
                prediction_outside: mean_predicted < ci_low || mean_predicted > ci_high,
            }
        })
        .collect()
}

/// 95% interval of (group rate − average rate) for a group of `leads` with `wins` and the
/// `rest_leads` other leads with `rest_wins`: Newcombe's hybrid score interval for the difference
/// of the two rates, scaled by the rest's share (see [`RateRow::difference_low`]).
fn difference_interval(wins: u64, leads: u64, rest_wins: u64, rest_leads: u64) -> (f64, f64) {
    if rest_leads == 0 {
        return (0.0, 0.0);
    }
    let (p1, p2) = (
        wins as f64 / leads as f64,
        rest_wins as f64 / rest_leads as f64,
    );
    let (l1, u1) = wilson_interval(wins, leads, Z_95);
    let (l2, u2) = wilson_interval(rest_wins, rest_leads, Z_95);
    let d = p1 - p2;
    let low = d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt();
    let high = d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt();
    let rest_share = rest_leads as f64 / (leads + rest_leads) as f64;
    (rest_share * low, rest_share * high)
}

/// Closure rates per value of one `--by` column (largest groups first) or per month (in order).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentTable {
    pub column: String,
    pub rows: Vec<RateRow>,
}

/// One tenth of the leads, best-scored first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecileRow {
    /// 1 = the highest-scored tenth.
    pub decile: u32,
    pub min_probability: f64,
    pub max_probability: f64,
    pub leads: u64,
    pub wins: u64,
    pub realized_rate: f64,
    pub mean_predicted: f64,
    /// realized_rate / the overall realized rate.
    pub lift: f64,
    /// Share of all leads in deciles 1..=this one.
    pub cumulative_leads_share: f64,
    /// Share of all wins in deciles 1..=this one: the gains curve.
    pub cumulative_wins_share: f64,
    /// cumulative_wins_share / cumulative_leads_share.
    pub cumulative_lift: f64,
}

/// Lift and gains by decile (`sorted` ascending by probability; ties are never split, so a
/// heavily tied score can give fewer than ten rows).
pub fn deciles(sorted: &[(f64, bool)]) -> Vec<DecileRow> {
    let n = sorted.len() as f64;
    let total_wins = sorted.iter().filter(|x| x.1).count() as f64;
    let base = total_wins / n.max(1.0);
    // Cut from the top: reverse the order so run 1 holds the highest probabilities.
    let descending: Vec<(f64, bool)> = sorted.iter().rev().map(|&(p, w)| (-p, w)).collect();
    let (mut cum_leads, mut cum_wins) = (0u64, 0u64);
    equal_count_runs(&descending, 10)
        .into_iter()
        .enumerate()
        .map(|(i, run)| {
            let part = &descending[run];
            let leads = part.len() as u64;
            let wins = part.iter().filter(|x| x.1).count() as u64;
            cum_leads += leads;
            cum_wins += wins;
            let realized_rate = wins as f64 / leads as f64;
            let cumulative_leads_share = cum_leads as f64 / n;
            let cumulative_wins_share = if total_wins > 0.0 {
                cum_wins as f64 / total_wins
            } else {
                0.0
            };
            DecileRow {
                decile: i as u32 + 1,
                min_probability: -part[part.len() - 1].0,
                max_probability: -part[0].0,
                leads,
                wins,
                realized_rate,
                mean_predicted: -part.iter().map(|x| x.0).sum::<f64>() / leads as f64,
                lift: if base > 0.0 {
                    realized_rate / base
                } else {
                    0.0
                },
                cumulative_leads_share,
                cumulative_wins_share,
                cumulative_lift: cumulative_wins_share / cumulative_leads_share,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_count_runs_keep_ties_together() {
        let sorted: Vec<(f64, bool)> = [0.1, 0.2, 0.2, 0.2, 0.3, 0.4]
            .iter()
            .map(|&p| (p, false))
            .collect();
        let runs = equal_count_runs(&sorted, 3);
        assert_eq!(runs, vec![0..4, 4..6]);
        let runs = equal_count_runs(&sorted, 6);
        assert_eq!(runs, vec![0..1, 1..4, 4..5, 5..6]);
    }

    #[test]
    fn deciles_by_hand() {
        // 20 leads, probabilities 0.05 .. 1.0; the top 4 won.
        let sorted: Vec<(f64, bool)> = (1..=20).map(|i| (i as f64 / 20.0, i > 16)).collect();
        let d = deciles(&sorted);
        assert_eq!(d.len(), 10);
        assert_eq!((d[0].leads, d[0].wins), (2, 2));
        assert_eq!(d[0].max_probability, 1.0);
        assert_eq!(d[0].min_probability, 0.95);
        // base rate 4/20 = 0.2; decile 1 closes at 1.0: lift 5.
        assert!((d[0].lift - 5.0).abs() < 1e-12);
        assert!((d[1].cumulative_wins_share - 1.0).abs() < 1e-12);
        assert!((d[1].cumulative_lift - 1.0 / 0.2).abs() < 1e-12);
        assert!((d[9].cumulative_leads_share - 1.0).abs() < 1e-12);
        assert_eq!(d[9].wins, 0);
    }

    #[test]
    fn rate_rows_flag_groups_away_from_the_average() {
        let mut labels = Labels::new("rep");
        let mut p = Vec::new();
        let mut won = Vec::new();
        for i in 0..200 {
            labels.push(if i < 100 { "Ana" } else { "Ben" });
            p.push(0.5);
            // Ana closes 80 of 100, Ben 20 of 100; average 0.5.
            won.push(if i < 100 { i % 5 != 0 } else { i % 5 == 0 });
        }
        labels.push_none();
        p.push(0.5);
        won.push(true);
        let rows = rate_rows(&labels, &p, &won, 0.5);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].label.as_str(), rows[0].leads, rows[0].wins),
            ("Ana", 100, 80)
        );
        assert!(rows[0].significant && rows[1].significant);
        assert!((rows[0].difference - 0.3).abs() < 1e-12);
        // By hand (Python, z = 1.959964): Wilson intervals Ana 80/100 [0.711171, 0.866633], the
        // other 101 leads 21/101 [0.140208, 0.297037]; Newcombe's lower bound of the rate
        // difference, times the others' share 101/201: 0.234286.
        assert!(
            (rows[0].difference_low - 0.234286).abs() < 1e-5,
            "{}",
            rows[0].difference_low
        );
        assert!(rows[0].prediction_outside);
    }
}

/// One month of a horizon model's cohort table: the leads predicted (backtest: created) that
/// month, how many have matured, and predicted against realized closure within H over those.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CohortRow {
    /// `YYYY-MM`.
    pub month: String,
    /// matured + maturing.
    pub leads: u64,
    /// Leads whose window has passed: the evaluated ones.
    pub matured: u64,
    /// Leads whose window has not passed: counted, never evaluated.
    pub maturing: u64,
    /// Matured leads won within their window.
    pub won_within: u64,
    /// Mean prediction of the matured leads; absent when none has matured.
    pub mean_predicted: Option<f64>,
    /// won_within / matured; absent when none has matured.
    pub realized_rate: Option<f64>,
    /// Wilson 95% interval of the realized rate ((0, 1) when none has matured).
    pub ci_low: f64,
    pub ci_high: f64,
    /// The mean prediction lies outside the interval.
    pub prediction_outside: bool,
}

/// The cohort table: the monthly rows of the matured leads joined with the maturing counts per
/// month, in month order.
pub fn cohort_rows(
    months: &[RateRow],
    maturing: &std::collections::BTreeMap<String, u64>,
) -> Vec<CohortRow> {
    let mut all: std::collections::BTreeMap<&str, (Option<&RateRow>, u64)> = maturing
        .iter()
        .map(|(m, &n)| (m.as_str(), (None, n)))
        .collect();
    for row in months {
        all.entry(&row.label).or_insert((None, 0)).0 = Some(row);
    }
    all.into_iter()
        .map(|(month, (row, maturing))| {
            let matured = row.map_or(0, |r| r.leads);
            let won_within = row.map_or(0, |r| r.wins);
            // The monthly row's own interval; a month with no matured lead has the empty one.
            let (ci_low, ci_high) = row.map_or((0.0, 1.0), |r| (r.ci_low, r.ci_high));
            CohortRow {
                month: month.to_string(),
                leads: matured + maturing,
                matured,
                maturing,
                won_within,
                mean_predicted: row.map(|r| r.mean_predicted),
                realized_rate: row.map(|r| r.realized_rate),
                ci_low,
                ci_high,
                prediction_outside: row.is_some_and(|r| r.prediction_outside),
            }
        })
        .collect()
}

#[cfg(test)]
mod cohort_tests {
    use super::*;

    #[test]
    fn a_month_of_maturing_leads_only_has_no_rates() {
        let mut month = Labels::new("created");
        for m in ["2025-01", "2025-01", "2025-01"] {
            month.push(m);
        }
        let rows = rate_rows(&month, &[0.2, 0.4, 0.6], &[true, false, false], 1.0 / 3.0);
        let maturing = [("2025-01".to_string(), 2), ("2025-02".to_string(), 5)].into();
        let cohorts = cohort_rows(&rows, &maturing);
        assert_eq!(cohorts.len(), 2);
        let jan = &cohorts[0];
        assert_eq!(
            (jan.leads, jan.matured, jan.maturing, jan.won_within),
            (5, 3, 2, 1)
        );
        assert!((jan.mean_predicted.unwrap() - 0.4).abs() < 1e-12);
        assert_eq!(jan.realized_rate, Some(1.0 / 3.0));
        let feb = &cohorts[1];
        assert_eq!(
            (feb.month.as_str(), feb.leads, feb.matured),
            ("2025-02", 5, 0)
        );
        assert_eq!((feb.mean_predicted, feb.realized_rate), (None, None));
        assert!(!feb.prediction_outside);
    }
}
