//! The storage contract: what every [`Store`] backend must do.
//!
//! Each contract is written once against the trait and takes the backend as a function that makes
//! a fresh, empty store (and, for durability, one that reopens it). The entries at the bottom run
//! every contract on SQLite and on PostgreSQL: each PostgreSQL entry makes a database of its own
//! on the server `ADI_TEST_POSTGRES` names (`postgres://postgres@127.0.0.1:5432` when unset) and
//! drops it after. A few checks of one backend's own machinery (group commit, the writer waiting
//! for a lock) sit with its entries.

use std::cell::Cell;
use std::path::Path;
use std::sync::Barrier;
use std::thread;
use std::time::Duration;

/// The master key the test stores seal their contents under.
const MASTER_KEY: [u8; 32] = [7; 32];

use adi_core::{
    fixtures, Content, Draft, Hotline, MemberCode, NewLine, OwnHead, Precedence, ReceiptKind, Record, Scope, WriteBatch,
};
use adi_store::{
    CheckpointKey, InboxKey, MessageCursor, MessageQuery, MessageRow, Operator, Outcome, Page, QueueStat, RecipientRow,
    Settlement, SqlStore, Store, StoreConfig, TimeKey,
};
use adi_wire::batch::RefusalCode;
use adi_wire::content::SignedContent;
use adi_wire::envelope::{
    EnvelopeBody, CONTENT_MLS, PRIORITY_CONTROL, PRIORITY_FLASH, PRIORITY_IMMEDIATE, PRIORITY_PRIORITY,
    PRIORITY_ROUTINE,
};
use adi_wire::payload::PayloadV1;
use adi_wire::{EnvelopeHash, LineId, VerifiedEnvelope};
use tempfile::TempDir;

// Shared with the process tests, some of whose helpers this suite does not use.
#[allow(dead_code)]
#[path = "../../../tests/support/pg.rs"]
mod pg;
use pg::PgDatabase;

/// A fixed point in time, so that every run builds the same envelopes.
const T0: u64 = 1_700_000_000_000;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn code(s: &str) -> MemberCode {
    MemberCode::parse(s).expect("valid member code")
}

fn line_id(n: u8) -> LineId {
    LineId([n; 16])
}

/// `home` creates a line of itself and the members whose cores are given, with one KeyPackage
/// from each of those cores: only they can join the line's group and read what is sent on it.
fn create(home: &mut Hotline, members: &mut [&mut Hotline], at: u64, id: LineId, scope: &str) -> Record {
    let mut list = vec![home.me().to_string()];
    list.extend(members.iter().map(|m| m.me().to_string()));
    let req = NewLine { members: list, scope: scope.into(), title: Some(format!("line {}", id.0[0])) };
    let key_packages = fixtures::key_packages_of(members);
    home.create_line(at, id, req, key_packages).expect("the core creates the line")
}

fn send(core: &mut Hotline, at: u64, line: LineId, precedence: &str, subject: &str) -> Record {
    let draft = Draft {
        precedence: precedence.into(),
        subject: subject.into(),
        body: format!("body of {subject}"),
        ..Draft::default()
    };
    core.send(at, line, draft, None).expect("the core sends the message")
}

/// What `core` makes of an envelope another member's core produced.
fn receive(core: &mut Hotline, at: u64, record: &Record) -> Record {
    core.receive(at, &record.sender, record.envelope.bytes()).expect("the core accepts the envelope").remove(0)
}

/// A message envelope from `sender` with explicit chain fields, signed with its fixture key. Its
/// ciphertext is real: `sender`'s core encrypts the message as its next one on the line, so a
/// member that has not decrypted that ciphertext before takes it.
fn crafted(
    sender: &mut Hotline,
    line: LineId,
    seq: u64,
    prev: EnvelopeHash,
    created_ms: u64,
    precedence: &str,
    subject: &str,
) -> VerifiedEnvelope {
    let me = sender.me().to_string();
    let seed = fixtures::WORLD.iter().find(|m| m.0 == me).map(|m| m.2).expect("a fixture member");
    let payload = PayloadV1::Message {
        v: 1,
        precedence: precedence.into(),
        class: "OPERATIONAL".into(),
        caveat: "TEST CAVEAT".into(),
        subject: subject.into(),
        body: format!("body of {subject}"),
        ack_required: true,
        crisis: false,
        deadline_s: None,
        released_by: None,
        form: None,
        ewg: None,
        attachments: Vec::new(),
    };
    let priority = Precedence::parse(precedence).expect("a precedence").priority();
    let key = fixtures::key(seed);
    let signed = SignedContent::sign(&key, &line, &me, seq, payload.encode());
    let content_hash = signed.hash(&line, &me, seq);
    let (epoch, ciphertext) = sender.encrypt_unchecked(line, &signed.encode()).expect("the core encrypts the message");
    EnvelopeBody {
        line,
        sender: me,
        seq,
        prev,
        epoch,
        created_ms,
        priority,
        content_type: CONTENT_MLS,
        content_hash,
        payload: ciphertext,
    }
    .sign(&key)
}

fn hash(r: &Record) -> EnvelopeHash {
    r.envelope.hash()
}

fn commit(store: &dyn Store, records: &[&Record]) -> Vec<Outcome> {
    commit_with_mls(store, records, None)
}

/// Commits records together with a member's MLS state.
fn commit_with_mls(store: &dyn Store, records: &[&Record], mls_state: Option<adi_mls::StateDelta>) -> Vec<Outcome> {
    let batch =
        WriteBatch { records: records.iter().map(|r| (*r).clone()).collect(), mls_state, ..WriteBatch::default() };
    store.commit(batch).wait_blocking().expect("the batch commits")
}

fn batch_of(record: &Record) -> WriteBatch {
    WriteBatch { records: vec![record.clone()], ..WriteBatch::default() }
}

fn inserted(n: usize) -> Vec<Outcome> {
    vec![Outcome::Inserted; n]
}

fn line_messages(store: &dyn Store, line: LineId, limit: usize) -> Vec<MessageRow> {
    store.messages(&MessageQuery { line: Some(line), limit, ..MessageQuery::default() }).expect("messages")
}

fn all_messages(store: &dyn Store) -> Vec<MessageRow> {
    store.messages(&MessageQuery { limit: 10_000, ..MessageQuery::default() }).expect("messages")
}

fn hashes(rows: &[MessageRow]) -> Vec<EnvelopeHash> {
    rows.iter().map(|r| r.hash).collect()
}

fn outbox_hashes(store: &dyn Store, peer: &MemberCode, now_ms: u64) -> Vec<EnvelopeHash> {
    store.outbox(peer, now_ms, 100).expect("outbox").iter().map(|i| i.hash).collect()
}

fn sorted_heads(mut heads: Vec<OwnHead>) -> Vec<OwnHead> {
    heads.sort_by(|a, b| (a.line, &a.sender).cmp(&(b.line, &b.sender)));
    heads
}

fn head(line: LineId, sender: &str, record: &Record) -> OwnHead {
    let body = record.envelope.body();
    OwnHead { line, sender: code(sender), seq: body.seq, hash: hash(record), epoch: body.epoch }
}

/// Each sender's sequence numbers, in the order the rows list them.
fn seqs_of(rows: &[MessageRow], sender: &str) -> Vec<u64> {
    rows.iter().filter(|r| r.sender.as_str() == sender).map(|r| r.seq).collect()
}

/// Reads a list page by page, `limit` at a time, each page from where the one before ended, as
/// the API does: `limit + 1` items are read to know whether more remain, and the page is the
/// first `limit` of them. Returns the pages; fails past `pages_max`, so that a cursor that does
/// not move on fails the test instead of looping.
fn walk<T: Clone, K>(
    limit: usize,
    pages_max: usize,
    read: impl Fn(Page<K>) -> Vec<T>,
    place: impl Fn(&T) -> K,
) -> Vec<Vec<T>> {
    let mut pages: Vec<Vec<T>> = Vec::new();
    let mut from = None;
    loop {
        assert!(pages.len() < pages_max, "limit {limit}: more than {pages_max} pages");
        let mut page = read(Page { from: from.take(), limit: limit + 1 });
        let more = page.len() > limit;
        page.truncate(limit);
        pages.push(page.clone());
        if !more {
            return pages;
        }
        from = Some(place(page.last().expect("a page that says more remain holds an item")));
    }
}

/// Walks a list with every limit from 1 to one past its length and checks that the pages hold
/// every item of the list exactly once, in its order: each page but the last is full, and the
/// last one (the first that says no more remain) is not empty unless the list is.
fn check_walks<T: Clone, K, I: PartialEq + std::fmt::Debug>(
    what: &str,
    read: impl Fn(Page<K>) -> Vec<T>,
    place: impl Fn(&T) -> K,
    id: impl Fn(&T) -> I,
) {
    let all: Vec<I> = read(Page::all()).iter().map(&id).collect();
    for limit in 1..=all.len() + 1 {
        let pages = walk(limit, all.len() + 1, &read, &place);
        let (last, full) = pages.split_last().expect("at least one page");
        assert!(
            full.iter().all(|p| p.len() == limit),
            "{what}, limit {limit}: a page short of the limit said more remain"
        );
        assert!(!last.is_empty() || all.is_empty(), "{what}, limit {limit}: the last page is empty");
        assert_eq!(pages.len(), all.len().div_ceil(limit).max(1), "{what}, limit {limit}: pages");
        let walked: Vec<I> = pages.iter().flatten().map(&id).collect();
        assert_eq!(walked, all, "{what}, limit {limit}: the pages are not the list");
    }
}

// ---------------------------------------------------------------------------------------------
// The contract
// ---------------------------------------------------------------------------------------------

