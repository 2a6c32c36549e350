//! A synthetic line, built from members' fixed keys, and its bundle as a node would export it:
//! what the tests of `verify` start from. Everything is deterministic: fixed keys, fixed times,
//! and Ed25519 signatures, which are deterministic themselves.

// Each test file uses part of this module.
#![allow(dead_code)]

use std::collections::BTreeMap;

use adi_record::bundle::{Bundle, BundleCheckpoint, BundleConsistency, BundleEnvelope, BundleLine, Report, FORMAT};
use adi_record::{merkle, Checkpoint, SignedCheckpoint};
use adi_wire::commit::Membership;
use adi_wire::content::SignedContent;
use adi_wire::envelope::{EnvelopeBody, CONTENT_MLS, CONTENT_MLS_SETUP, PRIORITY_ROUTINE};
use adi_wire::payload::PayloadV1;
use adi_wire::{EnvelopeHash, LineId};

/// The bundle version of the conformance set.
const SET_VERSION: u8 = 2;
use ed25519_dalek::SigningKey;
use sha2::Digest;

pub const LINE: LineId = LineId([9; 16]);
/// The members of the test line, and of its roster unless a test says otherwise.
pub const MEMBERS: [&str; 3] = ["PH", "CN", "VN"];
/// Every member code with a key here: the line's members, and MY, whom a test may add to a
/// roster or a set-up.
pub const CODES: [&str; 4] = ["PH", "CN", "VN", "MY"];

/// `member`'s signing key in the roster's set of keys.
pub fn key(member: &str) -> SigningKey {
    keyed(member, 0)
}

/// `member`'s signing key in the set of keys numbered `set` (0: the roster's).
pub fn keyed(member: &str, set: u8) -> SigningKey {
    let i = CODES.iter().position(|m| *m == member).expect("a member code with a test key") as u8;
    SigningKey::from_bytes(&[i + 1 + set * 16; 32])
}

/// `member`'s verifying key of `set`, hex.
pub fn public_hex(member: &str, set: u8) -> String {
    hex::encode(keyed(member, set).verifying_key().to_bytes())
}

/// A roster's canonical text naming `keys` (member code, signing key hex) in that order, and
/// its SHA-256.
pub fn roster_text(name: &str, keys: &[(String, String)]) -> (String, [u8; 32]) {
    // Structures rather than `serde_json::Value`, so that the text's key order does not depend on
    // the features `serde_json` is built with.
    #[derive(serde::Serialize)]
    struct RosterFile<'a> {
        version: u8,
        name: &'a str,
        members: Vec<RosterMember<'a>>,
    }
    #[derive(serde::Serialize)]
    struct RosterMember<'a> {
        code: &'a str,
        signing_key: &'a str,
    }
    let members = keys.iter().map(|(code, key)| RosterMember { code, signing_key: key }).collect();
    let text = serde_json::to_string(&RosterFile { version: 1, name, members }).expect("a roster serialises");
    let sha = sha2::Sha256::digest(text.as_bytes()).into();
    (text, sha)
}

/// A roster's canonical text naming the members' keys of `set`, and its SHA-256.
pub fn roster(set: u8) -> (String, [u8; 32]) {
    roster_text("test", &MEMBERS.iter().map(|m| (m.to_string(), public_hex(m, set))).collect::<Vec<_>>())
}

/// How one envelope departs from what its sender's node would make, to build a broken record.
#[derive(Clone, Default)]
pub struct Tweak {
    /// The envelope and its signed content are of this line instead.
    pub line: Option<LineId>,
    /// The envelope takes this sequence number (with `prev`, a fork of its sender's chain).
    pub seq: Option<u64>,
    /// The envelope names this hash as its sender's previous one.
    pub prev: Option<EnvelopeHash>,
    /// The envelope is signed with this key instead of its sender's.
    pub envelope_key: Option<SigningKey>,
}

/// An envelope as the exporter holds it.
#[derive(Clone)]
pub struct Held {
    pub bytes: Vec<u8>,
    /// Its signed content, encoded; empty for a set-up, which carries none.
    pub content: Vec<u8>,
    /// The rendering of the structured report its content carries.
    pub form_text: Option<String>,
    pub sender: String,
    pub seq: u64,
    pub hash: EnvelopeHash,
}

/// A line's record as its exporter PH holds it: envelopes in the order of its log, signed with
/// the keys of `set`.
pub struct Line {
    pub set: u8,
    /// The members whose keys the bundle's roster carries.
    pub roster: Vec<String>,
    /// The roster's name, in its canonical text.
    pub roster_name: String,
    /// When the first envelope was signed, and the time between two (ms).
    pub start_ms: u64,
    pub step_ms: u64,
    pub heads: BTreeMap<String, (u64, EnvelopeHash)>,
    pub envelopes: Vec<Held>,
    /// The member whose node exports the line (PH, the home member, unless set).
    pub exporter: &'static str,
    /// Members that moved to their key of another set (a roster version rotated or replaced
    /// their key), with that set: each signs under it from then on, instead of under `set`.
    pub moved: BTreeMap<String, u8>,
}

