//! The action routes of the HTTP API: `POST /v1/call` (run a view action) and `GET /v1/schemas/{name}/actions`
//! (list a schema's actions). docs/api.md and openapi.json describe them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use dstorage_app::Refusal;
use dstorage_client::api::{ActionInfo, ActionsResponse, QueryResponse};
use dstorage_types::read::{ReadEnvelope, ReadRequest};
use dstorage_types::result::ResultCode;

use crate::api_common::{blocking, ApiError, ApiResult, ApiState};
use crate::reads::{parse_envelope, read_caller};

/// `POST /v1/call`: the read envelope with `action` and `args`; unsigned (no `auth`) only a public view runs.
pub(crate) async fn call(
    State(s): State<ApiState>,
    body: Result<Json<ReadEnvelope>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<QueryResponse> {
    let (envelope, request) = parse_envelope(body)?;
    let ReadRequest::Action { action, args } = request.clone() else {
        return Err(ApiError::bad_request(
            "POST /v1/call runs a view action; send SQL to POST /v1/query",
        ));
    };
    // The signature check and the read in one blocking task, as `POST /v1/query` does: both are CPU work, and
    // one hop off the async workers instead of two is cheaper per read (`dstorage bench --signed-reads`).
    let state = s.clone();
    let (answer, signed) = blocking(move || -> Result<_, ApiError> {
        let caller = read_caller(&state, &envelope, &request)?;
        let signed = caller.is_some();
        let limit = state.app.config().cost_limit_per_tx;
        let answer = state
            .app
            .reads()
            .call_view(&envelope.schema, &action, &args, caller, limit)
            .map_err(ApiError::from_sql)?;
        Ok((answer, signed))
    })
    .await??;
    match answer {
        Ok((rows, height)) => Ok(Json(QueryResponse {
            columns: rows.columns,
            rows: rows.rows,
            cost: rows.cost,
            height,
        })),
        Err(refused) => Err(refusal(refused, signed)),
    }
}

/// The HTTP answer to a refused call: an unsigned caller the rule turns away is asked to sign (401
/// `signature_required`, as `POST /v1/query` answers); a signed one is refused (403 `forbidden`).
fn refusal(Refusal { code, message }: Refusal, signed: bool) -> ApiError {
    let status = match code {
        ResultCode::Forbidden if !signed => {
            return ApiError::new(StatusCode::UNAUTHORIZED, "signature_required", message)
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
