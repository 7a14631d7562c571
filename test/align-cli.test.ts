import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, sharedPath, testModelPath } from "./helpers.js";

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "tiller-align-"));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A lowercased index of the corpus's first 200 000 characters (built once). */
async function ensureIndex(): Promise<string> {
  const index = join(tmp, "index");
  if (existsSync(index)) return index;
  const corpus = join(tmp, "corpus.txt");
  writeFileSync(corpus, readFileSync(sharedPath("corpora/tinystories-4m.txt"), "utf8").slice(0, 200_000));
  const built = await tiller([
    "index",
    "build",
    ...model(),
    "--corpus",
    corpus,
    "--out",
    index,
    "--lowercase",
  ]);
  expect(built.status, built.stderr).toBe(0);
  return index;
}

const tiller = (args: string[]) =>
  runCli(args, {
    env: { ...process.env, TILLER_CACHE_DIR: join(tmp, "cache"), TILLER_CONNECT_TIMEOUT_MS: "1500" },
  });

const model = () => ["--model", testModelPath(), "--threads", "1", "--no-gpu"];

/** Bad input: non-zero exit, exactly one `tiller: …` line on stderr containing `fragment`. */
async function expectOneLineError(args: string[], fragment: RegExp) {
  const r = await tiller(args);
  expect(r.status, r.stderr).not.toBe(0);
  const lines = r.stderr.trim().split("\n");
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^tiller: /);
  expect(lines[0]).toMatch(fragment);
}

