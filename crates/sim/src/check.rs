//! The checker: reads every node's database at the end of a run and compares it with what the
//! simulation knows to be true. Each finding is one line naming the seed's objects, so that a
//! replay of the seed can be followed to it.

use std::collections::{BTreeMap, BTreeSet};

use adi_core::{AlarmKind, Content, MemberCode, Precedence, RecipientState};
use adi_store::Store;
use adi_wire::batch::{RefusalCode, Verdict};
use adi_wire::{Envelope, EnvelopeHash, LineId};
use ed25519_dalek::VerifyingKey;

use crate::World;

/// A tick's slack, and the seconds a clock may be off: times are compared in simulation time,
/// each converted from the clock of the node that recorded it ([`crate::node::SimNode::to_sim`]).
fn tolerance_ms(w: &World) -> u64 {
    2 * w.cfg.faults.skew_ms_max + 1_000
}

pub(crate) fn check(w: &mut World) -> Vec<String> {
    let mut out = Vec::new();
    let lines: Vec<LineId> = w.truth.membership.keys().copied().collect();
    // Every node's stored envelopes per line: (sender, seq) → (hash, bytes, decrypted).
    let stored: Vec<BTreeMap<LineId, _>> =
        w.nodes.iter().map(|n| lines.iter().map(|l| (*l, n.stored(l))).collect()).collect();
    delivery(w, &stored, &mut out);
    duplicates(w, &mut out);
    chains(w, &stored, &mut out);
    flash(w, &mut out);
    confidentiality(w, &stored, &mut out);
    forks(w, &mut out);
    decisions(w, &lines, &mut out);
    hostile(w, &stored, &mut out);
    roster(w, &stored, &mut out);
    w.report.rotated_key_accepted = retired_keys(w, &stored, &mut out);
    out
}

