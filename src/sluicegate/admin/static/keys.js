// Keys: list, create (the secret shown once), edit limits and access, enable/disable, revoke.

import { $, ApiError, LIMITS, api, badge, empty, fill, fmt, h, notice, showError, state, t, table } from './core.js';

const editing = { key: null };  // the key being edited, or null when creating
const STATUS_KIND = { active: 'good', disabled: 'warn', expired: 'off', revoked: 'bad' };

// Spend against each budget and current rate use, from the limiter's own counters (GET /admin/quotas).
function useMeters(k) {
  const held = (state.quotas || {})[k.id];
  const set = LIMITS.filter((name) => k.limits[name] != null);
  if (!set.length) return h('span', { class: 'muted' }, t('keys.no_limits'));
  return h('div', { class: 'meters' }, set.map((name) => {
    const q = held && held[name];
    const money = name.startsWith('budget_usd');
    const show = (v) => (money ? fmt.money(v, 'USD') : fmt.num(v, v < 10 && v % 1 ? 1 : 0));
    const limit = q ? q.limit : k.limits[name];
    const used = q ? q.used : null;
    const ratio = used == null || !limit ? 0 : used / limit;
    return h('div', { class: `meter-row${ratio >= 1 ? ' full' : ratio >= 0.8 ? ' high' : ''}` },
      h('span', { class: 'meter-label' }, t(`limit.${name}`)),
      h('meter', { min: '0', max: String(limit || 1), low: String((limit || 1) * 0.5), high: String((limit || 1) * 0.8), optimum: '0', value: String(Math.min(used || 0, limit || 1)) }),
      h('span', { class: 'meter-text' }, used == null ? `- / ${show(limit)}` : t('keys.used_of', { used: show(used), limit: show(limit) })));
  }), state.quotasShared ? null : h('div', { class: 'muted small' }, t('keys.per_worker')));
}

function listOr(list, fallback) {
  return list.length ? h('span', { class: 'mono' }, list.join(', ')) : h('span', { class: 'muted' }, fallback);
}

export async function loadKeys() {
  const all = $('#keys-show-revoked').checked;
  const [answer, quotas] = await Promise.all([
    api('GET', `keys${all ? '?all=true' : ''}`),
    api('GET', 'quotas').catch(() => null),  // an older gateway or an unreachable limiter: no meters
  ]);
  state.keys = answer.data;
  state.quotas = quotas ? Object.fromEntries(quotas.data.map((q) => [q.key_id, q.limits])) : {};
  state.quotasShared = quotas ? quotas.shared || quotas.workers <= 1 : true;
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
    { label: t('keys.col_name'), cell: (k) => h('div', null, h('strong', null, k.name), h('div', null, h('code', { class: 'small', title: t('keys.col_prefix') }, `${k.prefix}…`)),
      h('div', { class: 'muted small mono' }, k.id),
      k.owner ? h('div', { class: 'muted small' }, t('keys.owner', { owner: k.owner })) : null) },
    { label: t('keys.col_status'), cell: (k) => badge(STATUS_KIND[k.status] || 'off', t(`status.${k.status}`)) },
    { label: t('keys.col_use'), cell: (k) => useMeters(k) },
    { label: t('keys.col_access'), cell: (k) => h('div', { class: 'access' },
      h('div', null, h('span', { class: 'muted' }, `${t('field.models')}: `), listOr(k.models, t('keys.all_models'))),
      h('div', null, h('span', { class: 'muted' }, `${t('field.endpoints')}: `), listOr(k.endpoints, t('keys.all_endpoints'))),
      h('div', null, h('span', { class: 'muted' }, `${t('field.networks')}: `), listOr(k.networks, t('keys.anywhere')))) },
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
    await state.reload('keys');
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
      await state.reload('keys');
    } catch (e) { showError(e); }
  };
  dialog.showModal();
  $('#confirm-cancel').focus();
}

function openKeyDialog(k) {
  editing.key = k || null;
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
  const creating = !editing.key;
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
      await api('PATCH', `keys/${encodeURIComponent(editing.key.id)}`, body);
      $('#key-dialog').close();
      notice(t('keys.updated_done', { name: body.name }), 'ok');
    }
    await state.reload('keys');
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) { $('#key-dialog').close(); return; }
    error.textContent = e.message;
    error.hidden = false;
  }
}

function showSecret(secret) {
  // The secret dialog can hand the new key to the playground (memory only) before it leaves the page.
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

export function initKeys(onUseInPlayground) {
  $('#secret-play').addEventListener('click', () => {
    const secret = $('#secret-value').value;
    closeSecret();
    onUseInPlayground(secret);
  });
  $('#keys-show-revoked').addEventListener('change', () => state.reload('keys'));
  $('#keys-new').addEventListener('click', () => openKeyDialog(null));
  $('#key-form').addEventListener('submit', onKeySubmit);
  $('#secret-copy').addEventListener('click', copySecret);
  $('#secret-done').addEventListener('click', closeSecret);
  $('#secret-dialog').addEventListener('cancel', (e) => { e.preventDefault(); });  // Esc must not lose the secret unread
  $('#secret-dialog').addEventListener('close', () => { $('#secret-value').value = ''; });
  $('#confirm-cancel').addEventListener('click', () => $('#confirm-dialog').close());
}
