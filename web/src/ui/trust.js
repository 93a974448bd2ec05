// The trust root on screen: which ledger is pinned (loudly), how to pin one from a
// descriptor (a file, a URL, or this server's copy, each checked against the chain first),
// and the JSON-RPC endpoint to read the chain through (the user's choice).

import { checkDescriptorOnChain, chainReader, ChainUnreadable, parseDescriptor, Refusal } from '../verifier/index.js';
import { clear, h } from './dom.js';
import { dateTime, t } from './i18n.js';
import { currentPin, PinConflict, pinDescriptor, rpcUrl, setRpcUrl, unpin } from './pins.js';
import { notice } from './shell.js';

/** The panel; `onChange()` is called after a pin is made or removed. */
export function trustPanel(onChange = () => {}) {
  const box = h('section', { id: 'trust', class: 'trust', 'aria-labelledby': 'trust-h' });
  const status = h('div', { 'aria-live': 'polite' });
  const draw = (message) => {
    const pin = currentPin();
    clear(box, h('h2', { id: 'trust-h' }, t('trust.title')), pin ? pinned(pin) : unpinned(), rpcField(pin), status);
    if (message) clear(status, message);
  };
  const pinned = (pin) => h('div', { class: 'pin pin-set', dataset: { chain: pin.chainId, contract: pin.contract } },
    h('p', { class: 'pin-line' }, h('strong', {}, t('trust.pinned')), ' ',
      t('trust.pinnedWhat', { chain: pin.chainId }), ' ', h('code', { class: 'addr' }, pin.contract)),
    h('p', { class: 'small' }, t('trust.pinnedHow', { when: dateTime(pin.pinnedAt / 1000), source: pin.source })),
    h('p', { class: 'small' }, t('trust.compare')),
    h('button', { type: 'button', class: 'secondary', onclick: () => {
      unpin(pin.chainId);
      draw(notice('info', t('trust.unpinned')));
      onChange();
    } }, t('trust.unpin')));
  const unpinned = () => {
    const file = h('input', { type: 'file', id: 'descriptor-file', accept: 'application/json,.json' });
    const url = h('input', { type: 'url', id: 'descriptor-url', placeholder: 'https://city.example/ledger.json', autocomplete: 'off' });
    file.addEventListener('change', async () => {
      if (file.files[0]) await pinFrom(new Uint8Array(await file.files[0].arrayBuffer()), t('trust.fromFile', { name: file.files[0].name }));
    });
    return h('div', { class: 'pin pin-none' },
      h('p', { class: 'warn', role: 'note' }, h('strong', {}, t('trust.none')), ' ', t('trust.noneWhy')),
      h('div', { class: 'field' }, h('label', { for: 'descriptor-file' }, t('trust.file')), file),
      h('div', { class: 'field row' }, h('label', { for: 'descriptor-url' }, t('trust.url')), url,
        h('button', { type: 'button', onclick: () => fetchAndPin(url.value.trim()) }, t('trust.load'))),
      location.protocol === 'file:' ? null : h('p', {},
        h('button', { type: 'button', id: 'pin-server', onclick: () => fetchAndPin('/v1/ledger', t('trust.fromServer')) }, t('trust.server')),
        ' ', h('span', { class: 'small' }, t('trust.serverWarn'))));
  };
  const fetchAndPin = async (where, source) => {
    if (!where) return;
    clear(status, notice('info', t('trust.checking')));
    try {
      const answer = await fetch(where, { credentials: 'omit', cache: 'no-store' });
      if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
      await pinFrom(new Uint8Array(await answer.arrayBuffer()), source ?? t('trust.fromUrl', { url: where }));
    } catch (e) {
      clear(status, notice('error', t('trust.fetchFailed', { where }), ' ', e.message));
    }
  };
  const pinFrom = async (bytes, source) => {
    clear(status, notice('info', t('trust.checking')));
    try {
      const descriptor = parseDescriptor(bytes);
      const url = rpcUrl(null) || descriptor.endpoints.rpc[0];
      if (!url) throw new Refusal('descriptor', 'rpc', t('trust.noRpc'));
      await checkDescriptorOnChain(descriptor, chainReader(url, descriptor.contract));
      const { pin, isNew } = pinDescriptor(descriptor, source);
      if (!rpcUrl(null)) setRpcUrl(url);
      draw(notice('warn', h('strong', {}, isNew ? t('trust.tofu') : t('trust.already')), ' ',
        t('trust.tofuWhat', { chain: pin.chainId, contract: pin.contract })));
      onChange();
    } catch (e) {
      let text = e.message;
      if (e instanceof PinConflict) text = t('trust.conflict', { contract: e.message });
      else if (e instanceof Refusal) text = `${t('trust.refused')} (${e.field}): ${e.message}`;
      else if (e instanceof ChainUnreadable) text = `${t('chain.unreadable')} ${e.message}`;
      clear(status, notice('error', text));
    }
  };
  const rpcField = (pin) => {
    const input = h('input', { type: 'url', id: 'rpc-url', value: rpcUrl(pin), autocomplete: 'off',
      placeholder: 'http://127.0.0.1:8545', onchange: (e) => setRpcUrl(e.target.value.trim()) });
    return h('div', { class: 'field' }, h('label', { for: 'rpc-url' }, t('trust.rpc')), input,
      h('p', { class: 'small' }, t('trust.rpcHelp')));
  };
  draw();
  return box;
}
