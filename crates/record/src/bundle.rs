//! The export bundle of a line and its offline verification.
//!
//! A bundle is JSON (`docs/RECORD.md`, "Bundles"): the line, the roster keys needed, the
//! exporting member's whole log of the line (entry hashes, in order), the envelopes of the
//! exported window with their signed content where the exporter could read it, inclusion proofs
//! of those envelopes against the exporter's latest checkpoint, the checkpoints with their
//! countersignatures, and consistency proofs between the exporter's successive checkpoints.
//! [`verify`] needs nothing else.

use std::collections::{BTreeMap, HashMap};

use adi_wire::commit::{mls_framing, Membership, MLS_COMMIT};
use adi_wire::content::SignedContent;
use adi_wire::envelope::{CONTENT_MLS, CONTENT_MLS_SETUP};
use adi_wire::payload::PayloadV1;
use adi_wire::{Envelope, EnvelopeHash, LineId};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::checkpoint::SignedCheckpoint;
use crate::decision::{Answer, Proposal, State};
use crate::merkle::{self, Hash};

/// The format name a bundle carries.
pub const FORMAT: &str = "adi-bundle";
/// The version this code writes: 2 names the roster its keys come from (`roster_sha256`,
/// `roster_file`), 3 also carries the roster's chain of versions (`roster_chain`), 4 marks the
/// envelopes whose content the exporter's retention pruned (`pruned`) and a bundle whose files
/// were left out (`without_files`); versions 1 to 3 are still read.
pub const VERSION: u8 = 4;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    pub format: String,
    pub v: u8,
    /// The member whose node exported the bundle; its log and checkpoints are the spine.
    pub exported_by: String,
    pub exported_ms: u64,
    pub line: BundleLine,
    /// Roster signing keys (hex) of every member whose signature the bundle holds.
    pub roster: BTreeMap<String, String>,
    /// SHA-256 (hex) of the canonical roster the exporter's node ran with, which `roster` is
    /// drawn from (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roster_sha256: Option<String>,
    /// That roster's canonical bytes (compact JSON, `docs/RECORD.md`, "Anchoring"), as text
    /// (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roster_file: Option<String>,
    /// The roster's chain as the exporter's node holds it (version 3): its first version's
    /// roster, whose version hash is the network's identity, and every version after it, so that
    /// a verifier anchored on that identity finds every member's key, also one the roster has
    /// since suspended or removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roster_chain: Option<RosterChain>,
    /// Every entry of the exporter's log of the line, in order (envelope hashes, hex).
    pub log: Vec<String>,
    /// The exported window of the log: every entry from `from_index` up to (not including)
    /// `to_index` is in `envelopes`.
    pub from_index: u64,
    pub to_index: u64,
    /// The exported envelopes, each with its position in the log.
    pub envelopes: Vec<BundleEnvelope>,
    /// Checkpoints of the line held by the exporter (its own and its peers'), oldest first.
    pub checkpoints: Vec<BundleCheckpoint>,
    /// Consistency proofs between the exporter's successive checkpoints: (from size, to size,
    /// proof hashes, hex).
    pub consistency: Vec<BundleConsistency>,
    /// The exporter left the contents of the chunks of attached files out (version 4): each
    /// file's SHA-256 stays in its signed message.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub without_files: bool,
}

/// The roster's chain a bundle carries: the first version's roster and the versions after it
/// (`docs/WIRE.md`, "Roster versions").
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RosterChain {
    pub first: adi_wire::files::RosterFile,
    pub versions: Vec<adi_wire::files::RosterVersionFile>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BundleLine {
    pub id: String,
    pub scope: String,
    pub title: String,
    pub home: String,
    pub members: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BundleEnvelope {
    /// Position in the exporter's log.
    pub index: u64,
    /// The signed envelope, hex.
    pub bytes: String,
    /// Its signed content, hex, for an application message the exporter could read.
    pub content: Option<String>,
    /// The structured report the content carries, as plain text for people; [`verify`] checks
    /// that it is the rendering of the signed report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form_text: Option<String>,
    /// Inclusion proof of the envelope in the tree of the exporter's latest checkpoint, hex.
    pub inclusion: Vec<String>,
    /// The exporter's retention pruned its content after an earlier export archived it (version
    /// 4): the bundle holds its signed envelope, which names the content's hash, and no content.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pruned: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BundleCheckpoint {
    /// Signed checkpoint bytes, hex.
    pub signed: String,
    /// (member, Ed25519 countersignature hex).
    pub countersignatures: Vec<(String, String)>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BundleConsistency {
    pub from_size: u64,
    pub to_size: u64,
    pub proof: Vec<String>,
}

/// A decision as its signed content in the bundle gives it.
struct Proposed {
    proposer: String,
    seq: u64,
    text_sha256: Hash,
    parties: Vec<String>,
    supersedes: Option<String>,
    created_ms: u64,
}

/// An answer to a decision as its signed content in the bundle gives it.
struct Answered {
    decision: String,
    member: String,
    seq: u64,
    text_sha256: Hash,
    concur: bool,
}

/// One check `verify` made, for the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// What was checked, naming the item.
    pub item: String,
    /// `None` when it holds; otherwise why not.
    pub failure: Option<String>,
}

/// Everything `verify` checked, in order.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub checks: Vec<Check>,
    /// Each decision in the bundle and what its answers come to ([`crate::decision`]).
    pub decisions: Vec<DecisionVerdict>,
    /// Whether the keys were checked against a roster taken from outside the bundle
    /// ([`verify_anchored`]); without, the bundle is only shown consistent with itself.
    pub anchored: bool,
    /// The exported envelopes as an auditor reads them, in the order of the exporter's log.
    pub record: Vec<RecordEntry>,
    /// Every run of a sender's chain the exporter does not hold, with the signed reason for it.
    pub holes: Vec<Hole>,
}

/// A run of a sender's chain, from `from` to `to` (sequence numbers), that the bundle does not
/// hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hole {
    pub sender: String,
    pub from: u64,
    pub to: u64,
    /// Why the exporter cannot hold it, from signed data in the bundle; `None` when nothing signed
    /// explains it, which fails the bundle.
    pub reason: Option<String>,
}

