import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { gzipSync } from "node:zlib";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TraceStep } from "../src/decoding/types.js";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import type { RunningServer } from "../src/server/server.js";
import { cliPath, loadTestModel, repoRoot, testModelPath } from "./helpers.js";
import { COPY_PROMPT, type PlantedIndex, plantedIndex } from "./plantedIndex.js";
import { get, openAiError, post, serve } from "./serverHarness.js";

interface Validation {
  ok: boolean;
  rewards: { ok: boolean; weight?: number | null; error?: { message: string; code: string | null } }[];
  error: { message: string } | null;
  strategy: { ok: boolean; error?: { message: string } } | null;
}

/*
 * The playground in a real browser (Debian's chromium driven by playwright-core) against a real
 * server on loopback with the stories model and a small corpus index. Screenshots of each view
 * go to bench-out/playground/; timings are printed (not asserted).
 */

/** What the page exposes on `window` for scripts, as the test reads it (no DOM types here). */
interface PageGlobals {
  tillerPlayground: {
    runner: {
      last: {
        text: string;
        steps: TraceStep[];
        tiller: { alignment: { provenance: false | { veto: string } } };
      };
      timing: Record<string, number | null>;
    };
    tree: { collapseSetByUser: boolean };
    renderTrace(steps: TraceStep[]): Promise<{ buildMs: number; layoutMs: number; paintMs: number }>;
  };
  document: {
    getElementById(id: string): { checked: boolean } | null;
    documentElement: { scrollWidth: number };
  };
  innerWidth: number;
  performance: { getEntriesByName(name: string): { startTime: number }[] };
}

const CHROMIUM = process.env.TILLER_CHROMIUM ?? "/usr/bin/chromium";
const SHOTS = path.join(repoRoot, "bench-out/playground");
const ASSETS = path.join(repoRoot, "src/server/playground");

let model: LlamaCppModel;
let planted: PlantedIndex;
let server: RunningServer;
let browser: Browser;
const consoleErrors: string[] = [];
const figures: Record<string, unknown> = {};

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM))
    throw new Error(
      `chromium not found at ${CHROMIUM}: install it (apt-get install -y chromium; .ci/run does) or set TILLER_CHROMIUM`,
    );
  fs.mkdirSync(SHOTS, { recursive: true });
  model = await loadTestModel({ sequences: 16 });
  planted = await plantedIndex(model);
  server = await serve(model, { index: planted.index, batchCapacity: 16 });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  planted?.cleanup();
  await model?.dispose();
  if (Object.keys(figures).length) console.log(`playground figures: ${JSON.stringify(figures, null, 2)}`);
});

async function openPage(viewport = { width: 1280, height: 800 }, url = `${server.url}/`): Promise<Page> {
  const page = await browser.newPage({ viewport, acceptDownloads: true });
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(`${message.text()} (${message.location().url})`);
  });
  page.on("pageerror", (error) => consoleErrors.push(error.message));
  await page.goto(url);
  await page.waitForSelector("body[data-ready=true]");
  return page;
}

/** Sets the reward rows to `specs` (adding or removing rows). */
async function setRewards(page: Page, specs: string[]): Promise<void> {
  while ((await page.locator(".reward-row").count()) > specs.length)
    await page.locator(".reward-row button.icon").last().click();
  while ((await page.locator(".reward-row").count()) < specs.length) await page.click("#add-reward");
  const inputs = page.locator(".reward-spec");
  for (let i = 0; i < specs.length; i++) await inputs.nth(i).fill(specs[i]);
}

