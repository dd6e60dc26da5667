// Shared harness of the browser checks: argument check, Debian's headless Chromium on a
// fresh empty profile (no cache, nothing from an earlier run), a whole-run deadline, and
// one JSON report on stdout. The checks judge nothing; the Rust tests assert.
// Exit status: 0 when the page could be driven, 1 on a harness failure (browser missing,
// page never loaded, a step timed out), 2 when the whole run overran.

import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.IPFM_CHROMIUM || '/usr/bin/chromium';

/** The command-line arguments named in `usage` (all required), or exit 1. */
export function requireArgs(usage, count) {
  const args = process.argv.slice(2, 2 + count);
  if (args.length < count || args.some((a) => !a)) {
    console.error(`usage: ${usage}`);
    process.exit(1);
  }
  return args;
}

/**
 * Runs `check(page)` in headless Chromium and prints the object it returns as JSON.
 * `name` labels errors; `wholeRunMs` bounds everything; `loadTimeoutMs` is the launch and
 * default step timeout; `viewport` and `extraArgs` set up the browser.
 */
export async function inChromium({ name, wholeRunMs, loadTimeoutMs, viewport, extraArgs = [] }, check) {
  if (!existsSync(CHROMIUM)) {
    console.error(`${CHROMIUM} not found: install Debian's chromium with \`make deps\``);
    process.exit(1);
  }
  const overrun = setTimeout(() => {
    console.error(`${name} overran ${wholeRunMs} ms`);
    process.exit(2);
  }, wholeRunMs);
  const profile = mkdtempSync(join(tmpdir(), 'ipfm-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      timeout: loadTimeoutMs,
      viewport,
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        ...extraArgs,
      ],
    });
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(loadTimeoutMs);
    console.log(JSON.stringify(await check(page)));
  } catch (err) {
    console.error(`${name} failed: ${err && err.stack ? err.stack : err}`);
    process.exitCode = 1;
  } finally {
    if (context) {
      await context.close().catch(() => {});
    }
    rmSync(profile, { recursive: true, force: true });
    clearTimeout(overrun);
  }
}
