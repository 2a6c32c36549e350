//! The form kinds, as data. Field names are those of the JSON; every struct refuses fields it
//! does not know, so that a misspelt field is an error, not a silently dropped fact.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::cpa::Situation;
use crate::geo::Position;

/// The schema version every kind is at.
pub const FORM_VERSION: u8 = 1;

/// A form: one of the kinds, tagged by `kind`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Form {
    EncounterAtSea(SeaEncounter),
    AirEncounter(AirEncounter),
    DisasterRelief(DisasterRelief),
    MilitaryActivity(ActivityNotice),
    CallRequest(CallRequest),
    CallAnswer(CallAnswer),
}

/// The kinds' names, as `kind` carries them.
pub const KINDS: [&str; 6] =
    ["encounter-at-sea", "air-encounter", "disaster-relief", "military-activity", "call-request", "call-answer"];

impl Form {
    pub fn kind(&self) -> &'static str {
        match self {
            Form::EncounterAtSea(_) => KINDS[0],
            Form::AirEncounter(_) => KINDS[1],
            Form::DisasterRelief(_) => KINDS[2],
            Form::MilitaryActivity(_) => KINDS[3],
            Form::CallRequest(_) => KINDS[4],
            Form::CallAnswer(_) => KINDS[5],
        }
    }

    /// The form as JSON, `kind` included.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// A unit at sea.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Vessel {
    /// The unit's name, such as `BRP Jose Rizal`.
    pub name: String,
    /// Hull or pennant number, such as `FF-150`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hull_number: Option<String>,
    /// International call sign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_sign: Option<String>,
    /// Type of unit, such as `frigate` or `coast guard cutter`.
    #[serde(rename = "type")]
    pub unit_type: String,
    /// Flag state or service, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nationality: Option<String>,
    pub position: Position,
    /// Course over ground, degrees true, 0 to 360.
    #[schema(minimum = 0, maximum = 360)]
    pub course_deg: f64,
    /// Speed over ground, knots.
    #[schema(minimum = 0, maximum = 100)]
    pub speed_kn: f64,
}

/// A manoeuvring intention declared by one unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Intention {
    /// The name of the unit that declared it.
    pub unit: String,
    pub text: String,
}

/// A signal exchanged: an International Code of Signals group, stored with its plain meaning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Signal {
    /// The name of the unit that made it.
    pub by: String,
    /// When, UTC (`2026-11-30T03:12:00Z`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_utc: Option<String>,
    /// The signal group, such as `D` or `NC`.
    pub group: String,
    /// Its plain meaning; filled in from the code when absent, and must match it when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meaning: Option<String>,
    /// The code the group is from: `ICS` (the International Code of Signals).
    pub source: String,
}

/// The closest approach the reporting unit observed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClosestApproach {
    #[schema(minimum = 0)]
    pub distance_nm: f64,
    /// When, UTC.
    pub time_utc: String,
}

/// A voluntary report of an unplanned encounter at sea, in the manner of the Code for Unplanned
/// Encounters at Sea. The originator and the addressees are the message's sender and its line's
/// other members, which the envelope already signs; they are not stated twice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeaEncounter {
    /// Schema version: 1.
    pub v: u8,
    /// Always true: the report is made voluntarily.
    pub voluntary: bool,
    /// Always true: the report is of an unplanned encounter.
    pub unplanned: bool,
    /// Time of the encounter, UTC.
    pub time_utc: String,
    pub reporting_unit: Vessel,
    /// At least one.
    pub other_units: Vec<Vessel>,
    #[serde(default)]
    pub intentions: Vec<Intention>,
    #[serde(default)]
    pub signals: Vec<Signal>,
    pub closest_approach: ClosestApproach,
    /// The COLREGs situation, as the reporting officer confirmed it; `adi cpa` and the console
    /// suggest one, and nothing fills it in unasked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub situation: Option<Situation>,
    pub narrative: String,
}

/// An aircraft.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Aircraft {
    pub call_sign: String,
    /// Type, such as `P-8A` or `Su-30`.
    #[serde(rename = "type")]
    pub aircraft_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nationality: Option<String>,
    /// Tail number or registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<String>,
    pub position: Position,
    /// Feet above mean sea level.
    #[schema(minimum = -1500, maximum = 100000)]
    pub altitude_ft: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 360)]
    pub heading_deg: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 2000)]
    pub speed_kn: Option<f64>,
}

/// The separation observed between the aircraft.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Separation {
    #[schema(minimum = 0)]
    pub horizontal_nm: f64,
    #[schema(minimum = 0)]
    pub vertical_ft: f64,
}

/// A communication attempted during an air encounter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Communication {
    /// The call sign of the aircraft that made it.
    pub by: String,
    /// Means, such as `VHF 121.5 MHz` or `UHF 243.0 MHz`.
    pub means: String,
    pub text: String,
    pub answered: bool,
}

