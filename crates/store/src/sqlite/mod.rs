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
//!
//! The schema and its migrations are in `schema`, the writer thread in `writer`, what runs in a
//! transaction in `write`, the queries in `read`, and the [`Store`](crate::Store) implementation
//! that ties them together in `store`.

mod read;
mod schema;
mod store;
mod write;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use crate::seal::Sealer;
use crate::{Pending, StoreError, WriteFault};
use writer::Job;

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

impl SqliteStore {
    /// Opens (creating if needed) the database and starts its writer thread.
    pub fn open(config: StoreConfig) -> Result<SqliteStore, StoreError> {
        let mut conn = connect(&config, true).map_err(db)?;
        let sealer = Sealer::new(&config.master_key);
        schema::prepare(&mut conn, &sealer, &config.path)?;
        let database_id = schema::database_id(&conn).map_err(db)?;
        let events_committed = writer::newest_event(&conn).map_err(db)?;
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            config,
            database_id,
            stats: Stats::default(),
            events_committed: AtomicU64::new(events_committed),
            readers: Mutex::new(Vec::new()),
            fence: Mutex::new(Fence::default()),
        });
        let writer = writer::spawn(shared.clone(), conn, rx)
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
        let job = Job::new(generation, probe, work, tx);
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

#[cfg(test)]
mod tests {
    //! What the other modules' tests share, and the sealing of MLS entries.

    use super::*;
    use crate::Store;

    pub(super) const MASTER_KEY: [u8; 32] = [7; 32];

    pub(super) fn fresh() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store =
            SqliteStore::open(StoreConfig::new(dir.path().join("adi.db"), MASTER_KEY)).expect("the store opens");
        (dir, store)
    }

    /// Runs `sql` on the writer's connection, even while writes are refused.
    pub(super) fn on_writer(store: &SqliteStore, sql: impl Into<String>) {
        let sql = sql.into();
        store.submit_job(true, move |c| c.execute_batch(&sql)).wait_blocking().expect("run on the writer");
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
}
