//! Links cut and healed between real node processes while traffic flows: the backlog drains after
//! each heal, nothing is lost or duplicated, and the link alarm is raised while the link is cut
//! and cleared once it answers again.
//!
//! Each node reaches the other through a relay in this test (its roster is rerouted), which the
//! test cuts (every connection dropped, new ones refused, both ways) and heals.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::Method;
use serde_json::json;
use support::{check_exactly_once_in_order, endpoint_of, eventually, reroute, wait_healthy, Procs, Severable};

const CYCLES: usize = 10;
const MESSAGES: usize = 300;
const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_cuts_and_heals_lose_and_duplicate_nothing_and_the_link_alarm_follows() {
    let mut net = Procs::init(&["PH", "CN"]);
    for m in &net.members {
        let text = std::fs::read_to_string(&m.config).unwrap();
        assert!(text.contains("link_test_interval_s = 30\n"), "{text}");
        // Link tests every second, and retries at most 2 s apart, so that cuts show and heal fast.
        let text = text.replace("link_test_interval_s = 30\n", "link_test_interval_s = 1\n");
        std::fs::write(&m.config, text.replace("[limits]\n", "[limits]\nretry_delay_ms_max = 2000\n")).unwrap();
    }
    // Both directions go through a relay.
    let to_cn = Severable::start(endpoint_of(&net, "PH", "CN")).await.unwrap();
    let to_ph = Severable::start(endpoint_of(&net, "CN", "PH")).await.unwrap();
    reroute(&net, "PH", "CN", &to_cn.addr);
    reroute(&net, "CN", "PH", &to_ph.addr);
    for code in ["PH", "CN"] {
        net.start(code);
        wait_healthy(&net.member(code).url).await;
    }
    let (ph, cn) = (net.client("PH"), net.client("CN"));
    let v = ph.call(Method::POST, "/api/v1/lines", Some(&json!({"members": ["PH", "CN"], "scope": "ADMM-Plus"}))).await;
    let line = v.unwrap()["id"].as_str().unwrap().to_string();

    // PH's operators keep sending while the link comes and goes.
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let streaming = {
        let (ph, line, accepted) = (ph.clone(), line.clone(), accepted.clone());
        tokio::spawn(async move {
            for i in 0..MESSAGES {
                let body = json!({"precedence": "ROUTINE", "subject": format!("report {i}"), "body": "x"});
                let v = ph.call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&body)).await.unwrap();
                accepted.lock().unwrap().push(v["id"].as_str().unwrap().to_string());
                tokio::time::sleep(Duration::from_millis(60)).await;
            }
        })
    };
    let mut raised = 0;
    for _ in 0..CYCLES {
        tokio::time::sleep(Duration::from_millis(300)).await;
        to_cn.cut();
        to_ph.cut();
        // Cut long enough for a link test to go unanswered.
        tokio::time::sleep(Duration::from_millis(2_600)).await;
        let alarms = ph.call(Method::GET, "/api/v1/alarms", None).await.unwrap();
        let open = alarms.as_array().unwrap().iter().any(|a| a["kind"] == "link_no_answer" && a["member"] == "CN");
        raised += usize::from(open);
        to_cn.heal();
        to_ph.heal();
    }
    streaming.await.unwrap();
    assert!(raised >= CYCLES / 2, "the link alarm was open in only {raised} of {CYCLES} cuts");
    let accepted = accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), MESSAGES);
    check_exactly_once_in_order(&ph, &cn, &line, &accepted).await;
    // Healed: the link answers again and its alarm is cleared.
    eventually(WAIT, "the link alarm to clear", || async {
        let alarms = ph.call(Method::GET, "/api/v1/alarms", None).await.ok()?;
        (!alarms.as_array()?.iter().any(|a| a["kind"] == "link_no_answer")).then_some(())
    })
    .await;
    let all = ph.call(Method::GET, "/api/v1/alarms?all=true", None).await.unwrap();
    let cleared = all.as_array().unwrap().iter().filter(|a| a["kind"] == "link_no_answer" && a["cleared_ms"].is_u64());
    assert!(cleared.count() >= 1);
    net.kill("PH");
    net.kill("CN");
}
