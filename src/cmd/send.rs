//! `adi send`: a message on a line, free text or a structured report checked here before it is
//! sent.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use super::drafts::print_held_draft;
use super::messages::print_message;
use super::print_out;
use crate::ClientArgs;

/// What `adi send` was asked to send, as given on the command line.
pub struct Draft {
    pub precedence: String,
    pub class: Option<String>,
    pub caveat: Option<String>,
    pub subject: Option<String>,
    pub body: Option<String>,
    pub ack_required: Option<bool>,
    pub kind: Option<String>,
    pub file: Option<PathBuf>,
    pub ewg: Option<String>,
    /// Files to attach.
    pub attach: Vec<PathBuf>,
}

/// Sends `draft` on `line`; a message the node holds for a principal's release is shown as held.
pub async fn send(client: ClientArgs, line: String, draft: Draft) -> anyhow::Result<()> {
    let Draft { precedence, class, caveat, subject, body, ack_required, kind, file, ewg, attach } = draft;
    let form = match (kind, file) {
        (Some(kind), Some(file)) => Some(read_form(&kind, &file)?),
        _ => None,
    };
    if form.is_none() && subject.as_deref().is_none_or(|s| s.trim().is_empty()) {
        anyhow::bail!("a free-text message needs --subject; nothing was sent");
    }
    let node = client.client()?;
    let mut attachments = Vec::new();
    for path in &attach {
        let bytes = std::fs::read(path).map_err(|e| anyhow!("{}: {e}; nothing was sent", path.display()))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let at = format!("/api/v1/attachments?name={}", adi_node::http::attachments::percent_encoded(&name));
        eprintln!("uploading {} ({} bytes)", path.display(), bytes.len());
        let upload = node.request_typed(Method::POST, &at, media_type_of(path), bytes);
        let (status, _, answer) = crate::cmd::showing_progress("the upload", upload).await?;
        let v: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
        if !status.is_success() {
            let failure = adi_node::client::ApiFailure::from_answer(status, &v);
            anyhow::bail!("{}: {failure}; nothing was sent", path.display());
        }
        attachments.push(v["sha256"].as_str().unwrap_or_default().to_string());
    }
    let req = json!({"precedence": precedence, "class": class, "caveat": caveat,
                     "subject": subject.unwrap_or_default(), "body": body.unwrap_or_default(),
                     "ack_required": ack_required, "form": form, "ewg": ewg, "attachments": attachments});
    let (status, v) =
        node.call_with_status(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&req)).await?;
    if status == StatusCode::ACCEPTED {
        print_out(client.json, &v, print_held_draft);
    } else {
        print_out(client.json, &v, print_message);
    }
    Ok(())
}

/// Reads a report from a file and checks it here, so that a bad field is named before anything
/// is sent; the node checks it again.
pub fn read_form(kind: &str, file: &Path) -> anyhow::Result<Value> {
    if !adi_forms::KINDS.contains(&kind) {
        anyhow::bail!("unknown kind '{kind}'; one of {}; nothing was sent", adi_forms::KINDS.join(", "));
    }
    let text = std::fs::read_to_string(file).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    let mut value: Value =
        serde_json::from_str(&text).map_err(|e| anyhow!("{}: not JSON: {e}; nothing was sent", file.display()))?;
    if let Some(map) = value.as_object_mut() {
        match map.get("kind").and_then(Value::as_str) {
            None => {
                map.insert("kind".into(), json!(kind));
            }
            Some(k) if k != kind => {
                anyhow::bail!("{}: the report's kind is {k}, not {kind}; nothing was sent", file.display())
            }
            Some(_) => {}
        }
    }
    let form = adi_forms::check(&value).map_err(|e| anyhow!("{}: {e}; nothing was sent", file.display()))?;
    Ok(form.to_value())
}

/// A file's media type, from its extension; bytes to save when it is none the console shows or
/// an office format names.
fn media_type_of(path: &Path) -> &'static str {
    let ext = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "txt" => "text/plain",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "odt" => "application/vnd.oasis.opendocument.text",
        _ => "application/octet-stream",
    }
}

/// Saves a file attached to a message, as the node put it together and checked it, and checks
/// its SHA-256 again here before it is kept.
pub async fn get_attachment(client: ClientArgs, message: String, sha256: String, out: PathBuf) -> anyhow::Result<()> {
    use sha2::Digest;
    let path = format!("/api/v1/messages/{message}/attachments/{sha256}");
    let node = client.client()?;
    let (status, _, bytes) =
        crate::cmd::showing_progress("the file", node.request_full(Method::GET, &path, None)).await?;
    if !status.is_success() {
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        return Err(adi_node::client::ApiFailure::from_answer(status, &v).into());
    }
    if hex::encode(sha2::Sha256::digest(&bytes)) != sha256.trim().to_ascii_lowercase() {
        anyhow::bail!("the file the node sent is not the one with SHA-256 {sha256}; nothing was written");
    }
    std::fs::write(&out, &bytes).map_err(|e| anyhow!("{}: {e}", out.display()))?;
    out!("wrote {} ({} bytes, SHA-256 {sha256})", out.display(), bytes.len());
    Ok(())
}
