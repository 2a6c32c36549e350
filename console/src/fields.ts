// The report field by field: inputs drawn from the kind's JSON Schema, writing the report's JSON
// in the compose form, which stays what is sent.

import { $, smallButton } from "./dom";

// JSON Schema as the node serves it for each kind (GET /api/v1/schemas), read structurally, and
// the report being edited: both are open JSON.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Schema = any;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

let kindSchemas: Record<string, Schema> = {};
let editing: Json = null;
let fromEditor = false;
const LONG_TEXT = ["narrative", "text", "forces", "reason", "description"];

function def(root: Schema, s: Schema): Schema {
  for (let n = 0; s && s.$ref && n < 20; n++) s = (root.$defs || {})[s.$ref.split("/").pop()];
  return s || {};
}
// A schema without its "or null".
function plain(root: Schema, s: Schema): Schema {
  s = def(root, s);
  if (s.oneOf) {
    const alts = s.oneOf.filter((a: Schema) => a.type !== "null");
    if (alts.length === 1 && alts.length < s.oneOf.length) return def(root, alts[0]);
  }
  if (Array.isArray(s.type)) return Object.assign({}, s, { type: s.type.find((t: string) => t !== "null") });
  return s;
}
function blank(root: Schema, s: Schema): Json {
  s = plain(root, s);
  if (s.const !== undefined) return s.const;
  if (s.enum) return s.enum[0];
  if (s.oneOf) return blank(root, s.oneOf[0]);
  switch (s.type) {
    case "object": { const o: Json = {}; for (const k of s.required || []) o[k] = blank(root, s.properties[k]); return o; }
    case "array": return [];
    case "boolean": return false;
    case "number": case "integer": return 0;
    default: return "";
  }
}
function writeBack(): void {
  fromEditor = true;
  $<HTMLTextAreaElement>("compose-form").value = JSON.stringify(editing, null, 2);
  $("compose-form").dispatchEvent(new Event("input", { bubbles: true }));
  fromEditor = false;
}
function group(label: string, path: string): HTMLFieldSetElement {
  const fs = document.createElement("fieldset"); fs.dataset.path = path;
  const lg = document.createElement("legend"); lg.textContent = label; fs.appendChild(lg);
  return fs;
}
const nameOf = (k: string | number): string => String(k).replace(/_/g, " ");

