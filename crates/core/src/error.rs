//! Errors the core reports to the runtime, each with a kind that the API maps to a status.

use thiserror::Error;

/// How an error should be reported to whoever caused it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Malformed input or input over a limit.
    Invalid,
    /// Refused by policy or by line membership.
    Forbidden,
    /// Refers to something that does not exist here.
    NotFound,
    /// Conflicts with the current state.
    Conflict,
    /// The node failed at something that should not fail (its MLS state, for instance).
    Internal,
}

/// A refused command, with a stable machine-readable code and a human message.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct CoreError {
    pub kind: ErrorKind,
    pub code: &'static str,
    pub message: String,
    /// The field of the input at fault, as a path (`form.other_units[0].position.lat`), when
    /// one field is.
    pub field: Option<String>,
}

impl CoreError {
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        CoreError { kind, code, message: message.into(), field: None }
    }

    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        CoreError::new(ErrorKind::Invalid, code, message)
    }

    /// Invalid input whose fault lies in one field, given as a path into the request; the
    /// message starts with it.
    pub fn invalid_field(code: &'static str, field: String, message: impl Into<String>) -> Self {
        let message = format!("{field}: {}", message.into());
        CoreError { kind: ErrorKind::Invalid, code, message, field: Some(field) }
    }

    /// A form refused by its checks: the field is named under `form`.
    pub fn bad_form(e: adi_forms::FormError) -> Self {
        let field = if e.field.is_empty() { "form".to_string() } else { format!("form.{}", e.field) };
        CoreError::invalid_field("bad_form", field, e.message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        CoreError::new(ErrorKind::Forbidden, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        CoreError::new(ErrorKind::NotFound, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        CoreError::new(ErrorKind::Conflict, code, message)
    }
}
