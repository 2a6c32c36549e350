//! The error every HTTP answer of the node carries, on the operator API and on the federation
//! listener alike: `{"error": code, "message": text}` (and `field`, when one field is at fault)
//! with the status of its kind ([`ApiError`], [`ErrorBody`]); internals are logged, never sent. A
//! write refused while the database cannot be written is answered 503 naming the cause
//! ([`storage_refusal`]). A request's body is read within the time the node allows
//! ([`TimedBytes`], [`with_body_deadline`]) on both listeners.

use std::time::Duration;

use adi_store::{StoreError, WriteFault};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::state::{fault_code, fault_text, StorageRefusal};

/// An error as the API reports it.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

/// The JSON body of every error.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// A stable machine-readable code, such as `too_many_words`.
    pub error: String,
    /// A sentence for people.
    pub message: String,
    /// The field at fault, as a path into the request (`form.reporting_unit.course_deg`), when
    /// one field is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), field: None }
    }

    /// A 400 whose fault lies in one field, named by its path in the request.
    pub fn bad_field(code: &'static str, field: String, message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, code, message: message.into(), field: Some(field) }
    }

    pub fn unauthorized(message: &str) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// The node cannot complete the write now; the client may try again later.
    pub fn unavailable() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the node cannot complete the write now; try again later",
        )
    }

    pub fn from_body_rejection(e: BytesRejection) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "the request body is over the size limit")
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_body", e.body_text())
        }
    }

    pub(crate) fn internal(e: StoreError) -> Self {
        tracing::error!(error = %e, "request failed on storage");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the node could not complete the request")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: self.code.to_string(), message: self.message, field: self.field };
        (self.status, Json(body)).into_response()
    }
}

/// The answer to a write refused because the database cannot be written: 503, naming the cause.
pub fn storage_refusal(fault: &WriteFault) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        fault_code(fault),
        format!(
            "{}; the node refuses writes until its database can be written again, and then takes them by itself",
            fault_text(fault)
        ),
    )
}

impl From<StorageRefusal> for ApiError {
    fn from(refusal: StorageRefusal) -> Self {
        storage_refusal(&refusal.fault)
    }
}

/// When a request's body must have been read by.
#[derive(Clone, Copy)]
struct BodyDeadline(tokio::time::Instant);

/// Stamps every request a router takes with the time by which its body must have arrived:
/// `within` (`http_body_timeout_ms`) of its headers.
pub fn with_body_deadline<S: Clone + Send + Sync + 'static>(router: Router<S>, within: Duration) -> Router<S> {
    router.layer(axum::middleware::from_fn(move |mut req: Request, next: axum::middleware::Next| {
        req.extensions_mut().insert(BodyDeadline(tokio::time::Instant::now() + within));
        next.run(req)
    }))
}

/// A request's whole body, read by its deadline: a client (an operator's or a peer's) that
/// sends it slower is answered 408 `body_timeout` and its connection freed, whatever the size;
/// one over the size limit is answered 413.
pub struct TimedBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for TimedBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let deadline = req.extensions().get::<BodyDeadline>().copied();
        let read = Bytes::from_request(req, state);
        let bytes = match deadline {
            Some(BodyDeadline(at)) => tokio::time::timeout_at(at, read).await.map_err(|_| {
                ApiError::new(StatusCode::REQUEST_TIMEOUT, "body_timeout", "the body did not arrive in time")
            })?,
            None => read.await,
        };
        bytes.map(TimedBytes).map_err(ApiError::from_body_rejection)
    }
}
