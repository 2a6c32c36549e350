//! The SQLite backend: WAL, `synchronous=FULL`, one writer thread with group commit, a small pool
//! of reader connections.
//!
//! Every write is a job sent to the writer thread. The thread takes all jobs waiting (up to
//! `group_len_max`), runs each in its own savepoint inside one transaction, commits, and only then
//! answers each job. So many concurrent writers share one fsync, and nobody hears "done" before
//! the data is on disk.

mod read;
mod write;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use adi_core::{Evidence, HeldEnvelope, MemberCode, Restored, WriteBatch};
use adi_wire::{EnvelopeHash, LineId};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use crate::seal::Sealer;
use crate::{
    AlarmAck, AlarmRow, CheckpointRow, DecisionRow, DraftRow, EnvelopeRow, EventRow, MessageQuery, MessageRow,
    Operator, OutboxItem, Outcome, Pending, QueueStat, ReceiptRow, RecipientRow, SessionRow, Settlement, Store,
    StoreError, TranslationRow,
};

/// Settings of the SQLite backend.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub path: PathBuf,
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
    /// in the log.
    pub wal_wipe_ms: u64,
}

impl StoreConfig {
    pub fn new(path: impl Into<PathBuf>, master_key: [u8; 32]) -> Self {
        StoreConfig {
            master_key,
            path: path.into(),
            group_len_max: 512,
            readers_max: 8,
            busy_timeout_ms: 5_000,
            events_retained_max: 100_000,
            wal_wipe_ms: 1_000,
        }
    }
}

