//! The hotline's discipline on the operator API: answering messages (seen, acknowledged,
//! declined), releasing held drafts, alarms and evidence, the audit log, link health and the peers' backlog,
//! and the live event stream.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use adi_core::{AlarmKind, AlarmOp, Answered, MemberCode, Precedence, ReceiptKind};
use adi_store::{AlarmAck, AlarmRow, EventRow, Page};
use adi_wire::envelope::PRIORITY_ROUTINE;
use adi_wire::EnvelopeHash;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Auth;
use super::error::{check_writable, ApiPath, ApiQuery, OptionalJson};
use super::messages::load_message;
use super::paging::{self, page_len, ListUrl, Paged};
use super::views::{DraftView, MessageView, NewMessageRequest, NewestFirstParams, PeerView};
use crate::clock::now_ms;
use crate::driver::commit_own_answer;
use crate::error::{ApiError, ErrorBody};
use crate::state::{fault_text, NodeState, StorageFailure};

/// The body of an answer to a message, which may be left out; a decline needs a reason.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ReceiptRequest {
    pub reason: Option<String>,
}

fn parse_hash(id: &str) -> Result<EnvelopeHash, ApiError> {
    EnvelopeHash::from_hex(id)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_message", format!("no message {id} here")))
}

/// Answers a message with this member's receipt, once each: a second acknowledgement, or a decline
/// after an acknowledgement, is a conflict.
async fn answer(
    node: &NodeState,
    auth: &Auth,
    id: &str,
    kind: ReceiptKind,
    req: Option<ReceiptRequest>,
) -> Result<MessageView, ApiError> {
    auth.require_sender()?;
    let req = req.unwrap_or_default();
    let hash = parse_hash(id)?;
    // Held until the receipt is committed, so that the check below sees every earlier answer.
    let _serial = node.receipts.lock().await;
    let row = node
        .store
        .message(&hash)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_message", format!("no message {id} here")))?;
    let mine: Vec<ReceiptKind> =
        node.store.receipts(&hash)?.into_iter().filter(|r| r.member == node.member).map(|r| r.kind).collect();
    let has = |k: ReceiptKind| mine.contains(&k);
    let settled = has(ReceiptKind::Acknowledged) || has(ReceiptKind::Declined);
    match kind {
        ReceiptKind::Seen if has(ReceiptKind::Seen) || settled => return load_message(node, &hash),
        ReceiptKind::Acknowledged | ReceiptKind::Declined if settled => {
            let done = if has(ReceiptKind::Acknowledged) { "acknowledged" } else { "declined" };
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "already_answered",
                format!("this message was {done} already"),
            ));
        }
        _ => {}
    }
    let priority =
        row.precedence.as_deref().and_then(Precedence::parse).map(|p| p.priority()).unwrap_or(PRIORITY_ROUTINE);
    let answered = Answered { hash, sender: row.sender.clone(), seq: row.seq };
    commit_own_answer(node, &auth.0.name, |core| core.answer(now_ms(), row.line, answered, kind, req.reason, priority))
        .await?;
    tracing::info!(operator = %auth.0.name, message_id = %hash, answer = kind.as_str(), "message answered");
    load_message(node, &hash)
}

/// Marks another member's message seen
///
/// A signed `seen` receipt, sent to the line; once only (a second answer, or one after an
/// acknowledgement or a decline, answers the message as it stands). The body may be left out.
///
/// Roles: duty, principal, admin.
#[utoipa::path(post, path = "/api/v1/messages/{id}/seen", tag = "discipline",
    request_body(content = Option<ReceiptRequest>, description = "may be left out"),
    params(("id" = String, Path, description = "message id: the envelope hash, 64 hex digits")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 200, body = MessageView, description = "the message with its receipts"),
              (status = 403, body = ErrorBody, description = "`role`: the operator may not send; `own_message`: a member does not answer its own messages; `removed`: this member is no longer on the line"),
              (status = 404, body = ErrorBody, description = "`unknown_message`: no such message here"),
              (status = 503, body = ErrorBody, description = "writes are refused while the database cannot be written")))]
pub async fn seen(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    OptionalJson(req): OptionalJson<ReceiptRequest>,
) -> Result<Json<MessageView>, ApiError> {
    answer(&node, &auth, &id, ReceiptKind::Seen, req).await.map(Json)
}

