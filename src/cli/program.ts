/** The tiller program: every command registered on one commander Command, then run. */
import { Command } from "commander";
import { registerAlign } from "./commands/align.js";
import { registerEval } from "./commands/eval.js";
import { registerGenerate } from "./commands/generate.js";
import { registerIndex } from "./commands/index-cmd.js";
import { registerTrace } from "./commands/trace.js";
import { registerWinrate } from "./commands/winrate.js";
import { runMain } from "./shared.js";

const program = new Command()
  .name("tiller")
  .description("Align what a language model writes while it decodes.")
  // Usage errors are one line, like tiller's own: "tiller: option … is invalid … (see --help)".
  .configureOutput({
    outputError: (message, write) =>
      write(`tiller: ${message.replace(/^error: /, "").trimEnd()} (see --help)\n`),
  })
  // A usage error exits 2 like every other bad input (commander's default is 1); help and version 0.
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2))
  .version("0.1.0");

// One file per command; each registers itself here.
registerGenerate(program);
registerAlign(program);
registerEval(program);
registerIndex(program);
registerTrace(program);
registerWinrate(program);

await runMain(program);
