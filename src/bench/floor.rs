//! The floors, measured in the same run as the workloads. The machine's: what one loopback round
//! trip, one append-and-fsync on the nodes' own file system, and one Ed25519 signature and
//! verification cost on this machine. The protocol's: the signatures, verifications, AEAD
//! operations, seals at rest and commits that ADI's design asks of one message ([`Protocol`]),
//! at the costs measured here. Every result is printed beside both: what lies between the
//! machine's floor and the protocol's is the design; what lies above the protocol's, overhead.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Instant;

use aes_gcm::aead::{Aead, KeyInit};
use ed25519_dalek::{Signer, SigningKey, Verifier};
use serde::Serialize;

use super::stats::{spread, Spread};

/// Bytes of each echo on the loopback round trip: about one small request.
const ECHO_BYTES: usize = 256;
/// Bytes appended before each fsync: one SQLite page.
const FSYNC_APPEND_BYTES: usize = 4096;
/// Bytes signed and verified: about one envelope.
const SIGNED_BYTES: usize = 1024;
/// Bytes sealed and opened with an AEAD: about one message's content.
const SEALED_BYTES: usize = 1024;

/// What the protocol asks of one MLS application message on a line (an operator's message, a
/// chunk of a file, a receipt), at each end, by its design (`docs/WIRE.md`, `docs/RECORD.md`):
/// the author signs the content (the record keeps that signature), MLS signs its framing, and the
/// node signs the envelope; the recipient verifies the three.
pub const SIGNATURES_PER_APPLICATION_MESSAGE: u32 = 3;
/// MLS seals the content and, apart, the sender's data: two AEAD operations (AES-128-GCM, the
/// ciphersuite's), opened at the recipient.
pub const AEAD_PER_APPLICATION_MESSAGE: u32 = 2;
/// Each end seals the content at rest (ChaCha20-Poly1305) before it commits it.
pub const SEALS_AT_REST_PER_APPLICATION_MESSAGE: u32 = 1;
/// Each end commits it durably: one fsync, which group commit shares among messages committed
/// together (so it counts for latency, not for CPU).
pub const FSYNCS_PER_APPLICATION_MESSAGE: u32 = 1;
/// Application messages per operator message: the message, and the `decrypted` receipt its
/// recipient's node answers with (its own MLS message, the other way).
pub const APPLICATION_MESSAGES_PER_MESSAGE: u32 = 2;

/// The floor of this machine.
#[derive(Serialize, Clone, Debug)]
pub struct Floor {
    /// Loopback TCP round trip of a raw echo, µs.
    pub round_trip_us: Spread,
    /// A 4 KiB append followed by fdatasync in the nodes' directory, µs.
    pub fsync_us: Spread,
    /// One Ed25519 signature of 1 KiB, µs (median).
    pub sign_us: f64,
    /// One Ed25519 verification of 1 KiB, µs (median).
    pub verify_us: f64,
    /// One AES-128-GCM seal or open of 1 KiB, µs (median of the two).
    pub aead_us: f64,
    /// One ChaCha20-Poly1305 seal of 1 KiB (the seal at rest), µs (median).
    pub seal_us: f64,
}

/// The protocol's own floor, at this machine's costs: what the design asks, before any overhead.
#[derive(Serialize, Clone, Debug)]
pub struct Protocol {
    /// Per operator message, at both ends together (its receipt included).
    pub signatures: u32,
    pub verifications: u32,
    pub aead_operations: u32,
    pub seals_at_rest: u32,
    /// The CPU the design asks per operator message, both ends together, µs.
    pub cpu_per_message_us: f64,
    /// The design's floor of a FLASH ringing at the other desk: the machine's (a commit at each
    /// end, one round trip) plus the sender's three signatures, two AEAD and seal at rest, and
    /// the recipient's three verifications, two AEAD and seal at rest, ms.
    pub ring_ms: f64,
    /// The message out and the acknowledgement back (an application message each way), ms.
    pub loop_ms: f64,
}

impl Protocol {
    pub fn of(f: &Floor) -> Protocol {
        let one_way_us = f64::from(SIGNATURES_PER_APPLICATION_MESSAGE) * (f.sign_us + f.verify_us)
            + f64::from(2 * AEAD_PER_APPLICATION_MESSAGE) * f.aead_us
            + f64::from(2 * SEALS_AT_REST_PER_APPLICATION_MESSAGE) * f.seal_us;
        let ring_us = one_way_us + f64::from(2 * FSYNCS_PER_APPLICATION_MESSAGE) * f.fsync_us.p50 + f.round_trip_us.p50;
        let n = APPLICATION_MESSAGES_PER_MESSAGE;
        Protocol {
            signatures: n * SIGNATURES_PER_APPLICATION_MESSAGE,
            verifications: n * SIGNATURES_PER_APPLICATION_MESSAGE,
            aead_operations: n * 2 * AEAD_PER_APPLICATION_MESSAGE,
            seals_at_rest: n * 2 * SEALS_AT_REST_PER_APPLICATION_MESSAGE,
            cpu_per_message_us: f64::from(n) * one_way_us,
            ring_ms: ring_us / 1000.0,
            loop_ms: 2.0 * ring_us / 1000.0,
        }
    }
}

