// Sluicegate dashboard: one page over the admin API, no framework, no build step, no external asset.
//
// Rules this file keeps:
// - Every visible string comes from i18n.json (one dictionary per language) through t().
// - Data goes into the page as text (textContent, never innerHTML), so a key named "<img onerror>"
//   is just a name.
// - The admin key lives in sessionStorage (this tab only), is sent only in the Authorization header
//   to this origin, and never appears in the URL. No existing key's secret is ever shown: the API
//   returns a secret once, in the answer to "create", and this page shows it once.

const KEY_STORE = 'sluicegate.adminKey';
const LANG_STORE = 'sluicegate.lang';
const LANGS = ['en', 'zh-CN'];
const ADMIN = new URL('../', document.baseURI);      // /admin/
const ROOT = new URL('../../', document.baseURI);    // the gateway's root (/readyz)
const LIMITS = ['rpm', 'rpd', 'tpm', 'concurrency', 'budget_tokens_day', 'budget_tokens_month',
  'budget_tokens_total', 'budget_usd_day', 'budget_usd_month', 'budget_usd_total'];
const PAGES = ['overview', 'keys', 'usage', 'logs', 'channels'];
const LOG_REFRESH_MS = 5000;

const state = {
  dict: {},          // {en: {...}, 'zh-CN': {...}}
  lang: 'en',
  page: 'overview',
  keys: [],          // the last keys list, for the usage filter and names
  editing: null,     // the key being edited, or null when creating
  logTimer: null,
  rendered: {},      // page -> function re-rendering the last data (after a language switch)
};

// -- language ----------------------------------------------------------------------------------

function pickLanguage() {
  const saved = localStorage.getItem(LANG_STORE);
  if (LANGS.includes(saved)) return saved;
  const wanted = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || 'en'];
  for (const tag of wanted) {
    const lower = String(tag).toLowerCase();
    if (lower.startsWith('zh')) return 'zh-CN';
    if (lower.startsWith('en')) return 'en';
  }
  return 'en';
}

function t(key, vars) {
  let text = (state.dict[state.lang] || {})[key];
  if (text === undefined) text = (state.dict.en || {})[key];
  if (text === undefined) return key;
  if (vars) text = text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
  return text;
}

function applyLanguage() {
  document.documentElement.lang = state.lang;
  document.title = t('app.title');
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of document.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
  for (const el of document.querySelectorAll('[data-i18n-aria]')) el.setAttribute('aria-label', t(el.dataset.i18nAria));
  for (const render of Object.values(state.rendered)) render();
}

// -- formatting (Intl, in the page's language) -----------------------------------------------------

const fmt = {
  int: (n) => new Intl.NumberFormat(state.lang, { maximumFractionDigits: 0 }).format(n || 0),
  num: (n, digits = 2) => new Intl.NumberFormat(state.lang, { maximumFractionDigits: digits }).format(n || 0),
  money(n, currency) {
    const opts = { minimumFractionDigits: 2, maximumFractionDigits: n && Math.abs(n) < 1 ? 6 : 2 };
    if (currency) {
      try {
        return new Intl.NumberFormat(state.lang, { style: 'currency', currency, ...opts }).format(n || 0);
      } catch (e) { /* not an ISO currency code: show it after the number */ }
      return `${new Intl.NumberFormat(state.lang, opts).format(n || 0)} ${currency}`;
    }
    return new Intl.NumberFormat(state.lang, opts).format(n || 0);
  },
  time(iso) {
    if (!iso) return '';
    const d = typeof iso === 'number' ? new Date(iso * 1000) : new Date(iso);
    return new Intl.DateTimeFormat(state.lang, { dateStyle: 'medium', timeStyle: 'medium' }).format(d);
  },
  day(day) {  // 'YYYY-MM-DD', a UTC day
    const [y, m, d] = day.split('-').map(Number);
    return new Intl.DateTimeFormat(state.lang, { dateStyle: 'medium', timeZone: 'UTC' }).format(Date.UTC(y, m - 1, d));
  },
  shortDay(day) {
    const [y, m, d] = day.split('-').map(Number);
    return new Intl.DateTimeFormat(state.lang, { month: 'numeric', day: 'numeric', timeZone: 'UTC' }).format(Date.UTC(y, m - 1, d));
  },
  inSeconds(epoch) {  // "in 12 seconds" for a wall-clock time in seconds; '' if past
    const left = Math.round(epoch - Date.now() / 1000);
    if (!epoch || left <= 0) return '';
    const rtf = new Intl.RelativeTimeFormat(state.lang, { numeric: 'auto' });
    return left < 120 ? rtf.format(left, 'second') : rtf.format(Math.round(left / 60), 'minute');
  },
  compact(n, currency) {  // axis labels: "1.2M", "120万", "$1.2K"
    const opts = { notation: 'compact', maximumFractionDigits: 1 };
    try {
      return new Intl.NumberFormat(state.lang, currency ? { ...opts, style: 'currency', currency } : opts).format(n);
    } catch (e) {
      return new Intl.NumberFormat(state.lang, opts).format(n);
    }
  },
  ms: (seconds) => (seconds == null ? '' : `${fmt.num(seconds * 1000, 1)} ms`),
};

