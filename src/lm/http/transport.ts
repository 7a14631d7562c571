import type { z } from "zod";
import { TillerError } from "../../errors.js";

/**
 * A failed request to a model server, classified so the fleet knows whether another try (on this
 * endpoint or another) can help. The message is one line naming the endpoint.
 */
export class EndpointError extends TillerError {
  constructor(
    message: string,
    code: string,
    /** A later try may succeed (connection refused or reset, 5xx, 503 busy, timeout). */
    readonly retryable: boolean,
    /** The endpoint's base URL. */
    readonly url: string,
    /** The server is down (not merely busy): the fleet takes it out at once. */
    readonly down = false,
  ) {
    super(message, code);
  }
}

export interface RequestOptions {
  signal?: AbortSignal;
  /**
   * JSON requests: the whole request must finish within this many ms. Streams: at most this many
   * ms between two events. Defaults to the endpoint's `timeoutMs`.
   */
  timeoutMs?: number;
}

export interface EndpointOptions {
  /** Per-request timeout in ms (streams: between events). Defaults to 120 000. */
  timeoutMs?: number;
  /** Sent as `Authorization: Bearer …` (vLLM's --api-key, llama-server's --api-key). Defaults to none. */
  apiKey?: string;
}

/** JSON over HTTP to one model server: timeouts, abort, and every failure as one EndpointError. */
export class Endpoint {
  readonly url: string;
  private readonly timeoutMs: number;
  private readonly apiKey: string | undefined;

  constructor(url: string, options: EndpointOptions = {}) {
    this.url = url.replace(/\/+$/, "");
    this.timeoutMs = options.timeoutMs ?? 120_000;
    this.apiKey = options.apiKey;
  }

  getJson<T>(path: string, schema: z.ZodType<T>, options: RequestOptions = {}): Promise<T> {
    return this.json("GET", path, undefined, schema, options);
  }

