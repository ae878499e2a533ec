// Playground: chat with a model through this gateway's own /v1 API, as a client would, with a
// client key the operator pastes (issued keys are stored hashed, so the admin cannot reuse one; a key
// just created on the Keys page can be handed over from its one-time dialog). The key stays in this
// module's memory: never stored, never sent anywhere but /v1 on this origin. The admin key is never
// used here. Streaming is read with fetch + ReadableStream and parsed as server-sent events.

import { $, V1, api, empty, fill, fmt, h, state, t, table } from './core.js';
import { statusKind } from './logs.js';

const play = {
  key: '',            // the client key, in memory only
  messages: [],       // the conversation so far: {role, content}
  controller: null,   // AbortController of the call in flight
  last: null,         // the last call's figures, for re-rendering after a language switch
  lastBody: null,     // the body of the last call, which "the same call in code" repeats
  codeLang: 'curl',
};

// -- the request -------------------------------------------------------------------------------

function settings() {
  const f = $('#play-settings').elements;
  const body = { model: f.model.value, messages: [] };
  if (f.system.value.trim()) body.messages.push({ role: 'system', content: f.system.value.trim() });
  const temperature = f.temperature.value.trim();
  if (temperature !== '') body.temperature = Number(temperature);
  const maxTokens = f.max_tokens.value.trim();
  if (maxTokens !== '') body.max_tokens = parseInt(maxTokens, 10);
  if (f.stream.checked) {
    body.stream = true;
    body.stream_options = { include_usage: true };  // the usage chunk: tokens of a streamed answer
  }
  return body;
}

function clientHeaders(json = true) {
  const headers = {};
  if (json) headers['content-type'] = 'application/json';
  const key = $('#play-key').value.trim();
  if (key) headers.Authorization = `Bearer ${key}`;
  return headers;
}

async function loadModels() {
  const note = $('#play-models-note');
  note.hidden = true;
  const select = $('#play-model');
  const chosen = select.value;
  try {
    const response = await fetch(new URL('models', V1), { headers: clientHeaders(false), cache: 'no-store', credentials: 'omit' });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error((data.error && data.error.message) || `HTTP ${response.status}`);
    const ids = (data.data || []).map((m) => m.id).sort();
    fill(select, ids.map((id) => h('option', { value: id }, id)));
    if (ids.includes(chosen)) select.value = chosen;
    note.textContent = ids.length ? t('play.models_loaded', { count: fmt.int(ids.length) }) : t('play.no_models');
  } catch (e) {
    note.textContent = t('play.models_failed', { message: e.message });
  }
  note.hidden = false;
  renderCode();
}

// Server-sent events: complete "data:" lines of the stream, as they arrive, chunk boundaries anywhere.
async function* sseData(reader) {
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, '');
      const data = event.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
      if (data) yield data;
    }
  }
}

async function send(event) {
  event.preventDefault();
  const prompt = $('#play-prompt').value.trim();
  const base = settings();
  if (!prompt || !base.model) {
    showPlayError(base.model ? '' : t('play.pick_model'));
    return;
  }
  showPlayError('');
  play.messages.push({ role: 'user', content: prompt });
  const body = { ...base, messages: [...base.messages, ...play.messages] };
  play.lastBody = body;
  $('#play-prompt').value = '';
  const answer = { role: 'assistant', content: '' };
  play.messages.push(answer);
  renderChat(true);
  setBusy(true);
  const figures = { model: body.model, stream: Boolean(body.stream), status: null, ttft: null, latency: null, usage: null, headers: [], requestId: null, cost: undefined };
  play.last = figures;
  const controller = new AbortController();
  play.controller = controller;
  const started = performance.now();
  try {
    const response = await fetch(new URL('chat/completions', V1), {
      method: 'POST', headers: clientHeaders(), body: JSON.stringify(body), signal: controller.signal,
      cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer',
    });
    figures.status = response.status;
    figures.headers = [...response.headers.entries()];
    figures.requestId = response.headers.get('x-request-id');
    const streamed = (response.headers.get('content-type') || '').startsWith('text/event-stream');
    if (!response.ok) {
      const data = await response.json().catch(() => ({}));
      throw new Error((data.error && `${data.error.code || data.error.type}: ${data.error.message}`) || `HTTP ${response.status}`);
    }
    if (streamed) {
      for await (const data of sseData(response.body.getReader())) {
        if (data === '[DONE]') break;
        const chunk = JSON.parse(data);
        if (chunk.usage) figures.usage = chunk.usage;
        const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
        if (delta && delta.content) {
          if (figures.ttft === null) figures.ttft = performance.now() - started;
          answer.content += delta.content;
          renderChat(true);
        }
      }
    } else {
      const data = await response.json();
      figures.ttft = performance.now() - started;
      figures.usage = data.usage || null;
      answer.content = (data.choices && data.choices[0] && data.choices[0].message && data.choices[0].message.content) || '';
    }
  } catch (e) {
    if (e.name === 'AbortError') answer.content += answer.content ? ` ${t('play.stopped')}` : t('play.stopped');
    else {
      if (!answer.content) play.messages.splice(-2, 2);  // nothing came back: the prompt can be sent again
      showPlayError(e.message);
    }
  } finally {
    figures.latency = performance.now() - started;
    play.controller = null;
    setBusy(false);
    renderChat(false);
    renderFigures();
    renderCode();
  }
  if (figures.requestId) lookUpCost(figures);
}