/// The roster's chain at every node: the same versions in the same order (each node's a prefix
/// of every other's, and one chain at every running honest node at the end), each meeting the
/// rule of the version it amends; an amendment left short, and a forged or altered proposal,
/// never applied, the latter refused with a `misconduct` alarm naming the member that handed it
/// over; no node took an envelope from a member before it applied the version admitting it,
/// or while it had applied one suspending it; and none took an envelope signed under a key of a
/// member's that a version replaced (a new key without the old key's signature) once it had
/// applied that version (every key the member held before it, also one retired by rotation).
fn roster(w: &World, stored: &[BTreeMap<LineId, Stored>], out: &mut Vec<String>) {
    use crate::roster::{hash_of, standing};
    use adi_core::amendment;
    let Some(first) = w.truth.roster.first.clone() else { return };
    let Ok(first_version) = amendment::check_first(&amendment::first(&first)) else {
        out.push("the first roster does not make a first version".into());
        return;
    };
    // Per node: its chain's hashes and, where each version checks, the roster it put in force.
    let mut chains: Vec<Option<Vec<[u8; 32]>>> = Vec::new();
    for (i, n) in w.nodes.iter().enumerate() {
        let Some(up) = &n.up else {
            chains.push(None);
            continue;
        };
        let bodies = up.store.roster_versions().unwrap_or_default();
        let times = up.store.roster_applied_times().unwrap_or_default();
        let mut hashes = Vec::new();
        let mut current = first_version.clone();
        // (applied_ms, roster in force from then), the first roster from the start.
        let mut in_force: Vec<(u64, adi_core::Roster)> = vec![(0, first.clone())];
        // Every key each member held along the chain, and (applied_ms, member, its keys before)
        // for each version that replaced a member's key.
        let mut keys: BTreeMap<MemberCode, Vec<VerifyingKey>> =
            first.members().map(|m| (m.code.clone(), vec![m.signing_key])).collect();
        let mut replaced: Vec<(u64, MemberCode, Vec<VerifyingKey>)> = Vec::new();
        let mut checked = true;
        for (k, body) in bodies.iter().enumerate() {
            let Ok(file) = serde_json::from_slice::<adi_wire::files::RosterVersionFile>(body) else {
                out.push(format!("{}: its roster version #{} cannot be read", n.code, k + 2));
                break;
            };
            hashes.push(hash_of(&file).unwrap_or([0; 32]));
            if !checked {
                continue;
            }
            match amendment::check_amendment(&current, &file) {
                Ok(next) => {
                    let at = times.iter().find(|(number, _)| *number == next.number).map_or(0, |t| t.1);
                    for m in adi_engine::roster::replaced(&current, &next) {
                        replaced.push((at, m.clone(), keys.get(&m).cloned().unwrap_or_default()));
                    }
                    for m in next.roster.members() {
                        let held = keys.entry(m.code.clone()).or_default();
                        if !held.contains(&m.signing_key) {
                            held.push(m.signing_key);
                        }
                    }
                    in_force.push((at, next.roster.clone()));
                    current = next;
                }
                Err(e) => {
                    out.push(format!(
                        "{} applied roster version {} that lacks the signatures its rule asks or does not verify: {e}",
                        n.code, file.number
                    ));
                    checked = false;
                }
            }
        }
        chains.push(Some(hashes));
        // Every envelope this node took from a peer, against the roster it had in force then.
        // A version applied in the same millisecond as the envelope's arrival is given the benefit
        // of the doubt either way.
        let before = |t: u64, strict: bool| {
            in_force.iter().rev().find(|(at, _)| if strict { *at < t } else { *at <= t }).map(|(_, r)| standing(r))
        };
        for (line, envelopes) in &stored[i] {
            for ((sender, seq), (hash, bytes, _)) in envelopes {
                if sender == n.code.as_str() {
                    continue;
                }
                let Ok(code) = MemberCode::parse(sender) else { continue };
                let Ok(Some(row)) = up.store.envelope(hash) else { continue };
                let t = row.received_ms;
                for (at, _, old) in replaced.iter().filter(|(at, m, _)| *m == code && *at < t) {
                    if old.iter().any(|k| signed_under(bytes, k)) {
                        out.push(format!(
                            "{} accepted {sender}'s #{seq} on line {line}, signed under a key of {sender}'s that a \
                             version replaced, after it applied that version (at {at})",
                            n.code
                        ));
                    }
                }
                let (Some((listed_a, suspended_a)), Some((listed_b, suspended_b))) =
                    (before(t, false), before(t, true))
                else {
                    continue;
                };
                if !listed_a.contains(&code) && !listed_b.contains(&code) {
                    out.push(format!(
                        "{} accepted {sender}'s #{seq} on line {line} before it applied the version admitting {sender}",
                        n.code
                    ));
                }
                if suspended_a.contains(&code) && suspended_b.contains(&code) {
                    out.push(format!(
                        "{} accepted {sender}'s #{seq} on line {line} after it applied the version suspending {sender}",
                        n.code
                    ));
                }
            }
        }
    }
    // One order: every node's chain a prefix of every other's.
    for a in 0..chains.len() {
        for b in a + 1..chains.len() {
            let (Some(x), Some(y)) = (&chains[a], &chains[b]) else { continue };
            let k = x.len().min(y.len());
            if x[..k] != y[..k] {
                let at = (0..k).find(|j| x[*j] != y[*j]).unwrap_or(0);
                out.push(format!(
                    "{} and {} applied different roster versions {}",
                    w.nodes[a].code,
                    w.nodes[b].code,
                    at + 2
                ));
            }
        }
    }
    // At the end, every running honest node holds the same chain.
    let honest: Vec<(usize, &Vec<[u8; 32]>)> = chains
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != w.hostile)
        .filter_map(|(i, c)| c.as_ref().map(|c| (i, c)))
        .collect();
    if let Some(longest) = honest.iter().map(|(_, c)| c.len()).max() {
        for (i, c) in &honest {
            if c.len() < longest {
                out.push(format!(
                    "{} holds {} roster versions after the drain where another node holds {}",
                    w.nodes[*i].code,
                    c.len() + 1,
                    longest + 1
                ));
            }
        }
    }
    let applied =
        |hash: &[u8; 32]| -> Option<usize> { chains.iter().position(|c| c.as_ref().is_some_and(|c| c.contains(hash))) };
    for a in &w.truth.roster.amendments {
        if let Some(withheld) = a.withheld {
            if let Some(at) = applied(&a.hash) {
                out.push(format!(
                    "{} applied the {} proposed by {} without {}'s signature",
                    w.nodes[at].code,
                    a.change.describe(w),
                    w.nodes[a.proposer].code,
                    w.nodes[withheld].code
                ));
            }
        }
    }
    for f in &w.truth.roster.forgeries {
        let (hostile, victim) = (&w.nodes[f.hostile].code, &w.nodes[f.victim].code);
        let what = format!("{hostile}'s {} handed to {victim}", f.kind);
        match &f.outcome {
            crate::node::Offered::Forged(_) => {
                let alarmed = w.nodes[f.victim].up.as_ref().is_some_and(|up| {
                    up.store
                        .alarms(false, adi_store::Page::all())
                        .unwrap_or_default()
                        .iter()
                        .any(|al| al.kind == AlarmKind::Misconduct && al.member == *hostile)
                });
                if !alarmed {
                    out.push(format!("{what} was refused but no misconduct alarm names {hostile}"));
                }
            }
            crate::node::Offered::Failed(_) => {}
            other if f.must_refuse => out.push(format!("{what} was not refused as forged: {other:?}")),
            _ => {}
        }
        if let Some(at) = f.altered.as_ref().and_then(applied) {
            out.push(format!("{} applied {what}", w.nodes[at].code));
        }
    }
}

