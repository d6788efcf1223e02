//! gRPC request bytes → the server's protobuf reader (`server::wire`) → features → response,
//! scored with the model shipped in `models/`, and checked against prost.
//!
//! Every input is read both as a `ScoreLeadRequest` and as a `ScoreLeadsRequest` (the two share
//! their wire layout), through the functions the service itself calls. Checked:
//! - no panic, and every response keeps the proto's promises (probability in (0, 1), score
//!   1..=99, percentile 0..=100, at most `explain` factors each way);
//! - the wire reader, made to read every name and value (the server reads only those it uses,
//!   so it may accept a request whose unused values prost would refuse), accepts exactly what
//!   `prost::Message::decode` of the generated type accepts and reads the same explain, lead
//!   ids and fields (a later map entry replacing an earlier one, merged repeated messages);
//! - when prost accepts, the server's answer is the model's score of prost's decoding of the
//!   lead, bit for bit, or an error exactly when that scoring fails, the lead id is too long,
//!   two keys denote one field or no key denotes any (the name rule, `leadscore::names`).

#![no_main]

use leadscore::encoder::RawValue;
use leadscore::model::{Model, Scored};
use leadscore::server::pb;
use leadscore::server::holder::Served;
use leadscore::server::service::{MAX_LEAD_ID_BYTES, score_lead_with, score_leads_with};
use leadscore::server::wire::{self, BatchError, Embedded, WireError};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// The model `leadscore serve` serves on a fresh clone (update the path when it is replaced).
static SERVED: LazyLock<Served> = LazyLock::new(|| {
    let json = include_str!("../../models/20261123-113146-584053/model.json");
    Served::new(Model::from_json(json).expect("the shipped model loads"))
});

/// `--max-batch` for the batch reading: small, so the limit is reached often.
const MAX_BATCH: usize = 16;

fuzz_target!(|bytes: &[u8]| {
    check_score_lead(bytes);
    check_score_leads(bytes);
});

/// A field value, owned and comparable (numbers by their bits, so NaN and -0.0 compare too).
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Missing,
    Text(String),
    Number(u64),
    Flag(bool),
}

impl From<RawValue<'_>> for Value {
    fn from(raw: RawValue<'_>) -> Value {
        match raw {
            RawValue::Missing => Value::Missing,
            RawValue::Text(t) => Value::Text(t.to_string()),
            RawValue::Number(x) => Value::Number(x.to_bits()),
            RawValue::Flag(b) => Value::Flag(b),
        }
    }
}

fn raw(value: &pb::FieldValue) -> RawValue<'_> {
    use pb::field_value::Kind;
    match &value.kind {
        None => RawValue::Missing,
        Some(Kind::Number(x)) => RawValue::Number(*x),
        Some(Kind::Text(t)) => RawValue::Text(t),
        Some(Kind::Flag(b)) => RawValue::Flag(*b),
    }
}

/// A lead as read: its id and its fields, the last entry of each name.
#[derive(Debug, PartialEq)]
struct Lead {
    id: String,
    fields: BTreeMap<String, Value>,
}

/// Reads every entry of an encoded lead with the wire reader, names and values included.
fn read_all(lead: Embedded<'_>) -> Result<Lead, WireError> {
    let mut fields = BTreeMap::new();
    let id = wire::lead(lead, |name, value| {
        let name = wire::name(name)?.to_string();
        fields.insert(name, Value::from(wire::field_value(value)?));
        Ok(())
    })?;
    Ok(Lead {
        id: id.to_string(),
        fields,
    })
}

fn from_prost(lead: &pb::Lead) -> Lead {
    Lead {
        id: lead.lead_id.clone(),
        fields: lead
            .fields
            .iter()
            .map(|(name, value)| (name.clone(), Value::from(raw(value))))
            .collect(),
    }
}

/// What the server must answer for a lead prost decoded: `None` for an error. Keys are matched
/// to the model's fields by the one name rule (`leadscore::names`): two keys denoting one field,
/// or no key denoting any, is an error.
fn expected(lead: &pb::Lead, explain: u32) -> Option<Scored> {
    if lead.lead_id.len() > MAX_LEAD_ID_BYTES {
        return None;
    }
    let model = &SERVED.model;
    let attributes = &model.encoder().attributes;
    let mut values = vec![None; attributes.len()];
    for (key, value) in &lead.fields {
        if let Some(i) = model.fields().get(key.as_bytes()) {
            if values[i].is_some() {
                return None;
            }
            values[i] = Some(raw(value));
        }
    }
    if values.iter().all(Option::is_none) {
        return None;
    }
    let explain = (explain as usize).min(attributes.len());
    model
        .score(|i| values[i].unwrap_or(RawValue::Missing), explain)
        .ok()
}

