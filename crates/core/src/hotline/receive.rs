//! Deciding on one envelope from a peer: its set-up, handshake (MLS proposals and commits) and
//! application (messages, receipts, link tests, decisions, translations) branches, and what a
//! receipt settles here.

use super::*;

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;

impl Hotline {
    /// Decides on one envelope from `peer`, the member authenticated by the TLS connection.
    ///
    /// Returns the record to commit and, for a link test, this node's automatic answer after it.
    /// Idempotence on (line, sender, sequence) is the store's to enforce when it commits: this
    /// decides whether the envelope is acceptable at all.
    ///
    /// A peer that has had `peer_bytes_per_day_max` of envelopes taken in the last day has the
    /// rest deferred, before anything of them is read (nothing is spent: its node sends them
    /// again later), and a `quota` alarm names it; except during a restored store's catch-up.
    pub fn receive(&mut self, now_ms: u64, peer: &MemberCode, bytes: &[u8]) -> Result<Vec<Record>, Refusal> {
        let hour = now_ms - now_ms % HOUR_MS;
        let taken = self.received.get_mut(peer).map_or(0, |hours| {
            while hours.front().is_some_and(|(h, _)| h.saturating_add(DAY_MS) <= hour) {
                hours.pop_front();
            }
            hours.iter().map(|(_, b)| b).sum::<u64>()
        });
        let most = self.config.limits.peer_bytes_per_day_max;
        if !self.catching_up && taken.saturating_add(bytes.len() as u64) > most {
            let detail = format!("{peer} sent {taken} bytes of envelopes here in a day, its most");
            return Err(Refusal {
                alarm: Some(Box::new(AlarmChange::quota(peer, now_ms, detail))),
                ..Refusal::defer(
                    RefusalCode::OverQuota,
                    format!("{peer} has sent {taken} bytes here in the last day (peer_bytes_per_day_max = {most})"),
                )
            });
        }
        let records = self.receive_within_quota(now_ms, peer, bytes)?;
        if self.catching_up {
            return Ok(records);
        }
        let hours = self.received.entry(peer.clone()).or_default();
        match hours.back_mut() {
            Some((h, b)) if *h == hour => *b = b.saturating_add(bytes.len() as u64),
            _ => hours.push_back((hour, bytes.len() as u64)),
        }
        Ok(records)
    }

