import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TillerError } from "../src/errors.js";
import { generate } from "../src/generate.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { loadModel } from "../src/lm/load.js";
import { promptTokens } from "../src/lm/prompt.js";
import type { ChatMessage } from "../src/lm/types.js";
import { loadTestModel, runCli, testModelPath } from "./helpers.js";
import { testModelsPath } from "./models.js";

/**
 * stories260K-chat.gguf carries this tokenizer.chat_template (see make-test-models.sh):
 *   {% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] }}\n
 *   {% elif m['role'] == 'user' %}Question: {{ m['content'] }}\n{% else %}Answer: {{ m['content'] }}\n
 *   {% endif %}{% endfor %}{% if add_generation_prompt %}Answer:{% endif %}
 * so a system and a user message render (add_generation_prompt on) as below.
 */
const SYSTEM_USER: ChatMessage[] = [
  { role: "system", content: "You are terse." },
  { role: "user", content: "What is a cat?" },
];
const SYSTEM_USER_TEXT = "You are terse.\nQuestion: What is a cat?\nAnswer:";

let chat: LlamaCppModel;
let plain: LlamaCppModel;

beforeAll(async () => {
  chat = await loadModel(testModelsPath("stories260K-chat.gguf"), { gpu: false, threads: 1, sequences: 1 });
  plain = await loadTestModel({ sequences: 1 });
});

afterAll(async () => {
  await chat?.dispose();
  await plain?.dispose();
});

/** The TillerError code a call fails with ("resolved" if it does not fail). */
async function codeOf(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
    return "resolved";
  } catch (error) {
    return error instanceof TillerError ? error.code : `not a TillerError: ${String(error)}`;
  }
}

describe("a GGUF with a chat template", () => {
  it("says so in its capabilities", () => {
    expect(chat.capabilities.chatTemplate).toBe(true);
  });

  it("renders system and user messages as the Jinja template does, generation prompt last", () => {
    expect(chat.chatText(SYSTEM_USER)).toBe(SYSTEM_USER_TEXT);
    expect(chat.chatText([{ role: "user", content: "Hi" }])).toBe("Question: Hi\nAnswer:");
    expect(
      chat.chatText([
        { role: "user", content: "Hi" },
        { role: "assistant", content: "Hello." },
        { role: "user", content: "More?" },
      ]),
    ).toBe("Question: Hi\nAnswer: Hello.\nQuestion: More?\nAnswer:");
  });

  it("continues a last assistant message instead of opening a new turn", () => {
    const text = chat.chatText([
      { role: "user", content: "What is a cat?" },
      { role: "assistant", content: "A cat is" },
    ]);
    expect(text).toBe("Question: What is a cat?\nAnswer: A cat is");
  });

  it("keeps message contents as text: template syntax in them is not evaluated", () => {
    expect(chat.chatText([{ role: "user", content: "Is {{ 1 + 1 }} {% if x %}2{% endif %}?" }])).toBe(
      "Question: Is {{ 1 + 1 }} {% if x %}2{% endif %}?\nAnswer:",
    );
  });

  it("tokenizes the rendered text in one piece after BOS, as llama.cpp's server does", async () => {
    const tokens = await chat.chatTokens(SYSTEM_USER);
    expect(tokens[0]).toBe(chat.bosToken);
    expect(tokens).toEqual(await chat.tokenize(SYSTEM_USER_TEXT));
    expect(chat.detokenize(tokens)).toBe(SYSTEM_USER_TEXT);
  });

  it("promptTokens applies it by default (chat auto), and not with chat off", async () => {
    const user: ChatMessage = { role: "user", content: "What is a cat?" };
    const templated = await promptTokens(chat, "What is a cat?");
    expect(templated).toEqual(await chat.chatTokens([user]));
    expect(await promptTokens(chat, { prompt: "What is a cat?", chat: "on" })).toEqual(templated);
    expect(await promptTokens(chat, { prompt: "What is a cat?", system: "You are terse." })).toEqual(
      await chat.chatTokens(SYSTEM_USER),
    );
    expect(
      await promptTokens(chat, { messages: [{ role: "user", content: "Hi" }], prompt: "What is a cat?" }),
    ).toEqual(await chat.chatTokens([{ role: "user", content: "Hi" }, user]));
    const off = await promptTokens(chat, { prompt: "What is a cat?", chat: "off" });
    expect(off).toEqual(await chat.tokenize("What is a cat?"));
    expect(off.length).toBeLessThan(templated.length);
    expect(
      await codeOf(() => promptTokens(chat, { prompt: "x", system: "You are terse.", chat: "off" })),
    ).toBe("no-chat-template");
  });

  it("generate decodes from the templated prompt", async () => {
    const result = await generate(chat, { prompt: "What is a cat?", maxTokens: 4 });
    expect(result.stats.promptTokens).toBe(
      (await chat.chatTokens([{ role: "user", content: "What is a cat?" }])).length,
    );
    const offResult = await generate(chat, { prompt: "What is a cat?", maxTokens: 4, chat: "off" });
    expect(offResult.stats.promptTokens).toBe((await chat.tokenize("What is a cat?")).length);
  });

  it("refuses malformed messages with a TillerError", async () => {
    expect(await codeOf(() => chat.chatTokens([]))).toBe("empty-prompt");
    const badRole = [{ role: "tool", content: "x" }] as unknown as ChatMessage[];
    expect(await codeOf(() => chat.chatTokens(badRole))).toBe("bad-chat-message");
    const badContent = [{ role: "user", content: 3 }] as unknown as ChatMessage[];
    expect(await codeOf(() => chat.chatTokens(badContent))).toBe("bad-chat-message");
  });
});

