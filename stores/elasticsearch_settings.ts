/**
 * Elasticsearch's settings: `ELASTICSEARCH_URL` lists one or more nodes of
 * one cluster (`https://user:pass@host:9200`, comma-separated); the client
 * spreads requests over them and the cluster routes reads to shard copies
 * itself. See `settings.ts` for the variables every store shares.
 *
 * @module
 */
import type { StoreSettings } from "./settings.ts";

/** What `ELASTICSEARCH_*` variables the gateway reads. */
export const settings: StoreSettings = {
  store: "ELASTICSEARCH",
  schemes: ["http", "https"],
  nodes: "many",
  replicas: false,
  noReplicas: "list every node of the cluster in ELASTICSEARCH_URL; it routes reads itself",
};
