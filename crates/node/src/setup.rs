//! Local set-up: a member's keys, certificate, configuration and card; rosters from cards; and a
//! whole demo network's state.
//!
//! Private keys are written with mode 0600 and never printed or logged. Known members' names and
//! communities come from `data/members.json`, embedded as data: no member is named in logic.

use std::fs;
use std::path::{Path, PathBuf};

use adi_core::roster::{default_policy, member_from_entry};
use adi_core::Roster;
use adi_store::{Operator, Store};
use adi_wire::files::{MemberCard, MemberEntry, RosterFile, CARD_VERSION, ROSTER_VERSION};
use anyhow::{anyhow, bail, Context};
use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, EncodePrivateKey};
use ed25519_dalek::SigningKey;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::clock::now_ms;
use crate::config::{
    ApiSection, ConfigFile, DisciplineSection, FederationSection, LimitsSection, RetentionSection, StoreSection,
    CONFIG_VERSION,
};
use crate::http::auth::{hash_password, token_hash};
use crate::state::open_store;
use crate::tls;

/// The members data shipped with ADI.
const MEMBERS_JSON: &str = include_str!("../../../data/members.json");

#[derive(Deserialize)]
struct MembersData {
    roster_2022: Vec<KnownMember>,
    admitted_later: Vec<KnownMember>,
}

/// A member as the shipped data lists it.
#[derive(Clone, Debug, Deserialize)]
pub struct KnownMember {
    pub code: String,
    pub name: String,
    pub community: String,
}

fn members_data() -> MembersData {
    // The file is part of the source tree and checked by a test; a parse failure is a build defect.
    serde_json::from_str(MEMBERS_JSON).expect("data/members.json is valid")
}

/// The 18 members of the 2022 ADMM-Plus, the default of generated networks.
pub fn members_2022() -> Vec<KnownMember> {
    members_data().roster_2022
}

/// Every member the shipped data knows, including those admitted later.
pub fn known_members() -> Vec<KnownMember> {
    let d = members_data();
    d.roster_2022.into_iter().chain(d.admitted_later).collect()
}

/// A member made up for measuring larger networks than the shipped one (`adi bench --members`
/// past 19): code `T` and its number, a test roster's PLUS member.
pub fn test_member(number: usize) -> KnownMember {
    KnownMember { code: format!("T{number:02}"), name: format!("Test member {number}"), community: "PLUS".into() }
}

/// Options of `adi init`.
#[derive(Clone, Debug)]
pub struct InitOptions {
    pub member: String,
    pub dir: PathBuf,
    pub name: Option<String>,
    pub community: Option<String>,
    /// Federation endpoints for the card, in order of preference.
    pub endpoints: Vec<String>,
    pub federation_listen: Vec<String>,
    pub api_listen: String,
    pub discipline: DisciplineSection,
    /// The PostgreSQL database the node's store is on (`postgres://…`); the embedded SQLite file
    /// `node.db` when `None`.
    pub store: Option<String>,
}

/// What `adi init` wrote.
pub struct InitOutput {
    pub config: PathBuf,
    pub card: PathBuf,
    pub entry: MemberEntry,
}

pub use crate::files::write_private;

