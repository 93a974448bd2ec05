// For tests/web/test_shape_agreement.py: read a JSON array of base64 documents on stdin,
// parse each as a proof bundle with the browser verifier (no chain), and print for each
// ["ok"] or ["refused", check, field].

import { parseBundle, Refusal } from '../src/verifier/index.js';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const docs = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const out = docs.map((b64) => {
  try {
    parseBundle(new Uint8Array(Buffer.from(b64, 'base64')));
    return ['ok'];
  } catch (e) {
    if (e instanceof Refusal) return ['refused', e.check, e.field];
    return ['crash', e.name, e.message];
  }
});
process.stdout.write(JSON.stringify(out));
