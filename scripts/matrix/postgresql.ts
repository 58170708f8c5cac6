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
 * Roles: the superuser `postgres` and the application role `grand_tour`, both
 * with the matrix password; `grand_tour` owns the database `grand_tour`.
 *
 * @module
 */
import { CERT_FILES } from "./certs.ts";
import { alive, currentUser, run, spawnDetached } from "./proc.ts";
import { MATRIX, type MatrixPaths, type Service } from "./types.ts";
import { aptInstall, aptVersions } from "./apt.ts";

/** Upstream version the matrix runs. */
const VERSION = "15.18";
/** The exact Debian package version installed (bookworm main). */
const DEBIAN_VERSION = "15.18-0+deb12u1";
const PACKAGES = ["postgresql-15", "postgresql-client-15"];
const BIN = "/usr/lib/postgresql/15/bin";
const SUPERUSER = "postgres";
const DATABASE = "grand_tour";
/** Server settings, passed on the command line so every start applies them. */
const SETTINGS: Record<string, string> = {
  listen_addresses: MATRIX.host,
  port: String(MATRIX.ports.postgresql),
  // unix_socket_directories is the data directory (set per start).
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
};

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

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function chownTo(path: string, user: string, recursive = false): Promise<void> {
  if (user === currentUser()) return;
  await run("chown", [...(recursive ? ["-R"] : []), `${user}:${user}`, path]);
}

/** The pid of the postmaster already serving `paths.data`, if any. */
async function runningPid(paths: MatrixPaths): Promise<number | undefined> {
  try {
    const pid = Number((await Deno.readTextFile(`${paths.data}/postmaster.pid`)).split("\n")[0]);
    if (!pid || !alive(pid)) return undefined;
    const cmd = await Deno.readTextFile(`/proc/${pid}/cmdline`);
    return cmd.includes("postgres") && cmd.includes(paths.data) ? pid : undefined;
  } catch {
    return undefined;
  }
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

/** Arguments of psql connecting as `user` to `dbname` over the unix socket in the data directory. */
function socketArgs(paths: MatrixPaths, user: string, dbname: string): string[] {
  return [
    `host=${paths.data} port=${MATRIX.ports.postgresql} user=${user} dbname=${dbname} connect_timeout=2`,
    "--no-psqlrc",
    "--quiet",
    "--tuples-only",
    "--no-align",
    "--set=ON_ERROR_STOP=1",
  ];
}

const PG_ENV = { PGPASSWORD: MATRIX.password, PGAPPNAME: "grand-tour-matrix" };

/** Creates (or brings up to date) the application role and its database. Idempotent. */
async function bootstrap(paths: MatrixPaths): Promise<void> {
  const sql = [
    `SELECT format('CREATE ROLE %I', :'app_user')`,
    `  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_user') \\gexec`,
    `ALTER ROLE :"app_user" WITH LOGIN NOSUPERUSER CREATEDB PASSWORD :'app_password';`,
    `SELECT format('CREATE DATABASE %I OWNER %I', :'app_db', :'app_user')`,
    `  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'app_db') \\gexec`,
    `ALTER DATABASE :"app_db" OWNER TO :"app_user";`,
    "",
  ].join("\n");
  await run(`${BIN}/psql`, [
    ...socketArgs(paths, SUPERUSER, "postgres"),
    `--set=app_user=${MATRIX.user}`,
    `--set=app_password=${MATRIX.password}`,
    `--set=app_db=${DATABASE}`,
  ], { stdin: sql, env: { ...Deno.env.toObject(), ...PG_ENV } });
}

async function logTail(paths: MatrixPaths): Promise<string> {
  try {
    return (await Deno.readTextFile(paths.log)).split("\n").slice(-15).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Waits until the postmaster `pid` accepts a superuser query on its socket; throws when it died. */
async function waitServing(paths: MatrixPaths, pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    if (!alive(pid)) {
      throw new Error(`postgres exited during start-up; log tail:\n${await logTail(paths)}`);
    }
    try {
      await run(`${BIN}/psql`, [...socketArgs(paths, SUPERUSER, "postgres"), "-c", "select 1"], {
        env: { ...Deno.env.toObject(), ...PG_ENV },
      });
      return;
    } catch (e) {
      if (Date.now() > deadline) {
        throw new Error(`postgres did not serve within ${timeoutMs} ms: ${(e as Error).message}`);
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
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
    const already = await runningPid(paths);
    if (already) return already;

    await Deno.mkdir(paths.data, { recursive: true });
    await chownTo(paths.data, paths.user);
    await Deno.chmod(paths.data, 0o700);
    if (!(await exists(`${paths.data}/PG_VERSION`))) {
      await initdb(paths);
    } else {
      await chownTo(paths.data, paths.user, true);
    }
    // PostgreSQL insists on a key owned by the server user with mode 0600.
    for (const f of [CERT_FILES.cert, CERT_FILES.key]) {
      const dest = `${paths.data}/${f}`;
      await Deno.copyFile(`${paths.certs}/${f}`, dest);
      await Deno.chmod(dest, f === CERT_FILES.key ? 0o600 : 0o644);
      await chownTo(dest, paths.user);
    }

    const settings = { ...SETTINGS, unix_socket_directories: paths.data };
    const pid = await spawnDetached(`${BIN}/postgres`, [
      "-D",
      paths.data,
      ...Object.entries(settings).flatMap(([k, v]) => ["-c", `${k}=${v}`]),
    ], { user: paths.user, log: paths.log, cwd: paths.data });
    await waitServing(paths, pid, 60_000);
    await bootstrap(paths);
    return pid;
  },

  async ready(paths: MatrixPaths): Promise<boolean> {
    // A real query as the application role, over TLS verified against the matrix CA.
    try {
      const conninfo = [
        `host=${MATRIX.host}`,
        `port=${MATRIX.ports.postgresql}`,
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
        "select 1",
      ], { env: { ...Deno.env.toObject(), ...PG_ENV } });
      return out.trim() === "1";
    } catch {
      return false;
    }
  },

  env(_paths: MatrixPaths): Record<string, string> {
    const auth = `${encodeURIComponent(MATRIX.user)}:${encodeURIComponent(MATRIX.password)}`;
    const url = `postgres://${auth}@${MATRIX.host}:${MATRIX.ports.postgresql}/${DATABASE}`;
    // The store turns TLS on (verifying the server) when a CA is configured, so both are the same URL.
    return { POSTGRESQL_URL: url, MATRIX_POSTGRESQL_TLS_URL: url };
  },
};

export default postgresql;
