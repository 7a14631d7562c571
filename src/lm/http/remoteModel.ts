import { TillerError } from "../../errors.js";
import type {
  ChatMessage,
  LanguageModel,
  ModelCallOptions,
  ModelCapabilities,
  ModelUsage,
  NextTokenDistribution,
  Rollout,
  RolloutOptions,
  RolloutRequest,
  ScoredContinuation,
  ScoreOptions,
  ScoreRequest,
  Token,
} from "../types.js";
import { type OpenDialectOptions, openDialect } from "./detect.js";
import type { DialectName, RequestStats, ServerInfo } from "./dialect.js";
import { Fleet, FleetMember, type FleetOptions } from "./fleet.js";
import { PieceCache } from "./pieces.js";
import { RolloutRun } from "./rolloutRun.js";
import { Endpoint, type EndpointOptions } from "./transport.js";

export interface RemoteModelOptions extends FleetOptions, EndpointOptions, OpenDialectOptions {}

/** What the servers were asked and how much their prompt caches served. */
export interface RemoteStats {
  /** HTTP requests for model calls (tokenizer and piece requests not included). */
  requests: number;
  /** Of those, requests for `scoreContinuations` (llama-server: one per run of plain-text tokens, one per other token). */
  scoreRequests: number;
  /** Prompt tokens sent. */
  promptTokens: number;
  /** Of those, tokens the servers took from their prompt caches. */
  cachedPromptTokens: number;
  /** Requests tried again after a retryable failure. */
  retries: number;
  endpoints: {
    url: string;
    healthy: boolean;
    failures: number;
    requests: number;
    promptTokens: number;
    cachedPromptTokens: number;
  }[];
}

/**
 * A `LanguageModel` served over HTTP by llama-server or vLLM — one server or a fleet of them
 * serving the same model. Every batched call becomes one request per prefix (routed by the
 * fleet: prefix affinity, least outstanding work, retries); the text of every token handed out is
 * cached so `detokenize` stays synchronous.
 */
export class RemoteModel implements LanguageModel {
  readonly id: string;
  readonly vocabularySize: number;
  readonly contextSize: number;
  readonly bosToken: Token | undefined;
  readonly stopTokens: Set<Token>;
  readonly capabilities: Readonly<ModelCapabilities>;
  /** The dialect every endpoint speaks. */
  readonly dialect: DialectName;
  private calls = 0;
  private generatedTokens = 0;

  private constructor(
    private readonly fleet: Fleet,
    private readonly pieces: PieceCache,
    private readonly info: ServerInfo,
  ) {
    this.id = info.modelName;
    this.dialect = info.dialect;
    this.vocabularySize = info.vocabularySize;
    this.contextSize = Math.min(...fleet.members.map((m) => m.dialect.info.contextSize));
    this.bosToken = info.bosToken;
    this.stopTokens = info.stopTokens;
    this.capabilities = info.capabilities;
  }

  /**
   * Connects to one server or several (a fleet): detects each one's dialect (or checks the forced
   * one), checks they all serve the same model, and caches the vocabulary's text where the
   * server gives it in bulk (llama-server).
   */
  static async open(urls: readonly string[], options: RemoteModelOptions = {}): Promise<RemoteModel> {
    if (urls.length === 0) throw new TillerError("no server URL was given", "no-server");
    const normalized = urls.map((url) => url.replace(/\/+$/, ""));
    const twice = normalized.find((url, i) => normalized.indexOf(url) !== i);
    if (twice)
      throw new TillerError(`${twice} is listed twice; a fleet needs distinct servers`, "duplicate-server");
    const endpoints = normalized.map((url) => new Endpoint(url, options));
    const dialects = await Promise.all(endpoints.map((endpoint) => openDialect(endpoint, options)));
    const members = dialects.map((dialect, i) => new FleetMember(endpoints[i].url, dialect));
    checkSameModel(members);
    // One stop set for the whole fleet (vLLM learns its end-of-sequence token as it goes).
    const info = members[0].dialect.info;
    const stopTokens = new Set<Token>(members.flatMap((m) => [...m.dialect.info.stopTokens]));
    // Models trained on concatenated documents end one by emitting BOS.
    if (info.bosToken !== undefined) stopTokens.add(info.bosToken);
    for (const member of members) member.dialect.info.stopTokens = stopTokens;
    const fleet = new Fleet(members, options);
    const pieces = new PieceCache(info.addSpacePrefix, info.bosToken, (tokens) =>
      fleet.run({ prefix: [], work: 0, run: (member) => member.dialect.fetchPieces(tokens) }),
    );
    const model = new RemoteModel(fleet, pieces, info);
    try {
      // llama-server renders any ids in one request: fetch the whole vocabulary once.
      if (info.dialect === "llama-server")
        await pieces.ensure(Array.from({ length: info.vocabularySize }, (_, i) => i));
      for (const member of members) member.dialect.attachPieces?.(pieces);
    } catch (error) {
      fleet.dispose();
      throw error;
    }
    return model;
  }

