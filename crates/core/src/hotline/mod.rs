//! The hotline state machine of one member's node.
//!
//! [`Hotline`] holds what the node must know to decide without I/O: the roster, the lines this
//! member is on, for each line and sender the highest sequence number and chain head, the
//! acknowledgements it waits for and the health of its direct lines. Its inputs are operator
//! commands ([`Hotline::create_line`], [`Hotline::send`], [`Hotline::answer`]), envelope bytes from
//! an authenticated peer ([`Hotline::receive`]) and the passing of time ([`Hotline::tick`]); its
//! outputs are [`Record`]s and alarm changes for the runtime to commit before it acknowledges
//! anything, and the time it next needs waking ([`Hotline::next_wake`]). Time comes in as
//! `now_ms`, randomness as a line id.

use std::collections::{BTreeSet, HashMap, VecDeque};

use adi_mls::{Claim, KeyPackage, LineMember, LineRules, MlsConfig, MlsError, Processed};
use adi_record::{Checkpoint, Hash, SignedCheckpoint};
use adi_wire::batch::RefusalCode;
use adi_wire::content::SignedContent;
use adi_wire::envelope::{EnvelopeBody, CONTENT_MLS, CONTENT_MLS_SETUP, PRIORITY_CONTROL, PRIORITY_IMMEDIATE};
use adi_wire::payload::PayloadV1;
use adi_wire::{Envelope, EnvelopeHash, LineId, VerifiedEnvelope};
use ed25519_dalek::SigningKey;

use crate::decision::{Concurrence, Decision, Translation};
use crate::discipline::{
    human_ms, AlarmChange, AlarmKind, AlarmOp, DisciplineConfig, LinkHealth, LinkState, PendingAck, Side, Timer,
};
use crate::error::CoreError;
use crate::limits::Limits;
use crate::line::{check_line, Line, NewLine, Scope};
use crate::message::{Attachment, Chunk, Class, Draft, Message, Precedence};
use crate::receipt::{check_reason, Answered, Receipt, ReceiptKind};
use crate::roster::{MemberCode, Roster};

mod adopt;
mod membership;
mod payload;
mod receive;
mod timers;

use self::payload::*;
pub use self::payload::{chunk_from_payload, message_from_payload};
use self::timers::clock_check;

/// What a node is configured with.
pub struct HotlineConfig {
    pub me: MemberCode,
    pub signing_key: SigningKey,
    pub roster: Roster,
    pub limits: Limits,
    /// The caveat applied to a message that names none.
    pub default_caveat: String,
    pub discipline: DisciplineConfig,
}

/// The last envelope the store holds from one sender on one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnHead {
    pub line: LineId,
    pub sender: MemberCode,
    pub seq: u64,
    pub hash: EnvelopeHash,
    /// The latest MLS epoch of the sender's envelopes on the line.
    pub epoch: u64,
}

/// What the store gives back at start.
#[derive(Clone, Debug, Default)]
pub struct Restored {
    pub lines: Vec<Line>,
    pub heads: Vec<OwnHead>,
    /// Acknowledgements still awaited, with whether their alarm is open.
    pub pending: Vec<PendingAck>,
    /// This member's MLS state as last committed: the entries of its key-value state (none
    /// for a member that has stored nothing yet).
    pub mls_state: adi_mls::StateEntries,
    /// Every member each line has had, as stored ([`Hotline`] remembers them across restarts).
    pub known: Vec<(LineId, MemberCode)>,
    /// The latest time on this node's clock that the store recorded (an envelope taken, an
    /// event): a runtime whose clock reads earlier at start keeps time from here instead.
    pub latest_ms: u64,
    /// Where each member taken off a line stopped, as stored.
    pub removals: Vec<StoredRemoval>,
    /// The bytes of envelopes taken from each peer in the last day, by the hour they arrived in
    /// (its first millisecond): what `peer_bytes_per_day_max` counts from.
    pub received: Vec<(MemberCode, u64, u64)>,
}

/// Where a member taken off a line stopped: the last of its envelopes on the line that the home
/// member held when it committed the removal (sequence 0 and no hash if none). The home member
/// sends it with the commit, so that every member's node fixes the same place; nothing of the
/// member's after it is accepted on the line, whatever its epoch, unless a later commit brings
/// the member back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removal {
    pub member: MemberCode,
    pub seq: u64,
    pub hash: EnvelopeHash,
}

/// A removal as the store keeps it: the line, and the epoch from which a commit brought the
/// member back, if one did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRemoval {
    pub line: LineId,
    pub removal: Removal,
    pub readded_epoch: Option<u64>,
}

