//! The envelope: the signed unit that travels between nodes.
//!
//! An envelope is a body (line, sender, sequence number, hash of the sender's previous envelope on
//! the line, MLS epoch, creation time, queue priority, content type, opaque payload) followed by
//! the sender member's Ed25519 signature over the exact body bytes. Only [`Envelope::verify`] turns
//! decoded bytes into a [`VerifiedEnvelope`], so code that takes the latter cannot see unsigned
//! input. The envelope's identity is the SHA-256 of its complete encoding ([`EnvelopeHash`]).

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::codec::{DecodeError, Reader, Writer};

const MAGIC: &[u8; 4] = b"ADIE";
/// The envelope version this build signs: an MLS application message's `content_hash` covers
/// its author's signature ([`crate::content::VERSION`]).
pub const VERSION: u8 = 3;
/// The version of envelopes made before, still read: their `content_hash` covered the signed
/// bytes alone ([`crate::content::VERSION_PLAIN_HASH`]).
pub const VERSION_PLAIN_CONTENT_HASH: u8 = 2;
/// Domain separation for envelope signatures, so that no other signed object can pass as one.
const SIGNING_CONTEXT: &[u8] = b"ADI-ENVELOPE-V2\0";

/// Content type of a payload that travels as plain bytes inside the signed envelope. Nodes no
/// longer accept it on lines; it remains for tests of the layers before decryption.
pub const CONTENT_PLAIN_V1: u8 = 1;
/// A line set-up: the line's metadata as JSON with the MLS Welcome for the members.
pub const CONTENT_MLS_SETUP: u8 = 2;
/// An MLS message of the line's group (application message, proposal or commit).
pub const CONTENT_MLS: u8 = 3;

/// Queue priorities carried on the envelope so that relays and outboxes can order traffic
/// without reading the payload. Lower is more urgent.
pub const PRIORITY_CONTROL: u8 = 0;
pub const PRIORITY_FLASH: u8 = 1;
pub const PRIORITY_IMMEDIATE: u8 = 2;
pub const PRIORITY_PRIORITY: u8 = 3;
pub const PRIORITY_ROUTINE: u8 = 4;

/// Member codes on the wire: 2 to 8 characters of `A-Z`, `0-9` and `-`.
pub fn check_member_code(code: &str) -> Result<(), &'static str> {
    let ok_len = (2..=8).contains(&code.len());
    let ok_chars = code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err("a member code is 2 to 8 characters of A-Z, 0-9 and '-'")
    }
}

/// A line identifier: 16 bytes, chosen by the line's home node and the same on every node.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LineId(pub [u8; 16]);

impl LineId {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<LineId> {
        let mut out = [0u8; 16];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(LineId(out))
    }
}

impl fmt::Display for LineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for LineId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LineId({})", self.to_hex())
    }
}

/// SHA-256 of an envelope's complete encoding; all zeros stands for "no previous envelope".
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct EnvelopeHash(pub [u8; 32]);

impl EnvelopeHash {
    pub const NONE: EnvelopeHash = EnvelopeHash([0u8; 32]);

    pub fn of(bytes: &[u8]) -> EnvelopeHash {
        EnvelopeHash(Sha256::digest(bytes).into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<EnvelopeHash> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(EnvelopeHash(out))
    }
}

impl fmt::Display for EnvelopeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for EnvelopeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EnvelopeHash({})", self.to_hex())
    }
}

/// The signed fields of an envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopeBody {
    pub line: LineId,
    pub sender: String,
    /// The sender's sequence number on this line, from 1.
    pub seq: u64,
    /// Hash of the sender's previous envelope on this line, or [`EnvelopeHash::NONE`] for seq 1.
    pub prev: EnvelopeHash,
    pub epoch: u64,
    /// Milliseconds since the Unix epoch at the sender's node.
    pub created_ms: u64,
    pub priority: u8,
    pub content_type: u8,
    /// For an MLS application message: the hash of the signed content inside the encryption
    /// ([`crate::content::SignedContent::hash`]); 32 zero bytes otherwise.
    pub content_hash: [u8; 32],
    pub payload: Vec<u8>,
}

