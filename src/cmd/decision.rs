//! `adi decision`: mutual decisions on a line (propose an exact text, concur, decline, show).

use hyper::Method;
use serde_json::{json, Value};

use super::{join_with, print_out, printable, s, text};
use crate::DecisionCommand;

/// Runs one of the decision subcommands and prints the decision as it then stands.
pub async fn decision(command: DecisionCommand) -> anyhow::Result<()> {
    let (client, v) = match command {
        DecisionCommand::Propose { client, line, text, parties, deadline_s, supersedes } => {
            let body = json!({"text": text, "parties": parties, "deadline_s": deadline_s, "supersedes": supersedes});
            let path = format!("/api/v1/lines/{line}/decisions");
            let v = client.client()?.call(Method::POST, &path, Some(&body)).await?;
            (client, v)
        }
        DecisionCommand::Concur { client, id } => {
            let path = format!("/api/v1/decisions/{id}/concur");
            let v = client.client()?.call(Method::POST, &path, Some(&json!({}))).await?;
            (client, v)
        }
        DecisionCommand::Decline { client, id, reason } => {
            let path = format!("/api/v1/decisions/{id}/decline");
            let v = client.client()?.call(Method::POST, &path, Some(&json!({"reason": reason}))).await?;
            (client, v)
        }
        DecisionCommand::Show { client, id } => {
            let v = client.client()?.call(Method::GET, &format!("/api/v1/decisions/{id}"), None).await?;
            (client, v)
        }
    };
    print_out(client.json, &v, print_decision);
    Ok(())
}

/// Prints a decision: its state, parties, exact text and each party's answer.
fn print_decision(d: &Value) {
    out!("decision {}  on line {}  by {}", s(d, "id"), s(d, "line"), s(d, "proposer"));
    out!("state:    {}", s(d, "state"));
    out!("parties:  {}", join_with(d.get("parties"), ", "));
    let missing = join_with(d.get("missing"), ", ");
    if !missing.is_empty() {
        out!("missing:  {missing}");
    }
    if d.get("supersedes").is_some_and(Value::is_string) {
        out!("replaces: {}", s(d, "supersedes"));
    }
    if d.get("superseded_by").is_some_and(Value::is_string) {
        out!("replaced by: {}", s(d, "superseded_by"));
    }
    out!("text (SHA-256 {}):\n{}", s(d, "text_sha256"), text(d, "text"));
    for a in d.get("answers").and_then(Value::as_array).into_iter().flatten() {
        let verb = if a.get("concur").and_then(Value::as_bool) == Some(true) { "concurred" } else { "declined" };
        let other = if a.get("over_this_text").and_then(Value::as_bool) == Some(true) { "" } else { " (another text)" };
        let reason = a.get("reason").and_then(Value::as_str).map(|r| format!(": {}", printable(r))).unwrap_or_default();
        out!("  {:<4} {verb}{other}{reason}", s(a, "member"));
    }
}
