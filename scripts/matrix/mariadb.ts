/**
 * MariaDB for the MYSQL store: Debian bookworm's `mariadb-server` package,
 * initialised with `mariadb-install-db` into the service's data directory and
 * run in the foreground as the matrix user on 127.0.0.1, plain and TLS on one
 * port. The `grand_tour` account may create the `grand_tour` database (and
 * `grand_tour_*` scratch databases for tests); the store creates it.
 *
 * The server is always ready to feed a replica (`mariadb_replica.ts`): binary
 * log in ROW format, fsynced with every commit, `server_id` 1, and the
 * replication account `grand_tour_repl`. `grand_tour` may also watch and steer
 * replication (`SHOW SLAVE STATUS`, `STOP SLAVE`, `CHANGE MASTER TO
 * MASTER_DELAY=…`): the grants replicate, so it may do so on the replica.
 *
 * @module
 */
import { run } from "./proc.ts";
import { MATRIX, type MatrixPaths, type Service } from "./types.ts";
import { aptInstall } from "./apt.ts";
import {
  appQuery,
  appUrl,
  exists,
  FILES,
  inData,
  installDb,
  prepareData,
  spawnServer,
  sqlString,
} from "./mariadb_node.ts";

/** The Debian package version installed and run (bookworm-security). */
const PACKAGE_VERSION = "1:10.11.19-0+deb12u1";

/** A random id written once into the data directory; a replica seeded from another id re-seeds. */
export const INSTANCE_ID_FILE = "matrix-instance-id";

/** Idempotent account set-up run by the server itself at every start (`--init-file`). */
function initSql(): string {
  const u = MATRIX.user;
  const pw = sqlString(MATRIX.password);
  const lines: string[] = [];
  for (const host of ["%", "localhost"]) {
    lines.push(
      `CREATE USER IF NOT EXISTS '${u}'@'${host}' IDENTIFIED BY ${pw};`,
      `ALTER USER '${u}'@'${host}' IDENTIFIED BY ${pw};`,
      // The grant covers `grand_tour` itself (the store creates it) and
      // `grand_tour_*` scratch databases; "\_" keeps the underscore literal.
      `GRANT ALL PRIVILEGES ON \`grand\\_tour%\`.* TO '${u}'@'${host}';`,
      // Watching and steering replication (on the replica): SHOW SLAVE STATUS,
      // STOP/START SLAVE, CHANGE MASTER TO MASTER_DELAY.
      `GRANT SLAVE MONITOR, REPLICATION SLAVE ADMIN, BINLOG MONITOR ON *.* TO '${u}'@'${host}';`,
    );
  }
  const r = MATRIX.replicationUser;
  lines.push(
    `CREATE USER IF NOT EXISTS '${r}'@'%' IDENTIFIED BY ${pw};`,
    `ALTER USER '${r}'@'%' IDENTIFIED BY ${pw};`,
    `GRANT REPLICATION SLAVE ON *.* TO '${r}'@'%';`,
  );
  return lines.join("\n") + "\n";
}

async function installedVersion(): Promise<string | undefined> {
  try {
    const out = await run("dpkg-query", ["-W", "-f", "${Status}|${Version}", "mariadb-server"]);
    const [status, version] = out.split("|");
    return status.endsWith(" installed") ? version : undefined;
  } catch {
    return undefined;
  }
}

const service: Service = {
  name: "mariadb",
  store: "MYSQL",
  /** As reported by `SELECT VERSION()`; Debian package {@linkcode PACKAGE_VERSION}. */
  version: "10.11.19-MariaDB-0+deb12u1",

  async install(paths: MatrixPaths): Promise<void> {
    if ((await installedVersion()) === PACKAGE_VERSION) return;
    // Debian's policy-rc.d keeps the packaged service (port 3306, /var/lib/mysql)
    // from starting; the matrix runs its own server below.
    await aptInstall(paths, [`mariadb-server=${PACKAGE_VERSION}`]);
    const got = await installedVersion();
    if (got !== PACKAGE_VERSION) {
      throw new Error(`mariadb-server ${PACKAGE_VERSION} expected, found ${got ?? "none"}`);
    }
  },

  async start(paths: MatrixPaths): Promise<number> {
    await prepareData(paths);
    await Deno.writeTextFile(inData(paths, FILES.init), initSql(), { mode: 0o600 });
    await Deno.chmod(inData(paths, FILES.init), 0o600);
    const id = inData(paths, INSTANCE_ID_FILE);
    if (!(await exists(id))) await Deno.writeTextFile(id, `${crypto.randomUUID()}\n`);
    await run("chown", [`${paths.user}:${paths.user}`, inData(paths, FILES.init), id]);
    await installDb(paths);
    return await spawnServer(paths, MATRIX.ports.mariadb, [
      `--init-file=${inData(paths, FILES.init)}`,
      // Binary log for replicas, in both topologies; with sync_binlog=1 a
      // commit is in the fsynced binlog before it is acknowledged, too.
      "--server-id=1",
      "--log-bin=mariadb-bin",
      "--binlog-format=ROW",
      "--sync-binlog=1",
      "--max-binlog-size=64M",
      "--binlog-expire-logs-seconds=259200",
    ]);
  },

  async ready(paths: MatrixPaths): Promise<boolean> {
    try {
      const rows = await appQuery(paths, MATRIX.ports.mariadb, "SELECT 1 AS ok");
      return rows[0]?.ok === 1;
    } catch {
      return false;
    }
  },

  env(_paths: MatrixPaths): Record<string, string> {
    const url = appUrl(MATRIX.ports.mariadb);
    return { MYSQL_URL: url, MATRIX_MYSQL_TLS_URL: url };
  },
};

export default service;
