//! One member's node in the simulation: the node's own engine (`adi_engine::Engine`, with the
//! real core and its MLS groups inside) and the real store (`adi_store::SqlStore`, a database
//! file per node), driven as the tokio node drives them, with the simulated clock and network in
//! place of tokio's. Everything between the core and the store (a batch's verdicts, held
//! envelopes and their release, the outbox settled with back-off and jitter, timers,
//! KeyPackages) is the engine's, so the simulation runs the code the node runs.
//!
//! The store commits synchronously here (each commit is awaited before the next step), so a run
//! is a function of its seed. A crash drops the engine and the store handle; whatever the core
//! decided but the store had not committed is gone, as after a power cut.

use std::collections::BTreeMap;
use std::path::PathBuf;

use adi_core::{Hotline, HotlineConfig, MemberCode, Record, Roster, WriteBatch};
use adi_engine::roster::{forged_alarm, Decision, Refusal, RosterBook, RosterLimits};
use adi_engine::{Engine, EngineConfig, LinkState, Received};
use adi_store::{Claimed, OutboxItem, Outcome, RosterApplied, RosterProposalKept, SqlStore, Store, StoreConfig};
use adi_wire::batch::Verdict;
use adi_wire::files::RosterVersionFile;
use adi_wire::{Envelope, EnvelopeHash, LineId};
use ed25519_dalek::SigningKey;

/// The sending side of one node's link to one peer.
#[derive(Debug, Default)]
pub struct Link {
    /// The batch in flight: its request id and what it carries.
    pub in_flight: Option<(u64, Vec<OutboxItem>)>,
    /// What the engine keeps of the link between attempts.
    pub state: LinkState,
    /// When a poll of this link is scheduled (simulated time), if one is.
    pub poll_at: Option<u64>,
}

/// A running node.
pub struct Up {
    pub engine: Engine,
    pub store: SqlStore,
    pub links: BTreeMap<usize, Link>,
    /// The core's next wake (its own clock) for which a tick is scheduled.
    pub tick_at: Option<u64>,
    /// The roster's chain as this node holds it (the engine's [`RosterBook`]).
    pub book: RosterBook,
    /// Per peer: the number of the roster version its node last said it holds, as the node's
    /// exchange learns it (kept in memory only: a restart forgets it).
    pub peer_roster: BTreeMap<usize, u64>,
}

impl Up {
    pub fn core(&self) -> &Hotline {
        self.engine.core()
    }

    /// The delay before the link to `peer` tries again after a failed attempt.
    pub fn link_failed(&mut self, peer: usize) -> u64 {
        let link = self.links.entry(peer).or_default();
        self.engine.link_failed(&mut link.state)
    }
}

pub struct SimNode {
    pub code: MemberCode,
    /// The byte the member's first signing key derives from (`adi_core::fixtures::key`).
    pub key_seed: u8,
    /// The key its node signs with (its configuration's): the first one until the node switches
    /// to the key a rotation gave it.
    pub signing_key: SigningKey,
    /// The new key of a rotation its administrator proposed, until the node switches to it.
    pub new_key: Option<SigningKey>,
    /// The member's system clock minus the simulation's; it may step while the node runs.
    pub wall_skew_ms: i64,
    /// The node's clock at each start: (simulation time, node time). As the runtime does, a node
    /// keeps time from its start by the simulation's steady clock, whatever its system clock does
    /// meanwhile, and starts from its system clock, or from the latest time its store recorded if
    /// the system clock reads earlier.
    pub clock: Vec<(u64, u64)>,
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

/// Where the listener crashes while handling a batch: between the engine's decision and the
/// store's commit, or after the commit but before the answer.
#[derive(Clone, Copy, Debug, Default)]
pub struct BatchFaults {
    pub crash_before_commit: bool,
    pub crash_after_commit: bool,
}

impl SimNode {
    /// A node not started yet, whose system clock is `wall_skew_ms` off the simulation's.
    pub fn new(code: MemberCode, key_seed: u8, wall_skew_ms: i64, path: PathBuf, sim_ms: u64) -> SimNode {
        let node_ms = (sim_ms as i64 + wall_skew_ms).max(0) as u64;
        let signing_key = adi_core::fixtures::key(key_seed);
        SimNode {
            code,
            key_seed,
            signing_key,
            new_key: None,
            wall_skew_ms,
            clock: vec![(sim_ms, node_ms)],
            path,
            up: None,
        }
    }

