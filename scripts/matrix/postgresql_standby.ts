/**
 * The PostgreSQL hot standby of the cluster topology: the same 15.18 as the
 * primary (`postgresql.ts`), on 127.0.0.1:15433 (plain and TLS on one port),
 * cloned once with `pg_basebackup` and then streaming from the primary over
 * TLS as `grand_tour_repl` through the physical slot `matrix_standby`
 * (`hot_standby=on`, read-only). Restarting it resumes streaming; it re-clones
 * only when its data directory is empty, the primary was re-initialised
 * (another system identifier, e.g. after `down --wipe postgresql`) or the
 * primary gave up the slot's WAL (`max_slot_wal_keep_size`).
 *
 * Logins: `grand_tour` reads (and sees pg_stat_wal_receiver); it may also
 * `ALTER SYSTEM SET recovery_min_apply_delay = '2s'` + `SELECT pg_reload_conf()`
 * and `SELECT pg_wal_replay_pause()` / `pg_wal_replay_resume()` here. The
 * superuser `postgres` (matrix password) is reached over the unix socket in the
 * data directory, `host=${root}/data/postgresql-standby port=15433`.
 *
 * @module
 */
import postgresql, { DEBIAN_VERSION, VERSION } from "./postgresql.ts";
import {
  appSql,
  appUrl,
  BIN,
  chownTo,
  exists,
  PG_ENV,
  prepareDataDir,
  runningPid,
  serverSettings,
  spawnPostgres,
  STANDBY_SLOT,
  superSql,
  systemId,
  waitServing,
  writeConfigFiles,
} from "./postgresql_node.ts";
import { CERT_FILES } from "./certs.ts";
import { run } from "./proc.ts";
import { stopTree } from "./ps.ts";
import { say } from "./state.ts";
import { MATRIX, type MatrixPaths, type Service } from "./types.ts";

const PORT = MATRIX.ports["postgresql-standby"];
const PRIMARY_PORT = MATRIX.ports.postgresql;
const PASSFILE = "matrix-pgpass";

const primaryData = (paths: MatrixPaths) => `${paths.root}/data/postgresql`;

/** The replication connection to the primary, verified against the matrix CA. */
function primaryConninfo(paths: MatrixPaths): string {
  return [
    `host=${MATRIX.host}`,
    `port=${PRIMARY_PORT}`,
    `user=${MATRIX.replicationUser}`,
    `passfile=${paths.data}/${PASSFILE}`,
    "sslmode=verify-full",
    `sslrootcert=${paths.certs}/${CERT_FILES.ca}`,
    // No client certificate. Without these libpq would read ~/.postgresql of the
    // environment's HOME (the runner's, e.g. /root), which the server user may not.
    `sslcert=${paths.data}/no-client-cert.pem`,
    `sslkey=${paths.data}/no-client-key.pem`,
    "application_name=postgresql-standby",
    "connect_timeout=5",
  ].join(" ");
}

/** The primary's slot for this standby: created when missing; dropped and re-created when its WAL is lost. */
async function ensureSlot(paths: MatrixPaths): Promise<"kept" | "created" | "lost"> {
  const data = primaryData(paths);
  const state = (await superSql(
    data,
    PRIMARY_PORT,
    `select coalesce((select wal_status from pg_replication_slots where slot_name = '${STANDBY_SLOT}'), 'missing')`,
  )).trim();
  if (state === "lost") {
    await superSql(data, PRIMARY_PORT, `select pg_drop_replication_slot('${STANDBY_SLOT}')`);
  }
  if (state === "lost" || state === "missing") {
    await superSql(
      data,
      PRIMARY_PORT,
      `select pg_create_physical_replication_slot('${STANDBY_SLOT}', true)`,
    );
  }
  return state === "lost" ? "lost" : state === "missing" ? "created" : "kept";
}

