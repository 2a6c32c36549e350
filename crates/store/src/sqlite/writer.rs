//! The SQLite backend's writer: one thread, one connection, every write a job. It takes the jobs
//! waiting, runs each in its own savepoint inside one transaction, commits, and only then answers
//! them; a transaction that cannot be written fails whole, and the writer then refuses writes
//! (its [`Fence`](super::Fence)) until the store is resumed, closing and opening the database
//! again if the fault requires it.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::thread;

use rusqlite::{Transaction, TransactionBehavior};

use super::{connect, schema, Lite, Shared};
use crate::group::{self, lock, Job, Ran};
use crate::WriteFault;

/// Starts the writer thread on the connection the store was opened with; it runs the jobs sent on
/// `rx` until every sender is gone.
pub(super) fn spawn(
    shared: Arc<Shared>,
    conn: rusqlite::Connection,
    rx: mpsc::Receiver<Job>,
) -> std::io::Result<thread::JoinHandle<()>> {
    let group_len_max = shared.config.group_len_max;
    let wipe = std::time::Duration::from_millis(shared.config.wal_wipe_ms.max(1));
    let writer = Writer { shared, conn: Some(conn) };
    thread::Builder::new().name("adi-store-writer".into()).spawn(move || writer_loop(writer, rx, group_len_max, wipe))
}

/// The writer thread's state. Its connection is closed while the database's files are let go of
/// ([`Fence::release`](super::Fence::release)), and opened again for the next write.
struct Writer {
    shared: Arc<Shared>,
    conn: Option<rusqlite::Connection>,
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
        let mut run = group::admit(&self.shared.fence, jobs);
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
        if let Err(fault) = &committed {
            self.fail(fault);
        }
        let ok = committed.is_ok();
        group::answer(&self.shared.stats, &self.shared.fence, run, committed);
        ok
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
            match std::panic::catch_unwind(AssertUnwindSafe(|| run_job(job, &mut tx, &path))) {
                Ok(Ok(())) => {}
                Ok(Err(fault)) => return Err(fault),
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
    fn connection(&mut self) -> Result<&mut rusqlite::Connection, WriteFault> {
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

/// Runs one job in a savepoint of its own: released if it ran, rolled back if it was refused alone.
/// A fault fails the whole group (dropping the savepoint rolls it back).
fn run_job(job: &mut Job, tx: &mut Transaction<'_>, path: &Path) -> Result<(), WriteFault> {
    let sp = tx.savepoint().map_err(|e| fault_of(&e, path))?;
    match job.run(&Lite::new(&sp, path)) {
        Ran::Done => sp.commit().map_err(|e| fault_of(&e, path)),
        // Dropping the savepoint rolls this job back alone.
        Ran::Refused => Ok(()),
        Ran::Fault(fault) => Err(fault),
    }
}

/// Opens the database again after a failure closed its connection: never creating it (a missing
/// file is a failure, not a new empty database), and only if it is the database first opened.
fn reopen(shared: &Shared) -> Result<rusqlite::Connection, WriteFault> {
    let path = &shared.config.path;
    let conn = connect(&shared.config, false).map_err(|e| fault_of(&e, path))?;
    let id = schema::database_id(&conn).map_err(|e| fault_of(&e, path))?;
    if id != shared.database_id {
        return Err(WriteFault::Failed(format!("{} is no longer the database this node opened", path.display())));
    }
    Ok(conn)
}

/// The id of the newest event stored, 0 if none.
pub(super) fn newest_event(conn: &rusqlite::Connection) -> Result<u64, rusqlite::Error> {
    conn.prepare_cached("SELECT COALESCE(MAX(id), 0) FROM events")?
        .query_row([], |row| row.get::<_, i64>(0))
        .map(|id| id.max(0) as u64)
}

/// Whether an error means the database could not be written (which fails a whole group), rather
/// than a refusal of one job's content.
pub(super) fn is_fault(e: &rusqlite::Error) -> bool {
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
pub(super) fn fault_of(e: &rusqlite::Error, path: &Path) -> WriteFault {
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
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use adi_core::{AlarmChange, AlarmKind, AlarmOp, MemberCode, WriteBatch};
    use adi_wire::LineId;

    use super::*;
    use crate::sql::params;
    use crate::sqlite::tests::{fresh, on_writer};
    use crate::SqlStore;
    use crate::StoreError;
    use crate::{Pending, Store};

    /// A write of `bytes` random bytes to the `meta` table.
    fn fill(store: &SqlStore, key: &str, bytes: usize) -> Pending<()> {
        let key = key.to_string();
        store.submit(move |c| {
            c.execute("INSERT INTO meta (key, value) VALUES (?1, hex(randomblob(?2)))", params![key, bytes as i64])?;
            Ok(())
        })
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
        let alarms = store.alarms(true, crate::Page::first(10)).expect("alarms");
        assert_eq!(alarms.len(), 1, "{alarms:?}");
        assert_eq!((alarms[0].kind.as_str(), alarms[0].raised_ms), ("storage", 1));
        store
            .commit(WriteBatch { alarms: vec![storage_alarm(AlarmOp::Clear, 2)], ..WriteBatch::default() })
            .wait_blocking()
            .expect("the alarm is cleared");
        assert!(store.alarms(true, crate::Page::first(10)).expect("alarms").is_empty());
    }

    #[test]
    fn a_read_only_database_is_closed_and_opened_again_never_created() {
        let (dir, store) = fresh();
        let path = store.path().expect("a SQLite store").to_path_buf();
        let count = |store: &SqlStore| {
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
        assert!(lock(&store.sqlite().shared.readers).is_empty(), "no reader connection is kept");
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
        let other_path = other.path().expect("a SQLite store").to_path_buf();
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
        assert_eq!(lock(&store.sqlite().shared.readers).len(), 1);
    }
}
