import { z } from "zod";
import { TillerError } from "../../errors.js";
import type { Dialect, DialectName } from "./dialect.js";
import { LlamaServerDialect, type LlamaServerOptions } from "./llamaServer.js";
import { backoffDelay, sleep } from "./retry.js";
import { type Endpoint, EndpointError } from "./transport.js";
import { VllmDialect, type VllmOptions } from "./vllm.js";

/** llama-server's GET /props carries its slot count and default generation settings. */
const llamaPropsSchema = z.object({ default_generation_settings: z.object({}), total_slots: z.number() });
/** vLLM's GET /v1/models: model cards owned by "vllm". */
const modelsSchema = z.object({
  data: z.array(z.object({ id: z.string(), owned_by: z.string().optional() })),
});

export interface OpenDialectOptions extends VllmOptions, LlamaServerOptions {
  /** Skip detection and speak this dialect (still checked against the server). Defaults to detecting. */
  backend?: DialectName;
  signal?: AbortSignal;
  /** How long a server that is still loading (503) is waited for. Defaults to 60 000 ms. */
  loadingWaitMs?: number;
}

/**
 * Which server answers at `endpoint`: llama-server if GET /props has its shape, vLLM if GET
 * /v1/models lists models owned by "vllm". A forced `backend` must agree with what answers.
 */
export async function detectDialect(
  endpoint: Endpoint,
  forced?: DialectName,
  signal?: AbortSignal,
): Promise<DialectName> {
  const llama = await probe(() => endpoint.getJson("/props", llamaPropsSchema, { signal }));
  if (llama.ok) return agree("llama-server", forced, endpoint);
  const models = await probe(() => endpoint.getJson("/v1/models", modelsSchema, { signal }));
  if (models.ok && models.value.data.some((model) => model.owned_by === "vllm"))
    return agree("vllm", forced, endpoint);
  const why = `GET /props: ${llama.reason}; GET /v1/models: ${models.ok ? "no model owned by vllm" : models.reason}`;
  if (forced)
    throw new TillerError(
      `--backend ${forced} was given but ${endpoint.url} does not answer as ${forced} (${why})`,
      "wrong-dialect",
    );
  throw new TillerError(
    `${endpoint.url} is neither a llama-server nor a vLLM server (${why}); check the URL`,
    "unknown-server",
  );
}

/** Detects (or checks) the dialect and reads the model's description from the server. */
export async function openDialect(endpoint: Endpoint, options: OpenDialectOptions = {}): Promise<Dialect> {
  const waitMs = options.loadingWaitMs ?? 60_000;
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      const dialect = await detectDialect(endpoint, options.backend, options.signal);
      return dialect === "llama-server"
        ? await LlamaServerDialect.open(endpoint, options, options.signal)
        : await VllmDialect.open(endpoint, options, options.signal);
    } catch (error) {
      // A server still loading its model answers 503: wait for it, up to `loadingWaitMs`.
      const loading = error instanceof EndpointError && error.code === "server-busy";
      if (!loading || Date.now() - started > waitMs) throw error;
      await sleep(
        backoffDelay(attempt, { attempts: 0, baseDelayMs: 200, maxDelayMs: 2_000 }),
        options.signal,
      );
    }
  }
}

function agree(found: DialectName, forced: DialectName | undefined, endpoint: Endpoint): DialectName {
  if (forced && forced !== found)
    throw new TillerError(
      `--backend ${forced} was given but ${endpoint.url} is a ${found} server; drop --backend or pass --backend ${found}`,
      "wrong-dialect",
    );
  return found;
}

type Probe<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Runs one detection request; an unreachable server or a 503 is final, anything else is a "no". */
async function probe<T>(request: () => Promise<T>): Promise<Probe<T>> {
  try {
    return { ok: true, value: await request() };
  } catch (error) {
    if (
      error instanceof EndpointError &&
      (error.down || error.code === "server-busy" || error.code === "server-timeout")
    )
      throw error;
    if (!(error instanceof EndpointError)) throw error;
    return { ok: false, reason: error.message.slice(error.url.length).replace(/^\/\S+ /, "") };
  }
}
