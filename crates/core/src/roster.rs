//! The roster: who the members are, how to reach and authenticate them, and the line policy.
//!
//! A [`Roster`] is built only from a [`RosterFile`] that passes every check; each refusal names
//! the field that is wrong (`members[3].signing_key`). Nothing about a particular member is known
//! to the code: communities and policy are data.

use std::collections::BTreeMap;
use std::fmt;

use adi_wire::envelope::check_member_code;
use adi_wire::files::{
    DeadlinesFile, MemberEntry, PolicyFile, RosterFile, RuleEntry, RulesFile, ScopeEntry, ROSTER_VERSION,
};
use ed25519_dalek::VerifyingKey;

use crate::discipline::Deadlines;
use crate::line::Scope;

/// A member code, such as an ISO 3166-1 alpha-2 country code.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberCode(String);

impl MemberCode {
    pub fn parse(s: &str) -> Result<MemberCode, String> {
        check_member_code(s).map_err(|e| format!("'{s}': {e}"))?;
        Ok(MemberCode(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MemberCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for MemberCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The community a member belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Community {
    Asean,
    Plus,
    Observer,
}

impl Community {
    pub fn parse(s: &str) -> Option<Community> {
        match s {
            "ASEAN" => Some(Community::Asean),
            "PLUS" => Some(Community::Plus),
            "OBSERVER" => Some(Community::Observer),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Community::Asean => "ASEAN",
            Community::Plus => "PLUS",
            Community::Observer => "OBSERVER",
        }
    }
}

/// One member establishment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub code: MemberCode,
    pub name: String,
    pub community: Community,
    pub signing_key: VerifyingKey,
    /// SHA-256 of the node TLS certificate's SubjectPublicKeyInfo.
    pub tls_pin: [u8; 32],
    /// Federation endpoints (`host:port`) in order of preference.
    pub endpoints: Vec<String>,
}

/// A checked roster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roster {
    name: String,
    members: BTreeMap<MemberCode, Member>,
    /// For each scope, the communities it admits.
    policy: BTreeMap<Scope, Vec<Community>>,
    /// Acknowledgement deadlines agreed for the network, if the roster sets them.
    deadlines: Option<Deadlines>,
    /// The rules for amending it, if the roster states them (else [`Rules::default`]).
    rules: Option<Rules>,
    /// Members suspended by amendment.
    suspended: std::collections::BTreeSet<MemberCode>,
}

/// Whose signatures a kind of amendment needs: members of one community, every one of them or at
/// least `at_least`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub community: Community,
    pub at_least: Option<u32>,
}

/// The rules for amending a roster (`docs/WIRE.md`, "Roster versions").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Admitting, suspending, reinstating or removing a member.
    pub membership: Rule,
    /// The network's name, the line policy and the agreed deadlines.
    pub policy: Rule,
    /// Replacing a member's lost or compromised signing key, besides the new key's signature.
    pub key_replacement: Rule,
    /// Changing these rules.
    pub rules: Rule,
}

impl Default for Rules {
    /// ASEAN centrality, as the declaration founding the network has it: every change of who is
    /// a member, of the policy, of a lost key or of these rules takes the signatures of every
    /// ASEAN member (the ADMM decides by consensus, and takes in its Plus partners).
    fn default() -> Self {
        let all_asean = Rule { community: Community::Asean, at_least: None };
        Rules { membership: all_asean, policy: all_asean, key_replacement: all_asean, rules: all_asean }
    }
}

fn rule_from_entry(field: &str, r: &RuleEntry) -> Result<Rule, RosterError> {
    let community = Community::parse(&r.community).ok_or_else(|| {
        err(
            format!("rules.{field}.community"),
            format!("unknown community '{}', expected ASEAN, PLUS or OBSERVER", r.community),
        )
    })?;
    if r.at_least == Some(0) {
        return Err(err(format!("rules.{field}.at_least"), "a rule needs at least one signature"));
    }
    Ok(Rule { community, at_least: r.at_least })
}

fn rule_to_entry(r: &Rule) -> RuleEntry {
    RuleEntry { community: r.community.as_str().to_string(), at_least: r.at_least }
}

/// A roster field that failed its check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for RosterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for RosterError {}

fn err(field: impl Into<String>, message: impl Into<String>) -> RosterError {
    RosterError { field: field.into(), message: message.into() }
}

