/**
 * What the PostgreSQL primary (`postgresql.ts`) and its hot standby
 * (`postgresql_standby.ts`) share: the binaries, the server settings, the
 * client authentication file, TLS files in the data directory, starting the
 * postmaster and asking it things with psql.
 *
 * @module
 */
import { CERT_FILES } from "./certs.ts";
import { alive, currentUser, run, spawnDetached } from "./proc.ts";
import { MATRIX, type MatrixPaths } from "./types.ts";

/** Where Debian's postgresql-15 keeps its binaries. */
export const BIN = "/usr/lib/postgresql/15/bin";
/** The superuser initdb creates (password: the matrix password). */
export const SUPERUSER = "postgres";
/** The application database, owned by the matrix user. */
export const DATABASE = "grand_tour";
/** The physical replication slot the standby streams through. */
export const STANDBY_SLOT = "matrix_standby";
/** Password and application name for every psql the matrix runs. */
export const PG_ENV = { PGPASSWORD: MATRIX.password, PGAPPNAME: "grand-tour-matrix" };

/** Server settings of a node listening on `port`, passed on the command line so every start applies them. */
export function serverSettings(paths: MatrixPaths, port: number): Record<string, string> {
  return {
    listen_addresses: MATRIX.host,
    port: String(port),
    unix_socket_directories: paths.data,
    ssl: "on",
    ssl_cert_file: CERT_FILES.cert,
    ssl_key_file: CERT_FILES.key,
    ssl_min_protocol_version: "TLSv1.2",
    password_encryption: "scram-sha-256",
    fsync: "on",
    synchronous_commit: "on",
    full_page_writes: "on",
    wal_sync_method: "fdatasync",
    max_connections: "100",
    shared_buffers: "64MB",
    logging_collector: "off",
    log_timezone: "UTC",
    timezone: "UTC",
    // Streaming replication, in both topologies (these are PostgreSQL 15's
    // defaults, set so a standby can always attach). A slot keeps WAL for a
    // stopped standby, bounded so a standby that never returns cannot fill the disk.
    wal_level: "replica",
    max_wal_senders: "10",
    max_replication_slots: "10",
    max_slot_wal_keep_size: "1GB",
    hot_standby: "on",
  };
}

/**
 * pg_hba.conf, rewritten on every start: SCRAM passwords for everyone, over
 * the unix socket or loopback, for databases and for streaming replication.
 */
const HBA = [
  "# Written by scripts/matrix/postgresql_node.ts on every start; edits are overwritten.",
  "local   all          all                  scram-sha-256",
  "host    all          all    127.0.0.1/32  scram-sha-256",
  "host    all          all    ::1/128       scram-sha-256",
  "local   replication  all                  scram-sha-256",
  "host    replication  all    127.0.0.1/32  scram-sha-256",
  "host    replication  all    ::1/128       scram-sha-256",
  "",
].join("\n");

/** True when `path` exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Gives `path` to `user` (a no-op when the runner is that user). */
export async function chownTo(path: string, user: string, recursive = false): Promise<void> {
  if (user === currentUser()) return;
  await run("chown", [...(recursive ? ["-R"] : []), `${user}:${user}`, path]);
}

