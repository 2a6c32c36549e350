//! A home node killed between committing a member's addition and delivering the Welcome: after
//! the restart the Welcome leaves from the durable outbox, and the line works for every member.
//!
//! Four real node processes, PH (home), CN, VN and ID. PH's roster sends every connection towards
//! ID through a relay in this test. Once PH's first roster exchange with ID has passed (PH
//! exchanges again only after an hour, by its configuration), the relay passes the first
//! connection (PH's KeyPackage claim, the only thing PH sends to ID before the addition) and drops
//! every later one until it is opened, so the Welcome is committed at PH but cannot leave before
//! PH is killed with SIGKILL. TLS stays end to end: the relay sees only ciphertext.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use adi_node::client::Client;
use adi_wire::files::RosterFile;
use hyper::{Method, StatusCode};
use serde_json::json;
use support::{wait_healthy, Procs};
use tokio::net::{TcpListener, TcpStream};

const CODES: [&str; 4] = ["PH", "CN", "VN", "ID"];
const WAIT: Duration = Duration::from_secs(60);

async fn eventually<T, F, Fut>(what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    support::eventually(WAIT, what, f).await
}

/// A TCP relay towards one federation endpoint. It forwards the first connection it accepts and
/// drops every later one until [`Relay::open`]; from then on it forwards all.
struct Relay {
    addr: String,
    open: Arc<AtomicBool>,
    forwarded: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
    /// Forwarded connections not yet closed.
    live: Arc<AtomicUsize>,
}

