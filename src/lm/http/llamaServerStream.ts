import { pickToken, seededRandom } from "../sampling.js";
import type { SamplingOptions, Token } from "../types.js";
import type { RolloutCall, ServerStop } from "./dialect.js";
import { countRequest, logprobOf, type PositionReader } from "./llamaServerPositions.js";
import { STREAM_FIELDS, streamEventSchema, type Timings } from "./llamaServerWire.js";
import type { Endpoint } from "./transport.js";
import { concatBytes, endsInsideCharacter } from "./utf8.js";

/**
 * A rollout on one llama-server slot, streamed: each token goes to tiller as it arrives, and when
 * tiller's stop rule (stop tokens, stop strings) fires the connection is closed, which makes
 * llama-server cancel. Where llama-server withholds tokens (a character split across tokens: the
 * stream cannot name them), the stream is closed there, the split character is generated here
 * token by token from the server's distributions, and streaming resumes after it.
 */
export class StreamedRollout {
  /** Tokens accepted so far (what the slot's cache holds after the prefix). */
  readonly generated: Token[] = [];

  constructor(
    private readonly endpoint: Endpoint,
    private readonly positions: PositionReader,
    private readonly slot: number,
    private readonly call: RolloutCall,
  ) {}

  async run(): Promise<ServerStop> {
    const { call, generated } = this;
    let stop: ServerStop | undefined;
    while (!stop) {
      if (generated.length >= call.maxTokens) return "length";
      stop = (await this.stream()) ?? (await this.stepOverSplit());
    }
    return stop;
  }

  /** One streamed request. Returns why the rollout ended, or undefined when the server withheld tokens. */
  private async stream(): Promise<ServerStop | undefined> {
    const { call, generated } = this;
    const prompt = [...call.prefix, ...generated];
    const budget = call.maxTokens - generated.length;
    const body = {
      ...samplingBody(call.sampling, prompt.length),
      prompt,
      n_predict: budget,
      n_probs: 1,
      stream: true,
      // Timings in every event: a rollout tiller cancels still reports its prompt cache use.
      timings_per_token: true,
      cache_prompt: true,
      post_sampling_probs: false,
      id_slot: this.slot,
      response_fields: STREAM_FIELDS,
    };
    let stop: ServerStop | undefined;
    let withheld = false;
    let timings: Timings | undefined;
    let reported = 0;
    await this.endpoint.postEvents(
      "/completion",
      body,
      streamEventSchema,
      (event) => {
        if (event.error !== undefined) {
          const error = JSON.stringify(event.error);
          // Text ending in invalid UTF-8 fails llama-server's final parse after every token was
          // streamed: the generation itself is over, possibly with a withheld tail.
          if (!/does not match the expected/.test(error))
            throw this.endpoint.failure("/completion", `failed mid-stream: ${error}`, "server-error", true);
          if (reported >= budget) stop = "length";
          else withheld = true;
          return false;
        }
        timings = event.timings ?? timings;
        const tokens = event.tokens ?? [];
        if ((event.tokens_predicted ?? reported + tokens.length) > reported + tokens.length) {
          withheld = true;
          return false;
        }
        const probs = event.completion_probabilities ?? [];
        for (let i = 0; i < tokens.length && !stop; i++) {
          if (probs[i]?.id !== tokens[i])
            throw this.endpoint.failure(
              "/completion",
              "streamed a token without its probability",
              "server-bad-response",
              false,
            );
          reported++;
          generated.push(tokens[i]);
          if (!call.onToken(0, tokens[i], logprobOf(probs[i].logprob))) stop = "tiller";
        }
        if (event.stop && !stop) stop = serverStop(event.stop_type);
        return !stop;
      },
      { signal: call.signal },
    );
    countRequest(
      call.stats,
      prompt.length,
      timings ?? { cache_n: 0, prompt_n: prompt.length, predicted_n: 0 },
    );
    if (stop || withheld) return stop;
    throw this.endpoint.failure(
      "/completion",
      "closed the stream before its final event",
      "server-closed",
      true,
      true,
    );
  }

  /**
   * Generates the tokens of a split character here, one server request per token: each position's
   * distribution, then tiller's own sampler — greedy, or temperature / top-k / top-p, seeded.
   * Returns why the rollout ended, if it did.
   */
  private async stepOverSplit(): Promise<ServerStop | undefined> {
    const { call, generated } = this;
    const { sampling } = call;
    const greedy = (sampling.temperature ?? 0) <= 0;
    const random = seededRandom(mixSeed(sampling.seed ?? 0, call.prefix.length + generated.length));
    // Greedy needs the argmax only; sampling needs what the sampler can pick (top-k, else everything).
    const width = greedy ? 1 : sampling.topK && sampling.topK > 0 ? sampling.topK : Number.MAX_SAFE_INTEGER;
    const stretch: Uint8Array[] = [];
    do {
      if (generated.length >= call.maxTokens) return "length";
      const sorted = await this.positions.distribution(
        [...call.prefix, ...generated],
        width,
        this.slot,
        call,
        false,
      );
      const token = greedy ? sorted[0].token : pickToken(sorted, sampling, random);
      generated.push(token);
      if (!call.onToken(0, token, sorted.find((e) => e.token === token)?.logprob ?? Number.NaN))
        return "tiller";
      stretch.push(this.positions.pieces?.bytesOf(token) ?? new Uint8Array(0));
    } while (endsInsideCharacter(concatBytes(stretch)));
    return undefined;
  }
}

function serverStop(stopType: string | undefined): ServerStop {
  if (stopType === "eos") return "end-of-generation";
  return stopType === "word" ? "stop-string" : "length";
}

/**
 * tiller's sampler (temperature, then top-k, then top-p on the tempered distribution). The seed is
 * mixed with the prompt length, so a rollout continued in a later request (after a split
 * character or a failover) does not replay the random stream of its first request.
 */
function samplingBody(sampling: SamplingOptions, promptLength: number): Record<string, unknown> {
  const temperature = sampling.temperature ?? 0;
  if (temperature <= 0) return { temperature: 0, samplers: ["temperature"] };
  return {
    temperature,
    samplers: ["top_k", "temperature", "top_p"],
    top_k: sampling.topK ?? 0,
    top_p: sampling.topP ?? 1,
    min_keep: 1,
    seed: mixSeed(sampling.seed ?? 0, promptLength),
  };
}

/** A 32-bit seed from a rollout's seed and where in the sequence a request starts. */
function mixSeed(seed: number, position: number): number {
  return (Math.imul((seed ^ position) >>> 0, 0x9e3779b1) >>> 0) % 0xffffffff;
}
