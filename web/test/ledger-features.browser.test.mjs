// Green credit on the verify page, the campaign page and the auditor's audit job, in real
// headless Chromium against a ledger made and served through the CLI and HTTP paths
// (green-ledger.mjs): a presentation verifies and its monthly totals are shown; tampered
// totals, a wrong challenge and an expired presentation are refused, the check named.
// Run alone (`make web-test`) or imported by browser.test.mjs (tests/web/test_browser.py).

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { axe, launch, newPage as openPage, noHorizontalScroll, pinFromFile, shot, SHOTS } from './browser-kit.mjs';
import { BANK, greenLedger } from './green-ledger.mjs';
import { Refusal, verifyPresentation as verifyInNode } from '../src/verifier/index.js';

let browser;
let ledger;
const newPage = (options) => openPage(browser, options);

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  [browser, ledger] = await Promise.all([launch(), greenLedger()]);
});

after(async () => {
  await browser?.close();
  ledger?.stop();
});

async function presentationPage() {
  const page = await newPage();
  await page.goto(`${ledger.base}/verify`);
  await pinFromFile(page, ledger.descriptor, ledger.rpc);
  return page;
}

/** Verify `text` as a bank that sent `challenge`: [verdict, check, field]. */
async function verifyPresentation(page, text, { challenge, name }) {
  await page.evaluate(() => { delete document.getElementById('result').dataset.verdict; });
  await page.fill('#credit-challenge', challenge);
  await page.fill('#credit-bank', BANK);
  await page.setInputFiles('#bundle-file', { name, mimeType: 'application/json', buffer: Buffer.from(text) });
  await page.waitForFunction((n) => document.querySelector('#chosen')?.textContent.includes(n), name);
  await page.click('#verify');
  await page.waitForSelector('#result[data-verdict]');
  return page.$eval('#result', (r) => [r.dataset.verdict, r.dataset.check || undefined, r.dataset.field || undefined]);
}

describe('a bank verifies a green-credit presentation on the verify page', () => {
  test('a good presentation verifies and the page shows the verified monthly totals', async () => {
    const text = ledger.present('nonce-good-1', 'good.json');
    const page = await presentationPage();
    assert.deepEqual(await verifyPresentation(page, text, { challenge: 'nonce-good-1', name: 'good.json' }), ['valid', undefined, undefined]);
    assert.equal(await page.locator('#result li[data-state="ok"]').count(), 14);
    const statements = JSON.parse(text).verifiableCredential[0].credentialSubject.statements;
    const shown = await page.$$eval('#result tr[data-month]', (rows) => rows.map((r) => [r.dataset.month, r.dataset.grams]));
    assert.deepEqual(shown, statements.map((s) => [s.month, s.leaf.reductionGrams]));
    assert.deepEqual(shown.map(([m]) => m), ledger.months);
    await noHorizontalScroll(page);
    await shot(page, 'verify-credit', '#result');
    await axe(page);
    const withAreas = ledger.present('nonce-areas', 'areas.json', 600, { areas: true });
    assert.deepEqual(await verifyPresentation(page, withAreas, { challenge: 'nonce-areas', name: 'areas.json' }), ['valid', undefined, undefined]);
    assert.ok(await page.locator('#result tr[data-month] ul.areas li').count() >= 1);
    const doc = JSON.parse(withAreas);
    const { areaTotals } = doc.verifiableCredential[0].credentialSubject.statements.find((m) => m.areaTotals.length);
    areaTotals[0].reductionGrams = String(BigInt(areaTotals[0].reductionGrams) + 1n);
    assert.deepEqual(await verifyPresentation(page, JSON.stringify(doc), { challenge: 'nonce-areas', name: 'areas-changed.json' }),
      ['refused', 'areas', 'areaTotals']);
    await page.context().close();
  });

  test('tampered totals, a wrong challenge and an expired presentation are refused, naming the check', async () => {
    const page = await presentationPage();
    const doc = JSON.parse(ledger.present('nonce-tamper', 'tamper.json'));
    const leaf = doc.verifiableCredential[0].credentialSubject.statements[0].leaf;
    leaf.reductionGrams = String(BigInt(leaf.reductionGrams) + 100000n);
    assert.deepEqual(await verifyPresentation(page, JSON.stringify(doc, null, 2), { challenge: 'nonce-tamper', name: 'tampered.json' }),
      ['refused', 'statement', 'proof']);
    assert.match(await page.textContent('#result .verdict-refused'), /statement/i);
    const good = ledger.present('nonce-asked', 'asked.json');
    assert.deepEqual(await verifyPresentation(page, good, { challenge: 'another-nonce', name: 'asked.json' }),
      ['refused', 'challenge', 'presentation.proof.challenge']);
    const short = ledger.present('nonce-short', 'short.json', 1);
    await new Promise((r) => setTimeout(r, 2100));
    assert.deepEqual(await verifyPresentation(page, short, { challenge: 'nonce-short', name: 'short.json' }),
      ['refused', 'expiry', 'presentation.proof.expires']);
    await shot(page, 'verify-credit-refused', '#result');
    await page.context().close();
  });

  test('without the challenge and bank name the page asks for them, and a bundle still goes to the bundle checks', async () => {
    const page = await presentationPage();
    await page.setInputFiles('#bundle-file', { name: 'p.json', mimeType: 'application/json', buffer: Buffer.from(ledger.present('n-x', 'x.json')) });
    await page.waitForFunction(() => document.querySelector('#chosen')?.textContent.includes('p.json'));
    await page.click('#verify');
    await page.waitForSelector('#result .notice-error');
    assert.equal(await page.$eval('#result', (r) => r.dataset.verdict), undefined);
    await page.setInputFiles('#bundle-file', { name: 'junk.json', mimeType: 'application/json', buffer: Buffer.from('{"format":1}') });
    await page.waitForFunction(() => document.querySelector('#chosen')?.textContent.includes('junk.json'));
    await page.click('#verify');
    await page.waitForSelector('#result[data-verdict]');
    assert.deepEqual(await page.$eval('#result', (r) => [r.dataset.verdict, r.dataset.check]), ['refused', 'shape']);
    await page.context().close();
  });
});

