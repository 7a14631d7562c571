import { createHash } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { rolloutText } from "../decoding/rolloutText.js";
import { streamSeed } from "../decoding/seeds.js";
import { TillerError } from "../errors.js";
import { promptTokens } from "../lm/prompt.js";
import { cacheDir } from "../lm/resolve.js";
import type { LanguageModel, StopReason, Token } from "../lm/types.js";
import { writeFileAtomic } from "../util/atomicWrite.js";
import { throwIfAborted } from "../util/cooperative.js";
import { modelFileHash } from "./modelHash.js";

/** One sample of the reference policy for a prompt. */
export interface ReferenceSample {
  text: string;
  /** Generated tokens, stop token excluded. */
  tokens: Token[];
  /** Its logprob under the model (full softmax, temperature 1). */
  logprob: number;
  stopReason: StopReason;
}

/** Anything that hands out m reference samples per prompt (a `ReferencePolicy`, or fixed data). */
export interface ReferenceSource {
  /** Samples per prompt. */
  readonly m: number;
  samples(prompt: string): Promise<readonly ReferenceSample[]>;
  /** Optional: sample many prompts in one batched call (stopped by `signal`). */
  prefetch?(prompts: readonly string[], signal?: AbortSignal): Promise<void>;
  /** The model the samples come from, when there is one (used to tokenize scored texts). */
  readonly model?: LanguageModel;
}

/** The reference policy's sampling settings: plain sampling, no search. */
export interface ReferenceSampling {
  temperature: number;
  topK: number;
  topP: number;
  /** Base seed; sample i of every prompt uses `streamSeed(seed, "reference", i)`. */
  seed: number;
  maxTokens: number;
  stopStrings: string[];
}

export interface ReferencePolicyOptions {
  /** Samples per prompt (m ≥ 2). */
  m: number;
  /** Most tokens per sample (default 64); `maxTokensFor` overrides it per prompt. */
  maxTokens?: number;
  maxTokensFor?: (prompt: string) => number | undefined;
  /** Sampling temperature (default 1: the model's own distribution). */
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  stopStrings?: readonly string[];
  /**
   * The model's GGUF file, hashed (SHA-256) into the cache key. Without it (and without a
   * `source.path` the model declares) the disk cache is off: samples are only kept in memory.
   */
  modelPath?: string;
  /** Cache folder (default `<cacheDir()>/reference`); `false` turns the disk cache off. */
  cacheDir?: string | false;
  /** Where warnings go (a rejected cache entry); default: one line on stderr. */
  onWarning?: (message: string) => void;
}

export interface ReferenceStats {
  /** Batched rollout calls made to sample the reference. */
  rolloutCalls: number;
  /** Prompts sampled (cache misses). */
  sampledPrompts: number;
  /** Prompts served from the disk cache. */
  diskHits: number;
  /** Cache entries rejected (corrupt, tampered or for another key) and recomputed. */
  rejected: number;
}

/** What a cache entry is keyed by. Any difference means a different entry. */
export interface ReferenceKey {
  format: typeof FORMAT;
  modelSha256: string;
  prompt: string;
  m: number;
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  maxTokens: number;
  stopStrings: string[];
}

const FORMAT = "tiller-reference/1";

interface CacheEntry {
  format: typeof FORMAT;
  keyHash: string;
  key: ReferenceKey;
  /** SHA-256 of `JSON.stringify(samples)`. */
  checksum: string;
  samples: ReferenceSample[];
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

function validateOptions(options: ReferencePolicyOptions): void {
  if (!Number.isInteger(options.m) || options.m < 2)
    throw new TillerError(
      `the reference needs m ≥ 2 samples per prompt (an integer) to calibrate against, got ${options.m}`,
      "bad-reference-m",
    );
  const maxTokens = options.maxTokens ?? 64;
  if (!Number.isInteger(maxTokens) || maxTokens < 1)
    throw new TillerError(
      `reference maxTokens must be an integer ≥ 1, got ${maxTokens}`,
      "bad-reference-options",
    );
  const temperature = options.temperature ?? 1;
  if (!(temperature > 0) || !Number.isFinite(temperature))
    throw new TillerError(
      `the reference policy samples: its temperature must be > 0, got ${temperature}`,
      "bad-reference-options",
    );
  const topP = options.topP ?? 1;
  if (!(topP > 0 && topP <= 1))
    throw new TillerError(`reference topP must be in (0, 1], got ${topP}`, "bad-reference-options");
  const topK = options.topK ?? 0;
  if (!Number.isInteger(topK) || topK < 0)
    throw new TillerError(`reference topK must be an integer ≥ 0, got ${topK}`, "bad-reference-options");
}

/**
 * The reference policy π_ref: m plain samples per prompt, drawn in one batched `rollouts` call
 * (per-request seeds) and cached on disk, so calibration is paid once per (model file, prompt,
 * sampling settings, m).
 *
 * Cache entries are JSON files named by the SHA-256 of their key, written atomically (temp file
 * + rename). Each carries its full key and a checksum of its samples; an entry that does not
 * parse, is for another key, or fails its checksum is reported through `onWarning`, recomputed
 * and overwritten — never used.
 */
export class ReferencePolicy implements ReferenceSource {
  readonly m: number;
  readonly sampling: ReferenceSampling;
  readonly stats: ReferenceStats = { rolloutCalls: 0, sampledPrompts: 0, diskHits: 0, rejected: 0 };
  private readonly memory = new Map<string, Promise<ReferenceSample[]>>();
  private modelHash: Promise<string | undefined> | undefined;
  private readonly dir: string | undefined;
  private readonly warn: (message: string) => void;
  private readonly modelPathForHash: string | undefined;

