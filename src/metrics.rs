//! Metrics of predicted probabilities against outcomes, shared by training (holdout report) and
//! the evaluator. Every function takes `probabilities[i]` and `won[i]` for the same lead.

use serde::{Deserialize, Serialize};

/// Probabilities are clamped to this distance from 0 and 1 before taking logs.
const LOG_EPS: f64 = 1e-15;

/// ROC AUC: the chance that a random won lead is scored above a random lost one, ties counting
/// one half (the Mann–Whitney statistic). `None` when either class is absent.
pub fn roc_auc(probabilities: &[f64], won: &[bool]) -> Option<f64> {
    roc_auc_sorted(&sorted_pairs(probabilities, won))
}

/// `(probability, won)` pairs in ascending order of probability: the one sort that AUC,
/// equal-count bins and deciles share.
pub fn sorted_pairs(probabilities: &[f64], won: &[bool]) -> Vec<(f64, bool)> {
    let mut pairs: Vec<(f64, bool)> = probabilities
        .iter()
        .copied()
        .zip(won.iter().copied())
        .collect();
    pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    pairs
}

/// [`roc_auc`] over pairs already sorted by ascending probability.
pub fn roc_auc_sorted(sorted: &[(f64, bool)]) -> Option<f64> {
    let (mut rank_sum, mut wins) = (0.0, 0u64);
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        let mut tied_wins = 0u64;
        while j < sorted.len() && sorted[j].0 == sorted[i].0 {
            tied_wins += sorted[j].1 as u64;
            j += 1;
        }
        // Tied scores share the average of their 1-based ranks i+1 ..= j.
        let rank = (i + 1 + j) as f64 / 2.0;
        rank_sum += rank * tied_wins as f64;
        wins += tied_wins;
        i = j;
    }
    let losses = sorted.len() as u64 - wins;
    if wins == 0 || losses == 0 {
        return None;
    }
    let (p, n) = (wins as f64, losses as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// Mean negative log-likelihood (natural log).
pub fn log_loss(probabilities: &[f64], won: &[bool]) -> f64 {
    let total: f64 = probabilities
        .iter()
        .zip(won)
        .map(|(&p, &w)| row_log_loss(p, w))
        .sum();
    total / probabilities.len().max(1) as f64
}

/// One row's negative log-likelihood: the term [`log_loss`] averages, kept per row where two
/// models are compared row by row (the noise of a difference in validation loss).
pub fn row_log_loss(p: f64, won: bool) -> f64 {
    let p = p.clamp(LOG_EPS, 1.0 - LOG_EPS);
    -if won { p.ln() } else { (1.0 - p).ln() }
}

/// Mean squared difference between probability and outcome.
pub fn brier(probabilities: &[f64], won: &[bool]) -> f64 {
    let total: f64 = probabilities
        .iter()
        .zip(won)
        .map(|(&p, &w)| (p - w as u8 as f64).powi(2))
        .sum();
    total / probabilities.len().max(1) as f64
}

/// One band of a calibration table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// Probability band [lower, upper) (the last band includes 1).
    pub lower: f64,
    pub upper: f64,
    pub leads: u64,
    pub wins: u64,
    pub mean_predicted: f64,
    pub realized_rate: f64,
}

/// Calibration table over `bins` equal-width probability bands; empty bands are left out.
pub fn calibration_bins(probabilities: &[f64], won: &[bool], bins: usize) -> Vec<CalibrationBin> {
    let mut sums = vec![(0u64, 0u64, 0.0f64); bins];
    for (&p, &w) in probabilities.iter().zip(won) {
        let b = ((p * bins as f64) as usize).min(bins - 1);
        sums[b].0 += 1;
        sums[b].1 += w as u64;
        sums[b].2 += p;
    }
    sums.iter()
        .enumerate()
        .filter(|(_, s)| s.0 > 0)
        .map(|(b, &(leads, wins, total))| CalibrationBin {
            lower: b as f64 / bins as f64,
            upper: (b + 1) as f64 / bins as f64,
            leads,
            wins,
            mean_predicted: total / leads as f64,
            realized_rate: wins as f64 / leads as f64,
        })
        .collect()
}

/// Expected calibration error: the lead-weighted mean of |mean predicted − realized| over the
/// bands of [`calibration_bins`].
pub fn expected_calibration_error(bins: &[CalibrationBin]) -> f64 {
    let leads: u64 = bins.iter().map(|b| b.leads).sum();
    bins.iter()
        .map(|b| b.leads as f64 * (b.mean_predicted - b.realized_rate).abs())
        .sum::<f64>()
        / leads.max(1) as f64
}

