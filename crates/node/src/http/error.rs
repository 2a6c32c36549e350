//! How the operator API refuses: the core's refusals and the store's failures as [`ApiError`]s
//! (the error type is `crate::error`'s, shared with the federation listener), the extractors
//! whose refusals are `ApiError`s in the JSON shape like every other error (a JSON body,
//! [`ApiJson`] and [`OptionalJson`]; path parameters, [`ApiPath`]; query parameters,
//! [`ApiQuery`]), and the refusal of writes while the database cannot be written
//! (`check_writable`).

use adi_core::{CoreError, ErrorKind};
use adi_store::StoreError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use crate::driver::CommitError;
use crate::error::{storage_refusal, ApiError, TimedBytes};
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

/// A JSON body whose refusals are [`ApiError`]s: 413 over the size limit, 415 when it is not
/// `application/json`, 400 when malformed.
pub struct ApiJson<T>(pub T);

/// A JSON body that may be left out (empty, only white space, or `null`): `None` then.
pub struct OptionalJson<T>(pub Option<T>);

/// Whether a request's `Content-Type` names JSON: `application/json` or `application/*+json`,
/// parameters allowed.
fn names_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let mime = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Reads a request's body to be parsed as JSON. A body of another type is refused; so is one of
/// no type unless it is empty, so that an empty body is answered as missing JSON (or, where the
/// body may be left out, taken as none: `None`).
async fn json_body<S: Send + Sync>(req: Request, state: &S, optional: bool) -> Result<Option<Bytes>, ApiError> {
    let typed = req.headers().contains_key(header::CONTENT_TYPE);
    let json = names_json(req.headers());
    let TimedBytes(bytes) = TimedBytes::from_request(req, state).await?;
    if optional && bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if (typed && !json) || (!typed && !bytes.is_empty()) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON, sent with Content-Type: application/json",
        ));
    }
    Ok(Some(bytes))
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", e.to_string()))
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = json_body(req, state, false).await?.unwrap_or_default();
        parse(&bytes).map(ApiJson)
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match json_body(req, state, true).await? {
            Some(bytes) => parse(&bytes).map(OptionalJson),
            None => Ok(OptionalJson(None)),
        }
    }
}

/// Path parameters whose refusal is a 400 `bad_path` (a draft id that is not a number, a segment
/// that is not UTF-8 once decoded).
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            // The route and the handler disagree on the parameters: the node's fault.
            Err(e) if e.status().is_server_error() => {
                tracing::error!(error = %e.body_text(), "path parameters do not fit the handler");
                Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the node could not complete the request",
                ))
            }
            Err(e) => Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_path", e.body_text())),
        }
    }
}

/// Query parameters whose refusal is a 400 `bad_query` (a limit that is not a number, a
/// parameter the operation does not take).
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text()))
    }
}

/// Refuses a write while the node's database cannot be written.
pub(crate) fn check_writable(node: &NodeState) -> Result<(), ApiError> {
    match node.storage_failure() {
        Some(f) => Err(storage_refusal(&f.fault)),
        None => Ok(()),
    }
}
