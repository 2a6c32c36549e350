//! `adi bench`: how rapid the network is, measured on real node processes (mutual TLS on
//! loopback, on-disk SQLite with `synchronous=FULL`, MLS on every line) and shown beside the
//! physical floor of the same machine measured in the same run.

mod floor;
mod load;
mod net;
mod report;
mod stats;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::Args;
use serde::Serialize;

use floor::{Floor, Protocol};
use load::{Feed, Sender};
use net::BenchNode;
use stats::{median, spread, Spread};

/// The workloads, in the order they run.
const WORKLOADS: [&str; 6] = ["floor", "build", "latency", "line", "network", "catch-up"];
/// Requests each sender keeps in flight in the throughput workloads.
const IN_FLIGHT_PER_SENDER: usize = 32;
/// Requests in flight at each sender when every member sends on all its lines.
const IN_FLIGHT_PER_MEMBER: usize = 4;
/// Requests in flight while lines are opened.
const OPENING_IN_FLIGHT: usize = 24;
/// Pause after start-up and after each workload, so that background work settles.
const SETTLE: Duration = Duration::from_millis(1500);
/// How often a workload reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

#[derive(Args, Clone, Debug)]
pub struct BenchArgs {
    /// A short run (within about a minute): fewer members, messages and seconds.
    #[arg(long)]
    quick: bool,
    /// FLASH messages timed one by one (default 1,000; 100 with --quick).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    messages: Option<u64>,
    /// Seconds of sending in each throughput workload (default 10; 2 with --quick).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    seconds: Option<u64>,
    /// Members of the network, 2 to 40 (default 19; 6 with --quick): past the 19 shipped
    /// members, test members T20, T21, ... in a test roster. The catch-up workload needs 4.
    #[arg(long, value_parser = clap::value_parser!(u64).range(2..=40))]
    members: Option<u64>,
    /// Instead of one run, one network of each of these sizes (comma-separated, 2 to 40 members,
    /// for example 3,9,19,40), each measured on the build, latency and line workloads, and a table
    /// of how the costs grow with the network.
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u64).range(2..=40))]
    scaling: Option<Vec<u64>>,
    /// Connect anew for every API request, as the client did before it kept its connections: to
    /// measure what keeping them saves.
    #[arg(long)]
    fresh_connections: bool,
    /// Messages queued during the partition (default 10,000; 1,000 with --quick).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    backlog: Option<u64>,
    /// Cap on messages sent in each throughput workload (default 200,000).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_messages: Option<u64>,
    /// Only these workloads, comma-separated: floor, build, latency, line, network, catch-up
    /// (the floor is always measured; build always runs, as the others need its lines).
    #[arg(long, value_delimiter = ',')]
    only: Option<Vec<String>>,
    /// Folder for the network's keys, configs and databases (kept); by default a new folder
    /// under the system's temp dir, removed afterwards. It must be on the disk to measure.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Print the results as JSON on stdout (progress still goes to stderr).
    #[arg(long)]
    json: bool,
    /// Write the FLASH latency distribution as an SVG plot.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Keep each node's store on the PostgreSQL server at this address (without a database:
    /// `postgres://user@host:port`), in a database of its own made for the run, instead of in a
    /// SQLite file. The databases are dropped afterwards unless `--state` keeps the network.
    #[arg(long)]
    store: Option<String>,
}

/// The settings a run used.
#[derive(Serialize, Clone, Debug)]
pub struct Settings {
    pub quick: bool,
    pub members: usize,
    pub messages: usize,
    pub seconds: u64,
    pub backlog: usize,
    pub max_messages: usize,
    pub workloads: Vec<String>,
    /// `sqlite`, or `postgres` with `--store`.
    pub store: String,
    /// A connection for every API request (`--fresh-connections`).
    pub fresh_connections: bool,
}

