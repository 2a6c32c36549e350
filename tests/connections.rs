//! Nobody who can reach a node's ports takes it down by holding connections: a node under an
//! open-file limit of 1,024, with 1,100 idle or trickling connections on its API port and 1,100
//! on its federation port from one address, keeps answering its health check from another,
//! keeps taking and delivering FLASH messages both ways, and closes what idles past the header
//! timeout.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::{json, Value};
use support::{eventually, init, serve, wait_healthy, Proc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Connections the attacker opens on each port.
const FLOOD: usize = 1_100;
/// The header timeout the attacked node runs with, short so that the test sees it act.
const HEADER_TIMEOUT_MS: u64 = 2_000;
/// The body timeout of the node whose credentials are tried, short so that the test sees it act.
const BODY_TIMEOUT_MS: u64 = 1_000;
/// The most memory the attacked node may hold while flooded (resident set, MiB).
const RSS_MIB_MAX: u64 = 200;

/// `adi serve` under an open-file limit of 1,024, soft and hard, so that it cannot raise it.
fn serve_with_few_files(config: &str, log: &Path) -> Proc {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    let child = Command::new("prlimit")
        .args(["--nofile=1024:1024", env!("CARGO_BIN_EXE_adi"), "serve", "--config", config])
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("prlimit (util-linux) runs");
    Proc::from_child(child)
}

/// One connection from 127.0.0.2, another address than the members' and the operator's.
async fn connect_from_elsewhere(addr: &str) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind("127.0.0.2:0".parse().unwrap()).ok()?;
    tokio::time::timeout(Duration::from_secs(2), socket.connect(addr.parse().unwrap())).await.ok()?.ok()
}

fn resident_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    kib / 1024
}

/// The `adi serve` process under `prlimit`: prlimit execs it, so it is the same process.
fn open_files_limit(pid: u32) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
    limits.lines().find(|l| l.starts_with("Max open files")).unwrap_or_default().to_string()
}

async fn send_flash(c: &adi_node::client::Client, line: &str, subject: &str) -> String {
    let body = json!({"precedence": "FLASH", "subject": subject, "body": "Respond at once."});
    let v = c.call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&body)).await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