/// The proto's promises about one result.
fn check_response(response: &pb::ScoreLeadResponse, explain: u32) {
    let p = response.probability;
    assert!(p > 0.0 && p < 1.0, "probability {p}");
    assert!(
        (1..=99).contains(&response.score),
        "score {}",
        response.score
    );
    assert!(
        (0.0..=100.0).contains(&response.percentile),
        "percentile {}",
        response.percentile
    );
    assert!(response.factors.len() <= 2 * explain as usize);
    assert!(response.lead_id.len() <= MAX_LEAD_ID_BYTES);
    assert_eq!(response.model_version, SERVED.version());
}

/// The server's answer against the model's score of prost's decoding.
fn check_same(served: &pb::ScoreLeadResponse, expected: &Scored) {
    assert_eq!(
        served.probability.to_bits(),
        expected.probability.to_bits(),
        "{served:?} vs {expected:?}"
    );
    assert_eq!(served.score, expected.score);
    assert_eq!(served.percentile.to_bits(), expected.percentile.to_bits());
    assert_eq!(served.grade, expected.grade);
    let served_factors: Vec<_> = (served.factors.iter())
        .map(|f| (&f.field, f.log_odds.to_bits()))
        .collect();
    let expected_factors: Vec<_> = (expected.factors.iter())
        .map(|f| (&f.field, f.log_odds.to_bits()))
        .collect();
    assert_eq!(served_factors, expected_factors);
    // The model's warnings come last, after the server's own.
    assert!(served.warnings.ends_with(&expected.warnings), "{served:?}");
}

fn check_score_lead(bytes: &[u8]) {
    let ours = wire::score_lead_request(bytes);
    let prost = pb::ScoreLeadRequest::decode(bytes);

    // What `ScoreLead` answers (a request without a lead is refused before scoring).
    let served = ours
        .as_ref()
        .ok()
        .and_then(|r| r.lead.map(|lead| score_lead_with(&SERVED, lead, r.explain)));
    if let (Some(Ok(response)), Ok(request)) = (&served, &ours) {
        check_response(response, request.explain);
    }

    let eager = ours.and_then(|r| Ok((r.explain, r.lead.map(read_all).transpose()?)));
    match (&eager, &prost) {
        (Ok((explain, lead)), Ok(decoded)) => {
            assert_eq!(*explain, decoded.explain);
            assert_eq!(lead, &decoded.lead.as_ref().map(from_prost));
            if let (Some(served), Some(lead)) = (&served, &decoded.lead) {
                match (served, expected(lead, decoded.explain)) {
                    (Ok(served), Some(expected)) => check_same(served, &expected),
                    (Err(_), None) => {}
                    (served, expected) => {
                        panic!("server answered {served:?}, prost's lead scores {expected:?}")
                    }
                }
            }
        }
        (Err(_), Err(_)) => {}
        _ => panic!("ScoreLeadRequest: wire reader {eager:?}, prost {prost:?}"),
    }
}

fn check_score_leads(bytes: &[u8]) {
    let prost = pb::ScoreLeadsRequest::decode(bytes);
    let ours = match wire::score_leads_request(bytes, MAX_BATCH) {
        Err(BatchError::TooManyLeads { max }) => {
            // Refused at the first lead too many, before the rest is read: prost, reading
            // everything, either fails later or finds more than `max` leads.
            if let Ok(decoded) = &prost {
                assert!(decoded.leads.len() > max);
            }
            return;
        }
        Err(BatchError::Wire(error)) => Err(error),
        Ok(request) => Ok(request),
    };

    let served = ours
        .as_ref()
        .ok()
        .map(|r| score_leads_with(&SERVED, &r.leads, r.explain));
    if let (Some(Ok(results)), Ok(request)) = (&served, &ours) {
        assert_eq!(results.len(), request.leads.len());
        for response in results {
            check_response(response, request.explain);
        }
    }

    let eager = ours.and_then(|r| {
        let leads = r
            .leads
            .iter()
            .map(|&lead| read_all(Embedded::Once(lead)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((r.explain, leads))
    });
    match (&eager, &prost) {
        (Ok((explain, leads)), Ok(decoded)) => {
            assert_eq!(*explain, decoded.explain);
            assert_eq!(
                leads,
                &decoded.leads.iter().map(from_prost).collect::<Vec<_>>()
            );
            let expected: Option<Vec<Scored>> = decoded
                .leads
                .iter()
                .map(|lead| expected(lead, decoded.explain))
                .collect();
            match (served.expect("read"), expected) {
                (Ok(served), Some(expected)) => {
                    for (served, expected) in served.iter().zip(&expected) {
                        check_same(served, expected);
                    }
                }
                (Err(_), None) => {}
                (served, expected) => {
                    panic!("server answered {served:?}, prost's leads score {expected:?}")
                }
            }
        }
        (Err(_), Err(_)) => {}
        _ => panic!("ScoreLeadsRequest: wire reader {eager:?}, prost {prost:?}"),
    }
}
