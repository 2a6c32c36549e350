//! Targets for the core's `Hotline::receive`: raw bytes from a peer, and fuzzed bytes placed
//! inside an envelope that a roster member signed correctly, so that they get past the signature
//! check to the line set-up and its Welcome, to MLS, and (encrypted by the member itself) to the
//! signed content and payload checks after decryption.
//!
//! The world is the core fixtures' (`adi_core::fixtures`): PH is the home member of a direct line
//! with CN. It is built once per process; every execution starts CN (and PH, where it encrypts)
//! from the saved state, so an input does the same whatever ran before it.

use std::sync::OnceLock;

use adi_core::fixtures::{self, key_packages_of};
use adi_core::{Content, Draft, Hotline, Line, MemberCode, NewLine, OwnHead, Restored};
use adi_wire::content::SignedContent;
use adi_wire::envelope::{EnvelopeBody, CONTENT_MLS, CONTENT_MLS_SETUP, PRIORITY_CONTROL, PRIORITY_ROUTINE};
use adi_wire::payload::PayloadV1;
use adi_wire::{Envelope, EnvelopeHash, LineId};

use crate::formats::member_key;

/// The direct line PH set up with CN.
pub(crate) const LINE: LineId = LineId([3; 16]);
/// A conference of PH, CN and VN that CN has not joined yet.
pub(crate) const NEW_LINE: LineId = LineId([5; 16]);
/// In a [`line_setup`] input, stands for the hex of the Welcome in PH's set-up of
/// [`NEW_LINE`], which CN's saved state can open. MLS draws its own randomness, so a Welcome
/// written to a file opens only in the process that made it; this one is made in each process.
pub const LIVE_WELCOME: &[u8] = b"@welcome";
/// The fixture world's clock: every envelope is made and received around this time.
pub(crate) const NOW_MS: u64 = 1_796_000_000_000;

/// What the targets start from, and the real traffic the seeds are made of.
pub(crate) struct World {
    /// CN after joining [`LINE`], holding a KeyPackage that [`World::setup_new`] uses.
    cn_state: Vec<u8>,
    cn_lines: Vec<Line>,
    cn_heads: Vec<OwnHead>,
    /// PH after setting up both lines and sending [`World::message`].
    ph_state: Vec<u8>,
    ph_lines: Vec<Line>,
    /// PH's set-up of [`LINE`] (sequence number 1).
    pub(crate) setup: Vec<u8>,
    /// PH's first message on [`LINE`] (sequence number 2), which CN's saved state can read.
    pub(crate) message: Vec<u8>,
    /// PH's set-up of [`NEW_LINE`], with a Welcome for CN's saved KeyPackage.
    pub(crate) setup_new: Vec<u8>,
    /// That Welcome, in hex.
    welcome_hex: String,
    /// More of PH's envelopes on [`LINE`]: a FLASH, an IMMEDIATE and a PRIORITY message, then a
    /// key update.
    pub(crate) more: Vec<Vec<u8>>,
    /// A KeyPackage of CN's that no line used.
    pub(crate) key_package: Vec<u8>,
}

fn code(s: &str) -> MemberCode {
    MemberCode::parse(s).expect("a fixture member code")
}

fn config(me: &str) -> adi_core::HotlineConfig {
    let seed = fixtures::WORLD.iter().find(|m| m.0 == me).map(|m| m.2).expect("a fixture member");
    fixtures::config(me, seed)
}

fn draft(precedence: &str, subject: &str) -> Draft {
    Draft {
        precedence: precedence.to_string(),
        subject: subject.to_string(),
        body: format!("Body of {subject}."),
        ..Draft::default()
    }
}

