/**
 * Redis for the matrix: Debian bookworm's `redis-server` 7.0.15, plain on
 * 127.0.0.1:16379 and TLS on 127.0.0.1:16380, every write appended to the AOF
 * and fsynced before the reply (`appendfsync always`), so an acknowledged
 * write survives SIGKILL of the server. The `default` user is off; the only
 * user is `grand_tour`.
 *
 * @module
 */
import { CERT_FILES } from "./certs.ts";
import { currentUser, run, spawnDetached } from "./proc.ts";
import { MATRIX, type MatrixPaths, type Service } from "./types.ts";
import { aptInstall, aptVersions } from "./apt.ts";

/** Upstream version the matrix runs. */
const VERSION = "7.0.15";
/** The exact Debian package version installed (bookworm-security). */
const DEBIAN_VERSION = "5:7.0.15-1~deb12u10";
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

async function configText(paths: MatrixPaths): Promise<string> {
  const tls = `${paths.data}/${TLS_DIR}`;
  return [
    "# Written by scripts/matrix/redis.ts on every start; edits are overwritten.",
    `bind ${MATRIX.host}`,
    "protected-mode yes",
    `port ${MATRIX.ports.redis}`,
    `tls-port ${MATRIX.ports.redisTls}`,
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
    // Only the matrix user logs in; its password is stored as its SHA-256. `default`
    // is off (no one can authenticate as it) but keeps its permissions: Redis 7.0
    // replays MULTI/EXEC from the AOF as `default` and re-checks ACLs at EXEC, so
    // a `default` without commands silently drops every transaction on restart
    // (redis/redis#14541, fixed after 7.0; valkey-io/valkey#3983).
    "user default off resetpass ~* &* +@all",
    `user ${MATRIX.user} on #${await sha256Hex(MATRIX.password)} ~* &* +@all`,
    "",
  ].join("\n");
}

async function chownTree(path: string, user: string): Promise<void> {
  if (user === currentUser()) return;
  await run("chown", ["-R", `${user}:${user}`, path]);
}

/** Reads the first `count` RESP reply lines from `conn`. */
async function readLines(conn: Deno.Conn, count: number, timeoutMs: number): Promise<string[]> {
  const buf = new Uint8Array(4096);
  let text = "";
  const deadline = Date.now() + timeoutMs;
  while (text.split("\r\n").length - 1 < count) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error("redis: no reply");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      conn.read(buf),
      new Promise<null>((r) => timer = setTimeout(() => r(null), left)),
    ]).finally(() => clearTimeout(timer));
    if (n === null) throw new Error("redis: connection closed or no reply");
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  return text.split("\r\n").slice(0, count);
}

/** AUTH + PING over `conn`; true when both answer as a serving Redis does. */
async function authPing(conn: Deno.Conn): Promise<boolean> {
  try {
    const args = ["AUTH", MATRIX.user, MATRIX.password];
    const auth = `*3\r\n${
      args.map((a) => `$${new TextEncoder().encode(a).length}\r\n${a}\r\n`).join("")
    }`;
    await conn.write(new TextEncoder().encode(`${auth}*1\r\n$4\r\nPING\r\n`));
    const [a, p] = await readLines(conn, 2, 2_000);
    return a === "+OK" && p === "+PONG";
  } finally {
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
}

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

  async start(paths: MatrixPaths): Promise<number> {
    const tls = `${paths.data}/${TLS_DIR}`;
    await Deno.mkdir(tls, { recursive: true });
    for (const f of [CERT_FILES.ca, CERT_FILES.cert, CERT_FILES.key]) {
      await Deno.copyFile(`${paths.certs}/${f}`, `${tls}/${f}`);
      await Deno.chmod(`${tls}/${f}`, f === CERT_FILES.key ? 0o600 : 0o644);
    }
    const conf = `${paths.data}/${CONF}`;
    await Deno.writeTextFile(conf, await configText(paths), { mode: 0o600 });
    await Deno.chmod(conf, 0o600);
    await Deno.chmod(paths.data, 0o700);
    await chownTree(paths.data, paths.user);
    return await spawnDetached(SERVER, [conf], {
      user: paths.user,
      log: paths.log,
      cwd: paths.data,
    });
  },

  async ready(paths: MatrixPaths): Promise<boolean> {
    try {
      const plain = await Deno.connect({ hostname: MATRIX.host, port: MATRIX.ports.redis });
      if (!(await authPing(plain))) return false;
      const secure = await Deno.connectTls({
        hostname: MATRIX.host,
        port: MATRIX.ports.redisTls,
        caCerts: [await Deno.readTextFile(`${paths.certs}/${CERT_FILES.ca}`)],
      });
      return await authPing(secure);
    } catch {
      return false;
    }
  },

  env(_paths: MatrixPaths): Record<string, string> {
    const auth = `${encodeURIComponent(MATRIX.user)}:${encodeURIComponent(MATRIX.password)}`;
    return {
      REDIS_URL: `redis://${auth}@${MATRIX.host}:${MATRIX.ports.redis}/0`,
      MATRIX_REDIS_TLS_URL: `rediss://${auth}@${MATRIX.host}:${MATRIX.ports.redisTls}/0`,
    };
  },
};

export default redis;
