//! The report: a table for people, the targets met or missed, and the latency plot.

use std::fmt::Write as _;

use super::{Latency, Report, Target};

/// FLASH p50 may be at most this many times its floor.
const FLASH_P50_RATIO_MAX: f64 = 3.0;
/// FLASH p99 may be at most this many times its floor.
const FLASH_P99_RATIO_MAX: f64 = 10.0;
/// Messages per second sustained between two nodes, with durability at both ends.
const LINE_PER_SECOND_MIN: f64 = 5000.0;
/// Messages per second sustained across every direct line of 19 members.
const NETWORK_PER_SECOND_MIN: f64 = 3000.0;
/// CPU per message may be at most this many times the protocol's own floor.
const CPU_PROTOCOL_RATIO_MAX: f64 = 2.0;
/// Seconds to open all 171 direct lines of 19 members.
const BUILD_19_SECONDS_MAX: f64 = 10.0;
/// Resident memory of an idle node, MiB.
const IDLE_RSS_MIB_MAX: f64 = 30.0;

/// The product's targets, each against what this run measured.
pub fn targets(r: &Report) -> Vec<Target> {
    let mut out = Vec::new();
    if let Some(l) = &r.latency {
        out.push(Target {
            name: "FLASH ring p50".into(),
            target: format!("≤ {FLASH_P50_RATIO_MAX} × floor ({:.2} ms)", l.ring_floor_ms),
            measured: format!("{:.2} ms = {:.1} × floor", l.ring_ms.p50, l.ring_p50_ratio),
            met: l.ring_p50_ratio <= FLASH_P50_RATIO_MAX,
        });
        out.push(Target {
            name: "FLASH ring p99".into(),
            target: format!("≤ {FLASH_P99_RATIO_MAX} × floor ({:.2} ms)", l.ring_floor_ms),
            measured: format!("{:.2} ms = {:.1} × floor", l.ring_ms.p99, l.ring_p99_ratio),
            met: l.ring_p99_ratio <= FLASH_P99_RATIO_MAX,
        });
    }
    if let Some(t) = &r.line {
        out.push(Target {
            name: "one line, sustained".into(),
            target: format!("≥ {LINE_PER_SECOND_MIN:.0} messages/s"),
            measured: format!("{:.0} messages/s", t.per_second),
            met: t.per_second >= LINE_PER_SECOND_MIN,
        });
        out.push(Target {
            name: "CPU per message, one line".into(),
            target: format!("≤ {CPU_PROTOCOL_RATIO_MAX} × protocol ({:.0} µs)", t.cpu_protocol_us),
            measured: format!("{:.0} µs = {:.1} × protocol", t.cpu_per_message_us, t.cpu_protocol_ratio),
            met: t.cpu_protocol_ratio <= CPU_PROTOCOL_RATIO_MAX,
        });
    }
    if let Some(t) = r.network.as_ref().filter(|t| t.lines == 171) {
        out.push(Target {
            name: "all 171 lines, sustained".into(),
            target: format!("≥ {NETWORK_PER_SECOND_MIN:.0} messages/s"),
            measured: format!("{:.0} messages/s", t.per_second),
            met: t.per_second >= NETWORK_PER_SECOND_MIN,
        });
    }
    out.push(Target {
        name: format!("build {} lines", r.build.lines),
        // The target is set for 19 members; a smaller network gets its share of the 10 s.
        target: format!("< {:.2} s", BUILD_19_SECONDS_MAX * r.build.lines as f64 / 171.0),
        measured: format!("{:.2} s", r.build.seconds),
        met: r.build.seconds < BUILD_19_SECONDS_MAX * r.build.lines as f64 / 171.0,
    });
    out.push(Target {
        name: "idle resident memory".into(),
        target: format!("< {IDLE_RSS_MIB_MAX} MiB per node"),
        measured: format!("{:.1} MiB (largest node)", r.resources.idle_rss_mib.max),
        met: r.resources.idle_rss_mib.max < IDLE_RSS_MIB_MAX,
    });
    out
}

