// Citizen (token sign-in): balance and totals, charts by behaviour and month, the entry
// history with each entry's status and a "verify on chain" that runs the browser verifier,
// the rewards mall (redeeming with an idempotency key the page makes: a double click
// debits once), redemption history, and a period statement that prints.

import { api, ApiError, query } from '../ui/api.js';
import { barChart } from '../ui/charts.js';
import { runVerification } from '../ui/checks.js';
import { lastMonths, monthStart, startOf, today } from '../ui/dates.js';
import { clear, h, randomKey } from '../ui/dom.js';
import { behaviour, dateTime, kg, num, period, t } from '../ui/i18n.js';
import { busy, mountPage, notice, section, table } from '../ui/shell.js';
import { signedIn, signInForm, signOutButton } from '../ui/signin.js';
import { trustPanel } from '../ui/trust.js';

const ROLE = 'citizen';
const PAGE = 20;
const state = { filters: { behaviour: '', from: '', to: '' }, cursors: [null], page: 0, statuses: {},
  verified: {}, keys: {}, statement: { from: monthStart(), to: today() } };
let main;

const me = (path, options) => api(path, { role: ROLE, ...options });

async function render(root) {
  main = root;
  main.append(h('h1', {}, t('citizen.title')));
  if (!signedIn(ROLE)) {
    main.append(signInForm(ROLE, '/me', () => mountPage('citizen', render)));
    return;
  }
  const summary = h('div', { id: 'summary-body' }, busy());
  const charts = h('div', { id: 'charts-body', class: 'charts' }, busy());
  const entries = h('div', { id: 'entries-body' });
  const rewards = h('div', { id: 'rewards-body' }, busy());
  const redemptions = h('div', { id: 'redemptions-body' }, busy());
  const statement = h('div', { id: 'statement-body' });
  main.append(signOutButton(ROLE, () => mountPage('citizen', render)),
    section('summary', t('citizen.summary'), summary),
    section('charts', t('citizen.charts'), charts),
    section('entries', t('citizen.entries'), filters(entries), entries),
    section('rewards', t('citizen.rewards'), rewards),
    section('redemptions', t('citizen.redemptions'), redemptions),
    section('statement', t('citizen.statement'), statementForm(statement), statement),
    trustPanel());
  await Promise.all([drawSummary(summary, charts), drawEntries(entries), drawRewards(rewards), drawRedemptions(redemptions)]);
}

function guard(box, promise) {
  return promise.catch((e) => {
    const text = e instanceof ApiError && e.status === 401 ? t('signin.expired') : `${t('api.error')} ${e.message}`;
    clear(box, notice('error', text));
  });
}

function drawSummary(box, charts) {
  return guard(box, (async () => {
    const [summary, months] = await Promise.all([me('/me'), Promise.all(lastMonths(6).map((m) =>
      me(`/me/statement${query({ from: m.from, to: m.to })}`).then((s) => ({ ...m, grams: s.reductionGrams }))))]);
    const grams = summary.totals.reduce((sum, x) => sum + x.reductionGrams, 0);
    const earned = summary.totals.reduce((sum, x) => sum + x.points, 0);
    clear(box, h('dl', { class: 'cards' },
      card('balance', t('citizen.balance'), num(summary.points)),
      card('earned', t('citizen.earned'), num(earned)),
      card('spent', t('citizen.spent'), num(summary.pointsSpent)),
      card('reduced', t('citizen.reduced'), kg(grams))));
    clear(charts,
      barChart({ title: t('citizen.byBehaviour'), labels: summary.totals.map((x) => behaviour(x.behaviour)),
        series: [{ name: t('unit.kg'), values: summary.totals.map((x) => x.reductionGrams) }], format: kg }),
      barChart({ title: t('citizen.byMonth'), labels: months.map((m) => period(m.label)),
        series: [{ name: t('unit.kg'), values: months.map((m) => m.grams) }], format: kg }));
  })());
}

const card = (id, label, value) => h('div', { class: 'card', id: `card-${id}` }, h('dt', {}, label), h('dd', {}, value));

