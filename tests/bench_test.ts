/**
 * The benchmark harness's pure parts: percentiles, counting a store's words
 * by probing, flags, the tables, the targets and the chart. Nothing here is
 * timed; the measurements themselves live in `deno task bench`.
 *
 * @module
 */
import { assertEquals, assertOk, assertStringIncludes, assertThrows } from "./support/assert.ts";
import { ArgsError, parseBenchArgs } from "../scripts/bench/args.ts";
import { renderChart, ticks, xml } from "../scripts/bench/chart.ts";
import { kibField } from "../scripts/server_process.ts";
import {
  checkTargets,
  listingRows,
  listingTable,
  scaleRows,
  scaleTable,
  seedTable,
  targetLines,
  unmeasuredLines,
} from "../scripts/bench/report.ts";
import { renderColumns } from "../scripts/table.ts";
import {
  batches,
  countByCursor,
  idBelow,
  idFloor,
  rarePosition,
  rareWord,
  seedId,
  seedMs,
  seedPlan,
  seedRecord,
  seedStore,
  seedWord,
} from "../scripts/bench/seed.ts";
import { isOnly } from "../scripts/bench/cells.ts";
import { cellConcurrencies, isUnavailable, workloadsFor } from "../scripts/bench.ts";
import {
  classicRows,
  classicTable,
  floorMs,
  floorTable,
  speedTargets,
} from "../scripts/bench/compare.ts";
import { timestampOf } from "../stores/records.ts";
import { fold } from "../stores/fold.ts";
import { decodeCursor, encodeCursor } from "../resolvers/cursor.ts";
import type { NewWord, WordRecord, WordStore } from "../stores/types.ts";
import { percentile, Samples, summarise } from "../scripts/bench/stats.ts";
import { childEnvironment } from "../scripts/bench/stores.ts";
import type { BenchRun, Cell, FloorCell, Workload } from "../scripts/bench/types.ts";
import type { StoreName } from "../stores/types.ts";

Deno.test("percentile uses the nearest rank over sorted values", () => {
  const sorted = Array.from({ length: 100 }, (_, i) => i + 1); // 1..100
  assertEquals(percentile(sorted, 50), 50);
  assertEquals(percentile(sorted, 99), 99);
  assertEquals(percentile(sorted, 100), 100);
  assertEquals(percentile(sorted, 0), 1);
  assertEquals(percentile([7], 99), 7);
  assertOk(Number.isNaN(percentile([], 50)));
});

Deno.test("samples keep every latency exactly, past their first buffer, and summarise sorted", () => {
  const samples = new Samples();
  for (let i = 10_000; i >= 1; i--) samples.push(i / 100); // 0.01 .. 100 ms, descending
  assertEquals(samples.length, 10_000);
  assertEquals(summarise(samples), { p50: 50, p90: 90, p99: 99, max: 100 });
});

Deno.test("flags: defaults are the issue's run, lists and switches parse, mistakes are named", () => {
  const d = parseBenchArgs([]);
  assertEquals(d.sizes, [1000, 10_000, 100_000, 1_000_000]);
  assertEquals(d.concurrencies, [1, 16, 64]);
  assertEquals([d.duration, d.warmup, d.wipeAfter, d.wipeBefore, d.stores], [
    3,
    1,
    true,
    true,
    undefined,
  ]);
  assertEquals([d.seedBatch, d.seedParallel], [2000, 4]);
  assertEquals([d.eventWrites, d.eventSubscribers], [200, 1000]);
  assertEquals(parseBenchArgs(["--event-writes", "0"]).eventWrites, 0);
  assertThrows(() => parseBenchArgs(["--event-subscribers", "0"]), ArgsError);
  assertEquals(parseBenchArgs(["--no-wipe-before"]).wipeBefore, false);
  assertThrows(() => parseBenchArgs(["--seed-batch", "0"]), ArgsError);
  const o = parseBenchArgs([
    "--stores",
    "sqlite,REDIS",
    "--sizes",
    "1_000,5000",
    "--duration",
    "3",
    "--no-wipe-after",
  ]);
  assertEquals([o.stores, o.sizes, o.duration, o.wipeAfter], [
    ["SQLITE", "REDIS"],
    [1000, 5000],
    3,
    false,
  ]);
  assertStringIncludes(
    assertThrows(() => parseBenchArgs(["--stores", "ORACLE"]), ArgsError).message,
    "ORACLE",
  );
  assertStringIncludes(
    assertThrows(() => parseBenchArgs(["--sizes", "10000,1000"]), ArgsError).message,
    "ascending",
  );
  assertThrows(() => parseBenchArgs(["--duration", "0"]), ArgsError);
  assertThrows(() => parseBenchArgs(["--bogus"]), ArgsError);
});