impl World {
    fn build() -> World {
        let mut ph = fixtures::hotline("PH");
        let mut cn = fixtures::hotline("CN");
        let mut vn = fixtures::hotline("VN");
        let direct = NewLine { members: vec!["PH".into(), "CN".into()], scope: "ADMM-Plus".into(), title: None };
        let kps = key_packages_of(&mut [&mut cn]);
        let setup = ph.create_line(NOW_MS, LINE, direct, kps).expect("PH sets up the direct line");
        let setup = setup.envelope.bytes().to_vec();
        cn.receive(NOW_MS + 1, &code("PH"), &setup).expect("CN joins the direct line");
        let kps = key_packages_of(&mut [&mut cn, &mut vn]);
        let cn_state = cn.mls_snapshot().expect("CN's MLS state");
        let cn_lines: Vec<Line> = cn.lines().cloned().collect();
        let cn_heads =
            vec![OwnHead { line: LINE, sender: code("PH"), seq: 1, hash: EnvelopeHash::of(&setup), epoch: 0 }];
        let key_package = cn.key_packages(1).expect("a KeyPackage").remove(0);

        let message = ph.send(NOW_MS + 2, LINE, draft("ROUTINE", "First"), None).expect("PH sends");
        let message = message.envelope.bytes().to_vec();
        let conference = NewLine {
            members: vec!["PH".into(), "CN".into(), "VN".into()],
            scope: "ADMM-Plus".into(),
            title: Some("Conference".into()),
        };
        let setup_new = ph.create_line(NOW_MS + 3, NEW_LINE, conference, kps).expect("PH sets up the conference");
        let setup_new = setup_new.envelope.bytes().to_vec();
        let welcome_hex = match Envelope::decode(&setup_new, usize::MAX, usize::MAX).map(|e| e.body().payload.clone()) {
            Ok(payload) => match PayloadV1::decode(&payload) {
                Ok(PayloadV1::LineSetup { welcome: Some(hex), .. }) => hex,
                _ => panic!("PH's set-up of the conference carries a Welcome"),
            },
            Err(e) => panic!("PH's set-up of the conference decodes: {e}"),
        };
        let ph_state = ph.mls_snapshot().expect("PH's MLS state");
        // Only the direct line is restored: PH encrypts nowhere else.
        let ph_lines: Vec<Line> = ph.line(&LINE).cloned().into_iter().collect();

        // Traffic made after PH's state was saved, so that the saved state stays at its place.
        let mut more = Vec::new();
        for (n, precedence) in ["FLASH", "IMMEDIATE", "PRIORITY"].iter().enumerate() {
            let subject = format!("Message {}", n + 2);
            let record = ph.send(NOW_MS + 10 + n as u64, LINE, draft(precedence, &subject), None).expect("PH sends");
            more.push(record.envelope.bytes().to_vec());
        }
        let update = ph.update_keys(NOW_MS + 20, LINE).expect("PH updates its keys");
        more.push(update.envelope.bytes().to_vec());
        World {
            cn_state,
            cn_lines,
            cn_heads,
            ph_state,
            ph_lines,
            setup,
            message,
            setup_new,
            welcome_hex,
            more,
            key_package,
        }
    }

    /// CN as saved: on [`LINE`], with a KeyPackage for [`NEW_LINE`].
    fn cn(&self) -> Hotline {
        let restored = Restored {
            lines: self.cn_lines.clone(),
            heads: self.cn_heads.clone(),
            pending: Vec::new(),
            mls_state: adi_mls::decode_state(&self.cn_state).expect("a whole MLS state").into_iter().collect(),
            known: Vec::new(),
            latest_ms: 0,
            removals: Vec::new(),
            received: Vec::new(),
        };
        Hotline::new(config("CN"), restored, NOW_MS).expect("CN's saved state restores")
    }

    /// PH as saved, able to encrypt on [`LINE`] for CN's saved state.
    fn ph(&self) -> Hotline {
        let restored = Restored {
            lines: self.ph_lines.clone(),
            heads: Vec::new(),
            pending: Vec::new(),
            mls_state: adi_mls::decode_state(&self.ph_state).expect("a whole MLS state").into_iter().collect(),
            known: Vec::new(),
            latest_ms: 0,
            removals: Vec::new(),
            received: Vec::new(),
        };
        Hotline::new(config("PH"), restored, NOW_MS).expect("PH's saved state restores")
    }

    /// The body of [`World::message`], to carry other bytes in its place.
    pub(crate) fn message_body(&self) -> EnvelopeBody {
        Envelope::decode(&self.message, usize::MAX, usize::MAX).expect("PH's message decodes").body().clone()
    }
}

/// The world, built on first use.
pub(crate) fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(World::build)
}