impl Settings {
    fn of(args: &BenchArgs) -> anyhow::Result<Settings> {
        let pick = |v: Option<u64>, full: u64, quick: u64| v.unwrap_or(if args.quick { quick } else { full });
        let workloads: Vec<String> = match &args.only {
            None => WORKLOADS.iter().map(|w| w.to_string()).collect(),
            Some(only) => {
                for w in only {
                    if !WORKLOADS.contains(&w.as_str()) {
                        bail!("unknown workload '{w}'; the workloads are {}", WORKLOADS.join(", "));
                    }
                }
                WORKLOADS
                    .iter()
                    .filter(|w| ["floor", "build"].contains(w) || only.iter().any(|o| o == *w))
                    .map(|w| w.to_string())
                    .collect()
            }
        };
        let members = pick(args.members, 19, 6) as usize;
        if members < 4 && workloads.iter().any(|w| w == "catch-up") && args.scaling.is_none() {
            bail!("--members: the catch-up workload needs 4 members (leave it out with --only)");
        }
        Ok(Settings {
            quick: args.quick,
            members,
            messages: pick(args.messages, 1000, 100) as usize,
            seconds: pick(args.seconds, 10, 2),
            backlog: pick(args.backlog, 10_000, 1_000) as usize,
            max_messages: args.max_messages.unwrap_or(200_000) as usize,
            fresh_connections: args.fresh_connections,
            workloads,
            store: match &args.store {
                None => "sqlite".into(),
                Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => "postgres".into(),
                Some(url) => bail!("--store: a PostgreSQL server's address (postgres://user@host:port), not '{url}'"),
            },
        })
    }

    fn runs(&self, workload: &str) -> bool {
        self.workloads.iter().any(|w| w == workload)
    }
}

/// The machine the figures come from.
#[derive(Serialize, Clone, Debug)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
    pub kernel: String,
    /// `release` or `debug`: the build of this `adi`.
    pub build: &'static str,
}

/// Start-up and memory of the nodes.
#[derive(Serialize, Clone, Debug)]
pub struct Resources {
    /// From spawning `adi serve` to its health check answering, one node at a time, ms.
    pub start_to_ready_ms: Spread,
    /// Resident memory of each node once started, before any line, MiB.
    pub idle_rss_mib: Spread,
    /// Resident memory of each node idle with every direct line open, MiB.
    pub idle_with_lines_rss_mib: Option<Spread>,
    /// Most resident memory of the two nodes of the one-line throughput workload, MiB.
    pub line_load_rss_mib: Option<f64>,
    /// Most resident memory of any node while every member sent on all its lines, MiB.
    pub network_load_rss_mib: Option<f64>,
}

/// Every direct line of the network opened at once.
#[derive(Serialize, Clone, Debug)]
pub struct Build {
    pub members: usize,
    pub lines: usize,
    /// From the first request to every line set up at both ends, s.
    pub seconds: f64,
    /// The floor of one line: a KeyPackage claimed and a Welcome delivered (two round trips)
    /// and a commit at each end, ms.
    pub floor_per_line_ms: f64,
}

/// FLASH latency, one message at a time.
#[derive(Serialize, Clone, Debug)]
pub struct Latency {
    pub messages: usize,
    /// From the API call at the sender to its answer (the message committed there), ms.
    pub sent_ms: Spread,
    /// From the API call at the sender to the message event on the recipient's stream, ms.
    pub ring_ms: Spread,
    /// From the API call to the acknowledgement state on the sender's stream, the recipient
    /// acknowledging at once, ms.
    pub loop_ms: Spread,
    /// 2 fsync + 1 round trip + 1 signature + 1 verification, ms.
    pub ring_floor_ms: f64,
    pub loop_floor_ms: f64,
    pub ring_p50_ratio: f64,
    pub ring_p99_ratio: f64,
    pub loop_p50_ratio: f64,
    /// The protocol's own floor of the ring and of the loop ([`Protocol`]), ms, and the p50s'
    /// ratios to them.
    pub ring_protocol_ms: f64,
    pub loop_protocol_ms: f64,
    pub ring_p50_protocol_ratio: f64,
    pub loop_p50_protocol_ratio: f64,
    #[serde(skip)]
    pub ring_samples: Vec<f64>,
    #[serde(skip)]
    pub loop_samples: Vec<f64>,
}

