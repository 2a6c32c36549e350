//! The operator API: JSON over HTTP with a bearer token per operator.
//!
//! Every error leaves as `{"error": code, "message": text}` with the status of its kind
//! ([`ApiError`]); internals are logged, never sent. The OpenAPI document at
//! `/api/v1/openapi.json` is generated from the handlers and types below.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use adi_core::{CoreError, Draft, ErrorKind, Line, Message, NewLine, Precedence, RecipientState, WriteBatch};
use adi_store::{MessageQuery, MessageRow, Operator, ReceiptRow, RecipientRow, StoreError};
use adi_wire::{EnvelopeHash, LineId};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{OpenApi, ToSchema};

use crate::decisions_api;
use crate::discipline_api::{self, DraftView};
use crate::node::{now_ms, NodeState};
use crate::translations_api;

/// An error as the API reports it.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

/// The JSON body of every error.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// A stable machine-readable code, such as `too_many_words`.
    pub error: String,
    /// A sentence for people.
    pub message: String,
    /// The field at fault, as a path into the request (`form.reporting_unit.course_deg`), when
    /// one field is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), field: None }
    }

    /// A 400 whose fault lies in one field, named by its path in the request.
    pub fn bad_field(code: &'static str, field: String, message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, code, message: message.into(), field: Some(field) }
    }

    pub fn unauthorized(message: &str) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// The node cannot complete the write now; the client may try again later.
    pub fn unavailable() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the node cannot complete the write now; try again later",
        )
    }

    pub fn from_body_rejection(e: BytesRejection) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", "the request body is over the size limit")
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_body", e.body_text())
        }
    }

    pub(crate) fn internal(e: StoreError) -> Self {
        tracing::error!(error = %e, "request failed on storage");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the node could not complete the request")
    }
}

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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: self.code.to_string(), message: self.message, field: self.field };
        (self.status, Json(body)).into_response()
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

/// The operator behind a request's bearer token.
pub struct Auth(pub Operator);

/// SHA-256 of a token: the only form in which tokens are stored.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl FromRequestParts<Arc<NodeState>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<NodeState>) -> Result<Self, Self::Rejection> {
        // The console's requests carry a session cookie instead of a token: a state-changing one
        // must also carry the session's CSRF token.
        if parts.headers.get(header::AUTHORIZATION).is_none()
            && crate::console::session_cookie(&parts.headers).is_some()
        {
            let (id, row) = crate::console::current(state, &parts.headers)?;
            if !matches!(parts.method, axum::http::Method::GET | axum::http::Method::HEAD) {
                crate::console::check_csrf(&parts.headers, &row)?;
            }
            let now = now_ms();
            if now.saturating_sub(row.last_seen_ms) > 30_000 {
                // Recorded without waiting: a lost touch only shortens the idle timeout.
                drop(state.store.touch_session(crate::console::session_hash(&id), now));
            }
            return Ok(Auth(row.operator));
        }
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("a bearer token is required"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::unauthorized("the Authorization header must be 'Bearer <token>'"))?;
        match state.store.operator_by_token(&token_hash(token.trim()))? {
            Some(op) => Ok(Auth(op)),
            None => Err(ApiError::unauthorized("the token is not valid")),
        }
    }
}

impl Auth {
    pub(crate) fn require_sender(&self) -> Result<(), ApiError> {
        if self.0.role.may_send() {
            Ok(())
        } else {
            Err(ApiError::new(StatusCode::FORBIDDEN, "role", format!("the {} role may read but not send", self.0.role)))
        }
    }
}

/// A request for a new line.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLineRequest {
    /// Member codes, this node's member among them.
    pub members: Vec<String>,
    /// `ADMM` or `ADMM-Plus`.
    pub scope: String,
    pub title: Option<String>,
}

/// A line.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct LineView {
    pub id: String,
    pub scope: String,
    pub title: String,
    pub home: String,
    pub members: Vec<String>,
    pub direct: bool,
    pub created_ms: u64,
    /// The MLS epoch of the line's group at this node.
    pub epoch: Option<u64>,
}

