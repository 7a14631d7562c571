import type { FastifyInstance } from "fastify";
import { preferencePairs } from "../../provenance/pairs.js";
import { excerpt, tokenOffsets } from "../../provenance/render.js";
import { SHIELD_DEFAULTS, traceShield } from "../../provenance/shield.js";
import type { TraceIndex } from "../../provenance/trace-index.js";
import type { ServerContext } from "../context.js";
import { inDecodingSlot } from "../decodingSlot.js";
import { ApiError } from "../errors.js";
import { checkLimit } from "../limits.js";
import { attributeSchema, pairsSchema, parseBody } from "../schemas.js";

/**
 * POST /v1/provenance/attribute: a text's verbatim corpus spans (count, BCI, documents and
 * excerpts) and TraceShield's verdict. POST /v1/provenance/pairs: TraceAlign preference pairs
 * (chosen below τ, rejected above) sampled from the served model. Both need --index.
 */
export function registerProvenanceRoutes(app: FastifyInstance, context: ServerContext): void {
  app.post("/v1/provenance/attribute", async (request) => {
    const { value: body } = parseBody(attributeSchema, request.body);
    const index = requireIndex(context);
    const { model } = context;
    const verdict = await traceShield(index, model, body.text, {
      tau: body.tau ?? SHIELD_DEFAULTS.tau,
      minLen: body.min_len ?? SHIELD_DEFAULTS.minLen,
      maxCount: body.max_count ?? SHIELD_DEFAULTS.maxCount,
      examples: body.examples ?? 3,
    });
    const { text, starts } = tokenOffsets(model, verdict.tokens);
    return {
      object: "tiller.attribution",
      verdict: verdict.verdict,
      max_bci: verdict.maxBci,
      tau: verdict.tau,
      tokens: verdict.tokens.length,
      text,
      spans: verdict.spans.map((span) => ({
        start: span.start,
        end: span.end,
        text: text.slice(starts[span.start], starts[span.end]),
        char_start: starts[span.start],
        char_end: starts[span.end],
        count: span.count,
        bci: span.bci,
        over_tau: span.bci > verdict.tau,
        documents: span.examples.map((occurrence) => {
          const shown = excerpt(index, model, occurrence, span.length);
          return {
            document: occurrence.document,
            offset: occurrence.offset,
            source: shown.source ?? null,
            excerpt: `${shown.before}${shown.match}${shown.after}`,
            match: shown.match,
          };
        }),
      })),
    };
  });

  app.post("/v1/provenance/pairs", async (request, reply) => {
    const { value: body } = parseBody(pairsSchema, request.body);
    const index = requireIndex(context);
    checkLimit(context.limits, "pairPrompts", body.prompts.length, "prompts", "prompts");
    const n = body.n ?? 8;
    checkLimit(context.limits, "pairSamples", n, "n", "n");
    const maxTokens = body.max_tokens ?? 64;
    checkLimit(context.limits, "maxTokens", maxTokens, "max_tokens", "max_tokens");
    return inDecodingSlot(context, reply, async (signal) => {
      const result = await preferencePairs(context.view(), index, body.prompts, {
        n,
        tau: body.tau,
        maxTokens,
        temperature: body.temperature,
        seed: body.seed,
        signal,
      });
      return {
        object: "list",
        data: result.pairs,
        skipped: result.skipped,
        skipped_prompts: result.skippedPrompts,
      };
    });
  });
}

function requireIndex(context: ServerContext): TraceIndex {
  if (!context.index)
    throw new ApiError(400, "no corpus index is loaded; start tiller serve with --index DIR", "no_index");
  return context.index;
}
