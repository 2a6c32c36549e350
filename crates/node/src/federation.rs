//! Federation: the pinned mutual-TLS listener that takes batches from peers, and the per-peer
//! links that drain the durable outbox towards them.
//!
//! The listener identifies the peer from its certificate pin during the handshake; an unpinned
//! client never gets to send a byte of HTTP. A batch's envelopes go through the core one by one,
//! the accepted ones are committed together, and only then does the reply say `accepted`.
//!
//! A [`Link`] keeps one HTTP/1.1 connection open to its peer, tries the peer's endpoints in the
//! roster's order, sends the most urgent envelopes first in batches, and backs off exponentially
//! with jitter when the peer cannot be reached.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use adi_core::{MemberCode, WriteBatch};
use adi_engine::{LinkState, Received};
use adi_wire::batch::{encode_batch, BatchReply, Verdict};
use adi_wire::LineId;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tower::ServiceExt;

use crate::api::ApiError;
use crate::node::{now_ms, NodeState};
use crate::tls::spki_pin;

/// The federation path for envelope batches.
pub const BATCH_PATH: &str = "/fed/v1/envelopes";
/// The federation path where a peer claims one of this node's one-time KeyPackages.
pub const KEY_PACKAGE_PATH: &str = "/fed/v1/key-packages/claim";
/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
/// Largest reply to a batch that a link reads.
const REPLY_BYTES_MAX: usize = 4 * 1024 * 1024;

/// The member authenticated by a federation connection's client certificate.
#[derive(Clone, Debug)]
pub struct Peer(pub MemberCode);

/// The federation router. Requests reach it only through [`serve_tls`] with a [`Peer`] attached.
pub fn router(state: Arc<NodeState>) -> Router {
    let body_max = state.runtime_limits.batch_bytes_max;
    Router::new()
        .route(BATCH_PATH, post(receive_batch))
        .route(KEY_PACKAGE_PATH, post(claim_key_package))
        .route(crate::record::CHECKPOINT_PATH, post(checkpoint_offer))
        .layer(DefaultBodyLimit::max(body_max))
        .with_state(state)
}

