//! One member's node in the simulation: the real core (`adi_core::Hotline`, with its MLS groups)
//! and the real store (`adi_store::SqliteStore`, a database file per node), joined by the rules the
//! node's runtime applies between them: a copy of a stored envelope is answered `duplicate`
//! without decrypting it again, an envelope from a later epoch is held (bounded) until its commit,
//! held envelopes are released after a commit, the outbox is read most urgent first and settled
//! by the peer's verdicts with backoff, and nothing is answered before its commit returned.
//!
//! The store commits synchronously here (each commit is awaited before the next step), so a run
//! is a function of its seed. A crash drops the core and the store handle; whatever the core
//! decided but the store had not committed is gone, as after a power cut.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use adi_core::{AlarmChange, AlarmKind, AlarmOp, Content, Hotline, HotlineConfig, MemberCode, Record, WriteBatch};
use adi_store::{OutboxItem, Outcome, Settlement, SqliteStore, Store, StoreConfig};
use adi_wire::batch::{decode_batch, Verdict};
use adi_wire::{Envelope, EnvelopeHash, LineId};

/// KeyPackages each node keeps for peers to claim (the node's `key_package_pool_len`, smaller).
pub const KEY_PACKAGE_POOL: u64 = 4;
/// Envelopes a node holds per line for an epoch it has not reached (`held_envelopes_max`).
pub const HELD_ENVELOPES_MAX: u64 = 256;
/// Retry delays of a link, as the node's defaults.
pub const RETRY_DELAY_MS_MIN: u64 = 200;
pub const RETRY_DELAY_MS_MAX: u64 = 30_000;

/// The sending side of one node's link to one peer.
#[derive(Debug, Default)]
pub struct Link {
    /// The batch in flight: its request id and what it carries.
    pub in_flight: Option<(u64, Vec<OutboxItem>)>,
    pub failures: u32,
    /// When a poll of this link is scheduled (simulated time), if one is.
    pub poll_at: Option<u64>,
}

/// A running node.
pub struct Up {
    pub core: Hotline,
    pub store: SqliteStore,
    pub links: BTreeMap<usize, Link>,
    /// KeyPackages of peers taken into groups here (the node's `key_packages_seen`).
    pub kp_seen: HashSet<Vec<u8>>,
    /// The core's next wake (its own clock) for which a tick is scheduled.
    pub tick_at: Option<u64>,
}

pub struct SimNode {
    pub code: MemberCode,
    /// The byte the member's signing key derives from (`adi_core::fixtures::key`).
    pub key_seed: u8,
    /// This node's clock minus the simulation's.
    pub skew_ms: i64,
    pub path: PathBuf,
    pub up: Option<Up>,
}

/// What became of a batch handed to a node's listener.
pub enum Handled {
    /// The node crashed before it answered.
    Crashed {
        /// A reply sent before the commit (only with the injected fault `ack_before_commit`).
        early: Option<Vec<Verdict>>,
    },
    Answered {
        verdicts: Vec<Verdict>,
        /// Records newly committed from peers, for the operators to react to.
        inserted: Vec<Record>,
        /// Whether the reply already went before the commit (injected fault).
        early: bool,
    },
}

/// Where the listener may crash while handling a batch, and whether it answers before its
/// commit (a deliberate fault, to show that the checker catches it).
#[derive(Clone, Copy, Debug, Default)]
pub struct BatchFaults {
    pub crash_before_commit: bool,
    pub crash_after_commit: bool,
    pub ack_before_commit: bool,
}

pub fn backoff_ms(failures: u32) -> u64 {
    let exp = RETRY_DELAY_MS_MIN.saturating_mul(1u64 << failures.min(20));
    exp.min(RETRY_DELAY_MS_MAX)
}

impl SimNode {
    pub fn now(&self, sim_ms: u64) -> u64 {
        (sim_ms as i64 + self.skew_ms).max(0) as u64
    }

    /// The simulation time at which this node's clock shows `node_ms`.
    pub fn sim_time(&self, node_ms: u64) -> u64 {
        (node_ms as i64 - self.skew_ms).max(0) as u64
    }

    pub fn is_up(&self) -> bool {
        self.up.is_some()
    }

