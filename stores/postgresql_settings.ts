/**
 * PostgreSQL's settings: `POSTGRESQL_URL` (`postgres://user:pass@host:5432/db`)
 * names the primary, `POSTGRESQL_READ_URL` one or more hot standbys that
 * serve reads. See `settings.ts` for the variables every store shares.
 *
 * @module
 */
import type { StoreSettings } from "./settings.ts";

/** The database when the URL names none. */
export const DEFAULT_DATABASE = "grand_tour";

/** What `POSTGRESQL_*` variables the gateway reads. */
export const settings: StoreSettings = {
  store: "POSTGRESQL",
  schemes: ["postgres", "postgresql"],
  nodes: "one",
  replicas: true,
  database: { default: DEFAULT_DATABASE },
};
