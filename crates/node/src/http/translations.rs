//! The operator API of translations: a translator attaches a translation to a message, as a
//! record of its own naming the original (which stays the authoritative text), and a reviewer
//! records that it was reviewed.

use std::sync::Arc;

use adi_core::Translation;
use adi_store::{Page, TimeKey, TranslationRow};
use adi_wire::EnvelopeHash;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Auth;
use super::error::{check_writable, ApiJson, ApiPath, ApiQuery};
use super::paging::{self, page_len, ListUrl, Paged};
use super::views::ListParams;
use crate::clock::now_ms;
use crate::driver::commit_own;
use crate::error::{ApiError, ErrorBody};
use crate::state::NodeState;

/// A translation to attach to a message.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTranslationRequest {
    /// A BCP 47 language tag such as `en` or `zh-Hans`.
    #[schema(min_length = 1)]
    pub language: String,
    #[schema(min_length = 1)]
    pub text: String,
}

/// A translation of a message, which stays the authoritative text.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct TranslationView {
    pub id: String,
    /// The message translated.
    pub original: String,
    pub language: String,
    pub text: String,
    pub translator: String,
    /// `reviewed` or `unreviewed`.
    pub state: String,
    pub reviewed_by: Option<String>,
    pub revises: Option<String>,
    /// The member whose node sent it.
    pub member: String,
    pub created_ms: u64,
}

impl From<TranslationRow> for TranslationView {
    fn from(t: TranslationRow) -> Self {
        TranslationView {
            id: t.hash.to_hex(),
            original: t.original.to_hex(),
            language: t.language,
            text: t.text,
            translator: t.translator,
            state: if t.reviewed_by.is_some() { "reviewed" } else { "unreviewed" }.to_string(),
            reviewed_by: t.reviewed_by,
            revises: t.revises.map(|h| h.to_hex()),
            member: t.member.to_string(),
            created_ms: t.created_ms,
        }
    }
}

fn role(auth: &Auth, allowed: impl Fn(&adi_core::Role) -> bool, what: &str) -> Result<(), ApiError> {
    if allowed(&auth.0.role) {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, "role", format!("the {} role may not {what}", auth.0.role)))
    }
}

fn hash_of(id: &str, what: &'static str) -> Result<EnvelopeHash, ApiError> {
    EnvelopeHash::from_hex(id).ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, what, format!("no {id} here")))
}

/// Attaches a translation to a message
///
/// A record of its own naming the original, which stays the authoritative text.
///
/// Roles: translator, admin.
#[utoipa::path(post, path = "/api/v1/messages/{id}/translations", tag = "translations", operation_id = "translate_message",
    request_body = NewTranslationRequest,
    params(("id" = String, Path, description = "message id: the envelope hash, 64 hex digits")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 201, body = TranslationView, description = "attached: committed here and sent to the line"),
              (status = 400, body = ErrorBody, description = "`bad_language`, `empty_text`, a text that is too long or breaks a text rule"),
              (status = 403, body = ErrorBody, description = "`role`: not a translator; `removed`: this member is no longer on the line"),
              (status = 404, body = ErrorBody, description = "`unknown_message`: no such message here"),
              (status = 503, body = ErrorBody, description = "writes are refused while the database cannot be written")))]
pub async fn translate(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<NewTranslationRequest>,
) -> Result<(StatusCode, Json<TranslationView>), ApiError> {
    role(&auth, adi_core::Role::may_translate, "translate")?;
    check_writable(&node)?;
    let original = hash_of(&id, "unknown_message")?;
    let message = node
        .store
        .message(&original)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_message", format!("no message {id} here")))?;
    let t = Translation {
        original,
        language: req.language,
        text: req.text,
        translator: auth.0.name.clone(),
        reviewed_by: None,
        revises: None,
    };
    let hash = commit_own(&node, |core| core.translate(now_ms(), message.line, t)).await?;
    tracing::info!(operator = %auth.0.name, message_id = %original, "translation attached");
    Ok((StatusCode::CREATED, Json(load(&node, &hash)?)))
}

fn load(node: &NodeState, id: &EnvelopeHash) -> Result<TranslationView, ApiError> {
    node.store
        .translations(None, Some(id), Page::all())?
        .into_iter()
        .next()
        .map(TranslationView::from)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_translation", format!("no translation {id} here")))
}

