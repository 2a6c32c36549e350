//! A FLASH that cannot be missed, in a real headless Chromium (as `browser.rs`): the alarm's
//! volume is set and tried at sign-in and the tone repeats at that volume until the FLASH is
//! answered; the count shows in the tab's title and icon; a desktop notification, once allowed,
//! tells of each urgent message without its words; the wall display shows every line and link in
//! large type and is kept in the page's address.

#[allow(dead_code)]
#[path = "common/browser.rs"]
mod browser;
mod common;

use std::time::Duration;

use browser::Browser;
use common::{console_pair, send, Net};
use hyper::Method;
use serde_json::json;

const PASSWORD: &str = "the first watch";

/// PH's and CN's nodes with a line between them, link tests on or off, and an operator on PH's
/// console; returns the network, the line and the console's address.
async fn watched(link_tests: bool) -> (Net, String, String) {
    let discipline = |d: &mut adi_node::config::DisciplineSection| {
        if !link_tests {
            d.link_test_interval_s = 0;
        }
    };
    console_pair(discipline, |_| {}, PASSWORD).await
}

async fn tones(browser: &Browser) -> u64 {
    browser.script("return Number(document.body.dataset.tones || 0);").await.as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tone_is_set_and_tried_at_sign_in_and_repeats_at_that_volume_with_the_count_on_the_title_and_icon() {
    let (net, line, console) = watched(false).await;
    let browser = Browser::start().await;
    browser.go(&console).await;
    // Before the page is clicked the browser holds sound back, and the page says so.
    browser.until("return document.body.dataset.sound === 'blocked';", "the held-back tone is not told").await;
    assert!(browser.text("#sound-state").await.contains("Test sound"));

    // The sign-in step: the volume set, the tone tried.
    browser.script(
        "const v = document.getElementById('volume'); v.value = '30'; v.dispatchEvent(new Event('input')); return 0;",
    )
    .await;
    browser.click("#test-sound").await;
    browser.wait_text("#sound-state", "Tone played at 30%").await;
    assert_eq!(tones(&browser).await, 1);
    assert_eq!(browser.script("return document.body.dataset.sound;").await, json!("on"));
    browser.type_into("input[name=name]", "watch-ph").await;
    browser.type_into("input[name=password]", PASSWORD).await;
    browser.click("form#sign-in button").await;
    browser.wait_text("#who", "watch-ph").await;
    assert_eq!(browser.script("return document.getElementById('favicon').dataset.count;").await, json!("0"));

    // A FLASH rings, again and again, at that volume; the title and the icon count it.
    let flash = send(&net.client("CN"), &line, "FLASH", "Aircraft closing on the frigate").await;
    browser.wait_text("#banner-text", "Aircraft closing on the frigate").await;
    browser.until("return Number(document.body.dataset.tones) >= 3;", "the tone did not repeat").await;
    assert_eq!(browser.script("return document.body.dataset.toneVolume;").await, json!("30"));
    assert_eq!(browser.script("return document.title;").await, json!("(1) ADI console"));
    let icon = browser
        .script("const l = document.getElementById('favicon'); return [l.dataset.count, l.href.slice(0, 22)];")
        .await;
    assert_eq!(icon, json!(["1", "data:image/png;base64,"]), "the icon does not count the FLASH");
    browser.screenshot("console-flash-counted").await;

    // Answered, the tone stops and the count goes.
    browser.click("#banner-ack").await;
    browser.until("return document.getElementById('favicon').dataset.count === '0';", "the icon kept the count").await;
    assert_eq!(browser.script("return document.title;").await, json!("ADI console"));
    let rung = tones(&browser).await;
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    assert_eq!(tones(&browser).await, rung, "the tone went on after the FLASH was answered");
    let m = net.client("PH").call(Method::GET, &format!("/api/v1/messages/{flash}"), None).await.unwrap();
    assert!(
        m["receipts"].as_array().unwrap().iter().any(|r| r["member"] == "PH" && r["kind"] == "acknowledged"),
        "{m}"
    );

    // The volume is kept by the browser: a page opened again starts at it.
    browser.go(&console).await;
    browser.until("return document.getElementById('volume').value === '30';", "the volume was not kept").await;
    browser.quit().await;
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_desktop_notification_tells_of_each_urgent_message_once_without_its_words() {
    let (net, line, console) = watched(false).await;
    let browser = Browser::start().await;
    browser.sign_in(&console, "watch-ph", PASSWORD).await;
    assert_eq!(browser.text("#notify").await, "Allow desktop alerts");
    // The officer allows them (as the browser's own prompt would).
    browser.allow_notifications().await;
    browser.click("#notify").await;
    browser.wait_text("#notify", "Desktop alerts on").await;
    // What the page asks of the browser's notifications is recorded as it passes to them.
    browser.script(
        "window.shown = []; const Real = window.Notification; \
         window.Notification = class extends Real { constructor(title, o) { super(title, o); window.shown.push([title, o.body, o.tag]); } }; \
         return 0;",
    )
    .await;
    let routine = send(&net.client("CN"), &line, "ROUTINE", "Weekly schedule of patrols").await;
    let flash = send(&net.client("CN"), &line, "FLASH", "Missile launch detected").await;
    browser.wait_text("#banner-text", "Missile launch detected").await;
    browser.until("return window.shown.length >= 1;", "no notification of the FLASH").await;
    // A later refresh of the page does not tell it again.
    send(&net.client("CN"), &line, "ROUTINE", "Another routine").await;
    browser.wait_text("#inbox", "Another routine").await;
    let shown = browser.script("return window.shown;").await;
    let shown = shown.as_array().unwrap();
    assert_eq!(shown.len(), 1, "each urgent message is told once, and only urgent ones: {shown:?}");
    assert_eq!(shown[0][2], json!(flash));
    let told = shown[0].to_string();
    assert!(told.contains("FLASH from") && told.contains("CN"), "{told}");
    assert!(!told.contains("Missile"), "the notification carries the message's words: {told}");
    assert!(!told.contains(&routine));
    browser.quit().await;
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wall_display_shows_every_line_and_link_in_large_type_and_opens_again_on_it() {
    // Link tests on: the links have a state to show.
    let (net, line, console) = watched(true).await;
    let browser = Browser::start().await;
    browser.sign_in(&console, "watch-ph", PASSWORD).await;
    send(&net.client("CN"), &line, "ROUTINE", "Port call of the training ship").await;
    browser.wait_text("#inbox", "Port call of the training ship").await;
    browser.click("#wall-toggle").await;
    browser
        .until(
            "return !document.getElementById('wall-view').hidden && document.getElementById('watch').hidden;",
            "no wall display",
        )
        .await;
    assert_eq!(browser.script("return location.hash;").await, json!("#wall"));
    let size =
        browser.script("return parseFloat(getComputedStyle(document.getElementById('wall-lines')).fontSize);").await;
    assert!(size.as_f64().unwrap() >= 24.0, "the wall display's type is {size} px");
    browser.wait_text("#wall-lines", "Philippines").await;
    assert_eq!(browser.count("#wall-lines li").await, 1, "one tile per line");
    let tile = browser.text("#wall-lines li").await;
    assert!(tile.contains("1 to answer") && tile.contains("ROUTINE from CN"), "{tile}");
    browser.wait_text("#wall-links", "China (CN)").await;
    assert_eq!(browser.count("#wall-links li").await, 1, "one tile per link");

    // A FLASH: the banner over the wall display, and its line's tile marked urgent.
    send(&net.client("CN"), &line, "FLASH", "Vessel aground on the reef").await;
    browser.wait_text("#banner-text", "Vessel aground on the reef").await;
    browser
        .until("return !!document.querySelector('#wall-lines li.urgent');", "the line's tile is not marked urgent")
        .await;
    browser.wait_text("#wall-lines li", "1 urgent").await;
    browser.screenshot("console-wall-display").await;

    // Opened again, the page comes back on the wall display; Escape leaves it.
    browser.go(&format!("{console}#wall")).await;
    browser.until("return !document.getElementById('wall-view').hidden;", "the wall display was not kept").await;
    browser.press("Escape").await;
    browser
        .until(
            "return document.getElementById('wall-view').hidden && !document.getElementById('watch').hidden;",
            "Escape did not leave the wall display",
        )
        .await;
    assert_eq!(browser.script("return location.hash;").await, json!(""));
    browser.quit().await;
    net.stop_all().await;
}
