/**
 * autocannon, for the benchmark's and the fault suite's load. Pinned here rather than in deno.json's
 * imports: deno.json and deno.lock list only what the gateway loads, so
 * `deno task start` on a fresh machine fetches nothing more (docs/performance.md,
 * "First start"). The test tasks lock it in deno.dev.lock.
 *
 * @module
 */
export { default } from "npm:autocannon@9.0.0";
export * from "npm:autocannon@9.0.0";
