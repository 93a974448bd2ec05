// Partner (key sign-in): the reductions credited from its records by behaviour and day or
// month, its submissions (with the operator's signed receipt checked in the browser and,
// from the answer it kept, every record's outcome), and how to sign a submission: the live
// EIP-712 domain and a worked example a developer can copy (docs/signing.md).

import { recoverTypedDataAddress } from 'viem';
import { api, query } from '../ui/api.js';
import { barChart } from '../ui/charts.js';
import { daysAgo, today } from '../ui/dates.js';
import { clear, h, hexCell } from '../ui/dom.js';
import { behaviour, dateTime, kg, num, period, t } from '../ui/i18n.js';
import { currentPin } from '../ui/pins.js';
import { busy, mountPage, notice, section, table } from '../ui/shell.js';
import { signedIn, signInForm, signOutButton } from '../ui/signin.js';

/* global __SIGNING_EXAMPLE__ */
const ROLE = 'partner';
const as = (path, options) => api(path, { role: ROLE, ...options });
const state = { period: 'day', from: daysAgo(30), to: today() };

async function render(main) {
  main.append(h('h1', {}, t('partner.title')));
  if (!signedIn(ROLE)) {
    main.append(signInForm(ROLE, '/submissions?limit=1', () => mountPage('partner', render)), signingGuide());
    return;
  }
  const contribution = h('div', { id: 'contribution-body' }, busy());
  const submissions = h('div', { id: 'submissions-body' }, busy());
  main.append(signOutButton(ROLE, () => mountPage('partner', render)),
    section('contribution', t('partner.contribution'), contributionForm(contribution), contribution),
    section('submissions', t('partner.submissions'), submissions, answerLoader()),
    signingGuide());
  await Promise.all([drawContribution(contribution), drawSubmissions(submissions)]);
}

function contributionForm(box) {
  const by = h('select', { id: 'contribution-period' }, ['day', 'month'].map((p) =>
    h('option', { value: p, selected: p === state.period }, t(`period.${p}`))));
  const from = h('input', { type: 'date', id: 'contribution-from', value: state.from, required: true });
  const to = h('input', { type: 'date', id: 'contribution-to', value: state.to, required: true });
  return h('form', { class: 'filters', onsubmit: (e) => {
    e.preventDefault();
    Object.assign(state, { period: by.value, from: from.value, to: to.value });
    drawContribution(box);
  } },
  h('div', { class: 'field' }, h('label', { for: 'contribution-period' }, t('period.by')), by),
  h('div', { class: 'field' }, h('label', { for: 'contribution-from' }, t('filter.from')), from),
  h('div', { class: 'field' }, h('label', { for: 'contribution-to' }, t('filter.to')), to),
  h('button', { type: 'submit' }, t('filter.apply')));
}

async function drawContribution(box) {
  clear(box, busy());
  try {
    const c = await as(`/contribution${query({ from: state.from, to: state.to, period: state.period })}`);
    clear(box,
      h('p', { class: 'big' }, t('partner.total', { kg: kg(c.reductionGrams) })),
      c.chart.x.length ? barChart({ title: t('partner.chart'), labels: c.chart.x.map(period),
        series: c.chart.series.map((s) => ({ name: behaviour(s.name), values: s.values })), format: kg }) : notice('info', t('partner.none')),
      c.rows.length ? table([t('col.period'), t('col.behaviour'), t('col.records'), t('col.reduction')],
        c.rows.map((r) => h('tr', {}, h('td', { 'data-label': t('col.period') }, period(r.period)),
          h('td', { 'data-label': t('col.behaviour') }, behaviour(r.behaviour)),
          h('td', { 'data-label': t('col.records'), class: 'num' }, num(r.records)),
          h('td', { 'data-label': t('col.reduction'), class: 'num' }, kg(r.reductionGrams)))), { caption: t('partner.contribution') }) : null);
  } catch (e) {
    clear(box, notice('error', `${t('api.error')} ${e.message}`));
  }
}

async function drawSubmissions(box) {
  try {
    const list = await as('/submissions?limit=100');
    const detail = h('div', { id: 'submission-detail' });
    clear(box, list.length ? table([t('col.received'), t('col.records'), t('col.outcomes'), t('col.reduction'), ''],
      list.map((s) => h('tr', { dataset: { submission: s.submissionId } },
        h('td', { 'data-label': t('col.received') }, dateTime(s.receivedAt)),
        h('td', { 'data-label': t('col.records'), class: 'num' }, num(s.records)),
        h('td', { 'data-label': t('col.outcomes') }, t('partner.outcomes', { a: num(s.accepted), d: num(s.duplicate), r: num(s.rejected) })),
        h('td', { 'data-label': t('col.reduction'), class: 'num' }, kg(s.reductionGrams)),
        h('td', {}, h('button', { type: 'button', class: 'small-button open-submission', onclick: () => openSubmission(s.submissionId, detail) }, t('auditor.open'))))),
    { caption: t('partner.submissions') }) : notice('info', t('partner.noSubmissions')), detail);
  } catch (e) {
    clear(box, notice('error', `${t('api.error')} ${e.message}`));
  }
}

