//! The gRPC server over real sockets: each test binds `127.0.0.1:0`, runs `server::run` with a
//! registry in its own temporary directory, and talks to it with tonic clients.
//!
//! Models are trained once per test binary on `leadscore sample` data (3000 rows) and copied
//! into each test's registry.

use leadscore::data::read_csv;
use leadscore::model::{Model, ModelArtifact, Scored};
use leadscore::registry::Registry;
use leadscore::server::pb;
use leadscore::server::pb::field_value::Kind as ValueKind;
use leadscore::server::pb::lead_scoring_client::LeadScoringClient;
use leadscore::server::predlog::PredictionLogConfig;
use leadscore::server::{self, Config, ServerError, TlsIdentity};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic::{Code, Request};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_types::StatusExt;

pub(crate) const SERVICE: &str = "leadscore.v1.LeadScoring";

// ---------------------------------------------------------------------------------------------
// Fixtures

pub(crate) struct Fixture {
    _dir: TempDir,
    /// The sample CSV the models were trained on.
    pub(crate) data: PathBuf,
    /// Two versions trained on different samples, and their loaded models.
    pub(crate) a: ModelArtifact,
    pub(crate) b: ModelArtifact,
    /// A model with a shaped numeric attribute (`days_since_last_touch`), trained on leads
    /// whose effect of it is curved (`sample --curved`): it scores the rows of `data` too.
    pub(crate) shaped: ModelArtifact,
}

pub(crate) fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let train = |seed: u64, version: &str| {
            let data = dir.path().join(format!("leads-{seed}.csv"));
            leadscore::sample::write_sample(&data, 3000, seed).unwrap();
            let mut config = leadscore::train::TrainConfig::new(&data, "converted");
            config.id = Some("lead_id".into());
            config.date = Some("created_at".into());
            let mut trained = leadscore::train::train(&config, &mut |_| {}).unwrap();
            trained.artifact.model_version = version.to_string();
            (data, trained.artifact)
        };
        let (data, a) = train(7, "test-a");
        let (_, b) = train(8, "test-b");
        let curved = dir.path().join("curved.csv");
        let options = leadscore::sample::SampleOptions {
            rows: 20_000,
            seed: 9,
            curved: true,
            ..Default::default()
        };
        leadscore::sample::write(&curved, &options).unwrap();
        let mut config = leadscore::train::TrainConfig::new(&curved, "converted");
        config.id = Some("lead_id".into());
        config.encoder.shapes = true;
        let mut shaped = leadscore::train::train(&config, &mut |_| {})
            .unwrap()
            .artifact;
        assert!(shaped.encoder.has_shapes(), "{:?}", shaped.shapes);
        shaped.model_version = "test-shaped".into();
        Fixture {
            _dir: dir,
            data,
            a,
            b,
            shaped,
        }
    })
}

/// A registry holding `versions`, with `current` in service.
pub(crate) fn registry(versions: &[&ModelArtifact], current: Option<&str>) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::new(dir.path());
    for artifact in versions {
        registry.write_version(artifact).unwrap();
    }
    if let Some(version) = current {
        registry.promote(version).unwrap();
    }
    dir
}

pub(crate) fn model(artifact: &ModelArtifact) -> Model {
    Model::new(artifact.clone()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// A running server

pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    pub(crate) metrics_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), ServerError>>,
    models: PathBuf,
}

pub(crate) async fn start(models: &Path, tweak: impl FnOnce(&mut Config)) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (addr, metrics_addr) = (
        listener.local_addr().unwrap(),
        metrics.local_addr().unwrap(),
    );
    let mut config = Config::new(models);
    config.reload_interval = Duration::from_millis(25);
    config.metrics_listener = Some(metrics);
    tweak(&mut config);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server::run(listener, config, async move {
        let _ = stopped.await;
    }));
    Running {
        addr,
        metrics_addr,
        stop: Some(stop),
        task,
        models: models.to_path_buf(),
    }
}

/// Starts a server on `models` and waits until it serves.
pub(crate) async fn start_serving(models: &Path, tweak: impl FnOnce(&mut Config)) -> Running {
    let server = start(models, tweak).await;
    server.wait_for_health(ServingStatus::Serving).await;
    server
}

impl Running {
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) async fn channel(&self) -> Channel {
        Channel::from_shared(self.url())
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub(crate) async fn client(&self) -> LeadScoringClient<Channel> {
        LeadScoringClient::new(self.channel().await)
    }

    pub(crate) async fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel().await)
    }

    pub(crate) async fn wait_for_health(&self, wanted: ServingStatus) {
        let mut stream = self
            .health()
            .await
            .watch(HealthCheckRequest {
                service: SERVICE.into(),
            })
            .await
            .unwrap()
            .into_inner();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let next = tokio::time::timeout_at(deadline.into(), stream.message())
                .await
                .expect("health did not reach the wanted status in time")
                .unwrap()
                .unwrap();
            if next.status == wanted as i32 {
                return;
            }
        }
    }

    /// Signals shutdown and waits for `run` to return.
    pub(crate) async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("the server did not stop in time")
            .unwrap()
            .unwrap();
    }

    pub(crate) async fn metrics(&self) -> String {
        http_get(self.metrics_addr, "/metrics").await
    }

    pub(crate) async fn metric(&self, name: &str) -> f64 {
        metric_value(&self.metrics().await, name)
    }
}

