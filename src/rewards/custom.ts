import { TillerError } from "../errors.js";
import type { Reward } from "./types.js";

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
  if (typeof definition.name !== "string" || definition.name.trim() === "") {
    throw new TillerError("a custom reward needs a non-empty name", "bad-reward");
  }
  if (typeof definition.score !== "function") {
    throw new TillerError(`custom reward ${definition.name} needs a score function`, "bad-reward");
  }
  return { ...definition, description: definition.description ?? "" };
}
