//! The `adi` command's subcommands, a module for each command (or for a few that work on the same
//! thing), and what they share: printing a line that survives a closed pipe (`out!`), reading
//! fields of the node's JSON answers with anything unprintable escaped (`s`, `text`,
//! `printable`), times as people read them, logging (as text or JSON), and waiting for a stop signal.

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

pub mod admit;
pub mod alarms;
pub mod amendment;
pub mod backup;
pub mod check_config;
pub mod cpa;
pub mod decision;
pub mod demo;
pub mod drafts;
pub mod export;
pub mod generate;
pub mod init;
pub mod lines;
pub mod links;
pub mod messages;
pub mod operator;
pub mod preview;
pub mod report;
pub mod roster;
pub mod send;
pub mod serve;
pub mod watch;

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// The release and the commit this binary was built from (`build.rs`), as `adi --version` and a
/// starting node's log say them.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("ADI_COMMIT"), ")");

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

/// How the command logs to standard error (`--log-format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One line of text an event, for people.
    Text,
    /// One JSON object a line, for log shippers: `timestamp`, `level`, `target` and `fields`
    /// (with its `message`).
    Json,
}

/// Logs to standard error in `format`, at `default` unless `RUST_LOG` says otherwise. Text is
/// coloured on a terminal only (and not with `NO_COLOR`): a journal or a file gets it plain.
pub fn init_logging(default: &str, format: LogFormat) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let _ = match format {
        LogFormat::Text => builder.with_ansi(colour).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// The error that ends a command, as the last line on standard error: `error: …`, or in `json`
/// a log event like the node's own, so that a log shipper reads why a node stopped.
pub fn print_error(format: LogFormat, message: &str) {
    match format {
        LogFormat::Text => eprintln!("error: {}", printable_lines(message)),
        LogFormat::Json => {
            let event = serde_json::json!({
                "timestamp": rfc3339(now_ms()),
                "level": "ERROR",
                "fields": {"message": message},
                "target": "adi",
            });
            eprintln!("{}", printable_json(&event.to_string()));
        }
    }
}

/// Text from the network or the store, safe to print on a terminal as one line: every character
/// that the core refuses in a field of one line (`adi_core::text`) is written as an escape, so
/// that a control character (a newline that would forge a line, an escape sequence that would
/// clear the screen), a bidirectional control that reorders what follows, or an invisible
/// character cannot steer what the officer sees. A node checks what it takes; this also covers
/// what a store held before the rule, a peer's refusal reasons and a bundle from anyone.
pub fn printable(text: &str) -> String {
    escape(text, adi_core::TextKind::Line)
}

/// Like [`printable`], for prose of several lines (a body, a decision's text, a report as text):
/// line feeds and tabs are kept, and so are the marks and joiners such texts may hold.
pub fn printable_lines(text: &str) -> String {
    escape(text, adi_core::TextKind::Lines)
}

fn escape(text: &str, kind: adi_core::TextKind) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if adi_core::text::refusal(c, kind).is_some() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// A JSON value's string field as one printable line, or `""`.
pub fn s(v: &Value, key: &str) -> String {
    printable(v.get(key).and_then(Value::as_str).unwrap_or(""))
}

/// A JSON value's string field as printable prose of several lines, or `""`.
pub fn text(v: &Value, key: &str) -> String {
    printable_lines(v.get(key).and_then(Value::as_str).unwrap_or(""))
}

/// A JSON array of strings, printable, joined by `sep`.
pub fn join_with(v: Option<&Value>, sep: &str) -> String {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(printable).collect::<Vec<_>>().join(sep))
        .unwrap_or_default()
}

/// A JSON array of strings, printable, comma-separated.
pub fn join(v: Option<&Value>) -> String {
    join_with(v, ",")
}

