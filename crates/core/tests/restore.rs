//! A core put back from a backup taken while its member ran: it takes back, from a peer, the
//! envelopes it signed after the backup, spends again the MLS keys they used (also at an epoch a
//! later commit reaches), answers nothing twice, and refuses whatever it did not sign itself.

use adi_core::fixtures::{config, hotline, key_packages_of, WORLD};
use adi_core::{Content, Draft, Hotline, MemberCode, NewLine, OwnHead, Record, Restored};
use adi_wire::LineId;

fn code(s: &str) -> MemberCode {
    MemberCode::parse(s).unwrap()
}

fn draft(subject: &str) -> Draft {
    Draft { precedence: "ROUTINE".into(), subject: subject.into(), body: "body".into(), ..Draft::default() }
}

const LINE: LineId = LineId([7; 16]);

/// What CN's store held when its backup was taken: the line, both chains' heads, its MLS state.
fn backup_of(cn: &Hotline, setup: &Record) -> Restored {
    let heads = ["PH", "CN"]
        .iter()
        .filter_map(|m| {
            cn.head(&LINE, &code(m)).map(|(seq, hash)| OwnHead {
                line: LINE,
                sender: code(m),
                seq,
                hash,
                epoch: cn.epoch(&LINE).unwrap(),
            })
        })
        .collect();
    Restored {
        lines: vec![setup.line.clone()],
        heads,
        mls_state: adi_mls::decode_state(&cn.mls_snapshot().unwrap()).unwrap().into_iter().collect(),
        ..Restored::default()
    }
}

fn restored(backup: &Restored) -> Hotline {
    Hotline::new(config("CN", WORLD[2].2), backup.clone(), 100).unwrap()
}

/// PH (the line's home member) and CN exchange messages; CN's store is backed up; then both go on
/// across a key update of PH's. Returns the backup, CN's own records after it, PH's envelopes CN
/// took after it, and PH's core.
struct World {
    backup: Restored,
    cn_after: Vec<Record>,
    ph_after: Vec<Vec<u8>>,
    ph: Hotline,
    cn: Hotline,
}

fn world() -> World {
    let (mut ph, mut cn) = (hotline("PH"), hotline("CN"));
    let kps = key_packages_of(&mut [&mut cn]);
    let new = NewLine { members: vec!["PH".into(), "CN".into()], scope: "ADMM-Plus".into(), title: None };
    let setup = ph.create_line(1, LINE, new, kps).unwrap();
    cn.receive(2, &code("PH"), setup.envelope.bytes()).unwrap();
    let m1 = ph.send(3, LINE, draft("before"), None).unwrap();
    let at_cn = cn.receive(4, &code("PH"), m1.envelope.bytes()).unwrap();
    ph.receive(5, &code("CN"), at_cn[1].envelope.bytes()).unwrap();
    let backup = backup_of(&cn, &setup);

    let mut cn_after = Vec::new();
    let mut ph_after = Vec::new();
    // PH's message, answered by CN; CN's message, answered by PH.
    let m2 = ph.send(10, LINE, draft("after"), None).unwrap();
    ph_after.push(m2.envelope.bytes().to_vec());
    let mut at_cn = cn.receive(11, &code("PH"), m2.envelope.bytes()).unwrap();
    let r2 = at_cn.remove(1);
    ph.receive(12, &code("CN"), r2.envelope.bytes()).unwrap();
    cn_after.push(r2);
    let c1 = cn.send(13, LINE, draft("from CN"), None).unwrap();
    let at_ph = ph.receive(14, &code("CN"), c1.envelope.bytes()).unwrap();
    cn_after.push(c1);
    ph_after.push(at_ph[1].envelope.bytes().to_vec());
    cn.receive(15, &code("PH"), at_ph[1].envelope.bytes()).unwrap();
    // PH's key update moves the line to epoch 2; CN sends there.
    let commit = ph.update_keys(16, LINE).unwrap();
    cn.receive(17, &code("PH"), commit.envelope.bytes()).unwrap();
    ph_after.push(commit.envelope.bytes().to_vec());
    assert_eq!(cn.epoch(&LINE), Some(2));
    let c2 = cn.send(18, LINE, draft("from CN at epoch 2"), None).unwrap();
    ph.receive(19, &code("CN"), c2.envelope.bytes()).unwrap();
    cn_after.push(c2);
    World { backup, cn_after, ph_after, ph, cn }
}

