//! The operator API's OpenAPI document against its router, and the JSON shape of every refusal.
//!
//! The routes are read from the source of `adi_node::http::router`, checked against the router
//! itself (each one answers; none falls to the unknown-path or wrong-method answer), and each must
//! be an operation of the document with its method, and each operation a route: a route added
//! without documentation fails here. The console's page and its static files are not API
//! operations and are the only routes left out.
//!
//! Every refusal an extractor makes (a path or query parameter not of its type, a body that is
//! not JSON or not sent as JSON, a body over the limit) and a method the path does not take are
//! answered `{"error", "message"}` with a status the document lists for the operation.

mod common;

use std::collections::BTreeSet;

use adi_node::http::ApiDoc;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use utoipa::OpenApi;

use common::Net;

/// Routes of the router that are not operations of the API: the console's page (and the redirect
/// to it) and the files it loads.
const NOT_API: [&str; 5] = ["/", "/console", "/console/console.js", "/console/console.css", "/console/world.json"];

/// The methods a route of axum can be given.
const METHODS: [&str; 8] = ["get", "post", "put", "delete", "patch", "head", "options", "trace"];

/// The document, as JSON.
fn document() -> Value {
    serde_json::to_value(ApiDoc::openapi()).expect("the document serializes")
}

/// The text between the parenthesis that opens at `open` and the one that closes it.
fn balanced(text: &str, open: usize) -> &str {
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open + 1..open + i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses after {}", &text[open..]);
}

/// Every `.route("path", method(handler)...)` of `router()` in the source, as (METHOD, path).
fn routes_in_source() -> BTreeSet<(String, String)> {
    let source = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/http/mod.rs")).unwrap();
    let start = source.find("pub fn router(").expect("router() in http/mod.rs");
    let end = start + source[start..].find("\n}\n").expect("the end of router()");
    let body = &source[start..end];
    let mut out = BTreeSet::new();
    for (at, _) in body.match_indices(".route(") {
        let args = balanced(body, at + ".route".len());
        let path = args.split('"').nth(1).expect("a route's path is a string literal").to_string();
        let handlers = &args[args.find(',').expect("a route has a method router")..];
        let mut methods = 0;
        for (i, _) in handlers.match_indices('(') {
            let name = handlers[..i].rsplit(|c: char| !(c.is_alphanumeric() || c == '_')).next().unwrap_or_default();
            if METHODS.contains(&name) {
                out.insert((name.to_uppercase(), path.clone()));
                methods += 1;
            }
        }
        assert!(methods > 0, "no method found for route {path}: {args}");
    }
    assert!(out.len() > 40, "the routes were not found in router(): {out:?}");
    out
}

/// Every operation of the document, as (METHOD, path).
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, _) in item.as_object().expect("a path item").iter().filter(|(m, _)| METHODS.contains(&m.as_str()))
        {
            out.insert((method.to_uppercase(), path.clone()));
        }
    }
    out
}

/// A path with each `{parameter}` filled in.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(
            |s| if s.starts_with('{') { "0011223344556677889900112233445566778899001122334455667788990011" } else { s },
        )
        .collect::<Vec<_>>()
        .join("/")
}

/// One request through a router: the status, the Content-Type and the body.
async fn send(app: &Router, req: Request<Body>) -> (StatusCode, String, Vec<u8>) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let content_type =
        resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, content_type, bytes)
}