  /** GET that only needs a 2xx answer (health probes); false on any failure. */
  async ok(path: string, options: RequestOptions = {}): Promise<boolean> {
    const deadline = new IdleTimer(options.timeoutMs ?? this.timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, deadline.signal]) : deadline.signal;
    try {
      const response = await this.send("GET", path, undefined, signal);
      await response.body?.cancel();
      return true;
    } catch {
      return false;
    } finally {
      deadline.stop();
    }
  }

  postJson<T>(path: string, body: unknown, schema: z.ZodType<T>, options: RequestOptions = {}): Promise<T> {
    return this.json("POST", path, body, schema, options);
  }

  /**
   * POSTs and reads a server-sent-event stream, handing each `data:` payload (parsed and checked
   * against `schema`) to `onEvent`. `onEvent` returns false to stop early: the connection is then
   * closed, which makes llama-server cancel the generation.
   */
  async postEvents<T>(
    path: string,
    body: unknown,
    schema: z.ZodType<T>,
    onEvent: (event: T) => boolean,
    options: RequestOptions = {},
  ): Promise<void> {
    const idle = new IdleTimer(options.timeoutMs ?? this.timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, idle.signal]) : idle.signal;
    try {
      const response = await this.send("POST", path, body, signal);
      if (!response.body)
        throw this.failure(path, "answered with an empty body", "server-bad-response", false);
      const decoder = new TextDecoder();
      let buffered = "";
      const reader = response.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        idle.reset();
        buffered += decoder.decode(value, { stream: true });
        let end = buffered.indexOf("\n\n");
        while (end >= 0) {
          const event = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          end = buffered.indexOf("\n\n");
          const data = dataOf(event);
          if (data === undefined) continue;
          if (!onEvent(this.parse(path, data, schema))) {
            await reader.cancel().catch(() => undefined);
            return;
          }
        }
      }
      if (dataOf(buffered) !== undefined) onEvent(this.parse(path, dataOf(buffered) as string, schema));
    } catch (error) {
      throw this.classify(path, error, options.signal, idle);
    } finally {
      idle.stop();
    }
  }

  private async json<T>(
    method: string,
    path: string,
    body: unknown,
    schema: z.ZodType<T>,
    options: RequestOptions,
  ): Promise<T> {
    const deadline = new IdleTimer(options.timeoutMs ?? this.timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, deadline.signal]) : deadline.signal;
    try {
      const response = await this.send(method, path, body, signal);
      return this.parse(path, await response.text(), schema);
    } catch (error) {
      throw this.classify(path, error, options.signal, deadline);
    } finally {
      deadline.stop();
    }
  }

  /** Sends a request; a non-2xx status becomes an EndpointError carrying the server's own message. */
  private async send(method: string, path: string, body: unknown, signal: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers["content-type"] = "application/json";
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    const response = await fetch(this.url + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
    if (response.ok) return response;
    const text = await response.text().catch(() => "");
    const reason = serverMessage(text) ?? `HTTP ${response.status}`;
    if (response.status === 503)
      throw this.failure(path, `is busy or still loading (503: ${reason})`, "server-busy", true);
    if (response.status >= 500)
      throw this.failure(path, `failed with ${response.status}: ${reason}`, "server-error", true);
    if (response.status === 404)
      throw this.failure(path, `has no such endpoint (404: ${reason})`, "server-missing-endpoint", false);
    if (response.status === 401 || response.status === 403)
      throw this.failure(
        path,
        `refused the request (${response.status}: ${reason}); pass its API key`,
        "server-auth",
        false,
      );
    throw this.failure(
      path,
      `rejected the request (${response.status}: ${reason})`,
      "server-rejected",
      false,
    );
  }

  private parse<T>(path: string, text: string, schema: z.ZodType<T>): T {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw this.failure(
        path,
        `answered with something that is not JSON: ${preview(text)}`,
        "server-bad-response",
        false,
      );
    }
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.join(".") || "body";
      throw this.failure(
        path,
        `answered in an unexpected shape (${where}: ${issue?.message}): ${preview(text)}`,
        "server-bad-response",
        false,
      );
    }
    return parsed.data;
  }

  /** Turns whatever fetch or the body reader threw into one EndpointError (or the caller's abort). */
  private classify(
    path: string,
    error: unknown,
    callerSignal: AbortSignal | undefined,
    timer: IdleTimer,
  ): unknown {
    if (error instanceof EndpointError) return error;
    if (callerSignal?.aborted) return callerSignal.reason;
    if (timer.fired)
      return this.failure(path, `gave no answer within ${timer.ms} ms`, "server-timeout", true);
    const code = causeCode(error);
    if (code === "ECONNREFUSED")
      return this.failure(
        path,
        "refused the connection (is the server running?)",
        "server-unreachable",
        true,
        true,
      );
    if (code === "ENOTFOUND" || code === "EAI_AGAIN")
      return this.failure(path, "names a host that cannot be found", "server-unreachable", false, true);
    if (code === "EHOSTUNREACH" || code === "ENETUNREACH" || code === "UND_ERR_CONNECT_TIMEOUT")
      return this.failure(path, `cannot be reached (${code})`, "server-unreachable", true, true);
    if (code?.startsWith("HPE_"))
      return this.failure(
        path,
        `answered with something that is not HTTP (${code})`,
        "server-bad-response",
        false,
        true,
      );
    // Reset sockets, "other side closed", a body cut short: the server went away mid-response.
    return this.failure(
      path,
      `closed the connection mid-response (${code ?? firstLine(error)})`,
      "server-closed",
      true,
      true,
    );
  }

  /** An EndpointError naming this endpoint and `path` (dialects use it for protocol violations). */
  failure(path: string, what: string, code: string, retryable: boolean, down = false): EndpointError {
    return new EndpointError(`${this.url}${path} ${what}`, code, retryable, this.url, down);
  }
}

/** A timer that aborts a signal after `ms` without `reset()`. */
class IdleTimer {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout;
  fired = false;

  constructor(readonly ms: number) {
    this.timer = this.start();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  reset(): void {
    clearTimeout(this.timer);
    this.timer = this.start();
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  private start(): NodeJS.Timeout {
    return setTimeout(() => {
      this.fired = true;
      this.controller.abort(new Error(`timed out after ${this.ms} ms`));
    }, this.ms);
  }
}

/** The payload of an SSE event's `data:` lines, if it has any. */
function dataOf(event: string): string | undefined {
  const lines = event
    .split("\n")
    .filter((line) => line.startsWith("data:"))
    .map((line) => line.slice(5).trimStart());
  if (lines.length === 0) return undefined;
  const data = lines.join("\n");
  return data === "[DONE]" ? undefined : data;
}

/** llama-server and vLLM both answer errors as {"error": {"message"}} (vLLM also {"message"}). */
function serverMessage(text: string): string | undefined {
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown };
    const message =
      typeof body.error === "string" ? body.error : (body.error?.message ?? body.message ?? undefined);
    return typeof message === "string" ? firstLine(message) : undefined;
  } catch {
    return text ? preview(text) : undefined;
  }
}

function causeCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

function preview(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return JSON.stringify(flat.length > 80 ? `${flat.slice(0, 80)}…` : flat);
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0];
}
