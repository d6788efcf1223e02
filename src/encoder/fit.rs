//! Fitting: learning each attribute's encoding from its training column, once per training
//! (category levels and which rare ones to pool; means, scales and ranges; quintiles; the
//! closure rates explanations quote). Fitting sees whole columns and outcomes; encoding
//! ([`super::encode`]) sees one value and the fitted result.

use super::{
    Attribute, DISTRIBUTION_BINS, Distribution, Encoding, FeatureEncoder, MAX_POOLED_LABELS,
    RateStat, ValueError,
};
use crate::schema::{Kind, MissingTokens, normalise_category, parse_flag, parse_number};
use std::collections::HashMap;

/// Settings for fitting an encoder.
#[derive(Debug, Clone)]
pub struct EncoderOptions {
    /// Category levels seen fewer times than this are pooled into `(other)`.
    pub min_level_count: usize,
    /// At most this many levels per categorical column (most frequent first).
    pub max_levels: usize,
}

impl Default for EncoderOptions {
    fn default() -> Self {
        EncoderOptions {
            min_level_count: 20,
            max_levels: 100,
        }
    }
}

impl FeatureEncoder {
    /// Fits the encoding of each `(name, kind, cells)` on the rows with a known outcome.
    /// `won[i]` is the outcome of row `rows[i]`.
    ///
    /// On a value the column's kind cannot read, returns the table row and the error.
    pub fn fit<'a>(
        columns: impl IntoIterator<Item = (&'a str, Kind, &'a crate::data::TextColumn)>,
        rows: &[usize],
        won: &[bool],
        missing: &MissingTokens,
        options: &EncoderOptions,
    ) -> Result<FeatureEncoder, (usize, ValueError)> {
        let mut attributes = Vec::new();
        let mut offset = 0;
        for (name, kind, column) in columns {
            let cells = rows.iter().map(|&r| column.get(r));
            let at_row = |(i, e): (usize, ValueError)| (rows[i], e);
            let (encoding, distribution) = match kind {
                Kind::Numeric => fit_numeric(name, cells, won, missing).map_err(at_row)?,
                Kind::Boolean => fit_boolean(name, cells, won, missing).map_err(at_row)?,
                Kind::Categorical => fit_categorical(cells, won, missing, options),
                other => {
                    let message = format!("a {other} column cannot be a feature");
                    let field = name.to_string();
                    return Err((
                        rows.first().copied().unwrap_or(0),
                        ValueError { field, message },
                    ));
                }
            };
            let attribute = Attribute {
                name: name.to_string(),
                offset,
                encoding,
                distribution: Some(distribution),
            };
            offset += attribute.width();
            attributes.push(attribute);
        }
        Ok(FeatureEncoder {
            missing_tokens: missing.clone(),
            attributes,
        })
    }
}

impl RateStat {
    fn add(&mut self, won: bool) {
        self.leads += 1;
        self.wins += won as u64;
    }
}

/// Mean, scale and range of a numeric column, its quintiles with their closure rates, and its
/// distribution over the deciles. On a cell that is not a number, returns its index among
/// `cells` and the error.
fn fit_numeric<'a>(
    name: &str,
    cells: impl Iterator<Item = &'a str>,
    won: &[bool],
    missing: &MissingTokens,
) -> Result<(Encoding, Distribution), (usize, ValueError)> {
    let mut values = Vec::new();
    let mut outcomes = Vec::new();
    let mut missing_rate = RateStat { leads: 0, wins: 0 };
    for (i, (cell, &w)) in cells.zip(won).enumerate() {
        if missing.is_missing(cell) {
            missing_rate.add(w);
            continue;
        }
        let v = parse_number(cell).ok_or_else(|| {
            let message = format!(
                "{cell:?} is not a number, but the rest of the column is; fix the cell, name the \
                 value as missing with --na, or read the column as categories with \
                 --kind \"{name}=categorical\""
            );
            let field = name.to_string();
            (i, ValueError { field, message })
        })?;
        values.push(v);
        outcomes.push(w);
    }
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let scale = if variance > 0.0 { variance.sqrt() } else { 1.0 };
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    let (min, max) = if sorted.is_empty() {
        (0.0, 0.0)
    } else {
        (sorted[0], sorted[sorted.len() - 1])
    };
    let (lower_limit, upper_limit) = winsor_limits(&sorted);
    let mut quintile_edges: Vec<f64> = if sorted.is_empty() {
        vec![]
    } else {
        [0.2, 0.4, 0.6, 0.8].iter().map(|&q| at(q)).collect()
    };
    quintile_edges.dedup();
    let mut quintile_rates = vec![RateStat { leads: 0, wins: 0 }; quintile_edges.len() + 1];
    for (v, &w) in values.iter().zip(&outcomes) {
        let bin = quintile_edges.iter().filter(|&&edge| *v > edge).count();
        quintile_rates[bin].add(w);
    }
    let mut sorted_outcomes: Vec<(f64, bool)> = values.iter().copied().zip(outcomes).collect();
    sorted_outcomes.sort_by(|a, b| a.0.total_cmp(&b.0));
    let distribution = numeric_distribution(&sorted_outcomes, missing_rate.leads);
    let encoding = Encoding::Numeric {
        mean,
        scale,
        min,
        max,
        lower_limit: Some(lower_limit),
        upper_limit: Some(upper_limit),
        missing_indicator: missing_rate.leads > 0,
        quintile_edges,
        quintile_rates,
        missing_rate,
        shape: None,
    };
    Ok((encoding, distribution))
}

