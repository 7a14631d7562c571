import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { plainDecoding } from "../src/decoding/greedy.js";
import { runStrategy } from "../src/decoding/run.js";
import type { DecodeContext, GenerationResult } from "../src/decoding/types.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { buildIndex } from "../src/provenance/build-index.js";
import { PROV_DECODE_RECOMMENDED, ProvDecodeVeto } from "../src/provenance/prov-decode.js";
import { DEFAULT_REFUSAL, shielded, traceShield } from "../src/provenance/shield.js";
import { TraceIndex } from "../src/provenance/trace-index.js";
import { loadTestModel, sharedPath } from "./helpers.js";

let model: LlamaCppModel;
let tmp: string;
let index: TraceIndex;

/** The corpus's first story, as the model writes it (capitalised): greedy decoding continues it verbatim for a while. */
const COPIED_PROMPT =
  "One day, a little girl named Lily found a needle in her room. She knew it was difficult";
const TAU_LOW = 5;

beforeAll(async () => {
  model = await loadTestModel();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tiller-shield-"));
  const shared = fs.readFileSync(sharedPath("corpora/tinystories-4m.txt"), "utf8");
  fs.writeFileSync(path.join(tmp, "slice.txt"), shared.slice(0, shared.indexOf("\n\n", 100_000)));
  await buildIndex(model, [path.join(tmp, "slice.txt")], path.join(tmp, "idx"), { lowercase: true });
  index = TraceIndex.open(path.join(tmp, "idx"));
});

afterAll(async () => {
  await model?.dispose();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function context(prompt: string, extra: Partial<DecodeContext> = {}): DecodeContext {
  return { model, prompt, promptTokens: model.tokenizeSync(prompt), maxTokens: 48, ...extra };
}

/** Greedy; retries add a hard Prov-Decode veto with the recommended settings. */
const greedyThenVeto = (attempt: number) =>
  plainDecoding(
    { temperature: 0 },
    attempt === 0
      ? []
      : [new ProvDecodeVeto(index, { ...PROV_DECODE_RECOMMENDED, mode: "hard", normalize: { model } })],
  );

/** The shield's typed details (strategy "shield"). */
function shieldOf(result: GenerationResult) {
  const details = result.details;
  if (details?.strategy !== "shield") throw new Error(`no shield details: ${JSON.stringify(details)}`);
  return details;
}

describe("shielded (TraceShield as a strategy)", () => {
  it("refuses a greedy copy of the corpus, then passes the retry decoded with a Prov-Decode veto", async () => {
    const plain = await runStrategy(plainDecoding({ temperature: 0 }), context(COPIED_PROMPT));
    const plainVerdict = await traceShield(index, model, plain.text, { tau: TAU_LOW });
    expect(plainVerdict.refuse, plain.text).toBe(true);

    const streamed: string[] = [];
    const strategy = shielded(greedyThenVeto, index, { tau: TAU_LOW, regenerate: 1 });
    expect(strategy.name).toBe("shield(greedy)");
    const result = await runStrategy(
      strategy,
      context(COPIED_PROMPT, {
        trace: true,
        emit: (event) => {
          if (event.type === "text") streamed.push(event.text);
        },
      }),
    );
    const shield = shieldOf(result);
    expect(shield.verdicts.map((a) => a.verdict)).toEqual(["refuse", "pass"]);
    expect(shield.refused).toBe(false);
    // The refused attempt is the plain greedy output, with the spans that refused it.
    expect(shield.verdicts[0].text).toBe(plain.text);
    expect(shield.verdicts[0].maxBci).toBeCloseTo(plainVerdict.maxBci, 9);
    expect(shield.verdicts[0].maxBci).toBeGreaterThan(TAU_LOW);
    expect(shield.verdicts[0].spans.length).toBeGreaterThan(0);
    expect(plain.text.toLowerCase()).toContain(shield.verdicts[0].spans[0].text.trim());
    // The accepted output is the retry's, and it really passes.
    expect(result.text).toBe(shield.verdicts[1].text);
    expect(result.text).not.toBe(plain.text);
    expect((await traceShield(index, model, result.text, { tau: TAU_LOW })).refuse).toBe(false);
    expect(result.stopReason).not.toBe("aborted");
    expect(streamed).toEqual([result.text]);
    expect(shield.attempts).toBe(2);
    expect(shield.maxBci).toBe(shield.verdicts[1].maxBci);
    // The traced run also records the attempts (with their inner traces) in the trace file.
    expect(JSON.parse(JSON.stringify(result.trace)).options.shield.attempts).toHaveLength(2);
  });

  it("returns the refusal when every attempt is refused: its tokens, its real logprob, end-of-generation", async () => {
    const strategy = shielded(() => plainDecoding({ temperature: 0 }), index, {
      tau: TAU_LOW,
      regenerate: 2,
    });
    const streamed: string[] = [];
    const result = await runStrategy(
      strategy,
      context(COPIED_PROMPT, {
        emit: (event) => {
          if (event.type === "text") streamed.push(event.text);
        },
      }),
    );
    const shield = shieldOf(result);
    expect(shield.refused).toBe(true);
    expect(shield.maxBci).toBeUndefined();
    // Only the refusal reaches the stream, exactly as the result reports it.
    expect(streamed.join("")).toBe(result.text);
    expect(shield.verdicts).toHaveLength(3);
    expect(shield.verdicts.every((a) => a.verdict === "refuse")).toBe(true);
    expect(result.text.trim()).toBe(DEFAULT_REFUSAL);
    expect(result.tokens).toEqual(await model.tokenize(DEFAULT_REFUSAL, { addBos: false }));
    expect(result.stopReason).toBe("end-of-generation");
    // The logprob is the model's own for the refusal text after the prompt.
    const prefix = model.tokenizeSync(COPIED_PROMPT);
    const [first] = await model.nextTokenDistributions([prefix], { topK: model.vocabularySize });
    expect(Number.isFinite(result.logprob)).toBe(true);
    expect(result.logprob).toBeLessThan(first.find((t) => t.token === result.tokens[0])?.logprob ?? 0);

    const custom = shielded(() => plainDecoding({ temperature: 0 }), index, {
      tau: TAU_LOW,
      regenerate: 0,
      refusal: "No.",
    });
    const refused = await runStrategy(custom, context(COPIED_PROMPT));
    expect(refused.text.trim()).toBe("No.");
    expect(shieldOf(refused).verdicts).toHaveLength(1);
  });

  it("passes an output under τ on the first attempt, unchanged", async () => {
    const prompt = "The purple dragon";
    const plain = await runStrategy(plainDecoding({ temperature: 0 }), context(prompt));
    let built = 0;
    const strategy = shielded(
      (attempt) => {
        built++;
        return greedyThenVeto(attempt);
      },
      index,
      { tau: 1e6 },
    );
    const result = await runStrategy(strategy, context(prompt));
    expect(result.tokens).toEqual(plain.tokens);
    expect(result.text).toBe(plain.text);
    expect(result.stopReason).toBe(plain.stopReason);
    expect(shieldOf(result).verdicts.map((a) => a.verdict)).toEqual(["pass"]);
    expect(shieldOf(result).refused).toBe(false);
    expect(built).toBe(1);
  });
});
