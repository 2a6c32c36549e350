//! Real nodes whose system clocks are wrong, or step, under libfaketime (Debian's `faketime`):
//!
//! - a day forward and then two days back while a node runs: its deadlines fire on time (not at
//!   once, not never), its link tests keep their schedule, and it raises a `clock` alarm about
//!   itself;
//! - a peer two hours fast: link tests raise a `clock` alarm about it at the other end, and its
//!   FLASH escalates at the recipient when the deadline runs out from its arrival;
//! - a node restarted with its clock set a day back keeps time from what it stored, so that a
//!   deadline stored before the restart still fires on time.
//!
//! The clock is faked through a file the test rewrites (`FAKETIME_TIMESTAMP_FILE`, read at every
//! reading of the time); monotonic time is left alone, as a stepped system clock leaves it.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use adi_node::client::Client;
use adi_node::config::ConfigFile;
use hyper::Method;
use serde_json::{json, Value};
use support::{eventually, wait_healthy, Procs};

const WAIT: Duration = Duration::from_secs(30);
/// The FLASH deadline both nodes keep here.
const FLASH_S: u64 = 6;
/// How often each direct line is tested here.
const LINK_TEST_S: u64 = 2;
/// How far off an escalation may fire from its deadline: delivery, the clock task's wake and
/// the polling of this test.
const SLACK: Duration = Duration::from_secs(3);

/// libfaketime, as Debian's `faketime` package installs it.
fn libfaketime() -> PathBuf {
    let found = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("faketime/libfaketimeMT.so.1"))
        .find(|p| p.exists());
    found.expect("these tests need libfaketime: install Debian's faketime package")
}

/// A member's faked clock: the offset from the real one in libfaketime's notation (`+0`, `+1d`).
struct FakeClock {
    file: PathBuf,
}

impl FakeClock {
    fn new(dir: &Path, code: &str, offset: &str) -> FakeClock {
        let clock = FakeClock { file: dir.join(format!("{code}.faketime")) };
        clock.set(offset);
        clock
    }

    fn set(&self, offset: &str) {
        std::fs::write(&self.file, offset).unwrap();
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("LD_PRELOAD".into(), libfaketime().display().to_string()),
            ("FAKETIME_TIMESTAMP_FILE".into(), self.file.display().to_string()),
            ("FAKETIME_NO_CACHE".into(), "1".into()),
            ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
        ]
    }
}

/// PH and CN with short deadlines and link tests, each started with the fake clock given to it,
/// and a direct line between them; returns the network and the line.
async fn network(clocks: &[(&str, &FakeClock)]) -> (Procs, String) {
    let mut net = Procs::init(&["PH", "CN"]);
    for code in ["PH", "CN"] {
        let config = PathBuf::from(&net.member(code).config);
        let mut file: ConfigFile = toml::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
        file.discipline.deadlines = Some(adi_wire::files::DeadlinesFile {
            flash_s: FLASH_S,
            immediate_s: 600,
            priority_s: 3600,
            routine_s: 7200,
        });
        file.discipline.link_test_interval_s = LINK_TEST_S;
        std::fs::write(&config, toml::to_string_pretty(&file).unwrap()).unwrap();
    }
    for code in ["PH", "CN"] {
        match clocks.iter().find(|(c, _)| *c == code) {
            Some((_, clock)) => {
                let env = clock.env();
                let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                net.start_with_env(code, &env);
            }
            None => net.start(code),
        }
        wait_healthy(&net.member(code).url).await;
    }
    let body = json!({"members": ["PH", "CN"], "scope": "ADMM-Plus"});
    let line = net.client("PH").call(Method::POST, "/api/v1/lines", Some(&body)).await.unwrap();
    let line = line["id"].as_str().unwrap().to_string();
    let cn = net.client("CN");
    eventually(WAIT, "CN to hold the line", || async {
        cn.call(Method::GET, &format!("/api/v1/lines/{line}"), None).await.ok().map(|_| ())
    })
    .await;
    (net, line)
}

/// The node's open alarms of `kind` about `member`.
async fn alarms(node: &Client, kind: &str, member: &str) -> Vec<Value> {
    let open = node.call(Method::GET, "/api/v1/alarms", None).await.unwrap();
    open.as_array().unwrap().iter().filter(|a| a["kind"] == kind && a["member"] == member).cloned().collect()
}

/// The node's link towards `peer`, as `/api/v1/links` shows it.
async fn link(node: &Client, peer: &str) -> Value {
    let links = node.call(Method::GET, "/api/v1/links", None).await.unwrap();
    links.as_array().unwrap().iter().find(|l| l["member"] == peer).cloned().unwrap_or(Value::Null)
}

/// PH sends a FLASH that CN must acknowledge, and waits until CN holds it; returns its id and
/// when it was sent.
async fn flash(net: &Procs, line: &str, subject: &str) -> (String, Instant) {
    let body = json!({"precedence": "FLASH", "subject": subject, "body": "x"});
    let sent = Instant::now();
    let m = net.client("PH").call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&body)).await.unwrap();
    let id = m["id"].as_str().unwrap().to_string();
    let cn = net.client("CN");
    eventually(WAIT, "CN to hold the FLASH", || async {
        cn.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.ok().map(|_| ())
    })
    .await;
    (id, sent)
}

