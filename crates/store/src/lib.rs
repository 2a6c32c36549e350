//! Storage: the narrow [`Store`] trait the runtime drives, and its SQLite backend.
//!
//! The trait speaks the core's language ([`adi_core::WriteBatch`], lines, envelope hashes); no
//! SQL type crosses it, so another backend (PostgreSQL for an active/standby pair) can be added
//! without touching the core or the runtime. Every write resolves only once it is durable; the
//! SQLite backend groups concurrent writes into one transaction (group commit). After a commit
//! fails for want of a writable database, the store refuses every write ([`WriteFault`]) but the
//! runtime's probe ([`Store::probe`]) until the runtime resumes it ([`Store::resume`]).

#![forbid(unsafe_code)]

mod group;
mod postgres;
mod read;
pub mod seal;
mod sql;
mod sqlite;
mod store;
mod write;

use std::path::PathBuf;

use adi_core::{AlarmChange, Evidence, HeldEnvelope, MemberCode, Restored, WriteBatch};
use adi_wire::{EnvelopeHash, LineId};
use thiserror::Error;
use tokio::sync::oneshot;

pub use postgres::admin as postgres_admin;
pub use postgres::lease::{Lease, LeaseHolder};
pub use postgres::redacted;
pub use store::SqlStore;

/// Settings of the store.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// The SQLite database's file, for the embedded store.
    pub path: PathBuf,
    /// The PostgreSQL database's address (`postgres://user@host:port/database`, or the key=value
    /// form) for a store on PostgreSQL; the SQLite file at `path` when `None`.
    pub postgres: Option<String>,
    /// Most jobs grouped into one transaction.
    pub group_len_max: usize,
    /// Most idle reader connections kept open.
    pub readers_max: usize,
    /// How long a connection waits for a lock held by another process (an operator command).
    pub busy_timeout_ms: u64,
    /// How many of the newest events the live stream keeps for clients that reconnect.
    pub events_retained_max: u64,
    /// The node's master key, under which message contents are sealed at rest.
    pub master_key: [u8; 32],
    /// How long after a write the write-ahead log is checkpointed and truncated, so that spent
    /// state (old MLS epoch secrets, settled rows) overwritten in the database does not live on
    /// in the log (SQLite).
    pub wal_wipe_ms: u64,
    /// Free space the runtime's probe asks of the database's disk, beside its own write, before
    /// the store takes writes again after a failure: several transactions' worth, so that a disk
    /// with room for the probe alone (in the space a failed write left allocated) does not take
    /// writes only to fail again at once (SQLite).
    pub probe_headroom_bytes: usize,
    /// The PostgreSQL user's password, when the address does not carry it.
    pub postgres_password: Option<String>,
    /// How long the PostgreSQL store waits to connect before it counts the database as failed.
    pub connect_timeout_ms: u64,
}

impl StoreConfig {
    /// The embedded store: a SQLite database at `path`.
    pub fn new(path: impl Into<PathBuf>, master_key: [u8; 32]) -> Self {
        StoreConfig {
            master_key,
            path: path.into(),
            postgres: None,
            group_len_max: 512,
            readers_max: 8,
            busy_timeout_ms: 5_000,
            events_retained_max: 100_000,
            wal_wipe_ms: 1_000,
            probe_headroom_bytes: 1 << 20,
            postgres_password: None,
            connect_timeout_ms: 5_000,
        }
    }

    /// A store on the PostgreSQL database at `url`.
    pub fn postgres(url: impl Into<String>, master_key: [u8; 32]) -> Self {
        StoreConfig { postgres: Some(url.into()), ..StoreConfig::new(PathBuf::new(), master_key) }
    }
}

/// How many jobs the writer has committed in how many transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitStats {
    pub transactions: u64,
    pub jobs: u64,
}

/// A storage failure. The runtime treats a failed commit as fatal for the request that caused it
/// and reports it without internals.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(String),
    /// A write that was not committed because the database cannot take writes: its transaction
    /// failed, or an earlier one did and the store has not been resumed since
    /// ([`Store::resume`]). `generation` is the store's generation when the write was submitted.
    #[error("not committed: {fault}")]
    Unwritable { fault: WriteFault, generation: u64 },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the store is shut down")]
    Closed,
}

/// Why the database cannot take writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteFault {
    /// The disk that holds the database or its write-ahead log is full.
    DiskFull,
    /// The database or its filesystem is read-only.
    ReadOnly,
    /// Any other failure to commit, as the database or the system reported it.
    Failed(String),
}

impl std::fmt::Display for WriteFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteFault::DiskFull => f.write_str("the database disk is full"),
            WriteFault::ReadOnly => f.write_str("the database is read-only"),
            WriteFault::Failed(text) => write!(f, "the database cannot be written: {text}"),
        }
    }
}

/// A write in flight: resolves once committed durably, or with the reason it failed.
pub struct Pending<T>(oneshot::Receiver<Result<T, StoreError>>);