const SCHEMA_VERSION: &str = "4";

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lines (
    id BLOB PRIMARY KEY,
    scope TEXT NOT NULL,
    title TEXT NOT NULL,
    home TEXT NOT NULL,
    members TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS envelopes (
    arrival INTEGER PRIMARY KEY AUTOINCREMENT,
    hash BLOB NOT NULL UNIQUE,
    line BLOB NOT NULL REFERENCES lines(id),
    sender TEXT NOT NULL,
    seq INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    epoch INTEGER NOT NULL,
    content BLOB,
    kind TEXT NOT NULL,
    precedence TEXT,
    class TEXT,
    caveat BLOB,
    subject BLOB,
    body BLOB,
    ack_required INTEGER NOT NULL DEFAULT 0,
    crisis INTEGER NOT NULL DEFAULT 0,
    deadline_ms INTEGER,
    released_by TEXT,
    UNIQUE (line, sender, seq)
);
CREATE TABLE IF NOT EXISTS recipients (
    hash BLOB NOT NULL,
    member TEXT NOT NULL,
    state TEXT NOT NULL,
    sent_ms INTEGER NOT NULL,
    delivered_ms INTEGER,
    decrypted_ms INTEGER,
    seen_ms INTEGER,
    acknowledged_ms INTEGER,
    declined_ms INTEGER,
    detail BLOB,
    PRIMARY KEY (hash, member)
);
CREATE TABLE IF NOT EXISTS receipts (
    hash BLOB PRIMARY KEY,
    answers BLOB NOT NULL,
    member TEXT NOT NULL,
    kind TEXT NOT NULL,
    reason BLOB,
    signed_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS receipts_answers ON receipts (answers, member);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    peer TEXT NOT NULL,
    hash BLOB NOT NULL,
    priority INTEGER NOT NULL,
    enqueued_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try_ms INTEGER NOT NULL DEFAULT 0,
    UNIQUE (peer, hash)
);
CREATE INDEX IF NOT EXISTS outbox_order ON outbox (peer, priority, id);
CREATE TABLE IF NOT EXISTS alarms (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    line BLOB NOT NULL,
    member TEXT NOT NULL,
    message BLOB,
    raised_ms INTEGER NOT NULL,
    detail BLOB NOT NULL,
    addressed_to TEXT NOT NULL,
    repeats INTEGER NOT NULL DEFAULT 0,
    last_raised_ms INTEGER NOT NULL,
    acked_by TEXT,
    acked_ms INTEGER,
    cleared_ms INTEGER,
    clear_reason BLOB
);
CREATE INDEX IF NOT EXISTS alarms_open ON alarms (kind, line, member) WHERE cleared_ms IS NULL;
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    line BLOB,
    message BLOB,
    member TEXT,
    state TEXT,
    alarm INTEGER,
    detail BLOB
);
CREATE TABLE IF NOT EXISTS drafts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    line BLOB NOT NULL,
    draft BLOB NOT NULL,
    drafter TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    released_by TEXT,
    released_ms INTEGER,
    message BLOB
);
CREATE TABLE IF NOT EXISTS mls_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    snapshot BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS held (
    hash BLOB PRIMARY KEY,
    line BLOB NOT NULL,
    sender TEXT NOT NULL,
    seq INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    received_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS held_line ON held (line, epoch);
CREATE TABLE IF NOT EXISTS evidence (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    line BLOB NOT NULL,
    member TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    detail BLOB NOT NULL,
    held BLOB NOT NULL,
    offered BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    line BLOB NOT NULL,
    signer TEXT NOT NULL,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    time_ms INTEGER NOT NULL,
    signed BLOB NOT NULL,
    PRIMARY KEY (line, signer, size, root)
);
CREATE TABLE IF NOT EXISTS countersignatures (
    line BLOB NOT NULL,
    signer TEXT NOT NULL,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    member TEXT NOT NULL,
    signature BLOB NOT NULL,
    PRIMARY KEY (line, signer, size, root, member)
);
CREATE TABLE IF NOT EXISTS decisions (
    id BLOB PRIMARY KEY,
    line BLOB NOT NULL,
    proposer TEXT NOT NULL,
    text BLOB NOT NULL,
    text_sha256 BLOB NOT NULL,
    parties TEXT NOT NULL,
    deadline_ms INTEGER,
    supersedes BLOB,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_line ON decisions (line, created_ms);
CREATE TABLE IF NOT EXISTS concurrences (
    hash BLOB PRIMARY KEY,
    decision BLOB NOT NULL,
    member TEXT NOT NULL,
    text_sha256 BLOB NOT NULL,
    concur INTEGER NOT NULL,
    reason BLOB,
    signed_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS concurrences_decision ON concurrences (decision, member);
CREATE TABLE IF NOT EXISTS translations (
    hash BLOB PRIMARY KEY,
    original BLOB NOT NULL,
    member TEXT NOT NULL,
    language TEXT NOT NULL,
    text BLOB NOT NULL,
    translator TEXT NOT NULL,
    reviewed_by TEXT,
    revises BLOB,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS translations_original ON translations (original, created_ms);
CREATE TABLE IF NOT EXISTS key_packages (
    reference BLOB PRIMARY KEY,
    bytes BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    claimed_by TEXT,
    claimed_ms INTEGER
);
CREATE TABLE IF NOT EXISTS used_key_packages (
    reference BLOB PRIMARY KEY,
    member TEXT NOT NULL,
    used_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS operators (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL,
    password_hash TEXT
);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash BLOB PRIMARY KEY,
    operator TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '4');
"#;

/// Counters of the writer thread.
#[derive(Default)]
struct Stats {
    transactions: AtomicU64,
    jobs: AtomicU64,
}

/// How many jobs the writer has committed in how many transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitStats {
    pub transactions: u64,
    pub jobs: u64,
}

/// A unit of work for the writer: it runs in its own savepoint and returns how to answer once
/// the group's transaction has committed (or failed to).
type Job = Box<dyn FnOnce(Option<&mut Transaction<'_>>) -> Reply + Send>;
type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;

/// The SQLite store. Cloning shares the writer thread and the reader pool.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: StoreConfig,
    sealer: Sealer,
    stats: Arc<Stats>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    readers: Mutex<Vec<Connection>>,
    writer: Mutex<Option<thread::JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        if let Ok(mut writer) = self.writer.lock() {
            if let Some(handle) = writer.take() {
                let _ = handle.join();
            }
        }
    }
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Db(e.to_string())
}

fn open_connection(config: &StoreConfig) -> Result<Connection, StoreError> {
    let conn = Connection::open(&config.path).map_err(db)?;
    conn.busy_timeout(std::time::Duration::from_millis(config.busy_timeout_ms)).map_err(db)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(db)?;
    conn.pragma_update(None, "synchronous", "FULL").map_err(db)?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
    // Deleted rows (spent secrets, settled outbox entries) are overwritten, not left in free pages.
    conn.pragma_update(None, "secure_delete", "ON").map_err(db)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database and starts its writer thread.
    pub fn open(config: StoreConfig) -> Result<SqliteStore, StoreError> {
        let conn = open_connection(&config)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        let version: String =
            conn.query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |row| row.get(0)).map_err(db)?;
        if version != SCHEMA_VERSION {
            return Err(StoreError::Corrupt(format!(
                "{}: the database has schema version {version}; this build reads version {SCHEMA_VERSION}",
                config.path.display()
            )));
        }
        let (tx, rx) = mpsc::channel();
        let group_len_max = config.group_len_max;
        let wipe = std::time::Duration::from_millis(config.wal_wipe_ms.max(1));
        let stats = Arc::new(Stats::default());
        let writer_stats = stats.clone();
        let writer = thread::Builder::new()
            .name("adi-store-writer".into())
            .spawn(move || writer_loop(conn, rx, group_len_max, wipe, &writer_stats))
            .map_err(|e| StoreError::Db(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                sealer: Sealer::new(&config.master_key),
                config,
                stats,
                jobs: Mutex::new(Some(tx)),
                readers: Mutex::new(Vec::new()),
                writer: Mutex::new(Some(writer)),
            }),
        })
    }

    /// Jobs and transactions committed so far: with concurrent writers, fewer transactions than
    /// jobs shows that commits were grouped.
    pub fn commit_stats(&self) -> CommitStats {
        CommitStats {
            transactions: self.inner.stats.transactions.load(Ordering::Relaxed),
            jobs: self.inner.stats.jobs.load(Ordering::Relaxed),
        }
    }

    pub fn path(&self) -> &Path {
        &self.inner.config.path
    }

    /// Queues `work` for the writer; the answer comes once the transaction holding it committed.
    fn submit<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Pending<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |t: Option<&mut Transaction<'_>>| {
            let result = match t {
                Some(t) => in_savepoint(t, work),
                None => Err(StoreError::Db("no transaction could be started".into())),
            };
            Box::new(move |committed: Result<(), String>| {
                let _ = tx.send(match committed {
                    Ok(()) => result,
                    Err(e) => Err(StoreError::Db(e)),
                });
            })
        });
        if let Ok(guard) = self.inner.jobs.lock() {
            if let Some(sender) = guard.as_ref() {
                // A send fails only once the writer is gone; the dropped reply then reads `Closed`.
                let _ = sender.send(job);
            }
        }
        Pending(rx)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error>) -> Result<T, StoreError> {
        let conn = match self.inner.readers.lock().ok().and_then(|mut r| r.pop()) {
            Some(c) => c,
            None => open_connection(&self.inner.config)?,
        };
        let out = f(&conn).map_err(db);
        if let Ok(mut r) = self.inner.readers.lock() {
            if r.len() < self.inner.config.readers_max {
                r.push(conn);
            }
        }
        out
    }
}

