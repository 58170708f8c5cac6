/**
 * The MariaDB replica of the cluster topology: the same 10.11 as the primary
 * (`mariadb.ts`), on 127.0.0.1:13307 (plain and TLS on one port), `server_id`
 * 2, `read_only`. Seeded once from a consistent `mariadb-dump` of the
 * primary, then replicating over TLS as `grand_tour_repl` with GTIDs
 * (`MASTER_USE_GTID=slave_pos`). Restarting it resumes replication (the
 * position is kept in the data directory); it re-seeds only when its data
 * directory is empty or was seeded from another primary (the primary's
 * `matrix-instance-id` changed, e.g. after `down --wipe mariadb`).
 *
 * Logins: `grand_tour` reads, sees `SHOW SLAVE STATUS` and may
 * `STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=2; START SLAVE` here. The local
 * superuser is `root` over the unix socket, for OS root only
 * (`mariadb --socket=${root}/data/mariadb-replica/mysqld.sock -u root`).
 *
 * @module
 */
import mariadb, { INSTANCE_ID_FILE } from "./mariadb.ts";
import {
  appQuery,
  appUrl,
  exists,
  FILES,
  inData,
  installDb,
  prepareData,
  SOCKET_SUPERUSER,
  socketSql,
  spawnServer,
  sqlString,
} from "./mariadb_node.ts";
import { run } from "./proc.ts";
import { stopTree } from "./ps.ts";
import { say } from "./state.ts";
import { MATRIX, type MatrixPaths, type Service } from "./types.ts";

const PORT = MATRIX.ports["mariadb-replica"];
/** The primary's instance id this replica was seeded from. */
const SEEDED_FROM = "matrix-seeded-from";
const SEED_FILE = "matrix-seed.sql";

/** The primary's paths, as the primary module sees them. */
const primaryPaths = (paths: MatrixPaths): MatrixPaths => ({
  ...paths,
  data: `${paths.root}/data/mariadb`,
  log: paths.log.replace(/[^/]*$/, "mariadb.log"),
});

async function readTrimmed(path: string): Promise<string | undefined> {
  return (await Deno.readTextFile(path).catch(() => undefined))?.trim();
}

/** The last `bytes` of the file at `path`, as text. */
async function readTail(path: string, bytes: number): Promise<string> {
  using f = await Deno.open(path);
  const size = (await f.stat()).size;
  await f.seek(Math.max(0, size - bytes), Deno.SeekMode.Start);
  const buf = new Uint8Array(Math.min(size, bytes));
  let got = 0;
  while (got < buf.length) {
    const n = await f.read(buf.subarray(got));
    if (n === null) break;
    got += n;
  }
  return new TextDecoder().decode(buf.subarray(0, got));
}

/** Why the data directory must be seeded (again), or undefined when it can resume. */
async function seedReason(paths: MatrixPaths): Promise<string | undefined> {
  if (!(await exists(inData(paths, "mysql")))) return "empty";
  const seeded = await readTrimmed(inData(paths, SEEDED_FROM));
  const primary = await readTrimmed(inData(primaryPaths(paths), INSTANCE_ID_FILE));
  if (!seeded) return "the last seeding did not finish";
  if (seeded !== primary) return `seeded from primary ${seeded}, the primary is now ${primary}`;
  return undefined;
}

/**
 * Loads a consistent dump of the primary (every database, users included),
 * sets the GTID position it was taken at, and starts replicating.
 */
