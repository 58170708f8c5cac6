/**
 * The fault suite's judge (tests/faults/support/judge.ts) on made-up
 * samples: which slowdowns of a healthy store it lets pass and which it
 * fails. No database or gateway needed.
 */
import { assertEquals, assertOk } from "./support/assert.ts";
import { describeWorst, judgeFault } from "./faults/support/judge.ts";
import { OK, type Sample } from "./faults/support/samples.ts";
import type { StoreName } from "../stores/types.ts";

const LABELS = {
  before: "before the kill",
  sick: "down",
  phases: ["down", "restarting"] as [string, string],
};
/** before 0–10 s, down 10–20 s, restarting 20–30 s, served again at 30 s, end 32 s. */
const T = { start: 0, before: 0, fault: 10_000, turn: 20_000, recovered: 30_000, end: 32_000 };
const NO_CPU = { cpu: () => ({ process: 0, machine: 0 }) };

/** 100 OK samples a second of `store` over `[from, to)`, each `ms` long of which `storeMs` in its database. */
function steady(store: StoreName, from: number, to: number, ms: number, storeMs: number): Sample[] {
  const out: Sample[] = [];
  for (let at = from; at < to; at += 10) {
    out.push({ at, store, op: "list", ms, status: 200, outcome: OK, storeMs });
  }
  return out;
}

/** A STORE_UNAVAILABLE answer of `store` at `at` that took `ms`. */
function unavailable(store: StoreName, at: number, ms: number): Sample {
  return { at, store, op: "list", ms, status: 200, outcome: "STORE_UNAVAILABLE" };
}

/** The sick store answering STORE_UNAVAILABLE fast from the kill until it serves again. */
function sick(): Sample[] {
  const out = steady("REDIS", 0, 10_000, 2, 1);
  for (let at = 10_000; at < 30_000; at += 10) out.push(unavailable("REDIS", at, 3));
  return [...out, ...steady("REDIS", 30_000, 32_000, 2, 1)];
}

function judge(healthy: Sample[]) {
  return judgeFault([...sick(), ...healthy], ["REDIS", "MYSQL"], "REDIS", NO_CPU, T, LABELS, 2000);
}

Deno.test("a healthy store as fast during the fault as before passes", () => {
  const v = judge(steady("MYSQL", 0, 32_000, 5, 4));
  assertEquals(v.breaches, []);
  assertEquals(v.sick.unavailable, 2000);
});

Deno.test("a healthy store whose requests queue behind the dead one fails the judge", () => {
  const v = judge([
    ...steady("MYSQL", 0, 10_000, 5, 4),
    // the gateway's own time grows: 5 ms → 80 ms, the database call unchanged
    ...steady("MYSQL", 10_000, 20_000, 80, 4),
    ...steady("MYSQL", 20_000, 32_000, 5, 4),
  ]);
  assertEquals(v.breaches.length, 1);
  assertOk(v.breaches[0].startsWith("MYSQL p99 80 ms while REDIS down"), v.breaches[0]);
});

Deno.test("while the sick database restarts, a healthy store's p99 is reported, not judged", () => {
  const before = steady("MYSQL", 0, 20_000, 5, 4);
  const after = steady("MYSQL", 30_000, 32_000, 5, 4);
  // its database call 4 → 60 ms while the other boots next to it
  const v = judge([...before, ...steady("MYSQL", 20_000, 30_000, 61, 60), ...after]);
  assertEquals(v.breaches, []);
  assertEquals(v.others.worst.map((w) => [w.window, w.judged, w.during.request]), [
    ["REDIS down", true, 5],
    ["REDIS restarting", false, 61],
  ]);
  assertOk(describeWorst(v.others.worst).endsWith("gateway's own 1.0 ms → 1.0 ms; not judged)"));
});

Deno.test("a healthy store's failure fails the judge in any phase", () => {
  const v = judge([...steady("MYSQL", 0, 32_000, 5, 4), unavailable("MYSQL", 25_000, 3)]);
  assertEquals(v.failures, 1);
  assertOk(v.breaches[0].startsWith("MYSQL failed STORE_UNAVAILABLE 1"), v.breaches[0]);
});

Deno.test("the sick store's STORE_UNAVAILABLE slower than the bound fails the judge", () => {
  const v = judge([...steady("MYSQL", 0, 32_000, 5, 4), unavailable("REDIS", 15_000, 2500)]);
  assertEquals(v.breaches, ["REDIS: 1 STORE_UNAVAILABLE slower than 2000 ms (max 2500 ms)"]);
});