// -- DOM ---------------------------------------------------------------------------------------

const $ = (sel, root = document) => root.querySelector(sel);

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (name === 'class') el.className = value;
    else el.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function badge(kind, text) {
  return h('span', { class: `badge ${kind}` }, text);
}

function empty(text) {
  return h('p', { class: 'empty muted' }, text);
}

// A table from column specs: {label, cls, cell(row) -> Node|string}.
function table(columns, rows, footer) {
  const head = h('tr', null, columns.map((c) => h('th', { class: c.cls, scope: 'col' }, c.label)));
  const body = rows.map((row) => h('tr', null, columns.map((c) => h('td', { class: c.cls }, c.cell(row)))));
  const foot = footer ? h('tfoot', null, h('tr', null, columns.map((c, i) => h('td', { class: c.cls }, footer(c, i))))) : null;
  return h('table', { class: 'data' }, h('thead', null, head), h('tbody', null, body), foot);
}

function fill(container, ...nodes) {
  container.replaceChildren(...nodes.flat().filter((n) => n != null));
}

function notice(text, kind = 'error') {
  const box = $('#notice');
  box.className = `notice ${kind}`;
  box.textContent = text;
  box.hidden = !text;
}

function markUpdated(page) {
  const el = $(`#page-${page} [data-updated]`);
  if (el) el.textContent = t('common.updated', { time: new Intl.DateTimeFormat(state.lang, { timeStyle: 'medium' }).format(new Date()) });
}

// -- the admin API -----------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body, { base = ADMIN, accept = [] } = {}) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(KEY_STORE) || ''}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(new URL(path, base), {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer',
    });
  } catch (e) {
    throw new ApiError(0, 'network', t('error.network'));
  }
  let data = null;
  try { data = await response.json(); } catch (e) { /* not JSON */ }
  if (response.ok || accept.includes(response.status)) return data;
  const error = (data && data.error) || {};
  if (response.status === 401 && base === ADMIN) {
    signOut(t('auth.refused'));
  }
  throw new ApiError(response.status, error.code, error.message);
}

function showError(e) {
  if (e instanceof ApiError && e.status === 401) return;  // already back at the sign-in form
  notice(e instanceof ApiError && e.status ? t('error.api', { status: e.status, message: e.message }) : e.message);
}

// -- sign-in -----------------------------------------------------------------------------------

function signedIn() {
  return Boolean(sessionStorage.getItem(KEY_STORE));
}

function signOut(message) {
  sessionStorage.removeItem(KEY_STORE);
  stopLogTimer();
  for (const id of ['overview-status', 'overview-today', 'overview-channels', 'keys-table', 'usage-chart',
    'usage-table', 'logs-table', 'channels-table', 'channels-keys', 'channels-unavailable']) {
    fill($(`#${id}`));
  }
  state.rendered = {};
  state.keys = [];
  showLogin(message);
}

