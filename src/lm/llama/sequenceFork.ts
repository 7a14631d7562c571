/**
 * Copies one llama.cpp sequence's cache into another. node-llama-cpp 3.21 has no sequence copy
 * (llama.cpp's `seq_cp`), but it saves a sequence's state to a file and loads it into another
 * sequence of a context of the same model (the same context or another of the pool's), bit for
 * bit. Through a RAM-backed folder that costs 0.3–1.6 ms (save and load, measured on
 * stories-heavy with a 62-token context; the first copy is slowest), while evaluating a token
 * again costs ~2 ms on a model of real size:
 * a search whose candidates share a freshly committed prefix (DeAL, AMBEDKAR, Best-of-N) then
 * evaluates that prefix once instead of once per sequence.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LlamaContextSequence } from "node-llama-cpp";

/** One planned copy: `donor`'s cache into `recipient` (indices into the pool's sequences). */
export interface ForkPlan {
  donor: number;
  recipient: number;
}

/**
 * Which assigned sequences should first take a copy of another sequence: one whose cache shares
 * at least `minTokens` more reusable tokens with the prefix it is about to hold than its own
 * does. `shared[p][s]` is what prefix `p` has in common with sequence `s`'s cache; `assigned[p]`
 * the sequence it goes to; `reusable[p]` caps what it can reuse (the tokens before the first
 * position whose output is read). A donor may be any sequence, also one assigned to another
 * prefix of the wave (every donor is saved before any recipient is loaded).
 */
export function planForks(
  shared: readonly (readonly number[])[],
  assigned: readonly number[],
  reusable: readonly number[],
  minTokens: number,
): ForkPlan[] {
  const plans: ForkPlan[] = [];
  shared.forEach((row, p) => {
    const recipient = assigned[p];
    let best = { donor: -1, shared: Math.min(row[recipient], reusable[p]) + minTokens - 1 };
    row.forEach((length, donor) => {
      const usable = Math.min(length, reusable[p]);
      if (donor !== recipient && usable > best.shared) best = { donor, shared: usable };
    });
    if (best.donor >= 0) plans.push({ donor: best.donor, recipient });
  });
  return plans;
}

/** Folders still on disk, removed at exit if their model was never disposed. */
const liveFolders = new Set<string>();
let exitHookInstalled = false;

/** Saves and loads sequence states through one private folder (RAM-backed where the system has one). */
export class SequenceForker {
  private folder: string | undefined;
  /** Set after a failed copy (a full disk, no room for the folder): copying stops, evaluation goes on. */
  private broken = false;

  /** `base`: where the private folder is made. Defaults to /dev/shm where it exists, else the OS temp folder. */
  constructor(private readonly base = existsSync("/dev/shm") ? "/dev/shm" : tmpdir()) {}

  /**
   * Applies `plans`: every donor saved first, then each recipient loaded from its donor's file.
   * A copy is only a shortcut: if one fails, its recipients are emptied (they then evaluate their
   * prefixes in full, as without copies) and no further copy is tried.
   */
  async apply(sequences: readonly LlamaContextSequence[], plans: readonly ForkPlan[]): Promise<void> {
    if (plans.length === 0 || this.broken) return;
    try {
      const folder = this.ensureFolder();
      const file = (donor: number) => join(folder, `sequence-${donor}.state`);
      for (const donor of new Set(plans.map((plan) => plan.donor)))
        await sequences[donor].saveStateToFile(file(donor));
      // The file comes from a sequence of a context of this very model (the pool's contexts share it), so the model always matches.
      for (const { donor, recipient } of plans)
        await sequences[recipient].loadStateFromFile(file(donor), { acceptRisk: true });
    } catch {
      this.broken = true;
      for (const { recipient } of plans) await sequences[recipient].clearHistory().catch(() => undefined);
    }
  }

  /** Removes the folder (the pool's model is being disposed). */
  dispose(): void {
    if (!this.folder) return;
    rmSync(this.folder, { recursive: true, force: true });
    liveFolders.delete(this.folder);
    this.folder = undefined;
  }

  private ensureFolder(): string {
    if (this.folder) return this.folder;
    this.folder = mkdtempSync(join(this.base, "tiller-kv-"));
    liveFolders.add(this.folder);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.once("exit", () => {
        for (const folder of liveFolders) rmSync(folder, { recursive: true, force: true });
      });
    }
    return this.folder;
  }
}
