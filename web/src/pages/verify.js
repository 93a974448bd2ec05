// Verify (public, no sign-in): drop, paste or link a proof bundle or a green-credit
// presentation; the browser verifier checks it against the pinned ledger and the chain
// alone (a presentation also against the challenge and bank name the bank enters). Also
// built as one standalone HTML file that works from disk with only an RPC endpoint.

import { runPresentationCheck, runVerification } from '../ui/checks.js';
import { clear, h } from '../ui/dom.js';
import { t } from '../ui/i18n.js';
import { mountPage, notice, section } from '../ui/shell.js';
import { trustPanel } from '../ui/trust.js';
import { looksLikePresentation } from '../verifier/index.js';

const state = { input: null, name: '' };

function render(main) {
  const result = h('div', { id: 'result', class: 'result' });
  const text = h('textarea', { id: 'bundle-text', rows: 6, spellcheck: false, autocomplete: 'off',
    placeholder: '{"format":"carbon-ledger-proof-v1", …}' });
  const file = h('input', { type: 'file', id: 'bundle-file', accept: 'application/json,.json' });
  const url = h('input', { type: 'url', id: 'bundle-url', autocomplete: 'off', placeholder: 'https://…/bundle.json' });
  const chosen = h('p', { class: 'small', id: 'chosen', 'aria-live': 'polite' });
  const challenge = h('input', { type: 'text', id: 'credit-challenge', autocomplete: 'off', spellcheck: false });
  const bank = h('input', { type: 'text', id: 'credit-bank', autocomplete: 'organization' });
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
    if (!isPresentation(state.input)) {
      await runVerification(state.input, result);
      return;
    }
    if (!challenge.value || !bank.value) {
      clear(result, notice('error', t('credit.needChallenge')));
      return;
    }
    await runPresentationCheck(state.input, result, { challenge: challenge.value, audience: bank.value });
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
      h('fieldset', { class: 'credit' }, h('legend', {}, t('credit.legend')),
        h('p', { class: 'small' }, t('credit.help')),
        h('div', { class: 'field' }, h('label', { for: 'credit-challenge' }, t('credit.challenge')), challenge),
        h('div', { class: 'field' }, h('label', { for: 'credit-bank' }, t('credit.bank')), bank)),
      chosen,
      h('button', { type: 'button', id: 'verify', class: 'primary', onclick: verify }, t('verify.run')),
      result),
    offline ? null : h('p', { class: 'small' }, h('a', { href: '/verify-standalone.html', download: 'carbon-ledger-verify.html' },
      t('verify.standalone')), ' ', t('verify.standaloneWhy')));
}

// Which verifier: a document claiming to be a VerifiablePresentation goes to the
// presentation's checks; anything else (unparsable text included) to the bundle's, whose
// parse check names what is wrong with it.
function isPresentation(input) {
  try {
    return looksLikePresentation(JSON.parse(typeof input === 'string' ? input : new TextDecoder().decode(input)));
  } catch {
    return false;
  }
}

mountPage('verify', render);
