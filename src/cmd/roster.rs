//! `adi roster` on a running network: the roster in force and its chain, the proposals with who
//! has signed them, an administrator's proposal (admit a member from its card, suspend,
//! reinstate or remove one, or a whole amended roster) and signature, the chain written out for
//! a joining member, and `join`, which sets a new member's node up on that chain.

use std::path::{Path, PathBuf};

use adi_core::amendment;
use adi_node::config::{load_roster, load_roster_versions, ConfigFile};
use adi_wire::files::{MemberCard, RosterFile, RosterVersionFile};
use anyhow::{anyhow, Context};
use hyper::Method;
use serde_json::{json, Value};

use super::{print_out, s};
use crate::ClientArgs;

/// The amendment an administrator proposes.
pub struct Amend {
    pub admit: Option<PathBuf>,
    pub suspend: Option<String>,
    pub reinstate: Option<String>,
    pub remove: Option<String>,
    pub roster: Option<PathBuf>,
}

fn strings(v: &Value, field: &str) -> String {
    v.get(field)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

/// `adi roster show`: the roster in force and its chain.
pub async fn show(args: ClientArgs) -> anyhow::Result<()> {
    let v = args.client()?.call(Method::GET, "/api/v1/roster", None).await?;
    print_out(args.json, &v, |v| {
        out!("{}: version {} ({})", s(v, "name"), v["number"], s(v, "hash"));
        out!("network identity (first version's hash): {}", s(v, "first_hash"));
        for m in v["members"].as_array().into_iter().flatten() {
            let suspended = if m["suspended"].as_bool() == Some(true) { "  SUSPENDED" } else { "" };
            out!("  {:<4} {:<6} {}{suspended}", s(m, "code"), s(m, "community"), s(m, "name"));
        }
        for version in v["versions"].as_array().into_iter().flatten() {
            let changes = strings(version, "changes");
            let what = if changes.is_empty() { "the first version".to_string() } else { changes };
            out!("  version {:>3}: {what}; signed by {}", version["number"], strings(version, "signed_by"));
        }
        if v["rotation"].is_object() {
            out!(
                "key rotation under way (version {}): the node moves to its new keys once every peer's node holds \
                 that version; still waiting for: {}",
                v["rotation"]["version"],
                strings(&v["rotation"], "waiting_for")
            );
        }
    });
    Ok(())
}

/// `adi roster proposals`: each proposal, who signed it and what it lacks.
pub async fn proposals(args: ClientArgs) -> anyhow::Result<()> {
    let v = args.client()?.call(Method::GET, "/api/v1/roster/proposals", None).await?;
    print_out(args.json, &v, |v| {
        let list = v.as_array().map(Vec::as_slice).unwrap_or_default();
        if list.is_empty() {
            out!("no proposed roster versions");
        }
        for p in list {
            out!("version {} proposal {}", p["number"], s(p, "hash"));
            out!("  {}", strings(p, "changes"));
            out!("  signed by: {}", strings(p, "signed_by"));
            match p.get("lacking").and_then(Value::as_str) {
                Some(why) => out!("  lacking: {why}"),
                None => out!("  it has every signature its rule asks"),
            }
        }
    });
    Ok(())
}

fn amended(mut file: RosterFile, amend: &Amend) -> anyhow::Result<RosterFile> {
    let code = |c: &str| c.trim().to_ascii_uppercase();
    let listed = |file: &RosterFile, c: &str| file.members.iter().any(|m| m.code == c);
    if let Some(path) = &amend.roster {
        return Ok(load_roster(path)?.to_file());
    }
    if let Some(card) = &amend.admit {
        let text = std::fs::read_to_string(card).with_context(|| format!("cannot read {}", card.display()))?;
        let card: MemberCard =
            serde_json::from_str(&text).map_err(|e| anyhow!("{}: not a member card: {e}", card.display()))?;
        if listed(&file, &card.member.code) {
            return Err(anyhow!("{} is in the roster already", card.member.code));
        }
        file.members.push(card.member);
    }
    if let Some(c) = &amend.suspend {
        let c = code(c);
        if !listed(&file, &c) || file.suspended.contains(&c) {
            return Err(anyhow!("{c} is not a member in good standing of the roster in force"));
        }
        file.suspended.push(c);
    }
    if let Some(c) = &amend.reinstate {
        let c = code(c);
        if !file.suspended.contains(&c) {
            return Err(anyhow!("{c} is not suspended"));
        }
        file.suspended.retain(|x| *x != c);
    }
    if let Some(c) = &amend.remove {
        let c = code(c);
        if !listed(&file, &c) {
            return Err(anyhow!("{c} is not in the roster"));
        }
        file.members.retain(|m| m.code != c);
        file.suspended.retain(|x| *x != c);
    }
    Ok(file)
}

fn print_proposed(v: &Value) {
    let p = &v["proposal"];
    match s(v, "state").as_str() {
        "in_force" => out!("version {} is in force: {}", p["number"], strings(p, "changes")),
        _ => {
            out!("version {} proposed ({}): {}", p["number"], s(p, "hash"), strings(p, "changes"));
            out!("  signed by: {}", strings(p, "signed_by"));
            if let Some(why) = p.get("lacking").and_then(Value::as_str) {
                out!("  lacking: {why}");
            }
        }
    }
}

/// `adi roster propose`: the roster in force, amended, proposed with this member's signature.
pub async fn propose(args: ClientArgs, amend: Amend) -> anyhow::Result<()> {
    let client = args.client()?;
    let current = client.call(Method::GET, "/api/v1/roster", None).await?;
    let file: RosterFile = serde_json::from_value(current["file"].clone())
        .map_err(|e| anyhow!("the node's roster cannot be read: {e}"))?;
    let file = amended(file, &amend)?;
    let v = client.call(Method::POST, "/api/v1/roster/proposals", Some(&json!({ "roster": file }))).await?;
    print_out(args.json, &v, print_proposed);
    Ok(())
}

/// `adi roster sign`: this member's signature on a proposal.
pub async fn sign(args: ClientArgs, hash: String) -> anyhow::Result<()> {
    let path = format!("/api/v1/roster/proposals/{}/sign", hash.trim());
    let v = args.client()?.call(Method::POST, &path, None).await?;
    print_out(args.json, &v, print_proposed);
    Ok(())
}

/// `adi roster rotate`: this member's keys rotated by its node.
pub async fn rotate(args: ClientArgs) -> anyhow::Result<()> {
    let v = args.client()?.call(Method::POST, "/api/v1/roster/rotate", None).await?;
    print_out(args.json, &v, print_proposed);
    if !args.json {
        out!("The node moves to its new keys once every peer's node holds this version.");
    }
    Ok(())
}

/// `adi roster chain`: the versions after the first, for a joining member's node.
pub async fn chain(args: ClientArgs, out: PathBuf) -> anyhow::Result<()> {
    let v = args.client()?.call(Method::GET, "/api/v1/roster/versions", None).await?;
    let versions: Vec<RosterVersionFile> =
        serde_json::from_value(v).map_err(|e| anyhow!("the node's versions cannot be read: {e}"))?;
    let text = serde_json::to_string_pretty(&versions)?;
    std::fs::write(&out, text + "\n").with_context(|| format!("cannot write {}", out.display()))?;
    out!("wrote {}: {} versions after the first", out.display(), versions.len());
    Ok(())
}

/// `adi roster join`: sets a new member's node up on the network's roster: its first version
/// (the roster file every member holds) and the versions after it, the last of which admits this
/// member with the keys its own card gave.
pub fn join(config: PathBuf, first: PathBuf, chain: PathBuf, network: Option<String>) -> anyhow::Result<()> {
    let mut file = ConfigFile::read(&config)?;
    let dir = config.parent().unwrap_or(Path::new(".")).to_path_buf();
    let first_roster = load_roster(&first)?;
    let identity = amendment::check_first(&amendment::first(&first_roster)).map_err(|e| anyhow!("{e}"))?.hash;
    if let Some(pinned) = &network {
        if !pinned.trim().eq_ignore_ascii_case(&hex::encode(identity)) {
            return Err(anyhow!(
                "{}: its first version's hash is {}, not the network's identity you were given ({pinned})",
                first.display(),
                hex::encode(identity)
            ));
        }
    }
    let (roster, _) = load_roster_versions(&chain, &first_roster)?;
    let own_roster = load_roster(&dir.join(&file.roster))?;
    let code = adi_core::MemberCode::parse(&file.member).map_err(|e| anyhow!("{e}"))?;
    let mine = own_roster.member(&code).ok_or_else(|| anyhow!("{} is not in {}", code, file.roster))?;
    let admitted = roster
        .member(&code)
        .ok_or_else(|| anyhow!("the chain does not admit {code}: its last version does not list it"))?;
    if admitted.signing_key != mine.signing_key || admitted.tls_pin != mine.tls_pin {
        return Err(anyhow!("the chain admits {code} with other keys than this node's"));
    }
    std::fs::copy(&first, dir.join("roster.toml")).with_context(|| format!("cannot copy {}", first.display()))?;
    std::fs::copy(&chain, dir.join("roster-versions.json"))
        .with_context(|| format!("cannot copy {}", chain.display()))?;
    file.roster = "roster.toml".into();
    file.roster_versions = Some("roster-versions.json".into());
    file.write(&config)?;
    out!(
        "{code} joins network {} at roster version {}; start the node with `adi serve --config {}`",
        hex::encode(identity),
        roster_number(&chain)?,
        config.display()
    );
    Ok(())
}

fn roster_number(chain: &Path) -> anyhow::Result<u64> {
    let versions: Vec<RosterVersionFile> = serde_json::from_str(&std::fs::read_to_string(chain)?)?;
    Ok(versions.last().map(|v| v.number).unwrap_or(1))
}
