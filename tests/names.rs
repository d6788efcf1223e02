//! The one name rule (`leadscore::names`) on every path a name comes in by: a lead's fields
//! re-cased and re-spaced score bit for bit the same over gRPC and through `leadscore score`;
//! two names for one field, and a lead or file with no field the model knows, are refused on
//! both paths, naming the names.
//!
//! The model is trained on sample data whose headers have inner spaces (`Web Visits`), so the
//! rule's every part (trim, case, inner white space) is exercised.

use crate::common::{leadscore, stderr, write};
use crate::server::{
    field_violation, number, raw_call, registry, score_request, start_serving, text,
};
use leadscore::model::ModelArtifact;
use leadscore::server::pb;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use tempfile::TempDir;
use tonic::Code;
use tonic_types::StatusExt;

struct Spaced {
    _dir: TempDir,
    /// The sample CSV with `Web Visits`-style headers, as trained on.
    data: PathBuf,
    artifact: ModelArtifact,
}

/// `web_visits` → `Web Visits`.
fn spaced(header: &str) -> String {
    header
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or(String::new(), |first| {
                first.to_uppercase().chain(chars).collect()
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The same name as a careless CRM sends it: `Web Visits` → ` wEB   vISITS\t`.
fn respelled(name: &str) -> String {
    let swapped: String = name
        .chars()
        .map(|c| {
            if c.is_uppercase() {
                c.to_lowercase().next().unwrap()
            } else {
                c.to_uppercase().next().unwrap()
            }
        })
        .collect();
    format!(" {}\t", swapped.replace(' ', "   "))
}

fn spaced_model() -> &'static Spaced {
    static SPACED: OnceLock<Spaced> = OnceLock::new();
    SPACED.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let sample = dir.path().join("sample.csv");
        leadscore::sample::write_sample(&sample, 3000, 11).unwrap();
        let text = std::fs::read_to_string(&sample).unwrap();
        let (header, rows) = text.split_once('\n').unwrap();
        let header: Vec<String> = header.split(',').map(spaced).collect();
        let data = write(
            dir.path(),
            "spaced.csv",
            &format!("{}\n{rows}", header.join(",")),
        );
        let mut config = leadscore::train::TrainConfig::new(&data, "Converted");
        config.id = Some("Lead Id".into());
        config.date = Some("Created At".into());
        let mut trained = leadscore::train::train(&config, &mut |_| {}).unwrap();
        trained.artifact.model_version = "test-names".into();
        Spaced {
            _dir: dir,
            data,
            artifact: trained.artifact,
        }
    })
}

/// The spaced sample's rows as leads, every column but the id as text; keys through `key`.
fn leads(key: impl Fn(&str) -> String) -> Vec<pb::Lead> {
    let table = leadscore::data::read_csv(&spaced_model().data).unwrap();
    let id = table.column_index("Lead Id").unwrap();
    (0..table.rows())
        .map(|row| pb::Lead {
            lead_id: table.column(id).get(row).to_string(),
            fields: (table.headers.iter().enumerate())
                .filter(|&(c, _)| c != id)
                .map(|(c, name)| (key(name), text(table.column(c).get(row))))
                .collect(),
        })
        .collect()
}

