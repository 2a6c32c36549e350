//! Files attached to messages on the operator API: a file uploaded to attach (`POST
//! /api/v1/attachments`), named by its SHA-256 in a message sent after; and a file attached to a
//! message, put together from its chunks and checked against the SHA-256 its message signed
//! (`GET /api/v1/messages/{id}/attachments/{sha256}`).

use std::sync::Arc;

use adi_wire::EnvelopeHash;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Auth;
use super::error::{check_writable, ApiPath, ApiQuery};
use crate::clock::now_ms;
use crate::error::{ApiError, ErrorBody, TimedBytes};
use crate::state::NodeState;

/// The name of a file uploaded.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadParams {
    /// The file's name, as the recipients will see it.
    pub name: String,
}

/// A file uploaded to attach.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct UploadView {
    /// SHA-256 of its bytes, hex: what a message names in `attachments`.
    pub sha256: String,
    pub name: String,
    pub media_type: String,
    pub size: u64,
}

/// Uploads a file to attach
///
/// The body is the file's bytes, its `Content-Type` its media type (`application/pdf`,
/// `image/png`, ...); `name` its name. It is kept sealed for `upload_keep_ms` and attached by
/// naming its `sha256` in a message's `attachments`. At most `attachment_bytes_max` bytes.
///
/// Roles: duty, principal, admin.
#[utoipa::path(post, path = "/api/v1/attachments", tag = "messages", operation_id = "upload_attachment",
    params(UploadParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the file's bytes"),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 201, body = UploadView, description = "kept, to be attached by its `sha256`"),
              (status = 400, body = ErrorBody, description = "`bad_attachment_name`, `bad_media_type`, `bad_attachment_size`: the file breaks a rule"),
              (status = 403, body = ErrorBody, description = "`role`: the operator may not send"),
              (status = 503, body = ErrorBody, description = "writes are refused while the database cannot be written")))]
pub async fn upload(
    State(node): State<Arc<NodeState>>,
    auth: Auth,
    ApiQuery(p): ApiQuery<UploadParams>,
    headers: HeaderMap,
    TimedBytes(bytes): TimedBytes,
) -> Result<(StatusCode, Json<UploadView>), ApiError> {
    auth.require_sender()?;
    check_writable(&node)?;
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
        .unwrap_or_default();
    let limits = node.core().limits().clone();
    let described = adi_core::Attachment::of(&p.name, &media_type, &bytes, &limits);
    described.check(&limits)?;
    let now = now_ms();
    let row = adi_store::UploadRow {
        sha256: described.sha256,
        name: described.name.clone(),
        media_type: described.media_type.clone(),
        size: described.size,
        uploader: auth.0.name.clone(),
        created_ms: now,
    };
    let forget = now.saturating_sub(node.runtime_limits.upload_keep_ms);
    node.store.add_upload(row, bytes.to_vec(), forget).wait().await.map_err(|e| node.fail_storage(&e))?;
    tracing::info!(operator = %auth.0.name, size = described.size, "file uploaded to attach");
    let view = UploadView {
        sha256: hex::encode(described.sha256),
        name: described.name,
        media_type: described.media_type,
        size: described.size,
    };
    Ok((StatusCode::CREATED, Json(view)))
}

/// The files uploaded that a message names, by their SHA-256, with their bytes; refused when they
/// would take this member past its daily quota of files sent (`attachment_bytes_per_day_max`).
pub(crate) fn uploaded(node: &NodeState, named: &[String]) -> Result<Vec<(adi_store::UploadRow, Vec<u8>)>, ApiError> {
    let files = uploads(node, named)?;
    if files.is_empty() {
        return Ok(files);
    }
    let quota = node.runtime_limits.attachment_bytes_per_day_max;
    let sent = node.store.chunk_bytes_since(&node.member, now_ms().saturating_sub(24 * 3_600_000))?;
    let asked: u64 = files.iter().map(|(_, b)| b.len() as u64).sum();
    if sent.saturating_add(asked) > quota {
        return Err(ApiError::bad_field(
            "attachment_quota",
            "attachments".into(),
            format!(
                "this member has sent {sent} bytes of files in the last 24 hours; {asked} more would pass the \
                 node's attachment_bytes_per_day_max of {quota}"
            ),
        ));
    }
    Ok(files)
}

