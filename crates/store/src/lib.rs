//! Storage: the narrow [`Store`] trait the runtime drives, and its SQLite backend.
//!
//! The trait speaks the core's language ([`adi_core::WriteBatch`], lines, envelope hashes); no
//! SQL type crosses it, so another backend (PostgreSQL for an active/standby pair) can be added
//! without touching the core or the runtime. Every write resolves only once it is durable; the
//! SQLite backend groups concurrent writes into one transaction (group commit).

#![forbid(unsafe_code)]

mod sqlite;

use adi_core::{Line, MemberCode, OwnHead, WriteBatch};
use adi_wire::{EnvelopeHash, LineId};
use thiserror::Error;
use tokio::sync::oneshot;

pub use sqlite::{CommitStats, SqliteStore, StoreConfig};

/// A storage failure. The runtime treats a failed commit as fatal for the request that caused it
/// and reports it without internals.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the store is shut down")]
    Closed,
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
}

/// What a peer said about one envelope sent to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// Committed at the peer.
    Delivered,
    /// Refused by the peer for good.
    Refused { reason: String },
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
}

/// One recipient's state of one of this node's envelopes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientRow {
    pub member: MemberCode,
    /// `sent`, `delivered` or `refused`.
    pub state: String,
    pub sent_ms: u64,
    pub delivered_ms: Option<u64>,
    pub detail: Option<String>,
}

/// An operator of this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operator {
    pub name: String,
    pub role: String,
    pub created_ms: u64,
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
}

/// What the core needs at start.
pub struct Loaded {
    pub lines: Vec<Line>,
    pub heads: Vec<OwnHead>,
}

/// The storage a node runs on.
pub trait Store: Send + Sync + 'static {
    /// Lines and chain heads, to build the core at start.
    fn load(&self) -> Result<Loaded, StoreError>;
    /// Commits a batch of records in one transaction; one outcome per record, in order.
    fn commit(&self, batch: WriteBatch) -> Pending<Vec<Outcome>>;
    /// Records what a peer said about envelopes sent to it.
    fn settle(&self, peer: &MemberCode, results: Vec<(EnvelopeHash, Settlement)>, now_ms: u64) -> Pending<()>;
    /// Envelopes due for a peer at `now_ms`, most urgent first, then oldest first.
    fn outbox(&self, peer: &MemberCode, now_ms: u64, limit: usize) -> Result<Vec<OutboxItem>, StoreError>;
    /// The earliest time a deferred envelope for a peer is due again.
    fn outbox_next_due(&self, peer: &MemberCode) -> Result<Option<u64>, StoreError>;
    /// The backlog towards every peer that has one.
    fn queue_stats(&self) -> Result<Vec<QueueStat>, StoreError>;
    fn messages(&self, query: &MessageQuery) -> Result<Vec<MessageRow>, StoreError>;
    fn message(&self, hash: &EnvelopeHash) -> Result<Option<MessageRow>, StoreError>;
    fn recipients(&self, hash: &EnvelopeHash) -> Result<Vec<RecipientRow>, StoreError>;
    fn add_operator(&self, op: &Operator, token_hash: [u8; 32]) -> Result<(), StoreError>;
    fn operator_by_token(&self, token_hash: &[u8; 32]) -> Result<Option<Operator>, StoreError>;
}
