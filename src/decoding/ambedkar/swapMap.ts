/**
 * Swap maps: which words name a protected identity, and what each becomes in every other group.
 * The file format (`tiller.swaps/v1`) is documented in docs/swaps.md; this module parses and
 * validates it and builds the lookup σ uses. Every problem is a TillerError naming the file.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { TillerError } from "../../errors.js";
import { wordSpans } from "../../rewards/words.js";

export const SWAP_MAP_SCHEMA = "tiller.swaps/v1";

/** A term, or several alternatives where a word has no single counterpart (her → his / him). */
const entrySchema = z.union([z.string(), z.array(z.string()).min(1, "an alternatives list is empty")]);

export const swapFileSchema = z.strictObject({
  schema: z.literal(SWAP_MAP_SCHEMA),
  name: z.string().min(1),
  description: z.string().optional(),
  sources: z
    .array(
      z.strictObject({ title: z.string().min(1), url: z.string().optional(), licence: z.string().min(1) }),
    )
    .optional(),
  aggregate: z.enum(["mean", "max"]).optional(),
  /** Named groups of terms, aligned by position: the i-th entries of all groups correspond. */
  groups: z.record(z.string().min(1), z.array(entrySchema)),
  /** Explicit correspondences, each naming two or more groups (a pair may leave groups out). */
  pairs: z.array(z.record(z.string(), entrySchema)).optional(),
  /** How an ambiguous counterpart is chosen in running text, from the word that follows. */
  resolve: z
    .array(
      z.strictObject({
        term: z.string().min(1),
        group: z.string().min(1),
        choose: z.string().min(1),
        whenNext: z.array(z.string().min(1)).min(1),
      }),
    )
    .optional(),
});

export type SwapFile = z.output<typeof swapFileSchema>;

/** A resolution rule: in running text, `choose` when the next word is in `whenNext`. */
interface ResolveRule {
  choose: string;
  /** Lower-cased next words; "<end>" (nothing follows) and "<punct>" (punctuation follows) are special. */
  whenNext: ReadonlySet<string>;
}

/** What the map knows about one term. */
export interface TermEntry {
  /** Index of the group the term names. */
  group: number;
  /** Per group index: the term's counterparts there, default first (empty: none, or its own group). */
  counterparts: string[][];
  /** Per group index: the rule choosing among several counterparts, if the file gives one. */
  resolve: (ResolveRule | undefined)[];
}

export interface SwapMap {
  name: string;
  /** Group names, in file order: counterfactual `shift` s maps group i to group (i + s) mod n. */
  groups: readonly string[];
  /** How the divergences of several counterfactuals combine unless the caller overrides it. */
  aggregate: "mean" | "max";
  /** Lower-cased term → entry. */
  terms: ReadonlyMap<string, TermEntry>;
  /** Every proper prefix of every term (decides whether a word piece could still become one). */
  prefixes: ReadonlySet<string>;
  sources: readonly { title: string; url?: string; licence: string }[];
  /** Where the map came from (a path or a built-in name), for messages. */
  origin: string;
}

function fail(origin: string, message: string): never {
  throw new TillerError(`swap map ${origin}: ${message}`, "bad-swap-map");
}

/** Checks that an entry is one whole word and returns it lower-cased. */
function normaliseTerm(origin: string, where: string, term: string): string {
  const spans = wordSpans(term);
  if (spans.length !== 1 || spans[0].start !== 0 || spans[0].end !== term.length)
    fail(
      origin,
      `${where}: "${term}" is not a single word (terms are whole words; list a phrase's distinctive word)`,
    );
  return spans[0].word;
}

/** One correspondence: per group index, its terms (undefined: the row leaves that group out). */
type Row = (string[] | undefined)[];

