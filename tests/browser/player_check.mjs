// Checks the ipfm web player in Debian's headless Chromium, driven by playwright-core.
//
//   node player_check.mjs URL SCREENSHOT.png
//
// Opens URL (a station root served by the ipfm gateway), presses Play, switches the quality
// menu to its first rendition and waits until the audio has advanced >= 5 s, reads the
// now-playing title, takes a screenshot, and prints one JSON object on stdout describing
// what it saw. It judges nothing: the Rust test (node/tests/player_page.rs) asserts.
// Exit status: see chromium.mjs.

import { inChromium, requireArgs } from './chromium.mjs';

const PLAYED_SECS = 5;
// Bounded waits: a loaded 2-core machine starts Chromium in a few seconds.
const LOAD_TIMEOUT_MS = 30_000;
const PLAY_TIMEOUT_MS = 30_000;
const TITLE_TIMEOUT_MS = 15_000;
const WHOLE_RUN_MS = 100_000;

const [url, screenshotPath] = requireArgs('node player_check.mjs URL SCREENSHOT.png', 2);

await inChromium({
  name: 'player check',
  wholeRunMs: WHOLE_RUN_MS,
  loadTimeoutMs: LOAD_TIMEOUT_MS,
  viewport: { width: 800, height: 900 },
  extraArgs: ['--autoplay-policy=no-user-gesture-required'],
}, async (page) => {
  const consoleErrors = [];
  const failedRequests = [];
  const requests = [];
  page.on('console', (msg) => { if (msg.type() === 'error') consoleErrors.push(msg.text()); });
  page.on('pageerror', (err) => consoleErrors.push(String(err)));
  // net::ERR_ABORTED is the page cancelling its own request (hls.js drops the old level's
  // in-flight segment when the quality changes), not the server failing it: kept apart.
  const abortedRequests = [];
  page.on('requestfailed', (req) => {
    const text = `${req.url()} ${req.failure()?.errorText}`;
    (req.failure()?.errorText === 'net::ERR_ABORTED' ? abortedRequests : failedRequests).push(text);
  });
  page.on('request', (req) => requests.push(req.url()));
  page.on('response', (res) => { if (res.status() >= 400) failedRequests.push(`${res.url()} HTTP ${res.status()}`); });

  await page.goto(url, { waitUntil: 'load', timeout: LOAD_TIMEOUT_MS });
  await page.waitForSelector('#play:not([disabled])', { timeout: LOAD_TIMEOUT_MS });
  const qualityOptions = await page.$$eval('#quality option', (opts) => opts.map((o) => o.textContent));

  await page.click('#play');
  // Playing: a live stream starts near its live edge, an on-demand one at 0, so progress is
  // measured from where playback began.
  await page.waitForFunction(() => {
    const audio = document.getElementById('audio');
    return !audio.paused && audio.readyState >= 3 && audio.currentTime > 0;
  }, null, { timeout: PLAY_TIMEOUT_MS });
  const startTime = await page.evaluate(() => document.getElementById('audio').currentTime);

  // Pick the first rendition by hand: from here on its segments must be the ones fetched.
  const switchedAt = requests.length;
  await page.selectOption('#quality', '0');
  let played = true;
  try {
    await page.waitForFunction(([start, secs]) =>
      document.getElementById('audio').currentTime - start >= secs,
    [startTime, PLAYED_SECS], { timeout: PLAY_TIMEOUT_MS, polling: 250 });
  } catch {
    played = false; // reported below; the Rust test fails on it with the page's state
  }
  const afterSwitch = requests.slice(switchedAt).map((u) => new URL(u).pathname);

  try {
    await page.waitForFunction(() => document.getElementById('now-title').textContent !== '—',
      null, { timeout: TITLE_TIMEOUT_MS });
  } catch {
    // reported as the title "—"
  }
  const state = await page.evaluate(() => {
    const audio = document.getElementById('audio');
    const text = (id) => document.getElementById(id).textContent.trim();
    return {
      currentTime: audio.currentTime,
      paused: audio.paused,
      engine: audio.src.startsWith('blob:') ? 'hls.js' : (audio.src ? 'native' : 'none'),
      stationName: text('station-name'),
      title: text('now-title'),
      next: document.getElementById('now-next').hidden ? null : text('now-next'),
      status: text('status'),
      error: document.getElementById('error').hidden ? null : text('error-text'),
      history: [...document.querySelectorAll('#history li')].map((li) => li.textContent.trim()),
      qualitySelected: document.getElementById('quality').value,
    };
  });
  await page.screenshot({ path: screenshotPath, fullPage: true });

  return {
    ...state,
    startTime,
    advanced: state.currentTime - startTime,
    played,
    qualityOptions,
    segmentsAfterSwitch: afterSwitch.filter((p) => p.endsWith('.ts')),
    consoleErrors,
    failedRequests,
    abortedRequests,
    screenshot: screenshotPath,
  };
});
