//! The SQLite backend: WAL, `synchronous=FULL`, one writer thread with group commit, a small pool
//! of reader connections.
//!
//! Every write is a job sent to the writer thread. The thread takes all jobs waiting (up to
//! `group_len_max`), runs each in its own savepoint inside one transaction, commits, and only then
//! answers each job. So many concurrent writers share one fsync, and nobody hears "done" before
//! the data is on disk.
//!
//! A job refused for its content (a constraint) fails alone. A transaction that cannot be written
//! (a full disk, a read-only database, an I/O error) fails as a whole and is rolled back, and the
//! writer then refuses every write submitted until the runtime resumes the store, except the
//! runtime's probe; it keeps serving, and opens the database again if it had to close it.

mod read;
mod write;

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;

use adi_core::{AlarmChange, Evidence, HeldEnvelope, MemberCode, Restored, WriteBatch};
use adi_wire::{EnvelopeHash, LineId};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use crate::seal::Sealer;
use crate::{
    AlarmAck, AlarmRow, CheckpointRow, DecisionRow, DraftRow, EnvelopeRow, EventRow, MessageQuery, MessageRow,
    Operator, OutboxItem, Outcome, Pending, QueueStat, ReceiptRow, RecipientRow, SessionRow, Settlement, Store,
    StoreError, TranslationRow, WriteFault,
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
    /// Free space the runtime's probe asks of the database's disk, beside its own write, before
    /// the store takes writes again after a failure: several transactions' worth, so that a disk
    /// with room for the probe alone (in the space a failed write left allocated) does not take
    /// writes only to fail again at once.
    pub probe_headroom_bytes: usize,
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
            probe_headroom_bytes: 1 << 20,
        }
    }
}

/// Prepared statements each connection keeps parsed.
const STATEMENT_CACHE_LEN: usize = 128;

