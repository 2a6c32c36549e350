//! The console's every view, checked with axe-core through @axe-core/playwright (from npm,
//! `tests/console`; `scripts/test` installs it) in a real headless Chromium (as `browser.rs`):
//! the sign-in, the watch with an unanswered FLASH and answered traffic, a report's map, the wall
//! display, and a signed-out page with something urgent waiting. No view may have a serious or
//! critical violation of WCAG 2.1 A and AA. An urgent message is also acknowledged with the
//! keyboard alone.

#[allow(dead_code)]
#[path = "common/browser.rs"]
mod browser;
mod common;

use browser::{Browser, WAIT};
use common::{open_line, send, Net};
use hyper::Method;
use serde_json::json;

const PASSWORD: &str = "the morning watch";

/// Runs axe-core's WCAG 2.1 A and AA rules on the page as it is, and returns the serious and
/// critical violations, each as its rule, impact and the elements it found.
async fn violations(browser: &Browser, view: &str) -> Vec<String> {
    let result = browser.axe(&["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).await;
    assert!(result.passes > 10, "axe-core checked nothing on {view}: {result:?}");
    let found: Vec<String> = result
        .violations
        .iter()
        .filter(|v| v.impact == "serious" || v.impact == "critical")
        .map(|v| format!("{view}: {} ({}): {} at {:?}", v.id, v.impact, v.help, v.targets))
        .collect();
    println!("{view}: {} rules passed, {} serious or critical violations", result.passes, found.len());
    for f in &found {
        println!("  {f}");
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_view_of_the_console_has_a_serious_or_critical_accessibility_violation() {
    let net = Net::start(&["PH", "CN"]).await;
    let (ph, cn) = (net.client("PH"), net.client("CN"));
    let line = open_line(&cn, &["PH", "CN"], "ADMM-Plus").await;
    let store = &*net.node("PH").state.store;
    adi_node::setup::add_operator(store, "watch-ph", "duty").unwrap();
    adi_node::setup::set_password(store, "watch-ph", PASSWORD).unwrap();
    let console = format!("http://{}/console", net.node("PH").api_addr);
    // Traffic of every kind the views show: an answered message, a report with positions, and
    // an unanswered FLASH.
    let answered = send(&cn, &line, "ROUTINE", "Weekly schedule of patrols").await;
    let report = json!({"precedence": "PRIORITY", "form": adi_forms::schema::example("encounter-at-sea").unwrap()});
    let (status, body) =
        cn.request(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&report)).await.unwrap();
    assert_eq!(status, 201, "{body}");
    common::eventually(WAIT, "PH holds both", || {
        let ph = ph.clone();
        async move { (common::get_list(&ph, "/api/v1/inbox").await.len() >= 2).then_some(()) }
    })
    .await;
    ph.call(Method::POST, &format!("/api/v1/messages/{answered}/ack"), Some(&json!({}))).await.unwrap();

    let browser = Browser::start().await;
    let mut found = Vec::new();
    browser.go(&console).await;
    browser.find("form#sign-in").await;
    found.extend(violations(&browser, "the sign-in").await);

    browser.sign_in(&console, "watch-ph", PASSWORD).await;
    let flash = send(&cn, &line, "FLASH", "Aircraft closing on the frigate").await;
    browser.wait_text("#banner-text", "Aircraft closing on the frigate").await;
    browser.wait_text("#inbox", "Weekly schedule of patrols").await;
    found.extend(violations(&browser, "the watch with a FLASH ringing").await);

    browser.click("#inbox button.map-open").await;
    browser.until("return !document.getElementById('map-view').hidden;", "the map did not open").await;
    found.extend(violations(&browser, "a report's map").await);
    browser.click("#map-close").await;

    browser.type_into("#filters input[name=text]", "patrols").await;
    browser.click("#filters button[type=submit]").await;
    browser.wait_text("#search-count", "1 message found.").await;
    found.extend(violations(&browser, "a search's results").await);
    browser.click("#filters button[type=reset]").await;

    browser.click("#wall-toggle").await;
    browser.until("return !document.getElementById('wall-view').hidden;", "no wall display").await;
    browser.wait_text("#wall-lines", "1 urgent").await;
    found.extend(violations(&browser, "the wall display").await);
    browser.click("#wall-toggle").await;

    // The keyboard alone: Tab from the top of the page until the banner's Acknowledge has the
    // focus, then Enter.
    browser.script("document.activeElement.blur(); window.scrollTo(0, 0); return 0;").await;
    let mut reached = false;
    for _ in 0..40 {
        browser.press("Tab").await;
        if browser.script("return document.activeElement.id;").await == json!("banner-ack") {
            reached = true;
            break;
        }
    }
    assert!(reached, "Tab never reached the banner's Acknowledge");
    browser.press("Enter").await;
    common::eventually(WAIT, "the FLASH acknowledged from the keyboard", || {
        let (ph, flash) = (ph.clone(), flash.clone());
        async move {
            let m = ph.call(Method::GET, &format!("/api/v1/messages/{flash}"), None).await.ok()?;
            m["receipts"].as_array()?.iter().any(|r| r["member"] == "PH" && r["kind"] == "acknowledged").then_some(())
        }
    })
    .await;

    // Signed out with something urgent waiting: the page rings without showing it.
    browser.click("#sign-out").await;
    browser.find("form#sign-in").await;
    browser.sign_in(&console, "watch-ph", PASSWORD).await;
    let store = &*net.node("PH").state.store;
    adi_node::setup::set_password(store, "watch-ph", "the watch changed hands").unwrap();
    send(&cn, &line, "FLASH", "Second launch detected").await;
    browser.wait_text("#banner-text", "urgent message waits").await;
    found.extend(violations(&browser, "a signed-out page with urgent traffic waiting").await);

    assert!(found.is_empty(), "serious or critical accessibility violations:\n{}", found.join("\n"));
    browser.quit().await;
    net.stop_all().await;
}
