//! Logs for log shippers: nodes run with `--log-format json` (and `ADI_LOG_FORMAT=json`) at the
//! most verbose level write every line of their standard error as one JSON object with a level
//! and a message, and no line of them holds what operators wrote: messages' subjects, bodies and
//! caveats, a line's title, a decline's reason, a decision's text, the words of a search, or the
//! text of a send the node refused.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use adi_node::client::Client;
use hyper::Method;
use serde_json::{json, Value};
use support::{eventually, wait_for_line, wait_healthy, Member, Proc};

/// How long a message, a receipt or a decision may take to reach the other node.
const ARRIVAL_WITHIN: Duration = Duration::from_secs(60);

/// What operators write, each marked so that a leak names the field it came from; none of it may
/// reach a log.
const MARKERS: [&str; 9] = [
    "LOGMARK-SUBJECT-q7w3",
    "LOGMARK-BODY-z8k2",
    "LOGMARK-CAVEAT-m4p9",
    "LOGMARK-TITLE-r2d6",
    "LOGMARK-DECLINE-v5n1",
    "LOGMARK-DECISION-h3j8",
    "LOGMARK-DECISION-DECLINE-c6t4",
    "LOGMARK-SEARCH-x1y5",
    "LOGMARK-REFUSED-b9g7",
];

/// The levels a log event may carry.
const LEVELS: [&str; 5] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"];

/// A node's process, its standard output and its standard error.
struct Node {
    code: String,
    proc: Option<Proc>,
    stdout: PathBuf,
    stderr: PathBuf,
}

/// Nodes whose logs are printed when the test fails.
struct Nodes(Vec<Node>);

impl Nodes {
    /// Stops every node (SIGKILL: what it logged is on disk already, a line at a time).
    fn stop(&mut self) {
        self.0.iter_mut().for_each(|n| drop(n.proc.take()));
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for n in &self.0 {
                let log = fs::read_to_string(&n.stderr).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(200).collect();
                eprintln!("----- {} node log, last lines -----", n.code);
                tail.iter().rev().for_each(|l| eprintln!("{l}"));
            }
        }
    }
}

/// Starts `adi serve` for `member` at RUST_LOG=trace with `args` and `env`, its output in `dir`.
fn start(member: &Member, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Node {
    let stdout = dir.join(format!("{}.out", member.code));
    let stderr = dir.join(format!("{}.log", member.code));
    let child = Command::new(env!("CARGO_BIN_EXE_adi"))
        .args(args)
        .args(["serve", "--config", &member.config])
        .env_remove("ADI_LOG_FORMAT")
        .envs(env.iter().copied())
        .env("RUST_LOG", "trace")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout).unwrap())
        .stderr(fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    Node { code: member.code.clone(), proc: Some(Proc::from_child(child)), stdout, stderr }
}

/// A JSON value read only to check that no object in it names a key twice (a parser that keeps
/// the last one would lose a log line's text).
struct UniqueKeys;

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<UniqueKeys, D::Error> {
        d.deserialize_any(UniqueKeysVisitor)
    }
}

struct UniqueKeysVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueKeysVisitor {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom(format!("the key {key} twice")));
            }
            map.next_value::<UniqueKeys>()?;
        }
        Ok(UniqueKeys)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueKeys, A::Error> {
        while seq.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys)
    }

    fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
    fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys)
    }
}

/// Checks that every line of a log is a JSON object with a level and a message, naming no key
/// twice; the levels seen.
#[track_caller]
fn check_json_lines(what: &str, log: &str) -> Vec<String> {
    assert!(!log.trim().is_empty(), "{what}: nothing was logged");
    let mut levels = Vec::new();
    for (n, line) in log.lines().enumerate() {
        let event: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{what}: line {} is not JSON ({e}): {line}", n + 1));
        let level = event["level"].as_str().unwrap_or_else(|| panic!("{what}: line {} has no level: {line}", n + 1));
        assert!(LEVELS.contains(&level), "{what}: line {} has the level {level}: {line}", n + 1);
        assert!(event["fields"]["message"].is_string(), "{what}: line {} has no message: {line}", n + 1);
        let unique: Result<UniqueKeys, _> = serde_json::from_str(line);
        assert!(unique.is_ok(), "{what}: line {} names a key twice ({:?}): {line}", n + 1, unique.err());
        levels.push(level.to_string());
    }
    levels
}

/// Checks that no marker, as written or in hex, is in `text`.
#[track_caller]
fn check_no_marker(what: &str, text: &str) {
    let lower = text.to_ascii_lowercase();
    for marker in MARKERS {
        let hex: String = marker.bytes().map(|b| format!("{b:02x}")).collect();
        let at = text.find(marker).or_else(|| lower.find(&hex));
        if let Some(at) = at {
            let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
            panic!("{what} holds {marker}, which an operator wrote:\n{}", &text[start..end]);
        }
    }
}

