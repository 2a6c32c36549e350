//! The workloads: what operators do, driven through each node's own API, and what the nodes' event
//! streams say arrived.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adi_node::client::Client;
use anyhow::{anyhow, bail};
use hyper::Method;
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// How long the benchmark waits for one event (a FLASH ringing, an acknowledgement coming back).
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a backlog may take to drain before the run fails.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(600);
/// Arrivals kept while waiting for a particular one; older ones are dropped.
const PENDING_MAX: usize = 100_000;
/// How often queues are read while waiting for them to drain.
const POLL: Duration = Duration::from_millis(20);
/// How often a node's resident memory is read during a workload.
const MEMORY_POLL: Duration = Duration::from_millis(100);
/// Bytes of each message body in the throughput workloads: a short report.
pub const BODY_BYTES: usize = 200;

/// One event from a node's stream, stamped when the benchmark read it.
#[derive(Clone, Debug)]
pub struct Arrival {
    pub kind: String,
    pub message: Option<String>,
    pub state: Option<String>,
    pub at: Instant,
}

/// A node's live event stream.
pub struct Feed {
    rx: mpsc::UnboundedReceiver<Arrival>,
    pending: VecDeque<Arrival>,
}

impl Feed {
    /// Opens the stream from now on.
    pub async fn open(client: &Client) -> anyhow::Result<Feed> {
        let mut stream = client.stream_lines("/api/v1/events", &[]).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut event = crate::cmd::watch::SseEvent::default();
            while let Ok(Some(line)) = stream.next_line().await {
                let Some(e) = event.line(&line) else { continue };
                let at = Instant::now();
                let Ok(v) = serde_json::from_str::<Value>(&e.data.join("\n")) else { continue };
                let text = |k: &str| v[k].as_str().map(str::to_string);
                let arrival = Arrival { kind: e.kind.clone(), message: text("message"), state: text("state"), at };
                if tx.send(arrival).is_err() {
                    return;
                }
            }
        });
        Ok(Feed { rx, pending: VecDeque::new() })
    }

    /// Waits for the first arrival that `wanted` accepts, within `within`.
    pub async fn wait(&mut self, within: Duration, wanted: impl Fn(&Arrival) -> bool) -> anyhow::Result<Arrival> {
        if let Some(i) = self.pending.iter().position(&wanted) {
            return Ok(self.pending.remove(i).unwrap_or_else(|| unreachable!()));
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let a = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .map_err(|_| anyhow!("no such event within {within:?}"))?
                .ok_or_else(|| anyhow!("the event stream ended"))?;
            if wanted(&a) {
                return Ok(a);
            }
            if self.pending.len() >= PENDING_MAX {
                self.pending.pop_front();
            }
            self.pending.push_back(a);
        }
    }

    /// Every arrival so far, without waiting.
    pub fn drain(&mut self) -> Vec<Arrival> {
        let mut out: Vec<Arrival> = self.pending.drain(..).collect();
        while let Ok(a) = self.rx.try_recv() {
            out.push(a);
        }
        out
    }
}

/// Opens a line and returns its id.
pub async fn open_line(client: &Client, members: [&str; 2]) -> anyhow::Result<String> {
    let v =
        client.call(Method::POST, "/api/v1/lines", Some(&json!({"members": members, "scope": "ADMM-Plus"}))).await?;
    v["id"].as_str().map(str::to_string).ok_or_else(|| anyhow!("the new line has no id: {v}"))
}

/// One FLASH's timings, in ms from the API call at the sender.
pub struct FlashTiming {
    /// To the sender's node answering the API call: committed there.
    pub sent_ms: f64,
    /// To the message event on the recipient's stream: the desk rings.
    pub ring_ms: f64,
    /// To the acknowledgement state on the sender's stream, the recipient having acknowledged
    /// at once.
    pub loop_ms: f64,
}

/// Sends one FLASH from `a` to `b` on `line`, acknowledges it at `b` as soon as it rings, and
/// times both.
pub async fn flash(
    a: &Client,
    a_feed: &mut Feed,
    b: &Client,
    b_feed: &mut Feed,
    line: &str,
    i: usize,
) -> anyhow::Result<FlashTiming> {
    let body = json!({"precedence": "FLASH", "subject": format!("bench FLASH {i}"),
                      "body": "Unplanned encounter at sea: keep safe distance."});
    let started = Instant::now();
    let v = a.call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&body)).await?;
    let sent = Instant::now();
    let id = v["id"].as_str().ok_or_else(|| anyhow!("no message id in {v}"))?.to_string();
    let rang = b_feed.wait(EVENT_TIMEOUT, |e| e.kind == "message" && e.message.as_deref() == Some(id.as_str())).await?;
    b.call(Method::POST, &format!("/api/v1/messages/{id}/ack"), None).await?;
    let acked = a_feed
        .wait(EVENT_TIMEOUT, |e| {
            e.kind == "state" && e.message.as_deref() == Some(id.as_str()) && e.state.as_deref() == Some("acknowledged")
        })
        .await?;
    let ms = |t: Instant| t.duration_since(started).as_secs_f64() * 1000.0;
    Ok(FlashTiming { sent_ms: ms(sent), ring_ms: ms(rang.at), loop_ms: ms(acked.at) })
}

/// Where a flood sends: a node's client and the lines it sends on, in turn.
#[derive(Clone)]
pub struct Sender {
    pub client: Client,
    pub lines: Vec<String>,
}

