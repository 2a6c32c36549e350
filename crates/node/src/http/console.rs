//! The duty officer's console: a page served by the node at `/console`, and the sign-in that
//! gives it a session (`http::auth` checks the sessions).
//!
//! Sign-in always makes a new session (no fixation) and is bounded per name, per address and in all (`crate::throttle`). The
//! page's own assets are compiled into the binary and it requests nothing outside its node.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{
    check_csrf, cookie, current, random_hex, session_ends_ms, session_hash, SESSION_COOKIE, WATCH_COOKIE,
};
use super::error::ApiJson;
use crate::clock::now_ms;
use crate::conns::ClientAddr;
use crate::error::{ApiError, ErrorBody};
use crate::state::NodeState;

const PAGE: &str = include_str!("console/index.html");

/// The page's script and style, served as files of their own so that the Content-Security-Policy
/// allows no inline script or style.
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");

/// The page.
pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}

pub async fn script() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], SCRIPT)
        .into_response()
}

pub async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], STYLE).into_response()
}

/// The policy every answer of the API carries: nothing but the node's own script, style, images
/// and connections; no inline script or style, no plugin, no frame of the page anywhere. The
/// one exception is for a node of a pair: its page may ask the other node whether it answers
/// (`/healthz`, which reads nothing back across origins) before moving there.
pub fn content_security_policy(pair_urls: &[String]) -> HeaderValue {
    let mut connect = String::from("'self'");
    for origin in pair_urls.iter().filter_map(|u| crate::config::origin_of(u)) {
        connect.push(' ');
        connect.push_str(&origin);
    }
    let policy = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src {connect}; \
         frame-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    // The origins hold only the characters of an address (`config::origin_of`).
    HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static("default-src 'none'"))
}

/// Adds the security headers to every answer: the Content-Security-Policy, no framing, no type
/// sniffing, no referrer, no caching of API answers (anything not set otherwise), and HSTS when
/// the API is served over TLS.
pub async fn security_headers(
    State(node): State<Arc<NodeState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    let set = |h: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    // An answer with a policy of its own (the operations report's page) keeps it.
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        let policy = node.console_policy.get_or_init(|| content_security_policy(&node.pair_urls)).clone();
        h.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    // A file shown in the console's sandboxed preview may be framed by the console alone; every
    // other answer by nothing.
    if !h.contains_key(header::X_FRAME_OPTIONS) {
        set(h, header::X_FRAME_OPTIONS, "DENY");
    }
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "no-referrer");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, header::CACHE_CONTROL, "no-store");
    }
    if node.api_tls {
        set(h, header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    }
    response
}

/// The world basemap of the console's maps: the countries of Natural Earth (public domain) at
/// 1:50 million, as TopoJSON from the `world-atlas` package, compiled into the binary so that
/// maps work with no internet.
const WORLD: &str = include_str!("console/world-50m.json");

pub async fn world() -> Response {
    ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "private, max-age=86400")], WORLD)
        .into_response()
}

/// An operator's name and password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub name: String,
    pub password: String,
}

/// The signed-in operator, and the CSRF token its requests must carry.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    pub name: String,
    pub role: String,
    pub csrf: String,
    /// When the session ends if nothing keeps it alive: idle or at its longest, or at the end of
    /// the watch while the page holds the event stream open.
    pub expires_ms: u64,
}

/// What waits for this desk, told to a page whose session ended: counts, never content.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct UrgentView {
    /// FLASH and IMMEDIATE messages that wait for this member's acknowledgement.
    pub urgent: usize,
    /// Of the messages that wait for this member's acknowledgement, those past their deadline.
    pub overdue: usize,
    /// When the page's watch cookie ends.
    pub watch_ends_ms: u64,
}

/// The watch cookie's value for `operator` until `ends_ms`: the name (hex), the end, and their
/// HMAC-SHA256 under the node's watch key.
fn watch_value(node: &NodeState, operator: &str, ends_ms: u64) -> String {
    use hmac::Mac;
    let name = hex::encode(operator.as_bytes());
    let mac = watch_mac(node, &name, ends_ms).finalize().into_bytes();
    format!("{name}.{ends_ms}.{}", hex::encode(mac))
}

fn watch_mac(node: &NodeState, name_hex: &str, ends_ms: u64) -> hmac::Hmac<sha2::Sha256> {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&node.watch_key).expect("HMAC takes a key of any length");
    mac.update(b"ADI-WATCH-V1\0");
    mac.update(name_hex.as_bytes());
    mac.update(b"\0");
    mac.update(&ends_ms.to_be_bytes());
    mac
}