/// Sustained sending with durability at both ends and every delivery confirmed.
#[derive(Serialize, Clone, Debug)]
pub struct Throughput {
    pub senders: usize,
    pub lines: usize,
    pub messages: usize,
    /// From the first request to the last delivery confirmed, s.
    pub seconds: f64,
    pub per_second: f64,
    /// CPU time of every node process involved, per message, µs.
    pub cpu_per_message_us: f64,
    /// The CPU floor: one signature and one verification, µs.
    pub cpu_floor_us: f64,
    pub cpu_ratio: f64,
    /// The protocol's own CPU per message ([`Protocol`]), µs, and the ratio to it.
    pub cpu_protocol_us: f64,
    pub cpu_protocol_ratio: f64,
    /// Growth of the recipients' databases per message (pages in use, as a reader sees the last
    /// commit), bytes.
    pub disk_bytes_per_message: Option<f64>,
    /// With the stores on PostgreSQL: CPU time of the database server's processes per message,
    /// µs (the machine's `postgres` processes; one that ended during the run is not counted).
    pub server_cpu_per_message_us: Option<f64>,
}

/// Catch-up after a partition.
#[derive(Serialize, Clone, Debug)]
pub struct CatchUp {
    pub backlog: usize,
    /// How long the link was cut, s.
    pub cut_seconds: f64,
    /// From the heal to the last message delivered and confirmed, s (includes the sender's
    /// back-off before it tries again).
    pub from_heal_seconds: f64,
    /// From the first message through after the heal to the last confirmed, s.
    pub drain_seconds: f64,
    pub drain_per_second: f64,
}

/// A target of the product and whether this run met it.
#[derive(Serialize, Clone, Debug)]
pub struct Target {
    pub name: String,
    pub target: String,
    pub measured: String,
    pub met: bool,
}

/// Everything a run measured.
#[derive(Serialize, Clone, Debug)]
pub struct Report {
    pub version: u32,
    pub settings: Settings,
    pub machine: Machine,
    pub floor: Floor,
    /// The protocol's own floor, at this run's costs.
    pub protocol: Protocol,
    pub resources: Resources,
    pub build: Build,
    pub latency: Option<Latency>,
    pub line: Option<Throughput>,
    pub network: Option<Throughput>,
    pub catch_up: Option<CatchUp>,
    pub targets: Vec<Target>,
    pub wall_seconds: f64,
}

/// Progress on stderr, so that `--json` output stays clean.
macro_rules! progress {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

// After the macro, which it uses.
mod scaling;

/// Runs `adi bench`.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let settings = Settings::of(&args)?;
    if let Some(sizes) = args.scaling.clone() {
        return scaling::run(&args, &settings, &sizes).await;
    }
    let report = measure(&args, settings, args.state.clone()).await?;
    if let Some(path) = &args.plot {
        let Some(l) = &report.latency else { bail!("--plot needs the latency workload") };
        std::fs::write(path, report::svg(l)).with_context(|| format!("writing {}", path.display()))?;
        progress!("[plot] {}", path.display());
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report::table(&report));
    }
    Ok(())
}

