import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Admission } from "./admission.js";
import type { StepScheduler } from "./batching/scheduler.js";

/**
 * The server's Prometheus metrics (GET /metrics, text format): requests by endpoint and status,
 * latency, queue depth, running requests, generated and evaluated tokens, generated tokens/s over
 * the last 10 s, batching counters, and the process's own (RSS, CPU, event-loop lag).
 */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<"endpoint" | "status">;
  readonly latency: Histogram<"endpoint">;
  readonly generatedTokens: Counter;
  readonly evaluatedTokens: Counter;
  /** (time, tokens) of recent generations, for the tokens/s gauge. */
  private readonly recent: { at: number; tokens: number }[] = [];

  constructor(admission: Admission, scheduler: StepScheduler) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: "tiller_" });
    this.requests = new Counter({
      name: "tiller_requests_total",
      help: "Requests answered, by endpoint and HTTP status",
      labelNames: ["endpoint", "status"],
      registers,
    });
    this.latency = new Histogram({
      name: "tiller_request_duration_seconds",
      help: "Time from request to the end of the response, by endpoint",
      labelNames: ["endpoint"],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    });
    this.generatedTokens = new Counter({
      name: "tiller_generated_tokens_total",
      help: "Tokens in the outputs returned",
      registers,
    });
    this.evaluatedTokens = new Counter({
      name: "tiller_evaluated_tokens_total",
      help: "Tokens the model evaluated for them (search, lookahead and re-evaluation included)",
      registers,
    });
    new Gauge({
      name: "tiller_queue_depth",
      help: "Requests waiting for a decoding slot",
      registers,
      collect() {
        this.set(admission.queued);
      },
    });
    new Gauge({
      name: "tiller_requests_running",
      help: "Requests decoding now",
      registers,
      collect() {
        this.set(admission.running);
      },
    });
    const metrics = this;
    new Gauge({
      name: "tiller_tokens_per_second",
      help: "Generated tokens per second over the last 10 seconds",
      registers,
      collect() {
        this.set(metrics.tokensPerSecond());
      },
    });
    new Gauge({
      name: "tiller_batch_steps_total",
      help: "Batched decoding steps (one backend call each) run by the scheduler",
      registers,
      collect() {
        this.set(scheduler.stats.steps);
      },
    });
    new Gauge({
      name: "tiller_batch_prefixes_total",
      help: "Prefixes evaluated in batched steps (divide by steps for the mean batch size)",
      registers,
      collect() {
        this.set(scheduler.stats.steppedItems);
      },
    });
  }

  /** Records one finished generation's token counts. */
  recordGeneration(generated: number, evaluated: number): void {
    this.generatedTokens.inc(generated);
    this.evaluatedTokens.inc(evaluated);
    this.recent.push({ at: performance.now(), tokens: generated });
  }

  tokensPerSecond(): number {
    const since = performance.now() - 10_000;
    while (this.recent.length > 0 && this.recent[0].at < since) this.recent.shift();
    return this.recent.reduce((sum, entry) => sum + entry.tokens, 0) / 10;
  }
}
