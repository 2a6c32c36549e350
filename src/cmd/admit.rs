//! `adi demo --admit CODE`: a new member admitted into the running demo network, end to end, as
//! establishments would do it: the new member makes its keys and card (`adi init`), an ASEAN
//! member proposes its admission, every ASEAN member's administrator signs it, the version takes
//! effect on every node without a restart, the new member's node joins on the chain
//! (`adi roster join`) and starts, and Viet Nam (or the first ASEAN member) opens an ADMM line
//! with it and sends a FLASH, which it acknowledges.

use std::path::Path;
use std::time::{Duration, Instant};

use adi_core::amendment;
use adi_node::client::Client;
use adi_node::fed::roster::{offer, Source};
use adi_node::setup::{self, DemoMember, DemoState, InitOptions};
use adi_node::{Node, NodeConfig};
use anyhow::{anyhow, Context};
use hyper::Method;
use serde_json::json;

use super::s;

/// How long each step of the admission may take.
const STEP_WITHIN: Duration = Duration::from_secs(60);
/// How often a step looks again.
const POLL: Duration = Duration::from_millis(100);

/// Who acts at each member's node: its administrator.
const ADMINISTRATOR: &str = "administrator";

async fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    let deadline = Instant::now() + STEP_WITHIN;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(anyhow!("{what}: not within {STEP_WITHIN:?}"));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Admits `code` into the running network of `nodes` and starts its node, which it returns.
pub async fn admit(
    state: &Path,
    demo: &mut DemoState,
    nodes: &[Node],
    code: &str,
    base_port: u16,
) -> anyhow::Result<Node> {
    let code = code.trim().to_ascii_uppercase();
    let dir = state.join(&code);
    let (fed, api) = setup::demo_ports(base_port, demo.members.len())?;
    out!("admission of {code}: [1/6] {code} makes its keys and card");
    let init = setup::init_member(&InitOptions {
        member: code.clone(),
        dir: dir.clone(),
        name: None,
        community: None,
        endpoints: vec![format!("127.0.0.1:{fed}")],
        federation_listen: vec![format!("127.0.0.1:{fed}")],
        api_listen: format!("127.0.0.1:{api}"),
        discipline: setup::demo_discipline(),
        store: None,
    })?;

    let roster = nodes.first().ok_or_else(|| anyhow!("no node runs"))?.state.roster();
    let asean: Vec<&Node> = nodes
        .iter()
        .filter(|n| {
            roster
                .member(&n.state.member)
                .is_some_and(|m| m.community.as_str() == "ASEAN" && !roster.is_suspended(&m.code))
        })
        .collect();
    let proposer = *asean.first().ok_or_else(|| anyhow!("no ASEAN member runs a node to propose the admission"))?;
    let mut file = roster.to_file();
    file.members.push(init.entry.clone());
    let amended = adi_core::Roster::from_file(&file).map_err(|e| anyhow!("{e}"))?;
    let book = proposer.state.roster_book();
    let (mut proposal, hash) = amendment::propose(&book.current, &amended);
    let number = proposal.number;
    proposal.signatures.push(proposer.state.sign_roster_version(&hash));
    offer(&proposer.state, Source::Operator(ADMINISTRATOR.into()), proposal)
        .await
        .map_err(|e| anyhow!("{}: {}", proposer.state.member, e.message))?;
    out!(
        "admission of {code}: [2/6] {} proposed roster version {number} ({})",
        proposer.state.member,
        hex::encode(hash)
    );

    for (i, node) in asean.iter().enumerate().skip(1) {
        let kept = until(&format!("the proposal at {}'s node", node.state.member), || {
            let book = node.state.roster_book();
            if book.current.number >= number {
                return Some(None);
            }
            book.proposals.iter().find(|p| book.proposal_hash(p) == Some(hash)).cloned().map(Some)
        })
        .await?;
        let Some(mut kept) = kept else { break };
        kept.signatures.push(node.state.sign_roster_version(&hash));
        offer(&node.state, Source::Operator(ADMINISTRATOR.into()), kept)
            .await
            .map_err(|e| anyhow!("{}: {}", node.state.member, e.message))?;
        out!("admission of {code}: [3/6] {} signed ({}/{} ASEAN members)", node.state.member, i + 1, asean.len());
    }
    for node in nodes {
        until(&format!("version {number} at {}'s node", node.state.member), || {
            (node.state.roster_book().current.number >= number).then_some(())
        })
        .await?;
    }
    out!("admission of {code}: [4/6] version {number} is in force on all {} nodes, without a restart", nodes.len());

    let book = proposer.state.roster_book();
    let chain = dir.join("chain.json");
    std::fs::write(&chain, serde_json::to_string_pretty(&book.versions)? + "\n")
        .with_context(|| format!("cannot write {}", chain.display()))?;
    super::roster::join(init.config.clone(), state.join("roster.toml"), chain, Some(hex::encode(book.first_hash)))?;
    let mut config = NodeConfig::load(&init.config).map_err(|e| anyhow!("{e}"))?;
    config.previewer = Some(adi_node::preview::Previewer::this_program()?);
    let operator = format!("duty-{code}");
    let token = {
        let store = adi_node::state::open_store(&config)?;
        let token = setup::add_operator(&store, &operator, "duty")?;
        let password = setup::new_token();
        setup::set_password(&store, &operator, &password)?;
        demo.members.push(DemoMember {
            code: code.clone(),
            api_url: format!("http://127.0.0.1:{api}"),
            token: token.clone(),
            config: std::fs::canonicalize(&init.config)?.display().to_string(),
            console_password: password,
        });
        token
    };
    setup::write_private(&state.join("demo.json"), (serde_json::to_string_pretty(&demo)? + "\n").as_bytes())?;
    let node = Node::start(config).await.with_context(|| format!("starting {code}"))?;
    out!("admission of {code}: [5/6] {code}'s node joined the network and runs at http://127.0.0.1:{api}");

    let from = demo
        .members
        .iter()
        .find(|m| m.code == "VN")
        .or_else(|| demo.members.iter().find(|m| asean.iter().any(|n| n.state.member.as_str() == m.code)))
        .ok_or_else(|| anyhow!("no ASEAN member to open a line with {code}"))?;
    let sender = Client::new(&from.api_url, Some(from.token.clone()), None)?;
    let receiver = Client::new(&format!("http://127.0.0.1:{api}"), Some(token), None)?;
    let line = sender
        .call(
            Method::POST,
            "/api/v1/lines",
            Some(&json!({"members": [from.code, code], "scope": "ADMM", "title": format!("{}–{code} direct line", from.code)})),
        )
        .await?;
    let line = s(&line, "id");
    let started = Instant::now();
    let sent = sender
        .call(
            Method::POST,
            &format!("/api/v1/lines/{line}/messages"),
            Some(&json!({"precedence": "FLASH", "subject": format!("Welcome, {code}"),
                         "body": "Welcome to the ADMM direct communications infrastructure."})),
        )
        .await?;
    let id = s(&sent, "id");
    let deadline = Instant::now() + STEP_WITHIN;
    loop {
        if receiver.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.is_ok() {
            break;
        }
        if Instant::now() > deadline {
            return Err(anyhow!("the FLASH did not reach {code} within {STEP_WITHIN:?}"));
        }
        tokio::time::sleep(POLL).await;
    }
    let rang = started.elapsed();
    receiver.call(Method::POST, &format!("/api/v1/messages/{id}/ack"), Some(&json!({}))).await?;
    out!(
        "admission of {code}: [6/6] {} opened an ADMM line to {code}; a FLASH rang there in {} ms and {code} acknowledged it",
        from.code,
        rang.as_millis()
    );
    Ok(node)
}
