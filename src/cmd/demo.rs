//! `adi demo`: a whole local network built and run in this process, with a scenario played on it
//! (a FLASH, its acknowledgement, an unanswered IMMEDIATE and link tests).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use adi_node::client::Client;
use adi_node::setup;
use adi_node::{Node, NodeConfig};
use anyhow::{anyhow, Context};
use hyper::Method;
use serde_json::{json, Value};

use super::{init_logging, s, LogFormat, StopSignal};

/// How long the scenario waits for each step (a FLASH's answer, an alarm, link tests) before it
/// reports what it saw and moves on.
const STEP_WITHIN: Duration = Duration::from_secs(30);
/// How long past the IMMEDIATE's deadline the scenario waits for the recipient's escalation.
const ESCALATION_GRACE_S: u64 = 60;
/// How often the scenario looks at a message's state.
const STATE_POLL: Duration = Duration::from_millis(20);
/// How often the scenario looks at the links while their first tests run.
const LINKS_POLL: Duration = Duration::from_millis(100);
/// How often the scenario looks for an alarm.
const ALARM_POLL: Duration = Duration::from_millis(250);

/// Builds the network (or takes the one already in `state`), runs its nodes and the scenario, and
/// stops them at SIGINT or SIGTERM.
pub async fn demo(
    members: Option<Vec<String>>,
    state: Option<PathBuf>,
    base_port: u16,
    init_only: bool,
    no_scenario: bool,
    admit: Option<String>,
    log_format: LogFormat,
) -> anyhow::Result<()> {
    init_logging("warn", log_format);
    let codes: Vec<String> = match members {
        Some(m) => m.into_iter().map(|c| c.trim().to_ascii_uppercase()).collect(),
        None => setup::members_2022().into_iter().map(|m| m.code).collect(),
    };
    let state = state.unwrap_or_else(|| std::env::temp_dir().join(format!("adi-demo-{}", std::process::id())));
    let mut demo = if state.join("demo.json").exists() {
        out!("using the existing network in {}", state.display());
        let text = std::fs::read_to_string(state.join("demo.json"))?;
        serde_json::from_str(&text).map_err(|e| anyhow!("{}: {e}", state.join("demo.json").display()))?
    } else {
        out!("generating keys, cards, roster and configs for {} members in {}", codes.len(), state.display());
        let total = codes.len();
        setup::demo_init(&state, &codes, base_port, |i, code| out!("  [{i:>2}/{total}] {code}: keys and card"))?
    };
    if init_only {
        print_demo_table(&demo);
        out!(
            "state written to {}; run each node with `adi serve --config <config>`",
            state.join("demo.json").display()
        );
        return Ok(());
    }
    let total = demo.members.len();
    let mut nodes = Vec::new();
    for (i, m) in demo.members.iter().enumerate() {
        let mut config = NodeConfig::load(Path::new(&m.config)).map_err(|e| anyhow!("{e}"))?;
        config.previewer = Some(adi_node::preview::Previewer::this_program()?);
        let node = Node::start(config).await.with_context(|| format!("starting {}", m.code))?;
        out!("  [{:>2}/{total}] {} node ready at {}", i + 1, m.code, m.api_url);
        nodes.push(node);
    }
    print_demo_table(&demo);
    out!("state: {}", state.join("demo.json").display());
    if let Some(first) = demo.members.first() {
        out!(
            "console: {}/console, operator duty-{} (each member's duty officer; passwords in demo.json)",
            first.api_url,
            first.code
        );
    }
    if !no_scenario {
        if let Err(e) = scenario(&demo).await {
            eprintln!("scenario failed: {e:#}");
        }
    }
    if let Some(code) = admit {
        match super::admit::admit(&state, &mut demo, &nodes, &code, base_port).await {
            Ok(node) => nodes.push(node),
            Err(e) => eprintln!("admission failed: {e:#}"),
        }
    }
    let stop = StopSignal::listen()?;
    out!("network running; press Ctrl-C to stop");
    stop.wait().await;
    out!("stopping {} nodes", nodes.len());
    for n in nodes {
        n.stop().await;
    }
    out!("stopped");
    Ok(())
}