    /// This node's clock at simulation time `sim_ms` (since it last started).
    pub fn now(&self, sim_ms: u64) -> u64 {
        let (sim_at, node_at) = self.clock.last().copied().unwrap_or((0, 0));
        (node_at as i64 + (sim_ms as i64 - sim_at as i64)).max(0) as u64
    }

    /// The simulation time at which this node's clock, as it runs now, shows `node_ms`.
    pub fn sim_time(&self, node_ms: u64) -> u64 {
        let (sim_at, node_at) = self.clock.last().copied().unwrap_or((0, 0));
        (sim_at as i64 + (node_ms as i64 - node_at as i64)).max(0) as u64
    }

    /// This node's clock at simulation time `sim_ms`, in the run it was in then.
    pub fn at(&self, sim_ms: u64) -> u64 {
        let (sim_at, node_at) =
            self.clock.iter().rev().find(|(s, _)| *s <= sim_ms).or(self.clock.first()).copied().unwrap_or((0, 0));
        (node_at as i64 + (sim_ms as i64 - sim_at as i64)).max(0) as u64
    }

    /// The first time this node's clock read at a start at or after `node_ms`, if it started
    /// again then: a deadline that passed while it was down fires at that start.
    pub fn started_after(&self, node_ms: u64) -> Option<u64> {
        self.clock.iter().skip(1).map(|(_, n)| *n).filter(|n| *n >= node_ms).min()
    }

    /// The simulation time of a time this node recorded, in whichever run it recorded it: the
    /// last start whose clock began at or before `node_ms`.
    pub fn to_sim(&self, node_ms: u64) -> u64 {
        let (sim_at, node_at) =
            self.clock.iter().rev().find(|(_, n)| *n <= node_ms).or(self.clock.first()).copied().unwrap_or((0, 0));
        (sim_at as i64 + (node_ms as i64 - node_at as i64)).max(0) as u64
    }

    pub fn is_up(&self) -> bool {
        self.up.is_some()
    }

    /// Starts (or restarts) the node from its database at simulation time `sim_ms`, as
    /// `Node::start` does: load, take up time from the system clock (never earlier than the
    /// latest time stored), rebuild the roster's chain from the first roster, the versions its
    /// configuration names (`given`, recorded where the store lacks them) and those its store
    /// applied, with the proposals it kept, rebuild the core with its MLS state under the roster
    /// in force (still taking what was signed under the keys the chain retired by rotation), top
    /// up KeyPackages, and take held envelopes a commit released.
    pub fn start(
        &mut self,
        mut config: HotlineConfig,
        engine: EngineConfig,
        sim_ms: u64,
        first: &Roster,
        given: &[RosterVersionFile],
    ) -> Result<Vec<Record>, String> {
        let store = SqlStore::open(StoreConfig::new(&self.path, [7u8; 32])).map_err(|e| e.to_string())?;
        let wall = (sim_ms as i64 + self.wall_skew_ms).max(0) as u64;
        let book = roster_book(&store, first, given, wall)?;
        let restored = store.load(&self.code).map_err(|e| e.to_string())?;
        let now = wall.max(restored.latest_ms);
        self.clock.push((sim_ms, now));
        config.roster = book.current.roster.clone();
        let mut core = Hotline::new(config, restored, now).map_err(|e| e.message)?;
        for (member, key) in adi_engine::roster::retired_by_rotation(first, &book.versions) {
            core.retire_key(&member, key);
        }
        let used = store.used_key_packages().map_err(|e| e.to_string())?.into_iter().collect();
        let mut held: Vec<LineId> =
            store.held_counts(0).map_err(|e| e.to_string())?.into_iter().map(|c| c.line).collect();
        held.dedup();
        self.up = Some(Up {
            engine: Engine::new(core, used, engine),
            store,
            links: BTreeMap::new(),
            tick_at: None,
            book,
            peer_roster: BTreeMap::new(),
        });
        self.refill_key_packages(now)?;
        self.release_held(held, now)
    }

