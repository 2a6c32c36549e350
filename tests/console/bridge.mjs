// Drives one headless Chromium page for the console's browser tests (`crates/node/tests/common/browser.rs`)
// through Playwright, over stdin and stdout: one JSON command a line in, one JSON reply a line out.
//
//   in:  {"id": 7, "cmd": "click", "selector": "#banner-ack"}
//   out: {"id": 7, "ok": null}            or  {"id": 7, "error": "what went wrong"}
//
// Debian's Chromium (`/usr/bin/chromium`) is launched at start (headless, 1366x768); playwright-core
// downloads no browser. Commands run one after another, in the order they come. Elements are found
// with Playwright's locators, found again on every try and waited for (visible, stable, enabled)
// up to the command's `timeout` in milliseconds (30 s when none is given). A `confirm` or `prompt`
// the page opens stays open, kept until `answer_dialog` answers it: an action that opens one is
// answered as soon as the dialog shows. A failing command is answered with its error; the bridge
// goes on. When stdin closes, the browser is closed and the bridge exits.

import { EventEmitter } from "node:events";
import { readFileSync, readdirSync } from "node:fs";
import { createInterface } from "node:readline";

import { AxeBuilder } from "@axe-core/playwright";
import { chromium } from "playwright-core";

const CHROMIUM = "/usr/bin/chromium";
const TIMEOUT_MS = 30_000;
const POLL_MS = 100;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/// The dialogs the page opened and no command answered yet, oldest first.
const dialogs = [];
const opened = new EventEmitter();

const launched = (async () => {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  page.on("dialog", (dialog) => {
    dialogs.push(dialog);
    opened.emit("dialog");
  });
  return { browser, context, page, pid: browserPid() };
})();
// A failed launch is told in the reply to every command.
launched.catch(() => {});

/// The browser's process: Playwright starts it as this process's child, in a process group of its
/// own, so that whoever started this bridge can end it too should the bridge be killed.
function browserPid() {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) === process.pid) return Number(entry);
    } catch {
      // The process ended while the list was read.
    }
  }
  return null;
}

/// A function body, as the tests write their scripts (`return …;`, the arguments in `arguments`),
/// as an expression Playwright evaluates in the page.
function expression(body, args) {
  return `(function () {\n${body}\n}).apply(null, ${JSON.stringify(args ?? [])})`;
}

/// Runs an action (a click, a key, a choice) and answers once it is done, or as soon as it opens a
/// dialog: the action finishes only when the dialog is answered, by a later command.
async function untilDialog(action) {
  const before = dialogs.length;
  let onDialog;
  const dialogShown = new Promise((resolve) => {
    onDialog = () => resolve();
    opened.on("dialog", onDialog);
  });
  action.catch(() => {});
  try {
    if (dialogs.length > before) return null;
    await Promise.race([action, dialogShown]);
    return null;
  } finally {
    opened.off("dialog", onDialog);
  }
}

/// The oldest dialog not answered yet, waited for up to `timeout` ms.
async function nextDialog(timeout) {
  const deadline = Date.now() + timeout;
  while (dialogs.length === 0) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`no dialog opened in ${timeout} ms`);
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, left);
      opened.once("dialog", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  return dialogs.shift();
}

/// Evaluates `body` until it returns `true`, reading it again while the page is between
/// documents; fails after `timeout` ms with the last value or error.
async function waitFor(page, body, args, timeout) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await page.evaluate(expression(body, args));
      if (last === true) return true;
      last = JSON.stringify(last);
    } catch (e) {
      last = e.message;
    }
    if (Date.now() >= deadline) {
      throw new Error(`not true after ${timeout} ms (last: ${last}; the page at ${page.url()})`);
    }
    await sleep(POLL_MS);
  }
}

/// What an element shows, as the operator reads it: its rendered text, or nothing when it is not
/// shown.
function shownText(element) {
  const shown = element.checkVisibility ? element.checkVisibility() : element.getClientRects().length > 0;
  return shown ? element.innerText.trim() : "";
}

/// A violation as the tests report it: the rule, its impact, its help, and where it failed.
function violation(v) {
  const where = (n) => n.target.map((t) => (Array.isArray(t) ? t.join(" >>> ") : t)).join(" ");
  return { id: v.id, impact: v.impact ?? null, help: v.help, targets: v.nodes.map(where) };
}

