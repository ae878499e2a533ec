// The page part of a playground that the dashboard (playground.js) and the self-service portal
// (portal/static/playground.js) draw the same way, over the same element ids: the settings form
// (#play-settings with key, model, system, temperature, max_tokens, stream), the chat (#play-chat,
// #play-form, #play-prompt, #play-send, #play-stop, #play-clear), the models button
// (#play-models-load) and the code box (#play-code, #play-code-langs, #play-code-key, #play-code-copy).
// It keeps the conversation and the call in flight; each page keeps its own figures, errors and
// words (its t() and h() are lent here). The key is read from #play-key when a call is made: it lives
// in that field only, in the page's memory.

import { callChat, chatBody, codeFor, copyText } from './chatcall.js';

const $ = (sel) => document.querySelector(sel);

export class ChatSession {
  constructor({ t, h, v1 }) {
    this.t = t;
    this.h = h;
    this.v1 = v1;
    this.messages = [];     // the conversation so far: {role, content, stopped}
    this.controller = null; // AbortController of the call in flight
    this.last = null;       // the last call's figures (the page's object, filled by callChat)
    this.lastBody = null;   // the body of the last call, which "the same call in code" repeats
    this.codeLang = 'curl';
  }

  key() {
    return $('#play-key').value.trim();
  }

  settings() {
    const f = $('#play-settings').elements;
    return chatBody({
      model: f.model.value, system: f.system.value.trim(), temperature: f.temperature.value.trim(),
      maxTokens: f.max_tokens.value.trim(), stream: f.stream.checked,
    }, []);
  }

  // Send the prompt with the conversation so far, drawing the answer as it comes; `figures` is filled
  // in (see callChat). Returns the refusal (a CallError, or a network error) or null when the answer
  // came or the user stopped it; a refused prompt is taken back so it can be sent again.
  async send(prompt, figures) {
    const base = this.settings();
    this.messages.push({ role: 'user', content: prompt });
    const body = { ...base, messages: [...base.messages, ...this.messages] };
    this.lastBody = body;
    const answer = { role: 'assistant', content: '' };
    this.messages.push(answer);
    this.last = figures;
    this.controller = new AbortController();
    this.setBusy(true);
    this.renderChat(true);
    try {
      await callChat(this.v1, this.key(), body, {
        signal: this.controller.signal, figures, onText: (text) => { answer.content += text; this.renderChat(true); },
      });
      return null;
    } catch (e) {
      if (e.name === 'AbortError') {
        answer.stopped = true;
        return null;
      }
      if (!answer.content) this.messages.splice(-2, 2);
      return e;
    } finally {
      this.controller = null;
      this.setBusy(false);
      this.renderChat(false);
      this.renderCode();
    }
  }

  stop() {
    if (this.controller) this.controller.abort();
  }

  setBusy(busy) {
    $('#play-send').disabled = busy;
    $('#play-stop').disabled = !busy;
  }

  // Forget the conversation (and, with `all`, the last call and the key: signing out).
  clear(all = false) {
    this.stop();
    this.messages = [];
    this.lastBody = null;
    if (all) {
      this.last = null;
      $('#play-key').value = '';
      $('#play-model').replaceChildren();
    }
    this.renderChat(false);
    this.renderCode();
  }

  // Ask `find()` for the call's log row every half second while it is still the last call: the
  // gateway writes its log in batches, about a second after a call ends. The row, or null.
  async untilLogged(figures, find, seconds = 10) {
    const deadline = Date.now() + seconds * 1000;
    while (Date.now() < deadline && this.last === figures) {
      let row;
      try { row = await find(); } catch (e) { return null; }
      if (row) return row;
      await new Promise((resolve) => { setTimeout(resolve, 500); });
    }
    return null;
  }

  renderChat(typing) {
    const { h, t } = this;
    const box = $('#play-chat');
    if (!this.messages.length) {
      box.replaceChildren(h('p', { class: 'empty muted' }, t('play.empty')));
      return;
    }
    const last = this.messages.length - 1;
    box.replaceChildren(...this.messages.map((m, i) => h('div', { class: `msg ${m.role}${typing && i === last ? ' typing' : ''}` },
      h('div', { class: 'msg-role' }, t(`play.role_${m.role}`)),
      h('div', { class: 'msg-text' }, m.stopped ? `${m.content} ${t('play.stopped')}`.trim() : m.content))));
    box.scrollTop = box.scrollHeight;
  }

  // One figure of the last call, as a card.
  card(label, value, detail) {
    const { h } = this;
    return h('div', { class: 'card' }, h('div', { class: 'card-label' }, label),
      h('div', { class: 'card-value text' }, value), detail ? h('div', { class: 'card-detail muted' }, detail) : null);
  }

  // The body "the same call in code" shows: the call just made, or the one the prompt would make.
  draft() {
    const base = this.settings();
    const pending = $('#play-prompt').value.trim();
    if (!pending && this.lastBody) return this.lastBody;
    const convo = this.messages.filter((m) => m.content);
    const messages = [...base.messages, ...convo, ...(pending ? [{ role: 'user', content: pending }] : [])];
    if (!messages.some((m) => m.role === 'user')) messages.push({ role: 'user', content: this.t('play.sample_prompt') });
    return { ...base, model: base.model || 'MODEL', messages };
  }

  renderCode() {
    $('#play-code').textContent = codeFor(this.codeLang, this.draft(), this.key(), $('#play-code-key').checked, this.v1);
    for (const b of document.querySelectorAll('#play-code-langs [data-lang]')) b.setAttribute('aria-selected', String(b.dataset.lang === this.codeLang));
  }

  // The page's handlers on the shared elements: `send(event)` for the form, `loadModels()` for the
  // models button and a changed key; `copied` names the words for the copy button's two outcomes.
  wire({ send, loadModels, copied }) {
    $('#play-form').addEventListener('submit', send);
    $('#play-stop').addEventListener('click', () => this.stop());
    $('#play-clear').addEventListener('click', () => this.clear());
    $('#play-models-load').addEventListener('click', loadModels);
    $('#play-key').addEventListener('change', loadModels);
    $('#play-prompt').addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) $('#play-form').requestSubmit();
    });
    const redraw = () => this.renderCode();
    $('#play-settings').addEventListener('input', redraw);
    $('#play-prompt').addEventListener('input', redraw);
    $('#play-code-key').addEventListener('change', redraw);
    $('#play-code-copy').addEventListener('click', async () => {
      const button = $('#play-code-copy');
      button.textContent = this.t((await copyText($('#play-code'))) ? copied.done : copied.failed);
      setTimeout(() => { button.textContent = this.t('play.copy'); }, 2000);
    });
    for (const b of document.querySelectorAll('#play-code-langs [data-lang]')) {
      b.addEventListener('click', () => { this.codeLang = b.dataset.lang; this.renderCode(); });
    }
  }
}