Deno.test("the gateway and baseline get only the measured stores' URLs and timeouts", () => {
  const env = {
    REDIS_URL: "redis://x",
    REDIS_TIMEOUT_MS: "3000",
    ELASTICSEARCH_TIMEOUT_MS: "5000",
    COMPOSE_MYSQL_URL: "mysql://y",
    MYSQL_CA_CERT: "/ca.pem",
    POSTGRESQL_READ_URL: "postgres://standby",
    REDIS_READ_URL: "redis://replica",
    PATH: "/bin",
  };
  assertEquals(childEnvironment(env, ["SQLITE", "REDIS"], { PORT: "0" }), {
    REDIS_URL: "redis://x",
    REDIS_TIMEOUT_MS: "3000",
    REDIS_READ_URL: "redis://replica",
    PATH: "/bin",
    PORT: "0",
  });
});

Deno.test("memory fields are read from /proc/<pid>/status text in kB", () => {
  const status = "Name:\tdeno\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
  assertEquals([kibField(status, "VmHWM"), kibField(status, "VmRSS"), kibField(status, "VmSwap")], [
    204800,
    102400,
    0,
  ]);
});

function cell(
  store: StoreName,
  size: number,
  concurrency: number,
  workload: Workload,
  rps: number,
  p99: number,
  rss?: number,
): Cell {
  return {
    store,
    size,
    held: size,
    concurrency,
    workload,
    seconds: 5,
    requests: rps * 5,
    rps,
    p50: p99 / 4,
    p90: p99 / 2,
    p99,
    max: p99 * 2,
    failures: 0,
    ...(rss === undefined ? {} : { gatewayRssMiB: rss }),
  };
}

function run(cells: Cell[], sizes: number[]): BenchRun {
  return {
    startedAt: "2026-01-01T00:00:00.000Z",
    finishedAt: "2026-01-01T00:10:00.000Z",
    machine: {
      cpuModel: "Test <CPU> & co",
      cores: 2,
      memoryGiB: 8,
      os: "linux",
      deno: "2.9.6",
      v8: "15",
      loadAverage: [0, 0, 0],
      commit: "abc",
    },
    settings: {
      stores: ["SQLITE", "REDIS"],
      sizes,
      concurrencies: [16, 64],
      durationSeconds: 5,
      warmupSeconds: 1,
      seedBatch: 2000,
      seedParallel: 4,
      seedSpacingMs: 30_000,
      cellConcurrencies: cellConcurrencies([16, 64]),
      queueBudgetMs: 8000,
      wipedBefore: true,
      loadGenerator: "autocannon",
    },
    durationSeconds: 600,
    skipped: [],
    seeds: [],
    checks: [],
    cells,
    gatewayStores: ["SQLITE", "REDIS", "MONGODB"],
    memory: sizes.map((size) => {
      const rss = cells.filter((c) => c.size === size && c.concurrency === 64)
        .map((c) => c.gatewayRssMiB ?? 0);
      return {
        size,
        peakRssAtC64MiB: rss.length ? Math.max(...rss) : 0,
        hwmMiB: Math.max(
          0,
          ...cells.filter((c) => c.size === size).map((c) => c.gatewayRssMiB ?? 0),
        ),
        rssAfterMiB: 100,
        mixedStores: ["SQLITE", "REDIS"],
      };
    }),
    gatewayMemory: {
      peakRssMiB: 240,
      peakRssAtC64MiB: Math.max(...cells.map((c) => c.gatewayRssMiB ?? 0)),
    },
    baselinePeakRssMiB: 100,
  };
}