impl Relay {
    async fn start(target: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let open = Arc::new(AtomicBool::new(false));
        let forwarded = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let live = Arc::new(AtomicUsize::new(0));
        let (o, f, r, l) = (open.clone(), forwarded.clone(), refused.clone(), live.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { continue };
                // Decided in this one task, in the order of acceptance.
                if f.load(Ordering::SeqCst) + r.load(Ordering::SeqCst) > 0 && !o.load(Ordering::SeqCst) {
                    r.fetch_add(1, Ordering::SeqCst);
                    drop(inbound);
                    continue;
                }
                f.fetch_add(1, Ordering::SeqCst);
                l.fetch_add(1, Ordering::SeqCst);
                let (target, l) = (target.clone(), l.clone());
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                    l.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Relay { addr, open, forwarded, refused, live }
    }
}

/// The roster file a member's node reads: each node has its own copy.
fn roster_path(net: &Procs, code: &str) -> PathBuf {
    let config = PathBuf::from(&net.member(code).config);
    let file: adi_node::config::ConfigFile = toml::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    config.parent().unwrap().join(file.roster)
}

/// Points every endpoint of `member` in `at`'s roster at a relay towards its first real endpoint.
async fn relay_in_roster(net: &Procs, at: &str, member: &str) -> Relay {
    let path = roster_path(net, at);
    let mut roster = RosterFile::from_toml(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let entry = roster.members.iter_mut().find(|m| m.code == member).unwrap();
    let relay = Relay::start(entry.endpoints[0].clone()).await;
    entry.endpoints = vec![relay.addr.clone()];
    std::fs::write(&path, roster.to_toml()).unwrap();
    relay
}

async fn send(c: &Client, line: &str, subject: &str) -> String {
    let body = json!({"precedence": "ROUTINE", "subject": subject, "body": format!("body of {subject}")});
    let v = c.call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&body)).await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

/// Waits until every recipient of a message is `delivered` at its sender's node; returns them.
async fn wait_delivered(c: &Client, id: &str) -> Vec<String> {
    let m = eventually(&format!("message {id} delivered"), || async {
        let m = c.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.ok()?;
        m["recipients"].as_array()?.iter().all(|r| r["state"] == "delivered").then_some(m)
    })
    .await;
    m["recipients"].as_array().unwrap().iter().map(|r| r["member"].as_str().unwrap().to_string()).collect()
}

/// The line's member list at a node, once it holds the line.
async fn members_at(c: &Client, line: &str) -> Option<Vec<String>> {
    let (status, v) = c.request(Method::GET, &format!("/api/v1/lines/{line}"), None).await.ok()?;
    (status == 200).then(|| v["members"].as_array().unwrap().iter().map(|m| m.as_str().unwrap().into()).collect())
}

async fn subject_at(c: &Client, id: &str) -> Option<String> {
    let (status, v) = c.request(Method::GET, &format!("/api/v1/messages/{id}"), None).await.ok()?;
    (status == 200).then(|| v["subject"].as_str().unwrap().to_string())
}

async fn status_of(c: &Client, path: &str) -> StatusCode {
    c.request(Method::GET, path, None).await.unwrap().0
}

async fn inbox_ids(c: &Client) -> BTreeSet<String> {
    let v = c.call(Method::GET, "/api/v1/inbox?limit=1000", None).await.unwrap();
    v.as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_node_killed_between_commit_and_welcome_brings_the_new_member_in_after_restart() {
    let all = ["CN", "ID", "PH", "VN"];
    let mut net = Procs::init(&CODES);
    let relay = relay_in_roster(&net, "PH", "ID").await;
    let config = PathBuf::from(&net.member("PH").config);
    let mut file: adi_node::config::ConfigFile = toml::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    file.limits.roster_sync_ms = Some(3_600_000);
    std::fs::write(&config, toml::to_string_pretty(&file).unwrap()).unwrap();
    relay.open.store(true, Ordering::SeqCst);
    for code in CODES {
        net.start(code);
    }
    for m in &net.members {
        wait_healthy(&m.url).await;
    }
    // PH's roster exchange with ID at start passes; then the relay closes behind it.
    eventually("PH's first roster exchange with ID", || async {
        (relay.forwarded.load(Ordering::SeqCst) >= 1 && relay.live.load(Ordering::SeqCst) == 0).then_some(())
    })
    .await;
    relay.open.store(false, Ordering::SeqCst);
    relay.forwarded.store(0, Ordering::SeqCst);
    let (ph, id) = (net.client("PH"), net.client("ID"));

    // A conference of three, working.
    let v = ph
        .call(Method::POST, "/api/v1/lines", Some(&json!({"members": ["PH", "CN", "VN"], "scope": "ADMM-Plus"})))
        .await
        .unwrap();
    let line = v["id"].as_str().unwrap().to_string();
    let before = send(&ph, &line, "before ID joined").await;
    assert_eq!(wait_delivered(&ph, &before).await, ["CN", "VN"]);
    assert_eq!(relay.forwarded.load(Ordering::SeqCst), 0, "PH talked to ID before the addition");

    // PH adds ID: the claim passes the relay, the commit reaches CN and VN, the Welcome does not leave.
    let (status, v) = ph
        .request(Method::POST, &format!("/api/v1/lines/{line}/members"), Some(&json!({"member": "ID"})))
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["members"], json!(all));
    assert_eq!(relay.forwarded.load(Ordering::SeqCst), 1, "the claim is the one connection forwarded");
    eventually("the claim's connection to close", || async { (relay.live.load(Ordering::SeqCst) == 0).then_some(()) })
        .await;
    eventually("PH to try to deliver the Welcome", || async {
        (relay.refused.load(Ordering::SeqCst) > 0).then_some(())
    })
    .await;
    for at in ["CN", "VN"] {
        let c = net.client(at);
        eventually(&format!("the commit at {at}"), || async { (members_at(&c, &line).await? == all).then_some(()) })
            .await;
    }
    let peers = ph.call(Method::GET, "/api/v1/peers", None).await.unwrap();
    let to_id = peers.as_array().unwrap().iter().find(|p| p["member"] == "ID").unwrap();
    assert!(to_id["queue_len"].as_u64().unwrap() >= 1, "the Welcome is not queued at PH: {to_id}");
    let status = status_of(&id, &format!("/api/v1/lines/{line}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "ID holds the line before PH's crash");
    assert_eq!(relay.forwarded.load(Ordering::SeqCst), 1);

    // PH dies with the Welcome in its outbox, and comes back with the way to ID open.
    net.kill("PH");
    relay.open.store(true, Ordering::SeqCst);
    net.start("PH");
    wait_healthy(&net.members[net.index("PH")].url).await;

    // ID joins; every node holds the same four members.
    eventually("the line at ID", || async { members_at(&id, &line).await }).await;
    for at in all {
        assert_eq!(members_at(&net.client(at), &line).await.unwrap(), all, "members at {at}");
    }

    // PH's message after the restart reaches all three.
    let after = send(&ph, &line, "after PH's restart").await;
    assert_eq!(wait_delivered(&ph, &after).await, ["CN", "ID", "VN"]);
    assert!(inbox_ids(&id).await.contains(&after), "ID's inbox lacks PH's message");
    for at in ["CN", "ID", "VN"] {
        assert_eq!(subject_at(&net.client(at), &after).await.as_deref(), Some("after PH's restart"), "at {at}");
    }

    // ID speaks on the line and everyone reads it.
    let from_id = send(&id, &line, "ID speaks").await;
    assert_eq!(wait_delivered(&id, &from_id).await, ["CN", "PH", "VN"]);
    for at in ["CN", "PH", "VN"] {
        assert_eq!(subject_at(&net.client(at), &from_id).await.as_deref(), Some("ID speaks"), "at {at}");
    }

    // ID holds nothing sent before it joined.
    let status = status_of(&id, &format!("/api/v1/messages/{before}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "ID holds a message sent before it joined");
    assert!(!inbox_ids(&id).await.contains(&before));
}