async function run(command) {
  const { page, context, browser, pid } = await launched;
  const timeout = command.timeout ?? TIMEOUT_MS;
  const one = () => page.locator(command.selector).first();
  switch (command.cmd) {
    case "hello":
      return { browser: browser.version(), pid };
    case "goto":
      await page.goto(command.url, { timeout });
      return null;
    case "url":
      return page.url();
    case "title":
      return await page.title();
    case "find":
      await one().waitFor({ state: "attached", timeout });
      return null;
    case "fill":
      return await untilDialog(one().fill(command.text, { timeout }));
    case "click":
      return await untilDialog(one().click({ timeout }));
    case "files":
      await one().setInputFiles(
        command.files.map((f) => ({ name: f.name, mimeType: f.mime, buffer: Buffer.from(f.hex, "hex") })),
        { timeout },
      );
      return null;
    case "select":
      return await untilDialog(one().selectOption(command.value, { timeout }));
    case "press":
      return await untilDialog(page.keyboard.press(command.key));
    case "text":
      return await one().evaluate(shownText, undefined, { timeout });
    case "count":
      return await page.locator(command.selector).count();
    case "visible":
      return await one().isVisible();
    case "attribute":
      return await one().getAttribute(command.name, { timeout });
    case "evaluate":
      return (await page.evaluate(expression(command.script, command.args))) ?? null;
    case "wait_for":
      return await waitFor(page, command.script, command.args, timeout);
    case "screenshot":
      await page.screenshot({ path: command.path, timeout });
      return null;
    case "grant":
      await context.grantPermissions(command.permissions, {
        origin: command.origin ?? new URL(page.url()).origin,
      });
      return null;
    case "dialog_open":
      return dialogs.length > 0;
    case "answer_dialog": {
      const dialog = await nextDialog(timeout);
      const message = dialog.message();
      if (!command.accept) await dialog.dismiss();
      else if (command.text) await dialog.accept(command.text);
      else await dialog.accept();
      return message;
    }
    case "axe": {
      let builder = new AxeBuilder({ page });
      if (command.tags) builder = builder.withTags(command.tags);
      const result = await builder.analyze();
      return { passes: result.passes.length, violations: result.violations.map(violation) };
    }
    case "viewport":
      await page.setViewportSize({ width: command.width, height: command.height });
      return null;
    case "media":
      await page.emulateMedia({ media: command.media ?? null });
      return null;
    case "drop_header": {
      // Every request of the page goes out without the header `name`; with no name, as the page
      // makes it again.
      await page.unrouteAll({ behavior: "wait" });
      const name = command.name?.toLowerCase();
      if (name) {
        await page.route("**/*", (route) => {
          const headers = { ...route.request().headers() };
          delete headers[name];
          return route.continue({ headers });
        });
      }
      return null;
    }
    default:
      throw new Error(`no command ${JSON.stringify(command.cmd)}`);
  }
}

function reply(answer) {
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}

async function handle(line) {
  if (!line.trim()) return;
  let command;
  try {
    command = JSON.parse(line);
  } catch (e) {
    reply({ id: null, error: `not a JSON command: ${e.message}` });
    return;
  }
  try {
    reply({ id: command.id, ok: (await run(command)) ?? null });
  } catch (e) {
    // Playwright's messages carry terminal colours.
    reply({ id: command.id, error: String(e?.message ?? e).replace(/\u001b\[[0-9;]*m/g, "") });
  }
}

async function shutDown() {
  try {
    const { browser } = await launched;
    await Promise.race([browser.close(), sleep(10_000)]);
  } catch {
    // Nothing was launched, or it is gone already.
  }
  process.exit(0);
}

// Whatever escapes a command is told on stderr; the bridge goes on.
process.on("uncaughtException", (e) => console.error("bridge:", e));
process.on("unhandledRejection", (e) => console.error("bridge:", e));

let queue = Promise.resolve();
const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on("line", (line) => {
  queue = queue.then(() => handle(line));
});
lines.on("close", () => {
  queue = queue.then(shutDown);
});
