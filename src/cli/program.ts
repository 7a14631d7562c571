/** The tiller program: every command registered on one commander Command, then run. */
import { Command } from "commander";
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

/**
 * One file per command; each registers itself. A command's module (and what it imports: the
 * decoding strategies, rewards, provenance, the plotting stack) is loaded only when that command
 * runs, so `tiller generate` does not pay for `tiller eval`'s imports. Help, an unknown command or
 * none at all load them all.
 */
const commands: Record<string, () => Promise<(program: Command) => void>> = {
  generate: async () => (await import("./commands/generate.js")).registerGenerate,
  align: async () => (await import("./commands/align.js")).registerAlign,
  eval: async () => (await import("./commands/eval.js")).registerEval,
  index: async () => (await import("./commands/index-cmd.js")).registerIndex,
  trace: async () => (await import("./commands/trace.js")).registerTrace,
  winrate: async () => (await import("./commands/winrate.js")).registerWinrate,
  serve: async () => (await import("./commands/serve.js")).registerServe,
  pairs: async () => (await import("./commands/pairs.js")).registerPairs,
  playground: async () => (await import("./commands/playground.js")).registerPlayground,
};
// The program itself takes no option with a value, so the first word is the command's name.
const named = process.argv.slice(2).find((arg) => !arg.startsWith("-"));
const wanted = named !== undefined && Object.hasOwn(commands, named) ? [named] : Object.keys(commands);
for (const register of await Promise.all(wanted.map((name) => commands[name]()))) register(program);

await runMain(program);
