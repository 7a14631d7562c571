import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { createStrategy, parseStrategySpec, strategyCatalog } from "../../decoding/registry.js";
import { PROV_DECODE_RECOMMENDED } from "../../provenance/prov-decode.js";
import { tokenOffsets } from "../../provenance/render.js";
import { SHIELD_DEFAULTS } from "../../provenance/shield.js";
import { mix, scoreComponentsAll } from "../../rewards/mix.js";
import { parseRewardSpec, parseRewardSpecs, REWARD_SPEC_FORMS } from "../../rewards/spec.js";
import type { Reward, RewardInput } from "../../rewards/types.js";
import { scoreAll } from "../../rewards/types.js";
import { refuseFileAccess } from "../alignment.js";
import type { ServerContext } from "../context.js";
import { inDecodingSlot } from "../decodingSlot.js";
import { toApiError } from "../errors.js";
import { checkLimit, checkStrategyLimits } from "../limits.js";
import { parseBody } from "../schemas.js";

/*
 * What the playground page asks the server besides OpenAI's endpoints: what this server can do
 * (strategies, reward forms, index, models by role), whether specs parse (validation as you type,
 * with the same parsers the requests use), and each reward's value along a finished text.
 */

const validateSchema = z.strictObject({
  rewards: z.array(z.string()).max(64).optional(),
  weights: z.array(z.number().finite()).optional(),
  strategy: z.string().optional(),
});

const curveSchema = z.strictObject({
  prompt: z.string(),
  text: z.string(),
  rewards: z.array(z.string().min(1)).min(1),
  /** Prefixes scored, evenly spaced over the text's tokens. Defaults to 48. */
  points: z.number().int().min(2).max(256).optional(),
});

/** A problem with one spec, as the page shows it. */
interface SpecProblem {
  message: string;
  code: string | null;
}

/** The models a strategy may name by role; filled once the server loads draft/verifier models. */
interface RoleModels {
  draft?: { id: string };
  verifier?: { id: string };
}

export function registerPlaygroundApi(app: FastifyInstance, context: ServerContext): void {
  app.get("/v1/tiller/capabilities", async () => {
    const roles = context.options as RoleModels;
    return {
      object: "tiller.capabilities",
      model: context.modelNames()[0],
      profiles: [...context.profiles.keys()],
      /** Whether /v1/chat/completions can apply the model's chat template. */
      chat: context.model.capabilities.chatTemplate,
      index: context.index ? { documents: context.index.documents, tokens: context.index.size } : null,
      models: { draft: roles.draft?.id ?? null, verifier: roles.verifier?.id ?? null },
      reward_forms: REWARD_SPEC_FORMS,
      strategies: strategyCatalog().map((s) => ({
        name: s.name,
        params: s.params,
        needs_reward: s.needsReward,
      })),
      provenance_defaults: {
        tau: PROV_DECODE_RECOMMENDED.tau,
        gamma: PROV_DECODE_RECOMMENDED.gamma,
        window: PROV_DECODE_RECOMMENDED.n,
        min_match: PROV_DECODE_RECOMMENDED.minLength,
      },
      shield_defaults: { tau: SHIELD_DEFAULTS.tau, min_len: SHIELD_DEFAULTS.minLen },
      limits: { max_tokens: context.limits.maxTokens, rewards: context.limits.rewards },
    };
  });

  // Always 200: a spec that does not parse is the answer, not a failed request.
  app.post("/v1/tiller/validate", async (request) => {
    const { value: body } = parseBody(validateSchema, request.body);
    const specs = body.rewards ?? [];
    const judgeModel = context.view();
    const rewards = specs.map((spec) => {
      const problem = problemOf(() => {
        refuseFileAccess(spec);
        parseRewardSpec(spec, { judgeModel });
      });
      if (problem) return { spec, ok: false, error: problem };
      const { reward, weight } = parseRewardSpec(spec, { judgeModel });
      return { spec, ok: true, name: reward.name, weight: weight ?? null };
    });
    let combined: Reward | undefined;
    let error: SpecProblem | null = null;
    if (rewards.every((r) => r.ok) && specs.length > 0)
      error = problemOf(() => {
        checkLimit(context.limits, "rewards", specs.length, "the number of rewards", "rewards");
        combined = parseRewardSpecs(specs, body.weights?.map(String), { judgeModel });
      });
    const strategy = body.strategy === undefined ? null : validateStrategy(body.strategy, combined, context);
    return {
      object: "tiller.validation",
      ok: rewards.every((r) => r.ok) && !error && (strategy?.ok ?? true),
      rewards,
      error,
      strategy,
    };
  });

  app.post("/v1/tiller/rewards/along", async (request, reply) => {
    const { value: body } = parseBody(curveSchema, request.body);
    checkLimit(context.limits, "rewards", body.rewards.length, "the number of rewards", "rewards");
    for (const spec of body.rewards) refuseFileAccess(spec, "rewards");
    const view = context.view();
    let reward: Reward;
    try {
      reward = parseRewardSpecs(body.rewards, undefined, { judgeModel: view });
    } catch (error) {
      throw toApiError(error, "rewards");
    }
    // A judge reward asks the model: take a decoding slot like any other request.
    return inDecodingSlot(context, reply, () => rewardCurve(context, reward, body));
  });
}

/** Each reward's value (and the weighted sum) on evenly spaced token prefixes of the text. */
async function rewardCurve(context: ServerContext, reward: Reward, body: z.infer<typeof curveSchema>) {
  const tokens = await context.model.tokenize(body.text, { addBos: false });
  const { starts } = tokenOffsets(context.model, tokens);
  const points = Math.min(body.points ?? 48, Math.max(tokens.length, 1));
  const lengths = [
    ...new Set(Array.from({ length: points }, (_, i) => Math.round(((i + 1) * tokens.length) / points))),
  ].filter((n) => n > 0);
  const inputs: RewardInput[] = lengths.map((n) => ({
    prompt: body.prompt,
    // The last prefix is the text as sent (detokenizing may differ from it in spacing).
    text: n === tokens.length ? body.text : body.text.slice(0, starts[n]),
    tokens: tokens.slice(0, n),
    finished: n === tokens.length,
  }));
  const [components, totals] = await Promise.all([
    scoreComponentsAll(reward, inputs),
    scoreAll(reward, inputs),
  ]);
  return {
    object: "tiller.reward_curve",
    reward: reward.name,
    tokens: tokens.length,
    names: Object.keys(components[0] ?? {}),
    points: lengths.map((n, i) => ({
      tokens: n,
      chars: inputs[i].text.length,
      values: components[i],
      total: totals[i],
    })),
  };
}

function validateStrategy(text: string, reward: Reward | undefined, context: ServerContext) {
  let name: string | null = null;
  const problem = problemOf(() => {
    const spec = parseStrategySpec(text);
    name = spec.name;
    checkStrategyLimits(spec, context.limits, context.model.vocabularySize);
    // Parameter ranges are checked when the strategy is built; no reward yet is not the spec's fault.
    createStrategy(spec, { reward: reward ?? mix([]) });
  });
  return problem ? { spec: text, ok: false, name, error: problem } : { spec: text, ok: true, name };
}

function problemOf(fn: () => void): SpecProblem | null {
  try {
    fn();
    return null;
  } catch (error) {
    const api = toApiError(error);
    if (api.status >= 500) throw error;
    return { message: api.message, code: api.code };
  }
}
