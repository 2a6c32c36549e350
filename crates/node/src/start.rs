//! Start-up: [`Node::start`] opens the store, builds the core and the engine around it, binds the
//! operator API and the federation listeners, and starts every task of the node (the API, the
//! listeners, one link per peer, the driver's loops, the checkpoints); [`Node::stop`] ends them.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use adi_engine::{Bugs, Engine, EngineConfig};
use adi_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::config::NodeConfig;
use crate::conns::{self, Admission};
use crate::driver::{after_load, run_clock, run_clock_watch, run_storage_probe};
use crate::fed::checkpoints::run_checkpoints;
use crate::fed::listener::{self as fed_listener, bind_all, serve};
use crate::fed::roster::{self, run_roster};
use crate::fed::rotation;
use crate::http;
use crate::state::{load_core, open_store, CoreSeed, KeysAtStart, NodeState};
use crate::throttle::Unauthenticated;
use crate::tls;

/// A running node.
pub struct Node {
    pub state: Arc<NodeState>,
    pub api_addr: SocketAddr,
    pub federation_addrs: Vec<SocketAddr>,
    /// Where the metrics listener listens, when the configuration names one.
    pub metrics_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Node {
    /// Opens the store, binds every listener and starts every task.
    pub async fn start(config: NodeConfig) -> anyhow::Result<Node> {
        let store = open_store(&config)?;
        Node::start_on(config, store).await
    }

    /// Binds every listener and starts every task, on a store already open (the lease of a pair
    /// taken on it).
    pub async fn start_on(mut config: NodeConfig, store: adi_store::SqlStore) -> anyhow::Result<Node> {
        let restored = store.restored_ms()?.map(|_| store.clone());
        // The roster in force: the first version, the configuration's versions, the database's.
        let (book, to_record) = roster::book(&config, &store.roster_versions()?, &store.roster_proposals()?)?;
        for (file, hash) in to_record {
            let applied = adi_store::RosterApplied {
                number: file.number,
                hash,
                body: serde_json::to_vec(&file)?,
                actor: "administrator".into(),
                detail: format!("roster version {} taken from the configuration", file.number),
                now_ms: crate::clock::now_ms(),
            };
            store.roster_version_applied(applied).wait().await?;
        }
        config.roster = book.current.roster.clone();
        let me = config.roster.member(&config.member).cloned().ok_or_else(|| {
            anyhow::anyhow!("{} is not in the roster in force (version {})", config.member, book.current.number)
        })?;
        let (cert, key) = tls::load_identity(&config.tls_cert, &config.tls_key)?;
        let retired = adi_engine::roster::retired_by_rotation(&config.first_roster, &book.versions);
        let next = config.key_files().next().map_err(|e| anyhow::anyhow!("{e}"))?;
        // Mid-rotation, the node starts with the keys the chain retired and moves on.
        let rotation = rotation::starting_keys(&config.signing_key, tls::spki_pin(&cert), next, &me)
            .and_then(|next| match next {
                Some(_) if !retired.contains(&(config.member.clone(), config.signing_key.verifying_key())) => {
                    Err("`signing_key`: the key was not retired by a rotation of this member".to_string())
                }
                next => Ok(next),
            })
            .map_err(|why| {
                anyhow::anyhow!("{}: field {why} (roster version {})", config.path.display(), book.current.number)
            })?;
        if rotation.is_some() {
            tracing::info!("a key rotation is under way: the node moves to its next keys once every peer holds them");
        }
        let seed = CoreSeed::of(&config);
        let (mut core, used_key_packages) = load_core(&seed, &config.roster, &store)?;
        // Keys the chain retired by rotation: what was signed under them is still taken.
        for (member, key) in retired {
            core.retire_key(&member, key);
        }
        // Faults built in on purpose, for the tests that show they are caught; never in service.
        let bugs = Bugs::named(&std::env::var("ADI_ENGINE_BUG").unwrap_or_default());
        let engine = Engine::new(
            core,
            used_key_packages,
            EngineConfig { limits: config.runtime_limits.engine(), bugs, jitter_seed: rand::random() },
        );
        let overlap = rotation::overlap_at_start(&config, &book, &store)?;
        let identity = tls::Presented::new(cert, &key)?;
        let keys = KeysAtStart { identity, overlap, rotation };
        let state = Arc::new(NodeState::new(&config, book, engine, store, seed, keys));
        // A durable write first: a node that starts on a full or read-only disk comes up refusing
        // writes, with its storage alarm, and takes them again by itself (`run_storage_probe`).
        match state.store.probe(Vec::new()).wait().await {
            Err(e) => {
                state.fail_storage(&e);
            }
            // Envelopes held for a commit that was committed just before a crash are taken now.
            Ok(()) => {
                // A node started with another configuration than the last time leaves an audit
                // entry: its file and its roster, by SHA-256.
                let seen = configuration_sha256(&config);
                if let Err(e) = state.store.configuration_seen(seen, crate::clock::now_ms()).wait().await {
                    tracing::error!(error = %e, "the configuration could not be noted in the audit log");
                }
                let loaded = match after_load(&state).await {
                    Ok(()) => rotation::renew_at_start(&state).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = loaded {
                    if !state.storage_failed.load(Ordering::SeqCst) {
                        return Err(e);
                    }
                    tracing::error!(error = %e, "the database failed while the node started");
                }
            }
        }
        // A store put back from a backup starts only if it holds all its peers hold of its lines.
        if let Some(restored) = restored {
            let within = std::time::Duration::from_millis(config.runtime_limits.restore_check_ms);
            crate::fed::restore::check(&state, within).await?;
            restored.clear_restored().wait().await?;
        }
        let api_listener = TcpListener::bind(config.api_listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot bind API address {}: {e}", config.api_listen))?;
        let api_addr = api_listener.local_addr()?;
        let fed_listeners = bind_all(&config.federation_listen).await?;
        let federation_addrs = fed_listeners.iter().map(|l| l.local_addr()).collect::<Result<Vec<_>, _>>()?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot bind the metrics address {addr}: {e}"))?,
            ),
            None => None,
        };
        let metrics_addr = metrics_listener.as_ref().map(|l| l.local_addr()).transpose()?;

        let (shutdown, shutdown_rx) = watch::channel(false);
        let limits = &config.runtime_limits;
        // Every listener's connections are bounded, within the open files the node may hold less
        // those kept for its database and links.
        let open_files = conns::raise_open_files();
        let listeners = 1 + fed_listeners.len() + usize::from(metrics_listener.is_some());
        let per_listener = conns::per_listener(limits, open_files, listeners);
        let admission = |per_address| Admission::new(per_listener, per_address);
        tracing::info!(open_files, per_listener, "connections each listener may hold");
        let mut tasks = Vec::new();
        let api_router = http::router(state.clone());
        let api_acceptor = match config.api_tls {
            true => Some(TlsAcceptor::from(Arc::new(tls::api_server_config(&state.identity)?))),
            false => None,
        };
        tasks.push(tokio::spawn(serve(
            api_listener,
            api_acceptor,
            api_router,
            None,
            limits.clone(),
            admission(limits.http_connections_per_address_max),
            Some(Arc::new(Unauthenticated::new(limits))),
            shutdown_rx.clone(),
        )));
        let fed_config = Arc::new(tls::federation_server_config(&state.identity, state.pins())?);
        for listener in fed_listeners {
            let acceptor = TlsAcceptor::from(fed_config.clone());
            let router = fed_listener::router(state.clone());
            tasks.push(tokio::spawn(serve(
                listener,
                Some(acceptor),
                router,
                Some(state.clone()),
                limits.clone(),
                admission(limits.federation_connections_per_address_max),
                None,
                shutdown_rx.clone(),
            )));
        }
        if let Some(listener) = metrics_listener {
            tasks.push(tokio::spawn(serve(
                listener,
                None,
                crate::monitor::router(state.clone()),
                None,
                limits.clone(),
                admission(limits.http_connections_per_address_max),
                // Scrapers ask without a token, as often as they are set to: bounded by their
                // connections alone.
                None,
                shutdown_rx.clone(),
            )));
        }
        tasks.push(tokio::spawn(crate::monitor::follow(state.clone(), shutdown_rx.clone())));
        // The links, and the roster's exchanges with every peer.
        tasks.push(tokio::spawn(run_roster(state.clone(), shutdown_rx.clone())));
        tasks.push(tokio::spawn(run_clock(state.clone(), shutdown_rx.clone())));
        tasks.push(tokio::spawn(run_clock_watch(state.clone(), shutdown_rx.clone())));
        tasks.push(tokio::spawn(run_storage_probe(state.clone(), shutdown_rx.clone())));
        tasks.push(tokio::spawn(crate::retention::run(state.clone(), config.retention.rules(), shutdown_rx.clone())));
        if config.checkpoint_interval_s > 0 {
            let every = std::time::Duration::from_secs(config.checkpoint_interval_s);
            tasks.push(tokio::spawn(run_checkpoints(state.clone(), every, shutdown_rx.clone())));
        }
        tracing::info!(member = %config.member, api = %api_addr, federation = ?federation_addrs, "node ready");
        Ok(Node { state, api_addr, federation_addrs, metrics_addr, shutdown, tasks })
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

/// SHA-256 of the configuration file's bytes followed by the roster's anchor hash: what the audit
/// log notes of the configuration a node starts with.
fn configuration_sha256(config: &NodeConfig) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(std::fs::read(&config.path).unwrap_or_default());
    h.update(config.first_roster.sha256());
    h.finalize().into()
}
