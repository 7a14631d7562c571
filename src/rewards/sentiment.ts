import { createRequire } from "node:module";
import type { Reward, RewardInput } from "./types.js";

interface SentimentResult {
  score: number;
  comparative: number;
}
interface SentimentAnalyzer {
  analyze(phrase: string): SentimentResult;
}

const require = createRequire(import.meta.url);
const Sentiment = require("sentiment") as new () => SentimentAnalyzer;
let analyzer: SentimentAnalyzer | undefined;

/**
 * Sentiment of `text` with the `sentiment` package (AFINN-165 word scores in −5..+5, with
 * negation handling: "not good" flips "good"). Returns the comparative score: the sum of word
 * scores divided by the number of tokens, so range [−5, 5] (0 for empty or neutral text; in
 * practice rarely beyond ±1).
 */
export function sentimentScore(text: string): number {
  analyzer ??= new Sentiment();
  return analyzer.analyze(text).comparative;
}

/** Sentiment reward: `sentimentScore` of the continuation; higher is more positive. */
export function sentimentReward(options: { name?: string } = {}): Reward {
  return {
    name: options.name ?? "sentiment",
    description: "AFINN sentiment of the text, comparative score (word scores / tokens), -5..5",
    score(input: RewardInput): number {
      return sentimentScore(input.text);
    },
  };
}
