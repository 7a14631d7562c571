import { TillerError } from "../errors.js";
import { checkedScore, type Reward } from "./types.js";

/**
 * A reward from a user function. `score` gets the prompt, the text so far, its tokens and whether
 * it is finished; return a number, higher is better (or a promise of one). The optional members
 * (`scoreBatch`, `saturated`, `wantedWords`) are passed through.
 *
 *   const noExclaim = defineReward({
 *     name: "calm", description: "-1 per '!'; <= 0",
 *     score: ({ text }) => -(text.split("!").length - 1),
 *   });
 */
export function defineReward(definition: Omit<Reward, "components">): Reward {
  if (typeof definition !== "object" || definition === null)
    throw new TillerError("defineReward needs an object { name, description, score }", "bad-reward");
  if (typeof definition.name !== "string" || definition.name.trim() === "") {
    throw new TillerError("a custom reward needs a non-empty name", "bad-reward");
  }
  if (typeof definition.score !== "function") {
    throw new TillerError(`custom reward ${definition.name} needs a score function`, "bad-reward");
  }
  const reward: Reward = { ...definition, description: definition.description ?? "" };
  // A user function may return NaN, Infinity or a non-number: each is an error naming the reward.
  const score = definition.score;
  reward.score = (input) => {
    const value = score.call(definition, input);
    return value instanceof Promise || (typeof value === "object" && value !== null && "then" in value)
      ? Promise.resolve(value).then((settled) => checkedScore(reward, settled))
      : checkedScore(reward, value);
  };
  const batch = definition.scoreBatch;
  if (batch)
    reward.scoreBatch = async (inputs) =>
      (await batch.call(definition, inputs)).map((value) => checkedScore(reward, value));
  return reward;
}
