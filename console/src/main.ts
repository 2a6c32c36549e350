// The operator console: the watch (needs action first, the lines, alarms and links), the alarm
// in every form a duty officer can be reached by, and the page's life with its node (the event
// stream, the session's watch, the move to the other node of a pair).

import {
  asApiError, call, callPages, upload, type Alarm, type Decision, type Evidence, type Health, type Line,
  type Link, type Message, type Precedence, type Session, type Urgent,
} from "./api";
import { notify, setUpNotifications, showCount } from "./alerts";
import { $, cell, left, said, smallButton, when } from "./dom";
import { clearFields, markField } from "./fields";
import { hasMap, openMap } from "./map";
import { clearSuggestion, composeError, loadSchemas, setUpReports } from "./report";
import { clearRoster, rosterNow, rosterShown, setUpRoster, showRoster } from "./roster";
import { canAnswer, canSend, me, session, setMember, setSession } from "./session";
import { setUpSound, startRinging, stopRinging } from "./sound";
import { markSeen, unreadOn } from "./unread";
import { wordCount } from "./words";

let events: EventSource | null = null;

// How many pages of each list the operator asked to see with its "More…" button.
const pages: Record<"inbox" | "line" | "alarms" | "evidence", number> = { inbox: 1, line: 1, alarms: 1, evidence: 1 };

const URGENT: string[] = ["FLASH", "IMMEDIATE"];
const PRECEDENCES: Precedence[] = ["FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE"];
let currentLine = "";



async function showLine() {
  const current = linesNow.find((l) => l.id === currentLine);
  $("line-title").textContent = current ? lineName(current) + " (" + current.scope + ")" : "No line yet";
  if (!currentLine) return;
  $<HTMLAnchorElement>("export").href = "/api/v1/lines/" + currentLine + "/export";
  const { items: msgs, more } = await callPages<Message>("/api/v1/lines/" + currentLine + "/messages", pages.line);
  $("line-more").hidden = !more;
  // What the line holds is on screen now: read, and its unread count goes.
  markSeen(me, currentLine, inboxNow);
  $("line-items").querySelector("button[aria-current] .unread")?.remove();
  const body = $("conversation");
  body.replaceChildren();
  for (const m of msgs) {
    const tr = document.createElement("tr");
    tr.className = m.precedence + " " + m.class;
    tr.dataset.id = m.id;
    marked(tr, m);
    cell(tr, m.precedence); cell(tr, memberName(m.sender)); subjectCell(tr, m); cell(tr, when(m.created_ms));
    // Each member's answer: for this member's own messages, each recipient's state and the time
    // left; for the others', the receipts it has had.
    const states = (m.recipients || []).map((r) => r.member + ": " + r.state + (r.decrypted_ms ? " (decrypted)" : "") + (r.detail ? " — " + r.detail : ""));
    const heard = m.recipients && m.recipients.length ? [] : (m.receipts || []).filter((r) => r.kind !== "decrypted")
      .map((r) => r.member + ": " + r.kind + (r.operator ? " by " + r.operator : "") + " at " + when(r.signed_ms));
    const due = (m.recipients || []).map((r) => r.deadline_ms).filter((d): d is number => !!d);
    const answers = cell(tr, states.concat(heard).join("; "));
    if (due.length) { const d = document.createElement("div"); d.className = "due"; d.textContent = left(Math.min(...due)); answers.appendChild(d); }
    if (m.form && m.form.kind === "call-request") callWorkflow(tr.children[2] as HTMLElement, m as Message & { form: NonNullable<Message["form"]> }, msgs);
    body.appendChild(tr);
  }
  applyFilters();
  const decisions = (await callPages<Decision>("/api/v1/lines/" + currentLine + "/decisions", Infinity)).items;
  const list = $("decisions");
  list.replaceChildren();
  for (const d of decisions) {
    const li = document.createElement("li");
    li.textContent = d.state + ": " + d.text + (d.missing.length ? " (waiting for " + d.missing.join(", ") + ")" : "");
    if (d.state === "open" && d.parties.includes(me) && d.missing.includes(me) && canSend()) {
      for (const [label, verb] of [["Concur", "concur"], ["Decline", "decline"]] as const) {
        const b = document.createElement("button");
        b.textContent = label;
        b.addEventListener("click", async () => {
          // Cancel on the prompt sends nothing.
          const reason = verb === "decline" ? prompt("Why do you decline?") : "";
          if (reason === null) return;
          const body = verb === "decline" ? { reason } : { text_sha256: d.text_sha256 };
          try { await call("POST", "/api/v1/decisions/" + d.id + "/" + verb, body); $("action-error").textContent = ""; await showLine(); }
          catch (e) { shown(asApiError(e)); }
        });
        li.append(" ", b);
      }
    }
    list.appendChild(li);
  }
}

// A call request: the answers it has had on the line, and, to a member who has not answered it,
// a button to accept each proposed time, to postpone with a reason, or to decline.
function callWorkflow(td: HTMLElement, m: Message & { form: NonNullable<Message["form"]> }, msgs: Message[]): void {
  const box = document.createElement("div"); box.className = "call";
  const answers = msgs.filter((x): x is Message & { form: NonNullable<Message["form"]> } => !!x.form && x.form.kind === "call-answer" && x.form.request === m.id);
  const heard = answers.map((a) => a.sender + ": " + a.form.answer + (a.form.time_utc ? " " + a.form.time_utc : "") + (a.form.reason ? " (" + a.form.reason + ")" : ""));
  const state = document.createElement("span"); state.className = "call-answers";
  state.textContent = heard.length ? "Answers: " + heard.join("; ") : "Not answered yet";
  box.appendChild(state);
  if (m.sender !== me && canSend() && !answers.some((a) => a.sender === me)) {
    const answer = async (form: Record<string, unknown>) => {
      form.kind = "call-answer"; form.v = 1; form.request = m.id;
      try { await call("POST", "/api/v1/lines/" + currentLine + "/messages", { precedence: m.precedence, form }); $("action-error").textContent = ""; await showLine(); }
      catch (e) { shown(asApiError(e)); }
    };
    for (const t of (m.form.proposed_utc || []) as string[]) {
      const b = smallButton("Accept " + t, () => answer({ answer: "accept", time_utc: t }));
      b.className = "call-accept"; b.dataset.time = t;
      box.append(" ", b);
    }
    box.append(" ", smallButton("Postpone", () => { const reason = prompt("Why postpone, and until when?"); if (reason) answer({ answer: "postpone", reason }); }));
    // Cancel on the prompt sends nothing.
    box.append(" ", smallButton("Decline", () => {
      const reason = prompt("Why decline? (optional)");
      if (reason === null) return;
      answer(reason.trim() ? { answer: "decline", reason: reason.trim() } : { answer: "decline" });
    }));
  }
  td.appendChild(box);
}