/// One envelope of the record, as an auditor reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordEntry {
    /// Its place in the exporter's log.
    pub index: u64,
    /// Its envelope hash, hex.
    pub hash: String,
    pub sender: String,
    pub seq: u64,
    /// When its sender signed it, by the sender's clock (ms since 1970, UTC).
    pub created_ms: u64,
    /// `line_setup`, `message`, `receipt`, `link_test`, `decision`, `concurrence`,
    /// `translation`, `chunk` (a piece of a file attached to a message); `no_content` for an MLS message whose content the bundle does not hold (a
    /// key change, which carries none, or a message the exporter could not read); `pruned` for
    /// one whose content the exporter's retention pruned; `unread` for one whose signature or
    /// content did not verify.
    pub kind: &'static str,
    /// What its author signed (the payload's fields, `docs/WIRE.md`), for an entry whose
    /// signature and content verified; a line set-up's Welcome is left out.
    pub content: Option<serde_json::Value>,
}

/// The kind of a payload, as [`RecordEntry::kind`] names it.
fn kind_of(p: &PayloadV1) -> &'static str {
    match p {
        PayloadV1::LineSetup { .. } => "line_setup",
        PayloadV1::Message { .. } => "message",
        PayloadV1::Receipt { .. } => "receipt",
        PayloadV1::LinkTest { .. } => "link_test",
        PayloadV1::Decision { .. } => "decision",
        PayloadV1::Translation { .. } => "translation",
        PayloadV1::Concurrence { .. } => "concurrence",
        PayloadV1::Chunk { .. } => "chunk",
    }
}

/// Where the roster keys a bundle is checked under come from.
#[derive(Clone, Debug)]
pub enum Anchor {
    /// A roster from outside the bundle: its SHA-256 and its members' signing keys.
    Roster { sha256: Hash, keys: BTreeMap<String, [u8; 32]> },
    /// A roster reached by a chain of versions checked from outside the bundle (from the
    /// network's identity): the SHA-256 of the roster the chain ends at, and each member's
    /// signing keys the chain leaves trusted, oldest first. The last is the key the chain gave
    /// the member last; those before it are keys a version retired by rotation (signed by the
    /// old key and the new), still accepted for what the member signed before it moved on.
    Chain { sha256: Hash, keys: BTreeMap<String, Vec<[u8; 32]>> },
    /// The SHA-256 of the roster, from outside the bundle: the bundle's copy of the roster must
    /// hash to it, and its keys are then used.
    Sha256(Hash),
    /// Nothing from outside: the bundle's own keys, so that it is shown consistent with itself
    /// only (a bundle rewritten end to end under fresh keys passes).
    Unanchored,
}

/// Each member's signing keys (hex) that a bundle is checked under, oldest first: one, the
/// roster's, unless a chain of roster versions left keys retired by rotation trusted too.
type Keyring = BTreeMap<String, Vec<String>>;

/// An anchored roster's SHA-256 and its members' signing keys (hex).
type AnchoredKeys = (Hash, Keyring);

/// The members' signing keys (hex) a canonical roster names, one each.
fn roster_keys(text: &str) -> Result<Keyring, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("the roster is not JSON: {e}"))?;
    let members = v.get("members").and_then(|m| m.as_array()).ok_or("the roster has no members")?;
    members
        .iter()
        .map(|m| {
            let field = |f: &str| m.get(f).and_then(|x| x.as_str()).map(str::to_string);
            match (field("code"), field("signing_key")) {
                (Some(code), Some(key)) => Ok((code, vec![key.to_ascii_lowercase()])),
                _ => Err("a roster member without a code or a signing key".to_string()),
            }
        })
        .collect()
}

/// Checks a bundle as [`verify`] does, under roster keys the `anchor` vouches for from outside
/// the bundle: every key the bundle carries must be one the anchor gives its member, and the
/// roster the bundle names must be the anchored one. Where the anchor gives a member several
/// keys ([`Anchor::Chain`]), each of its signatures may be under any of them, but a member's
/// envelopes, by sequence number, and its checkpoints, by size, never go back to a key older
/// than one it signed an earlier of them under: after a rotation it signs under its new key.
pub fn verify_anchored(bundle: &Bundle, anchor: &Anchor) -> Report {
    let mut r = Report::default();
    let sha_of = |text: &str| -> Hash { sha2::Sha256::digest(text.as_bytes()).into() };
    let anchored: Result<Option<AnchoredKeys>, String> = match anchor {
        Anchor::Unanchored => Ok(None),
        Anchor::Roster { sha256, keys } => {
            Ok(Some((*sha256, keys.iter().map(|(c, k)| (c.clone(), vec![hex::encode(k)])).collect())))
        }
        Anchor::Chain { sha256, keys } => {
            Ok(Some((*sha256, keys.iter().map(|(c, ks)| (c.clone(), ks.iter().map(hex::encode).collect())).collect())))
        }
        Anchor::Sha256(sha256) => match &bundle.roster_file {
            None => Err("the bundle carries no roster to match the anchor against (give the roster file)".into()),
            Some(text) if sha_of(text) != *sha256 => Err(format!(
                "the bundle's roster has SHA-256 {}, not the anchor's {}",
                hex::encode(sha_of(text)),
                hex::encode(sha256)
            )),
            Some(text) => roster_keys(text).map(|keys| Some((*sha256, keys))),
        },
    };
    let keys = match anchored {
        Err(why) => {
            r.check("anchor: the roster", Err(why));
            r.anchored = true;
            return r;
        }
        Ok(None) => {
            r.check(
                "anchor: none given; the bundle's own keys are used, so it is shown consistent with itself only",
                Ok(()),
            );
            None
        }
        Ok(Some((sha256, keys))) => {
            let named = match &bundle.roster_sha256 {
                Some(h) if !h.eq_ignore_ascii_case(&hex::encode(sha256)) => {
                    Err(format!("the bundle relies on roster {h}, not on the anchored one"))
                }
                _ => Ok(()),
            };
            r.check(format!("anchor: roster {}", hex::encode(sha256)), named);
            for (code, key) in &bundle.roster {
                let ok = match keys.get(code) {
                    Some(ks) if ks.iter().any(|k| k.eq_ignore_ascii_case(key)) => Ok(()),
                    Some(_) => Err("it is not the anchored roster's key".to_string()),
                    None => Err(format!("{code} is not in the anchored roster")),
                };
                r.check(format!("anchor: the bundle's key of {code}"), ok);
            }
            r.anchored = true;
            Some(keys)
        }
    };
    let inner = match keys {
        Some(keys) => verify_under(bundle, &keys),
        None => verify(bundle),
    };
    r.checks.extend(inner.checks);
    r.decisions = inner.decisions;
    r.record = inner.record;
    r.holes = inner.holes;
    r
}

