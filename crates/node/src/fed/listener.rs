//! The federation listener: pinned mutual TLS in front of the federation's router, which takes
//! batches of envelopes from peers, hands out this node's one-time KeyPackages, and answers
//! checkpoint offers.
//!
//! The listener identifies the peer from its certificate pin during the handshake; an unpinned
//! client never gets to send a byte of HTTP. A batch's envelopes go through the engine one by one,
//! the accepted ones are committed together, and only then does the reply say `accepted`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use adi_core::{MemberCode, WriteBatch};
use adi_store::Claimed;
use adi_wire::batch::BatchReply;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::checkpoints::{answer_offer, CheckpointOffer};
use super::{BATCH_PATH, CHAIN_PATH, CHECKPOINT_PATH, HEADS_PATH, KEY_PACKAGE_PATH, ROSTER_PATH};
use crate::clock::now_ms;
use crate::config::RuntimeLimits;
use crate::conns::{Admission, ClientAddr};
use crate::driver::refill_key_packages;
use crate::error::{storage_refusal, with_body_deadline, ApiError, TimedBytes};
use crate::state::NodeState;
use crate::throttle::Unauthenticated;
use crate::tls::spki_pin;

/// The member authenticated by a federation connection's client certificate.
#[derive(Clone, Debug)]
pub struct Peer(pub MemberCode);

/// The federation router. Requests reach it only through [`serve_tls`] with a [`Peer`] attached.
pub fn router(state: Arc<NodeState>) -> Router {
    let body_max = state.runtime_limits.batch_bytes_max;
    let body_time = std::time::Duration::from_millis(state.runtime_limits.http_body_timeout_ms);
    let routes = Router::new()
        .route(BATCH_PATH, post(receive_batch))
        .route(KEY_PACKAGE_PATH, post(claim_key_package))
        .route(CHECKPOINT_PATH, post(checkpoint_offer))
        .route(ROSTER_PATH, post(roster_exchange))
        .route(HEADS_PATH, post(heads))
        .route(CHAIN_PATH, post(chain))
        .layer(DefaultBodyLimit::max(body_max));
    with_body_deadline(routes, body_time).with_state(state)
}

/// What this node holds of the chains of the lines a peer is on (`fed::restore`).
async fn heads(State(node): State<Arc<NodeState>>, Extension(Peer(peer)): Extension<Peer>) -> Response {
    Json(super::restore::answer(&node, &peer)).into_response()
}

/// A page of a chain for a restored peer (`fed::restore`).
async fn chain(
    State(node): State<Arc<NodeState>>,
    Extension(Peer(peer)): Extension<Peer>,
    body: Result<TimedBytes, ApiError>,
) -> Response {
    let body = match body {
        Ok(TimedBytes(b)) => b,
        Err(e) => return e.into_response(),
    };
    match super::restore::answer_chain(&node, &peer, &body) {
        Ok(page) => Json(page).into_response(),
        Err(e) => {
            tracing::warn!(peer = %peer, error = %e.message, code = e.code, "chain request refused");
            if e.code == "not_your_chain" {
                // Nodes ask only for their own chain and the answering member's: only modified
                // code asks for a third member's. One open alarm per member, however often.
                let alarm = adi_core::AlarmChange::misconduct(&peer, now_ms(), e.message.clone());
                match node.store.commit(WriteBatch { alarms: vec![alarm], ..WriteBatch::default() }).wait().await {
                    Ok(_) => node.committed(&[]),
                    Err(err) => {
                        node.fail_storage(&err);
                    }
                }
            }
            e.into_response()
        }
    }
}

/// A peer's roster exchange (`fed::roster`).
async fn roster_exchange(
    State(node): State<Arc<NodeState>>,
    Extension(Peer(peer)): Extension<Peer>,
    body: Result<TimedBytes, ApiError>,
) -> Response {
    let body = match body {
        Ok(TimedBytes(b)) => b,
        Err(e) => return e.into_response(),
    };
    match super::roster::answer_exchange(&node, &peer, &body).await {
        Ok(reply) => Json(reply).into_response(),
        Err(e) => {
            tracing::warn!(peer = %peer, error = %e.message, code = e.code, "roster exchange refused");
            e.into_response()
        }
    }
}

