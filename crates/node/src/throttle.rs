//! Sign-in attempts, bounded so that nobody can exhaust the node's memory with them, guess
//! passwords quickly, or lock an operator out.
//!
//! Each password check (argon2id, `docs/THREAT_MODEL.md`) takes its memory for a moment, so at
//! most `sign_in_checks_max` run at once, and an attempt waits `sign_in_wait_ms` at most for its
//! turn. Attempts are counted per client address (`sign_in_per_address_per_minute_max`) and in
//! all (`sign_in_per_minute_max`). Failures are counted per operator name; past
//! `sign_in_failures_max` within `sign_in_window_ms`, each further attempt at that name waits a
//! delay that doubles with each failure, up to `sign_in_delay_ms_max`: the right password still
//! signs in once the delay has passed, so no one can lock an operator out. Every table is bounded
//! by `sign_in_tracked_max` entries.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use argon2::password_hash::{Output, PasswordHash};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::config::RuntimeLimits;

const MINUTE_MS: u64 = 60_000;

/// Why an attempt is refused before its password is checked, and when to try again.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    pub code: &'static str,
    pub message: String,
    pub retry_after_ms: u64,
}

pub struct Throttle {
    checks: tokio::sync::Semaphore,
    /// The memory of the checks, kept between them: each check's 19 MiB is taken once and used
    /// again, never given back to the allocator, whose per-thread arenas would otherwise keep
    /// what every thread of the blocking pool ever took.
    memory: Mutex<Vec<Vec<Block>>>,
    inner: Mutex<Inner>,
}

/// The most memory one password check may take (blocks of 1 KiB): 256 MiB, against a stored
/// hash whose parameters someone changed.
const CHECK_BLOCKS_MAX: usize = 1 << 18;

/// Whether `password` is the one whose PHC string (argon2) is `phc`, computed in `memory`, grown
/// to what the hash's parameters need.
pub fn verify_password(password: &str, phc: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else { return false };
    let (Ok(params), Some(salt), Some(expected)) = (Params::try_from(&hash), hash.salt, hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm) else { return false };
    let Ok(version) = hash.version.map(Version::try_from).transpose() else { return false };
    let blocks = params.block_count();
    if blocks > CHECK_BLOCKS_MAX {
        return false;
    }
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else { return false };
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version.unwrap_or_default(), params);
    argon.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..blocks]).is_ok()
        // Output's comparison takes the same time wherever the bytes differ.
        && Output::new(&out).is_ok_and(|o| o == expected)
}

#[derive(Default)]
struct Inner {
    /// By operator name: failures within the window and when the last one was.
    failures: HashMap<String, (u32, u64)>,
    /// By client address: when each attempt of the last minute was made.
    by_address: HashMap<Option<IpAddr>, VecDeque<u64>>,
    /// Every attempt of the last minute.
    overall: VecDeque<u64>,
}

/// Keeps `map` within `max` entries before one is added: first those `stale` says are done
/// with, then the ones `age` says are oldest.
fn bound<K: Eq + Hash + Clone, V>(
    map: &mut HashMap<K, V>,
    max: usize,
    stale: impl Fn(&V) -> bool,
    age: impl Fn(&V) -> u64,
) {
    if map.len() < max {
        return;
    }
    map.retain(|_, v| !stale(v));
    while map.len() >= max {
        let Some(oldest) = map.iter().min_by_key(|(_, v)| age(v)).map(|(k, _)| k.clone()) else { return };
        map.remove(&oldest);
    }
}

impl Throttle {
    pub fn new(limits: &RuntimeLimits) -> Throttle {
        Throttle {
            checks: tokio::sync::Semaphore::new(limits.sign_in_checks_max),
            memory: Mutex::default(),
            inner: Mutex::default(),
        }
    }