  /** The endpoints' base URLs. */
  get endpoints(): string[] {
    return this.fleet.members.map((m) => m.url);
  }

  get usage(): ModelUsage {
    const s = this.totals();
    return {
      evaluatedTokens: s.evaluatedTokens,
      requestedPrefixTokens: s.promptTokens,
      cachedPrefixTokens: s.cachedPromptTokens,
      generatedTokens: this.generatedTokens,
      calls: this.calls,
    };
  }

  get stats(): RemoteStats {
    const s = this.totals();
    return {
      requests: s.requests,
      scoreRequests: s.scoreRequests,
      promptTokens: s.promptTokens,
      cachedPromptTokens: s.cachedPromptTokens,
      retries: this.fleet.retries,
      endpoints: this.fleet.members.map((m) => ({
        url: m.url,
        healthy: m.healthy,
        failures: m.failures,
        requests: m.stats.requests,
        promptTokens: m.stats.promptTokens,
        cachedPromptTokens: m.stats.cachedPromptTokens,
      })),
    };
  }

  private totals(): RequestStats {
    const total: RequestStats = {
      requests: 0,
      scoreRequests: 0,
      promptTokens: 0,
      cachedPromptTokens: 0,
      evaluatedTokens: 0,
    };
    for (const { stats } of this.fleet.members)
      for (const key of Object.keys(total) as (keyof RequestStats)[]) total[key] += stats[key];
    return total;
  }

  async tokenize(text: string, options: { addBos?: boolean } = {}): Promise<Token[]> {
    const tokens = await this.fleet.run({ prefix: [], work: 0, run: (m) => m.dialect.tokenize(text) });
    const bos = this.bosToken;
    if ((options.addBos ?? true) && this.info.addBos && bos !== undefined && tokens[0] !== bos)
      tokens.unshift(bos);
    await this.pieces.ensure(tokens);
    return tokens;
  }

  async chatTokens(messages: readonly ChatMessage[]): Promise<Token[]> {
    if (!this.capabilities.chatTemplate)
      throw new TillerError(
        `${this.id} (served at ${this.endpoints[0]}) has no chat template of its own; pass a plain prompt`,
        "no-chat-template",
      );
    const tokens = await this.fleet.run({ prefix: [], work: 0, run: (m) => m.dialect.chatTokens(messages) });
    await this.pieces.ensure(tokens);
    return tokens;
  }

  detokenize(tokens: readonly Token[], options: { context?: readonly Token[] } = {}): string {
    return this.pieces.detokenize(tokens, options);
  }

  isStopToken(token: Token): boolean {
    return this.stopTokens.has(token);
  }

  async nextTokenDistributions(
    prefixes: readonly (readonly Token[])[],
    options: { topK: number } & ModelCallOptions,
  ): Promise<NextTokenDistribution[]> {
    for (const prefix of prefixes) this.checkPrefix(prefix);
    const topK = this.clampTopK(options.topK, options);
    this.calls++;
    const { signal } = options;
    const results = await Promise.all(
      prefixes.map((prefix) =>
        this.fleet.run(
          { prefix, work: 1, run: (m) => m.dialect.next(prefix, topK, { signal, stats: m.stats }) },
          signal,
        ),
      ),
    );
    await this.pieces.ensure(results.flatMap((distribution) => distribution.map((e) => e.token)));
    return results;
  }