#[test]
fn every_route_is_an_operation_of_the_document_and_every_operation_a_route() {
    let doc = document();
    let routes = routes_in_source();
    let api: BTreeSet<(String, String)> =
        routes.iter().filter(|(_, path)| !NOT_API.contains(&path.as_str())).cloned().collect();
    let left_out: Vec<&(String, String)> = routes.iter().filter(|r| !api.contains(r)).collect();
    assert_eq!(left_out.len(), NOT_API.len(), "the routes left out are not those of NOT_API: {left_out:?}");
    let operations = documented(&doc);
    let undocumented: Vec<_> = api.difference(&operations).collect();
    assert!(undocumented.is_empty(), "routes missing from the OpenAPI document: {undocumented:?}");
    let stale: Vec<_> = operations.difference(&api).collect();
    assert!(stale.is_empty(), "operations of the document that are no route: {stale:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_read_from_the_source_is_a_route_of_the_router() {
    let mut net = Net::init(&["PH", "CN"]);
    net.start_code("PH").await;
    let app = adi_node::http::router(net.node("PH").state.clone());
    for (method, path) in routes_in_source() {
        let uri = concrete(&path);
        let req = Request::builder().method(method.as_str()).uri(&uri).body(Body::empty()).unwrap();
        let (status, _, body) = send(&app, req).await;
        let code = serde_json::from_slice::<Value>(&body).ok().map(|v| v["error"].clone()).unwrap_or(Value::Null);
        assert!(
            code != "not_found" && code != "method_not_allowed" && status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri} is not routed: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
    net.stop_all().await;
}

/// Whether a response of the document is the error body, as JSON.
fn is_error_body(response: &Value) -> bool {
    response["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/ErrorBody"
}

#[test]
fn every_operation_says_who_may_call_it_and_documents_its_refusals() {
    let doc = document();
    let schemes = doc["components"]["securitySchemes"].as_object().expect("security schemes");
    assert_eq!(schemes["bearer"]["scheme"], "bearer", "{schemes:?}");
    for (name, place, key) in [("session", "cookie", "adi_session"), ("csrf", "header", "X-CSRF-Token")] {
        assert_eq!((&schemes[name]["type"], &schemes[name]["in"]), (&json!("apiKey"), &json!(place)), "{name}");
        assert_eq!(schemes[name]["name"], key, "{name}");
    }
    let public = ["/healthz", "/api/v1/openapi.json", "/console/sign-in"];
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let what = format!("{} {path}", method.to_uppercase());
            assert!(
                ids.insert(op["operationId"].as_str().unwrap_or_default().to_string()),
                "{what}: operationId repeated"
            );
            assert!(!op["summary"].as_str().unwrap_or_default().is_empty(), "{what}: no summary");
            assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()), "{what}: no tag");
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.keys().any(|s| s.starts_with('2')), "{what}: no success documented");
            for (status, response) in responses {
                if !status.starts_with('2') {
                    assert!(is_error_body(response), "{what}: {status} is not the error body: {response}");
                }
                assert!(
                    !response["description"].as_str().unwrap_or_default().is_empty(),
                    "{what}: {status} says nothing"
                );
            }
            let security = op["security"].as_array().unwrap_or_else(|| panic!("{what}: no security"));
            let names: BTreeSet<&str> =
                security.iter().flat_map(|r| r.as_object().unwrap().keys().map(String::as_str)).collect();
            let has = |s: &str| responses.contains_key(s);
            // The listener's bound on requests without a valid credential, before any handler.
            assert!(responses["429"]["headers"].get("Retry-After").is_some(), "{what}: no 429 with Retry-After");
            if public.contains(&path.as_str()) {
                assert_eq!(security, &vec![json!({})], "{what} is served without a token");
                continue;
            }
            assert!(op["description"].as_str().unwrap_or_default().contains("Roles: "), "{what}: no roles");
            assert!(has("401"), "{what}: no 401");
            if path.starts_with("/api/") {
                assert!(security.contains(&json!({"bearer": []})), "{what}: no bearer token: {security:?}");
                let session = if method == "get" { json!({"session": []}) } else { json!({"session": [], "csrf": []}) };
                assert!(security.contains(&session), "{what}: not by a console session as it must: {security:?}");
            }
            if method != "get" && names.contains("csrf") {
                assert!(has("403"), "{what}: no 403 for the CSRF token");
            }
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            if params.iter().any(|p| p["in"] == "path") {
                assert!(has("400") && has("404"), "{what}: a path parameter without 400 and 404");
            }
            if params.iter().any(|p| p["in"] == "query") {
                assert!(has("400"), "{what}: a query without 400");
            }
            if op.get("requestBody").is_some() {
                assert!(has("400") && has("413") && has("415"), "{what}: a body without 400, 413 and 415");
            }
        }
    }
    // Every schema referred to is in the document.
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for (at, _) in text.match_indices("#/components/schemas/") {
        let name: String = text[at + "#/components/schemas/".len()..].chars().take_while(|c| *c != '"').collect();
        assert!(schemas.contains_key(&name), "{name} is referred to and not in the document");
    }
}

