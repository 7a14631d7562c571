// Runs library fuzz cases in one process: `node library-runner.mjs <repo> <cases.json> <fixtures.json>`.
// Prints one JSON line per case: {"start": id} before it, {"id", "outcome", "detail"} after it.
// outcome: "resolved" | "tiller" (a TillerError, with its code) | "error" (anything else: a crash).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [repo, casesFile, fixturesFile] = process.argv.slice(2);
const load = (p) => import(pathToFileURL(join(repo, "dist", p)).href);
const lib = await load("index.js");
const util = {
  ...(await load("util/atomicWrite.js")),
  ...(await load("util/appendLog.js")),
  ...(await load("util/inputFiles.js")),
};
const fx = JSON.parse(readFileSync(fixturesFile, "utf8"));
const model = await lib.loadModel(fx.model, { gpu: false, threads: 1 });
const AsyncFunction = (async () => {}).constructor;
const say = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);

for (const c of JSON.parse(readFileSync(casesFile, "utf8"))) {
  say({ start: c.id });
  let timer;
  try {
    const body = new AsyncFunction("lib", "util", "model", "fx", c.code);
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(Object.assign(new Error("no result within the bound"), { hang: true })),
        c.timeoutMs,
      );
    });
    await Promise.race([body(lib, util, model, fx), timeout]);
    say({ id: c.id, outcome: "resolved", detail: "" });
  } catch (error) {
    if (error?.hang) say({ id: c.id, outcome: "hang", detail: error.message });
    else if (lib.isTillerError(error))
      say({ id: c.id, outcome: "tiller", detail: `${error.code}: ${error.message.slice(0, 160)}` });
    else say({ id: c.id, outcome: "error", detail: String(error?.stack ?? error).slice(0, 600) });
  } finally {
    clearTimeout(timer);
  }
}
await model.dispose();
