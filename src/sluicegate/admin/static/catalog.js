// Upstreams and model routes, changed live through the admin API (GET|POST /admin/upstreams,
// GET|PATCH|DELETE /admin/upstreams/{name}, the same under /admin/models). Bodies mirror the YAML:
// an upstream is {name, preset, base_url, api_key, rpm, tpm}, a route {name, channels: [{upstream,
// model, weight, priority}]}. Provider keys are write-only: the API shows them masked and this page
// sends one only when the operator types a new one. Entries from the YAML file are shown read-only.
// On a gateway without this API (the endpoints answer 404) the pages say so instead.

import { $, ApiError, api, badge, empty, fill, fmt, h, hasLiveConfig, notice, showError, state, t, table } from './core.js';

// Preset names the gateway knows (providers/presets.py); the form offers them, the API checks them.
const PRESETS = ['', 'openai', 'groq', 'deepseek', 'moonshot', 'moonshot-intl', 'qwen', 'qwen-intl', 'zhipu',
  'doubao', 'siliconflow', 'openrouter', 'mistral', 'together', 'xai', 'gemini-openai', 'bedrock', 'vertex', 'gemini',
  'ollama', 'vllm', 'lmstudio', 'llamacpp', 'azure', 'mock', 'anthropic', 'deepseek-anthropic', 'moonshot-anthropic',
  'moonshot-intl-anthropic', 'zhipu-anthropic', 'zai-anthropic', 'qwen-anthropic', 'qwen-intl-anthropic',
  'minimax-anthropic', 'minimax-intl-anthropic'];
const editing = { upstream: null, model: null };
const cache = { upstreams: [], models: [] };

export function needsLive(container) {
  fill(container, h('div', { class: 'notice warn-box' }, h('strong', null, t('live.missing_title')), ' ', t('live.missing')));
}

function toggleLiveButtons(live) {
  for (const el of document.querySelectorAll('[data-needs-live]')) el.hidden = !live;
}

function sourceBadge(item) {
  return item.source === 'file' ? badge('off', t('live.from_file')) : badge('good', t('live.from_store'));
}

function enabledBadge(item) {
  return item.enabled === false ? badge('bad', t('state.disabled')) : badge('good', t('live.enabled'));
}

function rowActions(kind, item, onEdit) {
  if (item.source === 'file') return h('span', { class: 'muted small' }, t('live.read_only'));
  const path = `${kind}/${encodeURIComponent(item.name)}`;
  return h('div', { class: 'row-actions' },
    h('button', { type: 'button', class: 'small ghost', onclick: () => onEdit(item) }, t('keys.edit')),
    h('button', { type: 'button', class: 'small ghost', onclick: () => change('PATCH', path, { enabled: item.enabled === false }, item.enabled === false ? 'live.enabled_done' : 'live.disabled_done', item.name) },
      item.enabled === false ? t('keys.enable') : t('keys.disable')),
    h('button', { type: 'button', class: 'small danger', onclick: () => confirmDelete(path, item.name) }, t('live.delete')));
}

async function change(method, path, body, doneKey, name) {
  try {
    await api(method, path, body);
    notice(t(doneKey, { name }), 'ok');
    await state.reload(state.page);
  } catch (e) { showError(e); }
}

function confirmDelete(path, name) {
  const dialog = $('#confirm-dialog');
  $('#confirm-title').textContent = t('live.delete_title', { name });
  $('#confirm-text').textContent = t('live.delete_text', { name });
  const ok = $('#confirm-ok');
  ok.textContent = t('live.delete');
  ok.onclick = () => { dialog.close(); change('DELETE', path, undefined, 'live.deleted_done', name); };
  dialog.showModal();
  $('#confirm-cancel').focus();
}

// -- upstreams -----------------------------------------------------------------------------------

export async function loadUpstreams() {
  if (!(await hasLiveConfig())) {
    toggleLiveButtons(false);
    state.rendered.upstreams = () => needsLive($('#upstreams-table'));
    needsLive($('#upstreams-table'));
    return;
  }
  toggleLiveButtons(true);
  cache.upstreams = (await api('GET', 'upstreams')).data;
  state.rendered.upstreams = renderUpstreams;
  renderUpstreams();
}

function maskedKey(u) {
  if (u.api_key) return h('code', null, u.api_key);
  if (u.api_keys && u.api_keys.length) return h('code', null, u.api_keys.join(', '));
  return h('span', { class: 'muted' }, t('upstreams.no_key'));
}