/// A decision of the bundle, judged by the rule the node's API applies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DecisionVerdict {
    /// The decision's envelope hash, hex.
    pub id: String,
    /// `final`, `declined`, `superseded` or `open`.
    pub state: &'static str,
    /// The final decision that replaces it.
    pub superseded_by: Option<String>,
    /// The parties whose concurrence is missing, for an open decision.
    pub missing: Vec<String>,
}

impl Report {
    fn check(&mut self, item: impl Into<String>, result: Result<(), String>) -> bool {
        let ok = result.is_ok();
        self.checks.push(Check { item: item.into(), failure: result.err() });
        ok
    }

    /// The first check that failed.
    pub fn first_failure(&self) -> Option<&Check> {
        self.checks.iter().find(|c| c.failure.is_some())
    }
}

/// Each file an authentic message of the bundle names, put together from the authentic chunks
/// the bundle holds: where it holds them all, their bytes end to end must be the file the message
/// signed (its size and SHA-256). Where it holds none or some (a window's edge, a bundle without
/// files, chunks pruned), the report says how many.
fn files_hold(
    bundle: &Bundle,
    files: &[(String, adi_wire::payload::AttachmentRef)],
    pieces: &BTreeMap<(String, String), BTreeMap<u64, Vec<u8>>>,
    r: &mut Report,
) {
    for (message, a) in files {
        let item = format!("file {} ({} bytes) attached to {message}", a.name, a.size);
        let held = pieces.get(&(message.to_ascii_lowercase(), a.sha256.to_ascii_lowercase()));
        let count = held.map_or(0, |h| h.range(..a.chunks).count() as u64);
        if count < a.chunks {
            let why = if bundle.without_files { ", the exporter left files out" } else { "" };
            r.check(format!("{item}: {count} of its {} chunks in the bundle{why}", a.chunks), Ok(()));
            continue;
        }
        let mut sha = sha2::Sha256::new();
        let mut size = 0u64;
        for bytes in held.into_iter().flat_map(|h| h.range(..a.chunks)).map(|(_, b)| b) {
            sha.update(bytes);
            size += bytes.len() as u64;
        }
        let ok = if size == a.size && hex::encode(sha.finalize()) == a.sha256.to_ascii_lowercase() {
            Ok(())
        } else {
            Err(format!("its {} chunks make {size} bytes that are not the file its message signed", a.chunks))
        };
        r.check(format!("{item}: its chunks make the file its message signed"), ok);
    }
}

/// The plain-text rendering of the report that signed content carries, if it carries one that
/// checks.
pub fn form_text(content: &SignedContent) -> Option<String> {
    match PayloadV1::decode(&content.content) {
        Ok(PayloadV1::Message { form: Some(form), .. }) => adi_forms::check(&form).ok().map(|f| adi_forms::render(&f)),
        _ => None,
    }
}

fn hex_hash(s: &str) -> Result<Hash, String> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|_| format!("'{s}' is not a 32-byte hex hash"))?;
    Ok(out)
}

fn hashes(list: &[String]) -> Result<Vec<Hash>, String> {
    list.iter().map(|h| hex_hash(h)).collect()
}

/// The bundle's own statements about the line, which nobody signed as such: each checked against
/// the line's signed set-up where the bundle holds it, and otherwise reported as unsigned.
fn line_fields(bundle: &Bundle, setup: Option<&(String, String, String, String, Vec<String>)>, r: &mut Report) {
    let l = &bundle.line;
    match setup {
        Some((signer, scope, title, home, members)) => {
            let mut differ = Vec::new();
            if signer != home {
                differ.push(format!("it is signed by {signer}, not by the home member {home} it names"));
            }
            for (field, stated, signed) in
                [("scope", &l.scope, scope), ("title", &l.title, title), ("home", &l.home, home)]
            {
                if stated != signed {
                    differ.push(format!("the bundle's {field} '{stated}' is not the signed '{signed}'"));
                }
            }
            let ok = if differ.is_empty() { Ok(()) } else { Err(differ.join("; ")) };
            r.check("line scope, title and home, against the signed set-up", ok);
            r.check(
                format!(
                    "line members {} (unsigned: as the exporter states them; the signed set-up named {})",
                    l.members.join(", "),
                    members.join(", ")
                ),
                Ok(()),
            )
        }
        None => r.check(
            format!(
                "line scope '{}', title '{}', home {} and members {} (unsigned: the set-up is not in the bundle)",
                l.scope,
                l.title,
                l.home,
                l.members.join(", ")
            ),
            Ok(()),
        ),
    };
    r.check(format!("exported by {} at {} (unsigned)", bundle.exported_by, bundle.exported_ms), Ok(()));
}

/// The chain heads the exporter's latest checkpoint names against the bundle: each is an entry
/// of the log, an envelope of the bundle at a head's place is the one named, no envelope of the
/// bundle lies beyond its sender's head, and every sender in the bundle has a head.
fn heads_hold(
    bundle: &Bundle,
    heads: &[crate::Head],
    log: &[Hash],
    by_sender: &BTreeMap<String, BTreeMap<u64, (EnvelopeHash, EnvelopeHash)>>,
    r: &mut Report,
) {
    for h in heads {
        let mut why = Vec::new();
        if !log.contains(&h.hash) {
            why.push("it is not an entry of the log".to_string());
        }
        if let Some((held, _)) = by_sender.get(&h.sender).and_then(|c| c.get(&h.seq)) {
            if held.0 != h.hash {
                why.push(format!("the bundle holds {held} at that place"));
            }
        }
        if let Some((last, _)) = by_sender.get(&h.sender).and_then(|c| c.last_key_value()).filter(|(q, _)| **q > h.seq)
        {
            why.push(format!("the bundle holds {}'s #{last}, beyond it", h.sender));
        }
        let ok = if why.is_empty() { Ok(()) } else { Err(why.join("; ")) };
        r.check(format!("{}'s checkpoint: head of {}'s chain at #{}", bundle.exported_by, h.sender, h.seq), ok);
    }
    for sender in by_sender.keys().filter(|s| !heads.iter().any(|h| h.sender == **s)) {
        r.check(
            format!("{}'s checkpoint: head of {sender}'s chain", bundle.exported_by),
            Err(format!("the checkpoint names no head for {sender}, whose envelopes the bundle holds")),
        );
    }
}