/// Lists bounded by the roster (or by the kinds the node knows, or the proposals it keeps), and
/// the roster's chain, which is checked whole: whole, not paged.
const WHOLE_LISTS: [&str; 5] =
    ["/api/v1/peers", "/api/v1/links", "/api/v1/schemas", "/api/v1/roster/versions", "/api/v1/roster/proposals"];

/// Every list the API answers pages: it takes `limit` and a cursor, documents the `Link` header
/// of its next page, the 400 `bad_limit` and `bad_cursor`, and says how it pages; those the roster
/// bounds say that they are whole.
#[test]
fn every_list_pages_or_says_that_it_is_whole() {
    let doc = document();
    let mut paged = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(op) = item.get("get") else { continue };
        let ok = &op["responses"]["200"];
        // Its words, whatever the lines they were written on.
        let description =
            op["description"].as_str().unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ");
        if WHOLE_LISTS.contains(&path.as_str()) {
            assert!(description.contains("whole and does not page"), "GET {path} does not say it is whole");
            assert!(ok["headers"].get("Link").is_none(), "GET {path} is whole but documents a Link");
            continue;
        }
        if ok["content"]["application/json"]["schema"]["type"] != "array" {
            continue;
        }
        paged.insert(path.clone());
        let query: Vec<&str> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "query")
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(query.contains(&"limit"), "GET {path}: no limit: {query:?}");
        assert!(query.contains(&"after") != query.contains(&"before"), "GET {path}: no cursor, or two: {query:?}");
        let link = ok["headers"]["Link"]["description"].as_str().unwrap_or_default();
        assert!(link.contains("rel=\"next\""), "GET {path}: no Link to the next page documented: {ok}");
        let bad = op["responses"]["400"]["description"].as_str().unwrap_or_default();
        assert!(bad.contains("`bad_limit`") && bad.contains("`bad_cursor`"), "GET {path}: 400 says {bad:?}");
        for words in ["Pages of `limit`", "`Link` header names the next page", "the list is complete"] {
            assert!(description.contains(words), "GET {path}: the description does not say how it pages");
        }
    }
    let expected = [
        "/api/v1/alarms",
        "/api/v1/audit",
        "/api/v1/drafts",
        "/api/v1/evidence",
        "/api/v1/inbox",
        "/api/v1/lines",
        "/api/v1/lines/{line}/checkpoints",
        "/api/v1/lines/{line}/decisions",
        "/api/v1/lines/{line}/messages",
        "/api/v1/messages/{id}/translations",
    ];
    assert_eq!(paged, expected.iter().map(|p| p.to_string()).collect(), "the lists that page");
}

/// A network of PH and CN, PH's router and its duty officer's bearer token.
async fn start() -> (Net, Router, String) {
    let net = Net::start(&["PH", "CN"]).await;
    let app = adi_node::http::router(net.node("PH").state.clone());
    let bearer = format!("Bearer {}", net.state.members[net.index("PH")].token);
    (net, app, bearer)
}

/// Sends a request and checks the answer: `status`, JSON, and `{"error": code, "message": ...}`,
/// with a status the document lists for the operation (the request's method on `operation`)
/// unless the path or the method is none of the API's.
async fn refused(app: &Router, req: Request<Body>, operation: &str, status: StatusCode, code: &str) {
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let (got, content_type, body) = send(app, req).await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(got, status, "{method} {uri}: {text}");
    assert!(content_type.starts_with("application/json"), "{method} {uri}: Content-Type {content_type:?}: {text}");
    let v: Value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{method} {uri}: not JSON ({e}): {text}"));
    assert_eq!(v["error"], code, "{method} {uri}: {v}");
    assert!(!v["message"].as_str().unwrap_or_default().trim().is_empty(), "{method} {uri}: no message: {v}");
    assert!(v.as_object().unwrap().keys().all(|k| ["error", "message", "field"].contains(&k.as_str())), "{v}");
    if code != "method_not_allowed" && code != "not_found" {
        let doc = document();
        let op = &doc["paths"][operation][method.as_str().to_lowercase()];
        assert!(
            op["responses"].get(status.as_str()).is_some_and(is_error_body),
            "{method} {operation} answers {status}, which its document does not list"
        );
    }
}