const SCHEMA_VERSION: &str = "6";
/// The version before messages carried forms and working-group tags; such a database gains the
/// two columns when it is opened.
const SCHEMA_VERSION_NO_FORMS: &str = "5";
/// The version before the MLS state was stored entry by entry; such a database is migrated when
/// it is opened.
const SCHEMA_VERSION_WHOLE_MLS_STATE: &str = "4";

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
-- Every member each line has had, as the records that changed its membership named them: a member
-- taken off since may still be read from an epoch it was on, and named a party to a decision made
-- then.
CREATE TABLE IF NOT EXISTS line_members_known (
    line BLOB NOT NULL,
    member TEXT NOT NULL,
    PRIMARY KEY (line, member)
) WITHOUT ROWID;
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
    form BLOB,
    ewg BLOB,
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
-- This member's MLS state, one row per entry of its key-value state; each commit writes only the
-- entries that changed. Values are sealed, bound to their key.
CREATE TABLE IF NOT EXISTS mls_entries (
    key BLOB PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
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
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', '6');
INSERT OR IGNORE INTO meta (key, value) VALUES ('database_id', lower(hex(randomblob(16))));
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

/// A unit of work for the writer, with the way to answer it.
trait Work: Send {
    /// Runs in the group's transaction, in a savepoint of its own. An error returned is a storage
    /// fault that fails the whole group; a refusal of this job alone (a constraint, a missing row)
    /// is kept for its answer, and its savepoint is rolled back.
    fn run(&mut self, tx: &mut Transaction<'_>) -> Result<(), rusqlite::Error>;
    /// Answers once the group's transaction has committed, or with the reason it did not.
    fn answer(self: Box<Self>, committed: Result<(), StoreError>);
}

/// A job's work, its result once run, and where its answer goes.
struct Task<T, F> {
    work: Option<F>,
    output: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Work for Task<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send,
{
    fn run(&mut self, tx: &mut Transaction<'_>) -> Result<(), rusqlite::Error> {
        let Some(work) = self.work.take() else { return Ok(()) };
        let sp = tx.savepoint()?;
        match work(&sp) {
            Ok(v) => {
                sp.commit()?;
                self.output = Some(Ok(v));
                Ok(())
            }
            // Dropping the savepoint rolls it back; the group fails with the fault.
            Err(e) if is_fault(&e) => Err(e),
            Err(e) => {
                // Dropping the savepoint rolls this job back alone.
                drop(sp);
                self.output = Some(Err(db(e)));
                Ok(())
            }
        }
    }

    fn answer(self: Box<Self>, committed: Result<(), StoreError>) {
        let output = self.output;
        let _ = self.reply.send(committed.and_then(|()| output.unwrap_or(Err(StoreError::Closed))));
    }
}

/// A write submitted to the writer.
struct Job {
    /// The store's generation when the write was submitted.
    generation: u64,
    /// Whether it runs even while writes are refused: the runtime's probe.
    probe: bool,
    work: Box<dyn Work>,
}

/// The SQLite store. Cloning shares the writer thread and the reader pool.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    sealer: Sealer,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<thread::JoinHandle<()>>>,
}

/// What the writer thread shares with the store's handles.
struct Shared {
    config: StoreConfig,
    /// The database's identity (`meta.database_id`), checked whenever it is opened again.
    database_id: String,
    stats: Stats,
    /// The newest event the writer saw committed. Readers show no event beyond it: a connection
    /// opened while the database's filesystem fails may read a transaction whose commit failed
    /// from the write-ahead log, and a client must not take such an event's id, which a later
    /// event may reuse.
    events_committed: AtomicU64,
    readers: Mutex<Vec<Connection>>,
    fence: Mutex<Fence>,
}

/// Which writes the writer refuses.
#[derive(Default)]
struct Fence {
    /// Counts resumptions after failures; every write carries the generation it was submitted in.
    generation: u64,
    /// After a failed commit: writes submitted in this generation or before are refused, with
    /// this fault. The runtime's state may be ahead of the database by the failed commit, and a
    /// write computed from it must not be committed after it.
    refused: Option<(u64, WriteFault)>,
    /// Whether connections are closed after use, leaving the database's files free while their
    /// filesystem cannot be written: it can then be repaired and mounted again under the node.
    /// The writer closes its own at the runtime's first probe, once the runtime knows of the
    /// failure: a connection opened after every one was closed reads the write-ahead log from the
    /// file, which may hold the failed transaction whole, as if committed.
    release: bool,
}

impl Fence {
    /// Whether writes submitted now are refused.
    fn refusing(&self) -> bool {
        self.refused.as_ref().is_some_and(|(through, _)| *through >= self.generation)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Drop for Inner {
    fn drop(&mut self) {
        lock(&self.jobs).take();
        if let Some(handle) = lock(&self.writer).take() {
            let _ = handle.join();
        }
    }
}

fn db(e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::ToSqlConversionFailure(inner) = &e {
        if let Some(Invariant(what)) = inner.downcast_ref::<Invariant>() {
            return StoreError::Corrupt(what.clone());
        }
    }
    StoreError::Db(e.to_string())
}

/// An assertion at the store's boundary that failed: what is about to be stored, or what was read
/// back, is not what the code that made it promises. Reported as [`StoreError::Corrupt`].
#[derive(Debug)]
struct Invariant(String);

impl std::fmt::Display for Invariant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Invariant {}

/// A failed assertion, as the error a job or a read returns (carried in the one boxed error that
/// rusqlite offers without extra features).
pub(super) fn invariant(what: String) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(Invariant(what)))
}

/// Whether an error means the database could not be written (which fails a whole group), rather
/// than a refusal of one job's content.
fn is_fault(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::*;
    matches!(
        e.sqlite_error_code(),
        Some(
            DiskFull
                | ReadOnly
                | SystemIoFailure
                | CannotOpen
                | DatabaseCorrupt
                | NotADatabase
                | DatabaseBusy
                | DatabaseLocked
                | OutOfMemory
                | FileLockingProtocolFailed
        )
    )
}

/// Names the cause of a failed write. SQLite reports a full disk and a read-only database by
/// code, but a filesystem turned read-only under an open connection, or a disk found full only
/// at fsync, as an I/O error or a locking failure: the system is then asked directly.
fn fault_of(e: &rusqlite::Error, path: &Path) -> WriteFault {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => WriteFault::DiskFull,
        Some(rusqlite::ErrorCode::ReadOnly) => WriteFault::ReadOnly,
        _ => system_fault(path).unwrap_or_else(|| WriteFault::Failed(e.to_string())),
    }
}

/// Writes and syncs one small file beside the database, and removes it: a full disk or a
/// read-only filesystem, if that is what the system answers.
fn system_fault(path: &Path) -> Option<WriteFault> {
    write_beside(path, 4096).err().as_ref().and_then(io_fault)
}

/// Whether the database's disk has `bytes` free and takes writes.
fn headroom(path: &Path, bytes: usize) -> Result<(), WriteFault> {
    write_beside(path, bytes).map_err(|e| {
        io_fault(&e).unwrap_or_else(|| WriteFault::Failed(format!("cannot write beside the database: {e}")))
    })
}

/// Writes `len` bytes to a file beside the database, syncs it and removes it.
fn write_beside(path: &Path, len: usize) -> std::io::Result<()> {
    use std::io::Write;
    let mut name = path.as_os_str().to_owned();
    name.push("-probe");
    let probe = PathBuf::from(name);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)
        .and_then(|mut f| f.write_all(&vec![0; len]).and_then(|()| f.sync_all()));
    let _ = std::fs::remove_file(&probe);
    written
}

fn io_fault(e: &std::io::Error) -> Option<WriteFault> {
    match e.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => Some(WriteFault::DiskFull),
        std::io::ErrorKind::ReadOnlyFilesystem => Some(WriteFault::ReadOnly),
        _ => None,
    }
}

