//! The SQLite backend: WAL, `synchronous=FULL`, one writer thread with group commit, a small pool
//! of reader connections.
//!
//! Every write is a job sent to the writer thread. The thread takes all jobs waiting (up to
//! `group_len_max`), runs each in its own savepoint inside one transaction, commits, and only then
//! answers each job. So many concurrent writers share one fsync, and nobody hears "done" before
//! the data is on disk.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use adi_core::line::Scope;
use adi_core::{Content, Line, MemberCode, OwnHead, Record, WriteBatch};
use adi_wire::{EnvelopeHash, LineId};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use crate::{
    Loaded, MessageQuery, MessageRow, Operator, OutboxItem, Outcome, Pending, QueueStat, RecipientRow, Settlement,
    Store, StoreError,
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
}

impl StoreConfig {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StoreConfig { path: path.into(), group_len_max: 512, readers_max: 8, busy_timeout_ms: 5_000 }
    }
}

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
    kind TEXT NOT NULL,
    precedence TEXT,
    class TEXT,
    caveat TEXT,
    subject TEXT,
    body TEXT,
    ack_required INTEGER NOT NULL DEFAULT 0,
    UNIQUE (line, sender, seq)
);
CREATE TABLE IF NOT EXISTS recipients (
    hash BLOB NOT NULL,
    member TEXT NOT NULL,
    state TEXT NOT NULL,
    sent_ms INTEGER NOT NULL,
    delivered_ms INTEGER,
    detail TEXT,
    PRIMARY KEY (hash, member)
);
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
CREATE TABLE IF NOT EXISTS operators (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '1');
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

enum Job {
    Commit(WriteBatch, oneshot::Sender<Result<Vec<Outcome>, StoreError>>),
    Settle(MemberCode, Vec<(EnvelopeHash, Settlement)>, u64, oneshot::Sender<Result<(), StoreError>>),
}

/// The SQLite store. Cloning shares the writer thread and the reader pool.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: StoreConfig,
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
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database and starts its writer thread.
    pub fn open(config: StoreConfig) -> Result<SqliteStore, StoreError> {
        let conn = open_connection(&config)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        let (tx, rx) = mpsc::channel();
        let group_len_max = config.group_len_max;
        let stats = Arc::new(Stats::default());
        let writer_stats = stats.clone();
        let writer = thread::Builder::new()
            .name("adi-store-writer".into())
            .spawn(move || writer_loop(conn, rx, group_len_max, &writer_stats))
            .map_err(|e| StoreError::Db(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
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

    fn submit<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Job) -> Pending<T> {
        let (tx, rx) = oneshot::channel();
        let job = make(tx);
        let sent = match self.inner.jobs.lock() {
            Ok(guard) => guard.as_ref().map(|s| s.send(job).is_ok()).unwrap_or(false),
            Err(_) => false,
        };
        // When the job could not be sent its reply sender is dropped, and `wait` reports `Closed`.
        let _ = sent;
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

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Job>, group_len_max: usize, stats: &Stats) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < group_len_max {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        run_group(&mut conn, jobs, stats);
    }
}

/// A job's result, held until the group's transaction commits.
enum Done {
    Commit(oneshot::Sender<Result<Vec<Outcome>, StoreError>>, Result<Vec<Outcome>, StoreError>),
    Settle(oneshot::Sender<Result<(), StoreError>>, Result<(), StoreError>),
}

/// Runs jobs in one transaction and answers them; returns whether the transaction committed.
fn run_group(conn: &mut Connection, jobs: Vec<Job>, stats: &Stats) -> bool {
    let mut done = Vec::with_capacity(jobs.len());
    // IMMEDIATE takes the write lock up front, waiting for it under the busy timeout: a deferred
    // transaction that has read cannot wait for a lock held by another connection and fails at
    // its first write instead.
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            fail_all(
                jobs.into_iter().map(|j| match j {
                    Job::Commit(_, r) => Done::Commit(r, Ok(Vec::new())),
                    Job::Settle(_, _, _, r) => Done::Settle(r, Ok(())),
                }),
                &e.to_string(),
            );
            return false;
        }
    };
    let mut tx = tx;
    for job in jobs {
        match job {
            Job::Commit(batch, reply) => {
                let r = in_savepoint(&mut tx, |sp| commit_batch(sp, &batch));
                done.push(Done::Commit(reply, r));
            }
            Job::Settle(peer, results, now_ms, reply) => {
                let r = in_savepoint(&mut tx, |sp| settle(sp, &peer, &results, now_ms));
                done.push(Done::Settle(reply, r));
            }
        }
    }
    match tx.commit() {
        Ok(()) => {
            // Counted before anyone hears "done", so the statistics include every answered job.
            stats.transactions.fetch_add(1, Ordering::Relaxed);
            stats.jobs.fetch_add(done.len() as u64, Ordering::Relaxed);
            for d in done {
                match d {
                    Done::Commit(reply, r) => {
                        let _ = reply.send(r);
                    }
                    Done::Settle(reply, r) => {
                        let _ = reply.send(r);
                    }
                }
            }
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "group commit failed");
            fail_all(done.into_iter(), &e.to_string());
            false
        }
    }
}

