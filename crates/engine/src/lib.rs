//! The node's engine: everything between the core ([`Hotline`]) and the outside world that is not
//! I/O, in one place that both drivers run: the tokio node (`adi-node`) and the deterministic
//! simulation (`adi-sim`).
//!
//! The engine never touches a socket, a clock or a commit. It takes inputs (a batch's bytes with
//! the member its connection authenticated, the time, what a commit came to, a peer's verdicts)
//! and returns outputs (a [`WriteBatch`] to commit, the verdicts to answer with, the lines whose
//! held envelopes may now be taken, the delay before a link tries again). It reads committed
//! state through the [`Store`] trait's synchronous reads; it never waits for a write. Each driver
//! commits what it is handed, in the order it was handed, and feeds the outcome back:
//!
//! - a batch from a peer: [`split`], then [`Engine::receive`] gives the write and an
//!   [`Answer`]; once the write is committed, [`Engine::answer`] gives the verdicts
//!   ([`incoming`]);
//! - held envelopes: [`Engine::release_held`] and [`Engine::released`] ([`held`]);
//! - what a peer answered to this node's batch: [`Engine::settle`] and the link's back-off
//!   ([`link`]);
//! - timers: [`Engine::tick`]; KeyPackages: [`Engine::make_key_packages`] and
//!   [`Engine::check_key_package`] ([`key_packages`]);
//! - roster versions and proposals handed over: [`roster::RosterBook::decide`], then, once
//!   recorded, [`roster::RosterBook::applied`] or [`roster::RosterBook::kept`] ([`roster`]).
//!
//! A fault deliberately built in ([`Bugs`]) lets the tests show that the simulation's checker and
//! a process-level test both catch a runtime that answers before it commits.

pub mod chain;
pub mod held;
pub mod incoming;
pub mod key_packages;
pub mod link;
pub mod roster;

use std::collections::{HashMap, HashSet};

use adi_core::{CoreError, Hotline, Limits, MemberCode, WriteBatch};
use adi_store::{Store, StoreError};
use adi_wire::{EnvelopeHash, LineId};
use rand::rngs::StdRng;
use rand::SeedableRng;

pub use held::Release;
pub use incoming::{split, Answer, Received};
pub use link::{LinkState, Settled};

/// The engine's named limits, with the node's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineLimits {
    /// Envelopes held per line for an epoch this node has not reached.
    pub held_envelopes_max: u64,
    /// Of those, the most one sender may have held on one line: no member fills a line's
    /// slots for the others.
    pub held_per_sender_max: u64,
    /// How far beyond this node's epoch of the line an envelope's epoch may be and still be held;
    /// one further ahead is deferred without being kept.
    pub held_epochs_ahead_max: u64,
    /// How long an envelope stays held; after that it is dropped, and its sender, which was
    /// answered `deferred`, sends it again.
    pub held_expiry_ms: u64,
    /// The first retry delay of a link or an envelope, doubled after each failure.
    pub retry_delay_ms_min: u64,
    /// The longest retry delay.
    pub retry_delay_ms_max: u64,
    /// Unclaimed KeyPackages kept for peers to claim.
    pub key_package_pool_len: u64,
    /// KeyPackages one peer may claim in an hour.
    pub key_package_claims_per_hour_max: u64,
    /// How long a claimed KeyPackage that no Welcome used is kept: after that it and its private
    /// key are deleted.
    pub key_package_claimed_ttl_ms: u64,
    /// Longest reason a peer's node may give for refusing or deferring an envelope, in
    /// characters, as it is kept and shown; what is longer is cut.
    pub peer_reason_chars_max: usize,
}

impl Default for EngineLimits {
    fn default() -> Self {
        EngineLimits {
            held_envelopes_max: 256,
            held_per_sender_max: 64,
            held_epochs_ahead_max: 64,
            held_expiry_ms: 7 * 24 * 3_600_000,
            retry_delay_ms_min: 100,
            retry_delay_ms_max: 30_000,
            key_package_pool_len: 32,
            key_package_claims_per_hour_max: 120,
            key_package_claimed_ttl_ms: 7 * 24 * 3_600_000,
            peer_reason_chars_max: 500,
        }
    }
}

/// Faults built into the engine on purpose, off unless a test turns them on, to show that the
/// checks of the simulation and of the process-level tests find a runtime that breaks its
/// promises.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bugs {
    /// A batch is answered `accepted` before its commit: [`Answer::early`] holds the verdicts,
    /// and each driver sends them before it waits for the commit.
    pub ack_before_commit: bool,
    /// Envelopes from a later epoch are held from one member beyond `held_per_sender_max`.
    pub hold_beyond_quota: bool,
}

impl Bugs {
    /// The faults named in a comma-separated list (`ack_before_commit`, `hold_beyond_quota`);
    /// any other name is ignored.
    pub fn named(list: &str) -> Bugs {
        let on = |name: &str| list.split(',').any(|b| b.trim() == name);
        Bugs { ack_before_commit: on("ack_before_commit"), hold_beyond_quota: on("hold_beyond_quota") }
    }

    pub fn any(&self) -> bool {
        self.ack_before_commit || self.hold_beyond_quota
    }

    /// The names of the faults injected.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.ack_before_commit {
            names.push("ack_before_commit");
        }
        if self.hold_beyond_quota {
            names.push("hold_beyond_quota");
        }
        names
    }
}

