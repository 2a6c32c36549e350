//! Targets for the wire and record formats: each decoder alone, with the fixture world's roster
//! keys where a signature is checked.

use std::collections::HashSet;

use adi_core::hotline::message_from_payload;
use adi_core::roster::{member_from_entry, member_to_entry};
use adi_core::{fixtures, Limits, Roster};
use adi_node::fed::checkpoints::{CheckpointAnswer, CheckpointOffer};
use adi_record::bundle::Bundle;
use adi_record::SignedCheckpoint;
use adi_wire::batch::{decode_batch, encode_batch, BatchReply};
use adi_wire::content::{ContentError, SignedContent};
use adi_wire::files::{MemberCard, RosterFile};
use adi_wire::payload::PayloadV1;
use adi_wire::{Envelope, EnvelopeHash, LineId};
use ed25519_dalek::SigningKey;

/// The signing key of a member of the fixture world (`adi_core::fixtures::WORLD`).
pub(crate) fn member_key(code: &str) -> Option<SigningKey> {
    fixtures::WORLD.iter().find(|m| m.0 == code).map(|m| fixtures::key(m.2))
}

/// A key no member holds, for signatures whose signer is not in the fixture world.
fn stranger_key() -> SigningKey {
    SigningKey::from_bytes(&[0xEE; 32])
}

/// The fixture roster's keys as MLS looks them up.
fn roster_keys(code: &str) -> Option<[u8; 32]> {
    member_key(code).map(|k| k.verifying_key().to_bytes())
}

/// An envelope as the federation listener and the core decode it, then its signature.
///
/// Asserts: the envelope hash is over the exact input; the body has a single encoding (signing
/// the decoded body again reproduces the input's body bytes, but for the version byte of an
/// envelope of the version before, which is signed as the current version; and that envelope
/// decodes to the same body); an envelope that verifies is exactly the input.
pub fn envelope(data: &[u8]) {
    let limits = Limits::default();
    let Ok(decoded) = Envelope::decode(data, limits.envelope_bytes_max, limits.payload_bytes_max) else { return };
    assert_eq!(decoded.hash(), EnvelopeHash::of(data), "the envelope hash is not over the exact bytes");
    let body = decoded.body().clone();
    let key = member_key(&body.sender).unwrap_or_else(stranger_key);
    let resigned = body.clone().sign(&key);
    // The decoder took a 64-byte signature after the body; the version is the byte after the
    // 4-byte magic.
    let body_len = data.len() - 64;
    assert_eq!(resigned.bytes().len(), data.len(), "the body encodes to another length");
    let mut expected = data[..body_len].to_vec();
    expected[4] = adi_wire::envelope::VERSION;
    assert_eq!(&resigned.bytes()[..body_len], &expected[..], "the body encodes to other bytes");
    let again = Envelope::decode(resigned.bytes(), limits.envelope_bytes_max, limits.payload_bytes_max)
        .expect("an envelope signed from a decoded body decodes");
    assert_eq!(again.body(), &body, "the body changed on its way through encoding");
    if let Ok(verified) = decoded.verify(&key.verifying_key()) {
        assert_eq!(verified.bytes(), data, "a verified envelope is not the bytes that arrived");
        assert_eq!(verified.body(), &body);
    }
}

/// A federation batch body, as the listener splits it; each envelope then goes through
/// [`envelope`].
///
/// Asserts: the batch has a single encoding (encoding the split envelopes gives the input back)
/// and holds no more envelopes than the limit.
pub fn batch(data: &[u8]) {
    let limits = Limits::default();
    let Ok(envelopes) = decode_batch(data, limits.batch_len_max, limits.envelope_bytes_max) else { return };
    assert!(envelopes.len() <= limits.batch_len_max, "a batch over the length limit was decoded");
    assert_eq!(encode_batch(envelopes.iter().copied()), data, "the batch encodes to other bytes");
    for e in envelopes {
        assert!(e.len() <= limits.envelope_bytes_max, "an envelope over the size limit was split out");
        envelope(e);
    }
}

