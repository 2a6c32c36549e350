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

/// Why a receiving node refused or deferred an envelope: a code a node acts on, beside the reason
/// in words for operators. Codes are part of the batch reply's version; a code this node does not
/// know (a newer peer's) reads as [`RefusalCode::Unknown`], and so does a verdict without one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// The envelope, its content or its payload cannot be decoded.
    Malformed,
    /// The envelope's sender is not the member whose connection carried it.
    Relayed,
    /// The sender is not in the roster.
    NotInRoster,
    /// The sender is suspended by the roster version the receiver holds.
    Suspended,
    /// A signature does not verify with the sender's roster key.
    BadSignature,
    /// The envelope's content type is not one lines carry.
    UnsupportedContent,
    /// A line set-up (or the Welcome it carries) is refused.
    BadLineSetup,
    /// The receiver holds the most lines it may.
    LinesFull,
    /// The line is not known at the receiver yet.
    UnknownLine,
    /// The receiver is not on the line.
    RecipientNotOnLine,
    /// The receiver was taken off the line; the Welcome that adds it again has not arrived.
    AwaitingWelcome,
    /// The receiver cannot take the line's set-up again yet.
    NotReady,
    /// The sender is not a member of the line at the envelope's epoch.
    NotMember,
    /// The envelope is from an epoch the receiver has not reached; it may be held until the
    /// commit arrives.
    EpochAhead,
    /// As [`RefusalCode::EpochAhead`], and the receiver holds the most envelopes it may for the
    /// line (`held_envelopes_max`).
    HeldFull,
    /// A proposal crossed by the home member's commit.
    Outdated,
    /// A proposal the group refuses.
    BadProposal,
    /// A commit names a proposal that has not arrived yet.
    MissingProposal,
    /// The receiver cannot decrypt the envelope: it raises an alarm, and so does the sender.
    Undecryptable,
    /// The MLS sender is not the envelope's sender.
    SenderMismatch,
    /// A commit from a member that is not the line's home member.
    NotHome,
    /// A leaf change (an update proposal, a commit's update path) that gives a member another
    /// identity or a key that is not its roster key.
    ForgedLeaf,
    /// The envelope names an epoch its MLS message is not of.
    EpochMismatch,
    /// The sender was taken off the line, and the envelope comes after the place its removal
    /// fixed.
    Removed,
    /// A commit that adds a member to a direct line.
    DirectLine,
    /// The sender reached a quota the receiver keeps for each peer; the receiver raises a
    /// `quota` alarm naming it.
    OverQuota,
    /// The sequence number is out of order or too far ahead.
    Sequence,
    /// The content breaks a rule of its kind (a message, a receipt, a decision, a translation).
    ContentRefused,
    /// Another envelope holds the same line, sender and sequence number.
    Conflict,
    /// The envelope contradicts the sender's chain as stored, under its signature: kept as
    /// evidence.
    Tamper,
    /// What the envelope answers does not match what the receiver stores (a receipt's message).
    Mismatch,
    /// The same envelope is being committed; its verdict comes with its copy's.
    BeingCommitted,
    /// The receiver cannot read its store.
    StoreUnavailable,
    /// The receiver did not decide (it answers this only if a commit returned too few outcomes).
    Undecided,
    /// A code this node does not know.
    #[default]
    #[serde(other)]
    Unknown,
}

impl RefusalCode {
    /// Every code, in the order of the enum.
    pub const ALL: [RefusalCode; 35] = [
        RefusalCode::Malformed,
        RefusalCode::Relayed,
        RefusalCode::NotInRoster,
        RefusalCode::Suspended,
        RefusalCode::BadSignature,
        RefusalCode::UnsupportedContent,
        RefusalCode::BadLineSetup,
        RefusalCode::LinesFull,
        RefusalCode::UnknownLine,
        RefusalCode::RecipientNotOnLine,
        RefusalCode::AwaitingWelcome,
        RefusalCode::NotReady,
        RefusalCode::NotMember,
        RefusalCode::EpochAhead,
        RefusalCode::HeldFull,
        RefusalCode::Outdated,
        RefusalCode::BadProposal,
        RefusalCode::MissingProposal,
        RefusalCode::Undecryptable,
        RefusalCode::SenderMismatch,
        RefusalCode::NotHome,
        RefusalCode::ForgedLeaf,
        RefusalCode::EpochMismatch,
        RefusalCode::Removed,
        RefusalCode::DirectLine,
        RefusalCode::OverQuota,
        RefusalCode::Sequence,
        RefusalCode::ContentRefused,
        RefusalCode::Conflict,
        RefusalCode::Tamper,
        RefusalCode::Mismatch,
        RefusalCode::BeingCommitted,
        RefusalCode::StoreUnavailable,
        RefusalCode::Undecided,
        RefusalCode::Unknown,
    ];

