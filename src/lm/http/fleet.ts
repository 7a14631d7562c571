import { TillerError } from "../../errors.js";
import type { Token } from "../types.js";
import { type Dialect, emptyRequestStats, type RequestStats } from "./dialect.js";
import { backoffDelay, DEFAULT_RETRY, isRetryable, type RetryPolicy, sleep } from "./retry.js";
import { sharedPrefix } from "./slots.js";
import type { EndpointError } from "./transport.js";

export interface FleetOptions {
  /** Retries of a failed request (on another endpoint when one is healthy). Defaults to 4 tries, 100 ms doubling to 2 s. */
  retry?: Partial<RetryPolicy>;
  /** Failures in a row that take an endpoint out (a refused connection takes it out at once). Defaults to 3. */
  failuresBeforeOut?: number;
  /** How often an endpoint taken out is probed (GET /health) to bring it back. Defaults to 1 000 ms. */
  probeIntervalMs?: number;
  /**
   * Share of a prefix's tokens an endpoint must have served before for the prefix to go back to
   * it (its prompt cache holds them). Defaults to 0.5.
   */
  affinityMinShare?: number;
}

/** One server of the fleet and what the fleet knows about it. */
export class FleetMember {
  readonly stats: RequestStats = emptyRequestStats();
  healthy = true;
  failures = 0;
  /** Requests sent and not yet answered. */
  inFlight = 0;
  /** Estimated tokens of work sent and not yet answered. */
  work = 0;
  /** Recently served prefixes (newest last): where this member's caches are warm. */
  private readonly served: (readonly Token[])[] = [];
  private probe: NodeJS.Timeout | undefined;

  constructor(
    readonly url: string,
    readonly dialect: Dialect,
  ) {}

  /** Longest prefix of `prefix` this member has served recently. */
  affinity(prefix: readonly Token[]): number {
    let best = 0;
    for (const held of this.served) best = Math.max(best, sharedPrefix(prefix, held));
    return best;
  }

  remember(tokens: readonly Token[]): void {
    if (tokens.length === 0) return;
    this.served.push(tokens);
    if (this.served.length > 64) this.served.shift();
  }

  /** Out of rotation until GET /health answers again. */
  takeOut(intervalMs: number): void {
    this.healthy = false;
    if (this.probe) return;
    this.probe = setInterval(async () => {
      if (!(await this.dialect.healthy())) return;
      this.healthy = true;
      this.failures = 0;
      this.stopProbing();
    }, intervalMs);
    this.probe.unref();
  }

  stopProbing(): void {
    clearInterval(this.probe);
    this.probe = undefined;
  }
}

/** One unit of routed work: a request (or a group of samples) from one prefix. */
export interface FleetJob<T> {
  /** The tokens the server will be asked to read (routing by prefix affinity). */
  prefix: readonly Token[];
  /** Estimated tokens of work (generated or scored): routing by least outstanding work. */
  work: number;
  /** Sends the job to `member`; may be called again (another member) after a retryable failure. */
  run(member: FleetMember): Promise<T>;
  /** What the member's cache holds after the job (defaults to `prefix`). */
  holds?(result: T): readonly Token[];
}

/**
 * Several servers acting as one model. A prefix that extends one an endpoint served recently
 * goes back there while it is healthy and not saturated (its prompt cache holds it), so one
 * search's calls stay together; other prefixes go to the endpoint with the least outstanding
 * work, so independent tasks spread. A retryable failure (connection refused or reset, 5xx, 503,
 * timeout) is tried again — at once on another healthy endpoint, else after a backoff; an
 * endpoint that keeps failing is taken out and probed back in.
 */
export class Fleet {
  private readonly retry: RetryPolicy;
  private readonly failuresBeforeOut: number;
  private readonly probeIntervalMs: number;
  private readonly affinityMinShare: number;
  /** Rotates the tie-break so equal endpoints take turns. */
  private turn = 0;
  retries = 0;

  constructor(
    readonly members: readonly FleetMember[],
    options: FleetOptions = {},
  ) {
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.failuresBeforeOut = options.failuresBeforeOut ?? 3;
    this.probeIntervalMs = options.probeIntervalMs ?? 1_000;
    this.affinityMinShare = options.affinityMinShare ?? 0.5;
  }

  async run<T>(job: FleetJob<T>, signal?: AbortSignal): Promise<T> {
    let lastError: EndpointError | undefined;
    const failed = new Set<FleetMember>();
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      const member = this.pick(job, failed);
      member.inFlight++;
      member.work += job.work;
      try {
        const result = await job.run(member);
        member.failures = 0;
        member.remember(job.holds ? job.holds(result) : job.prefix);
        return result;
      } catch (error) {
        if (signal?.aborted || !isRetryable(error)) throw error;
        lastError = error as EndpointError;
        this.failed(member, lastError);
        failed.add(member);
        if (attempt >= this.retry.attempts) throw this.exhausted(lastError, attempt);
        this.retries++;
        // Another healthy endpoint takes the job at once; the same one only after a backoff.
        if (!this.members.some((m) => m.healthy && !failed.has(m)))
          await sleep(backoffDelay(attempt, this.retry), signal);
      } finally {
        member.inFlight--;
        member.work -= job.work;
      }
    }
  }

  /** The member for `job`: affinity first, unless that member is saturated and another carries less. */
  private pick(job: FleetJob<unknown>, failed: ReadonlySet<FleetMember>): FleetMember {
    let candidates = this.members.filter((m) => m.healthy && !failed.has(m));
    if (candidates.length === 0) candidates = this.members.filter((m) => m.healthy);
    // All out: try the one that failed least (probing may lag behind a recovery).
    if (candidates.length === 0)
      candidates = [...this.members].sort((a, b) => a.failures - b.failures).slice(0, 1);
    if (candidates.length === 1) return candidates[0];
    const saturated = (m: FleetMember) => m.inFlight >= m.dialect.info.capacity;
    const need = Math.max(1, Math.ceil(job.prefix.length * this.affinityMinShare));
    let home: FleetMember | undefined;
    let homeShared = 0;
    for (const member of candidates) {
      const shared = member.affinity(job.prefix);
      if (shared >= need && shared > homeShared) {
        home = member;
        homeShared = shared;
      }
    }
    // A saturated home keeps the job only while no other endpoint carries less.
    if (home && (!saturated(home) || candidates.every((m) => load(m) >= load(home)))) return home;
    const start = this.turn++ % candidates.length;
    const rotated = [...candidates.slice(start), ...candidates.slice(0, start)];
    return rotated.reduce((best, m) => (load(m) < load(best) ? m : best));
  }

  private failed(member: FleetMember, error: EndpointError): void {
    member.failures++;
    if (error.down || member.failures >= this.failuresBeforeOut) member.takeOut(this.probeIntervalMs);
  }

  private exhausted(error: EndpointError, attempts: number): TillerError {
    const where =
      this.members.length > 1
        ? `no endpoint of the fleet (${this.members.map((m) => m.url).join(", ")}) answered`
        : "";
    const message = `${where ? `${where}: ` : ""}${error.message} (after ${attempts} tries)`;
    return new TillerError(message, error.code);
  }

  dispose(): void {
    for (const member of this.members) member.stopProbing();
  }
}

/** Outstanding work relative to what the member serves at once. */
function load(member: FleetMember): number {
  return (member.work + member.inFlight) / member.dialect.info.capacity;
}
