//! The operations report over a run with a cut link and a late acknowledgement: both are in it,
//! as JSON and on its HTML page, which Chromium renders with its style under the node's policy
//! (its screenshot is `docs/screenshots/console-report.png`).

#[allow(dead_code)]
#[path = "common/browser.rs"]
mod browser;
mod common;

use std::time::Duration;

use adi_wire::files::DeadlinesFile;
use common::{eventually, get_list, open_line, send, wait_delivered, Net};
use hyper::{header, Method, StatusCode};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(40);
const PASSWORD: &str = "the report of the watch";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_shows_a_cut_link_and_a_late_acknowledgement() {
    let started = adi_node::clock::wall_ms();
    let mut net = Net::init_with(&["PH", "CN", "VN"], |d| {
        d.link_test_interval_s = 1;
        d.deadlines = Some(DeadlinesFile { flash_s: 2, immediate_s: 60, priority_s: 600, routine_s: 3_600 });
    });
    for code in ["PH", "CN", "VN"] {
        net.start_code(code).await;
    }
    let (ph, cn) = (net.client("PH"), net.client("CN"));
    let to_cn = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let _to_vn = open_line(&ph, &["PH", "VN"], "ADMM-Plus").await;
    let answered_tests = |peer: &'static str| {
        let ph = ph.clone();
        async move {
            let l = get_list(&ph, "/api/v1/links").await.into_iter().find(|l| l["member"] == peer)?;
            (l["state"] == "healthy").then_some(l)
        }
    };
    eventually(WAIT, "VN's link answers its tests", || answered_tests("VN")).await;

    // The link to VN is cut (its node stops) until the alarm is raised, then healed.
    net.stop_code("VN").await;
    let alarm_on_vn = |open: bool| {
        let ph = ph.clone();
        async move {
            let alarms = get_list(&ph, "/api/v1/alarms?all=true").await;
            alarms
                .into_iter()
                .find(|a| a["kind"] == "link_no_answer" && a["member"] == "VN" && a["cleared_ms"].is_null() == open)
        }
    };
    eventually(WAIT, "the link_no_answer alarm about VN", || alarm_on_vn(true)).await;
    net.start_code("VN").await;
    eventually(WAIT, "the alarm about VN cleared", || alarm_on_vn(false)).await;

    // A FLASH acknowledged after its 2 s deadline, and an IMMEDIATE acknowledged at once.
    let late = send(&ph, &to_cn, "FLASH", "Unsafe manoeuvre near the shoal").await;
    let prompt = send(&ph, &to_cn, "IMMEDIATE", "Request for a call").await;
    wait_delivered(&ph, &late, WAIT).await;
    wait_delivered(&ph, &prompt, WAIT).await;
    cn.call(Method::POST, &format!("/api/v1/messages/{prompt}/ack"), Some(&json!({}))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    cn.call(Method::POST, &format!("/api/v1/messages/{late}/ack"), Some(&json!({}))).await.unwrap();
    for id in [&late, &prompt] {
        eventually(WAIT, "PH knows of the acknowledgement", || {
            let (ph, id) = (ph.clone(), id.clone());
            async move {
                let m = ph.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.ok()?;
                (m["recipients"][0]["state"] == "acknowledged").then_some(())
            }
        })
        .await;
    }

    // The report as JSON.
    let window = format!("from_ms={}", started - 60_000);
    let r = ph.call(Method::GET, &format!("/api/v1/report?{window}"), None).await.unwrap();
    let link = |peer: &str| r["links"].as_array().unwrap().iter().find(|l| l["peer"] == peer).cloned().unwrap();
    let vn = link("VN");
    let outage = &vn["outages"][0];
    assert!(outage["start_ms"].as_u64().unwrap() >= started, "{vn}");
    assert!(outage["end_ms"].as_u64().unwrap() > outage["start_ms"].as_u64().unwrap(), "the outage ended: {vn}");
    assert!(vn["availability"].as_f64().unwrap() < 1.0, "{vn}");
    assert!(vn["tests"].as_u64().unwrap() > vn["answered"].as_u64().unwrap(), "{vn}");
    let cn_link = link("CN");
    assert!(
        cn_link["answered"].as_u64().unwrap() >= 2 && cn_link["round_trips"].as_array().unwrap().len() >= 2,
        "{cn_link}"
    );
    let stats = |precedence: &str| -> Value {
        r["answers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["precedence"] == precedence && s["member"] == "")
            .cloned()
            .unwrap()
    };
    let flash = stats("FLASH");
    assert_eq!(
        (flash["asked"].as_u64(), flash["acknowledged"].as_u64(), flash["late"].as_u64()),
        (Some(1), Some(1), Some(1)),
        "{flash}"
    );
    assert!(flash["times_ms"][0].as_u64().unwrap() >= 2_000, "{flash}");
    let immediate = stats("IMMEDIATE");
    assert_eq!((immediate["acknowledged"].as_u64(), immediate["late"].as_u64()), (Some(1), Some(0)), "{immediate}");
    assert!(r["alarms"].as_array().unwrap().iter().any(|a| a["kind"] == "link_no_answer" && a["member"] == "VN"));
    let sent: u64 = r["traffic"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["direction"] == "sent")
        .map(|t| t["count"].as_u64().unwrap())
        .sum();
    assert_eq!(sent, 2, "{}", r["traffic"]);

    // Bad windows and forms are refused.
    for (query, code) in [
        ("from_ms=10&to_ms=10", "bad_range"),
        ("from_ms=0&to_ms=999999999999999", "bad_range"),
        ("format=pdf", "bad_format"),
    ] {
        let (status, v) = ph.request(Method::GET, &format!("/api/v1/report?{query}"), None).await.unwrap();
        assert_eq!((status, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{query}: {v}");
    }

    // The page: a self-contained document, no script, its style allowed by hash alone.
    let (status, headers, body) =
        ph.request_full(Method::GET, &format!("/api/v1/report?{window}&format=html"), None).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_string();
    assert!(policy.starts_with("default-src 'none'; style-src 'sha256-"), "{policy}");
    let page = String::from_utf8(body.to_vec()).unwrap();
    assert!(!page.contains("<script"), "the page runs nothing");
    assert!(page.contains("<tr class=\"outage\"><td>PH – VN</td>"), "no outage of PH – VN on the page");
    assert!(
        page.contains(
            "<tr class=\"late\"><td>FLASH</td><td>all</td><td>1</td><td>1</td><td>0</td><td>0</td><td>1</td>"
        ),
        "no late FLASH on the page"
    );

    // Rendered in Chromium from the node, under its policy: the style applies.
    let store = &*net.node("PH").state.store;
    adi_node::setup::add_operator(store, "watch-ph", "duty").unwrap();
    adi_node::setup::set_password(store, "watch-ph", PASSWORD).unwrap();
    let console = format!("http://{}/console", net.node("PH").api_addr);
    let page = browser::Browser::start().await;
    page.sign_in(&console, "watch-ph", PASSWORD).await;
    assert_eq!(page.attribute("#report-link", "href").await.as_deref(), Some("/api/v1/report?format=html"));
    page.go(&format!("http://{}/api/v1/report?{window}&format=html", net.node("PH").api_addr)).await;
    page.wait_text("h1", "ADI operations report: PH").await;
    let styled = page.script("return getComputedStyle(document.querySelector('tr.late td')).backgroundColor;").await;
    assert_eq!(styled, json!("rgb(253, 224, 224)"), "the page's style was not applied");
    assert!(page.count("svg").await >= 3, "the plots");
    page.screenshot("console-report").await;
    page.quit().await;
    net.stop_all().await;
}