/// Sends ROUTINE messages that need no acknowledgement, `per_sender` requests in flight at each
/// sender, until `deadline` or until `max` messages in all; returns the ids each sender's node
/// accepted (committed), by sender.
pub async fn flood(
    senders: &[Sender],
    per_sender: usize,
    deadline: Instant,
    max: usize,
    progress: impl Fn(usize) + Send + Sync + 'static,
) -> anyhow::Result<Vec<Vec<String>>> {
    let next = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicUsize::new(0));
    let progress = Arc::new(progress);
    let body: String = "R".repeat(BODY_BYTES);
    let mut tasks = tokio::task::JoinSet::new();
    let accepted: Vec<Arc<Mutex<Vec<String>>>> = senders.iter().map(|_| Arc::default()).collect();
    for (s, sender) in senders.iter().enumerate() {
        for k in 0..per_sender {
            let (sender, next, sent, progress, body) =
                (sender.clone(), next.clone(), sent.clone(), progress.clone(), body.clone());
            let accepted = accepted[s].clone();
            tasks.spawn(async move {
                let mut turn = k;
                loop {
                    if Instant::now() >= deadline {
                        return Ok(());
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= max {
                        return Ok(());
                    }
                    let line = &sender.lines[turn % sender.lines.len()];
                    turn += per_sender;
                    let msg = json!({"precedence": "ROUTINE", "ack_required": false,
                                     "subject": format!("bench {i}"), "body": body});
                    let v =
                        sender.client.call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&msg)).await?;
                    let id = v["id"].as_str().ok_or_else(|| anyhow!("no message id in {v}"))?;
                    accepted.lock().map_err(|_| anyhow!("poisoned"))?.push(id.to_string());
                    let n = sent.fetch_add(1, Ordering::SeqCst) + 1;
                    progress(n);
                }
            });
        }
    }
    while let Some(r) = tasks.join_next().await {
        let r: anyhow::Result<()> = r.map_err(|e| anyhow!("a sending task failed: {e}"))?;
        r?;
    }
    accepted.iter().map(|a| Ok(std::mem::take(&mut *a.lock().map_err(|_| anyhow!("poisoned"))?))).collect()
}

/// What a drain observed.
pub struct Drained {
    /// When the last expected message arrived at its recipient.
    pub last_arrival: Instant,
    /// When the first expected message arrived at its recipient.
    pub first_arrival: Option<Instant>,
    /// When every sender's queue was seen empty (every delivery confirmed to its sender).
    pub confirmed: Instant,
}

/// Waits until every id in `expected` has arrived at the recipients' streams (`feeds`), once
/// each, and every sender's queue (`senders`) is empty; a message arriving twice is an error.
pub async fn drain(
    feeds: &mut [&mut Feed],
    senders: &[&Client],
    expected: &HashSet<String>,
    progress: impl Fn(usize),
) -> anyhow::Result<Drained> {
    let started = Instant::now();
    let mut arrived: HashSet<String> = HashSet::new();
    let (mut first, mut last) = (None, None);
    let mut shown = 0;
    loop {
        for feed in feeds.iter_mut() {
            for a in feed.drain() {
                let Some(m) = a.message.filter(|m| a.kind == "message" && expected.contains(m)) else { continue };
                if !arrived.insert(m.clone()) {
                    bail!("message {m} arrived twice");
                }
                first = Some(first.map_or(a.at, |f: Instant| f.min(a.at)));
                last = Some(last.map_or(a.at, |l: Instant| l.max(a.at)));
            }
        }
        if arrived.len() >= shown + expected.len().div_ceil(10).max(1) {
            shown = arrived.len();
            progress(shown);
        }
        if arrived.len() == expected.len() {
            let mut empty = true;
            for c in senders {
                empty &= super::net::queue_lengths(c).await?.values().all(|&n| n == 0);
            }
            if empty {
                let confirmed = Instant::now();
                let last = last.unwrap_or(confirmed);
                return Ok(Drained { last_arrival: last, first_arrival: first, confirmed });
            }
        }
        if started.elapsed() > DRAIN_TIMEOUT {
            bail!("{} of {} messages arrived within {DRAIN_TIMEOUT:?}", arrived.len(), expected.len());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until every node lists every line it should, by line id.
pub async fn wait_lines(
    clients: &[&Client],
    wanted: &[HashSet<String>],
    progress: impl Fn(usize),
) -> anyhow::Result<()> {
    let started = Instant::now();
    let total: usize = wanted.iter().map(HashSet::len).sum();
    let mut shown = 0;
    loop {
        let mut have = 0;
        for (c, want) in clients.iter().zip(wanted) {
            let lines = c.list("/api/v1/lines", None).await?.items;
            let ids: HashSet<&str> = lines.iter().filter_map(|l| l["id"].as_str()).collect();
            have += want.iter().filter(|id| ids.contains(id.as_str())).count();
        }
        if have != shown {
            shown = have;
            progress(have);
        }
        if have == total {
            return Ok(());
        }
        if started.elapsed() > DRAIN_TIMEOUT {
            bail!("{have} of {total} line ends were set up within {DRAIN_TIMEOUT:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Samples the resident memory of processes until told to stop; returns each one's maximum.
pub struct MemorySampler {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<HashMap<u32, u64>>,
}

impl MemorySampler {
    pub fn start(pids: Vec<u32>) -> MemorySampler {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let mut max: HashMap<u32, u64> = HashMap::new();
            loop {
                for &pid in &pids {
                    if let Ok(rss) = super::net::rss_of(pid) {
                        let m = max.entry(pid).or_default();
                        *m = (*m).max(rss);
                    }
                }
                tokio::select! {
                    _ = stopped.changed() => return max,
                    _ = tokio::time::sleep(MEMORY_POLL) => {}
                }
            }
        });
        MemorySampler { stop, task }
    }

    pub async fn finish(self) -> HashMap<u32, u64> {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}
