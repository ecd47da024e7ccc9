// Plain-text tables for the benchmark's stdout.

/** Formats rows (arrays of cells) under `headers`, numbers right-aligned. */
export function table(headers, rows) {
  const cells = [headers, ...rows].map((row) =>
    row.map((cell) => (cell === undefined || cell === null ? '-' : String(cell))),
  );
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => row[i]?.length ?? 0)));
  const numeric = headers.map(
    (_, i) =>
      rows.length > 0 &&
      rows.every(
        (row) =>
          row[i] === null ||
          row[i] === undefined ||
          typeof row[i] === 'number' ||
          /^[-+]?[\d.,]+( ?[a-zµ%x/]+)?$/i.test(String(row[i])),
      ),
  );
  const line = (row) =>
    row
      .map((cell, i) => (numeric[i] ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

/** A number with `digits` decimals, or '-' when absent. */
export function fmt(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(value)) return '-';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
