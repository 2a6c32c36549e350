//! Merkle log hot paths over a line log of 10,000 entries: appending an entry and computing the
//! new root, generating and verifying an inclusion proof, and generating and verifying a
//! consistency proof from an earlier checkpoint.
//!
//! The log keeps no interior nodes: like a node signing a checkpoint, an append hashes the new
//! leaf and recomputes the root over every leaf, and a proof recomputes the subtree roots it needs.

use std::hint::black_box;

use adi_record::merkle::{
    consistency_proof, inclusion_proof, leaf_hash, root, verify_consistency, verify_inclusion, Hash,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

/// Entries in the log: a busy line after a long exercise.
const LOG_LEN: usize = 10_000;
/// The leaf whose inclusion is proved: deep in the tree, not on a power-of-two boundary.
const PROVED_INDEX: usize = 6_789;
/// The size of the earlier checkpoint a peer asks the log to be consistent with.
const CHECKPOINT_SIZE: usize = 9_000;

/// The leaf hashes of a log whose entries stand in for envelope hashes.
fn leaves(n: usize) -> Vec<Hash> {
    (0..n as u64).map(|i| leaf_hash(&entry(i))).collect()
}

/// A 32-byte entry, as an envelope hash is.
fn entry(i: u64) -> Hash {
    let mut e = [0u8; 32];
    e[..8].copy_from_slice(&i.to_be_bytes());
    e
}

fn merkle(c: &mut Criterion) {
    let mut log = leaves(LOG_LEN);
    log.reserve(1);
    let size = LOG_LEN as u64;
    let head = root(&log);
    let checkpoint_head = root(&log[..CHECKPOINT_SIZE]);
    let inclusion = inclusion_proof(&log, PROVED_INDEX);
    let consistency = consistency_proof(&log, CHECKPOINT_SIZE);

    let mut group = c.benchmark_group("merkle");

    // The entry is taken off again after each iteration, so every iteration appends to the same
    // 10,000-entry log; the capacity was reserved, so the push never reallocates.
    group.bench_function(BenchmarkId::new("append_and_root", LOG_LEN), |b| {
        b.iter(|| {
            log.push(leaf_hash(black_box(&entry(size))));
            let new_head = root(black_box(&log));
            log.pop();
            new_head
        })
    });

    group.bench_function(BenchmarkId::new("inclusion_proof", LOG_LEN), |b| {
        b.iter(|| inclusion_proof(black_box(&log), black_box(PROVED_INDEX)))
    });

    let proved_leaf = log[PROVED_INDEX];
    group.bench_function(BenchmarkId::new("verify_inclusion", LOG_LEN), |b| {
        b.iter(|| {
            verify_inclusion(black_box(PROVED_INDEX as u64), size, &proved_leaf, black_box(&inclusion), &head)
                .expect("the inclusion proof holds")
        })
    });

    group.bench_function(BenchmarkId::new("consistency_proof", format!("{CHECKPOINT_SIZE}-{LOG_LEN}")), |b| {
        b.iter(|| consistency_proof(black_box(&log), black_box(CHECKPOINT_SIZE)))
    });

    group.bench_function(BenchmarkId::new("verify_consistency", format!("{CHECKPOINT_SIZE}-{LOG_LEN}")), |b| {
        b.iter(|| {
            verify_consistency(
                black_box(CHECKPOINT_SIZE as u64),
                size,
                &checkpoint_head,
                &head,
                black_box(&consistency),
            )
            .expect("the consistency proof holds")
        })
    });

    group.finish();
}

criterion_group!(benches, merkle);
criterion_main!(benches);
