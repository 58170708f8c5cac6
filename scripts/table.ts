/**
 * The one plain-text table printer: the benchmark's reports, the matrix's
 * status table and the tests' count tables all render through it.
 *
 * @module
 */

/** Renders `rows` (first row = header) as columns, numbers right-aligned; Markdown when asked. */
export function renderColumns(rows: string[][], markdown = false): string {
  const ragged = rows.find((r) => r.length !== rows[0].length);
  if (ragged) throw new Error(`table row has ${ragged.length} cells, header ${rows[0].length}`);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const numeric = rows[0].map((_, i) => rows.slice(1).every((r) => /^[-\d.,%x]*$/.test(r[i])));
  const line = (r: string[]) => {
    const cells = r.map((c, i) => numeric[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]));
    return markdown ? `| ${cells.join(" | ")} |` : cells.join("  ").trimEnd();
  };
  const out = [line(rows[0])];
  if (markdown) {
    out.push(
      `|${
        widths.map((w, i) => numeric[i] ? "-".repeat(w + 1) + ":" : "-".repeat(w + 2)).join("|")
      }|`,
    );
  }
  for (const r of rows.slice(1)) out.push(line(r));
  return out.join("\n");
}