fn writer_loop(
    mut conn: Connection,
    rx: mpsc::Receiver<Job>,
    group_len_max: usize,
    wipe: std::time::Duration,
    stats: &Stats,
) {
    // When the log holds writes not yet wiped from it.
    let mut dirty: Option<std::time::Instant> = None;
    loop {
        let first = match dirty {
            Some(since) => match rx.recv_timeout(wipe.saturating_sub(since.elapsed())) {
                Ok(j) => Some(j),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            },
            None => match rx.recv() {
                Ok(j) => Some(j),
                Err(_) => return,
            },
        };
        if let Some(first) = first {
            let mut jobs = vec![first];
            while jobs.len() < group_len_max {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            if run_group(&mut conn, jobs, stats) && dirty.is_none() {
                dirty = Some(std::time::Instant::now());
            }
        }
        if dirty.is_some_and(|since| since.elapsed() >= wipe) && wipe_log(&conn) {
            dirty = None;
        }
    }
}

/// Copies the write-ahead log into the database and truncates it to nothing; `false` when a
/// reader kept part of it (tried again later).
fn wipe_log(conn: &Connection) -> bool {
    match conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get::<_, i64>(0)) {
        Ok(busy) => busy == 0,
        Err(e) => {
            tracing::warn!(error = %e, "cannot checkpoint the write-ahead log");
            false
        }
    }
}

