//! Key updates on lines, for post-compromise security: a member proposes, the home member
//! commits, every member moves to the new epoch, and messages keep flowing.

mod common;

use std::time::Duration;

use adi_core::MemberCode;
use adi_node::fed::links::post_batch_once;
use adi_wire::batch::Verdict;
use common::{eventually, open_line, send, wait_delivered, Net};
use hyper::Method;

const WAIT: Duration = Duration::from_secs(30);

async fn epoch(net: &Net, at: &str, line: &str) -> u64 {
    let v = net.client(at).call(Method::GET, &format!("/api/v1/lines/{line}"), None).await.unwrap();
    v["epoch"].as_u64().unwrap()
}

/// Tries to send on a line; the status and error code of the refusal.
async fn send_refused(c: &adi_node::client::Client, line: &str) -> (u16, Option<String>) {
    let body = serde_json::json!({"precedence": "ROUTINE", "subject": "s", "body": "b"});
    let (status, v) = c.request(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&body)).await.unwrap();
    (status.as_u16(), v["error"].as_str().map(str::to_string))
}

/// Waits for a node to reach an epoch of a line, which a member being added may not hold yet.
async fn wait_epoch(net: &Net, at: &str, line: &str, at_least: u64) -> u64 {
    eventually(WAIT, &format!("{at} at epoch {at_least}"), || async {
        let v = net.client(at).call(Method::GET, &format!("/api/v1/lines/{line}"), None).await.ok()?;
        v["epoch"].as_u64().filter(|e| *e >= at_least)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_update_is_committed_by_the_home_member_and_both_move_on() {
    let net = Net::start_with(&["PH", "CN"], |d| d.link_test_interval_s = 0).await;
    let (ph, cn) = (net.client("PH"), net.client("CN"));
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let first = send(&ph, &line, "ROUTINE", "before any update").await;
    wait_delivered(&ph, &first, WAIT).await;
    let start = epoch(&net, "PH", &line).await;
    assert_eq!(epoch(&net, "CN", &line).await, start);

    // CN proposes a fresh leaf; PH, the home member, commits it; both reach the next epoch.
    cn.call(Method::POST, &format!("/api/v1/lines/{line}/update-keys"), None).await.unwrap();
    wait_epoch(&net, "PH", &line, start + 1).await;
    wait_epoch(&net, "CN", &line, start + 1).await;
    // PH updates its own keys by committing at once.
    let v = ph.call(Method::POST, &format!("/api/v1/lines/{line}/update-keys"), None).await.unwrap();
    assert_eq!(v["epoch"].as_u64(), Some(start + 2));
    wait_epoch(&net, "CN", &line, start + 2).await;

    // Messages keep flowing both ways in the new epoch.
    let from_ph = send(&ph, &line, "FLASH", "after the updates").await;
    wait_delivered(&ph, &from_ph, WAIT).await;
    let from_cn = send(&cn, &line, "IMMEDIATE", "answer after the updates").await;
    wait_delivered(&cn, &from_cn, WAIT).await;
    let at_ph = ph.call(Method::GET, &format!("/api/v1/messages/{from_cn}"), None).await.unwrap();
    assert_eq!(at_ph["subject"], "answer after the updates");
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_refreshed_after_the_configured_number_of_messages() {
    let net = Net::start_with(&["PH", "CN"], |d| {
        d.link_test_interval_s = 0;
        d.key_update_messages = 3;
    })
    .await;
    let (ph, cn) = (net.client("PH"), net.client("CN"));
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    eventually(WAIT, "the line at CN", || async {
        cn.call(Method::GET, &format!("/api/v1/lines/{line}"), None).await.ok()
    })
    .await;
    let start = epoch(&net, "CN", &line).await;
    for i in 0..4 {
        let id = send(&cn, &line, "ROUTINE", &format!("from CN {i}")).await;
        wait_delivered(&cn, &id, WAIT).await;
    }
    // Without any operator asking, CN proposed and PH committed.
    wait_epoch(&net, "CN", &line, start + 1).await;
    wait_epoch(&net, "PH", &line, start + 1).await;
    let last = send(&ph, &line, "ROUTINE", "still readable").await;
    wait_delivered(&ph, &last, WAIT).await;
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_the_state_taken_before_a_key_update_reads_nothing_after_it() {
    let net = Net::start_with(&["PH", "CN"], |d| d.link_test_interval_s = 0).await;
    let (ph, cn) = (net.client("PH"), net.client("CN"));
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let before = send(&ph, &line, "ROUTINE", "before the update").await;
    wait_delivered(&ph, &before, WAIT).await;
    // Someone copies CN's MLS state (as from a stolen database with its master key).
    let stolen = net.node("CN").state.store.mls_state().unwrap();
    let start = epoch(&net, "CN", &line).await;
    cn.call(Method::POST, &format!("/api/v1/lines/{line}/update-keys"), None).await.unwrap();
    wait_epoch(&net, "CN", &line, start + 1).await;
    let after = send(&ph, &line, "ROUTINE", "after the update").await;
    wait_delivered(&ph, &after, WAIT).await;

    let (_, bytes) = common::envelope(&ph, &after).await;
    let envelope = adi_wire::Envelope::decode(&bytes, 1 << 20, 1 << 20).unwrap();
    let seed = adi_node::config::load_signing_key(&net.member_dir("CN").join("keys/signing.pem")).unwrap().to_bytes();
    let line_id = adi_wire::LineId::from_hex(&line).unwrap();
    let mut copy =
        adi_mls::LineMember::restore("CN", seed, adi_mls::MlsConfig::default(), stolen, &[line_id.0]).unwrap();
    let roster = |code: &str| {
        let m = net.node("CN").state.roster_member(&adi_core::MemberCode::parse(code).ok()?)?;
        Some(m.signing_key.to_bytes())
    };
    let claim = adi_mls::Claim { sender: "PH", epoch: envelope.body().epoch };
    let rules = adi_mls::LineRules { home: "PH", direct: true };
    let got = copy.process(&line_id.0, rules, claim, &envelope.body().payload, &roster);
    assert!(!matches!(got, Ok(adi_mls::Processed::Application { .. })), "the old state read a new message: {got:?}");
    // CN itself, with the current state, read it.
    let at_cn = cn.call(Method::GET, &format!("/api/v1/messages/{after}"), None).await.unwrap();
    assert_eq!(at_cn["subject"], "after the update");
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_from_a_conference_reads_nothing_sent_after() {
    let net = Net::start_with(&["PH", "VN", "CN"], |d| d.link_test_interval_s = 0).await;
    let (ph, vn, cn) = (net.client("PH"), net.client("VN"), net.client("CN"));
    let line = open_line(&ph, &["PH", "VN", "CN"], "ADMM-Plus").await;
    let before = send(&ph, &line, "ROUTINE", "all three read this").await;
    wait_delivered(&ph, &before, WAIT).await;
    let start = epoch(&net, "PH", &line).await;

    // Only the home member removes, never itself, and a direct line keeps its two members.
    let (status, _) = vn.request(Method::DELETE, &format!("/api/v1/lines/{line}/members/CN"), None).await.unwrap();
    assert_eq!(status, 403);
    let (status, _) = ph.request(Method::DELETE, &format!("/api/v1/lines/{line}/members/PH"), None).await.unwrap();
    assert_eq!(status, 409);
    let v = ph.call(Method::DELETE, &format!("/api/v1/lines/{line}/members/VN"), None).await.unwrap();
    assert_eq!(v["members"], serde_json::json!(["CN", "PH"]));
    assert_eq!(v["epoch"].as_u64(), Some(start + 1));
    wait_epoch(&net, "CN", &line, start + 1).await;
    let at_cn = cn.call(Method::GET, &format!("/api/v1/lines/{line}"), None).await.unwrap();
    assert_eq!(at_cn["members"], serde_json::json!(["CN", "PH"]));

    let after = send(&ph, &line, "FLASH", "VN must not read this").await;
    let m = wait_delivered(&ph, &after, WAIT).await;
    let recipients: Vec<&str> =
        m["recipients"].as_array().unwrap().iter().map(|r| r["member"].as_str().unwrap()).collect();
    assert_eq!(recipients, vec!["CN"], "nothing new goes to VN");
    // VN's node, even handed the envelope, cannot read it.
    let (_, bytes) = common::envelope(&ph, &after).await;
    let keys = common::keys_towards(&net, "PH", "VN");
    let vn_code = adi_core::MemberCode::parse("VN").unwrap();
    let reply =
        adi_node::fed::links::post_batch_once(&common::endpoint(&net, "VN"), keys.tls, &vn_code, &[&bytes], 5_000)
            .await
            .unwrap();
    assert!(!matches!(reply.verdicts[0], adi_wire::batch::Verdict::Accepted), "{reply:?}");
    let (status, _) = vn.request(Method::GET, &format!("/api/v1/messages/{after}"), None).await.unwrap();
    assert_eq!(status, 404);
    // VN's node knows it is off the line and sends nothing on it.
    eventually(WAIT, "VN to learn of its removal", || async {
        let l = vn.call(Method::GET, &format!("/api/v1/lines/{line}"), None).await.ok()?;
        (l["members"] == serde_json::json!(["CN", "PH"])).then_some(())
    })
    .await;
    assert_eq!(send_refused(&vn, &line).await, (403, Some("removed".to_string())));
    // CN and PH go on.
    let reply = send(&cn, &line, "ROUTINE", "CN goes on").await;
    wait_delivered(&cn, &reply, WAIT).await;
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_added_to_a_conference_reads_from_then_on_and_nothing_before() {
    let net = Net::start_with(&["PH", "VN", "CN", "TL"], |d| d.link_test_interval_s = 0).await;
    let (ph, tl) = (net.client("PH"), net.client("TL"));
    let line = open_line(&ph, &["PH", "VN", "CN"], "ADMM-Plus").await;
    let before = send(&ph, &line, "ROUTINE", "before TL joined").await;
    wait_delivered(&ph, &before, WAIT).await;
    let start = epoch(&net, "PH", &line).await;

    // Only the home member adds, and the scope's policy holds for additions too (on a conference:
    // a direct line takes no third member at all).
    let admm = open_line(&ph, &["PH", "VN", "TL"], "ADMM").await;
    let (status, v) = ph
        .request(Method::POST, &format!("/api/v1/lines/{admm}/members"), Some(&serde_json::json!({"member": "CN"})))
        .await
        .unwrap();
    assert_eq!((status.as_u16(), v["error"].as_str()), (403, Some("scope_policy")));
    let (status, v) = net
        .client("VN")
        .request(Method::POST, &format!("/api/v1/lines/{line}/members"), Some(&serde_json::json!({"member": "TL"})))
        .await
        .unwrap();
    assert_eq!((status.as_u16(), v["error"].as_str()), (403, Some("not_home")));

    let v = ph
        .call(Method::POST, &format!("/api/v1/lines/{line}/members"), Some(&serde_json::json!({"member": "TL"})))
        .await
        .unwrap();
    assert_eq!(v["members"], serde_json::json!(["CN", "PH", "TL", "VN"]));
    assert_eq!(v["epoch"].as_u64(), Some(start + 1));
    for at in ["VN", "CN", "TL"] {
        wait_epoch(&net, at, &line, start + 1).await;
    }
    let (status, _) = tl.request(Method::GET, &format!("/api/v1/messages/{before}"), None).await.unwrap();
    assert_eq!(status, 404, "the new member holds nothing sent before it joined");

    let after = send(&ph, &line, "IMMEDIATE", "welcome TL").await;
    wait_delivered(&ph, &after, WAIT).await;
    assert_eq!(
        tl.call(Method::GET, &format!("/api/v1/messages/{after}"), None).await.unwrap()["subject"],
        "welcome TL"
    );
    let from_tl = send(&tl, &line, "ROUTINE", "TL speaks").await;
    wait_delivered(&tl, &from_tl, WAIT).await;
    for at in ["PH", "VN", "CN"] {
        let m = net.client(at).call(Method::GET, &format!("/api/v1/messages/{from_tl}"), None).await.unwrap();
        assert_eq!(m["subject"], "TL speaks");
    }
    net.stop_all().await;
}

/// The exact bytes of `sender`'s latest envelope of a kind on a line, from a stopped node's store.
fn latest_envelope(net: &Net, at: &str, line: &str, sender: &str, kind: &str) -> Vec<u8> {
    let config = adi_node::config::NodeConfig::load(&net.config_path(at)).unwrap();
    let c = rusqlite::Connection::open(&config.database).unwrap();
    let hash: Vec<u8> = c
        .query_row(
            "SELECT hash FROM envelopes WHERE line = ?1 AND sender = ?2 AND kind = ?3 ORDER BY seq DESC LIMIT 1",
            rusqlite::params![hex::decode(line).unwrap(), sender, kind],
            |row| row.get(0),
        )
        .unwrap();
    drop(c);
    let store = adi_node::state::open_store(&config).unwrap();
    let hash = adi_wire::EnvelopeHash(hash.try_into().unwrap());
    adi_store::Store::envelope(&store, &hash).unwrap().expect("stored").bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_from_a_later_epoch_is_held_across_a_restart_and_read_when_its_commit_arrives() {
    let mut net = Net::init_with(&["PH", "CN"], |d| d.link_test_interval_s = 0);
    // CN holds at most one envelope per line for a later epoch.
    let config = net.config_path("CN");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("[limits]\n", "[limits]\nheld_envelopes_max = 1\n")).unwrap();
    net.start_code("PH").await;
    net.start_code("CN").await;
    let ph = net.client("PH");
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let first = send(&ph, &line, "ROUTINE", "before the update").await;
    wait_delivered(&ph, &first, WAIT).await;
    let start = epoch(&net, "CN", &line).await;

    // While CN is down, PH commits a key update and sends a FLASH in the new epoch.
    net.stop_code("CN").await;
    ph.call(Method::POST, &format!("/api/v1/lines/{line}/update-keys"), None).await.unwrap();
    let flash = send(&ph, &line, "FLASH", "sent in the new epoch").await;
    let (_, flash_bytes) = common::envelope(&ph, &flash).await;
    let second = send(&ph, &line, "IMMEDIATE", "also in the new epoch").await;
    let (_, second_bytes) = common::envelope(&ph, &second).await;
    let decoded = adi_wire::Envelope::decode(&flash_bytes, 1 << 20, 1 << 20).unwrap();
    assert_eq!(decoded.body().epoch, start + 1);
    net.stop_code("PH").await;
    let commit = latest_envelope(&net, "PH", &line, "PH", "handshake");

    // The FLASH reaches CN before the commit: CN holds it, durably, and says so.
    net.start_code("CN").await;
    let cn_code = MemberCode::parse("CN").unwrap();
    let keys = common::keys_towards(&net, "PH", "CN");
    let reply = post_batch_once(&common::endpoint(&net, "CN"), keys.tls.clone(), &cn_code, &[&flash_bytes], 5_000)
        .await
        .unwrap();
    let verdict = format!("{:?}", reply.verdicts[0]);
    assert!(verdict.contains("Deferred") && verdict.contains("held here"), "{verdict}");
    // The buffer is bounded: a second one is only deferred, and waits in PH's queue.
    let reply = post_batch_once(&common::endpoint(&net, "CN"), keys.tls.clone(), &cn_code, &[&second_bytes], 5_000)
        .await
        .unwrap();
    let verdict = format!("{:?}", reply.verdicts[0]);
    assert!(verdict.contains("Deferred") && verdict.contains("held_envelopes_max = 1"), "{verdict}");
    let inbox = |net: &Net| {
        let cn = net.client("CN");
        async move { common::get_list(&cn, "/api/v1/inbox").await }
    };
    assert!(!inbox(&net).await.iter().any(|m| m["id"] == flash.as_str()), "not readable before its commit");

    // CN's node stops and starts again with the FLASH held; then the commit arrives (PH is still
    // down, so the FLASH can only come from what CN held).
    net.stop_code("CN").await;
    net.start_code("CN").await;
    let reply =
        post_batch_once(&common::endpoint(&net, "CN"), keys.tls.clone(), &cn_code, &[&commit], 5_000).await.unwrap();
    assert!(matches!(reply.verdicts[0], Verdict::Accepted), "{reply:?}");
    assert_eq!(epoch(&net, "CN", &line).await, start + 1);
    let held = eventually(WAIT, "CN to read the held FLASH", || async {
        inbox(&net).await.into_iter().find(|m| m["id"] == flash.as_str())
    })
    .await;
    assert_eq!(held["subject"], "sent in the new epoch");
    assert!(!inbox(&net).await.iter().any(|m| m["id"] == second.as_str()), "the one not held waits at PH");

    // PH comes back: its queued copies are duplicates now, and CN's node has said, signed, that it
    // decrypted the FLASH. The line works both ways in the new epoch.
    net.start_code("PH").await;
    let m = wait_delivered(&ph, &flash, WAIT).await;
    assert_eq!(m["recipients"][0]["member"], "CN");
    wait_delivered(&ph, &second, WAIT).await;
    eventually(WAIT, "CN's decrypted receipt at PH", || async {
        let m = ph.call(Method::GET, &format!("/api/v1/messages/{flash}"), None).await.ok()?;
        m["recipients"][0]["decrypted_ms"].as_u64()
    })
    .await;
    let reply = send(&net.client("CN"), &line, "IMMEDIATE", "answer in the new epoch").await;
    wait_delivered(&net.client("CN"), &reply, WAIT).await;
    let at_ph = ph.call(Method::GET, &format!("/api/v1/messages/{reply}"), None).await.unwrap();
    assert_eq!(at_ph["subject"], "answer in the new epoch");
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_leaves_a_conference_by_proposal_and_the_home_member_commits_it() {
    let net = Net::start_with(&["PH", "VN", "CN"], |d| d.link_test_interval_s = 0).await;
    let (ph, vn) = (net.client("PH"), net.client("VN"));
    let line = open_line(&ph, &["PH", "VN", "CN"], "ADMM-Plus").await;
    let before = send(&ph, &line, "ROUTINE", "before VN left").await;
    wait_delivered(&ph, &before, WAIT).await;
    let start = epoch(&net, "PH", &line).await;

    // The home member does not leave, and a direct line keeps both members.
    let leave = format!("/api/v1/lines/{line}/leave");
    let (status, v) = ph.request(Method::POST, &leave, None).await.unwrap();
    assert_eq!((status.as_u16(), v["error"].as_str()), (403, Some("home_stays")));
    let direct = open_line(&ph, &["PH", "VN"], "ADMM").await;
    eventually(WAIT, "VN to hold the direct line", || async {
        vn.call(Method::GET, &format!("/api/v1/lines/{direct}"), None).await.ok()
    })
    .await;
    let (status, v) = vn.request(Method::POST, &format!("/api/v1/lines/{direct}/leave"), None).await.unwrap();
    assert_eq!((status.as_u16(), v["error"].as_str()), (409, Some("cannot_leave")));

    // VN proposes its leaving; PH commits it; every node, VN's included, follows.
    vn.call(Method::POST, &leave, None).await.unwrap();
    for at in ["PH", "CN", "VN"] {
        eventually(WAIT, &format!("{at} to see VN gone"), || async {
            let v = net.client(at).call(Method::GET, &format!("/api/v1/lines/{line}"), None).await.ok()?;
            (v["members"] == serde_json::json!(["CN", "PH"]) && v["epoch"].as_u64() > Some(start)).then_some(())
        })
        .await;
    }
    assert_eq!(send_refused(&vn, &line).await, (403, Some("removed".to_string())));
    let after = send(&ph, &line, "FLASH", "after VN left").await;
    let m = wait_delivered(&ph, &after, WAIT).await;
    let to: Vec<&str> = m["recipients"].as_array().unwrap().iter().map(|r| r["member"].as_str().unwrap()).collect();
    assert_eq!(to, ["CN"]);
    let (status, _) = vn.request(Method::GET, &format!("/api/v1/messages/{after}"), None).await.unwrap();
    assert_eq!(status, 404, "VN reads nothing sent after it left");
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_from_a_conference_can_be_added_again_and_reads_from_then_on() {
    let mut net = Net::start_with(&["PH", "VN", "CN"], |d| d.link_test_interval_s = 0).await;
    let (ph, vn) = (net.client("PH"), net.client("VN"));
    let line = open_line(&ph, &["PH", "VN", "CN"], "ADMM-Plus").await;
    let members = format!("/api/v1/lines/{line}/members");
    ph.call(Method::DELETE, &format!("{members}/VN"), None).await.unwrap();
    let start = wait_epoch(&net, "VN", &line, 2).await;
    let while_out = send(&ph, &line, "ROUTINE", "while VN was out").await;
    wait_delivered(&ph, &while_out, WAIT).await;

    // Added again, across a restart of its node: VN joins the line's group anew.
    net.stop_code("VN").await;
    net.start_code("VN").await;
    let v = ph.call(Method::POST, &members, Some(&serde_json::json!({"member": "VN"}))).await.unwrap();
    assert_eq!(v["members"], serde_json::json!(["CN", "PH", "VN"]));
    eventually(WAIT, "VN back on the line", || async {
        let v = vn.call(Method::GET, &format!("/api/v1/lines/{line}"), None).await.ok()?;
        (v["members"] == serde_json::json!(["CN", "PH", "VN"]) && v["epoch"].as_u64() > Some(start)).then_some(())
    })
    .await;
    let back = send(&ph, &line, "IMMEDIATE", "welcome back VN").await;
    wait_delivered(&ph, &back, WAIT).await;
    assert_eq!(
        vn.call(Method::GET, &format!("/api/v1/messages/{back}"), None).await.unwrap()["subject"],
        "welcome back VN"
    );
    let (status, _) = vn.request(Method::GET, &format!("/api/v1/messages/{while_out}"), None).await.unwrap();
    assert_eq!(status, 404, "nothing sent while VN was out");
    let from_vn = send(&vn, &line, "ROUTINE", "VN is back").await;
    wait_delivered(&vn, &from_vn, WAIT).await;
    net.stop_all().await;
}