function showLogin(message) {
  $('#tabs').hidden = true;
  $('#sign-out').hidden = true;
  for (const page of PAGES) $(`#page-${page}`).hidden = true;
  notice('');
  $('#login').hidden = false;
  const error = $('#login-error');
  error.textContent = message || '';
  error.hidden = !message;
  $('#admin-key').focus();
}

async function onLogin(event) {
  event.preventDefault();
  const input = $('#admin-key');
  const key = input.value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY_STORE, key);
  try {
    await api('GET', 'keys');
  } catch (e) {
    sessionStorage.removeItem(KEY_STORE);
    const message = e.code === 'admin_disabled' ? t('auth.disabled')
      : e.status === 401 ? t('auth.refused') : t('error.api', { status: e.status, message: e.message });
    showLogin(message);
    return;
  }
  input.value = '';
  $('#login').hidden = true;
  route();
}

// -- navigation --------------------------------------------------------------------------------

function route() {
  if (!signedIn()) {
    showLogin();
    return;
  }
  const wanted = location.hash.replace('#', '');
  state.page = PAGES.includes(wanted) ? wanted : 'overview';
  $('#login').hidden = true;
  $('#tabs').hidden = false;
  $('#sign-out').hidden = false;
  notice('');
  for (const page of PAGES) $(`#page-${page}`).hidden = page !== state.page;
  for (const a of document.querySelectorAll('#tabs a')) {
    if (a.dataset.tab === state.page) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (state.page !== 'logs') stopLogTimer();
  load(state.page);
}

function load(page) {
  const loader = { overview: loadOverview, keys: loadKeys, usage: loadUsage, logs: loadLogs, channels: loadChannels }[page];
  return loader().then(() => markUpdated(page)).catch(showError);
}

// -- overview ----------------------------------------------------------------------------------

// A figure, or a word (`words`: set in a smaller size so "Built-in mock only" fits).
function card(label, value, kind, detail, words = false) {
  return h('div', { class: `card ${kind || ''}` }, h('div', { class: 'card-label' }, label),
    h('div', { class: `card-value${words ? ' text' : ''}` }, value),
    detail ? h('div', { class: 'card-detail muted' }, detail) : null);
}

function checkCard(label, value) {
  if (value === undefined) return card(label, t('common.not_used'), 'off', null, true);
  return card(label, value ? t('common.ok') : t('common.failing'), value ? 'good' : 'bad', null, true);
}

function dayTotals(rows) {
  const totals = { requests: 0, errors: 0, prompt: 0, completion: 0, cost: {} };
  for (const r of rows) {
    totals.requests += r.requests;
    totals.errors += r.errors;
    totals.prompt += r.prompt_tokens;
    totals.completion += r.completion_tokens;
    totals.cost[r.currency || ''] = (totals.cost[r.currency || ''] || 0) + r.cost;
  }
  return totals;
}

// Money per currency, as "US$1.20 + CN¥3.00"; unpriced usage (no currency, no cost) only when alone.
function costText(byCurrency) {
  let entries = Object.entries(byCurrency);
  if (entries.length > 1) entries = entries.filter(([c, v]) => c || v);
  return entries.length ? entries.map(([c, v]) => fmt.money(v, c)).join(' + ') : fmt.money(0, '');
}

async function loadOverview() {
  const [ready, today] = await Promise.all([
    api('GET', 'readyz', undefined, { base: ROOT, accept: [503] }),
    api('GET', 'usage?since=today&until=today&by=day'),
  ]);
  state.rendered.overview = () => renderOverview(ready, today.data);
  renderOverview(ready, today.data);
}

function renderOverview(ready, todayRows) {
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
    card(t('overview.cost'), costText(totals.cost)));
  const channels = ready.channels || [];
  const counts = { closed: 0, half_open: 0, open: 0 };
  for (const c of channels) counts[c.state] = (counts[c.state] || 0) + 1;
  fill($('#overview-channels'),
    h('div', { class: 'chips' }, Object.entries(counts).map(([s, n]) => badge(stateKind(s), `${t(`state.${s}`)}: ${fmt.int(n)}`))),
    channels.length ? channelTable(channels) : empty(t('channels.none')));
}

// -- keys --------------------------------------------------------------------------------------

