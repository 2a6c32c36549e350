//! The console's sign-in and sessions, through the node's router without a socket: wrong
//! passwords, rate limiting, expired sessions, missing CSRF tokens, fixation, and roles.

mod common;

use adi_node::setup::{add_operator, set_password};
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use common::{open_line, Net};

const PASSWORD: &str = "correct horse battery staple";

async fn call(
    app: &Router,
    method: Method,
    path: &str,
    cookie: Option<&str>,
    csrf: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value, Option<String>) {
    let mut req = Request::builder().method(method).uri(path).header(header::CONTENT_TYPE, "application/json");
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    if let Some(t) = csrf {
        req = req.header("x-csrf-token", t);
    }
    let req = req.body(Body::from(body.map(|b| b.to_string()).unwrap_or_default())).unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let set_cookie = res.headers().get(header::SET_COOKIE).map(|v| v.to_str().unwrap().to_string());
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, value, set_cookie)
}

/// Signs in and returns the session cookie (name=value) and the CSRF token.
async fn sign_in(app: &Router, name: &str, password: &str, cookie: Option<&str>) -> (String, String) {
    let (status, v, set) =
        call(app, Method::POST, "/console/sign-in", cookie, None, Some(json!({"name": name, "password": password})))
            .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let set = set.expect("a session cookie");
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"), "{set}");
    (set.split(';').next().unwrap().to_string(), v["csrf"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_sessions_and_csrf() {
    let net = Net::start_with(&["PH", "CN"], |d| d.link_test_interval_s = 0).await;
    let line = open_line(&net.client("PH"), &["PH", "CN"], "ADMM-Plus").await;
    let store = &*net.node("PH").state.store;
    add_operator(store, "duty-ph", "duty").unwrap();
    set_password(store, "duty-ph", PASSWORD).unwrap();
    add_operator(store, "auditor-ph", "auditor").unwrap();
    set_password(store, "auditor-ph", PASSWORD).unwrap();
    assert!(set_password(store, "duty-ph", "short").is_err(), "a short password is refused");
    let app = adi_node::http::router(net.node("PH").state.clone());

    // The page is served by the node; `/` leads to it.
    let (status, page, _) = call(&app, Method::GET, "/console", None, None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.as_str().unwrap().contains("ADI duty console"));
    let res = app.clone().oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.headers()[header::LOCATION], "/console");

    // A wrong password, or an unknown name, is refused alike; nothing is signed in.
    let (status, v, set) = call(
        &app,
        Method::POST,
        "/console/sign-in",
        None,
        None,
        Some(json!({"name": "duty-ph", "password": "wrong password!"})),
    )
    .await;
    assert_eq!((status, v["error"].as_str(), set), (StatusCode::UNAUTHORIZED, Some("sign_in_refused"), None));
    let (status, v, _) =
        call(&app, Method::POST, "/console/sign-in", None, None, Some(json!({"name": "nobody", "password": PASSWORD})))
            .await;
    assert_eq!((status, v["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("sign_in_refused")));

    // Signed in: the session reads; a state-changing request without the CSRF token is refused
    // and changes nothing; with it, it goes through.
    let (cookie, csrf) = sign_in(&app, "duty-ph", PASSWORD, None).await;
    let (status, v, _) = call(&app, Method::GET, "/console/session", Some(&cookie), None, None).await;
    assert_eq!((status, v["name"].as_str(), v["role"].as_str()), (StatusCode::OK, Some("duty-ph"), Some("duty")));
    let (status, _, _) = call(&app, Method::GET, "/api/v1/lines", Some(&cookie), None, None).await;
    assert_eq!(status, StatusCode::OK);
    let send = format!("/api/v1/lines/{line}/messages");
    let msg = json!({"precedence": "ROUTINE", "subject": "from the console", "body": "b"});
    let (status, v, _) = call(&app, Method::POST, &send, Some(&cookie), None, Some(msg.clone())).await;
    assert_eq!((status, v["error"].as_str()), (StatusCode::FORBIDDEN, Some("csrf")));
    let (status, v, _) = call(&app, Method::POST, &send, Some(&cookie), Some("not-the-token"), Some(msg.clone())).await;
    assert_eq!((status, v["error"].as_str()), (StatusCode::FORBIDDEN, Some("csrf")));
    let (status, lines, _) = call(&app, Method::GET, &format!("{send}?limit=10"), Some(&cookie), None, None).await;
    assert_eq!((status, lines.as_array().map(Vec::len)), (StatusCode::OK, Some(0)), "nothing was sent");
    let (status, v, _) = call(&app, Method::POST, &send, Some(&cookie), Some(&csrf), Some(msg.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");

    // No fixation: signing in with a cookie already set makes a new session.
    let (again, _) = sign_in(&app, "duty-ph", PASSWORD, Some(&cookie)).await;
    assert_ne!(again, cookie);
    // The auditor reads but may not send, even with its CSRF token.
    let (auditor, auditor_csrf) = sign_in(&app, "auditor-ph", PASSWORD, None).await;
    let (status, v, _) = call(&app, Method::POST, &send, Some(&auditor), Some(&auditor_csrf), Some(msg.clone())).await;
    assert_eq!((status, v["error"].as_str()), (StatusCode::FORBIDDEN, Some("role")));

    // Signing out ends the session (CSRF token required); the cookie no longer works.
    let (status, v, _) = call(&app, Method::POST, "/console/sign-out", Some(&cookie), None, None).await;
    assert_eq!((status, v["error"].as_str()), (StatusCode::FORBIDDEN, Some("csrf")));
    let (status, _, set) = call(&app, Method::POST, "/console/sign-out", Some(&cookie), Some(&csrf), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(set.unwrap().contains("Max-Age=0"));
    let (status, _, _) = call(&app, Method::GET, "/api/v1/lines", Some(&cookie), None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // An expired session is refused: idle past the timeout.
    let (old, _) = sign_in(&app, "duty-ph", PASSWORD, None).await;
    let id = old.split_once('=').unwrap().1;
    let stale = adi_node::clock::now_ms() - adi_node::config::RuntimeLimits::default().session_idle_ms - 1_000;
    store.touch_session(adi_node::http::auth::session_hash(id), stale).wait().await.unwrap();
    let (status, v, _) = call(&app, Method::GET, "/api/v1/lines", Some(&old), None, None).await;
    assert_eq!((status, v["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("session_expired")));

    // Repeated wrong passwords delay the name's next attempt, even with the right one.
    for _ in 0..adi_node::config::RuntimeLimits::default().sign_in_failures_max {
        call(
            &app,
            Method::POST,
            "/console/sign-in",
            None,
            None,
            Some(json!({"name": "auditor-ph", "password": "wrong password!"})),
        )
        .await;
    }
    let (status, v, _) = call(
        &app,
        Method::POST,
        "/console/sign-in",
        None,
        None,
        Some(json!({"name": "auditor-ph", "password": PASSWORD})),
    )
    .await;
    assert_eq!((status, v["error"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("too_many_attempts")));
    // Only delayed, never locked out: once the delay has passed, the right password signs in.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let (status, v, _) = call(
        &app,
        Method::POST,
        "/console/sign-in",
        None,
        None,
        Some(json!({"name": "auditor-ph", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_state_changing_endpoint_needs_the_csrf_token_and_the_role() {
    let net = Net::start_with(&["PH", "CN"], |d| d.link_test_interval_s = 0).await;
    let line = open_line(&net.client("PH"), &["PH", "CN"], "ADMM-Plus").await;
    let cn = net.client("CN");
    common::eventually(std::time::Duration::from_secs(30), "CN to hold the line", || async {
        cn.call(hyper::Method::GET, &format!("/api/v1/lines/{line}"), None).await.ok()
    })
    .await;
    let message = common::send(&net.client("CN"), &line, "ROUTINE", "to answer").await;
    common::wait_delivered(&net.client("CN"), &message, std::time::Duration::from_secs(30)).await;
    let store = &*net.node("PH").state.store;
    for (name, role) in [("duty-ph", "duty"), ("auditor-ph", "auditor")] {
        add_operator(store, name, role).unwrap();
        set_password(store, name, PASSWORD).unwrap();
    }
    let app = adi_node::http::router(net.node("PH").state.clone());
    let (duty, _) = sign_in(&app, "duty-ph", PASSWORD, None).await;
    let (auditor, auditor_csrf) = sign_in(&app, "auditor-ph", PASSWORD, None).await;
    let endpoints: Vec<(String, Value)> = vec![
        ("/api/v1/lines".into(), json!({"members": ["PH", "CN"], "scope": "ADMM"})),
        (format!("/api/v1/lines/{line}/messages"), json!({"precedence": "ROUTINE", "subject": "s", "body": "b"})),
        (format!("/api/v1/messages/{message}/seen"), json!({})),
        (format!("/api/v1/messages/{message}/ack"), json!({})),
        (format!("/api/v1/messages/{message}/decline"), json!({"reason": "r"})),
        (format!("/api/v1/lines/{line}/update-keys"), json!({})),
        (format!("/api/v1/lines/{line}/checkpoints"), json!({})),
        (format!("/api/v1/lines/{line}/decisions"), json!({"text": "t"})),
        (format!("/api/v1/lines/{line}/members"), json!({"member": "VN"})),
        ("/console/sign-out".into(), json!({})),
    ];
    for (path, body) in &endpoints {
        // A session without its CSRF token changes nothing, whatever its role.
        let (status, v, _) = call(&app, Method::POST, path, Some(&duty), None, Some(body.clone())).await;
        assert_eq!((status, v["error"].as_str()), (StatusCode::FORBIDDEN, Some("csrf")), "{path}");
        // An auditor with its token may still not act.
        if path != "/console/sign-out" {
            let (status, v, _) =
                call(&app, Method::POST, path, Some(&auditor), Some(&auditor_csrf), Some(body.clone())).await;
            assert_eq!((status, v["error"].as_str()), (StatusCode::FORBIDDEN, Some("role")), "{path}: {v}");
        }
        // Without a session or token at all: unauthorised.
        let (status, _, _) = call(&app, Method::POST, path, None, None, Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    // Reading needs a session too, but no token.
    for path in ["/console/session", "/api/v1/inbox", "/api/v1/alarms", "/api/v1/links", "/api/v1/evidence"] {
        let (status, _, _) = call(&app, Method::GET, path, None, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        let (status, _, _) = call(&app, Method::GET, path, Some(&auditor), None, None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    // Nothing above changed the record.
    let (_, lines, _) = call(&app, Method::GET, "/api/v1/lines", Some(&auditor), None, None).await;
    assert_eq!(lines.as_array().map(Vec::len), Some(1));
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_the_security_headers_and_the_page_runs_no_inline_script_or_style() {
    let net = Net::start_with(&["PH", "CN"], |d| d.link_test_interval_s = 0).await;
    let app = adi_node::http::router(net.node("PH").state.clone());
    let get = |path: &'static str| {
        let app = app.clone();
        async move { app.oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap() }
    };
    for path in ["/console", "/console/console.js", "/console/console.css", "/api/v1/lines", "/healthz", "/nowhere"] {
        let res = get(path).await;
        let h = res.headers();
        let csp = h.get(header::CONTENT_SECURITY_POLICY).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(csp.contains("style-src 'self'") && !csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY", "{path}");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer", "{path}");
        assert!(h.get(header::STRICT_TRANSPORT_SECURITY).is_none(), "{path}: HSTS only over TLS");
    }
    // API answers are never kept by a browser or a proxy.
    assert_eq!(get("/api/v1/lines").await.headers()[header::CACHE_CONTROL], "no-store");
    // The page loads its script and style from the node, and has none inline.
    let page = get("/console").await.into_body().collect().await.unwrap().to_bytes();
    let page = String::from_utf8(page.to_vec()).unwrap();
    assert!(page.contains(r#"<script src="/console/console.js"></script>"#));
    assert!(!page.contains("<script>") && !page.contains("<style") && !page.contains(" style="), "inline code");
    let script = get("/console/console.js").await;
    assert_eq!(script.headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
    let script = script.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&script).contains("EventSource"), "the page's script");
    net.stop_all().await;
}

/// A request with a bearer token (its scheme's name written as given).
async fn with_token(app: &Router, path: &str, scheme: &str, token: &str) -> (StatusCode, Value) {
    let req =
        Request::get(path).header(header::AUTHORIZATION, format!("{scheme} {token}")).body(Body::empty()).unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_ends_when_it_is_revoked_a_new_token_a_new_password_or_a_removal_and_tokens_expire() {
    let net = Net::start_with(&["PH", "CN"], |d| d.link_test_interval_s = 0).await;
    let store = &*net.node("PH").state.store;
    let app = adi_node::http::router(net.node("PH").state.clone());
    let token = add_operator(store, "duty-ph", "duty").unwrap();
    set_password(store, "duty-ph", PASSWORD).unwrap();
    let lines = "/api/v1/lines";

    // The scheme's name is case-insensitive.
    for scheme in ["Bearer", "bearer", "BEARER"] {
        assert_eq!(with_token(&app, lines, scheme, &token).await.0, StatusCode::OK, "{scheme}");
    }
    // A new token: the old one stops working and the open console session ends at once.
    let (cookie, _) = sign_in(&app, "duty-ph", PASSWORD, None).await;
    assert_eq!(call(&app, Method::GET, lines, Some(&cookie), None, None).await.0, StatusCode::OK);
    let new_token = add_operator(store, "duty-ph", "duty").unwrap();
    assert_eq!(with_token(&app, lines, "Bearer", &token).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(with_token(&app, lines, "Bearer", &new_token).await.0, StatusCode::OK);
    assert_eq!(call(&app, Method::GET, lines, Some(&cookie), None, None).await.0, StatusCode::UNAUTHORIZED);
    // A new password ends the session too, and the old password no longer signs in.
    let (cookie, _) = sign_in(&app, "duty-ph", PASSWORD, None).await;
    let other = "another long passphrase";
    set_password(store, "duty-ph", other).unwrap();
    assert_eq!(call(&app, Method::GET, lines, Some(&cookie), None, None).await.0, StatusCode::UNAUTHORIZED);
    let body = json!({"name": "duty-ph", "password": PASSWORD});
    assert_eq!(call(&app, Method::POST, "/console/sign-in", None, None, Some(body)).await.0, StatusCode::UNAUTHORIZED);
    // A role changed ends it as well.
    let (cookie, _) = sign_in(&app, "duty-ph", other, None).await;
    let auditor_token = adi_node::setup::add_operator(store, "duty-ph", "auditor").unwrap();
    assert_eq!(call(&app, Method::GET, lines, Some(&cookie), None, None).await.0, StatusCode::UNAUTHORIZED);
    // Removed: the token and every session end.
    let (cookie, _) = sign_in(&app, "duty-ph", other, None).await;
    assert!(store.remove_operator("duty-ph").unwrap());
    assert_eq!(with_token(&app, lines, "Bearer", &auditor_token).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(call(&app, Method::GET, lines, Some(&cookie), None, None).await.0, StatusCode::UNAUTHORIZED);
    // A token past its expiry is refused, saying so.
    let expired = adi_node::setup::add_operator_for(store, "watch-ph", "duty", Some(0)).unwrap();
    let (status, v) = with_token(&app, lines, "Bearer", &expired).await;
    assert_eq!((status, v["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("token_expired")), "{v}");
    net.stop_all().await;
}

/// The cookies a sign-in sets, as `name=value`.
async fn sign_in_cookies(app: &Router, name: &str) -> Vec<String> {
    let req = Request::builder()
        .method(Method::POST)
        .uri("/console/sign-in")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"name": name, "password": PASSWORD}).to_string()))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .collect()
}

/// A page whose session ended asks, with its watch cookie, whether something urgent waits: it is
/// told how many, never what; a cookie of another node, changed, or absent is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_cookie_tells_a_signed_out_page_how_much_waits_and_nothing_else() {
    let net = Net::start_with(&["PH", "CN"], |d| d.link_test_interval_s = 0).await;
    let line = open_line(&net.client("CN"), &["PH", "CN"], "ADMM-Plus").await;
    let ph = adi_node::http::router(net.node("PH").state.clone());
    let cn = adi_node::http::router(net.node("CN").state.clone());
    for (node, name) in [("PH", "watch-ph"), ("CN", "watch-cn")] {
        let store = &*net.node(node).state.store;
        add_operator(store, name, "duty").unwrap();
        set_password(store, name, PASSWORD).unwrap();
    }
    let cookies = sign_in_cookies(&ph, "watch-ph").await;
    let watch = cookies.iter().find(|c| c.starts_with("adi_watch=")).expect("a watch cookie").clone();
    let (status, v, _) = call(&ph, Method::GET, "/console/urgent", Some(&watch), None, None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!((v["urgent"].as_u64(), v["overdue"].as_u64()), (Some(0), Some(0)), "{v}");

    common::send(&net.client("CN"), &line, "FLASH", "Not for a signed-out page").await;
    let counted = common::eventually(std::time::Duration::from_secs(30), "the FLASH counted", || {
        let (ph, watch) = (ph.clone(), watch.clone());
        async move {
            let (_, v, _) = call(&ph, Method::GET, "/console/urgent", Some(&watch), None, None).await;
            (v["urgent"] == 1).then_some(v)
        }
    })
    .await;
    assert!(!counted.to_string().contains("signed-out page"), "{counted}");

    // Refused: no cookie, a changed one, one whose end was moved, and CN's at PH.
    let (name, rest) = watch.split_once('.').unwrap();
    let (ends, mac) = rest.split_once('.').unwrap();
    let flipped = format!("{name}.{ends}.{}{}", if mac.starts_with('0') { "1" } else { "0" }, &mac[1..]);
    let later = format!("{name}.{}.{mac}", ends.parse::<u64>().unwrap() + 1);
    let cn_watch = sign_in_cookies(&cn, "watch-cn").await.into_iter().find(|c| c.starts_with("adi_watch=")).unwrap();
    for cookie in [None, Some(flipped.as_str()), Some(later.as_str()), Some(cn_watch.as_str())] {
        let (status, v, _) = call(&ph, Method::GET, "/console/urgent", cookie, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{cookie:?}: {v}");
    }
    // An operator removed since is told nothing.
    adi_store::Store::remove_operator(&*net.node("PH").state.store, "watch-ph").unwrap();
    let (status, _, _) = call(&ph, Method::GET, "/console/urgent", Some(&watch), None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    net.stop_all().await;
}
