//! Who makes a request of the operator API ([`Auth`]): an operator with a bearer token (stored
//! only as its SHA-256), or an operator signed in to the console with a session.
//!
//! Operators sign in with their name and password (argon2id hashes, set by `adi operator add`).
//! A session is a random id in an HttpOnly, SameSite=Strict cookie (Secure when the API is served
//! over TLS), stored only as its SHA-256, with an idle and an absolute timeout; every
//! state-changing request of a session carries its CSRF token in `X-CSRF-Token`.

use std::sync::Arc;

use adi_store::Operator;
use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::clock::now_ms;
use crate::error::ApiError;
use crate::state::NodeState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "adi_session";
/// The cookie with which a console page, its session ended, asks whether something urgent waits
/// (`http::console::urgent`).
pub const WATCH_COOKIE: &str = "adi_watch";
/// The header that carries a session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Hashes a password with argon2id and a fresh salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
}

/// 32 random bytes, hex.
pub(super) fn random_hex() -> String {
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
    cookie(headers, SESSION_COOKIE)
}

/// The value of the cookie `name` a request carries, if any.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name && !v.is_empty()).then(|| v.to_string())
    })
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
        if parts.headers.get(header::AUTHORIZATION).is_none() && session_cookie(&parts.headers).is_some() {
            let (id, row) = current(state, &parts.headers)?;
            if !matches!(parts.method, axum::http::Method::GET | axum::http::Method::HEAD) {
                check_csrf(&parts.headers, &row)?;
            }
            let now = now_ms();
            if now.saturating_sub(row.last_seen_ms) > 30_000 {
                // Recorded without waiting: a lost touch only shortens the idle timeout.
                drop(state.store.touch_session(session_hash(&id), now));
            }
            return Ok(Auth(row.operator));
        }
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("a bearer token is required"))?;
        // The scheme's name is case-insensitive (RFC 9110, section 11.1).
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.trim_start().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token)
            .ok_or_else(|| ApiError::unauthorized("the Authorization header must be 'Bearer <token>'"))?;
        match state.store.operator_by_token(&token_hash(token.trim()))? {
            Some((op, Some(expires_ms))) if now_ms() >= expires_ms => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "token_expired",
                format!("the token of operator {} has expired; an administrator issues a new one", op.name),
            )),
            Some((op, _)) => Ok(Auth(op)),
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

/// The session a request's cookie names, if it is still valid.
pub fn current(node: &NodeState, headers: &HeaderMap) -> Result<(String, adi_store::SessionRow), ApiError> {
    let id = session_cookie(headers).ok_or_else(|| ApiError::unauthorized("sign in first"))?;
    let row = valid_session(node, &session_hash(&id))?;
    Ok((id, row))
}

/// When a session ends: idle for `session_idle_ms`, or `session_max_ms` after sign-in, or, while
/// its page holds the event stream open here, `session_watch_ms` after sign-in.
pub fn session_ends_ms(node: &NodeState, hash: &[u8; 32], row: &adi_store::SessionRow) -> u64 {
    let limits = &node.runtime_limits;
    if node.is_watching(hash) {
        row.created_ms.saturating_add(limits.session_watch_ms.max(limits.session_max_ms))
    } else {
        row.last_seen_ms
            .saturating_add(limits.session_idle_ms)
            .min(row.created_ms.saturating_add(limits.session_max_ms))
    }
}

/// The session stored under `hash`, if it is still valid.
pub fn valid_session(node: &NodeState, hash: &[u8; 32]) -> Result<adi_store::SessionRow, ApiError> {
    let row = node.store.session(hash)?.ok_or_else(|| ApiError::unauthorized("the session is over; sign in again"))?;
    if now_ms() > session_ends_ms(node, hash, &row) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "session_expired",
            "the session has expired; sign in again",
        ));
    }
    Ok(row)
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
