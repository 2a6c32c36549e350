//! The fuzz targets on stable Rust: every input kept under `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/` is replayed through its target, then a bounded mutation run (bit
//! flips, byte changes, insertions, deletions, truncations, duplications, splices) starts from
//! those inputs, driven by a seeded xorshift generator, so that the same files give the same run.
//! The seeds the fixtures make in this process (`adi_fuzz::seeds`), whose MLS Welcomes and
//! ciphertexts are live here, are replayed once each as well. A target whose folders are missing,
//! or whose corpus lacks a seed, fails, so that the corpus cannot vanish or fall behind unnoticed.
//!
//! `ADI_FUZZ_EXECUTIONS` sets the mutated executions per target (default
//! [`EXECUTIONS_DEFAULT`]); `ADI_FUZZ_SEED` changes the mutation seed. A failure names the target
//! and prints the input in hex: save it under `fuzz/regressions/<target>/` (for example with
//! `xxd -r -p`) and it is replayed from then on.

use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

use adi_fuzz::Target;

/// Mutated executions per target in an ordinary test run.
const EXECUTIONS_DEFAULT: u64 = 5_000;
/// The mutation seed in an ordinary test run.
const SEED_DEFAULT: u64 = 0x0AD1_F022_5EED_0001;
/// Mutated inputs are kept below this length.
const INPUT_BYTES_MAX: usize = 64 * 1024;

/// Tokens worth inserting into the JSON and binary formats alike.
const DICTIONARY: [&[u8]; 16] = [
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"null",
    b"-1",
    b"1e999",
    b"18446744073709551616",
    b"\\u0000",
    b"\"type\"",
    b"ADIE",
    b"ADIB",
    &[0xFF, 0xFF, 0xFF, 0xFF],
];

/// xorshift64*: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (which must not be 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One random change to `input`; `pool` supplies the other half of a splice.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>, pool: &[Vec<u8>]) {
    let len = input.len();
    match rng.below(9) {
        0 if len > 0 => {
            let at = rng.below(len);
            input[at] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let at = rng.below(len);
            input[at] = [0x00, 0xFF, 0x7F, 0x80, 0x01, b'0', b'"', b'\\'][rng.below(8)];
        }
        2 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            input.splice(at..at, bytes);
        }
        3 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(16));
            input.drain(at..at + n);
        }
        4 => input.truncate(rng.below(len + 1)),
        5 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(64));
            let chunk = input[at..at + n].to_vec();
            let to = rng.below(len + 1);
            input.splice(to..to, chunk);
        }
        6 if !pool.is_empty() => {
            let other = &pool[rng.below(pool.len())];
            let head = rng.below(len + 1);
            let tail = rng.below(other.len() + 1);
            input.truncate(head);
            input.extend_from_slice(&other[tail..]);
        }
        7 => {
            let at = rng.below(len + 1);
            input.splice(at..at, DICTIONARY[rng.below(DICTIONARY.len())].iter().copied());
        }
        _ if len >= 4 => {
            // A length or count field made large, wherever it may be.
            let at = rng.below(len - 3);
            let value = [u32::MAX, 0x8000_0000, 0x0001_0000, 257][rng.below(4)];
            input[at..at + 4].copy_from_slice(&value.to_be_bytes());
        }
        _ => input.push(rng.next() as u8),
    }
    input.truncate(INPUT_BYTES_MAX);
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files kept for a target under `fuzz/<kind>/<target>/`, in name order; dot files are
/// skipped. A missing folder fails the test.
fn kept(kind: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join(kind).join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fuzz/{kind}/{target}/ is missing ({e}); every target keeps one"));
    let mut files: Vec<(String, Vec<u8>)> = entries
        .map(|e| e.expect("a folder entry").path())
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .map(|p| {
            let name = format!("fuzz/{kind}/{target}/{}", p.file_name().unwrap_or_default().to_string_lossy());
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read {name}: {e}"));
            (name, bytes)
        })
        .collect();
    files.sort();
    files
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| panic!("{name}={v} is not a number")),
        Err(_) => default,
    }
}

