//! Files attached to messages (`POST /api/v1/attachments`, a message's `attachments`, `GET
//! /api/v1/messages/{id}/attachments/{sha256}`): a file travels in chunks, each encrypted in the
//! line's group, and arrives whole, checked against the SHA-256 its message signed; each
//! recipient's progress shows at the sender; a FLASH sent behind a file's chunks overtakes them;
//! bad files and bad names are refused clearly.

#[allow(dead_code)]
#[path = "common/browser.rs"]
mod browser;
mod common;

use std::time::{Duration, Instant};

use adi_node::client::Client;
use common::{eventually, open_line, set_limits, wait_delivered, Net};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Digest;

/// Bytes that look like a PDF and do not compress: a file as an officer would attach one.
fn document(size: usize, seed: u64) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n".to_vec();
    let mut x = seed | 1;
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(size);
    out
}

async fn upload(c: &Client, name: &str, media_type: &str, bytes: &[u8]) -> (StatusCode, Value) {
    let path = format!("/api/v1/attachments?name={}", urlencode(name));
    let (status, _, body) = c.request_typed(Method::POST, &path, media_type, bytes.to_vec()).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn message(c: &Client, id: &str) -> Value {
    c.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.unwrap()
}

async fn send(c: &Client, line: &str, precedence: &str, subject: &str, files: &[&str]) -> (StatusCode, Value) {
    let body = json!({"precedence": precedence, "class": "OPERATIONAL", "subject": subject, "body": "See the file.",
                      "attachments": files});
    c.request(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&body)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_attached_arrives_whole_and_checked_and_bad_files_are_refused() {
    let net = Net::start(&["PH", "CN"]).await;
    let (ph, cn) = (net.client("PH"), net.client("CN"));
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let file = document(1_000_000, 7);
    let sha = hex::encode(sha2::Sha256::digest(&file));
    let (status, up) = upload(&ph, "Chart of the encounter.pdf", "application/pdf", &file).await;
    assert_eq!(status, StatusCode::CREATED, "{up}");
    assert_eq!((up["sha256"].as_str(), up["size"].as_u64()), (Some(sha.as_str()), Some(1_000_000)), "{up}");

    let (status, sent) = send(&ph, &line, "IMMEDIATE", "The chart", &[&sha]).await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let id = sent["id"].as_str().unwrap().to_string();
    let a = &sent["attachments"][0];
    let chunks = a["chunks"].as_u64().unwrap();
    assert_eq!(
        (a["name"].as_str(), a["media_type"].as_str()),
        (Some("Chart of the encounter.pdf"), Some("application/pdf"))
    );
    assert_eq!((a["sha256"].as_str(), a["held"].as_u64()), (Some(sha.as_str()), Some(chunks)), "{a}");
    assert!(chunks > 1, "a file of 1 MB comes in one chunk: {a}");
    wait_delivered(&ph, &id, Duration::from_secs(30)).await;

    // At CN, whole, the same bytes.
    eventually(Duration::from_secs(60), "every chunk at CN", || async {
        let m = message(&cn, &id).await;
        (m["attachments"][0]["held"].as_u64() == Some(chunks)).then_some(())
    })
    .await;
    let path = format!("/api/v1/messages/{id}/attachments/{sha}");
    let (status, headers, got) = cn.request_full(Method::GET, &path, None).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(hex::encode(sha2::Sha256::digest(&got)), sha, "the file changed on the way");
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert!(headers["content-disposition"].to_str().unwrap().starts_with("attachment; filename*=UTF-8''Chart%20of"));
    // A PDF is never shown by the browser (its pages are drawn by the node): asked inline, it is
    // still a download, sandboxed.
    let (status, headers, _) = cn.request_full(Method::GET, &format!("{path}?inline=true"), None).await.unwrap();
    assert_eq!((status, headers["content-type"].to_str().unwrap()), (StatusCode::OK, "application/octet-stream"));
    assert!(headers["content-disposition"].to_str().unwrap().starts_with("attachment;"), "{headers:?}");
    assert!(headers["content-security-policy"].to_str().unwrap().starts_with("sandbox"), "{headers:?}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    // A node started without a drawing program (`adi serve` names itself; tests/attachments.rs
    // draws pages through it) says so; a page out of bounds is refused before anything is drawn.
    for (route, status, code) in [
        (format!("{path}/pages"), StatusCode::SERVICE_UNAVAILABLE, "no_previewer"),
        (format!("{path}/pages/1"), StatusCode::SERVICE_UNAVAILABLE, "no_previewer"),
        (format!("{path}/pages/0"), StatusCode::BAD_REQUEST, "bad_page"),
        (format!("{path}/pages/101"), StatusCode::BAD_REQUEST, "bad_page"),
        (format!("{path}/pages/one"), StatusCode::BAD_REQUEST, "bad_page"),
    ] {
        let (got, v) = cn.request(Method::GET, &route, None).await.unwrap();
        assert_eq!((got, v["error"].as_str()), (status, Some(code)), "{route}: {v}");
    }
    // PH sees each recipient's progress: every chunk decrypted at CN.
    eventually(Duration::from_secs(60), "CN's node decrypted every chunk, as PH sees it", || async {
        let m = message(&ph, &id).await;
        let d = &m["attachments"][0]["delivered"];
        (d == &json!([{"member": "CN", "chunks": chunks}])).then_some(())
    })
    .await;

    // Bad files and bad names: refused, nothing sent.
    for (name, media_type, bytes, code) in [
        ("../escape.pdf", "application/pdf", &file[..10], "bad_attachment_name"),
        ("line\nbreak.pdf", "application/pdf", &file[..10], "bad_attachment_name"),
        ("note.txt", "not a type", &file[..10], "bad_media_type"),
        ("empty.pdf", "application/pdf", &file[..0], "bad_attachment_size"),
    ] {
        let (status, v) = upload(&ph, name, media_type, bytes).await;
        assert_eq!((status, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{name}: {v}");
    }
    let never = hex::encode([9u8; 32]);
    let (status, v) = send(&ph, &line, "ROUTINE", "no such file", &[&never]).await;
    assert_eq!(
        (status, v["error"].as_str(), v["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unknown_upload"), Some("attachments")),
        "{v}"
    );
    let (status, v) = send(&ph, &line, "ROUTINE", "twice", &[&sha, &sha]).await;
    assert_eq!((status, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("duplicate_attachment")), "{v}");
    let (status, _, body) =
        cn.request_full(Method::GET, &format!("/api/v1/messages/{id}/attachments/{never}"), None).await.unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND, "{}", String::from_utf8_lossy(&body));
    net.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_files_are_bounded_by_a_daily_quota() {
    let mut net = Net::init(&["PH", "CN"]);
    set_limits(&net, "PH", |l| l.attachment_bytes_per_day_max = Some(500_000));
    net.start_code("PH").await;
    net.start_code("CN").await;
    let ph = net.client("PH");
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    let (first, second) = (document(300_000, 5), document(300_000, 6));
    let (_, a) = upload(&ph, "first.pdf", "application/pdf", &first).await;
    let (_, b) = upload(&ph, "second.pdf", "application/pdf", &second).await;
    let (status, v) = send(&ph, &line, "ROUTINE", "the first", &[a["sha256"].as_str().unwrap()]).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (status, v) = send(&ph, &line, "ROUTINE", "the second", &[b["sha256"].as_str().unwrap()]).await;
    assert_eq!((status, v["error"].as_str()), (StatusCode::BAD_REQUEST, Some("attachment_quota")), "{v}");
    assert!(v["message"].as_str().unwrap().contains("attachment_bytes_per_day_max"), "{v}");
    let listed = ph.call(Method::GET, &format!("/api/v1/lines/{line}/messages"), None).await.unwrap();
    let subjects: Vec<&str> = listed.as_array().unwrap().iter().filter_map(|m| m["subject"].as_str()).collect();
    assert_eq!(subjects, ["the first"], "a message over the quota was sent");
    // A message without files is not counted against it.
    let (status, v) = send(&ph, &line, "ROUTINE", "words only", &[]).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    net.stop_all().await;
}

/// How long a FLASH sent from `from` takes to be at `to`, as `to`'s operator sees it.
async fn flash_time(from: &Client, to: &Client, line: &str) -> Duration {
    let started = Instant::now();
    let body = json!({"precedence": "FLASH", "subject": "Collision at the shoal", "body": "Answer now."});
    let flash = from.call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&body)).await.unwrap();
    let flash = flash["id"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(60), "the FLASH at CN", || async {
        let (status, _) = to.request(Method::GET, &format!("/api/v1/messages/{flash}"), None).await.ok()?;
        (status == StatusCode::OK).then(|| started.elapsed())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flash_sent_behind_a_files_chunks_overtakes_them() {
    let net = Net::start(&["PH", "CN"]).await;
    let (ph, cn) = (net.client("PH"), net.client("CN"));
    let line = open_line(&ph, &["PH", "CN"], "ADMM-Plus").await;
    // The FLASH's usual time to CN, on a quiet line.
    let quiet = flash_time(&ph, &cn, &line).await;
    let file = document(20 * 1024 * 1024, 11);
    let (status, up) = upload(&ph, "Survey.pdf", "application/pdf", &file).await;
    assert_eq!(status, StatusCode::CREATED, "{up}");
    let sha = up["sha256"].as_str().unwrap().to_string();
    let (status, sent) = send(&ph, &line, "ROUTINE", "The survey", &[&sha]).await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let id = sent["id"].as_str().unwrap().to_string();
    let chunks = sent["attachments"][0]["chunks"].as_u64().unwrap();
    // Once the transfer is under way.
    eventually(Duration::from_secs(60), "the file's first chunks at CN", || async {
        let (_, m) = cn.request(Method::GET, &format!("/api/v1/messages/{id}"), None).await.ok()?;
        (m["attachments"][0]["held"].as_u64().unwrap_or(0) > 0).then_some(())
    })
    .await;
    let during = flash_time(&ph, &cn, &line).await;
    let held = message(&cn, &id).await["attachments"][0]["held"].as_u64().unwrap_or(0);
    eprintln!(
        "FLASH at CN: {quiet:?} on a quiet line, {during:?} during the transfer of 20 MiB ({held} of {chunks} chunks there when it rang)"
    );
    assert!(held < chunks, "the FLASH waited for the whole file ({chunks} chunks) to arrive first");
    eventually(Duration::from_secs(300), "the whole file at CN", || async {
        let m = message(&cn, &id).await;
        (m["attachments"][0]["held"].as_u64() == Some(chunks)).then_some(())
    })
    .await;
    let (status, _, got) =
        cn.request_full(Method::GET, &format!("/api/v1/messages/{id}/attachments/{sha}"), None).await.unwrap();
    assert_eq!((status, hex::encode(sha2::Sha256::digest(&got))), (StatusCode::OK, sha));
    net.stop_all().await;
}

/// A GIF of one white pixel.
const PIXEL: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;";

/// In the console: an officer attaches a picture with the file picker and a note by dropping it
/// on the form, and sends; the other member's node holds both, whole. A file from the other
/// member is listed with the message, shown in the page (a picture as an image, a text in a frame
/// sandboxed without script; a PDF's preview, which this node cannot draw, says so) and
/// downloaded, the same bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_console_a_file_is_attached_previewed_and_downloaded() {
    const PASSWORD: &str = "the dog watch";
    let (net, line, console) = common::console_pair(|d| d.link_test_interval_s = 0, |_| {}, PASSWORD).await;
    let (ph, cn) = (net.client("PH"), net.client("CN"));
    let browser = browser::Browser::start().await;
    browser.sign_in(&console, "watch-ph", PASSWORD).await;
    browser.click(&format!("#line-items button[data-line='{line}']")).await;

    // Attach by the picker and by dropping, then send.
    browser.choose_files("#compose-files", &[("pixel.gif", "image/gif", PIXEL)]).await;
    let note = "Rendezvous at 0600 UTC.";
    let dropped = format!(
        "const dt = new DataTransfer(); dt.items.add(new File([{note:?}], 'note.txt', {{type: 'text/plain'}})); \
         document.getElementById('drop-zone').dispatchEvent(new DragEvent('drop', {{dataTransfer: dt, bubbles: true, cancelable: true}})); return 0;"
    );
    browser.script(&dropped).await;
    browser.wait_text("#compose-attached", "note.txt").await;
    assert!(browser.text("#compose-attached").await.contains("pixel.gif"));
    browser.type_into("#compose [name=subject]", "Two files").await;
    browser.type_into("#compose [name=body]", "A picture and a note.").await;
    browser.click("#compose button[type=submit]").await;
    browser.wait_text("#conversation", "Two files").await;
    let sent = eventually(Duration::from_secs(30), "the message at CN with both files whole", || async {
        let list = cn.call(Method::GET, &format!("/api/v1/lines/{line}/messages"), None).await.ok()?;
        let m = list.as_array()?.iter().find(|m| m["subject"] == "Two files")?.clone();
        let files = m["attachments"].as_array()?;
        (files.len() == 2 && files.iter().all(|a| a["held"] == a["chunks"])).then_some(m)
    })
    .await;
    for a in sent["attachments"].as_array().unwrap() {
        let path =
            format!("/api/v1/messages/{}/attachments/{}", sent["id"].as_str().unwrap(), a["sha256"].as_str().unwrap());
        let (status, _, got) = cn.request_full(Method::GET, &path, None).await.unwrap();
        assert_eq!(status, StatusCode::OK);
        let want: &[u8] = if a["name"] == "pixel.gif" { PIXEL } else { note.as_bytes() };
        assert_eq!(&got[..], want, "{a}");
    }
    assert_eq!(browser.count("#compose-attached li").await, 0, "the form still lists the files sent");

    // A file from CN: listed, previewed, downloaded.
    let pdf = document(300_000, 3);
    let (status, up) = upload(&cn, "Notice.pdf", "application/pdf", &pdf).await;
    assert_eq!(status, StatusCode::CREATED, "{up}");
    let (status, gif) = upload(&cn, "pixel.gif", "image/gif", PIXEL).await;
    assert_eq!(status, StatusCode::CREATED, "{gif}");
    let files = [up["sha256"].as_str().unwrap(), gif["sha256"].as_str().unwrap()];
    let (status, from_cn) = send(&cn, &line, "PRIORITY", "The notice", &files).await;
    assert_eq!(status, StatusCode::CREATED, "{from_cn}");
    let id = from_cn["id"].as_str().unwrap().to_string();
    wait_delivered(&cn, &id, Duration::from_secs(30)).await;
    eventually(Duration::from_secs(30), "the notice's files whole at PH", || async {
        let m = message(&ph, &id).await;
        m["attachments"].as_array()?.iter().all(|a| a["held"] == a["chunks"]).then_some(())
    })
    .await;
    let row = format!("#conversation tr[data-id='{id}']");
    browser.wait_text("#conversation", "The notice").await;
    browser.wait_text("#conversation", "Notice.pdf (application/pdf, 293 KiB)").await;
    let row = if browser.count(&row).await > 0 { row } else { "#conversation".to_string() };
    browser.click(&format!("{row} button[aria-label='Preview pixel.gif']")).await;
    let shown = "const i = document.querySelector(\"img[alt='Preview of pixel.gif']\"); return !!i && i.complete && i.naturalWidth === 1;";
    browser.until(shown, "the picture shown in the page").await;
    // A PDF is shown as pages the node draws; this node, started without a drawing program,
    // says it cannot (tests/attachments.rs shows the pages drawn), and the download stays.
    browser.click(&format!("{row} button[aria-label='Preview Notice.pdf']")).await;
    let said = browser.wait_text("[aria-label='Pages of Notice.pdf']", "cannot be shown here").await;
    assert!(said.contains("Download it to open it"), "{said}");
    assert_eq!(browser.count("[aria-label='Pages of Notice.pdf'] img").await, 0);
    // Plain text in a frame that runs no script.
    browser.click("button[aria-label='Preview note.txt']").await;
    let frame = "iframe[title='Preview of note.txt']";
    assert_eq!(browser.attribute(frame, "sandbox").await, Some(String::new()), "the text's frame is not sandboxed");
    let src = browser.attribute(frame, "src").await.unwrap();
    assert!(src.ends_with("?inline=true"), "{src}");
    let (status, headers, shown) = ph.request_full(Method::GET, &src, None).await.unwrap();
    assert_eq!((status, headers["content-type"].to_str().unwrap()), (StatusCode::OK, "text/plain"));
    assert!(headers["content-security-policy"].to_str().unwrap().starts_with("sandbox;"));
    assert_eq!(&shown[..], note.as_bytes());
    // Downloaded through the link the page gives, with the officer's session: the same bytes.
    let link = format!("{row} a[aria-label='Download Notice.pdf']");
    let fetched = browser
        .script(&format!(
            "const a = document.querySelector(\"{}\"); return fetch(a.href).then(async (r) => {{ \
               const b = new Uint8Array(await r.arrayBuffer()); const d = await crypto.subtle.digest('SHA-256', b); \
               return [r.status, r.headers.get('content-disposition'), [...new Uint8Array(d)].map((x) => x.toString(16).padStart(2, '0')).join('')]; }});",
            link.replace('"', "\\\"")
        ))
        .await;
    let sha = hex::encode(sha2::Sha256::digest(&pdf));
    assert_eq!(fetched[0], json!(200), "{fetched}");
    assert!(fetched[1].as_str().unwrap().starts_with("attachment; filename*=UTF-8''Notice.pdf"), "{fetched}");
    assert_eq!(fetched[2], json!(sha), "the download is not the file");
    browser.screenshot("console-attachments").await;
    browser.quit().await;
    net.stop_all().await;
}
