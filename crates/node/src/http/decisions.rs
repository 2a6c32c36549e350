//! The operator API of mutual decisions: propose an exact text on a line, and concur with or
//! decline it; a decision is final when every required party concurred over its exact text.

use std::sync::Arc;

use adi_core::{Concurrence, Decision, MemberCode};
use adi_store::{DecisionRow, Page, TimeKey};
use adi_wire::EnvelopeHash;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Auth;
use super::error::{check_writable, ApiJson, ApiPath, ApiQuery};
use super::lines::find_line;
use super::paging::{self, page_len, ListUrl, Paged};
use super::views::ListParams;
use crate::clock::now_ms;
use crate::driver::commit_own;
use crate::error::{ApiError, ErrorBody};
use crate::state::NodeState;

/// A decision to propose.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDecisionRequest {
    /// The exact text; what each party concurs with.
    #[schema(min_length = 1)]
    pub text: String,
    /// The members whose concurrence makes it final (default: every member of the line).
    #[serde(default)]
    pub parties: Option<Vec<String>>,
    /// Seconds within which the parties are asked to answer; the time they end at, in
    /// milliseconds since 1970, must fit in 63 bits.
    #[serde(default)]
    pub deadline_s: Option<u64>,
    /// The decision (id) this version replaces.
    #[serde(default)]
    pub supersedes: Option<String>,
}

/// An answer to a decision.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionAnswerRequest {
    /// SHA-256 (hex) of the text the operator read; refused if it is not the decision's text.
    #[serde(default)]
    pub text_sha256: Option<String>,
    /// Why, when declining.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A party's answer to a decision.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct DecisionAnswerView {
    pub id: String,
    pub member: String,
    pub concur: bool,
    pub reason: Option<String>,
    pub signed_ms: u64,
    /// Whether the answer names this decision's exact text (only such answers count).
    pub over_this_text: bool,
}

/// A decision with its parties' answers.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct DecisionView {
    pub id: String,
    pub line: String,
    pub proposer: String,
    pub text: String,
    pub text_sha256: String,
    pub parties: Vec<String>,
    pub deadline_ms: Option<u64>,
    pub supersedes: Option<String>,
    pub superseded_by: Option<String>,
    pub created_ms: u64,
    /// `open`, `final`, `declined` or `superseded`.
    pub state: String,
    /// Parties whose concurrence is still missing.
    pub missing: Vec<String>,
    pub answers: Vec<DecisionAnswerView>,
}

impl From<DecisionRow> for DecisionView {
    fn from(d: DecisionRow) -> Self {
        DecisionView {
            id: d.id.to_hex(),
            line: d.line.to_hex(),
            proposer: d.proposer.to_string(),
            text: d.text.clone(),
            text_sha256: hex::encode(d.text_sha256),
            parties: d.parties.iter().map(|p| p.to_string()).collect(),
            deadline_ms: d.deadline_ms,
            supersedes: d.supersedes.map(|h| h.to_hex()),
            superseded_by: d.superseded_by.map(|h| h.to_hex()),
            created_ms: d.created_ms,
            state: d.state().to_string(),
            missing: d.missing().iter().map(|m| m.to_string()).collect(),
            answers: d
                .answers
                .iter()
                .map(|a| DecisionAnswerView {
                    id: a.hash.to_hex(),
                    member: a.member.to_string(),
                    concur: a.concur,
                    reason: a.reason.clone(),
                    signed_ms: a.signed_ms,
                    over_this_text: a.text_sha256 == d.text_sha256,
                })
                .collect(),
        }
    }
}

fn load(node: &NodeState, id: &EnvelopeHash) -> Result<DecisionRow, ApiError> {
    node.store
        .decisions(None, Some(id), adi_store::Page::all())?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_decision", format!("no decision {id} here")))
}

fn decision_id(id: &str) -> Result<EnvelopeHash, ApiError> {
    EnvelopeHash::from_hex(id)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_decision", format!("no decision {id} here")))
}

