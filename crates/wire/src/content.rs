//! Signed content: what travels inside the encryption of an MLS application message.
//!
//! The author signs the exact content bytes (a [`crate::payload::PayloadV1`]) bound to the line,
//! its member code and the envelope's sequence number, and the outer envelope names the hash of
//! the signed content (`EnvelopeBody::content_hash`). An exported plaintext therefore proves
//! itself to be what its author wrote at that place in the line, without any MLS key. The hash
//! covers the author's signature, which no one but the author can make, so someone holding the
//! envelope but no key of its line cannot confirm a guess of what it carries:
//!
//! ```text
//! signed bytes = "ADI-CONTENT-V1" 0x00 || line (16) || len(sender) (u8) || sender
//!                || seq (u64 BE) || content
//! content hash = SHA-256("ADI-CONTENT-HASH-V2" 0x00 || signature (64) || signed bytes)
//! encoding     = version (1, = 2) || signature (64) || content
//! ```
//!
//! Version 1 content (in envelopes of version 2, made before) hashed the signed bytes alone; it
//! is still read and verified by that rule.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::envelope::LineId;

const CONTEXT: &[u8] = b"ADI-CONTENT-V1\0";
const HASH_CONTEXT: &[u8] = b"ADI-CONTENT-HASH-V2\0";
/// The version of the content this build signs: its hash covers the signature.
pub const VERSION: u8 = 2;
/// The version of content made before, whose hash covered the signed bytes alone.
pub const VERSION_PLAIN_HASH: u8 = 1;

/// Why signed content is refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ContentError {
    #[error("signed content is version {0}; this build reads versions 1 and 2")]
    Version(u8),
    #[error("signed content is too short")]
    Short,
    #[error("the content's signature does not verify under {0}'s roster key")]
    BadSignature(String),
    #[error("the content does not match the hash its envelope names")]
    HashMismatch,
    #[error("content of version {content} in an envelope of version {envelope}")]
    VersionMismatch { content: u8, envelope: u8 },
}

/// Content and its author's signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedContent {
    /// [`VERSION`], or [`VERSION_PLAIN_HASH`] for content made before.
    pub version: u8,
    pub signature: [u8; 64],
    pub content: Vec<u8>,
}

