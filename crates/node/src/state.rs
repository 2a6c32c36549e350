//! The node's shared state: what every task of a running node holds ([`NodeState`]): the engine
//! with the core inside, the store, the links' status, the roster and the TLS identity, and
//! whether the node takes writes.
//!
//! A commit that fails (a full disk, a read-only database) puts the node in a refuse-writes state:
//! the core may then be ahead of what the store holds. The state keeps why and since when
//! ([`StorageFailure`]) and answers a refused write with a [`StorageRefusal`], its own error, which
//! the HTTP surfaces turn into their answer; the driver's probe builds the core again from the
//! store (`NodeState::rebuild_core`) once a durable write commits again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};

use adi_core::{
    AlarmChange, AlarmKind, AlarmOp, DisciplineConfig, Hotline, HotlineConfig, Limits, Member, MemberCode, Roster,
};
use adi_engine::roster::RosterBook;
use adi_engine::Engine;
use adi_store::{SqlStore, Store, StoreConfig, StoreError, WriteFault};
use ed25519_dalek::SigningKey;
use tokio::sync::{watch, Notify};

use crate::clock::{keep_time_from, now_ms};
use crate::config::{KeyFiles, NextKeys, NodeConfig, RuntimeLimits};
use crate::tls::{self, PinSet, Pins, Presented};

/// Why, and since when, the node cannot commit writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageFailure {
    pub fault: WriteFault,
    pub since_ms: u64,
    /// The store generation in which the first write failed.
    pub generation: u64,
}

/// The stable code of a storage fault, as the API reports it.
pub fn fault_code(fault: &WriteFault) -> &'static str {
    match fault {
        WriteFault::DiskFull => "storage_full",
        WriteFault::ReadOnly => "storage_read_only",
        WriteFault::Failed(_) => "storage_failed",
    }
}

/// A storage fault in a sentence for operators.
pub fn fault_text(fault: &WriteFault) -> String {
    match fault {
        WriteFault::DiskFull => "the node's database disk is full".into(),
        WriteFault::ReadOnly => "the node's database is read-only".into(),
        WriteFault::Failed(why) => format!("the node's database cannot be written: {why}"),
    }
}

/// A write refused because the node's database cannot be written, naming the cause: the node
/// refuses writes until the database takes them again, and then takes them by itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageRefusal {
    pub fault: WriteFault,
}

impl std::fmt::Display for StorageRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&fault_text(&self.fault))
    }
}

impl std::error::Error for StorageRefusal {}

/// What the core is built from besides the store, kept to build it again after a storage failure.
#[derive(Clone)]
pub(crate) struct CoreSeed {
    me: MemberCode,
    signing_key: SigningKey,
    limits: Limits,
    default_caveat: String,
    discipline: DisciplineConfig,
    store_name: String,
}

impl CoreSeed {
    pub(crate) fn of(config: &NodeConfig) -> CoreSeed {
        CoreSeed {
            me: config.member.clone(),
            signing_key: config.signing_key.clone(),
            limits: config.limits.clone(),
            default_caveat: config.default_caveat.clone(),
            discipline: config.discipline.clone(),
            store_name: config.store_name(),
        }
    }
}

/// Builds the core from what the store holds (lines, chain heads, awaited acknowledgements and
/// the MLS state, as last committed) under the roster in effect, and reads the references of the
/// peers' KeyPackages used here.
pub(crate) fn load_core(
    seed: &CoreSeed,
    roster: &Roster,
    store: &dyn Store,
) -> anyhow::Result<(Hotline, HashSet<Vec<u8>>)> {
    let restored = store.load(&seed.me)?;
    keep_time_from(restored.latest_ms);
    let used_key_packages = store.used_key_packages()?.into_iter().collect();
    let config = HotlineConfig {
        me: seed.me.clone(),
        signing_key: seed.signing_key.clone(),
        roster: roster.clone(),
        limits: seed.limits.clone(),
        default_caveat: seed.default_caveat.clone(),
        discipline: seed.discipline.clone(),
    };
    let core = Hotline::new(config, restored, now_ms())
        .map_err(|e| anyhow::anyhow!("{}: the MLS state cannot be restored: {e}", seed.store_name))?;
    Ok((core, used_key_packages))
}

