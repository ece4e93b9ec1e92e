//! The API contract: an OpenAPI 3.1 document generated from the code.
//!
//! Every route is registered through utoipa-axum's `routes!`, which takes
//! the path and method from the handler's `#[utoipa::path]` annotation, so
//! a route and its documentation cannot drift apart; `clippy.toml` forbids
//! registering a route any other way. What the annotations cannot know is
//! added here, once: the problem+json answers every operation may give,
//! the security scheme each route takes, and the order fields per order
//! type from the compiled definitions (a `oneOf` keyed by `type`), so a
//! definition change shows in the contract.
//!
//! utoipa rather than aide: its schemas are derived from the same serde
//! types the handlers return (no second schema language), it writes
//! OpenAPI 3.1, and utoipa-axum binds path and route in one place.

use std::sync::Arc;

use axum::Extension;
use serde_json::{Map, Value, json};

use crate::workflow::defs::{Definitions, FieldDef, FieldType};

/// The finished document, served by [`openapi_json`].
#[derive(Clone)]
pub struct Document(pub Arc<Value>);

/// `GET /api/v1/openapi.json`: this server's API contract (OpenAPI 3.1).
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object))
)]
pub async fn openapi_json(Extension(doc): Extension<Document>) -> axum::Json<Value> {
    axum::Json((*doc.0).clone())
}

/// Completes the document the routes collected.
pub fn finish(api: utoipa::openapi::OpenApi, defs: &'static Definitions) -> Value {
    let mut doc = serde_json::to_value(&api).unwrap_or_else(|_| json!({}));
    doc["openapi"] = json!("3.1.0");
    doc["info"] = json!({
        "title": "auftrag",
        "version": env!("CARGO_PKG_VERSION"),
        "description": "Order processing: orders are checked, authorized, executed or parked for staff, as the compiled definitions say. Every error is application/problem+json (RFC 9457).",
    });
    let components = doc
        .as_object_mut()
        .expect("an OpenAPI document is an object")
        .entry("components")
        .or_insert_with(|| json!({}));
    components["securitySchemes"] = json!({
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                   "description": "A person's token: `auftrag token issue --person PERS_KEY`."},
        "agency": {"type": "apiKey", "in": "header", "name": "Authorization",
                   "description": "`Agency TOKEN`: a token made from the shared agency secret (see README, The agency)."}
    });
    components["schemas"]["SubmitBody"] = submit_schema(defs);
    components["schemas"]["Problem"] = problem_schema();
    components["schemas"]["FieldProblem"] = json!({
        "type": "object",
        "required": ["field", "message"],
        "properties": {
            "field": {"type": "string", "description": "The field (or `comment`, a query parameter)"},
            "message": {"type": "string", "description": "What is wrong with it"}
        }
    });
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (_, op) in item.iter_mut() {
                let Some(op) = op.as_object_mut() else {
                    continue;
                };
                let responses = op.entry("responses").or_insert_with(|| json!({}));
                for (range, what) in [
                    (
                        "4XX",
                        "The request cannot be served as sent; `detail` says why and what to do",
                    ),
                    (
                        "5XX",
                        "The server or its database failed; the order, if any, is kept in its previous state",
                    ),
                ] {
                    responses[range] = json!({
                        "description": what,
                        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
                    });
                }
                tighten_parameters(op);
                if let Some(scheme) = security_of(path) {
                    op.insert("security".into(), json!([{ scheme: [] }]));
                }
            }
        }
    }
    doc
}

/// Bounds the annotations leave open: ids are positive (one spelling:
/// digits), page sizes 1–1000.
fn tighten_parameters(op: &mut Map<String, Value>) {
    let Some(Value::Array(params)) = op.get_mut("parameters") else {
        return;
    };
    for p in params {
        let bounds = match (p["in"].as_str(), p["name"].as_str()) {
            (Some("path"), Some("id")) => {
                json!({"type": "integer", "format": "int64", "minimum": 0})
            }
            (Some("query"), Some("limit")) => {
                json!({"type": ["integer", "null"], "minimum": 1, "maximum": 1000})
            }
            (Some("query"), Some("format")) => {
                json!({"type": ["string", "null"], "enum": ["mermaid", "dot", null]})
            }
            _ => continue,
        };
        p["schema"] = bounds;
    }
}

