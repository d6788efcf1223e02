//! `leadscore.v1.LeadScoring`: routes calls, checks auth, scores leads, records metrics and the
//! prediction log.
//!
//! This is written as a tower service rather than through the generated `LeadScoring` trait
//! because the score requests are read from their bytes ([`super::wire`]): the generated server
//! would first decode every lead's fields into a `HashMap`. Responses are the generated prost
//! messages, built in [`super::convert`].

use super::auth::BearerAuth;
use super::codec::ServerCodec;
use super::convert::{invalid_field, invalid_value, no_known_field, same_field, score_response};
use super::holder::{ModelHolder, Served};
use super::metrics::{Metrics, Protocol};
use super::pb;
use super::predlog::{Prediction, PredictionSender};
use super::wire::{self, Embedded};
use crate::encoder::{RawValue, echo_prefix};
use crate::model::Model;
use crate::names::Claims;
use prost::bytes::Bytes;
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tonic::codegen::{Body, BoxFuture, Service, StdError, http};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Code, Status};

/// The service's full name, as routed and as reported by health and reflection.
pub const SERVICE_NAME: &str = "leadscore.v1.LeadScoring";

/// What every call needs; shared by all connections.
pub struct Shared {
    /// The model in service, swapped by the reload watcher.
    pub holder: Arc<ModelHolder>,
    pub metrics: Arc<Metrics>,
    pub auth: BearerAuth,
    /// Where served scores go, when `--prediction-log` is on.
    pub predictions: Option<PredictionSender>,
    /// Most leads accepted in one `ScoreLeads` call.
    pub max_batch: usize,
    /// Largest request accepted, in bytes (tonic answers `OUT_OF_RANGE` above it).
    pub max_message_bytes: usize,
}

/// The `LeadScoring` service; cheap to clone (one per connection).
#[derive(Clone)]
pub struct LeadScoringService {
    shared: Arc<Shared>,
}

impl LeadScoringService {
    pub fn new(shared: Arc<Shared>) -> LeadScoringService {
        LeadScoringService { shared }
    }
}

impl NamedService for LeadScoringService {
    const NAME: &'static str = SERVICE_NAME;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    ScoreLead,
    ScoreLeads,
    GetModelInfo,
}

impl Method {
    fn from_path(path: &str) -> Option<Method> {
        match path.strip_prefix("/leadscore.v1.LeadScoring/")? {
            "ScoreLead" => Some(Method::ScoreLead),
            "ScoreLeads" => Some(Method::ScoreLeads),
            "GetModelInfo" => Some(Method::GetModelInfo),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Method::ScoreLead => "ScoreLead",
            Method::ScoreLeads => "ScoreLeads",
            Method::GetModelInfo => "GetModelInfo",
        }
    }
}

impl<B> Service<http::Request<B>> for LeadScoringService
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(async move {
            let started = Instant::now();
            let Some(method) = Method::from_path(request.uri().path()) else {
                return Ok(Status::unimplemented("no such method").into_http());
            };
            let response = match shared.auth.check_headers(request.headers()) {
                Err(status) => status.into_http(),
                Ok(()) => {
                    let limit = Some(shared.max_message_bytes);
                    match method {
                        Method::ScoreLead => {
                            Grpc::new(ServerCodec::<pb::ScoreLeadResponse>::default())
                                .apply_max_message_size_config(limit, None)
                                .unary(ScoreLead(shared.clone()), request)
                                .await
                        }
                        Method::ScoreLeads => {
                            Grpc::new(ServerCodec::<pb::ScoreLeadsResponse>::default())
                                .apply_max_message_size_config(limit, None)
                                .unary(ScoreLeads(shared.clone()), request)
                                .await
                        }
                        Method::GetModelInfo => {
                            Grpc::new(tonic_prost::ProstCodec::<
                                pb::ModelInfo,
                                pb::GetModelInfoRequest,
                            >::default())
                            .unary(GetModelInfo(shared.clone()), request)
                            .await
                        }
                    }
                }
            };
            // Errors are sent "trailers-only", with grpc-status among the headers; a response
            // without it is a success whose status follows in the trailers.
            let code = response
                .headers()
                .get("grpc-status")
                .map_or(Code::Ok, |v| Code::from_bytes(v.as_bytes()));
            let elapsed = started.elapsed();
            shared
                .metrics
                .record_call(method.name(), Protocol::Grpc, code, elapsed);
            tracing::debug!(method = method.name(), ?code, ?elapsed, "call");
            Ok(response)
        })
    }
}

