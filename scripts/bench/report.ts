/**
 * Turning a run's raw cells into what people read: the listing table
 * (gateway against baseline), the scale table (first page, cursor page,
 * rare search), the memory, addWord, seeding and check tables, as aligned
 * text and as Markdown, and the issue's targets with their figures.
 *
 * @module
 */
import type { StoreName } from "../../stores/types.ts";
import type { BenchRun, Cell, MemoryAtSize, SeedCheck, SeedResult, Workload } from "./types.ts";
import { renderColumns } from "../table.ts";

/** One row of the listing table: `words(limit: 100)` through the gateway and the baseline. */
export interface ListingRow {
  store: StoreName;
  size: number;
  held: number;
  concurrency: number;
  gatewayRps: number;
  baselineRps: number;
  /** gateway req/s ÷ baseline req/s. */
  ratio: number;
  p50: number;
  p99: number;
  baselineP99: number;
  failures: number;
}

/** Pairs every gateway listing cell with its baseline cell. */
export function listingRows(cells: readonly Cell[]): ListingRow[] {
  const rows: ListingRow[] = [];
  for (const g of cells) {
    if (g.workload !== "gateway-words") continue;
    const b = cells.find((c) =>
      c.workload === "baseline-words" && c.store === g.store && c.size === g.size &&
      c.concurrency === g.concurrency
    );
    rows.push({
      store: g.store,
      size: g.size,
      held: g.held,
      concurrency: g.concurrency,
      gatewayRps: g.rps,
      baselineRps: b?.rps ?? NaN,
      ratio: b && b.rps > 0 ? Math.round((g.rps / b.rps) * 1000) / 1000 : NaN,
      p50: g.p50,
      p99: g.p99,
      baselineP99: b?.p99 ?? NaN,
      failures: g.failures + (b?.failures ?? 0),
    });
  }
  return rows;
}

/** The listing table: store, size, concurrency, gateway and baseline req/s, ratio, p50, p99. */
export function listingTable(rows: readonly ListingRow[], markdown = false): string {
  return renderColumns([
    [
      "store",
      "size",
      "held",
      "conc",
      "gateway req/s",
      "baseline req/s",
      "ratio",
      "p50 ms",
      "p99 ms",
      "baseline p99 ms",
      "failed",
    ],
    ...rows.map((r) => [
      r.store,
      String(r.size),
      String(r.held),
      String(r.concurrency),
      fmt(r.gatewayRps, 0),
      fmt(r.baselineRps, 0),
      fmt(r.ratio, 2),
      fmt(r.p50, 2),
      fmt(r.p99, 2),
      fmt(r.baselineP99, 2),
      String(r.failures),
    ]),
  ], markdown);
}

/** The `addWord` table. */
export function addWordTable(cells: readonly Cell[], markdown = false): string {
  return renderColumns([
    ["store", "size", "held", "conc", "addWord req/s", "p50 ms", "p99 ms", "failed"],
    ...cells.filter((c) => c.workload === "gateway-addWord").map((c) => [
      c.store,
      String(c.size),
      String(c.held),
      String(c.concurrency),
      fmt(c.rps, 0),
      fmt(c.p50, 2),
      fmt(c.p99, 2),
      String(c.failures),
    ]),
  ], markdown);
}

/** The seeding table: how long each store took to reach each size through `addMany`. */
export function seedTable(seeds: readonly SeedResult[], markdown = false): string {
  return renderColumns([
    ["store", "size", "held before", "seeded", "held after", "seconds", "words/s", "batch x calls"],
    ...seeds.map((s) => [
      s.store,
      String(s.target),
      String(s.before),
      String(s.added),
      String(s.held),
      fmt(s.seconds, 1),
      String(s.wordsPerSecond),
      `${s.batch} x ${s.parallel}`,
    ]),
  ], markdown);
}

/** One row of the scale table: one store at one size. */
export interface ScaleRow {
  store: StoreName;
  size: number;
  held: number;
  /** Seconds seeding this step took (NaN: not seeded). */
  seedSeconds: number;
  firstP50: number;
  firstP99: number;
  cursorP50: number;
  cursorP99: number;
  rareC1P50: number;
  rareC1P99: number;
  rareC16P50: number;
  rareC16P99: number;
  /** Gateway peak RSS during this store's concurrency-64 first page, MiB. */
  rssC64: number;
}

