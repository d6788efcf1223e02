//! The feature encoder: one lead's attribute values → the numeric vector the model multiplies.
//!
//! Architecture invariant: this is the only code that turns attribute values into features.
//! Training (column by column over a CSV), batch scoring (row by row over a CSV) and the gRPC
//! server (from protobuf values) all call [`Attribute::encode`], so they cannot disagree.
//!
//! Encodings (the fitted parameters are stored in the model artifact):
//! - numeric: `(x - mean) / scale`, the value first clamped to the training range; a missing
//!   value becomes the mean (0) plus a missing indicator column (when training saw missing
//!   values);
//! - boolean: 1/0; missing becomes the training share of yes plus a missing indicator;
//! - categorical: one column per level (labels compared case- and space-insensitively), one for
//!   the pooled rare levels (also used for labels never seen in training) and one for missing.

use crate::schema::{Kind, MissingTokens, normalise_category, parse_flag, parse_number};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A value as it arrives: a CSV cell is text, a gRPC field may be any of these.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RawValue<'a> {
    Missing,
    Text(&'a str),
    Number(f64),
    Flag(bool),
}

/// Most characters of a client's text echoed back in an error or a warning: a 16 MiB value must
/// not come back as a 16 MiB (escaped, up to ~100 MB) message.
pub const ECHO_CHARS: usize = 64;

/// The first [`ECHO_CHARS`] characters of `text` (cut on a character boundary), and whether
/// anything was cut off.
pub fn echo_prefix(text: &str) -> (&str, bool) {
    // No more bytes than the limit in characters: nothing to count (the usual case).
    if text.len() <= ECHO_CHARS {
        return (text, false);
    }
    match text.char_indices().nth(ECHO_CHARS) {
        Some((end, _)) => (&text[..end], true),
        None => (text, false),
    }
}

/// Client text in a message: quoted and escaped as `{:?}` would, and when longer than
/// [`ECHO_CHARS`] characters, cut there and followed by `…` and the full size.
pub struct Quoted<'a>(pub &'a str);

impl std::fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match echo_prefix(self.0) {
            (all, false) => write!(f, "{all:?}"),
            (prefix, true) => write!(f, "{prefix:?}… ({} bytes)", self.0.len()),
        }
    }
}

/// A value that cannot be used, naming the field (attribute) it belongs to.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("field {field:?}: {message}")]
pub struct ValueError {
    pub field: String,
    pub message: String,
}

/// How the encoder read one value, for explanations and warnings.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// Missing, imputed.
    Missing,
    Number(f64),
    Flag(bool),
    /// A known category level (index into `levels`).
    Level(usize),
    /// Pooled with the rare levels; `unseen` when training never saw this label at all.
    Other {
        label: String,
        unseen: bool,
    },
}

/// Closure rate of the training leads that shared a value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateStat {
    pub leads: u64,
    pub wins: u64,
}

impl RateStat {
    pub fn rate(&self) -> Option<f64> {
        (self.leads > 0).then(|| self.wins as f64 / self.leads as f64)
    }

    fn add(&mut self, won: bool) {
        self.leads += 1;
        self.wins += won as u64;
    }
}

/// How one attribute (CSV column) is encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Encoding {
    Numeric {
        mean: f64,
        scale: f64,
        min: f64,
        max: f64,
        missing_indicator: bool,
        /// Upper edges of the training quintiles (4 edges), for "leads like this closed at".
        quintile_edges: Vec<f64>,
        /// Closure rate per quintile (5 entries).
        quintile_rates: Vec<RateStat>,
        missing_rate: RateStat,
    },
    Boolean {
        /// Share of yes among training values: the imputation for a missing value.
        share_true: f64,
        missing_indicator: bool,
        /// Closure rate of no, yes.
        rates: [RateStat; 2],
        missing_rate: RateStat,
    },
    Categorical {
        /// Kept levels, normalised, most frequent first.
        levels: Vec<String>,
        /// Closure rate per kept level.
        level_rates: Vec<RateStat>,
        /// Labels seen in training but pooled as rare (at most [`MAX_POOLED_LABELS`]), so that
        /// only labels never seen are reported as unseen.
        #[serde(default)]
        pooled: Vec<String>,
        other_rate: RateStat,
        missing_rate: RateStat,
    },
}

/// One attribute of a lead and the encoded columns it owns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attribute {
    /// The CSV column name, as the CRM spells it (also the gRPC field name).
    pub name: String,
    /// First encoded column this attribute owns.
    pub offset: usize,
    pub encoding: Encoding,
}

