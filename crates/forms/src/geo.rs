//! Positions on the globe and the plane geometry the checks and the approach helper need.
//!
//! Distances are in nautical miles on a local flat projection about the points concerned
//! (one minute of latitude is one nautical mile), which is exact enough for the few tens of miles
//! of an encounter. Longitudes are unwrapped across the antimeridian before any difference is
//! taken, so 179.9° E and 179.9° W are 0.2° apart, not 359.8°.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Nautical miles in one degree of latitude.
pub const NM_PER_DEGREE: f64 = 60.0;

/// A position in decimal degrees (WGS 84): latitude north positive, longitude east positive.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Position {
    /// Degrees, −90 to 90, north positive.
    #[schema(minimum = -90, maximum = 90)]
    pub lat: f64,
    /// Degrees, −180 to 180, east positive.
    #[schema(minimum = -180, maximum = 180)]
    pub lon: f64,
}

impl Position {
    pub fn new(lat: f64, lon: f64) -> Position {
        Position { lat, lon }
    }

    /// Why this position is not on the globe, if it is not.
    pub fn problem(&self) -> Option<String> {
        if !self.lat.is_finite() || !(-90.0..=90.0).contains(&self.lat) {
            return Some(format!("latitude {} is off the globe (−90 to 90)", self.lat));
        }
        if !self.lon.is_finite() || !(-180.0..=180.0).contains(&self.lon) {
            return Some(format!("longitude {} is off the globe (−180 to 180)", self.lon));
        }
        None
    }
}

/// `d` degrees of longitude brought into [−180, 180).
pub fn wrap_lon(d: f64) -> f64 {
    let w = (d + 180.0).rem_euclid(360.0) - 180.0;
    if w.is_finite() {
        w
    } else {
        0.0
    }
}

/// Offset of `to` from `from` in nautical miles, (east, north), on the flat projection about
/// their mean latitude; the shorter way round in longitude.
pub fn offset_nm(from: &Position, to: &Position) -> (f64, f64) {
    let mean_lat = ((from.lat + to.lat) / 2.0).to_radians();
    let east = wrap_lon(to.lon - from.lon) * NM_PER_DEGREE * mean_lat.cos();
    let north = (to.lat - from.lat) * NM_PER_DEGREE;
    (east, north)
}

/// The position `east` and `north` nautical miles from `from`.
pub fn advance(from: &Position, east: f64, north: f64) -> Position {
    let lat = (from.lat + north / NM_PER_DEGREE).clamp(-90.0, 90.0);
    let mean_lat = ((from.lat + lat) / 2.0).to_radians();
    let cos = mean_lat.cos().max(1e-9);
    Position { lat, lon: wrap_lon(from.lon + east / (NM_PER_DEGREE * cos)) }
}

/// Distance in nautical miles between two positions (flat projection; for short ranges).
pub fn distance_nm(a: &Position, b: &Position) -> f64 {
    let (e, n) = offset_nm(a, b);
    e.hypot(n)
}

/// True bearing in degrees [0, 360) from `from` to `to`.
pub fn bearing_deg(from: &Position, to: &Position) -> f64 {
    let (e, n) = offset_nm(from, to);
    let b = e.atan2(n).to_degrees().rem_euclid(360.0);
    // `rem_euclid` may round a tiny negative angle up to 360 exactly.
    if b >= 360.0 {
        0.0
    } else {
        b
    }
}

/// The first pair of edges (i, j), i < j, of a closed polygon that cross or touch other than at
/// the corner they share; `None` when the polygon is simple. Edge i runs from corner i to corner
/// i + 1 (the last back to the first). Longitudes are unwrapped from the first corner, so a
/// polygon across the antimeridian is judged as drawn.
pub fn self_intersection(corners: &[Position]) -> Option<(usize, usize)> {
    let n = corners.len();
    if n < 3 {
        return None;
    }
    let first = corners[0];
    let pts: Vec<(f64, f64)> = corners.iter().map(|p| (first.lon + wrap_lon(p.lon - first.lon), p.lat)).collect();
    let edge = |i: usize| (pts[i], pts[(i + 1) % n]);
    for i in 0..n {
        for j in i + 1..n {
            let adjacent = j == i + 1 || (i == 0 && j == n - 1);
            let (a, b) = edge(i);
            let (c, d) = edge(j);
            if adjacent {
                // Edges that share a corner meet only there, unless they fold back over each other.
                let shared = if j == i + 1 { b } else { a };
                let (p, q) = if j == i + 1 { (a, d) } else { (b, c) };
                if cross(shared, p, q) == 0.0 && dot(shared, p, q) > 0.0 {
                    return Some((i, j));
                }
                continue;
            }
            if segments_meet(a, b, c, d) {
                return Some((i, j));
            }
        }
    }
    None
}

fn cross(o: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
}

fn dot(o: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    (a.0 - o.0) * (b.0 - o.0) + (a.1 - o.1) * (b.1 - o.1)
}

fn on_segment(a: (f64, f64), b: (f64, f64), p: (f64, f64)) -> bool {
    p.0 >= a.0.min(b.0) && p.0 <= a.0.max(b.0) && p.1 >= a.1.min(b.1) && p.1 <= a.1.max(b.1)
}

fn segments_meet(a: (f64, f64), b: (f64, f64), c: (f64, f64), d: (f64, f64)) -> bool {
    let (d1, d2) = (cross(c, d, a), cross(c, d, b));
    let (d3, d4) = (cross(a, b, c), cross(a, b, d));
    if ((d1 > 0.0 && d2 < 0.0) || (d1 < 0.0 && d2 > 0.0)) && ((d3 > 0.0 && d4 < 0.0) || (d3 < 0.0 && d4 > 0.0)) {
        return true;
    }
    (d1 == 0.0 && on_segment(c, d, a))
        || (d2 == 0.0 && on_segment(c, d, b))
        || (d3 == 0.0 && on_segment(a, b, c))
        || (d4 == 0.0 && on_segment(a, b, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poly(points: &[(f64, f64)]) -> Vec<Position> {
        points.iter().map(|&(lat, lon)| Position::new(lat, lon)).collect()
    }

    #[test]
    fn a_bow_tie_crosses_itself_and_a_square_does_not() {
        let square = poly(&[(0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 0.0)]);
        assert_eq!(self_intersection(&square), None);
        // Corners 1 and 2 swapped: edges 0 (0→1) and 2 (2→3) cross in the middle.
        let bow_tie = poly(&[(0.0, 0.0), (1.0, 1.0), (0.0, 1.0), (1.0, 0.0)]);
        assert_eq!(self_intersection(&bow_tie), Some((0, 2)));
        // An edge that doubles back along the one before it.
        let folded = poly(&[(0.0, 0.0), (0.0, 2.0), (0.0, 1.0), (1.0, 1.0)]);
        assert!(self_intersection(&folded).is_some());
        // A repeated corner touches.
        let touching = poly(&[(0.0, 0.0), (0.0, 2.0), (1.0, 1.0), (0.0, 2.0), (-1.0, 1.0)]);
        assert!(self_intersection(&touching).is_some());
    }

    #[test]
    fn a_polygon_across_the_antimeridian_is_judged_as_drawn() {
        let across = poly(&[(0.0, 179.0), (0.0, -179.0), (1.0, -179.0), (1.0, 179.0)]);
        assert_eq!(self_intersection(&across), None);
        assert!((distance_nm(&Position::new(0.0, 179.9), &Position::new(0.0, -179.9)) - 12.0).abs() < 1e-6);
        assert_eq!(wrap_lon(190.0), -170.0);
        assert_eq!(wrap_lon(-180.0), -180.0);
    }
}
