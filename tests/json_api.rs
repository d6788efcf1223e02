//! The HTTP/JSON API on the gRPC server's own address: a plain HTTP/1.1 client (bytes on a
//! socket, as curl sends them), an HTTP/2 client, the same over TLS with a token, beside tonic
//! clients on the same port.

use crate::server::{
    assert_same_score, attribute_of_kind, csv_leads, fixture, metric_value, predictions, registry,
    score_request, start, start_serving,
};
use leadscore::registry::Registry;
use leadscore::server::TlsIdentity;
use leadscore::server::pb;
use leadscore::server::pb::field_value::Kind as ValueKind;
use leadscore::server::predlog::PredictionLogConfig;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::Code;

/// An HTTP answer: status, headers (lower-case names) and the body as JSON (`Null` if empty or
/// not JSON).
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    pub(crate) body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `{"error": {...}}` of a refusal, checked for its shape.
    fn error(&self) -> (&str, &str, Option<&str>) {
        let error = &self.body["error"];
        assert!(error.is_object(), "not an error answer: {self:?}");
        (
            error["code"].as_str().unwrap(),
            error["message"].as_str().unwrap(),
            error["field"].as_str(),
        )
    }
}

/// One HTTP/1.1 request on its own connection, written as bytes (what curl sends).
async fn http1(
    stream: impl AsyncRead + AsyncWrite + Unpin,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let mut stream = stream;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: leadscore.test\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    stream.flush().await.unwrap();
    let mut raw = Vec::new();
    // A TLS peer may close without close_notify after `Connection: close`; what was read counts.
    let _ = stream.read_to_end(&mut raw).await;
    parse_http1(&raw)
}

fn parse_http1(raw: &[u8]) -> Answer {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
    let status = status_line[9..12].parse().unwrap();
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.trim().to_ascii_lowercase(), value.trim().to_string())
        })
        .collect();
    let body = serde_json::from_slice(&raw[split + 4..]).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

pub(crate) async fn call(addr: SocketAddr, method: &str, path: &str, body: &Value) -> Answer {
    let body = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(body).unwrap()
    };
    call_raw(
        addr,
        method,
        path,
        &[("content-type", "application/json")],
        &body,
    )
    .await
}

async fn call_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    http1(
        TcpStream::connect(addr).await.unwrap(),
        method,
        path,
        headers,
        body,
    )
    .await
}

/// A gRPC lead as the JSON API's `{"lead_id", "fields"}`, values of the same kinds.
fn json_lead(lead: &pb::Lead) -> Value {
    let fields: serde_json::Map<String, Value> = lead
        .fields
        .iter()
        .map(|(name, value)| {
            let value = match &value.kind {
                Some(ValueKind::Text(t)) => json!(t),
                Some(ValueKind::Number(n)) => json!(n),
                Some(ValueKind::Flag(b)) => json!(b),
                None => Value::Null,
            };
            (name.clone(), value)
        })
        .collect();
    json!({"lead_id": lead.lead_id, "fields": fields})
}

/// The gRPC answer as the JSON API writes it (without `reasons`), to compare the two exactly.
fn as_json(response: &pb::ScoreLeadResponse) -> Value {
    same_order(json!({
        "lead_id": response.lead_id,
        "probability": response.probability,
        "score": response.score,
        "percentile": response.percentile,
        "grade": response.grade,
        "factors": response.factors.iter().map(|f| json!({
            "field": f.field,
            "value": f.value,
            "log_odds": f.log_odds,
            "closure_rate": f.closure_rate,
            "support": f.support,
        })).collect::<Vec<_>>(),
        "model_version": response.model_version,
        "warnings": response.warnings,
    }))
}

