/**
 * What the MariaDB primary (`mariadb.ts`) and its replica
 * (`mariadb_replica.ts`) share: the files in the data directory, creating
 * the system tables, the server's command line, and asking a server things,
 * as the matrix user over verified TLS or as the local superuser over the
 * unix socket.
 *
 * @module
 */
import mysql from "mysql2/promise";
import { CERT_FILES } from "./certs.ts";
import { currentUser, run, spawnDetached } from "./proc.ts";
import { MATRIX, type MatrixPaths } from "./types.ts";

/** Files the server reads from its data directory. */
export const FILES = {
  ca: "ca.pem",
  cert: "server-cert.pem",
  key: "server-key.pem",
  socket: "mysqld.sock",
  pid: "mariadbd.pid",
  init: "matrix-init.sql",
} as const;

/** `f` in the data directory of `paths`. */
export const inData = (paths: MatrixPaths, f: string): string => `${paths.data}/${f}`;

/** True when `path` exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Creates the data directory for the server user and copies the TLS files into it. */
export async function prepareData(paths: MatrixPaths): Promise<void> {
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
    await Deno.copyFile(`${paths.certs}/${from}`, inData(paths, to));
    await Deno.chmod(inData(paths, to), mode);
  }
  await run("chown", [
    `${paths.user}:${paths.user}`,
    ...[FILES.ca, FILES.cert, FILES.key].map((f) => inData(paths, f)),
  ]);
}

/**
 * Creates the system tables when the data directory has none, with `root`
 * (and the runner's own OS user) as superusers over the unix socket only
 * (`unix_socket` authentication).
 */
export async function installDb(paths: MatrixPaths): Promise<void> {
  if (await exists(inData(paths, "mysql"))) return;
  await run("mariadb-install-db", [
    "--no-defaults",
    `--datadir=${paths.data}`,
    "--auth-root-authentication-method=socket",
    "--skip-test-db",
    "--skip-name-resolve",
  ], { user: paths.user, cwd: paths.data });
}

/** Starts mariadbd on `port` with the settings both nodes share, plus `extra`; returns its pid. */
export async function spawnServer(
  paths: MatrixPaths,
  port: number,
  extra: string[],
): Promise<number> {
  return await spawnDetached("mariadbd", [
    "--no-defaults",
    `--datadir=${paths.data}`,
    `--port=${port}`,
    `--bind-address=${MATRIX.host}`,
    `--socket=${inData(paths, FILES.socket)}`,
    `--pid-file=${inData(paths, FILES.pid)}`,
    `--ssl-ca=${inData(paths, FILES.ca)}`,
    `--ssl-cert=${inData(paths, FILES.cert)}`,
    `--ssl-key=${inData(paths, FILES.key)}`,
    "--skip-name-resolve",
    "--character-set-server=utf8mb4",
    "--default-time-zone=+00:00",
    // Durability: every commit is flushed.
    "--innodb-flush-log-at-trx-commit=1",
    // Small footprint on a shared machine.
    "--innodb-buffer-pool-size=64M",
    "--innodb-log-file-size=48M",
    "--max-connections=200",
    "--performance-schema=OFF",
    ...extra,
  ], { user: paths.user, log: paths.log, cwd: paths.data });
}

/**
 * The superuser account of the runner's own OS user over the unix socket
 * (`unix_socket` authentication): `root` when the runner is root, else the
 * user who ran `mariadb-install-db`, which is the runner.
 */
export const SOCKET_SUPERUSER = currentUser();

/** Runs `sql` with the `mariadb` client as {@linkcode SOCKET_SUPERUSER}; tab-separated rows. */
export async function socketSql(paths: MatrixPaths, sql: string): Promise<string> {
  return await run("mariadb", [
    "--no-defaults",
    `--socket=${inData(paths, FILES.socket)}`,
    `--user=${SOCKET_SUPERUSER}`,
    "--batch",
    "--skip-column-names",
    "--connect-timeout=2",
    "-e",
    sql,
  ]);
}

/** Runs `sql` as the matrix user on the server at `port`, over TLS verified against the matrix CA. */
export async function appQuery(
  paths: MatrixPaths,
  port: number,
  sql: string,
): Promise<mysql.RowDataPacket[]> {
  let conn: mysql.Connection | undefined;
  try {
    conn = await mysql.createConnection({
      host: MATRIX.host,
      port,
      user: MATRIX.user,
      password: MATRIX.password,
      connectTimeout: 1_000,
      ssl: {
        ca: await Deno.readTextFile(`${paths.certs}/${CERT_FILES.ca}`),
        rejectUnauthorized: true,
        verifyIdentity: true,
      },
    });
    const [rows] = await conn.query<mysql.RowDataPacket[]>({ sql, timeout: 1_000 });
    return rows;
  } finally {
    await conn?.end().catch(() => conn?.destroy());
  }
}

/** The matrix user's URL of the server at `port` (TLS is turned on by the CA, so it is also the TLS URL). */
export function appUrl(port: number): string {
  return `mysql://${encodeURIComponent(MATRIX.user)}:${
    encodeURIComponent(MATRIX.password)
  }@${MATRIX.host}:${port}/grand_tour`;
}

/** `s` as a single-quoted SQL string literal. */
export function sqlString(s: string): string {
  return `'${s.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}
