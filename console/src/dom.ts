// Small helpers for drawing the page.

import { ApiError } from "./api";

/** The element with this id; the page's HTML holds every id the script names. */
export function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error("the page has no element #" + id);
  return el as T;
}

/** A form's control by name. */
export function field<T extends HTMLElement = HTMLInputElement>(form: HTMLFormElement, name: string): T {
  return form.elements.namedItem(name) as T;
}

export function cell(row: HTMLElement, text: string): HTMLTableCellElement {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
  return td;
}

export function smallButton(text: string, onClick: () => void): HTMLButtonElement {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.addEventListener("click", onClick);
  return b;
}

// A time in UTC, and in the browser's own zone with its date and the zone's name.
const LOCAL = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short" });
export function when(ms: number): string {
  const d = new Date(ms);
  return d.toISOString().replace("T", " ").slice(0, 19) + " UTC / " + LOCAL.format(d);
}

/** The time left to a deadline, or how long ago it passed. */
export function left(ms: number): string {
  const s = Math.round((ms - Date.now()) / 1000);
  if (s <= 0) return "overdue by " + Math.round(-s / 60) + " min";
  return s < 120 ? s + " s left" : Math.round(s / 60) + " min left";
}

// An error as the operator reads it: the API's sentence, and the field at fault when it names one.
export function said(e: ApiError): string {
  return e.field && !e.message.includes(e.field) ? e.message + " (field " + e.field + ")" : e.message;
}