function filters(box) {
  const f = state.filters;
  const kinds = ['', 'CYCLING', 'WALKING', 'METRO', 'BUS', 'NEV_DRIVING', 'CARPOOLING', 'NO_DISPOSABLE_TABLEWARE',
    'CLEAN_PLATE', 'PAPERLESS_BILL', 'EXPRESS_BOX_REUSE', 'SECOND_HAND_CLOTHING', 'SECOND_HAND_BOOKS',
    'RAIL_INSTEAD_OF_FLIGHT', 'APPLIANCE_AC_GRADE1', 'APPLIANCE_FRIDGE_GRADE1', 'REDEMPTION'];
  const select = h('select', { id: 'filter-behaviour' }, kinds.map((k) =>
    h('option', { value: k, selected: k === f.behaviour }, k ? behaviour(k) : t('filter.all'))));
  const from = h('input', { type: 'date', id: 'filter-from', value: f.from });
  const to = h('input', { type: 'date', id: 'filter-to', value: f.to });
  const apply = (e) => {
    e.preventDefault();
    Object.assign(state.filters, { behaviour: select.value, from: from.value, to: to.value });
    state.cursors = [null];
    state.page = 0;
    drawEntries(box);
  };
  return h('form', { class: 'filters', onsubmit: apply },
    h('div', { class: 'field' }, h('label', { for: 'filter-behaviour' }, t('filter.behaviour')), select),
    h('div', { class: 'field' }, h('label', { for: 'filter-from' }, t('filter.from')), from),
    h('div', { class: 'field' }, h('label', { for: 'filter-to' }, t('filter.to')), to),
    h('button', { type: 'submit' }, t('filter.apply')));
}

function drawEntries(box) {
  clear(box, busy());
  return guard(box, (async () => {
    const f = state.filters;
    const page = await me(`/me/entries${query({ behaviour: f.behaviour, from: f.from ? startOf(f.from) : '',
      to: f.to ? startOf(f.to) + 86400 : '', limit: PAGE, after: state.cursors[state.page] })}`);
    state.cursors[state.page + 1] = page.next;
    const rows = page.entries.map((e) => entryRow(e));
    const pager = h('nav', { class: 'pager', 'aria-label': t('pager.label') },
      h('button', { type: 'button', disabled: state.page === 0, onclick: () => { state.page -= 1; drawEntries(box); } }, t('pager.prev')),
      h('span', {}, t('pager.page', { n: state.page + 1 })),
      h('button', { type: 'button', id: 'next-page', disabled: !page.next, onclick: () => { state.page += 1; drawEntries(box); } }, t('pager.next')));
    clear(box, page.entries.length ? table([t('col.when'), t('col.behaviour'), t('col.quantity'), t('col.reduction'),
      t('col.points'), t('col.status')], rows, { caption: t('citizen.entries'), className: 'entries' }) : notice('info', t('citizen.noEntries')), pager);
    await Promise.all(page.entries.map((e) => loadStatus(e.entryId)));
  })());
}

function entryRow(e) {
  const status = h('td', { class: 'status', 'data-label': t('col.status') });
  const detail = h('div', { class: 'entry-verify' });
  const row = h('tr', { dataset: { entry: e.entryId } },
    h('td', { 'data-label': t('col.when') }, dateTime(e.occurredAt)),
    h('td', { 'data-label': t('col.behaviour') }, behaviour(e.behaviour)),
    h('td', { 'data-label': t('col.quantity'), class: 'num' }, num(e.quantity)),
    h('td', { 'data-label': t('col.reduction'), class: 'num' }, kg(e.reductionGrams)),
    h('td', { 'data-label': t('col.points'), class: 'num' }, `${e.kind === 'debit' ? '−' : '+'}${num(e.points)}`),
    status);
  status.append(statusBadge(e.entryId), detail);
  state.rows ??= {};
  state.rows[e.entryId] = { status, detail };
  return row;
}

async function loadStatus(entryId) {
  try {
    const text = await me(`/me/entries/${entryId}/proof`, { raw: true });
    const bundle = JSON.parse(text);
    state.statuses[entryId] = bundle.status === 'pending' ? { pending: true } : { text, confirmations: bundle.confirmations };
  } catch (e) {
    state.statuses[entryId] = { error: e.message };
  }
  redrawStatus(entryId);
}

function redrawStatus(entryId) {
  const row = state.rows?.[entryId];
  if (!row) return;
  const detail = row.detail;
  clear(row.status, statusBadge(entryId), detail);
}

function statusBadge(entryId) {
  const s = state.statuses[entryId];
  if (!s) return h('span', { class: 'badge', dataset: { status: 'loading' } }, t('status.loading'));
  if (s.error) return h('span', { class: 'badge badge-error', dataset: { status: 'error' } }, t('status.error'));
  if (s.pending) return h('span', { class: 'badge badge-pending', dataset: { status: 'pending' } }, t('status.pending'));
  const verified = state.verified[entryId];
  const badge = verified
    ? h('span', { class: 'badge badge-verified', dataset: { status: 'verified' } }, t('status.verified', { n: num(verified.confirmations) }))
    : h('span', { class: 'badge badge-anchored', dataset: { status: 'anchored' } }, t('status.anchored', { n: num(s.confirmations ?? 0) }));
  const button = h('button', { type: 'button', class: 'small-button verify-entry', onclick: async () => {
    const { detail } = state.rows[entryId];
    detail.hidden = false;
    const { verdict } = await runVerification(s.text, detail);
    if (verdict) {
      state.verified[entryId] = verdict;
      redrawStatus(entryId);
    }
  } }, t('citizen.verify'));
  return h('span', { class: 'status-line' }, badge, ' ', button);
}

