//! The conformance set of the offline bundle verifier (`docs/conformance/`): valid and
//! deliberately broken bundles, built here deterministically, each with the verdict and the
//! failing checks `verify_anchored` gives it. Anyone writing a verifier of their own checks it
//! against these files.
//!
//! The committed files must be exactly what this generator makes: a change to a verification
//! rule that changes any verdict or failing item fails the test, naming the files that differ.
//! `ADI_CONFORMANCE_WRITE=1` writes them instead. Every kind of check that `verify` can fail is
//! failed by at least one case.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::OnceLock;

use adi_record::bundle::{verify_anchored, Anchor, Bundle, BundleCheckpoint, BundleEnvelope, Report};
use adi_record::{merkle, Checkpoint, Head, SignedCheckpoint};
use adi_wire::commit::{Membership, Place};
use adi_wire::content::SignedContent;
use adi_wire::payload::PayloadV1;
use adi_wire::{EnvelopeHash, LineId};
use ed25519_dalek::{Signature, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest;
use support::{
    answer, chunk, decision, failed, key, keyed, message, public_hex, receipt, roster_text, Line, Tweak, CODES, LINE,
    MEMBERS,
};

/// The name of the roster every case's keys come from.
const ROSTER_NAME: &str = "ADI conformance";
/// When the first envelope of each line was signed (2026-01-01T00:00:00Z), and the time
/// between two.
const START_MS: u64 = 1_767_225_600_000;
const STEP_MS: u64 = 60_000;
/// The variable that makes the test write the set rather than compare it.
const WRITE: &str = "ADI_CONFORMANCE_WRITE";

// ---------------------------------------------------------------------------------------------
// The kinds of check.

/// A kind of check `verify_anchored` can fail, named by a stable part of its item's text.
struct Kind {
    name: &'static str,
    matches: fn(&str) -> bool,
}

/// Every kind of check that `verify_anchored` and `verify` (`crates/record/src/bundle.rs`) can
/// fail: one per `r.check(...)` call that can be given an `Err`. Each is failed by at least one
/// case of the set; none is unreachable by a bundle.
const KINDS: &[Kind] = &[
    Kind { name: "anchor: the roster", matches: |i| i == "anchor: the roster" },
    Kind { name: "anchor: roster", matches: |i| i.starts_with("anchor: roster ") },
    Kind { name: "anchor: the bundle's key of", matches: |i| i.starts_with("anchor: the bundle's key of ") },
    Kind { name: "bundle format", matches: |i| i == "bundle format" },
    Kind { name: "roster key of", matches: |i| i.starts_with("roster key of ") },
    Kind { name: "line id", matches: |i| i == "line id" },
    Kind { name: "log entries", matches: |i| i == "log entries" },
    // A checkpoint that cannot be decoded is named by its place alone: "checkpoint 0".
    Kind {
        name: "checkpoint N (not decodable)",
        matches: |i| {
            i.strip_prefix("checkpoint ").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        },
    },
    Kind { name: "checkpoint: signature", matches: |i| i.starts_with("checkpoint ") && i.ends_with(": signature") },
    Kind {
        name: "checkpoint: countersignature by",
        matches: |i| i.starts_with("checkpoint ") && i.contains(": countersignature by "),
    },
    Kind { name: "checkpoint: root of the exported log", matches: |i| i.ends_with(": root of the exported log") },
    Kind { name: "checkpoints of (equivocation)", matches: |i| i.starts_with("checkpoints of ") },
    Kind { name: "consistency of", matches: |i| i.starts_with("consistency of ") },
    Kind {
        name: "the exporter's latest checkpoint covers the whole log",
        matches: |i| i.starts_with("the exporter's latest checkpoint covers the whole log"),
    },
    Kind {
        name: "the exporter's latest checkpoint is countersigned by another member",
        matches: |i| i.starts_with("the exporter's latest checkpoint is countersigned by another member"),
    },
    Kind {
        name: "checkpoint: head of chain at",
        matches: |i| i.contains("'s checkpoint: head of ") && i.contains(" at #"),
    },
    Kind {
        name: "checkpoint: head of chain (none named)",
        matches: |i| i.contains("'s checkpoint: head of ") && i.ends_with("'s chain"),
    },
    // An envelope that cannot be decoded is named by its place alone: "envelope at log index 4".
    Kind {
        name: "envelope at log index N (not decodable)",
        matches: |i| {
            i.strip_prefix("envelope at log index ")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        },
    },
    Kind {
        name: "envelope: signature",
        matches: |i| i.starts_with("envelope at log index ") && i.ends_with(": signature"),
    },
    Kind {
        name: "envelope: the only envelope at its place",
        matches: |i| i.ends_with(": the only envelope at its place"),
    },
    Kind { name: "envelope: place in the log", matches: |i| i.ends_with(": place in the log") },
    Kind { name: "envelope: inclusion in", matches: |i| i.contains(": inclusion in ") },
    Kind { name: "envelope: signed content", matches: |i| i.ends_with(": signed content") },
    Kind { name: "envelope: readable report text", matches: |i| i.ends_with(": readable report text") },
    Kind {
        name: "file: its chunks make the file",
        matches: |i| i.ends_with(": its chunks make the file its message signed"),
    },
    Kind {
        name: "envelope: content pruned",
        matches: |i| i.ends_with(": content pruned by the exporter's retention after it was archived"),
    },
    Kind {
        name: "line scope, title and home",
        matches: |i| i == "line scope, title and home, against the signed set-up",
    },
    Kind {
        name: "countersigner is on the line",
        matches: |i| i.contains(": countersigner ") && i.ends_with(" is on the line"),
    },
    Kind {
        name: "chain of: complete from #1",
        matches: |i| i.starts_with("chain of ") && i.contains(": complete from #1 to #"),
    },
    Kind { name: "envelopes of log entries", matches: |i| i.starts_with("envelopes of log entries ") },
    Kind { name: "chain link of", matches: |i| i.starts_with("chain link of ") },
    Kind { name: "answer by", matches: |i| i.starts_with("answer by ") },
    Kind { name: "receipt answers", matches: |i| i.contains(" receipt answers ") },
];

/// The `r.check(...)` calls of `crates/record/src/bundle.rs` that are only ever given `Ok`:
/// statements the report makes, which no bundle can fail.
const ALWAYS_HOLD: &[&str] = &[
    "anchor: none given (only without an anchor)",
    "line members (unsigned)",
    "line scope, title, home and members (unsigned: the set-up is not in the bundle)",
    "exported by (unsigned)",
    "chain of: #a (to #b) not held: why (a run signed data explains)",
    "decision: its state",
    "file: n of its chunks in the bundle",
];

/// The kinds an item of a failed check is of.
fn kinds_of(item: &str) -> Vec<&'static str> {
    KINDS.iter().filter(|k| (k.matches)(item)).map(|k| k.name).collect()
}

// ---------------------------------------------------------------------------------------------
// Building blocks.