/// The training distribution of a numeric column from its values sorted with their outcomes:
/// the deciles as bin edges, the share of all leads (with `missing` more) in each bin, counted
/// rather than assumed to be a tenth, since tied values make bins uneven, and each bin's
/// closure rate.
fn numeric_distribution(sorted: &[(f64, bool)], missing: u64) -> Distribution {
    let total = (sorted.len() as u64 + missing).max(1) as f64;
    let mut edges: Vec<f64> = if sorted.is_empty() {
        Vec::new()
    } else {
        // The k-th decile as the smallest value with at least k tenths of the values at or
        // below it, so that bins hold a tenth each when the values allow.
        let at = |k: usize| sorted[(sorted.len() * k).div_ceil(DISTRIBUTION_BINS) - 1].0;
        (1..DISTRIBUTION_BINS).map(at).collect()
    };
    edges.dedup();
    // When ties make the last edge the maximum, the last bin is empty in training: only values
    // above the training range fill it, which is the drift it should show.
    let mut shares = Vec::with_capacity(edges.len() + 1);
    let mut rates = Vec::with_capacity(edges.len() + 1);
    let mut start = 0;
    for end in edges
        .iter()
        .map(|&edge| sorted.partition_point(|&(v, _)| v <= edge))
        .chain([sorted.len()])
    {
        let bin = &sorted[start..end];
        shares.push(bin.len() as f64 / total);
        rates.push(RateStat {
            leads: bin.len() as u64,
            wins: bin.iter().filter(|&&(_, won)| won).count() as u64,
        });
        start = end;
    }
    Distribution {
        edges,
        shares,
        missing_share: missing as f64 / total,
        rates,
    }
}

/// How far beyond its quartiles, in interquartile ranges, a number may go before it is
/// winsorised: Tukey's "far out" fences.
pub const FENCE_IQRS: f64 = 3.0;

/// The limits a number is winsorised to before scaling, from the sorted training values: the
/// training range widened to Tukey's far-out fences, `[Q1 - 3 IQR, Q3 + 3 IQR]`.
///
/// Why not the training range, as before: the next leads come from a later world. When
/// correlated columns (monthly macro figures, say) drift together past the training range,
/// clamping freezes one of them at its edge while its partners move on, and the large opposite
/// weights a fit gives such a group stop cancelling: on a time-split telemarketing export that
/// turned AUC 0.70 into 0.48. Inside the fences a value extrapolates linearly, as a plain
/// regression would. Beyond them (and beyond anything training saw) a value is a real outlier
/// (10^9 web visits, a typo, a unit error): winsorising it keeps the probability near what the
/// training extremes give. The fences are robust (quartiles, not the mean and deviation that
/// the outlier would inflate), so a heavy-tailed column such as visits, whose fences lie inside
/// its training range, keeps exactly the old clamp, and the training values themselves are
/// never changed: the limits always contain `[min, max]`, so the fit is the same as before.
fn winsor_limits(sorted: &[f64]) -> (f64, f64) {
    let (Some(&min), Some(&max)) = (sorted.first(), sorted.last()) else {
        return (0.0, 0.0);
    };
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    let (q1, q3) = (at(0.25), at(0.75));
    let iqr = q3 - q1;
    (
        min.min(q1 - FENCE_IQRS * iqr),
        max.max(q3 + FENCE_IQRS * iqr),
    )
}