const CELLS = [
  cell("SQLITE", 1000, 16, "gateway-words", 900, 10, 150),
  cell("SQLITE", 1000, 16, "baseline-words", 1000, 8),
  cell("SQLITE", 100_000, 16, "gateway-words", 850, 12, 160),
  cell("SQLITE", 100_000, 16, "baseline-words", 1000, 9),
  cell("SQLITE", 100_000, 64, "gateway-words", 800, 40, 260),
  cell("SQLITE", 100_000, 64, "baseline-words", 1000, 30),
  cell("REDIS", 1000, 16, "gateway-words", 500, 10, 150),
  cell("REDIS", 1000, 16, "baseline-words", 1000, 5),
  cell("REDIS", 100_000, 16, "gateway-words", 400, 30, 170),
  cell("REDIS", 100_000, 16, "baseline-words", 1000, 6),
];

Deno.test("listing rows pair each gateway cell with its baseline and give the ratio", () => {
  const rows = listingRows(CELLS);
  assertEquals(rows.length, 5);
  assertEquals(rows[0].ratio, 0.9);
  assertEquals(rows[4].ratio, 0.4);
  const table = listingTable(rows).split("\n");
  assertStringIncludes(table[0], "gateway req/s");
  assertEquals(table.length, 6);
  assertOk(table.every((l) => l.length === table[1].length), "columns are aligned");
  assertEquals(table[1].split(/ +/).slice(0, 4), ["SQLITE", "1000", "1000", "16"]);
});

Deno.test("markdown tables have a separator row that right-aligns numbers", () => {
  const md = renderColumns([["store", "req/s"], ["SQLITE", "12"]], true).split("\n");
  assertEquals(md[1], "|--------|------:|");
  assertEquals(md[2], "| SQLITE |    12 |");
});

Deno.test("targets: throughput at c16 (worst size), p99 growth, memory at c64 per size", () => {
  const checks = checkTargets(run(CELLS, [1000, 100_000]));
  const find = (store: string | undefined, text: string) =>
    checks.find((c) => c.store === store && c.target.includes(text))!;
  assertEquals(find("SQLITE", "80%").met, true); // worst 85%
  assertStringIncludes(find("SQLITE", "80%").figure, "85%");
  assertEquals(find("SQLITE", "first page").met, true); // 12 / 10 = 1.2x
  assertEquals(find("REDIS", "80%").met, false); // 40%
  assertEquals(find("REDIS", "first page").met, false); // 30 / 10 = 3x
  // One size of at least 10,100 words: the cursor target cannot be judged.
  assertEquals(find("SQLITE", "cursor").met, undefined);
  // Memory per size: no c64 cell at 1000 words is a miss; 260 MiB at 100,000 too.
  assertEquals(find(undefined, "250 MiB at c64, 1000 words").met, false);
  assertStringIncludes(find(undefined, "250 MiB at c64, 1000 words").figure, "not measured");
  assertEquals(find(undefined, "250 MiB at c64, 100000 words").met, false);
  assertStringIncludes(find(undefined, "100000 words").figure, "3 stores");
  const single = checkTargets(run(CELLS.filter((c) => c.size === 1000), [1000]));
  assertEquals(single.find((c) => c.target.includes("growth"))?.met, undefined);
});

function floor(which: FloorCell["floor"], rps: number, concurrency = 16): FloorCell {
  return {
    floor: which,
    concurrency,
    seconds: 5,
    requests: rps * 5,
    rps,
    p50: 1,
    p90: 2,
    p99: 3,
    max: 4,
    failures: 0,
  };
}

// ms per request: bare 0.1, plain Yoga 0.5, Yoga + JIT 0.25.
const FLOORS = [floor("bare", 10_000), floor("yoga", 2000), floor("jit", 4000)];

Deno.test("floors: ms per request from throughput; a floor that failed is not read", () => {
  assertEquals(floorMs(FLOORS), { bare: 0.1, yoga: 0.5, jit: 0.25 });
  assertEquals(floorMs(FLOORS, 64), undefined);
  assertEquals(floorMs([...FLOORS.slice(0, 2), { ...FLOORS[2], failures: 1 }]), undefined);
  const table = floorTable([floor("jit", 4000), floor("bare", 10_000)]).split("\n");
  assertEquals(table.length, 3);
  assertStringIncludes(table[1], "bare Deno.serve handler");
  assertStringIncludes(table[2], "0.250");
});

Deno.test("the Express workloads are measured only on the stores with a classic app", () => {
  assertOk(workloadsFor("POSTGRESQL").includes("express-words"));
  assertOk(workloadsFor("REDIS").includes("express-addWord"));
  assertEquals(workloadsFor("SQLITE").filter((w) => w.startsWith("express")), []);
  assertEquals(workloadsFor("SQLITE").at(-1), "gateway-addWord", "adding comes last");
  assertEquals(workloadsFor("REDIS").at(-1), "express-addWord", "adding comes last");
});