/// The genuine roster of the conformance lines: the members' keys of set 0.
fn genuine_roster() -> (String, [u8; 32]) {
    roster_text(ROSTER_NAME, &MEMBERS.iter().map(|m| (m.to_string(), public_hex(m, 0))).collect::<Vec<_>>())
}

/// A conformance line: fixed keys of `set`, one envelope a minute from 2026-01-01.
fn new_line(set: u8, roster: &[&str]) -> Line {
    Line {
        set,
        roster: roster.iter().map(|m| m.to_string()).collect(),
        roster_name: ROSTER_NAME.into(),
        start_ms: START_MS,
        step_ms: STEP_MS,
        ..Line::default()
    }
}

/// A JSON value with every object's keys in byte order, so that its encoding does not depend
/// on the features `serde_json` is built with.
fn sorted(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sorted).collect()),
        x => x,
    }
}

/// The structured report `name` of `docs/examples/`.
fn form(name: &str) -> Value {
    sorted(adi_forms::schema::example(name).expect("an example report of docs/examples"))
}

fn sha256(text: &str) -> [u8; 32] {
    sha2::Sha256::digest(text.as_bytes()).into()
}

/// How the base line departs from the genuine one.
#[derive(Default)]
struct Variant {
    /// The set of keys everything is signed with.
    set: u8,
    /// The members the set-up names (default: the line's).
    setup: Option<&'static [&'static str]>,
    /// The roster's members (default: the line's).
    roster: Option<&'static [&'static str]>,
    /// How CN's message (CN #2, log index 3) is made.
    cn_message: Tweak,
    /// CN's words in it.
    cn_words: Option<&'static str>,
    /// CN's receipt (CN #1, log index 2) of PH's message, whose hash it is given, instead of the
    /// genuine one.
    cn_receipt: Option<fn(EnvelopeHash) -> PayloadV1>,
}

/// The short line most broken cases start from; PH exports it, CN countersigns:
///
/// | index | envelope | |
/// | --- | --- | --- |
/// | 0 | PH #1 | the line's set-up |
/// | 1 | PH #2 | a message |
/// | 2 | CN #1 | `decrypted` receipt of PH #2 |
/// | 3 | CN #2 | a message |
/// | 4 | PH #3 | `acknowledged` receipt of CN #2 |
fn base(v: Variant) -> Line {
    let mut line = new_line(v.set, v.roster.unwrap_or(&MEMBERS));
    line.setup_naming(v.setup.unwrap_or(&MEMBERS));
    let body = "Two of our patrol vessels are 12 nautical miles north of the shoal, heading 090.";
    let ph = line.add("PH", message("Vessels in sight", body, None));
    let cn_receipt = v.cn_receipt.map_or_else(|| line.receipt("decrypted", ph), |make| make(ph));
    line.add("CN", cn_receipt);
    let words = v.cn_words.unwrap_or("Our vessels keep 5 nautical miles away from yours.");
    let cn = line.add_with("CN", message("Keeping clear", words, None), v.cn_message);
    let ack = line.receipt("acknowledged", cn);
    line.add("PH", ack);
    line
}

/// A line whose message carries a structured report, with its rendering:
/// PH #1 set-up (0), PH #2 a call request (1), CN #1 `decrypted` receipt of it (2).
fn form_line() -> Line {
    let mut line = new_line(0, &MEMBERS);
    line.setup();
    let report = message("Call request", "Proposed times for a call.", Some(form("call-request")));
    let ph = line.add("PH", report);
    let receipt = line.receipt("decrypted", ph);
    line.add("CN", receipt);
    line
}

/// The signed checkpoint a bundle holds at `i`.
fn checkpoint_at(bundle: &Bundle, i: usize) -> SignedCheckpoint {
    let bytes = hex::decode(&bundle.checkpoints[i].signed).expect("checkpoint hex");
    SignedCheckpoint::from_bytes(&bytes).expect("a checkpoint built here")
}

/// The exporter's checkpoint `i` of the bundle, its fields edited and signed again by PH, and
/// countersigned again by CN.
fn resign_checkpoint(bundle: &mut Bundle, i: usize, edit: impl FnOnce(&mut Checkpoint)) {
    let mut cp = checkpoint_at(bundle, i).checkpoint;
    edit(&mut cp);
    let signed = cp.sign(&key("PH")).expect("a checkpoint signs");
    bundle.checkpoints[i] = support::countersigned(&signed, &[("CN", key("CN"))]);
}

/// The bundle's roster, in its list and its file, with `code`'s key given as `key_hex`; the
/// SHA-256 of the new roster file.
fn set_roster_key(bundle: &mut Bundle, code: &str, key_hex: &str) -> [u8; 32] {
    bundle.roster.insert(code.into(), key_hex.into());
    let keys: Vec<(String, String)> = MEMBERS
        .iter()
        .map(|m| (m.to_string(), bundle.roster.get(*m).cloned().expect("a member of the roster")))
        .collect();
    let (text, sha) = roster_text(ROSTER_NAME, &keys);
    bundle.roster_file = Some(text);
    bundle.roster_sha256 = Some(hex::encode(sha));
    sha
}

/// 32 bytes that are no Ed25519 point: the first `y` coordinate, counting up from 2, for which
/// no `x` exists.
fn not_a_point() -> String {
    (2u8..=255)
        .map(|b| {
            let mut k = [0u8; 32];
            k[0] = b;
            k
        })
        .find(|k| VerifyingKey::from_bytes(k).is_err())
        .map(hex::encode)
        .expect("half of all y coordinates are off the curve")
}

// Arithmetic modulo the order of Ed25519's base point, for the signature below, on 256-bit
// numbers as little-endian 64-bit limbs.

/// l = 2^252 + 27742317777372353535851937790883648493.
const L: [u64; 4] = [0x5812_631a_5cf5_d3ed, 0x14de_f9de_a2f7_9cd6, 0, 0x1000_0000_0000_0000];

fn at_least(a: &[u64; 4], b: &[u64; 4]) -> bool {
    for i in (0..4).rev() {
        if a[i] != b[i] {
            return a[i] > b[i];
        }
    }
    true
}

/// (a + b) mod l, for a and b below l.
fn add_mod(a: &[u64; 4], b: &[u64; 4]) -> [u64; 4] {
    let mut sum = [0u64; 4];
    let mut carry = false;
    for i in 0..4 {
        let (s, c1) = a[i].overflowing_add(b[i]);
        let (s, c2) = s.overflowing_add(carry as u64);
        sum[i] = s;
        carry = c1 || c2;
    }
    if at_least(&sum, &L) {
        let mut borrow = false;
        for i in 0..4 {
            let (d, b1) = sum[i].overflowing_sub(L[i]);
            let (d, b2) = d.overflowing_sub(borrow as u64);
            sum[i] = d;
            borrow = b1 || b2;
        }
    }
    sum
}

