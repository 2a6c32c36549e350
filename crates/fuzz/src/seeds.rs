//! Seed inputs for every target: real inputs made by the fixture world (envelopes, batches,
//! checkpoints, KeyPackages, a Welcome-bearing line set-up, the example export bundle, API and
//! federation requests), valid ones signed by the fixture keys where a signature is checked, and
//! edge cases (empty, truncated, trailing bytes, lengths over the limits).
//!
//! `fuzz/corpus/` is written from these (`cargo run -p adi-fuzz --example write_corpus`). Ed25519
//! signatures are deterministic, but MLS draws its own randomness, so KeyPackages, Welcomes and
//! MLS ciphertexts differ from one generation to the next, and the ones in the corpus cannot be
//! opened by the MLS state a later process builds: the stable replay runs the seeds made in its
//! own process once each as well, and the `line_setup` seeds name their Welcome with
//! [`crate::LIVE_WELCOME`], which the target replaces with a Welcome made in its process.

use adi_core::{fixtures, Limits};
use adi_mls::{LineMember, MlsConfig};
use adi_record::{merkle, Checkpoint};
use adi_wire::batch::encode_batch;
use adi_wire::content::SignedContent;
use adi_wire::envelope::{
    EnvelopeBody, CONTENT_MLS, CONTENT_MLS_SETUP, CONTENT_PLAIN_V1, PRIORITY_CONTROL, PRIORITY_FLASH,
    PRIORITY_IMMEDIATE, PRIORITY_ROUTINE,
};
use adi_wire::files::{MemberCard, RosterFile, CARD_VERSION};
use adi_wire::payload::PayloadV1;
use adi_wire::{Envelope, EnvelopeHash, LineId};
use serde_json::{json, Value};

use crate::formats::member_key;
use crate::hotline::{world, LINE, NEW_LINE, NOW_MS};
use crate::node::{API_ROUTES, FEDERATION_ROUTES};

/// One seed input: a file name that stays the same from one generation to the next, and bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seed {
    pub name: String,
    pub bytes: Vec<u8>,
}

fn seed(name: &str, bytes: impl Into<Vec<u8>>) -> Seed {
    Seed { name: name.to_string(), bytes: bytes.into() }
}

/// The seeds of a target (none for an unknown name).
pub fn seeds(target: &str) -> Vec<Seed> {
    match target {
        "envelope" => envelope(),
        "batch" => batch(),
        "peer_json" => peer_json(),
        "payload" => payload(),
        "signed_content" => signed_content(),
        "checkpoint" => checkpoint(),
        "bundle" => bundle(),
        "key_package" => key_package(),
        "roster" => roster(),
        "receive" => receive(),
        "line_setup" => line_setup(),
        "mls_message" => mls_message(),
        "line_content" => line_content(),
        "api" => api(),
        "federation" => federation(),
        _ => Vec::new(),
    }
}

/// Empty, cut short, and with a byte too many.
fn cut(name: &str, valid: &[u8]) -> Vec<Seed> {
    let mut trailing = valid.to_vec();
    trailing.push(0);
    vec![
        seed("empty", Vec::new()),
        seed(&format!("{name}-truncated-half"), &valid[..valid.len() / 2]),
        seed(&format!("{name}-truncated-last-byte"), &valid[..valid.len().saturating_sub(1)]),
        seed(&format!("{name}-trailing-byte"), trailing),
    ]
}

fn sign_as(member: &str, body: EnvelopeBody) -> Vec<u8> {
    body.sign(&member_key(member).expect("a fixture member")).bytes().to_vec()
}

fn body_of(bytes: &[u8]) -> EnvelopeBody {
    Envelope::decode(bytes, usize::MAX, usize::MAX).expect("a fixture envelope decodes").body().clone()
}

/// Where an envelope's fields start, for a sender code of `sender_len` characters.
struct Offsets {
    seq: usize,
    priority: usize,
    payload_len: usize,
}

fn offsets(sender_len: usize) -> Offsets {
    let seq = 4 + 1 + 16 + 1 + sender_len;
    let priority = seq + 8 + 32 + 8 + 8;
    Offsets { seq, priority, payload_len: priority + 1 + 1 + 32 }
}

