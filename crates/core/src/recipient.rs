//! Where one of this node's envelopes stands with each recipient, and what moves it: the
//! recipient state machine (sent → delivered → seen → acknowledged or declined; refused; a link
//! test answered) and the checks an item that names another stored item must pass (a receipt's
//! message, a translation's original, a concurrence's decision).
//!
//! These are rules, decided here; the store reads what it holds in its write transaction, asks
//! these functions, and persists the answer, so that every store applies the same rules.

use adi_wire::batch::RefusalCode;
use adi_wire::LineId;

use crate::receipt::{Receipt, ReceiptKind};
use crate::roster::MemberCode;

/// Where a message stands with one recipient, as the sending node records it: `sent` (committed
/// and queued), `delivered` (committed at the recipient's node), `seen`, `acknowledged` or
/// `declined` (by the recipient's receipts), `refused` (the recipient's node refused it), or
/// `answered` (a link test the recipient's node answered).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecipientState {
    Sent,
    Delivered,
    Seen,
    Acknowledged,
    Declined,
    Refused,
    Answered,
}

impl RecipientState {
    pub const ALL: [RecipientState; 7] = [
        RecipientState::Sent,
        RecipientState::Delivered,
        RecipientState::Seen,
        RecipientState::Acknowledged,
        RecipientState::Declined,
        RecipientState::Refused,
        RecipientState::Answered,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            RecipientState::Sent => "sent",
            RecipientState::Delivered => "delivered",
            RecipientState::Seen => "seen",
            RecipientState::Acknowledged => "acknowledged",
            RecipientState::Declined => "declined",
            RecipientState::Refused => "refused",
            RecipientState::Answered => "answered",
        }
    }

    pub fn parse(s: &str) -> Option<RecipientState> {
        RecipientState::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether the recipient's node holds the message.
    pub fn reached(&self) -> bool {
        matches!(
            self,
            RecipientState::Delivered
                | RecipientState::Seen
                | RecipientState::Acknowledged
                | RecipientState::Declined
                | RecipientState::Answered
        )
    }

    /// Whether the recipient has answered for good: nothing it says later changes the state.
    pub fn answered(&self) -> bool {
        matches!(self, RecipientState::Acknowledged | RecipientState::Declined)
    }
}

impl std::fmt::Display for RecipientState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One recipient's progress with one envelope: its state, when each step was first known, and
/// the last word on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientProgress {
    pub state: RecipientState,
    pub delivered_ms: Option<u64>,
    /// When the recipient's node signed its receipt saying it decrypted the message.
    pub decrypted_ms: Option<u64>,
    pub seen_ms: Option<u64>,
    pub acknowledged_ms: Option<u64>,
    pub declined_ms: Option<u64>,
    /// Why the recipient's node refused it, why delivery is waiting, or why it was declined.
    pub detail: Option<String>,
    /// The recipient node's code for refusing it, when it did.
    pub refusal: Option<RefusalCode>,
}

/// What can happen to an envelope at one recipient, as the sending node learns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecipientEvent<'a> {
    /// The recipient's node committed it (its verdict on a batch), at `at_ms` on this node's clock.
    Delivered { at_ms: u64 },
    /// The recipient's node refused it for good.
    Refused { code: RefusalCode, reason: &'a str },
    /// The recipient's node did not take it yet and will be asked again.
    Waiting { reason: &'a str },
    /// A receipt from the recipient, signed at `at_ms` on its clock (for a link test's answer:
    /// received at `at_ms` on this node's clock, where the round trip is measured).
    Receipt { receipt: &'a Receipt, at_ms: u64 },
}

impl RecipientEvent<'_> {
    /// The state this event is recorded under in the node's event log, when it moves the state.
    pub fn label(&self) -> &'static str {
        match self {
            RecipientEvent::Delivered { .. } => RecipientState::Delivered.as_str(),
            RecipientEvent::Refused { .. } => RecipientState::Refused.as_str(),
            RecipientEvent::Waiting { .. } => "waiting",
            RecipientEvent::Receipt { receipt, .. } => receipt.kind.as_str(),
        }
    }

    /// Whether operators follow this event as a change of state (a wait is only a detail).
    pub fn is_state_change(&self) -> bool {
        !matches!(self, RecipientEvent::Waiting { .. })
    }
}

impl RecipientProgress {
    /// A message committed and queued for the recipient.
    pub fn sent() -> RecipientProgress {
        RecipientProgress {
            state: RecipientState::Sent,
            delivered_ms: None,
            decrypted_ms: None,
            seen_ms: None,
            acknowledged_ms: None,
            declined_ms: None,
            detail: None,
            refusal: None,
        }
    }

