//! `GET /v1/validators` and `GET /v1/validators/requests`: the validator set and its requests as the app's
//! committed state holds them (`dstorage_app::validators`; docs/api.md).

use axum::extract::State;
use axum::Json;
use dstorage_app::validators::{Request, RequestKind, RequestStatus};
use dstorage_client::api::{
    LeavingEntry, ValidatorEntry, ValidatorRequestEntry, ValidatorRequestsResponse,
    ValidatorsResponse,
};

use crate::api_common::{blocking, ApiError, ApiState};

/// Requests `GET /v1/validators/requests` lists at most (the newest).
pub const MAX_REQUESTS_LISTED: usize = 1000;

/// `GET /v1/validators`.
pub async fn validators(State(s): State<ApiState>) -> Result<Json<ValidatorsResponse>, ApiError> {
    let app = s.app.clone();
    // The committed height is read before the set, so the answer never claims a height newer than its data.
    let height = app.committed().height;
    let view = blocking(move || app.reads().validators())
        .await?
        .map_err(ApiError::internal)?;
    let next = height + 1;
    let t = view.params.approval_threshold;
    Ok(Json(ValidatorsResponse {
        height,
        join_expiry_blocks: view.params.join_expiry_blocks,
        threshold_numerator: t.numerator,
        threshold_denominator: t.denominator,
        needed: t.needed(view.validators.len() as u64),
        validators: view
            .validators
            .into_iter()
            .map(|v| ValidatorEntry {
                active: next >= v.active_from,
                pub_key: v.pub_key,
                address: v.address,
                power: v.power,
                node_id: v.node_id,
                p2p_address: v.p2p_address,
                added_height: v.added_height,
                active_from: v.active_from,
            })
            .collect(),
        leaving: view
            .left
            .into_iter()
            .filter(|l| l.inactive_from > next)
            .map(|l| LeavingEntry {
                pub_key: l.pub_key,
                address: l.address,
                left_height: l.left_height,
                inactive_from: l.inactive_from,
            })
            .collect(),
    }))
}

/// `GET /v1/validators/requests`.
pub async fn requests(
    State(s): State<ApiState>,
) -> Result<Json<ValidatorRequestsResponse>, ApiError> {
    let app = s.app.clone();
    let height = app.committed().height;
    let (requests, view) = blocking(move || {
        let r = app.reads().validator_requests(MAX_REQUESTS_LISTED)?;
        let v = app.reads().validators()?;
        Ok::<_, dstorage_app::AppError>((r, v))
    })
    .await?
    .map_err(ApiError::internal)?;
    let current: std::collections::BTreeSet<&str> =
        view.validators.iter().map(|v| v.pub_key.as_str()).collect();
    let needed = view
        .params
        .approval_threshold
        .needed(view.validators.len() as u64);
    let entries = requests
        .into_iter()
        .map(|r| entry(r, height + 1, &current))
        .collect();
    Ok(Json(ValidatorRequestsResponse {
        height,
        needed,
        requests: entries,
    }))
}

fn entry(
    r: Request,
    next: u64,
    current: &std::collections::BTreeSet<&str>,
) -> ValidatorRequestEntry {
    let status = match r.status_at(next) {
        RequestStatus::Pending => "pending",
        RequestStatus::Approved => "approved",
        RequestStatus::Expired => "expired",
        RequestStatus::Closed => "closed",
    };
    ValidatorRequestEntry {
        id: r.id,
        kind: match r.kind {
            RequestKind::Join => "join",
            RequestKind::Remove => "remove",
        }
        .into(),
        status: status.into(),
        votes: r
            .votes
            .into_iter()
            .filter(|v| current.contains(v.as_str()) || r.status != RequestStatus::Pending)
            .collect(),
        pub_key: r.pub_key,
        address: r.address,
        node_id: r.node_id,
        p2p_address: r.p2p_address,
        created_height: r.created_height,
        expires_at: r.expires_at,
        decided_height: r.decided_height,
    }
}
