//! Retention (`docs/OPERATIONS.md`, "Retention"): every `retention_interval_ms`, the content of
//! messages whose class's time (`[retention]`) is past goes from this node's store, for those a
//! confirmed archive holds only (`POST /api/v1/lines/{line}/archives`). Their signed envelopes,
//! hashes, places in the record and receipts stay, so that every later export still verifies and
//! says what was pruned.

use std::sync::Arc;
use std::time::Duration;

use adi_store::PruneRule;
use tokio::sync::watch;

use crate::state::NodeState;

/// Prunes under `rules` (class, milliseconds kept) every `retention_interval_ms`, in transactions
/// of at most `retention_batch_max` messages, until nothing more is due.
pub(crate) async fn run(node: Arc<NodeState>, rules: Vec<(&'static str, u64)>, mut shutdown: watch::Receiver<bool>) {
    if rules.is_empty() {
        return;
    }
    let every = Duration::from_millis(node.runtime_limits.retention_interval_ms);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        if node.storage_failure().is_some() {
            // Nothing can be written; the next period tries again.
            continue;
        }
        let limit = node.runtime_limits.retention_batch_max;
        loop {
            let now = crate::clock::now_ms();
            let due: Vec<PruneRule> = rules
                .iter()
                .map(|(class, keep)| PruneRule { class: class.to_string(), before_ms: now.saturating_sub(*keep) })
                .collect();
            match node.store.prune(due, now, limit).wait().await {
                Ok(pruned) => {
                    if !pruned.is_empty() {
                        tracing::info!(messages = pruned.len(), "retention pruned the content of archived messages");
                    }
                    if pruned.len() < limit {
                        break;
                    }
                }
                Err(e) => {
                    node.fail_storage(&e);
                    tracing::warn!(error = %e, "retention cannot prune");
                    break;
                }
            }
        }
    }
}