/// The bytes the author signs.
pub fn signed_bytes(line: &LineId, sender: &str, seq: u64, content: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(CONTEXT.len() + 16 + 1 + sender.len() + 8 + content.len());
    m.extend_from_slice(CONTEXT);
    m.extend_from_slice(&line.0);
    m.push(sender.len() as u8);
    m.extend_from_slice(sender.as_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(content);
    m
}

impl SignedContent {
    /// Signs `content` as `sender`'s envelope `seq` on `line`.
    pub fn sign(key: &SigningKey, line: &LineId, sender: &str, seq: u64, content: Vec<u8>) -> SignedContent {
        let signature = key.sign(&signed_bytes(line, sender, seq, &content)).to_bytes();
        SignedContent { version: VERSION, signature, content }
    }

    /// The hash the envelope names: of the signature and the signed bytes (of the signed bytes
    /// alone for version 1).
    pub fn hash(&self, line: &LineId, sender: &str, seq: u64) -> [u8; 32] {
        self.hash_of(&signed_bytes(line, sender, seq, &self.content))
    }

    fn hash_of(&self, signed: &[u8]) -> [u8; 32] {
        if self.version == VERSION_PLAIN_HASH {
            return Sha256::digest(signed).into();
        }
        let mut h = Sha256::new();
        h.update(HASH_CONTEXT);
        h.update(self.signature);
        h.update(signed);
        h.finalize().into()
    }

    /// Checks the author's signature and that the content is the one the envelope names.
    pub fn verify(
        &self,
        key: &VerifyingKey,
        line: &LineId,
        sender: &str,
        seq: u64,
        content_hash: &[u8; 32],
    ) -> Result<(), ContentError> {
        let bytes = signed_bytes(line, sender, seq, &self.content);
        key.verify_strict(&bytes, &Signature::from_bytes(&self.signature))
            .map_err(|_| ContentError::BadSignature(sender.to_string()))?;
        if self.hash_of(&bytes) != *content_hash {
            return Err(ContentError::HashMismatch);
        }
        Ok(())
    }

    /// Checks that the content is of the version its envelope's version names: an envelope of
    /// the current version carries only content whose hash covers the signature.
    pub fn check_version(&self, envelope_version: u8) -> Result<(), ContentError> {
        let expected =
            if envelope_version == crate::envelope::VERSION_PLAIN_CONTENT_HASH { VERSION_PLAIN_HASH } else { VERSION };
        if self.version != expected {
            return Err(ContentError::VersionMismatch { content: self.version, envelope: envelope_version });
        }
        Ok(())
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 64 + self.content.len());
        out.push(self.version);
        out.extend_from_slice(&self.signature);
        out.extend_from_slice(&self.content);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<SignedContent, ContentError> {
        let (&version, rest) = bytes.split_first().ok_or(ContentError::Short)?;
        if version != VERSION && version != VERSION_PLAIN_HASH {
            return Err(ContentError::Version(version));
        }
        if rest.len() < 64 {
            return Err(ContentError::Short);
        }
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&rest[..64]);
        Ok(SignedContent { version, signature, content: rest[64..].to_vec() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_content_binds_line_sender_and_sequence() {
        let key = SigningKey::from_bytes(&[4; 32]);
        let line = LineId([1; 16]);
        let signed = SignedContent::sign(&key, &line, "PH", 7, b"{\"type\":\"message\"}".to_vec());
        let hash = signed.hash(&line, "PH", 7);
        let decoded = SignedContent::decode(&signed.encode()).unwrap();
        assert_eq!(decoded, signed);
        decoded.verify(&key.verifying_key(), &line, "PH", 7, &hash).unwrap();
        // Another place in the line, another author, other content, or another hash: refused.
        assert!(decoded.verify(&key.verifying_key(), &line, "PH", 8, &hash).is_err());
        assert!(decoded.verify(&key.verifying_key(), &LineId([2; 16]), "PH", 7, &hash).is_err());
        assert!(decoded.verify(&key.verifying_key(), &line, "CN", 7, &hash).is_err());
        assert!(decoded.verify(&SigningKey::from_bytes(&[5; 32]).verifying_key(), &line, "PH", 7, &hash).is_err());
        let mut other = decoded.clone();
        other.content.push(b' ');
        assert!(other.verify(&key.verifying_key(), &line, "PH", 7, &hash).is_err());
        assert_eq!(decoded.verify(&key.verifying_key(), &line, "PH", 7, &[0; 32]), Err(ContentError::HashMismatch));
        assert!(SignedContent::decode(&[1; 10]).is_err());
        assert_eq!(SignedContent::decode(&[3; 70]), Err(ContentError::Version(3)));
    }

    #[test]
    fn the_hash_of_signed_content_cannot_be_made_without_its_authors_signature() {
        let key = SigningKey::from_bytes(&[4; 32]);
        let line = LineId([1; 16]);
        let content = b"{\"type\":\"link_test\",\"v\":1}".to_vec();
        let signed = SignedContent::sign(&key, &line, "PH", 7, content.clone());
        let hash = signed.hash(&line, "PH", 7);
        // Someone who guesses the content, and knows the line, the author and the place, but
        // holds no signature of the author's, computes neither hash rule's answer.
        let guessed = <[u8; 32]>::from(Sha256::digest(signed_bytes(&line, "PH", 7, &content)));
        assert_ne!(hash, guessed);
        let forged = SignedContent { signature: [0; 64], ..signed.clone() };
        assert_ne!(forged.hash(&line, "PH", 7), hash);
        // Content of version 1 (made before) still verifies by its own rule.
        let old = SignedContent { version: VERSION_PLAIN_HASH, ..signed };
        let old_hash = old.hash(&line, "PH", 7);
        assert_eq!(old_hash, guessed);
        let decoded = SignedContent::decode(&old.encode()).unwrap();
        decoded.verify(&key.verifying_key(), &line, "PH", 7, &old_hash).unwrap();
    }
}
