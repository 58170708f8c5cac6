/**
 * Redis's settings: `REDIS_URL` (`redis://user:pass@host:6379/0`, `rediss://`
 * for TLS) names the primary, `REDIS_READ_URL` one or more replicas that
 * serve reads. See `settings.ts` for the variables every store shares.
 *
 * @module
 */
import type { StoreSettings } from "./settings.ts";

/** What `REDIS_*` variables the gateway reads. */
export const settings: StoreSettings = {
  store: "REDIS",
  schemes: ["redis", "rediss"],
  nodes: "one",
  replicas: true,
  database: { default: "0" },
};
