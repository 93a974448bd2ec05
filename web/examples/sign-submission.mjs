// Sign a submission to the carbon ledger (docs/signing.md, version 2) with viem.
// The partner page shows this file as it is; web/test/signing.test.mjs runs it against
// the worked example in docs/signing.md.
import { concat, keccak256, stringToBytes, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';

// RFC 8785: members sorted by UTF-16 code units; strings and numbers as JSON.stringify writes them.
export function canonicalJson(value) {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const members = Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`);
    return `{${members.join(',')}}`;
  }
  return JSON.stringify(value);
}

// keccak256 of each record's canonical JSON, in body order; then keccak256 of them all.
export const recordsHash = (records) =>
  keccak256(concat(records.map((r) => keccak256(stringToBytes(canonicalJson(r))))));

// eip712: GET /v1/info's `eip712` (domain and types), or built from your pinned descriptor.
export async function signSubmission({ privateKey, eip712, partner, records, nonce, deadline }) {
  const account = privateKeyToAccount(privateKey);
  const n = nonce ?? toHex(crypto.getRandomValues(new Uint8Array(32))); // new for every submission
  const d = deadline ?? Math.floor(Date.now() / 1000) + 300; // at most an hour ahead
  const signature = await account.signTypedData({
    domain: eip712.domain,
    types: eip712.types,
    primaryType: 'Submission',
    message: { partner, recordsHash: recordsHash(records), count: records.length, nonce: n, deadline: BigInt(d) },
  });
  return { 'X-Signature': signature, 'X-Nonce': n, 'X-Deadline': String(d) };
}

// const headers = await signSubmission({ privateKey, eip712, partner: 'greenbike', records });
// await fetch(`${api}/v1/submissions`, { method: 'POST', body: JSON.stringify(records),
//   headers: { Authorization: `Bearer ${apiKey}`, 'Content-Type': 'application/json', ...headers } });
