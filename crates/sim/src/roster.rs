//! Roster amendments in the simulation.
//!
//! The seed draws a run's amendments: where it draws an admission, Timor-Leste starts outside the
//! first roster and its node starts only once a version admits it (with the chain up to that
//! version in its configuration, as an administrator would give it); where it draws a rotation, a
//! member (not the hostile one) then rotates its signing key; then a member is suspended and later
//! reinstated. Each amendment is proposed by an ASEAN member's administrator (the
//! version signed with its key: `amendment::propose` and `amendment::sign`) and signed by every
//! other member its rule names, each when its turn is drawn, as a proposal file carrying its own
//! signature handed to its own node as an operator's offer. Alongside the suspension a second
//! proposal stays one signature short (its withheld signer never signs): it must never take
//! effect. Versions and proposals travel between nodes as the node's exchange carries them (a
//! node's version number and its proposals; the answer: the versions after it and the peer's
//! proposals), through the simulated network, at once after a change of a node's own and with a
//! peer drawn every `sync_ms`; a node whose roster does not list a peer, or suspends it, neither
//! answers it nor sends to it, as the node's TLS listener and links do.
//!
//! Each node decides with the engine's [`adi_engine::roster::RosterBook`] and records what it
//! decides before it puts it in force ([`crate::node::SimNode::offer_roster`]); the hostile
//! member sometimes hands a victim a proposal bearing another member's signature made with its
//! own key, or one whose roster it altered after signing.
//!
//! A routine key rotation: the member's administrator makes a new key and proposes the version
//! giving it to the member, signed by its current key and the new one (the rule of a rotation,
//! met at once, so the version takes effect at its own node when proposed); it spreads as every
//! version does, and each node applying it keeps taking what was signed under the retired key
//! ([`crate::node::SimNode::offer_roster`]). The member's node goes on signing with its current
//! key until it knows every other member's node holds the version (each node's exchange says
//! which version it holds; meanwhile it exchanges with every member not known to hold it at each
//! `sync_ms`), then switches: `Hotline::rotate_key` and the records of `Hotline::renew_leaves`
//! (its leaf on every line moved to the new key) committed together; from then on it signs with
//! the new key only.

use std::collections::{BTreeMap, BTreeSet};

use adi_core::amendment;
use adi_core::{MemberCode, Roster};
use adi_engine::roster::RosterLimits;
use adi_wire::files::RosterVersionFile;
use adi_wire::LineId;
use ed25519_dalek::VerifyingKey;

use crate::node::{Offered, Switched};
use crate::{Ev, Wire, World};

/// What a run's roster amendments are, and how the nodes exchange them.
#[derive(Clone, Debug)]
pub struct RosterConfig {
    /// Whether the run draws amendments at all (off, a seed runs the schedule it ran before they
    /// existed).
    pub amendments: bool,
    /// The chance that Timor-Leste starts outside the first roster and is admitted during the run.
    pub admission_chance: f64,
    /// The chance that a member rotates its signing key during the run.
    pub rotation_chance: f64,
    /// When the first amendment is proposed, after the start (a range).
    pub first_ms: (u64, u64),
    /// How long after an amendment took effect at a node the next one is proposed (a range).
    pub next_ms: (u64, u64),
    /// How long after a proposal each signer's turn comes (a range); a signer whose node is down
    /// or behind tries again after `retry_ms`.
    pub sign_ms: (u64, u64),
    pub retry_ms: (u64, u64),
    /// Each node exchanges with one peer drawn this often, and with `peers_after_change` peers at
    /// once after a change of its own.
    pub sync_ms: u64,
    pub peers_after_change: u32,
    /// The node's limits on what it takes (its defaults).
    pub limits: RosterLimits,
    /// Most versions one answer carries (the node's `roster_versions_per_exchange_max`).
    pub versions_per_exchange_max: usize,
}

impl Default for RosterConfig {
    fn default() -> Self {
        RosterConfig {
            amendments: true,
            admission_chance: 0.5,
            rotation_chance: 0.5,
            first_ms: (150_000, 300_000),
            next_ms: (30_000, 150_000),
            sign_ms: (5_000, 120_000),
            retry_ms: (10_000, 40_000),
            sync_ms: 30_000,
            peers_after_change: 2,
            limits: RosterLimits {
                version_bytes_max: 256 * 1024,
                signatures_max: 256,
                proposals_max: 16,
                proposals_per_member_max: 4,
            },
            versions_per_exchange_max: 64,
        }
    }
}