/// New records are inserted; the same records again change nothing; another envelope in the
/// place of a stored one is refused and the stored one stays.
fn commit_outcomes_and_idempotence<P, S: Store>(fresh: impl Fn() -> (P, S)) {
    let line = line_id(1);
    let mut ph = fixtures::hotline("PH");
    let mut cn = fixtures::hotline("CN");
    let setup = create(&mut ph, &mut [&mut cn], T0, line, "ADMM-Plus");
    let m1 = send(&mut ph, T0 + 1, line, "ROUTINE", "first");
    let m2 = send(&mut ph, T0 + 2, line, "PRIORITY", "second");

    // At PH, the sender.
    let (_ph_place, ph_store) = fresh();
    assert_eq!(commit(&ph_store, &[&setup, &m1, &m2]), inserted(3));
    let rows = line_messages(&ph_store, line, 100);
    assert_eq!(hashes(&rows), vec![hash(&m1), hash(&m2)]);
    let queue = vec![QueueStat { peer: code("CN"), len: 3, oldest_enqueued_ms: Some(T0) }];
    assert_eq!(ph_store.queue_stats().unwrap(), queue);
    let heads = sorted_heads(ph_store.load(&code("PH")).unwrap().heads);
    assert_eq!(heads, vec![head(line, "PH", &m2)]);

    assert_eq!(commit(&ph_store, &[&setup, &m1, &m2]), vec![Outcome::Duplicate; 3]);
    let again = line_messages(&ph_store, line, 100);
    assert_eq!(format!("{again:?}"), format!("{rows:?}"), "a duplicate changes no stored message");
    assert_eq!(ph_store.queue_stats().unwrap(), queue, "a duplicate is not queued again");
    assert_eq!(sorted_heads(ph_store.load(&code("PH")).unwrap().heads), heads);
    assert_eq!(ph_store.load(&code("PH")).unwrap().lines, vec![setup.line.clone()]);

    // One outcome per record, in order, when a batch mixes old and new.
    let m3 = send(&mut ph, T0 + 3, line, "FLASH", "third");
    assert_eq!(commit(&ph_store, &[&m2, &m3]), vec![Outcome::Duplicate, Outcome::Inserted]);
    assert_eq!(hashes(&line_messages(&ph_store, line, 100)), vec![hash(&m1), hash(&m2), hash(&m3)]);
    assert_eq!(ph_store.queue_stats().unwrap()[0].len, 4);

    // At CN, the receiver.
    let got_setup = receive(&mut cn, T0 + 10, &setup);
    let got_m1 = receive(&mut cn, T0 + 11, &m1);
    let (_cn_place, cn_store) = fresh();
    assert_eq!(commit(&cn_store, &[&got_setup, &got_m1]), inserted(2));
    assert!(cn_store.queue_stats().unwrap().is_empty(), "envelopes from peers are not forwarded");

    let forged = crafted(&mut ph, line, m1.envelope.body().seq, hash(&setup), T0 + 1, "FLASH", "forged");
    assert_ne!(forged.hash(), hash(&m1));
    let forged = cn
        .receive(T0 + 12, &code("PH"), forged.bytes())
        .expect("the core leaves (line, sender, seq) uniqueness to the store")
        .remove(0);
    assert_eq!(forged.envelope.body().seq, m1.envelope.body().seq);
    assert_eq!(commit(&cn_store, &[&forged]), vec![Outcome::Conflict { existing: hash(&m1) }]);

    let stored = cn_store.message(&hash(&m1)).unwrap().expect("the original stays");
    assert_eq!(stored.subject.as_deref(), Some("first"));
    assert_eq!(stored.precedence.as_deref(), Some("ROUTINE"));
    assert!(cn_store.message(&hash(&forged)).unwrap().is_none(), "the conflicting envelope is not stored");
    assert_eq!(hashes(&line_messages(&cn_store, line, 100)), vec![hash(&m1)]);
    assert_eq!(sorted_heads(cn_store.load(&code("CN")).unwrap().heads), vec![head(line, "PH", &m1)]);
    // The sender's stored envelope is still a duplicate, not a conflict, after the refusal.
    assert_eq!(commit(&cn_store, &[&got_m1]), vec![Outcome::Duplicate]);
}

/// The outbox gives the most urgent envelope first, then the oldest; settlements take envelopes
/// out of it, record what the peer said, or defer them.
fn outbox_order_and_settlement<P, S: Store>(fresh: impl Fn() -> (P, S)) {
    let (_place, store) = fresh();
    let cn = code("CN");
    let line = line_id(2);
    let mut ph = fixtures::hotline("PH");
    // CN never receives here: its core only gives the KeyPackage the line is made with.
    let mut cn_core = fixtures::hotline("CN");
    let setup = create(&mut ph, &mut [&mut cn_core], T0, line, "ADMM-Plus");
    let routine1 = send(&mut ph, T0 + 1, line, "ROUTINE", "routine one");
    let routine2 = send(&mut ph, T0 + 2, line, "ROUTINE", "routine two");
    let flash = send(&mut ph, T0 + 3, line, "FLASH", "flash");
    let priority = send(&mut ph, T0 + 4, line, "PRIORITY", "priority");
    let immediate = send(&mut ph, T0 + 5, line, "IMMEDIATE", "immediate");
    let sent = [&setup, &routine1, &routine2, &flash, &priority, &immediate];
    for r in sent {
        assert_eq!(commit(&store, &[r]), inserted(1));
    }

    let now = T0 + 100;
    let items = store.outbox(&cn, now, 100).unwrap();
    let order: Vec<(EnvelopeHash, u8)> = items.iter().map(|i| (i.hash, i.priority)).collect();
    assert_eq!(
        order,
        vec![
            (hash(&setup), PRIORITY_CONTROL),
            (hash(&flash), PRIORITY_FLASH),
            (hash(&immediate), PRIORITY_IMMEDIATE),
            (hash(&priority), PRIORITY_PRIORITY),
            (hash(&routine1), PRIORITY_ROUTINE),
            (hash(&routine2), PRIORITY_ROUTINE),
        ]
    );
    for item in &items {
        let record = sent.iter().find(|r| hash(r) == item.hash).expect("a sent record");
        assert_eq!(item.bytes, record.envelope.bytes(), "the outbox holds the exact signed bytes");
        assert_eq!(item.attempts, 0);
    }
    assert_eq!(outbox_hashes(&store, &cn, now)[..2], [hash(&setup), hash(&flash)]);
    let limited: Vec<EnvelopeHash> = store.outbox(&cn, now, 2).unwrap().iter().map(|i| i.hash).collect();
    assert_eq!(limited, vec![hash(&setup), hash(&flash)]);
    // Within a budget of bytes: as many as fit, in the same order, and one at least.
    let within = |bytes: usize| -> Vec<EnvelopeHash> {
        store.outbox_within(&cn, now, 100, bytes).unwrap().iter().map(|i| i.hash).collect()
    };
    assert_eq!(within(1), vec![hash(&setup)], "a budget smaller than one envelope gives one");
    let two = items[0].bytes.len() + items[1].bytes.len() + 200;
    assert_eq!(within(two), vec![hash(&setup), hash(&flash)]);
    assert_eq!(within(usize::MAX), items.iter().map(|i| i.hash).collect::<Vec<_>>());
    assert!(store.outbox(&code("VN"), now, 100).unwrap().is_empty(), "VN is not on the line");
    assert_eq!(
        store.queue_stats().unwrap(),
        vec![QueueStat { peer: cn.clone(), len: 6, oldest_enqueued_ms: Some(T0) }]
    );
    let sent_row = |r: &Record| RecipientRow {
        member: cn.clone(),
        sent_ms: r.received_ms,
        progress: adi_core::RecipientProgress::sent(),
    };
    let with = |r: &Record, progress: adi_core::RecipientProgress| RecipientRow { progress, ..sent_row(r) };
    let sent = adi_core::RecipientProgress::sent();
    assert_eq!(store.recipients(&hash(&flash)).unwrap(), vec![sent_row(&flash)]);

    let results = vec![
        (hash(&flash), Settlement::Delivered),
        (hash(&priority), Settlement::Refused { code: RefusalCode::UnknownLine, reason: "line refused at CN".into() }),
        (hash(&immediate), Settlement::Retry { at_ms: now + 10_000, reason: "CN is busy".into() }),
    ];
    store.settle(&cn, results, now).wait_blocking().expect("settled");

    assert_eq!(outbox_hashes(&store, &cn, now), vec![hash(&setup), hash(&routine1), hash(&routine2)]);
    assert_eq!(
        store.recipients(&hash(&flash)).unwrap(),
        vec![with(
            &flash,
            adi_core::RecipientProgress {
                state: adi_core::RecipientState::Delivered,
                delivered_ms: Some(now),
                ..sent.clone()
            }
        )]
    );
    assert_eq!(
        store.recipients(&hash(&priority)).unwrap(),
        vec![with(
            &priority,
            adi_core::RecipientProgress {
                state: adi_core::RecipientState::Refused,
                detail: Some("line refused at CN".into()),
                refusal: Some(RefusalCode::UnknownLine),
                ..sent.clone()
            }
        )]
    );
    // A message the recipient refused will not be acknowledged: a restarted core awaits nothing
    // for it, while the delivered one is still awaited.
    let awaited: Vec<EnvelopeHash> = store.load(&code("PH")).unwrap().pending.iter().map(|p| p.message).collect();
    assert!(awaited.contains(&hash(&flash)), "{awaited:?}");
    assert!(!awaited.contains(&hash(&priority)), "{awaited:?}");
    let deferred = store.recipients(&hash(&immediate)).unwrap();
    assert_eq!(deferred.len(), 1);
    assert_eq!((deferred[0].progress.state.as_str(), deferred[0].progress.delivered_ms), ("sent", None));
    assert_eq!(deferred[0].progress.detail.as_deref(), Some("CN is busy"));
    assert_eq!(store.queue_stats().unwrap()[0].len, 4, "the deferred envelope is still queued");

    // The deferred envelope comes back when it is due, in its place by priority.
    assert!(!outbox_hashes(&store, &cn, now + 9_999).contains(&hash(&immediate)));
    let due = store.outbox(&cn, now + 10_000, 100).unwrap();
    let due_order: Vec<EnvelopeHash> = due.iter().map(|i| i.hash).collect();
    assert_eq!(due_order, vec![hash(&setup), hash(&immediate), hash(&routine1), hash(&routine2)]);
    assert_eq!(due[1].attempts, 1);

    // A delivery reported twice keeps the first delivery time.
    store.settle(&cn, vec![(hash(&flash), Settlement::Delivered)], now + 50).wait_blocking().unwrap();
    assert_eq!(store.recipients(&hash(&flash)).unwrap()[0].progress.delivered_ms, Some(now));

    let rest = [&setup, &routine1, &routine2].iter().map(|r| (hash(r), Settlement::Delivered)).collect();
    store.settle(&cn, rest, now + 1).wait_blocking().expect("settled");
    assert!(store.outbox(&cn, now + 1, 100).unwrap().is_empty());
    assert_eq!(store.outbox_next_due(&cn).unwrap(), Some(now + 10_000));
    assert_eq!(store.outbox_next_due(&code("VN")).unwrap(), None);
    assert_eq!(
        store.queue_stats().unwrap(),
        vec![QueueStat { peer: cn.clone(), len: 1, oldest_enqueued_ms: Some(immediate.received_ms) }]
    );

    store.settle(&cn, vec![(hash(&immediate), Settlement::Delivered)], now + 10_000).wait_blocking().unwrap();
    assert!(store.queue_stats().unwrap().is_empty());
    assert_eq!(store.outbox_next_due(&cn).unwrap(), None);
    let delivered = &store.recipients(&hash(&immediate)).unwrap()[0];
    assert_eq!((delivered.progress.state.as_str(), delivered.progress.delivered_ms), ("delivered", Some(now + 10_000)));

    // CN's node decrypts the FLASH and answers with its signed `decrypted` receipt: stored at PH,
    // it sets the decryption time and leaves the later states to the operators.
    cn_core.receive(now, &code("PH"), setup.envelope.bytes()).expect("CN joins");
    let got = cn_core.receive(now + 20_000, &code("PH"), flash.envelope.bytes()).expect("CN decrypts the FLASH");
    let receipt = got.into_iter().nth(1).expect("CN's node answers the FLASH");
    assert!(matches!(&receipt.content, Content::Receipt(r) if r.kind == ReceiptKind::Decrypted));
    let at_ph = ph.receive(now + 20_001, &cn, receipt.envelope.bytes()).expect("PH takes the receipt");
    assert_eq!(commit(&store, &at_ph.iter().collect::<Vec<_>>()), inserted(1));
    assert_eq!(
        store.recipients(&hash(&flash)).unwrap(),
        vec![with(
            &flash,
            adi_core::RecipientProgress {
                state: adi_core::RecipientState::Delivered,
                delivered_ms: Some(now),
                decrypted_ms: Some(now + 20_000),
                ..sent.clone()
            }
        )]
    );
}