/// Acknowledges another member's message
///
/// A signed `acknowledged` receipt, sent to the line; once only. The body may be left out.
///
/// Roles: duty, principal, admin.
#[utoipa::path(post, path = "/api/v1/messages/{id}/ack", tag = "discipline",
    request_body(content = Option<ReceiptRequest>, description = "may be left out"),
    params(("id" = String, Path, description = "message id: the envelope hash, 64 hex digits")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 200, body = MessageView, description = "the message with its receipts"),
              (status = 403, body = ErrorBody, description = "`role`: the operator may not send; `own_message`: a member does not answer its own messages; `removed`: this member is no longer on the line"),
              (status = 404, body = ErrorBody, description = "`unknown_message`: no such message here"),
              (status = 409, body = ErrorBody, description = "`already_answered`: acknowledged or declined already"),
              (status = 503, body = ErrorBody, description = "writes are refused while the database cannot be written")))]
pub async fn ack(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    OptionalJson(req): OptionalJson<ReceiptRequest>,
) -> Result<Json<MessageView>, ApiError> {
    answer(&node, &auth, &id, ReceiptKind::Acknowledged, req).await.map(Json)
}

/// Declines another member's message
///
/// A signed `declined` receipt with its reason, sent to the line; once only.
///
/// Roles: duty, principal, admin.
#[utoipa::path(post, path = "/api/v1/messages/{id}/decline", tag = "discipline", operation_id = "decline_message",
    request_body(content = Option<ReceiptRequest>, description = "the reason is required"),
    params(("id" = String, Path, description = "message id: the envelope hash, 64 hex digits")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 200, body = MessageView, description = "the message with its receipts"),
              (status = 400, body = ErrorBody, description = "`reason_required`: no reason; a reason that breaks a text rule"),
              (status = 403, body = ErrorBody, description = "`role`: the operator may not send; `own_message`: a member does not answer its own messages; `removed`: this member is no longer on the line"),
              (status = 404, body = ErrorBody, description = "`unknown_message`: no such message here"),
              (status = 409, body = ErrorBody, description = "`already_answered`: acknowledged or declined already"),
              (status = 503, body = ErrorBody, description = "writes are refused while the database cannot be written")))]
pub async fn decline(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    OptionalJson(req): OptionalJson<ReceiptRequest>,
) -> Result<Json<MessageView>, ApiError> {
    answer(&node, &auth, &id, ReceiptKind::Declined, req).await.map(Json)
}

/// Lists the messages held for a principal's release
///
/// The drafts awaiting release, newest first.
///
/// Pages of `limit` drafts (default 1,000, `drafts_page_len`; at most the node's
/// `list_len_max`); `before` is the id of the last draft of the page before. While more remain,
/// the `Link` header names the next page (`rel="next"`); without it the list is complete.
///
/// Roles: any operator.
#[utoipa::path(get, path = "/api/v1/drafts", tag = "discipline", params(NewestFirstParams),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<DraftView>, description = "a page of the drafts awaiting release, newest first",
               headers(("Link" = String, description = "the next page, `<...>; rel=\"next\"` (RFC 8288), while more remain; absent on the last page"))),
              (status = 400, body = ErrorBody, description = "`bad_limit`: a limit outside 1 to the node's `list_len_max`; `bad_cursor`: `before` is not a draft id")))]
pub async fn drafts(
    State(node): State<Arc<NodeState>>,
    _auth: Auth,
    ApiQuery(p): ApiQuery<NewestFirstParams>,
) -> Result<Paged<DraftView>, ApiError> {
    let limit = page_len(&node, p.limit, node.runtime_limits.drafts_page_len)?;
    let before = paging::before_id(p.before.as_deref())?;
    let rows = node.store.drafts(true, Page { from: before, limit: limit.saturating_add(1) })?;
    let (rows, next) = paging::cut(rows, limit, |d| Ok(d.id.to_string()))?;
    let url = ListUrl::new("/api/v1/drafts");
    Ok(Paged::new(rows.into_iter().map(DraftView::from).collect(), url.next(limit, "before", next)))
}

