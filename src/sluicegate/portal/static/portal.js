// Sluicegate self-service portal: one page over /portal/api, no framework, no build step.
//
// The session is an HttpOnly cookie this script cannot read: it only knows whether /portal/api/me
// answers. Data goes into the page as text (textContent), never as HTML. A new key's secret is shown
// once, in the answer to "create", and forgotten when the user says they copied it.

import { forgetPlayground, initPlayground, renderPlayground, usePlaygroundKey } from './playground.js';

const LANG_STORE = 'sluicegate.lang';  // shared with the dashboard: one choice for both pages
const LANGS = ['en', 'zh-CN'];
const API = new URL('api/', document.baseURI);

const state = { dict: {}, lang: 'en', options: { registration: false, sso: null, min_password_length: 10 }, me: null, owner: 'user', ledger: [], ledgerNext: null, team: null, keys: [], usage: [], logs: [], logsNext: null };

// A team admin switches the page between their own account and their team's: every call then says
// owner=team, and the API scopes keys, usage, logs and the ledger to the team.
function own(path) {
  if (state.owner !== 'team') return path;
  return `${path}${path.includes('?') ? '&' : '?'}owner=team`;
}

// -- language ----------------------------------------------------------------------------------

function pickLanguage() {
  const saved = localStorage.getItem(LANG_STORE);
  if (LANGS.includes(saved)) return saved;
  for (const tag of navigator.languages || [navigator.language || 'en']) {
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
  renderOptions();
  if (state.me) renderAll();
}

// -- formatting and DOM ----------------------------------------------------------------------------

const fmt = {
  int: (n) => new Intl.NumberFormat(state.lang, { maximumFractionDigits: 0 }).format(n || 0),
  money(n, currency) {
    const opts = { minimumFractionDigits: 2, maximumFractionDigits: n && Math.abs(n) < 1 ? 6 : 2 };
    try {
      return new Intl.NumberFormat(state.lang, { style: 'currency', currency: currency || 'USD', ...opts }).format(n || 0);
    } catch (e) {
      return `${new Intl.NumberFormat(state.lang, opts).format(n || 0)} ${currency || ''}`;
    }
  },
  time: (epoch) => (epoch ? new Intl.DateTimeFormat(state.lang, { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(epoch * 1000)) : ''),
  day(day) {
    const [y, m, d] = day.split('-').map(Number);
    return new Intl.DateTimeFormat(state.lang, { dateStyle: 'medium', timeZone: 'UTC' }).format(Date.UTC(y, m - 1, d));
  },
};

const $ = (sel) => document.querySelector(sel);

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

function table(id, columns, rows, emptyKey) {
  const box = $(id);
  if (!rows.length) {
    box.replaceChildren(h('p', { class: 'empty muted' }, t(emptyKey)));
    return;
  }
  const head = h('tr', null, columns.map((c) => h('th', { class: c.cls, scope: 'col' }, t(c.label))));
  const body = rows.map((row) => h('tr', null, columns.map((c) => h('td', { class: c.cls }, c.cell(row)))));
  box.replaceChildren(h('table', { class: 'data' }, h('thead', null, head), h('tbody', null, body)));
}

function notice(text, kind = 'error') {
  const box = $('#notice');
  box.className = `notice ${kind}`;
  box.textContent = text || '';
  box.hidden = !text;
}

// -- the API -------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

async function api(method, path, body) {
  const headers = {};
  if (method !== 'GET') headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(new URL(path, API), {
      method, headers, body: method === 'GET' ? undefined : JSON.stringify(body || {}),
      cache: 'no-store', credentials: 'same-origin', referrerPolicy: 'no-referrer',
    });
  } catch (e) {
    throw new ApiError(0, 'network', t('error.network'));
  }
  let data = null;
  try { data = await response.json(); } catch (e) { /* not JSON */ }
  if (response.ok) return data;
  const error = (data && data.error) || {};
  throw new ApiError(response.status, error.code, error.message, response.headers.get('retry-after'));
}

// A refusal in the reader's language when the code is one a user can act on; else the server's words.
function errorText(e) {
  if (!(e instanceof ApiError)) return String(e.message || e);
  if (e.status === 0) return e.message;
  const key = `error.${e.code}`;
  const text = t(key, { seconds: e.retryAfter || '?', min: state.options.min_password_length });
  return text !== key ? text : t('error.api', { status: e.status, message: e.message });
}

function failed(e) {
  if (e instanceof ApiError && e.code === 'not_signed_in') {
    showLogin(t('auth.expired'));
    return;
  }
  notice(errorText(e));
}

// -- sign-in -------------------------------------------------------------------------------------

function showLogin(message) {
  state.me = null;
  state.owner = 'user';
  $('#dashboard-link').hidden = true;
  $('#register').hidden = true;
  $('#portal').hidden = true;
  $('#sign-out').hidden = true;
  $('#who').hidden = true;
  $('#key-secret').hidden = true;
  $('#key-secret-value').textContent = '';
  forgetPlayground();
  notice('');
  $('#login').hidden = false;
  renderOptions();
  const error = $('#login-error');
  error.textContent = message || '';
  error.hidden = !message;
  $('#login-name').focus();
}

async function onLogin(event) {
  event.preventDefault();
  const name = $('#login-name').value.trim();
  const password = $('#login-password').value;
  try {
    await api('POST', 'login', { name, password });
  } catch (e) {
    showLogin(errorText(e));
    return;
  }
  $('#login-password').value = '';
  await showPortal();
}

// What the sign-in page offers besides a password: single sign-on, registration (GET options).
function renderOptions() {
  const { sso, registration, min_password_length: min } = state.options;
  $('#sso-box').hidden = !sso;
  if (sso) $('#sso-button').textContent = t('auth.sso', { label: sso.label });
  $('#register-offer').hidden = !registration;
  $('#register-intro').textContent = t('register.intro', { min });
}

function showRegister() {
  $('#login').hidden = true;
  $('#register-error').hidden = true;
  $('#register').hidden = false;
  $('#register-name').focus();
}

function registerError(text) {
  const error = $('#register-error');
  error.textContent = text;
  error.hidden = false;
}

async function onRegister(event) {
  event.preventDefault();
  const name = $('#register-name').value.trim();
  const password = $('#register-password').value;
  if (password !== $('#register-confirm').value) { registerError(t('register.mismatch')); return; }
  try {
    await api('POST', 'register', { name, password });
  } catch (e) {
    registerError(errorText(e));
    return;
  }
  for (const id of ['#register-password', '#register-confirm']) $(id).value = '';
  $('#register').hidden = true;
  await showPortal();
}

// A refusal the provider's round trip came back with (?sso_error=code): shown once, then dropped from the URL.
function ssoRefusal() {
  const params = new URLSearchParams(window.location.search);
  const code = params.get('sso_error');
  if (!code) return '';
  window.history.replaceState(null, '', window.location.pathname);
  const key = `error.${code}`;
  const text = t(key);
  return text !== key ? text : t('error.sso_failed');
}

async function onChangePassword(event) {
  event.preventDefault();
  const result = $('#password-result');
  const fresh = $('#password-new').value;
  if (fresh !== $('#password-confirm').value) {
    result.className = 'error';
    result.textContent = t('register.mismatch');
    result.hidden = false;
    return;
  }
  try {
    const body = { new: fresh };
    if (state.me.has_password) body.current = $('#password-current').value;
    const answer = await api('POST', 'password', body);
    for (const id of ['#password-current', '#password-new', '#password-confirm']) $(id).value = '';
    state.me.has_password = true;
    renderPassword();
    result.className = 'ok';
    result.textContent = t('account.done', { count: answer.other_sessions_ended });
  } catch (e) {
    if (e instanceof ApiError && e.code === 'not_signed_in') { failed(e); return; }
    result.className = 'error';
    result.textContent = errorText(e);
  }
  result.hidden = false;
}

async function signOut() {
  try { await api('POST', 'logout'); } catch (e) { /* signed out either way */ }
  showLogin();
}

// -- loading ---------------------------------------------------------------------------------------

async function showPortal() {
  try {
    await loadAll();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) { showLogin(); return; }
    notice(errorText(e));
    return;
  }
  $('#login').hidden = true;
  $('#register').hidden = true;
  $('#portal').hidden = false;
  $('#sign-out').hidden = false;
  $('#who').hidden = false;
}