type Stored = BTreeMap<(String, u64), (EnvelopeHash, Vec<u8>, bool)>;

/// Whether an envelope's signature verifies under `key`.
fn signed_under(bytes: &[u8], key: &VerifyingKey) -> bool {
    Envelope::decode(bytes, usize::MAX, usize::MAX).is_ok_and(|e| e.verify(key).is_ok())
}

/// Nothing newly signed under a retired key: no node holds an envelope of a member's, signed
/// under the key that member's node switched away from after a rotation, at a place (a line and
/// sequence number) past the member's last place there before the switch. What it signed before
/// the switch, under the retired key, is taken (the rotation's version keeps that key accepted
/// for it). And the rotation goes unnoticed by the operators: no node holds an `undecryptable`
/// or `misconduct` alarm naming the member. Returns how many envelopes the other nodes hold that
/// the member signed after its switch (each under its new key), for the report.
fn retired_keys(w: &World, stored: &[BTreeMap<LineId, Stored>], out: &mut Vec<String>) -> u64 {
    let mut after = 0;
    for sw in &w.truth.roster.switches {
        let member = &w.nodes[sw.member].code;
        for (i, per_line) in stored.iter().enumerate() {
            if i == sw.member {
                continue;
            }
            let alarms = w.nodes[i].up.as_ref().map(|up| up.store.alarms(false, adi_store::Page::all()));
            for a in alarms.into_iter().flatten().flatten() {
                if a.member == *member && matches!(a.kind, AlarmKind::Undecryptable | AlarmKind::Misconduct) {
                    out.push(format!(
                        "{} holds a {} alarm naming {member}, which rotated its key: {}",
                        w.nodes[i].code,
                        a.kind.as_str(),
                        a.detail
                    ));
                }
            }
            for (line, envelopes) in per_line {
                let head = sw.heads.get(line).copied().unwrap_or(0);
                let newly = envelopes.iter().filter(|((s, q), _)| s == member.as_str() && *q > head);
                for ((_, seq), (_, bytes, _)) in newly {
                    if signed_under(bytes, &sw.old) {
                        out.push(format!(
                            "{} accepted {member}'s #{seq} on line {line}, signed under the key {member} retired when \
                             it switched to its new key (its last place there before the switch was #{head})",
                            w.nodes[i].code
                        ));
                    } else {
                        after += 1;
                    }
                }
            }
        }
    }
    leaves_moved(w, out);
    after
}

/// Every member that switched to a rotated key holds its own leaf under that key on every line
/// it is on at the end, but one whose home member is the hostile one (which may sit on the
/// renewal): a renewal that crossed a commit was made good by a later key update.
fn leaves_moved(w: &World, out: &mut Vec<String>) {
    for sw in &w.truth.roster.switches {
        let node = &w.nodes[sw.member];
        let Some(up) = &node.up else { continue };
        let core = up.core();
        let Some(key) = core.roster().member(&node.code).map(|m| m.signing_key.to_bytes().to_vec()) else { continue };
        for line in core.lines().filter(|l| l.has_member(&node.code)) {
            let home = line.acting_home(core.roster());
            if w.hostile.is_some_and(|h| w.nodes[h].code == home) {
                continue;
            }
            match core.leaf_key(&line.id, &node.code) {
                Some(leaf) if leaf != key => out.push(format!(
                    "{}'s leaf on line {} is still under a key it rotated away from at the end of the run",
                    node.code, line.id
                )),
                _ => {}
            }
        }
    }
}

