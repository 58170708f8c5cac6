/**
 * Redis for the matrix: Debian bookworm's `redis-server` 7.0.15, plain on
 * 127.0.0.1:16379 and TLS on 127.0.0.1:16380, every write appended to the AOF
 * and fsynced before the reply (`appendfsync always`), so an acknowledged
 * write survives SIGKILL of the server. The `default` user is off; the users
 * are `grand_tour` and `grand_tour_repl`, which a replica (`redis_replica.ts`)
 * logs in as and which may run only the replication commands.
 *
 * @module
 */
import { CERT_FILES } from "./certs.ts";
import { currentUser, run, spawnDetached } from "./proc.ts";
import { authPing } from "./resp.ts";
import { MATRIX, type MatrixPaths, type Service } from "./types.ts";
import { aptInstall, aptVersions } from "./apt.ts";

/** Upstream version the matrix runs. */
export const VERSION = "7.0.15";
/** The exact Debian package version installed (bookworm-security). */
export const DEBIAN_VERSION = "5:7.0.15-1~deb12u10";
const SERVER = "/usr/bin/redis-server";
const CONF = "redis.conf";
const TLS_DIR = "tls";

async function installedVersion(): Promise<string | undefined> {
  try {
    const out = await run(SERVER, ["--version"]);
    return /\bv=(\S+)/.exec(out)?.[1];
  } catch {
    return undefined;
  }
}

