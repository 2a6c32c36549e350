//! `adi cpa`: the closest point of approach of two units and the COLREGs situation, computed here
//! as a suggestion for the reporting officer; no node is asked.

use std::path::PathBuf;

use anyhow::anyhow;

use super::send::read_form;

fn parse_track(name: &str, text: &str) -> anyhow::Result<adi_forms::cpa::Track> {
    let parts: Vec<f64> = text
        .split(',')
        .map(|p| p.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow!("--{name} '{text}': expected LAT,LON,COURSE,SPEED as numbers"))?;
    let [lat, lon, course_deg, speed_kn] = parts[..] else {
        anyhow::bail!("--{name} '{text}': expected four numbers, LAT,LON,COURSE,SPEED");
    };
    let track = adi_forms::cpa::Track { position: adi_forms::Position::new(lat, lon), course_deg, speed_kn };
    adi_forms::check::track(name, &track).map_err(|e| anyhow!("--{e}"))?;
    Ok(track)
}

/// Prints the approach of `own` and `other`, or of each unit of the report in `file`.
pub fn cpa(own: Option<String>, other: Option<String>, file: Option<PathBuf>, json_out: bool) -> anyhow::Result<()> {
    let approaches = match (own, other, file) {
        (_, _, Some(file)) => {
            let form = read_form("encounter-at-sea", &file)?;
            let form = adi_forms::check(&form).map_err(|e| anyhow!("{e}"))?;
            adi_forms::approaches(&form)
        }
        (Some(own), Some(other), None) => vec![adi_forms::UnitApproach {
            own: "own".into(),
            other: "other".into(),
            approach: adi_forms::cpa::approach(&parse_track("own", &own)?, &parse_track("other", &other)?),
        }],
        _ => anyhow::bail!("give --own and --other, or --file"),
    };
    if json_out {
        out!("{}", serde_json::to_string_pretty(&approaches)?);
        return Ok(());
    }
    for a in &approaches {
        let x = &a.approach;
        out!("{} to {}:", a.own, a.other);
        out!(
            "  range now        {:.2} nm, bearing {:03.0}° (relative {:03.0}°)",
            x.range_nm,
            x.bearing_deg,
            x.relative_bearing_deg
        );
        match x.tcpa_min {
            Some(t) => out!("  closest approach {:.2} nm in {t:.1} min", x.cpa_nm),
            None => out!("  closest approach {:.2} nm (no relative motion)", x.cpa_nm),
        }
        out!("  suggested        {}: {}", x.situation.as_str(), x.situation.advice());
    }
    out!("This is a suggestion from the positions, courses and speeds given; confirm it before it goes in a report (\"situation\").");
    Ok(())
}