    /// The progress after `event`, or `None` when the event changes nothing.
    ///
    /// The rules: the first time of each step stands; a message moves forward only (sent →
    /// delivered → seen), and an acknowledgement or a decline is final, as is a refusal until
    /// the recipient answers after all; a receipt of any kind shows the recipient's node holds
    /// the message, so it counts as delivered from then if nothing said so earlier.
    pub fn after(&self, event: &RecipientEvent<'_>) -> Option<RecipientProgress> {
        use RecipientState as S;
        let mut next = self.clone();
        match *event {
            RecipientEvent::Delivered { at_ms } => {
                if self.state != S::Sent {
                    return None;
                }
                next.state = S::Delivered;
                next.delivered_ms = Some(at_ms);
                next.detail = None;
            }
            RecipientEvent::Refused { code, reason } => {
                if self.state.answered() {
                    return None;
                }
                next.state = S::Refused;
                next.detail = Some(reason.to_string());
                next.refusal = Some(code);
            }
            RecipientEvent::Waiting { reason } => {
                if self.state != S::Sent {
                    return None;
                }
                next.detail = Some(reason.to_string());
            }
            RecipientEvent::Receipt { receipt, at_ms } => {
                next.delivered_ms = self.delivered_ms.or(Some(at_ms));
                match receipt.kind {
                    ReceiptKind::Decrypted => {
                        next.decrypted_ms = self.decrypted_ms.or(Some(at_ms));
                        if self.state == S::Sent {
                            next.state = S::Delivered;
                        }
                    }
                    ReceiptKind::Seen => {
                        next.seen_ms = self.seen_ms.or(Some(at_ms));
                        if matches!(self.state, S::Sent | S::Delivered) {
                            next.state = S::Seen;
                        }
                    }
                    ReceiptKind::Acknowledged | ReceiptKind::Declined if self.state.answered() => return None,
                    ReceiptKind::Acknowledged => {
                        next.state = S::Acknowledged;
                        next.acknowledged_ms = Some(at_ms);
                    }
                    ReceiptKind::Declined => {
                        next.state = S::Declined;
                        next.declined_ms = Some(at_ms);
                        next.detail = receipt.reason.clone();
                    }
                    ReceiptKind::LinkTestAnswer => next.state = S::Answered,
                }
            }
        }
        (next != *self).then_some(next)
    }
}

/// What a store holds of an envelope that another item names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedEnvelope<'a> {
    pub line: LineId,
    pub sender: &'a str,
    pub seq: u64,
    /// Its kind as stored (`Content::kind`).
    pub kind: &'a str,
}

