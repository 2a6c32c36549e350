//! Deterministic simulation of a whole ADI network in one process.
//!
//! Every member of the roster (the 18 of 2022 and Timor-Leste) runs a node made of the real core
//! and the real store ([`node`]). A simulated clock and network ([`net`]) carry federation
//! batches and their verdicts with latency, loss, duplication and reordering; faults cut whole
//! nodes or single links (one way or both), crash nodes (also in the middle of a batch, between
//! the core's decision and the store's commit) and restart them from their database, and skew
//! their clocks. Operators create direct lines and conferences, send messages of every
//! precedence, acknowledge some and ignore others, decline, propose and answer decisions, and add
//! and remove conference members. Administrators amend the roster ([`roster`]: an admission, a
//! member's key rotation, a suspension and its reinstatement, a proposal left short), and the
//! nodes exchange versions and proposals over the simulated network. After the faults end, the network heals and the run continues
//! until every queue drains; then [`check`] reads every node's database and reports each anomaly.
//!
//! Everything that happens is drawn from one seed: `run(&SimConfig::new(seed))` twice gives the
//! same schedule of operations, faults and deliveries. (MLS key material comes from the system's
//! random source, so ciphertext bytes differ between runs; nothing the simulation decides
//! depends on them.)

pub mod check;
pub mod hostile;
pub mod net;
pub mod node;
pub mod rng;
pub mod roster;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use adi_core::{
    Answered, Concurrence, Content, Decision, DisciplineConfig, Draft, HotlineConfig, Limits, Line, MemberCode,
    NewLine, Precedence, ReceiptKind, Record, Roster, WriteBatch,
};
use adi_store::Store;
use adi_wire::batch::{encode_batch, Verdict};
use adi_wire::{EnvelopeHash, LineId};

use crate::net::{Net, NetConfig};
pub use crate::node::RosterBugs;
use crate::node::{BatchFaults, ClaimRefused, Handled, SimNode};
use crate::rng::Rng;

/// The simulation's start, as a node's clock reads it (ms since 1970): late 2026.
pub const EPOCH_MS: u64 = 1_790_000_000_000;
const HOUR_MS: u64 = 3_600_000;
/// How long a link waits for a batch's verdicts.
pub const REQUEST_TIMEOUT_MS: u64 = 5_000;
/// How long after the heal the queues may take to drain before that is itself an anomaly.
pub const DRAIN_MS_MAX: u64 = 15 * 60_000;

/// Which faults a run injects, and how many.
#[derive(Clone, Debug)]
pub struct FaultConfig {
    /// Node crashes at random times (each node restarts from its database after a while).
    pub crashes: u32,
    /// Chance that a node crashes while handling a batch, before its commit, and again after
    /// its commit but before its answer.
    pub crash_mid_batch: f64,
    /// Chance that a node crashes between the core's sealing of an operator's message and its
    /// commit.
    pub crash_mid_send: f64,
    /// Whole nodes cut off from every other.
    pub isolations: u32,
    /// Single links cut both ways.
    pub cuts: u32,
    /// Single links cut one way only.
    pub one_way_cuts: u32,
    /// Each node's clock is off by up to this much, either way.
    pub skew_ms_max: u64,
    /// Members whose system clocks are hours off instead (1 h up to `skew_hours_ms_max`, either
    /// way).
    pub skew_hours_nodes: u32,
    pub skew_hours_ms_max: u64,
    /// Steps of a member's system clock while its node runs (1 h to 25 h, either way): the node
    /// keeps its own time, and follows the system clock at its next start (never from earlier
    /// than the latest time it stored).
    pub clock_steps: u32,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            crashes: 4,
            crash_mid_batch: 0.004,
            crash_mid_send: 0.01,
            isolations: 2,
            cuts: 3,
            one_way_cuts: 3,
            skew_ms_max: 3_000,
            skew_hours_nodes: 2,
            skew_hours_ms_max: 3 * HOUR_MS,
            clock_steps: 2,
        }
    }
}

/// Faults built into the engine that a test turns on to show that the checker finds them.
pub use adi_engine::Bugs;
/// KeyPackages each node keeps for peers to claim (the node's `key_package_pool_len`, smaller:
/// the simulation's lines are few, and each KeyPackage costs a key generation).
pub const KEY_PACKAGE_POOL: u64 = 4;
/// KeyPackages a node hands one peer an hour (the node's `key_package_claims_per_hour_max`,
/// smaller: the simulation's members open a few lines an hour, and a hostile member's flood of
/// claims costs the victim a key generation each).
pub const KEY_PACKAGE_CLAIMS_PER_HOUR: u64 = 16;

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    /// How long operators work and faults strike (simulated ms).
    pub active_ms: u64,
    /// How long the run continues after the heal, at least.
    pub settle_ms: u64,
    /// Operator messages sent over the active phase (some fail where their line or node is not
    /// ready; those are not counted as sent).
    pub messages: u32,
    pub direct_lines: u32,
    pub conferences: u32,
    pub decisions: u32,
    /// Conference members added, and as many removed.
    pub membership_changes: u32,
    pub net: NetConfig,
    pub faults: FaultConfig,
    pub bugs: Bugs,
    /// The chance that a run has a hostile member ([`hostile`]), drawn by the seed.
    pub hostile_chance: f64,
    /// Attempts the hostile member makes over the active phase.
    pub hostile_attempts: u32,
    /// The attacks its attempts draw from (every one, unless a test narrows them).
    pub hostile_attacks: Vec<hostile::Attack>,
    /// Roster amendments drawn by the seed ([`roster`]).
    pub roster: roster::RosterConfig,
    /// Faults of the simulation's driving of the roster, for the checker's own tests.
    pub roster_bugs: RosterBugs,
    /// Where the nodes' databases live (a directory made for the run inside it).
    pub dir: PathBuf,
}

impl SimConfig {
    pub fn new(seed: u64) -> SimConfig {
        let shm = PathBuf::from("/dev/shm");
        SimConfig {
            seed,
            active_ms: 15 * 60_000,
            settle_ms: 8 * 60_000,
            messages: 60,
            direct_lines: 12,
            conferences: 3,
            decisions: 3,
            membership_changes: 2,
            net: NetConfig::default(),
            faults: FaultConfig::default(),
            bugs: Bugs::default(),
            hostile_chance: 0.75,
            hostile_attempts: 12,
            hostile_attacks: hostile::Attack::ALL.to_vec(),
            roster: roster::RosterConfig::default(),
            roster_bugs: RosterBugs::default(),
            dir: if shm.is_dir() { shm } else { std::env::temp_dir() },
        }
    }
}

/// The discipline every simulated node keeps: the real rules with shorter times, so that
/// deadlines, escalations, link tests and key updates all happen within a run.
pub fn discipline() -> DisciplineConfig {
    DisciplineConfig {
        deadlines: adi_core::Deadlines { flash_s: 120, immediate_s: 300, priority_s: 900, routine_s: 1_800 },
        escalation_repeat_s: 60,
        alternates: vec!["watch-officer".into()],
        link_test_interval_s: 300,
        key_update_interval_s: 600,
        key_update_messages: 6,
        clock_offset_ms_max: DisciplineConfig::default().clock_offset_ms_max,
    }
}

/// What one run did and found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub seed: u64,
    pub members: usize,
    pub sim_ms: u64,
    pub faults: BTreeMap<&'static str, u64>,
    /// Conference members added and removed.
    pub operations: BTreeMap<&'static str, u64>,
    /// Operator messages committed at their sender.
    pub messages: u64,
    /// Acknowledgements, declines, decisions and concurrences committed.
    pub answers: u64,
    pub lines: u64,
    /// Envelopes accepted by a recipient (first copies).
    pub accepted: u64,
    /// Envelopes a member signed with the key its rotation gave it, held by the other members'
    /// nodes at the end.
    pub rotated_key_accepted: u64,
    pub anomalies: Vec<String>,
    /// The hostile member, in a run that has one.
    pub hostile: Option<String>,
    /// A digest of every event the run handled (its time, kind and node), so that two runs of
    /// one seed can be compared.
    pub schedule_digest: u64,
}

