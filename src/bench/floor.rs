//! The physical floor, measured in the same run as the workloads: what one loopback round trip,
//! one append-and-fsync on the nodes' own file system, and one Ed25519 signature and verification
//! cost on this machine. Every result is printed beside the floor it cannot beat.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Instant;

use ed25519_dalek::{Signer, SigningKey, Verifier};
use serde::Serialize;

use super::stats::{spread, Spread};

/// Bytes of each echo on the loopback round trip: about one small request.
const ECHO_BYTES: usize = 256;
/// Bytes appended before each fsync: one SQLite page.
const FSYNC_APPEND_BYTES: usize = 4096;
/// Bytes signed and verified: about one envelope.
const SIGNED_BYTES: usize = 1024;

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
    Ok(Floor { round_trip_us, fsync_us, sign_us, verify_us })
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