/// Opens a connection with the node's settings; only [`SqliteStore::open`] may create the file.
fn connect(config: &StoreConfig, create: bool) -> Result<Connection, rusqlite::Error> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(&config.path, flags)?;
    conn.busy_timeout(std::time::Duration::from_millis(config.busy_timeout_ms))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Deleted rows (spent secrets, settled outbox entries) are overwritten, not left in free pages.
    conn.pragma_update(None, "secure_delete", "ON")?;
    // The writer and readers run the same few statements over and over: each is parsed once.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_LEN);
    Ok(conn)
}

/// Moves the whole-state MLS snapshot of a version 4 database into one row per entry, in one
/// transaction.
fn migrate_whole_mls_state(conn: &mut Connection, sealer: &Sealer) -> Result<(), StoreError> {
    let tx = conn.transaction().map_err(db)?;
    let legacy: Option<Vec<u8>> =
        tx.query_row("SELECT snapshot FROM mls_state WHERE id = 1", [], |row| row.get(0)).optional().map_err(db)?;
    if let Some(sealed) = legacy {
        let whole = sealer.open("mls_state.snapshot", &sealed)?;
        let entries = adi_mls::decode_state(&whole).map_err(|e| StoreError::Corrupt(format!("mls_state: {e}")))?;
        let delta = adi_mls::StateDelta { put: entries.into_iter().collect(), delete: Vec::new() };
        write::mls_delta(&tx, sealer, &delta).map_err(db)?;
    }
    tx.execute_batch(&format!(
        "DROP TABLE IF EXISTS mls_state; UPDATE meta SET value = '{SCHEMA_VERSION_NO_FORMS}' WHERE key = 'schema_version';"
    ))
    .map_err(db)?;
    tx.commit().map_err(db)
}

/// Gives a version 5 database's envelopes the form and working-group columns, in one transaction.
fn migrate_add_forms(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction().map_err(db)?;
    let columns: Vec<String> = tx
        .prepare("SELECT name FROM pragma_table_info('envelopes')")
        .and_then(|mut st| st.query_map([], |row| row.get(0))?.collect())
        .map_err(db)?;
    for (column, kind) in [("form", "BLOB"), ("ewg", "BLOB")] {
        if !columns.iter().any(|c| c == column) {
            tx.execute_batch(&format!("ALTER TABLE envelopes ADD COLUMN {column} {kind};")).map_err(db)?;
        }
    }
    tx.execute_batch(&format!("UPDATE meta SET value = '{SCHEMA_VERSION}' WHERE key = 'schema_version';"))
        .map_err(db)?;
    tx.commit().map_err(db)
}

fn newest_event(conn: &Connection) -> Result<u64, rusqlite::Error> {
    conn.prepare_cached("SELECT COALESCE(MAX(id), 0) FROM events")?
        .query_row([], |row| row.get::<_, i64>(0))
        .map(|id| id.max(0) as u64)
}

fn database_id(conn: &Connection) -> Result<String, rusqlite::Error> {
    conn.query_row("SELECT value FROM meta WHERE key = 'database_id'", [], |row| row.get(0))
}

impl SqliteStore {
    /// Opens (creating if needed) the database and starts its writer thread.
    pub fn open(config: StoreConfig) -> Result<SqliteStore, StoreError> {
        let mut conn = connect(&config, true).map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        let sealer = Sealer::new(&config.master_key);
        let mut version: String =
            conn.query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |row| row.get(0)).map_err(db)?;
        if version == SCHEMA_VERSION_WHOLE_MLS_STATE {
            migrate_whole_mls_state(&mut conn, &sealer)?;
            version = SCHEMA_VERSION_NO_FORMS.to_string();
        }
        if version == SCHEMA_VERSION_NO_FORMS {
            migrate_add_forms(&mut conn)?;
            version = SCHEMA_VERSION.to_string();
        }
        if version != SCHEMA_VERSION {
            return Err(StoreError::Corrupt(format!(
                "{}: the database has schema version {version}; this build reads version {SCHEMA_VERSION}",
                config.path.display()
            )));
        }
        let database_id = database_id(&conn).map_err(db)?;
        let events_committed = newest_event(&conn).map_err(db)?;
        let (tx, rx) = mpsc::channel();
        let group_len_max = config.group_len_max;
        let wipe = std::time::Duration::from_millis(config.wal_wipe_ms.max(1));
        let shared = Arc::new(Shared {
            config,
            database_id,
            stats: Stats::default(),
            events_committed: AtomicU64::new(events_committed),
            readers: Mutex::new(Vec::new()),
            fence: Mutex::new(Fence::default()),
        });
        let writer = Writer { shared: shared.clone(), conn: Some(conn) };
        let writer = thread::Builder::new()
            .name("adi-store-writer".into())
            .spawn(move || writer_loop(writer, rx, group_len_max, wipe))
            .map_err(|e| StoreError::Db(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner { shared, sealer, jobs: Mutex::new(Some(tx)), writer: Mutex::new(Some(writer)) }),
        })
    }

    /// Jobs and transactions committed so far: with concurrent writers, fewer transactions than
    /// jobs shows that commits were grouped.
    pub fn commit_stats(&self) -> CommitStats {
        let stats = &self.inner.shared.stats;
        CommitStats {
            transactions: stats.transactions.load(Ordering::Relaxed),
            jobs: stats.jobs.load(Ordering::Relaxed),
        }
    }

    pub fn path(&self) -> &Path {
        &self.inner.shared.config.path
    }

    /// Queues `work` for the writer; the answer comes once the transaction holding it committed.
    fn submit<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Pending<T> {
        self.submit_job(false, work)
    }

    fn submit_job<T: Send + 'static>(
        &self,
        probe: bool,
        work: impl FnOnce(&Connection) -> Result<T, rusqlite::Error> + Send + 'static,
    ) -> Pending<T> {
        let (tx, rx) = oneshot::channel();
        let generation = lock(&self.inner.shared.fence).generation;
        let job = Job { generation, probe, work: Box::new(Task { work: Some(work), output: None, reply: tx }) };
        if let Some(sender) = lock(&self.inner.jobs).as_ref() {
            // A send fails only once the writer is gone; the dropped reply then reads `Closed`.
            let _ = sender.send(job);
        }
        Pending(rx)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error>) -> Result<T, StoreError> {
        let shared = &self.inner.shared;
        let pooled = lock(&shared.readers).pop();
        let conn = match pooled {
            Some(c) => c,
            None => connect(&shared.config, false).map_err(db)?,
        };
        let out = f(&conn).map_err(db);
        if !lock(&shared.fence).release {
            let mut readers = lock(&shared.readers);
            if readers.len() < shared.config.readers_max {
                readers.push(conn);
            }
        }
        out
    }
}

