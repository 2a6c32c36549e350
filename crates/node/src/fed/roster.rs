//! The roster as a living agreement, while the node runs: versions checked by the core's one
//! function (`adi_core::amendment`), kept durably and put in force without a restart; proposed
//! versions kept while they gather signatures; and the exchange that carries both between
//! members' nodes.
//!
//! Every node exchanges with every peer at start, at once after any change of its own (a
//! proposal, a signature, a version applied) and every `roster_sync_ms` besides: it says which
//! version it holds and hands over the proposals it keeps; the peer answers with the versions
//! after that one, in order, and its own proposals. A node that was down therefore catches up on
//! every version it missed, in order, at its first exchange, and a signature reaches every node
//! within a few exchanges. A version or proposal that does not verify (forged, altered, or
//! amending another version than the one in force) is refused whole and raises a `misconduct`
//! alarm naming the peer that handed it over; a proposal that lacks signatures is kept, and
//! never takes effect until it has them.

use std::sync::Arc;
use std::time::Duration;

use adi_core::{MemberCode, WriteBatch};
use adi_engine::roster::{forged_alarm, Decision, Refusal, RosterBook, RosterLimits};
use adi_store::{RosterApplied, RosterProposalKept};
use adi_wire::files::RosterVersionFile;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::links::{post_once, run_link};
use super::ROSTER_PATH;
use crate::clock::now_ms;
use crate::config::NodeConfig;
use crate::driver::commit_own;
use crate::error::ApiError;
use crate::state::NodeState;

/// What a node hands a peer: the number of the version it holds, and the proposals it keeps.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Exchange {
    pub number: u64,
    pub proposals: Vec<RosterVersionFile>,
}

/// A peer's answer: the number of the version it holds, the versions after the one named, in
/// order (at most `roster_versions_per_exchange_max`), and the proposals it keeps.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ExchangeReply {
    #[serde(default)]
    pub number: u64,
    pub versions: Vec<RosterVersionFile>,
    pub proposals: Vec<RosterVersionFile>,
}

/// Who hands a version or a proposal to this node.
#[derive(Clone, Debug)]
pub enum Source {
    /// A member's node, over federation.
    Peer(MemberCode),
    /// One of this node's operators, by name.
    Operator(String),
}

impl Source {
    fn actor(&self) -> String {
        match self {
            Source::Peer(m) => format!("member {m}"),
            Source::Operator(name) => name.clone(),
        }
    }
}

/// What became of a version or proposal handed over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Offered {
    /// It met its rule and took effect: the version now in force.
    Applied(u64),
    /// Kept as a proposal, with this many signatures new to this node.
    Kept { added: usize },
    /// It amends a version older than the one in force.
    Stale,
    /// It amends a version this node does not hold yet.
    Ahead,
}

/// Why a version or proposal was refused.
#[derive(Clone, Debug)]
pub struct Refused {
    /// `roster_refused` (forged, altered or out of order), `roster_limit` (past a named limit)
    /// or `storage` (the node could not record it).
    pub code: &'static str,
    pub message: String,
}

impl From<Refused> for ApiError {
    fn from(r: Refused) -> ApiError {
        let status = match r.code {
            "storage" => StatusCode::SERVICE_UNAVAILABLE,
            "roster_limit" => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, r.code, r.message)
    }
}

/// A version file with its hash.
pub type Hashed = (RosterVersionFile, [u8; 32]);

