//! Queries of the SQLite backend, each on a reader connection (or inside the writer's
//! transaction, for the few that writes need).

use crate::sql::{self, params, Connection, OptionalExtension};
use adi_core::line::Scope;
use adi_core::{
    Evidence, HeldEnvelope, Line, MemberCode, OwnHead, PendingAck, Precedence, Removal, Restored, Side, StoredRemoval,
};
use adi_wire::{EnvelopeHash, LineId};

use crate::seal::{row_id, row_pair, Sealer};

use crate::{
    AlarmRow, AnswerRow, ArchiveRow, AuditRow, CheckpointKey, CheckpointRow, DecisionRow, DraftRow, EnvelopeRow,
    EventRow, HeldCount, MessageQuery, MessageRow, Operator, OutboxItem, Page, QueueStat, ReceiptRow, RecipientRow,
    ReportAlarm, ReportAnswer, ReportLinkTest, ReportRows, ReportTraffic, TimeKey, TranslationRow,
};

/// An operator's role as stored; a value no role has is corruption, not a default.
pub(crate) fn role_of(v: String) -> Result<adi_core::Role, sql::Error> {
    adi_core::Role::parse(&v).ok_or_else(|| sql::invariant(format!("an operator's stored role '{v}' is no role")))
}

fn recipient_state_of(v: String) -> Result<adi_core::RecipientState, sql::Error> {
    adi_core::RecipientState::parse(&v)
        .ok_or_else(|| sql::invariant(format!("a stored recipient state '{v}' is no state")))
}

fn receipt_kind_of(v: String) -> Result<adi_core::ReceiptKind, sql::Error> {
    adi_core::ReceiptKind::parse(&v).ok_or_else(|| sql::invariant(format!("a stored receipt kind '{v}' is no kind")))
}

fn alarm_kind_of(v: String) -> Result<adi_core::AlarmKind, sql::Error> {
    adi_core::AlarmKind::parse(&v).ok_or_else(|| sql::invariant(format!("a stored alarm kind '{v}' is no kind")))
}

fn corrupt(what: &str) -> sql::Error {
    sql::Error::Corrupt(format!("corrupt stored value: {what}"))
}

pub(crate) fn hash_of(v: Vec<u8>) -> Result<EnvelopeHash, sql::Error> {
    v.as_slice().try_into().map(EnvelopeHash).map_err(|_| corrupt("envelope hash"))
}

fn opt_hash_of(v: Option<Vec<u8>>) -> Result<Option<EnvelopeHash>, sql::Error> {
    v.map(hash_of).transpose()
}

fn line_id_of(v: Vec<u8>) -> Result<LineId, sql::Error> {
    v.as_slice().try_into().map(LineId).map_err(|_| corrupt("line id"))
}

fn code_of(s: String) -> Result<MemberCode, sql::Error> {
    MemberCode::parse(&s).map_err(|_| corrupt("member code"))
}

/// Opens a sealed column value of the row whose primary key is `row`, inside a row mapper.
fn open(s: &Sealer, label: &str, row: &[u8], v: Option<Vec<u8>>) -> Result<Option<String>, sql::Error> {
    v.map(|v| open_text(s, label, row, v)).transpose()
}

/// Opens a sealed text of the row whose primary key is `row`.
pub(crate) fn open_text(s: &Sealer, label: &str, row: &[u8], v: Vec<u8>) -> Result<String, sql::Error> {
    s.open_str(label, row, &v).map_err(|e| sql::Error::Corrupt(e.to_string()))
}

/// Opens a sealed value of the row whose key is `row`.
pub(crate) fn open_bytes(s: &Sealer, label: &str, row: &[u8], v: Vec<u8>) -> Result<Vec<u8>, sql::Error> {
    s.open(label, row, &v).map_err(|e| sql::Error::Corrupt(e.to_string()))
}

