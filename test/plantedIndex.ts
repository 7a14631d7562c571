import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { generate } from "../src/generate.js";
import type { LanguageModel } from "../src/lm/types.js";
import { buildIndex } from "../src/provenance/build-index.js";
import { TraceIndex } from "../src/provenance/trace-index.js";
import { sharedPath } from "./helpers.js";

/** A prompt whose greedy continuation is planted in the corpus: decoding it copies the corpus. */
export const COPY_PROMPT = "Tom and his dog went to the big park";

export interface PlantedIndex {
  dir: string;
  index: TraceIndex;
  /** The greedy continuation of COPY_PROMPT, which the corpus contains verbatim after the prompt. */
  copy: string;
  /** A sentence of the corpus (its first story's opening). */
  corpusSentence: string;
  cleanup(): void;
}

/**
 * Builds a small index: the first ~20 KB of the shared TinyStories corpus plus one document that
 * is COPY_PROMPT followed by the model's own greedy continuation — so the stories model, asked
 * COPY_PROMPT, reproduces a corpus document verbatim (the tiny model memorises little on its own).
 */
export async function plantedIndex(model: LanguageModel): Promise<PlantedIndex> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tiller-planted-"));
  const copy = (await generate(model, { prompt: COPY_PROMPT, maxTokens: 64 })).text;
  const corpus = fs.readFileSync(sharedPath("corpora/tinystories-4m.txt"), "utf8");
  const slice = corpus.slice(0, corpus.indexOf("\n\n", 20_000));
  fs.writeFileSync(path.join(tmp, "corpus.txt"), `${slice}\n\n${COPY_PROMPT}${copy}\n`);
  await buildIndex(model, [path.join(tmp, "corpus.txt")], path.join(tmp, "idx"), { lowercase: true });
  const corpusSentence = slice.slice(0, slice.indexOf(".", 40) + 1);
  return {
    dir: path.join(tmp, "idx"),
    index: TraceIndex.open(path.join(tmp, "idx")),
    copy,
    corpusSentence,
    cleanup: () => fs.rmSync(tmp, { recursive: true, force: true }),
  };
}
