//! Versioned wire and file formats of ADI.
//!
//! Everything that crosses between nodes or sits in a file that another party reads is defined
//! here, with an explicit version: the signed [`envelope`] and its federation [`batch`], the
//! [`payload`] carried inside an envelope, what a [`commit`] states about a line's members, and the roster and member card [`files`]. Domain types
//! live in `adi-core`; conversions between the two are explicit, so a refactor of the domain cannot
//! change a byte on the wire by accident. `docs/WIRE.md` specifies these formats byte by byte.

#![forbid(unsafe_code)]

pub mod batch;
pub mod codec;
pub mod commit;
pub mod content;
pub mod envelope;
pub mod files;
pub mod payload;

pub use envelope::{Envelope, EnvelopeBody, EnvelopeHash, LineId, VerifiedEnvelope};
