//! The node's figures for Prometheus: what the node counts as it works (envelopes sent and
//! received by verdict, acknowledgement times by precedence, commit times, storage faults) and
//! what it reads of its state when scraped (links, queues, alarms, sessions). Names follow
//! Prometheus's conventions (`adi_` first, base units, `_total` on counters); no label holds
//! anything of a message but its precedence. `monitor` serves them and follows the event log.

use adi_wire::batch::{RefusalCode, Verdict};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabels {
    pub peer: String,
}

/// An envelope's fate at the receiver: `accepted`, `duplicate`, `rejected` or `deferred`, with
/// the refusal's code (empty when accepted).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabels {
    pub peer: String,
    pub verdict: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PrecedenceLabels {
    pub precedence: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LinkStateLabels {
    pub peer: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

/// The upper bounds of the acknowledgement-time buckets, in seconds: from a desk that answers at
/// once to one that answers after the longest deadline.
const ACK_BUCKETS_S: [f64; 12] = [1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 14400.0];
/// The upper bounds of the commit-time buckets, in seconds: 0.25 ms, doubling to about 4 s.
const COMMIT_BUCKETS_FIRST_S: f64 = 0.000_25;
const COMMIT_BUCKETS: u16 = 15;

fn ack_histogram() -> Histogram {
    Histogram::new(ACK_BUCKETS_S)
}

/// Counts each envelope of a batch by the verdict it got, towards or from `peer`.
pub fn count_verdicts(family: &Family<VerdictLabels, Counter>, peer: &adi_core::MemberCode, verdicts: &[Verdict]) {
    for v in verdicts {
        let (verdict, code) = match v {
            Verdict::Accepted => ("accepted", String::new()),
            Verdict::Duplicate => ("duplicate", String::new()),
            Verdict::Rejected { code, .. } => ("rejected", code_name(code)),
            Verdict::Deferred { code, .. } => ("deferred", code_name(code)),
        };
        family.get_or_create(&VerdictLabels { peer: peer.to_string(), verdict: verdict.to_string(), code }).inc();
    }
}

/// A refusal code as the wire writes it (`bad_signature`, …).
fn code_name(code: &RefusalCode) -> String {
    match serde_json::to_value(code) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "unknown".to_string(),
    }
}

/// Every series of the node.
pub struct Metrics {
    registry: Registry,
    pub sent: Family<VerdictLabels, Counter>,
    pub received: Family<VerdictLabels, Counter>,
    pub acknowledgement: Family<PrecedenceLabels, Histogram, fn() -> Histogram>,
    pub commit: Histogram,
    pub storage_faults: Counter,
    pub storage_failing: Gauge,
    pub link_state: Family<LinkStateLabels, Gauge>,
    pub link_round_trip: Family<PeerLabels, Gauge<f64, AtomicU64>>,
    pub queue_envelopes: Family<PeerLabels, Gauge>,
    pub queue_oldest_age: Family<PeerLabels, Gauge<f64, AtomicU64>>,
    pub alarms_open: Family<KindLabels, Gauge>,
    pub sessions: Gauge,
    pub watching: Gauge,
    /// The last scrape's text and when it was read (`monitor` serves it again for a while).
    pub served: std::sync::Mutex<Option<(std::time::Instant, String)>>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("adi");
        let sent = Family::<VerdictLabels, Counter>::default();
        let received = Family::<VerdictLabels, Counter>::default();
        let acknowledgement = Family::new_with_constructor(ack_histogram as fn() -> Histogram);
        let commit = Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
            COMMIT_BUCKETS_FIRST_S,
            2.0,
            COMMIT_BUCKETS,
        ));
        let m = Metrics {
            sent,
            received,
            acknowledgement,
            commit,
            storage_faults: Counter::default(),
            storage_failing: Gauge::default(),
            link_state: Family::default(),
            link_round_trip: Family::default(),
            queue_envelopes: Family::default(),
            queue_oldest_age: Family::default(),
            alarms_open: Family::default(),
            sessions: Gauge::default(),
            watching: Gauge::default(),
            served: std::sync::Mutex::new(None),
            registry: Registry::default(),
        };
        registry.register(
            "envelopes_sent",
            "Envelopes this node delivered to a peer, by the verdict the peer gave and its refusal code",
            m.sent.clone(),
        );
        registry.register(
            "envelopes_received",
            "Envelopes peers delivered to this node, by the verdict it gave and its refusal code",
            m.received.clone(),
        );
        registry.register_with_unit(
            "acknowledgement",
            "Time from sending one of this member's messages to a recipient's acknowledgement, by precedence",
            Unit::Seconds,
            m.acknowledgement.clone(),
        );
        registry.register_with_unit(
            "store_commit",
            "Time from submitting a write to the store to its durable commit",
            Unit::Seconds,
            m.commit.clone(),
        );
        registry.register(
            "storage_faults",
            "Faults of the store's writes (each raises the storage alarm)",
            m.storage_faults.clone(),
        );
        registry.register("storage_failing", "1 while the node cannot write its database", m.storage_failing.clone());
        registry.register(
            "link_state",
            "1 for the state each peer's link is in (healthy, late, failing, never_tested), 0 for the others",
            m.link_state.clone(),
        );
        registry.register_with_unit(
            "link_round_trip",
            "The last link test's round trip to each peer",
            Unit::Seconds,
            m.link_round_trip.clone(),
        );
        registry.register("queue_envelopes", "Envelopes queued for each peer", m.queue_envelopes.clone());
        registry.register_with_unit(
            "queue_oldest_age",
            "Age of the oldest envelope queued for each peer (0 when none is)",
            Unit::Seconds,
            m.queue_oldest_age.clone(),
        );
        registry.register("alarms_open", "Alarms not cleared, by kind", m.alarms_open.clone());
        registry.register("console_sessions", "Console sessions not ended", m.sessions.clone());
        registry.register(
            "console_watching",
            "Console sessions holding the event stream open on this node",
            m.watching.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The text exposition of every series.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::{Metrics, PeerLabels, PrecedenceLabels, VerdictLabels};

    #[test]
    fn the_series_are_named_as_prometheus_asks() {
        let m = Metrics::new();
        let v = VerdictLabels { peer: "CN".into(), verdict: "accepted".into(), code: String::new() };
        m.received.get_or_create(&v).inc();
        m.acknowledgement.get_or_create(&PrecedenceLabels { precedence: "FLASH".into() }).observe(3.0);
        m.queue_envelopes.get_or_create(&PeerLabels { peer: "CN".into() }).set(4);
        let text = m.encode();
        assert!(text.contains("adi_envelopes_received_total{peer=\"CN\",verdict=\"accepted\",code=\"\"} 1"), "{text}");
        assert!(text.contains("adi_acknowledgement_seconds_bucket{le=\"5.0\",precedence=\"FLASH\"} 1"), "{text}");
        assert!(text.contains("adi_acknowledgement_seconds_count{precedence=\"FLASH\"} 1"), "{text}");
        assert!(text.contains("adi_queue_envelopes{peer=\"CN\"} 4"), "{text}");
        assert!(text.contains("# TYPE adi_store_commit_seconds histogram"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    /// The example dashboard of `docs/OPERATIONS.md` asks only for series the node has.
    #[test]
    fn the_example_dashboard_names_only_series_the_node_has() {
        let dashboard = include_str!("../../../docs/grafana/adi-node.json");
        let _: serde_json::Value = serde_json::from_str(dashboard).expect("the dashboard is JSON");
        // A family shows once it has a series: one of each.
        let m = Metrics::new();
        let peer = PeerLabels { peer: "CN".into() };
        let _ =
            m.sent.get_or_create(&VerdictLabels { peer: "CN".into(), verdict: "accepted".into(), code: String::new() });
        let _ = m.received.get_or_create(&VerdictLabels {
            peer: "CN".into(),
            verdict: "accepted".into(),
            code: String::new(),
        });
        let _ = m.acknowledgement.get_or_create(&PrecedenceLabels { precedence: "FLASH".into() });
        let _ = m.link_state.get_or_create(&super::LinkStateLabels { peer: "CN".into(), state: "healthy".into() });
        let _ = m.link_round_trip.get_or_create(&peer);
        let _ = m.queue_envelopes.get_or_create(&peer);
        let _ = m.queue_oldest_age.get_or_create(&peer);
        let _ = m.alarms_open.get_or_create(&super::KindLabels { kind: "tamper".into() });
        let text = m.encode();
        let mut asked = 0;
        for (at, _) in dashboard.match_indices("adi_") {
            let name: String = dashboard[at..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
            let base = ["_bucket", "_total", "_count", "_sum"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(&name);
            assert!(
                text.contains(&format!("# TYPE {base} ")),
                "the dashboard asks for {name}, which the node does not have: {text}"
            );
            asked += 1;
        }
        assert!(asked >= 10, "{asked}");
    }
}
