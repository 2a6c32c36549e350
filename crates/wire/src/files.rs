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
    pub members: Vec<MemberEntry>,
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
