//! Roster versions: the roster as a chain of signed amendments (`docs/WIRE.md`, "Roster
//! versions").
//!
//! Each version holds the whole roster as it stands from then on and names the version it amends
//! by hash; the first version's hash is the network's identity. Whether a version may follow
//! another is decided here alone ([`check_amendment`]): what changed between the two rosters is
//! read off them ([`changes`]), each change needs the signatures the amended roster's rules name
//! ([`Rules`]), and every signature the version carries must verify. A version that fails is
//! refused whole, with the reason: nothing of it takes effect.

use std::collections::{BTreeMap, BTreeSet};

use adi_wire::files::{RosterSignature, RosterVersionFile, ROSTER_VERSION_FORMAT};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::roster::{Community, MemberCode, Roster, RosterError, Rule};

/// The version of the roster-version format this code reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// What a member signs: this, a zero byte, then the version's hash.
const SIGNING_CONTEXT: &[u8] = b"ADI-ROSTER-VERSION-1";

/// One change an amendment makes, as read off the two rosters.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// A member listed for the first time.
    Admit(MemberCode),
    /// A member suspended, or one whose suspension ends.
    Suspend(MemberCode),
    Reinstate(MemberCode),
    /// A member no longer listed.
    Remove(MemberCode),
    /// The network's name, line policy or agreed deadlines.
    Policy,
    /// The rules for amending the roster.
    Rules,
    /// A member's signing key: a rotation if its current key and its new key sign, else a
    /// replacement, which needs the consensus the rules name and the new key.
    Key(MemberCode),
    /// A member's own entry otherwise (name, TLS pin, endpoints, community): its current key signs.
    Entry(MemberCode),
}