/// The unused-fields warning lists names in the order they arrived; a gRPC map (a `HashMap`)
/// and a JSON object send them in different orders, so they are compared as sets.
fn same_order(mut answer: Value) -> Value {
    for warning in answer["warnings"].as_array_mut().unwrap() {
        let text = warning.as_str().unwrap();
        if let Some((head, names)) = text.split_once(", ignored: ") {
            let mut names: Vec<_> = names.split(", ").collect();
            names.sort();
            *warning = json!(format!("{head}, ignored: {}", names.join(", ")));
        }
    }
    answer
}

/// `answer` without `reasons`, after checking there is one sentence per factor.
fn without_reasons(answer: &Value) -> Value {
    let mut answer = same_order(answer.clone());
    let reasons = answer.as_object_mut().unwrap().remove("reasons").unwrap();
    let factors = answer["factors"].as_array().unwrap();
    let reasons = reasons.as_array().unwrap();
    assert_eq!(reasons.len(), factors.len());
    for (reason, factor) in reasons.iter().zip(factors) {
        let reason = reason.as_str().unwrap();
        let field = factor["field"].as_str().unwrap();
        assert!(reason.starts_with(field), "{reason}");
        let direction = if factor["log_odds"].as_f64().unwrap() >= 0.0 {
            "raises the chance"
        } else {
            "lowers the chance"
        };
        assert!(reason.contains(direction), "{reason} for {factor}");
        assert!(!reason.contains('\n') && reason.len() < 300, "{reason}");
    }
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_scores_are_the_grpc_and_batch_scores_bit_for_bit() {
    let f = fixture();
    let models = registry(&[&f.a], Some("test-a"));
    let server = start_serving(models.path(), |_| {}).await;
    let mut client = server.client().await;
    let model = Registry::new(models.path()).load("test-a").unwrap();
    let leads = csv_leads(&model, 3);

    // 300 leads one by one: JSON, gRPC and the library's batch scoring (`leadscore score`)
    // agree to the bit on every number, factor and warning.
    for (lead, expected) in leads.iter().take(300) {
        let mut body = json_lead(lead);
        body["explain"] = json!(3);
        let answer = call(server.addr, "POST", "/v1/leads:score", &body).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.header("content-type"), Some("application/json"));
        let grpc = client
            .score_lead(score_request(lead.clone(), 3))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(without_reasons(&answer.body), as_json(&grpc));
        let probability = answer.body["probability"].as_f64().unwrap();
        assert_eq!(probability.to_bits(), expected.probability.to_bits());
        assert_eq!(
            answer.body["percentile"].as_f64(),
            Some(expected.percentile)
        );
        assert_eq!(answer.body["grade"], expected.grade);
    }

    // A batch of 500: the same, in order.
    let batch: Vec<_> = leads.iter().skip(300).take(500).map(|(l, _)| l).collect();
    let body =
        json!({"leads": batch.iter().map(|l| json_lead(l)).collect::<Vec<_>>(), "explain": 2});
    let answer = call(server.addr, "POST", "/v1/leads:scoreBatch", &body).await;
    assert_eq!(answer.status, 200, "{:?}", answer.error());
    let grpc = client
        .score_leads(pb::ScoreLeadsRequest {
            leads: batch.iter().map(|l| (*l).clone()).collect(),
            explain: 2,
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    let results = answer.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 500);
    for (json, grpc) in results.iter().zip(&grpc) {
        assert_eq!(without_reasons(json), as_json(grpc));
    }

    // Numbers as JSON numbers and yes/no as true/false score as their text does.
    let numeric = attribute_of_kind(&model, "numeric");
    let boolean = attribute_of_kind(&model, "boolean");
    let (lead, expected) = leads
        .iter()
        .find(|(lead, _)| {
            let text = |name: &str| match &lead.fields[name].kind {
                Some(ValueKind::Text(t)) => t.clone(),
                _ => String::new(),
            };
            text(&numeric).trim().parse::<f64>().is_ok()
                && matches!(text(&boolean).as_str(), "yes" | "no")
        })
        .unwrap();
    let mut body = json_lead(lead);
    let number: f64 = body["fields"][&numeric]
        .as_str()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    body["fields"][&numeric] = json!(number);
    body["fields"][&boolean] = json!(body["fields"][&boolean] == "yes");
    let answer = call(server.addr, "POST", "/v1/leads:score", &body).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.body["probability"].as_f64().unwrap().to_bits(),
        expected.probability.to_bits()
    );

    // Metrics tell the protocols apart.
    let metrics = server.metrics().await;
    let calls = |method: &str, protocol: &str| {
        metric_value(
            &metrics,
            &format!(
                r#"leadscore_grpc_requests_total{{code="OK",method="{method}",protocol="{protocol}"}}"#
            ),
        )
    };
    assert_eq!(calls("ScoreLead", "json"), 301.0);
    assert_eq!(calls("ScoreLead", "grpc"), 300.0);
    assert_eq!(calls("ScoreLeads", "json"), 1.0);
    assert_eq!(
        metric_value(&metrics, "leadscore_leads_scored_total"),
        300.0 + 1.0 + 300.0 + 500.0 + 500.0
    );
    server.stop().await;
}

