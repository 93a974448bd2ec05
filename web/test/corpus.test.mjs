// The proof-bundle conformance corpus (tests/data/bundle_corpus/) run through the JS
// verifier in node, against the anvil state it was made on: every case must get the
// verdict, check and member the manifest records (the Python verifier runs the same files).
// CORPUS_RPC names a node already serving that state; else one is started here.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  anchoredBatch, chainReader, checkDescriptorOnChain, parseDescriptor, Refusal, verifyBundle,
} from '../src/verifier/index.js';
import { startAnvil } from './anvil.mjs';

const CORPUS = fileURLToPath(new URL('../../tests/data/bundle_corpus/', import.meta.url));
const manifest = JSON.parse(readFileSync(`${CORPUS}manifest.json`, 'utf8'));
let node;
let rpc;

before(async () => {
  if (process.env.CORPUS_RPC) rpc = process.env.CORPUS_RPC;
  else {
    node = await startAnvil({ state: `${CORPUS}${manifest.chainState}` });
    rpc = node.url;
  }
});
after(() => node?.stop());

async function pinned() {
  const descriptor = parseDescriptor(JSON.stringify(manifest.trust));
  await checkDescriptorOnChain(descriptor, chainReader(rpc, descriptor.contract));
  return { chainId: descriptor.chainId, contract: descriptor.contract, source: 'the corpus manifest' };
}

export async function outcome(raw, trust) {
  try {
    await verifyBundle(raw, { trust, rpcUrl: rpc });
    return ['valid'];
  } catch (e) {
    if (e instanceof Refusal) return ['refused', e.check, e.field];
    throw e;
  }
}

const expected = (c) => (c.expect === 'valid' ? ['valid'] : ['refused', c.check, c.field]);

test('every corpus case gets the verdict, check and member the manifest records', async () => {
  const trust = await pinned();
  const disagreements = [];
  const counts = { valid: 0, refused: 0 };
  for (const c of manifest.cases) {
    const got = await outcome(readFileSync(`${CORPUS}${c.file}`), trust);
    if (JSON.stringify(got) !== JSON.stringify(expected(c))) disagreements.push({ kind: c.kind, got, want: expected(c) });
    else counts[got[0]] += 1;
  }
  assert.deepEqual(disagreements, []);
  assert.equal(counts.valid + counts.refused, manifest.cases.length);
  if (process.env.CORPUS_COUNTS) writeFileSync(process.env.CORPUS_COUNTS, JSON.stringify(counts));
  console.log(`# corpus in node: ${manifest.cases.length} cases agree (${counts.valid} valid, ${counts.refused} refused)`);
});

test('each batch is read from the state and its anchoring event, as the Python reader reads it', async () => {
  const reader = chainReader(rpc, manifest.trust.contract);
  const fromBlock = manifest.trust.deployment.blockNumber;
  const { batches } = manifest;
  for (const [i, b] of batches.entries()) {
    const other = batches[(i + 1) % batches.length];
    for (const lookFirst of [null, b.txHash, other.txHash]) {
      const got = await anchoredBatch(reader, b.batchId, { lookFirst, fromBlock });
      assert.ok(got?.event, `batch ${b.batchId}`);
      assert.deepEqual({ batchId: Number(got.batchId), root: got.root, leafCount: Number(got.event.leafCount),
        contentHash: got.event.contentHash, txHash: got.event.txHash.toLowerCase(), blockNumber: got.event.blockNumber }, b);
    }
  }
  assert.equal(await anchoredBatch(reader, batches.length + 1), null);
});

test('a descriptor the chain contradicts is refused before it is pinned', async () => {
  const forged = parseDescriptor(JSON.stringify({ ...manifest.trust, contract: manifest.forgedContract }));
  await assert.rejects(checkDescriptorOnChain(forged, chainReader(rpc, forged.contract)),
    (e) => e.check === 'descriptor' && e.field === 'deployment.txHash');
  const wrongBlock = parseDescriptor(JSON.stringify({ ...manifest.trust, deployment: { ...manifest.trust.deployment, blockNumber: 2 } }));
  await assert.rejects(checkDescriptorOnChain(wrongBlock, chainReader(rpc, wrongBlock.contract)),
    (e) => e.field === 'deployment.blockNumber');
});

test('the same bundle passes or fails only by the pin: a forged deployment is refused', async () => {
  const trust = await pinned();
  const forged = manifest.cases.find((c) => c.kind === 'trust-forged-deployment');
  const raw = readFileSync(`${CORPUS}${forged.file}`);
  assert.deepEqual(await outcome(raw, trust), ['refused', 'trust', 'contract']);
  const attackersPin = { chainId: 31337, contract: manifest.forgedContract, source: 'test' };
  assert.deepEqual(await outcome(raw, attackersPin), ['valid']);
});

test('nothing pinned: the verifier refuses to run', async () => {
  const good = readFileSync(`${CORPUS}${manifest.cases[0].file}`);
  await assert.rejects(verifyBundle(good, { trust: null, rpcUrl: rpc }), /nothing pinned/);
});
