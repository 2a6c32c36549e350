//! Lines: direct lines between two members and conferences of several, each with a scope.

use adi_wire::LineId;

use crate::error::CoreError;
use crate::limits::Limits;
use crate::roster::{MemberCode, Roster};
use crate::text::{check_text, TextKind};

/// Which members a line may admit, by roster policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// ASEAN members only (by the default policy).
    Admm,
    /// All members (by the default policy).
    AdmmPlus,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "ADMM" => Some(Scope::Admm),
            "ADMM-Plus" => Some(Scope::AdmmPlus),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Scope::Admm => "ADMM",
            Scope::AdmmPlus => "ADMM-Plus",
        }
    }
}

/// A line as every member's node knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub id: LineId,
    pub scope: Scope,
    pub title: String,
    /// The member that created the line and sequences its membership.
    pub home: MemberCode,
    /// Members, sorted, without repeats; the home member is one of them.
    pub members: Vec<MemberCode>,
    pub created_ms: u64,
    /// A direct line: made between two members, it keeps them (no member is added, and
    /// neither leaves); link tests run on it. A line made with more members is a conference.
    pub direct: bool,
    /// When this node took the line, on its own clock (`created_ms` is the home member's).
    pub taken_ms: u64,
}

impl Line {
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// The member that sequences the line's membership under `roster` (`docs/PROTOCOL.md`,
    /// "Re-homing"): its home member while the roster lists it (suspended or not) and it is on the
    /// line; else the first of its members, by code, that the roster lists in good standing.
    /// Every member's node computes the same from the same roster version and membership. A
    /// suspension alone does not move a line's home: its commits would otherwise be refused by
    /// the suspended home's node once it is reinstated, which holds the line as its own.
    pub fn acting_home(&self, roster: &Roster) -> MemberCode {
        if roster.member(&self.home).is_some() && self.has_member(&self.home) {
            return self.home.clone();
        }
        let standing = |m: &MemberCode| roster.member(m).is_some() && !roster.is_suspended(m);
        self.members.iter().filter(|m| standing(m)).min().cloned().unwrap_or_else(|| self.home.clone())
    }

    pub fn has_member(&self, code: &MemberCode) -> bool {
        self.members.binary_search(code).is_ok()
    }
}

/// An operator's request for a new line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewLine {
    pub members: Vec<String>,
    pub scope: String,
    pub title: Option<String>,
}

/// Checks a line's shape and membership against the roster policy, returning the sorted members.
///
/// Used both when this node creates a line and when a peer announces one, so that both ends apply
/// the same rule.
pub fn check_line(
    roster: &Roster,
    limits: &Limits,
    scope: Scope,
    home: &MemberCode,
    members: &[String],
    title: &str,
) -> Result<Vec<MemberCode>, CoreError> {
    if title.chars().count() > limits.title_chars_max {
        return Err(CoreError::invalid(
            "title_too_long",
            format!("a title is at most {} characters", limits.title_chars_max),
        ));
    }
    check_text("title", title, TextKind::Line)?;
    let mut codes = Vec::with_capacity(members.len());
    for m in members {
        let code = MemberCode::parse(m).map_err(|e| CoreError::invalid("bad_member_code", e))?;
        codes.push(code);
    }
    codes.sort();
    let before = codes.len();
    codes.dedup();
    if codes.len() != before {
        return Err(CoreError::invalid("repeated_member", "a member is listed twice"));
    }
    if codes.len() < 2 {
        return Err(CoreError::invalid("too_few_members", "a line has at least two members"));
    }
    if codes.len() > limits.line_members_max {
        return Err(CoreError::invalid(
            "too_many_members",
            format!("a line has at most {} members", limits.line_members_max),
        ));
    }
    if !codes.contains(home) {
        return Err(CoreError::forbidden("not_a_member", format!("{home} is not among the line's members")));
    }
    for code in &codes {
        let member = roster
            .member(code)
            .ok_or_else(|| CoreError::invalid("unknown_member", format!("{code} is not in the roster")))?;
        if roster.is_suspended(code) {
            return Err(CoreError::forbidden("suspended", format!("{code} is suspended by the roster")));
        }
        if !roster.admits(scope, member) {
            return Err(CoreError::forbidden(
                "scope_policy",
                format!("{code} ({}) may not be on a line of scope {}", member.community.as_str(), scope.as_str()),
            ));
        }
    }
    Ok(codes)
}
