//! A seed replays: the same seed gives the same schedule of events, faults and operations.

use adi_sim::{run, SimConfig};

#[test]
fn one_seed_twice_gives_the_same_run() {
    let seed = 7;
    let a = run(&SimConfig::new(seed)).expect("first run");
    let b = run(&SimConfig::new(seed)).expect("second run");
    assert_eq!(a.schedule_digest, b.schedule_digest, "the schedules differ");
    assert_eq!((a.sim_ms, a.messages, a.answers, a.accepted), (b.sim_ms, b.messages, b.answers, b.accepted));
    assert_eq!(a.faults, b.faults);
    assert_eq!(a.anomalies, b.anomalies);
    let c = run(&SimConfig::new(seed + 1)).expect("another seed");
    assert_ne!(a.schedule_digest, c.schedule_digest, "another seed, another schedule");
}
