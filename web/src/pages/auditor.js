// Auditor (key sign-in): every batch with its status; per batch the audit (recomputation
// from the partners' raw records and the methodology; a large batch's runs as a job, whose
// progress is shown and asked again as the server's Retry-After says), the OpenZeppelin
// dump to download,
// and any entry's proof verified in the browser; and a chain check of every batch's root
// against the pinned contract.

import { api, ApiError, query } from '../ui/api.js';
import { runVerification } from '../ui/checks.js';
import { clear, download, h, hexCell } from '../ui/dom.js';
import { dateTime, kg, num, t } from '../ui/i18n.js';
import { currentPin, rpcUrl } from '../ui/pins.js';
import { busy, mountPage, notice, section, table } from '../ui/shell.js';
import { signedIn, signInForm, signOutButton } from '../ui/signin.js';
import { trustPanel } from '../ui/trust.js';
import { anchoredBatch, chainReader } from '../verifier/index.js';

const ROLE = 'auditor';
const as = (path, options) => api(path, { role: ROLE, ...options });

async function render(main) {
  main.append(h('h1', {}, t('auditor.title')));
  if (!signedIn(ROLE)) {
    main.append(signInForm(ROLE, '/batches?limit=1', () => mountPage('auditor', render)));
    return;
  }
  const list = h('div', { id: 'batches-body' }, busy());
  const check = h('div', { id: 'chain-check-body' });
  const detail = h('div', { id: 'batch-detail' });
  main.append(signOutButton(ROLE, () => mountPage('auditor', render)),
    section('batches', t('auditor.batches'), list),
    section('batch', t('auditor.batch'), detail),
    trustPanel(() => mountPage('auditor', render)),
    section('chain-check', t('auditor.chainCheck'),
      h('p', { class: 'small' }, t('auditor.chainCheckHelp')),
      h('button', { type: 'button', id: 'run-chain-check', onclick: () => chainCheck(check) }, t('auditor.runCheck')), check));
  try {
    const batches = await allBatches();
    clear(list, batches.length ? table([t('col.batch'), t('col.entries'), t('col.status'), t('col.tx'), t('col.root'), ''],
      batches.map((b) => h('tr', { dataset: { batch: b.batchId } },
        h('td', { 'data-label': t('col.batch') }, `#${b.batchId}`),
        h('td', { 'data-label': t('col.entries'), class: 'num' }, num(b.leafCount)),
        h('td', { 'data-label': t('col.status') }, h('span', { class: `badge badge-${b.status}` }, t(`batch.${b.status}`) ?? b.status)),
        h('td', { 'data-label': t('col.tx') }, b.txHash ? hexCell(b.txHash) : '—', b.blockNumber ? ` · ${t('field.block')} ${num(b.blockNumber)}` : ''),
        h('td', { 'data-label': t('col.root') }, hexCell(b.root)),
        h('td', {}, h('button', { type: 'button', class: 'small-button open-batch', onclick: () => openBatch(b, detail) }, t('auditor.open'))))),
    { caption: t('auditor.batches') }) : notice('info', t('auditor.noBatches')));
  } catch (e) {
    clear(list, notice('error', `${t('api.error')} ${e.message}`));
  }
}

async function allBatches() {
  const out = [];
  for (let after = 0; ;) {
    const page = await as(`/batches${query({ after, limit: 500 })}`);
    out.push(...page.batches);
    if (!page.next) return out;
    after = Number(page.next);
  }
}

// The batch open now: a job's polling stops once another batch is opened.
let opened = 0;

async function openBatch(b, box) {
  const mine = ++opened;
  clear(box, busy());
  try {
    const [audit, dump] = await Promise.all([
      auditWhenDone(b.batchId, (job) => mine === opened && clear(box, jobView(b.batchId, job)), () => mine === opened),
      as(`/batches/${b.batchId}/dump`, { raw: true })]);
    if (audit === null || mine !== opened) return;
    const entries = JSON.parse(dump).values.map((v) => v.value[0]);
    const verifyBox = h('div', { id: 'entry-verify' });
    const pick = h('select', { id: 'entry-pick' }, entries.map((id) => h('option', { value: id }, id)));
    clear(box,
      h('h3', {}, t('auditor.batchN', { n: b.batchId })),
      h('div', { id: 'audit', dataset: { ok: String(audit.ok) }, class: `notice ${audit.ok ? 'notice-ok' : 'notice-error'}` },
        h('p', {}, h('strong', {}, audit.ok ? t('audit.ok') : t('audit.failed'))),
        h('dl', { class: 'facts' },
          h('dt', {}, t('audit.entries')), h('dd', {}, num(audit.entries)),
          h('dt', {}, t('audit.credits')), h('dd', {}, num(audit.credits)),
          h('dt', {}, t('audit.capped')), h('dd', {}, num(audit.capped)),
          h('dt', {}, t('audit.reduction')), h('dd', {}, kg(audit.reductionGrams)),
          h('dt', {}, t('field.sealed')), h('dd', {}, b.sealedAt ? dateTime(b.sealedAt) : '—'),
          h('dt', {}, t('audit.when')), h('dd', {}, audit.auditedAt ? dateTime(audit.auditedAt) : '—')),
        audit.problems.length ? h('ul', { class: 'problems' }, audit.problems.map((p) => h('li', {}, typeof p === 'string' ? p : JSON.stringify(p)))) : null),
      h('p', {}, h('button', { type: 'button', id: 'download-dump', onclick: () => download(`batch-${b.batchId}.json`, dump) }, t('auditor.dump')),
        ' ', h('span', { class: 'small' }, t('auditor.dumpHelp'))),
      h('div', { class: 'field row' }, h('label', { for: 'entry-pick' }, t('auditor.entry')), pick,
        h('button', { type: 'button', id: 'verify-entry', onclick: async () => {
          clear(verifyBox, busy());
          try {
            const bundle = await as(`/entries/${pick.value}/proof`, { raw: true });
            await runVerification(bundle, verifyBox);
          } catch (e) {
            clear(verifyBox, notice('error', `${t('api.error')} ${e.message}`));
          }
        } }, t('citizen.verify'))),
      verifyBox);
  } catch (e) {
    clear(box, notice('error', e instanceof ApiError ? `${t('api.error')} ${e.message}` : e.message));
  }
}

