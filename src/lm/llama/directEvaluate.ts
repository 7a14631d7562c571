import type {
  ControlledEvaluateIndexOutput,
  ControlledEvaluateInputItem,
  LlamaContextSequence,
} from "node-llama-cpp";
import { ProbabilityList } from "./probabilityList.js";
import type { NativeSampler, SamplerPool } from "./samplerPool.js";

type Next = NonNullable<ControlledEvaluateIndexOutput["next"]>;
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
}

function plan(input: readonly ControlledEvaluateInputItem[]): Planned {
  const tokens = new Uint32Array(input.length);
  const reads: number[] = [];
  const asked: Asked[] = [];
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
    }
  });
  return { tokens, reads, asked };
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
 * Undefined, with nothing done, where node-llama-cpp's path is needed: a GPU build (its decode
 * guards), a context's share of the wave over its batch size, a sequence without room for its
 * input (node-llama-cpp then shifts the context).
 */
export async function evaluateDirect(
  sequences: readonly LlamaContextSequence[],
  inputs: readonly (readonly ControlledEvaluateInputItem[])[],
  samplers: SamplerPool,
): Promise<(Next | undefined)[][] | undefined> {
  const internals = sequences as unknown as readonly SequenceInternals[];
  const planned = inputs.map(plan);
  const groups = new Map<ContextInternals, number[]>();
  internals.forEach((sequence, i) => {
    if (planned[i].tokens.length === 0) return;
    groups.set(sequence._context, [...(groups.get(sequence._context) ?? []), i]);
  });
  if (!internals.every(driveable)) return undefined;
  for (const [context, members] of groups) {
    if (context._llama.gpu !== false) return undefined;
    if (members.reduce((sum, i) => sum + planned[i].tokens.length, 0) > context.batchSize) return undefined;
    // node-llama-cpp keeps one cell free (its `freeSpace`).
    if (
      members.some((i) => internals[i]._nextTokenIndex + planned[i].tokens.length > context.contextSize - 1)
    )
      return undefined;
  }
  const logitIndexes: Uint32Array[] = new Array(inputs.length);
  await Promise.all(
    [...groups].map(([context, members]) => decodeGroup(context, members, internals, planned, logitIndexes)),
  );
  let reader = 0;
  // Every read of the wave in flight at once, each with its own sampler.
  return Promise.all(
    internals.map(async (sequence, i) => {
      const out: (Next | undefined)[] = new Array(planned[i].tokens.length);
      const reads = planned[i].reads.map(async (position, r) => {
        const sampler = samplers.get(reader++);
        out[position] = await read(sequence._context._ctx, logitIndexes[i][r], sampler, planned[i].asked[r]);
      });
      await Promise.all(reads);
      return out;
    }),
  );
}

/** Decodes one context's members in one batch (node-llama-cpp's dispatch: threads, disposal guard) and advances their bookkeeping. */
async function decodeGroup(
  context: ContextInternals,
  members: readonly number[],
  sequences: readonly SequenceInternals[],
  planned: readonly Planned[],
  logitIndexes: Uint32Array[],
): Promise<void> {
  const native = context._ctx;
  const guard = context._backendContextDisposeGuard.createPreventDisposalHandle();
  try {
    native.initBatch(members.reduce((sum, i) => sum + planned[i].tokens.length, 0));
    for (const i of members)
      logitIndexes[i] = native.addToBatch(
        sequences[i]._sequenceId,
        sequences[i]._nextTokenIndex,
        planned[i].tokens,
        Uint32Array.from(planned[i].reads),
      );
    context._reserveThreads();
    const allocation = await context._threadSplitterConsumer?.getAllocationToConsume();
    try {
      if (allocation) native.setThreads(allocation[0]);
      await native.decodeBatch();
    } finally {
      allocation?.[1].dispose();
      context._scheduleToFreeReservedThreads();
    }
  } finally {
    guard.dispose();
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
  if (probabilities != null)
    next.probabilities = new ProbabilityList(probabilities) as unknown as Next["probabilities"];
  return next;
}
