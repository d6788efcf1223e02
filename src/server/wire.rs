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
//! wins (so does the last entry of a repeated map key and the last member of a oneof), unknown
//! fields are skipped, and an unset `FieldValue` is missing. The tests check this reader against
//! prost on the same messages.

use crate::encoder::RawValue;

/// Why a request's bytes could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("malformed request: {0}")]
pub struct WireError(pub &'static str);

type Result<T> = std::result::Result<T, WireError>;

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LENGTH_DELIMITED: u8 = 2;
const FIXED32: u8 = 5;

/// A cursor over one message's bytes.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for (i, &byte) in self.buf.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        Err(WireError("bad varint"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(WireError("truncated message"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// The next field's number and wire type, or `None` at the end of the message.
    fn key(&mut self) -> Result<Option<(u64, u8)>> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let (field, wire_type) = (key >> 3, (key & 7) as u8);
        if field == 0 {
            return Err(WireError("field number 0"));
        }
        Ok(Some((field, wire_type)))
    }

    fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = self.varint()?;
        self.take(usize::try_from(len).map_err(|_| WireError("length too large"))?)
    }

    fn string(&mut self) -> Result<&'a str> {
        std::str::from_utf8(self.bytes()?).map_err(|_| WireError("string is not valid UTF-8"))
    }

    fn skip(&mut self, wire_type: u8) -> Result<()> {
        match wire_type {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            LENGTH_DELIMITED => self.bytes().map(drop),
            FIXED32 => self.take(4).map(drop),
            _ => Err(WireError("unsupported wire type")),
        }
    }

    /// Reads a field of the expected wire type, or fails.
    fn expect(&self, wire_type: u8, expected: u8) -> Result<()> {
        if wire_type == expected {
            Ok(())
        } else {
            Err(WireError("field has the wrong wire type"))
        }
    }
}

/// A `ScoreLeadRequest`: the encoded lead (if set) and the number of factors asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreLeadRequest<'a> {
    pub lead: Option<&'a [u8]>,
    pub explain: u32,
}

/// A `ScoreLeadsRequest`: the encoded leads in order and the number of factors asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreLeadsRequest<'a> {
    pub leads: Vec<&'a [u8]>,
    pub explain: u32,
}

pub fn score_lead_request(buf: &[u8]) -> Result<ScoreLeadRequest<'_>> {
    let mut reader = Reader::new(buf);
    let mut request = ScoreLeadRequest {
        lead: None,
        explain: 0,
    };
    while let Some((field, wire_type)) = reader.key()? {
        match field {
            1 => {
                reader.expect(wire_type, LENGTH_DELIMITED)?;
                // A message field sent twice is merged by protobuf; leads are sent once, and
                // the last one is taken (the lead id and every field would be overwritten by a
                // merge anyway, except fields absent from the last copy).
                request.lead = Some(reader.bytes()?);
            }
            2 => {
                reader.expect(wire_type, VARINT)?;
                request.explain = reader.varint()? as u32;
            }
            _ => reader.skip(wire_type)?,
        }
    }
    Ok(request)
}

pub fn score_leads_request(buf: &[u8]) -> Result<ScoreLeadsRequest<'_>> {
    let mut reader = Reader::new(buf);
    let mut request = ScoreLeadsRequest {
        leads: Vec::new(),
        explain: 0,
    };
    while let Some((field, wire_type)) = reader.key()? {
        match field {
            1 => {
                reader.expect(wire_type, LENGTH_DELIMITED)?;
                request.leads.push(reader.bytes()?);
            }
            2 => {
                reader.expect(wire_type, VARINT)?;
                request.explain = reader.varint()? as u32;
            }
            _ => reader.skip(wire_type)?,
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
    buf: &'a [u8],
    mut field: impl FnMut(&'a [u8], &'a [u8]) -> Result<()>,
) -> Result<&'a str> {
    let mut reader = Reader::new(buf);
    let mut lead_id = "";
    while let Some((number, wire_type)) = reader.key()? {
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
            _ => reader.skip(wire_type)?,
        }
    }
    Ok(lead_id)
}

/// A map entry's key and encoded value.
fn map_entry(buf: &[u8]) -> Result<(&[u8], &[u8])> {
    let mut reader = Reader::new(buf);
    let (mut name, mut value): (&[u8], &[u8]) = (&[], &[]);
    while let Some((number, wire_type)) = reader.key()? {
        match number {
            1 => {
                reader.expect(wire_type, LENGTH_DELIMITED)?;
                name = reader.bytes()?;
            }
            2 => {
                reader.expect(wire_type, LENGTH_DELIMITED)?;
                value = reader.bytes()?;
            }
            _ => reader.skip(wire_type)?,
        }
    }
    Ok((name, value))
}

/// A field name the caller does not know, as text.
pub fn name(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes).map_err(|_| WireError("field name is not valid UTF-8"))
}

/// Decodes an encoded `FieldValue`; unset (or empty) is missing.
pub fn field_value(buf: &[u8]) -> Result<RawValue<'_>> {
    let mut reader = Reader::new(buf);
    let mut value = RawValue::Missing;
    while let Some((number, wire_type)) = reader.key()? {
        match number {
            1 => {
                reader.expect(wire_type, FIXED64)?;
                let bytes: [u8; 8] = reader.take(8)?.try_into().expect("took 8 bytes");
                value = RawValue::Number(f64::from_le_bytes(bytes));
            }
            2 => {
                reader.expect(wire_type, LENGTH_DELIMITED)?;
                value = RawValue::Text(reader.string()?);
            }
            3 => {
                reader.expect(wire_type, VARINT)?;
                value = RawValue::Flag(reader.varint()? != 0);
            }
            _ => reader.skip(wire_type)?,
        }
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb;
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

    fn read_lead(bytes: &[u8]) -> (String, Vec<(String, String)>) {
        let mut fields = Vec::new();
        let id = lead(bytes, |name_bytes, value| {
            fields.push((
                name(name_bytes)?.to_string(),
                format!("{:?}", field_value(value)?),
            ));
            Ok(())
        })
        .unwrap();
        fields.sort();
        (id.to_string(), fields)
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
        let parsed = score_leads_request(&bytes).unwrap();
        assert_eq!(parsed.explain, 7);
        assert_eq!(parsed.leads.len(), 3);
        assert_eq!(read_lead(parsed.leads[2]), prost_lead(&lead));
        assert_eq!(read_lead(parsed.leads[1]), (String::new(), vec![]));

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
            let _ = score_leads_request(&good[..end]).map(|r| {
                for l in r.leads {
                    let _ = lead(l, |n, v| name(n).and(field_value(v)).map(drop));
                }
            });
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0xff;
            let _ = score_leads_request(&bad).map(|r| {
                for l in r.leads {
                    let _ = lead(l, |n, v| name(n).and(field_value(v)).map(drop));
                }
            });
        }
        assert!(score_lead_request(&[0x0a, 0x05, 1]).is_err());
        assert!(score_lead_request(&[0xff; 11]).is_err());
        assert!(lead(&[0x0a, 0x01, 0xff], |_, _| Ok(())).is_err());
        // A text value that is not UTF-8, in a field that is read.
        let bad_text = [0x12, 0x08, 0x0a, 0x01, b'x', 0x12, 0x03, 0x12, 0x01, 0xff];
        assert!(lead(&bad_text, |_, v| field_value(v).map(drop)).is_err());
        // Field 1 of ScoreLeadRequest sent as a varint.
        assert!(score_lead_request(&[0x08, 0x01]).is_err());
    }
}
