//! The hotline's discipline between real nodes: signed receipts, deadlines and escalation across
//! restarts, release by a principal, link tests, alarms and the event stream.

mod common;

use std::time::Duration;

use adi_core::MemberCode;
use adi_node::config::DisciplineSection;
use adi_node::fed::links::post_batch_once;
use adi_wire::envelope::{EnvelopeBody, CONTENT_MLS, PRIORITY_FLASH};
use adi_wire::files::{DeadlinesFile, RosterFile};
use adi_wire::payload::PayloadV1;
use adi_wire::{Envelope, EnvelopeHash, LineId};
use common::{endpoint, eventually, get_list, keys_towards, open_line, send, wait_delivered, Net};
use ed25519_dalek::{SigningKey, VerifyingKey};
use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

/// Deadlines of two seconds, escalations repeated every second, no link tests.
fn fast(d: &mut DisciplineSection) {
    d.deadlines = Some(DeadlinesFile { flash_s: 2, immediate_s: 2, priority_s: 2, routine_s: 2 });
    d.escalation_repeat_s = 1;
    d.link_test_interval_s = 0;
}

fn no_link_tests(d: &mut DisciplineSection) {
    d.link_test_interval_s = 0;
}

async fn post(net: &Net, at: &str, path: &str, body: Value) -> (StatusCode, Value) {
    net.client(at).request(Method::POST, path, Some(&body)).await.unwrap()
}

async fn message(net: &Net, at: &str, id: &str) -> Value {
    net.client(at).call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.unwrap()
}

async fn open_alarms(net: &Net, at: &str) -> Vec<Value> {
    get_list(&net.client(at), "/api/v1/alarms").await
}