    fn receive_within_quota(&mut self, now_ms: u64, peer: &MemberCode, bytes: &[u8]) -> Result<Vec<Record>, Refusal> {
        let limits = &self.config.limits;
        let envelope = Envelope::decode(bytes, limits.envelope_bytes_max, limits.payload_bytes_max)
            .map_err(|e| Refusal::reject(RefusalCode::Malformed, format!("malformed envelope: {e}")))?;
        let body = envelope.body();
        if body.sender != peer.as_str() {
            return Err(Refusal::reject(
                RefusalCode::Relayed,
                format!("envelope from {} arrived over {peer}'s connection; relaying is not supported", body.sender),
            ));
        }
        let sender = peer.clone();
        if self.config.roster.member(&sender).is_none() {
            return Err(Refusal::reject(RefusalCode::NotInRoster, format!("{sender} is not in the roster")));
        }
        if self.config.roster.is_suspended(&sender) {
            return Err(Refusal::reject(RefusalCode::Suspended, format!("{sender} is suspended by the roster")));
        }
        // The roster's key, or one a rotation retired (what the member signed before it moved).
        let mut verified = Err(Refusal::reject(RefusalCode::BadSignature, "no key to verify with"));
        for key in self.accepted_keys(&sender) {
            verified =
                envelope.clone().verify(&key).map_err(|e| Refusal::reject(RefusalCode::BadSignature, e.to_string()));
            if verified.is_ok() {
                break;
            }
        }
        let envelope = verified?;
        let body = envelope.body();
        if body.content_type == CONTENT_MLS_SETUP {
            return self.receive_setup(now_ms, sender, envelope);
        }
        if body.content_type != CONTENT_MLS {
            return Err(Refusal::reject(
                RefusalCode::UnsupportedContent,
                format!("content type {} is not accepted: lines carry MLS messages only", body.content_type),
            ));
        }
        let line = match self.lines.get(&body.line) {
            Some(l) => l.clone(),
            None => {
                return Err(Refusal::defer(
                    RefusalCode::UnknownLine,
                    format!("line {} is not known here yet", body.line),
                ))
            }
        };
        self.check_removed(&line.id, &sender, body.seq, body.epoch)?;
        if !line.has_member(&self.config.me) {
            // A sender addresses this member at an epoch only where it is a member. An envelope
            // from after the last epoch this member saw on the line means a commit added it
            // again, and the Welcome of that addition has not arrived yet: the envelope waits for
            // it (refused now, it could never be read, and a commit naming it would block).
            let last = self.mls.epoch(&line.id.0);
            if last.is_some_and(|last| body.epoch > last) {
                return Err(Refusal::defer(
                    RefusalCode::AwaitingWelcome,
                    format!(
                        "{} was taken off line {} at epoch {}; the Welcome that adds it again has not arrived yet",
                        self.config.me,
                        line.id,
                        last.unwrap_or(0)
                    ),
                ));
            }
            return Err(Refusal::reject(
                RefusalCode::RecipientNotOnLine,
                format!("{} is no longer on line {}", self.config.me, line.id),
            ));
        }
        let current = self.mls.epoch(&line.id.0).unwrap_or(0);
        // Membership is judged at the envelope's epoch: a member removed since may have sent it
        // from an earlier epoch while on the line (MLS reads it only if its sender was a member
        // at that epoch), and a member added by a commit not read here yet sends from that
        // commit's epoch (held below until the commit arrives). The members this node has known
        // on the line survive its restarts (`Restored::known`).
        let was_member = self.known.contains(&(line.id, sender.clone()));
        if !line.has_member(&sender) && (body.epoch == current || (body.epoch < current && !was_member)) {
            return Err(Refusal::reject(
                RefusalCode::NotMember,
                format!("{sender} is not a member of line {}", line.id),
            ));
        }
        self.check_seq_ahead(&line.id, &sender, body.seq)?;
        if body.epoch > current {
            let held = HeldEnvelope {
                line: line.id,
                sender: sender.clone(),
                seq: body.seq,
                epoch: body.epoch,
                hash: envelope.hash(),
                bytes: envelope.bytes().to_vec(),
                received_ms: now_ms,
            };
            return Err(Refusal {
                hold: Some(Box::new(held)),
                ..Refusal::defer(
                    RefusalCode::EpochAhead,
                    format!("epoch {} is ahead of this member's {current}", body.epoch),
                )
            });
        }
        let claim = Claim { sender: sender.as_str(), epoch: body.epoch };
        let home = line.acting_home(&self.config.roster);
        let rules = LineRules { home: home.as_str(), direct: line.is_direct() };
        let keys = LeafKeys { roster: &self.config.roster, retired: &self.retired };
        let processed = match self.mls.process(&line.id.0, rules, claim, &body.payload, &keys) {
            Ok(p) => p,
            // What only modified code sends: refused, and an alarm names the member whose
            // signature the envelope carries.
            Err(
                e @ (MlsError::NotHome
                | MlsError::Leaf(_)
                | MlsError::DirectLine
                | MlsError::EpochMismatch { .. }
                | MlsError::SenderMismatch { .. }),
            ) => {
                let code = match e {
                    MlsError::NotHome => RefusalCode::NotHome,
                    MlsError::Leaf(_) => RefusalCode::ForgedLeaf,
                    MlsError::DirectLine => RefusalCode::DirectLine,
                    MlsError::EpochMismatch { .. } => RefusalCode::EpochMismatch,
                    _ => RefusalCode::SenderMismatch,
                };
                let detail = format!("envelope #{} on line {} refused ({}): {e}", body.seq, line.id, code.as_str());
                return Err(Refusal {
                    alarm: Some(Box::new(AlarmChange::misconduct(&sender, now_ms, detail))),
                    ..Refusal::reject(code, e.to_string())
                });
            }
            // A member's key update that crossed the home member's commit is outdated, not
            // undecryptable: it is refused without an alarm, and its member proposes again
            // when the commit reaches it.
            Err(e @ MlsError::StaleProposal { .. }) => {
                return Err(Refusal::reject(RefusalCode::Outdated, format!("outdated: {e}")))
            }
            // A member proposes only its own update or leaving; nodes propose nothing else.
            Err(e @ MlsError::Proposal(_)) => {
                let detail = format!("envelope #{} on line {} refused (bad_proposal): {e}", body.seq, line.id);
                return Err(Refusal {
                    alarm: Some(Box::new(AlarmChange::misconduct(&sender, now_ms, detail))),
                    ..Refusal::reject(RefusalCode::BadProposal, e.to_string())
                });
            }
            // The proposal travels from its member on another link and may arrive after the
            // home member's commit: the sender tries the commit again later.
            Err(e @ MlsError::MissingProposal) => {
                return Err(Refusal::defer(RefusalCode::MissingProposal, e.to_string()))
            }
            Err(e) => {
                let reason = format!("cannot decrypt: {e}");
                let alarm = AlarmChange {
                    kind: AlarmKind::Undecryptable,
                    op: AlarmOp::Raise,
                    line: line.id,
                    member: sender.clone(),
                    message: Some(envelope.hash()),
                    at_ms: now_ms,
                    detail: format!("envelope #{} from {sender} cannot be decrypted: {e}", body.seq),
                    addressed_to: Vec::new(),
                };
                return Err(Refusal {
                    retry: false,
                    code: RefusalCode::Undecryptable,
                    reason,
                    alarm: Some(Box::new(alarm)),
                    hold: None,
                });
            }
        };
        let plaintext = match processed {
            // The MLS layer refused any other sender than the envelope's.
            Processed::Application { plaintext, .. } => plaintext,
            Processed::Buffered { epoch } => {
                return Err(Refusal::defer(
                    RefusalCode::EpochAhead,
                    format!("epoch {epoch} is ahead of this member's"),
                ));
            }
            Processed::Commit { .. } | Processed::Proposal { .. } => {
                return self.receive_handshake(now_ms, sender, envelope, line, processed);
            }
        };
        // The content carries its author's signature for this place in the line, and is the one
        // the envelope names.
        let signed = SignedContent::decode(&plaintext)
            .and_then(|signed| signed.check_version(envelope.version()).map(|()| signed))
            .map_err(|e| Refusal::reject(RefusalCode::Malformed, format!("bad content: {e}")))?;
        let keys = self.accepted_keys(&sender);
        if keys.is_empty() {
            return Err(Refusal::reject(RefusalCode::NotInRoster, format!("{sender} is not in the roster")));
        }
        let mut checked = Err(Refusal::reject(RefusalCode::BadSignature, "content refused"));
        for key in &keys {
            checked = signed
                .verify(key, &body.line, body.sender.as_str(), body.seq, &body.content_hash)
                .map_err(|e| Refusal::reject(RefusalCode::BadSignature, format!("content refused: {e}")));
            if checked.is_ok() {
                break;
            }
        }
        checked?;
        let payload = PayloadV1::decode(&signed.content)
            .map_err(|e| Refusal::reject(RefusalCode::Malformed, format!("bad payload: {e}")))?;
        let content = self.content_of(&line, &sender, body.priority, payload)?;
        self.check_seq(&line, &sender, &envelope)?;
        let mut record = Record {
            envelope,
            sender: sender.clone(),
            line: line.clone(),
            content,
            received_ms: now_ms,
            recipients: Vec::new(),
            alarms: Vec::new(),
            signed_content: Some(plaintext),
        };
        let mut out = Vec::new();
        match &record.content {
            Content::Message(m) if m.has_deadline() => {
                // Judged from when this node received the message, on its own clock.
                let due_ms = m.due_ms(now_ms).unwrap_or(now_ms);
                let p = PendingAck {
                    line: line.id,
                    message: record.envelope.hash(),
                    member: self.config.me.clone(),
                    sender: record.sender.clone(),
                    side: Side::Recipient,
                    due_ms,
                    precedence: m.precedence,
                    subject: m.subject.clone(),
                    alarmed: false,
                };
                let answered = self.answered_already(&p.message, |k| k.settles());
                if !answered && !self.pending.contains_key(&(p.message, p.member.clone())) {
                    let due = p.due_ms;
                    self.await_ack(p, due);
                }
            }
            _ => {}
        }
        // The node answers some envelopes itself: a message with its signed word that it was
        // decrypted, a link test with its answer.
        let auto = match &record.content {
            Content::Message(m) => Some((ReceiptKind::Decrypted, m.precedence.priority())),
            Content::Chunk(_) => Some((ReceiptKind::Decrypted, record.envelope.body().priority)),
            Content::LinkTest => Some((ReceiptKind::LinkTestAnswer, PRIORITY_CONTROL)),
            Content::Receipt(r) => {
                let signed_ms = record.envelope.body().created_ms;
                record.alarms = self.on_receipt(now_ms, &sender, r, signed_ms);
                None
            }
            _ => None,
        };
        let answered = Answered { hash: record.envelope.hash(), sender, seq: record.envelope.body().seq };
        // Answered already, by an answer of this member's taken back after a restore.
        let auto = auto.filter(|(kind, _)| !self.answered_already(&answered.hash, |k| k == *kind));
        out.push(record);
        if let Some((kind, priority)) = auto {
            let receipt = Receipt { kind, answers: answered, reason: None };
            let payload = receipt_to_payload(&receipt);
            // The message is decrypted and its keys spent: it is kept even if the answer cannot be
            // sealed, which only a broken group state could cause.
            if let Ok(answer) = self.seal(now_ms, line, priority, payload, Content::Receipt(receipt)) {
                out.push(answer);
            }
        }
        Ok(out)
    }

