//! A node killed between receiving a message from a later epoch and the commit that opens that
//! epoch: the message is held durably, and after the restart the commit arrives, the message is
//! read and the line works.
//!
//! Two real node processes, PH (home) and CN, with link tests off so nothing else flows. While CN
//! is down, PH commits a key update and sends a FLASH in the new epoch; PH is then killed, and the
//! test hands CN the FLASH and later the commit itself, over mutual TLS as PH's node, so their order
//! and timing are the test's. CN is killed with SIGKILL right after it said it holds the FLASH.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use adi_node::client::Client;
use adi_node::config::NodeConfig;
use adi_node::fed::links::post_batch_once;
use adi_wire::batch::{RefusalCode, Verdict};
use adi_wire::{Envelope, EnvelopeHash};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use support::{wait_healthy, Procs};

const CODES: [&str; 2] = ["PH", "CN"];
const WAIT: Duration = Duration::from_secs(60);
const ENVELOPE_MAX: usize = 1 << 20;

/// The two nodes as processes, with link tests off.
fn network() -> Procs {
    let net = Procs::init(&CODES);
    for m in &net.members {
        let text = std::fs::read_to_string(&m.config).unwrap();
        assert!(text.contains("link_test_interval_s = 30\n"), "{text}");
        std::fs::write(&m.config, text.replace("link_test_interval_s = 30\n", "link_test_interval_s = 0\n")).unwrap();
    }
    net
}

fn config(net: &Procs, code: &str) -> NodeConfig {
    NodeConfig::load(Path::new(&net.member(code).config)).unwrap()
}

/// Starts a member's node and waits until it answers.
async fn start_node(net: &mut Procs, code: &str) {
    net.start(code);
    wait_healthy(&net.member(code).url).await;
}

async fn eventually<T, F, Fut>(what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    support::eventually(WAIT, what, f).await
}

/// Hands envelopes to `to`'s node over its federation endpoint, as `from`'s node: `from`'s node
/// certificate, `to`'s pinned key. One verdict per envelope.
async fn post_as(net: &Procs, from: &str, to: &str, envelopes: &[&[u8]]) -> Vec<Verdict> {
    let (from, to_config) = (config(net, from), config(net, to));
    let (cert, key) = adi_node::tls::load_identity(&from.tls_cert, &from.tls_key).unwrap();
    let (to_cert, _) = adi_node::tls::load_identity(&to_config.tls_cert, &to_config.tls_key).unwrap();
    let pin = adi_node::tls::spki_pin(&to_cert).unwrap();
    let tls = Arc::new(adi_node::tls::federation_client_config(cert, key, pin).unwrap());
    let endpoint = to_config.federation_listen[0].to_string();
    let reply = post_batch_once(&endpoint, tls, &to_config.member, envelopes, 5_000).await.unwrap();
    assert_eq!(reply.verdicts.len(), envelopes.len(), "{reply:?}");
    reply.verdicts
}

/// An envelope's exact signed bytes, from its node's API.
async fn envelope_bytes(c: &Client, id: &str) -> Vec<u8> {
    let e = c.call(Method::GET, &format!("/api/v1/envelopes/{id}"), None).await.unwrap();
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(e["bytes_base64"].as_str().unwrap()).unwrap();
    assert_eq!(EnvelopeHash::of(&bytes).to_hex(), id, "the bytes are the envelope's");
    bytes
}

/// From a stopped node's store: the latest handshake (commit) its sender sent on the line before
/// `after`, found along the sender's chain of `prev` hashes.
fn commit_before(config: &NodeConfig, after: &[u8]) -> Vec<u8> {
    let store = adi_node::state::open_store(config).unwrap();
    let mut prev = Envelope::decode(after, ENVELOPE_MAX, ENVELOPE_MAX).unwrap().body().prev;
    for _ in 0..16 {
        assert_ne!(prev, EnvelopeHash::NONE, "no handshake before the envelope");
        let row = adi_store::Store::envelope(&store, &prev).unwrap().expect("stored");
        if row.kind == "handshake" {
            return row.bytes;
        }
        prev = Envelope::decode(&row.bytes, ENVELOPE_MAX, ENVELOPE_MAX).unwrap().body().prev;
    }
    panic!("no handshake among the sender's 16 envelopes before this one");
}

async fn send(c: &Client, line: &str, precedence: &str, subject: &str) -> String {
    let body = json!({"precedence": precedence, "subject": subject, "body": format!("body of {subject}")});
    let v = c.call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&body)).await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

/// Waits until every recipient of a message is `delivered` at its sender's node; returns it.
async fn wait_delivered(c: &Client, id: &str) -> Value {
    eventually(&format!("message {id} delivered"), || async {
        let m = c.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.ok()?;
        m["recipients"].as_array()?.iter().all(|r| r["state"] == "delivered").then_some(m)
    })
    .await
}

async fn inbox(c: &Client) -> Vec<Value> {
    let v = c.call(Method::GET, "/api/v1/inbox?limit=1000", None).await.unwrap();
    v.as_array().unwrap().clone()
}

