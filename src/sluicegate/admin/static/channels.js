// Channels: the router's view of every channel (breaker, failures, cool-down, latency) and upstream key.

import { $, api, badge, empty, fill, fmt, h, hasLiveConfig, notice, showError, state, t, table } from './core.js';

export function stateKind(s) {
  return { closed: 'good', half_open: 'warn', open: 'bad' }[s] || 'off';
}

// The router names its catch-all route (requests with no model: files, batches) "\0default".
function servedModels(c) {
  if (c.state === 'disabled' && !(c.public_models || []).length) return t('channels.switched_off');
  return (c.public_models || []).map((m) => (m === '\u0000default' ? t('channels.default_route') : m)).join(', ');
}

export function channelTable(channels, actions = false) {
  const columns = [
    { label: t('channels.col_name'), cell: (c) => h('div', null, h('strong', { class: 'mono' }, c.name),
      h('div', { class: 'muted small' }, c.state === 'disabled' && !(c.public_models || []).length ? servedModels(c) : t('channels.serves', { models: servedModels(c) }))) },
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
  ];
  if (actions) columns.push({ label: t('keys.col_actions'), cls: 'actions-cell', cell: channelActions });
  return table(columns, channels);
}

// -- actions (the live-config API): test (a probe now), reset the breaker, enable, disable -----------

function channelPath(c, action) {
  return `channels/${encodeURIComponent(c.name)}/${action}`;
}

function channelActions(c) {
  const off = c.state === 'disabled';
  if (off && !c.public_models.length) {  // switched off: out of the routes, nothing to test or reset
    return h('div', { class: 'row-actions' },
      h('button', { type: 'button', class: 'small ghost', 'data-action': 'enable', onclick: () => channelAction(c, 'enable', 'channels.enabled_done') }, t('keys.enable')));
  }
  return h('div', { class: 'row-actions' },
    h('button', { type: 'button', class: 'small ghost', 'data-action': 'test', onclick: () => testChannel(c) }, t('channels.test')),
    h('button', { type: 'button', class: 'small ghost', 'data-action': 'reset', onclick: () => channelAction(c, 'reset', 'channels.reset_done') }, t('channels.reset')),
    h('button', { type: 'button', class: 'small ghost', 'data-action': off ? 'enable' : 'disable', onclick: () => channelAction(c, off ? 'enable' : 'disable', off ? 'channels.enabled_done' : 'channels.disabled_done') },
      off ? t('keys.enable') : t('keys.disable')));
}

async function testChannel(c) {
  notice(t('channels.testing', { name: c.name }), 'ok');
  try {
    const r = await api('POST', channelPath(c, 'test'));
    const ms = r.latency_ms != null ? r.latency_ms : (r.latency_s != null ? r.latency_s * 1000 : null);
    const words = { name: c.name, ms: ms == null ? '-' : fmt.num(ms, 0), answer: r.answer || r.content || r.error || '' };
    notice(t(r.ok === false ? 'channels.test_failed' : 'channels.test_ok', words), r.ok === false ? 'error' : 'ok');
    await state.reload('channels');
    notice(t(r.ok === false ? 'channels.test_failed' : 'channels.test_ok', words), r.ok === false ? 'error' : 'ok');
  } catch (e) { showError(e); }
}

async function channelAction(c, action, doneKey) {
  try {
    await api('POST', channelPath(c, action));
    await state.reload('channels');
    notice(t(doneKey, { name: c.name }), 'ok');
  } catch (e) { showError(e); }
}

export async function loadChannels() {
  const [snapshot, live] = await Promise.all([api('GET', 'channels'), hasLiveConfig()]);
  state.rendered.channels = () => renderChannels(snapshot, live);
  renderChannels(snapshot, live);
}

function renderChannels(snapshot, live) {
  fill($('#channels-live-note'), live ? null : h('p', { class: 'hint' }, t('channels.actions_need_live')));
  const down = snapshot.unavailable_models || [];
  fill($('#channels-unavailable'), down.length
    ? h('p', { class: 'notice error' }, t('channels.unavailable', { models: down.join(', ') })) : null);
  // Switched-off channels leave the routes: listed apart, so they can be switched on again.
  const off = (snapshot.disabled_channels || []).map((name) => ({
    name, upstream: name.split('/')[0], state: 'disabled', public_models: [], consecutive_failures: 0, failures: 0,
    requests: 0, trips: 0, in_flight: 0,
  }));
  const rows = [...snapshot.channels, ...off];
  fill($('#channels-table'), rows.length ? channelTable(rows, live) : empty(t('channels.none')));
  const keyRows = [];
  for (const [upstream, info] of Object.entries(snapshot.upstreams || {})) {
    for (const k of info.keys || []) keyRows.push({ upstream, ...k });
  }
  fill($('#channels-keys'), keyRows.length ? table([
    { label: t('channels.col_upstream'), cell: (r) => h('span', { class: 'mono' }, r.upstream) },
    { label: t('channels.col_key_index'), cls: 'num', cell: (r) => `#${r.index}` },
    { label: t('channels.col_state'), cell: (r) => badge(r.enabled ? 'good' : 'bad', r.enabled ? t('channels.key_on') : t('channels.key_off')) },
    { label: t('channels.col_reason'), cell: (r) => r.reason || h('span', { class: 'muted' }, '-') },
    { label: t('channels.col_since'), cell: (r) => (r.changed_at ? fmt.time(r.changed_at) : '') },
  ], keyRows) : empty(t('channels.no_keys')));
}