async function loadAll() {
  const me = await api('GET', 'me');
  if (!(me.team && me.team.manage)) state.owner = 'user';  // no longer a team admin: back to their own
  const [balance, keys, usage, logs] = await Promise.all([
    api('GET', own('balance?limit=20')), api('GET', own('keys')), api('GET', own('usage?since=30d')), api('GET', own('logs?limit=20')),
  ]);
  state.me = me;
  state.balance = balance;
  state.ledger = balance.ledger;
  state.ledgerNext = balance.next_before;
  state.keys = keys.data;
  state.usage = usage.data;
  state.logs = logs.data;
  state.logsNext = logs.next_before;
  state.team = null;
  if (me.team && me.team.manage && state.owner === 'user') state.team = await api('GET', 'balance?owner=team&limit=20');
  notice('');
  renderAll();
}

async function reload() {
  try { await loadAll(); } catch (e) { failed(e); }
}

// -- rendering -------------------------------------------------------------------------------------

function renderAll() {
  const { me } = state;
  const money = state.owner === 'team' ? state.balance : me.balance;
  $('#who').textContent = me.user.name;
  $('#dashboard-link').hidden = me.user.role !== 'operator';
  const manage = Boolean(me.team && me.team.manage);
  $('#owner-switch').hidden = !manage;
  if (manage) {
    $('#owner-team').textContent = t('owner.team', { team: me.team.name });
    $('#owner-user').setAttribute('aria-pressed', String(state.owner === 'user'));
    $('#owner-team').setAttribute('aria-pressed', String(state.owner === 'team'));
  }
  $('#balance-amount').textContent = fmt.money(money.balance, money.currency);
  $('#balance-spent').textContent = fmt.money(money.spent, money.currency);
  $('#me-group').textContent = me.user.group;
  $('#me-role').textContent = t(`role.${me.user.role}`);
  for (const el of document.querySelectorAll('#redeem-form input, #redeem-form button, #key-form input, #key-form select, #key-form button')) {
    el.disabled = !me.can_write;
  }
  renderLedger('#ledger-table', state.ledger, money.currency);
  $('#ledger-more').hidden = !state.ledgerNext;
  $('#team-box').hidden = !state.team;
  if (state.team) {
    $('#team-summary').textContent = t('team.summary', { team: me.team.name, amount: fmt.money(state.team.balance, state.team.currency) });
    renderLedger('#team-ledger', state.team.ledger, state.team.currency);
  }
  renderKeys();
  renderUsage();
  renderLogs();
  renderPlayground();  // its words, and whether its key is still one of the user's
  renderPassword();
}