/// The roster's chain as a node starts: the first version from its configuration's roster file,
/// then the versions its configuration names, then those its store holds, and the proposals it
/// kept. Returns the book and the configuration's versions the store lacks, to record, with
/// their hashes.
pub fn book(
    config: &NodeConfig,
    stored: &[Vec<u8>],
    proposals: &[Vec<u8>],
) -> anyhow::Result<(RosterBook, Vec<Hashed>)> {
    let at = |e: String| anyhow::anyhow!("{}: the roster's first version: {e}", config.path.display());
    let mut book = RosterBook::first(&config.first_roster).map_err(at)?;
    let mut stored_files = Vec::new();
    for (i, body) in stored.iter().enumerate() {
        let file: RosterVersionFile = serde_json::from_slice(body)
            .map_err(|e| anyhow::anyhow!("roster version {} in the database cannot be read: {e}", i + 2))?;
        stored_files.push(file);
    }
    let mut to_record = Vec::new();
    for file in config.roster_versions.iter() {
        let held = stored_files.iter().any(|s| s.number == file.number);
        book.extend(file.clone())
            .map_err(|e| anyhow::anyhow!("roster version {} from the configuration is refused: {e}", file.number))?;
        if !held {
            to_record.push((file.clone(), book.current.hash));
        }
    }
    for file in stored_files {
        if file.number <= book.current.number {
            let differs = book.versions.iter().find(|v| v.number == file.number).is_some_and(|v| {
                v.previous != file.previous
                    || serde_json::to_value(&v.roster).ok() != serde_json::to_value(&file.roster).ok()
            });
            if differs {
                anyhow::bail!("roster version {} in the database differs from the configuration's", file.number);
            }
            continue;
        }
        let number = file.number;
        book.extend(file).map_err(|e| anyhow::anyhow!("roster version {number} in the database is refused: {e}"))?;
    }
    book.keep_stored(proposals.iter().filter_map(|b| serde_json::from_slice(b).ok()).collect());
    Ok((book, to_record))
}

fn limits(node: &NodeState) -> RosterLimits {
    let l = &node.runtime_limits;
    RosterLimits {
        version_bytes_max: l.roster_version_bytes_max,
        signatures_max: l.roster_signatures_max,
        proposals_max: l.roster_proposals_max,
        proposals_per_member_max: l.roster_proposals_per_member_max,
    }
}

/// Hands a version or a proposal to this node: decided by the engine's [`RosterBook`], then
/// recorded, then put in force or kept. A peer that hands over one that does not verify is named
/// in a `misconduct` alarm.
pub async fn offer(node: &NodeState, source: Source, file: RosterVersionFile) -> Result<Offered, Refused> {
    let _one_at_a_time = node.roster_lock.lock().await;
    let book = node.roster_book();
    let decision = match book.decide(&file, &limits(node)) {
        Ok(d) => d,
        Err(refusal) => {
            let message = refusal.message().to_string();
            return Err(match refusal {
                Refusal::Limit(_) => Refused { code: "roster_limit", message },
                Refusal::Forged(_) => {
                    if let Source::Peer(peer) = &source {
                        tracing::warn!(peer = %peer, "{message}");
                        let alarm = forged_alarm(peer, now_ms(), &message);
                        let batch = WriteBatch { alarms: vec![alarm], ..WriteBatch::default() };
                        if let Err(e) = node.store.commit(batch).wait().await {
                            node.fail_storage(&e);
                        }
                        node.committed(&[]);
                    }
                    Refused { code: "roster_refused", message }
                }
            });
        }
    };
    match decision {
        Decision::Stale => Ok(Offered::Stale),
        Decision::Ahead => Ok(Offered::Ahead),
        Decision::Unchanged => Ok(Offered::Kept { added: 0 }),
        Decision::Apply { version, file, detail } => {
            let number = version.number;
            let body = serde_json::to_vec(&file).map_err(|e| storage(e.to_string()))?;
            let applied = RosterApplied {
                number,
                hash: version.hash,
                body,
                actor: source.actor(),
                detail: detail.clone(),
                now_ms: now_ms(),
            };
            if let Err(e) = node.store.roster_version_applied(applied).wait().await {
                node.fail_storage(&e);
                return Err(storage(format!("the version could not be recorded: {e}")));
            }
            node.with_roster_book(|b| b.applied(*version.clone(), file));
            node.roster_took_effect(&book.current, &version);
            node.roster_wake.notify_one();
            tracing::info!(number, "{detail}");
            Ok(Offered::Applied(number))
        }
        Decision::Keep { file, hash, added, new, changes } => {
            let what = format!("roster version {} ({})", file.number, hex::encode(hash));
            let audit = match (&source, new) {
                (_, true) => Some((
                    "roster_proposed".to_string(),
                    source.actor(),
                    format!("{what} proposed: {}", changes.join(", ")),
                )),
                (Source::Operator(_), false) => {
                    Some(("roster_signed".to_string(), source.actor(), format!("{what} signed by {}", node.member)))
                }
                (Source::Peer(_), false) => None,
            };
            let body = serde_json::to_vec(&file).map_err(|e| storage(e.to_string()))?;
            let kept = RosterProposalKept { number: file.number, hash, body, audit, now_ms: now_ms() };
            if let Err(e) = node.store.roster_proposal_kept(kept).wait().await {
                node.fail_storage(&e);
                return Err(storage(format!("the proposal could not be recorded: {e}")));
            }
            node.with_roster_book(|b| b.kept(file, hash));
            node.roster_wake.notify_one();
            Ok(Offered::Kept { added })
        }
    }
}

