//! `adi watch`: the node's event stream, printed as it arrives and followed across reconnections;
//! also the parser of the stream's lines that the bench reads arrivals with.

use std::time::Duration;

use adi_node::client::ApiFailure;
use serde_json::Value;

use super::{printable, printable_json, s, utc};
use crate::ClientArgs;

/// How many times in a row `adi watch` reconnects a dropped event stream before it gives up.
const WATCH_RETRIES: u32 = 5;
/// How long `adi watch` waits before reconnecting, times the attempt's number.
const WATCH_RETRY_DELAY_MS: u64 = 1_000;

/// One event of the stream as its fields arrive: `id:`, `event:` and `data:` lines up to a blank
/// line.
#[derive(Default)]
pub struct SseEvent {
    pub id: Option<u64>,
    pub kind: String,
    pub data: Vec<String>,
}

impl SseEvent {
    /// Takes one line of the stream; returns the event a blank line completes.
    pub fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let event = std::mem::take(self);
            return (!event.data.is_empty()).then_some(event);
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "id" => self.id = value.trim().parse().ok(),
            "event" => self.kind = value.to_string(),
            "data" => self.data.push(value.to_string()),
            _ => {}
        }
        None
    }
}

/// Prints one event: as JSON, or as a line with its time, kind, member, state and detail.
fn print_event(as_json: bool, e: &SseEvent) {
    let data = e.data.join("\n");
    let v: Value = match serde_json::from_str(&data) {
        Ok(v) => v,
        Err(_) => {
            out!("{}", printable(&data));
            return;
        }
    };
    if as_json {
        out!("{}", printable_json(&serde_json::to_string(&v).unwrap_or(data)));
    } else {
        let kind = if e.kind.is_empty() { s(&v, "kind") } else { printable(&e.kind) };
        let mut detail = s(&v, "detail");
        if v.get("message").is_some_and(Value::is_string) {
            detail = format!("{detail}  message {}", s(&v, "message"));
        }
        if let Some(a) = v.get("alarm").and_then(Value::as_u64) {
            detail = format!("{detail}  alarm {a}");
        }
        out!(
            "{}  {:<7}  {:<4}  {:<16}  {}",
            utc(v.get("at_ms").and_then(Value::as_u64).unwrap_or(0)),
            kind,
            s(&v, "member"),
            s(&v, "state"),
            detail.trim_start()
        );
    }
    use std::io::Write as _;
    if let Err(e) = std::io::stdout().flush() {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

/// Prints the event stream as it arrives; reconnects a dropped stream from the last event printed.
pub async fn watch(args: &ClientArgs, after: Option<u64>, count: Option<u64>) -> anyhow::Result<()> {
    let client = args.client()?;
    let mut last_id = after;
    let mut printed = 0u64;
    let mut failures = 0u32;
    let mut connected_before = false;
    loop {
        let resume = last_id.map(|id| id.to_string());
        let mut headers = vec![("Accept", "text/event-stream")];
        headers.extend(resume.iter().map(|id| ("Last-Event-ID", id.as_str())));
        let dropped = match client.stream_lines("/api/v1/events", &headers).await {
            Err(e) if e.downcast_ref::<ApiFailure>().is_some_and(|f| f.status.is_client_error()) => return Err(e),
            Err(e) => format!("{e:#}"),
            Ok(mut stream) => {
                let from = match last_id {
                    Some(id) => format!("after event {id}"),
                    None => "from now".to_string(),
                };
                if connected_before {
                    eprintln!("note: reconnected to {}; events {from}", args.url);
                } else {
                    eprintln!("watching the events of {} {from}", args.url);
                }
                connected_before = true;
                let mut event = SseEvent::default();
                loop {
                    match stream.next_line().await {
                        Ok(Some(line)) => {
                            // The connection carries data: a later drop starts a fresh count.
                            failures = 0;
                            let Some(e) = event.line(&line) else { continue };
                            print_event(args.json, &e);
                            if e.kind != "gap" {
                                last_id = e.id.or(last_id);
                            }
                            printed += 1;
                            if count.is_some_and(|c| printed >= c) {
                                return Ok(());
                            }
                        }
                        Ok(None) => break "the node ended the stream".to_string(),
                        Err(e) => break format!("{e:#}"),
                    }
                }
            }
        };
        failures += 1;
        if failures > WATCH_RETRIES {
            anyhow::bail!("the event stream dropped and {WATCH_RETRIES} reconnections failed: {dropped}");
        }
        let delay = WATCH_RETRY_DELAY_MS * u64::from(failures);
        let resume = last_id.map(|id| format!(" after event {id}")).unwrap_or_default();
        eprintln!(
            "note: the event stream dropped ({dropped}); reconnecting{resume} in {} s (attempt {failures} of {WATCH_RETRIES})",
            delay / 1000
        );
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_lines_make_events() {
        let mut e = SseEvent::default();
        let mut events = Vec::new();
        for line in [": keep-alive", "", "id: 7", "event: message", "data: {\"kind\":\"message\"}", "", "data:x", ""] {
            events.extend(e.line(line));
        }
        assert_eq!(events.len(), 2);
        assert_eq!((events[0].id, events[0].kind.as_str()), (Some(7), "message"));
        assert_eq!(events[0].data, ["{\"kind\":\"message\"}"]);
        assert_eq!(
            (events[1].id, events[1].kind.as_str(), events[1].data.as_slice()),
            (None, "", &["x".to_string()][..])
        );
    }
}
