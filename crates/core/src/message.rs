//! Messages: precedence, class, caveat, subject and body, and the checks a draft must pass.

use adi_wire::envelope::{PRIORITY_FLASH, PRIORITY_IMMEDIATE, PRIORITY_PRIORITY, PRIORITY_ROUTINE};

use crate::error::CoreError;
use crate::limits::Limits;
use crate::text::{check_text, count_words, TextKind};

/// ACP 121 precedence, most urgent first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Precedence {
    Flash,
    Immediate,
    Priority,
    Routine,
}

impl Precedence {
    pub const ALL: [Precedence; 4] =
        [Precedence::Flash, Precedence::Immediate, Precedence::Priority, Precedence::Routine];

    pub fn parse(s: &str) -> Option<Precedence> {
        match s {
            "FLASH" | "Z" => Some(Precedence::Flash),
            "IMMEDIATE" | "O" => Some(Precedence::Immediate),
            "PRIORITY" | "P" => Some(Precedence::Priority),
            "ROUTINE" | "R" => Some(Precedence::Routine),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Precedence::Flash => "FLASH",
            Precedence::Immediate => "IMMEDIATE",
            Precedence::Priority => "PRIORITY",
            Precedence::Routine => "ROUTINE",
        }
    }

    /// The queue priority carried on the envelope.
    pub fn priority(&self) -> u8 {
        match self {
            Precedence::Flash => PRIORITY_FLASH,
            Precedence::Immediate => PRIORITY_IMMEDIATE,
            Precedence::Priority => PRIORITY_PRIORITY,
            Precedence::Routine => PRIORITY_ROUTINE,
        }
    }

    /// Whether the body is limited to a number of words.
    pub fn is_urgent(&self) -> bool {
        matches!(self, Precedence::Flash | Precedence::Immediate)
    }
}

/// What kind of traffic a message is; test and service traffic never looks like crisis traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    Operational,
    Service,
    Test,
}

impl Class {
    pub fn parse(s: &str) -> Option<Class> {
        match s {
            "OPERATIONAL" => Some(Class::Operational),
            "SERVICE" => Some(Class::Service),
            "TEST" => Some(Class::Test),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Class::Operational => "OPERATIONAL",
            Class::Service => "SERVICE",
            Class::Test => "TEST",
        }
    }
}

/// A message as drafted by an operator, before checks.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Draft {
    pub precedence: String,
    pub class: Option<String>,
    pub caveat: Option<String>,
    pub subject: String,
    pub body: String,
    pub ack_required: Option<bool>,
    /// Declared a crisis use (released by a principal where the establishment requires it).
    pub crisis: Option<bool>,
    /// A structured report, as JSON with its `kind` (`adi_forms`); checked field by field.
    pub form: Option<serde_json::Value>,
    /// An Experts' Working Group tag, such as `maritime-security`.
    pub ewg: Option<String>,
}

/// A checked message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub precedence: Precedence,
    pub class: Class,
    pub caveat: String,
    pub subject: String,
    pub body: String,
    pub ack_required: bool,
    pub crisis: bool,
    /// Seconds after creation by which each recipient must acknowledge, when acknowledgement is
    /// required of an OPERATIONAL message.
    pub deadline_s: Option<u64>,
    /// The principal who released the message.
    pub released_by: Option<String>,
    /// The structured report it carries, checked and as signed (signal meanings filled in).
    pub form: Option<serde_json::Value>,
    /// Its Experts' Working Group tag.
    pub ewg: Option<String>,
    /// The files attached, each carried by chunks after it.
    pub attachments: Vec<Attachment>,
}

/// A file attached to a message, as the message's signed content names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub sha256: [u8; 32],
    pub name: String,
    pub media_type: String,
    pub size: u64,
    /// How many chunks carry it.
    pub chunks: u64,
}