impl Default for Line {
    fn default() -> Line {
        Line {
            set: 0,
            roster: MEMBERS.iter().map(|m| m.to_string()).collect(),
            roster_name: "test".into(),
            start_ms: 1_700_000_000_000,
            step_ms: 1,
            heads: BTreeMap::new(),
            envelopes: Vec::new(),
            exporter: "PH",
            moved: BTreeMap::new(),
        }
    }
}

impl Line {
    /// The key `member` signs with now: of the line's set, or of the set it moved to.
    pub fn signer(&self, member: &str) -> SigningKey {
        keyed(member, self.moved.get(member).copied().unwrap_or(self.set))
    }

    /// When the next envelope is signed.
    fn next_ms(&self) -> u64 {
        self.start_ms + self.envelopes.len() as u64 * self.step_ms
    }

    /// `member`'s next sequence number and previous envelope on the line.
    fn next_place(&self, member: &str) -> (u64, EnvelopeHash) {
        self.heads.get(member).map_or((1, EnvelopeHash::NONE), |(s, h)| (s + 1, *h))
    }

    /// `member`'s next envelope on the line, carrying `payload` as its signed content.
    pub fn add(&mut self, member: &str, payload: PayloadV1) -> EnvelopeHash {
        self.add_with(member, payload, Tweak::default())
    }

    /// `member`'s next envelope on the line, carrying `payload` as its signed content, made as
    /// `tweak` says.
    pub fn add_with(&mut self, member: &str, payload: PayloadV1, tweak: Tweak) -> EnvelopeHash {
        let (next, prev) = self.next_place(member);
        let seq = tweak.seq.unwrap_or(next);
        let line = tweak.line.unwrap_or(LINE);
        let k = self.signer(member);
        let content = SignedContent::sign(&k, &line, member, seq, payload.encode());
        let body = EnvelopeBody {
            line,
            sender: member.to_string(),
            seq,
            prev: tweak.prev.unwrap_or(prev),
            epoch: 1,
            created_ms: self.next_ms(),
            priority: PRIORITY_ROUTINE,
            content_type: CONTENT_MLS,
            content_hash: content.hash(&line, member, seq),
            payload: b"ciphertext the verifier never reads".to_vec(),
        };
        let envelope = body.sign(tweak.envelope_key.as_ref().unwrap_or(&k));
        let hash = envelope.hash();
        self.heads.insert(member.to_string(), (seq, hash));
        let form_text = adi_record::bundle::form_text(&content);
        self.envelopes.push(Held {
            bytes: envelope.bytes().to_vec(),
            content: content.encode(),
            form_text,
            sender: member.to_string(),
            seq,
            hash,
        });
        hash
    }

    /// `member`'s next envelope on the line, made and signed but never held by the exporter
    /// (sent while it was off the line, say, or refused).
    pub fn unheld(&mut self, member: &str, payload: PayloadV1) -> EnvelopeHash {
        let hash = self.add(member, payload);
        self.envelopes.pop();
        hash
    }

    /// The home member PH's next envelope: a commit of the line's group, an MLS private message
    /// whose authenticated data states `membership` (`docs/WIRE.md`, "Additions").
    pub fn commit(&mut self, membership: &Membership) -> EnvelopeHash {
        fn vector(out: &mut Vec<u8>, bytes: &[u8]) {
            assert!(bytes.len() < 1 << 14, "a test vector under 16 KiB");
            out.extend_from_slice(&(0x4000u16 | bytes.len() as u16).to_be_bytes());
            out.extend_from_slice(bytes);
        }
        let (seq, prev) = self.next_place("PH");
        let mut payload = vec![0, 1, 0, 2];
        vector(&mut payload, &LINE.0);
        payload.extend_from_slice(&(seq + 1).to_be_bytes());
        payload.push(adi_wire::commit::MLS_COMMIT);
        vector(&mut payload, &membership.encode());
        vector(&mut payload, b"sender data only members read");
        vector(&mut payload, b"a commit only members read");
        let body = EnvelopeBody {
            line: LINE,
            sender: "PH".into(),
            seq,
            prev,
            epoch: seq,
            created_ms: self.next_ms(),
            priority: 0,
            content_type: CONTENT_MLS,
            content_hash: [0; 32],
            payload,
        };
        self.hold_from_ph(body)
    }