/// One network of `settings.members` members, measured on `settings.workloads`, in `state` (a
/// new folder of the system's temp dir, removed afterwards, when none).
async fn measure(args: &BenchArgs, settings: Settings, state: Option<PathBuf>) -> anyhow::Result<Report> {
    let started = Instant::now();
    let (state, _temp) = match &state {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            (dir.clone(), None)
        }
        None => {
            let t = tempfile_dir()?;
            (t.0.clone(), Some(t))
        }
    };
    let net_dir = state.join("net");
    if net_dir.exists() {
        bail!("{} already holds a benchmark network; remove it or choose another --state", net_dir.display());
    }
    progress!(
        "adi bench: {} members, {} FLASH messages, {} s of each throughput workload, a backlog of {}",
        settings.members,
        settings.messages,
        settings.seconds,
        settings.backlog
    );

    progress!("[floor] loopback round trip, fsync in {}, Ed25519, AEAD", state.display());
    let rounds = if settings.quick { 200 } else { 1000 };
    let floor = floor::measure(&state, rounds)?;
    progress!(
        "[floor] round trip p50 {:.1} µs, fsync p50 {:.0} µs, sign {:.1} µs, verify {:.1} µs, AES-128-GCM {:.2} µs, \
         ChaCha20-Poly1305 {:.2} µs",
        floor.round_trip_us.p50,
        floor.fsync_us.p50,
        floor.sign_us,
        floor.verify_us,
        floor.aead_us,
        floor.seal_us
    );

    let members: Vec<adi_node::setup::KnownMember> = adi_node::setup::known_members()
        .into_iter()
        .chain((20..).map(adi_node::setup::test_member))
        .take(settings.members)
        .collect();
    let codes: Vec<String> = members.iter().map(|m| m.code.clone()).collect();
    let base =
        adi_node::setup::free_port_run(2 * codes.len() as u16).ok_or_else(|| anyhow!("no free loopback ports"))?;
    let total = codes.len();
    // Each node's PostgreSQL database, dropped when the run ends unless its network is kept.
    let prefix = format!("adi_bench_{}", std::process::id());
    let _databases = args.store.as_ref().map(|server| Databases {
        server: server.clone(),
        names: codes.iter().map(|c| format!("{prefix}_{}", c.to_ascii_lowercase())).collect(),
        keep: args.state.is_some(),
    });
    let postgres = args.store.as_deref().map(|server| (server, prefix.as_str()));
    let demo = adi_node::setup::demo_init_on(&net_dir, &members, base, postgres, |i, code| {
        progress!("[setup] [{i:>2}/{total}] {code}: keys, card and config")
    })?;
    let logs = state.join("logs");
    std::fs::create_dir_all(&logs)?;
    let fresh = settings.fresh_connections;
    let mut nodes = demo.members.iter().map(|m| BenchNode::new(m, &logs, fresh)).collect::<anyhow::Result<Vec<_>>>()?;

    // The partition pair (the third and fourth members) reach each other through relays.
    let (p, q) = (2, 3);
    let relays = if settings.runs("catch-up") {
        let to_q =
            adi_node::relay::Severable::start(adi_node::relay::endpoint_of(&nodes[p].config, &nodes[q].code)?).await?;
        let to_p =
            adi_node::relay::Severable::start(adi_node::relay::endpoint_of(&nodes[q].config, &nodes[p].code)?).await?;
        adi_node::relay::reroute(&nodes[p].config, &nodes[q].code, &to_q.addr)?;
        adi_node::relay::reroute(&nodes[q].config, &nodes[p].code, &to_p.addr)?;
        Some((to_q, to_p))
    } else {
        None
    };

    let mut ready = Vec::new();
    for (i, n) in nodes.iter_mut().enumerate() {
        let d = n.start().await?;
        progress!("[start] [{:>2}/{total}] {} ready in {} ms", i + 1, n.code, d.as_millis());
        ready.push(d.as_secs_f64() * 1000.0);
    }
    tokio::time::sleep(SETTLE).await;
    let mut idle = nodes.iter().map(|n| n.rss_bytes().map(mib)).collect::<anyhow::Result<Vec<_>>>()?;
    let mut resources = Resources {
        start_to_ready_ms: spread(&mut ready),
        idle_rss_mib: spread(&mut idle),
        idle_with_lines_rss_mib: None,
        line_load_rss_mib: None,
        network_load_rss_mib: None,
    };

    let (build, lines) = build(&nodes, &floor).await?;
    tokio::time::sleep(SETTLE).await;
    let mut idle = nodes.iter().map(|n| n.rss_bytes().map(mib)).collect::<anyhow::Result<Vec<_>>>()?;
    resources.idle_with_lines_rss_mib = Some(spread(&mut idle));

    let ticks = net::ticks_per_second();
    let latency = if settings.runs("latency") {
        Some(latency(&nodes[0], &nodes[1], &lines[0][1], settings.messages, &floor).await?)
    } else {
        None
    };
    let line = if settings.runs("line") {
        let (t, rss) = line_throughput(&nodes, &lines[0][1], &settings, &floor, ticks).await?;
        resources.line_load_rss_mib = Some(rss);
        tokio::time::sleep(SETTLE).await;
        Some(t)
    } else {
        None
    };
    let network = if settings.runs("network") {
        let (t, rss) = network_throughput(&nodes, &lines, &settings, &floor, ticks).await?;
        resources.network_load_rss_mib = Some(rss);
        tokio::time::sleep(SETTLE).await;
        Some(t)
    } else {
        None
    };
    let catch_up = match &relays {
        Some((to_q, to_p)) => Some(catch_up(&nodes[p], &nodes[q], &lines[p][q], [to_q, to_p], &settings).await?),
        None => None,
    };
    drop(nodes);

    let mut report = Report {
        version: 1,
        machine: machine(),
        settings,
        protocol: Protocol::of(&floor),
        floor,
        resources,
        build,
        latency,
        line,
        network,
        catch_up,
        targets: Vec::new(),
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    report.targets = report::targets(&report);
    Ok(report)
}

