// The verifier's pure parts, without a chain: the strict JSON reader's edges that the
// corpus does not spell out, the leaf and fold against OpenZeppelin's own library, and the
// ABI fragment against the committed contract artifact.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { ANCHOR_ABI, BATCH_ANCHORED, CREDENTIAL_ABI } from '../src/verifier/abi.js';
import { parseBundle, Refusal } from '../src/verifier/index.js';
import { leafHash, rootFromProof } from '../src/verifier/merkle.js';
import { parseStrictJson, JsonRefused } from '../src/verifier/strict-json.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const read = (text) => parseStrictJson(text, { maxBytes: 65536, maxDepth: 32 });
const refused = (text) => assert.throws(() => read(text), JsonRefused, text.slice(0, 40));

test('depth is bounded before parsing: 32 levels pass, 33 do not', () => {
  assert.ok(read('['.repeat(32) + ']'.repeat(32)));
  refused('['.repeat(33) + ']'.repeat(33));
  refused('['.repeat(100000));
  assert.deepEqual(read('{"a":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}'), { a: '['.repeat(34) });
});

test('a member named twice is refused, even when spelled with an escape', () => {
  refused('{"a":1,"a":1}');
  refused('{"a":1,"\\u0061":2}');
  assert.deepEqual(read('{"a":{"a":1},"b":[{"a":1},{"a":2}]}'), { a: { a: 1 }, b: [{ a: 1 }, { a: 2 }] });
  assert.deepEqual(read('{"x":"a","a":"x"}'), { x: 'a', a: 'x' });
  refused('{"a\u0001":1}'); // a raw control character in a name: a refusal, never a crash
  refused('{"a\\q":1}');
});

test('surrogates: a pair is one character, a lone half is refused', () => {
  assert.equal(read('"\\ud83d\\ude00"'), '\u{1F600}');
  for (const lone of ['"\\ud83d"', '"\\ude00"', '"\\ud83dx\\ude00"', '"\\ud83d\\u0041"']) refused(lone);
  assert.equal(read('"\\\\ud83d"'), '\\ud83d'); // an escaped backslash, not an escape
});

test('numbers: beyond a double is refused, 1.0 and 1e0 are 1', () => {
  refused('[1e400]');
  refused(`[${'9'.repeat(5000)}]`);
  assert.deepEqual(read('[1.0, 1e0, -0]'), [1, 1, -0]);
  for (const bad of ['NaN', '[Infinity]', '01', '', ' ', '{"a":1} x', '\ufeff{}']) refused(bad);
});

test('bytes: a BOM, invalid UTF-8 and an oversized document are refused', () => {
  assert.throws(() => read(new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d])), JsonRefused);
  assert.throws(() => read(new Uint8Array([0x22, 0xff, 0x22])), JsonRefused);
  assert.throws(() => read(new Uint8Array([0x22, 0xed, 0xa0, 0x80, 0x22])), JsonRefused); // encoded surrogate
  assert.throws(() => read(`"${'a'.repeat(65535)}"`), JsonRefused);
});

test('a bundle of another shape names the member at fault', () => {
  const good = JSON.parse(readFileSync(`${ROOT}tests/data/bundle_corpus/cases/001-good-credit.json`, 'utf8'));
  const shapeOf = (b) => {
    try {
      parseBundle(JSON.stringify(b));
      return 'ok';
    } catch (e) {
      assert.ok(e instanceof Refusal);
      return `${e.check}:${e.field}`;
    }
  };
  assert.equal(shapeOf(good), 'ok');
  assert.equal(shapeOf({ ...good, status: null, confirmations: null }), 'ok'); // as absent
  assert.equal(shapeOf({ ...good, zeta: 1, alpha: 1 }), 'shape:alpha');
  const values = [...good.values];
  values[2] = '256';
  values[10] = good.values[10].toUpperCase().replace('0X', '0x');
  assert.equal(shapeOf({ ...good, values }), 'shape:values.partner'); // forms before ranges
  values[10] = good.values[10];
  assert.equal(shapeOf({ ...good, values }), 'shape:values.kind');
  assert.equal(shapeOf({ ...good, blockNumber: 2 ** 53 }), 'shape:blockNumber');
  assert.equal(shapeOf({ ...good, confirmations: -1 }), 'shape:confirmations');
});

test('leaf and fold agree with OpenZeppelin StandardMerkleTree', () => {
  const good = JSON.parse(readFileSync(`${ROOT}tests/data/bundle_corpus/cases/001-good-credit.json`, 'utf8'));
  const values = good.values.map((v, i) => ([2, 4, 5, 6, 7, 8].includes(i) ? BigInt(v) : v));
  const rows = [values, values.map((v, i) => (i === 0 ? `0x${'11'.repeat(32)}` : v)),
    values.map((v, i) => (i === 0 ? `0x${'22'.repeat(32)}` : v))];
  const tree = StandardMerkleTree.of(rows.map((r) => r.map(String)), good.leafEncoding);
  for (const [i, row] of rows.entries()) {
    assert.equal(leafHash(row), tree.leafHash(row.map(String)));
    assert.equal(rootFromProof(leafHash(row), tree.getProof(i)), tree.root);
  }
});

test('the ABI fragment is the committed artifact\'s', () => {
  const artifact = JSON.parse(readFileSync(`${ROOT}contracts/CarbonLedgerAnchor.json`, 'utf8')).abi;
  for (const entry of [...ANCHOR_ABI, BATCH_ANCHORED, ...CREDENTIAL_ABI]) {
    assert.deepEqual(entry, artifact.find((e) => e.name === entry.name && e.type === entry.type));
  }
});
