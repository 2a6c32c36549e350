//! `GET /metrics` on a running node's metrics listener, scraped during traffic: every named series
//! is there, and each figure is the one the operator API gives (links, queues, alarms, sessions,
//! acknowledgements of this member's messages), or counts what the test sent.

mod common;

use std::time::Duration;

use adi_node::client::Client;
use adi_node::config::ConfigFile;
use common::{eventually, free_ports, get_list, open_line, send, wait_delivered, Net};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

/// The value of the series written exactly `series` (name and labels), if the text has it.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.split(' ').next()?.parse().ok())
}

async fn scrape(c: &Client) -> String {
    let (status, body) = c.request_raw(Method::GET, "/metrics", None).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    String::from_utf8(body.to_vec()).unwrap()
}

/// What the links API says of `peer` that the metrics show and that does not move with the clock:
/// its state, its queue's length and its last round trip.
async fn link(c: &Client, peer: &str) -> Value {
    let l = get_list(c, "/api/v1/links").await.into_iter().find(|l| l["member"] == peer).unwrap();
    json!({"state": l["state"], "queue_len": l["queue_len"], "last_rtt_ms": l["last_rtt_ms"]})
}

/// Gives PH's node a metrics listener at `addr` that reads the node at most every `min_ms`.
fn with_metrics(net: &Net, addr: &str, min_ms: u64) {
    let path = net.config_path("PH");
    let mut file: ConfigFile = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    file.api.metrics_listen = Some(addr.to_string());
    file.limits.metrics_scrape_min_ms = Some(min_ms);
    std::fs::write(&path, toml::to_string_pretty(&file).unwrap()).unwrap();
}

