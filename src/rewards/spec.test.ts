import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { TillerError } from "../errors.js";
import { scoreComponents } from "./mix.js";
import { parseRewardSpecs, parseWeight, REWARD_SPEC_HELP } from "./spec.js";
import { input } from "./testInput.js";

function errorOf(fn: () => unknown): TillerError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TillerError);
    return error as TillerError;
  }
  throw new Error("expected a TillerError");
}

const parse = (specs: string[], weights?: string[]) => parseRewardSpecs(specs, weights, {});

describe("parseRewardSpecs", () => {
  it("builds a mix with one component per spec", async () => {
    const r = parse([
      "keywords:dog,ball,tree",
      "length:2-3w",
      "lexicon:darn,heck",
      "sentiment",
      "regex:must:^A",
    ]);
    expect(r.components?.map((c) => [c.reward.name, c.weight])).toEqual([
      ["keywords", 1],
      ["length", 1],
      ["lexicon", 1],
      ["sentiment", 1],
      ["regex", 1],
    ]);
    const values = await scoreComponents(r, input("A dog, darn"));
    expect(values).toMatchObject({ keywords: 1 / 3, length: 0, lexicon: -1, regex: 1 });
  });

  it("takes weights as prefixes or as a parallel list", () => {
    const a = parse(["2*keywords:dog", "-0.5*regex:not:x*y", "1e-1*sentiment"]);
    expect(a.components?.map((c) => c.weight)).toEqual([2, -0.5, 0.1]);
    expect(a.score(input("dog xxy"))).toBeCloseTo(2 * 1 + -0.5 * -1);
    const b = parse(["keywords:dog", "length:1-2w"], ["3", " 0.25 "]);
    expect(b.components?.map((c) => c.weight)).toEqual([3, 0.25]);
    expect(parse(["keywords:dog"], []).components?.[0].weight).toBe(1);
  });

  it("parses keyword options", () => {
    const hard = parse(["keywords:dog,ball;hard"]);
    expect(hard.score(input("dog"))).toBe(0);
    const inflect = parse(["keywords:dog, ball ;inflect;hard"]);
    expect(inflect.score(input("dogs and balls"))).toBe(1);
    expect(parse(["keywords:ice cream"]).score(input("ice cream!"))).toBe(1);
  });

  it("parses length windows in words and tokens", () => {
    const w = parse(["length:2-3w"]);
    expect(w.score(input("one two three four five"))).toBeCloseTo(-2 / 2.5);
    const t = parse(["length:1-1t"]);
    expect(t.score(input("x", true, { tokens: [1, 2, 3] }))).toBeCloseTo(-2);
  });

  it("reads lexicon files", () => {
    const dir = mkdtempSync(join(tmpdir(), "tiller-spec-"));
    const file = join(dir, "bad.txt");
    writeFileSync(file, "# words\ndarn\nheck\n");
    expect(parse([`lexicon:${file}`]).score(input("darn, heck, darn"))).toBe(-3);
    expect(parse(["lexicon:darn"]).score(input("darn"))).toBe(-1); // a single inline word
  });

  it("regex patterns keep colons and stars", () => {
    const r = parse(["regex:must:^a:b*$"]);
    expect(r.score(input("a:bbb"))).toBe(1);
    expect(r.score(input("a:c"))).toBe(0);
  });

  it("help lists every form", () => {
    for (const form of [
      "keywords:",
      "length:",
      "lexicon:",
      "sentiment",
      "regex:must:",
      "regex:not:",
      "judge",
    ]) {
      expect(REWARD_SPEC_HELP).toContain(form);
    }
  });
});

