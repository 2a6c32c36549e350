//! `adi report`: the operations report of a node over a window, written to a file as one
//! self-contained HTML page (plots in SVG, no script) or as JSON (`docs/OPERATIONS.md`).

use std::path::PathBuf;

use hyper::{Method, StatusCode};

use crate::ClientArgs;

/// A day or a time as the command line takes it: `YYYY-MM-DD` (midnight UTC) or milliseconds
/// since 1970-01-01T00:00Z.
pub fn parse_time(text: &str) -> Result<u64, String> {
    if let Ok(ms) = text.parse::<u64>() {
        return Ok(ms);
    }
    let bad = || format!("'{text}' is neither a day (YYYY-MM-DD, UTC) nor milliseconds since 1970-01-01T00:00Z");
    let parts: Vec<&str> = text.split('-').collect();
    let [y, m, d] = parts.as_slice() else { return Err(bad()) };
    let (y, m, d): (i64, i64, i64) = match (y.parse(), m.parse(), d.parse()) {
        (Ok(y), Ok(m), Ok(d)) if (1970..=9999).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d) => {
            (y, m, d)
        }
        _ => return Err(bad()),
    };
    // Days since the epoch of a civil date (proleptic Gregorian), after Howard Hinnant's
    // `days_from_civil`; checked against the date it gives back, so that 2026-02-30 is refused.
    let y_march = if m <= 2 { y - 1 } else { y };
    let era = y_march.div_euclid(400);
    let yoe = y_march - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days).map_err(|_| bad())? * 86_400;
    let (yy, mm, dd, _) = adi_node::clock::civil(secs);
    if (yy, mm, dd) != (y, m, d) {
        return Err(format!("'{text}' is not a day of the calendar"));
    }
    Ok(secs * 1000)
}

/// Asks the node for its report of `[from, to)` and writes it to `out`.
pub async fn report(
    client: ClientArgs,
    from: Option<u64>,
    to: Option<u64>,
    json: bool,
    out: PathBuf,
) -> anyhow::Result<()> {
    let mut query = vec![format!("format={}", if json { "json" } else { "html" })];
    query.extend(from.map(|f| format!("from_ms={f}")));
    query.extend(to.map(|t| format!("to_ms={t}")));
    let path = format!("/api/v1/report?{}", query.join("&"));
    eprintln!("asking {} for its operations report", client.url);
    let node = client.client()?;
    let (status, body) = crate::cmd::showing_progress("the report", node.request_raw(Method::GET, &path, None)).await?;
    if status != StatusCode::OK {
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let said = v["message"].as_str().map(crate::cmd::printable).unwrap_or_else(|| status.to_string());
        anyhow::bail!("the node refused the report: {said}");
    }
    std::fs::write(&out, &body).map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
    out!("wrote {} ({} bytes)", out.display(), body.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn days_and_milliseconds() {
        assert_eq!(parse_time("1970-01-01"), Ok(0));
        assert_eq!(parse_time("2026-12-07"), Ok(1_796_601_600_000));
        assert_eq!(parse_time("2024-02-29"), Ok(1_709_164_800_000));
        assert_eq!(parse_time("1796601600000"), Ok(1_796_601_600_000));
        assert!(parse_time("2026-02-30").unwrap_err().contains("not a day of the calendar"));
        assert!(parse_time("07/12/2026").is_err());
        assert!(parse_time("2026-13-01").is_err());
        assert!(parse_time("").is_err());
    }
}
