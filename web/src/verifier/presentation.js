// A bank's check of a green-credit presentation (docs/green-credit.md), against the pinned
// ledger and the chain alone, as ledger/green_credit_verify.py does it and in its order:
//   parse, shape, ledger, node, subject, statement, areas, issuer, validity, holder,
//   challenge, audience, expiry, revocation.
// Nothing in the file is a trust root: the chain id and contract are the pin's, the
// statement roots, the issuer's role and the revocation bit are read from that contract.
// viem does the ABI encoding, keccak, EIP-712 hashing and signature recovery.

import { encodeAbiParameters, getAddress, hashTypedData, keccak256, recoverTypedDataAddress, stringToHex } from 'viem';
import { Refusal, bytes32, stepper } from './bundle.js';
import { chainReader } from './chain.js';
import { rootFromProof, standardLeaf } from './merkle.js';
import { JsonRefused, parseStrictJson } from './strict-json.js';

export const PRESENTATION_CHECKS = ['parse', 'shape', 'ledger', 'node', 'subject', 'statement', 'areas', 'issuer',
  'validity', 'holder', 'challenge', 'audience', 'expiry', 'revocation'];
export const MAX_PRESENTATION_BYTES = 1024 * 1024;
const MAX_MONTHS = 24;
const MAX_PROOF = 64;
const MAX_PRESENTATION_SECONDS = 3600;
const CLOCK_SKEW = 300;
const HALF_ORDER = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;

const DOMAIN_NAME = 'Carbon Ledger Green Credit';
const TYPES = {
  GreenCredit: [{ name: 'issuer', type: 'address' }, { name: 'holder', type: 'address' },
    { name: 'account', type: 'bytes32' }, { name: 'statusIndex', type: 'uint256' },
    { name: 'validFrom', type: 'uint64' }, { name: 'validUntil', type: 'uint64' },
    { name: 'areasDisclosed', type: 'bool' }, { name: 'statements', type: 'MonthStatement[]' }],
  MonthStatement: [{ name: 'period', type: 'uint32' }, { name: 'leaf', type: 'bytes32' }],
  Presentation: [{ name: 'credential', type: 'bytes32' }, { name: 'audience', type: 'string' },
    { name: 'nonce', type: 'string' }, { name: 'created', type: 'uint64' }, { name: 'expires', type: 'uint64' }],
};
const STATEMENT_FIELDS = ['period', 'account', 'reductionGrams', 'pointsEarned', 'pointsSpent', 'entryCount',
  'entries', 'areas', 'salt'];
const STATEMENT_ENCODING = ['uint32', 'bytes32', 'uint64', 'uint64', 'uint64', 'uint64', 'bytes32', 'bytes32', 'bytes32']
  .map((type) => ({ type }));
const AREA_TOTALS = [{ type: 'tuple[]', components: [{ type: 'bytes32' }, { type: 'uint64' }, { type: 'uint64' }] }];
const DID = /^did:pkh:eip155:([1-9][0-9]{0,18}):(0x[0-9a-fA-F]{40})$/;
const TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;
const DECIMAL = /^(?:0|[1-9][0-9]{0,19})$/;

const refuse = (check, field, message) => new Refusal(check, field, message);
const shape = (field, message) => refuse('shape', field, message);
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const label = (period) => `${Math.floor(period / 100)}-${String(period % 100).padStart(2, '0')}`;

function required(obj, key, kind, where) {
  const value = isObject(obj) ? obj[key] : undefined;
  const ok = kind === 'list' ? Array.isArray(value) : kind === 'dict' ? isObject(value) : typeof value === kind;
  if (!ok) throw shape(`${where}.${key}`, `expected ${key} as a ${kind === 'string' ? 'str' : kind}`);
  return value;
}

function unixTime(text, field) {
  const m = typeof text === 'string' ? TIME.exec(text) : null;
  const seconds = m ? Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) / 1000 : NaN;
  if (!m || new Date(seconds * 1000).toISOString().slice(0, 19) !== text.slice(0, 19)) {
    throw shape(field, 'expected a UTC time as YYYY-MM-DDTHH:MM:SSZ');
  }
  return seconds;
}

