import { ApiError } from "./errors.js";

/**
 * Back-pressure: at most `maxConcurrent` requests decode at once and at most `maxQueue` wait for
 * a slot; a request beyond that is refused at once with 429 and a Retry-After estimated from how
 * long requests have been taking. A waiting request whose client goes away leaves the queue.
 */
export class Admission {
  private active = 0;
  private readonly waiting: Waiter[] = [];
  /** Exponential moving average of a request's decode time, in ms (for Retry-After). */
  private averageMs = 1000;
  private closed = false;

  constructor(
    readonly maxConcurrent: number,
    readonly maxQueue: number,
  ) {}

  get running(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Stops admitting: waiting and new requests get 503. */
  close(): void {
    this.closed = true;
    for (const waiter of this.waiting.splice(0)) waiter.reject(shuttingDown());
  }

  /** Waits for a decoding slot; resolves to the function that gives it back (call it once). */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.closed) return Promise.reject(shuttingDown());
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.active < this.maxConcurrent && this.waiting.length === 0) return Promise.resolve(this.grant());
    if (this.waiting.length >= this.maxQueue) {
      const seconds = this.retryAfterSeconds();
      return Promise.reject(
        new ApiError(
          429,
          `the server is busy: ${this.active} requests decoding and ${this.waiting.length} queued (--max-concurrent ${this.maxConcurrent}, --max-queue ${this.maxQueue}); retry in ${seconds} s`,
          "queue_full",
          null,
          { "retry-after": String(seconds) },
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve(this.grant());
        },
        reject,
      };
      const onAbort = () => {
        const at = this.waiting.indexOf(waiter);
        if (at >= 0) this.waiting.splice(at, 1);
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  private grant(): () => void {
    this.active++;
    const started = performance.now();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
      this.averageMs = 0.8 * this.averageMs + 0.2 * (performance.now() - started);
      const next = this.waiting.shift();
      next?.resolve();
    };
  }

  /** Seconds until a slot is likely free for a new request: the queue ahead drained at the current pace. */
  private retryAfterSeconds(): number {
    const rounds = Math.ceil((this.waiting.length + 1) / this.maxConcurrent);
    return Math.max(1, Math.ceil((rounds * this.averageMs) / 1000));
  }
}

interface Waiter {
  resolve: () => void;
  reject: (error: unknown) => void;
}

function shuttingDown(): ApiError {
  return new ApiError(503, "the server is shutting down", "shutting_down");
}