    /// What an application payload from `sender` (its priority as its envelope names it) carries,
    /// checked as any envelope of the line's is: by the limits, the line's kind and members, and
    /// what a member may answer.
    pub(super) fn content_of(
        &self,
        line: &Line,
        sender: &MemberCode,
        priority: u8,
        payload: PayloadV1,
    ) -> Result<Content, Refusal> {
        Ok(match payload {
            PayloadV1::LineSetup { .. } => {
                return Err(Refusal::reject(RefusalCode::Malformed, "a line set-up inside a line's messages"))
            }
            PayloadV1::Message { .. } => {
                let message = message_from_payload(payload).map_err(|e| Refusal::reject(RefusalCode::Malformed, e))?;
                message
                    .check(&self.config.limits)
                    .map_err(|e| Refusal::reject(RefusalCode::ContentRefused, e.message))?;
                if message.precedence.priority() != priority {
                    return Err(Refusal::reject(
                        RefusalCode::ContentRefused,
                        "the envelope's priority does not match the message's precedence",
                    ));
                }
                Content::Message(message)
            }
            PayloadV1::Receipt { .. } => {
                let receipt = receipt_from_payload(payload).map_err(|e| Refusal::reject(RefusalCode::Malformed, e))?;
                if receipt.answers.sender == *sender {
                    return Err(Refusal::reject(
                        RefusalCode::ContentRefused,
                        format!("{sender} answered its own envelope; only its recipients may answer it"),
                    ));
                }
                // The answered message's sender may have left the line since it sent it; the store
                // checks the answer against the envelope it names when it holds it.
                if self.config.roster.member(&receipt.answers.sender).is_none() {
                    return Err(Refusal::reject(
                        RefusalCode::ContentRefused,
                        "the answered envelope's sender is not in the roster",
                    ));
                }
                if receipt.kind == ReceiptKind::Declined && receipt.reason.is_none() {
                    return Err(Refusal::reject(RefusalCode::ContentRefused, "a decline carries a reason"));
                }
                if let Some(reason) = &receipt.reason {
                    check_reason(reason, &self.config.limits)
                        .map_err(|e| Refusal::reject(RefusalCode::ContentRefused, e.message))?;
                }
                Content::Receipt(receipt)
            }
            PayloadV1::LinkTest { .. } => {
                if !line.is_direct() {
                    return Err(Refusal::reject(RefusalCode::ContentRefused, "link tests run on direct lines only"));
                }
                Content::LinkTest
            }
            p @ PayloadV1::Decision { .. } => {
                let decision = decision_from_payload(p).map_err(|e| Refusal::reject(RefusalCode::Malformed, e))?;
                // The proposer named the parties on the line as it knew it; one of them may have
                // been taken off since, as this node knows it: a party this node has known on the
                // line counts.
                let mut known = line.clone();
                known.members.extend(
                    self.known.iter().filter(|(l, m)| *l == line.id && !line.has_member(m)).map(|(_, m)| m.clone()),
                );
                known.members.sort();
                known.members.dedup();
                decision
                    .check(&known, &self.config.limits)
                    .map_err(|e| Refusal::reject(RefusalCode::ContentRefused, e.message))?;
                Content::Decision(decision)
            }
            PayloadV1::Translation { original, language, text, translator, reviewed_by, revises, .. } => {
                let hash = |s: &str| {
                    EnvelopeHash::from_hex(s)
                        .ok_or_else(|| Refusal::reject(RefusalCode::Malformed, "a hash is not 32 bytes of hex"))
                };
                let t = Translation {
                    original: hash(&original)?,
                    language,
                    text,
                    translator,
                    reviewed_by,
                    revises: revises.as_deref().map(hash).transpose()?,
                };
                t.check(&self.config.limits).map_err(|e| Refusal::reject(RefusalCode::ContentRefused, e.message))?;
                Content::Translation(t)
            }
            p @ PayloadV1::Chunk { .. } => {
                let chunk = chunk_from_payload(p).map_err(|e| Refusal::reject(RefusalCode::Malformed, e))?;
                // Which message and file it belongs to is the sender's word, checked when the file
                // is put together: a chunk that belongs to nothing makes no file.
                let limits = &self.config.limits;
                if chunk.data.is_empty() || chunk.data.len() > limits.attachment_chunk_bytes_max {
                    return Err(Refusal::reject(
                        RefusalCode::ContentRefused,
                        format!("a chunk carries 1 to {} bytes", limits.attachment_chunk_bytes_max),
                    ));
                }
                if chunk.index >= limits.attachment_bytes_max {
                    return Err(Refusal::reject(RefusalCode::ContentRefused, "a chunk's place is past any file's end"));
                }
                Content::Chunk(chunk)
            }
            p @ PayloadV1::Concurrence { .. } => {
                let answer = concurrence_from_payload(p).map_err(|e| Refusal::reject(RefusalCode::Malformed, e))?;
                if let Some(reason) = &answer.reason {
                    check_reason(reason, &self.config.limits)
                        .map_err(|e| Refusal::reject(RefusalCode::ContentRefused, e.message))?;
                }
                Content::Concurrence(answer)
            }
        })
    }