/// The operator a request's watch cookie names, if the cookie is this node's and has not ended.
fn watcher(node: &NodeState, headers: &HeaderMap) -> Option<(String, u64)> {
    use hmac::Mac;
    let value = cookie(headers, WATCH_COOKIE)?;
    let mut parts = value.split('.');
    let (name, ends, mac) = (parts.next()?, parts.next()?, parts.next()?);
    let ends_ms: u64 = ends.parse().ok()?;
    let mac = hex::decode(mac).ok()?;
    watch_mac(node, name, ends_ms).verify_slice(&mac).ok()?;
    if now_ms() > ends_ms {
        return None;
    }
    let name = String::from_utf8(hex::decode(name).ok()?).ok()?;
    Some((name, ends_ms))
}

/// Signs an operator in to the console
///
/// A new session whatever cookie came with the request: its id in an HttpOnly, SameSite=Strict
/// cookie (`adi_session`), and the CSRF token every state-changing request of the session
/// carries in `X-CSRF-Token`. Attempts are bounded per name, per address and in all before any
/// password is checked.
///
/// Roles: any operator with a password (`adi operator add`).
#[utoipa::path(post, path = "/console/sign-in", tag = "console", request_body = SignIn, security(()),
    responses((status = 200, body = SessionView, description = "signed in",
               headers(("Set-Cookie" = String, description = "the session cookie"))),
              (status = 400, body = ErrorBody, description = "`malformed_json`, `bad_body`"),
              (status = 401, body = ErrorBody, description = "`sign_in_refused`: wrong name or password"),
              (status = 413, body = ErrorBody, description = "`body_too_large`"),
              (status = 415, body = ErrorBody, description = "`unsupported_media_type`: the body is not JSON"),
              (status = 429, body = ErrorBody, description = "too many attempts for the name, from the address or in all; wait as `Retry-After` says",
               headers(("Retry-After" = u64, description = "seconds to wait"))),
              (status = 500, body = ErrorBody, description = "`internal`: the node could not complete the request"),
              (status = 503, body = ErrorBody, description = "`busy`: too many sign-ins are being checked at once; or writes are refused while the database cannot be written")))]
pub async fn sign_in(
    State(node): State<Arc<NodeState>>,
    client: Option<Extension<ClientAddr>>,
    ApiJson(req): ApiJson<SignIn>,
) -> Result<Response, ApiError> {
    let now = now_ms();
    let limits = &node.runtime_limits;
    let refused = || ApiError::new(StatusCode::UNAUTHORIZED, "sign_in_refused", "wrong name or password");
    let address = client.map(|Extension(ClientAddr(a))| a);
    if let Err(r) = node.sign_in.admit(limits, &req.name, address, now) {
        tracing::warn!(operator = %req.name, remote = ?address, reason = %r.message, "console sign-in held back");
        let mut response = ApiError::new(StatusCode::TOO_MANY_REQUESTS, r.code, r.message).into_response();
        if let Ok(v) = HeaderValue::from_str(&r.retry_after_ms.div_ceil(1_000).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(response);
    }
    let found = node.store.operator_password(&req.name)?;
    let (operator, phc) = match found {
        Some((op, Some(phc))) => (op, phc),
        _ => (
            // No one: the name stays empty, and the role is the one that may do least.
            adi_store::Operator { name: String::new(), role: adi_core::Role::Auditor, created_ms: 0 },
            // Spend the same effort on an unknown name as on a wrong password.
            "$argon2id$v=19$m=19456,t=2,p=1$YWRpLXVua25vd24$0VN5l8vUR3yWzDrf3xhuzQ".to_string(),
        ),
    };
    let password = req.password;
    let wait = std::time::Duration::from_millis(limits.sign_in_wait_ms);
    let Some(ok) = node.sign_in.check(wait, password, phc).await else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many sign-ins are being checked at once; try again in a moment",
        ));
    };
    if !ok || operator.name.is_empty() {
        node.sign_in.failed(limits, &req.name, now_ms());
        tracing::warn!(operator = %req.name, "console sign-in refused");
        return Err(refused());
    }
    node.sign_in.succeeded(&req.name);
    let id = random_hex();
    let csrf = random_hex();
    node.store
        .start_session(session_hash(&id), operator.name.clone(), csrf.clone(), now)
        .wait()
        .await
        .map_err(|e| node.fail_storage(&e))?;
    tracing::info!(operator = %operator.name, "console sign-in");
    let secure = if node.api_tls { "; Secure" } else { "" };
    let session_cookie = format!("{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/{secure}");
    let watch_ends_ms = now.saturating_add(limits.urgent_watch_ms);
    let watch_cookie = format!(
        "{WATCH_COOKIE}={}; HttpOnly; SameSite=Strict; Path=/console; Max-Age={}{secure}",
        watch_value(&node, &operator.name, watch_ends_ms),
        limits.urgent_watch_ms / 1000
    );
    let view = SessionView {
        name: operator.name,
        role: operator.role.to_string(),
        csrf,
        expires_ms: now + limits.session_idle_ms.min(limits.session_max_ms),
    };
    let mut response = Json(view).into_response();
    for cookie in [session_cookie, watch_cookie] {
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(response)
}

