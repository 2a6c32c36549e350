//! Closest point of approach of two units and the COLREGs situation between them.
//!
//! From two units' positions, courses and speeds, [`approach`] works out the range and bearing now,
//! the closest point of approach (CPA) and the time to it (TCPA), and names the situation under
//! Rules 13 to 15 of the International Regulations for Preventing Collisions at Sea, from own
//! unit's side. It is a *suggestion* for the reporting officer, who confirms or corrects it: it
//! reads the rules from the two tracks alone and knows nothing of the kind of vessel, restricted
//! visibility, narrow channels or traffic separation schemes.
//!
//! Geometry is on the local flat projection of [`crate::geo`]: distances in nautical miles,
//! speeds in knots, courses and bearings in degrees true, times in minutes. Both units are taken
//! to hold course and speed.
//!
//! How the situation is chosen, in order:
//!
//! 1. any input not a finite number: [`Situation::Stationary`], with no TCPA (nothing to judge);
//! 2. both units below [`STOPPED_KN`]: [`Situation::Stationary`], no TCPA;
//! 3. relative speed below [`NO_RELATIVE_MOTION_KN`] (same course and speed): the range never
//!    changes, [`Situation::PassingClear`], no TCPA;
//! 4. CPA now or past (the range is not closing): [`Situation::Diverging`], TCPA 0;
//! 5. CPA beyond [`RISK_CPA_NM`]: [`Situation::PassingClear`];
//! 6. otherwise there is risk of collision, and by geometry: overtaking (Rule 13), then head-on
//!    (Rule 14), then crossing (Rule 15). See [`approach`] for the tests used.
//!
//! A unit that is not making way is classified by the same geometry, its `course_deg` taken as
//! its heading: the aspect the rules read (which side, how far abaft the beam, masthead lights in
//! line) comes from where a vessel's bow points, and that is what a stopped unit's reported course
//! stands for.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::geo::{advance, bearing_deg, offset_nm, Position};

/// Nautical miles: a CPA closer than this, ahead in time, is treated as risk of collision.
pub const RISK_CPA_NM: f64 = 2.0;

/// Degrees: courses within this of reciprocal are "nearly reciprocal" (Rule 14(a)); each unit
/// within this of the other's bow is "ahead or nearly ahead" with "masthead lights in line or
/// nearly in line" (Rule 14(b)).
pub const HEAD_ON_TOLERANCE_DEG: f64 = 6.0;

/// Degrees: Rule 13's "more than 22.5 degrees abaft her beam", that is a relative bearing strictly
/// between 112.5° and 247.5°.
pub const ABAFT_BEAM_DEG: f64 = 22.5;

/// Knots: a unit slower than this is not making way.
pub const STOPPED_KN: f64 = 0.1;

/// Knots: a relative speed below this is no relative motion (the same course and speed, up to
/// rounding); the range then never changes and there is no time of closest approach.
pub const NO_RELATIVE_MOTION_KN: f64 = 0.001;

/// One unit's motion: where it is, its course over ground and its speed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Track {
    /// Where the unit is now.
    pub position: Position,
    /// Course over ground, degrees true, 0 to 360 (360 is north, as 0). For a unit that is not
    /// making way, its heading.
    #[schema(minimum = 0, maximum = 360)]
    pub course_deg: f64,
    /// Speed over ground, knots, not negative.
    #[schema(minimum = 0)]
    pub speed_kn: f64,
}

/// The COLREGs situation between own unit and the other, from own unit's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Situation {
    /// Rule 14: meeting on reciprocal or nearly reciprocal courses; both alter to starboard.
    HeadOn,
    /// Rule 15: crossing, the other is on own starboard side; own keeps out of the way.
    CrossingGiveWay,
    /// Rules 15 and 17: crossing, the other is on own port side; own stands on.
    CrossingStandOn,
    /// Rule 13: own is overtaking the other; own keeps out of the way.
    Overtaking,
    /// Rule 13: the other is overtaking own; own stands on (Rule 17).
    BeingOvertaken,
    /// No risk of collision by this measure: closing with the CPA beyond [`RISK_CPA_NM`], or
    /// moving with no relative motion (the same course and speed).
    PassingClear,
    /// The range is opening (or at its least now): the CPA is past.
    Diverging,
    /// Neither unit is making way (both below [`STOPPED_KN`]), or the motion is not known (an
    /// input that is not a finite number).
    Stationary,
}

