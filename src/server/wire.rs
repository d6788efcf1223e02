//! Reads score requests straight from their protobuf bytes.
//!
//! prost would decode a lead's `fields` into a `HashMap<String, FieldValue>`: two allocations
//! and a hash insert per field, which costs more than scoring the lead. This reader instead walks
//! the wire format once and hands each field to the caller as borrowed `(&str, RawValue)`, so
//! the service can drop each value into its attribute's slot without allocating.
//!
//! The messages read here (see `proto/leadscore/v1/leadscore.proto`):
//! - `ScoreLeadRequest { Lead lead = 1; uint32 explain = 2; }`
//! - `ScoreLeadsRequest { repeated Lead leads = 1; uint32 explain = 2; }`
//! - `Lead { string lead_id = 1; map<string, FieldValue> fields = 2; }` (a map entry is a
//!   message `{ string key = 1; FieldValue value = 2; }`)
//! - `FieldValue { oneof kind { double number = 1; string text = 2; bool flag = 3; } }`
//!
//! Protobuf rules kept: fields may come in any order, a repeated scalar field's last occurrence
//! wins (so does the last entry of a repeated map key and the last member of a oneof), a message
//! field sent more than once is merged (a `lead`, or a map entry's `FieldValue`: see
//! [`Embedded`]), unknown fields are skipped (groups included), and an unset `FieldValue` is
//! missing. Varints longer than 64 bits, keys above `u32::MAX`, field number 0, wire types 6 and
//! 7, and nesting past prost's recursion limit are errors, as in prost. The tests and the
//! `score_request` fuzz target check this reader against prost on the same messages, canonical
//! and not.

use crate::encoder::RawValue;

/// Why a request's bytes could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("malformed request: {0}")]
pub struct WireError(pub &'static str);

type Result<T> = std::result::Result<T, WireError>;

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LENGTH_DELIMITED: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;

/// prost's recursion limit, as its `DecodeContext` counts it: every embedded message and every
/// group (inside an unknown field) uses one level, and a field met with no level left is an
/// error. The request's own fields have all 100; a `Lead`'s have 99, a map entry's 98, a
/// `FieldValue`'s 97, so groups nested in an unknown field of a `FieldValue` run out sooner than
/// the same groups at the top (found by the `score_request` fuzz target, which checks this
/// reader against prost).
const RECURSION_LIMIT: u32 = 100;
const LEAD_LEVELS: u32 = RECURSION_LIMIT - 1;
const ENTRY_LEVELS: u32 = RECURSION_LIMIT - 2;
const VALUE_LEVELS: u32 = RECURSION_LIMIT - 3;

/// A cursor over one message's bytes.
struct Reader<'a> {
    buf: &'a [u8],
    /// Recursion levels left for this message's fields (see [`RECURSION_LIMIT`]).
    levels: u32,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], levels: u32) -> Self {
        Reader { buf, levels }
    }

    #[inline]
    fn varint(&mut self) -> Result<u64> {
        // Keys, lengths and small numbers are one byte: the common case, kept out of the loop.
        match self.buf.first() {
            Some(&byte) if byte < 0x80 => {
                self.buf = &self.buf[1..];
                Ok(u64::from(byte))
            }
            _ => self.long_varint(),
        }
    }

    #[inline(never)]
    fn long_varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for (i, &byte) in self.buf.iter().enumerate().take(10) {
            // The tenth byte holds bit 63 only: anything more would overflow 64 bits.
            if i == 9 && byte > 1 {
                return Err(WireError("bad varint"));
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        Err(WireError("bad varint"))
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(WireError("truncated message"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// The next field's number and wire type, or `None` at the end of the message.
    #[inline]
    fn key(&mut self) -> Result<Option<(u64, u8)>> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        if key > u64::from(u32::MAX) {
            return Err(WireError("field key out of range"));
        }
        let (field, wire_type) = (key >> 3, (key & 7) as u8);
        if field == 0 {
            return Err(WireError("field number 0"));
        }
        if wire_type > FIXED32 {
            return Err(WireError("unsupported wire type"));
        }
        Ok(Some((field, wire_type)))
    }

    #[inline]
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = self.varint()?;
        self.take(usize::try_from(len).map_err(|_| WireError("length too large"))?)
    }

    #[inline]
    fn string(&mut self) -> Result<&'a str> {
        std::str::from_utf8(self.bytes()?).map_err(|_| WireError("string is not valid UTF-8"))
    }

    /// Skips an unknown field (`field` is its number: a group ends with the same number).
    fn skip(&mut self, field: u64, wire_type: u8) -> Result<()> {
        self.skip_nested(field, wire_type, self.levels)
    }

    fn skip_nested(&mut self, field: u64, wire_type: u8, levels: u32) -> Result<()> {
        if levels == 0 {
            return Err(WireError("message nested too deeply"));
        }
        match wire_type {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            LENGTH_DELIMITED => self.bytes().map(drop),
            FIXED32 => self.take(4).map(drop),
            START_GROUP => loop {
                match self.key()? {
                    None => return Err(WireError("truncated message")),
                    Some((inner, END_GROUP)) if inner == field => return Ok(()),
                    Some((_, END_GROUP)) => return Err(WireError("unexpected end group")),
                    Some((inner, inner_type)) => self.skip_nested(inner, inner_type, levels - 1)?,
                }
            },
            _ => Err(WireError("unexpected end group")),
        }
    }

    /// Reads a field of the expected wire type, or fails.
    #[inline]
    fn expect(&self, wire_type: u8, expected: u8) -> Result<()> {
        if wire_type == expected {
            Ok(())
        } else {
            Err(WireError("field has the wrong wire type"))
        }
    }
}