fn adopt(cn: &mut Hotline, r: &Record) -> Result<Record, adi_core::CoreError> {
    cn.adopt_own(r.envelope.bytes(), r.signed_content.as_deref().unwrap_or_default())
}

#[test]
fn a_restored_core_takes_back_its_own_envelopes_and_never_encrypts_with_a_key_it_used() {
    let World { backup, cn_after, ph_after, mut ph, .. } = world();
    let mut cn = restored(&backup);
    for r in &cn_after {
        let taken = adopt(&mut cn, r).unwrap();
        assert_eq!(taken.envelope.hash(), r.envelope.hash());
        assert_eq!(taken.content, r.content);
        assert_eq!(taken.recipients, vec![code("PH")], "addressed to the line's other member");
    }
    assert_eq!(cn.head(&LINE, &code("CN")), Some((4, cn_after[2].envelope.hash())));
    // PH's envelopes as PH sent them: its message gets no second answer from CN.
    let kinds: Vec<Vec<&str>> = ph_after
        .iter()
        .map(|b| cn.receive(30, &code("PH"), b).unwrap().iter().map(|r| r.content.kind()).collect())
        .collect();
    assert_eq!(kinds, [vec!["message"], vec!["receipt"], vec!["handshake"]]);
    assert!(cn.end_catch_up().is_empty(), "every key to spend was spent");
    // What CN sends now is read at PH: no key of CN's is used twice.
    let next = cn.send(31, LINE, draft("after the restore"), None).unwrap();
    assert_eq!(next.envelope.body().epoch, 2);
    let at_ph = ph.receive(32, &code("CN"), next.envelope.bytes()).unwrap();
    assert!(matches!(&at_ph[0].content, Content::Message(m) if m.subject == "after the restore"));
    // And its answer to PH's next message too.
    let m3 = ph.send(33, LINE, draft("later"), None).unwrap();
    let at_cn = cn.receive(34, &code("PH"), m3.envelope.bytes()).unwrap();
    assert_eq!(at_cn.len(), 2, "the new message is answered");
    ph.receive(35, &code("CN"), at_cn[1].envelope.bytes()).unwrap();
}

#[test]
fn without_spending_the_keys_again_the_peer_could_not_read_what_follows() {
    // The control: a core put back from the backup that does not take back its envelopes
    // encrypts with a key PH has seen used, and PH cannot read it.
    let World { backup, ph_after, mut ph, .. } = world();
    let mut cn = restored(&backup);
    for b in &ph_after {
        let _ = cn.receive(30, &code("PH"), b);
    }
    let next = cn.send(31, LINE, draft("after the restore"), None).unwrap();
    assert!(ph.receive(32, &code("CN"), next.envelope.bytes()).is_err());
}

