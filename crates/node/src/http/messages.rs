//! Messages on the operator API: sending one on a line (held for a principal's release where the
//! establishment requires it), a line's messages, the inbox, a message with each recipient's
//! state, and a stored envelope as it travelled.

use std::sync::Arc;

use adi_core::{Class, MemberCode, Message, Precedence};
use adi_store::{InboxKey, MessageCursor, MessageQuery, MessageRow, StoreError};
use adi_wire::EnvelopeHash;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::auth::Auth;
use super::error::{check_writable, ApiJson, ApiPath, ApiQuery};
use super::forms::check_call_answer;
use super::lines::find_line;
use super::paging::{self, page_len, ListUrl, Paged};
use super::views::{
    message_view, DraftView, EnvelopeView, InboxParams, ListParams, MessageView, NewMessageRequest, SearchParams,
    SearchView,
};
use crate::clock::now_ms;
use crate::driver::commit_own_records;
use crate::error::{ApiError, ErrorBody};
use crate::state::NodeState;

/// Sends a message on a line
///
/// The message is checked, committed here and queued for each recipient. Where the establishment
/// requires it, a FLASH or crisis message from anyone but a principal is held as a draft for a
/// principal's release (`POST /api/v1/drafts/{id}/release`).
///
/// Roles: duty, principal, admin.
#[utoipa::path(post, path = "/api/v1/lines/{line}/messages", tag = "messages", request_body = NewMessageRequest,
    params(("line" = String, Path, description = "line id: 32 hex digits")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 201, body = MessageView, description = "sent: committed here and queued for each recipient"),
               (status = 202, body = DraftView, description = "held for a principal's release"),
               (status = 400, body = ErrorBody, description = "the message breaks a rule, with `field` naming the field at fault where one is: `bad_precedence`, `bad_class`, `empty_subject`, `too_many_words`, `bad_character`, `bad_form`, `message_too_large`, ..."),
               (status = 403, body = ErrorBody, description = "`role`: the operator may not send; `removed`: this member was removed from the line"),
               (status = 404, body = ErrorBody, description = "`unknown_line`: no such line here"),
               (status = 503, body = ErrorBody, description = "writes are refused while the database cannot be written")))]
