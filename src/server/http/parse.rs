//! Reading JSON request bodies into leads, refusing what cannot be read with the field at fault.
//!
//! Field values are taken from the body's text (`serde_json`'s `RawValue`) rather than through
//! `serde_json::Value`: numbers are parsed once, by the standard library's correctly rounded
//! parser (as `leadscore score` parses a CSV cell), so `1e400` reaches the encoder as infinity
//! and is refused there with the same message gRPC gets, instead of failing the whole body
//! without naming the field; strings without escapes are borrowed, not copied.

use super::ApiError;
use crate::encoder::{RawValue, echo};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue as Json;
use std::borrow::Cow;
use std::fmt;

/// One attribute value as sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Missing,
    Text(Cow<'a, str>),
    Number(f64),
    Flag(bool),
}

impl Value<'_> {
    /// The value as the encoder takes it.
    pub fn raw(&self) -> RawValue<'_> {
        match self {
            Value::Missing => RawValue::Missing,
            Value::Text(t) => RawValue::Text(t),
            Value::Number(v) => RawValue::Number(*v),
            Value::Flag(b) => RawValue::Flag(*b),
        }
    }
}

/// A lead as sent: its id and its fields in the order of the body.
#[derive(Debug)]
pub struct Lead<'a> {
    pub lead_id: Cow<'a, str>,
    pub fields: Vec<(Cow<'a, str>, Value<'a>)>,
}

/// `POST /v1/leads:score`: `{"lead_id", "fields", "explain"}`.
pub fn score_lead(body: &[u8]) -> Result<(Lead<'_>, u32), ApiError> {
    let mut lead = Lead {
        lead_id: Cow::Borrowed(""),
        fields: Vec::new(),
    };
    let mut explain = 0;
    for (key, value) in object(body, "the body")? {
        match &*key {
            "lead_id" => lead.lead_id = lead_id(value, "lead_id")?,
            "fields" => lead.fields = fields(value, "")?,
            "explain" => explain = parse_explain(value)?,
            other => return Err(unknown_key(other, "", "lead_id, fields, explain")),
        }
    }
    Ok((lead, explain))
}

/// `POST /v1/leads:scoreBatch`: `{"leads": [{"lead_id", "fields"}, ...], "explain"}`; more
/// than `max_batch` leads are refused.
pub fn score_leads(body: &[u8], max_batch: usize) -> Result<(Vec<Lead<'_>>, u32), ApiError> {
    let mut leads = None;
    let mut explain = 0;
    for (key, value) in object(body, "the body")? {
        match &*key {
            "leads" => leads = Some(value),
            "explain" => explain = parse_explain(value)?,
            other => return Err(unknown_key(other, "", "leads, explain")),
        }
    }
    let Some(leads) = leads else {
        return Err(ApiError::invalid(
            "leads",
            "a batch needs \"leads\": an array of {\"lead_id\", \"fields\"} objects",
        ));
    };
    let raw_leads = LimitedArray { max: max_batch }
        .deserialize(&mut serde_json::Deserializer::from_str(leads.get()))
        .map_err(|error| {
            if error.to_string().starts_with(TOO_MANY) {
                ApiError::invalid(
                    "leads",
                    format!(
                        "more than {max_batch} leads in one call; this server accepts at most \
                         {max_batch} (split the batch)"
                    ),
                )
            } else {
                ApiError::invalid(
                    "leads",
                    "must be an array of {\"lead_id\", \"fields\"} objects",
                )
            }
        })?;
    let mut parsed = Vec::with_capacity(raw_leads.len());
    for (i, raw) in raw_leads.into_iter().enumerate() {
        let path = format!("leads[{i}]");
        let mut lead = Lead {
            lead_id: Cow::Borrowed(""),
            fields: Vec::new(),
        };
        for (key, value) in object(raw.get().as_bytes(), &path)? {
            match &*key {
                "lead_id" => lead.lead_id = lead_id(value, &format!("{path}.lead_id"))?,
                "fields" => lead.fields = fields(value, &format!("{path}."))?,
                other => return Err(unknown_key(other, &format!("{path}."), "lead_id, fields")),
            }
        }
        parsed.push(lead);
    }
    Ok((parsed, explain))
}

