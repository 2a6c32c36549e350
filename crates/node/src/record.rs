//! The record at the node: its own log of each line, checked against its own checkpoints and
//! its stored contents against their envelopes (a change behind the node's back raises a `tamper`
//! alarm with the evidence), and the export bundle of a line. The checkpoints' exchange with the
//! line's other members is the federation's (`fed::checkpoints`); an envelope's check against its
//! sender's chain is the engine's, `adi_engine::chain`.

use adi_core::{AlarmChange, AlarmKind, AlarmOp, Evidence, MemberCode, WriteBatch};
use adi_engine::chain::ChainBreak;
use adi_record::{merkle, Hash, SignedCheckpoint};
use adi_store::{Page, StoreError};
use adi_wire::{Envelope, LineId};

use crate::clock::now_ms;
use crate::state::NodeState;

/// A `tamper` finding against `member` on `line`: the alarm, and the evidence of the two items
/// that contradict each other.
pub(crate) fn tamper(
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

/// Checks this node's stored log of a line against its own latest checkpoint: the log must still
/// begin with the entries that checkpoint covered. A store changed behind the node's back (an
/// entry altered, removed or reordered) fails, raises a `tamper` alarm, and no checkpoint is
/// signed over it.
pub(crate) async fn check_own_log(node: &NodeState, line: LineId, leaves: &[Hash]) -> Result<(), CheckpointError> {
    let latest = node
        .store
        .checkpoints(&line, Some(node.member.as_str()), Page::all())
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
pub(crate) async fn commit_findings(node: &NodeState, batch: WriteBatch) -> Result<(), StoreError> {
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
/// proofs against its latest checkpoint (`fed::checkpoints::cover` signs one over the whole log
/// and has it countersigned first), the log ending where that checkpoint ends, every checkpoint
/// and countersignature held, the roster keys needed to check them, and the roster they come
/// from with its SHA-256, for a verifier to match against the anchor it holds. An envelope whose
/// content retention pruned is marked so, without it; `without_files` leaves out the contents of
/// the chunks of attached files.
///
/// With it, the first and last envelope it holds by this node's arrival, if it holds any.
pub async fn export(
    node: &NodeState,
    line: LineId,
    from_ms: Option<u64>,
    to_ms: Option<u64>,
    without_files: bool,
) -> Result<(adi_record::bundle::Bundle, Option<(u64, u64)>), String> {
    use adi_record::bundle::{Bundle, BundleCheckpoint, BundleConsistency, BundleEnvelope, BundleLine, FORMAT};
    let e = |e: StoreError| e.to_string();
    let info = node.core().line(&line).cloned().ok_or_else(|| format!("no line {line} here"))?;
    // The log as far as the latest checkpoint covers it: what arrived since is after the record's
    // latest statement, and is left for the next export.
    let covers = node
        .store
        .checkpoints(&line, Some(node.member.as_str()), Page::all())
        .map_err(e)?
        .iter()
        .map(|r| r.checkpoint.checkpoint.size)
        .max();
    let mut places = node.store.line_places(&line).map_err(e)?;
    if let Some(size) = covers.filter(|s| *s <= places.len() as u64) {
        places.truncate(size as usize);
    }
    let log: Vec<adi_wire::EnvelopeHash> = places.iter().map(|(h, _, _)| *h).collect();
    let leaves: Vec<Hash> = log.iter().map(|h| merkle::leaf_hash(&h.0)).collect();
    let rows = node.store.checkpoints(&line, None, Page::all()).map_err(e)?;
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
    let mut arrivals: Option<(u64, u64)> = None;
    for (index, row) in rows.iter().enumerate().take(to_index).skip(from_index) {
        let Some(row) = row else { continue };
        arrivals = Some(arrivals.map_or((row.arrival, row.arrival), |(a, b)| (a.min(row.arrival), b.max(row.arrival))));
        if let Ok(env) = Envelope::decode(&row.bytes, usize::MAX, usize::MAX) {
            signers.insert(env.body().sender.clone());
        }
        let inclusion = match leaves.get(..size) {
            Some(l) if index < size => merkle::inclusion_proof(l, index),
            _ => Vec::new(),
        };
        // Without files, a chunk's signed content (its bytes) is left out; its envelope, which
        // names the content's hash, stays.
        let content = row.signed_content.as_ref().filter(|_| !(without_files && row.kind == "chunk"));
        envelopes.push(BundleEnvelope {
            index: index as u64,
            bytes: hex::encode(&row.bytes),
            content: content.map(hex::encode),
            form_text: row
                .signed_content
                .as_deref()
                .and_then(|c| adi_wire::content::SignedContent::decode(c).ok())
                .and_then(|c| adi_record::bundle::form_text(&c)),
            inclusion: inclusion.iter().map(hex::encode).collect(),
            pruned: row.pruned_ms.is_some(),
        });
    }
    let (from_index, to_index) = (from_index as u64, to_index as u64);
    // Each signer's key: the roster in force's, or for a member it no longer lists, the key the
    // last version listing it gave it.
    let book = node.roster_book();
    let first = node.first_roster();
    let key_of = |m: &MemberCode| {
        node.roster().member(m).map(|m| m.signing_key).or_else(|| {
            book.versions
                .iter()
                .rev()
                .filter_map(|v| adi_core::Roster::from_file(&v.roster).ok())
                .chain(std::iter::once(first.clone()))
                .find_map(|r| r.member(m).map(|m| m.signing_key))
        })
    };
    let roster = signers
        .into_iter()
        .filter_map(|code| {
            let m = MemberCode::parse(&code).ok()?;
            Some((code, hex::encode(key_of(&m)?.to_bytes())))
        })
        .collect();
    let roster_file = String::from_utf8(node.roster().canonical_bytes()).map_err(|e| e.to_string())?;
    let bundle = Bundle {
        format: FORMAT.to_string(),
        v: adi_record::bundle::VERSION,
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
        roster_sha256: Some(hex::encode(node.roster().sha256())),
        roster_file: Some(roster_file),
        roster_chain: Some(adi_record::bundle::RosterChain { first: first.to_file(), versions: book.versions.clone() }),
        log: log.iter().map(|h| h.to_hex()).collect(),
        from_index,
        to_index,
        envelopes,
        checkpoints,
        consistency,
        without_files,
    };
    Ok((bundle, arrivals))
}