/// What an envelope carries, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    LineSetup,
    Message(Message),
    Receipt(Receipt),
    LinkTest,
    /// An MLS proposal or commit of the line's group (a key update, a change of members), with
    /// where each member a commit takes off stopped.
    Handshake(Vec<Removal>),
    Decision(Decision),
    Concurrence(Concurrence),
    Translation(Translation),
    /// A piece of a file attached to a message.
    Chunk(Chunk),
}

impl Content {
    /// The kind stored beside the envelope.
    pub fn kind(&self) -> &'static str {
        match self {
            Content::LineSetup => "line_setup",
            Content::Message(_) => "message",
            Content::Receipt(_) => "receipt",
            Content::LinkTest => "link_test",
            Content::Handshake(_) => "handshake",
            Content::Decision(_) => "decision",
            Content::Concurrence(_) => "concurrence",
            Content::Translation(_) => "translation",
            Content::Chunk(_) => "chunk",
        }
    }
}

/// An envelope's payload as sealed: its MLS epoch, the bytes, and the hash of the signed content
/// inside (zeros when there is none).
struct Sealed {
    epoch: u64,
    ciphertext: Vec<u8>,
    content_hash: [u8; 32],
}

/// One envelope to commit, with what the store needs to index it.
#[derive(Clone, Debug)]
pub struct Record {
    pub envelope: VerifiedEnvelope,
    pub sender: MemberCode,
    /// The line the envelope belongs to; for a line setup, the line it creates.
    pub line: Line,
    pub content: Content,
    pub received_ms: u64,
    /// Members to forward this envelope to: the other members for this node's own envelopes,
    /// none for envelopes received from peers.
    pub recipients: Vec<MemberCode>,
    /// Alarm changes that this envelope causes, applied only if the envelope is newly stored.
    pub alarms: Vec<AlarmChange>,
    /// For an MLS application message: its signed content as decrypted (`adi_wire::content`),
    /// kept so that the plaintext can be exported with its author's signature.
    pub signed_content: Option<Vec<u8>>,
}

impl Record {
    pub fn is_own(&self) -> bool {
        !self.recipients.is_empty()
    }
}

/// Records and alarm changes to commit together.
#[derive(Clone, Debug, Default)]
pub struct WriteBatch {
    pub records: Vec<Record>,
    /// Alarm changes not tied to a record (deadlines passing, links going silent).
    pub alarms: Vec<AlarmChange>,
    /// What changed in this member's MLS state up to the records, to store with them (secrets:
    /// sealed at rest).
    pub mls_state: Option<adi_mls::StateDelta>,
    /// Envelopes from an epoch this member has not reached, to keep until the commit arrives.
    pub hold: Vec<HeldEnvelope>,
    /// Held envelopes that were decided (taken or refused), to forget.
    pub release: Vec<EnvelopeHash>,
    /// Signed items that contradict each other, kept as evidence of tampering.
    pub evidence: Vec<Evidence>,
    /// Signed checkpoints of line logs, this member's or its peers', to keep.
    pub checkpoints: Vec<SignedCheckpoint>,
    /// Countersignatures of checkpoints: (the checkpoint, the countersigning member, signature).
    pub countersignatures: Vec<(SignedCheckpoint, MemberCode, [u8; 64])>,
    /// References of this member's published KeyPackages to delete: used by a Welcome stored
    /// with this batch (their private keys went with the MLS delta).
    pub key_packages_used: Vec<Vec<u8>>,
    /// Which operator of this member's desk made each of its receipts in `records`: the
    /// receipt's envelope hash and the operator's name, kept at this node alone (the signed
    /// receipt names the member, never the operator).
    pub answered_by: Vec<(EnvelopeHash, String)>,
}

/// Two signed items by one member that cannot both be true, kept as they arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    pub line: LineId,
    /// The member whose signatures contradict each other.
    pub member: MemberCode,
    pub at_ms: u64,
    /// What contradicts what, for operators.
    pub detail: String,
    /// The item this node held, exactly as stored.
    pub held: Vec<u8>,
    /// The item that contradicts it, exactly as it arrived.
    pub offered: Vec<u8>,
}

impl WriteBatch {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
            && self.alarms.is_empty()
            && self.hold.is_empty()
            && self.release.is_empty()
            && self.evidence.is_empty()
            && self.checkpoints.is_empty()
            && self.countersignatures.is_empty()
    }
}

/// An envelope from a peer, signed and on a line of this member, whose epoch this member's group
/// has not reached yet: the store keeps it until the commit that reaches that epoch arrives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldEnvelope {
    pub line: LineId,
    pub sender: MemberCode,
    pub seq: u64,
    pub epoch: u64,
    pub hash: EnvelopeHash,
    /// The exact signed bytes, MLS ciphertext inside.
    pub bytes: Vec<u8>,
    pub received_ms: u64,
}