/// What an amendment changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Admit(usize),
    /// A routine rotation of the member's signing key (its current key and its new key sign).
    Rotate(usize),
    Suspend(usize),
    Reinstate(usize),
}

impl Change {
    pub fn subject(&self) -> usize {
        match self {
            Change::Admit(i) | Change::Rotate(i) | Change::Suspend(i) | Change::Reinstate(i) => *i,
        }
    }

    fn verb(&self) -> &'static str {
        match self {
            Change::Admit(_) => "admission",
            Change::Rotate(_) => "key rotation",
            Change::Suspend(_) => "suspension",
            Change::Reinstate(_) => "reinstatement",
        }
    }
}

/// One proposed amendment, as the simulation knows it.
#[derive(Clone, Debug)]
pub struct Amendment {
    pub change: Change,
    pub step: usize,
    pub proposer: usize,
    pub number: u64,
    /// The hash of the version it amends, and its own.
    pub base: [u8; 32],
    pub hash: [u8; 32],
    /// The proposed version, unsigned.
    pub file: RosterVersionFile,
    /// The members its rule asks to sign besides the proposer.
    pub signers: Vec<usize>,
    /// The signer that never signs: the amendment stays one signature short.
    pub withheld: Option<usize>,
}

/// A proposal the hostile member forged or altered, handed to a victim.
#[derive(Clone, Debug)]
pub struct Forgery {
    pub hostile: usize,
    pub victim: usize,
    pub kind: &'static str,
    /// The hash the altered version claims (a version that must never be applied).
    pub altered: Option<[u8; 32]>,
    /// Whether the victim held the version the forgery amends, so that it must refuse it as
    /// forged (else it is stale or ahead there, and only kept out).
    pub must_refuse: bool,
    pub outcome: Offered,
}

/// A member's node switching to the key its rotation gave it.
#[derive(Clone, Debug)]
pub struct Switch {
    pub member: usize,
    /// The key it switched away from, retired by the rotation.
    pub old: VerifyingKey,
    /// Per line its node knew: the last sequence number it had signed there before the switch.
    /// Everything it signs after is signed with the new key.
    pub heads: BTreeMap<LineId, u64>,
}

/// What the simulation knows of the run's amendments, for the checker.
#[derive(Debug, Default)]
pub struct RosterTruth {
    /// The first roster (the first version's).
    pub first: Option<Roster>,
    pub amendments: Vec<Amendment>,
    pub forgeries: Vec<Forgery>,
    pub switches: Vec<Switch>,
}

/// The run's plan of amendments and how far it went.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// Each step: the amendment that must take effect, and one proposed alongside it that stays
    /// short.
    steps: Vec<(Change, Option<Change>)>,
    /// Steps proposed so far (the next is scheduled once the last took effect somewhere).
    proposed: usize,
    next_scheduled: bool,
    /// The number of the version the last step took effect with somewhere.
    head: u64,
    /// The chain a node admitted during the run starts with (its configuration's versions).
    pub(crate) admission_chain: Option<Vec<RosterVersionFile>>,
    /// Members whose standing an amendment changes, with the version number it takes: the
    /// operators leave them off line set-ups until every node applied that version.
    pub(crate) unsettled: BTreeMap<usize, u64>,
    /// Members whose rotation was proposed, with the number of the version giving the new key,
    /// until their node switches to it: the operators leave them off line set-ups meanwhile (a
    /// KeyPackage carries the key its node signs with, which the roster no longer lists).
    pub(crate) rotating: BTreeMap<usize, u64>,
}

impl Plan {
    /// Whether every step took effect somewhere.
    pub(crate) fn done(&self) -> bool {
        self.proposed >= self.steps.len() && self.next_scheduled
    }
}

/// A roster operation of the run.
pub(crate) enum Op {
    Propose { step: usize },
    Sign { amendment: usize, signer: usize },
}

