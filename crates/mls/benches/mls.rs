//! MLS hot paths on a two-member line (PH, the home member, and CN): sealing an application
//! message with `LineMember::encrypt` and opening it with `LineMember::process`, for a 1 KiB
//! plaintext, about a hotline message's signed content.
//!
//! A ciphertext opens only once (its key is deleted after use), so the open benchmark has the
//! sender seal a fresh message for each iteration, outside the timing, and the receiver opens them
//! in order. Each benchmark has a line of its own, so that the messages sealed by one do not leave
//! the receiver of the other far behind in the sender's ratchet.

use std::collections::HashSet;
use std::hint::black_box;

use adi_mls::{check_key_package, Claim, LineMember, LineRules, MlsConfig, Processed};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const LINE: [u8; 16] = [7; 16];
const HOME: &str = "PH";
const PLAINTEXT_LEN: usize = 1024;

/// A member's roster seed: its code, zero-padded.
fn seed(code: &str) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..code.len()].copy_from_slice(code.as_bytes());
    s
}

/// The roster of the two members: each key derives from the member's code.
fn roster(code: &str) -> Option<[u8; 32]> {
    [HOME, "CN"].contains(&code).then(|| ed25519_dalek::SigningKey::from_bytes(&seed(code)).verifying_key().to_bytes())
}

fn member(code: &str) -> LineMember {
    LineMember::new(code, seed(code), MlsConfig::default()).expect("a member")
}

/// PH creates the line with CN's KeyPackage; CN joins from the Welcome. Returns (PH, CN).
fn two_member_line() -> (LineMember, LineMember) {
    let mut ph = member(HOME);
    let mut cn = member("CN");
    let kp_bytes = cn.key_packages(1).expect("a KeyPackage").remove(0);
    let (_, kp) = check_key_package(&kp_bytes, &roster, &mut HashSet::new()).expect("a valid KeyPackage");
    let created = ph.create_line(LINE, vec![kp]).expect("the line's group");
    let welcome = created.welcome.expect("a Welcome for CN");
    assert_eq!(cn.join(&welcome, &roster).expect("CN joins"), LINE);
    (ph, cn)
}

fn plaintext() -> Vec<u8> {
    (0..PLAINTEXT_LEN).map(|i| (i % 251) as u8).collect()
}

fn mls(c: &mut Criterion) {
    let message = plaintext();
    let mut group = c.benchmark_group("mls");
    group.throughput(Throughput::Bytes(PLAINTEXT_LEN as u64));

    let (mut sealer, _) = two_member_line();
    group.bench_function("seal", |b| b.iter(|| sealer.encrypt(&LINE, black_box(&message)).expect("sealed")));

    let (mut sender, mut receiver) = two_member_line();
    group.bench_function("open", |b| {
        b.iter_batched(
            || sender.encrypt(&LINE, &message).expect("sealed"),
            |(epoch, ciphertext)| match receiver.process(
                &LINE,
                LineRules { home: HOME, direct: true },
                Claim { sender: HOME, epoch },
                black_box(&ciphertext),
                &roster,
            ) {
                Ok(Processed::Application { plaintext, .. }) => plaintext,
                other => panic!("not an application message: {other:?}"),
            },
            BatchSize::SmallInput,
        )
    });

    group.finish();
}

criterion_group!(benches, mls);
criterion_main!(benches);
