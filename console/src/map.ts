// The map of a report or of a line's reports: units, their vectors, the closest points of
// approach the node computed, areas, on Natural Earth's coastlines, drawn as SVG.

import { type Form, type Message, type Position } from "./api";
import { $ } from "./dom";

/** [lon, lat] */
type Point = [number, number];
/** [lon min, lat min, lon max, lat max] */
type Box = [number, number, number, number];
interface Arc { pts: Float64Array; box: Box }
interface Country { name: string; polys: { rings: Float64Array[]; box: Box }[] }
interface Basemap { arcs: Arc[]; countries: Country[] }
interface Features {
  units: { name: string; at: Point; role: string }[];
  vectors: { role: string; from: Point; to?: Point; heading?: number; px?: number }[];
  cpas: { a: Point; b: Point; label: string }[];
  areas: { ring: Point[]; label: string }[];
  legend: { cls: string; text: string }[];
  captions: string[];
}
interface Label { text: SVGTextElement; x: number; y: number; around: boolean; far?: boolean }
interface Rect { x: number; y: number; width: number; height: number }
// TopoJSON as the node serves it (the parts read here).
interface Topology {
  transform?: { scale: [number, number]; translate: [number, number] };
  arcs: [number, number][][];
  objects: Record<string, { geometries?: { type: string; arcs: number[][] | number[][][]; properties?: { name?: string }; id?: string | number }[] }>;
}
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Area = any;

// The reports whose positions the map draws.
const MAPPED = ["encounter-at-sea", "air-encounter", "disaster-relief", "military-activity"];
export const hasMap = (m: Message): m is Message & { form: Form } => !!(m.form && MAPPED.includes(m.form.kind));

export const fixed2 = (n: number | string): string => Number(n).toFixed(2);
export const degrees = (n: number): string => String(Math.round(n) % 360).padStart(3, "0") + "°";

// "CPA 0.62 nm in 32 min": the closest point of approach the node computed.
export function cpaText(a: { tcpa_min: number | null; cpa_nm: number }): string {
  const t = a.tcpa_min == null ? "" : a.tcpa_min < 0.5 ? " now" : " in " + Math.round(a.tcpa_min) + " min";
  return "CPA " + fixed2(a.cpa_nm) + " nm" + t;
}

const SVGNS = "http://www.w3.org/2000/svg";
function svgEl<K extends keyof SVGElementTagNameMap>(name: K, attrs: Record<string, string | number>, parent?: Element, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVGNS, name) as SVGElementTagNameMap[K];
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

function grow(box: Box, x: number, y: number): void {
  if (x < box[0]) box[0] = x;
  if (y < box[1]) box[1] = y;
  if (x > box[2]) box[2] = x;
  if (y > box[3]) box[3] = y;
}

// The basemap: Natural Earth's countries as TopoJSON, from this node, fetched and decoded once.
let world: Promise<Basemap> | null = null;
function loadWorld(): Promise<Basemap> {
  if (!world) {
    world = fetch("/console/world.json", { credentials: "same-origin" })
      .then((r) => { if (!r.ok) throw new Error("the basemap could not be loaded (" + r.status + ")"); return r.json(); })
      .then(decodeTopology);
    world.catch(() => { world = null; });
  }
  return world;
}

// `lon`, give or take whole turns, within 180° of `near`.
const unwrapLon = (lon: number, near: number): number => lon + 360 * Math.round((near - lon) / 360);
const onMeridian = (lon: number): boolean => Math.abs(unwrapLon(lon, 180) - 180) < 1e-3;