describe("malformed specs", () => {
  const cases: [string, string[], string[] | undefined, string, RegExp][] = [
    ["unknown name", ["color:red"], undefined, "unknown-reward", /unknown reward "color"/],
    ["no name", [":dog"], undefined, "bad-reward-spec", /no reward name/],
    ["empty keywords", ["keywords:"], undefined, "bad-reward-spec", /keyword list is empty/],
    ["keywords without colon", ["keywords"], undefined, "bad-reward-spec", /keyword list is empty/],
    ["only commas", ["keywords:,,"], undefined, "bad-reward-spec", /keyword list is empty/],
    ["empty keyword", ["keywords:dog,,ball"], undefined, "bad-reward-spec", /empty keyword/],
    ["keyword of punctuation", ["keywords:dog,!!"], undefined, "bad-reward-spec", /no letters/],
    ["unknown keyword option", ["keywords:dog;loud"], undefined, "bad-reward-spec", /unknown option "loud"/],
    ["length without unit", ["length:40-80"], undefined, "bad-reward-spec", /MIN-MAX followed by w/],
    ["length one number", ["length:40w"], undefined, "bad-reward-spec", /MIN-MAX/],
    ["length words", ["length:short"], undefined, "bad-reward-spec", /MIN-MAX/],
    [
      "length reversed",
      ["length:80-40w"],
      undefined,
      "bad-reward-spec",
      /MIN \(80\) is greater than MAX \(40\)/,
    ],
    ["missing lexicon file", ["lexicon:nope/bad-words.txt"], undefined, "lexicon-not-found", /not found/],
    ["empty lexicon", ["lexicon:"], undefined, "bad-reward-spec", /file or a comma-separated/],
    ["lexicon empty word", ["lexicon:darn,"], undefined, "bad-reward-spec", /empty word/],
    ["sentiment argument", ["sentiment:happy"], undefined, "bad-reward-spec", /takes no argument/],
    ["regex without mode", ["regex:abc"], undefined, "bad-reward-spec", /regex:must:PATTERN/],
    ["regex bad mode", ["regex:maybe:abc"], undefined, "bad-reward-spec", /regex:must:PATTERN/],
    ["regex empty", ["regex:must:"], undefined, "bad-reward-spec", /pattern is empty/],
    ["regex invalid", ["regex:must:(a"], undefined, "bad-regex", /missing closing/],
    ["regex backreference", ["regex:not:(a)\\1"], undefined, "bad-regex", /backreferences/],
    ["judge without model", ["judge:Is it good?"], undefined, "no-judge-model", /needs a judge model/],
    ["prefix weight NaN", ["NaN*sentiment"], undefined, "bad-weight", /not a finite number/],
    ["prefix weight text", ["two*sentiment"], undefined, "bad-weight", /not a finite number/],
    ["prefix weight empty", ["*sentiment"], undefined, "bad-weight", /not a finite number/],
    ["weight list NaN", ["sentiment"], ["NaN"], "bad-weight", /--weight "NaN"/],
    ["weight list text", ["sentiment"], ["heavy"], "bad-weight", /not a finite number/],
    ["weight list empty", ["sentiment"], [""], "bad-weight", /not a finite number/],
    ["weight list infinity", ["sentiment"], ["Infinity"], "bad-weight", /not a finite number/],
    ["weight list hex", ["sentiment"], ["0x10"], "bad-weight", /not a finite number/],
    ["too few weights", ["sentiment", "keywords:dog"], ["1"], "bad-weight", /1 --weight value\(s\) for 2/],
    ["too many weights", ["sentiment"], ["1", "2"], "bad-weight", /2 --weight value\(s\) for 1/],
    ["both weights", ["2*sentiment"], ["1"], "bad-weight", /both as a WEIGHT\* prefix and in --weight/],
    ["no specs", [], undefined, "no-reward", /no reward given/],
  ];
  for (const [title, specs, weights, code, message] of cases) {
    it(title, () => {
      const error = errorOf(() => parse(specs, weights));
      expect(error.code).toBe(code);
      expect(error.message).toMatch(message);
    });
  }

  it("spec errors show the valid forms", () => {
    const error = errorOf(() => parse(["colour:red"]));
    expect(error.message).toContain("valid forms: keywords:W1,W2[;hard][;inflect] | length:MIN-MAX(w|t)");
    expect(errorOf(() => parse(["length:1w"])).message).toContain("regex:must:PATTERN");
  });
});

describe("parseWeight", () => {
  it("accepts decimals and rejects the rest", () => {
    expect(["2", "-0.5", "+1", ".5", "1e-3", "3."].map(parseWeight)).toEqual([2, -0.5, 1, 0.5, 0.001, 3]);
    for (const bad of ["", " ", "NaN", "Infinity", "1e999", "1,5", "2x", "0x10"])
      expect(parseWeight(bad)).toBeUndefined();
  });
});
