"use strict";
let session = null;
let events = null;
let me = "";
let audio = null;
const $ = (id) => document.getElementById(id);

// A request to the node: its JSON answer, and the path of the next page when the answer is a
// page of a longer list (its `Link: <...>; rel="next"`).
async function send(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (session && method !== "GET") headers["X-CSRF-Token"] = session.csrf;
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
  const text = await r.text();
  const value = text ? JSON.parse(text) : null;
  if (!r.ok) {
    const err = new Error((value && value.message) || r.statusText);
    err.status = r.status; err.field = value && value.field;
    throw err;
  }
  const link = /<(\/api\/v1\/[^>]*)>\s*;\s*rel="?next"?/.exec(r.headers.get("Link") || "");
  return { value, next: link ? link[1] : null };
}

async function call(method, path, body) { return (await send(method, path, body)).value; }

// A list's first `pages` pages, each followed from the one before; `more` says whether the list
// goes on past them.
async function callPages(path, pages) {
  const items = [];
  let next = path;
  for (let n = 0; next && n < pages; n += 1) {
    const page = await send("GET", next);
    items.push(...page.value);
    next = page.next;
  }
  return { items, more: !!next };
}

// How many pages of each list the operator asked to see with its "More…" button.
const pages = { inbox: 1, line: 1, alarms: 1, evidence: 1 };

// A time in UTC, and in the browser's own zone with its date and the zone's name.
const LOCAL = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short" });
function when(ms) {
  const d = new Date(ms);
  return d.toISOString().replace("T", " ").slice(0, 19) + " UTC / " + LOCAL.format(d);
}

const URGENT = ["FLASH", "IMMEDIATE"];
const PRECEDENCES = ["FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE"];
let currentLine = "";

function canSend() { return session && ["duty", "principal", "admin"].includes(session.role); }

function left(ms) {
  const s = Math.round((ms - Date.now()) / 1000);
  if (s <= 0) return "overdue by " + Math.round(-s / 60) + " min";
  return s < 120 ? s + " s left" : Math.round(s / 60) + " min left";
}

async function showLine() {
  const current = linesNow.find((l) => l.id === currentLine);
  $("line-title").textContent = current ? lineName(current) + " (" + current.scope + ")" : "No line yet";
  if (!currentLine) return;
  $("export").href = "/api/v1/lines/" + currentLine + "/export";
  const { items: msgs, more } = await callPages("/api/v1/lines/" + currentLine + "/messages", pages.line);
  $("line-more").hidden = !more;
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
    const due = (m.recipients || []).map((r) => r.deadline_ms).filter((d) => d);
    const answers = cell(tr, states.concat(heard).join("; "));
    if (due.length) { const d = document.createElement("div"); d.className = "due"; d.textContent = left(Math.min(...due)); answers.appendChild(d); }
    if (m.form && m.form.kind === "call-request") callWorkflow(tr.children[2], m, msgs);
    body.appendChild(tr);
  }
  applyFilters();
  const decisions = (await callPages("/api/v1/lines/" + currentLine + "/decisions", Infinity)).items;
  const list = $("decisions");
  list.replaceChildren();
  for (const d of decisions) {
    const li = document.createElement("li");
    li.textContent = d.state + ": " + d.text + (d.missing.length ? " (waiting for " + d.missing.join(", ") + ")" : "");
    if (d.state === "open" && d.parties.includes(me) && d.missing.includes(me) && canSend()) {
      for (const [label, verb] of [["Concur", "concur"], ["Decline", "decline"]]) {
        const b = document.createElement("button");
        b.textContent = label;
        b.addEventListener("click", async () => {
          // Cancel on the prompt sends nothing.
          const reason = verb === "decline" ? prompt("Why do you decline?") : "";
          if (reason === null) return;
          const body = verb === "decline" ? { reason } : { text_sha256: d.text_sha256 };
          try { await call("POST", "/api/v1/decisions/" + d.id + "/" + verb, body); $("action-error").textContent = ""; await showLine(); }
          catch (e) { shown(e); }
        });
        li.append(" ", b);
      }
    }
    list.appendChild(li);
  }
}