/// The report as a table.
pub fn table(r: &Report) -> String {
    let mut s = String::new();
    let f = &r.floor;
    let m = &r.machine;
    let _ = writeln!(
        s,
        "\nADI benchmark, {} build, {} CPUs ({}), {:.0} GiB, Linux {}; stores on {}",
        m.build, m.cpus, m.cpu_model, m.memory_gib, m.kernel, r.settings.store
    );
    let _ = writeln!(s, "\nPhysical floor (same run)");
    let _ = writeln!(
        s,
        "  loopback round trip   p50 {:>9.1} µs   p99 {:>9.1} µs",
        f.round_trip_us.p50, f.round_trip_us.p99
    );
    let _ = writeln!(s, "  4 KiB append + fsync  p50 {:>9.1} µs   p99 {:>9.1} µs", f.fsync_us.p50, f.fsync_us.p99);
    let _ = writeln!(s, "  Ed25519 sign          {:>13.1} µs   verify {:>6.1} µs", f.sign_us, f.verify_us);
    let _ = writeln!(s, "  AES-128-GCM (1 KiB)   {:>13.2} µs   ChaCha20-Poly1305 seal {:.2} µs", f.aead_us, f.seal_us);
    let p = &r.protocol;
    let _ = writeln!(
        s,
        "\nProtocol floor: per message, its receipt included, {} signatures, {} verifications, {} AEAD, {} seals \
         at rest = {:.0} µs of CPU; a FLASH rings in {:.2} ms at best",
        p.signatures, p.verifications, p.aead_operations, p.seals_at_rest, p.cpu_per_message_us, p.ring_ms
    );
    let _ = writeln!(
        s,
        "\n{:<34} {:>12}   {:>12} {:>7}   {:>12} {:>7}",
        "Figure", "measured", "machine", "ratio", "protocol", "ratio"
    );
    // The figures beside the protocol's floor come first, then the rest.
    let mut rest = String::new();
    let mut row = |name: &str, measured: String, floor: String, ratio: Option<f64>| {
        let ratio = ratio.map(|x| format!("{x:.1} ×")).unwrap_or_default();
        let _ = writeln!(rest, "{name:<34} {measured:>12}   {floor:>12} {ratio:>7}");
    };
    // A figure beside the machine's floor and the protocol's.
    let both = |name: &str, measured: f64, machine: f64, protocol: f64, unit: &str| {
        let show = |x: f64| if unit == "ms" { format!("{x:.2} ms") } else { format!("{x:.0} µs") };
        format!(
            "{name:<34} {:>12}   {:>12} {:>7}   {:>12} {:>7}\n",
            show(measured),
            show(machine),
            format!("{:.1} ×", measured / machine),
            show(protocol),
            format!("{:.1} ×", measured / protocol)
        )
    };
    let mut with_protocol = String::new();
    if let Some(l) = &r.latency {
        let ms = |x: f64| format!("{x:.2} ms");
        row(
            "FLASH committed at sender p50",
            ms(l.sent_ms.p50),
            ms(f.fsync_us.p50 / 1000.0),
            Some(l.sent_ms.p50 * 1000.0 / f.fsync_us.p50),
        );
        with_protocol.push_str(&both("FLASH ring p50", l.ring_ms.p50, l.ring_floor_ms, l.ring_protocol_ms, "ms"));
        with_protocol.push_str(&both("FLASH ring p99", l.ring_ms.p99, l.ring_floor_ms, l.ring_protocol_ms, "ms"));
        with_protocol.push_str(&both(
            "FLASH acknowledged p50",
            l.loop_ms.p50,
            l.loop_floor_ms,
            l.loop_protocol_ms,
            "ms",
        ));
        row("FLASH ring p90", ms(l.ring_ms.p90), ms(l.ring_floor_ms), Some(l.ring_ms.p90 / l.ring_floor_ms));
        row("FLASH ring max", ms(l.ring_ms.max), ms(l.ring_floor_ms), Some(l.ring_ms.max / l.ring_floor_ms));
        row("FLASH acknowledged p99", ms(l.loop_ms.p99), ms(l.loop_floor_ms), Some(l.loop_ms.p99 / l.loop_floor_ms));
    }
    for (name, t) in [("one line", &r.line), ("all lines", &r.network)] {
        let Some(t) = t else { continue };
        row(&format!("{name}: messages/s ({} sent)", t.messages), format!("{:.0}", t.per_second), String::new(), None);
        with_protocol.push_str(&both(
            &format!("{name}: CPU per message"),
            t.cpu_per_message_us,
            t.cpu_floor_us,
            t.cpu_protocol_us,
            "µs",
        ));
        if let Some(c) = t.server_cpu_per_message_us {
            row(&format!("{name}: database server CPU"), format!("{c:.0} µs"), String::new(), None);
        }
        if let Some(d) = t.disk_bytes_per_message {
            row(&format!("{name}: disk per message"), format!("{d:.0} B"), String::new(), None);
        }
    }
    let b = &r.build;
    row(
        &format!("build {} lines ({} members)", b.lines, b.members),
        format!("{:.2} s", b.seconds),
        format!("{:.2} ms/line", b.floor_per_line_ms),
        Some(b.seconds * 1000.0 / b.lines as f64 / b.floor_per_line_ms),
    );
    if let Some(c) = &r.catch_up {
        row(
            &format!("catch-up: drain {} messages", c.backlog),
            format!("{:.2} s", c.drain_seconds),
            String::new(),
            None,
        );
        row("catch-up: from the heal", format!("{:.2} s", c.from_heal_seconds), String::new(), None);
        let of_line = r.line.as_ref().map(|t| c.drain_per_second / t.per_second);
        row("catch-up: drain rate", format!("{:.0}/s", c.drain_per_second), "one-line rate".into(), of_line);
    }
    let res = &r.resources;
    row("start-up to ready p50", format!("{:.0} ms", res.start_to_ready_ms.p50), String::new(), None);
    row("idle memory per node, largest", format!("{:.1} MiB", res.idle_rss_mib.max), String::new(), None);
    if let Some(x) = &res.idle_with_lines_rss_mib {
        row("idle with all lines, largest", format!("{:.1} MiB", x.max), String::new(), None);
    }
    if let Some(x) = res.line_load_rss_mib {
        row("memory under load (one line)", format!("{x:.1} MiB"), String::new(), None);
    }
    if let Some(x) = res.network_load_rss_mib {
        row("memory under load (all lines)", format!("{x:.1} MiB"), String::new(), None);
    }
    s.push_str(&with_protocol);
    s.push_str(&rest);
    let _ = writeln!(s, "\nTargets");
    for t in &r.targets {
        let _ = writeln!(
            s,
            "  [{}] {:<24} target {:<28} measured {}",
            if t.met { "met" } else { "MISSED" },
            t.name,
            t.target,
            t.measured
        );
    }
    let _ = writeln!(s, "\nwhole run {:.0} s", r.wall_seconds);
    s
}