/// Why an envelope from a peer was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Whether the sender should try again later (the line may not be known here yet).
    pub retry: bool,
    /// What the refusal is, for the sender's node to act on.
    pub code: RefusalCode,
    pub reason: String,
    /// An alarm to raise here: an envelope that cannot be decrypted is never dropped silently.
    pub alarm: Option<Box<AlarmChange>>,
    /// The envelope is valid so far but from an epoch this member has not reached: the runtime
    /// may hold it (bounded) and hand it back after the commit arrives.
    pub hold: Option<Box<HeldEnvelope>>,
}

impl Refusal {
    fn reject(code: RefusalCode, reason: impl Into<String>) -> Self {
        Refusal { retry: false, code, reason: reason.into(), alarm: None, hold: None }
    }

    fn defer(code: RefusalCode, reason: impl Into<String>) -> Self {
        Refusal { retry: true, code, reason: reason.into(), alarm: None, hold: None }
    }
}

/// The state machine.
pub struct Hotline {
    config: HotlineConfig,
    lines: HashMap<LineId, Line>,
    /// Highest sequence number and its hash, per line and sender.
    heads: HashMap<(LineId, MemberCode), (u64, EnvelopeHash)>,
    /// Acknowledgements awaited, with the time each next needs attention.
    pending: HashMap<(EnvelopeHash, MemberCode), (PendingAck, u64)>,
    /// Link tests of direct lines.
    links: HashMap<LineId, LinkHealth>,
    /// Timers by time; an entry is stale when its subject moved on, and is then skipped.
    timers: BTreeSet<(u64, Timer)>,
    /// The MLS groups of this member's lines, and its KeyPackages.
    mls: LineMember,
    /// Per line: when this member last refreshed its keys, and envelopes sealed since.
    key_updates: HashMap<LineId, (u64, u64)>,
    /// Per line and member: the latest MLS epoch this member's envelopes showed that member at,
    /// or the epoch it was seen joining at. The home member commits a key update only while every
    /// member is close enough that what is queued for or by it stays within the past epochs kept.
    heard: HashMap<(LineId, MemberCode), u64>,
    /// Per line, every member this node has known on it: the members at start, those seen
    /// joining since, and every sender of a stored envelope. A member taken off a line since may
    /// still be read from an earlier epoch.
    known: BTreeSet<(LineId, MemberCode)>,
    /// Per line and member taken off it: the last sequence number accepted from it, and the
    /// epoch from which a commit brought it back, if one did.
    removals: HashMap<(LineId, MemberCode), (u64, Option<u64>)>,
    /// Per member: keys a roster version retired by rotation (its old key and its new key both
    /// signed it), still accepted for its envelopes and contents made before it moved to the new
    /// key. A key replaced without its own signature is never here.
    retired: HashMap<MemberCode, Vec<ed25519_dalek::VerifyingKey>>,
    /// While a restored store catches up: the kinds of this member's answers taken back, by the
    /// message they answer ([`Hotline::adopt_own`]).
    caught_up: HashMap<EnvelopeHash, Vec<ReceiptKind>>,
    /// Per peer: the bytes of envelopes taken from it, by the hour they arrived in, for the last
    /// day (`peer_bytes_per_day_max`).
    received: HashMap<MemberCode, VecDeque<(u64, u64)>>,
    /// While a restored store catches up ([`Hotline::begin_catch_up`]): what it fetches from its
    /// peers was sent before, and is neither bounded nor counted as a peer's traffic of the day.
    catching_up: bool,
    /// Keys of this member's own application ratchet to spend, by line and epoch, before it
    /// encrypts there: what envelopes taken back used.
    skips: HashMap<(LineId, u64), u64>,
}

/// How many epochs the home member keeps in hand below the past-epoch window when it decides
/// whether a key update may leave a silent member behind: commits already in flight.
const EPOCH_MARGIN: u64 = 2;

/// The roster's signing keys, as MLS checks credentials against them.
fn roster_keys(roster: &Roster) -> impl Fn(&str) -> Option<[u8; 32]> + '_ {
    |code: &str| MemberCode::parse(code).ok().and_then(|c| roster.member(&c)).map(|m| m.signing_key.to_bytes())
}

/// The keys a member's leaves may carry as this node reads its lines' MLS messages and Welcomes:
/// its roster key, or one a rotation retired (a leaf not moved to the new key yet, or one the
/// member changed before it switched). A KeyPackage is checked against the roster key alone.
pub(super) struct LeafKeys<'a> {
    roster: &'a Roster,
    retired: &'a HashMap<MemberCode, Vec<ed25519_dalek::VerifyingKey>>,
}

