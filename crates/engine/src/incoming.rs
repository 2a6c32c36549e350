//! A batch of envelopes from a peer: split, each envelope decided, the accepted ones committed
//! together, and only then the verdicts.
//!
//! For each envelope, in order: one whose sender is not the peer is refused before anything is
//! looked up; a copy of an envelope stored, or being stored, is answered
//! without decrypting it again (its MLS keys are spent; the hash covers the signature, so equal
//! hashes are the same envelope); a contradiction of the sender's chain that the sender signed is
//! refused and kept as evidence ([`crate::chain`]); the rest go through the core. An envelope from
//! an epoch this node has not reached is held, up to `held_envelopes_max` per line, until its
//! commit arrives.

use std::collections::HashMap;

use adi_core::{AlarmChange, Content, Limits, MemberCode, WriteBatch};
use adi_store::{HeldCount, Outcome, Store};
use adi_wire::batch::{decode_batch, RefusalCode, Verdict};
use adi_wire::codec::DecodeError;
use adi_wire::{Envelope, EnvelopeHash, LineId};

use crate::{Engine, EngineError, Place};

/// A decided batch: what to commit, and what to answer once the commit is known.
pub struct Received {
    /// To commit before any write computed after it; `None` when nothing is to be written.
    pub write: Option<WriteBatch>,
    pub answer: Answer,
}

/// The verdicts of a batch, waiting for its commit.
pub struct Answer {
    /// One per envelope; `None` where the commit's outcome decides.
    verdicts: Vec<Option<Verdict>>,
    /// For each envelope the core accepted: its verdict slot and its record's index in the write.
    slots: Vec<(usize, usize)>,
    /// The accepted records' envelope hashes, by their index in the write.
    hashes: Vec<EnvelopeHash>,
    /// Places handed to the store with the write.
    places: Vec<Place>,
    generation: u64,
    /// Lines on which a commit (a handshake record) is being stored: their held envelopes may be
    /// taken once it is.
    commits: Vec<LineId>,
    early: Option<Vec<Verdict>>,
}

impl Answer {
    /// The verdicts to send before the commit: only with the injected fault
    /// [`crate::Bugs::ack_before_commit`], which breaks the promise that nothing is acknowledged
    /// before it is durably committed.
    pub fn early(&self) -> Option<&[Verdict]> {
        self.early.as_deref()
    }
}

/// What a committed batch comes to.
pub struct Answered {
    pub verdicts: Vec<Verdict>,
    /// Lines whose held envelopes to take now ([`Engine::release_held`]).
    pub release: Vec<LineId>,
}

/// The verdict on an envelope that could not be decided because the store could not be read.
fn unreadable(err: &adi_store::StoreError) -> Verdict {
    tracing::error!(error = %err, "cannot read the store");
    Verdict::Deferred { code: RefusalCode::StoreUnavailable, reason: "the node cannot read its store".into() }
}

/// Splits a batch body into its envelopes, within the core's limits; needs no engine, so that a
/// driver refuses a malformed batch (as a whole: the sender splits it or drops it) without taking
/// the engine's lock.
pub fn split<'a>(limits: &Limits, body: &'a [u8]) -> Result<Vec<&'a [u8]>, DecodeError> {
    decode_batch(body, limits.batch_len_max, limits.envelope_bytes_max)
}

