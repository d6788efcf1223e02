//! Drift of the score distribution against training: the population stability index (PSI) over
//! the training deciles, and a histogram of both distributions for the HTML report. The PSI
//! term and its levels serve the per-attribute drift too ([`super::feature_drift`]).
//!
//! The training distribution is known only through the model's 101 percentiles
//! (`score_quantiles`); between two stored percentiles it is taken as uniform.

use serde::Serialize;

/// PSI below this: the scores are distributed as in training.
pub const PSI_MODERATE: f64 = 0.1;
/// PSI at or above this: a major shift; retrain or investigate.
pub const PSI_MAJOR: f64 = 0.25;
/// Shares are floored at this before taking logs, so an empty band counts as a large (not
/// infinite) shift.
const SHARE_FLOOR: f64 = 1e-4;
/// Probabilities this close to a band edge count as on it. Many leads can share one
/// probability, which then is a training percentile and a band edge; the model's JSON may read
/// it back a unit in the last place away from what scoring computes, which must not move the
/// whole tied mass to the other band.
const EDGE_TOLERANCE: f64 = 1e-12;
/// Bands of the score histogram.
const HISTOGRAM_BINS: usize = 20;

/// One band of the PSI table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftBand {
    /// Probability band [lower, upper); the first starts at 0 and the last ends at 1.
    pub lower: f64,
    pub upper: f64,
    /// Share of training leads in the band (0.1 for each training decile).
    pub expected_share: f64,
    /// Share of the evaluated leads in the band.
    pub actual_share: f64,
    /// This band's term of the PSI: (actual − expected) · ln(actual / expected).
    pub psi: f64,
}

/// One bar of the score histogram.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistogramBin {
    pub lower: f64,
    pub upper: f64,
    pub training_share: f64,
    pub evaluated_share: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Drift {
    /// Σ over the bands of (actual − expected) · ln(actual / expected).
    pub psi: f64,
    /// `stable` (< 0.1), `moderate` (0.1 – 0.25) or `major` (≥ 0.25).
    pub level: String,
    pub bands: Vec<DriftBand>,
    pub histogram: Vec<HistogramBin>,
    pub training_median: f64,
    pub evaluated_median: f64,
}

/// Share of training leads with probability below `x`, from the 101 stored percentiles.
pub fn training_cdf(quantiles: &[f64], x: f64) -> f64 {
    let last = quantiles.len() - 1;
    if x <= quantiles[0] + EDGE_TOLERANCE {
        return 0.0;
    }
    if x > quantiles[last] {
        return 1.0;
    }
    // The first percentile at or above x.
    let k = quantiles
        .partition_point(|&q| q < x - EDGE_TOLERANCE)
        .clamp(1, last);
    let (lo, hi) = (quantiles[k - 1], quantiles[k]);
    let within = if hi > lo { (x - lo) / (hi - lo) } else { 1.0 };
    ((k - 1) as f64 + within) / last as f64
}

/// One bin's term of a PSI: (actual − expected) · ln(actual / expected), both shares floored
/// at [`SHARE_FLOOR`] (1e-4), so a bin empty on one side counts as a large, finite shift.
pub fn psi_term(expected_share: f64, actual_share: f64) -> f64 {
    let (e, a) = (
        expected_share.max(SHARE_FLOOR),
        actual_share.max(SHARE_FLOOR),
    );
    (a - e) * (a / e).ln()
}

pub fn level(psi: f64) -> &'static str {
    if psi < PSI_MODERATE {
        "stable"
    } else if psi < PSI_MAJOR {
        "moderate"
    } else {
        "major"
    }
}

