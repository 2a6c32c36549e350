//! The record at the node: checkpoints of each line's log, offered to the line's other members to
//! countersign, and the answers to their offers. (An envelope's check against its sender's chain
//! is the engine's, `adi_engine::chain`.)

use adi_core::{AlarmChange, AlarmKind, AlarmOp, Evidence, MemberCode, WriteBatch};
use adi_engine::chain::ChainBreak;
use adi_record::{merkle, Hash, SignedCheckpoint};
use adi_store::StoreError;
use adi_wire::{Envelope, LineId};
use serde::{Deserialize, Serialize};

use crate::node::{now_ms, NodeState};

/// The federation path where a peer hands this node its checkpoint of a line to countersign.
pub const CHECKPOINT_PATH: &str = "/fed/v1/checkpoints";

/// A member's signed checkpoint of a line, for the receiving member to check and countersign,
/// with the proof that it extends the last one the receiver countersigned, and the latest
/// checkpoints the sender holds from the line's other members (`docs/RECORD.md`).
#[derive(Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct CheckpointOffer {
    pub v: u8,
    /// Signed checkpoint bytes, hex.
    pub checkpoint: String,
    /// The size of the last checkpoint of the sender's that the receiver countersigned (0: none).
    pub from_size: u64,
    /// The consistency proof from `from_size` to the checkpoint's size, hex hashes.
    pub consistency: Vec<String>,
    /// Other members' signed checkpoints of the line, hex.
    pub others: Vec<String>,
}

/// The receiver's answer: its countersignature, or why it refused, and the latest checkpoints it
/// holds of the line from members other than the sender.
#[derive(Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct CheckpointAnswer {
    pub v: u8,
    pub countersignature: Option<String>,
    pub refused: Option<String>,
    pub checkpoints: Vec<String>,
}

/// What came of offering a checkpoint to one member.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Exchange {
    pub member: String,
    pub countersigned: bool,
    pub detail: Option<String>,
}

fn hex32(s: &str) -> Option<Hash> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok().map(|_| out)
}

/// The leaf hashes of this node's log of a line.
fn log_leaves(node: &NodeState, line: &LineId) -> Result<Vec<Hash>, StoreError> {
    Ok(node.store.line_log(line)?.iter().map(|h| merkle::leaf_hash(&h.0)).collect())
}

fn tamper(
    line: LineId,
    member: &MemberCode,
    detail: String,
    held: Vec<u8>,
    offered: Vec<u8>,
    now_ms: u64,
) -> ChainBreak {
    let alarm = AlarmChange {
        kind: AlarmKind::Tamper,
        op: AlarmOp::Raise,
        line,
        member: member.clone(),
        message: None,
        at_ms: now_ms,
        detail: detail.clone(),
        addressed_to: Vec::new(),
    };
    let evidence = Evidence { line, member: member.clone(), at_ms: now_ms, detail: detail.clone(), held, offered };
    ChainBreak { reason: format!("tamper: {detail}"), alarm, evidence }
}

/// Checks a signed checkpoint of `line` against the roster and against every checkpoint of the
/// same signer held here: two roots for one size are equivocation.
fn check_checkpoint(
    node: &NodeState,
    line: &LineId,
    bytes: &[u8],
    now_ms: u64,
) -> Result<Result<SignedCheckpoint, Option<ChainBreak>>, StoreError> {
    let Ok(cp) = SignedCheckpoint::from_bytes(bytes) else { return Ok(Err(None)) };
    let Ok(signer) = MemberCode::parse(&cp.checkpoint.signer) else { return Ok(Err(None)) };
    let Some(member) = node.roster().member(&signer).cloned() else { return Ok(Err(None)) };
    if cp.checkpoint.line != line.0 || cp.verify(&member.signing_key).is_err() {
        return Ok(Err(None));
    }
    for held in node.store.checkpoints(line, Some(signer.as_str()))? {
        if held.checkpoint.equivocates_with(&cp) {
            let detail = format!(
                "{signer} signed two different roots for its log of {} entries of the line",
                cp.checkpoint.size
            );
            let held = held.checkpoint.to_bytes().unwrap_or_default();
            return Ok(Err(Some(tamper(*line, &signer, detail, held, bytes.to_vec(), now_ms))));
        }
    }
    Ok(Ok(cp))
}