impl Situation {
    /// The kebab-case name, as in JSON.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Situation::HeadOn => "head-on",
            Situation::CrossingGiveWay => "crossing-give-way",
            Situation::CrossingStandOn => "crossing-stand-on",
            Situation::Overtaking => "overtaking",
            Situation::BeingOvertaken => "being-overtaken",
            Situation::PassingClear => "passing-clear",
            Situation::Diverging => "diverging",
            Situation::Stationary => "stationary",
        }
    }

    /// The COLREGs rule that governs the situation: 13, 14 or 15; none when there is no risk of
    /// collision to act on.
    #[must_use]
    pub fn rule(&self) -> Option<u8> {
        match self {
            Situation::Overtaking | Situation::BeingOvertaken => Some(13),
            Situation::HeadOn => Some(14),
            Situation::CrossingGiveWay | Situation::CrossingStandOn => Some(15),
            Situation::PassingClear | Situation::Diverging | Situation::Stationary => None,
        }
    }

    /// One sentence for the officer: what the situation is and what the rule asks of own unit.
    #[must_use]
    pub fn advice(&self) -> &'static str {
        match self {
            Situation::HeadOn => {
                "head-on: meeting on reciprocal or nearly reciprocal courses; Rule 14: alter course to starboard \
                 so that each passes on the port side of the other"
            }
            Situation::CrossingGiveWay => {
                "crossing: the other unit is on your starboard side; Rule 15: keep out of its way and avoid \
                 crossing ahead of it"
            }
            Situation::CrossingStandOn => {
                "crossing: the other unit is on your port side; Rules 15 and 17: keep your course and speed, \
                 and act if it does not keep out of your way"
            }
            Situation::Overtaking => {
                "overtaking: you are coming up from more than 22.5 degrees abaft the other unit's beam; \
                 Rule 13: keep out of its way until finally past and clear"
            }
            Situation::BeingOvertaken => {
                "being overtaken: the other unit is coming up from more than 22.5 degrees abaft your beam; \
                 Rules 13 and 17: it keeps out of your way, keep your course and speed"
            }
            Situation::PassingClear => {
                "passing clear: the closest point of approach is beyond 2 nm, no risk of collision by this \
                 measure; keep watching the bearing and range"
            }
            Situation::Diverging => {
                "diverging: the range is opening and the closest point of approach is past; keep watching"
            }
            Situation::Stationary => {
                "stationary: neither unit is making way, there is no approach to judge; keep watching"
            }
        }
    }
}

/// Closest point of approach of `other` to `own`, and the situation, from own unit's side.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Approach {
    /// Range of the other from own now, nautical miles.
    pub range_nm: f64,
    /// True bearing of the other from own now, degrees [0, 360).
    pub bearing_deg: f64,
    /// Bearing of the other relative to own course (own bow), degrees [0, 360): under 180 is the
    /// starboard side, over 180 the port side.
    pub relative_bearing_deg: f64,
    /// Distance between the two at the closest point of approach, nautical miles; the range now
    /// when the range is not closing.
    pub cpa_nm: f64,
    /// Minutes from now to the closest point of approach, never negative: 0 when the range is
    /// already opening ([`Situation::Diverging`]); none when the range never changes (no relative
    /// motion, both units stopped, or motion not known).
    pub tcpa_min: Option<f64>,
    /// Where own unit will be at the closest point of approach (where it is now when the range is
    /// not closing).
    pub cpa_own: Position,
    /// Where the other unit will be at the closest point of approach (where it is now when the
    /// range is not closing).
    pub cpa_other: Position,
    /// The situation suggested to the officer.
    pub situation: Situation,
}

