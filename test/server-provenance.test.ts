import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import type { RunningServer } from "../src/server/server.js";
import { loadTestModel } from "./helpers.js";
import { COPY_PROMPT, type PlantedIndex, plantedIndex } from "./plantedIndex.js";
import { openAiError, post, serve } from "./serverHarness.js";

let model: LlamaCppModel;
let planted: PlantedIndex;
let server: RunningServer;

interface Attribution {
  verdict: string;
  max_bci: number;
  spans: { text: string; count: number; bci: number; documents: { document: number; excerpt: string }[] }[];
}

interface Completion {
  choices: { text: string; finish_reason: string }[];
  tiller: {
    choices: { shield?: { refused: boolean; attempts: { verdict: string }[] } }[];
    alignment: Record<string, unknown>;
  };
}

beforeAll(async () => {
  model = await loadTestModel({ sequences: 8 });
  planted = await plantedIndex(model);
  server = await serve(model, { index: planted.index });
});

afterAll(async () => {
  await server?.close();
  await model?.dispose();
  planted?.cleanup();
});

const complete = async (body: Record<string, unknown>) =>
  (
    await post(server, "/v1/completions", {
      model: "stories260K",
      prompt: COPY_PROMPT,
      max_tokens: 48,
      temperature: 0,
      ...body,
    })
  ).body as Completion;

describe("POST /v1/provenance/attribute", () => {
  it("finds a corpus sentence: its span, count, BCI, document and excerpt, and the verdict", async () => {
    const reply = await post(server, "/v1/provenance/attribute", { text: planted.corpusSentence, tau: 5 });
    expect(reply.status, reply.text).toBe(200);
    const body = reply.body as Attribution;
    expect(body.verdict).toBe("refuse");
    expect(body.spans.length).toBeGreaterThan(0);
    const longest = [...body.spans].sort((a, b) => b.text.length - a.text.length)[0];
    expect(planted.corpusSentence.toLowerCase()).toContain(longest.text.trim());
    expect(longest.count).toBeGreaterThanOrEqual(1);
    expect(longest.bci).toBeGreaterThan(5);
    expect(longest.documents[0].document).toBe(0);
    expect(longest.documents[0].excerpt).toContain(longest.text.trim());
  });

  it("passes a text that is not in the corpus", async () => {
    const reply = await post(server, "/v1/provenance/attribute", {
      text: "Zebras compute eigenvalues quietly.",
    });
    expect((reply.body as Attribution).verdict).toBe("pass");
    expect((reply.body as Attribution).spans).toEqual([]);
  });

  it("an empty text → 400", async () => {
    const reply = await post(server, "/v1/provenance/attribute", { text: "" });
    expect(reply.status).toBe(400);
    expect(openAiError(reply).param).toBe("text");
  });
});

describe("alignment.provenance and alignment.shield on completions", () => {
  it("greedy copies the planted document; a hard Prov-Decode veto steers off the copy", async () => {
    const plain = await complete({});
    expect(plain.choices[0].text.startsWith(planted.copy.slice(0, 30))).toBe(true);
    const vetoed = await complete({ alignment: { strategy: "greedy", provenance: { veto: "hard" } } });
    expect(vetoed.choices[0].text.startsWith(planted.copy.slice(0, 30))).toBe(false);
    expect(vetoed.tiller.alignment.provenance).toMatchObject({ veto: "hard", tau: 20 });
  });

  it("TraceShield refuses the copy (content_filter) when it may not regenerate, and passes a regenerated one", async () => {
    const refused = await complete({ alignment: { shield: { regenerate: 0, refusal: "No." } } });
    // (shielded() tokenizes the refusal without BOS, so it comes back with a leading space.)
    expect(refused.choices[0].text.trim()).toBe("No.");
    expect(refused.choices[0].finish_reason).toBe("content_filter");
    expect(refused.tiller.choices[0].shield?.refused).toBe(true);
    const regenerated = await complete({ alignment: { shield: { regenerate: 1 } } });
    expect(regenerated.tiller.choices[0].shield?.attempts.map((a) => a.verdict)).toEqual(["refuse", "pass"]);
    expect(regenerated.choices[0].finish_reason).not.toBe("content_filter");
  });
});

describe("POST /v1/provenance/pairs", () => {
  it("returns DPO pairs whose rejected side is the corpus copy", async () => {
    const reply = await post(server, "/v1/provenance/pairs", {
      prompts: [COPY_PROMPT],
      n: 8,
      temperature: 0.3,
      max_tokens: 48,
    });
    expect(reply.status, reply.text).toBe(200);
    const body = reply.body as { data: { rejected: string; chosen: string }[]; skipped: number };
    expect(body.skipped).toBe(0);
    expect(body.data[0].rejected.startsWith(planted.copy.slice(0, 30))).toBe(true);
  });

  it("limits apply: n over the limit → 400", async () => {
    const reply = await post(server, "/v1/provenance/pairs", { prompts: [COPY_PROMPT], n: 1000 });
    expect(reply.status).toBe(400);
    expect(openAiError(reply).code).toBe("limit_exceeded");
  });
});
