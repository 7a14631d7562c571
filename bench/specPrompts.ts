/** The prompts bench:spec and bench:spec-policy decode: five story openings, or the identity dev set's. */
import { readIdentityTasks } from "../src/eval/identityTasks.js";

export const BENCH_PROMPTS = [
  "Once upon a time",
  "Tom and Sue went to the park",
  "The little dog was",
  "One day, a girl named Mia",
  "Ben had a red ball",
];

/** `--prompts bench` (the five above) or `dev` (every prompt of `devFile`, identity-dev.jsonl). */
export function specPrompts(which: "bench" | "dev", devFile: string): string[] {
  return which === "dev" ? readIdentityTasks(devFile).map((task) => task.prompt) : BENCH_PROMPTS;
}