/// The JSON a node reads from peers: a batch reply (read by a link), a checkpoint offer (read by
/// the listener) and a checkpoint answer (read after an offer), with the hex and checkpoint
/// decoding applied to their fields before anything in them is trusted.
///
/// Asserts: whatever parses serialises and parses back to the same value.
pub fn peer_json(data: &[u8]) {
    if let Ok(reply) = serde_json::from_slice::<BatchReply>(data) {
        let text = serde_json::to_vec(&reply).expect("a batch reply serialises");
        let again: BatchReply = serde_json::from_slice(&text).expect("a serialised batch reply parses");
        assert_eq!(again, reply, "a batch reply changed on its way through JSON");
    }
    if let Ok(offer) = serde_json::from_slice::<CheckpointOffer>(data) {
        let value = serde_json::to_value(&offer).expect("an offer serialises");
        let again: CheckpointOffer = serde_json::from_value(value.clone()).expect("a serialised offer parses");
        assert_eq!(serde_json::to_value(&again).ok(), Some(value), "an offer changed on its way through JSON");
        for hex in std::iter::once(&offer.checkpoint).chain(&offer.others) {
            if let Ok(bytes) = hex::decode(hex) {
                checkpoint(&bytes);
            }
        }
        let _ = offer.consistency.iter().map(|h| EnvelopeHash::from_hex(h)).collect::<Option<Vec<_>>>();
    }
    if let Ok(answer) = serde_json::from_slice::<CheckpointAnswer>(data) {
        let value = serde_json::to_value(&answer).expect("an answer serialises");
        let again: CheckpointAnswer = serde_json::from_value(value.clone()).expect("a serialised answer parses");
        assert_eq!(serde_json::to_value(&again).ok(), Some(value), "an answer changed on its way through JSON");
        for hex in &answer.checkpoints {
            if let Ok(bytes) = hex::decode(hex) {
                checkpoint(&bytes);
            }
        }
        let _ = answer.countersignature.as_deref().and_then(|s| hex::decode(s).ok()).map(<[u8; 64]>::try_from);
    }
}

/// A payload (`PayloadV1`), as the core decodes it after a set-up's signature or a message's
/// decryption, and the message the core reads from it under the default limits.
///
/// Asserts: a decoded payload encodes to JSON that decodes to the same payload.
pub fn payload(data: &[u8]) {
    let Ok(decoded) = PayloadV1::decode(data) else { return };
    let again = PayloadV1::decode(&decoded.encode()).expect("an encoded payload decodes");
    assert_eq!(again, decoded, "a payload changed on its way through JSON");
    if let Ok(message) = message_from_payload(decoded) {
        if message.check(&Limits::default()).is_ok() {
            // A form that passed renders, and checks to itself.
            if let Some(value) = &message.form {
                let form = adi_forms::check(value).expect("a form that passed checks again");
                assert_eq!(&form.to_value(), value, "a checked form changed when checked again");
                let _ = adi_forms::render(&form);
                let _ = adi_forms::approaches(&form);
            }
        }
    }
}

/// Signed content, as the core reads it from a decrypted MLS application message; the content
/// inside then goes through [`payload`].
///
/// Asserts: signed content has a single encoding, and the hash it computes for a place in a line
/// is never refused as a mismatch at that place.
pub fn signed_content(data: &[u8]) {
    let Ok(decoded) = SignedContent::decode(data) else { return };
    assert_eq!(decoded.encode(), data, "signed content encodes to other bytes");
    let line = LineId([3; 16]);
    let key = member_key("PH").unwrap_or_else(stranger_key);
    let hash = decoded.hash(&line, "PH", 2);
    let checked = decoded.verify(&key.verifying_key(), &line, "PH", 2, &hash);
    assert_ne!(checked, Err(ContentError::HashMismatch), "the content's own hash was refused");
    payload(&decoded.content);
}

