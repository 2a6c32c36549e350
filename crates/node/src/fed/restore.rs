//! A store restored from a backup (`adi restore`) catches up from the peers before the node signs
//! anything. A backup taken while the node ran is behind what its peers hold: envelopes this node
//! signed after the backup (its own chain beyond the store's head) and envelopes peers sent it
//! after the backup (which they count as delivered). Signing on from the store's heads would give
//! a second envelope for places of its chain that peers hold already, which they must take as this
//! member forging its record; and the messages it was sent would be missing here.
//!
//! So at its first start on a restored store, the node asks every active peer of the roster what
//! it holds of each chain of the lines they share (`POST /fed/v1/heads`), and then fetches, page by
//! page (`POST /fed/v1/chain`, `restore_page_len` envelopes or `restore_page_bytes_max` bytes a
//! page), what the store lacks:
//!
//! 1. Its own envelopes after the store's head, from every peer that holds them, with their signed
//!    contents as the peer decrypted them. Each is taken back by the core
//!    ([`adi_core::Hotline::adopt_own`]) only if this member signed it and its content, and it
//!    follows the chain: a peer can withhold, never forge. Each is settled as delivered to the
//!    peers that sent it back and stays queued for any other member of the line. The MLS keys they
//!    used are spent again, sending nothing, so that none encrypts twice.
//! 2. Each peer's envelopes after the store's head of its chain, taken as if the peer had just
//!    sent them (the same path as a batch: `driver::take`); a message this member had
//!    answered already gets no second answer.
//!
//! The node starts once the store holds everything every peer said it holds. It refuses to start,
//! saying why, when a peer holds something it does not hand over, when one of its own envelopes
//! after the backup is a commit or proposal (its author cannot read it back: the line's home
//! member must take it off the line and add it again), and while any peer has not answered within
//! `restore_check_ms`. The store stays marked restored until the catch-up is complete, so a node
//! stopped during it catches up again at its next start.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use adi_core::{MemberCode, WriteBatch};
use adi_store::{Outcome, Settlement};
use adi_wire::batch::Verdict;
use adi_wire::{Envelope, EnvelopeHash, LineId};
use axum::http::StatusCode;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::links::post_once;
use super::{CHAIN_PATH, HEADS_PATH};
use crate::clock::now_ms;
use crate::error::ApiError;
use crate::state::NodeState;

/// What a node holds of the chains of the lines it shares with the asker.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heads {
    pub lines: Vec<LineHeads>,
}

/// One line: the asker's chain and the answering member's own, as the answering node holds them.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineHeads {
    /// The line id in hex.
    pub line: String,
    /// The asker's chain.
    pub yours: Option<Head>,
    /// The answering member's chain.
    pub mine: Option<Head>,
}

/// The last envelope of a chain: its sequence number and hash (hex).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

impl Head {
    fn of(head: Option<(u64, EnvelopeHash)>) -> Option<Head> {
        head.map(|(seq, hash)| Head { seq, hash: hex::encode(hash.0) })
    }
}

/// Answers a peer: every line it is on here, with its chain and this member's.
pub fn answer(node: &NodeState, peer: &MemberCode) -> Heads {
    let core = node.core();
    let lines = core
        .lines()
        .filter(|l| l.has_member(peer))
        .map(|l| LineHeads {
            line: hex::encode(l.id.0),
            yours: Head::of(core.head(&l.id, peer)),
            mine: Head::of(core.head(&l.id, &node.member)),
        })
        .collect();
    Heads { lines }
}

/// What this node's store lacks of what `peer`'s node holds, in words.
fn lacks(node: &NodeState, peer: &MemberCode, heads: &Heads) -> Vec<String> {
    let core = node.core();
    let me = &node.member;
    let mut out = Vec::new();
    for l in &heads.lines {
        let mut id = [0u8; 16];
        if hex::decode_to_slice(&l.line, &mut id).is_err() {
            out.push(format!("{peer} named a line that is no line id: {}", l.line));
            continue;
        }
        let line = LineId(id);
        if core.line(&line).is_none() {
            out.push(format!("line {line}, which {peer} holds, was set up after the backup"));
            continue;
        }
        let held = |sender: &MemberCode| Head::of(core.head(&line, sender));
        for (whose, theirs, ours) in [(me, &l.yours, held(me)), (peer, &l.mine, held(peer))] {
            let Some(theirs) = theirs else { continue };
            let ours_seq = ours.as_ref().map_or(0, |h| h.seq);
            if theirs.seq > ours_seq {
                out.push(format!(
                    "{peer} holds {whose}'s envelope #{} on line {line}; the store ends at #{ours_seq}",
                    theirs.seq
                ));
            } else if theirs.seq == ours_seq && ours.as_ref().is_some_and(|h| h.hash != theirs.hash) {
                out.push(format!("{peer} holds another envelope #{} of {whose} on line {line}", theirs.seq));
            }
        }
    }
    out
}