async fn post(c: &Client, path: &str, body: Value) -> Value {
    c.call(Method::POST, path, Some(&body)).await.unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_at_trace_hold_one_object_a_line_and_nothing_operators_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let members = support::init(&dir.path().join("net"), "PH,CN");
    let (ph_member, cn_member) = (&members[0], &members[1]);
    // One node given the option on the command line, the other by the environment.
    let mut nodes = Nodes(vec![
        start(ph_member, dir.path(), &["--log-format", "json"], &[]),
        start(cn_member, dir.path(), &[], &[("ADI_LOG_FORMAT", "json")]),
    ]);
    wait_healthy(&ph_member.url).await;
    wait_healthy(&cn_member.url).await;
    let (ph, cn) = (ph_member.client(), cn_member.client());

    // A line with a title, and a message with a subject, a body and a caveat.
    let line = post(&ph, "/api/v1/lines", json!({"members": ["PH", "CN"], "scope": "ADMM-Plus", "title": MARKERS[3]}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for_line(&cn, &line).await;
    let messages = format!("/api/v1/lines/{line}/messages");
    let sent = json!({"precedence": "IMMEDIATE", "class": "OPERATIONAL", "subject": MARKERS[0],
        "body": format!("{} and more", MARKERS[1]), "caveat": MARKERS[2]});
    let id = post(&ph, &messages, sent).await["id"].as_str().unwrap().to_string();
    // A send the node refuses, its text among the refused fields.
    let refused = json!({"precedence": MARKERS[8], "subject": MARKERS[8], "body": MARKERS[8]});
    let (status, _) = ph.request(Method::POST, &messages, Some(&refused)).await.unwrap();
    assert_eq!(status, 400, "a send of an unknown precedence is refused");

    // The recipient reads it, searches for it and declines it with a reason.
    let message = format!("/api/v1/messages/{id}");
    eventually(ARRIVAL_WITHIN, "the message at CN", || async { cn.call(Method::GET, &message, None).await.ok() }).await;
    let search = format!("/api/v1/search?q={}", MARKERS[7]);
    cn.call(Method::GET, &search, None).await.unwrap();
    post(&cn, &format!("{message}/decline"), json!({"reason": MARKERS[4]})).await;
    eventually(ARRIVAL_WITHIN, "the decline at PH", || async {
        let v = ph.call(Method::GET, &message, None).await.ok()?;
        let declined = v["recipients"].as_array()?.iter().any(|r| r["state"] == "declined");
        declined.then_some(())
    })
    .await;

    // A decision, declined by the other party with a reason.
    let decision = post(&ph, &format!("/api/v1/lines/{line}/decisions"), json!({"text": MARKERS[5]})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let decision = format!("/api/v1/decisions/{decision}");
    eventually(ARRIVAL_WITHIN, "the decision at CN", || async { cn.call(Method::GET, &decision, None).await.ok() })
        .await;
    post(&cn, &format!("{decision}/decline"), json!({"reason": MARKERS[6]})).await;
    eventually(ARRIVAL_WITHIN, "the decision's answer at PH", || async {
        let v = ph.call(Method::GET, &decision, None).await.ok()?;
        (v["state"] == "declined").then_some(())
    })
    .await;

    // Everything the nodes wrote, once they have stopped.
    nodes.stop();
    let outputs: Vec<(String, String, String)> = nodes
        .0
        .iter()
        .map(|n| (n.code.clone(), fs::read_to_string(&n.stdout).unwrap(), fs::read_to_string(&n.stderr).unwrap()))
        .collect();
    for (code, stdout, stderr) in &outputs {
        let levels = check_json_lines(&format!("{code}'s log"), stderr);
        // The log was written at the most verbose level: the markers were looked for in all of it.
        assert!(
            levels.iter().any(|l| l == "TRACE" || l == "DEBUG"),
            "{code}'s log holds no TRACE or DEBUG line: RUST_LOG=trace was not honoured"
        );
        assert!(levels.iter().any(|l| l == "INFO"), "{code}'s log holds no INFO line");
        check_no_marker(&format!("{code}'s log"), stderr);
        check_no_marker(&format!("{code}'s standard output"), stdout);
    }
}

#[test]
fn a_node_that_cannot_start_says_why_in_one_json_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_adi"))
        .args(["serve", "--log-format", "json", "--config"])
        .arg(&missing)
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "a node without its configuration started");
    let stderr = String::from_utf8(out.stderr).unwrap();
    check_json_lines("the log of a node that cannot start", &stderr);
    let last: Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "ERROR");
    let message = last["fields"]["message"].as_str().unwrap();
    assert!(message.contains("missing.toml") && message.contains("cannot read"), "{message}");
}

#[test]
fn text_logs_stay_the_default_and_an_unknown_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_adi"))
            .args(args)
            .arg(&missing)
            .env_remove("ADI_LOG_FORMAT")
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    // A line of text an event, plain where standard error is no terminal, then the error.
    let out = run(&["serve", "--config"]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines[0].contains(" INFO adi::cmd::serve: adi serve starting version="), "{stderr}");
    assert!(serde_json::from_str::<Value>(lines[0]).is_err(), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "colour codes in a log that is no terminal:\n{stderr}");
    let last = lines.last().unwrap();
    assert!(last.starts_with("error: ") && last.contains("missing.toml"), "{stderr}");
    let out = run(&["--log-format", "xml", "serve", "--config"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("xml") && stderr.contains("json"), "{stderr}");
}
