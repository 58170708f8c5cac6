/**
 * The results chart as a self-contained SVG, drawn here (no plotting
 * service): the gateway ÷ baseline throughput ratio per store and
 * concurrency, and the gateway's p99 per store and size of the first page
 * and of the page 10,000 words deep.
 *
 * @module
 */
import { listingRows, TARGET_CONCURRENCY } from "./report.ts";
import type { BenchRun } from "./types.ts";

/** One coloured series of bars: one value per group (NaN: not measured). */
export interface Series {
  label: string;
  color: string;
  values: number[];
}

/** A grouped bar panel. */
export interface Panel {
  title: string;
  groups: string[];
  series: Series[];
  /** Log scale (for latencies spanning orders of magnitude) or linear from 0. */
  log?: boolean;
  /** A dashed horizontal line, e.g. a target. */
  rule?: { value: number; label: string };
  /** Short ticks across bars, e.g. each bar's own limit; same shape as `series`' values. */
  marks?: number[][];
  /** How bar labels print their value. */
  format: (v: number) => string;
}

const COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2"];
const WIDTH = 960;
const PANEL_H = 300;

/** Escapes text for SVG. */
export function xml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Axis ticks: 0..max in ~5 round steps, or powers of ten (1, 2, 5) for a log axis. */
export function ticks(min: number, max: number, log: boolean): number[] {
  if (log) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** e;
        if (v >= min * 0.999 && v <= max * 1.001) out.push(Number(v.toPrecision(3)));
      }
    }
    return out;
  }
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  return Array.from(
    { length: Math.floor(max / step + 1e-9) + 1 },
    (_, i) => Number((i * step).toPrecision(6)),
  );
}

/** Draws `panel` in the box at (x, y) of width w and height h. */
export function renderPanel(panel: Panel, x: number, y: number, w: number, h: number): string {
  const values = panel.series.flatMap((s) => s.values).filter((v) => Number.isFinite(v) && v > 0);
  const extra = [panel.rule?.value ?? 0, ...(panel.marks?.flat() ?? [])].filter(Number.isFinite);
  const top = Math.max(...values, ...extra, panel.log ? 1 : 0.001);
  const bottom = panel.log ? 10 ** Math.floor(Math.log10(Math.min(...values, top))) : 0;
  const max = panel.log
    ? 10 ** Math.ceil(Math.log10(top))
    : Math.max(top * 1.1, (panel.rule?.value ?? 0) * 1.3);
  const left = x + 50, right = x + w - 10, plotTop = y + 40, plotBottom = y + h - 45;
  const scale = (v: number) => {
    const f = panel.log
      ? (Math.log10(Math.max(v, bottom)) - Math.log10(bottom)) /
        (Math.log10(max) - Math.log10(bottom))
      : v / max;
    return plotBottom - f * (plotBottom - plotTop);
  };
  const out: string[] = [
    `<text x="${x + w / 2}" y="${y + 18}" text-anchor="middle" font-size="14" font-weight="bold">${
      xml(panel.title)
    }</text>`,
  ];
  for (const t of ticks(panel.log ? bottom : 0, max, panel.log ?? false)) {
    const ty = scale(t);
    out.push(
      `<line x1="${left}" x2="${right}" y1="${ty}" y2="${ty}" stroke="#ddd"/>`,
      `<text x="${left - 4}" y="${ty + 4}" text-anchor="end" font-size="10">${t}</text>`,
    );
  }
  const groupW = (right - left) / Math.max(1, panel.groups.length);
  const barW = Math.min(28, (groupW - 12) / Math.max(1, panel.series.length));
  panel.groups.forEach((g, gi) => {
    const gx = left + gi * groupW + (groupW - barW * panel.series.length) / 2;
    out.push(
      `<text x="${left + (gi + 0.5) * groupW}" y="${
        plotBottom + 16
      }" text-anchor="middle" font-size="11">${xml(g)}</text>`,
    );
    panel.series.forEach((s, si) => {
      const v = s.values[gi];
      const bx = gx + si * barW;
      if (Number.isFinite(v)) {
        const by = scale(v);
        out.push(
          `<rect x="${bx.toFixed(1)}" y="${by.toFixed(1)}" width="${
            (barW - 2).toFixed(1)
          }" height="${(plotBottom - by).toFixed(1)}" fill="${s.color}"><title>${
            xml(`${g} ${s.label}: ${panel.format(v)}`)
          }</title></rect>`,
          `<text x="${(bx + barW / 2 - 1).toFixed(1)}" y="${
            (by - 3).toFixed(1)
          }" text-anchor="middle" font-size="8">${xml(panel.format(v))}</text>`,
        );
      }
      const mark = panel.marks?.[si]?.[gi];
      if (mark !== undefined && Number.isFinite(mark)) {
        const my = scale(mark).toFixed(1);
        out.push(
          `<line x1="${bx.toFixed(1)}" x2="${
            (bx + barW - 2).toFixed(1)
          }" y1="${my}" y2="${my}" stroke="#000" stroke-width="2"/>`,
        );
      }
    });
  });
  if (panel.rule) {
    const ry = scale(panel.rule.value);
    out.push(
      `<line x1="${left}" x2="${right}" y1="${ry}" y2="${ry}" stroke="#c00" stroke-dasharray="6 4"/>`,
      `<text x="${left + 4}" y="${ry - 4}" font-size="10" fill="#c00">${
        xml(panel.rule.label)
      }</text>`,
    );
  }
  out.push(
    `<line x1="${left}" x2="${right}" y1="${plotBottom}" y2="${plotBottom}" stroke="#333"/>`,
  );
  let lx = left;
  for (const s of panel.series) {
    out.push(
      `<rect x="${lx}" y="${plotBottom + 26}" width="10" height="10" fill="${s.color}"/>`,
      `<text x="${lx + 14}" y="${plotBottom + 35}" font-size="11">${xml(s.label)}</text>`,
    );
    lx += 24 + s.label.length * 6.5;
  }
  return out.join("\n");
}

