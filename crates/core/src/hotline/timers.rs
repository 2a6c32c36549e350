//! The passing of time: deadlines, escalations, link tests, key updates, and the clock check
//! of a link test's answer.

use super::*;

/// Measures a peer's clock from its answer to a link test, signed at `signed_ms` on its clock,
/// against the middle of the test's round trip on this node's clock, and raises the `clock`
/// alarm when the two are further apart than `offset_max` even allowing for half the round trip;
/// clears it once they are within `offset_max` again.
pub(super) fn clock_check(
    l: &mut LinkHealth,
    signed_ms: u64,
    sent_ms: u64,
    rtt_ms: u64,
    offset_max: u64,
    now_ms: u64,
) -> Option<AlarmChange> {
    let middle = sent_ms.saturating_add(rtt_ms / 2);
    let offset = signed_ms as i64 - middle as i64;
    l.offset_ms = Some(offset);
    let off = offset.unsigned_abs();
    let way = if offset > 0 { "ahead of" } else { "behind" };
    let op = if !l.clock_alarmed && off > offset_max.saturating_add(rtt_ms / 2) {
        AlarmOp::Raise
    } else if l.clock_alarmed && off <= offset_max {
        AlarmOp::Clear
    } else {
        return None;
    };
    l.clock_alarmed = op == AlarmOp::Raise;
    let detail = format!(
        "{}'s clock is {} {way} this node's (a link test, within {} ms; the bound is clock_offset_ms_max = {offset_max})",
        l.peer,
        human_ms(off),
        rtt_ms / 2
    );
    Some(AlarmChange {
        kind: AlarmKind::Clock,
        op,
        line: l.line,
        member: l.peer.clone(),
        message: None,
        at_ms: now_ms,
        detail,
        addressed_to: Vec::new(),
    })
}

impl Hotline {
    /// When the core next needs [`Hotline::tick`].
    pub fn next_wake(&self) -> Option<u64> {
        self.timers.first().map(|(t, _)| *t)
    }

    pub(super) fn await_ack(&mut self, p: PendingAck, wake_ms: u64) {
        let key = (p.message, p.member.clone());
        self.timers.insert((wake_ms, Timer::Ack(p.message, p.member.clone())));
        self.pending.insert(key, (p, wake_ms));
    }

    /// Lets time pass: fires deadlines, repeats escalations, sends due link tests and raises the
    /// alarm of a test left unanswered.
    pub fn tick(&mut self, now_ms: u64) -> WriteBatch {
        let mut batch = WriteBatch::default();
        let repeat_ms = self.config.discipline.escalation_repeat_s.max(1) * 1000;
        let interval_ms = self.config.discipline.link_test_interval_s * 1000;
        while let Some((t, timer)) = self.timers.first().cloned() {
            if t > now_ms {
                break;
            }
            self.timers.pop_first();
            match timer {
                Timer::Ack(hash, member) => {
                    let Some((p, wake)) = self.pending.get(&(hash, member.clone())).cloned() else { continue };
                    if wake != t {
                        continue;
                    }
                    let overdue = human_ms(now_ms.saturating_sub(p.due_ms));
                    match p.side {
                        Side::Sender => {
                            if !p.alarmed {
                                let detail = format!(
                                    "no acknowledgement from {member} for {} '{}': overdue by {overdue}",
                                    p.precedence.as_str(),
                                    p.subject
                                );
                                batch.alarms.push(self.alarm(
                                    AlarmKind::Unacknowledged,
                                    AlarmOp::Raise,
                                    &p,
                                    now_ms,
                                    detail,
                                ));
                                self.pending.insert((hash, member), (PendingAck { alarmed: true, ..p }, t));
                            }
                        }
                        Side::Recipient => {
                            let op = if p.alarmed { AlarmOp::Repeat } else { AlarmOp::Raise };
                            let detail = format!(
                                "{} '{}' from {} awaits this member's acknowledgement: overdue by {overdue}",
                                p.precedence.as_str(),
                                p.subject,
                                p.sender
                            );
                            batch.alarms.push(self.alarm(AlarmKind::Escalation, op, &p, now_ms, detail));
                            let next = now_ms + repeat_ms;
                            self.timers.insert((next, Timer::Ack(hash, member.clone())));
                            self.pending.insert((hash, member), (PendingAck { alarmed: true, ..p }, next));
                        }
                    }
                }
                Timer::LinkTest(line_id) => {
                    let Some(l) = self.links.get(&line_id) else { continue };
                    if l.next_test_ms != t || interval_ms == 0 {
                        continue;
                    }
                    let outstanding = l.outstanding.is_some();
                    let next = now_ms + interval_ms;
                    if !outstanding {
                        if let Some(line) = self.lines.get(&line_id).cloned() {
                            let payload = PayloadV1::LinkTest { v: 1 };
                            let Ok(record) = self.seal(now_ms, line, PRIORITY_CONTROL, payload, Content::LinkTest)
                            else {
                                continue;
                            };
                            if let Some(l) = self.links.get_mut(&line_id) {
                                l.outstanding = Some((record.envelope.hash(), now_ms));
                            }
                            self.timers.insert((next, Timer::LinkDeadline(line_id)));
                            batch.records.push(record);
                        }
                    }
                    if let Some(l) = self.links.get_mut(&line_id) {
                        l.next_test_ms = next;
                    }
                    self.timers.insert((next, Timer::LinkTest(line_id)));
                }
                Timer::KeyUpdate(line_id) => {
                    let update_ms = self.config.discipline.key_update_interval_s * 1000;
                    let Some(&(last, sent)) = self.key_updates.get(&line_id) else { continue };
                    let due = (update_ms > 0 && now_ms >= last + update_ms)
                        || sent >= self.config.discipline.key_update_messages.max(1);
                    let on_line = self.lines.get(&line_id).is_some_and(|l| l.has_member(&self.config.me));
                    if due && on_line {
                        if let Ok(record) = self.update_keys(now_ms, line_id) {
                            batch.records.push(record);
                        }
                    }
                    if update_ms > 0 {
                        // Never at or before now: an update not made (this member is off the line,
                        // or the update was refused) waits a whole interval, not a busy loop.
                        let last = self.key_updates.get(&line_id).map_or(now_ms, |u| u.0);
                        let next = last + update_ms;
                        let next = if next <= now_ms { now_ms + update_ms } else { next };
                        self.timers.insert((next, Timer::KeyUpdate(line_id)));
                    }
                }
                Timer::LinkDeadline(line_id) => {
                    let Some(l) = self.links.get_mut(&line_id) else { continue };
                    let Some((_, sent)) = l.outstanding else { continue };
                    if l.alarmed || now_ms.saturating_sub(sent) < interval_ms {
                        continue;
                    }
                    l.alarmed = true;
                    batch.alarms.push(AlarmChange {
                        kind: AlarmKind::LinkNoAnswer,
                        op: AlarmOp::Raise,
                        line: line_id,
                        member: l.peer.clone(),
                        message: None,
                        at_ms: now_ms,
                        detail: format!(
                            "no answer from {} to the link test sent {} ago: fault or severance?",
                            l.peer,
                            human_ms(now_ms.saturating_sub(sent))
                        ),
                        addressed_to: Vec::new(),
                    });
                }
            }
        }
        batch
    }
}
