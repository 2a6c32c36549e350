//! Targets for a running node's two HTTP boundaries, called in process through their routers
//! (`tower::ServiceExt::oneshot`), without a socket: the operator API's request bodies, and the
//! federation listener's batch and checkpoint offer bodies from a pinned peer.
//!
//! The node is PH of a real two-member network (PH and CN, SQLite stores in a temporary folder,
//! both members signing with the core fixtures' keys so that seeds signed by the fixtures verify
//! here too). PH holds a direct line with CN, a message from CN and a decision CN proposed; CN is
//! then stopped, so that nothing a request does reaches another node. It is started on first use
//! and shared by both targets until [`stop_node`].

use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adi_core::MemberCode;
use adi_node::config::ConfigFile;
use adi_node::fed::checkpoints::{CheckpointAnswer, CheckpointOffer};
use adi_node::fed::listener::Peer;
use adi_node::fed::{BATCH_PATH, CHECKPOINT_PATH};
use adi_node::{setup, Node, NodeConfig, NodeState};
use adi_wire::batch::{decode_batch, BatchReply};
use adi_wire::files::RosterFile;
use axum::body::{Body, Bytes};
use axum::http::{header, Method, Request, StatusCode};
use axum::{Extension, Router};
use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, EncodePrivateKey};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::formats::member_key;

/// The API's POST routes that read a JSON body, with the fixture's ids in place of the path
/// parameters. A target input's first byte picks one (modulo their number).
pub(crate) const API_ROUTES: [&str; 11] = [
    "/api/v1/lines",
    "/api/v1/lines/{line}/messages",
    "/api/v1/lines/{line}/members",
    "/api/v1/lines/{line}/decisions",
    "/api/v1/decisions/{decision}/concur",
    "/api/v1/decisions/{decision}/decline",
    "/api/v1/messages/{message}/seen",
    "/api/v1/messages/{message}/ack",
    "/api/v1/messages/{message}/decline",
    "/api/v1/messages/{message}/translations",
    "/console/sign-in",
];

/// The federation routes that read a body: a target input's first byte picks one (even: a batch,
/// odd: a checkpoint offer).
pub(crate) const FEDERATION_ROUTES: [&str; 2] = [BATCH_PATH, CHECKPOINT_PATH];

/// How long the fixture waits for its own traffic between PH and CN.
const SETUP_WAIT: Duration = Duration::from_secs(30);

struct NodeWorld {
    runtime: tokio::runtime::Runtime,
    ph: Node,
    api: Router,
    federation: Router,
    /// An administrator's token on PH: every role's routes are open to it.
    token: String,
    line: String,
    message: String,
    decision: String,
    dir: tempfile::TempDir,
}

static NODE: Mutex<Option<NodeWorld>> = Mutex::new(None);

/// Runs `f` with the running node, starting it first if needed.
fn with_node<T>(f: impl FnOnce(&NodeWorld) -> T) -> T {
    let mut guard = NODE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let world = guard.get_or_insert_with(NodeWorld::start);
    f(world)
}

/// Stops the node the API and federation targets share and deletes its files. A later call of
/// either target starts a new one.
pub fn stop_node() {
    let world = NODE.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
    if let Some(NodeWorld { runtime, ph, api, federation, dir, .. }) = world {
        drop(api);
        drop(federation);
        runtime.block_on(ph.stop());
        drop(runtime);
        drop(dir);
    }
}

fn code(s: &str) -> MemberCode {
    MemberCode::parse(s).expect("a fixture member code")
}

/// Sends one request through a router; returns the status and the body.
async fn send(
    app: &Router,
    method: Method,
    path: &str,
    token: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, Bytes) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .expect("a well-formed request");
    let response = app.clone().oneshot(request).await.expect("a router answers every request");
    let status = response.status();
    let bytes = response.into_body().collect().await.expect("a response body").to_bytes();
    (status, bytes)
}

