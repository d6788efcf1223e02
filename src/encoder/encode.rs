//! Encoding: an attribute value → its encoded columns, with the fitted parameters of the
//! artifact. This is the hot path: training encodes every cell through it, batch scoring every
//! row, and the server every request, so known category levels are matched without
//! allocating. Also here: how client text is echoed back in messages.

use super::{
    Attribute, Encoding, FeatureEncoder, MISSING_LEVEL, RateStat, RawValue, Reading, ValueError,
};
use crate::schema::{MissingTokens, normalise_category, parse_flag, parse_number};
use std::collections::HashMap;

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

/// Client text in a message, unquoted: at most [`ECHO_CHARS`] characters, then `…`.
pub fn echo(text: &str) -> String {
    match echo_prefix(text) {
        (all, false) => all.to_string(),
        (prefix, true) => format!("{prefix}…"),
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

impl Attribute {
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
                lower_limit,
                upper_limit,
                missing_indicator,
                shape,
                ..
            } => {
                let Some(x) = self.read_number(value)? else {
                    // The linear and spline columns stay 0 (`fill` above): the average training
                    // lead, since every one of them is centred on the training values.
                    if *missing_indicator {
                        out[1] = 1.0;
                    }
                    return Ok(Reading::Missing);
                };
                let low = lower_limit.unwrap_or(*min);
                let high = upper_limit.unwrap_or(*max);
                let v = x.clamp(low, high);
                out[0] = (v - mean) / scale;
                if let Some(shape) = shape {
                    // The spline sees the winsorised value, as the linear column does: beyond
                    // the limits the effect stays what it is at them.
                    shape.encode(v, &mut out[1 + *missing_indicator as usize..]);
                }
                Ok(Reading::Number(x))
            }
            Encoding::Boolean {
                share_true,
                missing_indicator,
                ..
            } => {
                let Some(flag) = self.read_flag(value)? else {
                    out[0] = *share_true;
                    if *missing_indicator {
                        out[1] = 1.0;
                    }
                    return Ok(Reading::Missing);
                };
                out[0] = flag as u8 as f64;
                Ok(Reading::Flag(flag))
            }
            Encoding::Categorical { levels, .. } => Ok(self.encode_category(levels, value, out)),
        }
    }

    /// A numeric attribute's value; `None` when missing.
    fn read_number(&self, value: RawValue<'_>) -> Result<Option<f64>, ValueError> {
        Ok(Some(match value {
            RawValue::Missing => return Ok(None),
            RawValue::Number(v) => v,
            RawValue::Flag(b) => b as u8 as f64,
            RawValue::Text(t) => parse_number(t)
                .ok_or_else(|| self.invalid(format!("{} is not a number", Quoted(t))))?,
        }))
    }

    /// A boolean attribute's value; `None` when missing.
    fn read_flag(&self, value: RawValue<'_>) -> Result<Option<bool>, ValueError> {
        Ok(Some(match value {
            RawValue::Missing => return Ok(None),
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
        }))
    }

    /// Sets the one-hot column of a categorical value (none for a missing value without a
    /// missing column).
    fn encode_category(&self, levels: &[String], value: RawValue<'_>, out: &mut [f64]) -> Reading {
        let label = match value {
            RawValue::Missing => {
                if let Some(slot) = self.missing_slot() {
                    out[slot] = 1.0;
                }
                return Reading::Missing;
            }
            RawValue::Text(t) => {
                // Known levels are matched without allocating the normalised label.
                if let Some(i) = level_index(levels, t) {
                    out[i] = 1.0;
                    return Reading::Level(i);
                }
                normalise_category(t)
            }
            RawValue::Number(v) => format_number(v),
            RawValue::Flag(b) => if b { "yes" } else { "no" }.to_string(),
        };
        self.encode_level(label, out)
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
pub(super) fn level_index(levels: &[String], raw: &str) -> Option<usize> {
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
pub(super) fn normalised_eq(raw: &str, normalised: &str) -> bool {
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

impl FeatureEncoder {
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
