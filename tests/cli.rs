//! The `adi` command as an operator uses it: set-up files and their modes, refusals that name the
//! file and the field, and a two-member network run as real node processes.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// How long a short command (init, roster, a client call) may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The `adi` binary with a clean environment for its own variables.
fn adi() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_adi"));
    for var in ["ADI_URL", "ADI_TOKEN", "ADI_PIN", "RUST_LOG", "ADI_LOG_FORMAT"] {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// A finished command's exit status and output.
struct Outcome {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn both(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    #[track_caller]
    fn ok(self) -> Outcome {
        assert!(
            self.status.success(),
            "command failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    fn fails(self) -> Outcome {
        assert!(
            !self.status.success(),
            "command succeeded but should fail:\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// A child process that is killed when the guard is dropped, also when a test fails.
struct ChildGuard(Child);

impl ChildGuard {
    fn spawn(cmd: &mut Command) -> ChildGuard {
        ChildGuard(cmd.spawn().expect("cannot start adi"))
    }

    fn id(&self) -> u32 {
        self.0.id()
    }

    /// Waits for the process to exit, at most `limit`; `None` if it still runs.
    fn wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().expect("cannot wait for adi") {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

fn read_pipe(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs a command to its end, killing it if it takes longer than `limit`.
#[track_caller]
fn run_within(cmd: &mut Command, limit: Duration) -> Outcome {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = ChildGuard::spawn(cmd);
    let out = read_pipe(child.0.stdout.take());
    let err = read_pipe(child.0.stderr.take());
    let status = child.wait_for(limit);
    drop(child);
    let stdout = out.join().expect("stdout reader");
    let stderr = err.join().expect("stderr reader");
    let status = status.unwrap_or_else(|| panic!("command did not finish within {limit:?}:\n{stdout}\n{stderr}"));
    Outcome { status, stdout, stderr }
}

#[track_caller]
fn run(cmd: &mut Command) -> Outcome {
    run_within(cmd, COMMAND_TIMEOUT)
}

fn init(dir: &Path, member: &str, extra: &[&str]) -> Outcome {
    run(adi().args(["init", "--member", member, "--dir"]).arg(dir).args(extra))
}

/// A port P such that P..=P+4 on 127.0.0.1 are all free now, never handed out twice in this
/// process and outside the ephemeral range.
fn free_base_port() -> u16 {
    adi_node::setup::free_port_run(5).expect("free loopback ports")
}

/// One member of `demo.json`.
struct DemoMember {
    code: String,
    api_url: String,
    token: String,
    config: PathBuf,
}

fn read_demo(state: &Path) -> Vec<DemoMember> {
    let text = fs::read_to_string(state.join("demo.json")).expect("demo.json");
    let v: Value = serde_json::from_str(&text).expect("demo.json is JSON");
    v["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| DemoMember {
            code: m["code"].as_str().unwrap().to_string(),
            api_url: m["api_url"].as_str().unwrap().to_string(),
            token: m["token"].as_str().unwrap().to_string(),
            config: PathBuf::from(m["config"].as_str().unwrap()),
        })
        .collect()
}

/// A client command against a node, its URL and token passed in the environment.
fn client(url: &str, token: &str, args: &[&str]) -> Outcome {
    run(adi().env("ADI_URL", url).env("ADI_TOKEN", token).args(args))
}

/// The base64 body of a PEM file, and its lines.
fn pem_secrets(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap();
    assert!(text.contains("PRIVATE KEY"), "{} is not a private key PEM", path.display());
    let lines: Vec<String> =
        text.lines().filter(|l| !l.starts_with("-----") && !l.trim().is_empty()).map(str::to_string).collect();
    assert!(!lines.is_empty());
    let mut secrets = lines.clone();
    secrets.push(lines.concat());
    secrets
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn init_writes_private_keys_0600_and_never_prints_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ph");
    let out = init(&dir, "PH", &[]).ok();

    for f in ["config.toml", "card.json", "roster.toml", "keys/signing.pem", "keys/node.crt", "keys/node.key"] {
        assert!(dir.join(f).is_file(), "{f} was not written");
    }
    assert_eq!(mode(&dir.join("keys/signing.pem")), 0o600);
    assert_eq!(mode(&dir.join("keys/node.key")), 0o600);

    let card: Value = serde_json::from_str(&fs::read_to_string(dir.join("card.json")).unwrap()).unwrap();
    assert_eq!(card["member"]["code"], "PH");
    assert_eq!(card["member"]["community"], "ASEAN");
    assert_eq!(card["member"]["signing_key"].as_str().unwrap().len(), 64);

    let printed = out.both();
    assert!(!printed.contains("PRIVATE KEY"), "init printed a private key:\n{printed}");
    for key in ["keys/signing.pem", "keys/node.key"] {
        for secret in pem_secrets(&dir.join(key)) {
            assert!(!printed.contains(&secret), "init printed the contents of {key}");
        }
    }

    let before: Vec<Vec<u8>> = ["keys/signing.pem", "keys/node.key", "card.json", "config.toml"]
        .iter()
        .map(|f| fs::read(dir.join(f)).unwrap())
        .collect();
    let again = init(&dir, "PH", &[]).fails();
    assert!(again.stderr.contains("refusing to overwrite"), "{}", again.stderr);
    let after: Vec<Vec<u8>> = ["keys/signing.pem", "keys/node.key", "card.json", "config.toml"]
        .iter()
        .map(|f| fs::read(dir.join(f)).unwrap())
        .collect();
    assert!(before == after, "a second init changed the member's keys or files");
    assert_eq!(mode(&dir.join("keys/signing.pem")), 0o600);
}

/// `adi init --store postgres://…` writes a configuration whose store is that database, and the
/// node's configuration loads with it; an address that is not PostgreSQL's is refused before
/// anything is written. A `[store]` of an unknown kind, or one on PostgreSQL without its address,
/// is refused by name when the configuration is read.
#[test]
fn init_with_a_postgresql_store_names_it_in_the_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let refused = tmp.path().join("refused");
    let out = init(&refused, "PH", &["--store", "sqlite:///var/lib/adi.db"]).fails();
    assert!(out.stderr.contains("--store"), "{}", out.stderr);
    assert!(!refused.join("keys/signing.pem").exists(), "a refused init wrote a key");

    let dir = tmp.path().join("ph");
    init(&dir, "PH", &["--store", "postgres://adi@db.example:5432/adi_ph"]).ok();
    let config: adi_node::config::ConfigFile =
        toml::from_str(&fs::read_to_string(dir.join("config.toml")).unwrap()).unwrap();
    let store = config.store.as_ref().expect("a [store] section");
    assert_eq!(
        (store.kind.as_str(), store.url.as_deref()),
        ("postgres", Some("postgres://adi@db.example:5432/adi_ph"))
    );
    assert!(config.database.is_empty(), "an embedded database named beside the PostgreSQL store");
    let loaded = adi_node::NodeConfig::load(&dir.join("config.toml")).map_err(|e| e.to_string()).unwrap();
    assert_eq!(loaded.store_name(), "postgres://adi@db.example:5432/adi_ph");

    for (store, field) in [("kind = \"mysql\"", "store.kind"), ("kind = \"postgres\"", "store.url")] {
        let text = fs::read_to_string(dir.join("config.toml")).unwrap();
        let start = text.find("[store]").unwrap();
        let end = text[start..].find("\n\n").map_or(text.len(), |e| start + e);
        let bad = format!("{}[store]\n{store}\n{}", &text[..start], &text[end..]);
        let path = dir.join("bad.toml");
        fs::write(&path, bad).unwrap();
        let err = adi_node::NodeConfig::load(&path).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains(field), "{store}: {err}");
    }

    // A pair's lease that leaves the take-over bound no second for the start, or that is renewed
    // no more often than it runs out, is refused by name.
    for (limits, field) in
        [("lease_ms = 4500", "limits.takeover_ms"), ("lease_renew_ms = 3000", "limits.lease_renew_ms")]
    {
        let text = fs::read_to_string(dir.join("config.toml")).unwrap();
        let text = if text.contains("[limits]") {
            text.replace("[limits]", &format!("[limits]\n{limits}"))
        } else {
            format!("{text}\n[limits]\n{limits}\n")
        };
        let path = dir.join("bad.toml");
        fs::write(&path, text).unwrap();
        let err = adi_node::NodeConfig::load(&path).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains(field), "{limits}: {err}");
    }
}

#[test]
fn init_of_an_unknown_member_needs_a_name_and_community() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("xq");
    let out = init(&dir, "XQ", &[]).fails();
    assert!(out.stderr.contains("XQ") && out.stderr.contains("--name"), "unclear message: {}", out.stderr);
    assert!(!dir.join("keys/signing.pem").exists(), "a refused init wrote a key");

    let out = init(&dir, "XQ", &["--name", "Example Land"]).fails();
    assert!(out.stderr.contains("--community"), "unclear message: {}", out.stderr);

    init(&dir, "XQ", &["--name", "Example Land", "--community", "OBSERVER"]).ok();
    let card: Value = serde_json::from_str(&fs::read_to_string(dir.join("card.json")).unwrap()).unwrap();
    assert_eq!(card["member"]["code"], "XQ");
    assert_eq!(card["member"]["name"], "Example Land");
    assert_eq!(card["member"]["community"], "OBSERVER");
}

#[test]
fn roster_from_cards_and_a_broken_card_is_refused_by_file_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let p1 = free_base_port();
    let endpoint = format!("127.0.0.1:{p1}");
    init(&tmp.path().join("ph"), "PH", &["--endpoint", &endpoint]).ok();
    init(&tmp.path().join("cn"), "CN", &[]).ok();
    let ph_card = tmp.path().join("ph/card.json");
    let cn_card = tmp.path().join("cn/card.json");

    let roster_path = tmp.path().join("roster.toml");
    let out = run(adi().arg("roster").arg("--out").arg(&roster_path).arg(&ph_card).arg(&cn_card)).ok();
    assert!(out.stdout.contains("2 members"), "{}", out.stdout);
    // It prints the roster's anchor: the SHA-256 verifiers of its records pin.
    let anchor = hex::encode(adi_node::config::load_roster(&roster_path).unwrap().sha256());
    assert!(out.stdout.contains(&anchor), "{}", out.stdout);
    let roster: toml::Value = toml::from_str(&fs::read_to_string(&roster_path).unwrap()).unwrap();
    let members = roster["members"].as_array().expect("members");
    assert_eq!(members.len(), 2);
    let codes: BTreeSet<&str> = members.iter().map(|m| m["code"].as_str().unwrap()).collect();
    assert_eq!(codes, BTreeSet::from(["CN", "PH"]));
    let ph = members.iter().find(|m| m["code"].as_str() == Some("PH")).unwrap();
    assert_eq!(ph["endpoints"].as_array().unwrap()[0].as_str(), Some(endpoint.as_str()));

    let mut card: Value = serde_json::from_str(&fs::read_to_string(&ph_card).unwrap()).unwrap();
    card["member"]["signing_key"] = Value::from("not-a-key");
    let broken = tmp.path().join("broken-card.json");
    fs::write(&broken, serde_json::to_string_pretty(&card).unwrap()).unwrap();
    let refused_path = tmp.path().join("refused.toml");
    let out = run(adi().arg("roster").arg("--out").arg(&refused_path).arg(&cn_card).arg(&broken)).fails();
    assert!(out.stderr.contains(&broken.display().to_string()), "the card file is not named: {}", out.stderr);
    assert!(out.stderr.contains("signing_key"), "the field is not named: {}", out.stderr);
    assert!(!refused_path.exists(), "a roster was written from a broken card");
}

/// `adi serve` on this config must exit non-zero soon, naming `file` and `field`, and start nothing.
#[track_caller]
fn serve_refuses(config: &Path, file: &Path, field: &str) {
    let out = run_within(adi().arg("serve").arg("--config").arg(config), Duration::from_secs(20)).fails();
    assert!(out.stderr.contains(&file.display().to_string()), "{} is not named:\n{}", file.display(), out.stderr);
    assert!(out.stderr.contains(&format!("`{field}`")), "field {field} is not named:\n{}", out.stderr);
    assert!(!out.stdout.contains("ready"), "the node started:\n{}", out.stdout);
    let db = config.parent().unwrap().join("node.db");
    assert!(!db.exists(), "the node opened its database despite the bad configuration");
}

/// A fresh member folder and its config path.
fn member_dir(root: &Path, name: &str, code: &str, extra: &[&str]) -> (PathBuf, PathBuf) {
    let dir = root.join(name);
    init(&dir, code, extra).ok();
    let config = dir.join("config.toml");
    (dir, config)
}

fn replace_in(path: &Path, from: &str, to: &str) {
    let text = fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} does not contain {from:?}:\n{text}", path.display());
    fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn malformed_configs_are_reported_by_file_and_field_and_the_node_does_not_start() {
    let tmp = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(tmp.path()).unwrap();
    let port = free_base_port();
    let (api, federation) = (format!("127.0.0.1:{port}"), format!("127.0.0.1:{}", port + 1));
    let listen = ["--api-listen", api.as_str(), "--federation-listen", federation.as_str()];
    let listen_line = format!("listen = \"127.0.0.1:{port}\"");

    let (_, config) = member_dir(&root, "listen", "PH", &listen);
    replace_in(&config, &listen_line, "listen = \"not an address\"");
    serve_refuses(&config, &config, "api.listen");

    let (_, config) = member_dir(&root, "member", "PH", &listen);
    replace_in(&config, "member = \"PH\"", "member = \"XX\"");
    serve_refuses(&config, &config, "member");

    let (dir, config) = member_dir(&root, "roster", "PH", &listen);
    let roster = dir.join("roster.toml");
    let card: Value = serde_json::from_str(&fs::read_to_string(dir.join("card.json")).unwrap()).unwrap();
    let key = card["member"]["signing_key"].as_str().unwrap();
    replace_in(&roster, &format!("signing_key = \"{key}\""), "signing_key = \"zz\"");
    serve_refuses(&config, &roster, "members[0].signing_key");

    let (_, config) = member_dir(&root, "exposed", "PH", &listen);
    replace_in(&config, &listen_line, &format!("listen = \"0.0.0.0:{port}\""));
    serve_refuses(&config, &config, "api.tls");
    assert!(TcpListener::bind(("0.0.0.0", port)).is_ok(), "the refused node holds its port");

    // The same config with a loopback address does start: the refusals above are the config's.
    let (dir, config) = member_dir(&root, "good", "PH", &listen);
    let log = fs::File::create(root.join("good.log")).unwrap();
    let mut node =
        ChildGuard::spawn(adi().arg("serve").arg("--config").arg(&config).stdout(log.try_clone().unwrap()).stderr(log));
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(node.wait_for(Duration::ZERO).is_none(), "a good config did not start");
        assert!(Instant::now() < deadline, "a good config did not start within 30 s");
        thread::sleep(Duration::from_millis(50));
    }
    assert!(dir.join("node.db").exists());
}

/// Waits until a node answers an authenticated `adi lines`.
fn wait_ready(node: &mut ChildGuard, m: &DemoMember, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = node.wait_for(Duration::ZERO) {
            panic!("node {} exited ({status}):\n{}", m.code, fs::read_to_string(log).unwrap_or_default());
        }
        let host = m.api_url.trim_start_matches("http://");
        if TcpStream::connect(host).is_ok() && client(&m.api_url, &m.token, &["lines", "--json"]).status.success() {
            return;
        }
        assert!(Instant::now() < deadline, "node {} not ready within 30 s", m.code);
        thread::sleep(Duration::from_millis(100));
    }
}

/// The bytes of a node's database and its write-ahead log.
fn db_bytes(db: &Path) -> Vec<u8> {
    let mut bytes = fs::read(db).expect("node.db");
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    if let Ok(w) = fs::read(PathBuf::from(wal)) {
        bytes.extend_from_slice(&w);
    }
    bytes
}

#[test]
fn two_node_processes_driven_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("net");
    let base = free_base_port();
    let out = run(adi()
        .args(["demo", "--init-only", "--members", "PH,CN", "--base-port", &base.to_string(), "--state"])
        .arg(&state))
    .ok();
    assert!(out.stdout.contains("demo.json"), "{}", out.stdout);
    let members = read_demo(&state);
    assert_eq!(members.iter().map(|m| m.code.as_str()).collect::<Vec<_>>(), ["PH", "CN"]);
    assert_eq!(members[0].api_url, format!("http://127.0.0.1:{}", base + 1));
    assert_eq!(members[1].api_url, format!("http://127.0.0.1:{}", base + 3));
    let (ph, cn) = (&members[0], &members[1]);

    let mut nodes = Vec::new();
    for m in &members {
        let log_path = tmp.path().join(format!("{}.log", m.code));
        let log = fs::File::create(&log_path).unwrap();
        let mut node = ChildGuard::spawn(
            adi().arg("serve").arg("--config").arg(&m.config).stdout(log.try_clone().unwrap()).stderr(log),
        );
        wait_ready(&mut node, m, &log_path);
        nodes.push(node);
    }

    let line = client(&ph.api_url, &ph.token, &["new-line", "--members", "PH,CN", "--scope", "ADMM-Plus", "--json"])
        .ok()
        .json();
    let line_id = line["id"].as_str().expect("line id").to_string();
    assert_eq!(line["scope"], "ADMM-Plus");
    assert_eq!(line["members"], serde_json::json!(["CN", "PH"]));

    let subject = "Unplanned encounter at sea";
    let body = "Request you contact your unit to keep safe distance.";
    let sent = client(
        &ph.api_url,
        &ph.token,
        &["send", "--line", &line_id, "--precedence", "FLASH", "--subject", subject, "--body", body, "--json"],
    )
    .ok()
    .json();
    let msg_id = sent["id"].as_str().expect("message id").to_string();
    assert_eq!(sent["precedence"], "FLASH");

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shown = client(&ph.api_url, &ph.token, &["show", &msg_id, "--json"]).ok().json();
        assert_eq!(shown["recipients"][0]["member"], "CN");
        if shown["recipients"][0]["state"] == "delivered" {
            break;
        }
        assert!(Instant::now() < deadline, "not delivered within 30 s: {shown}");
        thread::sleep(Duration::from_millis(100));
    }

    let inbox = client(&cn.api_url, &cn.token, &["inbox", "--json"]).ok().json();
    let received = inbox
        .as_array()
        .expect("inbox is a list")
        .iter()
        .find(|m| m["id"] == msg_id.as_str())
        .unwrap_or_else(|| panic!("the message is not in CN's inbox: {inbox}"));
    assert_eq!(received["precedence"], "FLASH");
    assert_eq!(received["sender"], "PH");
    assert_eq!(received["subject"], subject);

    // A report from a file: checked here first, sent with its working group, shown as text.
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples");
    let report = examples.join("encounter-at-sea.json");
    let sent = client(
        &ph.api_url,
        &ph.token,
        &[
            "send",
            "--line",
            &line_id,
            "--precedence",
            "IMMEDIATE",
            "--kind",
            "encounter-at-sea",
            "--file",
            report.to_str().unwrap(),
            "--ewg",
            "maritime-security",
            "--json",
        ],
    )
    .ok()
    .json();
    assert_eq!(sent["form"]["kind"], "encounter-at-sea");
    assert_eq!(sent["ewg"], "maritime-security");
    assert_eq!(sent["subject"], "Encounter at sea: BRP Jose Rizal and Harbour Patrol 21");
    let report_id = sent["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let shown = loop {
        let shown = client(&cn.api_url, &cn.token, &["show", &report_id]);
        if shown.status.success() {
            break shown.stdout;
        }
        assert!(Instant::now() < deadline, "the report did not reach CN within 30 s: {}", shown.both());
        thread::sleep(Duration::from_millis(100));
    };
    for want in
        ["working group: maritime-security", "ENCOUNTER AT SEA", "Harbour Patrol 21", "computed:", "CPA 0.62 nm"]
    {
        assert!(shown.contains(want), "'{want}' not in:\n{shown}");
    }
    // Exported by CN and verified offline, the report's text printed beside its checks.
    let bundle = tmp.path().join("line.json");
    client(&cn.api_url, &cn.token, &["export", "--line", &line_id, "--out", bundle.to_str().unwrap()]).ok();
    let verified =
        run(adi().arg("verify").arg(&bundle).arg("--roster").arg(state.join("roster.toml")).arg("--reports")).ok();
    assert!(verified.stdout.contains("verified:"), "{}", verified.stdout);
    assert!(verified.stdout.contains("(PH #"), "{}", verified.stdout);
    assert!(verified.stdout.contains("ENCOUNTER AT SEA"), "{}", verified.stdout);
    // The same, anchored by the roster a node's configuration trusts; a configuration naming
    // another roster fails it.
    let configured = run(adi().arg("verify").arg(&bundle).arg("--config").arg(&cn.config)).ok();
    assert!(configured.stdout.contains("verified:") && configured.stdout.contains("anchored"), "{}", configured.stdout);
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    let other_roster = fs::read_to_string(state.join("roster.toml")).unwrap();
    let cut = other_roster.find("[[members]]").unwrap();
    let after = other_roster[cut + 1..].find("[[members]]").map_or(other_roster.len(), |i| cut + 1 + i);
    fs::write(elsewhere.join("roster.toml"), format!("{}{}", &other_roster[..cut], &other_roster[after..])).unwrap();
    fs::write(elsewhere.join("config.toml"), fs::read_to_string(&cn.config).unwrap()).unwrap();
    let refused = run(adi().arg("verify").arg(&bundle).arg("--config").arg(elsewhere.join("config.toml"))).fails();
    assert!(refused.stderr.contains("anchor"), "{}{}", refused.stdout, refused.stderr);
    // A bad report is refused before anything is sent, with the file and the field named.
    let bad = tmp.path().join("bad-report.json");
    fs::write(&bad, fs::read_to_string(&report).unwrap().replace("\"course_deg\": 270", "\"course_deg\": 370"))
        .unwrap();
    let before = client(&ph.api_url, &ph.token, &["inbox", "--json"]).ok().json();
    let refused = client(
        &ph.api_url,
        &ph.token,
        &["send", "--line", &line_id, "--kind", "encounter-at-sea", "--file", bad.to_str().unwrap()],
    )
    .fails();
    assert!(refused.stderr.contains("other_units[0].course_deg"), "{}", refused.stderr);
    assert!(refused.stderr.contains("nothing was sent"), "{}", refused.stderr);
    let wrong_kind = client(
        &ph.api_url,
        &ph.token,
        &["send", "--line", &line_id, "--kind", "air-encounter", "--file", report.to_str().unwrap()],
    )
    .fails();
    assert!(wrong_kind.stderr.contains("kind is encounter-at-sea, not air-encounter"), "{}", wrong_kind.stderr);
    let listed = client(&cn.api_url, &cn.token, &["inbox", "--json"]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 2, "CN holds the FLASH and the report only: {listed}");
    assert_eq!(client(&ph.api_url, &ph.token, &["inbox", "--json"]).ok().json(), before);
    // The approach helper runs offline.
    let cpa = run(adi().args(["cpa", "--own", "14.5,119.5,0,12", "--other", "14.6,119.6,270,10"])).ok();
    assert!(cpa.stdout.contains("closest approach 0.62 nm in 32.0 min"), "{}", cpa.stdout);
    assert!(cpa.stdout.contains("crossing-give-way"), "{}", cpa.stdout);
    let cpa = run(adi().args(["cpa", "--own", "14.5,119.5,361,12", "--other", "14.6,119.6,270,10"])).fails();
    assert!(cpa.stderr.contains("own.course_deg"), "{}", cpa.stderr);

    let lines = client(&cn.api_url, &cn.token, &["lines"]).ok();
    assert!(lines.stdout.contains(&line_id), "CN's lines do not list {line_id}:\n{}", lines.stdout);

    // An auditor: its token is printed once, reads, and may not send.
    let added =
        run(adi().args(["operator", "add", "--name", "alice", "--role", "auditor", "--config"]).arg(&ph.config)).ok();
    let printed: Vec<&str> = added.stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(printed.len(), 1, "expected the token alone on stdout:\n{}", added.stdout);
    let token = printed[0].trim().to_string();
    assert!(token.len() >= 32, "a short token: {token}");
    assert_eq!(added.both().matches(&token).count(), 1, "the token is printed more than once");

    let read = client(&ph.api_url, &token, &["lines"]).ok();
    assert!(read.stdout.contains(&line_id), "{}", read.stdout);
    let denied = client(
        &ph.api_url,
        &token,
        &["send", "--line", &line_id, "--precedence", "ROUTINE", "--subject", "x", "--body", "y"],
    )
    .fails();
    assert!(denied.stderr.contains("403"), "{}", denied.stderr);
    let bad = client(&ph.api_url, &format!("{token}x"), &["lines"]).fails();
    assert!(bad.stderr.contains("401"), "{}", bad.stderr);

    let stored = db_bytes(&state.join("PH/node.db"));
    let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    assert!(contains(&stored, &hash), "the token's hash is not in PH's database");
    assert!(!contains(&stored, token.as_bytes()), "the auditor's token is stored in the clear");
    assert!(!contains(&stored, ph.token.as_bytes()), "the duty token is stored in the clear");

    let king =
        run(adi().args(["operator", "add", "--name", "bob", "--role", "king", "--config"]).arg(&ph.config)).fails();
    assert!(king.stderr.contains("king"), "{}", king.stderr);
    assert!(king.stdout.trim().is_empty(), "a token was printed for a refused role: {}", king.stdout);

    drop(nodes);
}

