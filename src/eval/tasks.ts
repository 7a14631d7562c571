/**
 * Eval task files: JSON Lines, one task per line, e.g.
 *
 *   {"id": "kw-1", "prompt": "It was a sunny day.", "keywords": ["dog", "ball"], "maxTokens": 64}
 *   {"id": "len-1", "prompt": "Once upon a time", "keywords": [], "maxTokens": 96, "minWords": 30, "maxWords": 50}
 *
 * Read as every task file is (./taskLines.ts): blank lines skipped, unknown fields rejected, every
 * error naming the file, the line and the field.
 */
import { z } from "zod";
import { phraseWords } from "../rewards/words.js";
import { readInputText } from "../util/inputFiles.js";
import { parseTaskLines } from "./taskLines.js";

export const evalTaskSchema = z
  .strictObject({
    id: z.string().min(1, "must be a non-empty string"),
    prompt: z.string().min(1, "must be a non-empty string"),
    keywords: z
      .array(
        z
          .string()
          .refine((keyword) => phraseWords(keyword).length > 0, "each keyword must contain a word character"),
      )
      .default([]),
    maxTokens: z.number().int().min(1).max(1_000_000),
    minWords: z.number().int().min(0).optional(),
    maxWords: z.number().int().min(0).optional(),
  })
  .superRefine((task, ctx) => {
    if (task.minWords !== undefined && task.maxWords !== undefined && task.minWords > task.maxWords)
      ctx.addIssue({ code: "custom", path: ["maxWords"], message: "must be ≥ minWords" });
    if (task.keywords.length === 0 && task.minWords === undefined && task.maxWords === undefined)
      ctx.addIssue({
        code: "custom",
        path: ["keywords"],
        message: "a task needs at least one keyword, or minWords/maxWords (a length task)",
      });
  });

const TASK_FIELDS = ["id", "prompt", "keywords", "maxTokens", "minWords", "maxWords"];

export type EvalTask = z.output<typeof evalTaskSchema>;

const taskFile = { schema: evalTaskSchema, fieldNoun: "a task field", fields: TASK_FIELDS };

/** Parses the text of a task file; `file` is only used in error messages. */
export function parseTasks(text: string, file = "<tasks>"): EvalTask[] {
  return parseTaskLines(taskFile, text, file);
}

/** Reads and validates a task file (JSON Lines), at most the input size limit. */
export function readTasks(file: string): EvalTask[] {
  return parseTasks(readInputText(file, "task file", { notFoundCode: "task-file-not-found" }), file);
}