function shown(error: unknown): void {
  const e = asApiError(error);
  $("action-error").textContent = said(e);
  if (e.status === 401) signedOut(e.message);
}

// The session ended behind the page: the watch is hidden, not cleared (what was on screen, a
// draft among it, comes back on signing in again), and the page goes on asking the node, with
// its watch cookie, whether something urgent waits; if so it rings and says so, and shows no
// content.
const URGENT_POLL_MS = 5000;
let urgentPoll: number | null = null;
function signedOut(message: string): void {
  setSession(null);
  if (events) { events.close(); events = null; }
  $("sign-in-error").textContent = message;
  $("sign-in-view").hidden = false;
  $("watch").hidden = true;
  $("wall-view").hidden = true;
  $("wall-toggle").hidden = true;
  $("sign-out").hidden = true;
  $("who").textContent = "";
  $("expiry").hidden = true;
  const banner = $("banner");
  banner.className = ""; delete banner.dataset.message; delete banner.dataset.alarm;
  stopRinging();
  showCount(0);
  if (!urgentPoll) { urgentPoll = window.setInterval(askUrgent, URGENT_POLL_MS); askUrgent(); }
}

async function askUrgent(): Promise<void> {
  let waiting: Urgent;
  try { waiting = await call<Urgent>("GET", "/console/urgent"); }
  catch { if (urgentPoll) clearInterval(urgentPoll); urgentPoll = null; return; }
  const n = waiting.urgent + waiting.overdue;
  const banner = $("banner");
  if (!n || session) { if (!session) { banner.className = ""; stopRinging(); showCount(0); } return; }
  $("banner-text").textContent = (waiting.urgent ? waiting.urgent + " urgent " + (waiting.urgent === 1 ? "message waits" : "messages wait") : "")
    + (waiting.urgent && waiting.overdue ? "; " : "")
    + (waiting.overdue ? waiting.overdue + " past " + (waiting.overdue === 1 ? "its" : "their") + " deadline" : "")
    + " for this desk. Sign in to read and answer.";
  $("banner-ack").hidden = true;
  banner.className = "on signed-out";
  showCount(n);
  // Nothing of what waits goes to the desktop either: only that something does.
  notify("urgent-" + n, "Urgent traffic waits for this desk", "Sign in to the ADI console to read and answer it.");
  startRinging();
}


// The session's end, told before it comes, from the node's own account of it (which moves
// while the page holds its event stream open).
const SESSION_CHECK_MS = 60000;
const EXPIRY_WARNING_MS = 5 * 60000;
let sessionCheck: number | null = null;
function watchExpiry(): void {
  const warn = () => {
    if (!session) return;
    const leftMs = session.expires_ms - Date.now();
    $("expiry").hidden = leftMs > EXPIRY_WARNING_MS;
    $("expiry").textContent = "This session ends at " + when(session.expires_ms) + " (" + left(session.expires_ms) + "): sign in again then.";
  };
  warn();
  if (sessionCheck) return;
  sessionCheck = window.setInterval(async () => {
    if (!session) return;
    try { const now = await call<Session>("GET", "/console/session"); if (session) setSession(Object.assign(session, now)); warn(); }
    catch (e) { const err = asApiError(e); if (err.status === 401) signedOut(err.message); }
  }, SESSION_CHECK_MS);
}


// The media types the page shows, in a frame sandboxed without script (text) or as an image. A
// PDF is shown as its pages drawn by the node as images: no browser parses a document a peer
// sent, and browsers refuse to run their PDF viewer in a sandbox without script anyway.
const SHOWN = ["image/png", "image/jpeg", "image/gif", "image/webp", "text/plain", "application/pdf"];

function bytes(n: number): string {
  return n < 1024 ? n + " B" : n < 1024 * 1024 ? (n / 1024).toFixed(0) + " KiB" : (n / 1024 / 1024).toFixed(1) + " MiB";
}

// A PDF's first pages, each an image the node drew, loaded as it scrolls into view; or why it
// cannot be shown.
async function pdfPages(path: string, name: string): Promise<HTMLElement> {
  const view = document.createElement("div");
  view.className = "pdf-pages";
  view.setAttribute("role", "group");
  view.setAttribute("aria-label", "Pages of " + name);
  try {
    const p = await call<{ pages: number; shown: number }>("GET", path + "/pages");
    for (let n = 1; n <= p.shown; n += 1) {
      const img = document.createElement("img");
      img.loading = "lazy";
      img.src = path + "/pages/" + n;
      img.alt = "Page " + n + " of " + p.pages + " of " + name;
      view.appendChild(img);
    }
    if (p.shown < p.pages) {
      const note = document.createElement("p");
      note.textContent = "The first " + p.shown + " of " + p.pages + " pages are shown; download the file to read the rest.";
      view.appendChild(note);
    }
  } catch (e) {
    const note = document.createElement("p");
    note.className = "error";
    note.textContent = "This PDF cannot be shown here (" + said(asApiError(e)) + "). Download it to open it.";
    view.appendChild(note);
  }
  return view;
}

