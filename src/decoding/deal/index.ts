import type { Strategy } from "../strategy.js";
import { type DealOptions, resolveDealOptions } from "./options.js";
import { searchDeal } from "./search.js";

export { DEAL_DEFAULTS, DEAL_RAW, type DealOptions, PAPER_FAITHFUL } from "./options.js";

/** DeAL as a strategy (see {@link DealOptions} for the algorithm and tiller's speed-ups). */
export function deal(options: DealOptions): Strategy {
  const resolved = resolveDealOptions(options);
  return { name: "deal", decode: (context) => searchDeal(context, resolved) };
}