async fn delivered(c: &adi_node::client::Client, id: &str, within: Duration) -> Duration {
    let started = Instant::now();
    eventually(within, &format!("FLASH {id} delivered"), || async {
        let m: Value = c.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.ok()?;
        m["recipients"].as_array()?.iter().all(|r| r["state"] == "delivered").then_some(())
    })
    .await;
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_idle_connections_leave_a_node_under_1024_open_files_answering_and_delivering_flash() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("net");
    let members = init(&state, "PH,CN");
    let (ph, cn) = (&members[0], &members[1]);
    let config = Path::new(&ph.config);
    let mut file: toml::Value = toml::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
    let table = file.as_table_mut().unwrap();
    let limits = table.entry("limits").or_insert_with(|| toml::Value::Table(Default::default()));
    limits.as_table_mut().unwrap().insert("http_header_timeout_ms".into(), (HEADER_TIMEOUT_MS as i64).into());
    std::fs::write(config, toml::to_string(&file).unwrap()).unwrap();
    let log = dir.path().join("nodes.log");
    let ph_proc = serve_with_few_files(&ph.config, &log);
    let _cn_proc = serve(&cn.config, &log, "warn");
    wait_healthy(&ph.url).await;
    wait_healthy(&cn.url).await;
    let pid = ph_proc.id();
    let limit = open_files_limit(pid);
    assert!(limit.split_whitespace().filter(|w| *w == "1024").count() == 2, "{limit}");

    let (phc, cnc) = (ph.client(), cn.client());
    let v =
        phc.call(Method::POST, "/api/v1/lines", Some(&json!({"members": ["PH", "CN"], "scope": "ADMM-Plus"}))).await;
    let line = v.unwrap()["id"].as_str().unwrap().to_string();
    let first = send_flash(&phc, &line, "Before the flood").await;
    let calm = delivered(&phc, &first, Duration::from_secs(30)).await;

    // The flood: 1,100 connections on each port from 127.0.0.2, most idle, every tenth sending
    // one byte of a request now and then.
    let api = ph.url.trim_start_matches("http://").trim_end_matches('/').to_string();
    let fed = match &file["federation"]["listen"] {
        toml::Value::Array(a) => a[0].as_str().unwrap().to_string(),
        other => other.as_str().unwrap().to_string(),
    };
    let mut held = Vec::with_capacity(2 * FLOOD);
    for target in [&api, &fed] {
        for _ in 0..FLOOD {
            if let Some(c) = connect_from_elsewhere(target).await {
                held.push(c);
            }
        }
    }
    let opened = held.len();
    let trickle = tokio::spawn(async move {
        for round in 0..30u32 {
            for (i, c) in held.iter_mut().enumerate() {
                if i % 10 == 0 {
                    let _ = c.write_all(if round == 0 { b"G" } else { b"E" }).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        held
    });
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The node answers its health check, and FLASH goes both ways.
    let probe = adi_node::client::Client::new(&ph.url, None, None).unwrap();
    let started = Instant::now();
    let (status, _) = probe.request(Method::GET, "/healthz", None).await.expect("the health check answers");
    let health = started.elapsed();
    assert_eq!(status, 200);
    let out = send_flash(&phc, &line, "During the flood, from PH").await;
    let out_took = delivered(&phc, &out, Duration::from_secs(30)).await;
    let back = send_flash(&cnc, &line, "During the flood, from CN").await;
    let back_took = delivered(&cnc, &back, Duration::from_secs(30)).await;
    let rss = resident_mib(pid);
    println!(
        "{opened} connections opened from 127.0.0.2; health check in {health:?}; FLASH PH→CN in {out_took:?} \
         (before the flood {calm:?}), CN→PH in {back_took:?}; PH resident {rss} MiB"
    );
    assert!(rss <= RSS_MIB_MAX, "PH holds {rss} MiB under the flood");

    // What the node admitted from that address idles past the header timeout and is closed:
    // every held connection reads its end within the timeout and a margin.
    let mut held = trickle.await.unwrap();
    let deadline = Instant::now() + Duration::from_millis(HEADER_TIMEOUT_MS + 5_000);
    let mut open = 0;
    for c in held.iter_mut() {
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        let mut byte = [0u8; 1];
        match tokio::time::timeout(left, c.read(&mut byte)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            Ok(Ok(_)) => {} // an error answer (408 or 400) before the close
            Err(_) => open += 1,
        }
    }
    assert_eq!(open, 0, "{open} connections still open past the header timeout");
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!log_text.contains("Too many open files"), "the node ran out of files:\n{log_text}");
    let alarms = phc.call(Method::GET, "/api/v1/alarms", None).await.unwrap();
    let storage: Vec<&Value> =
        alarms.as_array().expect("a list of alarms").iter().filter(|a| a["kind"] == "storage").collect();
    assert!(storage.is_empty(), "storage alarms under the flood: {storage:?}");
}

/// The peak resident memory of a process (MiB).
fn peak_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    kib / 1024
}

/// A console sign-in sent from `from` (a loopback address) over a raw connection; the status.
async fn sign_in_from(from: &str, api: &str, name: &str, password: &str) -> u16 {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let mut c = socket.connect(api.parse().unwrap()).await.unwrap();
    let body = json!({"name": name, "password": password}).to_string();
    let request = format!(
        "POST /console/sign-in HTTP/1.1\r\nHost: {api}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    c.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    c.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// The most memory a node may reach while 64 sign-ins arrive at once (peak resident, MiB).
const SIGN_IN_PEAK_MIB_MAX: u64 = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_sign_ins_at_once_from_sixty_four_addresses_keep_memory_bounded_and_lock_nobody_out() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("net");
    let members = init(&state, "PH,CN");
    let ph = &members[0];
    let mut add = Command::new(env!("CARGO_BIN_EXE_adi"))
        .args(["operator", "add", "--config", &ph.config, "--name", "duty1", "--role", "duty", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(add.stdin.as_mut().unwrap(), b"correct horse battery staple\n").unwrap();
    assert!(add.wait().unwrap().success());
    let log = dir.path().join("nodes.log");
    let proc = serve(&ph.config, &log, "warn");
    wait_healthy(&ph.url).await;
    let pid = proc.id();
    let before = peak_mib(pid);
    let api = ph.url.trim_start_matches("http://").trim_end_matches('/').to_string();

    // 64 attempts at once, each from its own address and at its own name: no bound per address
    // or per name holds any back, so only the bound on checks at once keeps the memory down.
    let started = Instant::now();
    let attempts: Vec<_> = (0..64)
        .map(|i| {
            let api = api.clone();
            tokio::spawn(async move {
                sign_in_from(&format!("127.0.1.{}", i + 1), &api, &format!("guess-{i}"), "not the password").await
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for a in attempts {
        statuses.push(a.await.unwrap());
    }
    let took = started.elapsed();
    let peak = peak_mib(pid);
    let refused = statuses.iter().filter(|s| **s == 401).count();
    let busy = statuses.iter().filter(|s| **s == 503).count();
    println!(
        "64 sign-ins at once: {refused} refused as wrong, {busy} answered busy, in {took:?}; PH peak resident \
         {before} MiB before, {peak} MiB after"
    );
    assert_eq!(refused + busy, 64, "{statuses:?}");
    assert!(refused > 0, "some were checked: {statuses:?}");
    assert!(peak <= SIGN_IN_PEAK_MIB_MAX, "peak {peak} MiB");

    // Failures at duty1's name from an attacker's address delay it, but never lock it out: once
    // the delay has passed, the right password signs in, from anywhere.
    for _ in 0..8 {
        sign_in_from("127.0.2.1", &api, "duty1", "wrong password!").await;
    }
    assert_eq!(sign_in_from("127.0.0.1", &api, "duty1", "correct horse battery staple").await, 429);
    let signed_in = eventually(Duration::from_secs(70), "duty1 signs in after the delay", || {
        let api = api.clone();
        async move {
            let status = sign_in_from("127.0.0.1", &api, "duty1", "correct horse battery staple").await;
            if status != 429 {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            None
        }
    })
    .await;
    assert_eq!(signed_in, 200);
}

/// A request sent from `from` (a loopback address) over a raw connection, with `header` if any;
/// the answer's status.
async fn request_from(from: &str, api: &str, path: &str, header: Option<&str>) -> u16 {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let mut c = socket.connect(api.parse().unwrap()).await.unwrap();
    let extra = header.map(|h| format!("{h}\r\n")).unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {api}\r\n{extra}Connection: close\r\n\r\n");
    c.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    c.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_credential_are_bounded_per_address_and_operators_keep_working() {
    const BOUND: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let members = init(&dir.path().join("net"), "PH,CN");
    let ph = &members[0];
    let mut file: toml::Value = toml::from_str(&std::fs::read_to_string(&ph.config).unwrap()).unwrap();
    let limits = file.as_table_mut().unwrap().entry("limits").or_insert_with(|| toml::Value::Table(Default::default()));
    limits.as_table_mut().unwrap().insert("unauthenticated_per_address_per_minute_max".into(), (BOUND as i64).into());
    limits.as_table_mut().unwrap().insert("http_body_timeout_ms".into(), (BODY_TIMEOUT_MS as i64).into());
    std::fs::write(&ph.config, toml::to_string(&file).unwrap()).unwrap();
    let _node = serve(&ph.config, &dir.path().join("node.log"), "warn");
    wait_healthy(&ph.url).await;
    let api = ph.url.trim_start_matches("http://").trim_end_matches('/').to_string();

    // Without a credential: the first BOUND of a minute are answered, the rest refused at once.
    let mut statuses = Vec::new();
    for _ in 0..BOUND + 10 {
        statuses.push(request_from("127.0.0.3", &api, "/api/v1/lines", None).await);
    }
    assert!(statuses[..BOUND].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[BOUND..].iter().all(|s| *s == 429), "{statuses:?}");
    // Wrong tokens are answered, and count: past the bound, that address's requests without a
    // credential are refused too.
    for _ in 0..BOUND {
        assert_eq!(
            request_from("127.0.0.4", &api, "/api/v1/lines", Some("Authorization: Bearer adi_wrong")).await,
            401
        );
    }
    assert_eq!(request_from("127.0.0.4", &api, "/healthz", None).await, 429);
    // An operator with its token keeps working from any address, the flooded ones included.
    let bearer = format!("Authorization: Bearer {}", ph.token);
    for from in ["127.0.0.1", "127.0.0.3", "127.0.0.4"] {
        assert_eq!(request_from(from, &api, "/api/v1/lines", Some(&bearer)).await, 200, "{from}");
    }
    assert_eq!(request_from("127.0.0.5", &api, "/healthz", None).await, 200, "another address is not held back");

    // A body that trickles in slower than `http_body_timeout_ms` is answered 408 and its
    // connection closed, even from an operator.
    let mut c = TcpStream::connect(&api).await.unwrap();
    let head = format!(
        "POST /api/v1/lines HTTP/1.1\r\nHost: {api}\r\n{bearer}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"members\""
    );
    let started = Instant::now();
    c.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the connection is closed, not held");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"body_timeout\""), "{answer}");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(BODY_TIMEOUT_MS - 100), "answered after {took:?}");
}