/// The scheme a route takes; `None` for the open ones.
fn security_of(path: &str) -> Option<&'static str> {
    match path {
        "/healthz" | "/api/v1/openapi.json" | "/ui/rest/print" => None,
        p if p.starts_with("/api/v1/agency/poll") || p.starts_with("/api/v1/agency/jobs") => {
            Some("agency")
        }
        _ => Some("bearer"),
    }
}

fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "An RFC 9457 problem document.",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string", "maxLength": 1024, "description": "Why, and what to do about it."},
            "errors": {"type": "array", "maxItems": 20, "items": {"$ref": "#/components/schemas/FieldProblem"}},
            "orders": {"type": "array", "items": {"type": "integer", "format": "int64"}, "description": "The orders a refusal names: those that stand in the way of a rollback (409)."},
            "request_id": {"type": "string", "description": "The request's id (X-Request-Id), as in the server's log."}
        }
    })
}

/// `{"type", "fields"}` of an order: one alternative per order type of the
/// compiled definitions, with that type's fields.
fn submit_schema(defs: &Definitions) -> Value {
    let alternatives: Vec<Value> = defs
        .order_types
        .iter()
        .map(|t| {
            let mut properties = Map::new();
            for f in t.fields {
                properties.insert(f.name.to_owned(), field_schema(f));
            }
            let required: Vec<&str> = t
                .fields
                .iter()
                .filter(|f| f.required)
                .map(|f| f.name)
                .collect();
            json!({
                "type": "object",
                "title": t.name,
                "description": t.description,
                "required": ["type", "fields"],
                "additionalProperties": false,
                "properties": {
                    "type": {"const": t.name},
                    "fields": {
                        "type": "object",
                        "additionalProperties": false,
                        "required": required,
                        "properties": properties,
                    }
                }
            })
        })
        .collect();
    json!({
        "description": "An order: its type and its fields (GET /api/v1/definitions describes each).",
        "oneOf": alternatives,
        "discriminator": {"propertyName": "type"},
    })
}

/// The JSON a field takes. Its syntax (a MAC, an IPv4 address, …) is judged
/// by the order's checks: a malformed value is a recorded error of the
/// order, not a refused request, so the schema gives only the shape.
fn field_schema(f: &FieldDef) -> Value {
    let one = match f.ty {
        FieldType::Record => {
            let mut properties = Map::new();
            for sub in f.fields {
                properties.insert(sub.name.to_owned(), field_schema(sub));
            }
            json!({"type": "object", "properties": properties})
        }
        FieldType::Integer => json!({"type": ["integer", "string"]}),
        FieldType::Bool => json!({"type": ["boolean", "string"], "description": "Y or N"}),
        FieldType::Enum => json!({"type": "string", "enum": f.values}),
        other => {
            let format = serde_json::to_value(other).unwrap_or(Value::Null);
            json!({"type": "string", "format": format})
        }
    };
    let mut schema = if f.list {
        json!({"type": "array", "items": one})
    } else {
        one
    };
    if !f.required
        && let Some(types) = schema.get_mut("type")
    {
        *types = match types.take() {
            Value::Array(mut ts) => {
                ts.push(json!("null"));
                Value::Array(ts)
            }
            t => json!([t, "null"]),
        };
    }
    if !f.required
        && let Some(Value::Array(values)) = schema.get_mut("enum")
    {
        values.push(Value::Null);
    }
    if !f.description.is_empty() {
        schema["description"] = json!(f.description);
    }
    schema
}