    /// PH's envelope of `body`, which carries no signed content, signed and held.
    fn hold_from_ph(&mut self, body: EnvelopeBody) -> EnvelopeHash {
        let seq = body.seq;
        let envelope = body.sign(&self.signer("PH"));
        let hash = envelope.hash();
        self.heads.insert("PH".into(), (seq, hash));
        self.envelopes.push(Held {
            bytes: envelope.bytes().to_vec(),
            content: Vec::new(),
            form_text: None,
            sender: "PH".into(),
            seq,
            hash,
        });
        hash
    }

    /// The home member PH's signed set-up of the line, naming every member.
    pub fn setup(&mut self) -> EnvelopeHash {
        self.setup_naming(&MEMBERS)
    }

    /// The home member PH's signed set-up of the line, naming `members`.
    pub fn setup_naming(&mut self, members: &[&str]) -> EnvelopeHash {
        let payload = PayloadV1::LineSetup {
            v: 1,
            scope: "ADMM-Plus".into(),
            title: "Test line".into(),
            home: "PH".into(),
            members: members.iter().map(|m| m.to_string()).collect(),
            welcome: None,
        };
        let (seq, prev) = self.next_place("PH");
        let body = EnvelopeBody {
            line: LINE,
            sender: "PH".into(),
            seq,
            prev,
            epoch: 0,
            created_ms: self.next_ms(),
            priority: PRIORITY_ROUTINE,
            content_type: CONTENT_MLS_SETUP,
            content_hash: [0; 32],
            payload: payload.encode(),
        };
        self.hold_from_ph(body)
    }

    /// The held envelope whose hash is `hash`.
    pub fn held(&self, hash: EnvelopeHash) -> &Held {
        self.envelopes.iter().find(|e| e.hash == hash).expect("an envelope of this line")
    }

    /// A receipt of `kind` answering the envelope `answered` of this line.
    pub fn receipt(&self, kind: &str, answered: EnvelopeHash) -> PayloadV1 {
        let held = self.held(answered);
        receipt(kind, answered, &held.sender, held.seq)
    }

    /// The entries of the log: the envelopes' hashes, in order.
    pub fn log(&self) -> Vec<[u8; 32]> {
        self.envelopes.iter().map(|e| sha2::Sha256::digest(&e.bytes).into()).collect()
    }

    /// The Merkle leaves of the log.
    pub fn leaves(&self) -> Vec<[u8; 32]> {
        self.log().iter().map(|h| merkle::leaf_hash(h)).collect()
    }

    /// `signer`'s checkpoint of the first `size` entries of the log, as its node makes one,
    /// unsigned.
    pub fn checkpoint_of(&self, signer: &str, size: u64) -> Checkpoint {
        let log = self.log();
        let first = &self.envelopes[..size as usize];
        let heads = adi_record::checkpoint::heads(log.iter().zip(first).map(|(h, e)| (h, e.sender.as_str(), e.seq)));
        Checkpoint {
            line: LINE.0,
            signer: signer.into(),
            size,
            root: merkle::root(&self.leaves()[..size as usize]),
            time_ms: self.start_ms + 100_000 + size * self.step_ms,
            heads: Some(heads),
        }
    }

    /// `signer`'s signed checkpoint of the first `size` entries of the log.
    pub fn checkpoint(&self, signer: &str, size: u64) -> SignedCheckpoint {
        self.checkpoint_of(signer, size).sign(&self.signer(signer)).expect("a checkpoint signs")
    }