// The cost is what the gateway logged for this request id (priced by its own table): asked for a
// few seconds, since the log is written in batches about a second after the request ends.
async function lookUpCost(figures) {
  const deadline = Date.now() + 8000;
  while (Date.now() < deadline && play.last === figures) {
    try {
      const rows = (await api('GET', `requests?request_id=${encodeURIComponent(figures.requestId)}&limit=1`)).data;
      if (rows.length) {
        figures.cost = rows[0].currency ? fmt.money(rows[0].cost, rows[0].currency) : t('usage.unpriced');
        figures.logId = rows[0].id;
        figures.serverTtft = rows[0].ttft_ms;
        figures.serverLatency = rows[0].latency_ms;
        renderFigures();
        return;
      }
    } catch (e) { break; }
    await new Promise((resolve) => { setTimeout(resolve, 500); });
  }
  if (play.last === figures) {
    figures.cost = null;
    renderFigures();
  }
}

function stop() {
  if (play.controller) play.controller.abort();
}

function setBusy(busy) {
  $('#play-send').disabled = busy;
  $('#play-stop').disabled = !busy;
}

function showPlayError(text) {
  const box = $('#play-error');
  box.textContent = text;
  box.hidden = !text;
}

// -- rendering -----------------------------------------------------------------------------------

function renderChat(typing) {
  const box = $('#play-chat');
  if (!play.messages.length) {
    fill(box, empty(t('play.empty')));
    return;
  }
  fill(box, play.messages.map((m, i) => h('div', { class: `msg ${m.role}${typing && i === play.messages.length - 1 ? ' typing' : ''}` },
    h('div', { class: 'msg-role' }, t(`play.role_${m.role}`)), h('div', { class: 'msg-text' }, m.content))));
  box.scrollTop = box.scrollHeight;
}

function figure(label, value, detail) {
  return h('div', { class: 'card' }, h('div', { class: 'card-label' }, label),
    h('div', { class: 'card-value text' }, value), detail ? h('div', { class: 'card-detail muted' }, detail) : null);
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
    figure(t('logs.col_status'), f.status == null ? '-' : h('span', { class: `badge ${statusKind(f.status)}` }, String(f.status))),
    figure(t('play.latency'), ms(f.latency), f.serverLatency != null ? t('play.at_gateway', { ms: fmt.num(f.serverLatency, 0) }) : null),
    figure(t('play.ttft'), ms(f.ttft), f.serverTtft != null ? t('play.first_byte_at_gateway', { ms: fmt.num(f.serverTtft, 0) }) : null),
    figure(t('play.usage'), u ? `${fmt.int(u.prompt_tokens)} + ${fmt.int(u.completion_tokens)}` : '-',
      u ? t('play.usage_detail', { total: fmt.int(u.total_tokens) }) : null),
    figure(t('play.cost'), f.cost === undefined ? t('play.cost_pending') : f.cost === null ? '-' : f.cost),
    figure(t('play.request_id'), f.requestId ? h('code', { class: 'small' }, f.requestId) : '-'));
  fill($('#play-headers'), f.headers.length ? table([
    { label: t('play.header'), cell: (r) => h('code', null, r[0]) },
    { label: t('play.value'), cell: (r) => h('span', { class: 'mono small' }, r[1]) },
  ], f.headers) : empty(t('play.no_call')));
}

// -- the same call as code -------------------------------------------------------------------------

function codeBody() {
  const base = settings();
  const pending = $('#play-prompt').value.trim();
  if (!pending && play.lastBody) return play.lastBody;  // the call just made, as it was sent
  const convo = play.messages.filter((m) => m.content);
  const messages = [...base.messages, ...convo, ...(pending ? [{ role: 'user', content: pending }] : [])];
  if (!messages.some((m) => m.role === 'user')) messages.push({ role: 'user', content: t('play.sample_prompt') });
  return { ...base, model: base.model || 'MODEL', messages };
}

function shellQuote(text) {
  return `'${text.replace(/'/g, "'\\''")}'`;
}

function pyValue(value, indent) {
  const pad = ' '.repeat(indent);
  if (Array.isArray(value)) return `[\n${value.map((v) => `${pad}    ${pyValue(v, indent + 4)}`).join(',\n')},\n${pad}]`;
  if (value && typeof value === 'object') {
    return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${pyValue(v, indent)}`).join(', ')}}`;
  }
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (value === null) return 'None';
  return JSON.stringify(value);
}

