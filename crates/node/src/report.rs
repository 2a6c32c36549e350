//! The operations report: how a node's hotline did over a window, from its own record. How often
//! each link to a peer answered its tests, the round trips over time and the outages (a
//! `link_no_answer` alarm, raised to cleared); how fast each answer to this member's messages
//! came, by precedence and by member, and which came late or not at all; the alarms over time;
//! the traffic by precedence and class. As JSON (`GET /api/v1/report`) and as one self-contained
//! HTML page with its plots in SVG (`?format=html`, `adi report`), to archive or print.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use adi_store::{ReportAlarm, ReportRows, ReportTraffic};

use crate::clock::utc;
use serde::Serialize;

/// The report of one member's node over `[from_ms, to_ms)`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub member: String,
    pub from_ms: u64,
    pub to_ms: u64,
    pub generated_ms: u64,
    pub links: Vec<LinkReport>,
    pub answers: Vec<AnswerStats>,
    pub alarms: Vec<ReportAlarmView>,
    pub traffic: Vec<TrafficView>,
}

/// One peer's link as its tests went.
#[derive(Clone, Debug, Serialize)]
pub struct LinkReport {
    pub peer: String,
    pub tests: u64,
    /// Tests answered within the test interval (one answered later found the link down).
    pub answered: u64,
    /// Answered tests over tests sent, 0 to 1; `None` when none was sent.
    pub availability: Option<f64>,
    /// Each answered test: when it was sent, and its round trip in milliseconds.
    pub round_trips: Vec<(u64, u64)>,
    pub outages: Vec<Outage>,
}

impl LinkReport {
    fn empty(peer: &str) -> LinkReport {
        LinkReport {
            peer: peer.to_string(),
            tests: 0,
            answered: 0,
            availability: None,
            round_trips: Vec::new(),
            outages: Vec::new(),
        }
    }
}

/// A time the link did not answer: its `link_no_answer` alarm, raised to cleared (`None`: still
/// open at the report's end).
#[derive(Clone, Debug, Serialize)]
pub struct Outage {
    pub start_ms: u64,
    pub end_ms: Option<u64>,
}

