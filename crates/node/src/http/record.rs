//! The record on the operator API: a line's checkpoints, a new checkpoint offered to the line's
//! other members, and a line's export bundle (`docs/RECORD.md`).

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;

use super::auth::Auth;
use super::error::check_writable;
use super::lines::find_line;
use super::views::{CheckpointView, ExportParams, NewCheckpointView};
use crate::error::{ApiError, ErrorBody};
use crate::fed::checkpoints::checkpoint_and_exchange;
use crate::record::CheckpointError;
use crate::state::NodeState;

#[utoipa::path(get, path = "/api/v1/lines/{line}/checkpoints", params(("line" = String, Path, description = "line id")),
    responses((status = 200, body = Vec<CheckpointView>, description = "every checkpoint held of the line, oldest first"),
              (status = 404, body = ErrorBody)))]
pub async fn line_checkpoints(
    State(node): State<Arc<NodeState>>,
    _auth: Auth,
    Path(line): Path<String>,
) -> Result<Json<Vec<CheckpointView>>, ApiError> {
    let line = find_line(&node, &line)?;
    Ok(Json(node.store.checkpoints(&line.id, None)?.into_iter().map(CheckpointView::from).collect()))
}

#[utoipa::path(get, path = "/api/v1/lines/{line}/export", params(("line" = String, Path, description = "line id"), ExportParams),
    responses((status = 200, description = "a self-contained bundle of the line (docs/RECORD.md, \"Bundles\")"),
              (status = 404, body = ErrorBody)))]
pub async fn export_line(
    State(node): State<Arc<NodeState>>,
    _auth: Auth,
    Path(line): Path<String>,
    params: Result<Query<ExportParams>, QueryRejection>,
) -> Result<Json<adi_record::bundle::Bundle>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text()))?;
    let line = find_line(&node, &line)?;
    crate::fed::checkpoints::cover(&node, line.id)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "export_failed", e.to_string()))?;
    let bundle = crate::record::export(&node, line.id, p.from_ms, p.to_ms)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "export_failed", e))?;
    Ok(Json(bundle))
}

#[utoipa::path(post, path = "/api/v1/lines/{line}/checkpoints", params(("line" = String, Path, description = "line id")),
    responses((status = 200, body = NewCheckpointView, description = "signed, kept, and offered to every other member"),
              (status = 404, body = ErrorBody)))]
pub async fn new_checkpoint(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
    Path(line): Path<String>,
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
        .checkpoints(&line.id, Some(node.member.as_str()))?
        .into_iter()
        .find(|r| r.checkpoint == cp)
        .unwrap_or(adi_store::CheckpointRow { checkpoint: cp, countersignatures: Vec::new() });
    tracing::info!(operator = %auth.0.name, line = %line.id, size = row.checkpoint.checkpoint.size, "checkpoint");
    Ok(Json(NewCheckpointView { checkpoint: CheckpointView::from(row), exchanges }))
}
