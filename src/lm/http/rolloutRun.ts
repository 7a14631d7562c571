import { rolloutStopReason } from "../rolloutStop.js";
import type { Rollout, RolloutOptions, RolloutRequest, StopReason, Token } from "../types.js";
import type { ServerStop } from "./dialect.js";
import type { Fleet, FleetJob } from "./fleet.js";
import type { PieceCache } from "./pieces.js";

interface RolloutState {
  request: RolloutRequest;
  maxTokens: number;
  tokens: Token[];
  logprobs: number[];
  stopReason?: StopReason;
}

/**
 * One `rollouts` call on a remote model: the requests become server jobs routed by the fleet,
 * tokens come back one by one, and tiller's own stop rule (the in-process backend's) decides
 * where each rollout ends, so both backends stop on the same token.
 */
export class RolloutRun {
  generatedTokens = 0;
  private states: RolloutState[] = [];

  constructor(
    private readonly fleet: Fleet,
    private readonly pieces: PieceCache,
    private readonly stopTokens: ReadonlySet<Token>,
    private readonly contextSize: number,
    private readonly options: RolloutOptions,
  ) {}

  async run(requests: readonly RolloutRequest[]): Promise<Rollout[]> {
    this.states = requests.map((request) => ({
      request,
      maxTokens: request.maxTokens ?? this.options.maxTokens,
      tokens: [],
      logprobs: [],
    }));
    for (const state of this.states) if (state.maxTokens <= 0) state.stopReason = "max-tokens";
    await Promise.all(this.sampleGroups().map((group) => this.runGroup(group)));
    return this.states.map((state) => ({
      tokens: state.tokens,
      logprobs: state.logprobs,
      logprob: state.logprobs.reduce((a, b) => a + b, 0),
      stopReason: state.stopReason ?? "max-tokens",
    }));
  }

  /**
   * Request indices one server request serves together: sampled rollouts from the same prefix
   * without their own seeds become one multi-sample request where the dialect has one (vLLM's
   * `n`); everything else is a request of its own.
   */
  private sampleGroups(): number[][] {
    const live = this.states.map((_, i) => i).filter((i) => !this.states[i].stopReason);
    const sampled = (this.options.temperature ?? 0) > 0;
    if (!this.fleet.members[0].dialect.multiSample || !sampled) return live.map((i) => [i]);
    const groups = new Map<string, number[]>();
    const singles: number[][] = [];
    for (const i of live) {
      const { request, maxTokens } = this.states[i];
      if (request.seed !== undefined) {
        singles.push([i]);
        continue;
      }
      const key = `${maxTokens}:${request.prefix.join(",")}`;
      const group = groups.get(key);
      if (group) group.push(i);
      else groups.set(key, [i]);
    }
    return [...groups.values(), ...singles];
  }

  /**
   * Runs one group through the fleet. A single rollout that fails part-way is resumed on the
   * next try from the tokens it already has (on another endpoint if one is healthy); tokens
   * already streamed are not streamed again.
   */
  private async runGroup(group: number[]): Promise<void> {
    const { options } = this;
    const lead = this.states[group[0]];
    const single = group.length === 1;
    const prefixNow = () => (single ? [...lead.request.prefix, ...lead.tokens] : lead.request.prefix);
    const job: FleetJob<void> = {
      get prefix() {
        return prefixNow();
      },
      work: lead.maxTokens * group.length,
      run: async (member) => {
        if (single && lead.stopReason) return;
        const prefix = prefixNow();
        const budget = Math.min(
          lead.maxTokens - (single ? lead.tokens.length : 0),
          this.contextSize - prefix.length,
        );
        if (budget <= 0) {
          lead.stopReason ??= lead.tokens.length >= lead.maxTokens ? "max-tokens" : "context-full";
          return;
        }
        const stops = await member.dialect.rollout({
          prefix,
          maxTokens: budget,
          samples: group.length,
          sampling: {
            temperature: options.temperature,
            topK: options.topK,
            topP: options.topP,
            seed: lead.request.seed ?? options.seed,
          },
          stopStrings: options.stopStrings,
          signal: options.signal,
          stats: member.stats,
          seen: (tokens) => this.pieces.ensure(tokens),
          onToken: (sample, token, logprob) => this.accept(group[sample], token, logprob),
        });
        stops.forEach((stop, sample) => {
          const state = this.states[group[sample]];
          state.stopReason ??= this.serverStopReason(stop, state);
        });
      },
      holds: () => prefixNow(),
    };
    try {
      await this.fleet.run(job, options.signal);
    } catch (error) {
      if (!options.signal?.aborted) throw error;
      for (const i of group) this.states[i].stopReason ??= "aborted";
    }
  }

  /** Takes one generated token of request `index`; false when its rollout stops after it. */
  private accept(index: number, token: Token, logprob: number): boolean {
    const state = this.states[index];
    state.tokens.push(token);
    state.logprobs.push(logprob);
    this.generatedTokens++;
    this.options.onToken?.(index, token);
    state.stopReason = this.stopAfter(state);
    return state.stopReason === undefined;
  }

  /** The rollout stop rule every backend shares (rolloutStop.ts), so both end on the same token. */
  private stopAfter(state: RolloutState): StopReason | undefined {
    const model = {
      isStopToken: (token: Token) => this.stopTokens.has(token),
      detokenize: this.pieces.detokenize.bind(this.pieces),
      contextSize: this.contextSize,
    };
    return rolloutStopReason(model, state.request.prefix, state.tokens, state.maxTokens, this.options);
  }

  private serverStopReason(stop: ServerStop, state: RolloutState): StopReason {
    if (stop === "end-of-generation" || stop === "stop-string") return stop;
    return state.request.prefix.length + state.tokens.length >= this.contextSize
      ? "context-full"
      : "max-tokens";
  }
}