impl Engine {
    /// Decides each envelope `peer` sent (the member its connection authenticated). The driver
    /// commits [`Received::write`] before any later write, then calls [`Engine::answer`].
    pub fn receive(
        &mut self,
        store: &dyn Store,
        peer: &MemberCode,
        envelopes: &[&[u8]],
        now_ms: u64,
    ) -> Result<Received, EngineError> {
        let limits = self.core_limits().clone();
        let held_max = self.limits.held_envelopes_max;
        let per_sender_max = self.limits.held_per_sender_max;
        let ahead_max = self.limits.held_epochs_ahead_max;
        let generation = self.generation;
        let mut verdicts: Vec<Option<Verdict>> = Vec::with_capacity(envelopes.len());
        let mut batch = WriteBatch::default();
        let mut slots = Vec::new();
        let mut places: Vec<(Place, EnvelopeHash)> = Vec::new();
        let mut held_here: HashMap<LineId, u64> = HashMap::new();
        let mut held_by: HashMap<(LineId, MemberCode), u64> = HashMap::new();
        let mut counts: Option<Vec<HeldCount>> = None;
        for bytes in envelopes {
            if let Ok(e) = Envelope::decode(bytes, limits.envelope_bytes_max, limits.payload_bytes_max) {
                let b = e.body();
                // Before the store is asked anything about the place an envelope claims: a peer
                // speaks only for itself, so it learns nothing of another member's places and no
                // evidence is ever laid at another member's door.
                if b.sender != peer.as_str() {
                    let reason = format!(
                        "envelope from {} arrived over {peer}'s connection; relaying is not supported",
                        b.sender
                    );
                    // Nodes never relay: only modified code sends another member's envelope.
                    let detail = format!("envelope #{} on line {} refused (relayed): {reason}", b.seq, b.line);
                    batch.alarms.push(AlarmChange::misconduct(peer, now_ms, detail));
                    verdicts.push(Some(Verdict::Rejected { code: RefusalCode::Relayed, reason }));
                    continue;
                }
                let place = (b.line, b.sender.clone(), b.seq);
                let stored = match store.envelope_at(&b.line, &b.sender, b.seq) {
                    Ok(h) => h,
                    Err(err) => {
                        verdicts.push(Some(unreadable(&err)));
                        continue;
                    }
                };
                // Being stored: by this batch, or by another one whose commit is not back yet.
                let in_batch = batch.records.iter().any(|r| r.envelope.hash() == e.hash()).then(|| e.hash());
                let pending = in_batch.or_else(|| self.in_flight.get(&place).map(|(h, _)| *h));
                let known = stored.map(|h| (h, true)).or_else(|| pending.map(|h| (h, false)));
                let chain = if known.is_some_and(|(h, committed)| h == e.hash() || !committed) {
                    Ok(None)
                } else {
                    crate::chain::chain_break(store, self.core.roster(), peer, &e, bytes, stored, now_ms)
                };
                match chain {
                    Ok(Some(b)) => {
                        tracing::warn!(peer = %peer, envelope = %e.hash(), reason = %b.reason, "tamper: envelope refused");
                        batch.alarms.push(b.alarm);
                        batch.evidence.push(b.evidence);
                        verdicts.push(Some(Verdict::Rejected { code: RefusalCode::Tamper, reason: b.reason }));
                        continue;
                    }
                    Ok(None) => {}
                    Err(err) => {
                        verdicts.push(Some(unreadable(&err)));
                        continue;
                    }
                }
                if let Some((existing, committed)) = known {
                    verdicts.push(Some(if existing != e.hash() {
                        tracing::warn!(peer = %peer, envelope = %e.hash(), existing = %existing,
                            "refused: another envelope holds the same line, sender and sequence number");
                        Verdict::Rejected {
                            code: RefusalCode::Conflict,
                            reason: format!(
                                "conflicts with stored envelope {existing} for the same line, sender and sequence"
                            ),
                        }
                    } else if committed {
                        self.forget_if_answered(store, &existing);
                        Verdict::Duplicate
                    } else {
                        Verdict::Deferred {
                            code: RefusalCode::BeingCommitted,
                            reason: "the same envelope is being committed".into(),
                        }
                    }));
                    continue;
                }
                places.push((place, e.hash()));
            }
            match self.core.receive(now_ms, peer, bytes) {
                Ok(records) => {
                    slots.push((verdicts.len(), batch.records.len()));
                    verdicts.push(None);
                    batch.records.extend(records);
                }
                Err(mut refusal) => {
                    let mut kept = false;
                    if let Some(held) = refusal.hold.take() {
                        // Kept (bounded per line, per sender and in how far ahead) until the
                        // commit that reaches its epoch arrives; the sender keeps it queued too,
                        // and is answered `duplicate` once it is taken.
                        let line = held.line;
                        let counts = counts.get_or_insert_with(|| {
                            // Envelopes held longer than `held_expiry_ms` are dropped with this
                            // batch: their senders, answered `deferred`, still hold them.
                            let since = now_ms.saturating_sub(self.limits.held_expiry_ms);
                            batch.release.extend(store.held_expired(since).unwrap_or_default());
                            store.held_counts(since).unwrap_or_default()
                        });
                        let count = *held_here
                            .entry(line)
                            .or_insert_with(|| counts.iter().filter(|c| c.line == line).map(|c| c.count).sum());
                        let by_sender = *held_by.entry((line, peer.clone())).or_insert_with(|| {
                            counts.iter().find(|c| c.line == line && c.sender == *peer).map_or(0, |c| c.count)
                        });
                        let current = self.core.epoch(&line).unwrap_or(0);
                        if held.epoch > current.saturating_add(ahead_max) {
                            refusal.reason = format!(
                                "{}; not held: more than held_epochs_ahead_max = {ahead_max} epochs ahead of this node's {current}",
                                refusal.reason
                            );
                        } else if by_sender >= per_sender_max && !self.bugs.hold_beyond_quota {
                            refusal.code = RefusalCode::OverQuota;
                            refusal.reason = format!(
                                "{}; this node holds the most envelopes it may from {peer} on the line (held_per_sender_max = {per_sender_max})",
                                refusal.reason
                            );
                            let detail = format!("{peer} has {by_sender} envelopes held on line {line}, its most");
                            batch.alarms.push(AlarmChange::quota(peer, now_ms, detail));
                        } else if count < held_max {
                            held_here.insert(line, count + 1);
                            held_by.insert((line, peer.clone()), by_sender + 1);
                            refusal.reason = format!("{}; held here until its commit arrives", refusal.reason);
                            batch.hold.push(*held);
                            kept = true;
                        } else {
                            refusal.code = RefusalCode::HeldFull;
                            refusal.reason = format!(
                                "{}; this node holds the most envelopes it may for the line (held_envelopes_max = {held_max})",
                                refusal.reason
                            );
                        }
                    }
                    if kept {
                        tracing::info!(peer = %peer, reason = %refusal.reason, "envelope held for its commit");
                    } else {
                        tracing::warn!(peer = %peer, reason = %refusal.reason, retry = refusal.retry, "envelope refused");
                    }
                    batch.alarms.extend(refusal.alarm.map(|a| *a));
                    let (code, reason) = (refusal.code, refusal.reason);
                    verdicts.push(Some(if refusal.retry {
                        Verdict::Deferred { code, reason }
                    } else {
                        Verdict::Rejected { code, reason }
                    }));
                }
            }
        }
        let commits: Vec<LineId> =
            batch.records.iter().filter(|r| matches!(r.content, Content::Handshake(_))).map(|r| r.line.id).collect();
        let hashes: Vec<EnvelopeHash> = batch.records.iter().map(|r| r.envelope.hash()).collect();
        let batch = self.seal(batch)?;
        // Only what the core accepted is being stored; a refused envelope may come again.
        places.retain(|(_, h)| hashes.contains(h));
        let places: Vec<Place> = places
            .into_iter()
            .map(|(place, hash)| {
                self.in_flight.insert(place.clone(), (hash, generation));
                place
            })
            .collect();
        let early = self
            .bugs
            .ack_before_commit
            .then(|| verdicts.iter().map(|v| v.clone().unwrap_or(Verdict::Accepted)).collect());
        let write = (!batch.is_empty()).then_some(batch);
        Ok(Received { write, answer: Answer { verdicts, slots, hashes, places, generation, commits, early } })
    }

