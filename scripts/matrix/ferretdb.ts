/**
 * FerretDB for the matrix: the MongoDB wire protocol (v1.24.2, Apache-2.0)
 * over its SQLite backend, built from source with the Go toolchain into
 * `paths.cache`, plain on 127.0.0.1:17017 and TLS on 127.0.0.1:17018.
 *
 * FerretDB v1's default ("backend") authentication leaves password checks to
 * the backend, and SQLite has none: any password would be accepted. So the
 * server runs with `--test-enable-new-auth`, FerretDB's own user store
 * (`admin.system.users`, SCRAM-SHA-256 and SCRAM-SHA-1): on the first start,
 * `--setup-*` creates the database `grand_tour` and its user `grand_tour`
 * with the matrix password, every command but the handshake requires an
 * authenticated connection, and a wrong password is refused. (There are no
 * roles: an authenticated user may use every database.)
 *
 * Each SQLite commit is synced to disk (WAL, `synchronous=FULL`) before the
 * write is acknowledged.
 *
 * `go install …@v1.24.2` cannot be used: it looks the module's deprecation up
 * in the proxy's version list, which proxy.golang.org refuses (403) for
 * FerretDB. The module is fetched with `go mod download` instead (checked
 * against sum.golang.org and the hash pinned below) and built with `go build`
 * from a copy carrying the `version.txt`/`commit.txt` that FerretDB's release
 * builds embed (without them the binary panics at start).
 *
 * @module
 */
import { MongoClient } from "mongodb";
import { CERT_FILES } from "./certs.ts";
import { currentUser, run, spawnDetached } from "./proc.ts";
import { MATRIX, type MatrixPaths, type Service } from "./types.ts";
import { aptInstall } from "./apt.ts";

/** Upstream version the matrix runs (the newest 1.x; 2.x needs PostgreSQL + DocumentDB). */
const VERSION = "v1.24.2";
const MODULE = "github.com/FerretDB/FerretDB";
/** The module's go.sum hash (also verified by the toolchain against sum.golang.org). */
const MODULE_SUM = "h1:trrUU0LbmusMbyubhPS1IELncvrIwKrsRT2LW1UUWCw=";
/** The tagged commit, embedded like official builds do. */
const COMMIT = "cda72d440810406a208c4670aa7047f5bc8d528f";
const DATABASE = "grand_tour";
/** SQLite databases (one file per MongoDB database) under `paths.data`. */
const DB_DIR = "db";
const TLS_DIR = "tls";

/** Where everything of this service lives in the cache. */
function cacheDirs(paths: MatrixPaths) {
  const base = `${paths.cache}/ferretdb`;
  return {
    base,
    gopath: `${base}/gopath`,
    gocache: `${base}/gocache`,
    src: `${base}/src-${VERSION}`,
    binary: `${base}/${VERSION}/bin/ferretdb`,
  };
}

async function installedVersion(binary: string): Promise<string | undefined> {
  try {
    const out = await run(binary, ["--version"]);
    return /^version: (\S+)/m.exec(out)?.[1];
  } catch {
    return undefined;
  }
}

/** A Go toolchain: `go` on PATH, the official tarball's location, or Debian's (which fetches a newer toolchain). */
async function findGo(paths: MatrixPaths): Promise<string> {
  for (const candidate of ["go", "/usr/local/go/bin/go", "/usr/lib/go/bin/go"]) {
    try {
      await run(candidate, ["version"]);
      return candidate;
    } catch {
      // try the next one
    }
  }
  await aptInstall(paths, ["golang-go"]);
  return "/usr/bin/go";
}

async function chownTree(path: string, user: string): Promise<void> {
  if (user === currentUser()) return;
  await run("chown", ["-R", `${user}:${user}`, path]);
}

function auth(): string {
  return `${encodeURIComponent(MATRIX.user)}:${encodeURIComponent(MATRIX.password)}`;
}

const QUERY = "authSource=grand_tour&authMechanism=SCRAM-SHA-256";

/** Connects with the matrix credentials, runs `ping`, and closes. */
async function authPing(url: string, ca?: string): Promise<boolean> {
  const client = new MongoClient(url, {
    serverSelectionTimeoutMS: 2_000,
    connectTimeoutMS: 2_000,
    socketTimeoutMS: 5_000,
    ...(ca ? { tls: true, ca } : {}),
  });
  try {
    const reply = await client.db(DATABASE).command({ ping: 1 });
    return reply.ok === 1;
  } catch {
    return false;
  } finally {
    await client.close().catch(() => {});
  }
}