/// Creates a member's keys, certificate, configuration, card and a roster of itself alone.
pub fn init_member(opts: &InitOptions) -> anyhow::Result<InitOutput> {
    let code = adi_core::MemberCode::parse(&opts.member).map_err(|e| anyhow!("--member: {e}"))?;
    let known = known_members().into_iter().find(|m| m.code == code.as_str());
    let name = opts
        .name
        .clone()
        .or_else(|| known.as_ref().map(|k| k.name.clone()))
        .ok_or_else(|| anyhow!("{code} is not in the shipped members data; give --name and --community"))?;
    let community = opts
        .community
        .clone()
        .or_else(|| known.as_ref().map(|k| k.community.clone()))
        .ok_or_else(|| anyhow!("{code} is not in the shipped members data; give --community"))?;
    if let Some(url) = &opts.store {
        if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
            bail!("--store: a PostgreSQL address (postgres://user@host:port/database), not '{url}'");
        }
    }
    if opts.dir.join("config.toml").exists() {
        bail!("{} already holds a node configuration; refusing to overwrite its keys", opts.dir.display());
    }
    fs::create_dir_all(opts.dir.join("keys")).with_context(|| format!("cannot create {}", opts.dir.display()))?;

    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let signing_key = SigningKey::from_bytes(&seed);
    let pem = signing_key.to_pkcs8_pem(LineEnding::LF).map_err(|e| anyhow!("cannot encode the signing key: {e}"))?;
    write_private(&opts.dir.join("keys/signing.pem"), pem.as_bytes())?;

    let mut master = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut master);
    write_private(&opts.dir.join("keys/master.key"), format!("{}\n", hex::encode(master)).as_bytes())?;

    let identity = tls::generate_identity(code.as_str())?;
    fs::write(opts.dir.join("keys/node.crt"), &identity.cert_pem)?;
    write_private(&opts.dir.join("keys/node.key"), identity.key_pem.as_bytes())?;
    let (cert, _) = tls::load_identity(&opts.dir.join("keys/node.crt"), &opts.dir.join("keys/node.key"))?;
    let pin = tls::spki_pin(&cert).ok_or_else(|| anyhow!("cannot read the generated certificate"))?;

    let entry = MemberEntry {
        code: code.to_string(),
        name,
        community,
        signing_key: hex::encode(signing_key.verifying_key().as_bytes()),
        tls_pin: hex::encode(pin),
        endpoints: opts.endpoints.clone(),
    };
    member_from_entry(&entry).map_err(|e| anyhow!("{e}"))?;
    let card = MemberCard { version: CARD_VERSION, member: entry.clone() };
    let card_path = opts.dir.join("card.json");
    fs::write(&card_path, serde_json::to_string_pretty(&card)? + "\n")?;

    let roster = assemble_roster("ADI roster", vec![entry.clone()])?;
    fs::write(opts.dir.join("roster.toml"), roster.to_toml())?;

    let config = ConfigFile {
        version: CONFIG_VERSION,
        member: code.to_string(),
        roster: "roster.toml".into(),
        roster_versions: None,
        database: if opts.store.is_some() { String::new() } else { "node.db".into() },
        store: opts.store.clone().map(|url| StoreSection {
            kind: "postgres".into(),
            url: Some(url),
            password_file: None,
        }),
        pair: None,
        signing_key: "keys/signing.pem".into(),
        tls_cert: "keys/node.crt".into(),
        tls_key: "keys/node.key".into(),
        master_key: Some("keys/master.key".into()),
        default_caveat: "ADMM-PLUS RESTRICTED".into(),
        api: ApiSection { listen: opts.api_listen.clone(), tls: false, metrics_listen: None },
        federation: FederationSection { listen: opts.federation_listen.clone() },
        discipline: opts.discipline.clone(),
        limits: LimitsSection::default(),
        retention: RetentionSection::default(),
    };
    let config_path = opts.dir.join("config.toml");
    fs::write(&config_path, toml::to_string_pretty(&config)?)?;
    Ok(InitOutput { config: config_path, card: card_path, entry })
}

/// Reads member cards.
pub fn read_cards(paths: &[PathBuf]) -> anyhow::Result<Vec<MemberEntry>> {
    paths
        .iter()
        .map(|p| {
            let text = fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
            let card: MemberCard =
                serde_json::from_str(&text).map_err(|e| anyhow!("{}: not a member card: {e}", p.display()))?;
            if card.version != CARD_VERSION {
                bail!("{}: field `version`: unsupported card version {}", p.display(), card.version);
            }
            member_from_entry(&card.member)
                .map_err(|e| anyhow!("{}: field `member.{}`: {}", p.display(), e.field, e.message))?;
            Ok(card.member)
        })
        .collect()
}

/// A roster of these members with the default line policy, checked.
pub fn assemble_roster(name: &str, members: Vec<MemberEntry>) -> anyhow::Result<RosterFile> {
    let file = RosterFile {
        version: ROSTER_VERSION,
        name: name.to_string(),
        policy: default_policy(),
        deadlines: None,
        rules: None,
        suspended: Vec::new(),
        members,
    };
    Roster::from_file(&file).map_err(|e| anyhow!("roster: {e}"))?;
    Ok(file)
}