impl EnvelopeBody {
    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.raw(MAGIC);
        w.u8(VERSION);
        w.raw(&self.line.0);
        w.bytes8(self.sender.as_bytes());
        w.u64(self.seq);
        w.raw(&self.prev.0);
        w.u64(self.epoch);
        w.u64(self.created_ms);
        w.u8(self.priority);
        w.u8(self.content_type);
        w.raw(&self.content_hash);
        w.bytes32(&self.payload);
        w.into_bytes()
    }

    /// Encodes and signs the body with the sender member's key.
    ///
    /// The sender code must be valid ([`check_member_code`]); that is the caller's duty, since the
    /// key and the code both come from the node's own configuration.
    pub fn sign(self, key: &SigningKey) -> VerifiedEnvelope {
        debug_assert!(check_member_code(&self.sender).is_ok());
        let mut bytes = self.encode();
        let body_len = bytes.len();
        let signature = key.sign(&signed_message(&bytes));
        bytes.extend_from_slice(&signature.to_bytes());
        let hash = EnvelopeHash::of(&bytes);
        VerifiedEnvelope(Envelope { version: VERSION, body: self, bytes, body_len, hash })
    }
}

fn signed_message(body_bytes: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNING_CONTEXT.len() + body_bytes.len());
    m.extend_from_slice(SIGNING_CONTEXT);
    m.extend_from_slice(body_bytes);
    m
}

/// A decoded envelope whose signature has not been checked yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    version: u8,
    body: EnvelopeBody,
    bytes: Vec<u8>,
    body_len: usize,
    hash: EnvelopeHash,
}

/// Why an envelope's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("the envelope's signature does not verify under the sender's roster key")]
pub struct BadSignature;

impl Envelope {
    /// Decodes an envelope of at most `bytes_max` bytes with a payload of at most `payload_max`.
    pub fn decode(bytes: &[u8], bytes_max: usize, payload_max: usize) -> Result<Envelope, DecodeError> {
        if bytes.len() > bytes_max {
            return Err(DecodeError::TooLong { field: "envelope", len: bytes.len(), max: bytes_max });
        }
        let mut r = Reader::new(bytes);
        if r.take(4, "magic")? != MAGIC {
            return Err(DecodeError::BadMagic { expected: "ADIE" });
        }
        let version = r.u8("version")?;
        if version != VERSION && version != VERSION_PLAIN_CONTENT_HASH {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let line = LineId(r.array("line")?);
        let sender = std::str::from_utf8(r.bytes8("sender")?).map_err(|_| DecodeError::Invalid("sender"))?;
        check_member_code(sender).map_err(|_| DecodeError::Invalid("sender"))?;
        let sender = sender.to_string();
        let seq = r.u64("seq")?;
        if seq == 0 {
            return Err(DecodeError::Invalid("seq"));
        }
        let prev = EnvelopeHash(r.array("prev")?);
        let epoch = r.u64("epoch")?;
        let created_ms = r.u64("created_ms")?;
        let priority = r.u8("priority")?;
        if priority > PRIORITY_ROUTINE {
            return Err(DecodeError::Invalid("priority"));
        }
        let content_type = r.u8("content_type")?;
        let content_hash = r.array("content_hash")?;
        let payload = r.bytes32("payload", payload_max)?.to_vec();
        let body_len = r.position();
        r.take(64, "signature")?;
        r.finish()?;
        let body =
            EnvelopeBody { line, sender, seq, prev, epoch, created_ms, priority, content_type, content_hash, payload };
        Ok(Envelope { version, body, bytes: bytes.to_vec(), body_len, hash: EnvelopeHash::of(bytes) })
    }

    pub fn body(&self) -> &EnvelopeBody {
        &self.body
    }

    /// [`VERSION`], or [`VERSION_PLAIN_CONTENT_HASH`] for an envelope made before.
    pub fn version(&self) -> u8 {
        self.version
    }

    pub fn hash(&self) -> EnvelopeHash {
        self.hash
    }

    /// Checks the signature under the sender's key from the roster.
    pub fn verify(self, key: &VerifyingKey) -> Result<VerifiedEnvelope, BadSignature> {
        let sig_bytes: [u8; 64] = self.bytes[self.body_len..].try_into().map_err(|_| BadSignature)?;
        let signature = Signature::from_bytes(&sig_bytes);
        key.verify_strict(&signed_message(&self.bytes[..self.body_len]), &signature).map_err(|_| BadSignature)?;
        Ok(VerifiedEnvelope(self))
    }
}

/// An envelope whose signature has been checked (or that this node signed itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedEnvelope(Envelope);

impl VerifiedEnvelope {
    pub fn body(&self) -> &EnvelopeBody {
        &self.0.body
    }

