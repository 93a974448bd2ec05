// Campaigns (public; a citizen may sign in): each published campaign version with its rules
// as pinned on chain, its public leaderboard (nicknames only, of those who opted in), and for
// a signed-in citizen their bonuses against the caps, their nickname and, once the ranking
// is closed, their rank with its Merkle proof folded here and compared with the ranking
// root read from the pinned contract (docs/campaigns.md).

import { api, ApiError } from '../ui/api.js';
import { clear, h, hexCell } from '../ui/dom.js';
import { behaviour, kg, lang, num, period, t } from '../ui/i18n.js';
import { currentPin, rpcUrl } from '../ui/pins.js';
import { busy, mountPage, notice, section, table } from '../ui/shell.js';
import { signedIn, signInForm, signOutButton } from '../ui/signin.js';
import { chainReader, rootFromProof } from '../verifier/index.js';
import { standardLeaf } from '../verifier/merkle.js';

const ROLE = 'citizen';
const RANK_LEAF = ['bytes32', 'bytes32', 'uint64', 'uint32', 'uint64'].map((type) => ({ type }));

async function render(main) {
  const list = h('div', { id: 'campaigns-body' }, busy());
  main.append(h('h1', {}, t('campaigns.title')), h('p', { class: 'lead' }, t('campaigns.lead')), list);
  let all;
  try {
    all = await api('/campaigns');
  } catch (e) {
    clear(list, notice('error', `${t('api.error')} ${e.message}`));
    return;
  }
  // The version in force is the latest published one of each campaign id.
  const current = [...new Map(all.map((c) => [c.id, c])).values()];
  clear(list, current.length ? current.map((c) => campaignView(c)) : notice('info', t('campaigns.none')));
  main.append(section('mine', t('campaigns.mine'), signedIn(ROLE)
    ? [signOutButton(ROLE, () => mountPage('campaigns', render)), ...current.map((c) => progressView(c))]
    : signInForm(ROLE, '/me', () => mountPage('campaigns', render))));
}

const title = (titles) => titles[lang()] ?? titles.en;

function campaignView(c) {
  const r = c.rules;
  const board = h('div', { class: 'board', id: `board-${c.id}` }, r.ranking ? busy() : null);
  if (r.ranking) loadBoard(c, board);
  return h('article', { class: 'campaign card', dataset: { campaign: c.id }, 'aria-labelledby': `c-${c.id}` },
    h('h2', { id: `c-${c.id}` }, title(c.title)),
    h('p', {}, t('campaigns.when', { id: c.id, v: c.version, from: period(c.starts), to: period(c.ends) })),
    h('dl', { class: 'facts' },
      h('dt', {}, t('campaigns.rulesHash')), h('dd', {}, hexCell(c.rulesHash)),
      h('dt', {}, t('campaigns.pinned')), h('dd', {}, c.publication?.txHash
        ? [hexCell(c.publication.txHash), ` · ${t('field.block')} ${num(c.publication.blockNumber)}`] : '—')),
    h('h3', {}, t('campaigns.sections')),
    h('ul', {}, r.sections.map((s) => h('li', {}, h('strong', {}, title(s.title)), ': ', s.behaviours.map(behaviour).join(', ')))),
    h('h3', {}, t('campaigns.bonuses')),
    h('ul', { class: 'bonus-rules' }, r.bonuses.map((b) => h('li', {}, behaviour(b.behaviour), ': ',
      b.multiplier ? t('campaigns.multiplier', { m: b.multiplier }) : t('campaigns.fixed', { p: num(b.points) }),
      b.cap_points ? ` ${t('campaigns.capRule', { p: num(b.cap_points) })}` : ''))),
    h('p', {}, t('campaigns.cap', { p: num(r.bonus_cap_points) })),
    r.offers?.length ? [h('h3', {}, t('campaigns.offers')), h('ul', {}, r.offers.map((o) => h('li', {},
      title(o.title), ' · ', t('campaigns.offer', { p: num(o.points_cost), from: period(o.valid_from), to: period(o.valid_until) }))))] : null,
    r.ranking ? [h('h3', {}, t('campaigns.ranking')),
      h('p', {}, t('campaigns.rankingRule', { what: r.ranking.behaviours.map(behaviour).join(', '),
        from: period(r.ranking.starts), to: period(r.ranking.ends), min: kg(r.ranking.minimum) })),
      h('ul', {}, r.ranking.prizes.map((p) => h('li', {}, t('campaigns.prize', { first: p.ranks[0], last: p.ranks[1], p: num(p.points) })))),
      board] : null);
}