/// What the engine needs besides the core.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub limits: EngineLimits,
    pub bugs: Bugs,
    /// Seeds the jitter of retry delays: drawn from the system's entropy by the node, from the
    /// run's seed by the simulation, so that a simulated run replays exactly.
    pub jitter_seed: u64,
}

/// Why the engine could not do what it was asked.
#[derive(Debug)]
pub enum EngineError {
    /// A read of the store failed.
    Store(StoreError),
    /// The core failed (its MLS state could not be snapshotted, say).
    Core(CoreError),
    /// An MLS object this node made itself could not be read back.
    Mls(String),
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineError::Store(e) => write!(f, "cannot read the store: {e}"),
            EngineError::Core(e) => write!(f, "{}", e.message),
            EngineError::Mls(e) => write!(f, "MLS: {e}"),
        }
    }
}

impl std::error::Error for EngineError {}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        EngineError::Store(e)
    }
}

impl From<CoreError> for EngineError {
    fn from(e: CoreError) -> Self {
        EngineError::Core(e)
    }
}

/// Where an envelope from a peer sits: (line, sender, sequence number).
pub type Place = (LineId, String, u64);

/// One member's engine.
pub struct Engine {
    core: Hotline,
    limits: EngineLimits,
    bugs: Bugs,
    /// Envelopes from peers handed to the store but not committed yet, by place, with the store
    /// generation they were handed in: a copy arriving meanwhile is deferred, not decrypted twice.
    in_flight: HashMap<Place, (EnvelopeHash, u64)>,
    /// The store generation the core was built for ([`Store::resume`]).
    generation: u64,
    /// References of peers' KeyPackages used here: one offered again is refused.
    key_packages_seen: HashSet<Vec<u8>>,
    rng: StdRng,
}

impl Engine {
    /// An engine around a core built from the store, with the references of the peers'
    /// KeyPackages the store records as used.
    pub fn new(core: Hotline, key_packages_seen: HashSet<Vec<u8>>, config: EngineConfig) -> Engine {
        if config.bugs.any() {
            tracing::error!(bugs = ?config.bugs, "faults are injected on purpose: this engine breaks its promises");
        }
        Engine {
            core,
            limits: config.limits,
            bugs: config.bugs,
            in_flight: HashMap::new(),
            generation: 0,
            key_packages_seen,
            rng: StdRng::seed_from_u64(config.jitter_seed),
        }
    }

    pub fn core(&self) -> &Hotline {
        &self.core
    }

    pub fn core_mut(&mut self) -> &mut Hotline {
        &mut self.core
    }

    pub fn limits(&self) -> &EngineLimits {
        &self.limits
    }

    pub fn core_limits(&self) -> &Limits {
        self.core.limits()
    }

    pub fn me(&self) -> &MemberCode {
        self.core.me()
    }

    pub fn bugs(&self) -> Bugs {
        self.bugs
    }

    /// The store generation the core was last built for.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Puts a core built again from the store (after the store failed and took writes again) in
    /// place of one that may be ahead of it; whatever was in flight belonged to the old one.
    pub fn rebuilt(&mut self, core: Hotline, key_packages_seen: HashSet<Vec<u8>>, generation: u64) {
        self.core = core;
        self.key_packages_seen = key_packages_seen;
        self.in_flight.clear();
        self.generation = generation;
    }

    /// Adds the MLS state to a batch that holds records, so that what is stored with them is
    /// never older than what they were made with.
    pub fn seal(&mut self, mut batch: WriteBatch) -> Result<WriteBatch, EngineError> {
        if !batch.records.is_empty() && batch.mls_state.is_none() {
            batch.mls_state = Some(self.core.mls_delta()?);
            batch.key_packages_used.extend(self.core.take_used_key_packages());
        }
        Ok(batch)
    }

    /// What the core's timers cause at `now` (deadlines, escalations, link tests, key updates),
    /// ready to commit; `None` when nothing is due.
    pub fn tick(&mut self, now_ms: u64) -> Result<Option<WriteBatch>, EngineError> {
        let batch = self.core.tick(now_ms);
        if batch.is_empty() {
            return Ok(None);
        }
        self.seal(batch).map(Some)
    }

    /// Whether this member acknowledged or declined `message`, as committed.
    pub fn answered_here(&self, store: &dyn Store, message: &EnvelopeHash) -> bool {
        let me = self.me();
        store.receipts(message).map(|rs| rs.iter().any(|r| r.member == *me && r.kind.settles())).unwrap_or(false)
    }

    /// A message that arrived again after this member had answered it must not wait for an
    /// answer again: the core forgets it.
    pub fn forget_if_answered(&mut self, store: &dyn Store, message: &EnvelopeHash) {
        if self.answered_here(store, message) {
            let me = self.me().clone();
            self.core.forget_ack(message, &me);
        }
    }

    /// Forgets the places handed to the store in `generation` once their commit is settled. An
    /// entry of a later generation (the core was built again meanwhile) is another attempt's.
    fn forget_in_flight(&mut self, places: &[Place], generation: u64) {
        for place in places {
            if self.in_flight.get(place).is_some_and(|(_, g)| *g == generation) {
                self.in_flight.remove(place);
            }
        }
    }
}