/// A page of one chain that a restored node asks a peer for: `sender`'s envelopes on `line`
/// after sequence number `after`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainAsk {
    /// The line id in hex.
    pub line: String,
    /// The asker, or the answering member.
    pub sender: String,
    pub after: u64,
}

/// The envelopes that follow, in order of sequence number, as many as the answering node's
/// `restore_page_len` and `restore_page_bytes_max` allow; empty when it holds none.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainPage {
    pub envelopes: Vec<ChainEnvelope>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainEnvelope {
    /// The envelope's exact signed bytes, in base64.
    pub bytes: String,
    /// For the asker's own application envelopes: the signed content the answering node decrypted,
    /// in base64; never for the answering member's, which the asker decrypts itself.
    pub content: Option<String>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD.decode(text).map_err(|e| format!("not base64: {e}"))
}

/// Answers a peer's [`ChainAsk`]: only for its own chain or this member's, on a line it is on.
pub fn answer_chain(node: &NodeState, peer: &MemberCode, body: &[u8]) -> Result<ChainPage, ApiError> {
    let ask: ChainAsk = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_ask", e.to_string()))?;
    let line = LineId::from_hex(&ask.line)
        .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "malformed_ask", "`line` is not a line id"))?;
    let own = ask.sender == peer.as_str();
    if !own && ask.sender != node.member.as_str() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_your_chain",
            format!(
                "{peer} asked for {}'s chain on line {line}: a node hands a peer only the peer's own chain and its own",
                ask.sender.chars().take(16).collect::<String>()
            ),
        ));
    }
    if !node.core().line(&line).is_some_and(|l| l.has_member(peer)) {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no_such_line", format!("{peer} is on no line {line} here")));
    }
    let limits = &node.runtime_limits;
    let read = |e: adi_store::StoreError| {
        tracing::error!(error = %e, "cannot read the store");
        ApiError::unavailable()
    };
    let mut page = ChainPage::default();
    let mut bytes = 0usize;
    let mut seq = ask.after;
    while (page.envelopes.len() as u64) < limits.restore_page_len && bytes <= limits.restore_page_bytes_max {
        seq = match seq.checked_add(1) {
            Some(s) => s,
            None => break,
        };
        let Some(hash) = node.store.envelope_at(&line, &ask.sender, seq).map_err(read)? else { break };
        let Some(row) = node.store.envelope(&hash).map_err(read)? else { break };
        let content = if own { row.signed_content } else { None };
        bytes += row.bytes.len() + content.as_ref().map_or(0, Vec::len);
        page.envelopes.push(ChainEnvelope { bytes: b64(&row.bytes), content: content.as_deref().map(b64) });
    }
    Ok(page)
}

/// A peer that answered, with where and how it was reached.
struct Answered {
    heads: Heads,
    endpoint: String,
    tls: Arc<rustls::ClientConfig>,
}

/// Asks every active peer what it holds; refuses once `within` passed with a peer unanswered.
async fn ask_heads(node: &Arc<NodeState>, within: Duration) -> anyhow::Result<BTreeMap<MemberCode, Answered>> {
    let roster = node.roster();
    let mut waiting: BTreeMap<MemberCode, String> = roster
        .members()
        .filter(|m| m.code != node.member && !roster.is_suspended(&m.code))
        .map(|m| (m.code.clone(), "not asked yet".to_string()))
        .collect();
    let mut answered = BTreeMap::new();
    let started = Instant::now();
    let timeout_ms = node.runtime_limits.connect_timeout_ms;
    while !waiting.is_empty() {
        for (peer, why) in waiting.iter_mut() {
            let Some(member) = node.roster_member(peer) else { continue };
            let tls = match node.client_config(&member) {
                Ok(c) => Arc::new(c),
                Err(e) => {
                    *why = e.to_string();
                    continue;
                }
            };
            for endpoint in &member.endpoints {
                match post_once(endpoint, tls.clone(), peer, HEADS_PATH, Vec::new(), timeout_ms).await {
                    Ok(bytes) => match serde_json::from_slice::<Heads>(&bytes) {
                        Ok(heads) => {
                            let tls = tls.clone();
                            answered.insert(peer.clone(), Answered { heads, endpoint: endpoint.clone(), tls });
                            *why = String::new();
                            break;
                        }
                        Err(e) => *why = format!("{endpoint}: an answer that is not heads: {e}"),
                    },
                    Err(e) => *why = format!("{endpoint}: {e}"),
                }
            }
        }
        waiting.retain(|_, why| !why.is_empty());
        if waiting.is_empty() || started.elapsed() >= within {
            break;
        }
        // Asked again as often as the roster is exchanged.
        tokio::time::sleep(Duration::from_millis(node.runtime_limits.roster_sync_ms)).await;
    }
    if !waiting.is_empty() {
        let unanswered: Vec<String> = waiting.iter().map(|(p, why)| format!("{p} ({why})")).collect();
        anyhow::bail!(
            "this store was restored from a backup, and it could not be checked against every peer within {} ms: \
             {}; the node does not start until each answers",
            within.as_millis(),
            unanswered.join(", ")
        );
    }
    Ok(answered)
}

