//! The node: one member establishment's process, wiring the core, the store, the operator API,
//! the federation listener and one link per peer.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use adi_core::{Hotline, HotlineConfig, Limits, Member, MemberCode, Roster};
use adi_store::{SqliteStore, Store, StoreConfig, StoreError};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::config::{NodeConfig, RuntimeLimits};
use crate::federation::{self, Link};
use crate::{api, tls};

/// Milliseconds since the Unix epoch: the runtime's clock, handed to the core as an input.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// What every task of a running node shares.
pub struct NodeState {
    pub member: MemberCode,
    core: Mutex<Hotline>,
    pub store: Arc<dyn Store>,
    pub links: BTreeMap<MemberCode, Arc<Link>>,
    pub limits: Limits,
    pub runtime_limits: RuntimeLimits,
    roster: Roster,
    pub tls_cert: CertificateDer<'static>,
    pub tls_key: PrivateKeyDer<'static>,
    /// Set when a commit failed: the node then refuses writes until it is restarted, so that
    /// nothing is acknowledged on top of state that may not be on disk.
    pub storage_failed: AtomicBool,
    pub started_ms: u64,
    /// Woken when the core may want an earlier tick.
    pub clock: Notify,
    /// Woken after commits that may have added events.
    pub events: Notify,
    /// Serialises this node's own receipts, so that "acknowledged twice" is decided on committed state.
    pub receipts: tokio::sync::Mutex<()>,
    pub release_required: bool,
    /// Envelopes from peers handed to the store but not yet committed, by (line, sender,
    /// sequence): a copy arriving meanwhile is deferred rather than decrypted twice.
    pub in_flight: Mutex<std::collections::HashMap<(adi_wire::LineId, String, u64), adi_wire::EnvelopeHash>>,
    /// References of peers' KeyPackages this node has used: one offered again is refused.
    pub key_packages_seen: Mutex<std::collections::HashSet<Vec<u8>>>,
    /// Serialises refills of the KeyPackage pool.
    pub key_package_refill: tokio::sync::Mutex<()>,
    /// Recent failed console sign-ins, by operator name.
    pub sign_in_failures: Mutex<std::collections::HashMap<String, Vec<u64>>>,
    /// Whether the API (and the console) is served over TLS: session cookies are then Secure.
    pub api_tls: bool,
}

impl NodeState {
    /// The core, locked. The lock is never held across an await.
    pub fn core(&self) -> MutexGuard<'_, Hotline> {
        self.core.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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

    pub fn fail_storage(&self, e: &StoreError) {
        tracing::error!(error = %e, "a commit failed; refusing writes until restart");
        self.storage_failed.store(true, Ordering::SeqCst);
    }

    /// A message that arrived again after this member had answered it must not wait for an
    /// answer again: the core is told to forget it.
    pub fn forget_if_answered(&self, message: &adi_wire::EnvelopeHash) {
        if self.answered_by_me(message) {
            self.core().forget_ack(message, &self.member);
        }
    }

    /// Whether this member acknowledged or declined a message.
    pub fn answered_by_me(&self, message: &adi_wire::EnvelopeHash) -> bool {
        self.store
            .receipts(message)
            .map(|rs| rs.iter().any(|r| r.member == self.member && (r.kind == "acknowledged" || r.kind == "declined")))
            .unwrap_or(false)
    }

