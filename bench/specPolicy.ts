/**
 * bench:spec-policy — where a greedy draft of stories260K for stories-heavy-n25 should end, judged
 * offline over every position of the target's greedy text (no timing noise: a shared machine
 * cannot resolve a few percent between policies; this counts instead).
 *
 *   npm run bench:spec-policy [-- --prompts bench|dev] [-- --costs F,c,d]
 *
 * For each prompt the target's greedy text is decoded once; at every position the draft model's
 * greedy continuation (16 tokens) and its own probability of each token are recorded. A policy
 * (where to end a draft) then gives, per round, the tokens drafted (k), draft calls made, and the
 * tokens accepted (the draft's agreement with the target's text), rounds chained as speculative
 * decoding chains them. Its speed-up follows from a cost model of the calls (`--costs`, in ms: a
 * target call costs F + c per position, a draft call d; defaults 13.8,2.5,1.0, measured on a quiet
 * machine at 1 thread: greedy 16.3 ms a token, a 6-position verification 27–31 ms, a stories260K
 * call 0.8–1.5 ms). Policies: the per-token cut (end before a token the draft gives < p), the
 * cumulative cut (end before the token that takes the draft's probability of the whole draft
 * below p: the call that returned it is wasted), and asking while (ask for another token only
 * while the draft's probability of the whole draft is ≥ p, keeping every token returned: the
 * DraftModelDrafter default), each with the draft length fixed at 16 or `auto`'s +2/−1.
 */
import * as fs from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { LlamaCppModel } from "../src/lm/llama/LlamaCppModel.js";
import { loadModel } from "../src/lm/load.js";
import { testModelsPath } from "../test/models.js";
import { specPrompts } from "./specPrompts.js";

const { values: args } = parseArgs({
  options: {
    prompts: { type: "string", default: "bench" },
    costs: { type: "string", default: "13.8,2.5,1.0" },
  },
});
const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const shared = (relative: string) => {
  const path = resolve(root, "../shared", relative);
  if (!fs.existsSync(path))
    throw new Error(`bench:spec-policy: ${path} not found (../shared beside the checkout)`);
  return path;
};
const prompts = specPrompts(args.prompts === "dev" ? "dev" : "bench", shared("eval/identity-dev.jsonl"));
const [F, C, D] = args.costs.split(",").map(Number);
if (![F, C, D].every((x) => Number.isFinite(x) && x >= 0))
  throw new Error(`bench:spec-policy: --costs must be three numbers F,c,d (ms), got "${args.costs}"`);
const MAX_TOKENS = 128;
const AHEAD = 16;

/** The draft's greedy continuation at one position: its tokens and its probability of each. */
interface Ahead {
  tokens: number[];
  p: number[];
}
interface Story {
  tokens: number[];
  ahead: Ahead[];
}

/** The target's greedy text of each prompt, and the draft's 16-token continuation at every position. */
async function stories(target: LlamaCppModel, draft: LlamaCppModel): Promise<Story[]> {
  const out: Story[] = [];
  for (const prompt of prompts) {
    const prefix = await target.tokenize(prompt);
    const [rollout] = await target.rollouts([{ prefix }], { temperature: 0, maxTokens: MAX_TOKENS });
    const tokens = rollout.tokens;
    const ahead: Ahead[] = tokens.map(() => ({ tokens: [], p: [] }));
    // 16 positions at a time, one batched top-1 call per draft step.
    for (let from = 0; from < tokens.length; from += 16) {
      const at = Array.from({ length: Math.min(16, tokens.length - from) }, (_, i) => from + i);
      for (let step = 0; step < AHEAD; step++) {
        const next = await draft.nextTokenDistributions(
          at.map((t) => [...prefix, ...tokens.slice(0, t), ...ahead[t].tokens]),
          { topK: 1 },
        );
        at.forEach((t, i) => {
          ahead[t].tokens.push(next[i][0].token);
          ahead[t].p.push(Math.exp(next[i][0].logprob));
        });
      }
    }
    out.push({ tokens, ahead });
  }
  return out;
}

interface Policy {
  label: string;
  /** Whether the draft ends before token `k` (0-based), given its probabilities so far. */
  ends: (p: readonly number[], k: number, sure: number) => boolean;
  /** Whether the draft asks for token `k` at all, given its probability of the draft so far. Defaults to always. */
  asks?: (k: number, sure: number) => boolean;
  auto: boolean;
}

/** Speed-up over plain greedy, acceptance and tokens per target call of a policy on the stories. */
function simulate(all: readonly Story[], policy: Policy) {
  let time = 0;
  let plain = 0;
  let tokens = 0;
  let calls = 0;
  let drafted = 0;
  let accepted = 0;
  for (const { tokens: text, ahead } of all) {
    let length = 4;
    for (let t = 0; t < text.length; ) {
      const limit = Math.min(policy.auto ? length : AHEAD, text.length - t - 1);
      const { tokens: guess, p } = ahead[t];
      let k = 0;
      let draftCalls = 0;
      let sure = 1;
      while (k < limit) {
        if (policy.asks && !policy.asks(k, sure)) break;
        draftCalls++;
        if (policy.ends(p, k, sure * p[k])) break;
        sure *= p[k];
        k++;
      }
      let a = 0;
      while (a < k && guess[a] === text[t + a]) a++;
      time += F + C * (k + 1) + D * draftCalls;
      t += Math.min(a + 1, text.length - t);
      calls++;
      drafted += k;
      accepted += a;
      if (policy.auto && k > 0) length = a === k ? Math.min(AHEAD, length + 2) : Math.max(1, length - 1);
    }
    plain += text.length * (F + C);
    tokens += text.length;
  }
  return { speedup: plain / time, acceptance: accepted / Math.max(1, drafted), perCall: tokens / calls };
}

const policies: Policy[] = [];
for (const auto of [true, false]) {
  for (const min of [0.2, 0.3, 0.4])
    policies.push({ label: `per-token ${min}`, ends: (p, k) => p[k] < min, auto });
  // Cut after the call: the token that takes the draft below `min` is dropped (its call wasted).
  for (const min of [0.06, 0.08, 0.1, 0.12, 0.15, 0.2])
    policies.push({ label: `cumulative ${min}`, ends: (_p, _k, sure) => sure < min, auto });
  // Cut before the call (the default): ask while the draft so far is at least `min` likely, keep every answer.
  for (const min of [0.1, 0.15, 0.2, 0.25, 0.3, 0.4])
    policies.push({ label: `ask while ${min}`, ends: () => false, asks: (_k, sure) => sure >= min, auto });
}

const load = (path: string) =>
  loadModel(path, { gpu: false, threads: 1, sequences: 16, contextSize: 512, progress: false });
const target = await load(testModelsPath("stories-heavy-n25.gguf"));
const draft = await load(shared("models/stories260K.gguf"));
const all = await stories(target, draft);
await target.dispose();
await draft.dispose();
console.log(
  `${all.length} ${args.prompts} prompts, ${all.reduce((n, s) => n + s.tokens.length, 0)} positions; costs F ${F} + c ${C}/position, draft call ${D} ms\n`,
);
console.log("policy                      length  speed-up  accept  tok/call");
for (const policy of policies) {
  const r = simulate(all, policy);
  console.log(
    `${policy.label.padEnd(26)}  ${(policy.auto ? "auto" : "16").padEnd(6)}  ${r.speedup.toFixed(3).padStart(8)}  ${r.acceptance.toFixed(2).padStart(6)}  ${r.perCall.toFixed(2).padStart(8)}`,
  );
}