/// An operator's envelope that its node committed (the API's 201).
#[derive(Clone, Debug)]
pub struct Sent {
    pub hash: EnvelopeHash,
    pub line: LineId,
    pub sender: usize,
    pub seq: u64,
    pub kind: &'static str,
    pub precedence: Option<Precedence>,
    /// When each recipient's acknowledgement is due, on the sender's clock.
    pub due_ms: Option<u64>,
    pub recipients: Vec<usize>,
}

/// What the simulation knows to be true, for the checker.
#[derive(Debug, Default)]
pub struct Truth {
    pub sent: Vec<Sent>,
    /// Per line: (epoch from which, members), in order.
    pub membership: BTreeMap<LineId, Vec<(u64, Vec<MemberCode>)>>,
    /// Each line's home member.
    pub homes: BTreeMap<LineId, usize>,
    /// (message, member) → when that member's node signed its acknowledgement or decline.
    pub answered: BTreeMap<(EnvelopeHash, MemberCode), Answer>,
    /// Decisions with their parties; (decision, party) pairs that concurred.
    pub decisions: BTreeMap<EnvelopeHash, Vec<MemberCode>>,
    pub concurred: BTreeSet<(EnvelopeHash, MemberCode)>,
    /// Checkpoints each node signed of each line: (node, line) → [(size, root)].
    pub checkpoints: BTreeMap<(usize, LineId), Vec<(u64, adi_record::Hash)>>,
    /// When the network healed (simulated time).
    pub healed_ms: u64,
    /// Replies sent before their commit (only with `Bugs::ack_before_commit`).
    pub early_replies: u64,
    /// The hostile member's attempts and their verdicts.
    pub attempts: Vec<hostile::Attempt>,
    /// The roster's amendments and the hostile member's forged proposals.
    pub roster: roster::RosterTruth,
}

/// When a member answered a message: on its node's clock (as it signed the answer) and in
/// simulation time. A node's clock may read the same time twice (restarted with its system clock
/// set back, it keeps time from the latest time it stored), so its reading alone cannot always be
/// placed in simulation time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    pub node_ms: u64,
    pub sim_ms: u64,
}

enum Wire {
    Batch {
        id: u64,
        body: Vec<u8>,
    },
    Reply {
        id: u64,
        verdicts: Vec<Verdict>,
    },
    /// The roster exchange: the version a node holds and its proposals; the answer: the versions
    /// after it and the peer's proposals.
    Exchange {
        number: u64,
        proposals: Vec<adi_wire::files::RosterVersionFile>,
    },
    ExchangeReply {
        number: u64,
        versions: Vec<adi_wire::files::RosterVersionFile>,
        proposals: Vec<adi_wire::files::RosterVersionFile>,
    },
}

enum Op {
    CreateLine {
        members: Vec<usize>,
        scope: &'static str,
        tries: u32,
    },
    Send,
    Answer {
        node: usize,
        line: LineId,
        answered: Answered,
        kind: ReceiptKind,
        priority: u8,
    },
    Propose,
    Concur {
        node: usize,
        line: LineId,
        decision: EnvelopeHash,
        text_sha256: [u8; 32],
        concur: bool,
    },
    AddMember,
    RemoveMember,
    /// An attempt of the hostile member's: the attack given, or one drawn.
    Hostile(Option<hostile::Attack>),
}

enum Fault {
    Crash {
        node: usize,
        down_ms: u64,
    },
    Isolate {
        node: usize,
        ms: u64,
    },
    Cut {
        from: usize,
        to: usize,
        ms: u64,
        one_way: bool,
    },
    /// The member's system clock steps by `by_ms`; with `restart_ms`, the node stops then and
    /// starts again that much later.
    ClockStep {
        node: usize,
        by_ms: i64,
        restart_ms: Option<u64>,
    },
}

enum Ev {
    Deliver {
        from: usize,
        to: usize,
        wire: Wire,
    },
    Timeout {
        node: usize,
        peer: usize,
        id: u64,
    },
    Poll {
        node: usize,
        peer: usize,
    },
    Tick {
        node: usize,
        wake: u64,
    },
    Restart {
        node: usize,
    },
    Checkpoint {
        node: usize,
    },
    Op(Op),
    Fault(Fault),
    Heal,
    /// A node's periodic roster exchange.
    RosterSync {
        node: usize,
    },
    Roster(roster::Op),
}

pub(crate) struct World {
    cfg: SimConfig,
    now: u64,
    counter: u64,
    queue: BTreeMap<(u64, u64), Ev>,
    pub(crate) nodes: Vec<SimNode>,
    index: BTreeMap<MemberCode, usize>,
    roster: Roster,
    net: Net,
    rng_net: Rng,
    rng_ops: Rng,
    rng_faults: Rng,
    rng_clock: Rng,
    rng_hostile: Rng,
    rng_roster: Rng,
    rng_rotation: Rng,
    /// The roster of the network's first version, and the roster of every member.
    first_roster: Roster,
    full_roster: Roster,
    /// Members outside the first roster: their nodes start once a version admits them.
    outside: BTreeSet<usize>,
    plan: roster::Plan,
    /// The hostile member, if the run has one.
    hostile: Option<usize>,
    /// Each line the hostile member was taken off: its MLS state and its last sequence number
    /// there as its node held them just before, for [`hostile::Attack::AfterRemoval`].
    hostile_removed: Vec<(LineId, Vec<u8>, u64)>,
    next_request: u64,
    pub(crate) truth: Truth,
    pub(crate) report: Report,
    healed: bool,
    dir: PathBuf,
}

/// The members of the network, from the shipped roster data: (code, community).
pub fn members() -> Vec<(String, String)> {
    let data: serde_json::Value =
        serde_json::from_str(include_str!("../../../data/members.json")).expect("data/members.json is valid JSON");
    ["roster_2022", "admitted_later"]
        .iter()
        .flat_map(|k| data[k].as_array().cloned().unwrap_or_default())
        .map(|m| (m["code"].as_str().unwrap_or("").to_string(), m["community"].as_str().unwrap_or("").to_string()))
        .collect()
}

/// Runs one simulation and checks it.
pub fn run(cfg: &SimConfig) -> Result<Report, String> {
    let mut world = World::new(cfg.clone())?;
    let result = world.run();
    let _ = std::fs::remove_dir_all(&world.dir);
    result?;
    Ok(world.report)
}

