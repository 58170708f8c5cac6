/**
 * The rules a fault scenario is judged by, over the samples of its load:
 * the healthy stores must not fail and must keep their p99 within
 * {@linkcode P99_FACTOR} of its value before the fault, plus
 * {@linkcode P99_NOISE_MS}; the sick store may
 * only answer data or `STORE_UNAVAILABLE`, each within a bound, never hang.
 *
 * @module
 */
import type { StoreName } from "../../../stores/types.ts";
import type { MixedLoad } from "./load.ts";
import {
  describeCounts,
  maxMs,
  OK,
  outcomes,
  p99,
  type Sample,
  storeP99,
  windowOf,
} from "./samples.ts";
import { ms } from "./summary.ts";

/** How much worse a healthy store's p99 may get during a fault. */
export const P99_FACTOR = 2;
/**
 * Milliseconds a healthy store's p99 may move on top of {@linkcode P99_FACTOR}:
 * what it moves on this machine with no fault at all. With the paced load,
 * healthy p99s are 5–25 ms (Elasticsearch's refresh-bound adds ~300 ms), and
 * between consecutive 10 s windows of a run with nothing hurt they moved by up
 * to ×2.1 and +10 ms (RabbitMQ 5.7 → 12.1 ms, MySQL 12.6 → 21.9 ms: one fsync
 * or GC pause is 3 of a window's 300 samples), and MongoDB by +38 ms over 60 s
 * (FerretDB sorts the whole collection for every page, and the load adds 15
 * words a second). Without it, "2× of 6 ms" fails runs in which nothing
 * happened; with it, what the rule is for still fails: requests of a healthy
 * store queued behind a dead one, or a starved pool, cost hundreds of
 * milliseconds to seconds.
 */
export const P99_NOISE_MS = 25;
/** The one error code a sick store may answer. */
export const UNAVAILABLE = "STORE_UNAVAILABLE";

/** A named time window `[from, to)`. */
export interface Window {
  name: string;
  from: number;
  to: number;
}

/** Verdict on the healthy stores. */
export interface OthersVerdict {
  failures: number;
  breaches: string[];
  /** The healthy store and window whose p99 grew most. */
  worst?: Growth;
}

/** How one healthy store's p99 changed from before a fault to during it. */
export interface Growth {
  store: StoreName;
  window: string;
  before: number;
  during: number;
  ratio: number;
  /** p99 of the time spent in the store's database call (`Server-Timing`), before and during. */
  storeBefore: number;
  storeDuring: number;
}

/**
 * For the summary's p99 column: "MYSQL 6.4 ms → 39 ms (×6.11; database call 3.1 ms → 35 ms)".
 */
export function describeGrowth(w: Growth | undefined): string {
  if (!w) return "-";
  const db = Number.isFinite(w.storeBefore) && Number.isFinite(w.storeDuring)
    ? `; database call ${ms(w.storeBefore)} → ${ms(w.storeDuring)}`
    : "";
  return `${w.store} ${ms(w.before)} → ${ms(w.during)} (×${w.ratio.toFixed(2)}${db})`;
}

/**
 * Healthy stores: no failure at all in `all`, and p99 over the whole fault
 * (`during`: from the fault until the sick store serves again) at most
 * {@linkcode P99_FACTOR} × its p99 `before` + {@linkcode P99_NOISE_MS}.
 */
export function judgeOthers(
  samples: readonly Sample[],
  healthy: readonly StoreName[],
  all: Window,
  before: Window,
  during: Window,
): OthersVerdict {
  const verdict: OthersVerdict = { failures: 0, breaches: [] };
  for (const store of healthy) {
    const bad = windowOf(samples, all.from, all.to, store).filter((s) => s.outcome !== OK);
    verdict.failures += bad.length;
    if (bad.length) {
      verdict.breaches.push(
        `${store} failed ${describeCounts(outcomes(bad))} ${span(bad, before.to)}`,
      );
    }
    const beforeSamples = windowOf(samples, before.from, before.to, store);
    const duringSamples = windowOf(samples, during.from, during.to, store);
    const base = p99(beforeSamples);
    const fault = p99(duringSamples);
    if (!Number.isFinite(fault) || !Number.isFinite(base)) continue;
    const ratio = fault / base;
    if (!verdict.worst || ratio > verdict.worst.ratio) {
      verdict.worst = {
        store,
        window: during.name,
        before: base,
        during: fault,
        ratio,
        storeBefore: storeP99(beforeSamples),
        storeDuring: storeP99(duringSamples),
      };
    }
    if (fault > P99_FACTOR * base + P99_NOISE_MS) {
      verdict.breaches.push(
        `${store} p99 ${ms(fault)} while ${during.name} vs ${ms(base)} before (×${
          ratio.toFixed(2)
        }; limit ${P99_FACTOR}× + ${P99_NOISE_MS} ms = ${ms(P99_FACTOR * base + P99_NOISE_MS)})`,
      );
    }
  }
  return verdict;
}

