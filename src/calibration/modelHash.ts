import { createHash } from "node:crypto";
import { createReadStream, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { TillerError } from "../errors.js";
import { cacheDir } from "../lm/resolve.js";

const memory = new Map<string, string>();

/**
 * SHA-256 of a model file, hex. Hashing a large GGUF takes seconds, so the digest is remembered
 * per (absolute path, size, mtime) — in memory and in `<cache>/model-hashes.json` — and only
 * recomputed when the file changes.
 */
export async function modelFileHash(
  path: string,
  options: { cacheDir?: string | false } = {},
): Promise<string> {
  const absolute = resolve(path);
  let stat: ReturnType<typeof statSync>;
  try {
    stat = statSync(absolute);
  } catch {
    throw new TillerError(`model file not found: ${absolute}`, "model-not-found");
  }
  const key = `${absolute}:${stat.size}:${stat.mtimeMs}`;
  const known = memory.get(key);
  if (known) return known;
  const dir = options.cacheDir === false ? undefined : (options.cacheDir ?? cacheDir());
  const file = dir ? join(dir, "model-hashes.json") : undefined;
  let table: Record<string, string> = {};
  if (file) {
    try {
      table = JSON.parse(readFileSync(file, "utf8"));
      const cached = table[key];
      if (typeof cached === "string" && /^[0-9a-f]{64}$/.test(cached)) {
        memory.set(key, cached);
        return cached;
      }
    } catch {
      table = {};
    }
  }
  const hash = createHash("sha256");
  await new Promise<void>((done, fail) => {
    createReadStream(absolute)
      .on("data", (chunk) => hash.update(chunk))
      .on("end", () => done())
      .on("error", fail);
  });
  const digest = hash.digest("hex");
  memory.set(key, digest);
  if (file && dir) {
    try {
      mkdirSync(dir, { recursive: true });
      table[key] = digest;
      const temp = `${file}.${process.pid}.${Date.now()}.tmp`;
      writeFileSync(temp, JSON.stringify(table, null, 2));
      renameSync(temp, file);
    } catch {
      // A read-only cache only costs hashing again next time.
    }
  }
  return digest;
}
