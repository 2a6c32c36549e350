//! The PostgreSQL backend: one writer thread with group commit on a connection of its own, and a
//! small pool of reader connections, all driven by the tokio-postgres driver on a runtime of the
//! store's own.
//!
//! The writer takes all jobs waiting (up to `group_len_max`), runs each in its own savepoint
//! inside one transaction, commits, and only then answers each job: PostgreSQL answers a commit
//! once its write-ahead log is flushed (`synchronous_commit`, on by default, and on a primary with
//! synchronous replicas once they have it too). A job refused for its content fails alone; a
//! transaction that cannot be committed (a lost connection, a full disk, a database in recovery or
//! read-only) fails whole, and the writer then refuses every write submitted until the runtime
//! resumes the store, as the SQLite backend does. A lost connection is opened again for the next
//! write or read.
//!
//! The store's callers are synchronous and may run on any thread, including a tokio runtime's:
//! each statement is a future of the driver's client, awaited on the calling thread
//! ([`block_on`]), while the connections' sockets are served by the store's own runtime, so no
//! caller ever enters a runtime.

pub mod admin;
pub mod lease;
mod pg;
mod schema;

use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use crate::group::{self, lock, Fence, Job, Ran, Stats};
use crate::seal::Sealer;
use crate::sql::{self, Connection};
use crate::{CommitStats, Pending, StoreConfig, StoreError, WriteFault};
use pg::PgConn;

/// Wakes the thread that waits on a future.
struct ThreadWaker(thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Waits on this thread for a future of the driver's client, whose socket the store's runtime
/// serves.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        thread::park();
    }
}

/// The PostgreSQL backend: its writer thread, its pool of readers and the runtime that serves
/// their connections.
pub(crate) struct Postgres {
    shared: Arc<Shared>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<thread::JoinHandle<()>>>,
}

/// What the writer thread shares with the store's handles.
struct Shared {
    config: StoreConfig,
    address: tokio_postgres::Config,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    stats: Stats,
    /// The newest event the writer saw committed: readers show no event beyond it.
    events_committed: AtomicU64,
    readers: Mutex<Vec<PgConn>>,
    fence: Mutex<Fence>,
    /// The lease this node holds, as (token, length in ms): every write transaction checks it
    /// first. `None` for a node that is not one of a pair.
    lease: Mutex<Option<(u64, u64)>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The last handle may be dropped inside another runtime, where waiting is not allowed.
        if let Some(runtime) = lock(&self.runtime).take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        lock(&self.jobs).take();
        if let Some(handle) = lock(&self.writer).take() {
            let _ = handle.join();
        }
    }
}

impl Shared {
    /// Opens a connection, its socket served by the store's runtime.
    fn connect(&self) -> Result<PgConn, sql::Error> {
        let timeout = Duration::from_millis(self.config.connect_timeout_ms.max(1));
        let address = self.address.clone();
        let task = {
            let runtime = lock(&self.runtime);
            let Some(runtime) = runtime.as_ref() else { return Err(sql::Error::Fault(closed())) };
            runtime.spawn(async move {
                let (client, connection) = tokio::time::timeout(timeout, address.connect(tokio_postgres::NoTls))
                    .await
                    .map_err(|_| sql::Error::Fault(WriteFault::Failed("the database did not answer in time".into())))?
                    .map_err(|e| pg::error(&e))?;
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::warn!(error = %e, "a connection to the database ended");
                    }
                });
                Ok::<_, sql::Error>(client)
            })
        };
        let client = block_on(task).map_err(|_| sql::Error::Fault(closed()))??;
        Ok(PgConn::new(client))
    }
}

fn closed() -> WriteFault {
    WriteFault::Failed("the store is shut down".into())
}

