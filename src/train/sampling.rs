//! Tables too large to train on whole: a sample chosen while the file is read, and the
//! intercept corrected for it (prior correction, King and Zeng 2001, "Logistic Regression in
//! Rare Events Data").
//!
//! Above the row cap N, training keeps every won lead and a uniform random sample of the other
//! rows (lost and open), N rows in all; when won leads alone are more than half of N, a uniform
//! N/2 of them. Each row draws a random key as it is read (seeded: the same file and seed keep
//! the same rows); a class keeps the rows with the smallest keys, so a class that grows past 2N
//! rows is cut back to its N smallest and only rows under the cut are taken from then on. What
//! is held is at most about 2N rows of each class, however long the file. Rows keep file order.
//!
//! The fit on a sample in which the won share is ȳ instead of the file's τ has the right slopes
//! but an intercept too high by ln[((1−τ)/τ)·(ȳ/(1−ȳ))]; it is subtracted from the holdout fit
//! and the final fit, so probabilities stay calibrated to the file. What is measured on rows is
//! measured on the population-rate part of the sample: the sample with its over-sampled class
//! thinned (seeded) to the other class's sampling rate, a uniform random sample of the file. The
//! holdout metrics and calibration, the score percentiles and grade cut-offs, and the coefficient
//! means that explanations compare with are taken on it.

use super::holdout::{Holdout, Measured};
use super::solver::Fit;
use super::{TrainConfig, TrainError};
use crate::data::{RowSink, Source, Table};
use crate::metrics::Summary;
use crate::model::Sampling;
use crate::schema::{MissingTokens, Outcome, OutcomeParser};
use ndarray::{ArrayView2, Axis};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// How many rows training may keep (`--max-rows`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxRows {
    /// Sample when the table would not fit the memory budget ([`memory_budget_rows`]).
    Auto,
    /// Never sample (`--max-rows 0`).
    Off,
    /// Sample above this many rows.
    Rows(usize),
}

/// Rows read before the memory budget is turned into a row cap: enough to know the bytes a row
/// takes.
const PROBE_ROWS: u64 = 10_000;

/// Bytes training holds per byte of a row's text: the text itself, the encoded matrix and its
/// copies for the fits (measured: ~540 MiB for the 1M-lead sample, whose rows average ~78 bytes
/// of text; BENCHMARKS.md). Rounded up, since a guess too low costs the run.
const TRAINING_BYTES_PER_TEXT_BYTE: u64 = 8;

/// The automatic cap: half the memory the system reports available (`MemAvailable` in
/// `/proc/meminfo`) over what a row of `text_bytes` costs in training. `None` where the
/// available memory is unknown (no cap then).
pub fn memory_budget_rows(text_bytes_per_row: f64) -> Option<usize> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let available_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let per_row = (text_bytes_per_row.max(1.0) * TRAINING_BYTES_PER_TEXT_BYTE as f64).ceil();
    Some(((available_kib * 1024 / 2) as f64 / per_row) as usize)
}

/// What a row is to the sampler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Won,
    /// Lost or open.
    Other,
    /// Neither won, lost nor open: always kept, so the refusal that follows names it.
    Unreadable,
}

/// A row held: its class and random key (rows of a class are kept smallest key first).
#[derive(Debug, Clone, Copy)]
struct Held {
    class: Class,
    key: u64,
    /// Lost (not open), among `Other` rows: the won share is over decided rows.
    lost: bool,
}

/// The row sink that samples while reading.
pub(super) struct Sampler {
    table: Table,
    parser: OutcomeParser,
    target_name: String,
    target: usize,
    max_rows: MaxRows,
    /// The cap once known (`Auto`: after [`PROBE_ROWS`] rows).
    cap: Option<usize>,
    /// Whether the cap came from the memory budget.
    from_budget: bool,
    rng: ChaCha8Rng,
    held: Vec<Held>,
    /// Per class (won, other): rows with a larger key are not taken (set by each cut).
    cut: [u64; 2],
    /// Per class (won, other): rows held.
    holding: [usize; 2],
    rows_read: u64,
    won_read: u64,
    lost_read: u64,
    open_read: u64,
    text_bytes: u64,
}

/// A sampled table and what sampling did (`None`: every row kept).
pub(super) struct SampledTable {
    pub table: Table,
    pub sampled: Option<Sampled>,
}

/// What the fit needs to know about the sample.
pub(super) struct Sampled {
    pub record: Sampling,
    /// Per table row: whether it is in the population-rate part (see the module doc).
    pub population: Vec<bool>,
}

