// The frame every page shares: a skip link, the header with the pages and the language
// switch, the main region the page renders into, and re-rendering when the language changes.

import { $, clear, h } from './dom.js';
import { LANGUAGES, lang, onLangChange, setLang, t } from './i18n.js';

const PAGES = [['verify', '/verify'], ['citizen', '/citizen'], ['auditor', '/auditor'],
  ['partner', '/partner'], ['public', '/public'], ['campaigns', '/campaigns']];

/** Render page `id` with `render(main)`, again whenever the language changes. */
export function mountPage(id, render) {
  document.documentElement.lang = lang();
  const main = h('main', { id: 'main', tabindex: '-1' });
  const draw = () => {
    document.title = `${t(`nav.${id}`)} · ${t('brand')}`;
    clear(document.body, h('a', { class: 'skip', href: '#main' }, t('skip')), header(id), main);
    clear(main);
    return render(main);
  };
  onLangChange(draw);
  if (document.readyState === 'loading') {
    return new Promise((resolve) => document.addEventListener('DOMContentLoaded', () => resolve(draw()), { once: true }));
  }
  return draw();
}

function header(id) {
  const offline = location.protocol === 'file:';
  const select = h('select', { id: 'lang', onchange: (e) => setLang(e.target.value) },
    LANGUAGES.map(([code, name]) => h('option', { value: code, selected: code === lang() }, name)));
  return h('header', { class: 'top' },
    h('a', { class: 'brand', href: offline ? '#' : '/' }, t('brand')),
    offline ? null : h('nav', { 'aria-label': t('nav.label') },
      h('ul', {}, PAGES.map(([page, href]) => h('li', {},
        h('a', { href, 'aria-current': page === id ? 'page' : null }, t(`nav.${page}`)))))),
    h('div', { class: 'lang' }, h('label', { for: 'lang' }, t('language')), select));
}

/** A message line for errors and notices, announced to screen readers. */
export function notice(kind, ...text) {
  return h('p', { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, ...text);
}

/** A section with a heading; `id` names it for tests and links. */
export function section(id, title, ...children) {
  return h('section', { id, 'aria-labelledby': `${id}-h` }, h('h2', { id: `${id}-h` }, title), ...children);
}

export const busy = (text) => h('p', { class: 'busy', role: 'status' }, text ?? t('loading'));

export function table(headers, rows, { caption, className = '' } = {}) {
  return h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption ?? headers.join(', ') },
    h('table', { class: className },
      caption ? h('caption', {}, caption) : null,
      h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', {}, rows)));
}

export const focusMain = () => $('#main')?.focus();
