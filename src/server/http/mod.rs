//! The HTTP/JSON API, served beside gRPC on the same address (HTTP/1.1 and HTTP/2, with or
//! without TLS), for CRM tools that cannot originate gRPC (Salesforce callouts and External
//! Services, HubSpot workflows, Power Automate).
//!
//! # Layout
//! - [`Dispatch`] routes each request by content type: `application/grpc*` to the gRPC services,
//!   everything else to [`JsonApi`]. So an unknown path is a JSON 404 for a JSON caller and
//!   `UNIMPLEMENTED` for a gRPC one.
//! - [`JsonApi`] answers the routes of [`ROUTES`]: auth, body limits, metrics and the prediction
//!   log as for gRPC, through the same [`Shared`] state.
//! - [`parse`] reads request bodies, [`types`] holds the request and response types the OpenAPI
//!   document ([`openapi`]) is derived from.
//!
//! A JSON lead is scored by the function that ends every gRPC lead
//! ([`super::service::score_scratch`]): the same values in the same attribute slots give the
//! same bits.

pub mod openapi;
pub mod parse;
pub mod types;

use super::holder::Served;
use super::metrics::Protocol;
use super::service::{AgeField, Scratch, Shared, finish};
use crate::encoder::echo;
use crate::schema::Kind;
use crate::server::pb;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use prost::bytes::Bytes;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tonic::Code;
use tonic::body::Body;
use tonic::codegen::http::{HeaderValue, Request, Response, StatusCode, header};
use tonic::codegen::{BoxFuture, Service};
use tonic::service::Routes;
use tonic_types::StatusExt;

/// Every route of the JSON API: method, path, the gRPC method it stands for (for metrics), and
/// what it does. The OpenAPI document and the router are both built from this table.
pub const ROUTES: &[Route] = &[
    Route {
        method: "POST",
        path: "/v1/leads:score",
        endpoint: Endpoint::ScoreLead,
    },
    Route {
        method: "POST",
        path: "/v1/leads:scoreBatch",
        endpoint: Endpoint::ScoreLeads,
    },
    Route {
        method: "GET",
        path: "/v1/model",
        endpoint: Endpoint::Model,
    },
    Route {
        method: "GET",
        path: "/openapi.json",
        endpoint: Endpoint::OpenApi,
    },
    Route {
        method: "GET",
        path: "/healthz",
        endpoint: Endpoint::Live,
    },
    Route {
        method: "GET",
        path: "/readyz",
        endpoint: Endpoint::Ready,
    },
];

/// One route of [`ROUTES`].
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub endpoint: Endpoint,
}

/// What a route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ScoreLead,
    ScoreLeads,
    Model,
    OpenApi,
    Live,
    Ready,
}

impl Endpoint {
    /// The gRPC method this stands for, as the call metrics label it; `None` for routes that
    /// are not calls (health, the document).
    pub fn grpc_method(self) -> Option<&'static str> {
        match self {
            Endpoint::ScoreLead => Some("ScoreLead"),
            Endpoint::ScoreLeads => Some("ScoreLeads"),
            Endpoint::Model => Some("GetModelInfo"),
            Endpoint::OpenApi | Endpoint::Live | Endpoint::Ready => None,
        }
    }

    /// Whether the bearer token is needed (as for gRPC: everything but health).
    pub fn needs_auth(self) -> bool {
        !matches!(self, Endpoint::Live | Endpoint::Ready)
    }
}

/// How long a JSON request's body may take to arrive: just under the call timeout (which, when
/// it fires, answers in gRPC's format), so a slow upload gets a JSON 408 instead.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(super::REQUEST_TIMEOUT.as_secs() - 1);

