/**
 * Shared plotting helper: a Vega-Lite spec → SVG (vega's headless View, renderer "none") → PNG
 * (@resvg/resvg-js, system fonts). Any command that draws a figure (eval's quality-vs-cost plot,
 * InfAlign's win-rate curves, benchmarks) goes through `renderPlot` / `writePlot`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Resvg } from "@resvg/resvg-js";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import { writeFileAtomic } from "../util/atomicWrite.js";
import { guardFs } from "../util/fsErrors.js";

export type { TopLevelSpec as VegaLiteSpec } from "vega-lite";

export interface PlotOptions {
  /** PNG scale factor relative to the SVG's size (default 2, for a crisp figure). */
  pngScale?: number;
  /** Background colour when the spec sets none (default white, so the PNG is not transparent). */
  background?: string;
}

export interface RenderedPlot {
  svg: string;
  png: Buffer;
}

/** Renders a Vega-Lite spec to an SVG string and PNG bytes, without a browser or canvas. */
export async function renderPlot(spec: TopLevelSpec, options: PlotOptions = {}): Promise<RenderedPlot> {
  const withBackground = { background: options.background ?? "white", ...spec } as TopLevelSpec;
  const vgSpec = compile(withBackground).spec;
  const view = new vega.View(vega.parse(vgSpec), { renderer: "none" });
  let svg: string;
  try {
    svg = await view.toSVG();
  } finally {
    view.finalize();
  }
  const resvg = new Resvg(svg, {
    fitTo: { mode: "zoom", value: options.pngScale ?? 2 },
    font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" },
  });
  const png = resvg.render().asPng();
  return { svg, png };
}

/**
 * Writes `outBase.svg` and `outBase.png` (parent folder created if missing), each atomically, and
 * returns their paths. `outBase` has no extension, e.g. `out/quality-vs-cost`.
 */
export async function writePlot(
  spec: TopLevelSpec,
  outBase: string,
  options: PlotOptions = {},
): Promise<{ svg: string; png: string }> {
  const { svg, png } = await renderPlot(spec, options);
  const folder = path.dirname(path.resolve(outBase));
  guardFs("create folder", folder, () => fs.mkdirSync(folder, { recursive: true }));
  const paths = { svg: `${outBase}.svg`, png: `${outBase}.png` };
  writeFileAtomic(paths.svg, svg);
  writeFileAtomic(paths.png, png);
  return paths;
}
