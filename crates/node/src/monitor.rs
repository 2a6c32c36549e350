//! The metrics listener (`[api] metrics_listen`, off unless configured): `GET /metrics` answers
//! every series of `metrics` in Prometheus's text format, the state-read ones (links, queues,
//! alarms, sessions) read at that moment; and the task that follows the node's event log to time
//! each acknowledgement of this member's messages.

use std::sync::Arc;

use adi_core::AlarmKind;
use adi_store::Page;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::metrics::{KindLabels, LinkStateLabels, PeerLabels, PrecedenceLabels};
use crate::state::NodeState;

const LINK_STATES: [&str; 4] = ["healthy", "late", "failing", "never_tested"];
const ALARM_KINDS: [AlarmKind; 9] = [
    AlarmKind::Escalation,
    AlarmKind::Unacknowledged,
    AlarmKind::LinkNoAnswer,
    AlarmKind::Undecryptable,
    AlarmKind::Tamper,
    AlarmKind::Storage,
    AlarmKind::Clock,
    AlarmKind::Misconduct,
    AlarmKind::Quota,
];

/// The metrics listener's routes.
pub fn router(node: Arc<NodeState>) -> Router {
    Router::new().route("/metrics", get(scrape)).with_state(node)
}

/// Answers a scrape. Whoever reaches the listener may ask as often as they like, so the series
/// are read from the node at most once every `metrics_scrape_min_ms`: a scrape sooner than that
/// gets the text the last one read, and a flood of scrapes costs the store nothing more.
async fn scrape(State(node): State<Arc<NodeState>>) -> Response {
    let read = tokio::task::spawn_blocking(move || {
        let fresh_for = std::time::Duration::from_millis(node.runtime_limits.metrics_scrape_min_ms);
        let mut served = node.metrics.served.lock().unwrap_or_else(|p| p.into_inner());
        match served.as_ref() {
            Some((at, text)) if at.elapsed() < fresh_for => text.clone(),
            _ => {
                refresh(&node);
                let text = node.metrics.encode();
                *served = Some((std::time::Instant::now(), text.clone()));
                text
            }
        }
    })
    .await;
    match read {
        Ok(text) => ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Sets the series read from the node's state to what it holds now. A figure the store cannot
/// give keeps its last value, and the storage series say why.
pub fn refresh(node: &NodeState) {
    let m = &node.metrics;
    let now = now_ms();
    let links = node.core().links(now);
    let queues = node.store.queue_stats().unwrap_or_default();
    for (health, state) in links {
        let peer = health.peer.to_string();
        for s in LINK_STATES {
            let on = i64::from(s == state.as_str());
            m.link_state.get_or_create(&LinkStateLabels { peer: peer.clone(), state: s.to_string() }).set(on);
        }
        let labels = PeerLabels { peer };
        if let Some(rtt) = health.last_rtt_ms {
            m.link_round_trip.get_or_create(&labels).set(rtt as f64 / 1000.0);
        }
        let queue = queues.iter().find(|q| q.peer == health.peer);
        m.queue_envelopes.get_or_create(&labels).set(queue.map_or(0, |q| q.len as i64));
        let age = queue.and_then(|q| q.oldest_enqueued_ms).map_or(0, |t| now.saturating_sub(t));
        m.queue_oldest_age.get_or_create(&labels).set(age as f64 / 1000.0);
    }
    if let Ok(alarms) = node.store.alarms(true, Page::all()) {
        for kind in ALARM_KINDS {
            let n = alarms.iter().filter(|a| a.kind == kind).count();
            m.alarms_open.get_or_create(&KindLabels { kind: kind.as_str().to_string() }).set(n as i64);
        }
    }
    if let Ok(operators) = node.store.operators() {
        m.sessions.set(operators.iter().map(|o| o.sessions as i64).sum());
    }
    m.watching.set(node.watching_sessions() as i64);
    m.storage_failing.set(i64::from(node.storage_failure().is_some()));
}

/// Follows the event log from its end at start: each recipient's acknowledgement of one of this
/// member's messages is timed from the message's writing, by its precedence.
pub async fn follow(node: Arc<NodeState>, mut shutdown: watch::Receiver<bool>) {
    let mut after = loop {
        match node.store.event_bounds() {
            Ok((_, last)) => break last,
            Err(e) => {
                tracing::warn!(error = %e, "metrics: the event log cannot be read yet");
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_millis(node.runtime_limits.events_poll_ms)) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    };
    loop {
        let woken = node.events.notified();
        let read = node.store.events_after(after, node.runtime_limits.events_read_len_max);
        let events = read.unwrap_or_default();
        let full = events.len() >= node.runtime_limits.events_read_len_max;
        for e in events {
            after = e.id;
            if e.kind != "state" || e.state.as_deref() != Some("acknowledged") {
                continue;
            }
            let Some(hash) = e.message else { continue };
            let Ok(Some(message)) = node.store.message(&hash) else { continue };
            if message.sender != node.member {
                continue;
            }
            let precedence = message.precedence.unwrap_or_default();
            let seconds = e.at_ms.saturating_sub(message.created_ms) as f64 / 1000.0;
            node.metrics.acknowledgement.get_or_create(&PrecedenceLabels { precedence }).observe(seconds);
        }
        if full {
            continue;
        }
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep(std::time::Duration::from_millis(node.runtime_limits.events_poll_ms)) => {}
            _ = shutdown.changed() => return,
        }
    }
}