Deno.test("speed targets: Yoga's own cost, the gateway over Yoga, and the Express apps", () => {
  const cells = [
    ...CELLS,
    cell("REDIS", 1000, 16, "express-words", 250, 10),
    cell("REDIS", 1000, 16, "gateway-addWord", 600, 10),
    cell("REDIS", 1000, 16, "express-addWord", 1200, 10),
    cell("REDIS", 100_000, 16, "express-words", 200, 10),
    cell("REDIS", 100_000, 16, "gateway-addWord", 600, 10),
    cell("REDIS", 100_000, 16, "express-addWord", 500, 10),
  ];
  const checks = speedTargets({ ...run(cells, [1000, 100_000]), floors: FLOORS });
  const find = (store: string | undefined, text: string) =>
    checks.find((c) => c.store === store && c.target.includes(text))!;
  // 0.25 − 0.1 ms against 0.5 − 0.1 ms: halved.
  assertEquals(find(undefined, "Yoga's own cost").met, true);
  assertStringIncludes(find(undefined, "Yoga's own cost").figure, "0.150 ms with the JIT, 0.400");
  // SQLite at 100,000: 1/850 s = 1.176 ms − (1 ms − 0.1 ms) = 0.276 ms, 1.11× the JIT's 0.25 ms.
  assertEquals(find("SQLITE", "Yoga+JIT").met, true);
  assertStringIncludes(find("SQLITE", "Yoga+JIT").figure, "1.11× (worst, at 100000 words)");
  // Redis at 100,000: 2.5 ms − 0.9 ms = 1.6 ms, 6.4×.
  assertEquals(find("REDIS", "Yoga+JIT").met, false);
  // Listing 2×, 2×; adding 0.5× at 1000 words: the worst decides.
  assertEquals(find("REDIS", "Express").met, false);
  assertStringIncludes(find("REDIS", "Express").figure, "0.50× (worst: adding at 1000 words)");
  assertEquals(find("SQLITE", "Express"), undefined, "no Express app for SQLite");
  const rows = classicRows(cells);
  assertEquals(rows.map((r) => [r.size, r.gatewayList / r.expressList]), [[1000, 2], [
    100_000,
    2,
  ]]);
  assertStringIncludes(classicTable(rows).split("\n")[2], "1.20");
  const none = speedTargets(run(cells, [1000]));
  assertEquals(none.find((c) => c.target.includes("Yoga's own"))?.met, false, "no floors: missed");
});

Deno.test("targets: the deep cursor page from the size before the largest; skipped cells are misses", () => {
  const cursor = (store: StoreName, size: number, p99: number) =>
    cell(store, size, 16, "gateway-cursor", 500, p99);
  const skipped: Cell = {
    ...cell("MONGODB", 1_000_000, 16, "gateway-words", 0, NaN),
    notMeasured: "one request takes 27000 ms",
  };
  const cells = [
    cursor("SQLITE", 100_000, 10),
    cursor("SQLITE", 1_000_000, 14),
    cursor("REDIS", 100_000, 10),
    cursor("REDIS", 1_000_000, 16),
    cell("MONGODB", 1000, 16, "gateway-words", 50, 300),
    skipped,
    cell("SQLITE", 1000, 64, "gateway-words", 900, 10, 240),
    cell("SQLITE", 1_000_000, 64, "gateway-words", 900, 10, 249.9),
  ];
  const r = run(cells, [1000, 100_000, 1_000_000]);
  r.settings.stores = ["SQLITE", "REDIS", "MONGODB"];
  const checks = checkTargets(r);
  const find = (store: string | undefined, text: string) =>
    checks.find((c) => c.store === store && c.target.includes(text))!;
  assertStringIncludes(find("SQLITE", "cursor").target, "at 1000000 ≤ 1.5× p99 at 100000");
  assertEquals(find("SQLITE", "cursor").met, true); // 1.4x
  assertEquals(find("REDIS", "cursor").met, false); // 1.6x
  const mongo = find("MONGODB", "first page");
  assertEquals(mongo.met, false);
  assertStringIncludes(mongo.figure, "not measured at 1000000 words: one request takes 27000 ms");
  assertStringIncludes(mongo.expected ?? "", "FerretDB");
  assertEquals(find("MONGODB", "cursor").met, false); // no cell at all: missed
  assertEquals(find(undefined, "1000 words").met, true); // 240 MiB
  assertEquals(find(undefined, "100000 words").met, false); // no c64 cell
  assertEquals(find(undefined, "1000000 words").met, true); // 249.9 MiB
  const text = targetLines(checks);
  assertStringIncludes(text, "MISS  first page p99 at 1000000");
  assertStringIncludes(text, "(expected: no ordered access)");
  assertStringIncludes(text, "  MONGODB: FerretDB v1");
});