    /// Whether an attempt at `name` from `address` may be checked now; counts it if so.
    pub fn admit(&self, limits: &RuntimeLimits, name: &str, address: Option<IpAddr>, now: u64) -> Result<(), Refused> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = |t: &u64| now.saturating_sub(*t) < MINUTE_MS;
        while inner.overall.front().is_some_and(|t| !fresh(t)) {
            inner.overall.pop_front();
        }
        let next_in = |q: &VecDeque<u64>| q.front().map_or(0, |t| (t + MINUTE_MS).saturating_sub(now));
        if inner.overall.len() >= limits.sign_in_per_minute_max {
            return Err(Refused {
                code: "too_many_attempts",
                message: format!(
                    "more than {} sign-ins a minute at this node; try again shortly",
                    limits.sign_in_per_minute_max
                ),
                retry_after_ms: next_in(&inner.overall),
            });
        }
        if let Some((count, last)) = inner.failures.get(name).copied() {
            let recent = now.saturating_sub(last) < limits.sign_in_window_ms;
            if recent && count as usize >= limits.sign_in_failures_max {
                let doublings = (count as usize - limits.sign_in_failures_max).min(20) as u32;
                let delay = (1_000u64 << doublings).min(limits.sign_in_delay_ms_max);
                let wait = (last + delay).saturating_sub(now);
                if wait > 0 {
                    return Err(Refused {
                        code: "too_many_attempts",
                        message: format!(
                            "{count} failed sign-ins for this name; the next may be made in {} s",
                            wait.div_ceil(1_000)
                        ),
                        retry_after_ms: wait,
                    });
                }
            }
        }
        let tracked_max = limits.sign_in_tracked_max;
        bound(
            &mut inner.by_address,
            tracked_max,
            |q| q.back().is_none_or(|t| !fresh(t)),
            |q| q.back().copied().unwrap_or(0),
        );
        let mine = inner.by_address.entry(address).or_default();
        while mine.front().is_some_and(|t| !fresh(t)) {
            mine.pop_front();
        }
        if mine.len() >= limits.sign_in_per_address_per_minute_max {
            let retry_after_ms = next_in(mine);
            return Err(Refused {
                code: "too_many_attempts",
                message: format!(
                    "more than {} sign-ins a minute from this address; try again shortly",
                    limits.sign_in_per_address_per_minute_max
                ),
                retry_after_ms,
            });
        }
        mine.push_back(now);
        inner.overall.push_back(now);
        Ok(())
    }

    /// Checks `password` against `phc` when a turn is free, within `wait`, in memory the checks
    /// share; `None` when no turn was free.
    pub async fn check(&self, wait: Duration, password: String, phc: String) -> Option<bool> {
        let _turn = tokio::time::timeout(wait, self.checks.acquire()).await.ok()?.ok()?;
        let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner()).pop().unwrap_or_default();
        let (ok, memory) = tokio::task::spawn_blocking(move || {
            let ok = verify_password(&password, &phc, &mut memory);
            (ok, memory)
        })
        .await
        .ok()?;
        self.memory.lock().unwrap_or_else(|p| p.into_inner()).push(memory);
        Some(ok)
    }

    pub fn failed(&self, limits: &RuntimeLimits, name: &str, now: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let window = limits.sign_in_window_ms;
        bound(
            &mut inner.failures,
            limits.sign_in_tracked_max,
            |(_, last)| now.saturating_sub(*last) >= window,
            |(_, last)| *last,
        );
        let entry = inner.failures.entry(name.to_string()).or_insert((0, now));
        if now.saturating_sub(entry.1) >= window {
            entry.0 = 0;
        }
        *entry = (entry.0.saturating_add(1), now);
    }

    pub fn succeeded(&self, name: &str) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).failures.remove(name);
    }

    /// Entries held in the failure and address tables.
    pub fn tracked(&self) -> (usize, usize) {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        (inner.failures.len(), inner.by_address.len())
    }
}

/// Requests to the API from one client address that carry no credential, or whose credential
/// was refused, counted over the last minute: past `unauthenticated_per_address_per_minute_max`
/// such a request is answered 429 before any handler runs. A request with a credential is
/// always let through (checking a token is one indexed read), so an operator behind the same
/// address as an attacker keeps working; its refusals count.
pub struct Unauthenticated {
    per_address_max: usize,
    tracked_max: usize,
    by_address: Mutex<HashMap<IpAddr, VecDeque<u64>>>,
}

impl Unauthenticated {
    pub fn new(limits: &RuntimeLimits) -> Unauthenticated {
        Unauthenticated {
            per_address_max: limits.unauthenticated_per_address_per_minute_max,
            tracked_max: limits.unauthenticated_tracked_max,
            by_address: Mutex::default(),
        }
    }

    /// Counts a request without a credential from `address`; `Some(retry after, ms)` when the
    /// address is past its bound and the request is to be refused.
    pub fn admit(&self, address: IpAddr, now: u64) -> Option<u64> {
        let mut map = self.by_address.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = |t: &u64| now.saturating_sub(*t) < MINUTE_MS;
        if !map.contains_key(&address) {
            bound(
                &mut map,
                self.tracked_max,
                |q| q.back().is_none_or(|t| !fresh(t)),
                |q| q.back().copied().unwrap_or(0),
            );
        }
        let q = map.entry(address).or_default();
        while q.front().is_some_and(|t| !fresh(t)) {
            q.pop_front();
        }
        if q.len() >= self.per_address_max {
            return Some(q.front().map_or(MINUTE_MS, |t| (t + MINUTE_MS).saturating_sub(now)).max(1));
        }
        q.push_back(now);
        None
    }

