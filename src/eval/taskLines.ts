/**
 * The JSON Lines reading every task file shares (keyword tasks, identity tasks): one JSON object
 * per non-blank line, validated by the file kind's zod schema; unknown fields rejected (a typo
 * such as "max_tokens" must not fall back to a default), ids unique, and every error naming the
 * file, the line and the field.
 */
import type { z } from "zod";
import { TillerError } from "../errors.js";

export interface TaskFileKind<Schema extends z.ZodType<{ id: string }>> {
  schema: Schema;
  /** What the unknown-field message calls a valid field, e.g. "a task field". */
  fieldNoun: string;
  /** The valid fields, listed in the unknown-field message. */
  fields: readonly string[];
}

function fail(message: string): never {
  throw new TillerError(message, "bad-task-file");
}

/** Parses the text of a task file; `file` is only used in error messages. */
export function parseTaskLines<Schema extends z.ZodType<{ id: string }>>(
  kind: TaskFileKind<Schema>,
  text: string,
  file: string,
): z.output<Schema>[] {
  const tasks: z.output<Schema>[] = [];
  const seen = new Map<string, number>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "") return;
    const where = `${file}:${i + 1}`;
    const task = parseTaskLine(kind, line, where);
    const previous = seen.get(task.id);
    if (previous !== undefined)
      fail(`${where}: field "id": duplicate id "${task.id}" (first on line ${previous})`);
    seen.set(task.id, i + 1);
    tasks.push(task);
  });
  if (tasks.length === 0) fail(`${file}: no tasks (the file is empty)`);
  return tasks;
}

function parseTaskLine<Schema extends z.ZodType<{ id: string }>>(
  kind: TaskFileKind<Schema>,
  line: string,
  where: string,
): z.output<Schema> {
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
  const parsed = kind.schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  if (issue.code === "unrecognized_keys")
    fail(`${where}: field "${issue.keys[0]}" is not ${kind.fieldNoun} (valid: ${kind.fields.join(", ")})`);
  const field = issue.path.length ? issue.path.join(".") : "task";
  if (
    issue.code === "invalid_type" &&
    (value as Record<string, unknown>)[String(issue.path[0])] === undefined
  )
    fail(`${where}: field "${field}" is missing`);
  fail(`${where}: field "${field}": ${issue.message}`);
}
