//! What the writer thread runs inside a transaction: records, receipts, settlements, alarms,
//! drafts and the events they cause.

use crate::sql::{self, params, Connection, OptionalExtension};
use adi_core::{recipient, AlarmChange, AlarmOp, Content, MemberCode, ReceiptKind, RecipientEvent, Record, WriteBatch};
use adi_wire::envelope::PRIORITY_ROUTINE;
use adi_wire::{EnvelopeHash, LineId};

use crate::read::alarm_by_id;
use crate::seal::{row_id, row_pair, Sealer};
use crate::{AlarmAck, Outcome, Settlement};

/// An event to append to the live stream, in the same transaction as its cause.
#[derive(Default)]
pub(crate) struct Event<'a> {
    pub kind: &'a str,
    pub at_ms: u64,
    pub line: Option<LineId>,
    pub message: Option<EnvelopeHash>,
    pub member: Option<&'a str>,
    pub state: Option<&'a str>,
    pub alarm: Option<u64>,
    pub detail: Option<&'a str>,
}

pub(crate) fn event(c: &Connection<'_>, s: &Sealer, e: Event<'_>) -> Result<(), sql::Error> {
    let id = c.next_id("events")?;
    c.prepare_cached(
        "INSERT INTO events (id, at_ms, kind, line, message, member, state, alarm, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        id,
        e.at_ms as i64,
        e.kind,
        e.line.map(|l| l.0.to_vec()),
        e.message.map(|m| m.0.to_vec()),
        e.member,
        e.state,
        e.alarm.map(|a| a as i64),
        e.detail.map(|d| s.seal_str("events.detail", &row_id(id), d)),
    ])?;
    Ok(())
}

/// Keeps the newest `keep` events.
pub(crate) fn prune_events(c: &Connection<'_>, keep: u64) -> Result<(), sql::Error> {
    c.prepare_cached("DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?1")?
        .execute(params![keep as i64])?;
    Ok(())
}

pub(crate) fn commit_batch(c: &Connection<'_>, s: &Sealer, batch: &WriteBatch) -> Result<Vec<Outcome>, sql::Error> {
    let mut outcomes = Vec::with_capacity(batch.records.len());
    for record in &batch.records {
        let outcome = commit_record(c, s, record)?;
        if outcome == Outcome::Inserted {
            for a in &record.alarms {
                apply_alarm(c, s, a)?;
            }
        }
        outcomes.push(outcome);
    }
    for a in &batch.alarms {
        apply_alarm(c, s, a)?;
    }
    for h in &batch.hold {
        c.prepare_cached(
            "INSERT INTO held (hash, line, sender, seq, epoch, bytes, received_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![
            &h.hash.0[..],
            &h.line.0[..],
            h.sender.as_str(),
            h.seq as i64,
            h.epoch as i64,
            s.seal("held.bytes", &h.hash.0, &h.bytes),
            h.received_ms as i64
        ])?;
    }
    for e in &batch.evidence {
        let id = c.next_id("evidence")?;
        let row = row_id(id);
        c.prepare_cached(
            "INSERT INTO evidence (id, line, member, at_ms, detail, held, offered) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            id,
            &e.line.0[..],
            e.member.as_str(),
            e.at_ms as i64,
            s.seal_str("evidence.detail", &row, &e.detail),
            s.seal("evidence.held", &row, &e.held),
            s.seal("evidence.offered", &row, &e.offered)
        ])?;
    }
    for cp in &batch.checkpoints {
        checkpoint(c, cp)?;
    }
    for (cp, member, signature) in &batch.countersignatures {
        checkpoint(c, cp)?;
        let k = &cp.checkpoint;
        c.prepare_cached(
            "INSERT INTO countersignatures (line, signer, size, root, member, signature) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![
            &k.line[..],
            k.signer,
            k.size as i64,
            &k.root[..],
            member.as_str(),
            &signature[..]
        ])?;
    }
    for hash in &batch.release {
        c.prepare_cached("DELETE FROM held WHERE hash = ?1")?.execute(params![&hash.0[..]])?;
    }
    for (receipt, operator) in &batch.answered_by {
        c.prepare_cached("UPDATE receipts SET operator = ?2 WHERE hash = ?1")?
            .execute(params![&receipt.0[..], s.seal_str("receipts.operator", &receipt.0, operator)])?;
    }
    if let Some(delta) = &batch.mls_state {
        mls_delta(c, s, delta)?;
    }
    for reference in &batch.key_packages_used {
        c.prepare_cached("DELETE FROM key_packages WHERE reference = ?1")?.execute(params![reference])?;
    }
    Ok(outcomes)
}

