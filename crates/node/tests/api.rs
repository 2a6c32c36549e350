//! The operator API's handling of bad input, called through its router without a socket.
//!
//! Each test starts a real network (PH and VN are ASEAN members, CN is a Plus member), sends
//! requests to PH's router, and checks the exact status, the error code of the
//! `{"error", "message"}` body, and that the refused request changed nothing.

mod common;

use adi_node::setup::add_operator;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use common::Net;

/// A well-formed line id that no node holds.
const UNKNOWN_LINE: &str = "00112233445566778899aabbccddeeff";
/// A well-formed message id that no node holds.
const UNKNOWN_MESSAGE: &str = "0011223344556677889900112233445566778899001122334455667788990011";

/// One node's API router and its duty officer's token.
struct Api {
    app: Router,
    token: String,
}

impl Api {
    fn of(net: &Net, code: &str) -> Api {
        let token = net.state.members[net.index(code)].token.clone();
        Api { app: adi_node::http::router(net.node(code).state.clone()), token }
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        check(&self.app, Method::GET, path, Some(&self.bearer()), None).await
    }

    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.post_raw(path, body.to_string().into_bytes()).await
    }

    async fn post_raw(&self, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
        check(&self.app, Method::POST, path, Some(&self.bearer()), Some(body)).await
    }

    /// Every line this node holds, as listed.
    async fn lines(&self) -> Value {
        let (status, v) = self.get("/api/v1/lines").await;
        assert_eq!(status, StatusCode::OK, "GET /api/v1/lines: {v}");
        assert!(v.is_array(), "GET /api/v1/lines: {v}");
        v
    }

    /// The ids of a line's messages, in the order listed.
    async fn message_ids(&self, line: &str) -> Vec<String> {
        let (status, v) = self.get(&format!("/api/v1/lines/{line}/messages")).await;
        assert_eq!(status, StatusCode::OK, "GET messages of {line}: {v}");
        v.as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_string()).collect()
    }

    /// Opens a line and returns its id.
    async fn open(&self, members: &[&str], scope: &str) -> String {
        let (status, v) = self.post("/api/v1/lines", &json!({"members": members, "scope": scope})).await;
        assert_eq!(status, StatusCode::CREATED, "opening {members:?} {scope}: {v}");
        v["id"].as_str().unwrap().to_string()
    }
}

/// Sends one request through the router; returns the status and the body as JSON (`Null` when
/// empty). A non-empty body that is not JSON fails the test.
async fn check(
    app: &Router,
    method: Method,
    path: &str,
    auth: Option<&str>,
    body: Option<Vec<u8>>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method.clone()).uri(path);
    if let Some(auth) = auth {
        req = req.header(header::AUTHORIZATION, auth);
    }
    let body = match body {
        Some(bytes) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(bytes)
        }
        None => Body::empty(),
    };
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    if bytes.is_empty() {
        return (status, Value::Null);
    }
    let value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{method} {path} answered {status} with a body that is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, value)
}

/// Asserts a response is the error `code` with `status`, in the documented shape.
fn assert_error(got: &(StatusCode, Value), status: StatusCode, code: &str) {
    let (got_status, body) = got;
    assert_eq!(*got_status, status, "expected {status} {code}, got: {body}");
    let obj = body.as_object().unwrap_or_else(|| panic!("error body is not an object: {body}"));
    assert_eq!(obj.len(), 2, "error body has fields other than error and message: {body}");
    assert_eq!(obj.get("error").and_then(Value::as_str), Some(code), "error code: {body}");
    let message = obj.get("message").and_then(Value::as_str).unwrap_or_default();
    assert!(!message.trim().is_empty(), "error message is empty: {body}");
}

/// A body of `n` words.
fn words(n: usize) -> String {
    vec!["word"; n].join(" ")
}

/// A message request.
fn message(precedence: &str, body: &str) -> Value {
    json!({"precedence": precedence, "subject": "test subject", "body": body})
}

