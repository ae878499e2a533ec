// Audit: who (which admin credential, as a fingerprint) changed which upstream, model route, channel
// switch or price, when, with what before and after (secrets already masked by the gateway), from
// GET /admin/audit; exported as CSV by the same endpoint. Needs the live-config API.

import { $, api, badge, download, empty, fill, fmt, h, hasLiveConfig, notice, showError, state, t, table } from './core.js';
import { needsLive } from './catalog.js';

const ACTION_KIND = { create: 'good', update: 'warn', delete: 'bad', enable: 'good', disable: 'off' };

function auditQuery() {
  const f = $('#audit-form').elements;
  const q = new URLSearchParams({ since: f.since.value, limit: '500' });
  if (f.kind.value) q.set('kind', f.kind.value);
  if (f.target.value.trim()) q.set('target', f.target.value.trim());
  return q;
}

export async function loadAudit() {
  if (!(await hasLiveConfig())) {
    $('#audit-csv').hidden = true;
    state.rendered.audit = () => needsLive($('#audit-table'));
    needsLive($('#audit-table'));
    return;
  }
  $('#audit-csv').hidden = false;
  const rows = (await api('GET', `audit?${auditQuery()}`)).data;
  state.rendered.audit = () => renderAudit(rows);
  renderAudit(rows);
}

function shown(value) {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text === undefined ? '∅' : text.length > 80 ? `${text.slice(0, 77)}…` : text;
}

// What changed, field by field: "base_url: a → b". A creation lists what was set, a deletion nothing.
export function changes(before, after) {
  const b = before && typeof before === 'object' ? before : {};
  const a = after && typeof after === 'object' ? after : {};
  const names = [...new Set([...Object.keys(b), ...Object.keys(a)])]
    .filter((k) => !['created_at', 'updated_at', 'name'].includes(k) && JSON.stringify(b[k]) !== JSON.stringify(a[k]));
  const set = (v) => v !== null && v !== undefined && v !== '' && !(typeof v === 'object' && !Object.keys(v).length);
  if (!before) return names.filter((k) => set(a[k])).map((k) => `${k}: ${shown(a[k])}`);
  if (!after) return [];
  return names.map((k) => `${k}: ${shown(b[k])} → ${shown(a[k])}`);
}

function renderAudit(rows) {
  fill($('#audit-table'), rows.length ? table([
    { label: t('logs.col_time'), cell: (r) => fmt.time(r.ts) },
    { label: t('audit.col_target'), cell: (r) => h('div', null, h('strong', { class: 'mono' }, r.target),
      h('div', { class: 'muted small' }, t(`audit.kind_${r.target_kind}`), ' ', badge(ACTION_KIND[r.action] || 'off', t(`audit.action_${r.action}`)))) },
    { label: t('audit.col_change'), cell: (r) => {
      const lines = changes(r.before, r.after);
      return lines.length ? h('div', { class: 'mono small changes' }, lines.map((l) => h('div', null, l))) : h('span', { class: 'muted' }, '-');
    } },
    { label: t('audit.col_actor'), cell: (r) => h('span', { class: 'mono small' }, r.actor) },
  ], rows) : empty(t('audit.none')));
}

async function exportAudit() {
  const q = auditQuery();
  q.set('format', 'csv');
  q.set('limit', '10000');
  try {
    await download(`audit?${q}`, 'sluicegate-audit.csv');
    notice(t('logs.csv_done'), 'ok');
  } catch (e) { showError(e); }
}

export function initAudit() {
  $('#audit-form').addEventListener('submit', (e) => { e.preventDefault(); state.reload('audit'); });
  $('#audit-form').elements.since.addEventListener('change', () => state.reload('audit'));
  $('#audit-form').elements.kind.addEventListener('change', () => state.reload('audit'));
  $('#audit-csv').addEventListener('click', exportAudit);
}
