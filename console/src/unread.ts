// What is unread on each line: the messages received after the newest one this browser showed
// when the line was last open. Kept in the browser's local storage for each member (a desk's
// browser, not the node, knows what its screen has shown).

import type { Message } from "./api";

const SEEN_KEY = "adi.seen.";

function seen(member: string): Record<string, number> {
  try {
    const kept = JSON.parse(localStorage.getItem(SEEN_KEY + member) || "{}");
    return kept && typeof kept === "object" ? kept : {};
  } catch {
    return {};
  }
}

/** The line was shown with what it holds of `inbox`: all of it is read. */
export function markSeen(member: string, line: string, inbox: Message[]): void {
  const newest = Math.max(0, ...inbox.filter((m) => m.line === line).map((m) => m.received_ms));
  const marks = seen(member);
  if ((marks[line] || 0) >= newest) return;
  marks[line] = newest;
  try { localStorage.setItem(SEEN_KEY + member, JSON.stringify(marks)); } catch { /* kept for this page only */ }
}

/** How many messages of `inbox` on `line` arrived after the line was last shown. */
export function unreadOn(member: string, line: string, inbox: Message[]): number {
  const since = seen(member)[line] || 0;
  return inbox.filter((m) => m.line === line && m.sender !== member && m.received_ms > since).length;
}
