// A chat call to this gateway's /v1, as any client makes it: the part of a playground that is the
// same in the dashboard (playground.js) and the self-service portal (portal/static/playground.js).
// No DOM and no words for people here: the callers draw and translate. The key is passed in by the
// caller, sent only in the Authorization header to this origin's /v1, never stored.

// A refusal from /v1, with the gateway's OpenAI-shaped error: status, code and message kept apart so a
// page can say a code in its reader's language, and message in the dashboard's "code: message" form.
export class CallError extends Error {
  constructor(status, error) {
    const { code, type, message } = error || {};
    super(message ? `${code || type}: ${message}` : `HTTP ${status}`);
    this.status = status;
    this.code = code || type || null;
    this.detail = message || '';
  }
}

function headersFor(key, json) {
  const headers = {};
  if (json) headers['content-type'] = 'application/json';
  if (key) headers.Authorization = `Bearer ${key}`;
  return headers;
}

// The request body from a playground's settings and the conversation so far.
export function chatBody({ model, system, temperature, maxTokens, stream }, messages) {
  const body = { model, messages: [] };
  if (system) body.messages.push({ role: 'system', content: system });
  body.messages.push(...messages);
  if (temperature !== '' && temperature != null) body.temperature = Number(temperature);
  if (maxTokens !== '' && maxTokens != null) body.max_tokens = parseInt(maxTokens, 10);
  if (stream) {
    body.stream = true;
    body.stream_options = { include_usage: true };  // the usage chunk: tokens of a streamed answer
  }
  return body;
}

// The model ids the key may use, from its own /v1/models, sorted.
export async function listModels(v1, key) {
  const response = await fetch(new URL('models', v1), { headers: headersFor(key, false), cache: 'no-store', credentials: 'omit' });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new CallError(response.status, data.error);
  return (data.data || []).map((m) => m.id).sort();
}

// Server-sent events: complete "data:" lines of the stream, as they arrive, chunk boundaries anywhere.
export async function* sseData(reader) {
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

// POST the body to /v1/chat/completions; each piece of the answer goes to onText as it arrives.
// `figures` is filled in as the call goes (status, headers, requestId, usage, ttft, latency), so a
// caller keeps what it learnt even when the call fails or is stopped; a refusal throws CallError, a
// stop (signal) throws the fetch's AbortError.
export async function callChat(v1, key, body, { signal, figures, onText }) {
  const started = performance.now();
  try {
    const response = await fetch(new URL('chat/completions', v1), {
      method: 'POST', headers: headersFor(key, true), body: JSON.stringify(body), signal,
      cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer',
    });
    figures.status = response.status;
    figures.headers = [...response.headers.entries()];
    figures.requestId = response.headers.get('x-request-id');
    if (!response.ok) {
      const data = await response.json().catch(() => ({}));
      throw new CallError(response.status, data.error);
    }
    if ((response.headers.get('content-type') || '').startsWith('text/event-stream')) {
      for await (const data of sseData(response.body.getReader())) {
        if (data === '[DONE]') break;
        const chunk = JSON.parse(data);
        if (chunk.usage) figures.usage = chunk.usage;
        const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
        if (delta && delta.content) {
          if (figures.ttft == null) figures.ttft = performance.now() - started;
          onText(delta.content);
        }
      }
    } else {
      const data = await response.json();
      figures.ttft = performance.now() - started;
      figures.usage = data.usage || null;
      onText((data.choices && data.choices[0] && data.choices[0].message && data.choices[0].message.content) || '');
    }
  } finally {
    figures.latency = performance.now() - started;
  }
}

// -- the same call as code -------------------------------------------------------------------------

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

// The call as curl, Python (the openai SDK) or JavaScript (the openai package), against `v1` (a URL).
// The key goes into the code only when asked (showKey); else the code reads $SLUICEGATE_API_KEY.
export function codeFor(lang, body, key, showKey, v1) {
  const base = String(v1.href || v1).replace(/\/$/, '');
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
    `const ${stream ? 'stream' : 'response'} = await client.chat.completions.create(${params});`];
  if (stream) {
    lines.push('for await (const chunk of stream) {', '  process.stdout.write(chunk.choices[0]?.delta?.content ?? "");',
      '  if (chunk.usage) console.log("\\n", chunk.usage);', '}');
  } else lines.push('console.log(response.choices[0].message.content, response.usage);');
  return lines.join('\n');
}

// Copy an element's text: the clipboard API where the page may use it, else select it and ask the
// browser to copy. True when copied.
export async function copyText(element) {
  try {
    await navigator.clipboard.writeText(element.textContent);
    return true;
  } catch (e) {
    const range = document.createRange();
    range.selectNodeContents(element);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    return Boolean(document.execCommand && document.execCommand('copy'));
  }
}
