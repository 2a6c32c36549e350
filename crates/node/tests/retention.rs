//! Retention on a running node (`docs/OPERATIONS.md`, "Retention"): the content of TEST traffic
//! past its class's time goes once an export holding it was confirmed archived, and only then;
//! OPERATIONAL traffic, traffic after the archive and the other member's copy stay; the line's
//! export still verifies and names what was pruned; the console says so where the words were;
//! confirming an archive is refused clearly.

#[allow(dead_code)]
#[path = "common/browser.rs"]
mod browser;
mod common;

use std::time::Duration;

use adi_node::client::Client;
use adi_node::config::ConfigFile;
use common::{eventually, open_line, set_limits, wait_delivered, Net};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Digest;

/// How long TEST traffic keeps its content at PH in this test, in seconds.
const TEST_KEEP_S: u64 = 1;

async fn send_class(c: &Client, line: &str, class: &str, subject: &str) -> String {
    let body =
        json!({"precedence": "ROUTINE", "class": class, "subject": subject, "body": format!("body of {subject}")});
    let v = c.call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&body)).await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

async fn message(c: &Client, id: &str) -> Value {
    c.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.unwrap()
}

/// The export of `line` exactly as the node serves it.
async fn export(c: &Client, line: &str) -> Vec<u8> {
    let (status, _, bytes) = c.request_full(Method::GET, &format!("/api/v1/lines/{line}/export"), None).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&bytes));
    bytes.to_vec()
}