/// Every attempt of the hostile member's is refused (none is stored anywhere, and a place the
/// victim held keeps its envelope); one its victim refused with the code the protocol gives it
/// left the alarm that code raises, naming the hostile member, at the victim; a flood stays within
/// the victim's quota for one member and leaves an honest member's claims and envelopes answered.
fn hostile(w: &World, stored: &[BTreeMap<LineId, Stored>], out: &mut Vec<String>) {
    for a in &w.truth.attempts {
        let (hostile, victim) = (&w.nodes[a.hostile].code, &w.nodes[a.victim].code);
        let what = format!("{}'s {} against {victim} on line {}", hostile, a.attack.as_str(), a.line);
        let (code, alarm) = a.attack.refusal();
        let at_victim = w.nodes[a.victim].up.as_ref();
        let alarmed = |kind: AlarmKind| {
            at_victim.is_some_and(|up| {
                up.store
                    .alarms(false, adi_store::Page::all())
                    .unwrap_or_default()
                    .iter()
                    .any(|al| al.kind == kind && al.member == *hostile)
            })
        };
        for (i, verdict) in a.verdicts.iter().enumerate() {
            match verdict {
                Verdict::Accepted | Verdict::Duplicate => out.push(format!("{what}: envelope {i} was accepted")),
                Verdict::Rejected { code: c, .. } | Verdict::Deferred { code: c, .. } if *c == code => {
                    if let Some(kind) = alarm.filter(|k| !alarmed(*k)) {
                        out.push(format!(
                            "{what}: envelope {i} was refused ({}) but no {} alarm names {hostile}",
                            c.as_str(),
                            kind.as_str()
                        ));
                    }
                }
                _ => {}
            }
        }
        if let Some((count, last)) = a.held {
            let per_sender_max = w.nodes[a.victim].up.as_ref().map(|up| up.engine.limits().held_per_sender_max);
            if per_sender_max.is_some_and(|max| count > max) {
                out.push(format!("{what}: {count} envelopes held from {hostile}, over held_per_sender_max"));
            }
            if last {
                out.push(format!("{what}: an envelope from epoch {} is held", u64::MAX));
            }
        }
        if let Some(c) = &a.claims {
            if c.granted > c.per_hour_max {
                out.push(format!("{what}: {} KeyPackages handed out, over the quota of {}", c.granted, c.per_hour_max));
            }
            if c.refused && !alarmed(AlarmKind::Quota) {
                out.push(format!("{what}: a claim was refused over the quota but no quota alarm names {hostile}"));
            }
            if c.honest == Some(false) {
                out.push(format!("{what}: an honest member's claim right after the flood was refused"));
            }
        }
        if let Some((seq, hash)) = a.kept {
            let now = stored[a.victim].get(&a.line).and_then(|m| m.get(&(hostile.to_string(), seq))).map(|v| v.0);
            if at_victim.is_some() && now != Some(hash) {
                out.push(format!("{what}: {victim} held {hash} as {hostile}'s #{seq} and now holds {now:?}"));
            }
        }
        let seq_min = crate::hostile::ATTEMPT_SEQ_OFFSET;
        for (i, lines) in stored.iter().enumerate() {
            let taken = lines.get(&a.line).is_some_and(|m| {
                m.keys().any(|(s, q)| s == hostile.as_str() && *q >= seq_min && w.nodes[i].code != *hostile)
            });
            if taken {
                out.push(format!(
                    "{} stores an envelope of {hostile}'s at an attempt's place on line {}",
                    w.nodes[i].code, a.line
                ));
            }
        }
    }
}

/// Every envelope a node committed for its operators reaches every recipient it was addressed to.
fn delivery(w: &World, stored: &[BTreeMap<LineId, Stored>], out: &mut Vec<String>) {
    for s in &w.truth.sent {
        let sender = &w.nodes[s.sender];
        let Some(up) = &sender.up else { continue };
        let rows = up.store.recipients(&s.hash).unwrap_or_default();
        for r in &s.recipients {
            let held = stored[*r].get(&s.line).and_then(|m| m.get(&(sender.code.to_string(), s.seq)));
            let code = &w.nodes[*r].code;
            let row = rows.iter().find(|row| row.member == *code);
            match held {
                Some((hash, _, _)) if *hash == s.hash => {}
                Some((hash, _, _)) => out.push(format!(
                    "{code} holds {hash} where {} committed {} as its #{} on line {}",
                    sender.code, s.hash, s.seq, s.line
                )),
                None => {
                    let state = row.map_or("none", |r| r.progress.state.as_str());
                    let detail = row.and_then(|r| r.progress.detail.clone()).unwrap_or_default();
                    let removed = w.truth.membership.get(&s.line).is_some_and(|h| {
                        h.iter().skip_while(|(_, m)| !m.contains(code)).any(|(_, m)| !m.contains(code))
                    });
                    if row.is_some_and(|r| r.progress.state == RecipientState::Refused) && removed {
                        // A member taken off the line refuses what was sent on the line after its
                        // removal reached it: the sender holds the refusal and its reason.
                        continue;
                    }
                    let sender_removed = w.truth.membership.get(&s.line).is_some_and(|h| {
                        h.iter().skip_while(|(_, m)| !m.contains(&sender.code)).any(|(_, m)| !m.contains(&sender.code))
                    });
                    if sender_removed && row.is_some_and(|r| r.progress.refusal == Some(RefusalCode::Removed)) {
                        // The sender was taken off the line, and the home member's commit fixed
                        // its last place before this envelope: a node that knows of the removal
                        // refuses it, by design.
                        continue;
                    }
                    if s.kind == "key_renewal" && row.is_some_and(|r| r.progress.refusal == Some(RefusalCode::Outdated))
                    {
                        // A rotating member's proposal of its renewed leaf crossed the home
                        // member's commit: refused, by design (a proposal is valid only in its
                        // epoch), and the member's next key update moves its leaf instead.
                        continue;
                    }
                    let what = if row.is_some_and(|r| r.progress.state.reached()) {
                        "was marked delivered but"
                    } else {
                        "was committed but"
                    };
                    out.push(format!(
                        "{} {} ({}, #{} on line {}) {what} never reached {code} (recipient state {state}: {detail})",
                        s.kind, s.hash, sender.code, s.seq, s.line
                    ));
                }
            }
        }
    }
}

