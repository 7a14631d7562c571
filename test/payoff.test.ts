import { describe, expect, it } from "vitest";
import { PayoffMeter } from "../src/decoding/speculative/payoff.js";

/** Feeds the meter `pairs` plain/drafted round pairs: plain rounds add 1 token in 10 ms, drafted ones `tokens` in `ms`. */
function feed(meter: PayoffMeter, pairs: number, drafted: { tokens: number; ms: number }): void {
  for (let recorded = 0; recorded < 2 * pairs; recorded++) {
    const draft = meter.shouldDraft();
    meter.record(
      draft
        ? { drafted: true, ...drafted, first: false }
        : { drafted: false, tokens: 1, ms: 10, first: false },
    );
  }
}

describe("PayoffMeter", () => {
  it("switches a drafter that clearly does not pay off after the first pairs", () => {
    const meter = new PayoffMeter({ pairs: 6 });
    feed(meter, 6, { tokens: 2, ms: 40 }); // 0.5× plain's rate
    expect(meter.off).toBe(true);
    expect(meter.switchOffs).toBe(1);
  });

  it("judges a close verdict again on more pairs: a drafter that pays on them stays on", () => {
    const meter = new PayoffMeter({ pairs: 6 });
    feed(meter, 6, { tokens: 2, ms: 22 }); // 0.91× plain's rate on the first six pairs
    expect(meter.off).toBe(false);
    expect(meter.shouldDraft()).toBe(false); // still judging: a plain round next
    feed(meter, 6, { tokens: 2, ms: 12 }); // then 1.67×: 1.2× over all twelve
    expect(meter.off).toBe(false);
    expect(meter.switchOffs).toBe(0);
    expect(meter.speedup).toBeGreaterThan(1);
  });

  it("a close verdict that stays below the bar on twice the pairs switches off", () => {
    const meter = new PayoffMeter({ pairs: 6 });
    feed(meter, 12, { tokens: 2, ms: 22 });
    expect(meter.off).toBe(true);
    expect(meter.switchOffs).toBe(1);
  });
  it("judges a drafter that keeps paying ever less often, and from the start again once it stops", () => {
    const meter = new PayoffMeter({ pairs: 3, trustRounds: 4 });
    /** Drafted rounds until the meter next asks for a plain round. */
    const onFor = (): number => {
      let rounds = 0;
      while (meter.shouldDraft() && !meter.off && rounds < 1000) {
        meter.record({ drafted: true, tokens: 3, ms: 10, first: false });
        rounds++;
      }
      return rounds;
    };
    feed(meter, 3, { tokens: 3, ms: 10 }); // 3× plain's rate: on
    const runs = [onFor()];
    for (let i = 0; i < 5; i++) {
      feed(meter, 1, { tokens: 3, ms: 10 }); // judged again on one pair: pays again
      runs.push(onFor());
    }
    // The wait doubles (4, 8, 16, …) and stops at 16 × trustRounds.
    expect(runs).toEqual([4, 8, 16, 32, 64, 64]);
    feed(meter, 1, { tokens: 1, ms: 40 }); // stops paying: off
    expect(meter.off).toBe(true);
    for (let i = 0; i < 32; i++) meter.record({ drafted: false, tokens: 1, ms: 10, first: false });
    feed(meter, 3, { tokens: 3, ms: 10 }); // judged on full pairs again, pays: trusted for 4 rounds again
    expect(onFor()).toBe(4);
  });
});