/// A message waits for this member's answer until it is acknowledged; the receipt of this
/// member's made by an operator keeps, at this node alone, who made it, and an automatic receipt
/// names no operator.
fn answers_keep_their_operator<P, S: Store>(fresh: impl Fn() -> (P, S)) {
    let (_place, store) = fresh();
    let line = line_id(9);
    let mut ph = fixtures::hotline("PH");
    let mut cn = fixtures::hotline("CN");
    let setup = create(&mut cn, &mut [&mut ph], T0, line, "ADMM-Plus");
    let joined = receive(&mut ph, T0 + 1, &setup);
    let flash = send(&mut cn, T0 + 2, line, "FLASH", "flash to answer");
    let got = ph.receive(T0 + 3, &code("CN"), flash.envelope.bytes()).expect("PH takes the FLASH");
    assert_eq!(commit(&store, &[&joined]), inserted(1));
    assert_eq!(commit(&store, &got.iter().collect::<Vec<_>>()), inserted(got.len()));
    let waiting = |store: &S| {
        let q = MessageQuery {
            not_from: Some(code("PH")),
            limit: 10,
            by_precedence: true,
            waiting_for: Some(code("PH")),
            ..MessageQuery::default()
        };
        hashes(&store.messages(&q).unwrap())
    };
    assert_eq!(waiting(&store), vec![hash(&flash)], "the FLASH waits for PH's answer");
    let answered = adi_core::Answered { hash: hash(&flash), sender: code("CN"), seq: flash.envelope.body().seq };
    let ack = ph
        .answer(T0 + 4, line, answered, ReceiptKind::Acknowledged, None, PRIORITY_FLASH)
        .expect("PH's desk acknowledges");
    let batch = WriteBatch {
        records: vec![ack.clone()],
        answered_by: vec![(hash(&ack), "duty-ph".into())],
        ..WriteBatch::default()
    };
    assert_eq!(store.commit(batch).wait_blocking().unwrap(), inserted(1));
    let receipts = store.receipts(&hash(&flash)).unwrap();
    let by: Vec<(ReceiptKind, Option<String>)> = receipts.iter().map(|r| (r.kind, r.operator.clone())).collect();
    assert_eq!(by, vec![(ReceiptKind::Decrypted, None), (ReceiptKind::Acknowledged, Some("duty-ph".into()))]);
    assert!(waiting(&store).is_empty(), "an acknowledged message still waits");
}

/// The operations report's reads: the messages sent and received by precedence and class, and
/// each recipient of a message that asks for an answer, with its deadline and its answer.
fn report_rows_read_traffic_and_answers<P, S: Store>(fresh: impl Fn() -> (P, S)) {
    let (_ph_place, ph_store) = fresh();
    let (_cn_place, cn_store) = fresh();
    let line = line_id(10);
    let mut ph = fixtures::hotline("PH");
    let mut cn = fixtures::hotline("CN");
    let setup = create(&mut cn, &mut [&mut ph], T0, line, "ADMM-Plus");
    let joined = receive(&mut ph, T0 + 1, &setup);
    let flash = send(&mut cn, T0 + 2, line, "FLASH", "flash to answer");
    let routine = send(&mut cn, T0 + 3, line, "ROUTINE", "for the record");
    assert_eq!(commit(&cn_store, &[&setup, &flash, &routine]), inserted(3));
    assert_eq!(commit(&ph_store, &[&joined]), inserted(1));
    for r in [&flash, &routine] {
        let got = ph.receive(T0 + 4, &code("CN"), r.envelope.bytes()).expect("PH takes the message");
        assert_eq!(commit(&ph_store, &got.iter().collect::<Vec<_>>()), inserted(got.len()));
    }
    let at_ph = ph_store.report_rows(&code("PH"), 0, u64::MAX).unwrap();
    let traffic: Vec<(bool, String, u64)> =
        at_ph.traffic.iter().map(|t| (t.sent, t.precedence.clone(), t.count)).collect();
    assert_eq!(traffic, vec![(false, "FLASH".to_string(), 1), (false, "ROUTINE".to_string(), 1)]);
    assert!(at_ph.answers.is_empty() && at_ph.link_tests.is_empty() && at_ph.alarms.is_empty(), "{at_ph:?}");
    let at_cn = cn_store.report_rows(&code("CN"), 0, u64::MAX).unwrap();
    let asked: Vec<(String, String, bool)> = at_cn
        .answers
        .iter()
        .map(|a| (a.member.to_string(), a.precedence.clone(), a.acknowledged_ms.is_some()))
        .collect();
    assert!(asked.contains(&("PH".to_string(), "FLASH".to_string(), false)), "{asked:?}");
    assert!(at_cn.answers.iter().all(|a| a.deadline_ms.is_some()), "{at_cn:?}");
    assert!(at_cn.traffic.iter().all(|t| t.sent), "{at_cn:?}");
    // Outside the window, nothing.
    assert_eq!(cn_store.report_rows(&code("CN"), 0, T0).unwrap(), adi_store::ReportRows::default());
}

/// Retention prunes only what a confirmed archive holds, of the classes its rules name, accepted
/// before their time: the sealed content goes, the signed envelope and its place stay.
fn retention_prunes_only_archived_content<P, S: Store>(fresh: impl Fn() -> (P, S)) {
    let (_place, store) = fresh();
    let line = line_id(11);
    let mut cn = fixtures::hotline("CN");
    let mut ph = fixtures::hotline("PH");
    let setup = create(&mut cn, &mut [&mut ph], T0, line, "ADMM-Plus");
    let of_class = |core: &mut Hotline, at: u64, class: &str, subject: &str| {
        let draft = Draft {
            precedence: "ROUTINE".into(),
            class: Some(class.into()),
            subject: subject.into(),
            body: format!("body of {subject}"),
            ..Draft::default()
        };
        core.send(at, line, draft, None).expect("the core sends the message")
    };
    let test = of_class(&mut cn, T0 + 1, "TEST", "a test to prune");
    let operational = of_class(&mut cn, T0 + 2, "OPERATIONAL", "an order to keep");
    let translate = |core: &mut Hotline, at: u64, original: &Record, text: &str| {
        let t = adi_core::Translation {
            original: hash(original),
            language: "fil".into(),
            text: text.into(),
            translator: "translator-cn".into(),
            reviewed_by: None,
            revises: None,
        };
        core.translate(at, line, t).expect("the core translates")
    };
    let test_translated = translate(&mut cn, T0 + 2, &test, "isang pagsubok");
    let kept_translated = translate(&mut cn, T0 + 2, &operational, "isang utos");
    let later = of_class(&mut cn, T0 + 3, "TEST", "a test after the archive");
    let records = [&setup, &test, &operational, &test_translated, &kept_translated, &later];
    assert_eq!(commit(&store, &records), inserted(6));
    let arrival = |r: &Record| store.envelope(&hash(r)).unwrap().expect("stored").arrival;
    let before = store.envelope(&hash(&test)).unwrap().expect("stored");
    assert!(before.signed_content.is_some() && before.pruned_ms.is_none(), "{before:?}");
    let rules = vec![
        adi_store::PruneRule { class: "TEST".into(), before_ms: T0 + 100 },
        adi_store::PruneRule { class: "SERVICE".into(), before_ms: T0 + 100 },
    ];
    let prune = |now: u64| store.prune(rules.clone(), now, 100).wait_blocking().expect("the pass commits");
    assert_eq!(prune(T0 + 200), Vec::new(), "pruned with no archive");

    // Served, not confirmed: nothing is archived yet.
    let served = adi_store::ArchiveRow {
        line,
        sha256: [5; 32],
        first_arrival: arrival(&setup),
        last_arrival: arrival(&kept_translated),
        envelopes: 5,
        served_ms: T0 + 10,
        confirmed_ms: None,
    };
    store.add_archive(served.clone(), T0).wait_blocking().unwrap();
    assert_eq!(prune(T0 + 200), Vec::new(), "pruned under an archive never confirmed");
    assert_eq!(store.archives(&line).unwrap(), Vec::new(), "an unconfirmed archive is listed");
    let confirm = |sha: [u8; 32], at: u64| {
        store.confirm_archive(line, sha, T0, "admin-ph".into(), at).wait_blocking().expect("the confirmation commits")
    };
    assert_eq!(confirm([6; 32], T0 + 20), None, "an archive never served confirmed");
    let confirmed = confirm([5; 32], T0 + 20).expect("the served archive is confirmed");
    assert_eq!(confirmed, adi_store::ArchiveRow { confirmed_ms: Some(T0 + 20), ..served.clone() });
    assert_eq!(confirm([5; 32], T0 + 30), Some(confirmed.clone()), "a second confirmation changes it");
    assert_eq!(store.archives(&line).unwrap(), vec![confirmed]);

    // Not yet past the rule's time: kept.
    let early = vec![adi_store::PruneRule { class: "TEST".into(), before_ms: T0 }];
    assert_eq!(store.prune(early, T0 + 200, 100).wait_blocking().unwrap(), Vec::new());
    // Past it, and archived: the TEST message's content goes; the operational one and the TEST
    // message after the archive stay.
    assert_eq!(prune(T0 + 200), vec![hash(&test), hash(&test_translated)]);
    let texts = |original: &Record| -> Vec<String> {
        let rows = store.translations(Some(&hash(original)), None, Page::first(10)).expect("translations");
        rows.into_iter().map(|t| t.text).collect()
    };
    assert_eq!(texts(&test), vec![String::new()], "the pruned message's translation kept its text");
    assert_eq!(texts(&operational), vec!["isang utos".to_string()]);
    let translated = store.envelope(&hash(&test_translated)).unwrap().expect("still stored");
    assert_eq!((translated.signed_content, translated.pruned_ms.is_some()), (None, true));
    let after = store.envelope(&hash(&test)).unwrap().expect("still stored");
    assert_eq!(after.bytes, before.bytes, "the signed envelope changed");
    assert_eq!((after.signed_content, after.pruned_ms, after.arrival), (None, Some(T0 + 200), before.arrival));
    let row = store.message(&hash(&test)).unwrap().expect("still listed");
    assert_eq!((row.subject, row.body, row.caveat, row.pruned_ms), (None, None, None, Some(T0 + 200)));
    assert_eq!((row.class.as_deref(), row.precedence.as_deref()), (Some("TEST"), Some("ROUTINE")));
    for kept in [&operational, &later] {
        let row = store.message(&hash(kept)).unwrap().expect("stored");
        assert!(row.subject.is_some() && row.pruned_ms.is_none(), "{row:?}");
        assert!(store.envelope(&hash(kept)).unwrap().expect("stored").signed_content.is_some());
    }
    assert_eq!(prune(T0 + 300), Vec::new(), "pruned twice");
    let audit: Vec<(String, String)> =
        store.audit(Page::first(10)).unwrap().into_iter().map(|a| (a.action, a.actor)).collect();
    assert!(audit.contains(&("pruned".into(), "retention".into())), "{audit:?}");
    assert!(audit.contains(&("archive_confirmed".into(), "admin-ph".into())), "{audit:?}");

    // An export served and never confirmed is forgotten after its window, and cannot be
    // confirmed once it is past, forgotten or not.
    let stale = adi_store::ArchiveRow { sha256: [7; 32], served_ms: T0 + 40, ..served.clone() };
    store.add_archive(stale, T0).wait_blocking().unwrap();
    let fresh = adi_store::ArchiveRow { sha256: [8; 32], served_ms: T0 + 50, ..served.clone() };
    store.add_archive(fresh, T0 + 45).wait_blocking().unwrap();
    assert_eq!(confirm([7; 32], T0 + 60), None, "an export forgotten is confirmed");
    let late = adi_store::ArchiveRow { sha256: [9; 32], served_ms: T0 + 55, ..served };
    store.add_archive(late, T0).wait_blocking().unwrap();
    let past = store.confirm_archive(line, [9; 32], T0 + 56, "admin-ph".into(), T0 + 70).wait_blocking().unwrap();
    assert_eq!(past, None, "an export served before the window is confirmed");
    assert!(confirm([8; 32], T0 + 60).is_some());

    // A TEST message with a file: once archived and past its time, its chunks go with it.
    let draft = Draft {
        precedence: "ROUTINE".into(),
        class: Some("TEST".into()),
        subject: "a test with a file".into(),
        body: "see".into(),
        ..Draft::default()
    };
    let files = vec![("t.txt".to_string(), "text/plain".to_string(), vec![7u8; 200_000])];
    let with_file = cn.send_with_files(T0 + 5, line, draft, None, files).expect("the core sends the file");
    assert_eq!(commit(&store, &with_file.iter().collect::<Vec<_>>()), inserted(with_file.len()));
    let holding = adi_store::ArchiveRow {
        sha256: [10; 32],
        first_arrival: arrival(&with_file[0]),
        last_arrival: arrival(with_file.last().expect("chunks")),
        envelopes: with_file.len() as u64,
        served_ms: T0 + 60,
        ..served
    };
    store.add_archive(holding, T0).wait_blocking().unwrap();
    assert!(confirm([10; 32], T0 + 61).is_some());
    assert_eq!(prune(T0 + 400), with_file.iter().map(hash).collect::<Vec<_>>(), "the message and its chunks");
    for r in &with_file {
        let row = store.envelope(&hash(r)).unwrap().expect("still stored");
        assert_eq!((row.signed_content, row.pruned_ms), (None, Some(T0 + 400)), "{}", r.content.kind());
    }
    assert_eq!(store.message(&hash(&with_file[0])).unwrap().expect("listed").attachments, Vec::new());
}