/// Asserts what the core promises of this node's own envelope before it is stored: it is the
/// next of its chain on the line (its sequence number one past the stored head's) and names the
/// stored head as its previous envelope. A break would otherwise be stored and signed, and found
/// only by the peers; refused here, the commit fails and the runtime builds its core again from
/// the store.
fn own_chain_follows(c: &Connection<'_>, r: &Record) -> Result<(), sql::Error> {
    let body = r.envelope.body();
    let head: Option<(i64, Vec<u8>)> = c
        .query_row(
            "SELECT seq, hash FROM envelopes WHERE line = ?1 AND sender = ?2 ORDER BY seq DESC LIMIT 1",
            params![&body.line.0[..], body.sender],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    let (head_seq, head_hash) = match head {
        Some((seq, hash)) => (seq.max(0) as u64, EnvelopeHash(hash.as_slice().try_into().unwrap_or([0; 32]))),
        None => (0, EnvelopeHash::NONE),
    };
    if body.seq == head_seq + 1 && body.prev == head_hash {
        return Ok(());
    }
    Err(sql::invariant(format!(
        "{}'s own envelope #{} on line {} does not follow its stored head #{head_seq} ({head_hash}): it names {}",
        body.sender, body.seq, body.line, body.prev
    )))
}

fn commit_record(c: &Connection<'_>, s: &Sealer, r: &Record) -> Result<Outcome, sql::Error> {
    let body = r.envelope.body();
    let hash = r.envelope.hash();
    let existing: Option<Vec<u8>> = c
        .query_row(
            "SELECT hash FROM envelopes WHERE line = ?1 AND sender = ?2 AND seq = ?3",
            params![&body.line.0[..], body.sender, body.seq as i64],
            |row| row.get(0),
        )
        .optional()?;
    if let Some(h) = existing {
        let existing = EnvelopeHash(h.as_slice().try_into().unwrap_or([0; 32]));
        return Ok(if existing == hash { Outcome::Duplicate } else { Outcome::Conflict { existing } });
    }
    if r.is_own() {
        own_chain_follows(c, r)?;
    }
    if let Content::Receipt(receipt) = &r.content {
        if let Some(refusal) = check_answered(c, r, receipt)? {
            return Ok(refusal);
        }
    }
    if let Content::Translation(t) = &r.content {
        // A translation names a message of the same line (kept if the message has not arrived).
        if let Some(held) = named_envelope(c, &t.original)? {
            if let Err(reason) = recipient::check_translation_original(r.line.id, &held.named()) {
                return Ok(Outcome::Mismatch { reason: reason.into() });
            }
        }
    }
    if let Content::Concurrence(a) = &r.content {
        // An answer to a decision held here must come from one of its parties, on its line. One
        // that arrives before its decision is kept.
        let decided: Option<(Vec<u8>, Vec<u8>)> = c
            .query_row("SELECT line, parties FROM decisions WHERE id = ?1", params![&a.decision.0[..]], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?;
        if let Some((line, parties)) = decided {
            let parties = crate::read::open_text(s, "decisions.parties", &a.decision.0, parties)?;
            let parties: Vec<&str> = parties.split(',').collect();
            if let Err(reason) = recipient::check_concurrence(r.line.id, &r.sender, line_of(line)?, &parties) {
                return Ok(Outcome::Mismatch { reason });
            }
        }
    }
    if matches!(r.content, Content::Handshake(_) | Content::LineSetup) {
        let mut known = c.prepare_cached(
            "INSERT INTO line_members_known (line, member) VALUES (?1, ?2)
             ON CONFLICT DO NOTHING",
        )?;
        for m in &r.line.members {
            known.execute(params![&r.line.id.0[..], m.as_str()])?;
        }
    }
    if let Content::Handshake(removals) = &r.content {
        // A commit may change who is on the line; the record carries the line as it now stands.
        let members: Vec<&str> = r.line.members.iter().map(|m| m.as_str()).collect();
        c.prepare_cached("UPDATE lines SET members = ?2 WHERE id = ?1")?
            .execute(params![&r.line.id.0[..], members.join(",")])?;
        // Where each member it takes off stopped; a member it brings back writes again from the
        // epoch it starts.
        let epoch = body.epoch.saturating_add(1) as i64;
        for m in &members {
            c.prepare_cached(
                "UPDATE removals SET readded_epoch = ?3 WHERE line = ?1 AND member = ?2 AND readded_epoch IS NULL",
            )?
            .execute(params![&r.line.id.0[..], m, epoch])?;
        }
        for x in removals {
            c.prepare_cached(
                "INSERT INTO removals (line, member, seq, hash, epoch, readded_epoch) VALUES (?1, ?2, ?3, ?4, ?5, NULL)
                 ON CONFLICT (line, member) DO UPDATE SET seq = excluded.seq, hash = excluded.hash,
                     epoch = excluded.epoch, readded_epoch = NULL",
            )?
            .execute(params![&r.line.id.0[..], x.member.as_str(), x.seq as i64, &x.hash.0[..], epoch])?;
        }
    }
    if matches!(r.content, Content::LineSetup) {
        let l = &r.line;
        let members: Vec<&str> = l.members.iter().map(|m| m.as_str()).collect();
        c.execute(
            // A set-up that brings a member in (again) carries the members as they now stand.
            "INSERT INTO lines (id, scope, title, home, members, created_ms, direct, taken_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (id) DO UPDATE SET members = excluded.members, taken_ms = excluded.taken_ms",
            params![
                &l.id.0[..],
                l.scope.as_str(),
                s.seal_str("lines.title", &l.id.0, &l.title),
                l.home.as_str(),
                members.join(","),
                l.created_ms as i64,
                l.direct,
                l.taken_ms as i64
            ],
        )?;
    }
    let m = match &r.content {
        Content::Message(m) => Some(m),
        _ => None,
    };
    // From when this node took the message, on its own clock, as the core judges it.
    let deadline_ms = m.and_then(|m| m.due_ms(r.received_ms)).map(|t| t as i64);
    let attachments = m.filter(|m| !m.attachments.is_empty()).map(|m| {
        let listed: Vec<String> = m.attachments.iter().map(crate::attachment_line).collect();
        s.seal_str("envelopes.attachments", &hash.0, &listed.join("\n"))
    });
    if let Content::Chunk(chunk) = &r.content {
        // The first chunk a sender sent for a place in a file is the one kept; the file's SHA-256
        // judges them all when it is put together.
        c.prepare_cached(
            "INSERT INTO chunks (message, file, idx, hash) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (message, file, idx) DO NOTHING",
        )?
        .execute(params![
            &chunk.message.0[..],
            &chunk.file[..],
            chunk.index.min(i64::MAX as u64) as i64,
            &hash.0[..]
        ])?;
    }
    c.prepare_cached(
        "INSERT INTO envelopes (hash, line, sender, seq, priority, created_ms, received_ms, bytes, kind,
             precedence, class, caveat, subject, body, ack_required, crisis, deadline_ms, released_by, epoch, content,
             form, ewg, attachments)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)",
    )?
    .execute(params![
        &hash.0[..],
        &body.line.0[..],
        body.sender,
        body.seq as i64,
        body.priority,
        body.created_ms as i64,
        r.received_ms as i64,
        s.seal("envelopes.bytes", &hash.0, r.envelope.bytes()),
        r.content.kind(),
        m.map(|m| m.precedence.as_str()),
        m.map(|m| m.class.as_str()),
        m.map(|m| s.seal_str("envelopes.caveat", &hash.0, &m.caveat)),
        m.map(|m| s.seal_str("envelopes.subject", &hash.0, &m.subject)),
        m.map(|m| s.seal_str("envelopes.body", &hash.0, &m.body)),
        m.is_some_and(|m| m.ack_required),
        m.is_some_and(|m| m.crisis),
        deadline_ms,
        m.and_then(|m| m.released_by.as_deref()).map(|p| s.seal_str("envelopes.released_by", &hash.0, p)),
        body.epoch as i64,
        r.signed_content.as_deref().map(|c| s.seal("envelopes.content", &hash.0, c)),
        m.and_then(|m| m.form.as_ref()).map(|f| s.seal_str("envelopes.form", &hash.0, &f.to_string())),
        m.and_then(|m| m.ewg.as_deref()).map(|t| s.seal_str("envelopes.ewg", &hash.0, t)),
        attachments,
    ])?;
    for peer in &r.recipients {
        c.prepare_cached("INSERT INTO recipients (hash, member, state, sent_ms) VALUES (?1, ?2, 'sent', ?3)")?
            .execute(params![&hash.0[..], peer.as_str(), r.received_ms as i64])?;
        // The commit that takes a member off the line goes to it after everything queued for it
        // before: once out of the group, it could read none of that.
        let leaving = matches!(r.content, Content::Handshake(_)) && !r.line.has_member(peer);
        let priority = if leaving { PRIORITY_ROUTINE } else { body.priority };
        c.prepare_cached("INSERT INTO outbox (peer, hash, priority, enqueued_ms) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![peer.as_str(), &hash.0[..], priority, r.received_ms as i64])?;
    }
    match &r.content {
        Content::Message(m) if !r.is_own() => event(
            c,
            s,
            Event {
                kind: "message",
                at_ms: r.received_ms,
                line: Some(r.line.id),
                message: Some(hash),
                member: Some(r.sender.as_str()),
                state: Some(m.precedence.as_str()),
                detail: Some(&m.subject),
                ..Event::default()
            },
        )?,
        Content::Receipt(receipt) => record_receipt(c, s, r, receipt)?,
        Content::Decision(d) => {
            let parties: Vec<&str> = d.parties.iter().map(|p| p.as_str()).collect();
            c.prepare_cached("INSERT INTO decisions (id, line, proposer, text, text_sha256, parties, deadline_ms, supersedes, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")?.execute(
                params![
                    &hash.0[..],
                    &r.line.id.0[..],
                    r.sender.as_str(),
                    s.seal_str("decisions.text", &hash.0, &d.text),
                    &d.text_sha256()[..],
                    s.seal_str("decisions.parties", &hash.0, &parties.join(",")),
                    // Bounded by the core (`decision_deadline_s_max`); saturating, whatever a caller passes.
                    d.deadline_s.map(|x| body.created_ms.saturating_add(x.saturating_mul(1000)).min(i64::MAX as u64) as i64),
                    d.supersedes.map(|h| h.0.to_vec()),
                    body.created_ms as i64
                ],
            )?;
            decision_event(c, s, r, hash, "proposed")?;
        }
        Content::Translation(t) => {
            c.prepare_cached("INSERT INTO translations (hash, original, member, language, text, translator, reviewed_by, revises, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")?.execute(
                params![
                    &hash.0[..],
                    &t.original.0[..],
                    r.sender.as_str(),
                    t.language,
                    s.seal_str("translations.text", &hash.0, &t.text),
                    s.seal_str("translations.translator", &hash.0, &t.translator),
                    t.reviewed_by.as_deref().map(|p| s.seal_str("translations.reviewed_by", &hash.0, p)),
                    t.revises.map(|h| h.0.to_vec()),
                    body.created_ms as i64
                ],
            )?;
        }
        Content::Concurrence(a) => {
            c.prepare_cached(
                "INSERT INTO concurrences (hash, decision, member, text_sha256, concur, reason, signed_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                &hash.0[..],
                &a.decision.0[..],
                r.sender.as_str(),
                &a.text_sha256[..],
                a.concur,
                a.reason.as_deref().map(|x| s.seal_str("concurrences.reason", &hash.0, x)),
                body.created_ms as i64
            ])?;
            decision_event(c, s, r, a.decision, if a.concur { "concurred" } else { "declined" })?;
        }
        _ => {}
    }
    Ok(Outcome::Inserted)
}