impl<T> Pending<T> {
    pub async fn wait(self) -> Result<T, StoreError> {
        self.0.await.unwrap_or(Err(StoreError::Closed))
    }

    pub fn wait_blocking(self) -> Result<T, StoreError> {
        self.0.blocking_recv().unwrap_or(Err(StoreError::Closed))
    }
}

/// What became of one record of a committed batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Newly stored.
    Inserted,
    /// The same envelope was stored before; nothing changed.
    Duplicate,
    /// Another envelope holds the same (line, sender, sequence); nothing changed.
    Conflict { existing: EnvelopeHash },
    /// A receipt answers an envelope that does not match what it claims; nothing changed.
    Mismatch { reason: String },
}

/// What a peer said about one envelope sent to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// Committed at the peer.
    Delivered,
    /// Refused by the peer for good, with its code and its reason in words.
    Refused { code: adi_wire::batch::RefusalCode, reason: String },
    /// Not taken now; try again at the given time.
    Retry { at_ms: u64, reason: String },
}

/// An envelope waiting to go to a peer.
#[derive(Clone, Debug)]
pub struct OutboxItem {
    pub hash: EnvelopeHash,
    pub priority: u8,
    pub bytes: Vec<u8>,
    pub attempts: u32,
}

/// The backlog towards one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueStat {
    pub peer: MemberCode,
    pub len: u64,
    pub oldest_enqueued_ms: Option<u64>,
}

/// A stored envelope with the message it carries, as the API shows it.
#[derive(Clone, Debug)]
pub struct MessageRow {
    pub hash: EnvelopeHash,
    pub line: LineId,
    pub sender: MemberCode,
    pub seq: u64,
    /// The local order in which this node accepted envelopes.
    pub arrival: u64,
    pub created_ms: u64,
    pub received_ms: u64,
    pub kind: String,
    pub precedence: Option<String>,
    pub class: Option<String>,
    pub caveat: Option<String>,
    pub subject: Option<String>,
    pub body: Option<String>,
    pub ack_required: bool,
    pub crisis: bool,
    /// When each recipient's acknowledgement is due, for messages with a deadline.
    pub deadline_ms: Option<u64>,
    pub released_by: Option<String>,
    /// The structured report it carries, as JSON (`adi_forms`).
    pub form: Option<String>,
    /// Its Experts' Working Group tag.
    pub ewg: Option<String>,
    /// When retention pruned its content (caveat, subject, body, report, tag and releaser), if it
    /// did: its signed envelope, hash and place in the record stay.
    pub pruned_ms: Option<u64>,
    /// The files attached, as its signed content names them ([`attachments_of`]).
    pub attachments: Vec<adi_core::Attachment>,
}

/// One recipient's state of one of this node's envelopes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientRow {
    pub member: MemberCode,
    pub sent_ms: u64,
    /// Where it stands with the recipient, as the core's state machine moved it.
    pub progress: adi_core::RecipientProgress,
}

/// A translation of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TranslationRow {
    pub hash: EnvelopeHash,
    pub original: EnvelopeHash,
    /// The member whose node sent it.
    pub member: MemberCode,
    pub language: String,
    pub text: String,
    pub translator: String,
    pub reviewed_by: Option<String>,
    pub revises: Option<EnvelopeHash>,
    pub created_ms: u64,
}

/// A decision with every answer to it held here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionRow {
    /// The decision's envelope hash.
    pub id: EnvelopeHash,
    pub line: LineId,
    pub proposer: MemberCode,
    /// The proposer's sequence number for the decision's envelope.
    pub seq: u64,
    pub text: String,
    pub text_sha256: [u8; 32],
    pub parties: Vec<MemberCode>,
    pub deadline_ms: Option<u64>,
    pub supersedes: Option<EnvelopeHash>,
    /// The final decision that replaces this one, if any (`adi_record::decision::state`): a
    /// later decision naming this one replaces it only once it is final itself.
    pub superseded_by: Option<EnvelopeHash>,
    pub created_ms: u64,
    /// Answers, in their authors' signed order (sequence numbers).
    pub answers: Vec<AnswerRow>,
}

/// One party's signed answer to a decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnswerRow {
    pub hash: EnvelopeHash,
    pub member: MemberCode,
    /// The member's sequence number for the answer's envelope.
    pub seq: u64,
    pub text_sha256: [u8; 32],
    pub concur: bool,
    pub reason: Option<String>,
    pub signed_ms: u64,
}