/// The nodes' PostgreSQL databases, dropped with this value unless kept.
struct Databases {
    server: String,
    names: Vec<String>,
    keep: bool,
}

impl Drop for Databases {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        for name in &self.names {
            if let Err(e) = adi_store::postgres_admin::drop_database(&self.server, name) {
                progress!("[cleanup] cannot drop the database {name}: {e}");
            }
        }
    }
}

/// A temporary folder on the disk (not a RAM file system), removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempfile_dir() -> anyhow::Result<TempDir> {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("adi-bench-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(TempDir(dir))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Opens every direct line (member i opens its lines to every later member), all at once, and
/// waits until each is set up at both ends. Returns the lines by pair of member indices.
async fn build(nodes: &[BenchNode], floor: &Floor) -> anyhow::Result<(Build, Vec<Vec<String>>)> {
    let n = nodes.len();
    let pairs: Vec<(usize, usize)> = (0..n).flat_map(|i| (i + 1..n).map(move |j| (i, j))).collect();
    progress!("[build] opening {} direct lines among {n} members", pairs.len());
    let started = Instant::now();
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(OPENING_IN_FLIGHT));
    let mut tasks = tokio::task::JoinSet::new();
    for &(i, j) in &pairs {
        let (client, a, b, semaphore) =
            (nodes[i].client.clone(), nodes[i].code.clone(), nodes[j].code.clone(), semaphore.clone());
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await?;
            let id = load::open_line(&client, [&a, &b]).await.with_context(|| format!("opening the line {a}–{b}"))?;
            anyhow::Ok((i, j, id))
        });
    }
    let mut lines = vec![vec![String::new(); n]; n];
    let mut wanted = vec![HashSet::new(); n];
    while let Some(r) = tasks.join_next().await {
        let (i, j, id) = r.map_err(|e| anyhow!("a task failed: {e}"))??;
        lines[i][j] = id.clone();
        lines[j][i] = id.clone();
        wanted[i].insert(id.clone());
        wanted[j].insert(id);
    }
    let clients: Vec<&adi_node::client::Client> = nodes.iter().map(|n| &n.client).collect();
    let ends = 2 * pairs.len();
    load::wait_lines(&clients, &wanted, |have| progress!("[build] {have}/{ends} line ends set up")).await?;
    let seconds = started.elapsed().as_secs_f64();
    progress!("[build] {} lines in {seconds:.2} s", pairs.len());
    let floor_per_line_ms = (2.0 * floor.round_trip_us.p50 + 2.0 * floor.fsync_us.p50) / 1000.0;
    Ok((Build { members: n, lines: pairs.len(), seconds, floor_per_line_ms }, lines))
}

