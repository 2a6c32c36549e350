//! What needs action comes first on the console, in a real headless Chromium (as `browser.rs`):
//! an unanswered FLASH heads the inbox above fifteen answered messages, with its whole text and
//! the time left to answer it; Cancel on a decline's prompt sends nothing; a FLASH composed on
//! the page goes only once confirmed, and the form returns to ROUTINE after sending.

#[allow(dead_code)]
#[path = "common/browser.rs"]
mod browser;
mod common;

use std::time::Duration;

use browser::Browser;
use common::{eventually, get_list, open_line, send, set_limits, Net};
use hyper::Method;
use serde_json::json;

const PASSWORD: &str = "the forenoon watch";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_flash_heads_the_inbox_with_its_text_and_no_wrong_action_is_one_click_away() {
    // Pages of five: the unanswered ROUTINE, newest of sixteen, is on the inbox's fourth page in
    // the node's order, and the page still shows it second, under the FLASH.
    let mut net = Net::init_with(&["PH", "CN"], |d| d.link_test_interval_s = 0);
    set_limits(&net, "PH", |l| l.messages_page_len = Some(5));
    net.start_code("PH").await;
    net.start_code("CN").await;
    let (ph, cn) = (net.client("PH"), net.client("CN"));
    let line = open_line(&cn, &["PH", "CN"], "ADMM-Plus").await;
    let store = &*net.node("PH").state.store;
    adi_node::setup::add_operator(store, "watch-ph", "duty").unwrap();
    adi_node::setup::set_password(store, "watch-ph", PASSWORD).unwrap();

    // Sixteen ROUTINE messages, fifteen of them answered; then a FLASH.
    let mut routine = Vec::new();
    for i in 0..16 {
        routine.push(send(&cn, &line, "ROUTINE", &format!("Routine report {i:02}")).await);
    }
    eventually(Duration::from_secs(30), "PH holds the sixteen", || {
        let ph = ph.clone();
        async move { (get_list(&ph, "/api/v1/inbox?limit=100").await.len() >= 16).then_some(()) }
    })
    .await;
    for id in &routine[..15] {
        ph.call(Method::POST, &format!("/api/v1/messages/{id}/ack"), Some(&json!({}))).await.unwrap();
    }
    let flash = send(&cn, &line, "FLASH", "Close quarters at the shoal").await;

    let browser = Browser::start().await;
    browser.sign_in(&format!("http://{}/console", net.node("PH").api_addr), "watch-ph", PASSWORD).await;
    let first = browser.wait_text("#inbox tr:first-child", "Close quarters at the shoal").await;
    assert!(first.contains("body of Close quarters at the shoal"), "the FLASH's text is not shown: {first}");
    assert!(first.contains("Answer by") && first.contains("left"), "no deadline shown: {first}");
    browser.wait_text("#inbox tr:nth-child(2)", "Routine report 15").await;
    browser.wait_text("#inbox tr:nth-child(3)", "Routine report").await;
    assert_eq!(browser.count("#inbox tr.waits").await, 2, "the two unanswered messages are marked");
    // Who on this desk answered each of the others, and when; the node keeps it with the receipt.
    let answered = browser.text("#inbox tr:nth-child(3)").await;
    assert!(answered.contains("Acknowledged by duty-PH at"), "{answered}");
    let m = ph.call(Method::GET, &format!("/api/v1/messages/{}", routine[0]), None).await.unwrap();
    let ours: Vec<&serde_json::Value> =
        m["receipts"].as_array().unwrap().iter().filter(|r| r["kind"] == "acknowledged").collect();
    assert_eq!(ours.len(), 1, "{m}");
    assert_eq!(ours[0]["operator"], "duty-PH");
    let automatic = m["receipts"].as_array().unwrap().iter().find(|r| r["kind"] == "decrypted");
    assert!(automatic.is_some_and(|r| r.get("operator").is_none()), "an automatic receipt names an operator: {m}");
    let cn_client = net.client("CN");
    let path = format!("/api/v1/messages/{}", routine[0]);
    let at_cn = eventually(Duration::from_secs(30), "CN holds PH's acknowledgement", || {
        let (cn, path) = (cn_client.clone(), path.clone());
        async move {
            let m = cn.call(Method::GET, &path, None).await.ok()?;
            m["receipts"].as_array()?.iter().any(|r| r["kind"] == "acknowledged").then_some(m)
        }
    })
    .await;
    assert!(
        at_cn["receipts"].as_array().unwrap().iter().all(|r| r.get("operator").is_none()),
        "another member's node learns an operator's name: {at_cn}"
    );
    browser.screenshot("console-needs-action").await;

    // Decline, then Cancel on its prompt: nothing is sent.
    browser.click("#inbox tr:first-child td:last-child button:last-of-type").await;
    let asked = browser.answer_dialog(None).await;
    assert!(asked.contains("Why do you decline?"), "{asked}");
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let m = ph.call(Method::GET, &format!("/api/v1/messages/{flash}"), None).await.unwrap();
    let answered =
        |r: &&serde_json::Value| r["member"] == "PH" && (r["kind"] == "declined" || r["kind"] == "acknowledged");
    assert!(!m["receipts"].as_array().unwrap().iter().any(|r| answered(&r)), "Cancel sent an answer: {m}");
    assert_eq!(browser.count("#inbox tr.waits").await, 2);

    // Acknowledge in the inbox: the message is answered, drawn again as answered, and the page
    // reports no error (it once failed after the acknowledgement went, calling a local of the
    // same name as the function that reads the message again).
    browser.wait_text("#inbox tr:nth-child(2)", "Routine report 15").await;
    browser.click("#inbox tr:nth-child(2) td:last-child button:first-of-type").await;
    browser
        .until(
            "return document.querySelectorAll('#inbox tr.waits').length === 1;",
            "the acknowledged message still waits",
        )
        .await;
    browser
        .until("return !!document.querySelector(\"#inbox tr:not(.waits) .answered\");", "the answer is not drawn")
        .await;
    assert_eq!(browser.script("return document.getElementById('action-error').textContent;").await, json!(""));

    // Declining a decision, then Cancel on its prompt: nothing is sent either.
    let body = json!({"text": "Both sides hold at 12 nautical miles."});
    let decision =
        cn.call(Method::POST, &format!("/api/v1/lines/{line}/decisions"), Some(&body)).await.unwrap()["id"].clone();
    browser.wait_text("#decisions", "Both sides hold at 12 nautical miles.").await;
    browser.click("#decisions li button:last-of-type").await;
    let asked = browser.answer_dialog(None).await;
    assert!(asked.contains("Why do you decline?"), "{asked}");
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let d = ph.call(Method::GET, &format!("/api/v1/decisions/{}", decision.as_str().unwrap()), None).await.unwrap();
    assert_eq!(d["state"], "open", "Cancel answered the decision: {d}");
    assert!(d["missing"].as_array().unwrap().contains(&json!("PH")), "Cancel answered the decision: {d}");

    // A FLASH composed on the page goes only once confirmed.
    browser.select("form#compose select[name=precedence]", "FLASH").await;
    browser.type_into("form#compose input[name=subject]", "Not confirmed").await;
    browser.type_into("form#compose textarea[name=body]", "This one is cancelled.").await;
    browser.click("form#compose button[type=submit]").await;
    let asked = browser.answer_dialog(None).await;
    assert!(asked.contains("Send this FLASH?"), "{asked}");
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let sent = get_list(&ph, &format!("/api/v1/lines/{line}/messages?limit=100")).await;
    assert!(!sent.iter().any(|m| m["subject"] == "Not confirmed"), "a FLASH went without confirmation");
    browser.type_into("form#compose input[name=subject]", "Confirmed").await;
    browser.click("form#compose button[type=submit]").await;
    browser.answer_dialog(Some("")).await;
    eventually(Duration::from_secs(10), "the confirmed FLASH sent", || {
        let (ph, path) = (ph.clone(), format!("/api/v1/lines/{line}/messages?limit=100"));
        async move { get_list(&ph, &path).await.iter().any(|m| m["subject"] == "Confirmed").then_some(()) }
    })
    .await;
    let now = browser.script("return document.querySelector('form#compose select[name=precedence]').value;").await;
    assert_eq!(now, json!("ROUTINE"), "the form stayed on FLASH after sending");
    browser.quit().await;
    net.stop_all().await;
}

