//! Catching up after a restore: a store put back from a backup taken while the node ran is behind
//! its peers. This member signed envelopes after the backup that its peers hold, and its MLS
//! state is the one of the backup, whose own sender ratchets have used those envelopes' keys.
//!
//! [`Hotline::adopt_own`] takes back one of this member's own envelopes from a peer: it must carry
//! this member's signature, follow its chain as held here, be an application message (a commit or
//! proposal of this member's cannot be read back by its own author), and come with its signed
//! content, which this member signed too; so no peer can make this member adopt anything it did
//! not send. The content is decoded as any peer's would be, the acknowledgements its messages wait
//! for are awaited again, and its receipts settle here what they settled before. The MLS key each
//! such envelope used is spent again, sending nothing ([`adi_mls::LineMember::skip_own`]): at once
//! in the line's current epoch, and for a later epoch as soon as the commit that reaches it is
//! read, so that no key of this member's is ever used twice.
//!
//! The peers' envelopes then arrive through [`Hotline::receive`] as they would have: a message this
//! member had answered already gets no second automatic answer and waits for no second
//! acknowledgement ([`Hotline::end_catch_up`] forgets those answers).

use super::*;

impl Hotline {
    /// Takes back this member's own envelope `bytes`, held by a peer, with its signed content;
    /// returns the record to commit, addressed to every other member of the line (the runtime
    /// settles it as delivered to those that sent it back).
    pub fn adopt_own(&mut self, bytes: &[u8], signed_content: &[u8]) -> Result<Record, CoreError> {
        let limits = &self.config.limits;
        let refused = |why: String| CoreError::invalid("not_adoptable", why);
        let envelope = Envelope::decode(bytes, limits.envelope_bytes_max, limits.payload_bytes_max)
            .map_err(|e| refused(format!("malformed envelope: {e}")))?;
        let me = self.config.me.clone();
        if envelope.body().sender != me.as_str() {
            return Err(refused(format!("an envelope of {}'s is not this member's own", envelope.body().sender)));
        }
        let keys = self.accepted_keys(&me);
        let envelope = keys
            .iter()
            .find_map(|k| envelope.clone().verify(k).ok())
            .ok_or_else(|| refused(format!("the envelope does not carry {me}'s signature")))?;
        let body = envelope.body().clone();
        let line = self.line_here(&body.line)?;
        let (head, prev) = self.heads.get(&(line.id, me.clone())).copied().unwrap_or((0, EnvelopeHash::NONE));
        if body.seq != head + 1 || body.prev != prev {
            return Err(refused(format!(
                "envelope #{} on line {} does not follow this member's chain as held here (#{head})",
                body.seq, line.id
            )));
        }
        if body.content_type != CONTENT_MLS || body.content_hash == [0; 32] {
            return Err(CoreError::conflict(
                "own_handshake",
                format!(
                    "envelope #{} on line {} is a line set-up, commit or proposal of this member's, made after the \
                     backup: its author cannot read it back, so the line cannot be caught up; the line's home member \
                     must take this member off the line and add it again",
                    body.seq, line.id
                ),
            ));
        }
        let current = self.mls.epoch(&line.id.0).unwrap_or(0);
        if body.epoch < current {
            return Err(refused(format!(
                "envelope #{} on line {} is of epoch {}, before this member's {current}",
                body.seq, line.id, body.epoch
            )));
        }
        let signed = SignedContent::decode(signed_content)
            .and_then(|s| s.check_version(envelope.version()).map(|()| s))
            .map_err(|e| refused(format!("bad content: {e}")))?;
        if !keys.iter().any(|k| signed.verify(k, &line.id, me.as_str(), body.seq, &body.content_hash).is_ok()) {
            return Err(refused(format!(
                "the content of envelope #{} on line {} is not the one {me} signed for it",
                body.seq, line.id
            )));
        }
        let payload = PayloadV1::decode(&signed.content).map_err(|e| refused(format!("bad payload: {e}")))?;
        let content = self.content_of(&line, &me, body.priority, payload).map_err(|r| refused(r.reason))?;

        // Checked: from here the envelope is this member's again.
        self.heads.insert((line.id, me.clone()), (body.seq, envelope.hash()));
        self.hear(line.id, &me, body.epoch);
        *self.skips.entry((line.id, body.epoch)).or_default() += 1;
        self.key_updates.entry(line.id).or_insert((body.created_ms, 0)).1 += 1;
        let mut alarms = Vec::new();
        match &content {
            Content::Message(m) => {
                if let Some(due_ms) = m.due_ms(body.created_ms) {
                    for member in line.members.iter().filter(|m| **m != me) {
                        let p = PendingAck {
                            line: line.id,
                            message: envelope.hash(),
                            member: member.clone(),
                            sender: me.clone(),
                            side: Side::Sender,
                            due_ms,
                            precedence: m.precedence,
                            subject: m.subject.clone(),
                            alarmed: false,
                        };
                        self.await_ack(p, due_ms);
                    }
                }
            }
            Content::Receipt(r) => {
                self.caught_up.entry(r.answers.hash).or_default().push(r.kind);
                if r.kind.settles() {
                    if let Some((p, _)) = self.pending.remove(&(r.answers.hash, me.clone())) {
                        if p.alarmed {
                            let why = format!("{} by {me}", r.kind.as_str());
                            alarms.push(self.alarm(AlarmKind::Escalation, AlarmOp::Clear, &p, body.created_ms, why));
                        }
                    }
                }
            }
            _ => {}
        }
        self.apply_skip(&line.id)?;
        let recipients = line.members.iter().filter(|m| **m != me).cloned().collect();
        Ok(Record {
            envelope,
            sender: me,
            line,
            content,
            received_ms: body.created_ms,
            recipients,
            alarms,
            signed_content: Some(signed_content.to_vec()),
        })
    }