  async scoreContinuations(
    requests: readonly ScoreRequest[],
    options: ScoreOptions = {},
  ): Promise<ScoredContinuation[]> {
    for (const request of requests) {
      this.checkPrefix(request.prefix);
      this.checkTokens(request.continuation);
      if (request.prefix.length + request.continuation.length >= this.contextSize)
        throw new TillerError(
          `prefix + continuation is ${request.prefix.length + request.continuation.length} tokens but the context holds ${this.contextSize}`,
          "prompt-too-long",
        );
    }
    const topK = options.topK ? this.clampTopK(options.topK, options) : 0;
    const nextTopK = options.nextTopK ? this.clampTopK(options.nextTopK, options) : 0;
    this.calls++;
    const { signal } = options;
    const results = await Promise.all(
      requests.map((request) => {
        if (request.continuation.length === 0 && nextTopK === 0)
          return Promise.resolve<ScoredContinuation>({ logprobs: [], logprob: 0 });
        const full = [...request.prefix, ...request.continuation];
        return this.fleet.run(
          {
            prefix: full,
            work: request.continuation.length + 1,
            run: (m) => m.dialect.score(request, { topK, nextTopK }, { signal, stats: m.stats }),
          },
          signal,
        );
      }),
    );
    await this.pieces.ensure(
      results.flatMap((r) => [...(r.top ?? []).flat(), ...(r.next ?? [])].map((e) => e.token)),
    );
    return results;
  }

  async rollouts(requests: readonly RolloutRequest[], options: RolloutOptions): Promise<Rollout[]> {
    options.signal?.throwIfAborted();
    for (const request of requests) this.checkPrefix(request.prefix);
    this.calls++;
    const run = new RolloutRun(this.fleet, this.pieces, this.stopTokens, this.contextSize, options);
    const rollouts = await run.run(requests);
    this.generatedTokens += run.generatedTokens;
    return rollouts;
  }

  /** The top-k a call gets: at most what the server returns, with a warning when that is less. */
  private clampTopK(requested: number, options: ModelCallOptions): number {
    const topK = Math.max(1, Math.floor(requested));
    const limit = this.capabilities.maxTopK;
    if (topK <= limit) return topK;
    if (limit < this.vocabularySize)
      options.onWarning?.({
        code: "top-k-clamped",
        message: `${this.dialect} returns at most ${limit} logprobs per position: top-${topK} clamped to ${limit}`,
      });
    return limit;
  }

  private checkPrefix(prefix: readonly Token[]): void {
    if (prefix.length === 0)
      throw new TillerError("a prefix must hold at least one token (e.g. BOS)", "empty-prefix");
    if (prefix.length >= this.contextSize)
      throw new TillerError(
        `the input is ${prefix.length} tokens but the server's context holds ${this.contextSize}; shorten the prompt or start the server with a larger context`,
        "prompt-too-long",
      );
    this.checkTokens(prefix);
  }

  private checkTokens(tokens: readonly Token[]): void {
    for (const token of tokens)
      if (!Number.isInteger(token) || token < 0 || token >= this.vocabularySize)
        throw new TillerError(
          `token ${token} is not in the vocabulary (0…${this.vocabularySize - 1})`,
          "bad-token",
        );
  }

  async dispose(): Promise<void> {
    this.fleet.dispose();
  }
}

/** Every endpoint of a fleet must speak one dialect and serve one model. */
function checkSameModel(members: readonly FleetMember[]): void {
  const [first, ...rest] = members;
  for (const member of rest) {
    const a = first.dialect.info;
    const b = member.dialect.info;
    if (a.dialect !== b.dialect)
      throw new TillerError(
        `${member.url} is a ${b.dialect} server but ${first.url} is ${a.dialect}; a fleet is one kind of server`,
        "fleet-mixed-dialects",
      );
    if (a.fingerprint !== b.fingerprint)
      throw new TillerError(
        `${member.url} serves ${b.modelName} but ${first.url} serves ${a.modelName}${a.modelName === b.modelName ? " with other weights or tokenizer" : ""}; every server of a fleet must serve the same model`,
        "model-mismatch",
      );
  }
}