/// Closest point of approach of `other` to `own`, and the COLREGs situation from own unit's side.
///
/// The relative position `r` of the other (east, north, nm) and the relative velocity
/// `dv = v_other − v_own` (kn) give the time of closest approach `t = −(r·dv) / |dv|²` hours and
/// the CPA distance `|r + dv·t|`.
///
/// When the CPA is ahead in time and within [`RISK_CPA_NM`], the situation is, in this order:
///
/// - [`Situation::Overtaking`]: own bears more than [`ABAFT_BEAM_DEG`] abaft the other's beam,
///   relative to the other's course (Rule 13(b));
/// - [`Situation::BeingOvertaken`]: the other bears more than [`ABAFT_BEAM_DEG`] abaft own beam;
/// - [`Situation::HeadOn`]: either the courses are within [`HEAD_ON_TOLERANCE_DEG`] of reciprocal
///   and the other is forward of own beam (Rule 14(a): meeting on nearly reciprocal courses so as
///   to involve risk of collision), or each unit is within [`HEAD_ON_TOLERANCE_DEG`] of the other's
///   bow (Rule 14(b): ahead, masthead lights in line). The other's bearing is *not* required to be
///   within the tolerance of dead ahead when the courses are reciprocal: with a lateral offset
///   that bearing opens as the range closes (0.3 nm off at 1 nm range bears 17°) while the two are
///   still meeting end on; with reciprocal courses the offset is the CPA itself, which the risk
///   limit already bounds;
/// - otherwise crossing: [`Situation::CrossingGiveWay`] when the other is on own starboard side
///   (relative bearing in [0, 180), dead ahead counting as starboard), else
///   [`Situation::CrossingStandOn`].
///
/// A pure function: it never panics. Input that is not a finite number gives
/// [`Situation::Stationary`] with no TCPA, the CPA equal to the range (itself not a number if a
/// position is not), and the CPA positions the present ones.
#[must_use]
pub fn approach(own: &Track, other: &Track) -> Approach {
    let (east, north) = offset_nm(&own.position, &other.position);
    let range_nm = east.hypot(north);
    let bearing = norm360(bearing_deg(&own.position, &other.position));
    let relative_bearing = norm360(bearing - own.course_deg);
    // Where own bears from the other, relative to the other's course. On the flat projection the
    // bearing back is the reciprocal.
    let own_from_other = norm360(bearing + 180.0 - other.course_deg);

    // The range never changes from now on: the CPA is now, and there is no time to it.
    let unchanging = |situation| Approach {
        range_nm,
        bearing_deg: bearing,
        relative_bearing_deg: relative_bearing,
        cpa_nm: range_nm,
        tcpa_min: None,
        cpa_own: own.position,
        cpa_other: other.position,
        situation,
    };

    let inputs = [
        own.position.lat,
        own.position.lon,
        own.course_deg,
        own.speed_kn,
        other.position.lat,
        other.position.lon,
        other.course_deg,
        other.speed_kn,
    ];
    if !inputs.iter().all(|x| x.is_finite()) || !range_nm.is_finite() {
        return unchanging(Situation::Stationary);
    }
    if !making_way(own) && !making_way(other) {
        return unchanging(Situation::Stationary);
    }

    let (own_e, own_n) = velocity(own);
    let (other_e, other_n) = velocity(other);
    let (dv_e, dv_n) = (other_e - own_e, other_n - own_n);
    let dv2 = dv_e * dv_e + dv_n * dv_n;
    if !dv2.is_finite() || dv2 < NO_RELATIVE_MOTION_KN * NO_RELATIVE_MOTION_KN {
        return unchanging(Situation::PassingClear);
    }

    // Hours to the closest point of approach; at or below zero the range is already opening.
    let t = -(east * dv_e + north * dv_n) / dv2;
    if !t.is_finite() {
        return unchanging(Situation::Stationary);
    }
    if t <= 0.0 {
        return Approach { tcpa_min: Some(0.0), ..unchanging(Situation::Diverging) };
    }

    let cpa_nm = (east + dv_e * t).hypot(north + dv_n * t);
    let situation = if cpa_nm > RISK_CPA_NM {
        Situation::PassingClear
    } else {
        classify(own, other, relative_bearing, own_from_other)
    };
    Approach {
        range_nm,
        bearing_deg: bearing,
        relative_bearing_deg: relative_bearing,
        cpa_nm,
        tcpa_min: Some(t * 60.0),
        cpa_own: advance(&own.position, own_e * t, own_n * t),
        cpa_other: advance(&other.position, other_e * t, other_n * t),
        situation,
    }
}

