/**
 * Apache Cassandra for the matrix (the SCYLLA store speaks CQL to it):
 * `org.apache.cassandra:cassandra-all` from Maven Central with its runtime
 * dependencies, run on Java 17: node 1 (`cassandra`) alone, CQL on
 * 127.0.0.1:19042 (plain and TLS on the same port), gossip on
 * 127.0.0.1:17000, JMX off; or with `cassandra-2` and `cassandra-3` on
 * 127.0.0.2 and 127.0.0.3 (same ports) as a cluster of three in one data
 * centre (`cassandra_config.ts`). A joining node waits for the one before it
 * to be UN, and first raises the roles' and the gateway's keyspaces to
 * replication factor 3 so its bootstrap streams them (`cassandra_cluster.ts`).
 * `down` of node 2 or 3 only stops it: it stays in the ring, down, and with
 * both stopped, node 1 alone cannot reach LOCAL_QUORUM on those keyspaces.
 *
 * Durability: `commitlog_sync: batch`, so a write is acknowledged only after
 * its commit-log segment was fsynced and survives SIGKILL of the server.
 * Authentication: `PasswordAuthenticator`; the first successful `ready()`
 * creates the superuser role `grand_tour` (logging in as the built-in
 * `cassandra` role once) and then disables the login of `cassandra`.
 *
 * @module
 */
import { CERT_FILES } from "./certs.ts";
import {
  type CassandraNode,
  CLUSTER_RF,
  DATACENTER,
  jvmArgs,
  KEYSTORE,
  LOGBACK,
  NODES,
  TLS_DIR,
  yaml,
} from "./cassandra_config.ts";
import { client, joined, own, raiseReplication, releaseVersion } from "./cassandra_cluster.ts";
import { currentUser, run, spawnDetached } from "./proc.ts";
import { MATRIX, type MatrixPaths, type Service } from "./types.ts";
import { aptInstall } from "./apt.ts";

/** The exact Cassandra release the matrix runs. */
const VERSION = "5.0.9";

