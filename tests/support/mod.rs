//! Real node processes for the tests of this package: start, kill with SIGKILL, wait for health,
//! and a demo network's configuration made by `adi demo --init-only`.

#![allow(dead_code)]

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use adi_node::client::Client;
use hyper::Method;
use serde_json::Value;

pub mod pg;

/// A node process, killed when dropped.
pub struct Proc {
    child: Child,
}

impl Proc {
    /// A process started otherwise (under a wrapper that execs it, say).
    pub fn from_child(child: Child) -> Proc {
        Proc { child }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`STOP`, `CONT`) to the process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill").args([&format!("-{name}"), &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -{name}");
    }

    /// Sends `STOP` and waits until the kernel shows the process stopped (state `T` in
    /// `/proc/PID/stat`), for at most `within`: from then on it answers nothing.
    pub fn pause(&self, within: Duration) {
        self.signal("STOP");
        let stat = format!("/proc/{}/stat", self.child.id());
        let deadline = Instant::now() + within;
        loop {
            let text = std::fs::read_to_string(&stat).unwrap_or_default();
            let state = text.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
            if matches!(state, Some('T' | 't')) {
                return;
            }
            assert!(Instant::now() < deadline, "the process did not stop within {within:?}: {text}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the process to end by itself, for at most `within`; its exit status, if it did.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `adi serve` with a config, its log (at `level`) appended to a file.
pub fn serve(config: &str, log: &Path, level: &str) -> Proc {
    serve_with_env(config, log, level, &[])
}

/// As [`serve`], with more environment variables.
pub fn serve_with_env(config: &str, log: &Path, level: &str, env: &[(&str, &str)]) -> Proc {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_adi"))
        .args(["serve", "--config", config])
        .envs(env.iter().copied())
        .env("RUST_LOG", level)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Proc { child }
}

/// SIGKILL: no shutdown path runs, as when the process dies with the power.
pub fn kill_9(p: Proc) {
    let pid = p.child.id().to_string();
    let status = Command::new("kill").args(["-9", &pid]).status().unwrap();
    assert!(status.success());
    drop(p);
}

/// Waits until a node's API answers its health check, for 30 s at most.
pub async fn wait_healthy(url: &str) {
    let c = Client::new(url, None, None).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok((status, _)) = c.request(Method::GET, "/healthz", None).await {
            if status == 200 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{url} did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One member of a demo network, as `demo.json` lists it.
#[derive(Clone)]
pub struct Member {
    pub code: String,
    pub url: String,
    pub token: String,
    pub config: String,
}

impl Member {
    pub fn client(&self) -> Client {
        Client::new(&self.url, Some(self.token.clone()), None).unwrap()
    }
}

/// Writes the configuration of a demo network of `members` (comma-separated codes) into `state`
/// on free loopback ports, and lists its members.
pub fn init(state: &Path, members: &str) -> Vec<Member> {
    let count = members.split(',').count() as u16;
    let base = adi_node::setup::free_port_run(2 * count).expect("free loopback ports");
    let out = Command::new(env!("CARGO_BIN_EXE_adi"))
        .args(["demo", "--init-only", "--members", members, "--base-port", &base.to_string(), "--state"])
        .arg(state)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let demo: Value = serde_json::from_str(&std::fs::read_to_string(state.join("demo.json")).unwrap()).unwrap();
    demo["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| Member {
            code: m["code"].as_str().unwrap().into(),
            url: m["api_url"].as_str().unwrap().into(),
            token: m["token"].as_str().unwrap().into(),
            config: m["config"].as_str().unwrap().into(),
        })
        .collect()
}

/// Polls `f` until it returns `Some`, or fails after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {within:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A demo network's nodes as processes, started and killed one by one; on a failure, each
/// node's log is printed.
pub struct Procs {
    pub dir: tempfile::TempDir,
    pub members: Vec<Member>,
    procs: Vec<Option<Proc>>,
    logs: std::path::PathBuf,
}

impl Drop for Procs {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.procs.iter_mut().for_each(|p| drop(p.take()));
            for m in &self.members {
                let log = std::fs::read_to_string(self.log(&m.code)).unwrap_or_default();
                eprintln!("----- {} node log -----\n{log}", m.code);
            }
        }
    }
}

impl Procs {
    /// The configuration of a network of `codes`, in that order; no node runs yet.
    pub fn init(codes: &[&str]) -> Procs {
        let dir = tempfile::tempdir().unwrap();
        let members = init(&dir.path().join("net"), &codes.join(","));
        assert_eq!(members.iter().map(|m| m.code.as_str()).collect::<Vec<_>>(), codes);
        let procs = members.iter().map(|_| None).collect();
        let logs = dir.path().join("logs");
        std::fs::create_dir(&logs).unwrap();
        Procs { dir, members, procs, logs }
    }

    pub fn index(&self, code: &str) -> usize {
        self.members.iter().position(|m| m.code == code).unwrap_or_else(|| panic!("no member {code}"))
    }

    pub fn member(&self, code: &str) -> &Member {
        &self.members[self.index(code)]
    }

    pub fn log(&self, code: &str) -> std::path::PathBuf {
        self.logs.join(format!("{code}.log"))
    }

    /// Starts a member's node (logging at `info`) without waiting for it.
    pub fn start(&mut self, code: &str) {
        self.start_with_env(code, &[]);
    }

    /// As [`Procs::start`], with more environment variables.
    pub fn start_with_env(&mut self, code: &str, env: &[(&str, &str)]) {
        let i = self.index(code);
        assert!(self.procs[i].is_none(), "{code} is running");
        self.procs[i] = Some(serve_with_env(&self.members[i].config, &self.log(code), "info", env));
    }

    /// SIGKILLs a member's node.
    pub fn kill(&mut self, code: &str) {
        let i = self.index(code);
        kill_9(self.procs[i].take().expect("running"));
    }

    pub fn client(&self, code: &str) -> Client {
        self.member(code).client()
    }
}

/// A line's messages as a node lists them, in the record's order.
pub async fn messages(c: &Client, line: &str) -> Vec<Value> {
    c.call(Method::GET, &format!("/api/v1/lines/{line}/messages?limit=10000"), None)
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Checks that every accepted id reached the receiver exactly once and in the sender's order.
pub async fn check_exactly_once_in_order(sender: &Client, receiver: &Client, line: &str, accepted: &[String]) {
    wait_delivered(sender, line).await;
    check_record(sender, receiver, line, accepted, None).await;
}

/// Like [`check_exactly_once_in_order`] for a line that carries messages both ways: each node's
/// accepted messages (`a` and `b`: its member code, client and accepted ids) reached the other
/// exactly once and in its order.
pub async fn check_exactly_once_in_order_both_ways(
    a: (&str, &Client, &[String]),
    b: (&str, &Client, &[String]),
    line: &str,
) {
    wait_delivered(a.1, line).await;
    wait_delivered(b.1, line).await;
    check_record(a.1, b.1, line, a.2, Some(a.0)).await;
    check_record(b.1, a.1, line, b.2, Some(b.0)).await;
}

/// Waits until `member`'s node holds `line` (a line another member opened reaches it with the
/// Welcome).
pub async fn wait_for_line(member: &Client, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while member.call(Method::GET, &format!("/api/v1/lines/{line}/messages"), None).await.is_err() {
        assert!(Instant::now() < deadline, "the node never held the line {line}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until every message the node sent on the line is delivered to each recipient.
pub async fn wait_delivered(sender: &Client, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let at_sender = messages(sender, line).await;
        let pending = at_sender
            .iter()
            .filter(|m| m["recipients"].as_array().unwrap().iter().any(|r| r["state"] != "delivered"))
            .count();
        if pending == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{pending} messages still undelivered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks the receiver's record of the sender's messages (those of member `from`, or every message
/// on the line when `None`) against what the sender accepted and holds.
async fn check_record(sender: &Client, receiver: &Client, line: &str, accepted: &[String], from: Option<&str>) {
    let of_sender = |m: &&Value| from.is_none_or(|code| m["sender"] == code);
    let at_receiver = messages(receiver, line).await;
    let ids: Vec<&str> = at_receiver.iter().filter(of_sender).map(|m| m["id"].as_str().unwrap()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "a message arrived twice");
    for id in accepted {
        assert!(unique.contains(id.as_str()), "accepted message {id} never arrived");
    }
    let seqs: Vec<u64> = at_receiver.iter().filter(of_sender).map(|m| m["seq"].as_u64().unwrap()).collect();
    // Link tests share the sender's sequence, so messages need not be consecutive; they must rise.
    let broken = seqs.windows(2).position(|w| w[0] >= w[1]);
    assert!(broken.is_none(), "the receiver's record breaks the sender's order at {broken:?}");
    // The receiver holds exactly what the sender's record holds.
    let at_sender: HashSet<String> =
        messages(sender, line).await.iter().filter(of_sender).map(|m| m["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(at_sender.len(), ids.len());
    assert!(ids.iter().all(|id| at_sender.contains(*id)));
}

#[allow(unused_imports)]
pub use adi_node::relay::Severable;

/// Points every endpoint of `member` in `at`'s roster at `addr` (each node has its own copy of
/// the roster).
pub fn reroute(procs: &Procs, at: &str, member: &str, addr: &str) {
    adi_node::relay::reroute(std::path::Path::new(&procs.member(at).config), member, addr).unwrap();
}

/// The first federation endpoint of `member` in `at`'s roster.
pub fn endpoint_of(procs: &Procs, at: &str, member: &str) -> String {
    adi_node::relay::endpoint_of(std::path::Path::new(&procs.member(at).config), member).unwrap()
}

/// Moves a member's database (with its write-ahead log) into `dir`, as `node.db`, and points its
/// configuration there; returns the new path. The node must not be running.
pub fn move_database(procs: &Procs, code: &str, dir: &Path) -> PathBuf {
    let config = PathBuf::from(&procs.member(code).config);
    let mut file: adi_node::config::ConfigFile = toml::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    let from = config.parent().unwrap().join(&file.database);
    let to = dir.join("node.db");
    for suffix in ["", "-wal", "-shm"] {
        let (from, to) = (with_suffix(&from, suffix), with_suffix(&to, suffix));
        if from.exists() {
            std::fs::copy(&from, &to).unwrap();
            std::fs::remove_file(&from).unwrap();
        }
    }
    file.database = to.display().to_string();
    std::fs::write(&config, toml::to_string_pretty(&file).unwrap()).unwrap();
    to
}

/// Points a member's configuration at a store on the PostgreSQL database `url` instead of its
/// SQLite file, and gives the member's duty officer the same token there. The node must not be
/// running.
pub fn store_on_postgres(member: &Member, url: &str) {
    let config = &member.config;
    let mut file: adi_node::config::ConfigFile = toml::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
    file.database = String::new();
    file.store =
        Some(adi_node::config::StoreSection { kind: "postgres".into(), url: Some(url.into()), password_file: None });
    std::fs::write(config, toml::to_string_pretty(&file).unwrap()).unwrap();
    let config = adi_node::NodeConfig::load(Path::new(config)).unwrap();
    let store = adi_node::state::open_store(&config).unwrap();
    let duty = adi_store::Operator {
        name: format!("duty-{}", member.code),
        role: adi_core::Role::Duty,
        created_ms: adi_node::clock::now_ms(),
    };
    adi_store::Store::add_operator(&store, &duty, adi_node::http::auth::token_hash(&member.token), None).unwrap();
}

/// Copies a member's folder to another, as to a new machine: everything but its SQLite database.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with("node.db") {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Fills the free space of a filesystem with one file, and keeps taking whatever is freed, until
/// stopped; the file is then removed.
pub struct Filler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Filler {
    pub fn start(path: PathBuf) -> Filler {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut file = std::fs::File::create(&path).unwrap();
                let chunk = vec![0u8; 64 * 1024];
                while !stop.load(Ordering::SeqCst) {
                    match file.write(&chunk) {
                        Ok(n) if n == chunk.len() => continue,
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::StorageFull => {}
                        Err(e) => panic!("{}: {e}", path.display()),
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                drop(file);
                std::fs::remove_file(&path).unwrap();
            })
        };
        Filler { stop, thread }
    }

    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap();
    }
}

/// A filesystem mounted for the test on a folder of its own, unmounted when dropped (lazily if
/// still busy).
pub struct Mount {
    _place: tempfile::TempDir,
    pub dir: PathBuf,
    /// The ext4 image, for one.
    image: Option<PathBuf>,
}

impl Mount {
    pub fn tmpfs(size: &str) -> Mount {
        let place = tempfile::tempdir().unwrap();
        let dir = place.path().join("disk");
        std::fs::create_dir(&dir).unwrap();
        let size = format!("size={size}");
        run_needing(
            Command::new("mount").args(["-t", "tmpfs", "-o", &size, "tmpfs"]).arg(&dir),
            "this test needs root to mount a tmpfs (mount -t tmpfs)",
        );
        Mount { _place: place, dir, image: None }
    }

    pub fn ext4() -> Mount {
        let place = tempfile::tempdir().unwrap();
        let dir = place.path().join("disk");
        std::fs::create_dir(&dir).unwrap();
        let image = place.path().join("disk.ext4");
        std::fs::File::create(&image).unwrap().set_len(64 << 20).unwrap();
        run_needing(
            Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image),
            "this test needs mkfs.ext4 (e2fsprogs) to make an ext4 image",
        );
        let mount = Mount { _place: place, dir, image: Some(image) };
        mount.mount_image();
        mount
    }

    fn mount_image(&self) {
        let image = self.image.as_ref().unwrap();
        run_needing(
            Command::new("mount").args(["-o", "loop,errors=remount-ro"]).arg(image).arg(&self.dir),
            "this test needs root and a loop device to mount an ext4 image",
        );
    }

    /// The block device under the mount, as `/sys/fs/ext4` names it (`loop0`).
    pub fn device(&self) -> String {
        let out = Command::new("findmnt").args(["-n", "-o", "SOURCE"]).arg(&self.dir).output().unwrap();
        let source = String::from_utf8(out.stdout).unwrap();
        source.trim().rsplit('/').next().unwrap().to_string()
    }

    /// Unmounts the image once nothing holds it open, checks it and mounts it again, read-write.
    pub async fn repair(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new("umount").arg(&self.dir).output().unwrap();
            if out.status.success() {
                break;
            }
            let why = String::from_utf8_lossy(&out.stderr);
            assert!(Instant::now() < deadline, "cannot unmount {}: {why}", self.dir.display());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let image = self.image.as_ref().unwrap();
        let status = Command::new("e2fsck").args(["-f", "-y"]).arg(image).output().unwrap().status;
        // 0: clean; 1 and 2: errors corrected.
        assert!(status.code().is_some_and(|c| c <= 2), "e2fsck: {status}");
        self.mount_image();
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.dir).status().is_ok_and(|s| s.success());
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// Runs a command that must succeed; `needs` says what it takes when it does not.
pub fn run_needing(command: &mut Command, needs: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("{needs}: {command:?}: {e}"));
    assert!(out.status.success(), "{needs}: {command:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
}

/// Sends `n` ROUTINE messages on `line` (subjects `<tag> 0`, `<tag> 1`, …), each accepted; their
/// ids.
pub async fn send_routine(c: &Client, line: &str, tag: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let body = serde_json::json!({"precedence": "ROUTINE", "subject": format!("{tag} {i}"), "body": "x"});
        let v = c.call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&body)).await.unwrap();
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    ids
}
