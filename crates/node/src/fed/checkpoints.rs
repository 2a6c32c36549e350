//! Checkpoints between members: this node's checkpoint of each line's log, offered to the line's
//! other members to countersign (every `checkpoint_interval_s`, or when an operator asks), and
//! its answers to their offers (`docs/RECORD.md`). A checkpoint that contradicts one held here, or
//! a log that does not extend the one a member showed before, raises a `tamper` alarm.

use adi_core::{MemberCode, WriteBatch};
use adi_engine::chain::ChainBreak;
use adi_record::{merkle, Hash, Head, SignedCheckpoint};
use adi_store::{Page, StoreError};
use adi_wire::LineId;
use serde::{Deserialize, Serialize};

use super::links::post_once;
use super::CHECKPOINT_PATH;
use crate::clock::now_ms;
use crate::record::{check_own_log, commit_findings, tamper, CheckpointError};
use crate::state::NodeState;

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

/// The leaf hashes of this node's log of a line, and the head of each sender's chain in it.
pub(crate) fn log_leaves(node: &NodeState, line: &LineId) -> Result<(Vec<Hash>, Vec<Head>), StoreError> {
    let places = node.store.line_places(line)?;
    let leaves = places.iter().map(|(h, _, _)| merkle::leaf_hash(&h.0)).collect();
    let heads = adi_record::checkpoint::heads(places.iter().map(|(h, s, q)| (&h.0, s.as_str(), *q)));
    Ok((leaves, heads))
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
    for held in node.store.checkpoints(line, Some(signer.as_str()), Page::all())? {
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
    for row in node.store.checkpoints(line, None, Page::all())? {
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
                .checkpoints(&line, Some(peer.as_str()), Page::all())
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
            let limits = &node.runtime_limits;
            let (skew, skew_max) = (cp.checkpoint.time_ms.abs_diff(now), limits.checkpoint_skew_ms);
            let timely = cp.checkpoint.heads.is_none() || skew <= skew_max;
            let omitted = match (&cp.checkpoint.heads, consistent && timely) {
                (Some(heads), true) => {
                    let by = cp.checkpoint.time_ms.saturating_sub(limits.checkpoint_heads_slack_ms);
                    omission(node, &line, peer, heads, by).map_err(e)?
                }
                _ => None,
            };
            if !timely {
                // Its heads are judged by its time: one far from this member's clock cannot be.
                Some(format!(
                    "the checkpoint's time is {skew} ms from this member's clock (at most checkpoint_skew_ms = {skew_max})"
                ))
            } else if let Some((detail, proof)) = omitted {
                let b = tamper(line, peer, detail, proof, bytes.clone(), now);
                let reason = b.reason.clone();
                batch.alarms.push(b.alarm);
                batch.evidence.push(b.evidence);
                Some(reason)
            } else if consistent {
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

/// Checks the chain heads a peer's checkpoint names against this member's own copy of the line:
/// at a head's place this member holds the same envelope, and no head is behind what this member
/// knows the peer held when it signed (`signed_ms`, by its clock): its own envelopes signed by
/// then, and the envelopes the peer answered with a receipt signed by then that this node holds
/// (only envelopes beyond the heads named are looked at, `checkpoint_heads_scan_max` of them in
/// all).
/// Returns the contradiction and the stored envelope that proves it.
fn omission(
    node: &NodeState,
    line: &LineId,
    peer: &MemberCode,
    heads: &[Head],
    signed_ms: u64,
) -> Result<Option<(String, Vec<u8>)>, StoreError> {
    let mut chains: std::collections::BTreeMap<String, Vec<(u64, adi_wire::EnvelopeHash)>> =
        std::collections::BTreeMap::new();
    for (hash, sender, seq) in node.store.line_places(line)? {
        chains.entry(sender).or_default().push((seq, hash));
    }
    let bytes_of = |h: &adi_wire::EnvelopeHash| -> Result<Vec<u8>, StoreError> {
        Ok(node.store.envelope(h)?.map(|r| r.bytes).unwrap_or_default())
    };
    // Store reads this offer may cost, in all: a peer cannot make one offer expensive.
    let mut budget = node.runtime_limits.checkpoint_heads_scan_max;
    for (sender, chain) in &mut chains {
        chain.sort_unstable_by_key(|(q, _)| std::cmp::Reverse(*q));
        let head = heads.iter().find(|h| h.sender == *sender);
        if let Some(h) = head {
            if let Some((_, mine)) = chain.iter().find(|(q, _)| *q == h.seq).filter(|(_, m)| m.0 != h.hash) {
                let detail = format!(
                    "{peer}'s checkpoint names {} as {sender}'s #{}, but this member holds {mine} there",
                    adi_wire::EnvelopeHash(h.hash),
                    h.seq
                );
                return Ok(Some((detail, bytes_of(mine)?)));
            }
        }
        // Only an envelope beyond the head the checkpoint names can show an omission.
        let beyond = chain.iter().take_while(|(q, _)| head.is_none_or(|h| *q > h.seq));
        let mut known = None;
        for (seq, hash) in beyond {
            if budget == 0 {
                break;
            }
            budget -= 1;
            // Only what the peer signed no later than its checkpoint, by its own clock: an
            // envelope it received after signing is not owed to that checkpoint.
            let held = if sender == peer.as_str() {
                let row = node.store.envelope(hash)?;
                let created = row.and_then(|r| adi_wire::Envelope::decode(&r.bytes, usize::MAX, usize::MAX).ok());
                created.is_some_and(|e| e.body().created_ms <= signed_ms)
            } else {
                node.store.receipts(hash)?.iter().any(|r| r.member == *peer && r.signed_ms <= signed_ms)
            };
            if held {
                known = Some((*seq, *hash));
                break;
            }
        }
        let Some((seq, hash)) = known else { continue };
        if head.is_none_or(|h| h.seq < seq) {
            let named = head.map_or("no envelope".to_string(), |h| format!("#{}", h.seq));
            let detail = format!(
                "{peer}'s checkpoint leaves {sender}'s #{seq} ({hash}) out of its log, which it is known to hold: \
                 it names {named} as the head of {sender}'s chain"
            );
            return Ok(Some((detail, bytes_of(&hash)?)));
        }
    }
    Ok(None)
}

/// Before an export: unless this node holds a checkpoint of its own over its whole log of the
/// line that another member countersigned, signs one and offers it to the line's other members
/// (each answer awaited within the request timeout). A log changed behind the node's back gets
/// none: it is exported as it is against the checkpoints signed before, and the verifier names
/// what no longer matches.
pub async fn cover(node: &NodeState, line: LineId) -> Result<(), StoreError> {
    let len = node.store.line_places(&line)?.len() as u64;
    let covered = node
        .store
        .checkpoints(&line, Some(node.member.as_str()), Page::all())?
        .iter()
        .any(|r| r.checkpoint.checkpoint.size == len && r.countersignatures.iter().any(|(m, _)| *m != node.member));
    if !covered {
        if let Err(why) = checkpoint_and_exchange(node, line).await {
            tracing::warn!(line = %line, reason = %why, "exporting without a new checkpoint");
        }
    }
    Ok(())
}

/// Signs a checkpoint of this node's log of a line, keeps it, and offers it to every other member
/// of the line for countersigning; returns it and what each member answered.
pub async fn checkpoint_and_exchange(
    node: &NodeState,
    line: LineId,
) -> Result<(SignedCheckpoint, Vec<Exchange>), CheckpointError> {
    let now = now_ms();
    let e = |e: StoreError| e.to_string();
    let (leaves, heads) = log_leaves(node, &line).map_err(e)?;
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
        let cp = core
            .sign_checkpoint(line, leaves.len() as u64, merkle::root(&leaves), heads, now)
            .map_err(|e| e.message)?;
        (cp, members)
    };
    node.store.commit(WriteBatch { checkpoints: vec![cp.clone()], ..WriteBatch::default() }).wait().await.map_err(
        |e| {
            node.fail_storage(&e);
            e.to_string()
        },
    )?;
    let mine = node.store.checkpoints(&line, Some(node.member.as_str()), Page::all()).map_err(e)?;
    let others = latest_of_others(node, &line, &node.member).map_err(e)?;
    let signed = hex::encode(cp.to_bytes().map_err(|e| e.to_string())?);
    // Offered to every member at once, so that a silent member costs one request timeout, not
    // one per member; the answers are settled in the members' order.
    let offers = members.into_iter().map(|member| {
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
        async move {
            let outcome = offer_to(node, &member, &offer).await;
            (member, outcome)
        }
    });
    let outcomes = futures_util::future::join_all(offers).await;
    let mut exchanges = Vec::with_capacity(outcomes.len());
    for (member, outcome) in outcomes {
        exchanges.push(match outcome {
            Ok(answer) => settle_answer(node, &line, &member, &cp, answer, now).await,
            Err(why) => Exchange { member: member.to_string(), countersigned: false, detail: Some(why) },
        });
    }
    Ok((cp, exchanges))
}

async fn offer_to(node: &NodeState, member: &MemberCode, offer: &CheckpointOffer) -> Result<CheckpointAnswer, String> {
    let peer = node.roster_member(member).ok_or_else(|| format!("{member} is not in the roster"))?;
    let tls = std::sync::Arc::new(node.client_config(&peer).map_err(|e| e.to_string())?);
    let body = serde_json::to_vec(offer).map_err(|e| e.to_string())?;
    let mut errors = Vec::new();
    for endpoint in &peer.endpoints {
        let timeout = node.runtime_limits.request_timeout_ms;
        match post_once(endpoint, tls.clone(), member, CHECKPOINT_PATH, body.clone(), timeout).await {
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
                let last = node.store.checkpoints(&line, Some(node.member.as_str()), Page::all())?;
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