/// A little-endian number of any length, mod l.
fn reduce(bytes: &[u8]) -> [u64; 4] {
    let mut r = [0u64; 4];
    for byte in bytes.iter().rev() {
        for bit in (0..8).rev() {
            r = add_mod(&r, &r);
            if (byte >> bit) & 1 == 1 {
                r = add_mod(&r, &[1, 0, 0, 0]);
            }
        }
    }
    r
}

/// (a * b) mod l.
fn mul_mod(a: &[u64; 4], b: &[u64; 4]) -> [u64; 4] {
    let mut r = [0u64; 4];
    for limb in b.iter().rev() {
        for bit in (0..64).rev() {
            r = add_mod(&r, &r);
            if (limb >> bit) & 1 == 1 {
                r = add_mod(&r, a);
            }
        }
    }
    r
}

/// An Ed25519 signature of `message` by `key` whose `R` is the identity point (encoded
/// `01 00 .. 00`), with `s = H(R || A || M) * a`: it passes plain verification
/// (`[s]B = R + [H(R || A || M)]A`) but not strict verification, which refuses an `R` of small
/// order. Only the key's holder can make one, and no honest signer does.
fn identity_r_signature(key: &SigningKey, message: &[u8]) -> [u8; 64] {
    let r = IDENTITY_POINT;
    let mut a = key.to_scalar_bytes();
    a[0] &= 248;
    a[31] &= 127;
    a[31] |= 64;
    let mut h = sha2::Sha512::new();
    h.update(r);
    h.update(key.verifying_key().as_bytes());
    h.update(message);
    let k = reduce(&h.finalize());
    let s = mul_mod(&k, &reduce(&a));
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r);
    for (i, limb) in s.iter().enumerate() {
        sig[32 + 8 * i..40 + 8 * i].copy_from_slice(&limb.to_le_bytes());
    }
    sig
}

/// The identity point of Ed25519, encoded: a weak key of small order.
const IDENTITY_POINT: [u8; 32] = {
    let mut p = [0u8; 32];
    p[0] = 1;
    p
};

/// The signature `R = identity, s = 0`, which plain verification accepts under the identity
/// point as a key for any message: `[0]B = identity + [k]identity`.
fn identity_signature() -> [u8; 64] {
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&IDENTITY_POINT);
    sig
}

/// The bytes a checkpoint's signer signs: its context, then its bytes.
fn checkpoint_message(cp: &Checkpoint) -> Vec<u8> {
    let context: &[u8] = if cp.heads.is_some() { b"ADI-CHECKPOINT-V2\0" } else { b"ADI-CHECKPOINT-V1\0" };
    [context, &cp.to_bytes().expect("checkpoint bytes")].concat()
}

// ---------------------------------------------------------------------------------------------
// The cases.

/// One bundle of the set.
struct Case {
    name: &'static str,
    describes: &'static str,
    /// The kinds of check it is built to fail; none for a valid case.
    breaks: &'static [&'static str],
    bundle: Bundle,
    /// The roster SHA-256 it is checked against.
    anchor: [u8; 32],
}

/// A case checked against the SHA-256 of the roster the bundle carries.
fn case(name: &'static str, describes: &'static str, breaks: &'static [&'static str], bundle: Bundle) -> Case {
    let anchor = bundle.roster_file.as_deref().map_or(genuine_roster().1, sha256);
    Case { name, describes, breaks, bundle, anchor }
}

/// The whole line: its set-up, messages, one with a structured report, receipts, and four
/// decisions, one final, one declined, one superseded, one open with its proposer outside the
/// parties; two checkpoints of the exporter with the consistency proof between them, and one of
/// CN's.
fn valid_line() -> Case {
    let (keep5, keep3) = ("Both navies keep 5 nautical miles apart.", "Both navies keep 3 nautical miles apart.");
    let patrol = "A joint patrol on 3 March.";
    let drill = "A hotline drill on Monday at 0200 UTC.";
    let mut line = new_line(0, &MEMBERS);
    line.setup();
    let report = line.add("PH", message("Encounter at sea", "Report attached.", Some(form("encounter-at-sea"))));
    for (member, kind) in [("CN", "decrypted"), ("VN", "decrypted"), ("CN", "acknowledged"), ("VN", "acknowledged")] {
        let r = line.receipt(kind, report);
        line.add(member, r);
    }
    let first = line.add("PH", decision(keep5, &["PH", "CN", "VN"], None));
    line.add("CN", answer(first, keep5, true));
    line.add("VN", answer(first, keep5, true));
    let declined = line.add("CN", decision(patrol, &["CN", "VN"], None));
    line.add("VN", answer(declined, patrol, false));
    let open = line.add("PH", decision(drill, &["CN", "VN"], None));
    line.add("CN", answer(open, drill, true));
    let second = line.add("PH", decision(keep3, &["PH", "CN", "VN"], Some(first)));
    line.add("CN", answer(second, keep3, true));
    line.add("VN", answer(second, keep3, true));
    let noted = line.add("VN", message("Noted", "We will keep 3 nautical miles from now on.", None));
    let r = line.receipt("decrypted", noted);
    line.add("PH", r);
    let mut bundle = line.export_at(&[9, line.envelopes.len() as u64]);
    // CN's own checkpoint of the first 9 entries, countersigned by PH.
    bundle.checkpoints.insert(1, line.countersigned(&line.checkpoint("CN", 9), &["PH"]));
    case(
        "valid-line",
        "A valid line: the set-up, messages (one carrying a structured report with its rendering), decrypted and \
         acknowledged receipts, and four decisions: one final, one declined, one superseded by the final one, \
         and one open whose proposer is not among its parties; two checkpoints of the exporter with the \
         consistency proof between them, and one of another member.",
        &[],
        bundle,
    )
}