/// What the bundle's signed envelopes show of the line's history, for explaining holes.
struct History<'a> {
    /// Where each authentic envelope sits in the log, by (sender, seq).
    places: &'a BTreeMap<(String, u64), u64>,
    /// The line set-ups the exporter holds: (index, sender, seq).
    setups: &'a [(u64, String, u64)],
    /// What each commit states about the line's members: (index, sender, seq, statement).
    statements: &'a [(u64, String, u64, Membership)],
}

/// Why the exporter cannot hold `sender`'s envelopes `a` to `b`, from signed data: it was not on
/// the line when they were sent (a later set-up brought it in), they are the home member's
/// set-up of another member (sent to that member alone), or they came after the place where
/// `sender`'s removal fixed it to stop (refused by every node the removal reached first).
fn hole_reason(bundle: &Bundle, home: &str, sender: &str, a: u64, b: u64, h: &History<'_>) -> Option<String> {
    let me = bundle.exported_by.as_str();
    if sender == me {
        return None;
    }
    let at = |seq: u64| h.places.get(&(sender.to_string(), seq)).copied();
    let after = at(b + 1)?;
    // Brought onto a running line by a later set-up: nothing sent before reached the exporter.
    let joined = h.setups.iter().find(|(index, from, seq)| {
        from == home && *seq > 1 && *index <= after && (a == 1 || at(a - 1).is_some_and(|before| before < *index))
    });
    if let Some((_, _, seq)) = joined {
        return Some(format!("sent while {me} was not on the line: {home}'s set-up #{seq} brought it in after"));
    }
    for (index, from, seq, stated) in h.statements {
        if from != home {
            continue;
        }
        match stated {
            Membership::Additions(added)
                if sender == home
                    && !added.iter().any(|m| m == me)
                    && a == seq + 1
                    && b <= seq + added.len() as u64 =>
            {
                return Some(format!(
                    "{home}'s line set-up for {}, sent to the member it brings in alone (its commit #{seq} states the addition)",
                    added.join(", ")
                ));
            }
            Membership::Removals(removed) => {
                let Some(place) = removed.iter().find(|p| p.member == sender) else { continue };
                // What the exporter holds past the place it took before the removal reached it;
                // every envelope after that, until the member is back, is refused.
                let taken_before = (place.seq + 1..a).all(|q| at(q).is_some_and(|i| i < *index));
                if a > place.seq && taken_before && after > *index {
                    return Some(format!(
                        "refused: sent after #{}, where {home}'s removal of {sender} (its commit #{seq}) fixed it to stop",
                        place.seq
                    ));
                }
            }
            _ => {}
        }
    }
    None
}

/// Every sender's chain is held from #1 to its head (the exporter's countersigned checkpoint names
/// each head; without heads, the last envelope held), except for runs that signed data explains
/// ([`hole_reason`]); each run is listed. A bundle of part of the log explains the runs it
/// leaves out by its window only.
fn chains_complete(
    bundle: &Bundle,
    heads: Option<&[crate::Head]>,
    by_sender: &BTreeMap<String, BTreeMap<u64, (EnvelopeHash, EnvelopeHash)>>,
    history: &History<'_>,
    signed_home: Option<&str>,
    r: &mut Report,
) {
    let home = signed_home.unwrap_or(&bundle.line.home);
    let whole = bundle.from_index == 0 && bundle.to_index as usize >= bundle.log.len();
    for (sender, chain) in by_sender {
        let held: Vec<u64> = chain.keys().copied().collect();
        let last = held.last().copied().unwrap_or(0);
        let head = heads.and_then(|hs| hs.iter().find(|h| h.sender == *sender)).map_or(last, |h| h.seq.max(last));
        let mut runs = Vec::new();
        let mut next = 1;
        for &seq in held.iter().chain(std::iter::once(&(head + 1))) {
            if seq > next {
                runs.push((next, seq - 1));
            }
            next = seq + 1;
        }
        let mut unexplained = Vec::new();
        for (a, b) in runs {
            let run = if a == b { format!("#{a}") } else { format!("#{a} to #{b}") };
            let reason = if whole {
                hole_reason(bundle, home, sender, a, b, history)
            } else {
                Some(format!(
                    "outside the exported window: the bundle holds log entries {} to {} of {}",
                    bundle.from_index,
                    bundle.to_index,
                    bundle.log.len()
                ))
            };
            match &reason {
                Some(why) => {
                    r.check(format!("chain of {sender}: {run} not held: {why}"), Ok(()));
                }
                None => unexplained.push(run),
            }
            r.holes.push(Hole { sender: sender.clone(), from: a, to: b, reason });
        }
        let ok = if unexplained.is_empty() {
            Ok(())
        } else {
            Err(format!("{} not held, and nothing signed in the bundle says why", unexplained.join(", ")))
        };
        r.check(format!("chain of {sender}: complete from #1 to #{head}"), ok);
    }
}

/// The place, oldest first, of the first of a member's `keys` under which `signed` holds; else
/// why it does not hold under the member's latest key.
fn signed_under<E: ToString>(
    keys: &[VerifyingKey],
    signed: impl Fn(&VerifyingKey) -> Result<(), E>,
) -> Result<usize, String> {
    let mut why = "no key to verify with".to_string();
    for (i, key) in keys.iter().enumerate().rev() {
        match signed(key) {
            Ok(()) => return Ok(i),
            Err(e) if i + 1 == keys.len() => why = e.to_string(),
            Err(_) => {}
        }
    }
    Err(why)
}

