//! `adi peers` and `adi links`: the node's links to the other members' nodes, their backlogs, and
//! each direct line's health from link tests.

use hyper::Method;
use serde_json::Value;

use super::{age, now_ms, print_out, printable, s};
use crate::ClientArgs;

/// Lists peer links and their backlogs.
pub async fn peers(args: ClientArgs) -> anyhow::Result<()> {
    let v = args.client()?.call(Method::GET, "/api/v1/peers", None).await?;
    print_out(args.json, &v, |v| {
        for p in v.as_array().into_iter().flatten() {
            out!(
                "{:<4}  queue {:>6}  endpoint {:<22}  {}",
                s(p, "member"),
                p.get("queue_len").and_then(Value::as_u64).unwrap_or(0),
                printable(p.get("endpoint").and_then(Value::as_str).unwrap_or("-")),
                s(p, "last_error")
            );
        }
    });
    Ok(())
}

/// Lists each direct line's link: health, round trip, clock offset and backlog.
pub async fn links(args: ClientArgs) -> anyhow::Result<()> {
    let v = args.client()?.call(Method::GET, "/api/v1/links", None).await?;
    print_out(args.json, &v, |v| {
        let links = v.as_array().map(Vec::as_slice).unwrap_or_default();
        if links.is_empty() {
            out!("no direct lines with link tests");
            return;
        }
        out!(
            "{:<6}  {:<12}  {:>8}  {:>9}  {:>10}  {:>5}  {:>13}  error",
            "member",
            "state",
            "last RTT",
            "clock",
            "last ok",
            "queue",
            "oldest queued"
        );
        let now = now_ms();
        for l in links {
            let rtt = l.get("last_rtt_ms").and_then(Value::as_u64).map(|r| format!("{r} ms"));
            // The peer's clock against this node's, as the last link test measured it.
            let clock = l.get("clock_offset_ms").and_then(Value::as_i64).map(|o| format!("{o:+} ms"));
            let oldest = l.get("oldest_queued_age_ms").and_then(Value::as_u64).map(|a| format!("{} s", a / 1000));
            out!(
                "{:<6}  {:<12}  {:>8}  {:>9}  {:>10}  {:>5}  {:>13}  {}",
                s(l, "member"),
                s(l, "state"),
                rtt.as_deref().unwrap_or("-"),
                clock.as_deref().unwrap_or("-"),
                age(now, l.get("last_ok_ms")),
                l.get("queue_len").and_then(Value::as_u64).unwrap_or(0),
                oldest.as_deref().unwrap_or("-"),
                s(l, "last_error")
            );
        }
    });
    Ok(())
}