    /// A crash: the engine and everything not committed are gone.
    pub fn crash(&mut self) {
        self.up = None;
    }

    fn up(&mut self) -> Result<&mut Up, String> {
        self.up.as_mut().ok_or_else(|| format!("{} is down", self.code))
    }

    /// Commits a batch, sealed with the MLS state when it holds records, and waits for the commit.
    pub fn commit(&mut self, batch: WriteBatch) -> Result<Vec<Outcome>, String> {
        let up = self.up()?;
        let batch = up.engine.seal(batch).map_err(|e| e.to_string())?;
        up.store.commit(batch).wait_blocking().map_err(|e| e.to_string())
    }

    /// Tops the pool of unclaimed KeyPackages up.
    pub fn refill_key_packages(&mut self, now: u64) -> Result<(), String> {
        let up = self.up()?;
        let stale = up
            .store
            .key_packages_claimed_before(up.engine.key_packages_stale_before(now))
            .map_err(|e| e.to_string())?;
        if let Some(s) = up.engine.forget_stale_key_packages(stale).map_err(|e| e.to_string())? {
            up.store.drop_key_packages(s.state, s.references).wait_blocking().map_err(|e| e.to_string())?;
        }
        let available = up.store.key_packages_available().map_err(|e| e.to_string())?;
        let Some(made) = up.engine.make_key_packages(available).map_err(|e| e.to_string())? else { return Ok(()) };
        up.store.add_key_packages(made.state, made.with_refs, now).wait_blocking().map_err(|e| e.to_string())
    }

    /// The federation side of a KeyPackage claim: hands one out, once, and tops the pool up
    /// when it runs low; over the peer's quota, refused with the `quota` alarm naming it.
    pub fn hand_out_key_package(&mut self, peer: &MemberCode, now: u64) -> Result<Vec<u8>, ClaimRefused> {
        let up = self.up().map_err(ClaimRefused::Other)?;
        let per_hour_max = up.engine.limits().key_package_claims_per_hour_max;
        let claimed = up
            .store
            .claim_key_package(peer, now, per_hour_max)
            .wait_blocking()
            .map_err(|e| ClaimRefused::Other(e.to_string()))?;
        if let Claimed::OverQuota { claims } = claimed {
            let (reason, alarm) = up.engine.claims_over_quota(peer, claims, now);
            self.commit(WriteBatch { alarms: vec![alarm], ..WriteBatch::default() }).map_err(ClaimRefused::Other)?;
            return Err(ClaimRefused::OverQuota(reason));
        }
        let low = up.store.key_packages_available().map(|n| up.engine.key_packages_low(n)).unwrap_or(true);
        if claimed == Claimed::Empty || low {
            self.refill_key_packages(now).map_err(ClaimRefused::Other)?;
        }
        match claimed {
            Claimed::KeyPackage(bytes) => Ok(bytes),
            _ => Err(ClaimRefused::Other(format!("{} has no KeyPackage left", self.code))),
        }
    }

