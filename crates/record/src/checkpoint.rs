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
//! signed with Ed25519 under the signer's roster key. Version 2 begins with `"ADCP" 0x02`, is
//! signed under `"ADI-CHECKPOINT-V2" 0x00`, and after `time_ms` names the head of each sender's
//! chain in the log: `count (u16 BE) || (len(sender) (u8) || sender || seq (u64 BE) || hash (32))*`,
//! senders in byte order, once each. A countersignature is another member's
//! Ed25519 signature over `"ADI-COUNTERSIGN-V1" 0x00 || checkpoint bytes || signature (64)`:
//! that member checked the checkpoint against its own copy of the line.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use thiserror::Error;

use crate::merkle::Hash;

const CHECKPOINT_CONTEXT: &[u8] = b"ADI-CHECKPOINT-V1\0";
const CHECKPOINT_CONTEXT_V2: &[u8] = b"ADI-CHECKPOINT-V2\0";
const COUNTERSIGN_CONTEXT: &[u8] = b"ADI-COUNTERSIGN-V1\0";
/// The first bytes of a checkpoint of version 2, which commits to each chain's head.
const MAGIC_V2: &[u8] = b"ADCP\x02";
/// The most chain heads one checkpoint names (one per member of a line).
pub const HEADS_MAX: usize = 1_024;

/// Why a checkpoint or countersignature is refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum CheckpointError {
    #[error("the signer's code is not 1 to 255 ASCII bytes")]
    BadSigner,
    #[error("a signed checkpoint is {expected} bytes plus the signer's code; got {got}")]
    BadLength { expected: usize, got: usize },
    #[error("the checkpoint's chain heads are malformed: {0}")]
    BadHeads(&'static str),
    #[error("the checkpoint signature does not verify under {0}'s key")]
    BadSignature(String),
    #[error("the countersignature does not verify under {0}'s key")]
    BadCountersignature(String),
}

/// The last envelope of one sender's chain on the line that a checkpoint's log holds.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Head {
    pub sender: String,
    pub seq: u64,
    /// The envelope's hash.
    pub hash: Hash,
}

/// What a member states about its log of a line: its size and root, and (version 2) the head of
/// each sender's chain in it, so that a member that countersigns can tell an omission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub line: [u8; 16],
    pub signer: String,
    pub size: u64,
    pub root: Hash,
    pub time_ms: u64,
    /// `None` for a checkpoint of version 1, which names no heads; otherwise one per sender,
    /// in the order of their codes.
    pub heads: Option<Vec<Head>>,
}

fn code_bytes(code: &str) -> Result<&[u8], CheckpointError> {
    let b = code.as_bytes();
    if b.is_empty() || b.len() > 255 || !code.is_ascii() {
        return Err(CheckpointError::BadSigner);
    }
    Ok(b)
}