/// A file uploaded, described as a message names it, from what was kept of it (its SHA-256 was
/// taken when it was uploaded).
pub(crate) fn described(row: &adi_store::UploadRow, limits: &adi_core::Limits) -> adi_core::Attachment {
    adi_core::Attachment {
        sha256: row.sha256,
        name: row.name.clone(),
        media_type: row.media_type.clone(),
        size: row.size,
        chunks: row.size.div_ceil(limits.attachment_chunk_bytes_max.max(1) as u64),
    }
}

/// The files a message will carry: (name, media type, bytes), as the core takes them.
pub(crate) fn to_send(files: Vec<(adi_store::UploadRow, Vec<u8>)>) -> Vec<(String, String, Vec<u8>)> {
    files.into_iter().map(|(row, bytes)| (row.name, row.media_type, bytes)).collect()
}

fn uploads(node: &NodeState, named: &[String]) -> Result<Vec<(adi_store::UploadRow, Vec<u8>)>, ApiError> {
    named
        .iter()
        .map(|sha| {
            let mut key = [0u8; 32];
            hex::decode_to_slice(sha.trim(), &mut key).map_err(|_| {
                ApiError::bad_field("bad_attachment", "attachments".into(), format!("'{sha}' is no SHA-256"))
            })?;
            let (row, bytes) = node.store.upload(&key)?.ok_or_else(|| {
                ApiError::bad_field(
                    "unknown_upload",
                    "attachments".into(),
                    format!("no file {sha} was uploaded here, or it was forgotten; upload it again"),
                )
            })?;
            Ok((row, bytes))
        })
        .collect()
}

/// How a file is served.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FileParams {
    /// Served to be shown in the page (an image or plain text, in a sandbox without script)
    /// rather than saved; a PDF is shown as its pages drawn (`.../pages/{page}`).
    #[serde(default)]
    pub inline: bool,
}

/// The media types a browser may show in the console's sandboxed preview.
const SHOWN_INLINE: [&str; 5] = ["image/png", "image/jpeg", "image/gif", "image/webp", "text/plain"];

/// Gets a file attached to a message
///
/// The file put together from the chunks this node holds, checked against the SHA-256, size and
/// count of chunks the message signed. Served as a download, or with `inline` for an image or
/// plain text to be shown in a sandbox without script; any other type is served as bytes to save
/// (`application/octet-stream`).
///
/// Roles: any operator.
#[utoipa::path(get, path = "/api/v1/messages/{id}/attachments/{sha256}", tag = "messages", operation_id = "get_attachment",
    params(("id" = String, Path, description = "message id: the envelope hash, 64 hex digits"),
           ("sha256" = String, Path, description = "the file's SHA-256, 64 hex digits"), FileParams),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>, description = "the file"),
              (status = 400, body = ErrorBody, description = "`bad_id`: not 64 hex digits"),
              (status = 404, body = ErrorBody, description = "`unknown_message`; `unknown_attachment`: the message names no such file"),
              (status = 409, body = ErrorBody, description = "`incomplete`: not every chunk has arrived yet; `corrupt`: its chunks do not make the file the message signed")))]
pub async fn file(
    State(node): State<Arc<NodeState>>,
    _auth: Auth,
    ApiPath((id, sha256)): ApiPath<(String, String)>,
    ApiQuery(p): ApiQuery<FileParams>,
) -> Result<Response, ApiError> {
    let (message, attachment) = named(&node, &id, &sha256)?;
    let bytes = crate::documents::put_together(&node, &message, &attachment)?;
    let shown = p.inline && SHOWN_INLINE.contains(&attachment.media_type.as_str());
    let media_type = if shown { attachment.media_type.as_str() } else { "application/octet-stream" };
    let disposition = format!(
        "{}; filename*=UTF-8''{}",
        if shown { "inline" } else { "attachment" },
        percent_encoded(&attachment.name)
    );
    Ok(sandboxed(media_type, &disposition, bytes))
}