    /// The claiming side: checks a KeyPackage from `member` and records it used before use.
    pub fn take_key_package(
        &mut self,
        member: &MemberCode,
        bytes: &[u8],
        now: u64,
    ) -> Result<adi_mls::KeyPackage, String> {
        let up = self.up()?;
        let (reference, kp) = up.engine.check_key_package(member, bytes)?;
        match up.store.use_key_package(reference, member, now).wait_blocking() {
            Ok(true) => Ok(kp),
            Ok(false) => Err("KeyPackage used already".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The federation listener's handling of a batch from `peer`, driving the engine as the
    /// node's handler does.
    pub fn handle_batch(&mut self, peer: &MemberCode, body: &[u8], now: u64, faults: BatchFaults) -> Handled {
        let me = self.code.clone();
        let Some(up) = self.up.as_mut() else { return Handled::Crashed { early: None } };
        // A malformed batch is refused as a whole (the node answers 400): no verdicts.
        let Ok(envelopes) = adi_engine::split(up.engine.core_limits(), body) else {
            return Handled::Answered { verdicts: Vec::new(), inserted: Vec::new(), early: false };
        };
        let Ok(Received { write, answer }) = up.engine.receive(&up.store, peer, &envelopes, now) else {
            self.crash();
            return Handled::Crashed { early: None };
        };
        let early = answer.early().map(<[Verdict]>::to_vec);
        if faults.crash_before_commit {
            self.crash();
            return Handled::Crashed { early };
        }
        let records = write.as_ref().map(|w| w.records.clone()).unwrap_or_default();
        let outcomes = match write.map(|w| up.store.commit(w).wait_blocking()) {
            None => Vec::new(),
            Some(Ok(o)) => o,
            Some(Err(_)) => {
                self.crash();
                return Handled::Crashed { early };
            }
        };
        let answered = up.engine.answer(&up.store, answer, &outcomes);
        for (bytes, verdict) in envelopes.iter().zip(&answered.verdicts) {
            trace(&me, bytes, verdict);
        }
        let mut inserted: Vec<Record> =
            records.into_iter().zip(&outcomes).filter(|(_, o)| **o == Outcome::Inserted).map(|(r, _)| r).collect();
        if faults.crash_after_commit {
            self.crash();
            return Handled::Crashed { early };
        }
        match self.release_held(answered.release, now) {
            Ok(more) => inserted.extend(more),
            Err(_) => {
                self.crash();
                return Handled::Crashed { early };
            }
        }
        match early {
            Some(verdicts) => Handled::Answered { verdicts, inserted, early: true },
            None => Handled::Answered { verdicts: answered.verdicts, inserted, early: false },
        }
    }

    /// Hands the engine the held envelopes whose epoch the core's group reached and commits what
    /// it makes of them, again while a taken envelope was itself a commit.
    pub fn release_held(&mut self, mut lines: Vec<LineId>, now: u64) -> Result<Vec<Record>, String> {
        let mut inserted = Vec::new();
        while !lines.is_empty() {
            let up = self.up()?;
            let Some(release) = up.engine.release_held(&up.store, lines, now).map_err(|e| e.to_string())? else {
                break;
            };
            let (write, done) = release.into_parts();
            let records = write.records.clone();
            let result = up.store.commit(write).wait_blocking();
            lines = up.engine.released(done, result.is_ok());
            let outcomes = result.map_err(|e| e.to_string())?;
            inserted.extend(records.into_iter().zip(outcomes).filter(|(_, o)| *o == Outcome::Inserted).map(|(r, _)| r));
        }
        Ok(inserted)
    }

    /// What the core's timers cause at `now`, committed.
    pub fn tick(&mut self, now: u64) -> Result<(), String> {
        let up = self.up()?;
        match up.engine.tick(now).map_err(|e| e.to_string())? {
            Some(batch) => up.store.commit(batch).wait_blocking().map(|_| ()).map_err(|e| e.to_string()),
            None => Ok(()),
        }
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
                    row.and_then(|r| r.progress.detail).unwrap_or_default()
                )
            })
            .collect();
        let due = up.store.outbox_next_due(peer).ok().flatten().map(|d| d as i64 - now as i64);
        format!("next due in {due:?} ms; {}", why.join("; "))
    }