/// Keeps the other members' checkpoints a peer passed on, after checking each; an equivocation
/// among them is caught here.
fn take_others(
    node: &NodeState,
    line: &LineId,
    others: &[String],
    batch: &mut WriteBatch,
    now_ms: u64,
) -> Result<(), StoreError> {
    for hex in others.iter().take(node.limits.line_members_max) {
        let Ok(bytes) = hex::decode(hex) else { continue };
        if batch.checkpoints.iter().any(|c| c.to_bytes().ok().as_deref() == Some(&bytes[..])) {
            continue;
        }
        match check_checkpoint(node, line, &bytes, now_ms)? {
            Ok(cp) => batch.checkpoints.push(cp),
            Err(Some(b)) => {
                tracing::warn!(line = %line, reason = %b.reason, "tamper: equivocating checkpoint");
                batch.alarms.push(b.alarm);
                batch.evidence.push(b.evidence);
            }
            Err(None) => tracing::warn!(line = %line, "a passed-on checkpoint does not verify; ignored"),
        }
    }
    Ok(())
}

/// The latest checkpoint of each signer held of a line, but `except`'s.
fn latest_of_others(node: &NodeState, line: &LineId, except: &MemberCode) -> Result<Vec<String>, StoreError> {
    let mut latest: std::collections::BTreeMap<String, SignedCheckpoint> = std::collections::BTreeMap::new();
    for row in node.store.checkpoints(line, None)? {
        let signer = row.checkpoint.checkpoint.signer.clone();
        if signer != except.as_str() {
            latest.insert(signer, row.checkpoint);
        }
    }
    Ok(latest.values().filter_map(|c| c.to_bytes().ok()).map(hex::encode).collect())
}

/// Answers a peer's checkpoint offer: checks the signature, that it does not contradict any
/// checkpoint of the peer held here, and that it extends the last one this member countersigned;
/// then countersigns it.
pub(crate) async fn answer_offer(
    node: &NodeState,
    peer: &MemberCode,
    offer: CheckpointOffer,
) -> Result<CheckpointAnswer, String> {
    let now = now_ms();
    let bytes = hex::decode(&offer.checkpoint).map_err(|_| "the checkpoint is not hex".to_string())?;
    let cp = SignedCheckpoint::from_bytes(&bytes).map_err(|e| e.to_string())?;
    let line = LineId(cp.checkpoint.line);
    let on_line = node.core().line(&line).is_some_and(|l| l.has_member(peer) && l.has_member(&node.member));
    if !on_line || cp.checkpoint.signer != peer.as_str() {
        return Err(format!("{peer} may not offer this checkpoint here"));
    }
    let mut batch = WriteBatch::default();
    let e = |e: StoreError| e.to_string();
    take_others(node, &line, &offer.others, &mut batch, now).map_err(e)?;
    let refused = match check_checkpoint(node, &line, &bytes, now).map_err(e)? {
        Err(None) => Some("the checkpoint's signature does not verify".to_string()),
        Err(Some(b)) => {
            let reason = b.reason.clone();
            batch.alarms.push(b.alarm);
            batch.evidence.push(b.evidence);
            Some(reason)
        }
        Ok(cp) => {
            // The last of the peer's checkpoints this member countersigned: the new one must extend it.
            let last = node
                .store
                .checkpoints(&line, Some(peer.as_str()))
                .map_err(e)?
                .into_iter()
                .filter(|r| r.countersignatures.iter().any(|(m, _)| *m == node.member))
                .map(|r| r.checkpoint)
                .max_by_key(|c| c.checkpoint.size);
            let (from_size, from_root) =
                last.as_ref().map_or((0, merkle::root(&[])), |c| (c.checkpoint.size, c.checkpoint.root));
            let proof: Option<Vec<Hash>> = offer.consistency.iter().map(|h| hex32(h)).collect();
            let consistent = offer.from_size == from_size
                && proof.is_some_and(|p| {
                    merkle::verify_consistency(from_size, cp.checkpoint.size, &from_root, &cp.checkpoint.root, &p)
                        .is_ok()
                });
            if consistent {
                let signature = node.core().countersign(&cp).map_err(|e| e.message)?;
                batch.countersignatures.push((cp, node.member.clone(), signature));
                None
            } else {
                let detail = format!(
                    "{peer}'s log of {} entries does not extend the log of {from_size} entries it showed before",
                    cp.checkpoint.size
                );
                let held = last.and_then(|c| c.to_bytes().ok()).unwrap_or_default();
                let b = tamper(line, peer, detail, held, bytes.clone(), now);
                let reason = b.reason.clone();
                batch.alarms.push(b.alarm);
                batch.evidence.push(b.evidence);
                Some(reason)
            }
        }
    };
    let countersignature = batch.countersignatures.first().map(|(_, _, s)| hex::encode(s));
    if !batch.is_empty() {
        node.store.commit(batch).wait().await.map_err(|e| {
            node.fail_storage(&e);
            e.to_string()
        })?;
        node.committed(&[]);
    }
    let checkpoints = latest_of_others(node, &line, peer).map_err(e)?;
    Ok(CheckpointAnswer { v: 1, countersignature, refused, checkpoints })
}

