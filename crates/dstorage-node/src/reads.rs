//! The read side of access control in the API: `GET /v1/challenge`, `POST /v1/query` (owner-only unless the
//! schema is publicly readable) and `GET /v1/grants` (`docs/api.md`, "Who can read what").
//!
//! [`read_caller`] is the one place a read envelope becomes a caller; `POST /v1/call` uses it too.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use dstorage_app::access::ReadDenied;
use dstorage_app::reads::QueryRefused;
use dstorage_client::api::{
    ChallengeResponse, EstimateResponse, GrantInfo, GrantsResponse, QueryResponse, MAX_CHALLENGES,
};
use dstorage_types::caller::Caller;
use dstorage_types::read::{ReadEnvelope, ReadRequest};

use crate::api_common::{blocking, ApiError, ApiResult, ApiState};
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

/// `?count=N` of `GET /v1/challenge`.
#[derive(Debug, serde::Deserialize)]
pub struct ChallengeQuery {
    count: Option<usize>,
}

/// `GET /v1/challenge[?count=N]`: one challenge, or N (at most `MAX_CHALLENGES`) for a client that signs many
/// reads within their lifetime; each is still single-use. Issuing stores nothing (a challenge is HMAC'd), so a
/// batch costs the node only the hashing.
pub async fn challenge(
    State(s): State<ApiState>,
    query: Result<Query<ChallengeQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<ChallengeResponse> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))?;
    let count = q.count.unwrap_or(1);
    if !(1..=MAX_CHALLENGES).contains(&count) {
        return Err(ApiError::bad_request(format!(
            "count is {count}; ask for 1 to {MAX_CHALLENGES} challenges"
        )));
    }
    let now = crate::readauth::now();
    let issued: Vec<_> = (0..count).map(|_| s.reads_auth.issue_at(now)).collect();
    let first = issued[0].clone();
    Ok(Json(ChallengeResponse {
        challenge: first.challenge,
        expires_at: first.expires_at,
        challenges: if count > 1 {
            issued.into_iter().map(|c| c.challenge).collect()
        } else {
            Vec::new()
        },
    }))
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
    let limit = s.app.config().cost_limit_per_tx;
    let height = s.app.committed().height;
    // The signature check and the read in one blocking task: both are CPU work, and one hop off the async
    // workers instead of two is measurably cheaper per read (`dstorage bench --signed-reads`).
    let state = s.clone();
    let r = blocking(move || -> Result<_, ApiError> {
        let caller = read_caller(&state, &envelope, &request)?;
        let who = caller.as_ref().map(|c| c.identity.as_str());
        state
            .app
            .reads()
            .query_as(&envelope.schema, &sql, &params, limit, who)
            .map_err(ApiError::from_sql)?
            .map_err(refused)
    })
    .await??;
    Ok(Json(QueryResponse {
        columns: r.columns,
        rows: r.rows,
        cost: r.cost,
        height,
    }))
}

/// The answer to a read the access rule refused: 404 `schema_not_found`, or the rule's 401/403.
fn refused(why: QueryRefused) -> ApiError {
    match why {
        QueryRefused::NoSchema(schema) => no_schema(&schema),
        QueryRefused::Denied(denied) => denied.into(),
    }
}

/// 404 `schema_not_found`.
fn no_schema(schema: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "schema_not_found",
        format!("schema {schema} does not exist"),
    )
}

/// `POST /v1/estimate`: the same envelope and rule as `POST /v1/query` (an estimate of a read runs it, and its
/// cost depends on the rows, so it is a read), for one statement or several (a write's estimate is planned, not
/// run; its other-schema reads are checked when it is one read statement).
pub async fn estimate(
    State(s): State<ApiState>,
    body: Result<Json<ReadEnvelope>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<EstimateResponse> {
    let (envelope, request) = parse_envelope(body)?;
    let ReadRequest::Sql { sql, .. } = request.clone() else {
        return Err(ApiError::bad_request("POST /v1/estimate estimates SQL"));
    };
    let state = s.clone();
    let (caller, envelope) =
        blocking(move || read_caller(&state, &envelope, &request).map(|c| (c, envelope))).await??;
    let app = s.app.clone();
    let e = blocking(move || -> Result<_, ApiError> {
        let reads = app.reads();
        let who = caller.as_ref().map(|c| c.identity.as_str());
        reads
            .estimate_allowed(&envelope.schema, &sql, who)
            .map_err(ApiError::from_sql)?
            .map_err(refused)?;
        reads
            .estimate(&envelope.schema, &sql)
            .map_err(ApiError::from_sql)
    })
    .await??;
    Ok(Json(EstimateResponse { cost: e.cost }))
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
