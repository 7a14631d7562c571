import OpenAI from "openai";
import { pino } from "pino";
import type { LanguageModel } from "../src/lm/types.js";
import { type ListenOptions, type RunningServer, startServer } from "../src/server/server.js";

/** Starts a real server on loopback (port 0) over `model`, logging nothing. */
export function serve(model: LanguageModel, options: Partial<ListenOptions> = {}): Promise<RunningServer> {
  return startServer({
    model,
    port: 0,
    batchCapacity: 8,
    referenceCacheDir: false,
    logger: pino({ level: "silent" }),
    ...options,
  });
}

/** The real `openai` client pointed at a server. */
export function client(server: RunningServer, apiKey = "not-checked"): OpenAI {
  return new OpenAI({ baseURL: `${server.url}/v1`, apiKey, maxRetries: 0 });
}

export interface HttpReply {
  status: number;
  headers: Headers;
  body: unknown;
  text: string;
}

/** POSTs JSON (or a raw string body) and reads the whole reply. */
export async function post(
  server: RunningServer,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<HttpReply> {
  const response = await fetch(`${server.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return read(response);
}

export async function get(server: RunningServer, path: string, headers: Record<string, string> = {}) {
  return read(await fetch(`${server.url}${path}`, { headers }));
}

async function read(response: Response): Promise<HttpReply> {
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON (SSE, metrics text)
  }
  return { status: response.status, headers: response.headers, body, text };
}

/** Server-sent events of a whole SSE body: `{event, data}` with `data` parsed unless `[DONE]`. */
export function parseSse(text: string): { event: string | null; data: unknown }[] {
  return text
    .split("\n\n")
    .filter((block) => block.trim() !== "")
    .map((block) => {
      let event: string | null = null;
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      const joined = data.join("\n");
      return { event, data: joined === "[DONE]" ? joined : JSON.parse(joined) };
    });
}

/** Asserts OpenAI's error shape and returns the error object. */
export function openAiError(reply: HttpReply): {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
} {
  const error = (reply.body as { error?: unknown }).error as {
    message: string;
    type: string;
    param: string | null;
    code: string | null;
  };
  if (
    !error ||
    typeof error.message !== "string" ||
    typeof error.type !== "string" ||
    !("param" in error) ||
    !("code" in error)
  )
    throw new Error(`not an OpenAI error body (status ${reply.status}): ${reply.text.slice(0, 300)}`);
  return error;
}