struct ScoreLead(Arc<Shared>);
struct ScoreLeads(Arc<Shared>);
struct GetModelInfo(Arc<Shared>);

type Reply<T> = Ready<Result<tonic::Response<T>, Status>>;

impl UnaryService<Bytes> for ScoreLead {
    type Response = pb::ScoreLeadResponse;
    type Future = Reply<Self::Response>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        ready(
            self.0
                .score_lead(&request.into_inner())
                .map(tonic::Response::new),
        )
    }
}

impl UnaryService<Bytes> for ScoreLeads {
    type Response = pb::ScoreLeadsResponse;
    type Future = Reply<Self::Response>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        ready(
            self.0
                .score_leads(&request.into_inner())
                .map(tonic::Response::new),
        )
    }
}

impl UnaryService<pb::GetModelInfoRequest> for GetModelInfo {
    type Response = pb::ModelInfo;
    type Future = Reply<Self::Response>;

    fn call(&mut self, _request: tonic::Request<pb::GetModelInfoRequest>) -> Self::Future {
        ready(
            self.0
                .model()
                .map(|model| tonic::Response::new(pb::ModelInfo::from(&model.model))),
        )
    }
}

/// Longest `lead_id` accepted, in bytes: ids are stored in every prediction-log row, so their
/// size bounds the log queue's memory (CRM ids are far shorter).
pub const MAX_LEAD_ID_BYTES: usize = 256;

/// Most names of unused fields listed in a lead's warning; the rest are only counted.
const MAX_UNUSED_NAMES: usize = 16;

/// Per-call buffers, reused for every lead of a batch (by the gRPC and the JSON paths: both
/// read a lead into one with [`Scratch::start`], [`Scratch::set`] and [`Scratch::unused`], then
/// [`finish`] it, so they refuse and score alike).
pub(crate) struct Scratch<'a> {
    /// The value of each model attribute, by attribute index.
    values: Vec<RawValue<'a>>,
    /// The key that set each attribute's value: a second, different key denoting the same
    /// attribute is refused (the same key again replaces, as protobuf maps do).
    keys: Claims<&'a [u8]>,
    /// The first distinct names of fields the model does not use (at most
    /// [`MAX_UNUSED_NAMES`]): a request of a million unused entries must not become a warning
    /// listing a million names.
    unknown: Vec<&'a str>,
    /// Entries of unused fields beyond those listed in `unknown`.
    unknown_more: usize,
    /// The first pair of keys denoting one field, and the field; reported once the whole lead
    /// is read, so a malformed lead is refused as malformed whatever its keys.
    twice: Option<(&'a [u8], &'a [u8], usize)>,
    /// The lead's `age_days` and created-date fields, read only for a model that ages its
    /// scores (for any other model they are unused fields, as before).
    age_days: RawValue<'a>,
    created: RawValue<'a>,
}

/// Which age field a name denotes, for a model that ages its scores.
#[derive(Clone, Copy)]
pub(crate) enum AgeField {
    AgeDays,
    Created,
}

impl AgeField {
    /// The age field `name` denotes (by the one name rule), if the model ages its scores.
    pub(crate) fn of(model: &Model, name: &str) -> Option<AgeField> {
        let created = model.created_column()?;
        if crate::names::same(name, crate::aging::AGE_FIELD) {
            Some(AgeField::AgeDays)
        } else if crate::names::same(name, created) {
            Some(AgeField::Created)
        } else {
            None
        }
    }
}

