// Opens /docs and /redoc of the server at argv[2] in headless Chromium (playwright-core,
// Debian's chromium) and prints, per page, the requests to any other host, the console
// errors and how many operations it drew (tests/api/test_openapi_faces.py reads it).
import { chromium } from 'playwright-core';

const base = process.argv[2];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--no-first-run'],
});
const out = {};
for (const path of ['/docs', '/redoc']) {
  const page = await browser.newPage();
  const external = []; const errors = [];
  page.on('request', (r) => { if (!r.url().startsWith(base) && /^https?:/.test(r.url())) external.push(r.url()); });
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(base + path, { waitUntil: 'networkidle' });
  await page.waitForSelector(path === '/docs' ? '.opblock' : '[data-section-id]', { timeout: 20000 });
  const drawn = await page.evaluate(() => document.querySelectorAll('.opblock, [data-section-id^="operation/"]').length);
  out[path] = { external, errors, drawn };
  await page.close();
}
await browser.close();
console.log(JSON.stringify(out));
