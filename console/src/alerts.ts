// What tells of urgent traffic outside the page itself: the count in the tab's title and on its
// icon, and desktop notifications.

import { $ } from "./dom";

// The count of what waits for this desk, in the tab's title and on its icon.
export function showCount(n: number): void {
  document.title = n ? "(" + n + ") ADI console" : "ADI console";
  const link = $<HTMLLinkElement>("favicon");
  if (link.dataset.count === String(n)) return;
  const c = document.createElement("canvas");
  c.width = 64; c.height = 64;
  const g = c.getContext("2d");
  if (!g) return;
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
const notified = new Set<string>();

function notifyButton(): void {
  const b = $<HTMLButtonElement>("notify");
  b.hidden = !("Notification" in window);
  if (b.hidden) return;
  const p = Notification.permission;
  b.textContent = p === "granted" ? "Desktop alerts on" : p === "denied" ? "Desktop alerts blocked by the browser" : "Allow desktop alerts";
  b.disabled = p !== "default";
}

/** Sets up the button that asks the browser for leave to notify. */
export function setUpNotifications(): void {
  $("notify").addEventListener("click", async () => {
    try { await Notification.requestPermission(); } catch { /* the browser decides */ }
    notifyButton();
  });
  notifyButton();
}

/** Tells `title` and `body` on the desktop once per `key`; a click opens `open`, if given. */
export function notify(key: string, title: string, body: string, open?: () => void): void {
  if (!("Notification" in window) || Notification.permission !== "granted" || notified.has(key)) return;
  notified.add(key);
  try {
    const n = new Notification(title, { body, tag: key, requireInteraction: true });
    n.onclick = () => { window.focus(); if (open) open(); n.close(); };
  } catch { /* a browser that shows notifications only from a service worker */ }
}
