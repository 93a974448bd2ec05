// The browser front end's size and speed (issue #18), printed, never asserted:
//  1. initial JS of each page, gzipped (level 9): the page's module and every chunk it
//     imports statically (esbuild's metafile), and what Chromium actually fetched when
//     loading the citizen page;
//  2. verifying a depth-20 proof in headless Chromium: a fresh anvil, the anchor contract
//     deployed from its committed artifact, a root folded from a leaf and 20 siblings
//     anchored as batch 1; the verify page pins the descriptor and verifies the bundle
//     ROUNDS times. Medians of the total, of the time spent waiting on JSON-RPC, and of
//     the rest (parsing, hashing, folding, decoding, in the browser).
// A host reference figure (SHA-256 of 16 MiB in node, median of 5) is printed first, so a
// run on a slower or busier host can be told apart.
// Usage: node scripts/bench_web.mjs [ROUNDS]   (needs /usr/bin/chromium; run `make setup` first)

import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { createWalletClient, createPublicClient, http, toHex } from 'viem';
import { buildWeb } from '../web/build.mjs';
import { leafHash, rootFromProof } from '../web/src/verifier/merkle.js';
import { startAnvil } from '../web/test/anvil.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ROUNDS = Number(process.argv[2] ?? 15);
const DEPTH = 20;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;

function hostReference() {
  const data = randomBytes(16 * 1024 * 1024);
  const times = Array.from({ length: 5 }, () => {
    const t = performance.now();
    createHash('sha256').update(data).digest();
    return performance.now() - t;
  });
  return `host reference: SHA-256 of 16 MiB in node ${median(times).toFixed(1)} ms (median of 5); ${cpus().length} cores, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}`;
}

function serveDist() {
  const dist = join(ROOT, 'web/dist');
  const types = { '.js': 'text/javascript', '.css': 'text/css', '.html': 'text/html' };
  const server = createServer((req, res) => {
    const path = req.url.split('?')[0];
    const file = path.startsWith('/assets/') ? path : `/${path === '/' ? 'index' : path.slice(1)}.html`;
    try {
      const body = readFileSync(join(dist, file.replace(/\.\./g, '')));
      res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function depth20Ledger(url) {
  const artifact = JSON.parse(readFileSync(join(ROOT, 'contracts/CarbonLedgerAnchor.json'), 'utf8'));
  const transport = http(url);
  const chain = { id: 31337, name: 'anvil', nativeCurrency: { name: 'ETH', symbol: 'ETH', decimals: 18 }, rpcUrls: { default: { http: [url] } } };
  const reader = createPublicClient({ chain, transport });
  const [account] = await reader.request({ method: 'eth_accounts' });
  const wallet = createWalletClient({ account, chain, transport });
  const deployTx = await wallet.deployContract({ abi: artifact.abi, bytecode: artifact.bytecode, args: [account, account] });
  const deployed = await reader.waitForTransactionReceipt({ hash: deployTx });
  const contract = deployed.contractAddress;
  const hex32 = () => toHex(randomBytes(32));
  const values = [hex32(), hex32(), 1n, toHex(Buffer.from('CYCLING'.padEnd(32, '\0'))), 3200n, 155n, 155n, 2n,
    1796342026n, hex32(), account];
  const proof = Array.from({ length: DEPTH }, hex32);
  const root = rootFromProof(leafHash(values), proof);
  const anchorTx = await wallet.writeContract({ address: contract, abi: artifact.abi, functionName: 'anchor',
    args: [1n, root, BigInt(2 ** DEPTH), hex32()] });
  const anchored = await reader.waitForTransactionReceipt({ hash: anchorTx });
  const bundle = { format: 'carbon-ledger-proof-v1', entryId: values[0], values: values.map(String),
    leafEncoding: ['bytes32', 'bytes32', 'uint8', 'bytes32', 'uint64', 'uint64', 'uint64', 'uint32', 'uint64', 'bytes32', 'address'],
    proof, root, batchId: 1, chainId: 31337, contract, txHash: anchorTx, blockNumber: Number(anchored.blockNumber) };
  const descriptor = { format: 'carbon-ledger-descriptor-v1', chainId: 31337, contract,
    deployment: { txHash: deployTx, blockNumber: Number(deployed.blockNumber) },
    formats: { proofBundle: ['carbon-ledger-proof-v1'], leaf: 'oz-standard-v1' },
    operatorKeys: [{ use: 'receipts', address: account }], endpoints: { rpc: [url] } };
  return { bundle, descriptor };
}

const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'];

console.log(hostReference());
const { sizes } = await buildWeb();
for (const [page, s] of Object.entries(sizes)) {
  console.log(`initial JS ${page.padEnd(8)} ${kib(s.gzip)} gzipped (${kib(s.raw)} raw, ${s.files} files)`);
}
const server = await serveDist();
const base = `http://127.0.0.1:${server.address().port}`;
const node = await startAnvil();
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args });
try {
  const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
  const fetched = [];
  page.on('response', async (r) => {
    if (r.request().resourceType() === 'script') fetched.push(r.body().then((b) => gzipSync(b, { level: 9 }).length));
  });
  await page.goto(`${base}/citizen`, { waitUntil: 'networkidle' });
  const gz = (await Promise.all(fetched)).reduce((a, b) => a + b, 0);
  console.log(`citizen page in Chromium: ${fetched.length} scripts fetched on load, ${kib(gz)} gzipped (budget 200 KB)`);

  const { bundle, descriptor } = await depth20Ledger(node.url);
  await page.goto(`${base}/verify`);
  await page.fill('#rpc-url', node.url);
  await page.dispatchEvent('#rpc-url', 'change');
  await page.setInputFiles('#descriptor-file', { name: 'ledger.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(descriptor)) });
  await page.waitForSelector('.pin-set');
  await page.setInputFiles('#bundle-file', { name: 'depth20.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(bundle)) });
  await page.waitForFunction(() => document.querySelector('#bundle p.small')?.textContent.includes('depth20'));
  const rounds = [];
  for (let i = 0; i < ROUNDS + 1; i++) {
    await page.evaluate(() => { delete document.getElementById('result').dataset.verdict; });
    await page.click('#verify');
    await page.waitForSelector('#result[data-verdict]');
    const r = await page.$eval('#result', (e) => ({ verdict: e.dataset.verdict, total: Number(e.dataset.totalMs), rpc: Number(e.dataset.rpcMs), calls: Number(e.dataset.rpcCalls) }));
    if (r.verdict !== 'valid') throw new Error(`the depth-${DEPTH} bundle was not verified: ${JSON.stringify(r)}`);
    if (i > 0) rounds.push(r); // the first round warms the page's code up
  }
  const total = median(rounds.map((r) => r.total));
  const rpc = median(rounds.map((r) => r.rpc));
  const local = median(rounds.map((r) => r.total - r.rpc));
  console.log(`verify a depth-${DEPTH} proof in Chromium (median of ${ROUNDS}): ${total.toFixed(1)} ms in all = ` +
    `${local.toFixed(1)} ms in the browser + ${rpc.toFixed(1)} ms waiting on JSON-RPC (${rounds[0].calls} reads of a local anvil; budget 50 ms + RPC)`);
} finally {
  await browser.close();
  node.stop();
  server.close();
}