/// Releases a held message
///
/// The draft is sent as the principal releasing it names it, and committed with its release.
///
/// Roles: principal.
#[utoipa::path(post, path = "/api/v1/drafts/{id}/release", tag = "discipline",
    params(("id" = u64, Path, description = "draft id")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 201, body = MessageView, description = "sent: committed here and queued for each recipient"),
              (status = 400, body = ErrorBody, description = "the draft no longer passes the message rules"),
              (status = 403, body = ErrorBody, description = "`role`: not a principal; `removed`: this member was removed from the line"),
              (status = 404, body = ErrorBody, description = "`unknown_draft`; `unknown_line`: the draft's line is gone"),
              (status = 409, body = ErrorBody, description = "`released_already`"),
              (status = 503, body = ErrorBody, description = "writes are refused while the database cannot be written")))]
pub async fn release(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
    ApiPath(id): ApiPath<u64>,
) -> Result<(StatusCode, Json<MessageView>), ApiError> {
    if !auth.0.role.is_principal() {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "role", "only a principal releases a held message"));
    }
    check_writable(&node)?;
    let _serial = node.receipts.lock().await;
    let d = node
        .store
        .draft(id)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_draft", format!("no draft {id} here")))?;
    if d.state != "awaiting_release" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "released_already",
            format!("draft {id} was released already"),
        ));
    }
    let req: NewMessageRequest = serde_json::from_str(&d.draft_json)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    let principal = auth.0.name.clone();
    let files = super::attachments::to_send(super::attachments::uploaded(&node, &req.attachments)?);
    let (hash, recipients, pending) = {
        let mut core = node.core();
        let records = core.send_with_files(now_ms(), d.line, req.to_draft(), Some(principal.clone()), files)?;
        let hash = records[0].envelope.hash();
        let recipients: Vec<_> = records.iter().flat_map(|r| r.recipients.clone()).collect();
        let mls_state = Some(core.mls_delta()?);
        let batch = adi_core::WriteBatch { records, mls_state, ..Default::default() };
        (hash, recipients, node.store.commit_release(batch, id, principal, now_ms()))
    };
    if let Err(e) = pending.wait().await {
        return Err(node.fail_storage(&e).into());
    }
    node.committed(&recipients);
    tracing::info!(operator = %auth.0.name, draft = id, message_id = %hash, "held message released");
    Ok((StatusCode::CREATED, Json(load_message(&node, &hash)?)))
}

/// An alarm.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct AlarmView {
    /// 0 for the storage alarm while the database cannot take it: it is then held in memory, and
    /// recorded (raised and cleared) once the database takes writes again.
    pub id: u64,
    /// `escalation`, `unacknowledged`, `link_no_answer`, `undecryptable`, `tamper`, `storage`,
    /// `clock` or `misconduct`.
    pub kind: String,
    /// The line (all zeros for `storage`, for this node's own `clock` and for `misconduct`, which
    /// is one alarm per peer whatever the line; its detail names the line).
    pub line: String,
    /// The member who has not answered, the link's peer (also for a peer's `clock`), or this
    /// member for `storage` and for its own `clock`.
    pub member: String,
    pub message: Option<String>,
    pub raised_ms: u64,
    pub detail: String,
    /// Alternates the alarm is addressed to.
    pub addressed_to: Vec<String>,
    /// How many times it was raised again.
    pub repeats: u64,
    pub last_raised_ms: u64,
    pub acked_by: Option<String>,
    pub acked_ms: Option<u64>,
    pub cleared_ms: Option<u64>,
    pub clear_reason: Option<String>,
}

impl From<AlarmRow> for AlarmView {
    fn from(a: AlarmRow) -> Self {
        AlarmView {
            id: a.id,
            kind: a.kind.as_str().to_string(),
            line: a.line.to_hex(),
            member: a.member.to_string(),
            message: a.message.map(|m| m.to_hex()),
            raised_ms: a.raised_ms,
            detail: a.detail,
            addressed_to: a.addressed_to,
            repeats: a.repeats,
            last_raised_ms: a.last_raised_ms,
            acked_by: a.acked_by,
            acked_ms: a.acked_ms,
            cleared_ms: a.cleared_ms,
            clear_reason: a.clear_reason,
        }
    }
}

