//! The roster amended while the network runs, between separate node processes: Timor-Leste
//! admitted by every ASEAN member's signature (none short of it takes effect) and exchanging a
//! FLASH with Viet Nam; a member suspended, taken off the conferences others are home to and
//! refused afterwards; a member removed, its conference re-homed by the roster's rule and its past
//! record still verifying; a node stopped during two amendments applying both, in order, when it
//! comes back.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use adi_node::client::Client;
use hyper::Method;
use serde_json::{json, Value};
use support::{eventually, serve, wait_healthy, Proc, Procs};

const WAIT: Duration = Duration::from_secs(60);

fn adi(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_adi")).args(args).env("NO_COLOR", "1").output().expect("adi runs")
}

fn ok(args: &[&str]) -> String {
    let out = adi(args);
    assert!(
        out.status.success(),
        "adi {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Adds an administrator to a member's node (before it starts) and returns its token.
fn admin_of(config: &str) -> String {
    ok(&["operator", "add", "--config", config, "--name", "admin", "--role", "admin"]).trim().to_string()
}

/// Runs `adi roster ...` against a node's API with a token.
fn roster_cli(url: &str, token: &str, args: &[&str]) -> String {
    let mut all = vec!["roster"];
    all.extend_from_slice(&args[..1]);
    all.extend_from_slice(&["--url", url, "--token", token]);
    all.extend_from_slice(&args[1..]);
    ok(&all)
}

async fn roster_number(c: &Client) -> Option<u64> {
    c.call(Method::GET, "/api/v1/roster", None).await.ok().and_then(|v| v["number"].as_u64())
}

/// Waits until every client's node holds roster version `number`.
async fn all_at(clients: &[(&str, Client)], number: u64) {
    for (code, c) in clients {
        eventually(WAIT, &format!("{code}'s node to hold roster version {number}"), || async {
            (roster_number(c).await == Some(number)).then_some(())
        })
        .await;
    }
}

/// The one proposal a node keeps, once it has reached it.
async fn proposal_at(c: &Client, number: u64) -> Value {
    eventually(WAIT, "the proposal to reach the node", || async {
        let list = c.call(Method::GET, "/api/v1/roster/proposals", None).await.ok()?;
        list.as_array()?.iter().find(|p| p["number"] == number).cloned()
    })
    .await
}

/// Opens an ADMM-Plus line of `members` from `c`'s node and waits until the node of each client
/// in `at` holds it.
async fn open_line(c: &Client, members: &[&str], at: &[&Client]) -> String {
    let body = json!({"members": members, "scope": "ADMM-Plus"});
    let line = c.call(Method::POST, "/api/v1/lines", Some(&body)).await.unwrap()["id"].as_str().unwrap().to_string();
    for node in at {
        eventually(WAIT, &format!("line {line} at every member's node"), || async {
            node.call(Method::GET, &format!("/api/v1/lines/{line}"), None).await.ok()
        })
        .await;
    }
    line
}

/// A network of separate node processes, each with an administrator.
struct Net {
    procs: Procs,
    admins: Vec<(String, String)>,
}

impl Net {
    fn start(codes: &[&str]) -> Net {
        let mut procs = Procs::init(codes);
        let admins = procs.members.iter().map(|m| (m.code.clone(), admin_of(&m.config))).collect();
        for c in codes {
            procs.start(c);
        }
        Net { procs, admins }
    }

    fn admin(&self, code: &str) -> (String, String) {
        let token = self.admins.iter().find(|(c, _)| c == code).unwrap().1.clone();
        (self.procs.member(code).url.clone(), token)
    }

    fn admin_client(&self, code: &str) -> Client {
        let (url, token) = self.admin(code);
        Client::new(&url, Some(token), None).unwrap()
    }

    fn first_roster(&self) -> PathBuf {
        let config = &self.procs.member(&self.procs.members[0].code).config;
        Path::new(config).parent().unwrap().join("roster.toml")
    }

    async fn healthy(&self) {
        for m in &self.procs.members {
            wait_healthy(&m.url).await;
        }
    }

    /// `adi roster sign` at a member's node, for the proposal of `number` it holds.
    async fn sign(&self, code: &str, number: u64) -> String {
        let p = proposal_at(&self.admin_client(code), number).await;
        let (url, token) = self.admin(code);
        roster_cli(&url, &token, &["sign", p["hash"].as_str().unwrap()])
    }
}

/// A new member's node made with `adi init` on free loopback ports.
struct Newcomer {
    dir: PathBuf,
    config: String,
    url: String,
}

fn newcomer(root: &Path, code: &str, community: &str) -> Newcomer {
    let base = adi_node::setup::free_port_run(2).unwrap();
    let fed = format!("127.0.0.1:{base}");
    let api = format!("127.0.0.1:{}", base + 1);
    let dir = root.join(code.to_ascii_lowercase());
    let d = dir.to_string_lossy().into_owned();
    ok(&[
        "init",
        "--member",
        code,
        "--dir",
        &d,
        "--community",
        community,
        "--endpoint",
        &fed,
        "--federation-listen",
        &fed,
        "--api-listen",
        &api,
    ]);
    let config = dir.join("config.toml").to_string_lossy().into_owned();
    Newcomer { dir, config, url: format!("http://{api}") }
}

fn operator_of(config: &str, role: &str) -> String {
    ok(&["operator", "add", "--config", config, "--name", role, "--role", role]).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timor_leste_is_admitted_by_every_asean_signature_and_exchanges_a_flash_with_viet_nam() {
    let net = Net::start(&["PH", "VN", "MY", "CN"]);
    net.healthy().await;
    let clients: Vec<(&str, Client)> = ["PH", "VN", "MY", "CN"].iter().map(|c| (*c, net.admin_client(c))).collect();
    let first_hash = net.admin_client("VN").call(Method::GET, "/api/v1/roster", None).await.unwrap()["first_hash"]
        .as_str()
        .unwrap()
        .to_string();

    // Timor-Leste makes its keys and card, and hands the card to Viet Nam.
    let tl = newcomer(net.procs.dir.path(), "TL", "ASEAN");
    let card = tl.dir.join("card.json").to_string_lossy().into_owned();
    let (vn_url, vn_token) = net.admin("VN");
    let printed = roster_cli(&vn_url, &vn_token, &["propose", "--admit", &card]);
    assert!(printed.contains("version 2 proposed"), "{printed}");
    assert!(printed.contains("admits TL"), "{printed}");
    assert!(printed.contains("missing: MY, PH"), "{printed}");

    // The proposal reaches every node; China's signature would not count, and one ASEAN
    // signature short, nothing takes effect anywhere however long the nodes exchange.
    let printed = net.sign("PH", 2).await;
    assert!(printed.contains("missing: MY"), "{printed}");
    let at_cn = proposal_at(&net.admin_client("CN"), 2).await;
    assert!(at_cn["lacking"].as_str().unwrap().contains("missing: MY"), "{at_cn}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (code, c) in &clients {
        assert_eq!(roster_number(c).await, Some(1), "{code} applied a version one signature short");
    }

    // Malaysia signs: the version takes effect on every node, without a restart.
    let printed = net.sign("MY", 2).await;
    assert!(printed.contains("version 2 is in force"), "{printed}");
    all_at(&clients, 2).await;
    let audit = net.admin_client("CN").call(Method::GET, "/api/v1/audit", None).await.unwrap();
    let amended: Vec<&Value> = audit.as_array().unwrap().iter().filter(|a| a["action"] == "roster_amended").collect();
    assert_eq!(amended.len(), 1, "{audit}");
    assert!(amended[0]["detail"].as_str().unwrap().contains("admits TL"), "{audit}");

    // Timor-Leste takes the chain from Viet Nam, checks it against the network's identity, and
    // starts its node.
    let chain = tl.dir.join("chain.json").to_string_lossy().into_owned();
    roster_cli(&vn_url, &vn_token, &["chain", "--out", &chain]);
    let first = net.first_roster().to_string_lossy().into_owned();
    let printed =
        ok(&["roster", "join", "--config", &tl.config, "--first", &first, "--chain", &chain, "--network", &first_hash]);
    assert!(printed.contains("TL joins network"), "{printed}");
    let tl_duty = operator_of(&tl.config, "duty");
    let tl_principal = operator_of(&tl.config, "principal");
    let _tl: Proc = serve(&tl.config, &net.procs.dir.path().join("logs/TL.log"), "info");
    wait_healthy(&tl.url).await;
    let tl_client = Client::new(&tl.url, Some(tl_duty), None).unwrap();
    assert_eq!(roster_number(&tl_client).await, Some(2));

    // Viet Nam opens an ADMM line with Timor-Leste; a FLASH rings there and is acknowledged.
    let vn = net.procs.client("VN");
    let line =
        vn.call(Method::POST, "/api/v1/lines", Some(&json!({"members": ["VN", "TL"], "scope": "ADMM"}))).await.unwrap()
            ["id"]
            .as_str()
            .unwrap()
            .to_string();
    let body = json!({"precedence": "FLASH", "subject": "welcome", "body": "welcome to the hotline"});
    let sent = vn.call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&body)).await.unwrap();
    let id = sent["id"].as_str().unwrap().to_string();
    let there = eventually(WAIT, "the FLASH at Timor-Leste's node", || async {
        tl_client.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.ok()
    })
    .await;
    assert_eq!(there["sender"], "VN");
    assert_eq!(there["precedence"], "FLASH");
    tl_client.call(Method::POST, &format!("/api/v1/messages/{id}/ack"), Some(&json!({}))).await.unwrap();
    eventually(WAIT, "Timor-Leste's acknowledgement at Viet Nam", || async {
        let m = vn.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.ok()?;
        m["recipients"].as_array()?.iter().any(|r| r["member"] == "TL" && r["state"] == "acknowledged").then_some(())
    })
    .await;
    // And Timor-Leste answers with a FLASH, which its node holds until a principal releases it.
    let back = json!({"precedence": "FLASH", "subject": "thanks", "body": "received"});
    let draft = tl_client.call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&back)).await.unwrap();
    assert_eq!(draft["state"], "awaiting_release", "{draft}");
    let principal = Client::new(&tl.url, Some(tl_principal), None).unwrap();
    let released =
        principal.call(Method::POST, &format!("/api/v1/drafts/{}/release", draft["id"]), None).await.unwrap();
    let reply_id = released["id"].as_str().unwrap_or_else(|| panic!("{released}")).to_string();
    eventually(WAIT, "Timor-Leste's FLASH at Viet Nam's node", || async {
        vn.call(Method::GET, &format!("/api/v1/messages/{reply_id}"), None).await.ok()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_member_is_refused_and_a_stopped_node_applies_two_versions_in_order_on_return() {
    let mut net = Net::start(&["PH", "VN", "MY", "CN"]);
    net.healthy().await;
    // A line between Viet Nam and China, open before the suspension.
    let vn = net.procs.client("VN");
    let cn = net.procs.client("CN");
    let line = open_line(&vn, &["VN", "CN"], &[&cn]).await;
    // Two conferences with China: one Viet Nam is home to, one China is home to.
    let my = net.procs.client("MY");
    let vn_conference = open_line(&vn, &["VN", "MY", "CN"], &[&my, &vn]).await;
    let cn_conference = open_line(&cn, &["CN", "MY", "VN"], &[&my, &vn]).await;

    // China is suspended by every ASEAN member's signature (its own is not needed).
    let (vn_url, vn_token) = net.admin("VN");
    let printed = roster_cli(&vn_url, &vn_token, &["propose", "--suspend", "CN"]);
    assert!(printed.contains("suspends CN"), "{printed}");
    net.sign("PH", 2).await;
    let printed = net.sign("MY", 2).await;
    assert!(printed.contains("in force"), "{printed}");
    let running: Vec<(&str, Client)> = ["PH", "VN", "MY"].iter().map(|c| (*c, net.admin_client(c))).collect();
    all_at(&running, 2).await;

    // China's envelopes are refused from now on: its node cannot even reach Viet Nam's.
    let body = json!({"precedence": "FLASH", "subject": "after suspension", "body": "x"});
    let sent = cn.call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&body)).await.unwrap();
    let id = sent["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let m = cn.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.unwrap();
    assert_ne!(m["recipients"][0]["state"], "delivered", "{m}");
    assert!(vn.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.is_err());
    // Nor may a line be opened with it.
    let (status, refused) = vn
        .request(Method::POST, "/api/v1/lines", Some(&json!({"members": ["VN", "CN"], "scope": "ADMM-Plus"})))
        .await
        .unwrap();
    assert_eq!((status.as_u16(), refused["error"].as_str()), (403, Some("suspended")), "{refused}");
    // China is taken off the conference Viet Nam is home to. The one China is home to keeps it as
    // its home while it is suspended (no member changes there until China is reinstated or
    // removed), and still carries the others' messages.
    for (c, at) in [(&vn, "VN"), (&my, "MY")] {
        eventually(WAIT, &format!("China off Viet Nam's conference at {at}'s node"), || async {
            let v = c.call(Method::GET, &format!("/api/v1/lines/{vn_conference}"), None).await.ok()?;
            (v["members"] == json!(["MY", "VN"])).then_some(())
        })
        .await;
        let v = c.call(Method::GET, &format!("/api/v1/lines/{cn_conference}"), None).await.unwrap();
        assert_eq!(v["members"], json!(["CN", "MY", "VN"]), "at {at}: {v}");
    }
    let body = json!({"precedence": "IMMEDIATE", "subject": "while China is suspended", "body": "x"});
    let sent = vn.call(Method::POST, &format!("/api/v1/lines/{cn_conference}/messages"), Some(&body)).await.unwrap();
    let id = sent["id"].as_str().unwrap().to_string();
    eventually(WAIT, "Viet Nam's message at Malaysia's node", || async {
        my.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.ok()
    })
    .await;

    // The Philippines' node stops, and two amendments that need no signature of its pass: a
    // member's own entry needs only its own key. Viet Nam adds an endpoint (version 3), then
    // Malaysia (version 4).
    net.procs.kill("PH");
    let roster_now = net.admin_client("VN").call(Method::GET, "/api/v1/roster", None).await.unwrap();
    let mut file = roster_now["file"].clone();
    for m in file["members"].as_array_mut().unwrap() {
        if m["code"] == "VN" {
            let first = m["endpoints"][0].clone();
            m["endpoints"] = json!([first, "127.0.0.1:9"]);
        }
    }
    let v3 = net
        .admin_client("VN")
        .call(Method::POST, "/api/v1/roster/proposals", Some(&json!({ "roster": file })))
        .await
        .unwrap();
    assert_eq!(v3["state"], "in_force", "{v3}");
    for m in file["members"].as_array_mut().unwrap() {
        if m["code"] == "MY" {
            let first = m["endpoints"][0].clone();
            m["endpoints"] = json!([first, "127.0.0.1:9"]);
        }
    }
    eventually(WAIT, "version 3 at Malaysia's node", || async {
        (roster_number(&net.admin_client("MY")).await == Some(3)).then_some(())
    })
    .await;
    let v4 = net
        .admin_client("MY")
        .call(Method::POST, "/api/v1/roster/proposals", Some(&json!({ "roster": file })))
        .await
        .unwrap();
    assert_eq!(v4["state"], "in_force", "{v4}");
    let running: Vec<(&str, Client)> = ["VN", "MY"].iter().map(|c| (*c, net.admin_client(c))).collect();
    all_at(&running, 4).await;

    // The Philippines' node comes back and applies versions 3 and 4, in order.
    net.procs.start("PH");
    wait_healthy(&net.procs.member("PH").url).await;
    let ph = net.admin_client("PH");
    all_at(&[("PH", ph.clone())], 4).await;
    let audit = ph.call(Method::GET, "/api/v1/audit", None).await.unwrap();
    let applied: Vec<String> = audit
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .filter(|a| a["action"] == "roster_amended")
        .map(|a| a["detail"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(applied.len(), 3, "{applied:?}");
    for (i, detail) in applied.iter().enumerate() {
        assert!(detail.starts_with(&format!("roster version {} ", i + 2)), "{applied:?}");
    }
    assert!(applied[1].contains("changes VN's entry"), "{applied:?}");
    assert!(applied[2].contains("changes MY's entry"), "{applied:?}");
    // China, suspended, is still refused there.
    let roster = ph.call(Method::GET, "/api/v1/roster", None).await.unwrap();
    let cn_entry = roster["members"].as_array().unwrap().iter().find(|m| m["code"] == "CN").unwrap().clone();
    assert_eq!(cn_entry["suspended"], true);
}

/// `adi demo --admit TL` shows the whole admission in one command: the demo network runs, and
/// Timor-Leste is admitted, joins and acknowledges a FLASH from Viet Nam.
#[test]
fn the_demo_admits_timor_leste_in_one_command() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let base = adi_node::setup::free_port_run(10).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_adi"))
        .args(["demo", "--members", "PH,VN,MY,CN", "--admit", "TL", "--no-scenario", "--base-port"])
        .arg(base.to_string())
        .arg("--state")
        .arg(dir.path().join("net"))
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !seen.iter().any(|l: &String| l.contains("[6/6]") || l.contains("admission failed")) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = seen.join("\n");
    assert!(text.contains("[4/6] version 2 is in force on all 4 nodes, without a restart"), "{text}");
    assert!(text.contains("[6/6] VN opened an ADMM line to TL; a FLASH rang there in"), "{text}");
    assert!(text.contains("TL acknowledged it"), "{text}");
    // Timor-Leste is in the demo's state for the next run.
    let demo: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("net/demo.json")).unwrap()).unwrap();
    assert!(demo["members"].as_array().unwrap().iter().any(|m| m["code"] == "TL"), "{demo}");
}