    /// Tops the pool of unclaimed KeyPackages up to `key_package_pool_len`, storing them with
    /// the MLS state that holds their private keys.
    pub async fn refill_key_packages(&self) -> anyhow::Result<u64> {
        let _one_at_a_time = self.key_package_refill.lock().await;
        let available = self.store.key_packages_available()?;
        let wanted = self.runtime_limits.key_package_pool_len.saturating_sub(available);
        if wanted == 0 {
            return Ok(0);
        }
        // Made, snapshotted and handed to the store under the core's lock, so that the stored MLS
        // state is never older than one stored before it.
        let pending = {
            let mut core = self.core();
            let made = core.key_packages(wanted as usize)?;
            let state = core.mls_snapshot()?;
            let with_refs = made
                .into_iter()
                .map(|kp| adi_mls::key_package_reference(&kp).map(|r| (r, kp)))
                .collect::<Result<Vec<_>, _>>()?;
            self.store.add_key_packages(state, with_refs, now_ms())
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
        let restored = store.load(&config.member)?;
        let used_key_packages = store.used_key_packages()?;
        let (cert, key) = tls::load_identity(&config.tls_cert, &config.tls_key)?;
        let me =
            config.roster.member(&config.member).cloned().ok_or_else(|| anyhow::anyhow!("member not in roster"))?;
        if tls::spki_pin(&cert) != Some(me.tls_pin) {
            anyhow::bail!(
                "{}: field `tls_cert`: the certificate's key does not match this member's TLS pin in the roster",
                config.path.display()
            );
        }
        let core = Hotline::new(
            HotlineConfig {
                me: config.member.clone(),
                signing_key: config.signing_key.clone(),
                roster: config.roster.clone(),
                limits: config.limits.clone(),
                default_caveat: config.default_caveat.clone(),
                discipline: config.discipline.clone(),
            },
            restored,
            now_ms(),
        )
        .map_err(|e| anyhow::anyhow!("{}: the MLS state cannot be restored: {e}", config.database.display()))?;
        let links = config
            .roster
            .members()
            .filter(|m| m.code != config.member)
            .map(|m| (m.code.clone(), Link::new(m.code.clone())))
            .collect();
        let state = Arc::new(NodeState {
            member: config.member.clone(),
            core: Mutex::new(core),
            store: Arc::new(store),
            links,
            limits: config.limits.clone(),
            runtime_limits: config.runtime_limits.clone(),
            roster: config.roster.clone(),
            tls_cert: cert.clone(),
            tls_key: key.clone_key(),
            storage_failed: AtomicBool::new(false),
            started_ms: now_ms(),
            clock: Notify::new(),
            events: Notify::new(),
            receipts: tokio::sync::Mutex::new(()),
            release_required: config.release_required,
            in_flight: Mutex::new(std::collections::HashMap::new()),
            key_packages_seen: Mutex::new(used_key_packages.into_iter().collect()),
            sign_in_failures: Mutex::new(std::collections::HashMap::new()),
            api_tls: config.api_tls,
            key_package_refill: tokio::sync::Mutex::new(()),
        });
        state.refill_key_packages().await?;
        // Envelopes held for a commit that was committed just before a crash are taken now.
        let held: Vec<adi_wire::LineId> = state.store.held_counts()?.into_iter().map(|(line, _)| line).collect();
        crate::federation::release_held(&state, held).await;
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
        let now = now_ms();
        let wake = node.core().next_wake();
        if wake.is_some_and(|w| w <= now) {
            if node.storage_failed.load(Ordering::SeqCst) {
                break;
            }
            let (peers, pending) = {
                let mut core = node.core();
                let mut batch = core.tick(now_ms());
                if batch.is_empty() {
                    continue;
                }
                if !batch.records.is_empty() {
                    match core.mls_snapshot() {
                        Ok(state) => batch.mls_state = Some(state),
                        Err(e) => tracing::error!(error = %e, "cannot snapshot the MLS state"),
                    }
                }
                let peers: Vec<MemberCode> = batch.records.iter().flat_map(|r| r.recipients.clone()).collect();
                (peers, node.store.commit(batch))
            };
            match pending.wait().await {
                Ok(_) => node.committed(&peers),
                Err(e) => node.fail_storage(&e),
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

/// Opens a node's store from its configuration, for operator commands run beside the node.
pub fn open_store(config: &NodeConfig) -> anyhow::Result<SqliteStore> {
    let mut store_config = StoreConfig::new(&config.database, config.master_key);
    store_config.events_retained_max = config.runtime_limits.events_retained_max;
    SqliteStore::open(store_config).map_err(|e| anyhow::anyhow!("{}: {e}", config.database.display()))
}