/// JSON text with every character the core refuses in a line written as a `\u` escape: JSON
/// escapes control characters itself, but not the bidirectional controls and invisible
/// characters, which it may carry as they are. The value is the same.
pub fn printable_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        // Outside its strings, JSON text holds only ASCII; a control character inside one is
        // already escaped: whatever is refused here stands inside a string.
        if !c.is_ascii() && adi_core::text::refusal(c, adi_core::TextKind::Line).is_some() {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Prints `v` as JSON for scripts, or for people with `human`.
pub fn print_out(as_json: bool, v: &Value, human: impl FnOnce(&Value)) {
    if as_json {
        out!("{}", printable_json(&serde_json::to_string_pretty(v).unwrap_or_default()));
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

pub use adi_node::clock::utc;

/// How often a command that waits on one long answer of the node says it still waits.
const STILL_WAITING_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs `work`, saying on standard error every [`STILL_WAITING_EVERY`] that it still waits for
/// `what` and for how long: a long export or report shows it is alive.
pub async fn showing_progress<T>(what: &str, work: impl std::future::Future<Output = T>) -> T {
    saying_progress(what, work, STILL_WAITING_EVERY, |line| eprintln!("{line}")).await
}

/// [`showing_progress`], every `every`, each line given to `say`.
async fn saying_progress<T>(
    what: &str,
    work: impl std::future::Future<Output = T>,
    every: std::time::Duration,
    mut say: impl FnMut(String),
) -> T {
    let started = std::time::Instant::now();
    let mut work = std::pin::pin!(work);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            done = &mut work => return done,
            _ = tick.tick() => say(format!("      still waiting for {what} ({} s)", started.elapsed().as_secs())),
        }
    }
}

/// A time in milliseconds since the epoch as RFC 3339 in UTC, as logs write it:
/// `2024-05-01T12:34:56.789Z`.
pub fn rfc3339(ms: u64) -> String {
    let (year, month, day, rem) = adi_node::clock::civil(ms / 1000);
    let (hours, minutes, seconds) = (rem / 3600, rem % 3600 / 60, rem % 60);
    format!("{year:04}-{month:02}-{day:02}T{hours:02}:{minutes:02}:{seconds:02}.{:03}Z", ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_long_wait_says_it_still_waits_and_a_short_one_says_nothing() {
        let mut said = Vec::new();
        let slow = tokio::time::sleep(std::time::Duration::from_millis(230));
        let v = saying_progress(
            "the bundle",
            async {
                slow.await;
                7
            },
            std::time::Duration::from_millis(50),
            |l| said.push(l),
        )
        .await;
        assert_eq!(v, 7);
        assert!(said.len() >= 3, "{said:?}");
        assert!(said[0].contains("still waiting for the bundle"), "{said:?}");
        let mut quiet = Vec::new();
        saying_progress("the report", async {}, std::time::Duration::from_millis(50), |l| quiet.push(l)).await;
        assert!(quiet.is_empty(), "{quiet:?}");
    }

    #[test]
    fn text_from_the_network_cannot_forge_a_line_clear_the_terminal_or_reverse_what_follows() {
        assert_eq!(printable("plain text, 中文, สวัสดี"), "plain text, 中文, สวัสดี");
        assert_eq!(printable("a\nb\r"), "a\\u{a}b\\u{d}");
        assert_eq!(printable("\u{1b}[2J"), "\\u{1b}[2J");
        assert_eq!(printable("x\u{202e}y\u{2067}\u{200f}"), "x\\u{202e}y\\u{2067}\\u{200f}");
        assert_eq!(printable("a\u{200b}b\u{e0041}"), "a\\u{200b}b\\u{e0041}");
        // Prose keeps its lines, tabs, marks and joiners, and nothing else.
        assert_eq!(printable_lines("one\n\ttwo\u{200f}\u{200b}"), "one\n\ttwo\u{200f}\u{200b}");
        assert_eq!(printable_lines("a\r\n\u{1b}[2J\u{202e}"), "a\\u{d}\n\\u{1b}[2J\\u{202e}");
        let v = serde_json::json!({"subject": "\u{1b}]0;owned\u{7}", "members": ["PH", "C\nN"]});
        assert_eq!(s(&v, "subject"), "\\u{1b}]0;owned\\u{7}");
        assert_eq!(join(v.get("members")), "PH,C\\u{a}N");
        let v = serde_json::json!({"t": "a\u{202e}b\u{1b}\u{e0041}\n中"});
        let json = printable_json(&v.to_string());
        assert_eq!(json, r#"{"t":"a\u202eb\u001b\udb40\udc41\n中"}"#);
        assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), v);
    }

    #[test]
    fn utc_formats_dates_and_leap_days() {
        assert_eq!(utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00Z");
        assert_eq!(utc(1_700_000_000_999), "2023-11-14 22:13:20Z");
        assert_eq!(rfc3339(1_700_000_000_999), "2023-11-14T22:13:20.999Z");
        assert_eq!(rfc3339(951_782_400_005), "2000-02-29T00:00:00.005Z");
    }
}
