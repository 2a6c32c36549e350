//! Federation batches: several envelopes in one request, and the per-envelope verdicts that
//! answer them.
//!
//! A request body is `"ADIB"`, a version byte, a 32-bit count and that many length-prefixed
//! envelopes. The answer is JSON ([`BatchReply`]) with one [`Verdict`] per envelope, in order. A
//! verdict of `accepted` or `duplicate` means the envelope is durably committed at the receiver.

use serde::{Deserialize, Serialize};

use crate::codec::{DecodeError, Reader, Writer};

const MAGIC: &[u8; 4] = b"ADIB";
const VERSION: u8 = 1;

/// Encodes envelopes (already encoded and signed) into one batch body.
pub fn encode_batch<'a>(envelopes: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let envelopes: Vec<&[u8]> = envelopes.into_iter().collect();
    let mut w = Writer::new();
    w.raw(MAGIC);
    w.u8(VERSION);
    w.u32(u32::try_from(envelopes.len()).expect("batch length is bounded by a limit"));
    for e in envelopes {
        w.bytes32(e);
    }
    w.into_bytes()
}

/// Splits a batch body into its envelopes' bytes, refusing more than `len_max` envelopes or an
/// envelope over `envelope_bytes_max`.
pub fn decode_batch(bytes: &[u8], len_max: usize, envelope_bytes_max: usize) -> Result<Vec<&[u8]>, DecodeError> {
    let mut r = Reader::new(bytes);
    if r.take(4, "batch magic")? != MAGIC {
        return Err(DecodeError::BadMagic { expected: "ADIB" });
    }
    let version = r.u8("batch version")?;
    if version != VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    let count = r.u32("batch count")? as usize;
    if count > len_max {
        return Err(DecodeError::TooLong { field: "batch", len: count, max: len_max });
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push(r.bytes32("envelope", envelope_bytes_max)?);
    }
    r.finish()?;
    Ok(out)
}

/// What a receiving node did with one envelope of a batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Verdict {
    /// Verified, accepted and durably committed.
    Accepted,
    /// The same envelope was committed before; nothing changed.
    Duplicate,
    /// Refused for good; the sender must not retry it.
    Rejected { reason: String },
    /// Not accepted now (for example, the line is not known here yet); retry later.
    Deferred { reason: String },
}

/// The JSON answer to a batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchReply {
    pub version: u8,
    pub verdicts: Vec<Verdict>,
}

impl BatchReply {
    pub fn new(verdicts: Vec<Verdict>) -> Self {
        BatchReply { version: VERSION, verdicts }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_limits() {
        let a = b"first".to_vec();
        let b = b"second".to_vec();
        let body = encode_batch([a.as_slice(), b.as_slice()]);
        assert_eq!(decode_batch(&body, 10, 100).unwrap(), vec![a.as_slice(), b.as_slice()]);
        assert!(matches!(decode_batch(&body, 1, 100), Err(DecodeError::TooLong { field: "batch", .. })));
        assert!(matches!(decode_batch(&body, 10, 5), Err(DecodeError::TooLong { field: "envelope", .. })));
        for n in 0..body.len() {
            assert!(decode_batch(&body[..n], 10, 100).is_err());
        }
        let mut trailing = body.clone();
        trailing.push(0);
        assert_eq!(decode_batch(&trailing, 10, 100), Err(DecodeError::Trailing(1)));
    }
}
