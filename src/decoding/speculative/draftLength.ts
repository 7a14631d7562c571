import { TillerError } from "../../errors.js";

/** Tokens drafted per round: a fixed N, or `auto` (adapted to how much of each draft is accepted). */
export type DraftTokens = number | "auto";

/** Where `auto` starts. */
export const AUTO_INITIAL_DRAFT = 4;

/**
 * The draft length. `auto` follows the heuristic of Hugging Face's assisted generation: +2 after
 * a round whose drafts were accepted whole, −1 after one with a rejection (between 1 and `max`).
 * A batched round (several sequences) counts as accepted whole when at least half its drafts were.
 */
export class DraftLength {
  private value: number;

  constructor(
    readonly setting: DraftTokens,
    /** Ceiling of `auto`. */
    readonly max = 16,
  ) {
    if (setting !== "auto" && !(Number.isInteger(setting) && setting >= 1))
      throw new TillerError(
        `draft tokens must be an integer ≥ 1 or "auto", got ${String(setting)}`,
        "bad-draft-tokens",
      );
    if (!(Number.isInteger(max) && max >= 1))
      throw new TillerError(`the most draft tokens must be an integer ≥ 1, got ${max}`, "bad-draft-tokens");
    this.value = setting === "auto" ? Math.min(AUTO_INITIAL_DRAFT, max) : setting;
  }

  get current(): number {
    return this.value;
  }

  /** After a round: of `drafted` sequences that got a draft, `whole` had all of it accepted. */
  update(drafted: number, whole: number): void {
    if (this.setting !== "auto" || drafted === 0) return;
    this.value = whole * 2 >= drafted ? Math.min(this.max, this.value + 2) : Math.max(1, this.value - 1);
  }
}

/** Parses `N` or `auto` (the CLI's --draft-tokens; `what` names it in the error). */
export function parseDraftTokens(text: string | number, what = "--draft-tokens"): DraftTokens {
  if (text === "auto") return "auto";
  const value = typeof text === "number" ? text : Number(text);
  if (!(Number.isInteger(value) && value >= 1))
    throw new TillerError(`${what} must be an integer ≥ 1 or "auto", got "${text}"`, "bad-draft-tokens");
  return value;
}
