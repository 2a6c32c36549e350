//! Bundles built here from members' keys, as a node would export them, and what `verify` makes
//! of them: decisions judged by their answers' signed places, whatever the order of the file.

use std::collections::BTreeMap;

use adi_record::bundle::{verify, Bundle, BundleCheckpoint, BundleEnvelope, BundleLine, Report, FORMAT};
use adi_record::{merkle, Checkpoint};
use adi_wire::content::SignedContent;
use adi_wire::envelope::{EnvelopeBody, CONTENT_MLS, PRIORITY_ROUTINE};
use adi_wire::payload::PayloadV1;
use adi_wire::{EnvelopeHash, LineId};
use ed25519_dalek::SigningKey;
use sha2::Digest;

const LINE: LineId = LineId([9; 16]);
const MEMBERS: [&str; 3] = ["PH", "CN", "VN"];

fn key(member: &str) -> SigningKey {
    let i = MEMBERS.iter().position(|m| *m == member).expect("a member of the test line") as u8;
    SigningKey::from_bytes(&[i + 1; 32])
}

/// A line's record as its exporter holds it: envelopes in the order of its log.
#[derive(Default)]
struct Line {
    heads: BTreeMap<String, (u64, EnvelopeHash)>,
    envelopes: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Line {
    /// `member`'s next envelope on the line, carrying `payload` as its signed content.
    fn add(&mut self, member: &str, payload: PayloadV1) -> EnvelopeHash {
        let (seq, prev) = self.heads.get(member).map_or((1, EnvelopeHash::NONE), |(s, h)| (s + 1, *h));
        let k = key(member);
        let content = SignedContent::sign(&k, &LINE, member, seq, payload.encode());
        let body = EnvelopeBody {
            line: LINE,
            sender: member.to_string(),
            seq,
            prev,
            epoch: 1,
            created_ms: 1_700_000_000_000 + self.envelopes.len() as u64,
            priority: PRIORITY_ROUTINE,
            content_type: CONTENT_MLS,
            content_hash: content.hash(&LINE, member, seq),
            payload: b"ciphertext the verifier never reads".to_vec(),
        };
        let envelope = body.sign(&k);
        let hash = envelope.hash();
        self.heads.insert(member.to_string(), (seq, hash));
        self.envelopes.push((envelope.bytes().to_vec(), content.encode()));
        hash
    }

    /// The bundle PH exports of the whole line, with its checkpoint of the whole log.
    fn export(&self) -> Bundle {
        let log: Vec<[u8; 32]> = self.envelopes.iter().map(|(b, _)| sha2::Sha256::digest(b).into()).collect();
        let leaves: Vec<[u8; 32]> = log.iter().map(|h| merkle::leaf_hash(h)).collect();
        let checkpoint = Checkpoint {
            line: LINE.0,
            signer: "PH".into(),
            size: log.len() as u64,
            root: merkle::root(&leaves),
            time_ms: 1_700_000_100_000,
        }
        .sign(&key("PH"))
        .expect("a checkpoint signs");
        Bundle {
            format: FORMAT.into(),
            v: 1,
            exported_by: "PH".into(),
            exported_ms: 1_700_000_200_000,
            line: BundleLine {
                id: LINE.to_hex(),
                scope: "ADMM-Plus".into(),
                title: "Test line".into(),
                home: "PH".into(),
                members: MEMBERS.iter().map(|m| m.to_string()).collect(),
            },
            roster: MEMBERS.iter().map(|m| (m.to_string(), hex::encode(key(m).verifying_key().to_bytes()))).collect(),
            log: log.iter().map(hex::encode).collect(),
            from_index: 0,
            to_index: log.len() as u64,
            envelopes: self
                .envelopes
                .iter()
                .enumerate()
                .map(|(i, (bytes, content))| BundleEnvelope {
                    index: i as u64,
                    bytes: hex::encode(bytes),
                    content: Some(hex::encode(content)),
                    form_text: None,
                    inclusion: merkle::inclusion_proof(&leaves, i).iter().map(hex::encode).collect(),
                })
                .collect(),
            checkpoints: vec![BundleCheckpoint {
                signed: hex::encode(checkpoint.to_bytes().expect("checkpoint bytes")),
                countersignatures: Vec::new(),
            }],
            consistency: Vec::new(),
        }
    }
}

fn decision(text: &str, parties: &[&str], supersedes: Option<EnvelopeHash>) -> PayloadV1 {
    PayloadV1::Decision {
        v: 1,
        text: text.into(),
        parties: parties.iter().map(|p| p.to_string()).collect(),
        deadline_s: None,
        supersedes: supersedes.map(|h| h.to_hex()),
    }
}

fn answer(decision: EnvelopeHash, text: &str, concur: bool) -> PayloadV1 {
    PayloadV1::Concurrence {
        v: 1,
        decision: decision.to_hex(),
        text_sha256: hex::encode(sha2::Sha256::digest(text.as_bytes())),
        concur,
        reason: (!concur).then(|| "not agreed".to_string()),
    }
}

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
