// The ledger descriptor (docs/ledger-descriptor.md): which ledger a verifier trusts. It is
// parsed as strictly as ledger/descriptor.py does, and checked against the chain before it
// is pinned: the endpoint serves its chain, there is code at its contract, and its
// deployment transaction created exactly that contract in the named block.

import { BUNDLE_FORMAT, Refusal, address, bytes32, safeInteger } from './bundle.js';
import { JsonRefused, parseStrictJson } from './strict-json.js';

export const DESCRIPTOR_FORMAT = 'carbon-ledger-descriptor-v1';
export const MAX_DESCRIPTOR_BYTES = 16 * 1024;
const MEMBERS = ['format', 'chainId', 'contract', 'deployment', 'formats', 'operatorKeys', 'endpoints'];

const refuse = (field, message, check = 'descriptor') => new Refusal(check, field, message);

export function parseDescriptor(input) {
  let data;
  try {
    data = parseStrictJson(input, { maxBytes: MAX_DESCRIPTOR_BYTES, maxDepth: 8 });
  } catch (e) {
    if (e instanceof JsonRefused) throw refuse('descriptor', e.message);
    throw e;
  }
  try {
    return descriptorFromJson(data);
  } catch (e) {
    if (e instanceof Refusal && e.check === 'shape') throw refuse(e.field, e.message);
    throw e;
  }
}

export function descriptorFromJson(data) {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw refuse('descriptor', 'a descriptor is a JSON object');
  }
  const unknown = Object.keys(data).filter((k) => !MEMBERS.includes(k)).sort();
  if (unknown.length) throw refuse(unknown[0].slice(0, 64), `unknown member '${unknown[0].slice(0, 64)}'`);
  if (data.format !== DESCRIPTOR_FORMAT) throw refuse('format', `this verifier reads '${DESCRIPTOR_FORMAT}'`);
  const deployment = object(data, 'deployment');
  const formats = object(data, 'formats');
  if (!Array.isArray(formats.proofBundle) || !formats.proofBundle.includes(BUNDLE_FORMAT)) {
    throw refuse('formats.proofBundle', `the ledger does not serve '${BUNDLE_FORMAT}'`);
  }
  const keys = data.operatorKeys;
  if (!Array.isArray(keys) || keys.length < 1 || keys.length > 16) {
    throw refuse('operatorKeys', 'expected 1-16 operator keys');
  }
  const receiptSigners = keys.map((key, i) => {
    const ok = key && typeof key === 'object' && !Array.isArray(key)
      && Object.keys(key).sort().join() === 'address,use' && key.use === 'receipts';
    if (!ok) throw refuse(`operatorKeys[${i}]`, "expected {'use': 'receipts', 'address'}");
    return address(key.address, `operatorKeys[${i}].address`);
  });
  const endpoints = Object.hasOwn(data, 'endpoints') ? data.endpoints : {};
  if (endpoints === null || typeof endpoints !== 'object' || Array.isArray(endpoints)
      || Object.keys(endpoints).some((k) => k !== 'api' && k !== 'rpc')) {
    throw refuse('endpoints', "endpoints has 'api' and 'rpc' only");
  }
  const api = endpoints.api ?? null;
  const rpc = endpoints.rpc ?? [];
  if (api !== null && !isUrl(api)) throw refuse('endpoints.api', 'expected an http(s) URL');
  if (!Array.isArray(rpc) || rpc.length > 8 || !rpc.every(isUrl)) {
    throw refuse('endpoints.rpc', 'expected at most 8 http(s) URLs');
  }
  return {
    chainId: safeInteger(data.chainId, 'chainId', 1),
    contract: address(data.contract, 'contract'),
    deployment: {
      txHash: bytes32(deployment.txHash, 'deployment.txHash'),
      blockNumber: safeInteger(deployment.blockNumber, 'deployment.blockNumber', 0),
    },
    receiptSigners,
    endpoints: { api, rpc },
  };
}

function object(data, name) {
  const value = data[name];
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw refuse(name, `expected an object '${name}'`);
  }
  return value;
}

function isUrl(value) {
  return typeof value === 'string' && value.length <= 512 && /^https?:\/\//.test(value)
    && !/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(value);
}

/** Refuse a descriptor the chain contradicts (`reader` reads its contract). */
export async function checkDescriptorOnChain(descriptor, reader) {
  const served = await reader.chainId();
  if (served !== descriptor.chainId) {
    throw refuse('chainId', `the endpoint serves chain ${served}, the descriptor names chain ${descriptor.chainId}`, 'node');
  }
  if (!(await reader.hasCode())) {
    throw refuse('contract', `no contract code at ${descriptor.contract} on chain ${descriptor.chainId}`);
  }
  const tx = descriptor.deployment.txHash;
  const created = await reader.createdContract(tx);
  if (created === null) {
    throw refuse('deployment.txHash', `transaction ${tx} created no contract on chain ${descriptor.chainId}`);
  }
  if (created.address.toLowerCase() !== descriptor.contract.toLowerCase()) {
    throw refuse('deployment.txHash', `transaction ${tx} created ${created.address}, not ${descriptor.contract}`);
  }
  if (created.blockNumber !== descriptor.deployment.blockNumber) {
    throw refuse('deployment.blockNumber', `transaction ${tx} is in block ${created.blockNumber}, not ${descriptor.deployment.blockNumber}`);
  }
}