async fn latency(a: &BenchNode, b: &BenchNode, line: &str, messages: usize, floor: &Floor) -> anyhow::Result<Latency> {
    progress!("[latency] {messages} FLASH messages {} → {}, each acknowledged at once", a.code, b.code);
    let mut a_feed = Feed::open(&a.client).await?;
    let mut b_feed = Feed::open(&b.client).await?;
    let (mut sent, mut ring, mut looped) = (Vec::new(), Vec::new(), Vec::new());
    let step = messages.div_ceil(10).max(1);
    for i in 0..messages {
        let t = load::flash(&a.client, &mut a_feed, &b.client, &mut b_feed, line, i).await?;
        sent.push(t.sent_ms);
        ring.push(t.ring_ms);
        looped.push(t.loop_ms);
        if (i + 1) % step == 0 || i + 1 == messages {
            let mut so_far = ring.clone();
            progress!("[latency] {}/{messages}, ring p50 so far {:.2} ms", i + 1, median(&mut so_far));
        }
    }
    let (ring_samples, loop_samples) = (ring.clone(), looped.clone());
    let ring_ms = spread(&mut ring);
    let loop_ms = spread(&mut looped);
    let (ring_floor_ms, loop_floor_ms) = (floor.flash_ring_ms(), floor.flash_loop_ms());
    let protocol = Protocol::of(floor);
    Ok(Latency {
        ring_protocol_ms: protocol.ring_ms,
        loop_protocol_ms: protocol.loop_ms,
        ring_p50_protocol_ratio: ring_ms.p50 / protocol.ring_ms,
        loop_p50_protocol_ratio: loop_ms.p50 / protocol.loop_ms,
        messages,
        sent_ms: spread(&mut sent),
        ring_ms,
        loop_ms,
        ring_floor_ms,
        loop_floor_ms,
        ring_p50_ratio: ring_ms.p50 / ring_floor_ms,
        ring_p99_ratio: ring_ms.p99 / ring_floor_ms,
        loop_p50_ratio: loop_ms.p50 / loop_floor_ms,
        ring_samples,
        loop_samples,
    })
}

/// Sends from the first member to the second on their line for `seconds`.
async fn line_throughput(
    nodes: &[BenchNode],
    line: &str,
    settings: &Settings,
    floor: &Floor,
    ticks: f64,
) -> anyhow::Result<(Throughput, f64)> {
    let (a, b) = (&nodes[0], &nodes[1]);
    progress!("[line] {} → {} for {} s, {IN_FLIGHT_PER_SENDER} requests in flight", a.code, b.code, settings.seconds);
    let mut b_feed = Feed::open(&b.client).await?;
    let cpu_before = a.cpu_seconds(ticks)? + b.cpu_seconds(ticks)?;
    let server_before = server_cpu(settings, ticks);
    let disk_before = b.database_bytes()?;
    let sampler = load::MemorySampler::start(vec![a.pid()?, b.pid()?]);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(settings.seconds);
    let senders = [Sender { client: a.client.clone(), lines: vec![line.to_string()] }];
    let accepted =
        load::flood(&senders, IN_FLIGHT_PER_SENDER, deadline, settings.max_messages, report_every(settings, "line"))
            .await?;
    let expected: HashSet<String> = accepted.into_iter().flatten().collect();
    progress!("[line] {} messages committed at {}; waiting for every delivery", expected.len(), a.code);
    let drained = load::drain(&mut [&mut b_feed], &[&a.client], &expected, |n| {
        progress!("[line] {n}/{} arrived", expected.len())
    })
    .await?;
    let max_rss = sampler.finish().await.values().copied().max().unwrap_or(0);
    let seconds = drained.confirmed.max(drained.last_arrival).duration_since(started).as_secs_f64();
    let cpu = a.cpu_seconds(ticks)? + b.cpu_seconds(ticks)? - cpu_before;
    let server = server_cpu(settings, ticks).zip(server_before).map(|(after, before)| after - before);
    let disk = b.database_bytes()?.saturating_sub(disk_before);
    let t = throughput(1, 1, expected.len(), seconds, (cpu, server), Some(disk), floor);
    progress!("[line] {:.0} messages/s, {:.0} µs of CPU per message", t.per_second, t.cpu_per_message_us);
    Ok((t, mib(max_rss)))
}