/// A member removed by a roster version: its past messages stay in the record, and the line's
/// export verifies offline anchored on the network's identity alone, the bundle carrying the
/// roster's chain; a chain altered, or another identity, fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_members_past_record_verifies_anchored_on_the_networks_identity() {
    let net = Net::start(&["PH", "VN", "MY", "CN"]);
    net.healthy().await;
    let vn = net.procs.client("VN");
    let cn = net.procs.client("CN");
    let line = open_line(&vn, &["VN", "MY", "CN"], &[&cn]).await;
    let cn_line = open_line(&cn, &["CN", "MY", "VN"], &[&vn]).await;
    let body = json!({"precedence": "PRIORITY", "subject": "before removal", "body": "China's last word"});
    let said = cn.call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&body)).await.unwrap();
    let id = said["id"].as_str().unwrap().to_string();
    eventually(WAIT, "China's message at Viet Nam's node", || async {
        vn.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.ok()
    })
    .await;

    let (vn_url, vn_token) = net.admin("VN");
    roster_cli(&vn_url, &vn_token, &["propose", "--remove", "CN"]);
    net.sign("PH", 2).await;
    net.sign("MY", 2).await;
    let running: Vec<(&str, Client)> = ["PH", "VN", "MY"].iter().map(|c| (*c, net.admin_client(c))).collect();
    all_at(&running, 2).await;
    eventually(WAIT, "China off the conference", || async {
        let v = vn.call(Method::GET, &format!("/api/v1/lines/{line}"), None).await.ok()?;
        (v["members"] == json!(["MY", "VN"])).then_some(())
    })
    .await;
    // China's own conference is re-homed by the roster's rule to Malaysia, the first member by
    // code in good standing, which takes China off it; it carries Viet Nam's message to Malaysia.
    let my = net.procs.client("MY");
    for (c, at) in [(&vn, "VN"), (&my, "MY")] {
        eventually(WAIT, &format!("China off its own conference at {at}'s node"), || async {
            let v = c.call(Method::GET, &format!("/api/v1/lines/{cn_line}"), None).await.ok()?;
            (v["members"] == json!(["MY", "VN"])).then_some(())
        })
        .await;
    }
    let body = json!({"precedence": "IMMEDIATE", "subject": "without China", "body": "x"});
    let sent = vn.call(Method::POST, &format!("/api/v1/lines/{cn_line}/messages"), Some(&body)).await.unwrap();
    let sent_id = sent["id"].as_str().unwrap().to_string();
    eventually(WAIT, "Viet Nam's message at Malaysia's node", || async {
        my.call(Method::GET, &format!("/api/v1/messages/{sent_id}"), None).await.ok()
    })
    .await;

    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("line.json").to_string_lossy().into_owned();
    ok(&["export", "--url", &vn_url, "--token", &net.procs.member("VN").token, "--line", &line, "--out", &bundle]);
    let identity = net.admin_client("VN").call(Method::GET, "/api/v1/roster", None).await.unwrap()["first_hash"]
        .as_str()
        .unwrap()
        .to_string();
    let printed = ok(&["verify", &bundle, "--network", &identity]);
    assert!(printed.contains(&format!("ok    anchor: network {identity}, roster version 2")), "{printed}");
    assert!(printed.contains("verified:"), "{printed}");
    assert!(printed.contains("China's last word") || printed.contains("before removal"), "{printed}");
    // The configuration of any member's node anchors it the same way: its roster file is the
    // first version.
    let printed = ok(&["verify", &bundle, "--config", &net.procs.member("PH").config]);
    assert!(printed.contains("roster version 2"), "{printed}");

    // Another identity, or a chain altered (China put back in version 2), fails.
    let other = "00".repeat(32);
    let out = adi(&["verify", &bundle, "--network", &other]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not the network's identity"));
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    let first_members = doc["roster_chain"]["first"]["members"].clone();
    doc["roster_chain"]["versions"][0]["roster"]["members"] = first_members;
    let altered = dir.path().join("altered.json");
    std::fs::write(&altered, serde_json::to_string(&doc).unwrap()).unwrap();
    let out = adi(&["verify", altered.to_str().unwrap(), "--network", &identity]);
    assert!(!out.status.success());
    let why = String::from_utf8_lossy(&out.stderr);
    assert!(why.contains("roster version 2 of the bundle's chain is refused"), "{why}");
}

