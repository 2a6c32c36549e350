//! Seeds that once found an anomaly, each kept with what it found; every one must now run clean.

use adi_sim::{run, SimConfig};

/// (seed, what it found before its fix).
const SEEDS: &[(u64, &str)] = &[
    (
        777_000_931,
        "a decision ID proposed at an epoch when MM was on the line never reached SG: SG, started again \
         after MM was taken off, remembered only the line's current members and refused MM as a party",
    ),
    (
        2,
        "RU's message from an epoch when RU was on the line never reached TL: TL, started again after RU \
         was taken off, remembered only the line's current members and refused RU as not a member",
    ),
];

#[test]
fn seeds_that_once_found_anomalies_run_clean() {
    for (seed, found) in SEEDS {
        // As the seed ran when it was found: before the simulation had clock faults of hours.
        let mut cfg = SimConfig::new(*seed);
        cfg.faults.skew_hours_nodes = 0;
        cfg.faults.clock_steps = 0;
        let report = run(&cfg).unwrap_or_else(|e| panic!("seed {seed}: the run failed: {e}"));
        assert!(report.anomalies.is_empty(), "seed {seed} (once: {found}): {:?}", report.anomalies);
    }
}
