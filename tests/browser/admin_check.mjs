// Checks the ipfm operator dashboard in Debian's headless Chromium, driven by playwright-core.
//
//   node admin_check.mjs URL TOKEN SCREENSHOT.png
//
// Opens URL (a running station's /admin) with no token and records what the page shows and
// requests; signs in with a wrong token, then with TOKEN; waits for the panels to fill
// (peer id, IPNS name, library, skipped files, chart); clicks Skip and waits for the queue
// to change; reloads (the token is kept for the tab); takes a screenshot; prints one JSON
// object describing what it saw. It judges nothing: node/tests/admin_page.rs asserts.
// Exit status: see chromium.mjs.

import { inChromium, requireArgs } from './chromium.mjs';

// Bounded waits: a loaded 2-core machine starts Chromium in a few seconds; a skip takes
// effect within a segment or two once the next track is decoded.
const LOAD_TIMEOUT_MS = 30_000;
const DATA_TIMEOUT_MS = 30_000;
const SKIP_TIMEOUT_MS = 45_000;
const WHOLE_RUN_MS = 150_000;

const [url, token, screenshotPath] = requireArgs('node admin_check.mjs URL TOKEN SCREENSHOT.png', 3);

await inChromium({
  name: 'admin check',
  wholeRunMs: WHOLE_RUN_MS,
  loadTimeoutMs: LOAD_TIMEOUT_MS,
  viewport: { width: 1200, height: 1000 },
}, async (page) => {
  // Events are filed under the phase they happened in: the wrong-token phase is expected to
  // produce a 401 (and Chromium's console line about it); no other phase may fail.
  let phase = 'no-token';
  const consoleErrors = [];
  const failedRequests = [];
  const apiRequests = [];
  page.on('console', (msg) => { if (msg.type() === 'error') consoleErrors.push({ phase, text: msg.text() }); });
  page.on('pageerror', (err) => consoleErrors.push({ phase, text: String(err) }));
  // A reload cancels the old page's polls still in flight (net::ERR_ABORTED); those belong to
  // the page going away, not to a failure, so they are reported apart.
  const issuedIn = new WeakMap();
  const abortedByReload = [];
  let reloadDone = false;
  page.on('requestfailed', (req) => {
    const text = `${req.url()} ${req.failure()?.errorText}`;
    const oldPage = phase === 'reload' && issuedIn.get(req) !== 'after-reload';
    if (oldPage && req.failure()?.errorText === 'net::ERR_ABORTED') abortedByReload.push(text);
    else failedRequests.push({ phase, text });
  });
  page.on('response', (res) => { if (res.status() >= 400) failedRequests.push({ phase, text: `${res.url()} HTTP ${res.status()}` }); });
  page.on('request', (req) => {
    issuedIn.set(req, phase === 'reload' && reloadDone ? 'after-reload' : phase);
    const path = new URL(req.url()).pathname;
    if (path.startsWith('/api/')) {
      apiRequests.push({ phase, path, auth: Boolean(req.headers().authorization) });
    }
  });

  const visible = (id) => page.evaluate((i) => !document.getElementById(i).hidden, id);
  const text = (id) => page.evaluate((i) => document.getElementById(i).textContent.trim(), id);

  // 1. No token: the sign-in prompt, nothing else.
  await page.goto(url, { waitUntil: 'load', timeout: LOAD_TIMEOUT_MS });
  await page.waitForSelector('#login:not([hidden])', { timeout: LOAD_TIMEOUT_MS });
  // Give a page that would fetch data on its own the time to do it.
  await page.waitForTimeout(1500);
  const withoutToken = {
    loginVisible: await visible('login'),
    dashboardVisible: await visible('dashboard'),
    peerId: await text('peer-id'),
    tracks: await page.$$eval('#tracks li', (items) => items.length),
    apiRequests: apiRequests.filter((r) => r.phase === 'no-token').map((r) => r.path),
  };

  // 2. A wrong token: refused, still no data.
  phase = 'wrong-token';
  await page.fill('#token', 'not-the-token');
  await page.click('#login-submit');
  await page.waitForSelector('#login-error:not([hidden])', { timeout: DATA_TIMEOUT_MS });
  const wrongToken = {
    error: await text('login-error'),
    loginVisible: await visible('login'),
    dashboardVisible: await visible('dashboard'),
    peerId: await text('peer-id'),
  };

  // 3. The token: every panel fills.
  phase = 'signed-in';
  await page.fill('#token', token);
  await page.click('#login-submit');
  await page.waitForSelector('#dashboard:not([hidden])', { timeout: DATA_TIMEOUT_MS });
  await page.waitForFunction(() => {
    const filled = (id) => !['', '—'].includes(document.getElementById(id).textContent.trim());
    const chart = document.getElementById('activity-chart');
    return filled('peer-id') && filled('ipns-name') && filled('now-playing') && filled('up-next') &&
      filled('blocks') && document.querySelectorAll('#tracks li.track').length > 0 &&
      document.querySelectorAll('#skipped li.skipped-file').length > 0 &&
      chart && Number(chart.dataset.points) >= 1;
  }, null, { timeout: DATA_TIMEOUT_MS, polling: 250 });
  const signedIn = await page.evaluate(() => {
    const t = (id) => document.getElementById(id).textContent.trim();
    const chart = document.getElementById('activity-chart');
    const polyline = chart.querySelector('polyline.listeners');
    return {
      stationName: t('station-name'),
      peerId: t('peer-id'),
      version: t('version'),
      ipnsName: t('ipns-name'),
      rootCid: t('root-cid'),
      lastPublish: t('last-publish'),
      nowPlaying: t('now-playing'),
      upNext: t('up-next'),
      blocks: t('blocks'),
      tracks: [...document.querySelectorAll('#tracks li.track')].map((li) => li.textContent.trim()),
      skipped: [...document.querySelectorAll('#skipped li.skipped-file')].map((li) => ({
        path: li.querySelector('.path').textContent.trim(),
        reason: li.querySelector('.reason').textContent.trim(),
      })),
      chartPoints: Number(chart.dataset.points),
      chartPolylinePoints: polyline ? polyline.getAttribute('points').trim().split(/\s+/).filter(Boolean).length : 0,
      publicLink: document.getElementById('public-link').href,
      playerLink: document.getElementById('player-link').href,
    };
  });
  const tokenSentWithEveryCall = apiRequests
    .filter((r) => r.phase === 'signed-in')
    .every((r) => r.auth);

  // 4. Skip: what plays changes.
  phase = 'skip';
  await page.click('#skip');
  let skipChanged = true;
  try {
    await page.waitForFunction((before) =>
      document.getElementById('now-playing').textContent.trim() !== before,
    signedIn.nowPlaying, { timeout: SKIP_TIMEOUT_MS, polling: 250 });
  } catch {
    skipChanged = false; // reported; the Rust test fails on it
  }
  const afterSkip = {
    nowPlaying: await text('now-playing'),
    upNext: await text('up-next'),
    skipStatus: await text('skip-status'),
  };

  // 5. Reload: the tab keeps the token, the dashboard comes back without a prompt.
  phase = 'reload';
  await page.reload({ waitUntil: 'load', timeout: LOAD_TIMEOUT_MS });
  reloadDone = true;
  let keptAfterReload = true;
  try {
    await page.waitForFunction(() => {
      const id = document.getElementById('peer-id').textContent.trim();
      return !document.getElementById('dashboard').hidden && id !== '' && id !== '—';
    }, null, { timeout: DATA_TIMEOUT_MS });
  } catch {
    keptAfterReload = false;
  }
  await page.screenshot({ path: screenshotPath, fullPage: true });

  const outside = (list) => list.filter((e) => e.phase !== 'wrong-token').map((e) => `${e.phase}: ${e.text}`);
  return {
    withoutToken,
    wrongToken,
    wrongTokenFailures: failedRequests.filter((e) => e.phase === 'wrong-token').map((e) => e.text),
    signedIn,
    tokenSentWithEveryCall,
    skipChanged,
    beforeSkip: { nowPlaying: signedIn.nowPlaying, upNext: signedIn.upNext },
    afterSkip,
    keptAfterReload,
    consoleErrors: outside(consoleErrors),
    failedRequests: outside(failedRequests),
    abortedByReload,
    screenshot: screenshotPath,
  };
});