impl Sampled {
    /// Corrects the holdout fit's intercept and measures it again on the population-rate part
    /// of the holdout.
    pub fn correct_measured(
        &self,
        measured: &mut Measured,
        x: ArrayView2<'_, f64>,
        holdout: &Holdout,
    ) {
        measured.fit.intercept -= self.record.intercept_correction;
        measured.held = (holdout.n_train..holdout.rows.len())
            .filter(|&i| self.population[holdout.rows[i]])
            .collect();
        let held_x = x.select(Axis(0), &measured.held);
        measured.probabilities = measured.fit.probabilities(held_x.view()).to_vec();
        measured.won = measured.held.iter().map(|&i| holdout.won[i]).collect();
        measured.metrics = Summary::compute(&measured.probabilities, &measured.won);
    }

    /// Corrects the final fit's intercept.
    pub fn correct(&self, fit: &mut Fit) {
        fit.intercept -= self.record.intercept_correction;
    }

    /// The matrix rows in the population-rate part.
    pub fn population_rows(&self, holdout: &Holdout) -> Vec<usize> {
        (0..holdout.rows.len())
            .filter(|&i| self.population[holdout.rows[i]])
            .collect()
    }
}

/// Reads `config.data`, sampling above the row cap.
pub(super) fn read(config: &TrainConfig) -> Result<SampledTable, TrainError> {
    let max_rows = match (config.max_rows, &config.horizon) {
        (MaxRows::Rows(_), Some(_)) => return Err(TrainError::SampleWithHorizon),
        // A horizon label is known only once the whole file is read (the as-of date is its
        // latest date): no sample can be chosen while reading.
        (MaxRows::Auto, Some(_)) => MaxRows::Off,
        (m, _) => m,
    };
    let missing = MissingTokens::with_extra(&config.na);
    let mut sampler = Sampler {
        table: Table::empty(&config.data),
        parser: OutcomeParser::new(config.positive.as_deref(), &config.open, missing),
        target_name: config.target.clone(),
        target: 0,
        max_rows,
        cap: match max_rows {
            MaxRows::Rows(n) => Some(n),
            _ => None,
        },
        from_budget: false,
        rng: ChaCha8Rng::seed_from_u64(config.seed ^ 0x5A3F_1E00_D1CE_0001),
        held: Vec::new(),
        cut: [u64::MAX; 2],
        holding: [0; 2],
        rows_read: 0,
        won_read: 0,
        lost_read: 0,
        open_read: 0,
        text_bytes: 0,
    };
    let source = crate::data::read_into(&config.data, &mut sampler)?;
    sampler.finish(source, config.seed)
}

impl RowSink for Sampler {
    type Error = TrainError;

    fn start(&mut self, path: &Path, headers: &[String]) -> Result<(), TrainError> {
        self.table.start(path, headers)?;
        self.target = self.table.column_index(&self.target_name)?;
        Ok(())
    }

    fn row<'a>(
        &mut self,
        cells: impl Iterator<Item = &'a str>,
        line: u64,
    ) -> Result<(), TrainError> {
        self.rows_read += 1;
        // The cells are needed twice (the outcome, then the row): gather them once.
        let cells: Vec<&str> = cells.collect();
        if self.max_rows == MaxRows::Auto {
            self.text_bytes += cells.iter().map(|c| c.len() as u64 + 1).sum::<u64>();
            if self.rows_read == PROBE_ROWS {
                self.set_budget_cap();
            }
        }
        let (class, lost) = match self.parser.parse(cells[self.target]) {
            Some(Outcome::Won) => {
                self.won_read += 1;
                (Class::Won, false)
            }
            Some(Outcome::Lost) => {
                self.lost_read += 1;
                (Class::Other, true)
            }
            Some(Outcome::Open) => {
                self.open_read += 1;
                (Class::Other, false)
            }
            None => (Class::Unreadable, false),
        };
        let key = if class == Class::Unreadable {
            0
        } else {
            self.rng.next_u64()
        };
        if let Some(c) = index(class)
            && key > self.cut[c]
        {
            return Ok(());
        }
        self.table.row(cells.into_iter(), line)?;
        self.held.push(Held { class, key, lost });
        if let (Some(c), Some(cap)) = (index(class), self.cap) {
            self.holding[c] += 1;
            if self.holding[c] > cap.saturating_mul(2).max(1) {
                self.cut_class(c, cap);
            }
        }
        Ok(())
    }
}

/// The class's slot in the per-class arrays (`None`: not sampled).
fn index(class: Class) -> Option<usize> {
    match class {
        Class::Won => Some(0),
        Class::Other => Some(1),
        Class::Unreadable => None,
    }
}

impl Sampler {
    fn set_budget_cap(&mut self) {
        let per_row = self.text_bytes as f64 / self.rows_read.max(1) as f64;
        self.cap = memory_budget_rows(per_row);
        self.from_budget = self.cap.is_some();
    }