impl adi_mls::RosterKeys for LeafKeys<'_> {
    fn signing_key(&self, member: &str) -> Option<[u8; 32]> {
        roster_keys(self.roster)(member)
    }

    fn accepts(&self, member: &str, key: &[u8]) -> bool {
        let retired = || {
            MemberCode::parse(member)
                .ok()
                .and_then(|m| self.retired.get(&m))
                .is_some_and(|keys| keys.iter().any(|k| k.as_bytes().as_slice() == key))
        };
        self.signing_key(member).is_some_and(|k| k.as_slice() == key) || retired()
    }
}

fn internal(e: impl std::fmt::Display) -> CoreError {
    CoreError::new(crate::ErrorKind::Internal, "mls", e.to_string())
}

impl Hotline {
    /// Builds the state machine from configuration and what the store holds, at `now_ms`.
    pub fn new(config: HotlineConfig, restored: Restored, now_ms: u64) -> Result<Hotline, CoreError> {
        let seed = config.signing_key.to_bytes();
        let line_ids: Vec<[u8; 16]> = restored.lines.iter().map(|l| l.id.0).collect();
        let mls = if restored.mls_state.is_empty() {
            LineMember::new(config.me.as_str(), seed, MlsConfig::default())
        } else {
            LineMember::restore(config.me.as_str(), seed, MlsConfig::default(), restored.mls_state, &line_ids)
        }
        .map_err(internal)?;
        let heard = restored.heads.iter().map(|h| ((h.line, h.sender.clone()), h.epoch)).collect();
        let known = restored
            .heads
            .iter()
            .map(|h| (h.line, h.sender.clone()))
            .chain(restored.lines.iter().flat_map(|l| l.members.iter().map(|m| (l.id, m.clone()))))
            .chain(restored.known)
            .collect();
        let removals = restored
            .removals
            .iter()
            .map(|r| ((r.line, r.removal.member.clone()), (r.removal.seq, r.readded_epoch)))
            .collect();
        let mut received: HashMap<MemberCode, VecDeque<(u64, u64)>> = HashMap::new();
        let mut hours = restored.received;
        hours.sort_by_key(|(_, hour, _)| *hour);
        for (peer, hour, bytes) in hours {
            received.entry(peer).or_default().push_back((hour, bytes));
        }
        let mut h = Hotline {
            received,
            catching_up: false,
            mls,
            heard,
            known,
            removals,
            key_updates: HashMap::new(),
            retired: HashMap::new(),
            caught_up: HashMap::new(),
            skips: HashMap::new(),
            config,
            lines: HashMap::new(),
            heads: restored.heads.into_iter().map(|h| ((h.line, h.sender), (h.seq, h.hash))).collect(),
            pending: HashMap::new(),
            links: HashMap::new(),
            timers: BTreeSet::new(),
        };
        for line in restored.lines {
            h.add_line(line, now_ms);
        }
        for p in restored.pending {
            // A deadline that passed while the node was down fires at the first tick.
            let wake = if p.alarmed { now_ms } else { p.due_ms };
            h.await_ack(p, wake);
        }
        Ok(h)
    }

    /// Makes `n` one-time KeyPackages for peers to claim.
    pub fn key_packages(&mut self, n: usize) -> Result<Vec<Vec<u8>>, CoreError> {
        self.mls.key_packages(n).map_err(internal)
    }

    /// Signs a checkpoint of this member's log of a line: `size` entries with `root`, and the
    /// head of each sender's chain in them.
    pub fn sign_checkpoint(
        &self,
        line: LineId,
        size: u64,
        root: Hash,
        heads: Vec<adi_record::Head>,
        now_ms: u64,
    ) -> Result<SignedCheckpoint, CoreError> {
        let checkpoint = Checkpoint {
            line: line.0,
            signer: self.config.me.to_string(),
            size,
            root,
            time_ms: now_ms,
            heads: Some(heads),
        };
        checkpoint.sign(&self.config.signing_key).map_err(internal)
    }

    /// This member's countersignature of a peer's checkpoint it checked.
    pub fn countersign(&self, checkpoint: &SignedCheckpoint) -> Result<[u8; 64], CoreError> {
        checkpoint.countersign(&self.config.signing_key).map_err(internal)
    }

    /// This member's whole MLS state, to store (sealed) with the records that changed it.
    /// The whole MLS state, serialised (for inspection; commits carry [`Hotline::mls_delta`]).
    pub fn mls_snapshot(&self) -> Result<Vec<u8>, CoreError> {
        self.mls.snapshot().map_err(internal)
    }

    /// This member's MLS state itself, for the simulation's hostile member, which sends what
    /// modified code would with the member's own keys (each message it encrypts takes a key the
    /// member's honest messages then skip); nodes never call it.
    #[doc(hidden)]
    pub fn line_member_mut(&mut self) -> &mut LineMember {
        &mut self.mls
    }

