import * as fs from "node:fs";
import * as path from "node:path";
import { SingleBar } from "cli-progress";
import { type Command, InvalidArgumentError } from "commander";
import pc from "picocolors";
import { TillerError } from "../../errors.js";
import type { LanguageModel, Token } from "../../lm/types.js";
import { buildIndex } from "../../provenance/build-index.js";
import { countForms, queryForms } from "../../provenance/query-forms.js";
import { excerpt, tokenOffsets } from "../../provenance/render.js";
import { TraceIndex } from "../../provenance/trace-index.js";
import {
  action,
  addModelOptions,
  loadModelFromOptions,
  type ModelCliOptions,
  nonNegativeInt,
  positiveInt,
} from "../shared.js";
import { commandSignal, markFinished } from "../signals.js";

interface BuildCliOptions extends ModelCliOptions {
  corpus: string[];
  out: string;
  docSep: string;
  lowercase?: boolean;
}

interface QueryCliOptions extends ModelCliOptions {
  index: string;
  text?: string;
  tokens?: Token[];
  minLen: number;
  maxCount: number;
  examples: number;
  verify: boolean;
  json?: boolean;
}

function tokenList(value: string): Token[] {
  const parts = value.split(/[\s,]+/).filter(Boolean);
  const out = parts.map(Number);
  if (out.length === 0 || out.some((t) => !Number.isInteger(t) || t < 0))
    throw new InvalidArgumentError(`expected comma-separated token ids, got "${value}"`);
  return out;
}

/** Open an index (checksums verified unless `verify` is false), with a one-line message on failure. */
export function openIndex(dir: string, verify = true): TraceIndex {
  return TraceIndex.open(dir, { verify });
}

/**
 * The model for queries on `index`: --model when given, else the model path recorded at build
 * time. Checks the tokenizer matches the index's.
 */
export async function modelForIndex(index: TraceIndex, options: ModelCliOptions): Promise<LanguageModel> {
  let spec = options.model;
  if (!spec) {
    const recorded = index.header.model.spec;
    if (!recorded || !fs.existsSync(recorded))
      throw new TillerError(
        `this index was built with ${index.header.model.fileName}; pass --model <path> to tokenize queries`,
        "model-required",
      );
    spec = recorded;
  }
  const model = await loadModelFromOptions({ ...options, model: spec });
  try {
    await index.checkModel(model);
  } catch (e) {
    await model.dispose();
    throw e;
  }
  return model;
}

