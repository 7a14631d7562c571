import { type AcceptanceRule, logprobOf, samplerMap } from "../src/decoding/speculative/acceptance.js";
import { draw } from "../src/decoding/speculative/draw.js";
import type { Token } from "../src/lm/types.js";

/**
 * A deliberately broken speculative sampler: it accepts like the real one but, on a rejection,
 * draws from the target's p instead of norm(max(0, p − q)). Its tokens are then distributed as
 * min(p, q) + (1 − Σ min(p, q)) · p, not p — what the statistical checks must catch.
 */
export const skipResidualAcceptance: AcceptanceRule = ({ draft, target, sampling, random }) => {
  const tokens: Token[] = [];
  const logprobs: number[] = [];
  for (let i = 0; i <= draft.tokens.length; i++) {
    const p = samplerMap(target[i], sampling);
    const x = draft.tokens[i];
    const qx = i < draft.tokens.length ? (draft.q?.[i]?.get(x) ?? 1) : 0;
    const token = qx > 0 && random() * qx < (p.get(x) ?? 0) ? x : draw(p, random);
    tokens.push(token);
    logprobs.push(logprobOf(target[i], token));
    if (token !== x) return { accepted: i, tokens, logprobs };
  }
  return { accepted: draft.tokens.length, tokens, logprobs };
};