/// Every member sends on every one of its lines at once for `seconds`.
async fn network_throughput(
    nodes: &[BenchNode],
    lines: &[Vec<String>],
    settings: &Settings,
    floor: &Floor,
    ticks: f64,
) -> anyhow::Result<(Throughput, f64)> {
    let n = nodes.len();
    progress!(
        "[network] all {n} members on all {} lines for {} s, {IN_FLIGHT_PER_MEMBER} requests in flight each",
        n * (n - 1) / 2,
        settings.seconds
    );
    let mut feeds = Vec::new();
    for node in nodes {
        feeds.push(Feed::open(&node.client).await?);
    }
    let cpu = |nodes: &[BenchNode]| nodes.iter().map(|x| x.cpu_seconds(ticks)).sum::<anyhow::Result<f64>>();
    let cpu_before = cpu(nodes)?;
    let server_before = server_cpu(settings, ticks);
    let disk_before: u64 = nodes.iter().map(BenchNode::database_bytes).sum::<anyhow::Result<u64>>()?;
    let sampler = load::MemorySampler::start(nodes.iter().map(BenchNode::pid).collect::<anyhow::Result<_>>()?);
    let senders: Vec<Sender> = (0..n)
        .map(|i| Sender {
            client: nodes[i].client.clone(),
            lines: (0..n).filter(|&j| j != i).map(|j| lines[i][j].clone()).collect(),
        })
        .collect();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(settings.seconds);
    let accepted =
        load::flood(&senders, IN_FLIGHT_PER_MEMBER, deadline, settings.max_messages, report_every(settings, "network"))
            .await?;
    let expected: HashSet<String> = accepted.into_iter().flatten().collect();
    progress!("[network] {} messages committed; waiting for every delivery", expected.len());
    let clients: Vec<&adi_node::client::Client> = nodes.iter().map(|x| &x.client).collect();
    let mut feed_refs: Vec<&mut Feed> = feeds.iter_mut().collect();
    let drained =
        load::drain(&mut feed_refs, &clients, &expected, |k| progress!("[network] {k}/{} arrived", expected.len()))
            .await?;
    let max_rss = sampler.finish().await.values().copied().max().unwrap_or(0);
    let seconds = drained.confirmed.max(drained.last_arrival).duration_since(started).as_secs_f64();
    let cpu = cpu(nodes)? - cpu_before;
    let server = server_cpu(settings, ticks).zip(server_before).map(|(after, before)| after - before);
    let disk_after: u64 = nodes.iter().map(BenchNode::database_bytes).sum::<anyhow::Result<u64>>()?;
    // Every message is stored at its sender and its recipient.
    let disk = disk_after.saturating_sub(disk_before) / 2;
    let t = throughput(n, n * (n - 1) / 2, expected.len(), seconds, (cpu, server), Some(disk), floor);
    progress!("[network] {:.0} messages/s, {:.0} µs of CPU per message", t.per_second, t.cpu_per_message_us);
    Ok((t, mib(max_rss)))
}

/// CPU time used so far by the database server's processes, with the stores on PostgreSQL.
fn server_cpu(settings: &Settings, ticks: f64) -> Option<f64> {
    (settings.store == "postgres").then(|| net::processes_cpu_seconds("postgres", ticks))
}

