//! Every list of the operator API pages: read with a small `limit` by following the `Link`
//! header's `rel="next"`, a list gives every item exactly once and in its order, the last page
//! has no `Link`, and an item that arrives between two pages is neither skipped nor listed twice
//! where the order puts it after the place reached. A cursor the node did not make is a 400
//! `bad_cursor`, a limit out of range a 400 `bad_limit`, both in the JSON error shape.
//!
//! Requests go to a node's router without a socket, as in `api.rs`; the network is real.

mod common;

use std::time::Duration;

use adi_core::{AlarmChange, AlarmKind, AlarmOp, MemberCode, WriteBatch};
use adi_store::{StoreError, WriteFault};
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use common::{open_line, send, set_limits, wait_delivered, Net};

/// How long a message may take to reach its recipient.
const WAIT: Duration = Duration::from_secs(20);

/// One node's router and a duty officer's bearer token.
struct Api {
    app: Router,
    bearer: String,
    list_len_max: usize,
}

/// An answer: its status, its `Link` header and its body.
struct Answer {
    status: StatusCode,
    link: Option<String>,
    body: Value,
}

impl Api {
    fn of(net: &Net, code: &str) -> Api {
        let state = net.node(code).state.clone();
        let list_len_max = state.runtime_limits.list_len_max;
        let bearer = format!("Bearer {}", net.state.members[net.index(code)].token);
        Api { app: adi_node::http::router(state), bearer, list_len_max }
    }

    async fn call(&self, method: Method, uri: &str, body: Option<Value>) -> Answer {
        let mut req = Request::builder().method(method).uri(uri).header(header::AUTHORIZATION, &self.bearer);
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let resp = self.app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
        let status = resp.status();
        let links: Vec<String> =
            resp.headers().get_all(header::LINK).iter().map(|v| v.to_str().unwrap().to_string()).collect();
        assert!(links.len() <= 1, "{uri}: more than one Link: {links:?}");
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        Answer { status, link: links.into_iter().next(), body }
    }

    async fn get(&self, uri: &str) -> Answer {
        self.call(Method::GET, uri, None).await
    }

    /// A page: asserts it is a 200 JSON array; returns its items and the next page's URI.
    async fn page(&self, uri: &str) -> (Vec<Value>, Option<String>) {
        let a = self.get(uri).await;
        assert_eq!(a.status, StatusCode::OK, "GET {uri}: {}", a.body);
        let items = a.body.as_array().unwrap_or_else(|| panic!("GET {uri}: not an array: {}", a.body)).clone();
        (items, a.link.map(|l| next_of(&l)))
    }

    /// Reads a list page by page from `first`, following `Link`, and returns the pages; asserts
    /// each page but the last holds `limit` items and the last one is not empty (unless the
    /// list is), and fails past `pages_max`.
    async fn walk(&self, first: &str, limit: usize, pages_max: usize) -> Vec<Vec<Value>> {
        let mut pages = Vec::new();
        let mut uri = Some(first.to_string());
        while let Some(at) = uri {
            assert!(pages.len() < pages_max, "{first}: more than {pages_max} pages");
            let (items, next) = self.page(&at).await;
            assert!(items.len() <= limit, "{at}: {} items, over the limit {limit}", items.len());
            if next.is_some() {
                assert_eq!(items.len(), limit, "{at}: a page short of its limit says more remain");
                assert!(next.as_deref().unwrap().contains(&format!("limit={limit}")), "{at}: {next:?}");
            }
            pages.push(items);
            uri = next;
        }
        let last = pages.last().expect("a page");
        assert!(!last.is_empty() || pages.len() == 1, "{first}: the last page is empty");
        pages
    }

    /// The whole list in one page: asserts it has no `Link`.
    async fn whole(&self, uri: &str) -> Vec<Value> {
        let (items, next) = self.page(uri).await;
        assert!(next.is_none(), "{uri} is not whole: {next:?}");
        items
    }

