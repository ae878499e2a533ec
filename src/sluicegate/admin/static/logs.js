// Logs: the request log searched by the gateway's database (GET /admin/requests): filters, text,
// pages going back in time, one request in detail (with its stored bodies), and CSV export.

import { $, api, badge, download, empty, fill, fmt, h, notice, showError, state, t, table } from './core.js';

const LOG_REFRESH_MS = 5000;
const timer = { id: null };
const paging = { stack: [], before: null, next: null };  // cursors of the pages seen, to go back

function toEpoch(local) {  // a datetime-local value, in the browser's time zone
  return local ? String(Date.parse(local) / 1000) : '';
}

export function logFilters() {
  const f = $('#logs-form').elements;
  const q = new URLSearchParams();
  for (const name of ['key', 'model', 'status', 'error', 'q']) {
    const value = f[name].value.trim();
    if (value) q.set(name, value);
  }
  if (f.since.value) q.set('since', toEpoch(f.since.value));
  if (f.until.value) q.set('until', toEpoch(f.until.value));
  if (f.bodies.checked && f.q.value.trim()) q.set('bodies', '1');
  return q;
}

export async function loadLogs() {
  await fillKeyChoices();
  const q = logFilters();
  q.set('limit', $('#logs-form').elements.limit.value);
  if (paging.before) q.set('before', String(paging.before));
  const answer = await api('GET', `requests?${q}`);
  paging.next = answer.has_more ? answer.next_before : null;
  const entries = answer.data;
  state.rendered.logs = () => renderLogs(entries);
  renderLogs(entries);
}

async function fillKeyChoices() {
  if (!state.keys.length) {
    try { state.keys = (await api('GET', 'keys?all=true')).data; } catch (e) { showError(e); }
  }
  const select = $('#logs-form').elements.key;
  const chosen = select.value;
  fill(select, h('option', { value: '' }, t('usage.all_keys')),
    state.keys.map((k) => h('option', { value: k.id }, `${k.name} (${k.prefix}…)`)));
  select.value = chosen;
}

export function statusKind(status) {
  if (status >= 200 && status < 300) return 'good';
  if (status === 429 || status === 499) return 'warn';
  return 'bad';
}

function renderLogs(entries) {
  $('#logs-older').hidden = !paging.next;
  $('#logs-newest').hidden = !paging.before;
  const models = new Set(entries.map((e) => e.model_requested).filter(Boolean));
  fill($('#logs-models'), [...models].map((m) => h('option', { value: m })));
  if (!entries.length) {
    fill($('#logs-table'), empty(t('logs.none')));
    return;
  }
  const t0 = table([
    { label: t('logs.col_time'), cell: (e) => h('span', { class: 'nowrap', title: e.time }, fmt.time(e.time)) },
    { label: t('logs.col_key'), cell: (e) => e.key_name || e.key_id || h('span', { class: 'muted' }, '-') },
    { label: t('logs.col_model'), cell: (e) => h('div', null, h('span', { class: 'mono', title: e.model_served && e.model_served !== e.model_requested ? e.model_served : null }, e.model_requested || '-'),
      h('div', { class: 'muted small mono' }, e.endpoint)) },
    { label: t('logs.col_channel'), cell: (e) => h('span', { class: 'mono small' }, e.channel || e.upstream || '-') },
    { label: t('logs.col_status'), cell: (e) => h('span', { class: 'nowrap' }, badge(statusKind(e.status), String(e.status)),
      e.cache_hit ? h('span', { class: 'muted small' }, ` ${t('logs.cache_hit')}`) : null,
      e.error_type ? h('span', { class: 'muted small' }, ` ${e.error_type}`) : null) },
    { label: t('logs.col_tokens'), cls: 'num', cell: (e) => `${fmt.int(e.prompt_tokens)} / ${fmt.int(e.completion_tokens)}${e.usage_estimated ? ' *' : ''}` },
    { label: t('logs.col_cost'), cls: 'num', cell: (e) => (e.currency ? fmt.money(e.cost, e.currency) : h('span', { class: 'muted' }, t('usage.unpriced'))) },
    { label: t('logs.col_latency'), cls: 'num', cell: (e) => `${fmt.num(e.latency_ms, 1)} ms` },
    { label: t('logs.col_ttft'), cls: 'num', cell: (e) => (e.ttft_ms == null ? '' : `${fmt.num(e.ttft_ms, 1)} ms`) },
    { label: t('logs.col_stream'), cell: (e) => (e.stream ? t('common.yes') : t('common.no')) },
    { label: '', cls: 'actions-cell', cell: (e) => h('button', { type: 'button', class: 'small ghost', 'data-detail': e.id, onclick: () => openDetail(e.id) }, t('logs.details')) },
  ], entries);
  t0.classList.add('clickable');
  t0.querySelectorAll('tbody tr').forEach((tr, i) => {
    tr.addEventListener('click', (ev) => { if (!ev.target.closest('button')) openDetail(entries[i].id); });
  });
  fill($('#logs-table'), t0);
}

