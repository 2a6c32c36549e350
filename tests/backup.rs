//! `adi backup` and `adi restore` on real node processes: a backup of a stopped node, put back on
//! a fresh machine (its keys and configuration, not its database), starts and goes on with
//! nothing lost or duplicated, on SQLite and on PostgreSQL; a backup taken mid-stream, while the
//! node still signed and received, catches up from its peer at start (what it signed after the
//! backup and what it was sent), across the peer's key updates, and goes on with nothing lost,
//! nothing twice and no answer given twice.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use adi_node::client::Client;
use hyper::Method;
use serde_json::{json, Value};
use support::pg::PgDatabase;
use support::{check_exactly_once_in_order_both_ways, send_routine, serve, store_on_postgres, wait_healthy, Procs};

fn adi(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_adi")).args(args).output().unwrap()
}

/// A member's keys and configuration copied to a new folder, as on the machine that replaces a
/// lost one: everything but the database.
fn fresh_machine(procs: &Procs, code: &str) -> PathBuf {
    let config = PathBuf::from(&procs.member(code).config);
    let from = config.parent().unwrap();
    let to = procs.dir.path().join(format!("{code}-new"));
    support::copy_tree(from, &to);
    to.join(config.file_name().unwrap())
}

/// Starts PH's and CN's nodes and opens a line between them: their clients and the line.
async fn start(procs: &mut Procs) -> (Client, Client, String) {
    procs.start("PH");
    procs.start("CN");
    wait_healthy(&procs.member("PH").url).await;
    wait_healthy(&procs.member("CN").url).await;
    let (ph, cn) = (procs.client("PH"), procs.client("CN"));
    let line = open_line(&ph, &cn).await;
    (ph, cn, line)
}

