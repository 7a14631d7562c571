import { createHash } from "node:crypto";
import { createReadStream, mkdirSync, readFileSync, type Stats, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { TillerError } from "../errors.js";
import { cacheDir } from "../lm/resolve.js";
import { writeFileAtomic } from "../util/atomicWrite.js";

/** What identifies one version of a file without reading it. */
export function fileIdentity(absolute: string, stat: Stats): string {
  return [absolute, stat.dev, stat.ino, stat.size, stat.mtimeMs, stat.ctimeMs].join(":");
}

const memory = new Map<string, string>();

/**
 * SHA-256 of a model file, hex. Hashing a large GGUF takes seconds, so the digest is remembered
 * — in memory and in `<cache>/model-hashes.json` — per file identity: absolute path, device,
 * inode, size, mtime and ctime. Replacing the file (even by one of the same size and mtime, as
 * `cp -p` or `touch -r` make) gives it a new inode or ctime, so it is hashed again; the stat
 * costs nothing at start-up.
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
  const key = fileIdentity(absolute, stat);
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
      writeFileAtomic(file, JSON.stringify(table, null, 2));
    } catch {
      // A read-only cache only costs hashing again next time.
    }
  }
  return digest;
}