pub const OTHER_LEVEL: &str = "(other)";
/// Pooled labels remembered per attribute; past this, a pooled label reads as unseen.
pub const MAX_POOLED_LABELS: usize = 1000;
pub const MISSING_LEVEL: &str = "(missing)";

impl Attribute {
    pub fn kind(&self) -> Kind {
        match self.encoding {
            Encoding::Numeric { .. } => Kind::Numeric,
            Encoding::Boolean { .. } => Kind::Boolean,
            Encoding::Categorical { .. } => Kind::Categorical,
        }
    }

    /// Number of encoded columns.
    pub fn width(&self) -> usize {
        match &self.encoding {
            Encoding::Numeric {
                missing_indicator, ..
            }
            | Encoding::Boolean {
                missing_indicator, ..
            } => 1 + *missing_indicator as usize,
            Encoding::Categorical { levels, .. } => {
                levels.len()
                    + self.other_slot().is_some() as usize
                    + self.missing_slot().is_some() as usize
            }
        }
    }

    /// Names of the encoded columns, e.g. `Lead Source=google`, `TotalVisits (missing)`.
    pub fn column_names(&self) -> Vec<String> {
        match &self.encoding {
            Encoding::Numeric {
                missing_indicator, ..
            }
            | Encoding::Boolean {
                missing_indicator, ..
            } => {
                let mut names = vec![self.name.clone()];
                if *missing_indicator {
                    names.push(format!("{} {MISSING_LEVEL}", self.name));
                }
                names
            }
            Encoding::Categorical { levels, .. } => levels
                .iter()
                .map(String::as_str)
                .chain(self.other_slot().map(|_| OTHER_LEVEL))
                .chain(self.missing_slot().map(|_| MISSING_LEVEL))
                .map(|level| format!("{}={level}", self.name))
                .collect(),
        }
    }

    /// Column of the pooled rare levels: only when training saw such leads. Without it, a
    /// label never seen in training sets no column, which is what a zero weight would do.
    pub fn other_slot(&self) -> Option<usize> {
        match &self.encoding {
            Encoding::Categorical {
                levels, other_rate, ..
            } if other_rate.leads > 0 => Some(levels.len()),
            _ => None,
        }
    }

    /// Column of missing values: only when training saw missing values.
    pub fn missing_slot(&self) -> Option<usize> {
        match &self.encoding {
            Encoding::Categorical {
                levels,
                other_rate,
                missing_rate,
                ..
            } if missing_rate.leads > 0 => Some(levels.len() + (other_rate.leads > 0) as usize),
            _ => None,
        }
    }

    /// Writes this attribute's encoded columns into `out` (its own slice, any prior content is
    /// overwritten) and says how the value was read.
    pub fn encode(
        &self,
        value: RawValue<'_>,
        missing: &MissingTokens,
        out: &mut [f64],
    ) -> Result<Reading, ValueError> {
        debug_assert_eq!(out.len(), self.width());
        out.fill(0.0);
        let value = match value {
            RawValue::Text(t) if missing.is_missing(t) => RawValue::Missing,
            RawValue::Number(v) if !v.is_finite() => {
                return Err(self.invalid(format!("{v} is not a usable number")));
            }
            other => other,
        };
        match &self.encoding {
            Encoding::Numeric {
                mean,
                scale,
                min,
                max,
                missing_indicator,
                ..
            } => {
                let x = match value {
                    RawValue::Missing => {
                        if *missing_indicator {
                            out[1] = 1.0;
                        }
                        return Ok(Reading::Missing);
                    }
                    RawValue::Number(v) => v,
                    RawValue::Flag(b) => b as u8 as f64,
                    RawValue::Text(t) => parse_number(t)
                        .ok_or_else(|| self.invalid(format!("{} is not a number", Quoted(t))))?,
                };
                out[0] = (x.clamp(*min, *max) - mean) / scale;
                Ok(Reading::Number(x))
            }
            Encoding::Boolean {
                share_true,
                missing_indicator,
                ..
            } => {
                let flag = match value {
                    RawValue::Missing => {
                        out[0] = *share_true;
                        if *missing_indicator {
                            out[1] = 1.0;
                        }
                        return Ok(Reading::Missing);
                    }
                    RawValue::Flag(b) => b,
                    RawValue::Number(v) if v == 0.0 || v == 1.0 => v == 1.0,
                    RawValue::Number(v) => {
                        return Err(self.invalid(format!("{v} is not a yes/no value (use 1 or 0)")));
                    }
                    RawValue::Text(t) => parse_flag(t).ok_or_else(|| {
                        self.invalid(format!(
                            "{} is not a yes/no value (use yes/no, true/false or 1/0)",
                            Quoted(t)
                        ))
                    })?,
                };
                out[0] = flag as u8 as f64;
                Ok(Reading::Flag(flag))
            }
            Encoding::Categorical { levels, .. } => {
                let label = match value {
                    RawValue::Missing => {
                        if let Some(slot) = self.missing_slot() {
                            out[slot] = 1.0;
                        }
                        return Ok(Reading::Missing);
                    }
                    RawValue::Text(t) => {
                        // Known levels are matched without allocating the normalised label.
                        if let Some(i) = level_index(levels, t) {
                            out[i] = 1.0;
                            return Ok(Reading::Level(i));
                        }
                        normalise_category(t)
                    }
                    RawValue::Number(v) => format_number(v),
                    RawValue::Flag(b) => if b { "yes" } else { "no" }.to_string(),
                };
                Ok(self.encode_level(label, out))
            }
        }
    }

