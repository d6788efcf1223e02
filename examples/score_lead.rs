//! A CRM-side client of a running `leadscore serve`.
//!
//! ```sh
//! cargo run --release -- serve &                         # the shipped model on 127.0.0.1:50051
//! cargo run --release --example score_lead               # one lead, explained
//! cargo run --release --example score_lead -- --csv new-leads.csv   # every row of a CSV export
//! cargo run --release --example score_lead -- --addr http://HOST:PORT
//! LEADSCORE_AUTH_TOKEN=secret cargo run --release --example score_lead   # when auth is on
//! ```
//!
//! With `--csv FILE` it sends every row of the file in `ScoreLeads` batches, as a CRM's nightly
//! sync would: the `lead_id` column is the id, and the columns the model knows (from
//! `GetModelInfo`) are sent as text (the server parses numbers and yes/no itself), so the
//! prediction log then holds a prediction per lead for `leadscore evaluate --predictions`.
//!
//! Outside this repository, generate the client from `proto/leadscore/v1/leadscore.proto` with
//! `tonic-prost-build`; here `leadscore::server::pb` has it.

use leadscore::server::pb::field_value::Kind;
use leadscore::server::pb::lead_scoring_client::LeadScoringClient;
use leadscore::server::pb::{
    FieldValue, GetModelInfoRequest, Lead, ScoreLeadRequest, ScoreLeadResponse, ScoreLeadsRequest,
};
use std::collections::HashMap;
use tonic::transport::Channel;
use tonic_types::StatusExt;

/// Leads per `ScoreLeads` call: the server's default `--max-batch`.
const BATCH: usize = 1000;

type Error = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut addr = "http://127.0.0.1:50051".to_string();
    let mut csv_path = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--addr" => addr = args.next().ok_or("--addr needs a value")?,
            "--csv" => csv_path = Some(args.next().ok_or("--csv needs a file")?),
            // The address alone, as earlier versions of this example took it.
            other if !other.starts_with('-') => addr = other.to_string(),
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let mut client = LeadScoringClient::connect(addr).await?;
    match csv_path {
        None => score_one(&mut client).await,
        Some(path) => score_csv(&mut client, &path).await,
    }
}

/// Adds the bearer token from `LEADSCORE_AUTH_TOKEN`, when set.
fn request<T>(message: T) -> Result<tonic::Request<T>, Error> {
    let mut request = tonic::Request::new(message);
    if let Ok(token) = std::env::var("LEADSCORE_AUTH_TOKEN") {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
    }
    Ok(request)
}

/// Prints INVALID_ARGUMENT's google.rpc.BadRequest field violations before failing.
fn explain_status(status: tonic::Status) -> Error {
    for violation in status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.clone())
        .unwrap_or_default()
    {
        eprintln!("{}: {}", violation.field, violation.description);
    }
    status.into()
}

async fn score_one(client: &mut LeadScoringClient<Channel>) -> Result<(), Error> {
    let field = |kind| FieldValue { kind: Some(kind) };
    let lead = Lead {
        lead_id: "CRM-1001".into(),
        fields: [
            ("source", field(Kind::Text("Referral".into()))),
            ("industry", field(Kind::Text("software".into()))),
            ("company_size", field(Kind::Text("Large".into()))),
            ("web_visits", field(Kind::Number(9.0))),
            // Numbers sent as text are parsed.
            ("emails_opened", field(Kind::Text("4".into()))),
            ("demo_requested", field(Kind::Flag(true))),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect(),
    };
    let scored = client
        .score_lead(request(ScoreLeadRequest {
            lead: Some(lead),
            explain: 3,
        })?)
        .await
        .map_err(explain_status)?
        .into_inner();
    print_scored(&scored);
    Ok(())
}

async fn score_csv(client: &mut LeadScoringClient<Channel>, path: &str) -> Result<(), Error> {
    let info = client
        .get_model_info(request(GetModelInfoRequest {})?)
        .await
        .map_err(explain_status)?
        .into_inner();
    let mut reader = csv::Reader::from_path(path)?;
    let headers = reader.headers()?.clone();
    let id_column = headers
        .iter()
        .position(|h| h == "lead_id")
        .ok_or_else(|| format!("{path} has no lead_id column"))?;
    // The columns the model knows; the others (the outcome, dates) are not sent.
    let known: Vec<(usize, String)> = headers
        .iter()
        .enumerate()
        .filter(|(_, h)| info.fields.iter().any(|f| f.name == *h))
        .map(|(i, h)| (i, h.to_string()))
        .collect();
    let (mut sent, mut first) = (0usize, None);
    let mut batch = Vec::with_capacity(BATCH);
    let mut records = reader.records();
    loop {
        let record = records.next().transpose()?;
        if let Some(record) = &record {
            let fields: HashMap<String, FieldValue> = known
                .iter()
                .filter(|(i, _)| !record[*i].is_empty())
                .map(|(i, name)| {
                    let value = Kind::Text(record[*i].to_string());
                    (name.clone(), FieldValue { kind: Some(value) })
                })
                .collect();
            batch.push(Lead {
                lead_id: record[id_column].to_string(),
                fields,
            });
        }
        if batch.len() == BATCH || (record.is_none() && !batch.is_empty()) {
            let answer = client
                .score_leads(request(ScoreLeadsRequest {
                    leads: std::mem::take(&mut batch),
                    explain: 3,
                })?)
                .await
                .map_err(explain_status)?
                .into_inner();
            sent += answer.results.len();
            if first.is_none() {
                first = answer.results.into_iter().next();
            }
        }
        if record.is_none() {
            break;
        }
    }
    println!(
        "scored {sent} leads from {path} (model {})",
        info.model_version
    );
    if let Some(scored) = &first {
        print_scored(scored);
    }
    Ok(())
}

fn print_scored(scored: &ScoreLeadResponse) {
    println!(
        "{}: probability {:.3}, score {}, percentile {:.1}, grade {} (model {})",
        scored.lead_id,
        scored.probability,
        scored.score,
        scored.percentile,
        scored.grade,
        scored.model_version
    );
    for factor in &scored.factors {
        let rate = factor
            .closure_rate
            .map_or("n/a".to_string(), |r| format!("{:.0}%", r * 100.0));
        println!(
            "  {:+.2} log-odds  {} = {}  (training leads with this value closed at {rate})",
            factor.log_odds, factor.field, factor.value
        );
    }
    for warning in &scored.warnings {
        println!("  warning: {warning}");
    }
}
