//! The window of past epochs between real nodes: envelopes sealed in an epoch the line has since
//! committed past still decrypt while that epoch is within the window an MLS group keeps
//! (`MlsConfig::past_epochs_max`, 16), and one beyond it is refused with an `undecryptable` alarm
//! at both ends.
//!
//! PH, the home member, opens a conference with CN and VN. While PH's (and VN's) nodes are down,
//! CN sends three messages in epoch `e`; they wait in CN's outbox, and CN's node goes down too.
//! PH comes back and churns the line's membership (each addition or removal of a member is one
//! commit, and neither waits for a silent member the way a routine key update does) 17 times. The
//! test hands PH the first message, as CN's node, after one commit (an older epoch, read after the
//! commit that followed it) and the second after 16 (the oldest epoch still kept); both are read.
//! The third reaches PH from CN's own outbox when CN's node returns, 17 epochs late: PH refuses it
//! with a reason naming the epoch and the window and raises an alarm naming CN, and CN raises its
//! own alarm when the refusal comes back. Then the line goes on.

mod common;

use std::time::Duration;

use adi_core::MemberCode;
use adi_node::fed::links::post_batch_once;
use adi_wire::batch::Verdict;
use common::{eventually, get_list, open_line, send, wait_delivered, Net};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(15);

/// Members added to the line and removed again, one commit each, each once.
const CHURN: [&str; 8] = ["TL", "ID", "MY", "SG", "TH", "BN", "KH", "LA"];

async fn epoch(net: &Net, at: &str, line: &str) -> u64 {
    let v = net.client(at).call(Method::GET, &format!("/api/v1/lines/{line}"), None).await.unwrap();
    v["epoch"].as_u64().unwrap()
}

async fn message(net: &Net, at: &str, id: &str) -> Value {
    net.client(at).call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.unwrap()
}

/// The open `undecryptable` alarms at a node.
async fn undecryptable(net: &Net, at: &str) -> Vec<Value> {
    get_list(&net.client(at), "/api/v1/alarms").await.into_iter().filter(|a| a["kind"] == "undecryptable").collect()
}

/// One membership change committed by the home member; returns the line's new epoch.
async fn change(net: &Net, line: &str, add: bool, member: &str) -> u64 {
    let ph = net.client("PH");
    let v = if add {
        ph.call(Method::POST, &format!("/api/v1/lines/{line}/members"), Some(&json!({ "member": member }))).await
    } else {
        ph.call(Method::DELETE, &format!("/api/v1/lines/{line}/members/{member}"), None).await
    };
    v.unwrap_or_else(|e| panic!("{} {member}: {e}", if add { "adding" } else { "removing" }))["epoch"].as_u64().unwrap()
}