/**
 * The chart of a run: ratio per store and concurrency (largest size); first
 * page and deep cursor page p99 per store and size (c16), each with the
 * target's limit as a tick on the largest size.
 */
export function renderChart(run: BenchRun): string {
  const rows = listingRows(run.cells);
  const stores = run.settings.stores.filter((s) => rows.some((r) => r.store === s));
  const largest = Math.max(...run.settings.sizes);
  const smallest = Math.min(...run.settings.sizes);
  const find = (store: string, size: number, c: number) =>
    rows.find((r) => r.store === store && r.size === size && r.concurrency === c);
  const ratio: Panel = {
    title: `Throughput, gateway ÷ baseline: words(limit: 100) at ${largest} words`,
    groups: stores,
    series: run.settings.concurrencies.map((c, i) => ({
      label: `concurrency ${c}`,
      color: COLORS[i % COLORS.length],
      values: stores.map((s) => find(s, largest, c)?.ratio ?? NaN),
    })),
    rule: { value: 0.8, label: "target ≥ 0.8 at concurrency 16" },
    format: (v) => v.toFixed(2),
  };
  const p99: Panel = {
    title:
      `p99 latency of words(limit: 100) through the gateway, ms (log), concurrency ${TARGET_CONCURRENCY}`,
    groups: stores,
    log: true,
    series: run.settings.sizes.map((size, i) => ({
      label: `${size} words`,
      color: COLORS[(i + 2) % COLORS.length],
      values: stores.map((s) => find(s, size, TARGET_CONCURRENCY)?.p99 ?? NaN),
    })),
    marks: run.settings.sizes.map((size) =>
      stores.map((s) =>
        size === largest && size !== smallest
          ? (find(s, smallest, TARGET_CONCURRENCY)?.p99 ?? NaN) * 1.5
          : NaN
      )
    ),
    format: (v) => (v < 10 ? v.toFixed(1) : v.toFixed(0)),
  };
  const cursorSizes = run.settings.sizes.filter((size) =>
    run.cells.some((c) =>
      c.workload === "gateway-cursor" && c.size === size && Number.isFinite(c.p99)
    )
  );
  const cursorCell = (store: string, size: number) =>
    run.cells.find((c) =>
      c.workload === "gateway-cursor" && c.store === store && c.size === size &&
      c.concurrency === TARGET_CONCURRENCY
    );
  const cursor: Panel = {
    title:
      `p99 of the wordsConnection page 10,000 words deep, ms (log), concurrency ${TARGET_CONCURRENCY}`,
    groups: stores,
    log: true,
    series: cursorSizes.map((size, i) => ({
      label: `${size} words`,
      color: COLORS[(i + 3) % COLORS.length],
      values: stores.map((s) => cursorCell(s, size)?.p99 ?? NaN),
    })),
    marks: cursorSizes.map((_size, i) =>
      stores.map((s) =>
        i === cursorSizes.length - 1 && i > 0
          ? (cursorCell(s, cursorSizes[i - 1])?.p99 ?? NaN) * 1.5
          : NaN
      )
    ),
    format: (v) => (v < 10 ? v.toFixed(1) : v.toFixed(0)),
  };
  const panels = cursorSizes.length ? [ratio, p99, cursor] : [ratio, p99];
  const m = run.machine;
  const foot =
    `${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, Deno ${m.deno}, load ${
      m.loadAverage[0]
    } at start; ${run.settings.durationSeconds} s per cell; ` +
    `gateway peak RSS ${
      run.gatewayMemory.peakRssMiB.toFixed(0)
    } MiB; black tick: target 1.5× p99 at the smaller size; ${run.startedAt}`;
  const height = PANEL_H * panels.length + 40;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...panels.map((p, i) => renderPanel(p, 0, PANEL_H * i, WIDTH, PANEL_H)),
    `<text x="10" y="${height - 12}" font-size="10" fill="#555">${xml(foot)}</text>`,
    `</svg>`,
    "",
  ].join("\n");
}
