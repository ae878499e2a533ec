// The dashboard's shared parts: language, formatting, DOM building, and the admin API client.
//
// Rules every module keeps:
// - Every visible string comes from i18n.json (one dictionary per language) through t().
// - Data goes into the page as text (textContent, never innerHTML), so a key named "<img onerror>"
//   is just a name.
// - The admin key lives in sessionStorage (this tab only), is sent only in the Authorization header
//   to this origin, and never appears in the URL. An operator signed in to the portal needs no key:
//   the browser sends their session's admin cookie (HttpOnly, Path=/admin) to this origin's admin API. No existing key's secret is ever shown: the API
//   returns a secret once, in the answer to "create", and the keys page shows it once.

export const KEY_STORE = 'sluicegate.adminKey';
export const LANG_STORE = 'sluicegate.lang';
const LANGS = ['en', 'zh-CN'];
export const ADMIN = new URL('../', document.baseURI);      // /admin/
export const ROOT = new URL('../../', document.baseURI);    // the gateway's root (/readyz)
export const V1 = new URL('../../v1/', document.baseURI);   // the client API the playground calls
export const LIMITS = ['rpm', 'rpd', 'tpm', 'concurrency', 'budget_tokens_day', 'budget_tokens_month',
  'budget_tokens_total', 'budget_usd_day', 'budget_usd_month', 'budget_usd_total'];

export const state = {
  dict: {},          // {en: {...}, 'zh-CN': {...}}
  lang: 'en',
  page: 'overview',
  keys: [],          // the last keys list, for the usage filter and names
  rendered: {},      // page -> function re-rendering the last data (after a language switch)
  live: null,        // whether the live-config API (/admin/upstreams, ...) exists; null = not asked yet
  operator: null,    // the operator's name when signed in through the portal instead of with the key
  reload: async (page) => {},        // set by app.js: load a page again (and report errors)
  onUnauthorized: (message) => {},   // set by app.js: back to the sign-in form
};

// -- language ----------------------------------------------------------------------------------

