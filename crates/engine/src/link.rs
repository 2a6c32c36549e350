//! The sending side towards one peer: the outbox is read most urgent first, sent in batches, and
//! settled by the peer's verdicts; a failed attempt backs off exponentially with jitter, and after
//! a peer refused a whole batch its envelopes go one by one until the one it refuses is found.

use adi_core::{AlarmChange, AlarmKind, AlarmOp, MemberCode};
use adi_store::{OutboxItem, Settlement};
use adi_wire::batch::{RefusalCode, Verdict};
use adi_wire::EnvelopeHash;
use rand::Rng;

use crate::Engine;

/// What a link remembers between attempts. The driver keeps one per peer, beside its connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkState {
    /// Failed attempts since the last batch the peer answered.
    pub failures: u32,
    /// Envelopes still to send one at a time after the peer refused a whole batch.
    pub one_by_one: usize,
}

impl LinkState {
    /// How many envelopes the next batch may carry.
    pub fn batch_len(&self, batch_len_max: usize) -> usize {
        if self.one_by_one > 0 {
            1
        } else {
            batch_len_max
        }
    }

    /// The peer refused a batch of `len` envelopes as a whole: they go one by one.
    pub fn refused_whole(&mut self, len: usize) {
        self.one_by_one = len;
    }
}

/// A batch settled: what to record of each envelope, and the alarms to raise.
pub struct Settled {
    pub results: Vec<(EnvelopeHash, Settlement)>,
    pub alarms: Vec<AlarmChange>,
}

impl Engine {
    /// The delay before the next attempt after `failures` failures: doubling from
    /// `retry_delay_ms_min`, capped at `retry_delay_ms_max`, with jitter in the upper half so that
    /// many nodes do not retry in step.
    pub fn backoff_ms(&mut self, failures: u32) -> u64 {
        let exp =
            self.limits.retry_delay_ms_min.saturating_mul(1u64 << failures.min(30)).min(self.limits.retry_delay_ms_max);
        self.rng.gen_range(exp / 2..=exp.max(1))
    }

    /// An attempt failed before the peer gave verdicts (no connection, a timeout, a reply that
    /// does not answer the batch): the delay before the link tries again.
    pub fn link_failed(&mut self, link: &mut LinkState) -> u64 {
        link.failures = link.failures.saturating_add(1);
        self.backoff_ms(link.failures)
    }

    /// The peer answered `items` with `verdicts`, one each, in order: what to record.
    pub fn settle(
        &mut self,
        link: &mut LinkState,
        peer: &MemberCode,
        items: &[OutboxItem],
        verdicts: Vec<Verdict>,
        now_ms: u64,
    ) -> Settled {
        let mut alarms = Vec::new();
        let mut results = Vec::with_capacity(items.len());
        let reason_max = self.limits.peer_reason_chars_max;
        for (item, v) in items.iter().zip(verdicts) {
            // The reason is the peer's text, shown to officers: cleaned and bounded first.
            let clean = |reason: String| adi_core::text::clean_line(&reason, reason_max);
            let s = match v {
                Verdict::Accepted | Verdict::Duplicate => Settlement::Delivered,
                Verdict::Rejected { code, reason } => {
                    let reason = clean(reason);
                    tracing::warn!(peer = %peer, envelope = %item.hash, reason = %reason, "peer refused an envelope");
                    // A refused message will not be acknowledged: its deadline no longer runs.
                    self.core.forget_ack(&item.hash, peer);
                    if code == RefusalCode::Undecryptable {
                        alarms.extend(undecryptable_at_peer(peer, item, &reason, now_ms));
                    }
                    Settlement::Refused { code, reason }
                }
                Verdict::Deferred { reason, .. } => {
                    Settlement::Retry { at_ms: now_ms + self.backoff_ms(item.attempts), reason: clean(reason) }
                }
            };
            results.push((item.hash, s));
        }
        link.failures = 0;
        link.one_by_one = link.one_by_one.saturating_sub(1);
        Settled { results, alarms }
    }

    /// The peer refused the one envelope sent alone: it is refused for good.
    pub fn settle_refused(
        &mut self,
        link: &mut LinkState,
        peer: &MemberCode,
        item: &OutboxItem,
        why: String,
    ) -> Settled {
        let why = adi_core::text::clean_line(&why, self.limits.peer_reason_chars_max);
        tracing::warn!(peer = %peer, envelope = %item.hash, reason = %why, "peer refused an envelope");
        self.core.forget_ack(&item.hash, peer);
        link.one_by_one = link.one_by_one.saturating_sub(1);
        // A refusal of a whole batch (by its HTTP status) names no code of the envelope's.
        let refused = Settlement::Refused { code: RefusalCode::Unknown, reason: why };
        Settled { results: vec![(item.hash, refused)], alarms: Vec::new() }
    }
}

/// The alarm this node raises when its peer could not decrypt one of its envelopes.
fn undecryptable_at_peer(peer: &MemberCode, item: &OutboxItem, reason: &str, now_ms: u64) -> Option<AlarmChange> {
    let envelope = adi_wire::VerifiedEnvelope::from_trusted_storage(&item.bytes).ok()?;
    let body = envelope.body();
    Some(AlarmChange {
        kind: AlarmKind::Undecryptable,
        op: AlarmOp::Raise,
        line: body.line,
        member: peer.clone(),
        message: Some(item.hash),
        at_ms: now_ms,
        detail: format!("{peer} could not decrypt this node's envelope #{}: {reason}", body.seq),
        addressed_to: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use adi_store::{OutboxItem, Settlement};
    use adi_wire::batch::{RefusalCode, Verdict};

    use super::*;

    /// A peer's node writes what it likes in the reason of a refusal or a deferral: it is kept and
    /// shown only cleaned of what would steer a terminal or reorder text, and bounded.
    #[test]
    fn a_peers_reasons_are_cleaned_and_bounded_before_they_are_kept() {
        let limits = crate::EngineLimits { peer_reason_chars_max: 40, ..Default::default() };
        let config = crate::EngineConfig { limits, bugs: crate::Bugs::default(), jitter_seed: 1 };
        let mut engine = Engine::new(adi_core::fixtures::hotline("PH"), Default::default(), config);
        let cn = MemberCode::parse("CN").unwrap();
        let item = |n: u8| OutboxItem { hash: EnvelopeHash([n; 32]), priority: 0, bytes: Vec::new(), attempts: 0 };
        let items = [item(1), item(2)];
        let verdicts = vec![
            Verdict::Rejected { code: RefusalCode::Malformed, reason: "bad\u{1b}[2J\nforged line\u{202e}txet".into() },
            Verdict::Deferred { code: RefusalCode::Unknown, reason: "x".repeat(10_000) },
        ];
        let settled = engine.settle(&mut LinkState::default(), &cn, &items, verdicts, 0);
        let reasons: Vec<String> = settled
            .results
            .into_iter()
            .map(|(_, s)| match s {
                Settlement::Refused { reason, .. } | Settlement::Retry { reason, .. } => reason,
                Settlement::Delivered => panic!("nothing was delivered"),
            })
            .collect();
        assert_eq!(reasons[0], "bad\u{fffd}[2J\u{fffd}forged line\u{fffd}txet");
        assert_eq!(reasons[1], format!("{}…", "x".repeat(40)));
        let refused = engine.settle_refused(&mut LinkState::default(), &cn, &items[0], "\u{7}whole\rbatch".into());
        assert!(
            matches!(&refused.results[0].1, Settlement::Refused { reason, .. } if reason == "\u{fffd}whole\u{fffd}batch"),
            "{:?}",
            refused.results
        );
    }
}