const STATUS_KIND = { active: 'good', disabled: 'warn', expired: 'off', revoked: 'bad' };

function limitChips(limits) {
  const set = LIMITS.filter((name) => limits[name] != null);
  if (!set.length) return h('span', { class: 'muted' }, t('keys.no_limits'));
  return h('div', { class: 'chips' }, set.map((name) => {
    const value = name.startsWith('budget_usd') ? fmt.money(limits[name], 'USD') : fmt.int(limits[name]);
    return h('span', { class: 'chip' }, `${t(`limit.${name}`)}: ${value}`);
  }));
}

function listOr(list, fallback) {
  return list.length ? h('span', { class: 'mono' }, list.join(', ')) : h('span', { class: 'muted' }, fallback);
}

async function loadKeys() {
  const all = $('#keys-show-revoked').checked;
  const answer = await api('GET', `keys${all ? '?all=true' : ''}`);
  state.keys = answer.data;
  state.rendered.keys = renderKeys;
  renderKeys();
}

function renderKeys() {
  const keys = state.keys;
  if (!keys.length) {
    fill($('#keys-table'), empty(t('keys.none')));
    return;
  }
  fill($('#keys-table'), table([
    { label: t('keys.col_name'), cell: (k) => h('div', null, h('strong', null, k.name), h('div', { class: 'muted small mono' }, k.id),
      k.owner ? h('div', { class: 'muted small' }, t('keys.owner', { owner: k.owner })) : null) },
    { label: t('keys.col_prefix'), cell: (k) => h('code', null, `${k.prefix}…`) },
    { label: t('keys.col_status'), cell: (k) => badge(STATUS_KIND[k.status] || 'off', t(`status.${k.status}`)) },
    { label: t('keys.col_access'), cell: (k) => h('div', { class: 'access' },
      h('div', null, h('span', { class: 'muted' }, `${t('field.models')}: `), listOr(k.models, t('keys.all_models'))),
      h('div', null, h('span', { class: 'muted' }, `${t('field.endpoints')}: `), listOr(k.endpoints, t('keys.all_endpoints'))),
      h('div', null, h('span', { class: 'muted' }, `${t('field.networks')}: `), listOr(k.networks, t('keys.anywhere')))) },
    { label: t('keys.col_limits'), cell: (k) => limitChips(k.limits) },
    { label: t('keys.col_expires'), cell: (k) => (k.expires_at ? fmt.time(k.expires_at) : h('span', { class: 'muted' }, t('keys.never'))) },
    { label: t('keys.col_created'), cell: (k) => fmt.time(k.created_at) },
    { label: t('keys.col_actions'), cls: 'actions-cell', cell: keyActions },
  ], keys));
}

function keyActions(k) {
  if (k.status === 'revoked') return h('span', { class: 'muted small' }, t('keys.revoked_at', { time: fmt.time(k.revoked_at) }));
  return h('div', { class: 'row-actions' },
    h('button', { type: 'button', class: 'small ghost', onclick: () => openKeyDialog(k) }, t('keys.edit')),
    h('button', { type: 'button', class: 'small ghost', onclick: () => setEnabled(k, !k.enabled) },
      k.enabled ? t('keys.disable') : t('keys.enable')),
    h('button', { type: 'button', class: 'small danger', onclick: () => confirmRevoke(k) }, t('keys.revoke')));
}

async function setEnabled(k, enabled) {
  try {
    await api('PATCH', `keys/${encodeURIComponent(k.id)}`, { enabled });
    notice(t(enabled ? 'keys.enabled_done' : 'keys.disabled_done', { name: k.name }), 'ok');
    await load('keys');
  } catch (e) { showError(e); }
}

function confirmRevoke(k) {
  const dialog = $('#confirm-dialog');
  $('#confirm-title').textContent = t('keys.revoke_title', { name: k.name });
  $('#confirm-text').textContent = t('keys.revoke_text', { name: k.name, prefix: `${k.prefix}…` });
  const ok = $('#confirm-ok');
  ok.textContent = t('keys.revoke_confirm');
  ok.onclick = async () => {
    dialog.close();
    try {
      await api('DELETE', `keys/${encodeURIComponent(k.id)}`);
      notice(t('keys.revoked_done', { name: k.name }), 'ok');
      await load('keys');
    } catch (e) { showError(e); }
  };
  dialog.showModal();
  $('#confirm-cancel').focus();
}

