//! What a node hands a peer whose store was put back from a backup (`POST /fed/v1/chain`): the
//! peer's own envelopes with the contents the node decrypted, and this member's envelopes as they
//! travelled, page by page within `restore_page_len`. Another member's chain, a line the asker is
//! not on, and a malformed request are refused with a clear code, and nothing changes; asking for
//! another member's chain raises a `misconduct` alarm naming the asker.

mod common;

use adi_core::MemberCode;
use adi_node::fed::links::post_once;
use adi_node::fed::restore::ChainPage;
use adi_node::fed::CHAIN_PATH;
use adi_wire::content::SignedContent;
use adi_wire::Envelope;
use base64::Engine as _;
use common::{endpoint, keys_towards, open_line, send, set_limits, wait_delivered, Net};
use serde_json::json;
use std::time::Duration;

fn code(s: &str) -> MemberCode {
    MemberCode::parse(s).unwrap()
}

/// Asks `to`'s node for a page over a connection authenticated as `from`'s node.
async fn ask(net: &Net, from: &str, to: &str, body: Vec<u8>) -> Result<ChainPage, String> {
    let keys = keys_towards(net, from, to);
    let bytes = post_once(&endpoint(net, to), keys.tls, &code(to), CHAIN_PATH, body, 5_000).await?;
    Ok(serde_json::from_slice(&bytes).unwrap())
}

fn unb64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// Each envelope's sender and sequence number, and whether its content came with it.
fn places(page: &ChainPage) -> Vec<(String, u64, bool)> {
    page.envelopes
        .iter()
        .map(|e| {
            let env = Envelope::decode(&unb64(&e.bytes), 1 << 20, 1 << 20).unwrap();
            (env.body().sender.clone(), env.body().seq, e.content.is_some())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_hands_a_peer_its_own_chain_and_this_members_and_nothing_else() {
    let mut net = Net::init(&["PH", "VN", "CN"]);
    set_limits(&net, "PH", |l| l.restore_page_len = Some(2));
    for c in ["PH", "VN", "CN"] {
        net.start_code(c).await;
    }
    let (ph, cn) = (net.client("PH"), net.client("CN"));
    let line = open_line(&ph, &["PH", "VN", "CN"], "ADMM-Plus").await;
    let within = Duration::from_secs(30);
    common::eventually(within, "CN holds the line", || {
        let cn = cn.clone();
        let line = line.clone();
        async move {
            cn.request(hyper::Method::GET, &format!("/api/v1/lines/{line}"), None)
                .await
                .ok()
                .filter(|(s, _)| s.is_success())
        }
    })
    .await;
    for i in 0..3 {
        let id = send(&cn, &line, "ROUTINE", &format!("from CN {i}")).await;
        wait_delivered(&cn, &id, within).await;
    }
    let id = send(&ph, &line, "ROUTINE", "from PH").await;
    wait_delivered(&ph, &id, within).await;

    // CN's own chain, two a page, each with the content CN signed.
    let ask_for = |sender: &str, after: u64| {
        serde_json::to_vec(&json!({"line": line, "sender": sender, "after": after})).unwrap()
    };
    let first = ask(&net, "CN", "PH", ask_for("CN", 0)).await.unwrap();
    assert_eq!(places(&first), [("CN".into(), 1, true), ("CN".into(), 2, true)]);
    let second = ask(&net, "CN", "PH", ask_for("CN", 2)).await.unwrap();
    assert_eq!(places(&second)[0], ("CN".into(), 3, true));
    let e = &first.envelopes[0];
    let envelope = Envelope::decode(&unb64(&e.bytes), 1 << 20, 1 << 20).unwrap();
    let content = SignedContent::decode(&unb64(e.content.as_ref().unwrap())).unwrap();
    let cn_key = net.node("CN").state.roster().member(&code("CN")).unwrap().signing_key;
    let b = envelope.body();
    content.verify(&cn_key, &b.line, "CN", b.seq, &b.content_hash).unwrap();
    assert!(String::from_utf8_lossy(&content.content).contains("from CN 0"));

    // PH's own chain, without contents: the asker decrypts those itself.
    let own = ask(&net, "CN", "PH", ask_for("PH", 0)).await.unwrap();
    assert!(!own.envelopes.is_empty());
    assert!(places(&own).iter().all(|(s, _, content)| s == "PH" && !content), "{:?}", places(&own));

    // VN's chain is VN's to hand over.
    let refused = ask(&net, "CN", "PH", ask_for("VN", 0)).await.unwrap_err();
    assert!(refused.contains("403") && refused.contains("not_your_chain"), "{refused}");
    // Only modified code asks for it: PH's operators see it, named.
    let alarms = common::misconduct(&net, "PH", "CN").await;
    assert!(alarms.iter().any(|a| a["detail"].as_str().unwrap().contains("asked for VN's chain")), "{alarms:?}");
    // A line CN is not on.
    let other = open_line(&ph, &["PH", "VN"], "ADMM-Plus").await;
    let body = serde_json::to_vec(&json!({"line": other, "sender": "CN", "after": 0})).unwrap();
    let refused = ask(&net, "CN", "PH", body).await.unwrap_err();
    assert!(refused.contains("404") && refused.contains("no_such_line"), "{refused}");
    // Malformed requests.
    for body in [b"not json".to_vec(), br#"{"line": "zz", "sender": "CN", "after": 0}"#.to_vec()] {
        let refused = ask(&net, "CN", "PH", body).await.unwrap_err();
        assert!(refused.contains("400") && refused.contains("malformed_ask"), "{refused}");
    }
    // Past the end: an empty page.
    assert!(ask(&net, "CN", "PH", ask_for("CN", 1_000)).await.unwrap().envelopes.is_empty());
    assert!(ask(&net, "CN", "PH", ask_for("CN", u64::MAX)).await.unwrap().envelopes.is_empty());
    net.stop_all().await;
}
