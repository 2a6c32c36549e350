//! Deterministic members, rosters and cores for tests and simulations: keys derive from a seed
//! byte, so every run builds the same world.

use adi_wire::files::{MemberEntry, RosterFile, ROSTER_VERSION};
use ed25519_dalek::SigningKey;

use crate::discipline::DisciplineConfig;
use crate::hotline::{Hotline, HotlineConfig, Restored};
use crate::limits::Limits;
use crate::roster::{default_policy, MemberCode, Roster};

/// A small world: two ASEAN members, one Plus member, one observer. (code, community, seed)
pub const WORLD: [(&str, &str, u8); 4] =
    [("PH", "ASEAN", 1), ("VN", "ASEAN", 2), ("CN", "PLUS", 3), ("TL", "OBSERVER", 4)];

/// The signing key of a fixture member.
pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// A roster of fixture members with the default policy; TLS pins and endpoints are placeholders.
pub fn roster(members: &[(&str, &str, u8)]) -> Roster {
    let members = members
        .iter()
        .map(|(code, community, seed)| MemberEntry {
            code: code.to_string(),
            name: format!("Member {code}"),
            community: community.to_string(),
            signing_key: hex::encode(key(*seed).verifying_key().as_bytes()),
            tls_pin: hex::encode([*seed; 32]),
            endpoints: vec![format!("127.0.0.1:{}", 7000 + *seed as u16)],
        })
        .collect();
    let file = RosterFile {
        version: ROSTER_VERSION,
        name: "fixture".into(),
        policy: default_policy(),
        deadlines: None,
        rules: None,
        suspended: Vec::new(),
        members,
    };
    // The fixture members are valid by construction.
    Roster::from_file(&file).expect("fixture roster is valid")
}

/// A fresh core for member `me` of [`WORLD`].
pub fn hotline(me: &str) -> Hotline {
    let seed = WORLD.iter().find(|m| m.0 == me).map(|m| m.2).expect("a member of the fixture world");
    Hotline::new(config(me, seed), Restored::default(), 0).expect("a fresh core")
}

/// The configuration of member `me` of [`WORLD`].
pub fn config(me: &str, seed: u8) -> HotlineConfig {
    HotlineConfig {
        me: MemberCode::parse(me).expect("valid fixture code"),
        signing_key: key(seed),
        roster: roster(&WORLD),
        limits: Limits::default(),
        default_caveat: "TEST CAVEAT".into(),
        discipline: DisciplineConfig::default(),
    }
}

/// One checked KeyPackage from each of these cores, as a home member's node claims them.
pub fn key_packages_of(members: &mut [&mut Hotline]) -> Vec<(MemberCode, adi_mls::KeyPackage)> {
    let roster = roster(&WORLD);
    let keys =
        |code: &str| MemberCode::parse(code).ok().and_then(|c| roster.member(&c)).map(|m| m.signing_key.to_bytes());
    let mut seen = std::collections::HashSet::new();
    members
        .iter_mut()
        .map(|h| {
            let bytes = h.key_packages(1).expect("a KeyPackage").remove(0);
            let (code, kp) = adi_mls::check_key_package(&bytes, &keys, &mut seen).expect("a valid KeyPackage");
            (MemberCode::parse(&code).expect("a member code"), kp)
        })
        .collect()
}
