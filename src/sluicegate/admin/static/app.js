// Sluicegate dashboard: one page over the admin API, no framework, no build step, no external asset.
// This module signs in and out, switches pages, and starts everything; each page is its own module
// and the shared parts are in core.js (read its header for the rules every module keeps).

import { $, KEY_STORE, LANG_STORE, api, applyLanguage, fill, markUpdated, notice, pickLanguage, showError, state, t } from './core.js';
import { initAudit, loadAudit } from './audit.js';
import { initCatalog, loadModels, loadUpstreams } from './catalog.js';
import { loadChannels } from './channels.js';
import { initKeys, loadKeys } from './keys.js';
import { initLogs, loadLogs, stopLogTimer } from './logs.js';
import { loadOverview } from './overview.js';
import { forgetPlayground, initPlayground, loadPlayground, usePlaygroundKey } from './playground.js';
import { initSelfhost, loadSelfhost } from './selfhost.js';
import { initUsage, loadUsage } from './usage.js';

const PAGES = ['overview', 'playground', 'keys', 'usage', 'logs', 'channels', 'upstreams', 'models', 'audit', 'selfhost'];
const LOADERS = {
  overview: loadOverview, playground: loadPlayground, keys: loadKeys, usage: loadUsage, logs: loadLogs,
  channels: loadChannels, upstreams: loadUpstreams, models: loadModels, audit: loadAudit, selfhost: loadSelfhost,
};

// -- sign-in -----------------------------------------------------------------------------------

function signedIn() {
  return Boolean(sessionStorage.getItem(KEY_STORE)) || Boolean(state.operator);
}

// An operator signed in to the portal: the admin API answers GET /admin/session for their cookie.
async function operatorSession() {
  if (sessionStorage.getItem(KEY_STORE)) return null;
  try {
    const s = await api('GET', 'session');
    return s && s.via === 'operator_session' ? s.actor.replace(/^operator:/, '') : null;
  } catch (e) {
    return null;
  }
}

function showWho() {
  const who = $('#who');
  who.textContent = state.operator ? t('auth.as_operator', { name: state.operator }) : '';
  who.hidden = !state.operator;
}

function signOut(message) {
  if (state.operator) {  // ends the portal session too: both its cookies are cleared
    fetch(new URL('../../portal/api/logout', document.baseURI), {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}', credentials: 'same-origin',
    }).catch(() => {});
    state.operator = null;
    showWho();
  }
  sessionStorage.removeItem(KEY_STORE);
  stopLogTimer();
  forgetPlayground();
  for (const id of ['overview-status', 'overview-today', 'overview-channels', 'keys-table', 'usage-chart',
    'usage-table', 'logs-table', 'channels-table', 'channels-keys', 'channels-unavailable', 'play-chat',
    'play-metrics', 'play-headers', 'upstreams-table', 'models-table', 'audit-table', 'selfhost-table',
    'selfhost-total']) {
    fill($(`#${id}`));
  }
  state.rendered = {};
  state.keys = [];
  state.live = null;
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
  return LOADERS[page]().then(() => markUpdated(page)).catch(showError);
}

// -- start -------------------------------------------------------------------------------------

async function start() {
  const response = await fetch(new URL('i18n.json', document.baseURI), { cache: 'no-cache' });
  state.dict = await response.json();
  state.lang = pickLanguage();
  state.reload = load;
  state.onUnauthorized = signOut;
  applyLanguage();

  $('#lang-toggle').addEventListener('click', () => {
    state.lang = state.lang === 'en' ? 'zh-CN' : 'en';
    localStorage.setItem(LANG_STORE, state.lang);
    applyLanguage();
    showWho();
    if (signedIn()) markUpdated(state.page);
  });
  $('#sign-out').addEventListener('click', () => signOut());
  $('#login-form').addEventListener('submit', onLogin);
  for (const button of document.querySelectorAll('[data-refresh]')) button.addEventListener('click', () => load(state.page));
  for (const button of document.querySelectorAll('dialog [data-close]')) button.addEventListener('click', (e) => e.target.closest('dialog').close());
  initKeys((secret) => {
    usePlaygroundKey(secret);
    location.hash = '#playground';
  });
  initUsage();
  initLogs();
  initPlayground();
  initCatalog();
  initAudit();
  let resized = null;  // the usage chart is drawn at its box's width: redraw after a resize settles
  window.addEventListener('resize', () => {
    clearTimeout(resized);
    resized = setTimeout(() => { if (state.page === 'usage' && state.rendered.usage) state.rendered.usage(); }, 200);
  });
  initSelfhost();
  window.addEventListener('hashchange', route);
  state.operator = await operatorSession();
  showWho();
  route();
}

start().catch((e) => notice(String(e)));
