//! Crashes of real node processes in the middle of a stream: every message the sender's node
//! accepted arrives exactly once, in the sender's order, and after each SIGKILL the dead node's
//! database passes SQLite's `PRAGMA integrity_check`. The same holds with both nodes' stores on
//! PostgreSQL.

mod support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adi_node::client::Client;
use hyper::Method;
use serde_json::json;
use support::pg::PgDatabase;
use support::{check_exactly_once_in_order, init, kill_9, serve, store_on_postgres, wait_healthy, Member, Proc};

const MESSAGES: usize = 1000;
const SENDERS: usize = 4;
/// How far the stream may run past a crash point before it waits for the crashed node to be back,
/// so that every crash falls inside the stream however fast the machine is.
const HEADROOM: usize = 150;

/// Sends `MESSAGES` messages from several concurrent senders, recording the ids the node
/// accepted (answered 201 Created) and counting them as they come.
async fn stream(
    client: Client,
    line: String,
    accepted: Arc<Mutex<Vec<String>>>,
    counter: Arc<AtomicUsize>,
    allowed: Arc<AtomicUsize>,
) {
    let mut tasks = Vec::new();
    for s in 0..SENDERS {
        let client = client.clone();
        let line = line.clone();
        let accepted = accepted.clone();
        let counter = counter.clone();
        let allowed = allowed.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..MESSAGES / SENDERS {
                let body = json!({"precedence": "ROUTINE", "subject": format!("sender {s} message {i}"), "body": "x"});
                // A send may fail while the sender's node is down; it is then not accepted, and
                // the operator sends it again as a new message.
                let deadline = Instant::now() + Duration::from_secs(120);
                while counter.load(Ordering::SeqCst) >= allowed.load(Ordering::SeqCst) {
                    assert!(Instant::now() < deadline, "the stream was held for 120 s");
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                loop {
                    let path = format!("/api/v1/lines/{line}/messages");
                    match client.request(Method::POST, &path, Some(&body)).await {
                        Ok((status, v)) if status == 201 => {
                            accepted.lock().unwrap().push(v["id"].as_str().unwrap().to_string());
                            counter.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                        _ => {
                            assert!(Instant::now() < deadline, "the node did not accept a send for 120 s");
                            tokio::time::sleep(Duration::from_millis(20)).await
                        }
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

async fn wait_for(counter: &AtomicUsize, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while counter.load(Ordering::SeqCst) < n {
        assert!(Instant::now() < deadline, "stream stalled at {}", counter.load(Ordering::SeqCst));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn state_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("net");
    (dir, state)
}

async fn open_line(c: &Client) -> String {
    let v = c
        .call(Method::POST, "/api/v1/lines", Some(&json!({"members": ["PH", "CN"], "scope": "ADMM-Plus"})))
        .await
        .unwrap();
    v["id"].as_str().unwrap().to_string()
}

/// Two member processes, PH and CN, with a line between them and a stream running from PH.
struct Pair {
    _dir: tempfile::TempDir,
    members: Vec<Member>,
    log: PathBuf,
    procs: Vec<Option<Proc>>,
    clients: Vec<Client>,
    line: String,
    accepted: Arc<Mutex<Vec<String>>>,
    counter: Arc<AtomicUsize>,
    allowed: Arc<AtomicUsize>,
    /// The nodes' databases, when their stores are on PostgreSQL.
    postgres: Vec<PgDatabase>,
}

impl Pair {
    async fn start() -> Pair {
        Pair::start_on(false).await
    }

    /// As [`Pair::start`], each node's store on a PostgreSQL database of its own when `postgres`.
    async fn start_on(postgres: bool) -> Pair {
        let (dir, state) = state_dir();
        let members = init(&state, "PH,CN");
        let postgres: Vec<PgDatabase> =
            if postgres { members.iter().map(|_| PgDatabase::create()).collect() } else { Vec::new() };
        for (m, db) in members.iter().zip(&postgres) {
            store_on_postgres(m, &db.url());
        }
        let log = state.join("nodes.log");
        let procs = members.iter().map(|m| Some(serve(&m.config, &log, "warn"))).collect();
        for m in &members {
            wait_healthy(&m.url).await;
        }
        let clients: Vec<Client> = members.iter().map(Member::client).collect();
        let line = open_line(&clients[0]).await;
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let counter = Arc::new(AtomicUsize::new(0));
        let allowed = Arc::new(AtomicUsize::new(MESSAGES));
        Pair { _dir: dir, members, log, procs, clients, line, accepted, counter, allowed, postgres }
    }

    /// Kills member `i` with SIGKILL once `after` messages were accepted, and starts it again.
    async fn crash_and_restart(&mut self, i: usize, after: usize) {
        wait_for(&self.counter, after).await;
        kill_9(self.procs[i].take().unwrap());
        let at_kill = self.counter.load(Ordering::SeqCst);
        assert!(at_kill < MESSAGES, "the stream had ended ({at_kill} accepted) before the crash");
        // The database the dead process left is sound.
        if self.postgres.is_empty() {
            let config = adi_node::NodeConfig::load(std::path::Path::new(&self.members[i].config)).unwrap();
            let c = rusqlite::Connection::open(&config.database).unwrap();
            let check: String = c.query_row("PRAGMA integrity_check", [], |row| row.get(0)).unwrap();
            assert_eq!(check, "ok", "{} after a kill", config.database.display());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.procs[i] = Some(serve(&self.members[i].config, &self.log, "warn"));
        wait_healthy(&self.members[i].url).await;
    }

    /// Streams `MESSAGES` messages from PH while `crashes` (member, after how many) happen, then
    /// checks that CN holds every accepted message exactly once, in PH's order.
    async fn run(mut self, crashes: &[(usize, usize)]) {
        let hold = |k: usize| crashes.get(k).map_or(MESSAGES, |&(_, after)| after + HEADROOM);
        self.allowed.store(hold(0), Ordering::SeqCst);
        let streaming = tokio::spawn(stream(
            self.clients[0].clone(),
            self.line.clone(),
            self.accepted.clone(),
            self.counter.clone(),
            self.allowed.clone(),
        ));
        for (k, &(i, after)) in crashes.iter().enumerate() {
            self.crash_and_restart(i, after).await;
            self.allowed.store(hold(k + 1), Ordering::SeqCst);
        }
        streaming.await.unwrap();
        let accepted = self.accepted.lock().unwrap().clone();
        assert_eq!(accepted.len(), MESSAGES);
        check_exactly_once_in_order(&self.clients[0], &self.clients[1], &self.line, &accepted).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_killed_mid_stream_of_1000_messages_loses_and_duplicates_nothing() {
    Pair::start().await.run(&[(1, 250), (1, 600)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kills_of_either_node_mid_stream_lose_and_duplicate_nothing() {
    // Every 40 accepted messages one node or the other dies with SIGKILL and comes back.
    let crashes: Vec<(usize, usize)> = (1..=20).map(|k| (k % 2, k * 40)).collect();
    Pair::start().await.run(&crashes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_killed_mid_stream_keeps_every_message_it_accepted() {
    Pair::start().await.run(&[(0, 400)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_ten_kills_of_either_node_mid_stream_lose_and_duplicate_nothing() {
    let crashes: Vec<(usize, usize)> = (1..=10).map(|k| (k % 2, k * 80)).collect();
    Pair::start_on(true).await.run(&crashes).await;
}