/// Hands PH an envelope of CN's, over a connection authenticated as CN's node, as CN's outbox would.
async fn deliver_as_cn(net: &Net, bytes: &[u8]) -> Verdict {
    let keys = common::keys_towards(net, "CN", "PH");
    let ph = MemberCode::parse("PH").unwrap();
    let reply = post_batch_once(&common::endpoint(net, "PH"), keys.tls, &ph, &[bytes], 5_000).await.unwrap();
    reply.verdicts.into_iter().next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_from_past_epochs_are_read_within_the_window_and_one_beyond_it_alarms_both_ends() {
    let codes: Vec<&str> = ["PH", "CN", "VN"].into_iter().chain(CHURN).collect();
    let mut net = Net::start_with(&codes, |d| d.link_test_interval_s = 0).await;
    let window = adi_mls::MlsConfig::default().past_epochs_max as u64;
    assert_eq!(window, 16);
    let line = open_line(&net.client("PH"), &["PH", "CN", "VN"], "ADMM-Plus").await;
    let first = send(&net.client("PH"), &line, "ROUTINE", "all three read this").await;
    // Both members' signed word that they read it is in, so nothing of theirs is left in flight.
    eventually(WAIT, "CN's and VN's decrypted receipts at PH", || async {
        let m = message(&net, "PH", &first).await;
        m["recipients"].as_array().unwrap().iter().all(|r| r["decrypted_ms"].is_u64()).then_some(())
    })
    .await;
    let e = epoch(&net, "PH", &line).await;
    assert_eq!(epoch(&net, "CN", &line).await, e);

    // With PH and VN down, CN's three messages are sealed in epoch e and wait in its outbox.
    net.stop_code("PH").await;
    net.stop_code("VN").await;
    let cn = net.client("CN");
    let mut sent = Vec::new();
    for subject in ["across one commit", "at the edge of the window", "beyond the window"] {
        let id = send(&cn, &line, "ROUTINE", subject).await;
        let (_, bytes) = common::envelope(&cn, &id).await;
        let sealed = adi_wire::Envelope::decode(&bytes, 1 << 20, 1 << 20).unwrap().body().epoch;
        assert_eq!(sealed, e, "{subject}");
        sent.push((id, bytes));
    }
    let [(one, one_bytes), (edge, edge_bytes), (beyond, _)] = <[_; 3]>::try_from(sent).unwrap();
    net.stop_code("CN").await;
    net.start_code("PH").await;
    assert_eq!(epoch(&net, "PH", &line).await, e);

    // PH churns the membership: add a member, remove the one before it, ... (VN first), 17 commits.
    let mut changes = vec![(true, CHURN[0]), (false, "VN")];
    for pair in CHURN.windows(2) {
        changes.extend([(true, pair[1]), (false, pair[0])]);
    }
    changes.push((false, CHURN[CHURN.len() - 1]));
    assert_eq!(changes.len() as u64, window + 1);
    for (n, (add, member)) in changes.into_iter().enumerate() {
        let n = n as u64 + 1;
        assert_eq!(change(&net, &line, add, member).await, e + n);
        // The first is sealed one epoch back, the second in the oldest epoch the group still keeps.
        let late = match n {
            1 => Some(&one_bytes),
            n if n == window => Some(&edge_bytes),
            _ => None,
        };
        if let Some(bytes) = late {
            let verdict = deliver_as_cn(&net, bytes).await;
            assert!(matches!(verdict, Verdict::Accepted), "at epoch {}: {verdict:?}", e + n);
        }
    }
    assert_eq!(epoch(&net, "PH", &line).await, e + window + 1);
    assert_eq!(message(&net, "PH", &one).await["subject"], "across one commit");
    assert_eq!(message(&net, "PH", &edge).await["subject"], "at the edge of the window");
    // Routine key updates wait for the silent member; membership changes did not.
    let (status, v) =
        net.client("PH").request(Method::POST, &format!("/api/v1/lines/{line}/update-keys"), None).await.unwrap();
    assert_eq!((status, v["error"].as_str()), (StatusCode::CONFLICT, Some("member_behind")), "{v}");
    assert!(v["message"].as_str().unwrap_or_default().contains("CN"), "{v}");

    // CN's node returns: its outbox delivers the three messages. The first two PH holds already;
    // the third is 17 epochs old and beyond the window.
    net.start_code("CN").await;
    let reason = format!("from epoch {e}, older than the {window} past epochs kept (current {})", e + window + 1);
    let at_ph = eventually(WAIT, "PH's undecryptable alarm", || async {
        undecryptable(&net, "PH").await.into_iter().find(|a| a["message"] == beyond.as_str())
    })
    .await;
    assert_eq!(at_ph["member"], "CN", "{at_ph}");
    let detail = at_ph["detail"].as_str().unwrap();
    assert!(detail.contains("from CN cannot be decrypted") && detail.contains(&reason), "{at_ph}");
    let at_cn = eventually(WAIT, "CN's undecryptable alarm", || async {
        undecryptable(&net, "CN").await.into_iter().find(|a| a["message"] == beyond.as_str())
    })
    .await;
    assert_eq!(at_cn["member"], "PH", "{at_cn}");
    let detail = at_cn["detail"].as_str().unwrap();
    assert!(detail.contains("PH could not decrypt this node's envelope") && detail.contains(&reason), "{at_cn}");
    let (status, _) = net.client("PH").request(Method::GET, &format!("/api/v1/messages/{beyond}"), None).await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND, "PH holds nothing of the message it could not read");
    let m = message(&net, "CN", &beyond).await;
    let to_ph = m["recipients"].as_array().unwrap().iter().find(|r| r["member"] == "PH").unwrap().clone();
    assert_eq!(to_ph["state"], "refused", "{m}");
    assert!(to_ph["deadline_ms"].is_null(), "no acknowledgement is awaited for a refused message: {m}");
    let detail = to_ph["detail"].as_str().unwrap();
    assert!(detail.starts_with("cannot decrypt") && detail.contains(&reason), "{m}");
    for id in [&one, &edge] {
        let m = message(&net, "CN", id).await;
        let to_ph = m["recipients"].as_array().unwrap().iter().find(|r| r["member"] == "PH").unwrap().clone();
        assert_eq!(to_ph["state"], "delivered", "{m}");
    }

    // The line goes on. PH's node restarts so that its link to CN does not wait out the back-off
    // of the failures while CN was down; CN then takes the 17 commits, and PH's signed word that
    // it read the first two messages (sealed at e + 1 and e + 16) is within CN's window too.
    net.stop_code("PH").await;
    net.start_code("PH").await;
    eventually(WAIT, "CN to take PH's commits and its receipts", || async {
        if epoch(&net, "CN", &line).await != e + window + 1 {
            return None;
        }
        for id in [&one, &edge] {
            let m = message(&net, "CN", id).await;
            m["recipients"].as_array()?.iter().find(|r| r["member"] == "PH")?["decrypted_ms"].as_u64()?;
        }
        Some(())
    })
    .await;
    let at_cn = net.client("CN").call(Method::GET, &format!("/api/v1/lines/{line}"), None).await.unwrap();
    assert_eq!(at_cn["members"], json!(["CN", "PH"]));
    let reply = send(&cn, &line, "IMMEDIATE", "after the churn").await;
    wait_delivered(&cn, &reply, WAIT).await;
    assert_eq!(message(&net, "PH", &reply).await["subject"], "after the churn");
    // Only the one message beyond the window raised anything, at either end.
    for at in ["PH", "CN"] {
        let alarms = undecryptable(&net, at).await;
        assert!(alarms.len() == 1 && alarms[0]["message"] == beyond.as_str(), "at {at}: {alarms:?}");
    }
    net.stop_all().await;
}