/// Runs jobs in one transaction and answers them; returns whether the transaction committed.
fn run_group(conn: &mut Connection, jobs: Vec<Job>, stats: &Stats) -> bool {
    // IMMEDIATE takes the write lock up front, waiting for it under the busy timeout: a deferred
    // transaction that has read cannot wait for a lock held by another connection and fails at
    // its first write instead.
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            tracing::error!(error = %e, "cannot begin a transaction");
            for job in jobs {
                job(None)(Err(e.to_string()));
            }
            return false;
        }
    };
    let replies: Vec<Reply> = jobs.into_iter().map(|job| job(Some(&mut tx))).collect();
    match tx.commit() {
        Ok(()) => {
            // Counted before anyone hears "done", so the statistics include every answered job.
            stats.transactions.fetch_add(1, Ordering::Relaxed);
            stats.jobs.fetch_add(replies.len() as u64, Ordering::Relaxed);
            for reply in replies {
                reply(Ok(()));
            }
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "group commit failed");
            for reply in replies {
                reply(Err(e.to_string()));
            }
            false
        }
    }
}

fn in_savepoint<T>(
    tx: &mut Transaction<'_>,
    f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error>,
) -> Result<T, StoreError> {
    let sp = tx.savepoint().map_err(db)?;
    match f(&sp) {
        Ok(v) => {
            sp.commit().map_err(db)?;
            Ok(v)
        }
        Err(e) => {
            // Dropping the savepoint rolls it back.
            drop(sp);
            Err(db(e))
        }
    }
}

impl Store for SqliteStore {
    fn load(&self, me: &MemberCode) -> Result<Restored, StoreError> {
        let me = me.clone();
        self.read(move |c| read::load(c, &self.inner.sealer, &me))
    }

    fn commit(&self, batch: WriteBatch) -> Pending<Vec<Outcome>> {
        let keep = self.inner.config.events_retained_max;
        let s = self.inner.sealer.clone();
        self.submit(move |c| {
            let out = write::commit_batch(c, &s, &batch)?;
            write::prune_events(c, keep)?;
            Ok(out)
        })
    }

    fn commit_release(&self, batch: WriteBatch, draft: u64, principal: String, now_ms: u64) -> Pending<Vec<Outcome>> {
        let s = self.inner.sealer.clone();
        self.submit(move |c| {
            let out = write::commit_batch(c, &s, &batch)?;
            let message = batch.records.first().map(|r| r.envelope.hash()).unwrap_or_default();
            write::release_draft(c, draft, &principal, message, now_ms)?;
            Ok(out)
        })
    }

    fn add_draft(&self, line: LineId, draft_json: String, drafter: String, now_ms: u64) -> Pending<u64> {
        let s = self.inner.sealer.clone();
        self.submit(move |c| write::add_draft(c, &s, line, &draft_json, &drafter, now_ms))
    }

    fn drafts(&self, awaiting_only: bool, limit: usize) -> Result<Vec<DraftRow>, StoreError> {
        self.read(|c| read::drafts(c, &self.inner.sealer, awaiting_only, limit))
    }

    fn draft(&self, id: u64) -> Result<Option<DraftRow>, StoreError> {
        self.read(|c| read::draft(c, &self.inner.sealer, id))
    }

    fn settle(&self, peer: &MemberCode, results: Vec<(EnvelopeHash, Settlement)>, now_ms: u64) -> Pending<()> {
        let peer = peer.clone();
        let s = self.inner.sealer.clone();
        self.submit(move |c| write::settle(c, &s, &peer, &results, now_ms))
    }

    fn outbox(&self, peer: &MemberCode, now_ms: u64, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        self.read(|c| read::outbox(c, &self.inner.sealer, peer, now_ms, limit))
    }

    fn outbox_next_due(&self, peer: &MemberCode) -> Result<Option<u64>, StoreError> {
        self.read(|c| read::outbox_next_due(c, peer))
    }

    fn queue_stats(&self) -> Result<Vec<QueueStat>, StoreError> {
        self.read(read::queue_stats)
    }

    fn messages(&self, q: &MessageQuery) -> Result<Vec<MessageRow>, StoreError> {
        self.read(|c| read::messages(c, &self.inner.sealer, q))
    }

    fn message(&self, hash: &EnvelopeHash) -> Result<Option<MessageRow>, StoreError> {
        self.read(|c| read::message(c, &self.inner.sealer, hash))
    }

    fn envelope_at(&self, line: &LineId, sender: &str, seq: u64) -> Result<Option<EnvelopeHash>, StoreError> {
        self.read(|c| read::envelope_at(c, line, sender, seq))
    }