/// The answers one precedence's messages had from one member (or from all, `member` empty).
#[derive(Clone, Debug, Serialize)]
pub struct AnswerStats {
    pub precedence: String,
    pub member: String,
    pub asked: u64,
    pub acknowledged: u64,
    pub declined: u64,
    /// Answered after its deadline, or not answered and past it.
    pub late: u64,
    pub unanswered: u64,
    /// Each answer's time from sending, in milliseconds, smallest first.
    pub times_ms: Vec<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ReportAlarmView {
    pub kind: String,
    pub member: String,
    pub raised_ms: u64,
    pub cleared_ms: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TrafficView {
    pub direction: &'static str,
    pub precedence: String,
    pub class: String,
    pub count: u64,
}

/// Each kind's alarms as spans, raised to cleared (`None`: open).
type Spans = Vec<(String, Vec<(u64, Option<u64>)>)>;

const PRECEDENCES: [&str; 4] = ["FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE"];

impl Report {
    /// The report of `rows`, read from `member`'s record for the window; a link test counts as
    /// answered when its answer came within `interval_ms`, the tests' interval.
    pub fn new(
        member: &str,
        (from_ms, to_ms): (u64, u64),
        generated_ms: u64,
        interval_ms: u64,
        peers: &[String],
        rows: ReportRows,
    ) -> Report {
        let mut links: BTreeMap<String, LinkReport> = peers.iter().map(|p| (p.clone(), LinkReport::empty(p))).collect();
        for t in &rows.link_tests {
            let l = links.entry(t.peer.to_string()).or_insert_with(|| LinkReport::empty(t.peer.as_str()));
            l.tests += 1;
            if let Some(at) = t.answered_ms {
                let rtt = at.saturating_sub(t.sent_ms);
                l.answered += u64::from(rtt <= interval_ms);
                l.round_trips.push((t.sent_ms, rtt));
            }
        }
        for a in rows.alarms.iter().filter(|a| a.kind == "link_no_answer") {
            if let Some(l) = links.get_mut(a.member.as_str()) {
                l.outages.push(Outage { start_ms: a.raised_ms, end_ms: a.cleared_ms.filter(|c| *c < to_ms) });
            }
        }
        for l in links.values_mut() {
            l.availability = (l.tests > 0).then(|| l.answered as f64 / l.tests as f64);
        }
        let mut by: BTreeMap<(usize, String), AnswerStats> = BTreeMap::new();
        for a in &rows.answers {
            let rank = PRECEDENCES.iter().position(|p| *p == a.precedence).unwrap_or(PRECEDENCES.len());
            for member in [String::new(), a.member.to_string()] {
                let s = by.entry((rank, member.clone())).or_insert_with(|| AnswerStats {
                    precedence: a.precedence.clone(),
                    member,
                    asked: 0,
                    acknowledged: 0,
                    declined: 0,
                    late: 0,
                    unanswered: 0,
                    times_ms: Vec::new(),
                });
                s.asked += 1;
                let answered = a.acknowledged_ms.or(a.declined_ms);
                match (a.acknowledged_ms, a.declined_ms) {
                    (Some(_), _) => s.acknowledged += 1,
                    (None, Some(_)) => s.declined += 1,
                    (None, None) => s.unanswered += 1,
                }
                if let Some(at) = answered {
                    s.times_ms.push(at.saturating_sub(a.sent_ms));
                }
                let late = match (answered, a.deadline_ms) {
                    (Some(at), Some(due)) => at > due,
                    (None, Some(due)) => due < to_ms.min(generated_ms),
                    _ => false,
                };
                s.late += u64::from(late);
            }
        }
        let mut answers: Vec<AnswerStats> = by.into_values().collect();
        for s in &mut answers {
            s.times_ms.sort_unstable();
        }
        let alarms = rows.alarms.into_iter().map(alarm_view).collect();
        let traffic = rows.traffic.into_iter().map(traffic_view).collect();
        Report {
            member: member.to_string(),
            from_ms,
            to_ms,
            generated_ms,
            links: links.into_values().collect(),
            answers,
            alarms,
            traffic,
        }
    }

    /// The report as one HTML page: no script, its style and plots inside it.
    pub fn html(&self) -> String {
        let mut h = String::new();
        let title = format!("ADI operations report: {} from {} to {}", self.member, utc(self.from_ms), utc(self.to_ms));
        let _ = write!(
            h,
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>",
            esc(&title)
        );
        let _ = write!(
            h,
            "<h1>{}</h1><p class=\"meta\">Generated {} from the record of {}'s node.</p>",
            esc(&title),
            utc(self.generated_ms),
            esc(&self.member)
        );

        h.push_str("<h2>Link tests: availability</h2>");
        h.push_str("<table class=\"matrix\"><caption>Tests answered over tests sent, by pair</caption><tr><th scope=\"col\">Pair</th>");
        for l in &self.links {
            let _ = write!(h, "<th scope=\"col\">{}</th>", esc(&l.peer));
        }
        let _ = write!(h, "</tr><tr><th scope=\"row\">{}</th>", esc(&self.member));
        for l in &self.links {
            let (class, text) = match l.availability {
                Some(a) => (
                    if a >= 0.99 {
                        "good"
                    } else if a >= 0.9 {
                        "fair"
                    } else {
                        "poor"
                    },
                    format!("{:.1}%", a * 100.0),
                ),
                None => ("none", "no test".to_string()),
            };
            let _ = write!(h, "<td class=\"{class}\">{text}<br><small>{} of {}</small></td>", l.answered, l.tests);
        }
        h.push_str("</tr></table>");

        h.push_str("<h2>Round trips over time</h2>");
        let series: Vec<(String, Vec<(u64, f64)>)> = self
            .links
            .iter()
            .map(|l| (l.peer.clone(), l.round_trips.iter().map(|(t, r)| (*t, *r as f64)).collect()))
            .collect();
        h.push_str(&time_plot(&series, self.from_ms, self.to_ms, "round trip (ms)"));

        h.push_str("<h2>Outages</h2>");
        let outages: Vec<(&LinkReport, &Outage)> =
            self.links.iter().flat_map(|l| l.outages.iter().map(move |o| (l, o))).collect();
        if outages.is_empty() {
            h.push_str("<p>No link went unanswered.</p>");
        } else {
            h.push_str("<table><tr><th scope=\"col\">Pair</th><th scope=\"col\">Start (UTC)</th><th scope=\"col\">End (UTC)</th><th scope=\"col\">Length</th></tr>");
            for (l, o) in outages {
                let end = o.end_ms.map_or("still open".to_string(), utc);
                let length = o.end_ms.map_or(String::new(), |e| duration(e.saturating_sub(o.start_ms)));
                let _ = write!(
                    h,
                    "<tr class=\"outage\"><td>{} – {}</td><td>{}</td><td>{end}</td><td>{length}</td></tr>",
                    esc(&self.member),
                    esc(&l.peer),
                    utc(o.start_ms)
                );
            }
            h.push_str("</table>");
        }

        h.push_str("<h2>Time to acknowledge</h2>");
        let rows: Vec<(String, Vec<f64>)> = self
            .answers
            .iter()
            .filter(|s| s.member.is_empty())
            .map(|s| (s.precedence.clone(), s.times_ms.iter().map(|t| *t as f64 / 1000.0).collect()))
            .collect();
        h.push_str(&strip_plot(&rows, "seconds from sending to the answer (log scale)"));
        h.push_str("<table><tr><th scope=\"col\">Precedence</th><th scope=\"col\">Member</th><th scope=\"col\">Asked</th><th scope=\"col\">Acknowledged</th><th scope=\"col\">Declined</th><th scope=\"col\">Unanswered</th><th scope=\"col\">Late</th><th scope=\"col\">Median</th><th scope=\"col\">90th percentile</th><th scope=\"col\">Slowest</th></tr>");
        for s in &self.answers {
            let member = if s.member.is_empty() { "all".to_string() } else { s.member.clone() };
            let q = |p: f64| quantile(&s.times_ms, p).map_or("–".to_string(), duration);
            let late = if s.late > 0 { " class=\"late\"" } else { "" };
            let _ = write!(
                h,
                "<tr{late}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&s.precedence),
                esc(&member),
                s.asked,
                s.acknowledged,
                s.declined,
                s.unanswered,
                s.late,
                q(0.5),
                q(0.9),
                q(1.0)
            );
        }
        h.push_str("</table>");

        h.push_str("<h2>Alarms</h2>");
        let mut kinds: BTreeMap<&str, Vec<(u64, Option<u64>)>> = BTreeMap::new();
        for a in &self.alarms {
            kinds.entry(a.kind.as_str()).or_default().push((a.raised_ms, a.cleared_ms));
        }
        let spans: Spans = kinds.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        h.push_str(&span_plot(&spans, self.from_ms, self.to_ms));
        h.push_str("<table><tr><th scope=\"col\">Alarm</th><th scope=\"col\">About</th><th scope=\"col\">Raised (UTC)</th><th scope=\"col\">Cleared (UTC)</th></tr>");
        for a in &self.alarms {
            let cleared = a.cleared_ms.map_or("open".to_string(), utc);
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{cleared}</td></tr>",
                esc(&a.kind),
                esc(&a.member),
                utc(a.raised_ms)
            );
        }
        h.push_str("</table>");

        h.push_str("<h2>Traffic by precedence and class</h2><table><tr><th scope=\"col\">Direction</th><th scope=\"col\">Precedence</th><th scope=\"col\">Class</th><th scope=\"col\">Messages</th></tr>");
        for t in &self.traffic {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                t.direction,
                esc(&t.precedence),
                esc(&t.class),
                t.count
            );
        }
        h.push_str("</table></body></html>\n");
        h
    }
}

