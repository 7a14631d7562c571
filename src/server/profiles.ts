import { extname } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { TillerError } from "../errors.js";
import { readInputText } from "../util/inputFiles.js";
import { alignmentSchema } from "./schemas.js";

/*
 * Profiles: named alignment settings in a JSON or YAML file, e.g.
 *
 *   keywords-strict:
 *     description: DeAL toward the keywords dog and ball
 *     strategy: deal:k=5,l=8
 *     rewards: ["keywords:dog,ball;hard"]
 *   no-copy:
 *     strategy: greedy
 *     provenance: { veto: hard }
 *
 * A client selects one by model name (`"model": "keywords-strict"`): the served model decodes
 * with the profile's settings, so clients that cannot send extra fields still get aligned output.
 * A request's own `alignment` overrides the profile field by field.
 */

export const profileSchema = alignmentSchema.extend({
  /** One line for /v1/models. */
  description: z.string().optional(),
});

export type Profile = z.infer<typeof profileSchema> & { name: string };

const NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;

/** Reads and validates a profiles file (by extension: .json, else YAML). */
export function loadProfiles(file: string): Map<string, Profile> {
  // Capped like every input read whole (a device such as /dev/zero is an error, not an OOM).
  const text = readInputText(file, "profiles file", { notFoundCode: "profiles-not-found" });
  let data: unknown;
  try {
    data = extname(file).toLowerCase() === ".json" ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new TillerError(
      `${file}: not valid ${extname(file) === ".json" ? "JSON" : "YAML"}: ${firstLine(error)}`,
      "bad-profiles",
    );
  }
  return parseProfiles(data, file);
}

/** Validates profiles given as data (`{name: settings}`); `source` names them in errors. */
export function parseProfiles(data: unknown, source = "profiles"): Map<string, Profile> {
  if (typeof data !== "object" || data === null || Array.isArray(data))
    throw new TillerError(`${source}: expected a mapping of profile names to settings`, "bad-profiles");
  const profiles = new Map<string, Profile>();
  for (const [name, settings] of Object.entries(data)) {
    if (!NAME.test(name))
      throw new TillerError(
        `${source}: profile name ${JSON.stringify(name)} must be 1-64 letters, digits, '.', '_', ':' or '-'`,
        "bad-profiles",
      );
    const parsed = profileSchema.safeParse(settings);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const field = [name, ...issue.path.map(String)].join(".");
      const detail =
        issue.code === "unrecognized_keys" ? `unknown field(s) ${issue.keys.join(", ")}` : issue.message;
      throw new TillerError(`${source}: ${field}: ${detail}`, "bad-profiles");
    }
    profiles.set(name, { ...parsed.data, name });
  }
  return profiles;
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0];
}