pub async fn send_message(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
    ApiPath(line): ApiPath<String>,
    ApiJson(req): ApiJson<NewMessageRequest>,
) -> Result<Response, ApiError> {
    auth.require_sender()?;
    check_writable(&node)?;
    let line = find_line(&node, &line)?;
    if let Some(form) = &req.form {
        check_call_answer(&node, &line.id, form)?;
    }
    let draft = req.to_draft();
    // Checked now, so that a draft held for release is already known to be sendable.
    let mut message = Message::from_draft(draft.clone(), "checked", node.core().limits())?;
    let files = super::attachments::uploaded(&node, &req.attachments)?;
    let limits = node.core().limits().clone();
    message.attachments = files.iter().map(|(row, _)| super::attachments::described(row, &limits)).collect();
    message.check(&limits)?;
    let files = super::attachments::to_send(files);
    let needs_principal = node.release_required && (message.precedence == Precedence::Flash || message.crisis);
    if needs_principal && !auth.0.role.is_principal() {
        let json = serde_json::to_string(&req)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_body", e.to_string()))?;
        let id = node
            .store
            .add_draft(line.id, json, auth.0.name.clone(), now_ms())
            .wait()
            .await
            .map_err(|e| node.fail_storage(&e))?;
        node.committed(&[]);
        let draft =
            node.store.draft(id)?.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_draft", "gone"))?;
        tracing::info!(operator = %auth.0.name, draft = id, "message held for a principal's release");
        return Ok((StatusCode::ACCEPTED, Json(DraftView::from(draft))).into_response());
    }
    let released_by = needs_principal.then(|| auth.0.name.clone());
    let hashes =
        commit_own_records(&node, |core| core.send_with_files(now_ms(), line.id, draft, released_by, files)).await?;
    let view = load_message(&node, &hashes[0])?;
    tracing::info!(operator = %auth.0.name, message_id = %view.id, precedence = %view.precedence, "message sent");
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

pub(crate) fn load_message(node: &NodeState, hash: &EnvelopeHash) -> Result<MessageView, ApiError> {
    let row = node
        .store
        .message(hash)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_message", format!("no message {hash} here")))?;
    let recipients = node.store.recipients(hash)?;
    let receipts = node.store.receipts(hash)?;
    let own = row.sender == node.member;
    with_progress(node, message_view(row, recipients, receipts), own)
}

/// A message's view with how far each of its files has come: the chunks held here and, on the
/// sender's node, those each recipient's node decrypted.
fn with_progress(node: &NodeState, mut view: MessageView, own: bool) -> Result<MessageView, ApiError> {
    if view.attachments.is_empty() {
        return Ok(view);
    }
    let Some(hash) = EnvelopeHash::from_hex(&view.id) else { return Ok(view) };
    let decrypted = if own { node.store.chunks_decrypted(&hash)? } else { Vec::new() };
    for a in &mut view.attachments {
        let mut file = [0u8; 32];
        if hex::decode_to_slice(&a.sha256, &mut file).is_err() {
            continue;
        }
        a.held = node.store.chunks(&hash, &file)?.iter().filter(|(i, _)| *i < a.chunks).count() as u64;
        a.delivered = decrypted
            .iter()
            .filter(|(f, _, _)| *f == file)
            .map(|(_, m, n)| super::views::AttachmentDelivery { member: m.to_string(), chunks: *n })
            .collect();
    }
    Ok(view)
}

fn views(node: &NodeState, rows: Vec<MessageRow>) -> Result<Vec<MessageView>, ApiError> {
    rows.into_iter()
        .map(|r| {
            let recipients = if r.sender == node.member { node.store.recipients(&r.hash)? } else { Vec::new() };
            let receipts = node.store.receipts(&r.hash)?;
            let own = r.sender == node.member;
            with_progress(node, message_view(r, recipients, receipts), own)
        })
        .collect()
}

/// Lists a line's messages
///
/// In the order of the record: by time, each sender's in its own order.
///
/// Pages of `limit` messages (default 100, `messages_page_len`; at most the node's
/// `list_len_max`); `after` is the id of the last message of the page before. While more
/// remain, the `Link` header names the next page (`rel="next"`); without it the list is
/// complete.
///
/// Roles: any operator.
#[utoipa::path(get, path = "/api/v1/lines/{line}/messages", tag = "messages",
    params(("line" = String, Path, description = "line id: 32 hex digits"), ListParams),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<MessageView>, description = "a page of the line's messages in the order of the record",
               headers(("Link" = String, description = "the next page, `<...>; rel=\"next\"` (RFC 8288), while more remain; absent on the last page"))),
              (status = 400, body = ErrorBody, description = "`bad_limit`: a limit outside 1 to the node's `list_len_max`; `bad_cursor`: `after` is not the id of a message of the line"),
              (status = 404, body = ErrorBody, description = "`unknown_line`: no such line here")))]
pub async fn line_messages(
    State(node): State<Arc<NodeState>>,
    _auth: Auth,
    ApiPath(line): ApiPath<String>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Paged<MessageView>, ApiError> {
    let line = find_line(&node, &line)?;
    let limit = page_len(&node, params.limit, node.runtime_limits.messages_page_len)?;
    let after = paging::after_message(params.after.as_deref())?;
    // The record order is worked out over the line's messages: a place in it is one of them.
    if let Some(after) = after {
        if node.store.message(&after)?.is_none_or(|m| m.line != line.id) {
            return Err(paging::bad_cursor("after"));
        }
    }
    let rows = node.store.messages(&MessageQuery {
        line: Some(line.id),
        not_from: None,
        limit: limit.saturating_add(1),
        by_precedence: false,
        after: after.map(MessageCursor::Message),
        waiting_for: None,
    })?;
    let (rows, next) = paging::cut(rows, limit, |r| Ok(r.hash.to_hex()))?;
    let url = ListUrl::new(format!("/api/v1/lines/{}/messages", line.id.to_hex()));
    Ok(Paged::new(views(&node, rows)?, url.next(limit, "after", next)))
}

/// A message's place in the inbox order. The store orders by the envelope's priority, which
/// is its precedence's: the core refuses a message whose envelope says otherwise.
fn inbox_key(r: &MessageRow) -> Result<InboxKey, ApiError> {
    let precedence = r
        .precedence
        .as_deref()
        .and_then(Precedence::parse)
        .ok_or_else(|| ApiError::internal(StoreError::Corrupt(format!("message {} has no precedence", r.hash))))?;
    Ok(InboxKey { priority: precedence.priority(), created_ms: r.created_ms, arrival: r.arrival })
}

/// Lists the inbox
///
/// Messages from other members on every line, by precedence then time (then arrival here);
/// with `waiting=true`, only those that wait for this member's answer.
///
/// Pages of `limit` messages (default 100, `messages_page_len`; at most the node's
/// `list_len_max`); `after` is the cursor the `Link` header of the page before gives, which
/// clients take as it is. While more remain, the `Link` header names the next page
/// (`rel="next"`); without it the list is complete. A message that arrives while the inbox is
/// read page by page is on a later page if it sorts after the place reached, and on none
/// otherwise; none is listed twice.
///
/// Roles: any operator.
#[utoipa::path(get, path = "/api/v1/inbox", tag = "messages", params(InboxParams),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<MessageView>, description = "a page of the messages from other members, by precedence then time",
               headers(("Link" = String, description = "the next page, `<...>; rel=\"next\"` (RFC 8288), while more remain; absent on the last page"))),
              (status = 400, body = ErrorBody, description = "`bad_limit`: a limit outside 1 to the node's `list_len_max`; `bad_cursor`: `after` is not a cursor the node gave for the inbox")))]
