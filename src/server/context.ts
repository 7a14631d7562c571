import { randomInt } from "node:crypto";
import { basename } from "node:path";
import type { Logger } from "pino";
import { TillerError } from "../errors.js";
import type { LanguageModel } from "../lm/types.js";
import type { TraceIndex } from "../provenance/trace-index.js";
import { Admission } from "./admission.js";
import { planDecode } from "./alignment.js";
import { ScheduledModel } from "./batching/scheduledModel.js";
import { StepScheduler } from "./batching/scheduler.js";
import { ApiError } from "./errors.js";
import { defaultLimits, type ServerLimits } from "./limits.js";
import { ServerMetrics } from "./metrics.js";
import type { Profile } from "./profiles.js";
import { ReferenceCache } from "./referenceCache.js";

export interface ServerOptions {
  /** The served model (the server owns the batching over it, not the model itself). */
  model: LanguageModel;
  /** The model's GGUF file (keys the reference-sample disk cache). Defaults to `model.path` if it has one. */
  modelPath?: string;
  /** Sequences in the model's pool: how many prefixes one batched step evaluates. Defaults to 16. */
  batchCapacity?: number;
  /** Named alignment settings, selected by model name. Defaults to none. */
  profiles?: ReadonlyMap<string, Profile>;
  /** Corpus index for Prov-Decode, TraceShield, /v1/provenance/*. Defaults to none. */
  index?: TraceIndex;
  /** Bearer key every endpoint but /health requires. Defaults to none (open). */
  apiKey?: string;
  /** Requests decoding at once. Defaults to 8. */
  maxConcurrent?: number;
  /** Requests waiting for a slot before 429. Defaults to 32. */
  maxQueue?: number;
  /** Largest request body in bytes (413 beyond). Defaults to 1 MiB. */
  bodyLimit?: number;
  limits?: Partial<ServerLimits>;
  /** Reference-sample cache folder for /v1/rewards/score; `false` keeps them in memory only. Defaults to the tiller cache. */
  referenceCacheDir?: string | false;
  logger: Logger;
}

/** What every route shares: the model and its scheduler, admission, profiles, index, limits, metrics. */
export class ServerContext {
  readonly model: LanguageModel;
  readonly scheduler: StepScheduler;
  readonly admission: Admission;
  readonly profiles: ReadonlyMap<string, Profile>;
  readonly index: TraceIndex | undefined;
  readonly limits: ServerLimits;
  readonly metrics: ServerMetrics;
  readonly references: ReferenceCache;
  readonly logger: Logger;
  readonly modelPath: string | undefined;
  /** Aborted when shutdown gives up waiting: every decode still running stops. */
  readonly shutdown = new AbortController();
  readonly started = Date.now();

  constructor(readonly options: ServerOptions) {
    this.model = options.model;
    this.logger = options.logger;
    this.scheduler = new StepScheduler(options.model, options.batchCapacity ?? 16);
    this.admission = new Admission(options.maxConcurrent ?? 8, options.maxQueue ?? 32);
    this.profiles = options.profiles ?? new Map();
    this.index = options.index;
    this.limits = { ...defaultLimits(options.model.contextSize), ...options.limits };
    this.metrics = new ServerMetrics(this.admission, this.scheduler);
    const path = (options.model as { path?: unknown }).path;
    this.modelPath = options.modelPath ?? (typeof path === "string" ? path : undefined);
    this.references = new ReferenceCache(this, options.referenceCacheDir);
    this.checkProfiles();
  }

  /** A profile that could never decode (bad spec, over a limit, needs a missing index) fails startup, not every request. */
  private checkProfiles(): void {
    for (const profile of this.profiles.values()) {
      if (this.modelNames().includes(profile.name))
        throw new TillerError(`profile "${profile.name}" has the name of the served model`, "bad-profiles");
      try {
        planDecode(
          profile,
          undefined,
          {},
          {
            model: this.view(),
            index: this.index,
            limits: this.limits,
            randomSeed: () => 0,
          },
        );
      } catch (error) {
        throw new TillerError(`profile "${profile.name}": ${(error as Error).message}`, "bad-profiles");
      }
    }
  }

  /** A fresh per-request view of the model (its calls batched with everyone's; its own usage). */
  view(): ScheduledModel {
    return new ScheduledModel(this.scheduler);
  }

  /** The names the served model answers to: its id, and its id without `.gguf`. */
  modelNames(): string[] {
    const id = this.model.id;
    const stem = basename(id).replace(/\.gguf$/i, "");
    return stem === id ? [id] : [id, stem];
  }

  /** The profile a model name selects (undefined for the served model itself); 404 for an unknown name. */
  resolveModel(name: string): Profile | undefined {
    if (this.modelNames().includes(name)) return undefined;
    const profile = this.profiles.get(name);
    if (profile) return profile;
    const known = [...this.modelNames().slice(0, 1), ...this.profiles.keys()];
    throw new ApiError(
      404,
      `The model \`${name}\` does not exist. Available: ${known.join(", ")}`,
      "model_not_found",
      "model",
    );
  }

  randomSeed(): number {
    return randomInt(0, 2 ** 31 - 1);
  }
}