fn storage(message: String) -> Refused {
    Refused { code: "storage", message }
}

/// Takes versions in order, each as the next after the one in force.
async fn take_versions(node: &NodeState, peer: &MemberCode, versions: Vec<RosterVersionFile>) {
    for file in versions {
        match offer(node, Source::Peer(peer.clone()), file).await {
            Ok(Offered::Applied(_) | Offered::Stale) => {}
            Ok(Offered::Kept { .. }) => {
                // A version the peer holds as in force must meet its rule here as well: it did
                // not, and it is kept as a proposal only.
                tracing::warn!(peer = %peer, "a roster version the peer holds in force lacks signatures here");
                break;
            }
            Ok(Offered::Ahead) | Err(_) => break,
        }
    }
}

/// A peer's exchange: its proposals taken, and the answer: the versions after the one it holds
/// and this node's proposals.
pub async fn answer_exchange(node: &NodeState, peer: &MemberCode, body: &[u8]) -> Result<ExchangeReply, ApiError> {
    if node.roster().is_suspended(peer) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "suspended", format!("{peer} is suspended by the roster")));
    }
    let request: Exchange = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "malformed_exchange", format!("not a roster exchange: {e}"))
    })?;
    let max = node.runtime_limits.roster_proposals_max;
    if request.proposals.len() > max {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "roster_limit",
            format!("an exchange carries at most {max} proposals"),
        ));
    }
    node.note_peer_roster(peer, request.number);
    if request.number > node.roster_book().current.number {
        // The peer holds versions this node lacks: it asks for them at once.
        node.roster_wake.notify_one();
    }
    for p in request.proposals {
        // A refusal is alarmed and logged where it is decided; the exchange goes on.
        let _ = offer(node, Source::Peer(peer.clone()), p).await;
    }
    let book = node.roster_book();
    Ok(ExchangeReply {
        number: book.current.number,
        versions: book
            .versions
            .iter()
            .filter(|v| v.number > request.number)
            .take(node.runtime_limits.roster_versions_per_exchange_max)
            .cloned()
            .collect(),
        proposals: book.proposals,
    })
}

