// The pages end to end in real headless Chromium (Debian's, driven by playwright-core),
// against a live `carbon-ledger serve` holding demo data and an anvil node holding the
// conformance corpus's chain. tests/web/test_browser.py starts both and sets:
//   BASE_URL, CITIZEN_TOKEN, AUDITOR_KEY, PARTNER_KEY, ANSWER_FILE, SCREENSHOTS, CHROMIUM
// (CORPUS_RPC optional: else a corpus node is started here). Green credit, the campaign
// page and audit jobs run on a ledger of their own (ledger-features.browser.test.mjs).

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startAnvil } from './anvil.mjs';
import './ledger-features.browser.test.mjs';
import { axe, cspViolations, launch, newPage as openPage, noHorizontalScroll, pinFromFile, shot, SHOTS } from './browser-kit.mjs';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CORPUS = join(ROOT, 'tests/data/bundle_corpus');
const manifest = JSON.parse(readFileSync(join(CORPUS, 'manifest.json'), 'utf8'));
const env = (name) => {
  assert.ok(process.env[name], `${name} is not set (run through tests/web/test_browser.py)`);
  return process.env[name];
};
const BASE = env('BASE_URL');
let browser;
let corpusNode;
let corpusRpc;
const newPage = (options = {}) => openPage(browser, { ...options, allowed: (url) => url.startsWith(corpusRpc) });

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  browser = await launch();
  if (process.env.CORPUS_RPC) corpusRpc = process.env.CORPUS_RPC;
  else {
    corpusNode = await startAnvil({ state: join(CORPUS, manifest.chainState) });
    corpusRpc = corpusNode.url;
  }
});

after(async () => {
  await browser?.close();
  corpusNode?.stop();
  assert.deepEqual(cspViolations, [], 'the pages broke their own Content-Security-Policy');
});

async function verifyFile(page, name, buffer) {
  await page.evaluate(() => { delete document.getElementById('result').dataset.verdict; });
  await page.setInputFiles('#bundle-file', { name, mimeType: 'application/json', buffer });
  await page.waitForFunction((n) => document.querySelector('#chosen')?.textContent.includes(n), name);
  await page.click('#verify');
  await page.waitForSelector('#result[data-verdict]');
  return page.$eval('#result', (r) => (r.dataset.verdict === 'valid' ? ['valid'] : [r.dataset.verdict, r.dataset.check, r.dataset.field]));
}

const expected = (c) => (c.expect === 'valid' ? ['valid'] : ['refused', c.check, c.field]);

describe('the public verify page', () => {
  test('runs every corpus case and agrees with the manifest on verdict, check and member', async () => {
    const page = await newPage();
    await page.goto(`${BASE}/verify`);
    await pinFromFile(page, manifest.trust, corpusRpc);
    const disagreements = [];
    let agreed = 0;
    for (const c of manifest.cases) {
      const got = await verifyFile(page, c.file.split('/').pop(), readFileSync(join(CORPUS, c.file)));
      if (JSON.stringify(got) === JSON.stringify(expected(c))) agreed += 1;
      else disagreements.push({ kind: c.kind, got, want: expected(c) });
      if (c.kind === 'good-credit') await shot(page, 'verify-valid', '#result');
      if (c.kind === 'fold-changed-points') await shot(page, 'verify-refused', '#result');
    }
    assert.deepEqual(disagreements, []);
    assert.equal(agreed, manifest.cases.length);
    if (process.env.BROWSER_COUNTS) writeFileSync(process.env.BROWSER_COUNTS, JSON.stringify({ agreed, cases: manifest.cases.length }));
    console.log(`# corpus in Chromium: ${agreed} of ${manifest.cases.length} cases agree with the manifest`);
    await page.context().close();
  });

  test('with nothing pinned it refuses to verify, and the pin is shown loudly once made', async () => {
    const page = await newPage();
    await page.goto(`${BASE}/verify`);
    assert.ok(await page.isVisible('.pin-none'));
    const good = readFileSync(join(CORPUS, manifest.cases[0].file));
    assert.deepEqual(await verifyFile(page, 'good.json', good), ['unpinned', undefined, undefined]);
    await pinFromFile(page, manifest.trust, corpusRpc);
    assert.match(await page.textContent('#trust .notice-warn'), /PINNED ON FIRST USE/);
    assert.match(await page.textContent('.pin-set'), new RegExp(manifest.trust.contract));
    assert.deepEqual(await verifyFile(page, 'good-again.json', good), ['valid']);
    await page.context().close();
  });

  test('a descriptor the chain contradicts is never pinned', async () => {
    const page = await newPage();
    await page.goto(`${BASE}/verify`);
    await page.fill('#rpc-url', corpusRpc);
    await page.dispatchEvent('#rpc-url', 'change');
    await page.setInputFiles('#descriptor-file', { name: 'forged.json', mimeType: 'application/json',
      buffer: Buffer.from(JSON.stringify({ ...manifest.trust, contract: manifest.forgedContract })) });
    await page.waitForSelector('#trust .notice-error');
    assert.match(await page.textContent('#trust .notice-error'), /deployment\.txHash/);
    assert.ok(await page.isVisible('.pin-none'));
    await page.context().close();
  });

  test('the standalone file works from disk with only an RPC endpoint', async () => {
    const page = await newPage({ offline: true });
    await page.goto(pathToFileURL(join(ROOT, 'web/dist/verify-standalone.html')).href);
    await pinFromFile(page, manifest.trust, corpusRpc);
    const good = manifest.cases.find((c) => c.kind === 'good-later-batch');
    assert.deepEqual(await verifyFile(page, 'good.json', readFileSync(join(CORPUS, good.file))), ['valid']);
    const bad = manifest.cases.find((c) => c.kind === 'transaction-carrying-another-event');
    assert.deepEqual(await verifyFile(page, 'bad.json', readFileSync(join(CORPUS, bad.file))), ['refused', 'transaction', 'txHash']);
    await page.context().close();
  });
});