/// The writer thread's state. Its connection is closed while the database's files are let go of
/// ([`Fence::release`]), and opened again for the next write.
struct Writer {
    shared: Arc<Shared>,
    conn: Option<Connection>,
}

fn writer_loop(mut writer: Writer, rx: mpsc::Receiver<Job>, group_len_max: usize, wipe: std::time::Duration) {
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
            if writer.run_group(jobs) && dirty.is_none() {
                dirty = Some(std::time::Instant::now());
            }
        }
        if dirty.is_some_and(|since| since.elapsed() >= wipe) {
            // A log that cannot be wiped now (a reader holds part of it, or the disk refuses the
            // checkpoint) is tried again one period later rather than at once, over and over.
            // While writes are refused it is not tried at all: the disk would refuse it, and a
            // checkpoint waiting for readers to leave the log holds them off meanwhile.
            let refusing = lock(&writer.shared.fence).refusing();
            dirty = if !refusing && writer.wipe_log() { None } else { Some(std::time::Instant::now()) };
        }
    }
}

impl Writer {
    /// Runs the jobs that may run in one transaction and answers every job; returns whether a
    /// transaction committed.
    fn run_group(&mut self, jobs: Vec<Job>) -> bool {
        let refused = lock(&self.shared.fence).refused.clone();
        let mut run = Vec::with_capacity(jobs.len());
        for job in jobs {
            match &refused {
                Some((through, fault)) if !job.probe && job.generation <= *through => {
                    let generation = job.generation;
                    job.work.answer(Err(StoreError::Unwritable { fault: fault.clone(), generation }));
                }
                _ => run.push(job),
            }
        }
        if run.is_empty() {
            return false;
        }
        // While the files are let go of, the probe opens the database afresh and holds it only
        // while it runs.
        let probing = run.iter().any(|job| job.probe) && lock(&self.shared.fence).release;
        if probing {
            self.release_files();
        }
        let committed = if run.iter().any(|job| job.probe) {
            let config = &self.shared.config;
            headroom(&config.path, config.probe_headroom_bytes).and_then(|()| self.transact(&mut run))
        } else {
            self.transact(&mut run)
        };
        if probing && lock(&self.shared.fence).release {
            self.release_files();
        }
        match committed {
            Ok(()) => {
                // Counted before anyone hears "done", so the statistics include every answered job.
                self.shared.stats.transactions.fetch_add(1, Ordering::Relaxed);
                self.shared.stats.jobs.fetch_add(run.len() as u64, Ordering::Relaxed);
                for job in run {
                    job.work.answer(Ok(()));
                }
                true
            }
            Err(fault) => {
                if run.iter().all(|job| job.probe) {
                    tracing::debug!(%fault, "the probe failed; writes stay refused");
                } else {
                    tracing::error!(%fault, jobs = run.len(), "a group commit failed; writes are refused until resumed");
                }
                self.fail(&fault);
                for job in run {
                    let generation = job.generation;
                    job.work.answer(Err(StoreError::Unwritable { fault: fault.clone(), generation }));
                }
                false
            }
        }
    }

