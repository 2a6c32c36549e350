//! Mutual decisions between real nodes: a decision is final only when every required party has
//! concurred over its exact text; a changed text is a new version that needs concurrence again;
//! and a final decision exports and verifies offline. Translations are records of their own.

mod common;

use std::time::Duration;

use common::{eventually, open_line, Net};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

async fn post(net: &Net, at: &str, path: &str, body: Value) -> (StatusCode, Value) {
    net.client(at).request(Method::POST, path, Some(&body)).await.unwrap()
}

/// Waits until `at` sees the decision in `state` with `missing`.
async fn wait_state(net: &Net, at: &str, id: &str, state: &str, missing: &[&str]) -> Value {
    let c = net.client(at);
    eventually(WAIT, &format!("decision {id} {state} at {at}"), || async {
        let d = c.call(Method::GET, &format!("/api/v1/decisions/{id}"), None).await.ok()?;
        (d["state"] == state && d["missing"] == json!(missing)).then_some(d)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_is_final_only_when_every_party_concurred_over_its_exact_text() {
    let net = Net::start_with(&["PH", "CN", "VN"], |d| d.link_test_interval_s = 0).await;
    let line = open_line(&net.client("PH"), &["PH", "CN", "VN"], "ADMM-Plus").await;
    let decisions = format!("/api/v1/lines/{line}/decisions");

    // Bad input changes nothing.
    let (status, v) = post(&net, "PH", &decisions, json!({"text": "  "})).await;
    assert_eq!((status, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("empty_text")));
    let (status, v) = post(&net, "PH", &decisions, json!({"text": "t", "parties": ["PH", "ID"]})).await;
    assert_eq!((status, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("party_not_on_line")));

    let text = "Both navies keep 5 nautical miles apart in the area until 1 December.";
    let (status, first) = post(&net, "PH", &decisions, json!({"text": text})).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let first_id = first["id"].as_str().unwrap().to_string();
    assert_eq!(first["parties"], json!(["CN", "PH", "VN"]));
    assert_eq!((first["state"].as_str(), &first["missing"]), (Some("open"), &json!(["CN", "VN"])));

    // CN concurs; one concurrence is still missing, so it is not final anywhere.
    wait_state(&net, "CN", &first_id, "open", &["CN", "VN"]).await;
    let (status, v) = post(&net, "CN", &format!("/api/v1/decisions/{first_id}/concur"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = post(&net, "CN", &format!("/api/v1/decisions/{first_id}/concur"), json!({})).await;
    assert_eq!((status, v["error"].as_str()), (StatusCode::CONFLICT, Some("already_answered")));
    wait_state(&net, "PH", &first_id, "open", &["VN"]).await;
    // VN read another text: its concurrence is refused, and nothing is sent.
    let (status, v) =
        post(&net, "VN", &format!("/api/v1/decisions/{first_id}/concur"), json!({"text_sha256": "00".repeat(32)}))
            .await;
    assert_eq!((status, v["error"].as_str()), (StatusCode::CONFLICT, Some("text_changed")));
    let (status, v) = post(&net, "VN", &format!("/api/v1/decisions/{first_id}/decline"), json!({})).await;
    assert_eq!((status, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("reason_required")));

    // PH changes the text: a new version naming the old one. CN's concurrence was over the old
    // text and does not count for the new one.
    let changed = "Both navies keep 3 nautical miles apart in the area until 1 December.";
    let (status, second) = post(&net, "PH", &decisions, json!({"text": changed, "supersedes": first_id})).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    let second_id = second["id"].as_str().unwrap().to_string();
    assert_eq!(second["supersedes"], first_id.as_str());
    assert_eq!(second["missing"], json!(["CN", "VN"]));
    // A proposal to replace a decision changes nothing until it is final itself: the first stays
    // open, and still the one its parties answer.
    let c = net.client("VN");
    eventually(WAIT, "the new version at VN", || async {
        c.call(Method::GET, &format!("/api/v1/decisions/{second_id}"), None).await.ok()
    })
    .await;
    assert_eq!(wait_state(&net, "VN", &first_id, "open", &["VN"]).await["superseded_by"], Value::Null);

    for at in ["CN", "VN"] {
        let c = net.client(at);
        eventually(WAIT, &format!("the new version at {at}"), || async {
            c.call(Method::GET, &format!("/api/v1/decisions/{second_id}"), None).await.ok()
        })
        .await;
        let read = hex::encode(sha2_of(changed));
        let (status, v) =
            post(&net, at, &format!("/api/v1/decisions/{second_id}/concur"), json!({"text_sha256": read})).await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    for at in ["PH", "CN", "VN"] {
        let d = wait_state(&net, at, &second_id, "final", &[]).await;
        assert_eq!(d["text"], changed);
        assert!(d["answers"].as_array().unwrap().iter().all(|a| a["over_this_text"] == true));
    }
    // Now that the new version is final, it replaces the first, which takes no answer any more.
    for at in ["PH", "CN", "VN"] {
        let d = wait_state(&net, at, &first_id, "superseded", &["VN"]).await;
        assert_eq!(d["superseded_by"], second_id.as_str());
    }
    let (status, v) = post(&net, "VN", &format!("/api/v1/decisions/{first_id}/concur"), json!({})).await;
    assert_eq!((status, v["error"].as_str()), (StatusCode::CONFLICT, Some("superseded")));
    let listed = common::get_list(&net.client("VN"), &decisions).await;
    let states: Vec<&str> = listed.iter().map(|d| d["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["superseded", "final"]);

    // The final decision exports and verifies offline, with its parties' signed answers, and
    // the verifier gives every decision the state the node's API gives it.
    let v = net.client("CN").call(Method::GET, &format!("/api/v1/lines/{line}/export"), None).await.unwrap();
    let bundle: adi_record::bundle::Bundle = serde_json::from_value(v).unwrap();
    let report = adi_record::bundle::verify(&bundle);
    assert!(report.first_failure().is_none(), "{:?}", report.first_failure());
    let items: Vec<&str> = report.checks.iter().map(|c| c.item.as_str()).collect();
    assert!(items.contains(&format!("decision {second_id}: final").as_str()), "{items:?}");
    assert!(items.contains(&format!("decision {first_id}: superseded by {second_id}").as_str()), "{items:?}");
    same_as_the_api(&net, "CN", &decisions, &report).await;
    net.stop_all().await;
}

/// Every decision of a line has, in the verifier's report on a bundle, the state, replacement
/// and missing parties that `at`'s API gives it.
async fn same_as_the_api(net: &Net, at: &str, decisions: &str, report: &adi_record::bundle::Report) {
    let listed = common::get_list(&net.client(at), decisions).await;
    assert_eq!(listed.len(), report.decisions.len(), "{listed:?} / {:?}", report.decisions);
    for d in &listed {
        let id = d["id"].as_str().unwrap();
        let v = report.decisions.iter().find(|v| v.id == id).unwrap_or_else(|| panic!("{id} is not in the report"));
        assert_eq!(d["state"], v.state, "{id}");
        assert_eq!(d["superseded_by"].as_str(), v.superseded_by.as_deref(), "{id}");
        if v.state == "open" {
            assert_eq!(d["missing"], json!(v.missing), "{id}");
        }
    }
}

fn sha2_of(text: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_party_answers_and_a_decline_makes_it_declined() {
    let net = Net::start_with(&["PH", "CN", "VN"], |d| d.link_test_interval_s = 0).await;
    let line = open_line(&net.client("PH"), &["PH", "CN", "VN"], "ADMM-Plus").await;
    let (_, d) = post(
        &net,
        "PH",
        &format!("/api/v1/lines/{line}/decisions"),
        json!({"text": "Joint statement", "parties": ["PH", "CN"]}),
    )
    .await;
    let id = d["id"].as_str().unwrap().to_string();
    wait_state(&net, "VN", &id, "open", &["CN"]).await;
    let (status, v) = post(&net, "VN", &format!("/api/v1/decisions/{id}/concur"), json!({})).await;
    assert_eq!((status, v["error"].as_str()), (StatusCode::FORBIDDEN, Some("not_a_party")));
    // CN answers only once the decision has reached it: reaching VN says nothing of CN.
    wait_state(&net, "CN", &id, "open", &["CN"]).await;
    let (status, _) =
        post(&net, "CN", &format!("/api/v1/decisions/{id}/decline"), json!({"reason": "wording not agreed"})).await;
    assert_eq!(status, StatusCode::OK);
    let d = wait_state(&net, "PH", &id, "declined", &["CN"]).await;
    assert_eq!(d["answers"][0]["reason"], "wording not agreed");
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proposer_outside_the_parties_exports_a_record_that_verifies_as_the_api_reads_it() {
    let net = Net::start_with(&["PH", "CN", "VN"], |d| d.link_test_interval_s = 0).await;
    let line = open_line(&net.client("PH"), &["PH", "CN", "VN"], "ADMM-Plus").await;
    let decisions = format!("/api/v1/lines/{line}/decisions");
    // PH proposes an agreement between CN and VN, and is not a party to it.
    let (status, d) =
        post(&net, "PH", &decisions, json!({"text": "Hotline drill on Monday", "parties": ["CN", "VN"]})).await;
    assert_eq!(status, StatusCode::CREATED, "{d}");
    let id = d["id"].as_str().unwrap().to_string();
    assert_eq!((d["state"].as_str(), &d["missing"]), (Some("open"), &json!(["CN", "VN"])));
    // VN concurs, then CN declines, then CN concurs after all: its latest signed answer counts.
    wait_state(&net, "VN", &id, "open", &["CN", "VN"]).await;
    let (status, _) = post(&net, "VN", &format!("/api/v1/decisions/{id}/concur"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    wait_state(&net, "CN", &id, "open", &["CN"]).await;
    let (status, _) =
        post(&net, "CN", &format!("/api/v1/decisions/{id}/decline"), json!({"reason": "not Monday"})).await;
    assert_eq!(status, StatusCode::OK);
    let d = wait_state(&net, "PH", &id, "declined", &["CN"]).await;
    assert_eq!(d["answers"].as_array().unwrap().len(), 2, "{d}");

    let v = net.client("PH").call(Method::GET, &format!("/api/v1/lines/{line}/export"), None).await.unwrap();
    let bundle: adi_record::bundle::Bundle = serde_json::from_value(v).unwrap();
    let report = adi_record::bundle::verify(&bundle);
    assert!(report.first_failure().is_none(), "{:?}", report.first_failure());
    assert_eq!(report.decisions.len(), 1);
    assert_eq!(report.decisions[0].state, "declined");
    same_as_the_api(&net, "PH", &decisions, &report).await;

    // The order of envelopes in the file is not signed: reversed, the verdicts are the same.
    let mut reordered = bundle.clone();
    reordered.envelopes.reverse();
    let again = adi_record::bundle::verify(&reordered);
    assert!(again.first_failure().is_none(), "{:?}", again.first_failure());
    assert_eq!(again.decisions, report.decisions);
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_translation_is_a_record_of_its_own_and_its_review_another() {
    let net = Net::start_with(&["PH", "CN"], |d| d.link_test_interval_s = 0).await;
    let ph = net.client("PH");
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let id = common::send(&ph, &line, "IMMEDIATE", "Vessels in close quarters").await;
    common::wait_delivered(&ph, &id, WAIT).await;

    // At CN, a translator attaches a translation; a duty officer may not, and nobody reviews
    // their own.
    let store = &*net.node("CN").state.store;
    let api = net.client("CN");
    let translator = adi_node::setup::add_operator(store, "li-translator", "translator").unwrap();
    let principal = adi_node::setup::add_operator(store, "wang-principal", "principal").unwrap();
    let base = net.node("CN").api_addr;
    let as_op =
        |token: &str| adi_node::client::Client::new(&format!("http://{base}"), Some(token.to_string()), None).unwrap();
    let path = format!("/api/v1/messages/{id}/translations");
    let body = json!({"language": "zh-Hans", "text": "船只近距离相遇"});
    let (status, v) = api.request(Method::POST, &path, Some(&body)).await.unwrap();
    assert_eq!((status, v["error"].as_str()), (StatusCode::FORBIDDEN, Some("role")));
    let (status, v) =
        as_op(&translator).request(Method::POST, &path, Some(&json!({"language": "??", "text": "x"}))).await.unwrap();
    assert_eq!((status, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_language")));
    let (status, t) = as_op(&translator).request(Method::POST, &path, Some(&body)).await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{t}");
    assert_eq!((t["state"].as_str(), t["translator"].as_str()), (Some("unreviewed"), Some("li-translator")));
    let review = format!("/api/v1/translations/{}/review", t["id"].as_str().unwrap());
    let (status, v) = as_op(&translator).request(Method::POST, &review, None).await.unwrap();
    assert_eq!((status, v["error"].as_str()), (StatusCode::CONFLICT, Some("own_translation")));
    let (status, r) = as_op(&principal).request(Method::POST, &review, None).await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{r}");
    assert_eq!((r["state"].as_str(), r["reviewed_by"].as_str()), (Some("reviewed"), Some("wang-principal")));
    assert_eq!(r["revises"], t["id"]);

    // Both travel to PH as records of their own; the original is unchanged.
    let at_ph = eventually(WAIT, "both translations at PH", || async {
        let list = common::get_list(&ph, &path).await;
        (list.len() == 2).then_some(list)
    })
    .await;
    assert_eq!(at_ph[0]["state"], "unreviewed");
    assert_eq!(at_ph[1]["state"], "reviewed");
    assert!(at_ph.iter().all(|t| t["original"] == id.as_str() && t["member"] == "CN" && t["text"] == "船只近距离相遇"));
    let original = ph.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.unwrap();
    assert_eq!(original["subject"], "Vessels in close quarters");
    net.stop_all().await;
}