    fn held(&self, line: &LineId, epoch: u64) -> Result<Vec<HeldEnvelope>, StoreError> {
        self.read(|c| read::held(c, &self.inner.sealer, line, epoch))
    }

    fn line_log(&self, line: &LineId) -> Result<Vec<EnvelopeHash>, StoreError> {
        self.read(|c| read::line_log(c, line))
    }

    fn checkpoints(&self, line: &LineId, signer: Option<&str>) -> Result<Vec<CheckpointRow>, StoreError> {
        self.read(|c| read::checkpoints(c, line, signer))
    }

    fn decisions(&self, line: Option<&LineId>, id: Option<&EnvelopeHash>) -> Result<Vec<DecisionRow>, StoreError> {
        self.read(|c| read::decisions(c, &self.inner.sealer, line, id))
    }

    fn translations(
        &self,
        original: Option<&EnvelopeHash>,
        id: Option<&EnvelopeHash>,
    ) -> Result<Vec<TranslationRow>, StoreError> {
        self.read(|c| read::translations(c, &self.inner.sealer, original, id))
    }

    fn evidence(&self, limit: usize) -> Result<Vec<(u64, Evidence)>, StoreError> {
        self.read(|c| read::evidence(c, &self.inner.sealer, limit))
    }

    fn held_counts(&self) -> Result<Vec<(LineId, u64)>, StoreError> {
        self.read(read::held_counts)
    }

    fn envelope(&self, hash: &EnvelopeHash) -> Result<Option<EnvelopeRow>, StoreError> {
        self.read(|c| read::envelope(c, &self.inner.sealer, hash))
    }

    fn recipients(&self, hash: &EnvelopeHash) -> Result<Vec<RecipientRow>, StoreError> {
        self.read(|c| read::recipients(c, &self.inner.sealer, hash))
    }

    fn receipts(&self, answers: &EnvelopeHash) -> Result<Vec<ReceiptRow>, StoreError> {
        self.read(|c| read::receipts(c, &self.inner.sealer, answers))
    }

    fn alarms(&self, open_only: bool, limit: usize) -> Result<Vec<AlarmRow>, StoreError> {
        self.read(|c| read::alarms(c, &self.inner.sealer, open_only, limit))
    }

    fn ack_alarm(&self, id: u64, operator: String, now_ms: u64) -> Pending<AlarmAck> {
        let s = self.inner.sealer.clone();
        self.submit(move |c| write::ack_alarm(c, &s, id, &operator, now_ms))
    }

    fn events_after(&self, after: u64, limit: usize) -> Result<Vec<EventRow>, StoreError> {
        self.read(|c| read::events_after(c, &self.inner.sealer, after, limit))
    }

    fn event_bounds(&self) -> Result<(u64, u64), StoreError> {
        self.read(read::event_bounds)
    }

    fn add_operator(&self, op: &Operator, token_hash: [u8; 32]) -> Result<(), StoreError> {
        let conn = open_connection(&self.inner.config)?;
        conn.execute(
            "INSERT INTO operators (name, role, token_hash, created_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO UPDATE SET role = excluded.role, token_hash = excluded.token_hash",
            params![op.name, op.role, &token_hash[..], op.created_ms as i64],
        )
        .map_err(db)?;
        Ok(())
    }

    fn set_password(&self, name: &str, password_hash: &str) -> Result<bool, StoreError> {
        let conn = open_connection(&self.inner.config)?;
        let n = conn
            .execute("UPDATE operators SET password_hash = ?2 WHERE name = ?1", params![name, password_hash])
            .map_err(db)?;
        Ok(n == 1)
    }

