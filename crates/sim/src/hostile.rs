//! A hostile member in the simulation.
//!
//! In most runs one member, drawn by the seed, is hostile: its node runs the real engine like
//! every other, and besides what its operators do it hands other members' nodes what only
//! modified code sends, each attempt built from the member's own signing key and its MLS state
//! as its node holds it: a leaf naming another member, a proposal to remove another member, a
//! commit on a line it is not the home member of, an envelope naming an epoch its message is not
//! of, another member's envelope relayed, one of its own messages replayed at a new place, a
//! second envelope at a place of its own the victim holds (equivocation), an envelope after its
//! removal from a line made with the state it held before, a flood of envelopes from epochs
//! ahead, and a flood of KeyPackage claims. Each attempt goes straight to a victim's node over
//! the hostile member's connection. The checker requires every attempt refused (never stored),
//! each refused with the code the protocol gives it to have raised the alarm that names the
//! hostile member where the protocol can tell, the floods held to the victim's quotas with an
//! honest member's claim still answered; the guarantees the checker holds for every member hold
//! meanwhile: the hostile member's own traffic is honest.

use adi_core::{AlarmKind, Line, MemberCode};
use adi_mls::{LineMember, MlsConfig};
use adi_wire::batch::{RefusalCode, Verdict};
use adi_wire::envelope::{EnvelopeBody, CONTENT_MLS, PRIORITY_CONTROL, PRIORITY_ROUTINE};
use adi_wire::{Envelope, EnvelopeHash, LineId};

/// What a hostile attempt tries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attack {
    /// An update proposal whose leaf names another member of the line.
    ForgedLeaf,
    /// A proposal to remove another member.
    ProposeRemoval,
    /// A commit of its own, its leaf renamed the home member's, on a line it is not home of.
    RogueCommit,
    /// An application message in an envelope naming the epoch before the message's.
    EpochLie,
    /// An envelope of another member's, carried over the hostile member's connection.
    Relay,
    /// The MLS message of one of its envelopes the victim holds, signed again at a new place.
    Replay,
    /// A second envelope, signed, at a place of its own the victim holds another at.
    Equivocate,
    /// An envelope on a line it was taken off, after the place its removal fixed, made with the
    /// MLS state it held before the removal.
    AfterRemoval,
    /// More envelopes from an epoch the victim has not reached than it holds from one member,
    /// and one from the last epoch there is.
    HeldFlood,
    /// More KeyPackage claims than the victim answers one member in an hour.
    ClaimFlood,
    /// A proposed roster version bearing another member's signature made with its own key.
    ForgedRosterSignature,
    /// A proposed roster version whose roster it altered after signing it.
    AlteredRoster,
}

impl Attack {
    pub const ALL: [Attack; 12] = [
        Attack::ForgedLeaf,
        Attack::ProposeRemoval,
        Attack::RogueCommit,
        Attack::EpochLie,
        Attack::Relay,
        Attack::Replay,
        Attack::Equivocate,
        Attack::AfterRemoval,
        Attack::HeldFlood,
        Attack::ClaimFlood,
        Attack::ForgedRosterSignature,
        Attack::AlteredRoster,
    ];

