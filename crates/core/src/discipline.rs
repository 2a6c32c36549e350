//! The hotline's discipline: acknowledgement deadlines, escalation, link tests and alarms.
//!
//! These are timers the core asks for: [`crate::Hotline::next_wake`] says when it next needs the
//! runtime to call [`crate::Hotline::tick`] with the current time. The core never reads the clock.

use adi_wire::{EnvelopeHash, LineId};

use crate::message::Precedence;
use crate::roster::MemberCode;

/// Acknowledgement deadlines per precedence, in seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deadlines {
    pub flash_s: u64,
    pub immediate_s: u64,
    pub priority_s: u64,
    pub routine_s: u64,
}

impl Default for Deadlines {
    /// The handling targets of ACP 121 precedence: 10 minutes, 30 minutes, 3 hours, 6 hours.
    fn default() -> Self {
        Deadlines { flash_s: 600, immediate_s: 1_800, priority_s: 10_800, routine_s: 21_600 }
    }
}

impl Deadlines {
    pub fn for_precedence(&self, p: Precedence) -> u64 {
        match p {
            Precedence::Flash => self.flash_s,
            Precedence::Immediate => self.immediate_s,
            Precedence::Priority => self.priority_s,
            Precedence::Routine => self.routine_s,
        }
    }
}

/// How a node keeps its discipline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisciplineConfig {
    pub deadlines: Deadlines,
    /// How often an escalation is raised again until the message is acknowledged.
    pub escalation_repeat_s: u64,
    /// Whom an escalation is addressed to besides the watch: operator names or roles.
    pub alternates: Vec<String>,
    /// How often each direct line is tested; also how long an answer may take. 0 turns tests off.
    pub link_test_interval_s: u64,
    /// How often a member refreshes its keys on each line (post-compromise security); 0: never
    /// by time.
    pub key_update_interval_s: u64,
    /// After how many envelopes sealed on a line a member refreshes its keys there.
    pub key_update_messages: u64,
    /// How far a peer's clock may be from this node's, as link tests measure it, before a
    /// `clock` alarm is raised.
    pub clock_offset_ms_max: u64,
}

impl Default for DisciplineConfig {
    fn default() -> Self {
        DisciplineConfig {
            deadlines: Deadlines::default(),
            escalation_repeat_s: 300,
            alternates: Vec::new(),
            link_test_interval_s: 3_600,
            key_update_interval_s: 86_400,
            key_update_messages: 1_000,
            clock_offset_ms_max: 5_000,
        }
    }
}

/// What an alarm is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AlarmKind {
    /// At a recipient's node: a message this member must acknowledge is overdue.
    Escalation,
    /// At a sender's node: a recipient has not acknowledged in time.
    Unacknowledged,
    /// A link test went unanswered: fault or severance?
    LinkNoAnswer,
    /// An envelope could not be decrypted: raised at the recipient and at the sender.
    Undecryptable,
    /// A member signed something that contradicts the record: two envelopes for one place in
    /// its chain, or a chain link that does not match. The evidence is kept.
    Tamper,
    /// This node's database cannot be written (its disk is full, it is read-only, its I/O
    /// fails): the node refuses writes until it can commit again. Raised by the runtime only.
    Storage,
    /// A peer's clock is further from this node's than `clock_offset_ms_max`, as a link test
    /// measured it; or this node's own clock stepped while it ran (raised by the runtime).
    Clock,
    /// A peer's node did what the protocol forbids and unmodified code never does: forged a
    /// leaf, committed on a line it is not home of, named an epoch or a sender its MLS message
    /// is not of. The envelope is refused; one alarm per peer stays open and counts repeats.
    Misconduct,
    /// A peer reached one of the quotas this node keeps for each peer (KeyPackage claims an
    /// hour, lines set up a day, envelopes held): what is over it is refused or deferred, so that
    /// no member takes the others' share. One per peer stays open and counts repeats.
    Quota,
}

impl AlarmKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            AlarmKind::Escalation => "escalation",
            AlarmKind::Unacknowledged => "unacknowledged",
            AlarmKind::LinkNoAnswer => "link_no_answer",
            AlarmKind::Undecryptable => "undecryptable",
            AlarmKind::Tamper => "tamper",
            AlarmKind::Storage => "storage",
            AlarmKind::Clock => "clock",
            AlarmKind::Misconduct => "misconduct",
            AlarmKind::Quota => "quota",
        }
    }

    pub fn parse(s: &str) -> Option<AlarmKind> {
        match s {
            "escalation" => Some(AlarmKind::Escalation),
            "unacknowledged" => Some(AlarmKind::Unacknowledged),
            "link_no_answer" => Some(AlarmKind::LinkNoAnswer),
            "undecryptable" => Some(AlarmKind::Undecryptable),
            "tamper" => Some(AlarmKind::Tamper),
            "storage" => Some(AlarmKind::Storage),
            "clock" => Some(AlarmKind::Clock),
            "misconduct" => Some(AlarmKind::Misconduct),
            "quota" => Some(AlarmKind::Quota),
            _ => None,
        }
    }
}

