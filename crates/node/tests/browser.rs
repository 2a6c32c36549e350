//! The console in a real headless Chromium (Debian's `chromium`, driven through Playwright; see
//! `common/browser.rs`, `scripts/test` installs both): an operator signs in on PH's node, a FLASH
//! sent from CN's node rings on PH's page without a reload, and the operator acknowledges it there.
//! Screenshots are saved under `target/console-screenshots/`.

#[allow(dead_code)]
#[path = "common/browser.rs"]
mod browser;
mod common;

use std::time::{Duration, Instant};

use adi_node::client::Client;
use browser::{Browser, WAIT};
use common::{open_line, send, Net};
use hyper::Method;
use serde_json::{json, Value};

const PASSWORD: &str = "watch keeper of the night";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flash_rings_on_the_page_without_a_reload_and_is_acknowledged_there() {
    let net = Net::start_with(&["PH", "CN"], |d| d.link_test_interval_s = 0).await;
    let line = open_line(&net.client("CN"), &["PH", "CN"], "ADMM-Plus").await;
    let store = &*net.node("PH").state.store;
    adi_node::setup::add_operator(store, "watch-ph", "duty").unwrap();
    adi_node::setup::set_password(store, "watch-ph", PASSWORD).unwrap();
    let console = format!("http://{}/console", net.node("PH").api_addr);
    let cn_store = &*net.node("CN").state.store;
    adi_node::setup::add_operator(cn_store, "watch-cn", "duty").unwrap();
    adi_node::setup::set_password(cn_store, "watch-cn", PASSWORD).unwrap();
    let cn_console = format!("http://{}/console", net.node("CN").api_addr);

    let browser = Browser::start().await;
    browser.go(&console).await;
    // A wrong password is refused, with a clear message on the page.
    browser.type_into("input[name=name]", "watch-ph").await;
    browser.type_into("input[name=password]", "not the password").await;
    browser.click("form#sign-in button").await;
    browser.wait_text("#sign-in-error", "wrong name or password").await;
    // Signed in, the watch screen shows.
    browser.type_into("input[name=password]", PASSWORD).await;
    browser.click("form#sign-in button").await;
    browser.wait_text("#who", "watch-ph (duty)").await;

    // The signed-in page cannot be framed, not even by a page of its own origin: the frame's
    // load ends without the console in it (its Content-Security-Policy says frame-ancestors
    // 'none'), so no other page can lay its buttons under a visitor's clicks.
    let frame = "const f = document.createElement('iframe'); f.id = 'framed'; \
                 f.onload = () => { window.framedLoaded = true; }; f.src = '/console'; \
                 document.body.appendChild(f); return true;";
    browser.script(frame).await;
    browser.until("return window.framedLoaded === true;", "the frame never finished loading").await;
    let framed = "let d = null; try { d = document.getElementById('framed').contentDocument; } catch (e) {} \
                  return d === null ? 'blocked' : 'shown: ' + d.title;";
    let outcome = browser.script(framed).await;
    assert!(outcome.as_str().is_some_and(|o| !o.contains("ADI console")), "the console was framed: {outcome}");
    browser.script("document.getElementById('framed').remove(); return true;").await;

    // CN sends a FLASH: it rings on PH's page without a reload.
    let flash = send(&net.client("CN"), &line, "FLASH", "Vessels in close quarters").await;
    browser.wait_text("#banner-text", "FLASH from China (CN): Vessels in close quarters").await;
    browser.wait_text("#inbox", "Vessels in close quarters").await;
    browser.screenshot("console-watch-flash").await;

    // The operator acknowledges it in the page; CN's node holds the acknowledgement.
    browser.click("#banner-ack").await;
    let cn = net.client("CN");
    let deadline = Instant::now() + WAIT;
    loop {
        let m = cn.call(Method::GET, &format!("/api/v1/messages/{flash}"), None).await.unwrap();
        if m["recipients"][0]["state"] == "acknowledged" {
            break;
        }
        assert!(Instant::now() < deadline, "the acknowledgement did not reach CN: {m}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + WAIT;
    while browser.text("#banner").await.contains("FLASH from China (CN)") {
        assert!(Instant::now() < deadline, "the banner stayed after the acknowledgement");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.screenshot("console-watch-acknowledged").await;
    // CN's operator sees PH's acknowledgement on CN's own page.
    let at_cn = Browser::start().await;
    at_cn.sign_in(&cn_console, "watch-cn", PASSWORD).await;
    at_cn.wait_text("#conversation", "PH: acknowledged").await;
    at_cn.screenshot("console-sender-sees-acknowledgement").await;
    at_cn.quit().await;
    browser.quit().await;
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_catches_up_after_its_node_restarts_and_an_auditor_has_no_controls() {
    let mut net = Net::start_with(&["PH", "CN", "VN"], |d| d.link_test_interval_s = 1).await;
    let to_cn = open_line(&net.client("CN"), &["PH", "CN"], "ADMM-Plus").await;
    open_line(&net.client("PH"), &["PH", "VN"], "ADMM").await;
    let store = &*net.node("PH").state.store;
    adi_node::setup::add_operator(store, "audit-ph", "auditor").unwrap();
    adi_node::setup::set_password(store, "audit-ph", PASSWORD).unwrap();
    let console = format!("http://{}/console", net.node("PH").api_addr);

    let browser = Browser::start().await;
    browser.sign_in(&console, "audit-ph", PASSWORD).await;
    // The link matrix shows both direct lines, healthy once their tests come back.
    let deadline = Instant::now() + WAIT;
    while browser.count(".link.healthy[aria-label^='PH to']").await < 2 {
        assert!(Instant::now() < deadline, "the links never showed healthy: {}", browser.text("#links").await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    browser.screenshot("console-links").await;

    // A message that asks for acknowledgement: the auditor sees it and has nothing to press.
    send(&net.client("CN"), &to_cn, "IMMEDIATE", "Typhoon track update").await;
    browser.wait_text("#inbox", "Typhoon track update").await;
    assert_eq!(browser.count("#inbox button").await, 0, "an auditor's page has no acknowledge control");
    assert_eq!(browser.count("form#compose:not([hidden])").await, 0, "nor a compose form");
    // Even with the form forced into view, the node refuses an auditor's send, and the page says so.
    browser
        .script(
            "const f = document.getElementById('compose'); f.hidden = false; f.subject.value = 'auditor send'; \
             f.body.value = 'x'; f.requestSubmit(); return 1;",
        )
        .await;
    browser.wait_text("#action-error", "the auditor role may read but not send").await;
    assert!(common::get_list(&net.client("CN"), "/api/v1/inbox").await.iter().all(|m| m["subject"] != "auditor send"));

    // PH's node restarts while CN sends: the page reconnects by itself and shows what arrived.
    net.stop_code("PH").await;
    let queued = send(&net.client("CN"), &to_cn, "PRIORITY", "Sent while PH was down").await;
    net.start_code("PH").await;
    browser.wait_text("#inbox", "Sent while PH was down").await;
    assert!(!queued.is_empty());

    // VN's node goes silent: the missed link test rings, and the auditor still has no control.
    net.stop_code("VN").await;
    browser.wait_text("#banner-text", "A link does not answer its tests").await;
    assert_eq!(browser.attribute("#banner", "data-kind").await.as_deref(), Some("link_no_answer"));
    assert_eq!(browser.count("#banner-ack:not([hidden])").await, 0);
    browser.screenshot("console-alarm").await;
    browser.quit().await;
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_composes_and_proposes_from_the_page_and_an_ended_session_is_sent_to_sign_in() {
    let net = Net::start_with(&["PH", "CN"], |d| d.link_test_interval_s = 0).await;
    open_line(&net.client("PH"), &["PH", "CN"], "ADMM-Plus").await;
    let store = &*net.node("PH").state.store;
    adi_node::setup::add_operator(store, "watch-ph", "duty").unwrap();
    adi_node::setup::set_password(store, "watch-ph", PASSWORD).unwrap();
    let console = format!("http://{}/console", net.node("PH").api_addr);
    let browser = Browser::start().await;
    browser.sign_in(&console, "watch-ph", PASSWORD).await;

    // The word limit of urgent precedences shows as the operator types.
    browser.select("form#compose select[name=precedence]", "FLASH").await;
    let long = vec!["word"; 201].join(" ");
    browser.type_into("form#compose textarea[name=body]", &long).await;
    browser.wait_text("#words", "201 words (at most 200 for FLASH)").await;
    assert_eq!(browser.count("#words.over").await, 1);
    // Counted as the node counts them: words joined by zero-width spaces are words.
    let joined = vec!["word"; 201].join("\u{200b}");
    browser.type_into("form#compose textarea[name=body]", &joined).await;
    browser.wait_text("#words", "201 words (at most 200 for FLASH)").await;
    // Sent from the page, in Thai; the line view shows CN's node decrypted it.
    browser.type_into("form#compose textarea[name=body]", "ขอให้ทุกฝ่ายรักษาระยะห่าง").await;
    browser.type_into("form#compose input[name=subject]", "การเผชิญหน้าในทะเล").await;
    browser.click("form#compose button[type=submit]").await;
    // A FLASH goes only once confirmed.
    let asked = browser.answer_dialog(Some("")).await;
    assert!(asked.contains("Send this FLASH?"), "{asked}");
    browser.wait_text("#conversation", "CN: delivered (decrypted)").await;
    browser.wait_text("#conversation", "การเผชิญหน้าในทะเล").await;
    // A decision proposed from the page waits for CN.
    browser.type_into("form#propose textarea[name=text]", "Both sides keep 5 nautical miles apart.").await;
    browser.click("form#propose button").await;
    browser.wait_text("#decisions", "open: Both sides keep 5 nautical miles apart. (waiting for CN)").await;
    browser.screenshot("console-compose-and-decide").await;

    // A page that lost its CSRF token (a stale tab: its requests go out without it) is refused,
    // says so, and sends nothing.
    browser.drop_request_header("X-CSRF-Token").await;
    browser.type_into("form#compose input[name=subject]", "without the token").await;
    browser.type_into("form#compose textarea[name=body]", "should not be sent").await;
    browser.click("form#compose button[type=submit]").await;
    browser.wait_text("#action-error", "lacks this session's CSRF token").await;
    // The page gets its token back by reading its session again.
    browser.keep_request_headers().await;
    browser.go(&console).await;
    browser.wait_text("#who", "watch-ph").await;

    // The session ends behind the page (its operator is given a new password, which ends every
    // session of theirs; a page that holds its event stream open is otherwise kept signed in, see
    // `watch.rs`): the next action is refused, the page says so and returns to sign-in, and nothing
    // is sent.
    adi_node::setup::set_password(store, "watch-ph", "a new password for the next watch").unwrap();
    let before = common::get_list(&net.client("PH"), "/api/v1/lines").await.len();
    // The page's own refresh (on an event from the stream) may meet the expired session before
    // the operator acts, and take the page to sign-in first: either way it says so.
    let within = Duration::from_secs(5);
    let acted = async {
        browser.try_type_into("form#compose input[name=subject]", "after expiry", within).await?;
        browser.try_type_into("form#compose textarea[name=body]", "should not be sent", within).await?;
        browser.try_click("form#compose button[type=submit]", within).await
    };
    if let Err(e) = acted.await {
        assert_eq!(browser.count("#sign-in-view:not([hidden])").await, 1, "{e}");
    }
    browser.wait_text("#sign-in-error", "sign in again").await;
    assert_eq!(browser.count("#sign-in-view:not([hidden])").await, 1);
    let inbox_at_cn = common::get_list(&net.client("CN"), "/api/v1/inbox").await;
    let subjects: Vec<&str> = inbox_at_cn.iter().map(|m| m["subject"].as_str().unwrap_or_default()).collect();
    assert!(!subjects.contains(&"after expiry") && !subjects.contains(&"without the token"), "{subjects:?}");
    assert_eq!(common::get_list(&net.client("PH"), "/api/v1/lines").await.len(), before);
    browser.quit().await;
    net.stop_all().await;
}

/// The example encounter-at-sea report of `docs/examples`.
fn encounter_example() -> Value {
    adi_forms::schema::example("encounter-at-sea").unwrap()
}

/// A distance in nautical miles as the page writes it (`toFixed(2)`).
fn nm(v: &Value) -> String {
    format!("{:.2}", v.as_f64().unwrap())
}

impl Browser {
    /// The text content of every element matching `css` (SVG text included).
    async fn texts(&self, css: &str) -> Vec<String> {
        let script = "return [...document.querySelectorAll(arguments[0])].map((e) => e.textContent);";
        let v = self.script_with(script, &[json!(css)]).await;
        v.as_array().unwrap().iter().map(|t| t.as_str().unwrap_or_default().to_string()).collect()
    }

    /// The current value of the form control `css`.
    async fn value(&self, css: &str) -> String {
        let v = self.script_with("return document.querySelector(arguments[0]).value;", &[json!(css)]).await;
        v.as_str().unwrap_or_default().to_string()
    }

    /// Waits until at least `n` elements match `css`.
    async fn wait_count(&self, css: &str, n: usize) {
        let deadline = Instant::now() + WAIT;
        while self.count(css).await < n {
            assert!(Instant::now() < deadline, "fewer than {n} of '{css}'");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_received_encounter_report_shows_its_units_and_cpa_on_the_map() {
    let net = Net::start_with(&["PH", "CN"], |d| d.link_test_interval_s = 0).await;
    let line = open_line(&net.client("CN"), &["PH", "CN"], "ADMM-Plus").await;
    let store = &*net.node("PH").state.store;
    adi_node::setup::add_operator(store, "watch-ph", "duty").unwrap();
    adi_node::setup::set_password(store, "watch-ph", PASSWORD).unwrap();
    let console = format!("http://{}/console", net.node("PH").api_addr);

    // CN's node sends the example encounter report to PH.
    let example = encounter_example();
    let body = json!({"precedence": "IMMEDIATE", "form": example, "ewg": "maritime-security"});
    let sent =
        net.client("CN").call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&body)).await.unwrap();
    let id = sent["id"].as_str().unwrap().to_string();
    let ph = net.client("PH");
    let received = common::eventually(WAIT, "the report at PH", || {
        let (ph, id) = (ph.clone(), id.clone());
        async move { ph.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.ok() }
    })
    .await;
    let approach = &received["approaches"][0]["approach"];
    let cpa = nm(&approach["cpa_nm"]);

    // PH's operator sees it in the inbox, with its kind and working group, and opens its map.
    let browser = Browser::start().await;
    browser.sign_in(&console, "watch-ph", PASSWORD).await;
    browser.wait_text("#inbox", "encounter-at-sea").await;
    assert!(browser.text("#inbox").await.contains("maritime-security"));
    browser.click("#inbox button.map-open").await;
    browser.wait_text("#map-caption", "Observed closest approach 0.8 nm").await;
    let units = browser.texts("#map .unit text").await;
    for name in ["BRP Jose Rizal", "Harbour Patrol 21"] {
        assert!(units.iter().any(|t| t.contains(name)), "{name} is not labelled on the map: {units:?}");
    }
    let cpas = browser.texts("#map .cpa text").await;
    assert!(
        cpas.iter()
            .any(|t| t.contains(&format!("CPA {cpa} nm")) && t.contains(approach["situation"].as_str().unwrap())),
        "the map does not show the CPA of {cpa} nm the node computed: {cpas:?}"
    );
    assert_eq!(browser.count("#map .cpa line").await, 1, "the two points of closest approach are joined");
    assert!(browser.count("#map path.land").await >= 1, "the basemap is drawn");
    browser.screenshot("console-encounter-map").await;

    // A template starts a report from the example of its kind, for the officer to edit.
    browser.select("#compose-template", "encounter-at-sea#0").await;
    let started = browser.value("#compose-form").await;
    let template: Value = serde_json::from_str(&started).expect("the template is JSON");
    assert_eq!(template, encounter_example(), "the template is the kind's example");

    // The same report field by field: an input changed writes the JSON, and a refusal marks the
    // input of the field it names.
    browser.click("#report-fields-box summary").await;
    let course = "#report-fields [data-path='other_units[0].course_deg']";
    assert_eq!(browser.value(course).await, "270");
    browser.type_into(course, "370").await;
    let written: Value = serde_json::from_str(&browser.value("#compose-form").await).unwrap();
    assert_eq!(written["other_units"][0]["course_deg"], 370);
    browser.click("form#compose button[type=submit]").await;
    browser.wait_text("#compose-error", "form.other_units[0].course_deg").await;
    assert_eq!(browser.attribute(course, "aria-invalid").await.as_deref(), Some("true"));
    browser.type_into("#report-fields [data-path='narrative']", "Contact held at 10 nm.").await;
    let written: Value = serde_json::from_str(&browser.value("#compose-form").await).unwrap();
    assert_eq!(written["narrative"], "Contact held at 10 nm.");
    browser.screenshot("console-report-fields").await;

    // The operator writes a report: a latitude off the globe is refused, naming the field.
    let mut report = encounter_example();
    report.as_object_mut().unwrap().remove("situation");
    report["other_units"][0]["position"]["lat"] = json!(91);
    browser.type_into("#compose-form", &report.to_string()).await;
    browser.click("form#compose button[type=submit]").await;
    browser.wait_text("#compose-error", "form.other_units[0].position.lat").await;

    // The node suggests the COLREGs situation; it goes into the report only when confirmed.
    report["other_units"][0]["position"]["lat"] = json!(14.6);
    browser.type_into("#compose-form", &report.to_string()).await;
    let track =
        |u: &Value| json!({"position": u["position"], "course_deg": u["course_deg"], "speed_kn": u["speed_kn"]});
    let cpa_req = json!({"own": track(&report["reporting_unit"]), "other": track(&report["other_units"][0])});
    let expected = ph.call(Method::POST, "/api/v1/cpa", Some(&cpa_req)).await.unwrap();
    let situation = expected["approach"]["situation"].as_str().unwrap().to_string();
    browser.click("#suggest-situation").await;
    let shown = browser.wait_text("#suggestion", &format!("CPA {} nm", nm(&expected["approach"]["cpa_nm"]))).await;
    assert!(shown.starts_with(&situation), "{shown}");
    assert!(!browser.value("#compose-form").await.contains("situation"), "a suggestion is not written in unasked");
    browser.click("#confirm-situation").await;
    let confirmed = browser.value("#compose-form").await;
    assert!(confirmed.contains(&format!("\"situation\": \"{situation}\"")), "{confirmed}");
    browser.click("form#compose button[type=submit]").await;
    let cn = net.client("CN");
    common::eventually(WAIT, "PH's report at CN with the confirmed situation", || {
        let (cn, situation) = (cn.clone(), situation.clone());
        async move {
            let inbox = common::get_list(&cn, "/api/v1/inbox").await;
            inbox.iter().any(|m| m["sender"] == "PH" && m["form"]["situation"] == situation.as_str()).then_some(())
        }
    })
    .await;

    // The line's map shows both reports.
    browser.wait_count("#conversation button.map-open", 2).await;
    browser.click("#line-map").await;
    browser.wait_text("#map-caption", "2 reports").await;
    assert_eq!(browser.count("#map .cpa").await, 2);
    browser.screenshot("console-line-map").await;

    // A call requested by CN is answered from PH's page: one button accepts one proposed time.
    let request = json!({"precedence": "PRIORITY", "form": {"kind": "call-request", "v": 1,
        "subject": "Deconfliction of the two units' patrols", "proposed_utc": ["2026-12-01T08:00:00Z", "2026-12-01T10:00Z"]}});
    let cn_request = cn.call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&request)).await.unwrap();
    browser.wait_text("#conversation", "Not answered yet").await;
    // Decline, then Cancel on its prompt: no signed decline goes.
    browser.click("#conversation .call button:last-of-type").await;
    let asked = browser.answer_dialog(None).await;
    assert!(asked.contains("Why decline?"), "{asked}");
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let answers = common::get_list(&net.client("PH"), &format!("/api/v1/lines/{line}/messages")).await;
    assert!(
        !answers.iter().any(|m| m["form"]["kind"] == "call-answer"),
        "Cancel on the decline prompt sent an answer: {answers:?}"
    );
    assert_eq!(browser.count("#conversation button.call-accept").await, 2, "the request still waits for its answer");
    browser.click("#conversation button.call-accept[data-time='2026-12-01T10:00Z']").await;
    browser.wait_text("#conversation", "PH: accept 2026-12-01T10:00Z").await;
    let request_id = cn_request["id"].as_str().unwrap().to_string();
    common::eventually(WAIT, "PH's acceptance at CN", || {
        let (cn, request_id) = (cn.clone(), request_id.clone());
        async move {
            let inbox = common::get_list(&cn, "/api/v1/inbox").await;
            inbox
                .iter()
                .any(|m| {
                    m["form"]["kind"] == "call-answer"
                        && m["form"]["request"] == request_id.as_str()
                        && m["form"]["answer"] == "accept"
                        && m["form"]["time_utc"] == "2026-12-01T10:00Z"
                })
                .then_some(())
        }
    })
    .await;
    assert_eq!(
        browser.count("#conversation button.call-accept").await,
        0,
        "an answered request offers no more answers"
    );
    browser.quit().await;
    net.stop_all().await;
}

impl Browser {
    /// Waits until exactly `n` elements match `css`.
    async fn wait_exactly(&self, css: &str, n: usize) {
        let deadline = Instant::now() + WAIT;
        loop {
            let got = self.count(css).await;
            if got == n {
                return;
            }
            assert!(Instant::now() < deadline, "{got} of '{css}', not {n}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_longer_than_its_page_shows_a_more_button_that_adds_the_next_page() {
    let mut net = Net::init_with(&["PH", "CN"], |d| d.link_test_interval_s = 0);
    // Pages of two messages and two alarms at PH.
    common::set_limits(&net, "PH", |l| {
        l.messages_page_len = Some(2);
        l.alarms_page_len = Some(2);
    });
    for code in ["PH", "CN"] {
        net.start_code(code).await;
    }
    let cn = net.client("CN");
    let line = open_line(&cn, &["PH", "CN"], "ADMM-Plus").await;
    // Answered at PH: what waits for an answer is all shown whatever the page, and these are not.
    for n in 0..5 {
        let id = send(&cn, &line, "ROUTINE", &format!("Routine report {n}")).await;
        common::wait_delivered(&cn, &id, WAIT).await;
        net.client("PH").call(Method::POST, &format!("/api/v1/messages/{id}/ack"), Some(&json!({}))).await.unwrap();
    }
    let store = &*net.node("PH").state.store;
    adi_node::setup::add_operator(store, "watch-ph", "duty").unwrap();
    adi_node::setup::set_password(store, "watch-ph", PASSWORD).unwrap();
    let console = format!("http://{}/console", net.node("PH").api_addr);
    let browser = Browser::start().await;
    browser.sign_in(&console, "watch-ph", PASSWORD).await;

    // The inbox and the line show their first page, and a button for more.
    for (rows, button) in [("#inbox tr", "#inbox-more"), ("#conversation tr", "#line-more")] {
        browser.wait_exactly(rows, 2).await;
        browser.wait_exactly(&format!("{button}:not([hidden])"), 1).await;
    }
    assert_eq!(browser.count("#alarms-more:not([hidden])").await, 0, "no alarms, no button");
    browser.screenshot("console-more-button").await;
    // Each press adds the next page; at the end the button goes.
    for (rows, button) in [("#inbox tr", "#inbox-more"), ("#conversation tr", "#line-more")] {
        browser.click(button).await;
        browser.wait_exactly(rows, 4).await;
        browser.click(button).await;
        browser.wait_exactly(rows, 5).await;
        browser.wait_exactly(&format!("{button}:not([hidden])"), 0).await;
    }
    let inbox = browser.text("#inbox").await;
    for n in 0..5 {
        assert!(inbox.contains(&format!("Routine report {n}")), "{inbox}");
    }
    // A new message re-renders the page: the pages the operator opened stay open.
    let id = send(&cn, &line, "ROUTINE", "Routine report 5").await;
    common::wait_delivered(&cn, &id, WAIT).await;
    browser.wait_text("#inbox", "Routine report 5").await;
    browser.wait_exactly("#inbox tr", 6).await;
    browser.quit().await;
    net.stop_all().await;
}

impl Browser {
    /// Scrolls the page to the element `css`, for a screenshot of it.
    async fn scroll_to(&self, css: &str) {
        self.script_with("document.querySelector(arguments[0]).scrollIntoView(); return 1;", &[json!(css)]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_signs_a_pending_roster_amendment_from_the_page_and_a_duty_officer_only_sees_it() {
    let net = Net::start(&["PH", "VN", "CN"]).await;
    let store = &*net.node("PH").state.store;
    for (name, role) in [("admin-ph", "admin"), ("watch-ph", "duty")] {
        adi_node::setup::add_operator_for(store, name, role, None).unwrap();
        adi_node::setup::set_password(store, name, PASSWORD).unwrap();
    }
    let vn_store = &*net.node("VN").state.store;
    let vn_token = adi_node::setup::add_operator_for(vn_store, "admin-vn", "admin", None).unwrap();
    adi_node::setup::set_password(vn_store, "admin-vn", PASSWORD).unwrap();
    let vn_url = &net.state.members[net.index("VN")].api_url;
    let vn_admin = Client::new(vn_url, Some(vn_token), None).unwrap();
    let console = format!("http://{}/console", net.node("PH").api_addr);

    // PH's duty officer opens the console: the roster in force, version 1, with nothing pending.
    let browser = Browser::start().await;
    browser.sign_in(&console, "watch-ph", PASSWORD).await;
    browser.wait_text("#roster-number", "1").await;
    browser.wait_text("#proposals-none", "No amendment is pending").await;
    let roster = net.client("PH").call(Method::GET, "/api/v1/roster", None).await.unwrap();
    assert_eq!(browser.text("#roster-first-hash").await, roster["first_hash"].as_str().unwrap());
    assert_eq!(browser.text("#roster-hash").await, roster["hash"].as_str().unwrap());
    let members = browser.text("#roster-members").await;
    for code in ["PH", "VN", "CN"] {
        assert!(members.contains(code), "{code} is not listed: {members}");
    }
    assert_eq!(browser.count("#roster-members .suspended").await, 0, "no one is suspended yet: {members}");

    // VN's administrator proposes to suspend CN; PH's page shows it by itself, with VN's
    // signature and PH's missing one, and gives a duty officer nothing to sign with.
    let mut file = vn_admin.call(Method::GET, "/api/v1/roster", None).await.unwrap()["file"].clone();
    file["suspended"] = json!(["CN"]);
    let proposed =
        vn_admin.call(Method::POST, "/api/v1/roster/proposals", Some(&json!({"roster": file}))).await.unwrap();
    assert_eq!(proposed["state"], "proposed", "{proposed}");
    let hash = proposed["proposal"]["hash"].as_str().unwrap().to_string();
    let row = format!("#proposals tr[data-hash='{hash}']");
    browser.wait_text("#proposals", "suspends CN").await;
    let cells = browser.texts(&format!("{row} td")).await;
    assert_eq!(cells.len(), 5, "a duty officer's row has no action column: {cells:?}");
    assert_eq!(cells[0], "2", "{cells:?}");
    assert_eq!(cells[2], "suspends CN", "{cells:?}");
    assert!(cells[3].contains("VN"), "VN signed it: {cells:?}");
    assert!(cells[4].contains("PH"), "it lacks PH's signature: {cells:?}");
    assert_eq!(browser.attribute(&format!("{row} code"), "title").await.as_deref(), Some(hash.as_str()));
    assert_eq!(browser.count("#proposals button").await, 0, "a duty officer has no Sign button");
    assert_eq!(browser.count("#proposals-action:not([hidden])").await, 0);
    browser.scroll_to("#roster").await;
    browser.screenshot("console-roster").await;

    // PH's administrator signs it from the page, confirming what is signed.
    browser.click("#sign-out").await;
    browser.wait_exactly("#sign-in-view:not([hidden])", 1).await;
    browser.sign_in(&console, "admin-ph", PASSWORD).await;
    let sign = format!("{row} button.roster-sign");
    browser.wait_exactly(&sign, 1).await;
    assert_eq!(browser.attribute(&sign, "aria-label").await.as_deref(), Some("Sign version 2 (suspends CN)"));
    browser.scroll_to("#roster").await;
    browser.screenshot("console-roster-admin").await;
    browser.click(&sign).await;
    let asked = browser.answer_dialog(Some("")).await;
    assert!(asked.contains("version 2") && asked.contains("suspends CN"), "{asked}");
    browser.wait_text("#roster-outcome", "version 2 has every signature it needs and is now in force").await;
    browser.wait_text("#roster-number", "2").await;
    browser.wait_exactly("#roster-members tr[data-member='CN'] .tag.suspended", 1).await;
    assert_eq!(browser.text("#roster-members tr[data-member='CN'] td:last-child").await, "suspended");
    browser.wait_exactly("#proposals tr", 0).await;
    assert_eq!(browser.count("#proposals-none:not([hidden])").await, 1);
    browser.scroll_to("#roster").await;
    browser.screenshot("console-roster-signed").await;
    // The page showed what the node holds: version 2 in force at PH, and at VN too.
    for at in [net.client("PH"), vn_admin] {
        common::eventually(WAIT, "version 2 in force", || {
            let at = at.clone();
            async move { (at.call(Method::GET, "/api/v1/roster", None).await.ok()?["number"] == 2).then_some(()) }
        })
        .await;
    }
    browser.quit().await;
    net.stop_all().await;
}

impl Browser {
    /// The values of the elements matching `css` (a select's options), sorted.
    async fn values(&self, css: &str) -> Vec<String> {
        let v = self
            .script_with("return [...document.querySelectorAll(arguments[0])].map((e) => e.value);", &[json!(css)])
            .await;
        let mut values: Vec<String> =
            v.as_array().unwrap().iter().map(|t| t.as_str().unwrap_or_default().to_string()).collect();
        values.sort();
        values
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_proposes_an_amendment_from_the_page_and_a_bad_card_is_refused_there() {
    let net = Net::start(&["PH", "VN", "CN"]).await;
    let store = &*net.node("PH").state.store;
    for (name, role) in [("admin-ph", "admin"), ("watch-ph", "duty")] {
        adi_node::setup::add_operator_for(store, name, role, None).unwrap();
        adi_node::setup::set_password(store, name, PASSWORD).unwrap();
    }
    let vn_token = adi_node::setup::add_operator_for(&*net.node("VN").state.store, "watch-vn", "duty", None).unwrap();
    let vn = Client::new(&net.state.members[net.index("VN")].api_url, Some(vn_token), None).unwrap();
    let ph = net.client("PH");
    let console = format!("http://{}/console", net.node("PH").api_addr);

    // PH's administrator has the form: a suspension offers the members in good standing but PH
    // itself, a reinstatement no one (no one is suspended), a removal every member but PH.
    let browser = Browser::start().await;
    browser.sign_in(&console, "admin-ph", PASSWORD).await;
    browser.wait_text("#roster-number", "1").await;
    browser.wait_exactly("#roster-propose:not([hidden])", 1).await;
    assert!(browser.visible("#roster-propose").await, "an administrator sees the form");
    browser.wait_exactly("#amend-member option", 2).await;
    assert_eq!(browser.values("#amend-member option").await, ["CN", "VN"], "suspend: everyone in good standing but PH");
    browser.select("#amend-kind", "reinstate").await;
    browser.wait_exactly("#amend-member option[value='']", 1).await;
    assert_eq!(browser.texts("#amend-member option").await, ["no member is suspended"]);
    browser.select("#amend-kind", "remove").await;
    browser.wait_exactly("#amend-member option", 2).await;
    assert_eq!(browser.values("#amend-member option").await, ["CN", "VN"], "remove: everyone but PH");

    // A card that is not one, and a card of a member already listed, are refused on the page:
    // no confirmation is asked and nothing reaches the node.
    browser.select("#amend-kind", "admit").await;
    assert!(browser.visible("#amend-card").await, "admitting asks for a card");
    assert!(!browser.visible("#amend-member").await, "admitting names no listed member");
    browser.type_into("#amend-card", r#"{"version":1}"#).await;
    browser.click("#amend-submit").await;
    browser.wait_text("#roster-propose-error", "The card has no member").await;
    assert_eq!(browser.attribute("#amend-card", "aria-invalid").await.as_deref(), Some("true"));
    let roster = ph.call(Method::GET, "/api/v1/roster", None).await.unwrap();
    let vn_entry = roster["file"]["members"].as_array().unwrap().iter().find(|m| m["code"] == "VN").unwrap().clone();
    browser.type_into("#amend-card", &json!({"version": 1, "member": vn_entry}).to_string()).await;
    browser.click("#amend-submit").await;
    browser.wait_text("#roster-propose-error", "VN is already a member of the roster").await;
    browser.scroll_to("#roster-propose").await;
    browser.screenshot("console-roster-propose-bad-card").await;
    assert!(!browser.dialog_open().await, "nothing was put to the administrator");
    assert_eq!(ph.call(Method::GET, "/api/v1/roster/proposals", None).await.unwrap(), json!([]), "nothing was sent");

    // The administrator proposes to suspend CN, and confirms what the proposal does.
    browser.select("#amend-kind", "suspend").await;
    browser.wait_exactly("#amend-member option[value='CN']", 1).await;
    browser.select("#amend-member", "CN").await;
    browser.click("#amend-submit").await;
    let asked = browser.answer_dialog(Some("")).await;
    assert!(asked.contains("version 2") && asked.contains("suspends CN"), "{asked}");
    browser.wait_text("#roster-outcome", "Proposed: version 2 (suspends CN)").await;
    assert_eq!(browser.text("#roster-propose-error").await, "");
    // It is pending on the page, signed by PH, lacking VN.
    browser.wait_exactly("#proposals tr", 1).await;
    let cells = browser.texts("#proposals tr td").await;
    assert_eq!(cells[0], "2", "{cells:?}");
    assert_eq!(cells[2], "suspends CN", "{cells:?}");
    assert!(cells[3].contains("PH"), "PH signed it in proposing: {cells:?}");
    assert!(cells[4].contains("VN"), "it lacks VN's signature: {cells:?}");
    assert_eq!(cells[5], "signed here", "{cells:?}");
    assert_eq!(browser.count("#proposals-none:not([hidden])").await, 0);
    browser.scroll_to("#roster").await;
    browser.screenshot("console-roster-proposed").await;
    // The node holds it, and it reached VN's node with PH's signature.
    let here = ph.call(Method::GET, "/api/v1/roster/proposals", None).await.unwrap();
    assert_eq!(here.as_array().unwrap().len(), 1, "{here}");
    let hash = here[0]["hash"].as_str().unwrap().to_string();
    assert_eq!(browser.count(&format!("#proposals tr[data-hash='{hash}']")).await, 1);
    let at_vn = common::eventually(WAIT, "the proposal at VN's node", || {
        let (vn, hash) = (vn.clone(), hash.clone());
        async move {
            let list = vn.call(Method::GET, "/api/v1/roster/proposals", None).await.ok()?;
            list.as_array()?.iter().find(|p| p["hash"] == hash.as_str()).cloned()
        }
    })
    .await;
    assert_eq!(at_vn["changes"], json!(["suspends CN"]), "{at_vn}");
    assert_eq!(at_vn["signed_by"], json!(["PH"]), "{at_vn}");
    assert_eq!(at_vn["signed_here"], false, "{at_vn}");

    // A duty officer sees the proposal, and no form to propose one.
    browser.click("#sign-out").await;
    browser.wait_exactly("#sign-in-view:not([hidden])", 1).await;
    browser.sign_in(&console, "watch-ph", PASSWORD).await;
    browser.wait_text("#proposals", "suspends CN").await;
    assert!(!browser.visible("#roster-propose").await, "a duty officer has no form to propose with");
    assert_eq!(browser.count("#roster-propose:not([hidden])").await, 0);
    assert_eq!(browser.count("#amend-member option").await, 0, "the administrator's choices are gone");
    browser.quit().await;
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_rotates_this_members_keys_from_the_page_and_sees_whom_the_node_waits_for() {
    let mut net = Net::start(&["PH", "VN", "CN"]).await;
    let store = &*net.node("PH").state.store;
    for (name, role) in [("admin-ph", "admin"), ("watch-ph", "duty")] {
        adi_node::setup::add_operator_for(store, name, role, None).unwrap();
        adi_node::setup::set_password(store, name, PASSWORD).unwrap();
    }
    let console = format!("http://{}/console", net.node("PH").api_addr);
    // Viet Nam's node is down: the Philippines' node cannot move to its new keys yet.
    net.stop_code("VN").await;

    // A duty officer is offered no rotation.
    let browser = Browser::start().await;
    browser.sign_in(&console, "watch-ph", PASSWORD).await;
    browser.wait_text("#roster-number", "1").await;
    assert_eq!(browser.count("#roster-rotate-box:not([hidden])").await, 0, "a duty officer may not rotate keys");
    browser.click("#sign-out").await;
    browser.wait_exactly("#sign-in-view:not([hidden])", 1).await;

    // The administrator rotates, confirming it; the page shows the version in force and whom the
    // node waits for.
    browser.sign_in(&console, "admin-ph", PASSWORD).await;
    browser.wait_exactly("#roster-rotate-box:not([hidden])", 1).await;
    browser.click("#roster-rotate").await;
    let asked = browser.answer_dialog(Some("")).await;
    assert!(asked.contains("Rotate this member's signing and TLS keys"), "{asked}");
    browser.wait_text("#roster-outcome", "version 2 is in force").await;
    browser.wait_text("#roster-number", "2").await;
    browser.wait_text("#roster-rotation", "still waiting for: VN").await;
    assert_eq!(browser.count("#roster-rotate-box:not([hidden])").await, 0, "a second rotation is offered meanwhile");
    browser.scroll_to("#roster").await;
    browser.screenshot("console-roster-rotation").await;

    // Viet Nam's node comes back; the node moves, and the page read again says nothing is under way.
    net.start_code("VN").await;
    let ph = net.client("PH");
    common::eventually(WAIT, "the Philippines' node to move to its new keys", || {
        let ph = ph.clone();
        async move { ph.call(Method::GET, "/api/v1/roster", None).await.ok()?["rotation"].is_null().then_some(()) }
    })
    .await;
    browser.go(&console).await;
    browser.wait_text("#roster-number", "2").await;
    browser.wait_exactly("#roster-rotate-box:not([hidden])", 1).await;
    assert_eq!(browser.count("#roster-rotation:not([hidden])").await, 0);
    browser.quit().await;
    net.stop_all().await;
}
