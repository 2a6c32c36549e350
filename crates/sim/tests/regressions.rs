//! Seeds that once found an anomaly, each kept with what it found; every one must now run clean.

use adi_sim::{run, SimConfig};

/// (seed, what it found before its fix), run as the seed ran when it was found: before the
/// simulation had clock faults of hours or roster amendments.
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

/// (seed, what it found before its fix), found and run with the clock faults of hours (and
/// without roster amendments, which came later).
const CLOCK_SEEDS: &[(u64, &str)] = &[
    (
        777_001_702,
        "MY's FLASH to AU read as answered late: AU, restarted with its clock set back, read the same \
         times twice, and the checker placed its answer's time in the later reading, while MY held the \
         answer before its deadline",
    ),
    (777_001_002, "a FLASH read as answered late, as 777001702 (a recipient's clock set back and restarted)"),
    (777_001_481, "a FLASH read as answered late, as 777001702 (a recipient's clock set back and restarted)"),
    (
        69,
        "SG's #2, sent before SG was taken off the line but after the place the removal fixed, refused at JP \
         (`removed`, by design) and counted by the checker as never reaching JP",
    ),
    (
        777_000_207,
        "KH's FLASH to CN, sent after the place KH's removal fixed, refused at CN (`removed`, by design) \
         and counted by the checker as neither acknowledged nor alarmed",
    ),
    (
        777_001_992,
        "JP's #3, a receipt sent after the place JP's removal fixed, refused at TH (`removed`, by design) \
         while JP's #4, sent once a commit brought JP back, was taken: counted by the checker as a hole",
    ),
];

#[test]
fn seeds_that_once_found_anomalies_run_clean() {
    for (seed, found) in SEEDS {
        let mut cfg = SimConfig::new(*seed);
        cfg.faults.skew_hours_nodes = 0;
        cfg.faults.clock_steps = 0;
        cfg.roster.amendments = false;
        let report = run(&cfg).unwrap_or_else(|e| panic!("seed {seed}: the run failed: {e}"));
        assert!(report.anomalies.is_empty(), "seed {seed} (once: {found}): {:?}", report.anomalies);
    }
}

#[test]
fn seeds_that_once_found_anomalies_with_clock_faults_run_clean() {
    for (seed, found) in CLOCK_SEEDS {
        let mut cfg = SimConfig::new(*seed);
        cfg.roster.amendments = false;
        let report = run(&cfg).unwrap_or_else(|e| panic!("seed {seed}: the run failed: {e}"));
        assert!(report.anomalies.is_empty(), "seed {seed} (once: {found}): {:?}", report.anomalies);
    }
}

/// (seed, what it found before its fix), found and run as the seeds run now: clock faults, roster
/// amendments and key rotations.
const ROSTER_SEEDS: &[(u64, &str)] = &[(
    154,
    "ID's proposal of its renewed leaf after its key rotation crossed SG's commit and was refused \
     (`outdated`, by design), and its next key update, made under the retired key, left its leaf there \
     for good",
)];

#[test]
fn seeds_that_once_found_anomalies_with_roster_amendments_run_clean() {
    for (seed, found) in ROSTER_SEEDS {
        let report = run(&SimConfig::new(*seed)).unwrap_or_else(|e| panic!("seed {seed}: the run failed: {e}"));
        assert!(report.anomalies.is_empty(), "seed {seed} (once: {found}): {:?}", report.anomalies);
    }
}