pub async fn inbox(
    State(node): State<Arc<NodeState>>,
    _auth: Auth,
    ApiQuery(params): ApiQuery<InboxParams>,
) -> Result<Paged<MessageView>, ApiError> {
    let limit = page_len(&node, params.limit, node.runtime_limits.messages_page_len)?;
    let after = paging::after_inbox(params.after.as_deref())?;
    let waiting = params.waiting.unwrap_or(false);
    let rows = node.store.messages(&MessageQuery {
        line: None,
        not_from: Some(node.member.clone()),
        limit: limit.saturating_add(1),
        by_precedence: true,
        after: after.map(MessageCursor::Inbox),
        waiting_for: waiting.then(|| node.member.clone()),
    })?;
    let (rows, next) = paging::cut(rows, limit, |r| inbox_key(r).map(paging::inbox_cursor))?;
    let mut url = ListUrl::new("/api/v1/inbox");
    if waiting {
        url = url.filter("waiting", "true");
    }
    Ok(Paged::new(views(&node, rows)?, url.next(limit, "after", next)))
}

/// Searches the messages
///
/// Every message this node holds, sent or received, on every line or on one: those that hold
/// every filter given (words in the subject, text or report, letter case aside; precedence;
/// class; sender; a time range), newest first. The node reads at most `search_scan_max`
/// messages for one search, most urgent first; `complete` says whether it read them all.
///
/// Roles: any operator.
#[utoipa::path(get, path = "/api/v1/search", tag = "messages", params(SearchParams),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = SearchView, description = "the matches, newest first"),
              (status = 400, body = ErrorBody, description = "`bad_limit`; `text_too_long`: `q` is longer than the node's `search_text_chars_max`; `bad_precedence`, `bad_class`, `bad_member`: a filter names no such thing; `bad_range`: `since_ms` is not before `until_ms`"),
              (status = 404, body = ErrorBody, description = "`unknown_line`: no such line here")))]
