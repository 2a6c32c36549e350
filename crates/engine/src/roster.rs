//! The roster's chain as one node holds it, and what it decides about a version or a proposal
//! handed to it, without I/O: both drivers (the tokio node and the simulation) record what it
//! decides and then tell it ([`RosterBook::applied`], [`RosterBook::kept`]).
//!
//! A version or proposal is checked by the core's one function (`adi_core::amendment`): a
//! proposal whose signatures do not verify, or that amends another version than the one in
//! force, is refused whole; one that verifies is merged with the signatures already kept for it,
//! and applied when it meets its rule, else kept.

use adi_core::amendment::{self, RosterVersion};
use adi_core::{AlarmChange, MemberCode, Roster};
use adi_wire::files::RosterVersionFile;

/// The named limits on what a node takes of roster versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RosterLimits {
    /// Largest version or proposal taken, as JSON.
    pub version_bytes_max: usize,
    /// Most signatures a version may carry.
    pub signatures_max: usize,
    /// Most proposals kept at once.
    pub proposals_max: usize,
    /// Most of them one member may have proposed (the first to sign a proposal proposed it), so
    /// that no member fills the others' room.
    pub proposals_per_member_max: usize,
}

/// The roster as a chain of versions: the first one's hash (the network's identity), the version
/// in force, every version after the first as applied (for peers catching up and for export
/// bundles), and the proposed versions kept while they gather signatures.
#[derive(Clone, Debug)]
pub struct RosterBook {
    pub first_hash: [u8; 32],
    pub current: RosterVersion,
    pub versions: Vec<RosterVersionFile>,
    pub proposals: Vec<RosterVersionFile>,
}

/// What a version or proposal handed to a node comes to.
#[derive(Clone, Debug)]
pub enum Decision {
    /// It meets its rule: record it as applied (with `detail` for the audit log), then
    /// [`RosterBook::applied`].
    Apply { version: Box<RosterVersion>, file: RosterVersionFile, detail: String },
    /// It verifies but lacks signatures: keep `file` (merged with what was kept), then
    /// [`RosterBook::kept`]. `new` when no proposal of its hash was kept before.
    Keep { file: RosterVersionFile, hash: [u8; 32], added: usize, new: bool, changes: Vec<String> },
    /// Kept already with every signature it carries.
    Unchanged,
    /// It amends a version older than the one in force.
    Stale,
    /// It amends a version this node does not hold yet.
    Ahead,
}

/// Why a version or proposal was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// It does not verify: forged, altered, or amending another version than the one in force.
    /// The member that handed it over is named in a `misconduct` alarm.
    Forged(String),
    /// Past a named limit.
    Limit(String),
}

impl Refusal {
    pub fn message(&self) -> &str {
        match self {
            Refusal::Forged(m) | Refusal::Limit(m) => m,
        }
    }
}

/// The `misconduct` alarm naming the member whose node handed over a version that does not verify.
pub fn forged_alarm(peer: &MemberCode, now_ms: u64, message: &str) -> AlarmChange {
    AlarmChange::misconduct(peer, now_ms, format!("{peer}'s node handed over a {message}"))
}

/// What a version changes and who signed it, in a sentence for the audit log.
pub fn describe(from: &RosterVersion, to: &RosterVersion) -> String {
    format!(
        "roster version {} ({}) took effect: {}; signed by {}",
        to.number,
        hex::encode(to.hash),
        changes(&from.roster, &to.roster).join(", "),
        signers(to).join(", ")
    )
}

/// The changes from one roster to another, in words.
pub fn changes(from: &Roster, to: &Roster) -> Vec<String> {
    amendment::changes(from, to).iter().map(|c| c.to_string()).collect()
}

/// The members whose signatures a version carries, each once.
pub fn signers(v: &RosterVersion) -> Vec<String> {
    let mut out: Vec<String> = v.signed_by.iter().map(|(m, _)| m.to_string()).collect();
    out.dedup();
    out
}

/// The keys `to` retires by rotation: each member whose signing key it changes, with its old
/// key, where that old key signed the version (a key replaced without its own signature is not
/// among them: it may be in other hands).
pub fn rotated(from: &RosterVersion, to: &RosterVersion) -> Vec<(MemberCode, ed25519_dalek::VerifyingKey)> {
    amendment::changes(&from.roster, &to.roster)
        .into_iter()
        .filter_map(|c| match c {
            amendment::Change::Key(m) => {
                let old = from.roster.member(&m)?.signing_key;
                to.signed_by.iter().any(|(s, k)| *s == m && *k == old).then_some((m, old))
            }
            _ => None,
        })
        .collect()
}