/// The live-stream event of a decision proposed or answered by a record's sender.
fn decision_event(
    c: &Connection<'_>,
    s: &Sealer,
    r: &Record,
    decision: EnvelopeHash,
    state: &str,
) -> Result<(), sql::Error> {
    let e = Event {
        kind: "decision",
        at_ms: r.received_ms,
        line: Some(r.line.id),
        message: Some(decision),
        member: Some(r.sender.as_str()),
        state: Some(state),
        ..Event::default()
    };
    event(c, s, e)
}

/// Keeps a signed checkpoint (once).
fn checkpoint(c: &Connection<'_>, cp: &adi_record::SignedCheckpoint) -> Result<(), sql::Error> {
    let k = &cp.checkpoint;
    let signed = cp.to_bytes().map_err(|e| sql::Error::Corrupt(e.to_string()))?;
    c.prepare_cached(
        "INSERT INTO checkpoints (line, signer, size, root, time_ms, signed) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT DO NOTHING",
    )?
    .execute(params![&k.line[..], k.signer, k.size as i64, &k.root[..], k.time_ms as i64, signed])?;
    Ok(())
}

/// What the store holds of an envelope another item names, as the core's checks take it.
struct NamedRow {
    line: LineId,
    sender: String,
    seq: u64,
    kind: String,
}

