// The server's HTTP API as the page uses it: JSON calls and POSTed server-sent event streams.

const KEY_STORAGE = "tiller.apiKey";

/** An error the server answered with (OpenAI's shape), or a network failure. */
export class ApiFailure extends Error {
  /**
   * @param {string} message
   * @param {number} status
   * @param {string | null} [code]
   */
  constructor(message, status, code = null) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** @returns {string | null} */
export function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

/** @param {string} key */
export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

/** @returns {Record<string, string>} */
function headers() {
  const key = apiKey();
  return { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) };
}

/**
 * @param {Response} response
 * @returns {Promise<ApiFailure>}
 */
async function failureOf(response) {
  const text = await response.text();
  try {
    const { error } = JSON.parse(text);
    return new ApiFailure(error.message, response.status, error.code ?? null);
  } catch {
    return new ApiFailure(`HTTP ${response.status}: ${text.slice(0, 200)}`, response.status);
  }
}

/**
 * GET (no body) or POST (body) a JSON endpoint.
 * @param {string} path
 * @param {unknown} [body]
 * @param {AbortSignal} [signal]
 * @returns {Promise<any>}
 */
export async function callJson(path, body, signal) {
  const response = await fetch(path, {
    method: body === undefined ? "GET" : "POST",
    headers: headers(),
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  if (!response.ok) throw await failureOf(response);
  return response.json();
}

/**
 * POSTs a streaming request and yields its server-sent events as they arrive: `{event, data}`,
 * `event` null for OpenAI's plain `data:` chunks, `data` parsed (the string "[DONE]" at the end).
 * @param {string} path
 * @param {unknown} body
 * @param {AbortSignal} [signal]
 * @returns {AsyncGenerator<{event: string | null, data: any}>}
 */
export async function* streamEvents(path, body, signal) {
  const response = await fetch(path, {
    method: "POST",
    headers: headers(),
    body: JSON.stringify(body),
    signal,
  });
  if (!response.ok || !response.body) throw await failureOf(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end = buffer.indexOf("\n\n");
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const parsed = parseBlock(block);
      if (parsed) yield parsed;
      end = buffer.indexOf("\n\n");
    }
  }
}

/**
 * @param {string} block
 * @returns {{event: string | null, data: any} | null}
 */
function parseBlock(block) {
  /** @type {string | null} */
  let event = null;
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
  }
  if (data.length === 0) return null;
  const joined = data.join("\n");
  return { event, data: joined === "[DONE]" ? joined : JSON.parse(joined) };
}