/// A report of an encounter between military aircraft, in the manner of the ADMM Guidelines for
/// Air Military Encounters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AirEncounter {
    pub v: u8,
    pub time_utc: String,
    pub reporting_aircraft: Aircraft,
    /// At least one.
    pub other_aircraft: Vec<Aircraft>,
    pub separation: Separation,
    #[serde(default)]
    pub communications: Vec<Communication>,
    pub narrative: String,
}

/// The stages of the ASEAN standard operating procedure's disaster-relief forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ReliefStage {
    Notification,
    SituationUpdate,
    Request,
    Offer,
    Mobilisation,
    Demobilisation,
}

/// A category of need or capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    SearchAndRescue,
    Medical,
    Shelter,
    Food,
    WaterAndSanitation,
    Logistics,
    Airlift,
    Sealift,
    Engineering,
    Communications,
    Other,
}

/// A need or a capability.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub category: Category,
    pub description: String,
    /// How much or how many, in words: `2 C-130 sorties a day`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<String>,
}

/// A point of contact.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub name: String,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// A named place.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Place {
    pub name: String,
    pub position: Position,
}

/// An area: a polygon of at least three corners that does not cross itself, or a circle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Area {
    Polygon(Vec<Position>),
    Circle(Circle),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Circle {
    pub centre: Position,
    #[schema(minimum = 0)]
    pub radius_nm: f64,
}

/// One of the disaster-relief forms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisasterRelief {
    pub v: u8,
    pub stage: ReliefStage,
    pub time_utc: String,
    /// What happened: `typhoon`, `earthquake`, `flood`…
    pub disaster: String,
    pub location: Place,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affected_area: Option<Area>,
    /// Needs, by category; at least one in a request.
    #[serde(default)]
    pub needs: Vec<Item>,
    /// Capabilities, by category; at least one in an offer or a mobilisation.
    #[serde(default)]
    pub capabilities: Vec<Item>,
    /// At least one.
    pub contacts: Vec<Contact>,
    #[serde(default)]
    pub narrative: String,
}

/// A notice of major military activity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityNotice {
    pub v: u8,
    /// The exercise's or activity's name.
    pub exercise: String,
    pub area: Area,
    /// Start of the period, UTC.
    pub start_utc: String,
    /// End of the period, UTC; after the start.
    pub end_utc: String,
    /// Forces taking part, in words.
    pub forces: String,
    pub contact: Contact,
    #[serde(default)]
    pub narrative: String,
}

/// A request for a call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallRequest {
    pub v: u8,
    pub subject: String,
    /// Proposed start times, UTC; one to five.
    pub proposed_utc: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1440)]
    pub duration_min: Option<u32>,
}

/// How a call request is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CallResponse {
    Accept,
    Postpone,
    Decline,
}

/// The answer to a call request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallAnswer {
    pub v: u8,
    /// The call request answered (its message id).
    pub request: String,
    pub answer: CallResponse,
    /// The time accepted, UTC; required to accept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_utc: Option<String>,
    /// Why; required to postpone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The Experts' Working Groups of the ADMM-Plus; any message may carry one as a tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum WorkingGroup {
    Hadr,
    MaritimeSecurity,
    MilitaryMedicine,
    CounterTerrorism,
    PeacekeepingOperations,
    HumanitarianMineAction,
    CyberSecurity,
}

impl WorkingGroup {
    pub const ALL: [WorkingGroup; 7] = [
        WorkingGroup::Hadr,
        WorkingGroup::MaritimeSecurity,
        WorkingGroup::MilitaryMedicine,
        WorkingGroup::CounterTerrorism,
        WorkingGroup::PeacekeepingOperations,
        WorkingGroup::HumanitarianMineAction,
        WorkingGroup::CyberSecurity,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            WorkingGroup::Hadr => "hadr",
            WorkingGroup::MaritimeSecurity => "maritime-security",
            WorkingGroup::MilitaryMedicine => "military-medicine",
            WorkingGroup::CounterTerrorism => "counter-terrorism",
            WorkingGroup::PeacekeepingOperations => "peacekeeping-operations",
            WorkingGroup::HumanitarianMineAction => "humanitarian-mine-action",
            WorkingGroup::CyberSecurity => "cyber-security",
        }
    }

    pub fn title(&self) -> &'static str {
        match self {
            WorkingGroup::Hadr => "Humanitarian Assistance and Disaster Relief",
            WorkingGroup::MaritimeSecurity => "Maritime Security",
            WorkingGroup::MilitaryMedicine => "Military Medicine",
            WorkingGroup::CounterTerrorism => "Counter-Terrorism",
            WorkingGroup::PeacekeepingOperations => "Peacekeeping Operations",
            WorkingGroup::HumanitarianMineAction => "Humanitarian Mine Action",
            WorkingGroup::CyberSecurity => "Cyber Security",
        }
    }

    pub fn parse(s: &str) -> Option<WorkingGroup> {
        WorkingGroup::ALL.into_iter().find(|g| g.as_str() == s)
    }
}
