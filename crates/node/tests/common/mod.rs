//! A network of real nodes in this test process: real mutual TLS on loopback, real SQLite files.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use adi_node::client::Client;
use adi_node::config::{ConfigFile, DisciplineSection};
use adi_node::setup::{self, DemoState};
use adi_node::{Node, NodeConfig};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

/// Finds `n` consecutive free ports on loopback and returns the first.
pub fn free_ports(n: u16) -> u16 {
    setup::free_port_run(n).expect("free loopback ports")
}

pub struct Net {
    pub dir: tempfile::TempDir,
    pub state: DemoState,
    pub nodes: Vec<Option<Node>>,
}

impl Net {
    /// Writes a network's state for these members without starting it, with the demo's
    /// discipline but no link tests, so that only the test's own traffic flows.
    pub fn init(codes: &[&str]) -> Net {
        Net::init_with(codes, |d| d.link_test_interval_s = 0)
    }

    /// Like [`Net::init`], with each member's discipline set by `discipline`.
    pub fn init_with(codes: &[&str], discipline: impl Fn(&mut DisciplineSection)) -> Net {
        let dir = tempfile::tempdir().unwrap();
        let base = free_ports(2 * codes.len() as u16);
        let codes: Vec<String> = codes.iter().map(|c| c.to_string()).collect();
        let state = setup::demo_init(dir.path(), &codes, base, |_, _| {}).unwrap();
        for m in &state.members {
            let mut file: ConfigFile = toml::from_str(&std::fs::read_to_string(&m.config).unwrap()).unwrap();
            discipline(&mut file.discipline);
            std::fs::write(&m.config, toml::to_string_pretty(&file).unwrap()).unwrap();
        }
        let nodes = codes.iter().map(|_| None).collect();
        Net { dir, state, nodes }
    }

    /// Writes and starts a network with each member's discipline set by `discipline`.
    pub async fn start_with(codes: &[&str], discipline: impl Fn(&mut DisciplineSection)) -> Net {
        let mut net = Net::init_with(codes, discipline);
        for i in 0..codes.len() {
            net.start_node(i).await;
        }
        net
    }

    /// Writes and starts a network.
    pub async fn start(codes: &[&str]) -> Net {
        let mut net = Net::init(codes);
        for i in 0..codes.len() {
            net.start_node(i).await;
        }
        net
    }

    pub fn index(&self, code: &str) -> usize {
        self.state.members.iter().position(|m| m.code == code).unwrap_or_else(|| panic!("no member {code}"))
    }

    pub fn config_path(&self, code: &str) -> PathBuf {
        PathBuf::from(&self.state.members[self.index(code)].config)
    }

    pub fn member_dir(&self, code: &str) -> PathBuf {
        self.dir.path().join(code)
    }

    pub async fn start_node(&mut self, i: usize) {
        let config = NodeConfig::load(Path::new(&self.state.members[i].config)).unwrap();
        self.nodes[i] = Some(Node::start(config).await.unwrap());
    }

    pub async fn start_code(&mut self, code: &str) {
        self.start_node(self.index(code)).await;
    }

    pub async fn stop_code(&mut self, code: &str) {
        let i = self.index(code);
        if let Some(n) = self.nodes[i].take() {
            n.stop().await;
        }
    }

    pub fn node(&self, code: &str) -> &Node {
        self.nodes[self.index(code)].as_ref().expect("node running")
    }

    pub fn client(&self, code: &str) -> Client {
        let m = &self.state.members[self.index(code)];
        Client::new(&m.api_url, Some(m.token.clone()), None).unwrap()
    }

    pub async fn stop_all(mut self) {
        for n in self.nodes.iter_mut() {
            if let Some(n) = n.take() {
                n.stop().await;
            }
        }
    }
}

/// A ROUTINE operational message with no answer required, as a test seals it by hand.
pub fn routine_payload(caveat: &str, subject: &str) -> adi_wire::payload::PayloadV1 {
    adi_wire::payload::PayloadV1::Message {
        v: 1,
        precedence: "ROUTINE".into(),
        class: "OPERATIONAL".into(),
        caveat: caveat.into(),
        subject: subject.into(),
        body: "b".into(),
        ack_required: false,
        crisis: false,
        deadline_s: None,
        released_by: None,
        form: None,
        ewg: None,
        attachments: Vec::new(),
    }
}