fn alarm_view(a: ReportAlarm) -> ReportAlarmView {
    ReportAlarmView { kind: a.kind, member: a.member.to_string(), raised_ms: a.raised_ms, cleared_ms: a.cleared_ms }
}

fn traffic_view(t: ReportTraffic) -> TrafficView {
    TrafficView {
        direction: if t.sent { "sent" } else { "received" },
        precedence: t.precedence,
        class: t.class,
        count: t.count,
    }
}

/// The page's style, the same in every report (the node serves the page with its hash in the
/// Content-Security-Policy).
pub const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#111}h1{font-size:1.4rem}\
h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ccc}table{border-collapse:collapse;margin:.5rem 0}\
th,td{border:1px solid #bbb;padding:.25rem .5rem;text-align:left}td.good{background:#d8f0d8}td.fair{background:#fff0c0}\
td.poor{background:#f8c8c8}tr.late td{background:#fde0e0}.meta{color:#444}svg{display:block;max-width:100%;height:auto}\
@media print{h2{break-after:avoid}svg,table{break-inside:avoid}}";

/// The policy the node serves the page with: its own style, by hash, and nothing else.
pub fn page_policy() -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(STYLE.as_bytes()));
    format!("default-src 'none'; style-src 'sha256-{hash}'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
}

const PLOT_W: f64 = 900.0;
const PLOT_H: f64 = 260.0;
const MARGIN_L: f64 = 70.0;
const MARGIN_B: f64 = 40.0;
const COLOURS: [&str; 8] = ["#1a4fa0", "#b00020", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f", "#5d4037", "#455a64"];

/// A line per series over the window: x the time, y the value.
fn time_plot(series: &[(String, Vec<(u64, f64)>)], from: u64, to: u64, y_label: &str) -> String {
    let max = series.iter().flat_map(|(_, p)| p.iter().map(|(_, v)| *v)).fold(0.0_f64, f64::max).max(1.0);
    let span = to.saturating_sub(from).max(1) as f64;
    let x = |t: u64| MARGIN_L + (t.saturating_sub(from) as f64 / span) * (PLOT_W - MARGIN_L - 10.0);
    let y = |v: f64| 10.0 + (1.0 - v / max) * (PLOT_H - MARGIN_B - 10.0);
    let mut s = svg_open(&format!("{y_label}, by peer, over the report's window"));
    axes(&mut s, &format!("{max:.0}"), "0", y_label);
    time_ticks(&mut s, from, to);
    for (i, (name, points)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        if points.len() > 1 {
            let d: Vec<String> = points.iter().map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v))).collect();
            let _ = write!(
                s,
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/>",
                d.join(" ")
            );
        }
        for (t, v) in points {
            let _ = write!(s, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\" fill=\"{colour}\"/>", x(*t), y(*v));
        }
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" fill=\"{colour}\" font-size=\"12\">{}</text>",
            PLOT_W - 60.0,
            20.0 + 14.0 * i as f64,
            esc(name)
        );
    }
    s.push_str("</svg>");
    s
}

