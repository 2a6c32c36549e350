//! A node whose database disk fills up, or whose database turns read-only, in the middle of a
//! stream both ways: it refuses writes with 503 naming the cause, keeps answering reads, shows a
//! `storage` alarm, and leaves what its peer sends queued at the peer; once its database can be
//! written again it takes writes by itself, without a restart. A node started on a full disk
//! comes up the same way: answering, naming the fault, refusing writes, and recovering alone. Every message either node accepted
//! arrives exactly once and in order, the alarm is recorded raised and cleared, and the database
//! passes `PRAGMA integrity_check`.
//!
//! Real `adi` processes over mutual TLS on loopback; CN's database lives on a filesystem the test
//! mounts (which needs root), PH's on the ordinary disk:
//!
//! - a small tmpfs, which a filler file fills up and then gives back;
//! - an ext4 image mounted with `errors=remount-ro`, which the kernel turns read-only under the open
//!   database when told of an error, as a failing disk would have it. Linux refuses
//!   `mount -o remount,ro` while a file is open for writing, so that is not how a live database
//!   turns read-only; and ext4 turned read-only by an error stays so until it is unmounted, checked
//!   and mounted again, which the node allows because it closes its database files meanwhile.

mod support;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adi_node::client::Client;
use adi_node::config::ConfigFile;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use support::{check_exactly_once_in_order_both_ways, eventually, move_database, wait_healthy, Filler, Mount, Procs};