/// Checks that a receipt on `line` answers the envelope held here as it claims: on the same line,
/// by the same sender and sequence, and of a kind this receipt may answer. `Err` says why not.
pub fn check_receipt_answers(line: LineId, receipt: &Receipt, held: &NamedEnvelope<'_>) -> Result<(), &'static str> {
    // A chunk of an attached file is answered as decrypted, and by nothing else.
    let fits = match receipt.kind {
        ReceiptKind::LinkTestAnswer => held.kind == "link_test",
        ReceiptKind::Decrypted => held.kind == "message" || held.kind == "chunk",
        _ => held.kind == "message",
    };
    if held.line != line {
        Err("the answered envelope is on another line")
    } else if held.sender != receipt.answers.sender.as_str() || held.seq != receipt.answers.seq {
        Err("the answered envelope has another sender or sequence number")
    } else if !fits {
        Err("a receipt of this kind cannot answer that envelope")
    } else {
        Ok(())
    }
}

/// Checks that a translation on `line` names a message of its own line.
pub fn check_translation_original(line: LineId, original: &NamedEnvelope<'_>) -> Result<(), &'static str> {
    if original.line != line || original.kind != "message" {
        Err("a translation names a message of its own line")
    } else {
        Ok(())
    }
}

/// Checks that an answer by `member` on `line` to a decision held here (on `decision_line`,
/// between `parties`) comes from one of its parties, on its line.
pub fn check_concurrence(
    line: LineId,
    member: &MemberCode,
    decision_line: LineId,
    parties: &[&str],
) -> Result<(), String> {
    if decision_line != line {
        Err("the decision answered is on another line".to_string())
    } else if !parties.contains(&member.as_str()) {
        Err(format!("{member} is not a party to the decision"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use adi_wire::EnvelopeHash;

    use super::*;
    use crate::receipt::Answered;

    fn receipt(kind: ReceiptKind, reason: Option<&str>) -> Receipt {
        let answers = Answered { hash: EnvelopeHash([1; 32]), sender: MemberCode::parse("PH").unwrap(), seq: 3 };
        Receipt { kind, answers, reason: reason.map(str::to_string) }
    }

    fn on(p: &RecipientProgress, kind: ReceiptKind, at_ms: u64) -> Option<RecipientProgress> {
        let r = receipt(kind, (kind == ReceiptKind::Declined).then_some("not ours"));
        p.after(&RecipientEvent::Receipt { receipt: &r, at_ms })
    }

    #[test]
    fn a_message_moves_forward_and_each_step_keeps_its_first_time() {
        let sent = RecipientProgress::sent();
        let delivered = sent.after(&RecipientEvent::Delivered { at_ms: 10 }).unwrap();
        assert_eq!((delivered.state, delivered.delivered_ms), (RecipientState::Delivered, Some(10)));
        assert_eq!(delivered.after(&RecipientEvent::Delivered { at_ms: 11 }), None, "delivered once");
        let decrypted = on(&delivered, ReceiptKind::Decrypted, 12).unwrap();
        assert_eq!(
            (decrypted.state, decrypted.decrypted_ms, decrypted.delivered_ms),
            (RecipientState::Delivered, Some(12), Some(10))
        );
        assert_eq!(on(&decrypted, ReceiptKind::Decrypted, 13), None, "a second decrypted receipt changes nothing");
        let seen = on(&decrypted, ReceiptKind::Seen, 14).unwrap();
        assert_eq!((seen.state, seen.seen_ms), (RecipientState::Seen, Some(14)));
        // A decrypted receipt arriving after the seen one does not move the state back.
        let late = on(&on(&sent, ReceiptKind::Seen, 20).unwrap(), ReceiptKind::Decrypted, 19).unwrap();
        assert_eq!((late.state, late.decrypted_ms, late.delivered_ms), (RecipientState::Seen, Some(19), Some(20)));
        let acked = on(&seen, ReceiptKind::Acknowledged, 15).unwrap();
        assert_eq!((acked.state, acked.acknowledged_ms), (RecipientState::Acknowledged, Some(15)));
        // Final: neither a second answer, nor a decline, nor a refusal, nor a seen moves it back.
        assert_eq!(on(&acked, ReceiptKind::Acknowledged, 16), None);
        assert_eq!(on(&acked, ReceiptKind::Declined, 16), None);
        let refused = RecipientEvent::Refused { code: RefusalCode::NotMember, reason: "no" };
        assert_eq!(acked.after(&refused), None);
        assert_eq!(on(&acked, ReceiptKind::Seen, 17), None, "seen already, and answered");
    }

    #[test]
    fn a_decline_keeps_its_reason_and_a_refusal_its_code() {
        let sent = RecipientProgress::sent();
        let declined = on(&sent, ReceiptKind::Declined, 5).unwrap();
        assert_eq!(declined.state, RecipientState::Declined);
        assert_eq!((declined.declined_ms, declined.delivered_ms), (Some(5), Some(5)));
        assert_eq!(declined.detail.as_deref(), Some("not ours"));
        let refused = sent
            .after(&RecipientEvent::Refused {
                code: RefusalCode::RecipientNotOnLine,
                reason: "CN is no longer on line",
            })
            .unwrap();
        assert_eq!((refused.state, refused.refusal), (RecipientState::Refused, Some(RefusalCode::RecipientNotOnLine)));
        // A wait is a detail of a message not yet delivered, and of nothing else.
        let waiting = sent.after(&RecipientEvent::Waiting { reason: "line unknown there yet" }).unwrap();
        assert_eq!((waiting.state, waiting.detail.as_deref()), (RecipientState::Sent, Some("line unknown there yet")));
        assert_eq!(refused.after(&RecipientEvent::Waiting { reason: "x" }), None);
        assert!(!RecipientEvent::Waiting { reason: "x" }.is_state_change());
        // A link test's answer.
        let answered = on(&sent, ReceiptKind::LinkTestAnswer, 7).unwrap();
        assert_eq!((answered.state, answered.delivered_ms), (RecipientState::Answered, Some(7)));
    }

    #[test]
    fn every_state_reads_back_from_its_name() {
        for s in RecipientState::ALL {
            assert_eq!(RecipientState::parse(s.as_str()), Some(s));
        }
        assert_eq!(RecipientState::parse("lost"), None);
    }

    #[test]
    fn items_naming_other_items_are_checked_against_what_is_held() {
        let line = LineId([1; 16]);
        let r = receipt(ReceiptKind::Acknowledged, None);
        let held = NamedEnvelope { line, sender: "PH", seq: 3, kind: "message" };
        assert_eq!(check_receipt_answers(line, &r, &held), Ok(()));
        assert!(check_receipt_answers(LineId([2; 16]), &r, &held).is_err());
        assert!(check_receipt_answers(line, &r, &NamedEnvelope { seq: 4, ..held.clone() }).is_err());
        assert!(check_receipt_answers(line, &r, &NamedEnvelope { kind: "link_test", ..held.clone() }).is_err());
        assert_eq!(check_translation_original(line, &held), Ok(()));
        assert!(check_translation_original(line, &NamedEnvelope { kind: "receipt", ..held.clone() }).is_err());
        let sg = MemberCode::parse("SG").unwrap();
        assert_eq!(check_concurrence(line, &sg, line, &["PH", "SG"]), Ok(()));
        assert!(check_concurrence(line, &sg, line, &["PH", "MY"]).unwrap_err().contains("not a party"));
        assert!(check_concurrence(line, &sg, LineId([2; 16]), &["SG"]).is_err());
    }
}