/// A row per group, each value a dot on a logarithmic axis (0.1 s to 10^5 s): the whole
/// distribution, every answer shown.
fn strip_plot(rows: &[(String, Vec<f64>)], x_label: &str) -> String {
    let (lo, hi) = (-1.0_f64, 5.0_f64);
    let x = |v: f64| MARGIN_L + ((v.max(0.1).log10() - lo) / (hi - lo)).clamp(0.0, 1.0) * (PLOT_W - MARGIN_L - 10.0);
    let height = 30.0 * rows.len().max(1) as f64 + MARGIN_B + 10.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {PLOT_W} {height}\" role=\"img\" aria-label=\"{}\">",
        esc(x_label)
    );
    for e in 0..=5 {
        let v = 10f64.powi(e - 1);
        let _ = write!(s, "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"5\" y2=\"{1}\" stroke=\"#ddd\"/><text x=\"{0:.1}\" y=\"{2}\" font-size=\"11\" text-anchor=\"middle\">{3}</text>", x(v), height - MARGIN_B, height - MARGIN_B + 14.0, if v < 1.0 { format!("{v}") } else { format!("{v:.0}") });
    }
    for (i, (name, values)) in rows.iter().enumerate() {
        let cy = 20.0 + 30.0 * i as f64;
        let colour = COLOURS[i % COLOURS.len()];
        let _ = write!(s, "<text x=\"4\" y=\"{:.1}\" font-size=\"12\">{}</text>", cy + 4.0, esc(name));
        for v in values {
            let _ = write!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{cy:.1}\" r=\"3\" fill=\"{colour}\" fill-opacity=\"0.6\"/>",
                x(*v)
            );
        }
    }
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"middle\">{}</text></svg>",
        (PLOT_W + MARGIN_L) / 2.0,
        height - 6.0,
        esc(x_label)
    );
    s
}

