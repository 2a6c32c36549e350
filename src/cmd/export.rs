//! `adi export` (a line's record, as a self-contained bundle) and `adi verify` (a bundle checked
//! offline: every signature, chain link, proof, receipt and checkpoint, under roster keys
//! anchored outside the bundle).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use adi_core::amendment;
use adi_core::Roster;
use adi_record::bundle::Anchor;
use hyper::Method;
use serde_json::{json, Value};

use crate::cmd::{printable, printable_json, printable_lines, utc};
use crate::ClientArgs;

/// Writes the bundle of `line`, within the window given (and without the bytes of attached files
/// if asked), to `out`, exactly as the node served it,
/// and makes it durable; with `archive`, reads it back and confirms to the node, by the SHA-256 of
/// its bytes, that it is archived.
pub async fn export(
    client: ClientArgs,
    line: String,
    (from, to, without_files): (Option<u64>, Option<u64>, bool),
    out: PathBuf,
    archive: bool,
) -> anyhow::Result<()> {
    use sha2::Digest;
    let mut query = Vec::new();
    query.extend(from.map(|f| format!("from_ms={f}")));
    query.extend(to.map(|t| format!("to_ms={t}")));
    if without_files {
        query.push("without_files=true".into());
    }
    let path = format!("/api/v1/lines/{line}/export?{}", query.join("&"));
    eprintln!("asking the node for the bundle of line {line} (it has its latest checkpoint countersigned first)");
    let client = client.client()?.reading_bundles();
    let (status, _, bytes) =
        crate::cmd::showing_progress("the bundle", client.request_full(Method::GET, &path, None)).await?;
    if !status.is_success() {
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        return Err(adi_node::client::ApiFailure::from_answer(status, &value).into());
    }
    let v: Value =
        serde_json::from_slice(&bytes).map_err(|e| anyhow::anyhow!("the node's answer is no bundle: {e}"))?;
    write_durably(&out, &bytes)?;
    let count = v.get("envelopes").and_then(Value::as_array).map_or(0, Vec::len);
    out!("wrote {} ({count} envelopes of line {line})", out.display());
    if !archive {
        return Ok(());
    }
    let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
    let kept = std::fs::read(&out).map_err(|e| anyhow::anyhow!("{}: cannot read it back: {e}", out.display()))?;
    if hex::encode(sha2::Sha256::digest(&kept)) != sha256 {
        anyhow::bail!("{}: what was read back is not what was written; the export is not confirmed", out.display());
    }
    let body = json!({ "sha256": sha256 });
    let confirmed = client.call(Method::POST, &format!("/api/v1/lines/{line}/archives"), Some(&body)).await?;
    out!(
        "archived: the node holds {} ({} envelopes, SHA-256 {sha256}) as archived; its retention may prune their content",
        out.display(),
        confirmed.get("envelopes").and_then(Value::as_u64).unwrap_or(0)
    );
    Ok(())
}

/// Writes `bytes` to `path` through a file beside it, synced, renamed into place, and the folder
/// synced: once it returns, the file survives a crash whole or not at all.
fn write_durably(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let name = path.file_name().ok_or_else(|| anyhow::anyhow!("{}: not a file name", path.display()))?;
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let partial = folder.join(format!(".{}.partial", name.to_string_lossy()));
    let fail = |e: std::io::Error| anyhow::anyhow!("{}: {e}", path.display());
    let mut file = std::fs::File::create(&partial).map_err(fail)?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(fail)?;
    std::fs::rename(&partial, path).map_err(fail)?;
    std::fs::File::open(folder).and_then(|f| f.sync_all()).map_err(fail)?;
    Ok(())
}