  constructor(
    readonly model: LanguageModel,
    private readonly options: ReferencePolicyOptions,
  ) {
    validateOptions(options);
    this.m = options.m;
    this.sampling = {
      temperature: options.temperature ?? 1,
      topK: options.topK ?? 0,
      topP: options.topP ?? 1,
      seed: options.seed ?? 0,
      maxTokens: options.maxTokens ?? 64,
      stopStrings: [...(options.stopStrings ?? [])],
    };
    const path = options.modelPath ?? model.source?.path;
    this.dir =
      options.cacheDir === false || typeof path !== "string"
        ? undefined
        : (options.cacheDir ?? join(cacheDir(), "reference"));
    this.modelPathForHash = typeof path === "string" ? path : undefined;
    this.warn = options.onWarning ?? ((message) => process.stderr.write(`tiller: warning: ${message}\n`));
  }

  /** Where the disk cache lives (undefined: memory only). */
  get cacheFolder(): string | undefined {
    return this.dir;
  }

  maxTokensFor(prompt: string): number {
    return this.options.maxTokensFor?.(prompt) ?? this.sampling.maxTokens;
  }

  /** The cache key of a prompt's entry (undefined when the disk cache is off). */
  async keyOf(prompt: string): Promise<ReferenceKey | undefined> {
    const modelSha256 = await this.hash();
    if (!modelSha256) return undefined;
    const { temperature, topK, topP, seed, stopStrings } = this.sampling;
    return {
      format: FORMAT,
      modelSha256,
      prompt,
      m: this.m,
      temperature,
      topK,
      topP,
      seed,
      maxTokens: this.maxTokensFor(prompt),
      stopStrings,
    };
  }

  /** The cache file of a prompt (undefined when the disk cache is off). */
  async cacheFileOf(prompt: string): Promise<string | undefined> {
    const key = await this.keyOf(prompt);
    return key && this.dir ? join(this.dir, `${sha256(JSON.stringify(key))}.json`) : undefined;
  }

  private hash(): Promise<string | undefined> {
    this.modelHash ??=
      this.dir && this.modelPathForHash ? modelFileHash(this.modelPathForHash) : Promise.resolve(undefined);
    return this.modelHash;
  }

  async samples(prompt: string): Promise<readonly ReferenceSample[]> {
    await this.prefetch([prompt]);
    return this.memory.get(prompt) as Promise<ReferenceSample[]>;
  }

  /** Makes sure every prompt has its samples: disk hits are read, all misses sampled in one call. */
  async prefetch(prompts: readonly string[], signal?: AbortSignal): Promise<void> {
    const fresh = [...new Set(prompts)].filter((prompt) => !this.memory.has(prompt));
    if (fresh.length === 0) {
      await Promise.all(prompts.map((prompt) => this.memory.get(prompt)));
      return;
    }
    const batch = this.load(fresh, signal);
    for (const [i, prompt] of fresh.entries())
      this.memory.set(
        prompt,
        batch.then((all) => all[i]),
      );
    // A failed batch must not poison the memo: the next call tries again.
    batch.catch(() => {
      for (const prompt of fresh) this.memory.delete(prompt);
    });
    await Promise.all(prompts.map((prompt) => this.memory.get(prompt)));
  }

  private async load(prompts: readonly string[], signal?: AbortSignal): Promise<ReferenceSample[][]> {
    const results: (ReferenceSample[] | undefined)[] = await Promise.all(
      prompts.map((prompt) => this.readEntry(prompt)),
    );
    const missing = prompts.map((_, i) => i).filter((i) => results[i] === undefined);
    if (missing.length > 0) {
      const sampled = await this.sample(
        missing.map((i) => prompts[i]),
        signal,
      );
      await Promise.all(
        missing.map(async (index, j) => {
          results[index] = sampled[j];
          await this.writeEntry(prompts[index], sampled[j]);
        }),
      );
    }
    return results as ReferenceSample[][];
  }