function renderPassword() {
  const { me } = state;
  const mayChange = me.has_password || me.may_set_password;
  $('#password-form').hidden = !mayChange;
  $('#password-hint').hidden = mayChange;
  $('#password-current-field').hidden = !me.has_password;
  $('#password-current').required = me.has_password;
}

function signed(amount, currency) {
  return h('span', { class: amount < 0 ? 'amount-minus' : 'amount-plus' }, `${amount > 0 ? '+' : ''}${fmt.money(amount, currency)}`);
}

function renderLedger(id, entries, currency) {
  table(id, [
    { label: 'ledger.time', cell: (e) => fmt.time(e.created_at) },
    { label: 'ledger.kind', cell: (e) => t(`ledger.kind.${e.kind}`) },
    { label: 'ledger.amount', cls: 'num', cell: (e) => signed(e.amount, currency) },
    { label: 'ledger.after', cls: 'num', cell: (e) => fmt.money(e.balance_after, currency) },
    { label: 'ledger.reason', cell: (e) => e.reason },
  ], entries, 'ledger.empty');
}

function renderKeys() {
  const { me } = state;
  const team = state.owner === 'team';
  const count = team ? state.keys.filter((k) => k.status !== 'revoked').length : me.keys.count;
  $('#keys-count').textContent = t('keys.count', { count, max: me.keys.max });
  const select = $('#key-models');
  const chosen = new Set([...select.selectedOptions].map((o) => o.value));
  const models = team ? me.team.models || [] : me.models;
  select.replaceChildren(...models.map((m) => h('option', { value: m, selected: chosen.has(m) }, m)));
  table('#keys-table', [
    { label: 'keys.col_name', cell: (k) => k.name },
    { label: 'keys.col_prefix', cls: 'mono', cell: (k) => `${k.prefix}…` },
    { label: 'keys.col_models', cell: (k) => (k.models.length ? k.models.join(', ') : t('keys.all_models')) },
    { label: 'keys.col_status', cell: (k) => h('span', { class: `badge ${k.status === 'active' ? 'good' : 'off'}` }, t(`keys.status.${k.status}`)) },
    { label: 'keys.col_created', cell: (k) => fmt.time(k.created_at) },
    {
      label: 'keys.col_actions', cls: 'actions-cell',
      cell: (k) => (me.can_write && k.status !== 'revoked'
        ? h('button', { type: 'button', class: 'danger small', 'data-revoke': k.id, onclick: () => revoke(k) }, t('keys.revoke'))
        : ''),
    },
  ], state.keys, 'keys.empty');
}

function renderUsage() {
  table('#usage-table', [
    { label: 'usage.day', cell: (r) => fmt.day(r.day) },
    { label: 'usage.model', cell: (r) => r.model || '' },
    { label: 'usage.requests', cls: 'num', cell: (r) => fmt.int(r.requests) },
    { label: 'usage.tokens', cls: 'num', cell: (r) => `${fmt.int(r.prompt_tokens)} / ${fmt.int(r.completion_tokens)}` },
    { label: 'usage.cost', cls: 'num', cell: (r) => fmt.money(r.cost, r.currency) },
  ], state.usage, 'usage.empty');
}