/// The keys a node starts with: the TLS certificate it presents, the retired TLS pins it still
/// admits, and the keys it moves to if a rotation is under way.
pub(crate) struct KeysAtStart {
    pub identity: Presented,
    pub overlap: HashMap<[u8; 32], (MemberCode, u64)>,
    pub rotation: Option<NextKeys>,
}

/// What every task of a running node shares.
pub struct NodeState {
    pub member: MemberCode,
    /// Where operators reach the nodes of this member's active/standby pair, this one first;
    /// empty for a node run alone.
    pub pair_urls: Vec<String>,
    /// The Content-Security-Policy every answer of the API carries, made from `pair_urls` once,
    /// at the first answer.
    pub console_policy: OnceLock<axum::http::HeaderValue>,
    /// The node's figures for Prometheus (`monitor` serves them).
    pub metrics: crate::metrics::Metrics,
    /// The engine, with the core inside: every decision between the network, the operators and
    /// the store is its.
    engine: Mutex<Engine>,
    pub store: Arc<dyn Store>,
    /// One link per other member of the roster in effect (kept for a member suspended or removed
    /// since, which then stays idle).
    links: RwLock<BTreeMap<MemberCode, Arc<Link>>>,
    pub limits: Limits,
    pub runtime_limits: RuntimeLimits,
    /// The roster in effect, as the version chain stands (`fed::roster` changes it).
    roster: RwLock<Arc<Roster>>,
    /// The roster's versions and the proposals kept.
    book: Mutex<RosterBook>,
    /// The first version's roster.
    first_roster: Roster,
    /// The TLS keys of the members whose nodes the federation listener admits: every member of
    /// the roster in effect but this one and those suspended, and the keys their own rotations
    /// retired while the overlap lasts.
    pins: Pins,
    /// The keys this node moves to once every peer holds the roster version that gave them to
    /// this member (`fed::rotation`), while a rotation is under way.
    rotation: Mutex<Option<NextKeys>>,
    /// The number of the roster version in effect, for the tasks that follow its changes.
    roster_number: watch::Sender<u64>,
    /// Serialises what changes the roster's book, so that each offer is decided on the last.
    pub roster_lock: tokio::sync::Mutex<()>,
    /// Serialises key rotations, from their keys written beside the key files to their version
    /// offered: a second one waits and finds the first under way.
    pub rotation_lock: tokio::sync::Mutex<()>,
    /// The number of the roster version each peer's node last said it holds.
    peer_roster: Mutex<std::collections::HashMap<MemberCode, u64>>,
    /// Woken when the node has something new to hand its peers (a proposal, a signature, a
    /// version): the roster task exchanges with every peer at once.
    pub roster_wake: Notify,
    /// The TLS certificate this node presents, to peers and to operators.
    pub identity: Presented,
    /// Its key files, which a rotation replaces.
    pub key_files: KeyFiles,
    /// Set while the node refuses writes after a failed commit, so that nothing is acknowledged on
    /// top of state that may not be on disk; cleared once the core was rebuilt from the store.
    pub storage_failed: AtomicBool,
    /// Set when the node stops: open event streams end, so that clients reconnect to whatever
    /// serves the address next instead of waiting on a stopped node.
    pub stopped: AtomicBool,
    /// Why writes are refused, while they are (the open storage alarm, kept in memory until the
    /// database takes it).
    storage: watch::Sender<Option<StorageFailure>>,
    /// The store's generation ([`Store::resume`]): a write refused for an older one belongs to a
    /// failure the node has recovered from since.
    generation: AtomicU64,
    /// Replaced, with the signing key in it, when the node moves to its rotated key.
    seed: RwLock<CoreSeed>,
    pub started_ms: u64,
    /// Woken when the core may want an earlier tick.
    pub clock: Notify,
    /// Woken after commits that may have added events.
    pub events: Notify,
    /// Serialises this node's own receipts, so that "acknowledged twice" is decided on committed state.
    pub receipts: tokio::sync::Mutex<()>,
    pub release_required: bool,
    /// Serialises refills of the KeyPackage pool.
    pub key_package_refill: tokio::sync::Mutex<()>,
    /// The program that draws PDF pages for previews, and its turns.
    pub previews: crate::preview::Previews,
    /// The bounds on console sign-in attempts.
    pub sign_in: crate::throttle::Throttle,
    /// Whether the API (and the console) is served over TLS: session cookies are then Secure.
    pub api_tls: bool,
    /// Console sessions whose page holds the event stream open, by session hash, with how many
    /// streams each holds: such a session lasts up to `session_watch_ms`.
    watching: Mutex<std::collections::HashMap<[u8; 32], usize>>,
    /// The key of the console's watch cookies (`http::console`), drawn at start: a restart ends
    /// what the pages held.
    pub watch_key: [u8; 32],
}