/// A file's bytes (or a page drawn from one) served so that whatever they hold runs nothing: no
/// script, no plugin, no requests elsewhere; shown, they are framed by the console alone.
fn sandboxed(media_type: &str, disposition: &str, bytes: Vec<u8>) -> Response {
    let value = |v: &str| HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static("attachment"));
    (
        [
            (header::CONTENT_TYPE, value(media_type)),
            (header::CONTENT_DISPOSITION, value(disposition)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'self'",
                ),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        bytes,
    )
        .into_response()
}

/// The message `id` and the file `sha256` it names, or why not.
fn named(node: &NodeState, id: &str, sha256: &str) -> Result<(EnvelopeHash, adi_core::Attachment), ApiError> {
    let bad = || ApiError::new(StatusCode::BAD_REQUEST, "bad_id", "expected 64 hex digits");
    let message = EnvelopeHash::from_hex(id).ok_or_else(bad)?;
    let mut file = [0u8; 32];
    hex::decode_to_slice(sha256, &mut file).map_err(|_| bad())?;
    let row = node
        .store
        .message(&message)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown_message", format!("no message {id} here")))?;
    let attachment = row.attachments.into_iter().find(|a| a.sha256 == file).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "unknown_attachment", format!("message {id} names no file {sha256}"))
    })?;
    Ok((message, attachment))
}

/// A PDF attached to a message, put together and checked, to be drawn.
fn pdf_named(node: &NodeState, id: &str, sha256: &str) -> Result<Arc<Vec<u8>>, ApiError> {
    let (message, attachment) = named(node, id, sha256)?;
    if attachment.media_type != "application/pdf" {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not_pdf",
            format!(
                "{} is {}, not a PDF: only PDF files are drawn page by page",
                attachment.name, attachment.media_type
            ),
        ));
    }
    // The message is read again every time (a file pruned since is not drawn); the file itself
    // is put together once for the pages of one preview.
    if let Some(bytes) = node.previews.last_document(&message, &attachment.sha256) {
        return Ok(bytes);
    }
    let bytes = Arc::new(crate::documents::put_together(node, &message, &attachment)?);
    node.previews.keep_document(message, attachment.sha256, bytes.clone());
    Ok(bytes)
}

/// What the drawing program is asked for `page` (0: count the pages), under the node's limits.
fn ask(node: &NodeState, page: usize) -> crate::preview::Ask {
    let l = &node.runtime_limits;
    crate::preview::Ask {
        page,
        width_px: l.preview_width_px,
        pixels_max: l.preview_pixels_max,
        seconds_max: l.preview_seconds_max,
        memory_bytes_max: l.preview_memory_bytes_max,
        input_bytes_max: node.limits.attachment_bytes_max,
    }
}

fn preview_failed(e: crate::preview::PreviewError) -> ApiError {
    use crate::preview::PreviewError;
    match e {
        PreviewError::Unavailable => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_previewer", e.to_string()),
        PreviewError::NoPage { .. } => ApiError::new(StatusCode::NOT_FOUND, "no_page", e.to_string()),
        PreviewError::Unreadable(_) | PreviewError::Exhausted(_) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unreadable_pdf", e.to_string())
        }
    }
}

/// A PDF's pages, as the preview draws them.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct PagesView {
    /// How many pages the document has.
    pub pages: usize,
    /// How many of them the preview draws (`preview_pages_max`): the first ones.
    pub shown: usize,
}

/// Counts the pages of a PDF attached to a message
///
/// The document put together and checked as for a download, then read by the node's drawing
/// program in a process of its own (bounded by `preview_seconds_max` and
/// `preview_memory_bytes_max`). `shown` is how many of its first pages a preview draws.
///
/// Roles: any operator.
#[utoipa::path(get, path = "/api/v1/messages/{id}/attachments/{sha256}/pages", tag = "messages", operation_id = "count_attachment_pages",
    params(("id" = String, Path, description = "message id: the envelope hash, 64 hex digits"),
           ("sha256" = String, Path, description = "the file's SHA-256, 64 hex digits")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = PagesView, description = "its pages"),
              (status = 400, body = ErrorBody, description = "`bad_id`: not 64 hex digits"),
              (status = 404, body = ErrorBody, description = "`unknown_message`; `unknown_attachment`"),
              (status = 409, body = ErrorBody, description = "`incomplete`; `corrupt`"),
              (status = 415, body = ErrorBody, description = "`not_pdf`: the file is not a PDF"),
              (status = 422, body = ErrorBody, description = "`unreadable_pdf`: the document cannot be drawn (malformed, encrypted, or past the drawing's time or memory)"),
              (status = 503, body = ErrorBody, description = "`no_previewer`: this node draws no previews")))]
