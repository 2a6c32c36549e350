//! A form as plain text for people: the same on the console, in the CLI and in an export bundle.

use std::fmt::Write;

use crate::geo::Position;
use crate::kinds::*;

/// A position as degrees and decimal minutes: `14°35.00'N 120°58.00'E`.
pub fn position(p: &Position) -> String {
    let part = |v: f64, pos: char, neg: char| {
        let h = if v < 0.0 { neg } else { pos };
        let a = v.abs();
        let mut deg = a.trunc();
        let mut min = ((a - deg) * 60.0 * 100.0).round() / 100.0;
        if min >= 60.0 {
            deg += 1.0;
            min -= 60.0;
        }
        format!("{deg:.0}°{min:05.2}'{h}")
    };
    format!("{} {}", part(p.lat, 'N', 'S'), part(p.lon, 'E', 'W'))
}

fn vessel(v: &Vessel) -> String {
    let mut s = v.name.clone();
    let ids: Vec<&str> = [v.hull_number.as_deref(), v.call_sign.as_deref()].into_iter().flatten().collect();
    if !ids.is_empty() {
        let _ = write!(s, " ({})", ids.join(", "));
    }
    let _ = write!(s, ", {}", v.unit_type);
    if let Some(n) = &v.nationality {
        let _ = write!(s, ", {n}");
    }
    // Adding 0.0 turns a −0 into 0, which would otherwise print as "-00°".
    let _ = write!(
        s,
        "; at {}, course {:03.0}°, speed {:.1} kn",
        position(&v.position),
        v.course_deg + 0.0,
        v.speed_kn + 0.0
    );
    s
}

fn aircraft(a: &Aircraft) -> String {
    let mut s = format!("{}, {}", a.call_sign, a.aircraft_type);
    if let Some(r) = &a.registration {
        let _ = write!(s, " ({r})");
    }
    if let Some(n) = &a.nationality {
        let _ = write!(s, ", {n}");
    }
    let _ = write!(s, "; at {}, {:.0} ft", position(&a.position), a.altitude_ft);
    if let Some(h) = a.heading_deg {
        let _ = write!(s, ", heading {:03.0}°", h + 0.0);
    }
    if let Some(k) = a.speed_kn {
        let _ = write!(s, ", {k:.0} kn");
    }
    s
}

fn area(a: &Area) -> String {
    match a {
        Area::Circle(c) => format!("a circle of {:.1} nm about {}", c.radius_nm, position(&c.centre)),
        Area::Polygon(p) => {
            format!("the polygon {}", p.iter().map(position).collect::<Vec<_>>().join(" – "))
        }
    }
}

fn contact(c: &Contact) -> String {
    let mut s = format!("{}, {}", c.name, c.role);
    for x in [&c.phone, &c.email].into_iter().flatten() {
        let _ = write!(s, ", {x}");
    }
    s
}

fn enum_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(|s| s.replace('-', " "))).unwrap_or_default()
}

/// The stage's title, as the forms name it.
pub fn stage_title(s: ReliefStage) -> &'static str {
    match s {
        ReliefStage::Notification => "Notification of disaster",
        ReliefStage::SituationUpdate => "Situation update",
        ReliefStage::Request => "Request for assistance",
        ReliefStage::Offer => "Offer of assistance",
        ReliefStage::Mobilisation => "Mobilisation",
        ReliefStage::Demobilisation => "Demobilisation",
    }
}

/// A one-line summary, used as the subject when the sender gives none.
pub fn summary(form: &Form) -> String {
    match form {
        Form::EncounterAtSea(f) => format!(
            "Encounter at sea: {} and {}",
            f.reporting_unit.name,
            f.other_units.iter().map(|v| v.name.as_str()).collect::<Vec<_>>().join(", ")
        ),
        Form::AirEncounter(f) => format!(
            "Air encounter: {} and {}",
            f.reporting_aircraft.call_sign,
            f.other_aircraft.iter().map(|a| a.call_sign.as_str()).collect::<Vec<_>>().join(", ")
        ),
        Form::DisasterRelief(f) => format!("{}: {}, {}", stage_title(f.stage), f.disaster, f.location.name),
        Form::MilitaryActivity(f) => format!("Notice of major military activity: {}", f.exercise),
        Form::CallRequest(f) => format!("Call requested: {}", f.subject),
        Form::CallAnswer(f) => match f.answer {
            CallResponse::Accept => format!("Call accepted for {}", f.time_utc.as_deref().unwrap_or("")),
            CallResponse::Postpone => "Call postponed".to_string(),
            CallResponse::Decline => "Call declined".to_string(),
        },
    }
}

