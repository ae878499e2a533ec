// Usage: a range of UTC days as a table (grouped by key, model or day) and an inline SVG bar chart.

import { $, api, costText, dayTotals, empty, fill, fmt, h, showError, state, t, table } from './core.js';

function utcDay(offsetDays = 0) {
  return new Date(Date.now() + offsetDays * 86400000).toISOString().slice(0, 10);
}

function usageQuery(form, by) {
  const f = form.elements;
  const q = new URLSearchParams({ since: f.since.value, until: f.until.value });
  if (by) q.set('by', by);
  if (f.key.value) q.set('key', f.key.value);
  if (f.model.value.trim()) q.set('model', f.model.value.trim());
  return `usage?${q}`;
}

export async function loadUsage() {
  const form = $('#usage-form');
  const f = form.elements;
  if (!f.since.value) f.since.value = utcDay(-6);
  if (!f.until.value) f.until.value = utcDay(0);
  if (!state.keys.length) {
    try { state.keys = (await api('GET', 'keys?all=true')).data; } catch (e) { showError(e); }
  }
  fillKeyFilter(f.key);
  const [rows, days] = await Promise.all([api('GET', usageQuery(form, f.by.value)), api('GET', usageQuery(form, 'day'))]);
  const args = { rows: rows.data, days: days.data, by: f.by.value, metric: f.metric.value, since: f.since.value, until: f.until.value };
  state.rendered.usage = () => { fillKeyFilter(f.key); renderUsage(args); };
  renderUsage(args);
}

function fillKeyFilter(select) {
  const chosen = select.value;
  fill(select, h('option', { value: '' }, t('usage.all_keys')),
    state.keys.map((k) => h('option', { value: k.id }, `${k.name} (${k.prefix}…)`)));
  select.value = chosen;
}

function renderUsage({ rows, days, by, metric, since, until }) {
  drawChart(days, metric, since, until);
  if (!rows.length) {
    fill($('#usage-table'), empty(t('usage.none')));
    return;
  }
  const showKey = by === '' || by === 'key';
  const showModel = by === '' || by === 'model';
  const cols = [];
  if (by === 'day') cols.push({ label: t('usage.col_day'), cell: (r) => fmt.day(r.day) });
  if (showKey) cols.push({ label: t('usage.col_key'), cell: (r) => (r.key_name || r.key_id || h('span', { class: 'muted' }, t('usage.no_key'))) });
  if (showModel) cols.push({ label: t('usage.col_model'), cell: (r) => h('span', { class: 'mono' }, r.model || '-') });
  const sums = dayTotals(rows);
  const numeric = [
    ['usage.col_requests', (r) => r.requests, sums.requests],
    ['usage.col_errors', (r) => r.errors, sums.errors],
    ['usage.col_prompt', (r) => r.prompt_tokens, sums.prompt],
    ['usage.col_completion', (r) => r.completion_tokens, sums.completion],
    ['usage.col_cached', (r) => r.cached_tokens, rows.reduce((a, r) => a + r.cached_tokens, 0)],
  ];
  for (const [label, get, total] of numeric) cols.push({ label: t(label), cls: 'num', cell: (r) => fmt.int(get(r)), total: fmt.int(total) });
  cols.push({ label: t('usage.col_cost'), cls: 'num', cell: (r) => (r.currency ? fmt.money(r.cost, r.currency) : h('span', { class: 'muted' }, '-')), total: costText(sums.cost) });
  cols.push({ label: t('usage.col_cache_hits'), cls: 'num', cell: (r) => fmt.int(r.cache_hits || 0), total: fmt.int(sums.hits) });
  cols.push({ label: t('usage.col_tokens_saved'), cls: 'num', cell: (r) => fmt.int(r.tokens_saved || 0), total: fmt.int(sums.tokensSaved) });
  cols.push({ label: t('usage.col_saved'), cls: 'num', cell: (r) => (r.currency ? fmt.money(r.cost_saved || 0, r.currency) : h('span', { class: 'muted' }, '-')), total: costText(sums.saved) });
  cols.push({ label: t('usage.col_currency'), cell: (r) => (r.currency ? h('span', { class: 'mono' }, r.currency) : h('span', { class: 'muted' }, t('usage.unpriced'))) });
  fill($('#usage-table'), table(cols, rows, (c, i) => (i === 0 ? t('usage.total') : c.total || '')));
}