/// The members whose signing key `to` replaces without their old key's signature: every key of
/// theirs retired before is distrusted with it.
pub fn replaced(from: &RosterVersion, to: &RosterVersion) -> Vec<MemberCode> {
    let rotated: Vec<MemberCode> = rotated(from, to).into_iter().map(|(m, _)| m).collect();
    amendment::changes(&from.roster, &to.roster)
        .into_iter()
        .filter_map(|c| match c {
            amendment::Change::Key(m) if !rotated.contains(&m) => Some(m),
            _ => None,
        })
        .collect()
}

/// The TLS pins `to` retires with the member's own signature: each member whose pin it changes,
/// with its old pin, where the member's key in `from` signed the version (a rotation, or a change
/// of its own entry). A pin changed without the member's signature is not among them.
pub fn pins_retired(from: &RosterVersion, to: &RosterVersion) -> Vec<(MemberCode, [u8; 32])> {
    from.roster
        .members()
        .filter_map(|old| {
            let new = to.roster.member(&old.code)?;
            let signed = to.signed_by.iter().any(|(s, k)| *s == old.code && *k == old.signing_key);
            (new.tls_pin != old.tls_pin && signed).then_some((old.code.clone(), old.tls_pin))
        })
        .collect()
}

/// Every TLS pin the chain from the first version (`first`, its roster) through `versions`
/// retired with its member's signature, with the number of the version that retired it, in
/// order; a pin of a member whose key a later version replaced is left out.
pub fn pins_retired_by_chain(first: &Roster, versions: &[RosterVersionFile]) -> Vec<(u64, MemberCode, [u8; 32])> {
    let Ok(mut at) = amendment::check_first(&amendment::first(first)) else { return Vec::new() };
    let mut out: Vec<(u64, MemberCode, [u8; 32])> = Vec::new();
    for file in versions {
        let Ok(next) = amendment::check_amendment(&at, file) else { break };
        let gone = replaced(&at, &next);
        out.retain(|(_, m, _)| !gone.contains(m));
        out.extend(pins_retired(&at, &next).into_iter().map(|(m, pin)| (next.number, m, pin)));
        at = next;
    }
    out
}

/// Every key the chain from the first version (`first`, its roster) through `versions` retired by
/// rotation and still trusted (no later replacement of that member's key), in order.
pub fn retired_by_rotation(
    first: &Roster,
    versions: &[RosterVersionFile],
) -> Vec<(MemberCode, ed25519_dalek::VerifyingKey)> {
    let Ok(mut at) = amendment::check_first(&amendment::first(first)) else { return Vec::new() };
    let mut out: Vec<(MemberCode, ed25519_dalek::VerifyingKey)> = Vec::new();
    for file in versions {
        let Ok(next) = amendment::check_amendment(&at, file) else { break };
        let gone = replaced(&at, &next);
        out.retain(|(m, _)| !gone.contains(m));
        out.extend(rotated(&at, &next));
        at = next;
    }
    out
}

impl RosterBook {
    /// The book of a network whose first version holds `first`.
    pub fn first(first: &Roster) -> Result<RosterBook, String> {
        let v = amendment::check_first(&amendment::first(first)).map_err(|e| e.to_string())?;
        Ok(RosterBook { first_hash: v.hash, current: v, versions: Vec::new(), proposals: Vec::new() })
    }

    /// Checks `file` as the version after the one in force and puts it in force (a chain read
    /// from a configuration or a database).
    pub fn extend(&mut self, file: RosterVersionFile) -> Result<(), String> {
        let next = amendment::check_amendment(&self.current, &file).map_err(|e| e.to_string())?;
        self.current = next;
        self.versions.push(file);
        self.proposals.retain(|p| p.number > self.current.number);
        Ok(())
    }

    /// Takes back the proposals a database kept that still amend the version in force.
    pub fn keep_stored(&mut self, files: Vec<RosterVersionFile>) {
        for file in files {
            if amendment::check_proposal(&self.current, &file).is_ok() {
                self.proposals.push(file);
            }
        }
    }

