//! Structured messages on the API: the kinds' JSON Schemas, and the closest-point-of-approach
//! helper the reporting officer asks for a suggestion.

use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use adi_forms::cpa::{self, Approach, Track};

use super::auth::Auth;
use super::error::ApiJson;
use crate::error::ApiError;
use crate::state::NodeState;

/// The structured kinds' JSON Schemas
///
/// The JSON Schema (draft 2020-12) of every form kind, by kind, and the Experts' Working Group
/// tags (`docs/FORMS.md`). The answer is whole and does not page: one schema per kind the node
/// knows.
///
/// Roles: any operator.
#[utoipa::path(get, path = "/api/v1/schemas", tag = "forms", security(("bearer" = []), ("session" = [])),
    responses((status = 200, body = Object, description = "the JSON Schema of every form kind, by kind, and the working-group tags")))]
pub async fn schemas(_auth: Auth) -> Json<Value> {
    Json(adi_forms::schemas())
}

/// Two tracks: the reporting unit's and the other unit's.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproachRequest {
    pub own: Track,
    pub other: Track,
}

/// The computed approach, offered as a suggestion: nothing is filled in until the officer
/// confirms it.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ApproachView {
    pub approach: Approach,
    /// The COLREGs rule the situation falls under, if any.
    pub rule: Option<u8>,
    /// What the rule asks of the reporting unit, in a sentence.
    pub advice: String,
}

/// Computes an approach, refusing a track off the globe, a course outside 0 to 360 degrees or an
/// impossible speed with the field named.
pub fn approach_of(req: &ApproachRequest) -> Result<ApproachView, ApiError> {
    for (name, track) in [("own", &req.own), ("other", &req.other)] {
        adi_forms::check::track(name, track)
            .map_err(|e| ApiError::bad_field("bad_track", e.field.clone(), e.to_string()))?;
    }
    let approach = cpa::approach(&req.own, &req.other);
    Ok(ApproachView { approach, rule: approach.situation.rule(), advice: approach.situation.advice().to_string() })
}

/// Computes a closest point of approach
///
/// From two tracks, the reporting unit's and the other unit's: the approach and the COLREGs
/// situation, offered as a suggestion. Nothing is recorded.
///
/// Roles: any operator.
#[utoipa::path(post, path = "/api/v1/cpa", tag = "forms", request_body = ApproachRequest,
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses((status = 200, body = ApproachView, description = "closest point of approach and the COLREGs situation, as a suggestion"),
              (status = 400, body = crate::error::ErrorBody, description = "`bad_track`: a track off the globe, a course outside 0 to 360 degrees or an impossible speed, with `field` naming it")))]
pub async fn closest_approach(
    _auth: Auth,
    ApiJson(req): ApiJson<ApproachRequest>,
) -> Result<Json<ApproachView>, ApiError> {
    approach_of(&req).map(Json)
}

/// An answer to a call request must answer one on the same line, and accept one of the times it
/// proposed. Checked when the answer is sent; a peer's answer is read as it came, since the
/// request may not have reached this node yet.
pub fn check_call_answer(node: &NodeState, line: &adi_wire::LineId, form: &Value) -> Result<(), ApiError> {
    let Ok(adi_forms::Form::CallAnswer(answer)) = adi_forms::check(form) else { return Ok(()) };
    let refuse = |field: &str, message: String| {
        ApiError::bad_field("bad_form", format!("form.{field}"), format!("form.{field}: {message}"))
    };
    let request = adi_wire::EnvelopeHash::from_hex(&answer.request)
        .and_then(|h| node.store.message(&h).transpose())
        .transpose()?
        .filter(|m| m.line == *line)
        .ok_or_else(|| refuse("request", format!("no message {} on this line", answer.request)))?;
    // The request's form passed its checks before it was stored; here it is only read.
    let proposed = match request.form.as_deref().and_then(|f| serde_json::from_str(f).ok()) {
        Some(adi_forms::Form::CallRequest(r)) => r.proposed_utc,
        _ => return Err(refuse("request", format!("message {} is not a call request", answer.request))),
    };
    if let (adi_forms::kinds::CallResponse::Accept, Some(time)) = (answer.answer, &answer.time_utc) {
        let at = adi_forms::check::utc("time_utc", time).ok();
        if !proposed.iter().any(|p| adi_forms::check::utc("", p).ok() == at) {
            return Err(refuse(
                "time_utc",
                format!("{time} is not one of the times proposed ({})", proposed.join(", ")),
            ));
        }
    }
    Ok(())
}