/// Which alarms to list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AlarmParams {
    /// Also list cleared alarms.
    pub all: Option<bool>,
    /// Most alarms of the page: 1 to the node's `list_len_max` (default 500).
    #[param(minimum = 1)]
    pub limit: Option<usize>,
    /// Where the page before ended: the cursor its `Link` header gives. Left out for the first
    /// page.
    pub before: Option<String>,
}

/// Lists the alarms
///
/// Open alarms, newest first (with `all`, cleared ones too). While the database cannot be written,
/// the storage alarm is shown from memory, first on the first page (its `id` is 0).
///
/// Pages of `limit` alarms (default 500, `alarms_page_len`; at most the node's `list_len_max`);
/// `before` is the cursor the `Link` header of the page before gives (an alarm id: the page
/// holds the alarms older than it). While more remain, the `Link` header names the next page
/// (`rel="next"`), with the same `all`; without it the list is complete. An alarm raised while
/// the list is read page by page is on none of the later pages, and none is listed twice.
///
/// Roles: any operator.
#[utoipa::path(get, path = "/api/v1/alarms", tag = "discipline", params(AlarmParams),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<AlarmView>, description = "a page of the alarms, newest first",
               headers(("Link" = String, description = "the next page, `<...>; rel=\"next\"` (RFC 8288), while more remain; absent on the last page"))),
              (status = 400, body = ErrorBody, description = "`bad_limit`: a limit outside 1 to the node's `list_len_max`; `bad_cursor`: `before` is not an alarm id")))]
pub async fn alarms(
    State(node): State<Arc<NodeState>>,
    _auth: Auth,
    ApiQuery(p): ApiQuery<AlarmParams>,
) -> Result<Paged<AlarmView>, ApiError> {
    let limit = page_len(&node, p.limit, node.runtime_limits.alarms_page_len)?;
    let before = paging::before_id(p.before.as_deref())?;
    let all = p.all.unwrap_or(false);
    let rows = node.store.alarms(!all, Page { from: before, limit: limit.saturating_add(1) })?;
    // The database cannot be written: the open storage alarm is shown from memory, first on the
    // first page, unless the probe already committed it; it takes one place of the page.
    let recorded = rows.iter().any(|a| a.kind == AlarmKind::Storage && a.cleared_ms.is_none());
    let storage = node.storage_failure().filter(|_| before.is_none() && !recorded);
    let room = limit - usize::from(storage.is_some());
    let newest = rows.first().map(|a| a.id.saturating_add(1).to_string());
    let (rows, next) = paging::cut(rows, room, |a| Ok(a.id.to_string()))?;
    // A page with no room for a stored alarm (a page of one: the storage alarm) is followed by
    // the page that starts at the newest one.
    let next = if room == 0 { newest } else { next };
    let mut views: Vec<AlarmView> = Vec::with_capacity(rows.len() + 1);
    views.extend(storage.map(|failure| storage_alarm_view(&node, &failure)));
    views.extend(rows.into_iter().map(AlarmView::from));
    let url = if all { ListUrl::new("/api/v1/alarms").filter("all", "true") } else { ListUrl::new("/api/v1/alarms") };
    Ok(Paged::new(views, url.next(limit, "before", next)))
}

/// The open storage alarm while it is held in memory.
fn storage_alarm_view(node: &NodeState, failure: &StorageFailure) -> AlarmView {
    let a = node.storage_alarm(AlarmOp::Raise, failure.since_ms, fault_text(&failure.fault));
    AlarmView {
        id: 0,
        kind: a.kind.as_str().to_string(),
        line: a.line.to_hex(),
        member: a.member.to_string(),
        message: None,
        raised_ms: a.at_ms,
        detail: a.detail,
        addressed_to: a.addressed_to,
        repeats: 0,
        last_raised_ms: a.at_ms,
        acked_by: None,
        acked_ms: None,
        cleared_ms: None,
        clear_reason: None,
    }
}

/// Two signed items by one member that contradict each other, as this node received them.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct EvidenceView {
    pub id: u64,
    pub line: String,
    /// The member whose signatures contradict each other.
    pub member: String,
    pub at_ms: u64,
    pub detail: String,
    /// The item held here (SHA-256 of its bytes, and the bytes).
    pub held_id: String,
    pub held_base64: String,
    /// The item that contradicts it.
    pub offered_id: String,
    pub offered_base64: String,
}