    /// Asserts a request is refused 400 with `code`, in the error shape.
    async fn refused(&self, uri: &str, code: &str) {
        let a = self.get(uri).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "GET {uri}: {}", a.body);
        assert!(a.link.is_none(), "GET {uri}: a refusal with a Link");
        let obj = a.body.as_object().unwrap_or_else(|| panic!("GET {uri}: not an object: {}", a.body));
        assert_eq!(obj.get("error").and_then(Value::as_str), Some(code), "GET {uri}: {}", a.body);
        assert!(!obj.get("message").and_then(Value::as_str).unwrap_or_default().trim().is_empty(), "{}", a.body);
        assert!(obj.keys().all(|k| ["error", "message", "field"].contains(&k.as_str())), "{}", a.body);
    }

    /// Asserts that `list` (a path, with or without a query) refuses a limit out of range and
    /// each of `cursors` given as `param`.
    async fn refuses_bad_pages(&self, list: &str, param: &str, cursors: &[&str]) {
        let sep = if list.contains('?') { '&' } else { '?' };
        for limit in [0, self.list_len_max + 1] {
            self.refused(&format!("{list}{sep}limit={limit}"), "bad_limit").await;
        }
        for cursor in cursors {
            self.refused(&format!("{list}{sep}limit=2&{param}={cursor}"), "bad_cursor").await;
        }
    }
}

/// The target of a `Link: <...>; rel="next"`.
fn next_of(link: &str) -> String {
    let target = link
        .strip_prefix('<')
        .and_then(|l| l.strip_suffix(">; rel=\"next\""))
        .unwrap_or_else(|| panic!("not a Link to the next page: {link}"));
    assert!(target.starts_with("/api/v1/"), "{link}");
    target.to_string()
}

fn ids(items: &[Value]) -> Vec<Value> {
    items.iter().map(|i| i["id"].clone()).collect()
}

/// The ids of pages read one after another, asserting none is listed twice.
fn once(pages: &[Vec<Value>]) -> Vec<Value> {
    let all: Vec<Value> = pages.iter().flat_map(|p| ids(p)).collect();
    let mut seen = std::collections::BTreeSet::new();
    for id in &all {
        assert!(seen.insert(id.to_string()), "{id} is listed twice: {all:?}");
    }
    all
}

