import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ambedkar } from "../src/decoding/ambedkar/ambedkar.js";
import {
  builtinConstitutionPath,
  loadSwapMap,
  readConstitution,
} from "../src/decoding/ambedkar/builtinSwaps.js";
import {
  aggregate,
  bernoulliJs,
  distributionJs,
  divergenceBound,
  LOG_RATIO_FLOOR,
  logRatio,
  mixture,
  type SparseDistribution,
} from "../src/decoding/ambedkar/divergence.js";
import { judge } from "../src/decoding/ambedkar/judge.js";
import { readBack } from "../src/decoding/ambedkar/readBack.js";
import { counterfactual } from "../src/decoding/ambedkar/sigma.js";
import { parseSwapMap, SWAP_MAP_SCHEMA } from "../src/decoding/ambedkar/swapMap.js";
import { TokenEndings } from "../src/decoding/ambedkar/tokenEndings.js";
import { VerifierView } from "../src/decoding/ambedkar/verifierView.js";
import type { DecodeEvent } from "../src/decoding/events.js";
import { createStrategy } from "../src/decoding/registry.js";
import { runStrategy } from "../src/decoding/run.js";
import type { Strategy } from "../src/decoding/strategy.js";
import type { DecodeContext } from "../src/decoding/types.js";
import type { CandidateVeto } from "../src/decoding/veto.js";
import { TillerError } from "../src/errors.js";
import { generate } from "../src/generate.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { loadModel } from "../src/lm/load.js";
import { promptTokens } from "../src/lm/prompt.js";
import { loadTestModel } from "./helpers.js";
import { testModelsPath } from "./models.js";

const gender = loadSwapMap("gender");

let draft: LlamaCppModel;
/** A second instance of the same model, as an external verifier with the draft's tokenizer. */
let twin: LlamaCppModel;
/** The same model with shuffled token ids: a verifier with another tokenizer. */
let permuted: LlamaCppModel;
beforeAll(async () => {
  draft = await loadTestModel();
  twin = await loadTestModel();
  permuted = await loadModel(testModelsPath("stories260K-permuted.gguf"), { gpu: false, threads: 1 });
});
afterAll(async () => {
  await Promise.all([draft?.dispose(), twin?.dispose(), permuted?.dispose()]);
});

async function decode(
  strategy: Strategy,
  prompt: string,
  maxTokens: number,
  extra: Partial<DecodeContext> = {},
) {
  return runStrategy(strategy, {
    model: draft,
    prompt,
    promptTokens: await promptTokens(draft, prompt),
    maxTokens,
    ...extra,
  });
}

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    if (error instanceof TillerError) return error.code;
    throw error;
  }
  return undefined;
}

describe("σ: word-level counterfactuals", () => {
  it("swaps the context and the candidate together, keeping case and possessives", () => {
    const cf = counterfactual(gender, ["Lily was a little girl. Lily's mom loved her.", " She"], 1);
    expect(cf.segments).toEqual(["Tom was a little boy. Tom's dad loved him.", " He"]);
    expect(cf.changed).toBe(true);
    expect(counterfactual(gender, ["The kid played with a ball."], 1).changed).toBe(false);
    // Both directions at once: people of two groups stay two people.
    expect(counterfactual(gender, ["Lily and Tom saw HER."], 1).segments[0]).toBe("Tom and Lily saw HIM.");
  });

  it("resolves 'her' by the next word in running text and weighs both readings when nothing follows", () => {
    expect(counterfactual(gender, ["She gave her doll to her mom and hugged her."], 1).segments[0]).toBe(
      "He gave his doll to his dad and hugged him.",
    );
    const open = counterfactual(gender, ["Tom saw", " her"], 1);
    expect(open.segments).toEqual(["Lily saw", " his"]);
    expect(open.tail).toEqual([" his", " him"]);
    expect(counterfactual(gender, ["The ball is his."], 1).segments[0]).toBe("The ball is hers.");
  });

  it("hands out one frozen answer per text, told apart however the segments split", () => {
    const split = counterfactual(gender, ["Tom saw\u0001", " her"], 1);
    const moved = counterfactual(gender, ["Tom saw", "\u0001 her"], 1);
    expect(split.segments).toEqual(["Lily saw\u0001", " his"]);
    expect(moved.segments).toEqual(["Lily saw", "\u0001 his"]);
    const again = counterfactual(gender, ["Tom saw", "\u0001 her"], 1);
    expect(again).toBe(moved);
    expect(Object.isFrozen(again) && Object.isFrozen(again.segments) && Object.isFrozen(again.tail)).toBe(
      true,
    );
  });

  it("n-way groups: each shift moves every group along the list (religion, caste)", () => {
    const religion = loadSwapMap("religion");
    expect(religion.groups).toEqual(["hindu", "muslim", "christian", "sikh", "buddhist", "jain"]);
    const text = ["The Hindu family went to the temple for Diwali."];
    expect(counterfactual(religion, text, 1).segments[0]).toBe(
      "The Muslim family went to the mosque for Eid.",
    );
    expect(counterfactual(religion, text, 2).segments[0]).toBe(
      "The Christian family went to the church for Christmas.",
    );
    const caste = loadSwapMap("caste");
    expect(caste.groups).toEqual(["brahmin", "kshatriya", "vaishya", "shudra", "dalit"]);
    expect(counterfactual(caste, ["A Dalit boy met a Brahmin priest."], 1).segments[0]).toBe(
      "A Brahmin boy met a Kshatriya priest.",
    );
    for (const map of [gender, religion, caste]) expect(map.sources.length).toBeGreaterThan(0);
  });
});