async fn confirm(c: &Client, line: &str, sha256: &str) -> (StatusCode, Value) {
    let body = json!({ "sha256": sha256 });
    c.request(Method::POST, &format!("/api/v1/lines/{line}/archives"), Some(&body)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_traffic_past_its_time_is_pruned_once_archived_and_the_export_still_verifies() {
    let mut net = Net::init(&["PH", "CN"]);
    set_limits(&net, "PH", |l| l.retention_interval_ms = Some(100));
    let path = net.config_path("PH");
    let mut file: ConfigFile = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    file.retention.test_keep_s = Some(TEST_KEEP_S);
    std::fs::write(&path, toml::to_string_pretty(&file).unwrap()).unwrap();
    net.start_code("PH").await;
    net.start_code("CN").await;
    let (ph, cn) = (net.client("PH"), net.client("CN"));
    let admin = adi_node::setup::add_operator(&*net.node("PH").state.store, "admin-ph", "admin").unwrap();
    let admin = Client::new(&net.state.members[net.index("PH")].api_url, Some(admin), None).unwrap();

    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let own_test = send_class(&ph, &line, "TEST", "PH's test of the line").await;
    let operational = send_class(&ph, &line, "OPERATIONAL", "PH's order to keep").await;
    wait_delivered(&ph, &own_test, Duration::from_secs(20)).await;
    wait_delivered(&ph, &operational, Duration::from_secs(20)).await;
    let their_test = send_class(&cn, &line, "TEST", "CN's test of the line").await;
    wait_delivered(&cn, &their_test, Duration::from_secs(20)).await;
    let tests = [own_test.clone(), their_test.clone()];

    // Past their time, but nothing archived them: their content stays.
    tokio::time::sleep(Duration::from_millis(TEST_KEEP_S * 1000 + 600)).await;
    for id in &tests {
        let m = message(&ph, id).await;
        assert!(m["pruned_ms"].is_null() && !m["subject"].as_str().unwrap().is_empty(), "pruned unarchived: {m}");
    }

    // An export served and not yet confirmed archives nothing.
    let bytes = export(&ph, &line).await;
    let sha256 = hex::encode(sha2::Sha256::digest(&bytes));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(message(&ph, &own_test).await["pruned_ms"].is_null(), "pruned under an export never confirmed");

    // Confirming is an administrator's, of an export the node served, named by its hash.
    let (status, v) = confirm(&ph, &line, &sha256).await;
    assert_eq!((status, v["error"].as_str()), (StatusCode::FORBIDDEN, Some("role")), "{v}");
    let (status, v) = confirm(&admin, &line, "not a hash").await;
    assert_eq!((status, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_sha256")), "{v}");
    let (status, v) = confirm(&admin, &line, &hex::encode([0u8; 32])).await;
    assert_eq!((status, v["error"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_export")), "{v}");
    let other = "00112233445566778899aabbccddeeff";
    let (status, v) = confirm(&admin, other, &sha256).await;
    assert_eq!((status, v["error"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_line")), "{v}");
    assert!(message(&ph, &own_test).await["pruned_ms"].is_null(), "a refused confirmation pruned");
    let (status, v) = confirm(&admin, &line, &sha256).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!((v["sha256"].as_str(), v["line"].as_str()), (Some(sha256.as_str()), Some(line.as_str())), "{v}");
    assert!(v["envelopes"].as_u64().unwrap() >= 4 && v["confirmed_ms"].is_u64(), "{v}");

    // A TEST message after the archive is not in it.
    let after = send_class(&ph, &line, "TEST", "PH's test after the archive").await;
    wait_delivered(&ph, &after, Duration::from_secs(20)).await;

    // Now the archived TEST traffic goes at PH, sent and received alike.
    for id in &tests {
        let m = eventually(Duration::from_secs(20), "the archived TEST message pruned at PH", || async {
            let m = message(&ph, id).await;
            m["pruned_ms"].is_u64().then_some(m)
        })
        .await;
        assert_eq!((m["subject"].as_str(), m["body"].as_str()), (Some(""), Some("")), "{m}");
        assert_eq!((m["class"].as_str(), m["precedence"].as_str()), (Some("TEST"), Some("ROUTINE")), "{m}");
    }
    tokio::time::sleep(Duration::from_millis(TEST_KEEP_S * 1000 + 600)).await;
    let kept = message(&ph, &operational).await;
    assert_eq!((kept["subject"].as_str(), &kept["pruned_ms"]), (Some("PH's order to keep"), &Value::Null), "{kept}");
    let later = message(&ph, &after).await;
    assert!(later["pruned_ms"].is_null(), "a TEST message no archive holds was pruned: {later}");
    // CN's copy is CN's: its node keeps it.
    let at_cn = message(&cn, &own_test).await;
    assert_eq!((at_cn["subject"].as_str(), &at_cn["pruned_ms"]), (Some("PH's test of the line"), &Value::Null));

    // Search reads only what is left.
    let found = ph.call(Method::GET, "/api/v1/search?q=test%20of%20the%20line", None).await.unwrap();
    assert_eq!(found["messages"].as_array().unwrap().len(), 0, "pruned content is found: {found}");

    // The line's export still verifies, and says which contents were pruned.
    let bundle: adi_record::bundle::Bundle = serde_json::from_slice(&export(&ph, &line).await).unwrap();
    assert_eq!(bundle.v, adi_record::bundle::VERSION);
    let report = adi_record::bundle::verify(&bundle);
    assert!(report.first_failure().is_none(), "{:?}", report.first_failure());
    let mut pruned: Vec<String> = report.record.iter().filter(|e| e.kind == "pruned").map(|e| e.hash.clone()).collect();
    pruned.sort();
    let mut want = tests.to_vec();
    want.sort();
    assert_eq!(pruned, want, "the entries the bundle names pruned");
    let subject = |id: &str| {
        let e = report.record.iter().find(|e| e.hash == id).unwrap_or_else(|| panic!("{id} is not in the record"));
        (e.kind, e.content.as_ref().and_then(|c| c["subject"].as_str().map(str::to_string)))
    };
    assert_eq!(subject(&operational), ("message", Some("PH's order to keep".to_string())));
    assert_eq!(subject(&after), ("message", Some("PH's test after the archive".to_string())));
    assert!(
        report.checks.iter().any(|c| c.failure.is_none() && c.item.contains(&own_test) && c.item.contains("pruned")),
        "no check states the pruning"
    );
    // A pruned envelope cannot be given its content back unnoticed.
    let mut forged = bundle.clone();
    let e = forged.envelopes.iter_mut().find(|e| e.pruned).unwrap();
    e.content = bundle.envelopes.iter().find(|x| x.content.is_some()).and_then(|x| x.content.clone());
    assert!(adi_record::bundle::verify(&forged).first_failure().is_some(), "pruned content put back verifies");

    // The console shows where the words were that they were pruned, and the words kept.
    let store = &*net.node("PH").state.store;
    adi_node::setup::add_operator(store, "watch-ph", "duty").unwrap();
    adi_node::setup::set_password(store, "watch-ph", "the dog watch").unwrap();
    let browser = browser::Browser::start().await;
    browser.sign_in(&format!("http://{}/console", net.node("PH").api_addr), "watch-ph", "the dog watch").await;
    browser.click(&format!("#line-items button[data-line='{line}']")).await;
    browser.wait_text("#conversation", "PH's order to keep").await;
    browser.wait_text("#conversation", "Content pruned under retention on").await;
    let notices = browser.count("#conversation .pruned").await;
    assert_eq!(notices, 2, "one notice for each pruned message");
    assert!(!browser.text("#conversation").await.contains("test of the line"), "pruned words shown");
    browser.quit().await;
    net.stop_all().await;
}