/// A message with a file attached and the chunks that carry it, sent and received: each chunk
/// kept by its place, the file named beside the message, and each chunk answered.
fn files_travel_in_chunks<P, S: Store>(fresh: impl Fn() -> (P, S)) {
    let (_cn_place, cn_store) = fresh();
    let (_ph_place, ph_store) = fresh();
    let line = line_id(12);
    let mut cn = fixtures::hotline("CN");
    let mut ph = fixtures::hotline("PH");
    let setup = create(&mut cn, &mut [&mut ph], T0, line, "ADMM-Plus");
    let joined = receive(&mut ph, T0 + 1, &setup);
    let file: Vec<u8> = (0..250_000u32).map(|i| (i % 251) as u8).collect();
    let draft =
        Draft { precedence: "ROUTINE".into(), subject: "a chart".into(), body: "see".into(), ..Draft::default() };
    let files = vec![("chart.pdf".to_string(), "application/pdf".to_string(), file.clone())];
    let sent = cn.send_with_files(T0 + 2, line, draft, None, files).expect("the core sends the file");
    assert_eq!(sent.len(), 4, "a message and three chunks of 96 KiB");
    let mut all = vec![&setup];
    all.extend(sent.iter());
    assert_eq!(commit(&cn_store, &all), inserted(5));
    assert_eq!(commit(&ph_store, &[&joined]), inserted(1));
    let mut got = Vec::new();
    for r in &sent {
        got.extend(ph.receive(T0 + 3, &code("CN"), r.envelope.bytes()).expect("PH takes the envelope"));
    }
    let answers = got.len() - sent.len();
    assert_eq!(answers, 4, "each envelope answered as decrypted");
    assert_eq!(commit(&ph_store, &got.iter().collect::<Vec<_>>()), inserted(got.len()));
    let message = hash(&sent[0]);
    let row = ph_store.message(&message).unwrap().expect("the message");
    assert_eq!(row.attachments.len(), 1);
    let a = &row.attachments[0];
    assert_eq!((a.name.as_str(), a.size, a.chunks), ("chart.pdf", 250_000, 3));
    let chunks = ph_store.chunks(&message, &a.sha256).unwrap();
    assert_eq!(chunks, sent[1..].iter().enumerate().map(|(i, r)| (i as u64, hash(r))).collect::<Vec<_>>());
}

/// What was committed is there after the store is closed and opened again: lines, chain heads,
/// messages and the outbox, enough for a core built from it to continue every chain.
fn durable_across_reopen<P, S: Store + Clone>(fresh: impl Fn() -> (P, S), reopen: impl Fn(&P) -> S) {
    let (place, store) = fresh();
    let conf = line_id(3);
    let direct = line_id(4);
    let mut ph = fixtures::hotline("PH");
    let mut vn = fixtures::hotline("VN");
    // CN never receives here: its core only gives the KeyPackage the conference is made with.
    let mut cn = fixtures::hotline("CN");
    let conf_setup = create(&mut ph, &mut [&mut vn, &mut cn], T0, conf, "ADMM-Plus");
    let direct_setup = create(&mut ph, &mut [&mut vn], T0 + 1, direct, "ADMM");
    let a = send(&mut ph, T0 + 2, conf, "FLASH", "conference one");
    let b = send(&mut ph, T0 + 3, conf, "ROUTINE", "conference two");
    let c = send(&mut ph, T0 + 4, direct, "PRIORITY", "direct one");
    receive(&mut vn, T0 + 5, &conf_setup);
    let from_vn = send(&mut vn, T0 + 6, conf, "IMMEDIATE", "from VN");
    let from_vn = receive(&mut ph, T0 + 7, &from_vn);

    let writer = store.clone();
    assert_eq!(commit(&writer, &[&conf_setup, &direct_setup, &a]), inserted(3));
    // PH's first delta is its whole state.
    let delta = ph.mls_delta().expect("PH's MLS state");
    let whole: std::collections::BTreeMap<Vec<u8>, Vec<u8>> =
        adi_mls::decode_state(&ph.mls_snapshot().unwrap()).unwrap().into_iter().collect();
    let mls_state: Vec<(Vec<u8>, Vec<u8>)> = whole.into_iter().collect();
    assert_eq!(delta.put, mls_state);
    assert_eq!(commit_with_mls(&store, &[&b, &c, &from_vn], Some(delta)), inserted(3));
    let rows = all_messages(&store);
    assert_eq!(rows.len(), 4);
    let queues = store.queue_stats().unwrap();
    assert_eq!(queues.iter().map(|q| (q.peer.as_str(), q.len)).collect::<Vec<_>>(), vec![("CN", 3), ("VN", 5)]);
    let to_vn = outbox_hashes(&store, &code("VN"), T0 + 100);
    drop(writer);
    drop(store);

    let store = reopen(&place);
    let loaded = store.load(&code("PH")).unwrap();
    assert_eq!(loaded.latest_ms, T0 + 7, "the latest time stored: VN's message taken at T0 + 7");
    assert_eq!(loaded.mls_state, mls_state, "the MLS state comes back as committed");
    assert_eq!(store.mls_state().unwrap(), mls_state);
    let mut lines = loaded.lines;
    lines.sort_by_key(|l| l.id);
    assert_eq!(lines, vec![conf_setup.line.clone(), direct_setup.line.clone()]);
    assert_eq!(lines[0].scope, Scope::AdmmPlus);
    assert_eq!(lines[0].home, code("PH"));
    assert_eq!(lines[0].members, vec![code("CN"), code("PH"), code("VN")]);
    assert_eq!(lines[1].scope, Scope::Admm);
    assert_eq!(lines[1].members, vec![code("PH"), code("VN")]);
    let heads = sorted_heads(loaded.heads);
    assert_eq!(heads, vec![head(conf, "PH", &b), head(conf, "VN", &from_vn), head(direct, "PH", &c)]);

    assert_eq!(format!("{:?}", all_messages(&store)), format!("{rows:?}"));
    assert_eq!(store.queue_stats().unwrap(), queues);
    assert_eq!(outbox_hashes(&store, &code("VN"), T0 + 100), to_vn);

    // A core rebuilt from what was loaded continues the chains instead of restarting them.
    // Its MLS state is the one loaded, so the other members still read what it sends.
    let restored = adi_core::Restored {
        lines,
        heads,
        pending: Vec::new(),
        mls_state: loaded.mls_state,
        known: loaded.known,
        latest_ms: loaded.latest_ms,
        removals: loaded.removals,
        received: loaded.received,
    };
    let mut restarted = Hotline::new(fixtures::config("PH", 1), restored, T0 + 20).expect("the core restarts");
    let next = send(&mut restarted, T0 + 20, conf, "ROUTINE", "after the restart");
    assert_eq!((next.envelope.body().seq, next.envelope.body().prev), (4, hash(&b)));
    assert_eq!(commit(&store, &[&next]), inserted(1));
    let heard = receive(&mut vn, T0 + 21, &next);
    assert!(
        matches!(&heard.content, Content::Message(m) if m.subject == "after the restart"),
        "VN decrypts the message: {:?}",
        heard.content
    );
}

/// Every member a line has had comes back at load, also one taken off the line since and never
/// heard from: a message it sent while on the line, or a decision naming it a party then, may
/// still arrive after a restart.
fn members_taken_off_are_remembered<P, S: Store + Clone>(fresh: impl Fn() -> (P, S), reopen: impl Fn(&P) -> S) {
    let (place, store) = fresh();
    let conf = line_id(5);
    let mut ph = fixtures::hotline("PH");
    let mut vn = fixtures::hotline("VN");
    let mut cn = fixtures::hotline("CN");
    let setup = create(&mut ph, &mut [&mut vn, &mut cn], T0, conf, "ADMM-Plus");
    let removal = ph.remove_member(T0 + 1, conf, &code("CN")).expect("PH takes CN off its line");
    assert_eq!(commit(&store, &[&setup, &removal]), inserted(2));
    drop(store);

    let store = reopen(&place);
    let loaded = store.load(&code("PH")).unwrap();
    assert_eq!(
        loaded.lines.iter().find(|l| l.id == conf).map(|l| l.members.clone()),
        Some(vec![code("PH"), code("VN")])
    );
    let mut known: Vec<(LineId, String)> = loaded.known.iter().map(|(l, m)| (*l, m.to_string())).collect();
    known.sort();
    let expected: Vec<(LineId, String)> = ["CN", "PH", "VN"].iter().map(|m| (conf, m.to_string())).collect();
    assert_eq!(known, expected, "CN, taken off the line, is still known on it");
}

