//! Checks a form field by field. Every refusal names the field, as a path into the JSON
//! (`other_units[0].position.lat`), and says what is wrong with it; nothing is sent until a form
//! passes.

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::geo::{self, Position};
use crate::kinds::*;
use crate::signals;

/// Largest form, as JSON bytes.
pub const FORM_BYTES_MAX: usize = 32 * 1024;
/// Longest name, type, call sign, description or other short text field, in characters.
pub const SHORT_TEXT_CHARS_MAX: usize = 200;
/// Longest narrative, intention or reason, in characters.
pub const NARRATIVE_CHARS_MAX: usize = 8000;
/// Most entries in any list of a form (units, signals, needs, contacts, polygon corners…).
pub const LIST_LEN_MAX: usize = 64;
/// Most proposed times in a call request.
pub const CALL_TIMES_MAX: usize = 5;
/// Fastest speed a unit at sea may be reported at, knots.
pub const SEA_SPEED_KN_MAX: f64 = 100.0;
/// Fastest speed an aircraft may be reported at, knots.
pub const AIR_SPEED_KN_MAX: f64 = 2000.0;
/// Lowest and highest altitude an aircraft may be reported at, feet.
pub const ALTITUDE_FT_MIN: f64 = -1500.0;
pub const ALTITUDE_FT_MAX: f64 = 100_000.0;
/// Largest circle radius or separation, nautical miles.
pub const DISTANCE_NM_MAX: f64 = 5000.0;

/// Why a form is refused, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormError {
    /// Path of the field in the form's JSON; empty for the form as a whole.
    pub field: String,
    pub message: String,
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for FormError {}

fn err(field: impl Into<String>, message: impl Into<String>) -> FormError {
    FormError { field: field.into(), message: message.into() }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else if name.starts_with('[') {
        format!("{path}{name}")
    } else {
        format!("{path}.{name}")
    }
}

/// Reads a form from JSON and checks every field. Returns the form with signal meanings filled
/// in from the code: the form to send.
pub fn check(value: &Value) -> Result<Form, FormError> {
    let bytes = serde_json::to_vec(value).map(|b| b.len()).unwrap_or(usize::MAX);
    if bytes > FORM_BYTES_MAX {
        return Err(err("", format!("a form is at most {FORM_BYTES_MAX} bytes of JSON; this one is {bytes}")));
    }
    let Value::Object(map) = value else {
        return Err(err("", "a form is a JSON object"));
    };
    let kind = match map.get("kind") {
        Some(Value::String(k)) => k.as_str(),
        Some(_) => return Err(err("kind", "is not a string")),
        None => return Err(err("kind", format!("is required and missing; one of {}", KINDS.join(", ")))),
    };
    let mut fields = map.clone();
    fields.remove("kind");
    let fields = Value::Object(fields);
    let mut form = match kind {
        "encounter-at-sea" => Form::EncounterAtSea(typed(fields)?),
        "air-encounter" => Form::AirEncounter(typed(fields)?),
        "disaster-relief" => Form::DisasterRelief(typed(fields)?),
        "military-activity" => Form::MilitaryActivity(typed(fields)?),
        "call-request" => Form::CallRequest(typed(fields)?),
        "call-answer" => Form::CallAnswer(typed(fields)?),
        other => return Err(err("kind", format!("unknown kind '{other}'; one of {}", KINDS.join(", ")))),
    };
    match &mut form {
        Form::EncounterAtSea(f) => sea(f)?,
        Form::AirEncounter(f) => air(f)?,
        Form::DisasterRelief(f) => relief(f)?,
        Form::MilitaryActivity(f) => activity(f)?,
        Form::CallRequest(f) => call_request(f)?,
        Form::CallAnswer(f) => call_answer(f)?,
    }
    Ok(form)
}