/// A console session's event stream held open; dropped when the stream ends.
pub struct Watching {
    node: Arc<NodeState>,
    hash: [u8; 32],
}

impl Drop for Watching {
    fn drop(&mut self) {
        let mut w = self.node.watching.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = w.get_mut(&self.hash) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                w.remove(&self.hash);
            }
        }
    }
}

impl NodeState {
    /// Notes that a console session's page holds an event stream open, until the guard drops.
    pub fn watching(self: &Arc<Self>, hash: [u8; 32]) -> Watching {
        *self.watching.lock().unwrap_or_else(|p| p.into_inner()).entry(hash).or_default() += 1;
        Watching { node: self.clone(), hash }
    }

    /// Whether a console session's page holds an event stream open here.
    /// How many sessions hold an event stream open on this node.
    pub fn watching_sessions(&self) -> usize {
        self.watching.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_watching(&self, hash: &[u8; 32]) -> bool {
        self.watching.lock().unwrap_or_else(|p| p.into_inner()).contains_key(hash)
    }
}

/// The engine's core, locked with the engine.
pub struct CoreGuard<'a>(MutexGuard<'a, Engine>);

impl Deref for CoreGuard<'_> {
    type Target = Hotline;
    fn deref(&self) -> &Hotline {
        self.0.core()
    }
}

impl DerefMut for CoreGuard<'_> {
    fn deref_mut(&mut self) -> &mut Hotline {
        self.0.core_mut()
    }
}

impl NodeState {
    /// The state of a node starting from `config`, around its engine and its opened store; one
    /// [`Link`] per other roster member. The node takes writes until a commit fails.
    pub(crate) fn new(
        config: &NodeConfig,
        book: RosterBook,
        engine: Engine,
        store: SqlStore,
        seed: CoreSeed,
        keys: KeysAtStart,
    ) -> NodeState {
        let KeysAtStart { identity, overlap, rotation } = keys;
        let roster = book.current.roster.clone();
        let links = roster
            .members()
            .filter(|m| m.code != config.member)
            .map(|m| (m.code.clone(), Link::new(m.code.clone())))
            .collect();
        let pins = Arc::new(RwLock::new(PinSet { current: admitted_pins(&roster, &config.member), overlap }));
        NodeState {
            member: config.member.clone(),
            pair_urls: config
                .pair
                .iter()
                .flat_map(|p| std::iter::once(p.api_url.clone()).chain(p.other_api_url.clone()))
                .collect(),
            console_policy: OnceLock::new(),
            metrics: crate::metrics::Metrics::new(),
            engine: Mutex::new(engine),
            store: Arc::new(store),
            links: RwLock::new(links),
            limits: config.limits.clone(),
            runtime_limits: config.runtime_limits.clone(),
            roster_number: watch::channel(book.current.number).0,
            roster: RwLock::new(Arc::new(roster)),
            book: Mutex::new(book),
            first_roster: config.first_roster.clone(),
            pins,
            roster_lock: tokio::sync::Mutex::new(()),
            rotation_lock: tokio::sync::Mutex::new(()),
            roster_wake: Notify::new(),
            peer_roster: Mutex::new(std::collections::HashMap::new()),
            identity,
            key_files: config.key_files(),
            rotation: Mutex::new(rotation),
            storage_failed: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            storage: watch::channel(None).0,
            generation: AtomicU64::new(0),
            seed: RwLock::new(seed),
            started_ms: now_ms(),
            clock: Notify::new(),
            events: Notify::new(),
            receipts: tokio::sync::Mutex::new(()),
            release_required: config.release_required,
            sign_in: crate::throttle::Throttle::new(&config.runtime_limits),
            watching: Mutex::new(std::collections::HashMap::new()),
            watch_key: rand::random(),
            api_tls: config.api_tls,
            key_package_refill: tokio::sync::Mutex::new(()),
            previews: crate::preview::Previews::new(
                config.previewer.clone(),
                config.runtime_limits.preview_concurrency_max,
            ),
        }
    }

