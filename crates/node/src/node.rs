//! The node: one member establishment's process, wiring the core, the store, the operator API,
//! the federation listener and one link per peer.
//!
//! A commit that fails (a full disk, a read-only database) puts the node in a refuse-writes state:
//! the core may then be ahead of what the store holds. A probe tries a small durable write every
//! `storage_probe_ms`; once one commits, the core is built again from the store exactly as at
//! start, and the node takes writes again without a restart. A node starts with such a probe: on
//! a full or read-only disk it comes up refusing writes, with its storage alarm, and recovers the
//! same way.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use adi_core::{
    AlarmChange, AlarmKind, AlarmOp, DisciplineConfig, Hotline, HotlineConfig, Limits, Member, MemberCode, Roster,
    WriteBatch,
};
use adi_engine::{Bugs, Engine, EngineConfig};
use adi_store::{SqliteStore, Store, StoreConfig, StoreError, WriteFault};
use ed25519_dalek::SigningKey;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::api::ApiError;
use crate::config::{NodeConfig, RuntimeLimits};
use crate::federation::{self, Link};
use crate::{api, tls};

/// The wall clock at this process's first reading of the time, and the monotonic instant of that
/// reading.
struct Anchor {
    wall_ms: u64,
    at: std::time::Instant,
}

static ANCHOR: std::sync::OnceLock<Anchor> = std::sync::OnceLock::new();

/// How far the runtime's clock was moved forward at start, so as not to read earlier than what
/// the store recorded ([`keep_time_from`]).
static AHEAD_MS: AtomicU64 = AtomicU64::new(0);

/// The system's wall clock, in milliseconds since the Unix epoch. It may step (an operator or a
/// time service setting it), so the runtime keeps time by [`now_ms`] and only compares the two.
pub fn wall_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Milliseconds since the Unix epoch, the runtime's clock, handed to the core as an input: the
/// wall clock as it read when the process first asked, advanced by monotonic time since. A step
/// of the wall clock while the node runs neither stalls its timers nor fires them early; the
/// node raises a `clock` alarm instead ([`run_clock_watch`]) and follows the wall clock again
/// when it next starts.
pub fn now_ms() -> u64 {
    let anchor = ANCHOR.get_or_init(|| Anchor { wall_ms: wall_ms(), at: std::time::Instant::now() });
    anchor
        .wall_ms
        .saturating_add(anchor.at.elapsed().as_millis() as u64)
        .saturating_add(AHEAD_MS.load(Ordering::SeqCst))
}

/// Keeps the runtime's clock from reading earlier than `latest_ms`, the latest time the store
/// recorded: a system clock set back while the node was down would otherwise hold its stored
/// deadlines and timers back by as much. (One set forward is found by the peers' link tests.)
pub fn keep_time_from(latest_ms: u64) {
    let now = now_ms();
    if latest_ms > now {
        AHEAD_MS.fetch_add(latest_ms - now, Ordering::SeqCst);
        tracing::warn!(
            behind_ms = latest_ms - now,
            "the system clock reads earlier than the latest time this node stored; the node keeps time from there"
        );
    }
}

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

/// What the core is built from besides the store, kept to build it again after a storage failure.
struct CoreSeed {
    me: MemberCode,
    signing_key: SigningKey,
    roster: Roster,
    limits: Limits,
    default_caveat: String,
    discipline: DisciplineConfig,
    database: PathBuf,
}

impl CoreSeed {
    fn of(config: &NodeConfig) -> CoreSeed {
        CoreSeed {
            me: config.member.clone(),
            signing_key: config.signing_key.clone(),
            roster: config.roster.clone(),
            limits: config.limits.clone(),
            default_caveat: config.default_caveat.clone(),
            discipline: config.discipline.clone(),
            database: config.database.clone(),
        }
    }
}

/// Builds the core from what the store holds (lines, chain heads, awaited acknowledgements and
/// the MLS state, as last committed) and reads the references of the peers' KeyPackages used here.
fn load_core(seed: &CoreSeed, store: &dyn Store) -> anyhow::Result<(Hotline, HashSet<Vec<u8>>)> {
    let restored = store.load(&seed.me)?;
    keep_time_from(restored.latest_ms);
    let used_key_packages = store.used_key_packages()?.into_iter().collect();
    let config = HotlineConfig {
        me: seed.me.clone(),
        signing_key: seed.signing_key.clone(),
        roster: seed.roster.clone(),
        limits: seed.limits.clone(),
        default_caveat: seed.default_caveat.clone(),
        discipline: seed.discipline.clone(),
    };
    let core = Hotline::new(config, restored, now_ms())
        .map_err(|e| anyhow::anyhow!("{}: the MLS state cannot be restored: {e}", seed.database.display()))?;
    Ok((core, used_key_packages))
}

