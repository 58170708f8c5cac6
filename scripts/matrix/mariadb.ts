/**
 * MariaDB for the MYSQL store: Debian bookworm's `mariadb-server` package,
 * initialised with `mariadb-install-db` into the service's data directory and
 * run in the foreground as the matrix user on 127.0.0.1, plain and TLS on one
 * port. The `grand_tour` account may create the `grand_tour` database (and
 * `grand_tour_*` scratch databases for tests); the store creates it.
 *
 * @module
 */
import mysql from "mysql2/promise";
import { CERT_FILES } from "./certs.ts";
import { run, spawnDetached } from "./proc.ts";
import { MATRIX, type MatrixPaths, type Service } from "./types.ts";
import { aptInstall } from "./apt.ts";

/** The Debian package version installed and run (bookworm-security). */
const PACKAGE_VERSION = "1:10.11.19-0+deb12u1";

/** Files the server reads from its data directory. */
const FILES = {
  ca: "ca.pem",
  cert: "server-cert.pem",
  key: "server-key.pem",
  socket: "mysqld.sock",
  pid: "mariadbd.pid",
  init: "matrix-init.sql",
} as const;

const p = (paths: MatrixPaths, f: string) => `${paths.data}/${f}`;

/** Idempotent account set-up run by the server itself at every start (`--init-file`). */
function initSql(): string {
  const u = MATRIX.user;
  const pw = MATRIX.password.replaceAll("\\", "\\\\").replaceAll("'", "\\'");
  const lines: string[] = [];
  for (const host of ["%", "localhost"]) {
    lines.push(
      `CREATE USER IF NOT EXISTS '${u}'@'${host}' IDENTIFIED BY '${pw}';`,
      `ALTER USER '${u}'@'${host}' IDENTIFIED BY '${pw}';`,
      // The grant covers `grand_tour` itself (the store creates it) and
      // `grand_tour_*` scratch databases; "\_" keeps the underscore literal.
      `GRANT ALL PRIVILEGES ON \`grand\\_tour%\`.* TO '${u}'@'${host}';`,
    );
  }
  return lines.join("\n") + "\n";
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
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
    await Deno.mkdir(paths.data, { recursive: true });
    await run("chown", ["-R", `${paths.user}:${paths.user}`, paths.data]);
    await Deno.chmod(paths.data, 0o750);

    // TLS material, readable only by the server's user.
    const copies: [string, string, number][] = [
      [CERT_FILES.ca, FILES.ca, 0o644],
      [CERT_FILES.cert, FILES.cert, 0o644],
      [CERT_FILES.key, FILES.key, 0o600],
    ];
    for (const [from, to, mode] of copies) {
      await Deno.copyFile(`${paths.certs}/${from}`, p(paths, to));
      await Deno.chmod(p(paths, to), mode);
    }
    await Deno.writeTextFile(p(paths, FILES.init), initSql(), { mode: 0o600 });
    await Deno.chmod(p(paths, FILES.init), 0o600);
    await run("chown", [
      `${paths.user}:${paths.user}`,
      ...[FILES.ca, FILES.cert, FILES.key, FILES.init].map((f) => p(paths, f)),
    ]);

    if (!(await exists(p(paths, "mysql")))) {
      await run("mariadb-install-db", [
        "--no-defaults",
        `--datadir=${paths.data}`,
        "--auth-root-authentication-method=socket",
        "--skip-test-db",
        "--skip-name-resolve",
      ], { user: paths.user, cwd: paths.data });
    }

    return await spawnDetached("mariadbd", [
      "--no-defaults",
      `--datadir=${paths.data}`,
      `--port=${MATRIX.ports.mariadb}`,
      `--bind-address=${MATRIX.host}`,
      `--socket=${p(paths, FILES.socket)}`,
      `--pid-file=${p(paths, FILES.pid)}`,
      `--init-file=${p(paths, FILES.init)}`,
      `--ssl-ca=${p(paths, FILES.ca)}`,
      `--ssl-cert=${p(paths, FILES.cert)}`,
      `--ssl-key=${p(paths, FILES.key)}`,
      "--skip-name-resolve",
      "--character-set-server=utf8mb4",
      "--default-time-zone=+00:00",
      // Durability: every commit is flushed (no binary log is kept, so
      // sync_binlog does not apply).
      "--innodb-flush-log-at-trx-commit=1",
      "--skip-log-bin",
      // Small footprint on a shared machine.
      "--innodb-buffer-pool-size=64M",
      "--innodb-log-file-size=48M",
      "--max-connections=200",
      "--performance-schema=OFF",
    ], { user: paths.user, log: paths.log, cwd: paths.data });
  },

  async ready(paths: MatrixPaths): Promise<boolean> {
    let conn: mysql.Connection | undefined;
    try {
      conn = await mysql.createConnection({
        host: MATRIX.host,
        port: MATRIX.ports.mariadb,
        user: MATRIX.user,
        password: MATRIX.password,
        connectTimeout: 1_000,
        ssl: {
          ca: await Deno.readTextFile(`${paths.certs}/${CERT_FILES.ca}`),
          rejectUnauthorized: true,
          verifyIdentity: true,
        },
      });
      const [rows] = await conn.query<mysql.RowDataPacket[]>({
        sql: "SELECT 1 AS ok",
        timeout: 1_000,
      });
      return rows[0]?.ok === 1;
    } catch {
      return false;
    } finally {
      await conn?.end().catch(() => conn?.destroy());
    }
  },

  env(_paths: MatrixPaths): Record<string, string> {
    const url = `mysql://${encodeURIComponent(MATRIX.user)}:${
      encodeURIComponent(MATRIX.password)
    }@${MATRIX.host}:${MATRIX.ports.mariadb}/grand_tour`;
    return { MYSQL_URL: url, MATRIX_MYSQL_TLS_URL: url };
  },
};

export default service;