/// The situation when there is risk of collision: overtaking, then head-on, then crossing.
/// `relative_bearing` is the other's bearing from own bow, `own_from_other` own's bearing from the
/// other's bow, both degrees [0, 360).
fn classify(own: &Track, other: &Track, relative_bearing: f64, own_from_other: f64) -> Situation {
    if abaft_beam(own_from_other) {
        return Situation::Overtaking;
    }
    if abaft_beam(relative_bearing) {
        return Situation::BeingOvertaken;
    }
    let course_difference = norm360(other.course_deg - own.course_deg);
    let nearly_reciprocal = (course_difference - 180.0).abs() <= HEAD_ON_TOLERANCE_DEG;
    let forward_of_beam = !(90.0..=270.0).contains(&relative_bearing);
    let lights_in_line =
        off_bow(relative_bearing) <= HEAD_ON_TOLERANCE_DEG && off_bow(own_from_other) <= HEAD_ON_TOLERANCE_DEG;
    if (nearly_reciprocal && forward_of_beam) || lights_in_line {
        return Situation::HeadOn;
    }
    if relative_bearing < 180.0 {
        Situation::CrossingGiveWay
    } else {
        Situation::CrossingStandOn
    }
}

/// Whether a relative bearing is more than [`ABAFT_BEAM_DEG`] abaft the beam (Rule 13).
fn abaft_beam(relative_bearing: f64) -> bool {
    relative_bearing > 90.0 + ABAFT_BEAM_DEG && relative_bearing < 270.0 - ABAFT_BEAM_DEG
}

/// How many degrees a relative bearing in [0, 360) is off the bow, either side: 0 to 180.
fn off_bow(relative_bearing: f64) -> f64 {
    relative_bearing.min(360.0 - relative_bearing)
}

/// Whether a unit is making way: not slower than [`STOPPED_KN`].
fn making_way(track: &Track) -> bool {
    track.speed_kn.abs() >= STOPPED_KN
}

/// A unit's velocity in knots, (east, north).
fn velocity(track: &Track) -> (f64, f64) {
    let course = track.course_deg.to_radians();
    (course.sin() * track.speed_kn, course.cos() * track.speed_kn)
}