async fn receive_batch(
    State(node): State<Arc<NodeState>>,
    Extension(Peer(peer)): Extension<Peer>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(peer = %peer, error = %e, "batch refused");
            return ApiError::from_body_rejection(e).into_response();
        }
    };
    let envelopes = match adi_engine::split(&node.limits, &body) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(peer = %peer, error = %e, "malformed batch refused");
            return ApiError::new(StatusCode::BAD_REQUEST, "malformed_batch", e.to_string()).into_response();
        }
    };
    // A peer answered 503 keeps the batch queued and tries again later.
    if let Some(f) = node.storage_failure() {
        return crate::api::storage_refusal(&f.fault).into_response();
    }
    let (received, peers, pending) = {
        let mut engine = node.engine();
        let received = match engine.receive(node.store.as_ref(), &peer, &envelopes, now_ms()) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot decide a batch");
                return ApiError::unavailable().into_response();
            }
        };
        let Received { write, answer } = received;
        // Submitted under the engine's lock so that the store commits in the order it decided.
        let peers: Vec<MemberCode> =
            write.iter().flat_map(|w| w.records.iter().flat_map(|r| r.recipients.clone())).collect();
        (answer, peers, write.map(|w| node.store.commit(w)))
    };
    let early = received.early().map(<[Verdict]>::to_vec);
    let finish = {
        let node = node.clone();
        async move {
            let outcomes = match pending {
                None => Vec::new(),
                Some(p) => match p.wait().await {
                    Ok(o) => o,
                    Err(e) => {
                        node.engine().abandon(received);
                        return Err(node.fail_storage(&e));
                    }
                },
            };
            let answered = node.engine().answer(node.store.as_ref(), received, &outcomes);
            node.committed(&peers);
            if !answered.release.is_empty() {
                release_held(&node, answered.release).await;
            }
            Ok(answered.verdicts)
        }
    };
    if let Some(verdicts) = early {
        // The injected fault: the answer goes before the commit is known.
        tokio::spawn(finish);
        return Json(BatchReply::new(verdicts)).into_response();
    }
    match finish.await {
        Ok(verdicts) => Json(BatchReply::new(verdicts)).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// Hands the engine the envelopes held for `lines` whose epoch the core's group has now reached,
/// and commits what it makes of them together with their release; again while a held envelope
/// taken was itself a commit. Each round releases at least one held envelope or ends.
pub(crate) async fn release_held(node: &NodeState, mut lines: Vec<LineId>) {
    while !lines.is_empty() {
        let (done, peers, pending) = {
            let mut engine = node.engine();
            match engine.release_held(node.store.as_ref(), lines, now_ms()) {
                Ok(Some(release)) => {
                    let (write, done) = release.into_parts();
                    let peers: Vec<MemberCode> = write.records.iter().flat_map(|r| r.recipients.clone()).collect();
                    (done, peers, node.store.commit(write))
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(error = %e, "cannot take the held envelopes");
                    return;
                }
            }
        };
        let result = pending.wait().await;
        if let Err(e) = &result {
            node.fail_storage(e);
        }
        lines = node.engine().released(done, result.is_ok());
        if result.is_ok() {
            node.committed(&peers);
        }
    }
}

/// Checks a peer's checkpoint of a line and answers with this member's countersignature or the
/// reason it refused.
async fn checkpoint_offer(
    State(node): State<Arc<NodeState>>,
    Extension(Peer(peer)): Extension<Peer>,
    body: Bytes,
) -> Response {
    if let Some(f) = node.storage_failure() {
        return crate::api::storage_refusal(&f.fault).into_response();
    }
    let offer: crate::record::CheckpointOffer = match serde_json::from_slice(&body) {
        Ok(o) => o,
        Err(e) => return ApiError::new(StatusCode::BAD_REQUEST, "malformed_offer", e.to_string()).into_response(),
    };
    match crate::record::answer_offer(&node, &peer, offer).await {
        Ok(answer) => Json(answer).into_response(),
        Err(why) => {
            tracing::warn!(peer = %peer, reason = %why, "checkpoint offer refused");
            ApiError::new(StatusCode::FORBIDDEN, "offer_refused", why).into_response()
        }
    }
}

/// Hands one unclaimed KeyPackage to the peer, never the same one twice, and refills the pool
/// when it runs low.
async fn claim_key_package(State(node): State<Arc<NodeState>>, Extension(Peer(peer)): Extension<Peer>) -> Response {
    if let Some(f) = node.storage_failure() {
        return crate::api::storage_refusal(&f.fault).into_response();
    }
    let claimed = match node.store.claim_key_package(&peer, now_ms()).wait().await {
        Ok(c) => c,
        Err(e) => return node.fail_storage(&e).into_response(),
    };
    let low = node.store.key_packages_available().map(|n| node.engine().key_packages_low(n));
    if claimed.is_none() || low.unwrap_or(true) {
        let refill = node.clone();
        tokio::spawn(async move {
            if let Err(e) = refill.refill_key_packages().await {
                tracing::error!(error = %e, "cannot refill the KeyPackage pool");
            }
        });
    }
    match claimed {
        Some(bytes) => {
            tracing::info!(peer = %peer, "KeyPackage handed out");
            ([(hyper::header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
        }
        None => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_key_package", "no KeyPackage is available; try again")
                .into_response()
        }
    }
}

/// Checks a KeyPackage claimed from `member`'s node: a roster credential of that member, validly
/// signed, never taken here before, this node's record of used KeyPackages surviving restarts.
/// It is recorded as used, durably, before it is returned.
pub async fn check_claimed_key_package(
    node: &NodeState,
    member: &MemberCode,
    bytes: &[u8],
) -> Result<adi_mls::KeyPackage, String> {
    let (reference, kp) = node.engine().check_key_package(member, bytes)?;
    match node.store.use_key_package(reference, member, now_ms()).wait().await {
        Ok(true) => Ok(kp),
        Ok(false) => Err("KeyPackage refused: this KeyPackage was used already".into()),
        Err(e) => {
            node.fail_storage(&e);
            Err(format!("cannot record the KeyPackage as used: {e}"))
        }
    }
}

/// Claims a KeyPackage from a member's node, trying its endpoints in order, and checks it with
/// [`check_claimed_key_package`].
pub async fn claim_checked_key_package(node: &NodeState, member: &MemberCode) -> Result<adi_mls::KeyPackage, String> {
    let peer = node.roster_member(member).ok_or_else(|| format!("{member} is not in the roster"))?;
    let tls = Arc::new(
        crate::tls::federation_client_config(node.tls_cert.clone(), node.tls_key.clone_key(), peer.tls_pin)
            .map_err(|e| e.to_string())?,
    );
    let mut errors = Vec::new();
    for endpoint in &peer.endpoints {
        match claim_key_package_from(endpoint, tls.clone(), member, node.runtime_limits.connect_timeout_ms).await {
            Ok(bytes) => return check_claimed_key_package(node, member, &bytes).await,
            Err(e) => errors.push(format!("{endpoint}: {e}")),
        }
    }
    Err(errors.join("; "))
}

/// Claims one KeyPackage from a peer over a fresh pinned connection.
pub async fn claim_key_package_from(
    endpoint: &str,
    tls: Arc<rustls::ClientConfig>,
    peer: &MemberCode,
    timeout_ms: u64,
) -> Result<Vec<u8>, String> {
    post_once(endpoint, tls, peer, KEY_PACKAGE_PATH, Vec::new(), timeout_ms).await
}

/// One request to a peer's federation listener over a fresh pinned connection; the reply's body
/// when the peer answers with success.
pub async fn post_once(
    endpoint: &str,
    tls: Arc<rustls::ClientConfig>,
    peer: &MemberCode,
    path: &str,
    body: Vec<u8>,
    timeout_ms: u64,
) -> Result<Vec<u8>, String> {
    let (mut sender, conn) = connect_one(endpoint, &tls, timeout_ms, peer).await?;
    let task = tokio::spawn(conn);
    let request = hyper::Request::post(path)
        .header(hyper::header::HOST, "peer")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let work = async {
        let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let bytes =
            Limited::new(response.into_body(), REPLY_BYTES_MAX).collect().await.map_err(|e| e.to_string())?.to_bytes();
        if !status.is_success() {
            return Err(format!("peer answered {status}: {}", String::from_utf8_lossy(&bytes[..bytes.len().min(300)])));
        }
        Ok(bytes.to_vec())
    };
    let out = tokio::time::timeout(Duration::from_millis(timeout_ms), work)
        .await
        .map_err(|_| "request timed out".to_string())?;
    task.abort();
    out
}

/// Accepts TLS connections and serves `router` on each, until `shutdown` changes. When `roster_pins`
/// is given, the client's certificate pin is resolved to a member and attached as a [`Peer`].
pub async fn serve_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
    state: Option<Arc<NodeState>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
        };
        while conns.try_join_next().is_some() {}
        let (tcp, addr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        let state = state.clone();
        conns.spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_millis(HANDSHAKE_TIMEOUT_MS), acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::warn!(remote = %addr, error = %e, "TLS handshake refused");
                        return;
                    }
                    Err(_) => {
                        tracing::warn!(remote = %addr, "TLS handshake timed out");
                        return;
                    }
                };
            let peer = match &state {
                None => None,
                Some(node) => {
                    let pin = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).and_then(spki_pin);
                    match pin.and_then(|p| node.roster_member_by_pin(&p)) {
                        Some(code) => Some(Peer(code)),
                        None => {
                            tracing::warn!(remote = %addr, "peer certificate matches no roster member");
                            return;
                        }
                    }
                }
            };
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                if let Some(p) = &peer {
                    req.extensions_mut().insert(p.clone());
                }
                router.clone().oneshot(req)
            });
            if let Err(e) =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service).await
            {
                tracing::debug!(remote = %addr, error = %e, "connection ended");
            }
        });
    }
}