const WAIT: Duration = Duration::from_secs(30);
/// How often each node's operators send.
const SEND_EVERY: Duration = Duration::from_millis(40);
/// Messages each node accepts before the fault, and while it lasts (at the healthy node).
const BEFORE: usize = 20;
const DURING: usize = 15;
/// How long the fault lasts at least: several of CN's storage probes (every 1 s) fail meanwhile.
const HOLD_MS: u64 = 2_500;
/// The line of CN's storage alarm, which concerns no line.
const NO_LINE: &str = "00000000000000000000000000000000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_keeps_everything_and_recovers_without_restart() {
    let disk = Mount::tmpfs("8m");
    let run = Run::start(&disk).await;
    run.stream_until_each_accepted(BEFORE).await;

    // The disk fills up, and stays full: the filler takes whatever is freed.
    let filler = Filler::start(disk.dir.join("filler"));
    let refusal = run.wait_for_refusal().await;
    assert_eq!(refusal["error"], "storage_full", "{refusal}");
    assert!(refusal["message"].as_str().unwrap().contains("the node's database disk is full"), "{refusal}");
    run.check_refusing("storage_full", "disk is full").await;
    run.hold("storage_full").await;

    // Space returns: CN takes writes again by itself.
    filler.stop();
    let recovered = run.wait_for_writes_again().await;
    eprintln!("full disk: CN took writes again {} ms after space returned", recovered.as_millis());
    run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_turned_read_only_refuses_writes_keeps_everything_and_recovers_once_writable() {
    let disk = Mount::ext4();
    let run = Run::start(&disk).await;
    run.stream_until_each_accepted(BEFORE).await;

    // The filesystem meets an error: the kernel turns it read-only under the open database.
    let trigger = format!("/sys/fs/ext4/{}/trigger_fs_error", disk.device());
    std::fs::write(&trigger, "the disk failed").unwrap_or_else(|e| panic!("{trigger}: {e}"));
    let refusal = run.wait_for_refusal().await;
    assert_eq!(refusal["error"], "storage_read_only", "{refusal}");
    assert!(refusal["message"].as_str().unwrap().contains("the node's database is read-only"), "{refusal}");
    run.check_refusing("storage_read_only", "read-only").await;
    run.hold("storage_read_only").await;

    // Repaired: unmounted (CN has let go of its files), checked, and mounted again.
    disk.repair().await;
    let recovered = run.wait_for_writes_again().await;
    eprintln!(
        "read-only database: CN took writes again {} ms after its filesystem was mounted again",
        recovered.as_millis()
    );
    run.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_on_a_full_disk_refuses_writes_and_recovers_without_restart() {
    let disk = Mount::tmpfs("8m");
    let mut net = Procs::init(&["PH", "CN"]);
    move_database(&net, "CN", &disk.dir);
    // CN has run once (its database exists, with its KeyPackages), and is down.
    net.start("CN");
    wait_healthy(&net.member("CN").url).await;
    net.kill("CN");
    let filler = Filler::start(disk.dir.join("filler"));
    let probe = disk.dir.join("probe");
    eventually(WAIT, "the disk to fill", || async { std::fs::write(&probe, [0u8; 65536]).is_err().then_some(()) })
        .await;

    // CN comes up on the full disk: it answers, names the fault, and refuses writes.
    net.start("CN");
    let cn = net.client("CN");
    let health = eventually(WAIT, "CN to answer on a full disk", || async {
        let health = cn.call(Method::GET, "/healthz", None).await.ok()?;
        (health["status"] == "storage_failed").then_some(health)
    })
    .await;
    assert_eq!(health["storage"]["error"], "storage_full", "{health}");
    let alarms = cn.call(Method::GET, "/api/v1/alarms", None).await.unwrap();
    assert!(alarms.as_array().unwrap().iter().any(|a| a["kind"] == "storage"), "CN shows its storage alarm: {alarms}");
    net.start("PH");
    wait_healthy(&net.member("PH").url).await;
    let body = json!({"members": ["CN", "PH"], "scope": "ADMM-Plus"});
    let (status, refusal) = cn.request(Method::POST, "/api/v1/lines", Some(&body)).await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{refusal}");
    assert_eq!(refusal["error"], "storage_full", "{refusal}");

    // Space returns: CN takes writes again by itself, and opens a line to PH.
    filler.stop();
    let _ = std::fs::remove_file(&probe);
    eventually(WAIT, "CN to take writes again", || async {
        let health = cn.call(Method::GET, "/healthz", None).await.ok()?;
        (health == json!({"status": "ok", "member": "CN"})).then_some(())
    })
    .await;
    let line = cn.call(Method::POST, "/api/v1/lines", Some(&body)).await.unwrap();
    let line = line["id"].as_str().unwrap().to_string();
    let ph = net.client("PH");
    eventually(WAIT, "PH to hold CN's line", || async {
        ph.call(Method::GET, &format!("/api/v1/lines/{line}"), None).await.ok().map(|_| ())
    })
    .await;
}

/// PH and CN with a line between them, CN's database on `disk`, both nodes' operators sending,
/// and CN's event stream read.
struct Run {
    net: Procs,
    line: String,
    ph: Sender,
    cn: Sender,
    events: Events,
    database: PathBuf,
}

impl Run {
    async fn start(disk: &Mount) -> Run {
        let mut net = Procs::init(&["PH", "CN"]);
        for code in ["PH", "CN"] {
            let config = PathBuf::from(&net.member(code).config);
            let mut file: ConfigFile = toml::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
            // Retries at most 1 s apart, so that a backlog drains soon after its peer recovers.
            file.limits.retry_delay_ms_max = Some(1_000);
            std::fs::write(&config, toml::to_string_pretty(&file).unwrap()).unwrap();
        }
        let database = move_database(&net, "CN", &disk.dir);
        for code in ["PH", "CN"] {
            net.start(code);
            wait_healthy(&net.member(code).url).await;
        }
        let body = json!({"members": ["PH", "CN"], "scope": "ADMM-Plus"});
        let line = net.client("PH").call(Method::POST, "/api/v1/lines", Some(&body)).await.unwrap();
        let line = line["id"].as_str().unwrap().to_string();
        let cn = net.client("CN");
        eventually(WAIT, "CN to hold the line", || async {
            cn.call(Method::GET, &format!("/api/v1/lines/{line}"), None).await.ok().map(|_| ())
        })
        .await;
        let events = Events::start(net.client("CN"));
        let ph = Sender::start(net.client("PH"), &line, "PH");
        let cn = Sender::start(net.client("CN"), &line, "CN");
        Run { net, line, ph, cn, events, database }
    }

    async fn stream_until_each_accepted(&self, n: usize) {
        eventually(WAIT, "both nodes to accept messages", || async {
            (self.ph.accepted().len() >= n && self.cn.accepted().len() >= n).then_some(())
        })
        .await;
    }

    /// The first send CN refused with 503.
    async fn wait_for_refusal(&self) -> Value {
        eventually(WAIT, "CN to refuse a send with 503", || async {
            self.cn.refusals().into_iter().find(|(status, _)| *status == StatusCode::SERVICE_UNAVAILABLE).map(|r| r.1)
        })
        .await
    }

    /// While CN refuses writes: its health and alarms name the cause, reads go on, and PH keeps
    /// accepting messages, which stay queued for CN, none refused.
    async fn check_refusing(&self, code: &str, cause: &str) {
        let cn = self.net.client("CN");
        let health = cn.call(Method::GET, "/healthz", None).await.unwrap();
        assert_eq!(health["status"], "storage_failed", "{health}");
        assert_eq!(health["storage"]["error"], code, "{health}");
        let alarms = cn.call(Method::GET, "/api/v1/alarms", None).await.unwrap();
        let alarm = alarms.as_array().unwrap().iter().find(|a| a["kind"] == "storage");
        let alarm = alarm.unwrap_or_else(|| panic!("no storage alarm: {alarms}"));
        assert!(alarm["detail"].as_str().unwrap().contains(cause), "{alarm}");
        assert!(alarm["cleared_ms"].is_null(), "{alarm}");
        let record = support::messages(&cn, &self.line).await;
        let held: HashSet<&str> = record.iter().map(|m| m["id"].as_str().unwrap()).collect();
        let accepted = self.cn.accepted();
        assert!(accepted.iter().all(|id| held.contains(id.as_str())), "CN's record reads while it refuses writes");

        let ph = self.net.client("PH");
        let queued_from = self.ph.accepted().len();
        eventually(WAIT, "PH to accept messages while CN refuses writes", || async {
            (self.ph.accepted().len() >= queued_from + DURING).then_some(())
        })
        .await;
        eventually(WAIT, "PH's messages to wait in its queue for CN, with the reason", || async {
            let peers = ph.call(Method::GET, "/api/v1/peers", None).await.ok()?;
            let to_cn = peers.as_array()?.iter().find(|p| p["member"] == "CN")?.clone();
            let why = to_cn["last_error"].as_str().unwrap_or_default();
            (to_cn["queue_len"].as_u64()? > 0 && why.contains("503") && why.contains(code)).then_some(())
        })
        .await;
        let mine = support::messages(&ph, &self.line).await;
        let refused = mine.iter().flat_map(|m| m["recipients"].as_array().unwrap()).any(|r| r["state"] == "refused");
        assert!(!refused, "PH's messages wait for CN; none is refused");
        assert!(
            self.cn
                .refusals()
                .iter()
                .all(|(status, v)| *status == StatusCode::SERVICE_UNAVAILABLE && v["error"] == code),
            "CN refuses every send the same way: {:?}",
            self.cn.refusals()
        );
    }

    /// Lets the fault last until it is `HOLD_MS` old: CN's probes fail meanwhile, and it goes on
    /// refusing, for the same cause.
    async fn hold(&self, code: &str) {
        let cn = self.net.client("CN");
        loop {
            let health = cn.call(Method::GET, "/healthz", None).await.unwrap();
            assert_eq!(health["storage"]["error"], code, "{health}");
            let since = health["storage"]["since_ms"].as_u64().unwrap();
            if adi_node::clock::now_ms().saturating_sub(since) >= HOLD_MS {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until CN accepts a send again and says so; returns how long that took.
    async fn wait_for_writes_again(&self) -> Duration {
        let since = Instant::now();
        let before = self.cn.accepted().len();
        let took = eventually(WAIT, "CN to take writes again", || async {
            (self.cn.accepted().len() > before).then(|| since.elapsed())
        })
        .await;
        let health = self.net.client("CN").call(Method::GET, "/healthz", None).await.unwrap();
        assert_eq!(health, json!({"status": "ok", "member": "CN"}));
        took
    }

    /// Streams a little longer, stops, and checks the record, the alarm and the database.
    async fn finish(mut self) {
        let (ph_at, cn_at) = (self.ph.accepted().len(), self.cn.accepted().len());
        eventually(WAIT, "both nodes to go on accepting", || async {
            (self.ph.accepted().len() >= ph_at + 10 && self.cn.accepted().len() >= cn_at + 10).then_some(())
        })
        .await;
        let ph_accepted = self.ph.stop().await;
        let cn_accepted = self.cn.stop().await;
        let (ph, cn) = (self.net.client("PH"), self.net.client("CN"));
        check_exactly_once_in_order_both_ways(("PH", &ph, &ph_accepted), ("CN", &cn, &cn_accepted), &self.line).await;

        let all = cn.call(Method::GET, "/api/v1/alarms?all=true", None).await.unwrap();
        let storage: Vec<&Value> = all.as_array().unwrap().iter().filter(|a| a["kind"] == "storage").collect();
        assert!(!storage.is_empty(), "the storage alarm is recorded: {all}");
        for alarm in storage {
            let (raised, cleared) = (alarm["raised_ms"].as_u64().unwrap(), alarm["cleared_ms"].as_u64());
            assert!(cleared.is_some_and(|c| c >= raised), "the storage alarm is recorded cleared: {alarm}");
            assert!(alarm["clear_reason"].as_str().unwrap().contains("takes writes again"), "{alarm}");
        }
        let open = cn.call(Method::GET, "/api/v1/alarms", None).await.unwrap();
        assert!(!open.as_array().unwrap().iter().any(|a| a["kind"] == "storage"), "{open}");

        // The event stream told the alarm while it was held in memory (no alarm id yet), and then
        // its record, raised and cleared.
        let deadline = Instant::now() + WAIT;
        let recorded = loop {
            let seen = self.events.storage();
            let raised = seen.iter().find(|e| e["state"] == "raised" && e["alarm"].is_u64());
            if raised.is_some_and(|r| seen.iter().any(|e| e["state"] == "cleared" && e["alarm"] == r["alarm"])) {
                break seen;
            }
            assert!(Instant::now() < deadline, "the storage alarm's events, raised and cleared: {seen:?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        assert!(recorded.iter().any(|e| e["state"] == "raised" && e["alarm"].is_null()), "{recorded:?}");
        self.events.task.abort();

        self.net.kill("PH");
        self.net.kill("CN");
        let c = rusqlite::Connection::open(&self.database).unwrap();
        let check: String = c.query_row("PRAGMA integrity_check", [], |row| row.get(0)).unwrap();
        assert_eq!(check, "ok", "{}", self.database.display());
    }
}

/// CN's event stream, read as a client reads it: reconnecting from the last event seen whenever it
/// ends (it does when the node cannot read its database for a moment). Keeps the storage alarm's
/// events.
struct Events {
    storage: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Events {
    fn start(client: Client) -> Events {
        let storage = Arc::new(Mutex::new(Vec::new()));
        let task = {
            let storage = storage.clone();
            tokio::spawn(async move {
                let mut last: Option<String> = None;
                loop {
                    let path = match &last {
                        Some(id) => format!("/api/v1/events?after={id}"),
                        None => "/api/v1/events".to_string(),
                    };
                    if let Ok(mut stream) = client.stream_lines(&path, &[]).await {
                        while let Ok(Some(line)) = stream.next_line().await {
                            let Some(data) = line.strip_prefix("data:") else { continue };
                            let event: Value = serde_json::from_str(data.trim()).unwrap();
                            last = Some(event["id"].to_string());
                            if event["kind"] == "alarm" && event["line"] == NO_LINE {
                                storage.lock().unwrap().push(event);
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        Events { storage, task }
    }

    fn storage(&self) -> Vec<Value> {
        self.storage.lock().unwrap().clone()
    }
}

/// One node's operators sending on the line every [`SEND_EVERY`] until stopped: the ids it
/// accepted (201 Created), and every other answer.
struct Sender {
    accepted: Arc<Mutex<Vec<String>>>,
    refusals: Arc<Mutex<Vec<(StatusCode, Value)>>>,
    stop: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Sender {
    fn start(client: Client, line: &str, who: &str) -> Sender {
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let refusals = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (path, who) = (format!("/api/v1/lines/{line}/messages"), who.to_string());
        let task = {
            let (accepted, refusals, stop) = (accepted.clone(), refusals.clone(), stop.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    let body = json!({"precedence": "ROUTINE", "subject": format!("{who} report {i}"), "body": "x"});
                    match client.request(Method::POST, &path, Some(&body)).await {
                        Ok((StatusCode::CREATED, v)) => {
                            accepted.lock().unwrap().push(v["id"].as_str().unwrap().to_string())
                        }
                        Ok(other) => refusals.lock().unwrap().push(other),
                        Err(e) => panic!("{who}'s node did not answer a send: {e:#}"),
                    }
                    i += 1;
                    tokio::time::sleep(SEND_EVERY).await;
                }
            })
        };
        Sender { accepted, refusals, stop, task: Some(task) }
    }

    fn accepted(&self) -> Vec<String> {
        self.accepted.lock().unwrap().clone()
    }

    fn refusals(&self) -> Vec<(StatusCode, Value)> {
        self.refusals.lock().unwrap().clone()
    }

    async fn stop(&mut self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
        self.accepted()
    }
}
