// Overview: readiness (GET /readyz), today's totals (the usage report) and channel states.

import { $, ROOT, api, badge, costText, dayTotals, empty, fill, fmt, h, state, t } from './core.js';
import { channelTable, stateKind } from './channels.js';

// A figure, or a word (`words`: set in a smaller size so "Built-in mock only" fits).
export function card(label, value, kind, detail, words = false) {
  return h('div', { class: `card ${kind || ''}` }, h('div', { class: 'card-label' }, label),
    h('div', { class: `card-value${words ? ' text' : ''}` }, value),
    detail ? h('div', { class: 'card-detail muted' }, detail) : null);
}

export function checkCard(label, value) {
  if (value === undefined) return card(label, t('common.not_used'), 'off', null, true);
  return card(label, value ? t('common.ok') : t('common.failing'), value ? 'good' : 'bad', null, true);
}

export async function loadOverview() {
  const [ready, today] = await Promise.all([
    api('GET', 'readyz', undefined, { base: ROOT, accept: [503] }),
    api('GET', 'usage?since=today&until=today&by=day'),
  ]);
  state.rendered.overview = () => renderOverview(ready, today.data);
  renderOverview(ready, today.data);
}

export function renderOverview(ready, todayRows) {
  const upstreams = Object.entries(ready.upstreams || {});
  const missing = upstreams.filter(([, s]) => s !== 'configured').map(([n]) => n);
  fill($('#overview-status'),
    card(t('overview.status'), ready.status === 'ready' ? t('overview.ready') : t('overview.not_ready'),
      ready.status === 'ready' ? 'good' : 'bad', null, true),
    card(t('overview.upstreams'), upstreams.length ? `${fmt.int(upstreams.length - missing.length)} / ${fmt.int(upstreams.length)}` : t('overview.mock_only'),
      ready.upstreams_configured ? 'good' : 'bad',
      missing.length ? t('overview.missing', { names: missing.join(', ') }) : null, !upstreams.length),
    card(t('overview.models'), fmt.int(ready.models)),
    checkCard(t('overview.store'), ready.store),
    checkCard(t('overview.redis'), ready.redis),
    ready.log_queue_depth === undefined ? card(t('overview.log_queue'), t('common.not_used'), 'off', null, true)
      : card(t('overview.log_queue'), fmt.int(ready.log_queue_depth)));
  const totals = dayTotals(todayRows);
  fill($('#overview-today'),
    card(t('overview.requests'), fmt.int(totals.requests)),
    card(t('overview.errors'), fmt.int(totals.errors), totals.errors ? 'warn' : ''),
    card(t('overview.tokens'), fmt.int(totals.prompt + totals.completion), '',
      t('overview.tokens_split', { prompt: fmt.int(totals.prompt), completion: fmt.int(totals.completion) })),
    card(t('overview.cost'), costText(totals.cost)),
    // The response cache: the share of today's requests it answered, and what that saved.
    card(t('overview.cache_hits'), totals.requests ? `${fmt.int(Math.round((100 * totals.hits) / totals.requests))} %` : '-', '',
      t('overview.cache_detail', { hits: fmt.int(totals.hits), tokens: fmt.int(totals.tokensSaved), cost: costText(totals.saved) })));
  const channels = ready.channels || [];
  const counts = { closed: 0, half_open: 0, open: 0 };
  for (const c of channels) counts[c.state] = (counts[c.state] || 0) + 1;
  fill($('#overview-channels'),
    h('div', { class: 'chips' }, Object.entries(counts).map(([s, n]) => badge(stateKind(s), `${t(`state.${s}`)}: ${fmt.int(n)}`))),
    channels.length ? channelTable(channels) : empty(t('channels.none')));
}
