// A line chart drawn as a self-contained SVG (presentation attributes, no stylesheet), so the
// same markup shows on the page and exports as an SVG or PNG file.
import { escapeHtml } from "./dom.js";

/** Okabe–Ito colours: distinguishable with the common colour-vision deficiencies. */
const COLOURS = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000"];
const W = 720;
const H = 300;
const M = { top: 30, right: 16, bottom: 44, left: 56 };

/**
 * @typedef {{name: string, points: {x: number, y: number}[], dashed?: boolean}} Series
 */

/**
 * About `count` round tick values covering [min, max].
 * @param {number} min
 * @param {number} max
 * @param {number} count
 */
export function niceTicks(min, max, count) {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? raw;
  const ticks = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step)
    ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/**
 * @param {Series[]} series
 * @param {{title: string, xLabel: string, yLabel: string}} labels
 * @returns {string} the SVG markup
 */
export function lineChart(series, labels) {
  const finite = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const xs = finite.map((p) => p.x);
  const ys = finite.map((p) => p.y);
  let [x0, x1] = [Math.min(0, ...xs), Math.max(1, ...xs)];
  let [y0, y1] = [Math.min(0, ...ys), Math.max(...ys, 0)];
  if (y1 - y0 < 1e-9) [y0, y1] = [y0 - 1, y1 + 1];
  const pad = (y1 - y0) * 0.05;
  [y0, y1] = [y0 - (y0 < 0 ? pad : 0), y1 + pad];
  if (x1 === x0) x1 = x0 + 1;
  const px = (/** @type {number} */ x) => M.left + ((x - x0) / (x1 - x0)) * (W - M.left - M.right);
  const py = (/** @type {number} */ y) => H - M.bottom - ((y - y0) / (y1 - y0)) * (H - M.top - M.bottom);
  const parts = [];
  for (const t of niceTicks(y0, y1, 5))
    parts.push(
      `<line x1="${M.left}" x2="${W - M.right}" y1="${py(t)}" y2="${py(t)}" stroke="#d9dde3" stroke-width="1"/>`,
      `<text x="${M.left - 6}" y="${py(t) + 4}" text-anchor="end" font-size="11" fill="#3d4450">${t}</text>`,
    );
  for (const t of niceTicks(x0, x1, 8))
    parts.push(
      `<line x1="${px(t)}" x2="${px(t)}" y1="${H - M.bottom}" y2="${H - M.bottom + 4}" stroke="#3d4450"/>`,
      `<text x="${px(t)}" y="${H - M.bottom + 16}" text-anchor="middle" font-size="11" fill="#3d4450">${t}</text>`,
    );
  parts.push(
    `<line x1="${M.left}" x2="${W - M.right}" y1="${H - M.bottom}" y2="${H - M.bottom}" stroke="#3d4450"/>`,
    `<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${H - M.bottom}" stroke="#3d4450"/>`,
    `<text x="${(M.left + W - M.right) / 2}" y="${H - 8}" text-anchor="middle" font-size="12" fill="#1d232b">${escapeHtml(labels.xLabel)}</text>`,
    `<text transform="translate(14 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle" font-size="12" fill="#1d232b">${escapeHtml(labels.yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const points = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
    if (points.length === 0) return;
    const d = points.map((p, j) => `${j ? "L" : "M"}${px(p.x).toFixed(1)} ${py(p.y).toFixed(1)}`).join("");
    parts.push(
      `<path d="${d}" fill="none" stroke="${colour}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ""}><title>${escapeHtml(s.name)}</title></path>`,
    );
    if (points.length <= 64)
      for (const p of points)
        parts.push(
          `<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="2.5" fill="${colour}"/>`,
        );
  });
  // Legend above the plot, left to right (widths estimated from the names).
  let lx = M.left;
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    parts.push(
      `<line x1="${lx}" x2="${lx + 20}" y1="10" y2="10" stroke="${colour}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ""}/>`,
      `<text x="${lx + 25}" y="14" font-size="12" fill="#1d232b">${escapeHtml(s.name)}</text>`,
    );
    lx += 40 + s.name.length * 7;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-labelledby="chart-title" font-family="system-ui, sans-serif"><title id="chart-title">${escapeHtml(labels.title)}</title><rect width="${W}" height="${H}" fill="#ffffff"/>${parts.join("")}</svg>`;
}
