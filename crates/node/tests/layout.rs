//! The console's messaging layout, in a real headless Chromium (as `browser.rs`): the lines in a
//! sidebar with their members' names and flags and what waits on each; each message with its
//! author's name and its times in UTC and in the browser's zone, dated and named; search and
//! filters; a print view of a line; and a phone's screen, where nothing is wider than the screen.

#[allow(dead_code)]
#[path = "common/browser.rs"]
mod browser;
mod common;

use browser::Browser;
use common::{open_line, send, Net};
use serde_json::json;

const PASSWORD: &str = "the dog watch";

/// How many rows of `list` (`#inbox` or `#conversation`) the filters leave shown.
async fn shown_rows(browser: &Browser, list: &str) -> u64 {
    browser
        .script(&format!("return [...document.querySelectorAll('{list} tr')].filter((t) => !t.hidden).length;"))
        .await
        .as_u64()
        .unwrap()
}

/// Sets a filter field and lets the page hear it, as typing or choosing would.
async fn set_filter(browser: &Browser, name: &str, value: &str) {
    let js = format!(
        "const f = document.getElementById('filters').elements['{name}']; f.value = '{value}'; \
         f.dispatchEvent(new Event('input', {{bubbles: true}})); return 0;"
    );
    browser.script(&js).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_sit_in_a_sidebar_messages_are_named_and_dated_and_the_filters_search_what_is_shown() {
    let net = Net::start_with(&["PH", "CN", "VN"], |d| d.link_test_interval_s = 0).await;
    let (cn, vn) = (net.client("CN"), net.client("VN"));
    let with_cn = open_line(&cn, &["PH", "CN"], "ADMM-Plus").await;
    let with_vn = open_line(&vn, &["PH", "VN"], "ADMM-Plus").await;
    let store = &*net.node("PH").state.store;
    adi_node::setup::add_operator(store, "watch-ph", "duty").unwrap();
    adi_node::setup::set_password(store, "watch-ph", PASSWORD).unwrap();
    let console = format!("http://{}/console", net.node("PH").api_addr);
    send(&cn, &with_cn, "ROUTINE", "Port call of the training ship").await;
    send(&cn, &with_cn, "FLASH", "Collision risk at the shoal").await;
    send(&vn, &with_vn, "PRIORITY", "Search and rescue exercise dates").await;

    let browser = Browser::start().await;
    browser.sign_in(&console, "watch-ph", PASSWORD).await;
    browser.wait_text("#inbox", "Search and rescue exercise dates").await;
    browser.wait_text("#inbox", "Collision risk at the shoal").await;

    // The sidebar: a line per button, named by its other members with their flags, and the
    // count of what waits on each (red where something urgent does).
    browser.wait_text("#line-items", "Viet Nam (VN)").await;
    let items = browser.text("#line-items").await;
    assert!(items.contains("\u{1F1E8}\u{1F1F3} China (CN)"), "no flag and name for CN: {items}");
    assert_eq!(browser.count("#line-items button").await, 2);
    let counts = browser.script(
        "return [...document.querySelectorAll('#line-items button')].map((b) => [b.dataset.line, b.querySelector('.count') ? b.querySelector('.count').textContent : '', !!b.querySelector('.count.urgent')]);",
    )
    .await;
    assert!(counts.as_array().unwrap().contains(&json!([with_cn, "2", true])), "{counts}");
    assert!(counts.as_array().unwrap().contains(&json!([with_vn, "1", false])), "{counts}");

    // Choosing a line shows its messages under its name.
    browser.click(&format!("#line-items button[data-line='{with_vn}']")).await;
    browser.wait_text("#line-title", "Viet Nam (VN)").await;
    browser.wait_text("#conversation", "Search and rescue exercise dates").await;
    assert_eq!(
        browser.script(&format!("return document.querySelector(\"#line-items button[data-line='{with_vn}']\").getAttribute('aria-current');")).await,
        json!("true")
    );

    // Each message by its author's name, with its time in UTC and in the browser's zone, dated
    // and named.
    let row = browser.text("#conversation tr").await;
    assert!(row.contains("Viet Nam (VN)"), "{row}");
    let dated = regex_like_time(&row);
    assert!(dated, "no UTC and dated local time with its zone: {row}");

    // Search and filters.
    set_filter(&browser, "text", "shoal").await;
    browser
        .until(
            "return document.getElementById('filter-count').textContent.startsWith('1 of ');",
            "the search did not narrow the messages",
        )
        .await;
    assert_eq!(shown_rows(&browser, "#inbox").await, 1);
    assert!(browser.text("#inbox").await.contains("Collision risk at the shoal"));
    set_filter(&browser, "text", "").await;
    set_filter(&browser, "sender", "VN").await;
    browser
        .until(
            "return [...document.querySelectorAll('#inbox tr')].filter((t) => !t.hidden).length === 1;",
            "the member filter did not narrow the inbox",
        )
        .await;
    assert!(browser.text("#inbox").await.contains("Search and rescue"));
    set_filter(&browser, "sender", "").await;
    set_filter(&browser, "precedence", "ROUTINE").await;
    browser
        .until(
            "return [...document.querySelectorAll('#inbox tr')].filter((t) => !t.hidden).length === 1;",
            "the precedence filter did not narrow the inbox",
        )
        .await;
    set_filter(&browser, "since", "2099-01-01").await;
    assert_eq!(shown_rows(&browser, "#inbox").await, 0, "a date after every message leaves none");
    browser.click("#filters button[type=reset]").await;
    browser
        .until(
            "return [...document.querySelectorAll('#inbox tr')].filter((t) => !t.hidden).length === 3;",
            "Clear did not show every message again",
        )
        .await;
    // Unread: a message on a line that is not open counts there until the line is opened.
    assert_eq!(browser.count(&format!("#line-items button[data-line='{with_vn}'] .unread")).await, 0, "the open line");
    let unread = format!(
        "const u = document.querySelector(\"#line-items button[data-line='{with_cn}'] .unread\"); \
         return u ? Number(u.textContent) : 0;"
    );
    let before = browser.script(&unread).await.as_u64().unwrap();
    send(&cn, &with_cn, "ROUTINE", "Tide tables for the port call").await;
    let one_more = format!("return (() => {{ {unread} }})() === {};", before + 1);
    browser.until(&one_more, "the message did not count as unread on its line").await;
    assert_eq!(browser.count(&format!("#line-items button[data-line='{with_vn}'] .unread")).await, 0);
    browser.script("document.getElementById('line-list').scrollIntoView(); return 0;").await;
    browser.screenshot("console-lines-sidebar").await;
    browser.click(&format!("#line-items button[data-line='{with_cn}']")).await;
    browser.wait_text("#conversation", "Tide tables for the port call").await;
    browser.until("return !document.querySelector('#line-items .unread');", "opening the line left it unread").await;

    // Searching every message on the node: what this desk sent on another line, which the page
    // does not hold, is found by the node.
    send(&net.client("PH"), &with_vn, "ROUTINE", "Lighthouse outage notice").await;
    browser.type_into("#filters input[name=text]", "LIGHTHOUSE").await;
    browser.click("#filters button[type=submit]").await;
    browser.wait_text("#search-count", "1 message found.").await;
    let found = browser.text("#search-results").await;
    assert!(found.contains("Lighthouse outage notice") && found.contains("Viet Nam (VN)"), "{found}");
    assert!(browser.text("#filter-count").await.starts_with("0 of "), "the page itself holds the message");
    browser.screenshot("console-search").await;
    browser.click("#filters button[type=reset]").await;
    browser.until("return document.getElementById('search-view').hidden;", "Clear left the results").await;

    // The print view: the line's messages alone, nothing to press.
    browser.media(Some("print")).await;
    let on_paper = browser.script(
        "const shown = (id) => { const e = document.getElementById(id); return !!e && getComputedStyle(e).display !== 'none' && e.getClientRects().length > 0; }; \
         return {header: shown('banner') || getComputedStyle(document.querySelector('header')).display !== 'none', inbox: shown('inbox'), \
                 conversation: shown('conversation'), compose: shown('compose'), title: shown('line-title')};",
    )
    .await;
    assert_eq!(
        on_paper,
        json!({"header": false, "inbox": false, "conversation": true, "compose": false, "title": true})
    );
    browser.screenshot("console-print-view").await;
    browser.media(None).await;

    // A phone's screen: nothing wider than the screen, the banner on it.
    browser.viewport(390, 844).await;
    browser.until("return window.innerWidth <= 420;", "the window did not narrow").await;
    let fits = browser.script("return document.documentElement.scrollWidth <= window.innerWidth && document.querySelector('main').scrollWidth <= document.querySelector('main').clientWidth + 1;").await;
    if fits != json!(true) {
        let wide = browser.script("return [document.documentElement.scrollWidth, window.innerWidth, [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && e.getClientRects().length).slice(0, 12).map((e) => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))];").await;
        panic!("the page is wider than a phone's screen: {wide}");
    }
    let banner = browser.script("const r = document.getElementById('banner').getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight && r.right <= window.innerWidth + 1;").await;
    assert_eq!(banner, json!(true), "the banner is off a phone's screen");
    browser.screenshot("console-phone").await;
    browser.quit().await;
    net.stop_all().await;
}

/// Whether `text` holds a time as the console writes it: `YYYY-MM-DD hh:mm:ss UTC / ` and then a
/// local time whose date has the year and whose zone is named.
fn regex_like_time(text: &str) -> bool {
    let Some(at) = text.find(" UTC / ") else { return false };
    let before = &text[..at];
    let utc_ok = before.len() >= 19 && {
        let t = &before[before.len() - 19..];
        t.as_bytes()[4] == b'-' && t.as_bytes()[10] == b' ' && t.as_bytes()[13] == b':'
    };
    let local: String = text[at + 7..].chars().take(40).collect();
    let year = &before[before.len().saturating_sub(19)..before.len().saturating_sub(15)];
    utc_ok && local.contains(year) && (local.contains("UTC") || local.contains("GMT"))
}