/// A row per kind, a bar from each raising to its clearing (to the window's end when open).
fn span_plot(rows: &Spans, from: u64, to: u64) -> String {
    let span = to.saturating_sub(from).max(1) as f64;
    let x = |t: u64| MARGIN_L + (t.clamp(from, to) - from) as f64 / span * (PLOT_W - MARGIN_L - 10.0);
    let height = 24.0 * rows.len().max(1) as f64 + MARGIN_B + 10.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {PLOT_W} {height}\" role=\"img\" aria-label=\"Alarms over time, by kind\">"
    );
    for (i, (kind, spans)) in rows.iter().enumerate() {
        let top = 8.0 + 24.0 * i as f64;
        let _ = write!(s, "<text x=\"4\" y=\"{:.1}\" font-size=\"11\">{}</text>", top + 12.0, esc(kind));
        for (start, end) in spans {
            let (a, b) = (x(*start), x(end.unwrap_or(to)));
            let _ = write!(s, "<rect x=\"{a:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"16\" fill=\"#b00020\" fill-opacity=\"0.7\"/>", (b - a).max(2.0));
        }
    }
    let ticks_at = height - MARGIN_B;
    let _ = write!(
        s,
        "<line x1=\"{MARGIN_L}\" x2=\"{}\" y1=\"{ticks_at}\" y2=\"{ticks_at}\" stroke=\"#333\"/>",
        PLOT_W - 10.0
    );
    for k in 0..=4 {
        let t = from + (to.saturating_sub(from)) / 4 * k;
        let anchor = match k {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"{anchor}\">{}</text>",
            x(t),
            ticks_at + 14.0,
            esc(&utc(t)[5..16])
        );
    }
    s.push_str("</svg>");
    s
}

fn svg_open(label: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {PLOT_W} {PLOT_H}\" role=\"img\" aria-label=\"{}\">",
        esc(label)
    )
}

fn axes(s: &mut String, top: &str, bottom: &str, label: &str) {
    let base = PLOT_H - MARGIN_B;
    let _ = write!(
        s,
        "<line x1=\"{MARGIN_L}\" x2=\"{MARGIN_L}\" y1=\"10\" y2=\"{base}\" stroke=\"#333\"/><line x1=\"{MARGIN_L}\" x2=\"{}\" y1=\"{base}\" y2=\"{base}\" stroke=\"#333\"/>\
         <text x=\"{}\" y=\"14\" font-size=\"11\" text-anchor=\"end\">{top}</text><text x=\"{}\" y=\"{base}\" font-size=\"11\" text-anchor=\"end\">{bottom}</text>\
         <text x=\"12\" y=\"{}\" font-size=\"11\" transform=\"rotate(-90 12 {})\" text-anchor=\"middle\">{}</text>",
        PLOT_W - 10.0,
        MARGIN_L - 4.0,
        MARGIN_L - 4.0,
        base / 2.0,
        base / 2.0,
        esc(label)
    );
}