/// No operator is shown one message twice.
fn duplicates(w: &World, out: &mut Vec<String>) {
    for n in &w.nodes {
        let Some(up) = &n.up else { continue };
        let mut seen: BTreeMap<EnvelopeHash, u32> = BTreeMap::new();
        let mut after = 0;
        loop {
            let events = up.store.events_after(after, 10_000).unwrap_or_default();
            let Some(last) = events.last() else { break };
            after = last.id;
            for e in events.iter().filter(|e| e.kind == "message") {
                if let Some(m) = e.message {
                    *seen.entry(m).or_default() += 1;
                }
            }
        }
        for (m, count) in seen.into_iter().filter(|(_, c)| *c > 1) {
            out.push(format!("{} showed message {m} to its operators {count} times", n.code));
        }
    }
}

/// Each sender's envelopes on a line form one unbroken chain, the same at every node, in the
/// order the sender's operators committed them.
fn chains(w: &World, stored: &[BTreeMap<LineId, Stored>], out: &mut Vec<String>) {
    let mut agreed: BTreeMap<(LineId, String, u64), (EnvelopeHash, MemberCode)> = BTreeMap::new();
    for (i, per_line) in stored.iter().enumerate() {
        let code = &w.nodes[i].code;
        for (line, envelopes) in per_line {
            let mut previous: Option<(&String, u64, EnvelopeHash)> = None;
            for ((sender, seq), (hash, bytes, _)) in envelopes {
                match agreed.get(&(*line, sender.clone(), *seq)) {
                    Some((other, at)) if other != hash => out.push(format!(
                        "fork: {code} holds {hash} and {at} holds {other} as {sender}'s #{seq} on line {line}"
                    )),
                    Some(_) => {}
                    None => {
                        agreed.insert((*line, sender.clone(), *seq), (*hash, code.clone()));
                    }
                }
                let prev = Envelope::decode(bytes, usize::MAX, usize::MAX).map(|e| e.body().prev);
                if let Some((ps, pseq, phash)) = previous.filter(|p| p.0 == sender) {
                    let missing: Vec<u64> = (pseq + 1..*seq).filter(|k| !expected_gap(w, line, ps, *k, code)).collect();
                    if !missing.is_empty() {
                        let why: Vec<String> = missing.iter().map(|k| sender_view(w, line, ps, *k, code)).collect();
                        out.push(format!(
                            "{code} lacks {ps}'s {missing:?} on line {line} (holds #{pseq} and #{seq}; at {ps}: {})",
                            why.join("; ")
                        ));
                    } else if *seq == pseq + 1 && prev.as_ref().ok() != Some(&phash) {
                        out.push(format!("{code}: {sender}'s #{seq} on line {line} does not link to its #{pseq}"));
                    }
                }
                previous = Some((sender, *seq, *hash));
            }
        }
    }
    let mut last: BTreeMap<(usize, LineId), u64> = BTreeMap::new();
    for s in &w.truth.sent {
        let prev = last.insert((s.sender, s.line), s.seq);
        if prev.is_some_and(|p| p >= s.seq) {
            out.push(format!(
                "{}'s operators committed {} after #{} on line {} but it took #{}",
                w.nodes[s.sender].code,
                s.hash,
                prev.unwrap_or(0),
                s.line,
                s.seq
            ));
        }
    }
}

