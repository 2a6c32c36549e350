//! `adi export` and `adi verify` as an operator uses them, against real node processes: a line's
//! record is exported through the CLI, every node is stopped, and the bundle still verifies
//! offline; one changed hex digit is named; and every line of the full 18-member network of 2022
//! verifies the same way.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use adi_node::client::Client;
use hyper::Method;
use serde_json::{json, Value};
use support::{init, kill_9, serve, wait_healthy, Member, Proc};

/// How long any one wait (delivery, acknowledgement, a command) may take.
const WAIT: Duration = Duration::from_secs(60);

/// A finished `adi` command.
struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn success(&self) -> bool {
        self.code == Some(0)
    }

    #[track_caller]
    fn ok(self) -> Outcome {
        assert!(self.success(), "adi failed ({:?}):\nstdout:\n{}\nstderr:\n{}", self.code, self.stdout, self.stderr);
        self
    }

    #[track_caller]
    fn fails(self) -> Outcome {
        assert!(
            !self.success() && self.code.is_some(),
            "adi should exit non-zero ({:?}):\nstdout:\n{}\nstderr:\n{}",
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs the `adi` binary with `args`, as the operator of `member` when given (its `ADI_URL` and
/// `ADI_TOKEN`), and kills it if it takes longer than `WAIT`.
async fn adi(args: &[&str], member: Option<&Member>) -> Outcome {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_adi"));
    for var in ["ADI_URL", "ADI_TOKEN", "ADI_PIN", "RUST_LOG"] {
        cmd.env_remove(var);
    }
    if let Some(m) = member {
        cmd.env("ADI_URL", &m.url).env("ADI_TOKEN", &m.token);
    }
    cmd.args(args).env("NO_COLOR", "1").stdin(Stdio::null()).kill_on_drop(true);
    let out = tokio::time::timeout(WAIT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("adi {args:?} did not finish within {WAIT:?}"))
        .expect("cannot run adi");
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Real node processes of a demo network, their log shown only when the test fails.
struct Network {
    members: Vec<Member>,
    procs: Vec<Proc>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Network {
    /// Writes the network's configuration, starts every node at once, and waits for all of them.
    async fn start(codes: &str) -> Network {
        Network::start_with(codes, |_, _| {}).await
    }

    /// As [`Network::start`], each member's configuration changed by `edit` before its node starts.
    async fn start_with(codes: &str, edit: impl Fn(&str, &mut adi_node::config::ConfigFile)) -> Network {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("net");
        let members = init(&state, codes);
        for m in &members {
            let mut file: adi_node::config::ConfigFile =
                toml::from_str(&std::fs::read_to_string(&m.config).unwrap()).unwrap();
            edit(&m.code, &mut file);
            std::fs::write(&m.config, toml::to_string_pretty(&file).unwrap()).unwrap();
        }
        let log = dir.path().join("nodes.log");
        let procs = members.iter().map(|m| serve(&m.config, &log, "warn")).collect();
        let net = Network { members, procs, log, _dir: dir };
        for m in &net.members {
            wait_healthy(&m.url).await;
        }
        net
    }

    fn member(&self, code: &str) -> &Member {
        self.members.iter().find(|m| m.code == code).unwrap_or_else(|| panic!("no member {code}"))
    }

    fn client(&self, code: &str) -> Client {
        self.member(code).client()
    }

    /// The roster file `code`'s node runs with: the anchor a verifier takes from outside a bundle.
    fn roster(&self, code: &str) -> PathBuf {
        let config = PathBuf::from(&self.member(code).config);
        let file: adi_node::config::ConfigFile = toml::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
        config.parent().unwrap().join(file.roster)
    }

    /// A file in the test's directory.
    fn path(&self, name: &str) -> PathBuf {
        self._dir.path().join(name)
    }

    /// Stops every node with SIGKILL.
    fn kill_all(&mut self) {
        for p in self.procs.drain(..) {
            kill_9(p);
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("---- node log ({}) ----\n{log}---- end of node log ----", self.log.display());
        }
    }
}

async fn open_line(c: &Client, members: &[&str]) -> String {
    let v = c.call(Method::POST, "/api/v1/lines", Some(&json!({"members": members, "scope": "ADMM-Plus"}))).await;
    let v = v.unwrap_or_else(|e| panic!("opening a line of {members:?}: {e}"));
    v["id"].as_str().unwrap().to_string()
}

/// Sends a message and returns its id.
async fn send(c: &Client, line: &str, precedence: &str, subject: &str) -> String {
    let body = json!({"precedence": precedence, "subject": subject, "body": format!("body of {subject}")});
    let v = c.call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&body)).await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

/// Polls `f` until it returns `Some`, or fails after `WAIT`.
async fn eventually<T, F, Fut>(what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    support::eventually(WAIT, what, f).await
}

/// Waits until every recipient of a message is in `state`, at its sender's node; returns it.
async fn wait_state(c: &Client, id: &str, state: &str) -> Value {
    eventually(&format!("message {id} {state} to every recipient"), || async {
        let m = c.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.ok()?;
        let all = m["recipients"].as_array()?.iter().all(|r| r["state"] == state);
        all.then_some(m)
    })
    .await
}

/// Makes a checkpoint of a line and checks that every other member countersigned it.
async fn checkpoint(c: &Client, line: &str) -> Value {
    let v = c.call(Method::POST, &format!("/api/v1/lines/{line}/checkpoints"), None).await.unwrap();
    let exchanges = v["exchanges"].as_array().unwrap_or_else(|| panic!("no exchanges: {v}"));
    assert!(!exchanges.is_empty() && exchanges.iter().all(|x| x["countersigned"] == true), "{v}");
    v
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `adi` with owned arguments, as a verifier outside the network runs it.
async fn adi_owned(args: &[String]) -> Outcome {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    adi(&args, None).await
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Changes one hex digit in the middle of a hex string to another hex digit.
fn flip_hex_digit(hex: &str) -> String {
    let at = hex.len() / 2;
    let mut chars: Vec<char> = hex.chars().collect();
    assert!(chars[at].is_ascii_hexdigit(), "{hex}");
    chars[at] = if chars[at] == '0' { '1' } else { '0' };
    chars.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_and_verify_through_the_cli() {
    let started = Instant::now();
    let mut net = Network::start("PH,CN,VN").await;
    let (ph, cn) = (net.client("PH"), net.client("CN"));
    let line = open_line(&ph, &["PH", "CN", "VN"]).await;
    let mut ids = Vec::new();
    for (n, precedence) in ["IMMEDIATE", "ROUTINE", "PRIORITY"].iter().enumerate() {
        let id = send(&ph, &line, precedence, &format!("PH's message {n}")).await;
        wait_state(&ph, &id, "delivered").await;
        ids.push(id);
    }
    let (status, v) =
        cn.request(Method::POST, &format!("/api/v1/messages/{}/ack", ids[0]), Some(&json!({}))).await.unwrap();
    assert_eq!(status, 200, "{v}");
    // The acknowledgement has reached PH before PH signs its checkpoint.
    eventually("CN's acknowledgement at PH", || async {
        let m = ph.call(Method::GET, &format!("/api/v1/messages/{}", ids[0]), None).await.ok()?;
        m["recipients"].as_array()?.iter().any(|r| r["member"] == "CN" && r["state"] == "acknowledged").then_some(())
    })
    .await;
    checkpoint(&ph, &line).await;
    // The window starts at PH's last message: the line's set-up and the first messages are before it.
    let last = ph.call(Method::GET, &format!("/api/v1/messages/{}", ids[2]), None).await.unwrap();
    let from_ms = last["received_ms"].as_u64().unwrap();

    let whole = net.path("whole.json");
    let window = net.path("window.json");
    let ph_member = net.member("PH");
    let out = adi(&["export", "--line", &line, "--out", arg(&whole)], Some(ph_member)).await.ok();
    assert!(out.stdout.contains("wrote"), "{}", out.stdout);
    let from = from_ms.to_string();
    adi(&["export", "--line", &line, "--from", &from, "--out", arg(&window)], Some(ph_member)).await.ok();

    // Nothing runs any more: the bundles stand on their own, with the roster as the anchor.
    net.kill_all();
    let roster = net.roster("VN");
    let anchored =
        |file: &Path| vec!["verify".to_string(), arg(file).to_string(), "--roster".into(), arg(&roster).into()];

    let out = adi_owned(&anchored(&whole)).await.ok();
    assert!(out.stdout.contains("verified:"), "{}", out.stdout);
    assert!(out.stdout.contains("under the anchored roster"), "{}", out.stdout);
    assert!(!out.stdout.contains("FAIL"), "{}", out.stdout);
    assert!(out.stdout.lines().any(|l| l.starts_with("ok") && l.contains("countersignature by CN")), "{}", out.stdout);
    assert!(out.stdout.lines().any(|l| l.starts_with("ok") && l.contains("signed content")), "{}", out.stdout);
    assert!(out.stdout.contains("acknowledged receipt answers PH"), "{}", out.stdout);
    // The record as an auditor reads it: each message with its author, precedence and text, and
    // CN's acknowledgement of the first.
    assert!(out.stdout.contains("The record of line"), "{}", out.stdout);
    let first_seq = out
        .stdout
        .lines()
        .find(|l| l.contains("IMMEDIATE message") && l.contains("\"PH's message 0\" body of PH's message 0"))
        .and_then(|l| l.split(" PH #").nth(1)?.split_whitespace().next()?.parse::<u64>().ok());
    let first_seq = first_seq.unwrap_or_else(|| panic!("PH's first message is not in the record:\n{}", out.stdout));
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains(" CN #") && l.contains(&format!("acknowledged receipt of PH #{first_seq}"))),
        "{}",
        out.stdout
    );
    // The same as JSON, in the order of the log, for machines.
    let mut args = anchored(&whole);
    args.push("--json".into());
    let out = adi_owned(&args).await.ok();
    let doc: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    assert_eq!((doc["anchored"].as_bool(), doc["verified"].as_bool()), (Some(true), Some(true)), "{doc}");
    let record = doc["record"].as_array().unwrap();
    assert_eq!(record.len(), read_json(&whole)["envelopes"].as_array().unwrap().len());
    let indexes: Vec<u64> = record.iter().map(|e| e["index"].as_u64().unwrap()).collect();
    assert!(indexes.windows(2).all(|w| w[0] < w[1]), "{indexes:?}");
    let subjects: Vec<&str> =
        record.iter().filter(|e| e["kind"] == "message").map(|e| e["content"]["subject"].as_str().unwrap()).collect();
    assert_eq!(subjects, ["PH's message 0", "PH's message 1", "PH's message 2"]);
    assert_eq!(record[0]["kind"], "line_setup", "{}", record[0]);
    assert!(record[0]["content"]["welcome"].is_null(), "{}", record[0]);

    // One hex digit changed in the middle of one envelope: that envelope is named.
    let mut bundle = read_json(&whole);
    let envelopes = bundle["envelopes"].as_array_mut().unwrap();
    // The set-up, three messages, a delivered receipt of each from CN and VN, CN's acknowledgement.
    let least = 1 + 3 + 3 * 2 + 1;
    assert!(envelopes.len() >= least, "set-up, messages and receipts: {}", envelopes.len());
    let middle = envelopes.len() / 2;
    let target = &mut envelopes[middle];
    let index = target["index"].as_u64().unwrap();
    let changed = flip_hex_digit(target["bytes"].as_str().unwrap());
    target["bytes"] = Value::String(changed);
    let tampered = net.path("tampered.json");
    std::fs::write(&tampered, serde_json::to_string_pretty(&bundle).unwrap()).unwrap();
    let out = adi_owned(&anchored(&tampered)).await.fails();
    let named = format!("envelope at log index {index}");
    assert!(out.stdout.lines().any(|l| l.starts_with("FAIL") && l.contains(&named)), "{}", out.stdout);
    assert!(!out.stdout.contains("verified:"), "{}", out.stdout);
    assert!(out.stderr.contains(&format!("the first: {named}")), "{}", out.stderr);

    // Not a bundle at all.
    let junk = net.path("junk.json");
    std::fs::write(&junk, "this is not JSON\n").unwrap();
    let out = adi(&["verify", arg(&junk)], None).await.fails();
    assert!(out.stderr.contains("junk.json") && out.stderr.contains("not a bundle"), "{}", out.stderr);

    // The window: from PH's last message on, with the whole log to prove it in place.
    let bundle = read_json(&window);
    let from_index = bundle["from_index"].as_u64().unwrap();
    assert!(from_index > 0, "the window starts after the first entries: {from_index}");
    assert_eq!(bundle["log"], read_json(&whole)["log"]);
    let indexes: Vec<u64> =
        bundle["envelopes"].as_array().unwrap().iter().map(|e| e["index"].as_u64().unwrap()).collect();
    assert!(!indexes.is_empty() && indexes.iter().all(|i| *i >= from_index), "{indexes:?}");
    let out = adi_owned(&anchored(&window)).await.ok();
    assert!(out.stdout.contains("verified:"), "{}", out.stdout);

    // The anchor as the roster's published SHA-256 instead of its file.
    let sha = hex::encode(adi_node::config::load_roster(&roster).unwrap().sha256());
    let out = adi(&["verify", arg(&whole), "--roster-sha256", &sha], None).await.ok();
    assert!(out.stdout.contains("under the anchored roster"), "{}", out.stdout);
    let out = adi(&["verify", arg(&whole), "--roster-sha256", &"ab".repeat(32)], None).await.fails();
    assert!(out.stdout.lines().any(|l| l.starts_with("FAIL  anchor: the roster")), "{}", out.stdout);
    // Without an anchor the command says what it showed, and fails unless told that is meant.
    let out = adi(&["verify", arg(&whole)], None).await.fails();
    assert!(out.stderr.contains("NOT ANCHORED") && out.stderr.contains("--roster"), "{}", out.stderr);
    let out = adi(&["verify", arg(&whole), "--unanchored"], None).await.ok();
    assert!(out.stdout.contains("NOT ANCHORED") && !out.stdout.contains("verified:"), "{}", out.stdout);
    eprintln!("export_and_verify_through_the_cli took {:?}", started.elapsed());
}

/// The member codes of the 2022 roster, from the shipped data.
fn members_2022() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/members.json");
    let data = read_json(&path);
    let codes: Vec<String> =
        data["roster_2022"].as_array().unwrap().iter().map(|m| m["code"].as_str().unwrap().to_string()).collect();
    assert_eq!(codes.len(), 18, "{codes:?}");
    codes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_from_the_18_member_demo_network_verifies_offline_after_the_nodes_are_stopped() {
    let started = Instant::now();
    let codes = members_2022();
    let mut net = Network::start(&codes.join(",")).await;
    let up = started.elapsed();
    let ph = net.client("PH");
    // PH opens a direct line to every other member, sends a FLASH on it and checkpoints it.
    let mut tasks = Vec::new();
    for other in codes.iter().filter(|c| *c != "PH").cloned() {
        let ph = ph.clone();
        tasks.push(tokio::spawn(async move {
            let line = open_line(&ph, &["PH", &other]).await;
            let id = send(&ph, &line, "FLASH", &format!("FLASH to {other}")).await;
            wait_state(&ph, &id, "delivered").await;
            checkpoint(&ph, &line).await;
            (other, line)
        }));
    }
    let mut lines = Vec::new();
    for t in tasks {
        lines.push(t.await.unwrap());
    }
    assert_eq!(lines.len(), 17);
    let traffic = started.elapsed();
    let mut files = Vec::new();
    for (other, line) in &lines {
        let file = net.path(&format!("PH-{other}.json"));
        adi(&["export", "--line", line, "--out", arg(&file)], Some(net.member("PH"))).await.ok();
        files.push((other.clone(), file));
    }
    let exported = started.elapsed();
    let roster = net.roster("SG");
    net.kill_all();

    for (other, file) in &files {
        let out = adi(&["verify", arg(file), "--roster", arg(&roster)], None).await.ok();
        assert!(out.stdout.contains("verified:"), "{other}: {}", out.stdout);
        let countersigned = format!("countersignature by {other}");
        assert!(out.stdout.lines().any(|l| l.starts_with("ok") && l.contains(&countersigned)), "{}", out.stdout);
    }
    eprintln!(
        "18 members: up in {up:?}, 17 lines with traffic and checkpoints by {traffic:?}, exported by {exported:?}, \
         verified by {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_bundle_in_the_docs_verifies() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/example-bundle.json");
    let out = adi(&["verify", arg(&path), "--unanchored"], None).await.ok();
    assert!(out.stdout.contains("NOT ANCHORED"), "{}", out.stdout);
    assert!(!out.stdout.contains("FAIL"), "{}", out.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_through_the_cli() {
    let net = Network::start("PH,CN").await;
    let line = open_line(&net.client("PH"), &["PH", "CN"]).await;
    let (ph, cn) = (net.member("PH"), net.member("CN"));
    let text = "Hold all exercises in the area for 48 hours.";
    let out = adi(&["decision", "propose", "--line", &line, "--text", text, "--json"], Some(ph)).await.ok();
    let proposed: Value = serde_json::from_str(&out.stdout).unwrap();
    let id = proposed["id"].as_str().unwrap().to_string();
    assert_eq!((proposed["state"].as_str(), &proposed["missing"]), (Some("open"), &json!(["CN"])));
    // Once CN's node holds it, CN's operator concurs; the decision is final at both nodes.
    eventually("the decision at CN", || async {
        net.client("CN").call(Method::GET, &format!("/api/v1/decisions/{id}"), None).await.ok()
    })
    .await;
    let out = adi(&["decision", "decline", &id, "--reason", ""], Some(cn)).await.fails();
    assert!(out.stderr.contains("reason"), "{}", out.stderr);
    adi(&["decision", "concur", &id], Some(cn)).await.ok();
    eventually("the decision final at PH", || async {
        let out = adi(&["decision", "show", &id], Some(ph)).await;
        (out.success() && out.stdout.contains("state:    final")).then_some(())
    })
    .await;
    let shown = adi(&["decision", "show", &id], Some(cn)).await.ok();
    assert!(shown.stdout.contains(text) && shown.stdout.contains("CN   concurred"), "{}", shown.stdout);
}

/// `adi report` as an operator runs it against a real node process: the page and the JSON are
/// written where it is told, with the window given as days; a day that is not one and a window
/// the node refuses are said plainly and write nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adi_report_writes_the_operations_report_and_says_what_is_wrong() {
    let net = Network::start("PH,CN").await;
    let line = open_line(&net.client("PH"), &["PH", "CN"]).await;
    send(&net.client("PH"), &line, "FLASH", "for the report").await;
    let ph = net.member("PH");
    let page = net.path("report.html");
    let today = adi_node::clock::utc(adi_node::clock::wall_ms())[..10].to_string();
    let out = adi(&["report", "--from", "2026-01-01", "--out", page.to_str().unwrap()], Some(ph)).await.ok();
    assert!(out.stdout.starts_with(&format!("wrote {}", page.display())), "{}", out.stdout);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.starts_with("<!doctype html>") && html.contains("ADI operations report: PH from 2026-01-01"),
        "{html}"
    );
    assert!(html.contains("<th scope=\"col\">CN</th>") && html.contains("<svg"), "{html}");
    let data = net.path("report.json");
    adi(&["report", "--json", "--out", data.to_str().unwrap()], Some(ph)).await.ok();
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&data).unwrap()).unwrap();
    assert_eq!(v["member"], "PH");
    let flash = v["answers"].as_array().unwrap().iter().find(|s| s["precedence"] == "FLASH" && s["member"] == "");
    assert_eq!(flash.map(|s| s["asked"].clone()), Some(json!(1)), "{v}");
    // Bad input: nothing written, the reason said.
    let none = net.path("none.html");
    let out = adi(&["report", "--from", "2026-02-30", "--out", none.to_str().unwrap()], Some(ph)).await.fails();
    assert!(out.stderr.contains("not a day of the calendar"), "{}", out.stderr);
    let out = adi(&["report", "--from", &today, "--to", "2026-01-01", "--out", none.to_str().unwrap()], Some(ph))
        .await
        .fails();
    assert!(
        out.stderr.contains("the node refused the report") && out.stderr.contains("is not before"),
        "{}",
        out.stderr
    );
    assert!(!none.exists());
}

/// `adi export --archive` as an administrator runs it: the bundle is written, read back and
/// confirmed archived, after which the node's retention prunes the TEST message it holds; a duty
/// officer's confirmation is refused with the reason; and `adi verify` of a later export, with
/// every node stopped, verifies and says what was pruned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archived_export_lets_retention_prune_and_verify_says_what_was_pruned() {
    let mut net = Network::start_with("PH,CN", |code, file| {
        if code == "PH" {
            file.retention.test_keep_s = Some(1);
            file.limits.retention_interval_ms = Some(100);
        }
    })
    .await;
    let ph = net.client("PH");
    let line = open_line(&ph, &["PH", "CN"]).await;
    let body = json!({"precedence": "ROUTINE", "class": "TEST", "subject": "radio check", "body": "one two"});
    let sent = ph.call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&body)).await.unwrap();
    let test = sent["id"].as_str().unwrap().to_string();
    wait_state(&ph, &test, "delivered").await;
    let kept = send(&ph, &line, "IMMEDIATE", "an order to keep").await;
    wait_state(&ph, &kept, "delivered").await;
    let duty = net.member("PH");
    let config = duty.config.clone();
    let added =
        adi(&["operator", "add", "--name", "admin-ph", "--role", "admin", "--config", &config], None).await.ok();
    let admin = Member { token: added.stdout.trim().to_string(), ..duty.clone() };

    let archive = net.path("archive.json");
    let out = adi(&["export", "--line", &line, "--out", arg(&archive), "--archive"], Some(duty)).await.fails();
    assert!(out.stderr.contains("only administrators confirm archives"), "{}", out.stderr);
    assert!(ph.call(Method::GET, &format!("/api/v1/messages/{test}"), None).await.unwrap()["pruned_ms"].is_null());
    let out = adi(&["export", "--line", &line, "--out", arg(&archive), "--archive"], Some(&admin)).await.ok();
    assert!(out.stdout.contains("archived: the node holds"), "{}", out.stdout);
    let written = std::fs::read(&archive).unwrap();
    let sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&written));
    assert!(out.stdout.contains(&sha256), "the confirmation does not name the file's SHA-256 {sha256}: {}", out.stdout);
    eventually("the archived TEST message pruned at PH", || async {
        let m = ph.call(Method::GET, &format!("/api/v1/messages/{test}"), None).await.ok()?;
        m["pruned_ms"].is_u64().then_some(())
    })
    .await;
    let shown = adi(&["show", &test], Some(duty)).await.ok();
    assert!(shown.stdout.contains("pruned:") && !shown.stdout.contains("radio check"), "{}", shown.stdout);
    let later = net.path("later.json");
    adi(&["export", "--line", &line, "--out", arg(&later)], Some(duty)).await.ok();
    net.kill_all();

    let roster = net.roster("CN");
    let verified = adi(&["verify", arg(&later), "--roster", arg(&roster)], None).await.ok();
    assert!(verified.stdout.contains("verified:"), "{}", verified.stdout);
    assert!(verified.stdout.contains("pruned: the content of 1 message(s)"), "{}", verified.stdout);
    assert!(verified.stdout.contains("content the exporter's retention pruned"), "{}", verified.stdout);
    assert!(verified.stdout.contains("\"an order to keep\""), "{}", verified.stdout);
    assert!(!verified.stdout.contains("radio check"), "{}", verified.stdout);
    // The archive holds what was pruned, and verifies too.
    let archived = adi(&["verify", arg(&archive), "--roster", arg(&roster)], None).await.ok();
    assert!(archived.stdout.contains("\"radio check\" one two"), "{}", archived.stdout);
}