/// Sends a JSON request during set-up and expects `want`; returns the answer.
async fn expect(app: &Router, method: Method, path: &str, token: &str, body: Option<Value>, want: StatusCode) -> Value {
    let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let (status, bytes) = send(app, method.clone(), path, token, "application/json", body).await;
    assert_eq!(status, want, "fixture request {method} {path}: {}", String::from_utf8_lossy(&bytes));
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

/// Polls a GET until it answers 200.
async fn wait_for(app: &Router, path: &str, token: &str) {
    let deadline = Instant::now() + SETUP_WAIT;
    loop {
        let (status, _) = send(app, Method::GET, path, token, "application/json", Vec::new()).await;
        if status == StatusCode::OK {
            return;
        }
        assert!(Instant::now() < deadline, "the fixture network did not deliver {path} within {SETUP_WAIT:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The id a creating request answered with.
fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id in the answer").to_string()
}

/// Gives every member of a demo network its core fixture key, in its key file and in every copy
/// of the roster, and turns off the timers that would send traffic of their own.
fn prepare(state: &Path, demo: &setup::DemoState) {
    let roster_path = state.join("roster.toml");
    let text = fs::read_to_string(&roster_path).expect("the demo roster");
    let mut roster = RosterFile::from_toml(&text).expect("the demo roster parses");
    for m in &mut roster.members {
        let key = member_key(&m.code).expect("a demo member of the fixture world");
        m.signing_key = hex::encode(key.verifying_key().as_bytes());
    }
    let text = roster.to_toml();
    fs::write(&roster_path, &text).expect("the roster is written");
    for member in &demo.members {
        let config_path = Path::new(&member.config);
        let dir = config_path.parent().expect("a member folder");
        fs::write(dir.join("roster.toml"), &text).expect("the member's roster is written");
        let key = member_key(&member.code).expect("a demo member of the fixture world");
        let pem = key.to_pkcs8_pem(LineEnding::LF).expect("the key encodes");
        setup::write_private(&dir.join("keys/signing.pem"), pem.as_bytes()).expect("the key is written");
        let mut file: ConfigFile =
            toml::from_str(&fs::read_to_string(config_path).expect("the config")).expect("the config parses");
        file.discipline.link_test_interval_s = 0;
        file.discipline.checkpoint_interval_s = 0;
        fs::write(config_path, toml::to_string_pretty(&file).expect("the config serialises"))
            .expect("the config is written");
    }
}

impl NodeWorld {
    fn start() -> NodeWorld {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let codes = ["PH".to_string(), "CN".to_string()];
        let base = setup::free_port_run(2 * codes.len() as u16).expect("free loopback ports");
        let demo = setup::demo_init(dir.path(), &codes, base, |_, _| {}).expect("a demo network");
        prepare(dir.path(), &demo);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let load = |i: usize| NodeConfig::load(Path::new(&demo.members[i].config)).expect("a demo config loads");
        let (ph, cn) = runtime.block_on(async {
            let ph = Node::start(load(0)).await.expect("PH starts");
            let cn = Node::start(load(1)).await.expect("CN starts");
            (ph, cn)
        });
        // Outside the runtime: adding an operator waits for the store's commit.
        let token = setup::add_operator(&*ph.state.store, "fuzz-admin", "admin").expect("an operator");
        let cn_token = demo.members[1].token.clone();
        let (ph_api, cn_api) = (adi_node::http::router(ph.state.clone()), adi_node::http::router(cn.state.clone()));
        let (line, message, decision) = runtime.block_on(async {
            let new_line = json!({"members": ["PH", "CN"], "scope": "ADMM-Plus"});
            let line =
                id(&expect(&ph_api, Method::POST, "/api/v1/lines", &token, Some(new_line), StatusCode::CREATED).await);
            wait_for(&cn_api, &format!("/api/v1/lines/{line}"), &cn_token).await;
            let text = json!({"precedence": "ROUTINE", "subject": "Fixture", "body": "A message for PH to answer."});
            let path = format!("/api/v1/lines/{line}/messages");
            let message = id(&expect(&cn_api, Method::POST, &path, &cn_token, Some(text), StatusCode::CREATED).await);
            let proposal = json!({"text": "Both sides keep the line open through the exercise."});
            let path = format!("/api/v1/lines/{line}/decisions");
            let decision =
                id(&expect(&cn_api, Method::POST, &path, &cn_token, Some(proposal), StatusCode::CREATED).await);
            wait_for(&ph_api, &format!("/api/v1/messages/{message}"), &token).await;
            wait_for(&ph_api, &format!("/api/v1/decisions/{decision}"), &token).await;
            cn.stop().await;
            (line, message, decision)
        });
        drop(cn_api);
        let federation = adi_node::fed::listener::router(ph.state.clone()).layer(Extension(Peer(code("CN"))));
        NodeWorld { runtime, ph, api: ph_api, federation, token, line, message, decision, dir }
    }

    fn state(&self) -> &Arc<NodeState> {
        &self.ph.state
    }

    fn post(&self, app: &Router, path: &str, content_type: &str, body: &[u8]) -> (StatusCode, Bytes) {
        self.runtime.block_on(send(app, Method::POST, path, &self.token, content_type, body.to_vec()))
    }
}

/// Asserts that a refusal has the API's error shape: `{"error", "message"}`, and `field` when one
/// field is at fault, and nothing else.
fn assert_error_shape(path: &str, status: StatusCode, bytes: &[u8]) {
    let body: Value = serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("{path} answered {status} with a body that is not JSON ({e})"));
    let fields = body.as_object().map(|o| o.len());
    let error = body.get("error").and_then(Value::as_str);
    let message = body.get("message").and_then(Value::as_str);
    let field = match body.get("field") {
        None => Some(2),
        Some(Value::String(f)) if !f.is_empty() => Some(3),
        Some(_) => None,
    };
    assert!(
        fields.is_some() && fields == field && error.is_some() && message.is_some_and(|m| !m.trim().is_empty()),
        "{path} answered {status} with a body not in the error shape: {body}"
    );
}

/// The bytes as the JSON body of a POST to the operator API of a running node, through its
/// router, with an administrator's token. The first byte picks the route from [`API_ROUTES`].
///
/// Asserts: no request makes the node fail (500), a success answers JSON, and a refusal has the
/// API's error shape.
pub fn api(data: &[u8]) {
    let (selector, body) = data.split_first().map_or((0, data), |(s, rest)| (*s, rest));
    with_node(|w| {
        let path = API_ROUTES[usize::from(selector) % API_ROUTES.len()]
            .replace("{line}", &w.line)
            .replace("{message}", &w.message)
            .replace("{decision}", &w.decision);
        let (status, bytes) = w.post(&w.api, &path, "application/json", body);
        assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path} failed: {}", String::from_utf8_lossy(&bytes));
        if status.is_success() {
            assert!(serde_json::from_slice::<Value>(&bytes).is_ok(), "{path} answered {status} without JSON");
        } else {
            assert_error_shape(&path, status, &bytes);
        }
    })
}

/// The bytes as a body a pinned peer (CN) posts to a running node's federation listener,
/// through its router: the first byte picks a batch of envelopes (even) or a checkpoint offer
/// (odd).
///
/// Asserts: a batch that decodes is answered 200 with exactly one verdict per envelope and one
/// that does not is answered 400; an offer that does not parse is answered 400, and one that
/// does is countersigned (200, an answer) or refused (403), each in its documented shape.
pub fn federation(data: &[u8]) {
    let (selector, body) = data.split_first().map_or((0, data), |(s, rest)| (*s, rest));
    with_node(|w| {
        let path = FEDERATION_ROUTES[usize::from(selector) % FEDERATION_ROUTES.len()];
        let content_type = if path == BATCH_PATH { "application/octet-stream" } else { "application/json" };
        let (status, bytes) = w.post(&w.federation, path, content_type, body);
        let limits = &w.state().limits;
        if body.len() > w.state().runtime_limits.batch_bytes_max {
            assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}: a body over the limit was read");
            return;
        }
        let text = String::from_utf8_lossy(&bytes);
        if path == BATCH_PATH {
            match decode_batch(body, limits.batch_len_max, limits.envelope_bytes_max) {
                Ok(envelopes) => {
                    assert_eq!(status, StatusCode::OK, "a well-formed batch was answered {status}: {text}");
                    let reply: BatchReply = serde_json::from_slice(&bytes).expect("a batch is answered with verdicts");
                    assert_eq!(reply.verdicts.len(), envelopes.len(), "not one verdict per envelope: {text}");
                }
                Err(_) => {
                    assert_eq!(status, StatusCode::BAD_REQUEST, "a malformed batch was answered {status}: {text}");
                    assert_error_shape(path, status, &bytes);
                }
            }
            return;
        }
        match serde_json::from_slice::<CheckpointOffer>(body) {
            Err(_) => {
                assert_eq!(status, StatusCode::BAD_REQUEST, "a malformed offer was answered {status}: {text}");
                assert_error_shape(path, status, &bytes);
            }
            Ok(_) if status == StatusCode::OK => {
                assert!(serde_json::from_slice::<CheckpointAnswer>(&bytes).is_ok(), "an offer's answer: {text}");
            }
            Ok(_) => {
                assert_eq!(status, StatusCode::FORBIDDEN, "an offer was answered {status}: {text}");
                assert_error_shape(path, status, &bytes);
            }
        }
    })
}