fn print_demo_table(demo: &setup::DemoState) {
    out!("{:<6} {:<24} token", "member", "API URL");
    for m in &demo.members {
        out!("{:<6} {:<24} {}", m.code, m.api_url, m.token);
    }
}

/// A FLASH about an unplanned encounter at sea between an ASEAN member and a Plus member.
async fn scenario(demo: &setup::DemoState) -> anyhow::Result<()> {
    let communities: std::collections::HashMap<String, String> =
        setup::known_members().into_iter().map(|m| (m.code, m.community)).collect();
    let pick = |preferred: &str, community: &str| {
        demo.members
            .iter()
            .find(|m| m.code == preferred)
            .or_else(|| demo.members.iter().find(|m| communities.get(&m.code).map(String::as_str) == Some(community)))
    };
    let (Some(from), Some(to)) = (pick("PH", "ASEAN"), pick("CN", "PLUS")) else {
        out!("scenario skipped: it needs one ASEAN and one Plus member");
        return Ok(());
    };
    let client = Client::new(&from.api_url, Some(from.token.clone()), None)?;
    let line = client
        .call(
            Method::POST,
            "/api/v1/lines",
            Some(&json!({"members": [from.code, to.code], "scope": "ADMM-Plus",
                        "title": format!("{}–{} direct line", from.code, to.code)})),
        )
        .await?;
    let line_id = s(&line, "id").to_string();
    out!("scenario: {} opened an ADMM-Plus direct line to {}: {line_id}", from.code, to.code);
    let started = Instant::now();
    let msg = client
        .call(
            Method::POST,
            &format!("/api/v1/lines/{line_id}/messages"),
            Some(&json!({
                "precedence": "FLASH",
                "subject": "Unplanned encounter at sea",
                "body": "Our patrol vessel reports a close-quarters situation with one of your units. \
                         Request you contact your unit to keep safe distance in accordance with CUES and COLREGs.",
            })),
        )
        .await?;
    let id = s(&msg, "id").to_string();
    out!("scenario: {} sent FLASH {id}", from.code);
    let deadline = Instant::now() + STEP_WITHIN;
    loop {
        let m = client.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await?;
        let delivered = m
            .get("recipients")
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().all(|r| s(r, "state") == "delivered"));
        if delivered {
            out!(
                "scenario: FLASH delivered to {} in {} ms (committed at both nodes)",
                to.code,
                started.elapsed().as_millis()
            );
            break;
        }
        if Instant::now() > deadline {
            out!("scenario: FLASH not yet delivered after 30 s; see `adi peers`");
            break;
        }
        tokio::time::sleep(STATE_POLL).await;
    }
    let to_client = Client::new(&to.api_url, Some(to.token.clone()), None)?;
    let inbox = to_client.call(Method::GET, "/api/v1/inbox?limit=5", None).await?;
    if let Some(first) = inbox.as_array().and_then(|a| a.first()) {
        out!(
            "scenario: {}'s inbox shows {} from {}: {}",
            to.code,
            s(first, "precedence"),
            s(first, "sender"),
            s(first, "subject")
        );
    }

    // The duty officer at the other desk acknowledges; the acknowledgement is a signed receipt.
    let acked_at = Instant::now();
    to_client.call(Method::POST, &format!("/api/v1/messages/{id}/ack"), None).await?;
    let state = wait_recipient_state(&client, &id, "acknowledged", STEP_WITHIN).await?;
    out!(
        "scenario: {} acknowledged the FLASH; {}'s node shows it signed and recorded in {} ms ({state})",
        to.code,
        from.code,
        acked_at.elapsed().as_millis()
    );

    // A second message is left unanswered: its deadline passes and both ends raise the alarm.
    let immediate = client
        .call(
            Method::POST,
            &format!("/api/v1/lines/{line_id}/messages"),
            Some(&json!({
                "precedence": "IMMEDIATE",
                "subject": "Request for a call between defence ministers",
                "body": "Proposing a call at 0900 UTC tomorrow to discuss the incident.",
            })),
        )
        .await?;
    let immediate_id = s(&immediate, "id").to_string();
    let deadline_s = immediate
        .get("deadline_ms")
        .and_then(Value::as_u64)
        .zip(immediate.get("created_ms").and_then(Value::as_u64))
        .map(|(d, c)| d.saturating_sub(c) / 1000)
        .unwrap_or(0);
    out!("scenario: {} sent an IMMEDIATE that nobody will acknowledge; its deadline is {deadline_s} s", from.code);
    let (watch_from, watch_to) = (client.clone(), to_client.clone());
    let (from_code, to_code) = (from.code.clone(), to.code.clone());
    tokio::spawn(async move {
        let escalation =
            wait_alarm(&watch_to, "escalation", &immediate_id, Duration::from_secs(deadline_s + ESCALATION_GRACE_S))
                .await;
        let unacked = wait_alarm(&watch_from, "unacknowledged", &immediate_id, STEP_WITHIN).await;
        if let (Some(e), Some(u)) = (escalation, unacked) {
            out!("scenario: {to_code}'s node escalates: {}", s(&e, "detail"));
            out!("scenario: {from_code}'s node raises: {}", s(&u, "detail"));
            out!("scenario: acknowledge with `adi ack {immediate_id}` at {to_code} to clear both");
        }
    });

    // Direct lines from the sender to every other member, tested automatically.
    let others: Vec<&setup::DemoMember> =
        demo.members.iter().filter(|m| m.code != from.code && m.code != to.code).collect();
    for m in &others {
        let body = json!({"members": [from.code, m.code], "scope": "ADMM-Plus"});
        client.call(Method::POST, "/api/v1/lines", Some(&body)).await?;
    }
    let expected = others.len() + 1;
    let deadline = Instant::now() + STEP_WITHIN;
    loop {
        let links = client.call(Method::GET, "/api/v1/links", None).await?;
        let links = links.as_array().cloned().unwrap_or_default();
        let healthy = links.iter().filter(|l| s(l, "state") == "healthy").count();
        if healthy >= expected || Instant::now() > deadline {
            let rtt_max = links.iter().filter_map(|l| l.get("last_rtt_ms").and_then(Value::as_u64)).max().unwrap_or(0);
            out!(
                "scenario: link tests from {}: {healthy} of {expected} direct lines healthy (slowest round trip {rtt_max} ms); see `adi links`",
                from.code
            );
            break;
        }
        tokio::time::sleep(LINKS_POLL).await;
    }
    Ok(())
}