// -- one request ---------------------------------------------------------------------------------

function dl(pairs) {
  return h('dl', { class: 'kv' }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== '')
    .flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

function body(label, text) {
  if (text == null) return null;
  let shown = text;
  try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON: as stored */ }
  return h('div', null, h('h3', null, label), h('pre', { class: 'code' }, shown));
}

async function openDetail(id) {
  let e;
  try { e = await api('GET', `requests/${encodeURIComponent(id)}`); } catch (err) { showError(err); return; }
  $('#log-dialog-title').textContent = t('logs.detail_title', { id: e.request_id });
  const ms = (v) => (v == null ? null : `${fmt.num(v, 1)} ms`);
  fill($('#log-detail'),
    h('div', { class: 'detail-grid' },
      h('section', null, h('h3', null, t('logs.d_request')), dl([
        [t('logs.col_time'), fmt.time(e.time)],
        [t('logs.d_request_id'), h('code', null, e.request_id)],
        [t('logs.col_key'), e.key_name ? `${e.key_name} (${e.key_id})` : e.key_id],
        [t('logs.col_endpoint'), h('code', null, e.endpoint)],
        [t('logs.d_model_requested'), e.model_requested],
        [t('logs.d_model_served'), e.model_served],
        [t('logs.d_upstream'), e.upstream],
        [t('logs.col_channel'), e.channel],
        [t('logs.col_client'), e.client_ip],
      ])),
      h('section', null, h('h3', null, t('logs.d_outcome')), dl([
        [t('logs.col_status'), badge(statusKind(e.status), String(e.status))],
        [t('logs.d_error'), e.error_type],
        [t('logs.col_latency'), ms(e.latency_ms)],
        [t('logs.col_ttft'), ms(e.ttft_ms)],
        [t('logs.col_stream'), e.stream ? t('common.yes') : t('common.no')],
      ])),
      h('section', null, h('h3', null, t('logs.d_usage')), dl([
        [t('usage.col_prompt'), fmt.int(e.prompt_tokens)],
        [t('usage.col_completion'), fmt.int(e.completion_tokens)],
        [t('usage.col_cached'), fmt.int(e.cached_tokens)],
        [t('logs.d_reasoning'), fmt.int(e.reasoning_tokens)],
        [t('logs.d_estimated'), e.usage_estimated ? t('logs.d_estimated_yes') : t('logs.d_estimated_no')],
        [t('logs.col_cost'), e.currency ? fmt.money(e.cost, e.currency) : t('usage.unpriced')],
        [t('logs.d_cache'), e.cache_hit || e.tokens_saved
          ? t('logs.d_cache_saved', { hit: e.cache_hit ? t('logs.cache_hit') : t('logs.cache_partial'), tokens: fmt.int(e.tokens_saved),
            cost: e.currency ? fmt.money(e.cost_saved, e.currency) : '-' })
          : t('common.no')],
      ]))),
    body(t('logs.d_request_body'), e.request_body),
    body(t('logs.d_response_body'), e.response_body),
    e.request_body == null && e.response_body == null ? h('p', { class: 'hint' }, t('logs.d_no_bodies')) : null);
  $('#log-dialog').showModal();
}

// -- timers, paging, export ------------------------------------------------------------------------

export function stopLogTimer() {
  if (timer.id) clearInterval(timer.id);
  timer.id = null;
  const auto = $('#logs-auto');
  if (auto) auto.checked = false;
}

function onLogsAuto(event) {
  if (timer.id) clearInterval(timer.id);
  timer.id = event.target.checked ? setInterval(() => {
    if (state.page === 'logs' && !document.hidden && !paging.before) state.reload('logs');
  }, LOG_REFRESH_MS) : null;
}

function firstPage() {
  paging.stack = [];
  paging.before = null;
  state.reload('logs');
}

async function exportCsv() {
  try {
    await download(`requests.csv?${logFilters()}`, 'sluicegate-requests.csv');
    notice(t('logs.csv_done'), 'ok');
  } catch (e) { showError(e); }
}

export function initLogs() {
  const form = $('#logs-form');
  form.addEventListener('submit', (e) => { e.preventDefault(); firstPage(); });
  form.addEventListener('reset', () => setTimeout(firstPage, 0));
  form.elements.limit.addEventListener('change', firstPage);
  $('#logs-auto').addEventListener('change', onLogsAuto);
  $('#logs-csv').addEventListener('click', exportCsv);
  $('#logs-older').addEventListener('click', () => {
    paging.stack.push(paging.before);
    paging.before = paging.next;
    state.reload('logs');
  });
  $('#logs-newest').addEventListener('click', firstPage);
}
