//! The action routes of the HTTP API: `POST /v1/call` (run a view action) and `GET /v1/schemas/{name}/actions`
//! (list a schema's actions). docs/api.md and openapi.json describe them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use dstorage_client::api::{ActionInfo, ActionsResponse, CallRequest, QueryResponse};
use dstorage_types::caller::Caller;
use dstorage_types::result::ResultCode;

use crate::api::{blocking, ApiError, ApiResult, ApiState};

/// Decide who a read request comes from: `Ok(None)` for an unsigned request, `Ok(Some(caller))` for a verified
/// signed read, an error (401) for a signature that does not verify.
///
/// This is the one place a read is authenticated. Signed read envelopes (single-use challenge, `dstorage read`
/// title) are issue 11 part A; until that lands here, a request that carries a signature is answered 401
/// `signed reads not available` rather than being run unsigned.
pub fn authenticate_read(
    _state: &ApiState,
    request: &CallRequest,
) -> Result<Option<Caller>, ApiError> {
    match &request.signature {
        None => Ok(None),
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "signed reads not available",
        )),
    }
}

/// `POST /v1/call`.
pub(crate) async fn call(
    State(s): State<ApiState>,
    body: Result<Json<CallRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<QueryResponse> {
    let Json(request) =
        body.map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))?;
    let caller = authenticate_read(&s, &request)?;
    let app = s.app.clone();
    let limit = app.config().cost_limit_per_tx;
    let signed = caller.is_some();
    let answer = blocking(move || {
        app.reads().call_view(
            &request.schema,
            &request.action,
            &request.args,
            caller,
            limit,
        )
    })
    .await?
    .map_err(ApiError::from_sql)?;
    match answer {
        Ok((rows, height)) => Ok(Json(QueryResponse {
            columns: rows.columns,
            rows: rows.rows,
            cost: rows.cost,
            height,
        })),
        Err((code, message)) => Err(refusal(code, message, signed)),
    }
}

/// The HTTP answer to a refused call: an unsigned caller the rule turns away is asked to sign (401); a signed
/// one is refused (403).
fn refusal(code: ResultCode, message: String, signed: bool) -> ApiError {
    let status = match code {
        ResultCode::Forbidden if !signed => {
            return ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
        }
        ResultCode::Forbidden => StatusCode::FORBIDDEN,
        ResultCode::SchemaNotFound | ResultCode::ActionNotFound => StatusCode::NOT_FOUND,
        ResultCode::BadArguments | ResultCode::NotAView => StatusCode::BAD_REQUEST,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    ApiError::new(status, code.name(), message)
}

/// `GET /v1/schemas/{name}/actions`.
pub(crate) async fn actions(
    State(s): State<ApiState>,
    Path(name): Path<String>,
) -> ApiResult<ActionsResponse> {
    let app = s.app.clone();
    let schema = name.clone();
    let catalog = blocking(move || app.reads().actions(&schema))
        .await?
        .map_err(ApiError::from_sql)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "schema_not_found",
                format!("schema {name} does not exist"),
            )
        })?;
    Ok(Json(ActionsResponse {
        schema: name,
        public_read: catalog.public_read,
        actions: catalog
            .actions
            .values()
            .map(ActionInfo::from_action)
            .collect(),
    }))
}
