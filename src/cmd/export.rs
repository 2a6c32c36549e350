//! `adi export` (a line's record, as a self-contained bundle) and `adi verify` (a bundle checked
//! offline: every signature, chain link, proof, receipt and checkpoint, under roster keys
//! anchored outside the bundle).

use std::path::{Path, PathBuf};

use adi_record::bundle::Anchor;
use hyper::Method;
use serde_json::Value;

use crate::ClientArgs;

/// Writes the bundle of `line`, within the window given, to `out`.
pub async fn export(
    client: ClientArgs,
    line: String,
    from: Option<u64>,
    to: Option<u64>,
    out: PathBuf,
) -> anyhow::Result<()> {
    let mut query = Vec::new();
    query.extend(from.map(|f| format!("from_ms={f}")));
    query.extend(to.map(|t| format!("to_ms={t}")));
    let path = format!("/api/v1/lines/{line}/export?{}", query.join("&"));
    let v = client.client()?.call(Method::GET, &path, None).await?;
    let text = serde_json::to_string_pretty(&v)?;
    std::fs::write(&out, text).map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
    let count = v.get("envelopes").and_then(Value::as_array).map_or(0, Vec::len);
    out!("wrote {} ({count} envelopes of line {line})", out.display());
    Ok(())
}

/// The anchor `adi verify` checks a bundle's keys against: a roster file, or its SHA-256.
pub fn anchor(roster: Option<&Path>, sha256: Option<&str>) -> anyhow::Result<Anchor> {
    if let Some(path) = roster {
        let roster = adi_node::config::load_roster(path).map_err(|e| anyhow::anyhow!("{e}"))?;
        let keys = roster.members().map(|m| (m.code.to_string(), m.signing_key.to_bytes())).collect();
        return Ok(Anchor::Roster { sha256: roster.sha256(), keys });
    }
    if let Some(hex_sha) = sha256 {
        let mut sha = [0u8; 32];
        hex::decode_to_slice(hex_sha.trim(), &mut sha)
            .map_err(|_| anyhow::anyhow!("--roster-sha256: expected a SHA-256 hash (64 hex digits)"))?;
        return Ok(Anchor::Sha256(sha));
    }
    Ok(Anchor::Unanchored)
}

/// Checks a bundle offline under `anchor` and prints each check; fails naming the first broken
/// item, and fails without an anchor unless `unanchored` says that is meant.
pub fn verify_bundle(file: &Path, anchor: &Anchor, unanchored: bool, quiet: bool, reports: bool) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let bundle: adi_record::bundle::Bundle =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: not a bundle: {e}", file.display()))?;
    let report = adi_record::bundle::verify_anchored(&bundle, anchor);
    if !quiet {
        for c in &report.checks {
            match &c.failure {
                None => out!("ok    {}", c.item),
                Some(why) => out!("FAIL  {}: {why}", c.item),
            }
        }
    }
    if reports {
        for e in bundle.envelopes.iter().filter(|e| e.form_text.is_some()) {
            let who = hex::decode(&e.bytes)
                .ok()
                .and_then(|b| adi_wire::Envelope::decode(&b, usize::MAX, usize::MAX).ok())
                .map(|env| format!("{} #{}", env.body().sender, env.body().seq))
                .unwrap_or_default();
            out!("\nreport at log index {} ({who}):", e.index);
            out!("{}", e.form_text.as_deref().unwrap_or(""));
        }
    }
    let failed = report.checks.iter().filter(|c| c.failure.is_some()).count();
    match report.first_failure() {
        None if !report.anchored => {
            let what = format!(
                "NOT ANCHORED: {} checks passed ({} envelopes, line {}), under the bundle's own keys: it is \
                 consistent with itself, and a bundle rewritten end to end under other keys would be too",
                report.checks.len(),
                bundle.envelopes.len(),
                bundle.line.id
            );
            if !unanchored {
                anyhow::bail!("{what}; give the roster (--roster FILE or --roster-sha256 HEX), or --unanchored");
            }
            out!("{what}");
            Ok(())
        }
        None => {
            out!(
                "verified: {} checks passed ({} envelopes, line {}) under the anchored roster",
                report.checks.len(),
                bundle.envelopes.len(),
                bundle.line.id
            );
            Ok(())
        }
        Some(first) => anyhow::bail!(
            "{failed} of {} checks failed; the first: {}: {}",
            report.checks.len(),
            first.item,
            first.failure.as_deref().unwrap_or_default()
        ),
    }
}
