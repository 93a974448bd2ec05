// The browser verifier: a proof bundle checked against a ledger pinned from outside the
// bundle and the chain alone (docs/proof-bundle.md). No UI here: pages and node tests
// import it. It reads top to bottom, one check after another, and stops at the first that
// fails with a Refusal naming the check and the member at fault:
//   parse, shape, trust, node, fold, batch, transaction, contract-verify.
// The trust root ({chainId, contract, source}) never comes from the bundle.

import { Refusal, bundleFromJson, MAX_BUNDLE_BYTES, MAX_DEPTH, stepper } from './bundle.js';
import { anchorEvents, chainReader } from './chain.js';
import { leafHash, rootFromProof } from './merkle.js';
import { JsonRefused, parseStrictJson } from './strict-json.js';

export { Refusal, parseBundle, bundleFromJson, BUNDLE_FORMAT } from './bundle.js';
export { parseDescriptor, checkDescriptorOnChain, DESCRIPTOR_FORMAT } from './descriptor.js';
export { chainReader, ChainUnreadable, anchorEvents, anchoredBatch } from './chain.js';
export { leafHash, rootFromProof } from './merkle.js';

export const CHECKS = ['parse', 'shape', 'trust', 'node', 'fold', 'batch', 'transaction', 'contract-verify'];

const fail = (check, field, message) => new Refusal(check, field, message);

/** The bundle must name the pinned ledger (checked before anything is read). */
export function checkClaimsAgainstPin(bundle, trust) {
  if (bundle.chainId !== trust.chainId) {
    throw fail('trust', 'chainId', `the bundle names chain ${bundle.chainId}, the pinned ledger is on chain ${trust.chainId}`);
  }
  if (bundle.contract.toLowerCase() !== trust.contract.toLowerCase()) {
    throw fail('trust', 'contract', `the bundle names contract ${bundle.contract}, the pinned ledger's contract is ${trust.contract}`);
  }
}

/**
 * Verify a bundle's bytes or text. `trust`: the pinned {chainId, contract, source};
 * `rpcUrl` (or a `reader` of the pinned contract); `onStep(check, ok, detail)` is told of
 * each check as it passes or fails. Resolves to the verdict; rejects with a Refusal (the
 * bundle is refused) or ChainUnreadable (no verdict: the chain could not be read).
 */
export async function verifyBundle(input, { trust, rpcUrl, reader, onStep = () => {} }) {
  if (!trust) throw new Error('nothing pinned: pin the ledger from its descriptor first');
  const started = performance.now();
  const step = stepper(onStep);
  const data = await step('parse', () => {
    try {
      return parseStrictJson(input, { maxBytes: MAX_BUNDLE_BYTES, maxDepth: MAX_DEPTH });
    } catch (e) {
      throw e instanceof JsonRefused ? fail('parse', 'bundle', e.message) : e;
    }
  });
  const bundle = await step('shape', () => bundleFromJson(data));
  await step('trust', () => checkClaimsAgainstPin(bundle, trust));
  const chain = reader ?? chainReader(rpcUrl, trust.contract);
  await step('node', async () => {
    const served = await chain.chainId();
    if (served !== trust.chainId) {
      throw fail('node', 'chainId', `the endpoint serves chain ${served}, the pinned ledger is on chain ${trust.chainId}`);
    }
    return served;
  });
  const leaf = leafHash(bundle.values);
  const computed = await step('fold', () => {
    const root = rootFromProof(leaf, bundle.proof);
    if (root !== bundle.root) {
      throw fail('fold', 'values', `the values and proof fold to ${root}, but the bundle claims root ${bundle.root}`);
    }
    return root;
  });
  await step('batch', async () => {
    if (BigInt(bundle.batchId) > (await chain.latestBatchId())) {
      throw fail('batch', 'batchId', `the pinned contract has no batch ${bundle.batchId}`);
    }
    const anchored = (await chain.batchRoot(bundle.batchId)).toLowerCase();
    if (anchored !== computed) {
      throw fail('batch', 'root', `batch ${bundle.batchId} is anchored with root ${anchored}, not ${computed}`);
    }
  });
  await step('transaction', () => checkTransaction(bundle, computed, chain, trust));
  await step('contract-verify', async () => {
    if (!(await chain.verifyOnChain(bundle.batchId, leaf, bundle.proof))) {
      throw fail('contract-verify', 'proof', "the contract's verify() rejects the proof");
    }
  });
  const confirmations = Math.max(0, (await chain.head()) - bundle.blockNumber + 1);
  const totalMs = performance.now() - started;
  return {
    entryId: bundle.entryId, batchId: bundle.batchId, root: computed, txHash: bundle.txHash,
    blockNumber: bundle.blockNumber, chainId: trust.chainId, contract: trust.contract,
    pinnedBy: trust.source, confirmations, values: bundle.values,
    timings: { totalMs, rpcMs: chain.clock?.rpcMs ?? 0, rpcCalls: chain.clock?.calls ?? 0 },
  };
}

async function checkTransaction(bundle, root, chain, trust) {
  const tx = bundle.txHash;
  const receipt = await chain.receipt(tx);
  if (receipt === null) throw fail('transaction', 'txHash', `no transaction ${tx} on chain ${trust.chainId}`);
  if (!receipt.succeeded) throw fail('transaction', 'txHash', `transaction ${tx} reverted`);
  if ((receipt.to ?? '').toLowerCase() !== trust.contract.toLowerCase()) {
    throw fail('transaction', 'txHash', `transaction ${tx} was sent to ${receipt.to}, not the pinned contract ${trust.contract}`);
  }
  if (receipt.blockNumber !== bundle.blockNumber) {
    throw fail('transaction', 'blockNumber', `transaction ${tx} is in block ${receipt.blockNumber}, not ${bundle.blockNumber}`);
  }
  const anchored = anchorEvents(receipt, trust.contract)
    .some((e) => e.batchId === BigInt(bundle.batchId) && e.root === root);
  if (!anchored) throw fail('transaction', 'txHash', `transaction ${tx} did not anchor batch ${bundle.batchId}`);
}

export { PRESENTATION_CHECKS, verifyPresentation, looksLikePresentation } from './presentation.js';