/// Makes a fresh operator token: 32 random bytes, base64url.
pub fn new_token() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("adi_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Days an operator's API token is accepted, unless `adi operator` is told otherwise.
pub const OPERATOR_TOKEN_DAYS: u64 = 90;

/// Adds (or replaces) an operator in a node's store, its token valid for
/// [`OPERATOR_TOKEN_DAYS`], and returns the token, shown once.
pub fn add_operator(store: &dyn Store, name: &str, role: &str) -> anyhow::Result<String> {
    add_operator_for(store, name, role, Some(OPERATOR_TOKEN_DAYS))
}

/// Adds (or replaces) an operator, its token valid for `token_days` (for ever when `None`), and
/// returns the token, shown once. Any change ends the operator's console sessions.
pub fn add_operator_for(store: &dyn Store, name: &str, role: &str, token_days: Option<u64>) -> anyhow::Result<String> {
    let Some(role) = adi_core::Role::parse(role) else {
        let all: Vec<&str> = adi_core::Role::ALL.iter().map(|r| r.as_str()).collect();
        bail!("unknown role '{role}', expected one of {}", all.join(", "));
    };
    if name.trim().is_empty() || name.len() > 100 {
        bail!("an operator name is 1 to 100 characters");
    }
    // The name travels with what the operator releases, translates and reviews.
    if let Err(e) = adi_core::check_text("name", name, adi_core::TextKind::Line) {
        bail!("an operator {}", e.message);
    }
    let token = new_token();
    let now = now_ms();
    let op = Operator { name: name.to_string(), role, created_ms: now };
    let expires = token_days.map(|d| now.saturating_add(d.saturating_mul(86_400_000)));
    store.add_operator(&op, token_hash(&token), expires)?;
    Ok(token)
}

/// Refuses a console password shorter than 12 characters.
pub fn check_password(password: &str) -> anyhow::Result<()> {
    if password.chars().count() < 12 {
        bail!("a console password is at least 12 characters");
    }
    Ok(())
}

/// Sets an operator's console password (argon2id); at least 12 characters.
pub fn set_password(store: &dyn Store, name: &str, password: &str) -> anyhow::Result<()> {
    check_password(password)?;
    let phc = hash_password(password).map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
    if !store.set_password(name, &phc)? {
        bail!("no operator {name}");
    }
    Ok(())
}

/// Lowest and highest ports [`free_port_run`] hands out: below Linux's default ephemeral range
/// (32768 and up), so that outgoing connections cannot take a port between choice and bind.
const PORT_RUN_FIRST: u16 = 20_000;
const PORT_RUN_LAST: u16 = 32_000;

/// Finds `n` consecutive free loopback ports for a local network and returns the first. Within
/// one process no run is handed out twice, so concurrent callers (tests) never collide; the
/// starting point depends on the process id, so concurrent processes rarely do.
pub fn free_port_run(n: u16) -> Option<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let span = u32::from(PORT_RUN_LAST - PORT_RUN_FIRST);
    let _ = NEXT.compare_exchange(0, 1 + (std::process::id() * 97) % span, Ordering::SeqCst, Ordering::SeqCst);
    for _ in 0..(span / u32::from(n.max(1))) {
        let offset = NEXT.fetch_add(u32::from(n), Ordering::SeqCst) % span;
        let first = PORT_RUN_FIRST as u32 + offset;
        if first + u32::from(n) > u32::from(PORT_RUN_LAST) {
            continue;
        }
        let first = first as u16;
        if (first..first + n).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return Some(first);
        }
    }
    None
}

/// One member of a demo network.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DemoMember {
    pub code: String,
    pub api_url: String,
    pub token: String,
    pub config: String,
    /// The duty officer's console password (operator `duty-<code>`).
    #[serde(default)]
    pub console_password: String,
}

/// `demo.json`: what a demo network's operators need.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DemoState {
    pub members: Vec<DemoMember>,
}

/// The demo's discipline: no release step, so that the demo flows; short deadlines and frequent
/// link tests, so that escalation and the link matrix show within a minute.
pub fn demo_discipline() -> DisciplineSection {
    DisciplineSection {
        deadlines: Some(adi_wire::files::DeadlinesFile {
            flash_s: 60,
            immediate_s: 15,
            priority_s: 300,
            routine_s: 600,
        }),
        escalation_repeat_s: 30,
        alternates: vec!["principal".into()],
        link_test_interval_s: 30,
        release_required: false,
        ..DisciplineSection::default()
    }
}

/// Ports of a demo member: federation at `base + 2i`, API at `base + 2i + 1`.
pub fn demo_ports(base_port: u16, index: usize) -> anyhow::Result<(u16, u16)> {
    let fed = base_port as usize + 2 * index;
    if fed + 1 > u16::MAX as usize {
        bail!("--base-port {base_port} leaves no room for {} members", index + 1);
    }
    Ok((fed as u16, fed as u16 + 1))
}