impl<'a> Scratch<'a> {
    pub(crate) fn new(attributes: usize) -> Scratch<'a> {
        Scratch {
            values: Vec::with_capacity(attributes),
            keys: Claims::default(),
            unknown: Vec::with_capacity(MAX_UNUSED_NAMES),
            unknown_more: 0,
            twice: None,
            age_days: RawValue::Missing,
            created: RawValue::Missing,
        }
    }

    /// Empties the buffers for the next lead of a model with `attributes` attributes.
    pub(crate) fn start(&mut self, attributes: usize) {
        self.values.clear();
        self.values.resize(attributes, RawValue::Missing);
        self.keys.start(attributes);
        self.unknown.clear();
        self.unknown_more = 0;
        self.twice = None;
        self.age_days = RawValue::Missing;
        self.created = RawValue::Missing;
    }

    /// The lead's age field `field` holds `value`.
    pub(crate) fn set_age(&mut self, field: AgeField, value: RawValue<'a>) {
        match field {
            AgeField::AgeDays => self.age_days = value,
            AgeField::Created => self.created = value,
        }
    }

    /// The lead's age in days on `today()` (see [`Model::lead_age`]); the clock is read only
    /// for a model that ages its scores.
    fn age(
        &self,
        model: &Model,
        today: impl FnOnce() -> chrono::NaiveDate,
    ) -> Result<Option<f64>, LeadError> {
        let Some(created) = model.created_column() else {
            return Ok(Some(0.0));
        };
        let refuse = |field: &str, message: String| {
            LeadError::Value(crate::encoder::ValueError {
                field: field.to_string(),
                message,
            })
        };
        let number;
        let age_days = match self.age_days {
            RawValue::Missing => None,
            RawValue::Text(t) => Some(t),
            RawValue::Number(x) => {
                number = x.to_string();
                Some(number.as_str())
            }
            RawValue::Flag(_) => {
                return Err(refuse(
                    crate::aging::AGE_FIELD,
                    "expected a number of days ≥ 0, got a boolean".into(),
                ));
            }
        };
        let created_text = match self.created {
            RawValue::Missing => None,
            RawValue::Text(t) => Some(t),
            RawValue::Number(_) | RawValue::Flag(_) => {
                return Err(refuse(
                    created,
                    "expected a date (YYYY-MM-DD), got a number or boolean".into(),
                ));
            }
        };
        model
            .lead_age(age_days, created_text, today())
            .map_err(|message| match age_days {
                Some(_) => refuse(crate::aging::AGE_FIELD, message),
                None => refuse(created, message),
            })
    }

    /// `key` (which denotes attribute `index`) holds `value`.
    pub(crate) fn set(&mut self, index: usize, key: &'a [u8], value: RawValue<'a>) {
        if let Err(earlier) = self.keys.claim(index, key)
            && self.twice.is_none()
        {
            self.twice = Some((earlier, key, index));
        }
        self.values[index] = value;
    }

    /// `name` denotes no attribute of the model.
    pub(crate) fn unused(&mut self, name: &'a str) {
        if self.unknown.contains(&name) {
            return;
        }
        if self.unknown.len() < MAX_UNUSED_NAMES {
            self.unknown.push(name);
        } else {
            self.unknown_more += 1;
        }
    }

    /// One warning for all unused fields, or none.
    fn unused_warning(&self, version: &str) -> Option<String> {
        if self.unknown.is_empty() {
            return None;
        }
        // Sized once: the names (each cut to 64 characters) and their separators.
        let names: usize = self.unknown.iter().map(|n| n.len().min(256) + 2).sum();
        let mut warning = String::with_capacity(64 + version.len() + names);
        warning.push_str("fields not used by model ");
        warning.push_str(version);
        warning.push_str(", ignored: ");
        for (i, name) in self.unknown.iter().enumerate() {
            if i > 0 {
                warning.push_str(", ");
            }
            match echo_prefix(name) {
                (all, false) => warning.push_str(all),
                (prefix, true) => {
                    warning.push_str(prefix);
                    warning.push('…');
                }
            }
        }
        if self.unknown_more > 0 {
            warning.push_str(&format!(" and {} more", self.unknown_more));
        }
        Some(warning)
    }
}