describe('the JS presentation verifier and `credential verify` agree', () => {
  test('on a good presentation and on each mutation: verdict, check and member', async () => {
    const good = ledger.present('nonce-agree', 'agree.json', 600, { areas: true });
    const other = `0x${'11'.repeat(20)}`;
    const mutate = (fn) => {
      const doc = JSON.parse(good);
      const cred = doc.verifiableCredential[0];
      fn(doc, cred, cred.credentialSubject, cred.credentialSubject.statements);
      return JSON.stringify(doc);
    };
    const cases = {
      good: [good, 'nonce-agree'],
      'wrong challenge': [good, 'nonce-other'],
      'tampered grams': [mutate((d, c, s, m) => { m[0].leaf.reductionGrams = String(BigInt(m[0].leaf.reductionGrams) + 1n); }), 'nonce-agree'],
      'another account in a leaf': [mutate((d, c, s, m) => { m[0].leaf.account = `0x${'22'.repeat(32)}`; }), 'nonce-agree'],
      'a leaf of another month': [mutate((d, c, s, m) => { m[0].leaf.period = m.at(-1).leaf.period; }), 'nonce-agree'],
      'a proof item dropped': [mutate((d, c, s, m) => { m.at(-1).proof.pop(); }), 'nonce-agree'],
      'changed area totals': [mutate((d, c, s, m) => { const a = m.find((x) => x.areaTotals.length).areaTotals[0]; a.entryCount = String(BigInt(a.entryCount) + 1n); }), 'nonce-agree'],
      'another contract': [mutate((d, c, s) => { s.ledger.contract = other; }), 'nonce-agree'],
      'another status index': [mutate((d, c) => { c.credentialStatus.statusIndex = '99'; }), 'nonce-agree'],
      'validity stretched': [mutate((d, c) => { c.validUntil = '2099-01-01T00:00:00Z'; }), 'nonce-agree'],
      'expiry stretched': [mutate((d) => { d.proof.expires = d.proof.expires.replace(/:(\d\d)Z$/, (_, x) => `:${String((+x + 1) % 60).padStart(2, '0')}Z`); }), 'nonce-agree'],
      'another holder named': [mutate((d) => { d.holder = d.holder.replace(/0x[0-9a-fA-F]{40}$/, other); }), 'nonce-agree'],
      'another audience': [mutate((d) => { d.proof.domain = 'Another Bank'; }), 'nonce-agree'],
      'an unknown member in a month': [mutate((d, c, s, m) => { m[0].extra = 1; }), 'nonce-agree'],
      'two credentials': [mutate((d, c) => { d.verifiableCredential.push(c); }), 'nonce-agree'],
    };
    const trust = { chainId: ledger.descriptor.chainId, contract: ledger.descriptor.contract, source: 'test' };
    const disagreements = [];
    const seen = {};
    for (const [name, [text, challenge]] of Object.entries(cases)) {
      let js;
      try {
        await verifyInNode(text, { trust, rpcUrl: ledger.rpc, challenge, audience: BANK, now: Math.floor(Date.now() / 1000) });
        js = ['verified'];
      } catch (e) {
        if (!(e instanceof Refusal)) throw e;
        js = ['refused', e.check, e.field];
      }
      const py = ledger.cliVerdict(text, challenge);
      seen[name] = js.slice(0, 2).join(' ');
      if (JSON.stringify(js) !== JSON.stringify(py)) disagreements.push({ name, js, py });
    }
    assert.deepEqual(disagreements, []);
    assert.equal(seen.good, 'verified');
    assert.ok(Object.entries(seen).every(([name, v]) => name === 'good' || v.startsWith('refused')), JSON.stringify(seen));
    console.log(`# ${JSON.stringify(seen)}`);
    console.log(`# ${Object.keys(cases).length} presentations: the browser verifier and credential verify agree on each`);
  });
});

