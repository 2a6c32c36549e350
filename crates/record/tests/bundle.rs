//! Bundles built here from members' keys, as a node would export them, and what `verify` makes
//! of them: decisions judged by their answers' signed places, whatever the order of the file.

mod support;

use adi_record::bundle::{verify, verify_anchored, Anchor, Bundle, Report};
use adi_wire::payload::PayloadV1;
use adi_wire::EnvelopeHash;
use ed25519_dalek::SigningKey;
use support::{answer, decision, failed, key, keyed, roster, Line, MEMBERS};

fn state_of(report: &Report, id: EnvelopeHash) -> &'static str {
    report.decisions.iter().find(|d| d.id == id.to_hex()).map_or("absent", |d| d.state)
}

fn clean(report: &Report) {
    assert!(report.first_failure().is_none(), "{:?}", report.first_failure());
}

#[test]
fn an_answer_counts_by_its_signed_place_not_by_its_place_in_the_file() {
    let text = "Both navies keep 5 nautical miles apart.";
    let mut line = Line::default();
    let id = line.add("PH", decision(text, &["PH", "CN", "VN"], None));
    line.add("CN", answer(id, text, true));
    line.add("VN", answer(id, text, false));
    line.add("VN", answer(id, text, true));
    let bundle = line.export();
    let report = verify(&bundle);
    clean(&report);
    assert_eq!(state_of(&report, id), "final");

    // Any order of the envelopes in the file: the same verdict.
    let mut reversed = bundle.clone();
    reversed.envelopes.reverse();
    let again = verify(&reversed);
    clean(&again);
    assert_eq!(again.decisions, report.decisions);
    let mut swapped = bundle;
    swapped.envelopes.swap(2, 3);
    assert_eq!(verify(&swapped).decisions, report.decisions);
}

#[test]
fn a_later_decline_by_its_signed_place_declines() {
    let text = "A joint patrol on 3 March.";
    let mut line = Line::default();
    let id = line.add("PH", decision(text, &["PH", "VN"], None));
    line.add("VN", answer(id, text, true));
    line.add("VN", answer(id, text, false));
    let report = verify(&line.export());
    clean(&report);
    assert_eq!(state_of(&report, id), "declined");
}

#[test]
fn a_proposer_outside_the_parties_is_neither_counted_nor_refused() {
    let text = "Hotline drill on Monday.";
    let mut line = Line::default();
    let id = line.add("PH", decision(text, &["CN", "VN"], None));
    line.add("CN", answer(id, text, true));
    let report = verify(&line.export());
    clean(&report);
    let d = report.decisions.iter().find(|d| d.id == id.to_hex()).expect("the decision is reported");
    assert_eq!((d.state, d.missing.clone()), ("open", vec!["VN".to_string()]));
}

#[test]
fn a_replacement_supersedes_only_once_it_is_final() {
    let (old, new) = ("Keep 5 nautical miles apart.", "Keep 3 nautical miles apart.");
    let mut line = Line::default();
    let first = line.add("PH", decision(old, &["PH", "VN"], None));
    line.add("VN", answer(first, old, true));
    // A unilateral later proposal leaves a final decision final.
    let second = line.add("PH", decision(new, &["PH", "VN"], Some(first)));
    let report = verify(&line.export());
    clean(&report);
    assert_eq!((state_of(&report, first), state_of(&report, second)), ("final", "open"));
    // Once every party of the replacement concurred, it replaces the first.
    line.add("VN", answer(second, new, true));
    let report = verify(&line.export());
    clean(&report);
    assert_eq!((state_of(&report, first), state_of(&report, second)), ("superseded", "final"));
    let d = report.decisions.iter().find(|d| d.id == first.to_hex()).expect("reported");
    assert_eq!(d.superseded_by, Some(second.to_hex()));
}

