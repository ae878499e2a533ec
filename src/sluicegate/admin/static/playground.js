// Playground: chat with a model through this gateway's own /v1 API, as a client would, with a
// client key the operator pastes (issued keys are stored hashed, so the admin cannot reuse one; a key
// just created on the Keys page can be handed over from its one-time dialog). The key stays in the
// page's memory: never stored, never sent anywhere but /v1 on this origin. The admin key is never
// used here. The call, the conversation and the code box are shared with the self-service portal's
// playground (chatcall.js, chatpage.js); the figures here are the operator's: the gateway's own
// timings and the cost from the request log.

import { $, V1, api, empty, fill, fmt, h, state, t, table } from './core.js';
import { statusKind } from './logs.js';
import { listModels } from './chatcall.js';
import { ChatSession } from './chatpage.js';

const play = new ChatSession({ t, h, v1: V1 });

async function loadModels() {
  const note = $('#play-models-note');
  note.hidden = true;
  const select = $('#play-model');
  const chosen = select.value;
  try {
    const ids = await listModels(V1, play.key());
    fill(select, ids.map((id) => h('option', { value: id }, id)));
    if (ids.includes(chosen)) select.value = chosen;
    note.textContent = ids.length ? t('play.models_loaded', { count: fmt.int(ids.length) }) : t('play.no_models');
  } catch (e) {
    note.textContent = t('play.models_failed', { message: e.detail || e.message });
  }
  note.hidden = false;
  play.renderCode();
}

async function send(event) {
  event.preventDefault();
  const prompt = $('#play-prompt').value.trim();
  const model = $('#play-model').value;
  if (!prompt || !model) {
    showPlayError(model ? '' : t('play.pick_model'));
    return;
  }
  showPlayError('');
  $('#play-prompt').value = '';
  const figures = { model, status: null, ttft: null, latency: null, usage: null, headers: [], requestId: null, cost: undefined };
  const refused = await play.send(prompt, figures);
  if (refused) showPlayError(refused.message);
  renderFigures();
  if (figures.requestId) lookUpCost(figures);
}

// The cost is what the gateway logged for this request id (priced by its own table).
async function lookUpCost(figures) {
  const row = await play.untilLogged(figures, async () => (
    await api('GET', `requests?request_id=${encodeURIComponent(figures.requestId)}&limit=1`)).data[0], 8);
  if (play.last !== figures) return;
  if (row) {
    figures.cost = row.currency ? fmt.money(row.cost, row.currency) : t('usage.unpriced');
    figures.logId = row.id;
    figures.serverTtft = row.ttft_ms;
    figures.serverLatency = row.latency_ms;
  } else figures.cost = null;
  renderFigures();
}

function showPlayError(text) {
  const box = $('#play-error');
  box.textContent = text;
  box.hidden = !text;
}

function renderFigures() {
  const f = play.last;
  if (!f) {
    fill($('#play-metrics'), empty(t('play.no_call')));
    fill($('#play-headers'));
    return;
  }
  const ms = (v) => (v == null ? '-' : `${fmt.num(v, 0)} ms`);
  const u = f.usage;
  fill($('#play-metrics'),
    play.card(t('logs.col_status'), f.status == null ? '-' : h('span', { class: `badge ${statusKind(f.status)}` }, String(f.status))),
    play.card(t('play.latency'), ms(f.latency), f.serverLatency != null ? t('play.at_gateway', { ms: fmt.num(f.serverLatency, 0) }) : null),
    play.card(t('play.ttft'), ms(f.ttft), f.serverTtft != null ? t('play.first_byte_at_gateway', { ms: fmt.num(f.serverTtft, 0) }) : null),
    play.card(t('play.usage'), u ? `${fmt.int(u.prompt_tokens)} + ${fmt.int(u.completion_tokens)}` : '-',
      u ? t('play.usage_detail', { total: fmt.int(u.total_tokens) }) : null),
    play.card(t('play.cost'), f.cost === undefined ? t('play.cost_pending') : f.cost === null ? '-' : f.cost),
    play.card(t('play.request_id'), f.requestId ? h('code', { class: 'small' }, f.requestId) : '-'));
  fill($('#play-headers'), f.headers.length ? table([
    { label: t('play.header'), cell: (r) => h('code', null, r[0]) },
    { label: t('play.value'), cell: (r) => h('span', { class: 'mono small' }, r[1]) },
  ], f.headers) : empty(t('play.no_call')));
}

// -- wiring --------------------------------------------------------------------------------------

export async function loadPlayground() {
  state.rendered.playground = () => { play.renderChat(false); renderFigures(); play.renderCode(); };
  if (!$('#play-model').options.length && play.key()) await loadModels();
  state.rendered.playground();
}

// A key just created on the Keys page, handed over by its one-time dialog (memory only).
export function usePlaygroundKey(secret) {
  $('#play-key').value = secret;
  fill($('#play-model'));
}

export function forgetPlayground() {
  play.clear(true);
}

export function initPlayground() {
  play.wire({ send, loadModels, copied: { done: 'secret.copied_short', failed: 'secret.copy_failed' } });
}
