import { ReferencePolicy } from "../calibration/reference.js";
import type { ServerContext } from "./context.js";
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

/** Most distinct reference settings kept in memory (least recently used dropped first). */
const KEPT = 16;

/**
 * The reference policies the score endpoint calibrates against, one per distinct settings, kept
 * across requests so a prompt's reference samples are drawn once (and cached on disk as the CLI
 * does). Their model calls go through the scheduler like every request's.
 */
export class ReferenceCache {
  private readonly policies = new Map<string, ReferencePolicy>();

  constructor(
    private readonly context: ServerContext,
    private readonly cacheDir: string | false | undefined,
  ) {}

  settingsOf(reference: ScoreBody["reference"]): ReferenceSettings {
    return { ...REFERENCE_DEFAULTS, ...reference, stop: reference?.stop ?? REFERENCE_DEFAULTS.stop };
  }

  policy(settings: ReferenceSettings): ReferencePolicy {
    const key = JSON.stringify(settings);
    let policy = this.policies.get(key);
    if (policy) {
      this.policies.delete(key);
    } else {
      policy = new ReferencePolicy(this.context.view(), {
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
      });
    }
    this.policies.set(key, policy);
    if (this.policies.size > KEPT) {
      const oldest = this.policies.keys().next().value;
      if (oldest !== undefined) this.policies.delete(oldest);
    }
    return policy;
  }
}