    /// A line's set-up from its home member: the line checked against the roster's policy, and
    /// its group joined from the Welcome (or, for a member added again, joined anew).
    fn receive_setup(
        &mut self,
        now_ms: u64,
        sender: MemberCode,
        envelope: VerifiedEnvelope,
    ) -> Result<Vec<Record>, Refusal> {
        let body = envelope.body();
        let payload = PayloadV1::decode(&body.payload)
            .map_err(|e| Refusal::reject(RefusalCode::Malformed, format!("bad line setup: {e}")))?;
        let PayloadV1::LineSetup { scope, title, home, members, welcome, .. } = payload else {
            return Err(Refusal::reject(RefusalCode::BadLineSetup, "a set-up envelope carries a line set-up"));
        };
        let line = self.check_setup(now_ms, &sender, &envelope, &scope, title, &home, &members)?;
        let rejoining = self.lines.get(&line.id).is_some_and(|l| !l.has_member(&self.config.me));
        if rejoining && !self.mls.is_active(&line.id.0) {
            self.mls
                .forget(&line.id.0)
                .map_err(|e| Refusal::defer(RefusalCode::NotReady, format!("cannot rejoin yet: {e}")))?;
        }
        if !self.mls.has_line(&line.id.0) {
            let welcome = welcome
                .and_then(|w| hex::decode(w).ok())
                .ok_or_else(|| Refusal::reject(RefusalCode::BadLineSetup, "the line set-up carries no Welcome"))?;
            let keys = LeafKeys { roster: &self.config.roster, retired: &self.retired };
            let joined = self.mls.join(&welcome, &keys).map_err(|e| {
                Refusal::reject(RefusalCode::BadLineSetup, format!("cannot join the line's group: {e}"))
            })?;
            let mut in_group = self.mls.members(&joined);
            in_group.sort();
            let listed: Vec<String> = line.members.iter().map(|m| m.to_string()).collect();
            if joined != line.id.0 || in_group != listed {
                return Err(Refusal::reject(RefusalCode::BadLineSetup, "the Welcome does not match the line set-up"));
            }
        }
        self.check_seq(&line, &sender, &envelope)?;
        if rejoining {
            self.lines.insert(line.id, line.clone());
            self.hear_joined(&line);
        } else if !self.lines.contains_key(&line.id) {
            self.add_line(line.clone(), now_ms);
            self.hear_joined(&line);
        }
        Ok(vec![Record {
            envelope,
            sender,
            line,
            content: Content::LineSetup,
            received_ms: now_ms,
            recipients: Vec::new(),
            alarms: Vec::new(),
            signed_content: None,
        }])
    }