// A message's files: each with its size and, once every chunk is here, a download link and,
// for an image, plain text or a PDF, a preview in the page (text in a frame sandboxed without
// script, a PDF as its pages drawn).
function fileList(m: Message): HTMLUListElement {
  const ul = document.createElement("ul");
  ul.className = "files";
  for (const a of m.attachments || []) {
    const li = document.createElement("li");
    li.dataset.sha256 = a.sha256;
    li.append(a.name + " (" + a.media_type + ", " + bytes(a.size) + ") ");
    const path = "/api/v1/messages/" + m.id + "/attachments/" + a.sha256;
    if (a.held < a.chunks) {
      li.append("arriving: " + a.held + " of " + a.chunks + " parts");
    } else {
      const link = document.createElement("a");
      link.href = path; link.download = a.name; link.className = "download";
      link.textContent = "Download"; link.setAttribute("aria-label", "Download " + a.name);
      li.appendChild(link);
      if (SHOWN.includes(a.media_type)) {
        const b = document.createElement("button");
        b.type = "button"; b.className = "preview"; b.textContent = "Preview";
        b.setAttribute("aria-label", "Preview " + a.name);
        b.addEventListener("click", async () => {
          const open = li.querySelector("iframe, img, .pdf-pages");
          if (open) { open.remove(); return; }
          let view: HTMLElement;
          if (a.media_type === "application/pdf") {
            view = await pdfPages(path, a.name);
          } else if (a.media_type.startsWith("image/")) {
            const img = document.createElement("img");
            img.src = path + "?inline=true"; img.alt = "Preview of " + a.name;
            view = img;
          } else {
            const frame = document.createElement("iframe");
            frame.setAttribute("sandbox", "");
            frame.src = path + "?inline=true"; frame.title = "Preview of " + a.name;
            view = frame;
          }
          if (!li.querySelector("iframe, img, .pdf-pages")) li.appendChild(view);
        });
        li.append(" ", b);
      }
    }
    ul.appendChild(li);
  }
  return ul;
}

// The files chosen or dropped to go with the next message.
let attaching: File[] = [];

function showAttaching(): void {
  $("compose-attached").replaceChildren(...attaching.map((f, i) => {
    const li = document.createElement("li");
    li.append(f.name + " (" + bytes(f.size) + ") ");
    li.appendChild(smallButton("Remove", () => { attaching.splice(i, 1); showAttaching(); }));
    return li;
  }));
}

function attach(files: FileList | null): void {
  for (const f of Array.from(files || [])) if (!attaching.some((g) => g.name === f.name && g.size === f.size)) attaching.push(f);
  showAttaching();
}

$<HTMLInputElement>("compose-files").addEventListener("change", (e) => {
  const input = e.target as HTMLInputElement;
  attach(input.files);
  input.value = "";
});
$("drop-zone").addEventListener("dragover", (e) => { e.preventDefault(); $("drop-zone").classList.add("over"); });
$("drop-zone").addEventListener("dragleave", () => $("drop-zone").classList.remove("over"));
$("drop-zone").addEventListener("drop", (e) => {
  e.preventDefault();
  $("drop-zone").classList.remove("over");
  attach(e.dataTransfer ? e.dataTransfer.files : null);
});

// Which messages' report text the operator has opened: kept open across re-renders.
const openTexts = new Set<string>();

// A message's subject, with its report's kind and working group, a map button when the report
// has positions, and the report's text to unfold.
function subjectCell(tr: HTMLTableRowElement, m: Message): HTMLTableCellElement {
  const td = cell(tr, m.subject || "");
  if (m.form && m.form.kind) {
    const kind = document.createElement("span");
    kind.className = "tag kind"; kind.textContent = m.form.kind;
    td.append(" ", kind);
  }
  if (m.ewg) {
    const g = document.createElement("span");
    g.className = "tag ewg"; g.textContent = m.ewg; g.title = "Experts' Working Group";
    td.append(" ", g);
  }
  if (hasMap(m)) {
    const b = document.createElement("button");
    b.type = "button"; b.className = "map-open"; b.textContent = "Map";
    b.setAttribute("aria-label", "Map of " + m.form!.kind + (m.subject ? ": " + m.subject : ""));
    b.addEventListener("click", () => openMap([m], "Map of " + m.form!.kind + " from " + m.sender).catch((e) => shown(asApiError(e))));
    td.append(" ", b);
  }
  if (m.attachments && m.attachments.length) td.appendChild(fileList(m));
  if (m.pruned_ms) {
    // Its words are in the archive; the record here keeps its signed envelope and receipts.
    const gone = document.createElement("div");
    gone.className = "pruned";
    gone.textContent = "Content pruned under retention on " + when(m.pruned_ms) + ", after it was archived";
    td.appendChild(gone);
  }
  if (m.body && !m.form_text) {
    // The message's whole text, read before it is answered.
    const text = document.createElement("div");
    text.className = "body"; text.textContent = m.body;
    td.appendChild(text);
  }
  if (m.form_text) {
    const d = document.createElement("details");
    d.open = openTexts.has(m.id);
    d.addEventListener("toggle", () => { if (d.open) openTexts.add(m.id); else openTexts.delete(m.id); });
    const sum = document.createElement("summary");
    sum.textContent = "Report text";
    const pre = document.createElement("pre");
    pre.className = "form-text"; pre.textContent = m.form_text;
    d.append(sum, pre);
    td.appendChild(d);
  }
  return td;
}

// Every message that waits for this desk's answer is shown, however far down the inbox's order
// it is, up to this many pages of them.
const WAITING_PAGES_MAX = 10;

// Each kind of alarm as the duty officer reads it (the API's codes in `docs/WIRE.md`).
const ALARM_NAMES: Record<string, string> = {
  escalation: "Unanswered past its deadline",
  unacknowledged: "Not answered by a recipient in time",
  link_no_answer: "A link does not answer its tests",
  undecryptable: "A message could not be decrypted",
  tamper: "Evidence of tampering",
  storage: "This node cannot write its database",
  clock: "A clock is off",
  misconduct: "A member's node broke the protocol",
  quota: "A member's node went over its quota",
};
function alarmText(a: Alarm): string { return (ALARM_NAMES[a.kind] || a.kind) + ": " + a.detail; }

