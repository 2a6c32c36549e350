//! The hash chain at the node: an envelope that contradicts what its sender signed before (two
//! envelopes for one place in its chain, or a link to an envelope that is not the one held) is
//! refused with a `tamper` alarm, and both signed versions are kept as evidence that verifies
//! offline under the sender's roster key.

mod common;

use std::time::Duration;

use adi_core::MemberCode;
use adi_node::federation::post_batch_once;
use adi_wire::batch::Verdict;
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
        Verdict::Rejected { reason } => reason.clone(),
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