impl From<&Line> for LineView {
    fn from(l: &Line) -> Self {
        LineView {
            id: l.id.to_hex(),
            scope: l.scope.as_str().to_string(),
            title: l.title.clone(),
            home: l.home.to_string(),
            members: l.members.iter().map(|m| m.to_string()).collect(),
            direct: l.is_direct(),
            created_ms: l.created_ms,
            epoch: None,
        }
    }
}

/// A message to send.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessageRequest {
    /// `FLASH`, `IMMEDIATE`, `PRIORITY` or `ROUTINE` (or `Z`, `O`, `P`, `R`).
    pub precedence: String,
    /// `OPERATIONAL` (default), `SERVICE` or `TEST`.
    pub class: Option<String>,
    /// Classification and handling marking; the node's default when absent.
    pub caveat: Option<String>,
    /// Required for free text; a report's subject defaults to its one-line summary.
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub body: String,
    /// Whether the recipients must acknowledge; true by default for OPERATIONAL.
    pub ack_required: Option<bool>,
    /// Declares a crisis use: where the establishment requires it, a principal releases it.
    pub crisis: Option<bool>,
    /// A structured report with its `kind` (`GET /api/v1/schemas`; `docs/FORMS.md`), checked
    /// field by field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub form: Option<serde_json::Value>,
    /// An Experts' Working Group tag, such as `maritime-security`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ewg: Option<String>,
}

impl NewMessageRequest {
    pub fn to_draft(&self) -> Draft {
        Draft {
            precedence: self.precedence.clone(),
            class: self.class.clone(),
            caveat: self.caveat.clone(),
            subject: self.subject.clone(),
            body: self.body.clone(),
            ack_required: self.ack_required,
            crisis: self.crisis,
            form: self.form.clone(),
            ewg: self.ewg.clone(),
        }
    }
}

/// One recipient's state of a message.
#[derive(Serialize, Deserialize, ToSchema, Clone)]
pub struct RecipientView {
    pub member: String,
    /// `sent` (committed here and queued), `delivered` (committed at the recipient's node) or
    /// `refused` (the recipient's node refused it, with `detail`).
    pub state: String,
    pub sent_ms: u64,
    pub delivered_ms: Option<u64>,
    /// When the recipient's node signed its `decrypted` receipt for this message.
    pub decrypted_ms: Option<u64>,
    pub seen_ms: Option<u64>,
    pub acknowledged_ms: Option<u64>,
    pub declined_ms: Option<u64>,
    /// Why the recipient's node refused it, why delivery waits, or why it was declined.
    pub detail: Option<String>,
    /// When the acknowledgement is due, if it is awaited.
    pub deadline_ms: Option<u64>,
}

impl RecipientView {
    fn from_row(r: RecipientRow, deadline_ms: Option<u64>) -> Self {
        // A refused message will not be acknowledged either: no deadline runs for it.
        let settled = r.acknowledged_ms.is_some() || r.declined_ms.is_some() || r.state == RecipientState::Refused;
        RecipientView {
            member: r.member.to_string(),
            state: r.state.as_str().to_string(),
            sent_ms: r.sent_ms,
            delivered_ms: r.delivered_ms,
            decrypted_ms: r.decrypted_ms,
            seen_ms: r.seen_ms,
            acknowledged_ms: r.acknowledged_ms,
            declined_ms: r.declined_ms,
            detail: r.detail,
            deadline_ms: deadline_ms.filter(|_| !settled),
        }
    }
}

/// A signed receipt answering a message.
#[derive(Serialize, Deserialize, ToSchema, Clone)]
pub struct ReceiptView {
    /// The receipt's own envelope hash.
    pub id: String,
    pub member: String,
    /// `seen`, `acknowledged` or `declined`.
    pub kind: String,
    pub reason: Option<String>,
    /// When the answering member's node signed it.
    pub signed_ms: u64,
}

impl From<ReceiptRow> for ReceiptView {
    fn from(r: ReceiptRow) -> Self {
        ReceiptView {
            id: r.hash.to_hex(),
            member: r.member.to_string(),
            kind: r.kind.as_str().to_string(),
            reason: r.reason,
            signed_ms: r.signed_ms,
        }
    }
}