/// Whether a hole in `sender`'s chain at `member` is there by design, as the sender's store
/// records it: a line set-up that brought another member in (addressed to it alone), a key
/// update that `member` refused because it crossed a commit (the sender proposes again), or an
/// envelope refused because the sender's removal had fixed its last place before it.
fn expected_gap(w: &World, line: &LineId, sender: &str, seq: u64, member: &MemberCode) -> bool {
    let Some(node) = w.nodes.iter().find(|n| n.code.as_str() == sender) else { return false };
    let Some(up) = &node.up else { return false };
    let Ok(Some(hash)) = up.store.envelope_at(line, sender, seq) else { return false };
    let kind = up.store.envelope(&hash).ok().flatten().map(|e| e.kind).unwrap_or_default();
    let rows = up.store.recipients(&hash).unwrap_or_default();
    let row = rows.iter().find(|r| r.member == *member);
    let epoch = up
        .store
        .envelope(&hash)
        .ok()
        .flatten()
        .and_then(|e| Envelope::decode(&e.bytes, usize::MAX, usize::MAX).ok().map(|e| e.body().epoch));
    let off_line = epoch.and_then(|e| members_at(w, line, e)).is_some_and(|m| !m.contains(member));
    // Sent to the member at an epoch before a commit took it off the line, and reaching it only
    // after it had read that commit: it refuses, by design, even if it is added again later.
    let removed_after = epoch.is_some_and(|e| {
        w.truth
            .membership
            .get(line)
            .is_some_and(|history| history.iter().any(|(from, members)| *from > e && !members.contains(member)))
    });
    let refused_as = |code: RefusalCode| {
        row.is_some_and(|r| r.progress.state == RecipientState::Refused && r.progress.refusal == Some(code))
    };
    let refused_off_line = refused_as(RefusalCode::RecipientNotOnLine);
    // The sender was taken off the line and sent this after the place its removal fixed (from
    // an epoch before it learned of it): refused everywhere the removal reached, by design, even
    // where a later commit brought it back and its envelopes from then on are taken.
    let sender_removed = w.truth.membership.get(line).is_some_and(|h| {
        h.iter()
            .skip_while(|(_, m)| !m.iter().any(|c| c.as_str() == sender))
            .any(|(_, m)| !m.iter().any(|c| c.as_str() == sender))
    });
    match kind.as_str() {
        "line_setup" => row.is_none(),
        _ if row.is_none() && off_line => true,
        _ if refused_off_line && removed_after => true,
        _ if refused_as(RefusalCode::Removed) && sender_removed => true,
        "handshake" => refused_as(RefusalCode::Outdated),
        _ => false,
    }
}

/// What the sender's store says of its envelope `seq` towards `member`, for a report.
fn sender_view(w: &World, line: &LineId, sender: &str, seq: u64, member: &MemberCode) -> String {
    let Some(up) = w.nodes.iter().find(|n| n.code.as_str() == sender).and_then(|n| n.up.as_ref()) else {
        return "sender down".into();
    };
    let Ok(Some(hash)) = up.store.envelope_at(line, sender, seq) else { return "not stored".into() };
    let kind = up.store.envelope(&hash).ok().flatten().map(|e| e.kind).unwrap_or_default();
    let row = up.store.recipients(&hash).unwrap_or_default().into_iter().find(|r| r.member == *member);
    match row {
        Some(r) => format!("{kind} {}: {}", r.progress.state, r.progress.detail.unwrap_or_default()),
        None => format!("{kind}, not addressed to {member}"),
    }
}

