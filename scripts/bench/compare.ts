/**
 * What the gateway costs against what users would otherwise run: the floors
 * (100 fixed words from a bare handler, plain graphql-yoga, Yoga with the
 * JIT), the classic Express apps and the gateway on one core, as tables and
 * as the speed targets.
 *
 * Costs are read as milliseconds per request, `1000 / req/s` at one
 * concurrency: on a host where the load generator shares the cores, that is
 * the server's share of the machine per request, not its CPU time.
 *
 * @module
 */
import { renderColumns } from "../table.ts";
import { FLOOR_LABELS, FLOORS } from "./floors.ts";
import { fmt, pct, TARGET_CONCURRENCY, type TargetCheck } from "./report.ts";
import type { BenchRun, Cell, CoresCell, FloorCell, Workload } from "./types.ts";
import type { StoreName } from "../../stores/types.ts";

/** Milliseconds per request implied by a throughput. */
export function msPer(rps: number): number {
  return rps > 0 ? 1000 / rps : NaN;
}

/** The floors' milliseconds per request at `concurrency`, when all three were measured. */
export function floorMs(
  floors: readonly FloorCell[] | undefined,
  concurrency = TARGET_CONCURRENCY,
): { bare: number; yoga: number; jit: number } | undefined {
  const at = (f: FloorCell["floor"]) =>
    floors?.find((c) => c.floor === f && c.concurrency === concurrency && c.failures === 0);
  const [bare, yoga, jit] = [at("bare"), at("yoga"), at("jit")];
  if (!bare || !yoga || !jit) return undefined;
  return { bare: msPer(bare.rps), yoga: msPer(yoga.rps), jit: msPer(jit.rps) };
}

/** The floors table: req/s, latency and ms per request of each floor at each concurrency. */
export function floorTable(floors: readonly FloorCell[], markdown = false): string {
  const sorted = [...floors].sort((a, b) =>
    FLOORS.indexOf(a.floor) - FLOORS.indexOf(b.floor) || a.concurrency - b.concurrency
  );
  return renderColumns([
    ["floor (100 fixed words)", "conc", "req/s", "ms per req", "p50 ms", "p99 ms", "failed"],
    ...sorted.map((c) => [
      FLOOR_LABELS[c.floor],
      String(c.concurrency),
      fmt(c.rps, 0),
      fmt(msPer(c.rps), 3),
      fmt(c.p50, 2),
      fmt(c.p99, 2),
      String(c.failures),
    ]),
  ], markdown);
}

/** The gateway against the classic Express app for one store, size and concurrency. */
export interface ClassicRow {
  store: StoreName;
  size: number;
  concurrency: number;
  gatewayList: number;
  expressList: number;
  gatewayAdd: number;
  expressAdd: number;
}

/** One row per (store, size, concurrency) with an Express cell. */
export function classicRows(cells: readonly Cell[]): ClassicRow[] {
  const rps = (c: Cell, w: Workload) =>
    cells.find((x) =>
      x.store === c.store && x.size === c.size && x.concurrency === c.concurrency &&
      x.workload === w
    )?.rps ?? NaN;
  return cells.filter((c) => c.workload === "express-words").map((c) => ({
    store: c.store,
    size: c.size,
    concurrency: c.concurrency,
    gatewayList: rps(c, "gateway-words"),
    expressList: c.rps,
    gatewayAdd: rps(c, "gateway-addWord"),
    expressAdd: rps(c, "express-addWord"),
  }));
}

/** The gateway against the Express apps, req/s of each and their ratio. */
export function classicTable(rows: readonly ClassicRow[], markdown = false): string {
  return renderColumns([
    [
      "store",
      "size",
      "conc",
      "list gateway",
      "list Express",
      "gateway/Express",
      "add gateway",
      "add Express",
      "gateway/Express",
    ],
    ...rows.map((r) => [
      r.store,
      String(r.size),
      String(r.concurrency),
      fmt(r.gatewayList, 0),
      fmt(r.expressList, 0),
      fmt(r.gatewayList / r.expressList, 2),
      fmt(r.gatewayAdd, 0),
      fmt(r.expressAdd, 0),
      fmt(r.gatewayAdd / r.expressAdd, 2),
    ]),
  ], markdown);
}

/** The gateway may add this much on top of Yoga with the JIT. */
export const OVER_YOGA = 1.15;

/**
 * The speed targets at concurrency 16 that need the floors or the
 * Express apps:
 *
 * - Yoga's own cost (its ms per request beyond the bare handler's) with the
 *   JIT at most half of plain Yoga's;
 * - per store, the gateway's ms per request without its store's part (the
 *   baseline's beyond the bare handler's) at most {@linkcode OVER_YOGA} ×
 *   Yoga with the JIT's, at every size (the worst is reported);
 * - per store with an Express app, the gateway's throughput at least the
 *   app's, listing and adding, at every size.
 */
