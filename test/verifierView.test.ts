import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { builtinConstitutionPath, readConstitution } from "../src/decoding/ambedkar/builtinSwaps.js";
import { VerifierView } from "../src/decoding/ambedkar/verifierView.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { loadModel } from "../src/lm/load.js";
import { promptTokens } from "../src/lm/prompt.js";
import type { LanguageModel, Token } from "../src/lm/types.js";
import { loadTestModel } from "./helpers.js";
import { testModelsPath } from "./models.js";

let plain: LlamaCppModel;
/** stories260K with a chat template: the constitution is a system message, the body tokenized on its own. */
let chat: LlamaCppModel;
beforeAll(async () => {
  plain = await loadTestModel();
  chat = await loadModel(testModelsPath("stories260K-chat.gguf"), { gpu: false, threads: 1 });
});
afterAll(async () => {
  await Promise.all([plain?.dispose(), chat?.dispose()]);
});

/** A generated text with runs of spaces, newlines, a tab and punctuation, grown a character at a time. */
const TEXT =
  " One day,  she saw a  big dog! \"Hello,\" said the dog.\tThe end.\n\n\nThe  girl's mom said: it's fine.  \n x";
const PROMPTS = ["Once upon a time, there was a girl named Lucy.", "", " ", "\n"];

/** `model` with its tokenize calls written down (the texts it was asked to tokenize). */
function recording(
  model: LanguageModel,
  texts: string[],
  overrides: PropertyDescriptorMap = {},
): LanguageModel {
  return Object.create(model, {
    tokenize: {
      value: (text: string, options?: { addBos?: boolean }) => {
        texts.push(text);
        return model.tokenize(text, options);
      },
    },
    ...overrides,
  });
}

/** What tokenizing the whole text gives (the view's tokenization before it grew texts). */
async function whole(model: LanguageModel, constitution: string | undefined, prompt: string, body: string) {
  if (model.capabilities.chatTemplate) {
    const head = await promptTokens(model, { prompt, system: constitution, chat: "on" });
    return body === "" ? head : [...head, ...(await model.tokenize(body, { addBos: false }))];
  }
  return model.tokenize((constitution === undefined ? "" : `${constitution.trim()}\n\n`) + prompt + body);
}

/** Grows every prompt's body a character at a time through `view`; returns the mismatches with whole tokenization. */
async function grow(view: VerifierView, model: LanguageModel, constitution: string | undefined) {
  const mismatches: string[] = [];
  for (const prompt of PROMPTS)
    for (let n = 0; n <= TEXT.length; n++) {
      const body = TEXT.slice(0, n);
      const got: Token[] = await view.tokens(prompt, body);
      const want = await whole(model, constitution, prompt, body);
      if (JSON.stringify(got) !== JSON.stringify(want)) mismatches.push(JSON.stringify([prompt, body]));
    }
  return mismatches;
}

describe("the verifier view's tokenization of a growing text", () => {
  const constitution = readConstitution(builtinConstitutionPath());
  for (const [name, withConstitution] of [
    ["plain", false],
    ["plain", true],
    ["chat", false],
    ["chat", true],
  ] as const)
    it(`a word-local verifier (${name}${withConstitution ? ", constitution" : ""}) tokenizes only what follows a cached earlier text, giving the whole text's tokens`, async () => {
      const model = name === "plain" ? plain : chat;
      const text = withConstitution ? constitution : undefined;
      const asked: string[] = [];
      const view = new VerifierView(recording(model, asked), text);
      expect(await grow(view, model, text)).toEqual([]);
      // Not vacuous: few texts were tokenized whole (a text's first characters, and the first after
      // the cache was emptied); the rest were grown from an earlier text, only their last words
      // tokenized (behind the sentinel "a", once per distinct part).
      const whole = asked.filter((t) => !/^a(\s|$)/u.test(t));
      expect(whole.length).toBeLessThan(PROMPTS.length * 8);
      expect(asked.length - whole.length).toBeGreaterThan(TEXT.length / 2);
    });

  it("a verifier with a token holding whitespace inside tokenizes every text whole", async () => {
    const asked: string[] = [];
    // The same tokenizer, but token 100 reads as holding a space after its first character.
    const notWordLocal = recording(plain, asked, {
      detokenize: {
        value: (tokens: readonly Token[], options?: { context?: readonly Token[] }) =>
          tokens.length === 1 && tokens[0] === 100 ? "x y" : plain.detokenize(tokens, options),
      },
    });
    const view = new VerifierView(notWordLocal, undefined);
    expect(await grow(view, plain, undefined)).toEqual([]);
    expect(asked.filter((t) => /^a\s/u.test(t))).toEqual([]);
  });
});