impl NamedRow {
    fn named(&self) -> recipient::NamedEnvelope<'_> {
        recipient::NamedEnvelope { line: self.line, sender: &self.sender, seq: self.seq, kind: &self.kind }
    }
}

fn line_of(v: Vec<u8>) -> Result<LineId, sql::Error> {
    v.as_slice().try_into().map(LineId).map_err(|_| sql::invariant("a stored line id is not 16 bytes".into()))
}

fn named_envelope(c: &Connection<'_>, hash: &EnvelopeHash) -> Result<Option<NamedRow>, sql::Error> {
    let held: Option<(Vec<u8>, String, i64, String)> = c
        .query_row("SELECT line, sender, seq, kind FROM envelopes WHERE hash = ?1", params![&hash.0[..]], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .optional()?;
    held.map(|(line, sender, seq, kind)| Ok(NamedRow { line: line_of(line)?, sender, seq: seq as u64, kind }))
        .transpose()
}

/// Checks that a receipt answers an envelope held here, on its line, as it claims.
fn check_answered(c: &Connection<'_>, r: &Record, receipt: &adi_core::Receipt) -> Result<Option<Outcome>, sql::Error> {
    // A member of a conference may hear an answer before the message it answers: it is kept.
    let Some(held) = named_envelope(c, &receipt.answers.hash)? else { return Ok(None) };
    let checked = recipient::check_receipt_answers(r.line.id, receipt, &held.named());
    Ok(checked.err().map(|reason| Outcome::Mismatch { reason: reason.to_string() }))
}

/// Moves one recipient's state of one of this node's envelopes as the core's state machine
/// decides on `event`, and says whether it moved. A row this node does not hold (another
/// member's message, heard in a conference) has no state here.
fn move_recipient(
    c: &Connection<'_>,
    s: &Sealer,
    hash: &EnvelopeHash,
    member: &str,
    event: &RecipientEvent<'_>,
) -> Result<bool, sql::Error> {
    let Some(now) = crate::read::recipient_progress(c, s, hash, member)? else { return Ok(false) };
    let Some(next) = now.after(event) else { return Ok(false) };
    c.prepare_cached(
        "UPDATE recipients SET state = ?3, delivered_ms = ?4, decrypted_ms = ?5, seen_ms = ?6, acknowledged_ms = ?7,
             declined_ms = ?8, detail = ?9, refusal = ?10
         WHERE hash = ?1 AND member = ?2",
    )?
    .execute(params![
        &hash.0[..],
        member,
        next.state.as_str(),
        next.delivered_ms.map(|t| t as i64),
        next.decrypted_ms.map(|t| t as i64),
        next.seen_ms.map(|t| t as i64),
        next.acknowledged_ms.map(|t| t as i64),
        next.declined_ms.map(|t| t as i64),
        next.detail.as_deref().map(|d| s.seal_str("recipients.detail", &row_pair(&hash.0, member), d)),
        next.refusal.map(|code| code.as_str()),
    ])?;
    Ok(true)
}

/// Stores a receipt and, at the answered message's sender, moves the recipient's state.
fn record_receipt(c: &Connection<'_>, s: &Sealer, r: &Record, receipt: &adi_core::Receipt) -> Result<(), sql::Error> {
    let signed_ms = r.envelope.body().created_ms;
    let answers = &receipt.answers.hash;
    let hash = r.envelope.hash();
    c.prepare_cached(
        "INSERT INTO receipts (hash, answers, member, kind, reason, signed_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        &hash.0[..],
        &answers.0[..],
        r.sender.as_str(),
        receipt.kind.as_str(),
        receipt.reason.as_deref().map(|r| s.seal_str("receipts.reason", &hash.0, r)),
        signed_ms as i64
    ])?;
    let member = r.sender.as_str();
    if receipt.kind == ReceiptKind::LinkTestAnswer {
        // A link test's round trip is timed on this node's clock.
        move_recipient(c, s, answers, member, &RecipientEvent::Receipt { receipt, at_ms: r.received_ms })?;
        if r.is_own() {
            // This node's answer to a peer's test says nothing about this node's links.
            return Ok(());
        }
        let sent: Option<i64> = c
            .query_row("SELECT created_ms FROM envelopes WHERE hash = ?1", params![&answers.0[..]], |row| row.get(0))
            .optional()?;
        let rtt = sent.map(|s| format!("round trip {} ms", (r.received_ms as i64 - s).max(0)));
        return event(
            c,
            s,
            Event {
                kind: "link",
                at_ms: r.received_ms,
                line: Some(r.line.id),
                member: Some(member),
                state: Some("healthy"),
                detail: rtt.as_deref(),
                ..Event::default()
            },
        );
    }
    let moved = RecipientEvent::Receipt { receipt, at_ms: signed_ms };
    if move_recipient(c, s, answers, member, &moved)? {
        event(
            c,
            s,
            Event {
                kind: "state",
                at_ms: r.received_ms,
                line: Some(r.line.id),
                message: Some(*answers),
                member: Some(member),
                state: Some(moved.label()),
                detail: receipt.reason.as_deref(),
                ..Event::default()
            },
        )?;
    }
    Ok(())
}

