// The node's operator API as the console reads it: requests, errors, and the shapes of what it
// answers (docs/WIRE.md and the node's OpenAPI document are the reference).

import { session } from "./session";

/** A refusal from the node: its status, its sentence, and the field at fault when it names one. */
export class ApiError extends Error {
  constructor(message: string, readonly status: number, readonly field?: string) {
    super(message);
  }
}

/** The fields of an error the page reads, whatever threw it. */
export function asApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  return new ApiError(e instanceof Error ? e.message : String(e), 0);
}

// A request to the node: its JSON answer, and the path of the next page when the answer is a
// page of a longer list (its `Link: <...>; rel="next"`).
export async function send<T = unknown>(method: string, path: string, body?: unknown): Promise<{ value: T; next: string | null }> {
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (session && method !== "GET") headers["X-CSRF-Token"] = session.csrf;
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  const text = await r.text();
  const value = text ? JSON.parse(text) : null;
  if (!r.ok) throw new ApiError((value && value.message) || r.statusText, r.status, (value && value.field) || undefined);
  const link = /<(\/api\/v1\/[^>]*)>\s*;\s*rel="?next"?/.exec(r.headers.get("Link") || "");
  return { value: value as T, next: link ? link[1] : null };
}

export async function call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  return (await send<T>(method, path, body)).value;
}

// A list's first `pages` pages, each followed from the one before; `more` says whether the list
// goes on past them.
export async function callPages<T>(path: string, pages: number): Promise<{ items: T[]; more: boolean }> {
  const items: T[] = [];
  let next: string | null = path;
  for (let n = 0; next && n < pages; n += 1) {
    const page: { value: T[]; next: string | null } = await send<T[]>("GET", next);
    items.push(...page.value);
    next = page.next;
  }
  return { items, more: !!next };
}

export type Precedence = "FLASH" | "IMMEDIATE" | "PRIORITY" | "ROUTINE";

export interface Session {
  name: string;
  role: string;
  csrf: string;
  expires_ms: number;
}

export interface Receipt {
  member: string;
  kind: string;
  operator?: string | null;
  signed_ms: number;
}

export interface Recipient {
  member: string;
  state: string;
  decrypted_ms?: number | null;
  detail?: string | null;
  deadline_ms?: number | null;
}

/** A report's fields, as its kind's JSON Schema has them. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Form = { kind: string } & Record<string, any>;

export interface Approach {
  own: string;
  other: string;
  approach: {
    tcpa_min: number | null;
    cpa_nm: number;
    range_nm: number;
    bearing_deg: number;
    situation: string;
    cpa_own: Position;
    cpa_other: Position;
  };
}

export interface Position {
  lat: number;
  lon: number;
}

export interface Attachment {
  sha256: string;
  name: string;
  media_type: string;
  size: number;
  chunks: number;
  held: number;
}

/** Uploads a file to attach; its SHA-256, which a message then names. */
export async function upload(file: File): Promise<string> {
  const headers: Record<string, string> = { "Content-Type": file.type || "application/octet-stream" };
  if (session) headers["X-CSRF-Token"] = session.csrf;
  const r = await fetch("/api/v1/attachments?name=" + encodeURIComponent(file.name), { method: "POST", headers, body: file, credentials: "same-origin" });
  const text = await r.text();
  const value = text ? JSON.parse(text) : null;
  if (!r.ok) throw new ApiError(file.name + ": " + ((value && value.message) || r.statusText), r.status, (value && value.field) || undefined);
  return value.sha256 as string;
}

export interface Message {
  id: string;
  line: string;
  sender: string;
  precedence: Precedence;
  class: string;
  subject?: string | null;
  body?: string | null;
  form?: Form | null;
  form_text?: string | null;
  ewg?: string | null;
  ack_required: boolean;
  deadline_ms?: number | null;
  created_ms: number;
  received_ms: number;
  receipts?: Receipt[];
  recipients?: Recipient[];
  approaches?: Approach[];
  /** The files attached, with how many of each one's chunks this node holds. */
  attachments?: Attachment[];
  /** When this node's retention pruned its content, after an archived export held it. */
  pruned_ms?: number | null;
  /** This desk's answer, found by the page. */
  ours?: Receipt;
  answered?: boolean;
}

export interface Line {
  id: string;
  scope: string;
  members: string[];
  title?: string | null;
}

export interface Decision {
  id: string;
  state: string;
  text: string;
  text_sha256: string;
  parties: string[];
  missing: string[];
}

export interface Alarm {
  id: string;
  kind: string;
  detail: string;
  message?: string | null;
  acked_ms?: number | null;
  cleared_ms?: number | null;
  last_raised_ms: number;
}

export interface Link {
  member: string;
  state: string;
  last_rtt_ms?: number | null;
  oldest_queued_age_ms?: number | null;
}

export interface Evidence {
  at_ms: number;
  member: string;
  detail: string;
  held_id: string;
  offered_id: string;
}

export interface Member {
  code: string;
  name: string;
  community?: string;
  suspended?: boolean;
}

export interface RosterFile {
  members: Member[];
  suspended?: string[];
  [other: string]: unknown;
}

export interface Roster {
  name: string;
  number: number;
  hash: string;
  first_hash: string;
  rotation?: { version: number; waiting_for: string[] } | null;
  members: Member[];
  file: RosterFile;
}

export interface Proposal {
  number: number;
  hash: string;
  changes: string[];
  signed_by: string[];
  lacking?: string | null;
  signed_here: boolean;
}

export interface Health {
  member: string;
  pair?: string[];
}

export interface Urgent {
  urgent: number;
  overdue: number;
}
