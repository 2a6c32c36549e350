//! The hotline state machine, driven without I/O: several members' cores exchange envelopes by
//! hand. Each test renders outcomes as text and compares them with an expectation through one
//! `check` helper, so a change of behaviour shows as a readable diff.

use adi_core::{Content, Draft, Hotline, MemberCode, NewLine, Record};
use adi_wire::batch::RefusalCode;
use adi_wire::envelope::{
    EnvelopeBody, CONTENT_MLS, CONTENT_MLS_SETUP, CONTENT_PLAIN_V1, PRIORITY_FLASH, PRIORITY_ROUTINE,
};
use adi_wire::payload::PayloadV1;
use adi_wire::{EnvelopeHash, LineId};
use expect_test::{expect, Expect};

use adi_core::fixtures::{config, hotline, key, key_packages_of, WORLD};

fn code(s: &str) -> MemberCode {
    MemberCode::parse(s).unwrap()
}

fn check(actual: String, expect: Expect) {
    expect.assert_eq(&actual);
}

fn new_line(members: &str, scope: &str) -> NewLine {
    NewLine { members: members.split(',').map(String::from).collect(), scope: scope.into(), title: None }
}

/// `home` creates a line with the members whose cores are given, from their KeyPackages.
fn create(home: &mut Hotline, members: &mut [&mut Hotline], id: LineId, list: &str, scope: &str) -> Record {
    let kps = key_packages_of(members);
    home.create_line(1, id, new_line(list, scope), kps).unwrap()
}

fn draft(precedence: &str, subject: &str) -> Draft {
    Draft { precedence: precedence.into(), subject: subject.into(), body: "body".into(), ..Draft::default() }
}

fn render_record(r: &Record) -> String {
    let b = r.envelope.body();
    let what = match &r.content {
        Content::LineSetup => "line_setup".to_string(),
        Content::Message(m) => format!("{} {} '{}'", m.precedence.as_str(), m.class.as_str(), m.subject),
        Content::Receipt(x) => format!("receipt {} of #{}", x.kind.as_str(), x.answers.seq),
        Content::LinkTest => "link_test".to_string(),
        Content::Handshake(_) => "handshake".to_string(),
        Content::Decision(d) => format!("decision '{}'", d.text),
        Content::Translation(t) => format!("translation {} of {}", t.language, t.original),
        Content::Concurrence(a) => format!("{} {}", if a.concur { "concurs with" } else { "declines" }, a.decision),
        Content::Chunk(c) => format!("chunk {} of {}", c.index, hex::encode(c.file)),
    };
    let to: Vec<&str> = r.recipients.iter().map(|m| m.as_str()).collect();
    format!("{} #{} priority {} {what} to [{}]", r.sender, b.seq, b.priority, to.join(","))
}

