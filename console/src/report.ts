// Structured reports in the compose form: the working groups and templates the node offers, and
// the COLREGs situation it suggests for an encounter at sea.

import { asApiError, call, type ApiError } from "./api";
import { $, said } from "./dom";
import { reportWritten, setSchemas } from "./fields";
import { cpaText } from "./map";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

export function composeError(text: string): void {
  $("compose-error").textContent = text;
  $("action-error").textContent = text;
}

let schemasLoaded = false;
export async function loadSchemas(): Promise<void> {
  if (schemasLoaded) return;
  try {
    const s = await call<{ working_groups?: { tag: string; title: string }[]; kinds?: Record<string, Json> }>("GET", "/api/v1/schemas");
    const pick = $("compose-ewg");
    for (const g of s.working_groups || []) {
      const o = document.createElement("option");
      o.value = g.tag; o.textContent = g.title + " (" + g.tag + ")";
      pick.appendChild(o);
    }
    setSchemas(s.kinds || {});
    const templates = $("compose-template");
    for (const [kind, schema] of Object.entries(s.kinds || {})) {
      (schema.examples || []).forEach((example: Json, i: number) => {
        const o = document.createElement("option");
        o.value = kind + "#" + i;
        o.textContent = schema.title + (example.stage ? " (" + example.stage + ")" : "");
        o.dataset.example = JSON.stringify(example, null, 2);
        templates.appendChild(o);
      });
    }
    schemasLoaded = true;
  } catch { /* no list of working groups: the report goes untagged */ }
}

const report = () => $<HTMLTextAreaElement>("compose-form");

// The report in the compose form, parsed; null (and said on the page) when there is none.
function composedReport(): Json {
  const text = report().value.trim();
  if (!text) { composeError("Write or paste an encounter-at-sea report in “Report (form JSON)” first."); return null; }
  try { return JSON.parse(text); }
  catch (e) { composeError("The report (form JSON) is not valid JSON: " + asApiError(e).message); return null; }
}

const trackOf = (u: Json) => ({ position: u.position, course_deg: u.course_deg, speed_kn: u.speed_kn });
// The situation the node suggested, written into the report only when the operator confirms it.
let suggested: string | null = null;

/** Sets up the report's controls; `shown` puts a refusal on the page. */
export function setUpReports(shown: (e: ApiError) => void): void {
  $("suggest-situation").addEventListener("click", async () => {
    $("suggestion-box").hidden = true; suggested = null;
    const r = composedReport();
    if (!r) return;
    if (r.kind !== "encounter-at-sea" || !r.reporting_unit || !Array.isArray(r.other_units) || !r.other_units[0]) {
      composeError("A situation is suggested for an encounter-at-sea report with a reporting_unit and at least one of other_units.");
      return;
    }
    try {
      const s = await call<Json>("POST", "/api/v1/cpa", { own: trackOf(r.reporting_unit), other: trackOf(r.other_units[0]) });
      suggested = s.approach.situation;
      $("suggestion").textContent = s.approach.situation + " · " + cpaText(s.approach) + " · " + (s.rule ? "Rule " + s.rule + ": " : "") + s.advice;
      $("suggestion-box").hidden = false;
      $("compose-error").textContent = ""; $("action-error").textContent = "";
    } catch (e) { const err = asApiError(e); shown(err); $("compose-error").textContent = said(err); }
  });

  $("confirm-situation").addEventListener("click", () => {
    const r = composedReport();
    if (!r || !suggested) return;
    r.situation = suggested;
    report().value = JSON.stringify(r, null, 2);
    // The fields follow; the suggestion, now part of the report, is withdrawn.
    report().dispatchEvent(new Event("input", { bubbles: true }));
  });

  // A template fills the report with an example of its kind, for the officer to edit; nothing is
  // sent until Send.
  const templates = $<HTMLSelectElement>("compose-template");
  templates.addEventListener("change", () => {
    const o = templates.selectedOptions[0];
    if (!o || !o.dataset.example) return;
    report().value = o.dataset.example;
    report().dispatchEvent(new Event("input", { bubbles: true }));
    templates.value = "";
  });
  // A suggestion is for the report it was made from: editing the report withdraws it. The fields
  // below follow the report as written.
  report().addEventListener("input", () => {
    $("suggestion-box").hidden = true; suggested = null;
    reportWritten();
  });
}

/** The suggestion withdrawn (the report was sent). */
export function clearSuggestion(): void {
  $("suggestion-box").hidden = true;
  suggested = null;
}