    /// An MLS proposal or commit of the line's group: a commit may change who is on the line,
    /// and the home member commits a member's proposal at once.
    fn receive_handshake(
        &mut self,
        now_ms: u64,
        sender: MemberCode,
        envelope: VerifiedEnvelope,
        line: Line,
        processed: Processed,
    ) -> Result<Vec<Record>, Refusal> {
        self.check_seq(&line, &sender, &envelope)?;
        if let Processed::Commit { update_dropped: true, .. } = processed {
            // This member's update crossed the commit: it proposes again at the next tick.
            self.timers.insert((now_ms, Timer::KeyUpdate(line.id)));
            let due = self.config.discipline.key_update_messages.max(1);
            self.key_updates.entry(line.id).or_insert((now_ms, 0)).1 = due;
        }
        let proposal = matches!(processed, Processed::Proposal { .. });
        let leaving = matches!(processed, Processed::Proposal { leaving: true, .. });
        let mut alarms = Vec::new();
        let removals = match &processed {
            Processed::Commit { removed, aad, .. } if !removed.is_empty() => {
                let (removals, missing) = self.removals_sent(&line, removed, aad);
                if let Some(why) = missing {
                    let detail = format!("commit #{} on line {}: {why}", envelope.body().seq, line.id);
                    alarms.push(AlarmChange::misconduct(&sender, now_ms, detail));
                }
                self.note_removals(line.id, &removals);
                removals
            }
            _ => Vec::new(),
        };
        // A commit may have changed who is on the line: the group's members are the truth.
        let line = if proposal { line } else { self.follow_membership(&line) };
        if !proposal {
            // Keys of this member's that envelopes taken back used at the epoch now reached are
            // spent with the commit's write (if that fails, before this member next encrypts).
            let _ = self.apply_skip(&line.id);
        }
        let mut out = vec![Record {
            envelope,
            sender,
            line: line.clone(),
            content: Content::Handshake(removals),
            received_ms: now_ms,
            recipients: Vec::new(),
            alarms,
            signed_content: None,
        }];
        // The home member commits a member's key update at once.
        if proposal && line.acting_home(&self.config.roster) == self.config.me {
            if let Ok(commit) = self.commit_line(now_ms, &line, !leaving) {
                out.push(commit);
            }
        }
        Ok(out)
    }