/// Deserialises with the path of the field that failed.
fn typed<T: DeserializeOwned>(fields: Value) -> Result<T, FormError> {
    serde_path_to_error::deserialize(fields).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let inner = e.into_inner().to_string();
        // serde names a missing field in its parent's error; name the field itself.
        if let Some(rest) = inner.strip_prefix("missing field `") {
            let name = rest.split('`').next().unwrap_or_default();
            return err(join(&path, name), "is required and missing");
        }
        if let Some(rest) = inner.strip_prefix("unknown field `") {
            let name = rest.split('`').next().unwrap_or_default();
            let field = if path.ends_with(name) { path } else { join(&path, name) };
            return err(field, "is not a field of this form");
        }
        err(path, inner)
    })
}

fn version(path: &str, v: u8) -> Result<(), FormError> {
    if v != FORM_VERSION {
        return Err(err(join(path, "v"), format!("schema version {v} is not known; this build reads version 1")));
    }
    Ok(())
}

fn text(path: &str, value: &str, max: usize) -> Result<(), FormError> {
    if value.trim().is_empty() {
        return Err(err(path, "is empty"));
    }
    let n = value.chars().count();
    if n > max {
        return Err(err(path, format!("is {n} characters; at most {max}")));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(err(path, "holds a control character"));
    }
    Ok(())
}

fn opt_text(path: &str, value: &Option<String>, max: usize) -> Result<(), FormError> {
    value.as_deref().map_or(Ok(()), |v| text(path, v, max))
}

fn list<T>(path: &str, items: &[T], min: usize, max: usize) -> Result<(), FormError> {
    if items.len() < min {
        return Err(err(path, format!("needs at least {min} {}", if min == 1 { "entry" } else { "entries" })));
    }
    if items.len() > max {
        return Err(err(path, format!("has {} entries; at most {max}", items.len())));
    }
    Ok(())
}

fn range(path: &str, value: f64, min: f64, max: f64, unit: &str) -> Result<(), FormError> {
    if !value.is_finite() || value < min || value > max {
        return Err(err(path, format!("{value} is out of range ({min} to {max} {unit})")));
    }
    Ok(())
}

fn position(path: &str, p: &Position) -> Result<(), FormError> {
    if let Some(problem) = p.problem() {
        let field = if problem.starts_with("latitude") { "lat" } else { "lon" };
        return Err(err(join(path, field), problem));
    }
    Ok(())
}

fn course(path: &str, value: f64) -> Result<(), FormError> {
    if !value.is_finite() || !(0.0..=360.0).contains(&value) {
        return Err(err(path, format!("course {value}° is not a bearing (0 to 360 degrees)")));
    }
    Ok(())
}

/// A UTC time: `YYYY-MM-DDTHH:MM:SSZ` or `YYYY-MM-DDTHH:MMZ`. Returns it as comparable parts.
pub fn utc(path: &str, value: &str) -> Result<(u32, u32, u32, u32, u32, u32), FormError> {
    let bad = || err(path, format!("'{value}' is not a UTC time such as 2026-11-30T03:12:00Z"));
    let b = value.as_bytes();
    if !value.is_ascii() || !(b.len() == 17 || b.len() == 20) || b[b.len() - 1] != b'Z' {
        return Err(bad());
    }
    let seps = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':')];
    if seps.iter().any(|&(i, c)| b[i] != c) || (b.len() == 20 && b[16] != b':') {
        return Err(bad());
    }
    let num = |from: usize, to: usize| -> Result<u32, FormError> {
        let s = &value[from..to];
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    let (y, mo, d, h, mi) = (num(0, 4)?, num(5, 7)?, num(8, 10)?, num(11, 13)?, num(14, 16)?);
    let s = if b.len() == 20 { num(17, 19)? } else { 0 };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if !(1970..=9999).contains(&y) || d == 0 || d > days || h > 23 || mi > 59 || s > 59 {
        return Err(bad());
    }
    Ok((y, mo, d, h, mi, s))
}