/// Waits for CN's escalation of message `id` and checks that it came on time.
async fn escalates_on_time(cn: &Client, id: &str, sent: Instant, what: &str) {
    let took = eventually(WAIT, &format!("CN to escalate {what}"), || async {
        let escalated = alarms(cn, "escalation", "CN").await.iter().any(|a| a["message"] == id);
        escalated.then(|| sent.elapsed())
    })
    .await;
    let deadline = Duration::from_secs(FLASH_S);
    assert!(took + SLACK >= deadline, "{what}: escalated after {took:?}, before its {deadline:?} deadline");
    assert!(took <= deadline + SLACK, "{what}: escalated after {took:?}, long after its {deadline:?} deadline");
    eprintln!("{what}: escalated {} ms after it was sent (deadline {FLASH_S} s)", took.as_millis());
}

/// Checks that CN's own link tests to PH go on: its last answered test is recent, twice over.
async fn link_tests_on_schedule(cn: &Client, when: &str) {
    for _ in 0..2 {
        let before = link(cn, "PH").await["last_ok_ms"].as_u64();
        eventually(WAIT, &format!("CN's link tests to go on {when}"), || async {
            let l = link(cn, "PH").await;
            (l["last_ok_ms"].as_u64() > before && l["state"] == "healthy").then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_forward_then_two_days_back_leave_deadlines_and_link_tests_on_time() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new(dir.path(), "CN", "+0");
    let (net, line) = network(&[("CN", &clock)]).await;
    let cn = net.client("CN");
    link_tests_on_schedule(&cn, "at first").await;

    // A day forward while CN holds an unanswered FLASH: its deadline does not fire at once.
    let (first, sent) = flash(&net, &line, "before the step forward").await;
    clock.set("+1d");
    escalates_on_time(&cn, &first, sent, "a FLASH held across a step of a day forward").await;
    link_tests_on_schedule(&cn, "after a step of a day forward").await;
    let own = eventually(WAIT, "CN's clock alarm about itself", || async {
        alarms(&cn, "clock", "CN").await.into_iter().next()
    })
    .await;
    assert!(own["detail"].as_str().unwrap().contains("stepped forward by 24 h"), "{own}");

    // Two days back while CN holds another: its deadline does not stall.
    let (second, sent) = flash(&net, &line, "before the step back").await;
    clock.set("-1d");
    escalates_on_time(&cn, &second, sent, "a FLASH held across a step of two days back").await;
    link_tests_on_schedule(&cn, "after a step of two days back").await;
    // The system clock is still off from the node's (now a day behind): the alarm stays open.
    assert_eq!(alarms(&cn, "clock", "CN").await.len(), 1, "CN's clock alarm about itself stays open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_two_hours_fast_raises_the_clock_alarm_and_its_flash_escalates_on_time() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new(dir.path(), "PH", "+2h");
    let (net, line) = network(&[("PH", &clock)]).await;
    let (ph, cn) = (net.client("PH"), net.client("CN"));
    let about_ph =
        eventually(WAIT, "CN's clock alarm about PH", || async { alarms(&cn, "clock", "PH").await.into_iter().next() })
            .await;
    // The detail rounds down to the minute, and the measure is within the round trip: 2 h 0 min,
    // or 1 h 59 min when the link test's answer was slow.
    let detail = about_ph["detail"].as_str().unwrap();
    assert!(
        ["PH's clock is 2 h 0 min ahead of", "PH's clock is 1 h 59 min ahead of"].iter().any(|d| detail.contains(d)),
        "{about_ph}"
    );
    let offset = link(&cn, "PH").await["clock_offset_ms"].as_i64().unwrap();
    assert!((offset - 7_200_000).abs() < 1_000, "CN measures PH 2 h ahead: {offset} ms");
    eventually(WAIT, "PH's clock alarm about CN", || async {
        let open = alarms(&ph, "clock", "CN").await;
        open.iter().any(|a| a["detail"].as_str().unwrap_or_default().contains("behind")).then_some(())
    })
    .await;

    let (id, sent) = flash(&net, &line, "from a clock two hours fast").await;
    escalates_on_time(&cn, &id, sent, "a FLASH from a peer two hours fast").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_with_its_clock_a_day_back_fires_its_stored_deadlines_on_time() {
    let dir = tempfile::tempdir().unwrap();
    let clock = FakeClock::new(dir.path(), "CN", "+0");
    let (mut net, line) = network(&[("CN", &clock)]).await;
    let (id, sent) = flash(&net, &line, "held across a restart").await;
    net.kill("CN");
    clock.set("-1d");
    let env = clock.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    net.start_with_env("CN", &env);
    wait_healthy(&net.member("CN").url).await;
    let cn = net.client("CN");
    escalates_on_time(&cn, &id, sent, "a FLASH stored before a restart a day back").await;
    eventually(WAIT, "CN's clock alarm about itself", || async { alarms(&cn, "clock", "CN").await.into_iter().next() })
        .await;
}