fn get(uri: &str, bearer: &str) -> Request<Body> {
    Request::get(uri).header(header::AUTHORIZATION, bearer).body(Body::empty()).unwrap()
}

fn post(uri: &str, bearer: &str, content_type: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut req = Request::post(uri).header(header::AUTHORIZATION, bearer);
    if let Some(t) = content_type {
        req = req.header(header::CONTENT_TYPE, t);
    }
    req.body(body.into()).unwrap()
}

const JSON: Option<&str> = Some("application/json");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_parameter_not_of_its_type_is_400_bad_path() {
    let (net, app, bearer) = start().await;
    let b = bearer.as_str();
    refused(
        &app,
        post("/api/v1/drafts/xyz/release", b, None, ""),
        "/api/v1/drafts/{id}/release",
        StatusCode::BAD_REQUEST,
        "bad_path",
    )
    .await;
    refused(
        &app,
        post("/api/v1/alarms/-1/ack", b, None, ""),
        "/api/v1/alarms/{id}/ack",
        StatusCode::BAD_REQUEST,
        "bad_path",
    )
    .await;
    let too_big = "/api/v1/alarms/99999999999999999999999/ack";
    refused(&app, post(too_big, b, None, ""), "/api/v1/alarms/{id}/ack", StatusCode::BAD_REQUEST, "bad_path").await;
    // A segment that is not UTF-8 once decoded.
    refused(&app, get("/api/v1/messages/%FF", b), "/api/v1/messages/{id}", StatusCode::BAD_REQUEST, "bad_path").await;
    refused(
        &app,
        get("/api/v1/lines/%C0/messages", b),
        "/api/v1/lines/{line}/messages",
        StatusCode::BAD_REQUEST,
        "bad_path",
    )
    .await;
    let remove = "/api/v1/lines/00112233445566778899aabbccddeeff/members/%FE";
    let req = Request::delete(remove).header(header::AUTHORIZATION, b).body(Body::empty()).unwrap();
    refused(&app, req, "/api/v1/lines/{line}/members/{member}", StatusCode::BAD_REQUEST, "bad_path").await;
    // A string id that is no id is a resource that is not here.
    refused(
        &app,
        get("/api/v1/messages/not-hex", b),
        "/api/v1/messages/{id}",
        StatusCode::NOT_FOUND,
        "unknown_message",
    )
    .await;
    refused(&app, get("/api/v1/lines/xyz", b), "/api/v1/lines/{line}", StatusCode::NOT_FOUND, "unknown_line").await;
    refused(&app, get("/api/v1/decisions/xyz", b), "/api/v1/decisions/{id}", StatusCode::NOT_FOUND, "unknown_decision")
        .await;
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_parameter_not_of_its_type_or_unknown_is_400_bad_query() {
    let (net, app, bearer) = start().await;
    let b = bearer.as_str();
    for (uri, operation) in [
        ("/api/v1/inbox?limit=abc", "/api/v1/inbox"),
        ("/api/v1/inbox?limit=-1", "/api/v1/inbox"),
        ("/api/v1/inbox?page=2", "/api/v1/inbox"),
        ("/api/v1/lines/xyz/messages?limit=abc", "/api/v1/lines/{line}/messages"),
        ("/api/v1/alarms?all=maybe", "/api/v1/alarms"),
        ("/api/v1/alarms?limit=1e3", "/api/v1/alarms"),
        ("/api/v1/evidence?limit=abc", "/api/v1/evidence"),
        ("/api/v1/evidence?all=true", "/api/v1/evidence"),
        ("/api/v1/events?after=soon", "/api/v1/events"),
        ("/api/v1/lines/xyz/export?from_ms=yesterday", "/api/v1/lines/{line}/export"),
    ] {
        refused(&app, get(uri, b), operation, StatusCode::BAD_REQUEST, "bad_query").await;
    }
    // Of the right type but out of range: the handler's own refusal.
    refused(&app, get("/api/v1/inbox?limit=0", b), "/api/v1/inbox", StatusCode::BAD_REQUEST, "bad_limit").await;
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_json_or_not_sent_as_json_is_refused_in_the_error_shape() {
    let (net, app, bearer) = start().await;
    let b = bearer.as_str();
    let lines = "/api/v1/lines";
    let good = json!({"members": ["PH", "CN"], "scope": "ADMM-Plus"}).to_string();
    refused(&app, post(lines, b, JSON, "{\"members\": [\"PH\""), lines, StatusCode::BAD_REQUEST, "malformed_json")
        .await;
    refused(&app, post(lines, b, JSON, "[]"), lines, StatusCode::BAD_REQUEST, "malformed_json").await;
    refused(&app, post(lines, b, JSON, ""), lines, StatusCode::BAD_REQUEST, "malformed_json").await;
    refused(&app, post(lines, b, None, ""), lines, StatusCode::BAD_REQUEST, "malformed_json").await;
    refused(
        &app,
        post(lines, b, Some("text/plain"), good.clone()),
        lines,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let form = "application/x-www-form-urlencoded";
    refused(
        &app,
        post(lines, b, Some(form), good.clone()),
        lines,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    refused(
        &app,
        post(lines, b, None, good.clone()),
        lines,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let sign_in = "/console/sign-in";
    let req = Request::post(sign_in).header(header::CONTENT_TYPE, "text/plain").body(Body::from("{}")).unwrap();
    refused(&app, req, sign_in, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
    // A JSON type with parameters, or a structured +json type, is JSON.
    let (status, _, body) = send(&app, post(lines, b, Some("application/json; charset=utf-8"), good.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    let line: Value = serde_json::from_slice(&body).unwrap();
    let messages = format!("/api/v1/lines/{}/messages", line["id"].as_str().unwrap());
    let message = json!({"precedence": "ROUTINE", "subject": "s", "body": "b"}).to_string();
    let (status, _, body) = send(&app, post(&messages, b, Some("application/vnd.adi+json"), message)).await;
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    let id = serde_json::from_slice::<Value>(&body).unwrap()["id"].as_str().unwrap().to_string();

    // An answer's body may be left out, typed or not; what is there must be JSON.
    let seen = "/api/v1/messages/{id}/seen";
    let unknown = "/api/v1/messages/0011223344556677889900112233445566778899001122334455667788990011/seen";
    refused(&app, post(unknown, b, None, ""), seen, StatusCode::NOT_FOUND, "unknown_message").await;
    refused(&app, post(unknown, b, Some("text/plain"), " \n"), seen, StatusCode::NOT_FOUND, "unknown_message").await;
    refused(&app, post(unknown, b, JSON, "null"), seen, StatusCode::NOT_FOUND, "unknown_message").await;
    refused(&app, post(unknown, b, JSON, "{\"reason\": 5}"), seen, StatusCode::BAD_REQUEST, "malformed_json").await;
    refused(
        &app,
        post(unknown, b, Some("text/plain"), "reason"),
        seen,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    // PH's own message: the body was read, and the answer refused for what it is.
    let own = format!("/api/v1/messages/{id}/ack");
    refused(&app, post(&own, b, JSON, "{}"), "/api/v1/messages/{id}/ack", StatusCode::FORBIDDEN, "own_message").await;

    // Over the size limit, with or without a JSON type.
    let big = format!("{{\"reason\": \"{}\"}}", "x".repeat(200 * 1024));
    refused(&app, post(unknown, b, JSON, big.clone()), seen, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").await;
    refused(
        &app,
        post(unknown, b, Some("text/plain"), big.clone()),
        seen,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
    )
    .await;
    refused(&app, post(lines, b, JSON, big), lines, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").await;
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_method_the_path_does_not_take_is_405_in_the_error_shape() {
    let (net, app, bearer) = start().await;
    let b = bearer.as_str();
    for (method, uri) in [
        (Method::PUT, "/api/v1/lines"),
        (Method::DELETE, "/api/v1/messages/0011"),
        (Method::GET, "/api/v1/cpa"),
        (Method::POST, "/api/v1/openapi.json"),
        (Method::PATCH, "/console/session"),
    ] {
        let req =
            Request::builder().method(method).uri(uri).header(header::AUTHORIZATION, b).body(Body::empty()).unwrap();
        refused(&app, req, uri, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    }
    refused(&app, get("/api/v1/nothing", b), "/api/v1/nothing", StatusCode::NOT_FOUND, "not_found").await;
    net.stop_all().await;
}

/// The `data:` lines of an event stream that arrive within `within`.
async fn stream_data(app: &Router, req: Request<Body>, within: std::time::Duration) -> Vec<String> {
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = resp.into_body();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + within;
    while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, body.frame()).await {
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
    text.lines().filter(|l| l.starts_with("data:")).map(String::from).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_id_past_any_event_starts_a_quiet_stream() {
    let (net, app, bearer) = start().await;
    let b = bearer.as_str();
    let lines = "/api/v1/lines";
    let req = post(lines, b, JSON, json!({"members": ["PH", "CN"], "scope": "ADMM-Plus"}).to_string());
    let (status, _, body) = send(&app, req).await;
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    let line = serde_json::from_slice::<Value>(&body).unwrap()["id"].as_str().unwrap().to_string();
    let message = json!({"precedence": "ROUTINE", "subject": "s", "body": "b"}).to_string();
    let (status, _, body) = send(&app, post(&format!("{lines}/{line}/messages"), b, JSON, message)).await;
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    // The message's delivery is an event.
    let wait = std::time::Duration::from_millis(500);
    let mut tries = 0;
    while stream_data(&app, get("/api/v1/events?after=0", b), wait).await.is_empty() {
        tries += 1;
        assert!(tries < 20, "no event from the start");
    }
    // The largest ids there are: neither a panic nor the history again.
    let max = u64::MAX;
    assert_eq!(stream_data(&app, get(&format!("/api/v1/events?after={max}"), b), wait).await, Vec::<String>::new());
    let req = Request::get("/api/v1/events")
        .header(header::AUTHORIZATION, b)
        .header("last-event-id", max.to_string())
        .body(Body::empty())
        .unwrap();
    assert_eq!(stream_data(&app, req, wait).await, Vec::<String>::new());
    let after = i64::MAX;
    assert_eq!(stream_data(&app, get(&format!("/api/v1/events?after={after}"), b), wait).await, Vec::<String>::new());
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_deadline_past_any_time_the_node_keeps_is_refused_and_the_node_keeps_taking_writes() {
    let (net, app, bearer) = start().await;
    let b = bearer.as_str();
    let req = post("/api/v1/lines", b, JSON, json!({"members": ["PH", "CN"], "scope": "ADMM-Plus"}).to_string());
    let (status, _, body) = send(&app, req).await;
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    let line = serde_json::from_slice::<Value>(&body).unwrap()["id"].as_str().unwrap().to_string();
    let decisions = format!("/api/v1/lines/{line}/decisions");
    // Seconds whose milliseconds overflow, milliseconds past SQLite's integers, and a day past the
    // longest deadline a decision may ask for.
    let longest = adi_core::Limits::default().decision_deadline_s_max;
    for deadline in [u64::MAX, u64::MAX / 1000 + 1, i64::MAX as u64, i64::MAX as u64 / 1000, longest + 86_400] {
        let req = post(&decisions, b, JSON, json!({"text": "t", "deadline_s": deadline}).to_string());
        refused(&app, req, "/api/v1/lines/{line}/decisions", StatusCode::BAD_REQUEST, "bad_deadline").await;
    }
    // The longest deadline is taken.
    let req = post(&decisions, b, JSON, json!({"text": "t", "deadline_s": longest}).to_string());
    let (status, _, body) = send(&app, req).await;
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    let (status, _, body) = send(&app, get("/healthz", b)).await;
    let health: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, &health["status"]), (StatusCode::OK, &json!("ok")), "{health}");
    net.stop_all().await;
}
