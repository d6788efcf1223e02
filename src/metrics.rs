//! Metrics of predicted probabilities against outcomes, shared by training (holdout report) and
//! the evaluator. Every function takes `probabilities[i]` and `won[i]` for the same lead.

use serde::{Deserialize, Serialize};

/// Probabilities are clamped to this distance from 0 and 1 before taking logs.
const LOG_EPS: f64 = 1e-15;

/// ROC AUC: the chance that a random won lead is scored above a random lost one, ties counting
/// one half (the Mann–Whitney statistic). `None` when either class is absent.
pub fn roc_auc(probabilities: &[f64], won: &[bool]) -> Option<f64> {
    let mut order: Vec<usize> = (0..probabilities.len()).collect();
    order.sort_unstable_by(|&a, &b| probabilities[a].total_cmp(&probabilities[b]));
    let (mut rank_sum, mut wins) = (0.0, 0u64);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && probabilities[order[j + 1]] == probabilities[order[i]] {
            j += 1;
        }
        // Tied scores share the average of their 1-based ranks.
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            if won[k] {
                rank_sum += rank;
                wins += 1;
            }
        }
        i = j + 1;
    }
    let losses = probabilities.len() as u64 - wins;
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
        .map(|(&p, &w)| {
            let p = p.clamp(LOG_EPS, 1.0 - LOG_EPS);
            -if w { p.ln() } else { (1.0 - p).ln() }
        })
        .sum();
    total / probabilities.len().max(1) as f64
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
}
