//! A CRM-side client: scores one lead with a running `leadscore serve` and prints the answer.
//!
//! ```sh
//! cargo run --release -- serve &                         # the shipped model on 127.0.0.1:50051
//! cargo run --release --example score_lead               # or: -- http://HOST:PORT
//! LEADSCORE_AUTH_TOKEN=secret cargo run --release --example score_lead   # when auth is on
//! ```
//!
//! Outside this repository, generate the client from `proto/leadscore/v1/leadscore.proto` with
//! `tonic-prost-build`; here `leadscore::server::pb` has it.

use leadscore::server::pb::field_value::Kind;
use leadscore::server::pb::lead_scoring_client::LeadScoringClient;
use leadscore::server::pb::{FieldValue, Lead, ScoreLeadRequest};
use tonic_types::StatusExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:50051".to_string());
    let mut client = LeadScoringClient::connect(addr).await?;
    let field = |kind| FieldValue { kind: Some(kind) };
    let lead = Lead {
        lead_id: "L0000042".into(),
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
    let mut request = tonic::Request::new(ScoreLeadRequest {
        lead: Some(lead),
        explain: 3,
    });
    if let Ok(token) = std::env::var("LEADSCORE_AUTH_TOKEN") {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
    }
    let scored = match client.score_lead(request).await {
        Ok(response) => response.into_inner(),
        Err(status) => {
            // INVALID_ARGUMENT carries google.rpc.BadRequest field violations.
            for violation in status
                .get_error_details()
                .bad_request()
                .map(|b| b.field_violations.clone())
                .unwrap_or_default()
            {
                eprintln!("{}: {}", violation.field, violation.description);
            }
            return Err(status.into());
        }
    };
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
    Ok(())
}
