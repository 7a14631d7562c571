/** The plain-text tables eval commands print: one row per strategy, numbers right-aligned. */

export interface Column<Row> {
  header: string;
  value: (row: Row) => string;
  /** Left-aligned (text) rather than right-aligned (numbers). */
  left?: boolean;
}

/** A number with `digits` decimals, or "–" when there is none (null, undefined, NaN, ±∞). */
export const fixed = (digits: number) => (v: number | null | undefined) =>
  v === null || v === undefined || !Number.isFinite(v) ? "–" : v.toFixed(digits);

/** Header, a rule, then one line per row, columns padded to their widest cell. */
export function formatColumns<Row>(columns: readonly Column<Row>[], rows: readonly Row[]): string {
  const cells = [columns.map((c) => c.header), ...rows.map((row) => columns.map((c) => c.value(row)))];
  const widths = columns.map((_, i) => Math.max(...cells.map((cellsOfRow) => [...cellsOfRow[i]].length)));
  const line = (cellsOfRow: string[]) =>
    cellsOfRow
      .map((cell, i) => {
        const pad = " ".repeat(widths[i] - [...cell].length);
        return columns[i].left ? cell + pad : pad + cell;
      })
      .join("  ")
      .trimEnd();
  const rule = widths.map((w) => "─".repeat(w)).join("  ");
  return [line(cells[0]), rule, ...cells.slice(1).map(line)].join("\n");
}