// What the page holds of the node, each part loaded by its own function and drawn by `render`:
// an event loads again only the parts it touches (`listen`).
let inboxNow: Message[] = [], inboxMore = false, alarmsNow: Alarm[] = [], linksNow: Link[] = [];

async function loadInbox() {
  const [waitingPages, inboxPages] = await Promise.all([
    callPages<Message>("/api/v1/inbox?waiting=true", WAITING_PAGES_MAX), callPages<Message>("/api/v1/inbox", pages.inbox)]);
  const listed = new Set(waitingPages.items.map((m) => m.id));
  inboxNow = waitingPages.items.concat(inboxPages.items.filter((m) => !listed.has(m.id)));
  inboxMore = inboxPages.more;
}

// One message again (it arrived, or an alarm about it changed): put in the inbox, or replaced
// there.
async function loadMessage(id: string): Promise<void> {
  const m = await call<Message>("GET", "/api/v1/messages/" + id);
  if (m.sender === me) return;
  const at = inboxNow.findIndex((x) => x.id === m.id);
  if (at >= 0) inboxNow[at] = m; else inboxNow.push(m);
}

async function loadAlarms() {
  const { items, more } = await callPages<Alarm>("/api/v1/alarms", pages.alarms);
  alarmsNow = items;
  $("alarms-more").hidden = !more;
}

async function loadLines() {
  linesNow = (await callPages<Line>("/api/v1/lines", Infinity)).items;
  if (!currentLine && linesNow.length) currentLine = linesNow[0].id;
}

async function loadLinks(): Promise<void> { linksNow = await call<Link[]>("GET", "/api/v1/links"); }

async function loadEvidence() {
  const { items: evidence, more: evidenceMore } = await callPages<Evidence>("/api/v1/evidence", pages.evidence);
  $("evidence-more").hidden = !evidenceMore;
  $("evidence").replaceChildren(...evidence.map((e) => {
    const li = document.createElement("li");
    li.textContent = when(e.at_ms) + " — " + e.member + ": " + e.detail + " (held " + e.held_id.slice(0, 12) + "…, offered " + e.offered_id.slice(0, 12) + "…)";
    return li;
  }));
}

// After this desk answered a message or an alarm: that message and the alarms again.
async function answered(id: string | null | undefined): Promise<void> {
  await Promise.all([id ? loadMessage(id) : null, loadAlarms()]);
  render();
}

// Everything again: at sign-in, when the stream (re)opens, after a gap, and after an action.
async function refresh() {
  await Promise.all([loadInbox(), loadAlarms(), loadLines(), loadLinks(), loadEvidence()]);
  render();
  await showLine();
}

