//! Writes the committed seed inputs of the fuzz targets to `seeds/<target>/`.
//!
//! Run from `fuzz/`: `cargo run --example make_seeds` (stable is enough). It overwrites the
//! seeds it makes and leaves other files (crash inputs kept as regressions) alone, and writes the
//! same bytes on every run. The requests are encoded by prost from the generated types (map
//! entries in name order); the models are the one shipped in `models/` and variants of it.

use leadscore::model::ModelArtifact;
use leadscore::server::pb;
use prost::Message;
use std::path::Path;

fn main() -> std::io::Result<()> {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    for (target, files) in [
        ("csv_schema", csv_seeds()),
        ("score_request", request_seeds()),
        ("model_artifact", model_seeds()),
    ] {
        let dir = seeds.join(target);
        std::fs::create_dir_all(&dir)?;
        for (name, bytes) in &files {
            std::fs::write(dir.join(name), bytes)?;
        }
        println!("{target}: {} seeds in {}", files.len(), dir.display());
    }
    Ok(())
}

type Seeds = Vec<(&'static str, Vec<u8>)>;

fn csv_seeds() -> Seeds {
    let mut seeds: Seeds = vec![
        (
            "crm_export.csv",
            "lead_id,source,employees,demo_requested,created_at,converted\n\
             L1,Web,120,yes,2024-03-01,1\n\
             L2,referral,NA,no,2024-03-02 10:20:00,0\n\
             L3,Cold Call,4500,,2024-03-03T09:00:00Z,Closed Won\n\
             L4,  web  ,n/a,Yes,03/04/2024,engaging\n\
             L5,Partner,12.5,NO,2024/03/05,not converted\n\
             L6,null,1e3,true,05.03.2024,\n"
                .into(),
        ),
        (
            "bom_semicolon.csv",
            "\u{feff}Prospect ID;Lead Source;Total Visits;Converted\n\
             a1;\"Google; Ads\";3;1\n\
             a2;Direct Traffic;0;0\n\
             a3;Select;NaN;0\n"
                .into(),
        ),
        (
            "quoted_multiline.csv",
            "id,notes,stage\r\n\
             1,\"called, left a message\",Open\r\n\
             2,\"said \"\"call me in Q3\"\"\nthen hung up\",Closed Lost\r\n\
             \r\n\
             3,\"\",won\r\n"
                .into(),
        ),
        ("ragged.csv", "a,b,c\n1,2,3\n4,5\n".into()),
        ("header_only.csv", "lead_id,converted\n".into()),
        ("duplicate_header.csv", "id,x,x\n1,2,3\n".into()),
        ("not_utf8.csv", b"id,name\n1,M\xfcller\n".to_vec()),
        (
            "dates_and_outcomes.csv",
            "closed_at,outcome,amount\n\
             2024-13-01,Closed-Won,-3.5\n\
             3/5/24,in progress,inf\n\
             1/5/2024 10:00,Signed,12O\n\
             0999-01-01,qualified,7\n"
                .into(),
        ),
    ];
    // Enough rows for the id and free-text kinds (50 or more present values).
    let mut wide = String::from("Lead Number,Notes,Score,Region\n");
    for i in 0..60 {
        wide.push_str(&format!(
            "{},called back on day {i},{}.5,{}\n",
            660_000 + i,
            i % 7,
            ["EMEA", "apac", "Latam", ""][i % 4]
        ));
    }
    seeds.push(("ids_and_text.csv", wide.into_bytes()));
    seeds
}

fn value(kind: pb::field_value::Kind) -> pb::FieldValue {
    pb::FieldValue { kind: Some(kind) }
}

/// A lead with every field the shipped model uses.
fn full_lead(id: &str) -> pb::Lead {
    use pb::field_value::Kind::{Flag, Number, Text};
    let fields = [
        ("source", value(Text("Referral".into()))),
        ("industry", value(Text("software".into()))),
        ("region", value(Text("EMEA".into()))),
        ("company_size", value(Text("large".into()))),
        ("rep", value(Text("Hana  Sato".into()))),
        ("employees", value(Number(250.0))),
        ("web_visits", value(Text("12".into()))),
        ("emails_opened", value(Number(3.0))),
        ("days_since_last_touch", value(Number(-1e300))),
        ("demo_requested", value(Flag(true))),
    ];
    pb::Lead {
        lead_id: id.into(),
        fields: fields
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect(),
    }
}

fn request_seeds() -> Seeds {
    use pb::field_value::Kind::{Flag, Number, Text};
    let mut sparse = pb::Lead {
        lead_id: "L0000042".into(),
        ..Default::default()
    };
    for (name, v) in [
        ("source", value(Text("tradeshow".into()))),
        ("crm_owner", value(Text("ünïcode".into()))),
        ("region", pb::FieldValue { kind: None }),
        ("demo_requested", value(Number(1.0))),
        ("employees", value(Text(" NA ".into()))),
    ] {
        sparse.fields.insert(name.into(), v);
    }
    let mut bad_number = full_lead("bad-number");
    bad_number
        .fields
        .insert("web_visits".into(), value(Text("twelve".into())));
    let mut bad_flag = full_lead("bad-flag");
    bad_flag
        .fields
        .insert("demo_requested".into(), value(Number(2.0)));
    let mut nan = full_lead("nan");
    nan.fields
        .insert("employees".into(), value(Number(f64::NAN)));
    let mut category_flag = full_lead("category-flag");
    category_flag
        .fields
        .insert("source".into(), value(Flag(false)));

    // The lead sent twice: prost merges the two copies.
    let mut merged = score_lead_request(full_lead("first"), 2);
    merged.extend(score_lead_request(sparse.clone(), 0));
    // Unknown fields of every wire type, a group among them, then explain again.
    let mut unknown = score_lead_request(sparse.clone(), 1);
    unknown.extend([9 << 3, 150, 1]);
    unknown.extend([(9 << 3) | 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    unknown.extend([(9 << 3) | 2, 2, b'h', b'i']);
    unknown.extend([(9 << 3) | 5, 0, 0, 0, 0]);
    unknown.extend([0x4b, 0x08, 0x01, 0x53, 0x54, 0x4c]);
    unknown.extend([2 << 3, 4]);

    // A field value holding an unknown group nested 98 deep: the wire reader allows 100 levels
    // inside each message, prost 100 in all (the request, lead, map entry and value use 3).
    let deep_value = [vec![0x4b; 98], vec![0x4c; 98]].concat();
    let entry = [b"\x0a\x01x".to_vec(), frame(2, &deep_value)].concat();
    let deep = frame(1, &frame(2, &entry));

    vec![
        (
            "score_lead_full.bin",
            score_lead_request(full_lead("L0000001"), 3),
        ),
        (
            "score_lead_sparse.bin",
            score_lead_request(sparse.clone(), 0),
        ),
        (
            "score_lead_bad_number.bin",
            score_lead_request(bad_number, 1),
        ),
        ("score_lead_bad_flag.bin", score_lead_request(bad_flag, 1)),
        ("score_lead_nan.bin", score_lead_request(nan, 1)),
        (
            "score_lead_category_flag.bin",
            score_lead_request(category_flag, 10),
        ),
        (
            "score_lead_long_id.bin",
            score_lead_request(full_lead(&"x".repeat(300)), 1),
        ),
        ("score_lead_merged.bin", merged),
        ("score_lead_unknown_fields.bin", unknown),
        ("score_lead_deep_group_in_value.bin", deep),
        (
            "score_lead_no_lead.bin",
            pb::ScoreLeadRequest {
                lead: None,
                explain: 5,
            }
            .encode_to_vec(),
        ),
        (
            "score_leads_batch.bin",
            score_leads_request(&[full_lead("a"), pb::Lead::default(), sparse], 2),
        ),
        (
            "score_leads_over_limit.bin",
            score_leads_request(&vec![pb::Lead::default(); 17], 0),
        ),
    ]
}

/// A length-delimited field: key, length, bytes.
fn frame(field: u8, body: &[u8]) -> Vec<u8> {
    let mut message = vec![field << 3 | 2];
    prost::encoding::encode_varint(body.len() as u64, &mut message);
    message.extend(body);
    message
}

/// A lead as prost encodes it, with the map entries in name order: prost writes a `HashMap` in
/// its (per-process random) iteration order. Each entry is encoded as a lead of its own, and
/// concatenated encodings of a message are one message.
fn encode_lead(lead: &pb::Lead) -> Vec<u8> {
    let mut bytes = pb::Lead {
        lead_id: lead.lead_id.clone(),
        fields: Default::default(),
    }
    .encode_to_vec();
    let mut names: Vec<&String> = lead.fields.keys().collect();
    names.sort();
    for name in names {
        let entry = (name.clone(), lead.fields[name].clone());
        bytes.extend(
            pb::Lead {
                lead_id: String::new(),
                fields: [entry].into_iter().collect(),
            }
            .encode_to_vec(),
        );
    }
    bytes
}

/// The bytes prost writes for `ScoreLeadRequest { lead, explain }` (entries in name order).
fn score_lead_request(lead: pb::Lead, explain: u32) -> Vec<u8> {
    let tail = pb::ScoreLeadRequest {
        lead: None,
        explain,
    }
    .encode_to_vec();
    [frame(1, &encode_lead(&lead)), tail].concat()
}

/// The bytes prost writes for `ScoreLeadsRequest { leads, explain }` (entries in name order).
fn score_leads_request(leads: &[pb::Lead], explain: u32) -> Vec<u8> {
    let mut bytes: Vec<u8> = leads
        .iter()
        .flat_map(|l| frame(1, &encode_lead(l)))
        .collect();
    bytes.extend(
        pb::ScoreLeadsRequest {
            leads: vec![],
            explain,
        }
        .encode_to_vec(),
    );
    bytes
}

fn model_seeds() -> Seeds {
    let shipped = include_str!("../../models/20261123-113146-584053/model.json");
    let artifact: ModelArtifact = serde_json::from_str(shipped).expect("the shipped model parses");
    let json = |a: &ModelArtifact| serde_json::to_vec(a).expect("serialises");

    // Two attributes (a category and a number), and no training record beyond what the
    // validation needs: small, so the fuzzer mutates what matters.
    let mut small = artifact.clone();
    let keep = ["source", "employees", "demo_requested"];
    let mut offset = 0;
    let mut coefficients = Vec::new();
    small
        .encoder
        .attributes
        .retain(|a| keep.contains(&a.name.as_str()));
    for a in &mut small.encoder.attributes {
        coefficients.extend_from_slice(&artifact.coefficients[a.offset..a.offset + a.width()]);
        a.offset = offset;
        offset += a.width();
    }
    small.coefficients = coefficients;
    small.data.columns.clear();
    small.holdout.calibration.clear();
    small.regularisation.candidates.truncate(1);

    let mut future = small.clone();
    future.format_version = 2;
    let mut short = small.clone();
    short.coefficients.pop();
    let mut na_yes = small.clone();
    na_yes.encoder.missing_tokens.0.push("yes".into());
    let mut one_grade = small.clone();
    one_grade.grades.truncate(1);

    vec![
        ("shipped.json", shipped.as_bytes().to_vec()),
        ("small.json", json(&small)),
        ("small_format_2.json", json(&future)),
        ("small_coefficient_missing.json", json(&short)),
        ("small_yes_is_missing.json", json(&na_yes)),
        ("small_one_grade.json", json(&one_grade)),
    ]
}
