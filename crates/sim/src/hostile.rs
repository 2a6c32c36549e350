//! A hostile member in the simulation.
//!
//! In most runs one member, drawn by the seed, is hostile: its node runs the real engine like
//! every other, and besides what its operators do it hands other members' nodes what only
//! modified code sends, each attempt built from the member's own signing key and its MLS state
//! as its node holds it: a leaf naming another member, a proposal to remove another
//! member, a commit on a line it is not the home member of, an envelope naming an epoch its
//! message is not of, another member's envelope relayed. Each attempt goes straight to a victim's
//! node as a batch over the hostile member's connection. The checker requires every attempt
//! refused (never stored), and each refused at once with the code modified code earns to have
//! raised the `misconduct` alarm naming the hostile member at the victim. The guarantees the
//! checker holds for every member hold meanwhile: the hostile member's own traffic is honest.

use adi_core::{Line, MemberCode};
use adi_mls::{LineMember, MlsConfig};
use adi_wire::batch::{RefusalCode, Verdict};
use adi_wire::envelope::{EnvelopeBody, CONTENT_MLS, PRIORITY_CONTROL, PRIORITY_ROUTINE};
use adi_wire::{EnvelopeHash, LineId};

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
}

impl Attack {
    pub const ALL: [Attack; 5] =
        [Attack::ForgedLeaf, Attack::ProposeRemoval, Attack::RogueCommit, Attack::EpochLie, Attack::Relay];

    pub fn as_str(&self) -> &'static str {
        match self {
            Attack::ForgedLeaf => "hostile_forged_leaf",
            Attack::ProposeRemoval => "hostile_propose_removal",
            Attack::RogueCommit => "hostile_rogue_commit",
            Attack::EpochLie => "hostile_epoch_lie",
            Attack::Relay => "hostile_relay",
        }
    }

    /// The code a victim that decides the attempt at once refuses it with; each raises the
    /// `misconduct` alarm. (A victim behind the line's epoch holds the attempt instead, and
    /// decides it when the commit arrives; one not on the line any more refuses it for that.)
    pub fn code(&self) -> RefusalCode {
        match self {
            Attack::ForgedLeaf => RefusalCode::ForgedLeaf,
            Attack::ProposeRemoval => RefusalCode::BadProposal,
            Attack::RogueCommit => RefusalCode::NotHome,
            Attack::EpochLie => RefusalCode::EpochMismatch,
            Attack::Relay => RefusalCode::Relayed,
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
    pub verdict: Verdict,
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