/** The pinned Debian version, or another bookworm build of the same upstream release. */
async function pickDebianVersion(): Promise<string> {
  const versions = await aptVersions("redis-server");
  if (versions.includes(DEBIAN_VERSION)) return DEBIAN_VERSION;
  const same = versions.find((v) => v.startsWith(`5:${VERSION}-`));
  if (same) return same;
  throw new Error(
    `redis-server ${DEBIAN_VERSION} is not available from apt (have: ${versions.join(", ")})`,
  );
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The ports of one Redis node and the lines only it has (a replica's `replicaof`, …). */
export interface RedisNode {
  port: number;
  tlsPort: number;
  extra: string[];
}

/**
 * redis.conf of `node`, written on every start. Both nodes know the same
 * users: `grand_tour`, and `grand_tour_repl`, which may only replicate.
 */
export async function configText(paths: MatrixPaths, node: RedisNode): Promise<string> {
  const tls = `${paths.data}/${TLS_DIR}`;
  return [
    "# Written by scripts/matrix/redis.ts on every start; edits are overwritten.",
    `bind ${MATRIX.host}`,
    "protected-mode yes",
    `port ${node.port}`,
    `tls-port ${node.tlsPort}`,
    `tls-cert-file ${tls}/${CERT_FILES.cert}`,
    `tls-key-file ${tls}/${CERT_FILES.key}`,
    `tls-ca-cert-file ${tls}/${CERT_FILES.ca}`,
    "tls-auth-clients no",
    "daemonize no",
    "supervised no",
    'pidfile ""',
    'logfile ""',
    "loglevel notice",
    `dir ${paths.data}`,
    "databases 16",
    // Durability: the AOF is fsynced before any reply is sent; no RDB snapshots.
    "appendonly yes",
    "appendfsync always",
    'appenddirname "appendonlydir"',
    "aof-use-rdb-preamble yes",
    'save ""',
    // Bounded on a shared machine, with room for the benchmark's million words (about
    // 450 MiB with their index); writes fail rather than evict.
    "maxmemory 1gb",
    "maxmemory-policy noeviction",
    "maxclients 1000",
    // A replica's full sync starts at once (the default waits 5 s for more replicas).
    "repl-diskless-sync-delay 0",
    // Only the matrix user logs in; its password is stored as its SHA-256. `default`
    // is off (no one can authenticate as it) but keeps its permissions: Redis 7.0
    // replays MULTI/EXEC from the AOF as `default` and re-checks ACLs at EXEC, so
    // a `default` without commands silently drops every transaction on restart
    // (redis/redis#14541, fixed after 7.0; valkey-io/valkey#3983).
    "user default off resetpass ~* &* +@all",
    `user ${MATRIX.user} on #${await sha256Hex(MATRIX.password)} ~* &* +@all`,
    `user ${MATRIX.replicationUser} on #${await sha256Hex(
      MATRIX.password,
    )} resetkeys resetchannels -@all +psync +sync +replconf +ping`,
    ...node.extra,
    "",
  ].join("\n");
}

async function chownTree(path: string, user: string): Promise<void> {
  if (user === currentUser()) return;
  await run("chown", ["-R", `${user}:${user}`, path]);
}

/**
 * Copies the TLS files, writes redis.conf for `node` and starts redis-server
 * on `paths.data` detached; returns its pid.
 */
export async function startNode(paths: MatrixPaths, node: RedisNode): Promise<number> {
  const tls = `${paths.data}/${TLS_DIR}`;
  await Deno.mkdir(tls, { recursive: true });
  for (const f of [CERT_FILES.ca, CERT_FILES.cert, CERT_FILES.key]) {
    await Deno.copyFile(`${paths.certs}/${f}`, `${tls}/${f}`);
    await Deno.chmod(`${tls}/${f}`, f === CERT_FILES.key ? 0o600 : 0o644);
  }
  const conf = `${paths.data}/${CONF}`;
  await Deno.writeTextFile(conf, await configText(paths, node), { mode: 0o600 });
  await Deno.chmod(conf, 0o600);
  await Deno.chmod(paths.data, 0o700);
  await chownTree(paths.data, paths.user);
  return await spawnDetached(SERVER, [conf], {
    user: paths.user,
    log: paths.log,
    cwd: paths.data,
  });
}

/** True when the node answers AUTH + PING on its plain port and, verified against the matrix CA, on its TLS port. */
export async function answers(paths: MatrixPaths, node: RedisNode): Promise<boolean> {
  try {
    const plain = await Deno.connect({ hostname: MATRIX.host, port: node.port });
    if (!(await authPing(plain))) return false;
    const secure = await Deno.connectTls({
      hostname: MATRIX.host,
      port: node.tlsPort,
      caCerts: [await Deno.readTextFile(`${paths.certs}/${CERT_FILES.ca}`)],
    });
    return await authPing(secure);
  } catch {
    return false;
  }
}

/** The matrix user's plain and TLS URLs of `node`. */
export function nodeUrls(node: RedisNode): { plain: string; tls: string } {
  const auth = `${encodeURIComponent(MATRIX.user)}:${encodeURIComponent(MATRIX.password)}`;
  return {
    plain: `redis://${auth}@${MATRIX.host}:${node.port}/0`,
    tls: `rediss://${auth}@${MATRIX.host}:${node.tlsPort}/0`,
  };
}

const PRIMARY: RedisNode = { port: MATRIX.ports.redis, tlsPort: MATRIX.ports.redisTls, extra: [] };

const redis: Service = {
  name: "redis",
  store: "REDIS",
  version: `${VERSION} (Debian ${DEBIAN_VERSION})`,

  async install(paths: MatrixPaths): Promise<void> {
    if ((await installedVersion()) === VERSION) return;
    const version = await pickDebianVersion();
    // policy-rc.d / no init keep Debian's own redis-server service from starting.
    await aptInstall(paths, [`redis-server=${version}`, `redis-tools=${version}`]);
    const got = await installedVersion();
    if (got !== VERSION) {
      throw new Error(`redis-server reports ${got ?? "nothing"}, want ${VERSION}`);
    }
  },

  start: (paths: MatrixPaths) => startNode(paths, PRIMARY),

  ready: (paths: MatrixPaths) => answers(paths, PRIMARY),

  env(_paths: MatrixPaths): Record<string, string> {
    const urls = nodeUrls(PRIMARY);
    return { REDIS_URL: urls.plain, MATRIX_REDIS_TLS_URL: urls.tls };
  },
};

export default redis;
