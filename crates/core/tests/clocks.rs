//! Clocks that disagree: a recipient judges a deadline from when it received the message, on its
//! own clock, whatever time the sender claims; link tests measure each peer's clock and raise a
//! `clock` alarm past `clock_offset_ms_max`; and a link whose last answered test is old is not
//! shown healthy, however its tests stopped.

use adi_core::fixtures::{hotline, key_packages_of};
use adi_core::{
    AlarmKind, AlarmOp, Answered, Content, Draft, Hotline, LinkHealth, LinkState, MemberCode, NewLine, ReceiptKind,
    Record,
};
use adi_wire::envelope::PRIORITY_FLASH;
use adi_wire::LineId;

const LINE: LineId = LineId([9; 16]);
/// A point in time far from zero, so that clocks can be hours behind it.
const T: u64 = 1_800_000_000_000;
const HOUR_MS: u64 = 3_600_000;

fn code(s: &str) -> MemberCode {
    MemberCode::parse(s).unwrap()
}

/// PH and CN on a direct line, PH its home, the line set up at `at` on both clocks.
fn direct_line(at: u64) -> (Hotline, Hotline) {
    let mut ph = hotline("PH");
    let mut cn = hotline("CN");
    let kps = key_packages_of(&mut [&mut cn]);
    let req = NewLine { members: vec!["PH".into(), "CN".into()], scope: "ADMM-Plus".into(), title: None };
    let setup = ph.create_line(at, LINE, req, kps).unwrap();
    cn.receive(at, &code("PH"), setup.envelope.bytes()).unwrap();
    (ph, cn)
}

fn flash(ph: &mut Hotline, at: u64) -> Record {
    let draft =
        Draft { precedence: "FLASH".into(), subject: "contact".into(), body: "body".into(), ..Draft::default() };
    ph.send(at, LINE, draft, None).unwrap()
}

/// The escalations `cn`'s timers raise at `at`.
fn escalations(cn: &mut Hotline, at: u64) -> usize {
    cn.tick(at).alarms.iter().filter(|a| a.kind == AlarmKind::Escalation && a.op == AlarmOp::Raise).count()
}

#[test]
fn a_recipient_escalates_a_flash_from_when_it_received_it_whatever_the_sender_claims() {
    let (mut ph, mut cn) = direct_line(T - 3 * HOUR_MS);
    let deadline_ms = cn.discipline().deadlines.flash_s * 1000;
    // PH's clock runs 2 h fast: its FLASH claims to be 2 h younger than it is.
    let fast = flash(&mut ph, T + 2 * HOUR_MS);
    cn.receive(T, &code("PH"), fast.envelope.bytes()).unwrap();
    assert_eq!(escalations(&mut cn, T + deadline_ms - 1), 0, "not before its deadline");
    assert_eq!(escalations(&mut cn, T + deadline_ms), 1, "on time, not 2 h late");

    // PH's clock runs 1 h slow: its FLASH claims to be an hour old on arrival.
    let later = T + HOUR_MS;
    let slow = flash(&mut ph, later - HOUR_MS);
    cn.receive(later, &code("PH"), slow.envelope.bytes()).unwrap();
    assert_eq!(escalations(&mut cn, later + 5_000), 0, "not at once on arrival");
    assert_eq!(escalations(&mut cn, later + deadline_ms), 1, "on time");
}

/// PH's next link test, sent at `at` on PH's clock, answered by CN at `cn_at` on CN's clock and
/// received back by PH `rtt` ms after it was sent: the `clock` alarm changes PH records.
fn link_test(ph: &mut Hotline, cn: &mut Hotline, at: u64, cn_at: u64, rtt: u64) -> Vec<(AlarmOp, String)> {
    let test = ph.tick(at).records.into_iter().find(|r| r.content == Content::LinkTest).expect("a link test is due");
    let answered = cn.receive(cn_at, &code("PH"), test.envelope.bytes()).unwrap();
    let answer = answered.into_iter().find(|r| matches!(r.content, Content::Receipt(_))).expect("CN answers");
    let back = ph.receive(at + rtt, &code("CN"), answer.envelope.bytes()).unwrap();
    back.iter()
        .flat_map(|r| r.alarms.iter())
        .filter(|a| a.kind == AlarmKind::Clock)
        .map(|a| (a.op.clone(), a.detail.clone()))
        .collect()
}

#[test]
fn link_tests_measure_a_peers_clock_and_raise_the_clock_alarm_past_the_bound() {
    let (mut ph, mut cn) = direct_line(T);
    let interval = ph.discipline().link_test_interval_s * 1000;
    let bound = ph.discipline().clock_offset_ms_max;
    // Within the bound: no alarm, and the offset is shown.
    assert_eq!(link_test(&mut ph, &mut cn, T, T + 100 + bound - 1_000, 200), vec![]);
    let offset =
        |ph: &Hotline, at| ph.links(at).into_iter().find(|(l, _)| l.line == LINE).and_then(|(l, _)| l.offset_ms);
    assert_eq!(offset(&ph, T + 200), Some(bound as i64 - 1_000));

    // CN's clock 2 h ahead.
    let at = T + interval;
    let changes = link_test(&mut ph, &mut cn, at, at + 100 + 2 * HOUR_MS, 200);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].0, AlarmOp::Raise);
    assert!(changes[0].1.contains("CN's clock is 2 h 0 min ahead of"), "{}", changes[0].1);
    assert_eq!(offset(&ph, at + 200), Some(2 * HOUR_MS as i64));
    // Still off: raised once only.
    let at = at + interval;
    assert_eq!(link_test(&mut ph, &mut cn, at, at + 100 + 2 * HOUR_MS, 200), vec![]);
    // Set right: cleared.
    let at = at + interval;
    let changes = link_test(&mut ph, &mut cn, at, at + 100, 200);
    assert_eq!(changes.iter().map(|c| c.0.clone()).collect::<Vec<_>>(), vec![AlarmOp::Clear]);
    // Behind, by more than the bound and half the round trip.
    let at = at + interval;
    let changes = link_test(&mut ph, &mut cn, at, at + 100 - bound - 2_000, 200);
    assert_eq!(changes.iter().map(|c| c.0.clone()).collect::<Vec<_>>(), vec![AlarmOp::Raise]);
    assert!(changes[0].1.contains("behind"), "{}", changes[0].1);
}