/// Degrees brought into [0, 360). `rem_euclid` alone can round a tiny negative angle up to 360,
/// and keeps −0; both are folded to 0 here.
fn norm360(d: f64) -> f64 {
    let w = d.rem_euclid(360.0) + 0.0;
    if w >= 360.0 {
        0.0
    } else {
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A track whose position is `east` and `north` nautical miles from (0°, 0°). So close to the
    /// equator one minute of longitude is a nautical mile to better than a millionth.
    fn at(east: f64, north: f64, course_deg: f64, speed_kn: f64) -> Track {
        Track { position: Position::new(north / 60.0, east / 60.0), course_deg, speed_kn }
    }

    struct Case {
        name: &'static str,
        own: Track,
        other: Track,
        cpa_nm: f64,
        tcpa_min: Option<f64>,
        situation: Situation,
    }

    /// Hand-worked cases. In the working, r is the other's position from own (east, north) nm and
    /// dv the relative velocity `v_other − v_own` (east, north) kn; TCPA = −(r·dv)/|dv|² hours.
    fn cases() -> Vec<Case> {
        let s2 = 2f64.sqrt();
        vec![
            // Own at 0,0 course 000 10 kn; other 6 nm north (0.1° N) course 180 10 kn.
            // r = (0, 6), dv = (0, −20): closing 20 kn over 6 nm → TCPA 6/20 h = 18 min, CPA 0.
            // Courses reciprocal, other dead ahead → head-on.
            Case {
                name: "1 head-on on one meridian",
                own: at(0.0, 0.0, 0.0, 10.0),
                other: at(0.0, 6.0, 180.0, 10.0),
                cpa_nm: 0.0,
                tcpa_min: Some(18.0),
                situation: Situation::HeadOn,
            },
            // As 1, the other 0.3 nm to the east: r = (0.3, 6), dv = (0, −20).
            // TCPA = 6/20 h = 18 min; CPA = the lateral offset 0.3 nm; it bears atan(0.3/6) = 2.9°.
            Case {
                name: "2 head-on, 0.3 nm lateral offset",
                own: at(0.0, 0.0, 0.0, 10.0),
                other: at(0.3, 6.0, 180.0, 10.0),
                cpa_nm: 0.3,
                tcpa_min: Some(18.0),
                situation: Situation::HeadOn,
            },
            // The same offset at 1 nm: r = (0.3, 1), dv = (0, −20) → TCPA 1/20 h = 3 min, CPA 0.3.
            // The other now bears atan(0.3/1) = 16.7° on the bow, beyond the 6° tolerance, but the
            // courses are reciprocal and it is forward of the beam → still head-on.
            Case {
                name: "2b head-on, 0.3 nm offset at 1 nm range",
                own: at(0.0, 0.0, 0.0, 10.0),
                other: at(0.3, 1.0, 180.0, 10.0),
                cpa_nm: 0.3,
                tcpa_min: Some(3.0),
                situation: Situation::HeadOn,
            },
            // Rule 14(b): own 000 10 kn; other 6 nm on 005 steering 190 10 kn (10° off reciprocal).
            // Own bears 185 from it, 5° on its port bow; it bears 5° on own starboard bow: lights in
            // line. r = (6 sin 5°, 6 cos 5°) = (0.5229, 5.9772); v_other = (10 sin 190°, 10 cos 190°)
            // = (−1.7365, −9.8481); dv = (−1.7365, −19.8481); r·dv = −0.9081 − 118.6353 = −119.5434;
            // |dv|² = 3.0154 + 393.9462 = 396.9616 → t = 0.30115 h = 18.07 min;
            // r + dv t = (0.5229 − 0.5229, 5.9772 − 5.9772) → CPA 0 (isosceles: each 5° off).
            Case {
                name: "2c head-on by lights in line, courses 10 degrees off reciprocal",
                own: at(0.0, 0.0, 0.0, 10.0),
                other: at(6.0 * 5f64.to_radians().sin(), 6.0 * 5f64.to_radians().cos(), 190.0, 10.0),
                cpa_nm: 0.0,
                tcpa_min: Some(18.07),
                situation: Situation::HeadOn,
            },
            // Own 000 12 kn; other 4 nm east, 4 nm north, course 270 12 kn.
            // In 20 min own runs 4 nm north to (0, 4); the other runs 4 nm west to (0, 4): collision.
            // r = (4, 4), dv = (−12, −12): r·dv = −96, |dv|² = 288 → t = 1/3 h = 20 min, CPA 0.
            // The other bears 045, on own starboard bow → give way.
            Case {
                name: "3 crossing from starboard",
                own: at(0.0, 0.0, 0.0, 12.0),
                other: at(4.0, 4.0, 270.0, 12.0),
                cpa_nm: 0.0,
                tcpa_min: Some(20.0),
                situation: Situation::CrossingGiveWay,
            },
            // Mirror of 3: other 4 nm west, 4 nm north, course 090 12 kn; meet at (0, 4) in 20 min.
            // It bears 315, on own port bow → stand on.
            Case {
                name: "4 crossing from port",
                own: at(0.0, 0.0, 0.0, 12.0),
                other: at(-4.0, 4.0, 90.0, 12.0),
                cpa_nm: 0.0,
                tcpa_min: Some(20.0),
                situation: Situation::CrossingStandOn,
            },
            // Own 000 15 kn; other 2 nm ahead, 000 10 kn. r = (0, 2), dv = (0, −5): 2/5 h = 24 min,
            // CPA 0. Own bears 180 relative to the other's course: right astern → own overtaking.
            Case {
                name: "5 overtaking",
                own: at(0.0, 0.0, 0.0, 15.0),
                other: at(0.0, 2.0, 0.0, 10.0),
                cpa_nm: 0.0,
                tcpa_min: Some(24.0),
                situation: Situation::Overtaking,
            },
            // As 5 with 0.5 nm offset: r = (0.5, 2), dv = (0, −5) → 24 min, CPA 0.5. Own bears
            // 180 + atan(0.5/2) = 194° from the other's bow, more than 22.5° abaft its beam.
            Case {
                name: "5b overtaking with offset",
                own: at(0.0, 0.0, 0.0, 15.0),
                other: at(0.5, 2.0, 0.0, 10.0),
                cpa_nm: 0.5,
                tcpa_min: Some(24.0),
                situation: Situation::Overtaking,
            },
            // Mirror of 5: own 000 10 kn; other 2 nm astern, 000 15 kn. r = (0, −2), dv = (0, 5):
            // 2/5 h = 24 min, CPA 0. The other bears 180 relative → being overtaken.
            Case {
                name: "5c being overtaken",
                own: at(0.0, 0.0, 0.0, 10.0),
                other: at(0.0, -2.0, 0.0, 15.0),
                cpa_nm: 0.0,
                tcpa_min: Some(24.0),
                situation: Situation::BeingOvertaken,
            },
            // Own 000 10 kn; other 2 nm east, 090 10 kn. r = (2, 0), dv = (10, −10): r·dv = 20 > 0,
            // the range is opening → diverging, TCPA 0, CPA = range = 2.
            Case {
                name: "6 diverging",
                own: at(0.0, 0.0, 0.0, 10.0),
                other: at(2.0, 0.0, 90.0, 10.0),
                cpa_nm: 2.0,
                tcpa_min: Some(0.0),
                situation: Situation::Diverging,
            },
            // Both stopped, the other 1 nm north: no motion → stationary, no TCPA, CPA = range = 1.
            Case {
                name: "7 both stopped",
                own: at(0.0, 0.0, 0.0, 0.0),
                other: at(0.0, 1.0, 90.0, 0.0),
                cpa_nm: 1.0,
                tcpa_min: None,
                situation: Situation::Stationary,
            },
            // Both drifting below 0.1 kn on different courses: neither making way → stationary.
            Case {
                name: "7b both below the stopped limit",
                own: at(0.0, 0.0, 0.0, 0.05),
                other: at(0.0, 1.0, 90.0, 0.09),
                cpa_nm: 1.0,
                tcpa_min: None,
                situation: Situation::Stationary,
            },
            // Own stopped heading 000; other 5 nm north steering 180 at 10 kn, straight at own.
            // r = (0, 5), dv = (0, −10): TCPA = range/speed = 5/10 h = 30 min, CPA 0. By geometry
            // (own heading as its course): reciprocal, dead ahead → head-on.
            Case {
                name: "8 own stopped, other heading at it from ahead",
                own: at(0.0, 0.0, 0.0, 0.0),
                other: at(0.0, 5.0, 180.0, 10.0),
                cpa_nm: 0.0,
                tcpa_min: Some(30.0),
                situation: Situation::HeadOn,
            },
            // Own stopped heading 000; other 2 nm astern steering 000 at 10 kn: 2/10 h = 12 min,
            // CPA 0; it bears 180 relative → being overtaken.
            Case {
                name: "8b own stopped, other coming up from astern",
                own: at(0.0, 0.0, 0.0, 0.0),
                other: at(0.0, -2.0, 0.0, 10.0),
                cpa_nm: 0.0,
                tcpa_min: Some(12.0),
                situation: Situation::BeingOvertaken,
            },
            // Own 000 10 kn at a stopped other 3 nm ahead heading 090: 3/10 h = 18 min, CPA 0.
            // Own bears 090 from its bow (on its beam, not abaft); courses 90° apart; it bears 000
            // from own bow, counted starboard → give way.
            Case {
                name: "8c own heading at a stopped other",
                own: at(0.0, 0.0, 0.0, 10.0),
                other: at(0.0, 3.0, 90.0, 0.0),
                cpa_nm: 0.0,
                tcpa_min: Some(18.0),
                situation: Situation::CrossingGiveWay,
            },
            // Own 000 10 kn; other course 270 10 kn at r = (6, 6 + 3√2) = (6, 10.2426).
            // dv = (−10, −10); r·dv = −60 − 102.426 = −162.426; |dv|² = 200 → t = 0.81213 h
            // = 48.73 min. The relative track runs along (−1, −1)/√2, so the CPA is the distance of
            // the origin from that line: |6 − 10.2426|/√2 = 3√2/√2 = 3 nm > 2 → passing clear.
            Case {
                name: "10 crossing, passing clear at 3 nm",
                own: at(0.0, 0.0, 0.0, 10.0),
                other: at(6.0, 6.0 + 3.0 * s2, 270.0, 10.0),
                cpa_nm: 3.0,
                tcpa_min: Some(48.73),
                situation: Situation::PassingClear,
            },
            // Own 000 10 kn; other 1 nm east, 000 10 kn: dv = 0, the range stays 1 nm for ever.
            Case {
                name: "11 same course and speed",
                own: at(0.0, 0.0, 0.0, 10.0),
                other: at(1.0, 0.0, 0.0, 10.0),
                cpa_nm: 1.0,
                tcpa_min: None,
                situation: Situation::PassingClear,
            },
            // As 11 with the other's course given as 360: the same as 000.
            Case {
                name: "11b same course given as 000 and 360",
                own: at(0.0, 0.0, 0.0, 10.0),
                other: at(1.0, 0.0, 360.0, 10.0),
                cpa_nm: 1.0,
                tcpa_min: None,
                situation: Situation::PassingClear,
            },
        ]
    }

    fn check(name: &str, a: &Approach, cpa_nm: f64, tcpa_min: Option<f64>, situation: Situation) {
        assert!((a.cpa_nm - cpa_nm).abs() < 0.01, "{name}: CPA {} nm, expected {cpa_nm}", a.cpa_nm);
        match (a.tcpa_min, tcpa_min) {
            (Some(got), Some(want)) => {
                assert!((got - want).abs() < 0.1, "{name}: TCPA {got} min, expected {want}");
            }
            (None, None) => {}
            (got, want) => panic!("{name}: TCPA {got:?}, expected {want:?}"),
        }
        assert_eq!(a.situation, situation, "{name}");
        for (what, b) in [("bearing", a.bearing_deg), ("relative bearing", a.relative_bearing_deg)] {
            assert!((0.0..360.0).contains(&b), "{name}: {what} {b} outside [0, 360)");
        }
        for p in [a.cpa_own, a.cpa_other] {
            assert!(p.problem().is_none(), "{name}: CPA position {p:?} off the globe");
        }
    }

    #[test]
    fn hand_worked_cases() {
        for c in cases() {
            let a = approach(&c.own, &c.other);
            check(c.name, &a, c.cpa_nm, c.tcpa_min, c.situation);
        }
    }

    #[test]
    fn no_closing_means_cpa_is_the_range_now() {
        for c in cases() {
            let a = approach(&c.own, &c.other);
            if matches!(a.situation, Situation::Diverging | Situation::Stationary) || a.tcpa_min.is_none() {
                assert_eq!(a.cpa_nm, a.range_nm, "{}", c.name);
                assert_eq!(a.cpa_own, c.own.position, "{}", c.name);
                assert_eq!(a.cpa_other, c.other.position, "{}", c.name);
            }
        }
    }

    #[test]
    fn cpa_positions_are_where_the_units_meet() {
        // Case 3: both at 4 nm north of the origin, on its meridian, 20 minutes on.
        let a = approach(&at(0.0, 0.0, 0.0, 12.0), &at(4.0, 4.0, 270.0, 12.0));
        for p in [a.cpa_own, a.cpa_other] {
            assert!((p.lat - 4.0 / 60.0).abs() < 1e-4, "{p:?}");
            assert!(p.lon.abs() < 1e-4, "{p:?}");
        }
        assert!((a.range_nm - 4.0 * 2f64.sqrt()).abs() < 0.01);
        assert!((a.bearing_deg - 45.0).abs() < 0.01);
        assert!((a.relative_bearing_deg - 45.0).abs() < 0.01);
    }

    #[test]
    fn antimeridian() {
        // Own at 10° N 179.95° E steering 090 10 kn; other at 10° N 179.95° W steering 270 10 kn.
        // They are 0.1° of longitude apart across the antimeridian, not 359.9°:
        // range = 0.1 × 60 × cos 10° = 6 × 0.98481 = 5.909 nm; closing 20 kn → 5.909/20 h
        // = 0.29544 h = 17.73 min; same parallel, reciprocal courses, dead ahead → head-on, CPA 0.
        // Each runs 2.954 nm = 0.05° of longitude: they meet on the antimeridian.
        let own = Track { position: Position::new(10.0, 179.95), course_deg: 90.0, speed_kn: 10.0 };
        let other = Track { position: Position::new(10.0, -179.95), course_deg: 270.0, speed_kn: 10.0 };
        let a = approach(&own, &other);
        assert!((a.range_nm - 5.909).abs() < 0.01, "range {}", a.range_nm);
        assert!((a.bearing_deg - 90.0).abs() < 0.01, "bearing {}", a.bearing_deg);
        assert!(a.relative_bearing_deg < 0.01 || a.relative_bearing_deg > 359.99);
        check("antimeridian", &a, 0.0, Some(17.73), Situation::HeadOn);
        for p in [a.cpa_own, a.cpa_other] {
            assert!((-180.0..=180.0).contains(&p.lon), "{p:?}");
            assert!((p.lon.abs() - 180.0).abs() < 1e-6, "meet on the antimeridian: {p:?}");
            assert!((p.lat - 10.0).abs() < 1e-9, "{p:?}");
        }
    }

    #[test]
    fn risk_limit_is_inclusive_and_advice_names_it() {
        // Reciprocal courses 2 nm apart laterally: CPA exactly at the limit is still risk.
        let a = approach(&at(0.0, 0.0, 0.0, 10.0), &at(2.0 - 1e-9, 6.0, 180.0, 10.0));
        assert_eq!(a.situation, Situation::HeadOn);
        let a = approach(&at(0.0, 0.0, 0.0, 10.0), &at(2.05, 6.0, 180.0, 10.0));
        assert_eq!(a.situation, Situation::PassingClear);
        assert!(Situation::PassingClear.advice().contains(&format!("beyond {RISK_CPA_NM} nm")));
    }

    #[test]
    fn abaft_the_beam_boundary() {
        // Own 000 10 kn. The other bearing 112° relative (less than 22.5° abaft the beam), on a
        // course that closes: crossing from starboard, not overtaking. At 113° it is overtaking.
        let other_at = |rel: f64| {
            let r = rel.to_radians();
            at(r.sin(), r.cos(), 0.0, 20.0)
        };
        let a = approach(&at(0.0, 0.0, 0.0, 10.0), &other_at(112.0));
        assert_eq!(a.situation, Situation::CrossingGiveWay, "{a:?}");
        let a = approach(&at(0.0, 0.0, 0.0, 10.0), &other_at(113.0));
        assert_eq!(a.situation, Situation::BeingOvertaken, "{a:?}");
    }

    #[test]
    fn names_rules_and_serde_agree() {
        let all = [
            (Situation::HeadOn, Some(14)),
            (Situation::CrossingGiveWay, Some(15)),
            (Situation::CrossingStandOn, Some(15)),
            (Situation::Overtaking, Some(13)),
            (Situation::BeingOvertaken, Some(13)),
            (Situation::PassingClear, None),
            (Situation::Diverging, None),
            (Situation::Stationary, None),
        ];
        for (s, rule) in all {
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<Situation>(&format!("\"{}\"", s.as_str())).unwrap(), s);
            assert_eq!(s.rule(), rule, "{s:?}");
            if let Some(rule) = rule {
                assert!(s.advice().contains(&format!(" {rule}")), "{s:?}: advice names Rule {rule}");
            }
        }
        assert!(Situation::CrossingGiveWay.advice().contains("starboard"));
        assert!(Situation::CrossingStandOn.advice().contains("port"));
    }

    #[test]
    fn approach_round_trips_through_json() {
        let a = approach(&at(0.0, 0.0, 0.0, 12.0), &at(4.0, 4.0, 270.0, 12.0));
        let json = serde_json::to_value(a).unwrap();
        assert_eq!(json["situation"], "crossing-give-way");
        assert_eq!(serde_json::from_value::<Approach>(json).unwrap(), a);
        let t: Track =
            serde_json::from_str(r#"{"position": {"lat": 1.5, "lon": -2.0}, "course_deg": 90, "speed_kn": 12.5}"#)
                .unwrap();
        assert_eq!(t, Track { position: Position::new(1.5, -2.0), course_deg: 90.0, speed_kn: 12.5 });
    }

    #[test]
    fn non_finite_input_does_not_panic() {
        let good = at(0.0, 0.0, 0.0, 10.0);
        let bad_values = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MAX, -f64::MAX, f64::MIN_POSITIVE];
        for bad in bad_values {
            let mut variants = Vec::new();
            for field in 0..4 {
                let mut t = at(0.0, 3.0, 180.0, 10.0);
                match field {
                    0 => t.position.lat = bad,
                    1 => t.position.lon = bad,
                    2 => t.course_deg = bad,
                    _ => t.speed_kn = bad,
                }
                variants.push(t);
            }
            for t in variants {
                for (own, other) in [(good, t), (t, good), (t, t)] {
                    let a = approach(&own, &other);
                    // Whatever comes back can be written out (non-finite numbers as null).
                    serde_json::to_string(&a).unwrap();
                    if !bad.is_finite() {
                        assert_eq!(a.situation, Situation::Stationary, "{bad} {own:?} {other:?}");
                        assert_eq!(a.tcpa_min, None);
                    }
                    if let Some(t) = a.tcpa_min {
                        assert!(t >= 0.0, "{t}");
                    }
                }
            }
        }
    }
}