    /// [`VERSION`], or [`VERSION_PLAIN_CONTENT_HASH`] for an envelope made before.
    pub fn version(&self) -> u8 {
        self.0.version
    }

    /// The exact bytes that were signed and that travel.
    pub fn bytes(&self) -> &[u8] {
        &self.0.bytes
    }

    pub fn hash(&self) -> EnvelopeHash {
        self.0.hash
    }

    /// Rebuilds a verified envelope from bytes this node stored after verifying them. Storage is
    /// trusted: the signature was checked before the bytes were committed.
    pub fn from_trusted_storage(bytes: &[u8]) -> Result<VerifiedEnvelope, DecodeError> {
        Envelope::decode(bytes, usize::MAX, usize::MAX).map(VerifiedEnvelope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body() -> EnvelopeBody {
        EnvelopeBody {
            line: LineId([7; 16]),
            sender: "PH".into(),
            seq: 1,
            prev: EnvelopeHash::NONE,
            epoch: 0,
            created_ms: 1_700_000_000_000,
            priority: PRIORITY_FLASH,
            content_type: CONTENT_PLAIN_V1,
            content_hash: [3; 32],
            payload: b"hello".to_vec(),
        }
    }

    #[test]
    fn an_envelope_of_the_version_before_is_read_and_a_later_one_refused() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let signed = body().sign(&key);
        assert_eq!(signed.version(), VERSION);
        // The same body as the version before encoded it, signed again.
        let mut bytes = signed.bytes().to_vec();
        let body_len = bytes.len() - 64;
        bytes[4] = VERSION_PLAIN_CONTENT_HASH;
        let signature = key.sign(&signed_message(&bytes[..body_len])).to_bytes();
        bytes[body_len..].copy_from_slice(&signature);
        let old = Envelope::decode(&bytes, 1 << 20, 1 << 20).unwrap();
        assert_eq!((old.version(), old.body()), (VERSION_PLAIN_CONTENT_HASH, &body()));
        old.verify(&key.verifying_key()).unwrap();
        bytes[4] = VERSION + 1;
        assert_eq!(Envelope::decode(&bytes, 1 << 20, 1 << 20), Err(DecodeError::UnsupportedVersion(VERSION + 1)));
    }

    #[test]
    fn sign_decode_verify_round_trip() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let signed = body().sign(&key);
        let decoded = Envelope::decode(signed.bytes(), 1 << 20, 1 << 20).unwrap();
        assert_eq!(decoded.body(), &body());
        assert_eq!(decoded.hash(), signed.hash());
        let verified = decoded.verify(&key.verifying_key()).unwrap();
        assert_eq!(verified, signed);
    }

    #[test]
    fn a_flipped_bit_anywhere_is_refused() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let signed = body().sign(&key);
        for i in 0..signed.bytes().len() {
            let mut bytes = signed.bytes().to_vec();
            bytes[i] ^= 0x01;
            let ok = Envelope::decode(&bytes, 1 << 20, 1 << 20).ok().and_then(|e| e.verify(&key.verifying_key()).ok());
            assert!(ok.is_none(), "flip at byte {i} went unnoticed");
        }
    }

    #[test]
    fn another_key_is_refused() {
        let signed = body().sign(&SigningKey::from_bytes(&[1; 32]));
        let other = SigningKey::from_bytes(&[2; 32]).verifying_key();
        let decoded = Envelope::decode(signed.bytes(), 1 << 20, 1 << 20).unwrap();
        assert_eq!(decoded.verify(&other), Err(BadSignature));
    }

    #[test]
    fn truncations_and_limits_are_errors_not_panics() {
        let signed = body().sign(&SigningKey::from_bytes(&[1; 32]));
        for n in 0..signed.bytes().len() {
            assert!(Envelope::decode(&signed.bytes()[..n], 1 << 20, 1 << 20).is_err());
        }
        let err = Envelope::decode(signed.bytes(), 10, 1 << 20).unwrap_err();
        assert!(matches!(err, DecodeError::TooLong { field: "envelope", .. }));
        let err = Envelope::decode(signed.bytes(), 1 << 20, 2).unwrap_err();
        assert!(matches!(err, DecodeError::TooLong { field: "payload", .. }));
    }
}