function did(text, field) {
  const m = typeof text === 'string' ? DID.exec(text) : null;
  if (!m) throw shape(field, 'expected did:pkh:eip155:<chain id>:<0x address>');
  return [Number(m[1]), getAddress(m[2].toLowerCase())];
}

function signature(proof, where) {
  if (required(proof, 'type', 'string', where) !== 'Eip712Signature') throw shape(`${where}.type`, 'expected a Eip712Signature proof');
  const value = required(proof, 'proofValue', 'string', where);
  if (!/^0[xX][0-9a-fA-F]{130}$/.test(value)) {
    throw shape(`${where}.proofValue`, 'not a valid signature: expected 0x and 130 hex digits (r, s, v)');
  }
  if (BigInt(`0x${value.slice(66, 130)}`) > HALF_ORDER) {
    throw shape(`${where}.proofValue`, 's is above secp256k1n/2, the malleable twin of a signature (EIP-2)');
  }
  return `0x${value.slice(2).toLowerCase()}`;
}

function decimal(value, field) {
  if (typeof value !== 'string' || !DECIMAL.test(value) || BigInt(value) >= 1n << 64n) {
    throw shape(field, 'expected a decimal integer string below 2**64');
  }
  return BigInt(value);
}

function period(value, field) {
  const text = String(value);
  const digits = text.length === 7 && text[4] === '-' ? text.replace('-', '') : text;
  const n = /^\d{6}$/.test(digits) ? Number(digits) : NaN;
  if (!(n % 100 >= 1 && n % 100 <= 12 && n >= 197001)) throw shape(field, `${JSON.stringify(text)} is not a month written YYYY-MM`);
  return n;
}

function statementLeaf(data, field) {
  if (!isObject(data) || Object.keys(data).length !== STATEMENT_FIELDS.length || !STATEMENT_FIELDS.every((k) => k in data)) {
    throw shape(field, `expected exactly ${STATEMENT_FIELDS.join(', ')}`);
  }
  if (!Number.isInteger(data.period)) throw shape(`${field}.period`, 'expected an integer yyyymm');
  period(data.period, `${field}.period`);
  const hex = (k) => bytes32(data[k], `${field}.${k}`);
  return { period: data.period, account: hex('account'), reductionGrams: decimal(data.reductionGrams, `${field}.reductionGrams`),
    pointsEarned: decimal(data.pointsEarned, `${field}.pointsEarned`), pointsSpent: decimal(data.pointsSpent, `${field}.pointsSpent`),
    entryCount: decimal(data.entryCount, `${field}.entryCount`), entries: hex('entries'), areas: hex('areas'), salt: hex('salt') };
}

function areaTotals(items, field) {
  if (!Array.isArray(items) || items.length > 64) throw shape(field, 'expected a list of at most 64 area totals');
  return items.map((item, i) => {
    const at = `${field}[${i}]`;
    if (!isObject(item) || Object.keys(item).sort().join() !== 'area,entryCount,reductionGrams') {
      throw shape(at, 'expected {area, reductionGrams, entryCount}');
    }
    if (typeof item.area !== 'string' || !/^[\x00-\x7f]{1,32}$/.test(item.area)) throw shape(`${at}.area`, 'expected 1-32 ASCII characters');
    return { area: item.area, grams: decimal(item.reductionGrams, `${at}.reductionGrams`), entries: decimal(item.entryCount, `${at}.entryCount`) };
  });
}

