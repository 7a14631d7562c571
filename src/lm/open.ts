import { TillerError } from "../errors.js";
import { parseOptions } from "../util/options.js";
import { DIALECTS, type DialectName } from "./http/dialect.js";
import { RemoteModel, type RemoteModelOptions } from "./http/remoteModel.js";
import { type LoadModelOptions, loadModel, loadModelOptionsSchema } from "./load.js";
import type { LanguageModel } from "./types.js";

export interface OpenModelOptions extends LoadModelOptions, Omit<RemoteModelOptions, "signal" | "backend"> {
  /**
   * The server dialect, for server URLs only: `llama-server` or `vllm`. It names the dialect, not
   * file-vs-server (the URL decides that). Defaults to detecting it from the server.
   */
  backend?: DialectName | string;
}

/**
 * Whether a `--model` value names a model server: any http(s) URL whose path does not name a
 * `.gguf` file (a URL naming a `.gguf` is a file to download).
 */
export function isServerUrl(spec: string): boolean {
  let url: URL;
  try {
    url = new URL(spec.trim());
  } catch {
    return false;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return false;
  return !/\.gguf$/i.test(decodeURIComponent(url.pathname));
}

/**
 * Opens the model `--model` names: a local GGUF path, an `hf:` URI or a `.gguf` URL (loaded in
 * process by `loadModel`), a server URL (llama-server or vLLM over HTTP), or several server URLs
 * (a fleet acting as one model). No spec: $TILLER_MODEL, else the default model.
 */
export async function openModel(
  spec?: string | readonly string[],
  options: OpenModelOptions = {},
): Promise<LanguageModel> {
  const validSpec =
    spec === undefined ||
    typeof spec === "string" ||
    (Array.isArray(spec) && spec.every((s) => typeof s === "string"));
  if (!validSpec)
    throw new TillerError(
      `openModel: the model must be a path, an hf: URI or server URL(s) (a string or strings), got ${spec === null ? "null" : typeof spec}`,
      "bad-options",
    );
  parseOptions("openModel", loadModelOptionsSchema, options);
  const given = (typeof spec === "string" ? [spec] : (spec ?? [])).map((s) => s.trim()).filter(Boolean);
  const specs = given.length > 0 ? given : [process.env.TILLER_MODEL?.trim()].filter((s): s is string => !!s);
  const backend = options.backend;
  if (backend !== undefined && !(DIALECTS as readonly string[]).includes(backend))
    throw new TillerError(`--backend must be one of ${DIALECTS.join(", ")}, got "${backend}"`, "bad-backend");
  const servers = specs.filter(isServerUrl);
  if (servers.length > 0 && servers.length < specs.length)
    throw new TillerError(
      `--model mixes server URLs and model files (${specs.join(", ")}); several --model values make a fleet of servers`,
      "bad-model-spec",
    );
  if (servers.length > 0)
    return RemoteModel.open(servers, { ...options, backend: backend as DialectName | undefined });
  if (specs.length > 1)
    throw new TillerError(
      `several --model values make a fleet, and each must be a server URL (http://host:port); got ${specs.join(", ")}`,
      "bad-model-spec",
    );
  if (backend !== undefined)
    throw new TillerError(
      `--backend ${backend} names a server dialect, but --model ${specs[0] ?? "(default)"} is not a server URL`,
      "bad-backend",
    );
  return loadModel(specs[0], options);
}