/// A model with a shaped attribute: JSON, gRPC and the library's batch scoring agree to the bit
/// on every number and factor (a factor being the attribute's linear and spline columns
/// together).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shaped_model_scores_alike_over_json_grpc_and_the_library() {
    let f = fixture();
    let models = registry(&[&f.shaped], Some("test-shaped"));
    let server = start_serving(models.path(), |_| {}).await;
    let mut client = server.client().await;
    let model = Registry::new(models.path()).load("test-shaped").unwrap();
    assert_eq!(model.artifact.format_version, 2);
    let leads = csv_leads(&model, 3);
    let mut shaped_factors = 0;
    for (lead, expected) in leads.iter().take(300) {
        let grpc = client
            .score_lead(score_request(lead.clone(), 3))
            .await
            .unwrap()
            .into_inner();
        assert_same_score(&grpc, expected, "test-shaped");
        let mut body = json_lead(lead);
        body["explain"] = json!(3);
        let answer = call(server.addr, "POST", "/v1/leads:score", &body).await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(without_reasons(&answer.body), as_json(&grpc));
        shaped_factors += expected
            .factors
            .iter()
            .filter(|f| f.field == "days_since_last_touch")
            .count();
    }
    assert!(
        shaped_factors > 0,
        "the shaped attribute explains some scores"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_refusals_are_json_errors_with_the_grpc_messages() {
    let f = fixture();
    let models = registry(&[&f.a], Some("test-a"));
    let server = start_serving(models.path(), |config| config.max_batch = 3).await;
    let model = Registry::new(models.path()).load("test-a").unwrap();
    let numeric = attribute_of_kind(&model, "numeric");
    let boolean = attribute_of_kind(&model, "boolean");
    let addr = server.addr;
    let mut client = server.client().await;

    // A value the model cannot use: the gRPC refusal's text, minus gRPC's `lead.` prefix.
    for (field, value) in [
        (&numeric, json!("abc")),
        (&numeric, json!("NaN")),
        (&numeric, json!("inf")),
        // Null stands for the literal 1e400, beyond f64: infinity, as gRPC can send.
        (&numeric, Value::Null),
        (&boolean, json!("maybe")),
        (&boolean, json!(2)),
    ] {
        // serde_json writes an infinite f64 as null: send the literal that overflows instead.
        let body = if value.is_null() {
            format!(r#"{{"fields": {{"{field}": 1e400}}}}"#)
        } else {
            json!({"fields": {field.as_str(): value}}).to_string()
        };
        let answer = call_raw(addr, "POST", "/v1/leads:score", &[], body.as_bytes()).await;
        assert_eq!(answer.status, 400, "{body}: {answer:?}");
        let (code, message, at) = answer.error();
        assert_eq!(code, "INVALID_ARGUMENT");
        assert_eq!(at, Some(format!("fields[{field}]").as_str()));
        let grpc_value = if value.is_null() {
            pb::FieldValue {
                kind: Some(ValueKind::Number(f64::INFINITY)),
            }
        } else if let Some(text) = value.as_str() {
            crate::server::text(text)
        } else {
            crate::server::number(value.as_f64().unwrap())
        };
        let lead = pb::Lead {
            lead_id: String::new(),
            fields: [(field.clone(), grpc_value)].into_iter().collect(),
        };
        let status = client.score_lead(score_request(lead, 0)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), format!("lead.{message}"), "{body}");
    }

    // Field names follow the one rule of every path (case and spacing ignored), with the same
    // refusals: two keys naming one field, and a lead none of whose keys names a field.
    let (upper, lower) = (format!(" {} ", numeric.to_uppercase()), numeric.clone());
    for fields in [
        json!({upper.as_str(): 1, lower.as_str(): 2}),
        json!({"nothing": 1, "known": 2}),
        json!({}),
    ] {
        let answer = call(addr, "POST", "/v1/leads:score", &json!({"fields": fields})).await;
        assert_eq!(answer.status, 400, "{fields}");
        let (code, message, at) = answer.error();
        assert_eq!(code, "INVALID_ARGUMENT");
        assert!(at.is_some_and(|f| f.starts_with("fields")), "{at:?}");
        let lead = pb::Lead {
            lead_id: String::new(),
            fields: fields
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), crate::server::number(v.as_f64().unwrap())))
                .collect(),
        };
        let status = client.score_lead(score_request(lead, 0)).await.unwrap_err();
        // A HashMap sends the two keys in either order: compare with the keys swapped too.
        let swapped = message
            .replacen(&format!("{upper:?}"), "\u{0}", 1)
            .replacen(&format!("{lower:?}"), &format!("{upper:?}"), 1)
            .replacen("\u{0}", &format!("{lower:?}"), 1);
        assert!(
            status.message() == format!("lead.{message}")
                || status.message() == format!("lead.{swapped}"),
            "{} / {message}",
            status.message()
        );
    }
    let answer = call(
        addr,
        "POST",
        "/v1/leads:score",
        &json!({"fields": {upper.as_str(): 4}}),
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");

    // Bodies that are not a lead.
    let cases: &[(&[u8], u16, Option<&str>, &str)] = &[
        (b"{\"fields\": ", 400, None, "the body is not valid JSON"),
        (b"lead_id=1", 400, None, "the body is not valid JSON"),
        (
            b"[1, 2]",
            400,
            None,
            "the body must be a JSON object, not an array",
        ),
        (
            b"\"x\"",
            400,
            None,
            "the body must be a JSON object, not a string",
        ),
        (b"{\"lead\": {}}", 400, Some("lead"), "unknown key"),
        (
            b"{\"fields\": [1]}",
            400,
            Some("fields"),
            "must be a JSON object",
        ),
        (
            b"{\"fields\": {\"a\": {}}}",
            400,
            Some("fields[a]"),
            "an object is not a field value",
        ),
        (b"{\"explain\": 1.5}", 400, Some("explain"), "whole number"),
        (
            b"{\"lead_id\": \"a\", \"lead_id\": \"b\"}",
            400,
            Some("lead_id"),
            "given twice",
        ),
    ];
    for &(body, status, field, text) in cases {
        let answer = call_raw(addr, "POST", "/v1/leads:score", &[], body).await;
        assert_eq!(answer.status, status, "{:?}", String::from_utf8_lossy(body));
        let (code, message, at) = answer.error();
        assert_eq!(code, "INVALID_ARGUMENT");
        assert_eq!(at, field, "{message}");
        assert!(message.contains(text), "{message}");
    }
    let long_id = "x".repeat(257);
    let answer = call(
        addr,
        "POST",
        "/v1/leads:score",
        &json!({"lead_id": long_id}),
    )
    .await;
    assert_eq!(answer.error().2, Some("lead_id"));

    // A batch over --max-batch, and a bad lead inside a batch.
    let lead = json!({"lead_id": "L", "fields": {numeric.as_str(): 1}});
    let answer = call(
        addr,
        "POST",
        "/v1/leads:scoreBatch",
        &json!({"leads": [lead, lead, lead, lead]}),
    )
    .await;
    assert_eq!(answer.status, 400);
    let (_, message, at) = answer.error();
    assert_eq!(at, Some("leads"));
    assert!(message.contains("more than 3 leads"), "{message}");
    let answer = call(
        addr,
        "POST",
        "/v1/leads:scoreBatch",
        &json!({"leads": [lead, {"fields": {numeric.as_str(): "abc"}}]}),
    )
    .await;
    assert_eq!(
        answer.error().2,
        Some(format!("leads[1].fields[{numeric}]").as_str())
    );

    // Paths and methods.
    let answer = call(addr, "GET", "/v1/leads", &Value::Null).await;
    assert_eq!(answer.status, 404);
    assert_eq!(answer.error().0, "NOT_FOUND");
    let answer = call(addr, "GET", "/v1/leads:score", &Value::Null).await;
    assert_eq!(answer.status, 405);
    assert_eq!(answer.header("allow"), Some("POST"));
    assert_eq!(answer.error().0, "UNIMPLEMENTED");
    // A JSON caller on a gRPC path is not answered in gRPC's format either.
    let answer = call(
        addr,
        "POST",
        "/leadscore.v1.LeadScoring/ScoreLead",
        &json!({}),
    )
    .await;
    assert_eq!(answer.status, 404);

    // A body announced over the size limit (4 MiB at this --max-batch): 413 before it is
    // read (so the client need not send it). One that is not announced: see the HTTP/2 test.
    let limit = leadscore::server::max_message_bytes(3);
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/leads:score HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        limit + 1
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let answer = parse_http1(&raw);
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_eq!(answer.error().0, "OUT_OF_RANGE");

    // A gRPC call to a method or service that does not exist is still gRPC's UNIMPLEMENTED.
    let mut grpc = tonic::client::Grpc::new(server.channel().await);
    for path in ["/leadscore.v1.LeadScoring/Nope", "/nope.v1.Nope/Nope"] {
        grpc.ready().await.unwrap();
        let status = grpc
            .unary(
                tonic::Request::new(prost::bytes::Bytes::new()),
                path.parse().unwrap(),
                leadscore::server::codec::RawCodec,
            )
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented, "{path}");
    }

    // JSON refusals are counted like gRPC ones.
    let metrics = server.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            r#"leadscore_grpc_errors_total{code="INVALID_ARGUMENT",method="ScoreLead",protocol="json"}"#
        ),
        19.0
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_model_and_openapi_over_json() {
    let f = fixture();
    // No model yet: alive, not ready, scoring 503.
    let models = registry(&[&f.a], None);
    let server = start(models.path(), |_| {}).await;
    let answer = call(server.addr, "GET", "/healthz", &Value::Null).await;
    assert_eq!(
        (answer.status, &answer.body),
        (200, &json!({"status": "ok"}))
    );
    let answer = call(server.addr, "GET", "/readyz", &Value::Null).await;
    assert_eq!(answer.status, 503);
    let answer = call(server.addr, "POST", "/v1/leads:score", &json!({})).await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.error().0, "UNAVAILABLE");
    assert!(answer.header("retry-after").is_some());

    Registry::new(models.path()).promote("test-a").unwrap();
    crate::server::eventually("readiness", || async {
        call(server.addr, "GET", "/readyz", &Value::Null)
            .await
            .status
            == 200
    })
    .await;
    let answer = call(server.addr, "GET", "/v1/model", &Value::Null).await;
    assert_eq!(answer.status, 200);
    let grpc = server
        .client()
        .await
        .get_model_info(pb::GetModelInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.body["model_version"], grpc.model_version);
    assert_eq!(
        answer.body["fields"].as_array().unwrap().len(),
        grpc.fields.len()
    );
    assert_eq!(answer.body["training_rows"], grpc.training_rows);
    let holdout = grpc.holdout.unwrap();
    assert_eq!(
        answer.body["holdout"]["brier"].as_f64(),
        Some(holdout.brier)
    );

    // The OpenAPI document is valid OpenAPI 3.0 by a real validator (openapi-spec-validator,
    // found or installed from PyPI by `openapi_validator`), and describes every route.
    let answer = call(server.addr, "GET", "/openapi.json", &Value::Null).await;
    assert_eq!(answer.status, 200);
    let doc = &answer.body;
    assert_eq!(doc["openapi"], "3.0.3");
    for route in leadscore::server::http::ROUTES {
        assert!(
            doc["paths"][route.path][route.method.to_ascii_lowercase()].is_object(),
            "{}",
            route.path
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
    openapi_validator();
    let output = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator", "--schema", "3.0.0"])
        .arg(&file)
        .output()
        .expect("python3 runs");
    let printed = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "openapi-spec-validator: {printed}");
    assert!(printed.contains("OK"), "{printed}");
    // A document it refuses is refused: the validator is really checking.
    let mut broken = doc.clone();
    broken["paths"]["/v1/model"]["get"]["responses"] = json!("none");
    std::fs::write(&file, serde_json::to_vec(&broken).unwrap()).unwrap();
    let output = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator", "--schema", "3.0.0"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!output.status.success());
    server.stop().await;
}