function openKeyDialog(k) {
  state.editing = k || null;
  const form = $('#key-form');
  form.reset();
  const creating = !k;
  for (const el of form.querySelectorAll('[data-mode]')) el.hidden = el.dataset.mode !== (creating ? 'create' : 'edit');
  $('#key-dialog-title').textContent = creating ? t('keys.create_title') : t('keys.edit_title', { name: k.name });
  $('#key-form-submit').textContent = creating ? t('keys.create') : t('common.save');
  $('#key-dialog-expiry').textContent = creating ? t('field.expires_hint')
    : t('field.expires_current', { when: k.expires_at ? fmt.time(k.expires_at) : t('keys.never') });
  $('#key-form-error').hidden = true;
  if (k) {
    const f = form.elements;
    f.name.value = k.name;
    f.owner.value = k.owner || '';
    f.models.value = k.models.join(', ');
    f.endpoints.value = k.endpoints.join(', ');
    f.networks.value = k.networks.join(', ');
    f.store_bodies.checked = k.store_bodies;
    for (const name of LIMITS) f[name].value = k.limits[name] == null ? '' : k.limits[name];
  }
  $('#key-dialog').showModal();
  form.elements.name.focus();
}

function listField(text) {
  return text.split(',').map((s) => s.trim()).filter(Boolean);
}

function numberField(input) {
  const text = input.value.trim();
  if (!text) return null;
  return input.step === '1' ? parseInt(text, 10) : parseFloat(text);
}

function keyBody(form, creating) {
  const f = form.elements;
  const body = {
    name: f.name.value.trim(),
    owner: f.owner.value.trim(),
    models: listField(f.models.value),
    endpoints: listField(f.endpoints.value),
    networks: listField(f.networks.value),
    store_bodies: f.store_bodies.checked,
  };
  if (f.expires.value.trim()) body.expires = f.expires.value.trim();
  if (creating) {
    for (const name of ['rpm', 'rpd', 'tpm', 'concurrency', 'budget_tokens', 'budget_usd']) {
      const value = numberField(f[name]);
      if (value) body[name] = value;
    }
    if (body.budget_tokens || body.budget_usd) body.budget_period = f.budget_period.value;
  } else {
    // Every limit by name, so a budget moved from one period to another leaves nothing behind.
    body.limits = Object.fromEntries(LIMITS.map((name) => [name, numberField(f[name]) || null]));
  }
  return body;
}

async function onKeySubmit(event) {
  event.preventDefault();
  const form = event.target;
  const creating = !state.editing;
  const error = $('#key-form-error');
  error.hidden = true;
  try {
    const body = keyBody(form, creating);
    if (creating) {
      const created = await api('POST', 'keys', body);
      $('#key-dialog').close();
      showSecret(created.key);
      delete created.key;
    } else {
      await api('PATCH', `keys/${encodeURIComponent(state.editing.id)}`, body);
      $('#key-dialog').close();
      notice(t('keys.updated_done', { name: body.name }), 'ok');
    }
    await load('keys');
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) { $('#key-dialog').close(); return; }
    error.textContent = e.message;
    error.hidden = false;
  }
}

function showSecret(secret) {
  const input = $('#secret-value');
  input.value = secret;
  $('#secret-copied').hidden = true;
  $('#secret-dialog').showModal();
  input.select();
}

async function copySecret() {
  const input = $('#secret-value');
  let copied = false;
  try {
    await navigator.clipboard.writeText(input.value);
    copied = true;
  } catch (e) {
    input.select();  // not a secure context (plain http to a remote host): the old way
    copied = document.execCommand && document.execCommand('copy');
  }
  const note = $('#secret-copied');
  note.textContent = copied ? t('secret.copied') : t('secret.copy_failed');
  note.hidden = false;
}

function closeSecret() {
  $('#secret-value').value = '';  // the secret leaves the page with the dialog
  $('#secret-dialog').close();
}