/// What a link knows about its peer, for operators.
#[derive(Clone, Debug, Default)]
pub struct LinkStatus {
    /// The endpoint of the open connection, if any.
    pub endpoint: Option<String>,
    pub last_error: Option<String>,
    pub last_delivery_ms: Option<u64>,
    /// Failed attempts since the last success.
    pub failures: u32,
}

/// The sending side towards one peer.
pub struct Link {
    pub peer: MemberCode,
    pub wake: Notify,
    pub status: Mutex<LinkStatus>,
}

impl Link {
    pub fn new(peer: MemberCode) -> Arc<Link> {
        Arc::new(Link { peer, wake: Notify::new(), status: Mutex::new(LinkStatus::default()) })
    }

    pub fn status(&self) -> LinkStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn update(&self, f: impl FnOnce(&mut LinkStatus)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// Runs the link until `shutdown` changes.
pub async fn run_link(node: Arc<NodeState>, link: Arc<Link>, mut shutdown: watch::Receiver<bool>) {
    let limits = node.runtime_limits.clone();
    let batch_len = node.limits.batch_len_max;
    let Some(member) = node.roster_member(&link.peer) else { return };
    let endpoints = member.endpoints.clone();
    let tls =
        match crate::tls::federation_client_config(node.tls_cert.clone(), node.tls_key.clone_key(), member.tls_pin) {
            Ok(c) => Arc::new(c),
            Err(e) => {
                tracing::error!(peer = %link.peer, error = %e, "cannot build the TLS client");
                return;
            }
        };
    let mut conn_tasks = JoinSet::new();
    let mut sender: Option<Sender> = None;
    let mut state = LinkState::default();
    loop {
        if *shutdown.borrow() {
            break;
        }
        if node.storage_failed.load(Ordering::SeqCst) {
            // What the peer answers could not be recorded: the link waits until the node takes
            // writes again (the outbox keeps everything queued meanwhile).
            tokio::select! {
                _ = node.writable() => {}
                _ = shutdown.changed() => break,
            }
            continue;
        }
        let now = now_ms();
        let items = match node.store.outbox(&link.peer, now, state.batch_len(batch_len)) {
            Ok(items) => items,
            Err(e) => {
                tracing::error!(peer = %link.peer, error = %e, "cannot read the outbox");
                Vec::new()
            }
        };
        if items.is_empty() {
            let next_due = node.store.outbox_next_due(&link.peer).ok().flatten();
            let wait = next_due.map(|t| t.saturating_sub(now)).unwrap_or(60_000).clamp(1, 60_000);
            tokio::select! {
                _ = link.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
                _ = shutdown.changed() => break,
            }
            continue;
        }
        let result = async {
            if sender.as_ref().is_none_or(|s| s.is_closed()) {
                let connected = connect(&endpoints, &tls, &limits, &link, &mut conn_tasks).await;
                sender = Some(connected.map_err(SendError::Transport)?);
            }
            let s = sender.as_mut().ok_or_else(|| SendError::Transport("no connection".to_string()))?;
            let body = encode_batch(items.iter().map(|i| i.bytes.as_slice()));
            send_batch(s, body, limits.request_timeout_ms).await
        }
        .await;
        let settled = match result {
            Ok(reply) if reply.verdicts.len() == items.len() => {
                let now = now_ms();
                let settled = node.engine().settle(&mut state, &link.peer, &items, reply.verdicts, now);
                link.update(|s| {
                    s.failures = 0;
                    s.last_error = None;
                    s.last_delivery_ms = Some(now);
                });
                settled
            }
            Err(SendError::Refused(why)) if items.len() > 1 => {
                tracing::warn!(peer = %link.peer, error = %why, "peer refused a batch; sending one by one");
                state.refused_whole(items.len());
                continue;
            }
            Err(SendError::Refused(why)) => node.engine().settle_refused(&mut state, &link.peer, &items[0], why),
            other => {
                let why = match other {
                    Ok(r) => format!("peer answered {} verdicts for {} envelopes", r.verdicts.len(), items.len()),
                    Err(SendError::Transport(e) | SendError::Refused(e)) => e,
                };
                sender = None;
                let delay = node.engine().link_failed(&mut state);
                tracing::info!(peer = %link.peer, error = %why, retry_in_ms = delay, "delivery failed");
                link.update(|s| {
                    s.failures = state.failures;
                    s.last_error = Some(why);
                    s.endpoint = None;
                });
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(delay)) => {}
                    _ = shutdown.changed() => break,
                }
                continue;
            }
        };
        if let Err(e) = node.store.settle(&link.peer, settled.results, now_ms()).wait().await {
            // Not recorded: sent again once the node takes writes, and answered `duplicate`.
            node.fail_storage(&e);
            continue;
        }
        if !settled.alarms.is_empty() {
            let batch = WriteBatch { alarms: settled.alarms, ..WriteBatch::default() };
            if let Err(e) = node.store.commit(batch).wait().await {
                node.fail_storage(&e);
                continue;
            }
            node.committed(&[]);
        }
    }
}