    /// Whether the attempt is a roster proposal (drawn only in runs with amendments).
    pub fn is_roster(&self) -> bool {
        matches!(self, Attack::ForgedRosterSignature | Attack::AlteredRoster)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Attack::ForgedLeaf => "hostile_forged_leaf",
            Attack::ProposeRemoval => "hostile_propose_removal",
            Attack::RogueCommit => "hostile_rogue_commit",
            Attack::EpochLie => "hostile_epoch_lie",
            Attack::Relay => "hostile_relay",
            Attack::Replay => "hostile_replay",
            Attack::Equivocate => "hostile_equivocate",
            Attack::AfterRemoval => "hostile_after_removal",
            Attack::HeldFlood => "hostile_held_flood",
            Attack::ClaimFlood => "hostile_claim_flood",
            Attack::ForgedRosterSignature => "hostile_roster_forged",
            Attack::AlteredRoster => "hostile_roster_altered",
        }
    }

    /// The code a victim that decides the attempt at once refuses it with, and the alarm naming
    /// the hostile member that refusal raises where the protocol can tell the attempt from an
    /// honest fault. (A victim behind the line's epoch holds an attempt instead, and decides it
    /// when the commit arrives; one not on the line any more refuses it for that.) A member
    /// taken off a line whose node has not learned it yet sends the same envelopes honestly,
    /// so one after its removal raises no alarm.
    pub fn refusal(&self) -> (RefusalCode, Option<AlarmKind>) {
        match self {
            Attack::ForgedLeaf => (RefusalCode::ForgedLeaf, Some(AlarmKind::Misconduct)),
            Attack::ProposeRemoval => (RefusalCode::BadProposal, Some(AlarmKind::Misconduct)),
            Attack::RogueCommit => (RefusalCode::NotHome, Some(AlarmKind::Misconduct)),
            Attack::EpochLie => (RefusalCode::EpochMismatch, Some(AlarmKind::Misconduct)),
            Attack::Relay => (RefusalCode::Relayed, Some(AlarmKind::Misconduct)),
            Attack::Replay => (RefusalCode::Undecryptable, Some(AlarmKind::Undecryptable)),
            Attack::Equivocate => (RefusalCode::Tamper, Some(AlarmKind::Tamper)),
            Attack::AfterRemoval => (RefusalCode::Removed, None),
            Attack::HeldFlood | Attack::ClaimFlood => (RefusalCode::OverQuota, Some(AlarmKind::Quota)),
            // Not envelopes: the roster's decision refuses them as forged (the checker's `roster`).
            Attack::ForgedRosterSignature | Attack::AlteredRoster => {
                (RefusalCode::BadSignature, Some(AlarmKind::Misconduct))
            }
        }
    }
}

/// Whether the victim decrypts the attempt before it refuses it (a proposal travels encrypted),
/// spending the member's key for that place of its sending chain: such an attempt is made with
/// the member's own MLS state, so that its honest messages skip that key, as a modified node's
/// would. The others are refused before anything is decrypted.
pub fn spends_a_key(attack: Attack) -> bool {
    matches!(attack, Attack::ForgedLeaf | Attack::ProposeRemoval)
}

/// One attempt, and what its victim answered.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub attack: Attack,
    pub hostile: usize,
    pub victim: usize,
    pub line: LineId,
    /// The victim's verdict on each envelope of the attempt (none for a flood of claims).
    pub verdicts: Vec<Verdict>,
    /// For [`Attack::Equivocate`]: the place (sequence number) and the envelope the victim held
    /// there, which it must still hold.
    pub kept: Option<(u64, EnvelopeHash)>,
    /// For [`Attack::ClaimFlood`]: what the claims came to.
    pub claims: Option<Claims>,
    /// For [`Attack::HeldFlood`]: right after it, the envelopes the victim held from the hostile
    /// member on the line, and whether one from the last epoch there is was among them.
    pub held: Option<(u64, bool)>,
}

/// What a flood of KeyPackage claims came to at its victim.
#[derive(Clone, Copy, Debug)]
pub struct Claims {
    /// KeyPackages handed to the hostile member.
    pub granted: u64,
    /// Whether a claim was refused over the quota.
    pub refused: bool,
    /// The quota, `key_package_claims_per_hour_max`.
    pub per_hour_max: u64,
    /// Whether an honest member's claim right after the flood was answered with a KeyPackage
    /// (`None` when no other member could claim).
    pub honest: Option<bool>,
}

/// How far beyond the hostile member's own last envelope on the line its attempts are placed:
/// refused, they hold no place, and so far ahead none is a place its honest envelopes take.
pub const ATTEMPT_SEQ_OFFSET: u64 = 10_000;

