//! A member's routine key rotation while its lines run: its signing key and its node's TLS key
//! move together, by a roster version that its current key and its new key sign (the rotation's
//! rule, met by this node alone).
//!
//! 1. [`prepare`]: the node makes the new keys and writes them, on disk, beside its key files
//!    (`signing.pem.next`, `node.crt.next`, `node.key.next`), then makes the version that gives
//!    them to this member, signed by both keys; `fed::roster` puts it in force here and hands it
//!    to every peer. Every node that applies it keeps taking what this member signed under its
//!    old key, and admits its node under its old TLS key while `rotation_overlap_ms` lasts.
//! 2. [`move_when_ready`]: once every peer's node has said it holds the version (or once the
//!    overlap has passed here), the node moves: its unclaimed KeyPackages, which carry the old
//!    key, are dropped, the key files are replaced by the next ones, its leaf on every line goes
//!    to the new key (committed where it is home, proposed elsewhere, the home member committing
//!    it at once), it signs and presents the new keys from then on, and makes KeyPackages under
//!    the new key.
//!
//! A node restarted between the two starts with its old keys, the next ones beside them, and
//! moves as above.

use adi_core::amendment;
use adi_core::MemberCode;
use adi_wire::files::RosterVersionFile;
use axum::http::StatusCode;
use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, EncodePrivateKey};
use ed25519_dalek::SigningKey;
use rand::RngCore;

use crate::clock::now_ms;
use crate::config::{KeyFiles, NextKeys};
use crate::driver::{commit_own_records, refill_key_packages};
use crate::error::ApiError;
use crate::state::NodeState;
use crate::tls;

/// Makes this member's next keys, writes them beside its key files, and returns the roster
/// version that gives them to it, signed by its current key and its new key, to offer. The
/// caller holds `rotation_lock` until the version is offered.
pub fn prepare(node: &NodeState) -> Result<RosterVersionFile, ApiError> {
    let book = node.roster_book();
    let me = book.current.roster.member(&node.member).cloned().ok_or_else(|| {
        ApiError::new(StatusCode::CONFLICT, "not_listed", "this member is not in the roster in force")
    })?;
    if node.rotation().is_some_and(|next| next.signing_key.verifying_key() == me.signing_key) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "rotation_under_way",
            "the roster in force gives this member keys its node has not moved to yet: it moves once every \
             peer holds that version",
        ));
    }
    let internal =
        |e: anyhow::Error| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "rotation_failed", e.to_string());
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let signing_key = SigningKey::from_bytes(&seed);
    let signing_pem = signing_key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| internal(anyhow::anyhow!("cannot encode the signing key: {e}")))?;
    let identity = tls::generate_identity(node.member.as_str()).map_err(internal)?;
    node.key_files.write_next(&signing_pem, &identity.cert_pem, &identity.key_pem).map_err(internal)?;
    let next =
        node.key_files.next().map_err(|e| internal(anyhow::anyhow!("{e}")))?.ok_or_else(|| {
            internal(anyhow::anyhow!("the next keys written beside the key files cannot be read back"))
        })?;
    let pin = tls::spki_pin(&next.cert).ok_or_else(|| internal(anyhow::anyhow!("the new certificate has no key")))?;
    let mut file = book.current.roster.to_file();
    for entry in file.members.iter_mut().filter(|e| e.code == node.member.as_str()) {
        entry.signing_key = hex::encode(signing_key.verifying_key().as_bytes());
        entry.tls_pin = hex::encode(pin);
    }
    let roster = adi_core::Roster::from_file(&file)
        .map_err(|e| internal(anyhow::anyhow!("the rotated roster: {}: {}", e.field, e.message)))?;
    let (mut version, hash) = amendment::propose(&book.current, &roster);
    version.signatures.push(node.sign_roster_version(&hash));
    version.signatures.push(amendment::sign(&node.member, &signing_key, &hash));
    node.set_rotation(Some(next));
    Ok(version)
}

/// Moves this node to its next keys once the roster in force gives them to this member and
/// every peer's node has said it holds that version, or once `rotation_overlap_ms` has passed
/// since it took effect here (a peer down that long then takes it from the others first: until
/// it does, it refuses this node's new TLS key, so nothing signed under the new key reaches it
/// before the version that gives the key).
pub async fn move_when_ready(node: &NodeState) {
    let Some(next) = node.rotation() else { return };
    let Some(Waiting { given, waiting }) = waiting(node) else { return };
    if !waiting.is_empty() {
        let applied_ms = node
            .store
            .roster_applied_times()
            .ok()
            .and_then(|t| t.into_iter().find(|(n, _)| *n == given).map(|(_, ms)| ms))
            .unwrap_or_else(now_ms);
        if now_ms() < applied_ms.saturating_add(node.runtime_limits.rotation_overlap_ms) {
            tracing::debug!(version = given, ?waiting, "the rotated keys wait for every peer to hold the version");
            return;
        }
    }
    if let Err(e) = move_to(node, &node.key_files, next).await {
        tracing::error!(error = %e, "cannot move to the rotated keys; the node tries again");
    }
}

/// A rotation under way, as it stands: the version that gave this member the keys its node
/// moves to, and the peers whose nodes have not said they hold it yet.
pub struct Waiting {
    pub given: u64,
    pub waiting: Vec<MemberCode>,
}

