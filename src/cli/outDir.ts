/**
 * `--out DIR` folders of commands that write several result files (eval, winrate). A folder
 * that already holds files is an earlier run's results: it is refused unless the user says what
 * to do with them (`--force`: replace them; `--resume`, where the command supports it: continue).
 * The folder is created and checked for writing before any work, so a bad path fails in a second,
 * not after the computation.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { TillerError } from "../errors.js";
import { fsError } from "../util/fsErrors.js";

export interface OutDirOptions {
  force?: boolean;
  /** Only for commands that can continue an earlier run. */
  resume?: boolean;
  /** Whether the command has a --resume flag (for the refusal message). */
  resumable?: boolean;
}

export interface OutDir {
  dir: string;
  /** Entries already in the folder before this run. */
  existing: string[];
}

export function prepareOutDir(dir: string, options: OutDirOptions = {}): OutDir {
  const resolved = path.resolve(dir);
  if (options.force && options.resume)
    throw new TillerError("give --force (start over) or --resume (continue), not both", "bad-out-dir");
  let existing: string[] = [];
  try {
    const stat = fs.statSync(resolved);
    if (!stat.isDirectory()) throw new TillerError(`--out ${dir} is a file, not a folder`, "bad-out-dir", 1);
    existing = fs.readdirSync(resolved);
  } catch (error) {
    if (error instanceof TillerError) throw error;
    if ((error as NodeJS.ErrnoException).code !== "ENOENT")
      throw fsError("use output folder", dir, error, "bad-out-dir");
  }
  if (existing.length > 0 && !options.force && !options.resume) {
    const resume = options.resumable ? "--resume to continue that run, " : "";
    throw new TillerError(
      `--out ${dir} is not empty (results of an earlier run?); pass ${resume}--force to replace its results, or choose another folder`,
      "out-not-empty",
    );
  }
  try {
    fs.mkdirSync(resolved, { recursive: true });
    fs.accessSync(resolved, fs.constants.W_OK);
  } catch (error) {
    throw fsError("create output folder", dir, error, "bad-out-dir");
  }
  return { dir: resolved, existing };
}

/** Removes the named result files of an earlier run (for --force); other files are left alone. */
export function removeResults(dir: string, names: readonly string[]): void {
  for (const name of names) {
    const file = path.join(dir, name);
    try {
      fs.rmSync(file, { force: true });
    } catch (error) {
      throw fsError("remove", file, error, "bad-out-dir");
    }
  }
}