/// Builds an attempt's envelope: `attack` by `me` (signing with `key`, its MLS state `mls`, its
/// last sequence number on the line `head`) on `line`, against `victim`. `relayed` is an envelope
/// of another member's the hostile node holds on the line, for [`Attack::Relay`]. `None` when the
/// attack does not apply to this line (a commit on a line the member is home of, say).
#[allow(clippy::too_many_arguments)]
pub fn envelope(
    attack: Attack,
    me: &MemberCode,
    key: &ed25519_dalek::SigningKey,
    mls: &mut LineMember,
    line: &Line,
    victim: &MemberCode,
    head: u64,
    now_ms: u64,
    relayed: Option<Vec<u8>>,
) -> Option<Vec<u8>> {
    let id = line.id.0;
    let (epoch, payload, priority) = match attack {
        Attack::Relay => return relayed,
        // Built by their own functions below.
        Attack::Replay
        | Attack::Equivocate
        | Attack::HeldFlood
        | Attack::ClaimFlood
        | Attack::ForgedRosterSignature
        | Attack::AlteredRoster => return None,
        Attack::AfterRemoval => {
            let (epoch, ciphertext) = mls.encrypt(&id, b"written after the removal").ok()?;
            (epoch, ciphertext, PRIORITY_ROUTINE)
        }
        Attack::ForgedLeaf => {
            let p = mls.propose_update_as_unchecked(&id, victim.as_str()).ok()?;
            (adi_mls::message_epoch(&p).ok()?, p, PRIORITY_CONTROL)
        }
        Attack::ProposeRemoval => {
            let p = mls.propose_remove_unchecked(&id, victim.as_str()).ok()?;
            (adi_mls::message_epoch(&p).ok()?, p, PRIORITY_CONTROL)
        }
        Attack::RogueCommit => {
            if line.home == *me {
                return None;
            }
            let c = mls.commit_unchecked(&id, Some(line.home.as_str())).ok()?.commit;
            (adi_mls::message_epoch(&c).ok()?, c, PRIORITY_CONTROL)
        }
        Attack::EpochLie => {
            let (epoch, ciphertext) = mls.encrypt(&id, b"not what the envelope says").ok()?;
            (epoch.checked_sub(1)?, ciphertext, PRIORITY_ROUTINE)
        }
    };
    let body = EnvelopeBody {
        line: line.id,
        sender: me.to_string(),
        seq: head + ATTEMPT_SEQ_OFFSET,
        prev: EnvelopeHash::NONE,
        epoch,
        created_ms: now_ms,
        priority,
        content_type: CONTENT_MLS,
        content_hash: [0; 32],
        payload,
    };
    Some(body.sign(key).bytes().to_vec())
}

/// A copy of a member's MLS state for one line, from the whole state its node holds.
pub fn mls_copy(
    me: &MemberCode,
    key: &ed25519_dalek::SigningKey,
    snapshot: &[u8],
    line: &LineId,
) -> Option<LineMember> {
    let entries = adi_mls::decode_state(snapshot).ok()?.into_iter().collect();
    LineMember::restore(me.as_str(), key.to_bytes(), MlsConfig::default(), entries, &[line.0]).ok()
}

/// [`Attack::Replay`]: `held` (an envelope of the member's the victim holds) carried again at a
/// new place, its MLS message unchanged, signed with `key`.
pub fn replay(held: &[u8], key: &ed25519_dalek::SigningKey, head: u64, now_ms: u64) -> Option<Vec<u8>> {
    let e = Envelope::decode(held, usize::MAX, usize::MAX).ok()?;
    let mut body = e.body().clone();
    if body.content_type != CONTENT_MLS {
        return None;
    }
    body.seq = head + ATTEMPT_SEQ_OFFSET;
    body.prev = EnvelopeHash::NONE;
    body.created_ms = now_ms;
    Some(body.sign(key).bytes().to_vec())
}

/// [`Attack::Equivocate`]: another envelope at the place of `held` (an envelope of the member's
/// the victim holds, on a line), the same in all but its time, signed with `key`.
pub fn equivocate(held: &[u8], key: &ed25519_dalek::SigningKey) -> Option<(u64, Vec<u8>)> {
    let e = Envelope::decode(held, usize::MAX, usize::MAX).ok()?;
    let mut body = e.body().clone();
    if body.content_type != CONTENT_MLS {
        return None;
    }
    body.created_ms = body.created_ms.wrapping_add(1);
    Some((body.seq, body.sign(key).bytes().to_vec()))
}

/// [`Attack::HeldFlood`]: `count` envelopes from the epoch after the victim's `epoch`, carrying
/// no MLS message anyone could read, and one from the last epoch there is.
pub fn held_flood(
    me: &MemberCode,
    key: &ed25519_dalek::SigningKey,
    line: &LineId,
    epoch: u64,
    head: u64,
    count: u64,
    now_ms: u64,
) -> Vec<Vec<u8>> {
    let one = |seq: u64, epoch: u64| {
        let body = EnvelopeBody {
            line: *line,
            sender: me.to_string(),
            seq,
            prev: EnvelopeHash::NONE,
            epoch,
            created_ms: now_ms,
            priority: PRIORITY_ROUTINE,
            content_type: CONTENT_MLS,
            content_hash: [0; 32],
            payload: seq.to_le_bytes().to_vec(),
        };
        body.sign(key).bytes().to_vec()
    };
    let first = head + ATTEMPT_SEQ_OFFSET;
    let mut out: Vec<Vec<u8>> = (0..count).map(|i| one(first + i, epoch + 1)).collect();
    out.push(one(first + count, u64::MAX));
    out
}
