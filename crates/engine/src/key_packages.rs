//! One-time KeyPackages: this node's pool for peers to claim, and the check of one claimed from a
//! peer before it is used (a roster credential of that member, validly signed, never taken here
//! before; the driver records it used, durably, before it is used).

use adi_core::{AlarmChange, MemberCode};

use crate::{Engine, EngineError};

/// KeyPackages made to top the pool up: the MLS state that holds their private keys, and each
/// KeyPackage with its reference. Stored together (`Store::add_key_packages`).
pub struct NewKeyPackages {
    pub state: adi_mls::StateDelta,
    pub with_refs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Stale KeyPackages to delete: the MLS state's change that deleted their private keys, and their
/// references. Stored together (`Store::drop_key_packages`).
pub struct StaleKeyPackages {
    pub state: adi_mls::StateDelta,
    pub references: Vec<Vec<u8>>,
}

impl Engine {
    /// The refusal of a claim over `peer`'s quota (`claims` in the last hour): the reason it is
    /// answered with, and the `quota` alarm that names the peer.
    pub fn claims_over_quota(&self, peer: &MemberCode, claims: u64, now_ms: u64) -> (String, AlarmChange) {
        let per_hour_max = self.limits.key_package_claims_per_hour_max;
        let reason = format!(
            "{peer} claimed {claims} KeyPackages in the last hour (key_package_claims_per_hour_max = {per_hour_max})"
        );
        let detail = format!("{peer} claimed {claims} KeyPackages in the last hour, its most");
        (reason, AlarmChange::quota(peer, now_ms, detail))
    }

    /// Whether a pool of `available` unclaimed KeyPackages is low enough to top up.
    pub fn key_packages_low(&self, available: u64) -> bool {
        available * 2 < self.limits.key_package_pool_len
    }

    /// Makes the KeyPackages that top a pool of `available` up to `key_package_pool_len`; `None`
    /// when it is full.
    pub fn make_key_packages(&mut self, available: u64) -> Result<Option<NewKeyPackages>, EngineError> {
        let wanted = self.limits.key_package_pool_len.saturating_sub(available);
        if wanted == 0 {
            return Ok(None);
        }
        let made = self.core.key_packages(wanted as usize)?;
        let state = self.core.mls_delta()?;
        let mut with_refs = Vec::with_capacity(made.len());
        for kp in made {
            let reference = adi_mls::key_package_reference(&kp).map_err(|e| EngineError::Mls(e.to_string()))?;
            with_refs.push((reference, kp));
        }
        Ok(Some(NewKeyPackages { state, with_refs }))
    }

    /// Deletes the private keys of this member's KeyPackages claimed before `now_ms` less
    /// `key_package_claimed_ttl_ms` and never used (`claimed`, as the store lists them), and
    /// returns the change to store with their deletion; `None` when there are none.
    pub fn forget_stale_key_packages(
        &mut self,
        claimed: Vec<Vec<u8>>,
    ) -> Result<Option<StaleKeyPackages>, EngineError> {
        if claimed.is_empty() {
            return Ok(None);
        }
        self.core.forget_key_packages(&claimed)?;
        Ok(Some(StaleKeyPackages { state: self.core.mls_delta()?, references: claimed }))
    }

    /// The time before which a claimed, unused KeyPackage is stale at `now_ms`.
    pub fn key_packages_stale_before(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.limits.key_package_claimed_ttl_ms)
    }

    /// Checks a KeyPackage claimed from `member`'s node; returns its reference, for the driver to
    /// record it used before use, and the KeyPackage.
    pub fn check_key_package(
        &mut self,
        member: &MemberCode,
        bytes: &[u8],
    ) -> Result<(Vec<u8>, adi_mls::KeyPackage), String> {
        let roster = self.core.roster();
        let keys =
            |code: &str| MemberCode::parse(code).ok().and_then(|c| roster.member(&c)).map(|m| m.signing_key.to_bytes());
        let (code, kp) =
            adi_mls::check_key_package(bytes, &keys, &mut self.key_packages_seen).map_err(|e| e.to_string())?;
        if code != member.as_str() {
            return Err(format!("the KeyPackage is {code}'s, not {member}'s"));
        }
        let reference = adi_mls::key_package_reference(bytes).map_err(|e| e.to_string())?;
        Ok((reference, kp))
    }
}
