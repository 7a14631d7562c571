import { describe, expect, it } from "vitest";
import { loadSwapMap } from "../src/decoding/ambedkar/builtinSwaps.js";
import { lookUp, termSpans } from "../src/decoding/ambedkar/termSpans.js";
import { wordSpans } from "../src/rewards/words.js";

const gender = loadSwapMap("gender");

/** A prompt and generated text with apostrophes (straight and curly), runs of whitespace and punctuation. */
const TEXT =
  "Once upon a time, there was a girl named Lucy.\n\nOne day  she saw Tom’s dog. \"Her dog's name is Max,\" he said.\tShe'd  smiled ";
const UNITS = ["", " she", "s", "'s", " Her", "\n\nHe", ",", "  him.", "’s"];

describe("the words σ reads, grown from a text's head", () => {
  it("are the words of the whole text, with each one's term, however the texts grow", () => {
    const mismatches: string[] = [];
    let grown = 0;
    for (let n = 0; n <= TEXT.length; n++)
      for (const unit of UNITS) {
        const text = TEXT.slice(0, n) + unit;
        const got = termSpans(gender, text);
        const spans = wordSpans(text);
        if (JSON.stringify(got.spans) !== JSON.stringify(spans)) mismatches.push(JSON.stringify(text));
        if (JSON.stringify(got.terms) !== JSON.stringify(spans.map((span) => lookUp(gender, span.word))))
          mismatches.push(`terms of ${JSON.stringify(text)}`);
        if (got.terms.some((term) => term !== undefined)) grown++;
      }
    expect(mismatches).toEqual([]);
    // Not vacuous: the texts hold terms (she, Lucy, Tom's, her, he, him).
    expect(grown).toBeGreaterThan(TEXT.length * UNITS.length * 0.8);
    expect(termSpans(gender, TEXT).terms.filter((term) => term !== undefined).length).toBeGreaterThanOrEqual(
      7,
    );
  });

  it("are kept per text: a text asked again is not scanned again", () => {
    const text = `${TEXT} and then`;
    expect(termSpans(gender, text)).toBe(termSpans(gender, text));
  });
});
