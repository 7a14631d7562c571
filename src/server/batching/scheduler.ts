import { TillerError } from "../../errors.js";
import {
  type LanguageModel,
  type ModelUsage,
  type NextTokenDistribution,
  type Rollout,
  type RolloutOptions,
  type RolloutRequest,
  type Token,
  usageSince,
} from "../../lm/types.js";
import { RolloutState } from "./rolloutState.js";
import { shareUsage, snapshotUsage } from "./usageShare.js";

/**
 * Continuous batching for a served model. The in-process backend serialises whole calls, so two
 * requests' `rollouts` would run one after the other. The scheduler instead advances every
 * pending rollout (and every pending next-token lookup) by one token per backend call: each step
 * is ONE batched call holding the next token of all of them, and a request that arrives joins at
 * the next step instead of waiting for the others to finish.
 *
 * A rollout call that is alone runs as one backend `rollouts` call (no per-step overhead); when
 * other work arrives it is preempted after its current token and continues stepped. Rollouts
 * give the same tokens either way: greedy is greedy, and a sampled rollout keeps its seeded
 * sampler's position (`RolloutState.sampler`).
 *
 * `scoreContinuations` and other whole calls run between steps, in arrival order.
 */
export class StepScheduler {
  readonly stats = { steps: 0, steppedItems: 0, soloCalls: 0, preemptions: 0, exclusiveCalls: 0 };
  private readonly pending: Work[] = [];
  private readonly exclusives: ExclusiveWork[] = [];
  private running = false;
  private solo: AbortController | undefined;

  constructor(
    readonly base: LanguageModel,
    /** Prefixes one backend call evaluates at once (the backend's sequence pool size). */
    readonly capacity: number,
  ) {
    if (!(Number.isInteger(capacity) && capacity >= 1))
      throw new TillerError(`the batch capacity must be an integer ≥ 1, got ${capacity}`, "bad-options");
  }

  /** Work waiting or running (rollout and lookup calls, whole calls). */
  get depth(): number {
    return this.pending.length + this.exclusives.length;
  }

  async rollouts(
    owner: ModelUsage,
    requests: readonly RolloutRequest[],
    options: RolloutOptions,
  ): Promise<Rollout[]> {
    options.signal?.throwIfAborted();
    for (const request of requests) this.checkPrefix(request.prefix);
    if (requests.length === 0) return [];
    return new Promise((resolve, reject) => {
      this.enqueue({
        kind: "rollout",
        owner,
        states: requests.map((request, i) => new RolloutState(i, request, options)),
        options,
        greedy: (options.temperature ?? 0) <= 0,
        resolve,
        reject,
      });
    });
  }

  async nextTokenDistributions(
    owner: ModelUsage,
    prefixes: readonly (readonly Token[])[],
    options: { topK: number; signal?: AbortSignal },
  ): Promise<NextTokenDistribution[]> {
    options.signal?.throwIfAborted();
    for (const prefix of prefixes) this.checkPrefix(prefix);
    if (prefixes.length === 0) return [];
    return new Promise((resolve, reject) => {
      this.enqueue({
        kind: "lookup",
        owner,
        prefixes,
        topK: Math.max(1, Math.floor(options.topK)),
        signal: options.signal,
        results: new Array(prefixes.length),
        sent: 0,
        done: 0,
        resolve,
        reject,
      });
    });
  }

