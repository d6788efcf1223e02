//! The wire reader against prost, and its field table against the proto's descriptors.

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

/// How the proto declares `field` (its type, `repeated`, a map), and the oneof it is in.
fn declared(
    message: &prost_types::DescriptorProto,
    field: &prost_types::FieldDescriptorProto,
    messages: &Messages,
) -> (String, Option<String>) {
    use prost_types::field_descriptor_proto::{Label, Type};
    let type_name = field.type_name().trim_start_matches('.');
    let map_entry = messages
        .get(type_name)
        .and_then(|m| m.options.as_ref())
        .is_some_and(|o| o.map_entry());
    let kind = match field.r#type() {
        Type::Message if map_entry => format!("map (entries {type_name})"),
        Type::Message => format!("message {type_name}"),
        other => other
            .as_str_name()
            .trim_start_matches("TYPE_")
            .to_lowercase(),
    };
    let kind = if field.label() == Label::Repeated && !map_entry {
        format!("repeated {kind}")
    } else {
        kind
    };
    let oneof = field
        .oneof_index
        .filter(|_| !field.proto3_optional())
        .and_then(|i| message.oneof_decl.get(i as usize))
        .map(|oneof| oneof.name().to_string());
    (kind, oneof)
}

/// A table entry's kind in the words of [`declared`].
fn described(kind: Kind) -> String {
    match kind {
        Kind::Message(t) => format!("message {t}"),
        Kind::RepeatedMessage(t) => format!("repeated message {t}"),
        Kind::Map(t) => format!("map (entries {t})"),
        Kind::String => "string".into(),
        Kind::Uint32 => "uint32".into(),
        Kind::Double => "double".into(),
        Kind::Bool => "bool".into(),
    }
}

type Messages = std::collections::BTreeMap<String, prost_types::DescriptorProto>;

/// Every message of the descriptor set compiled from the proto, by full name (without the
/// leading dot), nested ones included.
fn proto_messages() -> Messages {
    fn collect(prefix: &str, message: &prost_types::DescriptorProto, into: &mut Messages) {
        let name = format!("{prefix}.{}", message.name());
        for nested in &message.nested_type {
            collect(&name, nested, into);
        }
        into.insert(name, message.clone());
    }
    let set = prost_types::FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET).unwrap();
    let mut messages = Messages::new();
    for file in &set.file {
        for message in &file.message_type {
            collect(file.package(), message, &mut messages);
        }
    }
    messages
}

/// Each field of [`FIELDS`] that the proto lacks or declares otherwise.
fn misread_fields(messages: &Messages) -> Vec<String> {
    let mut differences = Vec::new();
    for expected in FIELDS {
        let at = format!("{}.{}", expected.message, expected.name);
        let Some(message) = messages.get(expected.message) else {
            differences.push(format!(
                "{at}: the proto has no message {}",
                expected.message
            ));
            continue;
        };
        let Some(field) = message.field.iter().find(|f| f.name() == expected.name) else {
            differences.push(format!(
                "{at}: read as field {}, not in the proto",
                expected.number
            ));
            continue;
        };
        if u64::from(field.number().unsigned_abs()) != expected.number {
            differences.push(format!(
                "{at}: read as field {}, the proto numbers it {}",
                expected.number,
                field.number()
            ));
        }
        let (kind, oneof) = declared(message, field, messages);
        if kind != described(expected.kind) {
            differences.push(format!(
                "{at}: read as {}, the proto declares {kind}",
                described(expected.kind)
            ));
        }
        if oneof.as_deref() != expected.oneof {
            differences.push(format!(
                "{at}: read as in oneof {:?}, the proto has it in {oneof:?}",
                expected.oneof
            ));
        }
    }
    differences
}

/// Each field of the messages read that is neither in [`FIELDS`] nor in [`SKIPPED`], and
/// each entry of [`SKIPPED`] that the proto lacks.
fn unread_fields(messages: &Messages) -> Vec<String> {
    let mut differences = Vec::new();
    let read: std::collections::BTreeSet<&str> = FIELDS.iter().map(|f| f.message).collect();
    for name in read {
        let Some(message) = messages.get(name) else {
            continue; // reported by `misread_fields`
        };
        for field in &message.field {
            let at = format!("{name}.{}", field.name());
            let known = FIELDS
                .iter()
                .any(|f| f.message == name && f.name == field.name());
            if !known && !SKIPPED.contains(&at.as_str()) {
                differences.push(format!(
                    "{at} = {} ({}): in the proto, but the reader neither reads it nor lists \
                     it in SKIPPED",
                    field.number(),
                    declared(message, field, messages).0
                ));
            }
        }
    }
    for skipped in SKIPPED {
        let (message, field) = skipped.rsplit_once('.').unwrap();
        let exists = messages
            .get(message)
            .is_some_and(|m| m.field.iter().any(|f| f.name() == field));
        if !exists {
            differences.push(format!("{skipped}: listed in SKIPPED, not in the proto"));
        }
    }
    differences
}

/// The field table the reader uses against the descriptor set compiled from the proto, both
/// ways: every field read exists with that number, type and oneof; every field of those
/// messages is read or listed in [`SKIPPED`]. A failure names each difference.
#[test]
fn the_field_table_matches_the_proto() {
    let messages = proto_messages();
    let differences = [misread_fields(&messages), unread_fields(&messages)].concat();
    assert!(
        differences.is_empty(),
        "the wire reader's field table (src/server/wire.rs) and \
         proto/leadscore/v1/leadscore.proto disagree:\n  {}",
        differences.join("\n  ")
    );
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