    /// The references of this member's KeyPackages that Welcomes used since the last call, for
    /// the next commit to delete with the MLS delta that deleted their private keys.
    pub fn take_used_key_packages(&mut self) -> Vec<Vec<u8>> {
        self.mls.take_used_key_packages()
    }

    /// Deletes the private keys of this member's KeyPackages by reference (claimed long ago and
    /// never used); the deletion is in the next MLS delta.
    pub fn forget_key_packages(&mut self, references: &[Vec<u8>]) -> Result<(), CoreError> {
        self.mls.forget_key_packages(references).map_err(internal)
    }

    /// What changed in the MLS state since the last delta, for the next commit. A caller whose
    /// commit then fails rebuilds the core from the store.
    pub fn mls_delta(&mut self) -> Result<adi_mls::StateDelta, CoreError> {
        self.mls.delta().map_err(internal)
    }

    pub fn me(&self) -> &MemberCode {
        &self.config.me
    }

    pub fn roster(&self) -> &Roster {
        &self.config.roster
    }

    /// Takes a roster version that took effect: from now on envelopes are checked against its
    /// keys, lines against its policy, and a member it suspends or removes is refused.
    pub fn set_roster(&mut self, roster: Roster) {
        self.config.roster = roster;
    }

    /// Keeps accepting `key` for `member`'s envelopes and contents after a roster version
    /// rotated it (signed by that key and the new one): what the member signed before it moved
    /// to its new key, still queued or in flight, is taken.
    pub fn retire_key(&mut self, member: &MemberCode, key: ed25519_dalek::VerifyingKey) {
        let keys = self.retired.entry(member.clone()).or_default();
        if !keys.contains(&key) {
            keys.push(key);
        }
    }

    /// Stops accepting every key of `member`'s retired before: a version replaced its key without
    /// its old key's signature (lost or compromised), so nothing older is trusted either.
    pub fn distrust_retired_keys(&mut self, member: &MemberCode) {
        self.retired.remove(member);
    }

    /// The keys `member` signs with that are accepted: the roster's, then those retired by
    /// rotation.
    pub(super) fn accepted_keys(&self, member: &MemberCode) -> Vec<ed25519_dalek::VerifyingKey> {
        let current = self.config.roster.member(member).map(|m| m.signing_key);
        current.into_iter().chain(self.retired.get(member).into_iter().flatten().copied()).collect()
    }

    /// Moves this member to a new signing key, after a roster version gave it that key: its
    /// envelopes and contents are signed with it from now on, and its KeyPackages carry it. Its
    /// lines follow once [`Hotline::renew_leaves`] is committed.
    pub fn rotate_key(&mut self, key: SigningKey) -> Result<(), CoreError> {
        self.mls.rotate_signer(key.to_bytes()).map_err(internal)?;
        self.config.signing_key = key;
        Ok(())
    }

    /// After [`Hotline::rotate_key`]: this member's leaf on every line it is on moves to the new
    /// key, committed where it sequences the line and proposed elsewhere (the home member commits
    /// it at once). Returns the records to commit and send.
    pub fn renew_leaves(&mut self, now_ms: u64) -> Result<Vec<Record>, CoreError> {
        let lines: Vec<Line> = self.lines.values().filter(|l| l.has_member(&self.config.me)).cloned().collect();
        let mut out = Vec::new();
        for line in lines {
            if !self.mls.is_active(&line.id.0) {
                continue;
            }
            let home = line.acting_home(&self.config.roster) == self.config.me;
            let epoch = self.mls.epoch(&line.id.0).unwrap_or(0);
            let removals: Vec<Removal> = if home {
                self.mls
                    .pending_leaving(&line.id.0)
                    .iter()
                    .filter_map(|m| MemberCode::parse(m).ok())
                    .map(|m| self.removal_of(&line.id, &m))
                    .collect()
            } else {
                Vec::new()
            };
            match self.mls.renew_leaf(&line.id.0, home, encode_removals(&removals)).map_err(internal)? {
                adi_mls::Renewed::Current => {}
                adi_mls::Renewed::Committed(c) => {
                    let recipients: Vec<MemberCode> =
                        line.members.iter().filter(|m| **m != self.config.me).cloned().collect();
                    self.note_removals(line.id, &removals);
                    let followed = self.follow_membership(&line);
                    let made_in = c.epoch.saturating_sub(1);
                    let content = Content::Handshake(removals);
                    let mut record =
                        self.sign(now_ms, followed, PRIORITY_CONTROL, CONTENT_MLS, made_in, c.commit, content);
                    record.recipients = recipients;
                    out.push(record);
                }
                adi_mls::Renewed::Proposed(p) => {
                    let content = Content::Handshake(Vec::new());
                    out.push(self.sign(now_ms, line, PRIORITY_CONTROL, CONTENT_MLS, epoch, p, content));
                }
            }
        }
        Ok(out)
    }