    /// Spends, on `line`, the keys of this member's own envelopes taken back at the line's
    /// current epoch and not spent yet; called before this member encrypts at that epoch and
    /// whenever a commit reaches it, so that the keys spent go into the same write.
    pub(super) fn apply_skip(&mut self, line: &LineId) -> Result<(), CoreError> {
        let Some(epoch) = self.mls.epoch(&line.0) else { return Ok(()) };
        if let Some(n) = self.skips.remove(&(*line, epoch)) {
            if let Err(e) = self.mls.skip_own(&line.0, n) {
                // Kept: nothing is encrypted on the line until they are spent.
                self.skips.insert((*line, epoch), n);
                return Err(internal(e));
            }
        }
        Ok(())
    }

    /// Plans, after a restart on a store still being caught up, the keys of this member's own
    /// envelopes stored at an epoch of `line` its group has not reached yet: `n` of them at
    /// `epoch`. Ignored for an epoch reached already (those keys were spent with the commit that
    /// reached it).
    pub fn plan_skip(&mut self, line: LineId, epoch: u64, n: u64) {
        if self.mls.epoch(&line.0).is_some_and(|current| epoch > current) {
            self.skips.insert((line, epoch), n);
        }
    }

    /// Whether this member had already answered `message` with `kind` (an answer taken back by
    /// [`Hotline::adopt_own`]).
    pub(super) fn answered_already(&self, message: &EnvelopeHash, kind: impl Fn(ReceiptKind) -> bool) -> bool {
        self.caught_up.get(message).is_some_and(|kinds| kinds.iter().any(|k| kind(*k)))
    }

    /// Begins a restored store's catch-up: until [`Hotline::end_catch_up`], envelopes taken from
    /// peers are not bounded by `peer_bytes_per_day_max` nor counted in it (they are what this
    /// node fetched, sent before; a week's backlog would otherwise outrun a day's share and the
    /// node could not start).
    pub fn begin_catch_up(&mut self) {
        self.catching_up = true;
    }

    /// Ends a catch-up: forgets the answers taken back, and returns the keys still to spend, by
    /// line and epoch, for epochs no commit read here has reached (the catch-up is then
    /// incomplete: a commit is missing).
    pub fn end_catch_up(&mut self) -> Vec<(LineId, u64, u64)> {
        self.caught_up.clear();
        self.catching_up = false;
        let mut left: Vec<(LineId, u64, u64)> = self.skips.iter().map(|((l, e), n)| (*l, *e, *n)).collect();
        left.sort();
        left
    }
}