/// Brier skill score: 1 − Brier / the Brier score of always predicting the base rate, which is
/// `base_rate · (1 − base_rate)`. 0 means no better than the base rate, 1 perfect. `None` when
/// every lead has the same outcome (the reference is 0).
pub fn brier_skill(brier: f64, base_rate: f64) -> Option<f64> {
    let reference = base_rate * (1.0 - base_rate);
    (reference > 0.0).then(|| 1.0 - brier / reference)
}

/// Maximum calibration error: the largest |mean predicted − realized| over non-empty bands.
pub fn max_calibration_error(bins: &[CalibrationBin]) -> f64 {
    bins.iter()
        .map(|b| (b.mean_predicted - b.realized_rate).abs())
        .fold(0.0, f64::max)
}

/// The Wilson score interval of `wins / leads` at `z` standard errors (1.96 for 95%).
/// `(0, 1)` when there are no leads.
pub fn wilson_interval(wins: u64, leads: u64, z: f64) -> (f64, f64) {
    if leads == 0 {
        return (0.0, 1.0);
    }
    let n = leads as f64;
    let p = wins as f64 / n;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// z for a two-sided 95% interval.
pub const Z_95: f64 = 1.959_963_984_540_054;

/// Calibration slope and intercept: the logistic regression
/// `logit P(won) = intercept + slope · logit(probability)`. A calibrated model has slope 1 and
/// intercept 0; a slope below 1 means its probabilities are too extreme (over-fitted), above 1
/// too timid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CalibrationFit {
    pub slope: f64,
    pub intercept: f64,
}

/// Fits [`CalibrationFit`] by Newton's method (two parameters, so each step solves a 2×2
/// system) with step halving. `None` when the slope is not identified: either class absent,
/// every probability the same, or wins and losses separated by their probabilities (every win
/// scored at or above every loss, or the reverse: the likelihood then grows without bound as the
/// slope does), or when Newton's method does not converge.
pub fn calibration_fit(probabilities: &[f64], won: &[bool]) -> Option<CalibrationFit> {
    let x: Vec<f64> = probabilities
        .iter()
        .map(|&p| {
            let p = p.clamp(LOG_EPS, 1.0 - LOG_EPS);
            (p / (1.0 - p)).ln()
        })
        .collect();
    let wins = won.iter().filter(|&&w| w).count();
    if wins == 0 || wins == won.len() {
        return None;
    }
    let first = *x.first()?;
    if x.iter().all(|&v| (v - first).abs() < 1e-12) {
        return None;
    }
    let extreme = |class: bool, pick: fn(f64, f64) -> f64, start: f64| {
        x.iter()
            .zip(won)
            .filter(|(_, w)| **w == class)
            .fold(start, |acc, (&v, _)| pick(acc, v))
    };
    let (lowest_win, highest_win) = (
        extreme(true, f64::min, f64::INFINITY),
        extreme(true, f64::max, f64::NEG_INFINITY),
    );
    let (lowest_loss, highest_loss) = (
        extreme(false, f64::min, f64::INFINITY),
        extreme(false, f64::max, f64::NEG_INFINITY),
    );
    if highest_loss <= lowest_win || highest_win <= lowest_loss {
        return None;
    }
    // Negative log-likelihood, its gradient and Hessian in (intercept, slope).
    let evaluate = |a: f64, b: f64| {
        let (mut nll, mut g, mut h) = (0.0, [0.0; 2], [0.0; 3]);
        // log(1 + e^z) = max(z, 0) + ln(1 + e^-|z|); the second terms lie in [0, ln 2], so a
        // block of 64 is summed as the log of a product (≤ 2^64): one logarithm per block.
        for (xs, ws) in x.chunks(64).zip(won.chunks(64)) {
            let mut product = 1.0;
            for (&xi, &w) in xs.iter().zip(ws) {
                let z = a + b * xi;
                let e = (-z.abs()).exp();
                product *= 1.0 + e;
                nll += z.max(0.0) - if w { z } else { 0.0 };
                // σ(z) from the same exponential, without overflow.
                let p = if z >= 0.0 {
                    1.0 / (1.0 + e)
                } else {
                    e / (1.0 + e)
                };
                let r = p - w as u8 as f64;
                g[0] += r;
                g[1] += r * xi;
                let v = p * (1.0 - p);
                h[0] += v;
                h[1] += v * xi;
                h[2] += v * xi * xi;
            }
            nll += product.ln();
        }
        (nll, g, h)
    };
    let (mut a, mut b) = (0.0, 1.0);
    let (mut nll, mut g, mut h) = evaluate(a, b);
    let mut converged = false;
    for _ in 0..100 {
        let det = h[0] * h[2] - h[1] * h[1];
        if !(det.is_finite() && det > 0.0) {
            break;
        }
        let da = (h[2] * g[0] - h[1] * g[1]) / det;
        let db = (h[0] * g[1] - h[1] * g[0]) / det;
        let mut step = 1.0;
        let mut moved = 0.0;
        for _ in 0..30 {
            let (na, nb) = (a - step * da, b - step * db);
            let candidate = evaluate(na, nb);
            if candidate.0 <= nll {
                moved = (step * da).abs() + (step * db).abs();
                (a, b) = (na, nb);
                (nll, g, h) = candidate;
                break;
            }
            step /= 2.0;
        }
        // Converged when Newton's step is negligible (the gradient itself bottoms out at the
        // rounding error of a sum over all leads, so it is no stopping rule). Newton converges
        // quadratically: after a step of 1e-7 the remaining error is far below what is reported.
        if moved < 1e-7 {
            converged = true;
            break;
        }
    }
    (converged && a.is_finite() && b.is_finite()).then_some(CalibrationFit {
        slope: b,
        intercept: a,
    })
}

