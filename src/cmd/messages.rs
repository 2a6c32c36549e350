//! `adi inbox`, `adi show`, and the answers to a message from another member: `adi seen`, `adi
//! ack` and `adi decline`.

use hyper::Method;
use serde_json::Value;

use super::{print_out, printable, s, text, utc};
use crate::ClientArgs;

/// Lists the `limit` most urgent messages from other members, most urgent first, and says on
/// standard error when more remain.
pub async fn inbox(client: ClientArgs, limit: usize) -> anyhow::Result<()> {
    let listed = client.client()?.list("/api/v1/inbox", Some(limit)).await?;
    let v = Value::Array(listed.items);
    print_out(client.json, &v, |v| {
        for m in v.as_array().into_iter().flatten() {
            out!(
                "{:<9}  {:<11}  from {:<4}  {}  {}",
                s(m, "precedence"),
                s(m, "class"),
                s(m, "sender"),
                s(m, "subject"),
                s(m, "id")
            );
        }
    });
    if listed.more {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "more messages remain than the {limit} most urgent shown; `adi inbox --limit N` shows the N most urgent"
        );
    }
    Ok(())
}

/// Shows one message with each recipient's state.
pub async fn show(client: ClientArgs, id: String) -> anyhow::Result<()> {
    let v = client.client()?.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await?;
    print_out(client.json, &v, print_message);
    Ok(())
}

/// Answers a message from another member: `verb` is `seen`, `ack` or `decline`.
pub async fn answer(args: &ClientArgs, id: &str, verb: &str, body: Option<Value>) -> anyhow::Result<()> {
    let v = args.client()?.call(Method::POST, &format!("/api/v1/messages/{id}/{verb}"), body.as_ref()).await?;
    print_out(args.json, &v, |m| {
        let done = match verb {
            "seen" => "seen",
            "ack" => "acknowledged",
            _ => "declined",
        };
        out!(
            "{done}: {} from {} (#{}): {}",
            s(m, "precedence"),
            s(m, "sender"),
            m.get("seq").and_then(Value::as_u64).unwrap_or(0),
            s(m, "subject")
        );
        out!("id: {}", s(m, "id"));
    });
    Ok(())
}

/// Prints a message as people read it: its header, text, report, computed approaches and each
/// recipient's state.
pub fn print_message(m: &Value) {
    out!("id:         {}", s(m, "id"));
    out!(
        "line:       {}  from {} (#{})",
        s(m, "line"),
        s(m, "sender"),
        m.get("seq").and_then(Value::as_u64).unwrap_or(0)
    );
    out!("precedence: {}  class: {}  caveat: {}", s(m, "precedence"), s(m, "class"), s(m, "caveat"));
    out!("subject:    {}", s(m, "subject"));
    for f in m.get("attachments").and_then(Value::as_array).into_iter().flatten() {
        let g = |k: &str| printable(f.get(k).and_then(Value::as_str).unwrap_or(""));
        let n = |k: &str| f.get(k).and_then(Value::as_u64).unwrap_or(0);
        out!(
            "file:       {} ({}, {} bytes, {} of {} chunks here)  sha256 {}",
            g("name"),
            g("media_type"),
            n("size"),
            n("held"),
            n("chunks"),
            g("sha256")
        );
    }
    if let Some(at) = m.get("pruned_ms").and_then(Value::as_u64) {
        out!("pruned:     {} (its content, after an archived export held it; the record keeps its envelope)", utc(at));
    }
    if let Some(tag) = m.get("ewg").and_then(Value::as_str) {
        out!("working group: {}", printable(tag));
    }
    // The body and the report keep their lines; anything else unprintable is escaped.
    let body = text(m, "body");
    if !body.is_empty() {
        out!("{body}");
    }
    if m.get("form_text").is_some_and(Value::is_string) {
        out!("{}", text(m, "form_text"));
    }
    for a in m.get("approaches").and_then(Value::as_array).into_iter().flatten() {
        let x = &a["approach"];
        out!(
            "computed:   {} to {}: CPA {:.2} nm{}, {} (a suggestion from the positions reported)",
            s(a, "own"),
            s(a, "other"),
            x["cpa_nm"].as_f64().unwrap_or(f64::NAN),
            x["tcpa_min"].as_f64().map(|t| format!(" in {t:.0} min")).unwrap_or_default(),
            s(x, "situation")
        );
    }
    for r in m.get("recipients").and_then(Value::as_array).into_iter().flatten() {
        let decrypted = if r.get("decrypted_ms").is_some_and(Value::is_u64) { "decrypted" } else { "" };
        let detail = s(r, "detail");
        out!("  {:<4} {:<12} {:<9} {detail}", s(r, "member"), s(r, "state"), decrypted);
    }
}