async fn epoch(c: &Client, line: &str) -> u64 {
    let v = c.call(Method::GET, &format!("/api/v1/lines/{line}"), None).await.unwrap();
    v["epoch"].as_u64().unwrap()
}

fn held_reason(v: &Verdict) -> bool {
    matches!(v, Verdict::Deferred { code: RefusalCode::EpochAhead, reason } if reason.contains("held here until its commit arrives"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_holding_a_message_from_a_later_epoch_reads_it_when_the_commit_arrives() {
    let mut net = network();
    start_node(&mut net, "PH").await;
    start_node(&mut net, "CN").await;
    let (ph, cn) = (net.client("PH"), net.client("CN"));

    // A direct line, working.
    let v = ph
        .call(Method::POST, "/api/v1/lines", Some(&json!({"members": ["PH", "CN"], "scope": "ADMM-Plus"})))
        .await
        .unwrap();
    let line = v["id"].as_str().unwrap().to_string();
    let first = send(&ph, &line, "ROUTINE", "before the update").await;
    wait_delivered(&ph, &first).await;
    let start = epoch(&cn, &line).await;

    // While CN is down, PH commits a key update and sends a FLASH in the new epoch; then PH dies.
    net.kill("CN");
    let v = ph.call(Method::POST, &format!("/api/v1/lines/{line}/update-keys"), None).await.unwrap();
    assert_eq!(v["epoch"].as_u64(), Some(start + 1), "{v}");
    let flash = send(&ph, &line, "FLASH", "sent in the new epoch").await;
    let flash_bytes = envelope_bytes(&ph, &flash).await;
    assert_eq!(Envelope::decode(&flash_bytes, ENVELOPE_MAX, ENVELOPE_MAX).unwrap().body().epoch, start + 1);
    net.kill("PH");
    let commit = commit_before(&config(&net, "PH"), &flash_bytes);
    let body = Envelope::decode(&commit, ENVELOPE_MAX, ENVELOPE_MAX).unwrap().body().clone();
    assert_eq!((body.sender.as_str(), body.epoch), ("PH", start), "the commit is sent in the old epoch");

    // The FLASH reaches CN before its commit: CN holds it, and says so.
    start_node(&mut net, "CN").await;
    let verdicts = post_as(&net, "PH", "CN", &[&flash_bytes]).await;
    assert!(held_reason(&verdicts[0]), "{verdicts:?}");

    // CN dies at once, without any shutdown, and comes back: the FLASH is not readable yet.
    net.kill("CN");
    start_node(&mut net, "CN").await;
    assert_eq!(epoch(&cn, &line).await, start, "CN moved on without the commit");
    assert!(!inbox(&cn).await.iter().any(|m| m["id"] == flash.as_str()), "readable before its commit");
    let (status, _) = cn.request(Method::GET, &format!("/api/v1/messages/{flash}"), None).await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND, "CN shows the FLASH before its commit");

    // The commit arrives. PH is still dead, so the FLASH can only come from what CN held across
    // the kill.
    let verdicts = post_as(&net, "PH", "CN", &[&commit]).await;
    assert!(matches!(verdicts[0], Verdict::Accepted), "{verdicts:?}");
    assert_eq!(epoch(&cn, &line).await, start + 1);
    let held = eventually("CN to read the held FLASH", || async {
        inbox(&cn).await.into_iter().find(|m| m["id"] == flash.as_str())
    })
    .await;
    assert_eq!(held["subject"], "sent in the new epoch", "{held}");
    assert_eq!(held["precedence"], "FLASH", "{held}");
    // Both are now committed at CN: the copies waiting in PH's queue will be answered duplicate.
    let verdicts = post_as(&net, "PH", "CN", &[&commit, &flash_bytes]).await;
    assert!(verdicts.iter().all(|v| matches!(v, Verdict::Duplicate)), "{verdicts:?}");

    // PH comes back: its queued copies are duplicates now, and CN's node says, signed, that it
    // decrypted the FLASH.
    start_node(&mut net, "PH").await;
    let m = wait_delivered(&ph, &flash).await;
    let to: Vec<&str> = m["recipients"].as_array().unwrap().iter().map(|r| r["member"].as_str().unwrap()).collect();
    assert_eq!(to, ["CN"]);
    eventually("CN's decrypted receipt at PH", || async {
        let m = ph.call(Method::GET, &format!("/api/v1/messages/{flash}"), None).await.ok()?;
        m["recipients"][0]["decrypted_ms"].as_u64()
    })
    .await;
    let copies = inbox(&cn).await.iter().filter(|m| m["id"] == flash.as_str()).count();
    assert_eq!(copies, 1, "the FLASH once in CN's inbox");

    // CN answers on the line in the new epoch, and PH reads it.
    let reply = send(&cn, &line, "IMMEDIATE", "answer in the new epoch").await;
    wait_delivered(&cn, &reply).await;
    let at_ph = ph.call(Method::GET, &format!("/api/v1/messages/{reply}"), None).await.unwrap();
    assert_eq!(at_ph["subject"], "answer in the new epoch", "{at_ph}");
    assert_eq!(epoch(&ph, &line).await, start + 1);
}
