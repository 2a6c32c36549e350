//! The promise that nothing is acknowledged before it is durably committed, shown to be checked
//! on real processes: CN's node runs with the engine's built-in fault `ack_before_commit`
//! (`ADI_ENGINE_BUG`), which answers a batch before its commit. CN's database lives on a small
//! tmpfs that fills while PH streams messages to it: CN answers `accepted` for a batch whose
//! commit then fails, PH marks those messages delivered, and once CN takes writes again it never
//! holds them. The same run without the fault is `tests/full_disk.rs`, where every message either
//! node accepted arrives exactly once.
//!
//! The disk may fill on a write other than a batch's commit (an event, a settlement), which the
//! fault does not touch; so the disk fills and empties again, up to [`ROUNDS_MAX`] times, until a
//! loss shows. Needs root, to mount the tmpfs.

mod support;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use adi_node::client::Client;
use adi_node::config::ConfigFile;
use hyper::Method;
use serde_json::{json, Value};
use support::{eventually, move_database, wait_healthy, Filler, Mount, Procs};

const WAIT: Duration = Duration::from_secs(30);
/// Times the disk fills at most before the test gives up finding the loss.
const ROUNDS_MAX: usize = 8;
/// How often PH's operators send.
const SEND_EVERY: Duration = Duration::from_millis(40);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_answering_before_its_commit_loses_messages_its_peer_was_told_it_holds() {
    let disk = Mount::tmpfs("8m");
    let mut net = Procs::init(&["PH", "CN"]);
    let config = PathBuf::from(&net.member("PH").config);
    let mut file: ConfigFile = toml::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    // Retries at most 1 s apart, so that PH's backlog drains soon after CN takes writes again.
    file.limits.retry_delay_ms_max = Some(1_000);
    std::fs::write(&config, toml::to_string_pretty(&file).unwrap()).unwrap();
    move_database(&net, "CN", &disk.dir);
    net.start("PH");
    net.start_with_env("CN", &[("ADI_ENGINE_BUG", "ack_before_commit")]);
    for code in ["PH", "CN"] {
        wait_healthy(&net.member(code).url).await;
    }
    let (ph, cn) = (net.client("PH"), net.client("CN"));
    // A node running with a fault injected says so; one without says nothing.
    let health = cn.call(Method::GET, "/healthz", None).await.unwrap();
    assert_eq!(health["injected_faults"], json!(["ack_before_commit"]), "{health}");
    let health = ph.call(Method::GET, "/healthz", None).await.unwrap();
    assert!(health.get("injected_faults").is_none(), "{health}");
    let body = json!({"members": ["PH", "CN"], "scope": "ADMM-Plus"});
    let line = ph.call(Method::POST, "/api/v1/lines", Some(&body)).await.unwrap();
    let line = line["id"].as_str().unwrap().to_string();
    eventually(WAIT, "CN to hold the line", || async {
        cn.call(Method::GET, &format!("/api/v1/lines/{line}"), None).await.ok().map(|_| ())
    })
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let sender = tokio::spawn(stream(net.client("PH"), line.clone(), stop.clone()));
    for round in 1..=ROUNDS_MAX {
        let filler = Filler::start(disk.dir.join("filler"));
        eventually(WAIT, "CN to refuse writes on a full disk", || async {
            let health = cn.call(Method::GET, "/healthz", None).await.ok()?;
            (health["status"] == "storage_failed").then_some(())
        })
        .await;
        filler.stop();
        eventually(WAIT, "CN to take writes again", || async {
            let health = cn.call(Method::GET, "/healthz", None).await.ok()?;
            (health["status"] == "ok").then_some(())
        })
        .await;
        let lost = lost(&ph, &cn, &line).await;
        if lost.is_empty() {
            eprintln!("round {round}: the disk filled on a write the fault does not touch; again");
            continue;
        }
        // Not a commit still under way: the messages stay missing at CN.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let held = ids_at(&cn, &line).await;
        assert!(lost.iter().all(|id| !held.contains(id)), "the lost messages stay lost");
        eprintln!("round {round}: CN answered `accepted` before its commit and lost {} messages", lost.len());
        stop.store(true, Ordering::SeqCst);
        sender.await.unwrap();
        return;
    }
    panic!("CN answered before its commit, yet no message went missing over {ROUNDS_MAX} full disks");
}

/// PH's operators send on the line until stopped.
async fn stream(ph: Client, line: String, stop: Arc<AtomicBool>) {
    let path = format!("/api/v1/lines/{line}/messages");
    let mut i = 0;
    while !stop.load(Ordering::SeqCst) {
        let body = json!({"precedence": "ROUTINE", "subject": format!("PH report {i}"), "body": "x"});
        ph.request(Method::POST, &path, Some(&body)).await.expect("PH's node answers a send");
        i += 1;
        tokio::time::sleep(SEND_EVERY).await;
    }
}

/// The messages PH's record shows delivered to CN that CN's record does not hold.
async fn lost(ph: &Client, cn: &Client, line: &str) -> Vec<String> {
    let delivered: Vec<String> = support::messages(ph, line)
        .await
        .iter()
        .filter(|m| m["sender"] == "PH")
        .filter(|m| recipient(m, "CN").is_some_and(|r| r["delivered_ms"].is_u64()))
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    let held = ids_at(cn, line).await;
    delivered.into_iter().filter(|id| !held.contains(id)).collect()
}

fn recipient<'a>(message: &'a Value, member: &str) -> Option<&'a Value> {
    message["recipients"].as_array()?.iter().find(|r| r["member"] == member)
}

async fn ids_at(node: &Client, line: &str) -> HashSet<String> {
    support::messages(node, line).await.iter().map(|m| m["id"].as_str().unwrap().to_string()).collect()
}