function months(items, areasDisclosed) {
  const where = 'credentialSubject.statements';
  if (items.length < 1 || items.length > MAX_MONTHS) throw shape(where, `1 to ${MAX_MONTHS} months`);
  const expected = ['leaf', 'month', 'proof', ...(areasDisclosed ? ['areaTotals'] : [])].sort();
  const out = items.map((item, i) => {
    const at = `${where}[${i}]`;
    if (!isObject(item)) throw shape(at, 'expected an object');
    if (Object.keys(item).sort().join() !== expected.join()) throw shape(at, `expected exactly ${expected.join(', ')}`);
    if (!Array.isArray(item.proof) || item.proof.length > MAX_PROOF) throw shape(`${at}.proof`, `at most ${MAX_PROOF} hashes`);
    return { period: period(item.month, `${at}.month`), leaf: statementLeaf(item.leaf, `${at}.leaf`),
      areas: areasDisclosed ? areaTotals(item.areaTotals, `${at}.areaTotals`) : null,
      proof: item.proof.map((h, k) => bytes32(h, `${at}.proof[${k}]`)) };
  });
  if (out.some((m, i) => i > 0 && m.period <= out[i - 1].period)) throw shape(where, 'months must be distinct and in order');
  return out;
}

/** The credential's values, its shape checked before any hashing (ledger/green_credit.py). */
export function parseCredential(doc) {
  const types = required(doc, 'type', 'list', 'credential');
  if (!types.includes('GreenCreditCredential') || !types.includes('VerifiableCredential')) {
    throw shape('credential.type', 'not a GreenCreditCredential');
  }
  const subject = required(doc, 'credentialSubject', 'dict', 'credential');
  const ledger = required(subject, 'ledger', 'dict', 'credentialSubject');
  const chainId = required(ledger, 'chainId', 'number', 'credentialSubject.ledger');
  if (!Number.isSafeInteger(chainId)) throw shape('credentialSubject.ledger.chainId', 'expected chainId as a int');
  const contract = required(ledger, 'contract', 'string', 'credentialSubject.ledger');
  if (!/^0x[0-9a-fA-F]{40}$/.test(contract)) throw shape('credentialSubject.ledger.contract', 'expected a 0x address');
  const [issuerChain, issuer] = did(doc.issuer, 'credential.issuer');
  const [holderChain, holder] = did(subject.id, 'credentialSubject.id');
  if (issuerChain !== chainId || holderChain !== chainId) throw shape('credential', 'issuer and holder DIDs must name the ledger\'s chain');
  const status = required(doc, 'credentialStatus', 'dict', 'credential');
  const index = required(status, 'statusIndex', 'string', 'credentialStatus');
  if (!/^[0-9]{1,18}$/.test(index)) throw shape('credentialStatus.statusIndex', 'expected a decimal index');
  const areasDisclosed = required(subject, 'areasDisclosed', 'boolean', 'credentialSubject');
  const account = bytes32(subject.account, 'credentialSubject.account');
  const statements = months(required(subject, 'statements', 'list', 'credentialSubject'), areasDisclosed);
  return { chainId, contract: getAddress(contract.toLowerCase()), issuer, holder, account, index: BigInt(index),
    validFrom: unixTime(doc.validFrom, 'credential.validFrom'), validUntil: unixTime(doc.validUntil, 'credential.validUntil'),
    areasDisclosed, months: statements, signature: signature(doc.proof, 'credential.proof') };
}

/** The presentation's values, every member of the written form checked before any hashing. */
export function parsePresentation(doc) {
  const proof = required(doc, 'proof', 'dict', 'presentation');
  const creds = required(doc, 'verifiableCredential', 'list', 'presentation');
  if (creds.length !== 1) throw shape('presentation.verifiableCredential', 'expected exactly one credential');
  const credential = parseCredential(creds[0]);
  return { credential, presentedBy: did(doc.holder, 'presentation.holder')[1],
    signature: signature(proof, 'presentation.proof'),
    created: unixTime(proof.created, 'presentation.proof.created'), expires: unixTime(proof.expires, 'presentation.proof.expires'),
    nonce: required(proof, 'challenge', 'string', 'presentation.proof'),
    audience: required(proof, 'domain', 'string', 'presentation.proof') };
}

/** A statement leaf's hash: OpenZeppelin's standard leaf of its nine values. */
export function statementLeafHash(leaf) {
  return standardLeaf(STATEMENT_ENCODING, STATEMENT_FIELDS.map((k) => leaf[k]));
}

