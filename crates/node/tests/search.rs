//! Searching the messages a node holds (`GET /api/v1/search`): every message, sent or received,
//! on every line or one, by words (letter case aside, in any script), precedence, class, sender
//! and time; bad filters refused with a clear error; the bound on what one search reads.

mod common;

use std::time::Duration;

use common::{open_line, send, set_limits, wait_delivered, Net};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

async fn search(c: &adi_node::client::Client, query: &str) -> Value {
    let (status, v) = c.request(Method::GET, &format!("/api/v1/search?{query}"), None).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{query}: {v}");
    v
}

fn subjects(v: &Value) -> Vec<String> {
    v["messages"].as_array().unwrap().iter().map(|m| m["subject"].as_str().unwrap_or_default().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_finds_every_message_that_holds_its_filters_newest_first_and_refuses_bad_ones() {
    let net = Net::start(&["PH", "CN", "VN"]).await;
    let (ph, cn, vn) = (net.client("PH"), net.client("CN"), net.client("VN"));
    let to_cn = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let to_vn = open_line(&ph, &["PH", "VN"], "ADMM-Plus").await;
    let mut sent = Vec::new();
    sent.push(send(&ph, &to_cn, "ROUTINE", "Typhoon Koinu track").await);
    sent.push(send(&ph, &to_vn, "PRIORITY", "Fisheries patrol schedule").await);
    let thai = json!({"precedence": "IMMEDIATE", "class": "TEST", "subject": "การเผชิญหน้าในทะเล",
                      "body": "เรือสองลำเข้าใกล้กัน typhoon shelter"});
    let v = ph.call(Method::POST, &format!("/api/v1/lines/{to_cn}/messages"), Some(&thai)).await.unwrap();
    sent.push(v["id"].as_str().unwrap().to_string());
    for id in &sent {
        wait_delivered(&ph, id, Duration::from_secs(20)).await;
    }
    // Received at PH: CN's answer on the line, then VN's.
    let answer = send(&cn, &to_cn, "FLASH", "TYPHOON warning received").await;
    wait_delivered(&cn, &answer, Duration::from_secs(20)).await;
    let from_vn = send(&vn, &to_vn, "ROUTINE", "Patrol schedule agreed").await;
    wait_delivered(&vn, &from_vn, Duration::from_secs(20)).await;

    // Words, letter case aside, in the subject or the text, sent and received, newest first.
    let found = search(&ph, "q=typhoon").await;
    assert_eq!(subjects(&found), ["TYPHOON warning received", "การเผชิญหน้าในทะเล", "Typhoon Koinu track"], "{found}");
    assert_eq!(found["found"], 3);
    assert_eq!(found["complete"], true);
    assert_eq!(found["scanned"], 5, "every message of the node was read: {found}");
    // Thai words, in the body only.
    assert_eq!(subjects(&search(&ph, "q=%E0%B9%80%E0%B8%A3%E0%B8%B7%E0%B8%AD").await), ["การเผชิญหน้าในทะเล"]);
    // Each filter, and all at once.
    assert_eq!(subjects(&search(&ph, "precedence=FLASH").await), ["TYPHOON warning received"]);
    assert_eq!(subjects(&search(&ph, "class=TEST").await), ["การเผชิญหน้าในทะเล"]);
    assert_eq!(subjects(&search(&ph, "sender=VN").await), ["Patrol schedule agreed"]);
    assert_eq!(
        subjects(&search(&ph, &format!("line={to_vn}")).await),
        ["Patrol schedule agreed", "Fisheries patrol schedule"]
    );
    assert_eq!(
        subjects(&search(&ph, &format!("line={to_vn}&q=PATROL&sender=PH")).await),
        ["Fisheries patrol schedule"]
    );
    let all = search(&ph, "").await;
    assert_eq!(all["found"], 5);
    let times: Vec<u64> =
        all["messages"].as_array().unwrap().iter().map(|m| m["created_ms"].as_u64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");
    let newest = times[0];
    assert_eq!(subjects(&search(&ph, &format!("since_ms={newest}")).await), ["Patrol schedule agreed"]);
    assert_eq!(search(&ph, &format!("until_ms={newest}")).await["found"], 4);
    assert_eq!(search(&ph, "limit=2").await["messages"].as_array().unwrap().len(), 2);
    assert_eq!(search(&ph, "limit=2").await["found"], 5);
    assert_eq!(search(&ph, "q=nothing+like+this").await["found"], 0);

    // Bad filters: a clear error, nothing found.
    for (query, code) in [
        ("precedence=URGENT", "bad_precedence"),
        ("class=SECRET", "bad_class"),
        ("sender=not-a-member", "bad_member"),
        ("since_ms=10&until_ms=10", "bad_range"),
        ("limit=0", "bad_limit"),
        ("colour=red", "bad_query"),
    ] {
        let (status, v) = ph.request(Method::GET, &format!("/api/v1/search?{query}"), None).await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {v}");
        assert_eq!(v["error"], code, "{query}: {v}");
    }
    let long = "x".repeat(201);
    let (status, v) = ph.request(Method::GET, &format!("/api/v1/search?q={long}"), None).await.unwrap();
    assert_eq!((status, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("text_too_long")), "{v}");
    let (status, v) = ph.request(Method::GET, &format!("/api/v1/search?line={}", "0".repeat(32)), None).await.unwrap();
    assert_eq!((status, v["error"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_line")), "{v}");
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_reads_at_most_its_bound_and_says_it_stopped_there() {
    let mut net = Net::init(&["PH", "CN"]);
    set_limits(&net, "PH", |l| {
        l.search_scan_max = Some(3);
        l.list_len_max = Some(2);
    });
    net.start_code("PH").await;
    net.start_code("CN").await;
    let ph = net.client("PH");
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    for n in 0..5 {
        send(&ph, &line, "ROUTINE", &format!("report {n}")).await;
    }
    let v = search(&ph, "q=report").await;
    assert_eq!(v["scanned"], 3, "{v}");
    assert_eq!(v["found"], 3, "{v}");
    assert_eq!(v["complete"], false, "{v}");
    net.stop_all().await;
}
