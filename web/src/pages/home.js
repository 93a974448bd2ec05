// The front door: what this ledger is, where each user goes, and the ledger this server
// says it anchors to (to compare with the city's own publication before pinning it).

import { api } from '../ui/api.js';
import { clear, h } from '../ui/dom.js';
import { t } from '../ui/i18n.js';
import { currentPin } from '../ui/pins.js';
import { busy, mountPage, notice, section } from '../ui/shell.js';

const PAGES = ['verify', 'citizen', 'auditor', 'partner', 'public', 'campaigns'];

async function render(main) {
  const ledger = h('div', { id: 'ledger-body' }, busy());
  const pin = currentPin();
  main.append(h('h1', {}, t('home.title')), h('p', { class: 'lead' }, t('home.lead')),
    h('ul', { class: 'doors' }, PAGES.map((p) => h('li', {}, h('a', { href: `/${p}` }, h('strong', {}, t(`nav.${p}`)), h('span', {}, t(`home.${p}`)))))),
    section('ledger', t('home.ledger'), ledger));
  try {
    const d = await api('/ledger');
    const same = pin && pin.chainId === d.chainId && pin.contract.toLowerCase() === d.contract.toLowerCase();
    clear(ledger, h('dl', { class: 'facts' },
      h('dt', {}, t('field.chain')), h('dd', {}, String(d.chainId)),
      h('dt', {}, t('field.contract')), h('dd', {}, h('code', { class: 'addr' }, d.contract)),
      h('dt', {}, t('trust.rpc')), h('dd', {}, h('code', {}, d.endpoints?.rpc?.[0] ?? '—'))),
    pin ? notice(same ? 'ok' : 'error', same ? t('home.samePin') : t('home.otherPin', { contract: pin.contract }))
      : notice('info', t('home.noPin')));
  } catch (e) {
    clear(ledger, notice('error', `${t('api.error')} ${e.message}`));
  }
}

mountPage('home', render);