    /// Sets the one-hot column of a normalised category label.
    fn encode_level(&self, label: String, out: &mut [f64]) -> Reading {
        let Encoding::Categorical { levels, pooled, .. } = &self.encoding else {
            unreachable!("encode_level is only called for categorical attributes")
        };
        match levels.iter().position(|l| *l == label) {
            Some(i) => {
                out[i] = 1.0;
                Reading::Level(i)
            }
            None => {
                if let Some(slot) = self.other_slot() {
                    out[slot] = 1.0;
                }
                let unseen = !pooled.contains(&label);
                Reading::Other { label, unseen }
            }
        }
    }

    fn invalid(&self, message: String) -> ValueError {
        ValueError {
            field: self.name.clone(),
            message,
        }
    }

    /// The value as shown to a rep, and the training closure rate of leads that shared it.
    pub fn describe(&self, reading: &Reading) -> (String, RateStat) {
        match (&self.encoding, reading) {
            (Encoding::Numeric { missing_rate, .. }, Reading::Missing)
            | (Encoding::Boolean { missing_rate, .. }, Reading::Missing)
            | (Encoding::Categorical { missing_rate, .. }, Reading::Missing) => {
                (MISSING_LEVEL.to_string(), *missing_rate)
            }
            (
                Encoding::Numeric {
                    quintile_edges,
                    quintile_rates,
                    ..
                },
                Reading::Number(x),
            ) => {
                let bin = quintile_edges.iter().filter(|edge| x > edge).count();
                (format_number(*x), quintile_rates[bin])
            }
            (Encoding::Boolean { rates, .. }, Reading::Flag(b)) => (
                if *b { "yes" } else { "no" }.to_string(),
                rates[*b as usize],
            ),
            (
                Encoding::Categorical {
                    levels,
                    level_rates,
                    ..
                },
                Reading::Level(i),
            ) => (levels[*i].clone(), level_rates[*i]),
            (Encoding::Categorical { other_rate, .. }, Reading::Other { label, .. }) => {
                (label.clone(), *other_rate)
            }
            _ => (String::new(), RateStat { leads: 0, wins: 0 }),
        }
    }
}

/// The index of the level `normalise_category(raw)` equals, without allocating.
fn level_index(levels: &[String], raw: &str) -> Option<usize> {
    let bytes = raw.as_bytes();
    // Plain ASCII with single inner spaces (most CRM values) normalises to its lower case, so a
    // byte-wise case-insensitive comparison with the (lower-case) levels decides.
    let plain = raw.is_ascii()
        && bytes.first() != Some(&b' ')
        && bytes.last() != Some(&b' ')
        && !bytes.windows(2).any(|w| w == b"  ")
        && !bytes.iter().any(|&b| b.is_ascii_whitespace() && b != b' ');
    if plain {
        levels
            .iter()
            .position(|l| l.len() == raw.len() && l.eq_ignore_ascii_case(raw))
    } else {
        levels.iter().position(|l| normalised_eq(raw, l))
    }
}

