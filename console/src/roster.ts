// The roster: the version in force, its members, and the amendments pending; an administrator
// signs, proposes an amendment, and rotates this member's keys.

import { asApiError, call, type ApiError, type Member, type Proposal, type Roster, type RosterFile } from "./api";
import { $, cell, said } from "./dom";
import { me, session } from "./session";

// No event tells of a roster proposal or signature: the section is read again this often while
// it is open, and whenever the operator opens it.
const ROSTER_EVERY_MS = 15000;

const isAdmin = () => !!session && session.role === "admin";
const changesText = (p: Proposal): string => (p.changes.length ? p.changes.join("; ") : "no change");

// A hash by its first twelve hex digits, the whole of it in the title.
function shortHash(hash: string): HTMLElement {
  const c = document.createElement("code");
  c.textContent = hash.slice(0, 12) + "…"; c.title = hash;
  return c;
}

// How a refusal that ends the session is shown (set by the page).
let refused: (e: ApiError) => void = () => {};

export function rosterShown(error: unknown): void {
  const e = asApiError(error);
  $("roster-error").textContent = said(e);
  if (e.status === 401) refused(e);
}

export function clearRoster(): void {
  for (const id of ["roster-name", "roster-number", "roster-hash", "roster-first-hash", "roster-rotation", "roster-members", "proposals", "roster-outcome", "roster-error", "amend-member", "roster-propose-error"]) $(id).replaceChildren();
  $("roster-rotation").hidden = true;
  $("roster-rotate-box").hidden = true;
  rosterNow = null;
  delete $<HTMLSelectElement>("amend-member").dataset.key;
  $("roster-propose").hidden = true;
  $<HTMLTextAreaElement>("amend-card").value = "";
  $<HTMLTextAreaElement>("amend-card").removeAttribute("aria-invalid");
}

