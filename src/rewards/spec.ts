import { existsSync } from "node:fs";
import { TillerError } from "../errors.js";
import type { LanguageModel } from "../lm/types.js";
import { judgeReward } from "./judge.js";
import { keywordsReward } from "./keywords.js";
import { lengthReward } from "./length.js";
import { lexiconReward, readLexiconFile } from "./lexicon.js";
import { mix, type WeightedReward } from "./mix.js";
import { regexReward } from "./regex.js";
import { sentimentReward } from "./sentiment.js";
import type { Reward } from "./types.js";

/*
 * The CLI grammar of rewards: one `--reward SPEC` flag per reward, mixed as Σ wᵢ·Rᵢ.
 *
 *   SPEC := [WEIGHT "*"] FORM
 *   FORM := keywords:W1,W2,…[;hard][;inflect]   keyword coverage, 0..1: soft (fraction present) by
 *                                                default, `hard` = 1 only if all present; `inflect`
 *                                                also matches dogs/dog's/barked/barking…; a keyword
 *                                                may contain spaces ("ice cream")
 *         | length:MIN-MAX(w|t)                 0 inside the window of words (w) or tokens (t),
 *                                                -(distance / window centre) outside
 *         | lexicon:FILE | lexicon:W1,W2,…      -1 per occurrence of a listed word; FILE has one
 *                                                word per line, # comments. An argument with a comma
 *                                                is a list; otherwise an existing file, or anything
 *                                                that looks like a path (has / or an .ext), is a file;
 *                                                otherwise it is a single word
 *         | sentiment                           AFINN comparative sentiment, -5..5
 *         | regex:must:PATTERN                  1 if the text matches PATTERN (RE2 syntax), else 0
 *         | regex:not:PATTERN                   -1 if the text matches PATTERN, else 0
 *         | judge[:QUESTION]                    log P(judge answers Yes to QUESTION about the text)
 *   WEIGHT := a decimal number (2, 0.5, -1, 1e-3); default 1
 *
 * Weights come either as the prefix above (`--reward 2*keywords:dog`) or as a `--weight` list
 * with exactly one entry per `--reward`, in order (`--reward keywords:dog --reward length:40-80w
 * --weight 2 --weight 0.5`); not both. Everything after the name's colon belongs to the form, so
 * regex patterns and questions may contain ":" and "*".
 */

export const REWARD_SPEC_FORMS = [
  "keywords:W1,W2[;hard][;inflect]",
  "length:MIN-MAX(w|t)",
  "lexicon:FILE",
  "lexicon:W1,W2",
  "sentiment",
  "regex:must:PATTERN",
  "regex:not:PATTERN",
  "judge[:QUESTION]",
] as const;

export const REWARD_SPEC_HELP = `Rewards (one --reward per reward; the score is the weighted sum):
  keywords:W1,W2[;hard][;inflect]  keyword coverage 0..1 (soft: fraction present; hard: all or 0;
                                   inflect: also dogs, dog's, barked, barking)
  length:MIN-MAX(w|t)              0 inside MIN..MAX words (w) or tokens (t), linear penalty outside
  lexicon:FILE | lexicon:W1,W2     -1 per occurrence of a listed word (FILE: one per line, # comments)
  sentiment                        AFINN sentiment, -5..5 (comparative score)
  regex:must:PATTERN               1 if the text matches PATTERN (RE2 syntax), else 0
  regex:not:PATTERN                -1 if the text matches PATTERN, else 0
  judge[:QUESTION]                 log P(a judge model answers Yes to QUESTION about the text)
Weights: prefix a spec with N* (2*keywords:dog,ball), or give one --weight per --reward, in order.
Example: --reward keywords:dog,ball,tree --reward length:40-80w --weight 1 --weight 0.5`;

const FORMS_LINE = `valid forms: ${REWARD_SPEC_FORMS.join(" | ")}, optionally prefixed by WEIGHT* (e.g. 2*sentiment)`;
const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?$/i;

export interface RewardSpecDeps {
  /** The model the `judge` reward asks; `judge` specs fail without one. */
  judgeModel?: LanguageModel;
}

function specError(spec: string, problem: string, code = "bad-reward-spec"): TillerError {
  return new TillerError(`bad reward spec ${JSON.stringify(spec)}: ${problem}; ${FORMS_LINE}`, code);
}

/** Parses a weight ("2", "-0.5", "1e-3"); anything else (NaN, Infinity, "", "x") → undefined. */
export function parseWeight(text: string): number | undefined {
  const trimmed = text.trim();
  if (!NUMBER.test(trimmed)) return undefined;
  const value = Number(trimmed);
  return Number.isFinite(value) ? value : undefined;
}

/** Parses one spec (without weight handling across flags). Returns the reward and its prefix weight. */
export function parseRewardSpec(
  spec: string,
  deps: RewardSpecDeps = {},
): { reward: Reward; weight: number | undefined } {
  let rest = spec.trim();
  let weight: number | undefined;
  const colon = rest.indexOf(":");
  const head = colon < 0 ? rest : rest.slice(0, colon);
  const star = head.lastIndexOf("*");
  if (star >= 0) {
    weight = parseWeight(head.slice(0, star));
    if (weight === undefined) {
      throw specError(
        spec,
        `weight ${JSON.stringify(head.slice(0, star))} is not a finite number`,
        "bad-weight",
      );
    }
    rest = rest.slice(star + 1);
  }
  const sep = rest.indexOf(":");
  const name = (sep < 0 ? rest : rest.slice(0, sep)).trim();
  const arg = sep < 0 ? undefined : rest.slice(sep + 1);
  return { reward: buildReward(spec, name, arg, deps), weight };
}