function renderUpstreams() {
  const rows = cache.upstreams;
  fill($('#upstreams-table'), rows.length ? table([
    { label: t('keys.col_name'), cell: (u) => h('div', null, h('strong', { class: 'mono' }, u.name), h('div', null, sourceBadge(u))) },
    { label: t('channels.col_state'), cell: enabledBadge },
    { label: t('upstreams.preset'), cell: (u) => h('span', { class: 'mono' }, u.preset || u.kind || '-') },
    { label: t('upstreams.base_url'), cell: (u) => h('span', { class: 'mono small' }, u.base_url || '-') },
    { label: t('upstreams.api_key'), cell: maskedKey },
    { label: t('keys.col_limits'), cell: (u) => [u.rpm ? `${t('limit.rpm')}: ${fmt.int(u.rpm)}` : null, u.tpm ? `${t('limit.tpm')}: ${fmt.int(u.tpm)}` : null].filter(Boolean).join('; ') || h('span', { class: 'muted' }, t('keys.no_limits')) },
    { label: t('upstreams.used_by'), cell: (u) => (u.used_by && u.used_by.length ? h('span', { class: 'mono small' }, u.used_by.join(', ')) : h('span', { class: 'muted' }, '-')) },
    { label: t('keys.col_actions'), cls: 'actions-cell', cell: (u) => rowActions('upstreams', u, openUpstreamDialog) },
  ], rows) : empty(t('upstreams.none')));
}

function openUpstreamDialog(u) {
  editing.upstream = u || null;
  const form = $('#upstream-form');
  form.reset();
  const f = form.elements;
  fill(f.preset, PRESETS.map((p) => h('option', { value: p }, p || t('upstreams.no_preset'))));
  f.name.readOnly = Boolean(u);
  $('#upstream-dialog-title').textContent = u ? t('upstreams.edit_title', { name: u.name }) : t('upstreams.create_title');
  $('#upstream-form-submit').textContent = u ? t('common.save') : t('upstreams.create');
  $('#upstream-key-hint').textContent = u && (u.api_key || (u.api_keys || []).length)
    ? t('upstreams.key_keep', { masked: u.api_key || u.api_keys.join(', ') }) : t('upstreams.key_hint');
  $('#upstream-form-error').hidden = true;
  if (u) {
    f.name.value = u.name;
    f.preset.value = u.preset || '';
    f.base_url.value = u.base_url || '';
    f.rpm.value = u.rpm || '';
    f.tpm.value = u.tpm || '';
  }
  $('#upstream-dialog').showModal();
  (u ? f.base_url : f.name).focus();
}

function upstreamBody(form, creating) {
  const f = form.elements;
  const body = {};
  if (creating) body.name = f.name.value.trim();
  if (f.preset.value) body.preset = f.preset.value;
  else if (!creating) body.preset = null;
  if (f.base_url.value.trim()) body.base_url = f.base_url.value.trim();
  if (f.api_key.value.trim()) body.api_key = f.api_key.value.trim();  // write-only: sent only when typed
  for (const name of ['rpm', 'tpm']) {
    const value = parseInt(f[name].value, 10);
    if (value > 0) body[name] = value;
    else if (!creating) body[name] = null;
  }
  return body;
}

// Create (POST /admin/{kind}) or change (PATCH /admin/{kind}/{name}) from a dialog; errors stay in it.
async function saveEntry(kind, current, makeBody, dialogId) {
  const error = $(`#${dialogId.replace('-dialog', '-form-error')}`);
  error.hidden = true;
  try {
    const body = makeBody(!current);
    if (current) await api('PATCH', `${kind}/${encodeURIComponent(current.name)}`, body);
    else await api('POST', kind, body);
    $(`#${dialogId}`).close();
    notice(t(current ? 'live.updated_done' : 'live.created_done', { name: current ? current.name : body.name }), 'ok');
    await state.reload(kind);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) { $(`#${dialogId}`).close(); return; }
    error.textContent = e.message;
    error.hidden = false;
  }
}

// -- model routes --------------------------------------------------------------------------------

export async function loadModels() {
  if (!(await hasLiveConfig())) {
    toggleLiveButtons(false);
    state.rendered.models = () => needsLive($('#models-table'));
    needsLive($('#models-table'));
    return;
  }
  toggleLiveButtons(true);
  const [models, upstreams] = await Promise.all([api('GET', 'models'), api('GET', 'upstreams')]);
  cache.models = models.data;
  cache.upstreams = upstreams.data;
  state.rendered.models = renderModels;
  renderModels();
}

