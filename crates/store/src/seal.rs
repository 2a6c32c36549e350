//! Sealing at rest: message contents are stored encrypted under the node's master key.
//!
//! A sealed value is `0x01 || nonce (12) || ChaCha20-Poly1305 ciphertext and tag`, with the
//! column's label as associated data, so a value cannot be moved to another column unnoticed.
//! The key never enters the database; it comes from a file or the environment (see the node
//! configuration). Metadata needed for routing and ordering (line, sender, sequence, precedence,
//! class, times) stays in the clear.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;

use crate::StoreError;

const VERSION: u8 = 1;

/// Seals and opens column values under one key.
#[derive(Clone)]
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Sealer {
        Sealer { cipher: ChaCha20Poly1305::new(Key::from_slice(key)) }
    }

    pub fn seal(&self, label: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        // Encryption with a fresh random nonce and a valid key cannot fail.
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: label.as_bytes() })
            .expect("ChaCha20-Poly1305 encryption");
        let mut out = Vec::with_capacity(1 + 12 + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, label: &str, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        if sealed.len() < 13 || sealed[0] != VERSION {
            return Err(StoreError::Corrupt(format!("{label}: not a sealed value")));
        }
        self.cipher
            .decrypt(Nonce::from_slice(&sealed[1..13]), Payload { msg: &sealed[13..], aad: label.as_bytes() })
            .map_err(|_| StoreError::Corrupt(format!("{label}: cannot be opened with this node's master key")))
    }

    pub fn seal_str(&self, label: &str, s: &str) -> Vec<u8> {
        self.seal(label, s.as_bytes())
    }

    pub fn open_str(&self, label: &str, sealed: &[u8]) -> Result<String, StoreError> {
        String::from_utf8(self.open(label, sealed)?).map_err(|_| StoreError::Corrupt(format!("{label}: not UTF-8")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_key_and_the_label() {
        let s = Sealer::new(&[1; 32]);
        let sealed = s.seal("envelopes.body", b"secret text");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(s.open("envelopes.body", &sealed).unwrap(), b"secret text");
        assert!(s.open("envelopes.subject", &sealed).is_err());
        assert!(Sealer::new(&[2; 32]).open("envelopes.body", &sealed).is_err());
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert!(s.open("envelopes.body", &flipped).is_err());
        assert_ne!(s.seal("envelopes.body", b"secret text"), sealed, "a fresh nonce each time");
    }
}