fn cases() -> Vec<Case> {
    let mut out = vec![valid_line()];
    let genuine = || base(Variant::default());
    let exported = || genuine().export();

    out.push(case(
        "valid-base-line",
        "A valid short line: the set-up, two messages and two receipts, exported by PH with its checkpoint of \
         the whole log, countersigned by CN. Most broken cases are this bundle with one thing wrong.",
        &[],
        exported(),
    ));
    let mut reordered = exported();
    reordered.envelopes.reverse();
    out.push(case(
        "valid-envelopes-in-any-order",
        "The valid short line with its envelopes listed in reverse order: each envelope's place is its index, \
         not its place in the file.",
        &[],
        reordered,
    ));

    // The format.
    let mut b = exported();
    b.v = 9;
    out.push(case("format-unknown-version", "The bundle says it is of version 9.", &["bundle format"], b));
    let mut b = exported();
    b.format = "adi-export".into();
    out.push(case("format-unknown-name", "The bundle's format is not adi-bundle.", &["bundle format"], b));

    // Roster keys.
    let mut b = exported();
    let anchor = set_roster_key(&mut b, "VN", &"zz".repeat(32));
    out.push(Case {
        name: "roster-key-not-hex",
        describes: "VN's key in the roster is not hex.",
        breaks: &["roster key of"],
        bundle: b,
        anchor,
    });
    let mut b = exported();
    let anchor = set_roster_key(&mut b, "VN", &not_a_point());
    out.push(Case {
        name: "roster-key-not-a-point",
        describes: "VN's key in the roster is 32 bytes that encode no point of the curve.",
        breaks: &["roster key of"],
        bundle: b,
        anchor,
    });
    let mut b = exported();
    let anchor = set_roster_key(&mut b, "VN", &hex::encode(IDENTITY_POINT));
    out.push(Case {
        name: "roster-key-weak",
        describes: "VN's key in the roster is the identity point, a weak key of small order under which one \
                    signature passes plain verification of any message.",
        breaks: &["roster key of"],
        bundle: b,
        anchor,
    });
    let mut b = exported();
    let anchor = set_roster_key(&mut b, "VN", &hex::encode(IDENTITY_POINT));
    b.checkpoints[0].countersignatures.push(("VN".into(), hex::encode(identity_signature())));
    out.push(Case {
        name: "countersignature-under-weak-key",
        describes: "VN's key in the roster is the identity point, and besides CN's countersignature the \
                    exporter's checkpoint carries one by VN that is the identity point with s = 0, which passes \
                    plain verification under that key whatever was signed: the key is refused, and so is the \
                    countersignature.",
        breaks: &["roster key of", "checkpoint: countersignature by"],
        bundle: b,
        anchor,
    });

    // The line and the log.
    let mut b = exported();
    b.line.id = "line-nine".into();
    out.push(case("line-id-not-hex", "The line id is not 16 bytes of hex.", &["line id"], b));
    let mut b = exported();
    b.log[1] = "not a hash".into();
    out.push(case("log-entry-not-hex", "An entry of the log is not a 32-byte hex hash.", &["log entries"], b));
    let mut b = exported();
    b.log[1] = hex::encode(sha256("an envelope that is not PH's message"));
    out.push(case(
        "log-entry-changed",
        "An entry of the log was replaced: the exporter's checkpoint is not the root of the log, and the \
         envelope at that index is not the entry.",
        &["checkpoint: root of the exported log", "envelope: place in the log"],
        b,
    ));
    let mut b = exported();
    b.log.pop();
    b.envelopes.pop();
    b.to_index -= 1;
    out.push(case(
        "log-cut-under-checkpoint",
        "The last entry and its envelope were dropped: the exporter's checkpoint covers more entries than the \
         log has, and names a head that is no longer in it.",
        &["checkpoint: root of the exported log", "the exporter's latest checkpoint covers the whole log"],
        b,
    ));

    // Checkpoints.
    let mut b = exported();
    b.checkpoints
        .insert(0, BundleCheckpoint { signed: hex::encode(b"ADCP\x02\x09\x09"), countersignatures: Vec::new() });
    out.push(case(
        "checkpoint-not-decodable",
        "A checkpoint besides the exporter's valid one is a few bytes that end early.",
        &["checkpoint N (not decodable)"],
        b,
    ));
    let mut b = exported();
    let cp = checkpoint_at(&b, 0).checkpoint;
    let forged = SignedCheckpoint { signature: checkpoint_signature(&cp, &key("CN")), checkpoint: cp };
    b.checkpoints[0] = support::countersigned(&forged, &[("CN", key("CN"))]);
    out.push(case(
        "checkpoint-signature-wrong",
        "The exporter's checkpoint names PH as its signer but is signed with CN's key.",
        &["checkpoint: signature"],
        b,
    ));
    let mut b = exported();
    let cp = checkpoint_at(&b, 0).checkpoint;
    let signature = identity_r_signature(&key("PH"), &checkpoint_message(&cp));
    b.checkpoints[0] = support::countersigned(&SignedCheckpoint { checkpoint: cp, signature }, &[("CN", key("CN"))]);
    out.push(case(
        "checkpoint-signature-small-order-r",
        "The exporter's checkpoint is signed by PH's key with the identity point as R: the signature passes \
         plain Ed25519 verification but not strict verification (RFC 8032 without small-order R), which is \
         required.",
        &["checkpoint: signature"],
        b,
    ));
    let mut b = exported();
    resign_checkpoint(&mut b, 0, |cp| cp.line = [7; 16]);
    out.push(case(
        "checkpoint-of-another-line",
        "The exporter's checkpoint, validly signed and countersigned, is of another line.",
        &["checkpoint: signature"],
        b,
    ));
    let line = genuine();
    let mut b = line.export();
    let by_my = line.checkpoint_of("MY", 5).sign(&key("MY")).expect("a checkpoint signs");
    b.checkpoints.push(support::countersigned(&by_my, &[]));
    out.push(case(
        "checkpoint-signer-not-in-roster",
        "The bundle holds a checkpoint signed by MY, whom the roster does not name.",
        &["checkpoint: signature"],
        b,
    ));

    // Countersignatures.
    let line = genuine();
    let mut b = line.export();
    let cp = checkpoint_at(&b, 0);
    b.checkpoints[0] = support::countersigned(&cp, &[("CN", key("CN")), ("VN", key("CN"))]);
    out.push(case(
        "countersignature-invalid",
        "Besides CN's valid countersignature, the exporter's checkpoint carries one said to be VN's, made with \
         CN's key.",
        &["checkpoint: countersignature by"],
        b,
    ));
    let line = base(Variant { setup: Some(&["PH", "CN", "VN", "MY"]), ..Variant::default() });
    let mut b = line.export();
    let cp = checkpoint_at(&b, 0);
    b.checkpoints[0] = support::countersigned(&cp, &[("CN", key("CN")), ("MY", key("MY"))]);
    out.push(case(
        "countersignature-by-member-not-in-roster",
        "Besides CN's, the exporter's checkpoint carries a countersignature by MY, whom the signed set-up names \
         but the roster does not.",
        &["checkpoint: countersignature by"],
        b,
    ));
    let mut b = exported();
    b.checkpoints[0].countersignatures.push(("VN".into(), "c0ffee".into()));
    out.push(case(
        "countersignature-not-64-bytes",
        "Besides CN's, the exporter's checkpoint carries a countersignature by VN that is 3 bytes long.",
        &["checkpoint: countersignature by"],
        b,
    ));
    let line = base(Variant { roster: Some(&["PH", "CN", "VN", "MY"]), ..Variant::default() });
    let mut b = line.export();
    let cp = checkpoint_at(&b, 0);
    b.checkpoints[0] = support::countersigned(&cp, &[("CN", key("CN")), ("MY", key("MY"))]);
    out.push(case(
        "countersigner-not-on-line",
        "MY, in the roster, validly countersigned the exporter's checkpoint, but nothing signed in the bundle \
         shows MY a member of the line.",
        &["countersigner is on the line"],
        b,
    ));
    let mut b = exported();
    b.checkpoints[0].countersignatures.clear();
    out.push(case(
        "countersignature-none",
        "The exporter's checkpoint carries no countersignature: no other member vouched for it.",
        &["the exporter's latest checkpoint is countersigned by another member"],
        b,
    ));
    let mut b = exported();
    let cp = checkpoint_at(&b, 0);
    b.checkpoints[0] = support::countersigned(&cp, &[("PH", key("PH"))]);
    out.push(case(
        "countersigned-only-by-exporter",
        "The exporter's checkpoint is countersigned by the exporter itself only.",
        &["the exporter's latest checkpoint is countersigned by another member"],
        b,
    ));

    // Equivocation and consistency.
    let line = genuine();
    let mut b = line.export();
    let leaves = line.leaves();
    let mut other = line.checkpoint_of("CN", 3);
    other.root = merkle::root(&[leaves[0], leaves[1], leaves[3]]);
    b.checkpoints.push(support::countersigned(&line.checkpoint("CN", 3), &[]));
    b.checkpoints.push(support::countersigned(&other.sign(&key("CN")).expect("a checkpoint signs"), &[]));
    out.push(case(
        "equivocation-by-peer",
        "The bundle holds two checkpoints signed by CN of 3 entries with different roots: CN showed two \
         histories.",
        &["checkpoints of (equivocation)"],
        b,
    ));
    let line = genuine();
    let mut b = line.export();
    let leaves = line.leaves();
    let mut other = line.checkpoint_of("PH", 5);
    other.root = merkle::root(&[leaves[0], leaves[1], leaves[3], leaves[2], leaves[4]]);
    b.checkpoints.insert(0, support::countersigned(&other.sign(&key("PH")).expect("a checkpoint signs"), &[]));
    out.push(case(
        "equivocation-by-exporter",
        "Besides its genuine checkpoint, the exporter signed one of the same size over another order of the \
         log: it is not the log's root, it equivocates with the genuine one, and no consistency proof joins them.",
        &["checkpoints of (equivocation)", "checkpoint: root of the exported log", "consistency of"],
        b,
    ));
    let mut b = genuine().export_at(&[3, 5]);
    b.consistency.clear();
    out.push(case(
        "consistency-proof-missing",
        "The exporter's checkpoints of 3 and of 5 entries, with no consistency proof between them.",
        &["consistency of"],
        b,
    ));
    let mut b = genuine().export_at(&[3, 5]);
    b.consistency[0].proof[0] = hex::encode(sha256("not a node of the tree"));
    out.push(case(
        "consistency-proof-wrong",
        "The consistency proof between the exporter's checkpoints of 3 and of 5 entries has a wrong hash.",
        &["consistency of"],
        b,
    ));
    let line = genuine();
    let mut b = line.export();
    b.checkpoints = vec![line.countersigned(&line.checkpoint("CN", 5), &["PH"])];
    out.push(case(
        "checkpoint-none-by-exporter",
        "The bundle holds only CN's checkpoint, countersigned by PH, and none by its exporter PH: nobody \
         vouches for the exporter's log.",
        &["the exporter's latest checkpoint covers the whole log"],
        b,
    ));
    let mut line = genuine();
    line.add("PH", PayloadV1::LinkTest { v: 1 });
    out.push(case(
        "uncovered-tail",
        "The log has a sixth entry, PH's link test, after the exporter's checkpoint of 5 entries: nobody \
         vouches for it, and it lies beyond the head of PH's chain that the checkpoint names.",
        &["the exporter's latest checkpoint covers the whole log", "checkpoint: head of chain at"],
        line.export_at(&[5]),
    ));

    // Chain heads.
    let mut b = exported();
    resign_checkpoint(&mut b, 0, |cp| cp.heads.as_mut().expect("heads").retain(|h| h.sender != "CN"));
    out.push(case(
        "head-missing-for-sender",
        "The exporter's checkpoint, signed again and countersigned, names no head of CN's chain, though the \
         bundle holds CN's envelopes.",
        &["checkpoint: head of chain (none named)"],
        b,
    ));
    let line = genuine();
    let mut b = line.export();
    let cn1 = line.envelopes[2].hash;
    resign_checkpoint(&mut b, 0, |cp| set_head(cp, "CN", 1, cn1.0));
    out.push(case(
        "head-behind-held-envelope",
        "The exporter's checkpoint, signed again and countersigned, names CN #1 as the head of CN's chain, \
         though the bundle holds CN #2.",
        &["checkpoint: head of chain at"],
        b,
    ));
    let mut b = exported();
    resign_checkpoint(&mut b, 0, |cp| set_head(cp, "CN", 2, sha256("an envelope never on the line")));
    out.push(case(
        "head-not-in-log",
        "The exporter's checkpoint, signed again and countersigned, names as the head of CN's chain a hash \
         that is no entry of the log.",
        &["checkpoint: head of chain at"],
        b,
    ));

    // Envelopes.
    // A message whose content the exporter's retention pruned: its envelope stays, and verifies.
    fn pruned(b: &mut Bundle) -> &mut BundleEnvelope {
        b.v = 4;
        let e = b.envelopes.iter_mut().find(|e| e.content.is_some()).expect("a message with content");
        e.pruned = true;
        e
    }
    let mut b = exported();
    pruned(&mut b).content = None;
    out.push(case(
        "envelope-content-pruned",
        "A version 4 bundle in which the exporter marks the first message's content pruned by its retention and \
         leaves it out; its signed envelope, place and inclusion are all there.",
        &[],
        b,
    ));
    let mut b = exported();
    pruned(&mut b);
    out.push(case(
        "envelope-pruned-with-content",
        "A version 4 bundle that marks an envelope's content pruned and yet carries it.",
        &["envelope: content pruned"],
        b,
    ));
    let mut b = exported();
    let garbled = BundleEnvelope { bytes: hex::encode(b"ADIE\x03"), content: None, ..b.envelopes[4].clone() };
    b.envelopes.push(garbled);
    out.push(case(
        "envelope-not-decodable",
        "Besides the genuine envelope at log index 4, the bundle lists for that index a few bytes that end early.",
        &["envelope at log index N (not decodable)"],
        b,
    ));
    let b = base(Variant {
        cn_message: Tweak { envelope_key: Some(keyed("VN", 0)), ..Tweak::default() },
        ..Variant::default()
    })
    .export();
    out.push(case(
        "envelope-signature-wrong",
        "CN's message (CN #2) is signed with VN's key; everything else about it holds.",
        &["envelope: signature"],
        b,
    ));
    let b =
        base(Variant { cn_message: Tweak { line: Some(LineId([7; 16])), ..Tweak::default() }, ..Variant::default() })
            .export();
    out.push(case(
        "envelope-of-another-line",
        "CN's message (CN #2), validly signed with its content, is an envelope of another line.",
        &["envelope: signature"],
        b,
    ));
    let mut line = genuine();
    let cn1 = line.envelopes[2].hash;
    let other_words = message("Keeping clear", "Our vessels keep 1 nautical mile away from yours.", None);
    line.add_with("CN", other_words, Tweak { seq: Some(2), prev: Some(cn1), ..Tweak::default() });
    out.push(case(
        "envelope-fork",
        "CN signed two different envelopes as CN #2, and the exporter's log holds both: a fork of CN's chain.",
        &["envelope: the only envelope at its place"],
        line.export(),
    ));
    let mut b = exported();
    let copy = BundleEnvelope { index: 5, inclusion: Vec::new(), ..b.envelopes[3].clone() };
    b.envelopes.push(copy);
    out.push(case(
        "envelope-place-wrong",
        "CN's message is listed a second time, at log index 5, past the end of the log.",
        &["envelope: place in the log"],
        b,
    ));
    let mut b = exported();
    let (two, three) = (b.envelopes[2].index, b.envelopes[3].index);
    b.envelopes[2].index = three;
    b.envelopes[3].index = two;
    out.push(case(
        "envelopes-swapped",
        "The envelopes at log indexes 2 and 3 are listed each at the other's index: neither is the log's \
         entry there, and neither inclusion proof holds.",
        &["envelope: place in the log", "envelope: inclusion in"],
        b,
    ));
    let mut b = exported();
    b.envelopes[2].inclusion[0] = hex::encode(sha256("not a node of the tree"));
    out.push(case(
        "inclusion-proof-wrong",
        "The inclusion proof of the envelope at log index 2 has a wrong hash.",
        &["envelope: inclusion in"],
        b,
    ));
    let mut b = exported();
    let other_words = message("Vessels in sight", "None of our vessels are near the shoal.", None);
    let altered = SignedContent::sign(&key("PH"), &LINE, "PH", 2, other_words.encode());
    b.envelopes[1].content = Some(hex::encode(altered.encode()));
    out.push(case(
        "signed-content-wrong",
        "The signed content of PH's message (PH #2) was replaced by other words PH signed for the same place: \
         its hash is not the one the envelope names.",
        &["envelope: signed content"],
        b,
    ));
    let mut b = form_line().export();
    let text = b.envelopes[1].form_text.clone().expect("the report's rendering");
    b.envelopes[1].form_text = Some(text.replacen("T08:00", "T09:00", 1));
    out.push(case(
        "form-text-not-the-rendering",
        "The readable text beside the call request is not the rendering of the signed report (a proposed time moved by an hour).",
        &["envelope: signed content"],
        b,
    ));
    let mut b = form_line().export();
    b.envelopes[1].content = None;
    out.push(case(
        "form-text-without-content",
        "The call request's readable text is given, but not the signed content it would be read from.",
        &["envelope: readable report text"],
        b,
    ));

    // The line's statements against its signed set-up.
    let mut b = exported();
    b.line.title = "Another line".into();
    out.push(case(
        "line-title-not-signed",
        "The bundle states a title of the line other than the one of its signed set-up.",
        &["line scope, title and home"],
        b,
    ));
    let mut b = exported();
    b.line.home = "CN".into();
    out.push(case(
        "line-home-not-signed",
        "The bundle states CN as the line's home member; the signed set-up is PH's, naming PH.",
        &["line scope, title and home"],
        b,
    ));
    let mut b = exported();
    b.line.scope = "Another forum".into();
    out.push(case(
        "line-scope-not-signed",
        "The bundle states a scope of the line other than the one of its signed set-up.",
        &["line scope, title and home"],
        b,
    ));

    // Completeness and chains.
    let mut b = exported();
    b.envelopes.remove(2);
    out.push(case(
        "log-entry-without-envelope",
        "The envelope of log entry 2 (CN's receipt, CN #1) is left out of the bundle, whose window is the whole \
         log.",
        &["envelopes of log entries"],
        b,
    ));
    let line = genuine();
    let ph2 = line.envelopes[1].hash;
    let b = base(Variant { cn_message: Tweak { prev: Some(ph2), ..Tweak::default() }, ..Variant::default() }).export();
    out.push(case(
        "chain-link-broken",
        "CN's message (CN #2) names PH's message as its previous envelope, not CN #1.",
        &["chain link of"],
        b,
    ));

    // Runs of chains the exporter cannot hold, and what explains them.
    out.extend(hole_cases());

    // Decisions and receipts.
    // A file attached to a message, in three chunks.
    let file = b"%PDF-1.7 a chart of the encounter, in three pieces".to_vec();
    let with_file = |pieces: [&[u8]; 3]| {
        let mut line = genuine();
        let mut m = message("The chart", "The chart of the encounter is attached.", None);
        if let PayloadV1::Message { attachments, .. } = &mut m {
            attachments.push(adi_wire::payload::AttachmentRef {
                sha256: hex::encode(sha2::Sha256::digest(&file)),
                name: "chart.pdf".into(),
                media_type: "application/pdf".into(),
                size: file.len() as u64,
                chunks: 3,
            });
        }
        let id = line.add("CN", m);
        for (i, piece) in pieces.iter().enumerate() {
            line.add("CN", chunk(id, &file, i as u64, piece));
        }
        line.export()
    };
    out.push(case(
        "valid-file",
        "CN's message names a file of 50 bytes in three chunks, which follow it; the chunks end to end are the \
         file its message signed.",
        &[],
        with_file([&file[..20], &file[20..40], &file[40..]]),
    ));
    let mut changed = file[20..40].to_vec();
    changed[0] ^= 1;
    out.push(case(
        "file-chunks-not-the-file",
        "CN's message names a file in three chunks, and CN signed a second chunk with one bit changed: every \
         signature holds, but the chunks do not make the file the message signed.",
        &["file: its chunks make the file"],
        with_file([&file[..20], &changed, &file[40..]]),
    ));

    let mut line = genuine();
    let text = "A joint patrol on 3 March.";
    let id = line.add("PH", decision(text, &["PH", "VN"], None));
    line.add("CN", answer(id, text, true));
    out.push(case(
        "answer-by-non-party",
        "CN concurs with a decision whose parties are PH and VN.",
        &["answer by"],
        line.export(),
    ));
    let b = base(Variant { cn_receipt: Some(|ph| receipt("decrypted", ph, "PH", 1)), ..Variant::default() }).export();
    out.push(case(
        "receipt-wrong-place",
        "CN's receipt names PH's message by its hash, but as PH #1 (it is PH #2).",
        &["receipt answers"],
        b,
    ));
    let b = base(Variant {
        cn_receipt: Some(|_| receipt("decrypted", EnvelopeHash(sha256("an envelope never on the line")), "PH", 2)),
        ..Variant::default()
    })
    .export();
    out.push(case(
        "receipt-not-in-log",
        "CN's receipt answers an envelope that is not in the log.",
        &["receipt answers"],
        b,
    ));

    // The anchor.
    let rewritten = || {
        base(Variant {
            set: 1,
            cn_words: Some("Our vessels keep 50 nautical miles away from yours."),
            ..Variant::default()
        })
        .export()
    };
    let (genuine_file, genuine_sha) = genuine_roster();
    out.push(Case {
        name: "anchor-other-roster",
        describes: "CN's words changed and the whole bundle signed again under fresh keys, with a roster of its \
                    own: its roster is not the anchored one.",
        breaks: &["anchor: the roster"],
        bundle: rewritten(),
        anchor: genuine_sha,
    });
    let mut b = rewritten();
    b.roster_file = Some(genuine_file.clone());
    b.roster_sha256 = Some(hex::encode(genuine_sha));
    out.push(Case {
        name: "anchor-rewritten-under-fresh-keys",
        describes: "CN's words changed and the whole bundle signed again under fresh keys, carrying the genuine \
                    roster file: none of its keys is the anchored roster's, and under the anchored keys every \
                    signature fails.",
        breaks: &["anchor: the bundle's key of", "checkpoint: signature", "envelope: signature"],
        bundle: b,
        anchor: genuine_sha,
    });
    let mut b = exported();
    b.roster_file = None;
    out.push(Case {
        name: "anchor-no-roster-file",
        describes: "The bundle carries no roster file to match the anchor against.",
        breaks: &["anchor: the roster"],
        bundle: b,
        anchor: genuine_sha,
    });
    let mut b = exported();
    b.roster_sha256 = Some(hex::encode(sha256("another roster")));
    out.push(case(
        "anchor-roster-named-otherwise",
        "The bundle carries the anchored roster's file but names another roster as the one it relies on.",
        &["anchor: roster"],
        b,
    ));
    let mut b = exported();
    b.roster.insert("MY".into(), public_hex("MY", 0));
    out.push(case(
        "anchor-key-not-in-roster",
        "The bundle's list of keys names MY, whom the anchored roster does not.",
        &["anchor: the bundle's key of"],
        b,
    ));
    out
}