    pub fn limits(&self) -> &Limits {
        &self.config.limits
    }

    pub fn discipline(&self) -> &DisciplineConfig {
        &self.config.discipline
    }

    pub fn line(&self, id: &LineId) -> Option<&Line> {
        self.lines.get(id)
    }

    pub fn lines(&self) -> impl Iterator<Item = &Line> {
        self.lines.values()
    }

    /// The sequence number and hash of the last envelope of `sender`'s chain on `line` that this
    /// node holds.
    pub fn head(&self, line: &LineId, sender: &MemberCode) -> Option<(u64, EnvelopeHash)> {
        self.heads.get(&(*line, sender.clone())).copied()
    }

    /// Acknowledgements this node waits for.
    pub fn pending(&self) -> impl Iterator<Item = &PendingAck> {
        self.pending.values().map(|(p, _)| p)
    }

    /// Each direct line's link health and state at `now_ms`, by peer.
    pub fn links(&self, now_ms: u64) -> Vec<(LinkHealth, LinkState)> {
        let interval = self.config.discipline.link_test_interval_s * 1000;
        let mut out: Vec<_> = self.links.values().map(|l| (l.clone(), l.state(now_ms, interval))).collect();
        out.sort_by(|a, b| a.0.peer.cmp(&b.0.peer));
        out
    }

    /// Sends an operator's message on a line. `released_by` names the principal who released it.
    pub fn send(
        &mut self,
        now_ms: u64,
        line: LineId,
        draft: Draft,
        released_by: Option<String>,
    ) -> Result<Record, CoreError> {
        let mut records = self.send_with_files(now_ms, line, draft, released_by, Vec::new())?;
        Ok(records.remove(0))
    }

    /// Sends a message with files attached: the message, which names each file (its SHA-256,
    /// name, media type, size and chunks), then each file's chunks, in order, at the message's
    /// priority, each its own envelope encrypted in the line's group. Committed together, they
    /// travel as any envelopes do, so that a transfer cut by a partition or a restart resumes
    /// where its link left it, and a higher precedence overtakes between chunks.
    pub fn send_with_files(
        &mut self,
        now_ms: u64,
        line_id: LineId,
        draft: Draft,
        released_by: Option<String>,
        files: Vec<(String, String, Vec<u8>)>,
    ) -> Result<Vec<Record>, CoreError> {
        let attachments: Vec<Attachment> = files
            .iter()
            .map(|(name, media_type, bytes)| Attachment::of(name, media_type, bytes, &self.config.limits))
            .collect();
        let message = self.send_message(now_ms, line_id, draft, released_by, attachments.clone())?;
        let hash = message.envelope.hash();
        let priority = message.envelope.body().priority;
        let mut records = vec![message];
        let line = self.line_here(&line_id)?;
        let size = self.config.limits.attachment_chunk_bytes_max.max(1);
        for (a, (_, _, bytes)) in attachments.iter().zip(&files) {
            for (index, data) in bytes.chunks(size).enumerate() {
                let chunk = Chunk { message: hash, file: a.sha256, index: index as u64, data: data.to_vec() };
                let payload = payload::chunk_to_payload(&chunk);
                records.push(self.seal(now_ms, line.clone(), priority, payload, Content::Chunk(chunk))?);
            }
        }
        Ok(records)
    }

    fn send_message(
        &mut self,
        now_ms: u64,
        line: LineId,
        draft: Draft,
        released_by: Option<String>,
        attachments: Vec<Attachment>,
    ) -> Result<Record, CoreError> {
        let line = self.line_here(&line)?;
        if !line.has_member(&self.config.me) {
            return Err(CoreError::forbidden(
                "removed",
                format!("{} was removed from line {}", self.config.me, line.id),
            ));
        }
        let mut message = Message::from_draft(draft, &self.config.default_caveat, &self.config.limits)?;
        message.released_by = released_by;
        message.attachments = attachments;
        message.check(&self.config.limits)?;
        if message.class == Class::Operational && message.ack_required {
            message.deadline_s = Some(self.config.discipline.deadlines.for_precedence(message.precedence));
        }
        let payload = message_to_payload(&message);
        if payload.encode().len() > self.config.limits.payload_bytes_max {
            return Err(CoreError::invalid(
                "message_too_large",
                format!("a message is at most {} bytes encoded", self.config.limits.payload_bytes_max),
            ));
        }
        let priority = message.precedence.priority();
        let record = self.seal(now_ms, line, priority, payload, Content::Message(message.clone()))?;
        if let Some(due_ms) = message.due_ms(now_ms) {
            for member in record.recipients.clone() {
                let p = PendingAck {
                    line: record.line.id,
                    message: record.envelope.hash(),
                    member,
                    sender: self.config.me.clone(),
                    side: Side::Sender,
                    due_ms,
                    precedence: message.precedence,
                    subject: message.subject.clone(),
                    alarmed: false,
                };
                let due = p.due_ms;
                self.await_ack(p, due);
            }
        }
        Ok(record)
    }

