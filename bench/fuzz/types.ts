/** One fuzz case and how it ended. */
export interface FuzzCase {
  id: number;
  /** Reported class ("cli align", "lib rewards", "control", …). */
  cls: string;
  kind: "cli" | "lib";
  /** CLI arguments (kind "cli"). */
  args: string[];
  /** Body of an async function of (lib, util, model, fx) (kind "lib"). */
  code?: string;
  /** Text on stdin (CLI); undefined: stdin closed. */
  input?: string;
  /** Run with stdout on /dev/full. */
  stdoutToFull?: boolean;
  /** Send this signal `afterMs` after the model is loaded. */
  interrupt?: { signal: NodeJS.Signals; afterMs: number };
  /** A server: stopped with SIGTERM once it says it is serving; it must then exit 0. */
  server?: boolean;
  /** A valid case: it must succeed. */
  control: boolean;
  timeoutMs: number;
}

export type Verdict = "ok" | "crash" | "hang" | "control-failed";

export interface FuzzResult {
  case: FuzzCase;
  verdict: Verdict;
  /** Exit status or library outcome, for the log. */
  detail: string;
  ms: number;
  /** For interrupt cases: milliseconds from the signal to the exit. */
  abortMs?: number;
  /** Exit status of a CLI case (null: killed by a signal). */
  status?: number | null;
}