/// Share of yes in a yes/no column, the closure rates of yes, no and missing, and the shares
/// of no, yes and missing.
fn fit_boolean<'a>(
    name: &str,
    cells: impl Iterator<Item = &'a str>,
    won: &[bool],
    missing: &MissingTokens,
) -> Result<(Encoding, Distribution), (usize, ValueError)> {
    let mut rates = [RateStat { leads: 0, wins: 0 }; 2];
    let mut missing_rate = RateStat { leads: 0, wins: 0 };
    for (i, (cell, &w)) in cells.zip(won).enumerate() {
        if missing.is_missing(cell) {
            missing_rate.add(w);
            continue;
        }
        let flag = parse_flag(cell).ok_or_else(|| {
            let message = format!("{cell:?} is not a yes/no value");
            (
                i,
                ValueError {
                    field: name.to_string(),
                    message,
                },
            )
        })?;
        rates[flag as usize].add(w);
    }
    let present = (rates[0].leads + rates[1].leads).max(1) as f64;
    let total = (rates[0].leads + rates[1].leads + missing_rate.leads).max(1) as f64;
    let distribution = Distribution {
        edges: Vec::new(),
        shares: rates.iter().map(|r| r.leads as f64 / total).collect(),
        missing_share: missing_rate.leads as f64 / total,
        rates: Vec::new(),
    };
    let encoding = Encoding::Boolean {
        share_true: rates[1].leads as f64 / present,
        missing_indicator: missing_rate.leads > 0,
        rates,
        missing_rate,
    };
    Ok((encoding, distribution))
}

/// Levels of a categorical column: each normalised label counted with its closure rate, the
/// most frequent kept as levels and the rest pooled as `(other)`; and the share of each.
fn fit_categorical<'a>(
    cells: impl Iterator<Item = &'a str>,
    won: &[bool],
    missing: &MissingTokens,
    options: &EncoderOptions,
) -> (Encoding, Distribution) {
    let (labels, stats, missing_rate) = count_labels(cells, won, missing);
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by(|&a, &b| {
        stats[b]
            .leads
            .cmp(&stats[a].leads)
            .then(labels[a].cmp(&labels[b]))
    });
    let mut levels = Vec::new();
    let mut level_rates = Vec::new();
    let mut other_rate = RateStat { leads: 0, wins: 0 };
    let mut pooled = Vec::new();
    for (rank, &i) in order.iter().enumerate() {
        if rank < options.max_levels && stats[i].leads as usize >= options.min_level_count {
            levels.push(labels[i].clone());
            level_rates.push(stats[i]);
        } else {
            if pooled.len() < MAX_POOLED_LABELS {
                pooled.push(labels[i].clone());
            }
            other_rate.leads += stats[i].leads;
            other_rate.wins += stats[i].wins;
        }
    }
    let total = (stats.iter().map(|s| s.leads).sum::<u64>() + missing_rate.leads).max(1) as f64;
    let distribution = Distribution {
        edges: Vec::new(),
        shares: level_rates
            .iter()
            .chain([&other_rate])
            .map(|r| r.leads as f64 / total)
            .collect(),
        missing_share: missing_rate.leads as f64 / total,
        rates: Vec::new(),
    };
    let encoding = Encoding::Categorical {
        levels,
        level_rates,
        pooled,
        other_rate,
        missing_rate,
    };
    (encoding, distribution)
}

/// Each normalised label (in order of first appearance) with its closure rate, and the
/// closure rate of missing cells.
fn count_labels<'a>(
    cells: impl Iterator<Item = &'a str>,
    won: &[bool],
    missing: &MissingTokens,
) -> (Vec<String>, Vec<RateStat>, RateStat) {
    // Raw cells repeat: normalise each distinct spelling once.
    let mut by_raw: HashMap<&str, usize> = HashMap::new();
    let mut labels: Vec<String> = Vec::new();
    let mut label_index: HashMap<String, usize> = HashMap::new();
    let mut stats: Vec<RateStat> = Vec::new();
    let mut missing_rate = RateStat { leads: 0, wins: 0 };
    for (cell, &w) in cells.zip(won) {
        let index = match by_raw.get(cell) {
            Some(&i) => i,
            None => {
                let i = if missing.is_missing(cell) {
                    usize::MAX
                } else {
                    let label = normalise_category(cell);
                    *label_index.entry(label.clone()).or_insert_with(|| {
                        labels.push(label);
                        stats.push(RateStat { leads: 0, wins: 0 });
                        labels.len() - 1
                    })
                };
                by_raw.insert(cell, i);
                i
            }
        };
        if index == usize::MAX {
            missing_rate.add(w);
        } else {
            stats[index].add(w);
        }
    }
    (labels, stats, missing_rate)
}