function channelList(m) {
  return h('div', { class: 'chips' }, (m.channels || []).map((c) => h('span', { class: 'chip mono', title: t('models.channel_title', { priority: c.priority ?? 0, weight: c.weight ?? 1 }) },
    `${c.upstream}/${c.model || m.name}`, h('span', { class: 'muted' }, ` p${c.priority ?? 0} w${c.weight ?? 1}`))));
}

function renderModels() {
  const rows = cache.models;
  fill($('#models-table'), rows.length ? table([
    { label: t('models.name'), cell: (m) => h('div', null, h('strong', { class: 'mono' }, m.name), h('div', null, sourceBadge(m))) },
    { label: t('channels.col_state'), cell: enabledBadge },
    { label: t('models.channels'), cell: channelList },
    { label: t('keys.col_actions'), cls: 'actions-cell', cell: (m) => rowActions('models', m, openModelDialog) },
  ], rows) : empty(t('models.none')));
}

function channelRow(c) {
  return h('div', { class: 'channel-row' },
    h('label', { class: 'field' }, h('span', null, t('channels.col_upstream')),
      h('input', { name: 'upstream', type: 'text', required: true, list: 'model-upstreams', spellcheck: 'false', value: c.upstream || '' })),
    h('label', { class: 'field' }, h('span', null, t('models.upstream_model')),
      h('input', { name: 'model', type: 'text', spellcheck: 'false', value: c.model || '', placeholder: t('models.same_name') })),
    h('label', { class: 'field narrow' }, h('span', null, t('models.weight')),
      h('input', { name: 'weight', type: 'number', min: '0', step: '1', value: c.weight ?? 1 })),
    h('label', { class: 'field narrow' }, h('span', null, t('models.priority')),
      h('input', { name: 'priority', type: 'number', step: '1', value: c.priority ?? 0 })),
    h('button', { type: 'button', class: 'small ghost remove', title: t('models.remove_channel'), 'aria-label': t('models.remove_channel'),
      onclick: (e) => e.target.closest('.channel-row').remove() }, '×'));
}

function openModelDialog(m) {
  editing.model = m || null;
  const form = $('#model-form');
  form.reset();
  form.elements.name.readOnly = Boolean(m);
  $('#model-dialog-title').textContent = m ? t('models.edit_title', { name: m.name }) : t('models.create_title');
  $('#model-form-submit').textContent = m ? t('common.save') : t('models.create');
  $('#model-form-error').hidden = true;
  fill($('#model-upstreams'), cache.upstreams.map((u) => h('option', { value: u.name })));
  if (m) form.elements.name.value = m.name;
  const channels = m ? m.channels.map((c) => ({ ...c, model: c.model === m.name ? '' : c.model })) : [{}];
  fill($('#model-channels'), channels.map(channelRow));
  $('#model-dialog').showModal();
  (m ? $('#model-channels input') : form.elements.name).focus();
}

function modelBody(creating) {
  const channels = [...document.querySelectorAll('#model-channels .channel-row')].map((row) => {
    const value = (name) => row.querySelector(`[name="${name}"]`).value.trim();
    const c = { upstream: value('upstream'), weight: parseInt(value('weight') || '1', 10), priority: parseInt(value('priority') || '0', 10) };
    if (value('model')) c.model = value('model');
    return c;
  });
  const body = { channels };
  if (creating) body.name = $('#model-form').elements.name.value.trim();
  return body;
}

export function initCatalog() {
  $('#upstreams-new').addEventListener('click', () => openUpstreamDialog(null));
  $('#upstream-form').addEventListener('submit', (e) => {
    e.preventDefault();
    saveEntry('upstreams', editing.upstream, (creating) => upstreamBody(e.target, creating), 'upstream-dialog');
  });
  $('#upstream-dialog').addEventListener('close', () => { $('#upstream-form').elements.api_key.value = ''; });
  $('#models-new').addEventListener('click', async () => {
    try { cache.upstreams = (await api('GET', 'upstreams')).data; } catch (e) { showError(e); return; }
    openModelDialog(null);
  });
  $('#model-form').addEventListener('submit', (e) => {
    e.preventDefault();
    saveEntry('models', editing.model, modelBody, 'model-dialog');
  });
  $('#model-add-channel').addEventListener('click', () => $('#model-channels').append(channelRow({})));
}