impl World {
    fn new(cfg: SimConfig) -> Result<World, String> {
        let members = members();
        let spec: Vec<(&str, &str, u8)> =
            members.iter().enumerate().map(|(i, (c, k))| (c.as_str(), k.as_str(), (i + 1) as u8)).collect();
        let roster = adi_core::fixtures::roster(&spec);
        let mut root = Rng::new(cfg.seed);
        let mut rng_faults = root.fork();
        let rng_net = root.fork();
        let rng_ops = root.fork();
        // Clock faults draw from a stream of their own: with them turned off, a seed runs the
        // schedule it ran before they existed (the regression seeds rely on it).
        let mut rng_clock = root.fork();
        // The hostile member draws from a stream of its own too.
        let mut rng_hostile = root.fork();
        // Roster amendments too, and key rotations.
        let rng_roster = root.fork();
        let rng_rotation = root.fork();
        // Unique per run: two runs of one seed may go at once in one process.
        static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = cfg.dir.join(format!("adi-sim-{}-{}-{run}", cfg.seed, std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut nodes = Vec::new();
        let mut index = BTreeMap::new();
        for (i, (code, _, seed)) in spec.iter().enumerate() {
            let code = MemberCode::parse(code)?;
            let skew = rng_faults.range(0, 2 * cfg.faults.skew_ms_max) as i64 - cfg.faults.skew_ms_max as i64;
            index.insert(code.clone(), i);
            let path = dir.join(format!("{code}.db"));
            nodes.push(SimNode::new(code, *seed, skew, path, EPOCH_MS));
        }
        // A few members whose system clocks are hours off.
        for _ in 0..cfg.faults.skew_hours_nodes {
            let i = rng_clock.below(nodes.len() as u64) as usize;
            let off = rng_clock.range(HOUR_MS, cfg.faults.skew_hours_ms_max.max(HOUR_MS + 1)) as i64;
            let skew = if rng_clock.chance(0.5) { off } else { -off };
            let (code, seed, path) = (nodes[i].code.clone(), nodes[i].key_seed, nodes[i].path.clone());
            nodes[i] = SimNode::new(code, seed, skew, path, EPOCH_MS);
        }
        let hostile = rng_hostile.chance(cfg.hostile_chance).then(|| rng_hostile.below(nodes.len() as u64) as usize);
        let report = Report {
            seed: cfg.seed,
            members: nodes.len(),
            hostile: hostile.map(|h| nodes[h].code.to_string()),
            schedule_digest: 0xcbf2_9ce4_8422_2325,
            ..Report::default()
        };
        let mut world = World {
            net: Net::new(cfg.net.clone()),
            cfg,
            now: 0,
            counter: 0,
            queue: BTreeMap::new(),
            nodes,
            index,
            roster: roster.clone(),
            rng_net,
            rng_ops,
            rng_faults,
            rng_clock,
            rng_hostile,
            rng_roster,
            rng_rotation,
            first_roster: roster.clone(),
            full_roster: roster.clone(),
            outside: BTreeSet::new(),
            plan: roster::Plan::default(),
            hostile,
            hostile_removed: Vec::new(),
            next_request: 1,
            truth: Truth::default(),
            report,
            healed: false,
            dir,
        };
        world.first_roster = world.draw_first_roster(&roster);
        world.roster = world.first_roster.clone();
        world.truth.roster.first = Some(world.first_roster.clone());
        Ok(world)
    }

    fn config(&self, i: usize) -> HotlineConfig {
        HotlineConfig {
            me: self.nodes[i].code.clone(),
            signing_key: self.nodes[i].signing_key.clone(),
            roster: self.roster.clone(),
            limits: Limits::default(),
            default_caveat: "SIMULATION".into(),
            discipline: discipline(),
        }
    }

    /// The engine of node `i`: the node's limits (a smaller KeyPackage pool and claim quota), the run's injected
    /// faults, and jitter drawn from the run's seed, so that a run replays exactly.
    fn engine_config(&self, i: usize) -> adi_engine::EngineConfig {
        adi_engine::EngineConfig {
            limits: adi_engine::EngineLimits {
                key_package_pool_len: KEY_PACKAGE_POOL,
                key_package_claims_per_hour_max: KEY_PACKAGE_CLAIMS_PER_HOUR,
                ..Default::default()
            },
            bugs: self.cfg.bugs,
            jitter_seed: self.cfg.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ i as u64,
        }
    }

    fn at(&mut self, t: u64, ev: Ev) {
        self.counter += 1;
        self.queue.insert((t.max(self.now), self.counter), ev);
    }

    fn fault(&mut self, kind: &'static str) {
        *self.report.faults.entry(kind).or_insert(0) += 1;
    }

    fn anomaly(&mut self, what: String) {
        self.report.anomalies.push(what);
    }

    fn run(&mut self) -> Result<(), String> {
        let n = self.nodes.len();
        for i in 0..n {
            if self.outside.contains(&i) {
                continue;
            }
            let cfg = self.config(i);
            let engine = self.engine_config(i);
            let first = self.first_roster.clone();
            self.nodes[i]
                .start(cfg, engine, EPOCH_MS, &first, &[])
                .map_err(|e| format!("{} cannot start: {e}", self.nodes[i].code))?;
        }
        self.now = EPOCH_MS;
        self.plan();
        let heal_at = EPOCH_MS + self.cfg.active_ms;
        self.at(heal_at, Ev::Heal);
        let settle_end = heal_at + self.cfg.settle_ms;
        let hard_end = settle_end + DRAIN_MS_MAX;
        while let Some(((t, _), ev)) = self.queue.pop_first() {
            if t > hard_end {
                break;
            }
            if t > settle_end && self.quiet() {
                break;
            }
            self.now = t;
            if let Some(node) = self.handle(ev) {
                self.after(node);
            }
        }
        self.report.sim_ms = self.now - EPOCH_MS;
        if !self.quiet() {
            let mut backlog = Vec::new();
            for i in 0..n {
                for (peer, len) in self.nodes[i].backlog() {
                    let now = self.nodes[i].now(self.now);
                    let first = self.nodes[i].waiting(&peer, now);
                    backlog.push(format!("{}→{peer}: {len} ({first})", self.nodes[i].code));
                }
            }
            self.anomaly(format!("queues did not drain within {} min of the heal: {backlog:?}", DRAIN_MS_MAX / 60_000));
        }
        for a in self.unswitched() {
            self.anomaly(a);
        }
        let anomalies = check::check(self);
        self.report.anomalies.extend(anomalies);
        Ok(())
    }

    /// Every node up, nothing queued or in flight.
    fn quiet(&self) -> bool {
        self.nodes.iter().enumerate().filter(|(i, _)| !self.outside.contains(i)).all(|(_, n)| {
            n.up.as_ref().is_some_and(|u| u.links.values().all(|l| l.in_flight.is_none())) && n.backlog().is_empty()
        }) && self.roster_quiet()
    }

    /// The run's operations and faults, drawn up front.
    fn plan(&mut self) {
        let n = self.nodes.len();
        let start = EPOCH_MS;
        let active_end = EPOCH_MS + self.cfg.active_ms;
        let asean: Vec<usize> = (0..n)
            .filter(|i| self.roster.member(&self.nodes[*i].code).is_some_and(|m| m.community.as_str() == "ASEAN"))
            .collect();
        let mut pairs = BTreeSet::new();
        while pairs.len() < self.cfg.direct_lines as usize {
            let a = self.rng_ops.below(n as u64) as usize;
            let b = self.rng_ops.below(n as u64) as usize;
            if a != b && !pairs.contains(&(b, a)) {
                pairs.insert((a, b));
            }
        }
        for (a, b) in pairs {
            let both_asean = asean.contains(&a) && asean.contains(&b);
            let scope = if both_asean && self.rng_ops.chance(0.5) { "ADMM" } else { "ADMM-Plus" };
            let t = start + self.rng_ops.range(0, 60_000);
            self.at(t, Ev::Op(Op::CreateLine { members: vec![a, b], scope, tries: 0 }));
        }
        for c in 0..self.cfg.conferences {
            let (pool, scope): (Vec<usize>, &'static str) =
                if c == 0 { (asean.clone(), "ADMM") } else { ((0..n).collect(), "ADMM-Plus") };
            let size = self.rng_ops.range(4, 6) as usize;
            let mut members = Vec::new();
            while members.len() < size.min(pool.len()) {
                let m = *self.rng_ops.pick(&pool).unwrap_or(&0);
                if !members.contains(&m) {
                    members.push(m);
                }
            }
            let t = start + self.rng_ops.range(0, 60_000);
            self.at(t, Ev::Op(Op::CreateLine { members, scope, tries: 0 }));
        }
        for _ in 0..self.cfg.messages {
            let t = self.rng_ops.range(start + 60_000, active_end);
            self.at(t, Ev::Op(Op::Send));
        }
        for _ in 0..self.cfg.decisions {
            let t = self.rng_ops.range(start + 90_000, active_end - 60_000);
            self.at(t, Ev::Op(Op::Propose));
        }
        for _ in 0..self.cfg.membership_changes {
            let t = self.rng_ops.range(start + 90_000, active_end - 60_000);
            self.at(t, Ev::Op(Op::AddMember));
            let t = self.rng_ops.range(start + 90_000, active_end - 60_000);
            self.at(t, Ev::Op(Op::RemoveMember));
        }
        for i in 0..n {
            let t = start + self.rng_ops.range(60_000, 240_000);
            self.at(t, Ev::Checkpoint { node: i });
        }
        let f = self.cfg.faults.clone();
        let window = |rng: &mut Rng| rng.range(start + 60_000, active_end - 10_000);
        for _ in 0..f.crashes {
            let t = window(&mut self.rng_faults);
            let node = self.rng_faults.below(n as u64) as usize;
            let down_ms = self.rng_faults.range(2_000, 90_000);
            self.at(t, Ev::Fault(Fault::Crash { node, down_ms }));
        }
        for _ in 0..f.isolations {
            let t = window(&mut self.rng_faults);
            let node = self.rng_faults.below(n as u64) as usize;
            let ms = self.rng_faults.range(5_000, 180_000);
            self.at(t, Ev::Fault(Fault::Isolate { node, ms }));
        }
        for k in 0..(f.cuts + f.one_way_cuts) {
            let t = window(&mut self.rng_faults);
            let from = self.rng_faults.below(n as u64) as usize;
            let to = (from + 1 + self.rng_faults.below(n as u64 - 1) as usize) % n;
            let ms = self.rng_faults.range(5_000, 180_000);
            self.at(t, Ev::Fault(Fault::Cut { from, to, ms, one_way: k >= f.cuts }));
        }
        for _ in 0..f.clock_steps {
            let t = window(&mut self.rng_clock);
            let node = self.rng_clock.below(n as u64) as usize;
            let by = self.rng_clock.range(HOUR_MS, 25 * HOUR_MS) as i64;
            let by_ms = if self.rng_clock.chance(0.5) { by } else { -by };
            // Half the time the node is started again soon after, and takes up the stepped clock.
            let restart_ms = self.rng_clock.chance(0.5).then(|| self.rng_clock.range(1_000, 30_000));
            self.at(t, Ev::Fault(Fault::ClockStep { node, by_ms, restart_ms }));
        }
        let skewed = self.nodes.iter().filter(|n| n.wall_skew_ms != 0).count() as u64;
        self.report.faults.insert("clock_skew_nodes", skewed);
        self.plan_roster();
        if self.hostile.is_some() {
            for _ in 0..self.cfg.hostile_attempts {
                let t = self.rng_hostile.range(start + 120_000, active_end);
                self.at(t, Ev::Op(Op::Hostile(None)));
            }
        }
    }

    /// Handles one event; returns the node whose state it touched, if any.
    fn handle(&mut self, ev: Ev) -> Option<usize> {
        let (kind, node) = ev.describe();
        // FNV-1a over the event's time, kind and node.
        for b in self.now.to_le_bytes().into_iter().chain([kind, node as u8]) {
            self.report.schedule_digest = (self.report.schedule_digest ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        match ev {
            Ev::Deliver { from, to, wire } => self.deliver(from, to, wire),
            Ev::Timeout { node, peer, id } => {
                let up = self.nodes[node].up.as_mut()?;
                let link = up.links.entry(peer).or_default();
                if link.in_flight.as_ref().is_some_and(|(i, _)| *i == id) {
                    link.in_flight = None;
                    let delay = up.link_failed(peer);
                    let t = self.now + delay;
                    self.schedule_poll(node, peer, t);
                }
                Some(node)
            }
            Ev::Poll { node, peer } => {
                self.poll(node, peer);
                Some(node)
            }
            Ev::Tick { node, wake } => {
                let now = self.nodes[node].now(self.now);
                let up = self.nodes[node].up.as_mut()?;
                if up.tick_at != Some(wake) {
                    return None;
                }
                up.tick_at = None;
                if let Err(e) = self.nodes[node].tick(now) {
                    self.anomaly(format!("{} cannot commit its timers: {e}", self.nodes[node].code));
                }
                Some(node)
            }
            Ev::Restart { node } => {
                if self.nodes[node].is_up() {
                    return None;
                }
                self.restart(node);
                Some(node)
            }
            Ev::Checkpoint { node } => {
                self.checkpoint(node);
                if !self.healed {
                    let t = self.now + 180_000;
                    self.at(t, Ev::Checkpoint { node });
                }
                Some(node)
            }
            Ev::Op(op) => self.operate(op),
            Ev::Fault(f) => {
                if self.healed {
                    return None;
                }
                match f {
                    Fault::Crash { node, down_ms } => {
                        if !self.nodes[node].is_up() {
                            return None;
                        }
                        self.fault("crash");
                        self.crash(node, down_ms);
                    }
                    Fault::Isolate { node, ms } => {
                        self.fault("partition_node");
                        self.net.isolate(node, self.now + ms);
                    }
                    Fault::Cut { from, to, ms, one_way } => {
                        self.fault(if one_way { "partition_link_one_way" } else { "partition_link" });
                        self.net.cut(from, to, self.now + ms);
                        if !one_way {
                            self.net.cut(to, from, self.now + ms);
                        }
                    }
                    Fault::ClockStep { node, by_ms, restart_ms } => {
                        self.fault("clock_step");
                        self.nodes[node].wall_skew_ms += by_ms;
                        if let Some(down_ms) = restart_ms.filter(|_| self.nodes[node].is_up()) {
                            self.fault("clock_step_restart");
                            self.crash(node, down_ms);
                        }
                    }
                }
                None
            }
            Ev::RosterSync { node } => self.roster_sync(node),
            Ev::Roster(op) => self.roster_op(op),
            Ev::Heal => {
                self.healed = true;
                self.truth.healed_ms = self.now;
                self.net.heal();
                for i in 0..self.nodes.len() {
                    if !self.nodes[i].is_up() && !self.outside.contains(&i) {
                        self.restart(i);
                        self.after(i);
                    }
                }
                None
            }
        }
    }

    fn crash(&mut self, node: usize, down_ms: u64) {
        self.nodes[node].crash();
        let t = self.now + down_ms;
        self.at(t, Ev::Restart { node });
    }

    fn restart(&mut self, node: usize) {
        // A member outside the first roster starts once a version admits it, with the chain up to
        // that version in its configuration.
        let given = if self.outside.contains(&node) {
            match self.plan.admission_chain.clone() {
                Some(chain) => {
                    self.outside.remove(&node);
                    chain
                }
                None => return,
            }
        } else {
            Vec::new()
        };
        let cfg = self.config(node);
        let engine = self.engine_config(node);
        let now = self.now;
        let first = self.first_roster.clone();
        match self.nodes[node].start(cfg, engine, now, &first, &given) {
            Ok(inserted) => self.react(node, inserted),
            Err(e) => {
                let code = self.nodes[node].code.clone();
                self.anomaly(format!("{code} could not restart from its database: {e}"));
            }
        }
    }

    /// After an event at a node: schedule its core's next wake and poll every link with a backlog.
    fn after(&mut self, node: usize) {
        let mut backlog = self.nodes[node].backlog();
        // A link waits while this node's roster does not list its peer or suspends it.
        backlog.retain(|(peer, _)| self.nodes[node].admits(peer));

        let Some(up) = self.nodes[node].up.as_mut() else { return };
        let mut polls = Vec::new();
        for (peer, _) in backlog {
            if let Some(&p) = self.index.get(&peer) {
                let link = up.links.entry(p).or_default();
                if link.in_flight.is_none() && link.poll_at.is_none() {
                    polls.push(p);
                }
            }
        }
        let tick = match up.core().next_wake() {
            Some(w) if up.tick_at != Some(w) => {
                up.tick_at = Some(w);
                Some(w)
            }
            _ => None,
        };
        for p in polls {
            let now = self.now;
            self.schedule_poll(node, p, now);
        }
        if let Some(w) = tick {
            let t = self.nodes[node].sim_time(w);
            self.at(t, Ev::Tick { node, wake: w });
        }
    }

    fn schedule_poll(&mut self, node: usize, peer: usize, t: u64) {
        let Some(up) = self.nodes[node].up.as_mut() else { return };
        let link = up.links.entry(peer).or_default();
        if link.poll_at.is_some_and(|p| p <= t) {
            return;
        }
        link.poll_at = Some(t);
        self.at(t, Ev::Poll { node, peer });
    }

    fn poll(&mut self, node: usize, peer: usize) {
        let now_node = self.nodes[node].now(self.now);
        let peer_code = self.nodes[peer].code.clone();
        {
            let Some(up) = self.nodes[node].up.as_mut() else { return };
            let link = up.links.entry(peer).or_default();
            if link.poll_at.is_some_and(|t| t > self.now) {
                return;
            }
            link.poll_at = None;
            if link.in_flight.is_some() {
                return;
            }
        }
        // The link waits while this node's roster does not list the peer or suspends it.
        if !self.nodes[node].admits(&peer_code) {
            return;
        }
        match self.nodes[node].outbox(&peer_code, peer, now_node) {
            Ok(items) => {
                let id = self.next_request;
                self.next_request += 1;
                let body = encode_batch(items.iter().map(|i| i.bytes.as_slice()));
                if let Some(up) = self.nodes[node].up.as_mut() {
                    up.links.entry(peer).or_default().in_flight = Some((id, items));
                }
                self.send(node, peer, Wire::Batch { id, body });
                let t = self.now + REQUEST_TIMEOUT_MS;
                self.at(t, Ev::Timeout { node, peer, id });
            }
            Err(Some(due)) => {
                let t = self.nodes[node].sim_time(due).max(self.now + 1);
                self.schedule_poll(node, peer, t);
            }
            Err(None) => {}
        }
    }

    fn send(&mut self, from: usize, to: usize, wire: Wire) {
        let arrivals = self.net.arrivals(&mut self.rng_net, from, to, self.now);
        if arrivals.is_empty() {
            self.fault(if self.net.open(from, to, self.now) { "message_lost" } else { "message_cut" });
            return;
        }
        if arrivals.len() > 1 {
            self.fault("message_duplicated");
        }
        let copies = arrivals.len();
        let mut wire = Some(wire);
        for (k, t) in arrivals.into_iter().enumerate() {
            let w = if k + 1 == copies { wire.take() } else { wire.as_ref().map(Wire::copy) };
            if let Some(w) = w {
                self.at(t, Ev::Deliver { from, to, wire: w });
            }
        }
    }

    fn deliver(&mut self, from: usize, to: usize, wire: Wire) -> Option<usize> {
        if !self.net.open(from, to, self.now) || !self.nodes[to].is_up() {
            return None;
        }
        match wire {
            Wire::Exchange { number, proposals } => {
                self.on_exchange(from, to, number, proposals);
                Some(to)
            }
            Wire::ExchangeReply { number, versions, proposals } => {
                self.on_exchange_reply(from, to, number, versions, proposals);
                Some(to)
            }
            // The listener takes connections only from members its roster lists and does not
            // suspend: the sender's link fails and tries again.
            Wire::Batch { .. } if !self.nodes[to].admits(&self.nodes[from].code) => None,
            Wire::Batch { id, body } => {
                let active = !self.healed;
                let faults = BatchFaults {
                    crash_before_commit: active && self.rng_faults.chance(self.cfg.faults.crash_mid_batch),
                    crash_after_commit: active && self.rng_faults.chance(self.cfg.faults.crash_mid_batch),
                };
                let now = self.nodes[to].now(self.now);
                let peer = self.nodes[from].code.clone();
                match self.nodes[to].handle_batch(&peer, &body, now, faults) {
                    Handled::Crashed { early } => {
                        self.fault("crash_mid_batch");
                        if let Some(verdicts) = early {
                            self.truth.early_replies += 1;
                            self.send(to, from, Wire::Reply { id, verdicts });
                        }
                        let down = self.rng_faults.range(1_000, 30_000);
                        let t = self.now + down;
                        self.at(t, Ev::Restart { node: to });
                    }
                    Handled::Answered { verdicts, inserted, early } => {
                        if early {
                            self.truth.early_replies += 1;
                        }
                        self.report.accepted += verdicts.iter().filter(|v| **v == Verdict::Accepted).count() as u64;
                        self.send(to, from, Wire::Reply { id, verdicts });
                        self.react(to, inserted);
                    }
                }
                Some(to)
            }
            Wire::Reply { id, verdicts } => {
                let node = to;
                let peer = from;
                let now = self.nodes[node].now(self.now);
                let peer_code = self.nodes[peer].code.clone();
                let up = self.nodes[node].up.as_mut()?;
                let link = up.links.entry(peer).or_default();
                if link.in_flight.as_ref().is_none_or(|(i, _)| *i != id) {
                    return None;
                }
                let (_, items) = link.in_flight.take()?;
                if verdicts.len() != items.len() {
                    let t = self.now + up.link_failed(peer);
                    self.schedule_poll(node, peer, t);
                    return Some(node);
                }
                if let Err(e) = self.nodes[node].settle(peer, &peer_code, &items, verdicts, now) {
                    let code = self.nodes[node].code.clone();
                    self.anomaly(format!("{code} cannot settle a batch: {e}"));
                }
                let t = self.now;
                self.schedule_poll(node, peer, t);
                Some(node)
            }
        }
    }

    /// What the operators at `node` do about records newly committed from peers.
    fn react(&mut self, node: usize, inserted: Vec<Record>) {
        let me = self.nodes[node].code.clone();
        for r in inserted {
            if r.is_own() {
                continue;
            }
            let body = r.envelope.body();
            let answered = Answered { hash: r.envelope.hash(), sender: r.sender.clone(), seq: body.seq };
            match &r.content {
                Content::Message(m) if m.has_deadline() => {
                    let deadline_ms = m.deadline_s.unwrap_or(0) * 1000;
                    let roll = self.rng_ops.below(100);
                    let kind = match roll {
                        0..=54 => ReceiptKind::Acknowledged,
                        55..=64 => ReceiptKind::Declined,
                        _ => continue,
                    };
                    let t = self.now + self.rng_ops.range(1_000, deadline_ms * 14 / 10);
                    let op = Op::Answer { node, line: r.line.id, answered, kind, priority: body.priority };
                    self.at(t, Ev::Op(op));
                }
                Content::Decision(d) if d.parties.contains(&me) => {
                    let roll = self.rng_ops.below(100);
                    let concur = match roll {
                        0..=74 => true,
                        75..=89 => false,
                        _ => continue,
                    };
                    let t = self.now + self.rng_ops.range(2_000, 120_000);
                    let op = Op::Concur {
                        node,
                        line: r.line.id,
                        decision: r.envelope.hash(),
                        text_sha256: d.text_sha256(),
                        concur,
                    };
                    self.at(t, Ev::Op(op));
                }
                _ => {}
            }
        }
    }

    /// Lines as the simulation knows them: (line, home, current members).
    fn known_lines(&self) -> Vec<(LineId, Vec<MemberCode>)> {
        self.truth.membership.iter().filter_map(|(id, h)| h.last().map(|(_, m)| (*id, m.clone()))).collect()
    }

    fn operate(&mut self, op: Op) -> Option<usize> {
        match op {
            Op::CreateLine { members, scope, tries } => {
                let home = members[0];
                match self.create_line(&members, scope) {
                    Ok(()) => {}
                    Err(retry) if retry && tries < 20 => {
                        let t = self.now + 30_000;
                        self.at(t, Ev::Op(Op::CreateLine { members, scope, tries: tries + 1 }));
                    }
                    Err(_) => {}
                }
                Some(home)
            }
            Op::Send => {
                let lines = self.known_lines();
                let (line, members) = self.rng_ops.pick(&lines)?.clone();
                let sender = self.index[self.rng_ops.pick(&members)?];
                let precedence = match self.rng_ops.below(100) {
                    0..=19 => "FLASH",
                    20..=39 => "IMMEDIATE",
                    40..=64 => "PRIORITY",
                    _ => "ROUTINE",
                };
                let ack = precedence == "FLASH" || self.rng_ops.chance(0.6);
                let n = self.report.messages + 1;
                let draft = Draft {
                    precedence: precedence.into(),
                    class: Some(if self.rng_ops.chance(0.9) { "OPERATIONAL" } else { "SERVICE" }.into()),
                    caveat: None,
                    subject: format!("Simulated message {n}"),
                    body: format!("Message {n} from {} on line {line}.", self.nodes[sender].code),
                    ack_required: Some(ack),
                    crisis: None,
                    form: None,
                    ewg: None,
                };
                self.own(sender, "message", |core, now| core.send(now, line, draft, None).map(|r| vec![r]));
                Some(sender)
            }
            Op::Answer { node, line, answered, kind, priority } => {
                let reason = (kind == ReceiptKind::Declined).then(|| "not this watch's to decide".to_string());
                let message = answered.hash;
                let me = self.nodes[node].code.clone();
                let now = self.nodes[node].now(self.now);
                let done = self.own(node, kind.as_str(), |core, now| {
                    core.answer(now, line, answered, kind, reason, priority).map(|r| vec![r])
                });
                if done {
                    self.truth.answered.insert((message, me), Answer { node_ms: now, sim_ms: self.now });
                }
                Some(node)
            }
            Op::Propose => {
                let lines: Vec<_> = self.known_lines().into_iter().filter(|(_, m)| m.len() > 2).collect();
                let (line, members) = self.rng_ops.pick(&lines)?.clone();
                let proposer = self.index[self.rng_ops.pick(&members)?];
                let decision = Decision {
                    text: format!("The parties agree to hold exercise {} outside the declared area.", self.now),
                    parties: members.clone(),
                    deadline_s: None,
                    supersedes: None,
                };
                let parties = members.clone();
                let hash = self.own_hash(proposer, "decision", |core, now| {
                    core.propose_decision(now, line, decision).map(|r| vec![r])
                });
                if let Some(h) = hash {
                    self.truth.decisions.insert(h, parties);
                }
                Some(proposer)
            }
            Op::Concur { node, line, decision, text_sha256, concur } => {
                let reason = (!concur).then(|| "the area overlaps a fishing ground".to_string());
                let answer = Concurrence { decision, text_sha256, concur, reason };
                let me = self.nodes[node].code.clone();
                let done =
                    self.own(node, "concurrence", |core, now| core.answer_decision(now, line, answer).map(|r| vec![r]));
                if done && concur {
                    self.truth.concurred.insert((decision, me));
                }
                Some(node)
            }
            Op::AddMember => self.add_member(),
            Op::RemoveMember => self.remove_member(),
            Op::Hostile(attack) => self.hostile_attempt(attack),
        }
    }

    /// An operator's operation at `node`: seal with the core, commit, and only then count it as
    /// done (the API's 201). Returns whether it was committed.
    fn own(
        &mut self,
        node: usize,
        kind: &'static str,
        seal: impl FnOnce(&mut adi_core::Hotline, u64) -> Result<Vec<Record>, adi_core::CoreError>,
    ) -> bool {
        self.own_hash(node, kind, seal).is_some()
    }

    fn own_hash(
        &mut self,
        node: usize,
        kind: &'static str,
        seal: impl FnOnce(&mut adi_core::Hotline, u64) -> Result<Vec<Record>, adi_core::CoreError>,
    ) -> Option<EnvelopeHash> {
        let now = self.nodes[node].now(self.now);
        let up = self.nodes[node].up.as_mut()?;
        let records = seal(up.engine.core_mut(), now).ok()?;
        if self.healed || !self.rng_faults.chance(self.cfg.faults.crash_mid_send) {
            let batch = WriteBatch { records: records.clone(), ..WriteBatch::default() };
            if self.nodes[node].commit(batch).is_ok() {
                for r in &records {
                    self.log_own(node, kind, r);
                }
                return records.first().map(|r| r.envelope.hash());
            }
        }
        self.fault("crash_mid_send");
        let down = self.rng_faults.range(1_000, 30_000);
        self.crash(node, down);
        None
    }

    fn log_own(&mut self, node: usize, kind: &'static str, r: &Record) {
        let body = r.envelope.body();
        if std::env::var("ADI_SIM_TRACE").is_ok_and(|p| body.line.to_string().starts_with(&p)) {
            let to: Vec<&str> = r.recipients.iter().map(|m| m.as_str()).collect();
            let members: Vec<&str> = r.line.members.iter().map(|m| m.as_str()).collect();
            eprintln!(
                "{} own {kind} #{} epoch {} to {to:?}, members {members:?}",
                self.nodes[node].code, body.seq, body.epoch
            );
        }
        let (precedence, due_ms) = match &r.content {
            Content::Message(m) => {
                (Some(m.precedence), m.deadline_s.filter(|_| m.has_deadline()).map(|d| body.created_ms + d * 1000))
            }
            _ => (None, None),
        };
        if kind == "message" {
            self.report.messages += 1;
        } else if !matches!(r.content, Content::Handshake(_) | Content::LineSetup) {
            self.report.answers += 1;
        }
        let recipients = r.recipients.iter().filter_map(|m| self.index.get(m).copied()).collect();
        self.truth.sent.push(Sent {
            hash: r.envelope.hash(),
            line: r.line.id,
            sender: node,
            seq: body.seq,
            kind,
            precedence,
            due_ms,
            recipients,
        });
    }

    /// Records the members of a line from the epoch its home member's group is now at.
    fn note_membership(&mut self, home: usize, line: LineId) {
        let Some(up) = self.nodes[home].up.as_ref() else { return };
        let (Some(epoch), Some(l)) = (up.core().epoch(&line), up.core().line(&line)) else { return };
        let members = l.members.clone();
        self.truth.membership.entry(line).or_default().push((epoch, members));
    }

    /// Claims a KeyPackage of `member` for `home`, over the simulated network: both must be up
    /// and able to reach each other.
    fn claim(&mut self, home: usize, member: usize) -> Result<adi_mls::KeyPackage, String> {
        if !self.nodes[member].is_up()
            || !self.net.open(home, member, self.now)
            || !self.net.open(member, home, self.now)
        {
            return Err(format!("{} does not answer", self.nodes[member].code));
        }
        let home_code = self.nodes[home].code.clone();
        let member_code = self.nodes[member].code.clone();
        let now_m = self.nodes[member].now(self.now);
        let bytes = self.nodes[member].hand_out_key_package(&home_code, now_m).map_err(|e| e.to_string())?;
        let now_h = self.nodes[home].now(self.now);
        self.nodes[home].take_key_package(&member_code, &bytes, now_h)
    }

    /// Err(true) when worth trying again later.
    fn create_line(&mut self, members: &[usize], scope: &'static str) -> Result<(), bool> {
        let home = members[0];
        // A member whose standing an amendment changes is left off set-ups until every node
        // holds the version (one that has not would refuse the set-up, or one that has would).
        if members.iter().any(|m| self.unsettled(*m)) {
            return Err(true);
        }
        let req = NewLine {
            members: members.iter().map(|m| self.nodes[*m].code.to_string()).collect(),
            scope: scope.into(),
            title: Some(format!("Simulated line {}", self.report.lines + 1)),
        };
        let others = {
            let up = self.nodes[home].up.as_ref().ok_or(true)?;
            up.core().check_new_line(&req).map_err(|_| false)?
        };
        let mut kps = Vec::new();
        for m in others {
            let i = self.index[&m];
            kps.push((m, self.claim(home, i).map_err(|_| true)?));
        }
        let id = LineId(self.rng_ops.bytes16());
        let hash = self.own_hash(home, "line_setup", |core, now| core.create_line(now, id, req, kps).map(|r| vec![r]));
        if hash.is_none() {
            return Err(true);
        }
        self.report.lines += 1;
        self.truth.homes.insert(id, home);
        self.note_membership(home, id);
        Ok(())
    }

    fn conference_at_home(&mut self) -> Option<(usize, Line)> {
        let lines: Vec<_> = self.known_lines().into_iter().filter(|(_, m)| m.len() > 2).collect();
        let (id, _) = self.rng_ops.pick(&lines)?.clone();
        let home = (0..self.nodes.len()).find(|i| {
            self.nodes[*i].up.as_ref().and_then(|u| u.core().line(&id)).is_some_and(|l| l.home == self.nodes[*i].code)
        })?;
        let line = self.nodes[home].up.as_ref()?.core().line(&id)?.clone();
        Some((home, line))
    }

    fn add_member(&mut self) -> Option<usize> {
        let (home, line) = self.conference_at_home()?;
        if line.members.iter().any(|m| self.index.get(m).is_some_and(|i| self.unsettled(*i))) {
            return None;
        }
        let candidates: Vec<usize> = (0..self.nodes.len())
            .filter(|i| {
                let code = &self.nodes[*i].code;
                !line.has_member(code)
                    && !self.unsettled(*i)
                    && self.nodes[home].up.as_ref().is_some_and(|u| u.core().check_new_member(line.id, code).is_ok())
            })
            .collect();
        let member = *self.rng_ops.pick(&candidates)?;
        let code = self.nodes[member].code.clone();
        let kp = self.claim(home, member).ok()?;
        let id = line.id;
        if self.own_hash(home, "add_member", |core, now| core.add_member(now, id, &code, kp)).is_some() {
            *self.report.operations.entry("member_added").or_insert(0) += 1;
            self.note_membership(home, id);
        }
        Some(home)
    }

    fn remove_member(&mut self) -> Option<usize> {
        let (home, line) = self.conference_at_home()?;
        if line.members.len() <= 3 {
            return None;
        }
        let candidates: Vec<MemberCode> = line.members.iter().filter(|m| **m != line.home).cloned().collect();
        let member = self.rng_ops.pick(&candidates)?.clone();
        self.remove_from(home, line.id, &member);
        Some(home)
    }

    /// The home member takes `member` off a line. Where it is the hostile member, its state on
    /// the line as its node holds it now is kept for what it sends after ([`hostile`]).
    fn remove_from(&mut self, home: usize, id: LineId, member: &MemberCode) -> bool {
        let hostile = self.hostile.filter(|h| self.nodes[*h].code == *member);
        let before = hostile.and_then(|h| {
            let up = self.nodes[h].up.as_ref()?;
            let snapshot = up.core().mls_snapshot().ok()?;
            let head = self.nodes[h].stored(&id).keys().filter(|(s, _)| s == member.as_str()).map(|(_, q)| *q).max();
            Some((id, snapshot, head.unwrap_or(0)))
        });
        let removed = self
            .own_hash(home, "remove_member", |core, now| core.remove_member(now, id, member).map(|r| vec![r]))
            .is_some();
        if removed {
            *self.report.operations.entry("member_removed").or_insert(0) += 1;
            self.note_membership(home, id);
            self.hostile_removed.extend(before);
        }
        removed
    }

    /// One attempt of the hostile member's ([`hostile`]): `attack`, or one drawn, built from its
    /// key and its MLS state, handed to another member's node over its connection, and kept with
    /// the verdicts.
    fn hostile_attempt(&mut self, attack: Option<hostile::Attack>) -> Option<usize> {
        use hostile::Attack;
        let h = self.hostile?;
        let attack = match attack {
            Some(a) => a,
            None => {
                // Without amendments, the roster's attacks are left out: a seed draws as it did
                // before they existed.
                let roster = self.cfg.roster.amendments;
                let attacks: Vec<Attack> =
                    self.cfg.hostile_attacks.iter().copied().filter(|a| roster || !a.is_roster()).collect();
                *self.rng_hostile.pick(&attacks)?
            }
        };
        match attack {
            Attack::ClaimFlood => return self.claim_flood(h),
            Attack::AfterRemoval => return self.after_removal(h),
            Attack::ForgedRosterSignature => return self.roster_forgery(h, false),
            Attack::AlteredRoster => return self.roster_forgery(h, true),
            _ => {}
        }
        let me = self.nodes[h].code.clone();
        let up = self.nodes[h].up.as_ref()?;
        let lines: Vec<Line> = up.core().lines().filter(|l| l.has_member(&me)).cloned().collect();
        let line = self.rng_hostile.pick(&lines)?.clone();
        let others: Vec<usize> = line
            .members
            .iter()
            .filter(|m| **m != me)
            .filter_map(|m| self.index.get(m).copied())
            .filter(|i| self.nodes[*i].is_up())
            .collect();
        let victim = *self.rng_hostile.pick(&others)?;
        let key = adi_core::fixtures::key(self.nodes[h].key_seed);
        let stored = self.nodes[h].stored(&line.id);
        let head = stored.keys().filter(|(s, _)| *s == me.as_str()).map(|(_, q)| *q).max().unwrap_or(0);
        let relayed = stored.iter().find(|((s, _), _)| *s != me.as_str()).map(|(_, (_, bytes, _))| bytes.clone());
        // The hostile member's envelopes on the line the victim holds.
        let at_victim: Vec<(u64, EnvelopeHash, Vec<u8>)> = self.nodes[victim]
            .stored(&line.id)
            .into_iter()
            .filter(|((s, _), _)| *s == me.as_str())
            .map(|((_, q), (hash, bytes, _))| (q, hash, bytes))
            .collect();
        let victim_code = self.nodes[victim].code.clone();
        let now = self.nodes[h].now(self.now);
        let mut kept = None;
        let envelopes = match attack {
            Attack::Replay => {
                let (_, _, held) = self.rng_hostile.pick(&at_victim)?;
                vec![hostile::replay(held, &key, head, now)?]
            }
            Attack::Equivocate => {
                let (seq, hash, held) = self.rng_hostile.pick(&at_victim)?;
                let (place, bytes) = hostile::equivocate(held, &key)?;
                kept = Some((place, *hash));
                debug_assert_eq!(place, *seq);
                vec![bytes]
            }
            Attack::HeldFlood => {
                let up = self.nodes[victim].up.as_ref()?;
                let epoch = up.core().epoch(&line.id)?;
                let count = up.engine.limits().held_per_sender_max + 2;
                hostile::held_flood(&me, &key, &line.id, epoch, head, count, now)
            }
            _ if hostile::spends_a_key(attack) => {
                // Decrypting the attempt spends its key at the victim: made with the member's
                // own state, and stored, the attempt takes a key the member's honest messages
                // then skip, as a modified node's would.
                let up = self.nodes[h].up.as_mut()?;
                let mls = up.engine.core_mut().line_member_mut();
                let bytes = hostile::envelope(attack, &me, &key, mls, &line, &victim_code, head, now, relayed)?;
                let delta = up.engine.core_mut().mls_delta().ok()?;
                self.nodes[h].commit(WriteBatch { mls_state: Some(delta), ..WriteBatch::default() }).ok()?;
                vec![bytes]
            }
            _ => {
                // Refused before any key is spent: made with a copy of the member's state.
                let snapshot = self.nodes[h].up.as_ref()?.core().mls_snapshot().ok()?;
                let mut mls = hostile::mls_copy(&me, &key, &snapshot, &line.id)?;
                vec![hostile::envelope(attack, &me, &key, &mut mls, &line, &victim_code, head, now, relayed)?]
            }
        };
        self.hand_over(attack, h, victim, line.id, &envelopes, kept)
    }

    /// Hands an attempt's envelopes to its victim, in batches as a node sends them, and keeps
    /// the verdicts.
    fn hand_over(
        &mut self,
        attack: hostile::Attack,
        h: usize,
        victim: usize,
        line: LineId,
        envelopes: &[Vec<u8>],
        kept: Option<(u64, EnvelopeHash)>,
    ) -> Option<usize> {
        let me = self.nodes[h].code.clone();
        if !self.nodes[victim].admits(&me) {
            return None;
        }
        let batch_len = self.nodes[victim].up.as_ref()?.engine.core_limits().batch_len_max.max(1);
        let mut verdicts = Vec::new();
        for chunk in envelopes.chunks(batch_len) {
            let body = encode_batch(chunk.iter().map(Vec::as_slice));
            let at = self.nodes[victim].now(self.now);
            match self.nodes[victim].handle_batch(&me, &body, at, BatchFaults::default()) {
                Handled::Answered { verdicts: answered, inserted, .. } => {
                    verdicts.extend(answered);
                    self.react(victim, inserted);
                }
                Handled::Crashed { .. } => {
                    let t = self.now + 1_000;
                    self.at(t, Ev::Restart { node: victim });
                    return Some(victim);
                }
            }
        }
        let held = (attack == hostile::Attack::HeldFlood).then(|| {
            let up = self.nodes[victim].up.as_ref();
            let counts = up.and_then(|u| u.store.held_counts(0).ok()).unwrap_or_default();
            let count = counts.iter().find(|c| c.line == line && c.sender == me).map_or(0, |c| c.count);
            let last = up.and_then(|u| u.store.held(&line, u64::MAX).ok()).unwrap_or_default();
            (count, last.iter().any(|e| e.epoch == u64::MAX))
        });
        *self.report.operations.entry(attack.as_str()).or_insert(0) += 1;
        self.truth.attempts.push(hostile::Attempt {
            attack,
            hostile: h,
            victim,
            line,
            verdicts,
            kept,
            claims: None,
            held,
        });
        Some(victim)
    }

    /// [`hostile::Attack::AfterRemoval`]: on a line the hostile member was taken off, an
    /// envelope made with the state it held before, to a member whose node holds the removal.
    /// Where it has not been taken off any line yet, a home member takes it off one now (its
    /// misconduct seen), and the attempt follows later.
    fn after_removal(&mut self, h: usize) -> Option<usize> {
        let me = self.nodes[h].code.clone();
        if self.hostile_removed.is_empty() {
            let mut homes: Vec<(usize, LineId)> = Vec::new();
            for (i, node) in self.nodes.iter().enumerate() {
                let Some(up) = node.up.as_ref() else { continue };
                for l in up.core().lines() {
                    if l.home == node.code && l.has_member(&me) && !l.is_direct() && l.members.len() > 3 {
                        homes.push((i, l.id));
                    }
                }
            }
            let (home, id) = *self.rng_hostile.pick(&homes)?;
            if self.remove_from(home, id, &me) {
                let t = (self.now + self.rng_hostile.range(60_000, 600_000)).min(EPOCH_MS + self.cfg.active_ms);
                self.at(t, Ev::Op(Op::Hostile(Some(hostile::Attack::AfterRemoval))));
            }
            return Some(home);
        }
        let (line, snapshot, head) = self.rng_hostile.pick(&self.hostile_removed)?.clone();
        let victims: Vec<usize> = (0..self.nodes.len())
            .filter(|i| *i != h)
            .filter(|i| self.nodes[*i].up.as_ref().is_some_and(|u| u.core().removed_after(&line, &me).is_some()))
            .collect();
        let victim = *self.rng_hostile.pick(&victims)?;
        let key = adi_core::fixtures::key(self.nodes[h].key_seed);
        let mut mls = hostile::mls_copy(&me, &key, &snapshot, &line)?;
        let at_line = self.nodes[victim].up.as_ref()?.core().line(&line)?.clone();
        let victim_code = self.nodes[victim].code.clone();
        let now = self.nodes[h].now(self.now);
        let attack = hostile::Attack::AfterRemoval;
        let bytes = hostile::envelope(attack, &me, &key, &mut mls, &at_line, &victim_code, head, now, None)?;
        self.hand_over(attack, h, victim, line, &[bytes], None)
    }

    /// [`hostile::Attack::ClaimFlood`]: the hostile member claims a victim's KeyPackages until
    /// one is refused over its quota (at most one more than the quota), then an honest member
    /// claims one from the same victim.
    fn claim_flood(&mut self, h: usize) -> Option<usize> {
        let me = self.nodes[h].code.clone();
        let up: Vec<usize> = (0..self.nodes.len()).filter(|i| *i != h && self.nodes[*i].is_up()).collect();
        let victim = *self.rng_hostile.pick(&up)?;
        let per_hour_max = self.nodes[victim].up.as_ref()?.engine.limits().key_package_claims_per_hour_max;
        let (mut granted, mut refused) = (0, false);
        for _ in 0..=per_hour_max {
            let now = self.nodes[victim].now(self.now);
            match self.nodes[victim].hand_out_key_package(&me, now) {
                Ok(_) => granted += 1,
                Err(ClaimRefused::OverQuota(_)) => {
                    refused = true;
                    break;
                }
                Err(ClaimRefused::Other(_)) => break,
            }
        }
        let honest: Vec<usize> = up.into_iter().filter(|i| *i != victim).collect();
        let probe = self.rng_hostile.pick(&honest).copied().map(|i| {
            let (code, now) = (self.nodes[i].code.clone(), self.nodes[victim].now(self.now));
            self.nodes[victim].hand_out_key_package(&code, now).is_ok()
        });
        let claims = hostile::Claims { granted, refused, per_hour_max, honest: probe };
        let attack = hostile::Attack::ClaimFlood;
        *self.report.operations.entry(attack.as_str()).or_insert(0) += 1;
        let line = LineId([0; 16]);
        self.truth.attempts.push(hostile::Attempt {
            attack,
            hostile: h,
            victim,
            line,
            verdicts: Vec::new(),
            kept: None,
            claims: Some(claims),
            held: None,
        });
        Some(victim)
    }

    /// Signs a checkpoint of each line log that grew, as the node does on its interval.
    fn checkpoint(&mut self, node: usize) {
        let now = self.nodes[node].now(self.now);
        let Some(up) = self.nodes[node].up.as_ref() else { return };
        let lines: Vec<LineId> = up.core().lines().map(|l| l.id).collect();
        let mut batch = WriteBatch::default();
        let mut signed = Vec::new();
        for line in lines {
            let places = up.store.line_places(&line).unwrap_or_default();
            let leaves: Vec<adi_record::Hash> =
                places.iter().map(|(h, _, _)| adi_record::merkle::leaf_hash(&h.0)).collect();
            let heads = adi_record::checkpoint::heads(places.iter().map(|(h, s, q)| (&h.0, s.as_str(), *q)));
            let last = self.truth.checkpoints.get(&(node, line)).and_then(|c| c.last()).map_or(0, |c| c.0);
            if leaves.len() as u64 <= last {
                continue;
            }
            let root = adi_record::merkle::root(&leaves);
            if let Ok(cp) = up.core().sign_checkpoint(line, leaves.len() as u64, root, heads, now) {
                batch.checkpoints.push(cp);
                signed.push((line, leaves.len() as u64, root));
            }
        }
        if batch.is_empty() {
            return;
        }
        if self.nodes[node].commit(batch).is_ok() {
            for (line, size, root) in signed {
                self.truth.checkpoints.entry((node, line)).or_default().push((size, root));
            }
        }
    }
}

impl Ev {
    /// The event's kind and the node it happens at, for the schedule digest.
    fn describe(&self) -> (u8, usize) {
        match self {
            Ev::Deliver { to, wire: Wire::Batch { .. }, .. } => (1, *to),
            Ev::Deliver { to, wire: Wire::Reply { .. }, .. } => (2, *to),
            Ev::Deliver { to, wire: Wire::Exchange { .. }, .. } => (13, *to),
            Ev::Deliver { to, wire: Wire::ExchangeReply { .. }, .. } => (14, *to),
            Ev::Timeout { node, .. } => (3, *node),
            Ev::Poll { node, .. } => (4, *node),
            Ev::Tick { node, .. } => (5, *node),
            Ev::Restart { node } => (6, *node),
            Ev::Checkpoint { node } => (7, *node),
            Ev::Op(_) => (8, 0),
            Ev::Fault(_) => (9, 0),
            Ev::Heal => (10, 0),
            Ev::RosterSync { node } => (11, *node),
            Ev::Roster(_) => (12, 0),
        }
    }
}

impl Wire {
    fn copy(&self) -> Wire {
        match self {
            Wire::Batch { id, body } => Wire::Batch { id: *id, body: body.clone() },
            Wire::Reply { id, verdicts } => Wire::Reply { id: *id, verdicts: verdicts.clone() },
            Wire::Exchange { number, proposals } => Wire::Exchange { number: *number, proposals: proposals.clone() },
            Wire::ExchangeReply { number, versions, proposals } => {
                Wire::ExchangeReply { number: *number, versions: versions.clone(), proposals: proposals.clone() }
            }
        }
    }
}
