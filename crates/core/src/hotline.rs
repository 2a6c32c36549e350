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

use std::collections::{BTreeSet, HashMap};

use adi_mls::{KeyPackage, LineMember, MlsConfig, MlsError, Processed};
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
use crate::message::{Class, Draft, Message, Precedence};
use crate::receipt::{Answered, Receipt, ReceiptKind};
use crate::roster::{MemberCode, Roster};

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
}

/// What an envelope carries, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    LineSetup,
    Message(Message),
    Receipt(Receipt),
    LinkTest,
    /// An MLS proposal or commit of the line's group (a key update).
    Handshake,
    Decision(Decision),
    Concurrence(Concurrence),
    Translation(Translation),
}

impl Content {
    /// The kind stored beside the envelope.
    pub fn kind(&self) -> &'static str {
        match self {
            Content::LineSetup => "line_setup",
            Content::Message(_) => "message",
            Content::Receipt(_) => "receipt",
            Content::LinkTest => "link_test",
            Content::Handshake => "handshake",
            Content::Decision(_) => "decision",
            Content::Concurrence(_) => "concurrence",
            Content::Translation(_) => "translation",
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
}

/// How many epochs the home member keeps in hand below the past-epoch window when it decides
/// whether a key update may leave a silent member behind: commits already in flight.
const EPOCH_MARGIN: u64 = 2;

/// Measures a peer's clock from its answer to a link test, signed at `signed_ms` on its clock,
/// against the middle of the test's round trip on this node's clock, and raises the `clock`
/// alarm when the two are further apart than `offset_max` even allowing for half the round trip;
/// clears it once they are within `offset_max` again.
fn clock_check(
    l: &mut LinkHealth,
    signed_ms: u64,
    sent_ms: u64,
    rtt_ms: u64,
    offset_max: u64,
    now_ms: u64,
) -> Option<AlarmChange> {
    let middle = sent_ms.saturating_add(rtt_ms / 2);
    let offset = signed_ms as i64 - middle as i64;
    l.offset_ms = Some(offset);
    let off = offset.unsigned_abs();
    let way = if offset > 0 { "ahead of" } else { "behind" };
    let op = if !l.clock_alarmed && off > offset_max.saturating_add(rtt_ms / 2) {
        AlarmOp::Raise
    } else if l.clock_alarmed && off <= offset_max {
        AlarmOp::Clear
    } else {
        return None;
    };
    l.clock_alarmed = op == AlarmOp::Raise;
    let detail = format!(
        "{}'s clock is {} {way} this node's (a link test, within {} ms; the bound is clock_offset_ms_max = {offset_max})",
        l.peer,
        human_ms(off),
        rtt_ms / 2
    );
    Some(AlarmChange {
        kind: AlarmKind::Clock,
        op,
        line: l.line,
        member: l.peer.clone(),
        message: None,
        at_ms: now_ms,
        detail,
        addressed_to: Vec::new(),
    })
}

/// The roster's signing keys, as MLS checks credentials against them.
fn roster_keys(roster: &Roster) -> impl Fn(&str) -> Option<[u8; 32]> + '_ {
    |code: &str| MemberCode::parse(code).ok().and_then(|c| roster.member(&c)).map(|m| m.signing_key.to_bytes())
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
        let mut h = Hotline {
            mls,
            heard,
            known,
            key_updates: HashMap::new(),
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

    /// Signs a checkpoint of this member's log of a line: `size` entries with `root`.
    pub fn sign_checkpoint(
        &self,
        line: LineId,
        size: u64,
        root: Hash,
        now_ms: u64,
    ) -> Result<SignedCheckpoint, CoreError> {
        let checkpoint = Checkpoint { line: line.0, signer: self.config.me.to_string(), size, root, time_ms: now_ms };
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

    /// When the core next needs [`Hotline::tick`].
    pub fn next_wake(&self) -> Option<u64> {
        self.timers.first().map(|(t, _)| *t)
    }

    fn add_line(&mut self, line: Line, now_ms: u64) {
        let update_s = self.config.discipline.key_update_interval_s;
        if update_s > 0 {
            self.key_updates.insert(line.id, (now_ms, 0));
            self.timers.insert((now_ms + update_s * 1000, Timer::KeyUpdate(line.id)));
        }
        let interval = self.config.discipline.link_test_interval_s;
        if line.is_direct() && interval > 0 {
            if let Some(peer) = line.members.iter().find(|m| **m != self.config.me).cloned() {
                self.links.insert(
                    line.id,
                    LinkHealth {
                        line: line.id,
                        peer,
                        outstanding: None,
                        last_ok_ms: None,
                        last_rtt_ms: None,
                        offset_ms: None,
                        clock_alarmed: false,
                        alarmed: false,
                        next_test_ms: now_ms,
                    },
                );
                self.timers.insert((now_ms, Timer::LinkTest(line.id)));
            }
        }
        self.lines.insert(line.id, line);
    }

    fn await_ack(&mut self, p: PendingAck, wake_ms: u64) {
        let key = (p.message, p.member.clone());
        self.timers.insert((wake_ms, Timer::Ack(p.message, p.member.clone())));
        self.pending.insert(key, (p, wake_ms));
    }

    /// Checks a request for a new line and returns the other members, whose KeyPackages the
    /// runtime must claim before [`Hotline::create_line`].
    pub fn check_new_line(&self, req: &NewLine) -> Result<Vec<MemberCode>, CoreError> {
        let (_, members, _) = self.plan_line(req)?;
        Ok(members.into_iter().filter(|m| *m != self.config.me).collect())
    }

    fn plan_line(&self, req: &NewLine) -> Result<(Scope, Vec<MemberCode>, String), CoreError> {
        let scope = Scope::parse(&req.scope).ok_or_else(|| {
            CoreError::invalid("bad_scope", format!("unknown scope '{}', expected ADMM or ADMM-Plus", req.scope))
        })?;
        if self.lines.len() >= self.config.limits.lines_max {
            return Err(CoreError::conflict(
                "too_many_lines",
                format!("this node holds the most lines it may ({})", self.config.limits.lines_max),
            ));
        }
        let title = req.title.clone().unwrap_or_default();
        let me = self.config.me.clone();
        let members = check_line(&self.config.roster, &self.config.limits, scope, &me, &req.members, &title)?;
        if members.len() == 2 {
            let existing = self.lines.values().find(|l| l.scope == scope && l.members == members);
            if let Some(l) = existing {
                return Err(CoreError::conflict(
                    "line_exists",
                    format!(
                        "a direct line of scope {} between {} and {} exists: {}",
                        scope.as_str(),
                        members[0],
                        members[1],
                        l.id
                    ),
                ));
            }
        }
        Ok((scope, members, title))
    }

    /// Creates a line with this member as its home: makes the line's MLS group with the other
    /// members' KeyPackages (one each, claimed and checked by the runtime) and announces the line
    /// with the group's Welcome.
    pub fn create_line(
        &mut self,
        now_ms: u64,
        id: LineId,
        req: NewLine,
        key_packages: Vec<(MemberCode, KeyPackage)>,
    ) -> Result<Record, CoreError> {
        let (scope, members, title) = self.plan_line(&req)?;
        if self.lines.contains_key(&id) || self.mls.has_line(&id.0) {
            return Err(CoreError::conflict("line_exists", format!("line {id} exists")));
        }
        let me = self.config.me.clone();
        let mut expected: Vec<&MemberCode> = members.iter().filter(|m| **m != me).collect();
        let mut given: Vec<&MemberCode> = key_packages.iter().map(|(m, _)| m).collect();
        expected.sort();
        given.sort();
        if expected != given {
            return Err(internal("the KeyPackages do not match the line's members"));
        }
        let created =
            self.mls.create_line(id.0, key_packages.into_iter().map(|(_, kp)| kp).collect()).map_err(internal)?;
        let line = Line { id, scope, title, home: me.clone(), members, created_ms: now_ms };
        let payload = PayloadV1::LineSetup {
            v: 1,
            scope: scope.as_str().to_string(),
            title: line.title.clone(),
            home: me.to_string(),
            members: line.members.iter().map(|m| m.to_string()).collect(),
            welcome: created.welcome.map(hex::encode),
        };
        self.add_line(line.clone(), now_ms);
        self.hear_joined(&line);
        Ok(self.sign(now_ms, line, PRIORITY_CONTROL, CONTENT_MLS_SETUP, 0, payload.encode(), Content::LineSetup))
    }

    /// Sends an operator's message on a line. `released_by` names the principal who released it.
    pub fn send(
        &mut self,
        now_ms: u64,
        line: LineId,
        draft: Draft,
        released_by: Option<String>,
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
        if let Some(deadline_s) = message.deadline_s.filter(|_| message.has_deadline()) {
            for member in record.recipients.clone() {
                let p = PendingAck {
                    line: record.line.id,
                    message: record.envelope.hash(),
                    member,
                    side: Side::Sender,
                    due_ms: now_ms + deadline_s * 1000,
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

    /// The MLS epoch of a line's group.
    pub fn epoch(&self, line: &LineId) -> Option<u64> {
        self.mls.epoch(&line.0)
    }

    /// Refreshes this member's keys on a line for post-compromise security: the home member
    /// commits (its own new leaf and every pending proposal); another member proposes its update
    /// for the home member to commit.
    pub fn update_keys(&mut self, now_ms: u64, line: LineId) -> Result<Record, CoreError> {
        let line = self.line_here(&line)?;
        self.key_updates.insert(line.id, (now_ms, 0));
        if line.home == self.config.me {
            return self.commit_line(now_ms, &line, true);
        }
        let epoch = self.mls.epoch(&line.id.0).unwrap_or(0);
        let proposal = self.mls.propose_update(&line.id.0).map_err(internal)?;
        Ok(self.sign(now_ms, line, PRIORITY_CONTROL, CONTENT_MLS, epoch, proposal, Content::Handshake))
    }

    /// Leaves a conference (any member but the home member): proposes this member's removal,
    /// which the home member commits; from that commit on this member reads nothing sent.
    pub fn leave(&mut self, now_ms: u64, line: LineId) -> Result<Record, CoreError> {
        let line = self.line_here(&line)?;
        if !line.has_member(&self.config.me) {
            return Err(CoreError::forbidden("removed", format!("{} is not on line {}", self.config.me, line.id)));
        }
        if line.home == self.config.me {
            return Err(CoreError::forbidden(
                "home_stays",
                "the home member stays on its line; it removes the other members instead",
            ));
        }
        if line.members.len() <= 2 {
            return Err(CoreError::conflict("cannot_leave", "a direct line keeps both its members"));
        }
        let epoch = self.mls.epoch(&line.id.0).unwrap_or(0);
        let proposal = self.mls.propose_leave(&line.id.0).map_err(internal)?;
        Ok(self.sign(now_ms, line, PRIORITY_CONTROL, CONTENT_MLS, epoch, proposal, Content::Handshake))
    }

    /// A line this node holds.
    fn line_here(&self, id: &LineId) -> Result<Line, CoreError> {
        self.lines.get(id).cloned().ok_or_else(|| CoreError::not_found("unknown_line", format!("no line {id} here")))
    }

    /// A line whose members this node may change: it is the line's home member.
    fn home_line(&self, id: &LineId) -> Result<Line, CoreError> {
        let line = self.line_here(id)?;
        if line.home != self.config.me {
            return Err(CoreError::forbidden(
                "not_home",
                format!("only {}, the line's home member, changes its members", line.home),
            ));
        }
        Ok(line)
    }

    /// Removes a member from a conference (home member only): commits the removal, after which
    /// the member reads nothing sent on the line.
    pub fn remove_member(&mut self, now_ms: u64, line: LineId, member: &MemberCode) -> Result<Record, CoreError> {
        let line = self.home_line(&line)?;
        if !line.has_member(member) {
            return Err(CoreError::not_found("not_on_line", format!("{member} is not on line {}", line.id)));
        }
        if *member == self.config.me || line.members.len() <= 2 {
            return Err(CoreError::conflict(
                "cannot_remove",
                "a line keeps its home member and at least two members; close a direct line instead",
            ));
        }
        let epoch = self.mls.epoch(&line.id.0).unwrap_or(0);
        let out = self.mls.remove(&line.id.0, &[member.as_str()]).map_err(internal)?;
        let recipients: Vec<MemberCode> = line.members.iter().filter(|m| **m != self.config.me).cloned().collect();
        let line = self.follow_membership(&line);
        let mut record = self.sign(now_ms, line, PRIORITY_CONTROL, CONTENT_MLS, epoch, out.commit, Content::Handshake);
        // The removed member receives the commit too, so that its node knows it is off the line.
        record.recipients = recipients;
        Ok(record)
    }

    /// Checks that a member may be added to a line (home member only, scope policy, limits).
    pub fn check_new_member(&self, line: LineId, member: &MemberCode) -> Result<Line, CoreError> {
        let line = self.home_line(&line)?;
        if line.has_member(member) {
            return Err(CoreError::conflict("already_on_line", format!("{member} is on line {} already", line.id)));
        }
        let mut members: Vec<String> = line.members.iter().map(|m| m.to_string()).collect();
        members.push(member.to_string());
        check_line(&self.config.roster, &self.config.limits, line.scope, &self.config.me, &members, &line.title)?;
        Ok(line)
    }

    /// Adds a member to a line (home member only) from its KeyPackage: commits the addition to the
    /// members, and brings the new member in with a set-up carrying the Welcome. The new member
    /// reads nothing sent before.
    pub fn add_member(
        &mut self,
        now_ms: u64,
        line: LineId,
        member: &MemberCode,
        key_package: KeyPackage,
    ) -> Result<Vec<Record>, CoreError> {
        let line = self.check_new_member(line, member)?;
        let epoch = self.mls.epoch(&line.id.0).unwrap_or(0);
        let out = self.mls.add(&line.id.0, vec![key_package]).map_err(internal)?;
        let others: Vec<MemberCode> = line.members.iter().filter(|m| **m != self.config.me).cloned().collect();
        let line = self.follow_membership(&line);
        let mut commit =
            self.sign(now_ms, line.clone(), PRIORITY_CONTROL, CONTENT_MLS, epoch, out.commit, Content::Handshake);
        commit.recipients = others;
        let payload = PayloadV1::LineSetup {
            v: 1,
            scope: line.scope.as_str().to_string(),
            title: line.title.clone(),
            home: line.home.to_string(),
            members: line.members.iter().map(|m| m.to_string()).collect(),
            welcome: out.welcome.map(hex::encode),
        };
        let mut setup =
            self.sign(now_ms, line, PRIORITY_CONTROL, CONTENT_MLS_SETUP, 0, payload.encode(), Content::LineSetup);
        setup.recipients = vec![member.clone()];
        Ok(vec![commit, setup])
    }

    /// Brings a line's member list in line with its MLS group after a commit.
    fn follow_membership(&mut self, line: &Line) -> Line {
        let mut members: Vec<MemberCode> =
            self.mls.members(&line.id.0).iter().filter_map(|m| MemberCode::parse(m).ok()).collect();
        members.sort();
        if members.is_empty() || members == line.members {
            return line.clone();
        }
        let updated = Line { members, ..line.clone() };
        self.lines.insert(updated.id, updated.clone());
        self.hear_joined(&updated);
        updated
    }

    /// A member of the line the home member has not heard from for so many epochs that one more
    /// commit could leave envelopes queued for it, or by it, beyond the past epochs kept.
    pub fn member_behind(&self, line: &Line) -> Option<(MemberCode, u64)> {
        let current = self.mls.epoch(&line.id.0)?;
        let window = MlsConfig::default().past_epochs_max as u64;
        line.members
            .iter()
            .filter(|m| **m != self.config.me)
            .map(|m| (m.clone(), self.heard.get(&(line.id, m.clone())).copied().unwrap_or(0)))
            .filter(|(_, heard)| current + 1 > heard + window.saturating_sub(EPOCH_MARGIN))
            .min_by_key(|(_, heard)| *heard)
    }

    /// Notes that `member` showed itself at `epoch` of a line.
    fn hear(&mut self, line: LineId, member: &MemberCode, epoch: u64) {
        let e = self.heard.entry((line, member.clone())).or_insert(epoch);
        *e = (*e).max(epoch);
        self.known.insert((line, member.clone()));
    }

    /// Notes every member of a line not heard from yet as being at the line's current epoch: a
    /// member that joins is there.
    fn hear_joined(&mut self, line: &Line) {
        let epoch = self.mls.epoch(&line.id.0).unwrap_or(0);
        for m in &line.members {
            self.heard.entry((line.id, m.clone())).or_insert(epoch);
            self.known.insert((line.id, m.clone()));
        }
    }

    /// The home member's commit of its own new leaf and every pending proposal, unless a member
    /// has fallen so far behind that it would lose what is queued ([`Hotline::member_behind`]).
    /// A commit that carries a member's leaving is not held back (`wait_for_members` false).
    fn commit_line(&mut self, now_ms: u64, line: &Line, wait_for_members: bool) -> Result<Record, CoreError> {
        let behind = if wait_for_members { self.member_behind(line) } else { None };
        if let Some((member, heard)) = behind {
            return Err(CoreError::conflict(
                "member_behind",
                format!(
                    "{member} was last heard from at epoch {heard}; another key update now could leave envelopes \
                     queued for it beyond the {} past epochs kept, so key updates wait until it is heard from",
                    MlsConfig::default().past_epochs_max
                ),
            ));
        }
        let out = self.mls.commit_proposals(&line.id.0).map_err(internal)?;
        self.key_updates.insert(line.id, (now_ms, 0));
        let made_in = out.epoch.saturating_sub(1);
        // A pending leaving changes the members: the one leaving still receives the commit.
        let recipients: Vec<MemberCode> = line.members.iter().filter(|m| **m != self.config.me).cloned().collect();
        let line = self.follow_membership(line);
        let mut record =
            self.sign(now_ms, line, PRIORITY_CONTROL, CONTENT_MLS, made_in, out.commit, Content::Handshake);
        record.recipients = recipients;
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
        if reason.as_ref().is_some_and(|r| r.chars().count() > self.config.limits.subject_chars_max * 5) {
            return Err(CoreError::invalid(
                "reason_too_long",
                format!("a reason is at most {} characters", self.config.limits.subject_chars_max * 5),
            ));
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

    /// Decides on one envelope from `peer`, the member authenticated by the TLS connection.
    ///
    /// Returns the record to commit and, for a link test, this node's automatic answer after it.
    /// Idempotence on (line, sender, sequence) is the store's to enforce when it commits: this
    /// decides whether the envelope is acceptable at all.
    pub fn receive(&mut self, now_ms: u64, peer: &MemberCode, bytes: &[u8]) -> Result<Vec<Record>, Refusal> {
        let limits = &self.config.limits;
        let envelope = Envelope::decode(bytes, limits.envelope_bytes_max, limits.payload_bytes_max)
            .map_err(|e| Refusal::reject(RefusalCode::Malformed, format!("malformed envelope: {e}")))?;
        let body = envelope.body();
        if body.sender != peer.as_str() {
            return Err(Refusal::reject(
                RefusalCode::Relayed,
                format!("envelope from {} arrived over {peer}'s connection; relaying is not supported", body.sender),
            ));
        }
        let sender = peer.clone();
        let member = self
            .config
            .roster
            .member(&sender)
            .ok_or_else(|| Refusal::reject(RefusalCode::NotInRoster, format!("{sender} is not in the roster")))?;
        let envelope = envelope
            .verify(&member.signing_key)
            .map_err(|e| Refusal::reject(RefusalCode::BadSignature, e.to_string()))?;
        let body = envelope.body();
        if body.content_type == CONTENT_MLS_SETUP {
            let payload = PayloadV1::decode(&body.payload)
                .map_err(|e| Refusal::reject(RefusalCode::Malformed, format!("bad line setup: {e}")))?;
            let PayloadV1::LineSetup { scope, title, home, members, welcome, .. } = payload else {
                return Err(Refusal::reject(RefusalCode::BadLineSetup, "a set-up envelope carries a line set-up"));
            };
            let line = self.check_setup(&sender, &envelope, &scope, title, &home, &members)?;
            let rejoining = self.lines.get(&line.id).is_some_and(|l| !l.has_member(&self.config.me));
            if rejoining && !self.mls.is_active(&line.id.0) {
                self.mls
                    .forget(&line.id.0)
                    .map_err(|e| Refusal::defer(RefusalCode::NotReady, format!("cannot rejoin yet: {e}")))?;
            }
            if !self.mls.has_line(&line.id.0) {
                let welcome = welcome
                    .and_then(|w| hex::decode(w).ok())
                    .ok_or_else(|| Refusal::reject(RefusalCode::BadLineSetup, "the line set-up carries no Welcome"))?;
                let joined = self.mls.join(&welcome, &roster_keys(&self.config.roster)).map_err(|e| {
                    Refusal::reject(RefusalCode::BadLineSetup, format!("cannot join the line's group: {e}"))
                })?;
                let mut in_group = self.mls.members(&joined);
                in_group.sort();
                let listed: Vec<String> = line.members.iter().map(|m| m.to_string()).collect();
                if joined != line.id.0 || in_group != listed {
                    return Err(Refusal::reject(
                        RefusalCode::BadLineSetup,
                        "the Welcome does not match the line set-up",
                    ));
                }
            }
            self.check_seq(&line, &sender, &envelope)?;
            if rejoining {
                self.lines.insert(line.id, line.clone());
                self.hear_joined(&line);
            } else if !self.lines.contains_key(&line.id) {
                self.add_line(line.clone(), now_ms);
                self.hear_joined(&line);
            }
            return Ok(vec![Record {
                envelope,
                sender,
                line,
                content: Content::LineSetup,
                received_ms: now_ms,
                recipients: Vec::new(),
                alarms: Vec::new(),
                signed_content: None,
            }]);
        }
        if body.content_type != CONTENT_MLS {
            return Err(Refusal::reject(
                RefusalCode::UnsupportedContent,
                format!("content type {} is not accepted: lines carry MLS messages only", body.content_type),
            ));
        }
        let line = match self.lines.get(&body.line) {
            Some(l) => l.clone(),
            None => {
                return Err(Refusal::defer(
                    RefusalCode::UnknownLine,
                    format!("line {} is not known here yet", body.line),
                ))
            }
        };
        if !line.has_member(&self.config.me) {
            // A sender addresses this member at an epoch only where it is a member. An envelope
            // from after the last epoch this member saw on the line means a commit added it
            // again, and the Welcome of that addition has not arrived yet: the envelope waits for
            // it (refused now, it could never be read, and a commit naming it would block).
            let last = self.mls.epoch(&line.id.0);
            if last.is_some_and(|last| body.epoch > last) {
                return Err(Refusal::defer(
                    RefusalCode::AwaitingWelcome,
                    format!(
                        "{} was taken off line {} at epoch {}; the Welcome that adds it again has not arrived yet",
                        self.config.me,
                        line.id,
                        last.unwrap_or(0)
                    ),
                ));
            }
            return Err(Refusal::reject(
                RefusalCode::RecipientNotOnLine,
                format!("{} is no longer on line {}", self.config.me, line.id),
            ));
        }
        let current = self.mls.epoch(&line.id.0).unwrap_or(0);
        // Membership is judged at the envelope's epoch: a member removed since may have sent it
        // from an earlier epoch while on the line (MLS reads it only if its sender was a member
        // at that epoch), and a member added by a commit not read here yet sends from that
        // commit's epoch (held below until the commit arrives). The members this node has known
        // on the line survive its restarts (`Restored::known`).
        let was_member = self.known.contains(&(line.id, sender.clone()));
        if !line.has_member(&sender) && (body.epoch == current || (body.epoch < current && !was_member)) {
            return Err(Refusal::reject(
                RefusalCode::NotMember,
                format!("{sender} is not a member of line {}", line.id),
            ));
        }
        self.check_seq_ahead(&line.id, &sender, body.seq)?;
        if body.epoch > current {
            let held = HeldEnvelope {
                line: line.id,
                sender: sender.clone(),
                seq: body.seq,
                epoch: body.epoch,
                hash: envelope.hash(),
                bytes: envelope.bytes().to_vec(),
                received_ms: now_ms,
            };
            return Err(Refusal {
                hold: Some(Box::new(held)),
                ..Refusal::defer(
                    RefusalCode::EpochAhead,
                    format!("epoch {} is ahead of this member's {current}", body.epoch),
                )
            });
        }
        let processed =
            match self.mls.process(&line.id.0, line.home.as_str(), &body.payload, &roster_keys(&self.config.roster)) {
                Ok(p) => p,
                // A member's key update that crossed the home member's commit is outdated, not
                // undecryptable: it is refused without an alarm, and its member proposes again
                // when the commit reaches it.
                Err(e @ MlsError::StaleProposal { .. }) => {
                    return Err(Refusal::reject(RefusalCode::Outdated, format!("outdated: {e}")))
                }
                Err(e @ MlsError::Proposal(_)) => return Err(Refusal::reject(RefusalCode::BadProposal, e.to_string())),
                // The proposal travels from its member on another link and may arrive after the
                // home member's commit: the sender tries the commit again later.
                Err(e @ MlsError::MissingProposal) => {
                    return Err(Refusal::defer(RefusalCode::MissingProposal, e.to_string()))
                }
                Err(e) => {
                    let reason = format!("cannot decrypt: {e}");
                    let alarm = AlarmChange {
                        kind: AlarmKind::Undecryptable,
                        op: AlarmOp::Raise,
                        line: line.id,
                        member: sender.clone(),
                        message: Some(envelope.hash()),
                        at_ms: now_ms,
                        detail: format!("envelope #{} from {sender} cannot be decrypted: {e}", body.seq),
                        addressed_to: Vec::new(),
                    };
                    return Err(Refusal {
                        retry: false,
                        code: RefusalCode::Undecryptable,
                        reason,
                        alarm: Some(Box::new(alarm)),
                        hold: None,
                    });
                }
            };
        let plaintext = match processed {
            Processed::Application { sender: author, plaintext, .. } if author == sender.as_str() => plaintext,
            Processed::Application { sender: author, .. } => {
                return Err(Refusal::reject(
                    RefusalCode::SenderMismatch,
                    format!("the MLS sender {author} is not the envelope's sender {sender}"),
                ));
            }
            Processed::Buffered { epoch } => {
                return Err(Refusal::defer(
                    RefusalCode::EpochAhead,
                    format!("epoch {epoch} is ahead of this member's"),
                ));
            }
            Processed::Commit { .. } | Processed::Proposal { .. } => {
                self.check_seq(&line, &sender, &envelope)?;
                if let Processed::Commit { update_dropped: true, .. } = processed {
                    // This member's update crossed the commit: it proposes again at the next tick.
                    self.timers.insert((now_ms, Timer::KeyUpdate(line.id)));
                    let due = self.config.discipline.key_update_messages.max(1);
                    self.key_updates.entry(line.id).or_insert((now_ms, 0)).1 = due;
                }
                let proposal = matches!(processed, Processed::Proposal { .. });
                let leaving = matches!(processed, Processed::Proposal { leaving: true, .. });
                // A commit may have changed who is on the line: the group's members are the truth.
                let line = if proposal { line } else { self.follow_membership(&line) };
                let mut out = vec![Record {
                    envelope,
                    sender,
                    line: line.clone(),
                    content: Content::Handshake,
                    received_ms: now_ms,
                    recipients: Vec::new(),
                    alarms: Vec::new(),
                    signed_content: None,
                }];
                // The home member commits a member's key update at once.
                if proposal && line.home == self.config.me {
                    if let Ok(commit) = self.commit_line(now_ms, &line, !leaving) {
                        out.push(commit);
                    }
                }
                return Ok(out);
            }
        };
        // The content carries its author's signature for this place in the line, and is the one
        // the envelope names.
        let signed = SignedContent::decode(&plaintext)
            .map_err(|e| Refusal::reject(RefusalCode::Malformed, format!("bad content: {e}")))?;
        let author_key = self.config.roster.member(&sender).map(|m| m.signing_key);
        let checked = author_key
            .ok_or_else(|| Refusal::reject(RefusalCode::NotInRoster, format!("{sender} is not in the roster")))?;
        signed
            .verify(&checked, &body.line, body.sender.as_str(), body.seq, &body.content_hash)
            .map_err(|e| Refusal::reject(RefusalCode::BadSignature, format!("content refused: {e}")))?;
        let payload = PayloadV1::decode(&signed.content)
            .map_err(|e| Refusal::reject(RefusalCode::Malformed, format!("bad payload: {e}")))?;
        let content = match payload {
            PayloadV1::LineSetup { .. } => {
                return Err(Refusal::reject(RefusalCode::Malformed, "a line set-up inside a line's messages"))
            }
            PayloadV1::Message { .. } => {
                let message = message_from_payload(payload).map_err(|e| Refusal::reject(RefusalCode::Malformed, e))?;
                message
                    .check(&self.config.limits)
                    .map_err(|e| Refusal::reject(RefusalCode::ContentRefused, e.message))?;
                if message.precedence.priority() != body.priority {
                    return Err(Refusal::reject(
                        RefusalCode::ContentRefused,
                        "the envelope's priority does not match the message's precedence",
                    ));
                }
                Content::Message(message)
            }
            PayloadV1::Receipt { .. } => {
                let receipt = receipt_from_payload(payload).map_err(|e| Refusal::reject(RefusalCode::Malformed, e))?;
                if receipt.answers.sender == sender {
                    return Err(Refusal::reject(
                        RefusalCode::ContentRefused,
                        format!("{sender} answered its own envelope; only its recipients may answer it"),
                    ));
                }
                // The answered message's sender may have left the line since it sent it; the store
                // checks the answer against the envelope it names when it holds it.
                if self.config.roster.member(&receipt.answers.sender).is_none() {
                    return Err(Refusal::reject(
                        RefusalCode::ContentRefused,
                        "the answered envelope's sender is not in the roster",
                    ));
                }
                if receipt.kind == ReceiptKind::Declined && receipt.reason.is_none() {
                    return Err(Refusal::reject(RefusalCode::ContentRefused, "a decline carries a reason"));
                }
                Content::Receipt(receipt)
            }
            PayloadV1::LinkTest { .. } => {
                if !line.is_direct() {
                    return Err(Refusal::reject(RefusalCode::ContentRefused, "link tests run on direct lines only"));
                }
                Content::LinkTest
            }
            p @ PayloadV1::Decision { .. } => {
                let decision = decision_from_payload(p).map_err(|e| Refusal::reject(RefusalCode::Malformed, e))?;
                // The proposer named the parties on the line as it knew it; one of them may have
                // been taken off since, as this node knows it: a party this node has known on the
                // line counts.
                let mut known = line.clone();
                known.members.extend(
                    self.known.iter().filter(|(l, m)| *l == line.id && !line.has_member(m)).map(|(_, m)| m.clone()),
                );
                known.members.sort();
                known.members.dedup();
                decision
                    .check(&known, &self.config.limits)
                    .map_err(|e| Refusal::reject(RefusalCode::ContentRefused, e.message))?;
                Content::Decision(decision)
            }
            PayloadV1::Translation { original, language, text, translator, reviewed_by, revises, .. } => {
                let hash = |s: &str| {
                    EnvelopeHash::from_hex(s)
                        .ok_or_else(|| Refusal::reject(RefusalCode::Malformed, "a hash is not 32 bytes of hex"))
                };
                let t = Translation {
                    original: hash(&original)?,
                    language,
                    text,
                    translator,
                    reviewed_by,
                    revises: revises.as_deref().map(hash).transpose()?,
                };
                t.check(&self.config.limits).map_err(|e| Refusal::reject(RefusalCode::ContentRefused, e.message))?;
                Content::Translation(t)
            }
            p @ PayloadV1::Concurrence { .. } => {
                let answer = concurrence_from_payload(p).map_err(|e| Refusal::reject(RefusalCode::Malformed, e))?;
                if answer.reason.as_ref().is_some_and(|r| r.chars().count() > self.config.limits.subject_chars_max * 5)
                {
                    return Err(Refusal::reject(RefusalCode::ContentRefused, "the reason is too long"));
                }
                Content::Concurrence(answer)
            }
        };
        self.check_seq(&line, &sender, &envelope)?;
        let mut record = Record {
            envelope,
            sender: sender.clone(),
            line: line.clone(),
            content,
            received_ms: now_ms,
            recipients: Vec::new(),
            alarms: Vec::new(),
            signed_content: Some(plaintext),
        };
        let mut out = Vec::new();
        match &record.content {
            Content::Message(m) if m.has_deadline() => {
                // Judged from when this node received the message, on its own clock: the sender's
                // claimed time may be hours off, by fault or by design.
                let deadline_s = m.deadline_s.unwrap_or(0);
                let p = PendingAck {
                    line: line.id,
                    message: record.envelope.hash(),
                    member: self.config.me.clone(),
                    side: Side::Recipient,
                    due_ms: now_ms.saturating_add(deadline_s.saturating_mul(1000)),
                    precedence: m.precedence,
                    subject: m.subject.clone(),
                    alarmed: false,
                };
                if !self.pending.contains_key(&(p.message, p.member.clone())) {
                    let due = p.due_ms;
                    self.await_ack(p, due);
                }
            }
            _ => {}
        }
        // The node answers some envelopes itself: a message with its signed word that it was
        // decrypted, a link test with its answer.
        let auto = match &record.content {
            Content::Message(m) => Some((ReceiptKind::Decrypted, m.precedence.priority())),
            Content::LinkTest => Some((ReceiptKind::LinkTestAnswer, PRIORITY_CONTROL)),
            Content::Receipt(r) => {
                let signed_ms = record.envelope.body().created_ms;
                record.alarms = self.on_receipt(now_ms, &sender, r, signed_ms);
                None
            }
            _ => None,
        };
        let answered = Answered { hash: record.envelope.hash(), sender, seq: record.envelope.body().seq };
        out.push(record);
        if let Some((kind, priority)) = auto {
            let receipt = Receipt { kind, answers: answered, reason: None };
            let payload = receipt_to_payload(&receipt);
            // The message is decrypted and its keys spent: it is kept even if the answer cannot be
            // sealed, which only a broken group state could cause.
            if let Ok(answer) = self.seal(now_ms, line, priority, payload, Content::Receipt(receipt)) {
                out.push(answer);
            }
        }
        Ok(out)
    }

    /// What a receipt from `from`, signed at `signed_ms` on its clock, settles here: an awaited
    /// acknowledgement or a link test.
    fn on_receipt(&mut self, now_ms: u64, from: &MemberCode, r: &Receipt, signed_ms: u64) -> Vec<AlarmChange> {
        let offset_max = self.config.discipline.clock_offset_ms_max;
        let mut alarms = Vec::new();
        if r.kind.settles() {
            if let Some((p, _)) = self.pending.remove(&(r.answers.hash, from.clone())) {
                let why = match &r.reason {
                    Some(reason) => format!("{} by {from}: {reason}", r.kind.as_str()),
                    None => format!("{} by {from}", r.kind.as_str()),
                };
                // An answer first held here after the deadline is late whatever the recipient's
                // clock signed, and whether or not this node was running to see the deadline
                // pass: the alarm is raised for the record and cleared by the answer at once.
                if !p.alarmed && p.side == Side::Sender && now_ms > p.due_ms {
                    let late = human_ms(now_ms - p.due_ms);
                    let detail = format!(
                        "no acknowledgement from {from} for {} '{}' by its deadline: the answer came {late} late",
                        p.precedence.as_str(),
                        p.subject
                    );
                    alarms.push(self.alarm(AlarmKind::Unacknowledged, AlarmOp::Raise, &p, now_ms, detail));
                    alarms.push(self.alarm(AlarmKind::Unacknowledged, AlarmOp::Clear, &p, now_ms, why));
                } else if p.alarmed {
                    alarms.push(self.alarm(AlarmKind::Unacknowledged, AlarmOp::Clear, &p, now_ms, why));
                }
            }
        }
        if r.kind == ReceiptKind::LinkTestAnswer {
            let line = self
                .links
                .values_mut()
                .find(|l| l.peer == *from && l.outstanding.is_some_and(|o| o.0 == r.answers.hash));
            if let Some(l) = line {
                let sent = l.outstanding.map(|o| o.1).unwrap_or(now_ms);
                let rtt = now_ms.saturating_sub(sent);
                l.outstanding = None;
                l.last_ok_ms = Some(now_ms);
                l.last_rtt_ms = Some(rtt);
                alarms.extend(clock_check(l, signed_ms, sent, rtt, offset_max, now_ms));
                if l.alarmed {
                    l.alarmed = false;
                    alarms.push(AlarmChange {
                        kind: AlarmKind::LinkNoAnswer,
                        op: AlarmOp::Clear,
                        line: l.line,
                        member: l.peer.clone(),
                        message: None,
                        at_ms: now_ms,
                        detail: format!("{from} answers again (round trip {} ms)", now_ms.saturating_sub(sent)),
                        addressed_to: Vec::new(),
                    });
                }
            }
        }
        alarms
    }

    /// Stops waiting for `member`'s acknowledgement of `message`: the store holds its answer
    /// already. Used when a message arrives again after this member answered it.
    pub fn forget_ack(&mut self, message: &EnvelopeHash, member: &MemberCode) {
        self.pending.remove(&(*message, member.clone()));
    }

    /// Lets time pass: fires deadlines, repeats escalations, sends due link tests and raises the
    /// alarm of a test left unanswered.
    pub fn tick(&mut self, now_ms: u64) -> WriteBatch {
        let mut batch = WriteBatch::default();
        let repeat_ms = self.config.discipline.escalation_repeat_s.max(1) * 1000;
        let interval_ms = self.config.discipline.link_test_interval_s * 1000;
        while let Some((t, timer)) = self.timers.first().cloned() {
            if t > now_ms {
                break;
            }
            self.timers.pop_first();
            match timer {
                Timer::Ack(hash, member) => {
                    let Some((p, wake)) = self.pending.get(&(hash, member.clone())).cloned() else { continue };
                    if wake != t {
                        continue;
                    }
                    let overdue = human_ms(now_ms.saturating_sub(p.due_ms));
                    match p.side {
                        Side::Sender => {
                            if !p.alarmed {
                                let detail = format!(
                                    "no acknowledgement from {member} for {} '{}': overdue by {overdue}",
                                    p.precedence.as_str(),
                                    p.subject
                                );
                                batch.alarms.push(self.alarm(
                                    AlarmKind::Unacknowledged,
                                    AlarmOp::Raise,
                                    &p,
                                    now_ms,
                                    detail,
                                ));
                                self.pending.insert((hash, member), (PendingAck { alarmed: true, ..p }, t));
                            }
                        }
                        Side::Recipient => {
                            let op = if p.alarmed { AlarmOp::Repeat } else { AlarmOp::Raise };
                            let detail = format!(
                                "{} '{}' from {} awaits this member's acknowledgement: overdue by {overdue}",
                                p.precedence.as_str(),
                                p.subject,
                                self.lines.get(&p.line).map(|l| l.home.to_string()).unwrap_or_default()
                            );
                            batch.alarms.push(self.alarm(AlarmKind::Escalation, op, &p, now_ms, detail));
                            let next = now_ms + repeat_ms;
                            self.timers.insert((next, Timer::Ack(hash, member.clone())));
                            self.pending.insert((hash, member), (PendingAck { alarmed: true, ..p }, next));
                        }
                    }
                }
                Timer::LinkTest(line_id) => {
                    let Some(l) = self.links.get(&line_id) else { continue };
                    if l.next_test_ms != t || interval_ms == 0 {
                        continue;
                    }
                    let outstanding = l.outstanding.is_some();
                    let next = now_ms + interval_ms;
                    if !outstanding {
                        if let Some(line) = self.lines.get(&line_id).cloned() {
                            let payload = PayloadV1::LinkTest { v: 1 };
                            let Ok(record) = self.seal(now_ms, line, PRIORITY_CONTROL, payload, Content::LinkTest)
                            else {
                                continue;
                            };
                            if let Some(l) = self.links.get_mut(&line_id) {
                                l.outstanding = Some((record.envelope.hash(), now_ms));
                            }
                            self.timers.insert((next, Timer::LinkDeadline(line_id)));
                            batch.records.push(record);
                        }
                    }
                    if let Some(l) = self.links.get_mut(&line_id) {
                        l.next_test_ms = next;
                    }
                    self.timers.insert((next, Timer::LinkTest(line_id)));
                }
                Timer::KeyUpdate(line_id) => {
                    let update_ms = self.config.discipline.key_update_interval_s * 1000;
                    let Some(&(last, sent)) = self.key_updates.get(&line_id) else { continue };
                    let due = (update_ms > 0 && now_ms >= last + update_ms)
                        || sent >= self.config.discipline.key_update_messages.max(1);
                    if due && self.lines.contains_key(&line_id) {
                        if let Ok(record) = self.update_keys(now_ms, line_id) {
                            batch.records.push(record);
                        }
                    }
                    if update_ms > 0 {
                        let last = self.key_updates.get(&line_id).map_or(now_ms, |u| u.0);
                        self.timers.insert((last + update_ms, Timer::KeyUpdate(line_id)));
                    }
                }
                Timer::LinkDeadline(line_id) => {
                    let Some(l) = self.links.get_mut(&line_id) else { continue };
                    let Some((_, sent)) = l.outstanding else { continue };
                    if l.alarmed || now_ms.saturating_sub(sent) < interval_ms {
                        continue;
                    }
                    l.alarmed = true;
                    batch.alarms.push(AlarmChange {
                        kind: AlarmKind::LinkNoAnswer,
                        op: AlarmOp::Raise,
                        line: line_id,
                        member: l.peer.clone(),
                        message: None,
                        at_ms: now_ms,
                        detail: format!(
                            "no answer from {} to the link test sent {} ago: fault or severance?",
                            l.peer,
                            human_ms(now_ms.saturating_sub(sent))
                        ),
                        addressed_to: Vec::new(),
                    });
                }
            }
        }
        batch
    }

    /// Refuses a sequence number too far ahead of the sender's last one here (before any MLS key
    /// is spent on it).
    fn check_seq_ahead(&self, line: &LineId, sender: &MemberCode, seq: u64) -> Result<u64, Refusal> {
        let (seen, _) = self.heads.get(&(*line, sender.clone())).copied().unwrap_or((0, EnvelopeHash::NONE));
        if seq > seen.saturating_add(self.config.limits.seq_ahead_max) {
            return Err(Refusal::reject(
                RefusalCode::Sequence,
                format!(
                    "sequence number {seq} is too far ahead of {seen} (limit seq_ahead_max = {})",
                    self.config.limits.seq_ahead_max
                ),
            ));
        }
        Ok(seen)
    }

    fn check_seq(&mut self, line: &Line, sender: &MemberCode, envelope: &VerifiedEnvelope) -> Result<(), Refusal> {
        let body = envelope.body();
        let key = (line.id, sender.clone());
        let seen = self.check_seq_ahead(&line.id, sender, body.seq)?;
        if body.seq > seen {
            self.heads.insert(key, (body.seq, envelope.hash()));
        }
        self.hear(line.id, sender, body.epoch);
        Ok(())
    }

    fn check_setup(
        &self,
        sender: &MemberCode,
        envelope: &VerifiedEnvelope,
        scope: &str,
        title: String,
        home: &str,
        members: &[String],
    ) -> Result<Line, Refusal> {
        let body = envelope.body();
        if home != sender.as_str() {
            return Err(Refusal::reject(RefusalCode::BadLineSetup, "only a line's home member may set it up"));
        }
        // A line's first envelope sets it up; a later one brings a member added to a running line
        // in, and only a node that does not hold the line yet takes it.
        let joining = body.seq > 1;
        // A member removed earlier, or that left, holds the line without being on it, and may be
        // brought in again.
        let on_line = self.lines.get(&body.line).is_some_and(|l| l.has_member(&self.config.me));
        if (!joining && body.prev != EnvelopeHash::NONE) || (joining && on_line) {
            return Err(Refusal::reject(
                RefusalCode::BadLineSetup,
                "a line set-up is the home member's first envelope, or brings in a new member",
            ));
        }
        let scope = Scope::parse(scope)
            .ok_or_else(|| Refusal::reject(RefusalCode::BadLineSetup, format!("unknown scope '{scope}'")))?;
        let members = check_line(&self.config.roster, &self.config.limits, scope, sender, members, &title)
            .map_err(|e| Refusal::reject(RefusalCode::BadLineSetup, format!("line refused: {}", e.message)))?;
        if !members.contains(&self.config.me) {
            return Err(Refusal::reject(
                RefusalCode::RecipientNotOnLine,
                format!("{} is not a member of this line", self.config.me),
            ));
        }
        let line = Line { id: body.line, scope, title, home: sender.clone(), members, created_ms: body.created_ms };
        if let Some(existing) = self.lines.get(&line.id).filter(|l| l.has_member(&self.config.me)) {
            let same = existing.scope == line.scope && existing.members == line.members && existing.home == line.home;
            if !same {
                return Err(Refusal::reject(
                    RefusalCode::BadLineSetup,
                    format!("line {} exists here with another definition", line.id),
                ));
            }
            return Ok(existing.clone());
        }
        if self.lines.len() >= self.config.limits.lines_max {
            return Err(Refusal::defer(RefusalCode::LinesFull, "this node holds the most lines it may"));
        }
        Ok(line)
    }
}

fn message_to_payload(m: &Message) -> PayloadV1 {
    PayloadV1::Message {
        v: 1,
        precedence: m.precedence.as_str().to_string(),
        class: m.class.as_str().to_string(),
        caveat: m.caveat.clone(),
        subject: m.subject.clone(),
        body: m.body.clone(),
        ack_required: m.ack_required,
        crisis: m.crisis,
        deadline_s: m.deadline_s,
        released_by: m.released_by.clone(),
        form: m.form.clone(),
        ewg: m.ewg.clone(),
    }
}

/// Reads a message payload; the caller checks the limits.
pub fn message_from_payload(p: PayloadV1) -> Result<Message, String> {
    match p {
        PayloadV1::Message {
            precedence,
            class,
            caveat,
            subject,
            body,
            ack_required,
            crisis,
            deadline_s,
            released_by,
            form,
            ewg,
            ..
        } => Ok(Message {
            precedence: Precedence::parse(&precedence).ok_or_else(|| format!("unknown precedence '{precedence}'"))?,
            class: Class::parse(&class).ok_or_else(|| format!("unknown class '{class}'"))?,
            caveat,
            subject,
            body,
            ack_required,
            crisis,
            deadline_s,
            released_by,
            form,
            ewg,
        }),
        _ => Err("not a message".into()),
    }
}

fn decision_to_payload(d: &Decision) -> PayloadV1 {
    PayloadV1::Decision {
        v: 1,
        text: d.text.clone(),
        parties: d.parties.iter().map(|p| p.to_string()).collect(),
        deadline_s: d.deadline_s,
        supersedes: d.supersedes.map(|h| h.to_hex()),
    }
}

fn decision_from_payload(p: PayloadV1) -> Result<Decision, String> {
    match p {
        PayloadV1::Decision { text, parties, deadline_s, supersedes, .. } => Ok(Decision {
            text,
            parties: parties.iter().map(|p| MemberCode::parse(p)).collect::<Result<_, _>>()?,
            deadline_s,
            supersedes: supersedes
                .map(|s| EnvelopeHash::from_hex(&s).ok_or("the replaced decision is not a 32-byte hex hash"))
                .transpose()?,
        }),
        _ => Err("not a decision".into()),
    }
}

fn concurrence_from_payload(p: PayloadV1) -> Result<Concurrence, String> {
    match p {
        PayloadV1::Concurrence { decision, text_sha256, concur, reason, .. } => {
            let decision = EnvelopeHash::from_hex(&decision).ok_or("the decision is not a 32-byte hex hash")?;
            let text = EnvelopeHash::from_hex(&text_sha256).ok_or("the text hash is not 32 bytes of hex")?;
            if !concur && reason.is_none() {
                return Err("declining a decision needs a reason".into());
            }
            Ok(Concurrence { decision, text_sha256: text.0, concur, reason })
        }
        _ => Err("not an answer to a decision".into()),
    }
}

fn receipt_to_payload(r: &Receipt) -> PayloadV1 {
    PayloadV1::Receipt {
        v: 1,
        kind: r.kind.as_str().to_string(),
        answers: r.answers.hash.to_hex(),
        answers_sender: r.answers.sender.to_string(),
        answers_seq: r.answers.seq,
        reason: r.reason.clone(),
    }
}

fn receipt_from_payload(p: PayloadV1) -> Result<Receipt, String> {
    match p {
        PayloadV1::Receipt { kind, answers, answers_sender, answers_seq, reason, .. } => {
            let kind = ReceiptKind::parse(&kind).ok_or_else(|| format!("unknown receipt kind '{kind}'"))?;
            let hash = EnvelopeHash::from_hex(&answers).ok_or("the answered hash is not 32 bytes of hex")?;
            let sender = MemberCode::parse(&answers_sender)?;
            if answers_seq == 0 {
                return Err("the answered sequence number is 0".into());
            }
            if reason.as_ref().is_some_and(|r| r.chars().count() > 1_000) {
                return Err("a reason is at most 1000 characters".into());
            }
            Ok(Receipt { kind, answers: Answered { hash, sender, seq: answers_seq }, reason })
        }
        _ => Err("not a receipt".into()),
    }
}