/// Why a checkpoint was not made.
#[derive(Debug)]
pub enum CheckpointError {
    /// This node's stored log of the line no longer begins as its own last checkpoint signed: a
    /// `tamper` alarm is raised and the evidence kept.
    Tamper(String),
    /// Anything else (a store that cannot be read or written, a line not here).
    Failed(String),
}

impl std::fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckpointError::Tamper(why) | CheckpointError::Failed(why) => f.write_str(why),
        }
    }
}

impl From<String> for CheckpointError {
    fn from(why: String) -> Self {
        CheckpointError::Failed(why)
    }
}

/// Signs a checkpoint of this node's log of a line, keeps it, and offers it to every other member
/// of the line for countersigning; returns it and what each member answered.
pub async fn checkpoint_and_exchange(
    node: &NodeState,
    line: LineId,
) -> Result<(SignedCheckpoint, Vec<Exchange>), CheckpointError> {
    let now = now_ms();
    let e = |e: StoreError| e.to_string();
    let leaves = log_leaves(node, &line).map_err(e)?;
    check_own_log(node, line, &leaves).await?;
    let (cp, members) = {
        let core = node.core();
        let members: Vec<MemberCode> = core
            .line(&line)
            .ok_or_else(|| format!("no line {line} here"))?
            .members
            .iter()
            .filter(|m| **m != node.member)
            .cloned()
            .collect();
        let cp = core.sign_checkpoint(line, leaves.len() as u64, merkle::root(&leaves), now).map_err(|e| e.message)?;
        (cp, members)
    };
    node.store.commit(WriteBatch { checkpoints: vec![cp.clone()], ..WriteBatch::default() }).wait().await.map_err(
        |e| {
            node.fail_storage(&e);
            e.to_string()
        },
    )?;
    let mine = node.store.checkpoints(&line, Some(node.member.as_str())).map_err(e)?;
    let others = latest_of_others(node, &line, &node.member).map_err(e)?;
    let signed = hex::encode(cp.to_bytes().map_err(|e| e.to_string())?);
    let mut exchanges = Vec::new();
    for member in members {
        // The consistency proof starts where this member last countersigned.
        let from = mine
            .iter()
            .filter(|r| r.countersignatures.iter().any(|(m, _)| *m == member))
            .map(|r| r.checkpoint.checkpoint.size)
            .max()
            .unwrap_or(0)
            .min(cp.checkpoint.size);
        let offer = CheckpointOffer {
            v: 1,
            checkpoint: signed.clone(),
            from_size: from,
            consistency: merkle::consistency_proof(&leaves, from as usize).iter().map(hex::encode).collect(),
            others: others.clone(),
        };
        let outcome = offer_to(node, &member, &offer).await;
        exchanges.push(match outcome {
            Ok(answer) => settle_answer(node, &line, &member, &cp, answer, now).await,
            Err(why) => Exchange { member: member.to_string(), countersigned: false, detail: Some(why) },
        });
    }
    Ok((cp, exchanges))
}

async fn offer_to(node: &NodeState, member: &MemberCode, offer: &CheckpointOffer) -> Result<CheckpointAnswer, String> {
    let peer = node.roster_member(member).ok_or_else(|| format!("{member} is not in the roster"))?;
    let tls = std::sync::Arc::new(
        crate::tls::federation_client_config(node.tls_cert.clone(), node.tls_key.clone_key(), peer.tls_pin)
            .map_err(|e| e.to_string())?,
    );
    let body = serde_json::to_vec(offer).map_err(|e| e.to_string())?;
    let mut errors = Vec::new();
    for endpoint in &peer.endpoints {
        let timeout = node.runtime_limits.request_timeout_ms;
        match crate::federation::post_once(endpoint, tls.clone(), member, CHECKPOINT_PATH, body.clone(), timeout).await
        {
            Ok(bytes) => return serde_json::from_slice(&bytes).map_err(|e| format!("{member} answered badly: {e}")),
            Err(e) => errors.push(format!("{endpoint}: {e}")),
        }
    }
    Err(errors.join("; "))
}