/// A roster with one change made.
fn changed(current: &Roster, change: Change, code: &MemberCode, full: &Roster) -> Option<Roster> {
    let mut file = current.to_file();
    match change {
        Change::Admit(_) => {
            if current.member(code).is_some() {
                return None;
            }
            let entry = full.to_file().members.into_iter().find(|m| m.code == code.as_str())?;
            file.members.push(entry);
            file.members.sort_by(|a, b| a.code.cmp(&b.code));
        }
        Change::Suspend(_) => {
            if current.is_suspended(code) || current.member(code).is_none() {
                return None;
            }
            file.suspended.push(code.to_string());
            file.suspended.sort();
        }
        Change::Reinstate(_) => {
            if !current.is_suspended(code) {
                return None;
            }
            file.suspended.retain(|s| s != code.as_str());
        }
        Change::Rotate(_) => return None,
    }
    Roster::from_file(&file).ok()
}

impl World {
    /// The first roster: every member, or all but Timor-Leste where the seed draws its admission.
    pub(crate) fn draw_first_roster(&mut self, full: &Roster) -> Roster {
        if !self.cfg.roster.amendments || !self.rng_roster.chance(self.cfg.roster.admission_chance) {
            return full.clone();
        }
        let Some(tl) = self.index.get(&MemberCode::parse("TL").unwrap_or_else(|_| self.nodes[0].code.clone())) else {
            return full.clone();
        };
        let mut file = full.to_file();
        file.members.retain(|m| m.code != "TL");
        match Roster::from_file(&file) {
            Ok(r) => {
                self.outside.insert(*tl);
                r
            }
            Err(_) => full.clone(),
        }
    }

    /// Draws the run's amendments and the nodes' periodic exchanges.
    pub(crate) fn plan_roster(&mut self) {
        if !self.cfg.roster.amendments {
            return;
        }
        let start = crate::EPOCH_MS;
        let members: Vec<usize> = (0..self.nodes.len()).filter(|i| !self.outside.contains(i)).collect();
        let mut steps: Vec<(Change, Option<Change>)> = self.outside.iter().map(|i| (Change::Admit(*i), None)).collect();
        let Some(&x) = self.rng_roster.pick(&members) else { return };
        let others: Vec<usize> = members.iter().copied().filter(|m| *m != x).collect();
        let Some(&y) = self.rng_roster.pick(&others) else { return };
        // The rotation draws from a stream of its own: the other amendments a seed draws are
        // the ones it drew before rotations existed.
        if self.rng_rotation.chance(self.cfg.roster.rotation_chance) {
            let rotating: Vec<usize> = others.iter().copied().filter(|m| *m != y && Some(*m) != self.hostile).collect();
            if let Some(&z) = self.rng_rotation.pick(&rotating) {
                steps.push((Change::Rotate(z), None));
            }
        }
        steps.push((Change::Suspend(x), Some(Change::Suspend(y))));
        steps.push((Change::Reinstate(x), None));
        self.plan.steps = steps;
        self.plan.next_scheduled = true;
        self.plan.head = 1;
        let (lo, hi) = self.cfg.roster.first_ms;
        let t = start + self.rng_roster.range(lo, hi);
        self.at(t, Ev::Roster(Op::Propose { step: 0 }));
        for i in 0..self.nodes.len() {
            let t = start + self.rng_roster.range(0, self.cfg.roster.sync_ms);
            self.at(t, Ev::RosterSync { node: i });
        }
    }

    fn retry(&mut self, op: Op) {
        let (lo, hi) = self.cfg.roster.retry_ms;
        let t = self.now + self.rng_roster.range(lo, hi);
        self.at(t, Ev::Roster(op));
    }

    pub(crate) fn roster_op(&mut self, op: Op) -> Option<usize> {
        match op {
            Op::Propose { step } => self.propose(step),
            Op::Sign { amendment, signer } => self.sign(amendment, signer),
        }
    }

