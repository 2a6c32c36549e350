//! A watch that cannot die silently, in a real headless Chromium (as `browser.rs`): a console
//! page left open on a quiet network stays signed in while its event stream is open, past the
//! idle timeout, and rings the next FLASH; a page whose session ended at the end of the watch
//! still rings for a FLASH that arrives after, without showing what it says, and signing in again
//! in place brings back what was on screen.

#[allow(dead_code)]
#[path = "common/browser.rs"]
mod browser;
mod common;

use std::time::Duration;

use browser::Browser;
use common::{console_pair, send, Net};
use serde_json::json;

const PASSWORD: &str = "the middle watch";

/// PH's and CN's nodes with a line between them, PH's limits set by `limits`, no link tests (a
/// quiet network), and an operator on PH's console; returns the network, the line and the
/// console's address.
async fn quiet_network(limits: impl Fn(&mut adi_node::config::LimitsSection)) -> (Net, String, String) {
    console_pair(|d| d.link_test_interval_s = 0, limits, PASSWORD).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_console_stays_signed_in_while_its_stream_is_open_and_rings_the_next_flash() {
    let (net, line, console) = quiet_network(|l| {
        l.session_idle_ms = Some(2_000);
        l.events_keepalive_ms = Some(500);
        l.events_poll_ms = Some(200);
    })
    .await;
    let browser = Browser::start().await;
    browser.sign_in(&console, "watch-ph", PASSWORD).await;
    // Nothing happens for three idle timeouts.
    tokio::time::sleep(Duration::from_millis(6_000)).await;
    send(&net.client("CN"), &line, "FLASH", "Aircraft closing on the boundary").await;
    browser.wait_text("#banner-text", "FLASH from China (CN): Aircraft closing on the boundary").await;
    browser.wait_text("#inbox", "Aircraft closing on the boundary").await;
    assert_eq!(browser.count("#sign-in-view:not([hidden])").await, 0, "the page was sent to sign in");
    browser.until("return document.body.dataset.ringing === '1';", "the page does not ring").await;
    browser.until("return document.title.startsWith('(1) ');", "the tab title does not count the FLASH").await;
    browser.screenshot("console-watch-quiet-console-flash").await;
    browser.quit().await;
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flash_after_the_watch_ended_rings_without_its_content_and_signing_in_again_keeps_the_page() {
    let (net, line, console) = quiet_network(|l| {
        l.session_idle_ms = Some(2_000);
        l.session_max_ms = Some(2_000);
        l.session_watch_ms = Some(6_000);
        l.urgent_watch_ms = Some(120_000);
        l.events_keepalive_ms = Some(500);
        l.events_poll_ms = Some(200);
    })
    .await;
    let browser = Browser::start().await;
    browser.sign_in(&console, "watch-ph", PASSWORD).await;
    // A draft the officer was writing when the watch ended.
    browser.type_into("form#compose input[name=subject]", "draft kept across the sign-in").await;
    // The stream keeps the session past its idle and longest times, to the end of the watch,
    // and then tells the page.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    assert_eq!(browser.count("#sign-in-view:not([hidden])").await, 0, "the session ended before the watch did");
    browser.wait_text("#sign-in-error", "the session has expired").await;
    assert_eq!(browser.count("#watch:not([hidden])").await, 0, "the watch stays shown while signed out");

    send(&net.client("CN"), &line, "FLASH", "Secret: the frigate turns north").await;
    browser.wait_text("#banner-text", "1 urgent message waits for this desk. Sign in to read and answer.").await;
    browser.until("return document.body.dataset.ringing === '1';", "the signed-out page does not ring").await;
    browser.until("return document.title.startsWith('(1) ');", "the tab title does not count it").await;
    let shown = browser.script("return document.body.innerText;").await;
    assert!(!shown.as_str().unwrap().contains("frigate"), "a signed-out page shows content: {shown}");
    browser.screenshot("console-signed-out-urgent").await;

    // Signed in again in place: the FLASH, and the draft, are there.
    browser.type_into("input[name=name]", "watch-ph").await;
    browser.type_into("input[name=password]", PASSWORD).await;
    browser.click("form#sign-in button").await;
    browser.wait_text("#who", "watch-ph").await;
    browser.wait_text("#banner-text", "FLASH from China (CN): Secret: the frigate turns north").await;
    let draft = browser.script("return document.querySelector('form#compose input[name=subject]').value;").await;
    assert_eq!(draft, json!("draft kept across the sign-in"));
    let password = browser.script("return document.querySelector('input[name=password]').value;").await;
    assert_eq!(password, json!(""), "the password stays in the page after sign-in");
    browser.quit().await;
    net.stop_all().await;
}

/// The watch view's first load, as Chromium's resource timing counts it: every answer the page
/// took to show the watch (the page, its script and style, and the API's answers), compressed, is
/// under 100 KB; the script came compressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_views_first_load_is_compressed_and_under_100_kb() {
    let (net, line, console) = quiet_network(|_| {}).await;
    for i in 0..20 {
        send(&net.client("CN"), &line, "ROUTINE", &format!("Traffic {i}")).await;
    }
    let browser = Browser::start().await;
    browser.sign_in(&console, "watch-ph", PASSWORD).await;
    // The first load of the watch view: the page opened again, signed in.
    browser.go(&console).await;
    browser.wait_text("#who", "watch-ph").await;
    browser.wait_text("#inbox", "Traffic 19").await;
    browser.wait_text("#conversation", "Traffic 19").await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let measured = browser
        .script(
            "const all = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];\
         const js = performance.getEntriesByType('resource').find((e) => e.name.endsWith('/console/console.js'));\
         return { encoded: all.reduce((n, e) => n + e.encodedBodySize, 0),\
                  decoded: all.reduce((n, e) => n + e.decodedBodySize, 0), requests: all.length,\
                  js_encoded: js ? js.encodedBodySize : -1, js_decoded: js ? js.decodedBodySize : -1 };",
        )
        .await;
    println!("the watch view's first load: {measured}");
    let encoded = measured["encoded"].as_u64().unwrap();
    assert!(encoded > 0 && encoded < 100 * 1024, "{measured}");
    let (js_encoded, js_decoded) = (measured["js_encoded"].as_i64().unwrap(), measured["js_decoded"].as_i64().unwrap());
    assert!(js_encoded > 0 && js_encoded * 2 < js_decoded, "the script came uncompressed: {measured}");
    browser.quit().await;
    net.stop_all().await;
}

/// An event loads again only what it touches: a message that arrives is fetched alone (with the
/// chosen line it is on), and the inbox, the lines, the links and the evidence are not read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_arrives_is_fetched_alone_not_the_whole_page() {
    let (net, line, console) = quiet_network(|_| {}).await;
    for i in 0..5 {
        send(&net.client("CN"), &line, "ROUTINE", &format!("Traffic {i}")).await;
    }
    let browser = Browser::start().await;
    browser.sign_in(&console, "watch-ph", PASSWORD).await;
    browser.wait_text("#inbox", "Traffic 4").await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    browser.script("performance.clearResourceTimings(); return 0;").await;
    let id = send(&net.client("CN"), &line, "IMMEDIATE", "One more arrives").await;
    browser.wait_text("#inbox", "One more arrives").await;
    browser.wait_text("#conversation", "One more arrives").await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let asked = browser.script(
        "return performance.getEntriesByType('resource').map((e) => new URL(e.name).pathname + new URL(e.name).search);",
    )
    .await;
    println!("requests for one message that arrived: {asked}");
    let asked: Vec<String> = asked.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert!(asked.contains(&format!("/api/v1/messages/{id}")), "the message was not fetched alone: {asked:?}");
    for whole in ["/api/v1/inbox", "/api/v1/lines?", "/api/v1/links", "/api/v1/evidence"] {
        assert!(
            !asked.iter().any(|a| a.starts_with(whole) || a == whole.trim_end_matches('?')),
            "{whole} read again: {asked:?}"
        );
    }
    // The roster section is read on its own timer (`ROSTER_EVERY_MS`), whatever happens.
    let for_the_event: Vec<&String> = asked.iter().filter(|a| !a.starts_with("/api/v1/roster")).collect();
    assert!(for_the_event.len() <= 4, "{} requests for one message: {for_the_event:?}", for_the_event.len());
    browser.quit().await;
    net.stop_all().await;
}
