//! A member run as an active/standby pair: two `adi serve` of CN on one PostgreSQL store, the
//! roster listing both nodes' federation endpoints. While PH streams 1,000 messages to CN and CN's
//! duty officer sends to PH through both nodes' addresses, the active node is killed with SIGKILL
//! ten times and paused with SIGSTOP past its lease five times. Every message either side accepted
//! arrives exactly once and in order; a paused former active, resumed, commits nothing (the send
//! it was holding never lands) and ends; and every take-over falls within the bound, its time
//! printed (p50 and max).

#[allow(dead_code)]
#[path = "../crates/node/tests/common/browser.rs"]
mod browser;
mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adi_node::client::Client;
use hyper::Method;
use serde_json::{json, Value};
use support::pg::PgDatabase;
use support::{check_exactly_once_in_order_both_ways, serve, store_on_postgres, wait_healthy, Proc, Procs};

const MESSAGES: usize = 1000;
/// CN's own sends, through the pair's two addresses.
const REPLIES: usize = 150;
const KILLS: usize = 10;
const PAUSES: usize = 5;
/// The take-over bound the pair promises (`takeover_ms`, with the default lease).
fn takeover_bound() -> Duration {
    Duration::from_millis(adi_node::config::RuntimeLimits::default().takeover_ms)
}

/// One node of CN's pair.
struct PairNode {
    config: PathBuf,
    url: String,
    proc: Option<Proc>,
}

/// Sets up CN's second node on a machine of its own (a folder with copies of the first's keys,
/// roster and configuration, its own ports, the same store), gives both nodes their `[pair]`
/// sections, and lists both federation endpoints for CN in every member's copy of the roster.
fn make_pair(procs: &Procs, db: &PgDatabase) -> Vec<(PathBuf, String)> {
    let cn = procs.member("CN");
    store_on_postgres(cn, &db.url());
    let first = PathBuf::from(&cn.config);
    let mut file: adi_node::config::ConfigFile = toml::from_str(&std::fs::read_to_string(&first).unwrap()).unwrap();
    let base = adi_node::setup::free_port_run(2).expect("free loopback ports");
    let (fed_b, api_b) = (format!("127.0.0.1:{base}"), format!("127.0.0.1:{}", base + 1));
    let fed_a = file.federation.listen[0].clone();
    let url_a = cn.url.clone();
    let url_b = format!("http://{api_b}");
    for m in &procs.members {
        set_endpoints(Path::new(&m.config), "CN", &[fed_a.clone(), fed_b.clone()]);
    }
    file.pair = Some(adi_node::config::PairSection {
        name: "cn-a".into(),
        api_url: url_a.clone(),
        other_api_url: Some(url_b.clone()),
    });
    std::fs::write(&first, toml::to_string_pretty(&file).unwrap()).unwrap();
    let machine_b = procs.dir.path().join("CN-b");
    support::copy_tree(first.parent().unwrap(), &machine_b);
    file.pair = Some(adi_node::config::PairSection {
        name: "cn-b".into(),
        api_url: url_b.clone(),
        other_api_url: Some(url_a.clone()),
    });
    file.api.listen = api_b;
    file.federation.listen = vec![fed_b.clone()];
    let second = machine_b.join(first.file_name().unwrap());
    std::fs::write(&second, toml::to_string_pretty(&file).unwrap()).unwrap();
    vec![(first, url_a), (second, url_b)]
}

fn set_endpoints(config: &Path, member: &str, endpoints: &[String]) {
    let file: adi_node::config::ConfigFile = toml::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
    let path = config.parent().unwrap().join(&file.roster);
    let mut roster = adi_wire::files::RosterFile::from_toml(&std::fs::read_to_string(&path).unwrap()).unwrap();
    roster.members.iter_mut().find(|m| m.code == member).unwrap().endpoints = endpoints.to_vec();
    std::fs::write(&path, roster.to_toml()).unwrap();
}

/// PH, and CN as a pair, with a line between them.
struct Network {
    procs: Procs,
    _db: PgDatabase,
    log: PathBuf,
    nodes: Vec<PairNode>,
    ph: Client,
    /// CN's duty officer, given both nodes' addresses.
    cn: Client,
    line: String,
}