async function seed(paths: MatrixPaths): Promise<void> {
  const t0 = Date.now();
  const primary = primaryPaths(paths);
  const id = await readTrimmed(inData(primary, INSTANCE_ID_FILE));
  const dump = inData(paths, SEED_FILE);
  await run("mariadb-dump", [
    "--no-defaults",
    `--socket=${inData(primary, FILES.socket)}`,
    `--user=${SOCKET_SUPERUSER}`,
    "--all-databases",
    "--single-transaction",
    "--master-data=2",
    "--gtid",
    "--routines",
    "--events",
    "--triggers",
    `--result-file=${dump}`,
  ]);
  // The position is a comment near the end: "-- SET GLOBAL gtid_slave_pos='0-1-11';".
  const tail = await readTail(dump, 64 * 1024);
  const gtid = /^-- SET GLOBAL gtid_slave_pos='([^']*)';$/m.exec(tail)?.[1];
  if (gtid === undefined) throw new Error(`no GTID position in ${dump}`);
  await run("sh", [
    "-c",
    `exec mariadb --no-defaults --socket="$1" --user="$2" < "$3"`,
    "sh",
    inData(paths, FILES.socket),
    SOCKET_SUPERUSER,
    dump,
  ]);
  await Deno.remove(dump);
  await socketSql(
    paths,
    [
      "FLUSH PRIVILEGES",
      "STOP SLAVE",
      `SET GLOBAL gtid_slave_pos = ${sqlString(gtid)}`,
      `CHANGE MASTER TO MASTER_HOST = ${
        sqlString(MATRIX.host)
      }, MASTER_PORT = ${MATRIX.ports.mariadb}, ` +
      `MASTER_USER = ${sqlString(MATRIX.replicationUser)}, MASTER_PASSWORD = ${
        sqlString(MATRIX.password)
      }, ` +
      `MASTER_SSL = 1, MASTER_SSL_CA = ${sqlString(inData(paths, FILES.ca))}, ` +
      "MASTER_SSL_VERIFY_SERVER_CERT = 1, MASTER_CONNECT_RETRY = 1, MASTER_USE_GTID = slave_pos",
      "START SLAVE",
    ].join(";\n"),
  );
  await Deno.writeTextFile(inData(paths, SEEDED_FROM), `${id}\n`);
  say(
    `mariadb-replica: seeded from the primary at GTID '${gtid}' in ${
      ((Date.now() - t0) / 1000).toFixed(1)
    } s`,
  );
}

/** Waits until the local superuser can query over the socket; throws when the server died. */
async function waitSocket(paths: MatrixPaths, pid: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await socketSql(paths, "SELECT 1");
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      try {
        Deno.kill(pid, "SIGCONT");
      } catch {
        throw new Error(`mariadbd exited during start-up; see ${paths.log}`);
      }
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

const replica: Service = {
  name: "mariadb-replica",
  store: "MYSQL",
  version: mariadb.version,

  install: (paths) => mariadb.install(paths),

  async start(paths: MatrixPaths): Promise<number> {
    const reason = await seedReason(paths);
    if (reason && reason !== "empty") {
      say(`mariadb-replica: re-seeding: ${reason}`);
      await Deno.remove(paths.data, { recursive: true });
    }
    await prepareData(paths);
    await installDb(paths);
    const pid = await spawnServer(paths, PORT, [
      "--server-id=2",
      "--read-only=ON",
      // A replica of its own: no binary log; relay log recovered after a crash.
      "--skip-log-bin",
      "--relay-log=relay-bin",
      "--relay-log-recovery=ON",
    ]);
    try {
      await waitSocket(paths, pid);
      if (reason) await seed(paths);
    } catch (e) {
      // Not left running half-seeded: the next `up` starts (and seeds) it afresh.
      await stopTree(pid, "SIGTERM", 30_000);
      throw e;
    }
    return pid;
  },

  async ready(paths: MatrixPaths): Promise<boolean> {
    // Answers as the application role over verified TLS, and both replication threads run.
    try {
      const [s] = await appQuery(paths, PORT, "SHOW SLAVE STATUS");
      return s?.Slave_IO_Running === "Yes" && s?.Slave_SQL_Running === "Yes";
    } catch {
      return false;
    }
  },

  env(_paths: MatrixPaths): Record<string, string> {
    const url = appUrl(PORT);
    return { MYSQL_READ_URL: url, MATRIX_MYSQL_READ_TLS_URL: url };
  },
};

export default replica;