/// Proposes a decision on a line
///
/// An exact text, the parties whose concurrence makes it final (every member of the line when
/// none are named), and the version it replaces, if any.
///
/// Roles: duty, principal, admin.
#[utoipa::path(post, path = "/api/v1/lines/{line}/decisions", tag = "decisions", operation_id = "propose_decision",
    request_body = NewDecisionRequest, params(("line" = String, Path, description = "line id: 32 hex digits")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 201, body = DecisionView, description = "proposed: committed here and sent to the line"),
              (status = 400, body = ErrorBody, description = "`empty_text`, `bad_member_code`, `party_not_on_line`, `repeated_party`, `bad_deadline`, `other_line`, a text that breaks a text rule"),
              (status = 403, body = ErrorBody, description = "`role`: the operator may not send; `removed`: this member is no longer on the line"),
              (status = 404, body = ErrorBody, description = "`unknown_line`; `unknown_decision`: the decision to replace"),
              (status = 503, body = ErrorBody, description = "writes are refused while the database cannot be written")))]
pub async fn propose(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
    ApiPath(line): ApiPath<String>,
    ApiJson(req): ApiJson<NewDecisionRequest>,
) -> Result<(StatusCode, Json<DecisionView>), ApiError> {
    auth.require_sender()?;
    check_writable(&node)?;
    let line = find_line(&node, &line)?;
    let bad = |code: &'static str, m: String| ApiError::new(StatusCode::BAD_REQUEST, code, m);
    let parties = req
        .parties
        .unwrap_or_default()
        .iter()
        .map(|p| MemberCode::parse(p).map_err(|e| bad("bad_member_code", e)))
        .collect::<Result<Vec<_>, _>>()?;
    // The deadline is kept as milliseconds since 1970 in an SQLite integer.
    let kept =
        |s: u64| s.checked_mul(1000).and_then(|ms| ms.checked_add(now_ms())).is_some_and(|t| t <= i64::MAX as u64);
    if let Some(s) = req.deadline_s.filter(|s| !kept(*s)) {
        return Err(bad("bad_deadline", format!("a deadline {s} s from now is past any time the node can keep")));
    }
    let supersedes = match req.supersedes.as_deref() {
        None => None,
        Some(s) => {
            let old = load(&node, &decision_id(s)?)?;
            if old.line != line.id {
                return Err(bad("other_line", "the decision replaced is on another line".into()));
            }
            Some(old.id)
        }
    };
    let decision = Decision { text: req.text, parties, deadline_s: req.deadline_s, supersedes };
    let id = commit_own(&node, |core| core.propose_decision(now_ms(), line.id, decision)).await?;
    tracing::info!(operator = %auth.0.name, line = %line.id, decision = %id, "decision proposed");
    Ok((StatusCode::CREATED, Json(DecisionView::from(load(&node, &id)?))))
}

/// Lists a line's decisions
///
/// Oldest first (by the time each was proposed, then id), each with its parties' answers.
///
/// Pages of `limit` decisions (default and most: the node's `list_len_max`); `after` is the
/// cursor the `Link` header of the page before gives. While more remain, the `Link` header names
/// the next page (`rel="next"`); without it the list is complete.
///
/// Roles: any operator.
#[utoipa::path(get, path = "/api/v1/lines/{line}/decisions", tag = "decisions", operation_id = "list_decisions",
    params(("line" = String, Path, description = "line id: 32 hex digits"), ListParams),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<DecisionView>, description = "a page of the line's decisions, oldest first",
               headers(("Link" = String, description = "the next page, `<...>; rel=\"next\"` (RFC 8288), while more remain; absent on the last page"))),
              (status = 400, body = ErrorBody, description = "`bad_limit`: a limit outside 1 to the node's `list_len_max`; `bad_cursor`: `after` is not a cursor the node gave for decisions"),
              (status = 404, body = ErrorBody, description = "`unknown_line`: no such line here")))]
pub async fn list(
    State(node): State<Arc<NodeState>>,
    _auth: Auth,
    ApiPath(line): ApiPath<String>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Paged<DecisionView>, ApiError> {
    let line = find_line(&node, &line)?;
    let limit = page_len(&node, p.limit, node.runtime_limits.list_len_max)?;
    let after = paging::after_time(p.after.as_deref())?;
    let rows = node.store.decisions(Some(&line.id), None, Page { from: after, limit: limit.saturating_add(1) })?;
    let (rows, next) =
        paging::cut(rows, limit, |d| Ok(paging::time_cursor(TimeKey { created_ms: d.created_ms, id: d.id })))?;
    let url = ListUrl::new(format!("/api/v1/lines/{}/decisions", line.id.to_hex()));
    Ok(Paged::new(rows.into_iter().map(DecisionView::from).collect(), url.next(limit, "after", next)))
}

/// Reads a decision
///
/// Roles: any operator.
#[utoipa::path(get, path = "/api/v1/decisions/{id}", tag = "decisions", operation_id = "get_decision",
    params(("id" = String, Path, description = "decision id: the envelope hash, 64 hex digits")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = DecisionView, description = "the decision with its answers"),
              (status = 404, body = ErrorBody, description = "`unknown_decision`: no such decision here")))]