/// The exporter's checkpoint names `sender`'s head as `seq`, `hash`.
fn set_head(cp: &mut Checkpoint, sender: &str, seq: u64, hash: [u8; 32]) {
    let heads = cp.heads.as_mut().expect("heads");
    heads.retain(|h| h.sender != sender);
    heads.push(Head { sender: sender.into(), seq, hash });
    heads.sort();
}

/// A checkpoint's signature with `key`, whoever it names as its signer.
fn checkpoint_signature(cp: &Checkpoint, key: &SigningKey) -> [u8; 64] {
    use ed25519_dalek::Signer;
    key.sign(&checkpoint_message(cp)).to_bytes()
}

// ---------------------------------------------------------------------------------------------
// The index and the files.

/// A decision's state, as the index gives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct DecisionState {
    id: String,
    state: String,
}

/// One entry of `verdicts.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Verdict {
    case: String,
    file: String,
    describes: String,
    anchor_sha256: String,
    verdict: String,
    failed_checks: Vec<String>,
    decisions: Vec<DecisionState>,
}

/// A case with the report of its verification.
struct Checked {
    case: Case,
    report: Report,
}

fn checked() -> &'static [Checked] {
    static CHECKED: OnceLock<Vec<Checked>> = OnceLock::new();
    CHECKED.get_or_init(|| {
        cases()
            .into_iter()
            .map(|case| {
                let report = verify_anchored(&case.bundle, &Anchor::Sha256(case.anchor));
                Checked { case, report }
            })
            .collect()
    })
}