#[test]
fn a_core_takes_back_only_what_its_member_signed_in_chain_order_and_changes_nothing_otherwise() {
    let World { backup, cn_after, ph_after, mut cn, .. } = world();
    let mut restored_cn = restored(&backup);
    let head = restored_cn.head(&LINE, &code("CN"));
    let refused = |r: Result<Record, adi_core::CoreError>| r.map(|_| ()).unwrap_err().code;
    // PH's envelope is not CN's.
    assert_eq!(
        refused(restored_cn.adopt_own(&ph_after[0], cn_after[0].signed_content.as_deref().unwrap())),
        "not_adoptable"
    );
    // The content of another envelope.
    assert_eq!(
        refused(restored_cn.adopt_own(cn_after[0].envelope.bytes(), cn_after[1].signed_content.as_deref().unwrap())),
        "not_adoptable"
    );
    // A content changed by one byte.
    let mut forged = cn_after[0].signed_content.clone().unwrap();
    *forged.last_mut().unwrap() ^= 1;
    assert_eq!(refused(restored_cn.adopt_own(cn_after[0].envelope.bytes(), &forged)), "not_adoptable");
    // An envelope whose signature was tampered with.
    let mut bytes = cn_after[0].envelope.bytes().to_vec();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    assert_eq!(refused(restored_cn.adopt_own(&bytes, cn_after[0].signed_content.as_deref().unwrap())), "not_adoptable");
    // Out of chain order.
    assert_eq!(refused(adopt(&mut restored_cn, &cn_after[1])), "not_adoptable");
    assert_eq!(restored_cn.head(&LINE, &code("CN")), head, "nothing refused moved the chain");

    // A proposal of CN's made after the backup cannot be read back by CN: the line is refused.
    let mut all = cn_after.clone();
    all.push(cn.update_keys(40, LINE).unwrap());
    for r in &all[..3] {
        adopt(&mut restored_cn, r).unwrap();
    }
    let e = adopt(&mut restored_cn, &all[3]).unwrap_err();
    assert_eq!(e.code, "own_handshake");
    assert!(e.message.contains("must take this member off the line and add it again"), "{}", e.message);
}

#[test]
fn keys_of_an_epoch_no_commit_here_reached_are_reported_and_spent_once_it_is() {
    let World { backup, cn_after, ph_after, .. } = world();
    let mut cn = restored(&backup);
    for r in &cn_after {
        adopt(&mut cn, r).unwrap();
    }
    assert_eq!(cn.end_catch_up(), vec![(LINE, 2, 1)], "one key of epoch 2 waits for PH's commit");

    // A core restarted on what was stored by then (the taken-back envelopes, the backup's epoch)
    // plans the same from the store's count and spends it with the commit.
    let mut again = restored(&backup);
    again.plan_skip(LINE, 1, 5);
    again.plan_skip(LINE, 2, 1);
    assert_eq!(again.end_catch_up(), vec![(LINE, 2, 1)], "an epoch reached already is not planned");
    again.receive(30, &code("PH"), &ph_after[2]).unwrap();
    assert!(again.end_catch_up().is_empty());
}

#[test]
fn what_a_catch_up_fetches_is_not_bounded_as_a_peers_traffic_of_the_day() {
    let World { backup, ph_after, mut ph, .. } = world();
    let bounded = || {
        let mut c = config("CN", WORLD[2].2);
        c.limits.peer_bytes_per_day_max = 1;
        c
    };
    let over = |r: &Result<Vec<Record>, adi_core::Refusal>| matches!(r, Err(refusal) if refusal.code == adi_wire::batch::RefusalCode::OverQuota && refusal.retry);
    // The control: live, PH's envelopes are past the bound and deferred.
    let mut live = Hotline::new(bounded(), backup.clone(), 100).unwrap();
    assert!(over(&live.receive(30, &code("PH"), &ph_after[0])));
    // Caught up, they are taken, and not counted: the bound applies again after.
    let mut cn = Hotline::new(bounded(), backup.clone(), 100).unwrap();
    cn.begin_catch_up();
    for b in &ph_after {
        assert!(!over(&cn.receive(30, &code("PH"), b)), "a fetched envelope was bounded");
    }
    assert_eq!(cn.epoch(&LINE), Some(2), "PH's key update was taken");
    cn.end_catch_up();
    let m3 = ph.send(33, LINE, draft("later"), None).unwrap();
    assert!(over(&cn.receive(34, &code("PH"), m3.envelope.bytes())));
}
