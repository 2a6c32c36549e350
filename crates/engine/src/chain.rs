//! The record at the receiving node: an envelope from a peer is checked against the hash chain
//! the store holds for its sender on its line, and a contradiction the sender signed is kept as
//! evidence with a `tamper` alarm.

use adi_core::{AlarmChange, AlarmKind, AlarmOp, Evidence, MemberCode, Roster};
use adi_store::{Store, StoreError};
use adi_wire::{Envelope, EnvelopeHash};

/// A contradiction in a sender's chain: why the envelope is refused, the alarm, the evidence.
pub struct ChainBreak {
    pub reason: String,
    pub alarm: AlarmChange,
    pub evidence: Evidence,
}

/// Checks `offered` (decoded, from `sender`'s connection) against the sender's envelopes the
/// store holds on the line: the one at the same sequence number must be the same envelope, the
/// one before must be what `prev` names, and the one after must name this one. Only a
/// contradiction carrying the sender's valid signature is evidence; anything else is left to the
/// core's checks. `at_seq` is what the caller already read at the envelope's own sequence number.
/// Stored bytes are read only for a contradiction: the common case costs two index lookups.
pub fn chain_break(
    store: &dyn Store,
    roster: &Roster,
    sender: &MemberCode,
    offered: &Envelope,
    offered_bytes: &[u8],
    at_seq: Option<EnvelopeHash>,
    now_ms: u64,
) -> Result<Option<ChainBreak>, StoreError> {
    let body = offered.body();
    let hash = offered.hash();
    let hash_at = |seq: u64| store.envelope_at(&body.line, &body.sender, seq);
    let bytes_of = |h: &EnvelopeHash| -> Result<Vec<u8>, StoreError> {
        Ok(store.envelope(h)?.map(|row| row.bytes).unwrap_or_default())
    };
    let mut found = None;
    if let Some(held) = at_seq.filter(|h| *h != hash) {
        found = Some((
            format!("{sender} signed two envelopes as its #{} on the line: {held} held, {hash} offered", body.seq),
            bytes_of(&held)?,
        ));
    }
    if found.is_none() && body.seq > 1 {
        if let Some(held) = hash_at(body.seq - 1)?.filter(|h| *h != body.prev) {
            let bytes = bytes_of(&held)?;
            found = Some((
                format!(
                    "{sender}'s #{} names {} as its previous envelope, but #{} held here is {held}",
                    body.seq,
                    body.prev,
                    body.seq - 1
                ),
                bytes,
            ));
        }
    }
    if found.is_none() {
        if let Some(held) = hash_at(body.seq + 1)? {
            let bytes = bytes_of(&held)?;
            let names = Envelope::decode(&bytes, usize::MAX, usize::MAX).map(|e| e.body().prev);
            if names.is_ok_and(|prev| prev != hash) {
                found = Some((
                    format!(
                        "{sender}'s #{} held here ({held}) does not follow #{} offered ({hash})",
                        body.seq + 1,
                        body.seq
                    ),
                    bytes,
                ));
            }
        }
    }
    let Some((detail, held)) = found else { return Ok(None) };
    // Only the sender's own signature makes the offered envelope evidence against it.
    let Some(member) = roster.member(sender).cloned() else { return Ok(None) };
    if offered.clone().verify(&member.signing_key).is_err() {
        return Ok(None);
    }
    let alarm = AlarmChange {
        kind: AlarmKind::Tamper,
        op: AlarmOp::Raise,
        line: body.line,
        member: sender.clone(),
        message: Some(hash),
        at_ms: now_ms,
        detail: detail.clone(),
        addressed_to: Vec::new(),
    };
    let evidence = Evidence {
        line: body.line,
        member: sender.clone(),
        at_ms: now_ms,
        detail: detail.clone(),
        held,
        offered: offered_bytes.to_vec(),
    };
    Ok(Some(ChainBreak { reason: format!("tamper: {detail}"), alarm, evidence }))
}