pub(crate) async fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

/// The value of one sample line (`name{labels}` exactly as rendered), 0 when absent.
pub(crate) fn metric_value(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Polls `condition` until it holds (for effects with no event to wait on, e.g. a reload
/// refused); fails after 20 s.
pub(crate) async fn eventually<F: Future<Output = bool>>(
    what: &str,
    mut condition: impl FnMut() -> F,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Leads

pub(crate) fn text(value: &str) -> pb::FieldValue {
    pb::FieldValue {
        kind: Some(ValueKind::Text(value.into())),
    }
}

pub(crate) fn number(value: f64) -> pb::FieldValue {
    pb::FieldValue {
        kind: Some(ValueKind::Number(value)),
    }
}

/// Every row of the sample CSV as a lead with every column as text (as a CRM exports them),
/// with the library's score of the same row.
pub(crate) fn csv_leads(model: &Model, explain: usize) -> Vec<(pb::Lead, Scored)> {
    let table = read_csv(&fixture().data).unwrap();
    let scored = leadscore::score::score_table(model, &table, Some("lead_id"), explain).unwrap();
    let by_id: HashMap<&str, &Scored> = scored
        .rows
        .iter()
        .map(|r| (r.lead_id.as_str(), &r.scored))
        .collect();
    let id = table.column_index("lead_id").unwrap();
    (0..table.rows())
        .map(|row| {
            let lead_id = table.column(id).get(row).to_string();
            let fields = table
                .headers
                .iter()
                .enumerate()
                .filter(|&(c, _)| c != id)
                .map(|(c, name)| (name.clone(), text(table.column(c).get(row))))
                .collect();
            let expected = by_id[lead_id.as_str()].clone();
            (pb::Lead { lead_id, fields }, expected)
        })
        .collect()
}

pub(crate) fn assert_same_score(got: &pb::ScoreLeadResponse, expected: &Scored, version: &str) {
    let id = &got.lead_id;
    assert_eq!(got.probability, expected.probability, "{id}: probability");
    assert_eq!(got.score, expected.score, "{id}: score");
    assert_eq!(got.percentile, expected.percentile, "{id}: percentile");
    assert_eq!(got.grade, expected.grade, "{id}: grade");
    assert_eq!(got.model_version, version);
    let factors: Vec<_> = expected
        .factors
        .iter()
        .map(|f| pb::Factor {
            field: f.field.clone(),
            value: f.value.clone(),
            log_odds: f.log_odds,
            closure_rate: f.closure_rate,
            support: f.support,
        })
        .collect();
    assert_eq!(got.factors, factors, "{id}: factors");
    for warning in &expected.warnings {
        assert!(got.warnings.contains(warning), "{id}: missing {warning:?}");
    }
}

pub(crate) fn score_request(lead: pb::Lead, explain: u32) -> pb::ScoreLeadRequest {
    pb::ScoreLeadRequest {
        lead: Some(lead),
        explain,
    }
}

/// The first attribute of the model of each kind.
pub(crate) fn attribute_of_kind(model: &Model, kind: &str) -> String {
    model
        .encoder()
        .attributes
        .iter()
        .find(|a| a.kind().to_string() == kind)
        .unwrap_or_else(|| panic!("the sample model has a {kind} attribute"))
        .name
        .clone()
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scores_match_batch_scoring_of_the_same_rows() {
    let f = fixture();
    let models = registry(&[&f.a], Some("test-a"));
    let server = start_serving(models.path(), |_| {}).await;
    let mut client = server.client().await;
    // As `leadscore score` does: the model as loaded from the registry.
    let model = Registry::new(models.path()).load("test-a").unwrap();
    let leads = csv_leads(&model, 3);

    for (lead, expected) in leads.iter().take(100) {
        let got = client
            .score_lead(score_request(lead.clone(), 3))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.lead_id, lead.lead_id);
        assert_same_score(&got, expected, "test-a");
        // The outcome and date columns are not features: ignored with a warning.
        assert!(
            got.warnings.iter().any(|w| w
                .starts_with("fields not used by model test-a, ignored: ")
                && w.contains("converted")),
            "{:?}",
            got.warnings
        );
    }

    // A batch: the same numbers, in the order of the leads.
    let batch: Vec<_> = leads.iter().skip(100).take(500).collect();
    let results = client
        .score_leads(pb::ScoreLeadsRequest {
            leads: batch.iter().map(|(lead, _)| lead.clone()).collect(),
            explain: 2,
        })
        .await
        .unwrap()
        .into_inner()
        .results;
    assert_eq!(results.len(), batch.len());
    let with_two: HashMap<String, Scored> = csv_leads(&model, 2)
        .into_iter()
        .map(|(lead, scored)| (lead.lead_id, scored))
        .collect();
    for (got, (lead, _)) in results.iter().zip(&batch) {
        assert_eq!(got.lead_id, lead.lead_id);
        assert_same_score(got, &with_two[&lead.lead_id], "test-a");
    }

    // Numbers sent as numbers and flags as flags score as their text does.
    let numeric = attribute_of_kind(&model, "numeric");
    let (lead, expected) = leads
        .iter()
        .find(|(lead, _)| match &lead.fields[&numeric].kind {
            Some(ValueKind::Text(t)) => t.trim().parse::<f64>().is_ok(),
            _ => false,
        })
        .unwrap();
    let mut typed = lead.clone();
    let Some(ValueKind::Text(t)) = &lead.fields[&numeric].kind else {
        unreachable!()
    };
    typed
        .fields
        .insert(numeric.clone(), number(t.trim().parse().unwrap()));
    let got = client
        .score_lead(score_request(typed, 3))
        .await
        .unwrap()
        .into_inner();
    assert_same_score(&got, expected, "test-a");

    // Metrics saw it all.
    let metrics = server.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            r#"leadscore_grpc_requests_total{code="OK",method="ScoreLead",protocol="grpc"}"#
        ),
        101.0
    );
    assert_eq!(
        metric_value(&metrics, "leadscore_leads_scored_total"),
        601.0
    );
    assert_eq!(
        metric_value(&metrics, "leadscore_served_probability_count"),
        601.0
    );
    assert_eq!(
        metric_value(
            &metrics,
            r#"leadscore_model_version_info{version="test-a"}"#
        ),
        1.0
    );
    assert!(metrics.contains(
        r#"leadscore_grpc_request_duration_seconds_bucket{method="ScoreLeads",protocol="grpc",le="#
    ));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_values_are_invalid_argument_naming_the_field() {
    let f = fixture();
    let models = registry(&[&f.a], Some("test-a"));
    let server = start_serving(models.path(), |config| config.max_batch = 10).await;
    let mut client = server.client().await;
    let model = model(&f.a);
    let numeric = attribute_of_kind(&model, "numeric");
    let boolean = attribute_of_kind(&model, "boolean");
    let lead = |name: &str, value: pb::FieldValue| pb::Lead {
        lead_id: "x".into(),
        fields: [(name.to_string(), value)].into_iter().collect(),
    };

    let bad = [
        (numeric.as_str(), text("twelve")),
        (numeric.as_str(), text("inf")),
        (numeric.as_str(), text("NaN")),
        (numeric.as_str(), text("-Infinity")),
        (numeric.as_str(), number(f64::NAN)),
        (numeric.as_str(), number(f64::INFINITY)),
        (numeric.as_str(), number(f64::NEG_INFINITY)),
        (boolean.as_str(), text("maybe")),
        (boolean.as_str(), number(2.0)),
    ];
    for (name, value) in bad {
        let status = client
            .score_lead(score_request(lead(name, value.clone()), 0))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{name} = {value:?}");
        assert!(status.message().contains(name), "{}", status.message());
        let details = status.get_error_details();
        let violations = &details
            .bad_request()
            .expect("BadRequest details")
            .field_violations;
        assert_eq!(violations[0].field, format!("lead.fields[{name}]"));
    }

    // In a batch, the violation says which lead.
    let status = client
        .score_leads(pb::ScoreLeadsRequest {
            leads: vec![lead(&numeric, number(3.0)), lead(&numeric, text("lots"))],
            explain: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let details = status.get_error_details();
    assert_eq!(
        details.bad_request().unwrap().field_violations[0].field,
        format!("leads[1].fields[{numeric}]")
    );

    // No lead at all; a batch over --max-batch.
    let status = client
        .score_lead(pb::ScoreLeadRequest {
            lead: None,
            explain: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status
            .get_error_details()
            .bad_request()
            .unwrap()
            .field_violations[0]
            .field,
        "lead"
    );
    let status = client
        .score_leads(pb::ScoreLeadsRequest {
            leads: vec![lead(&numeric, number(1.0)); 11],
            explain: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("at most 10"),
        "{}",
        status.message()
    );
    let ten = client
        .score_leads(pb::ScoreLeadsRequest {
            leads: vec![lead(&numeric, number(1.0)); 10],
            explain: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ten.results.len(), 10);

    // Bytes that are not a ScoreLeadRequest.
    let mut raw = tonic::client::Grpc::new(server.channel().await);
    raw.ready().await.unwrap();
    let status = raw
        .unary(
            Request::new(prost::bytes::Bytes::from_static(&[0x0a, 0x05, 0x01])),
            "/leadscore.v1.LeadScoring/ScoreLead".parse().unwrap(),
            leadscore::server::codec::RawCodec,
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    // Tolerated, with warnings: an unknown field, a missing field, an unseen category, and an
    // absurd explain.
    let categorical = attribute_of_kind(&model, "categorical");
    let got = client
        .score_lead(score_request(
            pb::Lead {
                lead_id: "y".into(),
                fields: [
                    ("favourite colour".to_string(), text("teal")),
                    (categorical.clone(), text("carrier pigeon")),
                    (numeric.clone(), text(" 4 ")),
                ]
                .into_iter()
                .collect(),
            },
            u32::MAX,
        ))
        .await
        .unwrap()
        .into_inner();
    let warnings = got.warnings.join("\n");
    assert!(warnings.contains("fields not used by model test-a, ignored: favourite colour"));
    assert!(warnings.contains(&format!(
        "{categorical}: category \"carrier pigeon\" not seen"
    )));
    assert!(warnings.contains(&format!("{boolean}: missing value imputed")));
    assert!(got.probability > 0.0 && got.probability < 1.0);
    assert!(!got.factors.is_empty());

    // Text that the CSV rules read as missing (`NA`, `null`) is missing here too, so a lead
    // scores as its CSV row does.
    let got = client
        .score_lead(score_request(lead(&numeric, text("null")), 0))
        .await
        .unwrap()
        .into_inner();
    assert!(
        got.warnings
            .contains(&format!("{numeric}: missing value imputed"))
    );

    let metrics = server.metrics().await;
    assert_eq!(
        metric_value(
            &metrics,
            r#"leadscore_grpc_errors_total{code="INVALID_ARGUMENT",method="ScoreLead",protocol="grpc"}"#
        ),
        11.0
    );
    server.stop().await;
}

/// Sends raw bytes to a `LeadScoring` method.
pub(crate) async fn raw_call(
    server: &Running,
    method: &str,
    body: Vec<u8>,
) -> Result<prost::bytes::Bytes, tonic::Status> {
    let mut raw = tonic::client::Grpc::new(server.channel().await);
    raw.ready().await.unwrap();
    raw.unary(
        Request::new(prost::bytes::Bytes::from(body)),
        format!("/leadscore.v1.LeadScoring/{method}")
            .parse()
            .unwrap(),
        leadscore::server::codec::RawCodec,
    )
    .await
    .map(tonic::Response::into_inner)
}

pub(crate) fn field_violation(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .bad_request()
        .expect("BadRequest details")
        .field_violations[0]
        .field
        .clone()
}

/// Requests near the size limit built to make the server allocate or echo a lot: each is
/// refused (or answered) with a short message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_input_costs_little_and_is_echoed_briefly() {
    use prost::Message;
    let f = fixture();
    let models = registry(&[&f.a], Some("test-a"));
    let server = start_serving(models.path(), |_| {}).await;
    let mut client = server.client().await;
    let model = model(&f.a);
    let numeric = attribute_of_kind(&model, "numeric");
    let categorical = attribute_of_kind(&model, "categorical");
    // The request limit at the default --max-batch: 1000 × 16 KiB.
    let almost_16_mib = 1000 * 16 * 1024 - 64;

    // ~8M empty leads: refused at the 1001st, with the usual status.
    let status = raw_call(
        &server,
        "ScoreLeads",
        [0x0a, 0x00].repeat(almost_16_mib / 2),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("at most 1000"),
        "{}",
        status.message()
    );
    assert_eq!(field_violation(&status), "leads");
    // One byte over the request limit: refused by tonic before it is read.
    let status = raw_call(&server, "ScoreLeads", vec![0; 1000 * 16 * 1024 + 1])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{}", status.message());

    // ~8M empty map entries (all named ""), then 40 distinct unused names: one short warning.
    // (And one field the model knows: a lead with none is refused.)
    let mut lead = [0x12, 0x00].repeat(almost_16_mib / 2 - 1024);
    for i in 0..40 {
        let name = format!("unused {i:02}");
        lead.extend([0x12, name.len() as u8 + 2, 0x0a, name.len() as u8]);
        lead.extend(name.as_bytes());
    }
    lead.extend(
        pb::Lead {
            lead_id: String::new(),
            fields: [(numeric.clone(), number(3.0))].into_iter().collect(),
        }
        .encode_to_vec(),
    );
    let mut request = vec![0x0a];
    prost::encoding::encode_varint(lead.len() as u64, &mut request);
    request.extend(&lead);
    let response = raw_call(&server, "ScoreLead", request).await.unwrap();
    let response = pb::ScoreLeadResponse::decode(response).unwrap();
    let warning = &response.warnings[0];
    assert!(
        warning.len() < 400,
        "{} bytes: {warning:.400}",
        warning.len()
    );
    assert!(
        warning.starts_with("fields not used by model test-a, ignored: , unused 00, unused 01,"),
        "{warning}"
    );
    assert!(warning.ends_with("unused 14 and 25 more"), "{warning}");

    // A 1 MiB text: the error and the warning show its first 64 characters.
    let long = "x".repeat(1 << 20);
    let lead_with = |name: &str, value: pb::FieldValue| pb::Lead {
        lead_id: "long".into(),
        fields: [(name.to_string(), value)].into_iter().collect(),
    };
    let status = client
        .score_lead(score_request(lead_with(&numeric, text(&long)), 0))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let shown = format!("\"{}\"… ({} bytes)", &long[..64], long.len());
    assert!(status.message().len() < 300, "{:.300}", status.message());
    assert!(status.message().contains(&shown), "{}", status.message());
    let response = client
        .score_lead(score_request(lead_with(&categorical, text(&long)), 0))
        .await
        .unwrap()
        .into_inner();
    let warnings = response.warnings.join("\n");
    assert!(warnings.len() < 1000, "{warnings:.1000}");
    assert!(
        warnings.contains(&format!("{categorical}: category {shown} not seen")),
        "{warnings}"
    );
    // So is a long unused field name (beside a field the model knows).
    let mut with_long_name = lead_with(&long, text("1"));
    with_long_name.fields.insert(numeric.clone(), number(3.0));
    let response = client
        .score_lead(score_request(with_long_name, 0))
        .await
        .unwrap()
        .into_inner();
    assert!(
        response.warnings[0].ends_with(&format!("ignored: {}…", &long[..64])),
        "{:.200}",
        response.warnings[0]
    );

    // Lead ids: 256 bytes are fine, 257 are refused, naming the lead.
    let with_id = |bytes: usize| pb::Lead {
        lead_id: "é".repeat(bytes / 2) + &"x".repeat(bytes % 2),
        fields: [(numeric.clone(), number(3.0))].into_iter().collect(),
    };
    let ok = client
        .score_lead(score_request(with_id(256), 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.lead_id.len(), 256);
    let status = client
        .score_lead(score_request(with_id(257), 0))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(field_violation(&status), "lead.lead_id");
    assert!(
        status.message().contains("at most 256"),
        "{}",
        status.message()
    );
    let status = client
        .score_leads(pb::ScoreLeadsRequest {
            leads: vec![with_id(3), with_id(100_000)],
            explain: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(field_violation(&status), "leads[1].lead_id");
    assert!(status.message().len() < 200, "{:.200}", status.message());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_info_describes_the_model_in_service() {
    let f = fixture();
    let models = registry(&[&f.a], Some("test-a"));
    let server = start_serving(models.path(), |_| {}).await;
    let info = server
        .client()
        .await
        .get_model_info(pb::GetModelInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.model_version, "test-a");
    assert_eq!(info.trained_at, f.a.trained_at);
    assert_eq!(info.fields.len(), f.a.encoder.attributes.len());
    for (field, attribute) in info.fields.iter().zip(&f.a.encoder.attributes) {
        assert_eq!(field.name, attribute.name);
        assert_eq!(field.kind, attribute.kind().to_string());
    }
    assert!(info.fields.iter().any(|f| !f.categories.is_empty()));
    let holdout = info.holdout.unwrap();
    assert_eq!(holdout.rows, f.a.holdout.metrics.leads);
    assert_eq!(Some(holdout.roc_auc), f.a.holdout.metrics.roc_auc);
    assert_eq!(info.training_rows, f.a.data.training_rows);
    assert_eq!(info.grade_cutoffs[0].grade, "A");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_not_serving_until_a_model_loads_and_from_shutdown() {
    let f = fixture();
    let models = registry(&[&f.a], None);
    let server = start(models.path(), |_| {}).await;
    let mut health = server.health().await;
    for service in ["", SERVICE] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            status.status,
            ServingStatus::NotServing as i32,
            "{service:?}"
        );
    }
    let status = server
        .client()
        .await
        .score_lead(score_request(pb::Lead::default(), 0))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status.message().contains("no model is loaded yet"),
        "{}",
        status.message()
    );

    // A model is promoted: the server picks it up and turns SERVING.
    Registry::new(models.path()).promote("test-a").unwrap();
    server.wait_for_health(ServingStatus::Serving).await;
    let overall = health
        .check(HealthCheckRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(overall.status, ServingStatus::Serving as i32);

    // Shutdown: a watcher (a call in flight) is told NOT_SERVING before the server stops.
    let mut watch = health
        .watch(HealthCheckRequest {
            service: SERVICE.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first: HealthCheckResponse = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);
    let Running { stop, task, .. } = server;
    stop.unwrap().send(()).unwrap();
    let next = watch.message().await.unwrap().unwrap();
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    drop(watch);
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// A version directory copied under another name serves under that name, loaded once: the
/// watcher compares `CURRENT` with the name it loaded, not with the artifact's `model_version`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_renamed_on_disk_is_loaded_once() {
    let f = fixture();
    let models = registry(&[&f.a], Some("test-a"));
    let renamed = models.path().join("renamed-a");
    std::fs::create_dir(&renamed).unwrap();
    for entry in std::fs::read_dir(models.path().join("test-a")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), renamed.join(entry.file_name())).unwrap();
    }
    let server = start_serving(models.path(), |_| {}).await;
    let ok = r#"leadscore_model_reloads_total{result="ok"}"#;
    assert_eq!(server.metric(ok).await, 1.0);
    Registry::new(models.path()).promote("renamed-a").unwrap();
    let version_info = r#"leadscore_model_version_info{version="renamed-a"}"#;
    eventually("the renamed version in service", || async {
        server.metric(version_info).await == 1.0
    })
    .await;
    // Twenty reload intervals (25 ms each) later, still exactly one more load.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server.metric(ok).await, 2.0);
    let info = server
        .client()
        .await
        .get_model_info(pb::GetModelInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.model_version, "test-a", "the artifact's own version");
    server.stop().await;
}

/// The services a server reflection client of version `$version` (`v1`, `v1alpha`: distinct
/// generated types, hence a macro) lists over `$channel`, sorted.
macro_rules! list_services {
    ($version:ident, $channel:expr) => {{
        use tonic_reflection::pb::$version::ServerReflectionRequest;
        use tonic_reflection::pb::$version::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::$version::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::$version::server_reflection_response::MessageResponse;
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut responses = ServerReflectionClient::new($channel)
            .server_reflection_info(tokio_stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let response = responses.message().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
            panic!("unexpected reflection answer: {response:?}")
        };
        let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        names.sort();
        names
    }};
}

/// Both versions of server reflection: grpcurl speaks v1, Python's grpcio-reflection and other
/// tools only v1alpha.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_services_in_both_versions() {
    let f = fixture();
    let models = registry(&[&f.a], Some("test-a"));
    let server = start_serving(models.path(), |_| {}).await;
    let expected = [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        SERVICE,
    ];
    assert_eq!(list_services!(v1, server.channel().await), expected);
    assert_eq!(list_services!(v1alpha, server.channel().await), expected);
    server.stop().await;
}

/// Clients scoring in a loop until told to stop; counts failures and the versions they saw.
struct Load {
    stop: Arc<AtomicBool>,
    calls: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    versions: Arc<Mutex<HashMap<String, u64>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn load(server: &Running, clients: usize, lead: pb::Lead) -> Load {
    let (stop, calls) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let failures = Arc::new(Mutex::new(Vec::new()));
    let versions = Arc::new(Mutex::new(HashMap::new()));
    let mut tasks = Vec::new();
    for i in 0..clients {
        let mut client = server.client().await;
        let (stop, calls, failures, versions, lead) = (
            stop.clone(),
            calls.clone(),
            failures.clone(),
            versions.clone(),
            lead.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let result = if i % 2 == 0 {
                    client
                        .score_lead(score_request(lead.clone(), 3))
                        .await
                        .map(|r| r.into_inner().model_version)
                } else {
                    client
                        .score_leads(pb::ScoreLeadsRequest {
                            leads: vec![lead.clone(); 20],
                            explain: 3,
                        })
                        .await
                        .map(|r| r.into_inner().results[19].model_version.clone())
                };
                calls.fetch_add(1, Ordering::Relaxed);
                match result {
                    Ok(version) => *versions.lock().unwrap().entry(version).or_default() += 1,
                    Err(status) => failures.lock().unwrap().push(status.to_string()),
                }
            }
        }));
    }
    Load {
        stop,
        calls,
        failures,
        versions,
        tasks,
    }
}

impl Load {
    fn seen(&self, version: &str) -> u64 {
        self.versions
            .lock()
            .unwrap()
            .get(version)
            .copied()
            .unwrap_or(0)
    }

    async fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        let failures = self.failures.lock().unwrap().clone();
        (self.calls.load(Ordering::Relaxed), failures)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_fails_no_call_and_refuses_a_corrupt_version() {
    let f = fixture();
    let models = registry(&[&f.a, &f.b], Some("test-a"));
    let server = start_serving(models.path(), |_| {}).await;
    let (lead, _) = csv_leads(&model(&f.a), 3).swap_remove(0);
    let load = load(&server, 6, lead).await;
    eventually("calls scored by test-a", || async {
        load.seen("test-a") >= 20
    })
    .await;

    // A nightly job promotes test-b.
    Registry::new(&server.models).promote("test-b").unwrap();
    eventually("calls scored by test-b", || async {
        load.seen("test-b") >= 20
    })
    .await;

    // Then a broken version: CURRENT names it (written directly, as a crashed or buggy job
    // might; `promote` itself refuses versions that do not load).
    let broken = server.models.join("test-broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(
        broken.join("model.json"),
        b"{\"format_version\": 1, \"trunc",
    )
    .unwrap();
    leadscore::fsutil::write_atomic(&server.models.join("CURRENT"), b"test-broken\n").unwrap();
    eventually("the corrupt version to be refused", || async {
        server
            .metric(r#"leadscore_model_reloads_total{result="failed"}"#)
            .await
            == 1.0
    })
    .await;
    let before = load.seen("test-b");
    eventually("more calls after the refusal", || async {
        load.seen("test-b") >= before + 20
    })
    .await;
    let (calls, failures) = {
        let seen_after_refusal = load.seen("test-broken");
        assert_eq!(seen_after_refusal, 0);
        load.finish().await
    };
    assert!(
        failures.is_empty(),
        "{} of {calls} calls failed: {failures:?}",
        failures.len()
    );
    let mut health = server.health().await;
    let status = health
        .check(HealthCheckRequest {
            service: SERVICE.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.status, ServingStatus::Serving as i32);
    let metrics = server.metrics().await;
    assert_eq!(
        metric_value(&metrics, r#"leadscore_model_reloads_total{result="ok"}"#),
        2.0
    );
    assert_eq!(
        metric_value(
            &metrics,
            r#"leadscore_model_version_info{version="test-b"}"#
        ),
        1.0
    );
    // Refused once, not on every poll.
    assert_eq!(
        metric_value(
            &metrics,
            r#"leadscore_model_reloads_total{result="failed"}"#
        ),
        1.0
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_without_the_bearer_token_are_unauthenticated() {
    let f = fixture();
    let models = registry(&[&f.a], Some("test-a"));
    let server = start_serving(models.path(), |config| {
        config.auth_token = Some("s3cret-token".into());
    })
    .await;
    let mut client = server.client().await;
    let request = |token: Option<&str>| {
        let mut request = Request::new(pb::GetModelInfoRequest {});
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("authorization", token.parse().unwrap());
        }
        request
    };
    for token in [
        None,
        Some("Bearer wrong"),
        Some("s3cret-token"),
        Some("Bearer s3cret-tokenx"),
    ] {
        let status = client.get_model_info(request(token)).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{token:?}");
        assert!(!status.message().contains("s3cret"));
    }
    let status = client
        .score_lead(score_request(pb::Lead::default(), 0))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    // The scheme is case-insensitive (RFC 7235).
    for token in [
        "Bearer s3cret-token",
        "bearer s3cret-token",
        "BEARER s3cret-token",
    ] {
        let info = client
            .get_model_info(request(Some(token)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(info.model_version, "test-a");
    }

    // Reflection needs the token too; health stays open for load balancers.
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_request::MessageRequest,
    };
    let status = ServerReflectionClient::new(server.channel().await)
        .server_reflection_info(tokio_stream::iter([ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        }]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        server
            .health()
            .await
            .check(HealthCheckRequest::default())
            .await
            .is_ok()
    );

    assert_eq!(
        server
            .metric(r#"leadscore_grpc_errors_total{code="UNAUTHENTICATED",method="GetModelInfo",protocol="grpc"}"#)
            .await,
        4.0
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_with_the_configured_certificate() {
    use tonic::transport::{Certificate, ClientTlsConfig};
    let f = fixture();
    let models = registry(&[&f.a], Some("test-a"));
    let tls_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
    let read = |name: &str| std::fs::read(tls_dir.join(name)).unwrap();
    let server = start(models.path(), |config| {
        config.tls = Some(TlsIdentity {
            cert_pem: read("server.pem"),
            key_pem: read("server.key"),
        });
    })
    .await;
    let channel = Channel::from_shared(format!("https://localhost:{}", server.addr.port()))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(read("ca.pem")))
                .domain_name("localhost"),
        )
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel.clone());
    let mut stream = health
        .watch(HealthCheckRequest {
            service: SERVICE.into(),
        })
        .await
        .unwrap()
        .into_inner();
    while stream.message().await.unwrap().unwrap().status != ServingStatus::Serving as i32 {}
    let info = LeadScoringClient::new(channel)
        .get_model_info(pb::GetModelInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.model_version, "test-a");
    drop(stream);

    // A plain-text client gets nowhere.
    let plain = Channel::from_shared(server.url()).unwrap().connect().await;
    if let Ok(channel) = plain {
        let result = LeadScoringClient::new(channel)
            .get_model_info(pb::GetModelInfoRequest {})
            .await;
        assert!(result.is_err());
    }
    server.stop().await;
}

pub(crate) fn predictions(path: &Path) -> Vec<(String, String, String, f64, u32, String)> {
    let db = rusqlite::Connection::open(path).unwrap();
    let mut query = db
        .prepare(
            "SELECT lead_id, scored_at, model_version, probability, score, grade FROM predictions \
             ORDER BY rowid",
        )
        .unwrap();
    query
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prediction_log_holds_every_served_score_after_shutdown() {
    let f = fixture();
    let models = registry(&[&f.a], Some("test-a"));
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("predictions.sqlite");
    let server = start_serving(models.path(), |config| {
        config.prediction_log = Some(PredictionLogConfig::new(&log));
    })
    .await;
    let mut client = server.client().await;
    let leads = csv_leads(&model(&f.a), 0);
    let mut served = Vec::new();
    for (lead, _) in leads.iter().take(5) {
        served.push(
            client
                .score_lead(score_request(lead.clone(), 0))
                .await
                .unwrap()
                .into_inner(),
        );
    }
    served.extend(
        client
            .score_leads(pb::ScoreLeadsRequest {
                leads: leads
                    .iter()
                    .skip(5)
                    .take(300)
                    .map(|(l, _)| l.clone())
                    .collect(),
                explain: 1,
            })
            .await
            .unwrap()
            .into_inner()
            .results,
    );
    // A refused call logs nothing.
    let mut bad = leads[0].0.clone();
    bad.fields
        .insert(attribute_of_kind(&model(&f.a), "numeric"), number(f64::NAN));
    assert!(client.score_lead(score_request(bad, 0)).await.is_err());
    server.stop().await;

    let rows = predictions(&log);
    assert_eq!(rows.len(), served.len());
    for (row, response) in rows.iter().zip(&served) {
        let (lead_id, scored_at, version, probability, score, grade) = row;
        assert_eq!(lead_id, &response.lead_id);
        assert_eq!(version, "test-a");
        assert_eq!(*probability, response.probability);
        assert_eq!(*score, response.score);
        assert_eq!(grade, &response.grade);
        let at = chrono::DateTime::parse_from_rfc3339(scored_at).unwrap();
        assert_eq!(at.offset().local_minus_utc(), 0);
        assert!(scored_at.ends_with('Z'), "{scored_at}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prediction_log_counts_what_it_cannot_write() {
    let f = fixture();
    let models = registry(&[&f.a], Some("test-a"));
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("predictions.sqlite");
    let server = start_serving(models.path(), |config| {
        let mut log = PredictionLogConfig::new(&log);
        log.capacity = 2;
        log.busy_timeout = Duration::from_millis(50);
        config.prediction_log = Some(log);
    })
    .await;
    let mut client = server.client().await;
    let (lead, _) = csv_leads(&model(&f.a), 0).swap_remove(0);

    // Another process holds the database locked: writes fail, the queue fills.
    let blocker = rusqlite::Connection::open(&log).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let mut served = 0;
    for _ in 0..10 {
        client
            .score_leads(pb::ScoreLeadsRequest {
                leads: vec![lead.clone(); 5],
                explain: 0,
            })
            .await
            .unwrap();
        served += 5;
    }
    eventually("a failed write to be counted", || async {
        server
            .metric(r#"leadscore_prediction_log_dropped_total{reason="write_failed"}"#)
            .await
            > 0.0
    })
    .await;
    let metrics = server.metrics().await;
    assert!(
        metric_value(
            &metrics,
            r#"leadscore_prediction_log_dropped_total{reason="queue_full"}"#
        ) > 0.0,
        "a queue of 2 cannot hold 50 predictions while the writer is stuck"
    );

    // The disk "recovers": later predictions are written again.
    blocker.execute_batch("COMMIT").unwrap();
    drop(blocker);
    for _ in 0..3 {
        client
            .score_lead(score_request(lead.clone(), 0))
            .await
            .unwrap();
        served += 1;
    }
    // Nothing is lost silently: every served score is written or counted as dropped.
    let accounted = || async {
        let metrics = server.metrics().await;
        let written = metric_value(&metrics, "leadscore_prediction_log_written_total");
        let dropped: f64 = ["queue_full", "write_failed", "closed"]
            .iter()
            .map(|reason| {
                metric_value(
                    &metrics,
                    &format!("leadscore_prediction_log_dropped_total{{reason=\"{reason}\"}}"),
                )
            })
            .sum();
        (written, dropped)
    };
    eventually("written + dropped to account for every score", || async {
        let (written, dropped) = accounted().await;
        written + dropped == served as f64
    })
    .await;
    let (written, _) = accounted().await;
    server.stop().await;
    let rows = predictions(&log).len();
    assert_eq!(rows as f64, written);
    assert!(
        rows >= 3,
        "the predictions after the lock was released are written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exposure_beyond_loopback_needs_auth_or_insecure() {
    let public: SocketAddr = "0.0.0.0:50051".parse().unwrap();
    let local: SocketAddr = "127.0.0.1:50051".parse().unwrap();
    assert_eq!(server::check_exposure(local, false, false, false), Ok(None));
    assert!(server::check_exposure(public, false, false, false).is_err());
    assert!(
        server::check_exposure(public, false, false, true)
            .unwrap()
            .is_some()
    );
    assert!(
        server::check_exposure(public, true, false, false)
            .unwrap()
            .is_some()
    );
    assert_eq!(server::check_exposure(public, true, true, false), Ok(None));
}