    /// The member that countersigns the exporter's checkpoints: VN when it sent on the line
    /// (the bundle shows it a member), CN otherwise.
    pub fn countersigner(&self) -> &'static str {
        if self.exporter != "PH" {
            "PH"
        } else if self.envelopes.iter().any(|e| e.sender == "VN") {
            "VN"
        } else {
            "CN"
        }
    }

    /// A checkpoint as a bundle holds it, countersigned by `by` with their keys of this line's set.
    pub fn countersigned(&self, cp: &SignedCheckpoint, by: &[&str]) -> BundleCheckpoint {
        countersigned(cp, &by.iter().map(|m| (*m, self.signer(m))).collect::<Vec<_>>())
    }

    /// The bundle the exporter makes of the whole line, with its checkpoint of the whole log.
    pub fn export(&self) -> Bundle {
        self.export_at(&[self.envelopes.len() as u64])
    }

    /// The bundle the exporter makes of the whole line, with its checkpoints at the log sizes `sizes`
    /// (ascending), each countersigned, and the consistency proofs between them. Inclusion
    /// proofs are against the last; an envelope beyond it has none.
    pub fn export_at(&self, sizes: &[u64]) -> Bundle {
        let log = self.log();
        let leaves = self.leaves();
        let latest = *sizes.last().expect("at least one checkpoint") as usize;
        let countersigner = self.countersigner();
        let checkpoints = sizes
            .iter()
            .map(|size| self.countersigned(&self.checkpoint(self.exporter, *size), &[countersigner]))
            .collect();
        let consistency = sizes
            .windows(2)
            .map(|w| BundleConsistency {
                from_size: w[0],
                to_size: w[1],
                proof: merkle::consistency_proof(&leaves[..w[1] as usize], w[0] as usize)
                    .iter()
                    .map(hex::encode)
                    .collect(),
            })
            .collect();
        let keys: Vec<(String, String)> =
            self.roster.iter().map(|m| (m.clone(), hex::encode(self.signer(m).verifying_key().to_bytes()))).collect();
        let (roster_file, roster_sha256) = roster_text(&self.roster_name, &keys);
        Bundle {
            format: FORMAT.into(),
            // The conformance set is of version 2 bundles, which every later verifier reads.
            v: SET_VERSION,
            exported_by: self.exporter.into(),
            exported_ms: self.start_ms + 200_000 + log.len() as u64 * self.step_ms,
            line: BundleLine {
                id: LINE.to_hex(),
                scope: "ADMM-Plus".into(),
                title: "Test line".into(),
                home: "PH".into(),
                members: MEMBERS.iter().map(|m| m.to_string()).collect(),
            },
            roster: keys.into_iter().collect(),
            roster_sha256: Some(hex::encode(roster_sha256)),
            roster_file: Some(roster_file),
            roster_chain: None,
            log: log.iter().map(hex::encode).collect(),
            from_index: 0,
            to_index: log.len() as u64,
            envelopes: self
                .envelopes
                .iter()
                .enumerate()
                .map(|(i, e)| BundleEnvelope {
                    index: i as u64,
                    bytes: hex::encode(&e.bytes),
                    content: (!e.content.is_empty()).then(|| hex::encode(&e.content)),
                    form_text: e.form_text.clone(),
                    inclusion: if i < latest {
                        merkle::inclusion_proof(&leaves[..latest], i).iter().map(hex::encode).collect()
                    } else {
                        Vec::new()
                    },
                    pruned: false,
                })
                .collect(),
            checkpoints,
            consistency,
            without_files: false,
        }
    }
}

/// A checkpoint as a bundle holds it, with the countersignatures of `by`.
pub fn countersigned(cp: &SignedCheckpoint, by: &[(&str, SigningKey)]) -> BundleCheckpoint {
    BundleCheckpoint {
        signed: hex::encode(cp.to_bytes().expect("checkpoint bytes")),
        countersignatures: by
            .iter()
            .map(|(m, k)| (m.to_string(), hex::encode(cp.countersign(k).expect("a countersignature"))))
            .collect(),
    }
}

pub fn decision(text: &str, parties: &[&str], supersedes: Option<EnvelopeHash>) -> PayloadV1 {
    PayloadV1::Decision {
        v: 1,
        text: text.into(),
        parties: parties.iter().map(|p| p.to_string()).collect(),
        deadline_s: None,
        supersedes: supersedes.map(|h| h.to_hex()),
    }
}

pub fn answer(decision: EnvelopeHash, text: &str, concur: bool) -> PayloadV1 {
    PayloadV1::Concurrence {
        v: 1,
        decision: decision.to_hex(),
        text_sha256: hex::encode(sha2::Sha256::digest(text.as_bytes())),
        concur,
        reason: (!concur).then(|| "not agreed".to_string()),
    }
}

/// An operator's message, free text or carrying the structured report `form`.
/// A chunk of a file attached to `message`: its place and bytes.
pub fn chunk(message: EnvelopeHash, file: &[u8], index: u64, data: &[u8]) -> PayloadV1 {
    use base64::Engine;
    PayloadV1::Chunk {
        v: 1,
        message: message.to_hex(),
        file: hex::encode(sha2::Sha256::digest(file)),
        index,
        data: base64::engine::general_purpose::STANDARD.encode(data),
    }
}

pub fn message(subject: &str, body: &str, form: Option<serde_json::Value>) -> PayloadV1 {
    PayloadV1::Message {
        v: 1,
        precedence: "routine".into(),
        class: "unclassified".into(),
        caveat: "none".into(),
        subject: subject.into(),
        body: body.into(),
        ack_required: true,
        crisis: false,
        deadline_s: None,
        released_by: None,
        form,
        ewg: None,
        attachments: Vec::new(),
    }
}

/// A receipt of `kind` answering `sender`'s envelope `seq`, whose hash is `answers`.
pub fn receipt(kind: &str, answers: EnvelopeHash, sender: &str, seq: u64) -> PayloadV1 {
    PayloadV1::Receipt {
        v: 1,
        kind: kind.into(),
        answers: answers.to_hex(),
        answers_sender: sender.into(),
        answers_seq: seq,
        reason: None,
    }
}

/// The items of the checks that failed.
pub fn failed(report: &Report) -> Vec<String> {
    report.checks.iter().filter(|c| c.failure.is_some()).map(|c| c.item.clone()).collect()
}