async function runAndWait(page: Page): Promise<void> {
  await expect.poll(() => page.locator("#run").isEnabled(), { timeout: 10_000 }).toBe(true);
  await page.click("#run");
  // "done" once the text, the tree, the reward curve and the attribution are all shown.
  await page.waitForSelector("body[data-run=done], body[data-run=failed]", { timeout: 120_000 });
  const warnings = await page.locator("#warnings .error").allTextContents();
  expect(await page.getAttribute("body", "data-run"), warnings.join("; ")).toBe("done");
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

describe("the playground page", () => {
  it("is served at / with its modules, offline, and weighs under 300 KB gzipped", async () => {
    const page = await get(server, "/");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    const files = fs.readdirSync(ASSETS).filter((f) => /\.(js|css)$/.test(f));
    // Every module is preloaded (the page does not wait for one import level after another).
    for (const file of files.filter((f) => f.endsWith(".js") && f !== "main.js"))
      expect(page.text, file).toContain(`<link rel="modulepreload" href="/playground/${file}">`);
    let raw = 0;
    let gzipped = 0;
    for (const file of files) {
      const reply = await get(server, `/playground/${file}`);
      expect(reply.status, file).toBe(200);
      expect(reply.text, file).toBe(fs.readFileSync(path.join(ASSETS, file), "utf8"));
      // Nothing is fetched from elsewhere: the only absolute URL is SVG's namespace.
      expect(reply.text.replaceAll("http://www.w3.org/2000/svg", ""), file).not.toMatch(/https?:\/\//);
      raw += Buffer.byteLength(reply.text);
      gzipped += gzipSync(reply.text).length;
    }
    figures.assets = {
      files: files.length,
      rawKB: +(raw / 1024).toFixed(1),
      gzipKB: +(gzipped / 1024).toFixed(1),
    };
    expect(gzipped).toBeLessThan(300 * 1024);
    expect((await get(server, "/playground/nope.js")).status).toBe(404);
  });

  it("first render: the page is ready (capabilities loaded, settings checked), cold and reloaded", async () => {
    const page = await openPage();
    const timing = () =>
      page.evaluate(() => {
        const { performance } = globalThis as unknown as PageGlobals;
        return {
          ready: performance.getEntriesByName("tiller-ready")[0]?.startTime ?? null,
          firstContentfulPaint: performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? null,
        };
      });
    const cold = await timing();
    await page.reload();
    await page.waitForSelector("body[data-ready=true]");
    const reloaded = await timing();
    figures.firstRenderMs = { cold, reloaded };
    expect(cold.ready).not.toBeNull();
    expect(reloaded.ready).not.toBeNull();
    // The stories model has no chat template, so Chat is off and says why.
    expect(await page.locator('input[name="mode"][value="chat"]').isDisabled()).toBe(true);
    expect(await page.locator("#chat-note").isVisible()).toBe(true);
    expect(await page.locator("#strategy").inputValue()).toBe("deal");
    expect(await page.locator("#provenance-controls").isVisible()).toBe(true);
    // No draft/verifier models are loaded, so their pickers stay hidden.
    expect(await page.locator("#role-models").isVisible()).toBe(false);
    await shot(page, "start");
    await page.close();
  });

  it("runs DeAL with two keyword rewards: the tree shows the steps, 5 candidates each, and the chosen path", async () => {
    const page = await openPage();
    await page.fill("#prompt", "Once upon a time, there was a little dog");
    await page.fill("#max-tokens", "32");
    await setRewards(page, ["keywords:ball", "keywords:tree"]);
    await page.fill("#param-l", "4");
    // Raw DeAL lists all k candidates each step (the default's floor and candidate slack drop unlikely ones).
    await page.click(".more-params summary");
    await page.selectOption("#param-raw", "true");
    await runAndWait(page);

    const run = await page.evaluate(() => {
      const { runner } = (globalThis as unknown as PageGlobals).tillerPlayground;
      return { text: runner.last.text, steps: runner.last.steps, timing: runner.timing };
    });
    figures.dealRun = run.timing;
    expect(run.text.length).toBeGreaterThan(0);
    // The streamed text is the final text.
    expect(await page.locator("#output .gen").textContent()).toBe(run.text);
    const stepsWithCandidates = run.steps.filter((s) => s.candidates.length > 0);
    expect(stepsWithCandidates.length).toBeGreaterThanOrEqual(1);
    const columns = page.locator("#tree .col");
    expect(await columns.count()).toBe(run.steps.length);
    const perColumn = await columns.evaluateAll((cols) =>
      cols.map((c) => c.querySelectorAll(".cand").length),
    );
    expect(perColumn.some((n) => n >= 5)).toBe(true);
    // One chosen candidate per step with candidates, each kept, linked by highlighted connectors.
    expect(await page.locator("#tree .cand.chosen").count()).toBe(stepsWithCandidates.length);
    expect(await page.locator("#tree .cand.chosen:not(.kept)").count()).toBe(0);
    expect(await page.locator("#tree .link path.on").count()).toBe(stepsWithCandidates.length - 1);
    // The chosen tokens spell the start of the output.
    const first = await page.locator("#tree .cand.chosen .tok").first().textContent();
    expect(run.text.startsWith((first ?? "").replaceAll("␣", " "))).toBe(true);

    // Hover shows the lookahead text; the keyboard moves along the tree.
    const second = page.locator('#tree .cand[data-s="0"]').nth(1);
    await second.hover();
    const rollout = run.steps[0].candidates[1].rollout ?? "";
    await expect.poll(() => page.locator("#tree-detail .lookahead").textContent()).toContain(rollout.trim());
    await page.locator('#tree .cand[data-s="0"]').first().focus();
    await page.keyboard.press("ArrowRight");
    expect(await page.locator(":focus").getAttribute("data-s")).toBe("1");
    await page.keyboard.press("ArrowDown");
    expect(await page.locator(":focus").getAttribute("data-r")).toBe("1");
    await shot(page, "tree");

    // Export: the trace as JSON.
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#export-trace")]);
    const exported = JSON.parse(fs.readFileSync((await download.path()) as string, "utf8"));
    expect(exported.steps.length).toBe(run.steps.length);
    expect(exported.text).toBe(run.text);

    // Rewards over time: one line per reward plus their weighted sum, exportable as SVG and PNG.
    await page.click("#tab-rewards");
    expect(await page.locator("#chart svg > title").textContent()).toBe("Rewards along the committed text");
    expect(await page.locator("#chart svg path[stroke-width='2']").count()).toBe(3);
    expect(await page.locator("#reward-table tbody tr").count()).toBe(3);
    await shot(page, "rewards");
    const [svgFile] = await Promise.all([page.waitForEvent("download"), page.click("#export-svg")]);
    expect(fs.readFileSync((await svgFile.path()) as string, "utf8")).toMatch(
      /^<\?xml[\s\S]*<svg[\s\S]*keywords/,
    );
    const [pngFile] = await Promise.all([page.waitForEvent("download"), page.click("#export-png")]);
    const png = fs.readFileSync((await pngFile.path()) as string);
    expect(png.subarray(1, 4).toString()).toBe("PNG");
    await page.close();
  });

  it("an invalid reward spec or strategy parameter shows the error and disables Run", async () => {
    const page = await openPage();
    await setRewards(page, ["keywords:ball", "keywords:"]);
    await expect.poll(() => page.locator("#reward-1-error").textContent()).toContain("keyword list is empty");
    expect(await page.locator("#run").isDisabled()).toBe(true);
    expect(await page.locator("#reward-1").getAttribute("aria-invalid")).toBe("true");
    await shot(page, "invalid");
    await page.locator(".reward-spec").nth(1).fill("keywords:tree");
    await expect.poll(() => page.locator("#run").isEnabled()).toBe(true);
    expect(await page.locator("#reward-1-error").textContent()).toBe("");
    await page.fill("#param-k", "abc");
    await expect.poll(() => page.locator("#strategy-error").textContent()).toContain("k must be an integer");
    expect(await page.locator("#run").isDisabled()).toBe(true);
    await page.fill("#param-k", "");
    await expect.poll(() => page.locator("#run").isEnabled()).toBe(true);
    await page.close();
  });

  it("provenance: a run that copies the corpus highlights the span; clicking it shows its document", async () => {
    const page = await openPage();
    await page.fill("#prompt", COPY_PROMPT);
    await page.fill("#max-tokens", "48");
    await setRewards(page, ["sentiment"]);
    await page.selectOption("#strategy", "greedy");
    await runAndWait(page);
    await page.click("#tab-provenance");
    const span = page.locator("#provenance-text mark.span").first();
    await span.waitFor({ timeout: 30_000 });
    const spanText = (await span.textContent()) ?? "";
    expect(spanText.trim().length).toBeGreaterThan(0);
    // The highlighted text is verbatim corpus text (the planted document; the index is lowercased).
    const corpus = fs.readFileSync(path.join(path.dirname(planted.dir), "corpus.txt"), "utf8").toLowerCase();
    expect(corpus).toContain(spanText.toLowerCase().trim());
    await span.click();
    const detail = page.locator("#span-detail");
    await expect.poll(() => detail.locator(".doc").count()).toBeGreaterThan(0);
    expect(await detail.textContent()).toMatch(/count \d+ · BCI/);
    const match = (await detail.locator(".doc blockquote mark").first().textContent()) ?? "";
    expect(match.length).toBeGreaterThan(0);
    expect(corpus).toContain(match.toLowerCase().trim());
    // Keyboard: the span is reachable and opens with Enter too.
    await span.focus();
    await page.keyboard.press("Enter");
    expect(await page.locator("#provenance-text mark.selected").count()).toBe(1);
    await shot(page, "provenance");

    // With the Prov-Decode switch on, the request carries the veto and the server applied it.
    await page.check("#prov-decode");
    await runAndWait(page);
    const alignment = await page.evaluate(
      () => (globalThis as unknown as PageGlobals).tillerPlayground.runner.last.tiller.alignment,
    );
    expect(alignment.provenance ? alignment.provenance.veto : null).toBe("hard");

    // TraceShield without retries refuses the copy, and the run facts say so.
    await page.uncheck("#prov-decode");
    await page.check("#shield");
    await page.fill("#shield-regenerate", "0");
    await runAndWait(page);
    expect(await page.locator("#run-info").textContent()).toMatch(/TraceShield\s*refused after 1 attempt/);
    expect(await page.locator("#run-info").textContent()).toContain("content_filter");
    await page.close();
  });

  it("compare shows the same prompt under two settings side by side with a reward table", async () => {
    const page = await openPage();
    await page.fill("#max-tokens", "24");
    await setRewards(page, ["keywords:ball", "keywords:tree"]);
    await page.click("#tab-compare");
    await page.fill("#compare-a", "deal:k=5,l=4");
    await page.fill("#compare-b", "greedy");
    await expect.poll(() => page.locator("#compare-run").isEnabled()).toBe(true);
    await page.click("#compare-run");
    await page.locator("#compare-table tbody tr").first().waitFor({ timeout: 120_000 });
    expect(await page.locator(".compare-column").count()).toBe(2);
    expect(await page.locator("#compare-table thead th").allTextContents()).toEqual([
      "measure",
      "Setting A",
      "Setting B",
    ]);
    expect(await page.locator("#compare-table tr.reward th").allTextContents()).toEqual([
      "keywords",
      "keywords#2",
      "weighted sum",
    ]);
    expect(await page.locator(".compare-column .error").count()).toBe(0);
    await shot(page, "compare");
    // A bad spec on one side is caught before running.
    await page.fill("#compare-b", "beam:width=0");
    await expect.poll(() => page.locator("#compare-b-error").textContent()).toContain("width");
    expect(await page.locator("#compare-run").isDisabled()).toBe(true);
    await page.close();
  });

  it("stays usable on a narrow window (the tree scrolls inside its panel)", async () => {
    const page = await openPage({ width: 420, height: 900 });
    await page.fill("#max-tokens", "16");
    await runAndWait(page);
    expect(await page.locator("#tree .col").count()).toBeGreaterThan(0);
    const overflow = await page.evaluate(() => {
      const page = globalThis as unknown as PageGlobals;
      return page.document.documentElement.scrollWidth - page.innerWidth;
    });
    expect(overflow).toBeLessThanOrEqual(0);
    await shot(page, "narrow");
    await page.close();
  });

  it("Stop aborts a run", async () => {
    const page = await openPage();
    await page.fill("#max-tokens", "200");
    await page.fill("#param-l", "32");
    await page.click("#run");
    await expect.poll(() => page.locator("#stop").isEnabled()).toBe(true);
    await page.click("#stop");
    await page.waitForSelector("body[data-run=failed]", { timeout: 60_000 });
    expect(await page.locator("#warnings .error").textContent()).toBe("stopped");
    await expect.poll(() => page.locator("#run").isEnabled()).toBe(true);
    await page.close();
  });

  it("renders a 128-step × 5-candidate trace (timed), expanded and collapsed", async () => {
    const page = await openPage();
    const steps = syntheticTrace(128, 5);
    const time = (collapsed: boolean) =>
      page.evaluate(
        async ({ steps, collapsed }) => {
          const { tillerPlayground, document } = globalThis as unknown as PageGlobals;
          tillerPlayground.tree.collapseSetByUser = true;
          const box = document.getElementById("collapse");
          if (box) box.checked = collapsed;
          return tillerPlayground.renderTrace(steps);
        },
        { steps, collapsed },
      );
    const expanded = await time(false);
    expect(await page.locator("#tree .cand").count()).toBe(128 * 5);
    expect(await page.locator("#tree .cand.chosen").count()).toBe(128);
    await shot(page, "tree-128x5");
    const collapsed = await time(true);
    expect(await page.locator("#tree .cand").count()).toBe(128);
    // A collapsed step opens with its button.
    await page.locator('#tree [data-expand="3"]').click();
    expect(await page.locator('#tree .cand[data-s="3"]').count()).toBe(5);
    figures.tree128x5 = { expanded, collapsed };
    await page.close();
  });

  it("logged no console errors", () => {
    expect(consoleErrors).toEqual([]);
  });
});

describe("the playground's endpoints", () => {
  it("validates reward specs and strategies with the server's parsers", async () => {
    const reply = await post(server, "/v1/tiller/validate", {
      rewards: ["keywords:dog", "2*sentiment", "bogus", "lexicon:/etc/passwd"],
      strategy: "deal:k=0",
    });
    expect(reply.status).toBe(200);
    const body = reply.body as Validation;
    expect(body.ok).toBe(false);
    expect(body.rewards.map((r) => r.ok)).toEqual([true, true, false, false]);
    expect(body.rewards[1].weight).toBe(2);
    expect(body.rewards[2].error?.code).toBe("unknown_reward");
    expect(body.rewards[3].error?.code).toBe("file_access_refused");
    expect(body.strategy?.error?.message).toMatch(/k must be an integer ≥ 1/);
    const good = (await post(server, "/v1/tiller/validate", { rewards: ["keywords:dog"], strategy: "deal" }))
      .body as Validation;
    expect(good.ok).toBe(true);
    const weights = (
      await post(server, "/v1/tiller/validate", { rewards: ["keywords:dog", "sentiment"], weights: [1] })
    ).body as Validation;
    expect(weights.ok).toBe(false);
    expect(weights.error?.message).toMatch(/one weight per reward/);
  });

  it("scores each reward along a text's token prefixes", async () => {
    const reply = await post(server, "/v1/tiller/rewards/along", {
      prompt: "Once upon a time",
      text: " there was a dog. The dog found a ball under a tree.",
      rewards: ["keywords:ball,tree", "length:5-50w"],
      points: 8,
    });
    expect(reply.status).toBe(200);
    const body = reply.body as {
      names: string[];
      tokens: number;
      points: { tokens: number; values: Record<string, number> }[];
    };
    expect(body.names).toEqual(["keywords", "length"]);
    const keywords = body.points.map((p) => p.values.keywords);
    expect(keywords[0]).toBe(0);
    expect(keywords.at(-1)).toBe(1);
    for (let i = 1; i < keywords.length; i++) expect(keywords[i]).toBeGreaterThanOrEqual(keywords[i - 1]);
    expect(body.points.at(-1)?.tokens).toBe(body.tokens);
    const bad = await post(server, "/v1/tiller/rewards/along", { prompt: "", text: "x", rewards: ["nope"] });
    expect(bad.status).toBe(400);
    expect(openAiError(bad).param).toBe("rewards");
  });

  it("with an API key, the page's files stay open while the API asks for the key", async () => {
    const keyed = await serve(model, { apiKey: "s3cret-key-longer" });
    try {
      expect((await get(keyed, "/")).status).toBe(200);
      expect((await get(keyed, "/playground/main.js")).status).toBe(200);
      expect((await get(keyed, "/v1/tiller/capabilities")).status).toBe(401);
      const authorized = await get(keyed, "/v1/tiller/capabilities", {
        authorization: "Bearer s3cret-key-longer",
      });
      expect(authorized.status).toBe(200);
      expect((authorized.body as { index: unknown }).index).toBeNull();
    } finally {
      await keyed.close();
    }
  });
});

describe("tiller playground", () => {
  it("--no-open serves the page and prints its address (built CLI)", async () => {
    if (!fs.existsSync(path.join(repoRoot, "dist/server/playground/index.html")))
      throw new Error("dist/server/playground is missing: run `npm run build` first (npm test does)");
    const child = spawn(
      process.execPath,
      [
        cliPath,
        "playground",
        "--no-open",
        "--port",
        "0",
        "--model",
        testModelPath(),
        "--no-gpu",
        "--threads",
        "1",
        "--log-level",
        "silent",
      ],
      { env: { ...process.env, NO_COLOR: "1" } },
    );
    try {
      const url = await addressOf(child);
      const page = await fetch(url);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain("<title>tiller playground</title>");
      expect((await fetch(`${url}playground/style.css`)).status).toBe(200);
    } finally {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    }
  });
});

/** Resolves with the page address the CLI prints, or rejects with its stderr if it exits first. */
function addressOf(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let stderr = "";
    child.stderr?.on("data", (chunk) => {
      stderr += chunk;
      const match = /playground at (http:\/\/\S+\/)/.exec(stderr);
      if (match) resolve(match[1]);
    });
    child.once("exit", (code) => reject(new Error(`tiller playground exited (${code}): ${stderr}`)));
  });
}

/** A DeAL-shaped trace: each step ranks `k` candidates, the first kept (and chosen). */
function syntheticTrace(stepCount: number, k: number) {
  return Array.from({ length: stepCount }, (_, s) => ({
    step: s,
    prefixLength: s * 2,
    candidates: Array.from({ length: k }, (_, c) => ({
      token: 100 + c,
      text: ` w${s}_${c}`,
      logprob: -0.5 - c,
      rollout: ` and then the story went on ${c}`,
      reward: (c % 3) / 2,
      score: 10 - c,
      kept: c === 0,
      vetoed: c === 3,
      lexical: c === 4,
    })),
  }));
}