pub async fn pages(
    State(node): State<Arc<NodeState>>,
    _auth: Auth,
    ApiPath((id, sha256)): ApiPath<(String, String)>,
) -> Result<Json<PagesView>, ApiError> {
    if !node.previews.available() {
        return Err(preview_failed(crate::preview::PreviewError::Unavailable));
    }
    let bytes = pdf_named(&node, &id, &sha256)?;
    let ask = ask(&node, 0);
    let (header, _) = node.previews.draw(&bytes, ask).await.map_err(preview_failed)?;
    Ok(Json(PagesView { pages: header.pages, shown: header.pages.min(node.runtime_limits.preview_pages_max) }))
}

/// Draws a page of a PDF attached to a message
///
/// Page `page` (from 1, at most `preview_pages_max`) drawn as a PNG image `preview_width_px`
/// wide (narrower if it would pass `preview_pixels_max`), by the node's drawing program in a
/// process of its own. The image runs nothing; it is served with the same sandbox as a file.
///
/// Roles: any operator.
#[utoipa::path(get, path = "/api/v1/messages/{id}/attachments/{sha256}/pages/{page}", tag = "messages", operation_id = "draw_attachment_page",
    params(("id" = String, Path, description = "message id: the envelope hash, 64 hex digits"),
           ("sha256" = String, Path, description = "the file's SHA-256, 64 hex digits"),
           ("page" = usize, Path, description = "the page, from 1")),
    security(("bearer" = []), ("session" = [])),
    responses((status = 200, content_type = "image/png", body = Vec<u8>, description = "the page"),
              (status = 400, body = ErrorBody, description = "`bad_id`; `bad_page`: past `preview_pages_max`, or 0"),
              (status = 404, body = ErrorBody, description = "`unknown_message`; `unknown_attachment`; `no_page`: the document has fewer pages"),
              (status = 409, body = ErrorBody, description = "`incomplete`; `corrupt`"),
              (status = 415, body = ErrorBody, description = "`not_pdf`: the file is not a PDF"),
              (status = 422, body = ErrorBody, description = "`unreadable_pdf`: the page cannot be drawn"),
              (status = 503, body = ErrorBody, description = "`no_previewer`: this node draws no previews")))]
pub async fn page(
    State(node): State<Arc<NodeState>>,
    _auth: Auth,
    ApiPath((id, sha256, page)): ApiPath<(String, String, String)>,
) -> Result<Response, ApiError> {
    let most = node.runtime_limits.preview_pages_max;
    let page = page.parse::<usize>().ok().filter(|p| (1..=most).contains(p)).ok_or_else(|| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_page", format!("'{page}': a preview draws pages 1 to {most}"))
    })?;
    if !node.previews.available() {
        return Err(preview_failed(crate::preview::PreviewError::Unavailable));
    }
    let bytes = pdf_named(&node, &id, &sha256)?;
    let ask = ask(&node, page);
    let (_, png) = node.previews.draw(&bytes, ask).await.map_err(preview_failed)?;
    let name = format!("page-{page}.png");
    Ok(sandboxed("image/png", &format!("inline; filename={name}"), png))
}

/// A text as RFC 5987 writes a file name in `Content-Disposition`, and as a query parameter's
/// value is written: unreserved characters as they are, every other byte of its UTF-8
/// percent-encoded.
pub fn percent_encoded(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::percent_encoded;

    #[test]
    fn a_file_name_is_percent_encoded_for_its_header() {
        assert_eq!(percent_encoded("chart 1.pdf"), "chart%201.pdf");
        assert_eq!(percent_encoded("ข้อมูล.txt"), "%E0%B8%82%E0%B9%89%E0%B8%AD%E0%B8%A1%E0%B8%B9%E0%B8%A5.txt");
        assert_eq!(percent_encoded("a\";b"), "a%22%3Bb");
    }
}