impl DecisionRow {
    /// The decision and its answers as the rule of `adi_record::decision` reads them.
    fn judged<T>(
        &self,
        judge: impl FnOnce(&adi_record::decision::Proposal<'_>, &[adi_record::decision::Answer<'_>]) -> T,
    ) -> T {
        let parties: Vec<String> = self.parties.iter().map(|p| p.to_string()).collect();
        let proposal = adi_record::decision::Proposal {
            proposer: self.proposer.as_str(),
            seq: self.seq,
            text_sha256: &self.text_sha256,
            parties: &parties,
        };
        let answers: Vec<adi_record::decision::Answer<'_>> = self
            .answers
            .iter()
            .map(|a| adi_record::decision::Answer {
                member: a.member.as_str(),
                seq: a.seq,
                text_sha256: &a.text_sha256,
                concur: a.concur,
            })
            .collect();
        judge(&proposal, &answers)
    }

    /// Each party's answer that counts: its latest (by signed place) over this decision's exact
    /// text. Proposing counts as the proposer's concurrence when it is a party.
    pub fn counted(&self) -> Vec<(MemberCode, bool)> {
        self.judged(adi_record::decision::counted)
            .into_iter()
            .filter_map(|(m, c)| MemberCode::parse(&m).ok().map(|m| (m, c)))
            .collect()
    }

    /// The parties whose concurrence is still missing.
    pub fn missing(&self) -> Vec<MemberCode> {
        let counted = self.counted();
        self.parties.iter().filter(|p| !counted.iter().any(|(m, c)| m == *p && *c)).cloned().collect()
    }

    /// Whether every party concurred with the exact text, whatever replaces it.
    pub fn concluded(&self) -> bool {
        self.judged(adi_record::decision::concluded)
    }

    /// `superseded`, `declined`, `final` (every party concurred over the exact text) or `open`.
    pub fn state(&self) -> &'static str {
        let replacements: Vec<(EnvelopeHash, u64, bool)> = self.superseded_by.iter().map(|h| (*h, 0, true)).collect();
        self.judged(|p, a| adi_record::decision::state(p, a, &replacements).as_str())
    }
}

/// A signed checkpoint with the countersignatures it gathered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointRow {
    pub checkpoint: adi_record::SignedCheckpoint,
    pub countersignatures: Vec<(MemberCode, [u8; 64])>,
}

/// A stored envelope, as it travelled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopeRow {
    pub hash: EnvelopeHash,
    /// `line_setup`, `message`, `receipt` or `link_test`.
    pub kind: String,
    pub received_ms: u64,
    /// The exact signed bytes.
    pub bytes: Vec<u8>,
    /// For an MLS application message: its content as its author signed it, decrypted
    /// (`adi_wire::content::SignedContent`); `None` once pruned.
    pub signed_content: Option<Vec<u8>>,
    /// The local order in which this node accepted envelopes.
    pub arrival: u64,
    /// When retention pruned its content (`Store::prune`), if it did.
    pub pruned_ms: Option<u64>,
}

/// An export of a line this node served: once whoever asked for it has written it to lasting
/// storage and said so with its SHA-256 (`Store::confirm_archive`), the contents it holds are
/// archived, and retention may prune them here (`docs/OPERATIONS.md`, "Retention").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveRow {
    pub line: LineId,
    /// SHA-256 of the bundle's bytes exactly as served.
    pub sha256: [u8; 32],
    /// The first and the last envelope of the line it holds, by arrival: it holds every envelope of
    /// the line between the two, with its content where this node had one.
    pub first_arrival: u64,
    pub last_arrival: u64,
    /// How many envelopes it holds.
    pub envelopes: u64,
    pub served_ms: u64,
    /// When its archiving was confirmed; `None` while it is only served.
    pub confirmed_ms: Option<u64>,
}

/// A file an operator uploaded to attach to a message, kept sealed until it is sent or
/// forgotten.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadRow {
    pub sha256: [u8; 32],
    pub name: String,
    pub media_type: String,
    pub size: u64,
    /// The operator who uploaded it.
    pub uploader: String,
    pub created_ms: u64,
}

/// How a file attached to a message is stored beside it: one line of its SHA-256, size, chunks,
/// media type and name, separated by tabs (a name holds no control character).
pub(crate) fn attachment_line(a: &adi_core::Attachment) -> String {
    format!("{}\t{}\t{}\t{}\t{}", hex::encode(a.sha256), a.size, a.chunks, a.media_type, a.name)
}

/// The files attached to a message, from what [`attachment_line`] stored.
pub fn attachments_of(stored: &str) -> Vec<adi_core::Attachment> {
    stored
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(5, '\t');
            let mut sha256 = [0u8; 32];
            hex::decode_to_slice(f.next()?, &mut sha256).ok()?;
            let size = f.next()?.parse().ok()?;
            let chunks = f.next()?.parse().ok()?;
            let media_type = f.next()?.to_string();
            let name = f.next()?.to_string();
            Some(adi_core::Attachment { sha256, name, media_type, size, chunks })
        })
        .collect()
}

/// A rule of retention: the content of messages of `class` accepted before `before_ms` goes, once
/// an archive holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PruneRule {
    /// `OPERATIONAL`, `SERVICE` or `TEST`.
    pub class: String,
    pub before_ms: u64,
}

