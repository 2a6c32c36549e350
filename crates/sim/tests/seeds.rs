//! Runs the simulation over many seeds and fails on any anomaly, printing each failing seed with
//! the command that replays it.
//!
//! `ADI_SIM_SEED=<seed>` replays one seed; `ADI_SIM_SEEDS=<n>` (default 200) and
//! `ADI_SIM_FIRST_SEED=<s>` (default 1) choose a range; `ADI_SIM_THREADS` how many run at once.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use adi_sim::{run, Report, SimConfig};

/// Seeds the test runs by default.
const SEEDS_DEFAULT: u64 = 200;

/// Writes to the test's standard error directly, past the harness's capture, so that progress and
/// the summary show in a plain `cargo test` run.
fn say(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.parse().unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}")))
}

fn seeds() -> Vec<u64> {
    if let Some(seed) = env_u64("ADI_SIM_SEED") {
        return vec![seed];
    }
    let first = env_u64("ADI_SIM_FIRST_SEED").unwrap_or(1);
    let n = env_u64("ADI_SIM_SEEDS").unwrap_or(SEEDS_DEFAULT);
    (first..first + n).collect()
}

/// Runs the seeds on a few threads, printing progress; returns each seed's report or error.
pub fn run_all(seeds: &[u64], make: impl Fn(u64) -> SimConfig + Sync) -> Vec<Result<Report, (u64, String)>> {
    let threads = env_u64("ADI_SIM_THREADS")
        .map(|t| t as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    // Seeds with an anomaly so far: told with the progress, so that a run cut off before its
    // summary still says what it found.
    let failing = AtomicUsize::new(0);
    let results = Arc::new(Mutex::new(BTreeMap::new()));
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(&seed) = seeds.get(i) else { break };
                let r = run(&make(seed)).map_err(|e| (seed, e));
                let found = match &r {
                    Ok(report) => report.anomalies.len(),
                    Err(_) => 1,
                };
                if found > 0 {
                    failing.fetch_add(1, Ordering::SeqCst);
                    say(format_args!("simulation: seed {seed} found {found} anomalies (listed at the end)"));
                }
                let d = done.fetch_add(1, Ordering::SeqCst) + 1;
                if d.is_multiple_of(10) || d == seeds.len() {
                    say(format_args!(
                        "simulation: {d}/{} seeds in {:.0} s, {} with anomalies",
                        seeds.len(),
                        started.elapsed().as_secs_f64(),
                        failing.load(Ordering::SeqCst)
                    ));
                }
                results.lock().unwrap_or_else(|p| p.into_inner()).insert(seed, r);
            });
        }
    });
    let map = std::mem::take(&mut *results.lock().unwrap_or_else(|p| p.into_inner()));
    map.into_values().collect()
}

#[test]
fn the_network_of_19_keeps_its_guarantees_under_every_fault() {
    let seeds = seeds();
    let started = Instant::now();
    let results = run_all(&seeds, SimConfig::new);
    let mut faults: BTreeMap<&str, u64> = BTreeMap::new();
    let mut operations: BTreeMap<&str, u64> = BTreeMap::new();
    let (mut sim_ms, mut messages, mut answers, mut lines, mut accepted) = (0, 0, 0, 0, 0);
    let mut rotated_key_accepted = 0;
    let mut hostile = 0;
    let mut failing = Vec::new();
    for r in &results {
        match r {
            Ok(report) => {
                for (k, v) in &report.faults {
                    *faults.entry(k).or_default() += v;
                }
                for (k, v) in &report.operations {
                    *operations.entry(k).or_default() += v;
                }
                sim_ms += report.sim_ms;
                messages += report.messages;
                answers += report.answers;
                lines += report.lines;
                accepted += report.accepted;
                rotated_key_accepted += report.rotated_key_accepted;
                hostile += u64::from(report.hostile.is_some());
                if !report.anomalies.is_empty() {
                    failing.push((report.seed, report.anomalies.clone()));
                }
            }
            Err((seed, e)) => failing.push((*seed, vec![format!("the run failed: {e}")])),
        }
    }
    let members = results.iter().flatten().map(|r| r.members).max().unwrap_or(0);
    say(format_args!("\n=== simulation summary"));
    say(format_args!("seeds: {} ({}..={})", seeds.len(), seeds.first().unwrap_or(&0), seeds.last().unwrap_or(&0)));
    say(format_args!("members per network: {members}"));
    say(format_args!("simulated hours: {:.1}", sim_ms as f64 / 3_600_000.0));
    say(format_args!("wall time: {:.1} s", started.elapsed().as_secs_f64()));
    say(format_args!("lines created: {lines}"));
    say(format_args!("operator messages committed: {messages}; answers, decisions and concurrences: {answers}"));
    say(format_args!("envelopes accepted by recipients: {accepted}"));
    say(format_args!("envelopes signed under a rotated member's new key, held by the others: {rotated_key_accepted}"));
    say(format_args!("seeds with a hostile member: {hostile}"));
    say(format_args!("operations: {operations:?}"));
    say(format_args!("faults injected by kind: {faults:?}"));
    let anomalies: usize = failing.iter().map(|(_, a)| a.len()).sum();
    say(format_args!("anomalies: {anomalies}"));
    for (seed, found) in &failing {
        say(format_args!(
            "\nseed {seed}: {} anomalies; replay with ADI_SIM_SEED={seed} cargo test -p adi-sim --test seeds",
            found.len()
        ));
        for a in found.iter().take(20) {
            say(format_args!("  - {a}"));
        }
    }
    assert!(failing.is_empty(), "{} of {} seeds found anomalies (listed above)", failing.len(), seeds.len());
    // Drawn by each seed (`SimConfig::hostile_chance`): over many seeds, at least half have one.
    if seeds.len() >= 20 {
        assert!(2 * hostile >= seeds.len() as u64, "a hostile member in only {hostile} of {} seeds", seeds.len());
        // And (`RosterConfig::rotation_chance`) a member's key rotation, with its node switched
        // and envelopes signed under the new key taken by the others.
        let switched = operations.get("roster_key_switched").copied().unwrap_or(0);
        assert!(
            switched > 0 && rotated_key_accepted > 0,
            "{switched} key rotations switched, {rotated_key_accepted} taken"
        );
    }
}