impl Network {
    async fn start() -> Network {
        let mut procs = Procs::init(&["PH", "CN"]);
        let db = PgDatabase::create();
        let configs = make_pair(&procs, &db);
        let log = procs.dir.path().join("logs").join("CN-pair.log");
        procs.start("PH");
        wait_healthy(&procs.member("PH").url).await;
        let nodes: Vec<PairNode> = configs
            .into_iter()
            .map(|(config, url)| {
                let proc = Some(serve(config.to_str().unwrap(), &log, "info"));
                PairNode { config, url, proc }
            })
            .collect();
        active(&nodes, Duration::from_secs(30), &log).await;
        let ph = procs.client("PH");
        let both = format!("{},{}", nodes[0].url, nodes[1].url);
        let cn = Client::new(&both, Some(procs.member("CN").token.clone()), None).unwrap();
        let members = json!({"members": ["PH", "CN"], "scope": "ADMM-Plus"});
        let line =
            ph.call(Method::POST, "/api/v1/lines", Some(&members)).await.unwrap()["id"].as_str().unwrap().to_string();
        support::wait_for_line(&cn, &line).await;
        Network { procs, _db: db, log, nodes, ph, cn, line }
    }
}

/// Whether the node at `url` answers as the active one, soon (a paused node never answers).
async fn is_active(url: &str) -> bool {
    let c = Client::new(url, None, None).unwrap();
    let asked = tokio::time::timeout(Duration::from_millis(300), c.request(Method::GET, "/healthz", None)).await;
    matches!(asked, Ok(Ok((status, _))) if status == 200)
}