/// The headline metrics of a set of scored leads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub leads: u64,
    pub wins: u64,
    pub realized_rate: f64,
    pub mean_predicted: f64,
    pub roc_auc: Option<f64>,
    pub log_loss: f64,
    pub brier: f64,
    /// Over ten equal-width bands.
    pub expected_calibration_error: f64,
}

impl Summary {
    pub fn compute(probabilities: &[f64], won: &[bool]) -> Summary {
        let n = probabilities.len().max(1) as f64;
        let wins = won.iter().filter(|&&w| w).count() as u64;
        Summary {
            leads: probabilities.len() as u64,
            wins,
            realized_rate: wins as f64 / n,
            mean_predicted: probabilities.iter().sum::<f64>() / n,
            roc_auc: roc_auc(probabilities, won),
            log_loss: log_loss(probabilities, won),
            brier: brier(probabilities, won),
            expected_calibration_error: expected_calibration_error(&calibration_bins(
                probabilities,
                won,
                10,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AUC by definition: every (won, lost) pair, ties counting one half.
    fn brute_force_auc(p: &[f64], won: &[bool]) -> f64 {
        let (mut num, mut pairs) = (0.0, 0.0);
        for i in 0..p.len() {
            for j in 0..p.len() {
                if won[i] && !won[j] {
                    pairs += 1.0;
                    num += if p[i] > p[j] {
                        1.0
                    } else if p[i] == p[j] {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        num / pairs
    }

    #[test]
    fn auc_matches_brute_force_with_ties() {
        // Deterministic pseudo-random scores on a coarse grid, so ties are common.
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as f64 / (1u64 << 31) as f64
        };
        for _ in 0..20 {
            let p: Vec<f64> = (0..200).map(|_| (next() * 10.0).floor() / 10.0).collect();
            let won: Vec<bool> = p.iter().map(|&s| next() < 0.2 + 0.6 * s).collect();
            let fast = roc_auc(&p, &won).unwrap();
            assert!((fast - brute_force_auc(&p, &won)).abs() < 1e-12);
        }
        assert_eq!(roc_auc(&[0.1, 0.2], &[true, true]), None);
        assert_eq!(roc_auc(&[0.1, 0.9], &[false, true]), Some(1.0));
    }

    #[test]
    fn log_loss_and_brier_by_hand() {
        let p = [0.8, 0.3, 0.5];
        let won = [true, false, true];
        let expected = -((0.8f64).ln() + (0.7f64).ln() + (0.5f64).ln()) / 3.0;
        assert!((log_loss(&p, &won) - expected).abs() < 1e-12);
        assert!((brier(&p, &won) - (0.04 + 0.09 + 0.25) / 3.0).abs() < 1e-12);
        assert!(log_loss(&[0.0], &[true]).is_finite());
    }

    #[test]
    fn calibration_bins_by_hand() {
        let p = [0.05, 0.15, 0.12, 0.95, 1.0];
        let won = [false, true, false, true, true];
        let bins = calibration_bins(&p, &won, 10);
        assert_eq!(bins.len(), 3);
        assert_eq!((bins[0].leads, bins[0].wins), (1, 0));
        assert_eq!((bins[1].leads, bins[1].wins), (2, 1));
        assert!((bins[1].mean_predicted - 0.135).abs() < 1e-12);
        assert_eq!((bins[2].leads, bins[2].wins), (2, 2));
        // ECE = (1*0.05 + 2*|0.135-0.5| + 2*|0.975-1|) / 5
        let ece = (0.05 + 2.0 * 0.365 + 2.0 * 0.025) / 5.0;
        assert!((expected_calibration_error(&bins) - ece).abs() < 1e-12);
    }

    #[test]
    fn wilson_by_hand() {
        // 3 of 10 at z = 1.96: centre (0.3 + 0.19208) / 1.38416, half-width
        // 1.96 / 1.38416 · sqrt(0.021 + 0.009604).
        let (lo, hi) = wilson_interval(3, 10, 1.96);
        let centre = (0.3 + 1.96f64.powi(2) / 20.0) / (1.0 + 1.96f64.powi(2) / 10.0);
        let half = 1.96 / (1.0 + 1.96f64.powi(2) / 10.0)
            * (0.3f64 * 0.7 / 10.0 + 1.96f64.powi(2) / 400.0).sqrt();
        assert!((lo - (centre - half)).abs() < 1e-12 && (hi - (centre + half)).abs() < 1e-12);
        assert!(
            (lo - 0.1078).abs() < 1e-4 && (hi - 0.6032).abs() < 1e-4,
            "{lo} {hi}"
        );
        assert_eq!(wilson_interval(0, 0, 1.96), (0.0, 1.0));
        let (lo, hi) = wilson_interval(0, 20, 1.96);
        assert_eq!(lo, 0.0);
        assert!(hi > 0.1 && hi < 0.2);
    }

    #[test]
    fn brier_skill_and_max_calibration_error() {
        assert_eq!(brier_skill(0.1, 0.5), Some(1.0 - 0.1 / 0.25));
        assert_eq!(brier_skill(0.1, 0.0), None);
        let bins = calibration_bins(&[0.05, 0.15, 0.12, 0.95], &[false, true, false, true], 10);
        assert!((max_calibration_error(&bins) - 0.365).abs() < 1e-12);
    }

    #[test]
    fn calibration_fit_recovers_a_known_distortion() {
        // Outcomes drawn exactly at rates σ(0.4 + 0.6·logit p): with expected counts as
        // fractional weights the fit is exact, so use many leads per probability and
        // round wins to the nearest whole number.
        let mut p = Vec::new();
        let mut won = Vec::new();
        for k in 1..20 {
            let q = k as f64 / 20.0;
            let truth = 1.0 / (1.0 + (-(0.4 + 0.6 * (q / (1.0 - q)).ln())).exp());
            let wins = (truth * 10_000.0).round() as usize;
            for i in 0..10_000 {
                p.push(q);
                won.push(i < wins);
            }
        }
        let fit = calibration_fit(&p, &won).unwrap();
        assert!((fit.slope - 0.6).abs() < 2e-3, "{fit:?}");
        assert!((fit.intercept - 0.4).abs() < 2e-3, "{fit:?}");
        // A calibrated model: slope 1, intercept 0.
        assert_eq!(calibration_fit(&[0.3, 0.3], &[true, false]), None);
        assert_eq!(calibration_fit(&[0.2, 0.6], &[true, true]), None);
        // Separated classes: the maximum likelihood slope is infinite, not a number to report.
        assert_eq!(calibration_fit(&[0.2, 0.8], &[false, true]), None);
        let p = [0.1, 0.2, 0.3, 0.6, 0.7, 0.9];
        assert_eq!(
            calibration_fit(&p, &[false, false, false, true, true, true]),
            None
        );
        assert!(calibration_fit(&p, &[false, false, true, false, true, true]).is_some());
        // Touching at one tied probability is still separation (quasi-complete).
        let tied = [0.1, 0.3, 0.3, 0.9];
        assert_eq!(calibration_fit(&tied, &[false, false, true, true]), None);
    }
}