Deno.test("scale rows: first page, cursor and rare search per store and size; unmeasured reasons listed", () => {
  const cells = [
    cell("REDIS", 100_000, 16, "gateway-words", 900, 20),
    cell("REDIS", 100_000, 64, "gateway-words", 900, 40, 180),
    cell("REDIS", 100_000, 16, "gateway-cursor", 900, 22),
    cell("REDIS", 100_000, 1, "gateway-search", 5, 300),
    { ...cell("REDIS", 100_000, 16, "gateway-search", 0, NaN), notMeasured: "too slow" },
    { ...cell("REDIS", 1000, 16, "gateway-cursor", 0, NaN), notMeasured: "too few" },
    { ...cell("REDIS", 1000, 64, "gateway-cursor", 0, NaN), notMeasured: "too few" },
  ];
  const r = run(cells, [1000, 100_000]);
  r.settings.stores = ["REDIS"];
  r.seeds = [{
    store: "REDIS",
    target: 100_000,
    before: 1000,
    added: 99_000,
    held: 100_000,
    seconds: 12.5,
    wordsPerSecond: 7920,
    batch: 2000,
    parallel: 4,
  }];
  const rows = scaleRows(r);
  assertEquals(rows.length, 2);
  const big = rows[1];
  assertEquals(
    [big.size, big.seedSeconds, big.firstP99, big.cursorP99, big.rareC1P99, big.rssC64],
    [100_000, 12.5, 20, 22, 300, 180],
  );
  assertOk(Number.isNaN(big.rareC16P99));
  const table = scaleTable(rows).split("\n");
  assertEquals(table.length, 3);
  assertStringIncludes(table[0], "cursor p99");
  assertEquals(unmeasuredLines(cells), [
    "REDIS 100000 gateway-search c16: too slow",
    "REDIS 1000 gateway-cursor c16,c64: too few",
  ]);
  assertStringIncludes(seedTable(r.seeds), "2000 x 4");
});

Deno.test("the chart is one SVG with a bar per measured value and escaped text", () => {
  const svg = renderChart(run(CELLS, [1000, 100_000]));
  assertOk(svg.startsWith("<svg ") && svg.trimEnd().endsWith("</svg>"));
  // ratio panel: 2 stores x 2 concurrencies at 100k, minus REDIS c64 (not measured) = 3;
  // p99 panel: 2 stores x 2 sizes at c16 = 4; plus 4 legend swatches and the background.
  assertEquals((svg.match(/<rect /g) ?? []).length, 3 + 4 + 4 + 1);
  assertStringIncludes(svg, "Test &#60;CPU&#62; &#38; co");
  assertOk(!svg.includes("NaN"), "no NaN reaches the SVG");
  assertEquals(xml(`a<b>"c"&'d'`), "a&#60;b&#62;&#34;c&#34;&#38;&#39;d&#39;");
});

Deno.test("axis ticks are round: linear from 0, log in 1-2-5 steps", () => {
  assertEquals(ticks(0, 1.04, false), [0, 0.25, 0.5, 0.75, 1]);
  assertEquals(ticks(1, 100, true), [1, 2, 5, 10, 20, 50, 100]);
});

const PLAN = seedPlan("t0", 1_000_000, Date.parse("2026-11-28T12:00:00.000Z"), 30_000, 0xabc);

