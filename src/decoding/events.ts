import type { ModelWarning } from "../lm/types.js";
import type { GenerationResult, TraceStep } from "./result.js";

/**
 * The one stream every strategy produces; the CLI, the library's streaming calls, the server's
 * SSE and the playground all consume it.
 *
 * - `text`: a piece of committed text, final as soon as it is emitted. The concatenation of all
 *   `text` events equals the result's text exactly (stop strings cut, stop tokens never emitted):
 *   greedy and sampling stream token by token, beam search the prefix all its candidate outputs
 *   share, DeAL what it has committed, Best-of-N the chosen sample once, a shielded strategy the
 *   accepted text or the refusal.
 * - `step`: one step of a search (candidates, scores, what was kept): the same objects the trace
 *   records, emitted live.
 * - `warning`: a request the backend (or strategy) had to degrade, e.g. top-k clamped; each
 *   distinct warning once per run.
 * - `result`: the final result, last event of a successful run.
 *
 * `R` is the result type (`align` adds rewards to it).
 */
export type DecodeEvent<R extends GenerationResult = GenerationResult> =
  | { type: "text"; text: string }
  | { type: "step"; step: TraceStep }
  | { type: "warning"; warning: ModelWarning }
  | { type: "result"; result: R };

export type DecodeEventListener<R extends GenerationResult = GenerationResult> = (
  event: DecodeEvent<R>,
) => void;

/**
 * The events of a run as an async iterable, ending with its `result` event; an error of the run
 * rejects the iteration. The run starts when iteration starts. Leaving the loop early (`break`,
 * a throw) aborts the run and waits until it has stopped, so the model is free afterwards.
 * `signal` (the caller's) aborts it too.
 */
export async function* eventStream<R extends GenerationResult>(
  run: (emit: (event: DecodeEvent<R>) => void, signal: AbortSignal) => Promise<unknown>,
  signal?: AbortSignal,
): AsyncGenerator<DecodeEvent<R>, void, undefined> {
  const controller = new AbortController();
  const forward = () => controller.abort(signal?.reason);
  if (signal?.aborted) forward();
  else signal?.addEventListener("abort", forward, { once: true });
  const queue: DecodeEvent<R>[] = [];
  let next = 0;
  let wake: (() => void) | undefined;
  let outcome: { failed: false } | { failed: true; error: unknown } | undefined;
  const finished = run((event) => {
    queue.push(event);
    wake?.();
  }, controller.signal).then(
    () => {
      outcome = { failed: false };
      wake?.();
    },
    (error: unknown) => {
      outcome = { failed: true, error };
      wake?.();
    },
  );
  try {
    for (;;) {
      while (next < queue.length) yield queue[next++];
      if (outcome?.failed) throw outcome.error;
      if (outcome) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = undefined;
    }
  } finally {
    if (!outcome) controller.abort(new Error("the event stream was closed"));
    await finished;
    signal?.removeEventListener("abort", forward);
  }
}

/**
 * A call that reports its events through an `onEvent` option (`generate`, `align`) as an
 * {@link eventStream}: `run` gets the stream's signal (the caller's `options.signal` still aborts
 * it) and a listener that also hands every event to the caller's own `options.onEvent`.
 */
export function streamedCall<R extends GenerationResult>(
  options: { signal?: AbortSignal; onEvent?: (event: DecodeEvent<R>) => void },
  run: (signal: AbortSignal, onEvent: (event: DecodeEvent<R>) => void) => Promise<unknown>,
): AsyncGenerator<DecodeEvent<R>, void, undefined> {
  return eventStream<R>(
    (emit, signal) =>
      run(signal, (event) => {
        options.onEvent?.(event);
        emit(event);
      }),
    options.signal,
  );
}
