import { EndpointError } from "./transport.js";

/** How often and how patiently a failed request is tried again. */
export interface RetryPolicy {
  /** Tries in all, the first included. Defaults to 4. */
  attempts: number;
  /** Wait before the second try, doubled before each later one. Defaults to 100 ms. */
  baseDelayMs: number;
  /** Longest wait between two tries. Defaults to 2 000 ms. */
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 100, maxDelayMs: 2_000 };

/** Whether another try can help: connection errors, 5xx, 503 busy and timeouts can; bad requests cannot. */
export function isRetryable(error: unknown): boolean {
  return error instanceof EndpointError && error.retryable;
}

/**
 * The wait before try number `attempt + 1` (`attempt` ≥ 1): exponential backoff with "equal
 * jitter" (half fixed, half random), so clients that failed together do not retry in lockstep.
 */
export function backoffDelay(attempt: number, policy: RetryPolicy): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return ceiling / 2 + (Math.random() * ceiling) / 2;
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