    /// The versions after `number`, at most `max`.
    pub fn versions_after(&self, number: u64, max: usize) -> Vec<RosterVersionFile> {
        self.versions.iter().filter(|v| v.number > number).take(max).cloned().collect()
    }

    /// The hash of a proposal, if it still amends the version in force.
    pub fn proposal_hash(&self, file: &RosterVersionFile) -> Option<[u8; 32]> {
        amendment::file_hash(file).ok()
    }

    /// Decides what a version or proposal handed over comes to.
    pub fn decide(&self, file: &RosterVersionFile, limits: &RosterLimits) -> Result<Decision, Refusal> {
        if file.signatures.len() > limits.signatures_max {
            return Err(Refusal::Limit(format!(
                "a roster version carries at most {} signatures",
                limits.signatures_max
            )));
        }
        let size = serde_json::to_vec(file).map(|b| b.len()).unwrap_or(usize::MAX);
        if size > limits.version_bytes_max {
            return Err(Refusal::Limit(format!("a roster version is at most {} bytes", limits.version_bytes_max)));
        }
        if file.number <= self.current.number {
            return Ok(Decision::Stale);
        }
        if file.number > self.current.number + 1 {
            return Ok(Decision::Ahead);
        }
        // A proposal kept already with every signature it carries changes nothing: found by its
        // hash, before any signature is verified again, so that a peer repeating what it sent
        // costs no verification.
        let named = self.proposal_hash(file);
        let kept = self.proposals.iter().find(|p| named.is_some() && self.proposal_hash(p) == named);
        let carried = |k: &RosterVersionFile, s: &adi_wire::files::RosterSignature| {
            k.signatures.iter().any(|t| t.member == s.member && t.key == s.key)
        };
        if kept.is_some_and(|k| file.signatures.iter().all(|s| carried(k, s))) {
            return Ok(Decision::Unchanged);
        }
        amendment::check_proposal(&self.current, file)
            .map_err(|e| Refusal::Forged(format!("roster version {} refused: {e}", file.number)))?;
        let (merged, added, new) = match kept {
            Some(k) => {
                let mut merged = k.clone();
                let added = amendment::merge_signatures(&mut merged, file);
                (merged, added, false)
            }
            None => {
                let Some(proposer) = file.signatures.first().map(|s| s.member.clone()) else {
                    return Err(Refusal::Limit("a proposal carries its proposer's signature".into()));
                };
                let theirs = self
                    .proposals
                    .iter()
                    .filter(|p| p.signatures.first().is_some_and(|s| s.member == proposer))
                    .count();
                if theirs >= limits.proposals_per_member_max {
                    return Err(Refusal::Limit(format!(
                        "this node keeps at most {} proposed roster versions of one member's at once",
                        limits.proposals_per_member_max
                    )));
                }
                if self.proposals.len() >= limits.proposals_max {
                    return Err(Refusal::Limit(format!(
                        "this node keeps at most {} proposed roster versions at once",
                        limits.proposals_max
                    )));
                }
                (file.clone(), file.signatures.len(), true)
            }
        };
        if !new && added == 0 {
            return Ok(Decision::Unchanged);
        }
        let version = amendment::check_proposal(&self.current, &merged)
            .map_err(|e| Refusal::Forged(format!("roster version {} refused: {e}", file.number)))?;
        if amendment::rules_met(&self.current, &version).is_ok() {
            let detail = describe(&self.current, &version);
            return Ok(Decision::Apply { version: Box::new(version), file: merged, detail });
        }
        let changes = changes(&self.current.roster, &version.roster);
        Ok(Decision::Keep { file: merged, hash: version.hash, added, new, changes })
    }

    /// A version recorded as applied: it is in force, and the proposals it settles are dropped.
    pub fn applied(&mut self, version: RosterVersion, file: RosterVersionFile) {
        self.current = version;
        self.versions.push(file);
        self.proposals.retain(|p| p.number > self.current.number);
    }

    /// A proposal recorded as kept, in place of the one of its hash kept before.
    pub fn kept(&mut self, file: RosterVersionFile, hash: [u8; 32]) {
        self.proposals.retain(|p| amendment::file_hash(p).ok() != Some(hash));
        self.proposals.push(file);
    }
}