/// A stored receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptRow {
    /// The receipt's own envelope hash.
    pub hash: EnvelopeHash,
    pub answers: EnvelopeHash,
    pub member: MemberCode,
    pub kind: adi_core::ReceiptKind,
    pub reason: Option<String>,
    /// When the answering member's node signed it.
    pub signed_ms: u64,
    /// The operator of this member's desk who made it (`WriteBatch::answered_by`): only on this
    /// member's own receipts made by an operator.
    pub operator: Option<String>,
}

/// An alarm, open or closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlarmRow {
    pub id: u64,
    pub kind: adi_core::AlarmKind,
    pub line: LineId,
    pub member: MemberCode,
    pub message: Option<EnvelopeHash>,
    pub raised_ms: u64,
    pub detail: String,
    pub addressed_to: Vec<String>,
    pub repeats: u64,
    pub last_raised_ms: u64,
    pub acked_by: Option<String>,
    pub acked_ms: Option<u64>,
    pub cleared_ms: Option<u64>,
    pub clear_reason: Option<String>,
}

/// What an operator's acknowledgement of an alarm did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlarmAck {
    Acked(AlarmRow),
    AlreadyAcked(AlarmRow),
    NotFound,
}

/// An event for the live stream, in the order committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRow {
    pub id: u64,
    pub at_ms: u64,
    /// `message`, `state`, `alarm`, `link` or `draft`.
    pub kind: String,
    pub line: Option<LineId>,
    pub message: Option<EnvelopeHash>,
    pub member: Option<MemberCode>,
    /// The new state: a recipient state, `raised`/`repeated`/`cleared`/`acknowledged` for
    /// alarms, a link state, or a precedence for arriving messages.
    pub state: Option<String>,
    pub alarm: Option<u64>,
    pub detail: Option<String>,
}

/// What a KeyPackage claim came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claimed {
    /// The KeyPackage, claimed by the peer from now on.
    KeyPackage(Vec<u8>),
    /// The pool is empty.
    Empty,
    /// The peer claimed `claims` in the last hour, its most; nothing was handed out.
    OverQuota { claims: u64 },
}

/// How many envelopes one sender has held on one line for a later epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldCount {
    pub line: LineId,
    pub sender: MemberCode,
    pub count: u64,
}

/// A message held for a principal's release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DraftRow {
    pub id: u64,
    pub line: LineId,
    /// The draft as the operator sent it (JSON of the API request).
    pub draft_json: String,
    pub drafter: String,
    pub created_ms: u64,
    /// `awaiting_release` or `released`.
    pub state: String,
    pub released_by: Option<String>,
    pub released_ms: Option<u64>,
    pub message: Option<EnvelopeHash>,
}

/// An operator of this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operator {
    pub name: String,
    pub role: adi_core::Role,
    pub created_ms: u64,
}

/// An operator as `adi operator list` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorRecord {
    pub operator: Operator,
    pub token_expires_ms: Option<u64>,
    pub has_password: bool,
    /// Console sessions open (not yet ended; some may have expired unused).
    pub sessions: u64,
}

/// A roster version applied ([`Store::roster_version_applied`]).
#[derive(Clone, Debug)]
pub struct RosterApplied {
    pub number: u64,
    pub hash: [u8; 32],
    /// The version's file as JSON.
    pub body: Vec<u8>,
    /// Who the audit entry names as acting: the member whose node handed the version over, or an
    /// operator.
    pub actor: String,
    pub detail: String,
    pub now_ms: u64,
}

/// A proposed roster version to keep ([`Store::roster_proposal_kept`]).
#[derive(Clone, Debug)]
pub struct RosterProposalKept {
    pub number: u64,
    pub hash: [u8; 32],
    /// The proposal's file as JSON, with every signature collected.
    pub body: Vec<u8>,
    /// The audit entry to make with it, if any: (action, actor, detail).
    pub audit: Option<(String, String, String)>,
    pub now_ms: u64,
}

/// One administrative action, as the audit log keeps it: who did what to whom, when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRow {
    pub id: u64,
    pub at_ms: u64,
    /// `operator_added`, `operator_changed`, `operator_removed`, `password_set`,
    /// `configuration_first`, `configuration_changed`, `roster_proposed`, `roster_signed`,
    /// `roster_amended`, `archive_confirmed` or `pruned`.
    pub action: String,
    /// Who acted: `administrator` for what is done on the node's machine (`adi operator`, the
    /// configuration file), an operator's name, `member XX` for what a member's node handed
    /// over, or `retention` for the node's own pruning.
    pub actor: String,
    /// The operator acted on, if any.
    pub subject: Option<String>,
    pub detail: String,
}

/// What the operations report reads of the record within its window ([`Store::report_rows`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReportRows {
    pub link_tests: Vec<ReportLinkTest>,
    pub answers: Vec<ReportAnswer>,
    pub alarms: Vec<ReportAlarm>,
    pub traffic: Vec<ReportTraffic>,
}

/// One link test this node sent: to whom, when, and when its answer arrived here, if it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportLinkTest {
    pub peer: MemberCode,
    pub sent_ms: u64,
    pub answered_ms: Option<u64>,
}