    /// Encrypts and signs any payload on a line, without the checks an operator's draft gets.
    /// Tests use it to play a member that breaks the rules; the node never calls it.
    #[doc(hidden)]
    pub fn seal_unchecked(
        &mut self,
        now_ms: u64,
        line: LineId,
        priority: u8,
        payload: PayloadV1,
    ) -> Result<Record, CoreError> {
        let line = self.line_here(&line)?;
        self.seal(now_ms, line, priority, payload, Content::LinkTest)
    }

    /// Proposes a decision on a line: its exact text, the parties whose concurrence makes it final
    /// (all members of the line when none are named), and the version it replaces, if any.
    pub fn propose_decision(&mut self, now_ms: u64, line: LineId, decision: Decision) -> Result<Record, CoreError> {
        let line = self.line_here(&line)?;
        if !line.has_member(&self.config.me) {
            return Err(CoreError::forbidden("removed", format!("{} is not on line {}", self.config.me, line.id)));
        }
        let decision =
            if decision.parties.is_empty() { Decision { parties: line.members.clone(), ..decision } } else { decision };
        decision.check(&line, &self.config.limits)?;
        let payload = decision_to_payload(&decision);
        self.seal(now_ms, line, PRIORITY_IMMEDIATE, payload, Content::Decision(decision))
    }

    /// Answers a decision: concurs with, or declines, the text whose SHA-256 is given.
    pub fn answer_decision(&mut self, now_ms: u64, line: LineId, answer: Concurrence) -> Result<Record, CoreError> {
        let line = self.line_here(&line)?;
        if !line.has_member(&self.config.me) {
            return Err(CoreError::forbidden("removed", format!("{} is not on line {}", self.config.me, line.id)));
        }
        let reason = answer.reason.as_ref().map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
        if !answer.concur && reason.is_none() {
            return Err(CoreError::invalid("reason_required", "declining a decision needs a reason"));
        }
        if let Some(reason) = &reason {
            check_reason(reason, &self.config.limits)?;
        }
        let answer = Concurrence { reason, ..answer };
        let payload = PayloadV1::Concurrence {
            v: 1,
            decision: answer.decision.to_hex(),
            text_sha256: hex::encode(answer.text_sha256),
            concur: answer.concur,
            reason: answer.reason.clone(),
        };
        self.seal(now_ms, line, PRIORITY_IMMEDIATE, payload, Content::Concurrence(answer))
    }

    /// Attaches a translation to a message on a line (or revises one, or records its review).
    pub fn translate(&mut self, now_ms: u64, line: LineId, t: Translation) -> Result<Record, CoreError> {
        let line = self.line_here(&line)?;
        if !line.has_member(&self.config.me) {
            return Err(CoreError::forbidden("removed", format!("{} is not on line {}", self.config.me, line.id)));
        }
        t.check(&self.config.limits)?;
        let payload = PayloadV1::Translation {
            v: 1,
            original: t.original.to_hex(),
            language: t.language.clone(),
            text: t.text.clone(),
            translator: t.translator.clone(),
            reviewed_by: t.reviewed_by.clone(),
            revises: t.revises.map(|h| h.to_hex()),
        };
        self.seal(now_ms, line, adi_wire::envelope::PRIORITY_ROUTINE, payload, Content::Translation(t))
    }

    /// Encrypts any bytes as an application message of a line's group. Tests use it to craft
    /// envelopes with chain fields of their choosing; the node never calls it.
    #[doc(hidden)]
    pub fn encrypt_unchecked(&mut self, line: LineId, plaintext: &[u8]) -> Result<(u64, Vec<u8>), CoreError> {
        self.mls.encrypt(&line.0, plaintext).map_err(internal)
    }