/// Cursors no list takes: not what the node writes.
const MALFORMED: [&str; 6] = ["abc", "-1", "01", "1.2.3.4.5", "%20", "99999999999999999999"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lines_messages_page_in_the_record_order_and_a_late_one_comes_last() {
    let net = Net::start(&["PH", "CN", "VN"]).await;
    let ph = net.client("PH");
    let api = Api::of(&net, "PH");
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let other = open_line(&ph, &["PH", "VN"], "ADMM").await;
    let mut sent = Vec::new();
    for n in 0..7 {
        sent.push(json!(send(&ph, &line, "ROUTINE", &format!("message {n}")).await));
    }
    let elsewhere = send(&ph, &other, "ROUTINE", "on another line").await;
    let list = format!("/api/v1/lines/{line}/messages");
    let all = api.whole(&format!("{list}?limit=100")).await;
    assert_eq!(ids(&all), sent, "the line's messages, as sent");
    for limit in [1, 2, 3, 7] {
        let pages = api.walk(&format!("{list}?limit={limit}"), limit, 8).await;
        assert_eq!(once(&pages), sent, "limit {limit}");
    }
    // Without a limit, the default page holds them all.
    assert_eq!(ids(&api.whole(&list).await), sent);

    // A message sent between two pages comes after the place reached: read once, last.
    let (first, next) = api.page(&format!("{list}?limit=3")).await;
    let late = json!(send(&ph, &line, "FLASH", "late").await);
    let mut walked = vec![first];
    walked.extend(api.walk(&next.expect("more remain"), 3, 4).await);
    sent.push(late.clone());
    assert_eq!(once(&walked), sent, "the late message is read once, at the end");

    let unknown = "0".repeat(64);
    let upper = sent[0].as_str().unwrap().to_uppercase();
    let mut cursors: Vec<&str> = MALFORMED.to_vec();
    cursors.extend([elsewhere.as_str(), unknown.as_str(), upper.as_str()]);
    api.refuses_bad_pages(&list, "after", &cursors).await;
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_pages_by_precedence_and_a_message_arriving_between_pages_is_read_once_or_not_at_all() {
    let net = Net::start(&["PH", "CN"]).await;
    let ph = net.client("PH");
    let api = Api::of(&net, "CN");
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    for (n, precedence) in
        ["ROUTINE", "FLASH", "PRIORITY", "ROUTINE", "IMMEDIATE", "FLASH", "ROUTINE"].iter().enumerate()
    {
        let id = send(&ph, &line, precedence, &format!("{precedence} {n}")).await;
        wait_delivered(&ph, &id, WAIT).await;
    }
    let all = api.whole("/api/v1/inbox?limit=100").await;
    assert_eq!(all.len(), 7);
    let rank = |m: &Value| ["FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE"].iter().position(|p| m["precedence"] == *p);
    assert!(all.windows(2).all(|w| rank(&w[0]) <= rank(&w[1])), "by precedence: {all:?}");
    for limit in [1, 2, 3, 6, 7] {
        let pages = api.walk(&format!("/api/v1/inbox?limit={limit}"), limit, 8).await;
        assert_eq!(once(&pages), ids(&all), "limit {limit}");
    }

    // Between two pages that reached the ROUTINE messages, a ROUTINE message (which sorts after
    // the place reached) and a FLASH (which sorts before it) arrive: the first is read once, at
    // the end; the second on no later page; nothing twice.
    let (first, next) = api.page("/api/v1/inbox?limit=5").await;
    assert_eq!(first[4]["precedence"], "ROUTINE", "{first:?}");
    let routine = send(&ph, &line, "ROUTINE", "late routine").await;
    let flash = send(&ph, &line, "FLASH", "late flash").await;
    for id in [&routine, &flash] {
        wait_delivered(&ph, id, WAIT).await;
    }
    let mut walked = vec![first];
    walked.extend(api.walk(&next.expect("more remain"), 5, 3).await);
    let mut expected = ids(&all);
    expected.push(json!(routine));
    assert_eq!(once(&walked), expected, "the late ROUTINE once at the end, the late FLASH not at all");
    // Read again from the start, the FLASH is on the first page.
    assert!(ids(&api.page("/api/v1/inbox?limit=5").await.0).contains(&json!(flash)));

    api.refuses_bad_pages(
        "/api/v1/inbox",
        "after",
        &[&MALFORMED[..], &["1.2", "1.2.3.4", "300.1.1", "1.01.1"]].concat(),
    )
    .await;
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drafts_and_lines_page_and_an_item_made_between_pages_is_not_read_twice() {
    let net = Net::start_with(&["PH", "CN", "VN"], |d| {
        d.link_test_interval_s = 0;
        d.release_required = true;
    })
    .await;
    let ph = net.client("PH");
    let api = Api::of(&net, "PH");

    // Lines, oldest first; one opened between two pages is read once, last.
    let mut lines = Vec::new();
    for (members, scope) in [
        (&["PH", "CN"][..], "ADMM-Plus"),
        (&["PH", "VN"][..], "ADMM"),
        (&["PH", "VN"][..], "ADMM-Plus"),
        (&["PH", "CN", "VN"][..], "ADMM-Plus"),
        (&["PH", "CN", "VN"][..], "ADMM-Plus"),
    ] {
        lines.push(json!(open_line(&ph, members, scope).await));
    }
    let all = api.whole("/api/v1/lines").await;
    assert_eq!(ids(&all), lines, "the lines, oldest first");
    for limit in [1, 2, 4, 5] {
        let pages = api.walk(&format!("/api/v1/lines?limit={limit}"), limit, 6).await;
        assert_eq!(once(&pages), lines, "limit {limit}");
    }
    let (first, next) = api.page("/api/v1/lines?limit=2").await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    lines.push(json!(open_line(&ph, &["PH", "CN", "VN"], "ADMM-Plus").await));
    let mut walked = vec![first];
    walked.extend(api.walk(&next.expect("more remain"), 2, 4).await);
    assert_eq!(once(&walked), lines, "the line opened between pages is read once, last");
    let line_id = lines[0].as_str().unwrap();
    api.refuses_bad_pages("/api/v1/lines", "after", &[&MALFORMED[..], &[line_id, &format!("1.{line_id}.2")]].concat())
        .await;

    // Drafts, newest first; one held between two pages is on no later page.
    let path = format!("/api/v1/lines/{line_id}/messages");
    let mut drafts = Vec::new();
    for n in 0..5 {
        let a = api
            .call(
                Method::POST,
                &path,
                Some(json!({"precedence": "FLASH", "subject": format!("held {n}"), "body": "b"})),
            )
            .await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
        drafts.insert(0, a.body["id"].clone());
    }
    assert_eq!(ids(&api.whole("/api/v1/drafts").await), drafts, "the drafts, newest first");
    for limit in [1, 2, 5] {
        let pages = api.walk(&format!("/api/v1/drafts?limit={limit}"), limit, 6).await;
        assert_eq!(once(&pages), drafts, "limit {limit}");
    }
    let (first, next) = api.page("/api/v1/drafts?limit=2").await;
    let a = api.call(Method::POST, &path, Some(json!({"precedence": "FLASH", "subject": "late", "body": "b"}))).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    let mut walked = vec![first];
    walked.extend(api.walk(&next.expect("more remain"), 2, 4).await);
    assert_eq!(once(&walked), drafts, "the drafts as they were when the walk began");
    api.refuses_bad_pages("/api/v1/drafts", "before", &MALFORMED).await;
    net.stop_all().await;
}

/// A `link_no_answer` alarm about line `n`.
fn alarm(member: &MemberCode, n: u8, at_ms: u64) -> AlarmChange {
    AlarmChange {
        kind: AlarmKind::LinkNoAnswer,
        op: AlarmOp::Raise,
        line: adi_wire::LineId([n; 16]),
        member: member.clone(),
        message: None,
        at_ms,
        detail: format!("alarm {n}"),
        addressed_to: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_page_newest_first_with_the_storage_alarm_from_memory_first_on_the_first_page() {
    let mut net = Net::init(&["PH", "CN"]);
    // The node looks whether its database takes writes again only after the test.
    set_limits(&net, "PH", |l| l.storage_probe_ms = Some(3_600_000));
    for code in ["PH", "CN"] {
        net.start_code(code).await;
    }
    let api = Api::of(&net, "PH");
    let state = net.node("PH").state.clone();
    let cn = MemberCode::parse("CN").unwrap();
    let raise = |alarms: Vec<AlarmChange>| {
        let store = state.store.clone();
        async move { store.commit(WriteBatch { alarms, ..WriteBatch::default() }).wait().await.unwrap() }
    };
    raise((1..=7).map(|n| alarm(&cn, n, 1_000 + u64::from(n))).collect()).await;
    let mut cleared = alarm(&cn, 3, 2_000);
    cleared.op = AlarmOp::Clear;
    raise(vec![cleared]).await;

    let open = api.whole("/api/v1/alarms").await;
    let every = api.whole("/api/v1/alarms?all=true").await;
    assert_eq!((open.len(), every.len()), (6, 7));
    let numbers = |items: &[Value]| ids(items).iter().map(|i| i.as_u64().unwrap()).collect::<Vec<u64>>();
    assert!(numbers(&every).windows(2).all(|w| w[0] > w[1]), "newest first: {every:?}");
    for limit in [1, 2, 3, 6, 7] {
        let pages = api.walk(&format!("/api/v1/alarms?limit={limit}"), limit, 8).await;
        assert_eq!(once(&pages), ids(&open), "open alarms, limit {limit}");
        let pages = api.walk(&format!("/api/v1/alarms?all=true&limit={limit}"), limit, 8).await;
        assert_eq!(once(&pages), ids(&every), "all alarms, limit {limit}");
    }
    let (_, next) = api.page("/api/v1/alarms?all=true&limit=2").await;
    assert!(next.as_deref().is_some_and(|n| n.contains("all=true")), "the filter is kept: {next:?}");

    // An alarm raised between two pages is newer than the place reached: on no later page.
    let (first, next) = api.page("/api/v1/alarms?limit=2").await;
    raise(vec![alarm(&cn, 50, 3_000)]).await;
    let mut walked = vec![first];
    walked.extend(api.walk(&next.expect("more remain"), 2, 4).await);
    assert_eq!(once(&walked), ids(&open), "the alarms as they were when the walk began");
    let open = api.whole("/api/v1/alarms").await;
    assert_eq!(open.len(), 7);

    // While the database cannot be written, the storage alarm is shown from memory: first on
    // the first page (and only there), the page still `limit` long.
    state.fail_storage(&StoreError::Unwritable { fault: WriteFault::DiskFull, generation: u64::MAX });
    let (page, _) = api.page("/api/v1/alarms?limit=3").await;
    assert_eq!((page.len(), &page[0]["id"], &page[0]["kind"]), (3, &json!(0), &json!("storage")), "{page:?}");
    for limit in [1, 2, 3, 8] {
        let pages = api.walk(&format!("/api/v1/alarms?limit={limit}"), limit, 9).await;
        let mut expected = vec![json!(0)];
        expected.extend(ids(&open));
        assert_eq!(once(&pages), expected, "limit {limit}, with the storage alarm");
    }

    api.refuses_bad_pages("/api/v1/alarms?all=true", "before", &MALFORMED).await;
    api.refuses_bad_pages("/api/v1/evidence", "before", &MALFORMED).await;
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_translations_and_checkpoints_page_and_refuse_cursors_they_did_not_make() {
    let net = Net::start(&["PH", "CN"]).await;
    let ph = net.client("PH");
    let api = Api::of(&net, "PH");
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let decisions = format!("/api/v1/lines/{line}/decisions");
    let mut proposed = Vec::new();
    for n in 0..4 {
        let a = api.call(Method::POST, &decisions, Some(json!({"text": format!("decision {n}")}))).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        proposed.push(a.body["id"].clone());
    }
    assert_eq!(ids(&api.whole(&decisions).await), proposed, "oldest first");
    for limit in [1, 3] {
        let pages = api.walk(&format!("{decisions}?limit={limit}"), limit, 5).await;
        assert_eq!(once(&pages), proposed, "limit {limit}");
    }
    let decision = proposed[0].as_str().unwrap();
    let shouted = format!("1.{}", decision.to_uppercase());
    let cursors = [&MALFORMED[..], &[decision, &shouted]].concat();
    api.refuses_bad_pages(&decisions, "after", &cursors).await;

    let message = send(&ph, &line, "ROUTINE", "to translate").await;
    let translations = format!("/api/v1/messages/{message}/translations");
    assert!(api.whole(&translations).await.is_empty());
    api.refuses_bad_pages(&translations, "after", &cursors).await;

    let checkpoints = format!("/api/v1/lines/{line}/checkpoints");
    let a = api.call(Method::POST, &checkpoints, None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(!api.whole(&checkpoints).await.is_empty());
    let root = "0".repeat(64);
    api.refuses_bad_pages(
        &checkpoints,
        "after",
        &[&MALFORMED[..], &[&format!("1.2.{root}"), &format!("1.2.{root}.zz")]].concat(),
    )
    .await;
    net.stop_all().await;
}
