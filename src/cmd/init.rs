//! `adi init` (a member's signing key, node TLS certificate, config and public card) and `adi
//! roster` (a roster assembled from members' cards).

use std::path::PathBuf;

use adi_node::setup::{self, InitOptions};
use anyhow::Context;

/// Creates a member's keys, config and card.
pub fn init(options: InitOptions) -> anyhow::Result<()> {
    let out = setup::init_member(&options)?;
    out!("created {} (config) and {} (public card)", out.config.display(), out.card.display());
    out!("member {} ({}), TLS pin {}", out.entry.code, out.entry.community, out.entry.tls_pin);
    out!("next: assemble a roster from every member's card with `adi roster --out roster.toml CARD...`");
    Ok(())
}

/// Writes a roster of the members whose cards are given.
pub fn roster(out: PathBuf, name: String, cards: Vec<PathBuf>) -> anyhow::Result<()> {
    let members = setup::read_cards(&cards)?;
    let roster = setup::assemble_roster(&name, members)?;
    std::fs::write(&out, roster.to_toml()).with_context(|| format!("cannot write {}", out.display()))?;
    let anchor = adi_core::Roster::from_file(&roster).map(|r| hex::encode(r.sha256())).unwrap_or_default();
    out!(
        "wrote {} with {} members; its SHA-256, the anchor verifiers of its records pin: {anchor}",
        out.display(),
        roster.members.len()
    );
    Ok(())
}
