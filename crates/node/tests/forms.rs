//! Structured messages end to end: every kind from `docs/examples/` is sent through the API,
//! carried encrypted over federation, stored, read back after a restart, exported and verified
//! offline, unchanged at every step; bad reports are refused with the field named and nothing is
//! sent.

mod common;

use std::time::Duration;

use adi_wire::content::SignedContent;
use adi_wire::payload::PayloadV1;
use common::{eventually, get_list, open_line, wait_delivered, Net};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

/// The names of the examples in `docs/examples/`.
fn names() -> impl Iterator<Item = &'static str> {
    adi_forms::schema::EXAMPLES.iter().map(|(name, _)| *name)
}

fn example(name: &str) -> Value {
    adi_forms::schema::example(name).unwrap()
}

/// What a report is once checked: signal meanings filled in from the code.
fn as_sent(value: &Value) -> Value {
    adi_forms::check(value).unwrap().to_value()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_kind_round_trips_through_api_federation_storage_export_and_verify_unchanged() {
    let mut net = Net::start(&["PH", "CN"]).await;
    let (ph, cn) = (net.client("PH"), net.client("CN"));
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let tags = ["maritime-security", "cyber-security", "hadr", "hadr", "peacekeeping-operations", "", ""];
    let mut sent = Vec::new();
    for (name, tag) in names().zip(tags) {
        let mut form = example(name);
        if name == "call-answer" {
            // It answers the call request sent just before it.
            form["request"] = sent.last().map(|v: &Value| v["id"].clone()).unwrap();
        }
        let mut req = json!({"precedence": "IMMEDIATE", "form": form.clone()});
        if !tag.is_empty() {
            req["ewg"] = json!(tag);
        }
        let (status, v) =
            ph.request(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&req)).await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{name}: {v}");
        assert_eq!(v["form"], as_sent(&form), "{name}");
        assert_eq!(v["ewg"], if tag.is_empty() { Value::Null } else { json!(tag) }, "{name}");
        let form = adi_forms::check(&v["form"]).unwrap();
        assert_eq!(v["subject"], adi_forms::summary(&form), "{name}: the subject defaults to the summary");
        assert_eq!(v["form_text"], adi_forms::render(&form), "{name}");
        sent.push(v);
    }
    // The sea encounter's computed approach is offered beside the report, not in it.
    assert_eq!(sent[0]["approaches"].as_array().unwrap().len(), 1);
    assert_eq!(sent[0]["approaches"][0]["approach"]["situation"], "crossing-give-way");
    assert!(sent[1]["approaches"].as_array().unwrap().is_empty());

    for v in &sent {
        wait_delivered(&ph, v["id"].as_str().unwrap(), Duration::from_secs(30)).await;
    }
    let same = |a: &Value, b: &Value, what: &str| {
        for key in ["id", "subject", "body", "form", "form_text", "ewg", "approaches", "precedence"] {
            assert_eq!(a[key], b[key], "{what}: {key} differs");
        }
    };
    for v in &sent {
        let id = v["id"].as_str().unwrap();
        let got = cn.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.unwrap();
        same(v, &got, "at CN");
    }
    // Through CN's store: read back after a restart.
    net.stop_code("CN").await;
    net.start_code("CN").await;
    let cn = net.client("CN");
    let listed = get_list(&cn, &format!("/api/v1/lines/{line}/messages")).await;
    for v in &sent {
        let got = listed.iter().find(|m| m["id"] == v["id"]).expect("listed after a restart");
        same(v, got, "at CN after a restart");
    }

    // Exported by CN and verified offline: the signed content holds each report exactly, and the
    // readable text beside it is its rendering.
    let bundle_json = cn.call(Method::GET, &format!("/api/v1/lines/{line}/export"), None).await.unwrap();
    let bundle: adi_record::bundle::Bundle = serde_json::from_value(bundle_json).unwrap();
    let report = adi_record::bundle::verify(&bundle);
    assert!(report.first_failure().is_none(), "{:?}", report.first_failure());
    let mut found = 0;
    for e in &bundle.envelopes {
        let Some(content) = &e.content else { continue };
        let signed = SignedContent::decode(&hex::decode(content).unwrap()).unwrap();
        let Ok(PayloadV1::Message { form: Some(form), ewg, .. }) = PayloadV1::decode(&signed.content) else { continue };
        let v = sent.iter().find(|v| v["form"] == form).expect("an exported report is one that was sent");
        assert_eq!(ewg.map(Value::from).unwrap_or(Value::Null), v["ewg"]);
        assert_eq!(e.form_text.as_deref(), v["form_text"].as_str());
        found += 1;
    }
    assert_eq!(found, adi_forms::schema::EXAMPLES.len());
    // A readable text changed in the bundle is caught.
    let mut changed = bundle.clone();
    let e = changed.envelopes.iter_mut().find(|e| e.form_text.is_some()).unwrap();
    e.form_text = Some(e.form_text.as_ref().unwrap().replace("0.80 nm", "8.00 nm").replace("C-295", "C-130"));
    let report = adi_record::bundle::verify(&changed);
    let failure = report.first_failure().expect("a changed text fails");
    assert!(failure.failure.as_deref().unwrap().contains("readable report text"), "{failure:?}");
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bad_report_is_refused_with_the_field_named_and_nothing_is_sent() {
    let net = Net::start(&["PH", "CN"]).await;
    let (ph, cn) = (net.client("PH"), net.client("CN"));
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let path = format!("/api/v1/lines/{line}/messages");
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit, &str); 6] = [
        (
            "encounter-at-sea",
            |v| v["reporting_unit"]["position"]["lat"] = json!(-90.5),
            "form.reporting_unit.position.lat",
        ),
        ("encounter-at-sea", |v| v["other_units"][0]["course_deg"] = json!(365), "form.other_units[0].course_deg"),
        ("encounter-at-sea", |v| v["signals"][0]["group"] = json!("ZZZ"), "form.signals[0].group"),
        (
            "air-encounter",
            |v| {
                v.as_object_mut().unwrap().remove("separation");
            },
            "form.separation",
        ),
        (
            "military-activity",
            |v| v["area"] = json!({"polygon": [{"lat": 7, "lon": 113}, {"lat": 8, "lon": 114}, {"lat": 7, "lon": 114}, {"lat": 8, "lon": 113}]}),
            "form.area.polygon",
        ),
        ("call-request", |v| v["v"] = json!(9), "form.v"),
    ];
    for (name, edit, field) in cases {
        let mut form = example(name);
        edit(&mut form);
        let (status, v) =
            ph.request(Method::POST, &path, Some(&json!({"precedence": "FLASH", "form": form}))).await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {v}");
        assert_eq!(v["error"], "bad_form", "{v}");
        assert_eq!(v["field"], field, "{v}");
        assert!(v["message"].as_str().unwrap().starts_with(field), "{v}");
    }
    let (status, v) = ph
        .request(Method::POST, &path, Some(&json!({"precedence": "ROUTINE", "subject": "s", "ewg": "astrology"})))
        .await
        .unwrap();
    assert_eq!(
        (status, v["error"].as_str(), v["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_ewg"), Some("ewg"))
    );
    // A free-text message still needs a subject.
    let (status, v) =
        ph.request(Method::POST, &path, Some(&json!({"precedence": "ROUTINE", "body": "b"}))).await.unwrap();
    assert_eq!((status, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("empty_subject")), "{v}");
    // Nothing was sent: PH holds no message on the line, and nothing reaches CN.
    assert!(get_list(&ph, &path).await.is_empty());
    let good = ph.call(Method::POST, &path, Some(&json!({"precedence": "ROUTINE", "subject": "after"}))).await.unwrap();
    wait_delivered(&ph, good["id"].as_str().unwrap(), Duration::from_secs(30)).await;
    let at_cn = eventually(Duration::from_secs(10), "CN to list the line", || async {
        let l = get_list(&cn, &path).await;
        (!l.is_empty()).then_some(l)
    })
    .await;
    assert_eq!(at_cn.len(), 1, "{at_cn:?}");
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_answer_must_answer_a_call_request_on_its_line() {
    let net = Net::start(&["PH", "CN", "VN"]).await;
    let ph = net.client("PH");
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let other = open_line(&ph, &["PH", "VN"], "ADMM").await;
    let send = |line: &str, form: Value| {
        let ph = ph.clone();
        let path = format!("/api/v1/lines/{line}/messages");
        async move { ph.request(Method::POST, &path, Some(&json!({"precedence": "PRIORITY", "form": form}))).await.unwrap() }
    };
    let (status, request) = send(&line, example("call-request")).await;
    assert_eq!(status, StatusCode::CREATED, "{request}");
    let text = common::send(&ph, &line, "ROUTINE", "not a request").await;
    let answer = |request: &str, answer: &str, time: Option<&str>| {
        let mut a = json!({"kind": "call-answer", "v": 1, "request": request, "answer": answer});
        if let Some(t) = time {
            a["time_utc"] = json!(t);
        }
        a
    };
    let id = request["id"].as_str().unwrap();
    let unknown = "ab".repeat(32);
    let cases = [
        (answer(&unknown, "decline", None), &line, "form.request", "no message"),
        (answer(&text, "decline", None), &line, "form.request", "is not a call request"),
        (
            answer(id, "accept", Some("2026-11-30T09:00:00Z")),
            &line,
            "form.time_utc",
            "is not one of the times proposed",
        ),
        (answer(id, "decline", None), &other, "form.request", "no message"),
    ];
    for (form, on, field, why) in cases {
        let (status, v) = send(on, form).await;
        assert_eq!((status, v["field"].as_str()), (StatusCode::BAD_REQUEST, Some(field)), "{v}");
        assert!(v["message"].as_str().unwrap().contains(why), "{v}");
    }
    // The second proposed time, written without seconds in the request, accepted with them.
    let (status, v) = send(&line, answer(id, "accept", Some("2026-11-30T10:00:00Z"))).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["subject"], "Call accepted for 2026-11-30T10:00:00Z");
    let listed = get_list(&ph, &format!("/api/v1/lines/{line}/messages")).await;
    assert_eq!(listed.len(), 3, "the request, the text and the accepted answer only");
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_and_the_approach_helper_are_served() {
    let net = Net::start(&["PH"]).await;
    let ph = net.client("PH");
    let schemas = ph.call(Method::GET, "/api/v1/schemas", None).await.unwrap();
    assert_eq!(schemas, adi_forms::schemas());
    for kind in adi_forms::KINDS {
        assert_eq!(schemas["kinds"][kind]["properties"]["kind"]["const"], kind);
    }
    let track = |lat: f64, lon: f64, course: f64, speed: f64| json!({"position": {"lat": lat, "lon": lon}, "course_deg": course, "speed_kn": speed});
    // Reciprocal courses on one meridian, 6 nm apart at 20 knots closing: head-on in 18 minutes.
    let v = ph
        .call(
            Method::POST,
            "/api/v1/cpa",
            Some(&json!({"own": track(0.0, 0.0, 0.0, 10.0), "other": track(0.1, 0.0, 180.0, 10.0)})),
        )
        .await
        .unwrap();
    assert_eq!(v["approach"]["situation"], "head-on");
    assert_eq!(v["rule"], 14);
    assert!((v["approach"]["tcpa_min"].as_f64().unwrap() - 18.0).abs() < 0.01, "{v}");
    assert!(v["approach"]["cpa_nm"].as_f64().unwrap() < 0.01, "{v}");
    let (status, v) = ph
        .request(
            Method::POST,
            "/api/v1/cpa",
            Some(&json!({"own": track(0.0, 0.0, 400.0, 10.0), "other": track(0.1, 0.0, 180.0, 10.0)})),
        )
        .await
        .unwrap();
    assert_eq!((status, v["field"].as_str()), (StatusCode::BAD_REQUEST, Some("own.course_deg")), "{v}");
    // The basemap ships inside the binary.
    let (status, world) = ph.request(Method::GET, "/console/world.json", None).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(world["type"], "Topology");
    assert!(world["objects"]["countries"]["geometries"].as_array().unwrap().len() > 200);
    net.stop_all().await;
}
