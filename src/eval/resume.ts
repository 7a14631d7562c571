/**
 * What `tiller eval --out DIR` leaves behind, and how `--resume` continues from it:
 * - `run.json`: the run's identity (model, strategies, cache mode, index), written first;
 * - `results.jsonl`: one line per finished (strategy, task) run, appended and flushed as each
 *   finishes (util/appendLog.ts), so an interrupted eval keeps every finished run;
 * - `summary.json`, `quality-vs-cost.svg/.png`: written (atomically) once every run is done.
 * `--resume` keeps the finished runs of the same model, strategies, cache mode and index, drops a
 * torn last line, and runs only what is missing.
 */
import * as path from "node:path";
import type { StrategySpec } from "../decoding/registry.js";
import { TillerError } from "../errors.js";
import { readAppendLog } from "../util/appendLog.js";
import { readInputText } from "../util/inputFiles.js";
import { type EvalRow, rowKey } from "./runEval.js";
import type { EvalTask } from "./tasks.js";

export interface EvalRunManifest {
  format: "tiller-eval-run/1";
  model: string;
  /** The model file, so another file of the same name does not continue this run. */
  modelPath: string;
  strategies: string[];
  cache: "cold" | "warm";
  index: string | null;
}

/** The files an eval writes in --out (what --force replaces). */
export const RESULT_FILES = [
  "run.json",
  "results.jsonl",
  "summary.json",
  "quality-vs-cost.svg",
  "quality-vs-cost.png",
] as const;

export interface ResumeState {
  rows: EvalRow[];
  /** Bytes of a torn last line that will be dropped. */
  tornBytes: number;
}

function isRow(value: unknown): value is EvalRow {
  const row = value as EvalRow;
  return (
    typeof row === "object" &&
    row !== null &&
    typeof row.strategy === "string" &&
    typeof row.taskId === "string" &&
    typeof row.text === "string" &&
    typeof row.metrics === "object" &&
    row.metrics !== null
  );
}

/** The finished runs in `dir` that belong to a run like `manifest` (none when `dir` has no run yet). */
export function loadResumeState(dir: string, manifest: EvalRunManifest): ResumeState {
  const manifestFile = path.join(dir, "run.json");
  const resultsFile = path.join(dir, "results.jsonl");
  let earlier: EvalRunManifest;
  try {
    earlier = JSON.parse(readInputText(manifestFile, "eval run file"));
  } catch (error) {
    if (error instanceof TillerError && error.code === "input-not-found") {
      const log = readAppendLog(resultsFile);
      if (log.records.length > 0 || log.tornBytes > 0)
        throw new TillerError(
          `--resume: ${dir} has results.jsonl but no run.json; it was not written by this tiller eval (use --force to start over)`,
          "cannot-resume",
        );
      return { rows: [], tornBytes: 0 };
    }
    if (error instanceof TillerError) throw error;
    throw new TillerError(`--resume: ${manifestFile} is not valid JSON`, "cannot-resume");
  }
  for (const key of ["format", "model", "modelPath", "strategies", "cache", "index"] as const) {
    if (JSON.stringify(earlier?.[key]) !== JSON.stringify(manifest[key]))
      throw new TillerError(
        `--resume: ${dir} holds a run with a different ${key} (${JSON.stringify(earlier?.[key])}, now ${JSON.stringify(manifest[key])}); use the same settings, or --force to start over`,
        "cannot-resume",
      );
  }
  const log = readAppendLog<unknown>(resultsFile);
  const rows = log.records.filter(isRow);
  if (rows.length !== log.records.length)
    throw new TillerError(`--resume: ${resultsFile} holds lines that are not eval results`, "cannot-resume");
  return { rows, tornBytes: log.tornBytes };
}

/** The earlier rows that still count: their strategy and task (same prompt) are in this run. */
export function finishedRuns(
  rows: readonly EvalRow[],
  specs: readonly StrategySpec[],
  tasks: readonly EvalTask[],
): EvalRow[] {
  const wanted = new Map(
    specs.flatMap((spec) => tasks.map((task) => [rowKey(spec.label, task.id), task.prompt] as const)),
  );
  return rows.filter((row) => wanted.get(rowKey(row.strategy, row.taskId)) === row.prompt);
}