describe("a GGUF without a chat template", () => {
  it("has none: no guessed template (node-llama-cpp would fall back to Llama-2 [INST] prompts)", async () => {
    expect(plain.capabilities.chatTemplate).toBe(false);
    expect(await codeOf(() => plain.chatTokens(SYSTEM_USER))).toBe("no-chat-template");
    expect(() => plain.chatText(SYSTEM_USER)).toThrow(/carries no chat template/);
  });

  it("chat auto gives the plain prompt; chat on and a system message are clear errors", async () => {
    expect(await promptTokens(plain, "What is a cat?")).toEqual(await plain.tokenize("What is a cat?"));
    expect(await promptTokens(plain, { prompt: "What is a cat?", chat: "auto" })).toEqual(
      await plain.tokenize("What is a cat?"),
    );
    expect(await codeOf(() => promptTokens(plain, { prompt: "What is a cat?", chat: "on" }))).toBe(
      "no-chat-template",
    );
    expect(await codeOf(() => promptTokens(plain, { prompt: "What is a cat?", system: "Be terse." }))).toBe(
      "no-chat-template",
    );
    expect(
      await codeOf(() => promptTokens(plain, { messages: [{ role: "user", content: "What is a cat?" }] })),
    ).toBe("no-chat-template");
  });
});

describe("tiller generate / align --system --chat", () => {
  const chatModel = () => testModelsPath("stories260K-chat.gguf");
  const base = ["--threads", "1", "--no-gpu", "-n", "4", "--json"];
  const json = (stdout: string) => JSON.parse(stdout) as { stats: Record<string, number> };

  it("generate applies the GGUF's template by default, and not with --chat off", async () => {
    const args = ["generate", "--model", chatModel(), "--prompt", "What is a cat?", ...base];
    const [auto, system, off] = await Promise.all([
      runCli(args),
      runCli([...args, "--system", "You are terse."]),
      runCli([...args, "--chat", "off"]),
    ]);
    for (const run of [auto, system, off]) expect(run.status, run.stderr).toBe(0);
    const user: ChatMessage = { role: "user", content: "What is a cat?" };
    expect(json(auto.stdout).stats.promptTokens).toBe((await chat.chatTokens([user])).length);
    expect(json(system.stdout).stats.promptTokens).toBe((await chat.chatTokens(SYSTEM_USER)).length);
    expect(json(off.stdout).stats.promptTokens).toBe((await chat.tokenize("What is a cat?")).length);
  });

  it("align takes --system through the template", async () => {
    const args = [
      "align",
      "--model",
      chatModel(),
      "--prompt",
      "What is a cat?",
      "-r",
      "length:1-100w",
      "-s",
      "greedy",
      ...base,
    ];
    const [withSystem, without] = await Promise.all([
      runCli([...args, "--system", "You are terse."]),
      runCli([...args, "--chat", "off"]),
    ]);
    expect(withSystem.status, withSystem.stderr).toBe(0);
    expect(without.status, without.stderr).toBe(0);
    // Same decode shape, so the evaluated tokens differ by the prompt lengths only.
    const extra =
      (await chat.chatTokens(SYSTEM_USER)).length - (await chat.tokenize("What is a cat?")).length;
    const a = json(withSystem.stdout).stats;
    const b = json(without.stdout).stats;
    expect(a.evaluatedTokens - a.generatedTokens - (b.evaluatedTokens - b.generatedTokens)).toBe(extra);
  });

  it("without a template: --system and --chat on fail with one clear line", async () => {
    const args = ["generate", "--model", testModelPath(), "--prompt", "What is a cat?", ...base];
    const [system, on, bad] = await Promise.all([
      runCli([...args, "--system", "Be terse."]),
      runCli([...args, "--chat", "on"]),
      runCli([...args, "--chat", "maybe"]),
    ]);
    expect(system.status).toBe(2);
    expect(system.stderr).toMatch(
      /^tiller: a system message needs a chat template, and stories260K\.gguf has none/,
    );
    expect(system.stderr.trim().split("\n")).toHaveLength(1);
    expect(on.status).toBe(2);
    expect(on.stderr).toMatch(/^tiller: chat was requested but stories260K\.gguf carries no chat template/);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/--chat/);
  });
});