/// Waits until `at` has an open alarm of `kind`, about `message` when given.
async fn wait_alarm(net: &Net, at: &str, kind: &str, message: Option<&str>) -> Value {
    eventually(WAIT, &format!("a {kind} alarm at {at}"), || async {
        open_alarms(net, at).await.into_iter().find(|a| a["kind"] == kind && message.is_none_or(|m| a["message"] == m))
    })
    .await
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn roster_key(net: &Net, code: &str) -> VerifyingKey {
    let text = std::fs::read_to_string(net.dir.path().join("roster.toml")).unwrap();
    let roster = RosterFile::from_toml(&text).unwrap();
    let entry = roster.members.iter().find(|m| m.code == code).unwrap();
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(&entry.signing_key, &mut bytes).unwrap();
    VerifyingKey::from_bytes(&bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seen_acknowledged_and_declined_reach_the_sender_signed_by_each_recipient() {
    let net = Net::start_with(&["PH", "VN", "CN"], no_link_tests).await;
    let line = open_line(&net.client("PH"), &["PH", "VN", "CN"], "ADMM-Plus").await;
    let id = send(&net.client("PH"), &line, "FLASH", "vessels in close quarters").await;
    wait_delivered(&net.client("PH"), &id, WAIT).await;

    let (status, _) = post(&net, "CN", &format!("/api/v1/messages/{id}/seen"), json!({})).await;
    assert_eq!(status, 200);
    let (status, v) = post(&net, "CN", &format!("/api/v1/messages/{id}/ack"), json!({})).await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = post(&net, "VN", &format!("/api/v1/messages/{id}/decline"), json!({})).await;
    assert_eq!((status, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("reason_required")));
    let (status, _) = post(&net, "VN", &format!("/api/v1/messages/{id}/decline"), json!({"reason": "not ours"})).await;
    assert_eq!(status, 200);

    // Twice is a conflict, and so is declining after acknowledging; nothing new is sent.
    let (status, v) = post(&net, "CN", &format!("/api/v1/messages/{id}/ack"), json!({})).await;
    assert_eq!((status, v["error"].as_str()), (StatusCode::CONFLICT, Some("already_answered")));
    let (status, _) = post(&net, "CN", &format!("/api/v1/messages/{id}/decline"), json!({"reason": "x"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = post(&net, "VN", &format!("/api/v1/messages/{id}/ack"), json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // The sender does not answer its own message.
    let (status, v) = post(&net, "PH", &format!("/api/v1/messages/{id}/ack"), json!({})).await;
    assert_eq!((status, v["error"].as_str()), (StatusCode::FORBIDDEN, Some("own_message")));

    let m = eventually(WAIT, "both answers at the sender", || async {
        let m = message(&net, "PH", &id).await;
        let states: Vec<&str> =
            m["recipients"].as_array().unwrap().iter().map(|r| r["state"].as_str().unwrap()).collect();
        let decrypted = m["recipients"].as_array().unwrap().iter().all(|r| r["decrypted_ms"].is_u64());
        (states == ["acknowledged", "declined"] && decrypted).then_some(m)
    })
    .await;
    let cn = &m["recipients"][0];
    assert_eq!(cn["member"], "CN");
    assert!(cn["seen_ms"].as_u64().unwrap() <= cn["acknowledged_ms"].as_u64().unwrap());
    assert!(cn["deadline_ms"].is_null(), "a settled recipient has no deadline left");
    let vn = &m["recipients"][1];
    assert_eq!((vn["member"].as_str(), vn["detail"].as_str()), (Some("VN"), Some("not ours")));

    // Each receipt is an envelope signed by the recipient's member key and names the message.
    let receipts = m["receipts"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> =
        receipts.iter().map(|r| (r["member"].as_str().unwrap(), r["kind"].as_str().unwrap())).collect();
    // Each recipient's node said it decrypted the message before any operator answered.
    assert_eq!(kinds.len(), 5, "{kinds:?}");
    for expected in
        [("CN", "decrypted"), ("VN", "decrypted"), ("CN", "seen"), ("CN", "acknowledged"), ("VN", "declined")]
    {
        assert!(kinds.contains(&expected), "{kinds:?}");
    }
    for r in receipts {
        let (e, bytes) = common::envelope(&net.client("PH"), r["id"].as_str().unwrap()).await;
        assert_eq!(e["kind"], "receipt");
        let member = r["member"].as_str().unwrap();
        let envelope = Envelope::decode(&bytes, 1 << 20, 1 << 20).unwrap();
        assert_eq!(envelope.body().sender, member);
        let verified = envelope.clone().verify(&roster_key(&net, member)).expect("signed by the recipient");
        let other = if member == "CN" { "VN" } else { "CN" };
        assert!(envelope.verify(&roster_key(&net, other)).is_err());
        // What the receipt says travels encrypted for the line's members only.
        assert_eq!(verified.body().content_type, adi_wire::envelope::CONTENT_MLS);
        assert!(PayloadV1::decode(&verified.body().payload).is_err(), "a receipt travelled in the clear");
        assert!(!contains(&verified.body().payload, id.as_bytes()));
    }
    // Third parties on the conference hold the receipts too.
    eventually(WAIT, "VN to hold CN's acknowledgement", || async {
        let m = message(&net, "VN", &id).await;
        m["receipts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["member"] == "CN" && r["kind"] == "acknowledged")
            .then_some(())
    })
    .await;
    net.stop_all().await;
}

fn receipt_envelope(
    key: &SigningKey,
    sender: &str,
    line: LineId,
    seq: u64,
    answers: &str,
    answers_sender: &str,
) -> Vec<u8> {
    let payload = PayloadV1::Receipt {
        v: 1,
        kind: "acknowledged".into(),
        answers: answers.into(),
        answers_sender: answers_sender.into(),
        answers_seq: 2,
        reason: None,
    };
    EnvelopeBody {
        line,
        sender: sender.into(),
        seq,
        prev: EnvelopeHash::NONE,
        epoch: 0,
        created_ms: 5,
        priority: PRIORITY_FLASH,
        // Not real MLS ciphertext: these envelopes test the checks made before decryption.
        content_type: CONTENT_MLS,
        content_hash: [0; 32],
        payload: payload.encode(),
    }
    .sign(key)
    .bytes()
    .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_with_a_bad_signature_or_from_a_non_recipient_are_refused() {
    let net = Net::start_with(&["PH", "VN", "CN"], no_link_tests).await;
    let line = open_line(&net.client("PH"), &["PH", "CN"], "ADMM-Plus").await;
    let id = send(&net.client("PH"), &line, "FLASH", "direct").await;
    wait_delivered(&net.client("PH"), &id, WAIT).await;
    let line_id = LineId::from_hex(&line).unwrap();
    let ph = MemberCode::parse("PH").unwrap();

    let cn = keys_towards(&net, "CN", "PH");
    let forged = receipt_envelope(&SigningKey::from_bytes(&[9; 32]), "CN", line_id, 100, &id, "PH");
    let reply = post_batch_once(&endpoint(&net, "PH"), cn.tls.clone(), &ph, &[&forged], 5_000).await.unwrap();
    assert!(format!("{:?}", reply.verdicts[0]).contains("signature"), "{reply:?}");

    // VN is pinned and in the roster, but neither on the line nor a recipient.
    let vn = keys_towards(&net, "VN", "PH");
    let intruder = receipt_envelope(&vn.signing, "VN", line_id, 100, &id, "PH");
    let reply = post_batch_once(&endpoint(&net, "PH"), vn.tls, &ph, &[&intruder], 5_000).await.unwrap();
    assert!(format!("{:?}", reply.verdicts[0]).contains("not a member"), "{reply:?}");

    // The sender itself is not a recipient of its own message.
    let own = receipt_envelope(&cn.signing, "CN", line_id, 100, &id, "CN");
    let reply = post_batch_once(&endpoint(&net, "PH"), cn.tls, &ph, &[&own], 5_000).await.unwrap();
    assert!(format!("{:?}", reply.verdicts[0]).contains("Rejected"), "{reply:?}");

    let m = message(&net, "PH", &id).await;
    assert_eq!(m["recipients"][0]["state"], "delivered");
    // The one receipt held is CN's node's own `decrypted`, sent when the message arrived.
    let kinds: Vec<(&str, &str)> = m["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["member"].as_str().unwrap(), r["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, [("CN", "decrypted")]);
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passed_deadline_escalates_at_the_recipient_and_alarms_the_sender_until_acknowledged() {
    let net = Net::start_with(&["PH", "CN"], fast).await;
    let line = open_line(&net.client("PH"), &["PH", "CN"], "ADMM-Plus").await;
    let id = send(&net.client("PH"), &line, "IMMEDIATE", "answer within two seconds").await;
    wait_delivered(&net.client("PH"), &id, WAIT).await;

    let escalation = wait_alarm(&net, "CN", "escalation", Some(&id)).await;
    assert_eq!(escalation["addressed_to"], json!(["principal"]));
    let unacked = wait_alarm(&net, "PH", "unacknowledged", Some(&id)).await;
    assert_eq!(unacked["member"], "CN");
    assert!(unacked["detail"].as_str().unwrap().contains("no acknowledgement from CN"), "{unacked}");
    // The escalation repeats until acknowledged.
    eventually(WAIT, "the escalation to repeat", || async {
        let a = wait_alarm(&net, "CN", "escalation", Some(&id)).await;
        (a["repeats"].as_u64().unwrap() >= 1).then_some(())
    })
    .await;
    // A message not requiring acknowledgement, and TEST traffic, raise nothing.
    let body = json!({"precedence": "FLASH", "class": "TEST", "subject": "test", "body": "t"});
    let (status, test) = post(&net, "PH", &format!("/api/v1/lines/{line}/messages"), body).await;
    assert_eq!(status, 201);

    let (status, _) = post(&net, "CN", &format!("/api/v1/messages/{id}/ack"), json!({})).await;
    assert_eq!(status, 200);
    for at in ["CN", "PH"] {
        eventually(WAIT, &format!("the alarms at {at} to clear"), || async {
            open_alarms(&net, at).await.is_empty().then_some(())
        })
        .await;
    }
    let all = get_list(&net.client("PH"), "/api/v1/alarms?all=true").await;
    let cleared = all.iter().find(|a| a["kind"] == "unacknowledged").unwrap();
    assert!(cleared["cleared_ms"].is_u64());
    assert!(cleared["clear_reason"].as_str().unwrap().contains("acknowledged by CN"), "{cleared}");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let test_id = test["id"].as_str().unwrap();
    assert!(all.iter().chain(open_alarms(&net, "CN").await.iter()).all(|a| a["message"] != test_id));
    assert!(open_alarms(&net, "PH").await.is_empty() && open_alarms(&net, "CN").await.is_empty());
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_that_pass_while_a_node_is_down_fire_when_it_returns() {
    let mut net = Net::start_with(&["PH", "CN"], fast).await;
    let line = open_line(&net.client("PH"), &["PH", "CN"], "ADMM-Plus").await;
    let id = send(&net.client("PH"), &line, "FLASH", "while you were down").await;
    wait_delivered(&net.client("PH"), &id, WAIT).await;
    net.stop_code("CN").await;
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    net.start_code("CN").await;
    let escalation = wait_alarm(&net, "CN", "escalation", Some(&id)).await;
    assert!(escalation["detail"].as_str().unwrap().contains("overdue"), "{escalation}");
    wait_alarm(&net, "PH", "unacknowledged", Some(&id)).await;

    // The sender's alarm survives its own restart, once, and still clears on the acknowledgement.
    net.stop_code("PH").await;
    net.start_code("PH").await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let open = open_alarms(&net, "PH").await;
    assert_eq!(open.iter().filter(|a| a["message"] == id.as_str()).count(), 1, "{open:?}");
    let (status, _) = post(&net, "CN", &format!("/api/v1/messages/{id}/ack"), json!({})).await;
    assert_eq!(status, 200);
    for at in ["CN", "PH"] {
        eventually(WAIT, &format!("the alarms at {at} to clear"), || async {
            open_alarms(&net, at).await.is_empty().then_some(())
        })
        .await;
    }
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flash_waits_for_a_principal_when_release_is_required() {
    let net = Net::start_with(&["PH", "CN"], |d| {
        d.link_test_interval_s = 0;
        d.release_required = true;
    })
    .await;
    let line = open_line(&net.client("PH"), &["PH", "CN"], "ADMM-Plus").await;
    let path = format!("/api/v1/lines/{line}/messages");
    let (status, held) = post(&net, "PH", &path, json!({"precedence": "FLASH", "subject": "held", "body": "b"})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{held}");
    assert_eq!(held["state"], "awaiting_release");
    let draft = held["id"].as_u64().unwrap();
    // A crisis message at lower precedence is held too; routine traffic is not.
    let (status, _) =
        post(&net, "PH", &path, json!({"precedence": "PRIORITY", "crisis": true, "subject": "c", "body": "b"})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = post(&net, "PH", &path, json!({"precedence": "ROUTINE", "subject": "r", "body": "b"})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(get_list(&net.client("PH"), "/api/v1/drafts").await.len(), 2);

    let (status, v) = post(&net, "PH", &format!("/api/v1/drafts/{draft}/release"), json!({})).await;
    assert_eq!((status, v["error"].as_str()), (StatusCode::FORBIDDEN, Some("role")));
    let store = net.node("PH").state.store.clone();
    let token = adi_node::setup::add_operator(&*store, "minister", "principal").unwrap();
    let m = &net.state.members[net.index("PH")];
    let principal = adi_node::client::Client::new(&m.api_url, Some(token), None).unwrap();
    let (status, released) =
        principal.request(Method::POST, &format!("/api/v1/drafts/{draft}/release"), None).await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{released}");
    assert_eq!(released["released_by"], "minister");
    let id = released["id"].as_str().unwrap().to_string();
    let (status, _) = principal.request(Method::POST, &format!("/api/v1/drafts/{draft}/release"), None).await.unwrap();
    assert_eq!(status, StatusCode::CONFLICT);
    wait_delivered(&net.client("PH"), &id, WAIT).await;
    let at_cn = message(&net, "CN", &id).await;
    assert_eq!((at_cn["released_by"].as_str(), at_cn["subject"].as_str()), (Some("minister"), Some("held")));
    // A principal's own FLASH goes at once, released by that principal.
    let (status, own) = principal
        .request(Method::POST, &path, Some(&json!({"precedence": "FLASH", "subject": "mine", "body": "b"})))
        .await
        .unwrap();
    assert_eq!((status, own["released_by"].as_str()), (StatusCode::CREATED, Some("minister")));
    assert_eq!(get_list(&net.client("PH"), "/api/v1/drafts").await.len(), 1, "the crisis draft still waits");
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_release_required_a_duty_officers_flash_goes_at_once() {
    let net = Net::start_with(&["PH", "CN"], no_link_tests).await;
    let line = open_line(&net.client("PH"), &["PH", "CN"], "ADMM-Plus").await;
    let (status, m) = post(
        &net,
        "PH",
        &format!("/api/v1/lines/{line}/messages"),
        json!({"precedence": "FLASH", "subject": "s", "body": "b"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(m["released_by"].is_null());
    net.stop_all().await;
}

async fn link_to(net: &Net, at: &str, peer: &str) -> Value {
    get_list(&net.client(at), "/api/v1/links").await.into_iter().find(|l| l["member"] == peer).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_tests_show_health_and_a_cut_peer_raises_fault_or_severance_until_it_answers() {
    let mut net = Net::start_with(&["PH", "CN"], |d| d.link_test_interval_s = 1).await;
    open_line(&net.client("PH"), &["PH", "CN"], "ADMM-Plus").await;
    let healthy = eventually(WAIT, "a healthy link", || async {
        let l = link_to(&net, "PH", "CN").await;
        (l["state"] == "healthy").then_some(l)
    })
    .await;
    assert!(healthy["last_rtt_ms"].is_u64(), "{healthy}");

    net.stop_code("CN").await;
    let alarm = wait_alarm(&net, "PH", "link_no_answer", None).await;
    assert!(alarm["detail"].as_str().unwrap().contains("fault or severance?"), "{alarm}");
    assert_eq!(link_to(&net, "PH", "CN").await["state"], "failing");
    // Link tests are not operational traffic: no message lists them and no deadline alarm comes.
    assert!(open_alarms(&net, "PH").await.iter().all(|a| a["kind"] == "link_no_answer"));

    net.start_code("CN").await;
    eventually(WAIT, "the link alarm to clear", || async { open_alarms(&net, "PH").await.is_empty().then_some(()) })
        .await;
    assert_eq!(link_to(&net, "PH", "CN").await["state"], "healthy");
    // The stream tells of the peer's link only, not of this node's own answers to its tests.
    let events = read_stream(&net, "PH", Some(0), None, Duration::from_millis(500)).await;
    let link_events: Vec<&Value> = events.iter().filter(|e| e["kind"] == "link").collect();
    assert!(link_events.iter().any(|e| e["state"] == "failing"), "{link_events:?}");
    assert!(link_events.iter().all(|e| e["member"] == "CN"), "{link_events:?}");
    let all = get_list(&net.client("PH"), "/api/v1/alarms?all=true").await;
    assert!(all[0]["clear_reason"].as_str().unwrap().contains("answers again"), "{all:?}");
    let inbox = get_list(&net.client("CN"), "/api/v1/inbox").await;
    assert!(inbox.is_empty(), "link tests never show as messages: {inbox:?}");
    net.stop_all().await;
}

/// Reads `n` events from a node's stream, starting after `last`, and then checks that no other
/// event follows within `quiet`.
async fn read_events(net: &Net, at: &str, last: Option<u64>, n: usize, quiet: Duration) -> Vec<Value> {
    read_stream(net, at, last, Some(n), quiet).await
}

/// Reads a node's stream after `last` until it has been quiet for `quiet`; with `expect`, exactly
/// that many events must come.
async fn read_stream(net: &Net, at: &str, last: Option<u64>, expect: Option<usize>, quiet: Duration) -> Vec<Value> {
    let n = expect.unwrap_or(usize::MAX);
    let m = &net.state.members[net.index(at)];
    let host = m.api_url.trim_start_matches("http://").to_string();
    let tcp = tokio::net::TcpStream::connect(&host).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await.unwrap();
    let conn = tokio::spawn(conn);
    let mut req = hyper::Request::get("/api/v1/events")
        .header("host", &host)
        .header("authorization", format!("Bearer {}", m.token));
    if let Some(last) = last {
        req = req.header("last-event-id", last.to_string());
    }
    let response = sender.send_request(req.body(http_body_util::Empty::<bytes::Bytes>::new()).unwrap()).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut text = String::new();
    let mut events = Vec::new();
    let mut deadline = tokio::time::Instant::now() + WAIT;
    loop {
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) {
                events.push(serde_json::from_str::<Value>(data).unwrap());
            }
        }
        if events.len() == n || (expect.is_none() && !events.is_empty()) {
            deadline = tokio::time::Instant::now() + quiet;
        }
        assert!(events.len() <= n, "more events than expected: {events:?}");
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    text.push_str(std::str::from_utf8(d).unwrap());
                }
            }
            Ok(other) => panic!("the stream ended: {:?}", other.map(|r| r.map(|_| ()))),
            Err(_) if events.len() == n || expect.is_none() => break,
            Err(_) => panic!("only {} of {n} events arrived: {events:?}", events.len()),
        }
    }
    conn.abort();
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_client_that_reconnects_with_last_event_id_gets_exactly_what_it_missed() {
    let net = Net::start_with(&["PH", "CN"], no_link_tests).await;
    let line = open_line(&net.client("PH"), &["PH", "CN"], "ADMM-Plus").await;
    let first = send(&net.client("PH"), &line, "ROUTINE", "before").await;
    wait_delivered(&net.client("PH"), &first, WAIT).await;
    // The client sees the first message, remembers its id, and disconnects.
    let seen = read_events(&net, "CN", Some(0), 1, Duration::from_millis(300)).await;
    assert_eq!((seen[0]["kind"].as_str(), seen[0]["message"].as_str()), (Some("message"), Some(first.as_str())));
    let last = seen[0]["id"].as_u64().unwrap();

    let mut missed = Vec::new();
    for i in 0..3 {
        let id = send(&net.client("PH"), &line, "ROUTINE", &format!("missed {i}")).await;
        wait_delivered(&net.client("PH"), &id, WAIT).await;
        missed.push(id);
    }
    let events = read_events(&net, "CN", Some(last), 3, Duration::from_millis(800)).await;
    let got: Vec<&str> = events.iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert_eq!(got, missed.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(events.iter().all(|e| e["kind"] == "message"));
    let ids: Vec<u64> = events.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]) && ids[0] > last);
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_fell_too_far_behind_gets_a_gap_marker_then_what_is_kept() {
    let net = Net::init_with(&["PH", "CN"], no_link_tests);
    let config = net.config_path("CN");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("[limits]", "[limits]\nevents_retained_max = 2")).unwrap();
    let mut net = net;
    net.start_code("PH").await;
    net.start_code("CN").await;
    let line = open_line(&net.client("PH"), &["PH", "CN"], "ADMM-Plus").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = send(&net.client("PH"), &line, "ROUTINE", &format!("m{i}")).await;
        wait_delivered(&net.client("PH"), &id, WAIT).await;
        ids.push(id);
    }
    let events = read_events(&net, "CN", Some(1), 3, Duration::from_millis(500)).await;
    assert_eq!(events[0]["kind"], "gap", "{events:?}");
    assert!(events[0]["detail"].as_str().unwrap().contains("no longer kept"), "{events:?}");
    let kept: Vec<&str> = events[1..].iter().map(|e| e["message"].as_str().unwrap()).collect();
    assert_eq!(kept, vec![ids[3].as_str(), ids[4].as_str()]);
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_come_from_the_roster_unless_the_establishment_sets_its_own() {
    let net = Net::init_with(&["PH", "CN"], |d| {
        d.link_test_interval_s = 0;
        d.deadlines = None;
    });
    // The roster agrees FLASH in 7 minutes; CN's establishment sets its own 5 minutes.
    let roster_deadlines =
        "[deadlines]\nflash_s = 420\nimmediate_s = 1800\npriority_s = 10800\nroutine_s = 21600\n\n[[members]]";
    for code in ["PH", "CN"] {
        let path = net.member_dir(code).join("roster.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("[[members]]", roster_deadlines, 1)).unwrap();
    }
    let cn_config = net.config_path("CN");
    let text = std::fs::read_to_string(&cn_config).unwrap();
    let own =
        "[discipline.deadlines]\nflash_s = 300\nimmediate_s = 1800\npriority_s = 10800\nroutine_s = 21600\n\n[limits]";
    std::fs::write(&cn_config, text.replace("[limits]", own)).unwrap();
    let mut net = net;
    net.start_code("PH").await;
    net.start_code("CN").await;
    let line = open_line(&net.client("PH"), &["PH", "CN"], "ADMM-Plus").await;
    let from_ph = message(&net, "PH", &send(&net.client("PH"), &line, "FLASH", "roster").await).await;
    assert_eq!(from_ph["deadline_ms"].as_u64().unwrap() - from_ph["created_ms"].as_u64().unwrap(), 420_000);
    eventually(WAIT, "the line at CN", || async {
        net.client("CN").call(Method::GET, &format!("/api/v1/lines/{line}"), None).await.ok()
    })
    .await;
    let from_cn = message(&net, "CN", &send(&net.client("CN"), &line, "FLASH", "own").await).await;
    assert_eq!(from_cn["deadline_ms"].as_u64().unwrap() - from_cn["created_ms"].as_u64().unwrap(), 300_000);
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_delivered_again_after_it_was_acknowledged_does_not_escalate() {
    let net = Net::start_with(&["PH", "CN"], fast).await;
    let line = open_line(&net.client("PH"), &["PH", "CN"], "ADMM-Plus").await;
    let id = send(&net.client("PH"), &line, "FLASH", "answered at once").await;
    wait_delivered(&net.client("PH"), &id, WAIT).await;
    let (status, _) = post(&net, "CN", &format!("/api/v1/messages/{id}/ack"), json!({})).await;
    assert_eq!(status, 200);
    // The same envelope arrives again, as after a reply lost on the way back.
    let (_, bytes) = common::envelope(&net.client("PH"), &id).await;
    let ph = keys_towards(&net, "PH", "CN");
    let cn = MemberCode::parse("CN").unwrap();
    let reply = post_batch_once(&endpoint(&net, "CN"), ph.tls, &cn, &[&bytes], 5_000).await.unwrap();
    assert_eq!(reply.verdicts, vec![adi_wire::batch::Verdict::Duplicate]);
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    let all = get_list(&net.client("CN"), "/api/v1/alarms?all=true").await;
    assert!(all.is_empty(), "{all:?}");
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_envelope_that_cannot_be_decrypted_raises_an_alarm_at_both_ends() {
    let net = Net::start_with(&["PH", "CN"], no_link_tests).await;
    let ph = net.client("PH");
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let first = send(&ph, &line, "ROUTINE", "readable").await;
    wait_delivered(&ph, &first, WAIT).await;

    // PH's node holds an envelope whose ciphertext was damaged before it was signed, as a
    // faulty node would send it: validly signed, on the right line, and unreadable.
    let line_id = LineId::from_hex(&line).unwrap();
    let state = net.node("PH").state.clone();
    let (record, mls_state) = {
        let mut core = state.core();
        let payload = PayloadV1::decode(&serde_json::to_vec(&json!({"type": "link_test", "v": 1})).unwrap()).unwrap();
        let good = core.seal_unchecked(adi_node::clock::now_ms(), line_id, 4, payload).unwrap();
        let mut body = good.envelope.body().clone();
        let n = body.payload.len();
        body.payload[n - 5] ^= 0x55;
        let signing = adi_node::config::load_signing_key(&net.member_dir("PH").join("keys/signing.pem")).unwrap();
        let damaged = adi_core::Record { envelope: body.sign(&signing), ..good };
        (damaged, core.mls_delta().unwrap())
    };
    let hash = record.envelope.hash().to_hex();
    let batch = adi_core::WriteBatch { records: vec![record], mls_state: Some(mls_state), ..Default::default() };
    state.store.commit(batch).wait().await.unwrap();
    state.committed(&[MemberCode::parse("CN").unwrap()]);

    let at_cn = wait_alarm(&net, "CN", "undecryptable", Some(&hash)).await;
    assert!(at_cn["detail"].as_str().unwrap().contains("cannot be decrypted"), "{at_cn}");
    assert_eq!(at_cn["member"], "PH");
    let at_ph = wait_alarm(&net, "PH", "undecryptable", Some(&hash)).await;
    assert!(at_ph["detail"].as_str().unwrap().contains("CN could not decrypt"), "{at_ph}");
    // The line goes on: the next message is read. PH's store now holds the damaged envelope
    // where PH's core holds the one it sealed, so PH's next own envelope does not follow the
    // stored chain: the store refuses it, PH refuses writes for a moment and builds its core again
    // from the store, and then sends.
    let path = format!("/api/v1/lines/{line}/messages");
    let body = json!({"precedence": "ROUTINE", "subject": "still readable", "body": "body"});
    let next = eventually(WAIT, "PH to send again", || async {
        let (status, v) = ph.request(Method::POST, &path, Some(&body)).await.ok()?;
        (status == StatusCode::CREATED).then(|| v["id"].as_str().unwrap().to_string())
    })
    .await;
    wait_delivered(&ph, &next, WAIT).await;
    assert_eq!(message(&net, "CN", &next).await["subject"], "still readable");
    let all = ph.call(Method::GET, "/api/v1/alarms?all=true", None).await.unwrap();
    let storage = all.as_array().unwrap().iter().find(|a| a["kind"] == "storage");
    let storage = storage.unwrap_or_else(|| panic!("PH's store refused the envelope off its chain: {all}"));
    assert!(storage["detail"].as_str().unwrap().contains("does not follow its stored head"), "{storage}");
    net.stop_all().await;
}
