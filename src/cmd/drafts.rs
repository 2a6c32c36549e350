//! `adi drafts` and `adi release`: messages held for a principal's release, and releasing one.

use hyper::Method;
use serde_json::Value;

use super::messages::print_message;
use super::{age, now_ms, print_out, printable, s};
use crate::ClientArgs;

/// Lists the messages that await release: every page of the list.
pub async fn drafts(args: ClientArgs) -> anyhow::Result<()> {
    let v = Value::Array(args.client()?.list("/api/v1/drafts", None).await?.items);
    print_out(args.json, &v, |v| {
        let drafts = v.as_array().map(Vec::as_slice).unwrap_or_default();
        if drafts.is_empty() {
            out!("no messages await release");
            return;
        }
        out!("{:>5}  {:<10}  {:<16}  {:<10}  subject", "draft", "precedence", "drafter", "drafted");
        let now = now_ms();
        for d in drafts {
            out!(
                "{:>5}  {:<10}  {:<16}  {:<10}  {}",
                d.get("id").and_then(Value::as_u64).unwrap_or(0),
                printable(d.pointer("/draft/precedence").and_then(Value::as_str).unwrap_or("?")),
                s(d, "drafter"),
                age(now, d.get("created_ms")),
                printable(d.pointer("/draft/subject").and_then(Value::as_str).unwrap_or(""))
            );
        }
    });
    Ok(())
}

/// Releases draft `id` and sends it (principals only).
pub async fn release(client: ClientArgs, id: u64) -> anyhow::Result<()> {
    let v = client.client()?.call(Method::POST, &format!("/api/v1/drafts/{id}/release"), None).await?;
    print_out(client.json, &v, |m| {
        out!("draft {id} released by {} and sent", s(m, "released_by"));
        print_message(m);
    });
    Ok(())
}

/// Says that a message was held for a principal's release, and how it is released.
pub fn print_held_draft(d: &Value) {
    let id = d.get("id").and_then(Value::as_u64).unwrap_or(0);
    out!(
        "held for a principal's release: draft {id} ({} '{}' on line {}, drafted by {})",
        printable(d.pointer("/draft/precedence").and_then(Value::as_str).unwrap_or("?")),
        printable(d.pointer("/draft/subject").and_then(Value::as_str).unwrap_or("")),
        s(d, "line"),
        s(d, "drafter")
    );
    out!("a principal sends it with `adi release {id}`");
}