/// A message with, for this node's own messages, each recipient's state.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct MessageView {
    /// The envelope hash, the same on every node.
    pub id: String,
    pub line: String,
    pub sender: String,
    /// The sender's sequence number on the line.
    pub seq: u64,
    /// The order in which this node accepted it.
    pub arrival: u64,
    pub precedence: String,
    pub class: String,
    pub caveat: String,
    pub subject: String,
    pub body: String,
    pub ack_required: bool,
    pub crisis: bool,
    /// When each recipient's acknowledgement is due, for OPERATIONAL messages that require it.
    pub deadline_ms: Option<u64>,
    /// The principal who released it.
    pub released_by: Option<String>,
    pub created_ms: u64,
    pub received_ms: u64,
    /// Each recipient's state, on the sender's node.
    pub recipients: Vec<RecipientView>,
    /// Every signed receipt that answers it, on any member's node.
    pub receipts: Vec<ReceiptView>,
    /// The structured report it carries, with its `kind`, as signed.
    #[schema(value_type = Option<Object>)]
    pub form: Option<serde_json::Value>,
    /// The report as plain text.
    pub form_text: Option<String>,
    /// The Experts' Working Group tag.
    pub ewg: Option<String>,
    /// For an encounter at sea, the approach of each other unit to the reporting unit, computed
    /// from the positions, courses and speeds reported; a suggestion, never part of the report.
    pub approaches: Vec<adi_forms::UnitApproach>,
}

pub(crate) fn message_view(r: MessageRow, recipients: Vec<RecipientRow>, receipts: Vec<ReceiptRow>) -> MessageView {
    let deadline_ms = r.deadline_ms;
    let form: Option<serde_json::Value> = r.form.as_deref().and_then(|f| serde_json::from_str(f).ok());
    // Stored forms passed their checks before they were committed; read back, they are only read.
    let checked = form.as_ref().and_then(|f| adi_forms::Form::deserialize(f).ok());
    MessageView {
        id: r.hash.to_hex(),
        line: r.line.to_hex(),
        sender: r.sender.to_string(),
        seq: r.seq,
        arrival: r.arrival,
        precedence: r.precedence.unwrap_or_default(),
        class: r.class.unwrap_or_default(),
        caveat: r.caveat.unwrap_or_default(),
        subject: r.subject.unwrap_or_default(),
        body: r.body.unwrap_or_default(),
        ack_required: r.ack_required,
        crisis: r.crisis,
        deadline_ms,
        released_by: r.released_by,
        created_ms: r.created_ms,
        received_ms: r.received_ms,
        recipients: recipients.into_iter().map(|x| RecipientView::from_row(x, deadline_ms)).collect(),
        receipts: receipts.into_iter().map(ReceiptView::from).collect(),
        form_text: checked.as_ref().map(adi_forms::render),
        approaches: checked.as_ref().map(adi_forms::approaches).unwrap_or_default(),
        form,
        ewg: r.ewg,
    }
}

/// Paging of message lists.
#[derive(Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Most messages to return (default 100).
    pub limit: Option<usize>,
}

/// A peer link's state and backlog.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct PeerView {
    pub member: String,
    pub queue_len: u64,
    pub oldest_queued_age_ms: Option<u64>,
    pub endpoint: Option<String>,
    pub last_error: Option<String>,
    pub last_delivery_ms: Option<u64>,
    pub failures: u32,
}

/// Liveness.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`, or `storage_failed` while the node refuses writes because its database cannot be
    /// written.
    pub status: String,
    pub member: String,
    /// Why writes are refused, while they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageView>,
}

/// Why the node refuses writes: its database cannot be written. Reads go on, and the node takes
/// writes again by itself once its database does.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct StorageView {
    /// `storage_full`, `storage_read_only` or `storage_failed`.
    pub error: String,
    pub message: String,
    /// When the first write failed.
    pub since_ms: u64,
}