/// Connects to the first endpoint that answers, in the roster's order of preference.
async fn connect(
    endpoints: &[String],
    tls: &Arc<rustls::ClientConfig>,
    limits: &crate::config::RuntimeLimits,
    link: &Link,
    tasks: &mut JoinSet<()>,
) -> Result<Sender, String> {
    let mut errors = Vec::new();
    for endpoint in endpoints {
        match connect_one(endpoint, tls, limits.connect_timeout_ms, &link.peer).await {
            Ok((sender, conn)) => {
                tasks.spawn(async move {
                    let _ = conn.await;
                });
                link.update(|s| s.endpoint = Some(endpoint.clone()));
                tracing::info!(peer = %link.peer, endpoint = %endpoint, "connected");
                return Ok(sender);
            }
            Err(e) => errors.push(format!("{endpoint}: {e}")),
        }
    }
    Err(errors.join("; "))
}

type Conn = hyper::client::conn::http1::Connection<TokioIo<tokio_rustls::client::TlsStream<TcpStream>>, Full<Bytes>>;

async fn connect_one(
    endpoint: &str,
    tls: &Arc<rustls::ClientConfig>,
    timeout_ms: u64,
    peer: &MemberCode,
) -> Result<(Sender, Conn), String> {
    let timeout = Duration::from_millis(timeout_ms);
    let tcp = tokio::time::timeout(timeout, TcpStream::connect(endpoint))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let name =
        ServerName::try_from(format!("{}.node.adi", peer.as_str().to_ascii_lowercase())).map_err(|e| e.to_string())?;
    let stream = tokio::time::timeout(timeout, TlsConnector::from(tls.clone()).connect(name, tcp))
        .await
        .map_err(|_| "TLS handshake timed out".to_string())?
        .map_err(|e| format!("TLS: {e}"))?;
    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())
}