describe("swap files: bad input is a clear TillerError", () => {
  const file = (body: object) => JSON.stringify({ schema: SWAP_MAP_SCHEMA, name: "t", ...body });
  it("names what is wrong", () => {
    expect(codeOf(() => loadSwapMap("/no/such/swaps.json"))).toBe("swap-file-not-found");
    expect(() => loadSwapMap("/no/such/swaps.json")).toThrow(/swap file not found: \/no\/such\/swaps.json/);
    const cases: [string, RegExp][] = [
      [file({ groups: { a: [], b: [] } }), /group "a" is empty/],
      [file({ groups: { a: ["x"], b: ["y", "z"] } }), /same length/],
      [file({ groups: { a: ["x"], b: ["x"] } }), /"x" is listed in both "a" and "b"/],
      [file({ groups: { a: ["x y"], b: ["z"] } }), /not a single word/],
      [file({ groups: { a: ["x"] } }), /at least two groups/],
      [
        file({ groups: { a: ["x"], b: ["y"] }, pairs: [{ a: "p", c: "q" }] }),
        /group "c", which is not in "groups"/,
      ],
      [
        file({
          groups: { a: ["x"], b: [["y", "z"]] },
          resolve: [{ term: "x", group: "b", choose: "w", whenNext: ["."] }],
        }),
        /"w" is not a counterpart of "x"/,
      ],
      [file({ groups: { a: ["x"], b: ["y"] }, extra: 1 }), /field "extra" is not a swap-map field/],
      ["{", /not valid JSON/],
    ];
    for (const [text, message] of cases) {
      expect(codeOf(() => parseSwapMap(text, "t.json"))).toBe("bad-swap-map");
      expect(() => parseSwapMap(text, "t.json")).toThrow(message);
    }
  });

  it("the spec, the constitution and the models are checked too", async () => {
    expect(codeOf(() => createStrategy("ambedkar:divergence=kl"))).toBe("bad-strategy-param");
    expect(codeOf(() => createStrategy("ambedkar:byGroup=3"))).toBe("bad-strategy-param");
    expect(codeOf(() => createStrategy("ambedkar:alpha=-1"))).toBe("bad-strategy-param");
    expect(codeOf(() => createStrategy("ambedkar:swaps=/no/such/map.json"))).toBe("swap-file-not-found");
    expect(codeOf(() => readConstitution("/no/such/constitution.txt"))).toBe("constitution-not-found");
    const strict = createStrategy("ambedkar:requireVerifier=true");
    await expect(decode(strict, "Once upon a time", 4)).rejects.toThrow(
      /no verifier model was given \(--verifier M\)/,
    );
    await expect(
      ambedkar({ swaps: gender }).decode({
        model: undefined as never,
        prompt: "x",
        promptTokens: [1],
        maxTokens: 2,
      }),
    ).rejects.toThrow(/needs a draft model/);
  });
});