// TopoJSON keeps each shared boundary once, as an arc: a run of points, quantized (integers, to be
// multiplied by transform.scale and shifted by transform.translate) and delta-encoded (each point
// as its difference from the one before). A polygon is a list of rings, each a list of arc
// indexes; an index ~i (negative) means arc i walked backwards.
//
// The countries are not cut at the antimeridian (Chukotka, Fiji and Antarctica cross it, a step
// from 179.9° to −180°): along every arc and ring each longitude is taken within 180° of the one
// before, so a shape that crosses it is continuous (running on to 190°, say), and the map draws
// copies 360° east and west where its view needs them.
function decodeTopology(topo: Topology): Basemap {
  const t = topo.transform;
  const arcs = topo.arcs.map((arc) => {
    const pts = new Float64Array(arc.length * 2);
    const box: Box = [Infinity, Infinity, -Infinity, -Infinity];
    let x = 0, y = 0;
    arc.forEach((p, i) => {
      if (t) { x += p[0]; y += p[1]; } else { x = p[0]; y = p[1]; }
      let lon = t ? x * t.scale[0] + t.translate[0] : x;
      const lat = t ? y * t.scale[1] + t.translate[1] : y;
      if (i) lon = unwrapLon(lon, pts[2 * i - 2]);
      pts[2 * i] = lon; pts[2 * i + 1] = lat;
      grow(box, lon, lat);
    });
    return { pts, box };
  });
  // A ring's points, each longitude within 180° of the one before it, starting near `near`.
  const ring = (indexes: number[], near: number): Float64Array => {
    const out: number[] = [];
    indexes.forEach((index, n) => {
      const a = arcs[index < 0 ? ~index : index].pts;
      const len = a.length / 2;
      // Each arc begins where the one before it ended: keep that point once.
      for (let j = n ? 1 : 0; j < len; j++) {
        const k = index < 0 ? len - 1 - j : j;
        out.push(unwrapLon(a[2 * k], out.length ? out[out.length - 2] : near), a[2 * k + 1]);
      }
    });
    // A ring around a pole (Antarctica's) does not close when unwrapped: it is drawn as given,
    // from −180° to 180° along the pole, and its copies east and west join it up.
    if (out.length && Math.abs(out[out.length - 2] - out[0]) > 180) for (let i = 0; i < out.length; i += 2) out[i] = unwrapLon(out[i], 0);
    return Float64Array.from(out);
  };
  const object = topo.objects.countries || Object.values(topo.objects)[0];
  const countries: Country[] = [];
  for (const g of object.geometries || []) {
    const polygons = (g.type === "Polygon" ? [g.arcs] : g.type === "MultiPolygon" ? g.arcs : []) as number[][][];
    const polys = polygons.filter((rings) => rings.length).map((rings) => {
      const outer = ring(rings[0], 0);
      // Holes start near their outer ring, so that they are cut from the same copy of it.
      const rs = [outer, ...rings.slice(1).map((r) => ring(r, outer[0]))];
      const box: Box = [Infinity, Infinity, -Infinity, -Infinity];
      for (const r of rs) for (let i = 0; i < r.length; i += 2) grow(box, r[i], r[i + 1]);
      return { rings: rs, box };
    });
    countries.push({ name: (g.properties && g.properties.name) || String(g.id || ""), polys });
  }
  return { arcs, countries };
}

// A position of a report as [lon, lat], or null.
function lonLat(pos: Position | null | undefined): Point | null {
  return pos && Number.isFinite(pos.lon) && Number.isFinite(pos.lat) ? [pos.lon, pos.lat] : null;
}

// Where a unit at `at` steering `course` is after `nm` nautical miles (a short run: flat earth).
function run(at: Point, course: number, nm: number): Point {
  const c = course * Math.PI / 180;
  const cosLat = Math.max(0.01, Math.cos(at[1] * Math.PI / 180));
  return [at[0] + nm / 60 * Math.sin(c) / cosLat, at[1] + nm / 60 * Math.cos(c)];
}

// An area's outline: a polygon's corners, or a circle as 64 points (radius_nm / 60 degrees of
// latitude, widened in longitude by 1 / cos(latitude)).
function areaRing(area: Area): Point[] {
  if (area && Array.isArray(area.polygon)) return area.polygon.map(lonLat).filter((p: Point | null): p is Point => !!p);
  const c = area && area.circle && lonLat(area.circle.centre);
  if (!c || !(area.circle.radius_nm > 0)) return [];
  const r = area.circle.radius_nm / 60;
  const cosLat = Math.max(0.01, Math.cos(c[1] * Math.PI / 180));
  const ring: Point[] = [];
  for (let i = 0; i < 64; i++) {
    const a = i / 64 * 2 * Math.PI;
    ring.push([c[0] + r * Math.sin(a) / cosLat, c[1] + r * Math.cos(a)]);
  }
  return ring;
}

