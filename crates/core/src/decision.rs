//! Mutual decisions: an exact text proposed on a line, and each required party's signed
//! concurrence with, or refusal of, that exact text.
//!
//! A decision is final only when every required party has concurred over the SHA-256 of its
//! exact text; a changed text is a new decision that names the one it replaces, and needs
//! concurrence again. Every decision and answer travels as signed content inside the line's
//! encryption, so each is its author's signature.

use adi_wire::EnvelopeHash;
use sha2::{Digest, Sha256};

use crate::error::CoreError;
use crate::limits::Limits;
use crate::line::Line;
use crate::roster::MemberCode;
use crate::text::{check_text, TextKind};

/// A decision as proposed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub text: String,
    /// The members whose concurrence makes it final.
    pub parties: Vec<MemberCode>,
    pub deadline_s: Option<u64>,
    /// The decision this version replaces.
    pub supersedes: Option<EnvelopeHash>,
}

impl Decision {
    /// SHA-256 of the exact text (UTF-8): what each party's answer names.
    pub fn text_sha256(&self) -> [u8; 32] {
        text_sha256(&self.text)
    }

    /// Checks a decision against its line and the limits.
    pub fn check(&self, line: &Line, limits: &Limits) -> Result<(), CoreError> {
        if self.text.trim().is_empty() {
            return Err(CoreError::invalid("empty_text", "a decision has a text"));
        }
        if self.text.len() > limits.body_bytes_max {
            return Err(CoreError::invalid(
                "text_too_long",
                format!("a decision's text is at most {} bytes", limits.body_bytes_max),
            ));
        }
        check_text("text", &self.text, TextKind::Lines)?;
        if self.deadline_s.is_some_and(|d| d > limits.decision_deadline_s_max) {
            return Err(CoreError::invalid(
                "bad_deadline",
                format!("a decision's deadline is at most {} seconds", limits.decision_deadline_s_max),
            ));
        }
        if self.parties.is_empty() {
            return Err(CoreError::invalid("no_parties", "a decision needs at least one party"));
        }
        if let Some(p) = self.parties.iter().find(|p| !line.has_member(p)) {
            return Err(CoreError::invalid("party_not_on_line", format!("{p} is not a member of line {}", line.id)));
        }
        let mut sorted = self.parties.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != self.parties.len() {
            return Err(CoreError::invalid("repeated_party", "a party is listed twice"));
        }
        Ok(())
    }
}

/// SHA-256 of a text's UTF-8 bytes.
pub fn text_sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// A party's answer to a decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Concurrence {
    pub decision: EnvelopeHash,
    /// The text the party answered, by SHA-256; an answer over another text does not count.
    pub text_sha256: [u8; 32],
    pub concur: bool,
    pub reason: Option<String>,
}

/// A translation of a message: a record of its own naming the original, which stays the
/// authoritative text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Translation {
    pub original: EnvelopeHash,
    pub language: String,
    pub text: String,
    pub translator: String,
    /// The operator who reviewed it; `None` while unreviewed.
    pub reviewed_by: Option<String>,
    /// The translation this one revises.
    pub revises: Option<EnvelopeHash>,
}

impl Translation {
    pub fn check(&self, limits: &Limits) -> Result<(), CoreError> {
        let tag_ok = (2..=35).contains(&self.language.len())
            && self.language.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !tag_ok {
            return Err(CoreError::invalid("bad_language", "a language is a BCP 47 tag such as 'en' or 'zh-Hans'"));
        }
        if self.text.trim().is_empty() {
            return Err(CoreError::invalid("empty_text", "a translation has a text"));
        }
        if self.text.len() > limits.body_bytes_max {
            return Err(CoreError::invalid(
                "text_too_long",
                format!("a translation is at most {} bytes", limits.body_bytes_max),
            ));
        }
        check_text("text", &self.text, TextKind::Lines)?;
        let name_ok = |n: &str| !n.trim().is_empty() && n.chars().count() <= 64;
        if !name_ok(&self.translator) || self.reviewed_by.as_deref().is_some_and(|r| !name_ok(r)) {
            return Err(CoreError::invalid("bad_name", "an operator's name is 1 to 64 characters"));
        }
        check_text("translator", &self.translator, TextKind::Line)?;
        if let Some(reviewer) = &self.reviewed_by {
            check_text("reviewed_by", reviewer, TextKind::Line)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod deadline_tests {
    use super::*;
    use crate::line::Scope;

    #[test]
    fn a_deadline_beyond_a_year_and_a_day_is_refused_and_cannot_overflow_a_time() {
        let member = |c: &str| MemberCode::parse(c).unwrap();
        let line = Line {
            id: adi_wire::LineId([1; 16]),
            scope: Scope::AdmmPlus,
            title: "PH–CN".into(),
            home: member("PH"),
            members: vec![member("CN"), member("PH")],
            created_ms: 0,
            direct: true,
            taken_ms: 0,
        };
        let limits = Limits::default();
        let decision = |deadline_s| Decision {
            text: "Keep 5 nautical miles apart.".into(),
            parties: vec![member("CN"), member("PH")],
            deadline_s,
            supersedes: None,
        };
        assert!(decision(Some(limits.decision_deadline_s_max)).check(&line, &limits).is_ok());
        for far in [limits.decision_deadline_s_max + 1, 9_223_372_036_854_775_808, u64::MAX] {
            let err = decision(Some(far)).check(&line, &limits).unwrap_err();
            assert_eq!(err.code, "bad_deadline", "{far}");
        }
    }
}