#[test]
fn the_line_the_bundle_states_is_checked_against_its_signed_set_up() {
    let mut line = Line::default();
    line.setup();
    line.add("PH", PayloadV1::LinkTest { v: 1 });
    let bundle = line.export();
    let report = verify(&bundle);
    clean(&report);
    assert!(report.checks.iter().any(|c| c.item == "line scope, title and home, against the signed set-up"));
    assert!(report.checks.iter().any(|c| c.item.contains("(unsigned")), "unsigned fields are said to be");

    let mut retitled = bundle.clone();
    retitled.line.title = "Another line".into();
    assert_eq!(failed(&verify(&retitled)), ["line scope, title and home, against the signed set-up"]);
    let mut rehomed = bundle;
    rehomed.line.home = "CN".into();
    assert_eq!(failed(&verify(&rehomed)), ["line scope, title and home, against the signed set-up"]);
}

#[test]
fn a_countersigner_must_be_shown_on_the_line_and_no_key_may_be_weak() {
    let mut line = Line::default();
    line.setup();
    line.add("PH", PayloadV1::LinkTest { v: 1 });
    let mut bundle = line.export();
    // MY is in the bundle's roster and countersigns validly, but nothing signed puts it on the line.
    let my = SigningKey::from_bytes(&[42; 32]);
    bundle.roster.insert("MY".into(), hex::encode(my.verifying_key().to_bytes()));
    let signed = hex::decode(&bundle.checkpoints[0].signed).unwrap();
    let cp = adi_record::SignedCheckpoint::from_bytes(&signed).unwrap();
    bundle.checkpoints[0].countersignatures.push(("MY".into(), hex::encode(cp.countersign(&my).unwrap())));
    let report = verify(&bundle);
    let failures = failed(&report);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(failures[0].ends_with("countersigner MY is on the line"), "{failures:?}");
    // CN, named by the set-up, may countersign.
    *bundle.checkpoints[0].countersignatures.last_mut().unwrap() =
        ("CN".into(), hex::encode(cp.countersign(&key("CN")).unwrap()));
    clean(&verify(&bundle));

    // A weak key in the bundle's roster is refused.
    let mut weak = bundle;
    weak.roster.insert("VN".into(), format!("01{}", "00".repeat(31)));
    assert!(failed(&verify(&weak)).contains(&"roster key of VN".to_string()));
}

/// The genuine record of a line, and the same record rewritten end to end by someone who changed
/// a message's words and signed everything again under keys of their own.
fn genuine_and_rewritten() -> (Bundle, Bundle) {
    let build = |set: u8, words: &str| {
        let mut line = Line { set, ..Line::default() };
        line.setup();
        let id = line.add("PH", decision(words, &["PH", "CN"], None));
        line.add("CN", answer(id, words, true));
        line.export()
    };
    (build(0, "Keep 5 nautical miles apart."), build(1, "Keep 50 nautical miles apart."))
}

#[test]
fn a_bundle_rewritten_under_fresh_keys_fails_against_the_anchor() {
    let (genuine, rewritten) = genuine_and_rewritten();
    let (_, anchor_sha) = roster(0);
    // Each is consistent with itself: that alone proves nothing.
    for b in [&genuine, &rewritten] {
        let report = verify_anchored(b, &Anchor::Unanchored);
        clean(&report);
        assert!(!report.anchored);
    }
    // Against the anchor (the roster's SHA-256, from outside the bundle) only the genuine one holds.
    let report = verify_anchored(&genuine, &Anchor::Sha256(anchor_sha));
    clean(&report);
    assert!(report.anchored);
    let report = verify_anchored(&rewritten, &Anchor::Sha256(anchor_sha));
    assert!(report.first_failure().is_some_and(|c| c.item == "anchor: the roster"), "{:?}", report.first_failure());

    // The rewritten bundle carrying the genuine roster but its own keys: every key and every
    // signature fails under the anchored ones.
    let mut borrowed = rewritten.clone();
    borrowed.roster_file = genuine.roster_file.clone();
    borrowed.roster_sha256 = genuine.roster_sha256.clone();
    let report = verify_anchored(&borrowed, &Anchor::Sha256(anchor_sha));
    let failures = failed(&report);
    assert!(failures.contains(&"anchor: the bundle's key of PH".to_string()), "{failures:?}");
    assert!(failures.iter().any(|f| f.ends_with(": signature")), "{failures:?}");

    // The same with the anchored roster's keys given directly.
    let keys = MEMBERS.iter().map(|m| (m.to_string(), keyed(m, 0).verifying_key().to_bytes())).collect();
    let by_roster = Anchor::Roster { sha256: anchor_sha, keys };
    clean(&verify_anchored(&genuine, &by_roster));
    let report = verify_anchored(&rewritten, &by_roster);
    let failures = failed(&report);
    assert!(failures.iter().any(|f| f.starts_with("anchor: roster")), "{failures:?}");
    assert!(failures.iter().any(|f| f.ends_with(": signature")), "{failures:?}");
}

