// Validation as you type: the rewards and the strategy spec go to POST /v1/tiller/validate (the
// server's own parsers), and Run is enabled only while everything parses.
import { callJson } from "./api.js";
import { byId, debounce } from "./dom.js";

/**
 * @typedef {{ok: boolean, rewards: import("./rewardsEditor.js").RewardCheck[],
 *   error: {message: string} | null, strategy: {ok: boolean, error?: {message: string}} | null}} Validation
 */

export class Validator {
  /**
   * @param {() => {rewards: string[], strategy: string}} read what to check
   * @param {(result: Validation) => void} show
   */
  constructor(read, show) {
    this.read = read;
    this.show = show;
    this.sequence = 0;
    /** @type {Promise<Validation | null>} */
    this.latest = Promise.resolve(null);
    this.valid = true;
    this.schedule = debounce(() => {
      this.latest = this.check();
    }, 150);
  }

  /** Checks now; answers that arrive after a newer check started are dropped. */
  async check() {
    const sequence = ++this.sequence;
    const { rewards, strategy } = this.read();
    try {
      /** @type {Validation} */
      const result = await callJson("/v1/tiller/validate", { rewards, strategy });
      if (sequence !== this.sequence) return null;
      this.valid = result.ok;
      this.show(result);
      return result;
    } catch (error) {
      if (sequence !== this.sequence) return null;
      this.valid = false;
      byId("rewards-error").textContent =
        `Cannot check the settings: ${/** @type {Error} */ (error).message}`;
      return null;
    }
  }

  /** Whether the current settings parse (checking them first). */
  async ensure() {
    return (await this.check())?.ok ?? false;
  }
}