/// PSI of `probabilities` against the training distribution, over the training deciles (bands
/// whose edges coincide, from tied training scores, are merged).
pub fn drift(quantiles: &[f64], probabilities: &[f64]) -> Drift {
    let mut edges: Vec<f64> = (1..10).map(|d| quantiles[d * 10]).collect();
    edges.dedup();
    let bands = edges.len() + 1;
    let mut counts = vec![0u64; bands];
    for &p in probabilities {
        counts[edges.partition_point(|&e| e <= p + EDGE_TOLERANCE)] += 1;
    }
    let mut lower = 0.0;
    let n = probabilities.len().max(1) as f64;
    let mut rows = Vec::with_capacity(bands);
    for (b, &count) in counts.iter().enumerate() {
        let upper = edges.get(b).copied().unwrap_or(1.0);
        let expected = training_cdf(quantiles, upper) - training_cdf(quantiles, lower);
        let expected_share = if b + 1 == bands {
            1.0 - training_cdf(quantiles, lower)
        } else {
            expected
        };
        let actual_share = count as f64 / n;
        rows.push(DriftBand {
            lower,
            upper,
            expected_share,
            actual_share,
            psi: psi_term(expected_share, actual_share),
        });
        lower = upper;
    }
    let psi = rows.iter().map(|r| r.psi).sum();
    let mut histogram: Vec<HistogramBin> = (0..HISTOGRAM_BINS)
        .map(|b| {
            let lower = b as f64 / HISTOGRAM_BINS as f64;
            let upper = (b + 1) as f64 / HISTOGRAM_BINS as f64;
            let top = if b + 1 == HISTOGRAM_BINS {
                1.0
            } else {
                training_cdf(quantiles, upper)
            };
            HistogramBin {
                lower,
                upper,
                training_share: top - training_cdf(quantiles, lower),
                evaluated_share: 0.0,
            }
        })
        .collect();
    for &p in probabilities {
        let b = ((p * HISTOGRAM_BINS as f64) as usize).min(HISTOGRAM_BINS - 1);
        histogram[b].evaluated_share += 1.0 / n;
    }
    let mut sorted = probabilities.to_vec();
    let middle = sorted.len() / 2;
    let evaluated_median = if sorted.is_empty() {
        f64::NAN
    } else {
        *sorted.select_nth_unstable_by(middle, f64::total_cmp).1
    };
    Drift {
        psi,
        level: level(psi).to_string(),
        bands: rows,
        histogram,
        training_median: quantiles[quantiles.len() / 2],
        evaluated_median,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Percentiles of a uniform distribution on [0, 1].
    fn uniform() -> Vec<f64> {
        (0..=100).map(|k| k as f64 / 100.0).collect()
    }

    #[test]
    fn cdf_interpolates_between_percentiles() {
        let q = uniform();
        assert!((training_cdf(&q, 0.375) - 0.375).abs() < 1e-12);
        assert_eq!(training_cdf(&q, 0.0), 0.0);
        assert_eq!(training_cdf(&q, 1.5), 1.0);
    }

    #[test]
    fn psi_by_hand() {
        let q = uniform();
        // Same distribution: one lead in the middle of each decile → PSI 0.
        let same: Vec<f64> = (0..10).map(|d| d as f64 / 10.0 + 0.05).collect();
        let d = drift(&q, &same);
        assert!(d.psi.abs() < 1e-12, "{}", d.psi);
        assert_eq!(d.level, "stable");
        // Half the leads in the top decile, half in the bottom one.
        let split = [0.01, 0.99];
        let d = drift(&q, &split);
        // Two bands with 0.5 against 0.1, eight with 0 (floored at 1e-4) against 0.1.
        let expected =
            2.0 * (0.5 - 0.1) * (0.5f64 / 0.1).ln() + 8.0 * (1e-4 - 0.1) * (1e-4f64 / 0.1).ln();
        assert!((d.psi - expected).abs() < 1e-9, "{} vs {expected}", d.psi);
        assert_eq!(d.level, "major");
        let shares: f64 = d.histogram.iter().map(|h| h.training_share).sum();
        assert!((shares - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_tied_mass_on_a_band_edge_is_not_drift() {
        // 30% of training leads share one probability, which is percentiles 10..=40; the
        // evaluated leads carry it one unit in the last place lower (a JSON round trip).
        let tied = 0.2;
        let q: Vec<f64> = (0..=100)
            .map(|k| match k {
                0..10 => 0.1 * k as f64 / 10.0,
                10..=40 => tied,
                _ => 0.2 + 0.8 * (k - 40) as f64 / 60.0,
            })
            .collect();
        let below = f64::from_bits(tied.to_bits() - 1);
        let mut p: Vec<f64> = (0..10).map(|k| 0.1 * (k as f64 + 0.5) / 10.0).collect();
        p.extend(std::iter::repeat_n(below, 30));
        p.extend((0..60).map(|k| 0.2 + 0.8 * (k as f64 + 0.5) / 60.0));
        let d = drift(&q, &p);
        assert!(d.psi < 1e-9, "{}: {:?}", d.psi, d.bands);
    }
}