fn open_alarm(c: &Connection<'_>, a: &AlarmChange) -> Result<Option<i64>, sql::Error> {
    c.prepare_cached(
        "SELECT id FROM alarms WHERE kind = ?1 AND line = ?2 AND member = ?3 AND message IS NOT DISTINCT FROM ?4 AND cleared_ms IS NULL",
    )?
    .query_row(params![a.kind.as_str(), &a.line.0[..], a.member.as_str(), a.message.map(|m| m.0.to_vec())], |row| {
        row.get(0)
    })
    .optional()
}

pub(crate) fn apply_alarm(c: &Connection<'_>, s: &Sealer, a: &AlarmChange) -> Result<(), sql::Error> {
    let open = open_alarm(c, a)?;
    let (id, state) = match (&a.op, open) {
        (AlarmOp::Raise, Some(_)) => return Ok(()),
        (AlarmOp::Raise, None) | (AlarmOp::Repeat, None) => {
            let id = c.next_id("alarms")?;
            c.prepare_cached(
                "INSERT INTO alarms (id, kind, line, member, message, raised_ms, detail, addressed_to, last_raised_ms)
                 VALUES (?8, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?5)",
            )?
            .execute(params![
                a.kind.as_str(),
                &a.line.0[..],
                a.member.as_str(),
                a.message.map(|m| m.0.to_vec()),
                a.at_ms as i64,
                s.seal_str("alarms.detail", &row_id(id), &a.detail),
                a.addressed_to.join(","),
                id,
            ])?;
            (id, "raised")
        }
        (AlarmOp::Repeat, Some(id)) => {
            c.prepare_cached(
                "UPDATE alarms SET repeats = repeats + 1, last_raised_ms = ?2, detail = ?3 WHERE id = ?1",
            )?
            .execute(params![id, a.at_ms as i64, s.seal_str("alarms.detail", &row_id(id), &a.detail)])?;
            (id, "repeated")
        }
        (AlarmOp::Clear, None) => return Ok(()),
        (AlarmOp::Clear, Some(id)) => {
            c.prepare_cached("UPDATE alarms SET cleared_ms = ?2, clear_reason = ?3 WHERE id = ?1")?
                .execute(params![id, a.at_ms as i64, s.seal_str("alarms.clear_reason", &row_id(id), &a.detail)])?;
            (id, "cleared")
        }
    };
    event(
        c,
        s,
        Event {
            kind: "alarm",
            at_ms: a.at_ms,
            line: Some(a.line),
            message: a.message,
            member: Some(a.member.as_str()),
            state: Some(state),
            alarm: Some(id as u64),
            detail: Some(&a.detail),
        },
    )?;
    if a.kind == adi_core::AlarmKind::LinkNoAnswer && state == "raised" {
        event(
            c,
            s,
            Event {
                kind: "link",
                at_ms: a.at_ms,
                line: Some(a.line),
                member: Some(a.member.as_str()),
                state: Some("failing"),
                detail: Some(&a.detail),
                ..Event::default()
            },
        )?;
    }
    Ok(())
}

