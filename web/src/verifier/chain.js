// The chain as a verifier reads it, over JSON-RPC with viem: only the pinned contract's
// views, receipts, logs and code. Every read is timed, so a verdict can say how much of its
// time was the network's. A failure to read is ChainUnreadable, never a verdict. The
// contract stores only each batch's root; its leaf count and content hash are in the
// BatchAnchored event of the anchoring transaction, read from that receipt.

import { ContractFunctionRevertedError, createPublicClient, decodeEventLog, http, keccak256, numberToHex, stringToBytes,
  toEventSelector } from 'viem';
import { ANCHOR_ABI, BATCH_ANCHORED, CREDENTIAL_ABI } from './abi.js';

const ANCHORED_TOPIC = toEventSelector(BATCH_ANCHORED);
const ISSUER_ROLE = keccak256(stringToBytes('ISSUER_ROLE'));
const reverted = (e) => Boolean(e?.walk?.((x) => x instanceof ContractFunctionRevertedError));

export class ChainUnreadable extends Error {
  constructor(message) {
    super(message);
    this.name = 'ChainUnreadable';
  }
}

/** A reader of `contract` through the JSON-RPC endpoint `url`. */
export function chainReader(url, contract, { timeoutMs = 15000 } = {}) {
  const client = createPublicClient({ transport: http(url, { retryCount: 0, timeout: timeoutMs }), cacheTime: 0 });
  const clock = { rpcMs: 0, calls: 0 };
  const read = async (what, call) => {
    const started = performance.now();
    try {
      return await call();
    } catch (e) {
      throw new ChainUnreadable(`cannot read ${what} from ${url}: ${e.shortMessage ?? e.message}`);
    } finally {
      clock.rpcMs += performance.now() - started;
      clock.calls += 1;
    }
  };
  const view = (functionName, args = []) => read(functionName, () =>
    client.readContract({ address: contract, abi: ANCHOR_ABI, functionName, args }));
  const credentialView = (functionName, args) => read(functionName, () =>
    client.readContract({ address: contract, abi: CREDENTIAL_ABI, functionName, args }));
  // A view that reverts for what was never written (a month never stated, a ranking never
  // anchored): null, not an unreadable chain.
  const rootOrNull = (functionName, args) => read(functionName, async () => {
    try {
      return await client.readContract({ address: contract, abi: CREDENTIAL_ABI, functionName, args });
    } catch (e) {
      if (reverted(e)) return null;
      throw e;
    }
  });
  const receipt = (tx) => read(`the receipt of ${tx}`, () =>
    client.request({ method: 'eth_getTransactionReceipt', params: [tx] }));

  return {
    url,
    contract,
    clock,
    chainId: () => read('the chain id', async () => Number(await client.request({ method: 'eth_chainId' }))),
    head: () => read('the head block', async () => Number(await client.request({ method: 'eth_blockNumber' }))),
    hasCode: () => read('the contract code', async () => {
      const code = await client.request({ method: 'eth_getCode', params: [contract, 'latest'] });
      return typeof code === 'string' && code.length > 2;
    }),
    latestBatchId: () => view('latestBatchId'),
    batchRoot: (batchId) => view('batchRoot', [BigInt(batchId)]),
    verifyOnChain: (batchId, leaf, proof) => view('verify', [BigInt(batchId), leaf, proof]),
    /** The statement root of month `period` (yyyymm), or null when it was never stated. */
    statementRoot: (period) => rootOrNull('statementRoot', [period]),
    credentialRevoked: (index) => credentialView('credentialRevoked', [BigInt(index)]),
    isIssuer: (address) => credentialView('hasRole', [ISSUER_ROLE, address]),
    /** The ranking root anchored for a campaign version's key, or null. */
    rankingRoot: (key) => rootOrNull('rankingRoot', [key]),
    /** The receipt (status, to, block, logs) or null when the chain has no such transaction. */
    receipt: async (tx) => {
      const r = await receipt(tx);
      if (!r) return null;
      return { succeeded: r.status === '0x1', to: r.to ?? null, blockNumber: Number(r.blockNumber),
        contractAddress: r.contractAddress ?? null, logs: r.logs ?? [] };
    },
    /** Every BatchAnchored log of the contract from `fromBlock` on (of batch `batchId`
     *  only, if given), oldest first. */
    anchorLogs: (fromBlock = 0, batchId = null) => read('the anchor logs', async () => {
      const topics = batchId === null ? [ANCHORED_TOPIC]
        : [ANCHORED_TOPIC, numberToHex(BigInt(batchId), { size: 32 })];
      const logs = await client.request({ method: 'eth_getLogs', params: [{ address: contract,
        topics, fromBlock: `0x${fromBlock.toString(16)}`, toBlock: 'latest' }] });
      return logs.flatMap((log) => anchorEvents({ logs: [log] }, contract).map((e) => ({
        ...e, txHash: log.transactionHash, blockNumber: Number(log.blockNumber) })));
    }),
    /** The contract a deployment transaction created and its block, or null. */
    createdContract: async (tx) => {
      const r = await receipt(tx);
      if (!r || r.status !== '0x1' || !r.contractAddress) return null;
      return { address: r.contractAddress, blockNumber: Number(r.blockNumber) };
    },
  };
}

/** The contract's BatchAnchored logs in a receipt, by topic: other events are not anchors. */
export function anchorEvents(receipt, contract) {
  const events = [];
  for (const log of receipt.logs) {
    if (String(log.address).toLowerCase() !== contract.toLowerCase()) continue;
    if (!log.topics?.length || String(log.topics[0]).toLowerCase() !== ANCHORED_TOPIC) continue;
    try {
      const { args } = decodeEventLog({ abi: [BATCH_ANCHORED], data: log.data, topics: log.topics });
      events.push({ batchId: args.batchId, root: args.root.toLowerCase(), leafCount: args.leafCount,
        contentHash: args.contentHash.toLowerCase() });
    } catch {
      // a log with the topic but not the event's shape anchors nothing
    }
  }
  return events;
}

/**
 * Batch `batchId` as the chain holds it, or null when the contract holds no root for it:
 * `root` from the contract's state; `event` (leafCount, contentHash, txHash, blockNumber)
 * from the BatchAnchored event that names that root in a successful transaction sent to
 * the contract: `lookFirst` (a claimed transaction) if it shows one, else the one the
 * contract's logs name; `event` is null when no transaction shows it.
 */
export async function anchoredBatch(reader, batchId, { lookFirst = null, fromBlock = 0 } = {}) {
  const id = BigInt(batchId);
  if (id < 1n || id > (await reader.latestBatchId())) return null;
  const root = (await reader.batchRoot(id)).toLowerCase();
  const shown = async (tx) => {
    const r = await reader.receipt(tx);
    if (!r || !r.succeeded || (r.to ?? '').toLowerCase() !== reader.contract.toLowerCase()) return null;
    const e = anchorEvents(r, reader.contract).find((x) => x.batchId === id && x.root === root);
    return e ? { leafCount: e.leafCount, contentHash: e.contentHash, txHash: tx, blockNumber: r.blockNumber } : null;
  };
  let event = lookFirst ? await shown(lookFirst) : null;
  for (const log of event ? [] : await reader.anchorLogs(fromBlock, id)) {
    event = await shown(log.txHash);
    if (event) break;
  }
  return { batchId: id, root, event };
}