/**
 * The batch's audit report. A large batch answers 202 while its job runs: `onProgress(job)`
 * is shown each time, and the next ask waits the server's Retry-After (2 to 60 s, longer
 * while the tab is hidden). Resolves to null if `wanted()` turns false meanwhile.
 */
async function auditWhenDone(batchId, onProgress, wanted) {
  for (;;) {
    const answer = await as(`/batches/${batchId}/audit`, { full: true });
    if (answer.status !== 202) return answer.body;
    onProgress(answer.body);
    const seconds = Math.min(60, Math.max(2, Number(answer.headers.get('Retry-After')) || 5));
    await pause(seconds * 1000);
    while (document.hidden && wanted()) await pause(seconds * 1000);
    if (!wanted()) return null;
  }
}

const pause = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

function jobView(batchId, job) {
  return h('div', { id: 'audit-job', class: 'notice notice-info', role: 'status', dataset: { state: job.state, done: job.entriesDone } },
    h('h3', {}, t('auditor.batchN', { n: batchId })),
    h('p', {}, h('strong', {}, t('audit.running')), ' ', t('audit.progress', { done: num(job.entriesDone), total: num(job.entries) })),
    h('progress', { max: job.entries, value: job.entriesDone, 'aria-label': t('audit.running') }),
    h('p', { class: 'small' }, t('audit.since', { when: dateTime(job.startedAt) }), ' ', t('audit.polling')));
}

// Every batch the API lists, read back from the pinned contract over the chosen endpoint:
// the root from the contract's state, the leaf count and content hash from the event of the
// transaction that anchored it. A batch missing on chain or differing in any is named.
async function chainCheck(box) {
  const pin = currentPin();
  if (!pin) {
    clear(box, notice('error', t('verify.unpinned')));
    return;
  }
  clear(box, busy());
  try {
    const reader = chainReader(rpcUrl(), pin.contract);
    const fromBlock = pin.deployment?.blockNumber ?? 0;
    const rows = [];
    let good = 0;
    for (const b of (await allBatches()).filter((x) => x.status === 'anchored')) {
      const onChain = await anchoredBatch(reader, b.batchId, { lookFirst: b.txHash, fromBlock });
      const problem = chainProblem(b, onChain, pin);
      good += problem === null;
      rows.push(h('tr', { dataset: { batch: b.batchId, ok: String(problem === null) } },
        h('td', { 'data-label': t('col.batch') }, `#${b.batchId}`),
        h('td', { 'data-label': t('col.root') }, hexCell(b.root)),
        h('td', { 'data-label': t('auditor.onChain') }, onChain ? hexCell(onChain.root) : t('auditor.missing')),
        h('td', { 'data-label': t('col.status') }, problem === null ? '✓' : `✗ ${t(problem)}`)));
    }
    clear(box, h('p', { id: 'chain-check-summary', class: `notice ${good === rows.length ? 'notice-ok' : 'notice-error'}`,
      dataset: { good, total: rows.length } }, t('auditor.checkSummary', { good: num(good), total: num(rows.length), contract: pin.contract })),
    table([t('col.batch'), t('col.root'), t('auditor.onChain'), ''], rows, { caption: t('auditor.chainCheck') }));
  } catch (e) {
    clear(box, notice('error', `${t('chain.unreadable')} ${e.message}`));
  }
}

/** The message key of what differs between the API's batch `b` and the chain, or null. */
function chainProblem(b, onChain, pin) {
  if (onChain === null || b.contract.toLowerCase() !== pin.contract.toLowerCase()) return 'auditor.missing';
  if (onChain.root !== b.root.toLowerCase()) return 'auditor.rootDiffers';
  const e = onChain.event;
  if (e === null) return 'auditor.noAnchorTx';
  if (e.leafCount !== BigInt(b.leafCount) || e.contentHash !== b.contentHash.toLowerCase()) return 'auditor.eventDiffers';
  if (e.txHash.toLowerCase() !== b.txHash.toLowerCase() || e.blockNumber !== b.blockNumber) return 'auditor.anchorMoved';
  return null;
}

mountPage('auditor', render);
