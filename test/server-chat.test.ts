import { resolve } from "node:path";
import type OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { plainDecoding } from "../src/decoding/greedy.js";
import { runStrategy } from "../src/decoding/run.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { loadModel } from "../src/lm/load.js";
import type { ChatMessage } from "../src/lm/types.js";
import type { RunningServer } from "../src/server/server.js";
import { repoRoot } from "./helpers.js";
import { testModelsPath } from "./models.js";
import { client, serve } from "./serverHarness.js";

/** The stories model with a chat template (a test twin; $TILLER_CHAT_MODEL overrides it). */
function chatModelPath(): string {
  return process.env.TILLER_CHAT_MODEL
    ? resolve(repoRoot, process.env.TILLER_CHAT_MODEL)
    : testModelsPath("stories260K-chat.gguf");
}

let model: LlamaCppModel;
let server: RunningServer;
let openai: OpenAI;

const MESSAGES: ChatMessage[] = [
  { role: "system", content: "You tell short stories for children." },
  { role: "user", content: "Tell me about a dog and a ball." },
];

beforeAll(async () => {
  model = await loadModel(chatModelPath(), { gpu: false, threads: 1, sequences: 8 });
  server = await serve(model);
  openai = client(server);
});

afterAll(async () => {
  await server?.close();
  await model?.dispose();
});

describe("POST /v1/chat/completions (the model's chat template)", () => {
  it("answers through the chat template exactly as the library decodes the templated prompt", async () => {
    const completion = await openai.chat.completions.create({
      model: "stories260K-chat",
      messages: MESSAGES,
      max_tokens: 24,
      temperature: 0,
    });
    const tokens = await model.chatTokens(MESSAGES);
    const library = await runStrategy(plainDecoding({ temperature: 0 }), {
      model,
      prompt: MESSAGES[1].content,
      promptTokens: tokens,
      maxTokens: 24,
    });
    expect(completion.object).toBe("chat.completion");
    expect(completion.choices[0].message.role).toBe("assistant");
    expect(completion.choices[0].message.content).toBe(library.text);
    expect(completion.usage?.prompt_tokens).toBe(tokens.length);
  });

  it("streams deltas (role first) that concatenate to the answer", async () => {
    const body = { model: "stories260K-chat", messages: MESSAGES, max_tokens: 24, temperature: 0 };
    const whole = await openai.chat.completions.create(body);
    let text = "";
    let role: string | undefined;
    for await (const chunk of await openai.chat.completions.create({ ...body, stream: true })) {
      role ??= chunk.choices[0]?.delta.role;
      text += chunk.choices[0]?.delta.content ?? "";
    }
    expect(role).toBe("assistant");
    expect(text).toBe(whole.choices[0].message.content);
  });

  it("returns per-token logprobs with top alternatives", async () => {
    const completion = await openai.chat.completions.create({
      model: "stories260K-chat",
      messages: MESSAGES,
      max_tokens: 8,
      temperature: 0,
      logprobs: true,
      top_logprobs: 3,
    });
    const content = completion.choices[0].logprobs?.content ?? [];
    expect(content.map((entry) => entry.token).join("")).toBe(completion.choices[0].message.content);
    for (const entry of content) {
      expect(entry.top_logprobs.length).toBe(3);
      expect(entry.logprob).toBeCloseTo(entry.top_logprobs[0].logprob, 5); // greedy picks the top token
    }
  });
});
