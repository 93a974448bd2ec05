// Every message key the pages use exists in both languages, and both have the same keys.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MESSAGES } from '../src/ui/messages.js';
import { CHECKS, PRESENTATION_CHECKS } from '../src/verifier/index.js';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));
const sources = readdirSync(SRC, { recursive: true }).filter((f) => f.endsWith('.js')).map((f) => readFileSync(join(SRC, f), 'utf8'));
const DYNAMIC = {
  'nav.': ['home', 'verify', 'citizen', 'auditor', 'partner', 'public', 'campaigns'],
  'home.': ['verify', 'citizen', 'auditor', 'partner', 'public', 'campaigns'],
  'check.': [...CHECKS, ...PRESENTATION_CHECKS],
  'why.': [...CHECKS, ...PRESENTATION_CHECKS],
  'batch.': ['sealed', 'submitted', 'anchored'],
  'outcome.': ['accepted', 'duplicate', 'rejected'],
  'period.': ['day', 'month'],
  'signin.': ['citizen', 'citizenHelp', 'citizenLabel', 'auditor', 'auditorHelp', 'auditorLabel', 'partner', 'partnerHelp', 'partnerLabel'],
};

test('every key used is in English and Chinese, and the two have the same keys', () => {
  const used = new Set(sources.flatMap((s) => [...s.matchAll(/\bt\('([^']+)'/g)].map((m) => m[1])));
  for (const [prefix, names] of Object.entries(DYNAMIC)) names.forEach((n) => used.add(prefix + n));
  for (const key of used) {
    assert.ok(MESSAGES.en[key], `en lacks ${key}`);
    assert.ok(MESSAGES['zh-CN'][key], `zh-CN lacks ${key}`);
  }
  assert.deepEqual(Object.keys(MESSAGES['zh-CN']).sort(), Object.keys(MESSAGES.en).sort());
});
