//! A document on the line, between real node processes, as officers send and save it with the
//! CLI: a 20 MB PDF sent with `adi send --attach` while the link between the nodes is cut and
//! healed three times arrives intact (`adi attachment get`, the same SHA-256); a FLASH sent
//! during the transfer rings at the other desk in about its usual time (both measured, in the
//! output); and the line's export verifies, until one byte of an exported file is changed.
//!
//! Each node reaches the other through a relay the test cuts and heals, as `partition.rs` does.

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
        "20 MiB in {chunks} chunks across {CUTS} cuts in {:?}; FLASH at the other desk: {quiet:?} on a quiet line, \
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
