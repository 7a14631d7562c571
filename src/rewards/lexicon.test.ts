import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { lexiconReward, parseLexicon, readLexiconFile } from "./lexicon.js";
import { sentimentReward, sentimentScore } from "./sentiment.js";
import { input } from "./testInput.js";

describe("lexiconReward", () => {
  it("penalises every whole-word, case-insensitive occurrence", () => {
    const r = lexiconReward(["darn", "heck"]);
    expect(r.score(input("Darn it, darn! What the heck. Darned heckler."))).toBe(-3);
    expect(r.score(input("all fine"))).toBe(-0);
    expect(lexiconReward(["darn"], { penalty: 2 }).score(input("darn darn"))).toBe(-4);
  });

  it("counts phrases", () => {
    expect(lexiconReward(["shut up"]).score(input("Shut up. shut the door, shut  up"))).toBe(-2);
  });

  it("reads files with comments and blank lines", () => {
    expect(parseLexicon("# bad words\ndarn\n\n  heck  # mild\n#x\n")).toEqual(["darn", "heck"]);
    const dir = mkdtempSync(join(tmpdir(), "tiller-lex-"));
    const file = join(dir, "words.txt");
    writeFileSync(file, "darn\n# comment\nheck\n");
    expect(readLexiconFile(file)).toEqual(["darn", "heck"]);
    writeFileSync(file, "# only a comment\n");
    expect(() => readLexiconFile(file)).toThrow(/lists no words/);
    expect(() => readLexiconFile(join(dir, "missing.txt"))).toThrow(/not found/);
  });
});

describe("sentimentReward", () => {
  it("is the AFINN comparative score", () => {
    expect(sentimentScore("I love this happy dog")).toBeCloseTo(6 / 5);
    expect(sentimentScore("This is terrible")).toBeLessThan(0);
    expect(sentimentScore("")).toBe(0);
    expect(sentimentReward().score(input("not good"))).toBeLessThan(0);
    const good = sentimentReward().score(input("what a wonderful day")) as number;
    expect(good).toBeGreaterThan(0);
    expect(good).toBeLessThanOrEqual(5);
  });
});
