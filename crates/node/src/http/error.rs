//! How the operator API refuses: the core's refusals and the store's failures as [`ApiError`]s
//! (the error type is `crate::error`'s, shared with the federation listener), the JSON body
//! whose refusals are `ApiError`s ([`ApiJson`]), and the refusal of writes while the database
//! cannot be written (`check_writable`).

use adi_core::{CoreError, ErrorKind};
use adi_store::StoreError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::driver::CommitError;
use crate::error::{storage_refusal, ApiError};
use crate::state::NodeState;

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        let status = match e.kind {
            ErrorKind::Invalid => StatusCode::BAD_REQUEST,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError { status, code: e.code, message: e.message, field: e.field }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal(e)
    }
}

impl From<CommitError> for ApiError {
    fn from(e: CommitError) -> Self {
        match e {
            CommitError::Core(e) => e.into(),
            CommitError::Storage(refusal) => refusal.into(),
        }
    }
}

/// A JSON body whose refusals are [`ApiError`]s: 413 over the size limit, 400 when malformed.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(ApiError::from_body_rejection)?;
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", e.to_string()))
    }
}

/// Refuses a write while the node's database cannot be written.
pub(crate) fn check_writable(node: &NodeState) -> Result<(), ApiError> {
    match node.storage_failure() {
        Some(f) => Err(storage_refusal(&f.fault)),
        None => Ok(()),
    }
}
