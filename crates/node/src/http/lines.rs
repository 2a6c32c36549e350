//! Lines on the operator API: opening one (a KeyPackage claimed from each other member's node),
//! listing and reading them, key updates, adding and removing members, and leaving.

use std::sync::Arc;

use adi_core::{CoreError, Line, NewLine};
use adi_wire::LineId;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::auth::Auth;
use super::error::{check_writable, ApiJson, ApiPath, ApiQuery};
use super::paging::{self, page_len, ListUrl, Paged};
use super::views::{LineView, ListParams, NewLineRequest, NewMemberRequest};
use crate::clock::now_ms;
use crate::driver::{commit_own, commit_own_records};
use crate::error::{ApiError, ErrorBody};
use crate::fed::links::claim_checked_key_package;
use crate::state::NodeState;

/// Opens a line
///
/// A KeyPackage is claimed from each other member's node, and the line is created as an MLS group
/// with this member as its home member.
///
/// Roles: duty, principal, admin.
#[utoipa::path(post, path = "/api/v1/lines", tag = "lines", request_body = NewLineRequest,
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 201, body = LineView, description = "the line, committed here and brought to every member"),
               (status = 400, body = ErrorBody, description = "`bad_scope`, `bad_member_code`, `unknown_member`, `repeated_member`, `too_few_members`, `too_many_members`, `title_too_long`, a title that holds a control character"),
               (status = 403, body = ErrorBody, description = "`role`: the operator may not send; `scope_policy`: the scope does not admit a member; `not_a_member`: this member is not among them"),
               (status = 409, body = ErrorBody, description = "`line_exists`: a direct line of that scope between the two members exists; `too_many_lines`"),
               (status = 503, body = ErrorBody, description = "`member_unreachable`: a member's node gave no KeyPackage; or writes are refused while the database cannot be written")))]
pub async fn create_line(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
    ApiJson(req): ApiJson<NewLineRequest>,
) -> Result<(StatusCode, Json<LineView>), ApiError> {
    auth.require_sender()?;
    check_writable(&node)?;
    let id = LineId(rand::random());
    let new_line = NewLine { members: req.members, scope: req.scope, title: req.title };
    let others = node.core().check_new_line(&new_line)?;
    let mut key_packages = Vec::with_capacity(others.len());
    for member in others {
        let kp = claim_checked_key_package(&node, &member).await.map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "member_unreachable",
                format!("cannot open the line: no KeyPackage from {member}'s node: {e}"),
            )
        })?;
        key_packages.push((member, kp));
    }
    commit_own(&node, |core| core.create_line(now_ms(), id, new_line, key_packages)).await?;
    let view = LineView::from(&find_line(&node, &id.to_hex())?);
    tracing::info!(operator = %auth.0.name, line = %view.id, "line created");
    Ok((StatusCode::CREATED, Json(view)))
}

/// Lists the lines
///
/// Every line this member is on, oldest first (by the time it was opened, then id).
///
/// Pages of `limit` lines (default and most: the node's `list_len_max`); `after` is the cursor
/// the `Link` header of the page before gives. While more remain, the `Link` header names the
/// next page (`rel="next"`); without it the list is complete.
///
/// Roles: any operator.
#[utoipa::path(get, path = "/api/v1/lines", tag = "lines", params(ListParams),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<LineView>, description = "a page of the lines, oldest first",
               headers(("Link" = String, description = "the next page, `<...>; rel=\"next\"` (RFC 8288), while more remain; absent on the last page"))),
              (status = 400, body = ErrorBody, description = "`bad_limit`: a limit outside 1 to the node's `list_len_max`; `bad_cursor`: `after` is not a cursor the node gave for the lines")))]
