//! `adi amendment`: roster versions worked offline. An establishment writes the first version of
//! its network's roster, proposes the next one from an amended roster file, signs a proposal with
//! its node's key, and checks a chain of versions as any member's node will check it
//! (`adi_core::amendment`).

use std::path::{Path, PathBuf};

use adi_core::amendment::{self, Change, RosterVersion};
use adi_node::config::{load_roster, NodeConfig};
use adi_wire::files::RosterVersionFile;
use anyhow::{anyhow, Context};

fn read_version(path: &Path) -> anyhow::Result<RosterVersionFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| anyhow!("{}: not a roster version: {e}", path.display()))
}

fn write_version(path: &Path, v: &RosterVersionFile) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(v).expect("a roster version serialises");
    std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))
}

/// Checks versions in order, the first as the network's first; the last version checked.
fn check_chain(paths: &[PathBuf], mut each: impl FnMut(&RosterVersion, &[Change])) -> anyhow::Result<RosterVersion> {
    let (first, rest) = paths.split_first().ok_or_else(|| anyhow!("no roster version given"))?;
    let mut current = amendment::check_first(&read_version(first)?)
        .map_err(|e| anyhow!("{}: version 1 refused: {e}", first.display()))?;
    each(&current, &[]);
    for path in rest {
        let file = read_version(path)?;
        let next = amendment::check_amendment(&current, &file)
            .map_err(|e| anyhow!("{}: version {} refused: {e}", path.display(), file.number))?;
        let changes = amendment::changes(&current.roster, &next.roster);
        each(&next, &changes);
        current = next;
    }
    Ok(current)
}

/// `adi amendment first`: the first version of a roster, whose hash is the network's identity.
pub fn first(roster: PathBuf, out: PathBuf) -> anyhow::Result<()> {
    let roster = load_roster(&roster)?;
    let file = amendment::first(&roster);
    let checked = amendment::check_first(&file).map_err(|e| anyhow!("{e}"))?;
    write_version(&out, &file)?;
    out!(
        "wrote {}: version 1 of {} members; its hash, the network's identity: {}",
        out.display(),
        roster.members().count(),
        hex::encode(checked.hash)
    );
    Ok(())
}

/// `adi amendment propose`: the unsigned version that would follow the chain with `roster`.
pub fn propose(versions: Vec<PathBuf>, roster: PathBuf, out: PathBuf) -> anyhow::Result<()> {
    let current = check_chain(&versions, |_, _| {})?;
    let roster = load_roster(&roster)?;
    let changes = amendment::changes(&current.roster, &roster);
    if changes.is_empty() {
        return Err(anyhow!("the roster is the same as version {}: nothing to propose", current.number));
    }
    let (file, hash) = amendment::propose(&current, &roster);
    write_version(&out, &file)?;
    out!("wrote {}: version {} (hash {}), which:", out.display(), file.number, hex::encode(hash));
    for c in &changes {
        out!("  {}", c);
    }
    out!("it takes effect once the members the rules of version {} name have signed it", current.number);
    Ok(())
}

/// `adi amendment sign`: adds this establishment's signature (its node's key) to a proposal,
/// after checking that it follows the chain; or, with `--new-key`, the signature of the new key
/// the proposal gives the member.
pub fn sign(versions: Vec<PathBuf>, file: PathBuf, config: PathBuf, new_key: Option<PathBuf>) -> anyhow::Result<()> {
    let current = check_chain(&versions, |_, _| {})?;
    let mut proposal = read_version(&file)?;
    let node = NodeConfig::load(&config)?;
    let key = match &new_key {
        Some(path) => adi_node::config::load_signing_key(path)?,
        None => node.signing_key.clone(),
    };
    let roster =
        adi_core::Roster::from_file(&proposal.roster).map_err(|e| anyhow!("{}: roster.{e}", file.display()))?;
    if proposal.number != current.number + 1 {
        return Err(anyhow!(
            "{}: version {} does not follow version {}",
            file.display(),
            proposal.number,
            current.number
        ));
    }
    let hash = amendment::version_hash(proposal.number, Some(&current.hash), &roster);
    if proposal.previous.as_deref() != Some(hex::encode(current.hash).as_str()) {
        return Err(anyhow!("{}: it does not amend version {}", file.display(), current.number));
    }
    let signature = amendment::sign(&node.member, &key, &hash);
    if proposal.signatures.iter().any(|s| s.member == signature.member && s.key == signature.key) {
        out!("{} has signed version {} with this key already", node.member, proposal.number);
        return Ok(());
    }
    proposal.signatures.push(signature);
    write_version(&file, &proposal)?;
    out!("signed version {} (hash {}) as {}", proposal.number, hex::encode(hash), node.member);
    match amendment::check_amendment(&current, &proposal) {
        Ok(_) => out!("it now has every signature it needs: it takes effect"),
        Err(e) => out!("not yet in effect: {}", e.message),
    }
    Ok(())
}

/// `adi amendment check`: checks a chain of versions in order, as a node will.
pub fn check(versions: Vec<PathBuf>) -> anyhow::Result<()> {
    let last = check_chain(&versions, |v, changes| {
        let signers: Vec<String> = v.signed_by.iter().map(|(m, _)| m.to_string()).collect();
        let what: Vec<String> = changes.iter().map(Change::to_string).collect();
        if v.number == 1 {
            out!("version 1: {} members; the network's identity {}", v.roster.members().count(), hex::encode(v.hash));
        } else {
            out!(
                "version {}: {}; signed by {}; hash {}",
                v.number,
                what.join(", "),
                signers.join(", "),
                hex::encode(v.hash)
            );
        }
    })?;
    out!("the roster stands at version {}", last.number);
    Ok(())
}
