import * as path from "node:path";
import type { Command } from "commander";
import pc from "picocolors";
import { TillerError } from "../../errors.js";
import { excerpt, highlight, tokenOffsets } from "../../provenance/render.js";
import { SHIELD_DEFAULTS, traceShield } from "../../provenance/shield.js";
import { readInputStream, readInputText } from "../../util/inputFiles.js";
import {
  action,
  addModelOptions,
  finiteNumber,
  type ModelCliOptions,
  nonNegativeInt,
  positiveInt,
} from "../shared.js";
import { modelForIndex, openIndex } from "./index-cmd.js";

interface TraceCliOptions extends ModelCliOptions {
  index: string;
  text?: string;
  file?: string;
  tau: number;
  minLen: number;
  maxCount: number;
  verify: boolean;
  json?: boolean;
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY)
    throw new TillerError("give --text, --file, or pipe the text on stdin", "no-input");
  return readInputStream(process.stdin, "the text on stdin");
}

export function registerTrace(program: Command): void {
  const command = program
    .command("trace")
    .description(
      "TraceShield: find a text's rare verbatim corpus spans, their BCI, and refuse when max BCI > τ",
    );
  addModelOptions(command)
    .requiredOption("-i, --index <dir>", "trace index directory (tiller index build)")
    .option("-t, --text <text>", "the text to check")
    .option("-f, --file <path>", "read the text from a file")
    .option("--tau <bci>", "refuse when the max span BCI exceeds this", finiteNumber, SHIELD_DEFAULTS.tau)
    .option("--min-len <n>", "shortest span considered (tokens)", positiveInt, SHIELD_DEFAULTS.minLen)
    .option(
      "--max-count <n>",
      "consider spans occurring at most this often",
      nonNegativeInt,
      SHIELD_DEFAULTS.maxCount,
    )
    .option("--no-verify", "skip checksum verification when opening the index")
    .option("--json", "print one JSON object")
    .action(
      action(async (options: TraceCliOptions) => {
        if (options.text !== undefined && options.file !== undefined)
          throw new TillerError("give only one of --text and --file", "bad-input");
        let text: string;
        if (options.text !== undefined) text = options.text;
        else if (options.file !== undefined) text = readInputText(options.file, "text file");
        else text = await readStdin();
        // Nothing to check is not a PASS: an empty pipe is almost always an upstream failure.
        if (text.trim() === "")
          throw new TillerError(
            `no text to check: ${options.text !== undefined ? "--text is empty" : options.file !== undefined ? `${options.file} is empty` : "stdin was empty"}`,
            "no-input",
          );
        const index = openIndex(options.index, options.verify);
        const model = await modelForIndex(index, options);
        try {
          const v = await traceShield(index, model, text, {
            tau: options.tau,
            minLen: options.minLen,
            maxCount: options.maxCount,
          });
          const { text: shown, starts } = tokenOffsets(model, v.tokens);
          const spans = v.spans.map((s) => {
            const ex = s.examples[0] ? excerpt(index, model, s.examples[0], s.length) : undefined;
            return {
              start: s.start,
              end: s.end,
              text: shown.slice(starts[s.start], starts[s.end]),
              count: s.count,
              bci: s.bci,
              overTau: s.bci > v.tau,
              examples: s.examples,
              source: ex && {
                document: ex.document,
                file: ex.source,
                excerpt: `${ex.before}${ex.match}${ex.after}`,
              },
            };
          });
          if (options.json) {
            process.stdout.write(
              `${JSON.stringify({ verdict: v.verdict, maxBci: v.maxBci, tau: v.tau, tokens: v.tokens.length, spans })}\n`,
            );
            return;
          }
          const marked = highlight(shown, starts, v.spans, (piece, span) =>
            span.bci > v.tau ? pc.bgRed(pc.white(piece)) : pc.bgYellow(pc.black(piece)),
          );
          process.stdout.write(`${marked}\n\n`);
          spans.forEach((s, i) => {
            const flag = s.overTau ? pc.red(`BCI ${s.bci.toFixed(1)}`) : `BCI ${s.bci.toFixed(1)}`;
            process.stdout.write(
              `${pc.bold(`[${i + 1}]`)} ${JSON.stringify(s.text)} — count ${s.count}, ${flag}\n`,
            );
            if (s.source) {
              const where = `doc ${s.source.document}${s.source.file ? ` of ${path.basename(s.source.file)}` : ""}`;
              const ex = s.examples[0] ? excerpt(index, model, s.examples[0], s.end - s.start) : undefined;
              if (ex)
                process.stdout.write(
                  `    ${pc.dim(where)}: ${ex.before}${pc.underline(ex.match)}${ex.after}\n`,
                );
            }
          });
          const verdict =
            v.verdict === "refuse"
              ? pc.red(pc.bold(`REFUSE: max BCI ${v.maxBci.toFixed(1)} > τ ${v.tau}`))
              : pc.green(pc.bold(`PASS: max BCI ${v.maxBci.toFixed(1)} ≤ τ ${v.tau}`));
          process.stdout.write(
            `${spans.length ? "\n" : ""}${verdict} (${spans.length} span${spans.length === 1 ? "" : "s"})\n`,
          );
        } finally {
          await model.dispose();
        }
      }),
    );
}