/// Lists a message's translations
///
/// Oldest first (by the time each was made, then id).
///
/// Pages of `limit` translations (default and most: the node's `list_len_max`); `after` is the
/// cursor the `Link` header of the page before gives. While more remain, the `Link` header names
/// the next page (`rel="next"`); without it the list is complete.
///
/// Roles: any operator.
#[utoipa::path(get, path = "/api/v1/messages/{id}/translations", tag = "translations", operation_id = "list_translations",
    params(("id" = String, Path, description = "message id: the envelope hash, 64 hex digits"), ListParams),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Vec<TranslationView>, description = "a page of the translations of the message, oldest first (none for a message not held here)",
               headers(("Link" = String, description = "the next page, `<...>; rel=\"next\"` (RFC 8288), while more remain; absent on the last page"))),
              (status = 400, body = ErrorBody, description = "`bad_limit`: a limit outside 1 to the node's `list_len_max`; `bad_cursor`: `after` is not a cursor the node gave for translations"),
              (status = 404, body = ErrorBody, description = "`unknown_message`: not a message id")))]
pub async fn list(
    State(node): State<Arc<NodeState>>,
    _auth: Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Paged<TranslationView>, ApiError> {
    let original = hash_of(&id, "unknown_message")?;
    let limit = page_len(&node, p.limit, node.runtime_limits.list_len_max)?;
    let after = paging::after_time(p.after.as_deref())?;
    let rows = node.store.translations(Some(&original), None, Page { from: after, limit: limit.saturating_add(1) })?;
    let (rows, next) =
        paging::cut(rows, limit, |t| Ok(paging::time_cursor(TimeKey { created_ms: t.created_ms, id: t.hash })))?;
    let url = ListUrl::new(format!("/api/v1/messages/{}/translations", original.to_hex()));
    Ok(Paged::new(rows.into_iter().map(TranslationView::from).collect(), url.next(limit, "after", next)))
}

/// Records the review of a translation
///
/// The reviewed version is a record of its own naming the one reviewed; a translation is reviewed
/// by someone other than its translator, once.
///
/// Roles: translator, principal, admin.
#[utoipa::path(post, path = "/api/v1/translations/{id}/review", tag = "translations", operation_id = "review_translation",
    params(("id" = String, Path, description = "translation id: the envelope hash, 64 hex digits")),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 201, body = TranslationView, description = "the reviewed version, a record naming the one reviewed"),
              (status = 403, body = ErrorBody, description = "`role`: the operator may not review translations; `removed`: this member is no longer on the line"),
              (status = 404, body = ErrorBody, description = "`unknown_translation`; `unknown_message`: the original is not held here"),
              (status = 409, body = ErrorBody, description = "`reviewed` already, or `own_translation`: by its translator"),
              (status = 503, body = ErrorBody, description = "writes are refused while the database cannot be written")))]
pub async fn review(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<TranslationView>), ApiError> {
    role(&auth, adi_core::Role::may_review_translations, "review translations")?;
    check_writable(&node)?;
    let id = hash_of(&id, "unknown_translation")?;
    let t = node.store.translations(None, Some(&id), Page::all())?.into_iter().next().ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "unknown_translation", format!("no translation {id} here"))
    })?;
    let conflict = |code: &'static str, m: &str| ApiError::new(StatusCode::CONFLICT, code, m.to_string());
    if t.reviewed_by.is_some() {
        return Err(conflict("reviewed", "this translation is reviewed already"));
    }
    if t.translator == auth.0.name {
        return Err(conflict("own_translation", "a translation is reviewed by someone other than its translator"));
    }
    let line = node
        .store
        .message(&t.original)?
        .map(|m| m.line)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_message", "the original is not held here"))?;
    let reviewed = Translation {
        original: t.original,
        language: t.language,
        text: t.text,
        translator: t.translator,
        reviewed_by: Some(auth.0.name.clone()),
        revises: Some(t.hash),
    };
    let hash = commit_own(&node, |core| core.translate(now_ms(), line, reviewed)).await?;
    tracing::info!(operator = %auth.0.name, translation = %id, "translation reviewed");
    Ok((StatusCode::CREATED, Json(load(&node, &hash)?)))
}