describe('the campaign page', () => {
  const api = async (token, path, init = {}) => (await fetch(`${ledger.base}/v1${path}`, { ...init,
    headers: { Authorization: `Bearer ${token}`, ...(init.headers ?? {}) } })).json();
  const zh = (n) => new Intl.NumberFormat('zh-CN').format(n);

  test('lists the published campaign with its rules and public board, in Chinese', async () => {
    const [season] = await api(ledger.token, '/campaigns');
    const board = await api(ledger.token, `/campaigns/${season.id}/leaderboard?limit=50`);
    const page = await newPage({ lang: 'zh-CN' });
    await page.goto(`${ledger.base}/campaigns`);
    const card = page.locator(`article[data-campaign="${season.id}"]`);
    await card.waitFor();
    assert.equal(await card.locator('h2').textContent(), season.title['zh-CN']);
    assert.equal(await card.locator('code.hex').first().getAttribute('title'), season.rulesHash);
    await card.locator(`.board p[data-final="${board.final}"]`).waitFor();
    const rows = await card.locator('.board tr[data-rank]').evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent)));
    assert.deepEqual(rows, board.entries.map((e) => [zh(e.rank), e.nickname, `${zh(e.metric / 1000)} kg`.replace(/,/g, ','), zh(e.prize)]));
    await noHorizontalScroll(page);
    await shot(page, 'campaigns');
    await axe(page);
    await page.context().close();
  });

  test('a signed-in citizen sees their bonuses, nickname and rank, its proof checked against the pinned contract', async () => {
    const [season] = await api(ledger.token, '/campaigns');
    // A citizen with a rank if the ranking is closed (the demo's season may be), else the first.
    let token = ledger.token;
    let progress = null;
    for (const pseudonym of ledger.citizens) {
      token = await ledger.tokenFor(pseudonym);
      progress = await api(token, `/me/campaigns/${season.id}`);
      if (progress.rank) break;
    }
    if (!progress.rank) {
      token = ledger.token;
      await api(token, `/me/campaigns/${season.id}/nickname`, { method: 'PUT',
        headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ nickname: '网页骑手' }) });
      progress = await api(token, `/me/campaigns/${season.id}`);
      assert.equal(progress.nickname, '网页骑手');
    }
    const page = await newPage({ lang: 'zh-CN' });
    await page.goto(`${ledger.base}/verify`);
    await pinFromFile(page, ledger.descriptor, ledger.rpc);
    await page.goto(`${ledger.base}/campaigns`);
    await page.fill('#citizen-secret', token);
    await page.click('#signin button[type=submit]');
    const mine = page.locator(`#mine-${season.id}`);
    await mine.locator('.bonus-points').waitFor();
    assert.equal(await mine.locator('.bonus-points').textContent(), `${zh(progress.bonusPoints)}，上限 ${zh(progress.bonusCapPoints)}`);
    assert.equal(await page.textContent('#mine-h'), '我的进度');
    if (progress.nickname) assert.match(await mine.textContent(), new RegExp(progress.nickname));
    if (progress.rank) {
      const rank = mine.locator('.rank');
      await rank.waitFor();
      assert.equal(await rank.getAttribute('data-verdict'), 'ok', await rank.textContent());
      assert.equal(await rank.getAttribute('data-rank'), String(progress.rank.leaf.rank));
      console.log(`# rank ${progress.rank.leaf.rank} shown, its proof folded to the root the pinned contract holds`);
    } else {
      assert.ok(await mine.locator('.rank-none').isVisible());
      console.log('# no closed ranking in this ledger: the page says no rank yet');
    }
    await shot(page, 'campaigns-mine', `#mine-${season.id}`);
    await axe(page);
    await page.context().close();
  });
});

describe('the auditor page and a batch audited by a job', () => {
  test('shows the job\'s progress (202), asks again after Retry-After, then shows the report', async () => {
    const page = await newPage();
    const asked = [];
    page.on('response', (r) => { if (/\/v1\/batches\/\d+\/audit$/.test(new URL(r.url()).pathname)) asked.push([r.status(), r.headers()['retry-after'], Date.now()]); });
    await page.goto(`${ledger.base}/auditor`);
    await page.fill('#auditor-secret', ledger.auditorKey);
    await page.click('#signin button[type=submit]');
    await page.locator('.open-batch').first().click();
    await page.waitForSelector('#audit-job[data-state="running"]');
    assert.match(await page.textContent('#audit-job'), /The audit runs as a job/);
    await axe(page);
    await page.waitForSelector('#audit[data-ok="true"]', { timeout: 60000 });
    assert.equal(asked[0][0], 202);
    assert.equal(asked.at(-1)[0], 200);
    for (let i = 1; i < asked.length; i++) {
      assert.ok(asked[i][2] - asked[i - 1][2] >= Number(asked[i - 1][1]) * 1000 - 50, `asked again before Retry-After: ${JSON.stringify(asked)}`);
    }
    await page.context().close();
  });
});