/// Lists the evidence of tampering
///
/// Pairs of signed items by one member that contradict each other, as this node received them,
/// newest first.
///
/// Pages of `limit` items (default 500, `evidence_page_len`; at most the node's
/// `list_len_max`); `before` is the id of the last item of the page before. While more remain,
/// the `Link` header names the next page (`rel="next"`); without it the list is complete.
///
/// Roles: any operator.
#[utoipa::path(get, path = "/api/v1/evidence", tag = "discipline", params(NewestFirstParams),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<EvidenceView>, description = "a page of the evidence of tampering, newest first",
               headers(("Link" = String, description = "the next page, `<...>; rel=\"next\"` (RFC 8288), while more remain; absent on the last page"))),
              (status = 400, body = ErrorBody, description = "`bad_limit`: a limit outside 1 to the node's `list_len_max`; `bad_cursor`: `before` is not an id of the evidence")))]
pub async fn evidence(
    State(node): State<Arc<NodeState>>,
    _auth: Auth,
    ApiQuery(p): ApiQuery<NewestFirstParams>,
) -> Result<Paged<EvidenceView>, ApiError> {
    use base64::Engine;
    use sha2::Digest;
    let limit = page_len(&node, p.limit, node.runtime_limits.evidence_page_len)?;
    let before = paging::before_id(p.before.as_deref())?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let id_of = |bytes: &[u8]| hex::encode(<[u8; 32]>::from(sha2::Sha256::digest(bytes)));
    let rows = node.store.evidence(Page { from: before, limit: limit.saturating_add(1) })?;
    let (rows, next) = paging::cut(rows, limit, |(id, _)| Ok(id.to_string()))?;
    Ok(Paged::new(
        rows.into_iter()
            .map(|(id, e)| EvidenceView {
                id,
                line: e.line.to_hex(),
                member: e.member.to_string(),
                at_ms: e.at_ms,
                detail: e.detail,
                held_id: id_of(&e.held),
                held_base64: b64.encode(&e.held),
                offered_id: id_of(&e.offered),
                offered_base64: b64.encode(&e.offered),
            })
            .collect(),
        ListUrl::new("/api/v1/evidence").next(limit, "before", next),
    ))
}

/// One administrative action of the audit log.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct AuditView {
    pub id: u64,
    pub at_ms: u64,
    /// `operator_added`, `operator_changed`, `operator_removed`, `password_set`,
    /// `configuration_first` or `configuration_changed`.
    pub action: String,
    /// Who acted: `administrator` for what is done on the node's machine.
    pub actor: String,
    /// The operator acted on, if any.
    pub subject: Option<String>,
    pub detail: String,
}

/// Lists the audit log
///
/// The node's administrative actions, newest first: operators added, changed or removed,
/// passwords set (`adi operator`), and the configuration a node started with when it changed.
///
/// Pages of `limit` items (default the node's `list_len_max`); `before` is the id of the last
/// item of the page before. While more remain, the `Link` header names the next page
/// (`rel="next"`); without it the list is complete.
///
/// Roles: auditor, admin.
#[utoipa::path(get, path = "/api/v1/audit", tag = "discipline", params(NewestFirstParams),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<AuditView>, description = "a page of the audit log, newest first",
               headers(("Link" = String, description = "the next page, `<...>; rel=\"next\"` (RFC 8288), while more remain; absent on the last page"))),
              (status = 400, body = ErrorBody, description = "`bad_limit`: a limit outside 1 to the node's `list_len_max`; `bad_cursor`: `before` is not an id of the log"),
              (status = 403, body = ErrorBody, description = "`role`: only auditors and administrators read the audit log")))]
pub async fn audit(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
    ApiQuery(p): ApiQuery<NewestFirstParams>,
) -> Result<Paged<AuditView>, ApiError> {
    if !matches!(auth.0.role, adi_core::Role::Auditor | adi_core::Role::Admin) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "role",
            "only auditors and administrators read the audit log",
        ));
    }
    let limit = page_len(&node, p.limit, node.runtime_limits.list_len_max)?;
    let before = paging::before_id(p.before.as_deref())?;
    let rows = node.store.audit(Page { from: before, limit: limit.saturating_add(1) })?;
    let (rows, next) = paging::cut(rows, limit, |a| Ok(a.id.to_string()))?;
    Ok(Paged::new(
        rows.into_iter().map(AuditView::from).collect(),
        ListUrl::new("/api/v1/audit").next(limit, "before", next),
    ))
}