/// Keeps a member's countersignature (checked) and the checkpoints it passed on.
async fn settle_answer(
    node: &NodeState,
    line: &LineId,
    member: &MemberCode,
    cp: &SignedCheckpoint,
    answer: CheckpointAnswer,
    now_ms: u64,
) -> Exchange {
    let mut batch = WriteBatch::default();
    let mut out = Exchange { member: member.to_string(), countersigned: false, detail: answer.refused.clone() };
    if let Some(sig) = answer.countersignature.as_deref().and_then(|s| hex::decode(s).ok()) {
        let key = node.roster_member(member).map(|m| m.signing_key);
        match (<[u8; 64]>::try_from(sig.as_slice()), key) {
            (Ok(sig), Some(key)) if cp.verify_countersignature(member.as_str(), &key, &sig).is_ok() => {
                batch.countersignatures.push((cp.clone(), member.clone(), sig));
                out.countersigned = true;
            }
            _ => out.detail = Some(format!("{member}'s countersignature does not verify")),
        }
    }
    if let Err(e) = take_others(node, line, &answer.checkpoints, &mut batch, now_ms) {
        out.detail = Some(e.to_string());
    }
    if let Err(e) = commit_findings(node, batch).await {
        out.detail = Some(e.to_string());
    }
    out
}

/// Every `every`, checkpoints each line whose log grew since this node's last checkpoint of it,
/// and offers the checkpoint to the line's other members; until `shutdown` changes.
pub(crate) async fn run_checkpoints(
    node: std::sync::Arc<NodeState>,
    every: std::time::Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
        if node.storage_failure().is_some() {
            // Nothing could be kept; the next period tries again.
            continue;
        }
        let lines: Vec<LineId> = node.core().lines().filter(|l| l.has_member(&node.member)).map(|l| l.id).collect();
        for line in lines {
            let grew = node.store.line_log(&line).map(|log| log.len() as u64).and_then(|size| {
                let last = node.store.checkpoints(&line, Some(node.member.as_str()))?;
                Ok(last.iter().map(|r| r.checkpoint.checkpoint.size).max().is_none_or(|s| s < size))
            });
            if !matches!(grew, Ok(true)) {
                continue;
            }
            match checkpoint_and_exchange(&node, line).await {
                Ok((cp, exchanges)) => {
                    let countersigned = exchanges.iter().filter(|x| x.countersigned).count();
                    tracing::info!(line = %line, size = cp.checkpoint.size, countersigned, "checkpoint");
                }
                Err(e) => tracing::warn!(line = %line, error = %e, "cannot checkpoint the line"),
            }
        }
    }
}

/// Checks this node's stored log of a line against its own latest checkpoint: the log must still
/// begin with the entries that checkpoint covered. A store changed behind the node's back (an
/// entry altered, removed or reordered) fails, raises a `tamper` alarm, and no checkpoint is
/// signed over it.
async fn check_own_log(node: &NodeState, line: LineId, leaves: &[Hash]) -> Result<(), CheckpointError> {
    let latest = node
        .store
        .checkpoints(&line, Some(node.member.as_str()))
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|r| r.checkpoint)
        .max_by_key(|c| c.checkpoint.size);
    let Some(latest) = latest else { return Ok(()) };
    let size = latest.checkpoint.size as usize;
    let root = (size <= leaves.len()).then(|| merkle::root(&leaves[..size]));
    if root == Some(latest.checkpoint.root) {
        return Ok(());
    }
    let detail = format!(
        "this node's stored log of the line no longer begins with the {size} entries its checkpoint of {} signed",
        latest.checkpoint.time_ms
    );
    let held = latest.to_bytes().unwrap_or_default();
    let current_root = merkle::root(leaves).to_vec();
    let b = tamper(line, &node.member, detail, held, current_root, now_ms());
    let reason = b.reason.clone();
    tracing::error!(line = %line, reason = %reason, "tamper: the stored log changed");
    let batch = WriteBatch { alarms: vec![b.alarm], evidence: vec![b.evidence], ..WriteBatch::default() };
    let _ = commit_findings(node, batch).await;
    Err(CheckpointError::Tamper(reason))
}

/// Commits alarms, evidence and checkpoints found along the way (nothing when the batch is
/// empty); a failed commit puts the node in refuse-writes mode.
async fn commit_findings(node: &NodeState, batch: WriteBatch) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    let result = node.store.commit(batch).wait().await.map(|_| ());
    if let Err(e) = &result {
        node.fail_storage(e);
    }
    node.committed(&[]);
    result
}