impl Attachment {
    /// Describes `bytes` as a file attached under `name` and `media_type`, cut into chunks of at
    /// most `attachment_chunk_bytes_max`.
    pub fn of(name: &str, media_type: &str, bytes: &[u8], limits: &Limits) -> Attachment {
        use sha2::Digest;
        Attachment {
            sha256: sha2::Sha256::digest(bytes).into(),
            name: name.to_string(),
            media_type: media_type.to_string(),
            size: bytes.len() as u64,
            chunks: bytes.len().div_ceil(limits.attachment_chunk_bytes_max.max(1)) as u64,
        }
    }

    /// Checks an attached file's description, from an operator or a peer alike.
    pub fn check(&self, limits: &Limits) -> Result<(), CoreError> {
        let bad = |code: &'static str, why: String| CoreError::invalid_field(code, "attachments".into(), why);
        let name = self.name.as_str();
        let unsafe_name = name.trim().is_empty()
            || name == "."
            || name == ".."
            || name.chars().any(|c| c == '/' || c == '\\' || c.is_control());
        if unsafe_name || name.chars().count() > limits.attachment_name_chars_max {
            return Err(bad(
                "bad_attachment_name",
                format!(
                    "a file's name is 1 to {} characters, without '/', '\\' or control characters",
                    limits.attachment_name_chars_max
                ),
            ));
        }
        let token =
            |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b));
        let typed = self.media_type.len() <= 127
            && self.media_type.split_once('/').is_some_and(|(t, sub)| token(t) && token(sub));
        if !typed {
            return Err(bad(
                "bad_media_type",
                format!("'{}' is not a media type such as application/pdf", self.media_type),
            ));
        }
        if self.size == 0 || self.size > limits.attachment_bytes_max {
            return Err(bad(
                "bad_attachment_size",
                format!("an attached file is 1 to {} bytes", limits.attachment_bytes_max),
            ));
        }
        let fewest = self.size.div_ceil(limits.attachment_chunk_bytes_max.max(1) as u64);
        if self.chunks < fewest || self.chunks > self.size {
            return Err(bad(
                "bad_attachment_chunks",
                format!(
                    "a file of {} bytes comes in {fewest} to {} chunks of at most {} bytes",
                    self.size, self.size, limits.attachment_chunk_bytes_max
                ),
            ));
        }
        Ok(())
    }
}

/// A piece of a file attached to a message, as a `chunk` envelope carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// The message the file is attached to.
    pub message: adi_wire::EnvelopeHash,
    /// The file's SHA-256.
    pub file: [u8; 32],
    pub index: u64,
    pub data: Vec<u8>,
}

impl Message {
    /// Checks a draft; `default_caveat` applies when the draft names none.
    pub fn from_draft(draft: Draft, default_caveat: &str, limits: &Limits) -> Result<Message, CoreError> {
        let precedence = Precedence::parse(&draft.precedence).ok_or_else(|| {
            CoreError::invalid(
                "bad_precedence",
                format!("unknown precedence '{}', expected FLASH, IMMEDIATE, PRIORITY or ROUTINE", draft.precedence),
            )
        })?;
        let class = match draft.class.as_deref() {
            None => Class::Operational,
            Some(c) => Class::parse(c).ok_or_else(|| {
                CoreError::invalid("bad_class", format!("unknown class '{c}', expected OPERATIONAL, SERVICE or TEST"))
            })?,
        };
        let caveat = draft.caveat.unwrap_or_else(|| default_caveat.to_string());
        let ack_required = draft.ack_required.unwrap_or(class == Class::Operational);
        // A form is checked here and sent as checked: signal meanings come from the code.
        let form = match &draft.form {
            None => None,
            Some(value) => Some(adi_forms::check(value).map_err(CoreError::bad_form)?),
        };
        // A report's subject defaults to its one-line summary.
        let subject = match (&form, draft.subject.trim().is_empty()) {
            (Some(form), true) => adi_forms::summary(form).chars().take(limits.subject_chars_max).collect(),
            _ => draft.subject,
        };
        let message = Message {
            precedence,
            class,
            caveat,
            subject,
            body: draft.body,
            ack_required,
            crisis: draft.crisis.unwrap_or(false),
            deadline_s: None,
            released_by: None,
            form: form.map(|f| f.to_value()),
            ewg: draft.ewg,
            attachments: Vec::new(),
        };
        message.check(limits)?;
        Ok(message)
    }

