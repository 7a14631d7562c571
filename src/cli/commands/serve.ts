import { type Command, InvalidArgumentError, Option } from "commander";
import { pino } from "pino";
import { TillerError } from "../../errors.js";
import type { TraceIndex } from "../../provenance/trace-index.js";
import { loadProfiles, type Profile } from "../../server/profiles.js";
import { startServer } from "../../server/server.js";
import {
  action,
  addModelOptions,
  loadModelFromOptions,
  type ModelCliOptions,
  nonNegativeInt,
  positiveInt,
} from "../shared.js";
import { onInterrupt } from "../signals.js";
import { openIndex } from "./index-cmd.js";

interface ServeCliOptions extends ModelCliOptions {
  host: string;
  port: number;
  profiles?: string;
  apiKey?: string;
  maxConcurrent: number;
  maxQueue: number;
  sequences?: number;
  index?: string;
  bodyLimit: number;
  shutdownTimeout: number;
  referenceCache?: string | boolean;
  logLevel: string;
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);
/** llama.cpp's limit on sequences in one context (n_seq_max). */
const MAX_SEQUENCES = 256;

export function registerServe(program: Command): void {
  serveCommand(
    program,
    "serve",
    "an OpenAI-compatible HTTP server that aligns every request (see docs/server.md)",
  );
}

/**
 * `tiller serve`'s options and action under a name (`tiller playground` reuses them);
 * `onListening` runs once the server answers, with its URL and the parsed options.
 */
export function serveCommand(
  program: Command,
  name: string,
  description: string,
  onListening?: (url: string, options: Record<string, unknown>) => void | Promise<void>,
): Command {
  const command = program.command(name).description(description);
  return addModelOptions(command)
    .option("--host <host>", "interface to bind (non-loopback needs --api-key)", "127.0.0.1")
    .option("--port <port>", "port (0: any free port)", nonNegativePort, 8080)
    .option("--profiles <file>", "JSON or YAML file of named alignment settings, selected by model name")
    .option("--api-key <key>", "require 'Authorization: Bearer KEY' (default: $TILLER_API_KEY, else none)")
    .option("--max-concurrent <n>", "requests decoding at once", positiveInt, 8)
    .option("--max-queue <n>", "requests waiting for a slot before 429", nonNegativeInt, 32)
    .option(
      "--sequences <n>",
      "sequences in the model's pool = prefixes per batched step (default: max(16, --max-concurrent))",
      positiveInt,
    )
    .option("--index <dir>", "corpus index for provenance, TraceShield and /v1/provenance/*")
    .option("--body-limit <bytes>", "largest request body (413 beyond)", positiveInt, 1024 * 1024)
    .option(
      "--shutdown-timeout <ms>",
      "on SIGTERM, how long in-flight requests may finish",
      positiveInt,
      30_000,
    )
    .option(
      "--reference-cache <dir>",
      "reference-sample cache for /v1/rewards/score (default: the tiller cache)",
    )
    .option("--no-reference-cache", "keep reference samples in memory only")
    .addOption(
      new Option("--log-level <level>", "pino log level")
        .choices(["fatal", "error", "warn", "info", "debug", "trace", "silent"])
        .default("info"),
    )
    .action(
      action(async (options: ServeCliOptions) => {
        const apiKey = options.apiKey ?? process.env.TILLER_API_KEY ?? undefined;
        if (apiKey !== undefined && apiKey.trim() === "")
          throw new TillerError("--api-key (or $TILLER_API_KEY) is empty", "bad-api-key");
        if (!LOOPBACK.has(options.host) && !apiKey)
          process.stderr.write(
            `tiller: warning: serving on ${options.host} without --api-key: anyone who can reach it can use the model\n`,
          );
        const profiles: Map<string, Profile> = options.profiles ? loadProfiles(options.profiles) : new Map();
        const index: TraceIndex | undefined = options.index ? openIndex(options.index) : undefined;
        const sequences = options.sequences ?? Math.max(16, options.maxConcurrent);
        if (sequences > MAX_SEQUENCES)
          throw new TillerError(
            `${options.sequences === undefined ? `--max-concurrent ${options.maxConcurrent} needs` : "--sequences asks for"} ${sequences} sequences; llama.cpp holds at most ${MAX_SEQUENCES} per context`,
            "over-limit",
          );
        const model = await loadModelFromOptions(options, { sequences });
        const logger = pino({ level: options.logLevel, base: { service: "tiller" } });
        let server: Awaited<ReturnType<typeof startServer>>;
        try {
          await index?.checkModel(model);
          server = await startServer({
            model,
            batchCapacity: sequences,
            profiles,
            index,
            apiKey,
            maxConcurrent: options.maxConcurrent,
            maxQueue: options.maxQueue,
            bodyLimit: options.bodyLimit,
            referenceCacheDir:
              options.referenceCache === false ? false : (options.referenceCache as string | undefined),
            host: options.host,
            port: options.port,
            shutdownTimeoutMs: options.shutdownTimeout,
            logger,
          });
        } catch (error) {
          await model.dispose();
          throw listenError(error, options);
        }
        process.stderr.write(
          `tiller: serving ${model.id}${profiles.size ? ` (+${profiles.size} profiles)` : ""} on ${server.url}/v1\n`,
        );
        await onListening?.(server.url, options as unknown as Record<string, unknown>);
        await stopOnSignal(async () => {
          await server.close();
          await model.dispose();
        });
      }),
    );
}

/** SIGTERM/SIGINT: stop gracefully, exit 0; a second signal exits at once (130, see ../signals.ts). */
function stopOnSignal(stop: () => Promise<void>): Promise<void> {
  return new Promise((resolve, reject) => {
    onInterrupt((signal) => {
      process.stderr.write(`tiller: ${signal}: finishing in-flight requests, then stopping\n`);
      stop().then(resolve, reject);
    });
  });
}

function listenError(error: unknown, options: ServeCliOptions): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "EADDRINUSE")
    return new TillerError(
      `port ${options.port} on ${options.host} is in use; pick another with --port`,
      "port-in-use",
    );
  if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND")
    return new TillerError(`cannot bind ${options.host}: not an address of this machine`, "bad-host");
  if (code === "EACCES")
    return new TillerError(
      `no permission to bind port ${options.port} (ports below 1024 need privileges)`,
      "port-denied",
    );
  return error;
}

function nonNegativePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError(`expected a port 0-65535, got "${value}"`);
  return n;
}
