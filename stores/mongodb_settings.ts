/**
 * MongoDB's settings: `MONGODB_URL` is a MongoDB connection string
 * (`mongodb://user:pass@host1:27017,host2:27017/db?replicaSet=rs0` or
 * `mongodb+srv://…`), handed to the driver as written, so `replicaSet`,
 * `readPreference` and the other options work as in any MongoDB client. See
 * `settings.ts` for the variables every store shares.
 *
 * @module
 */
import type { StoreSettings } from "./settings.ts";

/** `scheme://[credentials@]hosts[/path][?query]`; hosts may be a comma-separated list. */
const CONNECTION_STRING =
  /^(mongodb|mongodb\+srv):\/\/(?:[^@/?#]*@)?([^/?#@]+)(?:\/[^?#]*)?(?:\?[^#]*)?$/;

/** What `MONGODB_*` variables the gateway reads. */
export const settings: StoreSettings = {
  store: "MONGODB",
  schemes: ["mongodb", "mongodb+srv"],
  nodes: "one",
  replicas: false,
  noReplicas: "name the replica set in MONGODB_URL and choose readPreference there",
  checkUrl(url: string) {
    const m = CONNECTION_STRING.exec(url);
    if (!m) {
      return /^[a-z+]+:\/\//i.test(url) && !/^mongodb(\+srv)?:\/\//.test(url)
        ? "must start with mongodb:// or mongodb+srv://"
        : "is not a valid MongoDB connection string";
    }
    const hosts = m[2].split(",");
    if (m[1] === "mongodb+srv" && hosts.length > 1) {
      return "names one host when it is a mongodb+srv:// URL";
    }
    const ok = hosts.every((h) => URL.canParse(`mongodb://${h}`) && !h.includes(" "));
    return ok ? undefined : "is not a valid MongoDB connection string";
  },
};