    /// Keeps the `keep` rows of class `c` with the smallest keys; later rows above the cut are
    /// not taken.
    fn cut_class(&mut self, c: usize, keep: usize) {
        let mut keys: Vec<u64> = self
            .held
            .iter()
            .filter(|h| index(h.class) == Some(c))
            .map(|h| h.key)
            .collect();
        if keys.len() <= keep {
            return;
        }
        if keep == 0 {
            self.cut[c] = 0;
        } else {
            let (_, &mut nth, _) = keys.select_nth_unstable(keep - 1);
            self.cut[c] = nth;
        }
        let cut = self.cut[c];
        let taken = |h: &Held| index(h.class) != Some(c) || (keep > 0 && h.key <= cut);
        let mask: Vec<bool> = self.held.iter().map(taken).collect();
        self.table.retain_rows(&mask);
        self.held.retain(taken);
        self.holding[c] = self
            .held
            .iter()
            .filter(|h| index(h.class) == Some(c))
            .count();
    }

    fn finish(mut self, source: Source, seed: u64) -> Result<SampledTable, TrainError> {
        if self.max_rows == MaxRows::Auto && self.rows_read < PROBE_ROWS {
            self.set_budget_cap();
        }
        let cap = match self.cap {
            Some(cap) if self.rows_read > cap as u64 => cap,
            _ => {
                self.table.finish(source)?;
                return Ok(SampledTable {
                    table: self.table,
                    sampled: None,
                });
            }
        };
        if self.won_read == 0 || self.lost_read == 0 {
            // No share to correct with: the outcome check that follows refuses such data.
            self.table.finish(source)?;
            return Ok(SampledTable {
                table: self.table,
                sampled: None,
            });
        }
        let other_read = (self.lost_read + self.open_read) as usize;
        let won_read = self.won_read as usize;
        let won_keep = won_read.min((cap / 2).max(cap.saturating_sub(other_read)));
        let other_keep = cap.saturating_sub(won_keep).min(other_read);
        self.cut_class(0, won_keep);
        self.cut_class(1, other_keep);
        let count = |f: &dyn Fn(&Held) -> bool| self.held.iter().filter(|h| f(h)).count() as u64;
        let won_kept = count(&|h| h.class == Class::Won);
        let lost_kept = count(&|h| h.class == Class::Other && h.lost);
        let open_kept = count(&|h| h.class == Class::Other && !h.lost);
        let tau = self.won_read as f64 / (self.won_read + self.lost_read) as f64;
        let ybar = won_kept as f64 / (won_kept + lost_kept).max(1) as f64;
        let correction = ((1.0 - tau) / tau * (ybar / (1.0 - ybar))).ln();
        // The population-rate part: the class sampled at the higher rate thinned to the other's.
        let won_rate = won_kept as f64 / self.won_read as f64;
        let other_rate = (lost_kept + open_kept) as f64 / other_read.max(1) as f64;
        let mut thin = ChaCha8Rng::seed_from_u64(seed ^ 0x7E11_0B5E_AA00_0002);
        let population = self
            .held
            .iter()
            .map(|h| match h.class {
                Class::Won if won_rate > other_rate => thin.random_bool(other_rate / won_rate),
                Class::Other if other_rate > won_rate => thin.random_bool(won_rate / other_rate),
                _ => true,
            })
            .collect();
        let record = Sampling {
            max_rows: cap as u64,
            rule: if self.from_budget {
                "memory budget (half the available memory; --max-rows sets the cap, 0 turns it off)"
                    .into()
            } else {
                "--max-rows".into()
            },
            seed,
            rows_read: self.rows_read,
            won_read: self.won_read,
            lost_read: self.lost_read,
            open_read: self.open_read,
            won_kept,
            lost_kept,
            open_kept,
            population_won_share: tau,
            sample_won_share: ybar,
            intercept_correction: correction,
            measured_on: "holdout metrics, calibration, score percentiles, grades and coefficient \
                          means: the sample thinned to the file's won share (a uniform sample of \
                          the file)"
                .into(),
        };
        self.table.finish(source)?;
        Ok(SampledTable {
            table: self.table,
            sampled: Some(Sampled { record, population }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_budget_scales_with_the_row_size() {
        // Linux reports MemAvailable; elsewhere there is no automatic cap.
        let (Some(small), Some(large)) = (memory_budget_rows(100.0), memory_budget_rows(200.0))
        else {
            assert!(!Path::new("/proc/meminfo").exists());
            return;
        };
        assert!(small > 0);
        // Twice the bytes per row, about half the rows (memory moves between the two reads).
        let ratio = small as f64 / large as f64;
        assert!((1.8..2.2).contains(&ratio), "{small} {large}");
    }
}
