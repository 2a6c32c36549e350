//! A store restored from a backup (`adi restore`) is checked against the peers before the node
//! signs anything. A backup taken while the node ran is behind what its peers hold: envelopes this
//! node signed after the backup (its own chain beyond the store's head) and envelopes peers sent
//! it after the backup (which they count as delivered). Signing on from the store's heads would
//! give a second envelope for places of its chain that peers hold already, which they must take
//! as this member forging its record; and the messages it was sent would be missing here.
//!
//! So at its first start on a restored store, the node asks every active peer of the roster what
//! it holds of each chain of the lines they share (`POST /fed/v1/heads`), and starts only if the
//! store holds all of it: the backup was taken of a stopped node, or nothing happened on its lines
//! since. Otherwise it refuses to start, saying what the store lacks and at which peer; and it
//! refuses while any peer has not answered within `restore_check_ms`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use adi_core::MemberCode;
use adi_wire::{EnvelopeHash, LineId};
use serde::{Deserialize, Serialize};

use super::links::post_once;
use super::HEADS_PATH;
use crate::state::NodeState;

/// What a node holds of the chains of the lines it shares with the asker.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heads {
    pub lines: Vec<LineHeads>,
}

/// One line: the asker's chain and the answering member's own, as the answering node holds them.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineHeads {
    /// The line id in hex.
    pub line: String,
    /// The asker's chain.
    pub yours: Option<Head>,
    /// The answering member's chain.
    pub mine: Option<Head>,
}

/// The last envelope of a chain: its sequence number and hash (hex).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

impl Head {
    fn of(head: Option<(u64, EnvelopeHash)>) -> Option<Head> {
        head.map(|(seq, hash)| Head { seq, hash: hex::encode(hash.0) })
    }
}

/// Answers a peer: every line it is on here, with its chain and this member's.
pub fn answer(node: &NodeState, peer: &MemberCode) -> Heads {
    let core = node.core();
    let lines = core
        .lines()
        .filter(|l| l.has_member(peer))
        .map(|l| LineHeads {
            line: hex::encode(l.id.0),
            yours: Head::of(core.head(&l.id, peer)),
            mine: Head::of(core.head(&l.id, &node.member)),
        })
        .collect();
    Heads { lines }
}

/// What this node's store lacks of what `peer`'s node holds, in words.
fn lacks(node: &NodeState, peer: &MemberCode, heads: &Heads) -> Vec<String> {
    let core = node.core();
    let me = &node.member;
    let mut out = Vec::new();
    for l in &heads.lines {
        let mut id = [0u8; 16];
        if hex::decode_to_slice(&l.line, &mut id).is_err() {
            out.push(format!("{peer} named a line that is no line id: {}", l.line));
            continue;
        }
        let line = LineId(id);
        if core.line(&line).is_none() {
            out.push(format!("line {line}, which {peer} holds, was set up after the backup"));
            continue;
        }
        let held = |sender: &MemberCode| Head::of(core.head(&line, sender));
        for (whose, theirs, ours) in [(me, &l.yours, held(me)), (peer, &l.mine, held(peer))] {
            let Some(theirs) = theirs else { continue };
            let ours_seq = ours.as_ref().map_or(0, |h| h.seq);
            if theirs.seq > ours_seq {
                out.push(format!(
                    "{peer} holds {whose}'s envelope #{} on line {line}; the store ends at #{ours_seq}",
                    theirs.seq
                ));
            } else if theirs.seq == ours_seq && ours.as_ref().is_some_and(|h| h.hash != theirs.hash) {
                out.push(format!("{peer} holds another envelope #{} of {whose} on line {line}", theirs.seq));
            }
        }
    }
    out
}

/// Checks a restored store against every active peer, as the module says; `Ok` once every peer
/// answered and none holds what the store lacks.
pub async fn check(node: &Arc<NodeState>, within: Duration) -> anyhow::Result<()> {
    let roster = node.roster();
    let mut waiting: BTreeMap<MemberCode, String> = roster
        .members()
        .filter(|m| m.code != node.member && !roster.is_suspended(&m.code))
        .map(|m| (m.code.clone(), "not asked yet".to_string()))
        .collect();
    let mut lacking = Vec::new();
    let started = Instant::now();
    let timeout_ms = node.runtime_limits.connect_timeout_ms;
    while !waiting.is_empty() {
        for (peer, why) in waiting.iter_mut() {
            let Some(member) = node.roster_member(peer) else { continue };
            let tls = match node.client_config(&member) {
                Ok(c) => Arc::new(c),
                Err(e) => {
                    *why = e.to_string();
                    continue;
                }
            };
            for endpoint in &member.endpoints {
                match post_once(endpoint, tls.clone(), peer, HEADS_PATH, Vec::new(), timeout_ms).await {
                    Ok(bytes) => match serde_json::from_slice::<Heads>(&bytes) {
                        Ok(heads) => {
                            lacking.extend(lacks(node, peer, &heads));
                            *why = String::new();
                            break;
                        }
                        Err(e) => *why = format!("{endpoint}: an answer that is not heads: {e}"),
                    },
                    Err(e) => *why = format!("{endpoint}: {e}"),
                }
            }
        }
        waiting.retain(|_, why| !why.is_empty());
        if waiting.is_empty() || started.elapsed() >= within {
            break;
        }
        // Asked again as often as the roster is exchanged.
        tokio::time::sleep(Duration::from_millis(node.runtime_limits.roster_sync_ms)).await;
    }
    if !lacking.is_empty() {
        anyhow::bail!(
            "this store was restored from a backup that is behind the peers, and the node would sign over \
             places of its chain they hold; it does not start. {}",
            lacking.join("; ")
        );
    }
    if !waiting.is_empty() {
        let unanswered: Vec<String> = waiting.iter().map(|(p, why)| format!("{p} ({why})")).collect();
        anyhow::bail!(
            "this store was restored from a backup, and it could not be checked against every peer within {} ms: \
             {}; the node does not start until each answers",
            within.as_millis(),
            unanswered.join(", ")
        );
    }
    tracing::info!("the restored store holds everything its peers hold of its lines: the node starts");
    Ok(())
}