/// A refused JSON request: `{"error": {"code", "message", "field"}}` with its HTTP status.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// The gRPC code a gRPC caller would get for the same fault.
    pub code: Code,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    /// 400 `INVALID_ARGUMENT` on `field`; the message names the field first, as gRPC's do.
    pub fn invalid(field: impl Into<String>, description: impl AsRef<str>) -> ApiError {
        let field = field.into();
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: Code::InvalidArgument,
            message: format!("{field}: {}", description.as_ref()),
            field: Some(field),
        }
    }

    /// 400 `INVALID_ARGUMENT`, with or without a field.
    pub fn with_field(field: Option<String>, message: String) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: Code::InvalidArgument,
            message,
            field,
        }
    }

    fn new(status: StatusCode, code: Code, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// The JSON form of a lead's refusal as the gRPC path words it: the same message and
    /// field, less gRPC's `lead.` (a single-lead JSON body is the lead itself).
    fn from_lead_status(status: tonic::Status) -> ApiError {
        let unprefixed = |text: &str| text.strip_prefix("lead.").unwrap_or(text).to_string();
        let field = status
            .get_details_bad_request()
            .and_then(|request| request.field_violations.into_iter().next())
            .map(|violation| unprefixed(&violation.field));
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: status.code(),
            message: unprefixed(status.message()),
            field,
        }
    }

    /// The JSON form of a gRPC refusal shared by both paths (auth, no model).
    fn from_status(status: tonic::Status) -> ApiError {
        let http = match status.code() {
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::OutOfRange => StatusCode::PAYLOAD_TOO_LARGE,
            Code::InvalidArgument => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(http, status.code(), status.message())
    }

    fn response(&self) -> Response<Body> {
        let body = types::ErrorResponse {
            error: types::ErrorBody {
                code: super::metrics::code_name(self.code).to_string(),
                message: self.message.clone(),
                field: self.field.clone(),
            },
        };
        let mut response = json_response(self.status, &body);
        match self.status {
            StatusCode::UNAUTHORIZED => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            }
            _ => {}
        }
        response
    }
}

fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response<Body> {
    // Room for a scored lead with its factors at once (serde_json starts at 128 bytes).
    let mut bytes = Vec::with_capacity(1024);
    // Serialising these types cannot fail: no maps with non-string keys, no custom impls.
    let _ = serde_json::to_writer(&mut bytes, body);
    bytes_response(status, "application/json", Bytes::from(bytes))
}