    /// An ASEAN member's administrator proposes the step's amendment (and the short one beside it).
    fn propose(&mut self, step: usize) -> Option<usize> {
        let (change, short) = *self.plan.steps.get(step)?;
        if let Change::Rotate(z) = change {
            return self.rotate(step, z);
        }
        let head = self.plan.head;
        let subjects: Vec<usize> = [Some(change), short].iter().flatten().map(|c| c.subject()).collect();
        let candidates: Vec<usize> = (0..self.nodes.len())
            .filter(|i| !subjects.contains(i))
            .filter(|i| {
                self.nodes[*i].up.as_ref().is_some_and(|up| {
                    let roster = &up.book.current.roster;
                    up.book.current.number == head
                        && roster.member(&self.nodes[*i].code).is_some_and(|m| m.community.as_str() == "ASEAN")
                        && !roster.is_suspended(&self.nodes[*i].code)
                })
            })
            .collect();
        let Some(&proposer) = self.rng_roster.pick(&candidates) else {
            self.retry(Op::Propose { step });
            return None;
        };
        if self.amend(step, change, proposer, false).is_none() {
            self.retry(Op::Propose { step });
            return None;
        }
        self.plan.proposed = step + 1;
        self.plan.next_scheduled = false;
        if let Some(short) = short {
            let other = *self.rng_roster.pick(&candidates).unwrap_or(&proposer);
            self.amend(step, short, other, true);
        }
        Some(proposer)
    }

    /// Proposes one amendment at `proposer`'s node, signed by it, and draws each signer's turn.
    fn amend(&mut self, step: usize, change: Change, proposer: usize, short: bool) -> Option<usize> {
        let subject = self.nodes[change.subject()].code.clone();
        let current = self.nodes[proposer].up.as_ref()?.book.current.clone();
        let full = self.full_roster.clone();
        let roster = changed(&current.roster, change, &subject, &full)?;
        let (file, hash) = amendment::propose(&current, &roster);
        let signers: Vec<usize> = current
            .roster
            .members()
            .filter(|m| m.community.as_str() == "ASEAN" && !current.roster.is_suspended(&m.code) && m.code != subject)
            .filter_map(|m| self.index.get(&m.code).copied())
            .filter(|i| *i != proposer)
            .collect();
        let withheld = if short { self.rng_roster.pick(&signers).copied() } else { None };
        let offered = self.signed_offer(proposer, &file, &hash)?;
        let a = self.truth.roster.amendments.len();
        self.truth.roster.amendments.push(Amendment {
            change,
            step,
            proposer,
            number: file.number,
            base: current.hash,
            hash,
            file,
            signers: signers.clone(),
            withheld,
        });
        *self.report.operations.entry(if short { "roster_proposed_short" } else { "roster_proposed" }).or_insert(0) +=
            1;
        let subject_i = change.subject();
        let number = current.number + 1;
        let e = self.plan.unsettled.entry(subject_i).or_insert(number);
        *e = (*e).max(number);
        for s in signers.into_iter().filter(|s| Some(*s) != withheld) {
            let (lo, hi) = self.cfg.roster.sign_ms;
            let t = self.now + self.rng_roster.range(lo, hi);
            self.at(t, Ev::Roster(Op::Sign { amendment: a, signer: s }));
        }
        self.roster_changed(proposer, &offered);
        Some(a)
    }

    /// A member's administrator proposes the version giving it a new signing key, signed by its
    /// current key and the new one, at its own node (where it takes effect at once).
    fn rotate(&mut self, step: usize, z: usize) -> Option<usize> {
        let code = self.nodes[z].code.clone();
        let head = self.plan.head;
        let current = self.nodes[z]
            .up
            .as_ref()
            .map(|up| up.book.current.clone())
            .filter(|c| c.number == head && !c.roster.is_suspended(&code));
        let Some(current) = current else {
            self.retry(Op::Propose { step });
            return None;
        };
        let new = self.nodes[z].new_key.clone().unwrap_or_else(|| {
            let mut seed = [0u8; 32];
            seed[..16].copy_from_slice(&self.rng_rotation.bytes16());
            seed[16..].copy_from_slice(&self.rng_rotation.bytes16());
            ed25519_dalek::SigningKey::from_bytes(&seed)
        });
        let mut roster_file = current.roster.to_file();
        let entry = roster_file.members.iter_mut().find(|m| m.code == code.as_str())?;
        entry.signing_key = hex::encode(new.verifying_key().as_bytes());
        let roster = Roster::from_file(&roster_file).ok()?;
        let (file, hash) = amendment::propose(&current, &roster);
        let mut signed = file.clone();
        let old = self.nodes[z].signing_key.clone();
        signed.signatures = vec![amendment::sign(&code, &old, &hash), amendment::sign(&code, &new, &hash)];
        self.nodes[z].new_key = Some(new);
        let now = self.nodes[z].now(self.now);
        let (limits, bugs) = (self.cfg.roster.limits, self.cfg.roster_bugs);
        let offered = self.nodes[z].offer_roster(None, "administrator", signed, &limits, bugs, now);
        if !matches!(offered, Offered::Applied(_) | Offered::Kept { .. }) {
            self.retry(Op::Propose { step });
            return None;
        }
        self.truth.roster.amendments.push(Amendment {
            change: Change::Rotate(z),
            step,
            proposer: z,
            number: file.number,
            base: current.hash,
            hash,
            file,
            signers: Vec::new(),
            withheld: None,
        });
        *self.report.operations.entry("roster_key_rotation_proposed").or_insert(0) += 1;
        self.plan.proposed = step + 1;
        self.plan.next_scheduled = false;
        let number = current.number + 1;
        let e = self.plan.unsettled.entry(z).or_insert(number);
        *e = (*e).max(number);
        self.plan.rotating.insert(z, number);
        self.roster_changed(z, &offered);
        Some(z)
    }

