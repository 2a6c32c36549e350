// The alarm tone: two notes at the volume the officer set (0 to 100, kept in this browser). A
// browser holds sound back until the page has been clicked or typed in once; until then the
// header says so, and the banner, the title and the icon carry the alarm alone.

import { $ } from "./dom";

const VOLUME_KEY = "adi.volume";
let volume = 80;
let audio: AudioContext | null = null;
try {
  const kept = localStorage.getItem(VOLUME_KEY);
  if (kept !== null && Number(kept) >= 0 && Number(kept) <= 100) volume = Number(kept);
} catch { /* storage refused: the default holds */ }

export function soundState(): void {
  const blocked = !audio || audio.state !== "running";
  document.body.dataset.sound = volume === 0 ? "off" : blocked ? "blocked" : "on";
  const warning = volume === 0 ? "The alarm tone is off: only the banner, the title and the icon show an alarm."
    : blocked ? "The browser holds the alarm tone back until this page is clicked: press Test sound." : "";
  // A warning replaces what was said; once there is none, a warning said before goes and the
  // outcome of a test stays.
  if (warning || $("sound-state").className === "error") saidSound(warning, true);
}

function saidSound(text: string, warning: boolean): void {
  const state = $("sound-state");
  state.textContent = text;
  state.className = warning ? "error" : "";
  state.hidden = !text;
}

function unlockSound(): void {
  try {
    if (!audio) { audio = new AudioContext(); audio.onstatechange = soundState; }
    if (audio.state !== "running") audio.resume().then(soundState, soundState);
  } catch { /* no sound device: the banner stays */ }
  soundState();
}

/** Plays the tone once; false when the browser holds sound back or the volume is 0. */
function ring(): boolean {
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

// The tone repeats while something waits for this desk, until it is answered.
const RING_EVERY_MS = 2000;
let ringing: number | null = null;
export function startRinging(): void {
  document.body.dataset.ringing = "1";
  if (ringing) return;
  ring();
  ringing = window.setInterval(ring, RING_EVERY_MS);
}
export function stopRinging(): void {
  delete document.body.dataset.ringing;
  if (ringing) { clearInterval(ringing); ringing = null; }
}

// The tone, tried: once the browser has let the sound start (a moment after the click).
const TEST_SOUND_TRIES = 20;
const TEST_SOUND_SHOWN_MS = 15000;

/** Sets up the volume slider and Test sound, and unlocks the sound on the first click or key. */
export function setUpSound(): void {
  // Unlocked on a click rather than a press, so that nothing on the page moves between the press
  // and the release of the button that was pressed.
  document.addEventListener("click", unlockSound);
  document.addEventListener("keydown", unlockSound);
  const slider = $<HTMLInputElement>("volume");
  slider.value = String(volume);
  slider.addEventListener("input", () => {
    volume = Number(slider.value);
    try { localStorage.setItem(VOLUME_KEY, String(volume)); } catch { /* kept for this page only */ }
    soundState();
  });
  $("test-sound").addEventListener("click", () => {
    unlockSound();
    const attempt = (tries: number) => {
      if (ring()) {
        const said = "Tone played at " + volume + "%. If you heard nothing, check the speakers.";
        saidSound(said, false);
        setTimeout(() => { if ($("sound-state").textContent === said) saidSound("", false); }, TEST_SOUND_SHOWN_MS);
      } else if (tries > 0 && volume > 0) {
        setTimeout(() => attempt(tries - 1), 100);
      }
    };
    attempt(TEST_SOUND_TRIES);
  });
  soundState();
}
