// Bar charts as plain SVG (no chart library): one bar per label, stacked by series. Sized
// by a viewBox, so they fit a phone's width. Each chart carries a text summary for screen
// readers; the pages show the same figures in a table beside it.

import { h } from './dom.js';

const COLOURS = ['#2e7d32', '#1565c0', '#ef6c00', '#6a1b9a', '#00838f', '#c62828', '#558b2f',
  '#4e342e', '#ad1457', '#283593', '#9e9d24', '#37474f', '#00695c', '#5d4037', '#7b1fa2'];

/**
 * labels: the x labels (already localised); series: [{name, values}] (names localised);
 * format: value → text. Returns a <figure>.
 */
export function barChart({ title, labels, series, format = String }) {
  const width = 360;
  const rowHeight = 26;
  const labelWidth = 120;
  const totals = labels.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] ?? 0), 0));
  const max = Math.max(1, ...totals);
  const height = Math.max(1, labels.length) * rowHeight + 8;
  const svg = h('svg:svg', { viewBox: `0 0 ${width} ${height}`, width: '100%', role: 'img',
    'aria-label': `${title}: ${labels.map((l, i) => `${l} ${format(totals[i])}`).join('; ')}` });
  labels.forEach((label, i) => {
    const y = 4 + i * rowHeight;
    svg.append(h('svg:text', { x: labelWidth - 6, y: y + 16, 'text-anchor': 'end', class: 'chart-label' },
      label.length > 16 ? `${label.slice(0, 15)}…` : label));
    let x = labelWidth;
    series.forEach((s, k) => {
      const w = ((s.values[i] ?? 0) / max) * (width - labelWidth - 70);
      if (w > 0) {
        svg.append(h('svg:rect', { x, y: y + 3, width: w, height: rowHeight - 8, fill: COLOURS[k % COLOURS.length] },
          h('svg:title', {}, `${s.name}: ${format(s.values[i])}`)));
      }
      x += w;
    });
    svg.append(h('svg:text', { x: x + 4, y: y + 16, class: 'chart-value' }, format(totals[i])));
  });
  const legend = series.length > 1
    ? h('ul', { class: 'legend' }, series.map((s, k) => h('li', {},
      h('span', { class: `swatch swatch-${k % COLOURS.length}`, 'aria-hidden': 'true' }), s.name)))
    : null;
  return h('figure', { class: 'chart' }, h('figcaption', {}, title), svg, legend);
}