/// The answer to a write refused because the database cannot be written: 503, naming the cause.
pub fn storage_refusal(fault: &adi_store::WriteFault) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        crate::node::fault_code(fault),
        format!(
            "{}; the node refuses writes until its database can be written again, and then takes them by itself",
            crate::node::fault_text(fault)
        ),
    )
}

#[derive(OpenApi)]
#[openapi(
    info(title = "ADI node API", description = "Operator API of one ADI member node"),
    paths(
        healthz,
        create_line,
        list_lines,
        get_line,
        update_keys,
        leave_line,
        send_message,
        line_messages,
        inbox,
        get_message,
        peers,
        crate::forms_api::schemas,
        crate::forms_api::closest_approach
    ),
    components(schemas(
        ErrorBody,
        NewLineRequest,
        LineView,
        NewMessageRequest,
        MessageView,
        RecipientView,
        PeerView,
        Health,
        StorageView,
        crate::forms_api::ApproachRequest,
        crate::forms_api::ApproachView
    ))
)]
pub struct ApiDoc;

/// The operator API router.
pub fn router(state: Arc<NodeState>) -> Router {
    let body_max = state.runtime_limits.api_body_bytes_max;
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/console") }))
        .route("/console", get(crate::console::page))
        .route("/console/sign-in", post(crate::console::sign_in))
        .route("/console/session", get(crate::console::session))
        .route("/console/sign-out", post(crate::console::sign_out))
        .route("/healthz", get(healthz))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/lines", get(list_lines).post(create_line))
        .route("/api/v1/lines/{line}", get(get_line))
        .route("/api/v1/lines/{line}/messages", get(line_messages).post(send_message))
        .route("/api/v1/lines/{line}/update-keys", post(update_keys))
        .route("/api/v1/lines/{line}/leave", post(leave_line))
        .route("/api/v1/lines/{line}/checkpoints", get(line_checkpoints).post(new_checkpoint))
        .route("/api/v1/lines/{line}/export", get(export_line))
        .route("/api/v1/lines/{line}/decisions", get(decisions_api::list).post(decisions_api::propose))
        .route("/api/v1/decisions/{id}", get(decisions_api::get_one))
        .route("/api/v1/messages/{id}/translations", get(translations_api::list).post(translations_api::translate))
        .route("/api/v1/translations/{id}/review", post(translations_api::review))
        .route("/api/v1/decisions/{id}/concur", post(decisions_api::concur))
        .route("/api/v1/decisions/{id}/decline", post(decisions_api::decline))
        .route("/api/v1/lines/{line}/members", post(add_member))
        .route("/api/v1/lines/{line}/members/{member}", axum::routing::delete(remove_member))
        .route("/api/v1/inbox", get(inbox))
        .route("/api/v1/messages/{id}", get(get_message))
        .route("/api/v1/envelopes/{id}", get(get_envelope))
        .route("/api/v1/messages/{id}/seen", post(discipline_api::seen))
        .route("/api/v1/messages/{id}/ack", post(discipline_api::ack))
        .route("/api/v1/messages/{id}/decline", post(discipline_api::decline))
        .route("/api/v1/drafts", get(discipline_api::drafts))
        .route("/api/v1/drafts/{id}/release", post(discipline_api::release))
        .route("/api/v1/alarms", get(discipline_api::alarms))
        .route("/api/v1/evidence", get(discipline_api::evidence))
        .route("/api/v1/alarms/{id}/ack", post(discipline_api::ack_alarm))
        .route("/api/v1/links", get(discipline_api::links))
        .route("/api/v1/events", get(discipline_api::events))
        .route("/api/v1/peers", get(peers))
        .route("/api/v1/schemas", get(crate::forms_api::schemas))
        .route("/api/v1/cpa", post(crate::forms_api::closest_approach))
        .route("/console/world.json", get(crate::console::world))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "the endpoint does not take this method",
            )
        })
        .layer(DefaultBodyLimit::max(body_max))
        .with_state(state)
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Health)))]
async fn healthz(State(node): State<Arc<NodeState>>) -> Json<Health> {
    let storage = node.storage_failure().map(|f| StorageView {
        error: crate::node::fault_code(&f.fault).to_string(),
        message: crate::node::fault_text(&f.fault),
        since_ms: f.since_ms,
    });
    let status = if storage.is_some() || node.storage_failed.load(Ordering::SeqCst) { "storage_failed" } else { "ok" };
    Json(Health { status: status.into(), member: node.member.to_string(), storage })
}