impl From<adi_store::AuditRow> for AuditView {
    fn from(a: adi_store::AuditRow) -> Self {
        AuditView { id: a.id, at_ms: a.at_ms, action: a.action, actor: a.actor, subject: a.subject, detail: a.detail }
    }
}

/// Acknowledges an alarm
///
/// Roles: duty, principal, admin.
#[utoipa::path(post, path = "/api/v1/alarms/{id}/ack", tag = "discipline",
    params(("id" = u64, Path, description = "alarm id")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 200, body = AlarmView, description = "the alarm, acknowledged"),
              (status = 403, body = ErrorBody, description = "`role`: the operator may not send"),
              (status = 404, body = ErrorBody, description = "`unknown_alarm`"),
              (status = 409, body = ErrorBody, description = "`already_acknowledged`"),
              (status = 503, body = ErrorBody, description = "writes are refused while the database cannot be written")))]
pub async fn ack_alarm(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
    ApiPath(id): ApiPath<u64>,
) -> Result<Json<AlarmView>, ApiError> {
    auth.require_sender()?;
    let result =
        node.store.ack_alarm(id, auth.0.name.clone(), now_ms()).wait().await.map_err(|e| node.fail_storage(&e))?;
    node.committed(&[]);
    match result {
        AlarmAck::Acked(a) => Ok(Json(a.into())),
        AlarmAck::AlreadyAcked(a) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_acknowledged",
            format!("alarm {id} was acknowledged by {} already", a.acked_by.unwrap_or_default()),
        )),
        AlarmAck::NotFound => Err(ApiError::new(StatusCode::NOT_FOUND, "unknown_alarm", format!("no alarm {id} here"))),
    }
}

/// One direct line's link, as link tests and the outbox show it.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct LinkView {
    pub member: String,
    pub line: String,
    /// `healthy`, `late`, `failing` or `never_tested`.
    pub state: String,
    pub last_ok_ms: Option<u64>,
    pub last_rtt_ms: Option<u64>,
    /// The peer's clock minus this node's, as the last answered test measured it (within half
    /// its round trip).
    pub clock_offset_ms: Option<i64>,
    /// When the unanswered test was sent, if one is outstanding.
    pub test_outstanding_since_ms: Option<u64>,
    pub queue_len: u64,
    pub oldest_queued_age_ms: Option<u64>,
    /// The open connection's endpoint, if any.
    pub endpoint: Option<String>,
    pub last_error: Option<String>,
    pub test_interval_s: u64,
}

/// Lists the direct lines' links
///
/// Each link's state as link tests and the outbox show it. The list is whole and does not page:
/// one item per direct line, and there is at most one direct line per peer of the roster and
/// scope.
///
/// Roles: any operator.
#[utoipa::path(get, path = "/api/v1/links", tag = "discipline", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<LinkView>, description = "the links, by peer")))]
pub async fn links(State(node): State<Arc<NodeState>>, _auth: Auth) -> Result<Json<Vec<LinkView>>, ApiError> {
    let now = now_ms();
    let (links, interval) = {
        let core = node.core();
        (core.links(now), core.discipline().link_test_interval_s)
    };
    let stats = node.store.queue_stats()?;
    let out = links
        .into_iter()
        .map(|(h, state)| {
            let q = stats.iter().find(|q| q.peer == h.peer);
            let status = node.link(&h.peer).map(|l| l.status()).unwrap_or_default();
            LinkView {
                member: h.peer.to_string(),
                line: h.line.to_hex(),
                state: state.as_str().to_string(),
                last_ok_ms: h.last_ok_ms,
                last_rtt_ms: h.last_rtt_ms,
                clock_offset_ms: h.offset_ms,
                test_outstanding_since_ms: h.outstanding.map(|o| o.1),
                queue_len: q.map(|q| q.len).unwrap_or(0),
                oldest_queued_age_ms: q.and_then(|q| q.oldest_enqueued_ms).map(|t| now.saturating_sub(t)),
                endpoint: status.endpoint,
                last_error: status.last_error,
                test_interval_s: interval,
            }
        })
        .collect();
    Ok(Json(out))
}

