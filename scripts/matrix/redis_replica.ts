/**
 * The Redis replica of the cluster topology: the same 7.0.15 as the primary
 * (`redis.ts`), plain on 127.0.0.1:16381 and TLS on 16382, with the primary's
 * users and AOF settings (`appendfsync always`), `replicaof` the primary over
 * TLS as `grand_tour_repl` (`masteruser`/`masterauth`), `replica-read-only
 * yes`. Restarting it resumes with a partial resync from its AOF when the
 * primary's backlog still covers it, else Redis resyncs fully by itself (as
 * after `down --wipe redis`).
 *
 * Logins: `grand_tour` (all commands) reads, sees `INFO replication`, and may
 * pause replication with `REPLICAOF 127.0.0.1 1` (link down, stale reads
 * served) and resume it with `REPLICAOF 127.0.0.1 16380`.
 *
 * @module
 */
import redis, {
  answers,
  DEBIAN_VERSION,
  nodeUrls,
  type RedisNode,
  startNode,
  VERSION,
} from "./redis.ts";
import { AUTH, pipeline } from "./resp.ts";
import { MATRIX, type MatrixPaths, type Service } from "./types.ts";

/**
 * This node, replicating from the primary's TLS port (the primary's
 * certificate is verified against the matrix CA, `tls-ca-cert-file`).
 */
const NODE: RedisNode = {
  port: MATRIX.ports["redis-replica"],
  tlsPort: MATRIX.ports.redisReplicaTls,
  extra: [
    `replicaof ${MATRIX.host} ${MATRIX.ports.redisTls}`,
    "tls-replication yes",
    `masteruser ${MATRIX.replicationUser}`,
    `masterauth ${MATRIX.password}`,
    "replica-read-only yes",
    "replica-serve-stale-data yes",
  ],
};

const replica: Service = {
  name: "redis-replica",
  store: "REDIS",
  version: `${VERSION} (Debian ${DEBIAN_VERSION})`,

  install: (paths) => redis.install(paths),

  start: (paths: MatrixPaths) => startNode(paths, NODE),

  async ready(paths: MatrixPaths): Promise<boolean> {
    // Answers on both ports, and the link to the primary is up.
    if (!(await answers(paths, NODE))) return false;
    try {
      const conn = await Deno.connect({ hostname: MATRIX.host, port: NODE.port });
      const [auth, info] = await pipeline(conn, [AUTH, ["INFO", "replication"]]);
      return auth === "+OK" && /^role:slave\r?$/m.test(info) &&
        /^master_link_status:up\r?$/m.test(info);
    } catch {
      return false;
    }
  },

  env(_paths: MatrixPaths): Record<string, string> {
    const urls = nodeUrls(NODE);
    return { REDIS_READ_URL: urls.plain, MATRIX_REDIS_READ_TLS_URL: urls.tls };
  },
};

export default replica;