describe("tiller align", () => {
  it("--json prints {text, rewards, score, stats} and --trace writes the search", async () => {
    const trace = join(tmp, "trace.json");
    const r = await tiller([
      "align",
      ...model(),
      "-p",
      "It was a sunny day.",
      "-r",
      "keywords:elephant,lion,shop",
      "-r",
      "length:30-90w",
      "--strategy",
      "deal:natural",
      "--k",
      "4",
      "--lookahead",
      "6",
      "--json",
      "--trace",
      trace,
    ]);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(Object.keys(out).sort()).toEqual(["minToken", "rewards", "score", "stats", "text"]);
    expect(Object.keys(out.rewards)).toEqual(["keywords", "length"]);
    // The floor keeps keywords out where they do not fit: most are placed, none by word salad.
    expect(out.rewards.keywords).toBeGreaterThanOrEqual(2 / 3);
    expect(out.minToken.logprob).toBeGreaterThanOrEqual(-6.5 - 1e-3);
    expect(out.text).toContain(out.minToken.text.trim());
    expect(out.score).toBeCloseTo(out.rewards.keywords + out.rewards.length, 9);
    expect(Object.keys(out.stats).sort()).toEqual(["evaluatedTokens", "generatedTokens", "wallMs"]);
    expect(out.stats.evaluatedTokens).toBeGreaterThan(out.stats.generatedTokens);
    const t = JSON.parse(readFileSync(trace, "utf8"));
    expect(t.strategy).toBe("deal");
    expect(t.options.k).toBe(4);
    expect(t.steps.length).toBeGreaterThan(0);
  });

  it("text mode prints the text then one line per reward; bon and greedy work too", async () => {
    for (const strategy of ["greedy", "bon:n=3"]) {
      const r = await tiller([
        "align",
        ...model(),
        "-p",
        "Once upon a time",
        "-r",
        "2*keywords:park",
        "--strategy",
        strategy,
        "-n",
        "40",
      ]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/keywords\s+[01]\.0000/);
      expect(r.stdout).toMatch(/score \(mix\)\s+[02]\.0000/);
    }
  });

  it("Prov-Decode from the CLI: --index with a built index (--provenance: the same, an older name)", async () => {
    const index = await ensureIndex();
    const run = (flag: string) =>
      tiller([
        "align",
        ...model(),
        "-p",
        "Once upon a time",
        "-r",
        "keywords:dog",
        flag,
        index,
        "--json",
        "-n",
        "40",
      ]);
    const [r, older] = [await run("--index"), await run("--provenance")];
    expect(r.status, r.stderr).toBe(0);
    const text = JSON.parse(r.stdout).text;
    expect(text.length).toBeGreaterThan(0);
    expect(older.status, older.stderr).toBe(0);
    expect(JSON.parse(older.stdout).text).toBe(text);
    // A corrupt index is refused: the index really is opened (and checked) under either name.
    const bad = join(tmp, "bad-index");
    cpSync(index, bad, { recursive: true });
    const sa = join(bad, "sa.bin");
    const bytes = readFileSync(sa);
    bytes[0] ^= 0xff;
    writeFileSync(sa, bytes);
    await expectOneLineError(
      ["align", ...model(), "-p", "hi", "-r", "keywords:dog", "--provenance", bad],
      /sa\.bin fails its checksum/,
    );
  });

  it("--shield: TraceShield refuses a copy, the retry with a hard Prov-Decode veto passes; --regenerate 0 refuses; a high τ passes", async () => {
    const index = await ensureIndex();
    // The corpus's first story: greedy decoding continues it verbatim for a while.
    const copied = "One day, a little girl named Lily found a needle in her room.";
    const args = ["align", ...model(), "-p", copied, "-r", "length:5-60w", "--strategy", "greedy"];
    const shieldArgs = [...args, "--index", index, "--shield", "--tau", "5", "-n", "48", "--json"];
    const retried = await tiller(shieldArgs);
    expect(retried.status, retried.stderr).toBe(0);
    const out = JSON.parse(retried.stdout);
    expect(out.shield.refused).toBe(false);
    expect(out.shield.tau).toBe(5);
    expect(out.shield.attempts.map((a: { verdict: string }) => a.verdict)).toEqual(["refuse", "pass"]);
    expect(out.shield.attempts[0].maxBci).toBeGreaterThan(5);
    const plain = JSON.parse((await tiller([...args, "-n", "48", "--json"])).stdout);
    expect(out.text).not.toBe(plain.text);

    const refused = await tiller([...shieldArgs, "--regenerate", "0", "--refusal", "Sorry, no."]);
    expect(refused.status, refused.stderr).toBe(0);
    const refusal = JSON.parse(refused.stdout);
    expect(refusal.text.trim()).toBe("Sorry, no.");
    expect(refusal.shield).toMatchObject({ refused: true, attempts: [{ verdict: "refuse" }] });

    const passed = await tiller([
      ...args,
      "--index",
      index,
      "--shield",
      "--tau",
      "100000",
      "-n",
      "48",
      "--json",
    ]);
    expect(passed.status, passed.stderr).toBe(0);
    const pass = JSON.parse(passed.stdout);
    expect(pass.text).toBe(plain.text);
    expect(pass.shield).toMatchObject({ refused: false, attempts: [{ verdict: "pass" }] });

    const text = await tiller([...shieldArgs.filter((a) => a !== "--json"), "--regenerate", "0"]);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/TraceShield \(τ = 5\): refused after 1 attempt\(s\); max BCI \d/);
  });

  it("bad Prov-Decode / shield / model options get one clear line, no stack", async () => {
    const base = ["align", ...model(), "-p", "hi", "-r", "keywords:dog"];
    await expectOneLineError([...base, "--gamma", "0"], /--gamma.*expected a number > 0/);
    await expectOneLineError([...base, "--gamma", "-2"], /--gamma.*expected a number > 0/);
    await expectOneLineError([...base, "--window", "0"], /--window.*positive integer/);
    await expectOneLineError([...base, "--min-len", "0"], /--min-len.*positive integer/);
    // The older name parses as --min-len does.
    await expectOneLineError([...base, "--min-match", "0"], /--min-len.*positive integer/);
    await expectOneLineError([...base, "--tau", "NaN"], /--tau.*expected a number/);
    await expectOneLineError([...base, "--regenerate", "-1"], /--regenerate/);
    await expectOneLineError([...base, "--shield"], /--shield needs --index/);
    await expectOneLineError([...base, "--context-size", "8"], /--context-size must be ≥ 16/);
    await expectOneLineError(
      ["align", ...model(), "-p", "hi", "-r", "judge", "--judge-model", join(tmp, "no-judge.gguf")],
      /not found/,
    );
    // The judge model loads with the main model's options: at --context-size 32 the judge sees a
    // truncated question, so a separate judge file answers exactly as the main model (also at 32)
    // does, and differently from a judge at the default context size.
    const judge = async (extra: string[]) => {
      const r = await tiller([
        "align",
        ...model(),
        "-p",
        "hi",
        "-r",
        "judge",
        "--strategy",
        "greedy",
        "-n",
        "4",
        "--json",
        ...extra,
      ]);
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout).rewards.judge as number;
    };
    const separate32 = await judge(["--context-size", "32", "--judge-model", testModelPath()]);
    expect(separate32).toBe(await judge(["--context-size", "32"]));
    expect(separate32).not.toBe(await judge(["--judge-model", testModelPath()]));
  });

  it("bad input gets one clear line and a non-zero exit", async () => {
    const base = ["align", ...model(), "-p", "hi"];
    await expectOneLineError([...base, "-r", "colour:red"], /unknown reward "colour".*keywords:/);
    await expectOneLineError([...base, "-r", "keywords:"], /keywords/);
    await expectOneLineError([...base, "-r", "keywords:dog", "-w", "abc"], /weight/);
    await expectOneLineError([...base, "-r", "keywords:dog", "-r", "sentiment", "-w", "1"], /weight/);
    await expectOneLineError([...base, "-r", "regex:must:(unclosed"], /regex|pattern/i);
    await expectOneLineError([...base, "-r", "regex:must:(a)\\1"], /backreference/i);
    await expectOneLineError([...base, "-r", "lexicon:/no/such/file.txt"], /not found|no such/i);
    await expectOneLineError([...base], /at least one --reward/);
    await expectOneLineError(
      [...base, "-r", "keywords:dog", "--strategy", "magic"],
      /unknown strategy "magic"/,
    );
    await expectOneLineError([...base, "-r", "keywords:dog", "--strategy", "deal:k=0"], /k must be/);
    await expectOneLineError([...base, "-r", "keywords:dog", "--strategy", "deal:q=1"], /no parameter "q"/);
    await expectOneLineError(
      [...base, "-r", "keywords:dog", "--strategy", "greedy", "--k", "3"],
      /takes none/,
    );
    await expectOneLineError(
      [...base, "-r", "keywords:dog", "--index", join(tmp, "missing-index")],
      /index/i,
    );
    await expectOneLineError([...base, "-r", "keywords:dog", "--veto", "maybe"], /veto/);
    await expectOneLineError(
      ["align", "--model", join(tmp, "nope.gguf"), "-p", "x", "-r", "keywords:dog"],
      /not found/,
    );
    await expectOneLineError(
      [...base.slice(0, -2), "-p", "word ".repeat(3000), "-r", "keywords:dog"],
      /context/,
    );
  });
});

