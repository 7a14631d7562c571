import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";

/**
 * Where the test twins of stories260K live (stories260K-chat.gguf, stories-heavy.gguf, …):
 * $TILLER_TEST_MODELS, else the cache folder ../shared/tools/make-test-models.sh writes by default
 * (.ci/run makes them there).
 */
export function testModelsDir(): string {
  return resolve(
    process.env.TILLER_TEST_MODELS ??
      join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "tiller-test-models"),
  );
}

/** The path of test twin `name` (e.g. "stories260K-chat.gguf"); fails naming the file and how to make it. */
export function testModelsPath(name: string): string {
  const dir = testModelsDir();
  const path = join(dir, name);
  if (!existsSync(path))
    throw new Error(
      `test model ${name} not found in ${dir}; make it with \`bash ../shared/tools/make-test-models.sh ${dir}\` ` +
        "from the repository root after npm ci, or set TILLER_TEST_MODELS to the folder that holds it",
    );
  return path;
}
