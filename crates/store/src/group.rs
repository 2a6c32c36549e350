//! What both backends' writers share: every write is a job, run with the others waiting in one
//! transaction (group commit), each in a savepoint of its own, and answered only once that
//! transaction committed; and the fence that refuses writes after a failed commit until the
//! runtime resumes the store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::oneshot;

use crate::sql::{self, Connection};
use crate::{CommitStats, StoreError, WriteFault};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Counters of a writer.
#[derive(Default)]
pub(crate) struct Stats {
    transactions: AtomicU64,
    jobs: AtomicU64,
}

impl Stats {
    pub(crate) fn read(&self) -> CommitStats {
        CommitStats { transactions: self.transactions.load(Ordering::Relaxed), jobs: self.jobs.load(Ordering::Relaxed) }
    }
}

/// Which writes the writer refuses.
#[derive(Default)]
pub(crate) struct Fence {
    /// Counts resumptions after failures; every write carries the generation it was submitted in.
    pub(crate) generation: u64,
    /// After a failed commit: writes submitted in this generation or before are refused, with
    /// this fault. The runtime's state may be ahead of the database by the failed commit, and a
    /// write computed from it must not be committed after it.
    pub(crate) refused: Option<(u64, WriteFault)>,
    /// Whether connections are closed after use, leaving the database's files free while their
    /// filesystem cannot be written: it can then be repaired and mounted again under the node.
    /// The writer closes its own at the runtime's first probe, once the runtime knows of the
    /// failure: a connection opened after every one was closed reads the write-ahead log from the
    /// file, which may hold the failed transaction whole, as if committed. (SQLite.)
    pub(crate) release: bool,
}

impl Fence {
    /// Whether writes submitted now are refused.
    pub(crate) fn refusing(&self) -> bool {
        self.refused.as_ref().is_some_and(|(through, _)| *through >= self.generation)
    }

    /// Takes writes again after a failure; the new generation.
    pub(crate) fn resume(&mut self) -> u64 {
        self.generation += 1;
        self.release = false;
        self.generation
    }
}

/// How a job's work ended.
pub(crate) enum Ran {
    /// Its writes stand: its savepoint is released.
    Done,
    /// Refused alone (a constraint, a missing row): its savepoint is rolled back and its answer
    /// says why.
    Refused,
    /// The database cannot take writes: the whole group fails.
    Fault(WriteFault),
}

/// A unit of work for the writer, with the way to answer it.
trait Work: Send {
    fn run(&mut self, db: &Connection<'_>) -> Ran;
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
    F: FnOnce(&Connection<'_>) -> Result<T, sql::Error> + Send,
{
    fn run(&mut self, db: &Connection<'_>) -> Ran {
        let Some(work) = self.work.take() else { return Ran::Done };
        match work(db) {
            Ok(v) => {
                self.output = Some(Ok(v));
                Ran::Done
            }
            Err(sql::Error::Fault(fault)) => Ran::Fault(fault),
            Err(e) => {
                self.output = Some(Err(sql::db(e)));
                Ran::Refused
            }
        }
    }

    fn answer(self: Box<Self>, committed: Result<(), StoreError>) {
        let output = self.output;
        let _ = self.reply.send(committed.and_then(|()| output.unwrap_or(Err(StoreError::Closed))));
    }
}

/// A write submitted to the writer.
pub(crate) struct Job {
    /// The store's generation when the write was submitted.
    generation: u64,
    /// Whether it runs even while writes are refused: the runtime's probe.
    pub(crate) probe: bool,
    work: Box<dyn Work>,
}

impl Job {
    /// A write of `work`, submitted in `generation`, whose answer goes to `reply` once the
    /// transaction holding it committed (or failed).
    pub(crate) fn new<T, F>(generation: u64, probe: bool, work: F, reply: oneshot::Sender<Result<T, StoreError>>) -> Job
    where
        T: Send + 'static,
        F: FnOnce(&Connection<'_>) -> Result<T, sql::Error> + Send + 'static,
    {
        Job { generation, probe, work: Box::new(Task { work: Some(work), output: None, reply }) }
    }

    /// Runs the job's work (in the savepoint its writer opened for it).
    pub(crate) fn run(&mut self, db: &Connection<'_>) -> Ran {
        self.work.run(db)
    }
}

/// Sends `work` to a writer (`jobs`, `None` once it is gone) as a job of the fence's current
/// generation; the answer comes once the transaction holding it committed.
pub(crate) fn submit<T, F>(
    fence: &Mutex<Fence>,
    jobs: &Mutex<Option<std::sync::mpsc::Sender<Job>>>,
    probe: bool,
    work: F,
) -> crate::Pending<T>
where
    T: Send + 'static,
    F: FnOnce(&Connection<'_>) -> Result<T, sql::Error> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let generation = lock(fence).generation;
    let job = Job::new(generation, probe, work, tx);
    if let Some(sender) = lock(jobs).as_ref() {
        // A send fails only once the writer is gone; the dropped reply then reads `Closed`.
        let _ = sender.send(job);
    }
    crate::Pending(rx)
}

/// Answers, as refused, the jobs that the fence keeps out (all but probes while writes are
/// refused), and returns the others, to run.
pub(crate) fn admit(fence: &Mutex<Fence>, jobs: Vec<Job>) -> Vec<Job> {
    let refused = lock(fence).refused.clone();
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
    run
}

/// Answers every job of a group once its transaction committed (counting it), or failed: then
/// every write submitted so far is refused until the store is resumed.
pub(crate) fn answer(stats: &Stats, fence: &Mutex<Fence>, run: Vec<Job>, committed: Result<(), WriteFault>) {
    match committed {
        Ok(()) => {
            // Counted before anyone hears "done", so the statistics include every answered job.
            stats.transactions.fetch_add(1, Ordering::Relaxed);
            stats.jobs.fetch_add(run.len() as u64, Ordering::Relaxed);
            for job in run {
                job.work.answer(Ok(()));
            }
        }
        Err(fault) => {
            if run.iter().all(|job| job.probe) {
                tracing::debug!(%fault, "the probe failed; writes stay refused");
            } else {
                tracing::error!(%fault, jobs = run.len(), "a group commit failed; writes are refused until resumed");
            }
            {
                let mut fence = lock(fence);
                fence.refused = Some((fence.generation, fault.clone()));
            }
            for job in run {
                let generation = job.generation;
                job.work.answer(Err(StoreError::Unwritable { fault: fault.clone(), generation }));
            }
        }
    }
}
