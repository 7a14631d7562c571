/**
 * Suffix array construction by induced sorting (SA-IS; Nong, Zhang & Chan 2009), on typed arrays.
 *
 * Linear time. Memory besides the input text and the output suffix array (`Int32Array`, one
 * entry per symbol): one type bit per symbol per recursion level (n/8 bytes at the top level) and
 * one bucket array per level (alphabet + 1 ints at the top level; at most n/2 ints in the first
 * recursion, where the alphabet is the number of distinct LMS substrings). The reduced problem of
 * each recursion level lives inside the suffix array itself. Peak for the top level with a u16
 * text: 2n (text) + 4n (SA) + at most 2n (level-1 buckets) + n/8 bytes ≈ 8.1 bytes/symbol.
 */

import { runSteps, runStepsCooperatively, type Steps } from "../util/cooperative.js";

/** A text the algorithm reads: symbol values in `[0, K]`. */
export type SymbolArray = Uint8Array | Uint16Array | Uint32Array | Int32Array;

/**
 * The passes are generators that yield every {@link STEP} iterations, so the same code runs
 * straight through ({@link suffixArray}) or gives way to the event loop and stops on an abort
 * ({@link suffixArrayAsync}: a large corpus takes seconds). `(i & MASK) === 0` costs next to nothing.
 */
const STEP = 1 << 16;
const MASK = STEP - 1;

function* getBuckets(s: SymbolArray, bkt: Int32Array, n: number, K: number, end: boolean): Steps {
  bkt.fill(0, 0, K + 1);
  for (let i = 0; i < n; i++) {
    bkt[s[i]]++;
    if ((i & MASK) === 0) yield;
  }
  let sum = 0;
  for (let i = 0; i <= K; i++) {
    sum += bkt[i];
    bkt[i] = end ? sum : sum - bkt[i];
  }
}

/**
 * Core SA-IS. `s[n - 1]` must be a unique sentinel that is strictly smaller than every other
 * symbol (value 0); all symbols lie in `[0, K]`. Writes the suffix array of `s` into `SA[0, n)`.
 */
function* saisCore(s: SymbolArray, SA: Int32Array, n: number, K: number): Steps {
  if (n === 1) {
    SA[0] = 0;
    return;
  }
  // t: 1 = S-type, 0 = L-type, packed bits.
  const t = new Uint8Array((n >>> 3) + 1);
  const tget = (i: number): number => (t[i >>> 3] >>> (i & 7)) & 1;
  const tsetS = (i: number): void => {
    t[i >>> 3] |= 1 << (i & 7);
  };
  const isLMS = (i: number): boolean => i > 0 && tget(i) === 1 && tget(i - 1) === 0;

  tsetS(n - 1); // sentinel is S
  // n-2 is L (it is larger than the sentinel): leave bit 0.
  for (let i = n - 3; i >= 0; i--) {
    const a = s[i];
    const b = s[i + 1];
    if (a < b || (a === b && tget(i + 1) === 1)) tsetS(i);
    if ((i & MASK) === 0) yield;
  }

  const bkt = new Int32Array(K + 1);

  function* induceL(): Steps {
    yield* getBuckets(s, bkt, n, K, false);
    for (let i = 0; i < n; i++) {
      const j = SA[i] - 1;
      if (j >= 0 && tget(j) === 0) SA[bkt[s[j]]++] = j;
      if ((i & MASK) === 0) yield;
    }
  }
  function* induceS(): Steps {
    yield* getBuckets(s, bkt, n, K, true);
    for (let i = n - 1; i >= 0; i--) {
      const j = SA[i] - 1;
      if (j >= 0 && tget(j) === 1) SA[--bkt[s[j]]] = j;
      if ((i & MASK) === 0) yield;
    }
  }

  // Stage 1: sort LMS substrings.
  yield* getBuckets(s, bkt, n, K, true);
  SA.fill(-1, 0, n);
  for (let i = 1; i < n; i++) {
    if (isLMS(i)) SA[--bkt[s[i]]] = i;
    if ((i & MASK) === 0) yield;
  }
  yield* induceL();
  yield* induceS();

  // Compact the sorted LMS substrings into the first n1 slots.
  let n1 = 0;
  for (let i = 0; i < n; i++) {
    if (isLMS(SA[i])) SA[n1++] = SA[i];
    if ((i & MASK) === 0) yield;
  }

  // Name the LMS substrings.
  SA.fill(-1, n1, n);
  let name = 0;
  let prev = -1;
  for (let i = 0; i < n1; i++) {
    const pos = SA[i];
    let diff = false;
    for (let d = 0; d < n; d++) {
      if (prev === -1 || s[pos + d] !== s[prev + d] || tget(pos + d) !== tget(prev + d)) {
        diff = true;
        break;
      }
      if (d > 0 && (isLMS(pos + d) || isLMS(prev + d))) break;
    }
    if (diff) {
      name++;
      prev = pos;
    }
    SA[n1 + (pos >>> 1)] = name - 1;
    if ((i & MASK) === 0) yield;
  }
  for (let i = n - 1, j = n - 1; i >= n1; i--) if (SA[i] >= 0) SA[j--] = SA[i];

  // Stage 2: solve the reduced problem (recursively when names are not unique).
  const s1 = SA.subarray(n - n1, n);
  const SA1 = SA.subarray(0, n1);
  if (name < n1) yield* saisCore(s1, SA1, n1, name - 1);
  else for (let i = 0; i < n1; i++) SA1[s1[i]] = i;

  // Stage 3: induce the full suffix array from the sorted LMS suffixes.
  yield* getBuckets(s, bkt, n, K, true);
  for (let i = 1, j = 0; i < n; i++) {
    if (isLMS(i)) s1[j++] = i;
    if ((i & MASK) === 0) yield;
  }
  for (let i = 0; i < n1; i++) SA1[i] = s1[SA1[i]];
  SA.fill(-1, n1, n);
  for (let i = n1 - 1; i >= 0; i--) {
    const j = SA[i];
    SA[i] = -1;
    SA[--bkt[s[j]]] = j;
  }
  yield* induceL();
  yield* induceS();
}

