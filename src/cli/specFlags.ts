/** CLI inputs checked the same way by every command: the prompt, and strategy flags vs spec params. */
import { parseStrategySpec, type StrategySpec } from "../decoding/registry.js";
import { TillerError } from "../errors.js";

/** An empty prompt is refused by every command (eval's task files refuse it too). */
export function checkPrompt(prompt: string): void {
  if (prompt === "")
    throw new TillerError("the prompt is empty; give the text to continue with -p/--prompt", "empty-prompt");
}

/**
 * The spec with flag values (`--k 5`) added as parameters. A parameter given both in the spec and
 * by a flag (`-s deal:k=3 --k 5`) is an error, not a silent choice. The result is parsed again so
 * flag values are checked like spec values.
 */
export function mergeStrategyFlags(
  spec: StrategySpec,
  flags: Record<string, readonly [flag: string, value: number | undefined]>,
): StrategySpec {
  const params = { ...spec.params };
  for (const [key, [flag, value]] of Object.entries(flags)) {
    if (value === undefined) continue;
    if (params[key] !== undefined)
      throw new TillerError(
        `${key} is given twice: ${key}=${String(params[key])} in --strategy ${spec.label} and ${flag} ${value}; give it once`,
        "conflicting-options",
      );
    params[key] = value;
  }
  const text = Object.entries(params).map(([key, value]) => `${key}=${value}`);
  return parseStrategySpec(text.length ? `${spec.name}:${text.join(",")}` : spec.name);
}