/// Refuses a write while the node's database cannot be written.
pub(crate) fn check_writable(node: &NodeState) -> Result<(), ApiError> {
    match node.storage_failure() {
        Some(f) => Err(storage_refusal(&f.fault)),
        None => Ok(()),
    }
}

#[utoipa::path(post, path = "/api/v1/lines", request_body = NewLineRequest,
    responses((status = 201, body = LineView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
               (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)))]
async fn create_line(
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
        let kp = crate::federation::claim_checked_key_package(&node, &member).await.map_err(|e| {
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

#[utoipa::path(get, path = "/api/v1/lines", responses((status = 200, body = Vec<LineView>), (status = 401, body = ErrorBody)))]
async fn list_lines(State(node): State<Arc<NodeState>>, _auth: Auth) -> Json<Vec<LineView>> {
    let core = node.core();
    let mut lines: Vec<LineView> =
        core.lines().map(|l| LineView { epoch: core.epoch(&l.id), ..LineView::from(l) }).collect();
    lines.sort_by_key(|l| (l.created_ms, l.id.clone()));
    Json(lines)
}

pub(crate) fn find_line(node: &NodeState, id: &str) -> Result<Line, ApiError> {
    LineId::from_hex(id)
        .and_then(|id| node.core().line(&id).cloned())
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_line", format!("no line {id} here")))
}

#[utoipa::path(post, path = "/api/v1/lines/{line}/update-keys", params(("line" = String, Path, description = "line id")),
    responses((status = 200, body = LineView, description = "the home member committed a key update, or another member proposed one"),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_keys(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
    Path(line): Path<String>,
) -> Result<Json<LineView>, ApiError> {
    change_line(&node, &auth, &line, "key update", |core, line| core.update_keys(now_ms(), line)).await
}

/// Has the core seal one of this node's envelopes that changes a line (a key update, a leaving, a
/// removal), commits it, and answers the line as it now stands.
async fn change_line(
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

/// A member to add to a line.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMemberRequest {
    pub member: String,
}

#[utoipa::path(post, path = "/api/v1/lines/{line}/members", request_body = NewMemberRequest,
    params(("line" = String, Path, description = "line id")),
    responses((status = 200, body = LineView, description = "the addition is committed and the member brought in"),
              (status = 403, body = ErrorBody, description = "not the home member, or the scope does not admit the member"),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "on the line already"),
              (status = 503, body = ErrorBody, description = "the member's node gave no KeyPackage")))]
async fn add_member(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
    Path(line): Path<String>,
    ApiJson(req): ApiJson<NewMemberRequest>,
) -> Result<Json<LineView>, ApiError> {
    auth.require_sender()?;
    check_writable(&node)?;
    let line = find_line(&node, &line)?;
    let member = adi_core::MemberCode::parse(&req.member)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_member_code", e))?;
    node.core().check_new_member(line.id, &member)?;
    let kp = crate::federation::claim_checked_key_package(&node, &member).await.map_err(|e| {
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

#[utoipa::path(delete, path = "/api/v1/lines/{line}/members/{member}",
    params(("line" = String, Path, description = "line id"), ("member" = String, Path, description = "member code")),
    responses((status = 200, body = LineView, description = "the removal is committed; the member reads nothing sent after it"),
              (status = 403, body = ErrorBody, description = "not the line's home member"), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody, description = "the home member, or a line of two")))]
async fn remove_member(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
    Path((line, member)): Path<(String, String)>,
) -> Result<Json<LineView>, ApiError> {
    let what = format!("{member} removed from the line");
    change_line(&node, &auth, &line, &what, |core, line| {
        let member = adi_core::MemberCode::parse(&member).map_err(|e| CoreError::not_found("not_on_line", e))?;
        core.remove_member(now_ms(), line, &member)
    })
    .await
}

#[utoipa::path(post, path = "/api/v1/lines/{line}/leave", params(("line" = String, Path, description = "line id")),
    responses((status = 200, body = LineView, description = "the leaving is proposed; the home member commits it"),
              (status = 403, body = ErrorBody, description = "the home member, or not on the line"),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "a direct line")))]