export async function showRoster(): Promise<void> {
  if (!session) return;
  const [roster, proposals] = await Promise.all([call<Roster>("GET", "/api/v1/roster"), call<Proposal[]>("GET", "/api/v1/roster/proposals")]);
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
    cell(tr, m.code); cell(tr, m.name); cell(tr, m.community || "");
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
async function signProposal(p: Proposal, button: HTMLButtonElement): Promise<void> {
  const question = "Sign version " + p.number + " of the roster with this member's key?\n\n" +
    "It " + changesText(p) + ".\nHash: " + p.hash + "\n\nThe signature is handed to every member's node.";
  if (!confirm(question)) return;
  button.disabled = true;
  try {
    const r = await call<{ state: string; proposal: Proposal }>("POST", "/api/v1/roster/proposals/" + encodeURIComponent(p.hash) + "/sign", {});
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
async function rotateKeys(button: HTMLButtonElement): Promise<void> {
  const question = "Rotate this member's signing and TLS keys?\n\nThe node makes new keys and puts in force the roster " +
    "version that gives them to this member, signed by its current key and its new key. It moves to them once every " +
    "peer's node holds that version; messages keep flowing meanwhile.";
  if (!confirm(question)) return;
  button.disabled = true;
  try {
    const r = await call<{ proposal: Proposal }>("POST", "/api/v1/roster/rotate", {});
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


// ---- Proposing an amendment (administrators): suspend, reinstate, remove, or admit from a card. ----

// The roster in force as last read, from which the member choices are drawn.
export let rosterNow: Roster | null = null;

// Which members each amendment may name: not this member itself for a suspension or a removal.
const AMENDABLE: Record<string, (m: Member) => boolean> = {
  suspend: (m) => !m.suspended && m.code !== me,
  reinstate: (m) => !!m.suspended,
  remove: (m) => m.code !== me,
};
const NO_ONE: Record<string, string> = {
  suspend: "no member in good standing to suspend",
  reinstate: "no member is suspended",
  remove: "no member to remove",
};

// The form as the chosen amendment asks: a member to choose, or a card to paste. The choice
// made stays chosen across the section's re-reading while the member may still be chosen.
function drawAmendment(): void {
  const kind = $<HTMLSelectElement>("amend-kind").value;
  const admit = kind === "admit";
  $("amend-member-field").hidden = admit;
  $("amend-card-field").hidden = !admit;
  $<HTMLTextAreaElement>("amend-card").required = admit;
  if (admit) return;
  const pick = $<HTMLSelectElement>("amend-member");
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

function proposeError(text: string): void {
  $("roster-propose-error").textContent = text;
  if (text) $("roster-outcome").textContent = "";
}

// The member a pasted card admits, or the reason it cannot be proposed.
function cardMember(text: string, file: RosterFile): { member?: Member; error?: string } {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let card: any;
  try { card = JSON.parse(text); } catch (e) { return { error: "The card is not valid JSON: " + asApiError(e).message }; }
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
function amended(file: RosterFile, members: Member[]): { file?: RosterFile; what?: string; error?: string } {
  const kind = $<HTMLSelectElement>("amend-kind").value;
  const suspended = file.suspended || [];
  if (kind === "admit") {
    const { member, error } = cardMember($<HTMLTextAreaElement>("amend-card").value, file);
    if (error || !member) return { error };
    file.members = file.members.concat([member]);
    return { file, what: "admits " + member.code + (typeof member.name === "string" ? " (" + member.name + ")" : "") };
  }
  const code = $<HTMLSelectElement>("amend-member").value;
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
async function proposeAmendment(e: Event): Promise<void> {
  e.preventDefault();
  const card = $<HTMLTextAreaElement>("amend-card");
  card.removeAttribute("aria-invalid");
  let roster: Roster;
  try { roster = await call<Roster>("GET", "/api/v1/roster"); }
  catch (error) { const err = asApiError(error); proposeError("The roster in force could not be read: " + said(err)); if (err.status === 401) refused(err); return; }
  const { file, what, error } = amended(roster.file, roster.members);
  if (error) {
    proposeError(error);
    if ($<HTMLSelectElement>("amend-kind").value === "admit") { card.setAttribute("aria-invalid", "true"); card.focus(); }
    return;
  }
  proposeError("");
  const question = "Propose version " + (roster.number + 1) + " of the roster, which " + what + "?\n\n" +
    "It is signed with this member's key and handed to every member's node; it takes effect once it carries the signatures its rule asks.";
  if (!confirm(question)) return;
  const button = $<HTMLButtonElement>("amend-submit");
  button.disabled = true;
  try {
    const r = await call<{ state: string; proposal: Proposal }>("POST", "/api/v1/roster/proposals", { roster: file });
    const v = r.proposal;
    $("roster-outcome").textContent = r.state === "in_force"
      ? "Proposed: version " + v.number + " (" + changesText(v) + ") has every signature it needs and is now in force."
      : "Proposed: version " + v.number + " (" + changesText(v) + "), signed by " + v.signed_by.join(", ") +
        ". Still lacking: " + (v.lacking || "nothing") + ". Hash " + v.hash + ".";
    if ($<HTMLSelectElement>("amend-kind").value === "admit") card.value = "";
  } catch (error) {
    const err = asApiError(error);
    proposeError("Not proposed: " + said(err));
    if (err.status === 401) refused(err);
  } finally {
    button.disabled = false;
  }
  await showRoster().catch(rosterShown);
}

/** Sets up the roster's controls; `shown` puts a refusal that ends the session on the page. */
export function setUpRoster(shown: (e: ApiError) => void): void {
  refused = shown;
  $<HTMLButtonElement>("roster-rotate").addEventListener("click", () => rotateKeys($<HTMLButtonElement>("roster-rotate")));

  $<HTMLSelectElement>("amend-kind").addEventListener("change", () => { proposeError(""); $<HTMLTextAreaElement>("amend-card").removeAttribute("aria-invalid"); drawAmendment(); });
  $("roster-propose").addEventListener("submit", proposeAmendment);

  $<HTMLDetailsElement>("roster-box").addEventListener("toggle", () => { if ($<HTMLDetailsElement>("roster-box").open) showRoster().catch(rosterShown); });
  setInterval(() => { if (session && $<HTMLDetailsElement>("roster-box").open) showRoster().catch(rosterShown); }, ROSTER_EVERY_MS);
}