/// One recipient of one of this member's messages that asked for an answer: when it was sent,
/// when the answer was due, and when (and how) it came.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportAnswer {
    pub member: MemberCode,
    pub precedence: String,
    pub sent_ms: u64,
    pub deadline_ms: Option<u64>,
    pub acknowledged_ms: Option<u64>,
    pub declined_ms: Option<u64>,
}

/// An alarm that was open at some time in the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportAlarm {
    pub kind: String,
    pub member: MemberCode,
    pub raised_ms: u64,
    pub cleared_ms: Option<u64>,
}

/// How many messages of one precedence and class were sent (by this member) or received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportTraffic {
    pub sent: bool,
    pub precedence: String,
    pub class: String,
    pub count: u64,
}

/// A console session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    pub operator: Operator,
    /// The token every state-changing request of the session must carry.
    pub csrf: String,
    pub created_ms: u64,
    pub last_seen_ms: u64,
}

/// Which messages to list.
#[derive(Clone, Debug, Default)]
pub struct MessageQuery {
    pub line: Option<LineId>,
    /// Only messages from other members.
    pub not_from: Option<MemberCode>,
    pub limit: usize,
    /// Order by precedence then time (the inbox) instead of the record order.
    pub by_precedence: bool,
    /// Only the messages after this place in the order listed: where the page before ended.
    pub after: Option<MessageCursor>,
    /// Only the messages that wait for this member's answer: those with a deadline that it has
    /// neither acknowledged nor declined.
    pub waiting_for: Option<MemberCode>,
}

impl MessageQuery {
    /// The place in the inbox order the list starts after, if it names one.
    pub fn inbox_after(&self) -> Option<InboxKey> {
        match self.after {
            Some(MessageCursor::Inbox(key)) => Some(key),
            _ => None,
        }
    }
}

/// A place in a list of messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageCursor {
    /// In the record order, this message. The record order is worked out over a line's messages
    /// (each sender's in sequence order, interleaved by time), so a place in it is a message.
    Message(EnvelopeHash),
    /// In the inbox order (precedence, then time, then arrival), this sort key.
    Inbox(InboxKey),
}

/// A message's place in the inbox order: the envelope's priority (its precedence; the most urgent
/// is the smallest), its creation time and its arrival here, which no two envelopes share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct InboxKey {
    pub priority: u8,
    pub created_ms: u64,
    pub arrival: u64,
}

/// Which part of a list to read: at most `limit` items, from just past `from`, the place where
/// the page before ended (after it in a list ordered oldest first, before it in one ordered
/// newest first); from the start of the list when `None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<K> {
    pub from: Option<K>,
    pub limit: usize,
}

impl<K> Page<K> {
    /// The whole list.
    pub fn all() -> Self {
        Page { from: None, limit: usize::MAX }
    }

    /// The first `limit` items.
    pub fn first(limit: usize) -> Self {
        Page { from: None, limit }
    }

    /// The limit as SQL takes it: the largest integer is none.
    pub(crate) fn sql_limit(&self) -> i64 {
        i64::try_from(self.limit).unwrap_or(i64::MAX)
    }
}

impl Page<u64> {
    /// The id the page starts before, as SQL takes it: ids are SQLite integers, so one beyond
    /// them starts before every row.
    pub(crate) fn sql_before(&self) -> Option<i64> {
        self.from.map(|id| i64::try_from(id).unwrap_or(i64::MAX))
    }
}

impl Page<TimeKey> {
    /// The time of the place the page starts after, as SQL takes it.
    pub(crate) fn sql_time(&self) -> Option<i64> {
        self.from.map(|k| i64::try_from(k.created_ms).unwrap_or(i64::MAX))
    }

    /// The id of the place the page starts after, as SQL takes it.
    pub(crate) fn sql_id(&self) -> Option<Vec<u8>> {
        self.from.map(|k| k.id.0.to_vec())
    }
}

/// A place in a list ordered by creation time, then id (decisions, translations): the last
/// item's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimeKey {
    pub created_ms: u64,
    pub id: EnvelopeHash,
}

/// A place in a line's checkpoints, ordered by time, size, signer and root: the last one's.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CheckpointKey {
    pub time_ms: u64,
    pub size: u64,
    pub signer: String,
    pub root: [u8; 32],
}

impl CheckpointKey {
    /// The place of a checkpoint.
    pub fn of(row: &CheckpointRow) -> CheckpointKey {
        let k = &row.checkpoint.checkpoint;
        CheckpointKey { time_ms: k.time_ms, size: k.size, signer: k.signer.clone(), root: k.root }
    }
}