    /// Starts (or restarts) the node from its database, as `Node::start` does: load, rebuild the
    /// core with its MLS state, top up KeyPackages, and take held envelopes a commit released.
    pub fn start(&mut self, config: HotlineConfig, now: u64) -> Result<Vec<Record>, String> {
        let store = SqliteStore::open(StoreConfig::new(&self.path, [7u8; 32])).map_err(|e| e.to_string())?;
        let restored = store.load(&self.code).map_err(|e| e.to_string())?;
        let lines: Vec<LineId> = restored.lines.iter().map(|l| l.id).collect();
        let core = Hotline::new(config, restored, now).map_err(|e| e.message)?;
        let kp_seen = store.used_key_packages().map_err(|e| e.to_string())?.into_iter().collect();
        self.up = Some(Up { core, store, links: BTreeMap::new(), kp_seen, tick_at: None });
        self.refill_key_packages(now)?;
        self.release_held(lines, now)
    }

    /// A crash: the core and everything not committed are gone.
    pub fn crash(&mut self) {
        self.up = None;
    }

    fn up(&mut self) -> Result<&mut Up, String> {
        self.up.as_mut().ok_or_else(|| format!("{} is down", self.code))
    }

    /// Commits a batch, with the MLS state when it holds records, and waits for the commit.
    pub fn commit(&mut self, mut batch: WriteBatch) -> Result<Vec<Outcome>, String> {
        let up = self.up()?;
        if !batch.records.is_empty() && batch.mls_state.is_none() {
            batch.mls_state = Some(up.core.mls_delta().map_err(|e| e.message)?);
        }
        up.store.commit(batch).wait_blocking().map_err(|e| e.to_string())
    }