#[test]
fn demo_plays_the_scenario_and_stops_on_sigint() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("net");
    let base = free_base_port();
    let out_path = tmp.path().join("demo.out");
    let err_path = tmp.path().join("demo.err");
    let mut demo = ChildGuard::spawn(
        adi()
            .args(["demo", "--members", "PH,CN", "--base-port", &base.to_string(), "--state"])
            .arg(&state)
            .stdout(fs::File::create(&out_path).unwrap())
            .stderr(fs::File::create(&err_path).unwrap()),
    );

    let deadline = Instant::now() + Duration::from_secs(90);
    let stdout = loop {
        let stdout = fs::read_to_string(&out_path).unwrap_or_default();
        if stdout.contains("press Ctrl-C") {
            break stdout;
        }
        if let Some(status) = demo.wait_for(Duration::ZERO) {
            panic!("demo exited early ({status}):\n{stdout}\n{}", fs::read_to_string(&err_path).unwrap_or_default());
        }
        assert!(Instant::now() < deadline, "demo not running within 90 s:\n{stdout}");
        thread::sleep(Duration::from_millis(100));
    };
    assert!(stdout.contains("[ 1/2] PH: keys and card") && stdout.contains("[ 2/2] CN: keys and card"), "{stdout}");
    assert!(stdout.contains("PH node ready") && stdout.contains("CN node ready"), "{stdout}");
    let header = stdout.lines().find(|l| l.starts_with("member")).unwrap_or_else(|| panic!("no table:\n{stdout}"));
    assert!(header.contains("API URL") && header.contains("token"), "{header}");
    assert!(stdout.lines().any(|l| l.starts_with("PH") && l.contains(&format!("http://127.0.0.1:{}", base + 1))));
    assert!(stdout.lines().any(|l| l.starts_with("CN") && l.contains(&format!("http://127.0.0.1:{}", base + 3))));
    assert!(
        stdout.lines().any(|l| l.contains("FLASH delivered to CN")),
        "the scenario's FLASH was not delivered:\n{stdout}\n{}",
        fs::read_to_string(&err_path).unwrap_or_default()
    );
    assert!(stdout.contains("inbox shows FLASH from PH"), "{stdout}");
    assert!(state.join("demo.json").is_file());

    // The Ctrl-C handler is installed right after the prompt is printed.
    thread::sleep(Duration::from_millis(500));
    let kill = Command::new("kill").args(["-INT", &demo.id().to_string()]).status().expect("kill");
    assert!(kill.success());
    let status = demo.wait_for(Duration::from_secs(20)).expect("demo did not stop within 20 s of SIGINT");
    let stdout = fs::read_to_string(&out_path).unwrap();
    assert!(status.success(), "demo exited with {status}:\n{stdout}");
    assert!(stdout.lines().any(|l| l.trim() == "stopped"), "{stdout}");
}