async fn receive_batch(
    State(node): State<Arc<NodeState>>,
    Extension(Peer(peer)): Extension<Peer>,
    body: Result<TimedBytes, ApiError>,
) -> Response {
    let body = match body {
        Ok(TimedBytes(b)) => b,
        Err(e) => {
            tracing::warn!(peer = %peer, error = %e.message, code = e.code, "batch refused");
            return e.into_response();
        }
    };
    let envelopes = match adi_engine::split(&node.limits, &body) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(peer = %peer, error = %e, "malformed batch refused");
            return ApiError::new(StatusCode::BAD_REQUEST, "malformed_batch", e.to_string()).into_response();
        }
    };
    let (early, finish) = match crate::driver::take(&node, &peer, &envelopes) {
        Ok(t) => t,
        Err(refusal) => return refusal.into_response(),
    };
    if let Some(verdicts) = early {
        // The injected fault: the answer goes before the commit is known.
        tokio::spawn(finish);
        return Json(BatchReply::new(verdicts)).into_response();
    }
    match finish.await {
        Ok(verdicts) => {
            crate::metrics::count_verdicts(&node.metrics.received, &peer, &verdicts);
            Json(BatchReply::new(verdicts)).into_response()
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// Checks a peer's checkpoint of a line and answers with this member's countersignature or the
/// reason it refused.
async fn checkpoint_offer(
    State(node): State<Arc<NodeState>>,
    Extension(Peer(peer)): Extension<Peer>,
    body: Result<TimedBytes, ApiError>,
) -> Response {
    let body = match body {
        Ok(TimedBytes(b)) => b,
        Err(e) => {
            tracing::warn!(peer = %peer, error = %e.message, code = e.code, "checkpoint offer refused");
            return e.into_response();
        }
    };
    if let Some(f) = node.storage_failure() {
        return storage_refusal(&f.fault).into_response();
    }
    let offer: CheckpointOffer = match serde_json::from_slice(&body) {
        Ok(o) => o,
        Err(e) => return ApiError::new(StatusCode::BAD_REQUEST, "malformed_offer", e.to_string()).into_response(),
    };
    match answer_offer(&node, &peer, offer).await {
        Ok(answer) => Json(answer).into_response(),
        Err(why) => {
            tracing::warn!(peer = %peer, reason = %why, "checkpoint offer refused");
            ApiError::new(StatusCode::FORBIDDEN, "offer_refused", why).into_response()
        }
    }
}

/// Hands one unclaimed KeyPackage to the peer, never the same one twice and at most
/// `key_package_claims_per_hour_max` an hour, and refills the pool when it runs low.
async fn claim_key_package(State(node): State<Arc<NodeState>>, Extension(Peer(peer)): Extension<Peer>) -> Response {
    if let Some(f) = node.storage_failure() {
        return storage_refusal(&f.fault).into_response();
    }
    let per_hour_max = node.runtime_limits.key_package_claims_per_hour_max;
    let claimed = match node.store.claim_key_package(&peer, now_ms(), per_hour_max).wait().await {
        Ok(c) => c,
        Err(e) => return ApiError::from(node.fail_storage(&e)).into_response(),
    };
    if let Claimed::OverQuota { claims } = claimed {
        tracing::warn!(peer = %peer, claims, "KeyPackage claim over the peer's quota");
        let (reason, alarm) = node.engine().claims_over_quota(&peer, claims, now_ms());
        match node.store.commit(WriteBatch { alarms: vec![alarm], ..WriteBatch::default() }).wait().await {
            Ok(_) => node.committed(&[]),
            Err(e) => {
                node.fail_storage(&e);
            }
        }
        return ApiError::new(StatusCode::TOO_MANY_REQUESTS, "over_quota", reason).into_response();
    }
    let low = node.store.key_packages_available().map(|n| node.engine().key_packages_low(n));
    if claimed == Claimed::Empty || low.unwrap_or(true) {
        let refill = node.clone();
        tokio::spawn(async move {
            if let Err(e) = refill_key_packages(&refill).await {
                tracing::error!(error = %e, "cannot refill the KeyPackage pool");
            }
        });
    }
    match claimed {
        Claimed::KeyPackage(bytes) => {
            tracing::info!(peer = %peer, "KeyPackage handed out");
            ([(hyper::header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
        }
        _ => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_key_package", "no KeyPackage is available; try again")
            .into_response(),
    }
}

/// Accepts connections (over TLS when `acceptor` is given: a handshake longer than
/// `limits.handshake_timeout_ms` drops the connection) and serves `router` on each, until
/// `shutdown` changes. A connection over what `admission` allows is closed at once; a client
/// slower than `limits.http_header_timeout_ms` to send a request's headers, or idle that long
/// between requests, is disconnected. When `state` is given, the client's certificate pin is
/// resolved to a member and attached as a [`Peer`], and a client no member's pin matches is
/// dropped. When `unauthenticated` is given, requests without a credential, or whose credential
/// is refused, are bounded per client address.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    router: Router,
    state: Option<Arc<NodeState>>,
    limits: RuntimeLimits,
    admission: Arc<Admission>,
    unauthenticated: Option<Arc<Unauthenticated>>,
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
                tokio::time::sleep(Duration::from_millis(limits.accept_retry_ms)).await;
                continue;
            }
        };
        let Some(slot) = admission.admit(addr.ip()) else {
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        let state = state.clone();
        let unauthenticated = unauthenticated.clone();
        let header_timeout = Duration::from_millis(limits.http_header_timeout_ms);
        conns.spawn(async move {
            let _slot = slot;
            let io = match acceptor {
                None => Io::Plain(tcp),
                Some(acceptor) => {
                    let handshake = Duration::from_millis(limits.handshake_timeout_ms);
                    match tokio::time::timeout(handshake, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => Io::Tls(Box::new(tls)),
                        Ok(Err(e)) => {
                            tracing::warn!(remote = %addr, error = %e, "TLS handshake refused");
                            return;
                        }
                        Err(_) => {
                            tracing::warn!(remote = %addr, "TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            let peer = match (&state, &io) {
                (Some(node), Io::Tls(tls)) => {
                    let pin = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).and_then(spki_pin);
                    match pin.and_then(|p| node.roster_member_by_pin(&p)) {
                        Some(code) => Some(Peer(code)),
                        None => {
                            tracing::warn!(remote = %addr, "peer certificate matches no roster member");
                            return;
                        }
                    }
                }
                _ => None,
            };
            let client = ClientAddr(addr.ip());
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                if let Some(p) = &peer {
                    req.extensions_mut().insert(p.clone());
                }
                req.extensions_mut().insert(client);
                let (router, bound) = (router.clone(), unauthenticated.clone());
                async move {
                    let headers = req.headers();
                    let credentialed =
                        headers.contains_key(header::AUTHORIZATION) || headers.contains_key(header::COOKIE);
                    if let (Some(b), false) = (&bound, credentialed) {
                        if let Some(retry_ms) = b.admit(client.0, now_ms()) {
                            return Ok(too_many_requests(retry_ms));
                        }
                    }
                    let response = router.oneshot(req).await?;
                    if let (Some(b), true) = (&bound, credentialed && response.status() == StatusCode::UNAUTHORIZED) {
                        b.refused(client.0, now_ms());
                    }
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(header_timeout);
            let served = match io {
                Io::Plain(tcp) => http.serve_connection(TokioIo::new(tcp), service).await,
                Io::Tls(tls) => http.serve_connection(TokioIo::new(*tls), service).await,
            };
            if let Err(e) = served {
                tracing::debug!(remote = %addr, error = %e, "connection ended");
            }
        });
    }
}

/// The answer to a request without a credential from an address past its bound.
fn too_many_requests(retry_ms: u64) -> Response {
    let message = "too many requests without a valid credential from this address; try again shortly";
    let mut response = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message).into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&retry_ms.div_ceil(1_000).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

/// A connection as accepted: plain, or once its TLS handshake is done.
enum Io {
    Plain(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>),
}

/// Binds every federation address.
pub async fn bind_all(addrs: &[SocketAddr]) -> anyhow::Result<Vec<TcpListener>> {
    let mut out = Vec::new();
    for a in addrs {
        out.push(TcpListener::bind(a).await.map_err(|e| anyhow::anyhow!("cannot bind federation address {a}: {e}"))?);
    }
    Ok(out)
}