/// The storage a node runs on.
pub trait Store: Send + Sync + 'static {
    /// Lines, chain heads and awaited acknowledgements, to build member `me`'s core at start.
    fn load(&self, me: &MemberCode) -> Result<Restored, StoreError>;
    /// Commits a batch of records and alarm changes in one transaction; one outcome per record,
    /// in order. A record's own alarm changes apply only if it is newly stored.
    fn commit(&self, batch: WriteBatch) -> Pending<Vec<Outcome>>;
    /// Commits alarm changes even while the store refuses writes after a failure: the runtime's
    /// probe of whether the database takes writes again (a backend may also ask its disk for some
    /// free space). Resolves once durable, like any write.
    fn probe(&self, alarms: Vec<AlarmChange>) -> Pending<()>;
    /// Takes writes again after a failed commit. Writes submitted before the call are still
    /// refused, so that nothing computed from state the failure left behind (state ahead of what
    /// was committed) is committed after it. Returns the store's new generation.
    fn resume(&self) -> u64;
    /// Commits a released draft's message and marks the draft released by `principal`, together.
    fn commit_release(&self, batch: WriteBatch, draft: u64, principal: String, now_ms: u64) -> Pending<Vec<Outcome>>;
    /// Holds a draft for release; returns its id.
    fn add_draft(&self, line: LineId, draft_json: String, drafter: String, now_ms: u64) -> Pending<u64>;
    /// Drafts, newest first (before the id `page.from`): only those awaiting release, or all.
    fn drafts(&self, awaiting_only: bool, page: Page<u64>) -> Result<Vec<DraftRow>, StoreError>;
    fn draft(&self, id: u64) -> Result<Option<DraftRow>, StoreError>;
    /// Receipts answering an envelope, oldest first.
    fn receipts(&self, answers: &EnvelopeHash) -> Result<Vec<ReceiptRow>, StoreError>;
    /// Alarms, newest first (before the id `page.from`): only open ones, or all.
    fn alarms(&self, open_only: bool, page: Page<u64>) -> Result<Vec<AlarmRow>, StoreError>;
    /// Records an operator's acknowledgement of an alarm.
    fn ack_alarm(&self, id: u64, operator: String, now_ms: u64) -> Pending<AlarmAck>;
    /// Events after `after`, oldest first: only those whose transaction the store saw commit.
    fn events_after(&self, after: u64, limit: usize) -> Result<Vec<EventRow>, StoreError>;
    /// The oldest and newest event ids kept (0, 0 when none).
    fn event_bounds(&self) -> Result<(u64, u64), StoreError>;
    /// Records what a peer said about envelopes sent to it.
    fn settle(&self, peer: &MemberCode, results: Vec<(EnvelopeHash, Settlement)>, now_ms: u64) -> Pending<()>;
    /// Envelopes due for a peer at `now_ms`, most urgent first, then oldest first.
    fn outbox(&self, peer: &MemberCode, now_ms: u64, limit: usize) -> Result<Vec<OutboxItem>, StoreError>;
    /// As [`Store::outbox`], stopping before the envelopes' stored bytes pass `bytes_max` (but
    /// with one at least): a batch's worth, without reading and opening what will not go in it.
    fn outbox_within(
        &self,
        peer: &MemberCode,
        now_ms: u64,
        limit: usize,
        bytes_max: usize,
    ) -> Result<Vec<OutboxItem>, StoreError>;
    /// The earliest time a deferred envelope for a peer is due again.
    fn outbox_next_due(&self, peer: &MemberCode) -> Result<Option<u64>, StoreError>;
    /// The backlog towards every peer that has one.
    fn queue_stats(&self) -> Result<Vec<QueueStat>, StoreError>;
    /// What the operations report reads of the record between `from_ms` and `to_ms` (this node's
    /// times): `me`'s link tests and their answers, the answers its messages had, the alarms open
    /// in the window, and the messages sent and received.
    fn report_rows(&self, me: &MemberCode, from_ms: u64, to_ms: u64) -> Result<ReportRows, StoreError>;
    /// Messages of a line in the record order, or of every line in the inbox order, from just
    /// after `query.after`. A cursor of the other order is refused; one the list does not hold
    /// ends it.
    fn messages(&self, query: &MessageQuery) -> Result<Vec<MessageRow>, StoreError>;
    fn message(&self, hash: &EnvelopeHash) -> Result<Option<MessageRow>, StoreError>;
    /// The hash of the envelope stored for (line, sender, sequence), if any.
    fn envelope_at(&self, line: &LineId, sender: &str, seq: u64) -> Result<Option<EnvelopeHash>, StoreError>;
    /// How many application envelopes `sender` has stored on each line at each MLS epoch:
    /// (line, epoch, count).
    fn application_epochs(&self, sender: &str) -> Result<Vec<(LineId, u64, u64)>, StoreError>;
    /// Envelopes held for a line from epochs up to `epoch`, in arrival order.
    fn held(&self, line: &LineId, epoch: u64) -> Result<Vec<HeldEnvelope>, StoreError>;
    /// How many envelopes each sender has held on each line for a later epoch since
    /// `received_since_ms` (by this node's clock), for lines that hold any.
    fn held_counts(&self, received_since_ms: u64) -> Result<Vec<HeldCount>, StoreError>;
    /// The hashes of the envelopes held since before `received_before_ms` (by this node's clock).
    fn held_expired(&self, received_before_ms: u64) -> Result<Vec<EnvelopeHash>, StoreError>;
    /// The hashes of the envelopes this node accepted on a line, in the order it accepted them:
    /// the entries of its log of the line.
    fn line_log(&self, line: &LineId) -> Result<Vec<EnvelopeHash>, StoreError>;
    /// The entries of this node's log of a line, as [`Store::line_log`], each with its sender and
    /// sequence number.
    fn line_places(&self, line: &LineId) -> Result<Vec<(EnvelopeHash, String, u64)>, StoreError>;
    /// Signed checkpoints kept of a line (of one signer, or all), oldest first (by time, size,
    /// signer and root; after `page.from`), each with its countersignatures (member, signature).
    fn checkpoints(
        &self,
        line: &LineId,
        signer: Option<&str>,
        page: Page<CheckpointKey>,
    ) -> Result<Vec<CheckpointRow>, StoreError>;
    /// Decisions of a line (or the one with `id`), oldest first (by time, then id; after
    /// `page.from`), with their answers.
    fn decisions(
        &self,
        line: Option<&LineId>,
        id: Option<&EnvelopeHash>,
        page: Page<TimeKey>,
    ) -> Result<Vec<DecisionRow>, StoreError>;
    /// Translations of a message (or the one with hash `id`), oldest first (by time, then id;
    /// after `page.from`).
    fn translations(
        &self,
        original: Option<&EnvelopeHash>,
        id: Option<&EnvelopeHash>,
        page: Page<TimeKey>,
    ) -> Result<Vec<TranslationRow>, StoreError>;
    /// Evidence of tampering, newest first (before the id `page.from`), with its id.
    fn evidence(&self, page: Page<u64>) -> Result<Vec<(u64, Evidence)>, StoreError>;
    /// Any stored envelope, with its exact bytes.
    fn envelope(&self, hash: &EnvelopeHash) -> Result<Option<EnvelopeRow>, StoreError>;
    /// Keeps a file uploaded to attach (the same bytes uploaded again are one, named as last);
    /// forgets those uploaded before `forget_before_ms`.
    fn add_upload(&self, upload: UploadRow, bytes: Vec<u8>, forget_before_ms: u64) -> Pending<()>;
    /// A file uploaded to attach, with its bytes.
    fn upload(&self, sha256: &[u8; 32]) -> Result<Option<(UploadRow, Vec<u8>)>, StoreError>;
    /// The chunks of a file attached to `message` this node holds, by their place: each
    /// chunk envelope's hash.
    fn chunks(&self, message: &EnvelopeHash, file: &[u8; 32]) -> Result<Vec<(u64, EnvelopeHash)>, StoreError>;
    /// The bytes of the chunk envelopes `sender` sent (of files attached to its messages) that
    /// this node accepted since `since_ms`: what a member's daily quota of files counts.
    fn chunk_bytes_since(&self, sender: &MemberCode, since_ms: u64) -> Result<u64, StoreError>;
    /// For each file attached to `message`, how many of its chunks each recipient's node said it
    /// decrypted (on this member's own messages): (file, member, chunks).
    fn chunks_decrypted(&self, message: &EnvelopeHash) -> Result<Vec<([u8; 32], MemberCode, u64)>, StoreError>;
    /// Keeps an export served, unconfirmed; forgets those served before `forget_before_ms` whose
    /// archiving was never confirmed.
    fn add_archive(&self, archive: ArchiveRow, forget_before_ms: u64) -> Pending<()>;
    /// Confirms that the export of `line` whose bytes have SHA-256 `sha256`, served at or after
    /// `served_since_ms`, is archived, with an audit entry naming `operator`; `None` when no such
    /// export was served. Confirming again changes nothing and answers the archive.
    fn confirm_archive(
        &self,
        line: LineId,
        sha256: [u8; 32],
        served_since_ms: u64,
        operator: String,
        now_ms: u64,
    ) -> Pending<Option<ArchiveRow>>;
    /// The confirmed archives of a line, oldest first.
    fn archives(&self, line: &LineId) -> Result<Vec<ArchiveRow>, StoreError>;
    /// Prunes, under `rules`, the content of at most `limit` messages that a confirmed archive
    /// holds: their sealed content columns are emptied, their signed envelope, hash, metadata and
    /// receipts kept, and the time noted; and, within the same bound, the text and signed content
    /// of the translations of pruned messages that an archive holds. Answers the envelopes
    /// pruned, with an audit entry when there were any.
    fn prune(&self, rules: Vec<PruneRule>, now_ms: u64, limit: usize) -> Pending<Vec<EnvelopeHash>>;
    fn recipients(&self, hash: &EnvelopeHash) -> Result<Vec<RecipientRow>, StoreError>;
    /// Adds an operator, or gives an existing one a new role and token, ending all its console
    /// sessions; the token stops being accepted at `token_expires_ms` (never when `None`).
    fn add_operator(
        &self,
        op: &Operator,
        token_hash: [u8; 32],
        token_expires_ms: Option<u64>,
    ) -> Result<(), StoreError>;
    /// Removes an operator and ends all its console sessions; `false` if there is no such operator.
    fn remove_operator(&self, name: &str) -> Result<bool, StoreError>;
    /// Every operator, by name.
    fn operators(&self) -> Result<Vec<OperatorRecord>, StoreError>;
    /// The audit log of administrative actions, newest first (before the id `page.from`).
    /// Changes to operators are logged by the methods that make them, in their transaction.
    fn audit(&self, page: Page<u64>) -> Result<Vec<AuditRow>, StoreError>;
    /// Notes the SHA-256 of the configuration a node starts with: the first time, and each time
    /// it differs from the one noted before, an audit entry says so. Whether an entry was made.
    fn configuration_seen(&self, sha256: [u8; 32], now_ms: u64) -> Pending<bool>;
    /// The roster versions after the first that this node applied, in order: each version's
    /// file as JSON.
    fn roster_versions(&self) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Records a roster version as applied, with an audit entry (`roster_amended`, by `actor`,
    /// saying `detail`), and forgets every proposal of its number or lower, in one transaction.
    /// `Ok(false)` if this version was applied already; an error if another version holds its
    /// number.
    fn roster_version_applied(&self, applied: RosterApplied) -> Pending<bool>;
    /// When this node applied each roster version after the first, on its clock: (number,
    /// `now_ms` of [`Store::roster_version_applied`]), in order. An envelope's `received_ms` on
    /// the same clock places it before or after each version (a start never takes up a time
    /// earlier than the latest version applied).
    fn roster_applied_times(&self) -> Result<Vec<(u64, u64)>, StoreError>;
    /// The proposed roster versions this node keeps, with the signatures collected so far: each
    /// file as JSON, oldest first.
    fn roster_proposals(&self) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Keeps a proposed version (new, or with more signatures), with an audit entry when one is
    /// named.
    fn roster_proposal_kept(&self, kept: RosterProposalKept) -> Pending<()>;
    /// This member's MLS state as last committed: the entries of its key-value state.
    fn mls_state(&self) -> Result<adi_mls::StateEntries, StoreError>;
    /// Stores new one-time KeyPackages (reference, bytes) with the change to the MLS state that
    /// holds their private keys, together.
    fn add_key_packages(
        &self,
        state: adi_mls::StateDelta,
        key_packages: Vec<(Vec<u8>, Vec<u8>)>,
        now_ms: u64,
    ) -> Pending<()>;
    /// References of this member's KeyPackages claimed before `before_ms` and still stored
    /// (never used: a Welcome that used one deleted it).
    fn key_packages_claimed_before(&self, before_ms: u64) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Deletes KeyPackages with the change to the MLS state that deleted their private keys,
    /// together.
    fn drop_key_packages(&self, state: adi_mls::StateDelta, references: Vec<Vec<u8>>) -> Pending<()>;
    /// How many of this member's KeyPackages no peer has claimed yet.
    fn key_packages_available(&self) -> Result<u64, StoreError>;
    /// References of this member's KeyPackages no peer has claimed yet (dropped when the member
    /// moves to a rotated key: they carry the old one).
    fn key_packages_unclaimed(&self) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Hands the oldest unclaimed KeyPackage to `peer`, once, unless `peer` has claimed
    /// `per_hour_max` already in the hour before `now_ms`.
    fn claim_key_package(&self, peer: &MemberCode, now_ms: u64, per_hour_max: u64) -> Pending<Claimed>;
    /// The operator whose token has this hash, and when the token expires.
    fn operator_by_token(&self, token_hash: &[u8; 32]) -> Result<Option<(Operator, Option<u64>)>, StoreError>;
    /// Sets an operator's password hash (a PHC string), ending all its console sessions; `false`
    /// if there is no such operator.
    fn set_password(&self, name: &str, password_hash: &str) -> Result<bool, StoreError>;
    /// An operator and its password hash, by name.
    fn operator_password(&self, name: &str) -> Result<Option<(Operator, Option<String>)>, StoreError>;
    /// Starts a console session, known by the SHA-256 of its id.
    fn start_session(&self, id_hash: [u8; 32], operator: String, csrf: String, now_ms: u64) -> Pending<()>;
    fn session(&self, id_hash: &[u8; 32]) -> Result<Option<SessionRow>, StoreError>;
    /// Records that a session was used.
    fn touch_session(&self, id_hash: [u8; 32], now_ms: u64) -> Pending<()>;
    fn end_session(&self, id_hash: [u8; 32]) -> Pending<()>;
    /// Records that a peer's KeyPackage (by reference) was taken into a group here; `false` if it
    /// was recorded before, which makes it a replay.
    fn use_key_package(&self, reference: Vec<u8>, member: &MemberCode, now_ms: u64) -> Pending<bool>;
    /// The references of every peer KeyPackage taken into a group here.
    fn used_key_packages(&self) -> Result<Vec<Vec<u8>>, StoreError>;
}