/// A two-member demo network, PH and CN, run as `adi serve` processes.
struct Net {
    /// Declared first so that the nodes stop before their folder is removed.
    nodes: Vec<ChildGuard>,
    members: Vec<DemoMember>,
    tmp: tempfile::TempDir,
}

impl Net {
    /// Writes the demo state, lets `edit` change each member's config (its code and path) and
    /// starts both nodes.
    fn start(edit: impl Fn(&str, &Path)) -> Net {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("net");
        let base = free_base_port();
        run(adi()
            .args(["demo", "--init-only", "--members", "PH,CN", "--base-port", &base.to_string(), "--state"])
            .arg(&state))
        .ok();
        let members = read_demo(&state);
        assert_eq!(members.iter().map(|m| m.code.as_str()).collect::<Vec<_>>(), ["PH", "CN"]);
        for m in &members {
            edit(&m.code, &m.config);
        }
        let mut net = Net { nodes: Vec::new(), members, tmp };
        for i in 0..net.members.len() {
            let node = net.serve(i);
            net.nodes.push(node);
        }
        net
    }

    /// Starts member `i`'s node and waits until it answers.
    fn serve(&self, i: usize) -> ChildGuard {
        let m = &self.members[i];
        let log_path = self.tmp.path().join(format!("{}.log", m.code));
        let log = fs::OpenOptions::new().create(true).append(true).open(&log_path).unwrap();
        let mut node = ChildGuard::spawn(
            adi().arg("serve").arg("--config").arg(&m.config).stdout(log.try_clone().unwrap()).stderr(log),
        );
        wait_ready(&mut node, m, &log_path);
        node
    }