impl Postgres {
    /// Connects, brings the schema to this build's version, and starts the writer thread.
    pub(crate) fn open(config: StoreConfig, _sealer: &Sealer) -> Result<Postgres, StoreError> {
        let url = config.postgres.clone().unwrap_or_default();
        let mut address = tokio_postgres::Config::from_str(&url)
            .map_err(|e| StoreError::Db(format!("{}: not a PostgreSQL address: {e}", redacted(&url))))?;
        address.connect_timeout(Duration::from_millis(config.connect_timeout_ms.max(1)));
        if let Some(password) = &config.postgres_password {
            address.password(password.as_bytes());
        }
        if address.get_application_name().is_none() {
            address.application_name("adi");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("adi-store-pg")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Db(format!("cannot start the database runtime: {e}")))?;
        let shared = Arc::new(Shared {
            config,
            address,
            runtime: Mutex::new(Some(runtime)),
            stats: Stats::default(),
            events_committed: AtomicU64::new(0),
            readers: Mutex::new(Vec::new()),
            fence: Mutex::new(Fence::default()),
            lease: Mutex::new(None),
        });
        let location = location_of(&shared.address);
        let conn = shared.connect().map_err(|e| StoreError::Db(format!("{location}: {e}")))?;
        schema::prepare(&conn).map_err(|e| match e {
            StoreError::Db(text) => StoreError::Db(format!("{location}: {text}")),
            e => e,
        })?;
        let newest = newest_event(&conn).map_err(sql::db)?;
        shared.events_committed.store(newest, Ordering::SeqCst);
        let (tx, rx) = mpsc::channel();
        let writer = Writer { shared: shared.clone(), conn: Some(conn) };
        let group_len_max = shared.config.group_len_max.max(1);
        let handle = thread::Builder::new()
            .name("adi-store-writer".into())
            .spawn(move || writer.serve(rx, group_len_max))
            .map_err(|e| StoreError::Db(format!("cannot start the writer thread: {e}")))?;
        Ok(Postgres { shared, jobs: Mutex::new(Some(tx)), writer: Mutex::new(Some(handle)) })
    }

    pub(crate) fn commit_stats(&self) -> CommitStats {
        self.shared.stats.read()
    }

    /// The database's address, without its password.
    pub(crate) fn location(&self) -> String {
        location_of(&self.shared.address)
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
        work: impl FnOnce(&Connection<'_>) -> Result<T, sql::Error> + Send + 'static,
    ) -> Pending<T> {
        crate::group::submit(&self.shared.fence, &self.jobs, probe, work)
    }

    /// Takes the lease of the pair for `holder` if it is free or ran out.
    pub(crate) fn claim_lease(
        &self,
        holder: &str,
        lease_ms: u64,
        api_url: &str,
    ) -> Result<Option<lease::Lease>, StoreError> {
        self.with_reader(|conn| lease::claim(conn, holder, lease_ms, api_url))
    }

    /// Renews the lease held under `token`; `None` once it is lost.
    pub(crate) fn renew_lease(
        &self,
        holder: &str,
        token: u64,
        lease_ms: u64,
    ) -> Result<Option<lease::Lease>, StoreError> {
        self.with_reader(|conn| lease::renew(conn, holder, token, lease_ms))
    }

    pub(crate) fn lease_holder(&self) -> Result<lease::LeaseHolder, StoreError> {
        self.with_reader(lease::holder)
    }

    /// From now on every write transaction checks that this node still holds the lease under
    /// `token`.
    pub(crate) fn write_under_lease(&self, token: u64, lease_ms: u64) {
        *lock(&self.shared.lease) = Some((token, lease_ms));
    }

    /// Runs `f` on a reader connection from the pool (opening one if none is idle).
    fn with_reader<T>(&self, f: impl FnOnce(&PgConn) -> Result<T, sql::Error>) -> Result<T, StoreError> {
        let pooled = lock(&self.shared.readers).pop();
        let conn = match pooled {
            Some(c) => c,
            None => self.shared.connect().map_err(sql::db)?,
        };
        let out = f(&conn).map_err(sql::db);
        if !conn.is_closed() {
            let mut readers = lock(&self.shared.readers);
            if readers.len() < self.shared.config.readers_max {
                readers.push(conn);
            }
        }
        out
    }

    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection<'_>) -> Result<T, sql::Error>) -> Result<T, StoreError> {
        self.with_reader(|conn| f(conn))
    }

    /// Runs `f` in a transaction on a reader connection, and commits it.
    pub(crate) fn transact<T>(
        &self,
        f: impl FnOnce(&Connection<'_>) -> Result<T, sql::Error>,
    ) -> Result<T, StoreError> {
        self.with_reader(|conn| {
            conn.batch("BEGIN")?;
            match f(conn) {
                Ok(out) => {
                    conn.batch("COMMIT")?;
                    Ok(out)
                }
                Err(e) => {
                    let _ = conn.batch("ROLLBACK");
                    Err(e)
                }
            }
        })
    }
}

/// The address as logs and errors show it: no password.
fn location_of(address: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = address
        .get_hosts()
        .iter()
        .zip(address.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(host, port)| match host {
            tokio_postgres::config::Host::Tcp(h) => format!("{h}:{port}"),
            tokio_postgres::config::Host::Unix(p) => format!("{}:{port}", p.display()),
        })
        .collect();
    format!(
        "postgres://{}@{}/{}",
        address.get_user().unwrap_or(""),
        hosts.join(","),
        address.get_dbname().unwrap_or("")
    )
}

/// A PostgreSQL address as logs and errors show it: without its password (what follows a `:`
/// before the `@` of a URL, or a `password=` setting).
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user = &url[scheme + 3..at];
            let user = user.split(':').next().unwrap_or("");
            format!("{}{user}{}", &url[..scheme + 3], &url[at..])
        }
        (Some(_), _) => url.to_string(),
        (None, _) => url.split_whitespace().filter(|kv| !kv.starts_with("password=")).collect::<Vec<_>>().join(" "),
    }
}

