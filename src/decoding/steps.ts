import type { SearchTrace, TraceStep } from "./result.js";
import type { DecodeContext } from "./types.js";

/**
 * A search's steps: kept for the trace when the run is traced, emitted live as `step` events when
 * someone streams. Strategies build a step only when `active` (neither costs anything otherwise).
 */
export class StepLog {
  readonly steps: TraceStep[] = [];
  readonly active: boolean;

  constructor(private readonly context: DecodeContext) {
    this.active = Boolean(context.trace || context.streaming);
  }

  /** Records a finished step (its `kept` flags final: listeners see it once). */
  add(step: TraceStep): void {
    if (this.context.trace) this.steps.push(step);
    if (this.context.streaming) this.context.emit?.({ type: "step", step });
  }

  /** The trace, when the run is traced. */
  trace(strategy: string, options: Record<string, unknown>): SearchTrace | undefined {
    return this.context.trace ? { strategy, options, steps: this.steps } : undefined;
  }
}