/// Waits until every recipient of a message is in `state`.
async fn wait_recipient_state(client: &Client, id: &str, state: &str, within: Duration) -> anyhow::Result<String> {
    let deadline = Instant::now() + within;
    loop {
        let m = client.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await?;
        let recipients = m.get("recipients").and_then(Value::as_array).cloned().unwrap_or_default();
        if !recipients.is_empty() && recipients.iter().all(|r| s(r, "state") == state) {
            return Ok(recipients
                .iter()
                .map(|r| format!("{} {}", s(r, "member"), s(r, "state")))
                .collect::<Vec<_>>()
                .join(", "));
        }
        if Instant::now() > deadline {
            anyhow::bail!("message {id} did not reach {state} within {} s", within.as_secs());
        }
        tokio::time::sleep(STATE_POLL).await;
    }
}

/// Waits for an open alarm of `kind` about `message`.
async fn wait_alarm(client: &Client, kind: &str, message: &str, within: Duration) -> Option<Value> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(alarms) = client.list("/api/v1/alarms", None).await {
            let found = alarms.items.iter().find(|a| s(a, "kind") == kind && s(a, "message") == message);
            if let Some(a) = found {
                return Some(a.clone());
            }
        }
        tokio::time::sleep(ALARM_POLL).await;
    }
    None
}