impl Roster {
    /// Checks a roster file and builds the roster from it.
    pub fn from_file(file: &RosterFile) -> Result<Roster, RosterError> {
        if file.version != ROSTER_VERSION {
            return Err(err(
                "version",
                format!("unsupported roster version {}, expected {ROSTER_VERSION}", file.version),
            ));
        }
        let mut policy = BTreeMap::new();
        for (i, scope) in file.policy.scopes.iter().enumerate() {
            let at = format!("policy.scopes[{i}]");
            let name = Scope::parse(&scope.name).ok_or_else(|| {
                err(format!("{at}.name"), format!("unknown scope '{}', expected ADMM or ADMM-Plus", scope.name))
            })?;
            let mut communities = Vec::new();
            for (j, c) in scope.communities.iter().enumerate() {
                let c = Community::parse(c).ok_or_else(|| {
                    err(
                        format!("{at}.communities[{j}]"),
                        format!("unknown community '{c}', expected ASEAN, PLUS or OBSERVER"),
                    )
                })?;
                communities.push(c);
            }
            if policy.insert(name, communities).is_some() {
                return Err(err(format!("{at}.name"), format!("scope {} is listed twice", scope.name)));
            }
        }
        for scope in [Scope::Admm, Scope::AdmmPlus] {
            if !policy.contains_key(&scope) {
                return Err(err("policy.scopes", format!("no policy for scope {}", scope.as_str())));
            }
        }
        let mut members = BTreeMap::new();
        let mut pins = std::collections::BTreeSet::new();
        for (i, m) in file.members.iter().enumerate() {
            let member = member_from_entry(m).map_err(|e| err(format!("members[{i}].{}", e.field), e.message))?;
            if !pins.insert(member.tls_pin) {
                return Err(err(format!("members[{i}].tls_pin"), "the same TLS pin is listed for two members"));
            }
            if members.insert(member.code.clone(), member).is_some() {
                return Err(err(format!("members[{i}].code"), format!("member {} is listed twice", m.code)));
            }
        }
        if members.is_empty() {
            return Err(err("members", "the roster lists no members"));
        }
        let deadlines = match &file.deadlines {
            None => None,
            Some(d) => Some(deadlines_from_file(d).map_err(|(field, m)| err(format!("deadlines.{field}"), m))?),
        };
        let rules = match &file.rules {
            None => None,
            Some(r) => Some(Rules {
                membership: rule_from_entry("membership", &r.membership)?,
                policy: rule_from_entry("policy", &r.policy)?,
                key_replacement: rule_from_entry("key_replacement", &r.key_replacement)?,
                rules: rule_from_entry("rules", &r.rules)?,
            }),
        };
        let mut suspended = std::collections::BTreeSet::new();
        for (i, code) in file.suspended.iter().enumerate() {
            let code = MemberCode::parse(code).map_err(|e| err(format!("suspended[{i}]"), e))?;
            if !members.contains_key(&code) {
                return Err(err(format!("suspended[{i}]"), format!("{code} is not a member")));
            }
            if !suspended.insert(code.clone()) {
                return Err(err(format!("suspended[{i}]"), format!("{code} is listed twice")));
            }
        }
        Ok(Roster { name: file.name.clone(), members, policy, deadlines, rules, suspended })
    }

    /// The file form of this roster.
    pub fn to_file(&self) -> RosterFile {
        RosterFile {
            version: ROSTER_VERSION,
            name: self.name.clone(),
            policy: PolicyFile {
                scopes: self
                    .policy
                    .iter()
                    .map(|(s, cs)| ScopeEntry {
                        name: s.as_str().to_string(),
                        communities: cs.iter().map(|c| c.as_str().to_string()).collect(),
                    })
                    .collect(),
            },
            deadlines: self.deadlines.as_ref().map(|d| DeadlinesFile {
                flash_s: d.flash_s,
                immediate_s: d.immediate_s,
                priority_s: d.priority_s,
                routine_s: d.routine_s,
            }),
            rules: self.rules.as_ref().map(|r| RulesFile {
                membership: rule_to_entry(&r.membership),
                policy: rule_to_entry(&r.policy),
                key_replacement: rule_to_entry(&r.key_replacement),
                rules: rule_to_entry(&r.rules),
            }),
            suspended: self.suspended.iter().map(MemberCode::to_string).collect(),
            members: self.members.values().map(member_to_entry).collect(),
        }
    }