    /// Runs jobs in one transaction and commits it. Any error leaves nothing of the group behind:
    /// dropping the transaction rolls it back.
    fn transact(&mut self, jobs: &mut [Job]) -> Result<(), WriteFault> {
        let path = self.shared.config.path.clone();
        let fault = |e: rusqlite::Error| fault_of(&e, &path);
        let conn = self.connection()?;
        // IMMEDIATE takes the write lock up front, waiting for it under the busy timeout: a deferred
        // transaction that has read cannot wait for a lock held by another connection and fails at
        // its first write instead.
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(fault)?;
        for job in jobs.iter_mut() {
            match std::panic::catch_unwind(AssertUnwindSafe(|| job.work.run(&mut tx))) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(fault(e)),
                Err(_) => return Err(WriteFault::Failed("a write failed unexpectedly".into())),
            }
            // A statement that met a storage fault may have rolled the whole transaction back:
            // nothing more may run outside it.
            if tx.is_autocommit() {
                return Err(WriteFault::Failed("the transaction was rolled back".into()));
            }
        }
        let newest = newest_event(&tx).map_err(fault)?;
        tx.commit().map_err(fault)?;
        self.shared.events_committed.fetch_max(newest, Ordering::SeqCst);
        Ok(())
    }

    /// The writer's connection, opened again if a failure closed it.
    fn connection(&mut self) -> Result<&mut Connection, WriteFault> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => reopen(&self.shared)?,
        };
        Ok(self.conn.insert(conn))
    }

    /// Refuses every write submitted so far until the store is resumed. A full disk keeps the
    /// files open, so that reads go on; any other fault may need the filesystem repaired and
    /// mounted again, which open files would prevent, so connections are closed after use from
    /// now on (the writer's at the next probe).
    fn fail(&mut self, fault: &WriteFault) {
        let mut fence = lock(&self.shared.fence);
        fence.refused = Some((fence.generation, fault.clone()));
        if *fault != WriteFault::DiskFull {
            fence.release = true;
        }
    }

    /// Closes every connection: the writer's and the idle readers'.
    fn release_files(&mut self) {
        self.conn = None;
        lock(&self.shared.readers).clear();
    }

    /// Copies the write-ahead log into the database and truncates it to nothing; `false` when a
    /// reader kept part of it or the checkpoint failed (tried again later).
    fn wipe_log(&self) -> bool {
        let Some(conn) = &self.conn else {
            // Closed after a failure: the next write opens it again and wipes after itself.
            return true;
        };
        match conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get::<_, i64>(0)) {
            Ok(busy) => busy == 0,
            Err(e) => {
                tracing::warn!(error = %e, "cannot checkpoint the write-ahead log");
                false
            }
        }
    }
}

/// Opens the database again after a failure closed its connection: never creating it (a missing
/// file is a failure, not a new empty database), and only if it is the database first opened.
fn reopen(shared: &Shared) -> Result<Connection, WriteFault> {
    let path = &shared.config.path;
    let conn = connect(&shared.config, false).map_err(|e| fault_of(&e, path))?;
    let id = database_id(&conn).map_err(|e| fault_of(&e, path))?;
    if id != shared.database_id {
        return Err(WriteFault::Failed(format!("{} is no longer the database this node opened", path.display())));
    }
    Ok(conn)
}

impl Store for SqliteStore {
    fn load(&self, me: &MemberCode) -> Result<Restored, StoreError> {
        let me = me.clone();
        self.read(move |c| read::load(c, &self.inner.sealer, &me))
    }

    fn commit(&self, batch: WriteBatch) -> Pending<Vec<Outcome>> {
        let keep = self.inner.shared.config.events_retained_max;
        let s = self.inner.sealer.clone();
        self.submit(move |c| {
            let out = write::commit_batch(c, &s, &batch)?;
            write::prune_events(c, keep)?;
            Ok(out)
        })
    }

    fn probe(&self, alarms: Vec<AlarmChange>) -> Pending<()> {
        let s = self.inner.sealer.clone();
        self.submit_job(true, move |c| {
            alarms.iter().try_for_each(|a| write::apply_alarm(c, &s, a))?;
            // Counted, so that the probe always writes a page: an alarm raised already writes
            // nothing, and a transaction that writes nothing commits on a full disk too.
            c.execute(
                "INSERT INTO meta (key, value) VALUES ('storage_probes', '1')
                 ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
                [],
            )?;
            Ok(())
        })
    }

    fn resume(&self) -> u64 {
        let mut fence = lock(&self.inner.shared.fence);
        fence.generation += 1;
        fence.release = false;
        fence.generation
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
        let through = self.inner.shared.events_committed.load(Ordering::SeqCst);
        self.read(|c| read::events_after(c, &self.inner.sealer, after, through, limit))
    }

    fn event_bounds(&self) -> Result<(u64, u64), StoreError> {
        let through = self.inner.shared.events_committed.load(Ordering::SeqCst);
        let (oldest, newest) = self.read(read::event_bounds)?;
        Ok((oldest.min(through), newest.min(through)))
    }