    /// The engine, locked. The lock is never held across an await.
    pub fn engine(&self) -> MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The core, locked (with the engine around it). The lock is never held across an await.
    pub fn core(&self) -> CoreGuard<'_> {
        CoreGuard(self.engine())
    }

    /// The roster in effect.
    pub fn roster(&self) -> Arc<Roster> {
        self.roster.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn roster_member(&self, code: &MemberCode) -> Option<Member> {
        self.roster().member(code).cloned()
    }

    /// The member, neither suspended nor this one, whose node TLS key has this pin (or had it,
    /// while the overlap after its rotation lasts).
    pub fn roster_member_by_pin(&self, pin: &[u8; 32]) -> Option<MemberCode> {
        self.pins.read().unwrap_or_else(|p| p.into_inner()).member(pin, now_ms()).cloned()
    }

    /// The TLS client configuration towards a member's node: this node's certificate as it
    /// stands at each handshake, and the member's pin in the roster in force or one its rotation
    /// retired while the overlap lasts (its node moves to its new key a little after the version).
    pub fn client_config(&self, member: &Member) -> anyhow::Result<rustls::ClientConfig> {
        let mut pins = vec![member.tls_pin];
        pins.extend(self.pins.read().unwrap_or_else(|p| p.into_inner()).overlapping(&member.code, now_ms()));
        tls::federation_client(&self.identity, pins)
    }

    /// The rotation under way, if any: the keys this node moves to.
    pub fn rotation(&self) -> Option<NextKeys> {
        self.rotation.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn set_rotation(&self, next: Option<NextKeys>) {
        *self.rotation.lock().unwrap_or_else(|p| p.into_inner()) = next;
    }

    /// After the node moved to its rotated keys: it signs with the new key from now on (also
    /// when the core is built again from the store) and presents the new certificate at each
    /// handshake.
    pub(crate) fn moved_to(&self, next: &NextKeys) -> anyhow::Result<()> {
        self.identity.replace(next.cert.clone(), &next.key)?;
        self.seed.write().unwrap_or_else(|p| p.into_inner()).signing_key = next.signing_key.clone();
        self.set_rotation(None);
        Ok(())
    }

    /// The pins the federation listener admits, shared with its certificate verifier.
    pub fn pins(&self) -> Pins {
        self.pins.clone()
    }

    /// The roster's first version's roster, as the configuration gave it.
    pub fn first_roster(&self) -> Roster {
        self.first_roster.clone()
    }

    /// The roster's versions and proposals, as they stand.
    pub fn roster_book(&self) -> RosterBook {
        self.book.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Changes the roster's versions and proposals under their lock.
    pub(crate) fn with_roster_book<T>(&self, f: impl FnOnce(&mut RosterBook) -> T) -> T {
        f(&mut self.book.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Notes the roster version a peer's node said it holds.
    pub(crate) fn note_peer_roster(&self, peer: &MemberCode, number: u64) {
        let mut known = self.peer_roster.lock().unwrap_or_else(|p| p.into_inner());
        let at = known.entry(peer.clone()).or_default();
        let rose = number > *at;
        *at = (*at).max(number);
        drop(known);
        // A rotation under way waits for every peer to hold its version: the roster task looks
        // again at once.
        if rose && self.rotation().is_some() {
            self.roster_wake.notify_one();
        }
    }

    /// The roster version a peer's node last said it holds (0 if it said nothing yet).
    pub fn peer_roster(&self, peer: &MemberCode) -> u64 {
        self.peer_roster.lock().unwrap_or_else(|p| p.into_inner()).get(peer).copied().unwrap_or(0)
    }

    /// Follows the number of the roster version in effect.
    pub fn roster_watch(&self) -> watch::Receiver<u64> {
        self.roster_number.subscribe()
    }

    /// Puts a roster version that took effect in force, without a restart: the core checks
    /// envelopes and lines against it (and keeps taking what was signed under a key it retired by
    /// rotation), the listener admits the nodes it lists (and no longer a
    /// member it suspends or removes), a member it admits gets a link, and the tasks that follow
    /// the roster are told.
    pub(crate) fn roster_took_effect(
        &self,
        before: &adi_core::amendment::RosterVersion,
        version: &adi_core::amendment::RosterVersion,
    ) {
        let roster = version.roster.clone();
        {
            let mut core = self.core();
            core.set_roster(roster.clone());
            // What a member signed under a key this version retired by rotation is still taken.
            for member in adi_engine::roster::replaced(before, version) {
                core.distrust_retired_keys(&member);
            }
            for (member, key) in adi_engine::roster::rotated(before, version) {
                core.retire_key(&member, key);
            }
        }
        {
            let now = now_ms();
            let mut pins = self.pins.write().unwrap_or_else(|p| p.into_inner());
            pins.current = admitted_pins(&roster, &self.member);
            // A member's own rotation: its node is admitted under its old TLS key a while longer.
            let gone = adi_engine::roster::replaced(before, version);
            let until = now.saturating_add(self.runtime_limits.rotation_overlap_ms);
            pins.overlap.retain(|_, (m, until)| !gone.contains(m) && now < *until);
            // Only the pin retired last: a member rotates again once its node has moved.
            for (member, pin) in adi_engine::roster::pins_retired(before, version) {
                if member != self.member {
                    pins.overlap.retain(|_, (m, _)| *m != member);
                    pins.overlap.insert(pin, (member, until));
                }
            }
        }
        {
            let mut links = self.links.write().unwrap_or_else(|p| p.into_inner());
            for m in roster.members().filter(|m| m.code != self.member) {
                links.entry(m.code.clone()).or_insert_with(|| Link::new(m.code.clone()));
            }
        }
        *self.roster.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(roster);
        self.roster_number.send_replace(version.number);
        for link in self.links() {
            link.wake.notify_one();
        }
    }

    /// This member's signature of a roster version, by its node's key.
    pub fn sign_roster_version(&self, hash: &[u8; 32]) -> adi_wire::files::RosterSignature {
        adi_core::amendment::sign(&self.member, &self.seed.read().unwrap_or_else(|p| p.into_inner()).signing_key, hash)
    }

    /// The link towards a peer, if the node has one.
    pub fn link(&self, peer: &MemberCode) -> Option<Arc<Link>> {
        self.links.read().unwrap_or_else(|p| p.into_inner()).get(peer).cloned()
    }

    /// Every link, by peer.
    pub fn links(&self) -> Vec<Arc<Link>> {
        self.links.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    /// Takes note of a write that was not committed: the node refuses writes until the database
    /// takes them again. Returns the refusal to answer with.
    pub fn fail_storage(&self, e: &StoreError) -> StorageRefusal {
        let current = self.generation();
        let (fault, generation) = match e {
            StoreError::Unwritable { fault, generation } => (fault.clone(), *generation),
            other => (WriteFault::Failed(other.to_string()), current),
        };
        // A write refused for a failure the node has recovered from since: nothing new failed.
        if generation >= current {
            self.storage_fault(&fault, generation);
        }
        StorageRefusal { fault }
    }

    /// Enters (or stays in) the refuse-writes state, naming the cause as it now stands.
    pub(crate) fn storage_fault(&self, fault: &WriteFault, generation: u64) {
        let mut raised = false;
        self.storage.send_if_modified(|s| {
            self.storage_failed.store(true, Ordering::SeqCst);
            match s {
                Some(f) if f.generation >= generation && f.fault == *fault => false,
                Some(f) if f.generation >= generation => {
                    f.fault = fault.clone();
                    true
                }
                // None, or a failure recovered from whose state is not cleared yet.
                _ => {
                    *s = Some(StorageFailure { fault: fault.clone(), since_ms: now_ms(), generation });
                    raised = true;
                    true
                }
            }
        });
        if raised {
            self.metrics.storage_faults.inc();
            tracing::error!(%fault, "a commit failed; writes are refused until the database takes them again");
            self.events.notify_waiters();
        }
    }

    /// Why the node refuses writes, if it does.
    pub fn storage_failure(&self) -> Option<StorageFailure> {
        self.storage.borrow().clone()
    }

    /// Follows why the node refuses writes, as it changes.
    pub(crate) fn storage_watch(&self) -> watch::Receiver<Option<StorageFailure>> {
        self.storage.subscribe()
    }

    /// Resolves once the node takes writes (at once if it does).
    pub async fn writable(&self) {
        let mut storage = self.storage.subscribe();
        let _ = storage.wait_for(Option::is_none).await;
    }

    /// The store generation the node's core was last built for.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// The storage alarm, which concerns this node and no line.
    pub fn storage_alarm(&self, op: AlarmOp, at_ms: u64, detail: String) -> AlarmChange {
        AlarmChange {
            kind: AlarmKind::Storage,
            op,
            line: adi_wire::LineId([0; 16]),
            member: self.member.clone(),
            message: None,
            at_ms,
            detail,
            addressed_to: Vec::new(),
        }
    }

    /// Once a durable write committed again: the core built again from the store, as at start, in
    /// place of one that may be ahead of it, for the store's new generation; the refuse-writes
    /// state then ends, unless a write of the new generation failed already, which is a new
    /// failure. Returns whether the node takes writes again.
    pub(crate) fn rebuild_core(&self) -> bool {
        let seed = self.seed.read().unwrap_or_else(|p| p.into_inner()).clone();
        let (mut core, used_key_packages) = match load_core(&seed, &self.roster(), self.store.as_ref()) {
            Ok(loaded) => loaded,
            Err(e) => {
                tracing::error!(error = %e, "the database takes writes again, but the core cannot be built from it");
                return false;
            }
        };
        for (member, key) in adi_engine::roster::retired_by_rotation(&self.first_roster, &self.roster_book().versions) {
            core.retire_key(&member, key);
        }
        let generation = {
            // Under the engine's lock, as every write computed from the core is handed to the
            // store: the writes of the old core are all older than the store's new generation.
            let mut engine = self.engine();
            let generation = self.store.resume();
            engine.rebuilt(core, used_key_packages, generation);
            self.generation.store(generation, Ordering::SeqCst);
            generation
        };
        // Unless a write of the new generation failed already, which is a new failure.
        self.storage.send_if_modified(|s| {
            if s.as_ref().is_some_and(|f| f.generation < generation) {
                *s = None;
                self.storage_failed.store(false, Ordering::SeqCst);
                true
            } else {
                false
            }
        })
    }

    /// After a commit: wakes the links towards these peers (their outboxes grew), the clock (the
    /// core may have a new timer) and the event streams.
    pub fn committed(&self, peers: &[MemberCode]) {
        for p in peers {
            if let Some(link) = self.link(p) {
                link.wake.notify_one();
            }
        }
        self.clock.notify_one();
        self.events.notify_waiters();
    }
}

/// The pins of every member of `roster` but `me` and those it suspends.
fn admitted_pins(roster: &Roster, me: &MemberCode) -> HashMap<[u8; 32], MemberCode> {
    roster
        .members()
        .filter(|m| m.code != *me && !roster.is_suspended(&m.code))
        .map(|m| (m.tls_pin, m.code.clone()))
        .collect()
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

/// The sending side towards one peer, as the node shares it: what wakes it and what it knows
/// (`fed::links` runs it).
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

    /// Changes what the link knows about its peer.
    pub(crate) fn update(&self, f: impl FnOnce(&mut LinkStatus)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }
}

/// Opens a node's store from its configuration, for operator commands run beside the node.
pub fn open_store(config: &NodeConfig) -> anyhow::Result<SqlStore> {
    let mut store_config = match &config.postgres {
        Some(pg) => {
            let mut c = StoreConfig::postgres(&pg.url, config.master_key);
            c.postgres_password = pg.password.clone();
            c
        }
        None => StoreConfig::new(&config.database, config.master_key),
    };
    store_config.events_retained_max = config.runtime_limits.events_retained_max;
    let store = SqlStore::open(store_config).map_err(|e| anyhow::anyhow!("{}: {e}", config.store_name()))?;
    if config.postgres.is_some() {
        return Ok(store);
    }
    // A database and journal made before files were kept private are narrowed to their owner.
    for suffix in ["", "-wal", "-shm"] {
        let mut path = config.database.clone().into_os_string();
        path.push(suffix);
        let path = std::path::PathBuf::from(path);
        crate::files::make_private(&path)
            .map_err(|e| anyhow::anyhow!("{}: cannot narrow to mode 0600: {e}", path.display()))?;
    }
    Ok(store)
}