/** Where install() leaves the jars: `${cache}/cassandra/<version>/lib`. */
function home(paths: MatrixPaths): string {
  return `${paths.cache}/cassandra/${VERSION}`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** A Java 17 binary (Cassandra 5.0 runs on 11 and 17, not newer). */
async function java17(): Promise<string | undefined> {
  const candidates = ["/usr/lib/jvm/java-17-openjdk-amd64/bin/java"];
  try {
    for await (const e of Deno.readDir("/usr/lib/jvm")) {
      if (/(^|[^0-9])17([^0-9]|$)/.test(e.name)) candidates.push(`/usr/lib/jvm/${e.name}/bin/java`);
    }
  } catch {
    // no JVMs at all
  }
  for (const c of candidates) if (await exists(c)) return c;
  return undefined;
}

async function which(cmd: string): Promise<boolean> {
  try {
    await run("sh", ["-c", `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
}

const POM = `<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by scripts/matrix/cassandra.ts: only used to fetch Cassandra's jars. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>grand-tour.matrix</groupId>
  <artifactId>cassandra-runtime</artifactId>
  <version>${VERSION}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId>
      <artifactId>cassandra-all</artifactId>
      <version>${VERSION}</version>
    </dependency>
  </dependencies>
</project>
`;

async function chownTree(path: string, user: string): Promise<void> {
  if (user === currentUser()) return;
  await run("chown", ["-R", `${user}:${user}`, path]);
}

function isAuthError(e: unknown): boolean {
  const err = e as { innerErrors?: Record<string, unknown>; name?: string; message?: string };
  if (err?.name === "AuthenticationError") return true;
  const inner = Object.values(err?.innerErrors ?? {});
  return inner.some((i) => (i as { name?: string })?.name === "AuthenticationError");
}

/** Creates the `grand_tour` superuser through the built-in `cassandra` role, then locks that role. */
async function createRole(): Promise<void> {
  const admin = client(NODES[0], "cassandra", "cassandra");
  try {
    const pw = MATRIX.password.replaceAll("'", "''");
    // Role options take no bind markers; the password is a matrix constant.
    await admin.execute(
      `CREATE ROLE IF NOT EXISTS ${MATRIX.user} WITH PASSWORD = '${pw}' AND LOGIN = true AND SUPERUSER = true`,
    );
  } finally {
    await admin.shutdown().catch(() => {});
  }
  const c = own(NODES[0]);
  try {
    await c.execute("ALTER ROLE cassandra WITH SUPERUSER = false AND LOGIN = false");
  } finally {
    await c.shutdown().catch(() => {});
  }
}

async function install(paths: MatrixPaths): Promise<void> {
  if (!(await java17())) await aptInstall(paths, ["openjdk-17-jre-headless"]);
  const dir = home(paths);
  const done = `${dir}/lib/.complete`;
  if (await exists(done)) return;
  if (!(await which("mvn"))) await aptInstall(paths, ["maven"]);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(`${dir}/pom.xml`, POM);
  await Deno.remove(`${dir}/lib`, { recursive: true }).catch(() => {});
  const jdk = (await java17())!.replace(/\/bin\/java$/, "");
  await run("mvn", [
    "-q",
    "-B",
    "-f",
    `${dir}/pom.xml`,
    `-Dmaven.repo.local=${paths.cache}/m2`,
    "dependency:copy-dependencies",
    "-DincludeScope=runtime",
    `-DoutputDirectory=${dir}/lib`,
  ], { cwd: dir, env: { ...Deno.env.toObject(), JAVA_HOME: jdk } });
  if (!(await exists(`${dir}/lib/cassandra-all-${VERSION}.jar`))) {
    throw new Error(`maven did not produce cassandra-all-${VERSION}.jar`);
  }
  await run("chmod", ["-R", "a+rX", dir]);
  await Deno.writeTextFile(done, `${new Date().toISOString()}\n`);
}

async function start(node: CassandraNode, paths: MatrixPaths): Promise<number> {
  const java = await java17();
  if (!java) throw new Error("no Java 17 runtime found (run install first)");
  const lib = `${home(paths)}/lib`;
  const d = paths.data;
  for (
    const sub of [
      "data",
      "commitlog",
      "saved_caches",
      "hints",
      "cdc_raw",
      "triggers",
      "tmp",
      "logs",
    ]
  ) {
    await Deno.mkdir(`${d}/${sub}`, { recursive: true });
  }
  const tls = `${d}/${TLS_DIR}`;
  await Deno.mkdir(tls, { recursive: true });
  const key = await Deno.readTextFile(`${paths.certs}/${CERT_FILES.key}`);
  const cert = await Deno.readTextFile(`${paths.certs}/${CERT_FILES.cert}`);
  await Deno.writeTextFile(`${tls}/${KEYSTORE}`, `${key.trimEnd()}\n${cert.trimEnd()}\n`, {
    mode: 0o600,
  });
  await Deno.chmod(`${tls}/${KEYSTORE}`, 0o600);
  await Deno.copyFile(`${paths.certs}/${CERT_FILES.ca}`, `${tls}/${CERT_FILES.ca}`);
  await Deno.chmod(`${tls}/${CERT_FILES.ca}`, 0o644);
  await Deno.writeTextFile(`${d}/cassandra.yaml`, yaml(node, paths));
  await Deno.writeTextFile(`${d}/logback.xml`, LOGBACK);
  await Deno.chmod(d, 0o700);
  await chownTree(d, paths.user);
  // A joining node streams the rows of every keyspace it will hold: raise them first.
  if (!node.seed && !(await exists(`${d}/data/system`))) await raiseReplication();
  return await spawnDetached(java, jvmArgs(node, paths, lib), {
    user: paths.user,
    log: paths.log,
    cwd: d,
  });
}

/** Node 1: answers CQL (creating the matrix role on first use); plain and TLS on one port. */
async function firstReady(paths: MatrixPaths): Promise<boolean> {
  let c = own(NODES[0]);
  try {
    try {
      await c.connect();
    } catch (e) {
      if (!isAuthError(e)) return false;
      await c.shutdown().catch(() => {});
      await createRole();
      c = own(NODES[0]);
      await c.connect();
    }
    if (!(await releaseVersion(c)).startsWith("5.")) return false;
  } catch {
    return false;
  } finally {
    await c.shutdown().catch(() => {});
  }
  return await tlsAnswers(NODES[0], paths);
}

/** The TLS side of `node`'s CQL port answers, its certificate verified against the matrix CA. */
async function tlsAnswers(node: CassandraNode, paths: MatrixPaths): Promise<boolean> {
  const ca = await Deno.readTextFile(`${paths.certs}/${CERT_FILES.ca}`);
  const s = own(node, ca);
  try {
    return (await releaseVersion(s)).startsWith("5.");
  } catch {
    return false;
  } finally {
    await s.shutdown().catch(() => {});
  }
}

function service(node: CassandraNode): Service {
  return {
    name: node.service,
    store: "SCYLLA",
    version: `${VERSION} (Apache Cassandra cassandra-all from Maven Central, Java 17)`,
    install,
    start: (paths) => start(node, paths),
    async ready(paths) {
      if (node.seed) return await firstReady(paths);
      try {
        return await joined(node) && await tlsAnswers(node, paths);
      } catch {
        return false;
      }
    },
    env() {
      const auth = `${encodeURIComponent(MATRIX.user)}:${encodeURIComponent(MATRIX.password)}`;
      const url = `cassandra://${auth}@${node.host}:${MATRIX.ports.cassandra}`;
      return {
        SCYLLA_URL: url,
        // Same port: the server accepts TLS and plain CQL; TLS is used when a CA is given.
        MATRIX_SCYLLA_TLS_URL: url,
        SCYLLA_DATACENTER: DATACENTER,
        // Nodes 2 and 3 make it a cluster: the gateway's keyspace is created with RF 3.
        ...(node.seed ? {} : { SCYLLA_REPLICATION_FACTOR: String(CLUSTER_RF) }),
      };
    },
    ...(node.seed
      ? { joinedEnv: ["SCYLLA_URL", "MATRIX_SCYLLA_TLS_URL"] }
      : { after: NODES[NODES.indexOf(node) - 1].service }),
  };
}

export default service(NODES[0]);
/** Cluster node 2 on 127.0.0.2: bootstraps into node 1's ring. */
export const node2: Service = service(NODES[1]);
/** Cluster node 3 on 127.0.0.3: bootstraps once node 2 is UN. */
export const node3: Service = service(NODES[2]);
