import { TillerError } from "../../errors.js";
import type { StrategySpec } from "../definition.js";
import { LOOKAHEAD_SOURCES, type LookaheadSource } from "./draftedLookahead.js";

/** `deal:lookahead=target|draft|draft-only`: who writes the lookaheads; "target" when absent. */
export function lookaheadSourceParam(spec: StrategySpec): LookaheadSource {
  const value = spec.params.lookahead ?? "target";
  if (typeof value === "string" && (LOOKAHEAD_SOURCES as readonly string[]).includes(value))
    return value as LookaheadSource;
  throw new TillerError(
    `${spec.name}: lookahead must be one of ${LOOKAHEAD_SOURCES.join(" | ")}, got "${String(value)}"`,
    "bad-strategy-param",
  );
}
