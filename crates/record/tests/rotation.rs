//! A member's key rotation in a bundle: anchored on a chain of roster versions, each member's
//! signatures are checked under every key the chain leaves trusted for it ([`Anchor::Chain`]),
//! and a member never goes back to a key it had left behind. Which keys a chain leaves trusted
//! (a key rotated, with its old key's signature, stays; a key replaced does not) is the
//! network-identity anchor's, `adi verify --network`, tested in `tests/verify_rotation.rs`.

mod support;

use std::collections::BTreeMap;

use adi_record::bundle::{verify_anchored, Anchor, Bundle};
use support::{countersigned, failed, keyed, message, Line, Tweak, MEMBERS};

/// The line every case starts from: CN signs under its first key (set 0), a roster version
/// moves it to its key of set 1, and it signs under that one.
///
/// | index | envelope | key |
/// | --- | --- | --- |
/// | 0 | PH #1 | the line's set-up |
/// | 1 | PH #2 | a message |
/// | 2 | CN #1 | receipt of PH #2, under CN's first key |
/// | 3 | CN #2 | a message, under CN's first key |
/// | 4 | CN #3 | a message, under CN's second key |
/// | 5 | PH #3 | receipt of CN #3 |
fn rotated_line() -> Line {
    rotated_line_with(Tweak::default())
}

/// [`rotated_line`], CN #3 made as `tweak` says.
fn rotated_line_with(tweak: Tweak) -> Line {
    let mut line = Line::default();
    line.setup();
    let ph = line.add("PH", message("Vessels in sight", "Two patrol vessels north of the shoal.", None));
    let receipt = line.receipt("decrypted", ph);
    line.add("CN", receipt);
    line.add("CN", message("Keeping clear", "Our vessels keep 5 nautical miles away.", None));
    line.moved.insert("CN".into(), 1);
    let cn = line.add_with("CN", message("New key", "Signed under our new key.", None), tweak);
    let ack = line.receipt("acknowledged", cn);
    line.add("PH", ack);
    line
}

/// The anchor of a chain that leaves each member its key of set 0, and `member` its keys of
/// `sets` (oldest first) instead.
fn anchor(bundle: &Bundle, member: &str, sets: &[u8]) -> Anchor {
    let mut keys: BTreeMap<String, Vec<[u8; 32]>> =
        MEMBERS.iter().map(|m| (m.to_string(), vec![keyed(m, 0).verifying_key().to_bytes()])).collect();
    keys.insert(member.into(), sets.iter().map(|s| keyed(member, *s).verifying_key().to_bytes()).collect());
    let sha256 = bundle.roster_sha256.as_deref().and_then(|h| hex::decode(h).ok()).expect("the bundle's roster hash");
    Anchor::Chain { sha256: <[u8; 32]>::try_from(sha256).expect("a SHA-256 hash"), keys }
}

/// The items that fail when `bundle` is checked under [`anchor`].
fn failures(bundle: &Bundle, member: &str, sets: &[u8]) -> Vec<String> {
    failed(&verify_anchored(bundle, &anchor(bundle, member, sets)))
}

#[test]
fn signatures_under_a_key_retired_by_rotation_verify_beside_the_new_key() {
    let bundle = rotated_line().export();
    assert_eq!(failures(&bundle, "CN", &[0, 1]), Vec::<String>::new());
}

#[test]
fn without_the_retired_key_what_was_signed_under_it_fails() {
    // A chain that replaced CN's key (without its old key's signature) leaves it only the new
    // one; so does an anchor of one key per member.
    let bundle = rotated_line().export();
    let failures = failures(&bundle, "CN", &[1]);
    let at = |i: u64, seq: u64| format!("envelope at log index {i} (CN #{seq}, ");
    for (i, seq) in [(2, 1), (3, 2)] {
        assert!(failures.iter().any(|f| f.starts_with(&at(i, seq)) && f.ends_with(": signature")), "{failures:?}");
    }
    assert!(!failures.iter().any(|f| f.starts_with(&at(4, 3))), "{failures:?}");
}

#[test]
fn an_envelope_under_the_old_key_after_one_under_the_new_key_fails() {
    // CN #4 under its first key, after CN #3 under its second: whoever holds the key CN left
    // behind cannot add to its chain.
    let mut line = rotated_line();
    line.moved.insert("CN".into(), 0);
    line.add("CN", message("Old key", "Signed under the key we left behind.", None));
    let bundle = line.export();
    let report = verify_anchored(&bundle, &anchor(&bundle, "CN", &[0, 1]));
    let signature = report.checks.iter().find(|c| c.item.starts_with("envelope at log index 6 (CN #4, "));
    let why = signature.and_then(|c| c.failure.clone()).unwrap_or_default();
    assert!(why.contains("its envelope #3 is signed under a later one"), "{:?}", report.checks);
    assert_eq!(failed(&report).len(), 1, "{:?}", failed(&report));
}

#[test]
fn content_under_another_key_than_its_envelope_fails() {
    // CN #3's envelope under its first key, its content under its second.
    let line = rotated_line_with(Tweak { envelope_key: Some(keyed("CN", 0)), ..Tweak::default() });
    let failures = failures(&line.export(), "CN", &[0, 1]);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].starts_with("envelope at log index 4 (CN #3, ") && failures[0].ends_with(": signed content"));
}

#[test]
fn checkpoints_and_countersignatures_under_a_retired_key() {
    // PH rotates after its set-up and message; its checkpoint of 3 entries and CN's
    // countersignature are under their first keys, its checkpoint of the whole log under its
    // second.
    let mut line = Line::default();
    line.setup();
    line.add("PH", message("Vessels in sight", "Two patrol vessels north of the shoal.", None));
    line.add("CN", message("Keeping clear", "Our vessels keep 5 nautical miles away.", None));
    line.moved.insert("PH".into(), 1);
    line.add("PH", message("New key", "Signed under our new key.", None));
    let mut bundle = line.export_at(&[3, 4]);
    let early = line.checkpoint_of("PH", 3).sign(&keyed("PH", 0)).expect("a checkpoint signs");
    bundle.checkpoints[0] = countersigned(&early, &[("CN", keyed("CN", 0))]);
    assert_eq!(failures(&bundle, "PH", &[0, 1]), Vec::<String>::new());
    assert!(failures(&bundle, "PH", &[1]).contains(&"checkpoint 0 (PH at size 3): signature".to_string()));

    // The checkpoint of the whole log under PH's first key, after one under its second: refused.
    let late = line.checkpoint_of("PH", 4).sign(&keyed("PH", 0)).expect("a checkpoint signs");
    let newer = line.checkpoint_of("PH", 3).sign(&keyed("PH", 1)).expect("a checkpoint signs");
    bundle.checkpoints =
        vec![countersigned(&newer, &[("CN", keyed("CN", 0))]), countersigned(&late, &[("CN", keyed("CN", 0))])];
    let failures = failures(&bundle, "PH", &[0, 1]);
    assert_eq!(failures, vec!["checkpoint 1 (PH at size 4): signature".to_string()], "{failures:?}");
}
