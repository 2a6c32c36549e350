//! The record of ADI: what makes a line's history provable and impossible to rewrite unnoticed.
//!
//! Each node keeps, per line, an append-only log of the envelope hashes it accepted, in order,
//! hashed as an RFC 9162 Merkle tree ([`merkle`]); it signs checkpoints of that log and peers
//! countersign them ([`checkpoint`]). `docs/RECORD.md` specifies every byte hashed or signed.

pub mod bundle;
pub mod checkpoint;
pub mod decision;
pub mod merkle;

pub use checkpoint::{Checkpoint, CheckpointError, Head, SignedCheckpoint};
pub use merkle::{Hash, ProofError};
