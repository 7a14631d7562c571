/**
 * The Vega-Lite layers every eval scatter panel draws: one filled point per strategy, coloured by
 * strategy with a tooltip, and the strategy's name beside it.
 */

/**
 * `tooltip`: the fields shown on hover. `labelY`: a field holding the label's y position when
 * labels of nearly coinciding points are stacked apart (defaults to the point's own y).
 */
export function labelledPointLayers(
  tooltip: readonly { field: string; type: "nominal" | "quantitative" }[],
  labelY?: string,
) {
  return [
    {
      mark: { type: "point" as const, filled: true, size: 80 },
      encoding: {
        color: { field: "strategy", type: "nominal" as const, legend: null },
        tooltip: [...tooltip],
      },
    },
    {
      mark: { type: "text" as const, align: "left" as const, dx: 7, dy: -7, fontSize: 11 },
      encoding: {
        text: { field: "strategy", type: "nominal" as const },
        ...(labelY ? { y: { field: labelY, type: "quantitative" as const } } : {}),
      },
    },
  ];
}
