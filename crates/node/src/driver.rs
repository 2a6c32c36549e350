//! The tokio driver of the engine: what turns the engine's decisions into commits and wakes the
//! node's tasks after them. It commits this node's own envelopes (`commit_own`), takes a peer's
//! batch (`take`), takes held envelopes once their commit is stored (`release_held`), tops up the KeyPackage pool, and
//! runs the node's loops: the clock that honours the core's timers (`run_clock`), the watch
//! on the system clock (`run_clock_watch`), and the storage probe that takes writes again after
//! a failed commit (`run_storage_probe`).
//!
//! A commit that fails (a full disk, a read-only database) puts the node in a refuse-writes state.
//! The probe tries a small durable write every `storage_probe_ms`; once one commits, the core is
//! built again from the store exactly as at start, and the node takes writes again without a
//! restart. A node starts with such a probe: on a full or read-only disk it comes up refusing
//! writes, with its storage alarm, and recovers the same way.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use adi_core::{AlarmChange, AlarmKind, AlarmOp, CoreError, MemberCode, WriteBatch};
use adi_engine::Received;
use adi_store::{StoreError, WriteFault};
use adi_wire::batch::Verdict;
use adi_wire::{EnvelopeHash, LineId};
use tokio::sync::watch;

use crate::clock::{now_ms, wall_ms};
use crate::error::{storage_refusal, ApiError};
use crate::state::{fault_text, NodeState, StorageRefusal};

/// Why one of this node's own envelopes was not committed.
#[derive(Debug)]
pub enum CommitError {
    /// The core refused to seal it.
    Core(CoreError),
    /// The store did not commit it: the node refuses writes until the database takes them again.
    Storage(StorageRefusal),
}

impl From<CoreError> for CommitError {
    fn from(e: CoreError) -> Self {
        CommitError::Core(e)
    }
}

impl From<StorageRefusal> for CommitError {
    fn from(e: StorageRefusal) -> Self {
        CommitError::Storage(e)
    }
}

/// Has the core seal one of this node's envelopes, commits it, and returns its hash once durable.
/// The record is handed to the store under the core's lock, so commits keep the core's order.
pub(crate) async fn commit_own(
    node: &NodeState,
    seal: impl FnOnce(&mut adi_core::Hotline) -> Result<adi_core::Record, CoreError>,
) -> Result<EnvelopeHash, CommitError> {
    let hashes = commit_own_records(node, |core| seal(core).map(|r| vec![r])).await?;
    Ok(hashes[0])
}

/// Like [`commit_own`], for an operation that seals several envelopes together.
pub(crate) async fn commit_own_records(
    node: &NodeState,
    seal: impl FnOnce(&mut adi_core::Hotline) -> Result<Vec<adi_core::Record>, CoreError>,
) -> Result<Vec<EnvelopeHash>, CommitError> {
    commit_own_by(node, None, seal).await
}

/// Like [`commit_own`], for a receipt an operator of this desk made: the store keeps, with it,
/// who made it (`WriteBatch::answered_by`).
pub(crate) async fn commit_own_answer(
    node: &NodeState,
    operator: &str,
    seal: impl FnOnce(&mut adi_core::Hotline) -> Result<adi_core::Record, CoreError>,
) -> Result<EnvelopeHash, CommitError> {
    let hashes = commit_own_by(node, Some(operator), |core| seal(core).map(|r| vec![r])).await?;
    Ok(hashes[0])
}

async fn commit_own_by(
    node: &NodeState,
    operator: Option<&str>,
    seal: impl FnOnce(&mut adi_core::Hotline) -> Result<Vec<adi_core::Record>, CoreError>,
) -> Result<Vec<EnvelopeHash>, CommitError> {
    let (hashes, recipients, pending) = {
        let mut core = node.core();
        let records = seal(&mut core)?;
        let hashes: Vec<EnvelopeHash> = records.iter().map(|r| r.envelope.hash()).collect();
        let recipients: Vec<MemberCode> = records.iter().flat_map(|r| r.recipients.clone()).collect();
        let mls_state = Some(core.mls_delta()?);
        let answered_by = operator.map(|o| hashes.iter().map(|h| (*h, o.to_string())).collect()).unwrap_or_default();
        (hashes, recipients, node.store.commit(WriteBatch { records, mls_state, answered_by, ..WriteBatch::default() }))
    };
    let submitted = std::time::Instant::now();
    if let Err(e) = pending.wait().await {
        return Err(node.fail_storage(&e).into());
    }
    node.metrics.commit.observe(submitted.elapsed().as_secs_f64());
    node.committed(&recipients);
    Ok(hashes)
}