/// A limit as SQL takes it: the largest integer is none.
pub(crate) fn limit_of(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn u(v: i64) -> u64 {
    v.max(0) as u64
}

fn opt_u(v: Option<i64>) -> Option<u64> {
    v.map(u)
}

pub(crate) fn load(c: &Connection<'_>, s: &Sealer, me: &MemberCode) -> Result<Restored, sql::Error> {
    let mut stmt =
        c.prepare_cached("SELECT id, scope, title, home, members, created_ms, direct, taken_ms FROM lines")?;
    let lines = stmt
        .query_map([], |row| {
            let members: String = row.get(4)?;
            let members = members.split(',').map(|m| code_of(m.to_string())).collect::<Result<Vec<_>, _>>()?;
            let scope: String = row.get(1)?;
            let id = line_id_of(row.get(0)?)?;
            Ok(Line {
                id,
                scope: Scope::parse(&scope).ok_or_else(|| corrupt("scope"))?,
                title: open_text(s, "lines.title", &id.0, row.get(2)?)?,
                home: code_of(row.get(3)?)?,
                members,
                created_ms: u(row.get(5)?),
                direct: row.get(6)?,
                taken_ms: u(row.get(7)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut stmt = c.prepare_cached(
        "SELECT e.line, e.sender, e.seq, e.hash, m.epoch FROM envelopes e
         JOIN (SELECT line, sender, MAX(seq) AS seq, MAX(epoch) AS epoch FROM envelopes GROUP BY line, sender) m
           ON e.line = m.line AND e.sender = m.sender AND e.seq = m.seq",
    )?;
    let heads = stmt
        .query_map([], |row| {
            Ok(OwnHead {
                line: line_id_of(row.get(0)?)?,
                sender: code_of(row.get(1)?)?,
                seq: u(row.get(2)?),
                hash: hash_of(row.get(3)?)?,
                epoch: u(row.get(4)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    // Read back, each chain's head is the envelope its row says: its bytes decode to that line,
    // sender, sequence number and hash.
    let mut stmt = c.prepare_cached("SELECT bytes FROM envelopes WHERE hash = ?1")?;
    for h in &heads {
        let bytes =
            open_bytes(s, "envelopes.bytes", &h.hash.0, stmt.query_row(params![&h.hash.0[..]], |row| row.get(0))?)?;
        let decoded = adi_wire::Envelope::decode(&bytes, usize::MAX, usize::MAX)
            .map_err(|e| sql::invariant(format!("the head of {}'s chain on {}: {e}", h.sender, h.line)))?;
        let b = decoded.body();
        if decoded.hash() != h.hash || b.line != h.line || b.sender != h.sender.as_str() || b.seq != h.seq {
            return Err(sql::invariant(format!(
                "the head of {}'s chain on {} is stored as #{} {}, but its bytes are {}'s #{} {} on {}",
                h.sender,
                h.line,
                h.seq,
                h.hash,
                b.sender,
                b.seq,
                decoded.hash(),
                b.line
            )));
        }
    }
    // Awaited at this node as sender: recipients that neither acknowledged nor declined.
    let mut stmt = c.prepare_cached(
        "SELECT e.line, e.hash, r.member, e.deadline_ms, e.precedence, e.subject,
                EXISTS (SELECT 1 FROM alarms a WHERE a.kind = 'unacknowledged' AND a.message = e.hash
                        AND a.member = r.member AND a.cleared_ms IS NULL),
                e.sender
         FROM recipients r JOIN envelopes e ON e.hash = r.hash
         WHERE e.deadline_ms IS NOT NULL AND r.acknowledged_ms IS NULL AND r.declined_ms IS NULL
           AND r.state <> 'refused'",
    )?;
    let mut pending = stmt.query_map([], |row| pending_row(s, row, Side::Sender))?.collect::<Result<Vec<_>, _>>()?;
    // Awaited at this node as recipient: messages this member has neither acknowledged nor declined.
    let mut stmt = c.prepare_cached(
        "SELECT e.line, e.hash, ?1, e.deadline_ms, e.precedence, e.subject,
                EXISTS (SELECT 1 FROM alarms a WHERE a.kind = 'escalation' AND a.message = e.hash
                        AND a.member = ?1 AND a.cleared_ms IS NULL),
                e.sender
         FROM envelopes e
         WHERE e.kind = 'message' AND e.sender <> ?1 AND e.deadline_ms IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM receipts x WHERE x.answers = e.hash AND x.member = ?1
                           AND x.kind IN ('acknowledged', 'declined'))",
    )?;
    let recipient = stmt
        .query_map(params![me.as_str()], |row| pending_row(s, row, Side::Recipient))?
        .collect::<Result<Vec<_>, _>>()?;
    pending.extend(recipient);
    let mls_state = mls_entries(c, s)?;
    let mut stmt = c.prepare_cached("SELECT line, member FROM line_members_known")?;
    let known =
        stmt.query_map([], |row| Ok((line_id_of(row.get(0)?)?, code_of(row.get(1)?)?)))?.collect::<Result<_, _>>()?;
    let latest_ms: i64 = c.query_row(
        "SELECT COALESCE((SELECT MAX(received_ms) FROM envelopes), 0),
                COALESCE((SELECT MAX(at_ms) FROM events), 0),
                COALESCE((SELECT MAX(applied_ms) FROM roster_versions), 0)",
        [],
        |row| Ok(row.get::<_, i64>(0)?.max(row.get(1)?).max(row.get(2)?)),
    )?;
    let mut stmt = c.prepare_cached("SELECT line, member, seq, hash, readded_epoch FROM removals")?;
    let removals = stmt
        .query_map([], |row| {
            let hash: Vec<u8> = row.get(3)?;
            Ok(StoredRemoval {
                line: line_id_of(row.get(0)?)?,
                removal: Removal {
                    member: code_of(row.get(1)?)?,
                    seq: u(row.get(2)?),
                    hash: EnvelopeHash(hash.try_into().map_err(|_| corrupt("removals.hash"))?),
                },
                readded_epoch: opt_u(row.get(4)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    // The bytes taken from each peer in the day up to the latest arrival, by hour: what the core
    // bounds each peer by (`peer_bytes_per_day_max`) goes on across a restart.
    let since = latest_ms.saturating_sub(24 * 3_600_000);
    let mut stmt = c.prepare_cached(
        "SELECT sender, received_ms / 3600000, COALESCE(SUM(LENGTH(bytes)), 0) FROM envelopes
         WHERE received_ms >= ?1 AND sender <> ?2 GROUP BY sender, received_ms / 3600000",
    )?;
    let received = stmt
        .query_map(params![since, me.as_str()], |row| {
            Ok((code_of(row.get(0)?)?, u(row.get(1)?) * 3_600_000, u(row.get(2)?)))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Restored { lines, heads, pending, mls_state, known, latest_ms: u(latest_ms), removals, received })
}

/// Every entry of the stored MLS state, opened.
pub(crate) fn mls_entries(c: &Connection<'_>, s: &Sealer) -> Result<adi_mls::StateEntries, sql::Error> {
    let mut stmt = c.prepare_cached("SELECT key, value FROM mls_entries ORDER BY key")?;
    let rows = stmt.query_map([], |row| Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, Vec<u8>>(1)?)))?;
    rows.map(|r| {
        let (key, sealed) = r?;
        let value = open_bytes(s, "mls_entries.value", &key, sealed)?;
        Ok((key, value))
    })
    .collect()
}

fn pending_row(s: &Sealer, row: &sql::Row, side: Side) -> Result<PendingAck, sql::Error> {
    let precedence: String = row.get(4)?;
    let message = hash_of(row.get(1)?)?;
    Ok(PendingAck {
        line: line_id_of(row.get(0)?)?,
        message,
        member: code_of(row.get(2)?)?,
        sender: code_of(row.get(7)?)?,
        side,
        due_ms: u(row.get(3)?),
        precedence: Precedence::parse(&precedence).ok_or_else(|| corrupt("precedence"))?,
        subject: open(s, "envelopes.subject", &message.0, row.get(5)?)?.unwrap_or_default(),
        alarmed: row.get(6)?,
    })
}

pub(crate) fn outbox(
    c: &Connection<'_>,
    s: &Sealer,
    peer: &MemberCode,
    now_ms: u64,
    limit: usize,
) -> Result<Vec<OutboxItem>, sql::Error> {
    let mut stmt = c.prepare_cached(
        "SELECT o.hash, o.priority, e.bytes, o.attempts FROM outbox o JOIN envelopes e ON e.hash = o.hash
         WHERE o.peer = ?1 AND o.next_try_ms <= ?2 ORDER BY o.priority, o.id LIMIT ?3",
    )?;
    let rows = stmt
        .query_map(params![peer.as_str(), now_ms as i64, limit_of(limit)], |row| {
            let hash = hash_of(row.get(0)?)?;
            Ok(OutboxItem {
                hash,
                priority: row.get(1)?,
                bytes: open_bytes(s, "envelopes.bytes", &hash.0, row.get(2)?)?,
                attempts: row.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// How many of the envelopes due for `peer` (at most `limit`, in the outbox's order) fit in
/// `bytes_max` of stored bytes; one at least when any is due.
pub(crate) fn outbox_fits(
    c: &Connection<'_>,
    peer: &MemberCode,
    now_ms: u64,
    limit: usize,
    bytes_max: usize,
) -> Result<usize, sql::Error> {
    let mut stmt = c.prepare_cached(
        "SELECT LENGTH(e.bytes) FROM outbox o JOIN envelopes e ON e.hash = o.hash
         WHERE o.peer = ?1 AND o.next_try_ms <= ?2 ORDER BY o.priority, o.id LIMIT ?3",
    )?;
    let sizes = stmt
        .query_map(params![peer.as_str(), now_ms as i64, limit_of(limit)], |row| Ok(u(row.get(0)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut total = 0u64;
    let fits = sizes
        .iter()
        .position(|n| {
            total = total.saturating_add(*n);
            total > bytes_max as u64
        })
        .unwrap_or(sizes.len());
    Ok(fits.max(1).min(sizes.len()))
}

pub(crate) fn outbox_next_due(c: &Connection<'_>, peer: &MemberCode) -> Result<Option<u64>, sql::Error> {
    c.prepare_cached("SELECT MIN(next_try_ms) FROM outbox WHERE peer = ?1")?
        .query_row(params![peer.as_str()], |row| row.get::<_, Option<i64>>(0))
        .map(opt_u)
}

pub(crate) fn queue_stats(c: &Connection<'_>) -> Result<Vec<QueueStat>, sql::Error> {
    let mut stmt =
        c.prepare_cached("SELECT peer, COUNT(*), MIN(enqueued_ms) FROM outbox GROUP BY peer ORDER BY peer")?;
    let rows = stmt
        .query_map([], |row| {
            Ok(QueueStat { peer: code_of(row.get(0)?)?, len: u(row.get(1)?), oldest_enqueued_ms: opt_u(row.get(2)?) })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(crate) fn report_rows(
    c: &Connection<'_>,
    me: &MemberCode,
    from_ms: u64,
    to_ms: u64,
) -> Result<ReportRows, sql::Error> {
    let (me, from, to) =
        (me.to_string(), i64::try_from(from_ms).unwrap_or(i64::MAX), i64::try_from(to_ms).unwrap_or(i64::MAX));
    // A test's answer is a receipt; it arrived when its own envelope did.
    let mut stmt = c.prepare_cached(
        "SELECT rc.member, t.created_ms, MIN(e.received_ms) FROM envelopes t
           JOIN recipients rc ON rc.hash = t.hash
           LEFT JOIN receipts r ON r.answers = t.hash AND r.kind = 'link_test_answer'
           LEFT JOIN envelopes e ON e.hash = r.hash
         WHERE t.kind = 'link_test' AND t.sender = ?1 AND t.created_ms >= ?2 AND t.created_ms < ?3
         GROUP BY t.hash, rc.member, t.created_ms ORDER BY t.created_ms",
    )?;
    let link_tests = stmt
        .query_map(params![me, from, to], |row| {
            Ok(ReportLinkTest { peer: code_of(row.get(0)?)?, sent_ms: u(row.get(1)?), answered_ms: opt_u(row.get(2)?) })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut stmt = c.prepare_cached(
        "SELECT rc.member, m.precedence, rc.sent_ms, m.deadline_ms, rc.acknowledged_ms, rc.declined_ms
           FROM recipients rc JOIN envelopes m ON m.hash = rc.hash
         WHERE m.kind = 'message' AND m.sender = ?1 AND m.ack_required <> 0 AND m.created_ms >= ?2 AND m.created_ms < ?3
         ORDER BY rc.sent_ms",
    )?;
    let answers = stmt
        .query_map(params![me, from, to], |row| {
            Ok(ReportAnswer {
                member: code_of(row.get(0)?)?,
                precedence: row.get::<_, Option<String>>(1)?.unwrap_or_default(),
                sent_ms: u(row.get(2)?),
                deadline_ms: opt_u(row.get(3)?),
                acknowledged_ms: opt_u(row.get(4)?),
                declined_ms: opt_u(row.get(5)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut stmt = c.prepare_cached(
        "SELECT kind, member, raised_ms, cleared_ms FROM alarms
         WHERE raised_ms < ?2 AND (cleared_ms IS NULL OR cleared_ms >= ?1) ORDER BY raised_ms",
    )?;
    let alarms = stmt
        .query_map(params![from, to], |row| {
            Ok(ReportAlarm {
                kind: row.get(0)?,
                member: code_of(row.get(1)?)?,
                raised_ms: u(row.get(2)?),
                cleared_ms: opt_u(row.get(3)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut stmt = c.prepare_cached(
        "SELECT CAST(CASE WHEN sender = ?1 THEN 1 ELSE 0 END AS BIGINT) AS sent, precedence, class, COUNT(*) FROM envelopes
         WHERE kind = 'message' AND created_ms >= ?2 AND created_ms < ?3
         GROUP BY sent, precedence, class ORDER BY sent, precedence, class",
    )?;
    let traffic = stmt
        .query_map(params![me, from, to], |row| {
            Ok(ReportTraffic {
                sent: row.get::<_, i64>(0)? != 0,
                precedence: row.get::<_, Option<String>>(1)?.unwrap_or_default(),
                class: row.get::<_, Option<String>>(2)?.unwrap_or_default(),
                count: u(row.get(3)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ReportRows { link_tests, answers, alarms, traffic })
}

const MESSAGE_COLUMNS: &str = "hash, line, sender, seq, arrival, created_ms, received_ms, kind, precedence, class,
    caveat, subject, body, ack_required, crisis, deadline_ms, released_by, form, ewg, pruned_ms, attachments";

fn message_row(s: &Sealer, row: &sql::Row) -> Result<MessageRow, sql::Error> {
    let hash = hash_of(row.get(0)?)?;
    let k = &hash.0;
    Ok(MessageRow {
        hash,
        line: line_id_of(row.get(1)?)?,
        sender: code_of(row.get(2)?)?,
        seq: u(row.get(3)?),
        arrival: u(row.get(4)?),
        created_ms: u(row.get(5)?),
        received_ms: u(row.get(6)?),
        kind: row.get(7)?,
        precedence: row.get(8)?,
        class: row.get(9)?,
        caveat: open(s, "envelopes.caveat", k, row.get(10)?)?,
        subject: open(s, "envelopes.subject", k, row.get(11)?)?,
        body: open(s, "envelopes.body", k, row.get(12)?)?,
        ack_required: row.get(13)?,
        crisis: row.get(14)?,
        deadline_ms: opt_u(row.get(15)?),
        released_by: open(s, "envelopes.released_by", k, row.get(16)?)?,
        form: open(s, "envelopes.form", k, row.get(17)?)?,
        ewg: open(s, "envelopes.ewg", k, row.get(18)?)?,
        pruned_ms: opt_u(row.get(19)?),
        attachments: open(s, "envelopes.attachments", k, row.get(20)?)?
            .map(|t| crate::attachments_of(&t))
            .unwrap_or_default(),
    })
}

/// Interleaves messages by creation time while keeping each sender's sequence order exactly, even
/// when a sender's clock stepped back: a sender's next message is always its next sequence number.
fn keep_sender_order(rows: Vec<MessageRow>) -> Vec<MessageRow> {
    use std::collections::{BTreeMap, VecDeque};
    let mut by_sender: BTreeMap<(LineId, MemberCode), VecDeque<MessageRow>> = BTreeMap::new();
    for r in rows {
        by_sender.entry((r.line, r.sender.clone())).or_default().push_back(r);
    }
    for q in by_sender.values_mut() {
        q.make_contiguous().sort_by_key(|r| r.seq);
    }
    let mut out = Vec::new();
    loop {
        let next = by_sender.iter().filter_map(|(k, q)| q.front().map(|r| (r.created_ms, k.clone()))).min();
        match next {
            Some((_, k)) => out.extend(by_sender.get_mut(&k).and_then(|q| q.pop_front())),
            None => return out,
        }
    }
}

pub(crate) fn messages(c: &Connection<'_>, s: &Sealer, q: &MessageQuery) -> Result<Vec<MessageRow>, sql::Error> {
    // The record keeps each sender's order (sequence numbers); the inbox puts urgency first.
    let order = if q.by_precedence { "priority, created_ms, arrival" } else { "created_ms, sender, seq" };
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM envelopes WHERE kind = 'message'
           AND (line = ?1 OR ?1 IS NULL) AND (sender <> ?2 OR ?2 IS NULL)
           AND ((priority, created_ms, arrival) > (?4, ?5, ?6) OR ?4 IS NULL)
           AND (CAST(?7 AS TEXT) IS NULL OR (deadline_ms IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM receipts x WHERE x.answers = envelopes.hash AND x.member = CAST(?7 AS TEXT)
                                AND x.kind IN ('acknowledged', 'declined'))))
         ORDER BY {order} LIMIT ?3"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let line = q.line.map(|l| l.0.to_vec());
    let not_from = q.not_from.as_ref().map(|m| m.to_string());
    // The record order is only known once every row is read (a sender's clock may have stepped
    // back), so the limit applies after it.
    let sql_limit = if q.by_precedence { limit_of(q.limit) } else { i64::MAX };
    let after = q.inbox_after();
    let priority = after.map(|k| k.priority);
    let created_ms = after.map(|k| i64::try_from(k.created_ms).unwrap_or(i64::MAX));
    let arrival = after.map(|k| i64::try_from(k.arrival).unwrap_or(i64::MAX));
    let waiting_for = q.waiting_for.as_ref().map(|m| m.to_string());
    let args = params![line, not_from, sql_limit, priority, created_ms, arrival, waiting_for];
    let rows = stmt.query_map(args, |r| message_row(s, r))?.collect::<Result<Vec<_>, _>>()?;
    Ok(if q.by_precedence {
        rows
    } else {
        let mut rows = keep_sender_order(rows);
        rows.truncate(q.limit);
        rows
    })
}

pub(crate) fn message(c: &Connection<'_>, s: &Sealer, hash: &EnvelopeHash) -> Result<Option<MessageRow>, sql::Error> {
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM envelopes WHERE hash = ?1 AND kind = 'message'");
    c.prepare_cached(&sql)?.query_row(params![&hash.0[..]], |r| message_row(s, r)).optional()
}

pub(crate) fn envelope_at(
    c: &Connection<'_>,
    line: &LineId,
    sender: &str,
    seq: u64,
) -> Result<Option<EnvelopeHash>, sql::Error> {
    c.prepare_cached("SELECT hash FROM envelopes WHERE line = ?1 AND sender = ?2 AND seq = ?3")?
        .query_row(params![&line.0[..], sender, seq as i64], |row| hash_of(row.get(0)?))
        .optional()
}

/// How many application envelopes (messages, receipts, link tests, decisions, translations)
/// `sender` has stored on each line at each MLS epoch: each used one key of its sender ratchet.
pub(crate) fn application_epochs(c: &Connection<'_>, sender: &str) -> Result<Vec<(LineId, u64, u64)>, sql::Error> {
    let mut stmt = c.prepare_cached(
        "SELECT line, epoch, COUNT(*) FROM envelopes
         WHERE sender = ?1 AND kind NOT IN ('handshake', 'line_setup') GROUP BY line, epoch ORDER BY line, epoch",
    )?;
    let rows = stmt
        .query_map(params![sender], |row| {
            let line: Vec<u8> = row.get(0)?;
            let epoch: i64 = row.get(1)?;
            let n: i64 = row.get(2)?;
            Ok((line, epoch, n))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::new();
    for (line, epoch, n) in rows {
        let line: [u8; 16] =
            line.as_slice().try_into().map_err(|_| sql::invariant("a stored line id is not 16 bytes".into()))?;
        out.push((LineId(line), epoch as u64, n as u64));
    }
    Ok(out)
}

/// Held envelopes of a line from epochs up to `epoch`, in the order they arrived.
pub(crate) fn held(c: &Connection<'_>, s: &Sealer, line: &LineId, epoch: u64) -> Result<Vec<HeldEnvelope>, sql::Error> {
    let mut stmt = c.prepare_cached(
        "SELECT hash, sender, seq, epoch, bytes, received_ms FROM held
         WHERE line = ?1 AND epoch <= ?2 ORDER BY received_ms, sender, seq",
    )?;
    let rows = stmt
        .query_map(params![&line.0[..], epoch as i64], |row| {
            let hash = hash_of(row.get(0)?)?;
            Ok(HeldEnvelope {
                line: *line,
                hash,
                sender: code_of(row.get(1)?)?,
                seq: u(row.get(2)?),
                epoch: u(row.get(3)?),
                bytes: open_bytes(s, "held.bytes", &hash.0, row.get(4)?)?,
                received_ms: u(row.get(5)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The envelope hashes of a line in the order this node accepted them.
pub(crate) fn line_log(c: &Connection<'_>, line: &LineId) -> Result<Vec<EnvelopeHash>, sql::Error> {
    let mut stmt = c.prepare_cached("SELECT hash FROM envelopes WHERE line = ?1 ORDER BY arrival")?;
    let rows = stmt.query_map(params![&line.0[..]], |row| hash_of(row.get(0)?))?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The entries of a line's log with each one's sender and sequence number.
pub(crate) fn line_places(c: &Connection<'_>, line: &LineId) -> Result<Vec<(EnvelopeHash, String, u64)>, sql::Error> {
    let mut stmt = c.prepare_cached("SELECT hash, sender, seq FROM envelopes WHERE line = ?1 ORDER BY arrival")?;
    let rows = stmt
        .query_map(params![&line.0[..]], |row| Ok((hash_of(row.get(0)?)?, row.get::<_, String>(1)?, u(row.get(2)?))))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Signed checkpoints of a line, oldest first, with their countersignatures.
pub(crate) fn checkpoints(
    c: &Connection<'_>,
    line: &LineId,
    signer: Option<&str>,
    page: &Page<CheckpointKey>,
) -> Result<Vec<CheckpointRow>, sql::Error> {
    let mut stmt = c.prepare_cached(
        "SELECT signed FROM checkpoints WHERE line = ?1 AND (signer = ?2 OR ?2 IS NULL)
           AND ((time_ms, size, signer, root) > (?3, ?4, ?5, ?6) OR ?3 IS NULL)
         ORDER BY time_ms, size, signer, root LIMIT ?7",
    )?;
    let after = page.from.as_ref();
    let args = params![
        &line.0[..],
        signer,
        after.map(|k| i64::try_from(k.time_ms).unwrap_or(i64::MAX)),
        after.map(|k| i64::try_from(k.size).unwrap_or(i64::MAX)),
        after.map(|k| k.signer.as_str()),
        after.map(|k| &k.root[..]),
        page.sql_limit()
    ];
    let signed: Vec<Vec<u8>> = stmt.query_map(args, |row| row.get(0))?.collect::<Result<Vec<_>, _>>()?;
    let mut counter = c.prepare_cached(
        "SELECT member, signature FROM countersignatures WHERE line = ?1 AND signer = ?2 AND size = ?3 AND root = ?4
         ORDER BY member",
    )?;
    let mut out = Vec::with_capacity(signed.len());
    for bytes in signed {
        let checkpoint = adi_record::SignedCheckpoint::from_bytes(&bytes).map_err(|_| corrupt("checkpoint"))?;
        let k = &checkpoint.checkpoint;
        let countersignatures = counter
            .query_map(params![&line.0[..], k.signer, k.size as i64, &k.root[..]], |row| {
                let sig: Vec<u8> = row.get(1)?;
                Ok((code_of(row.get(0)?)?, sig.as_slice().try_into().map_err(|_| corrupt("countersignature"))?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        out.push(CheckpointRow { checkpoint, countersignatures });
    }
    Ok(out)
}

/// Decisions of a line, or one decision, with their answers, each with the final decision that
/// replaces it if there is one.
pub(crate) fn decisions(
    c: &Connection<'_>,
    s: &Sealer,
    line: Option<&LineId>,
    id: Option<&EnvelopeHash>,
    page: &Page<TimeKey>,
) -> Result<Vec<DecisionRow>, sql::Error> {
    let mut rows = decision_rows(c, s, line, id, None, page)?;
    for d in &mut rows {
        let replacements: Vec<(EnvelopeHash, u64, bool)> = decision_rows(c, s, None, None, Some(&d.id), &Page::all())?
            .iter()
            .filter(|n| n.line == d.line)
            .map(|n| (n.id, n.created_ms, n.concluded()))
            .collect();
        d.superseded_by = adi_record::decision::replaced_by(&replacements);
    }
    Ok(rows)
}

/// Decisions of a line, one decision, or those naming `replacing` as the one they replace, with
/// their answers in their authors' signed order; `superseded_by` left empty.
fn decision_rows(
    c: &Connection<'_>,
    s: &Sealer,
    line: Option<&LineId>,
    id: Option<&EnvelopeHash>,
    replacing: Option<&EnvelopeHash>,
    page: &Page<TimeKey>,
) -> Result<Vec<DecisionRow>, sql::Error> {
    let mut stmt = c.prepare_cached(
        "SELECT d.id, d.line, d.proposer, d.text, d.text_sha256, d.parties, d.deadline_ms, d.supersedes, d.created_ms,
                e.seq
         FROM decisions d JOIN envelopes e ON e.hash = d.id
         WHERE (d.line = ?1 OR ?1 IS NULL) AND (d.id = ?2 OR ?2 IS NULL) AND (d.supersedes = ?3 OR ?3 IS NULL)
           AND ((d.created_ms, d.id) > (?4, ?5) OR ?4 IS NULL)
         ORDER BY d.created_ms, d.id LIMIT ?6",
    )?;
    let mut rows = stmt
        .query_map(
            params![
                line.map(|l| l.0.to_vec()),
                id.map(|h| h.0.to_vec()),
                replacing.map(|h| h.0.to_vec()),
                page.sql_time(),
                page.sql_id(),
                page.sql_limit()
            ],
            |row| {
                let id = hash_of(row.get(0)?)?;
                let parties = open_text(s, "decisions.parties", &id.0, row.get(5)?)?;
                let sha: Vec<u8> = row.get(4)?;
                Ok(DecisionRow {
                    id,
                    line: line_id_of(row.get(1)?)?,
                    proposer: code_of(row.get(2)?)?,
                    seq: u(row.get(9)?),
                    text: open_text(s, "decisions.text", &id.0, row.get(3)?)?,
                    text_sha256: sha.as_slice().try_into().map_err(|_| corrupt("text hash"))?,
                    parties: parties.split(',').map(|p| code_of(p.to_string())).collect::<Result<_, _>>()?,
                    deadline_ms: opt_u(row.get(6)?),
                    supersedes: opt_hash_of(row.get(7)?)?,
                    created_ms: u(row.get(8)?),
                    superseded_by: None,
                    answers: Vec::new(),
                })
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let mut answers = c.prepare_cached(
        "SELECT x.hash, x.member, x.text_sha256, x.concur, x.reason, x.signed_ms, e.seq
         FROM concurrences x JOIN envelopes e ON e.hash = x.hash WHERE x.decision = ?1
         ORDER BY x.member, e.seq",
    )?;
    for d in &mut rows {
        d.answers = answers
            .query_map(params![&d.id.0[..]], |row| {
                let sha: Vec<u8> = row.get(2)?;
                let hash = hash_of(row.get(0)?)?;
                Ok(AnswerRow {
                    hash,
                    member: code_of(row.get(1)?)?,
                    seq: u(row.get(6)?),
                    text_sha256: sha.as_slice().try_into().map_err(|_| corrupt("text hash"))?,
                    concur: row.get(3)?,
                    reason: open(s, "concurrences.reason", &hash.0, row.get(4)?)?,
                    signed_ms: u(row.get(5)?),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
    }
    Ok(rows)
}

/// Translations of a message, or one translation, oldest first.
pub(crate) fn translations(
    c: &Connection<'_>,
    s: &Sealer,
    original: Option<&EnvelopeHash>,
    id: Option<&EnvelopeHash>,
    page: &Page<TimeKey>,
) -> Result<Vec<TranslationRow>, sql::Error> {
    let mut stmt = c.prepare_cached(
        "SELECT hash, original, member, language, text, translator, reviewed_by, revises, created_ms FROM translations
         WHERE (original = ?1 OR ?1 IS NULL) AND (hash = ?2 OR ?2 IS NULL)
           AND ((created_ms, hash) > (?3, ?4) OR ?3 IS NULL)
         ORDER BY created_ms, hash LIMIT ?5",
    )?;
    let (original, id) = (original.map(|h| h.0.to_vec()), id.map(|h| h.0.to_vec()));
    let (time, after_id) = (page.sql_time(), page.sql_id());
    let args = params![original, id, time, after_id, page.sql_limit()];
    let rows = stmt
        .query_map(args, |row| {
            let hash = hash_of(row.get(0)?)?;
            let k = &hash.0;
            Ok(TranslationRow {
                hash,
                original: hash_of(row.get(1)?)?,
                member: code_of(row.get(2)?)?,
                language: row.get(3)?,
                text: open_text(s, "translations.text", k, row.get(4)?)?,
                translator: open_text(s, "translations.translator", k, row.get(5)?)?,
                reviewed_by: open(s, "translations.reviewed_by", k, row.get(6)?)?,
                revises: opt_hash_of(row.get(7)?)?,
                created_ms: u(row.get(8)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Evidence of tampering, newest first.
pub(crate) fn evidence(c: &Connection<'_>, s: &Sealer, page: &Page<u64>) -> Result<Vec<(u64, Evidence)>, sql::Error> {
    let mut stmt = c.prepare_cached(
        "SELECT id, line, member, at_ms, detail, held, offered FROM evidence WHERE (id < ?2 OR ?2 IS NULL)
         ORDER BY id DESC LIMIT ?1",
    )?;
    let rows = stmt
        .query_map(params![page.sql_limit(), page.sql_before()], |row| {
            let id: i64 = row.get(0)?;
            let k = &row_id(id);
            Ok((
                u(id),
                Evidence {
                    line: line_id_of(row.get(1)?)?,
                    member: code_of(row.get(2)?)?,
                    at_ms: u(row.get(3)?),
                    detail: open_text(s, "evidence.detail", k, row.get(4)?)?,
                    held: open_bytes(s, "evidence.held", k, row.get(5)?)?,
                    offered: open_bytes(s, "evidence.offered", k, row.get(6)?)?,
                },
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// How many envelopes each sender has held on each line since `received_since_ms`, for lines
/// that hold any.
pub(crate) fn held_counts(c: &Connection<'_>, received_since_ms: u64) -> Result<Vec<HeldCount>, sql::Error> {
    let mut stmt = c.prepare_cached(
        "SELECT line, sender, COUNT(*) FROM held WHERE received_ms >= ?1 GROUP BY line, sender ORDER BY line, sender",
    )?;
    let rows = stmt
        .query_map(params![received_since_ms as i64], |row| {
            Ok(HeldCount { line: line_id_of(row.get(0)?)?, sender: code_of(row.get(1)?)?, count: u(row.get(2)?) })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The hashes of the envelopes held since before `received_before_ms`.
pub(crate) fn held_expired(c: &Connection<'_>, received_before_ms: u64) -> Result<Vec<EnvelopeHash>, sql::Error> {
    let mut stmt = c.prepare_cached("SELECT hash FROM held WHERE received_ms < ?1 ORDER BY received_ms")?;
    let rows = stmt
        .query_map(params![received_before_ms as i64], |row| {
            let h: Vec<u8> = row.get(0)?;
            Ok(EnvelopeHash(h.try_into().map_err(|_| corrupt("held.hash"))?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(crate) fn envelope(c: &Connection<'_>, s: &Sealer, hash: &EnvelopeHash) -> Result<Option<EnvelopeRow>, sql::Error> {
    let sql = "SELECT hash, kind, received_ms, bytes, content, arrival, pruned_ms FROM envelopes WHERE hash = ?1";
    c.prepare_cached(sql)?
        .query_row(params![&hash.0[..]], |row| {
            let hash = hash_of(row.get(0)?)?;
            Ok(EnvelopeRow {
                hash,
                kind: row.get(1)?,
                received_ms: u(row.get(2)?),
                bytes: open_bytes(s, "envelopes.bytes", &hash.0, row.get(3)?)?,
                signed_content: row
                    .get::<_, Option<Vec<u8>>>(4)?
                    .map(|c| open_bytes(s, "envelopes.content", &hash.0, c))
                    .transpose()?,
                arrival: u(row.get(5)?),
                pruned_ms: opt_u(row.get(6)?),
            })
        })
        .optional()
}

const ARCHIVE_COLUMNS: &str = "line, sha256, first_arrival, last_arrival, envelopes, served_ms, confirmed_ms";

/// An archive, from a row of [`ARCHIVE_COLUMNS`].
pub(crate) fn archive_row(row: &sql::Row) -> Result<ArchiveRow, sql::Error> {
    let sha256: Vec<u8> = row.get(1)?;
    Ok(ArchiveRow {
        line: line_id_of(row.get(0)?)?,
        sha256: sha256.try_into().map_err(|_| corrupt("archives.sha256"))?,
        first_arrival: u(row.get(2)?),
        last_arrival: u(row.get(3)?),
        envelopes: u(row.get(4)?),
        served_ms: u(row.get(5)?),
        confirmed_ms: opt_u(row.get(6)?),
    })
}

/// The one archive of `line` whose bytes have SHA-256 `sha256`, confirmed or not.
pub(crate) fn archive(c: &Connection<'_>, line: &LineId, sha256: &[u8; 32]) -> Result<Option<ArchiveRow>, sql::Error> {
    let sql = format!("SELECT {ARCHIVE_COLUMNS} FROM archives WHERE line = ?1 AND sha256 = ?2");
    c.prepare_cached(&sql)?.query_row(params![&line.0[..], &sha256[..]], archive_row).optional()
}

pub(crate) fn archives(c: &Connection<'_>, line: &LineId) -> Result<Vec<ArchiveRow>, sql::Error> {
    let sql = format!(
        "SELECT {ARCHIVE_COLUMNS} FROM archives WHERE line = ?1 AND confirmed_ms IS NOT NULL ORDER BY confirmed_ms, sha256"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![&line.0[..]], archive_row)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

const RECIPIENT_COLUMNS: &str =
    "state, delivered_ms, decrypted_ms, seen_ms, acknowledged_ms, declined_ms, detail, refusal, member, sent_ms";

/// A recipient's progress with envelope `hash`, from a row of [`RECIPIENT_COLUMNS`].
fn progress_of(s: &Sealer, hash: &EnvelopeHash, row: &sql::Row) -> Result<adi_core::RecipientProgress, sql::Error> {
    let member: String = row.get(8)?;
    let refusal: Option<String> = row.get(7)?;
    let refusal = refusal
        .map(|v| {
            adi_wire::batch::RefusalCode::parse(&v)
                .ok_or_else(|| sql::invariant(format!("a stored refusal code '{v}' is no code")))
        })
        .transpose()?;
    Ok(adi_core::RecipientProgress {
        state: recipient_state_of(row.get(0)?)?,
        delivered_ms: opt_u(row.get(1)?),
        decrypted_ms: opt_u(row.get(2)?),
        seen_ms: opt_u(row.get(3)?),
        acknowledged_ms: opt_u(row.get(4)?),
        declined_ms: opt_u(row.get(5)?),
        detail: open(s, "recipients.detail", &row_pair(&hash.0, &member), row.get(6)?)?,
        refusal,
    })
}

/// One recipient's progress with one of this node's envelopes, if this node sent it to them.
pub(crate) fn recipient_progress(
    c: &Connection<'_>,
    s: &Sealer,
    hash: &EnvelopeHash,
    member: &str,
) -> Result<Option<adi_core::RecipientProgress>, sql::Error> {
    let sql = format!("SELECT {RECIPIENT_COLUMNS} FROM recipients WHERE hash = ?1 AND member = ?2");
    c.prepare_cached(&sql)?.query_row(params![&hash.0[..], member], |row| progress_of(s, hash, row)).optional()
}

pub(crate) fn recipients(c: &Connection<'_>, s: &Sealer, hash: &EnvelopeHash) -> Result<Vec<RecipientRow>, sql::Error> {
    let sql = format!("SELECT {RECIPIENT_COLUMNS} FROM recipients WHERE hash = ?1 ORDER BY member");
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt
        .query_map(params![&hash.0[..]], |row| {
            Ok(RecipientRow {
                member: code_of(row.get(8)?)?,
                sent_ms: u(row.get(9)?),
                progress: progress_of(s, hash, row)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(crate) fn receipts(c: &Connection<'_>, s: &Sealer, answers: &EnvelopeHash) -> Result<Vec<ReceiptRow>, sql::Error> {
    let mut stmt = c.prepare_cached(
        "SELECT hash, answers, member, kind, reason, signed_ms, operator FROM receipts WHERE answers = ?1
         ORDER BY signed_ms, hash",
    )?;
    let rows = stmt
        .query_map(params![&answers.0[..]], |row| {
            let hash = hash_of(row.get(0)?)?;
            Ok(ReceiptRow {
                hash,
                answers: hash_of(row.get(1)?)?,
                member: code_of(row.get(2)?)?,
                kind: receipt_kind_of(row.get(3)?)?,
                reason: open(s, "receipts.reason", &hash.0, row.get(4)?)?,
                signed_ms: u(row.get(5)?),
                operator: open(s, "receipts.operator", &hash.0, row.get(6)?)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

const ALARM_COLUMNS: &str = "id, kind, line, member, message, raised_ms, detail, addressed_to, repeats, last_raised_ms,
    acked_by, acked_ms, cleared_ms, clear_reason";

fn alarm_row(s: &Sealer, row: &sql::Row) -> Result<AlarmRow, sql::Error> {
    let addressed: String = row.get(7)?;
    let id: i64 = row.get(0)?;
    let k = &row_id(id);
    Ok(AlarmRow {
        id: u(id),
        kind: alarm_kind_of(row.get(1)?)?,
        line: line_id_of(row.get(2)?)?,
        member: code_of(row.get(3)?)?,
        message: opt_hash_of(row.get(4)?)?,
        raised_ms: u(row.get(5)?),
        detail: open_text(s, "alarms.detail", k, row.get(6)?)?,
        addressed_to: addressed.split(',').filter(|s| !s.is_empty()).map(String::from).collect(),
        repeats: u(row.get(8)?),
        last_raised_ms: u(row.get(9)?),
        acked_by: open(s, "alarms.acked_by", k, row.get(10)?)?,
        acked_ms: opt_u(row.get(11)?),
        cleared_ms: opt_u(row.get(12)?),
        clear_reason: open(s, "alarms.clear_reason", k, row.get(13)?)?,
    })
}

pub(crate) fn alarms(
    c: &Connection<'_>,
    s: &Sealer,
    open_only: bool,
    page: &Page<u64>,
) -> Result<Vec<AlarmRow>, sql::Error> {
    let sql = format!(
        "SELECT {ALARM_COLUMNS} FROM alarms WHERE (?1 = 0 OR cleared_ms IS NULL) AND (id < ?3 OR ?3 IS NULL)
         ORDER BY id DESC LIMIT ?2"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let args = params![open_only, page.sql_limit(), page.sql_before()];
    let rows = stmt.query_map(args, |r| alarm_row(s, r))?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(crate) fn alarm_by_id(c: &Connection<'_>, s: &Sealer, id: u64) -> Result<Option<AlarmRow>, sql::Error> {
    let sql = format!("SELECT {ALARM_COLUMNS} FROM alarms WHERE id = ?1");
    c.prepare_cached(&sql)?.query_row(params![id as i64], |r| alarm_row(s, r)).optional()
}

/// Events after `after` and up to `through`, oldest first.
pub(crate) fn events_after(
    c: &Connection<'_>,
    s: &Sealer,
    after: u64,
    through: u64,
    limit: usize,
) -> Result<Vec<EventRow>, sql::Error> {
    let mut stmt = c.prepare_cached(
        "SELECT id, at_ms, kind, line, message, member, state, alarm, detail FROM events
         WHERE id > ?1 AND id <= ?2 ORDER BY id LIMIT ?3",
    )?;
    let rows = stmt
        .query_map(params![after as i64, through as i64, limit_of(limit)], |row| {
            let id: i64 = row.get(0)?;
            Ok(EventRow {
                id: u(id),
                at_ms: u(row.get(1)?),
                kind: row.get(2)?,
                line: row.get::<_, Option<Vec<u8>>>(3)?.map(line_id_of).transpose()?,
                message: opt_hash_of(row.get(4)?)?,
                member: row.get::<_, Option<String>>(5)?.map(code_of).transpose()?,
                state: row.get(6)?,
                alarm: opt_u(row.get(7)?),
                detail: open(s, "events.detail", &row_id(id), row.get(8)?)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(crate) fn event_bounds(c: &Connection<'_>) -> Result<(u64, u64), sql::Error> {
    c.prepare_cached("SELECT COALESCE(MIN(id), 0), COALESCE(MAX(id), 0) FROM events")?
        .query_row([], |row| Ok((u(row.get(0)?), u(row.get(1)?))))
}

const DRAFT_COLUMNS: &str = "id, line, draft, drafter, created_ms, state, released_by, released_ms, message";

fn draft_row(s: &Sealer, row: &sql::Row) -> Result<DraftRow, sql::Error> {
    let id: i64 = row.get(0)?;
    let k = &row_id(id);
    Ok(DraftRow {
        id: u(id),
        line: line_id_of(row.get(1)?)?,
        draft_json: open_text(s, "drafts.draft", k, row.get(2)?)?,
        drafter: open_text(s, "drafts.drafter", k, row.get(3)?)?,
        created_ms: u(row.get(4)?),
        state: row.get(5)?,
        released_by: open(s, "drafts.released_by", k, row.get(6)?)?,
        released_ms: opt_u(row.get(7)?),
        message: opt_hash_of(row.get(8)?)?,
    })
}

pub(crate) fn drafts(
    c: &Connection<'_>,
    s: &Sealer,
    awaiting_only: bool,
    page: &Page<u64>,
) -> Result<Vec<DraftRow>, sql::Error> {
    let sql = format!(
        "SELECT {DRAFT_COLUMNS} FROM drafts WHERE (?1 = 0 OR state = 'awaiting_release') AND (id < ?3 OR ?3 IS NULL)
         ORDER BY id DESC LIMIT ?2"
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let args = params![awaiting_only, page.sql_limit(), page.sql_before()];
    let rows = stmt.query_map(args, |r| draft_row(s, r))?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(crate) fn draft(c: &Connection<'_>, s: &Sealer, id: u64) -> Result<Option<DraftRow>, sql::Error> {
    let sql = format!("SELECT {DRAFT_COLUMNS} FROM drafts WHERE id = ?1");
    c.prepare_cached(&sql)?.query_row(params![id as i64], |r| draft_row(s, r)).optional()
}

pub(crate) fn operator_by_token(
    c: &Connection<'_>,
    token_hash: &[u8; 32],
) -> Result<Option<(Operator, Option<u64>)>, sql::Error> {
    c.prepare_cached("SELECT name, role, created_ms, token_expires_ms FROM operators WHERE token_hash = ?1")?
        .query_row(params![&token_hash[..]], |row| {
            let operator = Operator { name: row.get(0)?, role: role_of(row.get(1)?)?, created_ms: u(row.get(2)?) };
            Ok((operator, row.get::<_, Option<i64>>(3)?.map(u)))
        })
        .optional()
}

/// The audit log, newest first, before the page's id.
pub(crate) fn audit(c: &Connection<'_>, s: &Sealer, page: &Page<u64>) -> Result<Vec<AuditRow>, sql::Error> {
    let mut stmt = c.prepare_cached(
        "SELECT id, at_ms, action, actor, subject, detail FROM audit WHERE (id < ?2 OR ?2 IS NULL)
         ORDER BY id DESC LIMIT ?1",
    )?;
    let rows = stmt
        .query_map(params![page.sql_limit(), page.sql_before()], |row| {
            let id: i64 = row.get(0)?;
            let k = &row_id(id);
            Ok(AuditRow {
                id: u(id),
                at_ms: u(row.get(1)?),
                action: row.get(2)?,
                actor: open_text(s, "audit.actor", k, row.get(3)?)?,
                subject: open(s, "audit.subject", k, row.get(4)?)?,
                detail: open_text(s, "audit.detail", k, row.get(5)?)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(crate) fn upload(
    c: &Connection<'_>,
    s: &Sealer,
    sha256: &[u8; 32],
) -> Result<Option<(crate::UploadRow, Vec<u8>)>, sql::Error> {
    c.prepare_cached("SELECT name, media_type, size, bytes, uploader, created_ms FROM uploads WHERE sha256 = ?1")?
        .query_row(params![&sha256[..]], |row| {
            let k = &sha256[..];
            let upload = crate::UploadRow {
                sha256: *sha256,
                name: open(s, "uploads.name", k, row.get(0)?)?.unwrap_or_default(),
                media_type: row.get(1)?,
                size: u(row.get(2)?),
                uploader: open(s, "uploads.uploader", k, row.get(4)?)?.unwrap_or_default(),
                created_ms: u(row.get(5)?),
            };
            Ok((upload, open_bytes(s, "uploads.bytes", k, row.get(3)?)?))
        })
        .optional()
}

pub(crate) fn chunks(
    c: &Connection<'_>,
    message: &EnvelopeHash,
    file: &[u8; 32],
) -> Result<Vec<(u64, EnvelopeHash)>, sql::Error> {
    let mut stmt = c.prepare_cached("SELECT idx, hash FROM chunks WHERE message = ?1 AND file = ?2 ORDER BY idx")?;
    let rows = stmt
        .query_map(params![&message.0[..], &file[..]], |row| Ok((u(row.get(0)?), hash_of(row.get(1)?)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(crate) fn chunks_decrypted(
    c: &Connection<'_>,
    message: &EnvelopeHash,
) -> Result<Vec<([u8; 32], MemberCode, u64)>, sql::Error> {
    let mut stmt = c.prepare_cached(
        "SELECT k.file, r.member, COUNT(*) FROM chunks k JOIN recipients r ON r.hash = k.hash
         WHERE k.message = ?1 AND r.decrypted_ms IS NOT NULL GROUP BY k.file, r.member ORDER BY k.file, r.member",
    )?;
    let rows = stmt
        .query_map(params![&message.0[..]], |row| {
            let file: Vec<u8> = row.get(0)?;
            Ok((file.try_into().map_err(|_| corrupt("chunks.file"))?, code_of(row.get(1)?)?, u(row.get(2)?)))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(crate) fn chunk_bytes_since(c: &Connection<'_>, sender: &MemberCode, since_ms: u64) -> Result<u64, sql::Error> {
    let total: i64 = c.query_row(
        "SELECT COALESCE(SUM(LENGTH(bytes)), 0) FROM envelopes WHERE kind = 'chunk' AND sender = ?1 AND received_ms >= ?2",
        params![sender.as_str(), since_ms.min(i64::MAX as u64) as i64],
        |row| row.get(0),
    )?;
    Ok(u(total))
}