/// What happens to an alarm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlarmOp {
    Raise,
    /// Raised again (an escalation repeats until acknowledged).
    Repeat,
    /// Its cause is gone.
    Clear,
}

/// A change to an alarm, to commit with the records that caused it. An alarm is identified by
/// its kind, its line, the member concerned and, for deadlines, the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlarmChange {
    pub kind: AlarmKind,
    pub op: AlarmOp,
    pub line: LineId,
    /// The member who has not answered, or the peer of the link.
    pub member: MemberCode,
    pub message: Option<EnvelopeHash>,
    pub at_ms: u64,
    /// A sentence for the watch.
    pub detail: String,
    /// Alternates the alarm is addressed to.
    pub addressed_to: Vec<String>,
}

impl AlarmChange {
    /// The `misconduct` alarm naming `member`: one per peer whatever the line (its line is all
    /// zeros; the detail names the line), raised again as a repeat while it stays open.
    pub fn misconduct(member: &MemberCode, at_ms: u64, detail: String) -> AlarmChange {
        AlarmChange::per_peer(AlarmKind::Misconduct, member, at_ms, detail)
    }

    /// The `quota` alarm naming `member`, one per peer as [`AlarmChange::misconduct`] is.
    pub fn quota(member: &MemberCode, at_ms: u64, detail: String) -> AlarmChange {
        AlarmChange::per_peer(AlarmKind::Quota, member, at_ms, detail)
    }

    fn per_peer(kind: AlarmKind, member: &MemberCode, at_ms: u64, detail: String) -> AlarmChange {
        AlarmChange {
            kind,
            op: AlarmOp::Repeat,
            line: LineId([0; 16]),
            member: member.clone(),
            message: None,
            at_ms,
            detail,
            addressed_to: Vec::new(),
        }
    }
}

/// Which side of an acknowledgement a node waits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// This node sent the message and waits for the recipient's receipt.
    Sender,
    /// This node received the message and waits for its own operators.
    Recipient,
}

/// An acknowledgement this node waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingAck {
    pub line: LineId,
    pub message: EnvelopeHash,
    /// The member whose acknowledgement is awaited.
    pub member: MemberCode,
    /// The member that sent the message.
    pub sender: MemberCode,
    pub side: Side,
    pub due_ms: u64,
    pub precedence: Precedence,
    pub subject: String,
    /// Whether its alarm is open.
    pub alarmed: bool,
}

/// What this node knows of a direct line's link tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkHealth {
    pub line: LineId,
    pub peer: MemberCode,
    /// The test awaiting an answer, and when it was sent.
    pub outstanding: Option<(EnvelopeHash, u64)>,
    pub last_ok_ms: Option<u64>,
    pub last_rtt_ms: Option<u64>,
    /// The peer's clock minus this node's, as the last answered test measured it (within half
    /// its round trip).
    pub offset_ms: Option<i64>,
    pub alarmed: bool,
    /// Whether the `clock` alarm about this peer is open.
    pub clock_alarmed: bool,
    pub next_test_ms: u64,
}

/// A link's state as operators see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// The last test was answered and none is overdue.
    Healthy,
    /// A test has waited more than half the interval, or the last answer is older than two
    /// intervals (tests are not being sent or answered).
    Late,
    /// A test went unanswered for the whole interval, or the last answer is older than three
    /// intervals.
    Failing,
    /// No test has been answered yet.
    NeverTested,
}

impl LinkState {
    pub fn as_str(&self) -> &'static str {
        match self {
            LinkState::Healthy => "healthy",
            LinkState::Late => "late",
            LinkState::Failing => "failing",
            LinkState::NeverTested => "never_tested",
        }
    }
}

impl LinkHealth {
    /// The state at `now_ms` for tests every `interval_ms`.
    pub fn state(&self, now_ms: u64, interval_ms: u64) -> LinkState {
        if let Some((_, sent)) = self.outstanding {
            let waited = now_ms.saturating_sub(sent);
            if self.alarmed || waited >= interval_ms {
                return LinkState::Failing;
            }
            if waited * 2 >= interval_ms {
                return LinkState::Late;
            }
        }
        match self.last_ok_ms.map(|ok| now_ms.saturating_sub(ok)) {
            // However the link's tests stopped, an old success is not a healthy link.
            Some(age) if interval_ms > 0 && age > 3 * interval_ms => LinkState::Failing,
            Some(age) if interval_ms > 0 && age > 2 * interval_ms => LinkState::Late,
            Some(_) => LinkState::Healthy,
            None => LinkState::NeverTested,
        }
    }
}

/// A timer the core keeps.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    Ack(EnvelopeHash, MemberCode),
    LinkTest(LineId),
    LinkDeadline(LineId),
    KeyUpdate(LineId),
}

/// Formats a duration for people: `2 h 5 min`, `4 min 10 s`, `12 s`.
pub fn human_ms(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}