/// What every task of a running node shares.
pub struct NodeState {
    pub member: MemberCode,
    /// The engine, with the core inside: every decision between the network, the operators and
    /// the store is its.
    engine: Mutex<Engine>,
    pub store: Arc<dyn Store>,
    pub links: BTreeMap<MemberCode, Arc<Link>>,
    pub limits: Limits,
    pub runtime_limits: RuntimeLimits,
    roster: Roster,
    pub tls_cert: CertificateDer<'static>,
    pub tls_key: PrivateKeyDer<'static>,
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
    seed: CoreSeed,
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
    /// Recent failed console sign-ins, by operator name.
    pub sign_in_failures: Mutex<std::collections::HashMap<String, Vec<u64>>>,
    /// Whether the API (and the console) is served over TLS: session cookies are then Secure.
    pub api_tls: bool,
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
    /// The engine, locked. The lock is never held across an await.
    pub fn engine(&self) -> MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The core, locked (with the engine around it). The lock is never held across an await.
    pub fn core(&self) -> CoreGuard<'_> {
        CoreGuard(self.engine())
    }

    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    pub fn roster_member(&self, code: &MemberCode) -> Option<Member> {
        self.roster.member(code).cloned()
    }

    pub fn roster_member_by_pin(&self, pin: &[u8; 32]) -> Option<MemberCode> {
        self.roster.member_by_pin(pin).map(|m| m.code.clone())
    }

    pub fn roster_pins(&self) -> HashSet<[u8; 32]> {
        self.roster.members().filter(|m| m.code != self.member).map(|m| m.tls_pin).collect()
    }

    /// Takes note of a write that was not committed: the node refuses writes until the database
    /// takes them again. Returns the refusal to answer with.
    pub fn fail_storage(&self, e: &StoreError) -> ApiError {
        let current = self.generation();
        let (fault, generation) = match e {
            StoreError::Unwritable { fault, generation } => (fault.clone(), *generation),
            other => (WriteFault::Failed(other.to_string()), current),
        };
        // A write refused for a failure the node has recovered from since: nothing new failed.
        if generation >= current {
            self.storage_fault(&fault, generation);
        }
        api::storage_refusal(&fault)
    }

    /// Enters (or stays in) the refuse-writes state, naming the cause as it now stands.
    fn storage_fault(&self, fault: &WriteFault, generation: u64) {
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
            tracing::error!(%fault, "a commit failed; writes are refused until the database takes them again");
            self.events.notify_waiters();
        }
    }

    /// Why the node refuses writes, if it does.
    pub fn storage_failure(&self) -> Option<StorageFailure> {
        self.storage.borrow().clone()
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

    /// Tries to take writes again: a probe (the storage alarm, committed durably), then the core
    /// built again from the store, as at start, in place of one that may be ahead of it. Returns
    /// whether the node takes writes.
    async fn recover_storage(&self) -> bool {
        let Some(failure) = self.storage_failure() else { return true };
        let raise = self.storage_alarm(AlarmOp::Raise, failure.since_ms, fault_text(&failure.fault));
        if let Err(e) = self.store.probe(vec![raise]).wait().await {
            if let StoreError::Unwritable { fault, .. } = &e {
                self.storage_fault(fault, failure.generation);
            }
            tracing::debug!(error = %e, "the database still refuses writes");
            return false;
        }
        let (core, used_key_packages) = match load_core(&self.seed, self.store.as_ref()) {
            Ok(loaded) => loaded,
            Err(e) => {
                tracing::error!(error = %e, "the database takes writes again, but the core cannot be built from it");
                return false;
            }
        };
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
        let recovered = self.storage.send_if_modified(|s| {
            if s.as_ref().is_some_and(|f| f.generation < generation) {
                *s = None;
                self.storage_failed.store(false, Ordering::SeqCst);
                true
            } else {
                false
            }
        });
        if !recovered {
            return false;
        }
        let now = now_ms();
        let down_ms = now.saturating_sub(failure.since_ms);
        tracing::info!(down_ms, "the database takes writes again; the core was built again from it");
        let cleared = format!("the database takes writes again, {down_ms} ms after the first failed commit");
        let clear = self.storage_alarm(AlarmOp::Clear, now, cleared);
        if let Err(e) = self.store.commit(WriteBatch { alarms: vec![clear], ..WriteBatch::default() }).wait().await {
            self.fail_storage(&e);
            return false;
        }
        let peers: Vec<MemberCode> = self.links.keys().cloned().collect();
        self.committed(&peers);
        if let Err(e) = self.after_load().await {
            tracing::error!(error = %e, "cannot finish loading after the database took writes again");
        }
        true
    }

    /// What follows building the core from the store: the KeyPackage pool topped up, and the
    /// envelopes held for a commit that is now stored taken.
    async fn after_load(&self) -> anyhow::Result<()> {
        self.refill_key_packages().await?;
        let held: Vec<adi_wire::LineId> = self.store.held_counts()?.into_iter().map(|(line, _)| line).collect();
        crate::federation::release_held(self, held).await;
        Ok(())
    }

    /// Tops the pool of unclaimed KeyPackages up to `key_package_pool_len`, storing them with
    /// the MLS state that holds their private keys.
    pub async fn refill_key_packages(&self) -> anyhow::Result<u64> {
        let _one_at_a_time = self.key_package_refill.lock().await;
        let available = self.store.key_packages_available()?;
        // Made, snapshotted and handed to the store under the engine's lock, so that the stored
        // MLS state is never older than one stored before it.
        let (wanted, pending) = {
            let mut engine = self.engine();
            let Some(made) = engine.make_key_packages(available)? else { return Ok(0) };
            (made.with_refs.len() as u64, self.store.add_key_packages(made.state, made.with_refs, now_ms()))
        };
        if let Err(e) = pending.wait().await {
            self.fail_storage(&e);
            return Err(e.into());
        }
        Ok(wanted)
    }

    /// After a commit: wakes the links towards these peers (their outboxes grew), the clock (the
    /// core may have a new timer) and the event streams.
    pub fn committed(&self, peers: &[MemberCode]) {
        for p in peers {
            if let Some(link) = self.links.get(p) {
                link.wake.notify_one();
            }
        }
        self.clock.notify_one();
        self.events.notify_waiters();
    }
}