    /// Answers an envelope on a line with this member's receipt. `priority` is the queue priority
    /// of the envelope answered, so that the answer to a FLASH travels as fast as the FLASH.
    pub fn answer(
        &mut self,
        now_ms: u64,
        line: LineId,
        answered: Answered,
        kind: ReceiptKind,
        reason: Option<String>,
        priority: u8,
    ) -> Result<Record, CoreError> {
        let line = self.line_here(&line)?;
        if answered.sender == self.config.me {
            return Err(CoreError::forbidden("own_message", "a member does not answer its own messages"));
        }
        let reason = reason.map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
        if kind == ReceiptKind::Declined && reason.is_none() {
            return Err(CoreError::invalid("reason_required", "declining needs a reason"));
        }
        if let Some(reason) = &reason {
            check_reason(reason, &self.config.limits)?;
        }
        let receipt = Receipt { kind, answers: answered, reason };
        let payload = receipt_to_payload(&receipt);
        let mut alarms = Vec::new();
        if kind.settles() {
            let me = self.config.me.clone();
            if let Some((p, _)) = self.pending.remove(&(receipt.answers.hash, me.clone())) {
                if p.alarmed {
                    alarms.push(self.alarm(
                        AlarmKind::Escalation,
                        AlarmOp::Clear,
                        &p,
                        now_ms,
                        format!("{} by {me}", kind.as_str()),
                    ));
                }
            }
        }
        let mut record = self.seal(now_ms, line, priority, payload, Content::Receipt(receipt))?;
        record.alarms = alarms;
        Ok(record)
    }

    /// Encrypts a payload for the line's group and signs it as this member's next envelope.
    fn seal(
        &mut self,
        now_ms: u64,
        line: Line,
        priority: u8,
        payload: PayloadV1,
        content: Content,
    ) -> Result<Record, CoreError> {
        // The content is signed for its place in the line before it is encrypted, so that its
        // plaintext proves itself later without any MLS key.
        let me = self.config.me.clone();
        let seq = self.heads.get(&(line.id, me.clone())).map_or(0, |h| h.0) + 1;
        let signed = SignedContent::sign(&self.config.signing_key, &line.id, me.as_str(), seq, payload.encode());
        let content_hash = signed.hash(&line.id, me.as_str(), seq);
        let encoded = signed.encode();
        self.apply_skip(&line.id)?;
        let (epoch, ciphertext) = self.mls.encrypt(&line.id.0, &encoded).map_err(internal)?;
        let entry = self.key_updates.entry(line.id).or_insert((now_ms, 0));
        entry.1 += 1;
        if entry.1 >= self.config.discipline.key_update_messages.max(1) {
            self.timers.insert((now_ms, Timer::KeyUpdate(line.id)));
        }
        let sealed = Sealed { epoch, ciphertext, content_hash };
        let record = self.sign_with(now_ms, line, priority, CONTENT_MLS, sealed, content);
        debug_assert_eq!(record.envelope.body().seq, seq);
        Ok(Record { signed_content: Some(encoded), ..record })
    }

    /// Signs this member's next envelope on a line (no signed content inside) and advances the
    /// chain head.
    #[allow(clippy::too_many_arguments)]
    fn sign(
        &mut self,
        now_ms: u64,
        line: Line,
        priority: u8,
        content_type: u8,
        epoch: u64,
        payload: Vec<u8>,
        content: Content,
    ) -> Record {
        let sealed = Sealed { epoch, ciphertext: payload, content_hash: [0; 32] };
        self.sign_with(now_ms, line, priority, content_type, sealed, content)
    }

    fn sign_with(
        &mut self,
        now_ms: u64,
        line: Line,
        priority: u8,
        content_type: u8,
        sealed: Sealed,
        content: Content,
    ) -> Record {
        let Sealed { epoch, ciphertext: payload, content_hash } = sealed;
        let me = self.config.me.clone();
        let (seq, prev) = self.heads.get(&(line.id, me.clone())).copied().unwrap_or((0, EnvelopeHash::NONE));
        let body = EnvelopeBody {
            line: line.id,
            sender: me.to_string(),
            seq: seq + 1,
            prev,
            epoch,
            created_ms: now_ms,
            priority,
            content_type,
            content_hash,
            payload,
        };
        let envelope = body.sign(&self.config.signing_key);
        self.heads.insert((line.id, me.clone()), (seq + 1, envelope.hash()));
        let recipients = line.members.iter().filter(|m| **m != me).cloned().collect();
        Record {
            envelope,
            sender: me,
            line,
            content,
            received_ms: now_ms,
            recipients,
            alarms: Vec::new(),
            signed_content: None,
        }
    }

    fn alarm(&self, kind: AlarmKind, op: AlarmOp, p: &PendingAck, now_ms: u64, detail: String) -> AlarmChange {
        let addressed_to =
            if kind == AlarmKind::Escalation { self.config.discipline.alternates.clone() } else { Vec::new() };
        AlarmChange {
            kind,
            op,
            line: p.line,
            member: p.member.clone(),
            message: Some(p.message),
            at_ms: now_ms,
            detail,
            addressed_to,
        }
    }
}
