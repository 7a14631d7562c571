/**
 * Eval task files: JSON Lines, one task per line, e.g.
 *
 *   {"id": "kw-1", "prompt": "It was a sunny day.", "keywords": ["dog", "ball"], "maxTokens": 64}
 *   {"id": "len-1", "prompt": "Once upon a time", "keywords": [], "maxTokens": 96, "minWords": 30, "maxWords": 50}
 *
 * Blank lines are skipped. Unknown fields are rejected (a typo such as "max_tokens" should not
 * silently fall back to a default). Every error names the file, the line and the field.
 */
import { z } from "zod";
import { TillerError } from "../errors.js";
import { phraseWords } from "../rewards/words.js";
import { readInputText } from "../util/inputFiles.js";

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

function fail(message: string): never {
  throw new TillerError(message, "bad-task-file");
}

/** Parses the text of a task file; `file` is only used in error messages. */
export function parseTasks(text: string, file = "<tasks>"): EvalTask[] {
  const tasks: EvalTask[] = [];
  const seen = new Map<string, number>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    const where = `${file}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      fail(`${where}: not valid JSON (${(error as Error).message})`);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value))
      fail(
        `${where}: a task must be a JSON object, got ${Array.isArray(value) ? "an array" : JSON.stringify(value)}`,
      );
    const parsed = evalTaskSchema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      if (issue.code === "unrecognized_keys")
        fail(`${where}: field "${issue.keys[0]}" is not a task field (valid: ${TASK_FIELDS.join(", ")})`);
      const field = issue.path.length ? issue.path.join(".") : "task";
      if (
        issue.code === "invalid_type" &&
        (value as Record<string, unknown>)[String(issue.path[0])] === undefined
      )
        fail(`${where}: field "${field}" is missing`);
      fail(`${where}: field "${field}": ${issue.message}`);
    }
    const previous = seen.get(parsed.data.id);
    if (previous !== undefined)
      fail(`${where}: field "id": duplicate id "${parsed.data.id}" (first on line ${previous})`);
    seen.set(parsed.data.id, i + 1);
    tasks.push(parsed.data);
  }
  if (tasks.length === 0) fail(`${file}: no tasks (the file is empty)`);
  return tasks;
}

/** Reads and validates a task file (JSON Lines), at most the input size limit. */
export function readTasks(file: string): EvalTask[] {
  return parseTasks(readInputText(file, "task file", { notFoundCode: "task-file-not-found" }), file);
}
