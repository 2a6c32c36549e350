//! What `adi` writes is its owner's alone: a member's folders (mode 0700), its keys,
//! configuration, database and journal, and an exported bundle (0600); a database made readable
//! by others before is narrowed when the node opens it.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use support::{init, serve, wait_healthy};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_configs_databases_journals_and_bundles_are_readable_by_their_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("net");
    let members = init(&state, "PH,CN");
    let ph = &members[0];
    let member_dir = Path::new(&ph.config).parent().unwrap().to_path_buf();
    let _node = serve(&ph.config, &dir.path().join("node.log"), "warn");
    let _cn = serve(&members[1].config, &dir.path().join("node.log"), "warn");
    wait_healthy(&ph.url).await;
    wait_healthy(&members[1].url).await;

    assert_eq!(mode(&state), 0o700, "the network's folder");
    assert_eq!(mode(&member_dir), 0o700, "the member's folder");
    assert_eq!(mode(&member_dir.join("keys")), 0o700, "the keys' folder");
    for file in ["config.toml", "keys/signing.pem", "keys/node.key", "keys/master.key", "node.db", "node.db-wal"] {
        assert_eq!(mode(&member_dir.join(file)), 0o600, "{file}");
    }
    let out = dir.path().join("bundle.json");
    let line = ph
        .client()
        .call(
            hyper::Method::POST,
            "/api/v1/lines",
            Some(&serde_json::json!({"members": ["PH", "CN"], "scope": "ADMM-Plus"})),
        )
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let exported = Command::new(env!("CARGO_BIN_EXE_adi"))
        .args(["export", "--url", &ph.url, "--token", &ph.token, "--line", &line, "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(exported.status.success(), "{}", String::from_utf8_lossy(&exported.stderr));
    assert_eq!(mode(&out), 0o600, "the exported bundle");
}

#[test]
fn a_database_readable_by_others_is_narrowed_when_it_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("net");
    let members = init(&state, "PH");
    let config = adi_node::NodeConfig::load(Path::new(&members[0].config)).unwrap();
    drop(adi_node::state::open_store(&config).unwrap());
    std::fs::set_permissions(&config.database, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(mode(&config.database), 0o644);
    drop(adi_node::state::open_store(&config).unwrap());
    assert_eq!(mode(&config.database), 0o600);
}
