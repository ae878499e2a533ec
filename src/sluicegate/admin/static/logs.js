// Logs: the most recent requests, newest first, optionally refreshed every few seconds.

import { $, api, badge, empty, fill, fmt, h, state, t, table } from './core.js';

const LOG_REFRESH_MS = 5000;
const timer = { id: null };

export async function loadLogs() {
  const answer = await api('GET', `logs?tail=${encodeURIComponent($('#logs-tail').value)}`);
  const entries = answer.data.slice().reverse();
  state.rendered.logs = () => renderLogs(entries);
  renderLogs(entries);
}

function statusKind(status) {
  if (status >= 200 && status < 300) return 'good';
  if (status === 429 || status === 499) return 'warn';
  return 'bad';
}

function renderLogs(entries) {
  if (!entries.length) {
    fill($('#logs-table'), empty(t('logs.none')));
    return;
  }
  fill($('#logs-table'), table([
    { label: t('logs.col_time'), cell: (e) => h('span', { title: e.time }, fmt.time(e.time)) },
    { label: t('logs.col_key'), cell: (e) => e.key_name || e.key_id || h('span', { class: 'muted' }, '-') },
    { label: t('logs.col_endpoint'), cell: (e) => h('span', { class: 'mono' }, e.endpoint) },
    { label: t('logs.col_model'), cell: (e) => h('span', { class: 'mono', title: e.model_served && e.model_served !== e.model_requested ? e.model_served : null }, e.model_requested || '-') },
    { label: t('logs.col_channel'), cell: (e) => h('span', { class: 'mono small' }, e.channel || e.upstream || '-') },
    { label: t('logs.col_status'), cell: (e) => h('span', null, badge(statusKind(e.status), String(e.status)),
      e.error_type ? h('span', { class: 'muted small' }, ` ${e.error_type}`) : null) },
    { label: t('logs.col_tokens'), cls: 'num', cell: (e) => `${fmt.int(e.prompt_tokens)} / ${fmt.int(e.completion_tokens)}${e.usage_estimated ? ' *' : ''}` },
    { label: t('logs.col_cost'), cls: 'num', cell: (e) => fmt.money(e.cost, e.currency) },
    { label: t('logs.col_latency'), cls: 'num', cell: (e) => `${fmt.num(e.latency_ms, 1)} ms` },
    { label: t('logs.col_ttft'), cls: 'num', cell: (e) => (e.ttft_ms == null ? '' : `${fmt.num(e.ttft_ms, 1)} ms`) },
    { label: t('logs.col_stream'), cell: (e) => (e.stream ? t('common.yes') : t('common.no')) },
    { label: t('logs.col_client'), cell: (e) => h('span', { class: 'mono small' }, e.client_ip || '') },
  ], entries));
}

export function stopLogTimer() {
  if (timer.id) clearInterval(timer.id);
  timer.id = null;
  const auto = $('#logs-auto');
  if (auto) auto.checked = false;
}

function onLogsAuto(event) {
  if (timer.id) clearInterval(timer.id);
  timer.id = event.target.checked ? setInterval(() => {
    if (state.page === 'logs' && !document.hidden) state.reload('logs');
  }, LOG_REFRESH_MS) : null;
}

export function initLogs() {
  $('#logs-tail').addEventListener('change', () => state.reload('logs'));
  $('#logs-auto').addEventListener('change', onLogsAuto);
}
