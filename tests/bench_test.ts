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
import { checkTargets, listingRows, listingTable } from "../scripts/bench/report.ts";
import { renderColumns } from "../scripts/table.ts";
import { countWords } from "../scripts/bench/seed.ts";
import { percentile, Samples, summarise } from "../scripts/bench/stats.ts";
import { childEnvironment } from "../scripts/bench/stores.ts";
import type { BenchRun, Cell, Workload } from "../scripts/bench/types.ts";
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

Deno.test("counting a store's words finds the size within 1%, above and below the target", async () => {
  for (const truth of [0, 1, 640, 1000, 1500, 9_999, 37_000, 1_000_000]) {
    const probes: number[] = [];
    const has = (k: number) => {
      probes.push(k);
      return Promise.resolve(k <= truth);
    };
    const n = await countWords(has, 1000, 100_000);
    const expected = Math.min(truth, 100_000);
    assertOk(n <= expected, `counted ${n} of ${truth}: must be a lower bound`);
    assertOk(expected - n <= Math.max(1, expected / 100), `counted ${n} of ${truth}: within 1%`);
    assertOk(probes.length < 40, `${probes.length} probes for ${truth}`);
  }
});

Deno.test("a probe that fails counts as no, so the count stays a lower bound", async () => {
  const has = (k: number) => Promise.resolve(k <= 10_000 ? true : undefined);
  const n = await countWords(has, 100_000);
  assertOk(n <= 10_000 && n >= 9_900, `counted ${n}`);
});

Deno.test("flags: defaults are the issue's run, lists and switches parse, mistakes are named", () => {
  const d = parseBenchArgs([]);
  assertEquals(d.sizes, [1000, 10_000, 100_000]);
  assertEquals(d.concurrencies, [1, 16, 64]);
  assertEquals([d.duration, d.warmup, d.wipeAfter, d.wipeBefore, d.stores], [
    5,
    1,
    true,
    false,
    undefined,
  ]);
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

Deno.test("the gateway and baseline get only the measured stores' URLs", () => {
  const env = {
    REDIS_URL: "redis://x",
    COMPOSE_MYSQL_URL: "mysql://y",
    MYSQL_CA_CERT: "/ca.pem",
    PATH: "/bin",
  };
  assertEquals(childEnvironment(env, ["SQLITE", "REDIS"], { PORT: "0" }), {
    REDIS_URL: "redis://x",
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
      seedConcurrency: 64,
      loadGenerator: "autocannon",
    },
    skipped: [],
    seeds: [],
    cells,
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

Deno.test("targets: throughput at c16 (worst size), p99 growth, memory at c64", () => {
  const checks = checkTargets(run(CELLS, [1000, 100_000]));
  const find = (store: string | undefined, text: string) =>
    checks.find((c) => c.store === store && c.target.includes(text))!;
  assertEquals(find("SQLITE", "80%").met, true); // worst 85%
  assertStringIncludes(find("SQLITE", "80%").figure, "85%");
  assertEquals(find("SQLITE", "1.5×").met, true); // 12 / 10 = 1.2x
  assertEquals(find("REDIS", "80%").met, false); // 40%
  assertEquals(find("REDIS", "1.5×").met, false); // 30 / 10 = 3x
  assertEquals(find(undefined, "250 MiB").met, false); // 260 MiB
  const single = checkTargets(run(CELLS.filter((c) => c.size === 1000), [1000]));
  assertEquals(single.find((c) => c.target.includes("growth"))?.met, undefined);
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