    fn add_operator(&self, op: &Operator, token_hash: [u8; 32]) -> Result<(), StoreError> {
        let conn = connect(&self.inner.shared.config, false).map_err(db)?;
        conn.execute(
            "INSERT INTO operators (name, role, token_hash, created_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO UPDATE SET role = excluded.role, token_hash = excluded.token_hash",
            params![op.name, op.role.as_str(), &token_hash[..], op.created_ms as i64],
        )
        .map_err(db)?;
        Ok(())
    }

    fn set_password(&self, name: &str, password_hash: &str) -> Result<bool, StoreError> {
        let conn = connect(&self.inner.shared.config, false).map_err(db)?;
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
                            role: read::role_of(row.get(1)?)?,
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
                        operator: Operator { name: row.get(0)?, role: read::role_of(row.get(1)?)?, created_ms: 0 },
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

    fn mls_state(&self) -> Result<adi_mls::StateEntries, StoreError> {
        let sealer = &self.inner.sealer;
        self.read(|c| read::mls_entries(c, sealer))
    }

    fn add_key_packages(
        &self,
        state: adi_mls::StateDelta,
        key_packages: Vec<(Vec<u8>, Vec<u8>)>,
        now_ms: u64,
    ) -> Pending<()> {
        let sealer = self.inner.sealer.clone();
        self.submit(move |c| {
            write::mls_delta(c, &sealer, &state)?;
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use adi_core::{AlarmKind, AlarmOp};

    use super::*;

    const MASTER_KEY: [u8; 32] = [7; 32];

    fn fresh() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store =
            SqliteStore::open(StoreConfig::new(dir.path().join("adi.db"), MASTER_KEY)).expect("the store opens");
        (dir, store)
    }

    /// A write of `bytes` random bytes to the `meta` table.
    fn fill(store: &SqliteStore, key: &str, bytes: usize) -> Pending<()> {
        let key = key.to_string();
        store.submit(move |c| {
            c.execute("INSERT INTO meta (key, value) VALUES (?1, hex(randomblob(?2)))", params![key, bytes as i64])?;
            Ok(())
        })
    }

    /// Runs `sql` on the writer's connection, even while writes are refused.
    fn on_writer(store: &SqliteStore, sql: impl Into<String>) {
        let sql = sql.into();
        store.submit_job(true, move |c| c.execute_batch(&sql)).wait_blocking().expect("run on the writer");
    }

    #[test]
    fn a_version_5_database_gains_the_form_columns_when_opened() {
        let (dir, store) = fresh();
        let path = dir.path().join("adi.db");
        // The envelopes table as version 5 left it: no form and no working-group columns.
        on_writer(
            &store,
            "ALTER TABLE envelopes DROP COLUMN form; ALTER TABLE envelopes DROP COLUMN ewg;
             UPDATE meta SET value = '5' WHERE key = 'schema_version';",
        );
        let columns = |store: &SqliteStore| -> Vec<String> {
            store
                .read(|c| {
                    c.prepare("SELECT name FROM pragma_table_info('envelopes')")?.query_map([], |r| r.get(0))?.collect()
                })
                .unwrap()
        };
        assert!(!columns(&store).contains(&"form".to_string()));
        drop(store);
        let store = SqliteStore::open(StoreConfig::new(&path, MASTER_KEY)).unwrap();
        let cols = columns(&store);
        assert!(cols.contains(&"form".to_string()) && cols.contains(&"ewg".to_string()), "{cols:?}");
        let version: String = store
            .read(|c| c.prepare("SELECT value FROM meta WHERE key = 'schema_version'")?.query_row([], |row| row.get(0)))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        drop(store);
        // Opened again, nothing changes.
        let store = SqliteStore::open(StoreConfig::new(&path, MASTER_KEY)).unwrap();
        assert_eq!(columns(&store), cols);
    }

    #[test]
    fn a_version_4_database_moves_its_whole_mls_state_into_entries_when_opened() {
        let (dir, store) = fresh();
        let path = dir.path().join("adi.db");
        let mut member = adi_mls::LineMember::new("PH", [3; 32], adi_mls::MlsConfig::default()).unwrap();
        member.key_packages(2).unwrap();
        let whole = member.snapshot().unwrap();
        // The database as version 4 left it: one sealed snapshot of the whole state.
        let sealed = store.inner.sealer.seal("mls_state.snapshot", &whole);
        on_writer(
            &store,
            "CREATE TABLE mls_state (id INTEGER PRIMARY KEY CHECK (id = 1), snapshot BLOB NOT NULL);
             UPDATE meta SET value = '4' WHERE key = 'schema_version';",
        );
        store
            .submit(move |c| {
                c.prepare_cached("INSERT INTO mls_state (id, snapshot) VALUES (1, ?1)")?.execute(params![sealed])?;
                Ok(())
            })
            .wait_blocking()
            .unwrap();
        drop(store);

        let store = SqliteStore::open(StoreConfig::new(&path, MASTER_KEY)).unwrap();
        let mut expected: Vec<(Vec<u8>, Vec<u8>)> = adi_mls::decode_state(&whole).unwrap().into_iter().collect();
        expected.sort();
        assert!(expected.len() > 2);
        assert_eq!(store.mls_state().unwrap(), expected);
        let version: String = store
            .read(|c| {
                c.prepare_cached("SELECT value FROM meta WHERE key = 'schema_version'")?.query_row([], |row| row.get(0))
            })
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let legacy: i64 = store
            .read(|c| {
                c.prepare_cached("SELECT count(*) FROM sqlite_master WHERE name = 'mls_state'")?
                    .query_row([], |row| row.get(0))
            })
            .unwrap();
        assert_eq!(legacy, 0, "the whole-state table is gone");
        drop(store);

        // Opened again, nothing changes; the member restored from the entries is the one saved.
        let store = SqliteStore::open(StoreConfig::new(&path, MASTER_KEY)).unwrap();
        let entries = store.mls_state().unwrap();
        assert_eq!(entries, expected);
        let restored =
            adi_mls::LineMember::restore("PH", [3; 32], adi_mls::MlsConfig::default(), entries, &[]).unwrap();
        assert_eq!(restored.snapshot().unwrap(), whole);
    }

    #[test]
    fn an_mls_entry_moved_to_another_key_does_not_open() {
        let (_dir, store) = fresh();
        let delta = adi_mls::StateDelta {
            put: vec![(b"a".to_vec(), b"secret of a".to_vec()), (b"b".to_vec(), b"secret of b".to_vec())],
            delete: Vec::new(),
        };
        let batch = adi_core::WriteBatch { mls_state: Some(delta), ..Default::default() };
        store.commit(batch).wait_blocking().unwrap();
        assert_eq!(store.mls_state().unwrap().len(), 2);
        on_writer(
            &store,
            "UPDATE mls_entries SET value = (SELECT value FROM mls_entries WHERE key = X'61') WHERE key = X'62'",
        );
        assert!(store.mls_state().is_err(), "a value sealed for one key opened under another");
        // A delete removes the entry.
        let delete = adi_mls::StateDelta { put: Vec::new(), delete: vec![b"b".to_vec()] };
        store.commit(adi_core::WriteBatch { mls_state: Some(delete), ..Default::default() }).wait_blocking().unwrap();
        assert_eq!(store.mls_state().unwrap(), vec![(b"a".to_vec(), b"secret of a".to_vec())]);
    }

    fn storage_alarm(op: AlarmOp, at_ms: u64) -> AlarmChange {
        alarm_of(op, at_ms, "the database disk is full".into())
    }

    fn alarm_of(op: AlarmOp, at_ms: u64, detail: String) -> AlarmChange {
        AlarmChange {
            kind: AlarmKind::Storage,
            op,
            line: LineId([0; 16]),
            member: MemberCode::parse("PH").expect("a member code"),
            message: None,
            at_ms,
            detail,
            addressed_to: Vec::new(),
        }
    }

    fn refused(result: Result<(), StoreError>) -> (WriteFault, u64) {
        match result {
            Err(StoreError::Unwritable { fault, generation }) => (fault, generation),
            other => panic!("expected a refused write, got {other:?}"),
        }
    }

    #[test]
    fn a_full_disk_fails_the_write_and_every_later_one_until_resumed() {
        let (_dir, store) = fresh();
        fill(&store, "before", 10).wait_blocking().expect("a write before the disk fills");
        // The database may not grow: the disk is full.
        let pages: i64 = store.read(|c| c.query_row("PRAGMA page_count", [], |row| row.get(0))).expect("pages");
        on_writer(&store, format!("PRAGMA max_page_count = {pages}"));
        assert_eq!(refused(fill(&store, "big", 200_000).wait_blocking()), (WriteFault::DiskFull, 0));
        // A small write that would fit is refused too: the runtime may be ahead of the database.
        assert_eq!(refused(fill(&store, "small", 1).wait_blocking()), (WriteFault::DiskFull, 0));
        // The probe fails while the disk is full, and succeeds once there is space again.
        let too_big = alarm_of(AlarmOp::Raise, 1, "x".repeat(200_000));
        assert_eq!(refused(store.probe(vec![too_big]).wait_blocking()).0, WriteFault::DiskFull);
        on_writer(&store, "PRAGMA max_page_count = 1073741823");
        store.probe(vec![storage_alarm(AlarmOp::Raise, 1)]).wait_blocking().expect("the probe commits");
        // With the alarm recorded, raising it again writes nothing; the probe still writes (a
        // transaction that writes nothing would commit on a full disk too).
        store.probe(vec![storage_alarm(AlarmOp::Raise, 1)]).wait_blocking().expect("the probe commits");
        let probes: String = store
            .read(|c| c.query_row("SELECT value FROM meta WHERE key = 'storage_probes'", [], |row| row.get(0)))
            .expect("the probes are counted");
        assert_eq!(probes, "2");
        assert_eq!(refused(fill(&store, "small", 1).wait_blocking()).0, WriteFault::DiskFull, "not resumed yet");

        // A write submitted before the store resumes is refused even when it is run after.
        let slow = store.submit_job(true, |_| {
            thread::sleep(Duration::from_millis(200));
            Ok(())
        });
        let stale = fill(&store, "stale", 1);
        assert_eq!(store.resume(), 1);
        let fresh = fill(&store, "fresh", 1);
        slow.wait_blocking().expect("the slow probe");
        assert_eq!(refused(stale.wait_blocking()), (WriteFault::DiskFull, 0));
        fresh.wait_blocking().expect("a write after the store resumed commits");

        let keys: Vec<String> = store
            .read(|c| {
                let mut stmt = c.prepare(
                    "SELECT key FROM meta WHERE key NOT IN ('schema_version', 'database_id', 'storage_probes')",
                )?;
                let keys = stmt.query_map([], |row| row.get(0))?.collect::<Result<Vec<String>, _>>()?;
                Ok(keys)
            })
            .expect("keys");
        assert_eq!(keys, vec!["before".to_string(), "fresh".to_string()], "nothing refused was written");
        let alarms = store.alarms(true, 10).expect("alarms");
        assert_eq!(alarms.len(), 1, "{alarms:?}");
        assert_eq!((alarms[0].kind.as_str(), alarms[0].raised_ms), ("storage", 1));
        store
            .commit(WriteBatch { alarms: vec![storage_alarm(AlarmOp::Clear, 2)], ..WriteBatch::default() })
            .wait_blocking()
            .expect("the alarm is cleared");
        assert!(store.alarms(true, 10).expect("alarms").is_empty());
    }

    #[test]
    fn a_read_only_database_is_closed_and_opened_again_never_created() {
        let (dir, store) = fresh();
        let path = store.path().to_path_buf();
        let count = |store: &SqliteStore| {
            store.read(|c| c.query_row("SELECT COUNT(*) FROM meta", [], |row| row.get::<_, i64>(0))).expect("a read")
        };
        fill(&store, "before", 10).wait_blocking().expect("a write");
        let before = count(&store);
        // The writer's connection turns read-only: the write fails as such.
        on_writer(&store, "PRAGMA query_only = ON");
        assert_eq!(refused(fill(&store, "refused", 1).wait_blocking()), (WriteFault::ReadOnly, 0));
        assert_eq!(count(&store), before, "reads go on");
        // The files are let go of: by the readers after use, by the writer at the probe, which
        // opens the database afresh (the connection that was read-only is gone).
        assert!(lock(&store.inner.shared.readers).is_empty(), "no reader connection is kept");
        store.probe(vec![storage_alarm(AlarmOp::Raise, 1)]).wait_blocking().expect("the probe commits");
        assert_eq!(refused(fill(&store, "refused", 1).wait_blocking()).0, WriteFault::ReadOnly, "not resumed");

        // The files gone (their filesystem unmounted): the probe fails, and creates nothing.
        let away = dir.path().join("away");
        std::fs::create_dir(&away).expect("a folder");
        let moved = |from: &Path, to: &Path| {
            for suffix in ["", "-wal", "-shm"] {
                let name = |p: &Path| PathBuf::from(format!("{}{suffix}", p.display()));
                if name(from).exists() {
                    std::fs::rename(name(from), name(to)).expect("moved");
                }
            }
        };
        moved(&path, &away.join("adi.db"));
        let probe = store.probe(vec![storage_alarm(AlarmOp::Raise, 1)]).wait_blocking();
        assert!(matches!(refused(probe).0, WriteFault::Failed(_)));
        assert!(!path.exists(), "no new database was created in place of the missing one");

        // Another database in its place is not taken for it.
        let (_other_dir, other) = fresh();
        let other_path = other.path().to_path_buf();
        drop(other);
        std::fs::copy(&other_path, &path).expect("another database put in its place");
        let probe = store.probe(vec![storage_alarm(AlarmOp::Raise, 1)]).wait_blocking();
        match refused(probe).0 {
            WriteFault::Failed(why) => assert!(why.contains("no longer the database"), "{why}"),
            other => panic!("{other:?}"),
        }

        // The database back: the probe commits, and after the store resumes, writes do, and
        // reader connections are kept again.
        let trash = dir.path().join("trash");
        std::fs::create_dir(&trash).expect("a folder");
        moved(&path, &trash.join("adi.db"));
        moved(&away.join("adi.db"), &path);
        store.probe(vec![storage_alarm(AlarmOp::Raise, 1)]).wait_blocking().expect("the probe commits");
        store.resume();
        fill(&store, "after", 1).wait_blocking().expect("a write after the store resumed");
        assert_eq!(count(&store), before + 2, "the probes' count and the write after");
        assert_eq!(lock(&store.inner.shared.readers).len(), 1);
    }
}