  private async sample(prompts: readonly string[], signal?: AbortSignal): Promise<ReferenceSample[][]> {
    const { model } = this;
    const { temperature, topK, topP, seed, stopStrings } = this.sampling;
    const tokens = await Promise.all(prompts.map((prompt) => promptTokens(model, prompt)));
    const requests = prompts.flatMap((prompt, p) =>
      Array.from({ length: this.m }, (_, i) => ({
        prefix: tokens[p],
        seed: streamSeed(seed, "reference", i),
        maxTokens: this.maxTokensFor(prompt),
      })),
    );
    this.stats.rolloutCalls++;
    this.stats.sampledPrompts += prompts.length;
    const rollouts = await model.rollouts(requests, {
      temperature,
      topK,
      topP,
      maxTokens: this.sampling.maxTokens,
      stopStrings,
      signal,
    });
    // An aborted batch returns partial rollouts: never cache or use them.
    throwIfAborted(signal);
    return prompts.map((_, p) =>
      rollouts.slice(p * this.m, (p + 1) * this.m).map((rollout) => {
        const {
          text,
          tokens: generated,
          logprob,
          stopReason,
        } = rolloutText(model, tokens[p], rollout, stopStrings);
        return { text, tokens: generated, logprob, stopReason };
      }),
    );
  }

  private async readEntry(prompt: string): Promise<ReferenceSample[] | undefined> {
    const file = await this.cacheFileOf(prompt);
    if (!file) return undefined;
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      return undefined; // not cached yet
    }
    const key = (await this.keyOf(prompt)) as ReferenceKey;
    const problem = checkEntry(text, key, this.m);
    if (problem) {
      this.stats.rejected++;
      this.warn(`reference cache entry ${file} rejected (${problem}); sampling the reference again`);
      return undefined;
    }
    this.stats.diskHits++;
    return (JSON.parse(text) as CacheEntry).samples;
  }

  private async writeEntry(prompt: string, samples: ReferenceSample[]): Promise<void> {
    const file = await this.cacheFileOf(prompt);
    const key = await this.keyOf(prompt);
    if (!file || !key || !this.dir) return;
    const entry: CacheEntry = {
      format: FORMAT,
      keyHash: sha256(JSON.stringify(key)),
      key,
      checksum: sha256(JSON.stringify(samples)),
      samples,
    };
    try {
      mkdirSync(this.dir, { recursive: true });
      writeFileAtomic(file, `${JSON.stringify(entry)}\n`);
    } catch (error) {
      this.warn(`cannot write the reference cache ${file}: ${(error as Error).message}`);
    }
  }
}

/** Why a cache entry cannot be used, or undefined when it is sound and for `key`. */
function checkEntry(text: string, key: ReferenceKey, m: number): string | undefined {
  let entry: CacheEntry;
  try {
    entry = JSON.parse(text);
  } catch {
    return "not valid JSON";
  }
  if (typeof entry !== "object" || entry === null) return "not an object";
  if (entry.format !== FORMAT) return `format ${JSON.stringify(entry.format)}, expected ${FORMAT}`;
  const expected = JSON.stringify(key);
  if (JSON.stringify(entry.key) !== expected || entry.keyHash !== sha256(expected))
    return "its key does not match";
  if (!Array.isArray(entry.samples)) return "no samples";
  if (entry.checksum !== sha256(JSON.stringify(entry.samples))) return "checksum mismatch";
  if (entry.samples.length !== m) return `${entry.samples.length} samples, expected ${m}`;
  const sound = entry.samples.every(
    (s) =>
      typeof s === "object" &&
      s !== null &&
      typeof s.text === "string" &&
      Array.isArray(s.tokens) &&
      s.tokens.every((t) => Number.isInteger(t)) &&
      typeof s.logprob === "number" &&
      typeof s.stopReason === "string",
  );
  return sound ? undefined : "malformed sample";
}

/** A reference policy over `model` (see `ReferencePolicy`). */
export function referencePolicy(model: LanguageModel, options: ReferencePolicyOptions): ReferencePolicy {
  return new ReferencePolicy(model, options);
}

/** A fixed reference (e.g. samples gathered elsewhere): prompt → samples, at least 2 each. */
export function fixedReference(samples: ReadonlyMap<string, readonly ReferenceSample[]>): ReferenceSource {
  const sizes = new Set([...samples.values()].map((list) => list.length));
  const m = Math.min(...sizes);
  if (!(m >= 2)) throw new TillerError("a reference needs at least 2 samples per prompt", "bad-reference-m");
  return {
    m,
    async samples(prompt: string) {
      const list = samples.get(prompt);
      if (!list)
        throw new TillerError(
          `no reference samples for the prompt ${JSON.stringify(prompt.slice(0, 60))}`,
          "no-reference",
        );
      return list;
    },
  };
}
