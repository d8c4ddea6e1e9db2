//! The read side of access control in the API: `GET /v1/challenge`, `POST /v1/query` (owner-only unless the
//! schema is publicly readable) and `GET /v1/grants` (`docs/api.md`, "Who can read what").
//!
//! [`read_caller`] is the one place a read envelope becomes a caller; `POST /v1/call` uses it too.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use dstorage_app::access::{may_read, ReadDenied};
use dstorage_client::api::{ChallengeResponse, GrantInfo, GrantsResponse, QueryResponse};
use dstorage_types::caller::Caller;
use dstorage_types::read::{ReadEnvelope, ReadRequest};

use crate::api::{blocking, ApiError, ApiResult, ApiState};
use crate::readauth::ReadAuthError;

impl From<ReadAuthError> for ApiError {
    fn from(e: ReadAuthError) -> ApiError {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl From<ReadDenied> for ApiError {
    fn from(e: ReadDenied) -> ApiError {
        match e {
            ReadDenied::SignatureRequired { .. } => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "signature_required",
                e.to_string(),
            ),
            _ => ApiError::new(StatusCode::FORBIDDEN, "forbidden", e.to_string()),
        }
    }
}

/// Parse a read envelope body (400 `bad_request` naming the fault, 413 when too large).
pub fn parse_envelope(
    body: Result<Json<ReadEnvelope>, axum::extract::rejection::JsonRejection>,
) -> Result<(ReadEnvelope, ReadRequest), ApiError> {
    let Json(envelope) = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("request body too large: {e}"),
            )
        } else {
            ApiError::bad_request(format!("invalid request body: {e}"))
        }
    })?;
    let request = envelope
        .request()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok((envelope, request))
}

/// The caller a read runs as: `None` for an unsigned envelope, else the verified signer (the challenge is spent).
/// Errors are 401 (`wrong_chain_id`, `bad_challenge`, `challenge_expired`, `challenge_used`, `unknown_standard`,
/// `bad_signature`) or 503 `busy`.
pub fn read_caller(
    s: &ApiState,
    envelope: &ReadEnvelope,
    request: &ReadRequest,
) -> Result<Option<Caller>, ApiError> {
    let Some(auth) = &envelope.auth else {
        return Ok(None);
    };
    let chain_id = s
        .app
        .committed()
        .chain_id
        .ok_or_else(|| ApiError::internal("the node has not initialised its chain yet"))?;
    Ok(Some(
        s.reads_auth
            .authenticate(envelope, request, auth, &chain_id)?,
    ))
}

/// `GET /v1/challenge`.
pub async fn challenge(State(s): State<ApiState>) -> Json<ChallengeResponse> {
    let c = s.reads_auth.issue();
    Json(ChallengeResponse {
        challenge: c.challenge,
        expires_at: c.expires_at,
    })
}

/// `POST /v1/query`: one SELECT, by the owner of every schema it names, or of schemas that are public.
pub async fn query(
    State(s): State<ApiState>,
    body: Result<Json<ReadEnvelope>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<QueryResponse> {
    let (envelope, request) = parse_envelope(body)?;
    let ReadRequest::Sql { sql, params } = request.clone() else {
        return Err(ApiError::bad_request(
            "POST /v1/query runs SQL; call an action with POST /v1/call",
        ));
    };
    // Signature checks are CPU work: off the async workers, like the read itself.
    let state = s.clone();
    let caller =
        blocking(move || read_caller(&state, &envelope, &request).map(|c| (c, envelope))).await??;
    let (caller, envelope) = caller;
    let app = s.app.clone();
    let limit = app.config().cost_limit_per_tx;
    let height = app.committed().height;
    let r = blocking(move || -> Result<_, ApiError> {
        let reads = app.reads();
        let schema = &envelope.schema;
        let who = caller.as_ref().map(|c| c.identity.as_str());
        let Some(owner) = reads.owner(schema).map_err(ApiError::from_sql)? else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "schema_not_found",
                format!("schema {schema} does not exist"),
            ));
        };
        // The schema the read runs in first, before its SQL is even parsed.
        let public = reads.public_read(schema).map_err(ApiError::from_sql)?;
        may_read(schema, &owner, public, who)?;
        // Then every other schema the statement names.
        for named in reads
            .schemas_named(schema, &sql)
            .map_err(ApiError::from_sql)?
        {
            if named == *schema {
                continue;
            }
            let owner = reads
                .owner(&named)
                .map_err(ApiError::from_sql)?
                .unwrap_or_default();
            let public = reads.public_read(&named).map_err(ApiError::from_sql)?;
            may_read(&named, &owner, public, who)?;
        }
        reads
            .query_with_params(schema, &sql, &params, limit)
            .map_err(ApiError::from_sql)
    })
    .await??;
    Ok(Json(QueryResponse {
        columns: r.columns,
        rows: r.rows,
        cost: r.cost,
        height,
    }))
}

/// Filters of `GET /v1/grants`.
#[derive(Debug, serde::Deserialize)]
pub struct GrantsQuery {
    owner: Option<String>,
    grantee: Option<String>,
    data_id: Option<String>,
}

/// `GET /v1/grants?owner=&grantee=&data_id=`: at least one of owner and grantee.
pub async fn grants(
    State(s): State<ApiState>,
    query: Result<Query<GrantsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<GrantsResponse> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))?;
    let registry = dstorage_auth::default_registry();
    let canonical = |who: &str, text: Option<String>| -> Result<Option<String>, ApiError> {
        text.filter(|t| !t.is_empty())
            .map(|t| {
                registry.canonical_identity(&t).map_err(|e| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "bad_identity",
                        format!("{who}: {e}"),
                    )
                })
            })
            .transpose()
    };
    let owner = canonical("owner", q.owner)?;
    let grantee = canonical("grantee", q.grantee)?;
    if owner.is_none() && grantee.is_none() {
        return Err(ApiError::bad_request(
            "name at least one of owner and grantee (data_id alone is not a filter)",
        ));
    }
    let data_id = q.data_id.filter(|d| !d.is_empty());
    let app = s.app.clone();
    let height = app.committed().height;
    let list = blocking(move || {
        app.reads()
            .grants(owner.as_deref(), grantee.as_deref(), data_id.as_deref())
    })
    .await?
    .map_err(ApiError::from_sql)?;
    Ok(Json(GrantsResponse {
        grants: list
            .into_iter()
            .map(|g| GrantInfo {
                owner: g.owner,
                grantee: g.grantee,
                data_id: g.data_id,
                locked_until: g.locked_until,
                origin: g.origin,
                height: g.height,
            })
            .collect(),
        height,
    }))
}