/// One page of `sender`'s chain on `line` after `after`, from `peer`: each envelope's bytes and
/// content.
async fn fetch_page(
    node: &NodeState,
    peer: &MemberCode,
    at: &Answered,
    line: &LineId,
    sender: &MemberCode,
    after: u64,
) -> anyhow::Result<Vec<(Vec<u8>, Option<Vec<u8>>)>> {
    let ask = ChainAsk { line: line.to_hex(), sender: sender.to_string(), after };
    let timeout_ms = node.runtime_limits.connect_timeout_ms;
    let body = serde_json::to_vec(&ask)?;
    let bytes = post_once(&at.endpoint, at.tls.clone(), peer, CHAIN_PATH, body, timeout_ms)
        .await
        .map_err(|e| anyhow::anyhow!("{peer} did not hand over {sender}'s chain on line {line}: {e}"))?;
    let page: ChainPage = serde_json::from_slice(&bytes)
        .map_err(|e| anyhow::anyhow!("{peer} answered with something that is not a chain page: {e}"))?;
    page.envelopes
        .into_iter()
        .map(|e| {
            let content = e.content.as_deref().map(unb64).transpose();
            unb64(&e.bytes).and_then(|b| content.map(|c| (b, c)))
        })
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("{peer} sent an envelope of {sender}'s that cannot be read: {e}"))
}

/// The sequence number an envelope names, within the core's limits.
fn seq_of(node: &NodeState, bytes: &[u8]) -> anyhow::Result<u64> {
    let limits = &node.limits;
    let e = Envelope::decode(bytes, limits.envelope_bytes_max, limits.payload_bytes_max)
        .map_err(|e| anyhow::anyhow!("a malformed envelope: {e}"))?;
    Ok(e.body().seq)
}

/// Takes back this member's own envelopes after the store's head of each line from `peer`, up to
/// `until`, and settles as delivered to `peer` every one of them it holds.
async fn adopt_from(
    node: &Arc<NodeState>,
    peer: &MemberCode,
    at: &Answered,
    line: LineId,
    after: u64,
    until: u64,
) -> anyhow::Result<()> {
    let me = node.member.clone();
    let mut after = after;
    while after < until {
        let page = fetch_page(node, peer, at, &line, &me, after).await?;
        if page.is_empty() {
            break;
        }
        let mut delivered = Vec::new();
        let mut batch = WriteBatch::default();
        let batch_len;
        let pending = {
            let mut engine = node.engine();
            let head = engine.core().head(&line, &me).map_or(0, |h| h.0);
            for (bytes, content) in &page {
                let seq = seq_of(node, bytes).map_err(|e| anyhow::anyhow!("{peer} sent {e}"))?;
                if seq != after + 1 {
                    anyhow::bail!("{peer} sent {me}'s envelope #{seq} on line {line} where #{} was asked", after + 1);
                }
                after = seq;
                let hash = EnvelopeHash::of(bytes);
                if seq <= head {
                    // Taken back from another peer already: the same envelope, or this member's
                    // record was forked before.
                    let held = node.store.envelope_at(&line, me.as_str(), seq)?;
                    if held != Some(hash) {
                        anyhow::bail!(
                            "{peer} holds another envelope #{seq} of {me}'s on line {line} than the store or another \
                             peer: the chain was signed twice from one place before"
                        );
                    }
                    delivered.push((hash, Settlement::Delivered));
                    continue;
                }
                let content = content.as_deref().ok_or_else(|| {
                    anyhow::anyhow!("{peer} sent {me}'s envelope #{seq} on line {line} without its content")
                })?;
                let record = engine.core_mut().adopt_own(bytes, content).map_err(|e| {
                    anyhow::anyhow!(
                        "{me}'s envelope #{seq} on line {line}, from {peer}, is not taken back: {}",
                        e.message
                    )
                })?;
                delivered.push((hash, Settlement::Delivered));
                batch.records.push(record);
            }
            let batch = engine.seal(std::mem::take(&mut batch))?;
            batch_len = batch.records.len();
            (!batch.records.is_empty()).then(|| node.store.commit(batch))
        };
        if let Some(pending) = pending {
            let outcomes = pending.wait().await?;
            if let Some(o) = outcomes.iter().find(|o| !matches!(o, Outcome::Inserted)) {
                anyhow::bail!("an envelope of {me}'s taken back from {peer} was not stored: {o:?}");
            }
            node.committed(&[]);
        }
        tracing::info!(peer = %peer, line = %line, through = after, taken_back = batch_len, held_by_peer = delivered.len(),
            "own envelopes signed after the backup taken back");
        node.store.settle(peer, delivered, now_ms()).wait().await?;
    }
    Ok(())
}