    /// Whether this message runs against an acknowledgement deadline: only OPERATIONAL messages
    /// do, so that test and service traffic never raises operational alarms.
    pub fn has_deadline(&self) -> bool {
        self.class == Class::Operational && self.ack_required && self.deadline_s.is_some()
    }

    /// When its acknowledgement is due, for a node that sent or received it at `at_ms` on its
    /// own clock: each end times the deadline from its own moment, never from the time the
    /// sender claims, which may be hours off by fault or by design. `None` without a deadline.
    pub fn due_ms(&self, at_ms: u64) -> Option<u64> {
        let deadline_s = self.deadline_s.filter(|_| self.has_deadline())?;
        Some(at_ms.saturating_add(deadline_s.saturating_mul(1000)))
    }

    /// Checks the limits; applied to drafts and to messages arriving from peers alike.
    pub fn check(&self, limits: &Limits) -> Result<(), CoreError> {
        if self.caveat.trim().is_empty() || self.caveat.chars().count() > limits.caveat_chars_max {
            return Err(CoreError::invalid(
                "bad_caveat",
                format!("a caveat is 1 to {} characters", limits.caveat_chars_max),
            ));
        }
        if self.subject.trim().is_empty() {
            return Err(CoreError::invalid("empty_subject", "a message needs a subject"));
        }
        if self.subject.chars().count() > limits.subject_chars_max {
            return Err(CoreError::invalid(
                "subject_too_long",
                format!("a subject is at most {} characters", limits.subject_chars_max),
            ));
        }
        if self.body.len() > limits.body_bytes_max {
            return Err(CoreError::invalid(
                "body_too_long",
                format!("a body is at most {} bytes", limits.body_bytes_max),
            ));
        }
        // What the officer reads, by the rule of `crate::text`: one line each for the subject,
        // caveat and releasing principal, prose of several lines for the body.
        check_text("subject", &self.subject, TextKind::Line)?;
        check_text("caveat", &self.caveat, TextKind::Line)?;
        if let Some(name) = &self.released_by {
            check_text("released_by", name, TextKind::Line)?;
        }
        check_text("body", &self.body, TextKind::Lines)?;
        if self.attachments.len() > limits.attachments_per_message_max {
            return Err(CoreError::invalid_field(
                "too_many_attachments",
                "attachments".into(),
                format!("a message carries at most {} files", limits.attachments_per_message_max),
            ));
        }
        for (i, a) in self.attachments.iter().enumerate() {
            a.check(limits)?;
            if self.attachments[..i].iter().any(|b| b.sha256 == a.sha256) {
                return Err(CoreError::invalid_field(
                    "duplicate_attachment",
                    "attachments".into(),
                    format!("the file {} is attached twice", a.name),
                ));
            }
        }
        if let Some(tag) = &self.ewg {
            if adi_forms::WorkingGroup::parse(tag).is_none() {
                let known: Vec<&str> = adi_forms::WorkingGroup::ALL.iter().map(|g| g.as_str()).collect();
                return Err(CoreError::invalid_field(
                    "bad_ewg",
                    "ewg".into(),
                    format!("unknown Experts' Working Group '{tag}'; one of {}", known.join(", ")),
                ));
            }
        }
        if let Some(value) = &self.form {
            // Checked as a peer would: the form must pass, and be exactly what the checks make of
            // it, so that every reader renders the same report from the same signed bytes.
            let form = adi_forms::check(value).map_err(CoreError::bad_form)?;
            if &form.to_value() != value {
                return Err(CoreError::invalid(
                    "bad_form",
                    "the form differs from what its checks make of it: each signal carries its meaning from the code",
                ));
            }
            check_form_text("form", value)?;
        }
        let words = count_words(&self.body);
        if self.precedence.is_urgent() && words > limits.urgent_body_words_max {
            return Err(CoreError::invalid(
                "too_many_words",
                format!(
                    "a {} body is at most {} words; this one has {words}",
                    self.precedence.as_str(),
                    limits.urgent_body_words_max
                ),
            ));
        }
        Ok(())
    }
}