/// The signed-in operator
///
/// The console session the cookie names, with its CSRF token.
///
/// Roles: any operator signed in to the console.
#[utoipa::path(get, path = "/console/session", tag = "console", security(("session" = [])),
    responses((status = 200, body = SessionView, description = "the session"),
              (status = 401, body = ErrorBody, description = "`unauthorized`: no session, or it is over; `session_expired`"),
              (status = 500, body = ErrorBody, description = "`internal`: the node could not complete the request")))]
pub async fn session(State(node): State<Arc<NodeState>>, headers: HeaderMap) -> Result<Json<SessionView>, ApiError> {
    let (id, row) = current(&node, &headers)?;
    let expires_ms = session_ends_ms(&node, &session_hash(&id), &row);
    Ok(Json(SessionView { name: row.operator.name, role: row.operator.role.to_string(), csrf: row.csrf, expires_ms }))
}

/// What waits for this desk, to a signed-out page
///
/// For a console page whose session ended: how many FLASH and IMMEDIATE messages wait for this
/// member's acknowledgement, and how many of those waiting are past their deadline; never what
/// they say. The page proves it was signed in on this node with its watch cookie (`adi_watch`,
/// set at sign-in for `urgent_watch_ms`, HttpOnly); the cookie of another node, or of a node
/// restarted since, is refused.
///
/// Roles: any operator whose page signed in on this node.
#[utoipa::path(get, path = "/console/urgent", tag = "console", security(("watch" = [])),
    responses((status = 200, body = UrgentView, description = "what waits, counted"),
              (status = 401, body = ErrorBody, description = "`unauthorized`: no watch cookie of this node, or it ended"),
              (status = 500, body = ErrorBody, description = "`internal`: the node could not complete the request")))]
pub async fn urgent(State(node): State<Arc<NodeState>>, headers: HeaderMap) -> Result<Json<UrgentView>, ApiError> {
    let (name, watch_ends_ms) =
        watcher(&node, &headers).ok_or_else(|| ApiError::unauthorized("no watch of this node's: sign in"))?;
    // An operator removed since is told nothing.
    if node.store.operator_password(&name)?.is_none() {
        return Err(ApiError::unauthorized("no watch of this node's: sign in"));
    }
    let core = node.core();
    let waiting: Vec<_> =
        core.pending().filter(|p| p.side == adi_core::Side::Recipient && p.member == node.member).collect();
    let urgent = waiting
        .iter()
        .filter(|p| matches!(p.precedence, adi_core::Precedence::Flash | adi_core::Precedence::Immediate))
        .count();
    let overdue = waiting.iter().filter(|p| p.alarmed || p.due_ms < now_ms()).count();
    Ok(Json(UrgentView { urgent, overdue, watch_ends_ms }))
}

/// Signs out of the console
///
/// Ends the session (its CSRF token required) and clears the cookie.
///
/// Roles: any operator signed in to the console.
#[utoipa::path(post, path = "/console/sign-out", tag = "console", security(("session" = [], "csrf" = [])),
    responses((status = 204, description = "signed out; the cookie is cleared",
               headers(("Set-Cookie" = String, description = "the session cookie, expired"))),
              (status = 401, body = ErrorBody, description = "`unauthorized`: no session, or it is over; `session_expired`"),
              (status = 403, body = ErrorBody, description = "`csrf`: the request lacks the session's CSRF token"),
              (status = 500, body = ErrorBody, description = "`internal`: the node could not complete the request"),
              (status = 503, body = ErrorBody, description = "writes are refused while the database cannot be written")))]
pub async fn sign_out(State(node): State<Arc<NodeState>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (id, row) = current(&node, &headers)?;
    check_csrf(&headers, &row)?;
    node.store.end_session(session_hash(&id)).wait().await.map_err(|e| node.fail_storage(&e))?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    // Signed out on purpose: the page no longer watches either.
    for cookie in [
        format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
        format!("{WATCH_COOKIE}=; HttpOnly; SameSite=Strict; Path=/console; Max-Age=0"),
    ] {
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(response)
}
