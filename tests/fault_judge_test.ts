/**
 * The fault suite's judge (tests/faults/support/judge.ts) on made-up
 * samples: which slowdowns of a healthy store it lets pass and which it
 * fails; its check of acknowledged adds, edits and deletions
 * (tests/faults/support/verify.ts) on made-up listings; and the load's mix of
 * requests (tests/faults/support/mix.ts). No database or gateway needed.
 */
import { assertEquals, assertOk } from "./support/assert.ts";
import { describeWorst, judgeFault, onlyP99Breaches, waitServing } from "./faults/support/judge.ts";
import { ConnectionMix, WordNames } from "./faults/support/mix.ts";
import {
  type Ack,
  type Change,
  OK,
  type Op,
  type Sample,
  type Settled,
} from "./faults/support/samples.ts";
import { judgeWrites, type ListedWord } from "./faults/support/verify.ts";
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

Deno.test("a scenario is measured again only when the healthy-p99 rule is all it broke", () => {
  const slow = judge([
    ...steady("MYSQL", 0, 10_000, 5, 4),
    ...steady("MYSQL", 10_000, 20_000, 80, 4),
    ...steady("MYSQL", 20_000, 32_000, 5, 4),
  ]);
  assertOk(onlyP99Breaches(slow.breaches), slow.breaches.join("; "));
  const failed = judge([...steady("MYSQL", 0, 32_000, 5, 4), unavailable("MYSQL", 25_000, 3)]);
  assertEquals(onlyP99Breaches(failed.breaches), false);
  assertEquals(onlyP99Breaches([...slow.breaches, ...failed.breaches]), false);
  assertEquals(onlyP99Breaches(["1 acknowledged add lost"]), false);
  assertEquals(onlyP99Breaches([]), false);
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

Deno.test("a healthy store's failure fails the judge in any phase, named one by one", () => {
  const v = judge([...steady("MYSQL", 0, 32_000, 5, 4), unavailable("MYSQL", 25_000, 3)]);
  assertEquals(v.failures, 1);
  assertOk(v.breaches[0].startsWith("MYSQL failed STORE_UNAVAILABLE 1"), v.breaches[0]);
  assertOk(v.breaches[0].endsWith("; list 3 ms STORE_UNAVAILABLE from +15.0 s"), v.breaches[0]);
});

Deno.test("the sick store's STORE_UNAVAILABLE slower than the bound fails the judge", () => {
  const v = judge([...steady("MYSQL", 0, 32_000, 5, 4), unavailable("REDIS", 15_000, 2500)]);
  assertEquals(v.breaches, ["REDIS: 1 STORE_UNAVAILABLE slower than 2000 ms (max 2500 ms)"]);
});

Deno.test("an edit or deletion is a write like an add: failing on a healthy store fails the judge", () => {
  const failed = (op: "edit" | "delete"): Sample => ({
    ...unavailable("MYSQL", 25_000, 3),
    op,
  });
  for (const op of ["edit", "delete"] as const) {
    const v = judge([...steady("MYSQL", 0, 32_000, 5, 4), failed(op)]);
    assertEquals(v.failures, 1);
  }
  const notFound = { ...unavailable("MYSQL", 5_000, 3), op: "edit" as const, outcome: "NOT_FOUND" };
  assertEquals(judge([...steady("MYSQL", 0, 32_000, 5, 4), notFound]).failures, 1);
});

Deno.test("a killed primary may fail writes, never reads; a killed replica's store may fail nothing", () => {
  // The sick store: reads served throughout, writes STORE_UNAVAILABLE while the primary is down.
  const reads = steady("REDIS", 0, 32_000, 2, 1);
  const writes = (outcome: string): Sample[] =>
    steady("REDIS", 10_000, 30_000, 3, 1).map((x) => ({ ...x, at: x.at + 5, op: "add", outcome }));
  const healthy = steady("MYSQL", 0, 32_000, 5, 4);
  const judgeAs = (role: "primary" | "replica", samples: Sample[]) =>
    judgeFault(samples, ["REDIS", "MYSQL"], "REDIS", NO_CPU, T, LABELS, 2000, role);

  const primary = judgeAs("primary", [...reads, ...writes("STORE_UNAVAILABLE"), ...healthy]);
  assertEquals(primary.breaches, []);
  assertEquals(primary.sick.unavailable, 2000);

  // One read failing while the primary is down fails the scenario.
  const failedRead = { ...reads[1500], outcome: "STORE_UNAVAILABLE" };
  const v = judgeAs("primary", [...reads, failedRead, ...writes("STORE_UNAVAILABLE"), ...healthy]);
  assertEquals(v.failures, 1);
  assertOk(v.breaches[0].startsWith("REDIS reads while down: STORE_UNAVAILABLE 1"), v.breaches[0]);

  // A replica down: the same STORE_UNAVAILABLE writes are failures, every one.
  const replica = judgeAs("replica", [...reads, ...writes("STORE_UNAVAILABLE"), ...healthy]);
  assertEquals(replica.failures, 2000);
  assertOk(replica.breaches[0].startsWith("REDIS while its replica was down"), replica.breaches[0]);
  assertEquals(judgeAs("replica", [...reads, ...writes(OK), ...healthy]).breaches, []);
});

Deno.test("a store serves again once it answered an add, a list, an edit and a deletion", async () => {
  const ok = (op: Op, at: number): Sample => ({ ...steady("REDIS", at, at + 1, 2, 1)[0], op });
  const load = { samples: [ok("add", 1_000), ok("list", 1_100), ok("edit", 1_200)] };
  assertEquals(await waitServing(load, "REDIS", 0, Date.now() + 150), undefined);
  load.samples.push(ok("delete", 1_300));
  assertEquals(await waitServing(load, "REDIS", 0, Date.now() + 150), 1_300);
});

/** An acknowledged add of `id` on REDIS, added with the definition "original". */
function added(id: string): Ack {
  return { store: "REDIS", id, tag: "ftag", word: `ftag ${id}`, definition: "original", at: 0 };
}

/** An edit of `id` to `definition` that ended `settled`. */
function edit(id: string, definition: string, settled: Settled): Change {
  const updatedAt = settled === "acknowledged" ? "2026-01-01T00:00:00.000Z" : undefined;
  return { store: "REDIS", id, op: "edit", settled, definition, updatedAt };
}

/** A deletion of `id` that ended `settled`. */
function deletion(id: string, settled: Settled): Change {
  return { store: "REDIS", id, op: "delete", settled };
}

/** `id` as the check lists it, with `definition`. */
function listed(id: string, definition: string): ListedWord {
  return { store: "REDIS", id, word: `ftag ${id}`, definition, updatedAt: null };
}

Deno.test("acknowledged edits and deletions that held pass the check", () => {
  const d = judgeWrites({
    acks: [added("a"), added("b"), added("c")],
    changes: [
      edit("a", "edit 1", "acknowledged"),
      edit("a", "edit 2", "acknowledged"),
      edit("b", "edit 3", "acknowledged"),
      deletion("b", "acknowledged"),
    ],
  }, [listed("a", "edit 2"), listed("c", "original")]);
  assertEquals(d.problems, []);
  assertEquals([d.lost, d.deleted], [0, 1]);
  assertEquals(d.changes, {
    edits: { acked: 3, verified: 3, lost: 0, unknown: 0, refused: 0 },
    deletions: { acked: 1, verified: 1, resurrected: 0, unknown: 0, refused: 0 },
  });
});

Deno.test("an acknowledged edit whose value is not there fails the check", () => {
  const d = judgeWrites({
    acks: [added("a")],
    changes: [edit("a", "edit 1", "acknowledged"), edit("a", "edit 2", "acknowledged")],
  }, [listed("a", "edit 1")]);
  assertEquals(d.changes.edits, { acked: 2, verified: 1, lost: 1, unknown: 0, refused: 0 });
  assertEquals(d.problems.length, 1);
  assertOk(d.problems[0].startsWith('REDIS: 1 acknowledged edits lost (a lists "edit 1"'));
});

Deno.test("an acknowledged edit superseded by a later edit of unknown outcome passes", () => {
  const changes = [edit("a", "edit 1", "acknowledged"), edit("a", "edit 2", "unknown")];
  for (const value of ["edit 1", "edit 2"]) {
    const d = judgeWrites({ acks: [added("a")], changes }, [listed("a", value)]);
    assertEquals(d.problems, [], value);
    assertEquals(d.changes.edits, { acked: 1, verified: 1, lost: 0, unknown: 1, refused: 0 });
  }
});

Deno.test("an unknown edit sent before the last acknowledged one cannot stand for it", () => {
  const d = judgeWrites({
    acks: [added("a")],
    changes: [edit("a", "edit 1", "unknown"), edit("a", "edit 2", "acknowledged")],
  }, [listed("a", "edit 1")]);
  assertEquals(d.changes.edits.lost, 1);
});

Deno.test("a refused edit's value, or one nobody sent, fails the check", () => {
  const refused = judgeWrites({ acks: [added("a")], changes: [edit("a", "edit 1", "refused")] }, [
    listed("a", "edit 1"),
  ]);
  assertEquals(refused.lost, 1);
  assertOk(refused.problems[0].includes("definition no request sent"), refused.problems[0]);
  const unsent = judgeWrites({ acks: [added("a")], changes: [] }, [listed("a", "edit 9")]);
  assertEquals(unsent.lost, 1);
});

Deno.test("an edited word missing without a deletion loses its add and its last edit", () => {
  const d = judgeWrites({ acks: [added("a")], changes: [edit("a", "edit 1", "acknowledged")] }, []);
  assertEquals([d.lost, d.changes.edits.lost], [1, 1]);
  assertEquals(d.problems.length, 2);
});

Deno.test("a word listed after its acknowledged deletion is resurrected and fails the check", () => {
  const d = judgeWrites({ acks: [added("a")], changes: [deletion("a", "acknowledged")] }, [
    listed("a", "original"),
  ]);
  assertEquals(d.changes.deletions, {
    acked: 1,
    verified: 0,
    resurrected: 1,
    unknown: 0,
    refused: 0,
  });
  assertEquals(d.problems, ["REDIS: 1 acknowledged deletions resurrected (a)"]);
});

Deno.test("a deletion of unknown outcome passes whether the word is listed or not", () => {
  const changes = [edit("a", "edit 1", "acknowledged"), deletion("a", "unknown")];
  for (const found of [[], [listed("a", "edit 1")]]) {
    const d = judgeWrites({ acks: [added("a")], changes }, found);
    assertEquals(d.problems, [], `${found.length} listed`);
    assertEquals(d.lost, 0);
    assertEquals(d.changes.deletions.unknown, 1);
    assertEquals(d.changes.edits.verified, 1);
  }
});

Deno.test("a connection mixes add : list : edit : delete as 4 : 4 : 3 : 1, on its own live words only", () => {
  const record = { acks: [] as Ack[], changes: [] as Change[] };
  const mix = new ConnectionMix("REDIS", "c0", new WordNames(), "original", record);
  const counts = new Map<string, number>();
  let n = 0;
  // with no word of its own yet, an edit or deletion slot lists instead
  assertEquals([mix.next().op, mix.next().op, mix.next().op], ["add", "list", "list"]);
  for (let i = 0; i < 12 * 100 - 3; i++) {
    const request = mix.next();
    counts.set(request.op, (counts.get(request.op) ?? 0) + 1);
    if (request.op === "add") {
      const id = `w${n++}`;
      mix.end(request, OK, { id, word: `ftag ${id}`, definition: "original" });
    } else if (request.op === "edit" || request.op === "delete") {
      assertOk(record.acks.includes(request.target!), "only its own acknowledged words");
      assertOk(
        !record.changes.some((c) => c.id === request.target!.id && c.op === "delete"),
        "never a word it sent a deletion of",
      );
      const outcome = i % 10 === 0 ? "STORE_UNAVAILABLE" : OK;
      mix.end(request, outcome, outcome === OK ? { id: request.target!.id } : undefined);
    }
  }
  assertEquals(Object.fromEntries(counts), { add: 399, list: 399, edit: 299, delete: 100 });
  const edits = record.changes.filter((c) => c.op === "edit").map((c) => c.definition);
  assertEquals(new Set(edits).size, edits.length, "every edit sets a new definition");
});