/// The whole form as plain text, one fact to a line.
pub fn render(form: &Form) -> String {
    let mut s = String::new();
    let mut line = |k: &str, v: &str| {
        let _ = writeln!(s, "{k:<22}{v}");
    };
    match form {
        Form::EncounterAtSea(f) => {
            line("ENCOUNTER AT SEA", "voluntary report of an unplanned encounter (CUES)");
            line("Time (UTC)", &f.time_utc);
            line("Reporting unit", &vessel(&f.reporting_unit));
            for v in &f.other_units {
                line("Other unit", &vessel(v));
            }
            for i in &f.intentions {
                line("Intention declared", &format!("{}: {}", i.unit, i.text));
            }
            for g in &f.signals {
                let when = g.time_utc.as_deref().map(|t| format!(" at {t}")).unwrap_or_default();
                let meaning = g.meaning.as_deref().unwrap_or("");
                line("Signal", &format!("{}{when}: {} {} \"{meaning}\"", g.by, g.source, g.group));
            }
            line(
                "Closest approach",
                &format!("{:.2} nm at {} (observed)", f.closest_approach.distance_nm, f.closest_approach.time_utc),
            );
            if let Some(sit) = f.situation {
                line("COLREGs situation", &format!("{} (confirmed by the reporting officer)", sit.as_str()));
            }
            line("Narrative", &f.narrative);
        }
        Form::AirEncounter(f) => {
            line("AIR ENCOUNTER", "report under the ADMM Guidelines for Air Military Encounters");
            line("Time (UTC)", &f.time_utc);
            line("Reporting aircraft", &aircraft(&f.reporting_aircraft));
            for a in &f.other_aircraft {
                line("Other aircraft", &aircraft(a));
            }
            line(
                "Separation",
                &format!(
                    "{:.2} nm horizontal, {:.0} ft vertical",
                    f.separation.horizontal_nm, f.separation.vertical_ft
                ),
            );
            for c in &f.communications {
                let answered = if c.answered { "answered" } else { "not answered" };
                line("Communication", &format!("{} on {}: \"{}\" ({answered})", c.by, c.means, c.text));
            }
            line("Narrative", &f.narrative);
        }
        Form::DisasterRelief(f) => {
            line("DISASTER RELIEF", &stage_title(f.stage).to_uppercase());
            line("Time (UTC)", &f.time_utc);
            line("Disaster", &f.disaster);
            line("Location", &format!("{}, {}", f.location.name, position(&f.location.position)));
            if let Some(a) = &f.affected_area {
                line("Affected area", &area(a));
            }
            for (title, items) in [("Need", &f.needs), ("Capability", &f.capabilities)] {
                for it in items {
                    let q = it.quantity.as_deref().map(|q| format!(" ({q})")).unwrap_or_default();
                    line(title, &format!("{}: {}{q}", enum_name(&it.category), it.description));
                }
            }
            for c in &f.contacts {
                line("Point of contact", &contact(c));
            }
            if !f.narrative.is_empty() {
                line("Narrative", &f.narrative);
            }
        }
        Form::MilitaryActivity(f) => {
            line("NOTICE OF MAJOR MILITARY ACTIVITY", "");
            line("Exercise", &f.exercise);
            line("Area", &area(&f.area));
            line("Period (UTC)", &format!("{} to {}", f.start_utc, f.end_utc));
            line("Forces", &f.forces);
            line("Contact", &contact(&f.contact));
            if !f.narrative.is_empty() {
                line("Narrative", &f.narrative);
            }
        }
        Form::CallRequest(f) => {
            line("REQUEST FOR A CALL", "");
            line("Subject", &f.subject);
            line("Proposed times (UTC)", &f.proposed_utc.join(", "));
            if let Some(d) = f.duration_min {
                line("Duration", &format!("{d} minutes"));
            }
        }
        Form::CallAnswer(f) => {
            line("ANSWER TO A CALL REQUEST", &enum_name(&f.answer).to_uppercase());
            line("Request", &f.request);
            if let Some(t) = &f.time_utc {
                line("Time (UTC)", t);
            }
            if let Some(r) = &f.reason {
                line("Reason", r);
            }
        }
    }
    s.trim_end().to_string()
}