/// Every FLASH is acknowledged by its deadline or raises its alarms: at the sender by the
/// deadline (or the heal, when the sender could not hear in time), and at a recipient that held
/// it unanswered by the deadline.
fn flash(w: &World, out: &mut Vec<String>) {
    let tol = tolerance_ms(w);
    let flash_ms = crate::discipline().deadlines.flash_s * 1000;
    for s in w.truth.sent.iter().filter(|s| s.precedence == Some(Precedence::Flash)) {
        let Some(due) = s.due_ms else { continue };
        let sender = &w.nodes[s.sender];
        let Some(up) = &sender.up else { continue };
        let alarms = up.store.alarms(false, adi_store::Page::all()).unwrap_or_default();
        let receipts = up.store.receipts(&s.hash).unwrap_or_default();
        let healed = w.truth.healed_ms;
        let due_sim = sender.to_sim(due);
        for r in &s.recipients {
            let code = &w.nodes[*r].code;
            // A member taken off the line owes no answer there, and may have refused the FLASH
            // (with its reason, at the sender) if its removal reached it first; one taken off after
            // the FLASH, even if added again since, owed none from its removal on either.
            if !on_line_now(w, &s.line, code) || off_the_line_since(w, up, s, code) {
                continue;
            }
            // A FLASH its sender sent after the place its own removal from the line fixed is
            // refused (`removed`, with the reason at the sender): no answer is owed.
            let rows = up.store.recipients(&s.hash).unwrap_or_default();
            if rows.iter().any(|row| row.member == *code && row.progress.refusal == Some(RefusalCode::Removed)) {
                continue;
            }
            let rnode = &w.nodes[*r];
            let answered = w.truth.answered.get(&(s.hash, code.clone())).copied();
            let answer_held = receipts.iter().any(|x| x.member == *code && x.kind.settles());
            // The answer is signed on the recipient's clock and timed on the sender's.
            let in_time = answered.is_some_and(|a| a.sim_ms <= due_sim + tol) && answer_held;
            let alarm = alarms
                .iter()
                .find(|a| a.kind == AlarmKind::Unacknowledged && a.message == Some(s.hash) && a.member == *code);
            // The sender's alarm, on the sender's clock, as its timers keep it.
            let alarm_by = due.max(sender.at(healed)).max(sender.started_after(due).unwrap_or(0)) + tol;
            let escalated = alarm.is_some_and(|a| a.raised_ms <= alarm_by);
            if !in_time && !escalated {
                let state = rows_state(up, &s.hash, code);
                // When the sender took the answer, on its clock.
                let held_at = receipts
                    .iter()
                    .find(|x| x.member == *code && x.kind.settles())
                    .and_then(|x| up.store.envelope(&x.hash).ok().flatten().map(|e| e.received_ms));
                out.push(format!(
                    "FLASH {} from {} to {code}: neither acknowledged by its deadline nor alarmed at the sender in time \
                     (answered {answered:?}, answer held {answer_held} at {held_at:?}, alarm {:?}, due {due}, recipient \
                     state {state}, on the line now {})",
                    s.hash,
                    sender.code,
                    alarm.map(|a| a.raised_ms),
                    on_line_now(w, &s.line, code),
                ));
            }
            // At the recipient: held and not answered by the deadline → an escalation. All on the
            // recipient's own clock, which its timers keep: the deadline runs from the FLASH's
            // arrival, fires at the first start after it if the node was down then, and at the
            // heal if it could not run before.
            let Some(rup) = &rnode.up else { continue };
            let Ok(Some(row)) = rup.store.message(&s.hash) else { continue };
            let due_here = row.received_ms + flash_ms;
            if answered.is_some_and(|a| a.node_ms <= due_here) {
                continue;
            }
            let ralarms = rup.store.alarms(false, adi_store::Page::all()).unwrap_or_default();
            let esc = ralarms.iter().find(|a| a.kind == AlarmKind::Escalation && a.message == Some(s.hash));
            let healed_here = rnode.at(healed);
            let restarted = rnode.started_after(due_here).unwrap_or(0);
            let limit = due_here.max(healed_here).max(restarted) + tol;
            if esc.is_none_or(|a| a.raised_ms > limit) {
                out.push(format!(
                    "FLASH {} from {} held at {code} unanswered past its deadline without an escalation by {limit} \
                     (its clock: escalation {:?}, received {}, due {due_here}, healed {healed_here}, started again \
                     {restarted}; on the line now {}; line {})",
                    s.hash,
                    sender.code,
                    esc.map(|a| a.raised_ms),
                    row.received_ms,
                    on_line_now(w, &s.line, code),
                    s.line,
                ));
            }
        }
    }
}

/// Whether `code` was off the line at some epoch after the one `s` was sent at: its removal
/// ended what it owed the message, whatever came after.
fn off_the_line_since(w: &World, up: &crate::node::Up, s: &crate::Sent, code: &MemberCode) -> bool {
    let epoch = up
        .store
        .envelope(&s.hash)
        .ok()
        .flatten()
        .and_then(|e| adi_wire::Envelope::decode(&e.bytes, usize::MAX, usize::MAX).ok())
        .map(|e| e.body().epoch);
    let Some(epoch) = epoch else { return false };
    w.truth
        .membership
        .get(&s.line)
        .is_some_and(|h| h.iter().any(|(from, members)| *from > epoch && !members.contains(code)))
}

fn on_line_now(w: &World, line: &LineId, code: &MemberCode) -> bool {
    w.truth.membership.get(line).and_then(|h| h.last()).is_some_and(|(_, m)| m.contains(code))
}

fn rows_state(up: &crate::node::Up, hash: &EnvelopeHash, member: &MemberCode) -> String {
    let rows = up.store.recipients(hash).unwrap_or_default();
    rows.into_iter()
        .find(|r| r.member == *member)
        .map_or("none".into(), |r| format!("{} {}", r.progress.state, r.progress.detail.unwrap_or_default()))
}

/// The members of a line at an epoch, as the home member's group had them.
fn members_at(w: &World, line: &LineId, epoch: u64) -> Option<Vec<MemberCode>> {
    let history = w.truth.membership.get(line)?;
    history.iter().rev().find(|(from, _)| *from <= epoch).or(history.first()).map(|(_, m)| m.clone())
}