// A call request: the answers it has had on the line, and, to a member who has not answered it,
// a button to accept each proposed time, to postpone with a reason, or to decline.
function callWorkflow(td, m, msgs) {
  const box = document.createElement("div"); box.className = "call";
  const answers = msgs.filter((x) => x.form && x.form.kind === "call-answer" && x.form.request === m.id);
  const heard = answers.map((a) => a.sender + ": " + a.form.answer + (a.form.time_utc ? " " + a.form.time_utc : "") + (a.form.reason ? " (" + a.form.reason + ")" : ""));
  const state = document.createElement("span"); state.className = "call-answers";
  state.textContent = heard.length ? "Answers: " + heard.join("; ") : "Not answered yet";
  box.appendChild(state);
  if (m.sender !== me && canSend() && !answers.some((a) => a.sender === me)) {
    const answer = async (form) => {
      form.kind = "call-answer"; form.v = 1; form.request = m.id;
      try { await call("POST", "/api/v1/lines/" + currentLine + "/messages", { precedence: m.precedence, form }); $("action-error").textContent = ""; await showLine(); }
      catch (e) { shown(e); }
    };
    for (const t of m.form.proposed_utc || []) {
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

// An error as the operator reads it: the API's sentence, and the field at fault when it names one.
function said(e) {
  return e.field && !e.message.includes(e.field) ? e.message + " (field " + e.field + ")" : e.message;
}

function shown(e) {
  $("action-error").textContent = said(e);
  if (e.status === 401) signedOut(e.message);
}

// The session ended behind the page: the watch is hidden, not cleared (what was on screen, a
// draft among it, comes back on signing in again), and the page goes on asking the node, with
// its watch cookie, whether something urgent waits; if so it rings and says so, and shows no
// content.
const URGENT_POLL_MS = 5000;
let urgentPoll = null;
function signedOut(message) {
  session = null;
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
  if (!urgentPoll) { urgentPoll = setInterval(askUrgent, URGENT_POLL_MS); askUrgent(); }
}

async function askUrgent() {
  let waiting;
  try { waiting = await call("GET", "/console/urgent"); }
  catch { clearInterval(urgentPoll); urgentPoll = null; return; }
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

// The tone repeats while something waits for this desk, until it is answered.
const RING_EVERY_MS = 2000;
let ringing = null;
function startRinging() {
  document.body.dataset.ringing = "1";
  if (ringing) return;
  ring();
  ringing = setInterval(ring, RING_EVERY_MS);
}
function stopRinging() {
  delete document.body.dataset.ringing;
  if (ringing) { clearInterval(ringing); ringing = null; }
}

// The session's end, told before it comes, from the node's own account of it (which moves
// while the page holds its event stream open).
const SESSION_CHECK_MS = 60000;
const EXPIRY_WARNING_MS = 5 * 60000;
let sessionCheck = null;
function watchExpiry() {
  const warn = () => {
    if (!session) return;
    const leftMs = session.expires_ms - Date.now();
    $("expiry").hidden = leftMs > EXPIRY_WARNING_MS;
    $("expiry").textContent = "This session ends at " + when(session.expires_ms) + " (" + left(session.expires_ms) + "): sign in again then.";
  };
  warn();
  if (sessionCheck) return;
  sessionCheck = setInterval(async () => {
    if (!session) return;
    try { session = Object.assign(session, await call("GET", "/console/session")); warn(); }
    catch (e) { if (e.status === 401) signedOut(e.message); }
  }, SESSION_CHECK_MS);
}

function cell(row, text) { const td = document.createElement("td"); td.textContent = text; row.appendChild(td); return td; }

// The reports whose positions the map draws.
const MAPPED = ["encounter-at-sea", "air-encounter", "disaster-relief", "military-activity"];
const hasMap = (m) => !!(m.form && MAPPED.includes(m.form.kind));
// Which messages' report text the operator has opened: kept open across re-renders.
const openTexts = new Set();

// A message's subject, with its report's kind and working group, a map button when the report
// has positions, and the report's text to unfold.
function subjectCell(tr, m) {
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
    b.setAttribute("aria-label", "Map of " + m.form.kind + (m.subject ? ": " + m.subject : ""));
    b.addEventListener("click", () => openMap([m], "Map of " + m.form.kind + " from " + m.sender).catch(shown));
    td.append(" ", b);
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
const ALARM_NAMES = {
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
function alarmText(a) { return (ALARM_NAMES[a.kind] || a.kind) + ": " + a.detail; }

// What the page holds of the node, each part loaded by its own function and drawn by `render`:
// an event loads again only the parts it touches (`listen`).
let inboxNow = [], inboxMore = false, alarmsNow = [], linksNow = [];

async function loadInbox() {
  const [waitingPages, inboxPages] = await Promise.all([
    callPages("/api/v1/inbox?waiting=true", WAITING_PAGES_MAX), callPages("/api/v1/inbox", pages.inbox)]);
  const listed = new Set(waitingPages.items.map((m) => m.id));
  inboxNow = waitingPages.items.concat(inboxPages.items.filter((m) => !listed.has(m.id)));
  inboxMore = inboxPages.more;
}

// One message again (it arrived, or an alarm about it changed): put in the inbox, or replaced
// there.
async function loadMessage(id) {
  const m = await call("GET", "/api/v1/messages/" + id);
  if (m.sender === me) return;
  const at = inboxNow.findIndex((x) => x.id === m.id);
  if (at >= 0) inboxNow[at] = m; else inboxNow.push(m);
}

async function loadAlarms() {
  const { items, more } = await callPages("/api/v1/alarms", pages.alarms);
  alarmsNow = items;
  $("alarms-more").hidden = !more;
}

async function loadLines() {
  linesNow = (await callPages("/api/v1/lines", Infinity)).items;
  if (!currentLine && linesNow.length) currentLine = linesNow[0].id;
}

async function loadLinks() { linksNow = await call("GET", "/api/v1/links"); }

async function loadEvidence() {
  const { items: evidence, more: evidenceMore } = await callPages("/api/v1/evidence", pages.evidence);
  $("evidence-more").hidden = !evidenceMore;
  $("evidence").replaceChildren(...evidence.map((e) => {
    const li = document.createElement("li");
    li.textContent = when(e.at_ms) + " — " + e.member + ": " + e.detail + " (held " + e.held_id.slice(0, 12) + "…, offered " + e.offered_id.slice(0, 12) + "…)";
    return li;
  }));
}

// After this desk answered a message or an alarm: that message and the alarms again.
async function answered(id) {
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
  const waits = (m) => (m.ack_required && !m.answered ? 1 : 0);
  const rank = (m) => PRECEDENCES.indexOf(m.precedence);
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
    const answered = m.answered;
    const ours = m.ours;
    if (ours) {
      const by = document.createElement("div");
      by.className = "answered";
      by.textContent = (ours.kind === "acknowledged" ? "Acknowledged" : "Declined") + " by " + (ours.operator || "this desk") + " at " + when(ours.signed_ms);
      td.appendChild(by);
    }
    if (m.ack_required && !answered && session.role !== "auditor" && session.role !== "translator") {
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
  $("compose").hidden = !canSend();
  $("propose").hidden = !canSend();
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
  const canAct = session.role !== "auditor" && session.role !== "translator";
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
    if (waits(m) && URGENT.includes(m.precedence)) notify(m.id, m.precedence + " from " + memberName(m.sender), "Open the ADI console to read and answer it.", m.id);
  }
  drawWall(lines, inbox, links);
}

// The alarm tone: two notes at the volume the officer set (0 to 100, kept in this browser). A
// browser holds sound back until the page has been clicked or typed in once; until then the
// header says so, and the banner, the title and the icon carry the alarm alone.
const VOLUME_KEY = "adi.volume";
let volume = 80;
try {
  const kept = localStorage.getItem(VOLUME_KEY);
  if (kept !== null && Number(kept) >= 0 && Number(kept) <= 100) volume = Number(kept);
} catch { /* storage refused: the default holds */ }
function soundState() {
  const blocked = !audio || audio.state !== "running";
  document.body.dataset.sound = volume === 0 ? "off" : blocked ? "blocked" : "on";
  const warning = volume === 0 ? "The alarm tone is off: only the banner, the title and the icon show an alarm."
    : blocked ? "The browser holds the alarm tone back until this page is clicked: press Test sound." : "";
  // A warning replaces what was said; once there is none, a warning said before goes and the
  // outcome of a test stays.
  if (warning || $("sound-state").className === "error") saidSound(warning, true);
}
function saidSound(text, warning) {
  const state = $("sound-state");
  state.textContent = text;
  state.className = warning ? "error" : "";
  state.hidden = !text;
}
function unlockSound() {
  try {
    if (!audio) { audio = new AudioContext(); audio.onstatechange = soundState; }
    if (audio.state !== "running") audio.resume().then(soundState, soundState);
  } catch { /* no sound device: the banner stays */ }
  soundState();
}
// Unlocked on a click rather than a press, so that nothing on the page moves between the press
// and the release of the button that was pressed.
document.addEventListener("click", unlockSound);
document.addEventListener("keydown", unlockSound);
function ring() {
  if (!audio || audio.state !== "running" || volume === 0) { soundState(); return false; }
  const gain = audio.createGain();
  gain.gain.value = (volume / 100) ** 2;
  gain.connect(audio.destination);
  const t = audio.currentTime;
  for (const [freq, at] of [[880, 0], [660, 0.3]]) {
    const o = audio.createOscillator();
    o.frequency.value = freq; o.connect(gain); o.start(t + at); o.stop(t + at + 0.25);
  }
  // What rang, on the page for whoever checks it: how many tones, and at what volume.
  document.body.dataset.tones = String(Number(document.body.dataset.tones || 0) + 1);
  document.body.dataset.toneVolume = String(volume);
  return true;
}
$("volume").value = String(volume);
$("volume").addEventListener("input", (e) => {
  volume = Number(e.target.value);
  try { localStorage.setItem(VOLUME_KEY, String(volume)); } catch { /* kept for this page only */ }
  soundState();
});
// The tone, tried: once the browser has let the sound start (a moment after the click).
const TEST_SOUND_TRIES = 20;
const TEST_SOUND_SHOWN_MS = 15000;
$("test-sound").addEventListener("click", () => {
  unlockSound();
  const attempt = (left) => {
    if (ring()) {
      const said = "Tone played at " + volume + "%. If you heard nothing, check the speakers.";
      saidSound(said, false);
      setTimeout(() => { if ($("sound-state").textContent === said) saidSound("", false); }, TEST_SOUND_SHOWN_MS);
    } else if (left > 0 && volume > 0) {
      setTimeout(() => attempt(left - 1), 100);
    }
  };
  attempt(TEST_SOUND_TRIES);
});

// The count of what waits for this desk, in the tab's title and on its icon.
function showCount(n) {
  document.title = n ? "(" + n + ") ADI console" : "ADI console";
  const link = $("favicon");
  if (link.dataset.count === String(n)) return;
  const c = document.createElement("canvas");
  c.width = 64; c.height = 64;
  const g = c.getContext("2d");
  g.textAlign = "center"; g.textBaseline = "middle";
  if (n) {
    g.fillStyle = "#b00020"; g.beginPath(); g.arc(32, 32, 32, 0, 2 * Math.PI); g.fill();
    const text = n > 99 ? "99+" : String(n);
    g.fillStyle = "#fff"; g.font = "bold " + (text.length > 2 ? 26 : 40) + "px system-ui, sans-serif";
    g.fillText(text, 32, 35);
  } else {
    g.fillStyle = "#12233d"; g.fillRect(0, 0, 64, 64);
    g.fillStyle = "#fff"; g.font = "bold 40px system-ui, sans-serif"; g.fillText("A", 32, 35);
  }
  link.href = c.toDataURL("image/png");
  link.dataset.count = String(n);
}

// Desktop notifications, once the officer allows them in this browser: each urgent message that
// waits for this desk, once; while signed out, that something urgent waits (never what).
const notified = new Set();
function notifyButton() {
  const b = $("notify");
  b.hidden = !("Notification" in window);
  if (b.hidden) return;
  const p = Notification.permission;
  b.textContent = p === "granted" ? "Desktop alerts on" : p === "denied" ? "Desktop alerts blocked by the browser" : "Allow desktop alerts";
  b.disabled = p !== "default";
}
$("notify").addEventListener("click", async () => {
  try { await Notification.requestPermission(); } catch { /* the browser decides */ }
  notifyButton();
});
function notify(key, title, body, message) {
  if (!("Notification" in window) || Notification.permission !== "granted" || notified.has(key)) return;
  notified.add(key);
  try {
    const n = new Notification(title, { body, tag: key, requireInteraction: true });
    n.onclick = () => { window.focus(); if (message) openMessage(message); n.close(); };
  } catch { /* a browser that shows notifications only from a service worker */ }
}

// A member by its name in the roster in force, its code after it.
function memberName(code) {
  const m = rosterNow && rosterNow.members.find((x) => x.code === code);
  return m ? m.name + " (" + code + ")" : code;
}

// The wall display: large type, every line with what waits on it and its last message, every
// link with its state, a clock; the banner above it as on every view. Kept in the address
// (`#wall`), so that a screen on the wall opens on it.
function wallMode(on) {
  document.body.classList.toggle("wall", on);
  $("wall-view").hidden = !on || !session;
  $("watch").hidden = on || !session;
  $("wall-toggle").setAttribute("aria-pressed", String(on));
  $("wall-toggle").textContent = on ? "Leave wall display" : "Wall display";
  if (on !== (location.hash === "#wall")) history.replaceState(null, "", on ? "#wall" : location.pathname);
}
$("wall-toggle").addEventListener("click", () => wallMode(!document.body.classList.contains("wall")));
document.addEventListener("keydown", (e) => { if (e.key === "Escape" && document.body.classList.contains("wall")) wallMode(false); });
function drawWall(lines, inbox, links) {
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
    const newest = mine.reduce((a, m) => (!a || m.received_ms > a.received_ms ? m : a), null);
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
const wordSegmenter = new Intl.Segmenter(undefined, { granularity: "word" });
const wordSeparators = /[\s\p{Cf}]+/u;
const unspacedScript = /^[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u1950-\u19ff\u1a20-\u1aaf\ua9e0-\ua9ff\uaa60-\uaadf]/u;
// Each Han ideograph and each hiragana is a word, as word processors count Chinese and Japanese.
const eachAWord = /[\p{Script=Han}\p{Script=Hiragana}]/gu;
function wordCount(text) {
  let n = 0;
  for (const piece of text.split(wordSeparators)) {
    let runEnd = -1;
    for (const s of wordSegmenter.segment(piece)) {
      if (!s.isWordLike) continue;
      const unspaced = unspacedScript.test(s.segment);
      const ideographs = (s.segment.match(eachAWord) || []).length;
      if (ideographs) n += ideographs;
      else if (!(unspaced && runEnd === s.index)) n++;
      runEnd = unspaced ? s.index + s.segment.length : -1;
    }
  }
  return n;
}

// The nodes of this member's active/standby pair, this one first (from /healthz). A page whose node
// stops answering, or answers as the standby, for PAIR_MISSES_MAX checks in a row moves to the
// other node, which has taken over or is taking over (its standby page waits until it has). It
// moves only once the other node answers at all, so that it never lands on the browser's error
// page, and it says where it comes from, so that a standby does not send it back to the node that
// stopped answering it.
let pairUrls = [];
let pairWatch = null;
const PAIR_CHECK_MS = 1000;
const PAIR_MISSES_MAX = 3;
function watchPair() {
  if (pairWatch || pairUrls.length < 2) return;
  let misses = 0;
  pairWatch = setInterval(async () => {
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
    clearInterval(pairWatch);
    location.assign(new URL(location.pathname + "?from=" + location.origin, other).href);
  }, PAIR_CHECK_MS);
}

// The events since the last pass, gathered for EVENT_BATCH_MS so that a burst is one pass, and
// what each asks to load again: a message that arrived, the messages an alarm names, the alarms,
// the links, the chosen line; everything after a gap. More messages than EVENT_MESSAGES_MAX in one
// pass load the inbox whole instead.
const EVENT_BATCH_MS = 200;
const EVENT_MESSAGES_MAX = 20;
let pending = null;
function heard(kind, ev) {
  if (!pending) {
    pending = { all: false, messages: new Set(), alarms: false, links: false, line: false };
    setTimeout(applyHeard, EVENT_BATCH_MS);
  }
  const shownOnLine = (id) => !!document.querySelector("#conversation tr[data-id='" + id + "']");
  if (kind === "gap" || !ev) { pending.all = true; return; }
  if (kind === "message") { pending.messages.add(ev.message); if (ev.line === currentLine) pending.line = true; }
  if (kind === "state" && (ev.line === currentLine || shownOnLine(ev.message))) pending.line = true;
  if (kind === "decision" && ev.line === currentLine) pending.line = true;
  if (kind === "alarm") { pending.alarms = true; if (ev.message && inboxNow.some((m) => m.id === ev.message)) pending.messages.add(ev.message); }
  if (kind === "link") pending.links = true;
}
async function applyHeard() {
  const p = pending;
  pending = null;
  if (!session) return;
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
  const hear = (kind) => (e) => { let ev = null; try { ev = JSON.parse(e.data); } catch { /* read whole */ } heard(kind, ev); };
  events.onmessage = hear("");
  for (const kind of ["message", "state", "alarm", "link", "decision", "gap"]) events.addEventListener(kind, hear(kind));
  events.addEventListener("expired", (e) => {
    let detail = "the session has expired; sign in again";
    try { detail = JSON.parse(e.data).detail || detail; } catch { /* the default says it */ }
    signedOut(detail);
  });
}

async function start() {
  // A page that moved here from the other node of the pair no longer needs to say so.
  if (location.search) history.replaceState(null, "", location.pathname + location.hash);
  try { session = await call("GET", "/console/session"); } catch { session = null; }
  // The pair is known, and watched, before the page shows itself signed in: a node that dies
  // from then on moves the page.
  if (session) {
    const health = await call("GET", "/healthz");
    me = health.member;
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

$("sign-in").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  // The password leaves the page with the request.
  e.target.password.value = "";
  try { await call("POST", "/console/sign-in", { name: f.get("name"), password: f.get("password") }); $("sign-in-error").textContent = ""; await start(); }
  catch (err) { $("sign-in-error").textContent = err.message; }
});
// ---- Lines in a sidebar, search and filters, print. ----

// A member's flag: the two regional-indicator letters of its code, where the code is a country's.
function flag(code) {
  return /^[A-Z]{2}$/.test(code) ? String.fromCodePoint(...[...code].map((c) => 0x1f1e6 + c.charCodeAt(0) - 65)) : "";
}
function lineName(l) {
  return l.members.filter((c) => c !== me || l.members.length === 1).map((c) => (flag(c) + " " + memberName(c)).trim()).join(", ") + (l.title ? " · " + l.title : "");
}
// Every line, what waits on it for this desk, the chosen one marked.
let linesNow = [];
function drawLineList(lines, inbox) {
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
  const sender = $("filter-sender");
  if (sender.options.length !== members.length + 1) {
    const was = sender.value;
    sender.replaceChildren(sender.options[0], ...members.map((c) => { const o = document.createElement("option"); o.value = c; o.textContent = memberName(c); return o; }));
    sender.value = was;
  }
}

// What a row is, for the filters.
function marked(tr, m) {
  tr.dataset.precedence = m.precedence; tr.dataset.class = m.class; tr.dataset.sender = m.sender;
  tr.dataset.ms = String(m.created_ms);
  tr.dataset.text = ((m.subject || "") + " " + (m.body || "") + " " + (m.form_text || "")).toLowerCase();
}
// Hides the rows of the inbox and the line that the filters leave out, and says how many show.
// They filter what the page holds: a list's later pages are searched once shown ("More…").
function applyFilters() {
  const f = $("filters");
  const text = f.text.value.trim().toLowerCase();
  const since = f.since.value ? Date.parse(f.since.value + "T00:00:00Z") : null;
  let shownRows = 0, all = 0;
  for (const tr of document.querySelectorAll("#inbox tr, #conversation tr")) {
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
$("filters").addEventListener("input", applyFilters);
$("filters").addEventListener("submit", (e) => { e.preventDefault(); applyFilters(); });
$("filters").addEventListener("reset", () => setTimeout(applyFilters, 0));
// The line as the record has it, on paper: every page of it loaded first, then the print view,
// which shows the line's messages alone (those the filters leave in).
$("line-print").addEventListener("click", async () => {
  pages.line = Infinity;
  try { await showLine(); } catch (e) { shown(e); return; }
  window.print();
});
// Each "More…" button shows one page more of its list, after what is shown.
for (const [button, list, again] of [["inbox-more", "inbox", refresh], ["alarms-more", "alarms", refresh], ["evidence-more", "evidence", refresh], ["line-more", "line", showLine]]) {
  $(button).addEventListener("click", async () => {
    pages[list] += 1;
    try { await again(); } catch (e) { shown(e); }
  });
}
$("compose").addEventListener("input", () => {
  const f = $("compose");
  // A report may carry the message alone: the node makes its subject from it.
  const report = !!$("compose-form").value.trim();
  f.subject.required = !report; f.body.required = !report;
  const words = wordCount(f.body.value);
  const urgent = URGENT.includes(f.precedence.value);
  $("words").textContent = (words === 1 ? "1 word" : words + " words") + (urgent ? " (at most 200 for " + f.precedence.value + ")" : "");
  $("words").className = urgent && words > 200 ? "over" : "";
});
$("compose").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target;
  const body = { precedence: f.precedence.value, class: f.class.value, subject: f.subject.value, body: f.body.value };
  if (f.caveat.value.trim()) body.caveat = f.caveat.value.trim();
  const report = $("compose-form");
  report.removeAttribute("aria-invalid");
  if (report.value.trim()) {
    try { body.form = JSON.parse(report.value); }
    catch (err) { composeError("The report (form JSON) is not valid JSON: " + err.message); report.setAttribute("aria-invalid", "true"); return; }
    if (!body.subject.trim()) delete body.subject;
    if (!body.body.trim()) delete body.body;
  }
  if (f.ewg.value) body.ewg = f.ewg.value;
  // A FLASH rings at every other desk of the line and demands its answer: it goes only once
  // confirmed.
  if (body.precedence === "FLASH" && !confirm("Send this FLASH? It rings at every other desk of the line and demands an acknowledgement.")) return;
  try {
    await call("POST", "/api/v1/lines/" + currentLine + "/messages", body);
    f.subject.value = ""; f.body.value = ""; report.value = ""; f.ewg.value = "";
    f.precedence.value = "ROUTINE"; f.class.value = "OPERATIONAL"; f.caveat.value = "";
    $("words").textContent = ""; $("words").className = "";
    editing = null; drawFields();
    f.subject.required = true; f.body.required = true;
    $("suggestion-box").hidden = true;
    $("action-error").textContent = ""; $("compose-error").textContent = "";
    await showLine();
  } catch (err) {
    shown(err);
    $("compose-error").textContent = said(err);
    if (err.field && err.field.startsWith("form")) { report.setAttribute("aria-invalid", "true"); markField(err.field); }
  }
});
$("propose").addEventListener("submit", async (e) => {
  e.preventDefault();
  try { await call("POST", "/api/v1/lines/" + currentLine + "/decisions", { text: e.target.text.value }); e.target.text.value = ""; await showLine(); }
  catch (err) { shown(err); }
});
$("sign-out").addEventListener("click", async () => {
  try { await call("POST", "/console/sign-out"); }
  finally {
    if (events) events.close();
    session = null;
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
function openMessage(id) {
  if (document.body.classList.contains("wall")) wallMode(false);
  const row = document.querySelector("#inbox tr[data-id='" + id + "']");
  if (row) { row.scrollIntoView({ block: "center" }); row.tabIndex = -1; row.focus(); }
}
$("banner-open").addEventListener("click", () => openMessage($("banner").dataset.message));
// ---- The roster: the version in force, its members, and the amendments pending. ----

// No event tells of a roster proposal or signature: the section is read again this often while
// it is open, and whenever the operator opens it.
const ROSTER_EVERY_MS = 15000;

const isAdmin = () => !!session && session.role === "admin";
const changesText = (p) => (p.changes.length ? p.changes.join("; ") : "no change");

// A hash by its first twelve hex digits, the whole of it in the title.
function shortHash(hash) {
  const c = document.createElement("code");
  c.textContent = hash.slice(0, 12) + "…"; c.title = hash;
  return c;
}

function rosterShown(e) {
  $("roster-error").textContent = said(e);
  if (e.status === 401) shown(e);
}

function clearRoster() {
  for (const id of ["roster-name", "roster-number", "roster-hash", "roster-first-hash", "roster-rotation", "roster-members", "proposals", "roster-outcome", "roster-error", "amend-member", "roster-propose-error"]) $(id).replaceChildren();
  $("roster-rotation").hidden = true;
  $("roster-rotate-box").hidden = true;
  rosterNow = null;
  delete $("amend-member").dataset.key;
  $("roster-propose").hidden = true;
  $("amend-card").value = "";
  $("amend-card").removeAttribute("aria-invalid");
}

async function showRoster() {
  if (!session) return;
  const [roster, proposals] = await Promise.all([call("GET", "/api/v1/roster"), call("GET", "/api/v1/roster/proposals")]);
  $("roster-name").textContent = roster.name;
  $("roster-number").textContent = String(roster.number);
  $("roster-hash").textContent = roster.hash;
  $("roster-first-hash").textContent = roster.first_hash;
  // A rotation of this member's keys under way, and whom its node still waits for.
  const rotation = roster.rotation;
  $("roster-rotation").hidden = !rotation;
  $("roster-rotation").textContent = rotation
    ? "A rotation of this member's keys is under way (version " + rotation.version + "): this node moves to its new keys once every peer's node holds that version" +
      (rotation.waiting_for.length ? "; still waiting for: " + rotation.waiting_for.join(", ") : "") + "."
    : "";
  $("roster-rotate-box").hidden = !isAdmin() || !!rotation;
  $("roster-members").replaceChildren(...roster.members.map((m) => {
    const tr = document.createElement("tr");
    tr.dataset.member = m.code;
    if (m.suspended) tr.className = "suspended";
    cell(tr, m.code); cell(tr, m.name); cell(tr, m.community);
    const td = cell(tr, m.suspended ? "" : "in good standing");
    if (m.suspended) {
      const mark = document.createElement("strong");
      mark.className = "tag suspended"; mark.textContent = "suspended";
      td.appendChild(mark);
    }
    return tr;
  }));
  // Only an administrator signs: the others see the proposals without the column of buttons.
  const admin = isAdmin();
  $("proposals-action").hidden = !admin;
  $("proposals").replaceChildren(...proposals.map((p) => {
    const tr = document.createElement("tr");
    tr.dataset.hash = p.hash;
    cell(tr, String(p.number));
    cell(tr, "").appendChild(shortHash(p.hash));
    cell(tr, changesText(p));
    cell(tr, p.signed_by.length ? p.signed_by.join(", ") : "no one yet");
    cell(tr, p.lacking == null ? "nothing: it has every signature" : p.lacking);
    if (admin) {
      const td = cell(tr, p.signed_here ? "signed here" : "");
      if (!p.signed_here) {
        const b = document.createElement("button");
        b.type = "button"; b.className = "roster-sign"; b.textContent = "Sign";
        b.setAttribute("aria-label", "Sign version " + p.number + " (" + changesText(p) + ")");
        b.addEventListener("click", () => signProposal(p, b));
        td.appendChild(b);
      }
    }
    return tr;
  }));
  $("proposals-table").hidden = !proposals.length;
  $("proposals-none").hidden = !!proposals.length;
  rosterNow = roster;
  $("roster-propose").hidden = !admin;
  if (admin) drawAmendment();
  $("roster-error").textContent = "";
}

// Signing is an act of the member's state: the administrator confirms what is signed first.
async function signProposal(p, button) {
  const question = "Sign version " + p.number + " of the roster with this member's key?\n\n" +
    "It " + changesText(p) + ".\nHash: " + p.hash + "\n\nThe signature is handed to every member's node.";
  if (!confirm(question)) return;
  button.disabled = true;
  try {
    const r = await call("POST", "/api/v1/roster/proposals/" + encodeURIComponent(p.hash) + "/sign", {});
    const v = r.proposal;
    $("roster-outcome").textContent = r.state === "in_force"
      ? "Signed: version " + v.number + " has every signature it needs and is now in force."
      : "Signed: version " + v.number + " is still proposed" + (v.lacking ? "; it lacks " + v.lacking : "") + ".";
    $("roster-error").textContent = "";
  } catch (e) {
    // The refusal stays on screen: the section is not read again over it.
    button.disabled = false;
    rosterShown(e);
    return;
  }
  await showRoster().catch(rosterShown);
}

// A routine rotation of this member's signing and TLS keys (administrators), after confirmation.
async function rotateKeys(button) {
  const question = "Rotate this member's signing and TLS keys?\n\nThe node makes new keys and puts in force the roster " +
    "version that gives them to this member, signed by its current key and its new key. It moves to them once every " +
    "peer's node holds that version; messages keep flowing meanwhile.";
  if (!confirm(question)) return;
  button.disabled = true;
  try {
    const r = await call("POST", "/api/v1/roster/rotate", {});
    $("roster-outcome").textContent = "Key rotation: version " + r.proposal.number +
      " is in force; this node moves to its new keys once every peer's node holds it.";
    $("roster-error").textContent = "";
  } catch (e) {
    button.disabled = false;
    rosterShown(e);
    return;
  }
  button.disabled = false;
  await showRoster().catch(rosterShown);
}

$("roster-rotate").addEventListener("click", () => rotateKeys($("roster-rotate")));

// ---- Proposing an amendment (administrators): suspend, reinstate, remove, or admit from a card. ----

// The roster in force as last read, from which the member choices are drawn.
let rosterNow = null;

// Which members each amendment may name: not this member itself for a suspension or a removal.
const AMENDABLE = {
  suspend: (m) => !m.suspended && m.code !== me,
  reinstate: (m) => m.suspended,
  remove: (m) => m.code !== me,
};
const NO_ONE = {
  suspend: "no member in good standing to suspend",
  reinstate: "no member is suspended",
  remove: "no member to remove",
};

// The form as the chosen amendment asks: a member to choose, or a card to paste. The choice
// made stays chosen across the section's re-reading while the member may still be chosen.
function drawAmendment() {
  const kind = $("amend-kind").value;
  const admit = kind === "admit";
  $("amend-member-field").hidden = admit;
  $("amend-card-field").hidden = !admit;
  $("amend-card").required = admit;
  if (admit) return;
  const pick = $("amend-member");
  const was = pick.value;
  const members = rosterNow ? rosterNow.members.filter(AMENDABLE[kind]) : [];
  // Unchanged choices are left as they are, not redrawn under the administrator's hand.
  const key = kind + ":" + members.map((m) => m.code + " " + m.name).join(",");
  if (pick.dataset.key === key) return;
  pick.dataset.key = key;
  const options = members.map((m) => {
    const o = document.createElement("option");
    o.value = m.code; o.textContent = m.code + " — " + m.name;
    return o;
  });
  if (!options.length) {
    const o = document.createElement("option");
    o.value = ""; o.textContent = NO_ONE[kind];
    options.push(o);
  }
  pick.replaceChildren(...options);
  if (members.some((m) => m.code === was)) pick.value = was;
}

function proposeError(text) {
  $("roster-propose-error").textContent = text;
  if (text) $("roster-outcome").textContent = "";
}

// The member a pasted card admits, or the reason it cannot be proposed.
function cardMember(text, file) {
  let card;
  try { card = JSON.parse(text); } catch (e) { return { error: "The card is not valid JSON: " + e.message }; }
  if (!card || typeof card !== "object" || Array.isArray(card)) return { error: "The card is not a JSON object: paste the whole card.json." };
  if (card.version !== undefined && card.version !== 1) return { error: "The card is version " + JSON.stringify(card.version) + "; this page reads version 1 cards." };
  const m = card.member;
  if (!m || typeof m !== "object" || Array.isArray(m)) return { error: "The card has no member: a card is {\"version\": 1, \"member\": {\"code\": …, …}}, as adi init writes it." };
  if (typeof m.code !== "string" || !m.code.trim()) return { error: "The card's member has no code." };
  if (file.members.some((x) => x.code === m.code)) return { error: m.code + " is already a member of the roster: its card cannot admit it again." };
  return { member: m };
}

// The roster in force, `file`, amended as the form says, with the words that say what it does;
// or the reason it cannot be proposed.
function amended(file, members) {
  const kind = $("amend-kind").value;
  const suspended = file.suspended || [];
  if (kind === "admit") {
    const { member, error } = cardMember($("amend-card").value, file);
    if (error) return { error };
    file.members = file.members.concat([member]);
    return { file, what: "admits " + member.code + (typeof member.name === "string" ? " (" + member.name + ")" : "") };
  }
  const code = $("amend-member").value;
  const m = members.find((x) => x.code === code);
  if (!code || !m || !AMENDABLE[kind](m)) return { error: "Choose a member to " + kind + "." };
  const named = code + " (" + m.name + ")";
  if (kind === "suspend") { file.suspended = suspended.concat([code]); return { file, what: "suspends " + named }; }
  if (kind === "reinstate") { file.suspended = suspended.filter((c) => c !== code); return { file, what: "reinstates " + named }; }
  file.members = file.members.filter((x) => x.code !== code);
  file.suspended = suspended.filter((c) => c !== code);
  return { file, what: "removes " + named };
}

// Proposing signs with this member's key and hands the version to every member's node: the
// administrator confirms what it does first. The amendment is made on the roster in force as
// read at that moment, so that it undoes nothing that took effect since the page last read it.
async function proposeAmendment(e) {
  e.preventDefault();
  const card = $("amend-card");
  card.removeAttribute("aria-invalid");
  let roster;
  try { roster = await call("GET", "/api/v1/roster"); }
  catch (err) { proposeError("The roster in force could not be read: " + said(err)); if (err.status === 401) shown(err); return; }
  const { file, what, error } = amended(roster.file, roster.members);
  if (error) {
    proposeError(error);
    if ($("amend-kind").value === "admit") { card.setAttribute("aria-invalid", "true"); card.focus(); }
    return;
  }
  proposeError("");
  const question = "Propose version " + (roster.number + 1) + " of the roster, which " + what + "?\n\n" +
    "It is signed with this member's key and handed to every member's node; it takes effect once it carries the signatures its rule asks.";
  if (!confirm(question)) return;
  const button = $("amend-submit");
  button.disabled = true;
  try {
    const r = await call("POST", "/api/v1/roster/proposals", { roster: file });
    const v = r.proposal;
    $("roster-outcome").textContent = r.state === "in_force"
      ? "Proposed: version " + v.number + " (" + changesText(v) + ") has every signature it needs and is now in force."
      : "Proposed: version " + v.number + " (" + changesText(v) + "), signed by " + v.signed_by.join(", ") +
        ". Still lacking: " + (v.lacking || "nothing") + ". Hash " + v.hash + ".";
    if ($("amend-kind").value === "admit") card.value = "";
  } catch (err) {
    proposeError("Not proposed: " + said(err));
    if (err.status === 401) shown(err);
  } finally {
    button.disabled = false;
  }
  await showRoster().catch(rosterShown);
}

$("amend-kind").addEventListener("change", () => { proposeError(""); $("amend-card").removeAttribute("aria-invalid"); drawAmendment(); });
$("roster-propose").addEventListener("submit", proposeAmendment);

$("roster-box").addEventListener("toggle", () => { if ($("roster-box").open) showRoster().catch(rosterShown); });
setInterval(() => { if (session && $("roster-box").open) showRoster().catch(rosterShown); }, ROSTER_EVERY_MS);

// ---- Structured reports: working groups, the COLREGs suggestion, and the map. ----

function composeError(text) { $("compose-error").textContent = text; $("action-error").textContent = text; }

let schemasLoaded = false;
async function loadSchemas() {
  if (schemasLoaded) return;
  try {
    const s = await call("GET", "/api/v1/schemas");
    const pick = $("compose-ewg");
    for (const g of s.working_groups || []) {
      const o = document.createElement("option");
      o.value = g.tag; o.textContent = g.title + " (" + g.tag + ")";
      pick.appendChild(o);
    }
    kindSchemas = s.kinds || {};
    const templates = $("compose-template");
    for (const [kind, schema] of Object.entries(s.kinds || {})) {
      (schema.examples || []).forEach((example, i) => {
        const o = document.createElement("option");
        o.value = kind + "#" + i;
        o.textContent = schema.title + (example.stage ? " (" + example.stage + ")" : "");
        o.dataset.example = JSON.stringify(example, null, 2);
        templates.appendChild(o);
      });
    }
    schemasLoaded = true;
  } catch (e) { /* no list of working groups: the report goes untagged */ }
}

const fixed2 = (n) => Number(n).toFixed(2);
const degrees = (n) => String(Math.round(n) % 360).padStart(3, "0") + "°";

// "CPA 0.62 nm in 32 min": the closest point of approach the node computed.
function cpaText(a) {
  const t = a.tcpa_min == null ? "" : a.tcpa_min < 0.5 ? " now" : " in " + Math.round(a.tcpa_min) + " min";
  return "CPA " + fixed2(a.cpa_nm) + " nm" + t;
}

// The report in the compose form, parsed; null (and said on the page) when there is none.
function composedReport() {
  const text = $("compose-form").value.trim();
  if (!text) { composeError("Write or paste an encounter-at-sea report in “Report (form JSON)” first."); return null; }
  try { return JSON.parse(text); }
  catch (e) { composeError("The report (form JSON) is not valid JSON: " + e.message); return null; }
}

const trackOf = (u) => ({ position: u.position, course_deg: u.course_deg, speed_kn: u.speed_kn });
// The situation the node suggested, written into the report only when the operator confirms it.
let suggested = null;

$("suggest-situation").addEventListener("click", async () => {
  $("suggestion-box").hidden = true; suggested = null;
  const r = composedReport();
  if (!r) return;
  if (r.kind !== "encounter-at-sea" || !r.reporting_unit || !Array.isArray(r.other_units) || !r.other_units[0]) {
    composeError("A situation is suggested for an encounter-at-sea report with a reporting_unit and at least one of other_units.");
    return;
  }
  try {
    const s = await call("POST", "/api/v1/cpa", { own: trackOf(r.reporting_unit), other: trackOf(r.other_units[0]) });
    suggested = s.approach.situation;
    $("suggestion").textContent = s.approach.situation + " · " + cpaText(s.approach) + " · " + (s.rule ? "Rule " + s.rule + ": " : "") + s.advice;
    $("suggestion-box").hidden = false;
    $("compose-error").textContent = ""; $("action-error").textContent = "";
  } catch (e) { shown(e); $("compose-error").textContent = said(e); }
});

$("confirm-situation").addEventListener("click", () => {
  const r = composedReport();
  if (!r || !suggested) return;
  r.situation = suggested;
  $("compose-form").value = JSON.stringify(r, null, 2);
  // The fields follow; the suggestion, now part of the report, is withdrawn.
  $("compose-form").dispatchEvent(new Event("input", { bubbles: true }));
});

// A template fills the report with an example of its kind, for the officer to edit; nothing is
// sent until Send.
$("compose-template").addEventListener("change", (ev) => {
  const o = ev.target.selectedOptions[0];
  if (!o || !o.dataset.example) return;
  $("compose-form").value = o.dataset.example;
  $("compose-form").dispatchEvent(new Event("input", { bubbles: true }));
  ev.target.value = "";
});
// A suggestion is for the report it was made from: editing the report withdraws it. The fields
// below follow the report as written.
$("compose-form").addEventListener("input", () => {
  $("suggestion-box").hidden = true; suggested = null;
  if (fromEditor) return;
  try {
    const r = JSON.parse($("compose-form").value);
    editing = r && typeof r === "object" && kindSchemas[r.kind] ? r : null;
  } catch (e) { editing = null; }
  drawFields();
});

// ---- The report field by field: inputs drawn from the kind's JSON Schema, writing the JSON
// above, which stays what is sent. ----
let kindSchemas = {};
let editing = null;
let fromEditor = false;
const LONG_TEXT = ["narrative", "text", "forces", "reason", "description"];

function def(root, s) {
  for (let n = 0; s && s.$ref && n < 20; n++) s = (root.$defs || {})[s.$ref.split("/").pop()];
  return s || {};
}
// A schema without its "or null".
function plain(root, s) {
  s = def(root, s);
  if (s.oneOf) {
    const alts = s.oneOf.filter((a) => a.type !== "null");
    if (alts.length === 1 && alts.length < s.oneOf.length) return def(root, alts[0]);
  }
  if (Array.isArray(s.type)) return Object.assign({}, s, { type: s.type.find((t) => t !== "null") });
  return s;
}
function blank(root, s) {
  s = plain(root, s);
  if (s.const !== undefined) return s.const;
  if (s.enum) return s.enum[0];
  if (s.oneOf) return blank(root, s.oneOf[0]);
  switch (s.type) {
    case "object": { const o = {}; for (const k of s.required || []) o[k] = blank(root, s.properties[k]); return o; }
    case "array": return [];
    case "boolean": return false;
    case "number": case "integer": return 0;
    default: return "";
  }
}
function writeBack() {
  fromEditor = true;
  $("compose-form").value = JSON.stringify(editing, null, 2);
  $("compose-form").dispatchEvent(new Event("input", { bubbles: true }));
  fromEditor = false;
}
function smallButton(text, onClick) {
  const b = document.createElement("button"); b.type = "button"; b.textContent = text;
  b.addEventListener("click", onClick); return b;
}
function group(label, path) {
  const fs = document.createElement("fieldset"); fs.dataset.path = path;
  const lg = document.createElement("legend"); lg.textContent = label; fs.appendChild(lg);
  return fs;
}
const nameOf = (k) => String(k).replace(/_/g, " ");

// The input or group of inputs for holder[key], whose schema is `schema`; `path` is the field's
// path as the node names it in a refusal.
function fieldFor(root, schema, holder, key, path, label, optional) {
  const s = plain(root, schema);
  if (s.const !== undefined) { holder[key] = s.const; return null; }
  if (s.oneOf) {
    // An area: one of several shapes, each an object of one field.
    const fs = group(label, path);
    const names = s.oneOf.map((a) => Object.keys(def(root, a).properties || {})[0]);
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
    const keys = (s.required || []).filter((k) => k in props);
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
    list.forEach((item, i) => {
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
  let input;
  const value = holder[key];
  if (s.enum) {
    input = document.createElement("select");
    for (const v of (optional ? [""] : []).concat(s.enum)) {
      const o = document.createElement("option"); o.value = v; o.textContent = v === "" ? "(none)" : v; input.appendChild(o);
    }
    input.value = value === undefined || value === null ? "" : value;
  } else if (s.type === "boolean") {
    input = document.createElement("input"); input.type = "checkbox"; input.checked = !!value;
  } else if (s.type === "number" || s.type === "integer") {
    input = document.createElement("input"); input.type = "number"; input.step = "any";
    input.value = value === undefined || value === null ? "" : value;
  } else {
    input = document.createElement(LONG_TEXT.includes(key) ? "textarea" : "input");
    input.value = value === undefined || value === null ? "" : value;
  }
  input.dataset.path = path;
  if (s.description) input.title = s.description;
  const read = () => {
    if (s.type === "boolean") return input.checked;
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

function drawFields() {
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
function markField(field) {
  if (!field || !field.startsWith("form")) return;
  const path = field === "form" ? "" : field.slice("form.".length);
  const el = [...$("report-fields").querySelectorAll("[data-path]")].find((x) => x.dataset.path === path);
  if (!el) return;
  $("report-fields-box").open = true;
  el.setAttribute("aria-invalid", "true");
  if (el.focus) el.focus();
}

const SVGNS = "http://www.w3.org/2000/svg";
function svgEl(name, attrs, parent, text) {
  const e = document.createElementNS(SVGNS, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

function grow(box, x, y) {
  if (x < box[0]) box[0] = x;
  if (y < box[1]) box[1] = y;
  if (x > box[2]) box[2] = x;
  if (y > box[3]) box[3] = y;
}

// The basemap: Natural Earth's countries as TopoJSON, from this node, fetched and decoded once.
let world = null;
function loadWorld() {
  if (!world) {
    world = fetch("/console/world.json", { credentials: "same-origin" })
      .then((r) => { if (!r.ok) throw new Error("the basemap could not be loaded (" + r.status + ")"); return r.json(); })
      .then(decodeTopology);
    world.catch(() => { world = null; });
  }
  return world;
}

// `lon`, give or take whole turns, within 180° of `near`.
const unwrapLon = (lon, near) => lon + 360 * Math.round((near - lon) / 360);
const onMeridian = (lon) => Math.abs(unwrapLon(lon, 180) - 180) < 1e-3;

// TopoJSON keeps each shared boundary once, as an arc: a run of points, quantized (integers, to be
// multiplied by transform.scale and shifted by transform.translate) and delta-encoded (each point
// as its difference from the one before). A polygon is a list of rings, each a list of arc
// indexes; an index ~i (negative) means arc i walked backwards.
//
// The countries are not cut at the antimeridian (Chukotka, Fiji and Antarctica cross it, a step
// from 179.9° to −180°): along every arc and ring each longitude is taken within 180° of the one
// before, so a shape that crosses it is continuous (running on to 190°, say), and the map draws
// copies 360° east and west where its view needs them.
function decodeTopology(topo) {
  const t = topo.transform;
  const arcs = topo.arcs.map((arc) => {
    const pts = new Float64Array(arc.length * 2);
    const box = [Infinity, Infinity, -Infinity, -Infinity];
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
  const ring = (indexes, near) => {
    const out = [];
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
  const countries = [];
  for (const g of object.geometries || []) {
    const polygons = g.type === "Polygon" ? [g.arcs] : g.type === "MultiPolygon" ? g.arcs : [];
    const polys = polygons.filter((rings) => rings.length).map((rings) => {
      const outer = ring(rings[0], 0);
      // Holes start near their outer ring, so that they are cut from the same copy of it.
      const rs = [outer, ...rings.slice(1).map((r) => ring(r, outer[0]))];
      const box = [Infinity, Infinity, -Infinity, -Infinity];
      for (const r of rs) for (let i = 0; i < r.length; i += 2) grow(box, r[i], r[i + 1]);
      return { rings: rs, box };
    });
    countries.push({ name: (g.properties && g.properties.name) || String(g.id || ""), polys });
  }
  return { arcs, countries };
}

// A position of a report as [lon, lat], or null.
function lonLat(pos) {
  return pos && Number.isFinite(pos.lon) && Number.isFinite(pos.lat) ? [pos.lon, pos.lat] : null;
}

// Where a unit at `at` steering `course` is after `nm` nautical miles (a short run: flat earth).
function run(at, course, nm) {
  const c = course * Math.PI / 180;
  const cosLat = Math.max(0.01, Math.cos(at[1] * Math.PI / 180));
  return [at[0] + nm / 60 * Math.sin(c) / cosLat, at[1] + nm / 60 * Math.cos(c)];
}

// An area's outline: a polygon's corners, or a circle as 64 points (radius_nm / 60 degrees of
// latitude, widened in longitude by 1 / cos(latitude)).
function areaRing(area) {
  if (area && Array.isArray(area.polygon)) return area.polygon.map(lonLat).filter((p) => p);
  const c = area && area.circle && lonLat(area.circle.centre);
  if (!c || !(area.circle.radius_nm > 0)) return [];
  const r = area.circle.radius_nm / 60;
  const cosLat = Math.max(0.01, Math.cos(c[1] * Math.PI / 180));
  const ring = [];
  for (let i = 0; i < 64; i++) {
    const a = i / 64 * 2 * Math.PI;
    ring.push([c[0] + r * Math.sin(a) / cosLat, c[1] + r * Math.cos(a)]);
  }
  return ring;
}

function areaWords(area) {
  if (area && area.circle) {
    const c = area.circle.centre;
    return "within " + area.circle.radius_nm + " nm of " + fixed2(c.lat) + ", " + fixed2(c.lon);
  }
  return "a polygon of " + ((area && area.polygon) || []).length + " corners";
}

// What one message's report puts on the map; positions are [lon, lat].
function mapFeatures(m, into) {
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
        const ahead = approaches.map((a) => a.approach.tcpa_min).filter((t) => t > 0);
        if (ahead.length) minutes = Math.max(...ahead);
      } else {
        const a = approaches.find((a) => a.other === u.name) || approaches[i - 1];
        if (a && a.approach.tcpa_min > 0) minutes = a.approach.tcpa_min;
      }
      const at = lonLat(u.position);
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
      const at = lonLat(a.position);
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
async function openMap(messages, title) {
  const view = $("map-view");
  view.hidden = false;
  $("map-title").textContent = title;
  $("map-caption").textContent = "Drawing the map…";
  const feats = { units: [], vectors: [], cpas: [], areas: [], legend: [], captions: [] };
  const several = messages.filter(hasMap).length > 1;
  for (const m of messages) {
    if (!hasMap(m)) continue;
    if (several) feats.legend.push({ cls: "report", text: m.sender + " · " + m.form.kind + (m.subject ? ": " + m.subject : "") });
    mapFeatures(m, feats);
  }
  let basemap = null, note = "";
  try { basemap = await loadWorld(); } catch (e) { note = " (Without coastlines: " + e.message + ".)"; }
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
function drawMap(feats, basemap) {
  const map = $("map");
  map.replaceChildren();
  const rect = map.getBoundingClientRect();
  const W = Math.max(300, Math.round(rect.width)), H = Math.max(200, Math.round(rect.height));
  map.setAttribute("viewBox", "0 0 " + W + " " + H);
  const points = [];
  for (const u of feats.units) points.push(u.at);
  for (const v of feats.vectors) { points.push(v.from); if (v.to) points.push(v.to); }
  for (const c of feats.cpas) points.push(c.a, c.b);
  for (const a of feats.areas) points.push(...a.ring);
  if (!points.length) return false;
  // Across the antimeridian: every longitude is taken within 180° of the first feature's, so a
  // report at 179.9°E and 179.9°W is drawn in one piece (at 179.9 and 180.1).
  const ref = points[0][0];
  for (const p of points) p[0] = unwrapLon(p[0], ref);
  const box = [Infinity, Infinity, -Infinity, -Infinity];
  for (const p of points) grow(box, p[0], p[1]);
  const lon0 = (box[0] + box[2]) / 2, lat0 = (box[1] + box[3]) / 2;
  const cosLat = Math.max(0.05, Math.cos(lat0 * Math.PI / 180));
  // At least 0.6° across, so a close-quarters encounter shows with the coast around it; room
  // at the sides for labels.
  const MIN_SPAN = 0.6;
  const spanX = Math.max((box[2] - box[0]) * cosLat, MIN_SPAN), spanY = Math.max(box[3] - box[1], MIN_SPAN);
  const k = Math.min(Math.max(60, W - 320) / spanX, Math.max(60, H - 100) / spanY);
  const X = (lon) => W / 2 + (lon - lon0) * cosLat * k;
  const Y = (lat) => H / 2 - (lat - lat0) * k;
  const view = { lonMin: lon0 - W / 2 / (cosLat * k), lonMax: lon0 + W / 2 / (cosLat * k), latMin: lat0 - H / 2 / k, latMax: lat0 + H / 2 / k };
  const f1 = (n) => n.toFixed(1);

  const defs = svgEl("defs", {}, map);
  for (const [role, colour] of [["own", "#1a4fa0"], ["other", "#b00020"], ["aircraft", "#5a2d91"]]) {
    const mk = svgEl("marker", { id: "arrow-" + role, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" }, defs);
    svgEl("path", { d: "M0 0L10 5L0 10z", fill: colour }, mk);
  }

  // The basemap, drawn once more 360° east or west wherever the view reaches past ±180°.
  const base = svgEl("g", { class: "basemap", "aria-hidden": "true" }, map);
  if (basemap) {
    const margin = 4 / k;
    const meets = (b, off) => b[0] + off <= view.lonMax + margin && b[2] + off >= view.lonMin - margin &&
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
  function ringPath(pts, off) {
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
  function arcPath(pts, off) {
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
  const obstacles = [];
  const clean = (v) => Number(v.toFixed(2));
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

  const labels = [];
  const areas = svgEl("g", { class: "areas" }, map);
  for (const a of feats.areas) {
    const g = svgEl("g", { class: "area" }, areas);
    svgEl("path", { d: "M" + a.ring.map((p) => f1(X(p[0])) + " " + f1(Y(p[1]))).join("L") + "Z" }, g);
    const top = a.ring.reduce((t, p) => (p[1] > t[1] ? p : t));
    labels.push({ text: svgEl("text", {}, g, a.label), x: X(top[0]), y: Y(top[1]) - 4, around: false });
  }
  const vectors = svgEl("g", { class: "vectors" }, map);
  const along = (x1, y1, x2, y2) => {
    const n = Math.ceil(Math.hypot(x2 - x1, y2 - y1) / 6);
    for (let i = 0; i <= n; i++) obstacles.push({ x: x1 + (x2 - x1) * i / n - 2, y: y1 + (y2 - y1) * i / n - 2, width: 4, height: 4 });
  };
  for (const v of feats.vectors) {
    const x1 = X(v.from[0]), y1 = Y(v.from[1]);
    let x2, y2;
    if (v.to) { x2 = X(v.to[0]); y2 = Y(v.to[1]); }
    else { const h = v.heading * Math.PI / 180; x2 = x1 + v.px * Math.sin(h); y2 = y1 - v.px * Math.cos(h); }
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

function placeLabel(l, obstacles, W, H) {
  const near = [[10, -8, "start"], [10, 16, "start"], [-10, -8, "end"], [-10, 16, "end"], [0, -12, "middle"], [0, 24, "middle"]];
  const far = near.map(([dx, dy, a]) => [dx * 2.5, dy < 0 ? dy - 14 : dy + 14, a]);
  const candidates = !l.around ? [[0, 0, "middle"], [0, 18, "middle"]] : l.far ? near.concat(far) : near.concat(far);
  const overlap = (a, b) => Math.max(0, Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x)) *
    Math.max(0, Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y));
  let best = null, bestCost = Infinity;
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
$("line-map").addEventListener("click", async () => {
  if (!currentLine) return;
  try {
    const msgs = (await callPages("/api/v1/lines/" + currentLine + "/messages", Infinity)).items.filter(hasMap);
    await openMap(msgs, "Reports on the line " + ($("line-title").textContent || currentLine));
  } catch (e) { shown(e); }
});
soundState();
notifyButton();
showCount(0);
start();
