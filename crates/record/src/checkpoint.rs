//! Signed checkpoints of a line's log, and peers' countersignatures over them.
//!
//! A checkpoint states that, at `time_ms`, the log member `signer` keeps of line `line` holds
//! `size` entries with Merkle root `root`. The signed bytes (`docs/RECORD.md`) are
//!
//! ```text
//! "ADI-CHECKPOINT-V1" 0x00 || line (16) || len(signer) (u8) || signer (ASCII)
//!     || size (u64 BE) || root (32) || time_ms (u64 BE)
//! ```
//!
//! signed with Ed25519 under the signer's roster key. A countersignature is another member's
//! Ed25519 signature over `"ADI-COUNTERSIGN-V1" 0x00 || checkpoint bytes || signature (64)`:
//! that member checked the checkpoint against its own copy of the line.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use thiserror::Error;

use crate::merkle::Hash;

const CHECKPOINT_CONTEXT: &[u8] = b"ADI-CHECKPOINT-V1\0";
const COUNTERSIGN_CONTEXT: &[u8] = b"ADI-COUNTERSIGN-V1\0";

/// Why a checkpoint or countersignature is refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum CheckpointError {
    #[error("the signer's code is not 1 to 255 ASCII bytes")]
    BadSigner,
    #[error("a signed checkpoint is {expected} bytes plus the signer's code; got {got}")]
    BadLength { expected: usize, got: usize },
    #[error("the checkpoint signature does not verify under {0}'s key")]
    BadSignature(String),
    #[error("the countersignature does not verify under {0}'s key")]
    BadCountersignature(String),
}

/// What a member states about its log of a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub line: [u8; 16],
    pub signer: String,
    pub size: u64,
    pub root: Hash,
    pub time_ms: u64,
}

impl Checkpoint {
    /// The exact bytes the signer signs (after the context).
    pub fn to_bytes(&self) -> Result<Vec<u8>, CheckpointError> {
        let signer = self.signer.as_bytes();
        if signer.is_empty() || signer.len() > 255 || !self.signer.is_ascii() {
            return Err(CheckpointError::BadSigner);
        }
        let mut out = Vec::with_capacity(16 + 1 + signer.len() + 8 + 32 + 8);
        out.extend_from_slice(&self.line);
        out.push(signer.len() as u8);
        out.extend_from_slice(signer);
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.root);
        out.extend_from_slice(&self.time_ms.to_be_bytes());
        Ok(out)
    }

    fn from_bytes(b: &[u8]) -> Result<Checkpoint, CheckpointError> {
        let len = *b.get(16).ok_or(CheckpointError::BadLength { expected: 65, got: b.len() })? as usize;
        let expected = 16 + 1 + len + 8 + 32 + 8;
        if b.len() != expected || len == 0 {
            return Err(CheckpointError::BadLength { expected, got: b.len() });
        }
        let signer = std::str::from_utf8(&b[17..17 + len]).map_err(|_| CheckpointError::BadSigner)?;
        if !signer.is_ascii() {
            return Err(CheckpointError::BadSigner);
        }
        let at = 17 + len;
        let mut line = [0u8; 16];
        line.copy_from_slice(&b[..16]);
        let mut root = [0u8; 32];
        root.copy_from_slice(&b[at + 8..at + 40]);
        Ok(Checkpoint {
            line,
            signer: signer.to_string(),
            size: u64::from_be_bytes(b[at..at + 8].try_into().unwrap_or_default()),
            root,
            time_ms: u64::from_be_bytes(b[at + 40..at + 48].try_into().unwrap_or_default()),
        })
    }

    /// Signs the checkpoint with the signer's roster key.
    pub fn sign(self, key: &SigningKey) -> Result<SignedCheckpoint, CheckpointError> {
        let signature = key.sign(&[CHECKPOINT_CONTEXT, &self.to_bytes()?].concat()).to_bytes();
        Ok(SignedCheckpoint { checkpoint: self, signature })
    }
}

/// A checkpoint and its signer's signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub signature: [u8; 64],
}

impl SignedCheckpoint {
    /// Checks the signature under the signer's roster key, strictly (RFC 8032 with the checks
    /// `verify_strict` adds: no weak key, no small-order or non-canonical `R`).
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), CheckpointError> {
        let bytes = [CHECKPOINT_CONTEXT, &self.checkpoint.to_bytes()?].concat();
        key.verify_strict(&bytes, &Signature::from_bytes(&self.signature))
            .map_err(|_| CheckpointError::BadSignature(self.checkpoint.signer.clone()))
    }

    /// The checkpoint bytes followed by the 64-byte signature.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CheckpointError> {
        let mut out = self.checkpoint.to_bytes()?;
        out.extend_from_slice(&self.signature);
        Ok(out)
    }

    pub fn from_bytes(b: &[u8]) -> Result<SignedCheckpoint, CheckpointError> {
        if b.len() < 64 {
            return Err(CheckpointError::BadLength { expected: 64, got: b.len() });
        }
        let (body, sig) = b.split_at(b.len() - 64);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(sig);
        Ok(SignedCheckpoint { checkpoint: Checkpoint::from_bytes(body)?, signature })
    }

    /// Another member's countersignature: it checked this checkpoint against its own log.
    pub fn countersign(&self, key: &SigningKey) -> Result<[u8; 64], CheckpointError> {
        Ok(key.sign(&[COUNTERSIGN_CONTEXT, &self.to_bytes()?].concat()).to_bytes())
    }

    /// Checks a countersignature by `member` under its roster key, strictly.
    pub fn verify_countersignature(
        &self,
        member: &str,
        key: &VerifyingKey,
        countersignature: &[u8; 64],
    ) -> Result<(), CheckpointError> {
        let bytes = [COUNTERSIGN_CONTEXT, &self.to_bytes()?].concat();
        key.verify_strict(&bytes, &Signature::from_bytes(countersignature))
            .map_err(|_| CheckpointError::BadCountersignature(member.to_string()))
    }

    /// Whether two checkpoints by one signer of one line and size disagree on the root: proof
    /// that the signer showed two histories.
    pub fn equivocates_with(&self, other: &SignedCheckpoint) -> bool {
        let (a, b) = (&self.checkpoint, &other.checkpoint);
        a.line == b.line && a.signer == b.signer && a.size == b.size && a.root != b.root
    }
}
