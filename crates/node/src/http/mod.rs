//! The operator API: JSON over HTTP, with a bearer token per operator or a console session
//! ([`auth`]), and the duty officer's [`console`] page.
//!
//! Every error leaves as `{"error": code, "message": text}` with the status of its kind
//! (`crate::error::ApiError`, converted in [`error`]); internals are logged, never sent. One
//! module per resource: [`lines`], [`messages`], [`discipline`] (answers, drafts, alarms, links,
//! events), [`decisions`], [`translations`], [`forms`], the [`record`] and the [`roster`] (its
//! versions and proposed amendments); their JSON is in
//! [`views`]. The OpenAPI document at `/api/v1/openapi.json` is generated from the handlers and
//! types ([`openapi`]); the [`router`] here puts them together. Path and query parameters and
//! bodies are read by the extractors of [`error`], whose refusals are errors of that shape too.
//! Every list but those the roster bounds pages with a cursor and links its next page while more
//! items remain ([`paging`]).

pub mod attachments;
pub mod auth;
pub mod console;
pub mod decisions;
pub mod discipline;
pub mod error;
pub mod forms;
pub mod lines;
pub mod messages;
pub mod openapi;
pub mod paging;
pub mod record;
pub mod roster;
pub mod translations;
pub mod views;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::Redirect;
use axum::routing::{get, post};
use axum::{Json, Router};

use self::discipline::peers;
use self::lines::{create_line, get_line, leave_line, list_lines, update_keys};
use self::messages::{get_message, inbox, line_messages, search, send_message};
pub use self::openapi::ApiDoc;
use self::views::{Health, StorageView};
use crate::error::{with_body_deadline, ApiError};
use crate::state::{fault_code, fault_text, NodeState};

/// The operator API router.
pub fn router(state: Arc<NodeState>) -> Router {
    let body_max = state.runtime_limits.api_body_bytes_max;
    let upload_max = usize::try_from(state.core().limits().attachment_bytes_max).unwrap_or(usize::MAX);
    let body_time = std::time::Duration::from_millis(state.runtime_limits.http_body_timeout_ms);
    let routes = Router::new()
        .route("/", get(|| async { Redirect::temporary("/console") }))
        .route("/console", get(console::page))
        .route("/console/console.js", get(console::script))
        .route("/console/console.css", get(console::style))
        .route("/console/sign-in", post(console::sign_in))
        .route("/console/session", get(console::session))
        .route("/console/sign-out", post(console::sign_out))
        .route("/console/urgent", get(console::urgent))
        .route("/healthz", get(healthz))
        .route("/api/v1/openapi.json", get(openapi::openapi))
        .route("/api/v1/lines", get(list_lines).post(create_line))
        .route("/api/v1/lines/{line}", get(get_line))
        .route("/api/v1/lines/{line}/messages", get(line_messages).post(send_message))
        .route("/api/v1/lines/{line}/update-keys", post(update_keys))
        .route("/api/v1/lines/{line}/leave", post(leave_line))
        .route("/api/v1/lines/{line}/checkpoints", get(record::line_checkpoints).post(record::new_checkpoint))
        .route("/api/v1/lines/{line}/export", get(record::export_line))
        .route("/api/v1/lines/{line}/archives", post(record::confirm_archive))
        .route("/api/v1/lines/{line}/decisions", get(decisions::list).post(decisions::propose))
        .route("/api/v1/decisions/{id}", get(decisions::get_one))
        .route("/api/v1/messages/{id}/translations", get(translations::list).post(translations::translate))
        .route("/api/v1/translations/{id}/review", post(translations::review))
        .route("/api/v1/decisions/{id}/concur", post(decisions::concur))
        .route("/api/v1/decisions/{id}/decline", post(decisions::decline))
        .route("/api/v1/lines/{line}/members", post(lines::add_member))
        .route("/api/v1/lines/{line}/members/{member}", axum::routing::delete(lines::remove_member))
        .route("/api/v1/inbox", get(inbox))
        .route("/api/v1/search", get(search))
        .route("/api/v1/report", get(record::report))
        .route("/api/v1/messages/{id}", get(get_message))
        .route("/api/v1/messages/{id}/attachments/{sha256}", get(attachments::file))
        .route("/api/v1/messages/{id}/attachments/{sha256}/pages", get(attachments::pages))
        .route("/api/v1/messages/{id}/attachments/{sha256}/pages/{page}", get(attachments::page))
        .route("/api/v1/attachments", post(attachments::upload).layer(DefaultBodyLimit::max(upload_max)))
        .route("/api/v1/envelopes/{id}", get(messages::get_envelope))
        .route("/api/v1/messages/{id}/seen", post(discipline::seen))
        .route("/api/v1/messages/{id}/ack", post(discipline::ack))
        .route("/api/v1/messages/{id}/decline", post(discipline::decline))
        .route("/api/v1/drafts", get(discipline::drafts))
        .route("/api/v1/drafts/{id}/release", post(discipline::release))
        .route("/api/v1/alarms", get(discipline::alarms))
        .route("/api/v1/evidence", get(discipline::evidence))
        .route("/api/v1/audit", get(discipline::audit))
        .route("/api/v1/roster", get(roster::show))
        .route("/api/v1/roster/versions", get(roster::versions))
        .route("/api/v1/roster/proposals", get(roster::proposals).post(roster::propose))
        .route("/api/v1/roster/proposals/{hash}/sign", post(roster::sign))
        .route("/api/v1/roster/rotate", post(roster::rotate))
        .route("/api/v1/alarms/{id}/ack", post(discipline::ack_alarm))
        .route("/api/v1/links", get(discipline::links))
        .route("/api/v1/events", get(discipline::events))
        .route("/api/v1/peers", get(peers))
        .route("/api/v1/schemas", get(forms::schemas))
        .route("/api/v1/cpa", post(forms::closest_approach))
        .route("/console/world.json", get(console::world))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "the endpoint does not take this method",
            )
        })
        .layer(DefaultBodyLimit::max(body_max));
    with_body_deadline(routes, body_time)
        .layer(axum::middleware::from_fn_with_state(state.clone(), console::security_headers))
        // Answers are gzip-compressed for a client that accepts it (the console's page, script
        // and lists); the event stream and small answers are left as they are.
        .layer(tower_http::compression::CompressionLayer::new())
        .with_state(state)
}

/// The node's health
///
/// Whether the node takes writes, and why not while it does not. Served without a token.
#[utoipa::path(get, path = "/healthz", tag = "node", security(()),
    responses((status = 200, body = Health, description = "the node is up")))]
pub async fn healthz(State(node): State<Arc<NodeState>>) -> Json<Health> {
    let storage = node.storage_failure().map(|f| StorageView {
        error: fault_code(&f.fault).to_string(),
        message: fault_text(&f.fault),
        since_ms: f.since_ms,
    });
    let status = if storage.is_some() || node.storage_failed.load(Ordering::SeqCst) { "storage_failed" } else { "ok" };
    let injected_faults = node.engine().bugs().names().into_iter().map(String::from).collect();
    Json(Health {
        status: status.into(),
        member: node.member.to_string(),
        storage,
        injected_faults,
        pair: node.pair_urls.clone(),
    })
}