// Draws what the page holds: the inbox, the alarms, the lines, the links, the banner and the
// counts, the wall display.
function render() {
  const inbox = inboxNow, alarms = alarmsNow, lines = linesNow, links = linksNow;
  $("inbox-more").hidden = !inboxMore;
  const body = $("inbox");
  body.replaceChildren();
  let open = 0;
  // What needs action first: messages that wait for this desk's answer, most urgent and then
  // newest first; those answered, or needing none, after them in the node's order.
  // This desk's answer to each, if any: who on the desk answered it, and when.
  for (const m of inbox) {
    m.ours = (m.receipts || []).find((r) => r.member === me && (r.kind === "acknowledged" || r.kind === "declined"));
    m.answered = !!m.ours;
  }
  const waits = (m: Message): number => (m.ack_required && !m.answered ? 1 : 0);
  const rank = (m: Message): number => PRECEDENCES.indexOf(m.precedence);
  inbox.sort((a, b) => (waits(b) - waits(a)) || (waits(a) ? (rank(a) - rank(b)) || (b.received_ms - a.received_ms) : 0));
  for (const m of inbox) {
    const tr = document.createElement("tr");
    tr.className = m.precedence + " " + m.class + (waits(m) ? " waits" : "");
    tr.dataset.id = m.id;
    marked(tr, m);
    cell(tr, m.precedence); cell(tr, memberName(m.sender)); subjectCell(tr, m); cell(tr, when(m.received_ms));
    const td = cell(tr, "");
    if (waits(m) && m.deadline_ms) {
      const due = document.createElement("div");
      due.className = "due"; due.textContent = "Answer by " + when(m.deadline_ms) + " (" + left(m.deadline_ms) + ")";
      td.appendChild(due);
    }
    const ours = m.ours;
    if (ours) {
      const by = document.createElement("div");
      by.className = "answered";
      by.textContent = (ours.kind === "acknowledged" ? "Acknowledged" : "Declined") + " by " + (ours.operator || "this desk") + " at " + when(ours.signed_ms);
      td.appendChild(by);
    }
    if (m.ack_required && !m.answered && canAnswer()) {
      open += 1;
      const b = document.createElement("button");
      b.textContent = "Acknowledge";
      b.addEventListener("click", async () => {
        try { await call("POST", "/api/v1/messages/" + m.id + "/ack", {}); $("action-error").textContent = ""; await answered(m.id); }
        catch (e) { shown(e); }
      });
      const d = document.createElement("button");
      d.textContent = "Decline";
      d.addEventListener("click", async () => {
        // Cancel on the prompt sends nothing.
        const reason = prompt("Why do you decline?");
        if (reason === null) return;
        try { await call("POST", "/api/v1/messages/" + m.id + "/decline", { reason }); $("action-error").textContent = ""; await answered(m.id); }
        catch (e) { shown(e); }
      });
      td.append(b, " ", d);
    }
    body.appendChild(tr);
  }
  $("unacked").textContent = open ? "(" + open + " unacknowledged)" : "";
  applyFilters();
  const list = $("alarms");
  list.replaceChildren();
  for (const a of alarms) { const li = document.createElement("li"); li.textContent = alarmText(a); li.dataset.kind = a.kind; list.appendChild(li); }
  drawLineList(lines, inbox);
  $<HTMLFormElement>("compose").hidden = !canSend();
  $<HTMLFormElement>("propose").hidden = !canSend();
  const matrix = $("links");
  matrix.replaceChildren();
  for (const l of links) {
    const cellEl = document.createElement("span");
    cellEl.className = "link " + l.state;
    cellEl.tabIndex = 0;
    const rtt = l.last_rtt_ms == null ? "no round trip yet" : "round trip " + l.last_rtt_ms + " ms";
    const age = l.oldest_queued_age_ms == null ? "queue empty" : "oldest queued " + Math.round(l.oldest_queued_age_ms / 1000) + " s";
    cellEl.setAttribute("aria-label", me + " to " + l.member + ": " + l.state + ", " + rtt + ", " + age);
    cellEl.textContent = l.member;
    const d = document.createElement("span");
    d.className = "detail";
    d.textContent = l.state + " · " + rtt + " · " + age;
    cellEl.appendChild(d);
    matrix.appendChild(cellEl);
  }
  // An unanswered FLASH rings first, then any alarm no operator has silenced since the node
  // last raised it (a silenced escalation rings again when the node repeats it).
  const flash = inbox.find((m) => m.precedence === "FLASH" && m.ack_required && !m.answered);
  const first = alarms.find((a) => !a.cleared_ms && (!a.acked_ms || a.last_raised_ms > a.acked_ms));
  const banner = $("banner");
  const canAct = canAnswer();
  // The message an alarm is about, when it waits in this inbox for this desk's answer: the
  // banner acts on the message, and silencing the alarm is the lesser choice.
  const about = first && first.message ? inbox.find((m) => m.id === first.message && waits(m)) : null;
  delete banner.dataset.message; delete banner.dataset.alarm; delete banner.dataset.kind;
  $("banner-open").hidden = true; $("banner-silence").hidden = true;
  if (flash) {
    $("banner-text").textContent = "FLASH from " + memberName(flash.sender) + ": " + flash.subject;
    $("banner-ack").textContent = "Acknowledge FLASH";
    banner.dataset.message = flash.id; banner.className = "on";
    $("banner-open").hidden = false;
  } else if (first) {
    $("banner-text").textContent = alarmText(first);
    banner.dataset.kind = first.kind;
    banner.dataset.alarm = first.id; banner.className = "on";
    if (about) {
      banner.dataset.message = about.id;
      $("banner-ack").textContent = "Acknowledge message";
      $("banner-open").hidden = false;
      $("banner-silence").hidden = !canAct;
    } else {
      $("banner-ack").textContent = "Acknowledge alarm";
    }
  } else {
    banner.className = "";
  }
  $("banner-ack").hidden = !canAct;
  if (banner.className === "on") startRinging(); else stopRinging();
  showCount(open);
  // Each urgent message that waits for this desk is told on the desktop once: its precedence and
  // sender, not its words (a desktop's notifications may show on a locked screen or be kept).
  for (const m of inbox) {
    if (waits(m) && URGENT.includes(m.precedence)) notify(m.id, m.precedence + " from " + memberName(m.sender), "Open the ADI console to read and answer it.", () => openMessage(m.id));
  }
  drawWall(lines, inbox, links);
}

// The alarm tone: two notes at the volume the officer set (0 to 100, kept in this browser). A
// browser holds sound back until the page has been clicked or typed in once; until then the
// header says so, and the banner, the title and the icon carry the alarm alone.
function memberName(code: string): string {
  const m = rosterNow && rosterNow.members.find((x) => x.code === code);
  return m ? m.name + " (" + code + ")" : code;
}

// The wall display: large type, every line with what waits on it and its last message, every
// link with its state, a clock; the banner above it as on every view. Kept in the address
// (`#wall`), so that a screen on the wall opens on it.
function wallMode(on: boolean): void {
  document.body.classList.toggle("wall", on);
  $("wall-view").hidden = !on || !session;
  $("watch").hidden = on || !session;
  $("wall-toggle").setAttribute("aria-pressed", String(on));
  $("wall-toggle").textContent = on ? "Leave wall display" : "Wall display";
  if (on !== (location.hash === "#wall")) history.replaceState(null, "", on ? "#wall" : location.pathname);
}
$("wall-toggle").addEventListener("click", () => wallMode(!document.body.classList.contains("wall")));
document.addEventListener("keydown", (e) => { if (e.key === "Escape" && document.body.classList.contains("wall")) wallMode(false); });
function drawWall(lines: Line[], inbox: Message[], links: Link[]): void {
  $("wall-clock").textContent = new Date().toISOString().replace("T", " ").slice(0, 16) + " UTC";
  $("wall-lines").replaceChildren(...lines.map((l) => {
    const li = document.createElement("li");
    const mine = inbox.filter((m) => m.line === l.id);
    const waiting = mine.filter((m) => m.ack_required && !m.answered);
    const urgent = waiting.filter((m) => URGENT.includes(m.precedence));
    li.className = "tile" + (urgent.length ? " urgent" : waiting.length ? " waits" : "");
    li.dataset.line = l.id;
    const name = document.createElement("strong");
    name.textContent = l.members.map(memberName).join(" – ") + (l.title ? " · " + l.title : "");
    const state = document.createElement("span");
    state.className = "state";
    state.textContent = waiting.length ? waiting.length + " to answer" + (urgent.length ? ", " + urgent.length + " urgent" : "") : "nothing waits";
    const last = document.createElement("span");
    const newest = mine.reduce<Message | null>((a, m) => (!a || m.received_ms > a.received_ms ? m : a), null);
    last.textContent = newest ? "last: " + newest.precedence + " from " + newest.sender + " at " + when(newest.received_ms) : "no message received";
    li.append(name, state, last);
    return li;
  }));
  $("wall-links").replaceChildren(...links.map((l) => {
    const li = document.createElement("li");
    li.className = "tile link " + l.state;
    li.textContent = memberName(l.member) + ": " + l.state.replace("_", " ") + (l.last_rtt_ms == null ? "" : ", " + l.last_rtt_ms + " ms");
    return li;
  }));
}