function buildReward(spec: string, name: string, arg: string | undefined, deps: RewardSpecDeps): Reward {
  switch (name) {
    case "keywords":
      return parseKeywords(spec, arg);
    case "length":
      return parseLength(spec, arg);
    case "lexicon":
      return parseLexiconSpec(spec, arg);
    case "sentiment":
      if (arg !== undefined) throw specError(spec, "sentiment takes no argument");
      return sentimentReward();
    case "regex":
      return parseRegex(spec, arg);
    case "judge": {
      if (!deps.judgeModel) {
        throw specError(spec, "the judge reward needs a judge model (none was given)", "no-judge-model");
      }
      const question = arg?.trim();
      if (arg !== undefined && !question) throw specError(spec, "judge: the question is empty");
      return judgeReward({ model: deps.judgeModel, question: question || undefined });
    }
    case "":
      throw specError(spec, "no reward name");
    default:
      throw specError(spec, `unknown reward ${JSON.stringify(name)}`, "unknown-reward");
  }
}

function parseKeywords(spec: string, arg: string | undefined): Reward {
  if (arg === undefined || arg.trim() === "") throw specError(spec, "keywords: the keyword list is empty");
  const [list, ...flags] = arg.split(";");
  const words = list.split(",").map((word) => word.trim());
  if (words.every((word) => word === "")) throw specError(spec, "keywords: the keyword list is empty");
  if (words.some((word) => word === "")) throw specError(spec, "keywords: empty keyword in the list");
  if (words.some((word) => !/[\p{L}\p{N}]/u.test(word))) {
    throw specError(spec, "keywords: a keyword has no letters or digits");
  }
  let mode: "soft" | "hard" = "soft";
  let inflections = false;
  for (const flag of flags.map((f) => f.trim().toLowerCase())) {
    if (flag === "hard" || flag === "soft") mode = flag;
    else if (flag === "inflect" || flag === "inflections") inflections = true;
    else
      throw specError(
        spec,
        `keywords: unknown option ${JSON.stringify(flag)} (options: hard, soft, inflect)`,
      );
  }
  return keywordsReward(words, { mode, inflections });
}

function parseLength(spec: string, arg: string | undefined): Reward {
  const m = /^\s*(\d+)\s*-\s*(\d+)\s*([wt])\s*$/i.exec(arg ?? "");
  if (!m)
    throw specError(spec, "length: expected MIN-MAX followed by w (words) or t (tokens), e.g. length:40-80w");
  const min = Number(m[1]);
  const max = Number(m[2]);
  if (max < min) throw specError(spec, `length: MIN (${min}) is greater than MAX (${max})`);
  return lengthReward({ min, max, unit: m[3].toLowerCase() === "w" ? "words" : "tokens" });
}

function parseLexiconSpec(spec: string, arg: string | undefined): Reward {
  const value = arg?.trim() ?? "";
  if (value === "") throw specError(spec, "lexicon: give a file or a comma-separated word list");
  const looksLikeFile = !value.includes(",") && (existsSync(value) || /[/\\]|\.\w+$/.test(value));
  if (looksLikeFile) {
    if (!existsSync(value)) throw specError(spec, `lexicon file not found: ${value}`, "lexicon-not-found");
    return lexiconReward(readLexiconFile(value), { source: `the words in ${value}` });
  }
  const words = value.split(",").map((word) => word.trim());
  if (words.some((word) => !/[\p{L}\p{N}]/u.test(word))) {
    throw specError(spec, "lexicon: empty word or word without letters in the list");
  }
  return lexiconReward(words, { source: words.join(", ") });
}

function parseRegex(spec: string, arg: string | undefined): Reward {
  const sep = arg?.indexOf(":") ?? -1;
  const mode = arg !== undefined && sep >= 0 ? arg.slice(0, sep) : undefined;
  if (arg === undefined || (mode !== "must" && mode !== "not")) {
    throw specError(spec, "regex: expected regex:must:PATTERN or regex:not:PATTERN");
  }
  const pattern = arg.slice(sep + 1);
  if (pattern === "") throw specError(spec, "regex: the pattern is empty");
  return regexReward(pattern, mode);
}

/**
 * Parses the `--reward` specs (and the optional parallel `--weight` list) into one `mix` reward.
 * Every problem is a TillerError whose message shows the valid forms.
 */
export function parseRewardSpecs(
  specs: readonly string[],
  weights: readonly string[] | undefined,
  deps: RewardSpecDeps = {},
): Reward {
  if (specs.length === 0) throw new TillerError(`no reward given; ${FORMS_LINE}`, "no-reward");
  const listed = weights && weights.length > 0 ? weights : undefined;
  if (listed && listed.length !== specs.length) {
    throw new TillerError(
      `got ${listed.length} --weight value(s) for ${specs.length} --reward spec(s); give one weight per reward, in order, or prefix specs with WEIGHT* instead`,
      "bad-weight",
    );
  }
  const parts: WeightedReward[] = specs.map((spec, i) => {
    const { reward, weight } = parseRewardSpec(spec, deps);
    if (!listed) return { reward, weight: weight ?? 1 };
    if (weight !== undefined) {
      throw specError(spec, "weight given both as a WEIGHT* prefix and in --weight; use one", "bad-weight");
    }
    const value = parseWeight(listed[i]);
    if (value === undefined) {
      throw new TillerError(
        `--weight ${JSON.stringify(listed[i])} (for ${JSON.stringify(spec)}) is not a finite number`,
        "bad-weight",
      );
    }
    return { reward, weight: value };
  });
  return mix(parts);
}
