//! The `adi` command's subcommands, a module for each command (or for a few that work on the same
//! thing), and what they share: printing a line that survives a closed pipe (`out!`), reading
//! fields of the node's JSON answers, times as people read them, logging, and waiting for a stop
//! signal.

/// Prints a line to stdout; a closed pipe (as with `adi inbox | head`) ends the command quietly
/// instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

pub mod alarms;
pub mod cpa;
pub mod decision;
pub mod demo;
pub mod drafts;
pub mod export;
pub mod init;
pub mod lines;
pub mod links;
pub mod messages;
pub mod operator;
pub mod send;
pub mod serve;
pub mod watch;

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// SIGINT and SIGTERM, listened for from the moment this is made, so that a signal that arrives
/// just after a prompt is not lost.
pub struct StopSignal {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignal {
    pub fn listen() -> anyhow::Result<StopSignal> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(StopSignal { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
    }

    pub async fn wait(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// Logs to standard error, at `default` unless `RUST_LOG` says otherwise.
pub fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// A JSON value's string field, or `""`.
pub fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A JSON array of strings, comma-separated.
pub fn join(v: Option<&Value>) -> String {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","))
        .unwrap_or_default()
}

/// Prints `v` as JSON for scripts, or for people with `human`.
pub fn print_out(as_json: bool, v: &Value, human: impl FnOnce(&Value)) {
    if as_json {
        out!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    } else {
        human(v);
    }
}

/// The system clock, in milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// How long ago a time in milliseconds was, in seconds: `12 s ago`, or `-` when there is none.
pub fn age(now: u64, at_ms: Option<&Value>) -> String {
    match at_ms.and_then(Value::as_u64) {
        Some(t) => format!("{} s ago", now.saturating_sub(t) / 1000),
        None => "-".into(),
    }
}

/// A time in milliseconds since the epoch, in UTC: `2024-05-01 12:34:56Z`.
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
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
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_dates_and_leap_days() {
        assert_eq!(utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00Z");
        assert_eq!(utc(1_700_000_000_999), "2023-11-14 22:13:20Z");
    }
}
