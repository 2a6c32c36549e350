//! The record on the operator API: a line's checkpoints, a new checkpoint offered to the line's
//! other members, and a line's export bundle (`docs/RECORD.md`).

use std::sync::Arc;

use adi_store::{CheckpointKey, Page};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::auth::Auth;
use super::error::{check_writable, ApiJson, ApiPath, ApiQuery};
use super::lines::find_line;
use super::paging::{self, page_len, ListUrl, Paged};
use super::views::{ArchiveRequest, ArchiveView, CheckpointView, ExportParams, ListParams, NewCheckpointView};
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

/// The window and form of an operations report.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    /// Start of the window, ms since the Unix epoch (this node's clock); default: `to_ms` less
    /// the node's `report_default_window_ms` (30 days).
    pub from_ms: Option<u64>,
    /// End of the window (not included); default: now.
    pub to_ms: Option<u64>,
    /// `json` (the default) or `html`: one self-contained page with its plots, no script.
    pub format: Option<String>,
}

/// The operations report
///
/// How this member's hotline did over a window, from this node's record: each link's tests
/// (answered over sent, round trips, outages), the time each answer to this member's messages
/// took, by precedence and member (late and missing ones counted), the alarms open in the window,
/// the traffic by precedence and class. A window is at most the node's `report_window_ms_max`.
///
/// Roles: any operator.
#[utoipa::path(get, path = "/api/v1/report", tag = "record", params(ReportParams),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Object, description = "the report as JSON, or as an HTML page with `format=html`"),
              (status = 400, body = ErrorBody, description = "`bad_range`: `from_ms` is not before `to_ms`, or the window is longer than the node's `report_window_ms_max`; `bad_format`: neither `json` nor `html`")))]
pub async fn report(
    State(node): State<Arc<NodeState>>,
    _auth: Auth,
    ApiQuery(p): ApiQuery<ReportParams>,
) -> Result<Response, ApiError> {
    let now = crate::clock::now_ms();
    let to = p.to_ms.unwrap_or(now);
    let from = p.from_ms.unwrap_or(to.saturating_sub(node.runtime_limits.report_default_window_ms));
    let bad = |code: &'static str, message: String| ApiError::new(StatusCode::BAD_REQUEST, code, message);
    if from >= to {
        return Err(bad("bad_range", format!("from_ms {from} is not before to_ms {to}")));
    }
    let max = node.runtime_limits.report_window_ms_max;
    if to - from > max {
        return Err(bad(
            "bad_range",
            format!("the window is {} ms long; at most {max} (report_window_ms_max)", to - from),
        ));
    }
    let html = match p.format.as_deref() {
        None | Some("json") => false,
        Some("html") => true,
        Some(other) => return Err(bad("bad_format", format!("no report format {other}: json or html"))),
    };
    let (peers, interval_ms) = {
        let core = node.core();
        let peers: Vec<String> = core.links(now).into_iter().map(|(h, _)| h.peer.to_string()).collect();
        (peers, core.discipline().link_test_interval_s.saturating_mul(1000))
    };
    let rows = node.store.report_rows(&node.member, from, to)?;
    let report = crate::report::Report::new(node.member.as_str(), (from, to), now, interval_ms, &peers, rows);
    if !html {
        return Ok(Json(report).into_response());
    }
    let policy =
        HeaderValue::from_str(&crate::report::page_policy()).unwrap_or(HeaderValue::from_static("default-src 'none'"));
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (header::CONTENT_SECURITY_POLICY, policy),
        ],
        report.html(),
    )
        .into_response())
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
) -> Result<Response, ApiError> {
    use sha2::Digest;
    let line = find_line(&node, &line)?;
    let failed = |e: String| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "export_failed", e);
    crate::fed::checkpoints::cover(&node, line.id).await.map_err(|e| failed(e.to_string()))?;
    let (bundle, arrivals) =
        crate::record::export(&node, line.id, p.from_ms, p.to_ms, p.without_files).await.map_err(failed)?;
    let bytes = serde_json::to_vec(&bundle).map_err(|e| failed(e.to_string()))?;
    // Noted by the hash of exactly these bytes, so that whoever keeps them can confirm it
    // archived them (`confirm_archive`). The record is read even while the database cannot be
    // written; such an export cannot be confirmed, and retention prunes nothing it holds. Nor can
    // one without its files, which it does not hold.
    if let Some((first_arrival, last_arrival)) = arrivals.filter(|_| !p.without_files) {
        let now = crate::clock::now_ms();
        let served = adi_store::ArchiveRow {
            line: line.id,
            sha256: sha2::Sha256::digest(&bytes).into(),
            first_arrival,
            last_arrival,
            envelopes: bundle.envelopes.len() as u64,
            served_ms: now,
            confirmed_ms: None,
        };
        let forget = now.saturating_sub(node.runtime_limits.archive_confirm_window_ms);
        if let Err(e) = node.store.add_archive(served, forget).wait().await {
            tracing::warn!(line = %line.id, error = %e, "the export served cannot be noted, nor confirmed archived");
        }
    }
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], bytes).into_response())
}

