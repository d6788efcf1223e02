//! A compact fingerprint of a model's training lead ids, so that `evaluate` can tell when the
//! leads it is given were training leads (their figures are then optimistic) without the model
//! storing the ids: a bottom-k sketch, the [`SKETCH_SIZE`] smallest 64-bit hashes of the ids.
//! Each training id is in it with probability k / n, so matches among the evaluated ids,
//! scaled by n / k, estimate the overlap; below k training ids the sketch holds every hash
//! and the count is exact. The hash is FNV-1a with a final mix, written out here because it
//! must never change: the hashes are stored in model.json.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Hashes kept: 512 numbers, about 10 kB of model.json.
pub const SKETCH_SIZE: usize = 512;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdSketch {
    /// Distinct training ids the sketch was drawn from.
    pub ids: u64,
    /// The smallest hashes of the training ids, ascending.
    pub hashes: Vec<u64>,
}

/// Stable 64-bit hash of an id (trimmed, as the CSV reader trims cells).
pub fn id_hash(id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.trim().bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64's finaliser: FNV's low bits alone are not uniform enough for a bottom-k.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

impl IdSketch {
    pub fn new<'a>(ids: impl Iterator<Item = &'a str>) -> IdSketch {
        let mut hashes: Vec<u64> = ids.map(id_hash).collect();
        hashes.sort_unstable();
        hashes.dedup();
        let ids = hashes.len() as u64;
        hashes.truncate(SKETCH_SIZE);
        IdSketch { ids, hashes }
    }

    /// Estimated number of `ids` that were training ids, and whether the count is exact.
    pub fn overlap<'a>(&self, ids: impl Iterator<Item = &'a str>) -> (u64, bool) {
        let Some(&threshold) = self.hashes.last() else {
            return (0, true);
        };
        let kept: HashSet<u64> = self.hashes.iter().copied().collect();
        let matches = ids
            .map(id_hash)
            .filter(|h| *h <= threshold && kept.contains(h))
            .count() as u64;
        let exact = self.hashes.len() as u64 >= self.ids;
        if exact {
            (matches, true)
        } else {
            let scaled = matches as f64 * self.ids as f64 / self.hashes.len() as f64;
            (scaled.round() as u64, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_is_exact_below_the_sketch_size_and_estimated_above() {
        let train: Vec<String> = (0..300).map(|i| format!("L{i}")).collect();
        let sketch = IdSketch::new(train.iter().map(String::as_str));
        let eval: Vec<String> = (200..700).map(|i| format!("L{i}")).collect();
        assert_eq!(sketch.overlap(eval.iter().map(String::as_str)), (100, true));

        let train: Vec<String> = (0..50_000).map(|i| format!("lead-{i}")).collect();
        let sketch = IdSketch::new(train.iter().map(String::as_str));
        assert_eq!((sketch.ids, sketch.hashes.len()), (50_000, SKETCH_SIZE));
        let eval: Vec<String> = (40_000..60_000).map(|i| format!("lead-{i}")).collect();
        let (estimate, exact) = sketch.overlap(eval.iter().map(String::as_str));
        // 10,000 true; the sketch samples about 100 of them: ±30% is over 3 standard errors.
        assert!(!exact && (7_000..=13_000).contains(&estimate), "{estimate}");
        let fresh: Vec<String> = (0..20_000).map(|i| format!("new-{i}")).collect();
        assert_eq!(sketch.overlap(fresh.iter().map(String::as_str)).0, 0);
    }
}
