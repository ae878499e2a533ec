// Channels: the router's view of every channel (breaker, failures, cool-down, latency) and upstream key.

import { $, api, badge, empty, fill, fmt, h, state, t, table } from './core.js';

export function stateKind(s) {
  return { closed: 'good', half_open: 'warn', open: 'bad' }[s] || 'off';
}

// The router names its catch-all route (requests with no model: files, batches) "\0default".
function servedModels(c) {
  return (c.public_models || []).map((m) => (m === '\u0000default' ? t('channels.default_route') : m)).join(', ');
}

export function channelTable(channels) {
  return table([
    { label: t('channels.col_name'), cell: (c) => h('div', null, h('strong', { class: 'mono' }, c.name),
      h('div', { class: 'muted small' }, t('channels.serves', { models: servedModels(c) }))) },
    { label: t('channels.col_upstream'), cell: (c) => h('span', { class: 'mono' }, c.upstream) },
    { label: t('channels.col_state'), cell: (c) => badge(stateKind(c.state), t(`state.${c.state}`)) },
    { label: t('channels.col_failures'), cls: 'num', cell: (c) => fmt.int(c.consecutive_failures) },
    { label: t('channels.col_failed'), cls: 'num', cell: (c) => `${fmt.int(c.failures)} / ${fmt.int(c.requests)}` },
    { label: t('channels.col_trips'), cls: 'num', cell: (c) => fmt.int(c.trips) },
    { label: t('channels.col_in_flight'), cls: 'num', cell: (c) => fmt.int(c.in_flight) },
    { label: t('channels.col_latency'), cls: 'num', cell: (c) => fmt.ms(c.ewma_latency_s) || h('span', { class: 'muted' }, '-') },
    { label: t('channels.col_cooldown'), cell: (c) => {
      const parts = [];
      const cool = fmt.inSeconds(c.cooldown_until);
      const hold = fmt.inSeconds(c.retry_after_until);
      if (cool) parts.push(t('channels.retry_in', { when: cool }));
      if (hold) parts.push(t('channels.held', { when: hold }));
      return parts.length ? parts.join('; ') : h('span', { class: 'muted' }, '-');
    } },
    { label: t('channels.col_last_error'), cell: (c) => (c.last_error ? h('span', { class: 'small' }, c.last_error) : h('span', { class: 'muted' }, '-')) },
  ], channels);
}

export async function loadChannels() {
  const snapshot = await api('GET', 'channels');
  state.rendered.channels = () => renderChannels(snapshot);
  renderChannels(snapshot);
}

function renderChannels(snapshot) {
  const down = snapshot.unavailable_models || [];
  fill($('#channels-unavailable'), down.length
    ? h('p', { class: 'notice error' }, t('channels.unavailable', { models: down.join(', ') })) : null);
  fill($('#channels-table'), snapshot.channels.length ? channelTable(snapshot.channels) : empty(t('channels.none')));
  const rows = [];
  for (const [upstream, info] of Object.entries(snapshot.upstreams || {})) {
    for (const k of info.keys || []) rows.push({ upstream, ...k });
  }
  fill($('#channels-keys'), rows.length ? table([
    { label: t('channels.col_upstream'), cell: (r) => h('span', { class: 'mono' }, r.upstream) },
    { label: t('channels.col_key_index'), cls: 'num', cell: (r) => `#${r.index}` },
    { label: t('channels.col_state'), cell: (r) => badge(r.enabled ? 'good' : 'bad', r.enabled ? t('channels.key_on') : t('channels.key_off')) },
    { label: t('channels.col_reason'), cell: (r) => r.reason || h('span', { class: 'muted' }, '-') },
    { label: t('channels.col_since'), cell: (r) => (r.changed_at ? fmt.time(r.changed_at) : '') },
  ], rows) : empty(t('channels.no_keys')));
}
