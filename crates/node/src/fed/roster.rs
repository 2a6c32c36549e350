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

use adi_core::amendment::{self, RosterVersion};
use adi_core::{AlarmChange, MemberCode, WriteBatch};
use adi_store::{RosterApplied, RosterProposalKept};
use adi_wire::files::RosterVersionFile;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::links::{post_once, run_link};
use super::{tls, ROSTER_PATH};
use crate::clock::now_ms;
use crate::config::NodeConfig;
use crate::error::ApiError;
use crate::state::{NodeState, RosterBook};

/// What a node hands a peer: the number of the version it holds, and the proposals it keeps.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Exchange {
    pub number: u64,
    pub proposals: Vec<RosterVersionFile>,
}

/// A peer's answer: the versions after the one named, in order (at most
/// `roster_versions_per_exchange_max`), and the proposals it keeps.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ExchangeReply {
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

fn refused(message: impl Into<String>) -> Refused {
    Refused { code: "roster_refused", message: message.into() }
}

/// A version file with its hash.
pub type Hashed = (RosterVersionFile, [u8; 32]);

/// The roster's chain as a node starts: the first version from its configuration's roster file,
/// then the versions its configuration names, then those its store holds. Returns the book and
/// the configuration's versions the store lacks, to record, with their hashes.
pub fn book(config: &NodeConfig, stored: &[Vec<u8>]) -> anyhow::Result<(RosterBook, Vec<Hashed>)> {
    let first = amendment::check_first(&amendment::first(&config.first_roster))
        .map_err(|e| anyhow::anyhow!("{}: the roster's first version: {e}", config.path.display()))?;
    let mut book = RosterBook { first_hash: first.hash, current: first, versions: Vec::new(), proposals: Vec::new() };
    let mut stored_files = Vec::new();
    for (i, body) in stored.iter().enumerate() {
        let file: RosterVersionFile = serde_json::from_slice(body)
            .map_err(|e| anyhow::anyhow!("roster version {} in the database cannot be read: {e}", i + 2))?;
        stored_files.push(file);
    }
    let mut to_record = Vec::new();
    for file in config.roster_versions.iter() {
        let held = stored_files.iter().any(|s| s.number == file.number);
        extend(&mut book, file.clone(), "the configuration")?;
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
        extend(&mut book, file, "the database")?;
    }
    Ok((book, to_record))
}

/// Checks `file` as the version after the book's and puts it at the end.
fn extend(book: &mut RosterBook, file: RosterVersionFile, from: &str) -> anyhow::Result<()> {
    let next = amendment::check_amendment(&book.current, &file)
        .map_err(|e| anyhow::anyhow!("roster version {} from {from} is refused: {e}", file.number))?;
    book.current = next;
    book.versions.push(file);
    Ok(())
}

/// Takes the proposals the store kept that still amend the version in force.
pub fn kept_proposals(book: &mut RosterBook, stored: &[Vec<u8>]) {
    for body in stored {
        let Ok(file) = serde_json::from_slice::<RosterVersionFile>(body) else { continue };
        if amendment::check_proposal(&book.current, &file).is_ok() {
            book.proposals.push(file);
        }
    }
}

/// What a version changes and who signed it, in a sentence for the audit log.
fn describe(from: &RosterVersion, to: &RosterVersion) -> String {
    let changes: Vec<String> = amendment::changes(&from.roster, &to.roster).iter().map(|c| c.to_string()).collect();
    let mut signers: Vec<String> = to.signed_by.iter().map(|(m, _)| m.to_string()).collect();
    signers.dedup();
    format!(
        "roster version {} ({}) took effect: {}; signed by {}",
        to.number,
        hex::encode(to.hash),
        changes.join(", "),
        signers.join(", ")
    )
}