/** The scale rows: first page and cursor page at c16, rare search at c1 and c16, per store and size. */
export function scaleRows(run: BenchRun): ScaleRow[] {
  const rows: ScaleRow[] = [];
  for (const size of run.settings.sizes) {
    for (const store of run.settings.stores) {
      const mine = run.cells.filter((c) => c.store === store && c.size === size);
      if (mine.length === 0) continue;
      const at = (w: Workload, c: number) =>
        mine.find((x) => x.workload === w && x.concurrency === c);
      const seed = run.seeds.find((s) => s.store === store && s.target === size);
      rows.push({
        store,
        size,
        held: mine[0].held,
        seedSeconds: seed?.seconds ?? NaN,
        firstP50: at("gateway-words", TARGET_CONCURRENCY)?.p50 ?? NaN,
        firstP99: at("gateway-words", TARGET_CONCURRENCY)?.p99 ?? NaN,
        cursorP50: at("gateway-cursor", TARGET_CONCURRENCY)?.p50 ?? NaN,
        cursorP99: at("gateway-cursor", TARGET_CONCURRENCY)?.p99 ?? NaN,
        rareC1P50: at("gateway-search", 1)?.p50 ?? NaN,
        rareC1P99: at("gateway-search", 1)?.p99 ?? NaN,
        rareC16P50: at("gateway-search", TARGET_CONCURRENCY)?.p50 ?? NaN,
        rareC16P99: at("gateway-search", TARGET_CONCURRENCY)?.p99 ?? NaN,
        rssC64: at("gateway-words", 64)?.gatewayRssMiB ?? NaN,
      });
    }
  }
  return rows;
}

/** The scale table ("-": not measured; the reasons are listed under it). */
export function scaleTable(rows: readonly ScaleRow[], markdown = false): string {
  return renderColumns([
    [
      "store",
      "size",
      "held",
      "seed s",
      "first p50",
      "first p99",
      "cursor p50",
      "cursor p99",
      "rare c1 p50",
      "rare c1 p99",
      "rare c16 p50",
      "rare c16 p99",
      "RSS c64 MiB",
    ],
    ...rows.map((r) => [
      r.store,
      String(r.size),
      String(r.held),
      fmt(r.seedSeconds, 1),
      fmt(r.firstP50, 2),
      fmt(r.firstP99, 2),
      fmt(r.cursorP50, 2),
      fmt(r.cursorP99, 2),
      fmt(r.rareC1P50, 2),
      fmt(r.rareC1P99, 2),
      fmt(r.rareC16P50, 2),
      fmt(r.rareC16P99, 2),
      fmt(r.rssC64, 0),
    ]),
  ], markdown);
}

/** The gateway's memory per size (one process, every configured store connected). */
export function memoryTable(memory: readonly MemoryAtSize[], markdown = false): string {
  return renderColumns([
    [
      "size",
      "mixed stores",
      "mixed c64 req/s",
      "mixed p99 ms",
      "failed",
      "peak RSS c64 MiB",
      "VmHWM all cells MiB",
      "RSS after MiB",
    ],
    ...memory.map((m) => [
      String(m.size),
      String(m.mixedStores.length),
      fmt(m.mixed?.rps ?? NaN, 0),
      fmt(m.mixed?.p99 ?? NaN, 2),
      String(m.mixed?.failures ?? 0),
      fmt(m.peakRssAtC64MiB, 1),
      fmt(m.hwmMiB, 1),
      fmt(m.rssAfterMiB, 1),
    ]),
  ], markdown);
}

/** The checks after seeding. */
export function checkTable(checks: readonly SeedCheck[], markdown = false): string {
  return renderColumns([
    ["store", "size", "check", "detail"],
    ...checks.map((c) => [
      c.store,
      String(c.size),
      !c.ok ? "FAILED" : c.unavailable ? "ok, not all in time" : "ok",
      c.detail,
    ]),
  ], markdown);
}

