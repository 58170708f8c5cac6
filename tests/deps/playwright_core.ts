/**
 * playwright-core, for the browser test (it drives Debian's Chromium). Pinned here rather than in deno.json's
 * imports: deno.json and deno.lock list only what the gateway loads, so
 * `deno task start` on a fresh machine fetches nothing more (docs/performance.md,
 * "First start"). The test tasks lock it in deno.dev.lock.
 *
 * @module
 */
export * from "npm:playwright-core@1.65.1";