/// Whoever reaches the metrics port may scrape as fast as it likes: within
/// `metrics_scrape_min_ms` every answer is the text read last, so a flood costs the node one read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_scrapes_reads_the_node_once_an_interval() {
    const MIN_MS: u64 = 5_000;
    let mut net = Net::init(&["PH", "CN"]);
    let metrics_addr = format!("127.0.0.1:{}", free_ports(1));
    with_metrics(&net, &metrics_addr, MIN_MS);
    net.start_code("PH").await;
    net.start_code("CN").await;
    let metrics = Client::new(&format!("http://{metrics_addr}"), None, None).unwrap();
    let ph = net.client("PH");
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let series = "adi_envelopes_sent_total{peer=\"CN\",verdict=\"accepted\",code=\"\"}";
    let read_at = std::time::Instant::now();
    let first = scrape(&metrics).await;
    wait_delivered(&ph, &send(&ph, &line, "ROUTINE", "between two scrapes").await, WAIT).await;
    let mut flood = Vec::new();
    for _ in 0..50 {
        flood.push(scrape(&metrics).await);
    }
    assert!(read_at.elapsed() < Duration::from_millis(MIN_MS), "too slow to check within the interval");
    assert!(flood.iter().all(|t| *t == first), "a scrape within the interval read the node again");
    tokio::time::sleep(Duration::from_millis(MIN_MS).saturating_sub(read_at.elapsed()) + Duration::from_millis(100))
        .await;
    let later = scrape(&metrics).await;
    let (before, after) = (value(&first, series).unwrap_or(0.0), value(&later, series).unwrap());
    assert!(after > before, "after the interval the node is read again: {before} then {after}");
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_are_the_apis_own_figures_during_traffic() {
    let mut net = Net::init_with(&["PH", "CN", "VN"], |d| d.link_test_interval_s = 1);
    let metrics_addr = format!("127.0.0.1:{}", free_ports(1));
    // Every scrape reads the node afresh here, to compare with the API at the same moment.
    with_metrics(&net, &metrics_addr, 0);
    for code in ["PH", "CN", "VN"] {
        net.start_code(code).await;
    }
    assert_eq!(net.node("PH").metrics_addr.map(|a| a.to_string()), Some(metrics_addr.clone()));
    assert!(net.node("CN").metrics_addr.is_none(), "a node whose configuration names none has no metrics listener");
    let metrics = Client::new(&format!("http://{metrics_addr}"), None, None).unwrap();
    let (ph, cn) = (net.client("PH"), net.client("CN"));

    // Traffic: two FLASH messages to CN, both acknowledged there, and two ROUTINE ones.
    let to_cn = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let to_vn = open_line(&ph, &["PH", "VN"], "ADMM-Plus").await;
    let mut flashes = Vec::new();
    for n in 0..2 {
        flashes.push(send(&ph, &to_cn, "FLASH", &format!("flash {n}")).await);
        send(&ph, &to_cn, "ROUTINE", &format!("routine {n}")).await;
    }
    for id in &flashes {
        wait_delivered(&ph, id, WAIT).await;
        eventually(WAIT, "CN holds the FLASH", || {
            let (cn, id) = (cn.clone(), id.clone());
            async move { cn.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.ok() }
        })
        .await;
        cn.call(Method::POST, &format!("/api/v1/messages/{id}/ack"), Some(&json!({}))).await.unwrap();
    }
    for id in &flashes {
        eventually(WAIT, "PH knows CN acknowledged", || {
            let (ph, id) = (ph.clone(), id.clone());
            async move {
                let m = ph.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.ok()?;
                (m["recipients"][0]["state"] == "acknowledged").then_some(())
            }
        })
        .await;
    }
    // Scraped while traffic flows: a burst of 30 messages to CN, the counters read as it goes
    // never fall, and once all are delivered they count every one of them.
    let sent_series = "adi_envelopes_sent_total{peer=\"CN\",verdict=\"accepted\",code=\"\"}";
    let before = value(&scrape(&metrics).await, sent_series).unwrap();
    let burst = {
        let (ph, line) = (ph.clone(), to_cn.clone());
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..30 {
                ids.push(send(&ph, &line, "ROUTINE", &format!("burst {n}")).await);
            }
            ids
        })
    };
    let mut seen = vec![before];
    while !burst.is_finished() {
        seen.push(value(&scrape(&metrics).await, sent_series).unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for id in burst.await.unwrap() {
        wait_delivered(&ph, &id, WAIT).await;
    }
    seen.push(value(&scrape(&metrics).await, sent_series).unwrap());
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "a counter fell during traffic: {seen:?}");
    assert!(seen.len() >= 3, "the burst was not scraped while it ran: {seen:?}");
    assert!(seen.last().unwrap() - before >= 30.0, "{seen:?}");
    // VN's node stops: what PH sends it waits in PH's queue.
    wait_delivered(&ph, &send(&ph, &to_vn, "ROUTINE", "before the stop").await, WAIT).await;
    net.stop_code("VN").await;
    for n in 0..3 {
        send(&ph, &to_vn, "ROUTINE", &format!("queued {n}")).await;
    }
    // A console session.
    let store = &*net.node("PH").state.store;
    adi_node::setup::add_operator(store, "watch-ph", "duty").unwrap();
    adi_node::setup::set_password(store, "watch-ph", "a long watch at the metrics").unwrap();
    let sign_in = json!({"name": "watch-ph", "password": "a long watch at the metrics"});
    let (status, _) = ph.request(Method::POST, "/console/sign-in", Some(&sign_in)).await.unwrap();
    assert_eq!(status, StatusCode::OK);

    // The format and the names.
    let (status, body) = metrics.request_raw(Method::GET, "/metrics", None).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body.to_vec()).unwrap();
    println!("{text}");
    for name in [
        "adi_envelopes_sent_total",
        "adi_envelopes_received_total",
        "adi_acknowledgement_seconds",
        "adi_store_commit_seconds",
        "adi_storage_faults_total",
        "adi_storage_failing",
        "adi_link_state",
        "adi_link_round_trip_seconds",
        "adi_queue_envelopes",
        "adi_queue_oldest_age_seconds",
        "adi_alarms_open",
        "adi_console_sessions",
        "adi_console_watching",
    ] {
        assert!(text.lines().any(|l| l.starts_with(name)), "no series {name}:\n{text}");
    }
    assert!(text.ends_with("# EOF\n"));

    // Acknowledgements: one observation per acknowledged FLASH, none for ROUTINE (it asks none).
    assert_eq!(value(&text, "adi_acknowledgement_seconds_count{precedence=\"FLASH\"}"), Some(2.0), "{text}");
    assert_eq!(value(&text, "adi_acknowledgement_seconds_count{precedence=\"ROUTINE\"}"), None);
    let within = value(&text, "adi_acknowledgement_seconds_bucket{le=\"30.0\",precedence=\"FLASH\"}");
    assert_eq!(within, Some(2.0), "both were acknowledged within 30 s: {text}");
    // Envelopes: CN accepted at least the four messages, PH at least CN's two acknowledgements.
    let sent = value(&text, "adi_envelopes_sent_total{peer=\"CN\",verdict=\"accepted\",code=\"\"}").unwrap();
    assert!(sent >= 4.0, "{sent}");
    let received = value(&text, "adi_envelopes_received_total{peer=\"CN\",verdict=\"accepted\",code=\"\"}").unwrap();
    assert!(received >= 2.0, "{received}");
    assert!(value(&text, "adi_store_commit_seconds_count").unwrap() >= 6.0);
    assert_eq!(value(&text, "adi_storage_failing"), Some(0.0));
    assert_eq!(value(&text, "adi_console_sessions"), Some(1.0));

    // The links, the queues and the alarms, as the API has them at the same moment (read again
    // until both reads agree: link tests and alarms move on every second).
    eventually(WAIT, "the metrics agree with the API", || {
        let (ph, metrics) = (ph.clone(), metrics.clone());
        async move {
            let (before_cn, before_vn) = (link(&ph, "CN").await, link(&ph, "VN").await);
            let alarms = get_list(&ph, "/api/v1/alarms").await;
            let text = scrape(&metrics).await;
            let (after_cn, after_vn) = (link(&ph, "CN").await, link(&ph, "VN").await);
            if before_cn != after_cn || before_vn != after_vn || alarms != get_list(&ph, "/api/v1/alarms").await {
                return None;
            }
            for (peer, l) in [("CN", &before_cn), ("VN", &before_vn)] {
                for state in ["healthy", "late", "failing", "never_tested"] {
                    let on = value(&text, &format!("adi_link_state{{peer=\"{peer}\",state=\"{state}\"}}"))?;
                    assert_eq!(on, f64::from(u8::from(l["state"] == state)), "{peer} {state}: {l}\n{text}");
                }
                let queued = value(&text, &format!("adi_queue_envelopes{{peer=\"{peer}\"}}"))?;
                assert_eq!(queued, l["queue_len"].as_f64().unwrap(), "{peer}: {l}");
                if let Some(rtt) = l["last_rtt_ms"].as_f64() {
                    let seconds = value(&text, &format!("adi_link_round_trip_seconds{{peer=\"{peer}\"}}"))?;
                    assert!((seconds - rtt / 1000.0).abs() < 1e-9, "{peer}: {seconds} s, {l}");
                }
            }
            assert!(before_vn["queue_len"].as_u64().unwrap() >= 3, "{before_vn}");
            let age = value(&text, "adi_queue_oldest_age_seconds{peer=\"VN\"}")?;
            assert!(age > 0.0, "{age}");
            let open: Vec<&Value> = alarms.iter().filter(|a| a["cleared_ms"].is_null()).collect();
            for kind in ["escalation", "link_no_answer", "unacknowledged", "storage"] {
                let n = open.iter().filter(|a| a["kind"] == kind).count();
                let series = value(&text, &format!("adi_alarms_open{{kind=\"{kind}\"}}"))?;
                assert_eq!(series, n as f64, "{kind}: {open:?}");
            }
            Some(())
        }
    })
    .await;

    // Nothing else is served there, and nothing it is sent breaks it.
    let (status, _) = metrics.request_raw(Method::GET, "/api/v1/lines", None).await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = metrics.request_raw(Method::POST, "/metrics", Some(b"x".to_vec())).await.unwrap();
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(scrape(&metrics).await.contains("adi_queue_envelopes"));
    net.stop_all().await;
}
