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
}

/// Sends `draft` on `line`; a message the node holds for a principal's release is shown as held.
pub async fn send(client: ClientArgs, line: String, draft: Draft) -> anyhow::Result<()> {
    let Draft { precedence, class, caveat, subject, body, ack_required, kind, file, ewg } = draft;
    let form = match (kind, file) {
        (Some(kind), Some(file)) => Some(read_form(&kind, &file)?),
        _ => None,
    };
    if form.is_none() && subject.as_deref().is_none_or(|s| s.trim().is_empty()) {
        anyhow::bail!("a free-text message needs --subject; nothing was sent");
    }
    let req = json!({"precedence": precedence, "class": class, "caveat": caveat,
                     "subject": subject.unwrap_or_default(), "body": body.unwrap_or_default(),
                     "ack_required": ack_required, "form": form, "ewg": ewg});
    let (status, v) =
        client.client()?.call_with_status(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&req)).await?;
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