/// The id of the newest event stored, 0 if none.
fn newest_event(conn: &Connection<'_>) -> Result<u64, sql::Error> {
    conn.query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |row| row.get::<_, i64>(0)).map(|id| id.max(0) as u64)
}

/// The writer thread's state: its connection, opened again after it was lost.
struct Writer {
    shared: Arc<Shared>,
    conn: Option<PgConn>,
}

impl Writer {
    fn serve(mut self, rx: mpsc::Receiver<Job>, group_len_max: usize) {
        while let Ok(first) = rx.recv() {
            let mut jobs = vec![first];
            while jobs.len() < group_len_max {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            let mut run = group::admit(&self.shared.fence, jobs);
            if run.is_empty() {
                continue;
            }
            let committed = self.transact(&mut run);
            if committed.is_err() {
                // The transaction is rolled back with the connection, or by the server when the
                // connection is gone; a connection that is still open is kept for the next group.
                if let Some(conn) = &self.conn {
                    if conn.batch("ROLLBACK").is_err() || conn.is_closed() {
                        self.conn = None;
                    }
                }
            }
            group::answer(&self.shared.stats, &self.shared.fence, run, committed);
        }
    }

    /// The writer's connection, opened again if it was lost.
    fn connection(&mut self) -> Result<&PgConn, WriteFault> {
        if self.conn.as_ref().is_some_and(PgConn::is_closed) {
            self.conn = None;
        }
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => self.shared.connect().map_err(fault)?,
        };
        Ok(self.conn.insert(conn))
    }

    /// Begins a transaction on the writer's connection. A connection the server ended while the
    /// writer was idle (a restart, an administrator) may be found closed only now: nothing of the
    /// group has run on it, so it is opened again once before the group counts as failed.
    fn begin(&mut self, lease_ms: Option<u64>) -> Result<(), WriteFault> {
        let start = |conn: &PgConn| -> Result<(), WriteFault> {
            if let Some(lease_ms) = lease_ms {
                conn.under_lease(lease_ms).map_err(fault)?;
            }
            conn.batch("BEGIN").map_err(fault)
        };
        if start(self.connection()?).is_err() {
            self.conn = None;
            start(self.connection()?)?;
        }
        Ok(())
    }

    /// Runs jobs in one transaction, each in a savepoint of its own, and commits it.
    fn transact(&mut self, jobs: &mut [Job]) -> Result<(), WriteFault> {
        let lease = *lock(&self.shared.lease);
        self.begin(lease.map(|(_, lease_ms)| lease_ms))?;
        // The connection the transaction began on, whatever becomes of it: a statement on a
        // connection lost since fails, and the group with it.
        let conn = self.conn.as_ref().ok_or_else(|| WriteFault::Failed("the writer has no connection".into()))?;
        if let Some((token, _)) = lease {
            lease::fence(conn, token).map_err(fault)?;
        }
        for job in jobs.iter_mut() {
            conn.batch("SAVEPOINT job").map_err(fault)?;
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(conn)))
                .unwrap_or_else(|_| Ran::Fault(WriteFault::Failed("a write failed unexpectedly".into())));
            match ran {
                Ran::Done => conn.batch("RELEASE SAVEPOINT job").map_err(fault)?,
                Ran::Refused => conn.batch("ROLLBACK TO SAVEPOINT job").map_err(fault)?,
                Ran::Fault(f) => return Err(f),
            }
        }
        // Read inside the transaction: it also fails if anything left the transaction aborted,
        // where COMMIT would roll back without an error.
        let newest = newest_event(conn).map_err(fault)?;
        conn.batch("COMMIT").map_err(fault)?;
        self.shared.events_committed.fetch_max(newest, Ordering::SeqCst);
        Ok(())
    }
}

/// Any error of the writer's own statements (transaction control) as a fault of the database.
fn fault(e: sql::Error) -> WriteFault {
    match e {
        sql::Error::Fault(f) => f,
        e => WriteFault::Failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn an_address_in_an_error_has_no_password() {
        assert_eq!(redacted("postgres://adi:secret@db.example:5432/adi"), "postgres://adi@db.example:5432/adi");
        assert_eq!(redacted("postgres://adi@db.example/adi"), "postgres://adi@db.example/adi");
        assert_eq!(redacted("host=db user=adi password=secret dbname=adi"), "host=db user=adi dbname=adi");
    }
}
