//! No input from the network makes a node panic: every decoder of untrusted bytes, and the core's
//! `receive`, are fed random bytes and real envelopes with random changes, and must answer with
//! an error (or, for an unchanged envelope, accept it), never panic.
//!
//! These are property tests on stable Rust (proptest); the cases that ever failed are kept by
//! proptest as regressions next to this file.

use adi_core::fixtures::{hotline, key_packages_of};
use adi_core::{Draft, Hotline, MemberCode, NewLine};
use adi_record::bundle::{verify, Bundle};
use adi_record::SignedCheckpoint;
use adi_wire::batch::decode_batch;
use adi_wire::content::SignedContent;
use adi_wire::payload::PayloadV1;
use adi_wire::{Envelope, LineId};
use proptest::prelude::*;

fn code(s: &str) -> MemberCode {
    MemberCode::parse(s).unwrap()
}

/// PH and CN on a direct line; PH's set-up and a few of its envelopes, as they travel.
fn traffic() -> (Hotline, Vec<Vec<u8>>) {
    let mut ph = hotline("PH");
    let mut cn = hotline("CN");
    let line = LineId([3; 16]);
    let kps = key_packages_of(&mut [&mut cn]);
    let req = NewLine { members: vec!["PH".into(), "CN".into()], scope: "ADMM-Plus".into(), title: None };
    let setup = ph.create_line(1, line, req, kps).unwrap();
    let mut out = vec![setup.envelope.bytes().to_vec()];
    for (n, precedence) in ["FLASH", "ROUTINE", "IMMEDIATE"].iter().enumerate() {
        let draft = Draft {
            precedence: precedence.to_string(),
            subject: format!("subject {n}"),
            body: "body".into(),
            ..Draft::default()
        };
        out.push(ph.send(10 + n as u64, line, draft, None).unwrap().envelope.bytes().to_vec());
    }
    (cn, out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn decoders_refuse_random_bytes_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Envelope::decode(&bytes, 1 << 20, 1 << 20);
        let _ = decode_batch(&bytes, 256, 1 << 20);
        let _ = PayloadV1::decode(&bytes);
        let _ = SignedContent::decode(&bytes);
        let _ = SignedCheckpoint::from_bytes(&bytes);
        let _ = serde_json::from_slice::<Bundle>(&bytes).map(|b| verify(&b));
        let roster = |_: &str| None;
        let _ = adi_mls::check_key_package(&bytes, &roster, &mut Default::default());
        let _ = adi_mls::key_package_reference(&bytes);
    }

    #[test]
    fn the_core_refuses_changed_envelopes_without_panicking(
        which in 0usize..4,
        changes in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in proptest::option::of(any::<usize>()),
    ) {
        let (mut cn, envelopes) = traffic();
        // The set-up first, unchanged, so that the line exists; then one envelope changed.
        cn.receive(100, &code("PH"), &envelopes[0]).unwrap();
        let mut bytes = envelopes[which].clone();
        for (at, value) in &changes {
            let i = at % bytes.len();
            bytes[i] = *value;
        }
        if let Some(c) = cut {
            bytes.truncate(c % (bytes.len() + 1));
        }
        let changed = bytes != envelopes[which];
        let result = cn.receive(101, &code("PH"), &bytes);
        if changed {
            // A changed envelope no longer carries PH's signature, so it is refused.
            prop_assert!(result.is_err(), "a changed envelope was accepted");
        }
        // The line still works after whatever came before: an unchanged envelope is taken.
        if which != 3 {
            prop_assert!(cn.receive(102, &code("PH"), &envelopes[3]).is_ok());
        }
    }

    #[test]
    fn bundles_with_random_changes_fail_verification_without_panicking(
        field in 0usize..6,
        text in "[0-9a-f]{0,130}",
    ) {
        let mut b: Bundle = serde_json::from_str(EXAMPLE).unwrap();
        match field {
            0 => b.log[0] = text,
            1 => b.envelopes[0].bytes = text,
            2 => b.envelopes[1].content = Some(text),
            3 => b.checkpoints[0].signed = text,
            4 => b.envelopes[2].inclusion = vec![text],
            _ => b.consistency = vec![adi_record::bundle::BundleConsistency { from_size: 1, to_size: 99, proof: vec![text] }],
        }
        let report = verify(&b);
        // Field 5 adds a proof no pair of checkpoints asks for; every other change breaks a check.
        prop_assert!(field == 5 || report.first_failure().is_some());
    }
}

const EXAMPLE: &str = include_str!("../../../docs/example-bundle.json");