/** The leaf's `areas` value: the area totals, in area order, ABI-encoded and hashed. */
export function areasCommitment(areas) {
  const ordered = [...areas].sort((a, b) => (a.area < b.area ? -1 : a.area > b.area ? 1 : 0));
  return keccak256(encodeAbiParameters(AREA_TOTALS, [ordered.map((a) => [stringToHex(a.area, { size: 32 }), a.grams, a.entries])]));
}

const domain = (c) => ({ name: DOMAIN_NAME, version: '1', chainId: c.chainId, verifyingContract: c.contract });

function credentialTypedData(c) {
  return { domain: domain(c), types: { GreenCredit: TYPES.GreenCredit, MonthStatement: TYPES.MonthStatement },
    primaryType: 'GreenCredit', message: { issuer: c.issuer, holder: c.holder, account: c.account,
      statusIndex: c.index, validFrom: BigInt(c.validFrom), validUntil: BigInt(c.validUntil),
      areasDisclosed: c.areasDisclosed, statements: c.months.map((m) => ({ period: m.period, leaf: statementLeafHash(m.leaf) })) } };
}

function presentationTypedData(c, p) {
  return { domain: domain(c), types: { Presentation: TYPES.Presentation }, primaryType: 'Presentation',
    message: { credential: hashTypedData(credentialTypedData(c)), audience: p.audience, nonce: p.nonce,
      created: BigInt(p.created), expires: BigInt(p.expires) } };
}

/**
 * Verify a presentation's bytes or text for the bank that sent `challenge` as `audience`,
 * at `now` (unix seconds). `trust`: the pinned {chainId, contract, source}; `rpcUrl` (or a
 * `reader`); `onStep(check, ok, detail)`. Resolves to the verified months; rejects with a
 * Refusal naming the check, or ChainUnreadable (no verdict).
 */