fn bytes_response(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Body::new(Full::new(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Routes a request by content type: gRPC to `grpc`, the rest to the JSON API.
#[derive(Clone)]
pub struct Dispatch {
    grpc: Routes,
    json: JsonApi,
}

impl Dispatch {
    pub fn new(grpc: Routes, json: JsonApi) -> Dispatch {
        Dispatch { grpc, json }
    }
}

/// Whether a request is a gRPC call (`application/grpc`, `application/grpc+proto`, ...).
fn is_grpc<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

impl Service<Request<Body>> for Dispatch {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Response<Body>, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Both sides are always ready: the routes are axum's router, the JSON API holds no
        // per-connection resource.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if is_grpc(&request) {
            Box::pin(self.grpc.call(request))
        } else {
            let json = self.json.clone();
            Box::pin(async move { Ok(json.handle(request).await) })
        }
    }
}

/// The JSON API; cheap to clone.
#[derive(Clone)]
pub struct JsonApi {
    inner: Arc<JsonState>,
}

struct JsonState {
    /// The model, auth, limits, metrics and prediction log, shared with the gRPC service.
    shared: Arc<Shared>,
    /// True once shutdown has begun: `/readyz` turns 503 then.
    stopping: watch::Receiver<bool>,
    /// `/openapi.json`, rendered once.
    openapi: Bytes,
}

impl JsonApi {
    pub fn new(shared: Arc<Shared>, stopping: watch::Receiver<bool>) -> JsonApi {
        let openapi = Bytes::from(openapi::document_json(shared.max_batch));
        JsonApi {
            inner: Arc::new(JsonState {
                shared,
                stopping,
                openapi,
            }),
        }
    }

    /// Answers one request; never fails (errors are JSON answers).
    pub async fn handle(&self, request: Request<Body>) -> Response<Body> {
        let started = Instant::now();
        let path = request.uri().path();
        let Some(route) = ROUTES.iter().find(|r| r.path == path) else {
            return ApiError::new(
                StatusCode::NOT_FOUND,
                Code::NotFound,
                format!(
                    "no such path: {}; the JSON API has {}",
                    echo(path),
                    ROUTES
                        .iter()
                        .map(|r| format!("{} {}", r.method, r.path))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .response();
        };
        if request.method().as_str() != route.method {
            let mut response = ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                Code::Unimplemented,
                format!(
                    "{} {} is not served; use {} {}",
                    request.method(),
                    route.path,
                    route.method,
                    route.path
                ),
            )
            .response();
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(route.method));
            return response;
        }
        let endpoint = route.endpoint;
        let result = self.answer(endpoint, request).await;
        let code = match &result {
            Ok(_) => Code::Ok,
            Err(error) => error.code,
        };
        if let Some(method) = endpoint.grpc_method() {
            let elapsed = started.elapsed();
            self.inner
                .shared
                .metrics
                .record_call(method, Protocol::Json, code, elapsed);
            tracing::debug!(method, protocol = "json", ?code, ?elapsed, "call");
        }
        result.unwrap_or_else(|error| error.response())
    }

    async fn answer(
        &self,
        endpoint: Endpoint,
        request: Request<Body>,
    ) -> Result<Response<Body>, ApiError> {
        let state = &self.inner;
        let shared = &state.shared;
        if endpoint.needs_auth() {
            shared
                .auth
                .check_headers(request.headers())
                .map_err(ApiError::from_status)?;
        }
        match endpoint {
            Endpoint::Live => Ok(json_response(
                StatusCode::OK,
                &types::Health {
                    status: "ok".into(),
                },
            )),
            Endpoint::Ready => {
                let ready = shared.holder.get().is_some() && !*state.stopping.borrow();
                let (status, text) = if ready {
                    (StatusCode::OK, "ready")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not ready")
                };
                Ok(json_response(
                    status,
                    &types::Health {
                        status: text.into(),
                    },
                ))
            }
            Endpoint::OpenApi => Ok(bytes_response(
                StatusCode::OK,
                "application/json",
                state.openapi.clone(),
            )),
            Endpoint::Model => {
                let model = shared.model().map_err(ApiError::from_status)?;
                let info = types::ModelInfo::from(pb::ModelInfo::from(&model.model));
                Ok(json_response(StatusCode::OK, &info))
            }
            Endpoint::ScoreLead => {
                let body = read_body(request, shared.max_message_bytes).await?;
                let (lead, explain) = parse::score_lead(&body)?;
                let model = shared.model().map_err(ApiError::from_status)?;
                let mut scratch = Scratch::new(model.encoder().attributes.len());
                let response = score_lead(&model, &lead, explain, "lead", &mut scratch)?;
                shared.served(&model, std::slice::from_ref(&response));
                let answer = types::score_lead_response(response, |f| numeric(&model, f));
                Ok(json_response(StatusCode::OK, &answer))
            }
            Endpoint::ScoreLeads => {
                let body = read_body(request, shared.max_message_bytes).await?;
                let (leads, explain) = parse::score_leads(&body, shared.max_batch)?;
                let model = shared.model().map_err(ApiError::from_status)?;
                let mut scratch = Scratch::new(model.encoder().attributes.len());
                let mut results = Vec::with_capacity(leads.len());
                for (i, lead) in leads.iter().enumerate() {
                    let path = format!("leads[{i}]");
                    results.push(score_lead(&model, lead, explain, &path, &mut scratch)?);
                }
                shared.served(&model, &results);
                let answer = types::ScoreLeadsResponse {
                    results: results
                        .into_iter()
                        .map(|r| types::score_lead_response(r, |f| numeric(&model, f)))
                        .collect(),
                };
                Ok(json_response(StatusCode::OK, &answer))
            }
        }
    }
}

fn numeric(served: &Served, field: &str) -> bool {
    served
        .model
        .fields()
        .get(field.as_bytes())
        .is_some_and(|i| served.encoder().attributes[i].kind() == Kind::Numeric)
}

/// Scores one JSON lead; `lead_path` locates it as gRPC does (`lead`, `leads[3]`). Field names
/// are matched by the model's one rule ([`crate::names`]), and the lead is finished and refused
/// by the gRPC path's own step ([`finish`]).
fn score_lead<'a>(
    served: &Served,
    lead: &'a parse::Lead<'a>,
    explain: u32,
    lead_path: &str,
    scratch: &mut Scratch<'a>,
) -> Result<pb::ScoreLeadResponse, ApiError> {
    scratch.start(served.encoder().attributes.len());
    let fields = served.model.fields();
    for (name, value) in &lead.fields {
        match fields.get_str(name) {
            Some(i) => scratch.set(i, name.as_bytes(), value.raw()),
            None => match AgeField::of(&served.model, name) {
                Some(age) => scratch.set_age(age, value.raw()),
                None => scratch.unused(name),
            },
        }
    }
    finish(served, &lead.lead_id, explain, scratch)
        .map_err(|e| ApiError::from_lead_status(e.into_status(lead_path, &served.model)))
}

/// The request body, refused when over `limit` bytes (413) or slower than [`BODY_TIMEOUT`].
async fn read_body(request: Request<Body>, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::OutOfRange,
            format!("the request body is larger than this server's limit of {limit} bytes"),
        )
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let body = Limited::new(request.into_body(), limit);
    match tokio::time::timeout(BODY_TIMEOUT, body.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Ok(Err(error)) => Err(ApiError::with_field(
            None,
            format!("the request body could not be read: {error}"),
        )),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            Code::DeadlineExceeded,
            format!("the request body did not arrive within {BODY_TIMEOUT:?}"),
        )),
    }
}
