/**
 * Plain-text tables for terminal output: one header row, a rule, then rows,
 * every column as wide as its widest cell (capped, with an ellipsis) so a long
 * error message cannot push the other columns off the screen.
 */

/** @internal */
export interface Column<A> {
  readonly header: string
  readonly cell: (row: A) => string
  readonly align?: "left" | "right"
  /** Longer cells are cut to this many characters, ending in "…". */
  readonly maxWidth?: number
}

const oneLine = (text: string): string => text.replace(/\s+/g, " ").trim()

const fit = (text: string, maxWidth: number | undefined): string =>
  maxWidth !== undefined && text.length > maxWidth ? `${text.slice(0, Math.max(0, maxWidth - 1))}…` : text

/** @internal */
export const render = <A>(columns: ReadonlyArray<Column<A>>, rows: ReadonlyArray<A>): string => {
  const cells = rows.map((row) => columns.map((column) => fit(oneLine(column.cell(row)), column.maxWidth)))
  const widths = columns.map((column, i) =>
    cells.reduce((width, line) => Math.max(width, (line[i] ?? "").length), column.header.length)
  )
  const line = (values: ReadonlyArray<string>) =>
    values
      .map((value, i) => {
        const width = widths[i] ?? value.length
        return columns[i]?.align === "right" ? value.padStart(width) : value.padEnd(width)
      })
      .join("  ")
      .trimEnd()
  return [
    line(columns.map((column) => column.header)),
    line(widths.map((width) => "-".repeat(width))),
    ...cells.map(line)
  ].join("\n")
}

/**
 * Key/value lines with the keys aligned, for one record.
 *
 * @internal
 */
export const fields = (entries: ReadonlyArray<readonly [key: string, value: string]>): string => {
  const width = entries.reduce((max, [key]) => Math.max(max, key.length), 0)
  return entries.map(([key, value]) => `${`${key}:`.padEnd(width + 1)}  ${value}`).join("\n")
}

/**
 * Indents every line of a block of text.
 *
 * @internal
 */
export const indent = (text: string, by = "  "): string =>
  text
    .split("\n")
    .map((line) => (line.length > 0 ? `${by}${line}` : line))
    .join("\n")
