//! Receipts: a recipient's signed answer to one envelope.
//!
//! A receipt travels as an envelope on the line, signed by the answering member's key like any
//! other, and names the exact envelope it answers by hash, sender and sequence number.

use adi_wire::EnvelopeHash;

use crate::error::CoreError;
use crate::limits::Limits;
use crate::roster::MemberCode;
use crate::text::{check_text, TextKind};

/// What a receipt says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReceiptKind {
    /// The recipient's node decrypted the message and committed it: sent by the node itself.
    Decrypted,
    /// An operator opened the message.
    Seen,
    Acknowledged,
    /// Declined, with a reason.
    Declined,
    /// The peer's node answered a link test.
    LinkTestAnswer,
}

impl ReceiptKind {
    pub fn parse(s: &str) -> Option<ReceiptKind> {
        match s {
            "decrypted" => Some(ReceiptKind::Decrypted),
            "seen" => Some(ReceiptKind::Seen),
            "acknowledged" => Some(ReceiptKind::Acknowledged),
            "declined" => Some(ReceiptKind::Declined),
            "link_test_answer" => Some(ReceiptKind::LinkTestAnswer),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            ReceiptKind::Decrypted => "decrypted",
            ReceiptKind::Seen => "seen",
            ReceiptKind::Acknowledged => "acknowledged",
            ReceiptKind::Declined => "declined",
            ReceiptKind::LinkTestAnswer => "link_test_answer",
        }
    }

    /// Whether this answer settles an acknowledgement deadline.
    pub fn settles(&self) -> bool {
        matches!(self, ReceiptKind::Acknowledged | ReceiptKind::Declined)
    }
}

/// The envelope a receipt answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answered {
    pub hash: EnvelopeHash,
    pub sender: MemberCode,
    pub seq: u64,
}

/// A checked receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub kind: ReceiptKind,
    pub answers: Answered,
    pub reason: Option<String>,
}

/// Checks the reason of a receipt or of an answer to a decision, on sending and on receiving: at
/// most five subjects long, and prose that may run over several lines (`text`).
pub fn check_reason(reason: &str, limits: &Limits) -> Result<(), CoreError> {
    let max = limits.subject_chars_max * 5;
    if reason.chars().count() > max {
        return Err(CoreError::invalid("reason_too_long", format!("a reason is at most {max} characters")));
    }
    check_text("reason", reason, TextKind::Lines)
}
