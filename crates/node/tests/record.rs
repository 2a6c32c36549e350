//! The hash chain at the node: an envelope that contradicts what its sender signed before (two
//! envelopes for one place in its chain, or a link to an envelope that is not the one held) is
//! refused with a `tamper` alarm, and both signed versions are kept as evidence that verifies
//! offline under the sender's roster key.

mod common;

use std::time::Duration;

use adi_core::MemberCode;
use adi_node::fed::links::post_batch_once;
use adi_wire::batch::Verdict;
use adi_wire::content::SignedContent;
use adi_wire::envelope::{EnvelopeBody, CONTENT_MLS, PRIORITY_ROUTINE};
use adi_wire::{Envelope, EnvelopeHash, LineId};
use base64::Engine;
use common::{eventually, get_list, open_line, send, wait_delivered, Net};
use ed25519_dalek::{SigningKey, VerifyingKey};

const WAIT: Duration = Duration::from_secs(30);

/// An envelope signed by `key` as PH's `seq` on the line, naming `prev`.
fn signed_as_ph(key: &SigningKey, line: LineId, seq: u64, prev: EnvelopeHash, payload: &[u8]) -> Vec<u8> {
    EnvelopeBody {
        line,
        sender: "PH".into(),
        seq,
        prev,
        epoch: 1,
        created_ms: 1_796_000_000_000,
        priority: PRIORITY_ROUTINE,
        content_type: CONTENT_MLS,
        content_hash: [0; 32],
        payload: payload.to_vec(),
    }
    .sign(key)
    .bytes()
    .to_vec()
}

async fn offer(net: &Net, bytes: &[u8]) -> Verdict {
    let keys = common::keys_towards(net, "PH", "CN");
    let cn = MemberCode::parse("CN").unwrap();
    let reply = post_batch_once(&common::endpoint(net, "CN"), keys.tls, &cn, &[bytes], 5_000).await.unwrap();
    reply.verdicts.into_iter().next().unwrap()
}

