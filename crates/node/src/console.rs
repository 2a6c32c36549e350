//! The duty officer's console: a page served by the node at `/console`, and the sign-in that
//! gives it a session.
//!
//! Operators sign in with their name and password (argon2id hashes, set by `adi operator add`).
//! A session is a random id in an HttpOnly, SameSite=Strict cookie (Secure when the API is served
//! over TLS), stored only as its SHA-256, with an idle and an absolute timeout; every
//! state-changing request of a session carries its CSRF token in `X-CSRF-Token`. Sign-in always
//! makes a new session (no fixation) and is rate-limited per operator name. The page's own
//! assets are compiled into the binary and it requests nothing outside its node.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::api::{ApiError, ApiJson};
use crate::node::{now_ms, NodeState};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "adi_session";
/// The header that carries a session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// A session unused this long is over.
pub const SESSION_IDLE_MS: u64 = 30 * 60 * 1000;
/// A session is over this long after sign-in, used or not.
pub const SESSION_MAX_MS: u64 = 12 * 60 * 60 * 1000;
/// Failed sign-ins allowed per operator name within `SIGN_IN_WINDOW_MS`.
pub const SIGN_IN_FAILURES_MAX: usize = 5;
pub const SIGN_IN_WINDOW_MS: u64 = 5 * 60 * 1000;

const PAGE: &str = include_str!("console/index.html");

/// Hashes a password with argon2id and a fresh salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// SHA-256 of a session id: the only form in which it is stored.
pub fn session_hash(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

/// The session id a request's cookies carry, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == SESSION_COOKIE && !v.is_empty()).then(|| v.to_string())
    })
}

/// The page.
pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// The world basemap of the console's maps: the countries of Natural Earth (public domain) at
/// 1:50 million, as TopoJSON from the `world-atlas` package, compiled into the binary so that
/// maps work with no internet.
const WORLD: &str = include_str!("console/world-50m.json");

pub async fn world() -> Response {
    ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "private, max-age=86400")], WORLD)
        .into_response()
}

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
    pub expires_ms: u64,
}

/// Signs an operator in: a new session whatever cookie came with the request.
pub async fn sign_in(State(node): State<Arc<NodeState>>, ApiJson(req): ApiJson<SignIn>) -> Result<Response, ApiError> {
    let now = now_ms();
    let refused = || ApiError::new(StatusCode::UNAUTHORIZED, "sign_in_refused", "wrong name or password");
    {
        let mut failures = node.sign_in_failures.lock().unwrap_or_else(|p| p.into_inner());
        let recent = failures.entry(req.name.clone()).or_default();
        recent.retain(|t| now.saturating_sub(*t) < SIGN_IN_WINDOW_MS);
        if recent.len() >= SIGN_IN_FAILURES_MAX {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                format!("{SIGN_IN_FAILURES_MAX} failed sign-ins for this name; try again in a few minutes"),
            ));
        }
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
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &phc)).await.unwrap_or(false);
    if !ok || operator.name.is_empty() {
        let mut failures = node.sign_in_failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.entry(req.name.clone()).or_default().push(now);
        tracing::warn!(operator = %req.name, "console sign-in refused");
        return Err(refused());
    }
    node.sign_in_failures.lock().unwrap_or_else(|p| p.into_inner()).remove(&req.name);
    let id = random_hex();
    let csrf = random_hex();
    node.store
        .start_session(session_hash(&id), operator.name.clone(), csrf.clone(), now)
        .wait()
        .await
        .map_err(|e| node.fail_storage(&e))?;
    tracing::info!(operator = %operator.name, "console sign-in");
    let secure = if node.api_tls { "; Secure" } else { "" };
    let cookie = format!("{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/{secure}");
    let view =
        SessionView { name: operator.name, role: operator.role.to_string(), csrf, expires_ms: now + SESSION_IDLE_MS };
    let mut response = Json(view).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// The session a request's cookie names, if it is still valid.
pub fn current(node: &NodeState, headers: &HeaderMap) -> Result<(String, adi_store::SessionRow), ApiError> {
    let id = session_cookie(headers).ok_or_else(|| ApiError::unauthorized("sign in first"))?;
    let row = node
        .store
        .session(&session_hash(&id))?
        .ok_or_else(|| ApiError::unauthorized("the session is over; sign in again"))?;
    let now = now_ms();
    if now.saturating_sub(row.last_seen_ms) > SESSION_IDLE_MS || now.saturating_sub(row.created_ms) > SESSION_MAX_MS {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "session_expired",
            "the session has expired; sign in again",
        ));
    }
    Ok((id, row))
}

/// The signed-in operator.
pub async fn session(State(node): State<Arc<NodeState>>, headers: HeaderMap) -> Result<Json<SessionView>, ApiError> {
    let (_, row) = current(&node, &headers)?;
    Ok(Json(SessionView {
        name: row.operator.name,
        role: row.operator.role.to_string(),
        csrf: row.csrf,
        expires_ms: (row.last_seen_ms + SESSION_IDLE_MS).min(row.created_ms + SESSION_MAX_MS),
    }))
}

/// Ends the session (its CSRF token required) and clears the cookie.
pub async fn sign_out(State(node): State<Arc<NodeState>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (id, row) = current(&node, &headers)?;
    check_csrf(&headers, &row)?;
    node.store.end_session(session_hash(&id)).wait().await.map_err(|e| node.fail_storage(&e))?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    let cookie = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// Refuses a state-changing request of a session without its CSRF token.
pub fn check_csrf(headers: &HeaderMap, row: &adi_store::SessionRow) -> Result<(), ApiError> {
    let given = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if given.is_empty() || given != row.csrf {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf",
            "the request lacks this session's CSRF token; reload the page",
        ));
    }
    Ok(())
}
