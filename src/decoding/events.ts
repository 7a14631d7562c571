import type { ModelWarning } from "../lm/types.js";
import type { GenerationResult, TraceStep } from "./types.js";

/**
 * The one stream every strategy produces; the CLI, the library's streaming calls, the server's
 * SSE and the playground all consume it.
 *
 * - `text`: a piece of committed text, final as soon as it is emitted (the concatenation of all
 *   `text` events equals the result's text: beam emits the prefix all its beams share, DeAL what
 *   it has committed, Best-of-N the chosen sample once).
 * - `step`: one step of a search (candidates, scores, what was kept) — the trace, live.
 * - `warning`: a request the backend (or strategy) had to degrade, e.g. top-k clamped.
 * - `result`: the final result, last event of a successful run.
 */
export type DecodeEvent =
  | { type: "text"; text: string }
  | { type: "step"; step: TraceStep }
  | { type: "warning"; warning: ModelWarning }
  | { type: "result"; result: GenerationResult };

export type DecodeEventListener = (event: DecodeEvent) => void;
