/**
 * fast-check, for the property tests. Pinned here rather than in deno.json's
 * imports: deno.json and deno.lock list only what the gateway loads, so
 * `deno task start` on a fresh machine fetches nothing more (docs/performance.md,
 * "First start"). The test tasks lock it in deno.dev.lock.
 *
 * @module
 */
export { default } from "npm:fast-check@4.10.2";
export * from "npm:fast-check@4.10.2";