/// Why a batch did not get verdicts.
#[derive(Debug)]
enum SendError {
    /// The connection or the peer failed; the same batch may be tried again.
    Transport(String),
    /// The peer refused the batch as a whole (400 or 413): something in it is unacceptable to it.
    Refused(String),
}

async fn send_batch(sender: &mut Sender, body: Vec<u8>, timeout_ms: u64) -> Result<BatchReply, SendError> {
    let request = hyper::Request::post(BATCH_PATH)
        .header(hyper::header::HOST, "peer")
        .header(hyper::header::CONTENT_TYPE, "application/octet-stream")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| SendError::Transport(e.to_string()))?;
    let transport = |e: &dyn std::fmt::Display| SendError::Transport(e.to_string());
    let work = async {
        sender.ready().await.map_err(|e| transport(&e))?;
        let response = sender.send_request(request).await.map_err(|e| transport(&e))?;
        let status = response.status();
        let bytes =
            Limited::new(response.into_body(), REPLY_BYTES_MAX).collect().await.map_err(|e| transport(&e))?.to_bytes();
        if !status.is_success() {
            let why = format!("peer answered {status}: {}", String::from_utf8_lossy(&bytes[..bytes.len().min(300)]));
            let refused = status == hyper::StatusCode::BAD_REQUEST || status == hyper::StatusCode::PAYLOAD_TOO_LARGE;
            return Err(if refused { SendError::Refused(why) } else { SendError::Transport(why) });
        }
        serde_json::from_slice::<BatchReply>(&bytes).map_err(|e| SendError::Transport(format!("bad reply: {e}")))
    };
    tokio::time::timeout(Duration::from_millis(timeout_ms), work)
        .await
        .map_err(|_| SendError::Transport("request timed out".to_string()))?
}

/// Binds every federation address.
pub async fn bind_all(addrs: &[SocketAddr]) -> anyhow::Result<Vec<TcpListener>> {
    let mut out = Vec::new();
    for a in addrs {
        out.push(TcpListener::bind(a).await.map_err(|e| anyhow::anyhow!("cannot bind federation address {a}: {e}"))?);
    }
    Ok(out)
}

/// The set of pins the federation listener admits: every roster member's.
pub fn roster_pins(node: &NodeState) -> HashSet<[u8; 32]> {
    node.roster_pins()
}

/// Sends one batch to one endpoint over a fresh connection and returns the peer's verdicts.
/// Used by diagnostics and tests; nodes send through their [`Link`]s.
pub async fn post_batch_once(
    endpoint: &str,
    tls: Arc<rustls::ClientConfig>,
    peer: &MemberCode,
    envelopes: &[&[u8]],
    timeout_ms: u64,
) -> Result<BatchReply, String> {
    let (mut sender, conn) = connect_one(endpoint, &tls, timeout_ms, peer).await?;
    let task = tokio::spawn(conn);
    let reply = send_batch(&mut sender, encode_batch(envelopes.iter().copied()), timeout_ms).await;
    task.abort();
    reply.map_err(|e| match e {
        SendError::Transport(e) | SendError::Refused(e) => e,
    })
}