/// A checked roster version.
#[derive(Clone, Debug)]
pub struct RosterVersion {
    pub number: u64,
    pub previous: Option<[u8; 32]>,
    pub roster: Roster,
    /// SHA-256 of the version's signed bytes ([`version_hash`]).
    pub hash: [u8; 32],
    /// The members whose signatures it carries, with the keys that signed.
    pub signed_by: Vec<(MemberCode, VerifyingKey)>,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> RosterError {
    RosterError { field: field.into(), message: message.into() }
}

/// The hash a version is named by and signed over: SHA-256 of the compact JSON of its format,
/// `v`, `number`, `previous` and `roster` (the roster's file form as the checked roster writes it,
/// members in code order, endpoints included), without its signatures.
pub fn version_hash(number: u64, previous: Option<&[u8; 32]>, roster: &Roster) -> [u8; 32] {
    let unsigned = RosterVersionFile {
        format: ROSTER_VERSION_FORMAT.to_string(),
        v: FORMAT_VERSION,
        number,
        previous: previous.map(hex::encode),
        roster: roster.to_file(),
        signatures: Vec::new(),
    };
    let mut body = serde_json::to_value(&unsigned).unwrap_or_default();
    if let Some(map) = body.as_object_mut() {
        map.remove("signatures");
    }
    Sha256::digest(serde_json::to_vec(&body).unwrap_or_default()).into()
}

fn signed_message(hash: &[u8; 32]) -> Vec<u8> {
    let mut m = SIGNING_CONTEXT.to_vec();
    m.push(0);
    m.extend_from_slice(hash);
    m
}

/// A member's signature of a version with `key`.
pub fn sign(member: &MemberCode, key: &SigningKey, hash: &[u8; 32]) -> RosterSignature {
    RosterSignature {
        member: member.to_string(),
        key: hex::encode(key.verifying_key().as_bytes()),
        signature: hex::encode(key.sign(&signed_message(hash)).to_bytes()),
    }
}

fn checked_header(file: &RosterVersionFile) -> Result<(Roster, Option<[u8; 32]>), RosterError> {
    if file.format != ROSTER_VERSION_FORMAT {
        return Err(err("format", format!("'{}' is not {ROSTER_VERSION_FORMAT}", file.format)));
    }
    if file.v != FORMAT_VERSION {
        return Err(err("v", format!("unsupported roster version format {}, expected {FORMAT_VERSION}", file.v)));
    }
    let roster = Roster::from_file(&file.roster).map_err(|e| err(format!("roster.{}", e.field), e.message))?;
    let previous = match &file.previous {
        None => None,
        Some(h) => {
            let mut out = [0u8; 32];
            hex::decode_to_slice(h, &mut out).map_err(|_| err("previous", "expected a SHA-256 hash in hex"))?;
            Some(out)
        }
    };
    Ok((roster, previous))
}

/// The hash of a version file as it names itself (its number, the version it amends and its
/// roster), without verifying any signature: how a proposal already checked and kept is found
/// again.
pub fn file_hash(file: &RosterVersionFile) -> Result<[u8; 32], RosterError> {
    let (roster, previous) = checked_header(file)?;
    Ok(version_hash(file.number, previous.as_ref(), &roster))
}

/// Checks a first version: number 1, amending nothing. Its hash is the network's identity, pinned
/// from outside; it needs no signature, and any it carries must verify under its own keys.
pub fn check_first(file: &RosterVersionFile) -> Result<RosterVersion, RosterError> {
    let (roster, previous) = checked_header(file)?;
    if file.number != 1 || previous.is_some() {
        return Err(err("number", "a first version is number 1 and names no previous version"));
    }
    let hash = version_hash(1, None, &roster);
    let signed_by =
        verified_signatures(file, &hash, |code, key| roster.member(code).is_some_and(|m| m.signing_key == *key))?;
    Ok(RosterVersion { number: 1, previous: None, roster, hash, signed_by })
}

/// Verifies every signature of a version over `hash`; each must be by a key `known` accepts for
/// its member, and no member signs twice with one key.
fn verified_signatures(
    file: &RosterVersionFile,
    hash: &[u8; 32],
    known: impl Fn(&MemberCode, &VerifyingKey) -> bool,
) -> Result<Vec<(MemberCode, VerifyingKey)>, RosterError> {
    let message = signed_message(hash);
    let mut out: Vec<(MemberCode, VerifyingKey)> = Vec::new();
    for (i, s) in file.signatures.iter().enumerate() {
        let at = format!("signatures[{i}]");
        let member = MemberCode::parse(&s.member).map_err(|e| err(format!("{at}.member"), e))?;
        let mut key = [0u8; 32];
        hex::decode_to_slice(&s.key, &mut key).map_err(|_| err(format!("{at}.key"), "expected 32 bytes in hex"))?;
        let key = VerifyingKey::from_bytes(&key).map_err(|_| err(format!("{at}.key"), "not an Ed25519 public key"))?;
        if !known(&member, &key) {
            return Err(err(
                format!("{at}.key"),
                format!("not {member}'s key in the version amended, nor the new key this version gives it"),
            ));
        }
        let mut signature = [0u8; 64];
        hex::decode_to_slice(&s.signature, &mut signature)
            .map_err(|_| err(format!("{at}.signature"), "expected 64 bytes in hex"))?;
        key.verify_strict(&message, &Signature::from_bytes(&signature)).map_err(|_| {
            err(format!("{at}.signature"), format!("{member}'s signature does not verify over this version"))
        })?;
        if out.iter().any(|(m, k)| *m == member && *k == key) {
            return Err(err(at, format!("{member} signs twice with one key")));
        }
        out.push((member, key));
    }
    Ok(out)
}

/// What changed from roster `from` to roster `to`, each change once, in a fixed order.
pub fn changes(from: &Roster, to: &Roster) -> Vec<Change> {
    let mut out = BTreeSet::new();
    for m in to.members() {
        match from.member(&m.code) {
            None => {
                out.insert(Change::Admit(m.code.clone()));
            }
            Some(old) => {
                if old.signing_key != m.signing_key {
                    out.insert(Change::Key(m.code.clone()));
                }
                if old.name != m.name
                    || old.tls_pin != m.tls_pin
                    || old.endpoints != m.endpoints
                    || old.community != m.community
                {
                    out.insert(Change::Entry(m.code.clone()));
                }
                match (from.is_suspended(&m.code), to.is_suspended(&m.code)) {
                    (false, true) => {
                        out.insert(Change::Suspend(m.code.clone()));
                    }
                    (true, false) => {
                        out.insert(Change::Reinstate(m.code.clone()));
                    }
                    _ => {}
                }
            }
        }
    }
    for m in from.members() {
        if to.member(&m.code).is_none() {
            out.insert(Change::Remove(m.code.clone()));
        }
    }
    if from.policy_terms() != to.policy_terms() {
        out.insert(Change::Policy);
    }
    if from.stated_rules() != to.stated_rules() {
        out.insert(Change::Rules);
    }
    out.into_iter().collect()
}

/// Whether the signatures of `signed` meet `rule` in roster `from`: the members of its community
/// who are not suspended there, less those the amendment suspends or removes (`subjects`), every
/// one of them or at least `at_least` of them, each by its key in `from`.
fn consensus(
    from: &Roster,
    rule: &Rule,
    subjects: &BTreeSet<MemberCode>,
    signed: &[(MemberCode, VerifyingKey)],
) -> Result<(), String> {
    let eligible: Vec<&MemberCode> = from
        .members()
        .filter(|m| m.community == rule.community && !from.is_suspended(&m.code) && !subjects.contains(&m.code))
        .map(|m| &m.code)
        .collect();
    let signed_by = |code: &MemberCode| {
        let key = from.member(code).map(|m| m.signing_key);
        signed.iter().any(|(c, k)| c == code && Some(*k) == key)
    };
    let missing: Vec<String> = eligible.iter().filter(|c| !signed_by(c)).map(|c| c.to_string()).collect();
    let have = eligible.len() - missing.len();
    let need = match rule.at_least {
        None => eligible.len(),
        Some(n) => n as usize,
    };
    let community = community_name(rule.community);
    if eligible.is_empty() || need > eligible.len() {
        return Err(format!(
            "the rule asks for {need} signatures of {community} members and {} can sign",
            eligible.len()
        ));
    }
    if have < need {
        return Err(match rule.at_least {
            None => format!("every {community} member must sign; missing: {}", missing.join(", ")),
            Some(n) => format!("at least {n} {community} members must sign; {have} did"),
        });
    }
    Ok(())
}

fn community_name(c: Community) -> &'static str {
    c.as_str()
}

