//! Reads score requests straight from their protobuf bytes.
//!
//! prost would decode a lead's `fields` into a `HashMap<String, FieldValue>`: two allocations
//! and a hash insert per field, which costs more than scoring the lead. This reader instead walks
//! the wire format once and hands each field to the caller as borrowed `(&str, RawValue)`, so
//! the service can drop each value into its attribute's slot without allocating.
//!
//! # What is read
//!
//! The fields decoded are the table below ([`FIELDS`]: message, field, number, declared type),
//! from `proto/leadscore/v1/leadscore.proto`; the reader matches on its numbers and wire types.
//! A test (`the_field_table_matches_the_proto`) walks the descriptor set compiled from the proto
//! and fails, naming the difference, when a field of these messages is renumbered, retyped,
//! added or removed, so the reader cannot silently drift from the contract:
//! - `ScoreLeadRequest { Lead lead = 1; uint32 explain = 2; }`
//! - `ScoreLeadsRequest { repeated Lead leads = 1; uint32 explain = 2; }`
//! - `Lead { string lead_id = 1; map<string, FieldValue> fields = 2; }` (a map entry is a
//!   message `{ string key = 1; FieldValue value = 2; }`)
//! - `FieldValue { oneof kind { double number = 1; string text = 2; bool flag = 3; } }`
//!
//! Protobuf rules kept: fields may come in any order, a repeated scalar field's last occurrence
//! wins (so does the last entry of a repeated map key and the last member of a oneof), a message
//! field sent more than once is merged (a `lead`, or a map entry's `FieldValue`: see
//! [`Embedded`]), and an unset `FieldValue` is missing.
//!
//! # What is checked, and what is not
//!
//! Checked, as prost checks it: the framing of every field of every message read (varints of at
//! most 64 bits, keys at most `u32::MAX`, no field number 0, no wire type 6 or 7, lengths within
//! the message, groups ended by their own number), nesting up to prost's recursion limit, the
//! wire type of every field in the table, and UTF-8 of the `lead_id`, of every map key (each
//! key of an entry that repeats it; the last one by the caller, through [`name`] or by matching
//! a known name) and of the `text` of every value that is decoded.
//!
//! Not checked: fields whose numbers are not in the table (unknown fields, groups included) are
//! skipped over by their framing, their values unread, as prost skips them too. Unlike prost,
//! the service decodes a map entry's `FieldValue` ([`field_value`]) only for the fields the model
//! uses, so the value of an unused field is skipped by its length alone: a `text` that is not
//! UTF-8 or a malformed `FieldValue` there is accepted, where prost would refuse the request.
//! The leads of a `ScoreLeadsRequest` are read when each is scored, so a malformed lead fails
//! the call at that lead. The tests and the `score_request` fuzz target check this reader
//! against prost on the same messages, canonical and not, with every value decoded.

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

/// A field of a request message as the reader expects it. The reader takes each field's number
/// and wire type from these constants, and a test checks them against the proto's descriptors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Full name of the message it belongs to, e.g. `leadscore.v1.Lead`.
    pub message: &'static str,
    /// Its name in the proto.
    pub name: &'static str,
    pub number: u64,
    /// How it is declared, which fixes how it is encoded.
    pub kind: Kind,
    /// The `oneof` it belongs to, if any: the last member sent wins.
    pub oneof: Option<&'static str>,
}

