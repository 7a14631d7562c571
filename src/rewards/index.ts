export { defineReward } from "./custom.js";
export {
  answerLogprob,
  DEFAULT_JUDGE_QUESTION,
  DEFAULT_JUDGE_TEMPLATE,
  fillJudgeTemplate,
  type JudgeOptions,
  judgeReward,
} from "./judge.js";
export {
  inflectedForms,
  type KeywordCoverage,
  type KeywordOptions,
  type KeywordsRewardOptions,
  keywordCoverage,
  keywordsReward,
} from "./keywords.js";
export { type LengthUnit, type LengthWindow, lengthOf, lengthPenalty, lengthReward } from "./length.js";
export { countOccurrences, lexiconReward, parseLexicon, readLexiconFile } from "./lexicon.js";
export { mix, scoreComponents, scoreComponentsAll, uniqueNames, type WeightedReward } from "./mix.js";
export { compileRegex, type RegexMode, regexReward } from "./regex.js";
export { sentimentReward, sentimentScore } from "./sentiment.js";
export {
  parseRewardSpec,
  parseRewardSpecs,
  parseWeight,
  REWARD_SPEC_FORMS,
  REWARD_SPEC_HELP,
  type RewardSpecDeps,
} from "./spec.js";
export { checkedScore, type Reward, type RewardInput, scoreAll } from "./types.js";
export { countWords, wordSpans } from "./words.js";
