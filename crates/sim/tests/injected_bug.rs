//! The checker must catch a real fault: with the listener answering `accepted` before its commit
//! (a test-only switch), a node that crashes between the answer and the commit loses envelopes
//! their senders were told it holds; with envelopes held from one member beyond its quota, a
//! hostile member's flood takes more of a victim's line than its share. Within the CI seed
//! budget the simulation must report each.

use adi_sim::hostile::Attack;
use adi_sim::{run, SimConfig};

/// Seeds tried at most: well inside the budget of the main simulation test.
const SEEDS_MAX: u64 = 40;

#[test]
fn acknowledging_before_commit_is_caught_within_the_seed_budget() {
    for seed in 1..=SEEDS_MAX {
        let mut cfg = SimConfig::new(seed);
        cfg.bugs.ack_before_commit = true;
        let report = run(&cfg).unwrap_or_else(|e| panic!("seed {seed}: the run failed: {e}"));
        let lost: Vec<&String> = report.anomalies.iter().filter(|a| a.contains("was marked delivered but")).collect();
        if !lost.is_empty() {
            eprintln!("seed {seed} caught the injected fault: {}", lost[0]);
            return;
        }
        eprintln!("seed {seed}: not caught ({} anomalies of other kinds)", report.anomalies.len());
    }
    panic!("acknowledging before commit went unnoticed over {SEEDS_MAX} seeds");
}

#[test]
fn without_the_fault_the_same_seeds_are_clean() {
    // The first seeds of the budget above, with the switch off: the finding is the fault's.
    for seed in 1..=3 {
        let report = run(&SimConfig::new(seed)).unwrap_or_else(|e| panic!("seed {seed}: the run failed: {e}"));
        assert!(report.anomalies.is_empty(), "seed {seed}: {:?}", report.anomalies);
    }
}

/// A run whose hostile member floods victims with envelopes from epochs ahead.
fn flooding(seed: u64) -> SimConfig {
    let mut cfg = SimConfig::new(seed);
    cfg.hostile_chance = 1.0;
    cfg.hostile_attacks = vec![Attack::HeldFlood];
    cfg
}

#[test]
fn holding_beyond_a_members_quota_is_caught_within_the_seed_budget() {
    for seed in 1..=SEEDS_MAX {
        let mut cfg = flooding(seed);
        cfg.bugs.hold_beyond_quota = true;
        let report = run(&cfg).unwrap_or_else(|e| panic!("seed {seed}: the run failed: {e}"));
        let over: Vec<&String> = report.anomalies.iter().filter(|a| a.contains("over held_per_sender_max")).collect();
        if !over.is_empty() {
            eprintln!("seed {seed} caught the injected fault: {}", over[0]);
            return;
        }
        eprintln!("seed {seed}: not caught ({} anomalies of other kinds)", report.anomalies.len());
    }
    panic!("holding beyond the quota went unnoticed over {SEEDS_MAX} seeds");
}

#[test]
fn without_the_fault_the_same_floods_are_held_to_the_quota() {
    // Seed 1's hostile member is on no line; seeds 2 and 3 flood, each of their 12 attempts.
    let mut floods = 0;
    for seed in 1..=3 {
        let report = run(&flooding(seed)).unwrap_or_else(|e| panic!("seed {seed}: the run failed: {e}"));
        floods += report.operations.get("hostile_held_flood").copied().unwrap_or(0);
        assert!(report.anomalies.is_empty(), "seed {seed}: {:?}", report.anomalies);
    }
    assert!(floods >= 12, "only {floods} floods over three seeds");
}
