/**
 * Scylla's (and Cassandra's) settings: `SCYLLA_URL` lists contact points
 * (`host:port`, `[ipv6]:port` or URLs such as `cassandra://user:pass@host:9042`,
 * comma-separated); `SCYLLA_REPLICATION_FACTOR` and `SCYLLA_DATACENTER` shape
 * the keyspace the store creates. See `settings.ts` for the variables every
 * store shares.
 *
 * @module
 */
import { ConfigError, type Env, type StoreSettings } from "./settings.ts";

/** The local data centre unless `SCYLLA_DATACENTER` names another. */
export const DEFAULT_DATACENTER = "datacenter1";

/**
 * Checks the replication settings, which end up in CQL text (DDL takes no
 * bind markers for replication), so only safe shapes pass. Throws
 * {@linkcode ConfigError} naming the variable.
 */
export function checkReplicationSettings(datacenter: string, replicationFactor: string): void {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(datacenter)) {
    throw new ConfigError("SCYLLA_DATACENTER may only hold letters, digits, '_', '.' and '-'");
  }
  if (!/^\d{1,2}$/.test(replicationFactor) || Number(replicationFactor) < 1) {
    throw new ConfigError("SCYLLA_REPLICATION_FACTOR must be a whole number from 1 to 99");
  }
}

/** What `SCYLLA_*` variables the gateway reads. */
export const settings: StoreSettings = {
  store: "SCYLLA",
  bareHosts: true,
  nodes: "many",
  replicas: false,
  noReplicas: "list every contact point in SCYLLA_URL; the driver routes reads to replicas",
  options(env: Env) {
    const datacenter = env.SCYLLA_DATACENTER?.trim() || DEFAULT_DATACENTER;
    const replicationFactor = env.SCYLLA_REPLICATION_FACTOR?.trim() || "1";
    checkReplicationSettings(datacenter, replicationFactor);
    return { replicationFactor, datacenter };
  },
};