/// A throughput from what was measured; `cpu_seconds` is the nodes' CPU time and, with the stores
/// on PostgreSQL, the database server's.
fn throughput(
    senders: usize,
    lines: usize,
    messages: usize,
    seconds: f64,
    (cpu_seconds, server_cpu_seconds): (f64, Option<f64>),
    disk: Option<u64>,
    floor: &Floor,
) -> Throughput {
    let per = |x: f64| if messages == 0 { 0.0 } else { x / messages as f64 };
    let cpu_per_message_us = per(cpu_seconds * 1e6);
    let protocol = Protocol::of(floor).cpu_per_message_us;
    Throughput {
        cpu_protocol_us: protocol,
        cpu_protocol_ratio: cpu_per_message_us / protocol,
        senders,
        lines,
        messages,
        seconds,
        per_second: if seconds > 0.0 { messages as f64 / seconds } else { 0.0 },
        cpu_per_message_us,
        cpu_floor_us: floor.cpu_per_message_us(),
        cpu_ratio: cpu_per_message_us / floor.cpu_per_message_us(),
        disk_bytes_per_message: disk.map(|d| per(d as f64)),
        server_cpu_per_message_us: server_cpu_seconds.map(|c| per(c * 1e6)),
    }
}

/// Progress of a flood: every tenth of what can be expected.
fn report_every(settings: &Settings, name: &'static str) -> impl Fn(usize) + Send + Sync + 'static {
    let seconds = settings.seconds;
    let started = Instant::now();
    let last = std::sync::Mutex::new(Instant::now());
    move |sent| {
        let Ok(mut last) = last.lock() else { return };
        if last.elapsed() >= PROGRESS_EVERY {
            *last = Instant::now();
            progress!("[{name}] {:.0}/{seconds} s: {sent} messages committed", started.elapsed().as_secs_f64());
        }
    }
}

/// Cuts the link between `a` and `b` both ways, queues `backlog` messages at `a`, heals it, and
/// times the drain.
async fn catch_up(
    a: &BenchNode,
    b: &BenchNode,
    line: &str,
    relays: [&adi_node::relay::Severable; 2],
    settings: &Settings,
) -> anyhow::Result<CatchUp> {
    progress!("[catch-up] cutting {} ↔ {}, then queuing {} messages at {}", a.code, b.code, settings.backlog, a.code);
    let mut b_feed = Feed::open(&b.client).await?;
    relays.iter().for_each(|r| r.cut());
    let cut_at = Instant::now();
    let senders = [Sender { client: a.client.clone(), lines: vec![line.to_string()] }];
    let far = Instant::now() + load::DRAIN_TIMEOUT;
    let accepted =
        load::flood(&senders, IN_FLIGHT_PER_SENDER, far, settings.backlog, report_every(settings, "catch-up")).await?;
    let expected: HashSet<String> = accepted.into_iter().flatten().collect();
    let queued = a.queues().await?.get(&b.code).copied().unwrap_or(0);
    progress!(
        "[catch-up] {} messages committed at {}, {queued} queued for {}; healing",
        expected.len(),
        a.code,
        b.code
    );
    let healed = Instant::now();
    relays.iter().for_each(|r| r.heal());
    let drained = load::drain(&mut [&mut b_feed], &[&a.client], &expected, |n| {
        progress!("[catch-up] {n}/{} arrived", expected.len())
    })
    .await?;
    let end = drained.confirmed.max(drained.last_arrival);
    let first = drained.first_arrival.unwrap_or(healed).max(healed);
    let drain_seconds = end.duration_since(first).as_secs_f64();
    let c = CatchUp {
        backlog: expected.len(),
        cut_seconds: healed.duration_since(cut_at).as_secs_f64(),
        from_heal_seconds: end.duration_since(healed).as_secs_f64(),
        drain_seconds,
        drain_per_second: if drain_seconds > 0.0 { expected.len() as f64 / drain_seconds } else { 0.0 },
    };
    progress!("[catch-up] drained in {:.2} s ({:.2} s from the heal)", c.drain_seconds, c.from_heal_seconds);
    Ok(c)
}

fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_string()))
        .unwrap_or_else(|| "unknown".into());
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map(|kb| kb / (1024.0 * 1024.0))
        .unwrap_or(0.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    Machine {
        cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        cpu_model,
        memory_gib,
        kernel,
        build: if cfg!(debug_assertions) { "debug" } else { "release" },
    }
}
