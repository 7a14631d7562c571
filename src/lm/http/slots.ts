import type { Token } from "../types.js";

/** Length of the longest common prefix of two token arrays. */
export function sharedPrefix(a: readonly Token[], b: readonly Token[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** A slot held by one request; `release` records what the slot's cache holds afterwards. */
export interface SlotLease {
  slot: number;
  release(holds: readonly Token[] | undefined): void;
}

interface Waiter {
  prefix: readonly Token[];
  grant: (lease: SlotLease) => void;
  reject: (reason: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/**
 * Pins requests to llama-server slots (`id_slot`). Each slot's KV cache holds the tokens of the last
 * request it served, and llama-server reuses the longest common prefix (`cache_prompt`), so a
 * request goes to the free slot whose cache shares the most tokens with its prefix — a search's
 * next step lands where its parent prefix is. At most one request per slot runs; the rest queue
 * here (not in the server), so each can still pick the best slot when one frees.
 */
export class SlotScheduler {
  private readonly holds: (readonly Token[])[];
  private readonly busy: boolean[];
  /** When each slot was last released: ties go to the least recently used slot. */
  private readonly lastUsed: number[];
  private readonly waiters: Waiter[] = [];
  private clock = 0;

  constructor(readonly size: number) {
    this.holds = Array.from({ length: size }, () => []);
    this.busy = new Array(size).fill(false);
    this.lastUsed = new Array(size).fill(0);
  }

  /** Waits for a free slot, picking the one whose cache best matches `prefix`. */
  acquire(prefix: readonly Token[], signal?: AbortSignal): Promise<SlotLease> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const free = this.bestFree(prefix);
    if (free !== undefined) return Promise.resolve(this.lease(free));
    return new Promise((grant, reject) => {
      const waiter: Waiter = { prefix, grant, reject, signal };
      if (signal) {
        waiter.onAbort = () => {
          const index = this.waiters.indexOf(waiter);
          if (index >= 0) this.waiters.splice(index, 1);
          reject(signal.reason);
        };
        signal.addEventListener("abort", waiter.onAbort, { once: true });
      }
      this.waiters.push(waiter);
    });
  }

  private lease(slot: number): SlotLease {
    this.busy[slot] = true;
    let released = false;
    return {
      slot,
      release: (holds) => {
        if (released) return;
        released = true;
        // Unknown contents (a failed request): assume nothing useful is cached there.
        this.holds[slot] = holds ?? [];
        this.busy[slot] = false;
        this.lastUsed[slot] = ++this.clock;
        this.handOver(slot);
      },
    };
  }

  /** Gives a freed slot to the first waiter. */
  private handOver(slot: number): void {
    const waiter = this.waiters.shift();
    if (!waiter) return;
    if (waiter.signal && waiter.onAbort) waiter.signal.removeEventListener("abort", waiter.onAbort);
    // The waiter may match another free slot better (several can free at once).
    waiter.grant(this.lease(this.bestFree(waiter.prefix) ?? slot));
  }

  private bestFree(prefix: readonly Token[]): number | undefined {
    let best: number | undefined;
    let bestShared = -1;
    for (let slot = 0; slot < this.size; slot++) {
      if (this.busy[slot]) continue;
      const shared = sharedPrefix(prefix, this.holds[slot]);
      if (
        shared > bestShared ||
        (shared === bestShared && best !== undefined && this.lastUsed[slot] < this.lastUsed[best])
      ) {
        best = slot;
        bestShared = shared;
      }
    }
    return best;
  }
}