/// Hands a version or a proposal to this node: checked against the version in force, merged with
/// the signatures already kept for it, applied at once if it meets its rule, else kept. A peer
/// that hands over one that does not verify is named in a `misconduct` alarm.
pub async fn offer(node: &NodeState, source: Source, file: RosterVersionFile) -> Result<Offered, Refused> {
    let limits = &node.runtime_limits;
    if file.signatures.len() > limits.roster_signatures_max {
        return Err(Refused {
            code: "roster_limit",
            message: format!("a roster version carries at most {} signatures", limits.roster_signatures_max),
        });
    }
    let size = serde_json::to_vec(&file).map(|b| b.len()).unwrap_or(usize::MAX);
    if size > limits.roster_version_bytes_max {
        return Err(Refused {
            code: "roster_limit",
            message: format!("a roster version is at most {} bytes", limits.roster_version_bytes_max),
        });
    }
    let _one_at_a_time = node.roster_lock.lock().await;
    let book = node.roster_book();
    if file.number <= book.current.number {
        return Ok(Offered::Stale);
    }
    if file.number > book.current.number + 1 {
        return Ok(Offered::Ahead);
    }
    let checked = match amendment::check_proposal(&book.current, &file) {
        Ok(c) => c,
        Err(e) => {
            let message = format!("roster version {} refused: {e}", file.number);
            misconduct(node, &source, &message).await;
            return Err(refused(message));
        }
    };
    let kept = book
        .proposals
        .iter()
        .find(|p| amendment::check_proposal(&book.current, p).is_ok_and(|k| k.hash == checked.hash));
    let (merged, added, new) = match kept {
        Some(k) => {
            let mut merged = k.clone();
            let added = amendment::merge_signatures(&mut merged, &file);
            (merged, added, false)
        }
        None => {
            if book.proposals.len() >= limits.roster_proposals_max {
                return Err(Refused {
                    code: "roster_limit",
                    message: format!(
                        "this node keeps at most {} proposed roster versions at once",
                        limits.roster_proposals_max
                    ),
                });
            }
            let added = file.signatures.len();
            (file, added, true)
        }
    };
    if !new && added == 0 {
        return Ok(Offered::Kept { added: 0 });
    }
    let merged_checked = amendment::check_proposal(&book.current, &merged).map_err(|e| refused(e.to_string()))?;
    if amendment::rules_met(&book.current, &merged_checked).is_ok() {
        let number = merged_checked.number;
        apply(node, &book.current, merged_checked, merged, &source).await?;
        return Ok(Offered::Applied(number));
    }
    let audit = match (&source, new) {
        (_, true) => Some((
            "roster_proposed".to_string(),
            source.actor(),
            format!(
                "roster version {} ({}) proposed: {}",
                merged.number,
                hex::encode(merged_checked.hash),
                amendment::changes(&book.current.roster, &merged_checked.roster)
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        (Source::Operator(_), false) => Some((
            "roster_signed".to_string(),
            source.actor(),
            format!(
                "roster version {} ({}) signed by {}",
                merged.number,
                hex::encode(merged_checked.hash),
                node.member
            ),
        )),
        (Source::Peer(_), false) => None,
    };
    let body = serde_json::to_vec(&merged).map_err(|e| refused(e.to_string()))?;
    let kept = RosterProposalKept { number: merged.number, hash: merged_checked.hash, body, audit, now_ms: now_ms() };
    if let Err(e) = node.store.roster_proposal_kept(kept).wait().await {
        node.fail_storage(&e);
        return Err(Refused { code: "storage", message: format!("the proposal could not be recorded: {e}") });
    }
    node.with_roster_book(|b| {
        b.proposals
            .retain(|p| amendment::check_proposal(&b.current, p).map_or(true, |k| k.hash != merged_checked.hash));
        b.proposals.push(merged);
    });
    node.roster_wake.notify_one();
    Ok(Offered::Kept { added })
}

/// Records a version that met its rule, then puts it in force.
async fn apply(
    node: &NodeState,
    current: &RosterVersion,
    version: RosterVersion,
    file: RosterVersionFile,
    source: &Source,
) -> Result<(), Refused> {
    let detail = describe(current, &version);
    let body = serde_json::to_vec(&file).map_err(|e| refused(e.to_string()))?;
    let applied = RosterApplied {
        number: version.number,
        hash: version.hash,
        body,
        actor: source.actor(),
        detail: detail.clone(),
        now_ms: now_ms(),
    };
    if let Err(e) = node.store.roster_version_applied(applied).wait().await {
        node.fail_storage(&e);
        return Err(Refused { code: "storage", message: format!("the version could not be recorded: {e}") });
    }
    node.with_roster_book(|b| {
        b.current = version.clone();
        b.versions.push(file);
        b.proposals.retain(|p| p.number > version.number);
    });
    node.roster_took_effect(&version);
    node.roster_wake.notify_one();
    tracing::info!(number = version.number, "{detail}");
    Ok(())
}

/// Raises the `misconduct` alarm naming the peer that handed over a version that does not verify.
async fn misconduct(node: &NodeState, source: &Source, message: &str) {
    let Source::Peer(peer) = source else { return };
    tracing::warn!(peer = %peer, "{message}");
    let alarm = AlarmChange::misconduct(peer, now_ms(), format!("{peer}'s node handed over a {message}"));
    if let Err(e) = node.store.commit(WriteBatch { alarms: vec![alarm], ..WriteBatch::default() }).wait().await {
        node.fail_storage(&e);
    }
    node.committed(&[]);
}

/// Takes versions in order, each as the next after the one in force.
async fn take_versions(node: &NodeState, peer: &MemberCode, versions: Vec<RosterVersionFile>) {
    for file in versions {
        match offer(node, Source::Peer(peer.clone()), file).await {
            Ok(Offered::Applied(_) | Offered::Stale) => {}
            Ok(Offered::Kept { .. }) => {
                // A version the peer applied must meet its rule here as well: it did not.
                let message = "roster version that the peer holds as in force lacks the signatures its rule asks";
                misconduct(node, &Source::Peer(peer.clone()), message).await;
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
    for p in request.proposals {
        // A refusal is alarmed and logged where it is decided; the exchange goes on.
        let _ = offer(node, Source::Peer(peer.clone()), p).await;
    }
    let book = node.roster_book();
    Ok(ExchangeReply {
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

/// One exchange with a peer's node, trying its endpoints in order.
async fn exchange_with(node: &NodeState, peer: &MemberCode) -> Result<ExchangeReply, String> {
    let member = node.roster_member(peer).ok_or_else(|| format!("{peer} is not in the roster"))?;
    let tls = Arc::new(
        tls::federation_client_config(node.tls_cert.clone(), node.tls_key.clone_key(), member.tls_pin)
            .map_err(|e| e.to_string())?,
    );
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
                    take_versions(&node, &peer, reply.versions).await;
                    for p in reply.proposals {
                        let _ = offer(&node, Source::Peer(peer.clone()), p).await;
                    }
                }
                Err(e) => tracing::debug!(peer = %peer, error = %e, "roster exchange failed"),
            }
        }
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