/// The entries of a JSON object, in order; anything else is refused, naming `what`.
fn entries<'a>(text: &'a [u8], what: &str) -> Result<Vec<(Cow<'a, str>, &'a Json)>, ApiError> {
    let entries = serde_json::from_slice::<Entries<'a>>(text).map_err(|error| {
        let field = (what != "the body").then(|| what.to_string());
        let message = if error.is_syntax() || error.is_eof() {
            format!("{what} is not valid JSON: {error}")
        } else {
            format!("{what} must be a JSON object, not {}", json_kind(text))
        };
        ApiError::with_field(field, message)
    })?;
    Ok(entries.0)
}

/// [`entries`] of a request or lead object, whose few keys each have one meaning: a key given
/// twice is refused (JSON leaves its meaning open). A lead's `fields` are not checked here: the
/// same field name twice is the last value, as in a protobuf map, and two spellings of one field
/// are refused by the name rule, as on every path.
fn object<'a>(text: &'a [u8], what: &str) -> Result<Vec<(Cow<'a, str>, &'a Json)>, ApiError> {
    let entries = entries(text, what)?;
    for (i, (key, _)) in entries.iter().enumerate() {
        if entries[..i].iter().any(|(k, _)| k == key) {
            let field = if what == "the body" {
                echo(key)
            } else {
                format!("{what}.{}", echo(key))
            };
            return Err(ApiError::invalid(field, "given twice"));
        }
    }
    Ok(entries)
}

/// What a JSON text that is not an object is, in words.
fn json_kind(text: &[u8]) -> &'static str {
    match text.trim_ascii_start().first() {
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "true/false",
        Some(b'n') => "null",
        Some(b'{') => "an object of another shape",
        _ => "a number",
    }
}

fn unknown_key(key: &str, prefix: &str, expected: &str) -> ApiError {
    ApiError::invalid(
        format!("{prefix}{}", echo(key)),
        format!("unknown key; expected {expected}"),
    )
}

/// A lead id: a string, or a whole number (CRMs such as HubSpot number their records) taken as
/// its text; null is no id.
fn lead_id<'a>(value: &'a Json, field: &str) -> Result<Cow<'a, str>, ApiError> {
    let text = value.get();
    match text.as_bytes().first() {
        Some(b'"') => Ok(string(value)),
        Some(b'n') => Ok(Cow::Borrowed("")),
        Some(b'0'..=b'9') if text.bytes().all(|b| b.is_ascii_digit()) => Ok(Cow::Borrowed(text)),
        _ => Err(ApiError::invalid(field, "must be a string")),
    }
}

fn parse_explain(value: &Json) -> Result<u32, ApiError> {
    let text = value.get();
    if text == "null" {
        return Ok(0);
    }
    text.parse::<u32>().map_err(|_| {
        ApiError::invalid(
            "explain",
            format!(
                "must be a whole number from 0 to {} (got {})",
                u32::MAX,
                echo(text)
            ),
        )
    })
}

/// The `fields` object; `prefix` locates its lead (`""` or `leads[3].`).
fn fields<'a>(value: &'a Json, prefix: &str) -> Result<Vec<(Cow<'a, str>, Value<'a>)>, ApiError> {
    if value.get() == "null" {
        return Ok(Vec::new());
    }
    let field = format!("{prefix}fields");
    entries(value.get().as_bytes(), &field)?
        .into_iter()
        .map(|(name, raw)| {
            let value = field_value(raw).map_err(|message| {
                ApiError::invalid(format!("{field}[{}]", echo(&name)), message)
            })?;
            Ok((name, value))
        })
        .collect()
}

fn field_value(raw: &Json) -> Result<Value<'_>, &'static str> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => Ok(Value::Text(string(raw))),
        Some(b'n') => Ok(Value::Missing),
        Some(b't') => Ok(Value::Flag(true)),
        Some(b'f') => Ok(Value::Flag(false)),
        Some(b'{') => {
            Err("an object is not a field value; send a string, number, true/false or null")
        }
        Some(b'[') => {
            Err("an array is not a field value; send a string, number, true/false or null")
        }
        // JSON's number grammar is a subset of Rust's float syntax; out of range is infinity,
        // which the encoder refuses naming the field.
        _ => text
            .parse::<f64>()
            .map(Value::Number)
            .map_err(|_| "not a JSON value"),
    }
}