/// A signed checkpoint, as a peer offers or passes it on, its signature under the signer's roster
/// key, and countersignatures: the input's last 64 bytes are also read as a countersignature of
/// the checkpoint before them, as a countersigning peer answers.
///
/// Asserts: a decoded checkpoint encodes to the input; a checkpoint never equivocates with
/// itself; a countersignature made over it verifies under the countersigner's key.
pub fn checkpoint(data: &[u8]) {
    if let Ok(cp) = SignedCheckpoint::from_bytes(data) {
        assert_eq!(cp.to_bytes().ok().as_deref(), Some(data), "a checkpoint encodes to other bytes");
        assert!(!cp.equivocates_with(&cp), "a checkpoint equivocates with itself");
        if let Some(key) = member_key(&cp.checkpoint.signer) {
            let _ = cp.verify(&key.verifying_key());
        }
        let cn = member_key("CN").unwrap_or_else(stranger_key);
        let countersignature = cp.countersign(&cn).expect("a decoded checkpoint is countersigned");
        assert!(
            cp.verify_countersignature("CN", &cn.verifying_key(), &countersignature).is_ok(),
            "a countersignature does not verify under its countersigner's key"
        );
    }
    if data.len() > 64 {
        let (signed, countersignature) = data.split_at(data.len() - 64);
        if let (Ok(cp), Ok(sig)) = (SignedCheckpoint::from_bytes(signed), <[u8; 64]>::try_from(countersignature)) {
            for (code, _, seed) in fixtures::WORLD {
                let _ = cp.verify_countersignature(code, &fixtures::key(seed).verifying_key(), &sig);
            }
        }
    }
}

/// An export bundle, as `adi verify` parses and checks it.
///
/// Asserts: a parsed bundle serialises and parses back to the same bundle, and checking it
/// twice gives the same report.
pub fn bundle(data: &[u8]) {
    let Ok(parsed) = serde_json::from_slice::<Bundle>(data) else { return };
    let report = adi_record::bundle::verify(&parsed);
    let text = serde_json::to_vec(&parsed).expect("a bundle serialises");
    let again: Bundle = serde_json::from_slice(&text).expect("a serialised bundle parses");
    assert_eq!(again, parsed, "a bundle changed on its way through JSON");
    assert_eq!(adi_record::bundle::verify(&again).checks, report.checks, "one bundle, two reports");
}

/// A peer's KeyPackage, as a node checks a claimed one before it adds the member to a line.
///
/// Asserts: an accepted KeyPackage names a roster member, has a reference, and is refused the
/// second time it is offered.
pub fn key_package(data: &[u8]) {
    let mut seen = HashSet::new();
    let Ok((code, _)) = adi_mls::check_key_package(data, &roster_keys, &mut seen) else { return };
    assert!(roster_keys(&code).is_some(), "a KeyPackage of {code}, who is not in the roster, was accepted");
    let reference = adi_mls::key_package_reference(data).expect("an accepted KeyPackage has a reference");
    assert!(seen.contains(&reference), "the accepted KeyPackage's reference was not recorded");
    assert!(adi_mls::check_key_package(data, &roster_keys, &mut seen).is_err(), "a KeyPackage was taken twice");
}

/// A roster file (TOML) as a node loads it, and a member card (JSON) as `adi roster` reads the
/// cards the other members send.
///
/// Asserts: a roster that loads is written to a file that loads as the same roster, and a card's
/// member that passes the check converts to an entry that gives the same member.
pub fn roster(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(loaded) = RosterFile::from_toml(text).ok().and_then(|f| Roster::from_file(&f).ok()) {
        let written = loaded.to_file().to_toml();
        let file = RosterFile::from_toml(&written).expect("a written roster parses");
        let again = Roster::from_file(&file).expect("a written roster loads");
        assert_eq!(again, loaded, "a roster changed on its way through its file");
    }
    if let Some(member) = serde_json::from_str::<MemberCard>(text).ok().and_then(|c| member_from_entry(&c.member).ok())
    {
        let again = member_from_entry(&member_to_entry(&member)).expect("a member's entry is checked again");
        assert_eq!(again, member, "a member changed on its way through its entry");
    }
}