function areaWords(area: Area): string {
  if (area && area.circle) {
    const c = area.circle.centre;
    return "within " + area.circle.radius_nm + " nm of " + fixed2(c.lat) + ", " + fixed2(c.lon);
  }
  return "a polygon of " + ((area && area.polygon) || []).length + " corners";
}

// What one message's report puts on the map; positions are [lon, lat].
function mapFeatures(m: Message & { form: Form }, into: Features): void {
  const f = m.form;
  const from = " (" + m.sender + (m.ewg ? ", " + m.ewg : "") + ")";
  if (f.kind === "encounter-at-sea") {
    const approaches = m.approaches || [];
    const units = [f.reporting_unit, ...(f.other_units || [])].filter((u) => u && lonLat(u.position));
    units.forEach((u, i) => {
      const role = i === 0 ? "own" : "other";
      // The vector runs to the closest point of approach, or 15 minutes when there is none ahead.
      let minutes = 15;
      if (i === 0) {
        const ahead = approaches.map((a) => a.approach.tcpa_min).filter((t): t is number => t != null && t > 0);
        if (ahead.length) minutes = Math.max(...ahead);
      } else {
        const a = approaches.find((a) => a.other === u.name) || approaches[i - 1];
        if (a && a.approach.tcpa_min != null && a.approach.tcpa_min > 0) minutes = a.approach.tcpa_min;
      }
      const at = lonLat(u.position) as Point;
      into.units.push({ name: u.name, at, role });
      if (u.speed_kn > 0 && Number.isFinite(u.course_deg)) {
        into.vectors.push({ role, from: at, to: run(at, u.course_deg, u.speed_kn * minutes / 60) });
      }
      into.legend.push({ cls: role, text: u.name + " (" + (i === 0 ? "reporting unit" : "other unit") + (u.type ? ", " + u.type : "") +
        (u.nationality ? ", " + u.nationality : "") + "): course " + degrees(u.course_deg) + ", " + u.speed_kn + " kn; vector "
        + Math.round(minutes) + " min" });
    });
    for (const a of approaches) {
      const c = a.approach, A = lonLat(c.cpa_own), B = lonLat(c.cpa_other);
      if (!A || !B) continue;
      const label = (approaches.length > 1 ? a.other + ": " : "") + cpaText(c) + " · " + c.situation + " (suggested)";
      into.cpas.push({ a: A, b: B, label });
      into.legend.push({ cls: "cpa", text: "Computed by the node, " + a.own + " and " + a.other + ": range now " + fixed2(c.range_nm) +
        " nm bearing " + degrees(c.bearing_deg) + "; " + cpaText(c) + "; " + c.situation + " — a suggestion, not a finding" });
    }
    const ca = f.closest_approach;
    into.captions.push("Encounter at sea" + from + ", " + f.time_utc + ": " + units.map((u) => u.name).join(" and ") + "." +
      (ca ? " Observed closest approach " + ca.distance_nm + " nm at " + ca.time_utc + " (reported)." : "") +
      (f.situation ? " Reported situation: " + f.situation + "." : ""));
    if (ca) into.legend.push({ cls: "observed", text: "Observed closest approach (reported): " + ca.distance_nm + " nm at " + ca.time_utc });
  } else if (f.kind === "air-encounter") {
    const craft = [f.reporting_aircraft, ...(f.other_aircraft || [])].filter((a) => a && lonLat(a.position));
    craft.forEach((a, i) => {
      const at = lonLat(a.position) as Point;
      into.units.push({ name: a.call_sign + (Number.isFinite(a.altitude_ft) ? " · " + a.altitude_ft + " ft" : ""), at, role: "aircraft" });
      if (Number.isFinite(a.heading_deg)) into.vectors.push({ role: "aircraft", from: at, heading: a.heading_deg, px: 30 });
      into.legend.push({ cls: "aircraft", text: a.call_sign + " (" + (i === 0 ? "reporting aircraft" : "other aircraft") + (a.type ? ", " + a.type : "") +
        "): " + a.altitude_ft + " ft" + (Number.isFinite(a.heading_deg) ? ", heading " + degrees(a.heading_deg) : "") +
        (Number.isFinite(a.speed_kn) ? ", " + a.speed_kn + " kn" : "") });
    });
    const s = f.separation;
    into.captions.push("Air encounter" + from + ", " + f.time_utc + ": " + craft.map((a) => a.call_sign).join(" and ") + "." +
      (s ? " Separation " + s.horizontal_nm + " nm horizontal, " + s.vertical_ft + " ft vertical (reported)." : ""));
  } else if (f.kind === "disaster-relief") {
    const at = f.location && lonLat(f.location.position);
    if (at) into.units.push({ name: f.location.name, at, role: "place" });
    if (f.affected_area) {
      const ring = areaRing(f.affected_area);
      if (ring.length > 2) into.areas.push({ ring, label: "Affected area" });
      into.legend.push({ cls: "area", text: "Affected area: " + areaWords(f.affected_area) });
    }
    into.captions.push("Disaster relief " + f.stage + from + ", " + f.time_utc + ": " + f.disaster + " at " + (f.location ? f.location.name : "?") + ".");
  } else if (f.kind === "military-activity") {
    const ring = areaRing(f.area);
    if (ring.length > 2) into.areas.push({ ring, label: f.exercise });
    into.legend.push({ cls: "area", text: f.exercise + ": " + areaWords(f.area) + ", " + f.start_utc + " to " + f.end_utc });
    into.captions.push("Notice of military activity" + from + ": " + f.exercise + ", " + f.start_utc + " to " + f.end_utc + ".");
  }
}