/// Hands the engine the envelopes held for `lines` whose epoch the core's group has now reached,
/// and commits what it makes of them together with their release; again while a held envelope
/// taken was itself a commit. Each round releases at least one held envelope or ends.
pub(crate) async fn release_held(node: &NodeState, mut lines: Vec<LineId>) {
    while !lines.is_empty() {
        let (done, peers, pending) = {
            let mut engine = node.engine();
            match engine.release_held(node.store.as_ref(), lines, now_ms()) {
                Ok(Some(release)) => {
                    let (write, done) = release.into_parts();
                    let peers: Vec<MemberCode> = write.records.iter().flat_map(|r| r.recipients.clone()).collect();
                    (done, peers, node.store.commit(write))
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(error = %e, "cannot take the held envelopes");
                    return;
                }
            }
        };
        let result = pending.wait().await;
        if let Err(e) = &result {
            node.fail_storage(e);
        }
        lines = node.engine().released(done, result.is_ok());
        if result.is_ok() {
            node.committed(&peers);
        }
    }
}

/// Tries to take writes again: a probe (the storage alarm, committed durably), then the core
/// built again from the store, as at start, in place of one that may be ahead of it. Returns
/// whether the node takes writes.
async fn recover_storage(node: &NodeState) -> bool {
    let Some(failure) = node.storage_failure() else { return true };
    let raise = node.storage_alarm(AlarmOp::Raise, failure.since_ms, fault_text(&failure.fault));
    if let Err(e) = node.store.probe(vec![raise]).wait().await {
        if let StoreError::Unwritable { fault, .. } = &e {
            node.storage_fault(fault, failure.generation);
        }
        tracing::debug!(error = %e, "the database still refuses writes");
        return false;
    }
    if !node.rebuild_core() {
        return false;
    }
    let now = now_ms();
    let down_ms = now.saturating_sub(failure.since_ms);
    tracing::info!(down_ms, "the database takes writes again; the core was built again from it");
    let cleared = format!("the database takes writes again, {down_ms} ms after the first failed commit");
    let clear = node.storage_alarm(AlarmOp::Clear, now, cleared);
    if let Err(e) = node.store.commit(WriteBatch { alarms: vec![clear], ..WriteBatch::default() }).wait().await {
        node.fail_storage(&e);
        return false;
    }
    let peers: Vec<MemberCode> = node.links().iter().map(|l| l.peer.clone()).collect();
    node.committed(&peers);
    if let Err(e) = after_load(node).await {
        tracing::error!(error = %e, "cannot finish loading after the database took writes again");
    }
    true
}

/// What follows building the core from the store: the KeyPackage pool topped up, and the
/// envelopes held for a commit that is now stored taken.
pub(crate) async fn after_load(node: &NodeState) -> anyhow::Result<()> {
    refill_key_packages(node).await?;
    let mut held: Vec<LineId> = node.store.held_counts(0)?.into_iter().map(|c| c.line).collect();
    held.dedup();
    release_held(node, held).await;
    Ok(())
}

/// Tops the pool of unclaimed KeyPackages up to `key_package_pool_len`, storing them with
/// the MLS state that holds their private keys.
pub async fn refill_key_packages(node: &NodeState) -> anyhow::Result<u64> {
    let _one_at_a_time = node.key_package_refill.lock().await;
    // Claimed long ago and never used: deleted with their private keys.
    let stale = node.store.key_packages_claimed_before(node.engine().key_packages_stale_before(now_ms()))?;
    let dropping = {
        let mut engine = node.engine();
        engine.forget_stale_key_packages(stale)?.map(|s| node.store.drop_key_packages(s.state, s.references))
    };
    if let Some(pending) = dropping {
        if let Err(e) = pending.wait().await {
            node.fail_storage(&e);
            return Err(e.into());
        }
    }
    let available = node.store.key_packages_available()?;
    // Made, snapshotted and handed to the store under the engine's lock, so that the stored
    // MLS state is never older than one stored before it.
    let (wanted, pending) = {
        let mut engine = node.engine();
        let Some(made) = engine.make_key_packages(available)? else { return Ok(0) };
        (made.with_refs.len() as u64, node.store.add_key_packages(made.state, made.with_refs, now_ms()))
    };
    if let Err(e) = pending.wait().await {
        node.fail_storage(&e);
        return Err(e.into());
    }
    Ok(wanted)
}