// Words as the node counts them (adi_core::text::count_words): whitespace and invisible format
// characters separate words, the rest by Unicode word boundaries; in scripts written without
// spaces (Thai, Lao, Myanmar, Khmer, the Tai scripts) a run that nothing separates is one word.
// The node's count is the one that holds; this one tells the officer before sending.
let pairUrls: string[] = [];
let pairWatch: number | null = null;
const PAIR_CHECK_MS = 1000;
const PAIR_MISSES_MAX = 3;
function watchPair() {
  if (pairWatch || pairUrls.length < 2) return;
  let misses = 0;
  pairWatch = window.setInterval(async () => {
    try {
      const r = await fetch("/healthz", { cache: "no-store" });
      if (r.ok) { misses = 0; return; }
    } catch { /* the node does not answer */ }
    misses += 1;
    if (misses < PAIR_MISSES_MAX) return;
    const other = pairUrls.find((u) => new URL(u).origin !== location.origin);
    if (!other) return;
    // Across origins the answer cannot be read, only whether one came.
    try { await fetch(new URL("/healthz", other).href, { mode: "no-cors", cache: "no-store" }); }
    catch { return; }
    if (pairWatch) clearInterval(pairWatch);
    location.assign(new URL(location.pathname + "?from=" + location.origin, other).href);
  }, PAIR_CHECK_MS);
}

// The events since the last pass, gathered for EVENT_BATCH_MS so that a burst is one pass, and
// what each asks to load again: a message that arrived, the messages an alarm names, the alarms,
// the links, the chosen line; everything after a gap. More messages than EVENT_MESSAGES_MAX in one
// pass load the inbox whole instead.
const EVENT_BATCH_MS = 200;
const EVENT_MESSAGES_MAX = 20;
interface Pending { all: boolean; messages: Set<string>; alarms: boolean; links: boolean; line: boolean }
interface Heard { message?: string; line?: string }
let pending: Pending | null = null;
function heard(kind: string, ev: Heard | null): void {
  if (!pending) {
    pending = { all: false, messages: new Set(), alarms: false, links: false, line: false };
    setTimeout(applyHeard, EVENT_BATCH_MS);
  }
  const shownOnLine = (id: string | undefined): boolean => !!document.querySelector("#conversation tr[data-id='" + id + "']");
  if (kind === "gap" || !ev) { pending.all = true; return; }
  if (kind === "message") { if (ev.message) pending.messages.add(ev.message); if (ev.line === currentLine) pending.line = true; }
  if (kind === "state" && (ev.line === currentLine || shownOnLine(ev.message))) pending.line = true;
  if (kind === "decision" && ev.line === currentLine) pending.line = true;
  if (kind === "alarm") { pending.alarms = true; if (ev.message && inboxNow.some((m) => m.id === ev.message)) pending.messages.add(ev.message); }
  if (kind === "link") pending.links = true;
}
async function applyHeard(): Promise<void> {
  const p = pending;
  pending = null;
  if (!session || !p) return;
  try {
    if (p.all) { await refresh(); return; }
    const loads = [];
    if (p.messages.size > EVENT_MESSAGES_MAX) loads.push(loadInbox());
    else for (const id of p.messages) if (id) loads.push(loadMessage(id));
    if (p.alarms) loads.push(loadAlarms());
    if (p.links) loads.push(loadLinks());
    await Promise.all(loads);
    render();
    if (p.line) await showLine();
  } catch (e) { shown(e); }
}

function listen() {
  if (events) events.close();
  events = new EventSource("/api/v1/events");
  // Whatever happened between the last refresh and the stream's (re)connection is caught up on
  // when it opens.
  events.onopen = () => refresh().catch(shown);
  const hear = (kind: string) => (e: MessageEvent) => { let ev: Heard | null = null; try { ev = JSON.parse(e.data); } catch { /* read whole */ } heard(kind, ev); };
  events.onmessage = hear("");
  for (const kind of ["message", "state", "alarm", "link", "decision", "gap"]) events.addEventListener(kind, hear(kind));
  events.addEventListener("expired", (e: MessageEvent) => {
    let detail = "the session has expired; sign in again";
    try { detail = JSON.parse(e.data).detail || detail; } catch { /* the default says it */ }
    signedOut(detail);
  });
}

async function start() {
  // A page that moved here from the other node of the pair no longer needs to say so.
  if (location.search) history.replaceState(null, "", location.pathname + location.hash);
  try { setSession(await call<Session>("GET", "/console/session")); } catch { setSession(null); }
  // The pair is known, and watched, before the page shows itself signed in: a node that dies
  // from then on moves the page.
  if (session) {
    const health = await call<Health>("GET", "/healthz");
    setMember(health.member);
    pairUrls = health.pair || [];
    watchPair();
  }
  $("sign-in-view").hidden = !!session;
  $("watch").hidden = !session;
  $("wall-toggle").hidden = !session;
  wallMode(!!session && location.hash === "#wall");
  $("sign-out").hidden = !session;
  $("who").textContent = session ? session.name + " (" + session.role + ")" : "";
  if (!session) clearRoster();
  if (session) {
    if (urgentPoll) { clearInterval(urgentPoll); urgentPoll = null; }
    $("banner").classList.remove("signed-out");
    watchExpiry();
    // The stream first, which keeps the session open; then the roster, by which the page names
    // members; then the page.
    listen(); loadSchemas(); await showRoster().catch(rosterShown); await refresh();
  }
}

$<HTMLFormElement>("sign-in").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.target as HTMLFormElement;
  const f = new FormData(form);
  // The password leaves the page with the request.
  form.password.value = "";
  try { await call("POST", "/console/sign-in", { name: f.get("name"), password: f.get("password") }); $("sign-in-error").textContent = ""; await start(); }
  catch (err) { $("sign-in-error").textContent = asApiError(err).message; }
});
// ---- Lines in a sidebar, search and filters, print. ----