/// Takes `peer`'s envelopes on `line` after the store's head of its chain, up to `until`, as if
/// it had just sent them.
async fn take_from(
    node: &Arc<NodeState>,
    peer: &MemberCode,
    at: &Answered,
    line: LineId,
    after: u64,
    until: u64,
) -> anyhow::Result<()> {
    let mut after = after;
    while after < until {
        let page = fetch_page(node, peer, at, &line, peer, after).await?;
        let Some((last, _)) = page.last() else { break };
        let last = seq_of(node, last).map_err(|e| anyhow::anyhow!("{peer} sent {e}"))?;
        if last <= after {
            anyhow::bail!("{peer} answered with envelopes of its chain on line {line} before #{after}");
        }
        after = last;
        tracing::info!(peer = %peer, line = %line, through = after, envelopes = page.len(),
            "envelopes the peer sent after the backup taken");
        for chunk in page.chunks(node.limits.batch_len_max.max(1)) {
            let envelopes: Vec<&[u8]> = chunk.iter().map(|(b, _)| b.as_slice()).collect();
            let (_, finish) = crate::driver::take(node, peer, &envelopes)
                .map_err(|e| anyhow::anyhow!("cannot take {peer}'s envelopes: {}", e.message))?;
            let verdicts =
                finish.await.map_err(|e| anyhow::anyhow!("cannot take {peer}'s envelopes: {}", e.message))?;
            for v in verdicts {
                match v {
                    Verdict::Accepted | Verdict::Duplicate => {}
                    other => {
                        tracing::warn!(peer = %peer, line = %line, verdict = ?other, "an envelope fetched to catch up was not taken")
                    }
                }
            }
        }
    }
    Ok(())
}

/// Checks a restored store against every active peer and catches it up, as the module says; `Ok`
/// once every peer answered and the store holds all that each holds.
pub async fn check(node: &Arc<NodeState>, within: Duration) -> anyhow::Result<()> {
    // Keys of own envelopes taken back at an epoch not reached yet, by a catch-up that stopped.
    let me = node.member.clone();
    node.engine().core_mut().begin_catch_up();
    for (line, epoch, n) in node.store.application_epochs(me.as_str())? {
        node.engine().core_mut().plan_skip(line, epoch, n);
    }
    let answered = ask_heads(node, within).await?;
    let held = |line: &LineId, who: &MemberCode| node.core().head(line, who).map_or(0, |h| h.0);
    // Where the store's own chains end, as restored.
    let restored: BTreeMap<LineId, u64> = {
        let core = node.core();
        core.lines().map(|l| (l.id, core.head(&l.id, &me).map_or(0, |h| h.0))).collect()
    };
    // This member's own envelopes first: the peers' receipts of them then settle what they wait for.
    for (peer, at) in &answered {
        for l in &at.heads.lines {
            let Some(line) = LineId::from_hex(&l.line) else { continue };
            let Some(&from) = restored.get(&line) else { continue };
            if let Some(yours) = l.yours.as_ref().filter(|y| y.seq > from) {
                // From where the store ended: what another peer handed over already is settled as
                // delivered to this one too.
                adopt_from(node, peer, at, line, from, yours.seq).await?;
            }
        }
    }
    for (peer, at) in &answered {
        for l in &at.heads.lines {
            let Some(line) = LineId::from_hex(&l.line) else { continue };
            if node.core().line(&line).is_none() {
                continue;
            }
            if let Some(theirs) = &l.mine {
                let ours = held(&line, peer);
                if theirs.seq > ours {
                    take_from(node, peer, at, line, ours, theirs.seq).await?;
                }
            }
        }
    }
    let lacking: Vec<String> = answered.iter().flat_map(|(peer, at)| lacks(node, peer, &at.heads)).collect();
    if !lacking.is_empty() {
        anyhow::bail!(
            "this store was restored from a backup that is behind the peers, and it could not be caught up: the node \
             would sign over places of its chain they hold; it does not start. {}",
            lacking.join("; ")
        );
    }
    let left = node.engine().core_mut().end_catch_up();
    if !left.is_empty() {
        let left: Vec<String> =
            left.iter().map(|(line, epoch, n)| format!("{n} at epoch {epoch} of line {line}")).collect();
        anyhow::bail!(
            "this member's envelopes taken back include some of epochs no commit held here reaches ({}): the node \
             does not start until a peer hands over the commit",
            left.join(", ")
        );
    }
    tracing::info!("the restored store holds everything its peers hold of its lines: the node starts");
    Ok(())
}
