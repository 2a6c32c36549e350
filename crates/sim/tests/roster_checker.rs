//! The checker must catch a node that drives the roster wrongly: one that applies a proposal
//! lacking signatures, one that records a version without putting it in force (so that it
//! still takes a suspended member's envelopes), and a rotating member's node that goes on signing
//! under the key its rotation retired after it switched (which the other nodes still take). Each
//! is a switch of the simulation's driver (`RosterBugs`), off by default.

use adi_sim::{run, SimConfig};

/// Seeds tried at most.
const SEEDS_MAX: u64 = 10;

fn caught(what: &str, phrase: &str, set: impl Fn(&mut SimConfig)) {
    for seed in 1..=SEEDS_MAX {
        let mut cfg = SimConfig::new(seed);
        set(&mut cfg);
        let report = run(&cfg).unwrap_or_else(|e| panic!("seed {seed}: the run failed: {e}"));
        if let Some(a) = report.anomalies.iter().find(|a| a.contains(phrase)) {
            eprintln!("seed {seed} caught {what}: {a}");
            return;
        }
        eprintln!("seed {seed}: {what} not caught ({} anomalies of other kinds)", report.anomalies.len());
    }
    panic!("{what} went unnoticed over {SEEDS_MAX} seeds");
}

#[test]
fn applying_a_proposal_short_of_signatures_is_caught() {
    caught("a proposal applied short of signatures", "lacks the signatures its rule asks", |cfg| {
        cfg.roster_bugs.apply_short = true;
    });
}

#[test]
fn taking_a_suspended_members_envelopes_is_caught() {
    caught("a version recorded but not put in force", "after it applied the version suspending", |cfg| {
        cfg.roster_bugs.roster_not_in_force = true;
    });
}

#[test]
fn signing_under_a_retired_key_after_the_switch_is_caught() {
    caught("envelopes newly signed under a retired key", "signed under the key", |cfg| {
        cfg.roster.rotation_chance = 1.0;
        cfg.roster_bugs.keep_retired_key = true;
    });
}