/// The cumulative distribution of FLASH latency as an SVG: the ring and the acknowledged loop,
/// each with its floor marked.
pub fn svg(l: &Latency) -> String {
    let (w, h, left, bottom, top, right) = (720.0, 450.0, 60.0, 50.0, 76.0, 20.0);
    let mut all: Vec<f64> = l.ring_samples.iter().chain(&l.loop_samples).copied().collect();
    all.sort_by(f64::total_cmp);
    // The axis ends at the 99th percentile of both, so that a few stragglers do not flatten it.
    let x_max = all.get(all.len().saturating_sub(1) * 99 / 100).copied().unwrap_or(1.0).max(l.loop_floor_ms) * 1.1;
    let x = |v: f64| left + (v / x_max).min(1.0) * (w - left - right);
    let y = |p: f64| h - bottom - p * (h - bottom - top);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = write!(
        s,
        r#"<text x="{left}" y="22" font-size="14">FLASH latency, {} messages: share delivered within t</text>"#,
        l.messages
    );
    for i in 0..=5 {
        let v = x_max * f64::from(i) / 5.0;
        let _ = write!(s, r##"<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="#ddd"/>"##, x(v), y(0.0), y(1.0));
        let _ = write!(s, r#"<text x="{}" y="{}" text-anchor="middle">{v:.1}</text>"#, x(v), h - bottom + 16.0);
        let p = f64::from(i) / 5.0;
        let _ = write!(s, r##"<line x1="{left}" y1="{0}" x2="{1}" y2="{0}" stroke="#ddd"/>"##, y(p), w - right);
        let _ = write!(s, r#"<text x="{}" y="{}" text-anchor="end">{:.0}%</text>"#, left - 6.0, y(p) + 4.0, p * 100.0);
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">ms from the API call</text>"#,
        (w + left) / 2.0,
        h - 12.0
    );
    for (samples, floor, colour, name, row) in [
        (&l.ring_samples, l.ring_floor_ms, "#c0392b", "rings at the other desk", 0.0),
        (&l.loop_samples, l.loop_floor_ms, "#2c3e91", "acknowledgement back at the sender", 1.0),
    ] {
        let mut v = samples.clone();
        v.sort_by(f64::total_cmp);
        let n = v.len().max(1) as f64;
        let points: Vec<String> =
            v.iter().enumerate().map(|(i, t)| format!("{:.1},{:.1}", x(*t), y((i + 1) as f64 / n))).collect();
        let _ =
            write!(s, r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#, points.join(" "));
        let _ = write!(
            s,
            r#"<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="{colour}" stroke-dasharray="4 3"/>"#,
            x(floor),
            y(0.0),
            y(1.0)
        );
        // The legend sits between the title and the plot.
        let ly = 42.0 + row * 16.0;
        let _ = write!(
            s,
            r#"<text x="{}" y="{ly}" fill="{colour}">{name}: p50 {:.2} ms (dashed: floor {:.2} ms)</text>"#,
            left,
            v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or(0.0),
            floor
        );
    }
    s.push_str("</svg>\n");
    s
}