export async function verifyPresentation(input, { trust, rpcUrl, reader, challenge, audience, now, onStep = () => {} }) {
  if (!trust) throw new Error('nothing pinned: pin the ledger from its descriptor first');
  const started = performance.now();
  const step = stepper(onStep);
  const doc = await step('parse', () => {
    try {
      return parseStrictJson(input, { maxBytes: MAX_PRESENTATION_BYTES, maxDepth: 32 });
    } catch (e) {
      throw e instanceof JsonRefused ? refuse('parse', 'presentation', e.message) : e;
    }
  });
  const p = await step('shape', () => parsePresentation(doc));
  const c = p.credential;
  await step('ledger', () => {
    if (c.chainId !== trust.chainId || c.contract.toLowerCase() !== trust.contract.toLowerCase()) {
      throw refuse('ledger', 'credentialSubject.ledger', `the credential names chain ${c.chainId} contract ${c.contract}; `
        + `the pinned ledger is chain ${trust.chainId} contract ${trust.contract}`);
    }
  });
  const chain = reader ?? chainReader(rpcUrl, trust.contract);
  await step('node', async () => {
    const served = await chain.chainId();
    if (served !== trust.chainId) throw refuse('node', 'chainId', `the endpoint serves chain ${served}, the pinned ledger is on chain ${trust.chainId}`);
  });
  await checkStatements(c, chain, onStep);
  await step('issuer', async () => {
    const signer = await recoverTypedDataAddress({ ...credentialTypedData(c), signature: c.signature });
    if (signer.toLowerCase() !== c.issuer.toLowerCase()) {
      throw refuse('issuer', 'credential.proof.proofValue', `the credential is signed by ${signer}, not by its issuer ${c.issuer}`);
    }
    if (!(await chain.isIssuer(signer))) throw refuse('issuer', 'credential.issuer', `${signer} does not hold ISSUER_ROLE on the pinned contract`);
  });
  await step('validity', () => {
    if (!(c.validFrom <= now && now < c.validUntil)) {
      throw refuse('validity', 'credential.validUntil', `the credential is valid from ${c.validFrom} until ${c.validUntil}, not at ${now}`);
    }
  });
  await step('holder', async () => {
    const signer = await recoverTypedDataAddress({ ...presentationTypedData(c, p), signature: p.signature });
    if (signer.toLowerCase() !== c.holder.toLowerCase() || p.presentedBy !== c.holder) {
      throw refuse('holder', 'presentation.proof.proofValue', `the presentation is signed by ${signer}, the credential's holder is ${c.holder}`);
    }
  });
  await step('challenge', () => {
    if (p.nonce !== challenge) {
      throw refuse('challenge', 'presentation.proof.challenge', `the presentation answers challenge ${JSON.stringify(p.nonce)}, not ${JSON.stringify(challenge)}`);
    }
  });
  await step('audience', () => {
    if (p.audience !== audience) {
      throw refuse('audience', 'presentation.proof.domain', `the presentation is for ${JSON.stringify(p.audience)}, not ${JSON.stringify(audience)}`);
    }
  });
  await step('expiry', () => {
    if (!(p.created <= now + CLOCK_SKEW && now < p.expires && p.expires - p.created <= MAX_PRESENTATION_SECONDS)) {
      throw refuse('expiry', 'presentation.proof.expires', `the presentation was good from ${p.created} to ${p.expires} `
        + `(at most ${MAX_PRESENTATION_SECONDS} s), not at ${now}`);
    }
  });
  await step('revocation', async () => {
    if (await chain.credentialRevoked(c.index)) throw refuse('revocation', 'credentialStatus.statusIndex', `credential ${c.index} is revoked on chain`);
  });
  const total = c.months.reduce((sum, m) => sum + m.leaf.reductionGrams, 0n);
  return { holder: c.holder, statusIndex: c.index, audience, expires: p.expires, chainId: trust.chainId,
    contract: trust.contract, pinnedBy: trust.source, totalReductionGrams: total,
    months: c.months.map((m) => ({ month: label(m.period), reductionGrams: m.leaf.reductionGrams, pointsEarned: m.leaf.pointsEarned,
      pointsSpent: m.leaf.pointsSpent, entryCount: m.leaf.entryCount, areas: m.areas })),
    timings: { totalMs: performance.now() - started, rpcMs: chain.clock?.rpcMs ?? 0, rpcCalls: chain.clock?.calls ?? 0 } };
}

// Month by month, as the Python verifier: the leaf is the subject's, of the month it is
// listed under, folds to that month's root on chain, and commits to the disclosed areas.
async function checkStatements(c, chain, onStep) {
  const fail = (e) => {
    onStep(e.check, false, e);
    throw e;
  };
  for (const m of c.months) {
    const month = label(m.period);
    if (m.leaf.account !== c.account) fail(refuse('subject', 'leaf.account', `${month}'s leaf is account ${m.leaf.account}, the credential's is ${c.account}`));
    if (m.leaf.period !== m.period) fail(refuse('statement', 'leaf.period', `the leaf listed under ${month} is ${label(m.leaf.period)}'s`));
    const root = await chain.statementRoot(m.period);
    if (root === null) fail(refuse('statement', 'month', `no statement of ${month} is anchored on chain`));
    const folded = rootFromProof(statementLeafHash(m.leaf), m.proof);
    if (folded !== root.toLowerCase()) fail(refuse('statement', 'proof', `${month}: the leaf and proof fold to ${folded}, the contract holds ${root.toLowerCase()}`));
    if (m.areas !== null && areasCommitment(m.areas) !== m.leaf.areas) fail(refuse('areas', 'areaTotals', `${month}'s area totals are not the ones its leaf commits to`));
  }
  for (const check of ['subject', 'statement', 'areas']) onStep(check, true);
}

/** Whether a parsed JSON document claims to be a presentation (which verifier to run). */
export const looksLikePresentation = (doc) => isObject(doc) && Array.isArray(doc.type) && doc.type.includes('VerifiablePresentation');