pub async fn list_lines(
    State(node): State<Arc<NodeState>>,
    _auth: Auth,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Paged<LineView>, ApiError> {
    let limit = page_len(&node, p.limit, node.runtime_limits.list_len_max)?;
    let after = paging::after_line(p.after.as_deref())?;
    let core = node.core();
    let mut lines: Vec<&Line> =
        core.lines().filter(|l| after.is_none_or(|place| (l.created_ms, l.id) > place)).collect();
    lines.sort_by_key(|l| (l.created_ms, l.id));
    lines.truncate(limit.saturating_add(1));
    let views = lines.into_iter().map(|l| LineView { epoch: core.epoch(&l.id), ..LineView::from(l) }).collect();
    let (lines, next) = paging::cut(views, limit, |l: &LineView| Ok(paging::line_cursor(l.created_ms, &l.id)))?;
    Ok(Paged::new(lines, ListUrl::new("/api/v1/lines").next(limit, "after", next)))
}

pub(crate) fn find_line(node: &NodeState, id: &str) -> Result<Line, ApiError> {
    LineId::from_hex(id)
        .and_then(|id| node.core().line(&id).cloned())
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_line", format!("no line {id} here")))
}

/// Updates this member's keys on a line
///
/// The home member commits a key update; another member proposes one, which the home member
/// commits.
///
/// Roles: duty, principal, admin.
#[utoipa::path(post, path = "/api/v1/lines/{line}/update-keys", tag = "lines", params(("line" = String, Path, description = "line id: 32 hex digits")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 200, body = LineView, description = "the home member committed a key update, or another member proposed one"),
              (status = 403, body = ErrorBody, description = "`role`: the operator may not send; `removed`: this member is no longer on the line"),
              (status = 404, body = ErrorBody, description = "`unknown_line`: no such line here"),
              (status = 409, body = ErrorBody, description = "`member_behind`: a member has not been heard from for so many epochs that another key update could lose what is queued for it; key updates wait until it is heard from"),
              (status = 503, body = ErrorBody, description = "writes are refused while the database cannot be written")))]
pub async fn update_keys(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
    ApiPath(line): ApiPath<String>,
) -> Result<Json<LineView>, ApiError> {
    change_line(&node, &auth, &line, "key update", |core, line| core.update_keys(now_ms(), line)).await
}

/// Has the core seal one of this node's envelopes that changes a line (a key update, a leaving, a
/// removal), commits it, and answers the line as it now stands.
pub async fn change_line(
    node: &NodeState,
    auth: &Auth,
    line: &str,
    what: &str,
    seal: impl FnOnce(&mut adi_core::Hotline, LineId) -> Result<adi_core::Record, CoreError>,
) -> Result<Json<LineView>, ApiError> {
    auth.require_sender()?;
    check_writable(node)?;
    let id = find_line(node, line)?.id;
    commit_own(node, |core| seal(core, id)).await?;
    let line = find_line(node, &id.to_hex())?;
    let epoch = node.core().epoch(&line.id);
    tracing::info!(operator = %auth.0.name, line = %line.id, "{what}");
    Ok(Json(LineView { epoch, ..LineView::from(&line) }))
}

/// Adds a member to a line
///
/// Only the line's home member adds members: a KeyPackage is claimed from the new member's node,
/// and the addition is committed and the member brought in.
///
/// Roles: duty, principal, admin.
#[utoipa::path(post, path = "/api/v1/lines/{line}/members", tag = "lines", request_body = NewMemberRequest,
    params(("line" = String, Path, description = "line id: 32 hex digits")), security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 200, body = LineView, description = "the addition is committed and the member brought in"),
              (status = 400, body = ErrorBody, description = "`bad_member_code`, `unknown_member`, `too_many_members`"),
              (status = 403, body = ErrorBody, description = "`role`: the operator may not send; `not_home`: not the home member; `scope_policy`: the scope does not admit the member"),
              (status = 404, body = ErrorBody, description = "`unknown_line`: no such line here"),
              (status = 409, body = ErrorBody, description = "`already_on_line`, or `direct_line`"),
              (status = 503, body = ErrorBody, description = "`member_unreachable`: the member's node gave no KeyPackage; or writes are refused while the database cannot be written")))]