/// An embedded message's bytes. Protobuf merges a message field sent more than once, which is
/// the same as reading its occurrences one after another. `Merged` walks the parent's
/// occurrences lazily, so a message sent a million times costs no allocation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Embedded<'a> {
    /// Sent once (the usual case), or never (empty).
    Once(&'a [u8]),
    /// Sent several times: every occurrence of the length-delimited field number `field` in
    /// `parent`, a message already read once (so known to be well-formed).
    Merged { parent: &'a [u8], field: u64 },
}

impl<'a> Embedded<'a> {
    /// The embedded message after one more occurrence (`bytes`) of `field` in `parent`.
    fn and(this: Option<Embedded<'a>>, bytes: &'a [u8], parent: &'a [u8], field: u64) -> Self {
        match this {
            None => Embedded::Once(bytes),
            Some(_) => Embedded::Merged { parent, field },
        }
    }

    /// Reads the fields of every occurrence in order, calling `visit(reader, number, wire type)`
    /// for each; `visit` must consume the field. `levels` is the recursion levels the embedded
    /// message's fields have (its parent's have one more).
    fn fields(
        self,
        levels: u32,
        mut visit: impl FnMut(&mut Reader<'a>, u64, u8) -> Result<()>,
    ) -> Result<()> {
        match self {
            Embedded::Once(part) => read_fields(part, levels, &mut visit),
            Embedded::Merged { parent, field } => {
                let mut reader = Reader::new(parent, levels + 1);
                while let Some((number, wire_type)) = reader.key()? {
                    if number == field && wire_type == LENGTH_DELIMITED {
                        read_fields(reader.bytes()?, levels, &mut visit)?;
                    } else {
                        reader.skip(number, wire_type)?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// Calls `visit(reader, number, wire type)` for each field of one message's bytes.
#[inline(always)]
fn read_fields<'a>(
    part: &'a [u8],
    levels: u32,
    visit: &mut impl FnMut(&mut Reader<'a>, u64, u8) -> Result<()>,
) -> Result<()> {
    let mut reader = Reader::new(part, levels);
    while let Some((number, wire_type)) = reader.key()? {
        visit(&mut reader, number, wire_type)?;
    }
    Ok(())
}

/// A `ScoreLeadRequest`: the encoded lead (if set) and the number of factors asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreLeadRequest<'a> {
    pub lead: Option<Embedded<'a>>,
    pub explain: u32,
}

/// A `ScoreLeadsRequest`: the encoded leads in order and the number of factors asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreLeadsRequest<'a> {
    pub leads: Vec<&'a [u8]>,
    pub explain: u32,
}

/// Why a `ScoreLeadsRequest` was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Wire(#[from] WireError),
    /// More leads than the server accepts; reading stopped at the first one too many, so an
    /// oversized batch costs no more memory than an accepted one.
    #[error("more than {max} leads in one call")]
    TooManyLeads { max: usize },
}

pub fn score_lead_request(buf: &[u8]) -> Result<ScoreLeadRequest<'_>> {
    let mut reader = Reader::new(buf, RECURSION_LIMIT);
    let mut request = ScoreLeadRequest {
        lead: None,
        explain: 0,
    };
    while let Some((number, wire_type)) = reader.key()? {
        match number {
            1 => {
                reader.expect(wire_type, LENGTH_DELIMITED)?;
                let bytes = reader.bytes()?;
                request.lead = Some(Embedded::and(request.lead, bytes, buf, 1));
            }
            2 => {
                reader.expect(wire_type, VARINT)?;
                request.explain = reader.varint()? as u32;
            }
            _ => reader.skip(number, wire_type)?,
        }
    }
    Ok(request)
}

/// Reads a `ScoreLeadsRequest` of at most `max_leads` leads.
pub fn score_leads_request(
    buf: &[u8],
    max_leads: usize,
) -> std::result::Result<ScoreLeadsRequest<'_>, BatchError> {
    let mut reader = Reader::new(buf, RECURSION_LIMIT);
    let mut request = ScoreLeadsRequest {
        leads: Vec::new(),
        explain: 0,
    };
    while let Some((number, wire_type)) = reader.key()? {
        match number {
            1 => {
                reader.expect(wire_type, LENGTH_DELIMITED)?;
                if request.leads.len() == max_leads {
                    return Err(BatchError::TooManyLeads { max: max_leads });
                }
                request.leads.push(reader.bytes()?);
            }
            2 => {
                reader.expect(wire_type, VARINT)?;
                request.explain = reader.varint()? as u32;
            }
            _ => reader.skip(number, wire_type)?,
        }
    }
    Ok(request)
}

/// Reads an encoded `Lead`, calling `field(name, value)` for each map entry in message order,
/// and returns the lead id. `value` is the entry's encoded `FieldValue` (empty when unset): the
/// caller decodes it with [`field_value`] only for the fields it uses, so the values of ignored
/// fields cost nothing (not even their UTF-8 check). Names are left as bytes for the same
/// reason; a name that matches a known field is valid UTF-8 by construction.
pub fn lead<'a>(
    lead: Embedded<'a>,
    mut field: impl FnMut(&'a [u8], Embedded<'a>) -> Result<()>,
) -> Result<&'a str> {
    let mut lead_id = "";
    lead.fields(LEAD_LEVELS, |reader, number, wire_type| {
        match number {
            1 => {
                reader.expect(wire_type, LENGTH_DELIMITED)?;
                lead_id = reader.string()?;
            }
            2 => {
                reader.expect(wire_type, LENGTH_DELIMITED)?;
                let (name, value) = map_entry(reader.bytes()?)?;
                field(name, value)?;
            }
            _ => reader.skip(number, wire_type)?,
        }
        Ok(())
    })?;
    Ok(lead_id)
}

/// A map entry's key and encoded value.
fn map_entry(buf: &[u8]) -> Result<(&[u8], Embedded<'_>)> {
    let mut reader = Reader::new(buf, ENTRY_LEVELS);
    let mut name: Option<&[u8]> = None;
    let mut value = None;
    while let Some((number, wire_type)) = reader.key()? {
        match number {
            1 => {
                reader.expect(wire_type, LENGTH_DELIMITED)?;
                // The last key wins, but prost checks every one it reads: so must this reader
                // (the last is checked by whoever uses it; a repeated key is rare).
                if let Some(earlier) = name {
                    self::name(earlier)?;
                }
                name = Some(reader.bytes()?);
            }
            2 => {
                reader.expect(wire_type, LENGTH_DELIMITED)?;
                let bytes = reader.bytes()?;
                value = Some(Embedded::and(value, bytes, buf, 2));
            }
            _ => reader.skip(number, wire_type)?,
        }
    }
    Ok((name.unwrap_or(&[]), value.unwrap_or(Embedded::Once(&[]))))
}

/// A field name the caller does not know, as text.
pub fn name(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes).map_err(|_| WireError("field name is not valid UTF-8"))
}