fn vessel(path: &str, v: &Vessel) -> Result<(), FormError> {
    text(&join(path, "name"), &v.name, SHORT_TEXT_CHARS_MAX)?;
    opt_text(&join(path, "hull_number"), &v.hull_number, SHORT_TEXT_CHARS_MAX)?;
    opt_text(&join(path, "call_sign"), &v.call_sign, SHORT_TEXT_CHARS_MAX)?;
    text(&join(path, "type"), &v.unit_type, SHORT_TEXT_CHARS_MAX)?;
    opt_text(&join(path, "nationality"), &v.nationality, SHORT_TEXT_CHARS_MAX)?;
    position(&join(path, "position"), &v.position)?;
    course(&join(path, "course_deg"), v.course_deg)?;
    range(&join(path, "speed_kn"), v.speed_kn, 0.0, SEA_SPEED_KN_MAX, "knots")
}

fn sea(f: &mut SeaEncounter) -> Result<(), FormError> {
    version("", f.v)?;
    if !f.voluntary {
        return Err(err("voluntary", "must be true: these reports are made voluntarily"));
    }
    if !f.unplanned {
        return Err(err("unplanned", "must be true: this form is for unplanned encounters only"));
    }
    utc("time_utc", &f.time_utc)?;
    vessel("reporting_unit", &f.reporting_unit)?;
    list("other_units", &f.other_units, 1, LIST_LEN_MAX)?;
    for (i, v) in f.other_units.iter().enumerate() {
        vessel(&format!("other_units[{i}]"), v)?;
    }
    let names: Vec<&str> = std::iter::once(&f.reporting_unit).chain(&f.other_units).map(|v| v.name.as_str()).collect();
    let known = |path: &str, name: &str| -> Result<(), FormError> {
        if names.contains(&name) {
            Ok(())
        } else {
            Err(err(path, format!("'{name}' is not one of the units reported ({})", names.join(", "))))
        }
    };
    list("intentions", &f.intentions, 0, LIST_LEN_MAX)?;
    for (i, x) in f.intentions.iter().enumerate() {
        known(&format!("intentions[{i}].unit"), &x.unit)?;
        text(&format!("intentions[{i}].text"), &x.text, NARRATIVE_CHARS_MAX)?;
    }
    list("signals", &f.signals, 0, LIST_LEN_MAX)?;
    for (i, s) in f.signals.iter_mut().enumerate() {
        let path = format!("signals[{i}]");
        known(&join(&path, "by"), &s.by)?;
        if let Some(t) = &s.time_utc {
            utc(&join(&path, "time_utc"), t)?;
        }
        if !signals::SOURCES.contains(&s.source.as_str()) {
            return Err(err(
                join(&path, "source"),
                format!("unknown source '{}'; one of {}", s.source, signals::SOURCES.join(", ")),
            ));
        }
        let Some(meaning) = signals::meaning(&s.source, &s.group) else {
            return Err(err(join(&path, "group"), format!("'{}' is not a signal group of the {}", s.group, s.source)));
        };
        match &s.meaning {
            Some(m) if m != meaning => {
                return Err(err(
                    join(&path, "meaning"),
                    format!("does not match the code: {} {} means \"{meaning}\"", s.source, s.group),
                ))
            }
            _ => s.meaning = Some(meaning.to_string()),
        }
    }
    range("closest_approach.distance_nm", f.closest_approach.distance_nm, 0.0, DISTANCE_NM_MAX, "nautical miles")?;
    utc("closest_approach.time_utc", &f.closest_approach.time_utc)?;
    text("narrative", &f.narrative, NARRATIVE_CHARS_MAX)
}

fn aircraft(path: &str, a: &Aircraft) -> Result<(), FormError> {
    text(&join(path, "call_sign"), &a.call_sign, SHORT_TEXT_CHARS_MAX)?;
    text(&join(path, "type"), &a.aircraft_type, SHORT_TEXT_CHARS_MAX)?;
    opt_text(&join(path, "nationality"), &a.nationality, SHORT_TEXT_CHARS_MAX)?;
    opt_text(&join(path, "registration"), &a.registration, SHORT_TEXT_CHARS_MAX)?;
    position(&join(path, "position"), &a.position)?;
    range(&join(path, "altitude_ft"), a.altitude_ft, ALTITUDE_FT_MIN, ALTITUDE_FT_MAX, "feet")?;
    if let Some(h) = a.heading_deg {
        course(&join(path, "heading_deg"), h)?;
    }
    if let Some(s) = a.speed_kn {
        range(&join(path, "speed_kn"), s, 0.0, AIR_SPEED_KN_MAX, "knots")?;
    }
    Ok(())
}

