// Public transparency (no sign-in): the city's reductions by behaviour and day or month
// (cells under the privacy threshold withheld, as the API withholds them), the methodology
// browser, and the anchored batches read from the chain itself, so anyone can check them.

import { api, query } from '../ui/api.js';
import { barChart } from '../ui/charts.js';
import { daysAgo, today } from '../ui/dates.js';
import { clear, h, hexCell } from '../ui/dom.js';
import { behaviour, kg, num, period, t } from '../ui/i18n.js';
import { currentPin, rpcUrl } from '../ui/pins.js';
import { busy, mountPage, notice, section, table } from '../ui/shell.js';
import { chainReader } from '../verifier/index.js';

const state = { period: 'day', from: daysAgo(60), to: today(), version: null };

async function render(main) {
  const totals = h('div', { id: 'city-body' }, busy());
  const methodology = h('div', { id: 'methodology-body' }, busy());
  const batches = h('div', { id: 'anchors-body' }, busy());
  main.append(h('h1', {}, t('public.title')), h('p', { class: 'lead' }, t('public.lead')),
    section('city', t('public.city'), cityForm(totals), totals),
    section('methodology', t('public.methodology'), methodology),
    section('anchors', t('public.anchors'), batches));
  await Promise.all([drawCity(totals), drawMethodology(methodology), drawAnchors(batches)]);
}

function cityForm(box) {
  const by = h('select', { id: 'city-period' }, ['day', 'month'].map((p) => h('option', { value: p, selected: p === state.period }, t(`period.${p}`))));
  const from = h('input', { type: 'date', id: 'city-from', value: state.from, required: true });
  const to = h('input', { type: 'date', id: 'city-to', value: state.to, required: true });
  return h('form', { class: 'filters', onsubmit: (e) => {
    e.preventDefault();
    Object.assign(state, { period: by.value, from: from.value, to: to.value });
    drawCity(box);
  } },
  h('div', { class: 'field' }, h('label', { for: 'city-period' }, t('period.by')), by),
  h('div', { class: 'field' }, h('label', { for: 'city-from' }, t('filter.from')), from),
  h('div', { class: 'field' }, h('label', { for: 'city-to' }, t('filter.to')), to),
  h('button', { type: 'submit' }, t('filter.apply')));
}

async function drawCity(box) {
  clear(box, busy());
  try {
    const c = await api(`/reports/city${query({ from: state.from, to: state.to, period: state.period })}`);
    const withheld = c.rows.filter((r) => r.withheld).length;
    clear(box,
      h('p', { class: 'big' }, t('public.total', { kg: kg(c.reductionGrams), citizens: num(c.citizens) })),
      h('p', { class: 'small' }, t('public.closed', { date: c.closedThrough ? period(c.closedThrough) : '—' }), ' ',
        t('public.privacy'), withheld ? ` ${t('public.withheld', { n: num(withheld) })}` : ''),
      c.chart.x.length ? barChart({ title: t('public.chart'), labels: c.chart.x.map(period),
        series: c.chart.series.map((s) => ({ name: behaviour(s.name), values: s.values })), format: kg }) : notice('info', t('public.none')),
      c.rows.length ? table([t('col.period'), t('col.behaviour'), t('col.citizens'), t('col.reduction')],
        c.rows.map((r) => h('tr', { dataset: { withheld: String(r.withheld) } },
          h('td', { 'data-label': t('col.period') }, period(r.period)),
          h('td', { 'data-label': t('col.behaviour') }, behaviour(r.behaviour)),
          h('td', { 'data-label': t('col.citizens'), class: 'num' }, r.withheld ? t('public.withheldCell') : num(r.citizens)),
          h('td', { 'data-label': t('col.reduction'), class: 'num' }, r.withheld ? t('public.withheldCell') : kg(r.reductionGrams)))),
        { caption: t('public.city') }) : null);
  } catch (e) {
    clear(box, notice('error', `${t('api.error')} ${e.message}`));
  }
}

