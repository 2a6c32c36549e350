//! `adi bench --scaling`: one network of each size asked (3, 9, 19 and 40 members, say; past the
//! 19 shipped members, test members in a test roster), each measured on the build, latency and
//! line workloads, and how each cost grows with the network: the time to open every direct line,
//! the CPU of one message, the memory of a node holding all its lines, and a FLASH's latency.

use std::fmt::Write as _;

use serde::Serialize;

use super::{machine, measure, BenchArgs, Machine, Report, Settings};

/// The workloads each network runs.
const WORKLOADS: [&str; 4] = ["floor", "build", "latency", "line"];

/// One network's figures.
#[derive(Serialize, Clone, Debug)]
pub struct Scale {
    pub members: usize,
    /// Its direct lines: every pair of members.
    pub lines: usize,
    /// Every direct line opened at once, until each is set up at both ends, s.
    pub build_seconds: f64,
    pub build_ms_per_line: f64,
    /// FLASH at the other desk, p50, ms; and its ratio to the protocol's floor.
    pub ring_p50_ms: f64,
    pub ring_protocol_ratio: f64,
    /// One line's sustained rate, messages/s, and the CPU of both its nodes per message, µs.
    pub line_per_second: f64,
    pub cpu_per_message_us: f64,
    pub cpu_protocol_ratio: f64,
    /// Resident memory of a node idle with every one of its lines (members − 1), MiB: the
    /// median node and the largest.
    pub rss_with_lines_mib_p50: f64,
    pub rss_with_lines_mib_max: f64,
    /// The same per line it holds, MiB (the median node).
    pub rss_mib_per_line: f64,
}

impl Scale {
    fn of(r: &Report) -> anyhow::Result<Scale> {
        let missing = |what: &str| anyhow::anyhow!("the run of {} members measured no {what}", r.build.members);
        let latency = r.latency.as_ref().ok_or_else(|| missing("latency"))?;
        let line = r.line.as_ref().ok_or_else(|| missing("line throughput"))?;
        let rss = r.resources.idle_with_lines_rss_mib.as_ref().ok_or_else(|| missing("memory with lines"))?;
        let per_node_lines = r.build.members.saturating_sub(1).max(1) as f64;
        Ok(Scale {
            members: r.build.members,
            lines: r.build.lines,
            build_seconds: r.build.seconds,
            build_ms_per_line: r.build.seconds * 1000.0 / r.build.lines.max(1) as f64,
            ring_p50_ms: latency.ring_ms.p50,
            ring_protocol_ratio: latency.ring_p50_protocol_ratio,
            line_per_second: line.per_second,
            cpu_per_message_us: line.cpu_per_message_us,
            cpu_protocol_ratio: line.cpu_protocol_ratio,
            rss_with_lines_mib_p50: rss.p50,
            rss_with_lines_mib_max: rss.max,
            rss_mib_per_line: rss.p50 / per_node_lines,
        })
    }
}

/// Every network's figures, and the growth they show.
#[derive(Serialize, Clone, Debug)]
pub struct Scaling {
    pub version: u32,
    pub machine: Machine,
    pub messages: usize,
    pub seconds: u64,
    pub sizes: Vec<Scale>,
    /// From the smallest network to the largest: how each figure grew, beside how the members
    /// and the lines grew.
    pub growth: Growth,
    pub wall_seconds: f64,
}

/// Ratios of the largest network's figures to the smallest's.
#[derive(Serialize, Clone, Debug)]
pub struct Growth {
    pub members: f64,
    pub lines: f64,
    pub lines_per_node: f64,
    pub build_seconds: f64,
    pub build_ms_per_line: f64,
    pub cpu_per_message: f64,
    pub ring_p50: f64,
    pub rss_with_lines: f64,
}

