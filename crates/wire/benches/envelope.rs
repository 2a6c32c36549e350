//! Envelope hot paths: signing a body (which encodes it, signs it with Ed25519 and hashes the
//! result), decoding the signed bytes, and verifying the signature of a decoded envelope, for an
//! MLS envelope with a 1 KiB payload.
//!
//! Encoding alone is not public (`EnvelopeBody::encode` is private: a body only leaves the crate
//! signed), so its cost is measured inside `sign`.

use std::hint::black_box;

use adi_wire::envelope::{CONTENT_MLS, PRIORITY_IMMEDIATE};
use adi_wire::{Envelope, EnvelopeBody, EnvelopeHash, LineId};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ed25519_dalek::SigningKey;

/// About the ciphertext of a short hotline message with its signed content.
const PAYLOAD_LEN: usize = 1024;
/// The node's own limits are far above one envelope; these only need to let it through.
const ENVELOPE_BYTES_MAX: usize = 256 * 1024;
const PAYLOAD_BYTES_MAX: usize = 192 * 1024;

fn sender_key() -> SigningKey {
    SigningKey::from_bytes(&[1; 32])
}

/// A mid-line MLS envelope: a later sequence number chained to a previous envelope.
fn body() -> EnvelopeBody {
    EnvelopeBody {
        line: LineId([7; 16]),
        sender: "PH".into(),
        seq: 4_242,
        prev: EnvelopeHash([9; 32]),
        epoch: 3,
        created_ms: 1_700_000_000_000,
        priority: PRIORITY_IMMEDIATE,
        content_type: CONTENT_MLS,
        content_hash: [5; 32],
        payload: (0..PAYLOAD_LEN).map(|i| (i % 251) as u8).collect(),
    }
}

fn envelope(c: &mut Criterion) {
    let key = sender_key();
    let public = key.verifying_key();
    let signed = body().sign(&key);
    let bytes = signed.bytes().to_vec();
    let decoded = Envelope::decode(&bytes, ENVELOPE_BYTES_MAX, PAYLOAD_BYTES_MAX).expect("the envelope decodes");

    let mut group = c.benchmark_group("envelope");
    group.throughput(Throughput::Bytes(bytes.len() as u64));

    // `sign` takes the body by value, so each iteration gets a fresh copy made outside the timing.
    group.bench_function("sign", |b| b.iter_batched(body, |body| body.sign(black_box(&key)), BatchSize::SmallInput));

    group.bench_function("decode", |b| {
        b.iter(|| Envelope::decode(black_box(&bytes), ENVELOPE_BYTES_MAX, PAYLOAD_BYTES_MAX).expect("decodes"))
    });

    // `verify` consumes the decoded envelope, so each iteration checks a copy made outside the timing.
    group.bench_function("verify", |b| {
        b.iter_batched(
            || decoded.clone(),
            |envelope| envelope.verify(black_box(&public)).expect("the signature verifies"),
            BatchSize::SmallInput,
        )
    });

    // What a node does with every envelope a peer sends: decode, then check the signature.
    group.bench_function("decode_and_verify", |b| {
        b.iter(|| {
            Envelope::decode(black_box(&bytes), ENVELOPE_BYTES_MAX, PAYLOAD_BYTES_MAX)
                .expect("decodes")
                .verify(black_box(&public))
                .expect("the signature verifies")
        })
    });

    group.finish();
}

criterion_group!(benches, envelope);
criterion_main!(benches);