pub async fn get_one(
    State(node): State<Arc<NodeState>>,
    _auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DecisionView>, ApiError> {
    Ok(Json(DecisionView::from(load(&node, &decision_id(&id)?)?)))
}

/// Concurs with a decision
///
/// Over its exact text: with `text_sha256`, the answer is refused if the text read is not the
/// decision's.
///
/// Roles: duty, principal, admin.
#[utoipa::path(post, path = "/api/v1/decisions/{id}/concur", tag = "decisions", operation_id = "concur_decision",
    request_body = DecisionAnswerRequest,
    params(("id" = String, Path, description = "decision id: the envelope hash, 64 hex digits")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 200, body = DecisionView, description = "the decision with this answer"),
              (status = 400, body = ErrorBody, description = "a reason that breaks a text rule"),
              (status = 403, body = ErrorBody, description = "`role`: the operator may not send; `not_a_party`; `removed`: this member is no longer on the line"),
              (status = 404, body = ErrorBody, description = "`unknown_decision`: no such decision here"),
              (status = 409, body = ErrorBody, description = "`already_answered`, `superseded`, or `text_changed`: not the text read"),
              (status = 503, body = ErrorBody, description = "writes are refused while the database cannot be written")))]
pub async fn concur(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<DecisionAnswerRequest>,
) -> Result<Json<DecisionView>, ApiError> {
    answer(&node, &auth, &id, true, body).await
}

/// Declines a decision
///
/// With a reason, over its exact text as for a concurrence.
///
/// Roles: duty, principal, admin.
#[utoipa::path(post, path = "/api/v1/decisions/{id}/decline", tag = "decisions", operation_id = "decline_decision",
    request_body = DecisionAnswerRequest,
    params(("id" = String, Path, description = "decision id: the envelope hash, 64 hex digits")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 200, body = DecisionView, description = "the decision with this answer"),
              (status = 400, body = ErrorBody, description = "`reason_required`: no reason; a reason that breaks a text rule"),
              (status = 403, body = ErrorBody, description = "`role`: the operator may not send; `not_a_party`; `removed`: this member is no longer on the line"),
              (status = 404, body = ErrorBody, description = "`unknown_decision`: no such decision here"),
              (status = 409, body = ErrorBody, description = "`already_answered`, `superseded`, or `text_changed`: not the text read"),
              (status = 503, body = ErrorBody, description = "writes are refused while the database cannot be written")))]
pub async fn decline(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<DecisionAnswerRequest>,
) -> Result<Json<DecisionView>, ApiError> {
    answer(&node, &auth, &id, false, body).await
}

async fn answer(
    node: &NodeState,
    auth: &Auth,
    id: &str,
    concur: bool,
    req: DecisionAnswerRequest,
) -> Result<Json<DecisionView>, ApiError> {
    auth.require_sender()?;
    check_writable(node)?;
    let d = load(node, &decision_id(id)?)?;
    let conflict = |code: &'static str, m: String| ApiError::new(StatusCode::CONFLICT, code, m);
    if !d.parties.contains(&node.member) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_a_party",
            format!("{} is not a party to this decision", node.member),
        ));
    }
    if let Some(newer) = d.superseded_by {
        return Err(conflict("superseded", format!("decision {newer} replaces this one; answer that")));
    }
    if let Some(read) = &req.text_sha256 {
        if !read.eq_ignore_ascii_case(&hex::encode(d.text_sha256)) {
            return Err(conflict("text_changed", "the decision's text is not the text you read".into()));
        }
    }
    if d.counted().iter().any(|(m, _)| *m == node.member) {
        return Err(conflict("already_answered", format!("{} has answered this decision", node.member)));
    }
    let answer = Concurrence { decision: d.id, text_sha256: d.text_sha256, concur, reason: req.reason };
    commit_own(node, |core| core.answer_decision(now_ms(), d.line, answer)).await?;
    tracing::info!(operator = %auth.0.name, decision = %d.id, concur, "decision answered");
    Ok(Json(DecisionView::from(load(node, &d.id)?)))
}
