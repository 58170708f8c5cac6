/**
 * MySQL's (and MariaDB's) settings: `MYSQL_URL` (`mysql://user:pass@host:3306/db`)
 * names the primary, `MYSQL_READ_URL` one or more replicas that serve reads.
 * See `settings.ts` for the variables every store shares.
 *
 * @module
 */
import type { StoreSettings } from "./settings.ts";

/** What `MYSQL_*` variables the gateway reads. */
export const settings: StoreSettings = {
  store: "MYSQL",
  schemes: ["mysql", "mariadb"],
  nodes: "one",
  replicas: true,
};
