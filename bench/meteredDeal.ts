/**
 * `deal-metered`: the built-in DeAL strategy, unchanged, that also adds up what its searches cost
 * — steps, HTTP requests (a RemoteModel's), prompt tokens requested and served from cache — so a
 * bench can run it through `runEval` (exactly as `tiller eval` runs `deal`) and still tell the
 * search's own requests from the eval's re-scoring.
 */
import { BUILTIN_STRATEGIES } from "../src/decoding/builtins.js";
import { registerStrategy, strategyNames } from "../src/decoding/registry.js";
import { RemoteModel } from "../src/lm/http/remoteModel.js";
import type { LanguageModel } from "../src/lm/types.js";

export interface DealMeter {
  /** Search steps (DeAL's `details.steps`; the greedy finish after saturation not counted). */
  steps: number;
  /** HTTP requests for model calls during the searches (0 in process). */
  requests: number;
  /** Prefix tokens the searches asked the model to evaluate. */
  requestedTokens: number;
  /** Of those, tokens served from a cache (llama-server's `cache_n`; in process: the sequence pool). */
  cachedTokens: number;
}

export const emptyMeter = (): DealMeter => ({ steps: 0, requests: 0, requestedTokens: 0, cachedTokens: 0 });

/** The meter each `deal-metered` search adds to, keyed by model. */
const meters = new Map<LanguageModel, DealMeter>();

export function meterOf(model: LanguageModel): DealMeter {
  const meter = meters.get(model) ?? emptyMeter();
  meters.set(model, meter);
  return meter;
}

const requestsOf = (model: LanguageModel) => (model instanceof RemoteModel ? model.stats.requests : 0);

/** Registers `deal-metered` (once); it takes every parameter `deal` takes. */
export function registerMeteredDeal(): void {
  if (strategyNames().includes("deal-metered")) return;
  const deal = BUILTIN_STRATEGIES.find((d) => d.name === "deal");
  if (!deal?.needsReward) throw new Error("the built-in deal strategy is missing");
  registerStrategy({
    name: "deal-metered",
    needsReward: true,
    params: deal.params,
    create: (spec, deps) => {
      const inner = deal.create({ ...spec, name: "deal" }, deps);
      return {
        name: inner.name,
        async decode(context) {
          const { model } = context;
          const requests = requestsOf(model);
          const usage = { ...model.usage };
          const output = await inner.decode(context);
          const meter = meterOf(model);
          meter.requests += requestsOf(model) - requests;
          meter.requestedTokens += model.usage.requestedPrefixTokens - usage.requestedPrefixTokens;
          meter.cachedTokens += model.usage.cachedPrefixTokens - usage.cachedPrefixTokens;
          if (output.details?.strategy === "deal") meter.steps += output.details.steps;
          return output;
        },
      };
    },
  });
}
