//! Sealing at rest: contents and the metadata that names people are stored encrypted under the
//! node's master key, each value bound to the row that holds it.
//!
//! A sealed value is `0x02 || nonce (12) || ChaCha20-Poly1305 ciphertext and tag`. Its associated
//! data is `0x02 || label || 0x00 || row`, where the label names the table and column
//! (`envelopes.body`) and the row is the row's primary key (an envelope's hash, an alarm's id as
//! eight big-endian bytes, a recipient's envelope hash followed by its member code). Whoever can
//! write the database can neither read a value nor move one to another column or another row
//! unnoticed: it no longer opens.
//!
//! Databases of schema version 9 and earlier hold values of version `0x01`, bound to their column
//! only; the migration to version 10 opens each and seals it again bound to its row
//! ([`Sealer::open_column_bound`]). Nothing else accepts them.
//!
//! A value the node must look up by equality (the peer of a KeyPackage claim, for its quota) is
//! stored as a blind index instead: HMAC-SHA256 under a key derived from the master key, so equal
//! values match without being readable ([`Sealer::blind`]).
//!
//! The key never enters the database; it comes from a file or the environment (see the node
//! configuration). What stays in the clear, and why, is listed in `docs/THREAT_MODEL.md`.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::StoreError;

/// A value sealed bound to its column only (schema version 9 and earlier).
const VERSION_COLUMN_BOUND: u8 = 1;
/// A value sealed bound to its column and its row.
const VERSION: u8 = 2;

/// The primary key of a row with an integer id, as sealed values bound to it name it.
pub fn row_id(id: i64) -> [u8; 8] {
    id.to_be_bytes()
}

/// The key of a row whose primary key is two values: the first of fixed length, the second
/// whatever follows it.
pub fn row_pair(first: &[u8], second: &str) -> Vec<u8> {
    let mut row = Vec::with_capacity(first.len() + second.len());
    row.extend_from_slice(first);
    row.extend_from_slice(second.as_bytes());
    row
}