    /// Counts a refused credential from `address`.
    pub fn refused(&self, address: IpAddr, now: u64) {
        let _ = self.admit(address, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> RuntimeLimits {
        RuntimeLimits { sign_in_tracked_max: 4, ..RuntimeLimits::default() }
    }

    #[test]
    fn requests_without_a_credential_are_bounded_per_address_and_per_minute() {
        let l =
            RuntimeLimits { unauthenticated_per_address_per_minute_max: 3, unauthenticated_tracked_max: 2, ..limits() };
        let u = Unauthenticated::new(&l);
        let (one, two): (IpAddr, IpAddr) = ("127.0.0.3".parse().unwrap(), "127.0.0.4".parse().unwrap());
        u.refused(one, 0);
        assert_eq!((u.admit(one, 10), u.admit(one, 20)), (None, None));
        assert_eq!(u.admit(one, 30), Some(MINUTE_MS - 30), "a refused token counted too");
        assert_eq!(u.admit(two, 30), None, "another address has its own bound");
        assert_eq!(u.admit(one, MINUTE_MS + 1), None, "a minute later");
        for i in 0..10u8 {
            u.admit(IpAddr::from([10, 0, 0, i]), 2 * MINUTE_MS + i as u64);
        }
        assert!(u.by_address.lock().unwrap().len() <= 2, "the table stays within unauthenticated_tracked_max");
    }

    #[test]
    fn a_password_checks_against_its_hash_in_memory_used_again() {
        let phc = crate::http::auth::hash_password("correct horse").unwrap();
        let mut memory = Vec::new();
        assert!(verify_password("correct horse", &phc, &mut memory));
        let taken = memory.len();
        assert_eq!(taken, 19 * 1024, "19 MiB of 1 KiB blocks");
        assert!(!verify_password("correct horsE", &phc, &mut memory));
        assert_eq!(memory.len(), taken, "the same memory, not more");
        assert!(!verify_password("correct horse", "not a hash", &mut memory));
        let greedy = phc.replace("m=19456", "m=4000000");
        assert!(!verify_password("correct horse", &greedy, &mut memory), "a hash asking for 4 GB is refused");
        assert_eq!(memory.len(), taken);
    }

    #[test]
    fn failures_delay_the_next_attempt_progressively_and_never_lock_the_name_out() {
        let (l, t) = (limits(), Throttle::new(&limits()));
        let at = Some("127.0.0.9".parse().unwrap());
        let mut now = 1_000_000;
        for _ in 0..l.sign_in_failures_max {
            assert!(t.admit(&l, "duty", at, now).is_ok());
            t.failed(&l, "duty", now);
        }
        let refused = t.admit(&l, "duty", at, now).unwrap_err();
        assert_eq!(refused.retry_after_ms, 1_000);
        now += 1_000;
        assert!(t.admit(&l, "duty", at, now).is_ok(), "after the delay the name may try again");
        t.failed(&l, "duty", now);
        assert_eq!(t.admit(&l, "duty", at, now).unwrap_err().retry_after_ms, 2_000, "doubled");
        // However many failures, the delay stays within its bound.
        for _ in 0..40 {
            t.failed(&l, "duty", now);
        }
        assert_eq!(t.admit(&l, "duty", at, now).unwrap_err().retry_after_ms, l.sign_in_delay_ms_max);
        assert!(t.admit(&l, "duty", at, now + l.sign_in_delay_ms_max).is_ok());
        t.succeeded("duty");
        assert!(t.admit(&l, "duty", at, now + l.sign_in_delay_ms_max).is_ok());
    }

    #[test]
    fn attempts_are_bounded_per_address_and_in_all_and_the_tables_stay_small() {
        let (l, t) = (limits(), Throttle::new(&limits()));
        let one = Some("127.0.0.2".parse().unwrap());
        for i in 0..l.sign_in_per_address_per_minute_max {
            assert!(t.admit(&l, &format!("name-{i}"), one, 5_000).is_ok(), "fresh names from one address");
        }
        assert!(t.admit(&l, "another-name", one, 5_000).is_err(), "fresh names do not escape the address bound");
        assert!(t.admit(&l, "another-name", one, 5_000 + MINUTE_MS).is_ok(), "a minute later");
        // Many names and addresses: the tables keep at most sign_in_tracked_max entries.
        for i in 0..100u32 {
            let address = Some(IpAddr::from([10, 0, (i / 256) as u8, (i % 256) as u8]));
            let _ = t.admit(&l, &format!("n{i}"), address, 10 * MINUTE_MS + i as u64);
            t.failed(&l, &format!("n{i}"), 10 * MINUTE_MS + i as u64);
        }
        let (failures, addresses) = t.tracked();
        assert!(failures <= l.sign_in_tracked_max && addresses <= l.sign_in_tracked_max, "{failures} {addresses}");
        let overall = RuntimeLimits { sign_in_per_minute_max: 3, ..limits() };
        let t = Throttle::new(&overall);
        for i in 0..3u8 {
            assert!(t.admit(&overall, "x", Some(IpAddr::from([10, 1, 0, i])), 0).is_ok());
        }
        assert_eq!(t.admit(&overall, "x", Some("10.1.0.9".parse().unwrap()), 0).unwrap_err().code, "too_many_attempts");
    }
}
