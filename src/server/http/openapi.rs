//! The OpenAPI 3.0 document of the JSON API (`GET /openapi.json`), built from the route table
//! ([`super::ROUTES`]) and the request and response types ([`super::types`]), whose schemas
//! schemars derives. Nothing here is a hand-kept copy of a type.
//!
//! It keeps to what Salesforce External Services import: OpenAPI 3.0 (utoipa 5, the usual
//! choice, writes only 3.1, whose `type: [..., "null"]` 3.0 readers reject; schemars has an
//! OpenAPI 3.0 mode that marks optional values `nullable`), no `oneOf`/`anyOf`, an
//! `operationId` per operation, and integers without a 64-bit `format`.

use super::types;
use super::{Endpoint, ROUTES};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Value, json};

/// The document, for a server that accepts at most `max_batch` leads per batch.
pub fn document(max_batch: usize) -> Value {
    let mut generator = SchemaSettings::openapi3()
        .with(|s| s.meta_schema = None)
        .with_transform(plain_integers)
        .into_generator();
    let error = generator.subschema_for::<types::ErrorResponse>();
    let mut paths = serde_json::Map::new();
    for route in ROUTES {
        let operation = operation(route.endpoint, &mut generator, &error, max_batch);
        paths
            .entry(route.path)
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("a path item is an object")
            .insert(route.method.to_ascii_lowercase(), operation);
    }
    let schemas = generator.take_definitions(true);
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "leadscore",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Lead scoring: the calibrated probability that a sales lead closes, \
                            with a grade and the reasons behind it. The same service answers gRPC \
                            (leadscore.v1.LeadScoring) on the same address."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The server's token (--auth-token-file), when it has one."
                }
            }
        },
        "security": [{"bearer": []}]
    })
}

/// [`document`] as bytes, as served.
pub fn document_json(max_batch: usize) -> Vec<u8> {
    serde_json::to_vec_pretty(&document(max_batch)).unwrap_or_default()
}

fn operation(
    endpoint: Endpoint,
    generator: &mut SchemaGenerator,
    error: &Schema,
    max_batch: usize,
) -> Value {
    let mut schema = |f: fn(&mut SchemaGenerator) -> Schema| f(generator);
    let (id, summary, request, ok, errors): (_, String, _, _, &[u16]) = match endpoint {
        Endpoint::ScoreLead => (
            "scoreLead",
            "Score one lead".into(),
            Some(schema(sub::<types::ScoreLeadRequest>)),
            schema(sub::<types::ScoreLeadResponse>),
            &[400, 401, 408, 413, 503],
        ),
        Endpoint::ScoreLeads => (
            "scoreLeads",
            format!("Score a batch of at most {max_batch} leads; results keep their order"),
            Some(schema(sub::<types::ScoreLeadsRequest>)),
            schema(sub::<types::ScoreLeadsResponse>),
            &[400, 401, 408, 413, 503],
        ),
        Endpoint::Model => (
            "getModelInfo",
            "The model in service: version, fields, holdout metrics, grade cut-offs".into(),
            None,
            schema(sub::<types::ModelInfo>),
            &[401, 503],
        ),
        Endpoint::OpenApi => (
            "getOpenApi",
            "This document".into(),
            None,
            Schema::from(
                json!({"type": "object"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            ),
            &[401],
        ),
        Endpoint::Live => (
            "live",
            "Liveness: 200 while the process serves".into(),
            None,
            schema(sub::<types::Health>),
            &[],
        ),
        Endpoint::Ready => (
            "ready",
            "Readiness: 200 while a model is loaded and the server is not shutting down".into(),
            None,
            schema(sub::<types::Health>),
            &[503],
        ),
    };
    let mut responses = serde_json::Map::new();
    responses.insert("200".into(), content("OK", &ok));
    for &status in errors {
        let description = match status {
            400 => {
                "A request that cannot be read or a value the model cannot use (INVALID_ARGUMENT)"
            }
            401 => "No or a wrong bearer token (UNAUTHENTICATED)",
            408 => "The request body did not arrive in time (DEADLINE_EXCEEDED)",
            413 => "The request body is over the size limit (OUT_OF_RANGE)",
            503 if endpoint == Endpoint::Ready => "No model loaded yet, or shutting down",
            _ => "No model loaded yet; retry later (UNAVAILABLE)",
        };
        let body = if endpoint == Endpoint::Ready {
            schema(sub::<types::Health>)
        } else {
            error.clone()
        };
        responses.insert(status.to_string(), content(description, &body));
    }
    let mut operation = json!({
        "operationId": id,
        "summary": summary,
        "responses": responses,
    });
    if let Some(request) = request {
        operation["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {"schema": request}}
        });
    }
    if !endpoint.needs_auth() {
        operation["security"] = json!([]);
    }
    operation
}

fn sub<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

fn content(description: &str, schema: &Schema) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": schema}}
    })
}

/// Drops `format` from integer schemas (schemars writes `uint32`/`uint64`): Salesforce maps an
/// `int64` integer to a Long and rejects formats it does not know; a plain integer with
/// `minimum: 0` says what these fields hold.
fn plain_integers(schema: &mut Schema) {
    if schema.get("type").and_then(Value::as_str) == Some("integer") {
        schema.remove("format");
    }
    schemars::transform::transform_subschemas(&mut plain_integers, schema);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every schema node of the document, depth first.
    fn walk<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
        out.push(value);
        match value {
            Value::Object(map) => map.values().for_each(|v| walk(v, out)),
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }

    #[test]
    fn keeps_to_what_salesforce_imports() {
        let doc = document(1000);
        assert_eq!(doc["openapi"], "3.0.3");
        let mut nodes = Vec::new();
        walk(&doc, &mut nodes);
        for node in nodes {
            let Value::Object(map) = node else { continue };
            for banned in ["oneOf", "anyOf", "allOf", "const", "$schema"] {
                assert!(!map.contains_key(banned), "{banned} in {node}");
            }
            if let Some(format) = map.get("format") {
                assert!(
                    format == "double" || format == "float",
                    "format {format} in {node}"
                );
            }
            if let Some(Value::Array(_)) = map.get("type") {
                panic!("a type array (OpenAPI 3.1) in {node}");
            }
        }
        for route in ROUTES {
            let op = &doc["paths"][route.path][route.method.to_ascii_lowercase()];
            assert!(op["operationId"].is_string(), "{}", route.path);
        }
        let factor = &doc["components"]["schemas"]["Factor"]["properties"];
        assert_eq!(factor["closure_rate"]["nullable"], true);
        assert_eq!(factor["support"]["type"], "integer");
    }
}