/// Runs one input; on a panic, fails the test naming the target and the input in hex.
fn run_one(target: &Target, what: &str, input: &[u8]) {
    if catch_unwind(AssertUnwindSafe(|| (target.run)(input))).is_err() {
        panic!(
            "fuzz target {} panicked on {what} ({} bytes); save it as a regression:\n\
             echo {} | xxd -r -p > fuzz/regressions/{}/<name>",
            target.name,
            input.len(),
            hex::encode(input),
            target.name
        );
    }
}

/// Replays the target's corpus, its regressions and this process's seeds, then mutates the inputs
/// kept in files.
fn replay_and_mutate(name: &str) {
    let target = adi_fuzz::target(name).expect("a known target");
    let started = Instant::now();
    let corpus = kept("corpus", name);
    let regressions = kept("regressions", name);
    assert!(!corpus.is_empty(), "fuzz/corpus/{name}/ holds no input");
    for (file, bytes) in corpus.iter().chain(&regressions) {
        run_one(&target, file, bytes);
    }
    let seeds = adi_fuzz::seeds::seeds(name);
    for s in &seeds {
        let file = format!("fuzz/corpus/{name}/{}", s.name);
        assert!(
            corpus.iter().any(|(f, _)| *f == file),
            "{file} is missing: write the corpus again (cargo run -p adi-fuzz --example write_corpus)"
        );
        run_one(&target, &format!("the seed {} made in this process", s.name), &s.bytes);
    }
    let pool: Vec<Vec<u8>> = corpus.iter().chain(&regressions).map(|(_, b)| b.clone()).collect();
    let executions = env_number("ADI_FUZZ_EXECUTIONS", EXECUTIONS_DEFAULT);
    let seed = env_number("ADI_FUZZ_SEED", SEED_DEFAULT);
    let mut rng = Rng::new(seed ^ name.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))));
    for n in 0..executions {
        let mut input = pool[rng.below(pool.len())].clone();
        for _ in 0..1 + rng.below(3) {
            mutate(&mut rng, &mut input, &pool);
        }
        run_one(&target, &format!("mutated input {n} (seed {seed:#x})"), &input);
    }
    // Written past the test harness's capture, so that every run shows what it covered.
    let line = format!(
        "fuzz target {name}: {} corpus files, {} regressions, {} seeds made here, {executions} mutated executions, {:.1} s\n",
        corpus.len(),
        regressions.len(),
        seeds.len(),
        started.elapsed().as_secs_f64()
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
}

#[test]
fn every_target_is_replayed_and_names_its_seeds_once() {
    let source = include_str!("corpus.rs");
    for target in adi_fuzz::TARGETS {
        let call = format!("replay_and_mutate(\"{}\")", target.name);
        assert!(source.contains(&call), "the fuzz target {} is not replayed here", target.name);
        let mut names: Vec<String> = adi_fuzz::seeds::seeds(target.name).into_iter().map(|s| s.name).collect();
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count, "two seeds of {} share a file name", target.name);
    }
}

#[test]
fn envelope() {
    replay_and_mutate("envelope");
}

#[test]
fn batch() {
    replay_and_mutate("batch");
}

#[test]
fn peer_json() {
    replay_and_mutate("peer_json");
}

#[test]
fn payload() {
    replay_and_mutate("payload");
}

#[test]
fn signed_content() {
    replay_and_mutate("signed_content");
}

#[test]
fn checkpoint() {
    replay_and_mutate("checkpoint");
}

#[test]
fn bundle() {
    replay_and_mutate("bundle");
}

#[test]
fn key_package() {
    replay_and_mutate("key_package");
}

#[test]
fn roster() {
    replay_and_mutate("roster");
}

#[test]
fn receive() {
    replay_and_mutate("receive");
}

#[test]
fn line_setup() {
    replay_and_mutate("line_setup");
}

#[test]
fn mls_message() {
    replay_and_mutate("mls_message");
}

#[test]
fn line_content() {
    replay_and_mutate("line_content");
}

/// The operator API and the federation listener of one running node, which this test stops
/// at the end.
#[test]
fn node() {
    replay_and_mutate("api");
    replay_and_mutate("federation");
    adi_fuzz::stop_node();
}
