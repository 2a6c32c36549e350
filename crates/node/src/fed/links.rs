//! The sending side of the federation: one link per peer that drains the durable outbox towards
//! it, and the single requests a node makes of a peer's listener (claiming a KeyPackage, offering
//! a checkpoint, a batch sent once for diagnostics and tests).
//!
//! A link keeps one HTTP/1.1 connection open to its peer, tries the peer's endpoints in the
//! roster's order, sends the most urgent envelopes first in batches, and backs off exponentially
//! with jitter when the peer cannot be reached.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use adi_core::{MemberCode, WriteBatch};
use adi_engine::LinkState;
use adi_wire::batch::{encode_batch, BatchReply};
use axum::body::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;

use super::{BATCH_PATH, KEY_PACKAGE_PATH};
use crate::clock::now_ms;
use crate::config::RuntimeLimits;
use crate::state::{Link, NodeState};

/// Largest reply to a batch that a link reads.
const REPLY_BYTES_MAX: usize = 4 * 1024 * 1024;

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
    let tls = Arc::new(node.client_config(&peer).map_err(|e| e.to_string())?);
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

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// Runs the link until `shutdown` changes.
pub async fn run_link(node: Arc<NodeState>, link: Arc<Link>, mut shutdown: watch::Receiver<bool>) {
    let limits = node.runtime_limits.clone();
    let batch_len = node.limits.batch_len_max;
    let mut roster_number = node.roster_watch();
    let mut conn_tasks = JoinSet::new();
    let mut sender: Option<Sender> = None;
    let mut state = LinkState::default();
    // The peer's endpoints and TLS pin as the roster in force gives them, taken again when a
    // version changes them; `None` while the roster suspends or no longer lists the peer.
    let mut peer: Option<(Vec<String>, [u8; 32], Arc<rustls::ClientConfig>)> = None;
    let mut peer_of_version = None;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let in_force = *roster_number.borrow_and_update();
        if peer_of_version != Some(in_force) {
            peer_of_version = Some(in_force);
            let roster = node.roster();
            let next = roster.member(&link.peer).filter(|m| !roster.is_suspended(&m.code)).and_then(|m| {
                match node.client_config(m) {
                    Ok(c) => Some((m.endpoints.clone(), m.tls_pin, Arc::new(c))),
                    Err(e) => {
                        tracing::error!(peer = %link.peer, error = %e, "cannot build the TLS client");
                        None
                    }
                }
            });
            let same = matches!((&peer, &next), (Some((a, p, _)), Some((b, q, _))) if a == b && p == q);
            if !same {
                // The connection goes with the endpoints or the key it was opened for.
                sender = None;
                peer = next;
            }
        }
        let Some((endpoints, _, tls)) = peer.clone() else {
            // Suspended or removed: nothing is sent until a version lists it again.
            link.update(|s| s.endpoint = None);
            tokio::select! {
                _ = roster_number.changed() => {}
                _ = shutdown.changed() => break,
            }
            continue;
        };
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
        // At most `send_batch_bytes_max` of stored (sealed, so larger) bytes, within what the
        // peer's listener takes with room for the batch's framing: a file's chunks travel in
        // several batches, and whatever more urgent is queued behind them goes in the next.
        let most = limits.send_batch_bytes_max.min(limits.batch_bytes_max.saturating_sub(1024));
        let items = match node.store.outbox_within(&link.peer, now, state.batch_len(batch_len), most) {
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
                _ = roster_number.changed() => {}
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
                crate::metrics::count_verdicts(&node.metrics.sent, &link.peer, &reply.verdicts);
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
    limits: &RuntimeLimits,
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

/// Sends one batch to one endpoint over a fresh connection and returns the peer's verdicts.
/// Used by diagnostics and tests; nodes send through their links ([`run_link`]).
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