async function openSubmission(id, box) {
  clear(box, busy());
  try {
    const s = await as(`/submissions/${id}`);
    clear(box, h('h3', {}, t('partner.submission')), h('p', {}, hexCell(s.submissionId)), await receiptView(s.receipt));
  } catch (e) {
    clear(box, notice('error', `${t('api.error')} ${e.message}`));
  }
}

// The receipt's signer recovered in the browser (viem) and compared with the operator's
// receipt key in the pinned descriptor, else the one this server publishes.
async function receiptView(receipt) {
  let signer = null;
  try {
    signer = await recoverTypedDataAddress({ domain: receipt.domain, types: receipt.types,
      primaryType: receipt.primaryType, message: receipt.message, signature: receipt.signature });
  } catch {
    signer = null;
  }
  let keys = currentPin()?.receiptSigners;
  let source = t('partner.keysPinned');
  if (!keys) {
    keys = (await api('/ledger')).operatorKeys.map((k) => k.address);
    source = t('partner.keysServer');
  }
  const ok = signer !== null && keys.some((k) => k.toLowerCase() === signer.toLowerCase());
  return h('div', { id: 'receipt', dataset: { ok: String(ok) }, class: `notice ${ok ? 'notice-ok' : 'notice-error'}` },
    h('p', {}, h('strong', {}, ok ? t('partner.receiptOk') : t('partner.receiptBad')), ' ', source),
    h('dl', { class: 'facts' }, Object.entries(receipt.message).map(([k, v]) => [h('dt', {}, k), h('dd', {}, h('code', {}, String(v)))]),
      h('dt', {}, t('partner.signer')), h('dd', {}, h('code', { class: 'addr' }, signer ?? '—'))));
}

// The answer to POST /v1/submissions lists every record's outcome; the ledger keeps only
// the counts, so a partner loads the answer it saved to see them again.
function answerLoader() {
  const out = h('div', { id: 'answer-body' });
  const file = h('input', { type: 'file', id: 'answer-file', accept: 'application/json,.json' });
  file.addEventListener('change', async () => {
    try {
      const answer = JSON.parse(await file.files[0].text());
      clear(out, table([t('col.record'), t('col.outcome'), t('col.reduction'), t('col.reason')],
        (answer.records ?? []).map((r) => h('tr', { dataset: { status: r.status } },
          h('td', { 'data-label': t('col.record') }, r.record_id ?? r.recordId ?? '—'),
          h('td', { 'data-label': t('col.outcome') }, t(`outcome.${r.status}`)),
          h('td', { 'data-label': t('col.reduction'), class: 'num' }, kg(r.reduction_grams ?? r.reductionGrams ?? 0)),
          h('td', { 'data-label': t('col.reason') }, [r.field, r.reason].filter(Boolean).join(': ')))), { caption: t('partner.records') }),
      answer.receipt ? await receiptView(answer.receipt) : null);
    } catch (e) {
      clear(out, notice('error', t('partner.answerBad'), ' ', e.message));
    }
  });
  return h('div', { class: 'answer' }, h('h3', {}, t('partner.records')), h('p', { class: 'small' }, t('partner.recordsHelp')),
    h('div', { class: 'field' }, h('label', { for: 'answer-file' }, t('partner.answerFile')), file), out);
}

function signingGuide() {
  const domain = h('pre', { id: 'eip712-domain', class: 'code', tabindex: '0' }, t('loading'));
  api('/info').then((info) => { domain.textContent = JSON.stringify(info.eip712, null, 2); })
    .catch((e) => { domain.textContent = e.message; });
  return section('signing', t('partner.signing'),
    h('p', {}, t('partner.signingLead')),
    h('h3', {}, t('partner.domain')), domain,
    h('h3', {}, t('partner.example')), h('p', { class: 'small' }, t('partner.exampleHelp')),
    h('pre', { id: 'signing-example', class: 'code', tabindex: '0' }, __SIGNING_EXAMPLE__),
    h('p', { class: 'small' }, t('partner.workedExample')));
}

mountPage('partner', render);