/// An event of the live stream, as its `data`.
#[derive(Serialize, Deserialize, ToSchema, Clone, Debug, PartialEq)]
pub struct EventView {
    pub id: u64,
    pub at_ms: u64,
    /// `message`, `state`, `alarm`, `link`, `draft`, or `gap` when events were missed.
    pub kind: String,
    pub line: Option<String>,
    pub message: Option<String>,
    pub member: Option<String>,
    pub state: Option<String>,
    pub alarm: Option<u64>,
    pub detail: Option<String>,
}

impl From<EventRow> for EventView {
    fn from(e: EventRow) -> Self {
        EventView {
            id: e.id,
            at_ms: e.at_ms,
            kind: e.kind,
            line: e.line.map(|l| l.to_hex()),
            message: e.message.map(|m| m.to_hex()),
            member: e.member.map(|m: MemberCode| m.to_string()),
            state: e.state,
            alarm: e.alarm,
            detail: e.detail,
        }
    }
}

/// One event of the stream as Server-Sent Events frame it: the document's schema of each event
/// of `GET /api/v1/events`.
#[derive(ToSchema)]
pub struct StreamEvent {
    /// The event's id: `Last-Event-ID` (or `after`) resumes the stream after it.
    pub id: String,
    /// The event's kind, as in `data`.
    pub event: String,
    /// The event, an `EventView` as JSON.
    #[schema(content_media_type = "application/json")]
    pub data: String,
}

/// Where a stream starts.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventParams {
    /// Start after this event id (as `Last-Event-ID` does); by default, after the newest.
    pub after: Option<u64>,
}

fn sse_event(e: &EventView) -> Event {
    let data = serde_json::to_string(e).unwrap_or_default();
    Event::default().id(e.id.to_string()).event(e.kind.clone()).data(data)
}

/// Streams the events
///
/// Server-Sent Events that do not end: each event's `data` is an `EventView`, its `event` the
/// view's `kind` and its `id` resumes the stream (`Last-Event-ID`, or `after`); a `gap` event
/// says that events were missed.
///
/// Roles: any operator.
#[utoipa::path(get, path = "/api/v1/events", tag = "discipline",
    params(EventParams, ("Last-Event-ID" = Option<u64>, Header, description = "resume after this event id (before `after`)")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, description = "Server-Sent Events; each event's id resumes the stream with Last-Event-ID",
               content_type = "text/event-stream", body = StreamEvent),
              (status = 400, body = ErrorBody, description = "`bad_last_event_id`: Last-Event-ID is not an event id")))]