/// This node's own envelope is stored only as the next of its chain: one that skips a sequence
/// number, or names another previous envelope, is refused as corrupt and nothing of its batch is
/// written.
fn own_envelopes_follow_their_chain<P, S: Store>(fresh: impl Fn() -> (P, S)) {
    let (_place, store) = fresh();
    let line = line_id(6);
    let mut ph = fixtures::hotline("PH");
    let mut cn = fixtures::hotline("CN");
    let setup = create(&mut ph, &mut [&mut cn], T0, line, "ADMM-Plus");
    let first = send(&mut ph, T0 + 1, line, "ROUTINE", "first");
    let second = send(&mut ph, T0 + 2, line, "ROUTINE", "second");
    assert_eq!(commit(&store, &[&setup]), inserted(1));
    let skipped = store.commit(batch_of(&second)).wait_blocking();
    let err = skipped.expect_err("an own envelope that skips one is refused").to_string();
    assert!(err.contains("does not follow its stored head #1"), "{err}");
    assert!(store.message(&hash(&second)).unwrap().is_none(), "nothing of it is written");
    assert_eq!(commit(&store, &[&first, &second]), inserted(2), "in order, both are stored");
}

/// A line lists each sender's messages in sequence order whatever the order of arrival, and a
/// sender's clock stepping back does not reorder them; the inbox lists by precedence.
fn record_order_and_inbox_order<P, S: Store>(fresh: impl Fn() -> (P, S)) {
    let (_place, store) = fresh();
    let conf = line_id(5);
    let mut ph = fixtures::hotline("PH");
    let mut vn = fixtures::hotline("VN");
    let mut cn = fixtures::hotline("CN");
    let setup = create(&mut ph, &mut [&mut vn, &mut cn], T0, conf, "ADMM-Plus");
    receive(&mut vn, T0 + 1, &setup);
    let p2 = send(&mut ph, T0 + 2_000, conf, "ROUTINE", "PH routine");
    let p3 = send(&mut ph, T0 + 3_000, conf, "FLASH", "PH flash");
    let v1 = send(&mut vn, T0 + 2_500, conf, "ROUTINE", "VN routine");
    let v2 = send(&mut vn, T0 + 3_500, conf, "PRIORITY", "VN priority");
    assert_eq!((p2.envelope.body().seq, p3.envelope.body().seq), (2, 3));

    // Arrival at CN: the setup, then each sender's later message before its earlier one.
    for (n, r) in [&setup, &v2, &p3, &v1, &p2].into_iter().enumerate() {
        let mut got = cn.receive(T0 + 4_000 + n as u64, &r.sender, r.envelope.bytes()).expect("accepted");
        let message = got.remove(0);
        assert_eq!(commit(&store, &[&message]), inserted(1));
        // CN's own `decrypted` receipts take its sequence numbers: stored too, so that its own
        // message below follows its chain.
        assert_eq!(commit(&store, &got.iter().collect::<Vec<_>>()), inserted(got.len()));
    }
    let own = send(&mut cn, T0 + 4_500, conf, "FLASH", "CN flash");
    assert_eq!(commit(&store, &[&own]), inserted(1));

    let rows = line_messages(&store, conf, 100);
    assert_eq!(seqs_of(&rows, "PH"), vec![2, 3]);
    assert_eq!(seqs_of(&rows, "VN"), vec![1, 2]);
    assert_eq!(hashes(&rows), vec![hash(&p2), hash(&v1), hash(&p3), hash(&v2), hash(&own)]);
    let arrival = |h: EnvelopeHash| rows.iter().find(|r| r.hash == h).map(|r| r.arrival).expect("listed");
    assert!(arrival(hash(&p3)) < arrival(hash(&p2)), "PH's seq 3 arrived first and is still listed second");
    assert!(arrival(hash(&v2)) < arrival(hash(&v1)));

    let inbox = |limit| {
        let q = MessageQuery { not_from: Some(code("CN")), limit, by_precedence: true, ..MessageQuery::default() };
        store.messages(&q).unwrap()
    };
    assert_eq!(hashes(&inbox(100)), vec![hash(&p3), hash(&v2), hash(&p2), hash(&v1)]);
    assert_eq!(hashes(&inbox(2)), vec![hash(&p3), hash(&v2)]);

    // PH's clock steps back between its seq 2 and seq 3 on a direct line.
    let direct = line_id(6);
    let d_setup = create(&mut ph, &mut [&mut cn], T0 + 5_000, direct, "ADMM-Plus");
    let d2 = crafted(&mut ph, direct, 2, hash(&d_setup), T0 + 9_000, "ROUTINE", "before the clock step");
    let d3 = crafted(&mut ph, direct, 3, d2.hash(), T0 + 7_000, "ROUTINE", "after the clock step");
    assert_eq!(commit(&store, &[&receive(&mut cn, T0 + 9_100, &d_setup)]), inserted(1));
    for (n, envelope) in [&d2, &d3].into_iter().enumerate() {
        // The message and CN's own `decrypted` receipt for it, which takes CN's next seq.
        let got = cn.receive(T0 + 9_200 + n as u64, &code("PH"), envelope.bytes()).expect("accepted");
        assert_eq!(commit(&store, &got.iter().collect::<Vec<_>>()), inserted(2));
    }
    let c1 = send(&mut cn, T0 + 8_000, direct, "ROUTINE", "CN on the direct line");
    assert_eq!(commit(&store, &[&c1]), inserted(1));

    let rows = line_messages(&store, direct, 100);
    assert_eq!(rows.len(), 3);
    assert_eq!(seqs_of(&rows, "PH"), vec![2, 3], "seq 2 before seq 3 though seq 3 was created earlier");
    assert_eq!(seqs_of(&rows, "CN"), vec![3], "CN's seq 1 and 2 are its receipts");
    // A limit keeps the first messages of that same order.
    for limit in 1..=rows.len() {
        let first = line_messages(&store, direct, limit);
        assert_eq!(hashes(&first), hashes(&rows)[..limit], "limit {limit}");
    }
}