describe("divergences on hand-made distributions", () => {
  it("token level: JS between two Bernoulli probabilities", () => {
    expect(bernoulliJs(0.5, 0.5)).toBe(0);
    expect(bernoulliJs(1, 0)).toBeCloseTo(Math.LN2, 12);
    // By hand: m = 0.5, H(0.5) = ln 2, H(0.8) = H(0.2) = −(0.8 ln 0.8 + 0.2 ln 0.2).
    const h = -(0.8 * Math.log(0.8) + 0.2 * Math.log(0.2));
    expect(bernoulliJs(0.8, 0.2)).toBeCloseTo(Math.LN2 - h, 12);
    expect(bernoulliJs(0.3, 0.9)).toBeCloseTo(bernoulliJs(0.9, 0.3), 12);
  });

  it("log-ratio: |ln p − ln q| in nats, floored, and not vanishing where JS does", () => {
    expect(logRatio(0.5, 0.5)).toBe(0);
    expect(logRatio(0.6, 0.2)).toBeCloseTo(Math.log(3), 12);
    expect(logRatio(0.2, 0.6)).toBeCloseTo(Math.log(3), 12);
    expect(logRatio(0.5, 0)).toBeCloseTo(Math.log(0.5 / LOG_RATIO_FLOOR), 12);
    expect(divergenceBound("logratio")).toBeCloseTo(-Math.log(LOG_RATIO_FLOOR), 12);
    expect(divergenceBound("token")).toBe(Math.LN2);
    // Improbable on both sides, three times likelier on one: JS all but 0, the log-ratio ln 3.
    expect(bernoulliJs(0.003, 0.001)).toBeLessThan(0.001);
    expect(logRatio(0.003, 0.001)).toBeCloseTo(Math.log(3), 12);
  });

  it("distribution level: JS over tokens, the truncated rest as one outcome", () => {
    const d = (entries: [number, number][]): SparseDistribution => new Map(entries);
    expect(
      distributionJs(
        d([
          [1, 0.5],
          [2, 0.5],
        ]),
        d([
          [1, 0.5],
          [2, 0.5],
        ]),
      ),
    ).toBe(0);
    expect(distributionJs(d([[1, 1]]), d([[2, 1]]))).toBeCloseTo(Math.LN2, 12);
    // P = (½, ½), Q = (1, 0): M = (¾, ¼).
    const byHand = 0.5 * (0.5 * Math.log(0.5 / 0.75) + 0.5 * Math.log(0.5 / 0.25)) + 0.5 * Math.log(1 / 0.75);
    expect(
      distributionJs(
        d([
          [1, 0.5],
          [2, 0.5],
        ]),
        d([[1, 1]]),
      ),
    ).toBeCloseTo(byHand, 12);
    // Truncated to token 1: the rest (token 2's mass, unseen) is one outcome; same value here.
    expect(distributionJs(d([[1, 0.5]]), d([[1, 1]]))).toBeCloseTo(byHand, 12);
    const mixed = mixture([d([[1, 1]]), d([[2, 1]])], [3, 1]);
    expect([...mixed]).toEqual([
      [1, 0.75],
      [2, 0.25],
    ]);
    expect([
      ...readBack(
        d([
          [7, 0.6],
          [8, 0.4],
        ]),
        new Map([[7, 8]]),
      ),
    ]).toEqual([[8, 1]]);
    expect(aggregate([0.1, 0.3], "mean")).toBeCloseTo(0.2, 12);
    expect(aggregate([0.1, 0.3], "max")).toBe(0.3);
  });
});

