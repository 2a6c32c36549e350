//! The store's write path: `SqlStore::commit` of a batch of 1 and of 64 new message records
//! with the change to the sender's MLS state, as a node commits what it sends, waited for until
//! durable. The database is a real file in a temporary directory, opened as a node opens it (WAL,
//! `synchronous=FULL`), so every commit includes an fsync; the figures depend on the disk.
//!
//! The records are the sender's own messages on a two-member line, made by its core (encrypted and
//! signed) outside the timing: each is new to the store and is queued for the other member.

use std::hint::black_box;

use adi_core::{fixtures, Draft, Hotline, NewLine, WriteBatch};
use adi_store::{Outcome, SqlStore, Store, StoreConfig};
use adi_wire::LineId;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use tempfile::TempDir;

const MASTER_KEY: [u8; 32] = [7; 32];
const LINE: LineId = LineId([1; 16]);
/// A fixed start time, so that every run makes the same kind of records.
const T0: u64 = 1_700_000_000_000;
const BATCH_LENS: [usize; 2] = [1, 64];

/// PH, the sender, with its line to CN and the clock of its next message.
struct Sender {
    core: Hotline,
    now_ms: u64,
}

impl Sender {
    /// What a node commits after sending `n` messages: their records and what the sending changed
    /// in its MLS state.
    fn batch(&mut self, n: usize) -> WriteBatch {
        let records = (0..n)
            .map(|_| {
                self.now_ms += 1;
                let draft = Draft {
                    precedence: "ROUTINE".into(),
                    subject: format!("Situation report {}", self.now_ms - T0),
                    body: "Vessel movements in the sector remain as reported; no change to the agreed \
                           communication posture. Next report at the usual time. "
                        .repeat(4),
                    ..Draft::default()
                };
                self.core.send(self.now_ms, LINE, draft, None).expect("the core sends the message")
            })
            .collect();
        let mls_state = Some(self.core.mls_delta().expect("the MLS state's change"));
        WriteBatch { records, mls_state, ..WriteBatch::default() }
    }
}

/// A fresh on-disk store for PH holding the line set-up, and PH's core ready to send on the line.
fn store_with_line(dir: &TempDir) -> (SqlStore, Sender) {
    let store = SqlStore::open(StoreConfig::new(dir.path().join("bench.db"), MASTER_KEY)).expect("the store opens");
    let mut ph = fixtures::hotline("PH");
    let mut cn = fixtures::hotline("CN");
    let request = NewLine {
        members: vec!["PH".into(), "CN".into()],
        scope: "ADMM-Plus".into(),
        title: Some("bench line".into()),
    };
    let key_packages = fixtures::key_packages_of(&mut [&mut cn]);
    let setup = ph.create_line(T0, LINE, request, key_packages).expect("the core creates the line");
    let mls_state = Some(ph.mls_delta().expect("the MLS state"));
    let batch = WriteBatch { records: vec![setup], mls_state, ..WriteBatch::default() };
    assert_eq!(store.commit(batch).wait_blocking().expect("the set-up commits"), vec![Outcome::Inserted]);
    (store, Sender { core: ph, now_ms: T0 })
}

fn commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("store_commit");
    // Each iteration waits for an fsync: fewer samples keep a run short.
    group.sample_size(20);
    for n in BATCH_LENS {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (store, mut sender) = store_with_line(&dir);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(BenchmarkId::new("records", n), |b| {
            b.iter_batched(
                || sender.batch(n),
                |batch| {
                    let outcomes = store.commit(black_box(batch)).wait_blocking().expect("the batch commits");
                    assert!(outcomes.iter().all(|o| *o == Outcome::Inserted), "every record is new");
                    outcomes
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, commit);
criterion_main!(benches);