/// A running node.
pub struct Node {
    pub state: Arc<NodeState>,
    pub api_addr: SocketAddr,
    pub federation_addrs: Vec<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Node {
    /// Opens the store, binds every listener and starts every task.
    pub async fn start(config: NodeConfig) -> anyhow::Result<Node> {
        let store = open_store(&config).map_err(|e| anyhow::anyhow!("{}: {e}", config.database.display()))?;
        let seed = CoreSeed::of(&config);
        let (core, used_key_packages) = load_core(&seed, &store)?;
        // Faults built in on purpose, for the tests that show they are caught; never in service.
        let bugs = Bugs::named(&std::env::var("ADI_ENGINE_BUG").unwrap_or_default());
        let engine = Engine::new(
            core,
            used_key_packages,
            EngineConfig { limits: config.runtime_limits.engine(), bugs, jitter_seed: rand::random() },
        );
        let (cert, key) = tls::load_identity(&config.tls_cert, &config.tls_key)?;
        let me =
            config.roster.member(&config.member).cloned().ok_or_else(|| anyhow::anyhow!("member not in roster"))?;
        if tls::spki_pin(&cert) != Some(me.tls_pin) {
            anyhow::bail!(
                "{}: field `tls_cert`: the certificate's key does not match this member's TLS pin in the roster",
                config.path.display()
            );
        }
        let links = config
            .roster
            .members()
            .filter(|m| m.code != config.member)
            .map(|m| (m.code.clone(), Link::new(m.code.clone())))
            .collect();
        let state = Arc::new(NodeState {
            member: config.member.clone(),
            engine: Mutex::new(engine),
            store: Arc::new(store),
            links,
            limits: config.limits.clone(),
            runtime_limits: config.runtime_limits.clone(),
            roster: config.roster.clone(),
            tls_cert: cert.clone(),
            tls_key: key.clone_key(),
            storage_failed: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            storage: watch::channel(None).0,
            generation: AtomicU64::new(0),
            seed,
            started_ms: now_ms(),
            clock: Notify::new(),
            events: Notify::new(),
            receipts: tokio::sync::Mutex::new(()),
            release_required: config.release_required,
            sign_in_failures: Mutex::new(std::collections::HashMap::new()),
            api_tls: config.api_tls,
            key_package_refill: tokio::sync::Mutex::new(()),
        });
        // A durable write first: a node that starts on a full or read-only disk comes up refusing
        // writes, with its storage alarm, and takes them again by itself (`run_storage_probe`).
        match state.store.probe(Vec::new()).wait().await {
            Err(e) => {
                state.fail_storage(&e);
            }
            // Envelopes held for a commit that was committed just before a crash are taken now.
            Ok(()) => {
                if let Err(e) = state.after_load().await {
                    if !state.storage_failed.load(Ordering::SeqCst) {
                        return Err(e);
                    }
                    tracing::error!(error = %e, "the database failed while the node started");
                }
            }
        }
        let api_listener = TcpListener::bind(config.api_listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot bind API address {}: {e}", config.api_listen))?;
        let api_addr = api_listener.local_addr()?;
        let fed_listeners = federation::bind_all(&config.federation_listen).await?;
        let federation_addrs = fed_listeners.iter().map(|l| l.local_addr()).collect::<Result<Vec<_>, _>>()?;

        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let api_router = api::router(state.clone());
        if config.api_tls {
            let acceptor = TlsAcceptor::from(Arc::new(tls::api_server_config(cert.clone(), key.clone_key())?));
            tasks.push(tokio::spawn(federation::serve_tls(
                api_listener,
                acceptor,
                api_router,
                None,
                shutdown_rx.clone(),
            )));
        } else {
            let mut rx = shutdown_rx.clone();
            tasks.push(tokio::spawn(async move {
                let serve = axum::serve(api_listener, api_router).with_graceful_shutdown(async move {
                    let _ = rx.changed().await;
                });
                if let Err(e) = serve.await {
                    tracing::error!(error = %e, "API server stopped");
                }
            }));
        }
        let fed_config = Arc::new(tls::federation_server_config(cert, key, state.roster_pins())?);
        for listener in fed_listeners {
            let acceptor = TlsAcceptor::from(fed_config.clone());
            let router = federation::router(state.clone());
            tasks.push(tokio::spawn(federation::serve_tls(
                listener,
                acceptor,
                router,
                Some(state.clone()),
                shutdown_rx.clone(),
            )));
        }
        for link in state.links.values() {
            tasks.push(tokio::spawn(federation::run_link(state.clone(), link.clone(), shutdown_rx.clone())));
        }
        tasks.push(tokio::spawn(run_clock(state.clone(), shutdown_rx.clone())));
        tasks.push(tokio::spawn(run_clock_watch(state.clone(), shutdown_rx.clone())));
        tasks.push(tokio::spawn(run_storage_probe(state.clone(), shutdown_rx.clone())));
        if config.checkpoint_interval_s > 0 {
            let every = std::time::Duration::from_secs(config.checkpoint_interval_s);
            tasks.push(tokio::spawn(crate::record::run_checkpoints(state.clone(), every, shutdown_rx.clone())));
        }
        tracing::info!(member = %config.member, api = %api_addr, federation = ?federation_addrs, "node ready");
        Ok(Node { state, api_addr, federation_addrs, shutdown, tasks })
    }

    /// Stops every task and closes the store.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        self.state.stopped.store(true, Ordering::SeqCst);
        self.state.events.notify_waiters();
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Honours the core's timers: deadlines, escalations and link tests. A deadline that passed while
/// the node was down fires at the first tick after start.
async fn run_clock(node: Arc<NodeState>, mut shutdown: watch::Receiver<bool>) {
    /// The longest the clock sleeps without looking again.
    const CLOCK_SLEEP_MS_MAX: u64 = 60_000;
    loop {
        if *shutdown.borrow() {
            break;
        }
        if node.storage_failed.load(Ordering::SeqCst) {
            // Nothing the core's timers cause could be committed; they run again, from the core
            // built again from the store, once the node takes writes.
            tokio::select! {
                _ = node.writable() => {}
                _ = shutdown.changed() => break,
            }
            continue;
        }
        let now = now_ms();
        let wake = node.core().next_wake();
        if wake.is_some_and(|w| w <= now) {
            let (peers, pending) = {
                let mut engine = node.engine();
                let batch = match engine.tick(now_ms()) {
                    Ok(Some(batch)) => batch,
                    Ok(None) => continue,
                    Err(e) => {
                        // What the timers decided is not committed; the core is built again from
                        // the store when the probe finds it writable.
                        tracing::error!(error = %e, "cannot seal what the timers caused");
                        node.fail_storage(&adi_store::StoreError::Unwritable {
                            fault: WriteFault::Failed(e.to_string()),
                            generation: node.generation(),
                        });
                        continue;
                    }
                };
                let peers: Vec<MemberCode> = batch.records.iter().flat_map(|r| r.recipients.clone()).collect();
                (peers, node.store.commit(batch))
            };
            match pending.wait().await {
                Ok(_) => node.committed(&peers),
                Err(e) => {
                    node.fail_storage(&e);
                }
            }
            continue;
        }
        let wait = wake.map(|w| w - now).unwrap_or(CLOCK_SLEEP_MS_MAX).min(CLOCK_SLEEP_MS_MAX);
        tokio::select! {
            _ = node.clock.notified() => {}
            _ = tokio::time::sleep(std::time::Duration::from_millis(wait)) => {}
            _ = shutdown.changed() => break,
        }
    }
}

/// Compares the system's wall clock with the node's own every `CLOCK_WATCH_MS`, and keeps a
/// `clock` alarm about this node open while they are further apart than `clock_offset_ms_max`:
/// the wall clock stepped while the node ran, and what this node shows as times may be off from
/// what its operators' other clocks show until it restarts.
async fn run_clock_watch(node: Arc<NodeState>, mut shutdown: watch::Receiver<bool>) {
    /// How often the wall clock is compared with the node's.
    const CLOCK_WATCH_MS: u64 = 5_000;
    let bound = node.core().discipline().clock_offset_ms_max;
    let no_line = adi_wire::LineId([0; 16]);
    let mut alarmed = node
        .store
        .alarms(true, node.runtime_limits.list_len_max)
        .map(|open| open.iter().any(|a| a.kind == AlarmKind::Clock && a.member == node.member))
        .unwrap_or(false);
    loop {
        let (now, wall) = (now_ms(), wall_ms());
        let off = wall as i64 - now as i64;
        let stepped = off.unsigned_abs() > bound;
        if stepped != alarmed && !node.storage_failed.load(Ordering::SeqCst) {
            let way = if off > 0 { "forward" } else { "back" };
            let detail = if stepped {
                format!(
                    "the system clock stepped {way} by {} while this node ran; the node keeps its own time, \
                     started from the system clock and advanced by monotonic time, until it restarts",
                    adi_core::discipline::human_ms(off.unsigned_abs())
                )
            } else {
                "the system clock agrees with the node's again".to_string()
            };
            let change = AlarmChange {
                kind: AlarmKind::Clock,
                op: if stepped { AlarmOp::Raise } else { AlarmOp::Clear },
                line: no_line,
                member: node.member.clone(),
                message: None,
                at_ms: now,
                detail,
                addressed_to: Vec::new(),
            };
            tracing::warn!(offset_ms = off, stepped, "the system clock and the node's clock");
            match node.store.commit(WriteBatch { alarms: vec![change], ..WriteBatch::default() }).wait().await {
                Ok(_) => {
                    alarmed = stepped;
                    node.committed(&[]);
                }
                Err(e) => {
                    node.fail_storage(&e);
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(CLOCK_WATCH_MS)) => {}
            _ = shutdown.changed() => break,
        }
    }
}

/// While the node refuses writes, tries every `storage_probe_ms` to take them again.
async fn run_storage_probe(node: Arc<NodeState>, mut shutdown: watch::Receiver<bool>) {
    let every = Duration::from_millis(node.runtime_limits.storage_probe_ms);
    let mut storage = node.storage.subscribe();
    loop {
        let failed = async { storage.wait_for(Option::is_some).await.is_ok() };
        tokio::select! {
            ok = failed => if !ok { break },
            _ = shutdown.changed() => break,
        }
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
            if node.recover_storage().await {
                break;
            }
        }
    }
}

/// Opens a node's store from its configuration, for operator commands run beside the node.
pub fn open_store(config: &NodeConfig) -> anyhow::Result<SqliteStore> {
    let mut store_config = StoreConfig::new(&config.database, config.master_key);
    store_config.events_retained_max = config.runtime_limits.events_retained_max;
    SqliteStore::open(store_config).map_err(|e| anyhow::anyhow!("{}: {e}", config.database.display()))
}
