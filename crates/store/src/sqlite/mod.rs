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
//! The schema and its migrations are in `schema`, the writer thread in `writer`, and the store's
//! statements on a SQLite connection in `lite`.

mod lite;
mod schema;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use rusqlite::{Connection, OpenFlags};

use crate::group::{lock, Fence, Job, Stats};
use crate::seal::Sealer;
use crate::sql::{self, Connection as SqlConnection};
use crate::{CommitStats, Pending, StoreConfig, StoreError};
pub(crate) use lite::Lite;

/// Prepared statements each connection keeps parsed.
const STATEMENT_CACHE_LEN: usize = 128;

/// The SQLite backend: its writer thread and its pool of readers.
pub(crate) struct Sqlite {
    shared: Arc<Shared>,
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

impl Drop for Sqlite {
    fn drop(&mut self) {
        lock(&self.jobs).take();
        if let Some(handle) = lock(&self.writer).take() {
            let _ = handle.join();
        }
    }
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Db(e.to_string())
}

/// Opens a connection with the node's settings; only [`Sqlite::open`] may create the file.
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

impl Sqlite {
    /// Opens (creating if needed) the database and starts its writer thread.
    pub(crate) fn open(config: StoreConfig, sealer: &Sealer) -> Result<Sqlite, StoreError> {
        let mut conn = connect(&config, true).map_err(db)?;
        schema::prepare(&mut conn, sealer, &config.path)?;
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
        Ok(Sqlite { shared, jobs: Mutex::new(Some(tx)), writer: Mutex::new(Some(writer)) })
    }

    pub(crate) fn commit_stats(&self) -> CommitStats {
        self.shared.stats.read()
    }

    pub(crate) fn path(&self) -> &Path {
        &self.shared.config.path
    }

    pub(crate) fn events_committed(&self) -> u64 {
        self.shared.events_committed.load(Ordering::SeqCst)
    }

    pub(crate) fn resume(&self) -> u64 {
        lock(&self.shared.fence).resume()
    }

    pub(crate) fn submit_job<T: Send + 'static>(
        &self,
        probe: bool,
        work: impl FnOnce(&SqlConnection<'_>) -> Result<T, sql::Error> + Send + 'static,
    ) -> Pending<T> {
        crate::group::submit(&self.shared.fence, &self.jobs, probe, work)
    }

    pub(crate) fn read<T>(&self, f: impl FnOnce(&SqlConnection<'_>) -> Result<T, sql::Error>) -> Result<T, StoreError> {
        let shared = &self.shared;
        let pooled = lock(&shared.readers).pop();
        let conn = match pooled {
            Some(c) => c,
            None => connect(&shared.config, false).map_err(db)?,
        };
        let out = f(&Lite::new(&conn, &shared.config.path)).map_err(sql::db);
        if !lock(&shared.fence).release {
            let mut readers = lock(&shared.readers);
            if readers.len() < shared.config.readers_max {
                readers.push(conn);
            }
        }
        out
    }

    /// Runs `f` in an immediate transaction on a connection of its own, and commits it.
    pub(crate) fn transact<T>(
        &self,
        f: impl FnOnce(&SqlConnection<'_>) -> Result<T, sql::Error>,
    ) -> Result<T, StoreError> {
        let config = &self.shared.config;
        let mut conn = connect(config, false).map_err(db)?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)?;
        let out = f(&Lite::new(&tx, &config.path)).map_err(sql::db)?;
        tx.commit().map_err(db)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    //! What the other modules' tests share, and the sealing of MLS entries.

    use super::*;
    use crate::{SqlStore, Store};

    pub(crate) const MASTER_KEY: [u8; 32] = [7; 32];

    pub(crate) fn fresh() -> (tempfile::TempDir, SqlStore) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = SqlStore::open(StoreConfig::new(dir.path().join("adi.db"), MASTER_KEY)).expect("the store opens");
        (dir, store)
    }

    /// Runs `sql` on the writer's connection, even while writes are refused.
    pub(crate) fn on_writer(store: &SqlStore, sql: impl Into<String>) {
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