describe('the language switch', () => {
  test('changes every label, and numbers follow the locale', async () => {
    const page = await newPage({ lang: 'zh-CN' });
    await page.goto(`${BASE}/verify`);
    assert.equal(await page.textContent('h1'), '验证证明');
    assert.equal(await page.textContent('#verify'), '上链验证');
    assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
    await page.selectOption('#lang', 'en');
    await page.waitForFunction(() => document.querySelector('h1').textContent === 'Verify a proof');
    assert.equal(await page.textContent('#verify'), 'Verify on chain');
    assert.equal(await page.getAttribute('html', 'lang'), 'en');
    await page.reload();
    assert.equal(await page.textContent('h1'), 'Verify a proof'); // the choice is kept
    await page.context().close();
  });
});

describe('a citizen', () => {
  let page;
  const api = async (path, init = {}) => (await fetch(`${BASE}/v1${path}`, { ...init,
    headers: { Authorization: `Bearer ${env('CITIZEN_TOKEN')}`, ...(init.headers ?? {}) } })).json();

  before(async () => {
    page = await newPage({ lang: 'zh-CN' });
    await page.goto(`${BASE}/verify`);
    await page.click('#pin-server'); // this server's descriptor, checked against the chain
    await page.waitForSelector('.pin-set');
  });
  after(() => page.context().close());

  test('signs in and sees the balance the ledger holds, in the chosen language', async () => {
    await page.goto(`${BASE}/citizen`);
    await page.fill('#citizen-secret', env('CITIZEN_TOKEN'));
    await page.click('#signin button[type=submit]');
    await page.waitForSelector('#card-balance dd');
    const me = await api('/me');
    const shown = await page.textContent('#card-balance dd');
    assert.equal(shown, new Intl.NumberFormat('zh-CN').format(me.points));
    assert.equal(await page.textContent('#summary-h'), '概况');
    await page.waitForSelector('#charts svg rect');
    await page.waitForSelector('#entries tr[data-entry] [data-status="anchored"]');
    await noHorizontalScroll(page);
    await shot(page, 'citizen');
  });

  test('verifies an entry on chain: its badge turns verified', async () => {
    const row = page.locator('#entries tr[data-entry]').first();
    await row.locator('.verify-entry').click();
    await row.locator('[data-status="verified"]').waitFor();
    assert.equal(await row.locator('.entry-verify').getAttribute('data-verdict'), 'valid');
    assert.equal(await row.locator('.entry-verify li[data-state="ok"]').count(), 8);
    await shot(page, 'citizen-verified', '[data-status="verified"]');
  });

  test('redeems with a double click and is debited once', async () => {
    const before = await api('/me');
    const sent = [];
    page.on('request', (r) => { if (r.url().endsWith('/v1/redemptions')) sent.push(r.headers()['idempotency-key']); });
    const reward = page.locator('.reward[data-reward="coffee-voucher"] button.redeem');
    await reward.dblclick();
    await page.waitForSelector('#redeem-status .notice-ok');
    await page.waitForLoadState('networkidle');
    const afterwards = await api('/me');
    assert.ok(sent.length >= 1 && new Set(sent).size === 1, `one idempotency key for every click: ${sent}`);
    assert.equal(afterwards.pointsSpent - before.pointsSpent, 150);
    assert.equal(before.points - afterwards.points, 150);
    assert.equal(await page.textContent('#card-balance dd'), new Intl.NumberFormat('zh-CN').format(afterwards.points));
    assert.ok(await page.locator('#redemptions tr[data-entry]').count() >= 1);
  });

  test('shows a period statement that prints', async () => {
    await page.click('#statement-show');
    await page.waitForSelector('#statement-doc');
    await page.emulateMedia({ media: 'print' });
    assert.equal(await page.isVisible('#entries'), false);
    assert.equal(await page.isVisible('#statement-doc'), true);
    await page.emulateMedia({ media: 'screen' });
    await axe(page);
  });
});

