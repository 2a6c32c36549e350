//! `adi verify --network` on a bundle that spans a member's key change: the record of a line
//! where China signs under its first key, a roster version gives it a second, and it signs under
//! that one. Anchored on the first roster version's hash, a key the chain retired by rotation
//! (the version signed by the old key and the new) still verifies what was signed under it; a
//! key replaced without its own signature does not, and a chain altered fails before anything
//! else. The bundle is built offline from fixed keys, by the record crate's test support.

#[path = "../crates/record/tests/support/mod.rs"]
mod record;

use std::process::{Command, Output};

use adi_core::amendment::{self, RosterVersion};
use adi_core::{fixtures, MemberCode, Roster};
use adi_record::bundle::{Bundle, RosterChain};
use ed25519_dalek::SigningKey;
use record::{keyed, message, Line};

/// The first roster: the members of the record's test line, under their keys of set 0
/// (`fixtures::key(n)` is the record support's key of set 0 for the member `n - 1` of its codes).
fn first_roster() -> Roster {
    fixtures::roster(&[("PH", "ASEAN", 1), ("CN", "PLUS", 2), ("VN", "ASEAN", 3)])
}

/// How the version that gives China its second key is signed.
#[derive(Clone, Copy)]
enum KeyChange {
    /// By its first key and its second: a rotation.
    Rotation,
    /// By its second key and every ASEAN member, without its first: a replacement.
    Replacement,
}

/// The version after `current` that gives China its key of set 1, signed as `change` says.
fn key_change(current: &RosterVersion, change: KeyChange) -> adi_wire::files::RosterVersionFile {
    let mut file = current.roster.to_file();
    let new_key = keyed("CN", 1);
    for m in file.members.iter_mut().filter(|m| m.code == "CN") {
        m.signing_key = hex::encode(new_key.verifying_key().to_bytes());
    }
    let roster = Roster::from_file(&file).expect("the fixture roster with another key is valid");
    let (mut version, hash) = amendment::propose(current, &roster);
    let signers: Vec<(&str, SigningKey)> = match change {
        KeyChange::Rotation => vec![("CN", keyed("CN", 0)), ("CN", new_key)],
        KeyChange::Replacement => vec![("CN", new_key), ("PH", keyed("PH", 0)), ("VN", keyed("VN", 0))],
    };
    for (code, key) in signers {
        let code = MemberCode::parse(code).expect("a member code");
        version.signatures.push(amendment::sign(&code, &key, &hash));
    }
    version
}

/// The line's bundle, of version 3, carrying the chain from the first roster through China's
/// key change, and the network's identity (the first version's hash, hex).
fn bundle(change: KeyChange) -> (Bundle, String) {
    let first = first_roster();
    let v1 = amendment::check_first(&amendment::first(&first)).expect("the first version is valid");
    let v2_file = key_change(&v1, change);
    let v2 = amendment::check_amendment(&v1, &v2_file).expect("the key change meets its rule");

    let mut line = Line::default();
    line.setup();
    let ph = line.add("PH", message("Vessels in sight", "Two patrol vessels north of the shoal.", None));
    let receipt = line.receipt("decrypted", ph);
    line.add("CN", receipt);
    line.add("CN", message("Keeping clear", "Signed under our first key.", None));
    line.moved.insert("CN".into(), 1);
    let cn = line.add("CN", message("New key", "Signed under our second key.", None));
    let ack = line.receipt("acknowledged", cn);
    line.add("PH", ack);

    let mut b = line.export();
    b.v = adi_record::bundle::VERSION;
    b.roster_sha256 = Some(hex::encode(v2.roster.sha256()));
    b.roster_file = Some(String::from_utf8(v2.roster.canonical_bytes()).expect("canonical bytes are JSON"));
    b.roster_chain = Some(RosterChain { first: first.to_file(), versions: vec![v2_file] });
    (b, hex::encode(v1.hash))
}

/// `adi verify` of `bundle` anchored on `network`: whether it verified, and what it printed.
fn verify(bundle: &Bundle, network: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("line.json");
    std::fs::write(&path, serde_json::to_string(bundle).expect("a bundle serialises")).expect("the bundle is written");
    let out: Output = Command::new(env!("CARGO_BIN_EXE_adi"))
        .args(["verify", path.to_str().expect("a UTF-8 path"), "--network", network])
        .env("NO_COLOR", "1")
        .output()
        .expect("adi runs");
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), printed)
}

#[test]
fn a_bundle_spanning_a_key_rotation_verifies_on_the_networks_identity() {
    let (b, network) = bundle(KeyChange::Rotation);
    let (verified, printed) = verify(&b, &network);
    assert!(verified, "{printed}");
    assert!(printed.contains("CN (1 retired by rotation)"), "{printed}");
    assert!(printed.contains("Signed under our first key."), "{printed}");
}

#[test]
fn a_key_replaced_without_its_signature_verifies_nothing_signed_under_it() {
    let (b, network) = bundle(KeyChange::Replacement);
    let (verified, printed) = verify(&b, &network);
    assert!(!verified, "{printed}");
    for seq in [1, 2] {
        let item = format!("FAIL  envelope at log index {} (CN #{seq}, ", seq + 1);
        assert!(printed.lines().any(|l| l.starts_with(&item) && l.contains(": signature: ")), "{printed}");
    }
    assert!(!printed.contains("FAIL  envelope at log index 4 (CN #3"), "{printed}");
}

#[test]
fn a_chain_altered_fails_before_anything_else() {
    // The rotation's version made to give China yet another key: its signatures no longer
    // verify, and the chain does not follow.
    let (mut b, network) = bundle(KeyChange::Rotation);
    let chain = b.roster_chain.as_mut().expect("a chain");
    for m in chain.versions[0].roster.members.iter_mut().filter(|m| m.code == "CN") {
        m.signing_key = hex::encode(keyed("CN", 2).verifying_key().to_bytes());
    }
    let (verified, printed) = verify(&b, &network);
    assert!(!verified, "{printed}");
    assert!(printed.contains("roster version 2 of the bundle's chain is refused"), "{printed}");

    // The rotation's version without China's first key's signature: a replacement that lacks the
    // consensus it needs.
    let (mut b, network) = bundle(KeyChange::Rotation);
    let chain = b.roster_chain.as_mut().expect("a chain");
    let first_key = hex::encode(keyed("CN", 0).verifying_key().to_bytes());
    chain.versions[0].signatures.retain(|s| s.key != first_key);
    let (verified, printed) = verify(&b, &network);
    assert!(!verified, "{printed}");
    assert!(printed.contains("roster version 2 of the bundle's chain is refused"), "{printed}");
}