// A member's flag: the two regional-indicator letters of its code, where the code is a country's.
function flag(code: string): string {
  return /^[A-Z]{2}$/.test(code) ? String.fromCodePoint(...[...code].map((c) => 0x1f1e6 + c.charCodeAt(0) - 65)) : "";
}
function lineName(l: Line): string {
  return l.members.filter((c) => c !== me || l.members.length === 1).map((c) => (flag(c) + " " + memberName(c)).trim()).join(", ") + (l.title ? " · " + l.title : "");
}
// Every line, what waits on it for this desk, the chosen one marked.
let linesNow: Line[] = [];
function drawLineList(lines: Line[], inbox: Message[]): void {
  linesNow = lines;
  $("line-items").replaceChildren(...lines.map((l) => {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button"; b.dataset.line = l.id;
    if (l.id === currentLine) b.setAttribute("aria-current", "true");
    const name = document.createElement("span"); name.className = "name"; name.textContent = lineName(l);
    const scope = document.createElement("span"); scope.className = "scope"; scope.textContent = l.scope;
    b.append(name, scope);
    const waiting = inbox.filter((m) => m.line === l.id && m.ack_required && !m.answered);
    if (waiting.length) {
      const n = document.createElement("span");
      n.className = "count" + (waiting.some((m) => URGENT.includes(m.precedence)) ? " urgent" : "");
      n.textContent = String(waiting.length);
      n.setAttribute("aria-label", waiting.length + " to answer");
      b.appendChild(n);
    }
    const unread = l.id === currentLine ? 0 : unreadOn(me, l.id, inbox);
    if (unread) {
      const n = document.createElement("span");
      n.className = "unread";
      n.textContent = String(unread);
      n.setAttribute("aria-label", unread + " unread");
      b.appendChild(n);
    }
    b.addEventListener("click", async () => {
      currentLine = l.id; pages.line = 1;
      for (const x of $("line-items").querySelectorAll("button")) {
        if (x.dataset.line === currentLine) x.setAttribute("aria-current", "true"); else x.removeAttribute("aria-current");
      }
      try { await showLine(); } catch (e) { shown(e); }
    });
    li.appendChild(b);
    return li;
  }));
  // The members of every line, to filter by.
  const members = [...new Set(lines.flatMap((l) => l.members))].filter((c) => c !== me).sort();
  const sender = $<HTMLSelectElement>("filter-sender");
  if (sender.options.length !== members.length + 1) {
    const was = sender.value;
    sender.replaceChildren(sender.options[0], ...members.map((c) => { const o = document.createElement("option"); o.value = c; o.textContent = memberName(c); return o; }));
    sender.value = was;
  }
}

// What a row is, for the filters.
function marked(tr: HTMLTableRowElement, m: Message): void {
  tr.dataset.precedence = m.precedence; tr.dataset.class = m.class; tr.dataset.sender = m.sender;
  tr.dataset.ms = String(m.created_ms);
  tr.dataset.text = ((m.subject || "") + " " + (m.body || "") + " " + (m.form_text || "")).toLowerCase();
}
// Hides the rows of the inbox and the line that the filters leave out, and says how many show.
// They filter what the page holds: a list's later pages are searched once shown ("More…").
function applyFilters() {
  const f = $<HTMLFormElement>("filters");
  const text = f.text.value.trim().toLowerCase();
  const since = f.since.value ? Date.parse(f.since.value + "T00:00:00Z") : null;
  let shownRows = 0, all = 0;
  for (const tr of document.querySelectorAll<HTMLTableRowElement>("#inbox tr, #conversation tr")) {
    const d = tr.dataset;
    const keep = (!text || (d.text || "").includes(text)) && (!f.precedence.value || d.precedence === f.precedence.value)
      && (!f.class.value || d.class === f.class.value) && (!f.sender.value || d.sender === f.sender.value)
      && (since === null || Number(d.ms) >= since);
    tr.hidden = !keep;
    all += 1; if (keep) shownRows += 1;
  }
  const filtering = text || f.precedence.value || f.class.value || f.sender.value || since !== null;
  $("filter-count").textContent = filtering ? shownRows + " of " + all + " messages shown" : "";
}
$<HTMLFormElement>("filters").addEventListener("input", applyFilters);
// The filters filter what the page holds as the officer types; "Search every message" asks the
// node, which reads every message it holds (up to its bound) and lists the newest matches.
$<HTMLFormElement>("filters").addEventListener("submit", (e) => {
  e.preventDefault();
  applyFilters();
  searchNode().catch(shown);
});
$<HTMLFormElement>("filters").addEventListener("reset", () => { setTimeout(applyFilters, 0); $("search-view").hidden = true; });
$("search-close").addEventListener("click", () => { $("search-view").hidden = true; });

