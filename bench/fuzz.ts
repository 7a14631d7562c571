/**
 * `npm run fuzz [-- --seed N --cases N --budget SECONDS --jobs N]`: hostile-user fuzzing of the
 * built CLI (dist/) and library. Generated, seeded cases: malformed invocations of every command
 * (bad values, flags, specs, paths, junk model/index/task files), stdout on a full disk, valid
 * runs interrupted by SIGINT/SIGTERM, malformed library calls, and valid controls. It prints the
 * count per class and verdict, and exits non-zero on any crash (stack trace, exit status outside
 * 0/1/2/130, death by a signal), hang (no exit within the case's bound) or failed control.
 * Bounded: no new case starts after --budget seconds (default 1800; ~25 min for 340 cases on a
 * busy 2-core machine, most of it model loading).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { controlCases, interruptCase, malformedCase, stdoutCase } from "./fuzz/cliCases.js";
import { makeFixtures } from "./fuzz/fixtures.js";
import { libraryCase, libraryControls } from "./fuzz/libCases.js";
import { Rng } from "./fuzz/rng.js";
import { runCliCase, runLibraryCases } from "./fuzz/run.js";
import type { FuzzCase, FuzzResult, Verdict } from "./fuzz/types.js";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: {
    seed: { type: "string", default: "1" },
    cases: { type: "string", default: "340" },
    budget: { type: "string", default: "1800" },
    jobs: { type: "string", default: "2" },
  },
});
const seed = Number(values.seed);
const total = Number(values.cases);
const budgetMs = Number(values.budget) * 1000;
const jobs = Math.max(1, Number(values.jobs));

const model = path.resolve(repo, process.env.TILLER_TEST_MODEL ?? "../shared/models/stories260K.gguf");
for (const [what, file] of [
  ["the built CLI (run `npm run build`)", path.join(repo, "dist/cli/main.js")],
  ["the test model (set TILLER_TEST_MODEL)", model],
])
  if (!fs.existsSync(file)) throw new Error(`fuzz: ${what} not found at ${file}`);

/** The case list: controls, then a seeded mix (45% malformed CLI, 30% library, 10% stdout, 15% interrupts). */
function generate(rng: Rng, fx: Awaited<ReturnType<typeof makeFixtures>>): FuzzCase[] {
  const cases = [...controlCases(fx), ...libraryControls()];
  while (cases.length < total) {
    const roll = rng.next();
    if (roll < 0.45) cases.push(malformedCase(rng, fx));
    else if (roll < 0.75) cases.push(libraryCase(rng));
    else if (roll < 0.85) cases.push(stdoutCase(rng, fx));
    else cases.push(interruptCase(rng, fx));
  }
  return cases;
}

const started = Date.now();
const fx = await makeFixtures(repo, model);
const cases = generate(new Rng(seed), fx);
const results: FuzzResult[] = [];
const record = (result: FuzzResult) => {
  results.push(result);
  if (result.verdict !== "ok")
    process.stderr.write(
      `${result.verdict.toUpperCase()} #${result.case.id} [${result.case.cls}] ${JSON.stringify(result.case.args.length ? result.case.args : result.case.code)}\n  → ${result.detail}\n`,
    );
  if (results.length % 25 === 0)
    process.stderr.write(
      `fuzz: ${results.length}/${cases.length} cases, ${Math.round((Date.now() - started) / 1000)} s\n`,
    );
};

const overBudget = () => Date.now() - started > budgetMs;
const cli = cases.filter((c) => c.kind === "cli");
const lib = cases.filter((c) => c.kind === "lib");
let next = 0;
const worker = async () => {
  while (next < cli.length && !overBudget()) record(await runCliCase(cli[next++], fx));
};
// The library runner is one more process beside the CLI workers.
await Promise.all([...Array.from({ length: jobs }, worker), runLibraryCases(lib, fx, repo, record)]);

const verdicts: Verdict[] = ["ok", "crash", "hang", "control-failed"];
const classes = [...new Set(results.map((r) => r.case.cls))].sort();
const row = (cells: (string | number)[]) => cells.map((c, i) => String(c).padEnd(i === 0 ? 22 : 14)).join("");
const lines = [
  `fuzz: seed ${seed}, ${results.length} of ${cases.length} cases in ${Math.round((Date.now() - started) / 1000)} s${overBudget() ? " (budget reached)" : ""}`,
  row(["class", "cases", ...verdicts]),
  ...classes.map((cls) => {
    const mine = results.filter((r) => r.case.cls === cls);
    return row([cls, mine.length, ...verdicts.map((v) => mine.filter((r) => r.verdict === v).length)]);
  }),
  row(["total", results.length, ...verdicts.map((v) => results.filter((r) => r.verdict === v).length)]),
];
// Latency of aborts (exit 130); a run the signal found already finished completes and exits 0.
const aborted = results.filter((r) => r.abortMs !== undefined && r.status === 130);
const completedAnyway = results.filter((r) => r.abortMs !== undefined && r.status === 0).length;
if (aborted.length) {
  const ms = aborted.map((r) => r.abortMs as number).sort((a, b) => a - b);
  lines.push(
    `interrupts: ${aborted.length} runs aborted (exit 130) ${ms[0]}–${ms[ms.length - 1]} ms after the signal (median ${ms[ms.length >> 1]} ms, ${ms.filter((v) => v <= 1000).length} within 1 s); ${completedAnyway} had finished their work and exited 0`,
  );
}
process.stdout.write(`${lines.join("\n")}\n`);
fs.rmSync(fx.dir, { recursive: true, force: true });
const bad = results.filter((r) => r.verdict !== "ok").length;
const short = results.length < 300;
if (short) process.stderr.write(`fuzz: only ${results.length} cases ran (fewer than 300): raise --budget\n`);
process.exit(bad > 0 || short ? 1 : 0);