/// An escalation's banner acts on the message: silencing the alarm only quiets it until the node
/// repeats it, when it rings again; acknowledging the message answers it and ends the alarm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silenced_escalation_rings_again_when_repeated_and_the_banner_acknowledges_the_message() {
    let net = Net::start_with(&["PH", "CN"], |d| {
        d.link_test_interval_s = 0;
        d.escalation_repeat_s = 2;
        d.deadlines = Some(adi_wire::files::DeadlinesFile { flash_s: 2, immediate_s: 2, priority_s: 2, routine_s: 2 });
    })
    .await;
    let cn = net.client("CN");
    let line = open_line(&cn, &["PH", "CN"], "ADMM-Plus").await;
    let store = &*net.node("PH").state.store;
    adi_node::setup::add_operator(store, "watch-ph", "duty").unwrap();
    adi_node::setup::set_password(store, "watch-ph", PASSWORD).unwrap();
    let browser = Browser::start().await;
    browser.sign_in(&format!("http://{}/console", net.node("PH").api_addr), "watch-ph", PASSWORD).await;

    let id = send(&cn, &line, "IMMEDIATE", "Fishing fleet entering the zone").await;
    browser.wait_text("#banner-text", "Unanswered past its deadline").await;
    browser.wait_text("#banner-ack", "Acknowledge message").await;
    assert_eq!(browser.count("#banner-silence:not([hidden])").await, 1);
    browser.screenshot("console-escalation-banner").await;

    // Silenced: quiet until the node repeats the escalation, then it rings again.
    browser.click("#banner-silence").await;
    let ringing =
        "return document.body.dataset.ringing === '1' && document.getElementById('banner').className.includes('on');";
    let quiet = eventually(Duration::from_secs(10), "the banner silenced", || {
        let b = &browser;
        async move { (b.script(ringing).await == json!(false)).then_some(()) }
    });
    quiet.await;
    eventually(Duration::from_secs(20), "the repeated escalation rings again", || {
        let b = &browser;
        async move { (b.script(ringing).await == json!(true)).then_some(()) }
    })
    .await;
    browser.wait_text("#banner-ack", "Acknowledge message").await;

    // Acknowledged from the banner: CN holds PH's acknowledgement, and the banner is down.
    browser.click("#banner-ack").await;
    eventually(Duration::from_secs(30), "PH's acknowledgement at CN", || {
        let (cn, id) = (cn.clone(), id.clone());
        async move {
            let m = cn.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.ok()?;
            m["recipients"]
                .as_array()?
                .iter()
                .any(|r| r["member"] == "PH" && r["state"] == "acknowledged")
                .then_some(())
        }
    })
    .await;
    eventually(Duration::from_secs(10), "the banner down", || {
        let b = &browser;
        async move { (b.count("#banner.on").await == 0).then_some(()) }
    })
    .await;
    browser.quit().await;
    net.stop_all().await;
}
