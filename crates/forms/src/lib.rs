//! Structured messages.
//!
//! Beside free text, a message may carry a *form*: a typed report with a versioned schema. The
//! kinds are the situations the ADMM-Plus names: an unplanned encounter at sea (CUES), an air
//! encounter (the ADMM Guidelines for Air Military Encounters), the six disaster-relief forms of
//! the ASEAN standard operating procedure, a notice of major military activity, and a request for
//! a call with its answer. Every form is checked field by field ([`check()`]), rendered as plain
//! text for people ([`render()`]) and described by a JSON Schema ([`schemas()`]).
//!
//! [`cpa`] computes the closest point of approach of two tracks and names the COLREGs situation,
//! as a suggestion the reporting officer confirms.

pub mod check;
pub mod cpa;
pub mod geo;
pub mod kinds;
pub mod render;
pub mod schema;
pub mod signals;

pub use check::{check, FormError};
pub use geo::Position;
pub use kinds::{Form, WorkingGroup, KINDS};
pub use render::{render, summary};
pub use schema::schemas;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The approach of one other unit to the reporting unit, computed from what a sea encounter
/// report states.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UnitApproach {
    pub own: String,
    pub other: String,
    pub approach: cpa::Approach,
}

/// For a sea encounter report, the computed approach of each other unit to the reporting unit;
/// nothing for other kinds.
pub fn approaches(form: &Form) -> Vec<UnitApproach> {
    let Form::EncounterAtSea(f) = form else { return Vec::new() };
    let track = |v: &kinds::Vessel| cpa::Track { position: v.position, course_deg: v.course_deg, speed_kn: v.speed_kn };
    let own = track(&f.reporting_unit);
    f.other_units
        .iter()
        .map(|o| UnitApproach {
            own: f.reporting_unit.name.clone(),
            other: o.name.clone(),
            approach: cpa::approach(&own, &track(o)),
        })
        .collect()
}