/// Changes to a valid envelope that its decoder must refuse (the signature no longer matters).
fn broken_envelopes(valid: &[u8]) -> Vec<Seed> {
    let at = offsets(body_of(valid).sender.len());
    let over_payload_limit =
        u32::try_from(Limits::default().payload_bytes_max + 1).expect("a small limit").to_be_bytes();
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = valid.to_vec();
        f(&mut b);
        b
    };
    // The sender's length is byte 21 and its code follows.
    vec![
        seed("bad-magic", with(&|b| b[0] = b'X')),
        seed("version-1", with(&|b| b[4] = 1)),
        seed("sender-lowercase", with(&|b| b[22] = b'p')),
        seed("sender-length-zero", with(&|b| b[21] = 0)),
        seed("seq-zero", with(&|b| b[at.seq..at.seq + 8].fill(0))),
        seed("priority-5", with(&|b| b[at.priority] = 5)),
        seed("payload-length-max", with(&|b| b[at.payload_len..at.payload_len + 4].fill(0xFF))),
        seed(
            "payload-length-over-limit",
            with(&|b| b[at.payload_len..at.payload_len + 4].copy_from_slice(&over_payload_limit)),
        ),
        seed("signature-flipped", with(&|b| *b.last_mut().expect("an envelope") ^= 1)),
    ]
}

/// PH's real envelopes, named.
fn ph_envelopes() -> Vec<Seed> {
    let w = world();
    let mut out = vec![
        seed("setup", w.setup.clone()),
        seed("message", w.message.clone()),
        seed("setup-conference", w.setup_new.clone()),
    ];
    let names = ["message-flash", "message-immediate", "message-priority", "key-update-commit"];
    out.extend(names.iter().zip(&w.more).map(|(n, b)| seed(n, b.clone())));
    out
}

fn envelope() -> Vec<Seed> {
    let w = world();
    let mut out = ph_envelopes();
    out.extend(broken_envelopes(&w.message));
    out.extend(cut("message", &w.message));
    out
}

fn batch() -> Vec<Seed> {
    let w = world();
    let envelopes = ph_envelopes();
    let all = encode_batch(envelopes.iter().map(|s| s.bytes.as_slice()));
    let two = encode_batch([w.setup.as_slice(), w.message.as_slice()]);
    let header = |count: u32| [b"ADIB".as_slice(), &[1], &count.to_be_bytes()].concat();
    let mut out = vec![
        seed("two-envelopes", two.clone()),
        seed("every-envelope", all),
        seed("no-envelope", encode_batch([])),
        seed("count-over-limit", header(257)),
        seed("count-max", header(u32::MAX)),
        seed("envelope-length-max", [header(1), u32::MAX.to_be_bytes().to_vec()].concat()),
        seed("version-2", [b"ADIB".as_slice(), &[2], &0u32.to_be_bytes()].concat()),
        seed("broken-envelope", encode_batch([&w.message[..w.message.len() - 1]])),
    ];
    out.extend(cut("two-envelopes", &two));
    out
}

/// A checkpoint of [`LINE`] by `signer` over PH's set-up and first message.
fn line_checkpoint(signer: &str, size: usize) -> (adi_record::SignedCheckpoint, Vec<merkle::Hash>) {
    let w = world();
    let leaves: Vec<merkle::Hash> =
        [&w.setup, &w.message].iter().map(|b| merkle::leaf_hash(&EnvelopeHash::of(b).0)).collect();
    let checkpoint = Checkpoint {
        line: LINE.0,
        signer: signer.to_string(),
        size: size as u64,
        root: merkle::root(&leaves[..size]),
        time_ms: NOW_MS,
        heads: None,
    };
    let signed = checkpoint.sign(&member_key(signer).expect("a fixture member")).expect("a checkpoint signs");
    (signed, leaves)
}

fn hex_of(cp: &adi_record::SignedCheckpoint) -> String {
    hex::encode(cp.to_bytes().expect("a fixture checkpoint encodes"))
}

