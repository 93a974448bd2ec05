// The proof bundle, format carbon-ledger-proof-v1, parsed shape first exactly as
// docs/proof-bundle.md writes it (and ledger/bundle.py enforces it): the same order of
// checks, the same member named at fault. Nothing here hashes or reads a chain.

import { getAddress } from 'viem';
import { JsonRefused, parseStrictJson } from './strict-json.js';

export const BUNDLE_FORMAT = 'carbon-ledger-proof-v1';
export const MAX_BUNDLE_BYTES = 64 * 1024;
export const MAX_DEPTH = 32;
export const MAX_PROOF_ITEMS = 64;
export const LEAF_ENCODING = ['bytes32', 'bytes32', 'uint8', 'bytes32', 'uint64', 'uint64',
  'uint64', 'uint32', 'uint64', 'bytes32', 'address'];
export const LEAF_FIELDS = ['entryId', 'account', 'kind', 'behaviour', 'quantity',
  'reductionGrams', 'points', 'methodology', 'occurredAt', 'recordHash', 'partner'];
const REQUIRED = ['format', 'entryId', 'values', 'leafEncoding', 'proof', 'root', 'batchId',
  'chainId', 'contract', 'txHash', 'blockNumber'];
const OPTIONAL = ['status', 'confirmations'];
const UINT_BITS = { uint8: 8n, uint32: 32n, uint64: 64n };
const BYTES32 = /^0x[0-9a-fA-F]{64}$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const DECIMAL = /^(?:0|[1-9][0-9]*)$/;

/** A refusal: the check that failed (docs/proof-bundle.md) and the member at fault. */
export class Refusal extends Error {
  constructor(check, field, message) {
    super(message);
    this.name = 'Refusal';
    this.check = check;
    this.field = field;
  }
}

const shape = (field, message) => new Refusal('shape', field, message);

/** `step(check, run)`: run one check, telling `onStep(check, ok, detail)` as it passes or is refused. */
export function stepper(onStep) {
  return async (check, run) => {
    try {
      const detail = await run();
      onStep(check, true, detail);
      return detail;
    } catch (e) {
      if (e instanceof Refusal) onStep(check, false, e);
      throw e;
    }
  };
}

/** Parse a bundle's bytes (or text): bounds and I-JSON first, then its shape. */
export function parseBundle(input) {
  let data;
  try {
    data = parseStrictJson(input, { maxBytes: MAX_BUNDLE_BYTES, maxDepth: MAX_DEPTH });
  } catch (e) {
    if (e instanceof JsonRefused) throw new Refusal('parse', 'bundle', e.message);
    throw e;
  }
  return bundleFromJson(data);
}

export function bundleFromJson(data) {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw shape('bundle', 'a bundle is a JSON object');
  }
  const unknown = Object.keys(data).filter((k) => !REQUIRED.includes(k) && !OPTIONAL.includes(k));
  if (unknown.length) {
    const first = unknown.sort(byCodePoint)[0];
    throw shape(Array.from(first).slice(0, 64).join(''),
      `unknown member ${JSON.stringify(first)} (the format has no other members)`);
  }
  const missing = REQUIRED.find((k) => !Object.hasOwn(data, k));
  if (missing) throw shape(missing, `missing member '${missing}'`);
  if (data.format !== BUNDLE_FORMAT) {
    throw shape('format', `unknown format: this verifier reads '${BUNDLE_FORMAT}'`);
  }
  const enc = data.leafEncoding;
  if (!Array.isArray(enc) || enc.length !== LEAF_ENCODING.length || enc.some((t, i) => t !== LEAF_ENCODING[i])) {
    throw shape('leafEncoding', `leafEncoding must be ${JSON.stringify(LEAF_ENCODING)}`);
  }
  const values = leafValues(data.values);
  const entryId = bytes32(data.entryId, 'entryId');
  if (entryId !== values[0]) {
    throw shape('entryId', `entryId ${data.entryId} is not the leaf's own id ${values[0]} (values[0])`);
  }
  if (!Array.isArray(data.proof) || data.proof.length > MAX_PROOF_ITEMS) {
    throw shape('proof', `expected an array of at most ${MAX_PROOF_ITEMS} hashes`);
  }
  const proof = data.proof.map((item, i) => bytes32(item, `proof[${i}]`));
  const status = data.status ?? null;
  if (status !== null && status !== 'anchored') throw shape('status', "status, when given, is 'anchored'");
  return {
    entryId,
    values,
    proof,
    root: bytes32(data.root, 'root'),
    batchId: safeInteger(data.batchId, 'batchId', 1),
    chainId: safeInteger(data.chainId, 'chainId', 1),
    contract: address(data.contract, 'contract'),
    txHash: bytes32(data.txHash, 'txHash'),
    blockNumber: safeInteger(data.blockNumber, 'blockNumber', 0),
    status,
    confirmations: data.confirmations == null ? null : safeInteger(data.confirmations, 'confirmations', 0),
  };
}

// Forms first, each value in order; then each integer's range (ledger/leaf.py does the same).
function leafValues(items) {
  if (!Array.isArray(items) || items.length !== LEAF_FIELDS.length) {
    throw shape('values', `expected a list of ${LEAF_FIELDS.length} values`);
  }
  const parsed = items.map((item, i) => {
    const type = LEAF_ENCODING[i];
    const field = `values.${LEAF_FIELDS[i]}`;
    if (type === 'bytes32') return bytes32(item, field, 'expected 0x and 64 hex digits');
    if (type === 'address') return address(item, field);
    if (typeof item !== 'string' || item.length > 20 || !DECIMAL.test(item)) {
      throw shape(field, 'expected a decimal integer as a string of at most 20 digits');
    }
    return BigInt(item);
  });
  parsed.forEach((value, i) => {
    const bits = UINT_BITS[LEAF_ENCODING[i]];
    if (bits && value >= 1n << bits) {
      throw shape(`values.${LEAF_FIELDS[i]}`, `${value} is not a uint below ${1n << bits}`);
    }
  });
  return parsed;
}

/** 0x and exactly 64 hex digits, returned lower-case. */
export function bytes32(value, field, message) {
  if (typeof value !== 'string' || !BYTES32.test(value)) {
    throw shape(field, message ?? `expected 0x and 64 hex digits, got ${show(value)}`);
  }
  return value.toLowerCase();
}

/** An address, lower-case or its exact EIP-55 checksum (viem's isAddress strict); returned checksummed. */
export function address(value, field) {
  if (typeof value !== 'string' || !ADDRESS.test(value)) {
    throw shape(field, `expected 0x and 40 hex digits, got ${show(value)}`);
  }
  const checksummed = getAddress(value.toLowerCase());
  if (value !== value.toLowerCase() && value !== checksummed) {
    throw shape(field, `${value} is mixed case but not its EIP-55 checksum (${checksummed})`);
  }
  return checksummed;
}

/** A JSON number that is an integer from `minimum` to 2**53 - 1 (JSON.parse reads 1.0 as 1). */
export function safeInteger(value, field, minimum) {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < minimum || value > Number.MAX_SAFE_INTEGER) {
    throw shape(field, `expected an integer from ${minimum} to 2**53 - 1 (a JSON number), got ${show(value)}`);
  }
  return value === 0 ? 0 : value; // -0 is 0
}

function byCodePoint(a, b) {
  const x = Array.from(a, (c) => c.codePointAt(0));
  const y = Array.from(b, (c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

function show(value) {
  const text = value === undefined ? 'nothing' : JSON.stringify(value) ?? String(value);
  return text.length <= 80 ? text : `${text.slice(0, 77)}...`;
}
