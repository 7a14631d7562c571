import type { FastifyInstance } from "fastify";
import { parseTransform } from "../../calibration/transforms.js";
import { parseRewardSpecs } from "../../rewards/spec.js";
import { scoreAll } from "../../rewards/types.js";
import { refuseFileAccess } from "../alignment.js";
import type { ServerContext } from "../context.js";
import { inDecodingSlot } from "../decodingSlot.js";
import { toApiError } from "../errors.js";
import { checkLimit } from "../limits.js";
import { parseBody, scoreSchema } from "../schemas.js";

/**
 * POST /v1/rewards/score: InfAlign's CTRL reward Φ(C(x, y)) of (prompt, completion) pairs, for
 * an external RL trainer — r calibrated against the served model's reference samples for each
 * prompt (drawn once per prompt and settings, cached in memory and on disk as the CLI does), then
 * transformed. All pairs are scored in one batch; `raw` is r itself.
 */
export function registerRewardRoutes(app: FastifyInstance, context: ServerContext): void {
  app.post("/v1/rewards/score", async (request, reply) => {
    const { value: body } = parseBody(scoreSchema, request.body);
    checkLimit(context.limits, "scorePairs", body.pairs.length, "pairs", "pairs");
    const settings = context.references.settingsOf(body.reference);
    checkLimit(context.limits, "referenceSamples", settings.m, "reference.m", "reference.m");
    checkLimit(
      context.limits,
      "maxTokens",
      settings.max_tokens,
      "reference.max_tokens",
      "reference.max_tokens",
    );
    const specs = typeof body.reward === "string" ? [body.reward] : body.reward;
    checkLimit(context.limits, "rewards", specs.length, "the number of rewards", "reward");
    for (const spec of specs) refuseFileAccess(spec, "reward");
    const raw = at("reward", () =>
      parseRewardSpecs(specs, body.weights?.map(String), { judgeModel: context.view() }),
    );
    const transform = at("transform", () => parseTransform(body.transform ?? "identity"));
    const scorer = context.references.scorer({ specs, weights: body.weights }, raw, transform, settings);

    return inDecodingSlot(context, reply, async () => {
      const inputs = await Promise.all(
        body.pairs.map(async (pair) => ({
          prompt: pair.prompt,
          text: pair.completion,
          tokens: await context.model.tokenize(pair.completion, { addBos: false }),
          finished: true,
        })),
      );
      const [scores, raws] = await Promise.all([
        scoreAll(scorer.ctrl.reward, inputs),
        scoreAll(scorer.raw, inputs),
      ]);
      return {
        object: "list",
        reward: scorer.ctrl.reward.name,
        transform: transform.label,
        reference: settings,
        data: inputs.map((_, i) => ({ object: "reward", index: i, score: scores[i], raw: raws[i] })),
      };
    });
  });
}

function at<T>(param: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    throw toApiError(error, param);
  }
}