#[test]
fn a_link_whose_last_answer_is_old_is_late_then_failing() {
    let interval = 3_600_000;
    let health = LinkHealth {
        line: LINE,
        peer: code("CN"),
        outstanding: None,
        last_ok_ms: Some(T),
        last_rtt_ms: Some(20),
        offset_ms: Some(0),
        alarmed: false,
        clock_alarmed: false,
        next_test_ms: T + interval,
    };
    assert_eq!(health.state(T + 2 * interval, interval), LinkState::Healthy);
    assert_eq!(health.state(T + 2 * interval + 1, interval), LinkState::Late);
    assert_eq!(health.state(T + 3 * interval + 1, interval), LinkState::Failing);
    // With tests turned off (interval 0) there is no schedule to be late against.
    assert_eq!(health.state(T + 10 * interval, 0), LinkState::Healthy);
}

/// The `unacknowledged` alarm changes `ph` records on receiving `cn`'s answer at `at`.
fn answer_alarms(ph: &mut Hotline, answer: &Record, at: u64) -> Vec<(AlarmOp, String)> {
    let back = ph.receive(at, &code("CN"), answer.envelope.bytes()).unwrap();
    back.iter()
        .flat_map(|r| r.alarms.iter())
        .filter(|a| a.kind == AlarmKind::Unacknowledged)
        .map(|a| (a.op.clone(), a.detail.clone()))
        .collect()
}

#[test]
fn an_answer_held_after_the_deadline_is_late_whatever_the_recipients_clock_signed() {
    let (mut ph, mut cn) = direct_line(T - HOUR_MS);
    let deadline_ms = ph.discipline().deadlines.flash_s * 1000;
    let sent = flash(&mut ph, T);
    cn.receive(T, &code("PH"), sent.envelope.bytes()).unwrap();
    // CN signs its answer a second after receiving the FLASH, by a clock an hour slow; PH, which
    // was not running when the deadline passed (no tick), first holds the answer a minute after
    // it. The late answer is raised and cleared at once, so the record shows the deadline missed.
    let answered = Answered { hash: sent.envelope.hash(), sender: code("PH"), seq: sent.envelope.body().seq };
    let late = cn.answer(T + 1_000 - HOUR_MS, LINE, answered, ReceiptKind::Acknowledged, None, PRIORITY_FLASH).unwrap();
    let changes = answer_alarms(&mut ph, &late, T + deadline_ms + 61_000);
    assert_eq!(changes.iter().map(|c| c.0.clone()).collect::<Vec<_>>(), vec![AlarmOp::Raise, AlarmOp::Clear]);
    assert!(changes[0].1.contains("came 1 min 1 s late"), "{}", changes[0].1);

    // Held by the deadline: no alarm at all.
    let (mut ph, mut cn) = direct_line(T - HOUR_MS);
    let sent = flash(&mut ph, T);
    cn.receive(T, &code("PH"), sent.envelope.bytes()).unwrap();
    let answered = Answered { hash: sent.envelope.hash(), sender: code("PH"), seq: sent.envelope.body().seq };
    let on_time = cn.answer(T + 1_000, LINE, answered, ReceiptKind::Acknowledged, None, PRIORITY_FLASH).unwrap();
    assert_eq!(answer_alarms(&mut ph, &on_time, T + deadline_ms), vec![]);
}

#[test]
fn an_escalation_names_the_messages_sender_not_the_lines_home_member() {
    let at = T - HOUR_MS;
    let (mut ph, mut cn, mut vn) = (hotline("PH"), hotline("CN"), hotline("VN"));
    let kps = key_packages_of(&mut [&mut cn, &mut vn]);
    let req = NewLine { members: vec!["PH".into(), "CN".into(), "VN".into()], scope: "ADMM-Plus".into(), title: None };
    let setup = ph.create_line(at, LINE, req, kps).unwrap();
    cn.receive(at, &code("PH"), setup.envelope.bytes()).unwrap();
    vn.receive(at, &code("PH"), setup.envelope.bytes()).unwrap();
    // CN, not the line's home member PH, sends the FLASH that VN leaves unanswered.
    let from_cn = flash(&mut cn, T);
    vn.receive(T, &code("CN"), from_cn.envelope.bytes()).unwrap();
    let deadline_ms = vn.discipline().deadlines.flash_s * 1000;
    let raised: Vec<String> = vn
        .tick(T + deadline_ms)
        .alarms
        .into_iter()
        .filter(|a| a.kind == AlarmKind::Escalation)
        .map(|a| a.detail)
        .collect();
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert!(raised[0].contains("from CN"), "{}", raised[0]);
}