// Opens the map panel on the reports of `messages`.
export async function openMap(messages: Message[], title: string): Promise<void> {
  const view = $("map-view");
  view.hidden = false;
  $("map-title").textContent = title;
  $("map-caption").textContent = "Drawing the map…";
  const feats: Features = { units: [], vectors: [], cpas: [], areas: [], legend: [], captions: [] };
  const several = messages.filter(hasMap).length > 1;
  for (const m of messages) {
    if (!hasMap(m)) continue;
    if (several) feats.legend.push({ cls: "report", text: m.sender + " · " + m.form.kind + (m.subject ? ": " + m.subject : "") });
    mapFeatures(m, feats);
  }
  let basemap: Basemap | null = null, note = "";
  try { basemap = await loadWorld(); } catch (e) { note = " (Without coastlines: " + (e instanceof Error ? e.message : String(e)) + ".)"; }
  const drawn = drawMap(feats, basemap);
  $("map-legend").replaceChildren(...feats.legend.map((l) => {
    const li = document.createElement("li");
    li.className = l.cls; li.textContent = l.text;
    return li;
  }));
  const n = feats.captions.length;
  $("map-caption").textContent = !drawn ? "No report with positions to show." :
    (n > 1 ? n + " reports. " : "") + feats.captions.join(" ") + note;
  view.scrollIntoView({ block: "start" });
}

