/**
 * yaml, for tests/compose_test.ts. Pinned here rather than in deno.json's
 * imports: deno.json and deno.lock list only what the gateway loads, so
 * `deno task start` on a fresh machine fetches nothing more (docs/performance.md,
 * "First start"). The test tasks lock it in deno.dev.lock.
 *
 * @module
 */
export * from "npm:yaml@2.9.1";