describe('an auditor', () => {
  test('opens a batch\'s audit, verifies an entry and checks every batch on chain', async () => {
    const page = await newPage();
    await page.goto(`${BASE}/auditor`);
    await page.fill('#auditor-secret', env('AUDITOR_KEY'));
    await page.click('#signin button[type=submit]');
    await page.click('#pin-server');
    await page.waitForSelector('.pin-set');
    await page.locator('.open-batch').first().click();
    await page.waitForSelector('#audit[data-ok="true"]');
    await page.click('#verify-entry');
    await page.waitForSelector('#entry-verify[data-verdict="valid"]');
    await page.click('#run-chain-check');
    const summary = page.locator('#chain-check-summary');
    await summary.waitFor();
    assert.equal(await summary.getAttribute('data-good'), await summary.getAttribute('data-total'));
    assert.ok(Number(await summary.getAttribute('data-total')) >= 1);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-dump')]);
    const dump = JSON.parse(readFileSync(await download.path(), 'utf8'));
    assert.equal(dump.format, 'standard-v1');
    await noHorizontalScroll(page);
    await shot(page, 'auditor', '#batch');
    await axe(page);
    await page.context().close();
  });
});

describe('a partner', () => {
  test('sees its contribution chart, its submission\'s receipt and each record\'s outcome', async () => {
    const page = await newPage();
    await page.goto(`${BASE}/partner`);
    await page.fill('#partner-secret', env('PARTNER_KEY'));
    await page.click('#signin button[type=submit]');
    await page.waitForSelector('#contribution figure svg rect');
    await page.locator('.open-submission').first().click();
    await page.waitForSelector('#receipt[data-ok="true"]');
    await page.setInputFiles('#answer-file', env('ANSWER_FILE'));
    await page.waitForSelector('#answer-body tr[data-status="rejected"]');
    assert.ok(await page.locator('#answer-body tr[data-status="accepted"]').count() >= 1);
    assert.match(await page.textContent('#eip712-domain'), /"verifyingContract"/);
    assert.match(await page.textContent('#signing-example'), /signTypedData/);
    await noHorizontalScroll(page);
    await shot(page, 'partner', '#contribution');
    await axe(page);
    await page.context().close();
  });
});

describe('the public pages', () => {
  test('transparency: city totals, the methodology and the anchored batches read from the chain', async () => {
    const page = await newPage({ lang: 'zh-CN' });
    await page.goto(`${BASE}/public`);
    await page.waitForSelector('#methodology tr[data-behaviour="CYCLING"]');
    await page.waitForSelector('#anchors tr[data-batch="1"]');
    await page.waitForSelector('#city-body p.big');
    await noHorizontalScroll(page);
    await shot(page, 'public');
    await axe(page);
    await page.context().close();
  });

  test('home and verify fit 390 px and pass axe; desktop screenshots', async () => {
    for (const path of ['/', '/verify']) {
      const page = await newPage();
      await page.goto(`${BASE}${path}`);
      await page.waitForSelector('main h1');
      if (path === '/') await page.waitForSelector('#ledger-body dl');
      await noHorizontalScroll(page);
      await axe(page);
      await shot(page, path === '/' ? 'home' : 'verify');
      await page.context().close();
    }
    const wide = await newPage({ viewport: { width: 1280, height: 900 } });
    await wide.goto(`${BASE}/public`);
    await wide.waitForSelector('#anchors tr[data-batch]');
    await shot(wide, 'public-desktop');
    await wide.context().close();
  });

  test('every page is served with a CSP without inline scripts and no CORS', async () => {
    for (const path of ['/', '/verify', '/citizen', '/auditor', '/partner', '/public', '/campaigns']) {
      const answer = await fetch(`${BASE}${path}`, { headers: { Origin: 'https://evil.example' } });
      const csp = answer.headers.get('content-security-policy');
      assert.match(csp, /script-src 'self'(;|$)/, path);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, path);
      assert.equal(answer.headers.get('access-control-allow-origin'), null, path);
      assert.equal(answer.headers.get('x-content-type-options'), 'nosniff');
    }
    const preflight = await fetch(`${BASE}/v1/me`, { method: 'OPTIONS', headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'GET' } });
    assert.equal(preflight.headers.get('access-control-allow-origin'), null);
  });
});