    pub fn refill_key_packages(&mut self, now: u64) -> Result<(), String> {
        let up = self.up()?;
        let available = up.store.key_packages_available().map_err(|e| e.to_string())?;
        if available * 2 >= KEY_PACKAGE_POOL {
            return Ok(());
        }
        let made = up.core.key_packages((KEY_PACKAGE_POOL - available) as usize).map_err(|e| e.message)?;
        let state = up.core.mls_delta().map_err(|e| e.message)?;
        let with_refs = made
            .into_iter()
            .map(|kp| adi_mls::key_package_reference(&kp).map(|r| (r, kp)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        up.store.add_key_packages(state, with_refs, now).wait_blocking().map_err(|e| e.to_string())
    }

    /// The federation side of a KeyPackage claim: hands one out, once.
    pub fn hand_out_key_package(&mut self, peer: &MemberCode, now: u64) -> Result<Vec<u8>, String> {
        let up = self.up()?;
        let claimed = up.store.claim_key_package(peer, now).wait_blocking().map_err(|e| e.to_string())?;
        let bytes = claimed.ok_or_else(|| format!("{} has no KeyPackage left", self.code))?;
        self.refill_key_packages(now)?;
        Ok(bytes)
    }

    /// The claiming side: checks a KeyPackage from `member` and records it used before use.
    pub fn take_key_package(
        &mut self,
        member: &MemberCode,
        bytes: &[u8],
        now: u64,
    ) -> Result<adi_mls::KeyPackage, String> {
        let up = self.up()?;
        let roster = up.core.roster().clone();
        let keys =
            |code: &str| MemberCode::parse(code).ok().and_then(|c| roster.member(&c)).map(|m| m.signing_key.to_bytes());
        let (code, kp) = adi_mls::check_key_package(bytes, &keys, &mut up.kp_seen).map_err(|e| e.to_string())?;
        if code != member.as_str() {
            return Err(format!("the KeyPackage is {code}'s, not {member}'s"));
        }
        let reference = adi_mls::key_package_reference(bytes).map_err(|e| e.to_string())?;
        match up.store.use_key_package(reference, member, now).wait_blocking() {
            Ok(true) => Ok(kp),
            Ok(false) => Err("KeyPackage used already".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The federation listener's handling of a batch from `peer`.
    pub fn handle_batch(&mut self, peer: &MemberCode, body: &[u8], now: u64, faults: BatchFaults) -> Handled {
        let me = self.code.clone();
        let Some(up) = self.up.as_mut() else { return Handled::Crashed { early: None } };
        let limits = up.core.limits().clone();
        let Ok(envelopes) = decode_batch(body, limits.batch_len_max, limits.envelope_bytes_max) else {
            let verdicts = vec![Verdict::Rejected { reason: "malformed batch".into() }];
            return Handled::Answered { verdicts, inserted: Vec::new(), early: false };
        };
        let mut verdicts: Vec<Option<Verdict>> = Vec::with_capacity(envelopes.len());
        let mut batch = WriteBatch::default();
        let mut slots = Vec::new();
        let mut held_here: BTreeMap<LineId, u64> = BTreeMap::new();
        for bytes in &envelopes {
            if let Ok(e) = Envelope::decode(bytes, limits.envelope_bytes_max, limits.payload_bytes_max) {
                let b = e.body();
                match up.store.envelope_at(&b.line, &b.sender, b.seq) {
                    Ok(Some(existing)) => {
                        verdicts.push(Some(if existing != e.hash() {
                            Verdict::Rejected {
                                reason: format!("conflicts with stored envelope {existing} for the same place"),
                            }
                        } else {
                            let answered = up.store.receipts(&existing).is_ok_and(|rs| {
                                rs.iter().any(|r| r.member == me && (r.kind == "acknowledged" || r.kind == "declined"))
                            });
                            if answered {
                                up.core.forget_ack(&existing, &me);
                            }
                            Verdict::Duplicate
                        }));
                        continue;
                    }
                    Ok(None) => {}
                    Err(err) => {
                        verdicts.push(Some(Verdict::Deferred { reason: format!("cannot read the store: {err}") }));
                        continue;
                    }
                }
                // The same envelope twice in one batch: the second waits for the first's commit.
                if batch.records.iter().any(|r| r.envelope.hash() == e.hash()) {
                    verdicts.push(Some(Verdict::Deferred { reason: "being committed".into() }));
                    continue;
                }
            }
            let result = up.core.receive(now, peer, bytes);
            trace(&me, "batch", bytes, &result);
            match result {
                Ok(records) => {
                    slots.push((verdicts.len(), batch.records.len()));
                    verdicts.push(None);
                    batch.records.extend(records);
                }
                Err(mut refusal) => {
                    if let Some(held) = refusal.hold.take() {
                        let line = held.line;
                        let count = held_here.entry(line).or_insert_with(|| {
                            up.store
                                .held_counts()
                                .ok()
                                .and_then(|c| c.into_iter().find(|(l, _)| *l == line))
                                .map_or(0, |c| c.1)
                        });
                        if *count < HELD_ENVELOPES_MAX {
                            *count += 1;
                            batch.hold.push(*held);
                        }
                    }
                    batch.alarms.extend(refusal.alarm.map(|a| *a));
                    verdicts.push(Some(if refusal.retry {
                        Verdict::Deferred { reason: refusal.reason }
                    } else {
                        Verdict::Rejected { reason: refusal.reason }
                    }));
                }
            }
        }
        let commits: Vec<LineId> =
            batch.records.iter().filter(|r| r.content == Content::Handshake).map(|r| r.line.id).collect();
        let records = batch.records.clone();
        let early = faults
            .ack_before_commit
            .then(|| verdicts.iter().map(|v| v.clone().unwrap_or(Verdict::Accepted)).collect::<Vec<Verdict>>());
        if faults.crash_before_commit {
            self.crash();
            return Handled::Crashed { early };
        }
        let outcomes = if batch.is_empty() {
            Vec::new()
        } else {
            match self.commit(batch) {
                Ok(o) => o,
                Err(_) => {
                    self.crash();
                    return Handled::Crashed { early };
                }
            }
        };
        let mut inserted = Vec::new();
        for (slot, index) in slots {
            verdicts[slot] = Some(match &outcomes[index] {
                Outcome::Inserted => Verdict::Accepted,
                Outcome::Duplicate => Verdict::Duplicate,
                Outcome::Conflict { existing } => {
                    Verdict::Rejected { reason: format!("conflicts with stored envelope {existing}") }
                }
                Outcome::Mismatch { reason } => Verdict::Rejected { reason: reason.clone() },
            });
        }
        for (record, outcome) in records.into_iter().zip(&outcomes) {
            if *outcome == Outcome::Inserted {
                inserted.push(record);
            }
        }
        if faults.crash_after_commit {
            self.crash();
            return Handled::Crashed { early };
        }
        if !commits.is_empty() {
            match self.release_held(commits, now) {
                Ok(more) => inserted.extend(more),
                Err(_) => {
                    self.crash();
                    return Handled::Crashed { early };
                }
            }
        }
        let verdicts = match early {
            Some(v) => return Handled::Answered { verdicts: v, inserted, early: true },
            None => verdicts.into_iter().map(|v| v.unwrap_or(Verdict::Deferred { reason: "not decided".into() })),
        };
        Handled::Answered { verdicts: verdicts.collect(), inserted, early: false }
    }

    /// Hands the core the held envelopes whose epoch its group reached, commits what it makes of
    /// them with their release, and again while a taken envelope was itself a commit.
    pub fn release_held(&mut self, mut lines: Vec<LineId>, now: u64) -> Result<Vec<Record>, String> {
        let mut inserted = Vec::new();
        while !lines.is_empty() {
            lines.sort();
            lines.dedup();
            let me = self.code.clone();
            let up = self.up()?;
            let mut batch = WriteBatch::default();
            for line in std::mem::take(&mut lines) {
                let Some(epoch) = up.core.epoch(&line) else { continue };
                for h in up.store.held(&line, epoch).map_err(|e| e.to_string())? {
                    batch.release.push(h.hash);
                    if !matches!(up.store.envelope_at(&h.line, h.sender.as_str(), h.seq), Ok(None)) {
                        continue;
                    }
                    let result = up.core.receive(now, &h.sender, &h.bytes);
                    trace(&me, "held", &h.bytes, &result);
                    match result {
                        Ok(records) => batch.records.extend(records),
                        Err(refusal) if refusal.hold.is_some() => {
                            batch.release.pop();
                        }
                        Err(refusal) => batch.alarms.extend(refusal.alarm.map(|a| *a)),
                    }
                }
            }
            if batch.is_empty() {
                break;
            }
            lines = batch.records.iter().filter(|r| r.content == Content::Handshake).map(|r| r.line.id).collect();
            let records = batch.records.clone();
            let outcomes = self.commit(batch)?;
            inserted.extend(records.into_iter().zip(outcomes).filter(|(_, o)| *o == Outcome::Inserted).map(|(r, _)| r));
        }
        Ok(inserted)
    }

    /// What the core's timers cause at `now`, committed.
    pub fn tick(&mut self, now: u64) -> Result<(), String> {
        let up = self.up()?;
        let batch = up.core.tick(now);
        if batch.is_empty() {
            return Ok(());
        }
        self.commit(batch).map(|_| ())
    }

    /// Peers with envelopes queued for them.
    pub fn backlog(&self) -> Vec<(MemberCode, u64)> {
        let Some(up) = &self.up else { return Vec::new() };
        up.store.queue_stats().map(|s| s.into_iter().map(|q| (q.peer, q.len)).collect()).unwrap_or_default()
    }

    /// Why the oldest envelopes queued for `peer` wait, for a report.
    pub fn waiting(&self, peer: &MemberCode, now: u64) -> String {
        let Some(up) = &self.up else { return "down".into() };
        let items = up.store.outbox(peer, u64::MAX / 2, 3).unwrap_or_default();
        let why: Vec<String> = items
            .iter()
            .map(|i| {
                let e = Envelope::decode(&i.bytes, usize::MAX, usize::MAX).ok();
                let what =
                    e.map(|e| format!("#{} epoch {} type {}", e.body().seq, e.body().epoch, e.body().content_type));
                let row = up.store.recipients(&i.hash).unwrap_or_default().into_iter().find(|r| r.member == *peer);
                format!(
                    "{} after {} tries: {}",
                    what.unwrap_or_default(),
                    i.attempts,
                    row.and_then(|r| r.detail).unwrap_or_default()
                )
            })
            .collect();
        let due = up.store.outbox_next_due(peer).ok().flatten().map(|d| d as i64 - now as i64);
        format!("next due in {due:?} ms; {}", why.join("; "))
    }

    /// The next batch for `peer`, if one is due: (items, or the time the next one is due).
    pub fn outbox(&mut self, peer: &MemberCode, peer_index: usize, now: u64) -> Result<Vec<OutboxItem>, Option<u64>> {
        let Some(up) = self.up.as_mut() else { return Err(None) };
        up.links.entry(peer_index).or_default();
        match up.store.outbox(peer, now, up.core.limits().batch_len_max) {
            Ok(items) if !items.is_empty() => Ok(items),
            _ => Err(up.store.outbox_next_due(peer).ok().flatten()),
        }
    }

    /// Settles what a peer answered for a batch, as the node's link does.
    pub fn settle(
        &mut self,
        peer: &MemberCode,
        items: &[OutboxItem],
        verdicts: Vec<Verdict>,
        now: u64,
    ) -> Result<(), String> {
        let up = self.up()?;
        let mut alarms = Vec::new();
        let mut results = Vec::new();
        for (item, v) in items.iter().zip(verdicts) {
            let s = match v {
                Verdict::Accepted | Verdict::Duplicate => Settlement::Delivered,
                Verdict::Rejected { reason } => {
                    up.core.forget_ack(&item.hash, peer);
                    if reason.starts_with("cannot decrypt") {
                        alarms.extend(undecryptable_at_peer(peer, item, &reason, now));
                    }
                    Settlement::Refused { reason }
                }
                Verdict::Deferred { reason } => Settlement::Retry { at_ms: now + backoff_ms(item.attempts), reason },
            };
            results.push((item.hash, s));
        }
        up.store.settle(peer, results, now).wait_blocking().map_err(|e| e.to_string())?;
        if !alarms.is_empty() {
            self.commit(WriteBatch { alarms, ..WriteBatch::default() })?;
        }
        Ok(())
    }

    /// The envelopes this node stores of a line, with their exact bytes, by (sender, seq).
    pub fn stored(&self, line: &LineId) -> BTreeMap<(String, u64), (EnvelopeHash, Vec<u8>, bool)> {
        let mut out = BTreeMap::new();
        let Some(up) = &self.up else { return out };
        for hash in up.store.line_log(line).unwrap_or_default() {
            if let Ok(Some(row)) = up.store.envelope(&hash) {
                if let Ok(e) = Envelope::decode(&row.bytes, usize::MAX, usize::MAX) {
                    let b = e.body();
                    out.insert((b.sender.clone(), b.seq), (hash, row.bytes.clone(), row.signed_content.is_some()));
                }
            }
        }
        out
    }
}

fn undecryptable_at_peer(peer: &MemberCode, item: &OutboxItem, reason: &str, now: u64) -> Option<AlarmChange> {
    let e = Envelope::decode(&item.bytes, usize::MAX, usize::MAX).ok()?;
    let body = e.body();
    Some(AlarmChange {
        kind: AlarmKind::Undecryptable,
        op: AlarmOp::Raise,
        line: body.line,
        member: peer.clone(),
        message: Some(item.hash),
        at_ms: now,
        detail: format!("{peer} could not decrypt this node's envelope #{}: {reason}", body.seq),
        addressed_to: Vec::new(),
    })
}

/// With `ADI_SIM_TRACE` set to a line id's first hex digits, prints what each core made of each
/// envelope of that line it was given.
fn trace(me: &MemberCode, path: &str, bytes: &[u8], result: &Result<Vec<Record>, adi_core::Refusal>) {
    let Ok(prefix) = std::env::var("ADI_SIM_TRACE") else { return };
    let Ok(e) = Envelope::decode(bytes, usize::MAX, usize::MAX) else { return };
    let b = e.body();
    if !b.line.to_string().starts_with(&prefix) {
        return;
    }
    let what = match result {
        Ok(records) => format!("ok {:?}", records.iter().map(|r| r.content.kind()).collect::<Vec<_>>()),
        Err(r) => format!("refused (retry {}): {}", r.retry, r.reason),
    };
    eprintln!("{me} {path} {}#{} epoch {} type {}: {what}", b.sender, b.seq, b.epoch, b.content_type);
}