/// The files beside a member's key files that hold its next keys while a rotation is under way.
fn next_key_files(net: &Net, code: &str) -> Vec<PathBuf> {
    let keys = Path::new(&net.procs.member(code).config).parent().unwrap().join("keys");
    ["signing.pem.next", "node.crt.next", "node.key.next"].iter().map(|f| keys.join(f)).collect()
}

/// A member's signing key as the roster in force at a node gives it.
async fn key_in_force(c: &Client, code: &str) -> String {
    let v = c.call(Method::GET, "/api/v1/roster", None).await.unwrap();
    let m = v["members"].as_array().unwrap().iter().find(|m| m["code"] == code).unwrap().clone();
    m["signing_key"].as_str().unwrap().to_string()
}

/// Waits until a member's node has moved to its rotated keys: the next key files moved into
/// place.
async fn moved(net: &Net, code: &str) {
    let files = next_key_files(net, code);
    eventually(WAIT, &format!("{code}'s node to move to its rotated keys"), || async {
        files.iter().all(|f| !f.exists()).then_some(())
    })
    .await;
    // The files move first; the rotation is over once the node has committed its move too.
    let admin = net.admin_client(code);
    eventually(WAIT, &format!("{code}'s node to end its rotation"), || async {
        let shown = admin.call(Method::GET, "/api/v1/roster", None).await.ok()?;
        shown["rotation"].is_null().then_some(())
    })
    .await;
}

