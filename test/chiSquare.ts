/**
 * Pearson's chi-square goodness-of-fit test of observed counts against expected probabilities,
 * for the statistical checks of speculative sampling (test/speculative.test.ts, bench/spec.ts).
 * Cells expected fewer than `minExpected` times are pooled into one, as the test requires.
 */
export interface ChiSquareResult {
  statistic: number;
  degreesOfFreedom: number;
  /** P(χ² ≥ statistic) under the null hypothesis (observed ~ expected). */
  pValue: number;
  samples: number;
}

export function chiSquareTest(
  observed: ReadonlyMap<string, number>,
  expected: ReadonlyMap<string, number>,
  minExpected = 5,
): ChiSquareResult {
  let samples = 0;
  for (const count of observed.values()) samples += count;
  let statistic = 0;
  let cells = 0;
  let keptMass = 0;
  let keptObserved = 0;
  for (const [key, probability] of expected) {
    const e = probability * samples;
    if (e < minExpected) continue;
    const o = observed.get(key) ?? 0;
    statistic += (o - e) ** 2 / e;
    keptMass += probability;
    keptObserved += o;
    cells++;
  }
  // Everything else (rare cells, and any outcome the expectation does not list) is one cell.
  const restExpected = Math.max(0, 1 - keptMass) * samples;
  const restObserved = samples - keptObserved;
  if (restExpected > 1e-9) {
    statistic += (restObserved - restExpected) ** 2 / restExpected;
    cells++;
  } else if (restObserved > 0) statistic = Number.POSITIVE_INFINITY;
  const degreesOfFreedom = Math.max(1, cells - 1);
  return { statistic, degreesOfFreedom, pValue: chiSquareSurvival(statistic, degreesOfFreedom), samples };
}

/** P(χ²_k ≥ x) = Q(k/2, x/2), the regularized upper incomplete gamma function. */
export function chiSquareSurvival(x: number, k: number): number {
  if (!(x > 0)) return 1;
  if (!Number.isFinite(x)) return 0;
  return gammaQ(k / 2, x / 2);
}

function gammaQ(a: number, x: number): number {
  if (x < a + 1) return 1 - gammaPSeries(a, x);
  return gammaQContinuedFraction(a, x);
}

/** P(a, x) by its series (converges fast for x < a + 1). */
function gammaPSeries(a: number, x: number): number {
  let sum = 1 / a;
  let term = sum;
  for (let n = 1; n < 1000; n++) {
    term *= x / (a + n);
    sum += term;
    if (Math.abs(term) < Math.abs(sum) * 1e-15) break;
  }
  return sum * Math.exp(-x + a * Math.log(x) - logGamma(a));
}

/** Q(a, x) by Lentz's continued fraction (converges fast for x ≥ a + 1). */
function gammaQContinuedFraction(a: number, x: number): number {
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return Math.exp(-x + a * Math.log(x) - logGamma(a)) * h;
}

/** ln Γ(x), Lanczos approximation (g = 7, 9 terms). */
function logGamma(x: number): number {
  const g = 7;
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const y = x - 1;
  let sum = c[0];
  for (let i = 1; i < g + 2; i++) sum += c[i] / (y + i);
  const t = y + g + 0.5;
  return 0.5 * Math.log(2 * Math.PI) + (y + 0.5) * Math.log(t) - t + Math.log(sum);
}
