// The partner page's signing example (web/examples/sign-submission.mjs) recomputes the
// worked example of docs/signing.md value by value, read from the document itself.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { keccak256, stringToBytes } from 'viem';
import { canonicalJson, recordsHash, signSubmission } from '../examples/sign-submission.mjs';

const doc = readFileSync(fileURLToPath(new URL('../../docs/signing.md', import.meta.url)), 'utf8');
const cell = (label) => {
  const row = doc.split('\n').findLast((line) => line.startsWith(`| ${label}`)); // the example's table is last
  assert.ok(row, `docs/signing.md has no row "${label}"`);
  return row.split('|')[2].trim().replace(/`/g, '').split(' ')[0];
};

test('the example signs the worked example of docs/signing.md exactly', async () => {
  const record = JSON.parse(doc.split('```json\n')[2].split('```')[0]);
  const domainRow = doc.split('\n').findLast((line) => line.startsWith('| domain |'));
  const chainId = Number(domainRow.match(/chain id `(\d+)`/)[1]);
  const contract = domainRow.match(/contract `(0x[0-9a-fA-F]{40})`/)[1];
  assert.equal(canonicalJson(record), cell('RFC 8785 JSON'));
  assert.equal(keccak256(stringToBytes(canonicalJson(record))), cell('its keccak256'));
  assert.equal(recordsHash([record]), cell('recordsHash'));
  const eip712 = {
    domain: { name: 'CarbonLedger', version: '2', chainId, verifyingContract: contract },
    types: { Submission: [{ name: 'partner', type: 'string' }, { name: 'recordsHash', type: 'bytes32' },
      { name: 'count', type: 'uint32' }, { name: 'nonce', type: 'bytes32' }, { name: 'deadline', type: 'uint64' }] },
  };
  const headers = await signSubmission({ privateKey: cell('private key'), eip712, partner: 'greenbike',
    records: [record], nonce: cell('nonce'), deadline: Number(cell('deadline')) });
  assert.deepEqual(headers, { 'X-Signature': cell('`X-Signature`'), 'X-Nonce': cell('nonce'), 'X-Deadline': cell('deadline') });
});