describe("tiller winrate", () => {
  it("prints a table and writes the plot", async () => {
    const tasks = join(tmp, "tasks.jsonl");
    writeFileSync(
      tasks,
      `${[
        { id: "a", prompt: "Once upon a time", keywords: ["dog"], maxTokens: 16 },
        { id: "b", prompt: "One day, a boy", keywords: ["tree"], maxTokens: 16 },
      ]
        .map((t) => JSON.stringify(t))
        .join("\n")}\n`,
    );
    const out = join(tmp, "winrate");
    const r = await tiller([
      "winrate",
      ...model(),
      "--tasks",
      tasks,
      "--strategy",
      "bon:n=4",
      "--n",
      "4",
      "--m",
      "8",
      "--samples",
      "4",
      "--out",
      out,
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/N\/\(N\+1\)/);
    expect(existsSync(join(out, "winrate.svg"))).toBe(true);
    expect(readFileSync(join(out, "winrate.png")).subarray(1, 4).toString()).toBe("PNG");
    // --policy (the older name of --strategy) satisfies the required option: the run gets to --m.
    const bad = await tiller(["winrate", ...model(), "--tasks", tasks, "--policy", "bon:n=4", "--m", "1"]);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/^tiller: --m must be an integer ≥ 2/);
  });
});
