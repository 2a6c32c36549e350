//! The benchmark's network: real `adi serve` processes on loopback, each with its own on-disk
//! database and mutual TLS between them, and what the operating system says each one uses.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use adi_node::client::Client;
use anyhow::{anyhow, bail, Context};
use hyper::Method;

/// How long a node may take from its process starting to answering its health check.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a starting node's health check is tried.
const READY_POLL: Duration = Duration::from_millis(5);

/// One node of the network.
pub struct BenchNode {
    pub code: String,
    pub client: Client,
    pub config: PathBuf,
    /// The node's own folder: keys, config and database.
    pub dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Drop for BenchNode {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl BenchNode {
    /// `fresh`: a connection for every API request instead of keeping them.
    pub fn new(m: &adi_node::setup::DemoMember, logs: &Path, fresh: bool) -> anyhow::Result<BenchNode> {
        let config = PathBuf::from(&m.config);
        let dir = config.parent().ok_or_else(|| anyhow!("{} has no folder", m.config))?.to_path_buf();
        Ok(BenchNode {
            code: m.code.clone(),
            client: {
                let client = Client::new(&m.api_url, Some(m.token.clone()), None)?;
                if fresh {
                    client.keeping_connections(0)
                } else {
                    client
                }
            },
            config,
            dir,
            log: logs.join(format!("{}.log", m.code)),
            child: None,
        })
    }

    /// Starts `adi serve` for this node and waits until it answers its health check; returns
    /// the time from spawning the process to ready.
    pub async fn start(&mut self) -> anyhow::Result<Duration> {
        let exe = std::env::current_exe().context("finding the adi binary")?;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log)?;
        let started = Instant::now();
        let child = Command::new(exe)
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}'s node", self.code))?;
        self.child = Some(child);
        loop {
            if let Ok((status, _)) = self.client.request(Method::GET, "/healthz", None).await {
                if status == 200 {
                    return Ok(started.elapsed());
                }
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!("{}'s node exited with {status}; its log is {}", self.code, self.log.display());
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!("{}'s node was not ready within {READY_TIMEOUT:?}", self.code);
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    pub fn pid(&self) -> anyhow::Result<u32> {
        self.child.as_ref().map(Child::id).ok_or_else(|| anyhow!("{}'s node is not running", self.code))
    }

    /// Resident memory, in bytes.
    pub fn rss_bytes(&self) -> anyhow::Result<u64> {
        rss_of(self.pid()?)
    }

    /// CPU time used so far (user and system), in seconds.
    pub fn cpu_seconds(&self, ticks_per_second: f64) -> anyhow::Result<f64> {
        cpu_seconds_of(self.pid()?, ticks_per_second)
    }

    /// Bytes of the node's database in use: its pages less its free pages, as a reader sees the
    /// last commit (the write-ahead log included, whose file the node truncates every second); on
    /// PostgreSQL, the size of its database (`pg_database_size`).
    pub fn database_bytes(&self) -> anyhow::Result<u64> {
        use rusqlite::OpenFlags;
        let config = adi_node::NodeConfig::load(&self.config).map_err(|e| anyhow!("{e}"))?;
        if let Some(pg) = &config.postgres {
            return Ok(adi_store::postgres_admin::database_bytes(&pg.url)?);
        }
        let path = self.dir.join("node.db");
        let c = rusqlite::Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("opening {} to read its size", path.display()))?;
        let pragma = |name: &str| c.query_row(&format!("PRAGMA {name}"), [], |row| row.get::<_, i64>(0));
        let used = pragma("page_count")? - pragma("freelist_count")?;
        Ok(used.max(0) as u64 * pragma("page_size")?.max(0) as u64)
    }

    /// This node's queue towards each peer.
    pub async fn queues(&self) -> anyhow::Result<HashMap<String, u64>> {
        queue_lengths(&self.client).await
    }
}

/// The outbox backlog towards each peer, as a node's `/api/v1/peers` reports it.
pub async fn queue_lengths(client: &Client) -> anyhow::Result<HashMap<String, u64>> {
    let v = client.call(Method::GET, "/api/v1/peers", None).await?;
    let peers = v.as_array().ok_or_else(|| anyhow!("peers: not a list"))?;
    peers
        .iter()
        .map(|p| match (p["member"].as_str(), p["queue_len"].as_u64()) {
            (Some(m), Some(n)) => Ok((m.to_string(), n)),
            _ => Err(anyhow!("peers: an entry without member or queue_len: {p}")),
        })
        .collect()
}

/// CPU time a process has used so far (user and system), in seconds.
pub fn cpu_seconds_of(pid: u32, ticks_per_second: f64) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces; the fields after it are fixed.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).ok_or_else(|| anyhow!("unreadable /proc stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let (utime, stime) = (fields.get(11), fields.get(12));
    let ticks = |f: Option<&&str>| f.and_then(|v| v.parse::<f64>().ok()).ok_or_else(|| anyhow!("bad /proc stat"));
    Ok((ticks(utime)? + ticks(stime)?) / ticks_per_second)
}

/// CPU time used so far by every process of this machine named `name` (its `/proc` `comm`), in
/// seconds; a process that ends between reads is left out.
pub fn processes_cpu_seconds(name: &str, ticks_per_second: f64) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0.0 };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == name))
        .filter_map(|pid| cpu_seconds_of(pid, ticks_per_second).ok())
        .sum()
}

/// Resident memory of a process, in bytes.
pub fn rss_of(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .ok_or_else(|| anyhow!("no VmRSS for process {pid}"))?;
    Ok(kb * 1024)
}

/// Clock ticks per second of `/proc/<pid>/stat`.
pub fn ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}
