/**
 * PostgreSQL for the matrix: Debian bookworm's `postgresql-15` (15.18), a
 * cluster of its own in `paths.data` run by `paths.user`, listening on
 * 127.0.0.1:15432 only (plain and TLS on the same port through SSL
 * negotiation), its unix socket in the data directory. Every commit is
 * fsynced before it is acknowledged (`fsync`, `synchronous_commit`,
 * `full_page_writes` on). Passwords are SCRAM-SHA-256 for every connection.
 *
 * The cluster uses the ICU root locale (`und`) so `lower()` applies full
 * Unicode case mapping, like JavaScript's `toLowerCase()`.
 *
 * Roles: the superuser `postgres`, the application role `grand_tour` and the
 * streaming-replication role `grand_tour_repl`, all with the matrix password;
 * `grand_tour` owns the database `grand_tour`. The server is always ready to
 * feed a hot standby (`postgresql_standby.ts`): WAL level `replica` and
 * replication entries in pg_hba.conf, both rewritten on every start.
 *
 * @module
 */
import { run } from "./proc.ts";
import { MATRIX, type MatrixPaths, type Service } from "./types.ts";
import { aptInstall, aptVersions } from "./apt.ts";
import {
  appSql,
  appUrl,
  BIN,
  chownTo,
  DATABASE,
  exists,
  PG_ENV,
  prepareDataDir,
  runningPid,
  serverSettings,
  socketArgs,
  spawnPostgres,
  SUPERUSER,
  waitServing,
  writeConfigFiles,
} from "./postgresql_node.ts";

/** Upstream version the matrix runs. */
export const VERSION = "15.18";
/** The exact Debian package version installed (bookworm main). */
export const DEBIAN_VERSION = "15.18-0+deb12u1";
const PACKAGES = ["postgresql-15", "postgresql-client-15"];
const PORT = MATRIX.ports.postgresql;

async function installedVersion(): Promise<string | undefined> {
  try {
    const out = await run(`${BIN}/postgres`, ["--version"]);
    return /\(PostgreSQL\) (\S+)/.exec(out)?.[1];
  } catch {
    return undefined;
  }
}

/** The pinned Debian version, or another bookworm build of the same upstream release. */
async function pickDebianVersion(): Promise<string> {
  const versions = await aptVersions(PACKAGES[0]);
  if (versions.includes(DEBIAN_VERSION)) return DEBIAN_VERSION;
  const same = versions.find((v) => v.startsWith(`${VERSION}-`));
  if (same) return same;
  throw new Error(
    `${PACKAGES[0]} ${DEBIAN_VERSION} is not available from apt (have: ${versions.join(", ")})`,
  );
}

/** initdb into the (empty) data directory, with the matrix password for the superuser. */
async function initdb(paths: MatrixPaths): Promise<void> {
  const pwfile = await Deno.makeTempFile({ prefix: "matrix-pg-pw-" });
  try {
    await Deno.writeTextFile(pwfile, `${MATRIX.password}\n`);
    await Deno.chmod(pwfile, 0o600);
    await chownTo(pwfile, paths.user);
    await run(`${BIN}/initdb`, [
      `--pgdata=${paths.data}`,
      `--username=${SUPERUSER}`,
      `--pwfile=${pwfile}`,
      "--auth=scram-sha-256",
      "--encoding=UTF8",
      "--locale=C.UTF-8",
      "--locale-provider=icu",
      "--icu-locale=und",
      "--no-instructions",
    ], { user: paths.user, cwd: paths.data });
  } finally {
    await Deno.remove(pwfile).catch(() => {});
  }
}

/**
 * Creates (or brings up to date) the application role and its database, and
 * the replication role. Idempotent. The matrix user may also read every
 * pg_stat_* view (`pg_read_all_stats`), and inject replication lag on a
 * standby: `ALTER SYSTEM SET recovery_min_apply_delay`, `pg_reload_conf()`,
 * `pg_wal_replay_pause()` / `pg_wal_replay_resume()` in the database
 * `grand_tour` (granted here, on the primary, so every standby has the same
 * grants).
 */
async function bootstrap(paths: MatrixPaths): Promise<void> {
  const sql = [
    `SELECT format('CREATE ROLE %I', :'app_user')`,
    `  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_user') \\gexec`,
    `ALTER ROLE :"app_user" WITH LOGIN NOSUPERUSER CREATEDB PASSWORD :'app_password';`,
    `SELECT format('CREATE DATABASE %I OWNER %I', :'app_db', :'app_user')`,
    `  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'app_db') \\gexec`,
    `ALTER DATABASE :"app_db" OWNER TO :"app_user";`,
    `SELECT format('CREATE ROLE %I', :'repl_user')`,
    `  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'repl_user') \\gexec`,
    `ALTER ROLE :"repl_user" WITH LOGIN REPLICATION NOSUPERUSER PASSWORD :'app_password';`,
    `GRANT pg_read_all_stats TO :"app_user";`,
    `GRANT ALTER SYSTEM ON PARAMETER recovery_min_apply_delay TO :"app_user";`,
    // Functions are granted per database: in the matrix user's own.
    `\\connect :"app_db"`,
    `GRANT EXECUTE ON FUNCTION pg_reload_conf(), pg_wal_replay_pause(), pg_wal_replay_resume()`,
    `  TO :"app_user";`,
    "",
  ].join("\n");
  await run(`${BIN}/psql`, [
    ...socketArgs(paths.data, PORT, SUPERUSER, "postgres"),
    `--set=app_user=${MATRIX.user}`,
    `--set=app_password=${MATRIX.password}`,
    `--set=app_db=${DATABASE}`,
    `--set=repl_user=${MATRIX.replicationUser}`,
  ], { stdin: sql, env: { ...Deno.env.toObject(), ...PG_ENV } });
}

const postgresql: Service = {
  name: "postgresql",
  store: "POSTGRESQL",
  version: `${VERSION} (Debian ${DEBIAN_VERSION})`,

  async install(paths: MatrixPaths): Promise<void> {
    if ((await installedVersion()) === VERSION) return;
    const version = await pickDebianVersion();
    // The package's own cluster (15/main) is never started here: no init system runs it.
    await aptInstall(paths, PACKAGES.map((p) => `${p}=${version}`), { allowDowngrades: true });
    const got = await installedVersion();
    if (got !== VERSION) throw new Error(`postgres reports ${got ?? "nothing"}, want ${VERSION}`);
  },

  async start(paths: MatrixPaths): Promise<number> {
    const already = await runningPid(paths.data);
    if (already) return already;

    await prepareDataDir(paths);
    if (!(await exists(`${paths.data}/PG_VERSION`))) {
      await initdb(paths);
    } else {
      await chownTo(paths.data, paths.user, true);
    }
    await writeConfigFiles(paths);
    const pid = await spawnPostgres(paths, serverSettings(paths, PORT));
    await waitServing(paths, PORT, pid, 60_000);
    await bootstrap(paths);
    return pid;
  },

  async ready(paths: MatrixPaths): Promise<boolean> {
    // A real query as the application role, over TLS verified against the matrix CA.
    try {
      return (await appSql(paths, PORT, "select 1")) === "1";
    } catch {
      return false;
    }
  },

  env(_paths: MatrixPaths): Record<string, string> {
    const url = appUrl(PORT);
    // The store turns TLS on (verifying the server) when a CA is configured, so both are the same URL.
    return { POSTGRESQL_URL: url, MATRIX_POSTGRESQL_TLS_URL: url };
  },
};

export default postgresql;
