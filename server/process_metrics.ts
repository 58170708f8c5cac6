/**
 * The process's own series: CPU time, start time, memory and event-loop
 * delay, measured with Deno's APIs.
 *
 * prom-client's `collectDefaultMetrics` is not used: under Deno with the
 * start task's permissions its memory and file-descriptor collectors read
 * `/proc/self`, which needs `--allow-all`, and report 0; its event-loop
 * delay (node:perf_hooks `monitorEventLoopDelay`) missed 100 ms stalls under
 * Deno 2.9; its handle, request and GC series are stubs there. The series
 * kept have the names Prometheus' own clients give them where one exists.
 *
 * @module
 */
import process from "node:process";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** How often the event-loop delay is sampled, in milliseconds. */
export const EVENT_LOOP_SAMPLE_MS = 20;

/** Registers the process series on `registry`; the returned function stops the delay sampler. */
export function registerProcessMetrics(registry: Registry): () => void {
  const registers = [registry];
  cpuCounters(registers);
  new Gauge({
    name: "process_start_time_seconds",
    help: "Start time of the process since the Unix epoch, in seconds.",
    registers,
    aggregator: "min", // each worker's isolate starts a little after the process
  }).set(Math.round(performance.timeOrigin / 1000));
  memoryGauge(
    registers,
    "process_resident_memory_bytes",
    "Resident memory size, in bytes.",
    "rss",
    "max", // the process's, whichever worker reads it
  );
  memoryGauge(registers, "deno_heap_used_bytes", "V8 heap in use, in bytes.", "heapUsed");
  memoryGauge(registers, "deno_heap_total_bytes", "V8 heap reserved, in bytes.", "heapTotal");
  memoryGauge(
    registers,
    "deno_external_memory_bytes",
    "Memory of objects outside the V8 heap bound to JavaScript objects, in bytes.",
    "external",
  );
  const delay = new Histogram({
    name: "grand_tour_event_loop_delay_seconds",
    help: `How late a timer due every ${EVENT_LOOP_SAMPLE_MS} ms fired: ` +
      "time the event loop could not serve anything else.",
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers,
  });
  return sampleEventLoopDelay((ms) => delay.observe(ms / 1000));
}

/**
 * Calls `observe` with the delay (ms, >= 0) of a timer due every
 * {@linkcode EVENT_LOOP_SAMPLE_MS}; the timer does not keep the process
 * alive. Returns the function that stops it.
 */
export function sampleEventLoopDelay(
  observe: (ms: number) => void,
  everyMs = EVENT_LOOP_SAMPLE_MS,
): () => void {
  let last = performance.now();
  const id = setInterval(() => {
    const now = performance.now();
    observe(Math.max(0, now - last - everyMs));
    last = now;
  }, everyMs);
  Deno.unrefTimer(id);
  return () => clearInterval(id);
}

function cpuCounters(registers: Registry[]): void {
  // From zero: the first scrape counts everything since start-up.
  let last = { user: 0, system: 0 };
  // The process's CPU, whichever worker reads it: with several, the latest reading.
  const counter = (name: string, help: string, collect?: () => void) =>
    new Counter({ name, help, registers, collect, aggregator: "max" });
  // Registered first, its collect updates all three before any of them is read.
  const user = counter("process_cpu_user_seconds_total", "User CPU time spent, in seconds.", () => {
    const now = process.cpuUsage();
    const du = Math.max(0, now.user - last.user) / 1e6;
    const ds = Math.max(0, now.system - last.system) / 1e6;
    last = now;
    user.inc(du);
    system.inc(ds);
    total.inc(du + ds);
  });
  const system = counter("process_cpu_system_seconds_total", "System CPU time spent, in seconds.");
  const total = counter("process_cpu_seconds_total", "User and system CPU time spent, in seconds.");
}

function memoryGauge(
  registers: Registry[],
  name: string,
  help: string,
  field: keyof Deno.MemoryUsage,
  aggregator: "sum" | "max" = "sum", // each worker's heap is its own
): void {
  new Gauge({
    name,
    help,
    registers,
    aggregator,
    collect() {
      this.set(Deno.memoryUsage()[field]);
    },
  });
}