Deno.test("seeded ids: UUIDv7, strictly increasing with n, spread back in time ending at the plan's end", () => {
  const ids = [0, 1, 2, 499_999, 500_000, 999_998, 999_999].map((n) => seedId(PLAN, n));
  for (let i = 1; i < ids.length; i++) assertOk(ids[i - 1] < ids[i], `${ids[i - 1]} < ${ids[i]}`);
  for (const id of ids) {
    // The gateway's own cursor check accepts exactly canonical lower-case UUIDv7s.
    assertEquals(decodeCursor(encodeCursor("SCYLLA", undefined, id), "SCYLLA", undefined), id);
  }
  assertEquals(timestampOf(seedId(PLAN, 999_999)), "2026-11-28T12:00:00.000Z");
  assertEquals(timestampOf(seedId(PLAN, 999_998)), "2026-11-28T11:59:30.000Z");
  assertEquals(seedMs(PLAN, 0), PLAN.endMs - 999_999 * 30_000); // ~347 days back
  // 120 words an hour: a million words fill ~8,334 hourly Scylla buckets.
  const hours = new Set(
    Array.from({ length: 10_000 }, (_, n) => Math.floor(seedMs(PLAN, n) / 3_600_000)),
  );
  assertOk(hours.size >= 83 && hours.size <= 85, `${hours.size} hours`);
  // Words the addWord cells store later have ids above every seeded id.
  const floor = idFloor(PLAN.endMs + 1);
  assertOk(seedId(PLAN, 999_999) < floor);
  assertOk(floor < seedId(seedPlan("later", 1, PLAN.endMs + 5), 0));
  assertThrows(() => seedPlan("t", 10, 0, 30_000), RangeError);
  assertThrows(() => seedId(PLAN, -1), RangeError);
});

Deno.test("seeded words: equal widths, so no word or rare word is found by another's search", () => {
  const words = [0, 7, 70, 700, 999_999].map((n) => seedWord(PLAN, n).word);
  const rares = [1000, 10_000, 100_000, 1_000_000].map((size) => rareWord(PLAN, size));
  const all = [...words, ...rares];
  for (const a of all) {
    for (const b of all) if (a !== b) assertOk(!b.includes(a), `${a} inside ${b}`);
  }
  assertEquals(rarePosition(0, 1000), 500);
  assertEquals(rarePosition(1000, 10_000), 5000);
  assertEquals(rarePosition(100_000, 1_000_000), 500_000);
  assertEquals(rarePosition(1000, 1500), 1000); // a small step: its first word
  const rare = seedRecord(PLAN, 500, 1000);
  assertEquals([rare.id, rare.word], [seedId(PLAN, 500), rareWord(PLAN, 1000)]);
  assertOk(rare.searchKey.includes(fold(rare.word)));
  assertOk(!seedRecord(PLAN, 501).searchKey.includes(fold(rare.word)));
  assertEquals(seedRecord(PLAN, 3).createdAt, timestampOf(seedRecord(PLAN, 3).id));
});