pub async fn events(
    State(node): State<Arc<NodeState>>,
    _auth: Auth,
    headers: HeaderMap,
    ApiQuery(p): ApiQuery<EventParams>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let last_id = headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(|v| v.trim().parse::<u64>());
    let last_id = match last_id {
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_last_event_id", "Last-Event-ID is an event id"))
        }
        None => p.after,
    };
    // Event ids are SQLite integers: no event passes one beyond them.
    let last_id = last_id.map(|id| id.min(i64::MAX as u64));
    let (oldest, newest) = node.store.event_bounds()?;
    let mut first = Vec::new();
    let after = match last_id {
        None => newest,
        Some(id) => {
            // Events after `id` were pruned: say so before sending what is left.
            if oldest > 0 && id + 1 < oldest {
                first.push(EventView {
                    id,
                    at_ms: now_ms(),
                    kind: "gap".into(),
                    line: None,
                    message: None,
                    member: None,
                    state: None,
                    alarm: None,
                    detail: Some(format!("events {} to {} are no longer kept; reload the state", id + 1, oldest - 1)),
                });
            }
            id
        }
    };
    // The storage failure last told to this client, by when it began.
    let announced: Option<u64> = None;
    let keepalive_ms = node.runtime_limits.events_keepalive_ms;
    // A console page's stream keeps its session alive, up to the watch length, and tells the page
    // when the session ends.
    let watch = (headers.get(header::AUTHORIZATION).is_none())
        .then(|| super::auth::session_cookie(&headers))
        .flatten()
        .map(|id| {
            let hash = super::auth::session_hash(&id);
            SessionWatch { _guard: node.watching(hash), hash, checked_ms: 0, ended: false }
        });
    let state = (node, after, first, announced, watch);
    let stream =
        futures_util::stream::unfold(state, |(node, mut after, mut queue, mut announced, mut watch)| async move {
            loop {
                if !queue.is_empty() {
                    let e: EventView = queue.remove(0);
                    let out = sse_event(&e);
                    if e.kind != "gap" {
                        after = e.id;
                    }
                    return Some((Ok(out), (node, after, queue, announced, watch)));
                }
                if node.stopped.load(std::sync::atomic::Ordering::SeqCst) || watch.as_ref().is_some_and(|w| w.ended) {
                    return None;
                }
                let every_ms = node.runtime_limits.events_keepalive_ms;
                if let Some(w) = watch.as_mut().filter(|w| now_ms().saturating_sub(w.checked_ms) >= every_ms) {
                    let now = now_ms();
                    w.checked_ms = now;
                    match super::auth::valid_session(&node, &w.hash) {
                        // Recorded without waiting: a lost touch only shortens the idle timeout once
                        // the stream closes.
                        Ok(_) => drop(node.store.touch_session(w.hash, now)),
                        Err(e) => {
                            w.ended = true;
                            queue.push(EventView {
                                id: after,
                                at_ms: now,
                                kind: "expired".into(),
                                line: None,
                                message: None,
                                member: None,
                                state: None,
                                alarm: None,
                                detail: Some(e.message),
                            });
                            continue;
                        }
                    }
                }
                let notified = node.events.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                // While the database cannot be written, its alarm cannot be an event row: it is told
                // from memory, under the id of the last event sent, so that a client resumes where it was.
                if let Some(failure) = node.storage_failure().filter(|f| announced != Some(f.since_ms)) {
                    announced = Some(failure.since_ms);
                    let a = node.storage_alarm(AlarmOp::Raise, failure.since_ms, fault_text(&failure.fault));
                    queue.push(EventView {
                        id: after,
                        at_ms: a.at_ms,
                        kind: "alarm".into(),
                        line: Some(a.line.to_hex()),
                        message: None,
                        member: Some(a.member.to_string()),
                        state: Some("raised".into()),
                        alarm: None,
                        detail: Some(a.detail),
                    });
                    continue;
                }
                match node.store.events_after(after, node.runtime_limits.events_read_len_max) {
                    Ok(rows) if !rows.is_empty() => {
                        queue = rows.into_iter().map(EventView::from).collect();
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read events");
                        return None;
                    }
                }
                tokio::select! {
                    _ = notified => {}
                    _ = tokio::time::sleep(Duration::from_millis(node.runtime_limits.events_poll_ms)) => {}
                }
            }
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_millis(keepalive_ms))))
}

/// A console session's event stream: kept alive by it, checked every `events_keepalive_ms`.
struct SessionWatch {
    /// Holds the session as watched while the stream lives.
    _guard: crate::state::Watching,
    hash: [u8; 32],
    checked_ms: u64,
    /// The session ended: the page was told, and the stream ends.
    ended: bool,
}

/// Lists the peers' links and backlog
///
/// The list is whole and does not page: one item per peer of the roster.
///
/// Roles: any operator.
#[utoipa::path(get, path = "/api/v1/peers", tag = "discipline", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<PeerView>, description = "each peer's link and the envelopes queued for it")))]
pub async fn peers(State(node): State<Arc<NodeState>>, _auth: Auth) -> Result<Json<Vec<PeerView>>, ApiError> {
    let stats = node.store.queue_stats()?;
    let now = now_ms();
    let out = node
        .links()
        .iter()
        .map(|link| {
            let s = link.status();
            let q = stats.iter().find(|q| q.peer == link.peer);
            PeerView {
                member: link.peer.to_string(),
                queue_len: q.map(|q| q.len).unwrap_or(0),
                oldest_queued_age_ms: q.and_then(|q| q.oldest_enqueued_ms).map(|t| now.saturating_sub(t)),
                endpoint: s.endpoint,
                last_error: s.last_error,
                last_delivery_ms: s.last_delivery_ms,
                failures: s.failures,
            }
        })
        .collect();
    Ok(Json(out))
}