    /// The code's name on the wire and in stores (`not_member`).
    pub fn as_str(&self) -> &'static str {
        match self {
            RefusalCode::Malformed => "malformed",
            RefusalCode::Relayed => "relayed",
            RefusalCode::NotInRoster => "not_in_roster",
            RefusalCode::Suspended => "suspended",
            RefusalCode::BadSignature => "bad_signature",
            RefusalCode::UnsupportedContent => "unsupported_content",
            RefusalCode::BadLineSetup => "bad_line_setup",
            RefusalCode::LinesFull => "lines_full",
            RefusalCode::UnknownLine => "unknown_line",
            RefusalCode::RecipientNotOnLine => "recipient_not_on_line",
            RefusalCode::AwaitingWelcome => "awaiting_welcome",
            RefusalCode::NotReady => "not_ready",
            RefusalCode::NotMember => "not_member",
            RefusalCode::EpochAhead => "epoch_ahead",
            RefusalCode::HeldFull => "held_full",
            RefusalCode::Outdated => "outdated",
            RefusalCode::BadProposal => "bad_proposal",
            RefusalCode::MissingProposal => "missing_proposal",
            RefusalCode::Undecryptable => "undecryptable",
            RefusalCode::SenderMismatch => "sender_mismatch",
            RefusalCode::NotHome => "not_home",
            RefusalCode::ForgedLeaf => "forged_leaf",
            RefusalCode::EpochMismatch => "epoch_mismatch",
            RefusalCode::Removed => "removed",
            RefusalCode::DirectLine => "direct_line",
            RefusalCode::OverQuota => "over_quota",
            RefusalCode::Sequence => "sequence",
            RefusalCode::ContentRefused => "content_refused",
            RefusalCode::Conflict => "conflict",
            RefusalCode::Tamper => "tamper",
            RefusalCode::Mismatch => "mismatch",
            RefusalCode::BeingCommitted => "being_committed",
            RefusalCode::StoreUnavailable => "store_unavailable",
            RefusalCode::Undecided => "undecided",
            RefusalCode::Unknown => "unknown",
        }
    }

    /// The code named `s`; a name no code has is `None` (the wire reads it as `Unknown`).
    pub fn parse(s: &str) -> Option<RefusalCode> {
        RefusalCode::ALL.into_iter().find(|c| c.as_str() == s)
    }
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
    Rejected {
        #[serde(default)]
        code: RefusalCode,
        reason: String,
    },
    /// Not accepted now (for example, the line is not known here yet); retry later.
    Deferred {
        #[serde(default)]
        code: RefusalCode,
        reason: String,
    },
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
    fn every_refusal_code_round_trips_and_an_unknown_one_reads_as_unknown() {
        let mut names = std::collections::HashSet::new();
        for code in RefusalCode::ALL {
            let rejected = Verdict::Rejected { code, reason: format!("{code:?}") };
            let json = serde_json::to_string(&BatchReply::new(vec![rejected.clone()])).unwrap();
            let back: BatchReply = serde_json::from_str(&json).unwrap();
            assert_eq!(back.verdicts, vec![rejected], "{json}");
            let name = serde_json::to_string(&code).unwrap();
            assert!(names.insert(name.clone()), "{name} is the name of two codes");
            assert_eq!(name, format!("\"{}\"", code.as_str()), "the stored name is the wire name");
            assert_eq!(RefusalCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(names.len(), RefusalCode::ALL.len());
        let newer = r#"{"version":1,"verdicts":[{"status":"deferred","code":"some_later_code","reason":"r"}]}"#;
        let reply: BatchReply = serde_json::from_str(newer).unwrap();
        assert_eq!(reply.verdicts, vec![Verdict::Deferred { code: RefusalCode::Unknown, reason: "r".into() }]);
        let older = r#"{"version":1,"verdicts":[{"status":"rejected","reason":"r"}]}"#;
        let reply: BatchReply = serde_json::from_str(older).unwrap();
        assert_eq!(reply.verdicts, vec![Verdict::Rejected { code: RefusalCode::Unknown, reason: "r".into() }]);
    }

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
