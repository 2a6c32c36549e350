//! `adi operator` against a running node's store: operators added, listed, given a new token or
//! password, and removed while the node runs; the node honours each change at the operator's
//! next request.

mod support;

use std::process::{Command, Output, Stdio};

use adi_node::client::Client;
use hyper::Method;
use support::{init, serve, wait_healthy};

fn operator(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_adi"))
        .arg("operator")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = stdin {
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn status_with(url: &str, token: &str) -> u16 {
    let c = Client::new(url, Some(token.to_string()), None).unwrap();
    c.request(Method::GET, "/api/v1/lines", None).await.map(|(s, _)| s.as_u16()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_are_listed_given_new_tokens_and_removed_while_the_node_runs() {
    let dir = tempfile::tempdir().unwrap();
    let members = init(&dir.path().join("net"), "PH,CN");
    let ph = &members[0];
    let _node = serve(&ph.config, &dir.path().join("node.log"), "warn");
    wait_healthy(&ph.url).await;
    let config = ph.config.as_str();

    let added = operator(
        &["add", "--config", config, "--name", "duty2", "--role", "duty", "--password-stdin"],
        Some("a long enough passphrase\n"),
    );
    assert!(added.status.success(), "{}", text(&added.stderr));
    assert!(text(&added.stderr).contains("expires in 90 days"), "{}", text(&added.stderr));
    let first = text(&added.stdout).trim().to_string();
    assert_eq!(status_with(&ph.url, &first).await, 200);

    let listed = operator(&["list", "--config", config], None);
    let list = text(&listed.stdout);
    let line = list.lines().find(|l| l.starts_with("duty2")).unwrap_or_else(|| panic!("{list}"));
    assert!(
        line.contains("duty") && line.contains("console password set") && line.contains("token expires 20"),
        "{line}"
    );

    // A new token: the old one stops working at once on the running node.
    let renewed = operator(&["token", "--config", config, "--name", "duty2", "--token-days", "0"], None);
    assert!(renewed.status.success(), "{}", text(&renewed.stderr));
    let second = text(&renewed.stdout).trim().to_string();
    assert_eq!(status_with(&ph.url, &first).await, 401);
    assert_eq!(status_with(&ph.url, &second).await, 200);
    let list = text(&operator(&["list", "--config", config], None).stdout);
    assert!(list.lines().any(|l| l.starts_with("duty2") && l.contains("token expires never")), "{list}");

    // A short password is refused and changes nothing; a good one is set.
    let short = operator(&["password", "--config", config, "--name", "duty2"], Some("short\n"));
    assert!(!short.status.success() && text(&short.stderr).contains("12 characters"), "{}", text(&short.stderr));
    let set = operator(&["password", "--config", config, "--name", "duty2"], Some("another long passphrase\n"));
    assert!(set.status.success(), "{}", text(&set.stderr));

    // Removed: its token stops working; removing it again is an error naming it.
    let removed = operator(&["remove", "--config", config, "--name", "duty2"], None);
    assert!(removed.status.success(), "{}", text(&removed.stderr));
    assert_eq!(status_with(&ph.url, &second).await, 401);
    let again = operator(&["remove", "--config", config, "--name", "duty2"], None);
    assert!(!again.status.success() && text(&again.stderr).contains("no operator duty2"), "{}", text(&again.stderr));
    let unknown = operator(&["token", "--config", config, "--name", "nobody"], None);
    assert!(!unknown.status.success() && text(&unknown.stderr).contains("no operator nobody"));
}