interface Found { messages: Message[]; found: number; scanned: number; complete: boolean }
async function searchNode(): Promise<void> {
  const f = $<HTMLFormElement>("filters");
  const q = new URLSearchParams();
  if (f.text.value.trim()) q.set("q", f.text.value.trim());
  for (const name of ["precedence", "class", "sender"]) if (f[name].value) q.set(name, f[name].value);
  if (f.since.value) q.set("since_ms", String(Date.parse(f.since.value + "T00:00:00Z")));
  const r = await call<Found>("GET", "/api/v1/search?" + q.toString());
  $("search-results").replaceChildren(...r.messages.map((m) => {
    const tr = document.createElement("tr");
    tr.className = m.precedence + " " + m.class;
    tr.dataset.id = m.id;
    cell(tr, m.precedence); cell(tr, memberName(m.sender)); subjectCell(tr, m); cell(tr, when(m.created_ms));
    const line = linesNow.find((l) => l.id === m.line);
    cell(tr, line ? lineName(line) : m.line);
    return tr;
  }));
  $("search-count").textContent = (r.found === 1 ? "1 message found" : r.found + " messages found")
    + (r.found > r.messages.length ? ", the newest " + r.messages.length + " listed" : "")
    + (r.complete ? "." : "; the node stopped after reading " + r.scanned + " messages, most urgent first: older routine traffic may hold more.");
  $("search-view").hidden = false;
  $("search-view").scrollIntoView({ block: "start" });
}
// The line as the record has it, on paper: every page of it loaded first, then the print view,
// which shows the line's messages alone (those the filters leave in).
$("line-print").addEventListener("click", async () => {
  pages.line = Infinity;
  try { await showLine(); } catch (e) { shown(e); return; }
  window.print();
});
// Each "More…" button shows one page more of its list, after what is shown.
for (const [button, list, again] of [["inbox-more", "inbox", refresh], ["alarms-more", "alarms", refresh], ["evidence-more", "evidence", refresh], ["line-more", "line", showLine]] as const) {
  $(button).addEventListener("click", async () => {
    pages[list] += 1;
    try { await again(); } catch (e) { shown(e); }
  });
}
$<HTMLFormElement>("compose").addEventListener("input", () => {
  const f = $<HTMLFormElement>("compose");
  // A report may carry the message alone: the node makes its subject from it.
  const report = !!$<HTMLTextAreaElement>("compose-form").value.trim();
  f.subject.required = !report; f.body.required = !report;
  const words = wordCount(f.body.value);
  const urgent = URGENT.includes(f.precedence.value);
  $("words").textContent = (words === 1 ? "1 word" : words + " words") + (urgent ? " (at most 200 for " + f.precedence.value + ")" : "");
  $("words").className = urgent && words > 200 ? "over" : "";
});
$<HTMLFormElement>("compose").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target as HTMLFormElement;
  const body: Record<string, unknown> = { precedence: f.precedence.value, class: f.class.value, subject: f.subject.value, body: f.body.value };
  if (f.caveat.value.trim()) body.caveat = f.caveat.value.trim();
  const report = $<HTMLTextAreaElement>("compose-form");
  report.removeAttribute("aria-invalid");
  if (report.value.trim()) {
    try { body.form = JSON.parse(report.value); }
    catch (err) { composeError("The report (form JSON) is not valid JSON: " + asApiError(err).message); report.setAttribute("aria-invalid", "true"); return; }
    if (!f.subject.value.trim()) delete body.subject;
    if (!f.body.value.trim()) delete body.body;
  }
  if (f.ewg.value) body.ewg = f.ewg.value;
  // A FLASH rings at every other desk of the line and demands its answer: it goes only once
  // confirmed.
  if (body.precedence === "FLASH" && !confirm("Send this FLASH? It rings at every other desk of the line and demands an acknowledgement.")) return;
  try {
    if (attaching.length) body.attachments = await Promise.all(attaching.map(upload));
    await call("POST", "/api/v1/lines/" + currentLine + "/messages", body);
    attaching = []; showAttaching();
    f.subject.value = ""; f.body.value = ""; report.value = ""; f.ewg.value = "";
    f.precedence.value = "ROUTINE"; f.class.value = "OPERATIONAL"; f.caveat.value = "";
    $("words").textContent = ""; $("words").className = "";
    clearFields();
    f.subject.required = true; f.body.required = true;
    clearSuggestion();
    $("action-error").textContent = ""; $("compose-error").textContent = "";
    await showLine();
  } catch (error) {
    const err = asApiError(error);
    shown(err);
    $("compose-error").textContent = said(err);
    if (err.field && err.field.startsWith("form")) { report.setAttribute("aria-invalid", "true"); markField(err.field); }
  }
});
$<HTMLFormElement>("propose").addEventListener("submit", async (e) => {
  e.preventDefault();
  try { await call("POST", "/api/v1/lines/" + currentLine + "/decisions", { text: $<HTMLFormElement>("propose").text.value }); $<HTMLFormElement>("propose").text.value = ""; await showLine(); }
  catch (err) { shown(err); }
});
$("sign-out").addEventListener("click", async () => {
  try { await call("POST", "/console/sign-out"); }
  finally {
    if (events) events.close();
    setSession(null);
    // Signed out on purpose: nothing of the watch stays in the page.
    stopRinging(); $("banner").className = ""; showCount(0);
    $("inbox").replaceChildren(); $("alarms").replaceChildren(); $("conversation").replaceChildren();
    await start();
  }
});
$("banner-ack").addEventListener("click", async () => {
  const b = $("banner").dataset;
  try {
    if (b.message) await call("POST", "/api/v1/messages/" + b.message + "/ack", {});
    else await call("POST", "/api/v1/alarms/" + b.alarm + "/ack", {});
    $("action-error").textContent = "";
    await answered(b.message);
  } catch (e) { shown(e); }
});
// Silences the alarm, not the message: it rings again when the node repeats it.
$("banner-silence").addEventListener("click", async () => {
  try { await call("POST", "/api/v1/alarms/" + $("banner").dataset.alarm + "/ack", {}); $("action-error").textContent = ""; await answered(null); }
  catch (e) { shown(e); }
});
// Shows a message in the inbox (the one the banner is about, or a notification's), leaving the
// wall display for it.
function openMessage(id: string | undefined): void {
  if (document.body.classList.contains("wall")) wallMode(false);
  const row = document.querySelector<HTMLElement>("#inbox tr[data-id='" + id + "']");
  if (row) { row.scrollIntoView({ block: "center" }); row.tabIndex = -1; row.focus(); }
}
$("banner-open").addEventListener("click", () => openMessage($("banner").dataset.message));
$("line-map").addEventListener("click", async () => {
  if (!currentLine) return;
  try {
    const msgs = (await callPages<Message>("/api/v1/lines/" + currentLine + "/messages", Infinity)).items.filter(hasMap);
    await openMap(msgs, "Reports on the line " + ($("line-title").textContent || currentLine));
  } catch (e) { shown(e); }
});
setUpSound();
setUpNotifications();
setUpReports(shown);
setUpRoster(shown);
showCount(0);
start();