/// Decodes an encoded `FieldValue`; unset (or empty) is missing.
pub fn field_value(value: Embedded<'_>) -> Result<RawValue<'_>> {
    let mut raw = RawValue::Missing;
    value.fields(VALUE_LEVELS, |reader, number, wire_type| {
        match number {
            1 => {
                reader.expect(wire_type, FIXED64)?;
                let bytes: [u8; 8] = reader.take(8)?.try_into().expect("took 8 bytes");
                raw = RawValue::Number(f64::from_le_bytes(bytes));
            }
            2 => {
                reader.expect(wire_type, LENGTH_DELIMITED)?;
                raw = RawValue::Text(reader.string()?);
            }
            3 => {
                reader.expect(wire_type, VARINT)?;
                raw = RawValue::Flag(reader.varint()? != 0);
            }
            _ => reader.skip(number, wire_type)?,
        }
        Ok(())
    })?;
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::pb;
    use prost::Message;

    fn value(kind: Option<pb::field_value::Kind>) -> pb::FieldValue {
        pb::FieldValue { kind }
    }

    fn sample_lead() -> pb::Lead {
        use pb::field_value::Kind;
        pb::Lead {
            lead_id: "lead-7 ünïcode".into(),
            fields: [
                ("visits".to_string(), value(Some(Kind::Number(-3.25)))),
                (
                    "source".to_string(),
                    value(Some(Kind::Text("Web Form".into()))),
                ),
                ("demo".to_string(), value(Some(Kind::Flag(true)))),
                ("empty".to_string(), value(None)),
                ("nan".to_string(), value(Some(Kind::Number(f64::NAN)))),
                ("".to_string(), value(Some(Kind::Text(String::new())))),
            ]
            .into_iter()
            .collect(),
        }
    }

    /// The lead as the service reads it: a later entry for the same name replaces the earlier.
    fn read_lead(bytes: Embedded<'_>) -> (String, Vec<(String, String)>) {
        let mut fields = std::collections::BTreeMap::new();
        let id = lead(bytes, |name_bytes, value| {
            fields.insert(
                name(name_bytes)?.to_string(),
                format!("{:?}", field_value(value)?),
            );
            Ok(())
        })
        .unwrap();
        (id.to_string(), fields.into_iter().collect())
    }

    fn prost_lead(lead: &pb::Lead) -> (String, Vec<(String, String)>) {
        use pb::field_value::Kind;
        let mut fields: Vec<(String, String)> = lead
            .fields
            .iter()
            .map(|(name, v)| {
                let raw = match &v.kind {
                    None => RawValue::Missing,
                    Some(Kind::Number(x)) => RawValue::Number(*x),
                    Some(Kind::Text(t)) => RawValue::Text(t),
                    Some(Kind::Flag(b)) => RawValue::Flag(*b),
                };
                (name.clone(), format!("{raw:?}"))
            })
            .collect();
        fields.sort();
        (lead.lead_id.clone(), fields)
    }

    #[test]
    fn reads_what_prost_writes() {
        let lead = sample_lead();
        let request = pb::ScoreLeadRequest {
            lead: Some(lead.clone()),
            explain: 3,
        };
        let bytes = request.encode_to_vec();
        let parsed = score_lead_request(&bytes).unwrap();
        assert_eq!(parsed.explain, 3);
        assert_eq!(read_lead(parsed.lead.unwrap()), prost_lead(&lead));

        let batch = pb::ScoreLeadsRequest {
            leads: vec![lead.clone(), pb::Lead::default(), lead.clone()],
            explain: 7,
        };
        let bytes = batch.encode_to_vec();
        let parsed = score_leads_request(&bytes, 3).unwrap();
        assert_eq!(parsed.explain, 7);
        assert_eq!(parsed.leads.len(), 3);
        assert_eq!(
            read_lead(Embedded::Once(parsed.leads[2])),
            prost_lead(&lead)
        );
        assert_eq!(
            read_lead(Embedded::Once(parsed.leads[1])),
            (String::new(), vec![])
        );

        let empty = score_lead_request(&[]).unwrap();
        assert_eq!(empty.lead, None);
    }

    #[test]
    fn skips_unknown_fields_and_takes_the_last_duplicate() {
        let mut bytes = pb::ScoreLeadRequest {
            lead: None,
            explain: 1,
        }
        .encode_to_vec();
        // Unknown field 9 of each wire type, then explain = 4 again.
        bytes.extend([9 << 3, 150, 1]); // varint
        bytes.extend([(9 << 3) | 1, 0, 0, 0, 0, 0, 0, 0, 0]); // fixed64
        bytes.extend([(9 << 3) | 2, 2, b'h', b'i']); // length-delimited
        bytes.extend([(9 << 3) | 5, 0, 0, 0, 0]); // fixed32
        bytes.extend([2 << 3, 4]);
        assert_eq!(score_lead_request(&bytes).unwrap().explain, 4);
        assert_eq!(
            pb::ScoreLeadRequest::decode(bytes.as_slice())
                .unwrap()
                .explain,
            4
        );
    }

    #[test]
    fn malformed_bytes_are_errors_not_panics() {
        let good = pb::ScoreLeadsRequest {
            leads: vec![sample_lead()],
            explain: 2,
        }
        .encode_to_vec();
        // Every truncation and a few corruptions: each either parses or fails cleanly.
        for end in 0..good.len() {
            let _ = score_leads_request(&good[..end], 10).map(|r| {
                for l in r.leads {
                    let _ = lead(Embedded::Once(l), |n, v| {
                        name(n).and(field_value(v)).map(drop)
                    });
                }
            });
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0xff;
            let _ = score_leads_request(&bad, 10).map(|r| {
                for l in r.leads {
                    let _ = lead(Embedded::Once(l), |n, v| {
                        name(n).and(field_value(v)).map(drop)
                    });
                }
            });
        }
        assert!(score_lead_request(&[0x0a, 0x05, 1]).is_err());
        assert!(score_lead_request(&[0xff; 11]).is_err());
        assert!(lead(Embedded::Once(&[0x0a, 0x01, 0xff]), |_, _| Ok(())).is_err());
        // A text value that is not UTF-8, in a field that is read.
        let bad_text = [0x12, 0x08, 0x0a, 0x01, b'x', 0x12, 0x03, 0x12, 0x01, 0xff];
        assert!(lead(Embedded::Once(&bad_text), |_, v| field_value(v).map(drop)).is_err());
        // Field 1 of ScoreLeadRequest sent as a varint.
        assert!(score_lead_request(&[0x08, 0x01]).is_err());
    }

    /// A message field sent twice is merged, as prost does: the lead's map entries from both
    /// copies, the lead id from the last copy that has one; a map entry's `FieldValue` sent twice
    /// is merged too (the last member of the oneof that is set wins).
    #[test]
    fn merges_repeated_messages_as_prost_does() {
        use pb::field_value::Kind;
        let first = pb::Lead {
            lead_id: "first".into(),
            fields: [
                ("a".to_string(), value(Some(Kind::Number(1.0)))),
                ("b".to_string(), value(Some(Kind::Text("one".into())))),
            ]
            .into_iter()
            .collect(),
        };
        let second = pb::Lead {
            lead_id: String::new(), // not on the wire: the first id stays
            fields: [("b".to_string(), value(Some(Kind::Flag(true))))]
                .into_iter()
                .collect(),
        };
        let third = pb::Lead {
            lead_id: String::new(),
            fields: [("c".to_string(), value(None))].into_iter().collect(),
        };
        let mut bytes = pb::ScoreLeadRequest {
            lead: Some(first),
            explain: 1,
        }
        .encode_to_vec();
        bytes.extend(
            pb::ScoreLeadRequest {
                lead: Some(second),
                explain: 0,
            }
            .encode_to_vec(),
        );
        bytes.extend([2 << 3, 5]); // explain between the copies
        bytes.extend(
            pb::ScoreLeadRequest {
                lead: Some(third),
                explain: 0,
            }
            .encode_to_vec(),
        );
        let expected = pb::ScoreLeadRequest::decode(bytes.as_slice()).unwrap();
        let parsed = score_lead_request(&bytes).unwrap();
        assert_eq!(parsed.explain, expected.explain);
        let lead = parsed.lead.unwrap();
        assert!(matches!(lead, Embedded::Merged { .. }));
        let merged = expected.lead.unwrap();
        assert_eq!(merged.fields.len(), 3);
        assert_eq!(merged.lead_id, "first");
        assert_eq!(read_lead(lead), prost_lead(&merged));

        // One map entry carrying its value three times: a number, a text, then an unset value
        // (which changes nothing when merged), so the text wins.
        let text = pb::FieldValue {
            kind: Some(Kind::Text("x".into())),
        }
        .encode_to_vec();
        let number = pb::FieldValue {
            kind: Some(Kind::Number(2.5)),
        }
        .encode_to_vec();
        let mut entry = vec![0x0a, 1, b'k'];
        for value in [&number, &text, &Vec::new()] {
            entry.push(0x12);
            entry.push(value.len() as u8);
            entry.extend(value);
        }
        let mut lead_bytes = vec![0x12, entry.len() as u8];
        lead_bytes.extend(&entry);
        // And the same key again in a later entry with only a number: the later entry
        // replaces the earlier one whole.
        let later = [
            0x12, 0x0e, 0x0a, 1, b'j', 0x12, 9, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f,
        ];
        lead_bytes.extend(later);
        let expected = pb::Lead::decode(lead_bytes.as_slice()).unwrap();
        assert_eq!(expected.fields["k"].kind, Some(Kind::Text("x".into())));
        assert_eq!(
            read_lead(Embedded::Once(&lead_bytes)),
            prost_lead(&expected)
        );
    }

    /// Input prost refuses is refused here too; input prost accepts is read the same way.
    #[test]
    fn non_canonical_input_matches_prost() {
        let ours = |bytes: &[u8]| score_lead_request(bytes).map(|r| r.explain);
        let prost = |bytes: &[u8]| pb::ScoreLeadRequest::decode(bytes).map(|r| r.explain);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            // A ten-byte varint whose last byte holds more than bit 63.
            (
                "varint over 64 bits",
                [vec![0x10], vec![0xff; 9], vec![0x02]].concat(),
            ),
            (
                "ten-byte varint",
                [vec![0x10], vec![0xff; 9], vec![0x01]].concat(),
            ),
            (
                "eleven-byte varint",
                [vec![0x10], vec![0xff; 10], vec![0x01]].concat(),
            ),
            // A key above u32::MAX (field 2 with high bits set), and one just at it.
            (
                "key above u32::MAX",
                vec![0x90, 0x80, 0x80, 0x80, 0x10, 0x05],
            ),
            (
                "key at u32::MAX",
                vec![0xfd, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0],
            ),
            ("field number 0", vec![0x00, 0x01]),
            ("wire type 6", vec![0x4e, 0x01]),
            // Unknown field 9 as a group holding a varint and a nested group.
            (
                "group",
                vec![0x4b, 0x08, 0x01, 0x53, 0x54, 0x4c, 0x10, 0x07],
            ),
            ("group ended by another field", vec![0x4b, 0x54]),
            ("group never ended", vec![0x4b, 0x08, 0x01]),
            ("end group alone", vec![0x4c]),
            ("end group of a known field", vec![0x14]),
            (
                "deeply nested groups",
                [vec![0x4b; 150], vec![0x4c; 150]].concat(),
            ),
        ];
        for (what, bytes) in cases {
            let (ours, prost) = (ours(&bytes), prost(&bytes));
            assert_eq!(ours.is_ok(), prost.is_ok(), "{what}: {ours:?} vs {prost:?}");
            if let (Ok(ours), Ok(prost)) = (ours, prost) {
                assert_eq!(ours, prost, "{what}");
            }
        }
    }

    /// Groups nested in an unknown field, at each level of the request, around prost's
    /// recursion limit: refused exactly where prost refuses them.
    #[test]
    fn nesting_is_limited_where_prost_limits_it() {
        fn varint(mut n: usize, out: &mut Vec<u8>) {
            while n >= 0x80 {
                out.push((n as u8) | 0x80);
                n >>= 7;
            }
            out.push(n as u8);
        }
        // Length-delimited field `field` holding `bytes`.
        fn ld(field: u8, bytes: &[u8]) -> Vec<u8> {
            let mut out = vec![(field << 3) | 2];
            varint(bytes.len(), &mut out);
            out.extend(bytes);
            out
        }
        // `n` groups of unknown field 9, the innermost holding an unknown varint when `filled`.
        let groups = |n: usize, filled: bool| {
            let inner: &[u8] = if filled { &[0x48, 0x01] } else { &[] };
            [vec![0x4b; n], inner.to_vec(), vec![0x4c; n]].concat()
        };
        let entry = |inside: &[u8]| ld(2, &[ld(1, b"x"), inside.to_vec()].concat());
        // Where the groups go: the request, the lead, the map entry, the field value.
        type Wrap = Box<dyn Fn(&[u8]) -> Vec<u8>>;
        let places: [(&str, Wrap); 4] = [
            ("request", Box::new(|g: &[u8]| g.to_vec())),
            ("lead", Box::new(|g: &[u8]| ld(1, g))),
            ("entry", Box::new(move |g: &[u8]| ld(1, &entry(g)))),
            ("value", Box::new(move |g: &[u8]| ld(1, &entry(&ld(2, g))))),
        ];
        let ours = |bytes: &[u8]| -> Result<()> {
            let request = score_lead_request(bytes)?;
            if let Some(lead_bytes) = request.lead {
                lead(lead_bytes, |n, v| name(n).and(field_value(v)).map(drop))?;
            }
            Ok(())
        };
        let mut refused = 0;
        for (place, wrap) in &places {
            for n in 94..=101 {
                for filled in [false, true] {
                    let bytes = wrap(&groups(n, filled));
                    let prost = pb::ScoreLeadRequest::decode(bytes.as_slice());
                    assert_eq!(
                        ours(&bytes).is_ok(),
                        prost.is_ok(),
                        "{n} groups in the {place} (filled: {filled}): prost {prost:?}"
                    );
                    refused += prost.is_err() as usize;
                }
            }
        }
        assert!(
            refused > 0 && refused < 64,
            "the limit was crossed: {refused}"
        );
    }

    /// A map entry whose key comes twice, the first not UTF-8: prost refuses it (it checks
    /// every string it reads), so this reader does too, though the last key wins.
    #[test]
    fn every_key_of_a_map_entry_is_checked_as_prost_does() {
        // Lead { fields: entry { key: [0xff], key: "x", value: {} } }, in a ScoreLeadRequest.
        let entry = [0x0a, 0x01, 0xff, 0x0a, 0x01, b'x', 0x12, 0x00];
        let lead_bytes = [&[0x12, entry.len() as u8][..], &entry].concat();
        let request = [&[0x0a, lead_bytes.len() as u8][..], &lead_bytes].concat();
        assert!(pb::ScoreLeadRequest::decode(request.as_slice()).is_err());
        let parsed = score_lead_request(&request).unwrap();
        let read = lead(parsed.lead.unwrap(), |n, v| {
            name(n).and(field_value(v)).map(drop)
        });
        assert_eq!(read, Err(WireError("field name is not valid UTF-8")));
        // Valid twice: the last wins, as in prost.
        let entry = [0x0a, 0x01, b'y', 0x0a, 0x01, b'x', 0x12, 0x00];
        let lead_bytes = [&[0x12, entry.len() as u8][..], &entry].concat();
        let decoded = pb::Lead::decode(lead_bytes.as_slice()).unwrap();
        assert!(decoded.fields.contains_key("x"));
        let mut names = Vec::new();
        lead(Embedded::Once(&lead_bytes), |n, _| {
            names.push(name(n)?.to_string());
            Ok(())
        })
        .unwrap();
        assert_eq!(names, ["x"]);
    }

    #[test]
    fn a_batch_over_the_limit_stops_at_the_first_lead_too_many() {
        let leads = |n: usize| [0x0a, 0x00].repeat(n);
        assert_eq!(score_leads_request(&leads(10), 10).unwrap().leads.len(), 10);
        assert_eq!(
            score_leads_request(&leads(11), 10),
            Err(BatchError::TooManyLeads { max: 10 })
        );
        // Refused before the malformed tail is even reached.
        let mut bytes = leads(11);
        bytes.push(0xff);
        assert_eq!(
            score_leads_request(&bytes, 10),
            Err(BatchError::TooManyLeads { max: 10 })
        );
    }
}