export function codeFor(lang, body, key, showKey) {
  const base = V1.href.replace(/\/$/, '');
  const keyText = showKey && key ? key : null;
  if (lang === 'curl') {
    const auth = keyText ? `Bearer ${keyText}` : 'Bearer $SLUICEGATE_API_KEY';
    return [`curl ${base}/chat/completions${body.stream ? ' -N' : ''} \\`,
      `  -H "Authorization: ${auth}" \\`,
      '  -H "Content-Type: application/json" \\',
      `  -d ${shellQuote(JSON.stringify(body, null, 2))}`].join('\n');
  }
  const { model, messages, stream, stream_options: streamOptions, ...rest } = body;
  if (lang === 'python') {
    const args = [`    model=${JSON.stringify(model)},`, `    messages=${pyValue(messages, 4)},`];
    for (const [k, v] of Object.entries(rest)) args.push(`    ${k}=${pyValue(v, 4)},`);
    if (stream) args.push('    stream=True,', `    stream_options=${pyValue(streamOptions, 4)},`);
    const lines = ['import os', '', 'from openai import OpenAI', '',
      `client = OpenAI(base_url=${JSON.stringify(base)}, api_key=${keyText ? JSON.stringify(keyText) : 'os.environ["SLUICEGATE_API_KEY"]'})`,
      `${stream ? 'stream' : 'response'} = client.chat.completions.create(`, ...args, ')'];
    if (stream) {
      lines.push('for chunk in stream:', '    if chunk.choices and chunk.choices[0].delta.content:',
        '        print(chunk.choices[0].delta.content, end="", flush=True)', '    if chunk.usage:', '        print("\\n", chunk.usage)');
    } else lines.push('print(response.choices[0].message.content)', 'print(response.usage)');
    return lines.join('\n');
  }
  const params = JSON.stringify({ model, messages, ...rest, ...(stream ? { stream, stream_options: streamOptions } : {}) }, null, 2);
  const lines = ['import OpenAI from "openai";', '',
    `const client = new OpenAI({ baseURL: ${JSON.stringify(base)}, apiKey: ${keyText ? JSON.stringify(keyText) : 'process.env.SLUICEGATE_API_KEY'} });`,
    `const ${stream ? 'stream' : 'response'} = await client.chat.completions.create(${params.replace(/\n/g, '\n')});`];
  if (stream) {
    lines.push('for await (const chunk of stream) {', '  process.stdout.write(chunk.choices[0]?.delta?.content ?? "");',
      '  if (chunk.usage) console.log("\\n", chunk.usage);', '}');
  } else lines.push('console.log(response.choices[0].message.content, response.usage);');
  return lines.join('\n');
}

function renderCode() {
  $('#play-code').textContent = codeFor(play.codeLang, codeBody(), $('#play-key').value.trim(), $('#play-code-key').checked);
  for (const b of document.querySelectorAll('.seg [data-lang]')) b.setAttribute('aria-selected', String(b.dataset.lang === play.codeLang));
}

async function copyCode() {
  const text = $('#play-code').textContent;
  const button = $('#play-code-copy');
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = t('secret.copied_short');
  } catch (e) {
    const range = document.createRange();
    range.selectNodeContents($('#play-code'));
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    button.textContent = document.execCommand && document.execCommand('copy') ? t('secret.copied_short') : t('secret.copy_failed');
  }
  setTimeout(() => { button.textContent = t('play.copy'); }, 2000);
}

// -- wiring --------------------------------------------------------------------------------------

export async function loadPlayground() {
  state.rendered.playground = () => { renderChat(false); renderFigures(); renderCode(); };
  if (!$('#play-model').options.length && $('#play-key').value.trim()) await loadModels();
  renderChat(false);
  renderFigures();
  renderCode();
}

// A key just created on the Keys page, handed over by its one-time dialog (memory only).
export function usePlaygroundKey(secret) {
  $('#play-key').value = secret;
  fill($('#play-model'));
}

export function forgetPlayground() {
  stop();
  $('#play-key').value = '';
  play.messages = [];
  play.last = null;
  play.lastBody = null;
  fill($('#play-model'));
}

export function initPlayground() {
  $('#play-form').addEventListener('submit', send);
  $('#play-stop').addEventListener('click', stop);
  $('#play-clear').addEventListener('click', () => { play.messages = []; play.lastBody = null; renderChat(false); renderCode(); });
  $('#play-models-load').addEventListener('click', loadModels);
  $('#play-key').addEventListener('change', loadModels);
  $('#play-prompt').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) $('#play-form').requestSubmit();
  });
  $('#play-settings').addEventListener('input', renderCode);
  $('#play-prompt').addEventListener('input', renderCode);
  $('#play-code-key').addEventListener('change', renderCode);
  $('#play-code-copy').addEventListener('click', copyCode);
  for (const b of document.querySelectorAll('.seg [data-lang]')) {
    b.addEventListener('click', () => { play.codeLang = b.dataset.lang; renderCode(); });
  }
}