fn messages_path(line: &str) -> String {
    format!("/api/v1/lines/{line}/messages")
}

/// Starts PH, CN and VN and returns PH's API.
async fn start() -> (Net, Api) {
    let net = Net::start(&["PH", "CN", "VN"]).await;
    let api = Api::of(&net, "PH");
    (net, api)
}

/// Starts the network and, on PH's node, opens a PH–CN line holding one message.
async fn start_with_line() -> (Net, Api, String) {
    let (net, api) = start().await;
    let line = api.open(&["PH", "CN"], "ADMM-Plus").await;
    let (status, v) = api.post(&messages_path(&line), &message("ROUTINE", "first message")).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(api.message_ids(&line).await.len(), 1);
    (net, api, line)
}

/// Sends each refused line request and checks the refusal and that the lines are unchanged.
async fn refuse_lines(api: &Api, cases: &[(Value, StatusCode, &str)]) {
    let before = api.lines().await;
    for (req, status, code) in cases {
        let got = api.post("/api/v1/lines", req).await;
        assert_error(&got, *status, code);
        assert_eq!(api.lines().await, before, "lines changed after refusing {req}");
    }
}

/// Sends each refused message and checks the refusal and that the line's messages are unchanged.
async fn refuse_messages(api: &Api, line: &str, cases: &[(Value, StatusCode, &str)]) {
    let before = api.message_ids(line).await;
    for (req, status, code) in cases {
        let got = api.post(&messages_path(line), req).await;
        assert_error(&got, *status, code);
        assert_eq!(api.message_ids(line).await, before, "messages changed after refusing {req}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_creating_a_line_is_400() {
    let (net, api) = start().await;
    api.open(&["PH", "VN"], "ADMM").await;
    let before = api.lines().await;
    for raw in [&b"{\"members\": [\"PH\", \"CN\"], \"scope\": "[..], b"not json", b"", b"[\"PH\", \"CN\"]"] {
        let got = api.post_raw("/api/v1/lines", raw.to_vec()).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "malformed_json");
    }
    // Well-formed JSON of the wrong shape: a field missing, a field of the wrong type.
    for req in [json!({"members": ["PH", "CN"]}), json!({"members": "PH CN", "scope": "ADMM-Plus"})] {
        assert_error(&api.post("/api/v1/lines", &req).await, StatusCode::BAD_REQUEST, "malformed_json");
    }
    assert_eq!(api.lines().await, before);
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_sending_is_400() {
    let (net, api, line) = start_with_line().await;
    let before = api.message_ids(&line).await;
    for raw in [&b"{\"precedence\": \"FLASH\", \"subject\": \"s\", \"body\": "[..], b"{]", b""] {
        let got = api.post_raw(&messages_path(&line), raw.to_vec()).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "malformed_json");
    }
    refuse_messages(
        &api,
        &line,
        &[
            // A subject may be left out only by a structured report, whose summary stands in.
            (json!({"precedence": "FLASH", "body": "no subject"}), StatusCode::BAD_REQUEST, "empty_subject"),
            (json!({"precedence": "FLASH", "subject": "s", "body": 5}), StatusCode::BAD_REQUEST, "malformed_json"),
        ],
    )
    .await;
    assert_eq!(api.message_ids(&line).await, before);
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_field_is_400_malformed_json() {
    let (net, api, line) = start_with_line().await;
    refuse_lines(
        &api,
        &[(
            json!({"members": ["PH", "VN"], "scope": "ADMM", "colour": "red"}),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        )],
    )
    .await;
    let mut req = message("ROUTINE", "a body");
    req["priority"] = json!("high");
    refuse_messages(&api, &line, &[(req, StatusCode::BAD_REQUEST, "malformed_json")]).await;
    net.stop_all().await;
}

/// An urgent precedence refuses 201 words and accepts 200.
async fn urgent_word_limit(precedence: &str) {
    let (net, api, line) = start_with_line().await;
    refuse_messages(&api, &line, &[(message(precedence, &words(201)), StatusCode::BAD_REQUEST, "too_many_words")])
        .await;
    let before = api.message_ids(&line).await;
    let (status, v) = api.post(&messages_path(&line), &message(precedence, &words(200))).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["precedence"], precedence);
    assert_eq!(v["body"].as_str().unwrap().split_whitespace().count(), 200);
    let after = api.message_ids(&line).await;
    assert_eq!(after.len(), before.len() + 1);
    assert!(after.contains(&v["id"].as_str().unwrap().to_string()));
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flash_body_of_201_words_is_400_and_200_words_is_accepted() {
    urgent_word_limit("FLASH").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immediate_body_of_201_words_is_400_and_200_words_is_accepted() {
    urgent_word_limit("IMMEDIATE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_precedence_is_400() {
    let (net, api, line) = start_with_line().await;
    let cases: Vec<_> = ["URGENT", "flash", "", "X"]
        .iter()
        .map(|p| (message(p, "a body"), StatusCode::BAD_REQUEST, "bad_precedence"))
        .collect();
    refuse_messages(&api, &line, &cases).await;
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_class_is_400() {
    let (net, api, line) = start_with_line().await;
    let cases: Vec<_> = ["CRISIS", "test", ""]
        .iter()
        .map(|c| {
            let mut req = message("ROUTINE", "a body");
            req["class"] = json!(c);
            (req, StatusCode::BAD_REQUEST, "bad_class")
        })
        .collect();
    refuse_messages(&api, &line, &cases).await;
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_subject_is_400() {
    let (net, api, line) = start_with_line().await;
    let cases: Vec<_> = ["", "   ", "\n\t"]
        .iter()
        .map(|s| (json!({"precedence": "FLASH", "subject": s, "body": "b"}), StatusCode::BAD_REQUEST, "empty_subject"))
        .collect();
    refuse_messages(&api, &line, &cases).await;
    net.stop_all().await;
}

/// Asserts a response is a 400 `bad_character` naming `field` and the character by code point,
/// without echoing it.
fn assert_bad_character(got: &(StatusCode, Value), field: &str, code_point: &str) {
    let (status, body) = got;
    assert_eq!(*status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "bad_character", "{body}");
    assert_eq!(body["field"], field, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.starts_with(&format!("{field}: ")) && message.contains(code_point), "{body}");
    assert!(!message.chars().any(|c| c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c)), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_that_would_steer_the_officers_screen_is_400_naming_the_field() {
    let (net, api, line) = start_with_line().await;
    let messages = api.message_ids(&line).await;
    let lines = api.lines().await;
    let cases = [
        (json!({"precedence": "ROUTINE", "subject": "\u{1b}[2J", "body": "b"}), "subject", "U+001B"),
        (json!({"precedence": "ROUTINE", "subject": "s\nPH #9 acknowledged", "body": "b"}), "subject", "U+000A"),
        (json!({"precedence": "ROUTINE", "subject": "s", "caveat": "R\u{202e}", "body": "b"}), "caveat", "U+202E"),
        (json!({"precedence": "FLASH", "subject": "s", "body": "stand \u{202e}nwod\u{202c}"}), "body", "U+202E"),
    ];
    for (req, field, code_point) in cases {
        assert_bad_character(&api.post(&messages_path(&line), &req).await, field, code_point);
        assert_eq!(api.message_ids(&line).await, messages, "messages changed after refusing {req}");
    }
    let req = json!({"members": ["PH", "VN"], "scope": "ADMM", "title": "PH\u{1b}]0;x\u{7}"});
    assert_bad_character(&api.post("/api/v1/lines", &req).await, "title", "U+001B");
    assert_eq!(api.lines().await, lines, "lines changed after refusing {req}");
    // Words joined by zero-width spaces count one by one.
    let joined = vec!["word"; 5000].join("\u{200b}");
    refuse_messages(&api, &line, &[(message("FLASH", &joined), StatusCode::BAD_REQUEST, "too_many_words")]).await;
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_scope_is_400() {
    let (net, api) = start().await;
    api.open(&["PH", "CN"], "ADMM-Plus").await;
    let cases: Vec<_> = ["ADMM-PLUS", "admm", "", "ASEAN"]
        .iter()
        .map(|s| (json!({"members": ["PH", "VN"], "scope": s}), StatusCode::BAD_REQUEST, "bad_scope"))
        .collect();
    refuse_lines(&api, &cases).await;
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_member_line_is_400() {
    let (net, api) = start().await;
    api.open(&["PH", "CN"], "ADMM-Plus").await;
    refuse_lines(
        &api,
        &[
            (json!({"members": ["PH"], "scope": "ADMM-Plus"}), StatusCode::BAD_REQUEST, "too_few_members"),
            (json!({"members": [], "scope": "ADMM-Plus"}), StatusCode::BAD_REQUEST, "too_few_members"),
        ],
    )
    .await;
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_member_is_400() {
    let (net, api) = start().await;
    api.open(&["PH", "CN"], "ADMM-Plus").await;
    refuse_lines(
        &api,
        &[
            // A well-formed code not in this network's roster, alone and on a conference.
            (json!({"members": ["PH", "SG"], "scope": "ADMM"}), StatusCode::BAD_REQUEST, "unknown_member"),
            (json!({"members": ["PH", "VN", "XX"], "scope": "ADMM-Plus"}), StatusCode::BAD_REQUEST, "unknown_member"),
        ],
    )
    .await;
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_limit_is_400() {
    let (net, api, line) = start_with_line().await;
    let before = api.message_ids(&line).await;
    for limit in ["0", "10001"] {
        let got = api.get(&format!("{}?limit={limit}", messages_path(&line))).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "bad_limit");
        assert_error(&api.get(&format!("/api/v1/inbox?limit={limit}")).await, StatusCode::BAD_REQUEST, "bad_limit");
    }
    // The bounds themselves are accepted.
    for limit in ["1", "10000"] {
        let (status, v) = api.get(&format!("{}?limit={limit}", messages_path(&line))).await;
        assert_eq!(status, StatusCode::OK, "limit={limit}: {v}");
        assert_eq!(v.as_array().unwrap().len(), 1);
    }
    assert_eq!(api.message_ids(&line).await, before);
    net.stop_all().await;
}

/// Requests that need an operator, each with a valid body where it has one.
fn authenticated_requests(line: &str) -> Vec<(Method, String, Option<Vec<u8>>)> {
    let new_line = json!({"members": ["PH", "VN"], "scope": "ADMM"}).to_string().into_bytes();
    let new_message = message("FLASH", "a body").to_string().into_bytes();
    vec![
        (Method::GET, "/api/v1/lines".into(), None),
        (Method::POST, "/api/v1/lines".into(), Some(new_line)),
        (Method::GET, format!("/api/v1/lines/{line}"), None),
        (Method::GET, messages_path(line), None),
        (Method::POST, messages_path(line), Some(new_message)),
        (Method::GET, "/api/v1/inbox".into(), None),
        (Method::GET, "/api/v1/peers".into(), None),
    ]
}

/// Each request with each of these Authorization headers (or none) is 401, and nothing changed.
async fn unauthorized_with(auths: &[Option<&str>]) {
    let (net, api, line) = start_with_line().await;
    let lines = api.lines().await;
    let messages = api.message_ids(&line).await;
    for auth in auths {
        for (method, path, body) in authenticated_requests(&line) {
            let got = check(&api.app, method.clone(), &path, *auth, body).await;
            assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized");
        }
    }
    assert_eq!(api.lines().await, lines);
    assert_eq!(api.message_ids(&line).await, messages);
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_authorization_is_401() {
    unauthorized_with(&[None]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_is_401() {
    unauthorized_with(&[Some("Bearer adi_not-a-token-of-this-node"), Some("Bearer adi_")]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_authorization_is_401() {
    unauthorized_with(&[Some("Basic xyz"), Some("Bearer"), Some("Bearer "), Some("Token abc")]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_nodes_token_is_401() {
    let (net, api, line) = start_with_line().await;
    let cn_token = net.state.members[net.index("CN")].token.clone();
    let got = check(&api.app, Method::GET, "/api/v1/lines", Some(&format!("Bearer {cn_token}")), None).await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized");
    let got = check(
        &api.app,
        Method::POST,
        &messages_path(&line),
        Some(&format!("Bearer {cn_token}")),
        Some(message("FLASH", "b").to_string().into_bytes()),
    )
    .await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(api.message_ids(&line).await.len(), 1);
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auditor_may_read_but_not_create_lines_or_send() {
    let (net, api, line) = start_with_line().await;
    let token = add_operator(&*net.node("PH").state.store, "auditor-ph", "auditor").unwrap();
    let auditor = Api { app: api.app.clone(), token };
    let lines = api.lines().await;
    let messages = api.message_ids(&line).await;

    let got = auditor.post("/api/v1/lines", &json!({"members": ["PH", "VN"], "scope": "ADMM"})).await;
    assert_error(&got, StatusCode::FORBIDDEN, "role");
    let got = auditor.post(&messages_path(&line), &message("FLASH", "from the auditor")).await;
    assert_error(&got, StatusCode::FORBIDDEN, "role");

    assert_eq!(auditor.lines().await, lines);
    assert_eq!(auditor.message_ids(&line).await, messages);
    let (status, v) = auditor.get(&format!("/api/v1/lines/{line}")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["id"], line.as_str());
    assert_eq!(api.lines().await, lines);
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn translator_may_not_send_but_admin_may() {
    let (net, api, line) = start_with_line().await;
    let store = &*net.node("PH").state.store;
    let translator = Api { app: api.app.clone(), token: add_operator(store, "translator-ph", "translator").unwrap() };
    let admin = Api { app: api.app.clone(), token: add_operator(store, "admin-ph", "admin").unwrap() };
    let got = translator.post(&messages_path(&line), &message("FLASH", "from the translator")).await;
    assert_error(&got, StatusCode::FORBIDDEN, "role");
    assert_eq!(api.message_ids(&line).await.len(), 1);
    let (status, v) = admin.post(&messages_path(&line), &message("FLASH", "from the admin")).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(api.message_ids(&line).await.len(), 2);
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn line_without_this_nodes_member_is_403() {
    let (net, api) = start().await;
    api.open(&["PH", "VN"], "ADMM").await;
    refuse_lines(
        &api,
        &[
            (json!({"members": ["CN", "VN"], "scope": "ADMM-Plus"}), StatusCode::FORBIDDEN, "not_a_member"),
            (json!({"members": ["VN", "CN"], "scope": "ADMM-Plus"}), StatusCode::FORBIDDEN, "not_a_member"),
        ],
    )
    .await;
    // Nor did CN's node learn of a line.
    let cn = Api::of(&net, "CN");
    assert_eq!(cn.lines().await, json!([]));
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plus_member_on_an_admm_line_is_403() {
    let (net, api) = start().await;
    refuse_lines(
        &api,
        &[
            (json!({"members": ["PH", "CN"], "scope": "ADMM"}), StatusCode::FORBIDDEN, "scope_policy"),
            (json!({"members": ["PH", "VN", "CN"], "scope": "ADMM"}), StatusCode::FORBIDDEN, "scope_policy"),
        ],
    )
    .await;
    assert_eq!(api.lines().await, json!([]));
    let id = api.open(&["PH", "VN"], "ADMM").await;
    let lines = api.lines().await;
    assert_eq!(lines.as_array().unwrap().len(), 1);
    assert_eq!(lines[0]["id"], id.as_str());
    assert_eq!(lines[0]["scope"], "ADMM");
    assert_eq!(lines[0]["members"], json!(["PH", "VN"]));
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_line_is_404() {
    let (net, api, line) = start_with_line().await;
    let lines = api.lines().await;
    for id in [UNKNOWN_LINE, "not-hex", "00112233"] {
        assert_error(&api.get(&messages_path(id)).await, StatusCode::NOT_FOUND, "unknown_line");
        assert_error(&api.get(&format!("/api/v1/lines/{id}")).await, StatusCode::NOT_FOUND, "unknown_line");
        let got = api.post(&messages_path(id), &message("FLASH", "to nowhere")).await;
        assert_error(&got, StatusCode::NOT_FOUND, "unknown_line");
    }
    assert_eq!(api.lines().await, lines);
    assert_eq!(api.message_ids(&line).await.len(), 1);
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_message_is_404() {
    let (net, api, line) = start_with_line().await;
    for id in [UNKNOWN_MESSAGE, "not-hex", UNKNOWN_LINE] {
        let got = api.get(&format!("/api/v1/messages/{id}")).await;
        assert_error(&got, StatusCode::NOT_FOUND, "unknown_message");
    }
    // The one message there is found by its id.
    let id = api.message_ids(&line).await.remove(0);
    let (status, v) = api.get(&format!("/api/v1/messages/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["id"], id.as_str());
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_route_is_404() {
    let (net, api) = start().await;
    for path in ["/api/v1/nothing", "/api/v2/lines", "/api/v1/lines/a/b/c", "/healthz/x"] {
        assert_error(&api.get(path).await, StatusCode::NOT_FOUND, "not_found");
        let got = check(&api.app, Method::GET, path, None, None).await;
        assert_error(&got, StatusCode::NOT_FOUND, "not_found");
    }
    let got = api.post("/api/v1/line", &json!({"members": ["PH", "VN"], "scope": "ADMM"})).await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(api.lines().await, json!([]));
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_method_is_a_json_error() {
    let (net, api, line) = start_with_line().await;
    let lines = api.lines().await;
    for (method, path) in [
        (Method::DELETE, "/api/v1/lines".to_string()),
        (Method::PUT, format!("/api/v1/lines/{line}")),
        (Method::DELETE, messages_path(&line)),
        (Method::POST, "/healthz".to_string()),
    ] {
        let got = check(&api.app, method, &path, Some(&api.bearer()), None).await;
        assert_error(&got, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    }
    // The Allow header still names the methods the endpoint takes.
    let req = Request::builder().method(Method::DELETE).uri("/api/v1/lines").body(Body::empty()).unwrap();
    let resp = api.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    let allow = resp.headers().get(header::ALLOW).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(allow.contains("GET") && allow.contains("POST"), "Allow: {allow:?}");
    assert_eq!(api.lines().await, lines);
    assert_eq!(api.message_ids(&line).await.len(), 1);
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_direct_line_of_the_same_scope_is_409() {
    let (net, api) = start().await;
    let first = api.open(&["PH", "VN"], "ADMM-Plus").await;
    refuse_lines(
        &api,
        &[
            (json!({"members": ["PH", "VN"], "scope": "ADMM-Plus"}), StatusCode::CONFLICT, "line_exists"),
            // The same pair in the other order, with a title, is the same direct line.
            (json!({"members": ["VN", "PH"], "scope": "ADMM-Plus", "title": "t"}), StatusCode::CONFLICT, "line_exists"),
        ],
    )
    .await;
    // The other scope between the same pair is a different line.
    let second = api.open(&["VN", "PH"], "ADMM").await;
    assert_ne!(first, second);
    let lines = api.lines().await;
    let scopes: Vec<&str> = lines.as_array().unwrap().iter().map(|l| l["scope"].as_str().unwrap()).collect();
    assert_eq!(scopes.len(), 2);
    assert!(scopes.contains(&"ADMM") && scopes.contains(&"ADMM-Plus"), "{lines}");
    // And it too exists only once.
    refuse_lines(&api, &[(json!({"members": ["PH", "VN"], "scope": "ADMM"}), StatusCode::CONFLICT, "line_exists")])
        .await;
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_over_128_kib_is_413() {
    let (net, api, line) = start_with_line().await;
    let limit = net.node("PH").state.runtime_limits.api_body_bytes_max;
    assert_eq!(limit, 128 * 1024);
    let lines = api.lines().await;
    let before = api.message_ids(&line).await;

    let big = message("ROUTINE", &"x".repeat(limit + 1)).to_string().into_bytes();
    assert!(big.len() > limit);
    assert_error(&api.post_raw(&messages_path(&line), big).await, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    let big_line = json!({"members": ["PH", "VN"], "scope": "ADMM", "title": "t".repeat(limit)});
    assert_error(&api.post("/api/v1/lines", &big_line).await, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");

    // Under the API's limit the body is read, and the message's own limit refuses it instead.
    let under = message("ROUTINE", &"x".repeat(100 * 1024)).to_string().into_bytes();
    assert!(under.len() < limit);
    assert_error(&api.post_raw(&messages_path(&line), under).await, StatusCode::BAD_REQUEST, "body_too_long");

    assert_eq!(api.lines().await, lines);
    assert_eq!(api.message_ids(&line).await, before);
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_needs_no_token() {
    let (net, api) = start().await;
    let got = check(&api.app, Method::GET, "/healthz", None, None).await;
    assert_eq!(got, (StatusCode::OK, json!({"status": "ok", "member": "PH"})));
    let got = check(&api.app, Method::GET, "/healthz", Some("Basic xyz"), None).await;
    assert_eq!(got, (StatusCode::OK, json!({"status": "ok", "member": "PH"})));
    let vn = Api::of(&net, "VN");
    let got = check(&vn.app, Method::GET, "/healthz", None, None).await;
    assert_eq!(got, (StatusCode::OK, json!({"status": "ok", "member": "VN"})));
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_is_served_without_a_token() {
    let (net, api) = start().await;
    let (status, doc) = check(&api.app, Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    assert!(doc["openapi"].as_str().unwrap_or_default().starts_with("3."), "openapi: {}", doc["openapi"]);
    let paths = doc["paths"].as_object().unwrap_or_else(|| panic!("no paths: {doc}"));
    for path in ["/api/v1/lines", "/api/v1/lines/{line}/messages", "/api/v1/messages/{id}"] {
        assert!(paths.contains_key(path), "{path} missing from {:?}", paths.keys().collect::<Vec<_>>());
    }
    assert!(paths["/api/v1/lines"].get("post").is_some() && paths["/api/v1/lines"].get("get").is_some());
    assert!(paths["/api/v1/lines/{line}/messages"].get("post").is_some());
    // The same document with a token.
    let (status, with_token) = api.get("/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(with_token, doc);
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_reports_each_recipients_state() {
    let (net, api) = start().await;
    let line = api.open(&["PH", "CN"], "ADMM-Plus").await;
    let (status, v) = api.post(&messages_path(&line), &message("FLASH", "contact report")).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["line"], line.as_str());
    assert_eq!(v["sender"], "PH");
    assert_eq!(v["precedence"], "FLASH");
    assert_eq!(v["class"], "OPERATIONAL");
    assert_eq!(v["ack_required"], true);
    let recipients = v["recipients"].as_array().unwrap_or_else(|| panic!("no recipients: {v}"));
    assert_eq!(recipients.len(), 1, "{v}");
    assert_eq!(recipients[0]["member"], "CN");
    let state = recipients[0]["state"].as_str().unwrap();
    assert!(state == "sent" || state == "delivered", "state {state}: {v}");

    // A conference lists every other member.
    let conference = api.open(&["PH", "CN", "VN"], "ADMM-Plus").await;
    let (status, v) = api.post(&messages_path(&conference), &message("ROUTINE", "to all")).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let mut members: Vec<&str> =
        v["recipients"].as_array().unwrap().iter().map(|r| r["member"].as_str().unwrap()).collect();
    members.sort();
    assert_eq!(members, ["CN", "VN"]);
    net.stop_all().await;
}