/// For each place a member signed an item at (an envelope's sequence number, a checkpoint's
/// size), given the key each is signed under (its place among the member's keys): the newest
/// key of the member's items up to that place, and the first place signed under it.
fn newest_keys(signed: BTreeMap<u64, usize>) -> BTreeMap<u64, (usize, u64)> {
    let mut out = BTreeMap::new();
    let mut newest: Option<(usize, u64)> = None;
    for (place, key) in signed {
        let n = match newest {
            Some((n, at)) if n >= key => (n, at),
            _ => (key, place),
        };
        newest = Some(n);
        out.insert(place, n);
    }
    out
}

/// Whether an item a member signed at `place` under its key `key` comes after nothing it signed
/// under a later key: `newest` is [`newest_keys`] of the member's items in the bundle. `what`
/// names the items.
fn in_key_order(
    newest: Option<&BTreeMap<u64, (usize, u64)>>,
    place: u64,
    key: usize,
    what: &str,
) -> Result<(), String> {
    match newest.and_then(|m| m.range(..place).next_back()) {
        Some((_, (n, at))) if *n > key => Err(format!(
            "it is signed under a key its member had left behind by a rotation: its {what}{at} is signed under a \
             later one"
        )),
        _ => Ok(()),
    }
}

/// Checks a bundle offline: every signature, chain link, inclusion and consistency proof,
/// checkpoint, countersignature, signed content and receipt, under the keys the bundle itself
/// carries. Every check is reported; the bundle holds when none failed.
pub fn verify(bundle: &Bundle) -> Report {
    let own: Keyring = bundle.roster.iter().map(|(c, k)| (c.clone(), vec![k.clone()])).collect();
    verify_under(bundle, &own)
}