function drawRewards(box) {
  return guard(box, (async () => {
    const [rewards, summary] = await Promise.all([me('/rewards'), me('/me')]);
    const status = h('div', { 'aria-live': 'polite', id: 'redeem-status' });
    clear(box, h('ul', { class: 'rewards' }, rewards.map((r) => {
      state.keys[r.code] ??= randomKey();
      return h('li', { class: 'reward', dataset: { reward: r.code } },
        h('h3', {}, r.title),
        h('p', {}, t('reward.cost', { points: num(r.points) }), ' · ', t('reward.stock', { n: num(r.stock) })),
        h('button', { type: 'button', class: 'primary redeem', disabled: r.stock < 1 || summary.points < r.points,
          onclick: () => redeem(r, status) }, t('reward.redeem')));
    })), status);
  })());
}

// The key is made once per intent and sent with every click until the ledger answers, so
// a double click (or a retry after a timeout) is one redemption: the ledger replays it.
async function redeem(reward, status) {
  const key = state.keys[reward.code];
  try {
    const answer = await me('/redemptions', { method: 'POST', body: { reward: reward.code }, headers: { 'Idempotency-Key': key } });
    if (state.keys[reward.code] === key) state.keys[reward.code] = randomKey();
    clear(status, notice('ok', t('reward.done', { title: reward.title, balance: num(answer.balance) })));
    await Promise.all([drawSummary(document.getElementById('summary-body'), document.getElementById('charts-body')),
      drawRewards(document.getElementById('rewards-body')), drawRedemptions(document.getElementById('redemptions-body'))]);
    document.getElementById('redeem-status')?.replaceWith(status);
  } catch (e) {
    clear(status, notice('error', e instanceof ApiError && e.status === 409 ? t('reward.refused') : t('api.error'), ' ', e.message));
  }
}

function drawRedemptions(box) {
  return guard(box, (async () => {
    const page = await me(`/me/entries${query({ behaviour: 'REDEMPTION', limit: 100 })}`);
    clear(box, page.entries.length
      ? table([t('col.when'), t('col.points')], page.entries.reverse().map((e) => h('tr', { dataset: { entry: e.entryId } },
        h('td', { 'data-label': t('col.when') }, dateTime(e.occurredAt)),
        h('td', { 'data-label': t('col.points'), class: 'num' }, `−${num(e.points)}`))), { caption: t('citizen.redemptions'), className: 'redemptions' })
      : notice('info', t('citizen.noRedemptions')));
  })());
}

function statementForm(box) {
  const from = h('input', { type: 'date', id: 'statement-from', value: state.statement.from, required: true });
  const to = h('input', { type: 'date', id: 'statement-to', value: state.statement.to, required: true });
  const show = async (e) => {
    e.preventDefault();
    state.statement = { from: from.value, to: to.value };
    clear(box, busy());
    await guard(box, me(`/me/statement${query(state.statement)}`).then((s) => clear(box, statementView(s))));
  };
  return h('form', { class: 'filters no-print', onsubmit: show },
    h('div', { class: 'field' }, h('label', { for: 'statement-from' }, t('filter.from')), from),
    h('div', { class: 'field' }, h('label', { for: 'statement-to' }, t('filter.to')), to),
    h('button', { type: 'submit', id: 'statement-show' }, t('statement.show')));
}

function statementView(s) {
  return h('article', { class: 'statement', id: 'statement-doc' },
    h('h3', {}, t('statement.heading', { from: period(s.period.from), to: period(s.period.to) })),
    h('dl', { class: 'facts' },
      h('dt', {}, t('citizen.reduced')), h('dd', {}, kg(s.reductionGrams)),
      h('dt', {}, t('citizen.earned')), h('dd', {}, num(s.pointsEarned)),
      h('dt', {}, t('citizen.spent')), h('dd', {}, num(s.pointsSpent)),
      h('dt', {}, t('citizen.balance')), h('dd', {}, num(s.balance)),
      h('dt', {}, t('statement.anchored')), h('dd', {}, t('statement.anchoredOf', { n: num(s.entriesAnchored), of: num(s.entries) }))),
    s.behaviours.length ? table([t('col.behaviour'), t('col.entries'), t('col.reduction'), t('col.points')],
      s.behaviours.map((b) => h('tr', {}, h('td', { 'data-label': t('col.behaviour') }, behaviour(b.behaviour)),
        h('td', { 'data-label': t('col.entries'), class: 'num' }, num(b.entries)),
        h('td', { 'data-label': t('col.reduction'), class: 'num' }, kg(b.reductionGrams)),
        h('td', { 'data-label': t('col.points'), class: 'num' }, num(b.points)))), { caption: t('citizen.byBehaviour') }) : null,
    h('button', { type: 'button', class: 'no-print', onclick: () => window.print() }, t('statement.print')));
}

mountPage('citizen', render);
