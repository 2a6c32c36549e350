//! File formats that members exchange: the roster (TOML) and the member card (JSON).
//!
//! These are the serde shapes only. `adi-core` turns a [`RosterFile`] into a checked `Roster`,
//! reporting the exact field that is wrong.

use serde::{Deserialize, Serialize};

pub const ROSTER_VERSION: u32 = 1;
pub const CARD_VERSION: u32 = 1;

/// The roster file: members and line policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterFile {
    pub version: u32,
    pub name: String,
    pub policy: PolicyFile,
    /// Acknowledgement deadlines agreed for the network; an establishment may override them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadlines: Option<DeadlinesFile>,
    /// Who must sign an amendment of the roster for it to take effect; left out, the defaults
    /// (`docs/WIRE.md`, "Roster versions").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<RulesFile>,
    /// Codes of the members suspended by amendment: still listed, so that their past signatures
    /// verify, but on no line and heard by no node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suspended: Vec<String>,
    pub members: Vec<MemberEntry>,
}

/// The rules for amending a roster: for each kind of change, whose signatures it needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    /// Admitting, suspending, reinstating or removing a member.
    pub membership: RuleEntry,
    /// The network's name, the line policy and the agreed deadlines.
    pub policy: RuleEntry,
    /// Replacing a member's lost or compromised signing key (the new key signs too).
    pub key_replacement: RuleEntry,
    /// These rules.
    pub rules: RuleEntry,
}

/// Signatures of members of a community: all of them (`at_least` left out) or at least so many.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleEntry {
    /// `ASEAN`, `PLUS` or `OBSERVER`.
    pub community: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_least: Option<u32>,
}

/// The format name of a roster version.
pub const ROSTER_VERSION_FORMAT: &str = "adi-roster-version";

/// One version of the roster: the whole roster as it stands from this version on, the version it
/// amends, and the members' signatures that make it take effect (`docs/WIRE.md`, "Roster
/// versions"). The first version's hash is the network's identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterVersionFile {
    pub format: String,
    pub v: u32,
    /// 1 for the first version, one more for each amendment.
    pub number: u64,
    /// The hash of the version this one amends (hex); none for the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    pub roster: RosterFile,
    #[serde(default)]
    pub signatures: Vec<RosterSignature>,
}

/// A member's signature of a roster version's hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterSignature {
    pub member: String,
    /// The Ed25519 public key that signed (hex): the member's key in the version amended, or the
    /// new key this version gives it.
    pub key: String,
    /// Ed25519 over `ADI-ROSTER-VERSION-1`, a zero byte, and the version's hash (hex).
    pub signature: String,
}

/// Acknowledgement deadlines in seconds, per precedence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadlinesFile {
    pub flash_s: u64,
    pub immediate_s: u64,
    pub priority_s: u64,
    pub routine_s: u64,
}

/// Line policy: which communities each scope admits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    pub scopes: Vec<ScopeEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeEntry {
    /// `ADMM` or `ADMM-Plus`.
    pub name: String,
    /// Communities admitted: `ASEAN`, `PLUS`, `OBSERVER`.
    pub communities: Vec<String>,
}

/// One member establishment, as the roster and its card list it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberEntry {
    pub code: String,
    pub name: String,
    pub community: String,
    /// Ed25519 public signing key, 32 bytes in hex.
    pub signing_key: String,
    /// SHA-256 of the node TLS certificate's SubjectPublicKeyInfo, in hex.
    pub tls_pin: String,
    /// Federation endpoints (`host:port`), in order of preference.
    pub endpoints: Vec<String>,
}

/// A member's public card, from which rosters are assembled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberCard {
    pub version: u32,
    pub member: MemberEntry,
}

impl RosterFile {
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("roster serialises")
    }

    pub fn from_toml(text: &str) -> Result<RosterFile, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}