fn air(f: &mut AirEncounter) -> Result<(), FormError> {
    version("", f.v)?;
    utc("time_utc", &f.time_utc)?;
    aircraft("reporting_aircraft", &f.reporting_aircraft)?;
    list("other_aircraft", &f.other_aircraft, 1, LIST_LEN_MAX)?;
    for (i, a) in f.other_aircraft.iter().enumerate() {
        aircraft(&format!("other_aircraft[{i}]"), a)?;
    }
    range("separation.horizontal_nm", f.separation.horizontal_nm, 0.0, DISTANCE_NM_MAX, "nautical miles")?;
    range("separation.vertical_ft", f.separation.vertical_ft, 0.0, ALTITUDE_FT_MAX - ALTITUDE_FT_MIN, "feet")?;
    let signs: Vec<&str> =
        std::iter::once(&f.reporting_aircraft).chain(&f.other_aircraft).map(|a| a.call_sign.as_str()).collect();
    list("communications", &f.communications, 0, LIST_LEN_MAX)?;
    for (i, c) in f.communications.iter().enumerate() {
        let path = format!("communications[{i}]");
        if !signs.contains(&c.by.as_str()) {
            return Err(err(
                join(&path, "by"),
                format!("'{}' is not one of the aircraft reported ({})", c.by, signs.join(", ")),
            ));
        }
        text(&join(&path, "means"), &c.means, SHORT_TEXT_CHARS_MAX)?;
        text(&join(&path, "text"), &c.text, NARRATIVE_CHARS_MAX)?;
    }
    text("narrative", &f.narrative, NARRATIVE_CHARS_MAX)
}

/// Checks an area; a polygon must have at least three corners and must not cross itself.
pub fn area(path: &str, a: &Area) -> Result<(), FormError> {
    match a {
        Area::Circle(c) => {
            position(&join(path, "circle.centre"), &c.centre)?;
            range(&join(path, "circle.radius_nm"), c.radius_nm, 0.0, DISTANCE_NM_MAX, "nautical miles")?;
            if c.radius_nm == 0.0 {
                return Err(err(join(path, "circle.radius_nm"), "is zero; a circle needs a radius"));
            }
            Ok(())
        }
        Area::Polygon(corners) => {
            let path = join(path, "polygon");
            list(&path, corners, 3, LIST_LEN_MAX)?;
            for (i, p) in corners.iter().enumerate() {
                position(&format!("{path}[{i}]"), p)?;
            }
            if let Some((i, j)) = geo::self_intersection(corners) {
                let n = corners.len();
                return Err(err(
                    path,
                    format!(
                        "crosses itself: the edge from corner {i} to {} crosses the edge from corner {j} to {}",
                        (i + 1) % n,
                        (j + 1) % n
                    ),
                ));
            }
            Ok(())
        }
    }
}

fn contact(path: &str, c: &Contact) -> Result<(), FormError> {
    text(&join(path, "name"), &c.name, SHORT_TEXT_CHARS_MAX)?;
    text(&join(path, "role"), &c.role, SHORT_TEXT_CHARS_MAX)?;
    opt_text(&join(path, "phone"), &c.phone, SHORT_TEXT_CHARS_MAX)?;
    opt_text(&join(path, "email"), &c.email, SHORT_TEXT_CHARS_MAX)?;
    if c.phone.is_none() && c.email.is_none() {
        return Err(err(path, "needs a phone or an email"));
    }
    Ok(())
}