/// Every list pages: read a page at a time from where the page before ended, each list gives
/// every item once, in its order, whatever the page length, and says when none remain; an item
/// that arrives between two pages is neither skipped nor repeated where the order puts it after
/// the place reached (for a list ordered oldest first, at its end), and does not appear where
/// the order puts it before (for one ordered newest first, at its start).
fn every_list_pages<P, S: Store>(fresh: impl Fn() -> (P, S)) {
    let (_place, store) = fresh();
    let conf = line_id(30);
    let direct = line_id(31);
    let mut ph = fixtures::hotline("PH");
    let mut vn = fixtures::hotline("VN");
    let mut cn = fixtures::hotline("CN");
    let setup = create(&mut ph, &mut [&mut vn, &mut cn], T0, conf, "ADMM-Plus");
    receive(&mut vn, T0 + 1, &setup);
    let take = |cn: &mut Hotline, at: u64, r: &Record| {
        let got = cn.receive(at, &r.sender, r.envelope.bytes()).expect("CN accepts the envelope");
        assert_eq!(commit(&store, &got.iter().collect::<Vec<_>>()), inserted(got.len()));
    };
    take(&mut cn, T0 + 2, &setup);
    // The inbox: messages of every precedence from two senders, two of them made at the same
    // millisecond with the same precedence (their arrival orders them).
    let plan = [
        ("PH", 1_000, "ROUTINE"),
        ("VN", 1_000, "ROUTINE"),
        ("PH", 2_000, "FLASH"),
        ("VN", 2_500, "PRIORITY"),
        ("PH", 3_000, "IMMEDIATE"),
        ("VN", 3_000, "FLASH"),
        ("PH", 4_000, "ROUTINE"),
        ("VN", 4_500, "IMMEDIATE"),
    ];
    let mut originals = Vec::new();
    for (n, (sender, at, precedence)) in plan.into_iter().enumerate() {
        let core = if sender == "PH" { &mut ph } else { &mut vn };
        let r = send(core, T0 + at, conf, precedence, &format!("{sender} {n}"));
        take(&mut cn, T0 + 5_000 + n as u64, &r);
        originals.push(hash(&r));
    }
    // The record order of a direct line on which PH's clock stepped back: not the order of any
    // sort key, so a place in it is a message.
    let d_setup = create(&mut ph, &mut [&mut cn], T0 + 6_000, direct, "ADMM-Plus");
    take(&mut cn, T0 + 6_001, &d_setup);
    let mut prev = hash(&d_setup);
    for (seq, at) in [(2, 9_000), (3, 7_000), (4, 8_000), (5, 6_500)] {
        let e = crafted(&mut ph, direct, seq, prev, T0 + at, "ROUTINE", &format!("PH #{seq}"));
        prev = e.hash();
        let got = cn.receive(T0 + 9_100 + seq, &code("PH"), e.bytes()).expect("accepted");
        assert_eq!(commit(&store, &got.iter().collect::<Vec<_>>()), inserted(got.len()));
    }
    for at in [7_500, 8_500] {
        let own = send(&mut cn, T0 + at, direct, "PRIORITY", "CN on the direct line");
        assert_eq!(commit(&store, &[&own]), inserted(1));
    }
    let record = line_messages(&store, direct, 100);
    assert_eq!(seqs_of(&record, "PH"), vec![2, 3, 4, 5]);
    assert_ne!(
        hashes(&record),
        {
            let mut by_time = record.clone();
            by_time.sort_by_key(|r| (r.created_ms, r.sender.clone(), r.seq));
            hashes(&by_time)
        },
        "the record order here is not the order of times"
    );

    // Decisions and translations, some made at the same millisecond (their ids order them).
    for (n, at) in [10_000, 10_000, 10_500, 11_000, 11_000].into_iter().enumerate() {
        let d = adi_core::Decision {
            text: format!("decision {n}"),
            parties: Vec::new(),
            deadline_s: None,
            supersedes: None,
        };
        let r = cn.propose_decision(T0 + at, conf, d).expect("CN proposes");
        assert_eq!(commit(&store, &[&r]), inserted(1));
    }
    for (n, at) in [12_000, 12_000, 12_500, 13_000].into_iter().enumerate() {
        let t = adi_core::Translation {
            original: originals[0],
            language: "en".into(),
            text: format!("translation {n}"),
            translator: "translator-cn".into(),
            reviewed_by: None,
            revises: None,
        };
        let r = cn.translate(T0 + at, conf, t).expect("CN translates");
        assert_eq!(commit(&store, &[&r]), inserted(1));
    }
    // Checkpoints by two signers, two at the same time and size by one signer over different
    // roots (a signer that forked its log).
    let mut checkpoints = Vec::new();
    for (signer, size, root, at) in
        [(&cn, 3, 1, 20_000), (&ph, 3, 2, 20_000), (&cn, 3, 3, 20_000), (&cn, 4, 4, 21_000), (&ph, 5, 5, 19_000)]
    {
        checkpoints.push(signer.sign_checkpoint(conf, size, [root; 32], Vec::new(), T0 + at).expect("signed"));
    }
    let batch = WriteBatch { checkpoints, ..WriteBatch::default() };
    store.commit(batch).wait_blocking().expect("the checkpoints commit");
    // Alarms, some of them cleared; drafts; evidence.
    let alarm = |n: u8, op: adi_core::AlarmOp| adi_core::AlarmChange {
        kind: adi_core::AlarmKind::LinkNoAnswer,
        op,
        line: line_id(100 + n),
        member: code("PH"),
        message: None,
        at_ms: T0 + 30_000 + u64::from(n),
        detail: format!("alarm {n}"),
        addressed_to: Vec::new(),
    };
    let mut alarms: Vec<_> = (0..7).map(|n| alarm(n, adi_core::AlarmOp::Raise)).collect();
    alarms.extend([alarm(2, adi_core::AlarmOp::Clear), alarm(5, adi_core::AlarmOp::Clear)]);
    store.commit(WriteBatch { alarms, ..WriteBatch::default() }).wait_blocking().expect("the alarms commit");
    for n in 0..6 {
        let json = format!("{{\"subject\": \"draft {n}\"}}");
        store.add_draft(conf, json, "duty-cn".into(), T0 + 40_000 + n).wait_blocking().expect("the draft is held");
    }
    let evidence = (0..5)
        .map(|n| adi_core::Evidence {
            line: conf,
            member: code("PH"),
            at_ms: T0 + 50_000 + n,
            detail: format!("evidence {n}"),
            held: vec![n as u8; 3],
            offered: vec![n as u8; 4],
        })
        .collect();
    store.commit(WriteBatch { evidence, ..WriteBatch::default() }).wait_blocking().expect("the evidence commits");

    // Every list, walked.
    let messages = |line: Option<LineId>, not_from: Option<MemberCode>, by_precedence: bool| {
        let store = &store;
        move |page: Page<MessageCursor>| {
            let q = MessageQuery {
                line,
                not_from: not_from.clone(),
                limit: page.limit,
                by_precedence,
                after: page.from,
                waiting_for: None,
            };
            store.messages(&q).expect("messages")
        }
    };
    let inbox_key = |r: &MessageRow| {
        let precedence = r.precedence.as_deref().and_then(Precedence::parse).expect("a message's precedence");
        MessageCursor::Inbox(InboxKey { priority: precedence.priority(), created_ms: r.created_ms, arrival: r.arrival })
    };
    let by_hash = |r: &MessageRow| r.hash;
    let inbox = messages(None, Some(code("CN")), true);
    assert_eq!(inbox(Page::all()).len(), plan.len() + 4, "the inbox holds every message from PH and VN");
    check_walks("the inbox", &inbox, inbox_key, by_hash);
    for line in [conf, direct] {
        check_walks(
            "a line's messages",
            messages(Some(line), None, false),
            |r| MessageCursor::Message(r.hash),
            by_hash,
        );
    }
    let time_key = |created_ms: u64, id: EnvelopeHash| TimeKey { created_ms, id };
    let decisions = |page| store.decisions(Some(&conf), None, page).expect("decisions");
    assert_eq!(decisions(Page::all()).len(), 5);
    check_walks("decisions", decisions, |d| time_key(d.created_ms, d.id), |d| d.id);
    let translations = |page| store.translations(Some(&originals[0]), None, page).expect("translations");
    assert_eq!(translations(Page::all()).len(), 4);
    check_walks("translations", translations, |t| time_key(t.created_ms, t.hash), |t| t.hash);
    let checkpoints = |page| store.checkpoints(&conf, None, page).expect("checkpoints");
    let listed: Vec<(u64, u64, String, u8)> = checkpoints(Page::all())
        .iter()
        .map(CheckpointKey::of)
        .map(|k| (k.time_ms - T0, k.size, k.signer, k.root[0]))
        .collect();
    let expected =
        [(19_000, 5, "PH", 5), (20_000, 3, "CN", 1), (20_000, 3, "CN", 3), (20_000, 3, "PH", 2), (21_000, 4, "CN", 4)];
    assert_eq!(
        listed,
        expected.map(|(t, n, s, r)| (t, n, s.to_string(), r)),
        "checkpoints by time, size, signer, root"
    );
    check_walks("checkpoints", checkpoints, CheckpointKey::of, CheckpointKey::of);
    let open_alarms = |page| store.alarms(true, page).expect("alarms");
    let every_alarm = |page| store.alarms(false, page).expect("alarms");
    assert_eq!((open_alarms(Page::all()).len(), every_alarm(Page::all()).len()), (5, 7));
    check_walks("open alarms", open_alarms, |a| a.id, |a| a.id);
    check_walks("alarms", every_alarm, |a| a.id, |a| a.id);
    let ids: Vec<u64> = every_alarm(Page::all()).iter().map(|a| a.id).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "alarms newest first: {ids:?}");
    check_walks("drafts", |page| store.drafts(true, page).expect("drafts"), |d| d.id, |d| d.id);
    check_walks("evidence", |page| store.evidence(page).expect("evidence"), |e| e.0, |e| e.0);
    assert_eq!(store.evidence(Page::all()).unwrap().len(), 5);

    // A message that arrives between two pages of the record order, after the place reached,
    // is on a later page; nothing is read twice.
    let line = messages(Some(direct), None, false);
    let first = line(Page { from: None, limit: 2 });
    let late = send(&mut cn, T0 + 60_000, direct, "ROUTINE", "late");
    assert_eq!(commit(&store, &[&late]), inserted(1));
    let rest = line(Page { from: Some(MessageCursor::Message(first[1].hash)), limit: 100 });
    let mut walked = hashes(&first);
    walked.extend(hashes(&rest));
    assert_eq!(walked, hashes(&line(Page::all())), "the late message is read once, at the end");
    assert_eq!(walked.last(), Some(&hash(&late)));
    // An alarm raised between two pages of a list ordered newest first comes before the place
    // reached: it is on no later page, and nothing is read twice.
    let first = every_alarm(Page { from: None, limit: 3 });
    store
        .commit(WriteBatch { alarms: vec![alarm(50, adi_core::AlarmOp::Raise)], ..WriteBatch::default() })
        .wait_blocking()
        .expect("the alarm commits");
    let rest = every_alarm(Page { from: first.last().map(|a| a.id), limit: 100 });
    let walked: Vec<u64> = first.iter().chain(&rest).map(|a| a.id).collect();
    assert_eq!(walked, ids, "the alarms as they were when the walk began");

    // A cursor of the other order is refused, not taken for a place it is not.
    let q = MessageQuery {
        limit: 10,
        by_precedence: true,
        after: Some(MessageCursor::Message(hash(&late))),
        ..MessageQuery::default()
    };
    assert!(store.messages(&q).is_err());
    let q =
        MessageQuery { line: Some(direct), limit: 10, after: Some(inbox_key(&record[0])), ..MessageQuery::default() };
    assert!(store.messages(&q).is_err());
}

/// Operators are found by the hash of their token; adding a name again replaces its token and
/// role; any change to an operator's credentials, or its removal, ends its console sessions.
fn operators<P, S: Store>(fresh: impl Fn() -> (P, S)) {
    let (_place, store) = fresh();
    let duty = Operator { name: "duty-ph".into(), role: adi_core::Role::Duty, created_ms: T0 };
    let admin = Operator { name: "admin-ph".into(), role: adi_core::Role::Admin, created_ms: T0 + 1 };
    store.add_operator(&duty, [1; 32], None).unwrap();
    store.add_operator(&admin, [2; 32], Some(T0 + 1_000)).unwrap();
    assert_eq!(store.operator_by_token(&[1; 32]).unwrap(), Some((duty.clone(), None)));
    assert_eq!(store.operator_by_token(&[2; 32]).unwrap(), Some((admin.clone(), Some(T0 + 1_000))));
    assert_eq!(store.operator_by_token(&[9; 32]).unwrap(), None);

    let session =
        |id: u8, name: &str| store.start_session([id; 32], name.into(), "csrf".into(), T0).wait_blocking().unwrap();
    session(1, "duty-ph");
    session(2, "admin-ph");
    store.add_operator(&duty, [3; 32], Some(T0 + 5)).unwrap();
    assert_eq!(store.operator_by_token(&[1; 32]).unwrap(), None, "the old token no longer works");
    assert_eq!(store.operator_by_token(&[3; 32]).unwrap(), Some((duty.clone(), Some(T0 + 5))));
    assert_eq!(store.operator_by_token(&[2; 32]).unwrap().map(|o| o.0), Some(admin.clone()), "others keep theirs");
    assert!(store.session(&[1; 32]).unwrap().is_none(), "a new token ends the operator's sessions");
    assert!(store.session(&[2; 32]).unwrap().is_some(), "and no one else's");

    // A new password ends its sessions too.
    session(4, "duty-ph");
    assert!(store.set_password("duty-ph", "$argon2id$placeholder").unwrap());
    assert!(store.session(&[4; 32]).unwrap().is_none());
    assert!(!store.set_password("nobody", "$argon2id$placeholder").unwrap());

    // The list shows each operator with its token's expiry, its password and its sessions.
    let listed = store.operators().unwrap();
    let names: Vec<(&str, Option<u64>, bool, u64)> =
        listed.iter().map(|r| (r.operator.name.as_str(), r.token_expires_ms, r.has_password, r.sessions)).collect();
    assert_eq!(names, [("admin-ph", Some(T0 + 1_000), false, 1), ("duty-ph", Some(T0 + 5), true, 0)]);

    // A token belongs to one operator only.
    let other = Operator { name: "other".into(), role: adi_core::Role::Duty, created_ms: T0 + 2 };
    assert!(store.add_operator(&other, [3; 32], None).is_err());
    assert_eq!(store.operator_by_token(&[3; 32]).unwrap().map(|o| o.0), Some(duty));

    // Removed: its token and its sessions are gone.
    assert!(store.remove_operator("admin-ph").unwrap());
    assert!(!store.remove_operator("admin-ph").unwrap(), "removed once");
    assert_eq!(store.operator_by_token(&[2; 32]).unwrap(), None);
    assert!(store.session(&[2; 32]).unwrap().is_none());
    assert_eq!(store.operators().unwrap().len(), 1);
}