async function loadBoard(c, box) {
  try {
    const b = await api(`/campaigns/${c.id}/leaderboard?limit=50`);
    clear(box, h('p', { class: 'small', dataset: { final: String(b.final) } },
      b.final ? t('campaigns.final', { root: b.root }) : t('campaigns.provisional')),
    b.entries.length ? table([t('campaigns.rank'), t('campaigns.nickname'), t('campaigns.metric'), t('campaigns.prizeCol')],
      b.entries.map((e) => h('tr', { dataset: { rank: e.rank } },
        h('td', { 'data-label': t('campaigns.rank'), class: 'num' }, num(e.rank)),
        h('td', { 'data-label': t('campaigns.nickname') }, e.nickname),
        h('td', { 'data-label': t('campaigns.metric'), class: 'num' }, kg(e.metric)),
        h('td', { 'data-label': t('campaigns.prizeCol'), class: 'num' }, num(e.prize)))),
    { caption: t('campaigns.board', { name: title(c.title) }) }) : notice('info', t('campaigns.nobody')));
  } catch (e) {
    clear(box, notice('error', `${t('api.error')} ${e.message}`));
  }
}

function progressView(c) {
  const box = h('div', { class: 'progress card', id: `mine-${c.id}`, dataset: { campaign: c.id } }, busy());
  (async () => {
    try {
      const p = await api(`/me/campaigns/${c.id}`, { role: ROLE });
      clear(box, h('h3', {}, title(c.title)),
        h('dl', { class: 'facts' },
          h('dt', {}, t('campaigns.bonusPoints')), h('dd', { class: 'bonus-points' }, t('campaigns.ofCap', { p: num(p.bonusPoints), cap: num(p.bonusCapPoints) })),
          h('dt', {}, t('campaigns.nickname')), h('dd', {}, p.nickname ?? t('campaigns.notJoined'))),
        h('progress', { max: p.bonusCapPoints, value: p.bonusPoints, 'aria-label': t('campaigns.bonusPoints') }),
        Object.keys(p.byBehaviour).length ? h('ul', {}, Object.entries(p.byBehaviour).map(([code, pts]) =>
          h('li', {}, `${behaviour(code)}: ${num(pts)}`))) : h('p', { class: 'small' }, t('campaigns.noBonus')),
        p.rank ? await rankView(c, p.rank) : h('p', { class: 'small rank-none' }, t('campaigns.noRank')));
    } catch (e) {
      clear(box, notice('error', e instanceof ApiError ? `${t('api.error')} ${e.message}` : e.message));
    }
  })();
  return box;
}

// The rank's leaf, folded with its proof to the root the API names; that root compared
// with the one the pinned contract holds for this campaign version.
async function rankView(c, rank) {
  const l = rank.leaf;
  const leaf = standardLeaf(RANK_LEAF, [l.campaign, l.account, BigInt(l.metric), l.rank, BigInt(l.prize)]);
  const folded = rootFromProof(leaf, rank.proof);
  let verdict;
  if (folded !== rank.root.toLowerCase()) verdict = ['error', t('campaigns.rankBad')];
  else {
    const pin = currentPin();
    const onChain = pin ? await chainReader(rpcUrl(), pin.contract).rankingRoot(c.key).catch(() => undefined) : undefined;
    if (onChain === undefined) verdict = ['info', t('campaigns.rankFolds')];
    else if (onChain !== null && onChain.toLowerCase() === folded) verdict = ['ok', t('campaigns.rankOnChain', { contract: pin.contract })];
    else verdict = ['error', t('campaigns.rankNotOnChain')];
  }
  return h('div', { class: `rank notice notice-${verdict[0]}`, dataset: { rank: l.rank, verdict: verdict[0] } },
    h('p', {}, h('strong', {}, t('campaigns.yourRank', { rank: num(l.rank), metric: kg(Number(l.metric)), prize: num(Number(l.prize)) }))),
    h('p', {}, verdict[1]), h('p', { class: 'small' }, t('field.root'), ' ', hexCell(folded)));
}

mountPage('campaigns', render);