/// The index of the active node of the pair, waiting until one is.
async fn active(nodes: &[PairNode], within: Duration, log: &Path) -> usize {
    let deadline = Instant::now() + within;
    loop {
        for (i, n) in nodes.iter().enumerate() {
            if n.proc.is_some() && is_active(&n.url).await {
                return i;
            }
        }
        if Instant::now() >= deadline {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(60).collect();
            eprintln!("----- the pair's log, last lines -----");
            tail.iter().rev().for_each(|l| eprintln!("{l}"));
        }
        assert!(Instant::now() < deadline, "no node of the pair became active within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends `count` messages on `line`, one after another, each sent again as a new message until a
/// node accepts it (201); records the accepted ids and counts them. It holds while the count has
/// reached `allowed`, so that the faults fall inside the stream however fast the machine is.
async fn stream(
    client: Client,
    line: String,
    count: usize,
    tag: &'static str,
    accepted: Arc<Mutex<Vec<String>>>,
    counter: Arc<AtomicUsize>,
    allowed: Arc<AtomicUsize>,
) {
    for i in 0..count {
        let held = Instant::now();
        while counter.load(Ordering::SeqCst) >= allowed.load(Ordering::SeqCst) {
            assert!(held.elapsed() < Duration::from_secs(180), "the {tag} stream was held for 180 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let body = json!({"precedence": "ROUTINE", "subject": format!("{tag} {i}"), "body": "x"});
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match client.request(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&body)).await {
                Ok((status, v)) if status == 201 => {
                    accepted.lock().unwrap().push(v["id"].as_str().unwrap().to_string());
                    counter.fetch_add(1, Ordering::SeqCst);
                    break;
                }
                _ => {
                    assert!(Instant::now() < deadline, "no node took {tag} {i} for 120 s");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
}

async fn wait_for(counter: &AtomicUsize, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while counter.load(Ordering::SeqCst) < n {
        assert!(Instant::now() < deadline, "the stream stalled at {}", counter.load(Ordering::SeqCst));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn subjects(messages: &[Value]) -> Vec<String> {
    messages.iter().filter_map(|m| m["subject"].as_str().map(String::from)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_survives_ten_kills_and_five_pauses_of_its_active_node_losing_and_duplicating_nothing() {
    let Network { procs, _db, log, mut nodes, ph, cn, line } = Network::start().await;
    let (ph_accepted, cn_accepted) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new())));
    let (ph_count, cn_count) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    // Ten kills and five pauses, spread over the stream: a pause every third fault. Each stream
    // runs one share ahead of the faults.
    let faults = KILLS + PAUSES;
    let share = |n: usize, k: usize| (k * n / (faults + 1)).min(n);
    let ph_allowed = Arc::new(AtomicUsize::new(share(MESSAGES, 1)));
    let cn_allowed = Arc::new(AtomicUsize::new(share(REPLIES, 1)));
    let ph_stream = tokio::spawn(stream(
        ph.clone(),
        line.clone(),
        MESSAGES,
        "PH",
        ph_accepted.clone(),
        ph_count.clone(),
        ph_allowed.clone(),
    ));
    let cn_stream = tokio::spawn(stream(
        cn.clone(),
        line.clone(),
        REPLIES,
        "CN",
        cn_accepted.clone(),
        cn_count.clone(),
        cn_allowed.clone(),
    ));
    let mut takeovers: Vec<Duration> = Vec::new();
    for k in 0..faults {
        wait_for(&ph_count, share(MESSAGES, k + 1)).await;
        wait_for(&cn_count, share(REPLIES, k + 1)).await;
        let was = active(&nodes, Duration::from_secs(30), &log).await;
        let other = 1 - was;
        let pause = k % 3 == 2;
        eprintln!(
            "fault {k}: {} node {was} after {} messages",
            if pause { "pause" } else { "kill" },
            ph_count.load(Ordering::SeqCst)
        );
        let at = Instant::now();
        if pause {
            let stopped = nodes[was].proc.as_ref().unwrap();
            stopped.pause(Duration::from_secs(5));
            // A send the paused node takes off the wire only once it runs again.
            let held = Client::new(&nodes[was].url, Some(procs.member("CN").token.clone()), None).unwrap();
            let subject = format!("held by a paused node {k}");
            let body = json!({"precedence": "ROUTINE", "subject": subject, "body": "must not land"});
            let path = format!("/api/v1/lines/{line}/messages");
            let held_send = tokio::spawn(async move { held.request(Method::POST, &path, Some(&body)).await });
            let now = active(&nodes, takeover_bound() * 2, &log).await;
            assert_eq!(now, other);
            takeovers.push(at.elapsed());
            // Resumed, the former active finds its lease gone: what it held is refused, and it ends.
            nodes[was].proc.as_ref().unwrap().signal("CONT");
            let answer = held_send.await.unwrap();
            assert!(!matches!(answer, Ok((status, _)) if status == 201), "a fenced node accepted a send: {answer:?}");
            let status = nodes[was].proc.as_mut().unwrap().wait_exit(Duration::from_secs(10));
            assert!(status.is_some_and(|s| !s.success()), "the resumed former active did not stop: {status:?}");
            let log_text = std::fs::read_to_string(&log).unwrap();
            assert!(log_text.contains("lost the lease of its pair"), "no word of the lost lease in the log");
            nodes[was].proc = None;
            procs_check_absent(&ph, &cn, &line, &subject).await;
        } else {
            support::kill_9(nodes[was].proc.take().unwrap());
            let now = active(&nodes, takeover_bound() * 2, &log).await;
            assert_eq!(now, other);
            takeovers.push(at.elapsed());
        }
        // Its supervisor starts it again: the standby now.
        nodes[was].proc = Some(serve(nodes[was].config.to_str().unwrap(), &log, "info"));
        ph_allowed.store(share(MESSAGES, k + 2), Ordering::SeqCst);
        cn_allowed.store(share(REPLIES, k + 2), Ordering::SeqCst);
    }
    ph_allowed.store(MESSAGES, Ordering::SeqCst);
    cn_allowed.store(REPLIES, Ordering::SeqCst);
    ph_stream.await.unwrap();
    cn_stream.await.unwrap();

    let ph_accepted = ph_accepted.lock().unwrap().clone();
    let cn_accepted = cn_accepted.lock().unwrap().clone();
    assert_eq!((ph_accepted.len(), cn_accepted.len()), (MESSAGES, REPLIES));
    check_exactly_once_in_order_both_ways(("PH", &ph, &ph_accepted), ("CN", &cn, &cn_accepted), &line).await;

    takeovers.sort();
    let p50 = takeovers[takeovers.len() / 2];
    let max = *takeovers.last().unwrap();
    println!(
        "take-over after {KILLS} SIGKILLs and {PAUSES} pauses of the active node: p50 {} ms, max {} ms (bound {} ms)",
        p50.as_millis(),
        max.as_millis(),
        takeover_bound().as_millis()
    );
    assert!(max <= takeover_bound(), "a take-over took {max:?}, beyond {:?}", takeover_bound());
}

/// The send a paused node held is nowhere: not at the pair, not at PH.
async fn procs_check_absent(ph: &Client, cn: &Client, line: &str, subject: &str) {
    for c in [ph, cn] {
        let messages = support::messages(c, line).await;
        assert!(!subjects(&messages).iter().any(|s| s == subject), "'{subject}' landed");
    }
}

/// What the active node had running goes on at the node that takes over: the deadline of an
/// IMMEDIATE message CN sent (15 s in the demo's discipline) comes due there and raises its
/// alarm, and its link tests (every 30 s) go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_and_link_tests_go_on_at_the_node_that_takes_over() {
    let Network { procs, _db, log, mut nodes, ph: _, cn, line } = Network::start().await;
    let sent = cn
        .call(
            Method::POST,
            &format!("/api/v1/lines/{line}/messages"),
            Some(&json!({"precedence": "IMMEDIATE", "subject": "answer within 15 s", "body": "x"})),
        )
        .await
        .unwrap();
    let id = sent["id"].as_str().unwrap().to_string();
    let was = active(&nodes, Duration::from_secs(5), &log).await;
    let killed_ms = adi_node::clock::now_ms();
    support::kill_9(nodes[was].proc.take().unwrap());
    active(&nodes, takeover_bound() * 2, &log).await;

    let deadline = Instant::now() + Duration::from_secs(60);
    let alarm = loop {
        let alarms = cn.call(Method::GET, "/api/v1/alarms", None).await.unwrap();
        let found = alarms
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["kind"] == "unacknowledged" && a["message"] == id.as_str())
            .cloned();
        if let Some(a) = found {
            break a;
        }
        assert!(Instant::now() < deadline, "no unacknowledged alarm for {id} at the node that took over: {alarms}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(alarm["raised_ms"].as_u64().unwrap() > killed_ms, "the alarm was raised before the take-over: {alarm}");

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let links = cn.call(Method::GET, "/api/v1/links", None).await.unwrap();
        let tested = links
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["member"] == "PH" && l["last_ok_ms"].as_u64().is_some_and(|t| t > killed_ms));
        if tested {
            break;
        }
        assert!(Instant::now() < deadline, "no link test answered since the take-over: {links}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    drop(procs);
}

/// The console follows the pair: a duty officer signed in on the active node's page sees, once
/// that node dies, the page move to the other node by itself (the session kept, as both nodes read
/// it from the store), and a FLASH from PH ring there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_moves_to_the_node_that_takes_over() {
    const PASSWORD: &str = "the other watch of the pair";
    let Network { procs, _db, log, mut nodes, ph, cn: _, line } = Network::start().await;
    let config = adi_node::NodeConfig::load(&nodes[0].config).unwrap();
    let store = adi_node::state::open_store(&config).unwrap();
    adi_node::setup::set_password(&store, "duty-CN", PASSWORD).unwrap();
    drop(store);
    let was = active(&nodes, Duration::from_secs(5), &log).await;
    let other_origin = nodes[1 - was].url.clone();

    let page = browser::Browser::start().await;
    // The standby sends a console page to the active node, unless the page comes from there: that
    // one waits on the standby for the take-over.
    page.go(&format!("{other_origin}/console")).await;
    let url = page.url().await;
    assert!(url.starts_with(&nodes[was].url), "the standby kept the page at {url}");
    page.go(&format!("{other_origin}/console?from={}", nodes[was].url)).await;
    let url = page.url().await;
    assert!(url.starts_with(&other_origin), "the standby sent the page back, to {url}");
    assert_eq!(page.title().await, "ADI: taking over");
    // The active node goes on renewing its lease, so no take-over comes: once the take-over's
    // bound has passed, the waiting page offers the active node's console.
    assert!(!page.visible("#active").await, "the active node is offered before the bound has passed");
    page.until(
        "const a = document.getElementById('active'); return !!a && !a.hidden;",
        "the waiting page never offered the active node",
    )
    .await;
    assert_eq!(page.attribute("#active a", "href").await, Some(format!("{}/console", nodes[was].url)));
    page.screenshot("console-pair-waiting").await;
    page.sign_in(&format!("{}/console", nodes[was].url), "duty-CN", PASSWORD).await;
    support::kill_9(nodes[was].proc.take().unwrap());
    active(&nodes, takeover_bound() * 2, &log).await;

    // The page may be between documents, or on the standby's waiting page, which has no `#who`:
    // what cannot be read yet is read again.
    let moved = format!(
        "const w = document.getElementById('who'); \
         return location.href.startsWith({}) && !!w && w.textContent.includes('duty-CN');",
        json!(other_origin)
    );
    page.until(&moved, "the page did not move to the other node, signed in, after its node died").await;
    let body = json!({"precedence": "FLASH", "subject": "after the take-over", "body": "x"});
    ph.call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&body)).await.unwrap();
    page.wait_text("#inbox", "after the take-over").await;
    page.screenshot("console-pair-take-over").await;
    page.quit().await;
    drop(procs);
}

/// A key rotation made on the active node reaches the other node through the store: once the
/// active node has moved to the member's new keys and dies, the other node, whose own key files
/// are the old ones, takes over with the new keys, and the line carries both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_made_on_the_active_node_goes_on_at_the_node_that_takes_over() {
    let Network { procs, _db, log, mut nodes, ph, cn, line } = Network::start().await;
    let config = adi_node::NodeConfig::load(&nodes[0].config).unwrap();
    let store = adi_node::state::open_store(&config).unwrap();
    let token = adi_node::setup::add_operator(&store, "admin-CN", "admin").unwrap();
    drop(store);
    let both = format!("{},{}", nodes[0].url, nodes[1].url);
    let admin = Client::new(&both, Some(token), None).unwrap();
    let was = active(&nodes, Duration::from_secs(5), &log).await;
    let other = 1 - was;
    let key_files: Vec<PathBuf> = nodes.iter().map(|n| n.config.parent().unwrap().join("keys/signing.pem")).collect();
    let keys = |i: usize| std::fs::read(&key_files[i]).unwrap();
    let old = keys(other);
    admin.call(Method::POST, "/api/v1/roster/rotate", None).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let shown = admin.call(Method::GET, "/api/v1/roster", None).await.unwrap();
        if shown["number"] == 2 && shown["rotation"].is_null() {
            break;
        }
        assert!(Instant::now() < deadline, "the rotation did not end: {shown}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_ne!(keys(was), old, "the active node did not move to new keys");
    assert_eq!(keys(other), old, "the other node's files changed before it took over");
    // Copies reach the store at the active node's next renewal.
    let store = adi_node::state::open_store(&config).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !store.key_copies().unwrap().iter().any(|(name, bytes)| name == "signing" && *bytes == keys(was)) {
        assert!(Instant::now() < deadline, "the store never held a copy of the new signing key");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(store);

    support::kill_9(nodes[was].proc.take().unwrap());
    assert_eq!(active(&nodes, takeover_bound() * 2, &log).await, other);
    assert_ne!(keys(other), old, "the node that took over kept the keys the roster retired");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("took this member's key files from the store"), "{text}");

    let to_ph = json!({"precedence": "PRIORITY", "subject": "under the new key", "body": "x"});
    let sent = cn.call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&to_ph)).await.unwrap();
    let to_cn = json!({"precedence": "PRIORITY", "subject": "answer", "body": "x"});
    let answered = ph.call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&to_cn)).await.unwrap();
    let ids = |v: &Value| vec![v["id"].as_str().unwrap().to_string()];
    check_exactly_once_in_order_both_ways(("CN", &cn, &ids(&sent)), ("PH", &ph, &ids(&answered)), &line).await;
    let alarms = ph.call(Method::GET, "/api/v1/alarms", None).await.unwrap();
    assert!(
        !alarms
            .as_array()
            .unwrap()
            .iter()
            .any(|a| ["tamper", "misconduct", "undecryptable"].contains(&a["kind"].as_str().unwrap_or(""))),
        "{alarms}"
    );
    drop(procs);
}
