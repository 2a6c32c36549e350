//! `adi bench --quick --json`: a whole short run on real node processes, its JSON read back and
//! checked for what each workload must have measured; and bad options refused before anything
//! starts.

mod support;

use std::process::Command;

use serde_json::{json, Value};

fn adi(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_adi")).args(args).output().unwrap()
}

fn num(v: &Value, path: &str) -> f64 {
    let mut at = v;
    for key in path.split('.') {
        at = &at[key];
    }
    at.as_f64().unwrap_or_else(|| panic!("{path} is not a number in {v}"))
}

fn spread_is_ordered(v: &Value, path: &str) {
    let (p50, p90, p99, max) = (
        num(v, &format!("{path}.p50")),
        num(v, &format!("{path}.p90")),
        num(v, &format!("{path}.p99")),
        num(v, &format!("{path}.max")),
    );
    assert!(0.0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= max, "{path}: {p50} {p90} {p99} {max}");
}

#[test]
fn a_quick_run_measures_every_workload_beside_its_floor() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let plot = dir.path().join("latency.svg");
    let out =
        adi(&["bench", "--quick", "--json", "--state", state.to_str().unwrap(), "--plot", plot.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "adi bench failed:\n{stderr}");
    // Progress went to stderr, the JSON alone to stdout.
    assert!(stderr.contains("[latency]") && stderr.contains("[catch-up]"), "{stderr}");
    let r: Value = serde_json::from_slice(&out.stdout).expect("the output is JSON");

    assert_eq!(r["settings"]["quick"], true);
    assert_eq!(r["settings"]["members"], 6);
    // The floor: a round trip, an fsync, a signature and a verification were timed.
    spread_is_ordered(&r, "floor.round_trip_us");
    spread_is_ordered(&r, "floor.fsync_us");
    assert!(num(&r, "floor.sign_us") > 0.0 && num(&r, "floor.verify_us") > 0.0);
    assert!(num(&r, "floor.aead_us") > 0.0 && num(&r, "floor.seal_us") > 0.0);
    // The protocol's floor: a message and its receipt, each three signatures verified, two AEAD
    // at each end and a seal at rest at each end, at the costs just measured.
    let p = &r["protocol"];
    assert_eq!(
        (&p["signatures"], &p["verifications"], &p["aead_operations"], &p["seals_at_rest"]),
        (&json!(6), &json!(6), &json!(8), &json!(4)),
        "{p}"
    );
    let cpu = 6.0 * (num(&r, "floor.sign_us") + num(&r, "floor.verify_us"))
        + 8.0 * num(&r, "floor.aead_us")
        + 4.0 * num(&r, "floor.seal_us");
    assert!((num(&r, "protocol.cpu_per_message_us") - cpu).abs() < 1e-6, "{p}");

    // Every direct line of 6 members, set up at both ends.
    assert_eq!((r["build"]["members"].as_u64(), r["build"]["lines"].as_u64()), (Some(6), Some(15)));
    assert!(num(&r, "build.seconds") > 0.0);

    // 100 FLASH messages, each rung and acknowledged; the loop includes the ring.
    assert_eq!(r["latency"]["messages"], 100);
    for s in ["sent_ms", "ring_ms", "loop_ms"] {
        spread_is_ordered(&r, &format!("latency.{s}"));
        assert_eq!(r["latency"][s]["count"], 100);
    }
    assert!(num(&r, "latency.ring_ms.p50") <= num(&r, "latency.loop_ms.p50"));
    let floor = num(&r, "floor.fsync_us.p50") * 2.0
        + num(&r, "floor.round_trip_us.p50")
        + num(&r, "floor.sign_us")
        + num(&r, "floor.verify_us");
    assert!((num(&r, "latency.ring_floor_ms") - floor / 1000.0).abs() < 1e-9);
    let ratio = num(&r, "latency.ring_ms.p50") / num(&r, "latency.ring_floor_ms");
    assert!((num(&r, "latency.ring_p50_ratio") - ratio).abs() < 1e-9);
    // The protocol's ring: the machine's, with the sender's 3 signatures, 2 AEAD and seal, and
    // the recipient's 3 verifications, 2 AEAD and seal, in place of one signature pair.
    let protocol = floor
        + 2.0 * (num(&r, "floor.sign_us") + num(&r, "floor.verify_us"))
        + 4.0 * num(&r, "floor.aead_us")
        + 2.0 * num(&r, "floor.seal_us");
    assert!((num(&r, "latency.ring_protocol_ms") - protocol / 1000.0).abs() < 1e-9);
    assert!(num(&r, "latency.ring_protocol_ms") > num(&r, "latency.ring_floor_ms"));

    // Throughput on one line and on all lines: messages were sent, delivered and counted.
    for w in ["line", "network"] {
        assert!(r[w]["messages"].as_u64().unwrap() > 0, "{w}: nothing sent");
        assert!(num(&r, &format!("{w}.per_second")) > 0.0);
        assert!(num(&r, &format!("{w}.cpu_per_message_us")) > 0.0);
        assert_eq!(num(&r, &format!("{w}.cpu_protocol_us")), num(&r, "protocol.cpu_per_message_us"));
        assert!(num(&r, &format!("{w}.disk_bytes_per_message")) > 0.0);
    }
    assert_eq!(r["network"]["lines"], 15);

    // The partition: the whole backlog drained after the heal.
    assert_eq!(r["catch_up"]["backlog"], 1000);
    assert!(num(&r, "catch_up.drain_seconds") > 0.0);
    assert!(num(&r, "catch_up.from_heal_seconds") >= num(&r, "catch_up.drain_seconds"));

    assert!(num(&r, "resources.start_to_ready_ms.p50") > 0.0);
    assert!(num(&r, "resources.idle_rss_mib.max") > 1.0);
    let names: Vec<&str> = r["targets"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "FLASH ring p50",
            "FLASH ring p99",
            "one line, sustained",
            "CPU per message, one line",
            "build 15 lines",
            "idle resident memory"
        ]
    );

    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.matches("<polyline").count() == 2, "{svg}");
    // The state asked for is kept: each node's database and log.
    assert!(state.join("net/BN/node.db").exists() && state.join("logs/BN.log").exists());
    assert!(r["line"]["server_cpu_per_message_us"].is_null(), "a database server's CPU without one");
}