/// The fields of a report that hold prose of several lines; every other text of a report is one
/// line (a name, a call sign, a type, a time).
const FORM_PROSE_FIELDS: [&str; 5] = ["narrative", "text", "description", "forces", "reason"];

/// Checks every text of a report, as JSON, against the rule for human text (`crate::text`): the
/// report's own checks refuse control characters but line feeds and tabs; this adds the rest of
/// the rule, each field named by its path under `form`.
fn check_form_text(path: &str, value: &serde_json::Value) -> Result<(), CoreError> {
    match value {
        serde_json::Value::String(s) => {
            let name = path.rsplit(['.', '[']).next().unwrap_or_default();
            let kind = if FORM_PROSE_FIELDS.contains(&name) { TextKind::Lines } else { TextKind::Line };
            check_text(path, s, kind)
        }
        serde_json::Value::Array(items) => {
            items.iter().enumerate().try_for_each(|(i, item)| check_form_text(&format!("{path}[{i}]"), item))
        }
        serde_json::Value::Object(map) => {
            map.iter().try_for_each(|(key, item)| check_form_text(&format!("{path}.{key}"), item))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(precedence: &str, body: &str) -> Draft {
        Draft { precedence: precedence.into(), subject: "s".into(), body: body.into(), ..Draft::default() }
    }

    #[test]
    fn urgent_bodies_are_limited_to_200_words() {
        let limits = Limits::default();
        let words = |n: usize| vec!["word"; n].join(" ");
        for p in ["FLASH", "IMMEDIATE"] {
            assert!(Message::from_draft(draft(p, &words(200)), "C", &limits).is_ok());
            let e = Message::from_draft(draft(p, &words(201)), "C", &limits).unwrap_err();
            assert_eq!(e.code, "too_many_words");
        }
        for p in ["PRIORITY", "ROUTINE"] {
            assert!(Message::from_draft(draft(p, &words(201)), "C", &limits).is_ok());
        }
    }

    #[test]
    fn words_joined_by_invisible_characters_count_one_by_one() {
        let limits = Limits::default();
        let joined = vec!["word"; 5000].join("\u{200b}");
        let e = Message::from_draft(draft("FLASH", &joined), "C", &limits).unwrap_err();
        assert_eq!(e.code, "too_many_words");
        assert!(e.message.ends_with("this one has 5000"), "{}", e.message);
        let joined = vec!["word"; 201].join("\u{2060}");
        assert_eq!(Message::from_draft(draft("IMMEDIATE", &joined), "C", &limits).unwrap_err().code, "too_many_words");
        let joined = vec!["word"; 200].join("\u{200b}");
        assert!(Message::from_draft(draft("FLASH", &joined), "C", &limits).is_ok());
    }

    #[test]
    fn text_that_would_steer_the_officers_screen_is_refused_naming_its_field() {
        let limits = Limits::default();
        let refused = |d: Draft| Message::from_draft(d, "C", &limits).unwrap_err();
        let cases: Vec<(Draft, &str)> = vec![
            (Draft { subject: "\u{1b}[2J".into(), ..draft("ROUTINE", "b") }, "subject"),
            (Draft { subject: "ok\nPH acknowledged".into(), ..draft("ROUTINE", "b") }, "subject"),
            (Draft { subject: "a\u{200b}b".into(), ..draft("ROUTINE", "b") }, "subject"),
            (Draft { caveat: Some("RESTRICTED\u{202e}".into()), ..draft("ROUTINE", "b") }, "caveat"),
            (draft("FLASH", "troops \u{202e}wolla ton\u{202c} withdraw"), "body"),
            (draft("ROUTINE", "line one\r\nline two"), "body"),
            (draft("ROUTINE", "hidden \u{e0041}\u{e0042}"), "body"),
        ];
        for (d, field) in cases {
            let e = refused(d);
            assert_eq!((e.code, e.field.as_deref()), ("bad_character", Some(field)), "{e:?}");
        }
        // A body keeps its lines, tabs, direction marks and the zero-width spaces of Thai.
        let m = Message::from_draft(draft("ROUTINE", "one\n\ttwo \u{200f}\nสวัสดี\u{200b}ครับ"), "C", &limits);
        assert!(m.is_ok(), "{m:?}");
        // The releasing principal's name travels on the message too.
        let mut m = Message::from_draft(draft("ROUTINE", "b"), "C", &limits).unwrap();
        m.released_by = Some("minister\u{1b}]0;x\u{7}".into());
        assert_eq!(m.check(&limits).unwrap_err().field.as_deref(), Some("released_by"));
    }

    #[test]
    fn a_reports_texts_follow_the_rule_one_line_or_prose() {
        let limits = Limits::default();
        let example = adi_forms::schema::example("encounter-at-sea").unwrap();
        let with = |pointer: &str, text: &str| {
            let mut form = example.clone();
            *form.pointer_mut(pointer).unwrap() = serde_json::json!(text);
            Draft { form: Some(form), ..draft("ROUTINE", "b") }
        };
        assert!(Message::from_draft(with("/narrative", "first\nsecond"), "C", &limits).is_ok());
        let cases = [
            ("/narrative", "turned \u{202e}trats\u{202c}", "form.narrative"),
            ("/reporting_unit/call_sign", "DZ\nJR", "form.reporting_unit.call_sign"),
            ("/other_units/0/hull_number", "21\u{200f}", "form.other_units[0].hull_number"),
        ];
        for (pointer, text, field) in cases {
            let e = Message::from_draft(with(pointer, text), "C", &limits).unwrap_err();
            assert_eq!((e.code, e.field.as_deref()), ("bad_character", Some(field)), "{e:?}");
        }
    }

    #[test]
    fn defaults_follow_the_class() {
        let limits = Limits::default();
        let m = Message::from_draft(draft("Z", "x"), "UNCLASSIFIED", &limits).unwrap();
        assert_eq!(
            (m.precedence, m.class, m.ack_required, m.caveat.as_str()),
            (Precedence::Flash, Class::Operational, true, "UNCLASSIFIED")
        );
        let mut d = draft("ROUTINE", "x");
        d.class = Some("TEST".into());
        let m = Message::from_draft(d, "C", &limits).unwrap();
        assert!(!m.ack_required);
        let mut d = draft("ROUTINE", "x");
        d.class = Some("CRISIS".into());
        assert_eq!(Message::from_draft(d, "C", &limits).unwrap_err().code, "bad_class");
    }

    #[test]
    fn a_deadline_runs_from_each_ends_own_moment_and_only_for_operational_traffic() {
        let limits = Limits::default();
        let mut m = Message::from_draft(draft("FLASH", "x"), "C", &limits).unwrap();
        m.deadline_s = Some(600);
        assert_eq!(m.due_ms(1_000), Some(601_000));
        assert_eq!(m.due_ms(u64::MAX - 5), Some(u64::MAX), "saturates, never wraps");
        let test = Message { class: Class::Test, ..m.clone() };
        assert_eq!(test.due_ms(1_000), None);
        let unasked = Message { ack_required: false, ..m };
        assert_eq!(unasked.due_ms(1_000), None);
    }
}
