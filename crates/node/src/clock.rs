//! The runtime's clock: the wall clock read once at start and advanced by monotonic time since,
//! never earlier than the latest time the store recorded. Every part of the node reads the time
//! here; the core is handed it as an input. Also how a time is written for people: `utc`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The wall clock at this process's first reading of the time, and the monotonic instant of that
/// reading.
struct Anchor {
    wall_ms: u64,
    at: std::time::Instant,
}

static ANCHOR: std::sync::OnceLock<Anchor> = std::sync::OnceLock::new();

/// How far the runtime's clock was moved forward at start, so as not to read earlier than what
/// the store recorded ([`keep_time_from`]).
static AHEAD_MS: AtomicU64 = AtomicU64::new(0);

/// The system's wall clock, in milliseconds since the Unix epoch. It may step (an operator or a
/// time service setting it), so the runtime keeps time by [`now_ms`] and only compares the two.
pub fn wall_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Milliseconds since the Unix epoch, the runtime's clock, handed to the core as an input: the
/// wall clock as it read when the process first asked, advanced by monotonic time since. A step
/// of the wall clock while the node runs neither stalls its timers nor fires them early; the
/// node raises a `clock` alarm instead (`driver::run_clock_watch`) and follows the wall clock again
/// when it next starts.
pub fn now_ms() -> u64 {
    let anchor = ANCHOR.get_or_init(|| Anchor { wall_ms: wall_ms(), at: std::time::Instant::now() });
    anchor
        .wall_ms
        .saturating_add(anchor.at.elapsed().as_millis() as u64)
        .saturating_add(AHEAD_MS.load(Ordering::SeqCst))
}

/// Keeps the runtime's clock from reading earlier than `latest_ms`, the latest time the store
/// recorded: a system clock set back while the node was down would otherwise hold its stored
/// deadlines and timers back by as much. (One set forward is found by the peers' link tests.)
pub fn keep_time_from(latest_ms: u64) {
    let now = now_ms();
    if latest_ms > now {
        AHEAD_MS.fetch_add(latest_ms - now, Ordering::SeqCst);
        tracing::warn!(
            behind_ms = latest_ms - now,
            "the system clock reads earlier than the latest time this node stored; the node keeps time from there"
        );
    }
}

/// A time in milliseconds since the epoch, in UTC: `2024-05-01 12:34:56Z`.
pub fn utc(ms: u64) -> String {
    let (year, month, day, rem) = civil(ms / 1000);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Seconds since the epoch as a civil date (year, month, day) and the seconds into that day.
pub fn civil(secs: u64) -> (i64, i64, i64, u64) {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Days to a civil date (proleptic Gregorian), after Howard Hinnant's `civil_from_days`.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, rem)
}
