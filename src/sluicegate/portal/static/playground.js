// The portal's playground: chat with a model through this gateway's /v1, as any client would, with
// one of the user's own API keys. Keys are stored hashed, so the portal cannot call as a key by itself:
// the key is a new key handed over from the one-time box ("Use in the playground") or one the user
// pastes, held in the page's memory only (a reload forgets it) and sent only to this origin's /v1.
// The call is limited, metered and charged to the key's owner like any other; what it was charged is
// read back from the user's own request log (/portal/api/logs?request_id=), never priced here.
//
// The call, the conversation and the code box are the dashboard's (chatcall.js, chatpage.js); this
// module adds the user's side: their key's models, refusals in their language, the charge.

import { CallError, listModels } from './chatcall.js';  // the dashboard's, served here too (ui.py)
import { ChatSession } from './chatpage.js';

// Gateway refusals a user can act on, said in their language (play.error.<code>); others verbatim.
export const PLAY_ERRORS = ['key_revoked', 'key_expired', 'key_disabled', 'invalid_api_key', 'missing_api_key',
  'account_disabled', 'insufficient_quota', 'model_not_allowed', 'model_not_found', 'rate_limit_exceeded'];

let ui = null;      // what portal.js lends: t, h, fmt, api, reload, ownKeys(), currency()
let play = null;    // the shared ChatSession
let error = null;   // the last refusal shown, to say it again after a language switch

const $ = (sel) => document.querySelector(sel);

// Whether the key is one of the signed-in user's: its first characters against the prefixes of their
// keys (which the portal lists). Only a hint: any key may be used, as with any client, but a call with
// another's key is charged to its owner and is not in this user's log.
function isOwnKey(secret) {
  return ui.ownKeys().some((k) => k.status === 'active' && k.prefix && secret.startsWith(k.prefix));
}

function renderKeyNote() {
  const note = $('#play-key-note');
  const secret = play.key();
  note.hidden = !secret || isOwnKey(secret);
  note.textContent = note.hidden ? '' : ui.t('play.key_not_yours');
}

async function loadModels() {
  renderKeyNote();
  const note = $('#play-models-note');
  const select = $('#play-model');
  const chosen = select.value;
  try {
    const ids = await listModels(play.v1, play.key());
    select.replaceChildren(...ids.map((id) => ui.h('option', { value: id }, id)));
    if (ids.includes(chosen)) select.value = chosen;
    note.textContent = ids.length ? ui.t('play.models_loaded', { count: ui.fmt.int(ids.length) }) : ui.t('play.no_models');
  } catch (e) {
    select.replaceChildren();
    note.textContent = refusal(e);
  }
  note.hidden = false;
  play.renderCode();
}

function refusal(e) {
  if (!(e instanceof CallError)) return ui.t('error.network');
  const text = PLAY_ERRORS.includes(e.code) ? ui.t(`play.error.${e.code}`) : e.detail || e.message;
  return ui.t('play.refused', { status: e.status, text });
}

function showError(shown) {
  error = shown;
  const box = $('#play-error');
  box.textContent = shown === 'pick' ? ui.t('play.pick_model') : shown ? refusal(shown) : '';
  box.hidden = !shown;
}

async function send(event) {
  event.preventDefault();
  const prompt = $('#play-prompt').value.trim();
  if (!prompt || !$('#play-model').value) {
    showError($('#play-model').value ? null : 'pick');
    return;
  }
  showError(null);
  $('#play-prompt').value = '';
  const figures = { status: null, usage: null, latency: null, requestId: null, headers: [], charged: undefined, own: isOwnKey(play.key()) };
  const refused = await play.send(prompt, figures);
  if (refused) showError(refused);
  if (!figures.own || figures.status !== 200 || !figures.requestId) figures.charged = null;
  renderFigures();
  if (figures.charged === undefined) lookUpCharge(figures);
}

// What the call was charged, from the user's own log; then the balance and ledger are drawn again,
// the charge in them.
async function lookUpCharge(figures) {
  const row = await play.untilLogged(figures, async () => (
    await ui.api('GET', `logs?limit=1&request_id=${encodeURIComponent(figures.requestId)}`)).data[0]);
  if (play.last !== figures) return;
  figures.charged = row ? row.charge_micro / 1e6 : null;
  renderFigures();
  if (row) await ui.reload();
}

function renderFigures() {
  const { h, t, fmt } = ui;
  const f = play.last;
  if (!f) {
    $('#play-metrics').replaceChildren(h('p', { class: 'empty muted' }, t('play.no_call')));
    return;
  }
  const u = f.usage;
  let charged = t('play.charged_pending');
  if (f.charged === null) charged = f.own || f.status !== 200 ? '-' : t('play.charged_elsewhere');  // a refused call costs nothing
  else if (f.charged !== undefined) charged = fmt.money(f.charged, ui.currency());
  $('#play-metrics').replaceChildren(
    play.card(t('play.status'), f.status == null ? '-' : h('span', { class: `badge ${f.status < 400 ? 'good' : 'bad'}` }, String(f.status))),
    play.card(t('play.latency'), f.latency == null ? '-' : `${fmt.int(f.latency)} ms`),
    play.card(t('play.tokens'), u ? `${fmt.int(u.prompt_tokens)} + ${fmt.int(u.completion_tokens)}` : '-',
      u ? t('play.tokens_detail', { total: fmt.int(u.total_tokens) }) : null),
    play.card(t('play.charged'), charged),
    play.card(t('play.request_id'), f.requestId ? h('code', { class: 'small' }, f.requestId) : '-'));
}

// -- what portal.js calls --------------------------------------------------------------------------

// Draw everything again (after a language switch).
export function renderPlayground() {
  if (!play) return;
  play.renderChat(false);
  renderFigures();
  play.renderCode();
  renderKeyNote();
  if (error) showError(error);
}

// A key just created, handed over by the one-time box (memory only); the view scrolls to it.
export async function usePlaygroundKey(secret) {
  $('#play-key').value = secret;
  $('#playground').scrollIntoView();
  await loadModels();
}

// Signing out forgets the key and the conversation.
export function forgetPlayground() {
  if (!play) return;
  play.clear(true);
  $('#play-models-note').hidden = true;
  showError(null);
  renderPlayground();
}

export function initPlayground(lent) {
  ui = lent;
  play = new ChatSession({ t: ui.t, h: ui.h, v1: new URL('../v1/', document.baseURI) });
  play.wire({ send, loadModels, copied: { done: 'play.copied', failed: 'play.copy_failed' } });
  renderPlayground();
}
