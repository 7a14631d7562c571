import type {
  ControlledEvaluateIndexOutput,
  ControlledEvaluateInputItem,
  LlamaContextSequence,
} from "node-llama-cpp";
import { type Probabilities, ProbabilityList } from "./probabilityList.js";
import type { NativeSampler, SamplerPool } from "./samplerPool.js";

/** A position's output: node-llama-cpp's, its probabilities either a Map or a ProbabilityList. */
export type Next = Omit<NonNullable<ControlledEvaluateIndexOutput["next"]>, "probabilities"> & {
  probabilities?: Probabilities;
};
type Asked = { token?: boolean; probabilities?: boolean; confidence?: boolean };

/** The methods of node-llama-cpp 3.21.1's native context this path calls (as its batch dispatch does). */
interface NativeContext {
  initBatch(size: number): void;
  addToBatch(
    sequenceId: number,
    firstTokenIndex: number,
    tokens: Uint32Array,
    logitIndexes: Uint32Array,
  ): Uint32Array;
  setThreads(threads: number): void;
  decodeBatch(): Promise<void>;
  sampleToken(
    batchLogitIndex: number,
    sampler: NativeSampler,
    probabilities: boolean,
    confidence: boolean,
  ): Promise<[number, number[] | undefined, number | undefined]>;
}

/** node-llama-cpp 3.21.1's context internals its batch dispatch uses around a decode. */
interface ContextInternals {
  _ctx: NativeContext;
  batchSize: number;
  contextSize: number;
  _llama: { gpu: string | false };
  _backendContextDisposeGuard: { createPreventDisposalHandle(): { dispose(): void } };
  _reserveThreads(): void;
  _threadSplitterConsumer?: {
    getAllocationToConsume():
      | [number, { dispose(): void }]
      | Promise<[number, { dispose(): void }] | undefined>
      | undefined;
  };
  _scheduleToFreeReservedThreads(): void;
}

/** A sequence's bookkeeping that node-llama-cpp 3.21.1 keeps in step with its KV cells. */
interface SequenceInternals {
  _context: ContextInternals;
  _sequenceId: number;
  _nextTokenIndex: number;
  _contextTokens: number[];
}

/** Whether a sequence has the internals this path drives (node-llama-cpp 3.21.1's; another version falls back). */
function driveable(sequence: SequenceInternals): boolean {
  const context = sequence._context as Partial<ContextInternals> | undefined;
  const native = context?._ctx as Partial<NativeContext> | undefined;
  return (
    typeof sequence._sequenceId === "number" &&
    typeof sequence._nextTokenIndex === "number" &&
    Array.isArray(sequence._contextTokens) &&
    typeof context?._reserveThreads === "function" &&
    typeof context._scheduleToFreeReservedThreads === "function" &&
    typeof context._backendContextDisposeGuard?.createPreventDisposalHandle === "function" &&
    (["initBatch", "addToBatch", "setThreads", "decodeBatch", "sampleToken"] as const).every(
      (name) => typeof native?.[name] === "function",
    )
  );
}

/** One sequence's input: its tokens, and the positions read after (what each asks). */
interface Planned {
  tokens: Uint32Array;
  reads: number[];
  asked: Asked[];
  /** Whether a read asks for sampling options (temperature, penalties…): node-llama-cpp's path then. */
  sampled: boolean;
}

function plan(input: readonly ControlledEvaluateInputItem[]): Planned {
  const tokens = new Uint32Array(input.length);
  const reads: number[] = [];
  const asked: Asked[] = [];
  let sampled = false;
  input.forEach((item, i) => {
    if (!Array.isArray(item)) {
      tokens[i] = item as number;
      return;
    }
    tokens[i] = item[0] as number;
    const ask = item[1]?.generateNext;
    if (ask && (ask.token || ask.probabilities || ask.confidence)) {
      reads.push(i);
      asked.push(ask);
      if (ask.options && Object.values(ask.options).some((value) => value !== undefined)) sampled = true;
    }
  });
  return { tokens, reads, asked, sampled };
}

/**
 * Evaluates a wave in one llama.cpp batch per context and reads the positions asked, as
 * node-llama-cpp's `controlledEvaluate` does when a wave's evaluations are queued together (the
 * same batch, in the same order, read by samplers of the same configuration, so the same floats),
 * without the per-call machinery around it (locks, a sampler made and configured per call, a
 * batch scheduled for the next turn of the event loop, a Map of the vocabulary per read): on the
 * 260K model a call's overhead there was larger than its decode. Each position's output is
 * indexed like the input; unread positions are undefined.
 *
 * Undefined, with nothing done, where node-llama-cpp's path is needed: no `samplers` (another
 * node-llama-cpp), a GPU build (its decode guards), a context's share of the wave over its batch
 * size, a sequence without room for its input (node-llama-cpp then shifts the context), a read
 * with sampling options.
 *
 * Nothing else may use these contexts meanwhile (SequencePool's calls are exclusive): unlike
 * node-llama-cpp's dispatch, this path takes no lock of its own.
 */
