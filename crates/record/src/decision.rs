//! What the answers to a decision come to: one rule (`docs/RECORD.md`, "Decisions"), used by the
//! node for its API and console and by `adi verify` for a bundle, so that the two never give one
//! decision two states.
//!
//! Everything here is read from signed data: an answer's order is its signed place in its
//! author's chain (the sequence number of the envelope that carries it), never the order in
//! which a node stored answers or a bundle lists them.

use adi_wire::EnvelopeHash;

use crate::merkle::Hash;

/// A proposal as its signed content gives it.
#[derive(Clone, Copy, Debug)]
pub struct Proposal<'a> {
    pub proposer: &'a str,
    /// The proposer's sequence number for the proposal's envelope.
    pub seq: u64,
    /// SHA-256 of the exact text.
    pub text_sha256: &'a Hash,
    /// The members whose concurrence it needs.
    pub parties: &'a [String],
}

/// One member's signed answer to a decision.
#[derive(Clone, Copy, Debug)]
pub struct Answer<'a> {
    pub member: &'a str,
    /// The answering member's sequence number for the answer's envelope.
    pub seq: u64,
    /// SHA-256 of the text the member answered.
    pub text_sha256: &'a Hash,
    pub concur: bool,
}

/// What a decision's answers come to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Every party concurred with the exact text, and no later decision that replaces it is
    /// final.
    Final,
    /// A party's counted answer declines it.
    Declined,
    /// A final decision names it as the one it replaces.
    Superseded(EnvelopeHash),
    /// Neither: the parties whose concurrence is missing.
    Open(Vec<String>),
}

impl State {
    pub fn as_str(&self) -> &'static str {
        match self {
            State::Final => "final",
            State::Declined => "declined",
            State::Superseded(_) => "superseded",
            State::Open(_) => "open",
        }
    }
}

/// Each party's counted answer, in the order of `parties`: its answer at the highest signed place
/// over the decision's exact text. Proposing is the proposer's concurrence at the proposal's
/// place when the proposer is a party, so a later answer of its own overrides it. An answer over
/// another text, or from a member that is not a party, does not count.
pub fn counted(proposal: &Proposal<'_>, answers: &[Answer<'_>]) -> Vec<(String, bool)> {
    proposal
        .parties
        .iter()
        .filter_map(|party| {
            let own = (proposal.proposer == party).then_some((proposal.seq, true));
            answers
                .iter()
                .filter(|a| a.member == party && a.text_sha256 == proposal.text_sha256)
                .map(|a| (a.seq, a.concur))
                .chain(own)
                .max_by_key(|(seq, _)| *seq)
                .map(|(_, concur)| (party.clone(), concur))
        })
        .collect()
}

/// Which of the decisions naming one as the one they replace (`(id, signed time, final)` each)
/// replaces it: a final one, the earliest signed (then the lowest id); `None` while none is final.
pub fn replaced_by(replacements: &[(EnvelopeHash, u64, bool)]) -> Option<EnvelopeHash> {
    replacements.iter().filter(|(_, _, done)| *done).min_by_key(|(id, ms, _)| (*ms, id.0)).map(|(id, _, _)| *id)
}

/// The state of a decision given its counted answers and the decisions that name it as the one
/// they replace (`(id, signed time, final)` each). A later decision replaces this one only once
/// it is final itself: a proposal to replace a decision changes nothing until every party of the
/// new one concurred. Of several final ones, the earliest signed (then the lowest id) is named.
pub fn state(proposal: &Proposal<'_>, answers: &[Answer<'_>], replacements: &[(EnvelopeHash, u64, bool)]) -> State {
    if let Some(by) = replaced_by(replacements) {
        return State::Superseded(by);
    }
    let counted = counted(proposal, answers);
    if counted.iter().any(|(_, concur)| !concur) {
        return State::Declined;
    }
    let missing: Vec<String> =
        proposal.parties.iter().filter(|p| !counted.iter().any(|(m, c)| m == *p && *c)).cloned().collect();
    if missing.is_empty() {
        State::Final
    } else {
        State::Open(missing)
    }
}

/// Whether a decision is final by its own answers (whatever replaces it): what a decision that
/// names another must be to replace it.
pub fn concluded(proposal: &Proposal<'_>, answers: &[Answer<'_>]) -> bool {
    state(proposal, answers, &[]) == State::Final
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parties(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    const TEXT: Hash = [1; 32];
    const OTHER: Hash = [2; 32];

    fn answer(member: &str, seq: u64, concur: bool) -> Answer<'_> {
        Answer { member, seq, text_sha256: &TEXT, concur }
    }

    #[test]
    fn the_answer_at_the_highest_signed_place_counts_whatever_order_they_are_given_in() {
        let p = parties(&["PH", "VN"]);
        let proposal = Proposal { proposer: "PH", seq: 3, text_sha256: &TEXT, parties: &p };
        let declined_then_concurred = [answer("VN", 9, true), answer("VN", 7, false)];
        assert_eq!(state(&proposal, &declined_then_concurred, &[]), State::Final);
        let concurred_then_declined = [answer("VN", 7, true), answer("VN", 9, false)];
        assert_eq!(state(&proposal, &concurred_then_declined, &[]), State::Declined);
        let mut reversed = concurred_then_declined;
        reversed.reverse();
        assert_eq!(state(&proposal, &reversed, &[]), State::Declined);
    }

    #[test]
    fn an_answer_over_another_text_or_from_a_non_party_does_not_count() {
        let p = parties(&["PH", "VN"]);
        let proposal = Proposal { proposer: "PH", seq: 1, text_sha256: &TEXT, parties: &p };
        let answers = [Answer { member: "VN", seq: 4, text_sha256: &OTHER, concur: true }, answer("CN", 5, false)];
        assert_eq!(state(&proposal, &answers, &[]), State::Open(vec!["VN".into()]));
    }

    #[test]
    fn a_proposer_outside_the_parties_neither_concurs_nor_is_missing() {
        let p = parties(&["VN", "MY"]);
        let proposal = Proposal { proposer: "PH", seq: 1, text_sha256: &TEXT, parties: &p };
        assert_eq!(state(&proposal, &[answer("VN", 2, true)], &[]), State::Open(vec!["MY".into()]));
        assert_eq!(state(&proposal, &[answer("VN", 2, true), answer("MY", 8, true)], &[]), State::Final);
    }

    #[test]
    fn a_proposer_that_answers_later_overrides_its_proposal() {
        let p = parties(&["PH", "VN"]);
        let proposal = Proposal { proposer: "PH", seq: 5, text_sha256: &TEXT, parties: &p };
        assert_eq!(state(&proposal, &[answer("PH", 6, false), answer("VN", 2, true)], &[]), State::Declined);
    }

    #[test]
    fn only_a_final_replacement_supersedes() {
        let p = parties(&["PH", "VN"]);
        let proposal = Proposal { proposer: "PH", seq: 1, text_sha256: &TEXT, parties: &p };
        let answers = [answer("VN", 2, true)];
        let (a, b) = (EnvelopeHash([7; 32]), EnvelopeHash([8; 32]));
        assert_eq!(state(&proposal, &answers, &[(a, 10, false)]), State::Final);
        assert_eq!(state(&proposal, &answers, &[(a, 10, false), (b, 20, true)]), State::Superseded(b));
        assert_eq!(state(&proposal, &answers, &[(b, 20, true), (a, 10, true)]), State::Superseded(a));
    }
}