/// Writes a demo network's state: for each member, keys, config and card; one roster shared by
/// all; a duty-officer token per member; and `demo.json`. Calls `progress` after each member.
pub fn demo_init(
    state: &Path,
    members: &[String],
    base_port: u16,
    progress: impl FnMut(usize, &str),
) -> anyhow::Result<DemoState> {
    let known = known_members();
    let members = members
        .iter()
        .map(|code| {
            known
                .iter()
                .find(|k| k.code == *code)
                .cloned()
                .ok_or_else(|| anyhow!("{code} is not in the shipped members data"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    demo_init_on(state, &members, base_port, None, progress)
}

/// As [`demo_init`], each member's store on a database of its own on the PostgreSQL server at
/// `postgres` (an address without a database) when one is given: `<prefix>_<member>`, made here.
pub fn demo_init_on(
    state: &Path,
    members: &[KnownMember],
    base_port: u16,
    postgres: Option<(&str, &str)>,
    mut progress: impl FnMut(usize, &str),
) -> anyhow::Result<DemoState> {
    if state.join("demo.json").exists() {
        bail!("{} already holds a demo network; remove it or choose another --state", state.display());
    }
    let mut outputs = Vec::new();
    for (i, member) in members.iter().enumerate() {
        let code = &member.code;
        let (fed, api) = demo_ports(base_port, i)?;
        let out = init_member(&InitOptions {
            member: code.clone(),
            dir: state.join(code),
            name: Some(member.name.clone()),
            community: Some(member.community.clone()),
            endpoints: vec![format!("127.0.0.1:{fed}")],
            federation_listen: vec![format!("127.0.0.1:{fed}")],
            api_listen: format!("127.0.0.1:{api}"),
            discipline: demo_discipline(),
            store: match postgres {
                Some((server, prefix)) => {
                    let name = format!("{prefix}_{}", code.to_ascii_lowercase());
                    adi_store::postgres_admin::create_database(server, &name)?;
                    Some(format!("{}/{name}", server.trim_end_matches('/')))
                }
                None => None,
            },
        })?;
        outputs.push((out, api));
        progress(i + 1, code);
    }
    let roster = assemble_roster("ADI demo network", outputs.iter().map(|(o, _)| o.entry.clone()).collect())?;
    let text = roster.to_toml();
    fs::write(state.join("roster.toml"), &text)?;
    let mut demo = DemoState { members: Vec::new() };
    for (out, api) in &outputs {
        let dir = out.config.parent().unwrap_or(state);
        fs::write(dir.join("roster.toml"), &text)?;
        let config = crate::config::NodeConfig::load(&out.config).map_err(|e| anyhow!("{e}"))?;
        let store = open_store(&config)?;
        let operator = format!("duty-{}", out.entry.code);
        let token = add_operator(&store, &operator, "duty")?;
        let console_password = new_token();
        set_password(&store, &operator, &console_password)?;
        demo.members.push(DemoMember {
            code: out.entry.code.clone(),
            api_url: format!("http://127.0.0.1:{api}"),
            token,
            config: fs::canonicalize(&out.config)?.display().to_string(),
            console_password,
        });
    }
    write_private(&state.join("demo.json"), (serde_json::to_string_pretty(&demo)? + "\n").as_bytes())?;
    Ok(demo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_may_hold_test_members_past_the_shipped_ones() {
        let dir = tempfile::tempdir().unwrap();
        let ph = known_members().into_iter().find(|m| m.code == "PH").unwrap();
        let members = [ph, test_member(20)];
        let base = free_port_run(4).unwrap();
        let demo = demo_init_on(dir.path(), &members, base, None, |_, _| {}).unwrap();
        assert_eq!(demo.members.iter().map(|m| m.code.as_str()).collect::<Vec<_>>(), ["PH", "T20"]);
        let roster = std::fs::read_to_string(dir.path().join("roster.toml")).unwrap();
        assert!(roster.contains("Test member 20"), "{roster}");
        // A demo of shipped members refuses a code it does not know.
        let other = tempfile::tempdir().unwrap();
        let refused = demo_init(other.path(), &["PH".into(), "T20".into()], base, |_, _| {}).unwrap_err();
        assert!(refused.to_string().contains("T20 is not in the shipped members data"), "{refused}");
    }

    #[test]
    fn shipped_members_data_has_the_2022_roster() {
        let m = members_2022();
        assert_eq!(m.len(), 18);
        assert_eq!(m.iter().filter(|m| m.community == "ASEAN").count(), 10);
        assert_eq!(m.iter().filter(|m| m.community == "PLUS").count(), 8);
        assert!(known_members().iter().any(|m| m.code == "TL"));
    }
}