#[test]
fn stripped_checkpoints_or_an_uncovered_tail_fail() {
    let text = "Both navies keep 5 nautical miles apart.";
    let mut line = Line::default();
    line.setup();
    let id = line.add("PH", decision(text, &["PH", "VN"], None));
    line.add("VN", answer(id, text, false));
    let bundle = line.export();
    clean(&verify(&bundle));
    let covered = "the exporter's latest checkpoint covers the whole log of 3 entries".to_string();

    // The checkpoints stripped, and VN's decline dropped from the log and the envelopes.
    let mut stripped = bundle.clone();
    stripped.checkpoints.clear();
    stripped.log.pop();
    stripped.envelopes.pop();
    stripped.to_index -= 1;
    let failures = failed(&verify(&stripped));
    assert_eq!(failures, ["the exporter's latest checkpoint covers the whole log of 2 entries"], "{failures:?}");

    // The checkpoint kept, but no other member's countersignature on it: nobody vouched for it.
    let mut alone = bundle.clone();
    alone.checkpoints[0].countersignatures.clear();
    let failures = failed(&verify(&alone));
    assert_eq!(failures, ["the exporter's latest checkpoint is countersigned by another member ()"], "{failures:?}");

    // A tail after the checkpoint: an entry nobody vouched for.
    line.add("PH", PayloadV1::LinkTest { v: 1 });
    let mut tail = line.export();
    tail.checkpoints = bundle.checkpoints.clone();
    for e in &mut tail.envelopes {
        e.inclusion = bundle.envelopes.get(e.index as usize).map(|b| b.inclusion.clone()).unwrap_or_default();
    }
    let failures = failed(&verify(&tail));
    assert_eq!(
        failures,
        [
            "the exporter's latest checkpoint covers the whole log of 4 entries",
            "PH's checkpoint: head of PH's chain at #2"
        ],
        "{failures:?}"
    );
    assert!(!failed(&verify(&bundle)).contains(&covered));
}

#[test]
fn the_exporters_checkpoint_names_each_chains_head_and_the_bundle_must_agree() {
    let mut line = Line::default();
    line.setup();
    line.add("PH", PayloadV1::LinkTest { v: 1 });
    line.add("CN", PayloadV1::LinkTest { v: 1 });
    let bundle = line.export();
    let report = verify(&bundle);
    clean(&report);
    let heads: Vec<&String> =
        report.checks.iter().map(|c| &c.item).filter(|i| i.contains("checkpoint: head of")).collect();
    assert_eq!(heads, ["PH's checkpoint: head of CN's chain at #1", "PH's checkpoint: head of PH's chain at #2"]);

    // A checkpoint signed over the same log but naming an earlier head for CN (as an exporter
    // hiding CN's latest envelope would) is caught against the envelopes the bundle holds.
    let signed = hex::decode(&bundle.checkpoints[0].signed).unwrap();
    let mut cp = adi_record::SignedCheckpoint::from_bytes(&signed).unwrap().checkpoint;
    let heads = cp.heads.as_mut().unwrap();
    heads.retain(|h| h.sender != "CN");
    let mut hiding = bundle;
    let resigned = cp.sign(&key("PH")).unwrap();
    hiding.checkpoints[0].signed = hex::encode(resigned.to_bytes().unwrap());
    hiding.checkpoints[0].countersignatures =
        vec![("CN".into(), hex::encode(resigned.countersign(&key("CN")).unwrap()))];
    let failures = failed(&verify(&hiding));
    assert_eq!(failures, ["PH's checkpoint: head of CN's chain"], "{failures:?}");
}