export function pickLanguage() {
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

export function t(key, vars) {
  let text = (state.dict[state.lang] || {})[key];
  if (text === undefined) text = (state.dict.en || {})[key];
  if (text === undefined) return key;
  if (vars) text = text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
  return text;
}

export function applyLanguage() {
  document.documentElement.lang = state.lang;
  document.title = t('app.title');
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of document.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
  for (const el of document.querySelectorAll('[data-i18n-aria]')) el.setAttribute('aria-label', t(el.dataset.i18nAria));
  for (const render of Object.values(state.rendered)) render();
}

// -- formatting (Intl, in the page's language) -----------------------------------------------------

export const fmt = {
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
  axisMoney(n, currency) {  // chart axis: "$0.0012" under 1 (compact notation would say "$0"), else compact
    if (!n || Math.abs(n) >= 1) return fmt.compact(n, currency);
    const opts = { maximumSignificantDigits: 2 };
    try {
      return new Intl.NumberFormat(state.lang, currency ? { ...opts, style: 'currency', currency } : opts).format(n);
    } catch (e) {
      return new Intl.NumberFormat(state.lang, opts).format(n);
    }
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

export const $ = (sel, root = document) => root.querySelector(sel);

export function h(tag, attrs, ...children) {
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

export function badge(kind, text) {
  return h('span', { class: `badge ${kind}` }, text);
}

export function empty(text) {
  return h('p', { class: 'empty muted' }, text);
}

// A table from column specs: {label, cls, cell(row) -> Node|string}.
export function table(columns, rows, footer) {
  const head = h('tr', null, columns.map((c) => h('th', { class: c.cls, scope: 'col' }, c.label)));
  const body = rows.map((row) => h('tr', null, columns.map((c) => h('td', { class: c.cls }, c.cell(row)))));
  const foot = footer ? h('tfoot', null, h('tr', null, columns.map((c, i) => h('td', { class: c.cls }, footer(c, i))))) : null;
  return h('table', { class: 'data' }, h('thead', null, head), h('tbody', null, body), foot);
}

export function fill(container, ...nodes) {
  container.replaceChildren(...nodes.flat().filter((n) => n != null));
}

export function notice(text, kind = 'error') {
  const box = $('#notice');
  box.className = `notice ${kind}`;
  box.textContent = text;
  box.hidden = !text;
}

export function markUpdated(page) {
  const el = $(`#page-${page} [data-updated]`);
  if (el) el.textContent = t('common.updated', { time: new Intl.DateTimeFormat(state.lang, { timeStyle: 'medium' }).format(new Date()) });
}

// -- the admin API -----------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

// The admin key when one was given; without it, an operator's session cookie speaks for the page.
function authHeaders() {
  const key = sessionStorage.getItem(KEY_STORE);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

export async function api(method, path, body, { base = ADMIN, accept = [] } = {}) {
  const headers = authHeaders();
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(new URL(path, base), {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store', credentials: 'same-origin', referrerPolicy: 'no-referrer',
    });
  } catch (e) {
    throw new ApiError(0, 'network', t('error.network'));
  }
  let data = null;
  try { data = await response.json(); } catch (e) { /* not JSON */ }
  if (response.ok || accept.includes(response.status)) return data;
  const error = (data && data.error) || {};
  if (response.status === 401 && base === ADMIN) {
    state.onUnauthorized(t('auth.refused'));
  }
  throw new ApiError(response.status, error.code, error.message);
}

// The same call, answered as bytes (the CSV export): saved as a file through a temporary link.
export async function download(path, filename) {
  const response = await fetch(new URL(path, ADMIN), {
    headers: authHeaders(), cache: 'no-store', credentials: 'same-origin', referrerPolicy: 'no-referrer',
  });
  if (!response.ok) {
    let error = {};
    try { error = (await response.json()).error || {}; } catch (e) { /* not JSON */ }
    if (response.status === 401) state.onUnauthorized(t('auth.refused'));
    throw new ApiError(response.status, error.code, error.message);
  }
  const url = URL.createObjectURL(await response.blob());
  const link = h('a', { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// Whether this gateway has the live-config API (upstreams, models, channel actions): asked once.
export async function hasLiveConfig() {
  if (state.live === null) {
    try {
      await api('GET', 'upstreams');
      state.live = true;
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 404) throw e;
      state.live = false;
    }
  }
  return state.live;
}

export function showError(e) {
  if (e instanceof ApiError && e.status === 401) return;  // already back at the sign-in form
  notice(e instanceof ApiError && e.status ? t('error.api', { status: e.status, message: e.message }) : e.message);
}
// -- money and totals ----------------------------------------------------------------------------

export function dayTotals(rows) {
  const totals = { requests: 0, errors: 0, prompt: 0, completion: 0, cost: {}, hits: 0, tokensSaved: 0, saved: {} };
  for (const r of rows) {
    totals.hits += r.cache_hits || 0;
    totals.tokensSaved += r.tokens_saved || 0;
    if (r.cost_saved) totals.saved[r.currency || ''] = (totals.saved[r.currency || ''] || 0) + r.cost_saved;
    totals.requests += r.requests;
    totals.errors += r.errors;
    totals.prompt += r.prompt_tokens;
    totals.completion += r.completion_tokens;
    totals.cost[r.currency || ''] = (totals.cost[r.currency || ''] || 0) + r.cost;
  }
  return totals;
}

// Money per currency, as "US$1.20 + CN¥3.00"; unpriced usage (no currency, no cost) only when alone.
export function costText(byCurrency) {
  let entries = Object.entries(byCurrency);
  if (entries.length > 1) entries = entries.filter(([c, v]) => c || v);
  return entries.length ? entries.map(([c, v]) => fmt.money(v, c)).join(' + ') : fmt.money(0, '');
}