/// Sets limits in `member`'s configuration before its node starts.
pub fn set_limits(net: &Net, member: &str, change: impl Fn(&mut adi_node::config::LimitsSection)) {
    let path = net.config_path(member);
    let mut file: ConfigFile = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    change(&mut file.limits);
    std::fs::write(&path, toml::to_string_pretty(&file).unwrap()).unwrap();
}

/// Opens a line from `from`'s node and returns its id.
pub async fn open_line(c: &Client, members: &[&str], scope: &str) -> String {
    let v = c.call(Method::POST, "/api/v1/lines", Some(&json!({"members": members, "scope": scope}))).await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

/// Sends a message and returns its id.
pub async fn send(c: &Client, line: &str, precedence: &str, subject: &str) -> String {
    let body = json!({"precedence": precedence, "subject": subject, "body": format!("body of {subject}")});
    let v = c.call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&body)).await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

/// Waits until every recipient of a message is `delivered`; returns the message.
pub async fn wait_delivered(c: &Client, id: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let m = c.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.unwrap();
        let all = m["recipients"].as_array().unwrap().iter().all(|r| r["state"] == "delivered");
        if all {
            return m;
        }
        assert!(Instant::now() < deadline, "message {id} not delivered in {within:?}: {m}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `f` until it returns `Some`, or fails after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// GET a JSON list and return it.
pub async fn get_list(c: &Client, path: &str) -> Vec<Value> {
    let (status, v) = c.request(Method::GET, path, None).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{path}: {v}");
    v.as_array().cloned().unwrap_or_default()
}

/// The open `misconduct` alarms at a node naming `member`.
pub async fn misconduct(net: &Net, at: &str, member: &str) -> Vec<Value> {
    get_list(&net.client(at), "/api/v1/alarms")
        .await
        .into_iter()
        .filter(|a| a["kind"] == "misconduct" && a["member"] == member)
        .collect()
}

/// A member's real keys, loaded from its node's files: its signing key, and a TLS client that
/// presents its node certificate to `to`.
pub struct Keys {
    pub signing: ed25519_dalek::SigningKey,
    pub tls: std::sync::Arc<rustls::ClientConfig>,
}

pub fn keys_towards(net: &Net, from: &str, to: &str) -> Keys {
    let dir = net.member_dir(from);
    let signing = adi_node::config::load_signing_key(&dir.join("keys/signing.pem")).unwrap();
    let (cert, key) = adi_node::tls::load_identity(&dir.join("keys/node.crt"), &dir.join("keys/node.key")).unwrap();
    let tls = adi_node::tls::federation_client_config(cert, key, pin_of(net, to)).unwrap();
    Keys { signing, tls: std::sync::Arc::new(tls) }
}

/// The roster pin of a member's node key.
pub fn pin_of(net: &Net, code: &str) -> [u8; 32] {
    let dir = net.member_dir(code);
    let (cert, _) = adi_node::tls::load_identity(&dir.join("keys/node.crt"), &dir.join("keys/node.key")).unwrap();
    adi_node::tls::spki_pin(&cert).unwrap()
}

/// A running member's first federation address.
pub fn endpoint(net: &Net, code: &str) -> String {
    net.node(code).federation_addrs[0].to_string()
}

/// A stored envelope from a node's API: its JSON view and its exact signed bytes.
pub async fn envelope(c: &Client, id: &str) -> (Value, Vec<u8>) {
    use base64::Engine;
    let e = c.call(Method::GET, &format!("/api/v1/envelopes/{id}"), None).await.unwrap();
    let bytes = base64::engine::general_purpose::STANDARD.decode(e["bytes_base64"].as_str().unwrap()).unwrap();
    (e, bytes)
}

/// PH's and CN's nodes with a line between them (opened by CN), each member's discipline set by
/// `discipline` and PH's limits by `limits`, and a duty officer `watch-ph` with `password` on PH's
/// console; returns the network, the line and the console's address.
pub async fn console_pair(
    discipline: impl Fn(&mut DisciplineSection),
    limits: impl Fn(&mut adi_node::config::LimitsSection),
    password: &str,
) -> (Net, String, String) {
    let mut net = Net::init_with(&["PH", "CN"], discipline);
    set_limits(&net, "PH", limits);
    net.start_code("PH").await;
    net.start_code("CN").await;
    let line = open_line(&net.client("CN"), &["PH", "CN"], "ADMM-Plus").await;
    let store = &*net.node("PH").state.store;
    setup::add_operator(store, "watch-ph", "duty").unwrap();
    setup::set_password(store, "watch-ph", password).unwrap();
    let console = format!("http://{}/console", net.node("PH").api_addr);
    (net, line, console)
}