    /// The next batch for `peer`, if one is due: (items, or the time the next one is due).
    pub fn outbox(&mut self, peer: &MemberCode, peer_index: usize, now: u64) -> Result<Vec<OutboxItem>, Option<u64>> {
        let Some(up) = self.up.as_mut() else { return Err(None) };
        let len = up.links.entry(peer_index).or_default().state.batch_len(up.engine.core_limits().batch_len_max);
        match up.store.outbox(peer, now, len) {
            Ok(items) if !items.is_empty() => Ok(items),
            _ => Err(up.store.outbox_next_due(peer).ok().flatten()),
        }
    }

    /// Settles what `peer` answered for a batch, as the node's link does.
    pub fn settle(
        &mut self,
        peer_index: usize,
        peer: &MemberCode,
        items: &[OutboxItem],
        verdicts: Vec<Verdict>,
        now: u64,
    ) -> Result<(), String> {
        let up = self.up()?;
        let link = up.links.entry(peer_index).or_default();
        let settled = up.engine.settle(&mut link.state, peer, items, verdicts, now);
        up.store.settle(peer, settled.results, now).wait_blocking().map_err(|e| e.to_string())?;
        if !settled.alarms.is_empty() {
            self.commit(WriteBatch { alarms: settled.alarms, ..WriteBatch::default() })?;
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

/// The roster's chain as the node's `fed::roster::book` rebuilds it at a start: the first
/// version, then the configuration's versions (`given`; recorded as the node records them where
/// the store lacks them), then the versions the store applied, and the proposals it kept that
/// still amend the version in force.
fn roster_book(store: &SqlStore, first: &Roster, given: &[RosterVersionFile], now: u64) -> Result<RosterBook, String> {
    let mut book = RosterBook::first(first)?;
    let stored: Vec<RosterVersionFile> = store
        .roster_versions()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|b| serde_json::from_slice(b).map_err(|e| format!("a stored roster version cannot be read: {e}")))
        .collect::<Result<_, _>>()?;
    for file in given {
        book.extend(file.clone()).map_err(|e| format!("roster version {} of the configuration: {e}", file.number))?;
        if !stored.iter().any(|s| s.number == file.number) {
            let applied = RosterApplied {
                number: file.number,
                hash: book.current.hash,
                body: serde_json::to_vec(file).map_err(|e| e.to_string())?,
                actor: "administrator".into(),
                detail: format!("roster version {} taken from the configuration", file.number),
                now_ms: now,
            };
            store.roster_version_applied(applied).wait_blocking().map_err(|e| e.to_string())?;
        }
    }
    for file in stored {
        if file.number > book.current.number {
            let number = file.number;
            book.extend(file).map_err(|e| format!("roster version {number} in the database is refused: {e}"))?;
        }
    }
    let proposals = store.roster_proposals().map_err(|e| e.to_string())?;
    book.keep_stored(proposals.iter().filter_map(|b| serde_json::from_slice(b).ok()).collect());
    Ok(book)
}

/// What became of a roster version or proposal handed to a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Offered {
    /// It took effect: the version now in force.
    Applied(u64),
    /// Kept as a proposal; `new` when none of its hash was kept before.
    Kept {
        new: bool,
    },
    Unchanged,
    Stale,
    Ahead,
    /// Refused as forged or altered (a `misconduct` alarm names the peer that handed it over).
    Forged(String),
    /// Refused past a named limit.
    Limit(String),
    /// The node is down or could not record it.
    Failed(String),
}

/// Faults of the simulation's own driving of the roster, off unless a test turns one on to show
/// that the checker finds it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RosterBugs {
    /// A proposal that lacks signatures is recorded and put in force as if it met its rule.
    pub apply_short: bool,
    /// A version is recorded as applied but the core keeps the roster it had (a suspended
    /// member's envelopes are still taken).
    pub roster_not_in_force: bool,
    /// A rotating member's node is told it switched to its new key but goes on signing with the
    /// key the rotation retired (which the other nodes still take).
    pub keep_retired_key: bool,
}

impl SimNode {
    /// Hands a roster version or proposal to this node, as the node's `fed::roster::offer` does:
    /// decided by the engine's [`RosterBook`], recorded by the store, then put in force (the
    /// core's roster) or kept. A peer that hands over one that does not verify is named in a
    /// `misconduct` alarm.
    pub fn offer_roster(
        &mut self,
        peer: Option<&MemberCode>,
        actor: &str,
        file: RosterVersionFile,
        limits: &RosterLimits,
        bugs: RosterBugs,
        now: u64,
    ) -> Offered {
        let me = self.code.clone();
        let Some(up) = self.up.as_mut() else { return Offered::Failed(format!("{me} is down")) };
        let decision = match up.book.decide(&file, limits) {
            Ok(d) => d,
            Err(Refusal::Limit(m)) => return Offered::Limit(m),
            Err(Refusal::Forged(m)) => {
                if let Some(peer) = peer {
                    let batch = WriteBatch { alarms: vec![forged_alarm(peer, now, &m)], ..WriteBatch::default() };
                    if let Err(e) = self.commit(batch) {
                        return Offered::Failed(e);
                    }
                }
                return Offered::Forged(m);
            }
        };
        let (version, file, detail) = match decision {
            Decision::Stale => return Offered::Stale,
            Decision::Ahead => return Offered::Ahead,
            Decision::Unchanged => return Offered::Unchanged,
            Decision::Apply { version, file, detail } => (*version, file, detail),
            Decision::Keep { file, hash, new, changes, .. } if bugs.apply_short => {
                let Ok(version) = adi_core::amendment::check_proposal(&up.book.current, &file) else {
                    return Offered::Unchanged;
                };
                debug_assert_eq!(version.hash, hash);
                (version, file, format!("roster version applied short of signatures: {} ({new})", changes.join(", ")))
            }
            Decision::Keep { file, hash, new, changes, .. } => {
                let what = format!("roster version {} ({})", file.number, hex::encode(hash));
                let audit = match (peer, new) {
                    (_, true) => Some((
                        "roster_proposed".to_string(),
                        actor.to_string(),
                        format!("{what} proposed: {}", changes.join(", ")),
                    )),
                    (None, false) => {
                        Some(("roster_signed".to_string(), actor.to_string(), format!("{what} signed by {me}")))
                    }
                    (Some(_), false) => None,
                };
                let body = match serde_json::to_vec(&file) {
                    Ok(b) => b,
                    Err(e) => return Offered::Failed(e.to_string()),
                };
                let kept = RosterProposalKept { number: file.number, hash, body, audit, now_ms: now };
                if let Err(e) = up.store.roster_proposal_kept(kept).wait_blocking() {
                    return Offered::Failed(e.to_string());
                }
                up.book.kept(file, hash);
                return Offered::Kept { new };
            }
        };
        let number = version.number;
        let body = match serde_json::to_vec(&file) {
            Ok(b) => b,
            Err(e) => return Offered::Failed(e.to_string()),
        };
        let applied = RosterApplied { number, hash: version.hash, body, actor: actor.to_string(), detail, now_ms: now };
        if let Err(e) = up.store.roster_version_applied(applied).wait_blocking() {
            return Offered::Failed(e.to_string());
        }
        let roster = version.roster.clone();
        let rotated = adi_engine::roster::rotated(&up.book.current, &version);
        let replaced = adi_engine::roster::replaced(&up.book.current, &version);
        up.book.applied(version, file);
        if !bugs.roster_not_in_force {
            let core = up.engine.core_mut();
            core.set_roster(roster);
            // What a member signed under a key this version retired by rotation is still taken;
            // nothing under any earlier key of a member whose key it replaced.
            for member in replaced {
                core.distrust_retired_keys(&member);
            }
            for (member, key) in rotated {
                core.retire_key(&member, key);
            }
        }
        Offered::Applied(number)
    }

