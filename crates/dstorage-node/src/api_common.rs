//! What every HTTP handler module shares: the handlers' state, the error answer (status, `{"error", "code"}`,
//! `Retry-After`) and running blocking work off the async workers. The routes are in `api` and the modules it
//! routes to, which all build on this one.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use dstorage_app::{panic_message, App};
use dstorage_client::api::ErrorResponse;
use dstorage_sql::{classify, ErrorClass, SqlError};

use crate::batcher::Batcher;
use crate::cometbft::CometRpc;
use crate::metrics::Metrics;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The application (reads, commit notifications).
    pub app: App,
    /// CometBFT's RPC (status).
    pub rpc: CometRpc,
    /// Submits transactions to CometBFT, grouped into bundles under load (`crate::batcher`).
    pub batcher: Batcher,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Challenges and signature checks of signed reads (`crate::readauth`).
    pub reads_auth: Arc<crate::readauth::ReadAuthenticator>,
}

/// An error answer: status plus `{"error", "code"}`, and a `Retry-After` header when retrying later helps.
#[derive(Debug)]
pub struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) body: ErrorResponse,
    pub(crate) retry_after: Option<Duration>,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: impl Into<String>,
        error: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            body: ErrorResponse {
                error: error.into(),
                code: code.into(),
            },
            retry_after: None,
        }
    }

    pub(crate) fn bad_request(error: impl Into<String>) -> ApiError {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", error)
    }

    pub(crate) fn internal(error: impl std::fmt::Display) -> ApiError {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            error.to_string(),
        )
    }

    pub(crate) fn from_sql(e: SqlError) -> ApiError {
        let (status, code) = match classify(&e) {
            ErrorClass::Refused => (StatusCode::UNPROCESSABLE_ENTITY, "sql_refused"),
            ErrorClass::CostLimit => (StatusCode::UNPROCESSABLE_ENTITY, "cost_limit_exceeded"),
            ErrorClass::DataLimit => (StatusCode::UNPROCESSABLE_ENTITY, "data_limit_exceeded"),
            ErrorClass::BlockFull => (StatusCode::UNPROCESSABLE_ENTITY, "block_full"),
            ErrorClass::Input => (StatusCode::BAD_REQUEST, "sql_error"),
            ErrorClass::Storage => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        Self::new(status, code, format!("{e:#}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if let Some(after) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, after.as_secs().max(1).into());
        }
        response
    }
}

pub(crate) type ApiResult<T> = Result<Json<T>, ApiError>;

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| match e.try_into_panic() {
            Ok(panic) => {
                let reason = panic_message(panic.as_ref());
                tracing::error!(%reason, "a read panicked");
                ApiError::internal(format!("the node failed while answering: {reason}"))
            }
            Err(e) => ApiError::internal(e),
        })
}