fn fail_all(done: impl Iterator<Item = Done>, why: &str) {
    for d in done {
        match d {
            Done::Commit(reply, _) => {
                let _ = reply.send(Err(StoreError::Db(why.to_string())));
            }
            Done::Settle(reply, _) => {
                let _ = reply.send(Err(StoreError::Db(why.to_string())));
            }
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

fn commit_batch(tx: &Connection, batch: &WriteBatch) -> Result<Vec<Outcome>, rusqlite::Error> {
    let mut outcomes = Vec::with_capacity(batch.records.len());
    for record in &batch.records {
        outcomes.push(commit_record(tx, record)?);
    }
    Ok(outcomes)
}

fn commit_record(tx: &Connection, r: &Record) -> Result<Outcome, rusqlite::Error> {
    let body = r.envelope.body();
    let existing: Option<Vec<u8>> = tx
        .query_row(
            "SELECT hash FROM envelopes WHERE line = ?1 AND sender = ?2 AND seq = ?3",
            params![&body.line.0[..], body.sender, body.seq as i64],
            |row| row.get(0),
        )
        .optional()?;
    if let Some(h) = existing {
        let existing = EnvelopeHash(h.as_slice().try_into().unwrap_or([0; 32]));
        return Ok(if existing == r.envelope.hash() { Outcome::Duplicate } else { Outcome::Conflict { existing } });
    }
    if matches!(r.content, Content::LineSetup) {
        let l = &r.line;
        let members: Vec<&str> = l.members.iter().map(|m| m.as_str()).collect();
        tx.execute(
            "INSERT OR IGNORE INTO lines (id, scope, title, home, members, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![&l.id.0[..], l.scope.as_str(), l.title, l.home.as_str(), members.join(","), l.created_ms as i64],
        )?;
    }
    let (kind, precedence, class, caveat, subject, text, ack) = match &r.content {
        Content::LineSetup => ("line_setup", None, None, None, None, None, false),
        Content::Message(m) => (
            "message",
            Some(m.precedence.as_str()),
            Some(m.class.as_str()),
            Some(m.caveat.as_str()),
            Some(m.subject.as_str()),
            Some(m.body.as_str()),
            m.ack_required,
        ),
    };
    tx.execute(
        "INSERT INTO envelopes (hash, line, sender, seq, priority, created_ms, received_ms, bytes, kind,
             precedence, class, caveat, subject, body, ack_required)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        params![
            &r.envelope.hash().0[..],
            &body.line.0[..],
            body.sender,
            body.seq as i64,
            body.priority,
            body.created_ms as i64,
            r.received_ms as i64,
            r.envelope.bytes(),
            kind,
            precedence,
            class,
            caveat,
            subject,
            text,
            ack,
        ],
    )?;
    for peer in &r.recipients {
        tx.execute(
            "INSERT INTO recipients (hash, member, state, sent_ms) VALUES (?1, ?2, 'sent', ?3)",
            params![&r.envelope.hash().0[..], peer.as_str(), r.received_ms as i64],
        )?;
        tx.execute(
            "INSERT INTO outbox (peer, hash, priority, enqueued_ms) VALUES (?1, ?2, ?3, ?4)",
            params![peer.as_str(), &r.envelope.hash().0[..], body.priority, r.received_ms as i64],
        )?;
    }
    Ok(Outcome::Inserted)
}

fn settle(
    tx: &Connection,
    peer: &MemberCode,
    results: &[(EnvelopeHash, Settlement)],
    now_ms: u64,
) -> Result<(), rusqlite::Error> {
    for (hash, s) in results {
        match s {
            Settlement::Delivered => {
                tx.execute("DELETE FROM outbox WHERE peer = ?1 AND hash = ?2", params![peer.as_str(), &hash.0[..]])?;
                tx.execute(
                    "UPDATE recipients SET state = 'delivered', delivered_ms = ?3, detail = NULL
                     WHERE hash = ?1 AND member = ?2 AND state = 'sent'",
                    params![&hash.0[..], peer.as_str(), now_ms as i64],
                )?;
            }
            Settlement::Refused { reason } => {
                tx.execute("DELETE FROM outbox WHERE peer = ?1 AND hash = ?2", params![peer.as_str(), &hash.0[..]])?;
                tx.execute(
                    "UPDATE recipients SET state = 'refused', detail = ?3 WHERE hash = ?1 AND member = ?2",
                    params![&hash.0[..], peer.as_str(), reason],
                )?;
            }
            Settlement::Retry { at_ms, reason } => {
                tx.execute(
                    "UPDATE outbox SET attempts = attempts + 1, next_try_ms = ?3 WHERE peer = ?1 AND hash = ?2",
                    params![peer.as_str(), &hash.0[..], *at_ms as i64],
                )?;
                tx.execute(
                    "UPDATE recipients SET detail = ?3 WHERE hash = ?1 AND member = ?2",
                    params![&hash.0[..], peer.as_str(), reason],
                )?;
            }
        }
    }
    Ok(())
}

fn corrupt(what: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnName(format!("corrupt stored value: {what}"))
}

fn hash_of(v: Vec<u8>) -> Result<EnvelopeHash, rusqlite::Error> {
    v.as_slice().try_into().map(EnvelopeHash).map_err(|_| corrupt("envelope hash"))
}

fn line_id_of(v: Vec<u8>) -> Result<LineId, rusqlite::Error> {
    v.as_slice().try_into().map(LineId).map_err(|_| corrupt("line id"))
}

fn code_of(s: String) -> Result<MemberCode, rusqlite::Error> {
    MemberCode::parse(&s).map_err(|_| corrupt("member code"))
}

const MESSAGE_COLUMNS: &str = "hash, line, sender, seq, arrival, created_ms, received_ms, kind, precedence, class,
    caveat, subject, body, ack_required";

fn message_row(row: &rusqlite::Row<'_>) -> Result<MessageRow, rusqlite::Error> {
    Ok(MessageRow {
        hash: hash_of(row.get(0)?)?,
        line: line_id_of(row.get(1)?)?,
        sender: code_of(row.get(2)?)?,
        seq: row.get::<_, i64>(3)? as u64,
        arrival: row.get::<_, i64>(4)? as u64,
        created_ms: row.get::<_, i64>(5)? as u64,
        received_ms: row.get::<_, i64>(6)? as u64,
        kind: row.get(7)?,
        precedence: row.get(8)?,
        class: row.get(9)?,
        caveat: row.get(10)?,
        subject: row.get(11)?,
        body: row.get(12)?,
        ack_required: row.get(13)?,
    })
}

/// Interleaves messages by creation time while keeping each sender's sequence order exactly, even
/// when a sender's clock stepped back: a sender's next message is always its next sequence number.
fn keep_sender_order(rows: Vec<MessageRow>) -> Vec<MessageRow> {
    use std::collections::{BTreeMap, VecDeque};
    let mut by_sender: BTreeMap<(LineId, MemberCode), VecDeque<MessageRow>> = BTreeMap::new();
    for r in rows {
        by_sender.entry((r.line, r.sender.clone())).or_default().push_back(r);
    }
    for q in by_sender.values_mut() {
        q.make_contiguous().sort_by_key(|r| r.seq);
    }
    let mut out = Vec::new();
    loop {
        let next = by_sender.iter().filter_map(|(k, q)| q.front().map(|r| (r.created_ms, k.clone()))).min();
        match next {
            Some((_, k)) => out.extend(by_sender.get_mut(&k).and_then(|q| q.pop_front())),
            None => return out,
        }
    }
}

impl Store for SqliteStore {
    fn load(&self) -> Result<Loaded, StoreError> {
        let (lines, heads) = self.read(|c| {
            let mut stmt = c.prepare("SELECT id, scope, title, home, members, created_ms FROM lines")?;
            let lines = stmt
                .query_map([], |row| {
                    let members: String = row.get(4)?;
                    let members = members.split(',').map(|m| code_of(m.to_string())).collect::<Result<Vec<_>, _>>()?;
                    let scope: String = row.get(1)?;
                    Ok(Line {
                        id: line_id_of(row.get(0)?)?,
                        scope: Scope::parse(&scope).ok_or_else(|| corrupt("scope"))?,
                        title: row.get(2)?,
                        home: code_of(row.get(3)?)?,
                        members,
                        created_ms: row.get::<_, i64>(5)? as u64,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let mut stmt = c.prepare(
                "SELECT e.line, e.sender, e.seq, e.hash FROM envelopes e
                 JOIN (SELECT line, sender, MAX(seq) AS seq FROM envelopes GROUP BY line, sender) m
                   ON e.line = m.line AND e.sender = m.sender AND e.seq = m.seq",
            )?;
            let heads = stmt
                .query_map([], |row| {
                    Ok(OwnHead {
                        line: line_id_of(row.get(0)?)?,
                        sender: code_of(row.get(1)?)?,
                        seq: row.get::<_, i64>(2)? as u64,
                        hash: hash_of(row.get(3)?)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok((lines, heads))
        })?;
        Ok(Loaded { lines, heads })
    }

    fn commit(&self, batch: WriteBatch) -> Pending<Vec<Outcome>> {
        self.submit(|reply| Job::Commit(batch, reply))
    }

    fn settle(&self, peer: &MemberCode, results: Vec<(EnvelopeHash, Settlement)>, now_ms: u64) -> Pending<()> {
        let peer = peer.clone();
        self.submit(move |reply| Job::Settle(peer, results, now_ms, reply))
    }

    fn outbox(&self, peer: &MemberCode, now_ms: u64, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT o.hash, o.priority, e.bytes, o.attempts FROM outbox o JOIN envelopes e ON e.hash = o.hash
                 WHERE o.peer = ?1 AND o.next_try_ms <= ?2 ORDER BY o.priority, o.id LIMIT ?3",
            )?;
            let rows = stmt
                .query_map(params![peer.as_str(), now_ms as i64, limit as i64], |row| {
                    Ok(OutboxItem {
                        hash: hash_of(row.get(0)?)?,
                        priority: row.get(1)?,
                        bytes: row.get(2)?,
                        attempts: row.get(3)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn outbox_next_due(&self, peer: &MemberCode) -> Result<Option<u64>, StoreError> {
        self.read(|c| {
            c.query_row("SELECT MIN(next_try_ms) FROM outbox WHERE peer = ?1", params![peer.as_str()], |row| {
                row.get::<_, Option<i64>>(0)
            })
            .map(|v| v.map(|v| v as u64))
        })
    }

    fn queue_stats(&self) -> Result<Vec<QueueStat>, StoreError> {
        self.read(|c| {
            let mut stmt =
                c.prepare("SELECT peer, COUNT(*), MIN(enqueued_ms) FROM outbox GROUP BY peer ORDER BY peer")?;
            let rows = stmt
                .query_map([], |row| {
                    Ok(QueueStat {
                        peer: code_of(row.get(0)?)?,
                        len: row.get::<_, i64>(1)? as u64,
                        oldest_enqueued_ms: row.get::<_, Option<i64>>(2)?.map(|v| v as u64),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
    }

    fn messages(&self, q: &MessageQuery) -> Result<Vec<MessageRow>, StoreError> {
        let order = if q.by_precedence { "priority, created_ms, arrival" } else { "seq_order" };
        let order = if order == "seq_order" { "created_ms, sender, seq" } else { order };
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM envelopes WHERE kind = 'message'
               AND (?1 IS NULL OR line = ?1) AND (?2 IS NULL OR sender <> ?2)
             ORDER BY {order} LIMIT ?3"
        );
        self.read(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let line = q.line.map(|l| l.0.to_vec());
            let not_from = q.not_from.as_ref().map(|m| m.to_string());
            // The record order is only known once every row is read (a sender's clock may have
            // stepped back), so the limit applies after it; -1 is no limit to SQLite.
            let sql_limit = if q.by_precedence { q.limit as i64 } else { -1 };
            let rows =
                stmt.query_map(params![line, not_from, sql_limit], message_row)?.collect::<Result<Vec<_>, _>>()?;
            Ok(if q.by_precedence {
                rows
            } else {
                let mut rows = keep_sender_order(rows);
                rows.truncate(q.limit);
                rows
            })
        })
    }

    fn message(&self, hash: &EnvelopeHash) -> Result<Option<MessageRow>, StoreError> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM envelopes WHERE hash = ?1 AND kind = 'message'");
        self.read(|c| c.query_row(&sql, params![&hash.0[..]], message_row).optional())
    }

    fn recipients(&self, hash: &EnvelopeHash) -> Result<Vec<RecipientRow>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT member, state, sent_ms, delivered_ms, detail FROM recipients WHERE hash = ?1 ORDER BY member",
            )?;
            let rows = stmt
                .query_map(params![&hash.0[..]], |row| {
                    Ok(RecipientRow {
                        member: code_of(row.get(0)?)?,
                        state: row.get(1)?,
                        sent_ms: row.get::<_, i64>(2)? as u64,
                        delivered_ms: row.get::<_, Option<i64>>(3)?.map(|v| v as u64),
                        detail: row.get(4)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
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

    fn operator_by_token(&self, token_hash: &[u8; 32]) -> Result<Option<Operator>, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT name, role, created_ms FROM operators WHERE token_hash = ?1",
                params![&token_hash[..]],
                |row| Ok(Operator { name: row.get(0)?, role: row.get(1)?, created_ms: row.get::<_, i64>(2)? as u64 }),
            )
            .optional()
        })
    }
}