    fn ph(&self) -> &DemoMember {
        &self.members[0]
    }

    fn cn(&self) -> &DemoMember {
        &self.members[1]
    }

    /// Opens the PH–CN direct line at PH and returns its id.
    fn open_line(&self) -> String {
        let ph = self.ph();
        let line =
            client(&ph.api_url, &ph.token, &["new-line", "--members", "PH,CN", "--scope", "ADMM-Plus", "--json"])
                .ok()
                .json();
        line["id"].as_str().expect("line id").to_string()
    }
}

/// A client command of a member's duty officer.
fn duty(m: &DemoMember, args: &[&str]) -> Outcome {
    client(&m.api_url, &m.token, args)
}

/// Sends a message from `m` on `line` and returns the answer's JSON.
fn send_json(m: &DemoMember, line: &str, precedence: &str, subject: &str) -> Value {
    duty(m, &["send", "--line", line, "--precedence", precedence, "--subject", subject, "--body", "Text.", "--json"])
        .ok()
        .json()
}

/// Calls `probe` every 100 ms until it returns a value, for at most `limit`.
#[track_caller]
fn poll<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match probe() {
            Ok(v) => return v,
            Err(last) => assert!(Instant::now() < deadline, "{what} not within {limit:?}; last seen: {last}"),
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the message `id` is held at member `m`'s node.
fn wait_for_message(m: &DemoMember, id: &str) -> Value {
    poll(&format!("message {id} at {}", m.code), Duration::from_secs(30), || {
        let shown = duty(m, &["show", id, "--json"]);
        if shown.status.success() {
            Ok(shown.json())
        } else {
            Err(shown.stderr)
        }
    })
}

/// Waits until the sender's node shows the first recipient of message `id` in `state`.
fn wait_for_recipient_state(sender: &DemoMember, id: &str, state: &str) -> Value {
    poll(&format!("recipient state {state} of {id}"), Duration::from_secs(30), || {
        let shown = duty(sender, &["show", id, "--json"]).ok().json();
        if shown["recipients"][0]["state"] == state {
            Ok(shown)
        } else {
            Err(shown.to_string())
        }
    })
}

#[test]
fn seen_ack_and_decline_through_the_cli() {
    let net = Net::start(|_, _| {});
    let (ph, cn) = (net.ph(), net.cn());
    let line = net.open_line();

    let id = send_json(ph, &line, "FLASH", "Close quarters")["id"].as_str().expect("message id").to_string();
    wait_for_message(cn, &id);
    let seen = duty(cn, &["seen", &id, "--json"]).ok().json();
    assert_eq!(seen["id"], id.as_str());
    assert!(
        seen["receipts"].as_array().unwrap().iter().any(|r| r["member"] == "CN" && r["kind"] == "seen"),
        "no seen receipt: {seen}"
    );
    let acked = duty(cn, &["ack", &id]).ok();
    assert!(acked.stdout.contains("acknowledged: FLASH from PH"), "{}", acked.stdout);
    assert!(acked.stdout.contains(&id), "{}", acked.stdout);

    let shown = wait_for_recipient_state(ph, &id, "acknowledged");
    let cn_state = &shown["recipients"][0];
    assert_eq!(cn_state["member"], "CN");
    assert!(cn_state["acknowledged_ms"].is_u64(), "acknowledged_ms not set: {shown}");
    assert!(cn_state["seen_ms"].is_u64(), "seen_ms not set: {shown}");
    assert!(cn_state["declined_ms"].is_null(), "{shown}");

    let again = duty(cn, &["ack", &id]).fails();
    assert!(again.stderr.contains("409"), "{}", again.stderr);
    let late = duty(cn, &["decline", &id, "--reason", "x"]).fails();
    assert!(late.stderr.contains("409"), "{}", late.stderr);

    let id2 = send_json(ph, &line, "PRIORITY", "Not our unit")["id"].as_str().expect("message id").to_string();
    wait_for_message(cn, &id2);
    let usage = duty(cn, &["decline", &id2]).fails();
    assert_eq!(usage.status.code(), Some(2), "not a usage error: {}", usage.stderr);
    assert!(usage.stderr.contains("--reason"), "{}", usage.stderr);
    let declined = duty(cn, &["decline", &id2, "--reason", "not ours", "--json"]).ok().json();
    assert!(
        declined["receipts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["member"] == "CN" && r["kind"] == "declined" && r["reason"] == "not ours"),
        "no decline receipt: {declined}"
    );
    let shown = wait_for_recipient_state(ph, &id2, "declined");
    assert_eq!(shown["recipients"][0]["detail"], "not ours", "{shown}");
    assert!(shown["recipients"][0]["declined_ms"].is_u64(), "{shown}");
    assert!(shown["recipients"][0]["acknowledged_ms"].is_null(), "{shown}");
    let after_decline = duty(cn, &["ack", &id2]).fails();
    assert!(after_decline.stderr.contains("409"), "{}", after_decline.stderr);
}

/// Sets `[discipline] link_test_interval_s` in a demo config.
fn set_link_test_interval(config: &Path, seconds: u64) {
    replace_in(config, "link_test_interval_s = 30", &format!("link_test_interval_s = {seconds}"));
}

/// A running `adi watch` whose output goes to files.
struct Watch {
    child: ChildGuard,
    out: PathBuf,
    err: PathBuf,
}

impl Watch {
    fn start(m: &DemoMember, dir: &Path, name: &str, args: &[&str]) -> Watch {
        let (out, err) = (dir.join(format!("{name}.out")), dir.join(format!("{name}.err")));
        let child = ChildGuard::spawn(
            adi()
                .env("ADI_URL", &m.api_url)
                .env("ADI_TOKEN", &m.token)
                .arg("watch")
                .args(args)
                .stdout(fs::File::create(&out).unwrap())
                .stderr(fs::File::create(&err).unwrap()),
        );
        Watch { child, out, err }
    }

    fn stdout(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// The events printed so far, one JSON object a line.
    fn events(&self) -> Vec<Value> {
        self.stdout()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
            .collect()
    }

    /// Waits until `text` is on stderr, and fails if the command exits first.
    fn wait_stderr(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.stderr().contains(text) {
            if let Some(status) = self.child.wait_for(Duration::ZERO) {
                panic!("adi watch exited ({status}):\n{}\n{}", self.stdout(), self.stderr());
            }
            assert!(Instant::now() < deadline, "adi watch printed no {text:?} within 30 s:\n{}", self.stderr());
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `n` events are printed while the command still runs.
    fn wait_events(&mut self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let events = self.events();
            if events.len() >= n {
                return events;
            }
            if let Some(status) = self.child.wait_for(Duration::ZERO) {
                panic!("adi watch exited ({status}):\n{}\n{}", self.stdout(), self.stderr());
            }
            assert!(Instant::now() < deadline, "{n} events not printed within 30 s:\n{}", self.stdout());
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the command to exit, at most 30 s, and returns its status.
    fn finish(&mut self) -> ExitStatus {
        self.child
            .wait_for(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("adi watch did not exit within 30 s:\n{}\n{}", self.stdout(), self.stderr()))
    }
}

#[track_caller]
fn assert_message_event(e: &Value, id: &str, subject: &str) {
    assert_eq!(e["kind"], "message", "{e}");
    assert_eq!(e["message"], id, "{e}");
    assert_eq!(e["member"], "PH", "{e}");
    assert_eq!(e["state"], "ROUTINE", "{e}");
    assert_eq!(e["detail"], subject, "{e}");
    assert!(e["id"].is_u64(), "{e}");
}

#[test]
fn watch_streams_events_as_they_arrive_and_resumes_after_an_event() {
    let net = Net::start(|_, config| set_link_test_interval(config, 0));
    let (ph, cn) = (net.ph(), net.cn());
    let line = net.open_line();

    let mut watch = Watch::start(cn, net.tmp.path(), "watch", &["--count", "3", "--json"]);
    watch.wait_stderr("watching");
    let subjects = ["First", "Second", "Third"];
    let mut ids = Vec::new();
    ids.push(send_json(ph, &line, "ROUTINE", subjects[0])["id"].as_str().unwrap().to_string());
    // The first event is printed while the stream is still open: it streams.
    let first = watch.wait_events(1);
    assert_eq!(first.len(), 1, "{}", watch.stdout());
    assert_message_event(&first[0], &ids[0], subjects[0]);
    for subject in &subjects[1..] {
        ids.push(send_json(ph, &line, "ROUTINE", subject)["id"].as_str().unwrap().to_string());
    }
    let status = watch.finish();
    assert!(status.success(), "adi watch failed ({status}):\n{}", watch.stderr());
    let events = watch.events();
    assert_eq!(events.len(), 3, "expected exactly three events:\n{}", watch.stdout());
    for (i, e) in events.iter().enumerate() {
        assert_message_event(e, &ids[i], subjects[i]);
    }
    let event_ids: Vec<u64> = events.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert!(event_ids.windows(2).all(|w| w[0] < w[1]), "event ids not increasing: {event_ids:?}");

    // From an event id, the node replays what came after it.
    let after = event_ids[0].to_string();
    let mut replay = Watch::start(cn, net.tmp.path(), "replay", &["--after", &after, "--count", "2", "--json"]);
    let status = replay.finish();
    assert!(status.success(), "adi watch --after failed ({status}):\n{}", replay.stderr());
    let replayed = replay.events();
    assert_eq!(replayed.len(), 2, "{}", replay.stdout());
    assert_message_event(&replayed[0], &ids[1], subjects[1]);
    assert_message_event(&replayed[1], &ids[2], subjects[2]);

    // Human output: one line per event with its time, kind, member, state and detail.
    let mut human = Watch::start(cn, net.tmp.path(), "human", &["--after", &after, "--count", "1"]);
    assert!(human.finish().success(), "{}", human.stderr());
    let printed = human.stdout();
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 1, "{printed}");
    let words: Vec<&str> = lines[0].split_whitespace().collect();
    assert!(words.len() >= 6, "{printed}");
    assert!(words[0].len() == 10 && words[0].starts_with("20") && words[1].ends_with('Z'), "no time: {printed}");
    assert_eq!(&words[2..6], ["message", "PH", "ROUTINE", "Second"], "{printed}");
    assert!(printed.contains(&ids[1]), "{printed}");

    let zero = client(&cn.api_url, &cn.token, &["watch", "--count", "0"]).fails();
    assert_eq!(zero.status.code(), Some(2), "{}", zero.stderr);
    let bad = client(&cn.api_url, &format!("{}x", cn.token), &["watch", "--count", "1"]).fails();
    assert!(bad.stderr.contains("401"), "{}", bad.stderr);
}

#[test]
fn watch_reconnects_after_its_node_restarts_without_repeating_events() {
    let mut net = Net::start(|_, config| set_link_test_interval(config, 0));
    let line = net.open_line();
    let (ph, cn) = (net.ph(), net.cn());

    let mut watch = Watch::start(cn, net.tmp.path(), "watch", &["--count", "3", "--json"]);
    watch.wait_stderr("watching");
    let first = send_json(ph, &line, "ROUTINE", "First")["id"].as_str().unwrap().to_string();
    assert_message_event(&watch.wait_events(1)[0], &first, "First");

    // CN's node goes away under the stream; a message sent meanwhile waits at PH; CN's node comes
    // back on the same port. Whichever comes first, the delivery or the reconnection, the stream
    // resumes after the last event printed, so nothing is lost or repeated.
    drop(net.nodes.remove(1));
    watch.wait_stderr("dropped");
    let second = send_json(net.ph(), &line, "ROUTINE", "Second")["id"].as_str().unwrap().to_string();
    let restarted = net.serve(1);
    net.nodes.push(restarted);
    let (ph, cn) = (net.ph(), net.cn());
    watch.wait_stderr("reconnected");
    let resumed = format!("reconnected to {}; events after event {}", cn.api_url, watch.events()[0]["id"]);
    assert!(watch.stderr().contains(&resumed), "{}", watch.stderr());
    let third = send_json(ph, &line, "ROUTINE", "Third")["id"].as_str().unwrap().to_string();
    let status = watch.finish();
    assert!(status.success(), "adi watch failed ({status}):\n{}", watch.stderr());
    let events = watch.events();
    assert_eq!(events.len(), 3, "{}", watch.stdout());
    assert_message_event(&events[0], &first, "First");
    assert_message_event(&events[1], &second, "Second");
    assert_message_event(&events[2], &third, "Third");
}

#[test]
fn a_held_flash_is_listed_and_released_by_a_principal_only() {
    let net = Net::start(|code, config| {
        if code == "PH" {
            replace_in(config, "release_required = false", "release_required = true");
        }
    });
    let (ph, cn) = (net.ph(), net.cn());
    let line = net.open_line();

    let subject = "Request hotline call";
    let held =
        duty(ph, &["send", "--line", &line, "--precedence", "FLASH", "--subject", subject, "--body", "Text."]).ok();
    assert!(held.stdout.contains("held for a principal's release"), "{}", held.stdout);
    let draft_id: u64 = held
        .stdout
        .split("draft ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no draft id in:\n{}", held.stdout));

    let drafts = duty(ph, &["drafts", "--json"]).ok().json();
    let listed = drafts.as_array().expect("drafts is a list");
    assert_eq!(listed.len(), 1, "{drafts}");
    assert_eq!(listed[0]["id"], draft_id, "{drafts}");
    assert_eq!(listed[0]["state"], "awaiting_release", "{drafts}");
    assert_eq!(listed[0]["drafter"], "duty-PH", "{drafts}");
    assert_eq!(listed[0]["draft"]["precedence"], "FLASH", "{drafts}");
    assert_eq!(listed[0]["draft"]["subject"], subject, "{drafts}");
    let table = duty(ph, &["drafts"]).ok();
    assert!(
        table.stdout.lines().any(|l| l.trim_start().starts_with(&draft_id.to_string()) && l.contains(subject)),
        "{}",
        table.stdout
    );
    assert!(duty(cn, &["inbox", "--json"]).ok().json().as_array().unwrap().is_empty(), "a held FLASH reached CN");

    let refused = duty(ph, &["release", &draft_id.to_string()]).fails();
    assert!(refused.stderr.contains("403"), "{}", refused.stderr);

    let added =
        run(adi().args(["operator", "add", "--name", "p1", "--role", "principal", "--config"]).arg(&ph.config)).ok();
    let principal = added.stdout.trim().to_string();
    let released = client(&ph.api_url, &principal, &["release", &draft_id.to_string(), "--json"]).ok().json();
    assert_eq!(released["released_by"], "p1", "{released}");
    assert_eq!(released["precedence"], "FLASH", "{released}");
    let id = released["id"].as_str().expect("message id").to_string();

    let shown = wait_for_recipient_state(ph, &id, "delivered");
    assert_eq!(shown["released_by"], "p1", "{shown}");
    let at_cn = wait_for_message(cn, &id);
    assert_eq!(at_cn["released_by"], "p1", "{at_cn}");
    assert_eq!(at_cn["subject"], subject, "{at_cn}");

    assert!(duty(ph, &["drafts", "--json"]).ok().json().as_array().unwrap().is_empty(), "the draft is still held");
    let twice = client(&ph.api_url, &principal, &["release", &draft_id.to_string()]).fails();
    assert!(twice.stderr.contains("409"), "{}", twice.stderr);

    // A principal's own FLASH needs no release.
    let sent = client(
        &ph.api_url,
        &principal,
        &["send", "--line", &line, "--precedence", "FLASH", "--subject", "Direct", "--body", "Text.", "--json"],
    )
    .ok()
    .json();
    assert_eq!(sent["released_by"], "p1", "{sent}");
    assert!(sent["id"].is_string(), "{sent}");
}

/// Sets `[limits]` values of a config.
fn set_limits(config: &Path, limits: &[(&str, i64)]) {
    let mut file: toml::Table = toml::from_str(&fs::read_to_string(config).unwrap()).unwrap();
    let section = file.entry("limits").or_insert_with(|| toml::Value::Table(toml::Table::new()));
    for (key, value) in limits {
        section.as_table_mut().expect("[limits] is a table").insert(key.to_string(), toml::Value::Integer(*value));
    }
    fs::write(config, toml::to_string(&file).unwrap()).unwrap();
}

#[test]
fn lists_longer_than_a_page_are_read_whole_and_the_inbox_says_when_more_remain() {
    // Pages of two items at PH: every list of three or more spans pages.
    let net = Net::start(|code, config| {
        if code == "PH" {
            replace_in(config, "release_required = false", "release_required = true");
            set_limits(config, &[("list_len_max", 2)]);
        }
    });
    let (ph, cn) = (net.ph(), net.cn());
    let line = net.open_line();
    let mut sent = Vec::new();
    for n in 0..5 {
        let m = send_json(cn, &line, "ROUTINE", &format!("to PH {n}"));
        sent.push(m["id"].as_str().expect("a message id").to_string());
    }
    for id in &sent {
        wait_for_message(ph, id);
    }
    // The inbox, up to a count: all five across three pages, or the two most urgent and a line
    // on standard error that more remain.
    let all = duty(ph, &["inbox", "--json"]).ok();
    let ids = |o: &Outcome| -> Vec<String> {
        o.json().as_array().expect("a list").iter().map(|m| m["id"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(ids(&all), sent, "every message, oldest first at one precedence");
    assert!(!all.stderr.contains("more messages remain"), "{}", all.stderr);
    let two = duty(ph, &["inbox", "--limit", "2", "--json"]).ok();
    assert_eq!(ids(&two), sent[..2]);
    assert!(two.stderr.contains("more messages remain than the 2 most urgent shown"), "{}", two.stderr);
    let table = duty(ph, &["inbox", "--limit", "2"]).ok();
    assert_eq!(table.stdout.lines().count(), 2, "{}", table.stdout);
    let five = duty(ph, &["inbox", "--limit", "5", "--json"]).ok();
    assert_eq!(ids(&five), sent);
    assert!(five.stderr.is_empty(), "{}", five.stderr);

    // Drafts: three held, all listed.
    for n in 0..3 {
        let held = duty(
            ph,
            &["send", "--line", &line, "--precedence", "FLASH", "--subject", &format!("held {n}"), "--body", "Text."],
        )
        .ok();
        assert!(held.stdout.contains("held for a principal's release"), "{}", held.stdout);
    }
    let drafts = duty(ph, &["drafts", "--json"]).ok().json();
    assert_eq!(drafts.as_array().expect("a list").len(), 3, "{drafts}");
    let table = duty(ph, &["drafts"]).ok();
    assert_eq!(table.stdout.lines().filter(|l| l.contains("held ")).count(), 3, "{}", table.stdout);
}

#[test]
fn links_show_a_tested_peer_healthy_with_its_round_trip() {
    let net = Net::start(|code, config| {
        if code == "PH" {
            set_link_test_interval(config, 1);
        }
    });
    let ph = net.ph();
    net.open_line();

    let link = poll("CN's link healthy at PH", Duration::from_secs(20), || {
        let links = duty(ph, &["links", "--json"]).ok().json();
        let cn = links.as_array().expect("links is a list").iter().find(|l| l["member"] == "CN").cloned();
        match cn {
            Some(l) if l["state"] == "healthy" && l["last_rtt_ms"].is_u64() => Ok(l),
            _ => Err(links.to_string()),
        }
    });
    assert!(link["last_ok_ms"].is_u64(), "{link}");
    assert!(link["queue_len"].is_u64(), "{link}");
    assert_eq!(link["test_interval_s"], 1, "{link}");

    let table = duty(ph, &["links"]).ok();
    let header = table.stdout.lines().next().unwrap_or_default();
    for column in ["member", "state", "last RTT", "last ok", "queue", "oldest queued"] {
        assert!(header.contains(column), "no {column} column:\n{}", table.stdout);
    }
    let row = table
        .stdout
        .lines()
        .find(|l| l.starts_with("CN"))
        .unwrap_or_else(|| panic!("no row for CN:\n{}", table.stdout));
    assert!(row.contains("healthy") && row.contains(" ms") && row.contains(" s ago"), "{row}");
}

#[test]
fn an_overdue_immediate_raises_an_escalation_that_is_acked_and_cleared_by_the_answer() {
    let net = Net::start(|_, config| {
        for (from, to) in [
            ("flash_s = 60", "flash_s = 2"),
            ("immediate_s = 15", "immediate_s = 2"),
            ("priority_s = 300", "priority_s = 2"),
        ] {
            replace_in(config, from, to);
        }
        replace_in(config, "routine_s = 600", "routine_s = 2");
    });
    let (ph, cn) = (net.ph(), net.cn());
    let line = net.open_line();

    let id = send_json(ph, &line, "IMMEDIATE", "Vessel adrift")["id"].as_str().expect("message id").to_string();
    let alarm = poll("an escalation at CN", Duration::from_secs(30), || {
        let alarms = duty(cn, &["alarms", "--json"]).ok().json();
        let found = alarms
            .as_array()
            .expect("alarms is a list")
            .iter()
            .find(|a| a["kind"] == "escalation" && a["message"] == id.as_str())
            .cloned();
        found.ok_or_else(|| alarms.to_string())
    });
    assert_eq!(alarm["member"], "CN", "{alarm}");
    assert!(alarm["acked_by"].is_null() && alarm["cleared_ms"].is_null(), "{alarm}");
    let alarm_id = alarm["id"].as_u64().expect("alarm id");
    let table = duty(cn, &["alarms"]).ok();
    assert!(
        table.stdout.lines().any(|l| l.trim_start().starts_with(&alarm_id.to_string()) && l.contains("escalation")),
        "{}",
        table.stdout
    );

    let acked = duty(cn, &["alarm-ack", &alarm_id.to_string(), "--json"]).ok().json();
    assert_eq!(acked["id"], alarm_id, "{acked}");
    assert_eq!(acked["acked_by"], "duty-CN", "{acked}");
    assert!(acked["acked_ms"].is_u64(), "{acked}");
    let again = duty(cn, &["alarm-ack", &alarm_id.to_string()]).fails();
    assert!(again.stderr.contains("409"), "{}", again.stderr);

    duty(cn, &["ack", &id]).ok();
    let open = duty(cn, &["alarms", "--json"]).ok().json();
    assert!(
        !open.as_array().unwrap().iter().any(|a| a["id"] == alarm_id),
        "the escalation is still open after the acknowledgement: {open}"
    );
    let all = duty(cn, &["alarms", "--all", "--json"]).ok().json();
    let cleared = all
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == alarm_id)
        .unwrap_or_else(|| panic!("the cleared escalation is not listed with --all: {all}"));
    assert!(cleared["cleared_ms"].is_u64(), "{cleared}");
    assert_eq!(cleared["acked_by"], "duty-CN", "{cleared}");

    // At PH, the unacknowledged alarm of the same message clears once CN's receipt arrives.
    poll("PH's unacknowledged alarm cleared", Duration::from_secs(30), || {
        let all = duty(ph, &["alarms", "--all", "--json"]).ok().json();
        let cleared = all
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["kind"] == "unacknowledged" && a["message"] == id.as_str() && a["cleared_ms"].is_u64());
        if cleared {
            Ok(())
        } else {
            Err(all.to_string())
        }
    });
}

/// A node that answers every GET with the JSON `answers` gives for its path (404 otherwise): a
/// node whose store holds text from before the text rule, or a modified node. Serves until the
/// test ends.
fn fake_node(answers: Vec<(&'static str, Value)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let url = format!("http://{}", listener.local_addr().unwrap());
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                request.push(byte[0]);
            }
            let request = String::from_utf8_lossy(&request);
            let path = request.split(' ').nth(1).unwrap_or("").split('?').next().unwrap_or("");
            let (status, body) = match answers.iter().find(|(p, _)| *p == path) {
                Some((_, v)) => ("200 OK", v.to_string()),
                None => ("404 Not Found", r#"{"error":"not_found","message":"no such path"}"#.to_string()),
            };
            let answer = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            use std::io::Write as _;
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    url
}

#[test]
fn text_from_a_node_is_printed_with_anything_unprintable_escaped() {
    let id = "ab".repeat(32);
    let line = "cd".repeat(16);
    // A subject that would clear the terminal and forge a second line of `adi inbox`.
    let subject = "\u{1b}[2J\u{1b}[Hstand by\r\nFLASH      OPERATIONAL  from PH    all clear";
    let message = serde_json::json!({
        "id": id, "line": line, "sender": "CN", "seq": 2, "precedence": "FLASH", "class": "OPERATIONAL",
        "caveat": "R\u{202e}", "subject": subject,
        "body": "line one\nline two \u{202e}tpecca ton\u{202c}\u{1b}[31m",
        "form_text": "Report\n\tunit \u{1b}]0;owned\u{7}",
        "recipients": [{"member": "PH", "state": "refused", "detail": "refused: \u{1b}[1A\u{1b}[2K"}],
    });
    let url = fake_node(vec![
        ("/api/v1/inbox", serde_json::json!([message.clone()])),
        ("/api/v1/messages/abab", message.clone()),
        (
            "/api/v1/alarms",
            serde_json::json!([{"id": 1, "kind": "misconduct", "member": "CN", "raised_ms": 0,
                                 "detail": "CN says \u{202e}LAIRETAM\u{202c}", "acked_by": "li\u{7}"}]),
        ),
        (
            "/api/v1/lines",
            serde_json::json!([{"id": line, "scope": "ADMM-Plus", "members": ["PH", "C\nN"],
                                 "title": "PH\u{1b}]0;owned\u{7}"}]),
        ),
        (
            "/api/v1/peers",
            serde_json::json!([{"member": "CN", "queue_len": 0, "endpoint": "e\u{1b}[2J", "last_error": "x\r\ny"}]),
        ),
        (
            "/api/v1/decisions/abab",
            serde_json::json!({"id": id, "line": line, "proposer": "CN", "state": "open", "parties": ["PH", "CN"],
                                "text_sha256": "00", "text": "We agree\nto \u{2067}not\u{2069} withdraw",
                                "answers": [{"member": "PH", "concur": false, "over_this_text": true,
                                             "reason": "no\n\u{1b}[2J"}]}),
        ),
    ]);
    let unprintable = |c: char| (c.is_control() && !matches!(c, '\n' | '\t')) || ('\u{202a}'..='\u{202e}').contains(&c);
    let printed = |args: &[&str]| {
        let out = client(&url, "token", args);
        assert!(out.status.success(), "adi {args:?}: {}", out.stderr);
        assert!(!out.stdout.chars().any(unprintable), "adi {args:?} printed a control character: {:?}", out.stdout);
        out.stdout
    };
    let inbox = printed(&["inbox"]);
    assert_eq!(inbox.lines().count(), 1, "a subject forged a line: {inbox}");
    assert!(inbox.contains("\\u{1b}[2J\\u{1b}[Hstand by\\u{d}\\u{a}FLASH"), "{inbox}");
    let show = printed(&["show", "abab"]);
    // The body keeps its lines; all else unprintable is escaped.
    assert!(show.contains("line one\nline two \\u{202e}tpecca ton\\u{202c}\\u{1b}[31m\n"), "{show}");
    assert!(show.contains("Report\n\tunit \\u{1b}]0;owned\\u{7}\n"), "{show}");
    assert!(show.contains("caveat: R\\u{202e}") && show.contains("refused: \\u{1b}[1A"), "{show}");
    let alarms = printed(&["alarms"]);
    assert!(alarms.contains("acked by li\\u{7}") && alarms.contains("CN says \\u{202e}LAIRETAM"), "{alarms}");
    let lines = printed(&["lines"]);
    assert!(lines.contains("PH,C\\u{a}N") && lines.contains("PH\\u{1b}]0;owned\\u{7}"), "{lines}");
    let peers = printed(&["peers"]);
    assert!(peers.contains("e\\u{1b}[2J") && peers.contains("x\\u{d}\\u{a}y"), "{peers}");
    let decision = printed(&["decision", "show", "abab"]);
    assert!(decision.contains("We agree\nto \\u{2067}not\\u{2069} withdraw"), "{decision}");
    assert!(decision.contains("declined: no\\u{a}\\u{1b}[2J"), "{decision}");
    // JSON keeps the text exactly, everything unprintable written as a JSON escape.
    let json = client(&url, "token", &["inbox", "--json"]);
    assert!(!json.stdout.chars().any(unprintable), "{:?}", json.stdout);
    let v: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v[0]["subject"], subject);
}

/// The commit `git rev-parse --short=12 HEAD` names in `dir`, or `None` where that fails.
fn git_head(dir: &Path) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn version_names_the_release_and_the_commit_it_was_built_from() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // A checkout names its commit; a source tree without `.git` (a tarball), or where git cannot
    // say, names none.
    let commit = Some(root).filter(|r| r.join(".git").exists()).and_then(git_head);
    let commit = commit.unwrap_or_else(|| "unknown".to_string());
    let expected = format!("adi {} (commit {commit})", env!("CARGO_PKG_VERSION"));
    for flag in ["--version", "-V"] {
        let out = run(adi().arg(flag)).ok();
        assert_eq!(out.stdout.trim(), expected, "adi {flag}");
    }
}

/// The build script of the `adi` binary as cargo last built it.
fn build_script() -> PathBuf {
    let build = Path::new(env!("CARGO_BIN_EXE_adi")).parent().unwrap().join("build");
    let mut scripts: Vec<(std::time::SystemTime, PathBuf)> = fs::read_dir(&build)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|d| d.file_name().is_some_and(|n| n.to_string_lossy().starts_with("adi-")))
        .map(|d| d.join("build-script-build"))
        .filter(|f| f.exists())
        .map(|f| (fs::metadata(&f).unwrap().modified().unwrap(), f))
        .collect();
    scripts.sort();
    scripts.pop().unwrap_or_else(|| panic!("no build script of adi under {}", build.display())).1
}

#[test]
fn the_build_script_names_the_commit_of_a_checkout_and_unknown_without_one() {
    let script = build_script();
    let commit_of = |dir: &Path| {
        let out = run(Command::new(&script).env("CARGO_MANIFEST_DIR", dir).env_remove("ADI_BUILD_COMMIT")).ok();
        let line = out.stdout.lines().find_map(|l| l.strip_prefix("cargo:rustc-env=ADI_COMMIT="));
        (line.unwrap_or_else(|| panic!("no commit in:\n{}", out.stdout)).to_string(), out.stdout)
    };
    let tmp = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        run(Command::new("git")
            .arg("-C")
            .arg(tmp.path())
            .args(["-c", "user.name=adi", "-c", "user.email=adi@example.invalid"])
            .args(args))
        .ok()
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["commit", "-q", "--allow-empty", "-m", "first"]);
    // A checkout: its commit, and the script runs again when HEAD or its branch moves.
    let (commit, out) = commit_of(tmp.path());
    assert_eq!(Some(commit.clone()), git_head(tmp.path()));
    assert_eq!(commit.len(), 12);
    let head = tmp.path().join(".git/HEAD");
    let branch = tmp.path().join(".git/refs/heads/main");
    for watched in [head, branch] {
        assert!(out.contains(&format!("cargo:rerun-if-changed={}", watched.display())), "{out}");
    }
    // A source tree without `.git`, as unpacked from a tarball, even inside another checkout.
    let unpacked = tmp.path().join("adi-0.1.0");
    fs::create_dir(&unpacked).unwrap();
    assert_eq!(commit_of(&unpacked).0, "unknown");
    // A packager that knows the commit gives it.
    let out = run(Command::new(&script)
        .env("CARGO_MANIFEST_DIR", tmp.path())
        .env("ADI_BUILD_COMMIT", "0123456789ABCDEF0123"))
    .ok();
    assert!(out.stdout.contains("cargo:rustc-env=ADI_COMMIT=0123456789ab"), "{}", out.stdout);
}

/// The subcommands `adi --help` lists, but `help`.
fn subcommands() -> Vec<String> {
    let help = run(adi().arg("--help")).ok().stdout;
    let listed = help.split("Commands:\n").nth(1).expect("adi --help lists its commands");
    let names: Vec<String> = listed
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect();
    assert!(names.len() > 20, "too few commands in adi --help: {names:?}");
    names
}

#[test]
fn completion_scripts_name_every_subcommand_and_an_unknown_shell_is_refused() {
    let commands = subcommands();
    let bash = run(adi().args(["completions", "bash"])).ok().stdout;
    assert!(bash.contains("complete ") && bash.contains("_adi"), "not a bash completion script:\n{bash}");
    for name in commands.iter().chain(&["--config".to_string(), "--log-format".to_string()]) {
        assert!(bash.contains(name.as_str()), "the bash completion does not name {name}");
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let script = run(adi().args(["completions", shell])).ok().stdout;
        assert!(script.contains("serve") && script.contains("new-line"), "the {shell} completion:\n{script}");
    }
    let out = run(adi().args(["completions", "tcsh"])).fails();
    assert!(out.stderr.contains("tcsh") && out.stderr.contains("bash"), "{}", out.stderr);
}

#[test]
fn manual_pages_are_written_for_adi_and_every_subcommand() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("man/man1");
    run(adi().args(["man", "--out"]).arg(&out)).ok();
    let page = |name: &str| {
        let file = out.join(format!("{name}.1"));
        let text = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(text.starts_with(".TH") || text.starts_with(".ie"), "{} is not roff:\n{text}", file.display());
        text
    };
    let top = page("adi");
    for name in subcommands() {
        // Roff writes a hyphen as `\-`.
        assert!(top.contains(&name.replace('-', "\\-")), "adi.1 does not name {name}");
        page(&format!("adi-{name}"));
    }
    // A subcommand's page names its options, and the options every command takes.
    let serve = page("adi-serve");
    for option in ["config", "log-format"] {
        let roff = format!("--{option}").replace('-', "\\-");
        assert!(serve.contains(&roff), "adi-serve.1 does not name --{option}:\n{serve}");
    }
    // The commands within a command have pages too.
    for name in ["adi-roster-show", "adi-operator-add", "adi-amendment-check", "adi-decision-propose"] {
        page(name);
    }
    assert!(!out.join("adi-help.1").exists(), "a page for `help`");
    // Where the folder cannot be made, the command says which.
    let blocked = tmp.path().join("file");
    fs::write(&blocked, "").unwrap();
    let refused = run(adi().args(["man", "--out"]).arg(blocked.join("man1"))).fails();
    assert!(refused.stderr.contains("cannot make the folder") && refused.stderr.contains("man1"), "{}", refused.stderr);
}

/// `adi check-config --config FILE`.
fn check_config(config: &Path) -> Outcome {
    run(adi().arg("check-config").arg("--config").arg(config))
}

/// `adi check-config` on `config` must fail with one message naming each of `named`.
#[track_caller]
fn check_config_refuses(config: &Path, named: &[&str]) {
    let out = check_config(config).fails();
    assert!(out.stdout.is_empty(), "a refused configuration printed:\n{}", out.stdout);
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    for name in named {
        assert!(out.stderr.contains(name), "{name} is not named:\n{}", out.stderr);
    }
}

#[test]
fn check_config_passes_a_good_configuration_and_names_what_is_wrong_in_a_bad_one() {
    let tmp = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(tmp.path()).unwrap();

    // As `adi init` writes it: its member alone in its roster, nothing started, no store made.
    let (dir, config) = member_dir(&root, "init", "PH", &[]);
    let out = check_config(&config).ok();
    let summary = format!(
        "ok: {}: member PH (Philippines); listeners API http://127.0.0.1:7300, federation 127.0.0.1:7100; \
         store sqlite {}; 0 peers in the roster\n",
        config.display(),
        dir.join("node.db").display()
    );
    assert_eq!(out.stdout, summary);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    assert!(!dir.join("node.db").exists(), "the check made the store");

    // A demo network's configurations, each with its peers.
    let state = root.join("demo");
    let base = free_base_port();
    run(adi()
        .args(["demo", "--init-only", "--members", "PH,CN,VN", "--base-port", &base.to_string(), "--state"])
        .arg(&state))
    .ok();
    for m in read_demo(&state) {
        let out = check_config(&m.config).ok();
        assert!(out.stdout.starts_with(&format!("ok: {}: member {}", m.config.display(), m.code)), "{}", out.stdout);
        assert!(out.stdout.trim_end().ends_with("; 2 peers in the roster"), "{}", out.stdout);
    }

    // A syntax error: the file and the line.
    let (_, config) = member_dir(&root, "syntax", "PH", &[]);
    replace_in(&config, "member = \"PH\"", "member = \"PH");
    check_config_refuses(&config, &[&config.display().to_string(), "line 2"]);

    // An unknown key: the file, the key and its line.
    let (_, config) = member_dir(&root, "unknown", "PH", &[]);
    replace_in(&config, "member = \"PH\"", "member = \"PH\"\ncolour = \"blue\"");
    check_config_refuses(&config, &[&config.display().to_string(), "unknown field `colour`", "line 3"]);

    // A key file that is not there: the field that names it and the file.
    let (dir, config) = member_dir(&root, "no-key", "PH", &[]);
    fs::remove_file(dir.join("keys/signing.pem")).unwrap();
    check_config_refuses(&config, &["`signing_key`", &dir.join("keys/signing.pem").display().to_string()]);

    // A TLS key that is no key: loading the configuration alone does not read it.
    let (dir, config) = member_dir(&root, "bad-tls-key", "PH", &[]);
    fs::write(dir.join("keys/node.key"), "not a key\n").unwrap();
    check_config_refuses(&config, &["`tls_key`", "node.key"]);

    // A roster that does not list the member.
    let vn = read_demo(&state).into_iter().find(|m| m.code == "VN").unwrap();
    let roster = vn.config.parent().unwrap().join("roster.toml");
    let text = fs::read_to_string(&roster).unwrap();
    let entry = text.find("[[members]]\ncode = \"VN\"").expect("VN's entry in its roster");
    let next = text[entry + 1..].find("[[members]]").map_or(text.len(), |i| entry + 1 + i);
    fs::write(&roster, format!("{}{}", &text[..entry], &text[next..])).unwrap();
    check_config_refuses(&vn.config, &["`member`", "VN is not in the roster"]);

    // A database whose folder is not there.
    let (_, config) = member_dir(&root, "no-folder", "PH", &[]);
    replace_in(&config, "database = \"node.db\"", "database = \"gone/node.db\"");
    check_config_refuses(&config, &["`database`", "gone"]);
}

/// The example configuration the Debian package installs is one a node reads: every key in it
/// is a key of the configuration file.
#[test]
fn the_packaged_example_configuration_is_a_configuration() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/config.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let file: adi_node::config::ConfigFile =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(file.api.metrics_listen, None, "the metrics listener is off unless chosen");
    assert_eq!(file.database, "node.db");
}