/// Seals and opens values under one key, each bound to its column and row.
#[derive(Clone)]
pub struct Sealer {
    cipher: ChaCha20Poly1305,
    /// The key of blind indexes, derived from the master key.
    blind_key: [u8; 32],
}

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Sealer {
        let mut derive = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
        derive.update(b"adi blind index key");
        Sealer { cipher: ChaCha20Poly1305::new(Key::from_slice(key)), blind_key: derive.finalize().into_bytes().into() }
    }

    fn associated(label: &str, row: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(2 + label.len() + row.len());
        aad.push(VERSION);
        aad.extend_from_slice(label.as_bytes());
        aad.push(0);
        aad.extend_from_slice(row);
        aad
    }

    /// Seals `plaintext` as the value of column `label` in the row whose primary key is `row`.
    pub fn seal(&self, label: &str, row: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = Self::associated(label, row);
        // Encryption with a fresh random nonce and a valid key cannot fail.
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: &aad })
            .expect("ChaCha20-Poly1305 encryption");
        let mut out = Vec::with_capacity(1 + 12 + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens the value of column `label` in the row `row`; a value sealed for another column or
    /// row, or under another key, or changed, does not open.
    pub fn open(&self, label: &str, row: &[u8], sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        if sealed.len() < 13 || sealed[0] != VERSION {
            return Err(StoreError::Corrupt(format!("{label}: not a sealed value bound to its row")));
        }
        let aad = Self::associated(label, row);
        self.cipher.decrypt(Nonce::from_slice(&sealed[1..13]), Payload { msg: &sealed[13..], aad: &aad }).map_err(
            |_| {
                StoreError::Corrupt(format!(
                    "{label}: cannot be opened with this node's master key as this row's value (changed, or moved from another row)"
                ))
            },
        )
    }

    pub fn seal_str(&self, label: &str, row: &[u8], s: &str) -> Vec<u8> {
        self.seal(label, row, s.as_bytes())
    }

    pub fn open_str(&self, label: &str, row: &[u8], sealed: &[u8]) -> Result<String, StoreError> {
        String::from_utf8(self.open(label, row, sealed)?)
            .map_err(|_| StoreError::Corrupt(format!("{label}: not UTF-8")))
    }

    /// Whether a stored value is of the version bound to its row (whether it opens is another
    /// matter).
    pub(crate) fn is_row_bound(&self, sealed: &[u8]) -> bool {
        sealed.first() == Some(&VERSION)
    }

    /// Opens a value of schema version 9 and earlier, sealed bound to its column only: for the
    /// migration that seals it again bound to its row, and nothing else.
    pub(crate) fn open_column_bound(&self, label: &str, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        if sealed.len() < 13 || sealed[0] != VERSION_COLUMN_BOUND {
            return Err(StoreError::Corrupt(format!("{label}: not a sealed value of schema version 9")));
        }
        self.cipher
            .decrypt(Nonce::from_slice(&sealed[1..13]), Payload { msg: &sealed[13..], aad: label.as_bytes() })
            .map_err(|_| StoreError::Corrupt(format!("{label}: cannot be opened with this node's master key")))
    }

    /// Seals a value as schema version 9 did: for tests of the migration.
    #[cfg(test)]
    pub(crate) fn seal_column_bound(&self, label: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: label.as_bytes() })
            .expect("ChaCha20-Poly1305 encryption");
        let mut out = vec![VERSION_COLUMN_BOUND];
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// The blind index of `value` in column `label`: equal values give equal indexes, and
    /// without the master key an index tells nothing of its value.
    pub fn blind(&self, label: &str, value: &[u8]) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.blind_key).expect("HMAC takes a key of any length");
        mac.update(label.as_bytes());
        mac.update(&[0]);
        mac.update(value);
        mac.finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_key_the_column_and_the_row() {
        let s = Sealer::new(&[1; 32]);
        let sealed = s.seal("envelopes.body", b"row one", b"secret text");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(s.open("envelopes.body", b"row one", &sealed).unwrap(), b"secret text");
        assert!(s.open("envelopes.subject", b"row one", &sealed).is_err(), "another column");
        assert!(s.open("envelopes.body", b"row two", &sealed).is_err(), "another row");
        // The label and the row cannot trade bytes.
        assert!(s.open("envelopes.bod", b"yrow one", &sealed).is_err());
        assert!(Sealer::new(&[2; 32]).open("envelopes.body", b"row one", &sealed).is_err());
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert!(s.open("envelopes.body", b"row one", &flipped).is_err());
        assert_ne!(s.seal("envelopes.body", b"row one", b"secret text"), sealed, "a fresh nonce each time");
    }

    #[test]
    fn column_bound_values_open_only_for_the_migration() {
        let s = Sealer::new(&[1; 32]);
        let old = s.seal_column_bound("envelopes.body", b"secret text");
        assert!(s.open("envelopes.body", b"", &old).is_err(), "a version 1 value is not opened as a row's value");
        assert_eq!(s.open_column_bound("envelopes.body", &old).unwrap(), b"secret text");
        assert!(s.open_column_bound("envelopes.subject", &old).is_err());
        let new = s.seal("envelopes.body", b"", b"secret text");
        assert!(s.open_column_bound("envelopes.body", &new).is_err());
    }

    #[test]
    fn blind_indexes_match_equal_values_under_one_key_only() {
        let s = Sealer::new(&[1; 32]);
        assert_eq!(s.blind("key_package_claims.peer", b"PH"), s.blind("key_package_claims.peer", b"PH"));
        assert_ne!(s.blind("key_package_claims.peer", b"PH"), s.blind("key_package_claims.peer", b"VN"));
        assert_ne!(s.blind("key_package_claims.peer", b"PH"), s.blind("used_key_packages.member", b"PH"));
        assert_ne!(
            s.blind("key_package_claims.peer", b"PH"),
            Sealer::new(&[2; 32]).blind("key_package_claims.peer", b"PH")
        );
    }
}