export function registerIndex(program: Command): void {
  const index = program
    .command("index")
    .description("build and query a suffix-array index of a corpus (provenance, TraceAlign)");

  const build = index
    .command("build")
    .description("tokenize corpus files and write a trace index (tokens, documents, unigrams, suffix array)");
  addModelOptions(build)
    .requiredOption("--corpus <files...>", "corpus text files (streamed)")
    .requiredOption(
      "-o, --out <dir>",
      "index directory to write; an existing one is replaced atomically, only if it is empty or a tiller index",
    )
    .option(
      "--doc-sep <sep>",
      "document separator: blank-line, line, or a regex (RE2 syntax) matching separator lines",
      "blank-line",
    )
    .option("--lowercase", "lowercase documents (and, later, queries) before tokenizing")
    .action(
      action(async (options: BuildCliOptions) => {
        const signal = commandSignal();
        const model = await loadModelFromOptions(options, { signal });
        const bar = new SingleBar(
          {
            format: "tokenizing [{bar}] {percentage}% | {value}/{total} MB | {tokens} tokens",
            stream: process.stderr,
            hideCursor: true,
          },
          undefined,
        );
        let started = false;
        try {
          const t0 = performance.now();
          const result = await buildIndex(model, options.corpus, options.out, {
            docSep: options.docSep,
            lowercase: options.lowercase ?? false,
            modelSpec: typeof options.model === "string" ? path.resolve(options.model) : undefined,
            signal,
            onProgress: (done, total, tokens) => {
              const mb = (x: number) => Math.round(x / 1e5) / 10;
              if (!started) {
                bar.start(mb(total), 0, { tokens: 0 });
                started = true;
              }
              bar.update(mb(done), { tokens });
            },
            onPhase: (phase) => {
              if (started) bar.stop();
              started = false;
              if (process.stderr.isTTY)
                process.stderr.write(
                  phase === "suffix-array" ? "building suffix array (SA-IS)…\n" : "writing…\n",
                );
            },
          });
          // The index is in place: an interrupt from now on does not undo it.
          markFinished();
          if (started) bar.stop();
          const h = result.header;
          const bytes = Object.values(h.files).reduce((a, f) => a + f.bytes, 0);
          const secs = (performance.now() - t0) / 1000;
          process.stdout.write(
            `index written to ${options.out}: ${h.corpusTokens} tokens in ${h.documents} documents, ` +
              `${(bytes / Math.max(1, h.corpusTokens)).toFixed(2)} bytes/token, ${secs.toFixed(1)} s\n`,
          );
        } finally {
          if (started) bar.stop();
          await model.dispose();
        }
      }),
    );

  const query = index
    .command("query")
    .description("count a text in the index and attribute its maximal verbatim spans to documents");
  addModelOptions(query)
    .requiredOption("-i, --index <dir>", "index directory")
    .option("-t, --text <text>", "the text to look up")
    .option("--tokens <ids>", "token ids to look up instead of a text (comma-separated)", tokenList)
    .option("--min-len <n>", "shortest span reported", positiveInt, 4)
    .option("--max-count <n>", "report spans occurring at most this often", nonNegativeInt, 3)
    .option("--examples <n>", "example occurrences per span", nonNegativeInt, 3)
    .option("--no-verify", "skip checksum verification when opening the index")
    .option("--json", "print one JSON object")
    .action(
      action(async (options: QueryCliOptions) => {
        if ((options.text === undefined) === (options.tokens === undefined))
          throw new TillerError("give exactly one of --text or --tokens", "bad-query");
        const idx = openIndex(options.index, options.verify);
        const model =
          options.text !== undefined || !options.json ? await modelForIndex(idx, options) : undefined;
        try {
          // A text occurs in the corpus in several tokenizations (after a space, after a newline):
          // count them all, and attribute spans in the form found most often.
          const forms = options.tokens
            ? [options.tokens]
            : await queryForms(idx, model as LanguageModel, options.text ?? "");
          const counted = countForms(idx, forms);
          const tokens = counted.best;
          const total = counted.forms.reduce((sum, f) => sum + f.count, 0);
          const whole = {
            count: total,
            occurrences: counted.forms
              .flatMap((f) => idx.find(f.tokens, { limit: options.examples }).occurrences)
              .sort((a, b) => a.position - b.position)
              .slice(0, options.examples),
          };
          const spans = idx.attribute(tokens, {
            minLen: options.minLen,
            maxCount: options.maxCount,
            examples: options.examples,
          });
          if (options.json) {
            const out = {
              tokens,
              count: whole.count,
              ...(counted.forms.length > 1 ? { forms: counted.forms } : {}),
              occurrences: whole.occurrences,
              spans: spans.map((s) => ({
                ...s,
                text: model
                  ? model.detokenize(tokens.slice(s.start, s.end), { context: tokens.slice(0, s.start) })
                  : undefined,
              })),
            };
            process.stdout.write(`${JSON.stringify(out)}\n`);
            return;
          }
          if (!model) return;
          const { text, starts } = tokenOffsets(model, tokens);
          process.stdout.write(`${pc.bold("query")} ${JSON.stringify(text)} (${tokens.length} tokens)\n`);
          process.stdout.write(`${pc.bold("count")} ${whole.count}\n`);
          for (const o of whole.occurrences) {
            const e = excerpt(idx, model, o, tokens.length, 8);
            process.stdout.write(
              `  doc ${o.document} @${o.offset}: ${e.before}${pc.yellow(e.match)}${e.after}\n`,
            );
          }
          process.stdout.write(
            `${pc.bold("spans")} ${spans.length} (length ≥ ${options.minLen}, count ≤ ${options.maxCount})\n`,
          );
          for (const s of spans) {
            process.stdout.write(
              `  [${s.start}, ${s.end}) ${JSON.stringify(text.slice(starts[s.start], starts[s.end]))} count ${s.count} BCI ${s.bci.toFixed(1)}\n`,
            );
            for (const o of s.examples) {
              const e = excerpt(idx, model, o, s.length, 8);
              process.stdout.write(
                `    doc ${o.document}${e.source ? ` (${path.basename(e.source)})` : ""} @${o.offset}: ${e.before}${pc.yellow(e.match)}${e.after}\n`,
              );
            }
          }
        } finally {
          await model?.dispose();
        }
      }),
    );

  index
    .command("info")
    .description("print an index's header (counts, model, files) after checking it")
    .requiredOption("-i, --index <dir>", "index directory")
    .option("--no-verify", "skip checksum verification")
    .action(
      action(async (options: { index: string; verify: boolean }) => {
        const idx = openIndex(options.index, options.verify);
        process.stdout.write(`${JSON.stringify(idx.header, null, 2)}\n`);
      }),
    );
}