/// Checks that `next` may follow `current`: the next number, naming `current` by its hash, a
/// valid roster, and for every change it makes the signatures `current`'s rules ask. Returns the
/// new version, or the first reason it may not follow, naming the field or the change.
pub fn check_amendment(current: &RosterVersion, next: &RosterVersionFile) -> Result<RosterVersion, RosterError> {
    let proposal = check_proposal(current, next)?;
    rules_met(current, &proposal)?;
    Ok(proposal)
}

/// Checks a proposed version as far as it can be without its rule: the next number, naming
/// `current` by its hash, a valid roster that changes something, and every signature it carries
/// verifying, each by the member's key in `current` or the key the version gives it. A proposal
/// that passes may still lack signatures ([`rules_met`]); one that fails was forged or altered.
pub fn check_proposal(current: &RosterVersion, next: &RosterVersionFile) -> Result<RosterVersion, RosterError> {
    let (roster, previous) = checked_header(next)?;
    if next.number != current.number + 1 {
        return Err(err(
            "number",
            format!(
                "version {} cannot follow version {}: the next is {}",
                next.number,
                current.number,
                current.number + 1
            ),
        ));
    }
    if previous != Some(current.hash) {
        return Err(err(
            "previous",
            format!("it does not amend version {} ({})", current.number, hex::encode(current.hash)),
        ));
    }
    let hash = version_hash(next.number, previous.as_ref(), &roster);
    let from = &current.roster;
    let signed = verified_signatures(next, &hash, |code, key| {
        from.member(code).is_some_and(|m| m.signing_key == *key)
            || roster.member(code).is_some_and(|m| m.signing_key == *key)
    })?;
    if changes(from, &roster).is_empty() {
        return Err(err("roster", "the version changes nothing"));
    }
    Ok(RosterVersion { number: next.number, previous, roster, hash, signed_by: signed })
}