/// The pinned OpenAPI validator the tests run (found, or installed from PyPI).
fn openapi_validator() {
    crate::support::python::ensure_package(
        "openapi_spec_validator",
        "openapi-spec-validator==0.9.0",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_over_http2_and_the_prediction_log() {
    let f = fixture();
    let models = registry(&[&f.a], Some("test-a"));
    let log = tempfile::tempdir().unwrap();
    let path = log.path().join("predictions.sqlite");
    let server = start_serving(models.path(), |config| {
        config.prediction_log = Some(PredictionLogConfig::new(&path));
    })
    .await;

    // HTTP/2 with prior knowledge (h2c), the way a proxy in front may speak to it.
    let io = hyper_util::rt::TokioIo::new(TcpStream::connect(server.addr).await.unwrap());
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
            .await
            .unwrap();
    tokio::spawn(connection);
    let body = json!({"lead_id": "H2-LEAD", "fields": {"source": "web"}, "explain": 1}).to_string();
    let request = hyper::Request::post("/v1/leads:score")
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(prost::bytes::Bytes::from(body)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    use http_body_util::BodyExt;
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["lead_id"], "H2-LEAD");
    assert!(
        answer["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("missing value imputed"))
    );

    // A body streamed without a length, past the size limit: 413 once the limit is crossed.
    let limit = leadscore::server::max_message_bytes(leadscore::server::DEFAULT_MAX_BATCH);
    let chunks = (0..limit / (1 << 20) + 2).map(|_| {
        Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(prost::bytes::Bytes::from(
            vec![b' '; 1 << 20],
        )))
    });
    let request = hyper::Request::post("/v1/leads:scoreBatch")
        .header("content-type", "application/json")
        .body(http_body_util::StreamBody::new(tokio_stream::iter(chunks)))
        .unwrap();
    let io = hyper_util::rt::TokioIo::new(TcpStream::connect(server.addr).await.unwrap());
    let (mut streaming, connection) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
            .await
            .unwrap();
    tokio::spawn(connection);
    let response = streaming.send_request(request).await.unwrap();
    assert_eq!(response.status(), 413);

    // And a batch over HTTP/1.1: every JSON-scored lead lands in the prediction log.
    let answer = call(
        server.addr,
        "POST",
        "/v1/leads:scoreBatch",
        &json!({"leads": [
            {"lead_id": 4711, "fields": {"source": "web"}},
            {"lead_id": "B-2", "fields": {"WEB_VISITS": 3}}
        ]}),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["results"][0]["lead_id"], "4711");
    server.stop().await;
    let ids: Vec<String> = predictions(&path).into_iter().map(|p| p.0).collect();
    assert_eq!(ids, ["H2-LEAD", "4711", "B-2"]);
}

fn tls_material() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    (read("server.pem"), read("server.key"), read("ca.pem"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_and_grpc_over_tls_with_a_token_on_one_port() {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    use tokio_rustls::rustls::{ClientConfig, RootCertStore};
    let f = fixture();
    let models = registry(&[&f.a], Some("test-a"));
    let (cert_pem, key_pem, ca_pem) = tls_material();
    let server = start(models.path(), |config| {
        config.tls = Some(TlsIdentity { cert_pem, key_pem });
        config.auth_token = Some("crm-token".into());
    })
    .await;

    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    // An HTTP/1.1-only client, as Salesforce's callouts are.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let https = |method: &'static str, path: &'static str, token: Option<&'static str>| {
        let connector = connector.clone();
        let addr = server.addr;
        async move {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let tls = connector
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await
                .unwrap();
            assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
            let auth = token.map(|t| format!("Bearer {t}"));
            let mut headers = vec![("content-type", "application/json")];
            if let Some(auth) = &auth {
                headers.push(("authorization", auth.as_str()));
            }
            let body = if method == "POST" {
                &b"{\"lead_id\": \"T1\", \"fields\": {\"source\": \"web\"}}"[..]
            } else {
                b""
            };
            http1(tls, method, path, &headers, body).await
        }
    };

    crate::server::eventually("readiness over TLS", || async {
        https("GET", "/readyz", None).await.status == 200
    })
    .await;
    for token in [None, Some("crm-toke"), Some("crm-token-")] {
        let answer = https("POST", "/v1/leads:score", token).await;
        assert_eq!(answer.status, 401, "{token:?}");
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
        let (code, message, _) = answer.error();
        assert_eq!(code, "UNAUTHENTICATED");
        assert!(!message.contains("crm-tok"), "{message}");
    }
    let answer = https("POST", "/v1/leads:score", Some("crm-token")).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["lead_id"], "T1");
    assert_eq!(https("GET", "/openapi.json", None).await.status, 401);
    assert_eq!(
        https("GET", "/openapi.json", Some("crm-token"))
            .await
            .status,
        200
    );

    // gRPC on the same port, same TLS (ALPN h2), same token.
    let channel =
        tonic::transport::Channel::from_shared(format!("https://localhost:{}", server.addr.port()))
            .unwrap()
            .tls_config(
                tonic::transport::ClientTlsConfig::new()
                    .ca_certificate(tonic::transport::Certificate::from_pem(&tls_material().2))
                    .domain_name("localhost"),
            )
            .unwrap()
            .connect()
            .await
            .unwrap();
    let mut request = tonic::Request::new(pb::GetModelInfoRequest {});
    request
        .metadata_mut()
        .insert("authorization", "Bearer crm-token".parse().unwrap());
    let info = pb::lead_scoring_client::LeadScoringClient::new(channel)
        .get_model_info(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.model_version, "test-a");

    // Plain HTTP to the TLS port gets no answer.
    let mut plain = TcpStream::connect(server.addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    let _ = plain.read_to_end(&mut raw).await;
    assert!(!raw.starts_with(b"HTTP/1.1 200"));
    server.stop().await;
}

/// A number outside its attribute's training range is a warning in the response, the same
/// text on gRPC and JSON, and counted per attribute in the metrics (issue 11, point 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_outside_the_training_range_are_warned_about_and_counted_per_attribute() {
    use leadscore::encoder::{Encoding, format_number};
    let f = fixture();
    let models = registry(&[&f.a], Some("test-a"));
    let server = start_serving(models.path(), |_| {}).await;
    let model = Registry::new(models.path()).load("test-a").unwrap();
    let numeric: Vec<(String, f64, f64)> = model
        .encoder()
        .attributes
        .iter()
        .filter_map(|a| match a.encoding {
            Encoding::Numeric { min, max, .. } => Some((a.name.clone(), min, max)),
            _ => None,
        })
        .collect();
    assert!(numeric.len() >= 3, "the sample model has numbers");
    let [
        (high, high_min, high_max),
        (low, low_min, low_max),
        (steady, ..),
    ] = &numeric[..3]
    else {
        unreachable!()
    };
    let (original, _) = csv_leads(&model, 0).into_iter().next().unwrap();
    let mut lead = original.clone();
    let (high_value, low_value) = (high_max + 1e9, low_min - 1.0);
    for (name, value) in [(high, high_value), (low, low_value)] {
        let kind = Some(ValueKind::Number(value));
        lead.fields.insert(name.clone(), pb::FieldValue { kind });
    }
    let outside = |warnings: &[String]| -> Vec<String> {
        warnings
            .iter()
            .filter(|w| w.contains("outside the training range"))
            .cloned()
            .collect()
    };

    let mut client = server.client().await;
    let grpc = client
        .score_lead(score_request(lead.clone(), 0))
        .await
        .unwrap()
        .into_inner();
    let warned = outside(&grpc.warnings);
    assert_eq!(warned.len(), 2, "{:?}", grpc.warnings);
    let expected_high = format!(
        "{high}: {} is outside the training range [{}, {}]; scored as ",
        format_number(high_value),
        format_number(*high_min),
        format_number(*high_max)
    );
    assert!(
        warned.iter().any(|w| w.starts_with(&expected_high)),
        "{warned:?}"
    );
    let expected_low = format!(
        "{low}: {} is outside the training range [{}, {}]",
        format_number(low_value),
        format_number(*low_min),
        format_number(*low_max)
    );
    assert!(
        warned.iter().any(|w| w.starts_with(&expected_low)),
        "{warned:?}"
    );

    // JSON: the same warnings, word for word (the unused fields are listed in the order each
    // protocol's map gives them, so that warning is left out of the comparison).
    let answer = call(server.addr, "POST", "/v1/leads:score", &json_lead(&lead)).await;
    assert_eq!(answer.status, 200);
    let json_warnings: Vec<String> =
        serde_json::from_value(answer.body["warnings"].clone()).unwrap();
    let used = |warnings: &[String]| -> Vec<String> {
        warnings
            .iter()
            .filter(|w| !w.starts_with("fields not used"))
            .cloned()
            .collect()
    };
    assert_eq!(used(&json_warnings), used(&grpc.warnings));
    assert_eq!(outside(&json_warnings), warned);

    // A batch: only the lead with the numbers outside is warned about.
    let batch = client
        .score_leads(pb::ScoreLeadsRequest {
            leads: vec![lead.clone(), original.clone()],
            explain: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(outside(&batch[0].warnings), warned);
    assert!(outside(&batch[1].warnings).is_empty(), "{:?}", batch[1]);

    // Counted per attribute: three leads each had both numbers outside; the counter of a number
    // that never was is exported at 0 from the model's load on.
    let metrics = server.metrics().await;
    let counted = |attribute: &str| {
        metric_value(
            &metrics,
            &format!(r#"leadscore_out_of_range_values_total{{attribute="{attribute}"}}"#),
        )
    };
    assert_eq!(counted(high), 3.0);
    assert_eq!(counted(low), 3.0);
    assert!(
        metrics.contains(&format!(
            "leadscore_out_of_range_values_total{{attribute=\"{steady}\"}} 0"
        )),
        "{metrics}"
    );
    server.stop().await;
}
