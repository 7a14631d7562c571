import { z } from "zod";
import type { Reward } from "../rewards/types.js";
import { fields, parseOptions, rewardField } from "../util/options.js";
import { calibrated } from "./calibrated.js";
import type { ReferenceSource } from "./reference.js";
import { type Transform, transformed } from "./transforms.js";

export interface CtrlRewardOptions {
  /** The raw reward r. */
  reward: Reward;
  /** Φ: "identity" (default), "log", "exp:t", "negexp:t", or a parsed `Transform`. */
  transform?: Transform | string;
  /** The reference policy C is calibrated against. */
  reference: ReferenceSource;
}

const ctrlRewardOptionsSchema = z
  .object({
    reward: rewardField,
    transform: z.union([z.string().min(1), fields.object<Transform>("a transform")]).optional(),
    reference: fields.object<ReferenceSource>("a reference source (ReferencePolicy or fixedReference)"),
  })
  .strict();

/** The CTRL reward as a plain function, plus the Reward it wraps. */
export type CtrlRewardFunction = ((prompt: string, completion: string) => Promise<number>) & {
  readonly reward: Reward;
};

/**
 * CTRL's reward for an external RL trainer (PAPERS.md §2): Φ(C(x, y)) — calibrate r against the
 * reference, then transform. The result is a plain `(prompt, completion) => Promise<number>`; the
 * completion is judged as a finished text (tokenized with the reference's model when it has one,
 * for rewards that count tokens). Reference samples and scores are cached per prompt.
 */
export function ctrlReward(options: CtrlRewardOptions): CtrlRewardFunction {
  parseOptions("ctrlReward", ctrlRewardOptionsSchema, options);
  const reward = transformed(calibrated(options.reward, options.reference), options.transform ?? "identity", {
    name: `ctrl(${options.reward.name})`,
  });
  const model = options.reference.model;
  const fn = async (prompt: string, completion: string): Promise<number> =>
    reward.score({
      prompt,
      text: completion,
      tokens: model ? await model.tokenize(completion, { addBos: false }) : [],
      finished: true,
    });
  return Object.assign(fn, { reward });
}