    /// The rotating member's node switches to its new key once every other member's node is
    /// known to hold the version giving it: rotate the core's key and commit its leaves moved to
    /// it on every line.
    pub(crate) fn switch_key(&mut self, z: usize) {
        let Some(&number) = self.plan.rotating.get(&z) else { return };
        let Some(new) = self.nodes[z].new_key.clone() else { return };
        let Some(up) = self.nodes[z].up.as_ref() else { return };
        let roster = &up.book.current.roster;
        let code = self.nodes[z].code.clone();
        if up.book.current.number < number || roster.member(&code).map(|m| m.signing_key) != Some(new.verifying_key()) {
            return;
        }
        let behind = roster
            .members()
            .filter(|m| m.code != code)
            .any(|m| self.index.get(&m.code).is_none_or(|p| up.peer_roster.get(p).is_none_or(|held| *held < number)));
        if behind {
            return;
        }
        let now = self.nodes[z].now(self.now);
        let keep_old = self.cfg.roster_bugs.keep_retired_key;
        match self.nodes[z].switch_key(new, now, keep_old) {
            Ok(Switched { old, heads, records }) => {
                for r in &records {
                    self.log_own(z, "key_renewal", r);
                }
                self.plan.rotating.remove(&z);
                *self.report.operations.entry("roster_key_switched").or_insert(0) += 1;
                self.truth.roster.switches.push(Switch { member: z, old, heads });
            }
            Err(e) => {
                // The core may have moved and the store did not: the node starts again from its
                // store, with the key it had, and switches later.
                self.anomaly(format!("{code} could not switch to the key its rotation gave it: {e}"));
                let down = self.rng_rotation.range(1_000, 30_000);
                self.crash(z, down);
            }
        }
    }

    /// The rotating member's node exchanges with every member's node not known to hold the
    /// version giving its new key.
    fn ask_rotation(&mut self, z: usize) {
        let Some(&number) = self.plan.rotating.get(&z) else { return };
        let Some(up) = self.nodes[z].up.as_ref() else { return };
        if up.book.current.number < number {
            return;
        }
        let peers: Vec<usize> = (0..self.nodes.len())
            .filter(|p| *p != z && self.nodes[z].admits(&self.nodes[*p].code))
            .filter(|p| up.peer_roster.get(p).is_none_or(|held| *held < number))
            .collect();
        for p in peers {
            self.exchange_with(z, p);
        }
    }

    /// The administrator at `node` signs `file` with the key the roster in force there lists
    /// for the member and hands it to its node.
    fn signed_offer(&mut self, node: usize, file: &RosterVersionFile, hash: &[u8; 32]) -> Option<Offered> {
        let key = self.nodes[node].roster_key();
        let mut signed = file.clone();
        signed.signatures = vec![amendment::sign(&self.nodes[node].code, &key, hash)];
        let now = self.nodes[node].now(self.now);
        let (limits, bugs) = (self.cfg.roster.limits, self.cfg.roster_bugs);
        let offered = self.nodes[node].offer_roster(None, "administrator", signed, &limits, bugs, now);
        match offered {
            Offered::Kept { .. } | Offered::Applied(_) | Offered::Unchanged => Some(offered),
            _ => None,
        }
    }

