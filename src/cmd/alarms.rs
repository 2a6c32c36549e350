//! `adi alarms` and `adi alarm-ack`: the node's alarms, and an operator taking one in hand.

use hyper::Method;
use serde_json::Value;

use super::{age, now_ms, print_out, printable, s};
use crate::ClientArgs;

/// Lists open alarms (all of them with `all`), newest first: every page of the list.
pub async fn alarms(client: ClientArgs, all: bool) -> anyhow::Result<()> {
    let path = if all { "/api/v1/alarms?all=true" } else { "/api/v1/alarms" };
    let v = Value::Array(client.client()?.list(path, None).await?.items);
    print_out(client.json, &v, |v| {
        let alarms = v.as_array().map(Vec::as_slice).unwrap_or_default();
        if alarms.is_empty() {
            out!("{}", if all { "no alarms" } else { "no open alarms" });
            return;
        }
        out!("{:>5}  {:<14}  {:<6}  {:<10}  {:<20}  detail", "alarm", "kind", "member", "raised", "status");
        let now = now_ms();
        for a in alarms {
            let status = if a.get("cleared_ms").is_some_and(|c| !c.is_null()) {
                "cleared".to_string()
            } else if let Some(by) = a.get("acked_by").and_then(Value::as_str) {
                format!("acked by {}", printable(by))
            } else {
                "open".to_string()
            };
            let repeats = a.get("repeats").and_then(Value::as_u64).unwrap_or(0);
            let repeats = if repeats > 0 { format!(" (repeated {repeats}x)") } else { String::new() };
            out!(
                "{:>5}  {:<14}  {:<6}  {:<10}  {:<20}  {}{repeats}",
                a.get("id").and_then(Value::as_u64).unwrap_or(0),
                s(a, "kind"),
                s(a, "member"),
                age(now, a.get("raised_ms")),
                status,
                s(a, "detail")
            );
        }
    });
    Ok(())
}

/// Acknowledges alarm `id`.
pub async fn ack(client: ClientArgs, id: u64) -> anyhow::Result<()> {
    let v = client.client()?.call(Method::POST, &format!("/api/v1/alarms/{id}/ack"), None).await?;
    print_out(client.json, &v, |a| {
        out!("alarm {id} ({}, {}) acknowledged by {}", s(a, "kind"), s(a, "member"), s(a, "acked_by"));
        out!("{}", s(a, "detail"));
    });
    Ok(())
}