    fn operator_password(&self, name: &str) -> Result<Option<(Operator, Option<String>)>, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT name, role, created_ms, password_hash FROM operators WHERE name = ?1",
                params![name],
                |row| {
                    Ok((
                        Operator {
                            name: row.get(0)?,
                            role: row.get(1)?,
                            created_ms: row.get::<_, i64>(2)?.max(0) as u64,
                        },
                        row.get(3)?,
                    ))
                },
            )
            .optional()
        })
    }

    fn start_session(&self, id_hash: [u8; 32], operator: String, csrf: String, now_ms: u64) -> Pending<()> {
        self.submit(move |c| {
            c.execute(
                "INSERT INTO sessions (id_hash, operator, csrf, created_ms, last_seen_ms) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![&id_hash[..], operator, csrf, now_ms as i64],
            )?;
            Ok(())
        })
    }

    fn session(&self, id_hash: &[u8; 32]) -> Result<Option<SessionRow>, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT s.operator, o.role, s.csrf, s.created_ms, s.last_seen_ms FROM sessions s
                 JOIN operators o ON o.name = s.operator WHERE s.id_hash = ?1",
                params![&id_hash[..]],
                |row| {
                    Ok(SessionRow {
                        operator: Operator { name: row.get(0)?, role: row.get(1)?, created_ms: 0 },
                        csrf: row.get(2)?,
                        created_ms: row.get::<_, i64>(3)?.max(0) as u64,
                        last_seen_ms: row.get::<_, i64>(4)?.max(0) as u64,
                    })
                },
            )
            .optional()
        })
    }

    fn touch_session(&self, id_hash: [u8; 32], now_ms: u64) -> Pending<()> {
        self.submit(move |c| {
            c.execute(
                "UPDATE sessions SET last_seen_ms = ?2 WHERE id_hash = ?1",
                params![&id_hash[..], now_ms as i64],
            )?;
            Ok(())
        })
    }

    fn end_session(&self, id_hash: [u8; 32]) -> Pending<()> {
        self.submit(move |c| {
            c.execute("DELETE FROM sessions WHERE id_hash = ?1", params![&id_hash[..]])?;
            Ok(())
        })
    }

    fn mls_state(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let sealed = self.read(|c| {
            c.query_row("SELECT snapshot FROM mls_state WHERE id = 1", [], |row| row.get::<_, Vec<u8>>(0)).optional()
        })?;
        sealed.map(|s| self.inner.sealer.open("mls_state.snapshot", &s)).transpose()
    }

    fn add_key_packages(&self, state: Vec<u8>, key_packages: Vec<(Vec<u8>, Vec<u8>)>, now_ms: u64) -> Pending<()> {
        let sealed = self.inner.sealer.seal("mls_state.snapshot", &state);
        self.submit(move |c| {
            write::mls_state(c, &sealed)?;
            for (reference, bytes) in &key_packages {
                c.execute(
                    "INSERT INTO key_packages (reference, bytes, created_ms) VALUES (?1, ?2, ?3)",
                    params![reference, bytes, now_ms as i64],
                )?;
            }
            Ok(())
        })
    }

    fn key_packages_available(&self) -> Result<u64, StoreError> {
        self.read(|c| {
            c.query_row("SELECT COUNT(*) FROM key_packages WHERE claimed_by IS NULL", [], |row| row.get::<_, i64>(0))
                .map(|n| n.max(0) as u64)
        })
    }

    fn claim_key_package(&self, peer: &MemberCode, now_ms: u64) -> Pending<Option<Vec<u8>>> {
        let peer = peer.to_string();
        self.submit(move |c| {
            let next: Option<(Vec<u8>, Vec<u8>)> = c
                .query_row(
                    "SELECT reference, bytes FROM key_packages WHERE claimed_by IS NULL ORDER BY created_ms, reference LIMIT 1",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            let Some((reference, bytes)) = next else { return Ok(None) };
            c.execute(
                "UPDATE key_packages SET claimed_by = ?2, claimed_ms = ?3 WHERE reference = ?1",
                params![reference, peer, now_ms as i64],
            )?;
            Ok(Some(bytes))
        })
    }

    fn operator_by_token(&self, token_hash: &[u8; 32]) -> Result<Option<Operator>, StoreError> {
        self.read(|c| read::operator_by_token(c, token_hash))
    }

    fn use_key_package(&self, reference: Vec<u8>, member: &MemberCode, now_ms: u64) -> Pending<bool> {
        let member = member.to_string();
        self.submit(move |c| {
            let n = c.execute(
                "INSERT OR IGNORE INTO used_key_packages (reference, member, used_ms) VALUES (?1, ?2, ?3)",
                params![reference, member, now_ms as i64],
            )?;
            Ok(n == 1)
        })
    }

    fn used_key_packages(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare("SELECT reference FROM used_key_packages")?;
            let rows = stmt.query_map([], |row| row.get(0))?.collect::<Result<Vec<Vec<u8>>, _>>()?;
            Ok(rows)
        })
    }
}