fn time_ticks(s: &mut String, from: u64, to: u64) {
    let span = to.saturating_sub(from).max(1) as f64;
    for k in 0..=4u64 {
        let t = from + to.saturating_sub(from) / 4 * k;
        let x = MARGIN_L + (t - from) as f64 / span * (PLOT_W - MARGIN_L - 10.0);
        let anchor = match k {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = write!(
            s,
            "<text x=\"{x:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"{anchor}\">{}</text>",
            PLOT_H - MARGIN_B + 14.0,
            esc(&utc(t)[5..16])
        );
    }
}

/// The value below which a share `p` of the sorted `values` lie (nearest rank).
fn quantile(values: &[u64], p: f64) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    let rank = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len());
    Some(values[rank - 1])
}

fn duration(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms} ms"),
        1_000..=119_999 => format!("{:.1} s", ms as f64 / 1000.0),
        120_000..=7_199_999 => format!("{:.1} min", ms as f64 / 60_000.0),
        _ => format!("{:.1} h", ms as f64 / 3_600_000.0),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::{quantile, utc, Report};
    use adi_core::MemberCode;
    use adi_store::{ReportAlarm, ReportAnswer, ReportLinkTest, ReportRows};

    fn code(c: &str) -> MemberCode {
        MemberCode::parse(c).unwrap()
    }

    #[test]
    fn times_quantiles_and_the_figures_of_a_window() {
        assert_eq!(utc(1_796_601_600_000), "2026-12-07 00:00:00Z");
        assert_eq!(quantile(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9), Some(9));
        assert_eq!(quantile(&[], 0.5), None);
        let rows = ReportRows {
            link_tests: vec![
                ReportLinkTest { peer: code("CN"), sent_ms: 1_000, answered_ms: Some(1_040) },
                ReportLinkTest { peer: code("CN"), sent_ms: 2_000, answered_ms: None },
                ReportLinkTest { peer: code("CN"), sent_ms: 3_000, answered_ms: Some(4_500) },
            ],
            answers: vec![ReportAnswer {
                member: code("CN"),
                precedence: "FLASH".into(),
                sent_ms: 1_000,
                deadline_ms: Some(2_000),
                acknowledged_ms: Some(3_000),
                declined_ms: None,
            }],
            alarms: vec![ReportAlarm {
                kind: "link_no_answer".into(),
                member: code("CN"),
                raised_ms: 2_500,
                cleared_ms: Some(4_000),
            }],
            traffic: Vec::new(),
        };
        let r = Report::new("PH", (0, 10_000), 10_000, 1_000, &["CN".to_string(), "VN".to_string()], rows);
        // Answered within the interval: one test of three (the third's answer came too late).
        assert_eq!(r.links[0].availability, Some(1.0 / 3.0));
        assert_eq!(r.links[0].round_trips, vec![(1_000, 40), (3_000, 1_500)]);
        assert_eq!(r.links[0].outages.len(), 1);
        assert_eq!(r.links[1].availability, None, "VN had no test");
        let all = r.answers.iter().find(|s| s.member.is_empty()).unwrap();
        assert_eq!((all.asked, all.acknowledged, all.late, all.times_ms.clone()), (1, 1, 1, vec![2_000]));
        let html = r.html();
        assert!(html.contains("33.3%") && html.contains("no test") && html.contains("<tr class=\"outage\">"), "{html}");
        assert!(!html.contains("<script"), "the page runs nothing");
    }
}
