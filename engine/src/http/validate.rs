//! `POST /api/v1/validate` `{"type","fields"}` → `{"errors","warnings"}`:
//! the portal stage of the checks (DESIGN.md §6). The fields are judged as an
//! order would be — shape, syntax of every field, then the checks of
//! `checks.xml` with their `portal` severity — but nothing is stored: the
//! checks read in a transaction that is rolled back.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::error::EngineError;
use crate::http::server::{AppState, Engine};
use crate::http::{ApiJson, ApiResult};
use crate::workflow::checks::{CheckReport, run_checks};
use crate::workflow::context::{Fields, OrderData, Principal};
use crate::workflow::defs::Stage;
use crate::workflow::executor::validate_fields;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(validate_order))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ValidateBody {
    #[serde(rename = "type")]
    order_type: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    fields: Fields,
}

/// Runs the portal-stage checks on fields for an order of `order_type` on
/// behalf of `requester`; creates nothing. A wrong shape (unknown field,
/// wrong JSON kind, required field missing) is an error as for a submission.
pub async fn validate(
    engine: &Engine,
    requester: &Principal,
    order_type: &str,
    fields: Fields,
) -> Result<CheckReport, EngineError> {
    let order_type = engine
        .defs
        .order_type(order_type)
        .ok_or_else(|| EngineError::UnknownOrderType(order_type.to_owned()))?;
    validate_fields(order_type, &fields, false)?;
    let order = OrderData {
        id: None,
        order_type,
        requester: requester.person.clone(),
        fields,
        errors: Vec::new(),
        warnings: Vec::new(),
        accepted: Vec::new(),
        changes: Default::default(),
        facts: None,
    };
    let mut tx = engine.store.pool.begin().await?;
    let report = run_checks(
        &mut tx,
        engine.defs,
        &order,
        Stage::Portal,
        &mut Default::default(),
    )
    .await
    .map_err(|source| EngineError::Handler {
        action: "validate".to_owned(),
        source,
    })?;
    tx.rollback().await?;
    Ok(report)
}

/// The portal-stage checks of fields for an order; creates nothing.
#[utoipa::path(post, path = "/api/v1/validate", tag = "orders", request_body = ValidateBody,
    responses((status = 200, description = "`errors` and `warnings`", body = CheckReport)))]
async fn validate_order(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<ValidateBody>,
) -> ApiResult<Json<CheckReport>> {
    let report = validate(&state.engine, &principal, &body.order_type, body.fields).await?;
    Ok(Json(report))
}