    /// The key the roster in force at this node lists for its member, as its administrator signs
    /// with it: the node's current key, or the new one a rotation gave it before the node
    /// switched.
    pub fn roster_key(&self) -> SigningKey {
        let listed = self.up.as_ref().and_then(|up| up.book.current.roster.member(&self.code).map(|m| m.signing_key));
        match &self.new_key {
            Some(new) if listed == Some(new.verifying_key()) => new.clone(),
            _ => self.signing_key.clone(),
        }
    }

    /// Switches the node to `new`, the key a rotation gave its member: the core signs with it from
    /// now on (`Hotline::rotate_key`) and its leaf on every line moves to it
    /// (`Hotline::renew_leaves`), committed with the MLS state in one batch. With `keep_old` (an
    /// injected fault), nothing moves, though the caller is told it did.
    pub fn switch_key(&mut self, new: SigningKey, now: u64, keep_old: bool) -> Result<Switched, String> {
        let me = self.code.clone();
        let old = self.signing_key.verifying_key();
        let up = self.up()?;
        let lines: Vec<LineId> = up.core().lines().map(|l| l.id).collect();
        let mut heads = BTreeMap::new();
        for line in lines {
            let places = up.store.line_places(&line).map_err(|e| e.to_string())?;
            let head = places.iter().filter(|(_, s, _)| *s == me.as_str()).map(|(_, _, q)| *q).max().unwrap_or(0);
            heads.insert(line, head);
        }
        if keep_old {
            return Ok(Switched { old, heads, records: Vec::new() });
        }
        let core = up.engine.core_mut();
        core.rotate_key(new.clone()).map_err(|e| e.message)?;
        let records = core.renew_leaves(now).map_err(|e| e.message)?;
        self.commit(WriteBatch { records: records.clone(), ..WriteBatch::default() })?;
        self.signing_key = new;
        self.new_key = None;
        Ok(Switched { old, heads, records })
    }