/// The rotation under way, if the roster in force gives this member the keys its node is to
/// move to.
pub fn waiting(node: &NodeState) -> Option<Waiting> {
    let next = node.rotation()?;
    let book = node.roster_book();
    let key = next.signing_key.verifying_key();
    if book.current.roster.member(&node.member).map(|m| m.signing_key) != Some(key) {
        return None;
    }
    // The version that gave this member the key: the first, going back, whose roster does not.
    let given = book
        .versions
        .iter()
        .rev()
        .take_while(|v| {
            v.roster
                .members
                .iter()
                .any(|m| m.code == node.member.as_str() && m.signing_key == hex::encode(key.as_bytes()))
        })
        .last()
        .map(|v| v.number)
        .unwrap_or(book.current.number);
    let roster = node.roster();
    let waiting = roster
        .members()
        .filter(|m| m.code != node.member && !roster.is_suspended(&m.code) && node.peer_roster(&m.code) < given)
        .map(|m| m.code.clone())
        .collect();
    Some(Waiting { given, waiting })
}

/// Moves to the next keys, in an order a stop at any point leaves right: the unclaimed
/// KeyPackages first (they carry the old key, and every claimer would refuse them); then the key
/// files (the node starts with the new keys from then on, and never signs under the old one
/// again); then its leaf on every line, committed with the MLS state (a node stopped before that
/// renews its leaves as it starts, [`renew_at_start`]); then what it signs and presents; then a
/// pool of KeyPackages under the new key.
async fn move_to(node: &NodeState, files: &KeyFiles, next: NextKeys) -> anyhow::Result<()> {
    let unclaimed = node.store.key_packages_unclaimed()?;
    let dropping = node
        .engine()
        .forget_stale_key_packages(unclaimed)?
        .map(|s| node.store.drop_key_packages(s.state, s.references));
    if let Some(pending) = dropping {
        if let Err(e) = pending.wait().await {
            node.fail_storage(&e);
            return Err(e.into());
        }
    }
    files.move_to_next()?;
    let signing_key = next.signing_key.clone();
    let renewed = commit_own_records(node, |core| {
        core.rotate_key(signing_key)?;
        core.renew_leaves(now_ms())
    })
    .await
    .map_err(|e| anyhow::anyhow!("the lines' leaves: {e:?}"))?;
    node.moved_to(&next)?;
    tracing::info!(lines = renewed.len(), "moved to the rotated signing and TLS keys");
    refill_key_packages(node).await?;
    Ok(())
}

/// The keys the node starts with, given its key files and the roster in force's entry for it:
/// the configuration's, or, while a rotation is under way (the version giving the next keys is
/// in force, and the key files are still the ones it retired), the configuration's with the next
/// keys to move to. `Err` names what does not match.
pub fn starting_keys(
    config_key: &SigningKey,
    cert_pin: Option<[u8; 32]>,
    next: Option<NextKeys>,
    in_force: &adi_core::Member,
) -> Result<Option<NextKeys>, String> {
    let next_in_force = next.filter(|n| {
        n.signing_key.verifying_key() == in_force.signing_key && tls::spki_pin(&n.cert) == Some(in_force.tls_pin)
    });
    if config_key.verifying_key() == in_force.signing_key {
        if cert_pin != Some(in_force.tls_pin) {
            return Err("`tls_cert`: the certificate's key does not match this member's TLS pin in the roster".into());
        }
        return Ok(None);
    }
    match next_in_force {
        Some(next) => Ok(Some(next)),
        None => Err(format!(
            "`signing_key`: the key does not match {}'s signing key in the roster in force, and no rotation to \
             it is under way here (no next keys beside the key files; the other node of an active/standby pair \
             that rotated has them: copy its key files, with the `.next` ones while its rotation is under way)",
            in_force.code
        )),
    }
}

/// The TLS pins the chain retired by its members' own rotations whose overlap has not passed:
/// each admitted until `rotation_overlap_ms` after its version took effect here.
pub fn overlap_at_start(
    config: &crate::config::NodeConfig,
    book: &adi_engine::roster::RosterBook,
    store: &dyn adi_store::Store,
) -> anyhow::Result<std::collections::HashMap<[u8; 32], (MemberCode, u64)>> {
    let applied = store.roster_applied_times()?;
    let now = now_ms();
    let overlap_ms = config.runtime_limits.rotation_overlap_ms;
    // Only the pin each member retired last, as while the node runs.
    let mut last: std::collections::HashMap<MemberCode, (u64, [u8; 32])> = std::collections::HashMap::new();
    for (number, member, pin) in adi_engine::roster::pins_retired_by_chain(&config.first_roster, &book.versions) {
        if member != config.member {
            last.insert(member, (number, pin));
        }
    }
    Ok(last
        .into_iter()
        .filter_map(|(member, (number, pin))| {
            let at = applied.iter().find(|(n, _)| *n == number).map(|(_, ms)| *ms)?;
            let until = at.saturating_add(overlap_ms);
            (now < until).then_some((pin, (member, until)))
        })
        .collect())
}

/// Renews this member's leaf on every line still under a key it rotated away from: a node
/// stopped after moving its key files and before committing its leaves does it as it starts.
/// Nothing is committed when every leaf is current.
pub async fn renew_at_start(node: &NodeState) -> anyhow::Result<()> {
    let (recipients, pending) = {
        let mut core = node.core();
        let records = core.renew_leaves(now_ms())?;
        if records.is_empty() {
            return Ok(());
        }
        let recipients: Vec<MemberCode> = records.iter().flat_map(|r| r.recipients.clone()).collect();
        let mls_state = Some(core.mls_delta()?);
        let batch = adi_core::WriteBatch { records, mls_state, ..adi_core::WriteBatch::default() };
        (recipients, node.store.commit(batch))
    };
    if let Err(e) = pending.wait().await {
        node.fail_storage(&e);
        return Err(e.into());
    }
    tracing::info!("this member's leaves renewed under its rotated key");
    node.committed(&recipients);
    Ok(())
}