#[test]
fn line_policy_on_creation() {
    let cases = [
        ("PH,CN", "ADMM-Plus"),
        ("PH,VN", "ADMM"),
        ("PH,CN", "ADMM"),
        ("PH,TL", "ADMM"),
        ("PH,TL", "ADMM-Plus"),
        ("PH,VN,CN", "ADMM-Plus"),
        ("VN,CN", "ADMM-Plus"),
        ("PH", "ADMM-Plus"),
        ("PH,PH", "ADMM-Plus"),
        ("PH,XX", "ADMM-Plus"),
        ("PH,cn", "ADMM-Plus"),
        ("PH,CN", "NATO"),
    ];
    let mut out = String::new();
    for (i, (members, scope)) in cases.iter().enumerate() {
        let mut ph = hotline("PH");
        let req = new_line(members, scope);
        let result = ph.check_new_line(&req).and_then(|others| {
            let mut cores: Vec<Hotline> = others.iter().map(|m| hotline(m.as_str())).collect();
            let kps = key_packages_of(&mut cores.iter_mut().collect::<Vec<_>>());
            ph.create_line(1_000, LineId([i as u8; 16]), req, kps)
        });
        let line = match result {
            Ok(r) => format!("ok, {}", render_record(&r)),
            Err(e) => format!("{:?} {}: {}", e.kind, e.code, e.message),
        };
        out.push_str(&format!("{members:<9} {scope:<9} -> {line}\n"));
    }
    check(
        out,
        expect![[r#"
            PH,CN     ADMM-Plus -> ok, PH #1 priority 0 line_setup to [CN]
            PH,VN     ADMM      -> ok, PH #1 priority 0 line_setup to [VN]
            PH,CN     ADMM      -> Forbidden scope_policy: CN (PLUS) may not be on a line of scope ADMM
            PH,TL     ADMM      -> Forbidden scope_policy: TL (OBSERVER) may not be on a line of scope ADMM
            PH,TL     ADMM-Plus -> ok, PH #1 priority 0 line_setup to [TL]
            PH,VN,CN  ADMM-Plus -> ok, PH #1 priority 0 line_setup to [CN,VN]
            VN,CN     ADMM-Plus -> Forbidden not_a_member: PH is not among the line's members
            PH        ADMM-Plus -> Invalid too_few_members: a line has at least two members
            PH,PH     ADMM-Plus -> Invalid repeated_member: a member is listed twice
            PH,XX     ADMM-Plus -> Invalid unknown_member: XX is not in the roster
            PH,cn     ADMM-Plus -> Invalid bad_member_code: 'cn': a member code is 2 to 8 characters of A-Z, 0-9 and '-'
            PH,CN     NATO      -> Invalid bad_scope: unknown scope 'NATO', expected ADMM or ADMM-Plus
        "#]],
    );
}

#[test]
fn a_second_direct_line_of_the_same_scope_conflicts() {
    let (mut ph, mut vn) = (hotline("PH"), hotline("VN"));
    create(&mut ph, &mut [&mut vn], LineId([1; 16]), "PH,VN", "ADMM");
    let e = ph.check_new_line(&new_line("VN,PH", "ADMM")).unwrap_err();
    check(format!("{:?} {}", e.kind, e.code), expect![[r#"Conflict line_exists"#]]);
    assert!(ph.check_new_line(&new_line("PH,VN", "ADMM-Plus")).is_ok());
    create(&mut ph, &mut [&mut vn], LineId([3; 16]), "PH,VN", "ADMM-Plus");
}

#[test]
fn sends_chain_each_senders_envelopes_and_peers_accept_them_in_any_order() {
    let mut ph = hotline("PH");
    let mut cn = hotline("CN");
    let line = LineId([7; 16]);
    let setup = create(&mut ph, &mut [&mut cn], line, "PH,CN", "ADMM-Plus");
    let routine = ph.send(11, line, draft("ROUTINE", "first"), None).unwrap();
    let flash = ph.send(12, line, draft("FLASH", "second"), None).unwrap();
    assert_eq!(routine.envelope.body().prev, setup.envelope.hash());
    assert_eq!(flash.envelope.body().prev, routine.envelope.hash());

    // CN takes the setup, then the FLASH before the ROUTINE that precedes it.
    let mut out = String::new();
    for r in [&setup, &flash, &routine] {
        let got = cn.receive(100, &code("PH"), r.envelope.bytes());
        out.push_str(&match got {
            Ok(recs) => recs.iter().map(|r| format!("accepted {}\n", render_record(r))).collect::<String>(),
            Err(refusal) => format!("refused (retry {}) {}\n", refusal.retry, refusal.reason),
        });
    }
    check(
        out,
        expect![[r#"
            accepted PH #1 priority 0 line_setup to []
            accepted PH #3 priority 1 FLASH OPERATIONAL 'second' to []
            accepted CN #1 priority 1 receipt decrypted of #3 to [PH]
            accepted PH #2 priority 4 ROUTINE OPERATIONAL 'first' to []
            accepted CN #2 priority 4 receipt decrypted of #2 to [PH]
        "#]],
    );
    // CN's node answered each message with its signed `decrypted` receipt, at the message's
    // precedence; CN's own sequence goes on from there.
    let reply = cn.send(200, line, draft("IMMEDIATE", "reply"), None).unwrap();
    check(render_record(&reply), expect![[r#"CN #3 priority 2 IMMEDIATE OPERATIONAL 'reply' to [PH]"#]]);
}

fn message_payload(precedence: &str, body: &str) -> Vec<u8> {
    PayloadV1::Message {
        v: 1,
        precedence: precedence.into(),
        class: "OPERATIONAL".into(),
        caveat: "C".into(),
        subject: "s".into(),
        body: body.into(),
        ack_required: true,
        crisis: false,
        deadline_s: None,
        released_by: None,
        form: None,
        ewg: None,
        attachments: Vec::new(),
    }
    .encode()
}

/// A ROUTINE message carrying `form` and `ewg`, as a peer might send it.
fn form_message(form: serde_json::Value, ewg: Option<&str>) -> PayloadV1 {
    let PayloadV1::Message { precedence, class, caveat, subject, body, ack_required, crisis, .. } =
        message("ROUTINE", "b")
    else {
        unreachable!()
    };
    PayloadV1::Message {
        v: 1,
        precedence,
        class,
        caveat,
        subject,
        body,
        ack_required,
        crisis,
        deadline_s: None,
        released_by: None,
        form: Some(form),
        ewg: ewg.map(str::to_string),
        attachments: Vec::new(),
    }
}

fn sea_example() -> serde_json::Value {
    adi_forms::schema::example("encounter-at-sea").unwrap()
}

fn envelope(sender: &str, seed: u8, line: LineId, seq: u64, priority: u8, payload: Vec<u8>) -> Vec<u8> {
    envelope_of(sender, seed, line, seq, priority, CONTENT_MLS, payload)
}

fn envelope_of(
    sender: &str,
    seed: u8,
    line: LineId,
    seq: u64,
    priority: u8,
    content_type: u8,
    payload: Vec<u8>,
) -> Vec<u8> {
    EnvelopeBody {
        line,
        sender: sender.into(),
        seq,
        prev: EnvelopeHash::NONE,
        epoch: 0,
        created_ms: 5,
        priority,
        content_type,
        content_hash: [0; 32],
        payload,
    }
    .sign(&key(seed))
    .bytes()
    .to_vec()
}

fn message(precedence: &str, body: &str) -> PayloadV1 {
    PayloadV1::decode(&message_payload(precedence, body)).unwrap()
}

#[test]
fn refusals_of_envelopes_from_peers() {
    let line = LineId([9; 16]);
    let mut cn = hotline("CN");
    let mut ph = hotline("PH");
    let setup = create(&mut ph, &mut [&mut cn], line, "PH,CN", "ADMM-Plus");
    cn.receive(2, &code("PH"), setup.envelope.bytes()).unwrap();
    let long_flash = vec!["w"; 201].join(" ");
    let admm_setup = PayloadV1::LineSetup {
        v: 1,
        scope: "ADMM".into(),
        title: String::new(),
        home: "PH".into(),
        members: vec!["PH".into(), "CN".into()],
        welcome: None,
    }
    .encode();
    // PH plays a member that breaks the rules inside correctly encrypted envelopes.
    let mut rogue =
        |priority, payload| ph.seal_unchecked(4, line, priority, payload).unwrap().envelope.bytes().to_vec();
    let too_long = rogue(PRIORITY_FLASH, message("FLASH", &long_flash));
    let mismatch = rogue(PRIORITY_FLASH, message("ROUTINE", "b"));
    let valid = rogue(PRIORITY_ROUTINE, message("ROUTINE", "b"));
    let checked = adi_forms::check(&sea_example()).unwrap().to_value();
    let mut off_globe = checked.clone();
    off_globe["reporting_unit"]["position"]["lat"] = serde_json::json!(91);
    let bad_form = rogue(PRIORITY_ROUTINE, form_message(off_globe, None));
    // Valid, but not as the checks give it: the signal meanings are left out.
    let unchecked_form = rogue(PRIORITY_ROUTINE, form_message(sea_example(), None));
    let bad_ewg = rogue(PRIORITY_ROUTINE, form_message(checked, Some("astrology")));
    let ciphertext = adi_wire::Envelope::decode(&valid, 1 << 20, 1 << 20).unwrap().body().payload.clone();
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("garbage", "PH", b"not an envelope".to_vec()),
        ("signed by another key", "PH", envelope("PH", 9, line, 2, PRIORITY_ROUTINE, vec![1, 2, 3])),
        ("sender is not the peer", "VN", envelope("PH", 1, line, 2, PRIORITY_ROUTINE, vec![1, 2, 3])),
        ("member not on line", "VN", envelope("VN", 2, line, 1, PRIORITY_ROUTINE, vec![1, 2, 3])),
        ("unknown line", "PH", envelope("PH", 1, LineId([8; 16]), 2, PRIORITY_ROUTINE, vec![1, 2, 3])),
        (
            "plain payload",
            "PH",
            envelope_of("PH", 1, line, 2, PRIORITY_ROUTINE, CONTENT_PLAIN_V1, message_payload("ROUTINE", "b")),
        ),
        ("not MLS", "PH", envelope("PH", 1, line, 2, PRIORITY_ROUTINE, message_payload("ROUTINE", "b"))),
        ("FLASH over 200 words", "PH", too_long),
        ("priority mismatch", "PH", mismatch),
        ("Plus member on ADMM line", "PH", envelope_of("PH", 1, LineId([6; 16]), 1, 0, CONTENT_MLS_SETUP, admm_setup)),
        ("far ahead", "PH", envelope("PH", 1, line, 5_000_000, PRIORITY_ROUTINE, ciphertext)),
        ("form off the globe", "PH", bad_form),
        ("form not as checked", "PH", unchecked_form),
        ("unknown working group", "PH", bad_ewg),
    ];
    let mut out = String::new();
    for (what, peer, bytes) in cases {
        let line = match cn.receive(3, &code(peer), &bytes) {
            Ok(r) => format!("accepted {}", render_record(&r[0])),
            Err(refusal) => format!("{} {}", if refusal.retry { "deferred" } else { "rejected" }, refusal.reason),
        };
        out.push_str(&format!("{what}: {line}\n"));
    }
    check(
        out,
        expect![[r#"
        garbage: rejected malformed envelope: bad magic: expected ADIE
        signed by another key: rejected the envelope's signature does not verify under the sender's roster key
        sender is not the peer: rejected envelope from PH arrived over VN's connection; relaying is not supported
        member not on line: rejected VN is not a member of line 09090909090909090909090909090909
        unknown line: deferred line 08080808080808080808080808080808 is not known here yet
        plain payload: rejected content type 1 is not accepted: lines carry MLS messages only
        not MLS: rejected cannot decrypt: malformed MLS message: UnknownValue(29817)
        FLASH over 200 words: rejected a FLASH body is at most 200 words; this one has 201
        priority mismatch: rejected the envelope's priority does not match the message's precedence
        Plus member on ADMM line: rejected line refused: CN (PLUS) may not be on a line of scope ADMM
        far ahead: rejected sequence number 5000000 is too far ahead of 1 (limit seq_ahead_max = 1000000)
        form off the globe: rejected form.reporting_unit.position.lat: latitude 91 is off the globe (−90 to 90)
        form not as checked: rejected the form differs from what its checks make of it: each signal carries its meaning from the code
        unknown working group: rejected ewg: unknown Experts' Working Group 'astrology'; one of hadr, maritime-security, military-medicine, counter-terrorism, peacekeeping-operations, humanitarian-mine-action, cyber-security
    "#]],
    );
}

/// A message payload of PH's with the given caveat, subject and body, as modified code sends it.
fn text_message(precedence: &str, caveat: &str, subject: &str, body: &str) -> PayloadV1 {
    let PayloadV1::Message { class, ack_required, crisis, .. } = message(precedence, body) else { unreachable!() };
    PayloadV1::Message {
        v: 1,
        precedence: precedence.into(),
        class,
        caveat: caveat.into(),
        subject: subject.into(),
        body: body.into(),
        ack_required,
        crisis,
        deadline_s: None,
        released_by: None,
        form: None,
        ewg: None,
        attachments: Vec::new(),
    }
}

#[test]
fn a_peers_text_that_would_steer_the_officers_screen_is_refused_and_not_taken() {
    let line = LineId([9; 16]);
    let mut cn = hotline("CN");
    let mut ph = hotline("PH");
    let setup = create(&mut ph, &mut [&mut cn], line, "PH,CN", "ADMM-Plus");
    cn.receive(2, &code("PH"), setup.envelope.bytes()).unwrap();
    let hash = "ab".repeat(32);
    let zwsp_flash = vec!["word"; 5000].join("\u{200b}");
    let payloads: Vec<(&str, u8, PayloadV1)> = vec![
        ("subject clearing the terminal", PRIORITY_ROUTINE, text_message("ROUTINE", "C", "\u{1b}[2J", "b")),
        ("subject forging a line", PRIORITY_ROUTINE, text_message("ROUTINE", "C", "s\r\nPH #9 acknowledged", "b")),
        ("caveat reversed", PRIORITY_ROUTINE, text_message("ROUTINE", "\u{202e}DETCIRTSER", "s", "b")),
        ("body reversed", PRIORITY_ROUTINE, text_message("ROUTINE", "C", "s", "we \u{202e}tpecca ton\u{202c} terms")),
        (
            "FLASH of 5000 words joined by zero-width spaces",
            PRIORITY_FLASH,
            text_message("FLASH", "C", "s", &zwsp_flash),
        ),
        (
            "decline with an escape",
            PRIORITY_ROUTINE,
            PayloadV1::Receipt {
                v: 1,
                kind: "declined".into(),
                answers: hash.clone(),
                answers_sender: "CN".into(),
                answers_seq: 1,
                reason: Some("no\u{1b}[1A\u{1b}[2K".into()),
            },
        ),
        (
            "decision reversed",
            PRIORITY_ROUTINE,
            PayloadV1::Decision {
                v: 1,
                text: "we agree \u{2067}not\u{2069}".into(),
                parties: vec!["PH".into(), "CN".into()],
                deadline_s: None,
                supersedes: None,
            },
        ),
        (
            "concurrence reason with a bell",
            PRIORITY_ROUTINE,
            PayloadV1::Concurrence {
                v: 1,
                decision: hash.clone(),
                text_sha256: hash.clone(),
                concur: false,
                reason: Some("no\u{7}".into()),
            },
        ),
        (
            "translator on two lines",
            PRIORITY_ROUTINE,
            PayloadV1::Translation {
                v: 1,
                original: hash.clone(),
                language: "en".into(),
                text: "text".into(),
                translator: "li\nreviewed by wang".into(),
                reviewed_by: None,
                revises: None,
            },
        ),
    ];
    let mut out = String::new();
    for (what, priority, payload) in payloads {
        let bytes = ph.seal_unchecked(4, line, priority, payload).unwrap().envelope.bytes().to_vec();
        let verdict = match cn.receive(3, &code("PH"), &bytes) {
            Ok(r) => format!("accepted {}", render_record(&r[0])),
            Err(r) => format!("{} {}: {}", if r.retry { "deferred" } else { "rejected" }, r.code.as_str(), r.reason),
        };
        out.push_str(&format!("{what}: {verdict}\n"));
    }
    let title = PayloadV1::LineSetup {
        v: 1,
        scope: "ADMM-Plus".into(),
        title: "PH\u{1b}]0;owned\u{7}".into(),
        home: "PH".into(),
        members: vec!["PH".into(), "CN".into()],
        welcome: None,
    };
    let bytes = envelope_of("PH", 1, LineId([5; 16]), 1, 0, CONTENT_MLS_SETUP, title.encode());
    let verdict = cn.receive(3, &code("PH"), &bytes).unwrap_err();
    out.push_str(&format!("title setting the window's name: {}: {}\n", verdict.code.as_str(), verdict.reason));
    check(
        out,
        expect![[r#"
            subject clearing the terminal: rejected content_refused: subject: character 1 is U+001B, a control character
            subject forging a line: rejected content_refused: subject: character 2 is U+000D, a carriage return (lines break with a line feed alone)
            caveat reversed: rejected content_refused: caveat: character 1 is U+202E, a bidirectional control, which shows text in another order than written
            body reversed: rejected content_refused: body: character 4 is U+202E, a bidirectional control, which shows text in another order than written
            FLASH of 5000 words joined by zero-width spaces: rejected content_refused: a FLASH body is at most 200 words; this one has 5000
            decline with an escape: rejected content_refused: reason: character 3 is U+001B, a control character
            decision reversed: rejected content_refused: text: character 10 is U+2067, a bidirectional control, which shows text in another order than written
            concurrence reason with a bell: rejected content_refused: reason: character 3 is U+0007, a control character
            translator on two lines: rejected content_refused: translator: character 3 is U+000A, a line feed, in a field of one line
            title setting the window's name: bad_line_setup: line refused: title: character 3 is U+001B, a control character
        "#]],
    );
    // Nothing of it was taken: the line and its chain stand as before, and PH's next honest
    // message is read.
    assert!(cn.line(&LineId([5; 16])).is_none());
    let next = ph.send(5, line, draft("ROUTINE", "honest"), None).unwrap();
    let taken = cn.receive(6, &code("PH"), next.envelope.bytes()).unwrap();
    assert!(matches!(&taken[0].content, Content::Message(m) if m.subject == "honest"));
}

#[test]
fn an_operators_text_that_would_steer_a_screen_is_refused_naming_its_field() {
    let line = LineId([9; 16]);
    let mut cn = hotline("CN");
    let mut ph = hotline("PH");
    let setup = create(&mut ph, &mut [&mut cn], line, "PH,CN", "ADMM-Plus");
    cn.receive(2, &code("PH"), setup.envelope.bytes()).unwrap();
    let sent = ph.send(3, line, draft("ROUTINE", "s"), None).unwrap();
    cn.receive(4, &code("PH"), sent.envelope.bytes()).unwrap();
    let answered = adi_core::Answered { hash: sent.envelope.hash(), sender: code("PH"), seq: 2 };
    let hash = sent.envelope.hash();
    let decision =
        |text: &str| adi_core::Decision { text: text.into(), parties: vec![], deadline_s: None, supersedes: None };
    let translation = |translator: &str| adi_core::Translation {
        original: hash,
        language: "en".into(),
        text: "t".into(),
        translator: translator.into(),
        reviewed_by: None,
        revises: None,
    };
    let titled = NewLine { title: Some("PH\u{1b}[2J".into()), ..new_line("PH,CN", "ADMM") };
    let refused = [
        cn.answer(5, line, answered.clone(), adi_core::ReceiptKind::Declined, Some("no\u{1b}[2J".into()), 4)
            .unwrap_err(),
        ph.propose_decision(5, line, decision("agree \u{202e}ton")).unwrap_err(),
        ph.translate(5, line, translation("li\u{2028}wang")).unwrap_err(),
        ph.create_line(5, LineId([3; 16]), titled, vec![]).unwrap_err(),
        ph.send(5, line, draft("ROUTINE", "\u{1b}[2J"), None).unwrap_err(),
    ];
    let fields: Vec<_> = refused.iter().map(|e| (e.code, e.field.as_deref().unwrap_or_default())).collect();
    assert_eq!(
        fields,
        [
            ("bad_character", "reason"),
            ("bad_character", "text"),
            ("bad_character", "translator"),
            ("bad_character", "title"),
            ("bad_character", "subject"),
        ]
    );
    // Nothing was sealed: each chain goes on from where it stood.
    let next = ph.send(6, line, draft("ROUTINE", "next"), None).unwrap();
    assert_eq!(next.envelope.body().seq, 3);
    let answer = cn.answer(7, line, answered, adi_core::ReceiptKind::Declined, Some("line one\nline two".into()), 4);
    assert_eq!(answer.unwrap().envelope.body().seq, 2, "CN's first envelope is its decrypted receipt");
}

#[test]
fn a_restarted_core_continues_each_chain_from_the_stored_heads() {
    let line = LineId([4; 16]);
    let (mut ph, mut cn) = (hotline("PH"), hotline("CN"));
    let setup = create(&mut ph, &mut [&mut cn], line, "PH,CN", "ADMM-Plus");
    let second = ph.send(2, line, draft("ROUTINE", "before restart"), None).unwrap();
    let mls_state = adi_mls::decode_state(&ph.mls_snapshot().unwrap()).unwrap().into_iter().collect();
    let mut again = Hotline::new(
        config("PH", WORLD[0].2),
        adi_core::Restored {
            lines: vec![setup.line.clone()],
            heads: vec![adi_core::OwnHead { line, sender: code("PH"), seq: 2, hash: second.envelope.hash(), epoch: 1 }],
            pending: Vec::new(),
            mls_state,
            known: Vec::new(),
            latest_ms: 0,
            removals: Vec::new(),
            received: Vec::new(),
        },
        3,
    )
    .unwrap();
    let third = again.send(3, line, draft("ROUTINE", "after restart"), None).unwrap();
    assert_eq!(third.envelope.body().seq, 3);
    assert_eq!(third.envelope.body().prev, second.envelope.hash());
}

/// Bytes from the network never panic the core: random bytes, and every single-byte mutation and
/// truncation of valid envelopes, are refused or accepted, never a crash.
#[test]
fn random_and_mutated_bytes_never_panic_the_core() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xAD1);
    let line = LineId([1; 16]);
    let (mut ph, mut cn) = (hotline("PH"), hotline("CN"));
    let setup = create(&mut ph, &mut [&mut cn], line, "PH,CN", "ADMM-Plus");
    let message = ph.send(2, line, draft("FLASH", "seed"), None).unwrap();
    for valid in [setup.envelope.bytes().to_vec(), message.envelope.bytes().to_vec()] {
        for i in 0..valid.len() {
            let mut m = valid.clone();
            m[i] ^= rng.gen_range(1..=255u8);
            assert!(cn.receive(3, &code("PH"), &m).is_err(), "a change at byte {i} was accepted");
            assert!(cn.receive(3, &code("PH"), &valid[..i]).is_err(), "a truncation to {i} bytes was accepted");
        }
    }
    for _ in 0..2_000 {
        let len = rng.gen_range(0..600);
        let bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
        assert!(cn.receive(3, &code("PH"), &bytes).is_err());
        assert!(adi_wire::batch::decode_batch(&bytes, 256, 1 << 18).is_err() || bytes.starts_with(b"ADIB"));
    }
    // The unaltered envelopes are still accepted afterwards: nothing above changed the core.
    assert!(cn.receive(3, &code("PH"), setup.envelope.bytes()).is_ok());
    assert!(cn.receive(3, &code("PH"), message.envelope.bytes()).is_ok());
}

#[test]
fn a_key_update_crossing_the_home_commit_raises_no_alarm_and_is_proposed_again() {
    let (mut ph, mut cn) = (hotline("PH"), hotline("CN"));
    let line = LineId([9; 16]);
    let setup = create(&mut ph, &mut [&mut cn], line, "PH,CN", "ADMM-Plus");
    cn.receive(2, &code("PH"), setup.envelope.bytes()).unwrap();
    let proposal = cn.update_keys(10, line).unwrap();
    let commit = ph.update_keys(10, line).unwrap();

    let refusal = ph.receive(11, &code("CN"), proposal.envelope.bytes()).unwrap_err();
    check(
        format!("retry {} alarm {} {}", refusal.retry, refusal.alarm.is_some(), refusal.reason),
        expect![[
            r#"retry false alarm false outdated: a proposal from epoch 1 crossed a commit (current 2): a proposal is valid only in its epoch"#
        ]],
    );
    // The commit reaches CN, which proposes again at its next tick; PH commits that at once.
    cn.receive(12, &code("PH"), commit.envelope.bytes()).unwrap();
    let handshakes = |records: Vec<Record>| -> Vec<Record> {
        records.into_iter().filter(|r| matches!(r.content, Content::Handshake(_))).collect()
    };
    let again = handshakes(cn.tick(13).records);
    assert_eq!(again.len(), 1);
    let at_ph = ph.receive(14, &code("CN"), again[0].envelope.bytes()).unwrap();
    let kinds: Vec<&str> = at_ph.iter().map(|r| r.content.kind()).collect();
    assert_eq!(kinds, ["handshake", "handshake"], "the proposal and PH's commit of it");
    assert_eq!(ph.epoch(&line), Some(3));
    assert!(handshakes(cn.tick(15).records).is_empty(), "no further proposal before the commit");
    cn.receive(16, &code("PH"), at_ph[1].envelope.bytes()).unwrap();
    assert_eq!(cn.epoch(&line), Some(3));
    assert!(handshakes(cn.tick(17).records).is_empty(), "none once the update is committed");
}

#[test]
fn key_updates_wait_for_a_silent_member_before_its_queued_envelopes_would_fall_out_of_the_window() {
    let (mut ph, mut cn) = (hotline("PH"), hotline("CN"));
    let line = LineId([10; 16]);
    let setup = create(&mut ph, &mut [&mut cn], line, "PH,CN", "ADMM-Plus");
    cn.receive(2, &code("PH"), setup.envelope.bytes()).unwrap();
    // Envelopes each side sealed at the first epoch, queued while CN's node is cut off.
    let from_cn = cn.send(3, line, draft("ROUTINE", "queued at CN"), None).unwrap();
    let from_ph = ph.send(3, line, draft("ROUTINE", "queued for CN"), None).unwrap();

    // PH keeps updating its keys while it hears nothing from CN, until one more commit could
    // push those envelopes beyond the past epochs kept; then updates wait.
    let mut commits = Vec::new();
    let refused = loop {
        match ph.update_keys(10 + commits.len() as u64, line) {
            Ok(r) => commits.push(r),
            Err(e) => break e,
        }
        assert!(commits.len() < 100, "key updates never waited");
    };
    check(
        format!("{} commits, then {:?} {}: {}", commits.len(), refused.kind, refused.code, refused.message),
        expect!["14 commits, then Conflict member_behind: CN was last heard from at epoch 1; another key update now could leave envelopes queued for it beyond the 16 past epochs kept, so key updates wait until it is heard from"],
    );
    // Everything queued still decrypts on both sides once CN is back.
    let got = ph.receive(200, &code("CN"), from_cn.envelope.bytes()).expect("PH reads CN's queued message");
    assert!(matches!(&got[0].content, Content::Message(m) if m.subject == "queued at CN"));
    for c in &commits {
        cn.receive(201, &code("PH"), c.envelope.bytes()).expect("CN follows each commit");
    }
    let got = cn.receive(202, &code("PH"), from_ph.envelope.bytes()).expect("CN reads PH's queued message");
    assert!(matches!(&got[0].content, Content::Message(m) if m.subject == "queued for CN"));
    // CN's receipt shows it at the latest epoch: updates resume.
    ph.receive(203, &code("CN"), got[1].envelope.bytes()).expect("PH takes CN's receipt");
    assert!(ph.update_keys(204, line).is_ok());
}

/// A conference of PH (home), VN and CN, every member joined.
fn conference(ph: &mut Hotline, vn: &mut Hotline, cn: &mut Hotline, line: LineId) {
    let setup = create(ph, &mut [vn, cn], line, "PH,VN,CN", "ADMM-Plus");
    vn.receive(2, &code("PH"), setup.envelope.bytes()).unwrap();
    cn.receive(2, &code("PH"), setup.envelope.bytes()).unwrap();
}

#[test]
fn a_commit_that_overtakes_the_proposal_it_names_waits_for_it() {
    let (mut ph, mut vn, mut cn) = (hotline("PH"), hotline("VN"), hotline("CN"));
    let line = LineId([11; 16]);
    conference(&mut ph, &mut vn, &mut cn, line);
    // VN proposes a fresh leaf; PH commits it at once. CN hears the commit first.
    let proposal = vn.update_keys(10, line).unwrap();
    let at_ph = ph.receive(11, &code("VN"), proposal.envelope.bytes()).unwrap();
    let commit = at_ph.iter().find(|r| r.sender == code("PH")).expect("PH's commit").clone();
    let refusal = cn.receive(12, &code("PH"), commit.envelope.bytes()).unwrap_err();
    check(
        format!("retry {} alarm {} {}", refusal.retry, refusal.alarm.is_some(), refusal.reason),
        expect![[r#"retry true alarm false the commit names a proposal that has not arrived here yet"#]],
    );
    // Once the proposal arrives, the same commit is read: nothing was spent by the first try.
    cn.receive(13, &code("VN"), proposal.envelope.bytes()).unwrap();
    cn.receive(14, &code("PH"), commit.envelope.bytes()).unwrap();
    assert_eq!(cn.epoch(&line), ph.epoch(&line));
    let hello = ph.send(15, line, draft("ROUTINE", "after the update"), None).unwrap();
    let read = cn.receive(16, &code("PH"), hello.envelope.bytes()).unwrap();
    assert!(matches!(&read[0].content, Content::Message(m) if m.subject == "after the update"));
}

#[test]
fn an_answer_to_a_member_who_left_the_line_since_is_accepted() {
    use adi_core::{Answered, ReceiptKind};
    let (mut ph, mut vn, mut cn) = (hotline("PH"), hotline("VN"), hotline("CN"));
    let line = LineId([12; 16]);
    conference(&mut ph, &mut vn, &mut cn, line);
    let mut d = draft("FLASH", "hold position");
    d.ack_required = Some(true);
    let flash = vn.send(10, line, d, None).unwrap();
    cn.receive(11, &code("VN"), flash.envelope.bytes()).unwrap();
    ph.receive(11, &code("VN"), flash.envelope.bytes()).unwrap();
    // PH takes VN off the line; CN then acknowledges VN's FLASH.
    let removal = ph.remove_member(12, line, &code("VN")).unwrap();
    cn.receive(13, &code("PH"), removal.envelope.bytes()).unwrap();
    let answered = Answered { hash: flash.envelope.hash(), sender: code("VN"), seq: flash.envelope.body().seq };
    let ack = cn.answer(14, line, answered, ReceiptKind::Acknowledged, None, PRIORITY_FLASH).unwrap();
    let at_ph = ph.receive(15, &code("CN"), ack.envelope.bytes()).unwrap();
    check(render_record(&at_ph[0]), expect![[r#"CN #2 priority 1 receipt acknowledged of #1 to []"#]]);
}

#[test]
fn a_removal_fixes_where_the_member_stopped_and_nothing_of_its_after_that_is_read_anywhere() {
    let (mut ph, mut vn, mut cn) = (hotline("PH"), hotline("VN"), hotline("CN"));
    let line = LineId([13; 16]);
    conference(&mut ph, &mut vn, &mut cn, line);
    // VN speaks twice and PH proposes a decision naming VN, all before PH takes VN off the line;
    // PH holds VN's first word when it does, not its second. The removal reaches CN first.
    let first_word = vn.send(10, line, draft("IMMEDIATE", "first word"), None).unwrap();
    ph.receive(10, &code("VN"), first_word.envelope.bytes()).unwrap();
    let last_word = vn.send(10, line, draft("IMMEDIATE", "last word"), None).unwrap();
    let decision = adi_core::Decision {
        text: "Both ships keep 5 nautical miles apart.".into(),
        parties: vec![code("CN"), code("PH"), code("VN")],
        deadline_s: None,
        supersedes: None,
    };
    let proposed = ph.propose_decision(11, line, decision).unwrap();
    let removal = ph.remove_member(12, line, &code("VN")).unwrap();
    match &removal.content {
        Content::Handshake(removals) => {
            let fixed: Vec<(String, u64)> = removals.iter().map(|r| (r.member.to_string(), r.seq)).collect();
            assert_eq!(fixed, [("VN".to_string(), 1)]);
        }
        other => panic!("{other:?}"),
    }
    let at_cn = cn.receive(13, &code("PH"), removal.envelope.bytes()).unwrap();
    assert_eq!(at_cn[0].content, removal.content, "CN fixes the place the removal carries");
    // The word PH held when it removed VN is read at CN, though it arrives after the removal.
    let read = cn.receive(14, &code("VN"), first_word.envelope.bytes()).unwrap();
    check(render_record(&read[0]), expect![[r#"VN #1 priority 2 IMMEDIATE OPERATIONAL 'first word' to []"#]]);
    // The one after it is refused at every member's node, whatever its epoch.
    for (at, node) in [("CN", &mut cn), ("PH", &mut ph)] {
        let refused = node.receive(14, &code("VN"), last_word.envelope.bytes()).unwrap_err();
        assert_eq!(refused.code, RefusalCode::Removed, "at {at}: {refused:?}");
    }
    let read = cn.receive(15, &code("PH"), proposed.envelope.bytes()).unwrap();
    check(
        render_record(&read[0]),
        expect![[r#"PH #3 priority 2 decision 'Both ships keep 5 nautical miles apart.' to []"#]],
    );
    // Once the removal reaches VN, it sends nothing more there.
    vn.receive(16, &code("PH"), removal.envelope.bytes()).unwrap();
    assert!(vn.send(17, line, draft("ROUTINE", "still here?"), None).is_err());
}

#[test]
fn a_member_added_again_waits_for_its_welcome_instead_of_refusing_what_is_sent_to_it() {
    let (mut ph, mut vn, mut cn) = (hotline("PH"), hotline("VN"), hotline("CN"));
    let line = LineId([14; 16]);
    conference(&mut ph, &mut vn, &mut cn, line);
    // CN speaks before it has read VN's removal: VN, once off the line, refuses that for good.
    let before = cn.send(10, line, draft("ROUTINE", "before the removal"), None).unwrap();
    let removal = ph.remove_member(11, line, &code("VN")).unwrap();
    vn.receive(12, &code("PH"), removal.envelope.bytes()).unwrap();
    cn.receive(12, &code("PH"), removal.envelope.bytes()).unwrap();
    let refusal = vn.receive(13, &code("CN"), before.envelope.bytes()).unwrap_err();
    check(
        format!("retry {} alarm {} {}", refusal.retry, refusal.alarm.is_some(), refusal.reason),
        expect![[r#"retry false alarm false VN is no longer on line 0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e"#]],
    );
    // PH adds VN again. CN reads the commit and speaks to VN before VN's Welcome arrives.
    let kp = key_packages_of(&mut [&mut vn]).remove(0).1;
    let added = ph.add_member(14, line, &code("VN"), kp).unwrap();
    cn.receive(15, &code("PH"), added[0].envelope.bytes()).unwrap();
    let after = cn.send(16, line, draft("ROUTINE", "welcome back"), None).unwrap();
    let refusal = vn.receive(17, &code("CN"), after.envelope.bytes()).unwrap_err();
    check(
        format!("retry {} alarm {} {}", refusal.retry, refusal.alarm.is_some(), refusal.reason),
        expect![[
            r#"retry true alarm false VN was taken off line 0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e at epoch 2; the Welcome that adds it again has not arrived yet"#
        ]],
    );
    // Once the Welcome is read, the same envelope is.
    vn.receive(18, &code("PH"), added[1].envelope.bytes()).unwrap();
    let read = vn.receive(19, &code("CN"), after.envelope.bytes()).unwrap();
    assert!(matches!(&read[0].content, Content::Message(m) if m.subject == "welcome back"));
}

#[test]
fn a_member_that_left_a_line_is_refused_a_key_update_not_an_internal_error() {
    let line = LineId([5; 16]);
    let (mut ph, mut cn, mut vn) = (hotline("PH"), hotline("CN"), hotline("VN"));
    let setup = create(&mut ph, &mut [&mut cn, &mut vn], line, "PH,CN,VN", "ADMM-Plus");
    cn.receive(1, &code("PH"), setup.envelope.bytes()).unwrap();
    vn.receive(1, &code("PH"), setup.envelope.bytes()).unwrap();
    // VN leaves: its proposal reaches PH, which commits it at once; the commit reaches VN.
    let leaving = vn.leave(2, line).unwrap();
    let at_ph = ph.receive(3, &code("VN"), leaving.envelope.bytes()).unwrap();
    let commit = at_ph.iter().find(|r| r.sender == code("PH")).expect("PH commits VN's leaving");
    vn.receive(4, &code("PH"), commit.envelope.bytes()).unwrap();
    assert!(!vn.line(&line).unwrap().has_member(&code("VN")));
    // Its key-update timer does not fire on the line again and again: the next wake is ahead.
    let interval_ms = vn.discipline().key_update_interval_s * 1000;
    assert!(interval_ms > 0);
    let later = 5 + 3 * interval_ms;
    vn.tick(later);
    assert!(vn.next_wake().is_some_and(|w| w > later), "{:?}", vn.next_wake());
    let refused = vn.update_keys(5, line).unwrap_err();
    check(
        format!("{:?} {}: {}", refused.kind, refused.code, refused.message),
        expect!["Forbidden removed: VN is not on line 05050505050505050505050505050505"],
    );
}

/// A line set-up naming a member this node's roster version does not list yet (an admission the
/// home member's node applied first), or suspends, is deferred, not refused for good: taken once
/// this node holds the version that lists the member in good standing.
#[test]
fn a_set_up_naming_a_member_the_roster_here_does_not_list_yet_is_taken_once_it_does() {
    use adi_core::fixtures::roster;
    let mut ph = hotline("PH");
    let mut cn = hotline("CN");
    let mut vn = Hotline::new(
        adi_core::HotlineConfig { roster: roster(&[WORLD[0], WORLD[1], WORLD[3]]), ..config("VN", 2) },
        adi_core::Restored::default(),
        0,
    )
    .unwrap();
    let setup = create(&mut ph, &mut [&mut vn, &mut cn], LineId([7; 16]), "PH,VN,CN", "ADMM-Plus");
    let bytes = setup.envelope.bytes().to_vec();
    let refusal = vn.receive(2, &code("PH"), &bytes).unwrap_err();
    assert_eq!((refusal.retry, refusal.code), (true, RefusalCode::NotReady), "{}", refusal.reason);
    assert!(refusal.reason.contains("CN is not in the roster"), "{}", refusal.reason);
    // Suspended here: deferred the same way.
    let mut file = roster(&WORLD).to_file();
    file.suspended = vec!["CN".into()];
    vn.set_roster(adi_core::Roster::from_file(&file).unwrap());
    let refusal = vn.receive(3, &code("PH"), &bytes).unwrap_err();
    assert_eq!((refusal.retry, refusal.code), (true, RefusalCode::NotReady), "{}", refusal.reason);
    // The version that lists CN in good standing: the set-up is taken.
    vn.set_roster(roster(&WORLD));
    let taken = vn.receive(4, &code("PH"), &bytes).unwrap();
    assert!(!taken.is_empty());
    assert!(vn.line(&LineId([7; 16])).is_some());
}

/// A member rotates its signing key while a conference runs: what it signed under its old key
/// and delivered late is taken where the roster version retired that key by rotation (refused
/// where it did not); its renewed leaf is proposed, committed at once by the home member and
/// followed by every member; and its messages under the new key are read everywhere.
#[test]
fn a_rotated_key_moves_a_members_leaf_and_what_it_signed_before_is_still_taken() {
    use adi_core::fixtures::roster;
    let (mut ph, mut vn, mut cn) = (hotline("PH"), hotline("VN"), hotline("CN"));
    let line = LineId([9; 16]);
    let setup = create(&mut ph, &mut [&mut vn, &mut cn], line, "PH,VN,CN", "ADMM-Plus");
    for m in [&mut vn, &mut cn] {
        m.receive(2, &code("PH"), setup.envelope.bytes()).unwrap();
    }
    // Signed under VN's old key, and delivered only after the rotation took effect.
    let late = vn.send(3, line, draft("ROUTINE", "signed before the rotation"), None).unwrap();

    // The version giving VN its new key, in force everywhere; PH took it as the rotation it is,
    // CN as if the old key had been replaced without its signature.
    let new_key = key(42);
    let mut file = roster(&WORLD).to_file();
    file.members.iter_mut().find(|m| m.code == "VN").unwrap().signing_key =
        hex::encode(new_key.verifying_key().as_bytes());
    let rotated = adi_core::Roster::from_file(&file).unwrap();
    for m in [&mut ph, &mut vn, &mut cn] {
        m.set_roster(rotated.clone());
    }
    ph.retire_key(&code("VN"), key(2).verifying_key());
    vn.rotate_key(new_key).unwrap();

    assert!(ph.receive(4, &code("VN"), late.envelope.bytes()).is_ok());
    let refused = cn.receive(4, &code("VN"), late.envelope.bytes()).unwrap_err();
    assert_eq!(refused.code, RefusalCode::BadSignature, "{}", refused.reason);

    // VN's leaf moves to its new key: proposed, committed at once by PH, followed by VN.
    let renewal = vn.renew_leaves(5).unwrap();
    assert_eq!(renewal.len(), 1);
    let taken = ph.receive(6, &code("VN"), renewal[0].envelope.bytes()).unwrap();
    let commit = taken.iter().find(|r| r.envelope.body().sender == "PH").expect("PH commits the renewal at once");
    vn.receive(7, &code("PH"), commit.envelope.bytes()).unwrap();
    assert!(vn.renew_leaves(8).unwrap().is_empty(), "the leaf carries the new key already");

    // Under the new key, VN's message is read at PH.
    let after = vn.send(9, line, draft("ROUTINE", "signed after the rotation"), None).unwrap();
    let read = ph.receive(10, &code("VN"), after.envelope.bytes()).unwrap();
    assert!(read.iter().any(|r| matches!(&r.content, Content::Message(m) if m.subject == "signed after the rotation")));
}

#[test]
fn a_welcome_with_a_leaf_under_a_key_retired_by_rotation_is_taken() {
    use adi_core::fixtures::roster;
    // The version giving VN a new key is in force at PH and CN; VN has not switched yet, so its
    // KeyPackage, and its leaf in the line PH creates, carry its old key.
    let (mut ph, mut vn, mut cn, mut cn_unaware) = (hotline("PH"), hotline("VN"), hotline("CN"), hotline("CN"));
    let mut file = roster(&WORLD).to_file();
    file.members.iter_mut().find(|m| m.code == "VN").unwrap().signing_key =
        hex::encode(key(42).verifying_key().as_bytes());
    let rotated = adi_core::Roster::from_file(&file).unwrap();
    for m in [&mut ph, &mut cn, &mut cn_unaware] {
        m.set_roster(rotated.clone());
    }
    cn.retire_key(&code("VN"), key(2).verifying_key());
    let line = LineId([10; 16]);
    let kps = key_packages_of(&mut [&mut vn, &mut cn]);
    let setup = ph.create_line(1, line, new_line("PH,VN,CN", "ADMM-Plus"), kps).unwrap();
    // CN, which retired VN's old key as the rotation's version took effect, joins; a node that
    // knows only the roster's key refuses the Welcome.
    assert!(cn.receive(2, &code("PH"), setup.envelope.bytes()).is_ok());
    let other = LineId([11; 16]);
    let kps = key_packages_of(&mut [&mut vn, &mut cn_unaware]);
    let setup = ph.create_line(3, other, new_line("PH,VN,CN", "ADMM-Plus"), kps).unwrap();
    let refused = cn_unaware.receive(4, &code("PH"), setup.envelope.bytes()).unwrap_err();
    assert_eq!(refused.code, RefusalCode::BadLineSetup, "{}", refused.reason);
}