/// A job that fails (a message on a line the store does not hold) fails alone: jobs submitted
/// with it commit, and its own batch leaves nothing behind. `hold_writes` may keep the backend
/// from writing while the jobs are submitted (so that they share a transaction) until the value
/// it returns is dropped.
fn failed_job_does_not_poison_its_group<P, S: Store, H>(
    fresh: impl Fn() -> (P, S),
    hold_writes: impl FnOnce(&S) -> H,
) -> (P, S) {
    let (place, store) = fresh();
    let known = line_id(7);
    let unknown = line_id(8);
    let mut ph = fixtures::hotline("PH");
    let mut cn = fixtures::hotline("CN");
    // VN never receives here: its core only gives the KeyPackage the second line is made with.
    let mut vn = fixtures::hotline("VN");
    let known_setup = create(&mut ph, &mut [&mut cn], T0, known, "ADMM-Plus");
    let unknown_setup = create(&mut ph, &mut [&mut vn, &mut cn], T0 + 1, unknown, "ADMM-Plus");
    let k1 = send(&mut ph, T0 + 2, known, "ROUTINE", "known one");
    let u1 = send(&mut ph, T0 + 3, unknown, "FLASH", "unknown one");
    let k2 = send(&mut ph, T0 + 4, known, "ROUTINE", "known two");
    let k3 = send(&mut ph, T0 + 5, known, "ROUTINE", "known three");
    let [known_setup, _, k1, u1, k2, k3] =
        [&known_setup, &unknown_setup, &k1, &u1, &k2, &k3].map(|r| receive(&mut cn, T0 + 10, r));
    assert_eq!(commit(&store, &[&known_setup]), inserted(1));

    let held = hold_writes(&store);
    let first = store.commit(batch_of(&k1));
    let orphan = store.commit(batch_of(&u1));
    let mixed = store.commit(WriteBatch { records: vec![k2.clone(), u1.clone()], ..WriteBatch::default() });
    let last = store.commit(batch_of(&k3));
    drop(held);

    assert_eq!(first.wait_blocking().expect("the job before the failed one commits"), inserted(1));
    assert!(orphan.wait_blocking().is_err(), "a message on an unknown line is refused");
    assert!(mixed.wait_blocking().is_err(), "a batch fails as a whole");
    assert_eq!(last.wait_blocking().expect("the job after the failed one commits"), inserted(1));

    assert_eq!(hashes(&line_messages(&store, known, 100)), vec![hash(&k1), hash(&k3)]);
    assert!(store.message(&hash(&u1)).unwrap().is_none());
    assert!(store.message(&hash(&k2)).unwrap().is_none(), "the failed batch left nothing behind");
    assert_eq!(store.load(&code("PH")).unwrap().lines, vec![known_setup.line.clone()]);
    assert_eq!(commit(&store, &[&k2]), inserted(1), "the record of the failed batch can be committed later");
    assert_eq!(hashes(&line_messages(&store, known, 100)), vec![hash(&k1), hash(&k2), hash(&k3)]);
    (place, store)
}

/// Roster versions applied are read back in order with the time each was applied, and a start
/// never takes up a time earlier than the latest version applied.
fn roster_versions_keep_when_they_were_applied<P, S: Store>(make: impl Fn() -> (P, S), reopen: impl Fn(&P) -> S) {
    let (dir, store) = make();
    assert!(store.roster_applied_times().expect("read").is_empty());
    for (number, at) in [(2u64, 5_000u64), (3, 9_000)] {
        let applied = adi_store::RosterApplied {
            number,
            hash: [number as u8; 32],
            body: format!("{{\"number\":{number}}}").into_bytes(),
            actor: "member SG".into(),
            detail: format!("roster version {number} took effect"),
            now_ms: at,
        };
        assert!(store.roster_version_applied(applied).wait_blocking().expect("applied"));
    }
    assert_eq!(store.roster_applied_times().expect("read"), vec![(2, 5_000), (3, 9_000)]);
    drop(store);
    let store = reopen(&dir);
    assert_eq!(store.roster_applied_times().expect("read"), vec![(2, 5_000), (3, 9_000)]);
    assert!(store.load(&code("SG")).expect("load").latest_ms >= 9_000);
}

// ---------------------------------------------------------------------------------------------
// SQLite
// ---------------------------------------------------------------------------------------------

#[test]
fn sqlite_roster_versions_keep_when_they_were_applied() {
    roster_versions_keep_when_they_were_applied(sqlite, sqlite_reopen);
}

fn sqlite() -> (TempDir, SqlStore) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = sqlite_reopen(&dir);
    (dir, store)
}

fn sqlite_reopen(dir: &TempDir) -> SqlStore {
    SqlStore::open(StoreConfig::new(dir.path().join("adi.db"), MASTER_KEY)).expect("the store opens")
}

#[test]
fn sqlite_commit_outcomes_and_idempotence() {
    commit_outcomes_and_idempotence(sqlite);
}

#[test]
fn sqlite_outbox_order_and_settlement() {
    outbox_order_and_settlement(sqlite);
}

#[test]
fn sqlite_answers_keep_their_operator() {
    answers_keep_their_operator(sqlite);
}

#[test]
fn sqlite_report_rows_read_traffic_and_answers() {
    report_rows_read_traffic_and_answers(sqlite);
}

#[test]
fn sqlite_retention_prunes_only_archived_content() {
    retention_prunes_only_archived_content(sqlite);
}

#[test]
fn sqlite_files_travel_in_chunks() {
    files_travel_in_chunks(sqlite);
}

#[test]
fn sqlite_durable_across_reopen() {
    durable_across_reopen(sqlite, sqlite_reopen);
}

#[test]
fn sqlite_members_taken_off_are_remembered() {
    members_taken_off_are_remembered(sqlite, sqlite_reopen);
}

#[test]
fn sqlite_own_envelopes_follow_their_chain() {
    own_envelopes_follow_their_chain(sqlite);
}

/// Read back, a chain's head must be the envelope its row names: bytes swapped under another
/// envelope's row make the load fail as corrupt instead of rebuilding a core on them (the sealed
/// bytes, bound to their row, no longer open there).
#[test]
fn sqlite_a_head_whose_bytes_are_another_envelopes_fails_the_load() {
    let (dir, store) = sqlite();
    let line = line_id(9);
    let mut ph = fixtures::hotline("PH");
    let mut cn = fixtures::hotline("CN");
    let setup = create(&mut ph, &mut [&mut cn], T0, line, "ADMM-Plus");
    let first = send(&mut ph, T0 + 1, line, "ROUTINE", "first");
    assert_eq!(commit(&store, &[&setup, &first]), inserted(2));
    store.load(&code("PH")).expect("the store loads");
    drop(store);
    let c = rusqlite::Connection::open(dir.path().join("adi.db")).unwrap();
    c.execute(
        "UPDATE envelopes SET bytes = (SELECT bytes FROM envelopes WHERE hash = ?1) WHERE hash = ?2",
        rusqlite::params![&hash(&setup).0[..], &hash(&first).0[..]],
    )
    .unwrap();
    drop(c);
    let store = sqlite_reopen(&dir);
    let err = store.load(&code("PH")).expect_err("a head whose bytes are another envelope's").to_string();
    assert!(err.contains("stored data is corrupt") && err.contains("envelopes.bytes"), "{err}");
}

/// A stored role, recipient state or alarm kind that is none reads back as corruption, never as
/// some default.
#[test]
fn sqlite_an_unknown_stored_role_state_or_kind_is_corruption() {
    let (dir, store) = sqlite();
    let duty = Operator { name: "duty-ph".into(), role: adi_core::Role::Duty, created_ms: T0 };
    store.add_operator(&duty, [1; 32], None).unwrap();
    let c = rusqlite::Connection::open(dir.path().join("adi.db")).unwrap();
    c.execute("UPDATE operators SET role = 'captain' WHERE name = 'duty-ph'", []).unwrap();
    let err = store.operator_by_token(&[1; 32]).expect_err("a role no operator can have").to_string();
    assert!(err.contains("stored data is corrupt") && err.contains("'captain' is no role"), "{err}");

    // So do a recipient's state and an alarm's kind.
    let line = line_id(10);
    let mut ph = fixtures::hotline("PH");
    let mut cn = fixtures::hotline("CN");
    let setup = create(&mut ph, &mut [&mut cn], T0, line, "ADMM-Plus");
    let flash = send(&mut ph, T0 + 1, line, "FLASH", "to CN");
    assert_eq!(commit(&store, &[&setup, &flash]), inserted(2));
    let alarm = adi_core::AlarmChange {
        kind: adi_core::AlarmKind::Clock,
        op: adi_core::AlarmOp::Raise,
        line,
        member: code("CN"),
        message: None,
        at_ms: T0 + 2,
        detail: "CN's clock".into(),
        addressed_to: Vec::new(),
    };
    store.commit(WriteBatch { alarms: vec![alarm], ..WriteBatch::default() }).wait_blocking().unwrap();
    assert_eq!(store.recipients(&hash(&flash)).unwrap()[0].progress.state, adi_core::RecipientState::Sent);
    assert_eq!(store.alarms(true, Page::first(10)).unwrap()[0].kind, adi_core::AlarmKind::Clock);
    c.execute("UPDATE recipients SET state = 'lost'", []).unwrap();
    c.execute("UPDATE alarms SET kind = 'weather'", []).unwrap();
    let err = store.recipients(&hash(&flash)).expect_err("a state no recipient can be in").to_string();
    assert!(err.contains("'lost' is no state"), "{err}");
    let err = store.alarms(true, Page::first(10)).expect_err("a kind no alarm has").to_string();
    assert!(err.contains("'weather' is no kind"), "{err}");
}

#[test]
fn sqlite_record_order_and_inbox_order() {
    record_order_and_inbox_order(sqlite);
}

#[test]
fn sqlite_every_list_pages() {
    every_list_pages(sqlite);
}

#[test]
fn sqlite_operators() {
    operators(sqlite);
}

#[test]
fn sqlite_failed_job_does_not_poison_its_group() {
    failed_job_does_not_poison_its_group(sqlite, |_| ());
}

/// Another connection holding the write lock, as an operator command beside the node does.
struct WriteLock(rusqlite::Connection);

impl WriteLock {
    fn hold(path: &Path) -> WriteLock {
        let conn = rusqlite::Connection::open(path).expect("a second connection");
        conn.execute_batch("BEGIN IMMEDIATE").expect("the write lock");
        WriteLock(conn)
    }
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        // Long enough for the writer to meet the lock, far below its busy timeout.
        thread::sleep(Duration::from_millis(300));
        self.0.execute_batch("ROLLBACK").expect("the write lock is released");
    }
}

/// The failing job shares its transaction with others: the writer waits for the lock held by
/// another connection, and every job submitted meanwhile is committed in at most two transactions
/// (the one that met the lock and the one after), so the failed job, second of four, shared one.
#[test]
fn sqlite_failed_job_shares_a_transaction_without_poisoning_it() {
    let before = Cell::new(None);
    let (_dir, store) = failed_job_does_not_poison_its_group(sqlite, |store| {
        before.set(Some(store.commit_stats()));
        WriteLock::hold(store.path().expect("a SQLite store"))
    });
    let before = before.get().expect("stats before");
    let after = store.commit_stats();
    // The four jobs, then the one committing the failed batch's record alone.
    assert_eq!(after.jobs - before.jobs, 5);
    assert!(after.transactions - before.transactions <= 3, "{before:?} -> {after:?}");
}