/// Alarms a node raised of the kinds that would mean a rotation broke a line or was taken for an
/// attack.
async fn broken_line_alarms(c: &Client) -> Vec<Value> {
    let v = c.call(Method::GET, "/api/v1/alarms", None).await.unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "undecryptable" || a["kind"] == "misconduct" || a["kind"] == "tamper")
        .cloned()
        .collect()
}

/// Sends `n` ROUTINE messages on a line from two concurrent tasks, counting them in `accepted`
/// as the node accepts them; returns the ids accepted.
async fn stream(c: &Client, line: &str, n: usize, tag: &str, accepted: Arc<AtomicUsize>) -> Vec<String> {
    let mut tasks = Vec::new();
    const SENDERS: usize = 2;
    for s in 0..SENDERS {
        let (c, line, tag, accepted) = (c.clone(), line.to_string(), tag.to_string(), accepted.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..n / SENDERS {
                let body = json!({"precedence": "ROUTINE", "subject": format!("{tag} {s}/{i}"), "body": "x"});
                let v = c.call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&body)).await.unwrap();
                ids.push(v["id"].as_str().unwrap().to_string());
                accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            ids
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotated_while_1000_messages_flow_loses_and_duplicates_nothing_and_the_record_verifies_across_it() {
    let net = Net::start(&["PH", "CN", "VN"]);
    net.healthy().await;
    let (ph, cn, vn) = (net.procs.client("PH"), net.procs.client("CN"), net.procs.client("VN"));
    let direct = open_line(&ph, &["PH", "CN"], &[&cn]).await;
    // A conference Viet Nam sequences: China's leaf there moves by a proposal Viet Nam commits.
    let conference = open_line(&vn, &["VN", "PH", "CN"], &[&cn, &ph]).await;
    let old_key = key_in_force(&ph, "CN").await;

    // 1,000 messages: 500 from China, whose key rotates, and 500 to it.
    let accepted = Arc::new(AtomicUsize::new(0));
    let from_cn = tokio::spawn({
        let (cn, direct, accepted) = (cn.clone(), direct.clone(), accepted.clone());
        async move { stream(&cn, &direct, 500, "from China", accepted).await }
    });
    let from_ph = tokio::spawn({
        let (ph, direct, accepted) = (ph.clone(), direct.clone(), accepted.clone());
        async move { stream(&ph, &direct, 500, "to China", accepted).await }
    });
    eventually(WAIT, "200 messages accepted", || async {
        (accepted.load(std::sync::atomic::Ordering::SeqCst) >= 200).then_some(())
    })
    .await;
    let (cn_url, cn_token) = net.admin("CN");
    let printed = roster_cli(&cn_url, &cn_token, &["rotate"]);
    assert!(printed.contains("version 2 is in force"), "{printed}");
    assert!(printed.contains("gives CN a new signing key"), "{printed}");
    let rotated_at = accepted.load(std::sync::atomic::Ordering::SeqCst);
    let clients: Vec<(&str, Client)> = ["PH", "CN", "VN"].iter().map(|c| (*c, net.admin_client(c))).collect();
    all_at(&clients, 2).await;
    moved(&net, "CN").await;
    let moved_at = accepted.load(std::sync::atomic::Ordering::SeqCst);
    let from_cn = from_cn.await.unwrap();
    let from_ph = from_ph.await.unwrap();
    assert!(rotated_at < 1000 && moved_at < 1000, "the rotation fell outside the stream ({rotated_at}, {moved_at})");

    // Nothing lost, nothing twice, in each sender's order; no line broke.
    support::check_exactly_once_in_order_both_ways(("CN", &cn, &from_cn), ("PH", &ph, &from_ph), &direct).await;
    let new_key = key_in_force(&vn, "CN").await;
    assert_ne!(new_key, old_key);
    // China writes on the conference under its new key, and both others read it.
    let body = json!({"precedence": "IMMEDIATE", "subject": "after rotation", "body": "new key"});
    let said = cn.call(Method::POST, &format!("/api/v1/lines/{conference}/messages"), Some(&body)).await.unwrap();
    let id = said["id"].as_str().unwrap().to_string();
    for (c, at) in [(&ph, "PH"), (&vn, "VN")] {
        eventually(WAIT, &format!("China's message under its new key at {at}"), || async {
            c.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.ok()
        })
        .await;
    }
    for (code, c) in [("PH", &ph), ("CN", &cn), ("VN", &vn)] {
        let alarms = broken_line_alarms(c).await;
        assert!(alarms.is_empty(), "{code}: {alarms:?}");
    }

    // The record of the direct line spans the rotation and verifies, anchored on the network's
    // identity: China's envelopes under its old key and under its new one.
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("line.json").to_string_lossy().into_owned();
    let (ph_url, ph_token) = net.admin("PH");
    ok(&["export", "--url", &ph_url, "--token", &ph_token, "--line", &direct, "--out", &bundle]);
    let identity =
        ph.call(Method::GET, "/api/v1/roster", None).await.unwrap()["first_hash"].as_str().unwrap().to_string();
    let printed = ok(&["verify", &bundle, "--network", &identity]);
    assert!(printed.contains(&format!("ok    anchor: network {identity}, roster version 2")), "{printed}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    let key = |k: &str| ed25519_dalek::VerifyingKey::from_bytes(&hex::decode(k).unwrap().try_into().unwrap()).unwrap();
    let signed_under = |k: &ed25519_dalek::VerifyingKey| {
        doc["envelopes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| {
                let bytes = hex::decode(e["bytes"].as_str()?).ok()?;
                let env = adi_wire::Envelope::decode(&bytes, usize::MAX, usize::MAX).ok()?;
                (env.body().sender == "CN" && env.verify(k).is_ok()).then_some(())
            })
            .count()
    };
    let (under_old, under_new) = (signed_under(&key(&old_key)), signed_under(&key(&new_key)));
    assert!(under_old > 0 && under_new > 0, "the bundle does not span the rotation ({under_old}, {under_new})");

    // China's node starts again with its new keys; a rotation under way is refused meanwhile only.
    let printed = roster_cli(&cn_url, &cn_token, &["rotate"]);
    assert!(printed.contains("version 3 is in force"), "{printed}");
    all_at(&clients, 3).await;
    moved(&net, "CN").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_mid_rotation_moves_to_its_new_keys_once_every_peer_holds_them() {
    let mut net = Net::start(&["PH", "CN", "VN"]);
    net.healthy().await;
    let (ph, vn) = (net.procs.client("PH"), net.procs.client("VN"));
    let cn = net.procs.client("CN");
    let line = open_line(&vn, &["VN", "CN"], &[&cn]).await;
    net.procs.kill("VN");

    // China rotates while Viet Nam's node is down: the version is in force at China and the
    // Philippines, but China keeps its old keys until Viet Nam holds it too.
    let (cn_url, cn_token) = net.admin("CN");
    roster_cli(&cn_url, &cn_token, &["rotate"]);
    all_at(&[("PH", net.admin_client("PH")), ("CN", net.admin_client("CN"))], 2).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(next_key_files(&net, "CN").iter().all(|f| f.exists()), "China moved before Viet Nam held the version");
    let printed = roster_cli(&cn_url, &cn_token, &["show"]);
    let under_way = "key rotation under way (version 2): the node moves to its new keys once every peer's node \
                     holds that version; still waiting for: VN";
    assert!(printed.contains(under_way), "{printed}");
    let body = json!({"precedence": "PRIORITY", "subject": "old key", "body": "while Viet Nam is down"});
    let sent = cn.call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&body)).await.unwrap();
    let before = sent["id"].as_str().unwrap().to_string();

    // China's node restarts mid-rotation, with its old keys and the next ones beside them.
    net.procs.kill("CN");
    net.procs.start("CN");
    wait_healthy(&net.procs.member("CN").url).await;
    assert!(next_key_files(&net, "CN").iter().all(|f| f.exists()));

    // Viet Nam comes back, takes the version, and China moves; the line carries both ways.
    net.procs.start("VN");
    wait_healthy(&net.procs.member("VN").url).await;
    moved(&net, "CN").await;
    let shown = net.admin_client("CN").call(Method::GET, "/api/v1/roster", None).await.unwrap();
    assert!(shown["rotation"].is_null(), "{shown}");
    let cn = net.procs.client("CN");
    let vn = net.procs.client("VN");
    let body = json!({"precedence": "PRIORITY", "subject": "new key", "body": "after the move"});
    let after = cn.call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&body)).await.unwrap();
    let after = after["id"].as_str().unwrap().to_string();
    let body = json!({"precedence": "PRIORITY", "subject": "answer", "body": "to China's new key"});
    let answer = vn.call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&body)).await.unwrap();
    let answer = answer["id"].as_str().unwrap().to_string();
    for (c, id) in [(&vn, &before), (&vn, &after), (&cn, &answer)] {
        eventually(WAIT, "the messages across the rotation", || async {
            c.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.ok()
        })
        .await;
    }
    for (code, c) in [("PH", &ph), ("CN", &cn), ("VN", &vn)] {
        let alarms = broken_line_alarms(c).await;
        assert!(alarms.is_empty(), "{code}: {alarms:?}");
    }
}