const ferretdb: Service = {
  name: "ferretdb",
  store: "MONGODB",
  version: `${VERSION} (SQLite backend)`,

  async install(paths: MatrixPaths): Promise<void> {
    const dirs = cacheDirs(paths);
    if ((await installedVersion(dirs.binary)) === VERSION) return;
    const go = await findGo(paths);
    await Deno.mkdir(dirs.base, { recursive: true });
    const env: Record<string, string> = {
      PATH: Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin",
      HOME: dirs.base,
      GOPATH: dirs.gopath,
      GOMODCACHE: `${dirs.gopath}/pkg/mod`,
      GOCACHE: dirs.gocache,
      GOFLAGS: "-modcacherw",
      GOTOOLCHAIN: "auto",
      CGO_ENABLED: "0",
    };
    for (const k of ["GOPROXY", "GOSUMDB", "GONOSUMDB", "GOPRIVATE", "HTTPS_PROXY", "HTTP_PROXY"]) {
      const v = Deno.env.get(k);
      if (v) env[k] = v;
    }
    const info = JSON.parse(
      await run(go, ["mod", "download", "-json", `${MODULE}@${VERSION}`], { cwd: dirs.base, env }),
    ) as { Dir?: string; Sum?: string; Error?: string };
    if (!info.Dir || info.Sum !== MODULE_SUM) {
      throw new Error(`go mod download ${MODULE}@${VERSION}: ${info.Error ?? `sum ${info.Sum}`}`);
    }
    await Deno.remove(dirs.src, { recursive: true }).catch(() => {});
    await run("cp", ["-R", info.Dir, dirs.src]);
    await run("chmod", ["-R", "u+w", dirs.src]);
    await Deno.writeTextFile(`${dirs.src}/build/version/version.txt`, `${VERSION}\n`);
    await Deno.writeTextFile(`${dirs.src}/build/version/commit.txt`, `${COMMIT}\n`);
    const out = `${dirs.binary}.tmp`;
    await Deno.mkdir(`${dirs.base}/${VERSION}/bin`, { recursive: true });
    // Niced: the machine is shared, and this takes minutes of CPU on a cold cache.
    await run("nice", [
      "-n",
      "10",
      go,
      "build",
      "-buildvcs=false",
      "-trimpath",
      "-o",
      out,
      "./cmd/ferretdb",
    ], { cwd: dirs.src, env });
    await Deno.rename(out, dirs.binary);
    const got = await installedVersion(dirs.binary);
    if (got !== VERSION) throw new Error(`ferretdb reports ${got ?? "nothing"}, want ${VERSION}`);
  },

  async start(paths: MatrixPaths): Promise<number> {
    const tls = `${paths.data}/${TLS_DIR}`;
    await Deno.mkdir(`${paths.data}/${DB_DIR}`, { recursive: true });
    await Deno.mkdir(tls, { recursive: true });
    for (const f of [CERT_FILES.cert, CERT_FILES.key]) {
      await Deno.copyFile(`${paths.certs}/${f}`, `${tls}/${f}`);
      await Deno.chmod(`${tls}/${f}`, f === CERT_FILES.key ? 0o600 : 0o644);
    }
    await Deno.chmod(paths.data, 0o700);
    await chownTree(paths.data, paths.user);
    return await spawnDetached(cacheDirs(paths).binary, [
      "--handler=sqlite",
      `--sqlite-url=file:${paths.data}/${DB_DIR}/?_pragma=synchronous(full)`,
      `--state-dir=${paths.data}`,
      `--listen-addr=${MATRIX.host}:${MATRIX.ports.ferretdb}`,
      `--listen-tls=${MATRIX.host}:${MATRIX.ports.ferretdbTls}`,
      `--listen-tls-cert-file=${tls}/${CERT_FILES.cert}`,
      `--listen-tls-key-file=${tls}/${CERT_FILES.key}`,
      "--debug-addr=-",
      "--telemetry=disable",
      "--log-level=info",
      "--test-enable-new-auth",
      `--setup-database=${DATABASE}`,
      `--setup-username=${MATRIX.user}`,
    ], {
      user: paths.user,
      log: paths.log,
      cwd: paths.data,
      // From the environment rather than argv, so `ps` does not show it.
      env: { FERRETDB_SETUP_PASSWORD: MATRIX.password },
    });
  },

  async ready(paths: MatrixPaths): Promise<boolean> {
    const env = ferretdb.env(paths);
    if (!(await authPing(env.MONGODB_URL))) return false;
    const ca = await Deno.readTextFile(`${paths.certs}/${CERT_FILES.ca}`);
    return await authPing(env.MATRIX_MONGODB_TLS_URL, ca);
  },

  env(_paths: MatrixPaths): Record<string, string> {
    const host = MATRIX.host;
    return {
      MONGODB_URL: `mongodb://${auth()}@${host}:${MATRIX.ports.ferretdb}/${DATABASE}?${QUERY}`,
      MATRIX_MONGODB_TLS_URL:
        `mongodb://${auth()}@${host}:${MATRIX.ports.ferretdbTls}/${DATABASE}?${QUERY}&tls=true`,
    };
  },
};

export default ferretdb;