    /// Whether this node's roster in force lets `peer` reach it (listed and not suspended): the
    /// node's TLS listener and links take only those members' nodes.
    pub fn admits(&self, peer: &MemberCode) -> bool {
        self.up.as_ref().is_some_and(|up| {
            let roster = up.core().roster();
            roster.member(peer).is_some() && !roster.is_suspended(peer)
        })
    }
}

/// What a node's switch to its new key came to.
pub struct Switched {
    /// The key it switched away from.
    pub old: ed25519_dalek::VerifyingKey,
    /// Its last sequence number on each line it knows, before the switch.
    pub heads: BTreeMap<LineId, u64>,
    /// The records committed with the switch (its leaves moved to the new key).
    pub records: Vec<Record>,
}

/// Why a node did not hand a KeyPackage out.
#[derive(Debug)]
pub enum ClaimRefused {
    /// The peer reached its quota (`over_quota`).
    OverQuota(String),
    /// The node is down, has none left, or cannot write.
    Other(String),
}

impl std::fmt::Display for ClaimRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClaimRefused::OverQuota(why) | ClaimRefused::Other(why) => f.write_str(why),
        }
    }
}

/// With `ADI_SIM_TRACE` set to a line id's first hex digits, prints what each node answered to
/// each envelope of that line it was sent.
fn trace(me: &MemberCode, bytes: &[u8], verdict: &Verdict) {
    let Ok(prefix) = std::env::var("ADI_SIM_TRACE") else { return };
    let Ok(e) = Envelope::decode(bytes, usize::MAX, usize::MAX) else { return };
    let b = e.body();
    if !b.line.to_string().starts_with(&prefix) {
        return;
    }
    eprintln!("{me} batch {}#{} epoch {} type {}: {verdict:?}", b.sender, b.seq, b.epoch, b.content_type);
}