    /// The roster's canonical bytes: its file form ([`Roster::to_file`]) without the members'
    /// federation endpoints, as compact JSON, members in code order. The same roster gives the
    /// same bytes however its file was written, and whatever addresses an establishment points
    /// its copy at: what is anchored is who the members are and their keys, pins and policy.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut file = self.to_file();
        for m in &mut file.members {
            m.endpoints.clear();
        }
        serde_json::to_vec(&file).unwrap_or_default()
    }

    /// SHA-256 of [`Roster::canonical_bytes`]: the anchor an auditor pins, from outside any
    /// bundle, to check a bundle's keys (`docs/RECORD.md`, "Anchoring").
    pub fn sha256(&self) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(self.canonical_bytes()).into()
    }

    /// Acknowledgement deadlines agreed in the roster, if any.
    pub fn deadlines(&self) -> Option<&Deadlines> {
        self.deadlines.as_ref()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The rules for amending this roster: those it states, else the defaults.
    pub fn rules(&self) -> Rules {
        self.rules.unwrap_or_default()
    }

    /// Whether an amendment suspended this member.
    pub fn is_suspended(&self, code: &MemberCode) -> bool {
        self.suspended.contains(code)
    }

    /// The agreed deadlines, the line policy and the name, as a roster version compares them.
    pub(crate) fn policy_terms(&self) -> (&str, &BTreeMap<Scope, Vec<Community>>, Option<&Deadlines>) {
        (&self.name, &self.policy, self.deadlines.as_ref())
    }

    /// The rules as the roster states them (`None` for the defaults), as a version compares them.
    pub(crate) fn stated_rules(&self) -> Option<&Rules> {
        self.rules.as_ref()
    }

    pub fn member(&self, code: &MemberCode) -> Option<&Member> {
        self.members.get(code)
    }

    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// The member whose node TLS key has this pin.
    pub fn member_by_pin(&self, pin: &[u8; 32]) -> Option<&Member> {
        self.members.values().find(|m| &m.tls_pin == pin)
    }

    /// Whether a scope admits a member.
    pub fn admits(&self, scope: Scope, member: &Member) -> bool {
        self.policy.get(&scope).is_some_and(|cs| cs.contains(&member.community))
    }

    /// The communities a scope admits.
    pub fn scope_communities(&self, scope: Scope) -> &[Community] {
        self.policy.get(&scope).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// Checks deadlines: each from 1 second to 7 days. Errors name the field.
pub fn deadlines_from_file(d: &DeadlinesFile) -> Result<Deadlines, (&'static str, String)> {
    for (field, v) in [
        ("flash_s", d.flash_s),
        ("immediate_s", d.immediate_s),
        ("priority_s", d.priority_s),
        ("routine_s", d.routine_s),
    ] {
        if !(1..=7 * 24 * 3600).contains(&v) {
            return Err((field, format!("{v} is not a deadline from 1 second to 7 days")));
        }
    }
    Ok(Deadlines { flash_s: d.flash_s, immediate_s: d.immediate_s, priority_s: d.priority_s, routine_s: d.routine_s })
}

/// The default line policy: ADMM lines admit ASEAN members only; ADMM-Plus lines admit all.
pub fn default_policy() -> PolicyFile {
    PolicyFile {
        scopes: vec![
            ScopeEntry { name: "ADMM".into(), communities: vec!["ASEAN".into()] },
            ScopeEntry {
                name: "ADMM-Plus".into(),
                communities: vec!["ASEAN".into(), "PLUS".into(), "OBSERVER".into()],
            },
        ],
    }
}

/// Checks one member entry (a roster row or a card).
pub fn member_from_entry(m: &MemberEntry) -> Result<Member, RosterError> {
    let code = MemberCode::parse(&m.code).map_err(|e| err("code", e))?;
    if m.name.trim().is_empty() || m.name.chars().count() > 200 {
        return Err(err("name", "a name is 1 to 200 characters"));
    }
    let community = Community::parse(&m.community).ok_or_else(|| {
        err("community", format!("unknown community '{}', expected ASEAN, PLUS or OBSERVER", m.community))
    })?;
    let mut key = [0u8; 32];
    hex::decode_to_slice(&m.signing_key, &mut key).map_err(|_| err("signing_key", "expected 32 bytes in hex"))?;
    let signing_key =
        VerifyingKey::from_bytes(&key).map_err(|_| err("signing_key", "not a valid Ed25519 public key"))?;
    // A key of small order verifies a signature of a chosen form over any message under
    // non-strict verification: no roster holds one.
    if signing_key.is_weak() {
        return Err(err("signing_key", "a weak (small-order) Ed25519 key is refused"));
    }
    let mut tls_pin = [0u8; 32];
    hex::decode_to_slice(&m.tls_pin, &mut tls_pin)
        .map_err(|_| err("tls_pin", "expected a SHA-256 hash (32 bytes) in hex"))?;
    if m.endpoints.is_empty() {
        return Err(err("endpoints", "at least one federation endpoint is needed"));
    }
    for (i, e) in m.endpoints.iter().enumerate() {
        check_endpoint(e).map_err(|msg| err(format!("endpoints[{i}]"), msg))?;
    }
    Ok(Member { code, name: m.name.clone(), community, signing_key, tls_pin, endpoints: m.endpoints.clone() })
}

pub fn member_to_entry(m: &Member) -> MemberEntry {
    MemberEntry {
        code: m.code.to_string(),
        name: m.name.clone(),
        community: m.community.as_str().to_string(),
        signing_key: hex::encode(m.signing_key.as_bytes()),
        tls_pin: hex::encode(m.tls_pin),
        endpoints: m.endpoints.clone(),
    }
}

/// An endpoint is `host:port` with a port from 1 to 65535.
fn check_endpoint(e: &str) -> Result<(), String> {
    let (host, port) = e.rsplit_once(':').ok_or_else(|| format!("'{e}' is not host:port"))?;
    if host.is_empty() || host.contains('/') {
        return Err(format!("'{e}' has no valid host"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("'{e}' has no valid port")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(code: &str, community: &str, seed: u8) -> MemberEntry {
        let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        MemberEntry {
            code: code.into(),
            name: format!("Member {code}"),
            community: community.into(),
            signing_key: hex::encode(key.verifying_key().as_bytes()),
            tls_pin: hex::encode([seed; 32]),
            endpoints: vec![format!("127.0.0.1:{}", 7000 + seed as u16)],
        }
    }

    fn file(members: Vec<MemberEntry>) -> RosterFile {
        RosterFile {
            version: 1,
            name: "test".into(),
            policy: default_policy(),
            deadlines: None,
            rules: None,
            suspended: Vec::new(),
            members,
        }
    }

    /// Each bad roster is refused with the field that is wrong.
    #[test]
    fn bad_rosters_name_the_field() {
        let check = |f: RosterFile, field: &str| {
            let e = Roster::from_file(&f).unwrap_err();
            assert_eq!(e.field, field, "{e}");
        };
        let mut bad_key = entry("PH", "ASEAN", 1);
        bad_key.signing_key = "zz".into();
        check(file(vec![entry("CN", "PLUS", 2), bad_key]), "members[1].signing_key");
        // The identity point: a key of small order, under which a signature with R the identity
        // and s zero passes non-strict verification of any message.
        let mut weak_key = entry("PH", "ASEAN", 1);
        weak_key.signing_key = format!("01{}", "00".repeat(31));
        check(file(vec![weak_key]), "members[0].signing_key");
        check(file(vec![entry("PH", "ASEAN", 1), entry("PH", "ASEAN", 2)]), "members[1].code");
        check(file(vec![entry("PH", "ASEAN", 1), entry("CN", "ASEAN", 1)]), "members[1].tls_pin");
        check(file(vec![entry("PH", "NATO", 1)]), "members[0].community");
        check(file(vec![entry("p h", "ASEAN", 1)]), "members[0].code");
        let mut no_port = entry("PH", "ASEAN", 1);
        no_port.endpoints = vec!["127.0.0.1".into()];
        check(file(vec![no_port]), "members[0].endpoints[0]");
        let mut f = file(vec![entry("PH", "ASEAN", 1)]);
        f.policy.scopes[0].name = "NATO".into();
        check(f, "policy.scopes[0].name");
        let mut f = file(vec![entry("PH", "ASEAN", 1)]);
        f.version = 9;
        check(f, "version");
    }

    #[test]
    fn the_anchor_is_the_same_however_the_file_is_written_and_wherever_members_are_reached() {
        let a = Roster::from_file(&file(vec![entry("PH", "ASEAN", 1), entry("CN", "PLUS", 2)])).unwrap();
        let mut moved = entry("PH", "ASEAN", 1);
        moved.endpoints = vec!["10.1.2.3:7443".into(), "10.1.2.4:7443".into()];
        let b = Roster::from_file(&file(vec![entry("CN", "PLUS", 2), moved])).unwrap();
        assert_eq!(a.sha256(), b.sha256());
        let rekeyed = Roster::from_file(&file(vec![entry("PH", "ASEAN", 3), entry("CN", "PLUS", 2)])).unwrap();
        assert_ne!(a.sha256(), rekeyed.sha256());
        let text = String::from_utf8(a.canonical_bytes()).unwrap();
        assert!(
            text.contains(&hex::encode(a.member(&MemberCode::parse("PH").unwrap()).unwrap().signing_key.to_bytes()))
        );
    }

    #[test]
    fn policy_is_data() {
        let f = file(vec![entry("PH", "ASEAN", 1), entry("CN", "PLUS", 2), entry("TL", "OBSERVER", 3)]);
        let r = Roster::from_file(&f).unwrap();
        let m = |c: &str| r.member(&MemberCode::parse(c).unwrap()).unwrap().clone();
        assert!(r.admits(Scope::Admm, &m("PH")));
        assert!(!r.admits(Scope::Admm, &m("CN")));
        assert!(!r.admits(Scope::Admm, &m("TL")));
        assert!(r.admits(Scope::AdmmPlus, &m("CN")));
        assert!(r.admits(Scope::AdmmPlus, &m("TL")));
        assert_eq!(Roster::from_file(&r.to_file()).unwrap(), r);
    }
}