/** The pid of the postmaster already serving `data`, if any. */
export async function runningPid(data: string): Promise<number | undefined> {
  try {
    const pid = Number((await Deno.readTextFile(`${data}/postmaster.pid`)).split("\n")[0]);
    if (!pid || !alive(pid)) return undefined;
    const cmd = await Deno.readTextFile(`/proc/${pid}/cmdline`);
    return cmd.includes("postgres") && cmd.includes(data) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Creates `paths.data` for the server user with mode 0700 (what PostgreSQL insists on). */
export async function prepareDataDir(paths: MatrixPaths): Promise<void> {
  await Deno.mkdir(paths.data, { recursive: true });
  await chownTo(paths.data, paths.user);
  await Deno.chmod(paths.data, 0o700);
}

/** Copies the TLS files and writes pg_hba.conf into the data directory, owned by the server user. */
export async function writeConfigFiles(paths: MatrixPaths): Promise<void> {
  // PostgreSQL insists on a key owned by the server user with mode 0600.
  for (const f of [CERT_FILES.cert, CERT_FILES.key]) {
    const dest = `${paths.data}/${f}`;
    await Deno.copyFile(`${paths.certs}/${f}`, dest);
    await Deno.chmod(dest, f === CERT_FILES.key ? 0o600 : 0o644);
    await chownTo(dest, paths.user);
  }
  const hba = `${paths.data}/pg_hba.conf`;
  await Deno.writeTextFile(hba, HBA, { mode: 0o600 });
  await chownTo(hba, paths.user);
}

/** Starts the postmaster on `paths.data` detached, with `settings`; returns its pid. */
export async function spawnPostgres(
  paths: MatrixPaths,
  settings: Record<string, string>,
): Promise<number> {
  return await spawnDetached(`${BIN}/postgres`, [
    "-D",
    paths.data,
    ...Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${v}`]),
  ], { user: paths.user, log: paths.log, cwd: paths.data });
}

/** Arguments of psql connecting as `user` to `dbname` over the unix socket in `data`. */
export function socketArgs(data: string, port: number, user: string, dbname: string): string[] {
  return [
    `host=${data} port=${port} user=${user} dbname=${dbname} connect_timeout=2`,
    "--no-psqlrc",
    "--quiet",
    "--tuples-only",
    "--no-align",
    "--set=ON_ERROR_STOP=1",
  ];
}

/** Runs `sql` as the superuser over the unix socket of the node in `data`; returns psql's output. */
export async function superSql(data: string, port: number, sql: string): Promise<string> {
  return await run(`${BIN}/psql`, [...socketArgs(data, port, SUPERUSER, "postgres"), "-c", sql], {
    env: { ...Deno.env.toObject(), ...PG_ENV },
  });
}

async function logTail(paths: MatrixPaths): Promise<string> {
  try {
    return (await Deno.readTextFile(paths.log)).split("\n").slice(-15).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Waits until the postmaster `pid` accepts a superuser query on its socket; throws when it died. */
export async function waitServing(
  paths: MatrixPaths,
  port: number,
  pid: number,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    if (!alive(pid)) {
      throw new Error(`postgres exited during start-up; log tail:\n${await logTail(paths)}`);
    }
    try {
      await superSql(paths.data, port, "select 1");
      return;
    } catch (e) {
      if (Date.now() > deadline) {
        throw new Error(`postgres did not serve within ${timeoutMs} ms: ${(e as Error).message}`);
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Runs `sql` as the matrix user on the node at `port`, over TLS verified against the matrix CA. */
export async function appSql(paths: MatrixPaths, port: number, sql: string): Promise<string> {
  const conninfo = [
    `host=${MATRIX.host}`,
    `port=${port}`,
    `user=${MATRIX.user}`,
    `dbname=${DATABASE}`,
    "sslmode=verify-full",
    `sslrootcert=${paths.certs}/${CERT_FILES.ca}`,
    "connect_timeout=2",
  ].join(" ");
  const out = await run(`${BIN}/psql`, [
    conninfo,
    "--no-psqlrc",
    "--tuples-only",
    "--no-align",
    "-c",
    sql,
  ], { env: { ...Deno.env.toObject(), ...PG_ENV } });
  return out.trim();
}

/** The matrix user's URL of the node at `port` (TLS is turned on by the CA, so it is also the TLS URL). */
export function appUrl(port: number): string {
  const auth = `${encodeURIComponent(MATRIX.user)}:${encodeURIComponent(MATRIX.password)}`;
  return `postgres://${auth}@${MATRIX.host}:${port}/${DATABASE}`;
}

/** The `Database system identifier` of the cluster in `data` (pg_controldata), or undefined. */
export async function systemId(data: string): Promise<string | undefined> {
  try {
    const out = await run(`${BIN}/pg_controldata`, [data], {
      env: { ...Deno.env.toObject(), LC_ALL: "C" },
    });
    return /^Database system identifier:\s+(\d+)/m.exec(out)?.[1];
  } catch {
    return undefined;
  }
}
