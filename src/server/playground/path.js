// Which candidate of each search step the final text took (the chosen path through the tree).

/**
 * @typedef {{token: number, text: string, logprob: number, rollout?: string, reward?: number,
 *   score: number, kept: boolean, vetoed?: boolean, lexical?: boolean}} Candidate
 * @typedef {{step: number, prefixLength: number, candidates: Candidate[], note?: string}} TraceStep
 */

/**
 * The chosen candidate's index at each step (-1 for a step without candidates). With the final
 * text's token pieces, a step's choice is the kept candidate the text continues with at that
 * step's token offset (with several beams, only one of the kept ones is on the final path);
 * without them (still decoding), it is the best kept candidate.
 * @param {TraceStep[]} steps
 * @param {{text: string, pieces: string[]} | null} final
 * @returns {number[]}
 */
export function chosenPath(steps, final) {
  /** @type {number[]} */
  let offsets = [];
  if (final) {
    offsets = [0];
    for (const piece of final.pieces) offsets.push(offsets[offsets.length - 1] + piece.length);
  }
  return steps.map((step) => {
    const kept = step.candidates.flatMap((c, i) => (c.kept ? [i] : []));
    if (kept.length === 0) return -1;
    if (!final || kept.length === 1) return kept[0];
    const at = offsets[Math.min(step.prefixLength, offsets.length - 1)];
    return kept.find((i) => final.text.startsWith(step.candidates[i].text, at)) ?? kept[0];
  });
}