impl Shared {
    pub(crate) fn model(&self) -> Result<Arc<Served>, Status> {
        self.holder.get().ok_or_else(|| {
            Status::unavailable("no model is loaded yet (health is NOT_SERVING); retry later")
        })
    }

    fn score_lead(&self, bytes: &[u8]) -> Result<pb::ScoreLeadResponse, Status> {
        let request = wire::score_lead_request(bytes)?;
        let lead = request
            .lead
            .ok_or_else(|| invalid_field("lead", "a lead is required"))?;
        let model = self.model()?;
        let response = score_lead_with(&model, lead, request.explain)?;
        self.served(&model, std::slice::from_ref(&response));
        Ok(response)
    }

    fn score_leads(&self, bytes: &[u8]) -> Result<pb::ScoreLeadsResponse, Status> {
        let request =
            wire::score_leads_request(bytes, self.max_batch).map_err(|error| match error {
                wire::BatchError::Wire(error) => Status::from(error),
                wire::BatchError::TooManyLeads { max } => invalid_field(
                    "leads",
                    format!(
                        "more than {max} leads in one call; this server accepts at most {max} \
                         (split the batch)"
                    ),
                ),
            })?;
        let model = self.model()?;
        let results = score_leads_with(&model, &request.leads, request.explain)?;
        self.served(&model, &results);
        Ok(pb::ScoreLeadsResponse { results })
    }

    /// Counts served scores and queues them for the prediction log.
    pub(crate) fn served(&self, model: &Served, responses: &[pb::ScoreLeadResponse]) {
        self.metrics.leads_scored.inc_by(responses.len() as u64);
        for r in responses {
            self.metrics.probability.observe(r.probability);
        }
        if let Some(log) = &self.predictions {
            let scored_at = chrono::Utc::now();
            for r in responses {
                log.send(Prediction {
                    lead_id: r.lead_id.clone(),
                    scored_at,
                    model_version: model.version.clone(),
                    probability: r.probability,
                    score: r.score,
                    grade: r.grade.clone(),
                });
            }
        }
    }
}

/// The answer to `ScoreLead` for the request's `lead` (read by [`wire::score_lead_request`]),
/// scored with `served`; the call's metrics and prediction log are the caller's. Public so the
/// fuzz targets (`fuzz/`) run the server's own request → features → response path.
pub fn score_lead_with(
    served: &Served,
    lead: Embedded<'_>,
    explain: u32,
) -> Result<pb::ScoreLeadResponse, Status> {
    let mut scratch = Scratch::new(served.encoder().attributes.len());
    score_one(served, lead, explain, &mut scratch).map_err(|e| e.into_status("lead", served))
}

/// The results of `ScoreLeads` for the request's `leads` (read by
/// [`wire::score_leads_request`]), in order; the first lead that cannot be scored fails the call.
pub fn score_leads_with(
    served: &Served,
    leads: &[&[u8]],
    explain: u32,
) -> Result<Vec<pb::ScoreLeadResponse>, Status> {
    let mut scratch = Scratch::new(served.encoder().attributes.len());
    let mut results = Vec::with_capacity(leads.len());
    for (i, &lead) in leads.iter().enumerate() {
        let response = score_one(served, Embedded::Once(lead), explain, &mut scratch)
            .map_err(|e| e.into_status(&format!("leads[{i}]"), served))?;
        results.push(response);
    }
    Ok(results)
}

/// Why one lead could not be scored.
pub(crate) enum LeadError {
    Wire(wire::WireError),
    Value(crate::encoder::ValueError),
    /// The lead id is longer than [`MAX_LEAD_ID_BYTES`]; its length in bytes.
    LeadIdTooLong(usize),
    /// Two different keys denote the same model field: the keys, in message order, and the field.
    SameField {
        first: String,
        second: String,
        field: String,
    },
    /// No key denotes a model field; whether the lead had any fields at all.
    NoKnownField {
        empty: bool,
    },
}

