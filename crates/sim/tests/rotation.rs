//! A member's routine key rotation, driven through the whole network: the version giving it a new
//! key spreads, its node switches once every other member's node holds it, and messages go on
//! flowing under the new key with no anomaly.

use adi_sim::{run, SimConfig};

/// The seed run with a rotation drawn for certain.
const SEED: u64 = 1;

#[test]
fn a_member_rotates_its_key_and_its_envelopes_are_taken_under_the_new_one() {
    let mut cfg = SimConfig::new(SEED);
    cfg.roster.rotation_chance = 1.0;
    let report = run(&cfg).unwrap_or_else(|e| panic!("seed {SEED}: the run failed: {e}"));
    assert!(report.anomalies.is_empty(), "seed {SEED}: {:#?}", report.anomalies);
    assert_eq!(report.operations.get("roster_key_rotation_proposed"), Some(&1), "{:?}", report.operations);
    assert_eq!(report.operations.get("roster_key_switched"), Some(&1), "{:?}", report.operations);
    assert!(report.rotated_key_accepted > 0, "nothing signed under the new key was taken: {report:?}");
}