    /// The verdicts of a batch whose write (if it had one) was committed with `outcomes`, one
    /// per record.
    pub fn answer(&mut self, store: &dyn Store, answer: Answer, outcomes: &[Outcome]) -> Answered {
        self.forget_in_flight(&answer.places, answer.generation);
        let mut verdicts = answer.verdicts;
        for (slot, index) in answer.slots {
            let hash = answer.hashes[index];
            verdicts[slot] = Some(match outcomes.get(index) {
                Some(Outcome::Inserted) => Verdict::Accepted,
                Some(Outcome::Duplicate) => {
                    self.forget_if_answered(store, &hash);
                    Verdict::Duplicate
                }
                Some(Outcome::Conflict { existing }) => {
                    tracing::warn!(envelope = %hash, existing = %existing,
                        "refused: another envelope holds the same line, sender and sequence number");
                    Verdict::Rejected {
                        code: RefusalCode::Conflict,
                        reason: format!(
                            "conflicts with stored envelope {existing} for the same line, sender and sequence"
                        ),
                    }
                }
                Some(Outcome::Mismatch { reason }) => {
                    tracing::warn!(envelope = %hash, reason = %reason, "receipt refused");
                    Verdict::Rejected { code: RefusalCode::Mismatch, reason: reason.clone() }
                }
                None => Verdict::Deferred { code: RefusalCode::Undecided, reason: "not decided".into() },
            });
        }
        let verdicts = verdicts
            .into_iter()
            .map(|v| v.unwrap_or(Verdict::Deferred { code: RefusalCode::Undecided, reason: "not decided".into() }))
            .collect();
        Answered { verdicts, release: answer.commits }
    }

    /// The write of a batch was not committed: nothing it carried is stored, and every copy of
    /// it may be decided again.
    pub fn abandon(&mut self, answer: Answer) {
        self.forget_in_flight(&answer.places, answer.generation);
    }
}
