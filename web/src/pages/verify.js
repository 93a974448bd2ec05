// Verify (public, no sign-in): drop, paste or link a proof bundle; the browser verifier
// checks it against the pinned ledger and the chain alone. Also built as one standalone
// HTML file that works from disk with only an RPC endpoint.

import { runVerification } from '../ui/checks.js';
import { clear, h } from '../ui/dom.js';
import { t } from '../ui/i18n.js';
import { mountPage, notice, section } from '../ui/shell.js';
import { trustPanel } from '../ui/trust.js';

const state = { input: null, name: '' };

function render(main) {
  const result = h('div', { id: 'result', class: 'result' });
  const text = h('textarea', { id: 'bundle-text', rows: 6, spellcheck: false, autocomplete: 'off',
    placeholder: '{"format":"carbon-ledger-proof-v1", …}' });
  const file = h('input', { type: 'file', id: 'bundle-file', accept: 'application/json,.json' });
  const url = h('input', { type: 'url', id: 'bundle-url', autocomplete: 'off', placeholder: 'https://…/bundle.json' });
  const chosen = h('p', { class: 'small', 'aria-live': 'polite' });
  const choose = (bytes, name) => {
    state.input = bytes;
    state.name = name;
    chosen.textContent = t('verify.chosen', { name });
  };
  const verify = async () => {
    if (text.value.trim() && !state.input) choose(text.value, t('verify.pasted'));
    if (state.input === null) {
      clear(result, notice('error', t('verify.nothing')));
      return;
    }
    await runVerification(state.input, result);
  };
  file.addEventListener('change', async () => {
    const f = file.files[0];
    if (f) choose(new Uint8Array(await f.arrayBuffer()), f.name);
  });
  text.addEventListener('input', () => {
    state.input = null;
    chosen.textContent = '';
  });
  const drop = h('div', { class: 'drop', id: 'drop' }, t('verify.drop'));
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', async (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer.files[0];
    if (f) choose(new Uint8Array(await f.arrayBuffer()), f.name);
  });
  const fetchBundle = async () => {
    try {
      const answer = await fetch(url.value.trim(), { credentials: 'omit', cache: 'no-store' });
      if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
      choose(new Uint8Array(await answer.arrayBuffer()), url.value.trim());
    } catch (e) {
      clear(result, notice('error', t('verify.fetchFailed'), ' ', e.message));
    }
  };
  const offline = location.protocol === 'file:';
  main.append(
    h('h1', {}, t('verify.title')),
    h('p', { class: 'lead' }, t('verify.lead')),
    trustPanel(),
    section('bundle', t('verify.bundle'),
      drop,
      h('div', { class: 'field' }, h('label', { for: 'bundle-file' }, t('verify.file')), file),
      h('div', { class: 'field' }, h('label', { for: 'bundle-text' }, t('verify.paste')), text),
      h('div', { class: 'field row' }, h('label', { for: 'bundle-url' }, t('verify.url')), url,
        h('button', { type: 'button', onclick: fetchBundle }, t('verify.fetch'))),
      chosen,
      h('button', { type: 'button', id: 'verify', class: 'primary', onclick: verify }, t('verify.run')),
      result),
    offline ? null : h('p', { class: 'small' }, h('a', { href: '/verify-standalone.html', download: 'carbon-ledger-verify.html' },
      t('verify.standalone')), ' ', t('verify.standaloneWhy')));
}

mountPage('verify', render);
