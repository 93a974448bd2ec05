// What the browser suites share: Chromium as the suites launch it, a page that records
// CSP violations and page errors, screenshots, the 390 px and axe checks, pinning a
// descriptor through the trust panel.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const SHOTS = process.env.SCREENSHOTS ?? join(ROOT, 'web/screenshots/latest');
export const PHONE = { width: 390, height: 844 };
export const cspViolations = [];

// playwright-core gives every launch a fresh user-data dir of its own (a new temporary
// playwright_chromiumdev_profile-* directory, removed when the browser closes).
export const launch = () => chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--no-first-run'],
});

/** A page in a fresh context; `allowed(url)`: with `offline`, the only URLs it may reach. */
export async function newPage(browser, { lang = 'en', viewport = PHONE, offline = false, allowed = () => false } = {}) {
  const context = await browser.newContext({ viewport, locale: lang });
  await context.addInitScript((l) => { if (!localStorage.getItem('carbon-ledger.lang')) localStorage.setItem('carbon-ledger.lang', l); }, lang);
  const page = await context.newPage();
  page.on('console', (m) => {
    if (/Content.Security.Policy|Refused to (load|execute|apply|connect)/i.test(m.text())) cspViolations.push(m.text());
  });
  page.on('pageerror', (e) => cspViolations.push(`page error: ${e.message}`));
  if (offline) await context.route('**/*', (r) => (r.request().url().startsWith('file:') || allowed(r.request().url()) ? r.continue() : r.abort()));
  return page;
}

/** A screenshot of what the screen shows (scrolled to `focus` if given), for the README. */
export async function shot(page, name, focus) {
  if (focus) await page.locator(focus).first().evaluate((e) => e.scrollIntoView({ block: 'center' }));
  else await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

export async function noHorizontalScroll(page) {
  const { scroll, client } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
  assert.ok(scroll <= client, `horizontal scroll at ${client} px: content is ${scroll} px wide on ${page.url()}`);
}

export async function axe(page) {
  const source = readFileSync(join(ROOT, 'node_modules/axe-core/axe.min.js'), 'utf8');
  const violations = await page.evaluate(async (src) => {
    (0, eval)(src); // eslint-disable-line no-eval -- DevTools evaluation, not the page's CSP
    const result = await window.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'best-practice'] });
    return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id}: ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`);
  }, source);
  assert.deepEqual(violations, [], `axe on ${page.url()}`);
}

/** Pin a descriptor through the trust panel: the RPC endpoint first, then the file. */
export async function pinFromFile(page, descriptor, rpc) {
  await page.fill('#rpc-url', rpc);
  await page.dispatchEvent('#rpc-url', 'change');
  await page.setInputFiles('#descriptor-file', { name: 'ledger.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(descriptor)) });
  await page.waitForSelector('.pin-set');
}