#[test]
fn bad_options_are_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out = adi(&["bench", "--only", "latency,speed", "--state", state.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown workload 'speed'"), "{stderr}");
    assert!(!state.join("net").exists(), "a network was set up for a refused run");
    for bad in [["--members", "1"], ["--members", "41"], ["--messages", "0"], ["--scaling", "3,41"], ["--members", "3"]]
    {
        let out = adi(&["bench", bad[0], bad[1], "--state", state.to_str().unwrap()]);
        assert!(!out.status.success(), "{bad:?} was accepted");
        assert!(String::from_utf8_lossy(&out.stderr).contains(bad[0]), "{bad:?}");
    }
}

/// `--scaling`: one network of each size, each measured on its own, and the growth between the
/// smallest and the largest computed from their figures.
#[test]
fn a_scaling_run_measures_each_network_and_how_its_costs_grow() {
    let out = adi(&["bench", "--quick", "--json", "--scaling", "3,2", "--messages", "20", "--seconds", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "adi bench --scaling failed:\n{stderr}");
    assert!(stderr.contains("[scaling] [1/2] a network of 2 members"), "{stderr}");
    let r: Value = serde_json::from_slice(&out.stdout).expect("the output is JSON");
    let sizes = r["sizes"].as_array().unwrap();
    let shape: Vec<(u64, u64)> =
        sizes.iter().map(|s| (s["members"].as_u64().unwrap(), s["lines"].as_u64().unwrap())).collect();
    assert_eq!(shape, [(2, 1), (3, 3)]);
    for s in sizes {
        for figure in
            ["build_seconds", "ring_p50_ms", "line_per_second", "cpu_per_message_us", "rss_with_lines_mib_p50"]
        {
            assert!(s[figure].as_f64().unwrap() > 0.0, "{figure}: {s}");
        }
        let per_line = s["rss_with_lines_mib_p50"].as_f64().unwrap() / (s["members"].as_f64().unwrap() - 1.0);
        assert!((s["rss_mib_per_line"].as_f64().unwrap() - per_line).abs() < 1e-9, "{s}");
    }
    let g = &r["growth"];
    assert_eq!(
        (g["members"].as_f64(), g["lines"].as_f64(), g["lines_per_node"].as_f64()),
        (Some(1.5), Some(3.0), Some(2.0))
    );
    let cpu = sizes[1]["cpu_per_message_us"].as_f64().unwrap() / sizes[0]["cpu_per_message_us"].as_f64().unwrap();
    assert!((g["cpu_per_message"].as_f64().unwrap() - cpu).abs() < 1e-9, "{g}");
}

/// `--store`: the nodes' stores on the test PostgreSQL server, one database each, made for the
/// run and dropped after it; the figures measured on them. An address that is no PostgreSQL
/// server's is refused before anything starts.
#[test]
fn a_run_on_postgresql_measures_and_leaves_no_database_behind() {
    let server = support::pg::pg_server();
    let out = adi(&[
        "bench",
        "--quick",
        "--json",
        "--only",
        "latency,line",
        "--messages",
        "20",
        "--seconds",
        "1",
        "--store",
        &server,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "adi bench --store failed:\n{stderr}");
    let r: Value = serde_json::from_slice(&out.stdout).expect("the output is JSON");
    assert_eq!(r["settings"]["store"], "postgres");
    assert_eq!(r["latency"]["ring_ms"]["count"], 20);
    spread_is_ordered(&r, "latency.ring_ms");
    // The database server's CPU is counted beside the nodes'.
    assert!(num(&r, "line.server_cpu_per_message_us") > 0.0, "{}", r["line"]);
    assert!(num(&r, "line.cpu_per_message_us") > 0.0);
    let left = support::pg::databases_named_like("adi_bench_%");
    assert!(left.is_empty(), "databases left behind: {left:?}");

    let out = adi(&["bench", "--quick", "--store", "sqlite:///tmp/x.db"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--store"));
}