pub async fn add_member(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
    ApiPath(line): ApiPath<String>,
    ApiJson(req): ApiJson<NewMemberRequest>,
) -> Result<Json<LineView>, ApiError> {
    auth.require_sender()?;
    check_writable(&node)?;
    let line = find_line(&node, &line)?;
    let member = adi_core::MemberCode::parse(&req.member)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_member_code", e))?;
    node.core().check_new_member(line.id, &member)?;
    let kp = claim_checked_key_package(&node, &member).await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "member_unreachable",
            format!("cannot add {member}: no KeyPackage from its node: {e}"),
        )
    })?;
    commit_own_records(&node, |core| core.add_member(now_ms(), line.id, &member, kp)).await?;
    let line = find_line(&node, &line.id.to_hex())?;
    let epoch = node.core().epoch(&line.id);
    tracing::info!(operator = %auth.0.name, line = %line.id, member = %member, "member added to the line");
    Ok(Json(LineView { epoch, ..LineView::from(&line) }))
}

/// Removes a member from a line
///
/// Only the line's home member removes members; the member removed reads nothing sent after it.
///
/// Roles: duty, principal, admin.
#[utoipa::path(delete, path = "/api/v1/lines/{line}/members/{member}", tag = "lines",
    params(("line" = String, Path, description = "line id: 32 hex digits"), ("member" = String, Path, description = "member code")), security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 200, body = LineView, description = "the removal is committed; the member reads nothing sent after it"),
              (status = 403, body = ErrorBody, description = "`role`: the operator may not send; `not_home`: not the line's home member"),
              (status = 404, body = ErrorBody, description = "`unknown_line`; `not_on_line`: the member is not on the line"),
              (status = 409, body = ErrorBody, description = "`cannot_remove`: the home member, or a line of two"),
              (status = 503, body = ErrorBody, description = "writes are refused while the database cannot be written")))]
pub async fn remove_member(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
    ApiPath((line, member)): ApiPath<(String, String)>,
) -> Result<Json<LineView>, ApiError> {
    let what = format!("{member} removed from the line");
    change_line(&node, &auth, &line, &what, |core, line| {
        let member = adi_core::MemberCode::parse(&member).map_err(|e| CoreError::not_found("not_on_line", e))?;
        core.remove_member(now_ms(), line, &member)
    })
    .await
}

/// Leaves a line
///
/// The leaving is proposed; the home member commits it. The home member cannot leave its line,
/// and neither member leaves a direct line.
///
/// Roles: duty, principal, admin.
#[utoipa::path(post, path = "/api/v1/lines/{line}/leave", tag = "lines", params(("line" = String, Path, description = "line id: 32 hex digits")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 200, body = LineView, description = "the leaving is proposed; the home member commits it"),
              (status = 403, body = ErrorBody, description = "`role`: the operator may not send; the home member, or not on the line"),
              (status = 404, body = ErrorBody, description = "`unknown_line`: no such line here"),
              (status = 409, body = ErrorBody, description = "`cannot_leave`: a direct line"),
              (status = 503, body = ErrorBody, description = "writes are refused while the database cannot be written")))]
pub async fn leave_line(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
    ApiPath(line): ApiPath<String>,
) -> Result<Json<LineView>, ApiError> {
    change_line(&node, &auth, &line, "leaving the line proposed", |core, line| core.leave(now_ms(), line)).await
}

/// Reads a line
///
/// Roles: any operator.
#[utoipa::path(get, path = "/api/v1/lines/{line}", tag = "lines", params(("line" = String, Path, description = "line id: 32 hex digits")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = LineView, description = "the line, with its MLS epoch here"),
              (status = 404, body = ErrorBody, description = "`unknown_line`: no such line here")))]
pub async fn get_line(
    State(node): State<Arc<NodeState>>,
    _auth: Auth,
    ApiPath(line): ApiPath<String>,
) -> Result<Json<LineView>, ApiError> {
    let line = find_line(&node, &line)?;
    let epoch = node.core().epoch(&line.id);
    Ok(Json(LineView { epoch, ..LineView::from(&line) }))
}
