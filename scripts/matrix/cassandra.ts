/**
 * Apache Cassandra for the matrix (the SCYLLA store speaks CQL to it):
 * `org.apache.cassandra:cassandra-all` from Maven Central with its runtime
 * dependencies, run on Java 17 as one node, CQL on 127.0.0.1:19042 (plain and
 * TLS on the same port), gossip on 127.0.0.1:17000, JMX off.
 *
 * Durability: `commitlog_sync: batch`, so a write is acknowledged only after
 * its commit-log segment was fsynced and survives SIGKILL of the server.
 * Authentication: `PasswordAuthenticator`; the first successful `ready()`
 * creates the superuser role `grand_tour` (logging in as the built-in
 * `cassandra` role once) and then disables the login of `cassandra`.
 *
 * @module
 */
import cassandra from "cassandra-driver";
import { CERT_FILES } from "./certs.ts";
import { currentUser, run, spawnDetached } from "./proc.ts";
import { MATRIX, type MatrixPaths, type Service } from "./types.ts";
import { aptInstall } from "./apt.ts";

/** The exact Cassandra release the matrix runs. */
const VERSION = "5.0.9";
const DATACENTER = "datacenter1";
const MAIN_CLASS = "org.apache.cassandra.service.CassandraDaemon";
const HEAP = "768m";
/** Keystore (private key + certificate chain, PEM) and truststore (CA, PEM) in the data dir. */
const TLS_DIR = "tls";
const KEYSTORE = "server-keystore.pem";

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

/**
 * JVM flags: small fixed heap, G1 as upstream, the module exports/opens that
 * Cassandra's `conf/jvm17-server.options` needs on Java 17, and start-up
 * shortcuts that are safe for a single node.
 */
function jvmArgs(paths: MatrixPaths, lib: string): string[] {
  const exportsTo = [
    "java.base/jdk.internal.misc",
    "java.management.rmi/com.sun.jmx.remote.internal.rmi",
    "java.rmi/sun.rmi.registry",
    "java.rmi/sun.rmi.server",
    "java.sql/java.sql",
    "java.base/java.lang.ref",
    "jdk.unsupported/sun.misc",
    "jdk.compiler/com.sun.tools.javac.file",
    "jdk.attach/sun.tools.attach",
  ];
  const opensTo = [
    "java.base/java.lang.module",
    "java.base/jdk.internal.loader",
    "java.base/jdk.internal.ref",
    "java.base/jdk.internal.reflect",
    "java.base/jdk.internal.math",
    "java.base/jdk.internal.module",
    "java.base/jdk.internal.util.jar",
    "jdk.management/com.sun.management.internal",
    "java.base/sun.nio.ch",
    "java.base/java.io",
    "java.base/java.lang.reflect",
    "jdk.compiler/com.sun.tools.javac",
    "java.base/java.lang",
    "java.base/java.util",
  ];
  const d = paths.data;
  return [
    `-Xms${HEAP}`,
    `-Xmx${HEAP}`,
    "-XX:+UseG1GC",
    "-XX:+ParallelRefProcEnabled",
    "-XX:MaxTenuringThreshold=1",
    "-XX:G1RSetUpdatingPauseTimePercent=5",
    "-XX:MaxGCPauseMillis=300",
    "-XX:ParallelGCThreads=2",
    "-XX:ConcGCThreads=1",
    "-XX:MaxDirectMemorySize=512m",
    "-XX:+HeapDumpOnOutOfMemoryError",
    `-XX:HeapDumpPath=${d}`,
    "-XX:+ExitOnOutOfMemoryError",
    "-Xss256k",
    "-Djava.net.preferIPv4Stack=true",
    "-Djdk.attach.allowAttachSelf=true",
    ...exportsTo.flatMap((m) => ["--add-exports", `${m}=ALL-UNNAMED`]),
    ...opensTo.flatMap((m) => ["--add-opens", `${m}=ALL-UNNAMED`]),
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dio.netty.allocator.useCacheForAllThreads=true",
    "-Dio.netty.allocator.maxOrder=11",
    `-Djava.io.tmpdir=${d}/tmp`,
    `-Djna.tmpdir=${d}/tmp`,
    `-Duser.home=${d}`,
    "-Dcassandra-foreground=yes",
    `-Dcassandra.config=file://${d}/cassandra.yaml`,
    `-Dcassandra.storagedir=${d}`,
    `-Dcassandra.logdir=${d}/logs`,
    `-Dlogback.configurationFile=file://${d}/logback.xml`,
    // One node: nothing to wait for in gossip, and the default role at once.
    "-Dcassandra.skip_wait_for_gossip_to_settle=0",
    "-Dcassandra.superuser_setup_delay_ms=0",
    // A lone seed has no peers to hear from: don't sleep 30 s before choosing its tokens.
    "-Dcassandra.ring_delay_ms=1000",
    `-Dcassandra.triggers_dir=${d}/triggers`,
    "-cp",
    `${lib}/*`,
    MAIN_CLASS,
  ];
}