/// Concurrent writers share transactions, and each hears "done" only once its write is readable.
#[test]
fn sqlite_group_commit() {
    const LINES: u8 = 8;
    const PER_LINE: u64 = 50;
    let (_dir, store) = sqlite();
    let mut ph = fixtures::hotline("PH");
    // VN and CN never receive here: their cores only give the KeyPackages the lines are made with.
    let (mut vn, mut cn) = (fixtures::hotline("VN"), fixtures::hotline("CN"));
    let setups: Vec<Record> = (0..LINES)
        .map(|i| create(&mut ph, &mut [&mut vn, &mut cn], T0 + i as u64, line_id(100 + i), "ADMM-Plus"))
        .collect();
    let per_line: Vec<Vec<Record>> = (0..LINES)
        .map(|i| {
            (0..PER_LINE)
                .map(|n| {
                    let at = T0 + 1_000 + i as u64 * PER_LINE + n;
                    send(&mut ph, at, line_id(100 + i), "ROUTINE", &format!("line {i} message {n}"))
                })
                .collect()
        })
        .collect();
    assert_eq!(commit(&store, &setups.iter().collect::<Vec<_>>()), inserted(setups.len()));

    let before = store.commit_stats();
    let start = Barrier::new(LINES as usize);
    thread::scope(|s| {
        for records in &per_line {
            let (store, start) = (&store, &start);
            s.spawn(move || {
                start.wait();
                for r in records {
                    let outcome = store.commit(batch_of(r)).wait_blocking();
                    assert_eq!(outcome.expect("committed"), inserted(1));
                    assert!(store.message(&hash(r)).unwrap().is_some(), "readable once committed");
                }
            });
        }
    });
    let after = store.commit_stats();
    let jobs = after.jobs - before.jobs;
    let transactions = after.transactions - before.transactions;
    assert_eq!(jobs, LINES as u64 * PER_LINE);
    assert!(transactions < jobs, "{jobs} jobs in {transactions} transactions: none grouped");

    let other = SqlStore::open(StoreConfig::new(store.path().expect("a SQLite store"), MASTER_KEY))
        .expect("a second store on the same file");
    assert_eq!(all_messages(&other).len(), LINES as usize * PER_LINE as usize);
    let loaded = other.load(&code("PH")).unwrap();
    assert_eq!(loaded.lines.len(), setups.len());
    let expected: Vec<OwnHead> =
        per_line.iter().map(|records| records.last().expect("records")).map(|r| head(r.line.id, "PH", r)).collect();
    assert_eq!(sorted_heads(loaded.heads), sorted_heads(expected));
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------------

fn postgres() -> (PgDatabase, SqlStore) {
    let db = PgDatabase::create();
    let store = postgres_reopen(&db);
    (db, store)
}

fn postgres_reopen(db: &PgDatabase) -> SqlStore {
    SqlStore::open(StoreConfig::postgres(db.url(), MASTER_KEY)).expect("the store opens")
}

#[test]
fn postgres_roster_versions_keep_when_they_were_applied() {
    roster_versions_keep_when_they_were_applied(postgres, postgres_reopen);
}

#[test]
fn postgres_commit_outcomes_and_idempotence() {
    commit_outcomes_and_idempotence(postgres);
}

#[test]
fn postgres_outbox_order_and_settlement() {
    outbox_order_and_settlement(postgres);
}

#[test]
fn postgres_answers_keep_their_operator() {
    answers_keep_their_operator(postgres);
}

#[test]
fn postgres_report_rows_read_traffic_and_answers() {
    report_rows_read_traffic_and_answers(postgres);
}

#[test]
fn postgres_retention_prunes_only_archived_content() {
    retention_prunes_only_archived_content(postgres);
}

#[test]
fn postgres_files_travel_in_chunks() {
    files_travel_in_chunks(postgres);
}

#[test]
fn postgres_durable_across_reopen() {
    durable_across_reopen(postgres, postgres_reopen);
}

#[test]
fn postgres_members_taken_off_are_remembered() {
    members_taken_off_are_remembered(postgres, postgres_reopen);
}

#[test]
fn postgres_own_envelopes_follow_their_chain() {
    own_envelopes_follow_their_chain(postgres);
}

#[test]
fn postgres_record_order_and_inbox_order() {
    record_order_and_inbox_order(postgres);
}

#[test]
fn postgres_every_list_pages() {
    every_list_pages(postgres);
}

#[test]
fn postgres_operators() {
    operators(postgres);
}

#[test]
fn postgres_failed_job_does_not_poison_its_group() {
    failed_job_does_not_poison_its_group(postgres, |_| ());
}

/// Two stores on one database, as the two nodes of an active/standby pair: one takes the lease;
/// the other cannot while it runs, and takes it once it ran out; from then on the former holder's
/// writes are refused and leave nothing behind, while the new holder's commit.
#[test]
fn postgres_a_former_lease_holder_commits_nothing() {
    const LEASE_MS: u64 = 400;
    let (db, a) = postgres();
    let b = postgres_reopen(&db);
    let first = a.claim_lease("a 1", LEASE_MS, "http://a").expect("claim").expect("a free lease is taken");
    assert!(b.claim_lease("b 1", LEASE_MS, "http://b").expect("claim").is_none(), "a lease held is not taken");
    let holder = b.lease_holder().expect("holder");
    assert_eq!((holder.holder.as_str(), holder.token, holder.api_url.as_str()), ("a 1", first.token, "http://a"));
    assert!(holder.remaining_ms > 0 && holder.remaining_ms <= LEASE_MS, "{holder:?}");
    a.write_under_lease(first.token, LEASE_MS).expect("fenced writes");

    let line = line_id(40);
    let mut ph = fixtures::hotline("PH");
    let mut cn = fixtures::hotline("CN");
    let setup = create(&mut ph, &mut [&mut cn], T0, line, "ADMM-Plus");
    let one = send(&mut ph, T0 + 1, line, "ROUTINE", "under the lease");
    let two = send(&mut ph, T0 + 2, line, "ROUTINE", "after the lease");
    assert_eq!(commit(&a, &[&setup, &one]), inserted(2), "the holder writes");
    assert!(a.renew_lease("a 1", first.token, LEASE_MS).expect("renew").is_some());

    // The holder stops renewing (paused, cut off): its lease runs out, and the other takes it.
    thread::sleep(Duration::from_millis(LEASE_MS + 100));
    let second = b.claim_lease("b 1", LEASE_MS, "http://b").expect("claim").expect("a lease run out is taken");
    assert!(second.token > first.token, "{first:?} then {second:?}");
    b.write_under_lease(second.token, LEASE_MS).expect("fenced writes");

    let refused = a.commit(batch_of(&two)).wait_blocking();
    assert!(matches!(refused, Err(adi_store::StoreError::Unwritable { .. })), "{refused:?}");
    assert!(a.renew_lease("a 1", first.token, LEASE_MS).expect("renew").is_none(), "a lost lease is not renewed");
    assert!(b.message(&hash(&two)).expect("read").is_none(), "nothing of the former holder's write landed");
    assert_eq!(commit(&b, &[&two]), inserted(1), "the new holder writes");
    assert_eq!(hashes(&line_messages(&b, line, 10)), vec![hash(&one), hash(&two)]);
}

/// The database ends the store's connections and takes no new ones for a while (a restart, a
/// fail-over of the server, an administrator): the write fails as a fault and writes are refused;
/// once the database takes connections again, the runtime's probe opens a new one, and resumed,
/// the store writes and reads again. A connection lost between writes is opened again unseen.
#[test]
fn postgres_connections_lost_are_opened_again() {
    let (db, store) = postgres();
    let line = line_id(41);
    let mut ph = fixtures::hotline("PH");
    let mut cn = fixtures::hotline("CN");
    let setup = create(&mut ph, &mut [&mut cn], T0, line, "ADMM-Plus");
    let one = send(&mut ph, T0 + 1, line, "ROUTINE", "before");
    let two = send(&mut ph, T0 + 2, line, "ROUTINE", "during");
    let three = send(&mut ph, T0 + 3, line, "ROUTINE", "after");
    assert_eq!(commit(&store, &[&setup, &one]), inserted(2));
    let terminate = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()",
        db.name
    );

    // Ended between writes: the next write opens a new connection, whether the driver has seen
    // the old one end or finds it closed as the transaction begins.
    pg::pg_admin(&terminate);
    assert_eq!(commit(&store, &[&two]), inserted(1));

    // Ended and refused: the write fails, and writes stay refused until resumed.
    pg::pg_admin(&format!("ALTER DATABASE {} ALLOW_CONNECTIONS false", db.name));
    pg::pg_admin(&terminate);
    let failed = store.commit(batch_of(&three)).wait_blocking();
    let Err(adi_store::StoreError::Unwritable { generation, .. }) = failed else {
        panic!("a write while the database takes no connection: {failed:?}")
    };
    assert!(store.probe(Vec::new()).wait_blocking().is_err(), "the probe while the database takes no connection");
    pg::pg_admin(&format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", db.name));
    assert!(store.commit(batch_of(&three)).wait_blocking().is_err(), "a write before the store is resumed");
    store.probe(Vec::new()).wait_blocking().expect("the probe opens a new connection");
    assert!(store.resume() > generation);
    assert_eq!(commit(&store, &[&three]), inserted(1));
    // A reader whose connection was lost is dropped from the pool; the next read opens another.
    let _ = store.message(&hash(&three));
    assert!(store.message(&hash(&three)).expect("read on a new connection").is_some());
    assert_eq!(hashes(&line_messages(&store, line, 10)), vec![hash(&one), hash(&two), hash(&three)]);
}

/// On PostgreSQL as on SQLite, what the store seals is sealed before it reaches the database: the
/// server holds no subject, body or MLS secret in the clear, and they read back whole.
#[test]
fn postgres_contents_are_sealed_in_the_database() {
    let (db, store) = postgres();
    let line = line_id(42);
    let mut ph = fixtures::hotline("PH");
    let mut cn = fixtures::hotline("CN");
    let setup = create(&mut ph, &mut [&mut cn], T0, line, "ADMM-Plus");
    let flash = send(&mut ph, T0 + 1, line, "FLASH", "Vessel sighted at the reef");
    let secret = adi_mls::StateDelta { put: vec![(b"k".to_vec(), b"an epoch secret".to_vec())], delete: Vec::new() };
    assert_eq!(commit_with_mls(&store, &[&setup, &flash], Some(secret)), inserted(2));
    let row = store.message(&hash(&flash)).expect("read").expect("the message");
    assert_eq!(row.subject.as_deref(), Some("Vessel sighted at the reef"));

    let url = db.url();
    let stored: Vec<Vec<u8>> = [
        "SELECT subject FROM envelopes WHERE subject IS NOT NULL",
        "SELECT body FROM envelopes WHERE body IS NOT NULL",
        "SELECT bytes FROM envelopes",
        "SELECT value FROM mls_entries",
        "SELECT title FROM lines",
    ]
    .iter()
    .flat_map(|sql| pg::query_bytes(&url, sql))
    .collect();
    assert!(stored.len() >= 5, "{} values read", stored.len());
    for plain in [&b"Vessel sighted"[..], b"an epoch secret", b"line 42"] {
        assert!(!stored.iter().any(|v| v.windows(plain.len()).any(|w| w == plain)), "{:?} in the clear", plain);
    }
}
