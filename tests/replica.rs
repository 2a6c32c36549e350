//! The loss of the PostgreSQL primary under a member's node, with the streaming replica of
//! `docs/OPERATIONS.md`: two PostgreSQL servers of the test's own (initdb, a synchronous
//! streaming replica made with pg_basebackup), CN's node on the primary exchanging messages with
//! PH; then CN's machine and the primary are lost at once, the replica is promoted, and CN's node,
//! pointed at it, goes on with every accepted message held exactly once and in order at both.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use hyper::Method;
use serde_json::json;
use support::{check_exactly_once_in_order_both_ways, send_routine, serve, store_on_postgres, wait_healthy, Procs};

/// The newest PostgreSQL server programs installed (Debian keeps them by major version).
fn pg_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server programs under /usr/lib/postgresql (scripts/test installs them)")
        .map(|e| e.unwrap().path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().expect("initdb under /usr/lib/postgresql/<version>/bin")
}

/// Runs one of PostgreSQL's programs as the `postgres` user (the server refuses to run as root).
fn as_postgres(program: &Path, args: &[&str]) {
    let out =
        Command::new("runuser").args(["-u", "postgres", "--"]).arg(program).args(args).output().expect("runuser runs");
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{}\n{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A PostgreSQL server of the test's own; stopped at once when dropped.
struct Server {
    data: PathBuf,
    port: u16,
}

impl Server {
    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn start(&self, bin: &Path) {
        let log = self.data.with_extension("log");
        let (data, log) = (self.data.to_str().unwrap(), log.to_str().unwrap());
        as_postgres(&bin.join("pg_ctl"), &["-D", data, "-l", log, "-w", "-t", "60", "start"]);
    }

    /// Stops the server the way a lost machine does: no shutdown checkpoint.
    fn lose(&self, bin: &Path) {
        as_postgres(&bin.join("pg_ctl"), &["-D", self.data.to_str().unwrap(), "-m", "immediate", "-w", "stop"]);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(pg_bin().join("pg_ctl"))
            .args(["-D", self.data.to_str().unwrap(), "-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// Appends settings to a server's configuration file.
fn configure(data: &Path, settings: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(data.join("postgresql.conf")).unwrap();
    writeln!(f, "{settings}").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_on_a_promoted_synchronous_replica_goes_on_with_nothing_lost() {
    let bin = pg_bin();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("pg");
    std::fs::create_dir(&root).unwrap();
    let chown = Command::new("chown").args(["-R", "postgres:postgres", root.to_str().unwrap()]).status().unwrap();
    assert!(chown.success());
    // Both folders' parents must be reachable by the postgres user.
    Command::new("chmod").args(["755", dir.path().to_str().unwrap()]).status().unwrap();
    let base = adi_node::setup::free_port_run(2).expect("free loopback ports");
    let primary = Server { data: root.join("primary"), port: base };
    let replica = Server { data: root.join("replica"), port: base + 1 };

    // The primary: replication over loopback, every commit waiting for the replica's flush.
    let data = primary.data.to_str().unwrap();
    as_postgres(&bin.join("initdb"), &["-D", data, "-U", "postgres", "-A", "trust", "--no-sync"]);
    configure(
        &primary.data,
        &format!(
            "port = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nwal_level = replica\n\
             max_wal_senders = 4\nsynchronous_standby_names = 'replica'\nsynchronous_commit = on",
            primary.port,
            root.display()
        ),
    );
    std::fs::write(
        primary.data.join("pg_hba.conf"),
        "host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\nlocal all all trust\n",
    )
    .unwrap();
    primary.start(&bin);
    // The replica: a base backup of the primary, streaming from it (-R writes standby.signal).
    let port = primary.port.to_string();
    // The connection string goes into the replica's primary_conninfo, with the name the primary
    // waits for.
    let conninfo = format!("host=127.0.0.1 port={port} user=postgres application_name=replica");
    as_postgres(
        &bin.join("pg_basebackup"),
        &["-d", &conninfo, "-D", replica.data.to_str().unwrap(), "-R", "-X", "stream"],
    );
    configure(&replica.data, &format!("port = {}", replica.port));
    replica.start(&bin);
    // Streaming, as the synchronous standby, before anything is committed on the primary.
    let streaming = || {
        let out = Command::new(bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-Atc"])
            .arg("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !streaming() {
        assert!(std::time::Instant::now() < deadline, "the replica never streamed as the synchronous standby");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let created = Command::new(bin.join("createdb"))
        .args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "adi"])
        .status()
        .unwrap();
    assert!(created.success(), "createdb on the primary");

    let mut procs = Procs::init(&["PH", "CN"]);
    store_on_postgres(procs.member("CN"), &primary.url("adi"));
    procs.start("PH");
    procs.start("CN");
    wait_healthy(&procs.member("PH").url).await;
    wait_healthy(&procs.member("CN").url).await;
    let (ph, cn) = (procs.client("PH"), procs.client("CN"));
    let members = json!({"members": ["PH", "CN"], "scope": "ADMM-Plus"});
    let line =
        ph.call(Method::POST, "/api/v1/lines", Some(&members)).await.unwrap()["id"].as_str().unwrap().to_string();
    support::eventually(std::time::Duration::from_secs(30), "CN holds the line", || async {
        cn.call(Method::GET, &format!("/api/v1/lines/{line}/messages"), None).await.ok()
    })
    .await;
    let mut from_ph = send_routine(&ph, &line, "PH before", 30).await;
    let mut from_cn = send_routine(&cn, &line, "CN before", 30).await;
    support::wait_delivered(&ph, &line).await;
    support::wait_delivered(&cn, &line).await;

    // CN's machine and the primary are lost together; the replica is promoted.
    procs.kill("CN");
    primary.lose(&bin);
    as_postgres(&bin.join("pg_ctl"), &["-D", replica.data.to_str().unwrap(), "-w", "promote"]);
    // The replica carries the primary's settings: as the new primary, with no standby of its own
    // yet, it would wait for one at every commit.
    let replica_port = replica.port.to_string();
    for sql in ["ALTER SYSTEM SET synchronous_standby_names = ''", "SELECT pg_reload_conf()"] {
        let out = Command::new(bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &replica_port, "-U", "postgres", "-Atc", sql])
            .output()
            .unwrap();
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    }

    // CN's node, pointed at the promoted replica, goes on.
    let config = procs.member("CN").config.clone();
    let mut file: adi_node::config::ConfigFile = toml::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    file.store.as_mut().unwrap().url = Some(replica.url("adi"));
    std::fs::write(&config, toml::to_string_pretty(&file).unwrap()).unwrap();
    let log = procs.dir.path().join("logs").join("CN-replica.log");
    let mut node = serve(&config, &log, "info");
    if let Some(status) = node.wait_exit(std::time::Duration::from_secs(3)) {
        panic!("CN's node on the promoted replica stopped ({status}):\n{}", std::fs::read_to_string(&log).unwrap());
    }
    wait_healthy(&procs.member("CN").url).await;
    from_ph.extend(send_routine(&ph, &line, "PH after", 20).await);
    from_cn.extend(send_routine(&cn, &line, "CN after", 20).await);
    check_exactly_once_in_order_both_ways(("PH", &ph, &from_ph), ("CN", &cn, &from_cn), &line).await;
    drop(procs);
}