/** Every cell that was not measured, one line per store, workload and reason. */
export function unmeasuredLines(cells: readonly Cell[]): string[] {
  const out = new Map<string, string[]>();
  for (const c of cells) {
    if (!c.notMeasured) continue;
    const key = `${c.store} ${c.size} ${c.workload}: ${c.notMeasured}`;
    out.set(key, [...(out.get(key) ?? []), `c${c.concurrency}`]);
  }
  return [...out].map(([key, cs]) => {
    const [head, ...why] = key.split(": ");
    return `${head} ${cs.join(",")}: ${why.join(": ")}`;
  });
}

/** One of the issue's targets, for one store or for the gateway. */
export interface TargetCheck {
  target: string;
  store?: StoreName;
  figure: string;
  met: boolean | undefined;
  /** Why a miss is expected, for a store whose database (as the matrix runs it) lacks ordered access. */
  expected?: string;
}

/** The concurrency the throughput and growth targets are read at. */
export const TARGET_CONCURRENCY = 16;

/** Gateway memory limit at concurrency 64, MiB. */
export const MEMORY_TARGET_MIB = 250;

/** Smallest size with a page after the 10,000th seeded word. */
const CURSOR_SIZE = 10_100;

/**
 * Stores whose database, as the matrix runs it, has no ordered access: their
 * pages sort or scan everything, so the growth targets are expected to miss.
 */
export const NO_ORDERED_ACCESS: Partial<Record<StoreName, string>> = {
  MONGODB: "FerretDB v1 (the matrix's MongoDB) pushes down only _id equality: every find " +
    "sorts the whole collection in Go; a real MongoDB serves it from the store's unique id index",
};

/** `large.p99 ≤ 1.5 × small.p99`, or missed with the reason a cell was not measured. */
function growth(
  target: string,
  store: StoreName,
  small: Cell | undefined,
  large: Cell | undefined,
  sizes: [number, number],
): TargetCheck {
  const expected = NO_ORDERED_ACCESS[store];
  const missing = [[small, sizes[0]], [large, sizes[1]]] as const;
  for (const [cell, size] of missing) {
    if (!cell || !Number.isFinite(cell.p99)) {
      return {
        target,
        store,
        figure: `not measured at ${size} words` +
          (cell?.notMeasured ? `: ${cell.notMeasured}` : cell ? " (no answer)" : ""),
        met: false,
        ...(expected ? { expected } : {}),
      };
    }
  }
  const ratio = large!.p99 / small!.p99;
  return {
    target,
    store,
    figure:
      `${fmt(large!.p99, 2)} ms at ${large!.held} / ${fmt(small!.p99, 2)} ms at ${
        small!.held
      } words = ${fmt(ratio, 2)}x` + (large!.failures ? `; ${large!.failures} failed` : ""),
    met: ratio <= 1.5 && large!.failures === 0,
    ...(expected ? { expected } : {}),
  };
}

/**
 * Checks the issue's targets at concurrency 16: the first page's p99 at the
 * largest size ≤ 1.5× its p99 at the smallest; the page 10,000 words deep
 * ≤ 1.5× from the size before the largest to the largest; and the gateway's
 * peak resident memory < 250 MiB at concurrency 64 at every size, with every
 * configured store in the one gateway. Also the earlier issue's gateway ≥ 80%
 * of the baseline. A cell that was not measured counts as missed, with its
 * reason; `met` is undefined only when the run's sizes cannot say.
 */