// Draws the features on an equirectangular map (longitude scaled by the cosine of the mean
// latitude) fitted to them; false when there is nothing to draw.
function drawMap(feats: Features, basemap: Basemap | null): boolean {
  const map = $("map");
  map.replaceChildren();
  const rect = map.getBoundingClientRect();
  const W = Math.max(300, Math.round(rect.width)), H = Math.max(200, Math.round(rect.height));
  map.setAttribute("viewBox", "0 0 " + W + " " + H);
  const points: Point[] = [];
  for (const u of feats.units) points.push(u.at);
  for (const v of feats.vectors) { points.push(v.from); if (v.to) points.push(v.to); }
  for (const c of feats.cpas) points.push(c.a, c.b);
  for (const a of feats.areas) points.push(...a.ring);
  if (!points.length) return false;
  // Across the antimeridian: every longitude is taken within 180° of the first feature's, so a
  // report at 179.9°E and 179.9°W is drawn in one piece (at 179.9 and 180.1).
  const ref = points[0][0];
  for (const p of points) p[0] = unwrapLon(p[0], ref);
  const box: Box = [Infinity, Infinity, -Infinity, -Infinity];
  for (const p of points) grow(box, p[0], p[1]);
  const lon0 = (box[0] + box[2]) / 2, lat0 = (box[1] + box[3]) / 2;
  const cosLat = Math.max(0.05, Math.cos(lat0 * Math.PI / 180));
  // At least 0.6° across, so a close-quarters encounter shows with the coast around it; room
  // at the sides for labels.
  const MIN_SPAN = 0.6;
  const spanX = Math.max((box[2] - box[0]) * cosLat, MIN_SPAN), spanY = Math.max(box[3] - box[1], MIN_SPAN);
  const k = Math.min(Math.max(60, W - 320) / spanX, Math.max(60, H - 100) / spanY);
  const X = (lon: number): number => W / 2 + (lon - lon0) * cosLat * k;
  const Y = (lat: number): number => H / 2 - (lat - lat0) * k;
  const view = { lonMin: lon0 - W / 2 / (cosLat * k), lonMax: lon0 + W / 2 / (cosLat * k), latMin: lat0 - H / 2 / k, latMax: lat0 + H / 2 / k };
  const f1 = (n: number): string => n.toFixed(1);

  const defs = svgEl("defs", {}, map);
  for (const [role, colour] of [["own", "#1a4fa0"], ["other", "#b00020"], ["aircraft", "#5a2d91"]]) {
    const mk = svgEl("marker", { id: "arrow-" + role, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" }, defs);
    svgEl("path", { d: "M0 0L10 5L0 10z", fill: colour }, mk);
  }

  // The basemap, drawn once more 360° east or west wherever the view reaches past ±180°.
  const base = svgEl("g", { class: "basemap", "aria-hidden": "true" }, map);
  if (basemap) {
    const margin = 4 / k;
    const meets = (b: Box, off: number): boolean => b[0] + off <= view.lonMax + margin && b[2] + off >= view.lonMin - margin &&
      b[1] <= view.latMax + margin && b[3] >= view.latMin - margin;
    for (let off = -720; off <= 720; off += 360) {
      for (const country of basemap.countries) {
        let d = "";
        for (const poly of country.polys) {
          if (!meets(poly.box, off)) continue;
          for (const r of poly.rings) d += ringPath(r, off);
        }
        if (d) svgEl("title", {}, svgEl("path", { class: "land", d, "fill-rule": "evenodd" }, base), country.name);
      }
      let d = "";
      for (const arc of basemap.arcs) if (meets(arc.box, off)) d += arcPath(arc.pts, off);
      if (d) svgEl("path", { class: "border", d }, base);
    }
  }
  // Points closer than a pixel to the last one drawn add nothing: skipped.
  function ringPath(pts: Float64Array, off: number): string {
    let d = "", lx = 0, ly = 0, n = 0;
    const last = pts.length - 2;
    for (let i = 0; i < pts.length; i += 2) {
      const x = X(pts[i] + off), y = Y(pts[i + 1]);
      if (i && i !== last && Math.abs(x - lx) + Math.abs(y - ly) < 0.8) continue;
      d += (i ? "L" : "M") + f1(x) + " " + f1(y);
      lx = x; ly = y; n++;
    }
    return n > 2 ? d + "Z" : "";
  }
  // Coasts and borders, each arc once. Where a shape is split along the 180° meridian (Fiji's
  // islands) or runs along the South Pole (Antarctica), the split is neither: not stroked.
  function arcPath(pts: Float64Array, off: number): string {
    let d = "", lx = 0, ly = 0;
    const last = pts.length - 2;
    for (let i = 0; i < pts.length; i += 2) {
      const x = X(pts[i] + off), y = Y(pts[i + 1]);
      const cut = i && ((pts[i + 1] < -89.9 && pts[i - 1] < -89.9) || (onMeridian(pts[i]) && onMeridian(pts[i - 2])));
      if (!i || cut) { d += "M" + f1(x) + " " + f1(y); lx = x; ly = y; continue; }
      if (i !== last && Math.abs(x - lx) + Math.abs(y - ly) < 0.8) continue;
      d += "L" + f1(x) + " " + f1(y);
      lx = x; ly = y;
    }
    return d;
  }

  // Parallels and meridians, labelled at the left and bottom edges.
  const grid = svgEl("g", { class: "graticule", "aria-hidden": "true" }, map);
  const steps = [0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 45, 90];
  const latStep = steps.find((s) => (view.latMax - view.latMin) / s <= 6) || 90;
  const lonStep = steps.find((s) => (view.lonMax - view.lonMin) / s <= 8) || 90;
  const obstacles: Rect[] = [];
  const clean = (v: number): number => Number(v.toFixed(2));
  let d = "";
  for (let lat = Math.ceil(view.latMin / latStep) * latStep; lat <= view.latMax; lat += latStep) {
    if (Math.abs(lat) > 90) continue;
    d += "M0 " + f1(Y(lat)) + "H" + W;
    svgEl("text", { class: "grid-label", x: 4, y: f1(Y(lat) - 3) }, grid, clean(Math.abs(lat)) + "°" + (lat >= 0 ? "N" : "S"));
    obstacles.push({ x: 0, y: Y(lat) - 15, width: 50, height: 14 });
  }
  for (let lon = Math.ceil(view.lonMin / lonStep) * lonStep; lon <= view.lonMax; lon += lonStep) {
    d += "M" + f1(X(lon)) + " 0V" + H;
    if (X(lon) > W - 50) continue;
    let w = ((lon % 360) + 540) % 360 - 180;
    if (w === -180) w = 180;
    svgEl("text", { class: "grid-label", x: f1(X(lon) + 3), y: H - 5 }, grid, clean(Math.abs(w)) + "°" + (w > 0 ? "E" : w < 0 ? "W" : ""));
    obstacles.push({ x: X(lon), y: H - 17, width: 55, height: 14 });
  }
  svgEl("path", { class: "grid", d }, grid);

  // Scale bar, nautical miles (one minute of latitude).
  const nmPerPx = 60 / k;
  const nm = [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000].find((n) => n / nmPerPx >= 80) || 5000;
  const scale = svgEl("g", { class: "scale", "aria-hidden": "true" }, map);
  const sx = W - 20 - nm / nmPerPx, sy = H - 28;
  svgEl("line", { x1: f1(sx), y1: sy, x2: W - 20, y2: sy }, scale);
  svgEl("line", { x1: f1(sx), y1: sy - 4, x2: f1(sx), y2: sy + 4 }, scale);
  svgEl("line", { x1: W - 20, y1: sy - 4, x2: W - 20, y2: sy + 4 }, scale);
  svgEl("text", { x: f1(W - 20 - nm / nmPerPx / 2), y: sy - 7, "text-anchor": "middle" }, scale, nm + " nm");
  obstacles.push({ x: sx - 4, y: sy - 22, width: nm / nmPerPx + 8, height: 30 });

  const labels: Label[] = [];
  const areas = svgEl("g", { class: "areas" }, map);
  for (const a of feats.areas) {
    const g = svgEl("g", { class: "area" }, areas);
    svgEl("path", { d: "M" + a.ring.map((p) => f1(X(p[0])) + " " + f1(Y(p[1]))).join("L") + "Z" }, g);
    const top = a.ring.reduce((t, p) => (p[1] > t[1] ? p : t));
    labels.push({ text: svgEl("text", {}, g, a.label), x: X(top[0]), y: Y(top[1]) - 4, around: false });
  }
  const vectors = svgEl("g", { class: "vectors" }, map);
  const along = (x1: number, y1: number, x2: number, y2: number): void => {
    const n = Math.ceil(Math.hypot(x2 - x1, y2 - y1) / 6);
    for (let i = 0; i <= n; i++) obstacles.push({ x: x1 + (x2 - x1) * i / n - 2, y: y1 + (y2 - y1) * i / n - 2, width: 4, height: 4 });
  };
  for (const v of feats.vectors) {
    const x1 = X(v.from[0]), y1 = Y(v.from[1]);
    let x2: number, y2: number;
    if (v.to) { x2 = X(v.to[0]); y2 = Y(v.to[1]); }
    else { const h = (v.heading ?? 0) * Math.PI / 180; x2 = x1 + (v.px ?? 0) * Math.sin(h); y2 = y1 - (v.px ?? 0) * Math.cos(h); }
    svgEl("line", { class: "vector " + v.role, x1: f1(x1), y1: f1(y1), x2: f1(x2), y2: f1(y2), "marker-end": "url(#arrow-" + v.role + ")" }, vectors);
    along(x1, y1, x2, y2);
  }
  const units = svgEl("g", { class: "units" }, map);
  for (const u of feats.units) {
    const g = svgEl("g", { class: "unit " + u.role }, units);
    const x = X(u.at[0]), y = Y(u.at[1]);
    const shape = u.role === "own" ? svgEl("circle", { cx: f1(x), cy: f1(y), r: 6 }, g)
      : u.role === "other" ? svgEl("path", { d: "M" + f1(x) + " " + f1(y - 7) + "l7 7l-7 7l-7 -7z" }, g)
      : u.role === "aircraft" ? svgEl("path", { d: "M" + f1(x) + " " + f1(y - 7) + "l6 12h-12z" }, g)
      : svgEl("rect", { x: f1(x - 5), y: f1(y - 5), width: 10, height: 10 }, g);
    shape.setAttribute("class", "mark");
    obstacles.push({ x: x - 8, y: y - 8, width: 16, height: 16 });
    labels.unshift({ text: svgEl("text", {}, g, u.name), x, y, around: true });
  }
  // The points of closest approach on top: the vectors' arrowheads end on them.
  const cpas = svgEl("g", { class: "cpas" }, map);
  for (const c of feats.cpas) {
    const g = svgEl("g", { class: "cpa" }, cpas);
    const ax = X(c.a[0]), ay = Y(c.a[1]), bx = X(c.b[0]), by = Y(c.b[1]);
    svgEl("line", { x1: f1(ax), y1: f1(ay), x2: f1(bx), y2: f1(by) }, g);
    svgEl("circle", { cx: f1(ax), cy: f1(ay), r: 4 }, g);
    svgEl("circle", { cx: f1(bx), cy: f1(by), r: 4 }, g);
    along(ax, ay, bx, by);
    labels.push({ text: svgEl("text", {}, g, c.label), x: (ax + bx) / 2, y: (ay + by) / 2, around: true, far: true });
  }
  // Labels go where they cover the fewest other labels, marks and lines.
  for (const l of labels) placeLabel(l, obstacles, W, H);
  return true;
}

function placeLabel(l: Label, obstacles: Rect[], W: number, H: number): void {
  const near: [number, number, string][] = [[10, -8, "start"], [10, 16, "start"], [-10, -8, "end"], [-10, 16, "end"], [0, -12, "middle"], [0, 24, "middle"]];
  const far = near.map(([dx, dy, a]): [number, number, string] => [dx * 2.5, dy < 0 ? dy - 14 : dy + 14, a]);
  const candidates: [number, number, string][] = !l.around ? [[0, 0, "middle"], [0, 18, "middle"]] : l.far ? near.concat(far) : near.concat(far);
  const overlap = (a: Rect, b: Rect): number => Math.max(0, Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x)) *
    Math.max(0, Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y));
  let best: [number, number, string] = candidates[0], bestCost = Infinity;
  for (const [dx, dy, anchor] of candidates) {
    l.text.setAttribute("x", (l.x + dx).toFixed(1));
    l.text.setAttribute("y", (l.y + dy).toFixed(1));
    l.text.setAttribute("text-anchor", anchor);
    const b = l.text.getBBox();
    let cost = 0;
    for (const o of obstacles) cost += overlap(b, o);
    const inside = overlap(b, { x: 2, y: 2, width: W - 4, height: H - 4 });
    cost += (b.width * b.height - inside) * 4;
    if (cost < bestCost) { bestCost = cost; best = [dx, dy, anchor]; }
    if (!cost) break;
  }
  l.text.setAttribute("x", (l.x + best[0]).toFixed(1));
  l.text.setAttribute("y", (l.y + best[1]).toFixed(1));
  l.text.setAttribute("text-anchor", best[2]);
  const b = l.text.getBBox();
  obstacles.push({ x: b.x - 2, y: b.y - 1, width: b.width + 4, height: b.height + 2 });
}

$("map-close").addEventListener("click", () => { $("map-view").hidden = true; });
