/**
 * CQL sessions to one node of the matrix's Cassandra, and what the cluster
 * topology needs of them: whether a node has joined (every node up to it
 * NORMAL in its own and node 1's gossip, and answering CQL itself), and
 * raising the replication of the keyspaces that must survive one node's loss
 * to {@linkcode CLUSTER_RF} before a node joins, so its bootstrap streams
 * their rows to it and no repair is needed afterwards.
 *
 * @module
 */
import cassandra from "cassandra-driver";
import { type CassandraNode, CLUSTER_RF, DATACENTER, NODES } from "./cassandra_config.ts";
import { MATRIX } from "./types.ts";

/** A driver session. */
export type Client = InstanceType<typeof cassandra.Client>;

/**
 * Keyspaces replicated on every node of the cluster topology: the roles (a
 * login must not depend on one node) and the gateway's words.
 */
const REPLICATED_KEYSPACES = ["system_auth", "grand_tour"];

/** A session that sends every request to `node` only (TLS, verified, when `caCert` is given). */
export function client(
  node: CassandraNode,
  username: string,
  password: string,
  caCert?: string,
): Client {
  const host = `${node.host}:${MATRIX.ports.cassandra}`;
  const { AllowListPolicy, DCAwareRoundRobinPolicy } = cassandra.policies.loadBalancing;
  return new cassandra.Client({
    contactPoints: [host],
    localDataCenter: DATACENTER,
    authProvider: new cassandra.auth.PlainTextAuthProvider(username, password),
    socketOptions: { connectTimeout: 2_000, readTimeout: 5_000 },
    pooling: { warmup: false },
    policies: {
      loadBalancing: new AllowListPolicy(new DCAwareRoundRobinPolicy(DATACENTER), [host]),
      reconnection: new cassandra.policies.reconnection.ConstantReconnectionPolicy(1_000),
    },
    ...(caCert ? { sslOptions: { ca: [caCert], rejectUnauthorized: true } } : {}),
  });
}

/** The matrix user's session to `node`. */
export function own(node: CassandraNode, caCert?: string): Client {
  return client(node, MATRIX.user, MATRIX.password, caCert);
}

/** `release_version` of the node the session talks to. */
export async function releaseVersion(c: Client): Promise<string> {
  const rs = await c.execute("SELECT release_version FROM system.local", [], { prepare: true });
  return String(rs.first()?.get("release_version"));
}

/**
 * The gossip state (`NORMAL`, `BOOT`, …) of each address, as the session's
 * node sees it (a node's own entry may carry only `status_with_port`).
 */
async function gossip(c: Client): Promise<Map<string, string>> {
  const rs = await c.execute(
    "SELECT address, status, status_with_port FROM system_views.gossip_info",
  );
  return new Map(
    rs.rows.map((r) => [
      String(r.get("address")),
      String(r.get("status_with_port") ?? r.get("status") ?? ""),
    ]),
  );
}

/**
 * True when `node` answers CQL and it and node 1 both see every node up to
 * `node` as NORMAL in gossip (joined, tokens owned: `nodetool status` UN).
 */
export async function joined(node: CassandraNode): Promise<boolean> {
  const upTo = NODES.slice(0, NODES.indexOf(node) + 1).map((n) => n.host);
  for (const viewer of node === NODES[0] ? [node] : [node, NODES[0]]) {
    const c = own(viewer);
    try {
      const states = await gossip(c);
      if (!upTo.every((h) => states.get(h)?.startsWith("NORMAL"))) return false;
    } finally {
      await c.shutdown().catch(() => {});
    }
  }
  return true;
}

/** Replication factor of `keyspace` in the data centre; undefined when it does not exist. */
async function replicationOf(c: Client, keyspace: string): Promise<number | undefined> {
  const rs = await c.execute(
    "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?",
    [keyspace],
    { prepare: true },
  );
  const row = rs.first();
  if (!row) return undefined;
  const r = row.get("replication") as Record<string, string>;
  return Number(r[DATACENTER] ?? r.replication_factor ?? 0);
}

/**
 * Raises {@linkcode REPLICATED_KEYSPACES} below {@linkcode CLUSTER_RF} to it
 * (NetworkTopologyStrategy in the one data centre), through node 1. Done
 * before a node joins: its bootstrap then streams their rows to it.
 */
export async function raiseReplication(): Promise<void> {
  const c = own(NODES[0]);
  try {
    for (const ks of REPLICATED_KEYSPACES) {
      const rf = await replicationOf(c, ks);
      if (rf === undefined || rf >= CLUSTER_RF) continue;
      await c.execute(
        `ALTER KEYSPACE ${ks} WITH replication = ` +
          `{'class': 'NetworkTopologyStrategy', '${DATACENTER}': ${CLUSTER_RF}}`,
      );
    }
  } finally {
    await c.shutdown().catch(() => {});
  }
}
