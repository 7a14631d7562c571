import type { ModelCallOptions } from "../lm/types.js";
import { type DecodeContext, warn } from "./types.js";

/** What every model call of a strategy passes: the abort signal, and warnings into the stream. */
export function callOptions(context: DecodeContext): ModelCallOptions {
  return { signal: context.signal, onWarning: (warning) => warn(context, warning) };
}

/**
 * `wanted` distribution entries, or as many as the target model can return
 * (`capabilities.maxTopK`) with a `top-k-clamped` warning — a strategy never narrows its search
 * silently. `purpose` names what the entries are for, e.g. "beam: width 30".
 */
export function cappedTopK(context: DecodeContext, wanted: number, purpose: string): number {
  const max = context.model.capabilities.maxTopK;
  if (wanted <= max) return wanted;
  warn(context, {
    code: "top-k-clamped",
    message: `${purpose}: wanted the top ${wanted} tokens, ${context.model.id} returns at most ${max}`,
  });
  return max;
}