/// Confirms an export archived
///
/// Says that an export of the line this node served (`GET /api/v1/lines/{line}/export`), named by
/// the SHA-256 of its bytes exactly as served, is kept in lasting storage. Retention may then prune
/// here the content of the messages it holds, once their class's time is past (`[retention]`,
/// `docs/OPERATIONS.md`, "Retention"); nothing an archive does not hold is pruned. An export is
/// confirmed within `archive_confirm_window_ms` of being served; confirming again changes nothing.
/// `adi export --archive` confirms once it has written the bundle and read it back.
///
/// Roles: admin.
#[utoipa::path(post, path = "/api/v1/lines/{line}/archives", tag = "record", operation_id = "confirm_archive",
    request_body = ArchiveRequest,
    params(("line" = String, Path, description = "line id: 32 hex digits")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 200, body = ArchiveView, description = "the export, confirmed archived"),
              (status = 400, body = ErrorBody, description = "`bad_sha256`: not 64 hex digits"),
              (status = 403, body = ErrorBody, description = "`role`: only administrators confirm archives"),
              (status = 404, body = ErrorBody, description = "`unknown_line`: no such line here; `unknown_export`: this node served no export of the line with those bytes within `archive_confirm_window_ms`"),
              (status = 503, body = ErrorBody, description = "writes are refused while the database cannot be written")))]
pub async fn confirm_archive(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
    ApiPath(line): ApiPath<String>,
    ApiJson(body): ApiJson<ArchiveRequest>,
) -> Result<Json<ArchiveView>, ApiError> {
    if auth.0.role != adi_core::Role::Admin {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "role", "only administrators confirm archives"));
    }
    let line = find_line(&node, &line)?;
    let mut sha256 = [0u8; 32];
    hex::decode_to_slice(body.sha256.trim(), &mut sha256).map_err(|_| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_sha256", "sha256: the SHA-256 of the export's bytes, 64 hex digits")
    })?;
    check_writable(&node)?;
    let now = crate::clock::now_ms();
    let window = node.runtime_limits.archive_confirm_window_ms;
    let since = now.saturating_sub(window);
    let confirmed = node.store.confirm_archive(line.id, sha256, since, auth.0.name.clone(), now).wait().await;
    let Some(archive) = confirmed.inspect_err(|e| _ = node.fail_storage(e))? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_export",
            format!(
                "this node served no export of line {} with SHA-256 {} in the last {window} ms",
                line.id,
                hex::encode(sha256)
            ),
        ));
    };
    tracing::info!(operator = %auth.0.name, line = %line.id, envelopes = archive.envelopes, "export archived");
    Ok(Json(ArchiveView::from(archive)))
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