/// Takes each member the roster in force suspends or no longer lists off every conference this
/// node sequences (as its home member, or as the member the line is re-homed to once its home is
/// removed). A re-homed
/// line waits until each of its other members' nodes is known to hold the version in force, so
/// that none refuses the new home's commit as coming from a member that is not home.
async fn take_members_off_lines(node: &NodeState) {
    let roster = node.roster();
    let number = node.roster_book().current.number;
    let standing = |m: &MemberCode| roster.member(m).is_some() && !roster.is_suspended(m);
    let lines: Vec<adi_core::Line> = node.core().lines().cloned().collect();
    for line in lines {
        if line.is_direct() || line.acting_home(&roster) != node.member {
            continue;
        }
        // A suspended home keeps its own conferences (`Line::acting_home`): it takes nobody off.
        if !standing(&node.member) {
            continue;
        }
        let Some(out) = line.members.iter().find(|m| !standing(m)).cloned() else { continue };
        let others_ready =
            line.members.iter().filter(|m| **m != node.member && standing(m)).all(|m| node.peer_roster(m) >= number);
        if line.home != node.member && !others_ready {
            continue;
        }
        if line.members.len() <= 2 {
            continue;
        }
        match commit_own(node, |core| core.remove_member(now_ms(), line.id, &out)).await {
            Ok(_) => {
                tracing::info!(line = %line.id, member = %out, "member taken off the line by roster version {number}")
            }
            Err(e) => tracing::warn!(line = %line.id, member = %out, error = ?e, "cannot take the member off the line"),
        }
    }
}

/// One exchange with a peer's node, trying its endpoints in order.
async fn exchange_with(node: &NodeState, peer: &MemberCode) -> Result<ExchangeReply, String> {
    let member = node.roster_member(peer).ok_or_else(|| format!("{peer} is not in the roster"))?;
    let tls = Arc::new(node.client_config(&member).map_err(|e| e.to_string())?);
    let book = node.roster_book();
    let request = Exchange { number: book.current.number, proposals: book.proposals };
    let body = serde_json::to_vec(&request).map_err(|e| e.to_string())?;
    let mut errors = Vec::new();
    for endpoint in &member.endpoints {
        let timeout = node.runtime_limits.request_timeout_ms;
        match post_once(endpoint, tls.clone(), peer, ROSTER_PATH, body.clone(), timeout).await {
            Ok(bytes) => {
                return serde_json::from_slice(&bytes).map_err(|e| format!("{endpoint}: not a roster exchange: {e}"))
            }
            Err(e) => errors.push(format!("{endpoint}: {e}")),
        }
    }
    Err(errors.join("; "))
}

/// Runs the roster's side of the node until `shutdown` changes: one link task per peer (started
/// for a member when a version admits it), and the exchanges with every member's node.
pub async fn run_roster(node: Arc<NodeState>, mut shutdown: watch::Receiver<bool>) {
    let mut links = JoinSet::new();
    let mut running = std::collections::BTreeSet::new();
    let mut roster_number = node.roster_watch();
    loop {
        for link in node.links() {
            if running.insert(link.peer.clone()) {
                links.spawn(run_link(node.clone(), link, shutdown.clone()));
            }
        }
        let roster = node.roster();
        let peers: Vec<MemberCode> = roster
            .members()
            .filter(|m| m.code != node.member && !roster.is_suspended(&m.code))
            .map(|m| m.code.clone())
            .collect();
        let mut exchanges = JoinSet::new();
        for peer in peers {
            let node = node.clone();
            exchanges.spawn(async move {
                let reply = exchange_with(&node, &peer).await;
                (peer, reply)
            });
        }
        while let Some(done) = exchanges.join_next().await {
            let Ok((peer, reply)) = done else { continue };
            match reply {
                Ok(reply) => {
                    node.note_peer_roster(&peer, reply.number);
                    take_versions(&node, &peer, reply.versions).await;
                    for p in reply.proposals {
                        let _ = offer(&node, Source::Peer(peer.clone()), p).await;
                    }
                }
                Err(e) => tracing::debug!(peer = %peer, error = %e, "roster exchange failed"),
            }
        }
        take_members_off_lines(&node).await;
        super::rotation::move_when_ready(&node).await;
        let every = Duration::from_millis(node.runtime_limits.roster_sync_ms);
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = node.roster_wake.notified() => {}
            _ = roster_number.changed() => {}
            _ = shutdown.changed() => break,
        }
    }
    links.abort_all();
}