/// Whether a checked proposal ([`check_proposal`]) carries, for every change it makes to
/// `current`, the signatures `current`'s rules ask; else the first change that lacks them and who
/// must still sign.
pub fn rules_met(current: &RosterVersion, proposal: &RosterVersion) -> Result<(), RosterError> {
    let from = &current.roster;
    let roster = &proposal.roster;
    let signed = &proposal.signed_by;
    let changes = changes(from, roster);
    let rules = from.rules();
    let subjects: BTreeSet<MemberCode> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Suspend(m) | Change::Remove(m) => Some(m.clone()),
            _ => None,
        })
        .collect();
    let by_key = |code: &MemberCode, key: Option<VerifyingKey>| {
        key.is_some_and(|key| signed.iter().any(|(c, k)| c == code && *k == key))
    };
    let current_key = |code: &MemberCode| from.member(code).map(|m| m.signing_key);
    let new_key = |code: &MemberCode| roster.member(code).map(|m| m.signing_key);
    let mut refusals: BTreeMap<String, String> = BTreeMap::new();
    for change in &changes {
        let (what, checked) = match change {
            Change::Admit(m) | Change::Suspend(m) | Change::Reinstate(m) | Change::Remove(m) => {
                let verb = match change {
                    Change::Admit(_) => "admitting",
                    Change::Suspend(_) => "suspending",
                    Change::Reinstate(_) => "reinstating",
                    _ => "removing",
                };
                (format!("{verb} {m}"), consensus(from, &rules.membership, &subjects, signed))
            }
            Change::Policy => {
                ("the name, policy or deadlines".to_string(), consensus(from, &rules.policy, &subjects, signed))
            }
            Change::Rules => ("the rules".to_string(), consensus(from, &rules.rules, &subjects, signed)),
            Change::Entry(m) => {
                let ok = by_key(m, current_key(m)) || consensus(from, &rules.membership, &subjects, signed).is_ok();
                (format!("{m}'s entry"), if ok { Ok(()) } else { Err(format!("{m}'s current key must sign")) })
            }
            Change::Key(m) => {
                let new_signed = by_key(m, new_key(m));
                let checked = if !new_signed {
                    Err(format!("{m}'s new key must sign"))
                } else if by_key(m, current_key(m)) {
                    Ok(())
                } else {
                    // The member whose key is replaced is not asked: its old key is lost or in
                    // other hands.
                    let mut without = subjects.clone();
                    without.insert(m.clone());
                    consensus(from, &rules.key_replacement, &without, signed)
                        .map_err(|why| format!("a rotation needs {m}'s current key; a replacement without it: {why}"))
                };
                (format!("{m}'s signing key"), checked)
            }
        };
        if let Err(why) = checked {
            refusals.insert(what, why);
        }
    }
    if let Some((what, why)) = refusals.into_iter().next() {
        return Err(err("signatures", format!("{what}: {why}")));
    }
    Ok(())
}

/// Adds to `into` the signatures of `from` it lacks (a member and key it does not carry yet), both
/// being the same proposed version; how many it added.
pub fn merge_signatures(into: &mut RosterVersionFile, from: &RosterVersionFile) -> usize {
    let mut added = 0;
    for s in &from.signatures {
        if !into.signatures.iter().any(|t| t.member == s.member && t.key == s.key) {
            into.signatures.push(s.clone());
            added += 1;
        }
    }
    added
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Admit(m) => write!(f, "admits {m}"),
            Change::Suspend(m) => write!(f, "suspends {m}"),
            Change::Reinstate(m) => write!(f, "reinstates {m}"),
            Change::Remove(m) => write!(f, "removes {m}"),
            Change::Policy => f.write_str("changes the name, policy or deadlines"),
            Change::Rules => f.write_str("changes the rules for amending the roster"),
            Change::Key(m) => write!(f, "gives {m} a new signing key"),
            Change::Entry(m) => write!(f, "changes {m}'s entry"),
        }
    }
}

