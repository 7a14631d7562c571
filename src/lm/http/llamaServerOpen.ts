import { basename } from "node:path";
import type { Token } from "../types.js";
import type { ServerInfo } from "./dialect.js";
import { greedyBody } from "./llamaServerPositions.js";
import {
  completionSchema,
  modelsSchema,
  piecesSchema,
  propsSchema,
  RESPONSE_FIELDS,
  settingsSchema,
} from "./llamaServerWire.js";
import type { Piece } from "./pieces.js";
import type { Endpoint } from "./transport.js";

/**
 * The template llama-server reports when the model has none of its own (llama.cpp's
 * CHATML_TEMPLATE_SRC): then the model has no chat template as far as tiller is concerned.
 */
const CHATML_FALLBACK =
  "{%- for message in messages -%}\n  {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' -}}\n{%- endfor -%}\n{%- if add_generation_prompt -%}\n  {{- '<|im_start|>assistant\n' -}}\n{%- endif -%}";
/** Text tokenized on every server of a fleet: equal tokens are part of "same model". */
const FINGERPRINT_TEXT = "Once upon a time, Ünïcödé → 東京 🙂\n\tdone.";
/** Ids per /tokenize request when the vocabulary's pieces are fetched. */
const PIECE_CHUNK = 8192;

/**
 * What one llama-server says about its model: GET /props and /v1/models, a few /tokenize probes
 * (BOS, the space prefix, the fingerprint text) and the end-of-generation tokens. `safeToken`
 * (the token of "a") is plain ASCII, so llama-server always reports it when it is forced.
 */
export async function describeLlamaServer(
  endpoint: Endpoint,
  signal?: AbortSignal,
): Promise<{ info: ServerInfo; safeToken: Token }> {
  const options = { signal };
  const [props, models] = await Promise.all([
    endpoint.getJson("/props", propsSchema, options),
    endpoint.getJson("/v1/models", modelsSchema, options),
  ]);
  const meta = models.data[0].meta;
  if (!meta)
    throw endpoint.failure("/v1/models", "reports no model metadata (still loading?)", "server-busy", true);
  const tokenize = async (content: string, addSpecial: boolean, parseSpecial: boolean) => {
    const body = { content, add_special: addSpecial, parse_special: parseSpecial, with_pieces: true };
    return (await endpoint.postJson("/tokenize", body, piecesSchema, options)).tokens;
  };
  const [withSpecial, plain, bos, probe] = await Promise.all([
    tokenize("a", true, false),
    tokenize("a", false, false),
    props.bos_token ? tokenize(props.bos_token, false, true) : Promise.resolve([]),
    tokenize(FINGERPRINT_TEXT, false, false),
  ]);
  const safeToken = plain[0]?.id;
  if (safeToken === undefined)
    throw endpoint.failure("/tokenize", 'tokenized "a" to nothing', "server-bad-response", false);
  const bosToken = bos.length === 1 ? bos[0].id : undefined;
  const firstPiece = plain[0].piece;
  const template = props.chat_template ?? "";
  const vocabularySize = meta.n_vocab;
  const info: ServerInfo = {
    dialect: "llama-server",
    modelName: basename(props.model_path),
    fingerprint: JSON.stringify({
      vocabularySize,
      params: meta.n_params,
      embd: meta.n_embd,
      size: meta.size,
      probe: probe.map((t) => t.id),
    }),
    vocabularySize,
    contextSize: props.default_generation_settings.n_ctx,
    bosToken,
    addBos: bosToken !== undefined && withSpecial.length > plain.length && withSpecial[0].id === bosToken,
    addSpacePrefix: typeof firstPiece === "string" && firstPiece.startsWith(" "),
    stopTokens: await endOfGenerationTokens(endpoint, bosToken ?? safeToken, signal),
    capacity: props.total_slots,
    capabilities: {
      maxTopK: vocabularySize,
      exactDistributions: true,
      seededSampling: true,
      prefixCache: true,
      singlePassScoring: false,
      chatTemplate: template !== "" && template !== CHATML_FALLBACK,
    },
  };
  return { info, safeToken };
}

/**
 * Pieces through `/tokenize` with token ids as content (it passes them through and renders
 * `with_pieces`, as special=true text), then the special-looking ones are forced once each: the
 * bytes llama-server reports for a generated token are its special=false rendering, empty for a
 * control token — which text then leaves out, as in-process.
 */
export async function fetchLlamaServerPieces(
  endpoint: Endpoint,
  info: ServerInfo,
  tokens: readonly Token[],
): Promise<Map<Token, Piece>> {
  const pieces = new Map<Token, Piece>();
  for (let start = 0; start < tokens.length; start += PIECE_CHUNK) {
    const content = tokens.slice(start, start + PIECE_CHUNK);
    const response = await endpoint.postJson("/tokenize", { content, with_pieces: true }, piecesSchema);
    for (const { id, piece } of response.tokens) pieces.set(id, { bytes: pieceBytes(piece), control: false });
  }
  const special = [...pieces].filter(
    ([id, piece]) => id === info.bosToken || info.stopTokens.has(id) || looksSpecial(piece.bytes),
  );
  await eachLimited(special, info.capacity, async ([id, piece]) => {
    const body = {
      ...greedyBody([info.bosToken ?? id], 1),
      logit_bias: [[id, 1e9]],
      response_fields: RESPONSE_FIELDS,
    };
    const response = await endpoint.postJson("/completion", body, completionSchema);
    // No probabilities: llama-server withheld the token (not a control token).
    if (response.completion_probabilities?.[0]?.bytes.length === 0) piece.control = true;
  });
  return pieces;
}

/** The end-of-generation tokens: `ignore_eos` makes llama-server list each with a -inf bias. */
async function endOfGenerationTokens(
  endpoint: Endpoint,
  token: Token,
  signal?: AbortSignal,
): Promise<Set<Token>> {
  const body = { prompt: [token], n_predict: 0, ignore_eos: true, response_fields: ["generation_settings"] };
  const response = await endpoint.postJson("/completion", body, settingsSchema, { signal });
  const biases = response.generation_settings.logit_bias ?? [];
  return new Set(biases.filter((b) => b.bias === null).map((b) => b.token));
}

function pieceBytes(piece: string | number[]): Uint8Array {
  return typeof piece === "string" ? new TextEncoder().encode(piece) : Uint8Array.from(piece);
}

/** `<s>`, `</s>`, `<|im_end|>`, `[INST]`: shapes of special tokens worth checking. */
function looksSpecial(bytes: Uint8Array): boolean {
  if (bytes.length < 3) return false;
  const first = bytes[0];
  const last = bytes[bytes.length - 1];
  return (first === 0x3c && last === 0x3e) || (first === 0x5b && last === 0x5d);
}

async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}