// The input or group of inputs for holder[key], whose schema is `schema`; `path` is the field's
// path as the node names it in a refusal.
function fieldFor(root: Schema, schema: Schema, holder: Json, key: string | number, path: string, label: string, optional: boolean): HTMLElement | null {
  const s = plain(root, schema);
  if (s.const !== undefined) { holder[key] = s.const; return null; }
  if (s.oneOf) {
    // An area: one of several shapes, each an object of one field.
    const fs = group(label, path);
    const names: string[] = s.oneOf.map((a: Schema) => Object.keys(def(root, a).properties || {})[0]);
    const pick = document.createElement("select"); pick.setAttribute("aria-label", label + ": shape");
    for (const n of names) { const o = document.createElement("option"); o.value = n; o.textContent = nameOf(n); pick.appendChild(o); }
    const value = holder[key];
    const current = names.find((n) => value && value[n] !== undefined) || names[0];
    if (!value || value[current] === undefined) holder[key] = blank(root, s.oneOf[names.indexOf(current)]);
    pick.value = current;
    pick.addEventListener("change", () => { holder[key] = blank(root, s.oneOf[names.indexOf(pick.value)]); writeBack(); drawFields(); });
    fs.appendChild(pick);
    const shape = def(root, s.oneOf[names.indexOf(current)]);
    const inner = fieldFor(root, shape.properties[current], holder[key], current, path + "." + current, nameOf(current), false);
    if (inner) fs.appendChild(inner);
    return fs;
  }
  if (s.type === "object") {
    const fs = group(label, path);
    if (holder[key] === undefined || holder[key] === null) {
      if (optional) {
        fs.appendChild(smallButton("Add " + label, () => { holder[key] = blank(root, s); writeBack(); drawFields(); }));
        return fs;
      }
      holder[key] = blank(root, s);
    }
    // The required fields in the form's own order (the schema lists them so), then the others.
    const props = s.properties || {};
    const keys: string[] = (s.required || []).filter((k: string) => k in props);
    for (const k of Object.keys(props)) if (!keys.includes(k)) keys.push(k);
    for (const k of keys) {
      const el = fieldFor(root, props[k], holder[key], k, path ? path + "." + k : k, nameOf(k), !(s.required || []).includes(k));
      if (el) fs.appendChild(el);
    }
    if (optional) fs.appendChild(smallButton("Remove " + label, () => { delete holder[key]; writeBack(); drawFields(); }));
    return fs;
  }
  if (s.type === "array") {
    const fs = group(label, path);
    if (!Array.isArray(holder[key])) holder[key] = [];
    const list = holder[key];
    list.forEach((_item: Json, i: number) => {
      const row = document.createElement("div");
      const el = fieldFor(root, s.items, list, i, path + "[" + i + "]", label + " " + (i + 1), false);
      if (el) row.appendChild(el);
      row.appendChild(smallButton("Remove", () => { list.splice(i, 1); writeBack(); drawFields(); }));
      fs.appendChild(row);
    });
    fs.appendChild(smallButton("Add to " + label, () => { list.push(blank(root, s.items)); writeBack(); drawFields(); }));
    return fs;
  }
  // One value.
  const wrap = document.createElement("label");
  wrap.appendChild(document.createTextNode(label + " "));
  let input: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;
  const value = holder[key];
  if (s.enum) {
    input = document.createElement("select");
    for (const v of (optional ? [""] : []).concat(s.enum)) {
      const o = document.createElement("option"); o.value = v; o.textContent = v === "" ? "(none)" : v; input.appendChild(o);
    }
    input.value = value === undefined || value === null ? "" : value;
  } else if (s.type === "boolean") {
    const box = document.createElement("input"); box.type = "checkbox"; box.checked = !!value; input = box;
  } else if (s.type === "number" || s.type === "integer") {
    input = document.createElement("input"); input.type = "number"; input.step = "any";
    input.value = value === undefined || value === null ? "" : value;
  } else {
    input = LONG_TEXT.includes(String(key)) ? document.createElement("textarea") : document.createElement("input");
    input.value = value === undefined || value === null ? "" : value;
  }
  input.dataset.path = path;
  if (s.description) input.title = s.description;
  const read = () => {
    if (s.type === "boolean") return (input as HTMLInputElement).checked;
    if (input.value === "") return optional ? undefined : (s.type === "number" || s.type === "integer" ? null : "");
    return s.type === "number" || s.type === "integer" ? Number(input.value) : input.value;
  };
  input.addEventListener(s.enum || s.type === "boolean" ? "change" : "input", () => {
    const v = read();
    if (v === undefined) delete holder[key]; else holder[key] = v;
    input.removeAttribute("aria-invalid");
    writeBack();
  });
  wrap.appendChild(input);
  return wrap;
}

export function drawFields(): void {
  const box = $("report-fields");
  box.replaceChildren();
  if (!editing) {
    box.textContent = "Start a report from an example, or write one with a known kind, to fill it in here.";
    return;
  }
  const root = kindSchemas[editing.kind];
  const holder = { report: editing };
  const el = fieldFor(root, root, holder, "report", "", root.title || editing.kind, false);
  editing = holder.report;
  if (el) box.appendChild(el);
}

// A refusal that names a field of the report marks that field.
export function markField(field: string | undefined): void {
  if (!field || !field.startsWith("form")) return;
  const path = field === "form" ? "" : field.slice("form.".length);
  const el = [...$("report-fields").querySelectorAll<HTMLElement>("[data-path]")].find((x) => x.dataset.path === path);
  if (!el) return;
  $<HTMLDetailsElement>("report-fields-box").open = true;
  el.setAttribute("aria-invalid", "true");
  el.focus();
}


/** Sets the schemas of the kinds of report the node knows. */
export function setSchemas(kinds: Record<string, Schema>): void {
  kindSchemas = kinds;
}

/** The report's JSON as the officer wrote it: the fields follow it, unless they wrote it. */
export function reportWritten(): void {
  if (fromEditor) return;
  try {
    const r = JSON.parse($<HTMLTextAreaElement>("compose-form").value);
    editing = r && typeof r === "object" && kindSchemas[r.kind] ? r : null;
  } catch { editing = null; }
  drawFields();
}

/** No report any more (it was sent). */
export function clearFields(): void {
  editing = null;
  drawFields();
}