export function speedTargets(run: BenchRun): TargetCheck[] {
  const out: TargetCheck[] = [];
  const f = floorMs(run.floors);
  const yogaTarget = "Yoga's own cost with the JIT ≤ ½ plain Yoga's (ms/req beyond the bare " +
    "handler), c16";
  if (!f) {
    out.push({ target: yogaTarget, figure: "not measured (no floors in this run)", met: false });
  } else {
    const jitOwn = f.jit - f.bare;
    const yogaOwn = f.yoga - f.bare;
    out.push({
      target: yogaTarget,
      figure: `${fmt(jitOwn, 3)} ms with the JIT, ${fmt(yogaOwn, 3)} ms plain (${
        pct(jitOwn / yogaOwn)
      })`,
      met: jitOwn <= yogaOwn / 2,
    });
  }
  const c16 = run.cells.filter((c) => c.concurrency === TARGET_CONCURRENCY && !c.notMeasured);
  const rpsOf = (store: StoreName, size: number, w: Workload) =>
    c16.find((c) => c.store === store && c.size === size && c.workload === w)?.rps ?? NaN;
  for (const store of run.settings.stores) {
    const overTarget = `gateway ≤ ${OVER_YOGA}× Yoga+JIT's ms/req, its store's part taken ` +
      `out (baseline − bare), words(limit: 100), c16`;
    if (!f) {
      out.push({ target: overTarget, store, figure: "not measured (no floors)", met: false });
    } else {
      const over = run.settings.sizes.map((size) => {
        const storePart = msPer(rpsOf(store, size, "baseline-words")) - f.bare;
        const own = msPer(rpsOf(store, size, "gateway-words")) - storePart;
        return { size, own, ratio: own / f.jit };
      }).filter((o) => Number.isFinite(o.ratio));
      const worst = over.reduce<(typeof over)[number] | undefined>(
        (a, b) => (!a || b.ratio > a.ratio ? b : a),
        undefined,
      );
      out.push({
        target: overTarget,
        store,
        figure: worst
          ? `${fmt(worst.own, 3)} ms against ${fmt(f.jit, 3)} ms = ${
            fmt(worst.ratio, 2)
          }× (worst, at ${worst.size} words)`
          : "not measured",
        met: worst !== undefined && over.length === run.settings.sizes.length &&
          worst.ratio <= OVER_YOGA,
      });
    }
    const rows = classicRows(c16).filter((r) => r.store === store);
    if (!rows.length) continue;
    const ratios = rows.flatMap((r) => [
      { what: "listing", size: r.size, ratio: r.gatewayList / r.expressList },
      { what: "adding", size: r.size, ratio: r.gatewayAdd / r.expressAdd },
    ]);
    const measured = ratios.filter((r) => Number.isFinite(r.ratio));
    const worst = measured.reduce<(typeof measured)[number] | undefined>(
      (a, b) => (!a || b.ratio < a.ratio ? b : a),
      undefined,
    );
    out.push({
      target:
        "gateway ≥ the classic Express app's req/s, listing and adding, c16, one process each",
      store,
      figure: worst
        ? `${fmt(worst.ratio, 2)}× (worst: ${worst.what} at ${worst.size} words)`
        : "not measured",
      met: worst !== undefined && measured.length === ratios.length && worst.ratio >= 1,
    });
  }
  return out;
}

/** One worker per core should serve at least this many times one worker's req/s. */
export const CORES_SPEEDUP = 1.6;
/** The concurrency of that target. */
export const CORES_CONCURRENCY = 64;

/** The workers table: req/s, the speed-up over one worker, memory and the cores each side used. */
export function coresTable(cells: readonly CoresCell[], markdown = false): string {
  const one = (c: CoresCell) =>
    cells.find((x) => x.workers === 1 && x.concurrency === c.concurrency);
  return renderColumns([
    [
      "workers",
      "conc",
      "req/s",
      "× 1 worker",
      "p99 ms",
      "peak RSS MiB",
      "per worker",
      "gateway cores",
      "load cores",
      "rest cores",
      "failed",
    ],
    ...cells.map((c) => [
      String(c.workers),
      String(c.concurrency),
      fmt(c.rps, 0),
      fmt(c.rps / (one(c)?.rps ?? NaN), 2),
      fmt(c.p99, 2),
      fmt(c.peakRssMiB, 1),
      fmt(c.peakRssMiB / c.workers, 1),
      fmt(c.gatewayCores, 2),
      fmt(c.loadCores, 2),
      fmt(c.otherCores ?? NaN, 2),
      String(c.failures),
    ]),
  ], markdown);
}

/**
 * One worker per core at least {@linkcode CORES_SPEEDUP} × one worker's
 * req/s, SQLite at {@linkcode CORES_CONCURRENCY}; the figure says how many
 * cores each used, and the load generator, which bound it on a small host.
 */
export function coresTarget(cells: readonly CoresCell[] | undefined): TargetCheck {
  const target = `one worker per core ≥ ${CORES_SPEEDUP}× one worker's req/s, SQLite ` +
    `words(limit: 100), c${CORES_CONCURRENCY}`;
  const at = (many: boolean) =>
    cells?.find((c) =>
      c.concurrency === CORES_CONCURRENCY && (many ? c.workers > 1 : c.workers === 1) &&
      c.failures === 0
    );
  const [one, all] = [at(false), at(true)];
  if (!one || !all) {
    return { target, figure: "not measured (one core, or no SQLite cells)", met: false };
  }
  const ratio = all.rps / one.rps;
  return {
    target,
    figure: `${fmt(ratio, 2)}×: ${fmt(one.rps, 0)} req/s on ${fmt(one.gatewayCores, 2)} cores, ` +
      `${all.workers} workers ${fmt(all.rps, 0)} req/s on ${fmt(all.gatewayCores, 2)} cores ` +
      `(the load generator used ${fmt(all.loadCores, 2)}, the rest of the machine ${
        fmt(all.otherCores ?? NaN, 2)
      }); RSS ${fmt(one.peakRssMiB, 0)} MiB ` +
      `→ ${fmt(all.peakRssMiB, 0)} MiB, +${
        fmt((all.peakRssMiB - one.peakRssMiB) / (all.workers - 1), 0)
      } MiB per added worker`,
    met: ratio >= CORES_SPEEDUP,
  };
}