  /** Runs a whole backend call between steps (its usage goes to `owner`). */
  exclusive<T>(owner: ModelUsage, run: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.exclusives.push({ owner, run, resolve: resolve as (value: unknown) => void, reject });
      this.solo?.abort();
      this.kick();
    });
  }

  private enqueue(work: Work): void {
    this.pending.push(work);
    if (this.solo) {
      this.stats.preemptions++;
      this.solo.abort();
    }
    this.kick();
  }

  private checkPrefix(prefix: readonly Token[]): void {
    if (prefix.length === 0)
      throw new TillerError("a prefix must hold at least one token (e.g. BOS)", "empty-prefix");
    if (prefix.length >= this.base.contextSize)
      throw new TillerError(
        `the input is ${prefix.length} tokens but the context holds ${this.base.contextSize}`,
        "prompt-too-long",
      );
  }

  private kick(): void {
    if (this.running) return;
    this.running = true;
    void this.loop().finally(() => {
      this.running = false;
      if (this.depth > 0) this.kick();
    });
  }

  private async loop(): Promise<void> {
    for (;;) {
      this.settleAborted();
      const whole = this.exclusives.shift();
      if (whole) {
        await this.runExclusive(whole);
        continue;
      }
      const solo = this.soloCandidate();
      if (solo) {
        await this.runSolo(solo);
        this.settleIfDone(solo.work);
        continue;
      }
      const items = this.pickItems();
      if (items.length === 0) return;
      await this.runStep(items);
    }
  }

  /**
   * Work that may run as one backend `rollouts` call: a rollout call that is alone, up to one
   * batch of its live rollouts (the rest follow in later calls), sampled ones only before their
   * sampler was used here.
   */
  private soloCandidate(): { work: RolloutWork; states: RolloutState[] } | undefined {
    if (this.exclusives.length > 0 || this.pending.length !== 1) return undefined;
    const work = this.pending[0];
    if (work.kind !== "rollout") return undefined;
    const states = work.states.filter((state) => state.live).slice(0, this.capacity);
    if (states.length === 0) return undefined;
    if (!work.greedy && states.some((state) => state.tokens.length > 0)) return undefined;
    return { work, states };
  }

  private async runSolo({
    work,
    states: live,
  }: {
    work: RolloutWork;
    states: RolloutState[];
  }): Promise<void> {
    const preempt = new AbortController();
    this.solo = preempt;
    this.stats.soloCalls++;
    const userSignal = work.options.signal;
    const signal = userSignal ? AbortSignal.any([userSignal, preempt.signal]) : preempt.signal;
    const before = snapshotUsage(this.base.usage);
    try {
      const rollouts = await this.base.rollouts(
        live.map((state) => ({
          prefix: state.fullPrefix(),
          seed: state.seed,
          maxTokens: state.maxTokens - state.tokens.length,
        })),
        {
          ...work.options,
          maxTokens: Math.max(...live.map((state) => state.maxTokens)),
          signal,
          onToken: work.options.onToken && ((i, token) => work.options.onToken?.(live[i].index, token)),
        },
      );
      rollouts.forEach((rollout, i) => {
        const state = live[i];
        state.started = true;
        state.tokens.push(...rollout.tokens);
        state.logprobs.push(...rollout.logprobs);
        // "aborted" by the preemption only pauses the rollout; the caller's abort ends it.
        if (rollout.stopReason !== "aborted" || userSignal?.aborted) state.stopReason = rollout.stopReason;
      });
    } catch (error) {
      // Preempted before the backend started: nothing happened, the rollouts continue stepped.
      if (!preempt.signal.aborted || userSignal?.aborted) this.fail(work, error);
    } finally {
      this.solo = undefined;
      shareUsage(usageSince(before, this.base.usage), [work.owner], [1]);
    }
  }

  /** Up to `capacity` prefixes for the next step, oldest work first. */
  private pickItems(): StepItem[] {
    const items: StepItem[] = [];
    for (const work of this.pending) {
      if (items.length >= this.capacity) break;
      if (work.kind === "lookup") {
        while (work.sent < work.prefixes.length && items.length < this.capacity)
          items.push({ work, index: work.sent++ });
      } else {
        for (const state of work.states) {
          if (items.length >= this.capacity) break;
          if (state.live) items.push({ work, state });
        }
      }
    }
    return items;
  }

  /** One batched backend call: the next token of every item. */
  private async runStep(items: StepItem[]): Promise<void> {
    this.stats.steps++;
    this.stats.steppedItems += items.length;
    const prefixes = items.map((item) =>
      item.work.kind === "lookup"
        ? item.work.prefixes[item.index as number]
        : (item.state as RolloutState).fullPrefix(),
    );
    const weights = items.map((item, i) =>
      item.work.kind === "lookup" || !item.state?.started ? prefixes[i].length : 1,
    );
    const needsDistribution = items.some((item) => item.work.kind === "lookup" || !item.work.greedy);
    const before = snapshotUsage(this.base.usage);
    let outputs: NextTokenDistribution[];
    try {
      outputs = needsDistribution
        ? await this.base.nextTokenDistributions(prefixes, { topK: this.topKFor(items) })
        : // Greedy only: the backend's argmax is cheaper than a full distribution.
          (
            await this.base.rollouts(
              prefixes.map((prefix) => ({ prefix })),
              { maxTokens: 1, temperature: 0 },
            )
          ).map((rollout) => [{ token: rollout.tokens[0], logprob: rollout.logprobs[0] }]);
    } catch (error) {
      for (const work of new Set(items.map((item) => item.work))) this.fail(work, error);
      return;
    } finally {
      shareUsage(
        usageSince(before, this.base.usage),
        items.map((item) => item.work.owner),
        weights,
      );
    }
    items.forEach((item, i) => {
      try {
        this.apply(item, outputs[i]);
      } catch (error) {
        this.fail(item.work, error);
      }
    });
    for (const work of new Set(items.map((item) => item.work))) this.settleIfDone(work);
  }

  private topKFor(items: readonly StepItem[]): number {
    let k = 1;
    for (const item of items) {
      if (item.work.kind === "lookup") k = Math.max(k, item.work.topK);
      else if (!item.work.greedy) return Number.POSITIVE_INFINITY;
    }
    return k;
  }

  private apply(item: StepItem, distribution: NextTokenDistribution): void {
    const { work } = item;
    if (work.kind === "lookup") {
      work.results[item.index as number] = distribution.slice(0, work.topK);
      work.done++;
      return;
    }
    const state = item.state as RolloutState;
    state.started = true;
    const { token, logprob } = work.greedy ? distribution[0] : state.draw(distribution, work.options);
    state.push(token, logprob, this.base, work.options);
    work.options.onToken?.(state.index, token);
  }

  /** Ends work whose caller aborted: rollouts keep what they generated, lookups reject. */
  private settleAborted(): void {
    for (const work of [...this.pending]) {
      if (work.kind === "lookup") {
        if (work.signal?.aborted) this.fail(work, work.signal.reason);
      } else if (work.options.signal?.aborted) {
        for (const state of work.states) if (state.live) state.stopReason = "aborted";
        this.settleIfDone(work);
      }
    }
  }

  private settleIfDone(work: Work): void {
    if (!this.pending.includes(work)) return;
    if (work.kind === "lookup") {
      if (work.done < work.prefixes.length) return;
      this.remove(work);
      work.resolve(work.results);
      return;
    }
    if (work.states.some((state) => state.live)) return;
    this.remove(work);
    work.resolve(
      work.states.map((state) => ({
        tokens: state.tokens,
        logprobs: state.logprobs,
        logprob: state.logprobs.reduce((a, b) => a + b, 0),
        stopReason: state.stopReason ?? "max-tokens",
      })),
    );
  }

  private fail(work: Work, error: unknown): void {
    if (!this.pending.includes(work)) return;
    this.remove(work);
    work.reject(error);
  }

  private remove(work: Work): void {
    const at = this.pending.indexOf(work);
    if (at >= 0) this.pending.splice(at, 1);
  }

  private async runExclusive(work: ExclusiveWork): Promise<void> {
    this.stats.exclusiveCalls++;
    const before = snapshotUsage(this.base.usage);
    try {
      work.resolve(await work.run());
    } catch (error) {
      work.reject(error);
    } finally {
      shareUsage(usageSince(before, this.base.usage), [work.owner], [1]);
    }
  }
}

interface RolloutWork {
  kind: "rollout";
  owner: ModelUsage;
  states: RolloutState[];
  options: RolloutOptions;
  greedy: boolean;
  resolve: (rollouts: Rollout[]) => void;
  reject: (error: unknown) => void;
}

interface LookupWork {
  kind: "lookup";
  owner: ModelUsage;
  prefixes: readonly (readonly Token[])[];
  topK: number;
  signal?: AbortSignal;
  results: NextTokenDistribution[];
  /** Prefixes handed to a step so far. */
  sent: number;
  /** Prefixes answered so far. */
  done: number;
  resolve: (results: NextTokenDistribution[]) => void;
  reject: (error: unknown) => void;
}

type Work = RolloutWork | LookupWork;

interface ExclusiveWork {
  owner: ModelUsage;
  run: () => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** One prefix of a step: a lookup's `index`-th prefix, or a rollout's next token. */
interface StepItem {
  work: Work;
  index?: number;
  state?: RolloutState;
}