function rowsOf(origin: string, file: SwapFile, groups: readonly string[]): Row[] {
  const lengths = groups.map((g) => file.groups[g].length);
  const empty = groups.find((g) => file.groups[g].length === 0);
  if (empty !== undefined) fail(origin, `group "${empty}" is empty`);
  if (new Set(lengths).size > 1)
    fail(
      origin,
      `groups are aligned by position and must have the same length, got ${groups.map((g, i) => `${g}: ${lengths[i]}`).join(", ")} (put unmatched terms in "pairs")`,
    );
  const asList = (entry: string | string[], where: string) =>
    (typeof entry === "string" ? [entry] : entry).map((term) => normaliseTerm(origin, where, term));
  const rows: Row[] = [];
  for (let i = 0; i < lengths[0]; i++)
    rows.push(groups.map((g) => asList(file.groups[g][i], `groups.${g}[${i}]`)));
  (file.pairs ?? []).forEach((pair, p) => {
    const named = Object.keys(pair);
    const unknown = named.find((g) => !groups.includes(g));
    if (unknown !== undefined)
      fail(origin, `pairs[${p}] names group "${unknown}", which is not in "groups" (${groups.join(", ")})`);
    if (named.length < 2) fail(origin, `pairs[${p}] must name at least two groups`);
    rows.push(groups.map((g) => (pair[g] === undefined ? undefined : asList(pair[g], `pairs[${p}].${g}`))));
  });
  return rows;
}

/** Validates a parsed swap file and builds the lookup. `origin` names it in errors. */
export function buildSwapMap(file: SwapFile, origin: string): SwapMap {
  const groups = Object.keys(file.groups);
  if (groups.length < 2) fail(origin, `needs at least two groups, got ${groups.length}`);
  const rows = rowsOf(origin, file, groups);
  const terms = new Map<string, TermEntry>();
  for (const row of rows)
    row.forEach((words, g) => {
      for (const word of words ?? []) {
        let entry = terms.get(word);
        if (entry && entry.group !== g)
          fail(
            origin,
            `"${word}" is listed in both "${groups[entry.group]}" and "${groups[g]}" (a term names one group)`,
          );
        if (!entry) {
          entry = { group: g, counterparts: groups.map(() => []), resolve: groups.map(() => undefined) };
          terms.set(word, entry);
        }
        row.forEach((others, h) => {
          if (h === g || !others) return;
          for (const other of others)
            if (!entry.counterparts[h].includes(other)) entry.counterparts[h].push(other);
        });
      }
    });
  for (const [r, rule] of (file.resolve ?? []).entries()) {
    const where = `resolve[${r}]`;
    const entry = terms.get(normaliseTerm(origin, where, rule.term));
    const h = groups.indexOf(rule.group);
    if (!entry) fail(origin, `${where}: "${rule.term}" is not a term of the map`);
    if (h < 0) fail(origin, `${where}: group "${rule.group}" is not in "groups" (${groups.join(", ")})`);
    const choose = normaliseTerm(origin, where, rule.choose);
    if (!entry.counterparts[h].includes(choose))
      fail(
        origin,
        `${where}: "${rule.choose}" is not a counterpart of "${rule.term}" in "${rule.group}" (${entry.counterparts[h].join(", ") || "none"})`,
      );
    entry.resolve[h] = { choose, whenNext: new Set(rule.whenNext.map((w) => w.toLowerCase())) };
  }
  const prefixes = new Set<string>();
  for (const term of terms.keys()) for (let n = 1; n < term.length; n++) prefixes.add(term.slice(0, n));
  return {
    name: file.name,
    groups,
    aggregate: file.aggregate ?? "mean",
    terms,
    prefixes,
    sources: file.sources ?? [],
    origin,
  };
}

/** Parses the JSON text of a swap file. */
export function parseSwapMap(text: string, origin = "<swaps>"): SwapMap {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    fail(origin, `not valid JSON (${(error as Error).message})`);
  }
  const parsed = swapFileSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue.path.length ? issue.path.join(".") : "file";
    if (issue.code === "unrecognized_keys")
      fail(origin, `field "${issue.keys[0]}" is not a swap-map field (see docs/swaps.md)`);
    fail(origin, `field "${field}": ${issue.message}`);
  }
  return buildSwapMap(parsed.data, origin);
}

/** Reads a swap file; a missing or unreadable file is a TillerError naming the path. */
export function readSwapMap(path: string): SwapMap {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new TillerError(
      code === "ENOENT"
        ? `swap file not found: ${path}`
        : `cannot read swap file ${path}: ${(error as Error).message}`,
      "swap-file-not-found",
    );
  }
  return parseSwapMap(text, path);
}