async fn leave_line(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
    Path(line): Path<String>,
) -> Result<Json<LineView>, ApiError> {
    change_line(&node, &auth, &line, "leaving the line proposed", |core, line| core.leave(now_ms(), line)).await
}

/// A signed checkpoint of a member's log of a line, with its countersignatures.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct CheckpointView {
    pub signer: String,
    pub size: u64,
    /// Merkle root of the signer's log, hex.
    pub root: String,
    pub time_ms: u64,
    /// The signed checkpoint bytes (`docs/RECORD.md`), hex.
    pub signed: String,
    pub countersignatures: Vec<CountersignatureView>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct CountersignatureView {
    pub member: String,
    /// Ed25519 signature, hex.
    pub signature: String,
}

impl From<adi_store::CheckpointRow> for CheckpointView {
    fn from(r: adi_store::CheckpointRow) -> Self {
        let c = &r.checkpoint.checkpoint;
        CheckpointView {
            signer: c.signer.clone(),
            size: c.size,
            root: hex::encode(c.root),
            time_ms: c.time_ms,
            signed: r.checkpoint.to_bytes().map(hex::encode).unwrap_or_default(),
            countersignatures: r
                .countersignatures
                .into_iter()
                .map(|(m, s)| CountersignatureView { member: m.to_string(), signature: hex::encode(s) })
                .collect(),
        }
    }
}

#[utoipa::path(get, path = "/api/v1/lines/{line}/checkpoints", params(("line" = String, Path, description = "line id")),
    responses((status = 200, body = Vec<CheckpointView>, description = "every checkpoint held of the line, oldest first"),
              (status = 404, body = ErrorBody)))]
async fn line_checkpoints(
    State(node): State<Arc<NodeState>>,
    _auth: Auth,
    Path(line): Path<String>,
) -> Result<Json<Vec<CheckpointView>>, ApiError> {
    let line = find_line(&node, &line)?;
    Ok(Json(node.store.checkpoints(&line.id, None)?.into_iter().map(CheckpointView::from).collect()))
}

/// The window of a line to export, by the time this node accepted each envelope.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct ExportParams {
    /// Milliseconds since 1970-01-01T00:00Z: the first envelope accepted at or after it.
    pub from_ms: Option<u64>,
    /// The last envelope accepted at or before it.
    pub to_ms: Option<u64>,
}

#[utoipa::path(get, path = "/api/v1/lines/{line}/export", params(("line" = String, Path, description = "line id"), ExportParams),
    responses((status = 200, description = "a self-contained bundle of the line (docs/RECORD.md, \"Bundles\")"),
              (status = 404, body = ErrorBody)))]
async fn export_line(
    State(node): State<Arc<NodeState>>,
    _auth: Auth,
    Path(line): Path<String>,
    params: Result<Query<ExportParams>, QueryRejection>,
) -> Result<Json<adi_record::bundle::Bundle>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text()))?;
    let line = find_line(&node, &line)?;
    let bundle = crate::record::export(&node, line.id, p.from_ms, p.to_ms)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "export_failed", e))?;
    Ok(Json(bundle))
}

/// A new checkpoint and what each member answered to it.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct NewCheckpointView {
    pub checkpoint: CheckpointView,
    pub exchanges: Vec<crate::record::Exchange>,
}

#[utoipa::path(post, path = "/api/v1/lines/{line}/checkpoints", params(("line" = String, Path, description = "line id")),
    responses((status = 200, body = NewCheckpointView, description = "signed, kept, and offered to every other member"),
              (status = 404, body = ErrorBody)))]
