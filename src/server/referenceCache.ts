import { type CtrlRewardFunction, ctrlReward } from "../calibration/ctrl.js";
import { ReferencePolicy } from "../calibration/reference.js";
import type { Transform } from "../calibration/transforms.js";
import type { Reward } from "../rewards/types.js";
import type { ServerContext } from "./context.js";
import { Lru } from "./lru.js";
import type { ScoreBody } from "./schemas.js";

/** Reference settings a /v1/rewards/score request may give, with the defaults filled in. */
export interface ReferenceSettings {
  m: number;
  temperature: number;
  top_k: number;
  top_p: number;
  seed: number;
  max_tokens: number;
  stop: string[];
}

export const REFERENCE_DEFAULTS: ReferenceSettings = {
  m: 32,
  temperature: 1,
  top_k: 0,
  top_p: 1,
  seed: 0,
  max_tokens: 64,
  stop: [],
};

/** A CTRL reward ready to score: the raw reward r and Φ(C(r)). */
export interface CtrlScorer {
  raw: Reward;
  ctrl: CtrlRewardFunction;
  transform: Transform;
}

/**
 * What the score endpoint keeps across requests: one reference policy per distinct settings (a
 * prompt's reference samples are drawn once, and cached on disk as the CLI does) and one CTRL
 * reward per (reward, transform, reference) — which remembers each prompt's scored reference, so
 * a trainer scoring the same prompts again pays only for its new completions. Both are bounded
 * (least recently used dropped first); their model calls go through the scheduler like every
 * request's.
 */
export class ReferenceCache {
  private readonly policies = new Lru<string, ReferencePolicy>(16);
  private readonly scorers = new Lru<string, CtrlScorer>(64);

  constructor(
    private readonly context: ServerContext,
    private readonly cacheDir: string | false | undefined,
  ) {}

  settingsOf(reference: ScoreBody["reference"]): ReferenceSettings {
    return { ...REFERENCE_DEFAULTS, ...reference, stop: reference?.stop ?? REFERENCE_DEFAULTS.stop };
  }

  policy(settings: ReferenceSettings): ReferencePolicy {
    return this.policies.get(
      JSON.stringify(settings),
      () =>
        new ReferencePolicy(this.context.view(), {
          m: settings.m,
          maxTokens: settings.max_tokens,
          temperature: settings.temperature,
          topK: settings.top_k,
          topP: settings.top_p,
          seed: settings.seed,
          stopStrings: settings.stop,
          modelPath: this.context.modelPath,
          cacheDir: this.cacheDir,
          onWarning: (message) => this.context.logger.warn({ reference: settings }, message),
        }),
    );
  }

  /**
   * The CTRL reward for (reward specs, weights, transform, reference settings): the cached one,
   * or one over `raw` (the caller parsed the specs, so bad ones were reported against their field).
   */
  scorer(
    key: { specs: readonly string[]; weights?: readonly number[] },
    raw: Reward,
    transform: Transform,
    settings: ReferenceSettings,
  ): CtrlScorer {
    return this.scorers.get(JSON.stringify({ ...key, transform: transform.label, settings }), () => ({
      raw,
      transform,
      ctrl: ctrlReward({ reward: raw, transform, reference: this.policy(settings) }),
    }));
  }
}