// -- usage -------------------------------------------------------------------------------------

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

async function loadUsage() {
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
  cols.push({ label: t('usage.col_cost'), cls: 'num', cell: (r) => fmt.money(r.cost, r.currency), total: costText(sums.cost) });
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
  const axis = (v) => fmt.compact(v, metric === 'cost' ? currency : '');
  const max = Math.max(0, ...Object.values(values));
  const caption = $('#usage-chart-caption');
  caption.textContent = t(`usage.caption_${metric}`, { total: show(Object.values(values).reduce((a, b) => a + b, 0)) })
    + (metric === 'cost' && Object.keys(spent).length > 1 ? ` ${t('usage.caption_currency', { currency })}` : '');
  if (!days.length) {
    fill($('#usage-chart'), empty(t('usage.bad_range')));
    return;
  }
  const labels = [0, 0.5, 1].map((f) => (max ? axis(max * f) : (f ? '' : '0')));
  const W = 900; const H = 240; const bottom = 28; const top = 12;
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
  const every = Math.ceil(days.length / 12);
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

// -- logs --------------------------------------------------------------------------------------

async function loadLogs() {
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

function stopLogTimer() {
  if (state.logTimer) clearInterval(state.logTimer);
  state.logTimer = null;
  const auto = $('#logs-auto');
  if (auto) auto.checked = false;
}

function onLogsAuto(event) {
  if (state.logTimer) clearInterval(state.logTimer);
  state.logTimer = event.target.checked ? setInterval(() => {
    if (state.page === 'logs' && !document.hidden) load('logs');
  }, LOG_REFRESH_MS) : null;
}

// -- channels ----------------------------------------------------------------------------------

function stateKind(s) {
  return { closed: 'good', half_open: 'warn', open: 'bad' }[s] || 'off';
}

// The router names its catch-all route (requests with no model: files, batches) "\0default".
function servedModels(c) {
  return (c.public_models || []).map((m) => (m === '\u0000default' ? t('channels.default_route') : m)).join(', ');
}

function channelTable(channels) {
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

async function loadChannels() {
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

// -- start -------------------------------------------------------------------------------------

async function start() {
  const response = await fetch(new URL('i18n.json', document.baseURI), { cache: 'no-cache' });
  state.dict = await response.json();
  state.lang = pickLanguage();
  applyLanguage();

  $('#lang-toggle').addEventListener('click', () => {
    state.lang = state.lang === 'en' ? 'zh-CN' : 'en';
    localStorage.setItem(LANG_STORE, state.lang);
    applyLanguage();
    if (signedIn() && !$('#login').hidden) return;
    markUpdated(state.page);
  });
  $('#sign-out').addEventListener('click', () => signOut());
  $('#login-form').addEventListener('submit', onLogin);
  for (const button of document.querySelectorAll('[data-refresh]')) button.addEventListener('click', () => load(state.page));
  $('#keys-show-revoked').addEventListener('change', () => load('keys'));
  $('#keys-new').addEventListener('click', () => openKeyDialog(null));
  $('#key-form').addEventListener('submit', onKeySubmit);
  for (const button of document.querySelectorAll('dialog [data-close]')) button.addEventListener('click', (e) => e.target.closest('dialog').close());
  $('#secret-copy').addEventListener('click', copySecret);
  $('#secret-done').addEventListener('click', closeSecret);
  $('#secret-dialog').addEventListener('cancel', (e) => { e.preventDefault(); });  // Esc must not lose the secret unread
  $('#secret-dialog').addEventListener('close', () => { $('#secret-value').value = ''; });
  $('#confirm-cancel').addEventListener('click', () => $('#confirm-dialog').close());
  $('#usage-form').addEventListener('submit', (e) => { e.preventDefault(); load('usage'); });
  $('#usage-form').elements.metric.addEventListener('change', () => load('usage'));
  $('#logs-tail').addEventListener('change', () => load('logs'));
  $('#logs-auto').addEventListener('change', onLogsAuto);
  window.addEventListener('hashchange', route);
  route();
}

start().catch((e) => notice(String(e)));