fn peer_json() -> Vec<Seed> {
    let (ph, leaves) = line_checkpoint("PH", 2);
    let (cn, _) = line_checkpoint("CN", 2);
    let countersignature = ph.countersign(&member_key("CN").expect("CN")).expect("a countersignature");
    let proof: Vec<String> = merkle::consistency_proof(&leaves, 1).iter().map(hex::encode).collect();
    let reply = json!({"version": 1, "verdicts": [
        {"status": "accepted"}, {"status": "duplicate"},
        {"status": "rejected", "reason": "a reason"}, {"status": "deferred", "reason": "later"}]});
    let offer =
        json!({"v": 1, "checkpoint": hex_of(&ph), "from_size": 1, "consistency": proof, "others": [hex_of(&cn)]});
    let answer = json!({"v": 1, "countersignature": hex::encode(countersignature), "refused": null,
        "checkpoints": [hex_of(&cn)]});
    let refused = json!({"v": 1, "countersignature": null, "refused": "tamper", "checkpoints": []});
    let nested = format!("{}{}", "[".repeat(300), "]".repeat(300));
    let mut out = vec![
        seed("batch-reply", reply.to_string()),
        seed("batch-reply-unknown-status", r#"{"version":1,"verdicts":[{"status":"lost"}]}"#),
        seed("batch-reply-no-reason", r#"{"version":1,"verdicts":[{"status":"rejected"}]}"#),
        seed("checkpoint-offer", offer.to_string()),
        seed(
            "checkpoint-offer-size-overflow",
            r#"{"v":1,"checkpoint":"00","from_size":18446744073709551616,"consistency":[],"others":[]}"#,
        ),
        seed("checkpoint-answer", answer.to_string()),
        seed("checkpoint-answer-refused", refused.to_string()),
        seed("nested-arrays", nested),
        seed("not-utf8", vec![0x7B, 0xFF, 0xFE, 0x7D]),
    ];
    out.extend(cut("checkpoint-answer", answer.to_string().as_bytes()));
    out
}

/// The example encounter-at-sea report, as its checks make it (signal meanings filled in).
fn sea_report() -> serde_json::Value {
    let Some(example) = adi_forms::schema::example("encounter-at-sea") else { panic!("the example report is JSON") };
    match adi_forms::check(&example) {
        Ok(form) => form.to_value(),
        Err(e) => panic!("the example report checks: {e}"),
    }
}

/// One payload of each kind, as PH would send them on [`LINE`].
fn payloads() -> Vec<(&'static str, PayloadV1)> {
    let w = world();
    let answered = EnvelopeHash::of(&w.setup).to_hex();
    let setup = match PayloadV1::decode(&body_of(&w.setup_new).payload) {
        Ok(p) => p,
        Err(e) => panic!("the conference set-up's payload decodes: {e}"),
    };
    vec![
        ("line-setup", setup),
        (
            "message",
            PayloadV1::Message {
                v: 1,
                precedence: "IMMEDIATE".into(),
                class: "OPERATIONAL".into(),
                caveat: "TEST CAVEAT".into(),
                subject: "Status".into(),
                body: "All stations report.".into(),
                ack_required: true,
                crisis: false,
                deadline_s: Some(1800),
                released_by: None,
                form: None,
                ewg: None,
                attachments: Vec::new(),
            },
        ),
        (
            "message-with-form",
            PayloadV1::Message {
                v: 1,
                precedence: "IMMEDIATE".into(),
                class: "OPERATIONAL".into(),
                caveat: "TEST CAVEAT".into(),
                subject: "Encounter at sea".into(),
                body: String::new(),
                ack_required: true,
                crisis: false,
                deadline_s: None,
                released_by: None,
                form: Some(sea_report()),
                ewg: Some("maritime-security".into()),
                attachments: Vec::new(),
            },
        ),
        (
            "receipt",
            PayloadV1::Receipt {
                v: 1,
                kind: "declined".into(),
                answers: answered.clone(),
                answers_sender: "CN".into(),
                answers_seq: 1,
                reason: Some("Not ours to answer.".into()),
            },
        ),
        ("link-test", PayloadV1::LinkTest { v: 1 }),
        (
            "decision",
            PayloadV1::Decision {
                v: 1,
                text: "Both sides stand down.".into(),
                parties: vec!["CN".into(), "PH".into()],
                deadline_s: Some(3600),
                supersedes: Some(answered.clone()),
            },
        ),
        (
            "translation",
            PayloadV1::Translation {
                v: 1,
                original: answered.clone(),
                language: "zh-Hans".into(),
                text: "所有站点报告。".into(),
                translator: "li".into(),
                reviewed_by: Some("wang".into()),
                revises: Some(answered.clone()),
            },
        ),
        (
            "concurrence",
            PayloadV1::Concurrence {
                v: 1,
                decision: answered.clone(),
                text_sha256: answered,
                concur: false,
                reason: Some("The text changed.".into()),
            },
        ),
    ]
}

fn payload() -> Vec<Seed> {
    let mut out: Vec<Seed> = payloads().into_iter().map(|(n, p)| seed(n, p.encode())).collect();
    let mut message: Value = serde_json::from_slice(&out[1].bytes).expect("a payload is JSON");
    message["extra"] = json!(1);
    out.push(seed("unknown-field", message.to_string()));
    out.push(seed("version-2", r#"{"type":"link_test","v":2}"#));
    out.push(seed("unknown-type", r#"{"type":"telegram","v":1}"#));
    out.push(seed("sequence-overflow", r#"{"type":"receipt","v":1,"kind":"seen","answers":"00","answers_sender":"PH","answers_seq":18446744073709551616}"#));
    out.push(seed("escapes", r#"{"type":"link_test","v":1,"\u0000":"\ud800"}"#));
    out.push(seed("empty-object", "{}"));
    out.push(seed("nested-objects", format!("{}{}", "{\"a\":".repeat(200), "}".repeat(200))));
    out.push(seed("not-utf8", vec![0x7B, 0xC3, 0x28, 0x7D]));
    out.extend(cut("message", &payloads()[1].1.encode()));
    out
}

fn signed_content() -> Vec<Seed> {
    let key = member_key("PH").expect("PH");
    let content = payloads()[1].1.encode();
    let signed = SignedContent::sign(&key, &LINE, "PH", 2, content).encode();
    let mut version_2 = signed.clone();
    version_2[0] = 2;
    let mut out = vec![
        seed("message", signed.clone()),
        seed("version-2", version_2),
        seed("no-content", &signed[..65]),
        seed("signature-short", &signed[..64]),
    ];
    out.extend(cut("message", &signed));
    out
}

fn checkpoint() -> Vec<Seed> {
    let (ph, _) = line_checkpoint("PH", 2);
    let bytes = ph.to_bytes().expect("a checkpoint encodes");
    let countersignature = ph.countersign(&member_key("CN").expect("CN")).expect("a countersignature");
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = bytes.clone();
        f(&mut b);
        b
    };
    let mut out = vec![
        seed("signed", bytes.clone()),
        seed("with-countersignature", [bytes.clone(), countersignature.to_vec()].concat()),
        seed("empty-log", line_checkpoint("PH", 0).0.to_bytes().expect("a checkpoint encodes")),
        seed("signer-length-zero", with(&|b| b[16] = 0)),
        seed("signer-length-max", with(&|b| b[16] = 255)),
        seed("signer-not-ascii", with(&|b| b[17] = 0xC3)),
        seed("signature-only", vec![0; 64]),
    ];
    out.extend(cut("signed", &bytes));
    out
}

/// The example export bundle shipped in `docs/`: a real line of PH and CN, exported and signed.
const EXAMPLE_BUNDLE: &str = include_str!("../../../docs/example-bundle.json");

fn bundle() -> Vec<Seed> {
    // The changed copies keep two of the example's envelopes, to keep the corpus small.
    let mut example: Value = serde_json::from_str(EXAMPLE_BUNDLE).expect("the example bundle is JSON");
    if let Some(envelopes) = example["envelopes"].as_array_mut() {
        envelopes.truncate(2);
    }
    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = example.clone();
        f(&mut b);
        b.to_string()
    };
    vec![
        seed("example", EXAMPLE_BUNDLE),
        seed("format-other", with(&|b| b["format"] = json!("other"))),
        seed("window-huge", with(&|b| b["to_index"] = json!(u64::MAX))),
        seed("index-huge", with(&|b| b["envelopes"][0]["index"] = json!(u64::MAX))),
        seed("log-not-hex", with(&|b| b["log"][0] = json!("zz"))),
        seed("checkpoint-not-hex", with(&|b| b["checkpoints"][0]["signed"] = json!("0"))),
        seed("roster-key-short", with(&|b| b["roster"]["PH"] = json!("00"))),
        seed(
            "consistency-bogus",
            with(&|b| b["consistency"] = json!([{"from_size": 1, "to_size": 0, "proof": ["00"]}])),
        ),
        seed("two-envelopes", with(&|_| {})),
        seed("empty-object", "{}"),
        seed("empty", Vec::new()),
        seed("example-truncated-half", &EXAMPLE_BUNDLE.as_bytes()[..EXAMPLE_BUNDLE.len() / 2]),
    ]
}

fn key_package() -> Vec<Seed> {
    let w = world();
    let mut tl = fixtures::hotline("TL");
    let observer = tl.key_packages(1).expect("a KeyPackage").remove(0);
    let mut stranger = LineMember::new("ZZ", [9; 32], MlsConfig::default()).expect("an MLS member");
    let stranger = stranger.key_packages(1).expect("a KeyPackage").remove(0);
    let mut flipped = w.key_package.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x10;
    let mut out = vec![
        seed("member", w.key_package.clone()),
        seed("observer", observer),
        seed("not-in-roster", stranger),
        seed("flipped-byte", flipped),
        seed("welcome-not-key-package", welcome_bytes()),
    ];
    out.extend(cut("member", &w.key_package));
    out
}

/// The Welcome inside PH's set-up of the conference.
fn welcome_bytes() -> Vec<u8> {
    match PayloadV1::decode(&body_of(&world().setup_new).payload) {
        Ok(PayloadV1::LineSetup { welcome: Some(w), .. }) => hex::decode(w).expect("the Welcome is hex"),
        _ => panic!("the conference set-up carries a Welcome"),
    }
}

fn roster() -> Vec<Seed> {
    let file = fixtures::roster(&fixtures::WORLD).to_file();
    let text = file.to_toml();
    let card = MemberCard { version: CARD_VERSION, member: file.members[0].clone() };
    let card = serde_json::to_string_pretty(&card).expect("a card serialises");
    let with = |f: &dyn Fn(&mut RosterFile)| {
        let mut changed = file.clone();
        f(&mut changed);
        changed.to_toml()
    };
    let mut out = vec![
        seed("roster", text.clone()),
        seed("card", card.clone()),
        seed("member-twice", with(&|r| r.members.push(r.members[0].clone()))),
        seed("pin-twice", with(&|r| r.members[1].tls_pin = r.members[0].tls_pin.clone())),
        seed("key-not-a-point", with(&|r| r.members[0].signing_key = "ff".repeat(32))),
        seed("endpoint-port-0", with(&|r| r.members[0].endpoints = vec!["127.0.0.1:0".into()])),
        seed("scope-missing", with(&|r| r.policy.scopes.truncate(1))),
        seed("no-members", with(&|r| r.members.clear())),
        seed("version-2", with(&|r| r.version = 2)),
        seed("nested-arrays", format!("x = {}{}", "[".repeat(200), "]".repeat(200))),
    ];
    out.extend(cut("roster", text.as_bytes()));
    out.push(seed("card-truncated-half", &card.as_bytes()[..card.len() / 2]));
    out
}

fn receive() -> Vec<Seed> {
    let w = world();
    let message = body_of(&w.message);
    let mut out = ph_envelopes();
    let signed = |name: &str, member: &str, body: EnvelopeBody| seed(name, sign_as(member, body));
    out.push(signed("seq-far-ahead", "PH", EnvelopeBody { seq: 2_000_000, ..message.clone() }));
    out.push(signed("epoch-ahead", "PH", EnvelopeBody { epoch: 5, ..message.clone() }));
    out.push(signed("unknown-line", "PH", EnvelopeBody { line: LineId([9; 16]), ..message.clone() }));
    out.push(signed("plain-content", "PH", EnvelopeBody { content_type: CONTENT_PLAIN_V1, ..message.clone() }));
    out.push(signed("content-hash-other", "PH", EnvelopeBody { content_hash: [7; 32], ..message.clone() }));
    out.push(signed("from-another-member", "CN", EnvelopeBody { sender: "CN".into(), ..message.clone() }));
    let setup = body_of(&w.setup);
    out.push(signed("setup-not-first", "PH", EnvelopeBody { prev: EnvelopeHash([1; 32]), ..setup.clone() }));
    out.push(signed("setup-later", "PH", EnvelopeBody { seq: 9, ..setup.clone() }));
    out.push(signed("setup-payload-empty", "PH", EnvelopeBody { payload: Vec::new(), ..setup }));
    out.extend(broken_envelopes(&w.message));
    out.extend(cut("message", &w.message));
    out
}

/// Another line set-up payload built from the conference's, its Welcome given as
/// [`crate::LIVE_WELCOME`] unless `change` sets another.
fn setup_payload(
    change: impl FnOnce(&mut Vec<String>, &mut String, &mut String, &mut String, &mut Option<String>),
) -> Vec<u8> {
    match PayloadV1::decode(&body_of(&world().setup_new).payload) {
        Ok(PayloadV1::LineSetup { v, mut scope, mut title, mut home, mut members, .. }) => {
            let mut welcome = Some(String::from_utf8_lossy(crate::LIVE_WELCOME).into_owned());
            change(&mut members, &mut scope, &mut title, &mut home, &mut welcome);
            PayloadV1::LineSetup { v, scope, title, home, members, welcome }.encode()
        }
        _ => panic!("the conference set-up carries a line set-up"),
    }
}

fn line_setup() -> Vec<Seed> {
    let w = world();
    let conference = body_of(&w.setup_new).payload;
    let key_package = hex::encode(&w.key_package);
    let live = String::from_utf8_lossy(crate::LIVE_WELCOME).into_owned();
    let mut out = vec![
        seed("conference", setup_payload(|_, _, _, _, _| {})),
        seed("title-other", setup_payload(|_, _, title, _, _| *title = "Another title".into())),
        seed("members-not-the-group", setup_payload(|m, _, _, _, _| m.retain(|c| c != "VN"))),
        seed("welcome-of-another-process", conference.clone()),
        seed("direct-line", body_of(&w.setup).payload),
        seed("no-welcome", setup_payload(|_, _, _, _, welcome| *welcome = None)),
        seed("welcome-twice", setup_payload(|_, _, _, _, welcome| *welcome = Some(format!("{live}{live}")))),
        seed("welcome-not-hex", setup_payload(|_, _, _, _, welcome| *welcome = Some("zz".into()))),
        seed("welcome-is-key-package", setup_payload(|_, _, _, _, welcome| *welcome = Some(key_package))),
        seed("home-not-sender", setup_payload(|_, _, _, home, _| *home = "CN".into())),
        seed("scope-unknown", setup_payload(|_, scope, _, _, _| *scope = "ASEAN".into())),
        seed("scope-excludes-member", setup_payload(|_, scope, _, _, _| *scope = "ADMM".into())),
        seed("member-unknown", setup_payload(|m, _, _, _, _| m.push("ZZ".into()))),
        seed("member-twice", setup_payload(|m, _, _, _, _| m.push("CN".into()))),
        seed("members-not-listing-recipient", setup_payload(|m, _, _, _, _| m.retain(|c| c != "CN"))),
        seed("members-many", setup_payload(|m, _, _, _, _| m.extend((0..70).map(|i| format!("M{i}"))))),
        seed("title-long", setup_payload(|_, _, title, _, _| *title = "T".repeat(201))),
        seed("not-a-setup", payloads()[1].1.encode()),
    ];
    out.extend(cut("conference", &conference));
    out
}

fn mls_message() -> Vec<Seed> {
    let w = world();
    let ciphertext = body_of(&w.message).payload;
    let mut flipped = ciphertext.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    let mut out = vec![
        seed("application", ciphertext.clone()),
        seed("application-flash", body_of(&w.more[0]).payload),
        seed("commit", body_of(&w.more[3]).payload),
        seed("welcome", welcome_bytes()),
        seed("key-package", w.key_package.clone()),
        seed("application-flipped", flipped),
    ];
    out.extend(cut("application", &ciphertext));
    out
}

fn line_content() -> Vec<Seed> {
    let w = world();
    let with_priority = |p: u8, content: Vec<u8>| [vec![p], content].concat();
    let message = |precedence: &str, body: String| PayloadV1::Message {
        v: 1,
        precedence: precedence.into(),
        class: "OPERATIONAL".into(),
        caveat: "TEST CAVEAT".into(),
        subject: "Subject".into(),
        body,
        ack_required: true,
        crisis: false,
        deadline_s: Some(600),
        released_by: None,
        form: None,
        ewg: None,
        attachments: Vec::new(),
    };
    let own = PayloadV1::Receipt {
        v: 1,
        kind: "acknowledged".into(),
        answers: EnvelopeHash::of(&w.setup).to_hex(),
        answers_sender: "PH".into(),
        answers_seq: 1,
        reason: None,
    };
    let mut out: Vec<Seed> = Vec::new();
    for (name, p) in payloads() {
        let priority = match &p {
            PayloadV1::LineSetup { .. } | PayloadV1::LinkTest { .. } => PRIORITY_CONTROL,
            PayloadV1::Message { .. } | PayloadV1::Decision { .. } | PayloadV1::Concurrence { .. } => {
                PRIORITY_IMMEDIATE
            }
            _ => PRIORITY_ROUTINE,
        };
        out.push(seed(name, with_priority(priority, p.encode())));
    }
    let words = |n: usize| vec!["word"; n].join(" ");
    out.push(seed("flash-200-words", with_priority(PRIORITY_FLASH, message("FLASH", words(200)).encode())));
    out.push(seed("flash-201-words", with_priority(PRIORITY_FLASH, message("FLASH", words(201)).encode())));
    out.push(seed("precedence-mismatch", with_priority(PRIORITY_ROUTINE, message("FLASH", words(3)).encode())));
    out.push(seed("receipt-of-own", with_priority(PRIORITY_ROUTINE, own.encode())));
    out.push(seed("not-json", with_priority(PRIORITY_ROUTINE, b"not json".to_vec())));
    out.push(seed("empty", Vec::new()));
    out.push(seed("priority-only", vec![PRIORITY_ROUTINE]));
    out
}

fn api() -> Vec<Seed> {
    let route = |path: &str| {
        let at = API_ROUTES.iter().position(|r| *r == path).expect("a fuzzed route");
        u8::try_from(at).expect("few routes")
    };
    let request =
        |name: &str, path: &str, body: &str| seed(name, [vec![route(path)], body.as_bytes().to_vec()].concat());
    let words = vec!["word"; 201].join(" ");
    let long_flash = json!({"precedence": "FLASH", "subject": "Long", "body": words}).to_string();
    let lines = "/api/v1/lines";
    let messages = "/api/v1/lines/{line}/messages";
    let members = "/api/v1/lines/{line}/members";
    let decisions = "/api/v1/lines/{line}/decisions";
    let concur = "/api/v1/decisions/{decision}/concur";
    let decline_decision = "/api/v1/decisions/{decision}/decline";
    let seen = "/api/v1/messages/{message}/seen";
    let ack = "/api/v1/messages/{message}/ack";
    let decline = "/api/v1/messages/{message}/decline";
    let translate = "/api/v1/messages/{message}/translations";
    let sign_in = "/console/sign-in";
    vec![
        request("line-existing", lines, r#"{"members":["PH","CN"],"scope":"ADMM-Plus","title":"Again"}"#),
        request("line-scope-excludes", lines, r#"{"members":["PH","CN"],"scope":"ADMM"}"#),
        request("line-unknown-member", lines, r#"{"members":["PH","ZZ"],"scope":"ADMM-Plus"}"#),
        request("line-empty", lines, r#"{"members":[],"scope":""}"#),
        request("line-not-json", lines, "members=PH"),
        request("message-routine", messages, r#"{"precedence":"ROUTINE","subject":"Status","body":"All quiet."}"#),
        request(
            "message-every-field",
            messages,
            r#"{"precedence":"Z","class":"TEST","caveat":"C","subject":"S","body":"B","ack_required":false,"crisis":true}"#,
        ),
        request("message-flash-201-words", messages, &long_flash),
        request("message-unknown-precedence", messages, r#"{"precedence":"URGENT","subject":"S","body":"B"}"#),
        request("message-unknown-field", messages, r#"{"precedence":"ROUTINE","subject":"S","body":"B","to":"CN"}"#),
        request("member-on-line", members, r#"{"member":"CN"}"#),
        request("member-bad-code", members, r#"{"member":"c n"}"#),
        request("decision", decisions, r#"{"text":"Hold positions."}"#),
        request(
            "decision-every-field",
            decisions,
            r#"{"text":"T","parties":["PH","CN"],"deadline_s":18446744073709551615,"supersedes":"00"}"#,
        ),
        request("concur", concur, "{}"),
        request("concur-other-text", concur, r#"{"text_sha256":"00"}"#),
        request("decline-decision", decline_decision, r#"{"reason":"Not agreed."}"#),
        request("decline-decision-no-reason", decline_decision, "{}"),
        request("seen-empty-body", seen, ""),
        request("ack", ack, "{}"),
        request("decline-message", decline, r#"{"reason":"Cannot comply."}"#),
        request("decline-message-whitespace", decline, " \n "),
        request("translation", translate, r#"{"language":"en","text":"Translated."}"#),
        request("translation-empty", translate, r#"{"language":"","text":""}"#),
        request("sign-in-wrong-password", sign_in, r#"{"name":"duty-PH","password":"not the password"}"#),
        request("sign-in-unknown-field", sign_in, r#"{"name":"duty-PH","password":"p","otp":1}"#),
        seed("empty", Vec::new()),
    ]
}

fn federation() -> Vec<Seed> {
    let w = world();
    let batch_route = |bytes: Vec<u8>| [vec![0u8], bytes].concat();
    let offer_route = |text: String| [vec![1u8], text.into_bytes()].concat();
    assert_eq!(FEDERATION_ROUTES.len(), 2, "batches on even selectors, offers on odd");
    // CN sets up a line of its own with PH; PH holds no KeyPackage for the Welcome.
    let line = LineId([9; 16]);
    let setup = EnvelopeBody {
        line,
        sender: "CN".into(),
        seq: 1,
        prev: EnvelopeHash::NONE,
        epoch: 0,
        created_ms: NOW_MS,
        priority: PRIORITY_CONTROL,
        content_type: CONTENT_MLS_SETUP,
        content_hash: [0; 32],
        payload: setup_payload(|members, _, title, home, welcome| {
            *members = vec!["CN".into(), "PH".into()];
            *title = String::new();
            *home = "CN".into();
            *welcome = Some(hex::encode(welcome_bytes()));
        }),
    };
    let setup = sign_as("CN", setup.clone());
    let message = sign_as(
        "CN",
        EnvelopeBody { sender: "CN".into(), content_type: CONTENT_MLS, line: NEW_LINE, ..body_of(&w.message) },
    );
    let (cn, _) = line_checkpoint("CN", 2);
    let offer = json!({"v": 1, "checkpoint": hex_of(&cn), "from_size": 0, "consistency": [], "others": [hex_of(&cn)]});
    vec![
        seed("batch-from-peer", batch_route(encode_batch([setup.as_slice(), message.as_slice()]))),
        seed("batch-not-from-peer", batch_route(encode_batch([w.message.as_slice()]))),
        seed("batch-duplicates", batch_route(encode_batch([setup.as_slice(), setup.as_slice()]))),
        seed("batch-empty", batch_route(encode_batch([]))),
        seed("batch-count-max", batch_route([b"ADIB".as_slice(), &[1], &u32::MAX.to_be_bytes()].concat())),
        seed("batch-truncated", batch_route(encode_batch([&setup[..setup.len() - 1]]))),
        seed("offer", offer_route(offer.to_string())),
        seed(
            "offer-not-hex",
            offer_route(r#"{"v":1,"checkpoint":"zz","from_size":0,"consistency":[],"others":["zz"]}"#.into()),
        ),
        seed("offer-not-json", offer_route("offer".into())),
        seed("empty", Vec::new()),
    ]
}