impl Checkpoint {
    /// The exact bytes the signer signs (after the context).
    pub fn to_bytes(&self) -> Result<Vec<u8>, CheckpointError> {
        let signer = code_bytes(&self.signer)?;
        let mut out = Vec::with_capacity(16 + 1 + signer.len() + 8 + 32 + 8);
        if self.heads.is_some() {
            out.extend_from_slice(MAGIC_V2);
        }
        out.extend_from_slice(&self.line);
        out.push(signer.len() as u8);
        out.extend_from_slice(signer);
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.root);
        out.extend_from_slice(&self.time_ms.to_be_bytes());
        if let Some(heads) = &self.heads {
            if heads.len() > HEADS_MAX {
                return Err(CheckpointError::BadHeads("more heads than HEADS_MAX"));
            }
            if heads.windows(2).any(|w| w[0].sender >= w[1].sender) {
                return Err(CheckpointError::BadHeads("heads are not in the order of their senders, once each"));
            }
            out.extend_from_slice(&(heads.len() as u16).to_be_bytes());
            for h in heads {
                let sender = code_bytes(&h.sender).map_err(|_| CheckpointError::BadHeads("a sender's code"))?;
                out.push(sender.len() as u8);
                out.extend_from_slice(sender);
                out.extend_from_slice(&h.seq.to_be_bytes());
                out.extend_from_slice(&h.hash);
            }
        }
        Ok(out)
    }

    fn from_bytes(b: &[u8]) -> Result<Checkpoint, CheckpointError> {
        match b.strip_prefix(MAGIC_V2) {
            Some(rest) => {
                let (mut cp, tail) = Checkpoint::fixed(rest, false)?;
                cp.heads = Some(heads_from(tail)?);
                cp.to_bytes()?; // the order and count rules hold
                Ok(cp)
            }
            None => Checkpoint::fixed(b, true).map(|(cp, _)| cp),
        }
    }

    /// The fields both versions share, and what follows them; `exact` when nothing may follow.
    fn fixed(b: &[u8], exact: bool) -> Result<(Checkpoint, &[u8]), CheckpointError> {
        let len = *b.get(16).ok_or(CheckpointError::BadLength { expected: 65, got: b.len() })? as usize;
        let expected = 16 + 1 + len + 8 + 32 + 8;
        if b.len() < expected || (exact && b.len() != expected) || len == 0 {
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
        let cp = Checkpoint {
            line,
            signer: signer.to_string(),
            size: u64::from_be_bytes(b[at..at + 8].try_into().unwrap_or_default()),
            root,
            time_ms: u64::from_be_bytes(b[at + 40..at + 48].try_into().unwrap_or_default()),
            heads: None,
        };
        Ok((cp, &b[expected..]))
    }

    /// Signs the checkpoint with the signer's roster key.
    pub fn sign(self, key: &SigningKey) -> Result<SignedCheckpoint, CheckpointError> {
        let signature = key.sign(&[self.context(), &self.to_bytes()?].concat()).to_bytes();
        Ok(SignedCheckpoint { checkpoint: self, signature })
    }

    fn context(&self) -> &'static [u8] {
        if self.heads.is_some() {
            CHECKPOINT_CONTEXT_V2
        } else {
            CHECKPOINT_CONTEXT
        }
    }
}

/// The head of each sender's chain among a log's entries `(hash, sender, seq)`: its envelope of
/// the highest sequence number, senders in order.
pub fn heads<'a>(entries: impl IntoIterator<Item = (&'a Hash, &'a str, u64)>) -> Vec<Head> {
    let mut by_sender: std::collections::BTreeMap<&str, (u64, Hash)> = std::collections::BTreeMap::new();
    for (hash, sender, seq) in entries {
        let e = by_sender.entry(sender).or_insert((seq, *hash));
        if seq >= e.0 {
            *e = (seq, *hash);
        }
    }
    by_sender.into_iter().map(|(sender, (seq, hash))| Head { sender: sender.to_string(), seq, hash }).collect()
}

/// The chain heads after the fixed fields of a checkpoint of version 2.
fn heads_from(mut b: &[u8]) -> Result<Vec<Head>, CheckpointError> {
    let short = CheckpointError::BadHeads("the bytes end early");
    let count = u16::from_be_bytes(b.get(..2).ok_or(short.clone())?.try_into().unwrap_or_default()) as usize;
    b = &b[2..];
    if count > HEADS_MAX {
        return Err(CheckpointError::BadHeads("more heads than HEADS_MAX"));
    }
    let mut heads = Vec::with_capacity(count);
    for _ in 0..count {
        let len = *b.first().ok_or(short.clone())? as usize;
        let end = 1 + len + 8 + 32;
        if b.len() < end || len == 0 {
            return Err(short);
        }
        let sender = std::str::from_utf8(&b[1..1 + len]).map_err(|_| CheckpointError::BadHeads("a sender's code"))?;
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&b[1 + len + 8..end]);
        heads.push(Head {
            sender: sender.to_string(),
            seq: u64::from_be_bytes(b[1 + len..1 + len + 8].try_into().unwrap_or_default()),
            hash,
        });
        b = &b[end..];
    }
    if !b.is_empty() {
        return Err(CheckpointError::BadHeads("bytes after the last head"));
    }
    Ok(heads)
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
        let bytes = [self.checkpoint.context(), &self.checkpoint.to_bytes()?].concat();
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