    /// A signer's turn: its node must be up and hold the version the amendment amends.
    fn sign(&mut self, a: usize, signer: usize) -> Option<usize> {
        let am = self.truth.roster.amendments.get(a)?.clone();
        let Some(up) = self.nodes[signer].up.as_ref() else {
            self.retry(Op::Sign { amendment: a, signer });
            return None;
        };
        if up.book.current.number >= am.number {
            return None;
        }
        if up.book.current.hash != am.base {
            self.retry(Op::Sign { amendment: a, signer });
            return None;
        }
        match self.signed_offer(signer, &am.file, &am.hash) {
            Some(offered) => {
                *self.report.operations.entry("roster_signed").or_insert(0) += 1;
                self.roster_changed(signer, &offered);
            }
            None => self.retry(Op::Sign { amendment: a, signer }),
        }
        Some(signer)
    }

    /// After a change of a node's own: what a version applied sets off, and an exchange with a
    /// few peers at once.
    fn roster_changed(&mut self, node: usize, offered: &Offered) {
        if matches!(offered, Offered::Applied(_)) {
            self.applied(node);
        }
        if matches!(offered, Offered::Applied(_) | Offered::Kept { .. }) {
            for _ in 0..self.cfg.roster.peers_after_change {
                self.exchange(node);
            }
        }
    }

    /// A version took effect at `node`: the next step is drawn once the last one took effect
    /// somewhere, a member it admits starts its node, and the members whose standing every node
    /// now holds are settled.
    fn applied(&mut self, node: usize) {
        let Some(up) = self.nodes[node].up.as_ref() else { return };
        let current = up.book.current.clone();
        let versions = up.book.versions.clone();
        *self.report.operations.entry("roster_applied").or_insert(0) += 1;
        let last_full = self
            .truth
            .roster
            .amendments
            .iter()
            .rev()
            .find(|a| a.withheld.is_none() && a.step + 1 == self.plan.proposed)
            .map(|a| a.hash);
        if !self.plan.next_scheduled && last_full == Some(current.hash) {
            self.plan.next_scheduled = true;
            self.plan.head = current.number;
            if self.plan.proposed < self.plan.steps.len() {
                let (lo, hi) = self.cfg.roster.next_ms;
                let t = self.now + self.rng_roster.range(lo, hi);
                let step = self.plan.proposed;
                self.at(t, Ev::Roster(Op::Propose { step }));
            }
        }
        let admitted: Vec<usize> =
            self.outside.iter().copied().filter(|i| current.roster.member(&self.nodes[*i].code).is_some()).collect();
        if !admitted.is_empty() && self.plan.admission_chain.is_none() {
            self.plan.admission_chain = Some(versions);
            for i in admitted {
                let t = self.now + self.rng_roster.range(2_000, 20_000);
                self.at(t, Ev::Restart { node: i });
            }
        }
        self.settle_roster();
    }

    /// Forgets the members whose standing every node holds now.
    fn settle_roster(&mut self) {
        let numbers: Vec<Option<u64>> = (0..self.nodes.len())
            .filter(|i| !self.outside.contains(i))
            .map(|i| self.nodes[i].up.as_ref().map(|u| u.book.current.number))
            .collect();
        if numbers.iter().any(Option::is_none) {
            return;
        }
        let least = numbers.into_iter().flatten().min().unwrap_or(0);
        self.plan.unsettled.retain(|_, n| *n > least);
    }

    /// Whether the operators leave `member` off a line set-up now.
    pub(crate) fn unsettled(&self, member: usize) -> bool {
        self.outside.contains(&member)
            || self.plan.unsettled.contains_key(&member)
            || self.plan.rotating.contains_key(&member)
    }

    /// Whether every running node holds the same chain, and the plan ran to its end.
    pub(crate) fn roster_quiet(&self) -> bool {
        if !self.cfg.roster.amendments {
            return true;
        }
        let mut heads = self.nodes.iter().filter_map(|n| n.up.as_ref()).map(|u| u.book.current.hash);
        let first = heads.next();
        self.plan.done() && self.plan.rotating.is_empty() && heads.all(|h| Some(h) == first)
    }