    /// Where each member a commit took off stopped, as the home member sent it with the commit.
    /// A member it names no place for (which only modified code sends) stops where this node
    /// holds it, and the reason is returned for an alarm naming the home member.
    fn removals_sent(&self, line: &Line, removed: &[String], aad: &[u8]) -> (Vec<Removal>, Option<String>) {
        let (sent, mut why) = match decode_removals(aad) {
            Ok(sent) => (sent, None),
            Err(e) => (Vec::new(), Some(format!("its removals cannot be read: {e}"))),
        };
        let mut removals = Vec::with_capacity(removed.len());
        for code in removed {
            let Ok(member) = MemberCode::parse(code) else { continue };
            match sent.iter().find(|r| r.member == member) {
                Some(r) => removals.push(r.clone()),
                None => {
                    why.get_or_insert_with(|| format!("it takes {member} off without the place {member} stopped"));
                    removals.push(self.removal_of(&line.id, &member));
                }
            }
        }
        (removals, why)
    }

    /// What a receipt from `from`, signed at `signed_ms` on its clock, settles here: an awaited
    /// acknowledgement or a link test.
    pub(super) fn on_receipt(
        &mut self,
        now_ms: u64,
        from: &MemberCode,
        r: &Receipt,
        signed_ms: u64,
    ) -> Vec<AlarmChange> {
        let offset_max = self.config.discipline.clock_offset_ms_max;
        let mut alarms = Vec::new();
        if r.kind.settles() {
            if let Some((p, _)) = self.pending.remove(&(r.answers.hash, from.clone())) {
                let why = match &r.reason {
                    Some(reason) => format!("{} by {from}: {reason}", r.kind.as_str()),
                    None => format!("{} by {from}", r.kind.as_str()),
                };
                // An answer first held here after the deadline is late whatever the recipient's
                // clock signed, and whether or not this node was running to see the deadline
                // pass: the alarm is raised for the record and cleared by the answer at once.
                if !p.alarmed && p.side == Side::Sender && now_ms > p.due_ms {
                    let late = human_ms(now_ms - p.due_ms);
                    let detail = format!(
                        "no acknowledgement from {from} for {} '{}' by its deadline: the answer came {late} late",
                        p.precedence.as_str(),
                        p.subject
                    );
                    alarms.push(self.alarm(AlarmKind::Unacknowledged, AlarmOp::Raise, &p, now_ms, detail));
                    alarms.push(self.alarm(AlarmKind::Unacknowledged, AlarmOp::Clear, &p, now_ms, why));
                } else if p.alarmed {
                    alarms.push(self.alarm(AlarmKind::Unacknowledged, AlarmOp::Clear, &p, now_ms, why));
                }
            }
        }
        if r.kind == ReceiptKind::LinkTestAnswer {
            let line = self
                .links
                .values_mut()
                .find(|l| l.peer == *from && l.outstanding.is_some_and(|o| o.0 == r.answers.hash));
            if let Some(l) = line {
                let sent = l.outstanding.map(|o| o.1).unwrap_or(now_ms);
                let rtt = now_ms.saturating_sub(sent);
                l.outstanding = None;
                l.last_ok_ms = Some(now_ms);
                l.last_rtt_ms = Some(rtt);
                alarms.extend(clock_check(l, signed_ms, sent, rtt, offset_max, now_ms));
                if l.alarmed {
                    l.alarmed = false;
                    alarms.push(AlarmChange {
                        kind: AlarmKind::LinkNoAnswer,
                        op: AlarmOp::Clear,
                        line: l.line,
                        member: l.peer.clone(),
                        message: None,
                        at_ms: now_ms,
                        detail: format!("{from} answers again (round trip {} ms)", now_ms.saturating_sub(sent)),
                        addressed_to: Vec::new(),
                    });
                }
            }
        }
        alarms
    }