/** Verdict on the sick store while it is sick. */
export interface SickVerdict {
  failures: number;
  breaches: string[];
  unavailable: number;
  served: number;
  /** Slowest STORE_UNAVAILABLE answer. */
  slowest: number;
}

/**
 * Sick store: every request answered in or sent before the end of `w` gives
 * only data or STORE_UNAVAILABLE, the latter within `boundMs`; no hang.
 */
export function judgeSick(
  samples: readonly Sample[],
  store: StoreName,
  w: Window,
  boundMs: number,
): SickVerdict {
  // Every request sent before the store recovered, even if answered after.
  const inside = samples.filter((s) => s.store === store && s.at >= w.from && s.at - s.ms < w.to);
  const unavailable = inside.filter((s) => s.outcome === UNAVAILABLE);
  const other = inside.filter((s) => s.outcome !== UNAVAILABLE && s.outcome !== OK);
  const slow = unavailable.filter((s) => s.ms > boundMs);
  const breaches: string[] = [];
  if (other.length) {
    breaches.push(`${store} answered ${describeCounts(outcomes(other))} ${span(other, w.from)}`);
  }
  if (slow.length) {
    breaches.push(
      `${store}: ${slow.length} STORE_UNAVAILABLE slower than ${ms(boundMs)} (max ${
        ms(maxMs(slow))
      })`,
    );
  }
  return {
    failures: other.length + slow.length,
    breaches,
    unavailable: unavailable.length,
    served: inside.length - unavailable.length - other.length,
    slowest: maxMs(unavailable),
  };
}

/**
 * Any request to `store` sent and answered within `w` that is not data, as
 * failures. A request sent before `w` (say, during the fault) and answered
 * in it belongs to the fault, not to `w`.
 */
export function judgeHealthy(samples: readonly Sample[], store: StoreName, w: Window) {
  const bad = windowOf(samples, w.from, w.to, store).filter((s) =>
    s.at - s.ms >= w.from && s.outcome !== OK
  );
  return {
    failures: bad.length,
    breaches: bad.length
      ? [`${store} ${w.name}: ${describeCounts(outcomes(bad))} ${span(bad, w.to)}`]
      : [],
  };
}

/**
 * Waits until `store` answered both an add and a list with data, each sent
 * after `since`; resolves with the moment the later one completed, or
 * undefined at `deadline`.
 */
