/** The strategy registry: spec parsing, its errors, and typed factories (no model needed). */
import { describe, expect, it } from "vitest";
import type { StrategyDefinition } from "../src/decoding/definition.js";
import {
  createStrategy,
  parseStrategyList,
  parseStrategySpec,
  registerStrategy,
  strategyHelp,
  strategyNames,
} from "../src/decoding/registry.js";
import { isTillerError } from "../src/errors.js";
import { keywordsReward } from "../src/rewards/index.js";

/** The TillerError `fn` throws (fails the test if it throws anything else or nothing). */
function errorOf(fn: () => unknown): { message: string; code: string } {
  try {
    fn();
  } catch (error) {
    if (isTillerError(error)) return { message: error.message, code: error.code };
    throw error;
  }
  throw new Error("expected a TillerError, nothing was thrown");
}

describe("strategy registry", () => {
  it("holds the built-ins, in help order", () => {
    expect(strategyNames().slice(0, 6)).toEqual(["greedy", "sample", "beam", "deal", "bon", "won"]);
    expect(strategyHelp()).toContain("deal:k=…,l=…");
  });

  it("parses specs: numbers, booleans, bare keys, labels", () => {
    expect(parseStrategySpec(" deal:k=3, lambda=2.5 ,paper,lexical=false ")).toEqual({
      name: "deal",
      params: { k: 3, lambda: 2.5, paper: true, lexical: false },
      label: "deal:k=3, lambda=2.5 ,paper,lexical=false",
    });
    expect(parseStrategyList("greedy,deal:k=2,l=4,bon:n=3").map((s) => s.label)).toEqual([
      "greedy",
      "deal:k=2,l=4",
      "bon:n=3",
    ]);
  });

  it("a key set twice is an error naming the key", () => {
    const error = errorOf(() => parseStrategySpec("deal:k=2,k=3"));
    expect(error.code).toBe("bad-strategy-param");
    expect(error.message).toBe('strategy "deal" sets "k" twice in "deal:k=2,k=3"');
    expect(errorOf(() => parseStrategySpec("beam:width=2,alpha=1,width")).message).toMatch(/"width" twice/);
  });

  it("unknown names, unknown keys and bad values are clear errors", () => {
    expect(errorOf(() => parseStrategySpec("dael:k=2"))).toMatchObject({
      code: "unknown-strategy",
      message: expect.stringMatching(/^unknown strategy "dael" in "dael:k=2"; valid: greedy \| sample:/),
    });
    expect(errorOf(() => parseStrategySpec("beam:depth=2"))).toMatchObject({
      code: "bad-strategy-param",
      message: expect.stringMatching(/strategy "beam" has no parameter "depth"; valid: width \(beams kept/),
    });
    expect(errorOf(() => parseStrategySpec("greedy:k=1")).message).toMatch(/it takes none/);
    const reward = keywordsReward(["ball"]);
    expect(errorOf(() => createStrategy("deal:k=0", { reward })).message).toBe(
      'deal: k must be an integer ≥ 1, got "0"',
    );
    expect(errorOf(() => createStrategy("deal:lambda=lots", { reward })).message).toMatch(
      /lambda must be a number/,
    );
    expect(errorOf(() => createStrategy("deal:paper=maybe", { reward })).message).toBe(
      'deal: paper must be true or false, got "maybe"',
    );
    expect(errorOf(() => createStrategy("bon:n=2,temperature=0", { reward })).message).toMatch(
      /temperature must be > 0/,
    );
  });

  it("a reward-guided strategy without a reward is an error; with one its factory gets it", () => {
    for (const name of ["deal", "bon", "won"])
      expect(errorOf(() => createStrategy(name))).toMatchObject({ code: "no-reward" });
    expect(createStrategy("deal", { reward: keywordsReward(["ball"]) }).name).toBe("deal");
  });

  it("library strategies register with typed deps; a taken name is an error", () => {
    const seen: string[] = [];
    const definition: StrategyDefinition = {
      name: "echo-reward",
      needsReward: true,
      params: { n: "anything" },
      // `deps.reward` is a Reward here, not Reward | undefined: no cast needed.
      create: (spec, deps) => {
        seen.push(`${deps.reward.name}:${spec.params.n}`);
        return createStrategy("greedy");
      },
    };
    registerStrategy(definition);
    expect(createStrategy("echo-reward:n=2", { reward: keywordsReward(["x"]) }).name).toBe("greedy");
    expect(seen).toEqual(["keywords:2"]);
    expect(errorOf(() => createStrategy("echo-reward"))).toMatchObject({ code: "no-reward" });
    expect(errorOf(() => registerStrategy(definition))).toMatchObject({ code: "duplicate-strategy" });
    expect(errorOf(() => registerStrategy({ ...definition, name: "deal" })).message).toMatch(
      /"deal" is already/,
    );
  });
});