/** A store in memory that records its addMany calls. */
function fakeStore(withAddMany = true) {
  const stored: NewWord[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let adds = 0;
  const store: WordStore = {
    add() {
      adds++;
      return Promise.resolve();
    },
    list({ limit, after }) {
      const sorted = [...stored].sort((a, b) => (a.id < b.id ? -1 : 1));
      const from = after === undefined ? sorted : sorted.filter((r) => r.id > after);
      return Promise.resolve(from.slice(0, limit) as WordRecord[]);
    },
    get: (id) => Promise.resolve(stored.find((r) => r.id === id) as WordRecord | undefined),
    replace: () => Promise.reject(new Error("the benchmark never edits")),
    remove: () => Promise.reject(new Error("the benchmark never deletes")),
    ping: () => Promise.resolve(),
    close: () => Promise.resolve(),
    async addMany(records: NewWord[]) {
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      await new Promise((r) => setTimeout(r, 1));
      stored.push(...records);
      inFlight--;
    },
  };
  // A module from before addMany was part of the contract.
  if (!withAddMany) delete (store as Partial<WordStore>).addMany;
  return { store, stored, maxInFlight: () => maxInFlight, adds: () => adds };
}

Deno.test("seeding goes through addMany in batches, a few in flight, and refuses a store without it", async () => {
  assertEquals(batches(1000, 5500, 2000), [[1000, 3000], [3000, 5000], [5000, 5500]]);
  const fake = fakeStore();
  const plan = seedPlan("t1", 10_000);
  const first = await seedStore("REDIS", fake.store, plan, 0, 1000, 0, { batch: 300, parallel: 2 });
  const second = await seedStore("REDIS", fake.store, plan, 1000, 10_000, 1000, {
    batch: 2000,
    parallel: 3,
  });
  assertEquals([first.added, first.held, second.before, second.held], [1000, 1000, 1000, 10_000]);
  assertEquals([second.batch, second.parallel], [2000, 3]);
  assertOk(fake.maxInFlight() <= 3 && fake.maxInFlight() >= 2, `${fake.maxInFlight()} in flight`);
  assertEquals(fake.stored.length, 10_000);
  assertEquals(new Set(fake.stored.map((r) => r.id)).size, 10_000);
  assertEquals(fake.stored.filter((r) => r.word.startsWith("bench-rare-")).map((r) => r.id), [
    seedId(plan, 500),
    seedId(plan, 5000),
  ]);
  assertEquals(await countByCursor(fake.store, undefined, 200_000, 999), {
    count: 10_000,
    complete: true,
  });
  assertEquals(await countByCursor(fake.store, seedId(plan, 9_989)), { count: 10, complete: true });
  assertEquals(await countByCursor(fake.store, undefined, 3000), { count: 3000, complete: false });
  assertEquals(await countByCursor(fake.store, idFloor(plan.endMs + 1)), {
    count: 0,
    complete: true,
  });

  const none = fakeStore(false);
  const e = await seedStore("SQLITE", none.store, plan, 0, 10, 0, { batch: 5, parallel: 1 })
    .then(() => undefined, (e: Error) => e);
  assertEquals(e?.name, "NoBulkPathError");
  assertStringIncludes(e!.message, "SQLITE: the store module has no addMany");
  assertEquals(none.adds(), 0);
});

Deno.test("a search answer passes only with exactly the one rare word", () => {
  const ok = isOnly("id-1");
  const word = (id: string) => `{"id":"${id}","word":"w","definition":"d","store":"REDIS"}`;
  assertOk(ok(`{"data":{"words":[${word("id-1")}]}}`));
  assertOk(!ok(`{"data":{"words":[${word("id-1")},${word("id-2")}]}}`));
  assertOk(!ok(`{"data":{"words":[${word("id-2")}]}}`));
  assertOk(!ok(`{"data":{"words":[]}}`));
  assertOk(!ok(`{"data":{"words":[${word("id-1")}]},"errors":[{}]}`));
});

Deno.test("a batch that failed late but was stored is not sent again: no word twice", async () => {
  assertEquals(idBelow("01a2-0010"), "01a2-000f");
  assertEquals(idBelow("0100-0000"), "00ff-ffff");
  assertEquals(idBelow("0000-0000"), undefined);
  const plan = seedPlan("t2", 5000);
  const id = seedId(plan, 1234);
  assertOk(seedId(plan, 1233) < idBelow(id)! && idBelow(id)! < id);

  const fake = fakeStore();
  const addMany = fake.store.addMany!.bind(fake.store);
  let calls = 0;
  const sent: number[] = [];
  fake.store.addMany = async (records) => {
    calls++;
    sent.push(records.length);
    if (calls === 2) {
      // Stores half of the batch, then fails as a client-side timeout would.
      await addMany(records.slice(0, records.length / 2));
      throw new Error("request timed out");
    }
    await addMany(records);
  };
  const r = await seedStore("ELASTICSEARCH", fake.store, plan, 0, 5000, 0, {
    batch: 1000,
    parallel: 1,
    settleMs: 1,
  });
  assertEquals(r.added, 5000);
  assertEquals(fake.stored.length, 5000);
  assertEquals(new Set(fake.stored.map((w) => w.id)).size, 5000);
  assertEquals(sent, [1000, 1000, 500, 1000, 1000, 1000]);
});

Deno.test("a check that timed out is the store's slowness, not a wrong answer", () => {
  const body = '{"data":null,"errors":[{"message":"MONGODB is unavailable: database error",' +
    '"extensions":{"code":"STORE_UNAVAILABLE","store":"MONGODB"}}]}';
  assertOk(isUnavailable(`HTTP 200: ${body}`));
  assertOk(isUnavailable("TimeoutError: Signal timed out."));
  assertOk(!isUnavailable('HTTP 200: {"data":{"words":[]}}'));
  assertOk(!isUnavailable('HTTP 400: {"errors":[{"extensions":{"code":"BAD_USER_INPUT"}}]}'));
});
