// Who the page is signed in as, and for which member: read by every part of the page, set only
// here.

import type { Session } from "./api";

export let session: Session | null = null;
/** This node's member code. */
export let me = "";

export function setSession(s: Session | null): void {
  session = s;
}

export function setMember(code: string): void {
  me = code;
}

/** Whether this desk's role may send and answer. */
export function canSend(): boolean {
  return !!session && ["duty", "principal", "admin"].includes(session.role);
}

/** Whether this desk's role may answer (not an auditor's or a translator's). */
export function canAnswer(): boolean {
  return !!session && session.role !== "auditor" && session.role !== "translator";
}