impl Floor {
    /// The floor of a FLASH reaching the other desk: a commit at each end, one round trip, one
    /// signature and one verification, in ms.
    pub fn flash_ring_ms(&self) -> f64 {
        (2.0 * self.fsync_us.p50 + self.round_trip_us.p50 + self.sign_us + self.verify_us) / 1000.0
    }

    /// The floor of the whole loop: the message out and its acknowledgement back, in ms.
    pub fn flash_loop_ms(&self) -> f64 {
        2.0 * self.flash_ring_ms()
    }

    /// The CPU floor of one message: one signature and one verification, in µs.
    pub fn cpu_per_message_us(&self) -> f64 {
        self.sign_us + self.verify_us
    }
}

/// Measures the floor with `rounds` samples of each kind, in `dir`.
pub fn measure(dir: &Path, rounds: usize) -> anyhow::Result<Floor> {
    let round_trip_us = round_trip(rounds)?;
    let fsync_us = fsync(dir, rounds)?;
    let (sign_us, verify_us) = signatures(rounds.max(200));
    let (aead_us, seal_us) = aeads(rounds.max(200));
    Ok(Floor { round_trip_us, fsync_us, sign_us, verify_us, aead_us, seal_us })
}

/// Medians of batches of 20: an AES-128-GCM seal and open (per operation), and a
/// ChaCha20-Poly1305 seal, each of 1 KiB.
fn aeads(rounds: usize) -> (f64, f64) {
    let gcm = aes_gcm::Aes128Gcm::new(&[0x24; 16].into());
    let chacha = chacha20poly1305::ChaCha20Poly1305::new(&[0x42; 32].into());
    let nonce = [0u8; 12];
    let plain = vec![0x5a_u8; SEALED_BYTES];
    let batch = 20;
    let (mut gcms, mut seals) = (Vec::new(), Vec::new());
    for _ in 0..rounds / batch {
        let t = Instant::now();
        for _ in 0..batch {
            let sealed = gcm.encrypt(&nonce.into(), std::hint::black_box(plain.as_slice())).unwrap_or_default();
            let opened = gcm.decrypt(&nonce.into(), sealed.as_slice()).is_ok();
            std::hint::black_box(opened);
        }
        gcms.push(t.elapsed().as_secs_f64() * 1e6 / (2 * batch) as f64);
        let t = Instant::now();
        for _ in 0..batch {
            let sealed = chacha.encrypt(&nonce.into(), std::hint::black_box(plain.as_slice())).unwrap_or_default();
            std::hint::black_box(sealed);
        }
        seals.push(t.elapsed().as_secs_f64() * 1e6 / batch as f64);
    }
    (spread(&mut gcms).p50, spread(&mut seals).p50)
}

fn round_trip(rounds: usize) -> anyhow::Result<Spread> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut buf = [0u8; ECHO_BYTES];
        loop {
            match s.read_exact(&mut buf) {
                Ok(()) => s.write_all(&buf)?,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    });
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let mut buf = [7u8; ECHO_BYTES];
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..rounds + rounds / 10 {
        let t = Instant::now();
        s.write_all(&buf)?;
        s.read_exact(&mut buf)?;
        // The first tenth warms the path up and is not counted.
        if i >= rounds / 10 {
            samples.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    drop(s);
    echo.join().map_err(|_| anyhow::anyhow!("the echo thread failed"))??;
    Ok(spread(&mut samples))
}

fn fsync(dir: &Path, rounds: usize) -> anyhow::Result<Spread> {
    let path = dir.join("fsync-probe");
    let mut f = OpenOptions::new().create(true).truncate(true).write(true).open(&path)?;
    let page = [0x5a_u8; FSYNC_APPEND_BYTES];
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..rounds + rounds / 10 {
        let t = Instant::now();
        f.write_all(&page)?;
        f.sync_data()?;
        if i >= rounds / 10 {
            samples.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    drop(f);
    std::fs::remove_file(&path)?;
    Ok(spread(&mut samples))
}

/// Median of batches of 20 signatures and 20 verifications.
fn signatures(rounds: usize) -> (f64, f64) {
    let key = SigningKey::from_bytes(&[0x42; 32]);
    let public = key.verifying_key();
    let message = vec![0xa5_u8; SIGNED_BYTES];
    let batch = 20;
    let (mut signs, mut verifies) = (Vec::new(), Vec::new());
    for _ in 0..rounds / batch {
        let t = Instant::now();
        let mut sig = key.sign(&message);
        for _ in 1..batch {
            sig = key.sign(std::hint::black_box(&message));
        }
        signs.push(t.elapsed().as_secs_f64() * 1e6 / batch as f64);
        let t = Instant::now();
        for _ in 0..batch {
            let ok = public.verify(std::hint::black_box(&message), &sig).is_ok();
            std::hint::black_box(ok);
        }
        verifies.push(t.elapsed().as_secs_f64() * 1e6 / batch as f64);
    }
    (spread(&mut signs).p50, spread(&mut verifies).p50)
}