    /// The rotations whose node never switched to the new key, for a report.
    pub(crate) fn unswitched(&self) -> Vec<String> {
        self.plan
            .rotating
            .iter()
            .map(|(z, number)| {
                let behind: Vec<&str> = self.nodes[*z].up.as_ref().map_or(Vec::new(), |up| {
                    up.book
                        .current
                        .roster
                        .members()
                        .filter(|m| m.code != self.nodes[*z].code)
                        .filter(|m| {
                            self.index.get(&m.code).is_none_or(|p| up.peer_roster.get(p).is_none_or(|h| h < number))
                        })
                        .map(|m| m.code.as_str())
                        .collect()
                });
                format!(
                    "{} never switched to the key roster version {number} gave it (members not known to hold it: {behind:?})",
                    self.nodes[*z].code
                )
            })
            .collect()
    }

    /// A node's periodic exchange with one peer drawn.
    pub(crate) fn roster_sync(&mut self, node: usize) -> Option<usize> {
        let t = self.now + self.cfg.roster.sync_ms;
        self.at(t, Ev::RosterSync { node });
        self.exchange(node);
        self.ask_rotation(node);
        self.switch_key(node);
        Some(node)
    }

    /// Sends a peer drawn the exchange.
    fn exchange(&mut self, node: usize) {
        if !self.nodes[node].is_up() {
            return;
        }
        let peers: Vec<usize> = (0..self.nodes.len())
            .filter(|p| *p != node && !self.outside.contains(p) && self.nodes[node].admits(&self.nodes[*p].code))
            .collect();
        let Some(&peer) = self.rng_roster.pick(&peers) else { return };
        self.exchange_with(node, peer);
    }

    /// Sends `peer` the exchange: this node's version number and its proposals.
    fn exchange_with(&mut self, node: usize, peer: usize) {
        let Some(up) = self.nodes[node].up.as_ref() else { return };
        let number = up.book.current.number;
        let proposals = up.book.proposals.clone();
        self.send(node, peer, Wire::Exchange { number, proposals });
    }

    /// Notes the version a peer's node said it holds.
    fn note_peer_roster(&mut self, node: usize, peer: usize, number: u64) {
        if let Some(up) = self.nodes[node].up.as_mut() {
            let held = up.peer_roster.entry(peer).or_insert(0);
            *held = (*held).max(number);
        }
    }

    /// Hands `node` what `peer` sent it, in order, as the node's exchange does: the versions
    /// until one does not take, then every proposal; exchanges again if anything changed.
    fn take(&mut self, node: usize, peer: usize, versions: Vec<RosterVersionFile>, proposals: Vec<RosterVersionFile>) {
        let mut changed = false;
        for file in versions {
            match self.offer_from(node, peer, file) {
                Offered::Applied(_) => changed = true,
                Offered::Stale => {}
                _ => break,
            }
        }
        for file in proposals {
            if matches!(self.offer_from(node, peer, file), Offered::Applied(_) | Offered::Kept { .. }) {
                changed = true;
            }
        }
        if changed {
            self.exchange(node);
        }
    }

    /// Offers `node` a version or proposal `peer` handed it; one that took effect is applied.
    fn offer_from(&mut self, node: usize, peer: usize, file: RosterVersionFile) -> Offered {
        let peer_code = self.nodes[peer].code.clone();
        let actor = format!("member {peer_code}");
        let (limits, bugs) = (self.cfg.roster.limits, self.cfg.roster_bugs);
        let now = self.nodes[node].now(self.now);
        let offered = self.nodes[node].offer_roster(Some(&peer_code), &actor, file, &limits, bugs, now);
        if matches!(offered, Offered::Applied(_)) {
            self.applied(node);
        }
        offered
    }

    /// An exchange arriving at `to` from `from`: refused unless `to`'s roster takes `from`; the
    /// version it holds noted (a node told of a later one than its own asks that peer for it at
    /// once), its proposals taken, and the answer sent back.
    pub(crate) fn on_exchange(&mut self, from: usize, to: usize, number: u64, proposals: Vec<RosterVersionFile>) {
        if !self.nodes[to].admits(&self.nodes[from].code) {
            return;
        }
        self.note_peer_roster(to, from, number);
        if self.nodes[to].up.as_ref().is_some_and(|up| number > up.book.current.number) {
            self.exchange_with(to, from);
        }
        self.take(to, from, Vec::new(), proposals);
        let Some(up) = self.nodes[to].up.as_ref() else { return };
        let held = up.book.current.number;
        let versions = up.book.versions_after(number, self.cfg.roster.versions_per_exchange_max);
        let proposals = up.book.proposals.clone();
        self.send(to, from, Wire::ExchangeReply { number: held, versions, proposals });
        self.switch_key(to);
    }

