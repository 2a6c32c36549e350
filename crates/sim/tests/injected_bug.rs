//! The checker must catch a real fault: with the listener answering `accepted` before its commit
//! (a test-only switch), a node that crashes between the answer and the commit loses envelopes
//! their senders were told it holds. Within the CI seed budget the simulation must report it.

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