describe("token endings: the pre-check before tokenizing a group's terms", () => {
  it("a word no token's text ends with is never one verifier token after a context; most terms are such", async () => {
    const view = new VerifierView(twin, undefined);
    const endings = TokenEndings.of(twin);
    const prompt = "Once upon a time, there was a girl named Lucy who loved dolls.";
    const words = [...gender.terms.keys()].flatMap((term) => [term, term[0].toUpperCase() + term.slice(1)]);
    let ruledOut = 0;
    for (const body of [" One day,", " She saw a", ""])
      for (const word of words) {
        const oneToken = (await view.request(prompt, body, ` ${word}`)).continuation.length === 1;
        // The claim the pre-check rests on: one token ⇒ some token's text ends with the word.
        if (oneToken) expect(endings.mayEndOneToken(word), word).toBe(true);
        if (!endings.mayEndOneToken(word)) ruledOut++;
      }
    // Not vacuous: the pronouns can be one token, and most terms (names, nouns) are ruled out.
    expect(endings.mayEndOneToken("she")).toBe(true);
    expect(endings.mayEndOneToken("He")).toBe(true);
    expect(ruledOut).toBeGreaterThan(words.length);
  });

  it("a word-local verifier scores a unit after a word as the body's tokens plus the unit's own", async () => {
    let tokenized = 0;
    const counting = Object.create(twin, {
      tokenize: {
        value: (text: string, options?: { addBos?: boolean }) => {
          tokenized++;
          return twin.tokenize(text, options);
        },
      },
    });
    const view = new VerifierView(counting, undefined);
    const prompt = "Once upon a time, there was a girl named Lucy who loved dolls.";
    const units = [" she", " Lucy's", "\nShe", " girl", "  he", " she.", "s", ","];
    for (const body of [" One day", " She saw a", " Lucy's mom said,", " the end.\n\nThe"])
      for (const unit of units) {
        // What the split of the two whole tokenizations gives (the view's general path).
        const before = await twin.tokenize(prompt + body);
        const after = await twin.tokenize(prompt + body + unit);
        let shared = 0;
        while (before[shared] === after[shared]) shared++;
        const expected = { prefix: after.slice(0, shared), continuation: after.slice(shared) };
        expect(await view.request(prompt, body, unit), JSON.stringify([body, unit])).toEqual(expected);
      }
    // Not vacuous: a unit after a new body tokenizes the body only (its own tokens are kept).
    tokenized = 0;
    await view.request(prompt, " Then", " she");
    expect(tokenized).toBe(1);
  });

  it("a backend that cannot list its vocabulary's texts is never ruled out", () => {
    const remoteLike = Object.create(twin, {
      detokenize: {
        value: () => {
          throw new TillerError("token was never handed out by this model", "unknown-token");
        },
      },
    });
    expect(TokenEndings.of(remoteLike).mayEndOneToken("xylophonist")).toBe(true);
    expect(TokenEndings.of(twin).mayEndOneToken("xylophonist")).toBe(false);
  });
});

