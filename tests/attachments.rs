//! A document on the line, between real node processes, as officers send and save it with the
//! CLI: a 20 MB PDF sent with `adi send --attach` while the link between the nodes is cut and
//! healed three times, both nodes killed and restarted during the last cut, arrives intact (`adi attachment get`, the same SHA-256); a FLASH sent
//! during the transfer rings at the other desk in about its usual time (both measured, in the
//! output); and the line's export verifies, until one byte of an exported file is changed. A PDF
//! is previewed in the console (Chromium) as pages the receiving node draws in a bounded process
//! of its own, and what cannot be drawn is refused with its reason.
//!
//! Each node reaches the other through a relay the test cuts and heals, as `partition.rs` does.

#[allow(dead_code)]
#[path = "../crates/node/tests/common/browser.rs"]
mod browser;
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use adi_node::client::Client;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Digest;
use support::{endpoint_of, eventually, reroute, wait_healthy, Member, Procs, Severable};

const WAIT: Duration = Duration::from_secs(120);
const CUTS: usize = 3;

/// Bytes that look like a PDF and do not compress.
fn document(size: usize) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n".to_vec();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(size);
    out
}

/// Runs `adi` as `member`'s operator; its output, or the failure with both streams.
fn adi(args: &[&str], member: Option<&Member>) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_adi"));
    for var in ["ADI_URL", "ADI_TOKEN", "ADI_PIN", "RUST_LOG"] {
        cmd.env_remove(var);
    }
    if let Some(m) = member {
        cmd.env("ADI_URL", &m.url).env("ADI_TOKEN", &m.token);
    }
    let out = cmd.args(args).env("NO_COLOR", "1").output().expect("adi runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// How long a FLASH from `from` takes to show at `to`'s desk, polled every 10 ms.
async fn flash_time(from: &Client, to: &Client, line: &str, subject: &str) -> Duration {
    let started = Instant::now();
    let body = json!({"precedence": "FLASH", "subject": subject, "body": "Answer now."});
    let sent = from.call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&body)).await.unwrap();
    let id = sent["id"].as_str().unwrap().to_string();
    loop {
        let (status, _) = to.request(Method::GET, &format!("/api/v1/messages/{id}"), None).await.unwrap();
        if status == StatusCode::OK {
            return started.elapsed();
        }
        assert!(started.elapsed() < WAIT, "the FLASH did not reach the other desk in {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn held_at(c: &Client, message: &str) -> u64 {
    match c.request(Method::GET, &format!("/api/v1/messages/{message}"), None).await {
        Ok((StatusCode::OK, m)) => m["attachments"][0]["held"].as_u64().unwrap_or(0),
        _ => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_20_mb_pdf_crosses_three_cuts_intact_while_a_flash_rings_in_its_usual_time() {
    let mut net = Procs::init(&["PH", "CN"]);
    for m in &net.members {
        let text = std::fs::read_to_string(&m.config).unwrap();
        // Retries at most 2 s apart, so that a healed link resumes soon.
        std::fs::write(&m.config, text.replace("[limits]\n", "[limits]\nretry_delay_ms_max = 2000\n")).unwrap();
    }
    let to_cn = Severable::start(endpoint_of(&net, "PH", "CN")).await.unwrap();
    let to_ph = Severable::start(endpoint_of(&net, "CN", "PH")).await.unwrap();
    reroute(&net, "PH", "CN", &to_cn.addr);
    reroute(&net, "CN", "PH", &to_ph.addr);
    for code in ["PH", "CN"] {
        net.start(code);
        wait_healthy(&net.member(code).url).await;
    }
    let (ph, cn) = (net.client("PH"), net.client("CN"));
    let v = ph.call(Method::POST, "/api/v1/lines", Some(&json!({"members": ["PH", "CN"], "scope": "ADMM-Plus"}))).await;
    let line = v.unwrap()["id"].as_str().unwrap().to_string();
    let quiet = flash_time(&ph, &cn, &line, "Before the survey").await;

    let dir = net.dir.path().to_path_buf();
    let pdf = dir.join("Survey of the shoal.pdf");
    let file = document(20 * 1024 * 1024);
    std::fs::write(&pdf, &file).unwrap();
    let sha = hex::encode(sha2::Sha256::digest(&file));
    let started = Instant::now();
    let path = pdf.to_str().unwrap();
    let args = ["send", "--line", &line, "--subject", "The survey", "--body", "Attached.", "--attach", path, "--json"];
    let (ok, out, err) = adi(&args, Some(net.member("PH")));
    assert!(ok, "adi send --attach failed: {err}");
    assert!(err.contains("uploading"), "{err}");
    let sent: Value = serde_json::from_str(&out).unwrap();
    let id = sent["id"].as_str().unwrap().to_string();
    let chunks = sent["attachments"][0]["chunks"].as_u64().unwrap();
    assert_eq!(sent["attachments"][0]["sha256"].as_str(), Some(sha.as_str()));

    // Three cuts, each once more of the file has crossed.
    let mut during = None;
    for cut in 0..CUTS {
        let before = held_at(&cn, &id).await;
        eventually(WAIT, "more of the file at CN", || async {
            let held = held_at(&cn, &id).await;
            (held > before || held == chunks).then_some(())
        })
        .await;
        to_cn.cut();
        to_ph.cut();
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        if cut == CUTS - 1 {
            // The last cut also kills both nodes (SIGKILL) mid-transfer: each takes up where its
            // store left off.
            let held = held_at(&cn, &id).await;
            assert!(held < chunks, "the file crossed before the restart ({held} of {chunks} chunks)");
            for code in ["PH", "CN"] {
                net.kill(code);
                net.start(code);
                wait_healthy(&net.member(code).url).await;
            }
            eprintln!("both nodes killed and restarted with {held} of {chunks} chunks at CN");
        }
        to_cn.heal();
        to_ph.heal();
        let healed = held_at(&cn, &id).await;
        eprintln!("cut {} healed with {healed} of {chunks} chunks at CN", cut + 1);
        if cut == 0 {
            // Once the link is back and the transfer goes on, a FLASH.
            eventually(WAIT, "the transfer to go on", || async {
                let held = held_at(&cn, &id).await;
                (held > healed).then_some(())
            })
            .await;
            let held = held_at(&cn, &id).await;
            during = Some((flash_time(&ph, &cn, &line, "During the survey").await, held));
        }
    }
    eventually(Duration::from_secs(300), "the whole file at CN", || async {
        (held_at(&cn, &id).await == chunks).then_some(())
    })
    .await;
    let (during, held) = during.unwrap();
    eprintln!(
        "20 MiB in {chunks} chunks across {CUTS} cuts and a restart of both nodes in {:?}; FLASH at the other desk: {quiet:?} on a quiet line, \
         {during:?} during the transfer (sent with {held} of {chunks} chunks there)",
        started.elapsed()
    );
    assert!(held < chunks, "the FLASH was sent after the transfer ended");
    assert!(during < quiet * 10 + Duration::from_millis(500), "a FLASH behind a document took {during:?}");

    // CN's officer saves it: the same bytes.
    let got = dir.join("received.pdf");
    let (ok, out, err) = adi(&["attachment", "get", &id, &sha, "--out", got.to_str().unwrap()], Some(net.member("CN")));
    assert!(ok && out.contains(&sha), "{out}{err}");
    assert_eq!(hex::encode(sha2::Sha256::digest(std::fs::read(&got).unwrap())), sha);
    let shown = adi(&["show", &id], Some(net.member("CN"))).1;
    assert!(
        shown.contains("Survey of the shoal.pdf") && shown.contains(&format!("{chunks} of {chunks} chunks")),
        "{shown}"
    );

    // The record: CN's export verifies with the file in it, and fails on one byte changed.
    let bundle = dir.join("line.json");
    let (ok, _, err) = adi(&["export", "--line", &line, "--out", bundle.to_str().unwrap()], Some(net.member("CN")));
    assert!(ok, "{err}");
    let roster = roster_of(net.member("CN"));
    let verify = |file: &Path| adi(&["verify", file.to_str().unwrap(), "--roster", roster.to_str().unwrap()], None);
    let (ok, out, err) = verify(&bundle);
    assert!(ok, "{out}{err}");
    assert!(out.contains("its chunks make the file its message signed"), "{out}");
    assert!(out.contains("Survey of the shoal.pdf (application/pdf, 20971520 bytes"), "{out}");
    let mut b: Value = serde_json::from_str(&std::fs::read_to_string(&bundle).unwrap()).unwrap();
    let chunk = b["envelopes"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .filter(|e| e["content"].as_str().is_some_and(|c| c.len() > 100_000))
        .nth(3)
        .expect("a chunk of the file in the bundle");
    let mut content = chunk["content"].as_str().unwrap().to_string();
    // A byte of the file's data, well inside the content, changed.
    let at = content.len() / 2;
    let flipped = if &content[at..at + 1] == "0" { "1" } else { "0" };
    content.replace_range(at..at + 1, flipped);
    chunk["content"] = json!(content);
    let changed = dir.join("changed.json");
    std::fs::write(&changed, serde_json::to_string(&b).unwrap()).unwrap();
    let (ok, out, err) = verify(&changed);
    assert!(!ok, "a bundle with a changed byte in a file verifies:\n{out}");
    assert!(err.contains("checks failed") && out.contains("FAIL"), "{out}{err}");
}

/// The roster file a member's configuration names: the anchor a verifier holds.
fn roster_of(member: &Member) -> std::path::PathBuf {
    let config = Path::new(&member.config);
    let file: adi_node::config::ConfigFile = toml::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
    config.parent().unwrap().join(file.roster)
}

/// A PDF of three pages written here: a red square on page 1, a line of text on page 2, a blue
/// square on page 3; every page US letter (612 × 792 points).
fn chart() -> Vec<u8> {
    let pages = [
        "1 0 0 rg 100 500 200 150 re f".to_string(),
        "0 g BT /F1 24 Tf 72 700 Td (Track of the vessel, 0412 UTC) Tj ET".to_string(),
        "0 0 1 rg 300 100 200 200 re f".to_string(),
    ];
    pdf_of(&pages.iter().map(|p| p.as_bytes().to_vec()).collect::<Vec<_>>(), None)
}

/// A PDF whose pages have these content streams (compressed with `Flate` when `filter` says so).
fn pdf_of(contents: &[Vec<u8>], filter: Option<&str>) -> Vec<u8> {
    let n = contents.len();
    let kids: Vec<String> = (0..n).map(|i| format!("{} 0 R", 4 + 2 * i)).collect();
    let mut objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        format!("<< /Type /Pages /Kids [{}] /Count {n} >>", kids.join(" ")).into_bytes(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
    ];
    for (i, content) in contents.iter().enumerate() {
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {} 0 R /Resources << /Font << /F1 3 0 R >> >> >>",
                5 + 2 * i
            )
            .into_bytes(),
        );
        let filter = filter.map(|f| format!(" /Filter /{f}")).unwrap_or_default();
        let mut stream = format!("<< /Length {}{filter} >>\nstream\n", content.len()).into_bytes();
        stream.extend_from_slice(content);
        stream.extend_from_slice(b"\nendstream");
        objects.push(stream);
    }
    let mut out = b"%PDF-1.7\n".to_vec();
    let mut places = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        places.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(o);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for p in places {
        out.extend_from_slice(format!("{p:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes(),
    );
    out
}

/// A page whose content stream unpacks to `unpacked` bytes of spaces from a few hundred kilobytes:
/// built to exhaust the memory of whatever parses it.
fn bomb(unpacked: usize) -> Vec<u8> {
    use std::io::Write;
    let mut packed = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let block = vec![b' '; 1024 * 1024];
    for _ in 0..unpacked / block.len() {
        packed.write_all(&block).unwrap();
    }
    pdf_of(&[packed.finish().unwrap()], Some("FlateDecode"))
}

/// The pixel at (x, y) of a PNG image: red, green, blue.
fn pixel(png_bytes: &[u8], x: u32, y: u32) -> (u8, u8, u8) {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png_bytes)).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = info.color_type.samples();
    let at = (y as usize * info.width as usize + x as usize) * step;
    (buf[at], buf[at + 1], buf[at + 2])
}

/// A PDF from a peer is previewed in the console as its pages, drawn by the receiving node with
/// its own program in a bounded process of its own (`adi preview-pdf`): the browser shows images,
/// never the document. What the node cannot or must not draw is refused with its reason: a file
/// that is not a PDF, a page it does not have, bytes that are no PDF, a document built to exhaust
/// the memory of whatever parses it (the drawing process dies of its bound; the node serves on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pdf_is_previewed_as_pages_the_node_draws_in_a_bounded_process() {
    const PASSWORD: &str = "the first watch of the night";
    let mut net = Procs::init(&["PH", "CN"]);
    let cn_member = net.member("CN").clone();
    {
        let text = std::fs::read_to_string(&cn_member.config).unwrap();
        // A drawing process may take 256 MiB: the document below unpacks to more.
        let text = text.replace("[limits]\n", "[limits]\npreview_memory_bytes_max = 268435456\n");
        std::fs::write(&cn_member.config, text).unwrap();
        let config = adi_node::NodeConfig::load(Path::new(&cn_member.config)).unwrap();
        let store = adi_node::state::open_store(&config).unwrap();
        adi_node::setup::set_password(&store, "duty-CN", PASSWORD).unwrap();
    }
    for code in ["PH", "CN"] {
        net.start(code);
        wait_healthy(&net.member(code).url).await;
    }
    let (ph, cn) = (net.client("PH"), net.client("CN"));
    let v = ph.call(Method::POST, "/api/v1/lines", Some(&json!({"members": ["PH", "CN"], "scope": "ADMM-Plus"}))).await;
    let line = v.unwrap()["id"].as_str().unwrap().to_string();
    let upload = |name: &'static str, media_type: &'static str, bytes: Vec<u8>| {
        let ph = ph.clone();
        async move {
            let path = format!("/api/v1/attachments?name={}", adi_node::http::attachments::percent_encoded(name));
            let (status, _, body) = ph.request_typed(Method::POST, &path, media_type, bytes).await.unwrap();
            assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
            serde_json::from_slice::<Value>(&body).unwrap()["sha256"].as_str().unwrap().to_string()
        }
    };
    let files = [
        upload("Chart of the encounter.pdf", "application/pdf", chart()).await,
        upload("Not a document.pdf", "application/pdf", document(40_000)).await,
        upload("Unpacks too far.pdf", "application/pdf", bomb(400 * 1024 * 1024)).await,
        upload("Photograph.gif", "image/gif", b"GIF89a not really".to_vec()).await,
    ];
    let body = json!({"precedence": "PRIORITY", "subject": "The chart", "body": "Attached.", "attachments": files});
    let sent = ph.call(Method::POST, &format!("/api/v1/lines/{line}/messages"), Some(&body)).await.unwrap();
    let id = sent["id"].as_str().unwrap().to_string();
    eventually(WAIT, "every file whole at CN", || async {
        let m = cn.call(Method::GET, &format!("/api/v1/messages/{id}"), None).await.ok()?;
        let files = m["attachments"].as_array()?;
        (files.len() == 4 && files.iter().all(|a| a["held"] == a["chunks"])).then_some(())
    })
    .await;
    let at = |file: &str| format!("/api/v1/messages/{id}/attachments/{file}");

    // The chart: three pages, each drawn as an image 1,000 pixels wide (`preview_width_px`).
    let (status, v) = cn.request(Method::GET, &format!("{}/pages", at(&files[0])), None).await.unwrap();
    assert_eq!((status, &v), (StatusCode::OK, &json!({"pages": 3, "shown": 3})));
    let started = Instant::now();
    let (status, headers, png) =
        cn.request_full(Method::GET, &format!("{}/pages/1", at(&files[0])), None).await.unwrap();
    let drawn_in = started.elapsed();
    assert_eq!((status, headers["content-type"].to_str().unwrap()), (StatusCode::OK, "image/png"));
    assert!(headers["content-security-policy"].to_str().unwrap().starts_with("sandbox;"), "{headers:?}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let scale = 1000.0 / 612.0;
    let point = |x: f64, y: f64| ((x * scale) as u32, ((792.0 - y) * scale) as u32);
    let (x, y) = point(200.0, 575.0);
    assert_eq!(pixel(&png, x, y), (255, 0, 0), "page 1 is not the red square");
    let (x, y) = point(20.0, 20.0);
    assert_eq!(pixel(&png, x, y), (255, 255, 255), "page 1 is not white around the square");
    let (_, _, third) = cn.request_full(Method::GET, &format!("{}/pages/3", at(&files[0])), None).await.unwrap();
    let (x, y) = point(400.0, 200.0);
    assert_eq!(pixel(&third, x, y), (0, 0, 255), "page 3 is not the blue square");
    eprintln!("page 1 of the chart drawn and served in {:.1} ms", drawn_in.as_secs_f64() * 1000.0);

    // What cannot be drawn, refused with its reason.
    let refused = |route: String, status: StatusCode, code: &'static str, said: &'static str| {
        let cn = cn.clone();
        async move {
            let (got, v) = cn.request(Method::GET, &route, None).await.unwrap();
            assert_eq!((got, v["error"].as_str()), (status, Some(code)), "{route}: {v}");
            assert!(v["message"].as_str().unwrap().contains(said), "{route}: {v}");
        }
    };
    refused(format!("{}/pages/4", at(&files[0])), StatusCode::NOT_FOUND, "no_page", "3 page(s)").await;
    refused(format!("{}/pages", at(&files[1])), StatusCode::UNPROCESSABLE_ENTITY, "unreadable_pdf", "cannot be drawn")
        .await;
    let started = Instant::now();
    refused(format!("{}/pages/1", at(&files[2])), StatusCode::UNPROCESSABLE_ENTITY, "unreadable_pdf", "memory").await;
    eprintln!("a document unpacking to 400 MiB refused in {:.1} ms", started.elapsed().as_secs_f64() * 1000.0);
    refused(format!("{}/pages", at(&files[3])), StatusCode::UNSUPPORTED_MEDIA_TYPE, "not_pdf", "image/gif").await;
    // The node serves on, and draws again.
    let (status, _, again) = cn.request_full(Method::GET, &format!("{}/pages/1", at(&files[0])), None).await.unwrap();
    assert_eq!((status, again), (StatusCode::OK, png.clone()));

    // In the console: the pages, as images, the red square where it is drawn.
    let page = browser::Browser::start().await;
    page.sign_in(&format!("{}/console", cn_member.url), "duty-CN", PASSWORD).await;
    page.click(&format!("#line-items button[data-line='{line}']")).await;
    page.wait_text("#conversation", "Chart of the encounter.pdf").await;
    page.click("button[aria-label='Preview Chart of the encounter.pdf']").await;
    let pages = "[aria-label='Pages of Chart of the encounter.pdf']";
    page.until(
        &format!("return document.querySelectorAll(\"{pages} img\").length === 3;"),
        "three pages in the preview",
    )
    .await;
    assert_eq!(
        page.attribute(&format!("{pages} img:first-child"), "alt").await.as_deref(),
        Some("Page 1 of 3 of Chart of the encounter.pdf")
    );
    let red = format!(
        "const i = document.querySelector(\"{pages} img\"); if (!i.complete || i.naturalWidth !== 1000) return null; \
         const c = document.createElement('canvas'); c.width = i.naturalWidth; c.height = i.naturalHeight; \
         const g = c.getContext('2d'); g.drawImage(i, 0, 0); return [...g.getImageData({x}, {y}, 1, 1).data];",
        x = (200.0 * scale) as u32,
        y = ((792.0 - 575.0) * scale) as u32,
    );
    let seen = eventually(WAIT, "page 1 shown in the console", || async {
        let v = page.script(&red).await;
        (!v.is_null()).then_some(v)
    })
    .await;
    assert_eq!(seen, json!([255, 0, 0, 255]), "the console does not show page 1's red square");
    // The document that cannot be drawn: said so, with the download still offered.
    page.click("button[aria-label='Preview Not a document.pdf']").await;
    page.wait_text("[aria-label='Pages of Not a document.pdf']", "cannot be shown here").await;
    assert!(page.count("a[aria-label='Download Not a document.pdf']").await > 0, "no download offered");
    page.script(&format!("document.querySelector(\"{pages}\").scrollIntoView(); return 0;")).await;
    page.screenshot("console-pdf-preview").await;
    page.quit().await;
    drop(net);
}