/// The unsigned file of the version that would follow `current` with roster `roster`, and its
/// hash, for members to sign.
pub fn propose(current: &RosterVersion, roster: &Roster) -> (RosterVersionFile, [u8; 32]) {
    let number = current.number + 1;
    let hash = version_hash(number, Some(&current.hash), roster);
    let file = RosterVersionFile {
        format: ROSTER_VERSION_FORMAT.to_string(),
        v: FORMAT_VERSION,
        number,
        previous: Some(hex::encode(current.hash)),
        roster: roster.to_file(),
        signatures: Vec::new(),
    };
    (file, hash)
}

/// The first version of a roster, unsigned.
pub fn first(roster: &Roster) -> RosterVersionFile {
    RosterVersionFile {
        format: ROSTER_VERSION_FORMAT.to_string(),
        v: FORMAT_VERSION,
        number: 1,
        previous: None,
        roster: roster.to_file(),
        signatures: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use adi_wire::files::{MemberEntry, RosterFile, RuleEntry, RulesFile};

    use super::*;
    use crate::roster::default_policy;

    /// Five ASEAN members, two Plus members; each member's key from its seed.
    const WORLD: [(&str, &str, u8); 7] = [
        ("BN", "ASEAN", 1),
        ("ID", "ASEAN", 2),
        ("MY", "ASEAN", 3),
        ("PH", "ASEAN", 4),
        ("VN", "ASEAN", 5),
        ("CN", "PLUS", 6),
        ("US", "PLUS", 7),
    ];

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn code(c: &str) -> MemberCode {
        MemberCode::parse(c).unwrap()
    }

    fn entry(code: &str, community: &str, seed: u8) -> MemberEntry {
        MemberEntry {
            code: code.into(),
            name: format!("Member {code}"),
            community: community.into(),
            signing_key: hex::encode(key(seed).verifying_key().as_bytes()),
            tls_pin: hex::encode([seed; 32]),
            endpoints: vec![format!("127.0.0.1:{}", 7000 + seed as u16)],
        }
    }

    fn roster_file(members: &[(&str, &str, u8)]) -> RosterFile {
        RosterFile {
            version: 1,
            name: "ADMM-Plus".into(),
            policy: default_policy(),
            deadlines: None,
            rules: None,
            suspended: Vec::new(),
            members: members.iter().map(|(c, k, s)| entry(c, k, *s)).collect(),
        }
    }

    fn genesis() -> RosterVersion {
        check_first(&first(&Roster::from_file(&roster_file(&WORLD)).unwrap())).unwrap()
    }

    /// The version after `current` with roster `file`, signed by each (member, key seed).
    fn amended(current: &RosterVersion, file: &RosterFile, signers: &[(&str, u8)]) -> RosterVersionFile {
        let (mut v, hash) = propose(current, &Roster::from_file(file).unwrap());
        v.signatures = signers.iter().map(|(m, s)| sign(&code(m), &key(*s), &hash)).collect();
        v
    }

    const ASEAN: [(&str, u8); 5] = [("BN", 1), ("ID", 2), ("MY", 3), ("PH", 4), ("VN", 5)];

    fn refusal(current: &RosterVersion, v: &RosterVersionFile) -> String {
        check_amendment(current, v).map(|_| ()).unwrap_err().to_string()
    }

    #[test]
    fn admitting_a_member_takes_every_asean_signature_and_no_plus_signature_stands_in() {
        let g = genesis();
        let mut with_tl = WORLD.to_vec();
        with_tl.push(("TL", "ASEAN", 8));
        let file = roster_file(&with_tl);
        let v2 = check_amendment(&g, &amended(&g, &file, &ASEAN)).unwrap();
        assert_eq!(changes(&g.roster, &v2.roster), vec![Change::Admit(code("TL"))]);
        assert!(v2.roster.member(&code("TL")).is_some());
        assert_eq!(v2.previous, Some(g.hash));
        // One ASEAN signature short, whatever Plus members sign.
        let short = amended(&g, &file, &[("BN", 1), ("ID", 2), ("MY", 3), ("PH", 4), ("CN", 6), ("US", 7)]);
        let why = refusal(&g, &short);
        assert!(why.contains("admitting TL: every ASEAN member must sign; missing: VN"), "{why}");
        // A policy change likewise.
        let mut policy = roster_file(&WORLD);
        policy.policy.scopes[0].communities.push("PLUS".into());
        assert!(check_amendment(&g, &amended(&g, &policy, &ASEAN)).is_ok());
        assert!(refusal(&g, &amended(&g, &policy, &ASEAN[..4])).contains("the name, policy or deadlines"));
    }

    #[test]
    fn a_version_altered_after_signing_or_out_of_order_is_refused() {
        let g = genesis();
        let mut with_tl = WORLD.to_vec();
        with_tl.push(("TL", "ASEAN", 8));
        let mut v = amended(&g, &roster_file(&with_tl), &ASEAN);
        // The signed roster changed afterwards: TL's endpoint moved.
        v.roster.members.last_mut().unwrap().endpoints = vec!["10.0.0.1:7443".into()];
        assert!(refusal(&g, &v).contains("signature does not verify"), "{}", refusal(&g, &v));
        let mut v = amended(&g, &roster_file(&with_tl), &ASEAN);
        v.number = 3;
        assert!(refusal(&g, &v).contains("cannot follow version 1"));
        let mut v = amended(&g, &roster_file(&with_tl), &ASEAN);
        v.previous = Some(hex::encode([9u8; 32]));
        assert!(refusal(&g, &v).contains("does not amend version 1"));
        // A signature by a key that is nobody's.
        let mut v = amended(&g, &roster_file(&with_tl), &ASEAN);
        v.signatures[0] = sign(
            &code("BN"),
            &key(99),
            &version_hash(2, Some(&g.hash), &Roster::from_file(&roster_file(&with_tl)).unwrap()),
        );
        assert!(refusal(&g, &v).contains("signatures[0].key"));
        // The same version twice changes nothing the second time.
        let v2 = check_amendment(&g, &amended(&g, &roster_file(&with_tl), &ASEAN)).unwrap();
        assert!(refusal(&v2, &amended(&v2, &roster_file(&with_tl), &ASEAN)).contains("changes nothing"));
    }

    #[test]
    fn a_key_rotates_with_the_old_and_new_key_and_is_replaced_only_by_consensus_and_the_new_key() {
        let g = genesis();
        // CN's signing key alone changes.
        let mut file = roster_file(&WORLD);
        file.members[5].signing_key = hex::encode(key(16).verifying_key().as_bytes());
        let v2 = check_amendment(&g, &amended(&g, &file, &[("CN", 6), ("CN", 16)])).unwrap();
        assert_eq!(changes(&g.roster, &v2.roster), vec![Change::Key(code("CN"))]);
        // Its signing and TLS keys together: the same two signatures.
        let mut both = WORLD.to_vec();
        both[5] = ("CN", "PLUS", 16);
        let v2 = check_amendment(&g, &amended(&g, &roster_file(&both), &[("CN", 6), ("CN", 16)])).unwrap();
        assert_eq!(changes(&g.roster, &v2.roster), vec![Change::Key(code("CN")), Change::Entry(code("CN"))]);
        // The new key alone, or the old key alone, is not enough.
        assert!(refusal(&g, &amended(&g, &file, &[("CN", 16)])).contains("a rotation needs CN's current key"));
        assert!(refusal(&g, &amended(&g, &file, &[("CN", 6)])).contains("CN's new key must sign"));
        // A lost key: the ASEAN members and the new key replace it.
        let mut replaced = ASEAN.to_vec();
        replaced.push(("CN", 16));
        assert!(check_amendment(&g, &amended(&g, &file, &replaced)).is_ok());
        // An ASEAN member's lost key: the other ASEAN members and its new key, without the old.
        let mut lost = roster_file(&WORLD);
        lost.members[4].signing_key = hex::encode(key(15).verifying_key().as_bytes());
        let others = [("BN", 1), ("ID", 2), ("MY", 3), ("PH", 4), ("VN", 15)];
        assert!(check_amendment(&g, &amended(&g, &lost, &others)).is_ok());
        assert!(refusal(&g, &amended(&g, &lost, &others[1..])).contains("missing: BN"));
        assert!(refusal(&g, &amended(&g, &file, &ASEAN)).contains("CN's new key must sign"));
        // A member's own endpoints: its current key suffices, another member's does not.
        let mut moved = roster_file(&WORLD);
        moved.members[5].endpoints = vec!["10.6.0.1:7443".into()];
        assert!(check_amendment(&g, &amended(&g, &moved, &[("CN", 6)])).is_ok());
        assert!(refusal(&g, &amended(&g, &moved, &[("US", 7)])).contains("CN's current key must sign"));
    }

    #[test]
    fn a_suspended_member_does_not_block_its_own_suspension_and_signs_nothing_while_suspended() {
        let g = genesis();
        let mut file = roster_file(&WORLD);
        file.suspended = vec!["VN".into()];
        let others = &ASEAN[..4];
        let v2 = check_amendment(&g, &amended(&g, &file, others)).unwrap();
        assert!(v2.roster.is_suspended(&code("VN")));
        assert!(refusal(&g, &amended(&g, &file, &ASEAN[..3])).contains("missing: PH"));
        // While suspended, VN is not needed to admit a member, and its signature does not count.
        let mut with_tl = WORLD.to_vec();
        with_tl.push(("TL", "ASEAN", 8));
        let mut next = roster_file(&with_tl);
        next.suspended = vec!["VN".into()];
        assert!(check_amendment(&v2, &amended(&v2, &next, others)).is_ok());
        let mut reinstated = roster_file(&WORLD);
        reinstated.suspended.clear();
        assert!(check_amendment(&v2, &amended(&v2, &reinstated, others)).is_ok());
    }

    #[test]
    fn a_threshold_is_adopted_by_consensus_and_then_applies() {
        let g = genesis();
        let three = RuleEntry { community: "ASEAN".into(), at_least: Some(3) };
        let mut file = roster_file(&WORLD);
        file.rules = Some(RulesFile {
            membership: three.clone(),
            policy: three.clone(),
            key_replacement: three.clone(),
            rules: RuleEntry { community: "ASEAN".into(), at_least: None },
        });
        assert!(refusal(&g, &amended(&g, &file, &ASEAN[..3])).contains("the rules: every ASEAN member must sign"));
        let v2 = check_amendment(&g, &amended(&g, &file, &ASEAN)).unwrap();
        let mut with_tl = WORLD.to_vec();
        with_tl.push(("TL", "ASEAN", 8));
        let mut next = roster_file(&with_tl);
        next.rules = file.rules.clone();
        assert!(check_amendment(&v2, &amended(&v2, &next, &ASEAN[..3])).is_ok());
        let why = refusal(&v2, &amended(&v2, &next, &ASEAN[..2]));
        assert!(why.contains("at least 3 ASEAN members must sign; 2 did"), "{why}");
    }

    #[test]
    fn the_first_versions_hash_is_the_networks_identity_however_the_file_is_written() {
        let a = genesis();
        let mut reordered = roster_file(&WORLD);
        reordered.members.reverse();
        let b = check_first(&first(&Roster::from_file(&reordered).unwrap())).unwrap();
        assert_eq!(a.hash, b.hash);
        let mut other = roster_file(&WORLD);
        other.name = "another network".into();
        assert_ne!(check_first(&first(&Roster::from_file(&other).unwrap())).unwrap().hash, a.hash);
        let mut second = first(&a.roster);
        second.number = 2;
        assert!(check_first(&second).is_err());
    }
}