/// PH opens a line with CN; returns once CN holds it too.
async fn open_line(ph: &Client, cn: &Client) -> String {
    let members = json!({"members": ["PH", "CN"], "scope": "ADMM-Plus"});
    let line =
        ph.call(Method::POST, "/api/v1/lines", Some(&members)).await.unwrap()["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while cn.call(Method::GET, &format!("/api/v1/lines/{line}/messages"), None).await.is_err() {
        assert!(Instant::now() < deadline, "CN never held the line {line}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    line
}

fn run_ok(out: std::process::Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{what} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// The whole round: PH and CN exchange messages; CN stops; its store is backed up and put back on
/// a fresh machine; the node there starts and the exchange goes on, exactly once both ways.
async fn backup_of_a_stopped_node_restored_on_a_fresh_machine(postgres: bool) {
    let mut procs = Procs::init(&["PH", "CN"]);
    let (db, fresh_db) = if postgres { (Some(PgDatabase::create()), Some(PgDatabase::create())) } else { (None, None) };
    if let Some(db) = &db {
        store_on_postgres(procs.member("CN"), &db.url());
    }
    let (ph, cn, line) = start(&mut procs).await;
    let mut from_ph = send_routine(&ph, &line, "PH before", 30).await;
    let mut from_cn = send_routine(&cn, &line, "CN before", 10).await;
    support::wait_delivered(&ph, &line).await;
    support::wait_delivered(&cn, &line).await;

    procs.kill("CN");
    let backup = procs.dir.path().join("cn-backup");
    let out =
        run_ok(adi(&["backup", "--config", &procs.member("CN").config, "--out", backup.to_str().unwrap()]), "backup");
    assert!(out.contains("[2/2] done"), "{out}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777, 0o600);
    // The copy holds the store sealed: no subject in the clear.
    let bytes = std::fs::read(&backup).unwrap();
    assert!(!bytes.windows(9).any(|w| w == b"PH before"), "a subject in the clear in the backup");

    // The machine is lost; a fresh one has the keys and the configuration.
    let config = fresh_machine(&procs, "CN");
    if let Some(fresh) = &fresh_db {
        let mut file: adi_node::config::ConfigFile =
            toml::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
        file.store.as_mut().unwrap().url = Some(fresh.url());
        std::fs::write(&config, toml::to_string_pretty(&file).unwrap()).unwrap();
    }
    let config = config.to_str().unwrap().to_string();
    let out = run_ok(adi(&["restore", "--config", &config, "--from", backup.to_str().unwrap()]), "restore");
    assert!(out.contains("[3/3] restored"), "{out}");
    // A second restore over it is refused.
    let again = adi(&["restore", "--config", &config, "--from", backup.to_str().unwrap()]);
    assert!(!again.status.success(), "a restore over a store was taken");

    let log = procs.dir.path().join("logs").join("CN-new.log");
    let _node = serve(&config, &log, "info");
    wait_healthy(&procs.member("CN").url).await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("the restored store holds everything its peers hold"), "{text}");

    from_ph.extend(send_routine(&ph, &line, "PH after", 20).await);
    from_cn.extend(send_routine(&cn, &line, "CN after", 10).await);
    check_exactly_once_in_order_both_ways(("PH", &ph, &from_ph), ("CN", &cn, &from_cn), &line).await;
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_a_stopped_node_goes_on_on_a_fresh_machine() {
    backup_of_a_stopped_node_restored_on_a_fresh_machine(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_backup_of_a_stopped_node_goes_on_on_a_fresh_machine() {
    backup_of_a_stopped_node_restored_on_a_fresh_machine(true).await;
}

/// Sets how many envelopes a member's node sends on a line before it refreshes its keys there.
fn key_update_every(config: &str, n: u64) {
    let mut file: adi_node::config::ConfigFile = toml::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
    file.discipline.key_update_messages = n;
    std::fs::write(config, toml::to_string_pretty(&file).unwrap()).unwrap();
}

/// A backup taken while messages flowed both ways is behind PH: after it, CN signed messages and
/// answers that PH holds, and PH sent messages CN took and committed key updates CN followed.
/// Put back on a fresh machine, CN's node takes all of it back from PH, spends again the MLS keys
/// its own envelopes used, and goes on: every message is held exactly once and in order at both,
/// no message is answered twice, and PH sees nothing undecryptable or forged.
async fn backup_taken_mid_stream_catches_up(postgres: bool) {
    let mut procs = Procs::init(&["PH", "CN"]);
    let (db, fresh_db) = if postgres { (Some(PgDatabase::create()), Some(PgDatabase::create())) } else { (None, None) };
    if let Some(db) = &db {
        store_on_postgres(procs.member("CN"), &db.url());
    }
    // PH, the line's home member, refreshes its keys every few envelopes: what CN signs after the
    // backup spans several epochs.
    key_update_every(&procs.member("PH").config, 8);
    let (ph, cn, line) = start(&mut procs).await;
    let mut from_ph = send_routine(&ph, &line, "PH before", 10).await;
    let mut from_cn = send_routine(&cn, &line, "CN before", 5).await;
    support::wait_delivered(&ph, &line).await;
    support::wait_delivered(&cn, &line).await;
    let backup = procs.dir.path().join("cn-backup");
    run_ok(adi(&["backup", "--config", &procs.member("CN").config, "--out", backup.to_str().unwrap()]), "backup");
    // After the backup CN goes on receiving (and answering) and sending.
    from_ph.extend(send_routine(&ph, &line, "PH after", 20).await);
    from_cn.extend(send_routine(&cn, &line, "CN after", 10).await);
    support::wait_delivered(&ph, &line).await;
    support::wait_delivered(&cn, &line).await;
    procs.kill("CN");

    let config = fresh_machine(&procs, "CN");
    if let Some(fresh) = &fresh_db {
        let mut file: adi_node::config::ConfigFile =
            toml::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
        file.store.as_mut().unwrap().url = Some(fresh.url());
        std::fs::write(&config, toml::to_string_pretty(&file).unwrap()).unwrap();
    }
    let config = config.to_str().unwrap().to_string();
    run_ok(adi(&["restore", "--config", &config, "--from", backup.to_str().unwrap()]), "restore");
    let log = procs.dir.path().join("logs").join("CN-new.log");
    let _node = serve(&config, &log, "info");
    wait_healthy(&procs.member("CN").url).await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("the restored store holds everything its peers hold"), "{text}");
    println!(
        "{}",
        text.lines().filter(|l| l.contains("restore") || l.contains("catch")).collect::<Vec<_>>().join("\n")
    );

    from_ph.extend(send_routine(&ph, &line, "PH later", 10).await);
    from_cn.extend(send_routine(&cn, &line, "CN later", 10).await);
    check_exactly_once_in_order_both_ways(("PH", &ph, &from_ph), ("CN", &cn, &from_cn), &line).await;

    // No message answered twice: each of PH's holds at most one answer of each kind from CN, and
    // each was answered.
    for m in support::messages(&ph, &line).await.iter().filter(|m| m["sender"] == "PH") {
        let receipts = m["receipts"].as_array().unwrap();
        let mut kinds: Vec<&str> =
            receipts.iter().filter(|r| r["member"] == "CN").map(|r| r["kind"].as_str().unwrap()).collect();
        let n = kinds.len();
        kinds.dedup();
        assert_eq!(kinds.len(), n, "CN answered {} twice: {receipts:?}", m["subject"]);
    }
    // PH saw nothing it could not decrypt, and no envelope of CN's contradicted another.
    for at in [&ph, &cn] {
        let alarms: Value = at.call(Method::GET, "/api/v1/alarms", None).await.unwrap();
        let bad = ["undecryptable", "tamper", "misconduct"];
        assert!(!alarms.as_array().unwrap().iter().any(|a| bad.contains(&a["kind"].as_str().unwrap())), "{alarms}");
    }
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_mid_stream_catches_up_from_its_peer() {
    backup_taken_mid_stream_catches_up(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgresql_backup_taken_mid_stream_catches_up_from_its_peer() {
    backup_taken_mid_stream_catches_up(true).await;
}