/// Honours the core's timers: deadlines, escalations and link tests. A deadline that passed while
/// the node was down fires at the first tick after start.
pub(crate) async fn run_clock(node: Arc<NodeState>, mut shutdown: watch::Receiver<bool>) {
    let sleep_max = node.runtime_limits.clock_sleep_ms_max;
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
                        node.fail_storage(&StoreError::Unwritable {
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
        let wait = wake.map(|w| w - now).unwrap_or(sleep_max).min(sleep_max);
        tokio::select! {
            _ = node.clock.notified() => {}
            _ = tokio::time::sleep(std::time::Duration::from_millis(wait)) => {}
            _ = shutdown.changed() => break,
        }
    }
}

/// Compares the system's wall clock with the node's own every `clock_watch_ms`, and keeps a
/// `clock` alarm about this node open while they are further apart than `clock_offset_ms_max`:
/// the wall clock stepped while the node ran, and what this node shows as times may be off from
/// what its operators' other clocks show until it restarts.
pub(crate) async fn run_clock_watch(node: Arc<NodeState>, mut shutdown: watch::Receiver<bool>) {
    let bound = node.core().discipline().clock_offset_ms_max;
    let no_line = adi_wire::LineId([0; 16]);
    let mut alarmed = node
        .store
        .alarms(true, adi_store::Page::all())
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
            _ = tokio::time::sleep(Duration::from_millis(node.runtime_limits.clock_watch_ms)) => {}
            _ = shutdown.changed() => break,
        }
    }
}

/// While the node refuses writes, tries every `storage_probe_ms` to take them again.
pub(crate) async fn run_storage_probe(node: Arc<NodeState>, mut shutdown: watch::Receiver<bool>) {
    let every = Duration::from_millis(node.runtime_limits.storage_probe_ms);
    let mut storage = node.storage_watch();
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
            if recover_storage(&node).await {
                break;
            }
        }
    }
}

/// The verdicts of a batch once committed, as a task to await.
type Finish = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<Verdict>, ApiError>> + Send>>;

/// Decides on a batch of `peer`'s envelopes under the engine's lock and submits its write;
/// returns the verdicts to send early (only with the injected fault) and the task that waits for
/// the commit, takes held envelopes it released and gives the verdicts. Envelopes a restored node
/// fetched from `peer` to catch up are taken the same way (`fed::restore`).
pub(crate) fn take(
    node: &Arc<NodeState>,
    peer: &MemberCode,
    envelopes: &[&[u8]],
) -> Result<(Option<Vec<Verdict>>, Finish), ApiError> {
    // A peer answered 503 keeps the batch queued and tries again later.
    if let Some(f) = node.storage_failure() {
        return Err(storage_refusal(&f.fault));
    }
    let files: Vec<crate::documents::Touched>;
    let (received, peers, pending) = {
        let mut engine = node.engine();
        let received = match engine.receive(node.store.as_ref(), peer, envelopes, now_ms()) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot decide a batch");
                return Err(ApiError::unavailable());
            }
        };
        let Received { write, answer } = received;
        // Submitted under the engine's lock so that the store commits in the order it decided.
        let peers: Vec<MemberCode> =
            write.iter().flat_map(|w| w.records.iter().flat_map(|r| r.recipients.clone())).collect();
        files = write.iter().flat_map(|w| crate::documents::files_touched(&w.records)).collect();
        (answer, peers, write.map(|w| node.store.commit(w)))
    };
    let early = received.early().map(<[Verdict]>::to_vec);
    let node = node.clone();
    let finish = async move {
        let submitted = std::time::Instant::now();
        let outcomes = match pending {
            None => Vec::new(),
            Some(p) => match p.wait().await {
                Ok(o) => {
                    node.metrics.commit.observe(submitted.elapsed().as_secs_f64());
                    o
                }
                Err(e) => {
                    node.engine().abandon(received);
                    return Err(ApiError::from(node.fail_storage(&e)));
                }
            },
        };
        let answered = node.engine().answer(node.store.as_ref(), received, &outcomes);
        node.committed(&peers);
        if !files.is_empty() {
            tokio::spawn(crate::documents::judge_files(node.clone(), files));
        }
        if !answered.release.is_empty() {
            release_held(&node, answered.release).await;
        }
        Ok(answered.verdicts)
    };
    Ok((early, Box::pin(finish)))
}
