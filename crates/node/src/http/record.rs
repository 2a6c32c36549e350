//! The record on the operator API: a line's checkpoints, a new checkpoint offered to the line's
//! other members, and a line's export bundle (`docs/RECORD.md`).

use std::sync::Arc;

use adi_store::{CheckpointKey, Page};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::auth::Auth;
use super::error::{check_writable, ApiPath, ApiQuery};
use super::lines::find_line;
use super::paging::{self, page_len, ListUrl, Paged};
use super::views::{CheckpointView, ExportParams, ListParams, NewCheckpointView};
use crate::error::{ApiError, ErrorBody};
use crate::fed::checkpoints::checkpoint_and_exchange;
use crate::record::CheckpointError;
use crate::state::NodeState;

/// Lists a line's checkpoints
///
/// Every checkpoint held of the line (this member's and its peers'), with its countersignatures,
/// oldest first (by time, then size, signer and root).
///
/// Pages of `limit` checkpoints (default and most: the node's `list_len_max`); `after` is the
/// cursor the `Link` header of the page before gives. While more remain, the `Link` header names
/// the next page (`rel="next"`); without it the list is complete.
///
/// Roles: any operator.
#[utoipa::path(get, path = "/api/v1/lines/{line}/checkpoints", tag = "record", operation_id = "list_checkpoints",
    params(("line" = String, Path, description = "line id: 32 hex digits"), ListParams),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<CheckpointView>, description = "a page of the checkpoints held of the line, oldest first",
               headers(("Link" = String, description = "the next page, `<...>; rel=\"next\"` (RFC 8288), while more remain; absent on the last page"))),
              (status = 400, body = ErrorBody, description = "`bad_limit`: a limit outside 1 to the node's `list_len_max`; `bad_cursor`: `after` is not a cursor the node gave for checkpoints"),
              (status = 404, body = ErrorBody, description = "`unknown_line`: no such line here")))]
pub async fn line_checkpoints(
    State(node): State<Arc<NodeState>>,
    _auth: Auth,
    ApiPath(line): ApiPath<String>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Paged<CheckpointView>, ApiError> {
    let line = find_line(&node, &line)?;
    let limit = page_len(&node, p.limit, node.runtime_limits.list_len_max)?;
    let after = paging::after_checkpoint(p.after.as_deref())?;
    let rows = node.store.checkpoints(&line.id, None, Page { from: after, limit: limit.saturating_add(1) })?;
    let (rows, next) = paging::cut(rows, limit, |r| Ok(paging::checkpoint_cursor(&CheckpointKey::of(r))))?;
    let url = ListUrl::new(format!("/api/v1/lines/{}/checkpoints", line.id.to_hex()));
    Ok(Paged::new(rows.into_iter().map(CheckpointView::from).collect(), url.next(limit, "after", next)))
}

/// Exports a line
///
/// A self-contained bundle of the line that `adi verify` checks offline (`docs/RECORD.md`,
/// "Bundles"): the log as far as the latest checkpoint covers it, offered first for
/// countersigning if it is not covered yet, and the envelopes accepted within the window.
///
/// Roles: any operator.
#[utoipa::path(get, path = "/api/v1/lines/{line}/export", tag = "record",
    params(("line" = String, Path, description = "line id: 32 hex digits"), ExportParams),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Object, description = "a self-contained bundle of the line (docs/RECORD.md, \"Bundles\")"),
              (status = 404, body = ErrorBody, description = "`unknown_line`: no such line here")))]
pub async fn export_line(
    State(node): State<Arc<NodeState>>,
    _auth: Auth,
    ApiPath(line): ApiPath<String>,
    ApiQuery(p): ApiQuery<ExportParams>,
) -> Result<Json<adi_record::bundle::Bundle>, ApiError> {
    let line = find_line(&node, &line)?;
    crate::fed::checkpoints::cover(&node, line.id)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "export_failed", e.to_string()))?;
    let bundle = crate::record::export(&node, line.id, p.from_ms, p.to_ms)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "export_failed", e))?;
    Ok(Json(bundle))
}

/// Signs a checkpoint of a line
///
/// A checkpoint of this member's log of the line, kept and offered to every other member for
/// countersigning, with what each answered.
///
/// Roles: duty, principal, admin.
#[utoipa::path(post, path = "/api/v1/lines/{line}/checkpoints", tag = "record", operation_id = "new_checkpoint",
    params(("line" = String, Path, description = "line id: 32 hex digits")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 200, body = NewCheckpointView, description = "signed, kept, and offered to every other member"),
              (status = 403, body = ErrorBody, description = "`role`: the operator may not send"),
              (status = 404, body = ErrorBody, description = "`unknown_line`: no such line here"),
              (status = 409, body = ErrorBody, description = "`tamper`: this node's log of the line does not match what it signed before"),
              (status = 503, body = ErrorBody, description = "writes are refused while the database cannot be written")))]
pub async fn new_checkpoint(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
    ApiPath(line): ApiPath<String>,
) -> Result<Json<NewCheckpointView>, ApiError> {
    auth.require_sender()?;
    check_writable(&node)?;
    let line = find_line(&node, &line)?;
    let (cp, exchanges) = checkpoint_and_exchange(&node, line.id).await.map_err(|e| match e {
        CheckpointError::Tamper(why) => ApiError::new(StatusCode::CONFLICT, "tamper", why),
        CheckpointError::Failed(why) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "checkpoint_failed", why),
    })?;
    let row = node
        .store
        .checkpoints(&line.id, Some(node.member.as_str()), Page::all())?
        .into_iter()
        .find(|r| r.checkpoint == cp)
        .unwrap_or(adi_store::CheckpointRow { checkpoint: cp, countersignatures: Vec::new() });
    tracing::info!(operator = %auth.0.name, line = %line.id, size = row.checkpoint.checkpoint.size, "checkpoint");
    Ok(Json(NewCheckpointView { checkpoint: CheckpointView::from(row), exchanges }))
}