fn reason(v: &Verdict) -> String {
    match v {
        Verdict::Rejected { reason, .. } => reason.clone(),
        other => panic!("not refused: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contradiction_of_a_senders_chain_is_refused_alarmed_and_kept_as_evidence() {
    let net = Net::start_with(&["PH", "CN"], |d| d.link_test_interval_s = 0).await;
    let ph = net.client("PH");
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let second = send(&ph, &line, "ROUTINE", "PH's #2").await;
    wait_delivered(&ph, &second, WAIT).await;
    let third = send(&ph, &line, "ROUTINE", "PH's #3").await;
    wait_delivered(&ph, &third, WAIT).await;
    let (_, second_bytes) = common::envelope(&ph, &second).await;
    let held_second = Envelope::decode(&second_bytes, 1 << 20, 1 << 20).unwrap();
    let line_id = LineId::from_hex(&line).unwrap();
    let key = common::keys_towards(&net, "PH", "CN").signing;

    // PH's key signs another #2: two envelopes for one place in its chain.
    let twin = signed_as_ph(&key, line_id, 2, held_second.body().prev, b"another #2");
    let why = reason(&offer(&net, &twin).await);
    assert!(why.starts_with("tamper: PH signed two envelopes as its #2"), "{why}");
    // A #4 whose link is not the #3 CN holds.
    let astray = signed_as_ph(&key, line_id, 4, EnvelopeHash([9; 32]), b"a #4 off the chain");
    let why = reason(&offer(&net, &astray).await);
    assert!(why.starts_with("tamper: PH's #4 names"), "{why}");
    // Without PH's signature it proves nothing against PH: refused, and no evidence.
    let forged = signed_as_ph(&SigningKey::from_bytes(&[3; 32]), line_id, 2, held_second.body().prev, b"forged");
    let why = reason(&offer(&net, &forged).await);
    assert!(!why.contains("tamper"), "{why}");

    let cn = net.client("CN");
    let alarms = eventually(WAIT, "two tamper alarms at CN", || async {
        let a: Vec<_> = get_list(&cn, "/api/v1/alarms").await.into_iter().filter(|a| a["kind"] == "tamper").collect();
        (a.len() == 2).then_some(a)
    })
    .await;
    assert!(alarms.iter().all(|a| a["member"] == "PH" && a["line"] == line.as_str()), "{alarms:?}");
    let evidence = get_list(&cn, "/api/v1/evidence").await;
    assert_eq!(evidence.len(), 2, "{evidence:?}");
    let b64 = base64::engine::general_purpose::STANDARD;
    let ph_key: VerifyingKey = key.verifying_key();
    for (e, offered) in evidence.iter().zip([&astray, &twin]) {
        assert_eq!(e["member"], "PH");
        let held = b64.decode(e["held_base64"].as_str().unwrap()).unwrap();
        assert_eq!(b64.decode(e["offered_base64"].as_str().unwrap()).unwrap(), *offered);
        // Both sides of the contradiction carry PH's signature: the evidence stands offline.
        for bytes in [&held, offered] {
            let envelope = Envelope::decode(bytes, 1 << 20, 1 << 20).unwrap();
            envelope.verify(&ph_key).expect("signed by PH's roster key");
        }
    }
    assert_eq!(evidence[1]["held_id"], second.as_str(), "the #2 CN holds is the one PH sent");

    // Nothing refused was stored: the line goes on from PH's real #3.
    let fourth = send(&ph, &line, "FLASH", "PH's #4").await;
    wait_delivered(&ph, &fourth, WAIT).await;
    net.stop_all().await;
}

/// A member's roster key, as `adi verify` would take it from the roster.
fn roster_key(net: &Net, code: &str) -> VerifyingKey {
    common::keys_towards(net, code, if code == "PH" { "CN" } else { "PH" }).signing.verifying_key()
}

async fn checkpoint(net: &Net, at: &str, line: &str) -> serde_json::Value {
    net.client(at).call(hyper::Method::POST, &format!("/api/v1/lines/{line}/checkpoints"), None).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_are_countersigned_by_every_member_and_verify_offline() {
    let net = Net::start_with(&["PH", "CN", "VN"], |d| d.link_test_interval_s = 0).await;
    let ph = net.client("PH");
    let line = open_line(&ph, &["PH", "CN", "VN"], "ADMM-Plus").await;
    let first = send(&ph, &line, "ROUTINE", "first").await;
    wait_delivered(&ph, &first, WAIT).await;

    let v = checkpoint(&net, "PH", &line).await;
    let exchanges = v["exchanges"].as_array().unwrap();
    assert!(exchanges.iter().all(|x| x["countersigned"] == true), "{v}");
    let size = v["checkpoint"]["size"].as_u64().unwrap();
    assert!(size >= 2, "the set-up and the message at least: {v}");

    // More traffic, a second checkpoint: each member checks it extends the one it countersigned.
    for n in 0..3 {
        let id = send(&net.client("CN"), &line, "PRIORITY", &format!("from CN {n}")).await;
        wait_delivered(&net.client("CN"), &id, WAIT).await;
    }
    let v = checkpoint(&net, "PH", &line).await;
    assert!(v["exchanges"].as_array().unwrap().iter().all(|x| x["countersigned"] == true), "{v}");
    assert!(v["checkpoint"]["size"].as_u64().unwrap() > size);

    // Offline: each signed checkpoint and countersignature verifies under the roster keys, and
    // the two checkpoints are consistent (the second extends the first).
    let list = get_list(&ph, &format!("/api/v1/lines/{line}/checkpoints")).await;
    let own: Vec<_> = list.iter().filter(|c| c["signer"] == "PH").collect();
    assert_eq!(own.len(), 2);
    for c in &own {
        let signed =
            adi_record::SignedCheckpoint::from_bytes(&hex::decode(c["signed"].as_str().unwrap()).unwrap()).unwrap();
        signed.verify(&roster_key(&net, "PH")).unwrap();
        let members: Vec<&str> =
            c["countersignatures"].as_array().unwrap().iter().map(|s| s["member"].as_str().unwrap()).collect();
        assert_eq!(members, ["CN", "VN"]);
        for s in c["countersignatures"].as_array().unwrap() {
            let member = s["member"].as_str().unwrap();
            let sig: [u8; 64] = hex::decode(s["signature"].as_str().unwrap()).unwrap().try_into().unwrap();
            signed.verify_countersignature(member, &roster_key(&net, member), &sig).unwrap();
        }
    }
    // The members hold PH's checkpoints too, with their own countersignatures.
    let at_cn = get_list(&net.client("CN"), &format!("/api/v1/lines/{line}/checkpoints")).await;
    assert_eq!(at_cn.iter().filter(|c| c["signer"] == "PH").count(), 2, "{at_cn:?}");
    net.stop_all().await;
}

/// PH's key signs a checkpoint of `line` with `size` entries and `root`, and PH's connection
/// offers it to `to` for countersigning, claiming to extend `from_size` with `consistency`.
async fn offer_as_ph(
    net: &Net,
    to: &str,
    line: &str,
    (size, root): (u64, [u8; 32]),
    (from_size, consistency): (u64, Vec<String>),
) -> adi_node::fed::checkpoints::CheckpointAnswer {
    let ph_key = common::keys_towards(net, "PH", to);
    let signed = adi_record::Checkpoint {
        line: LineId::from_hex(line).unwrap().0,
        signer: "PH".into(),
        size,
        root,
        time_ms: 1_796_000_000_000,
        heads: None,
    }
    .sign(&ph_key.signing)
    .unwrap();
    let offer = adi_node::fed::checkpoints::CheckpointOffer {
        v: 1,
        checkpoint: hex::encode(signed.to_bytes().unwrap()),
        from_size,
        consistency,
        others: Vec::new(),
    };
    let peer = MemberCode::parse(to).unwrap();
    let body = serde_json::to_vec(&offer).unwrap();
    let endpoint = common::endpoint(net, to);
    let reply = adi_node::fed::links::post_once(&endpoint, ph_key.tls, &peer, "/fed/v1/checkpoints", body, 5_000)
        .await
        .unwrap();
    serde_json::from_slice(&reply).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_showing_two_histories_of_a_line_is_caught_by_the_exchange() {
    let mut net = Net::start_with(&["PH", "CN", "VN"], |d| d.link_test_interval_s = 0).await;
    let ph = net.client("PH");
    let line = open_line(&ph, &["PH", "CN", "VN"], "ADMM-Plus").await;
    let first = send(&ph, &line, "ROUTINE", "first").await;
    wait_delivered(&ph, &first, WAIT).await;

    // PH shows CN its real log; VN is away.
    net.stop_code("VN").await;
    let real = checkpoint(&net, "PH", &line).await;
    let real_size = real["checkpoint"]["size"].as_u64().unwrap();
    net.start_code("VN").await;
    // PH (its key, its connection) shows VN another history of the same size.
    let answer = offer_as_ph(&net, "VN", &line, (real_size, [7; 32]), (0, Vec::new())).await;
    assert!(answer.countersignature.is_some(), "VN has nothing to compare it with yet: {answer:?}");

    // CN's next checkpoint exchange passes PH's real checkpoint to VN, and VN's answer passes the
    // other one to CN: both catch PH.
    checkpoint(&net, "CN", &line).await;
    for at in ["VN", "CN"] {
        let c = net.client(at);
        let alarm = eventually(WAIT, &format!("a tamper alarm at {at}"), || async {
            get_list(&c, "/api/v1/alarms").await.into_iter().find(|a| a["kind"] == "tamper")
        })
        .await;
        assert_eq!(alarm["member"], "PH", "{alarm}");
        assert!(alarm["detail"].as_str().unwrap().contains("two different roots"), "{alarm}");
        // The evidence: two checkpoints PH signed, one size, two roots. It stands offline.
        let evidence = get_list(&c, "/api/v1/evidence").await;
        let e = evidence.iter().find(|e| e["member"] == "PH").expect("evidence kept");
        let b64 = base64::engine::general_purpose::STANDARD;
        let held =
            adi_record::SignedCheckpoint::from_bytes(&b64.decode(e["held_base64"].as_str().unwrap()).unwrap()).unwrap();
        let offered =
            adi_record::SignedCheckpoint::from_bytes(&b64.decode(e["offered_base64"].as_str().unwrap()).unwrap())
                .unwrap();
        held.verify(&roster_key(&net, "PH")).unwrap();
        offered.verify(&roster_key(&net, "PH")).unwrap();
        assert!(held.equivocates_with(&offered));
    }
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_whose_log_grew_is_checkpointed_and_countersigned_regularly() {
    let net = Net::start_with(&["PH", "CN"], |d| {
        d.link_test_interval_s = 0;
        d.checkpoint_interval_s = 1;
    })
    .await;
    let ph = net.client("PH");
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let id = send(&ph, &line, "ROUTINE", "to be checkpointed").await;
    wait_delivered(&ph, &id, WAIT).await;
    // Without anyone asking, each side signs a checkpoint and the other countersigns it.
    for (at, other) in [("PH", "CN"), ("CN", "PH")] {
        let c = net.client(at);
        eventually(WAIT, &format!("{at}'s checkpoint countersigned by {other}"), || async {
            let list = get_list(&c, &format!("/api/v1/lines/{line}/checkpoints")).await;
            list.iter()
                .any(|cp| {
                    cp["signer"] == at
                        && cp["countersignatures"].as_array().unwrap().iter().any(|s| s["member"] == other)
                })
                .then_some(())
        })
        .await;
    }
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_messages_plaintext_proves_itself_without_any_mls_key() {
    let net = Net::start_with(&["PH", "CN"], |d| d.link_test_interval_s = 0).await;
    let ph = net.client("PH");
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let id = send(&ph, &line, "IMMEDIATE", "what PH wrote").await;
    wait_delivered(&ph, &id, WAIT).await;
    let b64 = base64::engine::general_purpose::STANDARD;
    // At the recipient and at the sender alike: the signed content, the signed envelope, and the
    // roster key are all it takes.
    for at in ["CN", "PH"] {
        let (view, bytes) = common::envelope(&net.client(at), &id).await;
        let envelope = Envelope::decode(&bytes, 1 << 20, 1 << 20).unwrap().verify(&roster_key(&net, "PH")).unwrap();
        let body = envelope.body();
        assert_eq!(view["content_hash"], hex::encode(body.content_hash));
        let signed = SignedContent::decode(&b64.decode(view["content_base64"].as_str().unwrap()).unwrap()).unwrap();
        signed.verify(&roster_key(&net, "PH"), &body.line, "PH", body.seq, &body.content_hash).unwrap();
        let payload = adi_wire::payload::PayloadV1::decode(&signed.content).unwrap();
        assert!(
            matches!(payload, adi_wire::payload::PayloadV1::Message { ref subject, .. } if subject == "what PH wrote")
        );
        // One changed character, or the content moved to another place in the line, proves nothing.
        let mut altered = signed.clone();
        let at_subject = altered.content.windows(4).position(|w| w == b"what").unwrap();
        altered.content[at_subject] = b'W';
        assert!(altered.verify(&roster_key(&net, "PH"), &body.line, "PH", body.seq, &body.content_hash).is_err());
        assert!(signed.verify(&roster_key(&net, "PH"), &body.line, "PH", body.seq + 1, &body.content_hash).is_err());
        assert!(signed.verify(&roster_key(&net, "CN"), &body.line, "PH", body.seq, &body.content_hash).is_err());
    }
    net.stop_all().await;
}

async fn bundle(net: &Net, at: &str, line: &str) -> adi_record::bundle::Bundle {
    let v = net.client(at).call(hyper::Method::GET, &format!("/api/v1/lines/{line}/export"), None).await.unwrap();
    serde_json::from_value(v).unwrap()
}

fn first_failure(b: &adi_record::bundle::Bundle) -> Option<String> {
    adi_record::bundle::verify(b)
        .first_failure()
        .map(|c| format!("{}: {}", c.item, c.failure.clone().unwrap_or_default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exported_line_verifies_offline_and_any_change_is_named() {
    let net = Net::start_with(&["PH", "CN", "VN"], |d| d.link_test_interval_s = 0).await;
    let ph = net.client("PH");
    let line = open_line(&ph, &["PH", "CN", "VN"], "ADMM-Plus").await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let id = send(&ph, &line, "IMMEDIATE", &format!("PH {n}")).await;
        wait_delivered(&ph, &id, WAIT).await;
        ids.push(id);
        checkpoint(&net, "PH", &line).await;
    }
    let (status, _) = net
        .client("CN")
        .request(hyper::Method::POST, &format!("/api/v1/messages/{}/ack", ids[0]), Some(&serde_json::json!({})))
        .await
        .unwrap();
    assert_eq!(status, 200);
    // Every receipt has arrived at PH before it exports.
    eventually(WAIT, "CN's acknowledgement and every decrypted receipt at PH", || async {
        let m = ph.call(hyper::Method::GET, &format!("/api/v1/messages/{}", ids[0]), None).await.ok()?;
        let acked = m["recipients"].as_array()?.iter().any(|r| r["state"] == "acknowledged");
        let all = ids.len() * 2 + 1;
        let receipts = bundle(&net, "PH", &line).await.envelopes.iter().filter(|e| e.content.is_some()).count();
        (acked && receipts >= ids.len() + all).then_some(())
    })
    .await;
    let good = bundle(&net, "PH", &line).await;
    assert_eq!(first_failure(&good), None);
    let report = adi_record::bundle::verify(&good);
    assert!(
        report.checks.iter().any(|c| c.item.contains("acknowledged receipt answers PH")),
        "the receipts are checked"
    );
    assert!(report.checks.iter().any(|c| c.item.contains("consistency of PH's log")), "checkpoints are chained");
    assert!(report.checks.iter().any(|c| c.item.contains("countersignature by CN")));

    // One changed byte in any envelope: its signature fails, and the report names it.
    let mut changed = good.clone();
    let target = changed.envelopes.len() / 2;
    let mut bytes = hex::decode(&changed.envelopes[target].bytes).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    changed.envelopes[target].bytes = hex::encode(bytes);
    let why = first_failure(&changed).expect("a changed byte is caught");
    assert!(why.starts_with(&format!("envelope at log index {}", changed.envelopes[target].index)), "{why}");

    // A record removed from the export, or from the log with it.
    let mut removed = good.clone();
    let gone = removed.envelopes.remove(2).index;
    let why = first_failure(&removed).expect("a removed record is caught");
    assert!(why.contains(&format!("log entry {gone} has no envelope")), "{why}");
    let mut erased = good.clone();
    erased.envelopes.remove(2);
    erased.log.remove(2);
    for e in erased.envelopes.iter_mut().filter(|e| e.index > 2) {
        e.index -= 1;
    }
    erased.to_index -= 1;
    let why = first_failure(&erased).expect("an entry erased from the log is caught");
    assert!(why.contains("root of the exported log"), "{why}");

    // Two records reordered.
    let mut reordered = good.clone();
    let (a, b) = (reordered.envelopes[1].index, reordered.envelopes[3].index);
    reordered.envelopes.swap(1, 3);
    reordered.envelopes[1].index = a;
    reordered.envelopes[3].index = b;
    let why = first_failure(&reordered).expect("reordered records are caught");
    assert!(why.contains("place in the log"), "{why}");
    let mut relogged = good.clone();
    relogged.log.swap(1, 3);
    let why = first_failure(&relogged).expect("a reordered log is caught");
    assert!(why.contains("root of the exported log") || why.contains("place in the log"), "{why}");

    // A receipt swapped between messages: the content of one receipt put in another's envelope.
    let mut swapped = good.clone();
    let receipts: Vec<usize> = swapped
        .envelopes
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            e.content.as_ref().is_some_and(|c| {
                let sc = SignedContent::decode(&hex::decode(c).unwrap()).unwrap();
                matches!(
                    adi_wire::payload::PayloadV1::decode(&sc.content),
                    Ok(adi_wire::payload::PayloadV1::Receipt { .. })
                )
            })
        })
        .map(|(i, _)| i)
        .collect();
    assert!(receipts.len() >= 2);
    let (x, y) = (receipts[0], receipts[1]);
    let content_x = swapped.envelopes[x].content.clone();
    swapped.envelopes[x].content = swapped.envelopes[y].content.clone();
    swapped.envelopes[y].content = content_x;
    let why = first_failure(&swapped).expect("a swapped receipt is caught");
    assert!(why.contains("signed content"), "{why}");
    net.stop_all().await;
}

/// How someone holding the database file changes PH's record of a line: given the connection
/// and the line's arrival numbers in order.
type Alteration = fn(&rusqlite::Connection, &[i64]);

fn reorder(c: &rusqlite::Connection, arrivals: &[i64]) {
    let (a, b) = (arrivals[1], arrivals[2]);
    c.execute("UPDATE envelopes SET arrival = -1 WHERE arrival = ?1", rusqlite::params![a]).unwrap();
    c.execute("UPDATE envelopes SET arrival = ?1 WHERE arrival = ?2", rusqlite::params![a, b]).unwrap();
    c.execute("UPDATE envelopes SET arrival = ?1 WHERE arrival = -1", rusqlite::params![b]).unwrap();
}

fn remove(c: &rusqlite::Connection, arrivals: &[i64]) {
    c.execute("DELETE FROM envelopes WHERE arrival = ?1", rusqlite::params![arrivals[2]]).unwrap();
}

fn change_a_byte(c: &rusqlite::Connection, arrivals: &[i64]) {
    let hash: Vec<u8> = c
        .query_row("SELECT hash FROM envelopes WHERE arrival = ?1", rusqlite::params![arrivals[2]], |r| r.get(0))
        .unwrap();
    let mut changed = hash.clone();
    changed[7] ^= 1;
    c.execute("UPDATE envelopes SET hash = ?1 WHERE arrival = ?2", rusqlite::params![changed, arrivals[2]]).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_changed_behind_the_nodes_back_is_caught_when_next_used() {
    for (what, alteration) in [("reordered", reorder as Alteration), ("removed", remove), ("changed", change_a_byte)] {
        store_altered(what, alteration).await;
    }
}

async fn store_altered(what: &str, alteration: Alteration) {
    let mut net = Net::start_with(&["PH", "CN"], |d| d.link_test_interval_s = 0).await;
    let ph = net.client("PH");
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    for n in 0..3 {
        let id = send(&ph, &line, "ROUTINE", &format!("PH {n}")).await;
        wait_delivered(&ph, &id, WAIT).await;
    }
    let signed = checkpoint(&net, "PH", &line).await;
    assert!(signed["exchanges"][0]["countersigned"] == true, "{signed}");

    // Someone with the database file alters PH's record of the line while the node is down.
    net.stop_code("PH").await;
    let config = adi_node::NodeConfig::load(&net.config_path("PH")).unwrap();
    {
        let c = rusqlite::Connection::open(&config.database).unwrap();
        let arrivals: Vec<i64> = c
            .prepare("SELECT arrival FROM envelopes WHERE line = ?1 ORDER BY arrival")
            .unwrap()
            .query_map(rusqlite::params![hex::decode(&line).unwrap()], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        alteration(&c, &arrivals);
    }
    net.start_code("PH").await;
    let ph = net.client("PH");

    // The next checkpoint is refused, and the node raises the alarm with the evidence.
    let (status, v) =
        ph.request(hyper::Method::POST, &format!("/api/v1/lines/{line}/checkpoints"), None).await.unwrap();
    assert_eq!((status.as_u16(), v["error"].as_str()), (409, Some("tamper")), "{what}: {v}");
    let alarms = get_list(&ph, "/api/v1/alarms").await;
    let alarm = alarms.iter().find(|a| a["kind"] == "tamper").expect("a tamper alarm at PH");
    assert!(alarm["detail"].as_str().unwrap().contains("no longer begins with"), "{alarm}");
    // An export of the changed store does not verify, and names what broke.
    let why = first_failure(&bundle(&net, "PH", &line).await).expect("the altered log is caught offline");
    assert!(why.contains("root of the exported log") || why.contains("place in the log"), "{what}: {why}");
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_that_does_not_extend_the_one_countersigned_is_refused_as_tampering() {
    let net = Net::start_with(&["PH", "CN"], |d| d.link_test_interval_s = 0).await;
    let ph = net.client("PH");
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let id = send(&ph, &line, "ROUTINE", "first").await;
    wait_delivered(&ph, &id, WAIT).await;
    let real = checkpoint(&net, "PH", &line).await;
    let size = real["checkpoint"]["size"].as_u64().unwrap();
    let root = hex::decode(real["checkpoint"]["root"].as_str().unwrap()).unwrap();

    // PH's key signs a longer log that does not begin with the one CN countersigned.
    let answer = offer_as_ph(&net, "CN", &line, (size + 1, [5; 32]), (size, vec![hex::encode(&root)])).await;
    assert!(answer.countersignature.is_none(), "{answer:?}");
    assert!(answer.refused.as_deref().unwrap().contains("does not extend"), "{answer:?}");
    let c = net.client("CN");
    let alarm = eventually(WAIT, "a tamper alarm at CN", || async {
        get_list(&c, "/api/v1/alarms").await.into_iter().find(|a| a["kind"] == "tamper")
    })
    .await;
    assert_eq!(alarm["member"], "PH");
    let evidence = get_list(&c, "/api/v1/evidence").await;
    assert_eq!(evidence.len(), 1, "{evidence:?}");
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_swapped_or_a_byte_changed_in_the_store_is_caught_when_exported() {
    let mut net = Net::start_with(&["PH", "CN"], |d| d.link_test_interval_s = 0).await;
    let ph = net.client("PH");
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    for n in 0..2 {
        let id = send(&ph, &line, "ROUTINE", &format!("PH {n}")).await;
        wait_delivered(&ph, &id, WAIT).await;
        eventually(WAIT, "CN's decrypted receipt at PH", || async {
            let m = ph.call(hyper::Method::GET, &format!("/api/v1/messages/{id}"), None).await.ok()?;
            m["recipients"][0]["decrypted_ms"].as_u64()
        })
        .await;
    }
    net.stop_code("PH").await;
    let config = adi_node::NodeConfig::load(&net.config_path("PH")).unwrap();
    {
        // The two receipts' stored contents change places, and one byte of a sealed envelope
        // changes. A sealed value moved to another row would no longer open there (see
        // `at_rest.rs`); the swap is made with the master key, as its holder could, opening each
        // content and sealing it again for the other row, so that what is checked here is the
        // content against the hash its envelope signs.
        let sealer = adi_store::seal::Sealer::new(&config.master_key);
        let c = rusqlite::Connection::open(&config.database).unwrap();
        let rows: Vec<(i64, Vec<u8>, Vec<u8>)> = c
            .prepare(
                "SELECT arrival, hash, content FROM envelopes WHERE kind = 'receipt' AND sender = 'CN' ORDER BY arrival",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(rows.len() >= 2);
        let (a, b) = (&rows[0], &rows[1]);
        let content_a = sealer.open("envelopes.content", &a.1, &a.2).unwrap();
        let content_b = sealer.open("envelopes.content", &b.1, &b.2).unwrap();
        let (to_a, to_b) =
            (sealer.seal("envelopes.content", &a.1, &content_b), sealer.seal("envelopes.content", &b.1, &content_a));
        c.execute("UPDATE envelopes SET content = ?1 WHERE arrival = ?2", rusqlite::params![to_a, a.0]).unwrap();
        c.execute("UPDATE envelopes SET content = ?1 WHERE arrival = ?2", rusqlite::params![to_b, b.0]).unwrap();
        let (arrival, mut sealed): (i64, Vec<u8>) = c
            .query_row(
                "SELECT arrival, bytes FROM envelopes WHERE kind = 'message' ORDER BY arrival LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        let middle = sealed.len() / 2;
        sealed[middle] ^= 1;
        c.execute("UPDATE envelopes SET bytes = ?1 WHERE arrival = ?2", rusqlite::params![sealed, arrival]).unwrap();
    }
    net.start_code("PH").await;
    let exported = bundle(&net, "PH", &line).await;
    let report = adi_record::bundle::verify(&exported);
    let failures: Vec<String> =
        report.checks.iter().filter_map(|c| c.failure.as_ref().map(|f| format!("{}: {f}", c.item))).collect();
    assert!(failures.iter().any(|f| f.contains("signed content")), "the swapped receipts: {failures:?}");
    assert!(failures.iter().any(|f| f.contains("has no envelope in the bundle")), "the changed byte: {failures:?}");
    let ph = net.client("PH");
    let evidence = get_list(&ph, "/api/v1/evidence").await;
    let details: Vec<&str> = evidence.iter().map(|e| e["detail"].as_str().unwrap()).collect();
    assert_eq!(details.iter().filter(|d| d.contains("is not the one its envelope names")).count(), 2, "{details:?}");
    assert_eq!(details.iter().filter(|d| d.contains("no longer opens under the master key")).count(), 1, "{details:?}");
    assert!(get_list(&ph, "/api/v1/alarms").await.iter().any(|a| a["kind"] == "tamper"));
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_leaving_out_another_members_message_is_not_countersigned_and_its_export_fails() {
    let net = Net::start_with(&["PH", "CN", "VN"], |d| d.link_test_interval_s = 0).await;
    let line = open_line(&net.client("PH"), &["PH", "CN", "VN"], "ADMM-Plus").await;
    let cn = net.client("CN");
    eventually(WAIT, "the line at CN", || async {
        cn.call(hyper::Method::GET, &format!("/api/v1/lines/{line}"), None).await.ok()
    })
    .await;
    let id = send(&cn, &line, "ROUTINE", "CN's statement").await;
    wait_delivered(&cn, &id, WAIT).await;
    let dropped = EnvelopeHash::from_hex(&id).unwrap();
    // VN holds PH's signed receipt of CN's message: VN knows PH holds it.
    eventually(WAIT, "PH's receipt of CN's message at VN", || async {
        let b = bundle(&net, "VN", &line).await;
        let report = adi_record::bundle::verify(&b);
        report
            .record
            .iter()
            .any(|e| e.sender == "PH" && e.kind == "receipt" && e.content.as_ref().unwrap()["answers"] == id)
            .then_some(())
    })
    .await;

    // PH's key signs a checkpoint of the line's log without CN's message and the receipts of it
    // (the entries as VN's export lists them: exporting at PH would have VN countersign PH's
    // real log first), and offers it to VN as its first.
    let b = bundle(&net, "VN", &line).await;
    let record = adi_record::bundle::verify(&b).record;
    let mut places = Vec::new();
    for e in &b.envelopes {
        let env = Envelope::decode(&hex::decode(&e.bytes).unwrap(), usize::MAX, usize::MAX).unwrap();
        let answers_dropped = record
            .iter()
            .any(|r| r.index == e.index && r.kind == "receipt" && r.content.as_ref().unwrap()["answers"] == id);
        if env.hash() != dropped && !answers_dropped {
            places.push((env.hash().0, env.body().sender.clone(), env.body().seq));
        }
    }
    assert!(places.len() + 3 <= b.envelopes.len(), "the message and at least two receipts are left out");
    let leaves: Vec<[u8; 32]> = places.iter().map(|(h, _, _)| adi_record::merkle::leaf_hash(h)).collect();
    let heads = adi_record::checkpoint::heads(places.iter().map(|(h, s, q)| (h, s.as_str(), *q)));
    let ph_key = common::keys_towards(&net, "PH", "VN");
    let sign_at = |time_ms: u64| {
        adi_record::Checkpoint {
            line: LineId::from_hex(&line).unwrap().0,
            signer: "PH".into(),
            size: leaves.len() as u64,
            root: adi_record::merkle::root(&leaves),
            time_ms,
            heads: Some(heads.clone()),
        }
        .sign(&ph_key.signing)
        .unwrap()
    };
    let offer_to_vn = |signed: &adi_record::SignedCheckpoint| {
        let offer = adi_node::fed::checkpoints::CheckpointOffer {
            v: 1,
            checkpoint: hex::encode(signed.to_bytes().unwrap()),
            from_size: 0,
            consistency: Vec::new(),
            others: Vec::new(),
        };
        let body = serde_json::to_vec(&offer).unwrap();
        let (endpoint, tls) = (common::endpoint(&net, "VN"), ph_key.tls.clone());
        async move {
            let vn = MemberCode::parse("VN").unwrap();
            let reply =
                adi_node::fed::links::post_once(&endpoint, tls, &vn, "/fed/v1/checkpoints", body, 5_000).await.unwrap();
            serde_json::from_slice::<adi_node::fed::checkpoints::CheckpointAnswer>(&reply).unwrap()
        }
    };
    // Dated a day back, before anything it is known to hold: not countersigned, for its time.
    let now = adi_node::clock::now_ms();
    let answer = offer_to_vn(&sign_at(now - 86_400_000)).await;
    assert!(answer.countersignature.is_none(), "{answer:?}");
    assert!(answer.refused.as_deref().unwrap_or_default().contains("checkpoint_skew_ms"), "{answer:?}");
    // Dated later than the receipt by more than the slack a countersigner allows for a commit in
    // flight, and within the skew it allows from its own clock: the omission is found.
    let slack = adi_node::config::RuntimeLimits::default().checkpoint_heads_slack_ms;
    let forged = sign_at(now + slack + 10_000);
    let answer = offer_to_vn(&forged).await;
    assert!(answer.countersignature.is_none(), "{answer:?}");
    let refused = answer.refused.unwrap_or_default();
    assert!(refused.contains("leaves CN's #") && refused.contains("out of its log"), "{refused}");
    let vn = net.client("VN");
    let alarm = eventually(WAIT, "a tamper alarm at VN", || async {
        get_list(&vn, "/api/v1/alarms").await.into_iter().find(|a| a["kind"] == "tamper")
    })
    .await;
    assert_eq!(alarm["member"], "PH");
    assert_eq!(get_list(&vn, "/api/v1/evidence").await.len(), 1);

    // PH's export without the message and its receipts, under the refused checkpoint: it fails,
    // for nobody countersigned that checkpoint.
    let kept: Vec<_> = b
        .envelopes
        .iter()
        .filter(|e| places.iter().any(|(h, _, _)| hex::encode(h) == b.log[e.index as usize]))
        .cloned()
        .collect();
    let mut dropped_export = b.clone();
    dropped_export.exported_by = "PH".into();
    dropped_export.log = places.iter().map(|(h, _, _)| hex::encode(h)).collect();
    dropped_export.envelopes = kept
        .into_iter()
        .map(|mut e| {
            let hash = &b.log[e.index as usize];
            e.index = dropped_export.log.iter().position(|h| h == hash).unwrap() as u64;
            e.inclusion =
                adi_record::merkle::inclusion_proof(&leaves, e.index as usize).iter().map(hex::encode).collect();
            e
        })
        .collect();
    dropped_export.to_index = dropped_export.log.len() as u64;
    dropped_export.checkpoints = vec![adi_record::bundle::BundleCheckpoint {
        signed: hex::encode(forged.to_bytes().unwrap()),
        countersignatures: Vec::new(),
    }];
    dropped_export.consistency = Vec::new();
    let failures: Vec<String> = adi_record::bundle::verify(&dropped_export)
        .checks
        .into_iter()
        .filter(|c| c.failure.is_some())
        .map(|c| c.item)
        .collect();
    assert_eq!(failures, ["the exporter's latest checkpoint is countersigned by another member ()"], "{failures:?}");

    // PH's real checkpoint, over its whole log, is countersigned by both, and its export verifies.
    let v = checkpoint(&net, "PH", &line).await;
    let exchanges = v["exchanges"].as_array().unwrap();
    assert!(exchanges.iter().all(|x| x["countersigned"] == true), "{v}");
    assert_eq!(first_failure(&bundle(&net, "PH", &line).await), None);
    net.stop_all().await;
}

/// Waits until `at` holds the line with `member` on it.
async fn wait_on_line(net: &Net, at: &str, line: &str, member: &str, on: bool) {
    let c = net.client(at);
    eventually(WAIT, &format!("{member} on the line at {at}: {on}"), || async {
        let v = c.call(hyper::Method::GET, &format!("/api/v1/lines/{line}"), None).await.ok()?;
        let members = v["members"].as_array()?.iter().any(|m| m == member);
        (members == on).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_member_s_export_of_a_line_whose_members_changed_lists_each_hole_with_its_signed_reason() {
    let net = Net::start_with(&["PH", "CN", "VN", "MY"], |d| d.link_test_interval_s = 0).await;
    let ph = net.client("PH");
    let line = open_line(&ph, &["PH", "CN", "VN"], "ADMM-Plus").await;
    wait_on_line(&net, "CN", &line, "CN", true).await;
    wait_on_line(&net, "VN", &line, "VN", true).await;
    let said = |at: &'static str, subject: &'static str| {
        let (net, line) = (&net, line.clone());
        async move {
            let c = net.client(at);
            let id = send(&c, &line, "ROUTINE", subject).await;
            wait_delivered(&c, &id, WAIT).await;
        }
    };
    said("PH", "before MY joined").await;
    said("CN", "CN before MY joined").await;
    let members = format!("/api/v1/lines/{line}/members");
    ph.call(hyper::Method::POST, &members, Some(&serde_json::json!({"member": "MY"}))).await.unwrap();
    wait_on_line(&net, "MY", &line, "MY", true).await;
    wait_on_line(&net, "VN", &line, "MY", true).await;
    said("PH", "with MY").await;
    said("MY", "MY's first").await;
    ph.call(hyper::Method::DELETE, &format!("{members}/VN"), None).await.unwrap();
    wait_on_line(&net, "CN", &line, "VN", false).await;
    wait_on_line(&net, "MY", &line, "VN", false).await;
    said("PH", "while VN was off").await;
    said("CN", "CN while VN was off").await;
    ph.call(hyper::Method::POST, &members, Some(&serde_json::json!({"member": "VN"}))).await.unwrap();
    wait_on_line(&net, "VN", &line, "VN", true).await;
    wait_on_line(&net, "CN", &line, "VN", true).await;
    wait_on_line(&net, "MY", &line, "VN", true).await;
    said("VN", "VN back").await;
    said("PH", "after VN came back").await;

    // Each member's export verifies; the runs of others' chains it cannot hold are listed, each
    // with the signed statement that explains it.
    let mut reasons = std::collections::BTreeMap::new();
    for at in ["PH", "CN", "VN", "MY"] {
        let b = bundle(&net, at, &line).await;
        let report = adi_record::bundle::verify(&b);
        assert_eq!(first_failure(&b), None, "{at}'s export");
        assert!(report.checks.iter().any(|c| c.item.starts_with("chain of PH: complete from #1 to #")), "{at}");
        assert!(report.holes.iter().all(|h| h.reason.is_some() && h.sender != at), "{at}: {:?}", report.holes);
        let kinds: Vec<String> = report
            .holes
            .iter()
            .map(|h| {
                let why = h.reason.clone().unwrap_or_default();
                let kind = if why.starts_with("sent while") {
                    "not on the line"
                } else if why.contains("line set-up for") {
                    "set-up of another"
                } else {
                    "other"
                };
                format!("{}: {kind}", h.sender)
            })
            .collect();
        reasons.insert(at, kinds);
    }
    // The home member holds every chain whole.
    assert_eq!(reasons["PH"], Vec::<String>::new());
    // CN missed the two set-ups PH sent to MY and to VN alone.
    assert_eq!(reasons["CN"], ["PH: set-up of another", "PH: set-up of another"]);
    // MY joined late: the start of every chain (VN's receipts among them), then VN's set-up.
    assert_eq!(
        reasons["MY"],
        ["CN: not on the line", "PH: not on the line", "PH: set-up of another", "VN: not on the line"]
    );
    // VN missed MY's set-up, then all the others sent while it was off the line (MY's receipts
    // among them).
    assert_eq!(
        reasons["VN"],
        ["CN: not on the line", "MY: not on the line", "PH: set-up of another", "PH: not on the line"]
    );

    // A run of a chain left out of an export, with nothing signed to explain it, fails even under
    // a checkpoint its exporter signed and another member countersigned (CN and PH colluding):
    // CN's log without one of MY's receipts, every proof made again.
    let b = bundle(&net, "CN", &line).await;
    assert_eq!((b.from_index, b.to_index), (0, b.log.len() as u64));
    let record = adi_record::bundle::verify(&b).record;
    let my_head = record.iter().filter(|e| e.sender == "MY").map(|e| e.seq).max().unwrap();
    let victim = record.iter().find(|e| e.sender == "MY" && e.kind == "receipt" && e.seq < my_head).unwrap();
    let mut kept: Vec<adi_record::bundle::BundleEnvelope> =
        b.envelopes.iter().filter(|e| e.index != victim.index).cloned().collect();
    kept.sort_by_key(|e| e.index);
    let places: Vec<([u8; 32], String, u64)> = kept
        .iter()
        .map(|e| {
            let env = Envelope::decode(&hex::decode(&e.bytes).unwrap(), usize::MAX, usize::MAX).unwrap();
            (env.hash().0, env.body().sender.clone(), env.body().seq)
        })
        .collect();
    let leaves: Vec<[u8; 32]> = places.iter().map(|(h, _, _)| adi_record::merkle::leaf_hash(h)).collect();
    let signed = adi_record::Checkpoint {
        line: LineId::from_hex(&line).unwrap().0,
        signer: "CN".into(),
        size: leaves.len() as u64,
        root: adi_record::merkle::root(&leaves),
        time_ms: adi_node::clock::now_ms(),
        heads: Some(adi_record::checkpoint::heads(places.iter().map(|(h, s, q)| (h, s.as_str(), *q)))),
    }
    .sign(&common::keys_towards(&net, "CN", "PH").signing)
    .unwrap();
    let countersigned = signed.countersign(&common::keys_towards(&net, "PH", "CN").signing).unwrap();
    let mut dropped = b.clone();
    dropped.log = places.iter().map(|(h, _, _)| hex::encode(h)).collect();
    dropped.to_index = dropped.log.len() as u64;
    dropped.envelopes = kept
        .into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            e.index = i as u64;
            e.inclusion = adi_record::merkle::inclusion_proof(&leaves, i).iter().map(hex::encode).collect();
            e
        })
        .collect();
    dropped.checkpoints = vec![adi_record::bundle::BundleCheckpoint {
        signed: hex::encode(signed.to_bytes().unwrap()),
        countersignatures: vec![("PH".into(), hex::encode(countersigned))],
    }];
    dropped.consistency = Vec::new();
    let report = adi_record::bundle::verify(&dropped);
    let failures: Vec<String> = report
        .checks
        .into_iter()
        .filter(|c| c.failure.is_some())
        .map(|c| format!("{}: {}", c.item, c.failure.unwrap_or_default()))
        .collect();
    assert_eq!(
        failures,
        [format!(
            "chain of MY: complete from #1 to #{my_head}: #{} not held, and nothing signed in the bundle says why",
            victim.seq
        )]
    );
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_is_offered_to_every_member_at_once_so_silent_members_cost_one_timeout() {
    let mut net = Net::init(&["PH", "CN", "VN", "MY"]);
    common::set_limits(&net, "PH", |l| l.request_timeout_ms = Some(2_000));
    for code in ["PH", "CN", "VN", "MY"] {
        net.start_code(code).await;
    }
    let ph = net.client("PH");
    let line = open_line(&ph, &["PH", "CN", "VN", "MY"], "ADMM-Plus").await;
    let id = send(&ph, &line, "ROUTINE", "before two members went silent").await;
    wait_delivered(&ph, &id, WAIT).await;
    // VN's and MY's nodes stop, and what answers at their addresses takes connections and never
    // says a word: each offer to them waits for the whole request timeout.
    let mut silent = Vec::new();
    for code in ["VN", "MY"] {
        let addr = common::endpoint(&net, code);
        net.stop_code(code).await;
        let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
        silent.push(tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = listener.accept().await {
                held.push(conn);
            }
        }));
    }
    let started = std::time::Instant::now();
    let v = checkpoint(&net, "PH", &line).await;
    let took = started.elapsed();
    let exchanges = v["exchanges"].as_array().unwrap();
    let countersigned: Vec<&str> =
        exchanges.iter().filter(|x| x["countersigned"] == true).map(|x| x["member"].as_str().unwrap()).collect();
    assert_eq!(countersigned, ["CN"], "{v}");
    // Both silent members were waited for together: one timeout (2 s), not two, plus the rest.
    println!("checkpoint with two silent members of four took {took:?}");
    assert!(took >= Duration::from_millis(1_900), "{took:?}: the silent members were not waited for");
    assert!(took < Duration::from_millis(3_900), "{took:?}: the offers were made one after the other");
    for s in silent {
        s.abort();
    }
    net.stop_all().await;
}
