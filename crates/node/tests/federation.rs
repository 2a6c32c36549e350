//! Federation between real nodes over real mutual TLS on loopback: delivery, queues, failover,
//! precedence, and every refusal the federation listener must make.

mod common;

use std::sync::Arc;
use std::time::Duration;

use adi_core::MemberCode;
use adi_node::fed::links::post_batch_once;
use adi_node::tls;
use adi_wire::batch::{RefusalCode, Verdict};
use adi_wire::envelope::{
    EnvelopeBody, CONTENT_MLS, CONTENT_MLS_SETUP, PRIORITY_CONTROL, PRIORITY_FLASH, PRIORITY_ROUTINE,
};
use adi_wire::payload::PayloadV1;
use adi_wire::{EnvelopeHash, LineId};
use common::{endpoint, eventually, get_list, keys_towards, open_line, pin_of, send, wait_delivered, Net};
use ed25519_dalek::SigningKey;
use hyper::Method;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

fn code(s: &str) -> MemberCode {
    MemberCode::parse(s).unwrap()
}

/// Messages on a line as the given member's node records them.
async fn line_messages(net: &Net, at: &str, line: &str) -> Vec<Value> {
    get_list(&net.client(at), &format!("/api/v1/lines/{line}/messages?limit=10000")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_and_three_nodes_deliver_every_precedence_on_lines_of_both_scopes() {
    let net = Net::start(&["PH", "VN", "CN"]).await;
    let ph = net.client("PH");
    let direct_plus = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let direct_admm = open_line(&ph, &["PH", "VN"], "ADMM").await;
    let conference = open_line(&ph, &["PH", "VN", "CN"], "ADMM-Plus").await;

    let mut sent = Vec::new();
    for (line, from) in [(&direct_plus, "PH"), (&direct_admm, "PH"), (&conference, "PH")] {
        for p in ["FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE"] {
            let id = send(&net.client(from), line, p, &format!("{p} from {from}")).await;
            sent.push((line.clone(), from, p, id));
        }
    }
    // Members other than the home member send too, once the line has reached them.
    for (line, from) in [(&direct_plus, "CN"), (&conference, "VN"), (&conference, "CN")] {
        let c = net.client(from);
        eventually(WAIT, "the line to reach its members", || {
            let c = c.clone();
            let line = line.clone();
            async move { c.call(Method::GET, &format!("/api/v1/lines/{line}"), None).await.ok() }
        })
        .await;
        for p in ["FLASH", "ROUTINE"] {
            let id = send(&c, line, p, &format!("{p} from {from}")).await;
            sent.push((line.clone(), from, p, id));
        }
    }

    for (line, from, p, id) in &sent {
        let m = wait_delivered(&net.client(from), id, WAIT).await;
        assert_eq!(m["precedence"], *p);
        let recipients = m["recipients"].as_array().unwrap();
        let expected = if line == &conference { 2 } else { 1 };
        assert_eq!(recipients.len(), expected, "{m}");
        for r in recipients {
            assert_eq!(r["state"], "delivered");
            assert!(r["delivered_ms"].as_u64().unwrap() >= r["sent_ms"].as_u64().unwrap());
            // Delivered means committed at the recipient's node: it is there, with the same id.
            let at = r["member"].as_str().unwrap();
            let there = net.client(at).call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.unwrap();
            assert_eq!(there["sender"], *from);
            assert_eq!(there["precedence"], *p);
            assert_eq!(there["line"], line.as_str());
        }
    }
    // Each recipient's node said, signed, that it decrypted each message.
    for (_, from, _, id) in &sent {
        eventually(WAIT, "every recipient's decrypted receipt", || async {
            let m = net.client(from).call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.ok()?;
            m["recipients"].as_array()?.iter().all(|r| r["decrypted_ms"].is_u64()).then_some(())
        })
        .await;
    }
    // Line identifiers and membership are the same on every member's node.
    for at in ["VN", "CN"] {
        let conf = net.client(at).call(Method::GET, &format!("/api/v1/lines/{conference}"), None).await.unwrap();
        assert_eq!(conf["members"], serde_json::json!(["CN", "PH", "VN"]));
        assert_eq!(conf["home"], "PH");
    }
    // The ADMM line never reached the Plus member.
    let (status, _) =
        net.client("CN").request(Method::GET, &format!("/api/v1/lines/{direct_admm}"), None).await.unwrap();
    assert_eq!(status, 404);
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_to_a_down_peer_queue_and_all_arrive_in_order_when_it_returns() {
    let mut net = Net::start(&["PH", "CN"]).await;
    let ph = net.client("PH");
    // Opening a line needs a KeyPackage from each member's node, so it is opened first.
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    eventually(WAIT, "the line set-up to be delivered", || {
        let ph = ph.clone();
        async move {
            let peers = get_list(&ph, "/api/v1/peers").await;
            peers
                .iter()
                .any(|p| p["member"] == "CN" && p["queue_len"] == 0 && p["last_delivery_ms"].is_u64())
                .then_some(())
        }
    })
    .await;
    net.stop_code("CN").await;
    let mut ids = Vec::new();
    for i in 0..40 {
        let p = ["ROUTINE", "PRIORITY", "IMMEDIATE", "FLASH"][i % 4];
        ids.push(send(&ph, &line, p, &format!("queued {i}")).await);
    }
    // While CN is down everything waits in PH's outbox, marked sent.
    let cn = eventually(WAIT, "the link to report CN unreachable", || {
        let ph = ph.clone();
        async move {
            let peers = get_list(&ph, "/api/v1/peers").await;
            peers.into_iter().find(|p| p["member"] == "CN" && p["last_error"].is_string())
        }
    })
    .await;
    assert_eq!(cn["queue_len"], 40, "{cn}");
    assert!(cn["failures"].as_u64().unwrap() >= 1, "{cn}");
    assert!(cn["oldest_queued_age_ms"].is_u64(), "{cn}");
    let m = ph.call(Method::GET, &format!("/api/v1/messages/{}", ids[0]), None).await.unwrap();
    assert_eq!(m["recipients"][0]["state"], "sent");

    net.start_code("CN").await;
    for id in &ids {
        wait_delivered(&ph, id, WAIT).await;
    }
    let at_cn = line_messages(&net, "CN", &line).await;
    assert_eq!(at_cn.len(), 40);
    let seqs: Vec<u64> = at_cn.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (2..=41).collect::<Vec<u64>>(), "the record keeps the sender's order");
    let peers = get_list(&ph, "/api/v1/peers").await;
    assert_eq!(peers.iter().find(|p| p["member"] == "CN").unwrap()["queue_len"], 0);
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_fails_over_to_the_second_listed_endpoint() {
    let net = Net::init(&["PH", "CN"]);
    // CN's roster entry lists first an endpoint where nothing listens, then its real one.
    let dead = common::free_ports(1);
    let roster_path = net.dir.path().join("roster.toml");
    let mut roster = adi_wire::files::RosterFile::from_toml(&std::fs::read_to_string(&roster_path).unwrap()).unwrap();
    let cn = roster.members.iter_mut().find(|m| m.code == "CN").unwrap();
    let live = cn.endpoints[0].clone();
    cn.endpoints.insert(0, format!("127.0.0.1:{dead}"));
    for code in ["PH", "CN"] {
        std::fs::write(net.member_dir(code).join("roster.toml"), roster.to_toml()).unwrap();
    }
    let mut net = net;
    net.start_code("PH").await;
    net.start_code("CN").await;
    let ph = net.client("PH");
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let id = send(&ph, &line, "FLASH", "over the second bearer").await;
    wait_delivered(&ph, &id, WAIT).await;
    let peers = get_list(&ph, "/api/v1/peers").await;
    let cn = peers.iter().find(|p| p["member"] == "CN").unwrap();
    assert_eq!(cn["endpoint"].as_str(), Some(live.as_str()), "{cn}");
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flash_enqueued_behind_500_routine_messages_arrives_first() {
    let mut net = Net::start(&["PH", "CN"]).await;
    let ph = net.client("PH");
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let first = send(&ph, &line, "ROUTINE", "line check").await;
    wait_delivered(&ph, &first, WAIT).await;

    net.stop_code("CN").await;
    let mut routine = Vec::new();
    for i in 0..500 {
        routine.push(send(&ph, &line, "ROUTINE", &format!("routine {i}")).await);
    }
    let flash = send(&ph, &line, "FLASH", "the one that matters").await;
    net.start_code("CN").await;
    wait_delivered(&ph, &flash, WAIT).await;
    for id in &routine {
        wait_delivered(&ph, id, WAIT).await;
    }

    let at_cn = line_messages(&net, "CN", &line).await;
    assert_eq!(at_cn.len(), 502);
    let arrival = |id: &str| at_cn.iter().find(|m| m["id"] == id).unwrap()["arrival"].as_u64().unwrap();
    let flash_arrival = arrival(&flash);
    for id in &routine {
        assert!(flash_arrival < arrival(id), "the FLASH arrived after a ROUTINE message");
    }
    // The record still keeps the sender's order: the FLASH is last by sequence number.
    assert_eq!(at_cn.last().unwrap()["id"], flash.as_str());
    // The inbox shows it first.
    let inbox = get_list(&net.client("CN"), "/api/v1/inbox?limit=5").await;
    assert_eq!(inbox[0]["id"], flash.as_str());
    net.stop_all().await;
}

fn setup_envelope(key: &SigningKey, sender: &str, line: LineId, scope: &str, members: &[&str]) -> Vec<u8> {
    setup_with_welcome(key, sender, line, scope, members, None)
}

fn setup_with_welcome(
    key: &SigningKey,
    sender: &str,
    line: LineId,
    scope: &str,
    members: &[&str],
    welcome: Option<Vec<u8>>,
) -> Vec<u8> {
    let payload = PayloadV1::LineSetup {
        v: 1,
        scope: scope.into(),
        title: String::new(),
        home: sender.into(),
        members: members.iter().map(|m| m.to_string()).collect(),
        welcome: welcome.map(hex::encode),
    };
    EnvelopeBody {
        line,
        sender: sender.into(),
        seq: 1,
        prev: EnvelopeHash::NONE,
        epoch: 0,
        created_ms: 1,
        priority: PRIORITY_CONTROL,
        content_type: CONTENT_MLS_SETUP,
        content_hash: [0; 32],
        payload: payload.encode(),
    }
    .sign(key)
    .bytes()
    .to_vec()
}

fn message_envelope(key: &SigningKey, sender: &str, line: LineId, seq: u64, subject: &str, flash: bool) -> Vec<u8> {
    let payload = PayloadV1::Message {
        v: 1,
        precedence: if flash { "FLASH" } else { "ROUTINE" }.into(),
        class: "OPERATIONAL".into(),
        caveat: "C".into(),
        subject: subject.into(),
        body: "b".into(),
        ack_required: true,
        crisis: false,
        deadline_s: None,
        released_by: None,
        form: None,
        ewg: None,
        attachments: Vec::new(),
    };
    EnvelopeBody {
        line,
        sender: sender.into(),
        seq,
        prev: EnvelopeHash::NONE,
        epoch: 0,
        created_ms: 2,
        priority: if flash { PRIORITY_FLASH } else { PRIORITY_ROUTINE },
        // Not real MLS ciphertext: these envelopes test the checks made before decryption.
        content_type: CONTENT_MLS,
        content_hash: [0; 32],
        payload: payload.encode(),
    }
    .sign(key)
    .bytes()
    .to_vec()
}

async fn lines_at(net: &Net, code: &str) -> Vec<Value> {
    get_list(&net.client(code), "/api/v1/lines").await
}

fn rejected(v: &Verdict, needle: &str) -> bool {
    matches!(v, Verdict::Rejected { reason, .. } if reason.contains(needle))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_an_unpinned_tls_key_is_refused_at_the_handshake() {
    let net = Net::start(&["PH", "CN"]).await;
    let real = keys_towards(&net, "PH", "CN");
    // A stranger holds a certificate for the same name but a key that no roster pins; it even
    // carries an envelope validly signed with PH's member key.
    let stranger = tls::generate_identity("PH").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.pem"), &stranger.cert_pem).unwrap();
    std::fs::write(dir.path().join("k.pem"), &stranger.key_pem).unwrap();
    let (cert, key) = tls::load_identity(&dir.path().join("c.pem"), &dir.path().join("k.pem")).unwrap();
    let config = Arc::new(tls::federation_client_config(cert, key, pin_of(&net, "CN")).unwrap());
    // A genuine line set-up: PH's MLS group with a KeyPackage claimed from CN, signed by PH.
    let cn_kp =
        adi_node::fed::links::claim_key_package_from(&endpoint(&net, "CN"), real.tls.clone(), &code("CN"), 5_000)
            .await
            .unwrap();
    let keys = |c: &str| net.node("CN").state.roster_member(&code(c)).map(|m| m.signing_key.to_bytes());
    let (_, kp) = adi_mls::check_key_package(&cn_kp, &keys, &mut Default::default()).unwrap();
    let mut ph_mls = adi_mls::LineMember::new("PH", real.signing.to_bytes(), adi_mls::MlsConfig::default()).unwrap();
    let created = ph_mls.create_line([9; 16], vec![kp]).unwrap();
    let envelope =
        setup_with_welcome(&real.signing, "PH", LineId([9; 16]), "ADMM-Plus", &["PH", "CN"], created.welcome);
    let result = post_batch_once(&endpoint(&net, "CN"), config, &code("CN"), &[&envelope], 5_000).await;
    assert!(result.is_err(), "an unpinned client got an answer: {result:?}");
    // The same envelope over PH's pinned identity is accepted, which shows the key was the reason.
    assert!(lines_at(&net, "CN").await.is_empty(), "nothing is stored from the stranger");
    let ok = post_batch_once(&endpoint(&net, "CN"), real.tls, &code("CN"), &[&envelope], 5_000).await.unwrap();
    assert_eq!(ok.verdicts, vec![Verdict::Accepted]);
    assert_eq!(lines_at(&net, "CN").await.len(), 1);

    // A client that expects another member's pin refuses to talk to CN.
    let wrong = keys_towards(&net, "PH", "PH");
    assert!(post_batch_once(&endpoint(&net, "CN"), wrong.tls, &code("CN"), &[&envelope], 5_000).await.is_err());
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_with_a_bad_signature_is_refused_and_nothing_is_stored() {
    let net = Net::start(&["PH", "CN"]).await;
    let ph = keys_towards(&net, "PH", "CN");
    let forger = SigningKey::from_bytes(&[42; 32]);
    let forged = setup_envelope(&forger, "PH", LineId([1; 16]), "ADMM-Plus", &["PH", "CN"]);
    let mut flipped = setup_envelope(&ph.signing, "PH", LineId([2; 16]), "ADMM-Plus", &["PH", "CN"]);
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let reply = post_batch_once(&endpoint(&net, "CN"), ph.tls, &code("CN"), &[&forged, &flipped], 5_000).await.unwrap();
    assert!(rejected(&reply.verdicts[0], "signature"), "{reply:?}");
    assert!(rejected(&reply.verdicts[1], "signature"), "{reply:?}");
    assert!(lines_at(&net, "CN").await.is_empty());
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_with_altered_content_is_refused_and_an_exact_replay_is_a_duplicate() {
    let net = Net::start(&["PH", "CN"]).await;
    let ph = keys_towards(&net, "PH", "CN");
    let client = net.client("PH");
    let line = open_line(&client, &["PH", "CN"], "ADMM-Plus").await;
    let id = send(&client, &line, "ROUTINE", "original").await;
    wait_delivered(&client, &id, WAIT).await;
    let (e, original) = common::envelope(&client, &id).await;

    // Same line, sender and sequence number, different content, properly signed by PH.
    let seq = e["seq"].as_u64().unwrap();
    let altered = message_envelope(&ph.signing, "PH", LineId::from_hex(&line).unwrap(), seq, "altered", false);
    let reply = post_batch_once(&endpoint(&net, "CN"), ph.tls.clone(), &code("CN"), &[&altered, &original], 5_000)
        .await
        .unwrap();
    // PH signed two envelopes for one place in its chain: refused as tampering, and kept.
    assert!(rejected(&reply.verdicts[0], "tamper: PH signed two envelopes"), "{reply:?}");
    assert_eq!(reply.verdicts[1], Verdict::Duplicate);
    assert_eq!(get_list(&net.client("CN"), "/api/v1/evidence").await.len(), 1);

    let at_cn = line_messages(&net, "CN", &line).await;
    assert_eq!(at_cn.len(), 1);
    assert_eq!(at_cn[0]["subject"], "original");
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelopes_from_a_member_not_on_the_line_or_relayed_are_refused() {
    let net = Net::start(&["PH", "VN", "CN"]).await;
    let ph = net.client("PH");
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let id = send(&ph, &line, "ROUTINE", "between PH and CN").await;
    wait_delivered(&ph, &id, WAIT).await;
    let line_id = LineId::from_hex(&line).unwrap();

    // VN is in the roster and pinned, but not on the line.
    let vn = keys_towards(&net, "VN", "CN");
    let intruding = message_envelope(&vn.signing, "VN", line_id, 1, "intrusion", true);
    let reply =
        post_batch_once(&endpoint(&net, "CN"), vn.tls.clone(), &code("CN"), &[&intruding], 5_000).await.unwrap();
    assert!(rejected(&reply.verdicts[0], "not a member"), "{reply:?}");

    // An envelope signed by PH but carried over VN's connection: relaying is refused.
    let ph_keys = keys_towards(&net, "PH", "CN");
    let carried = message_envelope(&ph_keys.signing, "PH", line_id, 9, "carried", false);
    let reply = post_batch_once(&endpoint(&net, "CN"), vn.tls.clone(), &code("CN"), &[&carried], 5_000).await.unwrap();
    assert!(rejected(&reply.verdicts[0], "relaying"), "{reply:?}");
    // Claiming a place CN holds for PH (PH's first envelopes on the line) tells VN nothing of
    // what is stored there: refused as relayed before any lookup, never a conflict naming the
    // stored envelope's hash, and no evidence laid at PH's door.
    for seq in [1, 2] {
        let claimed = message_envelope(&ph_keys.signing, "PH", line_id, seq, "claimed", false);
        let reply =
            post_batch_once(&endpoint(&net, "CN"), vn.tls.clone(), &code("CN"), &[&claimed], 5_000).await.unwrap();
        let relayed = matches!(reply.verdicts[0], Verdict::Rejected { code: RefusalCode::Relayed, .. });
        assert!(relayed, "seq {seq}: {reply:?}");
    }
    let cn = net.client("CN");
    let alarms = cn.call(Method::GET, "/api/v1/alarms", None).await.unwrap();
    assert!(
        !alarms.as_array().unwrap().iter().any(|a| a["kind"] == "tamper"),
        "no tamper evidence from a relayed envelope: {alarms}"
    );
    // Nodes never relay: one misconduct alarm names VN, the member whose connection carried them,
    // and none names PH, whose envelopes they were.
    let misconduct: Vec<&Value> = alarms.as_array().unwrap().iter().filter(|a| a["kind"] == "misconduct").collect();
    assert_eq!(misconduct.len(), 1, "{alarms}");
    assert_eq!(misconduct[0]["member"], "VN");
    assert!(misconduct[0]["repeats"].as_u64().unwrap() >= 2, "three relayed envelopes: {alarms}");

    let at_cn = line_messages(&net, "CN", &line).await;
    assert_eq!(at_cn.len(), 1, "only PH's message is on the line at CN");
    assert_eq!(at_cn[0]["sender"], "PH");
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plus_member_on_an_admm_line_is_refused_by_the_receiving_node() {
    let net = Net::start(&["PH", "VN", "CN"]).await;
    // CN announces an ADMM line with itself on it: PH's node refuses it.
    let cn = keys_towards(&net, "CN", "PH");
    let setup = setup_envelope(&cn.signing, "CN", LineId([5; 16]), "ADMM", &["CN", "PH"]);
    let reply = post_batch_once(&endpoint(&net, "PH"), cn.tls, &code("PH"), &[&setup], 5_000).await.unwrap();
    assert!(rejected(&reply.verdicts[0], "may not be on a line of scope ADMM"), "{reply:?}");
    // VN announces an ADMM line that includes CN: PH refuses it too.
    let vn = keys_towards(&net, "VN", "PH");
    let setup = setup_envelope(&vn.signing, "VN", LineId([6; 16]), "ADMM", &["VN", "PH", "CN"]);
    let reply = post_batch_once(&endpoint(&net, "PH"), vn.tls.clone(), &code("PH"), &[&setup], 5_000).await.unwrap();
    assert!(rejected(&reply.verdicts[0], "may not be on a line of scope ADMM"), "{reply:?}");
    // A message for a line PH never accepted is deferred, not stored.
    let orphan = message_envelope(&vn.signing, "VN", LineId([6; 16]), 2, "orphan", false);
    let reply = post_batch_once(&endpoint(&net, "PH"), vn.tls, &code("PH"), &[&orphan], 5_000).await.unwrap();
    assert!(matches!(reply.verdicts[0], Verdict::Deferred { .. }), "{reply:?}");
    assert!(lines_at(&net, "PH").await.is_empty());
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_envelope_is_refused_before_anything_is_stored() {
    let net = Net::start(&["PH", "CN"]).await;
    let ph = keys_towards(&net, "PH", "CN");
    let line = LineId([11; 16]);
    let setup = setup_envelope(&ph.signing, "PH", line, "ADMM-Plus", &["PH", "CN"]);
    let big_body = "x".repeat(300 * 1024);
    let big = envelope_with_body(&ph.signing, line, &big_body);
    let result = post_batch_once(&endpoint(&net, "CN"), ph.tls, &code("CN"), &[&setup, &big], 5_000).await;
    let err = result.unwrap_err();
    assert!(err.contains("400") && err.contains("over the limit"), "{err}");
    assert!(lines_at(&net, "CN").await.is_empty(), "the whole batch was refused");
    net.stop_all().await;
}

fn envelope_with_body(key: &SigningKey, line: LineId, body: &str) -> Vec<u8> {
    let payload = PayloadV1::Message {
        v: 1,
        precedence: "ROUTINE".into(),
        class: "OPERATIONAL".into(),
        caveat: "C".into(),
        subject: "big".into(),
        body: body.into(),
        ack_required: true,
        crisis: false,
        deadline_s: None,
        released_by: None,
        form: None,
        ewg: None,
        attachments: Vec::new(),
    };
    EnvelopeBody {
        line,
        sender: "PH".into(),
        seq: 2,
        prev: EnvelopeHash::NONE,
        epoch: 0,
        created_ms: 2,
        priority: PRIORITY_ROUTINE,
        content_type: CONTENT_MLS,
        content_hash: [0; 32],
        payload: payload.encode(),
    }
    .sign(key)
    .bytes()
    .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_a_peer_refuses_as_too_large_is_marked_refused_and_does_not_block_the_queue() {
    let net = Net::init(&["PH", "CN"]);
    // CN takes smaller envelopes than PH sends.
    let config = net.config_path("CN");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("[limits]"), "{text}");
    std::fs::write(&config, text.replace("[limits]", "[limits]\nenvelope_bytes_max = 4096")).unwrap();
    let mut net = net;
    net.start_code("PH").await;
    net.start_code("CN").await;
    let ph = net.client("PH");
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let before = send(&ph, &line, "ROUTINE", "before").await;
    let body = serde_json::json!({"precedence": "ROUTINE", "subject": "large", "body": "y".repeat(8_000)});
    let large = ph.call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&body)).await.unwrap();
    let large = large["id"].as_str().unwrap().to_string();
    let after = send(&ph, &line, "ROUTINE", "after").await;
    wait_delivered(&ph, &before, WAIT).await;
    wait_delivered(&ph, &after, WAIT).await;
    let refused = eventually(WAIT, "the large envelope to be marked refused", || {
        let ph = ph.clone();
        let large = large.clone();
        async move {
            let m = ph.call(Method::GET, &format!("/api/v1/messages/{large}"), None).await.ok()?;
            (m["recipients"][0]["state"] == "refused").then_some(m)
        }
    })
    .await;
    let detail = refused["recipients"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("400"), "{detail}");
    let subjects: Vec<String> =
        line_messages(&net, "CN", &line).await.iter().map(|m| m["subject"].as_str().unwrap().to_string()).collect();
    assert_eq!(subjects, vec!["before", "after"]);
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_node_handed_every_envelope_of_a_line_reads_none() {
    let net = Net::start(&["PH", "VN", "CN"]).await;
    let ph = net.client("PH");
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let mut ids = Vec::new();
    for p in ["FLASH", "ROUTINE"] {
        let id = send(&ph, &line, p, &format!("for CN only: {p}")).await;
        wait_delivered(&ph, &id, WAIT).await;
        ids.push(id);
    }
    // Every envelope PH holds for the line, exactly as it travelled, handed to VN over PH's
    // pinned connection: the set-up (the first message's predecessor) and each message.
    let (first, first_bytes) = common::envelope(&ph, &ids[0]).await;
    let (setup, setup_bytes) = common::envelope(&ph, first["prev"].as_str().unwrap()).await;
    assert_eq!(setup["kind"], "line_setup");
    let (_, second_bytes) = common::envelope(&ph, &ids[1]).await;
    let envelopes = vec![setup_bytes, first_bytes, second_bytes];
    for bytes in &envelopes {
        assert!(!contains(bytes, b"for CN only"), "a message travelled in the clear");
    }
    let keys = keys_towards(&net, "PH", "VN");
    let reply = post_batch_once(
        &endpoint(&net, "VN"),
        keys.tls,
        &code("VN"),
        &envelopes.iter().map(Vec::as_slice).collect::<Vec<_>>(),
        5_000,
    )
    .await
    .unwrap();
    assert!(reply.verdicts.iter().all(|v| !matches!(v, Verdict::Accepted | Verdict::Duplicate)), "{reply:?}");
    assert!(lines_at(&net, "VN").await.is_empty());
    assert!(get_list(&net.client("VN"), "/api/v1/inbox").await.is_empty());
    net.stop_all().await;
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