/// Whether `normalise_category(raw) == normalised`, without allocating.
fn normalised_eq(raw: &str, normalised: &str) -> bool {
    let mut expected = normalised.chars();
    for (n, word) in raw.split_whitespace().enumerate() {
        if n > 0 && expected.next() != Some(' ') {
            return false;
        }
        for c in word.chars().flat_map(char::to_lowercase) {
            if expected.next() != Some(c) {
                return false;
            }
        }
    }
    expected.next().is_none()
}

/// `3` rather than `3.0`, so numbers sent for a categorical field match CSV labels.
pub fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// All attributes of a model, in encoded-column order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureEncoder {
    /// Cell values read as missing (defaults plus `--na`).
    pub missing_tokens: MissingTokens,
    pub attributes: Vec<Attribute>,
}

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
    /// Total encoded columns.
    pub fn width(&self) -> usize {
        self.attributes.iter().map(Attribute::width).sum()
    }

    pub fn column_names(&self) -> Vec<String> {
        self.attributes
            .iter()
            .flat_map(Attribute::column_names)
            .collect()
    }

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
            let encoding = match kind {
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
            };
            offset += attribute.width();
            attributes.push(attribute);
        }
        Ok(FeatureEncoder {
            missing_tokens: missing.clone(),
            attributes,
        })
    }

    /// Encodes one lead; `value(i)` gives the value of attribute `i`. `readings` receives how
    /// each attribute was read.
    pub fn encode_row<'v>(
        &self,
        mut value: impl FnMut(usize) -> RawValue<'v>,
        out: &mut [f64],
        readings: &mut Vec<Reading>,
    ) -> Result<(), ValueError> {
        readings.clear();
        for (i, attribute) in self.attributes.iter().enumerate() {
            let slot = &mut out[attribute.offset..attribute.offset + attribute.width()];
            readings.push(attribute.encode(value(i), &self.missing_tokens, slot)?);
        }
        Ok(())
    }
}

fn fit_numeric<'a>(
    name: &str,
    cells: impl Iterator<Item = &'a str>,
    won: &[bool],
    missing: &MissingTokens,
) -> Result<Encoding, (usize, ValueError)> {
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
    Ok(Encoding::Numeric {
        mean,
        scale,
        min,
        max,
        missing_indicator: missing_rate.leads > 0,
        quintile_edges,
        quintile_rates,
        missing_rate,
    })
}

fn fit_boolean<'a>(
    name: &str,
    cells: impl Iterator<Item = &'a str>,
    won: &[bool],
    missing: &MissingTokens,
) -> Result<Encoding, (usize, ValueError)> {
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
    Ok(Encoding::Boolean {
        share_true: rates[1].leads as f64 / present,
        missing_indicator: missing_rate.leads > 0,
        rates,
        missing_rate,
    })
}

fn fit_categorical<'a>(
    cells: impl Iterator<Item = &'a str>,
    won: &[bool],
    missing: &MissingTokens,
    options: &EncoderOptions,
) -> Encoding {
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
    Encoding::Categorical {
        levels,
        level_rates,
        pooled,
        other_rate,
        missing_rate,
    }
}