function daysBetween(since, until) {
  const out = [];
  const end = Date.parse(`${until}T00:00:00Z`);
  for (let d = Date.parse(`${since}T00:00:00Z`); d <= end && out.length < 366; d += 86400000) {
    out.push(new Date(d).toISOString().slice(0, 10));
  }
  return out;
}

function drawChart(rows, metric, since, until) {
  const days = daysBetween(since, until);
  // Cost is drawn in one currency: the one with the most spent (a mixed sum means nothing).
  const spent = {};
  for (const r of rows) if (r.cost) spent[r.currency || ''] = (spent[r.currency || ''] || 0) + r.cost;
  const currency = Object.keys(spent).sort((a, b) => spent[b] - spent[a])[0] || '';
  const values = Object.fromEntries(days.map((d) => [d, 0]));
  for (const r of rows) {
    if (!(r.day in values)) continue;
    if (metric === 'cost') values[r.day] += r.currency === currency || (!r.currency && !currency) ? r.cost : 0;
    else if (metric === 'requests') values[r.day] += r.requests;
    else values[r.day] += r.prompt_tokens + r.completion_tokens;
  }
  const show = (v) => (metric === 'cost' ? fmt.money(v, currency) : fmt.int(v));
  const axis = (v) => (metric === 'cost' ? fmt.axisMoney(v, currency) : fmt.compact(v, ''));
  const max = Math.max(0, ...Object.values(values));
  const caption = $('#usage-chart-caption');
  caption.textContent = t(`usage.caption_${metric}`, { total: show(Object.values(values).reduce((a, b) => a + b, 0)) })
    + (metric === 'cost' && Object.keys(spent).length > 1 ? ` ${t('usage.caption_currency', { currency })}` : '');
  if (!days.length) {
    fill($('#usage-chart'), empty(t('usage.bad_range')));
    return;
  }
  const labels = [0, 0.5, 1].map((f) => (max ? axis(max * f) : (f ? '' : '0')));
  // Drawn at the box's own width (one unit = one pixel), so labels stay 11 px on a phone too.
  const W = Math.max(300, Math.round($('#usage-chart').clientWidth || 900)); const H = W < 600 ? 200 : 240;
  const bottom = 28; const top = 12;
  const left = 14 + 7 * Math.max(...labels.map((l) => l.length));
  const plotH = H - bottom - top;
  const slot = (W - left - 8) / days.length;
  const bar = Math.max(2, Math.min(48, slot * 0.7));
  const svg = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, class: 'bars', role: 'img', 'aria-label': caption.textContent });
  [0, 0.5, 1].forEach((f, i) => {
    const y = top + plotH * (1 - f);
    svg.append(svgEl('line', { x1: left, x2: W - 4, y1: y, y2: y, class: 'grid-line' }));
    svg.append(svgEl('text', { x: left - 6, y: y + 4, class: 'axis', 'text-anchor': 'end' }, labels[i]));
  });
  const every = Math.ceil(days.length / Math.max(2, Math.floor((W - left) / 56)));
  days.forEach((day, i) => {
    const v = values[day];
    const barH = max ? (v / max) * plotH : 0;
    const x = left + slot * i + (slot - bar) / 2;
    const rect = svgEl('rect', { x, y: top + plotH - barH, width: bar, height: Math.max(barH, v ? 1 : 0), class: 'bar', rx: 2 });
    rect.append(svgEl('title', null, `${fmt.day(day)}: ${show(v)}`));
    svg.append(rect);
    if (i % every === 0) svg.append(svgEl('text', { x: x + bar / 2, y: H - 8, class: 'axis', 'text-anchor': 'middle' }, fmt.shortDay(day)));
  });
  fill($('#usage-chart'), svg);
}

function svgEl(tag, attrs, text) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [name, value] of Object.entries(attrs || {})) el.setAttribute(name, value);
  if (text != null) el.textContent = text;
  return el;
}

export function initUsage() {
  $('#usage-form').addEventListener('submit', (e) => { e.preventDefault(); state.reload('usage'); });
  $('#usage-form').elements.metric.addEventListener('change', () => state.reload('usage'));
}