/// Checks a bundle as [`verify`] does, under each member's keys of `keyring` instead of the
/// bundle's own.
fn verify_under(bundle: &Bundle, keyring: &Keyring) -> Report {
    let mut r = Report::default();
    let format_ok = bundle.format == FORMAT && (1..=VERSION).contains(&bundle.v);
    if !r.check(
        "bundle format",
        if format_ok { Ok(()) } else { Err(format!("not an adi-bundle of version 1 to {VERSION}")) },
    ) {
        return r;
    }
    // Roster keys: each member's, oldest first.
    let mut keys: HashMap<String, Vec<VerifyingKey>> = HashMap::new();
    for (code, held) in keyring {
        for (i, key) in held.iter().enumerate() {
            let parsed =
                hex_hash(key).and_then(|k| VerifyingKey::from_bytes(&k).map_err(|e| e.to_string())).and_then(|k| {
                    if k.is_weak() {
                        Err("a weak (small-order) Ed25519 key is refused".to_string())
                    } else {
                        Ok(k)
                    }
                });
            if let Ok(k) = &parsed {
                keys.entry(code.clone()).or_default().push(*k);
            }
            let item = if i + 1 == held.len() {
                format!("roster key of {code}")
            } else {
                format!("roster key of {code} retired by rotation ({key})")
            };
            r.check(item, parsed.map(|_| ()));
        }
    }
    // For a member with several keys, the latest key each of its checkpoints (by size) and
    // envelopes (by sequence number) is signed under, so that none signed after it may be under
    // an older one.
    let rotated = |member: &str| keys.get(member).filter(|ks| ks.len() > 1);
    let mut checkpoint_keys: HashMap<String, BTreeMap<u64, usize>> = HashMap::new();
    for c in &bundle.checkpoints {
        let Some(cp) = hex::decode(&c.signed).ok().and_then(|b| SignedCheckpoint::from_bytes(&b).ok()) else {
            continue;
        };
        let k = &cp.checkpoint;
        if let Some(i) = rotated(&k.signer).and_then(|ks| signed_under(ks, |key| cp.verify(key)).ok()) {
            let at = checkpoint_keys.entry(k.signer.clone()).or_default().entry(k.size).or_insert(i);
            *at = (*at).max(i);
        }
    }
    let checkpoint_keys: HashMap<String, BTreeMap<u64, (usize, u64)>> =
        checkpoint_keys.into_iter().map(|(m, signed)| (m, newest_keys(signed))).collect();
    let mut envelope_keys: HashMap<String, BTreeMap<u64, usize>> = HashMap::new();
    for e in &bundle.envelopes {
        let decoded = hex::decode(&e.bytes).ok().and_then(|b| Envelope::decode(&b, usize::MAX, usize::MAX).ok());
        let Some(envelope) = decoded else { continue };
        let body = envelope.body();
        let signed =
            rotated(&body.sender).and_then(|ks| signed_under(ks, |key| envelope.clone().verify(key).map(|_| ())).ok());
        if let Some(i) = signed {
            let at = envelope_keys.entry(body.sender.clone()).or_default().entry(body.seq).or_insert(i);
            *at = (*at).max(i);
        }
    }
    let envelope_keys: HashMap<String, BTreeMap<u64, (usize, u64)>> =
        envelope_keys.into_iter().map(|(m, signed)| (m, newest_keys(signed))).collect();
    let Some(line) = LineId::from_hex(&bundle.line.id) else {
        r.check("line id", Err(format!("'{}' is not a line id", bundle.line.id)));
        return r;
    };
    let log = match hashes(&bundle.log) {
        Ok(l) => l,
        Err(e) => {
            r.check("log entries", Err(e));
            return r;
        }
    };
    let leaves: Vec<Hash> = log.iter().map(|h| merkle::leaf_hash(h)).collect();

    // Checkpoints and countersignatures; the exporter's checkpoints must match its log.
    let mut own: Vec<SignedCheckpoint> = Vec::new();
    let mut countersigners: Vec<(String, String)> = Vec::new();
    // The exporter's checkpoints' valid countersignatures by other members: (size, member).
    let mut own_countersigned: Vec<(u64, String)> = Vec::new();
    for (i, c) in bundle.checkpoints.iter().enumerate() {
        let name = format!("checkpoint {i}");
        let parsed = hex::decode(&c.signed)
            .map_err(|e| e.to_string())
            .and_then(|b| SignedCheckpoint::from_bytes(&b).map_err(|e| e.to_string()));
        let cp = match parsed {
            Ok(cp) => cp,
            Err(e) => {
                r.check(&name, Err(e));
                continue;
            }
        };
        let k = &cp.checkpoint;
        let name = format!("checkpoint {i} ({} at size {})", k.signer, k.size);
        let signed = match keys.get(&k.signer) {
            Some(ks) => signed_under(ks, |key| cp.verify(key))
                .and_then(|i| in_key_order(checkpoint_keys.get(&k.signer), k.size, i, "checkpoint of size ")),
            None => Err(format!("{} is not in the bundle's roster", k.signer)),
        };
        let signed = signed.and_then(|_| if k.line != line.0 { Err("it is of another line".into()) } else { Ok(()) });
        r.check(format!("{name}: signature"), signed);
        for (member, sig) in &c.countersignatures {
            countersigners.push((name.clone(), member.clone()));
            let ok = match (keys.get(member), hex::decode(sig).ok().and_then(|s| <[u8; 64]>::try_from(s).ok())) {
                (Some(ks), Some(sig)) => {
                    signed_under(ks, |key| cp.verify_countersignature(member, key, &sig)).map(|_| ())
                }
                (None, _) => Err(format!("{member} is not in the bundle's roster")),
                (_, None) => Err("the countersignature is not 64 bytes of hex".into()),
            };
            if ok.is_ok() && k.signer == bundle.exported_by && *member != k.signer {
                own_countersigned.push((k.size, member.clone()));
            }
            r.check(format!("{name}: countersignature by {member}"), ok);
        }
        if k.signer == bundle.exported_by {
            let matches = if (k.size as usize) > leaves.len() {
                Err(format!("it covers {} entries; the log has {}", k.size, leaves.len()))
            } else if merkle::root(&leaves[..k.size as usize]) != k.root {
                Err("its root is not the root of the log's first entries: the log was changed".into())
            } else {
                Ok(())
            };
            r.check(format!("{name}: root of the exported log"), matches);
            own.push(cp);
        }
    }
    // Equivocation among the checkpoints held.
    for (i, a) in bundle.checkpoints.iter().enumerate() {
        for b in bundle.checkpoints.iter().skip(i + 1) {
            let parse =
                |c: &BundleCheckpoint| hex::decode(&c.signed).ok().and_then(|b| SignedCheckpoint::from_bytes(&b).ok());
            if let (Some(x), Some(y)) = (parse(a), parse(b)) {
                if x.equivocates_with(&y) {
                    r.check(
                        format!("checkpoints of {} at size {}", x.checkpoint.signer, x.checkpoint.size),
                        Err("two different roots for one size: equivocation".into()),
                    );
                }
            }
        }
    }
    // Consistency between the exporter's successive checkpoints.
    own.sort_by_key(|c| c.checkpoint.size);
    for pair in own.windows(2) {
        let (a, b) = (&pair[0].checkpoint, &pair[1].checkpoint);
        let name = format!("consistency of {}'s log from {} to {} entries", bundle.exported_by, a.size, b.size);
        let proof = bundle.consistency.iter().find(|c| c.from_size == a.size && c.to_size == b.size);
        let ok = match proof {
            None => Err("no consistency proof in the bundle".to_string()),
            Some(p) => hashes(&p.proof).and_then(|p| {
                merkle::verify_consistency(a.size, b.size, &a.root, &b.root, &p).map_err(|e| e.to_string())
            }),
        };
        r.check(name, ok);
    }
    let latest = own.last().map(|c| c.checkpoint.clone());
    // The exporter's latest checkpoint covers the whole log: without it, anyone holding the file
    // could strip the checkpoints, drop entries and reorder others, and the rest would still hold.
    let covered = match &latest {
        None => Err(format!("the bundle holds no checkpoint signed by its exporter {}", bundle.exported_by)),
        Some(cp) if cp.size != log.len() as u64 => Err(format!(
            "the log has {} entries, and {}'s latest checkpoint covers {}: the entries after it are vouched for by nobody",
            log.len(),
            bundle.exported_by,
            cp.size
        )),
        Some(_) => Ok(()),
    };
    r.check(format!("the exporter's latest checkpoint covers the whole log of {} entries", log.len()), covered);
    // And another member vouched for it: a countersigner checks it against its own copy of the
    // line, and refuses one that leaves out what it knows the exporter held.
    if let Some(cp) = &latest {
        let by: Vec<&str> =
            own_countersigned.iter().filter(|(size, _)| *size == cp.size).map(|(_, m)| m.as_str()).collect();
        let ok = if by.is_empty() {
            Err("no other member of the line countersigned it: nobody checked it against their own copy".to_string())
        } else {
            Ok(())
        };
        r.check(format!("the exporter's latest checkpoint is countersigned by another member ({})", by.join(", ")), ok);
    }

    // Envelopes: signature, place in the log, inclusion, signed content, chain links.
    let mut by_sender: BTreeMap<String, BTreeMap<u64, (EnvelopeHash, EnvelopeHash)>> = BTreeMap::new();
    let mut known: HashMap<EnvelopeHash, (String, u64)> = HashMap::new();
    let mut receipts: Vec<(String, PayloadV1)> = Vec::new();
    // Decisions by id, and answers to them, as their signed contents give them.
    let mut decisions: BTreeMap<String, Proposed> = BTreeMap::new();
    // The line's signed set-up: (signer, scope, title, home, members).
    let mut setup: Option<(String, String, String, String, Vec<String>)> = None;
    let mut answers: Vec<Answered> = Vec::new();
    // Where each authentic envelope sits in the log, by (sender, seq); the line set-ups the
    // exporter holds (index, sender, seq); and what each commit states about the line's members
    // (index, sender, seq, statement).
    let mut places: BTreeMap<(String, u64), u64> = BTreeMap::new();
    let mut setups: Vec<(u64, String, u64)> = Vec::new();
    let mut statements: Vec<(u64, String, u64, Membership)> = Vec::new();
    // The files the authentic messages name, by message (hex), and the authentic chunks' bytes,
    // by message and file (hex) and place; the first a sender sent for a place counts.
    let mut files: Vec<(String, adi_wire::payload::AttachmentRef)> = Vec::new();
    let mut pieces: BTreeMap<(String, String), BTreeMap<u64, Vec<u8>>> = BTreeMap::new();
    for e in &bundle.envelopes {
        let name = format!("envelope at log index {}", e.index);
        let decoded = hex::decode(&e.bytes)
            .map_err(|e| e.to_string())
            .and_then(|b| Envelope::decode(&b, usize::MAX, usize::MAX).map_err(|e| e.to_string()));
        let envelope = match decoded {
            Ok(x) => x,
            Err(err) => {
                r.check(&name, Err(format!("cannot be decoded: {err}")));
                continue;
            }
        };
        let hash = envelope.hash();
        let body = envelope.body().clone();
        let name = format!("{name} ({} #{}, {hash})", body.sender, body.seq);
        let signed = match keys.get(&body.sender) {
            Some(ks) => signed_under(ks, |key| envelope.clone().verify(key).map(|_| ()))
                .and_then(|i| in_key_order(envelope_keys.get(&body.sender), body.seq, i, "envelope #").map(|_| i)),
            None => Err(format!("{} is not in the bundle's roster", body.sender)),
        };
        // The key its envelope is signed under, which signs its content too.
        let envelope_key = signed.as_ref().ok().copied();
        let on_line = if body.line == line { Ok(()) } else { Err("it is of another line".to_string()) };
        let authentic = r.check(format!("{name}: signature"), signed.map(|_| ()).and(on_line));
        let mut entry = RecordEntry {
            index: e.index,
            hash: hash.to_hex(),
            sender: body.sender.clone(),
            seq: body.seq,
            created_ms: body.created_ms,
            kind: if body.content_type == CONTENT_MLS { "no_content" } else { "unread" },
            content: None,
        };
        let at = log.get(e.index as usize).copied();
        r.check(
            format!("{name}: place in the log"),
            if at == Some(hash.0) { Ok(()) } else { Err("the log holds another entry at its index".into()) },
        );
        if let Some(cp) = &latest {
            if e.index < cp.size {
                let ok = hashes(&e.inclusion).and_then(|p| {
                    merkle::verify_inclusion(e.index, cp.size, &merkle::leaf_hash(&hash.0), &p, &cp.root)
                        .map_err(|x| x.to_string())
                });
                r.check(format!("{name}: inclusion in {}'s checkpoint of {} entries", cp.signer, cp.size), ok);
            }
        }
        if let Some(content) = &e.content {
            let ok = hex::decode(content).map_err(|x| x.to_string()).and_then(|b| {
                let sc = SignedContent::decode(&b).map_err(|x| x.to_string())?;
                sc.check_version(envelope.version()).map_err(|x| x.to_string())?;
                let ks = keys.get(&body.sender).ok_or("the author is not in the roster")?;
                let ks = match envelope_key {
                    Some(i) => &ks[i..=i],
                    None => &ks[..],
                };
                signed_under(ks, |key| sc.verify(key, &body.line, &body.sender, body.seq, &body.content_hash))?;
                match PayloadV1::decode(&sc.content) {
                    Ok(p @ PayloadV1::Receipt { .. }) => receipts.push((name.clone(), p)),
                    Ok(PayloadV1::Decision { text, parties, supersedes, .. }) => {
                        let text_sha256: Hash = sha2::Sha256::digest(text.as_bytes()).into();
                        let proposed = Proposed {
                            proposer: body.sender.clone(),
                            seq: body.seq,
                            text_sha256,
                            parties,
                            supersedes,
                            created_ms: body.created_ms,
                        };
                        decisions.insert(hash.to_hex(), proposed);
                    }
                    Ok(PayloadV1::Concurrence { decision, text_sha256, concur, .. }) => {
                        // A text hash that is not 32 bytes of hex matches no decision's text.
                        let text_sha256 = hex_hash(&text_sha256).unwrap_or([0xff; 32]);
                        let answered =
                            Answered { decision, member: body.sender.clone(), seq: body.seq, text_sha256, concur };
                        answers.push(answered);
                    }
                    _ => {}
                }
                if let Some(text) = &e.form_text {
                    if form_text(&sc).as_ref() != Some(text) {
                        return Err("its readable report text is not the rendering of the signed report".to_string());
                    }
                }
                Ok(())
            });
            let read = r.check(format!("{name}: signed content"), ok);
            let payload = hex::decode(content)
                .ok()
                .and_then(|b| SignedContent::decode(&b).ok())
                .and_then(|sc| PayloadV1::decode(&sc.content).ok());
            match payload {
                Some(p) if read && authentic => {
                    entry.kind = kind_of(&p);
                    entry.content = serde_json::to_value(&p).ok();
                    match p {
                        PayloadV1::Message { attachments, .. } => {
                            files.extend(attachments.into_iter().map(|a| (hash.to_hex(), a)));
                        }
                        PayloadV1::Chunk { message, file, index, data, .. } => {
                            use base64::Engine;
                            let bytes = base64::engine::general_purpose::STANDARD.decode(&data).ok();
                            // The record shows a chunk's place and length, not its bytes.
                            entry.content = Some(serde_json::json!({
                                "type": "chunk", "message": message, "file": file, "index": index,
                                "bytes": bytes.as_ref().map(Vec::len),
                            }));
                            if let Some(bytes) = bytes {
                                let key = (message.to_ascii_lowercase(), file.to_ascii_lowercase());
                                pieces.entry(key).or_default().entry(index).or_insert(bytes);
                            }
                        }
                        _ => {}
                    }
                }
                _ => entry.kind = "unread",
            }
        } else if e.form_text.is_some() {
            r.check(format!("{name}: readable report text"), Err("it has no signed content to be read from".into()));
        }
        if e.pruned {
            // The exporter's word, as any content left out is: what the envelope said is in an
            // archive made before, whose content its signed hash still binds.
            let ok = match (&e.content, body.content_type) {
                (Some(_), _) => Err("it is marked pruned and carries content".to_string()),
                (None, CONTENT_MLS) => Ok(()),
                (None, _) => Err("only an MLS message's content can be pruned".to_string()),
            };
            if r.check(format!("{name}: content pruned by the exporter's retention after it was archived"), ok)
                && authentic
            {
                entry.kind = "pruned";
            }
        }
        if body.content_type == CONTENT_MLS_SETUP {
            if let Ok(PayloadV1::LineSetup { v, scope, title, home, members, .. }) = PayloadV1::decode(&body.payload) {
                if authentic {
                    let shown = PayloadV1::LineSetup {
                        v,
                        scope: scope.clone(),
                        title: title.clone(),
                        home: home.clone(),
                        members: members.clone(),
                        welcome: None,
                    };
                    entry.kind = "line_setup";
                    entry.content = serde_json::to_value(&shown).ok();
                }
                setup = Some((body.sender.clone(), scope, title, home, members));
            }
        }
        let forked = by_sender.get(&body.sender).and_then(|c| c.get(&body.seq)).filter(|(h, _)| *h != hash);
        if let Some((other, _)) = forked {
            r.check(
                format!("{name}: the only envelope at its place"),
                Err(format!("the bundle holds {other} as {} #{} too: a fork of its chain", body.sender, body.seq)),
            );
        }
        r.record.push(entry);
        if authentic {
            places.insert((body.sender.clone(), body.seq), e.index);
            match body.content_type {
                CONTENT_MLS_SETUP => setups.push((e.index, body.sender.clone(), body.seq)),
                CONTENT_MLS => {
                    if let Ok((MLS_COMMIT, aad)) = mls_framing(&body.payload) {
                        let stated = Membership::decode(aad).unwrap_or(Membership::Unchanged);
                        statements.push((e.index, body.sender.clone(), body.seq, stated));
                    }
                }
                _ => {}
            }
        }
        by_sender.entry(body.sender.clone()).or_default().insert(body.seq, (hash, body.prev));
        known.insert(hash, (body.sender.clone(), body.seq));
    }
    r.record.sort_by_key(|e| e.index);
    files_hold(bundle, &files, &pieces, &mut r);
    line_fields(bundle, setup.as_ref(), &mut r);
    // A countersigner is a member of the line by signed data: named by the signed set-up, or
    // the sender of an envelope on the line.
    for (name, member) in &countersigners {
        let shown = setup.as_ref().is_some_and(|s| s.4.contains(member)) || by_sender.contains_key(member);
        let ok = if shown {
            Ok(())
        } else {
            Err(format!("nothing signed in the bundle shows {member} a member of the line"))
        };
        r.check(format!("{name}: countersigner {member} is on the line"), ok);
    }
    if let Some(heads) = latest.as_ref().and_then(|cp| cp.heads.as_ref()) {
        heads_hold(bundle, heads, &log, &by_sender, &mut r);
    }
    let present: std::collections::HashSet<u64> = bundle.envelopes.iter().map(|e| e.index).collect();
    let window = bundle.from_index..bundle.to_index.min(log.len() as u64);
    let missing: Vec<u64> = window.filter(|i| !present.contains(i)).collect();
    r.check(
        format!("envelopes of log entries {} to {}", bundle.from_index, bundle.to_index),
        match missing.first() {
            None => Ok(()),
            Some(i) => Err(format!("log entry {i} has no envelope in the bundle ({} missing)", missing.len())),
        },
    );
    let history = History { places: &places, setups: &setups, statements: &statements };
    let heads = latest.as_ref().and_then(|cp| cp.heads.as_deref());
    chains_complete(bundle, heads, &by_sender, &history, setup.as_ref().map(|s| s.3.as_str()), &mut r);
    for (sender, chain) in &by_sender {
        for (seq, (_, prev)) in chain {
            if let Some((before, _)) = seq.checked_sub(1).and_then(|s| chain.get(&s)) {
                r.check(
                    format!("chain link of {sender} #{seq}"),
                    if prev == before { Ok(()) } else { Err(format!("it names {prev}, but #{} is {before}", seq - 1)) },
                );
            }
        }
    }
    // Decisions, judged by the rule the node applies: answers in their signed order, a later
    // decision replacing one only once it is final itself.
    let judge = |id: &str, replacements: &[(EnvelopeHash, u64, bool)]| {
        let d = &decisions[id];
        let proposal = Proposal { proposer: &d.proposer, seq: d.seq, text_sha256: &d.text_sha256, parties: &d.parties };
        let mine: Vec<Answer<'_>> = answers
            .iter()
            .filter(|a| a.decision == id)
            .map(|a| Answer { member: &a.member, seq: a.seq, text_sha256: &a.text_sha256, concur: a.concur })
            .collect();
        crate::decision::state(&proposal, &mine, replacements)
    };
    for id in decisions.keys() {
        let replacements: Vec<(EnvelopeHash, u64, bool)> = decisions
            .iter()
            .filter(|(_, n)| n.supersedes.as_deref() == Some(id.as_str()))
            .filter_map(|(nid, n)| {
                let concluded = judge(nid, &[]) == State::Final;
                EnvelopeHash::from_hex(nid).map(|h| (h, n.created_ms, concluded))
            })
            .collect();
        let state = judge(id, &replacements);
        let (superseded_by, missing) = match &state {
            State::Superseded(by) => (Some(by.to_hex()), Vec::new()),
            State::Open(missing) => (None, missing.clone()),
            _ => (None, Vec::new()),
        };
        let status = match (&superseded_by, missing.is_empty()) {
            (Some(by), _) => format!("superseded by {by}"),
            (None, false) => format!("not final, missing {}", missing.join(", ")),
            (None, true) => state.as_str().to_string(),
        };
        r.check(format!("decision {id}: {status}"), Ok(()));
        r.decisions.push(DecisionVerdict { id: id.clone(), state: state.as_str(), superseded_by, missing });
    }
    for a in &answers {
        if let Some(d) = decisions.get(&a.decision) {
            let ok =
                if d.parties.contains(&a.member) { Ok(()) } else { Err(format!("{} is not a party to it", a.member)) };
            r.check(format!("answer by {} #{} to decision {}", a.member, a.seq, a.decision), ok);
        }
    }
    // Receipts name the exact envelope they answer.
    for (name, p) in receipts {
        if let PayloadV1::Receipt { kind, answers, answers_sender, answers_seq, .. } = p {
            let ok = match EnvelopeHash::from_hex(&answers) {
                None => Err("the answered hash is not hex".to_string()),
                Some(h) => match known.get(&h) {
                    Some((s, q)) if *s == answers_sender && *q == answers_seq => Ok(()),
                    Some((s, q)) => Err(format!("it names {answers_sender} #{answers_seq}, but {h} is {s} #{q}")),
                    // Outside the exported window: it must at least be in the log.
                    None if log.contains(&h.0) => Ok(()),
                    None => Err(format!("the answered envelope {h} is not in the log")),
                },
            };
            r.check(format!("{name}: {kind} receipt answers {answers_sender} #{answers_seq}"), ok);
        }
    }
    r
}