/// A JSON string's text, borrowed when it has no escapes.
fn string(raw: &Json) -> Cow<'_, str> {
    let text = raw.get();
    // The parser has checked the string; without a backslash its text is what is between the
    // quotes (the usual case, and the cheap one).
    match text.get(1..text.len().saturating_sub(1)) {
        Some(inner) if text.len() >= 2 && !inner.contains('\\') => Cow::Borrowed(inner),
        _ => serde_json::from_str::<Key<'_>>(text)
            .map(|key| key.0)
            .unwrap_or(Cow::Borrowed("")),
    }
}

/// A string, borrowed from the body when it holds no escape.
#[derive(Deserialize)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

/// A JSON object's entries, values unparsed.
struct Entries<'a>(Vec<(Cow<'a, str>, &'a Json)>);

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<'de>, A::Error> {
                let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
                    entries.push((key, map.next_value::<&'de Json>()?));
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}

/// The start of the error a batch over the limit raises inside the parser.
const TOO_MANY: &str = "too many leads";

/// An array of at most `max` values, unparsed; reading stops at the first one too many.
struct LimitedArray {
    max: usize,
}

impl<'de> DeserializeSeed<'de> for LimitedArray {
    type Value = Vec<&'de Json>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for LimitedArray {
    type Value = Vec<&'de Json>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of leads")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.max));
        while let Some(item) = seq.next_element::<&'de Json>()? {
            if items.len() == self.max {
                return Err(de::Error::custom(TOO_MANY));
            }
            items.push(item);
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_values_of_every_kind_in_order() {
        let body = br#"{"lead_id": "L1", "explain": 2, "fields": {"a": "x\"y", "b": 12.5,
            "c": true, "d": null, "e": 1e400, "f": -0}}"#;
        let (lead, explain) = score_lead(body).unwrap();
        assert_eq!(explain, 2);
        assert_eq!(lead.lead_id, "L1");
        let values: Vec<_> = lead
            .fields
            .iter()
            .map(|(n, v)| (n.as_ref(), v.clone()))
            .collect();
        assert_eq!(
            values,
            [
                ("a", Value::Text("x\"y".into())),
                ("b", Value::Number(12.5)),
                ("c", Value::Flag(true)),
                ("d", Value::Missing),
                ("e", Value::Number(f64::INFINITY)),
                ("f", Value::Number(-0.0)),
            ]
        );
        assert!(matches!(lead.fields[1].0, Cow::Borrowed(_)));
        assert!(matches!(lead.fields[0].1, Value::Text(Cow::Owned(_))));
        let (lead, _) = score_lead(br#"{"fields": {"a": "plain", "a": "last"}}"#).unwrap();
        assert!(matches!(
            &lead.fields[1].1,
            Value::Text(Cow::Borrowed("last"))
        ));
        // A raw control character is not JSON.
        assert!(score_lead(b"{\"fields\": {\"a\": \"x\ty\"}}").is_err());
    }

    #[test]
    fn refusals_name_the_field() {
        let field = |body: &[u8]| score_lead(body).unwrap_err().field;
        assert_eq!(
            field(br#"{"fields": {"a": [1]}}"#).as_deref(),
            Some("fields[a]")
        );
        assert_eq!(field(br#"{"lead": {}}"#).as_deref(), Some("lead"));
        assert_eq!(field(br#"{"explain": -1}"#).as_deref(), Some("explain"));
        assert_eq!(field(br#"{"lead_id": {}}"#).as_deref(), Some("lead_id"));
        assert_eq!(field(br#"{"fields": 3}"#).as_deref(), Some("fields"));
        assert_eq!(field(br#"[1]"#), None);
        assert_eq!(field(br#"{"a": 1"#), None);
        let batch = br#"{"leads": [{}, {}, {}]}"#;
        assert_eq!(score_leads(batch, 3).unwrap().0.len(), 3);
        let error = score_leads(batch, 2).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("leads"));
        assert!(
            error.message.contains("more than 2 leads"),
            "{}",
            error.message
        );
        let error = score_leads(br#"{"leads": [{}, {"x": 1}]}"#, 5).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("leads[1].x"));
    }
}
