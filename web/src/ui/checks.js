// One verification on screen: the checks in order (a proof bundle's eight of
// docs/proof-bundle.md, or a green-credit presentation's of docs/green-credit.md), each
// marked as it passes or fails, then the verdict. The verdict comes from the browser
// verifier alone, never from the API.

import { CHECKS, ChainUnreadable, PRESENTATION_CHECKS, Refusal, verifyBundle, verifyPresentation } from '../verifier/index.js';
import { clear, h, hexCell } from './dom.js';
import { kg, num, t } from './i18n.js';
import { currentPin, rpcUrl, trustRoot } from './pins.js';
import { table } from './shell.js';

/** Verify a bundle's `input` (bytes or text) into `box`; resolves to {verdict} or {refusal} or {error}. */
export const runVerification = (input, box) => runChecks(box, CHECKS,
  (trust, onStep) => verifyBundle(input, { trust, rpcUrl: rpcUrl(), onStep }), verdictView);

/** Verify a green-credit presentation for the bank that sent `challenge` as `audience`. */
export const runPresentationCheck = (input, box, { challenge, audience }) => runChecks(box, PRESENTATION_CHECKS,
  (trust, onStep) => verifyPresentation(input, { trust, rpcUrl: rpcUrl(), onStep, challenge, audience,
    now: Math.floor(Date.now() / 1000) }), presentationView);

async function runChecks(box, checks, verify, view) {
  const rows = new Map(checks.map((check) => [check, h('li', { dataset: { check, state: 'pending' } },
    h('span', { class: 'mark', 'aria-hidden': 'true' }), h('span', { class: 'check-name' }, t(`check.${check}`)),
    h('span', { class: 'check-detail' }))]));
  const outcome = h('div', { class: 'outcome', role: 'status', 'aria-live': 'polite' });
  clear(box, h('ol', { class: 'checks', 'aria-label': t('checks.label') }, [...rows.values()]), outcome);
  const trust = trustRoot(currentPin());
  if (!trust) {
    box.dataset.verdict = 'unpinned';
    clear(outcome, h('p', { class: 'notice notice-error' }, t('verify.unpinned')));
    return { error: 'unpinned' };
  }
  const onStep = (check, ok, detail) => {
    const row = rows.get(check);
    row.dataset.state = ok ? 'ok' : 'fail';
    if (!ok) row.querySelector('.check-detail').textContent = ` ${detail.field}: ${detail.message}`;
  };
  try {
    const verdict = await verify(trust, onStep);
    Object.assign(box.dataset, { verdict: 'valid', check: '', field: '',
      totalMs: verdict.timings.totalMs.toFixed(2), rpcMs: verdict.timings.rpcMs.toFixed(2),
      rpcCalls: verdict.timings.rpcCalls });
    clear(outcome, view(verdict));
    return { verdict };
  } catch (e) {
    if (e instanceof Refusal) {
      Object.assign(box.dataset, { verdict: 'refused', check: e.check, field: e.field });
      clear(outcome, h('p', { class: 'notice notice-error verdict-refused' },
        h('strong', {}, t('verify.refused')), ' ', t('verify.refusedBy', { check: t(`check.${e.check}`), field: e.field }),
        h('br'), h('span', { class: 'small' }, t(`why.${e.check}`)), h('br'), h('code', { class: 'reason' }, e.message)));
      return { refusal: e };
    }
    Object.assign(box.dataset, { verdict: 'error', check: '', field: '' });
    const text = e instanceof ChainUnreadable ? t('chain.unreadable') : t('verify.error');
    clear(outcome, h('p', { class: 'notice notice-error' }, text, ' ', h('code', {}, e.message)));
    return { error: e };
  }
}

function verdictView(v) {
  return h('div', { class: 'notice notice-ok verdict-valid' },
    h('p', {}, h('strong', {}, t('verify.valid')), ' ', t('verify.validWhat', {
      batch: v.batchId, chain: v.chainId, confirmations: num(v.confirmations) })),
    h('dl', { class: 'facts' },
      h('dt', {}, t('field.entry')), h('dd', {}, hexCell(v.entryId)),
      h('dt', {}, t('field.root')), h('dd', {}, hexCell(v.root)),
      h('dt', {}, t('field.contract')), h('dd', {}, h('code', { class: 'addr' }, v.contract)),
      h('dt', {}, t('field.tx')), h('dd', {}, hexCell(v.txHash), ` · ${t('field.block')} ${num(v.blockNumber)}`),
      h('dt', {}, t('field.pinnedBy')), h('dd', {}, v.pinnedBy),
      h('dt', {}, t('field.time')), h('dd', { class: 'timing' }, t('verify.timing', {
        total: num(v.timings.totalMs, { maximumFractionDigits: 1 }),
        local: num(v.timings.totalMs - v.timings.rpcMs, { maximumFractionDigits: 1 }),
        calls: v.timings.rpcCalls }))));
}

function presentationView(v) {
  return h('div', { class: 'notice notice-ok verdict-valid' },
    h('p', {}, h('strong', {}, t('verify.valid')), ' ', t('credit.validWhat', {
      index: String(v.statusIndex), audience: v.audience, chain: v.chainId })),
    h('dl', { class: 'facts' },
      h('dt', {}, t('credit.holder')), h('dd', {}, h('code', { class: 'addr' }, v.holder)),
      h('dt', {}, t('field.contract')), h('dd', {}, h('code', { class: 'addr' }, v.contract)),
      h('dt', {}, t('field.pinnedBy')), h('dd', {}, v.pinnedBy),
      h('dt', {}, t('credit.total')), h('dd', { id: 'credit-total' }, kg(Number(v.totalReductionGrams)))),
    table([t('credit.month'), t('credit.reduction'), t('credit.earned'), t('credit.spent'), t('credit.entries')],
      v.months.map((m) => h('tr', { dataset: { month: m.month, grams: String(m.reductionGrams) } },
        h('td', { 'data-label': t('credit.month') }, m.month),
        h('td', { 'data-label': t('credit.reduction'), class: 'num' }, kg(Number(m.reductionGrams)),
          m.areas ? h('ul', { class: 'areas' }, m.areas.map((a) => h('li', {}, `${a.area}: ${kg(Number(a.grams))}`))) : null),
        h('td', { 'data-label': t('credit.earned'), class: 'num' }, num(m.pointsEarned)),
        h('td', { 'data-label': t('credit.spent'), class: 'num' }, num(m.pointsSpent)),
        h('td', { 'data-label': t('credit.entries'), class: 'num' }, num(m.entryCount)))),
      { caption: t('credit.months') }));
}