    /// A peer's answer to this node's exchange.
    pub(crate) fn on_exchange_reply(
        &mut self,
        from: usize,
        to: usize,
        number: u64,
        versions: Vec<RosterVersionFile>,
        proposals: Vec<RosterVersionFile>,
    ) {
        if !self.nodes[to].admits(&self.nodes[from].code) {
            return;
        }
        self.note_peer_roster(to, from, number);
        self.take(to, from, versions, proposals);
        self.switch_key(to);
    }

    /// The hostile member hands a victim a proposal bearing another member's signature made
    /// with its own key, or one whose roster it altered after signing it.
    pub(crate) fn roster_forgery(&mut self, h: usize, altered: bool) -> Option<usize> {
        let me = self.nodes[h].code.clone();
        let up = self.nodes[h].up.as_ref()?;
        let current = up.book.current.clone();
        let victims: Vec<usize> = (0..self.nodes.len())
            .filter(|v| *v != h && self.nodes[*v].admits(&me) && self.nodes[h].admits(&self.nodes[*v].code))
            .collect();
        let victim = *self.rng_hostile.pick(&victims)?;
        // A version it might propose: the suspension of a member drawn.
        let members: Vec<MemberCode> = current
            .roster
            .members()
            .map(|m| m.code.clone())
            .filter(|c| *c != me && !current.roster.is_suspended(c))
            .collect();
        let subject = self.rng_hostile.pick(&members)?.clone();
        let i = *self.index.get(&subject)?;
        let roster = changed(&current.roster, Change::Suspend(i), &subject, &self.full_roster)?;
        let (mut file, hash) = amendment::propose(&current, &roster);
        let key = adi_core::fixtures::key(self.nodes[h].key_seed);
        let (kind, altered_hash) = if altered {
            file.signatures.push(amendment::sign(&me, &key, &hash));
            file.roster.name = format!("{} (altered)", file.roster.name);
            let claims = Roster::from_file(&file.roster)
                .ok()
                .map(|r| amendment::version_hash(file.number, Some(&current.hash), &r));
            ("roster_altered", claims)
        } else {
            let others: Vec<&MemberCode> = members.iter().filter(|c| **c != subject).collect();
            let named = (*self.rng_hostile.pick(&others)?).clone();
            file.signatures.push(amendment::sign(&me, &key, &hash));
            file.signatures.push(amendment::sign(&named, &key, &hash));
            ("roster_forged_signature", None)
        };
        let must_refuse = self.nodes[victim].up.as_ref().is_some_and(|u| u.book.current.hash == current.hash);
        let now = self.nodes[victim].now(self.now);
        let (limits, bugs) = (self.cfg.roster.limits, self.cfg.roster_bugs);
        let outcome = self.nodes[victim].offer_roster(Some(&me), &format!("member {me}"), file, &limits, bugs, now);
        *self
            .report
            .operations
            .entry(if altered { "hostile_roster_altered" } else { "hostile_roster_forged" })
            .or_insert(0) += 1;
        self.truth.roster.forgeries.push(Forgery {
            hostile: h,
            victim,
            kind,
            altered: altered_hash,
            must_refuse,
            outcome,
        });
        Some(victim)
    }
}

/// The hash a version file names itself by, read off its number, previous and roster.
pub(crate) fn hash_of(file: &RosterVersionFile) -> Option<[u8; 32]> {
    let roster = Roster::from_file(&file.roster).ok()?;
    let previous = match &file.previous {
        Some(h) => {
            let mut out = [0u8; 32];
            hex::decode_to_slice(h, &mut out).ok()?;
            Some(out)
        }
        None => None,
    };
    Some(amendment::version_hash(file.number, previous.as_ref(), &roster))
}

/// The members a roster lists and those it suspends.
pub(crate) fn standing(roster: &Roster) -> (BTreeSet<MemberCode>, BTreeSet<MemberCode>) {
    let listed: BTreeSet<MemberCode> = roster.members().map(|m| m.code.clone()).collect();
    let suspended = listed.iter().filter(|c| roster.is_suspended(c)).cloned().collect();
    (listed, suspended)
}

impl Change {
    pub(crate) fn describe(&self, w: &World) -> String {
        format!("{} of {}", self.verb(), w.nodes[self.subject()].code)
    }
}