/// Encodes the listed rows of a table into a column-major matrix (the layout linfa-logistic's
/// gradient is fastest on). `columns[i]` is the table column of attribute `i`.
pub fn encode_table(
    encoder: &FeatureEncoder,
    table: &crate::data::Table,
    columns: &[usize],
    rows: &[usize],
) -> Result<ndarray::Array2<f64>, (usize, ValueError)> {
    use ndarray::ShapeBuilder;
    let width = encoder.width();
    let mut matrix = ndarray::Array2::<f64>::zeros((rows.len(), width).f());
    let mut buffer = vec![0.0; width];
    // Read the text in file order (it is laid out that way) and write each value to its
    // row of the matrix: `rows` is usually a shuffle, and random reads of text are slow.
    let mut in_file_order: Vec<(usize, usize)> = rows.iter().copied().zip(0..).collect();
    in_file_order.sort_unstable();
    for (a, attribute) in encoder.attributes.iter().enumerate() {
        let column = table.column(columns[a]);
        let w = attribute.width();
        let slot = &mut buffer[..w];
        // Categorical cells repeat: encode each distinct spelling once, then copy.
        let mut cache: HashMap<&str, Option<usize>> = HashMap::new();
        for &(row, i) in &in_file_order {
            let cell = column.get(row);
            if let (Encoding::Categorical { .. }, Some(&hot)) =
                (&attribute.encoding, cache.get(cell))
            {
                if let Some(hot) = hot {
                    matrix[[i, attribute.offset + hot]] = 1.0;
                }
                continue;
            }
            attribute
                .encode(RawValue::Text(cell), &encoder.missing_tokens, slot)
                .map_err(|e| (row, e))?;
            if let Encoding::Categorical { .. } = attribute.encoding {
                cache.insert(cell, slot.iter().position(|&v| v == 1.0));
            }
            for (k, &v) in slot.iter().enumerate() {
                if v != 0.0 {
                    matrix[[i, attribute.offset + k]] = v;
                }
            }
        }
    }
    Ok(matrix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_text_is_cut_after_64_characters_on_a_character_boundary() {
        assert_eq!(Quoted("teal").to_string(), "\"teal\"");
        assert_eq!(Quoted("a\"b").to_string(), format!("{:?}", "a\"b"));
        let exact = "é".repeat(ECHO_CHARS);
        assert_eq!(Quoted(&exact).to_string(), format!("{exact:?}"));
        let long = "é".repeat(8 << 20); // 16 MiB of two-byte characters
        let shown = Quoted(&long).to_string();
        assert_eq!(shown, format!("{exact:?}… ({} bytes)", 16 << 20));
        assert_eq!(echo_prefix(&long), (exact.as_str(), true));
    }
    use crate::data::TextColumn;

    fn column(cells: &[&str]) -> TextColumn {
        let mut c = TextColumn::default();
        for cell in cells {
            c.push(cell);
        }
        c
    }

    fn fit_one(kind: Kind, cells: &[&str], won: &[bool], min_level_count: usize) -> Attribute {
        let col = column(cells);
        let rows: Vec<usize> = (0..cells.len()).collect();
        let options = EncoderOptions {
            min_level_count,
            max_levels: 100,
        };
        let enc = FeatureEncoder::fit(
            [("x", kind, &col)],
            &rows,
            won,
            &MissingTokens::default(),
            &options,
        )
        .unwrap();
        enc.attributes.into_iter().next().unwrap()
    }

    fn encode(a: &Attribute, v: RawValue<'_>) -> Result<(Vec<f64>, Reading), ValueError> {
        let mut out = vec![9.0; a.width()];
        let r = a.encode(v, &MissingTokens::default(), &mut out)?;
        Ok((out, r))
    }

    #[test]
    fn numeric_standardises_imputes_and_flags_missing() {
        let a = fit_one(
            Kind::Numeric,
            &["1", "3", "", "5"],
            &[false, true, true, false],
            1,
        );
        let Encoding::Numeric { mean, scale, .. } = a.encoding else {
            panic!()
        };
        assert_eq!(mean, 3.0);
        assert!((scale - (8.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(encode(&a, RawValue::Text("3")).unwrap().0, [0.0, 0.0]);
        assert_eq!(encode(&a, RawValue::Text("NA")).unwrap().0, [0.0, 1.0]);
        // Clamped to the training range [1, 5].
        let (high, _) = encode(&a, RawValue::Number(1e9)).unwrap();
        assert!((high[0] - 2.0 / scale).abs() < 1e-12);
        let err = encode(&a, RawValue::Text("abc")).unwrap_err();
        assert_eq!(err.field, "x");
        assert!(encode(&a, RawValue::Number(f64::NAN)).is_err());
        assert!(encode(&a, RawValue::Number(f64::INFINITY)).is_err());
    }

    #[test]
    fn categorical_pools_rare_levels_and_normalises_case() {
        let cells = ["Google", "google ", "GOOGLE", "Email", "email", "Fax", ""];
        let won = [true, false, true, false, false, true, false];
        let a = fit_one(Kind::Categorical, &cells, &won, 2);
        let Encoding::Categorical {
            levels,
            level_rates,
            other_rate,
            missing_rate,
            pooled,
        } = &a.encoding
        else {
            panic!()
        };
        assert_eq!(levels, &["google", "email"]);
        assert_eq!(pooled, &["fax"]);
        assert_eq!(level_rates[0], RateStat { leads: 3, wins: 2 });
        assert_eq!(*other_rate, RateStat { leads: 1, wins: 1 });
        assert_eq!(*missing_rate, RateStat { leads: 1, wins: 0 });
        assert_eq!(
            encode(&a, RawValue::Text("  GooGle ")).unwrap().0,
            [1.0, 0.0, 0.0, 0.0]
        );
        let (v, r) = encode(&a, RawValue::Text("carrier pigeon")).unwrap();
        assert_eq!(v, [0.0, 0.0, 1.0, 0.0]);
        assert!(matches!(r, Reading::Other { unseen: true, .. }));
        let (v, r) = encode(&a, RawValue::Text("FAX")).unwrap();
        assert_eq!(v, [0.0, 0.0, 1.0, 0.0]);
        assert!(
            matches!(r, Reading::Other { unseen: false, .. }),
            "fax was seen, pooled"
        );
        assert_eq!(
            encode(&a, RawValue::Missing).unwrap().0,
            [0.0, 0.0, 0.0, 1.0]
        );
    }

    #[test]
    fn normalised_comparison_agrees_with_normalising() {
        let raws = [
            "Google",
            " google  ",
            "GOO gle",
            "goo  gle",
            "",
            "  ",
            "İstanbul",
            "ß",
            "Olark Chat",
            "olark chat ",
            "olark\tchat",
            "olark",
            "olark chatx",
            "ΣΑΣ",
        ];
        let levels = [
            "google",
            "goo gle",
            "",
            "olark chat",
            "i̇stanbul",
            "ß",
            "σασ",
            "olark",
        ];
        for raw in raws
            .iter()
            .chain(&["GOOGLE", "Olark  Chat", "olark chat", " olark chat"])
        {
            for level in levels {
                assert_eq!(
                    normalised_eq(raw, level),
                    normalise_category(raw) == level,
                    "{raw:?} vs {level:?}"
                );
            }
            let owned: Vec<String> = levels.iter().map(|l| l.to_string()).collect();
            assert_eq!(
                level_index(&owned, raw),
                levels.iter().position(|&l| normalise_category(raw) == l),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn categorical_has_no_columns_for_what_training_never_saw() {
        let a = fit_one(
            Kind::Categorical,
            &["a", "b", "a"],
            &[true, false, false],
            1,
        );
        assert_eq!(a.column_names(), ["x=a", "x=b"]);
        let (v, r) = encode(&a, RawValue::Text("zebra")).unwrap();
        assert_eq!(v, [0.0, 0.0]);
        assert!(matches!(r, Reading::Other { unseen: true, .. }));
        assert_eq!(
            encode(&a, RawValue::Missing).unwrap(),
            (vec![0.0, 0.0], Reading::Missing)
        );
    }

    #[test]
    fn boolean_reads_flags_text_and_numbers() {
        let a = fit_one(
            Kind::Boolean,
            &["yes", "no", "no", "no"],
            &[true, false, false, true],
            1,
        );
        assert_eq!(a.width(), 1);
        assert_eq!(encode(&a, RawValue::Text("Yes")).unwrap().0, [1.0]);
        assert_eq!(encode(&a, RawValue::Flag(false)).unwrap().0, [0.0]);
        assert_eq!(encode(&a, RawValue::Number(1.0)).unwrap().0, [1.0]);
        assert_eq!(encode(&a, RawValue::Missing).unwrap().0, [0.25]);
        assert!(encode(&a, RawValue::Number(2.0)).is_err());
        assert!(encode(&a, RawValue::Text("maybe")).is_err());
    }

    #[test]
    fn table_encoding_matches_row_encoding() {
        let text = "src,n\nweb,1\nWeb,\nemail,7\nfax,2\n";
        let table = crate::data::parse_csv(std::path::Path::new("t.csv"), text.as_bytes()).unwrap();
        let rows = [0, 1, 2, 3];
        let won = [true, false, true, false];
        let enc = FeatureEncoder::fit(
            [
                ("src", Kind::Categorical, table.column(0)),
                ("n", Kind::Numeric, table.column(1)),
            ],
            &rows,
            &won,
            &MissingTokens::default(),
            &EncoderOptions {
                min_level_count: 1,
                max_levels: 2,
            },
        )
        .unwrap();
        // Matrix row i holds table row shuffled[i].
        let shuffled = [2, 0, 3, 1];
        let matrix = encode_table(&enc, &table, &[0, 1], &shuffled).unwrap();
        let mut out = vec![0.0; enc.width()];
        let mut readings = Vec::new();
        for (i, &r) in shuffled.iter().enumerate() {
            enc.encode_row(
                |a| RawValue::Text(table.column(a).get(r)),
                &mut out,
                &mut readings,
            )
            .unwrap();
            assert_eq!(matrix.row(i).to_vec(), out, "matrix row {i}, table row {r}");
        }
    }
}