function renderLogs() {
  const currency = (state.owner === 'team' ? state.balance : state.me.balance).currency;
  table('#logs-table', [
    { label: 'logs.time', cell: (r) => fmt.time(r.ts) },
    { label: 'logs.key', cell: (r) => r.key_name },
    { label: 'logs.model', cell: (r) => r.model || '' },
    { label: 'logs.status', cell: (r) => h('span', { class: `badge ${r.status < 400 ? 'good' : 'bad'}` }, String(r.status)) },
    { label: 'logs.tokens', cls: 'num', cell: (r) => `${fmt.int(r.prompt_tokens)} / ${fmt.int(r.completion_tokens)}` },
    { label: 'logs.charged', cls: 'num', cell: (r) => fmt.money(r.charge_micro / 1e6, currency) },
    { label: 'logs.latency', cls: 'num', cell: (r) => `${fmt.int(r.latency_ms)} ms` },
  ], state.logs, 'logs.empty');
  $('#logs-more').hidden = !state.logsNext;
}

// -- actions -------------------------------------------------------------------------------------

async function onRedeem(event) {
  event.preventDefault();
  const input = $('#redeem-code');
  const result = $('#redeem-result');
  try {
    const answer = await api('POST', 'redeem', { code: input.value.trim() });
    input.value = '';
    await loadAll();
    result.className = 'ok';
    result.textContent = t('redeem.done', { amount: fmt.money(answer.entry.amount, answer.balance.currency) });
  } catch (e) {
    if (e instanceof ApiError && e.code === 'not_signed_in') { failed(e); return; }
    result.className = 'error';
    result.textContent = errorText(e);
  }
  result.hidden = false;
}

async function onCreateKey(event) {
  event.preventDefault();
  const name = $('#key-name').value.trim();
  const models = [...$('#key-models').selectedOptions].map((o) => o.value);
  try {
    const created = await api('POST', own('keys'), { name, models });
    $('#key-name').value = '';
    $('#key-secret-value').textContent = created.key;
    $('#key-secret').hidden = false;
    await loadAll();
  } catch (e) {
    failed(e);
  }
}

async function revoke(key) {
  if (!window.confirm(t('keys.revoke_confirm', { name: key.name }))) return;
  try {
    await api('DELETE', own(`keys/${encodeURIComponent(key.id)}`));
    await loadAll();
    notice(t('keys.revoked', { name: key.name }), 'ok');
  } catch (e) {
    failed(e);
  }
}

async function more(kind) {
  try {
    if (kind === 'ledger') {
      const page = await api('GET', own(`balance?limit=20&before=${state.ledgerNext}`));
      state.ledger = state.ledger.concat(page.ledger);
      state.ledgerNext = page.next_before;
    } else {
      const page = await api('GET', own(`logs?limit=20&before=${state.logsNext}`));
      state.logs = state.logs.concat(page.data);
      state.logsNext = page.next_before;
    }
    renderAll();
  } catch (e) {
    failed(e);
  }
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
  });
  $('#login-form').addEventListener('submit', onLogin);
  $('#register-form').addEventListener('submit', onRegister);
  $('#password-form').addEventListener('submit', onChangePassword);
  $('#show-register').addEventListener('click', showRegister);
  $('#show-login').addEventListener('click', () => showLogin());
  $('#sign-out').addEventListener('click', signOut);
  $('#refresh').addEventListener('click', reload);
  for (const button of document.querySelectorAll('#owner-switch [data-owner]')) {
    button.addEventListener('click', () => {
      if (state.owner === button.dataset.owner) return;
      state.owner = button.dataset.owner;
      reload();
    });
  }
  $('#redeem-form').addEventListener('submit', onRedeem);
  $('#key-form').addEventListener('submit', onCreateKey);
  $('#key-secret-done').addEventListener('click', () => {
    $('#key-secret').hidden = true;
    $('#key-secret-value').textContent = '';
  });
  // The new key goes to the playground (memory only) and the dialog lets go of it.
  $('#key-secret-play').addEventListener('click', () => {
    const secret = $('#key-secret-value').textContent;
    $('#key-secret').hidden = true;
    $('#key-secret-value').textContent = '';
    usePlaygroundKey(secret);
  });
  initPlayground({ t, h, fmt, api, reload, ownKeys: () => state.keys, currency: () => (state.me ? state.me.balance.currency : 'USD') });
  $('#ledger-more').addEventListener('click', () => more('ledger'));
  $('#logs-more').addEventListener('click', () => more('logs'));
  try { state.options = await api('GET', 'options'); } catch (e) { /* password sign-in only */ }
  renderOptions();
  const refused = ssoRefusal();
  if (refused) { showLogin(refused); return; }
  await showPortal();
}

start().catch((e) => notice(String(e)));