export function checkTargets(run: BenchRun): TargetCheck[] {
  const rows = listingRows(run.cells).filter((r) => r.concurrency === TARGET_CONCURRENCY);
  const out: TargetCheck[] = [];
  const sizes = [...run.settings.sizes].sort((a, b) => a - b);
  const cursorSizes = sizes.filter((s) => s >= CURSOR_SIZE);
  const cell = (store: StoreName, w: Workload, size: number | undefined) =>
    run.cells.find((c) =>
      c.store === store && c.workload === w && c.size === size &&
      c.concurrency === TARGET_CONCURRENCY
    );
  for (const store of run.settings.stores) {
    if (sizes.length > 1) {
      out.push(growth(
        `first page p99 at ${sizes.at(-1)} ≤ 1.5× p99 at ${sizes[0]} words, c16`,
        store,
        cell(store, "gateway-words", sizes[0]),
        cell(store, "gateway-words", sizes.at(-1)),
        [sizes[0], sizes.at(-1)!],
      ));
    } else {
      out.push({
        target: "first page p99 growth with size, c16",
        store,
        figure: "not measured (one size)",
        met: undefined,
      });
    }
    if (cursorSizes.length > 1) {
      const [a, b] = cursorSizes.slice(-2);
      out.push(growth(
        `cursor page ${CURSOR_SIZE - 100} deep p99 at ${b} ≤ 1.5× p99 at ${a} words, c16`,
        store,
        cell(store, "gateway-cursor", a),
        cell(store, "gateway-cursor", b),
        [a, b],
      ));
    } else {
      out.push({
        target: "cursor page 10000 deep p99 growth, c16",
        store,
        figure: `not measured (needs two sizes of at least ${CURSOR_SIZE} words)`,
        met: undefined,
      });
    }
    const mine = rows.filter((r) => r.store === store);
    const measured = mine.filter((r) => Number.isFinite(r.ratio));
    const worst = measured.length
      ? measured.reduce((a, b) => (b.ratio < a.ratio ? b : a))
      : undefined;
    const unmeasured = mine.filter((r) => !Number.isFinite(r.ratio)).map((r) => r.size);
    out.push({
      target: "gateway ≥ 80% of baseline, words(limit: 100), c16 (earlier issue)",
      store,
      figure: (worst ? `${pct(worst.ratio)} (worst, at ${worst.held} words)` : "not measured") +
        (unmeasured.length ? `; not measured at ${unmeasured.join(", ")} words` : ""),
      met: worst === undefined || unmeasured.length ? false : worst.ratio >= 0.8,
    });
  }
  const everyStore = `${run.gatewayStores.length} stores (${
    run.gatewayStores.join(", ")
  }) in one gateway`;
  for (const size of sizes) {
    const m = run.memory.find((x) => x.size === size);
    const target = `gateway peak RSS < ${MEMORY_TARGET_MIB} MiB at c64, ${size} words`;
    if (!m || !(m.peakRssAtC64MiB > 0)) {
      out.push({ target, figure: `not measured (no c64 cell at ${size} words)`, met: false });
      continue;
    }
    out.push({
      target,
      figure: `${fmt(m.peakRssAtC64MiB, 1)} MiB (peak during the c64 cells and the mixed c64 ` +
        `load over ${m.mixedStores.length} stores; VmHWM over all the size's cells ${
          fmt(m.hwmMiB, 1)
        } MiB; ${everyStore})`,
      met: m.peakRssAtC64MiB < MEMORY_TARGET_MIB,
    });
  }
  return out;
}

/**
 * The target checks as text lines, then why the expected misses are
 * expected (stores without ordered access on the matrix).
 */
export function targetLines(checks: readonly TargetCheck[]): string {
  const lines = checks.map((c) =>
    `${c.met === undefined ? "n/a " : c.met ? "MET " : "MISS"}  ${c.target}${
      c.store ? ` [${c.store}]` : ""
    }: ${c.figure}${c.expected && c.met === false ? " (expected: no ordered access)" : ""}`
  );
  const notes = new Map<StoreName, string>();
  for (const c of checks) if (c.store && c.expected) notes.set(c.store, c.expected);
  if (notes.size) {
    lines.push("", "No ordered access on the matrix, so the growth targets are expected to miss:");
    for (const [store, why] of notes) lines.push(`  ${store}: ${why}`);
  }
  return lines.join("\n");
}

/** `n` with `digits` decimals, or "-" when it is not a number. */
export function fmt(n: number, digits: number): string {
  return Number.isFinite(n) ? n.toFixed(digits) : "-";
}

/** `ratio` as a whole percentage, or "-". */
export function pct(ratio: number): string {
  return Number.isFinite(ratio) ? `${Math.round(ratio * 100)}%` : "-";
}