/// What `leadscore score` prints for `csv` (every lead, three factors each way).
fn score_cli(csv: &str, models: &str) -> String {
    let out = leadscore(&["score", "--data", csv, "--models", models, "--explain", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn respelled_names_score_bit_for_bit_the_same_over_grpc_and_the_cli() {
    let spaced = spaced_model();
    let models = registry(&[&spaced.artifact], Some("test-names"));
    let m = models.path().to_str().unwrap();
    let attributes: Vec<String> = (spaced.artifact.encoder.attributes.iter())
        .map(|a| a.name.clone())
        .collect();
    assert!(
        attributes.iter().any(|a| a.contains(' ')),
        "the model has names with inner spaces: {attributes:?}"
    );

    // The CLI: the training file, and the same file with every header respelled.
    let text = std::fs::read_to_string(&spaced.data).unwrap();
    let (header, rows) = text.split_once('\n').unwrap();
    let header: Vec<String> = header.split(',').map(respelled).collect();
    let dir = tempfile::tempdir().unwrap();
    let respelled_csv = write(
        dir.path(),
        "respelled.csv",
        &format!("{}\n{rows}", header.join(",")),
    );
    let exact = score_cli(spaced.data.to_str().unwrap(), m);
    assert_eq!(exact.lines().count(), 3001);
    assert_eq!(score_cli(respelled_csv.to_str().unwrap(), m), exact);
    // lead_id → probability as the CLI printed it (shortest text that reads back the same f64).
    let cli: HashMap<String, u64> = exact
        .lines()
        .skip(1)
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            (
                cells[0].to_string(),
                cells[2].parse::<f64>().unwrap().to_bits(),
            )
        })
        .collect();

    // gRPC: the same leads with exact and with respelled keys.
    let server = start_serving(models.path(), |_| {}).await;
    let mut client = server.client().await;
    let exact_leads = leads(str::to_string);
    let respelled_leads = leads(respelled);
    assert!(
        respelled_leads[0]
            .fields
            .keys()
            .all(|k| !attributes.contains(k))
    );
    for (exact, respelled) in exact_leads.iter().zip(&respelled_leads).take(200) {
        let a = client
            .score_lead(score_request(exact.clone(), 3))
            .await
            .unwrap()
            .into_inner();
        let b = client
            .score_lead(score_request(respelled.clone(), 3))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(a.probability.to_bits(), cli[&a.lead_id], "{}", a.lead_id);
        assert_eq!(
            b.probability.to_bits(),
            a.probability.to_bits(),
            "{}",
            a.lead_id
        );
        assert_eq!(
            (b.score, b.percentile.to_bits(), &b.grade, &b.factors),
            (a.score, a.percentile.to_bits(), &a.grade, &a.factors)
        );
        // No field went unused or was imputed for want of its exact spelling.
        assert!(
            !b.warnings.iter().any(|w| attributes
                .iter()
                .any(|n| w.contains(n.as_str()) && w.starts_with("fields not used"))),
            "{:?}",
            b.warnings
        );
    }
    let batch = client
        .score_leads(pb::ScoreLeadsRequest {
            leads: respelled_leads[200..300].to_vec(),
            explain: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    for got in &batch {
        assert_eq!(
            got.probability.to_bits(),
            cli[&got.lead_id],
            "{}",
            got.lead_id
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_names_for_one_field_are_refused_naming_both() {
    let spaced = spaced_model();
    let models = registry(&[&spaced.artifact], Some("test-names"));
    let m = models.path().to_str().unwrap();
    let server = start_serving(models.path(), |_| {}).await;
    let mut client = server.client().await;

    let mut lead = leads(str::to_string).remove(0);
    lead.fields.insert("web visits".into(), text("3"));
    let status = client
        .score_lead(score_request(lead.clone(), 0))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    // The map's order is the client's: either key may come first.
    let message = status.message();
    assert!(message.starts_with("lead.fields: "), "{message}");
    assert!(
        message.contains(r#"both name the model's field "Web Visits""#),
        "{message}"
    );
    assert!(
        message.contains(r#""Web Visits" and "web visits""#)
            || message.contains(r#""web visits" and "Web Visits""#),
        "{message}"
    );
    let details = status.get_error_details();
    let mut fields: Vec<&str> = (details.bad_request().expect("BadRequest").field_violations)
        .iter()
        .map(|v| v.field.as_str())
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        ["lead.fields[Web Visits]", "lead.fields[web visits]"]
    );

    // In a batch, the lead is named.
    let good = leads(str::to_string).remove(1);
    let status = client
        .score_leads(pb::ScoreLeadsRequest {
            leads: vec![good, lead],
            explain: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(field_violation(&status).starts_with("leads[1].fields["));

    // The same key twice is one field sent twice: as in any protobuf map, the last entry wins.
    let one = |visits: f64| {
        prost::Message::encode_to_vec(&pb::Lead {
            lead_id: String::new(),
            fields: [("web visits".to_string(), number(visits))]
                .into_iter()
                .collect(),
        })
    };
    let twice = [one(40.0), one(2.0)].concat();
    let mut request = vec![0x0a];
    prost::encoding::encode_varint(twice.len() as u64, &mut request);
    request.extend(&twice);
    let got = raw_call(&server, "ScoreLead", request).await.unwrap();
    let got: pb::ScoreLeadResponse = prost::Message::decode(got).unwrap();
    let last = client
        .score_lead(score_request(
            pb::Lead {
                lead_id: String::new(),
                fields: [("Web Visits".to_string(), number(2.0))]
                    .into_iter()
                    .collect(),
            },
            0,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.probability.to_bits(), last.probability.to_bits());
    let first: pb::ScoreLeadResponse = prost::Message::decode(
        raw_call(
            &server,
            "ScoreLead",
            [&[0x0a, one(40.0).len() as u8][..], &one(40.0)].concat(),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_ne!(first.probability, last.probability, "the value matters");
    server.stop().await;

    // The CLI: two headers for one field, exit 1 naming the file and both columns.
    let dir = tempfile::tempdir().unwrap();
    let csv = write(
        dir.path(),
        "twice.csv",
        "Lead Id,Web Visits,Source,WEB  VISITS\nL1,3,web,4\n",
    );
    let out = leadscore(&["score", "--data", csv.to_str().unwrap(), "--models", m]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(
            "twice.csv: the columns \"Web Visits\" and \"WEB  VISITS\" both name the model's \
             field \"Web Visits\""
        ),
        "{err}"
    );
    // The evaluate backtest reads the file by the same rule.
    let csv = write(
        dir.path(),
        "twice-labelled.csv",
        "Lead Id,Web Visits,Converted,web visits\nL1,3,1,4\n",
    );
    let out = leadscore(&["evaluate", "--data", csv.to_str().unwrap(), "--models", m]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the columns \"Web Visits\" and \"web visits\" both name"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_or_file_with_no_known_field_is_refused_listing_the_expected_names() {
    let spaced = spaced_model();
    let models = registry(&[&spaced.artifact], Some("test-names"));
    let m = models.path().to_str().unwrap();
    let expected = (spaced.artifact.encoder.attributes.iter())
        .map(|a| format!("{:?}", a.name))
        .collect::<Vec<_>>()
        .join(", ");
    let server = start_serving(models.path(), |_| {}).await;
    let mut client = server.client().await;

    let empty = pb::Lead {
        lead_id: "L1".into(),
        fields: HashMap::new(),
    };
    let unknown = pb::Lead {
        lead_id: "L2".into(),
        fields: [
            ("colour".to_string(), text("teal")),
            ("WebVisits".into(), text("3")),
        ]
        .into_iter()
        .collect(),
    };
    for (lead, what) in [
        (&empty, "the lead has no fields"),
        (
            &unknown,
            "none of the lead's fields is a field of the model",
        ),
    ] {
        let status = client
            .score_lead(score_request(lead.clone(), 0))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.message(),
            format!(
                "lead.fields: {what}; model test-names scores leads on {expected} (field names \
                 match ignoring case and spacing): send at least one"
            )
        );
        assert_eq!(field_violation(&status), "lead.fields");
    }
    let good = leads(str::to_string).remove(0);
    let status = client
        .score_leads(pb::ScoreLeadsRequest {
            leads: vec![good.clone(), good, unknown],
            explain: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(field_violation(&status), "leads[2].fields");
    server.stop().await;

    // The CLI: a file none of whose headers is a field, for `score` and the backtest.
    let dir = tempfile::tempdir().unwrap();
    let csv = write(
        dir.path(),
        "other.csv",
        "Lead Id,colour,Converted\nL1,teal,1\n",
    );
    for command in ["score", "evaluate"] {
        let out = leadscore(&[command, "--data", csv.to_str().unwrap(), "--models", m]);
        assert_eq!(out.status.code(), Some(1), "{command}");
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "other.csv: none of the columns is a field of the model; expected at least one \
                 of {expected} (column names match ignoring case and spacing)"
            )),
            "{command}: {err}"
        );
    }
}
