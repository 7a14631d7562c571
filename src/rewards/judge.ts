import type { LanguageModel, NextTokenDistribution, Token } from "../lm/types.js";
import type { Reward, RewardInput } from "./types.js";

/**
 * Model-judged reward: how likely a judge model is to answer "Yes" to a question about the text.
 *
 * The template is filled in ({prompt}, {text}, {question}; each placeholder replaced once, in a
 * single pass, so a text containing "{text}" is not expanded again), tokenized with BOS, and the
 * judge's next-token distribution (top `topK`) is read:
 *
 * - log P(Yes) sums (log-sum-exp) the probabilities of the first tokens of "Yes" and " Yes"
 *   (tokenized without BOS), as both spellings can follow "Answer:".
 * - When no Yes token is among the top-k, its logprob is unknown but at most the k-th (lowest
 *   listed) logprob; the reward uses that bound as the floor (or `floor`, when given). So the
 *   reward is always finite.
 * - `normalize: false` (default): reward = log P(Yes), range (−∞, 0].
 *   `normalize: true`: reward = log P(Yes) − log P(No), the log-odds of Yes against No (same
 *   rules for No), range ℝ; it discounts how likely the judge is to answer anything at all.
 *
 * The template is plain text: for a chat/instruct judge pass a template written in its chat
 * format. A filled template longer than the judge's context keeps BOS and its last tokens (the
 * question stays; the start of the prompt is dropped).
 */
export const DEFAULT_JUDGE_TEMPLATE =
  "Read the request and the response, then answer the question with Yes or No.\n\n" +
  "Request: {prompt}\nResponse: {text}\n\nQuestion: {question}\nAnswer (Yes or No):";

export const DEFAULT_JUDGE_QUESTION = "Is the response a good, fluent reply to the request?";

export interface JudgeOptions {
  model: LanguageModel;
  /** Fills {question} in the template. */
  question?: string;
  /** Text with {prompt}, {text} and optionally {question} placeholders. */
  template?: string;
  /** Reward log P(Yes) − log P(No) instead of log P(Yes). Default false. */
  normalize?: boolean;
  /** How many next tokens to ask the judge for. Default 20 (what remote backends expose). */
  topK?: number;
  /** Fixed logprob for a Yes/No token absent from the top-k (default: the k-th logprob). */
  floor?: number;
  name?: string;
}

/** Fills the template's placeholders in one pass. */
export function fillJudgeTemplate(
  template: string,
  values: { prompt: string; text: string; question: string },
): string {
  return template.replace(/\{(prompt|text|question)\}/g, (_, key: keyof typeof values) => values[key]);
}

async function answerTokens(model: LanguageModel, answer: string): Promise<Token[]> {
  const tokens = new Set<Token>();
  for (const spelling of [answer, ` ${answer}`]) {
    const [first] = await model.tokenize(spelling, { addBos: false });
    if (first !== undefined) tokens.add(first);
  }
  return [...tokens];
}

/** log Σ P(t) over `tokens` found in `dist`; the floor when none is there. */
export function answerLogprob(dist: NextTokenDistribution, tokens: readonly Token[], floor?: number): number {
  const found = dist.filter((entry) => tokens.includes(entry.token)).map((entry) => entry.logprob);
  if (found.length === 0) {
    if (floor !== undefined) return floor;
    return dist.length > 0 ? Math.min(...dist.map((entry) => entry.logprob)) : -100;
  }
  const top = Math.max(...found);
  return top + Math.log(found.reduce((sum, lp) => sum + Math.exp(lp - top), 0));
}

export function judgeReward(options: JudgeOptions): Reward {
  const { model } = options;
  const template = options.template ?? DEFAULT_JUDGE_TEMPLATE;
  const question = options.question ?? DEFAULT_JUDGE_QUESTION;
  const topK = options.topK ?? 20;
  // Tokenizing is async (remote models): the answer tokens are looked up once, on first use.
  let answers: Promise<[Token[], Token[]]> | undefined;

  const prefixOf = async (input: RewardInput): Promise<Token[]> => {
    const tokens = await model.tokenize(
      fillJudgeTemplate(template, { prompt: input.prompt, text: input.text, question }),
    );
    const room = model.contextSize - 1;
    if (tokens.length <= room) return tokens;
    const bos = model.bosToken !== undefined && tokens[0] === model.bosToken ? [model.bosToken] : [];
    return [...bos, ...tokens.slice(tokens.length - (room - bos.length))];
  };

  const scoreBatch = async (inputs: readonly RewardInput[]): Promise<number[]> => {
    if (inputs.length === 0) return [];
    answers ??= Promise.all([answerTokens(model, "Yes"), answerTokens(model, "No")]);
    const [yes, no] = await answers;
    const prefixes = await Promise.all(inputs.map(prefixOf));
    const dists = await model.nextTokenDistributions(prefixes, { topK });
    return dists.map((dist) => {
      const lpYes = answerLogprob(dist, yes, options.floor);
      return options.normalize ? lpYes - answerLogprob(dist, no, options.floor) : lpYes;
    });
  };

  return {
    name: options.name ?? "judge",
    description: `${options.normalize ? "log P(Yes) - log P(No)" : "log P(Yes) (<= 0)"} of judge ${model.id} on: ${question}`,
    async score(input: RewardInput): Promise<number> {
      return (await scoreBatch([input]))[0];
    },
    scoreBatch,
  };
}