/** Why the existing data directory cannot resume streaming, or undefined when it can. */
async function staleReason(paths: MatrixPaths, slot: string): Promise<string | undefined> {
  const [mine, primary] = [await systemId(paths.data), await systemId(primaryData(paths))];
  if (!mine || mine !== primary) return `system identifier ${mine} is not the primary's ${primary}`;
  if (slot === "lost") return "the primary dropped the WAL this standby still needed";
  return undefined;
}

/** Copies the primary into the empty data directory (`pg_basebackup`, WAL streamed alongside). */
async function clone(paths: MatrixPaths): Promise<void> {
  const t0 = Date.now();
  const conninfo = primaryConninfo(paths).replace(/passfile=\S+ /, "");
  await run(`${BIN}/pg_basebackup`, [
    `--dbname=${conninfo}`,
    `--pgdata=${paths.data}`,
    "--wal-method=stream",
    `--slot=${STANDBY_SLOT}`,
    "--checkpoint=fast",
    "--no-password",
  ], { user: paths.user, cwd: paths.data, env: { ...Deno.env.toObject(), ...PG_ENV } });
  say(`postgresql-standby: cloned the primary in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

/** Files a standby needs besides the clone: standby.signal and the replication password file. */
async function writeStandbyFiles(paths: MatrixPaths): Promise<void> {
  const signal = `${paths.data}/standby.signal`;
  await Deno.writeTextFile(signal, "");
  const pass = `${paths.data}/${PASSFILE}`;
  await Deno.writeTextFile(
    pass,
    `${MATRIX.host}:${PRIMARY_PORT}:*:${MATRIX.replicationUser}:${MATRIX.password}\n`,
    { mode: 0o600 },
  );
  await Deno.chmod(pass, 0o600);
  for (const f of [signal, pass]) await chownTo(f, paths.user);
}

const standby: Service = {
  name: "postgresql-standby",
  store: "POSTGRESQL",
  version: `${VERSION} (Debian ${DEBIAN_VERSION})`,

  install: (paths) => postgresql.install(paths),

  async start(paths: MatrixPaths): Promise<number> {
    const already = await runningPid(paths.data);
    if (already) return already;

    await prepareDataDir(paths);
    const slot = await ensureSlot(paths);
    if (await exists(`${paths.data}/PG_VERSION`)) {
      const reason = await staleReason(paths, slot);
      if (reason) {
        say(`postgresql-standby: re-cloning: ${reason}`);
        await Deno.remove(paths.data, { recursive: true });
        await prepareDataDir(paths);
      }
    }
    if (!(await exists(`${paths.data}/PG_VERSION`))) await clone(paths);
    await chownTo(paths.data, paths.user, true);
    await writeConfigFiles(paths);
    await writeStandbyFiles(paths);
    const pid = await spawnPostgres(paths, {
      ...serverSettings(paths, PORT),
      primary_conninfo: primaryConninfo(paths),
      primary_slot_name: STANDBY_SLOT,
      // Long reads on the standby are not cancelled by the primary's vacuum.
      hot_standby_feedback: "on",
      wal_receiver_status_interval: "1s",
      // Reconnect quickly after the primary restarts.
      wal_retrieve_retry_interval: "1s",
    });
    try {
      await waitServing(paths, PORT, pid, 60_000);
    } catch (e) {
      await stopTree(pid, "SIGINT", 30_000);
      throw e;
    }
    return pid;
  },

  async ready(paths: MatrixPaths): Promise<boolean> {
    // Answers as the application role over verified TLS, in recovery, and streaming.
    try {
      const sql = "select pg_is_in_recovery() and exists " +
        "(select from pg_stat_wal_receiver where status = 'streaming')";
      return (await appSql(paths, PORT, sql)) === "t";
    } catch {
      return false;
    }
  },

  env(_paths: MatrixPaths): Record<string, string> {
    const url = appUrl(PORT);
    return { POSTGRESQL_READ_URL: url, MATRIX_POSTGRESQL_READ_TLS_URL: url };
  },
};

export default standby;
