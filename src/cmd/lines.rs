//! `adi lines` and `adi new-line`: the lines a node's member is on, and opening one.

use hyper::Method;
use serde_json::{json, Value};

use super::{join, print_out, s};
use crate::ClientArgs;

/// Lists the lines: every page of the list.
pub async fn lines(args: ClientArgs) -> anyhow::Result<()> {
    let v = Value::Array(args.client()?.list("/api/v1/lines", None).await?.items);
    print_out(args.json, &v, |v| {
        for l in v.as_array().into_iter().flatten() {
            out!("{}  {:<9}  {:<24}  {}", s(l, "id"), s(l, "scope"), join(l.get("members")), s(l, "title"));
        }
    });
    Ok(())
}

/// Opens a line (a direct line of two members or a conference).
pub async fn new_line(
    client: ClientArgs,
    members: Vec<String>,
    scope: String,
    title: Option<String>,
) -> anyhow::Result<()> {
    let body = json!({"members": members, "scope": scope, "title": title});
    let v = client.client()?.call(Method::POST, "/api/v1/lines", Some(&body)).await?;
    print_out(client.json, &v, |v| out!("line {} opened ({}, {})", s(v, "id"), s(v, "scope"), join(v.get("members"))));
    Ok(())
}