fn verdict(c: &Checked) -> Verdict {
    Verdict {
        case: c.case.name.into(),
        file: format!("{}.json", c.case.name),
        describes: c.case.describes.into(),
        anchor_sha256: hex::encode(c.case.anchor),
        verdict: if c.report.first_failure().is_none() { "verified" } else { "failed" }.into(),
        failed_checks: failed(&c.report),
        decisions: c
            .report
            .decisions
            .iter()
            .map(|d| DecisionState { id: d.id.clone(), state: d.state.into() })
            .collect(),
    }
}

/// Pretty JSON with a final newline.
fn pretty<T: Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).expect("the set serialises") + "\n"
}

/// Every file of the set, by name: each case's bundle and the index.
fn generated() -> BTreeMap<String, String> {
    let mut files: BTreeMap<String, String> =
        checked().iter().map(|c| (format!("{}.json", c.case.name), pretty(&c.case.bundle))).collect();
    let verdicts: Vec<Verdict> = checked().iter().map(verdict).collect();
    files.insert("verdicts.json".into(), pretty(&verdicts));
    files
}

fn set_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/conformance")
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn the_committed_set_is_what_the_generator_makes() {
    let dir = set_dir();
    let files = generated();
    let committed: BTreeSet<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .map(|e| e.expect("a directory entry").file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default();
    let differ: Vec<&String> = files
        .iter()
        .filter(|(name, text)| std::fs::read_to_string(dir.join(name)).ok().as_ref() != Some(text))
        .map(|(n, _)| n)
        .collect();
    let stale: Vec<&String> = committed.iter().filter(|name| !files.contains_key(*name)).collect();
    if std::env::var(WRITE).is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for name in &differ {
            std::fs::write(dir.join(name), &files[*name]).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        for name in &stale {
            std::fs::remove_file(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        eprintln!("{}: wrote {differ:?}, removed {stale:?}", dir.display());
        return;
    }
    assert!(
        differ.is_empty() && stale.is_empty(),
        "docs/conformance is not what the generator makes: differing or missing {differ:?}, no longer made \
         {stale:?}. If a verification rule changed on purpose, regenerate with {WRITE}=1 cargo test -p adi-record \
         --test conformance and review the changed verdicts."
    );
}

#[test]
fn every_case_has_its_expected_verdict_and_fails_on_what_it_breaks() {
    let mut names = BTreeSet::new();
    for c in checked() {
        assert!(names.insert(c.case.name), "two cases are named {}", c.case.name);
        let failures = failed(&c.report);
        if c.case.breaks.is_empty() {
            assert!(failures.is_empty(), "{} should verify: {:?}", c.case.name, c.report.first_failure());
            continue;
        }
        let kinds: BTreeSet<&str> = failures.iter().flat_map(|i| kinds_of(i)).collect();
        for want in c.case.breaks {
            assert!(
                kinds.contains(want),
                "{} should fail a check of kind '{want}'; it fails {failures:?}",
                c.case.name
            );
        }
    }
    let valid = checked().iter().find(|c| c.case.name == "valid-line").expect("the valid line");
    let states: BTreeSet<&str> = valid.report.decisions.iter().map(|d| d.state).collect();
    assert_eq!(states, BTreeSet::from(["declined", "final", "open", "superseded"]));
    assert!(valid.case.bundle.envelopes.iter().any(|e| e.form_text.is_some()), "the valid line carries a report");
}

#[test]
fn every_kind_of_check_verify_can_fail_is_failed_by_a_case() {
    let mut covered: BTreeSet<&str> = BTreeSet::new();
    for c in checked() {
        for item in failed(&c.report) {
            let kinds = kinds_of(&item);
            assert!(
                kinds.len() == 1,
                "{}: the failed item '{item}' is of {} kinds {kinds:?}: a new check? Name its kind in KINDS",
                c.case.name,
                kinds.len()
            );
            covered.extend(kinds);
        }
    }
    let all: BTreeSet<&str> = KINDS.iter().map(|k| k.name).collect();
    let uncovered: Vec<&&str> = all.difference(&covered).collect();
    assert!(uncovered.is_empty(), "no case fails a check of kinds {uncovered:?}");

    // And KINDS names every check `verify` makes that can fail: the source's calls of
    // `r.check(` are those kinds and the checks that always hold.
    let source_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/bundle.rs");
    let source = std::fs::read_to_string(&source_path).unwrap_or_else(|e| panic!("{}: {e}", source_path.display()));
    let calls = source
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .map(|l| l.matches("r.check(").count())
        .sum::<usize>();
    assert_eq!(
        calls,
        KINDS.len() + ALWAYS_HOLD.len(),
        "crates/record/src/bundle.rs makes {calls} calls of r.check(; the conformance set knows {} kinds that can \
         fail and {} checks that always hold: name a new check's kind in KINDS (or ALWAYS_HOLD) and add a case \
         that fails it",
        KINDS.len(),
        ALWAYS_HOLD.len()
    );
}

#[test]
fn the_small_order_signatures_of_the_set_pass_only_plain_verification() {
    // The countersignature under the identity point as a key.
    let c = checked().iter().find(|c| c.case.name == "countersignature-under-weak-key").expect("the case");
    let weak = VerifyingKey::from_bytes(&IDENTITY_POINT).expect("the identity is a point");
    assert!(weak.is_weak());
    let (member, countersignature) = c.case.bundle.checkpoints[0].countersignatures.last().expect("VN's");
    assert_eq!(member, "VN");
    let signature = Signature::from_slice(&hex::decode(countersignature).expect("hex")).expect("64 bytes");
    for message in [&b"anything at all"[..], &hex::decode(&c.case.bundle.checkpoints[0].signed).expect("hex")] {
        assert!(weak.verify(message, &signature).is_ok(), "plain verification accepts it for any message");
        assert!(weak.verify_strict(message, &signature).is_err(), "strict verification refuses it");
    }

    // The exporter's checkpoint signed under PH's genuine key with the identity point as R.
    let c = checked().iter().find(|c| c.case.name == "checkpoint-signature-small-order-r").expect("the case");
    let cp = checkpoint_at(&c.case.bundle, 0);
    let message = checkpoint_message(&cp.checkpoint);
    let key = key("PH").verifying_key();
    let signature = Signature::from_bytes(&cp.signature);
    assert!(key.verify(&message, &signature).is_ok(), "plain RFC 8032 verification accepts it");
    assert!(key.verify_strict(&message, &signature).is_err(), "strict verification refuses it");
    assert!(cp.verify(&key).is_err());
    assert_eq!(failed(&c.report), ["checkpoint 0 (PH at size 5): signature"]);
}

/// Lines whose exporter lacks runs of other members' chains: valid where signed data explains each
/// run (`docs/RECORD.md`, "Complete chains"), broken where nothing does.
fn hole_cases() -> Vec<Case> {
    let say = |subject: &str| message(subject, "As agreed.", None);
    let mut out = Vec::new();

    // VN brought onto a running line: it holds nothing before PH's set-up that brought it in.
    let mut line = new_line(0, &CODES);
    line.exporter = "VN";
    line.setup_naming(&["CN", "PH"]);
    line.envelopes.clear();
    line.unheld("CN", say("Before VN joined"));
    line.unheld("PH", say("Also before VN joined"));
    line.setup_naming(&MEMBERS);
    line.add("CN", say("After VN joined"));
    line.add("VN", say("VN's first"));
    out.push(case(
        "valid-joined-a-running-line",
        "VN, brought onto a running line by PH's set-up #3, exports it: PH #1 to #2 and CN #1 are not held, \
         each explained by that set-up.",
        &[],
        line.export(),
    ));

    // CN on the line while PH adds MY: PH's set-up of MY went to MY alone.
    let mut line = new_line(0, &CODES);
    line.exporter = "CN";
    line.setup();
    line.add("CN", say("Before MY joined"));
    line.commit(&Membership::Additions(vec!["MY".into()]));
    line.unheld("PH", say("The set-up of MY, sent to MY alone"));
    line.add("PH", say("Welcome, MY"));
    line.add("MY", say("MY's first"));
    out.push(case(
        "valid-another-members-set-up",
        "CN exports a line to which PH added MY: PH #3, MY's set-up, is not held, explained by PH's commit #2 \
         stating the addition.",
        &[],
        line.export(),
    ));
    let mut longer = line;
    longer.envelopes.truncate(3);
    longer.heads.insert("PH".into(), (2, longer.envelopes[2].hash));
    longer.unheld("PH", say("The set-up of MY, sent to MY alone"));
    longer.unheld("PH", say("A message CN's export leaves out"));
    longer.add("PH", say("Welcome, MY"));
    out.push(case(
        "chain-hole-beyond-an-addition",
        "CN's export lacks PH #3 and #4 after PH's commit #2 adding one member: only #3, the set-up, is explained.",
        &["chain of: complete from #1"],
        longer.export(),
    ));

    // VN taken off and brought back: what it sent after its place was refused.
    let mut line = new_line(0, &CODES);
    line.exporter = "CN";
    line.setup();
    let vn1 = line.add("VN", say("VN #1"));
    line.add("VN", say("VN #2, taken by CN before the removal reached it"));
    line.commit(&Membership::Removals(vec![Place { member: "VN".into(), seq: 1, hash: vn1 }]));
    line.unheld("VN", say("VN #3, refused: after its place"));
    line.commit(&Membership::Additions(vec!["VN".into()]));
    line.unheld("PH", say("The set-up bringing VN back, sent to VN alone"));
    line.add("VN", say("VN back"));
    line.add("PH", say("Welcome back, VN"));
    out.push(case(
        "valid-refused-after-a-removal",
        "CN exports a line from which PH took VN off at VN #1 and brought it back: VN #3 is not held (refused, \
         after the place; VN #2 came before the removal), nor PH #4 (VN's set-up).",
        &[],
        line.export(),
    ));
    let mut line = new_line(0, &CODES);
    line.exporter = "CN";
    line.setup();
    line.add("VN", say("VN #1"));
    line.unheld("VN", say("VN #2, which CN's export leaves out"));
    let vn3 = line.add("VN", say("VN #3"));
    line.commit(&Membership::Removals(vec![Place { member: "VN".into(), seq: 3, hash: vn3 }]));
    out.push(case(
        "chain-hole-before-a-removals-place",
        "CN's export lacks VN #2, before the place #3 where VN's removal fixed it to stop: no removal explains it.",
        &["chain of: complete from #1"],
        line.export(),
    ));
    let mut line = new_line(0, &MEMBERS);
    line.setup();
    line.unheld("CN", say("CN #1, which PH's export leaves out"));
    line.add("CN", say("CN #2"));
    out.push(case(
        "chain-hole-unexplained",
        "PH's export lacks CN #1, and nothing signed says why.",
        &["chain of: complete from #1"],
        line.export(),
    ));
    out
}