/// How a field is declared (`descriptor.proto`'s type and label), as far as the reader cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A singular message of this type (full name); occurrences are merged.
    Message(&'static str),
    /// `repeated` messages of this type (full name), read in order.
    RepeatedMessage(&'static str),
    /// A `map`, whose entries are messages of this type (full name).
    Map(&'static str),
    /// `string`: UTF-8, length-delimited.
    String,
    /// `uint32`: a varint, truncated to 32 bits as prost does.
    Uint32,
    /// `double`: eight little-endian bytes.
    Double,
    /// `bool`: a varint, true unless 0.
    Bool,
}

impl Kind {
    /// The wire type fields of this kind are sent with.
    pub const fn wire_type(self) -> u8 {
        match self {
            Kind::Message(_) | Kind::RepeatedMessage(_) | Kind::Map(_) | Kind::String => {
                LENGTH_DELIMITED
            }
            Kind::Uint32 | Kind::Bool => VARINT,
            Kind::Double => FIXED64,
        }
    }
}

const SCORE_LEAD_REQUEST: &str = "leadscore.v1.ScoreLeadRequest";
const SCORE_LEADS_REQUEST: &str = "leadscore.v1.ScoreLeadsRequest";
const LEAD: &str = "leadscore.v1.Lead";
const FIELDS_ENTRY: &str = "leadscore.v1.Lead.FieldsEntry";
const FIELD_VALUE: &str = "leadscore.v1.FieldValue";

const fn field(message: &'static str, name: &'static str, number: u64, kind: Kind) -> Field {
    Field {
        message,
        name,
        number,
        kind,
        oneof: None,
    }
}

const fn in_oneof(field: Field, oneof: &'static str) -> Field {
    Field {
        oneof: Some(oneof),
        ..field
    }
}

pub const REQUEST_LEAD: Field = field(SCORE_LEAD_REQUEST, "lead", 1, Kind::Message(LEAD));
pub const REQUEST_EXPLAIN: Field = field(SCORE_LEAD_REQUEST, "explain", 2, Kind::Uint32);
pub const BATCH_LEADS: Field = field(SCORE_LEADS_REQUEST, "leads", 1, Kind::RepeatedMessage(LEAD));
pub const BATCH_EXPLAIN: Field = field(SCORE_LEADS_REQUEST, "explain", 2, Kind::Uint32);
pub const LEAD_ID: Field = field(LEAD, "lead_id", 1, Kind::String);
pub const LEAD_FIELDS: Field = field(LEAD, "fields", 2, Kind::Map(FIELDS_ENTRY));
pub const ENTRY_KEY: Field = field(FIELDS_ENTRY, "key", 1, Kind::String);
pub const ENTRY_VALUE: Field = field(FIELDS_ENTRY, "value", 2, Kind::Message(FIELD_VALUE));
pub const VALUE_NUMBER: Field = in_oneof(field(FIELD_VALUE, "number", 1, Kind::Double), "kind");
pub const VALUE_TEXT: Field = in_oneof(field(FIELD_VALUE, "text", 2, Kind::String), "kind");
pub const VALUE_FLAG: Field = in_oneof(field(FIELD_VALUE, "flag", 3, Kind::Bool), "kind");

/// Every field the reader decodes.
pub const FIELDS: [Field; 11] = [
    REQUEST_LEAD,
    REQUEST_EXPLAIN,
    BATCH_LEADS,
    BATCH_EXPLAIN,
    LEAD_ID,
    LEAD_FIELDS,
    ENTRY_KEY,
    ENTRY_VALUE,
    VALUE_NUMBER,
    VALUE_TEXT,
    VALUE_FLAG,
];

/// Fields of the messages in [`FIELDS`] that the reader skips on purpose, as
/// `message.field` (e.g. `leadscore.v1.Lead.owner`): none. A field added to one of these
/// messages in the proto must be read, or listed here, or the descriptor test fails.
pub const SKIPPED: [&str; 0] = [];

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

    /// Fails unless a field sent with `wire_type` is sent as `field` is declared.
    #[inline]
    fn expect(&self, wire_type: u8, field: Field) -> Result<()> {
        if wire_type == field.kind.wire_type() {
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
            n if n == REQUEST_LEAD.number => {
                reader.expect(wire_type, REQUEST_LEAD)?;
                let bytes = reader.bytes()?;
                request.lead = Some(Embedded::and(request.lead, bytes, buf, n));
            }
            n if n == REQUEST_EXPLAIN.number => {
                reader.expect(wire_type, REQUEST_EXPLAIN)?;
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
            n if n == BATCH_LEADS.number => {
                reader.expect(wire_type, BATCH_LEADS)?;
                if request.leads.len() == max_leads {
                    return Err(BatchError::TooManyLeads { max: max_leads });
                }
                request.leads.push(reader.bytes()?);
            }
            n if n == BATCH_EXPLAIN.number => {
                reader.expect(wire_type, BATCH_EXPLAIN)?;
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
            n if n == LEAD_ID.number => {
                reader.expect(wire_type, LEAD_ID)?;
                lead_id = reader.string()?;
            }
            n if n == LEAD_FIELDS.number => {
                reader.expect(wire_type, LEAD_FIELDS)?;
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
            n if n == ENTRY_KEY.number => {
                reader.expect(wire_type, ENTRY_KEY)?;
                // The last key wins, but prost checks every one it reads: so must this reader
                // (the last is checked by whoever uses it; a repeated key is rare).
                if let Some(earlier) = name {
                    self::name(earlier)?;
                }
                name = Some(reader.bytes()?);
            }
            n if n == ENTRY_VALUE.number => {
                reader.expect(wire_type, ENTRY_VALUE)?;
                let bytes = reader.bytes()?;
                value = Some(Embedded::and(value, bytes, buf, n));
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
            n if n == VALUE_NUMBER.number => {
                reader.expect(wire_type, VALUE_NUMBER)?;
                let bytes: [u8; 8] = reader.take(8)?.try_into().expect("took 8 bytes");
                raw = RawValue::Number(f64::from_le_bytes(bytes));
            }
            n if n == VALUE_TEXT.number => {
                reader.expect(wire_type, VALUE_TEXT)?;
                raw = RawValue::Text(reader.string()?);
            }
            n if n == VALUE_FLAG.number => {
                reader.expect(wire_type, VALUE_FLAG)?;
                raw = RawValue::Flag(reader.varint()? != 0);
            }
            _ => reader.skip(number, wire_type)?,
        }
        Ok(())
    })?;
    Ok(raw)
}

#[cfg(test)]
mod tests;
