#!/usr/bin/env node
import { Command } from "commander";
import { registerEval } from "./commands/eval.js";
import { registerGenerate } from "./commands/generate.js";
import { registerIndex } from "./commands/index-cmd.js";
import { registerTrace } from "./commands/trace.js";
import { runMain } from "./shared.js";

const program = new Command()
  .name("tiller")
  .description("Align what a language model writes while it decodes.")
  .showHelpAfterError()
  .version("0.1.0");

// One file per command; each registers itself here.
registerGenerate(program);
registerEval(program);
registerIndex(program);
registerTrace(program);

await runMain(program);
