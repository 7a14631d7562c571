import { TillerError } from "../../errors.js";
import type { DecodeContext } from "../types.js";
import { CorpusLookupDrafter } from "./corpusLookup.js";
import type { Drafter } from "./drafter.js";
import { DraftModelDrafter, type DraftModelOptions } from "./draftModel.js";
import { FallbackDrafter } from "./fallback.js";
import { PromptLookupDrafter } from "./promptLookup.js";

/**
 * A drafter, or how the CLI names one: `model` (the loaded draft model), `prompt`, `index:DIR`,
 * or several joined by `+` (each request takes the first that proposes something, e.g.
 * `prompt+index:DIR`).
 */
export type DrafterSpec = Drafter | string;

/** Opened corpus-lookup drafters by directory: an eval run decodes many prompts with one index. */
const openIndexes = new Map<string, CorpusLookupDrafter>();

/** Checks a drafter spec's form (not whether its model or index exists). */
export function checkDrafterSpec(spec: string): string {
  const parts = spec.split("+");
  if (parts.every((part) => part === "model" || part === "prompt" || /^index:./.test(part))) return spec;
  throw new TillerError(
    `unknown drafter "${spec}"; use model (the draft model given with --draft), prompt (prompt lookup) or index:DIR (a trace index)`,
    "bad-drafter",
  );
}

/**
 * The drafter a decode uses: the given one; or the one a spec names; or, with no spec, the
 * context's draft model when it has one, else prompt lookup.
 */
export function resolveDrafter(
  spec: DrafterSpec | undefined,
  context: Pick<DecodeContext, "draft">,
  draftModel: DraftModelOptions = {},
): Drafter {
  if (spec !== undefined && typeof spec !== "string") return spec;
  const name = spec === undefined ? (context.draft ? "model" : "prompt") : checkDrafterSpec(spec);
  const parts = name.split("+");
  if (parts.length > 1) return new FallbackDrafter(parts.map((part) => single(part, context, draftModel)));
  return single(name, context, draftModel);
}

function single(name: string, context: Pick<DecodeContext, "draft">, draftModel: DraftModelOptions): Drafter {
  if (name === "prompt") return new PromptLookupDrafter();
  if (name === "model") {
    if (!context.draft)
      throw new TillerError(
        'speculative: drafter "model" needs a draft model (give one with --draft M)',
        "no-draft-model",
      );
    return new DraftModelDrafter(context.draft, draftModel);
  }
  const dir = name.slice("index:".length);
  let drafter = openIndexes.get(dir);
  if (!drafter) {
    drafter = CorpusLookupDrafter.open(dir);
    openIndexes.set(dir, drafter);
  }
  return drafter;
}