pub async fn search(
    State(node): State<Arc<NodeState>>,
    _auth: Auth,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> Result<Json<SearchView>, ApiError> {
    let limits = &node.runtime_limits;
    let limit = page_len(&node, params.limit, limits.messages_page_len)?;
    let bad = |code: &'static str, message: String| ApiError::new(StatusCode::BAD_REQUEST, code, message);
    let text = params.q.as_deref().map(str::trim).filter(|q| !q.is_empty()).map(str::to_lowercase);
    if let Some(q) = &text {
        let chars = q.chars().count();
        if chars > limits.search_text_chars_max {
            let max = limits.search_text_chars_max;
            return Err(bad("text_too_long", format!("the search text has {chars} characters; at most {max}")));
        }
    }
    let line = params.line.as_deref().map(|id| find_line(&node, id)).transpose()?.map(|l| l.id);
    let precedence = match params.precedence.as_deref() {
        Some(p) => Some(Precedence::parse(p).ok_or_else(|| bad("bad_precedence", format!("no precedence {p}")))?),
        None => None,
    };
    let class = match params.class.as_deref() {
        Some(c) => Some(Class::parse(c).ok_or_else(|| bad("bad_class", format!("no class {c}")))?),
        None => None,
    };
    let sender = match params.sender.as_deref() {
        Some(m) => Some(MemberCode::parse(m).map_err(|e| bad("bad_member", format!("no member {m}: {e}")))?),
        None => None,
    };
    if let (Some(since), Some(until)) = (params.since_ms, params.until_ms) {
        if since >= until {
            return Err(bad("bad_range", format!("since_ms {since} is not before until_ms {until}")));
        }
    }
    let holds = |r: &MessageRow| {
        precedence.is_none_or(|p| r.precedence.as_deref() == Some(p.as_str()))
            && class.is_none_or(|c| r.class.as_deref() == Some(c.as_str()))
            && sender.as_ref().is_none_or(|m| &r.sender == m)
            && params.since_ms.is_none_or(|t| r.created_ms >= t)
            && params.until_ms.is_none_or(|t| r.created_ms < t)
            && text.as_deref().is_none_or(|q| {
                [&r.subject, &r.body, &r.form]
                    .iter()
                    .any(|f| f.as_deref().is_some_and(|f| f.to_lowercase().contains(q)))
            })
    };
    // Page by page in the inbox's order, up to the bound.
    let (mut found, mut scanned, mut after) = (Vec::new(), 0usize, None);
    let complete = loop {
        let want = limits.list_len_max.min(limits.search_scan_max - scanned).max(1);
        let rows = node.store.messages(&MessageQuery {
            line,
            not_from: None,
            limit: want,
            by_precedence: true,
            after,
            waiting_for: None,
        })?;
        let read = rows.len();
        after = rows.last().map(inbox_key).transpose()?.map(MessageCursor::Inbox);
        scanned += read;
        found.extend(rows.into_iter().filter(|r| holds(r)));
        if read < want {
            break true;
        }
        if scanned >= limits.search_scan_max {
            break false;
        }
    };
    found.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(b.arrival.cmp(&a.arrival)));
    let total = found.len();
    found.truncate(limit);
    Ok(Json(SearchView { messages: views(&node, found)?, found: total, scanned, complete }))
}

/// Reads a message
///
/// For this member's own messages, with each recipient's state; with every receipt that answers
/// it.
///
/// Roles: any operator.
#[utoipa::path(get, path = "/api/v1/messages/{id}", tag = "messages",
    params(("id" = String, Path, description = "message id: the envelope hash, 64 hex digits")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = MessageView, description = "the message"),
              (status = 404, body = ErrorBody, description = "`unknown_message`: no such message here")))]
pub async fn get_message(
    State(node): State<Arc<NodeState>>,
    _auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<MessageView>, ApiError> {
    let hash = EnvelopeHash::from_hex(&id)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_message", format!("no message {id} here")))?;
    Ok(Json(load_message(&node, &hash)?))
}

/// Reads a stored envelope as it travelled
///
/// For audit and offline verification: the signed bytes, and for an MLS application message the
/// content as its author signed it.
///
/// Roles: any operator.
#[utoipa::path(get, path = "/api/v1/envelopes/{id}", tag = "messages",
    params(("id" = String, Path, description = "envelope hash: 64 hex digits")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = EnvelopeView, description = "the envelope"),
              (status = 404, body = ErrorBody, description = "`unknown_envelope`: no such envelope here")))]
pub async fn get_envelope(
    State(node): State<Arc<NodeState>>,
    _auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<EnvelopeView>, ApiError> {
    use base64::Engine;
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "unknown_envelope", format!("no envelope {id} here"));
    let hash = EnvelopeHash::from_hex(&id).ok_or_else(not_found)?;
    let row = node.store.envelope(&hash)?.ok_or_else(not_found)?;
    let envelope = adi_wire::VerifiedEnvelope::from_trusted_storage(&row.bytes)
        .map_err(|e| ApiError::internal(StoreError::Corrupt(e.to_string())))?;
    let b = envelope.body();
    Ok(Json(EnvelopeView {
        id: row.hash.to_hex(),
        line: b.line.to_hex(),
        sender: b.sender.clone(),
        seq: b.seq,
        prev: b.prev.to_hex(),
        created_ms: b.created_ms,
        received_ms: row.received_ms,
        kind: row.kind,
        bytes_base64: base64::engine::general_purpose::STANDARD.encode(&row.bytes),
        content_base64: row.signed_content.map(|c| base64::engine::general_purpose::STANDARD.encode(c)),
        content_hash: hex::encode(b.content_hash),
    }))
}