export async function waitServing(
  load: MixedLoad,
  store: StoreName,
  since: number,
  deadline: number,
): Promise<number | undefined> {
  let scanned = 0;
  let add: number | undefined, list: number | undefined;
  while (Date.now() < deadline) {
    const samples = load.samples;
    for (; scanned < samples.length; scanned++) {
      const s = samples[scanned];
      if (s.store !== store || s.outcome !== OK || s.at - s.ms < since) continue;
      if (s.op === "add") add ??= s.at;
      if (s.op === "list") list ??= s.at;
    }
    if (add !== undefined && list !== undefined) return Math.max(add, list);
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}

/** When `samples` happened, in seconds relative to `origin`: "(-12.3 s .. -5.1 s)". */
export function span(samples: readonly Sample[], origin: number): string {
  const times = samples.map((s) => (s.at - origin) / 1000);
  const f = (n: number) => `${n > 0 ? "+" : ""}${n.toFixed(1)} s`;
  return `(${f(Math.min(...times))} .. ${f(Math.max(...times))})`;
}

/**
 * For the notes: per phase of a fault, the healthy store whose p99 grew most
 * against `before`, as "down ×1.31 (MYSQL), restarting ×2.52 (REDIS)".
 */
export function phaseP99s(
  samples: readonly Sample[],
  healthy: readonly StoreName[],
  before: Window,
  phases: readonly Window[],
): string {
  return phases.map((w) => {
    let worst = { store: "-", ratio: NaN };
    for (const store of healthy) {
      const base = p99(windowOf(samples, before.from, before.to, store));
      const ratio = p99(windowOf(samples, w.from, w.to, store)) / base;
      if (Number.isFinite(ratio) && !(ratio <= worst.ratio)) worst = { store, ratio };
    }
    return `${w.name} ×${worst.ratio.toFixed(2)} (${worst.store})`;
  }).join(", ");
}

/**
 * For the notes: the gateway's CPU (% of one core) and the machine's (% of
 * all cores) before the fault and in each phase, as
 * "CPU gateway/machine: before 96/99%, down 90/97%, restarting 85/100%".
 */
export function cpuNote(
  sampler: { cpu(from: number, to: number): { process: number; machine: number } },
  windows: readonly Window[],
): string {
  return "CPU gateway/machine: " + windows.map((w) => {
    const c = sampler.cpu(w.from, w.to);
    return `${w.name} ${c.process.toFixed(0)}/${c.machine.toFixed(0)}%`;
  }).join(", ");
}

/** When one fault happened, for {@linkcode judgeFault} (all `Date.now()` values). */
export interface FaultTimeline {
  /** The load started. */
  start: number;
  /** The "before" window starts (after the warm-up). */
  before: number;
  /** The fault began (kill, SIGSTOP). */
  fault: number;
  /** The fault's second phase began (restart, SIGCONT). */
  turn: number;
  /** The sick store served again (or `end` if it never did). */
  recovered: number;
  /** The load stopped. */
  end: number;
}

/** How a scenario names its fault, for the verdicts and notes. */
export interface FaultLabels {
  /** "is down and restarting". */
  during: string;
  /** "before the kill". */
  before: string;
  /** The sick store's window: "down". */
  sick: string;
  /** The two phases: ["down", "restarting"]. */
  phases: [string, string];
}

/** Every verdict of one fault scenario on `sick`. */
export interface FaultVerdict {
  others: OthersVerdict;
  sick: SickVerdict;
  /** Healthy stores' worst p99 growth per phase (for the notes). */
  phases: string;
  /** Gateway and machine CPU per phase (for the notes). */
  cpu: string;
  failures: number;
  breaches: string[];
}

/**
 * Judges a kill or stall of `sick`: the healthy stores over the fault
 * ({@linkcode judgeOthers}), the sick store before the fault and after its
 * recovery ({@linkcode judgeHealthy}) and during it ({@linkcode judgeSick},
 * each STORE_UNAVAILABLE within `boundMs`).
 */
export function judgeFault(
  samples: readonly Sample[],
  stores: readonly StoreName[],
  sick: StoreName,
  sampler: { cpu(from: number, to: number): { process: number; machine: number } },
  t: FaultTimeline,
  labels: FaultLabels,
  boundMs: number,
): FaultVerdict {
  const healthy = stores.filter((s) => s !== sick);
  const before = { name: "before", from: t.before, to: t.fault };
  const others = judgeOthers(samples, healthy, { name: "run", from: t.start, to: t.end }, before, {
    name: `${sick} ${labels.during}`,
    from: t.fault,
    to: t.recovered,
  });
  const phaseWindows = [
    { name: labels.phases[0], from: t.fault, to: t.turn },
    { name: labels.phases[1], from: t.turn, to: t.recovered },
  ];
  const early = judgeHealthy(samples, sick, { name: labels.before, from: t.start, to: t.fault });
  const during = judgeSick(
    samples,
    sick,
    { name: labels.sick, from: t.fault, to: t.recovered },
    boundMs,
  );
  const late = judgeHealthy(samples, sick, {
    name: "after recovery",
    from: t.recovered,
    to: t.end,
  });
  return {
    others,
    sick: during,
    phases: phaseP99s(samples, healthy, before, phaseWindows),
    cpu: cpuNote(sampler, [before, ...phaseWindows]),
    failures: others.failures + early.failures + during.failures + late.failures,
    breaches: [...others.breaches, ...early.breaches, ...during.breaches, ...late.breaches],
  };
}