describe("AMBEDKAR on the stories model", () => {
  it("a pronoun that agrees with a stated identity is not penalised, a guessed one is", async () => {
    const view = new VerifierView(twin, undefined);
    const she = [{ bodyEnd: 0, unit: " She", term: true, completion: [] }];
    const options = { divergence: "token", aggregate: "mean", nextK: 512 } as const;
    const stated = await judge(
      view,
      gender,
      "Lily was a little girl. Lily loved her dolls.",
      "",
      she,
      options,
    );
    const masked = await judge(
      view,
      gender,
      "Once upon a time, there was a little kid. The kid was happy.",
      "",
      she,
      options,
    );
    expect(stated.divergences[0]).toBeLessThan(0.005);
    expect(masked.divergences[0]).toBeGreaterThan(0.03);
    expect(masked.divergences[0]).toBeGreaterThan(10 * stated.divergences[0]);
  });

  it("byGroup: the stated pronoun is judged with the stated name, so the name's counterpart's frequency does not count", async () => {
    const view = new VerifierView(twin, undefined);
    // After "a girl named Lucy" the verifier splits the reference between "she" and "Lucy"; in the
    // counterfactual ("a boy named Timmy") the common name "Timmy" takes most of it.
    const prompt = "Once upon a time, there was a girl named Lucy who loved dolls and pretty dresses.";
    const body = " One day,";
    const units = [" she", " Lucy", " the"].map((unit) => ({
      bodyEnd: body.length,
      unit,
      term: unit !== " the",
      completion: [],
    }));
    const options = { divergence: "logratio", aggregate: "mean", nextK: 512 } as const;
    const alone = await judge(view, gender, prompt, body, units, { ...options, byGroup: false });
    const grouped = await judge(view, gender, prompt, body, units, { ...options, byGroup: true });
    expect(alone.divergences[0]).toBeGreaterThan(1);
    expect(grouped.divergences[0]).toBeLessThan(0.2);
    expect(grouped.divergences[1]).toBe(grouped.divergences[0]);
    expect(grouped.divergences[2]).toBeCloseTo(alone.divergences[2], 3);
    // The pool is the group, not the step's candidates: the stated name with no pronoun beside
    // it (the draft has written " L" of " Lucy") is judged as it is beside " she".
    const nameOnly = await judge(view, gender, prompt, body, [units[1]], { ...options, byGroup: true });
    expect(nameOnly.divergences[0]).toBeCloseTo(grouped.divergences[1], 6);
    const nameAlone = await judge(view, gender, prompt, body, [units[1]], { ...options, byGroup: false });
    expect(nameAlone.divergences[0]).toBeGreaterThan(1);
    // Guessing on a masked prompt still costs: "girl" against "boy" after the same text.
    const masked = await judge(
      view,
      gender,
      "There was once a little kid who loved dolls and pretty dresses.",
      " The little",
      [{ bodyEnd: 11, unit: " girl", term: true, completion: [] }],
      { ...options, byGroup: true },
    );
    expect(masked.divergences[0]).toBeGreaterThan(1);
  });

  it("α = 0 is the draft's own decoding, greedy and seeded sampling", async () => {
    const prompt = "There was once a little kid who loved dolls.";
    const greedy = await generate(draft, { prompt, maxTokens: 40 });
    const greedyAmbedkar = await decode(ambedkar({ swaps: gender, alpha: 0 }), prompt, 40, {
      verifier: twin,
    });
    expect(greedyAmbedkar.tokens).toEqual(greedy.tokens);
    const sampled = await decode(createStrategy("sample:temperature=0.7,topK=5,seed=3"), prompt, 40);
    const sampledAmbedkar = await decode(
      ambedkar({ swaps: gender, alpha: 0, sample: true, seed: 3 }),
      prompt,
      40,
    );
    expect(sampledAmbedkar.text).toBe(sampled.text);
    expect(sampledAmbedkar.text).not.toBe(greedy.text);
  });

  it("shortcuts skip model calls that cannot change the choice: the same text with fewer calls", async () => {
    /** One decode from a cold cache, with the calls and verifier requests it made. */
    const measure = async (prompt: string, shortcuts: boolean, verifier?: LlamaCppModel, trace = false) => {
      await Promise.all([draft.clearCache(), twin.clearCache()]);
      const calls = draft.usage.calls + twin.usage.calls;
      const strategy = ambedkar({ swaps: gender, divergence: "logratio", alpha: 30, shortcuts });
      const result = await decode(strategy, prompt, 32, { verifier, trace });
      const details = result.details;
      if (details?.strategy !== "ambedkar") throw new Error("ambedkar gave no details");
      return { text: result.text, details, calls: draft.usage.calls + twin.usage.calls - calls };
    };
    // Masked: most steps' leader has D = 0 for certain, so the others are not judged.
    const masked = "There was once a young kid who loved toy trucks and cars.";
    for (const verifier of [undefined, twin]) {
      const full = await measure(masked, false, verifier);
      const fast = await measure(masked, true, verifier);
      expect(fast.text).toBe(full.text);
      expect(full.details.freeLeaderSteps).toBe(0);
      expect(fast.details.freeLeaderSteps).toBeGreaterThan(10);
      expect(fast.details.verifierRequests).toBeLessThan(full.details.verifierRequests);
      expect(fast.calls).toBeLessThan(full.calls);
      // Unwatched, most of those steps read the draft's argmax alone; traced, every step reads
      // the whole distribution (the trace lists the candidates), and the text is the same.
      expect(fast.details.argmaxSteps).toBeGreaterThan(10);
      expect(fast.details.argmaxSteps).toBeLessThanOrEqual(fast.details.freeLeaderSteps);
      // Those argmaxes come in free runs, a rollout call each for many steps.
      expect(fast.details.freeRuns).toBeGreaterThan(0);
      expect(fast.details.freeRuns).toBeLessThan(fast.details.argmaxSteps / 2);
      const traced = await measure(masked, true, verifier, true);
      expect(traced.text).toBe(full.text);
      expect(traced.details.argmaxSteps).toBe(0);
      expect(traced.details.freeRuns).toBe(0);
      expect(traced.details.freeLeaderSteps).toBe(fast.details.freeLeaderSteps);
    }
    // Stated, self verifier: the step's counterfactual context comes with its draft distribution,
    // so candidates that need no lookahead are judged from the memo, and when they beat every
    // other's best possible score the step calls no verifier; a verifier batch also fetches the
    // next draft step.
    const stated = "Once upon a time, there was a girl named Lucy who loved dolls and pretty dresses.";
    const full = await measure(stated, false);
    const fast = await measure(stated, true);
    expect(fast.text).toBe(full.text);
    expect(full.details.prunedCandidates).toBe(0);
    expect(fast.details.prunedCandidates).toBeGreaterThan(10);
    expect(fast.details.verifierRequests).toBeLessThan(full.details.verifierRequests / 2);
    expect(fast.calls).toBeLessThan(full.calls - 8);
  });

  it("a verifier with another tokenizer gives the same text (word-level σ, re-tokenized)", async () => {
    const prompt = "Once upon a time, there was a little kid who loved dolls.";
    const strategy = () => ambedkar({ swaps: gender, alpha: 50 });
    const same = await decode(strategy(), prompt, 40, { verifier: twin, trace: true });
    const other = await decode(strategy(), prompt, 40, { verifier: permuted, trace: true });
    const greedy = await generate(draft, { prompt, maxTokens: 40 });
    expect(same.text).not.toBe(greedy.text);
    expect(other.text).toBe(same.text);
    const divergences = (r: typeof same) =>
      r.trace?.steps.flatMap((s) => s.candidates.map((c) => c.divergence ?? -1));
    const a = divergences(same) ?? [];
    const b = divergences(other) ?? [];
    expect(b.length).toBe(a.length);
    for (const [i, value] of a.entries()) expect(b[i]).toBeCloseTo(value, 6);
    expect(a.some((value) => value > 0)).toBe(true);
  });

  it("streams its events, keeps verifier contexts cached, and composes with vetoes", async () => {
    const prompt = "Once upon a time, there was a girl named Mia who loved dinosaurs.";
    const events: DecodeEvent[] = [];
    const before = { ...twin.usage };
    const shown = await decode(ambedkar({ swaps: gender, alpha: 5 }), prompt, 32, {
      verifier: twin,
      emit: (event) => events.push(event),
    });
    const text = events.flatMap((e) => (e.type === "text" ? [e.text] : [])).join("");
    expect(text).toBe(shown.text);
    expect(events.filter((e) => e.type === "step").length).toBe(shown.tokens.length);
    const requested = twin.usage.requestedPrefixTokens - before.requestedPrefixTokens;
    const cached = twin.usage.cachedPrefixTokens - before.cachedPrefixTokens;
    expect(requested).toBeGreaterThan(0);
    expect(cached / requested).toBeGreaterThan(0.8);
    expect(shown.details).toMatchObject({ strategy: "ambedkar", verifier: twin.id });
    // A veto that forbids the greedy choice's first token is obeyed.
    const banned = shown.tokens[0];
    const veto: CandidateVeto = {
      name: "ban",
      assess: (_c, candidates) => candidates.map((t) => (t === banned ? Infinity : 0)),
    };
    const vetoed = await decode(ambedkar({ swaps: gender, vetoes: [veto] }), prompt, 8, { verifier: twin });
    expect(vetoed.tokens).not.toContain(banned);
  });

  it("gives the verifier the constitution first", async () => {
    const constitution = readConstitution(builtinConstitutionPath());
    expect(constitution).toMatch(/Article 17/);
    const view = new VerifierView(twin, constitution);
    const tokens = await view.tokens("Once upon a time", "");
    const head = await twin.tokenize(constitution);
    expect(tokens.slice(0, head.length - 1)).toEqual(head.slice(0, -1));
    const dir = mkdtempSync(join(tmpdir(), "ambedkar-"));
    writeFileSync(join(dir, "empty.txt"), "  \n");
    expect(codeOf(() => readConstitution(join(dir, "empty.txt")))).toBe("bad-constitution");
    const r = await decode(ambedkar({ swaps: gender, constitution }), "Once upon a time", 8, {
      verifier: twin,
    });
    expect(r.tokens.length).toBe(8);
  });
});
