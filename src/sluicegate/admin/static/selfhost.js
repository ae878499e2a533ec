// Self-host?: this gateway's own traffic priced on the API and on rented GPUs (GET /admin/selfhost,
// the same answer as `sluicegate plan --from-usage`).

import { $, api, badge, empty, fill, fmt, h, state, t, table } from './core.js';

function query() {
  const form = $('#selfhost-form');
  const params = new URLSearchParams();
  for (const name of ['since', 'currency', 'engine', 'map']) {
    const value = form.elements[name].value.trim();
    if (value) params.set(name, value);
  }
  return params.toString();
}

export function initSelfhost() {
  $('#selfhost-form').addEventListener('submit', (event) => {
    event.preventDefault();
    state.reload('selfhost');
  });
}

export async function loadSelfhost() {
  const answer = await api('GET', `selfhost?${query()}`);
  state.rendered.selfhost = () => renderSelfhost(answer);
  renderSelfhost(answer);
}

function money(n, currency) {
  return n == null ? h('span', { class: 'muted' }, '-') : fmt.money(n, currency);
}

export function renderSelfhost(a) {
  const cur = a.currency;
  if (!a.models.length) {
    fill($('#selfhost-table'), empty(t('selfhost.none')));
    fill($('#selfhost-total'));
    return;
  }
  fill($('#selfhost-table'), table([
    { label: t('selfhost.col_model'), cell: (m) => h('span', { class: 'mono' }, m.model) },
    { label: t('selfhost.col_open'), cell: (m) => h('span', { class: 'mono' }, m.open_model) },
    { label: t('selfhost.col_prompt'), cls: 'num', cell: (m) => fmt.int(m.prompt_tokens_per_day) },
    { label: t('selfhost.col_completion'), cls: 'num', cell: (m) => fmt.int(m.completion_tokens_per_day) },
    { label: t('selfhost.col_peak'), cls: 'num', cell: (m) => fmt.num(m.peak_requests_per_s, 2) },
    { label: t('selfhost.col_api'), cls: 'num', cell: (m) => money(m.api_cost_per_month, cur) },
    { label: t('selfhost.col_best'), cell: (m) => {
      const best = m.self_host.find((r) => r.meets_peak);
      return best ? `${best.gpu} ×${best.count} · ${best.provider}` : h('span', { class: 'muted' }, '-');
    } },
    { label: t('selfhost.col_best_cost'), cls: 'num', cell: (m) => money(m.best_self_host_cost_per_month, cur) },
    { label: t('selfhost.col_break_even'), cls: 'num', cell: (m) => (m.break_even_tokens_per_day == null
      ? h('span', { class: 'muted' }, '-') : fmt.int(m.break_even_tokens_per_day)) },
    { label: t('selfhost.col_verdict'), cell: (m) => (m.self_host_wins
      ? badge('good', t('selfhost.wins')) : badge('off', t('selfhost.keep_api'))) },
  ], a.models));
  fill($('#selfhost-total'), h('p', null, t('selfhost.total', {
    since: a.since, until: a.until,
    api: fmt.money(a.total.api_cost_per_month, cur),
    self: a.total.best_self_host_cost_per_month == null ? '-' : fmt.money(a.total.best_self_host_cost_per_month, cur),
  })));
}