pub(crate) fn settle(
    c: &Connection<'_>,
    s: &Sealer,
    peer: &MemberCode,
    results: &[(EnvelopeHash, Settlement)],
    now_ms: u64,
) -> Result<(), sql::Error> {
    for (hash, settlement) in results {
        let moved = match settlement {
            Settlement::Delivered => {
                c.prepare_cached("DELETE FROM outbox WHERE peer = ?1 AND hash = ?2")?
                    .execute(params![peer.as_str(), &hash.0[..]])?;
                RecipientEvent::Delivered { at_ms: now_ms }
            }
            Settlement::Refused { code, reason } => {
                c.prepare_cached("DELETE FROM outbox WHERE peer = ?1 AND hash = ?2")?
                    .execute(params![peer.as_str(), &hash.0[..]])?;
                RecipientEvent::Refused { code: *code, reason }
            }
            Settlement::Retry { at_ms, reason } => {
                c.prepare_cached(
                    "UPDATE outbox SET attempts = attempts + 1, next_try_ms = ?3 WHERE peer = ?1 AND hash = ?2",
                )?
                .execute(params![peer.as_str(), &hash.0[..], *at_ms as i64])?;
                RecipientEvent::Waiting { reason }
            }
        };
        let changed = move_recipient(c, s, hash, peer.as_str(), &moved)? && moved.is_state_change();
        let detail = match settlement {
            Settlement::Refused { reason, .. } => Some(reason.as_str()),
            _ => None,
        };
        let state = moved.label();
        let is_message: bool = c
            .query_row("SELECT kind = 'message' FROM envelopes WHERE hash = ?1", params![&hash.0[..]], |row| row.get(0))
            .optional()?
            .unwrap_or(false);
        if changed && is_message {
            event(
                c,
                s,
                Event {
                    kind: "state",
                    at_ms: now_ms,
                    message: Some(*hash),
                    member: Some(peer.as_str()),
                    state: Some(state),
                    detail,
                    ..Event::default()
                },
            )?;
        }
    }
    Ok(())
}

pub(crate) fn add_draft(
    c: &Connection<'_>,
    s: &Sealer,
    line: LineId,
    draft: &str,
    drafter: &str,
    now_ms: u64,
) -> Result<u64, sql::Error> {
    let id = c.next_id("drafts")?;
    let row = row_id(id);
    c.prepare_cached(
        "INSERT INTO drafts (id, line, draft, drafter, created_ms, state) VALUES (?1, ?2, ?3, ?4, ?5, 'awaiting_release')",
    )?
    .execute(params![
        id,
        &line.0[..],
        s.seal_str("drafts.draft", &row, draft),
        s.seal_str("drafts.drafter", &row, drafter),
        now_ms as i64
    ])?;
    let id = id as u64;
    event(
        c,
        s,
        Event {
            kind: "draft",
            at_ms: now_ms,
            line: Some(line),
            state: Some("awaiting_release"),
            detail: Some(drafter),
            alarm: None,
            ..Event::default()
        },
    )?;
    Ok(id)
}

/// Marks a draft released by `principal` as the message `message`. Fails if it is not awaiting
/// release, which rolls back the message committed with it.
pub(crate) fn release_draft(
    c: &Connection<'_>,
    s: &Sealer,
    id: u64,
    principal: &str,
    message: EnvelopeHash,
    now_ms: u64,
) -> Result<(), sql::Error> {
    let n = c
        .prepare_cached(
            "UPDATE drafts SET state = 'released', released_by = ?2, released_ms = ?3, message = ?4
         WHERE id = ?1 AND state = 'awaiting_release'",
        )?
        .execute(params![
            id as i64,
            s.seal_str("drafts.released_by", &row_id(id as i64), principal),
            now_ms as i64,
            &message.0[..]
        ])?;
    if n != 1 {
        return Err(sql::Error::NoRows);
    }
    Ok(())
}

pub(crate) fn ack_alarm(
    c: &Connection<'_>,
    s: &Sealer,
    id: u64,
    operator: &str,
    now_ms: u64,
) -> Result<AlarmAck, sql::Error> {
    let Some(alarm) = alarm_by_id(c, s, id)? else { return Ok(AlarmAck::NotFound) };
    if alarm.acked_ms.is_some() {
        return Ok(AlarmAck::AlreadyAcked(alarm));
    }
    c.prepare_cached("UPDATE alarms SET acked_by = ?2, acked_ms = ?3 WHERE id = ?1")?.execute(params![
        id as i64,
        s.seal_str("alarms.acked_by", &row_id(id as i64), operator),
        now_ms as i64
    ])?;
    event(
        c,
        s,
        Event {
            kind: "alarm",
            at_ms: now_ms,
            line: Some(alarm.line),
            message: alarm.message,
            member: Some(alarm.member.as_str()),
            state: Some("acknowledged"),
            alarm: Some(id),
            detail: Some(operator),
        },
    )?;
    let alarm = alarm_by_id(c, s, id)?.ok_or(sql::Error::NoRows)?;
    Ok(AlarmAck::Acked(alarm))
}