/// No node reads a message of an epoch at which it was not on the line; and a member taken off a
/// line, or one never on it, cannot read what is sent there after.
fn confidentiality(w: &mut World, stored: &[BTreeMap<LineId, Stored>], out: &mut Vec<String>) {
    for (i, per_line) in stored.iter().enumerate() {
        let code = w.nodes[i].code.clone();
        for (line, envelopes) in per_line {
            for ((sender, seq), (_, bytes, decrypted)) in envelopes {
                if !*decrypted || *sender == code.as_str() {
                    continue;
                }
                let Ok(e) = Envelope::decode(bytes, usize::MAX, usize::MAX) else { continue };
                let epoch = e.body().epoch;
                if members_at(w, line, epoch).is_some_and(|m| !m.contains(&code)) {
                    out.push(format!(
                        "{code} decrypted {sender}'s #{seq} on line {line}, of epoch {epoch}, when not on it"
                    ));
                }
            }
        }
    }
    // Offer every later message of a line to each node off it, as a relay might.
    let lines: Vec<LineId> = w.truth.membership.keys().copied().collect();
    for line in lines {
        let Some(history) = w.truth.membership.get(&line).cloned() else { continue };
        let Some((_, now_members)) = history.last() else { continue };
        let ever: BTreeSet<MemberCode> = history.iter().flat_map(|(_, m)| m.clone()).collect();
        let outsiders: Vec<usize> = (0..w.nodes.len()).filter(|i| !now_members.contains(&w.nodes[*i].code)).collect();
        let Some(&home) = w.truth.homes.get(&line) else { continue };
        let Some(envelopes) = stored[home].get(&line) else { continue };
        for x in outsiders {
            let code = w.nodes[x].code.clone();
            // Only what was sent while this node was off the line.
            let offered: Vec<(String, Vec<u8>)> = envelopes
                .iter()
                .filter(|(_, (_, _, decrypted))| *decrypted)
                .filter_map(|((sender, _), (_, bytes, _))| {
                    let e = Envelope::decode(bytes, usize::MAX, usize::MAX).ok()?;
                    let off = members_at(w, &line, e.body().epoch).is_some_and(|m| !m.contains(&code));
                    (off && *sender != code.as_str()).then(|| (sender.clone(), bytes.clone()))
                })
                .collect();
            let now = w.nodes[x].now(w.now);
            let Some(up) = w.nodes[x].up.as_mut() else { continue };
            for (sender, bytes) in offered {
                let Ok(sender) = MemberCode::parse(&sender) else { continue };
                if let Ok(records) = up.engine.core_mut().receive(now, &sender, &bytes) {
                    if records.iter().any(|r| !matches!(r.content, Content::Handshake(_) | Content::LineSetup)) {
                        let was = if ever.contains(&code) { "after leaving" } else { "never a member" };
                        out.push(format!("{code} ({was}) read an envelope of line {line} offered to it"));
                    }
                }
            }
        }
    }
}

/// A node's log of a line only grows: every checkpoint it signed still matches its log, and each
/// is consistent with the next (RFC 9162 proofs).
fn forks(w: &World, out: &mut Vec<String>) {
    use adi_record::merkle;
    for ((node, line), checkpoints) in &w.truth.checkpoints {
        let n = &w.nodes[*node];
        let Some(up) = &n.up else { continue };
        let log = up.store.line_log(line).unwrap_or_default();
        let leaves: Vec<adi_record::Hash> = log.iter().map(|h| merkle::leaf_hash(&h.0)).collect();
        let mut previous: Option<(u64, adi_record::Hash)> = None;
        for (size, root) in checkpoints {
            let size_u = *size as usize;
            if size_u > leaves.len() || merkle::root(&leaves[..size_u]) != *root {
                out.push(format!(
                    "fork: {}'s log of line {line} no longer matches its checkpoint of size {size}",
                    n.code
                ));
                continue;
            }
            if let Some((psize, proot)) = previous {
                let proof = merkle::consistency_proof(&leaves[..size_u], psize as usize);
                if merkle::verify_consistency(psize, *size, &proot, root, &proof).is_err() {
                    out.push(format!(
                        "fork: {}'s checkpoints {psize} and {size} of line {line} are inconsistent",
                        n.code
                    ));
                }
            }
            previous = Some((*size, *root));
        }
    }
}

/// A decision any node shows as final was concurred with by every party.
fn decisions(w: &World, lines: &[LineId], out: &mut Vec<String>) {
    for n in &w.nodes {
        let Some(up) = &n.up else { continue };
        for line in lines {
            for d in up.store.decisions(Some(line), None, adi_store::Page::all()).unwrap_or_default() {
                if d.state() != "final" {
                    continue;
                }
                for p in d.parties.iter().filter(|p| **p != d.proposer) {
                    if !w.truth.concurred.contains(&(d.id, p.clone())) {
                        out.push(format!("{} shows decision {} final without {p}'s concurrence", n.code, d.id));
                    }
                }
            }
        }
    }
}