async fn new_checkpoint(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
    Path(line): Path<String>,
) -> Result<Json<NewCheckpointView>, ApiError> {
    auth.require_sender()?;
    check_writable(&node)?;
    let line = find_line(&node, &line)?;
    let (cp, exchanges) = crate::record::checkpoint_and_exchange(&node, line.id).await.map_err(|e| match e {
        crate::record::CheckpointError::Tamper(why) => ApiError::new(StatusCode::CONFLICT, "tamper", why),
        crate::record::CheckpointError::Failed(why) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "checkpoint_failed", why)
        }
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

#[utoipa::path(get, path = "/api/v1/lines/{line}", params(("line" = String, Path, description = "line id")),
    responses((status = 200, body = LineView), (status = 404, body = ErrorBody)))]
async fn get_line(
    State(node): State<Arc<NodeState>>,
    _auth: Auth,
    Path(line): Path<String>,
) -> Result<Json<LineView>, ApiError> {
    let line = find_line(&node, &line)?;
    let epoch = node.core().epoch(&line.id);
    Ok(Json(LineView { epoch, ..LineView::from(&line) }))
}

#[utoipa::path(post, path = "/api/v1/lines/{line}/messages", request_body = NewMessageRequest,
    params(("line" = String, Path, description = "line id")),
    responses((status = 201, body = MessageView, description = "sent: committed here and queued for each recipient"),
               (status = 202, body = DraftView, description = "held for a principal's release"),
               (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
               (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
async fn send_message(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
    Path(line): Path<String>,
    ApiJson(req): ApiJson<NewMessageRequest>,
) -> Result<Response, ApiError> {
    auth.require_sender()?;
    check_writable(&node)?;
    let line = find_line(&node, &line)?;
    if let Some(form) = &req.form {
        crate::forms_api::check_call_answer(&node, &line.id, form)?;
    }
    let draft = req.to_draft();
    // Checked now, so that a draft held for release is already known to be sendable.
    let message = Message::from_draft(draft.clone(), "checked", node.core().limits())?;
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
    let hash = commit_own(&node, |core| core.send(now_ms(), line.id, draft, released_by)).await?;
    let view = load_message(&node, &hash)?;
    tracing::info!(operator = %auth.0.name, message = %view.id, precedence = %view.precedence, "message sent");
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// Has the core seal one of this node's envelopes, commits it, and returns its hash once durable.
/// The record is handed to the store under the core's lock, so commits keep the core's order.
pub(crate) async fn commit_own(
    node: &NodeState,
    seal: impl FnOnce(&mut adi_core::Hotline) -> Result<adi_core::Record, CoreError>,
) -> Result<EnvelopeHash, ApiError> {
    let hashes = commit_own_records(node, |core| seal(core).map(|r| vec![r])).await?;
    Ok(hashes[0])
}

/// Like [`commit_own`], for an operation that seals several envelopes together.
pub(crate) async fn commit_own_records(
    node: &NodeState,
    seal: impl FnOnce(&mut adi_core::Hotline) -> Result<Vec<adi_core::Record>, CoreError>,
) -> Result<Vec<EnvelopeHash>, ApiError> {
    let (hashes, recipients, pending) = {
        let mut core = node.core();
        let records = seal(&mut core)?;
        let hashes: Vec<EnvelopeHash> = records.iter().map(|r| r.envelope.hash()).collect();
        let recipients: Vec<adi_core::MemberCode> = records.iter().flat_map(|r| r.recipients.clone()).collect();
        let mls_state = Some(core.mls_delta()?);
        (hashes, recipients, node.store.commit(WriteBatch { records, mls_state, ..WriteBatch::default() }))
    };
    if let Err(e) = pending.wait().await {
        return Err(node.fail_storage(&e));
    }
    node.committed(&recipients);
    Ok(hashes)
}

pub(crate) fn load_message(node: &NodeState, hash: &EnvelopeHash) -> Result<MessageView, ApiError> {
    let row = node
        .store
        .message(hash)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_message", format!("no message {hash} here")))?;
    let recipients = node.store.recipients(hash)?;
    let receipts = node.store.receipts(hash)?;
    Ok(message_view(row, recipients, receipts))
}

fn list_limit(node: &NodeState, params: Result<Query<ListParams>, QueryRejection>) -> Result<usize, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text()))?;
    let max = node.runtime_limits.list_len_max;
    match params.limit {
        None => Ok(100.min(max)),
        Some(n) if n >= 1 && n <= max => Ok(n),
        Some(n) => {
            Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_limit", format!("limit {n} is not within 1 to {max}")))
        }
    }
}

fn views(node: &NodeState, rows: Vec<MessageRow>) -> Result<Vec<MessageView>, ApiError> {
    rows.into_iter()
        .map(|r| {
            let recipients = if r.sender == node.member { node.store.recipients(&r.hash)? } else { Vec::new() };
            let receipts = node.store.receipts(&r.hash)?;
            Ok(message_view(r, recipients, receipts))
        })
        .collect()
}

#[utoipa::path(get, path = "/api/v1/lines/{line}/messages", params(("line" = String, Path, description = "line id"), ListParams),
    responses((status = 200, body = Vec<MessageView>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn line_messages(
    State(node): State<Arc<NodeState>>,
    _auth: Auth,
    Path(line): Path<String>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Vec<MessageView>>, ApiError> {
    let line = find_line(&node, &line)?;
    let limit = list_limit(&node, params)?;
    let rows =
        node.store.messages(&MessageQuery { line: Some(line.id), not_from: None, limit, by_precedence: false })?;
    Ok(Json(views(&node, rows)?))
}

#[utoipa::path(get, path = "/api/v1/inbox", params(ListParams),
    responses((status = 200, body = Vec<MessageView>, description = "messages from other members, by precedence then time"),
               (status = 401, body = ErrorBody)))]
async fn inbox(
    State(node): State<Arc<NodeState>>,
    _auth: Auth,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Vec<MessageView>>, ApiError> {
    let limit = list_limit(&node, params)?;
    let rows = node.store.messages(&MessageQuery {
        line: None,
        not_from: Some(node.member.clone()),
        limit,
        by_precedence: true,
    })?;
    Ok(Json(views(&node, rows)?))
}

#[utoipa::path(get, path = "/api/v1/messages/{id}", params(("id" = String, Path, description = "message id")),
    responses((status = 200, body = MessageView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_message(
    State(node): State<Arc<NodeState>>,
    _auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<MessageView>, ApiError> {
    let hash = EnvelopeHash::from_hex(&id)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_message", format!("no message {id} here")))?;
    Ok(Json(load_message(&node, &hash)?))
}

/// A stored envelope exactly as it travelled, for audit and offline verification.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct EnvelopeView {
    pub id: String,
    pub line: String,
    pub sender: String,
    pub seq: u64,
    /// Hash of the sender's previous envelope on the line.
    pub prev: String,
    pub created_ms: u64,
    pub received_ms: u64,
    /// `line_setup`, `message`, `receipt` or `link_test`.
    pub kind: String,
    /// The signed bytes, base64 (standard alphabet, padded); `docs/WIRE.md` specifies them.
    pub bytes_base64: String,
    /// For an MLS application message: the content as its author signed it, decrypted, base64
    /// (`docs/RECORD.md`, "Signed content"); it verifies under the author's roster key and
    /// matches the envelope's `content_hash` without any MLS key.
    pub content_base64: Option<String>,
    /// The hash of the signed content the envelope names, hex (zeros when it carries none).
    pub content_hash: String,
}

#[utoipa::path(get, path = "/api/v1/envelopes/{id}", params(("id" = String, Path, description = "envelope hash")),
    responses((status = 200, body = EnvelopeView), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_envelope(
    State(node): State<Arc<NodeState>>,
    _auth: Auth,
    Path(id): Path<String>,
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

#[utoipa::path(get, path = "/api/v1/peers", responses((status = 200, body = Vec<PeerView>), (status = 401, body = ErrorBody)))]
async fn peers(State(node): State<Arc<NodeState>>, _auth: Auth) -> Result<Json<Vec<PeerView>>, ApiError> {
    let stats = node.store.queue_stats()?;
    let now = now_ms();
    let out = node
        .links
        .values()
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