function yaml(paths: MatrixPaths): string {
  const d = paths.data;
  const tls = `${d}/${TLS_DIR}`;
  return `# Written by scripts/matrix/cassandra.ts on every start; edits are overwritten.
cluster_name: grand_tour_matrix
num_tokens: 16
allocate_tokens_for_local_replication_factor: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
listen_address: ${MATRIX.host}
rpc_address: ${MATRIX.host}
native_transport_port: ${MATRIX.ports.cassandra}
storage_port: ${MATRIX.ports.cassandraStorage}
start_native_transport: true
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "${MATRIX.host}:${MATRIX.ports.cassandraStorage}"
endpoint_snitch: SimpleSnitch
# Every write waits for the fsync of its commit-log segment before it is acknowledged.
commitlog_sync: batch
data_file_directories:
  - ${d}/data
commitlog_directory: ${d}/commitlog
saved_caches_directory: ${d}/saved_caches
hints_directory: ${d}/hints
cdc_raw_directory: ${d}/cdc_raw
authenticator: PasswordAuthenticator
authorizer: AllowAllAuthorizer
role_manager: CassandraRoleManager
# Small and polite on a shared two-core machine.
concurrent_reads: 8
concurrent_writes: 8
concurrent_counter_writes: 8
concurrent_compactors: 1
memtable_heap_space: 128MiB
memtable_offheap_space: 128MiB
native_transport_max_threads: 32
# Plain CQL and TLS on the same port (the server sniffs the first bytes).
client_encryption_options:
  enabled: true
  optional: true
  ssl_context_factory:
    class_name: org.apache.cassandra.security.PEMBasedSslContextFactory
  keystore: ${tls}/${KEYSTORE}
  truststore: ${tls}/${CERT_FILES.ca}
  require_client_auth: false
`;
}

const LOGBACK = `<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by scripts/matrix/cassandra.ts: INFO to stdout, which the matrix log captures. -->
<configuration scan="false">
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder>
      <pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern>
    </encoder>
  </appender>
  <root level="INFO">
    <appender-ref ref="STDOUT" />
  </root>
</configuration>
`;

async function chownTree(path: string, user: string): Promise<void> {
  if (user === currentUser()) return;
  await run("chown", ["-R", `${user}:${user}`, path]);
}

type Client = InstanceType<typeof cassandra.Client>;

function client(username: string, password: string, caCert?: string): Client {
  return new cassandra.Client({
    contactPoints: [`${MATRIX.host}:${MATRIX.ports.cassandra}`],
    localDataCenter: DATACENTER,
    authProvider: new cassandra.auth.PlainTextAuthProvider(username, password),
    socketOptions: { connectTimeout: 2_000, readTimeout: 5_000 },
    pooling: { warmup: false },
    policies: {
      reconnection: new cassandra.policies.reconnection.ConstantReconnectionPolicy(1_000),
    },
    ...(caCert ? { sslOptions: { ca: [caCert], rejectUnauthorized: true } } : {}),
  });
}

async function releaseVersion(c: Client): Promise<string> {
  const rs = await c.execute("SELECT release_version FROM system.local", [], { prepare: true });
  return String(rs.first()?.get("release_version"));
}

function isAuthError(e: unknown): boolean {
  const err = e as { innerErrors?: Record<string, unknown>; name?: string; message?: string };
  if (err?.name === "AuthenticationError") return true;
  const inner = Object.values(err?.innerErrors ?? {});
  return inner.some((i) => (i as { name?: string })?.name === "AuthenticationError");
}

/** Creates the `grand_tour` superuser through the built-in `cassandra` role, then locks that role. */
async function createRole(): Promise<void> {
  const admin = client("cassandra", "cassandra");
  try {
    const pw = MATRIX.password.replaceAll("'", "''");
    // Role options take no bind markers; the password is a matrix constant.
    await admin.execute(
      `CREATE ROLE IF NOT EXISTS ${MATRIX.user} WITH PASSWORD = '${pw}' AND LOGIN = true AND SUPERUSER = true`,
    );
  } finally {
    await admin.shutdown().catch(() => {});
  }
  const own = client(MATRIX.user, MATRIX.password);
  try {
    await own.execute("ALTER ROLE cassandra WITH SUPERUSER = false AND LOGIN = false");
  } finally {
    await own.shutdown().catch(() => {});
  }
}

const service: Service = {
  name: "cassandra",
  store: "SCYLLA",
  version: `${VERSION} (Apache Cassandra cassandra-all from Maven Central, Java 17)`,

  async install(paths: MatrixPaths): Promise<void> {
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
  },

  async start(paths: MatrixPaths): Promise<number> {
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
    await Deno.writeTextFile(`${d}/cassandra.yaml`, yaml(paths));
    await Deno.writeTextFile(`${d}/logback.xml`, LOGBACK);
    await Deno.chmod(d, 0o700);
    await chownTree(d, paths.user);
    return await spawnDetached(java, jvmArgs(paths, lib), {
      user: paths.user,
      log: paths.log,
      cwd: d,
    });
  },

  async ready(paths: MatrixPaths): Promise<boolean> {
    let c = client(MATRIX.user, MATRIX.password);
    try {
      try {
        await c.connect();
      } catch (e) {
        if (!isAuthError(e)) return false;
        await c.shutdown().catch(() => {});
        await createRole();
        c = client(MATRIX.user, MATRIX.password);
        await c.connect();
      }
      if (!(await releaseVersion(c)).startsWith("5.")) return false;
    } catch {
      return false;
    } finally {
      await c.shutdown().catch(() => {});
    }
    // The TLS side of the same port, verified against the matrix CA.
    const ca = await Deno.readTextFile(`${paths.certs}/${CERT_FILES.ca}`);
    const s = client(MATRIX.user, MATRIX.password, ca);
    try {
      return (await releaseVersion(s)).startsWith("5.");
    } catch {
      return false;
    } finally {
      await s.shutdown().catch(() => {});
    }
  },

  env(_paths: MatrixPaths): Record<string, string> {
    const auth = `${encodeURIComponent(MATRIX.user)}:${encodeURIComponent(MATRIX.password)}`;
    const url = `cassandra://${auth}@${MATRIX.host}:${MATRIX.ports.cassandra}`;
    return {
      SCYLLA_URL: url,
      // Same port: the server accepts TLS and plain CQL; TLS is used when a CA is given.
      MATRIX_SCYLLA_TLS_URL: url,
      SCYLLA_DATACENTER: DATACENTER,
    };
  },
};

export default service;