    /// Stops waiting for `member`'s acknowledgement of `message`: the store holds its answer
    /// already. Used when a message arrives again after this member answered it.
    pub fn forget_ack(&mut self, message: &EnvelopeHash, member: &MemberCode) {
        self.pending.remove(&(*message, member.clone()));
    }

    /// Refuses a sequence number too far ahead of the sender's last one here (before any MLS key
    /// is spent on it).
    pub(super) fn check_seq_ahead(&self, line: &LineId, sender: &MemberCode, seq: u64) -> Result<u64, Refusal> {
        let (seen, _) = self.heads.get(&(*line, sender.clone())).copied().unwrap_or((0, EnvelopeHash::NONE));
        if seq > seen.saturating_add(self.config.limits.seq_ahead_max) {
            return Err(Refusal::reject(
                RefusalCode::Sequence,
                format!(
                    "sequence number {seq} is too far ahead of {seen} (limit seq_ahead_max = {})",
                    self.config.limits.seq_ahead_max
                ),
            ));
        }
        Ok(seen)
    }

    pub(super) fn check_seq(
        &mut self,
        line: &Line,
        sender: &MemberCode,
        envelope: &VerifiedEnvelope,
    ) -> Result<(), Refusal> {
        let body = envelope.body();
        let key = (line.id, sender.clone());
        let seen = self.check_seq_ahead(&line.id, sender, body.seq)?;
        if body.seq > seen {
            self.heads.insert(key, (body.seq, envelope.hash()));
        }
        self.hear(line.id, sender, body.epoch);
        Ok(())
    }
}