/// Signs a checkpoint of this node's log of a line as it stands and keeps it (no exchange).
async fn checkpoint_now(node: &NodeState, line: LineId, leaves: &[Hash]) -> Result<SignedCheckpoint, String> {
    check_own_log(node, line, leaves).await.map_err(|e| e.to_string())?;
    let cp = node
        .core()
        .sign_checkpoint(line, leaves.len() as u64, merkle::root(leaves), now_ms())
        .map_err(|e| e.message)?;
    node.store.commit(WriteBatch { checkpoints: vec![cp.clone()], ..WriteBatch::default() }).wait().await.map_err(
        |e| {
            node.fail_storage(&e);
            e.to_string()
        },
    )?;
    Ok(cp)
}

/// Checks each stored signed content against its envelope (the author's signature and the hash the
/// envelope names): a content moved or altered in the store raises a `tamper` alarm naming this
/// node, with the evidence. The export goes on, and its verification names the item too.
async fn check_stored_contents(node: &NodeState, line: LineId, rows: &[adi_store::EnvelopeRow]) {
    let mut batch = WriteBatch::default();
    for row in rows {
        let Some(content) = &row.signed_content else { continue };
        let Ok(envelope) = Envelope::decode(&row.bytes, usize::MAX, usize::MAX) else { continue };
        let b = envelope.body();
        let key = MemberCode::parse(&b.sender).ok().and_then(|m| node.roster().member(&m).map(|m| m.signing_key));
        let holds = adi_wire::content::SignedContent::decode(content)
            .ok()
            .zip(key)
            .is_some_and(|(sc, key)| sc.verify(&key, &b.line, &b.sender, b.seq, &b.content_hash).is_ok());
        if !holds {
            let detail = format!(
                "the content stored with {}'s #{} ({}) is not the one its envelope names",
                b.sender, b.seq, row.hash
            );
            let t = tamper(line, &node.member, detail, row.bytes.clone(), content.clone(), now_ms());
            tracing::error!(line = %line, reason = %t.reason, "tamper: a stored content changed");
            batch.alarms.push(t.alarm);
            batch.evidence.push(t.evidence);
        }
    }
    let _ = commit_findings(node, batch).await;
}