/// The sealing label of an MLS state entry in schema version 9 and earlier, which bound each
/// value to its key through the label.
pub(crate) fn mls_entry_label_column_bound(key: &[u8]) -> String {
    format!("mls_entries/{}", hex::encode(key))
}

/// Applies a change to the stored MLS state: the changed entries, sealed, and the deletions.
pub(crate) fn mls_delta(c: &Connection<'_>, s: &Sealer, delta: &adi_mls::StateDelta) -> Result<(), sql::Error> {
    let mut put = c.prepare_cached(
        "INSERT INTO mls_entries (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?;
    for (key, value) in &delta.put {
        put.execute(params![key, s.seal("mls_entries.value", key, value)])?;
    }
    let mut delete = c.prepare_cached("DELETE FROM mls_entries WHERE key = ?1")?;
    for key in &delta.delete {
        delete.execute(params![key])?;
    }
    Ok(())
}

/// Who acts on the node's machine: `adi operator` and the configuration file.
pub(crate) const ADMINISTRATOR: &str = "administrator";

/// Appends an administrative action to the audit log; its actor, subject and detail sealed,
/// bound to its row.
pub(crate) fn audit(
    c: &Connection<'_>,
    s: &Sealer,
    at_ms: u64,
    action: &str,
    subject: Option<&str>,
    detail: &str,
) -> Result<(), sql::Error> {
    audit_by(c, s, at_ms, ADMINISTRATOR, action, subject, detail)
}

/// As [`audit`], naming who acted.
pub(crate) fn audit_by(
    c: &Connection<'_>,
    s: &Sealer,
    at_ms: u64,
    actor: &str,
    action: &str,
    subject: Option<&str>,
    detail: &str,
) -> Result<(), sql::Error> {
    let id = c.next_id("audit")?;
    let row = row_id(id);
    c.prepare_cached("INSERT INTO audit (id, at_ms, action, actor, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
        .execute(params![
            id,
            at_ms as i64,
            action,
            s.seal_str("audit.actor", &row, actor),
            subject.map(|x| s.seal_str("audit.subject", &row, x)),
            s.seal_str("audit.detail", &row, detail)
        ])?;
    Ok(())
}

/// Keeps an export served, unconfirmed (the same bytes served twice are one), and forgets those
/// served before `forget_before_ms` that nobody confirmed.
pub(crate) fn add_archive(c: &Connection<'_>, a: &crate::ArchiveRow, forget_before_ms: u64) -> Result<(), sql::Error> {
    c.prepare_cached("DELETE FROM archives WHERE confirmed_ms IS NULL AND served_ms < ?1")?
        .execute(params![forget_before_ms as i64])?;
    c.prepare_cached(
        "INSERT INTO archives (line, sha256, first_arrival, last_arrival, envelopes, served_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (line, sha256) DO NOTHING",
    )?
    .execute(params![
        &a.line.0[..],
        &a.sha256[..],
        a.first_arrival as i64,
        a.last_arrival as i64,
        a.envelopes as i64,
        a.served_ms as i64
    ])?;
    Ok(())
}

/// Confirms an export served as archived, with an audit entry the first time: the export of
/// `line` with SHA-256 `sha256`, served at or after `served_since_ms`.
pub(crate) fn confirm_archive(
    c: &Connection<'_>,
    s: &Sealer,
    (line, sha256, served_since_ms): (LineId, [u8; 32], u64),
    operator: &str,
    now_ms: u64,
) -> Result<Option<crate::ArchiveRow>, sql::Error> {
    let Some(found) = crate::read::archive(c, &line, &sha256)? else { return Ok(None) };
    if found.confirmed_ms.is_some() {
        return Ok(Some(found));
    }
    if found.served_ms < served_since_ms {
        return Ok(None);
    }
    c.prepare_cached("UPDATE archives SET confirmed_ms = ?3 WHERE line = ?1 AND sha256 = ?2")?.execute(params![
        &line.0[..],
        &sha256[..],
        now_ms as i64
    ])?;
    let detail = format!(
        "the export of line {line} with SHA-256 {} ({} envelopes) is archived",
        hex::encode(sha256),
        found.envelopes
    );
    audit_by(c, s, now_ms, operator, "archive_confirmed", Some(&line.to_hex()), &detail)?;
    Ok(Some(crate::ArchiveRow { confirmed_ms: Some(now_ms), ..found }))
}

/// Empties the sealed content columns of at most `limit` messages that `rules` let go and a
/// confirmed archive holds, noting when; an audit entry counts them by class.
pub(crate) fn prune(
    c: &Connection<'_>,
    s: &Sealer,
    rules: &[crate::PruneRule],
    now_ms: u64,
    limit: usize,
) -> Result<Vec<EnvelopeHash>, sql::Error> {
    let mut pruned = Vec::new();
    let mut counts = Vec::new();
    for rule in rules {
        let left = limit.saturating_sub(pruned.len());
        if left == 0 {
            break;
        }
        let mut stmt = c.prepare_cached(
            "SELECT e.hash FROM envelopes e
             WHERE e.kind = 'message' AND e.class = ?1 AND e.received_ms < ?2 AND e.pruned_ms IS NULL
               AND EXISTS (SELECT 1 FROM archives a WHERE a.line = e.line AND a.confirmed_ms IS NOT NULL
                           AND e.arrival BETWEEN a.first_arrival AND a.last_arrival)
             ORDER BY e.arrival LIMIT ?3",
        )?;
        let hashes = stmt
            .query_map(params![rule.class.as_str(), rule.before_ms as i64, crate::read::limit_of(left)], |row| {
                crate::read::hash_of(row.get(0)?)
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut update = c.prepare_cached(
            "UPDATE envelopes SET content = NULL, caveat = NULL, subject = NULL, body = NULL, form = NULL,
                    ewg = NULL, released_by = NULL, attachments = NULL, pruned_ms = ?2
             WHERE hash = ?1",
        )?;
        for h in &hashes {
            update.execute(params![&h.0[..], now_ms as i64])?;
        }
        if !hashes.is_empty() {
            counts.push(format!("{} {}", hashes.len(), rule.class));
        }
        pruned.extend(hashes);
    }
    // Translations go with the message they translate, once an archive holds them too: their
    // signed content and their text; who translated and reviewed stays.
    let left = limit.saturating_sub(pruned.len());
    let translations =
        prune_following(c, "translations t ON t.hash = e.hash JOIN envelopes o ON o.hash = t.original", left, now_ms)?;
    for h in &translations {
        c.prepare_cached("UPDATE translations SET text = ?2 WHERE hash = ?1")?
            .execute(params![&h.0[..], s.seal_str("translations.text", &h.0, "")])?;
    }
    if !translations.is_empty() {
        counts.push(format!("{} translations", translations.len()));
    }
    pruned.extend(translations);
    // And the chunks of the files attached to them, their bytes.
    let left = limit.saturating_sub(pruned.len());
    let chunks =
        prune_following(c, "chunks k ON k.hash = e.hash JOIN envelopes o ON o.hash = k.message", left, now_ms)?;
    if !chunks.is_empty() {
        counts.push(format!("{} chunks of attached files", chunks.len()));
    }
    pruned.extend(chunks);
    if !pruned.is_empty() {
        let detail = format!("the content of archived messages past their class's retention: {}", counts.join(", "));
        audit_by(c, s, now_ms, "retention", "pruned", None, &detail)?;
    }
    Ok(pruned)
}

/// Keeps a file an operator uploaded to attach, sealed, and forgets those uploaded before
/// `forget_before_ms`.
pub(crate) fn add_upload(
    c: &Connection<'_>,
    s: &Sealer,
    u: &crate::UploadRow,
    bytes: &[u8],
    forget_before_ms: u64,
) -> Result<(), sql::Error> {
    c.prepare_cached("DELETE FROM uploads WHERE created_ms < ?1")?.execute(params![forget_before_ms as i64])?;
    c.prepare_cached(
        "INSERT INTO uploads (sha256, name, media_type, size, bytes, uploader, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (sha256) DO UPDATE SET name = excluded.name, media_type = excluded.media_type,
             uploader = excluded.uploader, created_ms = excluded.created_ms",
    )?
    .execute(params![
        &u.sha256[..],
        s.seal_str("uploads.name", &u.sha256, &u.name),
        u.media_type.as_str(),
        u.size as i64,
        s.seal("uploads.bytes", &u.sha256, bytes),
        s.seal_str("uploads.uploader", &u.sha256, &u.uploader),
        u.created_ms as i64
    ])?;
    Ok(())
}

/// Empties the signed content of at most `limit` envelopes that follow a pruned message (`joined`
/// joins each envelope `e` to what names its message `o`) and that a confirmed archive holds.
fn prune_following(
    c: &Connection<'_>,
    joined: &str,
    limit: usize,
    now_ms: u64,
) -> Result<Vec<EnvelopeHash>, sql::Error> {
    let sql = format!(
        "SELECT e.hash FROM envelopes e JOIN {joined}
         WHERE o.pruned_ms IS NOT NULL AND e.pruned_ms IS NULL
           AND EXISTS (SELECT 1 FROM archives a WHERE a.line = e.line AND a.confirmed_ms IS NOT NULL
                       AND e.arrival BETWEEN a.first_arrival AND a.last_arrival)
         ORDER BY e.arrival LIMIT ?1"
    );
    let hashes = c
        .prepare_cached(&sql)?
        .query_map(params![crate::read::limit_of(limit)], |row| crate::read::hash_of(row.get(0)?))?
        .collect::<Result<Vec<_>, _>>()?;
    for h in &hashes {
        c.prepare_cached("UPDATE envelopes SET content = NULL, pruned_ms = ?2 WHERE hash = ?1")?
            .execute(params![&h.0[..], now_ms as i64])?;
    }
    Ok(hashes)
}