/// Each occurrence of `from` in `data` replaced by `to`.
fn replace_all(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut rest = data;
    while let Some(at) = rest.windows(from.len()).position(|w| w == from) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(to);
        rest = &rest[at + from.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// Signs a body as PH.
fn signed_by_ph(body: EnvelopeBody) -> Vec<u8> {
    let key = member_key("PH").expect("PH is a fixture member");
    body.sign(&key).bytes().to_vec()
}

/// Raw bytes from PH's connection into CN's core, which holds the line PH set up.
///
/// Asserts: an accepted envelope is exactly the bytes that arrived, from PH; and after any input
/// that PH did not sign, the line still takes PH's next real message.
pub fn receive(data: &[u8]) {
    let w = world();
    let ph = code("PH");
    let mut cn = w.cn();
    if let Ok(records) = cn.receive(NOW_MS + 100, &ph, data) {
        let first = records.first().expect("an accepted envelope gives a record");
        assert_eq!(first.envelope.bytes(), data, "an accepted envelope is not the bytes that arrived");
        assert_eq!(first.sender, ph, "an envelope over PH's connection was taken as another's");
    }
    // PH itself may spend its own message keys (an envelope it signed around the same MLS
    // message, say); nobody else can.
    if !signed_by(data, "PH") {
        if let Err(refusal) = cn.receive(NOW_MS + 101, &ph, &w.message) {
            panic!("after this input the line refuses PH's next message: {}", refusal.reason);
        }
    }
}

/// Whether bytes are an envelope that `member` signed.
fn signed_by(bytes: &[u8], member: &str) -> bool {
    let key = member_key(member).expect("a fixture member").verifying_key();
    Envelope::decode(bytes, usize::MAX, usize::MAX).is_ok_and(|e| e.verify(&key).is_ok())
}

/// The bytes as the payload of a line set-up (content type 2) that PH signed, for the
/// conference [`NEW_LINE`], received by CN: the JSON, the line policy, then the Welcome. Each
/// [`LIVE_WELCOME`] in the bytes is first replaced by the hex of a Welcome that CN's saved state
/// can open, made in this process, so that an input kept in a file can reach a successful join.
///
/// Asserts: an accepted set-up leaves CN holding the line, with PH as its home and CN on it, and
/// the record names the line held.
pub fn line_setup(data: &[u8]) {
    let w = world();
    let payload = replace_all(data, LIVE_WELCOME, w.welcome_hex.as_bytes());
    let body = EnvelopeBody {
        line: NEW_LINE,
        sender: "PH".into(),
        seq: 1,
        prev: EnvelopeHash::NONE,
        epoch: 0,
        created_ms: NOW_MS + 3,
        priority: PRIORITY_CONTROL,
        content_type: CONTENT_MLS_SETUP,
        content_hash: [0; 32],
        payload,
    };
    let bytes = signed_by_ph(body);
    let mut cn = w.cn();
    let Ok(records) = cn.receive(NOW_MS + 100, &code("PH"), &bytes) else { return };
    let first = records.first().expect("an accepted set-up gives a record");
    assert_eq!(first.content, Content::LineSetup, "a set-up was taken as something else");
    let line = cn.line(&NEW_LINE).expect("an accepted set-up leaves the line held");
    assert_eq!(line.home, code("PH"), "the line's home is not its sender");
    assert!(line.has_member(&code("CN")), "CN took a set-up of a line it is not on");
    assert_eq!(&first.line, line, "the record names another line than the one held");
}

/// The bytes as the MLS message of an application envelope that PH signed on [`LINE`] (its first
/// message's envelope with the payload replaced), received by CN.
///
/// Asserts: an accepted envelope is exactly the one PH signed, and is not a line set-up.
pub fn mls_message(data: &[u8]) {
    let w = world();
    let body = EnvelopeBody { payload: data.to_vec(), ..w.message_body() };
    let bytes = signed_by_ph(body);
    let mut cn = w.cn();
    let Ok(records) = cn.receive(NOW_MS + 100, &code("PH"), &bytes) else { return };
    let first = records.first().expect("an accepted envelope gives a record");
    assert_eq!(first.envelope.bytes(), bytes.as_slice(), "an accepted envelope is not the one PH signed");
    assert_ne!(first.content, Content::LineSetup, "an MLS message was taken as a line set-up");
}

/// The bytes as content that PH signs for its second place on [`LINE`], encrypts for the line's
/// group and sends in a correctly signed envelope to CN. The first byte is the envelope's queue
/// priority (modulo 5); the rest is the content, normally a `PayloadV1`.
///
/// Asserts: content CN accepts is a payload and is kept exactly as signed; content it refuses
/// raises no `undecryptable` alarm and is not held, since it did decrypt.
pub fn line_content(data: &[u8]) {
    let w = world();
    let (priority, content) = match data.split_first() {
        Some((p, rest)) => (p % 5, rest),
        None => (PRIORITY_ROUTINE, data),
    };
    let key = member_key("PH").expect("PH is a fixture member");
    let template = w.message_body();
    let signed = SignedContent::sign(&key, &LINE, "PH", template.seq, content.to_vec());
    let mut ph = w.ph();
    let (epoch, ciphertext) = ph.encrypt_unchecked(LINE, &signed.encode()).expect("PH encrypts on its line");
    let body = EnvelopeBody {
        epoch,
        priority,
        content_hash: signed.hash(&LINE, "PH", template.seq),
        payload: ciphertext,
        content_type: CONTENT_MLS,
        ..template
    };
    let bytes = signed_by_ph(body);
    let mut cn = w.cn();
    match cn.receive(NOW_MS + 100, &code("PH"), &bytes) {
        Ok(records) => {
            let first = records.first().expect("accepted content gives a record");
            assert!(PayloadV1::decode(content).is_ok(), "content that is not a payload was accepted");
            assert_eq!(
                first.signed_content.as_deref(),
                Some(signed.encode().as_slice()),
                "accepted content is not kept as it was signed"
            );
            assert!(
                !matches!(first.content, Content::LineSetup | Content::Handshake(_)),
                "an application message was taken as a set-up or handshake"
            );
        }
        Err(refusal) => {
            assert!(refusal.alarm.is_none(), "content that decrypted raised an alarm: {}", refusal.reason);
            assert!(refusal.hold.is_none(), "content of the current epoch was held: {}", refusal.reason);
        }
    }
}