/// The export bundle of a line (`docs/RECORD.md`, "Bundles"): this node's whole log of the line,
/// the envelopes it accepted between `from_ms` and `to_ms` with their signed content, inclusion
/// proofs against a checkpoint of the whole log (signed now if the log grew), every checkpoint
/// and countersignature held, and the roster keys needed to check them.
pub async fn export(
    node: &NodeState,
    line: LineId,
    from_ms: Option<u64>,
    to_ms: Option<u64>,
) -> Result<adi_record::bundle::Bundle, String> {
    use adi_record::bundle::{Bundle, BundleCheckpoint, BundleConsistency, BundleEnvelope, BundleLine, FORMAT};
    let e = |e: StoreError| e.to_string();
    let info = node.core().line(&line).cloned().ok_or_else(|| format!("no line {line} here"))?;
    let log = node.store.line_log(&line).map_err(e)?;
    let leaves: Vec<Hash> = log.iter().map(|h| merkle::leaf_hash(&h.0)).collect();
    let own_size = node
        .store
        .checkpoints(&line, Some(node.member.as_str()))
        .map_err(e)?
        .iter()
        .map(|r| r.checkpoint.checkpoint.size)
        .max();
    if own_size != Some(leaves.len() as u64) {
        // A log changed behind the node's back is exported as it is, against the checkpoints
        // signed before: the verifier then names what no longer matches.
        if let Err(why) = checkpoint_now(node, line, &leaves).await {
            tracing::warn!(line = %line, reason = %why, "exporting without a new checkpoint");
        }
    }
    let rows = node.store.checkpoints(&line, None).map_err(e)?;
    let mut signers: std::collections::BTreeSet<String> = info.members.iter().map(|m| m.to_string()).collect();
    let mut own: Vec<SignedCheckpoint> = Vec::new();
    let mut checkpoints = Vec::new();
    for r in &rows {
        signers.insert(r.checkpoint.checkpoint.signer.clone());
        signers.extend(r.countersignatures.iter().map(|(m, _)| m.to_string()));
        if r.checkpoint.checkpoint.signer == node.member.as_str() {
            own.push(r.checkpoint.clone());
        }
        checkpoints.push(BundleCheckpoint {
            signed: hex::encode(r.checkpoint.to_bytes().map_err(|e| e.to_string())?),
            countersignatures: r.countersignatures.iter().map(|(m, s)| (m.to_string(), hex::encode(s))).collect(),
        });
    }
    own.sort_by_key(|c| c.checkpoint.size);
    own.dedup_by_key(|c| c.checkpoint.size);
    let consistency = own
        .windows(2)
        .map(|p| {
            let (a, b) = (p[0].checkpoint.size, p[1].checkpoint.size);
            // A log that shrank behind the node's back cannot prove anything: the proof is left
            // empty and the verifier says so.
            let proof = leaves.get(..b as usize).map_or_else(Vec::new, |l| merkle::consistency_proof(l, a as usize));
            BundleConsistency { from_size: a, to_size: b, proof: proof.iter().map(hex::encode).collect() }
        })
        .collect();
    let size = own.last().map_or(0, |c| c.checkpoint.size as usize);
    // An envelope whose sealed bytes no longer open was altered in the store: it is left out of
    // the bundle (the verifier names the gap) and raises a `tamper` alarm here.
    let mut rows = Vec::with_capacity(log.len());
    let mut unreadable = WriteBatch::default();
    for hash in &log {
        match node.store.envelope(hash) {
            Ok(Some(row)) => rows.push(Some(row)),
            Ok(None) => return Err(format!("envelope {hash} is missing")),
            Err(err) => {
                let detail = format!("the stored envelope {hash} no longer opens under the master key: {err}");
                let t = tamper(line, &node.member, detail, hash.0.to_vec(), Vec::new(), now_ms());
                tracing::error!(line = %line, reason = %t.reason, "tamper: a stored envelope changed");
                unreadable.alarms.push(t.alarm);
                unreadable.evidence.push(t.evidence);
                rows.push(None);
            }
        }
    }
    let _ = commit_findings(node, unreadable).await;
    let readable: Vec<adi_store::EnvelopeRow> = rows.iter().flatten().cloned().collect();
    check_stored_contents(node, line, &readable).await;
    // The window is the contiguous stretch of the log from the first entry accepted at or after
    // `from_ms` to the last accepted at or before `to_ms`.
    let inside = |t: u64| from_ms.is_none_or(|f| t >= f) && to_ms.is_none_or(|to| t <= to);
    let inside = |r: &Option<adi_store::EnvelopeRow>| r.as_ref().is_none_or(|r| inside(r.received_ms));
    let from_index = rows.iter().position(inside).unwrap_or(rows.len());
    let to_index = rows.iter().rposition(inside).map_or(from_index, |i| i + 1);
    let mut envelopes = Vec::new();
    for (index, row) in rows.iter().enumerate().take(to_index).skip(from_index) {
        let Some(row) = row else { continue };
        if let Ok(env) = Envelope::decode(&row.bytes, usize::MAX, usize::MAX) {
            signers.insert(env.body().sender.clone());
        }
        let inclusion = match leaves.get(..size) {
            Some(l) if index < size => merkle::inclusion_proof(l, index),
            _ => Vec::new(),
        };
        envelopes.push(BundleEnvelope {
            index: index as u64,
            bytes: hex::encode(&row.bytes),
            content: row.signed_content.as_ref().map(hex::encode),
            form_text: row
                .signed_content
                .as_deref()
                .and_then(|c| adi_wire::content::SignedContent::decode(c).ok())
                .and_then(|c| adi_record::bundle::form_text(&c)),
            inclusion: inclusion.iter().map(hex::encode).collect(),
        });
    }
    let (from_index, to_index) = (from_index as u64, to_index as u64);
    let roster = signers
        .into_iter()
        .filter_map(|code| {
            let m = MemberCode::parse(&code).ok()?;
            let key = node.roster().member(&m)?.signing_key;
            Some((code, hex::encode(key.to_bytes())))
        })
        .collect();
    Ok(Bundle {
        format: FORMAT.to_string(),
        v: 1,
        exported_by: node.member.to_string(),
        exported_ms: now_ms(),
        line: BundleLine {
            id: line.to_hex(),
            scope: info.scope.as_str().to_string(),
            title: info.title.clone(),
            home: info.home.to_string(),
            members: info.members.iter().map(|m| m.to_string()).collect(),
        },
        roster,
        log: log.iter().map(|h| h.to_hex()).collect(),
        from_index,
        to_index,
        envelopes,
        checkpoints,
        consistency,
    })
}