fn items(path: &str, list_: &[Item]) -> Result<(), FormError> {
    list(path, list_, 0, LIST_LEN_MAX)?;
    for (i, it) in list_.iter().enumerate() {
        text(&format!("{path}[{i}].description"), &it.description, NARRATIVE_CHARS_MAX)?;
        opt_text(&format!("{path}[{i}].quantity"), &it.quantity, SHORT_TEXT_CHARS_MAX)?;
    }
    Ok(())
}

fn relief(f: &mut DisasterRelief) -> Result<(), FormError> {
    version("", f.v)?;
    utc("time_utc", &f.time_utc)?;
    text("disaster", &f.disaster, SHORT_TEXT_CHARS_MAX)?;
    text("location.name", &f.location.name, SHORT_TEXT_CHARS_MAX)?;
    position("location.position", &f.location.position)?;
    if let Some(a) = &f.affected_area {
        area("affected_area", a)?;
    }
    items("needs", &f.needs)?;
    items("capabilities", &f.capabilities)?;
    match f.stage {
        ReliefStage::Request if f.needs.is_empty() => {
            return Err(err("needs", "a request for assistance names at least one need"))
        }
        ReliefStage::Offer | ReliefStage::Mobilisation if f.capabilities.is_empty() => {
            return Err(err("capabilities", "an offer or a mobilisation names at least one capability"))
        }
        _ => {}
    }
    list("contacts", &f.contacts, 1, LIST_LEN_MAX)?;
    for (i, c) in f.contacts.iter().enumerate() {
        contact(&format!("contacts[{i}]"), c)?;
    }
    if !f.narrative.is_empty() {
        text("narrative", &f.narrative, NARRATIVE_CHARS_MAX)?;
    }
    Ok(())
}

fn activity(f: &mut ActivityNotice) -> Result<(), FormError> {
    version("", f.v)?;
    text("exercise", &f.exercise, SHORT_TEXT_CHARS_MAX)?;
    area("area", &f.area)?;
    let start = utc("start_utc", &f.start_utc)?;
    let end = utc("end_utc", &f.end_utc)?;
    if end <= start {
        return Err(err("end_utc", "is not after start_utc"));
    }
    text("forces", &f.forces, NARRATIVE_CHARS_MAX)?;
    contact("contact", &f.contact)?;
    if !f.narrative.is_empty() {
        text("narrative", &f.narrative, NARRATIVE_CHARS_MAX)?;
    }
    Ok(())
}

fn call_request(f: &mut CallRequest) -> Result<(), FormError> {
    version("", f.v)?;
    text("subject", &f.subject, SHORT_TEXT_CHARS_MAX)?;
    list("proposed_utc", &f.proposed_utc, 1, CALL_TIMES_MAX)?;
    for (i, t) in f.proposed_utc.iter().enumerate() {
        utc(&format!("proposed_utc[{i}]"), t)?;
    }
    if let Some(d) = f.duration_min {
        range("duration_min", d as f64, 1.0, 1440.0, "minutes")?;
    }
    Ok(())
}

fn call_answer(f: &mut CallAnswer) -> Result<(), FormError> {
    version("", f.v)?;
    if f.request.len() != 64 || !f.request.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(err("request", "is not a message id (64 hexadecimal digits)"));
    }
    if let Some(t) = &f.time_utc {
        utc("time_utc", t)?;
    }
    opt_text("reason", &f.reason, NARRATIVE_CHARS_MAX)?;
    match f.answer {
        CallResponse::Accept if f.time_utc.is_none() => {
            Err(err("time_utc", "is required to accept: the time accepted"))
        }
        CallResponse::Postpone if f.reason.is_none() => Err(err("reason", "is required to postpone")),
        _ => Ok(()),
    }
}

/// Checks a track for the approach helper: on the globe, a course of 0 to 360 degrees, a speed a
/// unit at sea can make.
pub fn track(path: &str, t: &crate::cpa::Track) -> Result<(), FormError> {
    position(&join(path, "position"), &t.position)?;
    course(&join(path, "course_deg"), t.course_deg)?;
    range(&join(path, "speed_kn"), t.speed_kn, 0.0, SEA_SPEED_KN_MAX, "knots")
}