export async function evaluateDirect(
  sequences: readonly LlamaContextSequence[],
  inputs: readonly (readonly ControlledEvaluateInputItem[])[],
  samplers: SamplerPool | undefined,
): Promise<(Next | undefined)[][] | undefined> {
  const internals = sequences as unknown as readonly SequenceInternals[];
  if (!samplers || !internals.every(driveable)) return undefined;
  const planned = inputs.map(plan);
  if (planned.some((each) => each.sampled)) return undefined;
  const groups = new Map<ContextInternals, number[]>();
  internals.forEach((sequence, i) => {
    if (planned[i].tokens.length === 0) return;
    groups.set(sequence._context, [...(groups.get(sequence._context) ?? []), i]);
  });
  for (const [context, members] of groups) {
    if (context._llama.gpu !== false) return undefined;
    if (members.reduce((sum, i) => sum + planned[i].tokens.length, 0) > context.batchSize) return undefined;
    // node-llama-cpp keeps one cell free (its `freeSpace`).
    if (
      members.some((i) => internals[i]._nextTokenIndex + planned[i].tokens.length > context.contextSize - 1)
    )
      return undefined;
  }
  // The contexts stay undisposed until the last read is back (node-llama-cpp's dispatch holds the same guard).
  const guards = [...groups.keys()].map((context) =>
    context._backendContextDisposeGuard.createPreventDisposalHandle(),
  );
  try {
    const logitIndexes: Uint32Array[] = new Array(inputs.length);
    await settled(
      [...groups].map(([context, members]) =>
        decodeGroup(context, members, internals, planned, logitIndexes),
      ),
    );
    // Sequences read side by side, each with its own sampler (the i-th of the wave); a sequence's
    // positions one after another on it, as node-llama-cpp reads them.
    return await settled(
      internals.map(async (sequence, i) => {
        const out: (Next | undefined)[] = new Array(planned[i].tokens.length);
        const sampler = planned[i].reads.length > 0 ? samplers.get(i) : undefined;
        for (const [r, position] of planned[i].reads.entries())
          out[position] = await read(
            sequence._context._ctx,
            logitIndexes[i][r],
            sampler as NativeSampler,
            planned[i].asked[r],
          );
        return out;
      }),
    );
  } finally {
    for (const guard of guards) guard.dispose();
  }
}

/** Waits for every promise (none left running behind a failure), then fails with the first failure. */
async function settled<T>(promises: readonly Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((result) => result.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return results.map((result) => (result as PromiseFulfilledResult<T>).value);
}

/** Decodes one context's members in one batch (node-llama-cpp's dispatch: its thread allocation) and advances their bookkeeping. */
async function decodeGroup(
  context: ContextInternals,
  members: readonly number[],
  sequences: readonly SequenceInternals[],
  planned: readonly Planned[],
  logitIndexes: Uint32Array[],
): Promise<void> {
  const native = context._ctx;
  native.initBatch(members.reduce((sum, i) => sum + planned[i].tokens.length, 0));
  for (const i of members)
    logitIndexes[i] = native.addToBatch(
      sequences[i]._sequenceId,
      sequences[i]._nextTokenIndex,
      planned[i].tokens,
      Uint32Array.from(planned[i].reads),
    );
  context._reserveThreads();
  try {
    const allocation = await context._threadSplitterConsumer?.getAllocationToConsume();
    try {
      if (allocation) native.setThreads(allocation[0]);
      await native.decodeBatch();
    } finally {
      allocation?.[1].dispose();
    }
  } finally {
    context._scheduleToFreeReservedThreads();
  }
  for (const i of members) {
    const sequence = sequences[i];
    sequence._contextTokens = sequence._contextTokens.concat(Array.from(planned[i].tokens));
    sequence._nextTokenIndex += planned[i].tokens.length;
  }
}

/** One position's output, shaped as node-llama-cpp's `controlledEvaluate` shapes it (probabilities as a ProbabilityList). */
async function read(
  native: NativeContext,
  batchLogitIndex: number,
  sampler: NativeSampler,
  asked: Asked,
): Promise<Next> {
  const [token, probabilities, confidence] = await native.sampleToken(
    batchLogitIndex,
    sampler,
    !!asked.probabilities,
    !!asked.confidence,
  );
  const next: Next = {};
  if (asked.token) next.token = (token === -1 ? null : (token ?? null)) as Next["token"];
  if (confidence != null) next.confidence = confidence;
  if (probabilities != null) next.probabilities = new ProbabilityList(probabilities);
  return next;
}