fn growth(sizes: &[Scale]) -> Growth {
    let (Some(a), Some(b)) = (sizes.iter().min_by_key(|s| s.members), sizes.iter().max_by_key(|s| s.members)) else {
        return Growth {
            members: 1.0,
            lines: 1.0,
            lines_per_node: 1.0,
            build_seconds: 1.0,
            build_ms_per_line: 1.0,
            cpu_per_message: 1.0,
            ring_p50: 1.0,
            rss_with_lines: 1.0,
        };
    };
    let r = |x: f64, y: f64| if x > 0.0 { y / x } else { 0.0 };
    Growth {
        members: r(a.members as f64, b.members as f64),
        lines: r(a.lines as f64, b.lines as f64),
        lines_per_node: r((a.members - 1) as f64, (b.members - 1) as f64),
        build_seconds: r(a.build_seconds, b.build_seconds),
        build_ms_per_line: r(a.build_ms_per_line, b.build_ms_per_line),
        cpu_per_message: r(a.cpu_per_message_us, b.cpu_per_message_us),
        ring_p50: r(a.ring_p50_ms, b.ring_p50_ms),
        rss_with_lines: r(a.rss_with_lines_mib_p50, b.rss_with_lines_mib_p50),
    }
}

/// Measures one network of each of `sizes` members, one after the other, and prints the table
/// (or JSON).
pub async fn run(args: &BenchArgs, settings: &Settings, sizes: &[u64]) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut sorted: Vec<usize> = sizes.iter().map(|n| *n as usize).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut rows = Vec::new();
    for (i, members) in sorted.iter().enumerate() {
        progress!("[scaling] [{}/{}] a network of {members} members", i + 1, sorted.len());
        let mut one = settings.clone();
        one.members = *members;
        one.workloads = WORKLOADS.iter().map(|w| w.to_string()).collect();
        let state = args.state.as_ref().map(|d| d.join(format!("members-{members}")));
        let report = measure(args, one, state).await?;
        let row = Scale::of(&report)?;
        progress!(
            "[scaling] {members} members: {} lines in {:.2} s, FLASH p50 {:.2} ms, {:.0} µs of CPU a message, \
             {:.1} MiB a node with its lines",
            row.lines,
            row.build_seconds,
            row.ring_p50_ms,
            row.cpu_per_message_us,
            row.rss_with_lines_mib_p50
        );
        rows.push(row);
    }
    let scaling = Scaling {
        version: 1,
        machine: machine(),
        messages: settings.messages,
        seconds: settings.seconds,
        growth: growth(&rows),
        sizes: rows,
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&scaling)?);
    } else {
        print!("{}", table(&scaling));
    }
    Ok(())
}

/// The scaling table for people.
pub fn table(s: &Scaling) -> String {
    let mut out = String::new();
    let m = &s.machine;
    let _ = writeln!(
        out,
        "\nADI scaling, {} build, {} CPUs ({}), Linux {}; {} FLASH messages and {} s of one line per network",
        m.build, m.cpus, m.cpu_model, m.kernel, s.messages, s.seconds
    );
    let _ = writeln!(
        out,
        "\n{:>7} {:>6} {:>9} {:>9} {:>11} {:>9} {:>10} {:>9} {:>11} {:>10}",
        "members", "lines", "build s", "ms/line", "FLASH p50", "× proto", "µs/msg", "× proto", "MiB/node", "MiB/line"
    );
    for r in &s.sizes {
        let _ = writeln!(
            out,
            "{:>7} {:>6} {:>9.2} {:>9.2} {:>8.2} ms {:>9.1} {:>10.0} {:>9.1} {:>11.1} {:>10.2}",
            r.members,
            r.lines,
            r.build_seconds,
            r.build_ms_per_line,
            r.ring_p50_ms,
            r.ring_protocol_ratio,
            r.cpu_per_message_us,
            r.cpu_protocol_ratio,
            r.rss_with_lines_mib_p50,
            r.rss_mib_per_line
        );
    }
    let g = &s.growth;
    let _ = writeln!(
        out,
        "\nFrom the smallest network to the largest: members × {:.1}, lines × {:.1}, lines a node holds × {:.1};\n\
         build time × {:.1} (per line × {:.2}), CPU per message × {:.2}, FLASH p50 × {:.2}, memory of a node with \
         its lines × {:.2}",
        g.members,
        g.lines,
        g.lines_per_node,
        g.build_seconds,
        g.build_ms_per_line,
        g.cpu_per_message,
        g.ring_p50,
        g.rss_with_lines
    );
    let _ = writeln!(out, "\nwhole run {:.0} s", s.wall_seconds);
    out
}
