// Downloads: the trace as JSON, the chart as SVG or PNG (drawn from the same SVG, offline).

/**
 * @param {string} name
 * @param {Blob} blob
 */
function download(name, blob) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/**
 * @param {string} name
 * @param {unknown} value
 */
export function downloadJson(name, value) {
  download(name, new Blob([`${JSON.stringify(value, null, 2)}\n`], { type: "application/json" }));
}

/** @param {SVGSVGElement} svg */
function svgText(svg) {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${new XMLSerializer().serializeToString(svg)}`;
}

/**
 * @param {string} name
 * @param {SVGSVGElement} svg
 */
export function downloadSvg(name, svg) {
  download(name, new Blob([svgText(svg)], { type: "image/svg+xml" }));
}

/**
 * Rasterises the SVG at twice its size.
 * @param {string} name
 * @param {SVGSVGElement} svg
 */
export async function downloadPng(name, svg) {
  const url = URL.createObjectURL(new Blob([svgText(svg)], { type: "image/svg+xml" }));
  try {
    const image = new Image();
    image.src = url;
    await image.decode();
    const scale = 2;
    const canvas = document.createElement("canvas");
    canvas.width = svg.width.baseVal.value * scale;
    canvas.height = svg.height.baseVal.value * scale;
    const context = canvas.getContext("2d");
    if (!context) throw new Error("no 2D canvas");
    context.drawImage(image, 0, 0, canvas.width, canvas.height);
    const blob = await new Promise((resolve, reject) =>
      canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("PNG encoding failed"))), "image/png"),
    );
    download(name, /** @type {Blob} */ (blob));
  } finally {
    URL.revokeObjectURL(url);
  }
}