async function drawMethodology(box) {
  try {
    const info = await api('/info');
    state.version ??= info.methodologies[info.methodologies.length - 1];
    const m = await api(`/methodologies/${state.version}`);
    const pick = h('select', { id: 'methodology-version', onchange: (e) => { state.version = Number(e.target.value); drawMethodology(box); } },
      info.methodologies.map((v) => h('option', { value: v, selected: v === state.version }, t('public.version', { v }))));
    clear(box,
      h('div', { class: 'field' }, h('label', { for: 'methodology-version' }, t('public.versionPick')), pick),
      h('h3', {}, m.title),
      h('p', { class: 'small' }, t('public.effective', { date: m.effective_from }),
        m.supersedes ? ` · ${t('public.supersedes', { v: m.supersedes })}` : '',
        ` · ${t('public.pointsRule', { g: m.points?.grams_per_point ?? 1 })}`),
      h('details', {}, h('summary', {}, t('public.principles')), h('p', { class: 'prose' }, m.principles)),
      table([t('col.behaviour'), t('col.unit'), t('col.factor'), t('col.caps')], m.behaviours.map((b) => h('tr', { dataset: { behaviour: b.code } },
        h('td', { 'data-label': t('col.behaviour') }, h('strong', {}, behaviour(b.code)), h('br'), h('span', { class: 'small' }, b.title)),
        h('td', { 'data-label': t('col.unit') }, b.unit),
        h('td', { 'data-label': t('col.factor') }, factor(b)),
        h('td', { 'data-label': t('col.caps') }, caps(b)))), { caption: m.title, className: 'methodology' }));
  } catch (e) {
    clear(box, notice('error', `${t('api.error')} ${e.message}`));
  }
}

function factor(b) {
  const base = b.baseline?.g_co2e_per_factor_unit ?? (b.baseline?.kwh_per_factor_unit ? `${b.baseline.kwh_per_factor_unit} kWh` : '—');
  const project = b.project?.g_co2e_per_factor_unit ?? b.project?.kwh_per_factor_unit;
  return h('div', {}, `${base}${project !== undefined ? ` − ${project}` : ''} g / ${b.factor_unit}`,
    h('details', {}, h('summary', {}, t('public.sources')),
      h('p', { class: 'prose' }, b.baseline?.source ?? ''), b.project?.source ? h('p', { class: 'prose' }, b.project.source) : null,
      b.notes ?? b.note ? h('p', { class: 'prose small' }, b.notes ?? b.note) : null));
}

function caps(b) {
  const parts = [];
  if (b.daily_cap_grams !== undefined) parts.push(t('public.capDay', { kg: kg(b.daily_cap_grams) }));
  if (b.monthly_cap_grams !== undefined) parts.push(t('public.capMonth', { kg: kg(b.monthly_cap_grams) }));
  return parts.length ? parts.join(' · ') : '—';
}

// Read from the chain, not the API: the pinned contract, or else the one the operator's
// descriptor names (said so on the page).
async function drawAnchors(box) {
  try {
    const pin = currentPin();
    const descriptor = pin ? null : await api('/ledger');
    const contract = pin?.contract ?? descriptor.contract;
    const url = pin ? rpcUrl() : rpcUrl(null) || descriptor.endpoints?.rpc?.[0];
    const from = pin?.deployment?.blockNumber ?? descriptor.deployment.blockNumber;
    const logs = await chainReader(url, contract).anchorLogs(from);
    clear(box,
      h('p', { class: pin ? 'small' : 'warn' }, pin ? t('public.anchorsPinned', { contract, url }) : t('public.anchorsUnpinned', { contract, url })),
      logs.length ? table([t('col.batch'), t('col.entries'), t('col.root'), t('col.tx'), t('field.block')],
        logs.reverse().map((l) => h('tr', { dataset: { batch: String(l.batchId) } },
          h('td', { 'data-label': t('col.batch') }, `#${l.batchId}`),
          h('td', { 'data-label': t('col.entries'), class: 'num' }, num(l.leafCount)),
          h('td', { 'data-label': t('col.root') }, hexCell(l.root)),
          h('td', { 'data-label': t('col.tx') }, hexCell(l.txHash)),
          h('td', { 'data-label': t('field.block'), class: 'num' }, num(l.blockNumber)))), { caption: t('public.anchors') }) : notice('info', t('public.noAnchors')));
  } catch (e) {
    clear(box, notice('error', `${t('chain.unreadable')} ${e.message}`));
  }
}

mountPage('public', render);