/// The anchor `adi verify` checks a bundle's keys against: a roster file, the roster a node's
/// configuration trusts, or a roster's SHA-256.
pub fn anchor(roster: Option<&Path>, config: Option<&Path>, sha256: Option<&str>) -> anyhow::Result<Anchor> {
    let configured = config.map(adi_node::config::configured_roster).transpose().map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(path) = roster.or(configured.as_deref()) {
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

/// What `adi verify` prints besides its verdict.
pub struct Shown {
    /// Everything as one JSON document.
    pub json: bool,
    /// Only the verdict and the first failure.
    pub quiet: bool,
    /// The text of every structured report too.
    pub reports: bool,
}

/// The network identity `adi verify` anchors on: given as `--network`, or the hash of the first
/// version of the roster a node's configuration names (its roster file is the first version).
pub fn network(hash: Option<&str>, config: Option<&Path>) -> anyhow::Result<Option<[u8; 32]>> {
    if let Some(h) = hash {
        let mut out = [0u8; 32];
        hex::decode_to_slice(h.trim(), &mut out)
            .map_err(|_| anyhow::anyhow!("--network: expected the first roster version's hash (64 hex digits)"))?;
        return Ok(Some(out));
    }
    let Some(config) = config else { return Ok(None) };
    let path = adi_node::config::configured_roster(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let first = adi_node::config::load_roster(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let v = amendment::check_first(&amendment::first(&first)).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Some(v.hash))
}

/// The keys a bundle is checked under when it is anchored on the network's identity: its roster
/// chain is checked from a first version whose hash is `network`, each version as every node
/// checks it. Each member's keys are then the last the chain gave it (a member suspended or
/// removed since keeps the key it signed with) and, before it, every key a version retired by
/// rotation (signed by the old key and the new) that no later version distrusted by replacing
/// the member's key without its signature: the keys a node still accepts from it.
pub fn chain_anchor(bundle: &adi_record::bundle::Bundle, network: &[u8; 32]) -> Result<(Anchor, String), String> {
    let chain = bundle
        .roster_chain
        .as_ref()
        .ok_or("the bundle carries no roster chain to anchor on the network's identity (bundles of version 3 do)")?;
    let first = Roster::from_file(&chain.first).map_err(|e| format!("the chain's first roster: {e}"))?;
    let mut current = amendment::check_first(&amendment::first(&first)).map_err(|e| e.to_string())?;
    if current.hash != *network {
        return Err(format!(
            "the bundle's first roster version has hash {}, not the network's identity {}",
            hex::encode(current.hash),
            hex::encode(network)
        ));
    }
    let mut last = BTreeMap::new();
    let mut note = |r: &Roster| {
        for m in r.members() {
            last.insert(m.code.to_string(), m.signing_key.to_bytes());
        }
    };
    note(&current.roster);
    for v in &chain.versions {
        current = amendment::check_amendment(&current, v)
            .map_err(|e| format!("roster version {} of the bundle's chain is refused: {e}", v.number))?;
        note(&current.roster);
    }
    // Oldest first, each key once, at its latest place.
    let mut keys: BTreeMap<String, Vec<[u8; 32]>> = BTreeMap::new();
    let retired = adi_engine::roster::retired_by_rotation(&first, &chain.versions);
    for (member, key) in retired.iter().map(|(m, k)| (m.to_string(), k.to_bytes())).chain(last) {
        let held = keys.entry(member).or_default();
        held.retain(|k| *k != key);
        held.push(key);
    }
    let mut said = format!("network {}, roster version {}", hex::encode(network), current.number);
    let rotated: Vec<String> = keys
        .iter()
        .filter(|(_, ks)| ks.len() > 1)
        .map(|(m, ks)| format!("{m} ({} retired by rotation)", ks.len() - 1))
        .collect();
    if !rotated.is_empty() {
        said.push_str(&format!("; keys also trusted for what was signed before a rotation: {}", rotated.join(", ")));
    }
    Ok((Anchor::Chain { sha256: current.roster.sha256(), keys }, said))
}

/// Checks a bundle offline under `anchor` (or on the network's identity, through the roster
/// chain the bundle carries) and prints each check and the record as an auditor reads it; fails
/// naming the first broken item, and fails without an anchor unless `unanchored` says that is
/// meant.
pub fn verify_bundle(
    file: &Path,
    anchor: &Anchor,
    network: Option<[u8; 32]>,
    unanchored: bool,
    shown: Shown,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let bundle: adi_record::bundle::Bundle =
        serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: not a bundle: {e}", file.display()))?;
    // A bundle with a chain is anchored on the network's identity when one is known; an older one
    // on the roster it names.
    let chained = match network {
        Some(n) if bundle.roster_chain.is_some() || !matches!(anchor, Anchor::Roster { .. }) => {
            Some(chain_anchor(&bundle, &n).map_err(|why| anyhow::anyhow!("FAIL  anchor: the roster chain: {why}"))?)
        }
        _ => None,
    };
    let mut report = match &chained {
        Some((a, _)) => adi_record::bundle::verify_anchored(&bundle, a),
        None => adi_record::bundle::verify_anchored(&bundle, anchor),
    };
    if let Some((_, said)) = &chained {
        report.checks.insert(0, adi_record::bundle::Check { item: format!("anchor: {said}"), failure: None });
    }
    if shown.json {
        let checks: Vec<Value> = report
            .checks
            .iter()
            .map(|c| json!({"item": c.item, "ok": c.failure.is_none(), "failure": c.failure}))
            .collect();
        let doc = json!({
            "line": bundle.line.id,
            "exported_by": bundle.exported_by,
            "anchored": report.anchored,
            "verified": report.first_failure().is_none(),
            "checks": checks,
            "decisions": report.decisions,
            "holes": report.holes,
            "record": report.record,
        });
        out!("{}", printable_json(&serde_json::to_string_pretty(&doc)?));
    } else if !shown.quiet {
        for c in &report.checks {
            // A bundle's text is anyone's: shown escaped, so that it cannot steer the terminal.
            match &c.failure {
                None => out!("ok    {}", printable(&c.item)),
                Some(why) => out!("FAIL  {}: {}", printable(&c.item), printable(why)),
            }
        }
        out!(
            "\nThe record of line {}, as {} exported it; times are each sender's own, UTC:",
            printable(&bundle.line.id),
            printable(&bundle.exported_by)
        );
        for e in &report.record {
            out!("{}", describe(e));
        }
        out!("");
    }
    if shown.reports && !shown.json {
        for e in bundle.envelopes.iter().filter(|e| e.form_text.is_some()) {
            let who = hex::decode(&e.bytes)
                .ok()
                .and_then(|b| adi_wire::Envelope::decode(&b, usize::MAX, usize::MAX).ok())
                .map(|env| format!("{} #{}", printable(&env.body().sender), env.body().seq))
                .unwrap_or_default();
            out!("\nreport at log index {} ({who}):", e.index);
            out!("{}", printable_lines(e.form_text.as_deref().unwrap_or("")));
        }
    }
    let failed = report.checks.iter().filter(|c| c.failure.is_some()).count();
    let pruned = report.record.iter().filter(|e| e.kind == "pruned").count();
    if pruned > 0 && !shown.json {
        out!(
            "pruned: the content of {pruned} message(s) was pruned by the exporter's retention after an earlier \
             export archived it; their signed envelopes, places in the log and receipts are here and verified, \
             their words are in that archive"
        );
    }
    match report.first_failure() {
        None if !report.anchored => {
            let what = format!(
                "NOT ANCHORED: {} checks passed ({} envelopes, line {}), under the bundle's own keys: it is \
                 consistent with itself, and a bundle rewritten end to end under other keys would be too",
                report.checks.len(),
                bundle.envelopes.len(),
                printable(&bundle.line.id)
            );
            if !unanchored {
                anyhow::bail!("{what}; give the roster (--roster FILE or --roster-sha256 HEX), or --unanchored");
            }
            if !shown.json {
                out!("{what}");
            }
            Ok(())
        }
        None if shown.json => Ok(()),
        None => {
            out!(
                "verified: {} checks passed ({} envelopes, line {}) under the anchored roster",
                report.checks.len(),
                bundle.envelopes.len(),
                printable(&bundle.line.id)
            );
            Ok(())
        }
        Some(first) => anyhow::bail!(
            "{failed} of {} checks failed; the first: {}: {}",
            report.checks.len(),
            printable(&first.item),
            printable(first.failure.as_deref().unwrap_or_default())
        ),
    }
}

/// One entry of the record, on one line: place, time, author, and what it says.
fn describe(e: &adi_record::bundle::RecordEntry) -> String {
    let c = e.content.as_ref();
    let s = |k: &str| printable(c.and_then(|c| c.get(k)).and_then(Value::as_str).unwrap_or(""));
    let n = |k: &str| c.and_then(|c| c.get(k)).and_then(Value::as_u64).unwrap_or(0);
    let short = |h: String| h.chars().take(12).collect::<String>();
    let reason = |r: String| if r.is_empty() { r } else { format!(" (reason: {r})") };
    let what = match e.kind {
        "line_setup" => {
            let members: Vec<String> = c
                .and_then(|c| c.get("members"))
                .and_then(Value::as_array)
                .map(|m| m.iter().filter_map(Value::as_str).map(printable).collect())
                .unwrap_or_default();
            format!(
                "sets up the line '{}' ({}), home {}, members {}",
                s("title"),
                s("scope"),
                s("home"),
                members.join(", ")
            )
        }
        "message" => {
            let released = s("released_by");
            let released = if released.is_empty() { released } else { format!(", released by {released}") };
            let report = c
                .and_then(|c| c.get("form"))
                .and_then(|f| f.get("kind"))
                .and_then(Value::as_str)
                .map_or(String::new(), |k| format!(" [report: {k}]"));
            let files: Vec<String> = c
                .and_then(|c| c.get("attachments"))
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|f| {
                            let g = |k: &str| printable(f.get(k).and_then(Value::as_str).unwrap_or(""));
                            let size = f.get("size").and_then(Value::as_u64).unwrap_or(0);
                            format!("{} ({}, {size} bytes, SHA-256 {})", g("name"), g("media_type"), g("sha256"))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let files = if files.is_empty() { String::new() } else { format!(" [files: {}]", files.join("; ")) };
            format!(
                "{} message, {} {}{released}{report}: \"{}\" {}{files}",
                s("precedence"),
                s("class"),
                s("caveat"),
                s("subject"),
                s("body")
            )
        }
        "receipt" => {
            format!("{} receipt of {} #{}{}", s("kind"), s("answers_sender"), n("answers_seq"), reason(s("reason")))
        }
        "link_test" => "link test".to_string(),
        "chunk" => format!(
            "chunk {} of file {} attached to {} ({} bytes)",
            n("index"),
            short(s("file")),
            short(s("message")),
            n("bytes")
        ),
        "decision" => {
            let parties: Vec<String> = c
                .and_then(|c| c.get("parties"))
                .and_then(Value::as_array)
                .map(|m| m.iter().filter_map(Value::as_str).map(printable).collect())
                .unwrap_or_default();
            let replaces = s("supersedes");
            let replaces = if replaces.is_empty() { replaces } else { format!(", to replace {}", short(replaces)) };
            format!(
                "proposes decision {}{replaces}, parties {}: \"{}\"",
                short(e.hash.clone()),
                parties.join(", "),
                s("text")
            )
        }
        "concurrence" => {
            let answer = if c.and_then(|c| c.get("concur")).and_then(Value::as_bool) == Some(true) {
                "concurs with"
            } else {
                "declines"
            };
            format!("{answer} decision {}{}", short(s("decision")), reason(s("reason")))
        }
        "translation" => format!(
            "translation into {} of {} by {}: \"{}\"",
            s("language"),
            short(s("original")),
            s("translator"),
            s("text")
        ),
        "pruned" => "message whose content the exporter's retention pruned after an archive held it (its signed \
                     envelope, which names the content's hash, verified)"
            .into(),
        "no_content" => {
            "MLS message whose content the bundle does not hold (a key change, or unread by the exporter)".into()
        }
        _ => "NOT VERIFIED: its signature or content failed".into(),
    };
    format!("{:>5}  {}  {} #{}  {what}", e.index, utc(e.created_ms), printable(&e.sender), e.seq)
}