impl LeadError {
    /// `lead_path` locates the lead in the request: `lead` or `leads[3]`.
    pub(crate) fn into_status(self, lead_path: &str, model: &Model) -> Status {
        match self {
            LeadError::SameField {
                first,
                second,
                field,
            } => same_field(lead_path, &first, &second, &field),
            LeadError::NoKnownField { empty } => no_known_field(lead_path, empty, model),
            LeadError::Wire(e) => Status::invalid_argument(format!("{lead_path}: {e}")),
            LeadError::Value(e) => invalid_value(lead_path, e),
            LeadError::LeadIdTooLong(bytes) => invalid_field(
                format!("{lead_path}.lead_id"),
                format!("{bytes} bytes long; at most {MAX_LEAD_ID_BYTES} bytes are accepted"),
            ),
        }
    }
}

/// Scores one encoded `Lead`: each field goes straight into its attribute's slot.
fn score_one<'a>(
    served: &Served,
    lead: Embedded<'a>,
    explain: u32,
    scratch: &mut Scratch<'a>,
) -> Result<pb::ScoreLeadResponse, LeadError> {
    scratch.start(served.encoder().attributes.len());
    let fields = served.model.fields();
    let lead_id = wire::lead(lead, |name, value| {
        let field = match fields.get_exact(name) {
            Ok(i) => i,
            Err(hashed) => {
                // Any other spelling is checked as text once, for the rule and the warning.
                let text = wire::name(name)?;
                match fields.get_folded(text, hashed) {
                    Some(i) => i,
                    None => {
                        match AgeField::of(&served.model, text) {
                            Some(age) => scratch.set_age(age, wire::field_value(value)?),
                            None => scratch.unused(text),
                        }
                        return Ok(());
                    }
                }
            }
        };
        scratch.set(field, name, wire::field_value(value)?);
        Ok(())
    })
    .map_err(LeadError::Wire)?;
    finish(served, lead_id, explain, scratch)
}

/// The answer for the lead read into `scratch`, or its refusal: the step every serving path
/// (gRPC, JSON) ends a lead with, so they refuse alike and give the same numbers and warnings.
pub(crate) fn finish(
    served: &Served,
    lead_id: &str,
    explain: u32,
    scratch: &Scratch<'_>,
) -> Result<pb::ScoreLeadResponse, LeadError> {
    let model = &served.model;
    let attributes = model.encoder().attributes.len();
    if lead_id.len() > MAX_LEAD_ID_BYTES {
        return Err(LeadError::LeadIdTooLong(lead_id.len()));
    }
    if let Some((first, second, i)) = scratch.twice {
        // Both keys denote a field, so both are UTF-8 (lossy changes nothing).
        return Err(LeadError::SameField {
            first: String::from_utf8_lossy(first).into_owned(),
            second: String::from_utf8_lossy(second).into_owned(),
            field: model.fields().names()[i].clone(),
        });
    }
    if scratch.keys.none() && attributes > 0 {
        return Err(LeadError::NoKnownField {
            empty: scratch.unknown.is_empty(),
        });
    }
    // The age factor is one more explanation candidate.
    let explain = (explain as usize).min(attributes + model.ages() as usize);
    // The server's clock: a lead's age is counted to the day of the call (UTC).
    let age = scratch.age(model, || chrono::Utc::now().date_naive())?;
    let scored = model
        .score_at(|i| scratch.values[i], age, explain)
        .map_err(LeadError::Value)?;
    served.count_out_of_range(&scored.out_of_range);
    // One warning for all of them: a CRM sending its whole record would otherwise get a line
    // per unused column on every lead.
    let warnings = scratch
        .unused_warning(model.version())
        .into_iter()
        .collect();
    Ok(score_response(lead_id, scored, model.version(), warnings))
}