/**
 * Suffix array of `text[0, n)` whose symbols lie in `[0, alphabetSize)`. Suffixes compare
 * lexicographically, a proper prefix sorting before its extensions. Returns an `Int32Array` of
 * length n (n < 2^31 - 1).
 *
 * Works on a copy of the text shifted by one so a sentinel fits; use {@link suffixArrayInPlace}
 * to avoid that copy when the caller can lend a buffer with one spare slot.
 */
export function suffixArray(text: ArrayLike<number>, alphabetSize: number): Int32Array {
  const { buf, n } = shiftedCopy(text, alphabetSize);
  return suffixArrayOfShifted(buf, n, alphabetSize);
}

/**
 * {@link suffixArray} that gives way to the event loop every few milliseconds and rejects with the
 * abort error once `signal` fires (a signal handler can stop a long construction).
 */
export async function suffixArrayAsync(
  text: ArrayLike<number>,
  alphabetSize: number,
  signal?: AbortSignal,
): Promise<Int32Array> {
  const { buf, n } = shiftedCopy(text, alphabetSize);
  return suffixArrayOfShiftedAsync(buf, n, alphabetSize, signal);
}

function shiftedCopy(text: ArrayLike<number>, alphabetSize: number): { buf: SymbolArray; n: number } {
  const n = text.length;
  const shifted = alphabetSize + 1 <= 0xffff ? new Uint16Array(n + 1) : new Uint32Array(n + 1);
  for (let i = 0; i < n; i++) {
    const c = text[i];
    if (!(c >= 0 && c < alphabetSize))
      throw new RangeError(`symbol ${c} at ${i} outside [0, ${alphabetSize})`);
    shifted[i] = c + 1;
  }
  return { buf: shifted, n };
}

/**
 * Like {@link suffixArray}, for a buffer the caller has already shifted: `buf[i] = symbol + 1` for
 * `i < n`, and `buf.length ≥ n + 1` (`buf[n]` is overwritten with the sentinel 0). Symbols + 1 lie
 * in `[1, alphabetSize]`.
 */
export function suffixArrayOfShifted(buf: SymbolArray, n: number, alphabetSize: number): Int32Array {
  const SA = new Int32Array(n + 1);
  runSteps(shiftedSteps(buf, n, alphabetSize, SA));
  // SA[0] is the sentinel suffix.
  return SA.subarray(1);
}

/** {@link suffixArrayOfShifted} that yields to the event loop and stops when `signal` fires. */
export async function suffixArrayOfShiftedAsync(
  buf: SymbolArray,
  n: number,
  alphabetSize: number,
  signal?: AbortSignal,
): Promise<Int32Array> {
  const SA = new Int32Array(n + 1);
  await runStepsCooperatively(shiftedSteps(buf, n, alphabetSize, SA), signal);
  return SA.subarray(1);
}

function shiftedSteps(buf: SymbolArray, n: number, alphabetSize: number, SA: Int32Array): Steps {
  if (n + 1 > 0x7fffffff) throw new RangeError("text too long for a 32-bit suffix array");
  if (buf.length < n + 1) throw new RangeError("buffer needs one spare slot for the sentinel");
  buf[n] = 0;
  return saisCore(buf.length === n + 1 ? buf : buf.subarray(0, n + 1), SA, n + 1, alphabetSize);
}
